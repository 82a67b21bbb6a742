//! Which resource attributes become labels of every series: otelcol's
//! `resource_constant_labels` and its deprecated spelling `resource_to_telemetry_conversion`
//! (contrib's `pkg/resourcetotelemetry`), shared by the `prometheus` and
//! `prometheusremotewrite` exporters, with the same keys, checks and precedence.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use redline_pipeline::Invalid;
use serde::Deserialize;

/// The resource attributes that identify a service, which `exclude_service_attributes` keeps
/// out of the labels.
const SERVICE_ATTRIBUTES: [&str; 3] = ["service.name", "service.instance.id", "service.namespace"];

/// One `resource_to_telemetry_conversion` or `resource_constant_labels` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceLabelsConfig {
    /// Every resource attribute (deprecated by otelcol for `included: ["*"]`).
    pub enabled: bool,
    /// With `enabled`: all but `service.name`, `service.instance.id` and `service.namespace`.
    pub exclude_service_attributes: bool,
    /// Key patterns (`*` any run of characters, `?` one) of the attributes to take.
    pub included: Vec<String>,
    /// Key patterns to leave out, over `included`; alone, they take every other attribute.
    pub excluded: Vec<String>,
}

impl ResourceLabelsConfig {
    fn is_empty(&self) -> bool {
        !self.enabled
            && !self.exclude_service_attributes
            && self.included.is_empty()
            && self.excluded.is_empty()
    }

    fn has_patterns(&self) -> bool {
        !self.included.is_empty() || !self.excluded.is_empty()
    }
}

/// What the exporter does with resource attributes, resolved from its two sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ResourceLabels {
    #[default]
    Off,
    All,
    AllButService,
    Matching {
        included: Vec<KeyPattern>,
        excluded: Vec<KeyPattern>,
    },
}

impl ResourceLabels {
    /// Resolves `resource_to_telemetry_conversion` (`legacy`) and `resource_constant_labels`
    /// (`current`) as otelcol does: the current section wins, the legacy one is taken when the
    /// current one is empty; patterns take precedence over `enabled`. The second value says
    /// the deprecated section was taken, for a warning. Errors name the key.
    pub fn resolve(
        legacy: &ResourceLabelsConfig,
        current: &ResourceLabelsConfig,
    ) -> Result<(ResourceLabels, bool), Invalid> {
        const LEGACY: &str = "resource_to_telemetry_conversion";
        const CURRENT: &str = "resource_constant_labels";
        if current.enabled || current.exclude_service_attributes {
            return Err(Invalid::new(
                CURRENT,
                "enabled and exclude_service_attributes are not supported under \
                 resource_constant_labels; use included and excluded instead",
            ));
        }
        if !legacy.is_empty() && !current.is_empty() {
            return Err(Invalid::new(
                CURRENT,
                "cannot configure both resource_to_telemetry_conversion and \
                 resource_constant_labels; resource_to_telemetry_conversion is deprecated",
            ));
        }
        if (legacy.enabled || legacy.exclude_service_attributes) && legacy.has_patterns() {
            return Err(Invalid::new(
                LEGACY,
                "cannot configure both legacy enabled/exclude_service_attributes and \
                 included/excluded patterns; enabled and exclude_service_attributes are deprecated",
            ));
        }
        let (section, deprecated) = if current.is_empty() && !legacy.is_empty() {
            (legacy, true)
        } else {
            (current, false)
        };
        let labels = if section.has_patterns() {
            let patterns = |p: &[String]| p.iter().map(|p| KeyPattern::new(p)).collect();
            if section.included == ["*"] && section.excluded.is_empty() {
                ResourceLabels::All
            } else {
                ResourceLabels::Matching {
                    included: patterns(&section.included),
                    excluded: patterns(&section.excluded),
                }
            }
        } else if !section.enabled {
            ResourceLabels::Off
        } else if section.exclude_service_attributes {
            ResourceLabels::AllButService
        } else {
            ResourceLabels::All
        };
        Ok((labels, deprecated))
    }

    /// Whether the attribute `key` becomes a label.
    pub fn keeps(&self, key: &str) -> bool {
        match self {
            ResourceLabels::Off => false,
            ResourceLabels::All => true,
            ResourceLabels::AllButService => !SERVICE_ATTRIBUTES.contains(&key),
            ResourceLabels::Matching { included, excluded } => {
                if excluded.iter().any(|p| p.matches(key)) {
                    return false;
                }
                // Only `excluded` given: every other attribute.
                included.is_empty() || included.iter().any(|p| p.matches(key))
            }
        }
    }

    /// The attributes of `resource` that become labels, in their order; `None` when there are
    /// none (the series are left as they are).
    pub fn select<'a>(&self, resource: &'a [KeyValue]) -> Option<Cow<'a, [KeyValue]>> {
        let selected: Cow<'a, [KeyValue]> = match self {
            ResourceLabels::Off => return None,
            ResourceLabels::All => Cow::Borrowed(resource),
            _ => Cow::Owned(
                resource
                    .iter()
                    .filter(|kv| self.keeps(&kv.key))
                    .cloned()
                    .collect(),
            ),
        };
        (!selected.is_empty()).then_some(selected)
    }
}

