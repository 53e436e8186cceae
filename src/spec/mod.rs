//! The sweep file: parsing and validation at the boundary, then expansion into trials.

mod error;
mod parse;
mod read_params;
mod space;
mod trials;
mod types;

pub use error::SpecError;
pub use parse::{DEFAULT_MAX_TRIALS, load, parse};
pub use space::{Branch, Domain, Kind, Param, Space, Value};
pub use trials::{
    ExpandError, ParamValue, PlannedTrial, TrialConfig, expand, trial_count, varying,
};
pub use types::*;
