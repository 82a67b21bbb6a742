//! `headers_setter`: sets headers on the requests of exporters that name it, from the
//! metadata of the client whose data each request carries, or from fixed values (otelcol
//! contrib's headerssetterextension). The usual use is multi-tenancy in front of Tempo, Loki
//! and Mimir: the tenant header a client sent goes on to the backend.
//!
//! ```yaml
//! extensions:
//!   headers_setter:
//!     headers:
//!       - action: upsert              # insert | update | upsert | delete
//!         key: X-Scope-OrgID
//!         from_context: x-scope-orgid # the receiver needs `include_metadata: true`
//!         default_value: anonymous
//! exporters:
//!   otlphttp/loki:
//!     endpoint: https://loki:3100/otlp
//!     auth:
//!       authenticator: headers_setter
//! ```
//!
//! On OTLP/HTTP the actions apply to the request's headers, after the exporter's own
//! `headers`. On gRPC they apply to the call's credentials only, which start empty and are
//! added beside the exporter's `headers`, as grpc-go adds per-RPC credentials.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::config::{Secret, Unsupported};
use redline_pipeline::extension::{AuthError, ClientAuthenticator, ExtensionCapabilities};
use redline_pipeline::{
    BuildContext, BuildError, ClientMetadata, ComponentConfig, ConfigError, ExtensionFactory,
    Invalid, RunningComponent,
};
use serde::de::IgnoredAny;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub headers: Vec<HeaderConfig>,
    /// Chaining with another client authenticator: not supported yet.
    pub additional_auth: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    pub action: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
    pub from_context: Option<String>,
    pub default_value: Option<Secret>,
    /// The server authenticator's attributes: Redline's receivers keep none yet (refused
    /// by the check, which reports the entry's other problems too).
    pub from_attribute: Option<IgnoredAny>,
    /// A value read from a watched file: not supported yet (refused by the check).
    pub value_file: Option<IgnoredAny>,
}

/// What one configured header does to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// Sets the header when it has no value yet.
    Insert,
    /// Sets the header when it has a value.
    Update,
    /// Sets the header.
    Upsert,
    /// Removes the header.
    Delete,
}

#[derive(Debug)]
enum Source {
    Static(HeaderValue),
    /// The client metadata under this key, else the default.
    Context {
        key: String,
        default: HeaderValue,
    },
}

#[derive(Debug)]
struct Header {
    name: HeaderName,
    action: Action,
    source: Option<Source>,
}

impl Config {
    fn from_component(config: &ComponentConfig) -> Result<Vec<Header>, Vec<ConfigError>> {
        let parsed: Config = config.parse().map_err(|e| vec![e])?;
        parsed
            .check()
            .map_err(|problems| problems.into_iter().map(|p| config.locate(p)).collect())
    }

    /// Every problem, each naming its entry, in the order found.
    fn check(&self) -> Result<Vec<Header>, Vec<Invalid>> {
        if self.headers.is_empty() {
            return Err(vec![Invalid::new(
                "headers",
                "missing headers configuration: list at least one header to set",
            )]);
        }
        let mut problems = Vec::new();
        let mut headers = Vec::new();
        for (i, h) in self.headers.iter().enumerate() {
            match h.check() {
                Ok(header) => headers.push(header),
                Err(found) => problems.extend(found.into_iter().map(|(key, reason)| {
                    let path = if key.is_empty() {
                        format!("headers[{i}]")
                    } else {
                        format!("headers[{i}].{key}")
                    };
                    Invalid::new(&path, reason)
                })),
            }
        }
        if problems.is_empty() {
            Ok(headers)
        } else {
            Err(problems)
        }
    }
}

/// otelcol's header sources, for the errors that name them all.
const SOURCES: &str = "must be 'from_context', 'from_attribute', 'value', or 'value_file'";

