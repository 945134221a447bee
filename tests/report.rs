//! The theme map on a synthetic index (no model): themes found, keywords, recurrence, writers.

use ndarray::Array2;
use themap::corpus::{Metadata, Passage};
use themap::embed::{Dtype, Prompt};
use themap::index::{BuildSettings, ClusteringSample, DocumentRecord, Index, ModelInfo, PassageRecord};
use themap::report::{html, json, markdown};
use themap::themes::{ThemeMap, ThemeOptions, ThemeVectors};
use themap::Silent;

const TOPICS: [(&str, &[&str]); 3] = [
    (
        "tariff",
        &[
            "美国对中国商品加征关税，贸易战升级。",
            "川普的关税政策面临最高法院的挑战。",
            "關稅戰衝擊全球供應鏈，貿易談判陷入僵局。",
        ],
    ),
    (
        "dollar",
        &[
            "美元霸权正在衰落，多极货币秩序萌芽。",
            "金砖国家推动本币结算，去美元化加速。",
            "美元的避險地位依舊，但美債不再是避風港。",
        ],
    ),
    (
        "ai",
        &[
            "人工智能泡沫一旦破裂，科技巨头都将受到牵连。",
            "算力投资狂潮推高资本支出，AI泡沫风险上升。",
            "資料中心耗電驚人，算力競賽推動電力升級。",
        ],
    ),
];

/// Three documents, one per topic, dated; vectors are three tight blobs (seeded jitter).
fn synthetic_index() -> Index {
    let mut passages = Vec::new();
    let mut rows = Vec::new();
    let mut documents = Vec::new();
    let mut state = 7u64;
    let mut jitter = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.3
    };
    for (t, (doc, texts)) in TOPICS.iter().enumerate() {
        let count = 12;
        for i in 0..count {
            let text = texts[i % texts.len()];
            passages.push(PassageRecord {
                passage: Passage {
                    id: format!("{doc}#{}", i + 1),
                    doc_id: doc.to_string(),
                    ordinal: i as u32 + 1,
                    section: None,
                    char_start: i * 30,
                    char_end: i * 30 + 20,
                    line: i + 1,
                    text: format!("{text}（第{i}段）"),
                },
                hash: format!("{t}-{i}"),
            });
            let mut v = vec![0.0f32; 8];
            v[t * 2] = 1.0;
            for x in v.iter_mut() {
                *x += jitter();
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            rows.extend(v.iter().map(|x| x / norm));
        }
        documents.push(DocumentRecord {
            id: doc.to_string(),
            path: format!("{doc}.md").into(),
            encoding: "UTF-8".into(),
            meta: Metadata {
                title: Some(format!("关于{doc}的文章")),
                date: Some(format!("2025-0{}-01", 3 - t)),
                ..Metadata::default()
            },
            passages: count,
        });
    }
    let n = passages.len();
    Index {
        model: ModelInfo {
            name: "test".into(),
            checksum: "0".into(),
            dims: 8,
            prompt: Prompt::Document,
            dtypes: vec![Dtype::F32],
        },
        settings: BuildSettings {
            sources: vec![],
            max_tokens: 256,
            min_tokens: 51,
        },
        documents,
        passages,
        vectors: Array2::from_shape_vec((n, 8), rows).unwrap(),
        clustering_vectors: None,
        clustering_sample: None,
        graph: None,
        generation: None,
    }
}

/// The synthetic index has search vectors only.
fn options() -> ThemeOptions {
    ThemeOptions {
        vectors: ThemeVectors::Document,
        ..ThemeOptions::default()
    }
}

fn render(map: &ThemeMap) -> (String, String, String) {
    let (mut j, mut m, mut h) = (Vec::new(), Vec::new(), Vec::new());
    json::write(map, &mut j).unwrap();
    markdown::write(map, &mut m).unwrap();
    html::write(map, &mut h).unwrap();
    (
        String::from_utf8(j).unwrap(),
        String::from_utf8(m).unwrap(),
        String::from_utf8(h).unwrap(),
    )
}

