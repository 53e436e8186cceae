//! Errors found while reading a sweep file: each names the file, the key, the line and the fix.

use std::fmt;
use std::path::PathBuf;

/// One problem in a sweep file. Displayed as `FILE:LINE: KEY: PROBLEM (accepted: ...)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    pub path: PathBuf,
    /// Dotted key, e.g. `grid.learning_rate`; empty when the file as a whole is wrong.
    pub key: String,
    /// 1-based line, where the TOML parser or a span knows it.
    pub line: Option<usize>,
    pub problem: String,
    /// What would be accepted instead; empty when the problem says it already.
    pub accepted: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.problem)?;
        if !self.accepted.is_empty() {
            write!(f, " (accepted: {})", self.accepted)?;
        }
        Ok(())
    }
}

/// Builds errors for one file, turning byte spans into line numbers.
pub(crate) struct ErrorSite<'a> {
    pub path: &'a std::path::Path,
    pub source: &'a str,
}

impl ErrorSite<'_> {
    pub fn line_of(&self, span: Option<std::ops::Range<usize>>) -> Option<usize> {
        let start = span?.start.min(self.source.len());
        Some(self.source[..start].matches('\n').count() + 1)
    }

    pub fn error(
        &self,
        key: &str,
        span: Option<std::ops::Range<usize>>,
        problem: impl Into<String>,
        accepted: impl Into<String>,
    ) -> SpecError {
        SpecError {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            line: self.line_of(span),
            problem: problem.into(),
            accepted: accepted.into(),
        }
    }
}
