//! Web pages and feeds: the article and its structure, the page's metadata and encoding, no
//! furniture in any passage, and bad pages treated like other bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use themap::corpus::{self, Corpus, ReadOptions, SplitOptions};

fn pages() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/html")
}

fn load(paths: &[PathBuf]) -> Corpus {
    // About one token per Chinese character; the splitter only needs an even measure.
    corpus::load(paths, ReadOptions::default(), &SplitOptions::default(), &|t| {
        t.chars().count()
    })
    .unwrap()
}

/// Character 5-grams of `text` without whitespace and Markdown marks, as a multiset.
fn grams(text: &str) -> HashMap<String, usize> {
    let chars: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && !"#*|`_-".contains(*c))
        .collect();
    let mut out = HashMap::new();
    for window in chars.windows(5) {
        *out.entry(window.iter().collect()).or_default() += 1;
    }
    out
}

/// Share of `gold`'s 5-grams found in `found`.
fn recall(found: &str, gold: &str) -> f64 {
    let (f, g) = (grams(found), grams(gold));
    let common: usize = g.iter().map(|(k, n)| (*n).min(f.get(k).copied().unwrap_or(0))).sum();
    common as f64 / g.values().sum::<usize>().max(1) as f64
}

#[test]
fn chinese_site_pages_give_their_article_and_no_furniture() {
    let corpus = load(&[pages()]);
    assert!(corpus.skipped.is_empty(), "{:?}", corpus.skipped);
    let furniture: Vec<String> = std::fs::read_to_string(pages().join("furniture.lst"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expected = ["blog-power-gb18030", "forum-order", "news-ai", "news-dollar-big5"];
    let ids: Vec<&str> = corpus.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, expected);
    for doc in &corpus.documents {
        let text: String = corpus
            .passages
            .iter()
            .filter(|p| p.doc_id == doc.id)
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for passage in corpus.passages.iter().filter(|p| p.doc_id == doc.id) {
            for line in &furniture {
                assert!(
                    !passage.text.contains(line.as_str()),
                    "{}: furniture {line:?} in {}",
                    doc.id,
                    passage.id
                );
            }
            assert!(
                !passage.text.contains('<') && !passage.text.contains("&gt;"),
                "{}: markup",
                passage.id
            );
        }
        let gold = std::fs::read_to_string(pages().join(format!("{}.gold", doc.id))).unwrap();
        let r = recall(&text, &gold);
        assert!(r >= 0.95, "{}: only {r:.3} of the article found", doc.id);
        assert!(recall(&gold, &text) >= 0.95, "{}: more than the article", doc.id);
    }
}

#[test]
fn page_metadata_structure_and_encodings_are_kept() {
    let corpus = load(&[pages()]);
    let doc = |id: &str| corpus.documents.iter().find(|d| d.id == id).unwrap();

    let news = doc("news-ai");
    assert_eq!(news.encoding, "UTF-8");
    assert!(
        news.meta.title.as_deref().unwrap().starts_with("算力枯竭与地缘博弈"),
        "{:?}",
        news.meta.title
    );
    assert_eq!(news.meta.date.as_deref(), Some("2026-01-21"));
    assert_eq!(news.meta.tags, ["AI", "半导体"]);
    assert_eq!(news.meta.author.as_deref(), Some("小翠"));
    assert!(news
        .meta
        .source
        .as_deref()
        .unwrap()
        .starts_with("https://news.example.cn/world/2026-01-21/"));
    // Headings name the sections of the passages under them.
    let sections: Vec<Option<&str>> = corpus
        .passages
        .iter()
        .filter(|p| p.doc_id == "news-ai")
        .map(|p| p.section.as_deref())
        .collect();
    assert!(
        sections.contains(&Some("算力之困")) && sections.contains(&Some("市场动荡")),
        "{sections:?}"
    );

    // Big5 and GB18030 from <meta charset>; the date from JSON-LD, and from <time> alone.
    for (name, encoding, date, word) in [
        ("news-dollar-big5", "Big5", "2025-11-03", "美債"),
        ("blog-power-gb18030", "gb18030", "2025-12-09", "停電"),
    ] {
        let page = doc(name);
        assert_eq!(page.encoding, encoding, "{name}");
        assert_eq!(page.meta.date.as_deref(), Some(date), "{name}");
        assert!(
            corpus
                .passages
                .iter()
                .any(|p| p.doc_id == page.id && p.text.contains(word)),
            "{name}: no passage holds {word}"
        );
    }
}

#[test]
fn feeds_give_one_document_per_entry() {
    let tmp = TempDir::new().unwrap();
    let rss = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>环球观察</title><link>https://news.example.cn/</link>
<item><title>美国关税再加码</title><link>https://news.example.cn/1</link><pubDate>Mon, 03 Nov 2025 08:00:00 +0800</pubDate>
<category>关税</category><description><![CDATA[<p>美国宣布对进口商品加征关税。</p><h2>市场反应</h2><p>股市应声下跌，<a href="https://x">分析师</a>认为影响有限。</p>]]></description></item>
<item><title>没有正文的条目</title><link>https://news.example.cn/2</link></item>
<item><title>美元霸权的黄昏</title><link>https://news.example.cn/3</link><pubDate>Tue, 04 Nov 2025 09:00:00 +0800</pubDate>
<description>美元作为储备货币的地位正在受到挑战。</description></item>
</channel></rss>"#;
    let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>AI 观察</title><id>urn:ai</id><updated>2025-12-01T00:00:00Z</updated>
<entry><title type="html">AI 泡沫？</title><id>urn:ai:1</id><link href="https://ai.example.cn/1"/>
<published>2025-12-01T10:00:00Z</published><updated>2025-12-02T10:00:00Z</updated><author><name>老马</name></author>
<content type="html">&lt;p&gt;算力投资持续升温，估值已经脱离基本面。&lt;/p&gt;</content></entry></feed>"#;
    std::fs::write(tmp.path().join("news.rss"), rss).unwrap();
    std::fs::write(tmp.path().join("ai.atom"), atom).unwrap();
    std::fs::write(tmp.path().join("config.xml"), "<config><a>1</a></config>").unwrap();
    let corpus = load(&[tmp.path().to_path_buf()]);

    let ids: Vec<&str> = corpus.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["ai/1", "news/1", "news/3"]);
    let first = &corpus.documents[1];
    assert_eq!(first.meta.title.as_deref(), Some("美国关税再加码"));
    assert_eq!(first.meta.date.as_deref(), Some("2025-11-03"));
    assert_eq!(first.meta.source.as_deref(), Some("https://news.example.cn/1"));
    assert_eq!(first.meta.tags, ["关税"]);
    assert!(
        first.notes.iter().any(|n| n.contains("1 entries without text")),
        "{:?}",
        first.notes
    );
    let text: Vec<&str> = corpus
        .passages
        .iter()
        .filter(|p| p.doc_id == "news/1")
        .map(|p| p.text.as_str())
        .collect();
    let text = text.join("\n");
    assert!(
        text.contains("美国宣布对进口商品加征关税。") && text.contains("分析师认为影响有限"),
        "{text}"
    );
    assert!(!text.contains("https://x") && !text.contains('<'), "{text}");
    let atom = &corpus.documents[0];
    assert_eq!(atom.meta.title.as_deref(), Some("AI 泡沫？"));
    assert_eq!(atom.meta.date.as_deref(), Some("2025-12-01"));
    assert_eq!(atom.meta.author.as_deref(), Some("老马"));
    // An XML file that is no feed is passed over, named.
    assert_eq!(corpus.skipped.len(), 1);
    assert!(
        corpus.skipped[0].path.ends_with("config.xml") && corpus.skipped[0].reason.contains("not an RSS or Atom feed")
    );
}

