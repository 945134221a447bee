//! Stage 6: naming themes. Class-based TF-IDF picks the words that set a theme apart from the
//! others; maximal marginal relevance (MMR) then keeps words close to the theme's centroid but
//! unlike each other, so a label is not five spellings of one word.

pub mod stopwords;
pub mod words;

use std::collections::{BTreeSet, HashMap};

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

/// Word counts of each theme: by key, and by spelling within a key.
#[derive(Default, Clone)]
struct ThemeWords {
    counts: HashMap<String, f64>,
    surfaces: HashMap<String, HashMap<String, usize>>,
}

impl ThemeWords {
    fn add(&mut self, Word { key, surface }: Word) {
        *self
            .surfaces
            .entry(key.clone())
            .or_default()
            .entry(surface)
            .or_default() += 1;
        *self.counts.entry(key).or_default() += 1.0;
    }

    fn merge(&mut self, other: ThemeWords) {
        for (key, n) in other.counts {
            *self.counts.entry(key).or_default() += n;
        }
        for (key, forms) in other.surfaces {
            let mine = self.surfaces.entry(key).or_default();
            for (surface, n) in forms {
                *mine.entry(surface).or_default() += n;
            }
        }
    }
}

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
                for word in splitter.words(text) {
                    themes[theme].add(word);
                }
            }
            progress.advance(texts.len() as u64, 0);
            themes
        })
        .reduce(
            || vec![ThemeWords::default(); k],
            |mut a, b| {
                for (mine, theirs) in a.iter_mut().zip(b) {
                    mine.merge(theirs);
                }
                a
            },
        );
    progress.finish();
    words
}

/// Keywords of each theme: `labels[i]` is the theme of `texts[i]`, `centroids` one unit row per
/// theme. With an embedder, candidates are re-ranked by MMR against the centroid.
pub fn theme_keywords(
    texts: &[&str],
    labels: &[usize],
    centroids: ArrayView2<f32>,
    embedder: Option<&dyn Embedder>,
    options: KeywordOptions,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Keyword>>> {
    let k = centroids.nrows();
    let (counts, surfaces): (Vec<_>, Vec<_>) = count_words(texts, labels, k, progress)
        .into_iter()
        .map(|w| (w.counts, w.surfaces))
        .unzip();
    let candidates = class_tfidf(&counts, options.candidates);
    let shown = |theme: usize, key: &str| -> String {
        let forms = &surfaces[theme][key];
        // Most frequent spelling; ties broken alphabetically so output is stable.
        forms
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| key.to_string())
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
    let mut overall: HashMap<&str, f64> = HashMap::new();
    for class in counts {
        for (key, n) in class {
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
}
