//! `service.telemetry.logs`: otelcol's zap logger settings, mapped onto Redline's
//! `tracing` logger. What has a meaning here is honoured; what has none (callers, stack
//! traces, zap's own error output) is accepted with a notice saying so.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::load::{find_value_mark, Loader};
use super::telemetry::AttributeValue;
use super::yaml::{join_key, key_text};
use super::{de, Node, NodeValue};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogsConfig {
    /// `debug`, `info`, `warn` or `error` (zap's `dpanic`, `panic` and `fatal` read as
    /// `error`, the most severe level Redline logs at, with a notice).
    pub level: Option<String>,
    /// `console`, `json` or `logfmt`.
    pub encoding: Option<String>,
    /// Where log lines go; `None` is stderr, an empty list discards them (as zap does).
    pub output_paths: Option<Vec<LogOutput>>,
    /// Fields added to every log line, in file order.
    pub initial_fields: Vec<(String, AttributeValue)>,
    /// Set when sampling is enabled.
    pub sampling: Option<LogsSampling>,
    /// Settings accepted without effect, each saying why; logged once logging is set up.
    pub notices: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
    /// Appended to, created if missing.
    File(PathBuf),
}

/// zap's sampler: per `tick`, the first `initial` lines with the same level and message are
/// written, then every `thereafter`-th (none when 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogsSampling {
    pub tick: Duration,
    pub initial: u64,
    pub thereafter: u64,
}

const LEVELS: [&str; 7] = ["debug", "info", "warn", "error", "dpanic", "panic", "fatal"];

