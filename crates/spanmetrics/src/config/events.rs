//! `events`: a counter of span events (exceptions and the like) per span labels and event
//! dimensions, as otelcol's `events` metric.
//!
//! The family is kept by a second store of its own whose settings are derived here from the
//! connector's: the span dimensions, then the event dimensions, then the synthetic ones
//! (`sampling.method`, the scope labels), and no histogram.

use super::{Config, Settings};
use redline_pipeline::Invalid;

impl Config {
    /// The `events` section's problems, pushed onto `problems`.
    pub(super) fn check_events(&self, problems: &mut Vec<Invalid>) {
        if !self.events.enabled {
            return;
        }
        if self.events.dimensions.is_empty() {
            problems.push(Invalid::new(
                "events.dimensions",
                "must list at least one dimension when events.enabled is true (as in otelcol)",
            ));
        }
        self.check_added_dims(
            "events.dimensions",
            "events",
            &self.events.dimensions,
            problems,
        );
        if self.storage.is_some() {
            problems.push(Invalid::new(
                "storage",
                "does not keep the events family across restarts yet: remove `storage` or \
                 `events.enabled`",
            ));
        }
    }

    /// The events store's settings, when `events.enabled`; `main` is the connector's.
    pub(super) fn events_settings(&self, main: &Settings) -> Option<Box<Settings>> {
        if !self.events.enabled {
            return None;
        }
        Some(Box::new(Settings {
            histogram: None,
            exponential_max_size: None,
            tempo_red_table: false,
            events: None,
            duration: None,
            ..main.with_dims(&self.events.dimensions)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{problem_paths, Dimension};
    use super::*;
    use redline_pipeline::CheckAll;

    #[test]
    fn events_need_dimensions_of_their_own() {
        let mut c = Config::default();
        c.events.enabled = true;
        assert_eq!(problem_paths(&c), ["events.dimensions"]);
        c.dimensions = vec![Dimension::named("http.route")];
        c.events.dimensions = vec![
            Dimension::named("exception.type"),
            Dimension::named("span.kind"),
            Dimension::named("exception.type"),
            Dimension::named("http.route"),
            Dimension::named(""),
            Dimension::named(crate::OVERFLOW_LABEL),
        ];
        c.storage = Some("file_storage".to_owned());
        assert_eq!(
            problem_paths(&c),
            [
                "events.dimensions[1].name",
                "events.dimensions[2].name",
                "events.dimensions[3].name",
                "events.dimensions[4].name",
                "events.dimensions[5].name",
                "storage",
            ]
        );
        // Disabled, the section is not looked at, as in otelcol.
        c.events.enabled = false;
        c.storage = None;
        assert_eq!(problem_paths(&c), Vec::<String>::new());
    }

    #[test]
    fn the_events_store_has_span_then_event_then_synthetic_dimensions() {
        let mut c = Config {
            dimensions: vec![Dimension::named("http.route")],
            enable_metrics_sampling_method: true,
            include_instrumentation_scope: vec!["lib".to_owned()],
            ..Config::default()
        };
        c.events.enabled = true;
        c.events.dimensions = vec![
            Dimension::named("exception.type"),
            Dimension::named("exception.message"),
        ];
        let main = c.check_all().expect("valid");
        let events = main.events.as_deref().expect("enabled");
        let names: Vec<&str> = events.dimensions.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "http.route",
                "exception.type",
                "exception.message",
                super::super::SAMPLING_METHOD,
                super::super::SCOPE_NAME,
                super::super::SCOPE_VERSION,
            ]
        );
        assert_eq!(events.attribute_dims, 3);
        assert_eq!(events.sampling_dim, Some(3));
        assert_eq!(events.scope_dims, Some(4));
        assert!(!events.has_duration());
        assert!(events.events.is_none());
    }
}