impl HeaderConfig {
    /// The one source given, checked.
    fn source(&self, problems: &mut Vec<(&'static str, String)>) -> Option<Source> {
        // Checked here rather than refused by serde, so the entry's other problems are
        // reported in the same run.
        let unsupported = "is an otelcol setting Redline does not support yet";
        if self.from_attribute.is_some() {
            problems.push((
                "from_attribute",
                format!("{unsupported} (Redline's server authenticators keep no attributes)"),
            ));
            return None;
        }
        if self.value_file.is_some() {
            problems.push(("value_file", unsupported.to_owned()));
            return None;
        }
        if let Some(value) = &self.value {
            return HeaderValue::try_from(value.as_str())
                .map_err(|_| problems.push(("value", "is not a valid header value".into())))
                .ok()
                .map(Source::Static);
        }
        let key = self.from_context.clone()?;
        let default = self.default_value.as_ref().map_or("", Secret::expose);
        let mut default = HeaderValue::try_from(default)
            .map_err(|_| problems.push(("default_value", "is not a valid header value".into())))
            .ok()?;
        default.set_sensitive(true);
        Some(Source::Context { key, default })
    }

    fn check(&self) -> Result<Header, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let name = match self.key.as_deref() {
            None | Some("") => {
                problems.push(("key", "missing header name".to_owned()));
                None
            }
            Some(key) => HeaderName::try_from(key)
                .map_err(|_| problems.push(("key", format!("`{key}` is not a header name"))))
                .ok(),
        };
        // otelcol takes any other text as `upsert`, with a warning that the action was not
        // given; a misspelt action is refused here rather than quietly upserting.
        let action = match self
            .action
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("upsert") => Some(Action::Upsert),
            Some("insert") => Some(Action::Insert),
            Some("update") => Some(Action::Update),
            Some("delete") => Some(Action::Delete),
            Some(other) => {
                problems.push((
                    "action",
                    format!("`{other}` is not one of insert, update, upsert, delete"),
                ));
                None
            }
        };
        let source = if action == Some(Action::Delete) {
            None
        } else {
            let given = [
                self.value.is_some(),
                self.from_context.is_some(),
                self.from_attribute.is_some(),
                self.value_file.is_some(),
            ];
            match given.iter().filter(|&&g| g).count() {
                0 => {
                    problems.push(("", format!("missing header source, {SOURCES}")));
                    None
                }
                1 => self.source(&mut problems),
                _ => {
                    problems.push(("", format!("invalid header source, only one of {SOURCES}")));
                    None
                }
            }
        };
        match (name, action) {
            (Some(name), Some(action)) if problems.is_empty() => Ok(Header {
                name,
                action,
                source,
            }),
            _ => Err(problems),
        }
    }
}

/// The running extension: the checked headers, applied to every request.
#[derive(Debug)]
pub struct HeadersSetter {
    headers: Vec<Header>,
}

impl Source {
    fn value(&self, client: Option<&ClientMetadata>) -> Result<HeaderValue, AuthError> {
        match self {
            Source::Static(value) => Ok(value.clone()),
            Source::Context { key, default } => {
                let values = client.map_or(&[][..], |c| c.get(key));
                match values {
                    [] => Ok(default.clone()),
                    [one] => HeaderValue::try_from(&**one).map_err(|_| {
                        AuthError::denied(format!(
                            "the client's `{key}` is not a valid header value"
                        ))
                    }),
                    many => Err(AuthError::denied(format!(
                        "{} source keys found in the context, can't determine which one to use",
                        many.len()
                    ))),
                }
            }
        }
    }
}

impl ClientAuthenticator for HeadersSetter {
    fn add_credentials(
        &self,
        headers: &mut HeaderMap,
        client: Option<&ClientMetadata>,
    ) -> Result<(), AuthError> {
        for header in &self.headers {
            let value = match &header.source {
                Some(source) => source.value(client)?,
                None => HeaderValue::from_static(""),
            };
            // Go's `Header.Get` reads the first value, and an empty one counts as absent.
            let present = headers.get(&header.name).is_some_and(|v| !v.is_empty());
            match header.action {
                Action::Insert if present => {}
                Action::Update if !present => {}
                Action::Insert | Action::Update | Action::Upsert => {
                    headers.insert(header.name.clone(), value);
                }
                Action::Delete => {
                    headers.remove(&header.name);
                }
            }
        }
        Ok(())
    }
}

/// The first of `problems` (never empty when a check fails).
fn first(config: &ComponentConfig, problems: Vec<ConfigError>) -> ConfigError {
    problems
        .into_iter()
        .next()
        .unwrap_or_else(|| config.invalid("", "invalid"))
}

/// The `headers_setter` extension factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadersSetterFactory;

impl FactoryInfo for HeadersSetterFactory {
    fn type_name(&self) -> &'static str {
        "headers_setter"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config)
            .map(|_| ())
            .map_err(|problems| first(config, problems))
    }

    fn validate_all(&self, config: &ComponentConfig) -> Vec<ConfigError> {
        Config::from_component(config).err().unwrap_or_default()
    }
}

