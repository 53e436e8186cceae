//! Fuzz target: any bytes as a sweep file. Parsing must never panic; a file that parses and
//! is small enough must expand to exactly the number of trials the cap counts.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = lcurve::spec::parse(Path::new("fuzz.toml"), text) else {
        return;
    };
    let count = lcurve::spec::trial_count(&spec);
    if count > 5_000 || spec.data.task.is_none() {
        return;
    }
    // Random search may give up on a space too small for its trials; that is an error, not a
    // panic. A grid always expands to exactly its count.
    if let Ok(trials) = lcurve::spec::expand(&spec) {
        assert_eq!(trials.len() as u128, count);
    }
});