/// An attribute key, or a pattern of one: `*` matches any run of characters (also none and
/// dots), `?` exactly one character, everything else itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern(Vec<char>);

impl KeyPattern {
    pub fn new(pattern: &str) -> Self {
        KeyPattern(pattern.chars().collect())
    }

    pub fn matches(&self, key: &str) -> bool {
        let key: Vec<char> = key.chars().collect();
        let (p, k) = (&self.0, &key);
        let (mut pi, mut ki) = (0, 0);
        // Where the last `*` was and how much of the key it has taken so far.
        let mut star: Option<(usize, usize)> = None;
        while ki < k.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ki));
                    pi += 1;
                }
                Some(&c) if c == '?' || c == k[ki] => {
                    pi += 1;
                    ki += 1;
                }
                _ => match star {
                    Some((sp, sk)) => {
                        pi = sp + 1;
                        ki = sk + 1;
                        star = Some((sp, sk + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

    fn kv(k: &str) -> KeyValue {
        KeyValue {
            key: k.to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("{k}-value"))),
            }),
            ..KeyValue::default()
        }
    }

    fn section(enabled: bool, exclude: bool, inc: &[&str], exc: &[&str]) -> ResourceLabelsConfig {
        ResourceLabelsConfig {
            enabled,
            exclude_service_attributes: exclude,
            included: inc.iter().map(|s| s.to_string()).collect(),
            excluded: exc.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn none() -> ResourceLabelsConfig {
        ResourceLabelsConfig::default()
    }

    #[test]
    fn patterns_match_as_otelcols_glob_to_regexp() {
        let m = |p: &str, k: &str| KeyPattern::new(p).matches(k);
        assert!(m("k8s.*", "k8s.pod.name"));
        assert!(m("k8s.*", "k8s."));
        assert!(!m("k8s.*", "k8s"));
        assert!(m("*.name", "service.name"));
        assert!(m("host.?d", "host.id"));
        assert!(!m("host.?d", "host.iid"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("ü?", "üß"));
        // Regex metacharacters are themselves.
        assert!(m("a.b", "a.b") && !m("a.b", "axb"));
        assert!(m("[x]", "[x]"));
    }

    #[test]
    fn the_sections_resolve_with_otelcols_precedence_and_checks() {
        let r = |legacy, current| ResourceLabels::resolve(&legacy, &current);
        assert_eq!(r(none(), none()).expect("ok"), (ResourceLabels::Off, false));
        assert_eq!(
            r(section(true, false, &[], &[]), none()).expect("ok"),
            (ResourceLabels::All, true)
        );
        assert_eq!(
            r(section(true, true, &[], &[]), none()).expect("ok"),
            (ResourceLabels::AllButService, true)
        );
        // exclude_service_attributes alone converts nothing, as in otelcol.
        assert_eq!(
            r(section(false, true, &[], &[]), none()).expect("ok"),
            (ResourceLabels::Off, true)
        );
        assert_eq!(
            r(none(), section(false, false, &["*"], &[])).expect("ok"),
            (ResourceLabels::All, false)
        );
        let e = r(none(), section(true, false, &[], &[])).expect_err("enabled under current");
        assert_eq!(e.key_path, "resource_constant_labels");
        let e = r(
            section(true, false, &[], &[]),
            section(false, false, &["a"], &[]),
        )
        .expect_err("both");
        assert!(e.reason.contains("cannot configure both"), "{e}");
        let e = r(section(true, false, &["a"], &[]), none()).expect_err("legacy mixed");
        assert_eq!(e.key_path, "resource_to_telemetry_conversion");
    }

    #[test]
    fn selection_keeps_the_resources_order() {
        let resource = [
            kv("service.name"),
            kv("k8s.pod.name"),
            kv("host.name"),
            kv("k8s.node.name"),
        ];
        let keys = |labels: &ResourceLabels| {
            labels
                .select(&resource)
                .map(|s| s.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>())
        };
        assert_eq!(keys(&ResourceLabels::Off), None);
        assert_eq!(keys(&ResourceLabels::All).map(|k| k.len()), Some(4));
        assert_eq!(
            keys(&ResourceLabels::AllButService),
            Some(vec![
                "k8s.pod.name".into(),
                "host.name".into(),
                "k8s.node.name".into()
            ])
        );
        let (m, _) = ResourceLabels::resolve(
            &none(),
            &section(false, false, &["k8s.*", "service.name"], &["k8s.node.*"]),
        )
        .expect("ok");
        assert_eq!(
            keys(&m),
            Some(vec!["service.name".into(), "k8s.pod.name".into()])
        );
        let (only_excluded, _) =
            ResourceLabels::resolve(&none(), &section(false, false, &[], &["k8s.*"])).expect("ok");
        assert_eq!(
            keys(&only_excluded),
            Some(vec!["service.name".into(), "host.name".into()])
        );
        let (nothing, _) =
            ResourceLabels::resolve(&none(), &section(false, false, &["absent.*"], &[]))
                .expect("ok");
        assert_eq!(keys(&nothing), None);
    }
}
