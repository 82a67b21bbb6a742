use std::fmt;
use std::sync::Arc;

use super::Mark;

/// A problem in a config file: where it is and why it is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<Arc<str>>,
    pub mark: Option<Mark>,
    /// Dotted key path, e.g. `connectors.spanmetrics.histogram.unit`.
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: Option<Arc<str>>, mark: Option<Mark>, path: String, reason: String) -> Self {
        Self {
            file,
            mark,
            path,
            reason,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}")?;
            if let Some(m) = self.mark {
                write!(f, ":{}:{}", m.line, m.column)?;
            }
            f.write_str(": ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}