#[test]
fn bad_pages_are_named_and_skipped_in_bounded_memory() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let page = std::fs::read(pages().join("news-ai.html")).unwrap();
    // Cut in the middle of the article, inside a tag: still read.
    let cut = page.len() * 2 / 3;
    std::fs::write(dir.join("truncated.html"), &page[..cut]).unwrap();
    // Unclosed tags everywhere: still read.
    let unclosed = String::from_utf8(page.clone())
        .unwrap()
        .replace("</p>", "")
        .replace("</div>", "");
    std::fs::write(dir.join("unclosed.html"), unclosed).unwrap();
    // Binary data named .html, an empty page, a page of menus only, a 50 MB page.
    let binary: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("binary.html"), binary).unwrap();
    std::fs::write(dir.join("empty.html"), "").unwrap();
    std::fs::write(
        dir.join("menus.html"),
        "<html><body><nav><a href=/>首页</a> <a href=/b>国际</a></nav></body></html>",
    )
    .unwrap();
    let mut huge = b"<html><body><p>".to_vec();
    huge.resize(50 << 20, b'a');
    std::fs::write(dir.join("huge.html"), &huge).unwrap();
    drop(huge);
    // An HTML page saved as .txt is read as a page too.
    std::fs::write(dir.join("saved-as.txt"), &page).unwrap();

    let corpus = load(&[dir.to_path_buf()]);
    let read: Vec<&str> = corpus.documents.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(read, ["saved-as", "truncated", "unclosed"]);
    let reasons: HashMap<String, &str> = corpus
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_string_lossy().into_owned(),
                s.reason.as_str(),
            )
        })
        .collect();
    assert!(reasons["binary.html"].contains("binary"), "{reasons:?}");
    assert!(reasons["empty.html"].contains("empty"), "{reasons:?}");
    assert!(reasons["menus.html"].contains("no article"), "{reasons:?}");
    assert!(reasons["huge.html"].contains("52 MB page"), "{reasons:?}");
    for doc in ["truncated", "unclosed", "saved-as"] {
        let text: String = corpus
            .passages
            .iter()
            .filter(|p| p.doc_id == doc)
            .map(|p| p.text.as_str())
            .collect();
        assert!(
            text.contains("算力") && !text.contains("首页") && !text.contains("console.log"),
            "{doc}: {text}"
        );
    }
}
