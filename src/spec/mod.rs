//! The sweep file: parsing and validation at the boundary, then grid expansion into trials.

mod error;
mod grid;
mod parse;
mod types;

pub use error::SpecError;
pub use grid::{PlannedTrial, TrialConfig, expand, grid_size};
pub use parse::{DEFAULT_MAX_TRIALS, load, parse};
pub use types::*;
