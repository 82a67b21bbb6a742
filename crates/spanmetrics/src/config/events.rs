//! `events`: a counter of span events (exceptions and the like) per span labels and event
//! dimensions, as otelcol's `events` metric.
//!
//! The family is kept by a second store of its own whose settings are derived here from the
//! connector's: the span dimensions, then the event dimensions, then the synthetic ones
//! (`sampling.method`, the scope labels), and no histogram.

use super::{Config, Dimension, Settings, DEFAULT_DIMENSIONS};
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
        let synthetic = [
            (self.enable_metrics_sampling_method, super::SAMPLING_METHOD),
            (
                !self.include_instrumentation_scope.is_empty(),
                super::SCOPE_NAME,
            ),
            (
                !self.include_instrumentation_scope.is_empty(),
                super::SCOPE_VERSION,
            ),
            (self.tempo_red_table, super::TEMPO_SERVICE),
            (true, crate::OVERFLOW_LABEL),
        ];
        for (i, d) in self.events.dimensions.iter().enumerate() {
            let path = format!("events.dimensions[{i}].name");
            let name = d.name.as_str();
            let reason = if name.is_empty() {
                "must not be empty".to_owned()
            } else if DEFAULT_DIMENSIONS.contains(&name) {
                format!("`{name}` is a default dimension and cannot be added again")
            } else if self.events.dimensions[..i].iter().any(|p| p.name == name) {
                format!("duplicate dimension `{name}`")
            } else if self.dimensions.iter().any(|p| p.name == name) {
                format!(
                    "`{name}` is already in `dimensions`, and the events series carry those too: \
                     a series cannot have one label twice"
                )
            } else if synthetic.iter().any(|(on, label)| *on && *label == name) {
                format!("`{name}` is a label the connector adds itself")
            } else {
                continue;
            };
            problems.push(Invalid::new(path, reason));
        }
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
        let n_events = self.events.dimensions.len();
        let at = main.attribute_dims;
        let mut dimensions: Vec<Dimension> = main.dimensions.clone();
        dimensions.splice(at..at, self.events.dimensions.iter().cloned());
        Some(Box::new(Settings {
            dimensions,
            attribute_dims: at + n_events,
            sampling_dim: main.sampling_dim.map(|i| i + n_events),
            scope_dims: main.scope_dims.map(|i| i + n_events),
            histogram: None,
            exponential_max_size: None,
            tempo_red_table: false,
            events: None,
            ..main.clone()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redline_pipeline::CheckAll;

    fn dim(name: &str) -> Dimension {
        Dimension {
            name: name.to_owned(),
            default: None,
            glob: None,
        }
    }

    fn problems(c: &Config) -> Vec<String> {
        c.check_all()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.key_path)
            .collect()
    }

    #[test]
    fn events_need_dimensions_of_their_own() {
        let mut c = Config::default();
        c.events.enabled = true;
        assert_eq!(problems(&c), ["events.dimensions"]);
        c.dimensions = vec![dim("http.route")];
        c.events.dimensions = vec![
            dim("exception.type"),
            dim("span.kind"),
            dim("exception.type"),
            dim("http.route"),
            dim(""),
            dim(crate::OVERFLOW_LABEL),
        ];
        c.storage = Some("file_storage".to_owned());
        assert_eq!(
            problems(&c),
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
        assert_eq!(problems(&c), Vec::<String>::new());
    }

    #[test]
    fn the_events_store_has_span_then_event_then_synthetic_dimensions() {
        let mut c = Config {
            dimensions: vec![dim("http.route")],
            enable_metrics_sampling_method: true,
            include_instrumentation_scope: vec!["lib".to_owned()],
            ..Config::default()
        };
        c.events.enabled = true;
        c.events.dimensions = vec![dim("exception.type"), dim("exception.message")];
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
