//! Retrying failed sends: otelcol's `retry_on_failure` keys (`configretry.BackOffConfig`),
//! their checks, and the exponential backoff schedule they describe. Every exporter that
//! retries embeds [`RetryConfig`], so the keys, checks and timing are the same everywhere;
//! what counts as retryable stays with the exporter's protocol.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Deserializer};

use crate::duration;

/// otelcol's `configretry.BackOffConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    pub enabled: bool,
    pub initial_interval: Duration,
    pub randomization_factor: f64,
    pub multiplier: f64,
    pub max_interval: Duration,
    /// Zero: retry forever.
    pub max_elapsed_time: Duration,
}

impl Default for RetryConfig {
    /// otelcol's `configretry.NewDefaultBackOffConfig`.
    fn default() -> Self {
        Self {
            enabled: true,
            initial_interval: Duration::from_secs(5),
            randomization_factor: 0.5,
            multiplier: 1.5,
            max_interval: Duration::from_secs(30),
            max_elapsed_time: Duration::from_secs(300),
        }
    }
}

/// A bad `retry_on_failure` value: `key` is relative to the section (`multiplier`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidRetry {
    pub key: &'static str,
    pub reason: &'static str,
}

/// The keys of a `retry_on_failure` section, each absent unless written: otelcol lays what a
/// user writes over the component's own defaults, which differ between exporters.
#[derive(Deserialize)]
#[serde(rename = "RetryConfig", deny_unknown_fields)]
struct WrittenKeys {
    #[serde(default, deserialize_with = "written")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "written_duration")]
    initial_interval: Option<Duration>,
    #[serde(default, deserialize_with = "written")]
    randomization_factor: Option<f64>,
    #[serde(default, deserialize_with = "written")]
    multiplier: Option<f64>,
    #[serde(default, deserialize_with = "written_duration")]
    max_interval: Option<Duration>,
    #[serde(default, deserialize_with = "written_duration")]
    max_elapsed_time: Option<Duration>,
}

/// A key that is written must hold a value: `multiplier:` left empty is an error, as it is for
/// a plain field, rather than "use the default".
fn written<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn written_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for RetryConfig {
    /// Over otelcol's defaults; an exporter with other defaults uses
    /// [`RetryConfig::deserialize_over`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::deserialize_over(Self::default(), d)
    }
}

impl RetryConfig {
    /// Reads a `retry_on_failure` section: the keys written replace those of `defaults`. For a
    /// field `#[serde(default = "my_defaults", deserialize_with = "…")]`, with a function
    /// that calls this one with the same defaults.
    pub fn deserialize_over<'de, D: Deserializer<'de>>(
        defaults: Self,
        d: D,
    ) -> Result<Self, D::Error> {
        let w = WrittenKeys::deserialize(d)?;
        Ok(Self {
            enabled: w.enabled.unwrap_or(defaults.enabled),
            initial_interval: w.initial_interval.unwrap_or(defaults.initial_interval),
            randomization_factor: w
                .randomization_factor
                .unwrap_or(defaults.randomization_factor),
            multiplier: w.multiplier.unwrap_or(defaults.multiplier),
            max_interval: w.max_interval.unwrap_or(defaults.max_interval),
            max_elapsed_time: w.max_elapsed_time.unwrap_or(defaults.max_elapsed_time),
        })
    }

    /// Every check serde cannot express. A disabled section is not checked: its values are
    /// never used.
    pub fn check(&self) -> Result<(), InvalidRetry> {
        let invalid = |key, reason| Err(InvalidRetry { key, reason });
        if !self.enabled {
            return Ok(());
        }
        if !self.randomization_factor.is_finite()
            || !(0.0..=1.0).contains(&self.randomization_factor)
        {
            return invalid("randomization_factor", "must be within [0, 1]");
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return invalid(
                "multiplier",
                "must be a number >= 1 (the backoff must not shrink)",
            );
        }
        if self.initial_interval.is_zero() {
            return invalid("initial_interval", "must be positive");
        }
        if self.max_interval < self.initial_interval {
            return invalid("max_interval", "must not be less than initial_interval");
        }
        if !self.max_elapsed_time.is_zero() && self.max_elapsed_time < self.initial_interval {
            return invalid(
                "max_elapsed_time",
                "must be 0 (retry forever) or not less than initial_interval",
            );
        }
        Ok(())
    }

    /// The waits between the attempts of one send.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            current: self.initial_interval,
            max: self.max_interval,
            multiplier: self.multiplier,
            randomization: self.randomization_factor.clamp(0.0, 1.0),
        }
    }
}

