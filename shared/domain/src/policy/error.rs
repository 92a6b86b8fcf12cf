//! A policy file (the change policy, the approval policy) that could not be read.

use std::fmt;

/// A policy file that could not be read: which document, where (1-based line and column of the
/// offending key or value, when known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// What the file is, as messages name it: [`PolicyError::CHANGE_POLICY`] or
    /// [`PolicyError::APPROVAL_POLICY`].
    pub document: &'static str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl PolicyError {
    pub const CHANGE_POLICY: &'static str = "change policy";
    pub const APPROVAL_POLICY: &'static str = "approval policy";

    /// A problem with the whole `document`, at no particular place.
    pub fn unplaced(document: &'static str, message: impl Into<String>) -> PolicyError {
        PolicyError { document, line: None, column: None, message: message.into() }
    }

    /// serde_yaml's error for `document`, at its line and column when it has them.
    pub fn yaml(document: &'static str, err: serde_yaml::Error) -> PolicyError {
        let text = err.to_string();
        match err.location() {
            Some(loc) => {
                let suffix = format!(" at line {} column {}", loc.line(), loc.column());
                let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
                PolicyError { document, line: Some(loc.line()), column: Some(loc.column()), message }
            }
            None => PolicyError::unplaced(document, text),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let document = self.document;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{document}, line {line}, column {column}: {}", self.message),
            (Some(line), None) => write!(f, "{document}, line {line}: {}", self.message),
            _ => write!(f, "{document}: {}", self.message),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The change policy's parser reads with `?`: a YAML error there is the change policy's.
impl From<serde_yaml::Error> for PolicyError {
    fn from(err: serde_yaml::Error) -> Self {
        PolicyError::yaml(PolicyError::CHANGE_POLICY, err)
    }
}
