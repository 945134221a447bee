//! Finding the article in a page: drop menus, navigation, sign-in bars and footers; keep
//! paragraphs and headings.
//!
//! Web pages saved as text carry their furniture. It differs from site to site, but looks alike:
//! short lines without sentence punctuation, lines of links separated by `|`, bare URLs. The
//! article is the run of lines from the first real sentence to the last one; furniture outside
//! it is dropped, and menu lines inside it too.

use std::sync::LazyLock;

use regex::Regex;

use super::Metadata;

/// A paragraph of the body: byte range into the document text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paragraph {
    pub start: usize,
    pub end: usize,
    /// A short line without sentence end (or a Markdown `#` heading): a title for what follows.
    pub heading: bool,
}

/// What cleaning kept, and what it found in the page furniture.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub paragraphs: Vec<Paragraph>,
    /// Title and date labelled in the page (forum `主题:` lines, `时间: 2025-11-08`).
    pub found: Metadata,
}

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    start: usize,
    text: &'a str,
}

const SENTENCE_ENDS: &[char] = &['。', '！', '？', '；', '!', '?', '…'];
/// Lines longer than this (in characters) are never headings.
const MAX_HEADING_CHARS: usize = 80;
/// A line needs this many characters, and a sentence end, to count as article text.
const MIN_PROSE_CHARS: usize = 20;
/// What a line that is not article text costs when choosing the article's span, in characters
/// of prose: a heading between two paragraphs costs little, a block of menu lines a lot.
const SHORT_LINE_PENALTY: i64 = 25;
const FURNITURE_PENALTY: i64 = 60;

static LABELLED_TITLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:主题|主題|标题|標題|Subject|Title)\s*[:：]\s*(.+?)\s*$").expect("valid regex")
});
static LABELLED_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|\s)(?:时间|時間|日期|发布于|發佈於|date|posted)\s*[:：]\s*((?:19|20)\d\d)[-/.年](\d{1,2})[-/.月](\d{1,2})").expect("valid regex")
});

/// Cleans `text[body_start..]`. Offsets in the result refer to `text`.
pub fn clean(text: &str, body_start: usize) -> Cleaned {
    let lines: Vec<Line> = split_lines(text, body_start);
    let mut cleaned = Cleaned {
        found: find_labels(&lines),
        ..Cleaned::default()
    };

    // Documents that separate paragraphs by blank lines keep consecutive lines together
    // (lists, wrapped text); documents without blank lines have a paragraph per line.
    let blank_separated = lines.iter().any(|l| l.text.trim().is_empty());

    let (first, mut last) = article_span(&lines).unwrap_or((0, lines.len().saturating_sub(1)));
    // The article's headline usually sits just above its first sentence.
    let first = match (0..first).rev().find(|&i| !lines[i].text.trim().is_empty()) {
        Some(i) if is_heading(lines[i].text) && !is_furniture(lines[i].text) => i,
        _ => first,
    };
    // Lines attached to the last sentence (a list after its lead-in) belong to the article.
    while blank_separated
        && last + 1 < lines.len()
        && !lines[last + 1].text.trim().is_empty()
        && !is_furniture(lines[last + 1].text)
    {
        last += 1;
    }

    let kept: Vec<Option<Line>> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let keep = (first..=last).contains(&i) && !is_furniture(line.text) && !line.text.trim().is_empty();
            keep.then_some(*line)
        })
        .collect();

    let mut current: Vec<Line> = Vec::new();
    let flush = |current: &mut Vec<Line>, out: &mut Vec<Paragraph>| {
        if let (Some(first), Some(last)) = (current.first(), current.last()) {
            out.push(Paragraph {
                start: first.start,
                end: last.start + last.text.len(),
                heading: current.len() == 1 && is_heading(first.text),
            });
        }
        current.clear();
    };
    for line in kept {
        let Some(line) = line else {
            flush(&mut current, &mut cleaned.paragraphs);
            continue;
        };
        // Markdown headings stand alone even when text follows on the next line.
        if !blank_separated
            || is_markdown_heading(line.text)
            || current.first().is_some_and(|f| is_markdown_heading(f.text))
        {
            flush(&mut current, &mut cleaned.paragraphs);
        }
        current.push(line);
    }
    flush(&mut current, &mut cleaned.paragraphs);
    cleaned
}

/// The run of lines with the most article text in it: prose lines count their length, every
/// other non-blank line costs a penalty (body text extraction, Finn et al. 2001). A stray sentence
/// in a footer ("All rights reserved.") cannot pull a dozen menu lines into the article.
/// `None` when the text has no prose at all.
fn article_span(lines: &[Line]) -> Option<(usize, usize)> {
    let score = |line: &Line| -> i64 {
        if line.text.trim().is_empty() {
            0
        } else if is_prose(line.text) {
            line.text.chars().count() as i64
        } else if is_furniture(line.text) {
            -FURNITURE_PENALTY
        } else {
            -SHORT_LINE_PENALTY
        }
    };
    // Kadane's maximum-sum subarray.
    let (mut best, mut best_span) = (0i64, None);
    let (mut sum, mut start) = (0i64, 0usize);
    for (i, line) in lines.iter().enumerate() {
        if sum <= 0 {
            sum = 0;
            start = i;
        }
        sum += score(line);
        if sum > best {
            best = sum;
            best_span = Some((start, i));
        }
    }
    best_span
}

