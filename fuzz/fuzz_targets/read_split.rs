//! Arbitrary bytes through reading (encoding detection, binary check, front matter, JSONL),
//! cleaning and splitting with the model's tokenizer: no panic, passages well formed, memory
//! bounded (libFuzzer's -rss_limit_mb). The tokenizer comes from THEMAP_MODEL or the default
//! model directory.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use themap::corpus::{passages_of_bytes, ReadOptions, SplitOptions};
use themap::embed::ModelTokenizer;

fn tokenizer() -> &'static ModelTokenizer {
    static TOKENIZER: OnceLock<ModelTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let dir = std::env::var_os("THEMAP_MODEL").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/themap/models/embeddinggemma-300m")
        });
        ModelTokenizer::open(&dir, None).expect("the model's tokenizer (scripts/fetch-model.sh)")
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the file kind and a small budget, so cuts happen on small inputs too.
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let path = Path::new(if pick & 1 == 0 { "doc.txt" } else { "doc.jsonl" });
    let split = SplitOptions::with_max_tokens(16 + (pick as usize >> 1) % 48);
    let count = |text: &str| tokenizer().count_tokens(text);
    let Ok(passages) = passages_of_bytes(path, bytes, ReadOptions::default(), &split, &count) else {
        return;
    };
    for (i, passage) in passages.iter().enumerate() {
        assert!(passage.char_start <= passage.char_end, "{passage:?}");
        assert!(!passage.text.trim().is_empty(), "{passage:?}");
        assert!(!passage.text.chars().any(|c| c.is_control() && c != '\n'), "{passage:?}");
        if i > 0 && passages[i - 1].doc_id == passage.doc_id {
            assert_eq!(passage.ordinal, passages[i - 1].ordinal + 1);
        }
    }
});