/// otelcol's exponential backoff: the interval starts at `initial_interval`, is multiplied by
/// `multiplier` after each wait up to `max_interval`, and each wait is drawn uniformly from
/// interval × [1 − randomization_factor, 1 + randomization_factor] so that many senders
/// failing together do not retry in lockstep.
#[derive(Clone, Debug)]
pub struct Backoff {
    current: Duration,
    max: Duration,
    multiplier: f64,
    randomization: f64,
}

impl Backoff {
    /// The next wait.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current.as_secs_f64();
        let delta = base * self.randomization;
        let wait = if delta > 0.0 {
            rand::rng().random_range((base - delta)..=(base + delta))
        } else {
            base
        };
        let next = (base * self.multiplier).min(self.max.as_secs_f64());
        self.current = Duration::try_from_secs_f64(next).unwrap_or(self.max);
        Duration::try_from_secs_f64(wait.max(0.0)).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_bounds() {
        let cfg = RetryConfig {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(400),
            multiplier: 2.0,
            randomization_factor: 0.5,
            ..RetryConfig::default()
        };
        let mut b = cfg.backoff();
        let bounds = [(50, 150), (100, 300), (200, 600), (200, 600), (200, 600)];
        for (lo, hi) in bounds {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi),
                "{d:?} not in [{lo}, {hi}] ms"
            );
        }
    }

    /// Parses `retry_on_failure` through the real config loader, over defaults unlike otelcol's.
    fn load(section: &str) -> Result<RetryConfig, String> {
        fn quick() -> RetryConfig {
            RetryConfig {
                initial_interval: Duration::from_millis(50),
                max_interval: Duration::from_millis(200),
                ..RetryConfig::default()
            }
        }
        fn over_quick<'de, D: Deserializer<'de>>(d: D) -> Result<RetryConfig, D::Error> {
            RetryConfig::deserialize_over(quick(), d)
        }
        #[derive(Deserialize)]
        struct Exporter {
            #[serde(default = "quick", deserialize_with = "over_quick")]
            retry_on_failure: RetryConfig,
        }
        let yaml = format!(
            "exporters:\n  otlp:\n{section}\nservice:\n  pipelines:\n    traces:\n      \
             receivers: [otlp]\n      exporters: [otlp]\n"
        );
        let config = crate::config::load_str_with_env("t.yaml", &yaml, &|_| None)
            .map_err(|e| e.to_string())?;
        let e: Exporter = config.exporters[0].parse().map_err(|e| e.to_string())?;
        Ok(e.retry_on_failure)
    }

    #[test]
    fn written_keys_replace_the_exporters_defaults() {
        let absent = load("    endpoint: x").expect("no section");
        assert_eq!(absent.initial_interval, Duration::from_millis(50));
        let some = load("    retry_on_failure:\n      max_interval: 1s\n      multiplier: 2")
            .expect("partial section");
        assert_eq!(
            some,
            RetryConfig {
                initial_interval: Duration::from_millis(50),
                max_interval: Duration::from_secs(1),
                multiplier: 2.0,
                ..RetryConfig::default()
            }
        );
        let e = load("    retry_on_failure:\n      max_intreval: 1s").expect_err("typo");
        assert!(
            e.contains("retry_on_failure") && e.contains("max_intreval"),
            "{e}"
        );
        let e = load("    retry_on_failure:\n      multiplier:").expect_err("empty value");
        assert!(e.contains("retry_on_failure.multiplier"), "{e}");
        let e = load("    retry_on_failure:\n      initial_interval: 5").expect_err("no unit");
        assert!(e.contains("retry_on_failure.initial_interval"), "{e}");
    }

    #[test]
    fn checks_name_the_key() {
        let key = |f: &dyn Fn(&mut RetryConfig)| {
            let mut c = RetryConfig::default();
            f(&mut c);
            c.check().err().map(|e| e.key)
        };
        assert_eq!(key(&|_| {}), None);
        assert_eq!(key(&|c| c.multiplier = 0.5), Some("multiplier"));
        assert_eq!(key(&|c| c.multiplier = f64::NAN), Some("multiplier"));
        assert_eq!(
            key(&|c| c.randomization_factor = 2.0),
            Some("randomization_factor")
        );
        assert_eq!(
            key(&|c| c.initial_interval = Duration::ZERO),
            Some("initial_interval")
        );
        assert_eq!(
            key(&|c| c.max_interval = Duration::from_secs(1)),
            Some("max_interval")
        );
        assert_eq!(
            key(&|c| c.max_elapsed_time = Duration::from_secs(1)),
            Some("max_elapsed_time")
        );
        assert_eq!(key(&|c| c.max_elapsed_time = Duration::ZERO), None);
        assert_eq!(
            key(&|c| {
                c.enabled = false;
                c.multiplier = 0.0;
            }),
            None,
            "a disabled section is not checked"
        );
    }
}