/// Lines of `text[from..]` with their byte offsets, trailing whitespace removed.
fn split_lines(text: &str, from: usize) -> Vec<Line<'_>> {
    let mut offset = from;
    text[from..]
        .split_inclusive('\n')
        .map(|raw| {
            let line = Line {
                start: offset,
                text: raw.trim_end(),
            };
            offset += raw.len();
            // Leading whitespace is layout, not content.
            let trimmed = line.text.trim_start();
            Line {
                start: line.start + (line.text.len() - trimmed.len()),
                text: trimmed,
            }
        })
        .collect()
}

/// Article text: long enough and with at least one sentence end.
fn is_prose(line: &str) -> bool {
    line.chars().count() >= MIN_PROSE_CHARS && has_sentence_end(line)
}

fn has_sentence_end(line: &str) -> bool {
    line.contains(SENTENCE_ENDS) || line.trim_end().ends_with('.') || line.contains(". ")
}

/// Short, and not ending a sentence: a title or section heading.
pub(crate) fn is_heading(line: &str) -> bool {
    let line = line.trim();
    if is_markdown_heading(line) {
        return true;
    }
    let chars = line.chars().count();
    // Headlines may end in ! ? or … ("突然!貨幣戰爭,緊急出手!"), but not in a full stop, and a line
    // ending in a colon leads into what follows (a list, a quote).
    chars > 0 && chars <= MAX_HEADING_CHARS && !line.ends_with(['。', '.', '；', ';', ':', '：'])
}

fn is_markdown_heading(line: &str) -> bool {
    line.starts_with('#') && line.trim_start_matches('#').starts_with(' ')
}

/// Menus (`a | b | c`), bare links and link-only lines.
fn is_furniture(line: &str) -> bool {
    let line = line.trim();
    if has_sentence_end(line) && line.chars().count() >= MIN_PROSE_CHARS {
        return false;
    }
    let bars = line.matches(['|', '｜']).count();
    bars >= 2 || line.contains("http://") || line.contains("https://") || line.starts_with("www.")
}

fn find_labels(lines: &[Line]) -> Metadata {
    let mut found = Metadata::default();
    for line in lines {
        if found.title.is_none() {
            found.title = LABELLED_TITLE.captures(line.text).map(|c| c[1].to_string());
        }
        if found.date.is_none() {
            found.date = LABELLED_DATE
                .captures(line.text)
                .map(|c| format!("{}-{:0>2}-{:0>2}", &c[1], &c[2], &c[3]));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(text: &str) -> Vec<String> {
        clean(text, 0)
            .paragraphs
            .iter()
            .map(|p| text[p.start..p.end].to_string())
            .collect()
    }

    #[test]
    fn forum_furniture_is_dropped() {
        let page = "论坛首页\n\n登录 | 注册 | 搜索 | 帮助\n主题: 美元霸权的衰落\n作者 bystander\n加入时间: 2004/02/14\n文章标题: 美元霸权 时间: 2025-11-08 周六\n\n美元霸权的衰落\n\n当前全球货币体系正经历深刻的结构性变革，美元霸权的内在矛盾与外部挑战交织，预示着单一主导的旧秩序难以为继。\n\n第二段文字也足够长，说明多极货币秩序正在地缘政治与实体经济的重构中逐步萌芽。\n\n浏览或加入电报频道\nhttps://t.me/example\n返回顶端\n不能在本论坛发表新主题\n不能在本论坛回复主题\n不能在本论坛编辑自己的文章\n\nbased on phpbb, All rights reserved.\n";
        let cleaned = clean(page, 0);
        let paragraphs = kept(page);
        assert_eq!(paragraphs.len(), 3, "{paragraphs:?}");
        assert_eq!(paragraphs[0], "美元霸权的衰落");
        assert!(paragraphs[1].starts_with("当前全球"));
        assert!(paragraphs[2].starts_with("第二段"));
        assert!(cleaned.paragraphs[0].heading);
        assert_eq!(cleaned.found.title.as_deref(), Some("美元霸权的衰落"));
        assert_eq!(
            cleaned.found.date.as_deref(),
            Some("2025-11-08"),
            "the member's join date is not the post date"
        );
    }

    #[test]
    fn lines_are_paragraphs_without_blank_lines() {
        let text = "标题一!\n第一篇文章的正文足够长，而且以句号结束，这样它才算作正文而不是导航。\n标题二\n第二篇文章的正文同样足够长，也以句号结束，这样它也算作正文内容。\n";
        let cleaned = clean(text, 0);
        assert_eq!(
            cleaned.paragraphs.iter().map(|p| p.heading).collect::<Vec<_>>(),
            [true, false, true, false]
        );
    }

    #[test]
    fn markdown_headings_and_lists_stay_together() {
        let text = "### 关税\n\nThe Supreme Court will hear the case on tariffs next week, and markets are watching.\n1. first point of the list\n2. second point\n";
        let paragraphs = kept(text);
        assert_eq!(paragraphs.len(), 2, "{paragraphs:?}");
        assert!(paragraphs[1].ends_with("second point"));
    }
}
