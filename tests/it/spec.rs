//! Sweep files: expansion order and ids pinned, conditional and random search spaces, and
//! every validation error's message.

use std::path::Path;

use lcurve::spec::{Activation, Optimizer, PlannedTrial, Strategy, expand, parse, trial_count};

use crate::support::{SMALL, spec};

fn trials(toml: &str) -> Vec<PlannedTrial> {
    expand(&spec(toml)).expect("expands")
}

const BASE: &str = "name = \"x\"\n[params]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 2\n";

#[test]
fn grid_order_is_pinned() {
    let got: Vec<(usize, f64, usize, Activation)> = trials(
        r#"
name = "order"
[params]
activation = ["tanh", "relu"]
batch_size = [8, 16]
epochs = 3
learning_rate = [0.1, 0.01]
"#,
    )
    .iter()
    .map(|t| {
        (
            t.ordinal,
            t.config.learning_rate,
            t.config.batch_size,
            t.config.activation,
        )
    })
    .collect();
    use Activation::*;
    // learning_rate outermost, then batch_size, activation fastest, whatever the key order.
    assert_eq!(
        got,
        vec![
            (0, 0.1, 8, Tanh),
            (1, 0.1, 8, Relu),
            (2, 0.1, 16, Tanh),
            (3, 0.1, 16, Relu),
            (4, 0.01, 8, Tanh),
            (5, 0.01, 8, Relu),
            (6, 0.01, 16, Tanh),
            (7, 0.01, 16, Relu),
        ]
    );
}

#[test]
fn key_order_in_the_file_does_not_change_the_trials_or_the_spec() {
    let a =
        "name = \"k\"\n[params]\nlearning_rate = [0.1, 0.01]\nbatch_size = [8, 16]\nepochs = 2\n";
    let b =
        "name = \"k\"\n[params]\nepochs = 2\nbatch_size = [8, 16]\nlearning_rate = [0.1, 0.01]\n";
    assert_eq!(trials(a), trials(b));
    assert_eq!(spec(a).hash(), spec(b).hash());
}

#[test]
fn trial_config_holds_every_resolved_value() {
    let t = trials(SMALL);
    // These hashes identify trials across reruns; changing them orphans stored results.
    assert_eq!(
        t[0].config.to_json(),
        r#"{"learning_rate":0.001,"lr_schedule":"constant","batch_size":32,"epochs":6,"optimizer":"adam","beta1":0.9,"beta2":0.999,"weight_decay":0.0,"hidden":[128],"dropout":0.0,"activation":"relu","train_fraction":1.0,"seed":7,"dataset":"digits","task":"classification","validation_fraction":0.2,"split_seed":7,"engine":"fused"}"#
    );
    assert_ne!(t[0].config.hash(), t[1].config.hash());
    assert_eq!(trials(SMALL), t, "same file, same trials");
}

#[test]
fn defaults_are_applied() {
    let s = spec(BASE);
    assert_eq!(s.seed, 7);
    assert_eq!(s.data.validation_fraction, 0.2);
    assert_eq!(s.search.strategy, Strategy::Grid);
    assert!(s.stopping.is_none());
    assert!(s.train.max_parallel >= 1);
    let c = &trials(BASE)[0].config;
    assert_eq!(c.hidden, vec![128]);
    assert_eq!(c.activation, Activation::Relu);
    assert_eq!((c.optimizer, c.momentum), (Optimizer::Adam, None));
    assert_eq!(
        (c.dropout, c.weight_decay, c.train_fraction),
        (0.0, 0.0, 1.0)
    );
    assert_eq!(c.negative_slope, None, "only leaky_relu has a slope");
}

#[test]
fn max_parallel_is_not_part_of_the_spec_hash() {
    let a = spec(SMALL);
    let b = spec(&SMALL.replace("max_parallel = 2", "max_parallel = 1"));
    assert_eq!(a.hash(), b.hash());
    let c = spec(&SMALL.replace("epochs = 6", "epochs = 7"));
    assert_ne!(a.hash(), c.hash());
}

