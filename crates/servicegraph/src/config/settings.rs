//! Validation of the section into the [`Settings`] the connector uses: every value is checked
//! up front, so the error names the key and a running connector never meets a bad value.

use std::time::Duration;

use super::{Config, DEFAULT_BUCKETS_S, DEFAULT_DATABASE_NAME_ATTRIBUTES, DEFAULT_PEER_ATTRIBUTES};

use redline_pipeline::CheckAll;
pub use redline_pipeline::Invalid;

/// The config after validation, defaults resolved as otelcol resolves them.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Upper-inclusive bucket bounds in seconds.
    pub buckets: Vec<f64>,
    pub dimensions: Vec<String>,
    pub ttl: Duration,
    pub max_items: usize,
    pub cache_loop: Duration,
    pub store_expiration_loop: Duration,
    /// Empty: no virtual nodes.
    pub peer_attributes: Vec<String>,
    pub virtual_node_extra_label: bool,
    /// Zero: push after every batch.
    pub flush_interval: Duration,
    pub timestamp_offset: Duration,
    pub database_name_attributes: Vec<String>,
    pub span_multiplier_key: Option<String>,
}

fn check_names(path: &str, names: &[String], problems: &mut Vec<Invalid>) {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            problems.push(Invalid::new(format!("{path}[{i}]"), "must not be empty"));
        } else if names[..i].contains(name) {
            problems.push(Invalid::new(
                format!("{path}[{i}]"),
                format!("duplicate `{name}`"),
            ));
        }
    }
}

impl CheckAll for Config {
    type Checked = Settings;

    /// Checks every value and resolves defaults.
    fn check_all(&self) -> Result<Settings, Vec<Invalid>> {
        let mut problems = Vec::new();
        if self.exponential_histogram_max_size < 0 {
            problems.push(Invalid::new(
                "exponential_histogram_max_size",
                "can not be negative",
            ));
        }
        if self.exponential_histogram_max_size > 0 {
            let reason = if self.latency_histogram_buckets.is_some() {
                "use either `latency_histogram_buckets` or `exponential_histogram_max_size`; \
                 Redline supports only `latency_histogram_buckets`"
            } else {
                "exponential latency histograms are not supported by Redline's servicegraph \
                 connector; remove the key to get explicit buckets (`latency_histogram_buckets`)"
            };
            problems.push(Invalid::new("exponential_histogram_max_size", reason));
        }
        let buckets: Vec<f64> = match &self.latency_histogram_buckets {
            Some(b) => b.iter().map(Duration::as_secs_f64).collect(),
            None => DEFAULT_BUCKETS_S.to_vec(),
        };
        for (i, pair) in buckets.windows(2).enumerate() {
            if pair[1] <= pair[0] {
                problems.push(Invalid::new(
                    "latency_histogram_buckets",
                    format!(
                        "bounds must be strictly ascending: entry {} is not greater than entry {i}",
                        i + 1
                    ),
                ));
                break;
            }
        }

        check_names("dimensions", &self.dimensions, &mut problems);
        let peer_attributes = match &self.virtual_node_peer_attributes {
            Some(list) => list.clone(),
            None => DEFAULT_PEER_ATTRIBUTES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        check_names(
            "virtual_node_peer_attributes",
            &peer_attributes,
            &mut problems,
        );
        check_names(
            "database_name_attributes",
            &self.database_name_attributes,
            &mut problems,
        );
        let database_name_attributes = if !self.database_name_attributes.is_empty() {
            self.database_name_attributes.clone()
        } else if let Some(single) = self.database_name_attribute.as_ref() {
            if single.is_empty() {
                problems.push(Invalid::new("database_name_attribute", "must not be empty"));
            }
            vec![single.clone()]
        } else {
            DEFAULT_DATABASE_NAME_ATTRIBUTES
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        };

        // otelcol would drop every span with 0 (its store is always full); say so instead.
        let max_items = usize::try_from(self.store.max_items)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                problems.push(Invalid::new(
                    "store.max_items",
                    "must be a positive number of edges",
                ));
                1
            });

