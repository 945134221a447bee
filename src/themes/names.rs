//! Labels for every theme of a tree: a named theme keeps its name; the others take three of
//! their keywords, leaving out the words of their parent's label (a sub-theme's label says what
//! sets it apart, not what it shares), and unique among the themes of their level.

use std::collections::HashSet;

use crate::cluster::Node;
use crate::label::Keyword;

/// Words a label is made of.
const LABEL_WORDS: usize = 3;
/// Joins a label's words.
pub const SEPARATOR: &str = " · ";

/// A label for each theme; `nodes` in preorder (a parent before its children).
pub fn labels(nodes: &[Node], keywords: &[Vec<Keyword>], name_of: impl Fn(usize) -> Option<String>) -> Vec<String> {
    let mut labels: Vec<String> = Vec::with_capacity(nodes.len());
    let mut taken: HashSet<(usize, String)> = HashSet::new();
    for (t, node) in nodes.iter().enumerate() {
        let level = node.level;
        let label = match name_of(t) {
            Some(name) => name,
            None => {
                let parent_words: HashSet<&str> = node
                    .parent
                    .map(|p| labels[p].split(SEPARATOR).collect())
                    .unwrap_or_default();
                let own: Vec<&str> = keywords[t]
                    .iter()
                    .map(|k| k.word.as_str())
                    .filter(|w| !parent_words.contains(w))
                    .collect();
                let words: Vec<&str> = if own.is_empty() {
                    keywords[t].iter().map(|k| k.word.as_str()).collect()
                } else {
                    own
                };
                let free = choices(&words).find(|label| !taken.contains(&(level, label.clone())));
                free.unwrap_or_else(|| {
                    let base = words
                        .iter()
                        .take(LABEL_WORDS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(SEPARATOR);
                    match base.is_empty() {
                        true => format!("theme {}", node.path_label()),
                        false => format!("{base} ({})", node.path_label()),
                    }
                })
            }
        };
        taken.insert((level, label.clone()));
        labels.push(label);
    }
    labels
}

/// Labels to try, best first: the first three words, then any three in order; never a word
/// beside a phrase that holds it (美元霸权 says 美元 already).
fn choices<'a>(words: &'a [&'a str]) -> impl Iterator<Item = String> + 'a {
    let n = words.len();
    let join = |picked: &[usize]| picked.iter().map(|&i| words[i]).collect::<Vec<_>>().join(SEPARATOR);
    let apart = move |picked: &[usize]| {
        picked
            .iter()
            .all(|&a| picked.iter().all(|&b| a == b || !words[b].contains(words[a])))
    };
    // The best words, in order, each not inside another chosen one.
    let mut first: Vec<usize> = Vec::new();
    for i in 0..n {
        if first.len() == LABEL_WORDS {
            break;
        }
        first.retain(|&j| !words[i].contains(words[j]));
        if !first.iter().any(|&j| words[j].contains(words[i])) {
            first.push(i);
        }
    }
    let first = (!first.is_empty()).then(|| join(&first));
    let triples = (0..n)
        .flat_map(move |a| (a + 1..n).flat_map(move |b| (b + 1..n).map(move |c| [a, b, c])))
        .filter(move |p| apart(p));
    first.into_iter().chain(triples.map(move |p| join(&p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(parent: Option<usize>, path: Vec<usize>) -> Node {
        Node {
            parent,
            children: Vec::new(),
            level: path.len(),
            path,
            leaves: Vec::new(),
            seed: None,
            weight: 1,
        }
    }

    fn words(list: &[&str]) -> Vec<Keyword> {
        list.iter()
            .map(|w| Keyword {
                word: w.to_string(),
                score: 1.0,
            })
            .collect()
    }

    #[test]
    fn labels_are_unique_per_level_and_never_the_parents() {
        let nodes = vec![
            node(None, vec![1]),
            node(Some(0), vec![1, 1]),
            node(Some(0), vec![1, 2]),
            node(None, vec![2]),
        ];
        let keywords = vec![
            words(&["关税", "贸易", "美国"]),
            words(&["关税", "贸易", "美国", "出口"]),
            words(&["关税", "贸易", "美国", "出口", "法院"]),
            words(&["关税", "贸易", "美国"]),
        ];
        let labels = labels(&nodes, &keywords, |_| None);
        assert_eq!(labels[0], "关税 · 贸易 · 美国");
        assert_eq!(labels[1], "出口", "the parent's words left out: {labels:?}");
        assert_ne!(labels[2], labels[1]);
        assert!(!labels[2].contains("关税"));
        assert_ne!(labels[3], labels[0], "two top-level themes never share a label");
    }

    #[test]
    fn a_phrase_is_not_shown_beside_its_words() {
        let nodes = vec![node(None, vec![1])];
        let keywords = vec![words(&["美元", "霸權", "美元霸權", "川普", "關稅"])];
        assert_eq!(labels(&nodes, &keywords, |_| None), ["美元霸權 · 川普 · 關稅"]);
    }

    #[test]
    fn named_themes_keep_their_names() {
        let nodes = vec![node(None, vec![1]), node(Some(0), vec![1, 1])];
        let keywords = vec![words(&["关税"]), words(&["tariffs", "法院"])];
        let labels = labels(&nodes, &keywords, |t| (t == 0).then(|| "tariffs".to_string()));
        assert_eq!(labels, ["tariffs", "法院"]);
    }
}
