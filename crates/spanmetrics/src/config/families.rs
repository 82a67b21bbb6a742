//! Families with labels of their own: `calls_dimensions` and `histogram.dimensions` add
//! dimensions to the `calls` and the `duration` family on top of `dimensions`, as
//! `events.dimensions` does to the events family.
//!
//! One series record holds a label set's calls and its histogram, so when the two families
//! have different labels they are kept by two stores: the connector's own keeps calls (and
//! errors) by `dimensions` and `calls_dimensions`, and a second one the duration histogram by
//! `dimensions` and `histogram.dimensions`, as otelcol keeps them in two maps. Without either
//! key nothing changes: one store, one record per label set for every family.

use super::glob::Glob;
use super::{Config, Dimension, Settings, DEFAULT_DIMENSIONS};
use redline_pipeline::Invalid;

impl Config {
    /// Problems of the dimensions a family adds to `dimensions`, at `path` (a list key),
    /// pushed onto `problems`. `family` names the series that carry them, for the messages.
    pub(super) fn check_added_dims(
        &self,
        path: &str,
        family: &str,
        added: &[Dimension],
        problems: &mut Vec<Invalid>,
    ) {
        let scope = !self.include_instrumentation_scope.is_empty();
        let synthetic = [
            (self.enable_metrics_sampling_method, super::SAMPLING_METHOD),
            (scope, super::SCOPE_NAME),
            (scope, super::SCOPE_VERSION),
            (self.tempo_red_table, super::TEMPO_SERVICE),
            (true, crate::OVERFLOW_LABEL),
        ];
        self.check_globs(path, added, problems);
        // Reported where `dimensions` is checked; here only matched against.
        let shared_globs = self.check_globs("dimensions", &self.dimensions, &mut Vec::new());
        for (i, d) in added.iter().enumerate() {
            let name = d.name.as_str();
            let reason = if d.glob.is_some() {
                continue; // check_globs
            } else if name.is_empty() {
                "must not be empty".to_owned()
            } else if DEFAULT_DIMENSIONS.contains(&name) {
                format!("`{name}` is a default dimension and cannot be added again")
            } else if added[..i].iter().any(|p| p.name == name) {
                format!("duplicate dimension `{name}`")
            } else if self.dimensions.iter().any(|p| p.name == name) {
                format!(
                    "`{name}` is already in `dimensions`, and the {family} series carry those \
                     too: a series cannot have one label twice"
                )
            } else if synthetic.iter().any(|(on, label)| *on && *label == name) {
                format!("`{name}` is a label the connector adds itself")
            } else if let Some(pattern) = shared_globs
                .iter()
                .find(|g| g.matches(name))
                .map(Glob::as_str)
            {
                format!(
                    "`{name}` matches glob {pattern:?} of `dimensions`, and the {family} series \
                     carry those too: a series cannot have one label twice"
                )
            } else {
                continue;
            };
            problems.push(Invalid::new(format!("{path}[{i}].name"), reason));
        }
    }

    /// Whether calls and duration are kept apart: either has dimensions of its own, and the
    /// histogram is on.
    fn splits_families(&self) -> bool {
        let own_dims = !self.calls_dimensions.is_empty() || !self.histogram.dimensions.is_empty();
        own_dims && !self.histogram.disable
    }

    /// The problems of `calls_dimensions` and `histogram.dimensions`.
    pub(super) fn check_family_dims(&self, problems: &mut Vec<Invalid>) {
        self.check_added_dims(
            "calls_dimensions",
            "calls",
            &self.calls_dimensions,
            problems,
        );
        // Checked with the histogram off too, as otelcol checks them.
        self.check_added_dims(
            "histogram.dimensions",
            "duration",
            &self.histogram.dimensions,
            problems,
        );
        if self.splits_families() && self.storage.is_some() {
            problems.push(Invalid::new(
                "storage",
                "does not keep calls and duration across restarts yet when they have \
                 dimensions of their own: remove `storage`, or `calls_dimensions` and \
                 `histogram.dimensions`",
            ));
        }
    }

    /// `settings` (which have neither family's own dimensions yet) as the connector's store
    /// uses them: with the calls dimensions, and when the families are kept apart, without
    /// the histogram, which the settings of the store in `duration` keep.
    pub(super) fn with_family_dims(&self, settings: Settings) -> Settings {
        if !self.splits_families() {
            return settings.with_dims(&self.calls_dimensions);
        }
        let duration = Settings {
            serves_calls: false,
            events: None,
            duration: None,
            ..settings.with_dims(&self.histogram.dimensions)
        };
        Settings {
            histogram: None,
            exponential_max_size: None,
            duration: Some(Box::new(duration)),
            ..settings.with_dims(&self.calls_dimensions)
        }
    }
}

