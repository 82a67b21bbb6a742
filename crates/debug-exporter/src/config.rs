//! The sections of the `debug`, `logging` and `nop` exporters: otelcol's keys and defaults.

use redline_pipeline::config::Unsupported;
use serde::de::{self, Deserializer};
use serde::Deserialize;

pub use redline_pipeline::Invalid;

/// How much is printed per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verbosity {
    /// One summary line of counts.
    #[default]
    Basic,
    /// About one line per span, data point or log record.
    Normal,
    /// Every field of every item.
    Detailed,
}

impl<'de> Deserialize<'de> for Verbosity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // otelcol's configtelemetry levels are case-insensitive.
        match s.to_ascii_lowercase().as_str() {
            "basic" => Ok(Verbosity::Basic),
            "normal" => Ok(Verbosity::Normal),
            "detailed" => Ok(Verbosity::Detailed),
            "none" => Err(de::Error::custom(
                "`none` is not a verbosity of this exporter; use `basic`, `normal` or `detailed` (or the `nop` exporter)",
            )),
            _ => Err(de::Error::custom(format!(
                "unknown verbosity `{s}`; use `basic`, `normal` or `detailed`"
            ))),
        }
    }
}

fn two() -> i64 {
    2
}

fn one() -> i64 {
    1
}

fn five_hundred() -> i64 {
    500
}

fn yes() -> bool {
    true
}

/// `exporters.debug`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    #[serde(default)]
    pub verbosity: Verbosity,
    /// Batches printed per second before sampling starts.
    #[serde(default = "two")]
    pub sampling_initial: i64,
    /// After those, every this-many-th batch is printed; 1 prints all.
    #[serde(default = "one")]
    pub sampling_thereafter: i64,
    /// Print through Redline's own log (at info); otherwise to `output_paths`.
    #[serde(default = "yes")]
    pub use_internal_logger: bool,
    /// `stdout`, `stderr` or file paths (appended to); only without the internal logger.
    /// Absent or empty: `stdout`.
    #[serde(default)]
    pub output_paths: Option<Vec<String>>,
    #[serde(default)]
    pub sending_queue: Option<Unsupported>,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            verbosity: Verbosity::default(),
            sampling_initial: two(),
            sampling_thereafter: one(),
            use_internal_logger: true,
            output_paths: None,
            sending_queue: None,
        }
    }
}

/// `exporters.logging`, otelcol's former name of `debug` (removed in v0.111).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// Deprecated in otelcol in favour of `verbosity`: `debug` is `detailed`, `info` is
    /// `normal`, anything above is `basic`.
    #[serde(default)]
    pub loglevel: Option<String>,
    #[serde(default)]
    pub verbosity: Option<Verbosity>,
    #[serde(default = "two")]
    pub sampling_initial: i64,
    /// The logging exporter's own default, not debug's.
    #[serde(default = "five_hundred")]
    pub sampling_thereafter: i64,
}

/// `exporters.nop`: no settings.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NopConfig {}

fn check_sampling(initial: i64, thereafter: i64) -> Result<(), Invalid> {
    if initial < 0 {
        return Err(Invalid::new("sampling_initial", "must not be negative"));
    }
    if thereafter < 0 {
        return Err(Invalid::new("sampling_thereafter", "must not be negative"));
    }
    Ok(())
}

impl DebugConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        check_sampling(self.sampling_initial, self.sampling_thereafter)?;
        let paths = self.output_paths.as_deref().unwrap_or_default();
        if self.use_internal_logger && !paths.is_empty() {
            return Err(Invalid::new(
                "output_paths",
                "is only used with `use_internal_logger: false`",
            ));
        }
        if !self.use_internal_logger && self.output_paths.as_ref().is_some_and(Vec::is_empty) {
            // As otelcol: an explicit empty list would print nowhere.
            return Err(Invalid::new(
                "output_paths",
                "must not be empty when use_internal_logger is false",
            ));
        }
        if let Some(i) = paths.iter().position(|p| p.trim().is_empty()) {
            return Err(Invalid::new(
                format!("output_paths[{i}]"),
                "must not be empty",
            ));
        }
        Ok(())
    }

    /// The paths written to without the internal logger.
    pub fn paths(&self) -> Vec<String> {
        match self.output_paths.as_deref() {
            Some(p) if !p.is_empty() => p.to_vec(),
            _ => vec!["stdout".to_owned()],
        }
    }
}

impl LoggingConfig {
    pub fn check(&self) -> Result<(), Invalid> {
        check_sampling(self.sampling_initial, self.sampling_thereafter)?;
        if self.loglevel.is_some() && self.verbosity.is_some() {
            return Err(Invalid::new(
                "loglevel",
                "`loglevel` and `verbosity` are incompatible; use only `verbosity`",
            ));
        }
        self.verbosity().map(|_| ())
    }

    /// The verbosity, from `verbosity` or the deprecated `loglevel`; `normal` by default.
    pub fn verbosity(&self) -> Result<Verbosity, Invalid> {
        if let Some(v) = self.verbosity {
            return Ok(v);
        }
        let Some(level) = &self.loglevel else {
            return Ok(Verbosity::Normal);
        };
        match level.to_ascii_lowercase().as_str() {
            "debug" => Ok(Verbosity::Detailed),
            "info" => Ok(Verbosity::Normal),
            "warn" | "error" | "dpanic" | "panic" | "fatal" => Ok(Verbosity::Basic),
            _ => Err(Invalid::new(
                "loglevel",
                format!(
                    "log level `{level}` is not supported; use `verbosity: basic|normal|detailed`"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loglevel_maps_as_otelcol_did() {
        let v = |level: &str| {
            LoggingConfig {
                loglevel: Some(level.into()),
                ..LoggingConfig::default()
            }
            .verbosity()
        };
        assert_eq!(v("debug"), Ok(Verbosity::Detailed));
        assert_eq!(v("info"), Ok(Verbosity::Normal));
        assert_eq!(v("WARN"), Ok(Verbosity::Basic));
        assert_eq!(v("error"), Ok(Verbosity::Basic));
        assert_eq!(v("trace").map_err(|e| e.key_path), Err("loglevel".into()));
        assert_eq!(LoggingConfig::default().verbosity(), Ok(Verbosity::Normal));
        let both = LoggingConfig {
            loglevel: Some("debug".into()),
            verbosity: Some(Verbosity::Basic),
            ..LoggingConfig::default()
        };
        assert_eq!(both.check().map_err(|e| e.key_path), Err("loglevel".into()));
    }

    #[test]
    fn an_empty_output_paths_list_is_refused_as_otelcol_does() {
        let c = DebugConfig {
            use_internal_logger: false,
            output_paths: Some(Vec::new()),
            ..DebugConfig::default()
        };
        assert!(c.check().is_err());
    }

    #[test]
    fn output_paths_need_the_internal_logger_off() {
        let mut c = DebugConfig {
            output_paths: Some(vec!["stderr".into()]),
            ..DebugConfig::default()
        };
        assert_eq!(
            c.check().map_err(|e| e.key_path),
            Err("output_paths".into())
        );
        c.use_internal_logger = false;
        assert!(c.check().is_ok());
        assert_eq!(c.paths(), vec!["stderr".to_owned()]);
        c.output_paths = Some(vec![]);
        assert_eq!(c.paths(), vec!["stdout".to_owned()]);
        c.sampling_thereafter = -1;
        assert_eq!(
            c.check().map_err(|e| e.key_path),
            Err("sampling_thereafter".into())
        );
    }
}
