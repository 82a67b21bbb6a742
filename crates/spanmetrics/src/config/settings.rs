//! Validation of the section into the [`Settings`] the aggregator uses: every value is
//! checked up front, so the error names the key path and a running connector never meets a
//! bad value.

use std::time::Duration;

use super::glob::Glob;
use super::{Config, Dimension, CUMULATIVE, DEFAULT_BUCKETS_MS, DEFAULT_DIMENSIONS, DELTA};
use redline_pipeline::CheckAll;

pub use redline_pipeline::Invalid;

/// Unit of the duration histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
        }
    }

    pub fn nanos_per_unit(self) -> f64 {
        match self {
            Unit::Milliseconds => 1e6,
            Unit::Seconds => 1e9,
        }
    }
}

/// The config after validation, in the form the aggregator uses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub namespace: String,
    /// Which default dimensions are labels: service.name, span.name, span.kind, status.code.
    pub include: [bool; 4],
    pub dimensions: Vec<Dimension>,
    /// Explicit bucket bounds of the duration histogram, in `unit`; `None` when the histogram
    /// is off or exponential.
    pub histogram: Option<Vec<f64>>,
    /// `max_size` of the exponential duration histogram, when that is the one configured.
    pub exponential_max_size: Option<u32>,
    pub unit: Unit,
    pub exemplars: bool,
    pub cardinality_limit: usize,
    /// How long a series may go without a span before it is dropped: the shorter of
    /// `metrics_expiration` and `series_expiration` that is set. otelcol drops a resource's
    /// series together after `metrics_expiration` and single series after
    /// `series_expiration`; here a series is its label set, so both apply to it alone.
    pub expiration: Option<Duration>,
    pub flush_interval: Duration,
    /// How many of `dimensions` come from attributes (the first ones); synthetic ones follow.
    pub attribute_dims: usize,
    /// Where `sampling.method` (`enable_metrics_sampling_method`) is in `dimensions`.
    pub sampling_dim: Option<usize>,
    /// Where the two scope dimensions (`include_instrumentation_scope`) are in `dimensions`.
    pub scope_dims: Option<usize>,
    /// The scope names whose spans get them.
    pub include_scopes: Vec<String>,
    pub span_multiplier_key: Option<String>,
    pub tempo_red_table: bool,
    /// The events store's settings (`events.enabled`), derived from these.
    pub events: Option<Box<Settings>>,
    /// Whether this store serves `calls` and `errors`: not the one that keeps the duration
    /// histogram apart (below).
    pub serves_calls: bool,
    /// The settings of the store that keeps the duration histogram, when `calls_dimensions`
    /// or `histogram.dimensions` give it other labels than `calls` (these then have no
    /// histogram).
    pub duration: Option<Box<Settings>>,
    /// The glob dimensions' patterns.
    pub globs: Vec<Glob>,
    /// Where in `dimensions` the labels of the glob dimensions are kept, all in one value
    /// ([`crate::glob_labels`]), after the synthetic dimensions.
    pub glob_dim: Option<usize>,
}

/// otelcol's (go-expohisto's) default bucket count of an exponential histogram.
pub const DEFAULT_EXPONENTIAL_MAX_SIZE: u32 = 160;

impl Settings {
    /// Whether the duration family is served (explicit or exponential).
    pub fn has_duration(&self) -> bool {
        self.histogram.is_some() || self.exponential_max_size.is_some()
    }

    /// The dimensions read from attributes (the synthetic ones follow them).
    pub fn attribute_dimensions(&self) -> &[Dimension] {
        self.dimensions.get(..self.attribute_dims).unwrap_or(&[])
    }
}

impl CheckAll for Config {
    type Checked = Settings;