#[test]
fn every_model_and_training_setting_can_be_swept() {
    let t = trials(
        r#"
name = "all"
[params]
learning_rate = 0.01
batch_size = 32
epochs = 4
hidden = [[16], [32, 32]]
weight_decay = [0.0, 1e-4]
dropout = [0.0, 0.2]
lr_schedule = ["constant", "cosine"]
train_fraction = [0.5, 1.0]
seed = [1, 2]
"#,
    );
    assert_eq!(t.len(), 2 * 2 * 2 * 2 * 2 * 2);
    // seed varies fastest: repeats of one config sit next to each other.
    assert_eq!((t[0].config.seed, t[1].config.seed), (1, 2));
    assert_eq!(t[0].config.hidden, vec![16]);
    assert!(t.iter().any(|p| p.config.hidden == vec![32, 32]));
    assert_eq!(
        t[0].config.train_fraction, 0.5,
        "train_fraction is outermost"
    );
}

#[test]
fn conditional_keys_apply_only_where_their_condition_holds() {
    let t = trials(
        r#"
name = "cond"
[params]
learning_rate = [0.1, 0.01]
batch_size = 32
epochs = 2
optimizer = ["adam", "sgd"]
activation = ["relu", "leaky_relu"]
[params.when.optimizer.sgd]
momentum = [0.0, 0.9]
[params.when.activation.leaky_relu]
negative_slope = [0.01, 0.2]
"#,
    );
    // Per learning rate: adam x (relu + 2 slopes) + sgd x 2 momenta x (relu + 2 slopes) = 3 + 6.
    assert_eq!(t.len(), 2 * (3 + 6));
    assert_eq!(
        trial_count(&spec(
            &std::fs::read_to_string("sweeps/conditional.toml").unwrap()
        )),
        expand(&spec(
            &std::fs::read_to_string("sweeps/conditional.toml").unwrap()
        ))
        .unwrap()
        .len() as u128,
        "the count the cap uses is the count expanded"
    );
    for p in &t {
        let c = &p.config;
        assert_eq!(c.momentum.is_some(), c.optimizer == Optimizer::Sgd, "{c:?}");
        assert_eq!(c.beta1.is_some(), c.optimizer == Optimizer::Adam, "{c:?}");
        assert_eq!(
            c.negative_slope.is_some(),
            c.activation == Activation::LeakyRelu,
            "{c:?}"
        );
    }
    let hashes: std::collections::HashSet<String> = t.iter().map(|p| p.config.hash()).collect();
    assert_eq!(hashes.len(), t.len(), "no duplicates");
}

const RANDOM: &str = r#"
name = "rnd"
[search]
strategy = "random"
trials = 12
seed = 3
[params]
learning_rate = { log_uniform = [1e-4, 1e-1] }
batch_size = { choice = [16, 64, 256] }
dropout = { uniform = [0.0, 0.5] }
epochs = { int = [5, 20] }
activation = ["relu", "tanh"]
"#;

