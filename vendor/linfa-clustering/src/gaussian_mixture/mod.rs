mod algorithm;
mod errors;
mod hyperparams;

pub use algorithm::*;
pub use errors::*;
pub use hyperparams::*;