    /// Checks every value and resolves defaults.
    fn check_all(&self) -> Result<Settings, Vec<Invalid>> {
        let mut problems = Vec::new();
        let unit = match self.histogram.unit.as_str() {
            "ms" => Unit::Milliseconds,
            "s" => Unit::Seconds,
            other => {
                problems.push(Invalid::new(
                    "histogram.unit",
                    format!("unknown unit `{other}`: use `ms` or `s`"),
                ));
                Unit::Milliseconds
            }
        };
        let buckets: Vec<f64> = match self
            .histogram
            .explicit
            .as_ref()
            .and_then(|e| e.buckets.as_ref())
        {
            Some(b) => {
                if b.is_empty() {
                    problems.push(Invalid::new(
                        "histogram.explicit.buckets",
                        "must list at least one bucket bound",
                    ));
                }
                b.iter()
                    .map(|d| d.as_nanos() as f64 / unit.nanos_per_unit())
                    .collect()
            }
            None => DEFAULT_BUCKETS_MS
                .iter()
                .map(|ms| ms * 1e6 / unit.nanos_per_unit())
                .collect(),
        };
        for (i, pair) in buckets.windows(2).enumerate() {
            if pair[1] <= pair[0] {
                problems.push(Invalid::new(
                    "histogram.explicit.buckets",
                    format!(
                        "bounds must be strictly ascending: entry {} is not greater than entry {}",
                        i + 1,
                        i
                    ),
                ));
                break;
            }
        }
        if buckets.iter().any(|b| !b.is_finite()) {
            problems.push(Invalid::new(
                "histogram.explicit.buckets",
                "bounds must be finite",
            ));
        }

        let exponential_max_size = match &self.histogram.exponential {
            None => None,
            Some(_) if self.histogram.explicit.is_some() => {
                problems.push(Invalid::new(
                    "histogram",
                    "use either `explicit` or `exponential` buckets histogram",
                ));
                None
            }
            Some(e) => match e.max_size {
                None | Some(0) => Some(DEFAULT_EXPONENTIAL_MAX_SIZE),
                Some(n) if (2..=16384).contains(&n) => Some(n as u32),
                Some(n) => {
                    problems.push(Invalid::new(
                        "histogram.exponential.max_size",
                        format!(
                            "{n} is out of range: use 2 to 16384 buckets (0 for the default 160)"
                        ),
                    ));
                    None
                }
            },
        };

        match self.aggregation_temporality.as_str() {
            CUMULATIVE => {}
            DELTA => {
                problems.push(Invalid::new(
                    "aggregation_temporality",
                    "AGGREGATION_TEMPORALITY_DELTA is not supported: metrics are pulled by \
                     Prometheus, which needs cumulative; use AGGREGATION_TEMPORALITY_CUMULATIVE",
                ));
            }
            other => problems.push(Invalid::new(
                "aggregation_temporality",
                format!("unknown value `{other}`: use {CUMULATIVE}"),
            )),
        }

        let mut include = [true; 4];
        for (i, name) in self.exclude_dimensions.iter().enumerate() {
            match DEFAULT_DIMENSIONS.iter().position(|d| d == name) {
                Some(p) => include[p] = false,
                None => problems.push(Invalid::new(
                    format!("exclude_dimensions[{i}]"),
                    format!(
                        "`{name}` is not a default dimension (one of {})",
                        DEFAULT_DIMENSIONS.join(", ")
                    ),
                )),
            }
        }

        let globs = self.check_globs("dimensions", &self.dimensions, &mut problems);
        for (i, d) in self.dimensions.iter().enumerate() {
            if d.glob.is_some() {
                continue; // check_globs
            }
            let path = format!("dimensions[{i}].name");
            if d.name.is_empty() {
                problems.push(Invalid::new(path.as_str(), "must not be empty"));
            }
            if DEFAULT_DIMENSIONS.contains(&d.name.as_str()) {
                problems.push(Invalid::new(
                    path.as_str(),
                    format!(
                        "`{}` is a default dimension and cannot be added again",
                        d.name
                    ),
                ));
            }
            if self.dimensions[..i].iter().any(|p| p.name == d.name) {
                problems.push(Invalid::new(
                    path.as_str(),
                    format!("duplicate dimension `{}`", d.name),
                ));
            }
            if d.name == crate::OVERFLOW_LABEL {
                problems.push(Invalid::new(
                    path.as_str(),
                    "is reserved for the overflow series",
                ));
            }
            if !self.include_instrumentation_scope.is_empty()
                && (d.name == super::SCOPE_NAME || d.name == super::SCOPE_VERSION)
            {
                problems.push(Invalid::new(
                    path.as_str(),
                    "is a label include_instrumentation_scope adds; remove one of them",
                ));
            }
            if self.enable_metrics_sampling_method && d.name == super::SAMPLING_METHOD {
                problems.push(Invalid::new(
                    path.as_str(),
                    "is the label enable_metrics_sampling_method adds; remove one of them",
                ));
            }
            if self.tempo_red_table && d.name == super::TEMPO_SERVICE {
                problems.push(Invalid::new(
                    path.as_str(),
                    "is the label tempo_red_table adds; remove one of them",
                ));
            }
        }

        self.check_events(&mut problems);
        self.check_family_dims(&mut problems);

        let cardinality_limit =
            usize::try_from(self.aggregation_cardinality_limit).unwrap_or_else(|_| {
                problems.push(Invalid::new(
                    "aggregation_cardinality_limit",
                    "must be 0 (unlimited) or a positive number of series",
                ));
                0
            });

        for (key, v) in [
            ("dimensions_cache_size", self.dimensions_cache_size),
            (
                "resource_metrics_cache_size",
                self.resource_metrics_cache_size,
            ),
            (
                "metric_timestamp_cache_size",
                self.metric_timestamp_cache_size,
            ),
        ] {
            if matches!(v, Some(n) if n < 0) {
                problems.push(Invalid::new(key, "must not be negative"));
            }
        }

        let exemplars = match self.exemplars.max_per_data_point {
            Some(n) if n < 0 => {
                problems.push(Invalid::new(
                    "exemplars.max_per_data_point",
                    "must not be negative",
                ));
                false
            }
            Some(0) => false,
            _ => self.exemplars.enabled,
        };

        if self.metrics_flush_interval.is_zero() {
            problems.push(Invalid::new(
                "metrics_flush_interval",
                "must be greater than 0",
            ));
        }
        if self.tempo_red_table && exponential_max_size.is_some() {
            problems.push(Invalid::new(
                "tempo_red_table",
                "needs explicit buckets: the RED table reads `latency_bucket` series, which an \
                 exponential histogram does not have",
            ));
        }
        if self.tempo_red_table && !include[0] {
            problems.push(Invalid::new(
                "tempo_red_table",
                "needs the service.name dimension (it is in exclude_dimensions)",
            ));
        }
        if matches!(&self.span_multiplier_key, Some(k) if k.is_empty()) {
            problems.push(Invalid::new("span_multiplier_key", "must not be empty"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut dimensions: Vec<Dimension> = self
            .dimensions
            .iter()
            .filter(|d| d.glob.is_none())
            .cloned()
            .collect();
        let attribute_dims = dimensions.len();
        let sampling_dim = self
            .enable_metrics_sampling_method
            .then_some(attribute_dims);
        if self.enable_metrics_sampling_method {
            dimensions.push(Dimension {
                name: super::SAMPLING_METHOD.to_owned(),
                default: None,
                glob: None,
            });
        }

        // Two more synthetic dimensions, after sampling.method: the scope's name and version.
        let scope_dims = (!self.include_instrumentation_scope.is_empty()).then(|| {
            let at = dimensions.len();
            for name in [super::SCOPE_NAME, super::SCOPE_VERSION] {
                dimensions.push(Dimension {
                    name: name.to_owned(),
                    default: None,
                    glob: None,
                });
            }
            at
        });

        // Last, the slot of the glob dimensions' labels.
        let glob_dim = (!globs.is_empty()).then(|| {
            dimensions.push(Dimension::default());
            dimensions.len() - 1
        });

        let mut settings = Settings {
            namespace: self.namespace.clone(),
            include,
            dimensions,
            histogram: (!self.histogram.disable && exponential_max_size.is_none())
                .then_some(buckets),
            exponential_max_size: exponential_max_size.filter(|_| !self.histogram.disable),
            unit,
            exemplars,
            cardinality_limit,
            expiration: [self.metrics_expiration, self.series_expiration]
                .into_iter()
                .filter(|d| !d.is_zero())
                .min(),
            flush_interval: self.metrics_flush_interval,
            attribute_dims,
            sampling_dim,
            scope_dims,
            include_scopes: self
                .include_instrumentation_scope
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            span_multiplier_key: self.span_multiplier_key.clone(),
            tempo_red_table: self.tempo_red_table,
            events: None,
            serves_calls: true,
            duration: None,
            globs,
            glob_dim,
        };
        // Events carry the shared dimensions only, not those of calls or duration.
        settings.events = self.events_settings(&settings);
        Ok(self.with_family_dims(settings))
    }
}

impl Config {
    /// Settings that are accepted but do nothing in Redline, for a startup warning.
    pub fn ignored_settings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.dimensions_cache_size.is_some() {
            out.push("dimensions_cache_size");
        }
        if self.resource_metrics_cache_size.is_some() {
            out.push("resource_metrics_cache_size");
        }
        if self.metric_timestamp_cache_size.is_some() {
            out.push("metric_timestamp_cache_size");
        }
        if !self.resource_metrics_key_attributes.is_empty() {
            out.push("resource_metrics_key_attributes");
        }
        if matches!(self.exemplars.max_per_data_point, Some(n) if n > 1) {
            out.push("exemplars.max_per_data_point (Redline keeps one exemplar per series)");
        }
        out
    }
}

#[cfg(test)]
// Each test changes one field of the defaults; spelling that as an assignment reads best.
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::config::ExplicitConfig;

    #[test]
    fn defaults_match_otelcol_and_redline_decisions() {
        let s = Config::default().settings().expect("defaults are valid");
        assert_eq!(s.namespace, "traces.span.metrics");
        assert_eq!(s.include, [true; 4]);
        assert_eq!(s.unit, Unit::Milliseconds);
        assert_eq!(s.histogram.as_deref(), Some(&DEFAULT_BUCKETS_MS[..]));
        assert!(s.exemplars, "Redline enables exemplars by default");
        assert_eq!(s.cardinality_limit, 100_000, "Redline: limit on by default");
        assert_eq!(
            s.expiration,
            Some(Duration::from_secs(900)),
            "Redline: idle series expire by default"
        );
        assert_eq!(s.flush_interval, Duration::from_secs(60));
    }

    #[test]
    fn default_buckets_in_seconds() {
        let mut c = Config::default();
        c.histogram.unit = "s".into();
        let s = c.settings().expect("valid");
        assert_eq!(
            s.histogram.expect("enabled"),
            vec![
                0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0,
                10.0, 15.0
            ]
        );
    }

    #[test]
    fn explicit_buckets_convert_to_unit() {
        let mut c = Config::default();
        c.histogram.explicit = Some(ExplicitConfig {
            buckets: Some(vec![
                Duration::from_micros(100),
                Duration::from_millis(1),
                Duration::from_millis(250),
            ]),
        });
        assert_eq!(
            c.settings().expect("valid").histogram.expect("on"),
            vec![0.1, 1.0, 250.0]
        );
    }

    fn err(c: &Config) -> Invalid {
        c.settings().expect_err("must be refused")
    }

    #[test]
    fn errors_name_their_paths() {
        let mut c = Config::default();
        c.histogram.unit = "us".into();
        assert_eq!(err(&c).key_path, "histogram.unit");

        let mut c = Config::default();
        c.histogram.explicit = Some(ExplicitConfig {
            buckets: Some(vec![Duration::from_millis(5), Duration::from_millis(5)]),
        });
        assert_eq!(err(&c).key_path, "histogram.explicit.buckets");

        let mut c = Config::default();
        c.histogram.explicit = Some(ExplicitConfig {
            buckets: Some(vec![]),
        });
        assert_eq!(err(&c).key_path, "histogram.explicit.buckets");

        let mut c = Config::default();
        c.aggregation_temporality = DELTA.into();
        assert_eq!(err(&c).key_path, "aggregation_temporality");

        let mut c = Config::default();
        c.dimensions = vec![
            Dimension {
                name: "a".into(),
                default: None,
                glob: None,
            },
            Dimension {
                name: "a".into(),
                default: None,
                glob: None,
            },
        ];
        assert_eq!(err(&c).key_path, "dimensions[1].name");

        let mut c = Config::default();
        c.dimensions = vec![Dimension {
            name: "span.kind".into(),
            default: None,
            glob: None,
        }];
        assert_eq!(err(&c).key_path, "dimensions[0].name");

        let mut c = Config::default();
        c.dimensions = vec![Dimension {
            name: "".into(),
            default: None,
            glob: None,
        }];
        assert_eq!(err(&c).key_path, "dimensions[0].name");

        let mut c = Config::default();
        c.exclude_dimensions = vec!["span.kind".into(), "nope".into()];
        assert_eq!(err(&c).key_path, "exclude_dimensions[1]");

        let mut c = Config::default();
        c.aggregation_cardinality_limit = -1;
        assert_eq!(err(&c).key_path, "aggregation_cardinality_limit");

        let mut c = Config::default();
        c.exemplars.max_per_data_point = Some(-2);
        assert_eq!(err(&c).key_path, "exemplars.max_per_data_point");
    }

    #[test]
    fn zero_restores_otelcol_unlimited_and_never() {
        let mut c = Config::default();
        c.aggregation_cardinality_limit = 0;
        c.metrics_expiration = Duration::ZERO;
        let s = c.settings().expect("valid");
        assert_eq!(s.cardinality_limit, 0);
        assert_eq!(s.expiration, None);
    }

    #[test]
    fn a_series_expires_after_the_shorter_of_the_two_expirations() {
        let expiration = |metrics: u64, series: u64| {
            let mut c = Config::default();
            c.metrics_expiration = Duration::from_secs(metrics);
            c.series_expiration = Duration::from_secs(series);
            c.settings().expect("valid").expiration
        };
        assert_eq!(expiration(900, 0), Some(Duration::from_secs(900)));
        assert_eq!(expiration(900, 60), Some(Duration::from_secs(60)));
        assert_eq!(expiration(60, 900), Some(Duration::from_secs(60)));
        assert_eq!(expiration(0, 120), Some(Duration::from_secs(120)));
        assert_eq!(expiration(0, 0), None);
    }

    #[test]
    fn exclude_and_exemplar_switches() {
        let mut c = Config::default();
        c.exclude_dimensions = vec!["span.kind".into()];
        c.exemplars.max_per_data_point = Some(0);
        c.histogram.disable = true;
        let s = c.settings().expect("valid");
        assert_eq!(s.include, [true, true, false, true]);
        assert!(!s.exemplars);
        assert!(s.histogram.is_none());
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let mut c = Config::default();
        c.histogram.unit = "h".into();
        c.exclude_dimensions = vec!["nope".into()];
        c.aggregation_cardinality_limit = -1;
        c.metrics_flush_interval = Duration::ZERO;
        let paths: Vec<String> = c.problems().into_iter().map(|p| p.key_path).collect();
        assert_eq!(
            paths,
            [
                "histogram.unit",
                "exclude_dimensions[0]",
                "aggregation_cardinality_limit",
                "metrics_flush_interval"
            ]
        );
        assert_eq!(
            c.settings().map_err(|e| e.key_path).err().as_deref(),
            Some("histogram.unit")
        );
        assert!(Config::default().problems().is_empty());
    }
}
