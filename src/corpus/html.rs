//! Web pages and feeds as users save them: the article found in an HTML page (dom_smoothie, a
//! port of Mozilla's Readability), with its title, date, author, tags and address taken from the
//! page's metadata; and each entry of an RSS or Atom feed (feed-rs) as a document.
//!
//! The article's text keeps its structure for the splitter: paragraphs apart, headings as
//! Markdown headings (which name sections), links reduced to their words, images dropped. Script,
//! style, navigation, comments and footers are not part of the article Readability finds.
//! Passage positions (line, characters) refer to that text, not to the markup.

use std::path::Path;
use std::sync::OnceLock;

use dom_smoothie::{CandidateSelectMode, Config, Readability, TextMode};
use encoding_rs::Encoding;
use regex::Regex;

use super::read::{decode, Decoded, ReadOptions};
use super::{Document, Metadata};

/// Pages above this size are refused: a saved article is a few hundred kilobytes, and parsing
/// takes about ten times a page's size in memory.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// Fewer characters than this (spaces aside) are not an article.
const MIN_ARTICLE_CHARS: usize = 50;

/// Feeds above this size are refused, for the same reason.
pub const MAX_FEED_BYTES: usize = 64 << 20;

/// Whether a file of this name is read as a web page.
pub fn is_page(path: &Path) -> bool {
    has_extension(path, &["html", "htm", "xhtml"])
}

/// Whether a file of this name is read as a feed.
pub fn is_feed(path: &Path) -> bool {
    has_extension(path, &["rss", "atom", "xml"])
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .is_some_and(|e| extensions.contains(&e.to_string_lossy().to_lowercase().as_str()))
}

/// Whether decoded text is HTML whatever its file's name (a page saved as `.txt`, or without
/// an extension).
pub fn looks_like_html(text: &str) -> bool {
    let start: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(15)
        .collect();
    let start = start.to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

/// A page whose text is already decoded.
pub fn page_document(path: &Path, id: &str, decoded: Decoded) -> Result<Document, String> {
    let page = extract(&decoded.text)?;
    let mut doc = Document::from_text(id, path, page.text, decoded.encoding);
    doc.meta = page.meta;
    doc.notes.extend(decoded.note);
    Ok(doc)
}

/// Decodes a page: a byte-order mark, else `--encoding`, else the page's own `<meta charset>`,
/// else detection, as for text files (the same refusals of binary and undecodable bytes).
pub(super) fn decode_page(bytes: &[u8], options: ReadOptions) -> Result<Decoded, String> {
    if let Some(reason) = too_large(Path::new("page.html"), bytes.len() as u64) {
        return Err(reason);
    }
    decode(bytes, options.encoding.or_else(|| declared_charset(bytes)))
}

/// Why a page or feed of `bytes` is not read, if it is too large (checked before reading it).
pub fn too_large(path: &Path, bytes: u64) -> Option<String> {
    let (limit, what, fix) = if is_feed(path) {
        (MAX_FEED_BYTES, "feed", "split it")
    } else if is_page(path) {
        (MAX_PAGE_BYTES, "page", "split it or save the article alone")
    } else {
        return None;
    };
    (bytes > limit as u64).then(|| {
        format!(
            "a {:.0} MB {what}, above the {} MB this reads; {fix}",
            bytes as f64 / 1e6,
            limit >> 20
        )
    })
}

/// The encoding a page declares in its first 1,024 bytes (`<meta charset>` or `http-equiv`), as
/// browsers look for it.
fn declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    static CHARSET: OnceLock<Regex> = OnceLock::new();
    let charset =
        CHARSET.get_or_init(|| Regex::new(r#"(?i)<meta[^>]*charset\s*=\s*["']?\s*([a-z0-9_:.\-]+)"#).expect("valid"));
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]);
    let label = charset.captures(&head)?.get(1)?.as_str().to_string();
    // A page that says UTF-16 in ASCII bytes is not UTF-16 (the HTML standard's rule).
    Encoding::for_label(label.as_bytes()).map(|e| {
        if e == encoding_rs::UTF_16LE || e == encoding_rs::UTF_16BE {
            encoding_rs::UTF_8
        } else {
            e
        }
    })
}

/// An article's text and metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub text: String,
    pub meta: Metadata,
}

