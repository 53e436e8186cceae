//! Data: the committed CSV example, every CSV policy and error, built-in datasets as sweeps
//! see them.

use std::path::Path;

use lcurve::data::{self, Target};
use lcurve::spec::{Task, parse};

/// Parses a sweep whose `[data]` table is `data`, in `dir` (CSV paths are relative to it).
fn data_spec(dir: &Path, data: &str) -> lcurve::spec::DataSpec {
    let toml = format!(
        "name = \"d\"\n[data]\n{data}\n[params]\nlearning_rate = 0.01\nbatch_size = 8\nepochs = 1\n"
    );
    parse(&dir.join("sweep.toml"), &toml)
        .unwrap_or_else(|e| panic!("{e}"))
        .data
}

fn load(dir: &Path, data: &str) -> Result<data::Loaded, String> {
    data::load(&data_spec(dir, data)).map_err(|e| e.to_string())
}

fn csv_dir(content: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.csv"), content).unwrap();
    dir
}

#[test]
fn the_penguins_example_loads_with_its_policies_reported() {
    let d = load(
        Path::new("sweeps"),
        "dataset = \"csv\"\npath = \"data/penguins.csv\"\ntarget = \"species\"",
    )
    .unwrap();
    let t = &d.table;
    assert_eq!((d.rows_read, d.rows_dropped, t.rows()), (344, 11, 333));
    assert_eq!(t.class_names, ["Adelie", "Chinstrap", "Gentoo"]);
    assert_eq!(
        t.feature_names,
        [
            "island=Biscoe",
            "island=Dream",
            "island=Torgersen",
            "bill_length_mm",
            "bill_depth_mm",
            "flipper_length_mm",
            "body_mass_g",
            "sex=female",
            "sex=male"
        ]
    );
    assert_eq!(t.task(), Task::Classification);
    let notes = d.notes.join("\n");
    assert!(notes.contains("dropped 11 of 344 rows"), "{notes}");
    assert!(
        notes.contains("one-hot encoded text column \"island\" into 3 columns"),
        "{notes}"
    );
    assert!(notes.contains("classification (inferred"), "{notes}");
    // The first kept row: Adelie on Torgersen, 39.1 mm bill, male.
    assert_eq!(
        &t.features[..9],
        &[0.0, 0.0, 1.0, 39.1, 18.7, 181.0, 3750.0, 0.0, 1.0]
    );
    assert_eq!(d.sha256.len(), 64);
}

#[test]
fn chosen_features_only_drop_rows_missing_in_those_columns() {
    let d = load(
        Path::new("sweeps"),
        "dataset = \"csv\"\npath = \"data/penguins.csv\"\ntarget = \"species\"\nfeatures = [\"bill_length_mm\", \"flipper_length_mm\"]",
    )
    .unwrap();
    assert_eq!(
        (d.table.n_features, d.rows_dropped),
        (2, 2),
        "only the two all-NA rows"
    );
}

#[test]
fn the_task_is_inferred_from_the_target_or_refused_when_ambiguous() {
    let ints = csv_dir("x,y\n1,0\n2,1\n3,0\n4,1\n5,2\n");
    let d = load(
        ints.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"",
    )
    .unwrap();
    assert_eq!(d.table.task(), Task::Classification);
    assert_eq!(d.table.class_names, ["0", "1", "2"]);

    let floats = csv_dir("x,y\n1,0.5\n2,1.25\n3,0.75\n4,1.0\n");
    let d = load(
        floats.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"",
    )
    .unwrap();
    assert_eq!(d.table.task(), Task::Regression);
    assert_eq!(d.table.target, Target::Values(vec![0.5, 1.25, 0.75, 1.0]));

    let many: String = (0..30).map(|i| format!("{i},{}\n", i * 7)).collect();
    let many = csv_dir(&format!("x,y\n{many}"));
    let err = load(
        many.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"",
    )
    .unwrap_err();
    assert!(
        err.contains("cannot tell whether target \"y\" is class labels or numbers")
            && err.contains("set data.task"),
        "{err}"
    );
    let d = load(
        many.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"\ntask = \"regression\"",
    )
    .unwrap();
    assert_eq!(d.table.task(), Task::Regression);

    // Numeric labels keep numeric order; text labels are alphabetical.
    let labels = csv_dir("x,y\n1,10\n2,9\n3,10\n4,9\n");
    let d = load(
        labels.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"",
    )
    .unwrap();
    assert_eq!(d.table.class_names, ["9", "10"]);
}

#[test]
fn files_without_a_header_name_their_columns_by_position() {
    let dir = csv_dir("1;2;a\n3;4;b\n5;6;a\n");
    let d = load(
        dir.path(),
        "dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"column_3\"\nheader = false\ndelimiter = \";\"",
    )
    .unwrap();
    assert_eq!(d.table.feature_names, ["column_1", "column_2"]);
    assert_eq!(d.table.class_names, ["a", "b"]);
}

/// Each row: the CSV (or none, for a missing file), extra `[data]` keys, and the message.
#[test]
fn every_csv_problem_has_one_message_naming_the_file_column_and_fix() {
    let cases: &[(Option<&str>, &str, &str)] = &[
        (
            None,
            "",
            "t.csv: cannot read the CSV file named by `data.path`",
        ),
        (
            Some("a,b\n1,2\n"),
            "",
            "t.csv: `data.target` names column \"y\", which is not in the file (columns: a, b)",
        ),
        (
            Some("a,y\n1,0\n2,1\n"),
            "features = [\"a\", \"z\"]",
            "t.csv: `data.features` names column \"z\", which is not in the file",
        ),
        (
            Some("a,y\n1,0\n2,1\nthree,0\n4,1\n"),
            "",
            "t.csv:4: column \"a\" has text (\"three\") where numbers are expected (3 of 4 values are numbers)",
        ),
        (
            Some("a,y\nNA,0\n,1\n"),
            "",
            "t.csv: no rows left after dropping 2 rows with missing values",
        ),
        (
            Some("a,y\n1,0\nNA,1\n"),
            "missing = \"fail\"",
            "t.csv:3: column \"a\" has no value (\"NA\"), and data.missing = \"fail\"",
        ),
        (
            Some("a,c,y\n1,red,0\n2,blue,1\n"),
            "categorical = \"refuse\"",
            "t.csv:2: column \"c\" holds text such as \"red\", and data.categorical = \"refuse\"",
        ),
        (
            Some("a,y\n1,cat\n2,dog\n"),
            "task = \"regression\"",
            "t.csv:2: target \"y\" has text (\"cat\") but data.task = \"regression\" needs numbers",
        ),
        (
            Some("a,y\n1,cat\n2,cat\n"),
            "",
            "t.csv: target \"y\" has only one class (\"cat\")",
        ),
        (Some("a,y\n"), "", "t.csv: has no data rows"),
        (
            Some("a,y\n1,0\n2,1,5\n"),
            "",
            "t.csv:3: not a readable CSV file",
        ),
    ];
    for (csv, extra, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        if let Some(csv) = csv {
            std::fs::write(dir.path().join("t.csv"), csv).unwrap();
        }
        let err = load(
            dir.path(),
            &format!("dataset = \"csv\"\npath = \"t.csv\"\ntarget = \"y\"\n{extra}"),
        )
        .unwrap_err();
        let shown = err.replace(&format!("{}/", dir.path().display()), "");
        assert!(
            shown.starts_with(expected),
            "for {csv:?} {extra}\nexpected: {expected}\n     got: {shown}"
        );
    }
}