impl Loader {
    pub(super) fn logs(&mut self, key: &Node, node: &Node, path: &str) -> Option<LogsConfig> {
        let raw = match de::from_node::<LogsRaw>(node, &self.file, path, key.mark) {
            Ok(raw) => raw,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let mut valid = true;
        let mut logs = LogsConfig::default();
        let mut fail = |this: &mut Self, field: &str, reason: String| {
            valid = false;
            let mark = find_value_mark(node, field).unwrap_or(key.mark);
            this.error(mark, join_key(path, field), reason);
        };
        if let Some(level) = raw.level {
            // zap reads levels case-insensitively; keep one spelling downstream.
            let lower = level.to_ascii_lowercase();
            match lower.as_str() {
                "" => {}
                "dpanic" | "panic" | "fatal" => {
                    logs.notices.push(format!(
                        "{path}.level: `{lower}` reads as `error`: Redline has no log level \
                         above error"
                    ));
                    logs.level = Some("error".into());
                }
                l if LEVELS.contains(&l) => logs.level = Some(lower),
                _ => fail(
                    self,
                    "level",
                    format!("`{level}` is not one of {}", LEVELS.join(", ")),
                ),
            }
        }
        if let Some(encoding) = raw.encoding {
            let lower = encoding.to_ascii_lowercase();
            if ["console", "json", "logfmt"].contains(&lower.as_str()) {
                logs.encoding = Some(lower);
            } else {
                fail(
                    self,
                    "encoding",
                    format!("`{encoding}` is not one of console, json, logfmt"),
                );
            }
        }
        if let Some(paths) = raw.output_paths {
            match paths.iter().map(|p| output(p)).collect() {
                Ok(outputs) => logs.output_paths = Some(outputs),
                Err(reason) => fail(self, "output_paths", reason),
            }
        }
        if let Some(paths) = raw.error_output_paths {
            if paths != ["stderr"] {
                logs.notices.push(format!(
                    "{path}.error_output_paths: accepted without effect; it is where zap reports \
                     its own failures, and Redline's logger has no such output"
                ));
            }
        }
        for (field, set, what) in [
            ("development", raw.development, "has no development mode"),
            ("disable_caller", raw.disable_caller, "logs no callers"),
            (
                "disable_stacktrace",
                raw.disable_stacktrace,
                "logs no stack traces",
            ),
            (
                "disable_zap_resource",
                raw.disable_zap_resource,
                "adds no resource to its log lines",
            ),
        ] {
            if set.is_some() {
                logs.notices.push(format!(
                    "{path}.{field}: accepted without effect; Redline {what}"
                ));
            }
        }
        if let Some(sampling) = raw.sampling {
            match sampling.resolve() {
                Ok(s) => logs.sampling = s,
                Err(reason) => fail(self, "sampling", reason),
            }
        }
        match self.initial_fields(node, path) {
            Ok(fields) => logs.initial_fields = fields,
            Err(()) => valid = false,
        }
        if matches!(&raw.processors, Some(p) if !p.is_empty()) {
            let mark = find_value_mark(node, "processors").unwrap_or(key.mark);
            self.error(
                mark,
                join_key(path, "processors"),
                "is not supported by Redline: it does not export its own logs over OTLP; \
                 write them to output_paths and collect them from there",
            );
            valid = false;
        }
        valid.then_some(logs)
    }

    /// `initial_fields`: a map of names to scalar values, added to every line.
    fn initial_fields(
        &mut self,
        logs: &Node,
        path: &str,
    ) -> Result<Vec<(String, AttributeValue)>, ()> {
        let NodeValue::Map(entries) = &logs.value else {
            return Ok(Vec::new());
        };
        let Some((_, node)) = entries
            .iter()
            .find(|(k, _)| key_text(k) == "initial_fields")
        else {
            return Ok(Vec::new());
        };
        let field_path = join_key(path, "initial_fields");
        let Some(fields) = self.entries(node, &field_path, "a map of field names to values") else {
            return Err(());
        };
        let mut out = Vec::with_capacity(fields.len());
        let mut ok = true;
        for (k, v) in fields {
            match &v.value {
                NodeValue::Scalar { text, quoted } => {
                    out.push((
                        key_text(k).to_owned(),
                        AttributeValue::of_scalar(text, *quoted),
                    ));
                }
                NodeValue::Null => {}
                _ => {
                    ok = false;
                    self.error(
                        v.mark,
                        join_key(&field_path, key_text(k)),
                        "must be a string, number or bool (Redline does not log nested fields)",
                    );
                }
            }
        }
        if ok {
            Ok(out)
        } else {
            Err(())
        }
    }
}

/// One of zap's output paths: `stdout`, `stderr`, a file path, or a `file://` URL.
fn output(p: &str) -> Result<LogOutput, String> {
    match p {
        "stdout" => Ok(LogOutput::Stdout),
        "stderr" => Ok(LogOutput::Stderr),
        "" => Err("an output path is empty".into()),
        _ => {
            if let Some(rest) = p.strip_prefix("file://") {
                // zap takes `file:///abs/path` (an empty host) only.
                return match rest.strip_prefix('/') {
                    Some(_) => Ok(LogOutput::File(PathBuf::from(rest))),
                    None => Err(format!("`{p}`: a file URL must be absolute (file:///path)")),
                };
            }
            if p.contains("://") {
                return Err(format!(
                    "`{p}`: only stdout, stderr, file paths and file:// URLs are supported"
                ));
            }
            Ok(LogOutput::File(PathBuf::from(p)))
        }
    }
}

impl SamplingRaw {
    /// otelcol merges the file's settings into its defaults (on, 10s, 10, 100).
    fn resolve(self) -> Result<Option<LogsSampling>, String> {
        if !self.enabled.unwrap_or(true) {
            return Ok(None);
        }
        let tick = match self.tick.as_deref() {
            None => Duration::from_secs(10),
            Some(t) => crate::duration::parse(t).map_err(|e| format!("tick: {e}"))?,
        };
        let count = |v: Option<i64>, default: u64, what: &str| match v {
            None => Ok(default),
            Some(n) => u64::try_from(n).map_err(|_| format!("{what} must not be negative")),
        };
        Ok(Some(LogsSampling {
            tick,
            initial: count(self.initial, 10, "initial")?,
            thereafter: count(self.thereafter, 100, "thereafter")?,
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsRaw {
    level: Option<String>,
    encoding: Option<String>,
    development: Option<bool>,
    disable_caller: Option<bool>,
    disable_stacktrace: Option<bool>,
    disable_zap_resource: Option<bool>,
    sampling: Option<SamplingRaw>,
    output_paths: Option<Vec<String>>,
    error_output_paths: Option<Vec<String>>,
    /// Read from the tree by [`Loader::initial_fields`], which keeps the values' types.
    #[allow(dead_code)]
    initial_fields: Option<serde::de::IgnoredAny>,
    processors: Option<Vec<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplingRaw {
    enabled: Option<bool>,
    tick: Option<String>,
    initial: Option<i64>,
    thereafter: Option<i64>,
}
