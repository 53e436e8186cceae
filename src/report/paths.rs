//! The one place that names every report file.

use std::path::{Path, PathBuf};

/// Paths of one sweep's report: `<root>/<sweep>/curves.png`, `<root>/<sweep>/trials/007.png`.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    dir: PathBuf,
}

impl ReportPaths {
    pub fn new(root: &Path, sweep: &str) -> Self {
        Self {
            dir: root.join(make_filename_safe(sweep)),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn curves(&self) -> PathBuf {
        self.dir.join("curves.png")
    }

    pub fn index(&self) -> PathBuf {
        self.dir.join("index.html")
    }

    pub fn trials_dir(&self) -> PathBuf {
        self.dir.join("trials")
    }

    /// Zero-padded so a file browser lists trials in order.
    pub fn trial(&self, ordinal: usize) -> PathBuf {
        self.trials_dir().join(format!("{ordinal:03}.png"))
    }
}

/// Replaces anything but ASCII letters, digits, `.`, `_` and `-` with `_`, and a leading dot,
/// so a name can never climb out of the reports folder or hide a file.
pub fn make_filename_safe(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_fixed_and_safe() {
        let p = ReportPaths::new(Path::new("reports"), "digits-1");
        assert_eq!(p.curves(), Path::new("reports/digits-1/curves.png"));
        assert_eq!(p.trial(7), Path::new("reports/digits-1/trials/007.png"));
        assert_eq!(make_filename_safe("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(make_filename_safe("a b/c"), "a_b_c");
        assert_eq!(make_filename_safe(""), "_");
    }
}
