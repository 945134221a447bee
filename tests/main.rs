//! Integration tests, one binary for compile time.

mod common;
mod embed_golden;
