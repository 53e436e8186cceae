//! Property tests of expansion: for generated sweep files, the trial count is the product
//! the cap uses, ordinals and ids are unique and stable, and key order does not matter.

use std::collections::HashSet;
use std::path::Path;

use lcurve::spec::{expand, parse, trial_count};
use proptest::prelude::*;

/// `(key, TOML value)` for one list of distinct values of a grid key.
fn key_lists() -> impl Strategy<Value = Vec<(String, String)>> {
    let lr = proptest::sample::subsequence(vec!["0.1", "0.03", "0.01", "0.003", "0.001"], 1..=4);
    let bs = proptest::sample::subsequence(vec!["8", "16", "32", "64", "128"], 1..=3);
    let ep = proptest::sample::subsequence(vec!["1", "2", "5", "10"], 1..=3);
    let act = proptest::sample::subsequence(
        vec!["\"relu\"", "\"tanh\"", "\"gelu\"", "\"sigmoid\""],
        1..=4,
    );
    let seeds = proptest::sample::subsequence(vec!["1", "2", "3"], 0..=3);
    let dropout = proptest::sample::subsequence(vec!["0.0", "0.1", "0.5"], 0..=2);
    (lr, bs, ep, act, seeds, dropout).prop_map(|(lr, bs, ep, act, seeds, dropout)| {
        let list = |v: Vec<&str>| format!("[{}]", v.join(", "));
        let mut keys = vec![
            ("learning_rate".to_string(), list(lr)),
            ("batch_size".to_string(), list(bs)),
            ("epochs".to_string(), list(ep)),
            ("activation".to_string(), list(act)),
        ];
        if !seeds.is_empty() {
            keys.push(("seed".to_string(), list(seeds)));
        }
        if !dropout.is_empty() {
            keys.push(("dropout".to_string(), list(dropout)));
        }
        keys
    })
}

fn sweep(keys: &[(String, String)], extra: &str) -> String {
    let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    format!("name = \"p\"\n[params]\n{body}{extra}")
}

fn list_len(v: &str) -> usize {
    v.matches(',').count() + 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn grid_count_ids_and_order(keys in key_lists(), rotate in 0usize..6) {
        let text = sweep(&keys, "");
        let spec = parse(Path::new("p.toml"), &text).unwrap();
        let trials = expand(&spec).unwrap();
        let product: usize = keys.iter().map(|(_, v)| list_len(v)).product();
        prop_assert_eq!(trials.len(), product);
        prop_assert_eq!(trial_count(&spec), product as u128);
        let ordinals: Vec<usize> = trials.iter().map(|t| t.ordinal).collect();
        prop_assert_eq!(ordinals, (0..product).collect::<Vec<_>>());
        let ids: HashSet<String> = trials.iter().map(|t| t.config.hash()).collect();
        prop_assert_eq!(ids.len(), product, "ids are unique");
        prop_assert_eq!(&expand(&spec).unwrap(), &trials, "stable");
        // The same keys in another order: the same trials, ids and spec.
        let mut moved = keys.clone();
        let n = moved.len();
        moved.rotate_left(rotate % n);
        let other = parse(Path::new("p.toml"), &sweep(&moved, "")).unwrap();
        prop_assert_eq!(expand(&other).unwrap(), trials);
        prop_assert_eq!(other.hash(), spec.hash());
    }

    #[test]
    fn conditional_counts_match_expansion(
        keys in key_lists(),
        momenta in proptest::sample::subsequence(vec!["0.0", "0.5", "0.9"], 1..=3),
        slopes in proptest::sample::subsequence(vec!["0.01", "0.1", "0.3"], 1..=3),
    ) {
        let mut keys = keys;
        keys.push(("optimizer".into(), "[\"adam\", \"sgd\"]".into()));
        keys.retain(|(k, _)| k != "activation");
        keys.push(("activation".into(), "[\"relu\", \"leaky_relu\"]".into()));
        let extra = format!(
            "[params.when.optimizer.sgd]\nmomentum = [{}]\n[params.when.activation.leaky_relu]\nnegative_slope = [{}]\n",
            momenta.join(", "),
            slopes.join(", ")
        );
        let spec = parse(Path::new("p.toml"), &sweep(&keys, &extra)).unwrap();
        let trials = expand(&spec).unwrap();
        let others: usize = keys
            .iter()
            .filter(|(k, _)| k != "optimizer" && k != "activation")
            .map(|(_, v)| list_len(v))
            .product();
        let per_point = (1 + momenta.len()) * (1 + slopes.len());
        prop_assert_eq!(trials.len(), others * per_point);
        prop_assert_eq!(trial_count(&spec), trials.len() as u128);
        let ids: HashSet<String> = trials.iter().map(|t| t.config.hash()).collect();
        prop_assert_eq!(ids.len(), trials.len(), "no duplicates");
    }

    #[test]
    fn random_draws_stay_in_range_and_repeat(
        lo_exp in -6i32..-2,
        span in 1i32..4,
        n in 1usize..30,
        seed in 0u64..1000,
    ) {
        let (lo, hi) = (10f64.powi(lo_exp), 10f64.powi(lo_exp + span));
        let text = format!(
            "name = \"r\"\n[search]\nstrategy = \"random\"\ntrials = {n}\nseed = {seed}\n[params]\nlearning_rate = {{ log_uniform = [{lo:e}, {hi:e}] }}\nbatch_size = {{ int = [1, 100000] }}\ndropout = {{ uniform = [0.0, 0.5] }}\nepochs = 3\n"
        );
        let spec = parse(Path::new("r.toml"), &text).unwrap();
        let trials = expand(&spec).unwrap();
        prop_assert_eq!(trials.len(), n);
        for t in &trials {
            let c = &t.config;
            prop_assert!((lo..=hi).contains(&c.learning_rate), "{} not in {lo}..{hi}", c.learning_rate);
            prop_assert!((1..=100_000).contains(&c.batch_size));
            prop_assert!((0.0..=0.5).contains(&c.dropout));
        }
        prop_assert_eq!(expand(&spec).unwrap(), trials);
    }
}