#[test]
fn themes_keywords_and_recurrence() {
    let index = synthetic_index();
    let map = ThemeMap::build(index.clone(), None, &options(), &Silent).unwrap();
    assert_eq!(map.top_themes().count(), 3, "levels {:?}", map.levels);
    for theme in map.top_themes() {
        assert_eq!(theme.size, 12);
        assert_eq!(theme.documents.len(), 1);
        assert!((theme.documents[0].share - 1.0).abs() < 1e-6);
        let words: Vec<&str> = theme.keywords.iter().map(|k| k.word.as_str()).collect();
        let expected = match theme.documents[0].id.as_str() {
            "tariff" => "关税",
            "dollar" => "美元",
            _ => "算力",
        };
        // The word, or a phrase holding it.
        assert!(
            words.iter().any(|w| w.contains(expected)),
            "{} keywords {words:?}",
            theme.documents[0].id
        );
        assert_eq!(theme.representatives.len(), 3);
    }
    assert_eq!(map.points.len(), index.passages.len());
    let dates: Vec<&str> = map.timeline.iter().map(|e| e.date.as_str()).collect();
    assert_eq!(dates, ["2025-01-01", "2025-02-01", "2025-03-01"]);
    assert_eq!(map.levels.len(), 2);
    assert!(map.levels[0].chosen_automatically);
}

#[test]
fn same_input_same_report() {
    let index = synthetic_index();
    let a = render(&ThemeMap::build(index.clone(), None, &options(), &Silent).unwrap());
    let b = render(&ThemeMap::build(index.clone(), None, &options(), &Silent).unwrap());
    assert_eq!(a, b);
}

#[test]
fn writers_show_every_passage_and_theme() {
    let index = synthetic_index();
    let map = ThemeMap::build(
        index.clone(),
        None,
        &ThemeOptions {
            counts: vec![Some(3), None],
            ..options()
        },
        &Silent,
    )
    .unwrap();
    let (json, markdown, html) = render(&map);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["schema_version"], 3);
    let themes = parsed["themes"].as_array().unwrap();
    assert_eq!(themes.iter().filter(|t| t["level"] == 1).count(), 3);
    for t in themes {
        let path = t["path"].as_str().unwrap();
        match t["parent"].as_u64() {
            None => assert_eq!(t["level"], 1),
            Some(parent) => {
                let parent = &themes[parent as usize - 1];
                assert!(
                    path.starts_with(&format!("{}.", parent["path"].as_str().unwrap())),
                    "{path}"
                );
                assert_eq!(t["level"].as_u64().unwrap(), parent["level"].as_u64().unwrap() + 1);
            }
        }
    }
    assert!(parsed.get("points").is_none(), "points stay out of themes.json");
    let meta = between(&html, r#"<script id="map-meta" type="application/json">"#, "</script>");
    let meta: serde_json::Value = serde_json::from_str(meta).unwrap();
    assert_eq!(
        meta["n"],
        index.passages.len(),
        "one point per passage in the map's data"
    );
    assert!(!between(
        &html,
        r#"<script id="map-data" type="application/octet-stream">"#,
        "</script>"
    )
    .is_empty());
    for theme in &map.themes {
        assert!(html.contains(&html::esc(&theme.label)) && markdown.contains(&theme.label));
    }
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains(" src="),
        "the page must not fetch anything"
    );
    assert!(markdown.contains("## Documents × themes") && markdown.contains("## Timeline"));
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap_or_else(|| panic!("no {open}")) + open.len();
    &text[start..start + text[start..].find(close).unwrap()]
}

