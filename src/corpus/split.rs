//! Cutting paragraphs into passages under a token budget.
//!
//! Paragraphs come first. A paragraph over budget is cut at sentence ends (packing whole
//! sentences), a sentence over budget at clause marks, and only text with neither is cut
//! mid-run. Fragments under the minimum (headings, one-line lead-ins) join a neighbour.

use std::ops::Range;

use super::clean::Paragraph;
use super::{Document, Passage};
use crate::error::{Error, Result};

/// Passage size limits, in model tokens.
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions {
    /// Most tokens in a passage (a single unbreakable run may exceed it only when cut mid-run).
    pub max_tokens: usize,
    /// Passages smaller than this join a neighbour when the result stays within `max_tokens`.
    pub min_tokens: usize,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            min_tokens: 48,
        }
    }
}

impl SplitOptions {
    /// Budget of `max_tokens`, minimum a fifth of it.
    pub fn with_max_tokens(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            min_tokens: max_tokens / 5,
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.max_tokens < 16 {
            return Err(Error::InvalidArgument(format!(
                "passage budget of {} tokens is too small (16 at least)",
                self.max_tokens
            )));
        }
        if self.min_tokens >= self.max_tokens {
            return Err(Error::InvalidArgument(
                "minimum passage size must be below the budget".into(),
            ));
        }
        Ok(())
    }
}

/// Sentence ends, and the closing marks that stay attached to them.
const SENTENCE_ENDS: &[char] = &['。', '！', '？', '；', '!', '?', ';', '…'];
const CLOSERS: &[char] = &['”', '」', '』', '）', ')', '"', '\'', '’', '》', '】', ']'];
/// Where an over-long sentence may be cut.
const CLAUSE_MARKS: &[char] = &['，', ',', '、', '：', ':', '—'];

/// A run of text, with its token count and heading.
#[derive(Debug, Clone)]
struct Chunk {
    range: Range<usize>,
    tokens: usize,
    section: Option<String>,
}

