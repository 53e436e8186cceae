//! The integration test binary (one binary keeps link time down). Each module says what
//! belongs in it.

mod cli;
mod data;
mod properties;
mod reliability;
mod report;
mod scheduler;
mod spec;
mod store;
mod support;
mod train;
