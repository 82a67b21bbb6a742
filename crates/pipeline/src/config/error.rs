use std::fmt;
use std::sync::Arc;

use super::Mark;

/// A problem with one key of a component's section, found once the section parsed. The key
/// path is relative to the component (dotted, `[i]` for list items, empty for the component
/// itself); [`super::ComponentConfig::locate`] places it in the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key_path}: {reason}")]
pub struct Invalid {
    pub key_path: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key_path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key_path: key_path.into(),
            reason: reason.into(),
        }
    }
}

/// A section whose checks find every problem in one pass, so that `validate` can report them
/// all, while building stops at the first.
pub trait CheckAll {
    /// What the section resolves to once valid.
    type Checked;

    /// The resolved section, or every problem in the order found (never an empty list).
    fn check_all(&self) -> Result<Self::Checked, Vec<Invalid>>;

    /// The resolved section, or the first problem ([`CheckAll::problems`] lists them all).
    fn settings(&self) -> Result<Self::Checked, Invalid> {
        self.check_all().map_err(|problems| {
            problems
                .into_iter()
                .next()
                .unwrap_or_else(|| Invalid::new("", "invalid"))
        })
    }

    /// Every problem of the section; empty when it is valid.
    fn problems(&self) -> Vec<Invalid> {
        self.check_all().err().unwrap_or_default()
    }
}

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
