//! themap: embedding-based topic maps and similar-passage search for multilingual text.
//!
//! The pipeline, one module per stage:
//! [`corpus`] reads and cleans documents and splits them into passages,
//! [`embed`] turns passages into unit vectors with EmbeddingGemma on candle,
//! [`index`] stores passages and vectors on disk and answers nearest-neighbour queries,
//! [`cluster`] groups passages into themes, [`label`] names them and [`report`] writes the
//! theme map.
//!
//! The library never prints or exits: it returns [`Error`] and reports progress through
//! [`Progress`]; the `themap` binary decides how to show both.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use themap::corpus::{self, ReadOptions, SplitOptions};
//! use themap::embed::{EmbedOptions, Embedder, EmbeddingModel, Prompt};
//! use themap::index::{BuildSettings, Filter, Index, Limits, ModelInfo, Vectors};
//!
//! # fn main() -> themap::Result<()> {
//! let model = EmbeddingModel::load(Path::new("/path/to/embeddinggemma-300m"), &EmbedOptions::default())?;
//! let sources = vec![PathBuf::from("data")];
//! let split = SplitOptions::default();
//! let corpus = corpus::load(&sources, ReadOptions::default(), &split, &|t| model.count_tokens(t))?;
//! let info = ModelInfo { name: model.name(), checksum: model.checksum().into(), dims: model.dim(), prompt: Prompt::Document, dtypes: vec![model.dtype()] };
//! let settings = BuildSettings { sources, max_tokens: split.max_tokens, min_tokens: split.min_tokens };
//! let (index, _stats) = Index::build(&corpus, Vectors::Embed(&model), info, settings, None, &themap::Silent)?;
//!
//! let query = model.embed(&["dollar hegemony"], Prompt::Query, &themap::Silent)?;
//! let limits = Limits { k: 5, per_doc: Some(3), ..Limits::default() };
//! for hit in index.search(query.row(0), &limits, &Filter::default())? {
//!     let passage = &index.passages[hit.row].passage;
//!     println!("{:.3} {} {}", hit.score, passage.id, passage.text);
//! }
//! # Ok(())
//! # }
//! ```

pub mod cluster;
pub mod corpus;
pub mod embed;
pub mod error;
pub mod fsutil;
pub mod hash;
pub mod index;
pub mod label;
pub mod npy;
pub mod progress;
pub mod report;
pub mod themes;

pub use error::{Error, Result};
pub use progress::{Progress, Silent};