#[test]
fn clustering_vectors_or_a_sample_are_required_when_asked_for() {
    let clustering = ThemeOptions {
        vectors: ThemeVectors::Clustering,
        ..options()
    };
    let err = ThemeMap::build(synthetic_index(), None, &clustering, &Silent).unwrap_err();
    assert!(err.to_string().contains("clustering vectors"), "{err}");
    let mapped = ThemeOptions {
        vectors: ThemeVectors::Mapped,
        ..options()
    };
    let err = ThemeMap::build(synthetic_index(), None, &mapped, &Silent).unwrap_err();
    assert!(err.to_string().contains("clustering sample"), "{err}");

    // A sample of passages "embedded with the clustering prompt" (here: their vectors with the
    // first coordinates emphasised) is enough to map every passage and find the themes.
    let mut index = synthetic_index();
    let rows: Vec<usize> = (0..index.passages.len()).step_by(2).collect();
    let mut vectors = index.vectors.select(ndarray::Axis(0), &rows);
    vectors.column_mut(0).mapv_inplace(|v| 2.0 * v);
    index.clustering_sample = Some(ClusteringSample {
        hashes: rows.iter().map(|&r| index.passages[r].hash.clone()).collect(),
        vectors: themap::cluster::normalize_rows(vectors),
    });
    let map = ThemeMap::build(index, None, &mapped, &Silent).unwrap();
    assert_eq!(map.top_themes().count(), 3, "levels {:?}", map.levels);
    assert!(map.top_themes().all(|t| t.size == 12));
}

#[test]
fn named_themes_need_the_model() {
    let options = ThemeOptions {
        names: vec!["tariffs".into()],
        ..options()
    };
    assert!(ThemeMap::build(synthetic_index(), None, &options, &Silent).is_err());
}

/// A report of thousands of documents and hundreds of dates stays readable: themes.json lists
/// the largest documents with counts of all, and the timeline gathers dates into months.
#[test]
fn large_reports_list_the_largest_documents_and_gather_dates() {
    let mut shape = crate::common::synthetic::Clustered::new(16, 5);
    shape.clusters = 8;
    let model = synthetic_index().model;
    // 20 passages a document, one date a day: 300 documents, 300 dates.
    let (index, _) = crate::common::synthetic::index(&shape, 6000, ModelInfo { dims: 16, ..model });
    let options = ThemeOptions {
        counts: vec![Some(8)],
        map: false,
        ..options()
    };
    let map = ThemeMap::build(index, None, &options, &Silent).unwrap();
    let (json, markdown, html) = render(&map);
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["document_count"], 300);
    assert_eq!(
        parsed["documents"].as_array().unwrap().len(),
        themap::themes::LISTED_DOCUMENTS
    );
    for theme in parsed["themes"].as_array().unwrap() {
        let listed = theme["documents"].as_array().unwrap().len();
        assert!(
            listed <= themap::themes::LISTED_DOCUMENTS && listed <= theme["document_count"].as_u64().unwrap() as usize
        );
    }
    let (unit, bars) = map.timeline_in_bars(themap::report::TIMELINE_BARS);
    assert_eq!(unit, "month");
    assert!(
        bars.len() <= themap::report::TIMELINE_BARS && bars.len() > 1,
        "{} bars",
        bars.len()
    );
    let by_date: usize = map.timeline.iter().flat_map(|e| &e.counts).sum();
    let by_month: usize = bars.iter().flat_map(|e| &e.counts).sum();
    assert_eq!(by_date, by_month, "gathering loses no passage");
    assert!(html.contains("by the month of their document") && markdown.contains("| month | documents |"));
    assert!(html.contains("documents with the most passages are shown, of 300"));
    assert!(markdown.contains("The 50 documents with the most passages, of 300"));
}

/// Above `html::INLINE_MAX_PASSAGES` the map's data goes to `map-data.js` beside the page: the
/// same bytes as inline, loaded by a script element.
#[test]
fn a_split_page_loads_the_same_data_from_beside_it() {
    let map = ThemeMap::build(synthetic_index(), None, &options(), &Silent).unwrap();
    assert!(!html::data_beside(&map));
    let (mut page, mut beside, mut inline) = (Vec::new(), Vec::new(), Vec::new());
    html::write_split(&map, &mut page, &mut beside).unwrap();
    html::write(&map, &mut inline).unwrap();
    let (page, beside, inline) = (
        String::from_utf8(page).unwrap(),
        String::from_utf8(beside).unwrap(),
        String::from_utf8(inline).unwrap(),
    );
    assert!(page.contains(&format!(r#"<script src="{}"></script>"#, html::DATA_FILE)));
    assert!(!page.contains(r#"id="map-data""#));
    let blob = between(
        &inline,
        r#"<script id="map-data" type="application/octet-stream">"#,
        "</script>",
    );
    assert_eq!(beside, format!("window.themapMapData = \"{blob}\";\n"));
}
