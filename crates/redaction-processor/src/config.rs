//! The `redaction` section as otelcol-contrib's redactionprocessor reads it, checked and
//! compiled once.

use hashbrown::HashSet;

use redline_pipeline::config::Secret;
use redline_pipeline::{ComponentConfig, ConfigError};
use regex::Regex;
use serde::Deserialize;

use crate::mask::{Hash, Masker};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionConfig {
    #[serde(default)]
    pub allow_all_keys: bool,
    #[serde(default)]
    pub allowed_keys: Vec<String>,
    #[serde(default)]
    pub blocked_key_patterns: Vec<String>,
    #[serde(default)]
    pub hash_function: String,
    #[serde(default)]
    pub hmac_key: Secret,
    #[serde(default)]
    pub ignored_keys: Vec<String>,
    #[serde(default)]
    pub ignored_key_patterns: Vec<String>,
    #[serde(default)]
    pub redact_all_types: bool,
    #[serde(default)]
    pub blocked_values: Vec<String>,
    #[serde(default)]
    pub allowed_values: Vec<String>,
    #[serde(default)]
    pub db_sanitizer: DbSanitizerConfig,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub url_sanitizer: UrlSanitizerConfig,
}

/// `db_sanitizer`: query obfuscation per database system. Accepted while every system is
/// off; Redline does not obfuscate queries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSanitizerConfig {
    #[serde(default)]
    pub sql: DbSystemConfig,
    #[serde(default)]
    pub redis: DbSystemConfig,
    #[serde(default)]
    pub valkey: DbSystemConfig,
    #[serde(default)]
    pub memcached: DbSystemConfig,
    #[serde(default)]
    pub mongo: DbSystemConfig,
    #[serde(default)]
    pub opensearch: DbSystemConfig,
    #[serde(default)]
    pub es: DbSystemConfig,
    #[serde(default)]
    pub sanitize_span_name: Option<bool>,
}

/// One database system's obfuscation switch and the attributes it reads.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbSystemConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub attributes: Vec<String>,
}

/// `url_sanitizer`: its switch, the attributes it reads, and whether span names are
/// sanitized.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSanitizerConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default)]
    pub sanitize_span_name: Option<bool>,
}

/// What the summary attributes say: `debug` the keys and counts, `info` the counts, anything
/// else nothing (otelcol compares the text exactly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summary {
    Debug,
    Info,
    Silent,
}

/// The section compiled: every list a lookup or a regex, in the configured order.
#[derive(Debug)]
pub struct Rules {
    pub allow_all_keys: bool,
    pub allowed_keys: HashSet<String>,
    pub ignored_keys: HashSet<String>,
    pub ignored_key_patterns: Vec<Regex>,
    pub blocked_key_patterns: Vec<Regex>,
    pub blocked_values: Vec<Regex>,
    pub allowed_values: Vec<Regex>,
    pub redact_all_types: bool,
    pub summary: Summary,
    pub masker: Masker,
}

/// The attributes the processor writes itself, always allowed so that a second pass keeps
/// them (otelcol's list: the `allowed` pair is not on it).
const OWN_KEYS: [&str; 5] = [
    "redaction.redacted.keys",
    "redaction.redacted.count",
    "redaction.masked.keys",
    "redaction.masked.count",
    "redaction.ignored.count",
];

/// Parses and compiles the section, or returns every problem in it.
pub fn compile(config: &ComponentConfig) -> Result<Rules, Vec<ConfigError>> {
    let parsed: RedactionConfig = config.parse().map_err(|e| vec![e])?;
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut regexes = |key: &str, patterns: &[String]| -> Vec<Regex> {
        patterns
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match redline_go_regex::compile(p) {
                Ok(re) => Some(re),
                Err(e) => {
                    problems.push((
                        format!("{key}[{i}]"),
                        format!("error compiling regex in list: {e}"),
                    ));
                    None
                }
            })
            .collect()
    };
    let ignored_key_patterns = regexes("ignored_key_patterns", &parsed.ignored_key_patterns);
    let blocked_key_patterns = regexes("blocked_key_patterns", &parsed.blocked_key_patterns);
    let blocked_values = regexes("blocked_values", &parsed.blocked_values);
    let allowed_values = regexes("allowed_values", &parsed.allowed_values);
    let hash = match Hash::parse(&parsed.hash_function, &parsed.hmac_key) {
        Ok(hash) => Some(hash),
        Err((key, reason)) => {
            problems.push((key.to_owned(), reason));
            None
        }
    };
    unsupported_sanitizers(&parsed, &mut problems);
    let (Some(hash), true) = (hash, problems.is_empty()) else {
        return Err(problems
            .into_iter()
            .map(|(key, reason)| config.invalid(&key, reason))
            .collect());
    };
    let mut allowed_keys: HashSet<String> = parsed.allowed_keys.into_iter().collect();
    allowed_keys.extend(OWN_KEYS.iter().map(|k| (*k).to_owned()));
    Ok(Rules {
        allow_all_keys: parsed.allow_all_keys,
        allowed_keys,
        ignored_keys: parsed.ignored_keys.into_iter().collect(),
        ignored_key_patterns,
        blocked_key_patterns,
        blocked_values,
        allowed_values,
        redact_all_types: parsed.redact_all_types,
        summary: match parsed.summary.as_str() {
            "debug" => Summary::Debug,
            "info" => Summary::Info,
            _ => Summary::Silent,
        },
        masker: Masker::new(hash),
    })
}

/// Query and URL sanitizing are not implemented: a sanitizer switched on is refused rather
/// than left doing nothing.
fn unsupported_sanitizers(parsed: &RedactionConfig, problems: &mut Vec<(String, String)>) {
    let db = &parsed.db_sanitizer;
    let switches = [
        ("url_sanitizer", parsed.url_sanitizer.enabled),
        ("db_sanitizer.sql", db.sql.enabled),
        ("db_sanitizer.redis", db.redis.enabled),
        ("db_sanitizer.valkey", db.valkey.enabled),
        ("db_sanitizer.memcached", db.memcached.enabled),
        ("db_sanitizer.mongo", db.mongo.enabled),
        ("db_sanitizer.opensearch", db.opensearch.enabled),
        ("db_sanitizer.es", db.es.enabled),
    ];
    for (key, enabled) in switches {
        if enabled {
            problems.push((
                format!("{key}.enabled"),
                "not supported by Redline: it does not sanitize URLs or database queries"
                    .to_owned(),
            ));
        }
    }
}
