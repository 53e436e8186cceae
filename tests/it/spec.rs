//! Sweep files: grid expansion order and ids pinned, and every validation error's message.

use std::path::Path;

use lcurve::spec::{Activation, expand, parse};

use crate::support::{SMALL, spec};

#[test]
fn grid_order_is_pinned() {
    let s = spec(
        r#"
name = "order"
[grid]
learning_rate = [0.1, 0.01]
batch_size = [8, 16]
epochs = 3
activation = ["tanh", "relu"]
"#,
    );
    let got: Vec<(usize, f64, usize, Activation)> = expand(&s)
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
fn trial_identity_is_stable() {
    let trials = expand(&spec(SMALL));
    // These hashes identify trials across reruns; changing them orphans stored results.
    assert_eq!(
        trials[0].config.to_json(),
        r#"{"learning_rate":0.001,"batch_size":32,"epochs":6,"activation":"relu","optimizer":"adam","hidden":[128],"seed":7,"dataset":"digits","validation_fraction":0.2}"#
    );
    assert_eq!(trials[0].config.hash(), trials[0].config.clone().hash());
    assert_ne!(trials[0].config.hash(), trials[1].config.hash());
    assert_eq!(expand(&spec(SMALL)), trials, "same file, same trials");
}

#[test]
fn defaults_are_applied() {
    let s = spec("name = \"d\"\n[grid]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 2\n");
    assert_eq!(s.seed, 7);
    assert_eq!(s.data.validation_fraction, 0.2);
    assert_eq!(s.model.hidden, vec![128]);
    assert_eq!(s.grid.activation, vec![Activation::Relu]);
    assert!(s.stopping.is_none());
    assert!(s.train.max_parallel >= 1);
}

#[test]
fn max_parallel_is_not_part_of_the_spec_hash() {
    let a = spec(SMALL);
    let b = spec(&SMALL.replace("max_parallel = 2", "max_parallel = 1"));
    assert_eq!(a.hash(), b.hash());
    let c = spec(&SMALL.replace("epochs = 6", "epochs = 7"));
    assert_ne!(a.hash(), c.hash());
}

/// Each row: the TOML, then the exact message (file, line, key, problem, what is accepted).
#[test]
fn every_bad_input_has_one_clear_message() {
    let grid = "[grid]\nlearning_rate = 0.01\nbatch_size = 32\nepochs = 2\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("name = \"x\"\ncolour = 1\n{grid}"),
            "test.toml:2: `colour`: unknown field `colour`, expected one of",
        ),
        (
            format!("name = \"a b\"\n{grid}"),
            "test.toml:1: `name`: \"a b\" is not a file-safe name (accepted: 1 to 100 characters",
        ),
        (
            grid.to_string(),
            "test.toml:1: `name`: missing field `name`",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = -0.1\nbatch_size = 32\nepochs = 2\n".into(),
            "test.toml:3: `grid.learning_rate`: -0.1 is not accepted (accepted: finite numbers > 0",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = [0.1, nan]\nbatch_size = 32\nepochs = 2\n"
                .into(),
            "test.toml:3: `grid.learning_rate`: nan is not accepted",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = 0.1\nbatch_size = 0\nepochs = 2\n".into(),
            "test.toml:4: `grid.batch_size`: 0 is not accepted (accepted: integers >= 1",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = 0.1\nbatch_size = 8\nepochs = [0]\n".into(),
            "test.toml:5: `grid.epochs`: 0 is not accepted",
        ),
        (
            format!("name = \"x\"\n{grid}activation = [\"relu\", \"swish\"]\n"),
            "test.toml:6: `grid.activation`: \"swish\" is not accepted (accepted: \"relu\", \"leaky_relu\", \"gelu\", \"sigmoid\" or \"tanh\")",
        ),
        (
            format!("name = \"x\"\n[data]\ndataset = \"mnist\"\n{grid}"),
            "test.toml:3: `data.dataset`: \"mnist\" is not known (accepted: \"digits\")",
        ),
        (
            format!("name = \"x\"\n[train]\noptimizer = \"lbfgs\"\n{grid}"),
            "test.toml:3: `train.optimizer`: \"lbfgs\" is not known (accepted: \"adam\" or \"sgd\")",
        ),
        (
            format!("name = \"x\"\n[train]\nmax_parallel = 0\n{grid}"),
            "test.toml:3: `train.max_parallel`: 0 trials at once",
        ),
        (
            format!("name = \"x\"\n{grid}[stopping]\npatience = 0\n"),
            "test.toml:7: `stopping.patience`: 0 epochs is not a patience",
        ),
        (
            format!("name = \"x\"\n{grid}[stopping]\nmetric = \"f1\"\n"),
            "test.toml:7: `stopping.metric`: \"f1\" is not known (accepted: \"val_loss\", \"val_accuracy\" or \"train_loss\")",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = 0.1\nbatch_size = \"big\"\nepochs = 2\n".into(),
            "test.toml:4: `grid.batch_size`: \"big\" is not accepted",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = [0.1, 0.1]\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:3: `grid.learning_rate`: 0.1 is listed twice",
        ),
        (
            "name = \"x\"\n[grid]\nlearning_rate = []\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:3: `grid.learning_rate`: is an empty list",
        ),
        (
            "name = \"x\"\n[grid]\nbatch_size = 8\nepochs = 2\n".into(),
            "test.toml:2: `grid.learning_rate`: is missing",
        ),
        (
            format!("name = \"x\"\n[data]\nvalidation_fraction = 1.5\n{grid}"),
            "test.toml:3: `data.validation_fraction`: 1.5 is out of range",
        ),
        (
            format!("name = \"x\"\nseed = \"seven\"\n{grid}"),
            "test.toml:2: `seed`: invalid type",
        ),
        ("name = \"x\"\n[grid\n".into(), "test.toml:2:"),
    ];
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
fn grids_over_the_cap_are_refused_with_the_fix() {
    let s = spec(SMALL);
    assert!(lcurve::run::check_size(&s, Path::new("test.toml"), 4).is_ok());
    let err = lcurve::run::check_size(&s, Path::new("test.toml"), 3)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "test.toml: `grid` expands to 4 trials, more than the cap of 3; shorten the lists or pass --max-trials 4"
    );
}