impl Settings {
    /// These settings with `added` after the attribute dimensions, ahead of the synthetic
    /// ones, so a span's values of all of them are looked up alike.
    /// Glob entries of `added` join the glob dimensions (their labels share one slot, added
    /// last if these settings had none).
    pub(super) fn with_dims(&self, added: &[Dimension]) -> Settings {
        let named = added.iter().filter(|d| d.glob.is_none());
        let n = named.clone().count();
        let at = self.attribute_dims;
        let mut dimensions = self.dimensions.clone();
        dimensions.splice(at..at, named.cloned());
        let mut globs = self.globs.clone();
        // Checked when the config was (`check_globs`).
        globs.extend(
            added
                .iter()
                .filter_map(|d| d.glob.as_deref())
                .filter_map(|p| Glob::compile(p).ok()),
        );
        let mut glob_dim = self.glob_dim.map(|i| i + n);
        if glob_dim.is_none() && !globs.is_empty() {
            dimensions.push(Dimension::default());
            glob_dim = Some(dimensions.len() - 1);
        }
        Settings {
            dimensions,
            attribute_dims: at + n,
            sampling_dim: self.sampling_dim.map(|i| i + n),
            scope_dims: self.scope_dims.map(|i| i + n),
            glob_dim,
            globs,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;
    use crate::config::HistogramConfig;
    use redline_pipeline::CheckAll;

    fn names(s: &Settings) -> Vec<&str> {
        s.dimensions.iter().map(|d| d.name.as_str()).collect()
    }

    #[test]
    fn calls_and_duration_get_stores_of_their_own_dimensions() {
        let c = Config {
            dimensions: vec![Dimension::named("http.route")],
            calls_dimensions: vec![Dimension::named("http.url")],
            histogram: HistogramConfig {
                dimensions: vec![
                    Dimension::named("url.scheme"),
                    Dimension::named("net.peer.name"),
                ],
                ..HistogramConfig::default()
            },
            enable_metrics_sampling_method: true,
            ..Config::default()
        };
        let calls = c.check_all().expect("valid");
        assert_eq!(
            names(&calls),
            ["http.route", "http.url", crate::config::SAMPLING_METHOD]
        );
        assert_eq!(calls.attribute_dims, 2);
        assert_eq!(calls.sampling_dim, Some(2));
        assert!(calls.serves_calls && !calls.has_duration());
        let duration = calls.duration.as_deref().expect("kept apart");
        assert_eq!(
            names(duration),
            [
                "http.route",
                "url.scheme",
                "net.peer.name",
                crate::config::SAMPLING_METHOD
            ]
        );
        assert_eq!(duration.attribute_dims, 3);
        assert_eq!(duration.sampling_dim, Some(3));
        assert!(!duration.serves_calls && duration.has_duration());
        assert!(duration.duration.is_none() && duration.events.is_none());
    }

    #[test]
    fn without_a_histogram_calls_dimensions_stay_in_one_store() {
        let c = Config {
            calls_dimensions: vec![Dimension::named("http.url")],
            histogram: HistogramConfig {
                disable: true,
                dimensions: vec![Dimension::named("url.scheme")],
                ..HistogramConfig::default()
            },
            ..Config::default()
        };
        let s = c.check_all().expect("valid");
        assert_eq!(names(&s), ["http.url"]);
        assert!(s.duration.is_none() && s.serves_calls);
    }

    #[test]
    fn events_keep_the_shared_dimensions_only() {
        let mut c = Config {
            dimensions: vec![Dimension::named("http.route")],
            calls_dimensions: vec![Dimension::named("http.url")],
            ..Config::default()
        };
        c.events.enabled = true;
        c.events.dimensions = vec![Dimension::named("exception.type")];
        let s = c.check_all().expect("valid");
        let events = s.events.as_deref().expect("enabled");
        assert_eq!(names(events), ["http.route", "exception.type"]);
    }

    #[test]
    fn family_dimensions_are_checked_like_event_dimensions() {
        let c = Config {
            dimensions: vec![Dimension::named("http.route")],
            calls_dimensions: vec![
                Dimension::named("http.route"),
                Dimension::named(""),
                Dimension::named("status.code"),
            ],
            histogram: HistogramConfig {
                dimensions: vec![
                    Dimension::named("a"),
                    Dimension::named("a"),
                    Dimension::named(crate::OVERFLOW_LABEL),
                ],
                ..HistogramConfig::default()
            },
            storage: Some("file_storage".to_owned()),
            ..Config::default()
        };
        assert_eq!(
            problem_paths(&c),
            [
                "calls_dimensions[0].name",
                "calls_dimensions[1].name",
                "calls_dimensions[2].name",
                "histogram.dimensions[1].name",
                "histogram.dimensions[2].name",
                "storage",
            ]
        );
    }
}