impl ExtensionFactory for HeadersSetterFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let headers = Config::from_component(config).map_err(|problems| first(config, problems));
        Box::pin(async move {
            let headers = headers.map_err(|e| BuildError::new(&id, e.to_string()))?;
            let caps = ExtensionCapabilities {
                client_authenticator: Some(Arc::new(HeadersSetter { headers })),
                ..ExtensionCapabilities::default()
            };
            Ok((caps, Box::new(NoopRunning) as Box<dyn RunningComponent>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_config::extension_section;

    /// `yaml` is the extension's body, unindented.
    fn section(yaml: &str) -> ComponentConfig {
        let indented: String = yaml.lines().map(|l| format!("    {l}\n")).collect();
        extension_section("headers_setter", &indented)
    }

    fn setter(yaml: &str) -> HeadersSetter {
        HeadersSetter {
            headers: Config::from_component(&section(yaml)).expect("valid"),
        }
    }

    fn problems(yaml: &str) -> Vec<String> {
        HeadersSetterFactory
            .validate_all(&section(yaml))
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.reason))
            .collect()
    }

    fn tenant(values: &[&str]) -> ClientMetadata {
        ClientMetadata::from_pairs(values.iter().map(|v| ("x-scope-orgid", *v)))
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text"))
            .collect()
    }

    #[test]
    fn from_context_takes_the_clients_value_or_the_default() {
        let s = setter(
            "headers: [{key: X-Scope-OrgID, from_context: X-Scope-OrgID, default_value: anon}]",
        );
        let mut h = HeaderMap::new();
        s.add_credentials(&mut h, Some(&tenant(&["acme"])))
            .expect("one value");
        assert_eq!(get(&h, "x-scope-orgid"), ["acme"]);
        s.add_credentials(&mut h, None).expect("no metadata");
        assert_eq!(get(&h, "x-scope-orgid"), ["anon"]);
        let err = s
            .add_credentials(&mut h, Some(&tenant(&["a", "b"])))
            .expect_err("two values");
        assert!(err.to_string().contains("2 source keys found"), "{err}");
    }

    #[test]
    fn actions_follow_go_headers() {
        let s = setter(
            "headers:\n\
             - {key: x-a, value: new, action: insert}\n\
             - {key: x-b, value: new, action: insert}\n\
             - {key: x-c, value: new, action: update}\n\
             - {key: x-d, value: new, action: update}\n\
             - {key: x-e, value: new}\n\
             - {key: x-f, action: delete}",
        );
        let mut h = HeaderMap::new();
        for name in ["x-a", "x-c", "x-f"] {
            h.insert(name, HeaderValue::from_static("old"));
        }
        h.insert("x-b", HeaderValue::from_static(""));
        s.add_credentials(&mut h, None).expect("static");
        assert_eq!(get(&h, "x-a"), ["old"]);
        assert_eq!(get(&h, "x-b"), ["new"], "an empty value counts as absent");
        assert_eq!(get(&h, "x-c"), ["new"]);
        assert!(get(&h, "x-d").is_empty());
        assert_eq!(get(&h, "x-e"), ["new"]);
        assert!(get(&h, "x-f").is_empty());
    }

    #[test]
    fn every_bad_entry_is_named() {
        assert_eq!(
            problems("headers: []"),
            [
                "extensions.headers_setter.headers: missing headers configuration: \
              list at least one header to set"
            ]
        );
        let found = problems(
            "headers:\n\
             - {value: x}\n\
             - {key: ok, action: replace, value: x}\n\
             - {key: ok}\n\
             - {key: ok, value: a, from_context: b}\n\
             - {key: 'bad key', value: x}\n\
             - {key: ok, value: \"a\\nb\"}",
        );
        let at = "extensions.headers_setter.headers";
        assert_eq!(found.len(), 6, "{found:#?}");
        assert!(found[0].starts_with(&format!("{at}[0].key: missing header name")));
        assert!(found[1].starts_with(&format!("{at}[1].action: `replace`")));
        assert!(found[2].starts_with(&format!("{at}[2]: missing header source")));
        assert!(found[3].starts_with(&format!("{at}[3]: invalid header source")));
        assert!(found[4].starts_with(&format!("{at}[4].key:")));
        assert!(found[5].starts_with(&format!("{at}[5].value:")));
    }

    #[test]
    fn unsupported_sources_are_refused_by_name() {
        for key in ["from_attribute: user", "value_file: /x"] {
            let found = problems(&format!("headers: [{{key: k, {key}}}]"));
            assert_eq!(found.len(), 1, "{found:#?}");
            assert!(found[0].contains("does not support yet"), "{found:#?}");
        }
        // Beside another entry's problem, both are reported, and nothing else.
        let found = problems("headers: [{key: a}, {key: k, from_attribute: user}]");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("headers[0]: missing header source"));
        assert!(found[1].contains("headers[1].from_attribute: is an otelcol setting"));
    }
}
