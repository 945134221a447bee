//! Stage 6: naming themes. Class-based TF-IDF picks the words that set a theme apart from the
//! others; maximal marginal relevance (MMR) then keeps words close to the theme's centroid but
//! unlike each other, so a label is not five spellings of one word.

pub mod stopwords;
pub mod words;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::Serialize;

use crate::embed::{Embedder, Prompt};
use crate::error::Result;
use crate::progress::{Progress, Silent};
pub use words::{Word, WordSplitter};

/// A theme's keyword, in the script the documents use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keyword {
    pub word: String,
    /// Class-based TF-IDF weight.
    pub score: f32,
}

/// How many keywords, and how they are chosen.
#[derive(Debug, Clone, Copy)]
pub struct KeywordOptions {
    pub count: usize,
    /// c-TF-IDF candidates considered for MMR.
    pub candidates: usize,
    /// 0: pure relevance to the centroid; 1: pure novelty against chosen words.
    pub diversity: f32,
}

impl Default for KeywordOptions {
    fn default() -> Self {
        Self {
            count: 10,
            candidates: 30,
            diversity: 0.3,
        }
    }
}

/// Word counts of each theme: by key, and by spelling within a key. A phrase (two words written
/// next to each other) is counted too, its key and spelling the words' joined by [`PHRASE_JOIN`].
#[derive(Default, Clone)]
struct ThemeWords {
    counts: HashMap<String, f64>,
    surfaces: HashMap<String, HashMap<String, usize>>,
}

/// Joins the two words of a phrase inside keys; shown as nothing between Chinese words and a
/// space otherwise ([`show_phrase`]).
const PHRASE_JOIN: char = '\u{1}';

impl ThemeWords {
    fn add(&mut self, key: String, surface: String) {
        *self
            .surfaces
            .entry(key.clone())
            .or_default()
            .entry(surface)
            .or_default() += 1;
        *self.counts.entry(key).or_default() += 1.0;
    }

    fn merge(&mut self, other: &ThemeWords) {
        for (key, n) in &other.counts {
            *self.counts.entry(key.clone()).or_default() += n;
        }
        for (key, forms) in &other.surfaces {
            let mine = self.surfaces.entry(key.clone()).or_default();
            for (surface, n) in forms {
                *mine.entry(surface.clone()).or_default() += n;
            }
        }
    }

    /// Words and phrases of one text.
    fn add_text(&mut self, splitter: &WordSplitter, text: &str) {
        let words = splitter.words(text);
        let chars: Vec<char> = if words.len() > 1 {
            text.chars().collect()
        } else {
            Vec::new()
        };
        for pair in words.windows(2) {
            if pair[0].runs_into(&pair[1], &chars) && pair[0].key != pair[1].key {
                self.add(
                    format!("{}{PHRASE_JOIN}{}", pair[0].key, pair[1].key),
                    format!("{}{PHRASE_JOIN}{}", pair[0].surface, pair[1].surface),
                );
            }
        }
        for Word { key, surface, .. } in words {
            self.add(key, surface);
        }
    }
}

/// A phrase as written: Chinese words run together, others keep a space ("AI 泡沫").
fn show_phrase(joined: &str) -> String {
    match joined.split_once(PHRASE_JOIN) {
        None => joined.to_string(),
        Some((a, b)) => {
            let cjk_end = a.chars().last().is_some_and(words::is_cjk);
            let cjk_start = b.chars().next().is_some_and(words::is_cjk);
            if cjk_end && cjk_start {
                format!("{a}{b}")
            } else {
                format!("{a} {b}")
            }
        }
    }
}

/// A word gives way to a phrase that holds it when at least this share of its uses in the theme
/// are in that phrase: 霸权 to 美元霸权 where a theme's 霸权 is nearly always 美元霸权 (a word
/// used in many phrases, like 算力, stays a word).
const PHRASE_SHARE: f64 = 0.8;

/// A phrase must be used this often in a theme to be shown: rarer pairs are chance.
const MIN_PHRASE_COUNT: f64 = 3.0;

