//! Integration tests, one binary for compile time. Tests that run the model need the model
//! directory that `scripts/fetch-model.sh` fills (the README's test command runs it first).

mod browser;
mod cli;
mod cluster;
mod common;
mod embed_cli;
mod embed_golden;
mod fuzz;
mod hnsw;
mod hostile;
mod html;
mod import;
mod kept_themes;
mod mapped;
mod report;
mod store;
