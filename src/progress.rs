//! Progress reporting, injected by the caller: the library only says how far it got.

/// Receives progress from long-running work. Non-critical: implementations must not fail.
pub trait Progress: Send + Sync {
    /// Work named `label` with `total` units (passages, k values, runs: `unit`, plural) begins;
    /// a total of 0 means unknown.
    fn start(&self, _label: &str, _total: u64, _unit: &str) {}
    /// `units` more are done; `tokens` of them were model tokens (0 where not meaningful).
    fn advance(&self, _units: u64, _tokens: u64) {}
    /// The work is finished.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}