/// Texts segmented per task: enough for the cores to share the work and the progress to move,
/// few enough that merging the partial counts stays cheap.
const TEXTS_PER_TASK: usize = 2048;

/// Counts the words of every theme, segmenting texts in parallel. Memory holds counts, never
/// the texts' word lists.
fn count_words(texts: &[&str], labels: &[usize], k: usize, progress: &dyn Progress) -> Vec<ThemeWords> {
    let splitter = WordSplitter::new();
    progress.start("counting keywords", texts.len() as u64, "passages");
    let words = texts
        .par_chunks(TEXTS_PER_TASK)
        .zip(labels.par_chunks(TEXTS_PER_TASK))
        .map(|(texts, labels)| {
            let mut themes = vec![ThemeWords::default(); k];
            for (text, &theme) in texts.iter().zip(labels) {
                themes[theme].add_text(&splitter, text);
            }
            progress.advance(texts.len() as u64, 0);
            themes
        })
        .reduce(
            || vec![ThemeWords::default(); k],
            |mut a, b| {
                for (mine, theirs) in a.iter_mut().zip(&b) {
                    mine.merge(theirs);
                }
                a
            },
        );
    progress.finish();
    words
}

/// Keywords of each theme of a flat clustering: `labels[i]` is the theme of `texts[i]`,
/// `centroids` one unit row per theme. With an embedder, candidates are re-ranked by MMR
/// against the centroid.
pub fn theme_keywords(
    texts: &[&str],
    labels: &[usize],
    centroids: ArrayView2<f32>,
    embedder: Option<&dyn Embedder>,
    options: KeywordOptions,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Keyword>>> {
    let parents = vec![None; centroids.nrows()];
    tree_keywords(texts, labels, &parents, centroids, embedder, options, progress)
}

/// Keywords of every theme of a tree. `parents[t]` is theme t's parent (themes in preorder: a
/// parent before its children), `labels[i]` the deepest theme of `texts[i]`. A theme's words
/// are those of all texts below it, weighed by c-TF-IDF against its siblings only, so that a
/// sub-theme's words tell it apart from the other sub-themes of its parent.
pub fn tree_keywords(
    texts: &[&str],
    labels: &[usize],
    parents: &[Option<usize>],
    centroids: ArrayView2<f32>,
    embedder: Option<&dyn Embedder>,
    options: KeywordOptions,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Keyword>>> {
    let k = parents.len();
    let mut words = count_words(texts, labels, k, progress);
    // Children after parents: pooling from the end sums every theme's whole subtree.
    for t in (0..k).rev() {
        if let Some(p) = parents[t] {
            let child = std::mem::take(&mut words[t]);
            words[p].merge(&child);
            words[t] = child;
        }
    }
    let mut candidates: Vec<Vec<(String, f32)>> = vec![Vec::new(); k];
    let mut sibling_sets: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
    for (t, &p) in parents.iter().enumerate() {
        sibling_sets.entry(p).or_default().push(t);
    }
    for siblings in sibling_sets.values() {
        let counts: Vec<&HashMap<String, f64>> = siblings.iter().map(|&t| &words[t].counts).collect();
        // Phrases compete with words; a few extra candidates make room for them.
        for (&t, scored) in siblings.iter().zip(class_tfidf_of(&counts, options.candidates * 2)) {
            candidates[t] = prefer_phrases(scored, &words[t].counts, options.candidates);
        }
    }
    let shown = |theme: usize, key: &str| -> String {
        let forms = &words[theme].surfaces[key];
        // Most frequent spelling; ties broken alphabetically so output is stable.
        let surface = forms
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| key.to_string());
        show_phrase(&surface)
    };

    let Some(embedder) = embedder else {
        return Ok(candidates
            .iter()
            .enumerate()
            .map(|(t, c)| {
                c.iter()
                    .take(options.count)
                    .map(|(key, score)| Keyword {
                        word: shown(t, key),
                        score: *score,
                    })
                    .collect()
            })
            .collect());
    };
    // Embed every distinct candidate once, as a search query would be.
    let unique: BTreeSet<String> = candidates
        .iter()
        .enumerate()
        .flat_map(|(t, c)| c.iter().map(move |(key, _)| (t, key)))
        .map(|(t, key)| shown(t, key))
        .collect();
    let unique: Vec<String> = unique.into_iter().collect();
    let refs: Vec<&str> = unique.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs, Prompt::Query, &Silent)?;
    let row_of: HashMap<&str, usize> = unique.iter().enumerate().map(|(i, w)| (w.as_str(), i)).collect();

    Ok(candidates
        .iter()
        .enumerate()
        .map(|(t, cands)| {
            let words: Vec<(String, f32)> = cands.iter().map(|(key, score)| (shown(t, key), *score)).collect();
            let rows: Vec<usize> = words.iter().map(|(w, _)| row_of[w.as_str()]).collect();
            // Relevance blends meaning (closeness to the centroid) with distinctiveness (c-TF-IDF),
            // each scaled to its best candidate: either alone favours generic or odd words.
            let closeness: Vec<f32> = rows.iter().map(|&r| vectors.row(r).dot(&centroids.row(t))).collect();
            let top_closeness = closeness.iter().copied().fold(f32::EPSILON, f32::max);
            let top_score = words.iter().map(|w| w.1).fold(f32::EPSILON, f32::max);
            let relevance: Vec<f32> = closeness
                .iter()
                .zip(&words)
                .map(|(c, w)| 0.5 * c / top_closeness + 0.5 * w.1 / top_score)
                .collect();
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < options.count.min(words.len()) {
                let pick = (0..words.len())
                    .filter(|i| !chosen.contains(i))
                    .map(|i| {
                        let redundancy = chosen
                            .iter()
                            .map(|&j| vectors.row(rows[i]).dot(&vectors.row(rows[j])))
                            .fold(0.0f32, f32::max);
                        (
                            i,
                            (1.0 - options.diversity) * relevance[i] - options.diversity * redundancy,
                        )
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(i, _)| i)
                    .expect("candidates remain");
                chosen.push(pick);
            }
            chosen
                .into_iter()
                .map(|i| Keyword {
                    word: words[i].0.clone(),
                    score: words[i].1,
                })
                .collect()
        })
        .collect())
}

/// c-TF-IDF (Grootendorst 2022): a word's frequency within its class (L1-normalised) times
/// log(1 + average words per class / the word's frequency over all classes). Returns the top
/// `limit` (key, weight) of each class, best first, ties alphabetical.
pub fn class_tfidf(counts: &[HashMap<String, f64>], limit: usize) -> Vec<Vec<(String, f32)>> {
    class_tfidf_of(&counts.iter().collect::<Vec<_>>(), limit)
}

fn class_tfidf_of(counts: &[&HashMap<String, f64>], limit: usize) -> Vec<Vec<(String, f32)>> {
    let mut overall: HashMap<&str, f64> = HashMap::new();
    for class in counts {
        for (key, n) in class.iter() {
            *overall.entry(key).or_default() += n;
        }
    }
    let average = counts.iter().map(|c| c.values().sum::<f64>()).sum::<f64>() / counts.len().max(1) as f64;
    counts
        .iter()
        .map(|class| {
            let total: f64 = class.values().sum::<f64>().max(1.0);
            let mut scored: Vec<(String, f32)> = class
                .iter()
                .map(|(key, n)| {
                    (
                        key.clone(),
                        ((n / total) * (1.0 + average / overall[key.as_str()]).ln()) as f32,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored.truncate(limit);
            scored
        })
        .collect()
}

/// The candidates with phrases in place of their words where the words are mostly used in them
/// ([`PHRASE_SHARE`]); rare phrases dropped; at most `limit`, best first.
fn prefer_phrases(scored: Vec<(String, f32)>, counts: &HashMap<String, f64>, limit: usize) -> Vec<(String, f32)> {
    let phrases: Vec<&(String, f32)> = scored
        .iter()
        .filter(|(key, _)| key.contains(PHRASE_JOIN) && counts[key] >= MIN_PHRASE_COUNT)
        .collect();
    let mut out: Vec<(String, f32)> = Vec::new();
    for (key, score) in &scored {
        let chosen = if key.contains(PHRASE_JOIN) {
            if counts[key] < MIN_PHRASE_COUNT {
                continue;
            }
            key.clone()
        } else {
            // The most used phrase holding this word, if it holds most of the word's uses.
            phrases
                .iter()
                .filter(|(p, _)| p.split(PHRASE_JOIN).any(|part| part == key))
                .max_by(|a, b| counts[&a.0].total_cmp(&counts[&b.0]).then(b.0.cmp(&a.0)))
                .filter(|(p, _)| counts[p] >= PHRASE_SHARE * counts[key])
                .map_or_else(|| key.clone(), |(p, _)| p.clone())
        };
        if !out.iter().any(|(k, _)| *k == chosen) {
            out.push((chosen, *score));
        }
        if out.len() == limit {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn distinctive_words_win_over_shared_ones() {
        let texts = ["关税 贸易战 美国 关税", "美元 霸权 美国 美元", "關稅 法院 美國"];
        let labels = [0, 1, 0];
        let keywords = theme_keywords(
            &texts,
            &labels,
            Array2::zeros((2, 4)).view(),
            None,
            KeywordOptions::default(),
            &Silent,
        )
        .unwrap();
        assert_eq!(keywords[0][0].word, "关税", "{keywords:?}");
        assert_eq!(keywords[1][0].word, "美元", "{keywords:?}");
        let shared = keywords[0].iter().find(|k| k.word == "美国").unwrap();
        assert!(shared.score < keywords[0][0].score);
    }

    #[test]
    fn sub_themes_are_told_apart_from_their_siblings() {
        // Theme 0 has sub-themes 1 (trade) and 2 (courts); theme 3 is the dollar.
        let texts = [
            "关税 贸易 美国",
            "关税 贸易 出口",
            "关税 法院 裁决",
            "关税 法院 判决",
            "美元 储备 货币",
            "美元 储备 结算",
        ];
        let labels = [1, 1, 2, 2, 3, 3];
        let parents = [None, Some(0), Some(0), None];
        let keywords = tree_keywords(
            &texts,
            &labels,
            &parents,
            Array2::zeros((4, 4)).view(),
            None,
            KeywordOptions::default(),
            &Silent,
        )
        .unwrap();
        assert_eq!(keywords[0][0].word, "关税", "{keywords:?}");
        assert_eq!(keywords[1][0].word, "贸易", "{keywords:?}");
        assert_eq!(keywords[2][0].word, "法院", "{keywords:?}");
        assert!(keywords[3][..2].iter().any(|k| k.word == "美元"), "{keywords:?}");
        // A word all siblings share ranks below the words that set each apart.
        assert!(keywords[1][0].score > keywords[1][1].score);
    }

    #[test]
    fn phrases_replace_the_words_they_hold() {
        let texts = [
            "美元霸权正在动摇。",
            "所谓美元霸权，是结算体系。",
            "美元霸权与储备货币。",
            "美元 储备",
            "对等关税的影响。",
            "对等关税再次上调。",
            "AI 泡沫会不会破裂？",
            "AI 泡沫与投资。",
            "AI 泡沫。",
        ];
        let labels = [0, 0, 0, 0, 1, 1, 2, 2, 2];
        let keywords = theme_keywords(
            &texts,
            &labels,
            Array2::zeros((3, 4)).view(),
            None,
            KeywordOptions::default(),
            &Silent,
        )
        .unwrap();
        let words = |t: usize| keywords[t].iter().map(|k| k.word.as_str()).collect::<Vec<_>>();
        assert!(words(0).contains(&"美元霸权"), "{:?}", words(0));
        assert!(words(2).contains(&"AI 泡沫"), "{:?}", words(2));
        assert!(
            !words(2).contains(&"泡沫"),
            "the word gave way to the phrase: {:?}",
            words(2)
        );
    }
}
