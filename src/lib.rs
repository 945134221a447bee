//! themap: embedding-based topic maps and similar-passage search for multilingual text.
//!
//! The pipeline, one module per stage:
//! [`corpus`] reads and cleans documents and splits them into passages,
//! [`embed`] turns passages into unit vectors with EmbeddingGemma on candle,
//! [`index`] stores passages and vectors on disk and answers nearest-neighbour queries.
//!
//! The library never prints or exits: it returns [`Error`] and reports progress through
//! [`Progress`]; the `themap` binary decides how to show both.

pub mod corpus;
pub mod embed;
pub mod error;
pub mod hash;
pub mod index;
pub mod npy;
pub mod progress;

pub use error::{Error, Result};
pub use progress::{Progress, Silent};
