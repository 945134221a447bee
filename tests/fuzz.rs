//! A short, seeded fuzz pass over reading and splitting, run with the tests (the coverage-guided
//! one is `fuzz/`, cargo-fuzz on nightly): sample files, JSONL, UTF-16, GB18030 and front
//! matter, web pages and feeds, mutated byte by byte, through the whole path from bytes to passages with the model's
//! tokenizer. No input may panic or give a malformed passage. THEMAP_FUZZ_CASES sets the number
//! of inputs (20,000 by default, about 20 s).

use std::path::Path;

use rand::{Rng, SeedableRng};
use themap::corpus::{passages_of_bytes, ReadOptions, SplitOptions};

use crate::common::tokenizer;

/// Inputs to start from: each kind of file the reader tells apart.
fn seeds() -> Vec<Vec<u8>> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let sample = std::fs::read_to_string(data.join("002_e81e739ff95e68b4.txt")).unwrap();
    let short: String = sample.chars().take(600).collect();
    let jsonl = format!(
        "{}\n{}\n",
        serde_json::json!({"id": "a", "text": short, "date": "2025-01-02", "tags": ["x"]}),
        serde_json::json!({"id": 7, "text": "美元霸权。Dollar hegemony."})
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(short.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let (gb18030, _, _) = encoding_rs::GB18030.encode(&short);
    vec![
        short.clone().into_bytes(),
        jsonl.into_bytes(),
        utf16,
        gb18030.into_owned(),
        format!("---\ntitle: [unclosed\ndate: 2025-13-45\n---\n# 标题\n\n{short}").into_bytes(),
        Vec::new(),
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>t</title><script>var a='<p>';</script></head>\
             <body><nav><a href=/>首页</a></nav><article><h1>标题</h1><h2>一</h2><p>{short}</p><p>{short}</p></article>\
             <footer>版权所有</footer></body></html>"
        )
        .into_bytes(),
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>c</title><item><title>t</title>\
             <pubDate>Mon, 03 Nov 2025 08:00:00 +0800</pubDate><description><![CDATA[<p>{short}</p>]]></description></item></channel></rss>"
        )
        .into_bytes(),
    ]
}

/// A few random edits: bytes flipped, inserted (NULs, invalid UTF-8, marks, newlines), slices
/// repeated or cut.
fn mutate(rng: &mut impl Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    const INSERTS: [&[u8]; 9] = [
        b"\0",
        b"\xff",
        b"\xe4\xb8",
        "。".as_bytes(),
        b"\n",
        b"\n\n",
        b"---\n",
        b"\r",
        b"\x1b[31m",
    ];
    for _ in 0..rng.gen_range(1..8) {
        let at = rng.gen_range(0..=bytes.len());
        match rng.gen_range(0..5) {
            0 if !bytes.is_empty() => {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let insert = INSERTS[rng.gen_range(0..INSERTS.len())];
                bytes.splice(at..at, insert.iter().copied());
            }
            2 if at < bytes.len() => {
                let end = rng.gen_range(at..=bytes.len().min(at + 200));
                let slice = bytes[at..end].to_vec();
                for _ in 0..rng.gen_range(1..20) {
                    bytes.splice(at..at, slice.iter().copied());
                }
            }
            3 => bytes.truncate(at),
            _ => bytes.insert(at, rng.gen()),
        }
    }
    bytes
}

#[test]
fn reading_and_splitting_arbitrary_bytes_never_fails_badly() {
    let cases: usize = std::env::var("THEMAP_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let tokenizer = tokenizer();
    let count = |text: &str| tokenizer.count_tokens(text);
    let seeds = seeds();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let (mut read, mut refused) = (0, 0);
    for case in 0..cases {
        let input = mutate(&mut rng, seeds[case % seeds.len()].clone());
        let path = Path::new(["doc.txt", "doc.jsonl", "doc.html", "doc.rss"][rng.gen_range(0..4)]);
        let split = SplitOptions::with_max_tokens(rng.gen_range(16..300));
        match passages_of_bytes(path, &input, ReadOptions::default(), &split, &count) {
            Err(_) => refused += 1,
            Ok(passages) => {
                read += 1;
                for (i, p) in passages.iter().enumerate() {
                    assert!(p.char_start <= p.char_end, "case {case}: {p:?}");
                    assert!(!p.text.trim().is_empty(), "case {case}: {p:?}");
                    assert!(
                        !p.text.chars().any(|c| c.is_control() && c != '\n'),
                        "case {case}: {p:?}"
                    );
                    if i > 0 && passages[i - 1].doc_id == p.doc_id {
                        assert_eq!(p.ordinal, passages[i - 1].ordinal + 1, "case {case}");
                    }
                }
            }
        }
    }
    // Both paths were exercised: mutations neither always break the input nor never do.
    assert!(
        read > cases / 10 && refused > cases / 100,
        "{read} read, {refused} refused"
    );
}