        if matches!(&self.span_multiplier_key, Some(k) if k.is_empty()) {
            problems.push(Invalid::new("span_multiplier_key", "must not be empty"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        Ok(Settings {
            buckets,
            dimensions: self.dimensions.clone(),
            ttl: self.store.ttl,
            max_items,
            // otelcol replaces a zero loop period by its default.
            cache_loop: nonzero_or(self.cache_loop, Duration::from_secs(60)),
            store_expiration_loop: nonzero_or(self.store_expiration_loop, Duration::from_secs(2)),
            peer_attributes,
            virtual_node_extra_label: self.virtual_node_extra_label,
            flush_interval: self
                .metrics_flush_interval
                .unwrap_or(Duration::from_secs(60)),
            timestamp_offset: self.metrics_timestamp_offset,
            database_name_attributes,
            span_multiplier_key: self.span_multiplier_key.clone(),
        })
    }
}

fn nonzero_or(d: Duration, default: Duration) -> Duration {
    if d.is_zero() {
        default
    } else {
        d
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_otelcols() {
        let s = Config::default().settings().expect("valid");
        assert_eq!(s.buckets, DEFAULT_BUCKETS_S.to_vec());
        assert_eq!(s.ttl, Duration::from_secs(2));
        assert_eq!(s.max_items, 1000);
        assert_eq!(s.cache_loop, Duration::from_secs(60));
        assert_eq!(s.store_expiration_loop, Duration::from_secs(2));
        assert_eq!(s.peer_attributes, ["peer.service", "db.name", "db.system"]);
        assert_eq!(s.database_name_attributes, ["db.name"]);
        assert_eq!(s.flush_interval, Duration::from_secs(60));
        assert_eq!(s.timestamp_offset, Duration::ZERO);
        assert!(!s.virtual_node_extra_label);
    }

    #[test]
    fn errors_name_their_keys() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|c| c.exponential_histogram_max_size = 160),
                "exponential_histogram_max_size",
            ),
            (
                Box::new(|c| c.exponential_histogram_max_size = -1),
                "exponential_histogram_max_size",
            ),
            (
                Box::new(|c| {
                    c.latency_histogram_buckets =
                        Some(vec![Duration::from_millis(5), Duration::from_millis(5)])
                }),
                "latency_histogram_buckets",
            ),
            (Box::new(|c| c.store.max_items = 0), "store.max_items"),
            (
                Box::new(|c| c.dimensions = vec!["a".into(), "a".into()]),
                "dimensions[1]",
            ),
            (
                Box::new(|c| c.virtual_node_peer_attributes = Some(vec![String::new()])),
                "virtual_node_peer_attributes[0]",
            ),
            (
                Box::new(|c| c.span_multiplier_key = Some(String::new())),
                "span_multiplier_key",
            ),
        ];
        for (change, path) in cases {
            let mut c = Config::default();
            change(&mut c);
            assert_eq!(c.settings().expect_err(path).key_path, path);
        }
    }

    #[test]
    fn deprecated_database_name_attribute_is_used_when_the_list_is_empty() {
        let mut c = Config::default();
        c.database_name_attribute = Some("db.namespace".into());
        let s = c.settings().expect("valid");
        assert_eq!(s.database_name_attributes, ["db.namespace"]);
        assert_eq!(c.warnings().len(), 1);
        c.database_name_attributes = vec!["x".into()];
        assert_eq!(c.settings().expect("valid").database_name_attributes, ["x"]);
    }

    #[test]
    fn zero_loops_take_otelcols_defaults_and_an_empty_peer_list_disables_virtual_nodes() {
        let mut c = Config::default();
        c.cache_loop = Duration::ZERO;
        c.store_expiration_loop = Duration::ZERO;
        c.virtual_node_peer_attributes = Some(vec![]);
        c.metrics_flush_interval = Some(Duration::ZERO);
        let s = c.settings().expect("valid");
        assert_eq!(s.cache_loop, Duration::from_secs(60));
        assert_eq!(s.store_expiration_loop, Duration::from_secs(2));
        assert!(s.peer_attributes.is_empty());
        assert_eq!(s.flush_interval, Duration::ZERO);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let mut c = Config::default();
        c.exponential_histogram_max_size = -1;
        c.dimensions = vec!["a".into(), "a".into()];
        c.store.max_items = 0;
        c.span_multiplier_key = Some(String::new());
        let paths: Vec<String> = c.problems().into_iter().map(|p| p.key_path).collect();
        assert_eq!(
            paths,
            [
                "exponential_histogram_max_size",
                "dimensions[1]",
                "store.max_items",
                "span_multiplier_key"
            ]
        );
        assert!(Config::default().problems().is_empty());
    }
}