#[test]
fn random_search_samples_in_range_the_same_every_time() {
    let t = trials(RANDOM);
    assert_eq!(
        t.len(),
        2 * 12,
        "12 samples for each value of the listed key"
    );
    assert_eq!(trials(RANDOM), t, "same file, same samples");
    for p in &t {
        let c = &p.config;
        assert!((1e-4..=1e-1).contains(&c.learning_rate), "{c:?}");
        assert!([16, 64, 256].contains(&c.batch_size));
        assert!((0.0..=0.5).contains(&c.dropout));
        assert!((5..=20).contains(&c.epochs));
        // Sampled numbers are kept to 4 significant digits.
        let s = c.learning_rate.to_string();
        assert!(s.trim_start_matches(['0', '.']).len() <= 4, "{s}");
    }
    // The first 12 are relu, the rest tanh (the list is the grid around the samples).
    assert!(
        t[..12]
            .iter()
            .all(|p| p.config.activation == Activation::Relu)
    );
    let lrs: Vec<f64> = t.iter().map(|p| p.config.learning_rate).collect();
    let (lo, hi) = lrs
        .iter()
        .fold((1.0f64, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(
        hi / lo > 10.0,
        "log-uniform spreads over decades: {lo}..{hi}"
    );
    let other = trials(&RANDOM.replace("seed = 3", "seed = 4"));
    assert_ne!(other, t, "another search seed draws other points");
    // The samples do not depend on where a key is written.
    let moved = RANDOM.replace("learning_rate = { log_uniform = [1e-4, 1e-1] }\n", "")
        + "learning_rate = { log_uniform = [1e-4, 1e-1] }\n";
    assert_eq!(trials(&moved), t);
}

#[test]
fn random_search_never_repeats_a_trial_and_says_when_it_cannot() {
    let small = "name = \"r\"\n[search]\nstrategy = \"random\"\ntrials = 3\n[params]\nlearning_rate = 0.1\nbatch_size = { choice = [8, 16, 32] }\nepochs = 1\n";
    let t = trials(small);
    let mut sizes: Vec<usize> = t.iter().map(|p| p.config.batch_size).collect();
    sizes.sort();
    assert_eq!(sizes, vec![8, 16, 32], "3 draws from 3 values: each once");
    let err = expand(&spec(&small.replace("trials = 3", "trials = 4"))).unwrap_err();
    assert!(err.to_string().contains("fewer distinct points"), "{err}");
}

/// Each row: the TOML, then the start of the exact message (file, line, key, problem, fix).
#[test]
fn every_bad_input_has_one_clear_message() {
    let params = "[params]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 2\n";
    let random = "[search]\nstrategy = \"random\"\ntrials = 5\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("name = \"x\"\ncolour = 1\n{params}"),
            "test.toml:2: `colour`: unknown field `colour`, expected one of",
        ),
        (
            format!("name = \"a b\"\n{params}"),
            "test.toml:1: `name`: \"a b\" is not a file-safe name (accepted: 1 to 100 characters",
        ),
        (params.to_string(), "test.toml:1: `name`: missing field `name`"),
        (
            "name = \"x\"\n[params]\nlearning_rate = -0.1\nbatch_size = 32\nepochs = 2\n".into(),
            "test.toml:3: `params.learning_rate`: -0.1 is out of range (accepted: a number > 0",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = [0.1, nan]\nbatch_size = 32\nepochs = 2\n"
                .into(),
            "test.toml:3: `params.learning_rate`: nan is out of range",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = 0.1\nbatch_size = 0\nepochs = 2\n".into(),
            "test.toml:4: `params.batch_size`: 0 is out of range (accepted: an integer >= 1, or a list",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8.5\nepochs = 2\n".into(),
            "test.toml:4: `params.batch_size`: 8.5 is not an integer",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = [0]\n".into(),
            "test.toml:5: `params.epochs`: 0 is out of range",
        ),
        (
            format!("name = \"x\"\n{params}activation = [\"relu\", \"swish\"]\n"),
            "test.toml:6: `params.activation`: \"swish\" is not known (accepted: \"relu\", \"leaky_relu\", \"gelu\", \"sigmoid\", \"tanh\"",
        ),
        (
            format!("name = \"x\"\n{params}colour = 3\n"),
            "test.toml:6: `params.colour`: is not a parameter lcurve knows (accepted: train_fraction, learning_rate,",
        ),
        (
            format!("name = \"x\"\n{params}hidden = [64, 0]\n"),
            "test.toml:6: `params.hidden`: layer width 0 is not an integer from 1 to 65536",
        ),
        (
            format!("name = \"x\"\n{params}dropout = 1.0\n"),
            "test.toml:6: `params.dropout`: 1.0 is out of range (accepted: a number >= 0 and < 1",
        ),
        (
            format!("name = \"x\"\n{params}train_fraction = [0.0, 1.0]\n"),
            "test.toml:6: `params.train_fraction`: 0.0 is out of range",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"mnist\"\n{params}"),
            "test.toml:3: `data.dataset`: \"mnist\" is not known (accepted: \"digits\", \"iris\", \"wine\", \"breast_cancer\", \"diabetes\" or \"csv\")",
        ),
        (
            format!("name = \"x\"\n{params}optimizer = \"lbfgs\"\n"),
            "test.toml:6: `params.optimizer`: \"lbfgs\" is not known (accepted: \"adam\", \"sgd\"",
        ),
        (
            format!("name = \"x\"\n[train]\noptimizer = \"sgd\"\n{params}"),
            "test.toml:3: `train.optimizer`: `optimizer` is now in [params]",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = 0.1\n".to_string(),
            "test.toml:2: `grid`: the [grid] table is now called [params] (accepted: rename [grid] to [params]",
        ),
        (
            format!("name = \"x\"\n[train]\nmax_parallel = 0\n{params}"),
            "test.toml:3: `train.max_parallel`: 0 trials at once",
        ),
        (
            format!("name = \"x\"\n{params}[stopping]\npatience = 0\n"),
            "test.toml:7: `stopping.patience`: 0 epochs is not a patience",
        ),
        (
            format!("name = \"x\"\n{params}[stopping]\nmetric = \"f1\"\n"),
            "test.toml:7: `stopping.metric`: \"f1\" is not known (accepted: \"val_loss\", \"val_accuracy\", \"train_loss\" or \"val_rmse\")",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"diabetes\"\n{params}[stopping]\nmetric = \"val_accuracy\"\n"),
            "test.toml: `stopping.metric`: \"val_accuracy\" is not reported for regression data (accepted: \"val_loss\", \"train_loss\", \"val_rmse\")",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"iris\"\ntask = \"regression\"\n{params}"),
            "test.toml:4: `data.task`: iris is a classification dataset",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"iris\"\npath = \"a.csv\"\n{params}"),
            "test.toml:4: `data.path`: only applies to dataset = \"csv\", not \"iris\"",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"csv\"\npath = \"a.csv\"\n{params}"),
            "test.toml: `data.target`: is missing; dataset = \"csv\" needs it (accepted: target = \"species\"",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"csv\"\ntarget = \"y\"\n{params}"),
            "test.toml: `data.path`: is missing; dataset = \"csv\" needs it",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"csv\"\npath = \"a.csv\"\ntarget = \"y\"\nfeatures = [\"y\"]\n{params}"),
            "test.toml:6: `data.features`: includes the target column \"y\"",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"csv\"\npath = \"a.csv\"\ntarget = \"y\"\nmissing = \"impute\"\n{params}"),
            "test.toml:6: `data.missing`: \"impute\" is not known (accepted: \"drop\" or \"fail\")",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = [0.1, 0.1]\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:3: `params.learning_rate`: 0.1 is listed twice",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = []\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:3: `params.learning_rate`: is an empty list",
        ),
        (
            "name = \"x\"\n[params]\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:2: `params.learning_rate`: is missing",
        ),
        (
            "name = \"x\"\n".into(),
            "test.toml: `params`: is missing (accepted: a [params] table",
        ),
        (
            format!("name = \"x\"\n[data]\nvalidation_fraction = 1.5\n{params}"),
            "test.toml:3: `data.validation_fraction`: 1.5 is out of range",
        ),
        (
            format!("name = \"x\"\nseed = \"seven\"\n{params}"),
            "test.toml:2: `seed`: invalid type",
        ),
        ("name = \"x\"\n[params\n".into(), "test.toml:2:"),
        // Search spaces.
        (
            format!("name = \"x\"\n{random}[params]\nlearning_rate = {{ log_uniform = [0.1, 1e-4] }}\nbatch_size = 8\nepochs = 2\n"),
            "test.toml:6: `params.learning_rate.log_uniform`: low 0.1 is not below high 0.0001",
        ),
        (
            format!("name = \"x\"\n{random}[params]\nlearning_rate = {{ log_uniform = [0.0, 0.1] }}\nbatch_size = 8\nepochs = 2\n"),
            "test.toml:6: `params.learning_rate.log_uniform`: a log range must be above 0, and 0 is not",
        ),
        (
            format!("name = \"x\"\n{random}[params]\nlearning_rate = 0.1\ndropout = {{ uniform = [0.5, 2.0] }}\nbatch_size = 8\nepochs = 2\n"),
            "test.toml:7: `params.dropout.uniform`: the range reaches outside what dropout accepts",
        ),
        (
            format!("name = \"x\"\n{random}[params]\nlearning_rate = 0.1\nbatch_size = {{ uniform = [8, 64] }}\nepochs = 2\n"),
            "test.toml:7: `params.batch_size.uniform`: batch_size does not take fractional values",
        ),
        (
            format!("name = \"x\"\n{random}[params]\nlearning_rate = {{ normal = [0, 1] }}\nbatch_size = 8\nepochs = 2\n"),
            "test.toml:6: `params.learning_rate.normal`: \"normal\" is not a distribution",
        ),
        (
            "name = \"x\"\n[search]\nstrategy = \"random\"\n[params]\nlearning_rate = { log_uniform = [1e-4, 1e-1] }\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:2: `search.trials`: is missing; random search needs to know how many trials to draw",
        ),
        (
            "name = \"x\"\n[params]\nlearning_rate = { log_uniform = [1e-4, 1e-1] }\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml: `search`: [params] has a distribution, which needs random search (accepted: add [search] with strategy = \"random\"",
        ),
        (
            format!("name = \"x\"\n{random}{params}"),
            "test.toml:3: `search.strategy`: random search needs at least one distribution",
        ),
        (
            format!("name = \"x\"\n[search]\ntrials = 5\n{params}"),
            "test.toml:3: `search.trials`: only random search takes a number of trials",
        ),
        // Conditional parameters.
        (
            format!("name = \"x\"\n{params}optimizer = [\"adam\", \"sgd\"]\nmomentum = 0.9\n"),
            "test.toml:7: `params.momentum`: momentum only applies when optimizer = \"sgd\", but optimizer can be \"adam\", \"sgd\" (accepted: move it under [params.when.optimizer.sgd]",
        ),
        (
            format!("name = \"x\"\n{params}negative_slope = 0.1\n"),
            "test.toml:6: `params.negative_slope`: negative_slope only applies when activation = \"leaky_relu\", but activation can be \"relu\" (the default)",
        ),
        (
            format!("name = \"x\"\n{params}optimizer = \"adam\"\n[params.when.optimizer.sgd]\nmomentum = 0.9\n"),
            "test.toml:7: `params.when.optimizer.sgd`: optimizer is never \"sgd\" in this sweep (it is \"adam\")",
        ),
        (
            format!("name = \"x\"\n{params}[params.when.optimizer.rmsprop]\nmomentum = 0.9\n"),
            "test.toml:6: `params.when.optimizer.rmsprop`: \"rmsprop\" is not a value of optimizer",
        ),
        (
            format!("name = \"x\"\n{params}optimizer = [\"adam\", \"sgd\"]\n[params.when.optimizer.adam]\nmomentum = 0.9\n"),
            "test.toml:8: `params.when.optimizer.adam.momentum`: momentum only applies when optimizer = \"sgd\" (accepted: put it under [params.when.optimizer.sgd])",
        ),
        (
            format!("name = \"x\"\n{params}[params.when.batch_size.32]\ndropout = 0.1\n"),
            "test.toml:6: `params.when.batch_size`: conditions can only be on a parameter that takes words",
        ),
    ];
    // Stopping rules.
    let more: Vec<(String, &str)> = vec![
        (
            format!("name = \"x\"\n{params}[stopping.median]\npercentile = 150\n"),
            "test.toml:7: `stopping.median.percentile`: 150 is out of range (accepted: a number from 0 to 100",
        ),
        (
            format!("name = \"x\"\n{params}[stopping.extrapolation]\nmin_probability = 1.5\n"),
            "test.toml:7: `stopping.extrapolation.min_probability`: 1.5 is out of range",
        ),
        (
            format!("name = \"x\"\n{params}[stopping.extrapolation]\nwarmup = 2\n"),
            "test.toml:7: `stopping.extrapolation.warmup`: 2 is out of range (accepted: an integer >= 4)",
        ),
        (
            format!("name = \"x\"\n{params}[stopping.threshold]\nafter_epoch = 3\n"),
            "test.toml:6: `stopping.threshold.worse_than`: missing field `worse_than`",
        ),
        (
            format!("name = \"x\"\n{params}[stopping]\nwarmup = 3\n[stopping.median]\n"),
            "test.toml:7: `stopping.warmup`: belongs to the patience rule",
        ),
        (
            format!("name = \"x\"\n{params}[stopping]\ndivergence_factor = 0.5\n"),
            "test.toml:7: `stopping.divergence_factor`: 0.5 is out of range (accepted: a number > 1",
        ),
        (
            format!("name = \"x\"\n{params}[stopping.hyperband]\neta = 3\n"),
            "test.toml:6: `stopping.hyperband`: unknown field `hyperband`",
        ),
        (
            format!("name = \"x\"\n{params}[stopping.asha]\neta = 1\n"),
            "test.toml:7: `stopping.asha.eta`: 1 is out of range (accepted: an integer >= 2)",
        ),
    ];
    let cases: Vec<(String, &str)> = cases.into_iter().chain(more).collect();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (toml, expected) in cases {
        let err = parse(Path::new("test.toml"), &toml)
            .expect_err(&toml)
            .to_string();
        assert!(
            err.starts_with(expected),
            "for\n{toml}\nexpected: {expected}\n     got: {err}"
        );
    }
}