/// Finds the article in `html`.
pub fn extract(html: &str) -> Result<Page, String> {
    let config = Config {
        text_mode: TextMode::Markdown,
        // dom_smoothie's own choice of the top candidate keeps long pages of many sections
        // whole, where Readability's picks one section: on the labelled pages (benches/README.md)
        // F1 0.788 against 0.757, and a Debian Reference chapter 0.818 against 0.151.
        candidate_select_mode: CandidateSelectMode::DomSmoothie,
        ..Config::default()
    };
    let mut readability =
        Readability::new(html, None, Some(config)).map_err(|e| format!("not a readable HTML page: {e}"))?;
    let article = readability
        .parse()
        .map_err(|e| format!("no article found in the page ({e})"))?;
    let text = plain_markdown(&article.text_content);
    // Readability falls back to the whole body; a body of a few words is menus, not an article.
    if text.chars().filter(|c| !c.is_whitespace()).count() < MIN_ARTICLE_CHARS {
        return Err("no article found in the page (a few words at most: menus or links)".into());
    }
    let document = dom_query::Document::from(html);
    // The non-empty values of `attribute` on the elements `selector` finds, in page order.
    let values = |selector: &str, attribute: &str| -> Vec<String> {
        document
            .select(selector)
            .iter()
            .filter_map(|e| e.attr(attribute).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
            .collect()
    };
    let first = |selector: &str, attribute: &str| values(selector, attribute).into_iter().next();
    let date = article
        .published_time
        .clone()
        .or_else(|| first(r#"meta[property="article:published_time"], meta[name="pubdate"], meta[name="date"], meta[itemprop="datePublished"]"#, "content"))
        .or_else(|| first("time[datetime]", "datetime"))
        .and_then(|d| iso_date(&d));
    let mut tags = values(r#"meta[property="article:tag"]"#, "content");
    if tags.is_empty() {
        if let Some(keywords) = first(r#"meta[name="keywords"]"#, "content") {
            tags = keywords
                .split([',', '，', '、', ';'])
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
        }
    }
    let source = first(r#"link[rel="canonical"]"#, "href")
        .or_else(|| first(r#"meta[property="og:url"]"#, "content"))
        .or(article.url.clone());
    let title = Some(article.title.trim().to_string()).filter(|t| !t.is_empty());
    Ok(Page {
        text,
        meta: Metadata {
            title,
            date,
            tags,
            author: article.byline.map(|b| b.trim().to_string()).filter(|b| !b.is_empty()),
            source,
            ..Metadata::default()
        },
    })
}

/// The text of an HTML fragment (a feed entry's content), with the article's structure rules.
pub fn fragment_text(html: &str) -> String {
    plain_markdown(&dom_query::Document::from(html).md(None))
}

/// Markdown reduced to what is read: links to their words, images and raw addresses dropped,
/// runs of blank lines to one.
fn plain_markdown(markdown: &str) -> String {
    static IMAGE: OnceLock<Regex> = OnceLock::new();
    static LINK: OnceLock<Regex> = OnceLock::new();
    let image = IMAGE.get_or_init(|| Regex::new(r"!\[[^\]]*\]\([^)]*\)").expect("valid"));
    let link = LINK.get_or_init(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)").expect("valid"));
    let text = image.replace_all(markdown, "");
    let text = link.replace_all(&text, "$1");
    let mut out = String::with_capacity(text.len());
    let mut blank = true;
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !blank {
                out.push('\n');
            }
            blank = true;
        } else {
            out.push_str(line);
            out.push('\n');
            blank = false;
        }
    }
    out
}

/// `YYYY-MM-DD` from the start of an ISO 8601 date or date-time.
pub fn iso_date(value: &str) -> Option<String> {
    let value = value.trim();
    let date = value.get(..10)?;
    let bytes = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| bytes[r].iter().all(u8::is_ascii_digit);
    (digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10)).then(|| date.to_string())
}

/// Reads an RSS or Atom feed: one document per entry, with its title, date, link, author,
/// categories and content (HTML reduced to text). `Err` is the reason to skip the file.
pub fn read_feed(path: &Path, id: &str, bytes: &[u8]) -> Result<Vec<Document>, String> {
    if let Some(reason) = too_large(path, bytes.len() as u64) {
        return Err(reason);
    }
    let feed = feed_rs::parser::parse(bytes).map_err(|e| format!("not an RSS or Atom feed: {e}"))?;
    let mut documents = Vec::new();
    let mut empty = 0;
    for (n, entry) in feed.entries.into_iter().enumerate() {
        let html = entry
            .content
            .and_then(|c| c.body)
            .or_else(|| entry.summary.map(|s| s.content))
            .unwrap_or_default();
        let text = fragment_text(&html);
        if text.trim().is_empty() {
            empty += 1;
            continue;
        }
        let mut doc = Document::from_text(&format!("{id}/{}", n + 1), path, text, "UTF-8");
        doc.meta = Metadata {
            title: entry
                .title
                .map(|t| fragment_text(&t.content).trim().to_string())
                .filter(|t| !t.is_empty()),
            date: entry
                .published
                .or(entry.updated)
                .map(|d| d.format("%Y-%m-%d").to_string()),
            tags: entry
                .categories
                .into_iter()
                .map(|c| c.label.unwrap_or(c.term))
                .collect(),
            author: entry
                .authors
                .into_iter()
                .filter_map(|a| a.name)
                .find(|a| !a.trim().is_empty()),
            source: entry.links.into_iter().map(|l| l.href).next(),
            ..Metadata::default()
        };
        documents.push(doc);
    }
    match documents.first_mut() {
        Some(first) if empty > 0 => first.notes.push(format!("{empty} entries without text passed over")),
        Some(_) => {}
        None => return Err("a feed with no entry that has text".into()),
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_are_cut_to_the_day() {
        assert_eq!(iso_date("2025-11-03T08:00:00+08:00").as_deref(), Some("2025-11-03"));
        assert_eq!(iso_date(" 2025-11-03 ").as_deref(), Some("2025-11-03"));
        assert_eq!(iso_date("Nov 3, 2025"), None);
        assert_eq!(iso_date("2025-1"), None);
    }

    #[test]
    fn links_keep_their_words_and_images_go() {
        let md = "# 標題\n\n\n\n見[路透社](https://x.y/z)報道 ![圖](a.png)\n";
        assert_eq!(plain_markdown(md), "# 標題\n\n見路透社報道\n");
    }

    #[test]
    fn the_declared_charset_is_found_in_the_head() {
        let page = br#"<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>"#;
        assert_eq!(declared_charset(page), Some(encoding_rs::GBK));
        assert_eq!(declared_charset(b"<meta charset='utf-16'>"), Some(encoding_rs::UTF_8));
        assert_eq!(declared_charset(b"<html><body>no charset</body></html>"), None);
        assert!(looks_like_html("\u{feff}  <!DOCTYPE html><html>"));
        assert!(!looks_like_html("# a heading\n<html> in text"));
    }
}
