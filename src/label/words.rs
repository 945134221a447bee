//! Splitting text into countable words: jieba for Chinese (after converting traditional to
//! simplified, so 關稅 and 关税 count as one word), letters and digits for other scripts.

use std::collections::HashSet;

use jieba_rs::Jieba;

use super::stopwords;

/// A word as counted (`key`: simplified, lowercase) and as written (`surface`), and where it
/// lies in the text (character offsets), so that words written next to each other can be
/// counted as a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub key: String,
    pub surface: String,
    pub start: usize,
    pub end: usize,
}

impl Word {
    /// Whether `next` follows this word directly, or after one space ("AI 泡沫").
    pub fn runs_into(&self, next: &Word, text: &[char]) -> bool {
        next.start == self.end || (next.start == self.end + 1 && text.get(self.end) == Some(&' '))
    }
}

/// Splits text into content words, stop words removed.
pub struct WordSplitter {
    jieba: Jieba,
    stop: HashSet<&'static str>,
}

impl Default for WordSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl WordSplitter {
    pub fn new() -> Self {
        let stop = stopwords::CHINESE.iter().chain(stopwords::ENGLISH).copied().collect();
        Self {
            jieba: Jieba::new(),
            stop,
        }
    }

    pub fn words(&self, text: &str) -> Vec<Word> {
        let mut out = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0;
        while start < chars.len() {
            let cjk = is_cjk(chars[start]);
            let wordish = |c: char| {
                if cjk {
                    is_cjk(c)
                } else {
                    (c.is_alphanumeric() || c == '-') && !is_cjk(c)
                }
            };
            if !cjk && !wordish(chars[start]) {
                start += 1;
                continue;
            }
            let mut end = (start..chars.len())
                .find(|&i| !wordish(chars[i]))
                .unwrap_or(chars.len());
            // Capitalised words in a row are one name: "Xi Jinping", "Steven Mnuchin".
            while !cjk
                && chars[start].is_uppercase()
                && end + 1 < chars.len()
                && chars[end] == ' '
                && chars[end + 1].is_uppercase()
                && chars[end + 1].is_alphabetic()
                && !is_cjk(chars[end + 1])
            {
                end = (end + 1..chars.len())
                    .find(|&i| !wordish(chars[i]))
                    .unwrap_or(chars.len());
            }
            let run: String = chars[start..end].iter().collect();
            if cjk {
                self.chinese(&run, start, &mut out);
            } else {
                self.latin(&run, start, &mut out);
            }
            start = end;
        }
        out
    }

    fn chinese(&self, run: &str, offset: usize, out: &mut Vec<Word>) {
        // fast2s maps character for character, so token positions carry over to the original.
        let simplified = fast2s::convert(run);
        let original: Vec<char> = run.chars().collect();
        for token in self.jieba.cut(&simplified, true) {
            if token.end - token.start < 2 || self.stop.contains(token.word) {
                continue;
            }
            let surface = if token.end <= original.len() {
                original[token.start..token.end].iter().collect()
            } else {
                token.word.to_string()
            };
            out.push(Word {
                key: token.word.to_string(),
                surface,
                start: offset + token.start,
                end: offset + token.end,
            });
        }
    }

    fn latin(&self, run: &str, offset: usize, out: &mut Vec<Word>) {
        let parts: Vec<&str> = run.split(' ').collect();
        // A capitalised run is a name unless it holds a stop word ("The AI" is two words).
        if parts.len() > 1 && parts.iter().any(|p| self.stop.contains(p.to_lowercase().as_str())) {
            let mut at = offset;
            for part in parts {
                self.latin(part, at, out);
                at += part.chars().count() + 1;
            }
            return;
        }
        let key = run.to_lowercase();
        let all_digits = run.chars().all(|c| c.is_ascii_digit() || c == '.');
        if run.chars().count() >= 2 && !all_digits && !self.stop.contains(key.as_str()) {
            out.push(Word {
                key,
                surface: run.to_string(),
                start: offset,
                end: offset + run.chars().count(),
            });
        }
    }
}

pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traditional_and_simplified_count_alike_but_keep_their_script() {
        let splitter = WordSplitter::new();
        let hant = splitter.words("美國對中國商品加徵關稅");
        let hans = splitter.words("美国对中国商品加征关税");
        let keys = |w: &[Word]| w.iter().map(|w| w.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&hant), keys(&hans));
        assert!(hant.iter().any(|w| w.surface == "關稅" && w.key == "关税"), "{hant:?}");
    }

    #[test]
    fn english_words_numbers_and_stop_words() {
        let words =
            WordSplitter::new().words("The AI bubble: OpenAI signs a $38 billion deal in 2025 with Amazon（AWS）。");
        let keys: Vec<&str> = words.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            ["ai", "bubble", "openai", "signs", "billion", "deal", "amazon", "aws"]
        );
        assert_eq!(words[2].surface, "OpenAI");
        let names = WordSplitter::new().words("文章认为，Xi Jinping与Steven Mnuchin会面。");
        assert_eq!(
            names.iter().map(|w| w.surface.as_str()).collect::<Vec<_>>(),
            ["Xi Jinping", "Steven Mnuchin", "会面"]
        );
    }

    #[test]
    fn positions_tell_which_words_run_into_each_other() {
        let text = "美元霸权与AI 泡沫，the dollar order";
        let chars: Vec<char> = text.chars().collect();
        let words = WordSplitter::new().words(text);
        for w in &words {
            let at: String = chars[w.start..w.end].iter().collect();
            assert_eq!(at, w.surface);
        }
        let find = |s: &str| words.iter().position(|w| w.surface == s).unwrap();
        let (dollar, hegemony, ai, bubble) = (find("美元"), find("霸权"), find("AI"), find("泡沫"));
        assert!(words[dollar].runs_into(&words[hegemony], &chars));
        assert!(words[ai].runs_into(&words[bubble], &chars));
        assert!(
            !words[hegemony].runs_into(&words[ai], &chars),
            "a stop word lies between"
        );
    }

    #[test]
    fn chinese_is_segmented_into_words_not_sentences() {
        let words = WordSplitter::new().words("人工智能泡沫一旦破裂，所有美国科技巨头都将受到巨大牵连。");
        let keys: Vec<&str> = words.iter().map(|w| w.key.as_str()).collect();
        assert!(keys.contains(&"泡沫") && keys.contains(&"人工智能"), "{keys:?}");
        assert!(keys.iter().all(|k| k.chars().count() <= 4), "{keys:?}");
    }
}
