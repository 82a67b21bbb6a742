//! otelcol's `filterset`: a list of strings matched exactly (`strict`) or as unanchored
//! regular expressions (`regexp`); a value matches when any entry does.

use std::collections::HashSet;

use regex::Regex;

use crate::MatchError;

#[derive(Debug)]
pub(super) enum FilterSet {
    Strict(HashSet<String>),
    Regexp(Vec<Regex>),
}

impl FilterSet {
    pub(super) fn new(match_type: &str, items: &[String]) -> Result<Self, MatchError> {
        match match_type {
            "strict" => Ok(Self::Strict(items.iter().cloned().collect())),
            "regexp" => {
                let mut seen = HashSet::new();
                let mut regexes = Vec::with_capacity(items.len());
                for item in items {
                    if seen.insert(item.as_str()) {
                        regexes.push(redline_go_regex::compile(item)?);
                    }
                }
                Ok(Self::Regexp(regexes))
            }
            other => Err(MatchError::MatchType(other.to_owned())),
        }
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        match self {
            Self::Strict(set) => set.contains(text),
            Self::Regexp(regexes) => regexes.iter().any(|r| r.is_match(text)),
        }
    }
}
