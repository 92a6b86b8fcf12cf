//! A change policy that could not be read.

use std::fmt;

/// A change policy that could not be read: where (1-based line and column of the offending key or
/// value, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "change policy, line {line}, column {column}: {}", self.message),
            (Some(line), None) => write!(f, "change policy, line {line}: {}", self.message),
            _ => write!(f, "change policy: {}", self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

impl From<serde_yaml::Error> for PolicyError {
    fn from(err: serde_yaml::Error) -> Self {
        let text = err.to_string();
        match err.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
                PolicyError { line: Some(loc.line()), column: Some(loc.column()), message }
            }
            None => PolicyError { line: None, column: None, message: text },
        }
    }
}