/// Splits a cleaned document into passages, numbered from 1 in document order.
pub fn split(
    doc: &Document,
    paragraphs: &[Paragraph],
    options: &SplitOptions,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Passage> {
    let text = doc.text.as_str();
    let mut chunks = Vec::new();
    let mut section: Option<String> = None;
    for paragraph in paragraphs {
        let range = paragraph.start..paragraph.end;
        if paragraph.heading {
            section = Some(display_text(&text[range.clone()]));
        }
        for piece in cut(text, range, options.max_tokens, count_tokens) {
            chunks.push(Chunk {
                tokens: count_tokens(&text[piece.clone()]),
                range: piece,
                section: section.clone(),
            });
        }
    }
    let chunks = merge_small(chunks, options);
    to_passages(doc, chunks)
}

/// Text longer than this many bytes per token of budget is over budget without counting: a
/// token covers a few bytes, and tokenizing a megabyte-long line at once takes gigabytes. Text
/// judged over budget this way is cut and packed again by counts, so nothing is lost by it.
const BYTES_PER_TOKEN_BOUND: usize = 16;

/// Whether `range` fits in `budget` tokens; never tokenizes more than a few budgets of text.
fn fits(text: &str, range: &Range<usize>, budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> bool {
    range.len() <= budget * BYTES_PER_TOKEN_BOUND && count_tokens(&text[range.clone()]) <= budget
}

/// Cuts `range` into pieces of at most `budget` tokens: whole sentences where possible.
fn cut(text: &str, range: Range<usize>, budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> Vec<Range<usize>> {
    if fits(text, &range, budget, count_tokens) {
        return vec![range];
    }
    let mut pieces = Vec::new();
    for sentence in boundaries(text, range, SENTENCE_ENDS, true) {
        if fits(text, &sentence, budget, count_tokens) {
            pieces.push(sentence);
            continue;
        }
        for clause in boundaries(text, sentence, CLAUSE_MARKS, false) {
            if fits(text, &clause, budget, count_tokens) {
                pieces.push(clause);
            } else {
                pieces.extend(hard_cut(text, clause, budget, count_tokens));
            }
        }
    }
    pack(text, pieces, budget, count_tokens)
}

/// Splits `range` after each mark (and any closing quotes after it); with `dots`, also after
/// `.` followed by a space. Newlines always end a piece.
fn boundaries(text: &str, range: Range<usize>, marks: &[char], dots: bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = range.start;
    let mut chars = text[range.clone()].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let is_end = marks.contains(&c) || c == '\n' || (dots && c == '.' && next.is_some_and(char::is_whitespace));
        if !is_end {
            continue;
        }
        let mut end = range.start + i + c.len_utf8();
        while let Some(&(j, n)) = chars.peek() {
            if CLOSERS.contains(&n) || marks.contains(&n) {
                end = range.start + j + n.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        if !text[start..end].trim().is_empty() {
            out.push(start..end);
        }
        start = end;
    }
    if start < range.end && !text[start..range.end].trim().is_empty() {
        out.push(start..range.end);
    }
    out
}

/// Cuts a run with no usable marks into pieces of about `budget` tokens, on character bounds,
/// a window of a few budgets at a time.
fn hard_cut(text: &str, range: Range<usize>, budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = range.start;
    while start < range.end {
        // The window's end, back to a character boundary (the budget is at least 16 tokens, so
        // a window holds many characters).
        let mut end = (start + budget * BYTES_PER_TOKEN_BOUND).min(range.end);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        pieces.extend(cut_evenly(text, start..end, budget, count_tokens));
        start = end;
    }
    pieces
}

/// Cuts `range` into pieces of equal character counts, about `budget` tokens each.
fn cut_evenly(
    text: &str,
    range: Range<usize>,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let run = &text[range.clone()];
    let tokens = count_tokens(run).max(1);
    let chars: Vec<usize> = run.char_indices().map(|(i, _)| i).collect();
    let per_piece = (chars.len() * budget / tokens).clamp(1, chars.len());
    chars
        .chunks(per_piece)
        .map(|c| {
            let start = range.start + c[0];
            let end = chars
                .get(chars.partition_point(|&i| i <= *c.last().expect("chunks are non-empty")))
                .map_or(range.end, |&i| range.start + i);
            start..end
        })
        .collect()
}

/// Greedily joins consecutive pieces while the result stays within `budget`.
fn pack(
    text: &str,
    pieces: Vec<Range<usize>>,
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut current: Option<(Range<usize>, usize)> = None;
    for piece in pieces {
        let tokens = count_tokens(&text[piece.clone()]);
        current = match current.take() {
            Some((range, used)) if used + tokens <= budget => Some((range.start..piece.end, used + tokens)),
            Some((range, _)) => {
                out.push(range);
                Some((piece, tokens))
            }
            None => Some((piece, tokens)),
        };
    }
    out.extend(current.map(|(range, _)| range));
    out
}

/// Joins chunks under `min_tokens` to the next chunk, or else the previous one, within budget.
fn merge_small(chunks: Vec<Chunk>, options: &SplitOptions) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let mut pending: Option<Chunk> = None;
    for mut chunk in chunks {
        if let Some(small) = pending.take() {
            if small.tokens + chunk.tokens <= options.max_tokens {
                // A heading joining its text: the text keeps the heading as its section.
                chunk = Chunk {
                    range: small.range.start..chunk.range.end,
                    tokens: small.tokens + chunk.tokens,
                    section: chunk.section,
                };
            } else {
                push_or_join_previous(&mut out, small, options);
            }
        }
        if chunk.tokens < options.min_tokens {
            pending = Some(chunk);
        } else {
            out.push(chunk);
        }
    }
    if let Some(small) = pending {
        push_or_join_previous(&mut out, small, options);
    }
    out
}

fn push_or_join_previous(out: &mut Vec<Chunk>, small: Chunk, options: &SplitOptions) {
    match out.last_mut() {
        Some(previous) if previous.tokens + small.tokens <= options.max_tokens => {
            previous.range.end = small.range.end;
            previous.tokens += small.tokens;
        }
        _ => out.push(small),
    }
}

fn to_passages(doc: &Document, chunks: Vec<Chunk>) -> Vec<Passage> {
    let text = doc.text.as_str();
    // Chunks with nothing to show (a lone `#`, only control characters) are no passages.
    let shown: Vec<(Chunk, String)> = chunks
        .into_iter()
        .map(|chunk| {
            let shown = display_text(&text[chunk.range.clone()]);
            (chunk, shown)
        })
        .filter(|(_, shown)| !shown.is_empty())
        .collect();
    // Byte offsets to character offsets and line numbers, in one pass over the text.
    let mut positions = Vec::with_capacity(shown.len() * 2);
    for (chunk, _) in &shown {
        positions.push(chunk.range.start);
        positions.push(chunk.range.end);
    }
    let located = locate(text, &positions);
    shown
        .into_iter()
        .enumerate()
        .map(|(i, (chunk, shown))| {
            let ((char_start, line), (char_end, _)) = (located[2 * i], located[2 * i + 1]);
            Passage {
                id: format!("{}#{}", doc.id, i + 1),
                doc_id: doc.id.clone(),
                ordinal: i as u32 + 1,
                section: chunk.section.filter(|s| !s.is_empty()),
                char_start,
                char_end,
                line,
                text: shown,
            }
        })
        .collect()
}

/// (character offset, 1-based line) of each byte offset.
fn locate(text: &str, byte_offsets: &[usize]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..byte_offsets.len()).collect();
    order.sort_by_key(|&i| byte_offsets[i]);
    let mut out = vec![(0, 1); byte_offsets.len()];
    let (mut chars, mut line, mut byte) = (0, 1, 0);
    let mut iter = text.char_indices().peekable();
    for i in order {
        while let Some(&(b, c)) = iter.peek() {
            if b >= byte_offsets[i] {
                break;
            }
            chars += 1;
            if c == '\n' {
                line += 1;
            }
            byte = b;
            iter.next();
        }
        let _ = byte;
        out[i] = (chars, line);
    }
    out
}

/// Passage text as shown and embedded: one line per paragraph, Markdown emphasis and heading
/// marks removed, runs of spaces folded, control characters (terminal escapes, form feeds) dropped.
pub fn display_text(raw: &str) -> String {
    raw.lines()
        .map(|line| {
            // Marks removed before trimming, so a line of marks and spaces ends up empty.
            let line = line
                .replace(|c: char| c.is_control() && c != '\t', "")
                .replace("**", "")
                .replace("__", "");
            let line = line.trim();
            let line = if line.starts_with('#') {
                line.trim_start_matches('#').trim_start()
            } else {
                line
            };
            line.split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::clean::clean;
    use std::path::Path;

    /// One token per character: easy to reason about in tests.
    fn chars(text: &str) -> usize {
        text.chars().filter(|c| !c.is_whitespace()).count()
    }

    fn passages(text: &str, options: SplitOptions) -> Vec<Passage> {
        let doc = Document::from_text("doc", Path::new("doc.txt"), text.to_string(), "UTF-8");
        split(&doc, &clean(&doc.text, doc.body_start).paragraphs, &options, &chars)
    }

    #[test]
    fn long_paragraph_is_cut_at_sentence_ends_within_budget() {
        let sentence = "美元霸权正在衰落，多极货币秩序萌芽。";
        let text = sentence.repeat(40);
        let options = SplitOptions {
            max_tokens: 60,
            min_tokens: 10,
        };
        let out = passages(&text, options);
        assert!(out.len() > 1);
        for p in &out {
            assert!(chars(&p.text) <= 60, "{} tokens", chars(&p.text));
            assert!(p.text.ends_with('。'), "cut mid-sentence: {}", p.text);
        }
        let joined: String = out.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, text, "nothing lost or repeated");
    }

    #[test]
    fn oversize_sentence_is_cut_at_clauses_then_hard() {
        let text = format!("{}。", "甲乙丙丁戊己庚辛，".repeat(10) + &"子".repeat(100));
        let out = passages(
            &text,
            SplitOptions {
                max_tokens: 30,
                min_tokens: 5,
            },
        );
        assert!(out.iter().all(|p| chars(&p.text) <= 30), "{out:#?}");
        assert_eq!(out.iter().map(|p| p.text.as_str()).collect::<String>(), text);
    }

    /// A megabyte on one line, with and without sentence marks: the tokenizer never sees more
    /// than a few budgets of it at once (tokenizing it whole took gigabytes), and nothing is lost.
    #[test]
    fn a_huge_line_is_measured_a_window_at_a_time() {
        let options = SplitOptions {
            max_tokens: 64,
            min_tokens: 12,
        };
        let longest = std::cell::Cell::new(0);
        let counting = |text: &str| {
            longest.set(longest.get().max(text.len()));
            chars(text)
        };
        for line in [
            "美元霸权正在衰落，多极货币秩序萌芽。".repeat(20_000),
            "子".repeat(350_000),
        ] {
            longest.set(0);
            let doc = Document::from_text("doc", Path::new("doc.txt"), line.clone(), "UTF-8");
            let out = split(&doc, &clean(&doc.text, doc.body_start).paragraphs, &options, &counting);
            assert!(
                longest.get() <= 64 * BYTES_PER_TOKEN_BOUND,
                "counted {} bytes at once",
                longest.get()
            );
            assert!(out.iter().all(|p| chars(&p.text) <= 64));
            assert_eq!(out.iter().map(|p| p.text.as_str()).collect::<String>(), line);
        }
    }

    #[test]
    fn control_characters_are_dropped() {
        assert_eq!(display_text("关税\u{1b}[31m red\u{7}\u{0c}"), "关税[31m red");
    }

    /// Found by the fuzzer: a line of no-break spaces and `__` marks was a passage of one space.
    #[test]
    fn lines_of_marks_and_unicode_spaces_are_empty() {
        assert_eq!(display_text("\u{a0}\u{a0}____\u{a0}\n#\n\u{3000}**"), "");
        let doc = Document::from_text(
            "doc",
            Path::new("doc.txt"),
            "\u{a0}__\u{a0}\n\n第一段。\n".into(),
            "UTF-8",
        );
        let out = split(
            &doc,
            &clean(&doc.text, doc.body_start).paragraphs,
            &SplitOptions::default(),
            &chars,
        );
        assert!(out.iter().all(|p| !p.text.trim().is_empty()), "{out:?}");
    }

    #[test]
    fn headings_join_the_following_text_and_name_the_section() {
        let text = "维度一:美元霸权\n\n当前全球货币体系正经历深刻的结构性变革，美元霸权的内在矛盾与外部挑战交织。\n";
        let out = passages(
            text,
            SplitOptions {
                max_tokens: 100,
                min_tokens: 20,
            },
        );
        assert_eq!(out.len(), 1);
        assert!(out[0].text.starts_with("维度一:美元霸权\n当前"));
        assert_eq!(out[0].section.as_deref(), Some("维度一:美元霸权"));
    }

    #[test]
    fn offsets_are_characters_in_the_file() {
        let text = "---\ntitle: 测试\n---\n第一段文字足够长，而且以句号结束，这样它才算正文内容。\n\n第二段文字同样足够长，也以句号结束，这样它也是正文内容。\n";
        let out = passages(
            text,
            SplitOptions {
                max_tokens: 30,
                min_tokens: 5,
            },
        );
        assert_eq!(out.len(), 2);
        let chars: Vec<char> = text.chars().collect();
        for p in &out {
            let slice: String = chars[p.char_start..p.char_end].iter().collect();
            assert_eq!(slice, p.text);
        }
        assert_eq!(out[1].line, 6);
        assert_eq!(out[1].id, "doc#2");
    }

    #[test]
    fn display_text_drops_markdown_marks() {
        assert_eq!(
            display_text("### 标题\n\n**Xi Jinping**  said"),
            "标题\nXi Jinping said"
        );
    }
}