#[test]
fn sweeps_over_the_cap_are_refused_with_the_fix() {
    let s = spec(SMALL);
    assert!(lcurve::run::check_size(&s, Path::new("test.toml"), 4).is_ok());
    let err = lcurve::run::check_size(&s, Path::new("test.toml"), 3)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.toml: the sweep expands to 4 trials, more than the cap of 3; shorten the lists in [params], or pass --max-trials 4 to raise the cap"
    );
    // A huge grid is refused by counting, without building a single trial.
    let huge = spec(
        "name = \"h\"\n[params]\nlearning_rate = [1,2,3,4,5,6,7,8,9,10]\nbatch_size = [1,2,3,4,5,6,7,8,9,10]\nepochs = [1,2,3,4,5,6,7,8,9,10]\nseed = [1,2,3,4,5,6,7,8,9,10]\nweight_decay = [0,1,2,3,4,5,6,7,8,9]\n",
    );
    assert_eq!(trial_count(&huge), 100_000);
    assert!(lcurve::run::check_size(&huge, Path::new("h.toml"), 10_000).is_err());
}

#[test]
fn stopping_rules_combine_and_patience_is_the_default() {
    let base = "name = \"s\"\n[params]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = 9\n";
    let only = spec(&format!("{base}[stopping]\nmetric = \"val_loss\"\n"));
    let p = only.stopping.unwrap();
    assert_eq!(
        p.patience.map(|p| p.patience),
        Some(5),
        "bare [stopping] is patience 5"
    );
    let combined = spec(&format!(
        "{base}[stopping]\npatience = 3\nwarmup = 2\ndivergence_factor = 10\n[stopping.median]\npercentile = 25\n[stopping.threshold]\nafter_epoch = 4\nworse_than = 2.0\n[stopping.extrapolation]\n"
    ))
    .stopping
    .unwrap();
    assert_eq!(
        combined.patience.as_ref().map(|p| (p.patience, p.warmup)),
        Some((3, 2))
    );
    assert_eq!(
        combined
            .median
            .as_ref()
            .map(|m| (m.warmup, m.min_peers, m.percentile)),
        Some((5, 4, 25.0))
    );
    assert_eq!(
        combined
            .threshold
            .as_ref()
            .map(|t| (t.after_epoch, t.worse_than)),
        Some((4, 2.0))
    );
    assert_eq!(
        combined
            .extrapolation
            .as_ref()
            .map(|x| (x.warmup, x.min_probability)),
        Some((5, 0.05))
    );
    assert_eq!(combined.divergence_factor, Some(10.0));
    let median_only = spec(&format!("{base}[stopping.median]\n"))
        .stopping
        .unwrap();
    assert!(
        median_only.patience.is_none(),
        "another rule given: no implicit patience"
    );
    assert_eq!(lcurve::stopping::rules_for(Some(&combined)).len(), 5);
}

/// Sweeps default to the fused engine; `engine = "burn"` stores no engine at all, so sweeps and
/// trials stored before engines existed (all trained with burn) keep their hashes.
#[test]
fn the_engine_is_part_of_the_experiment_and_burn_keeps_old_hashes() {
    let fused = spec(SMALL);
    assert_eq!(fused.train.engine, lcurve::spec::Engine::Fused);
    assert!(!fused.train.engine_named);
    assert!(fused.to_json().contains(r#""train":{"engine":"fused"}"#));
    let burn = spec(&SMALL.replace("max_parallel = 2", "max_parallel = 2\nengine = \"burn\""));
    assert!(burn.train.engine_named);
    assert!(!burn.to_json().contains("train"), "{}", burn.to_json());
    assert_ne!(fused.hash(), burn.hash());
    let t = expand(&burn).unwrap();
    assert!(!t[0].config.to_json().contains("engine"));
    let old: lcurve::spec::TrialConfig = serde_json::from_str(&t[0].config.to_json()).unwrap();
    assert_eq!(
        old.engine,
        lcurve::spec::Engine::Burn,
        "configs without an engine are burn's"
    );
    assert_eq!(old.hash(), t[0].config.hash());
}
