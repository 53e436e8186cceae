//! lcurve: a learning-curve experiment tracker and hyperparameter sweeper (library part).

pub mod data;
pub mod inspect;
pub mod lock;
pub mod output;
pub mod replay;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod spec;
pub mod stopping;
pub mod store;
pub mod trainer;
pub mod util;
