//! otelcol's `pprof` settings (pprofextension v0.161.0), every key accepted.

use redline_pipeline::endpoint::ListenerDialer;
use redline_pipeline::{ComponentConfig, ConfigError};
use serde::Deserialize;

pub const DEFAULT_ENDPOINT: &str = "localhost:1777";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    #[serde(default)]
    pub dialer: Option<ListenerDialer>,
    /// Go's `runtime.SetBlockProfileRate`: Redline has no block profile (logged at start).
    #[serde(default)]
    pub block_profile_fraction: i64,
    /// Go's `runtime.SetMutexProfileFraction`: Redline has no mutex profile (logged at start).
    #[serde(default)]
    pub mutex_profile_fraction: i64,
    /// A CPU profile from start to shutdown is written here at shutdown; empty is off.
    #[serde(default)]
    pub save_to_file: String,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

impl Config {
    /// otelcol refuses an empty endpoint and one that is not `host:port` only when the
    /// extension starts; refusing them here lets `redline validate` say so.
    fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        if self.endpoint.trim().is_empty() {
            return Err(config.invalid(
                "endpoint",
                format!(
                    "is required when using the \"pprof\" extension (e.g. `{DEFAULT_ENDPOINT}`)"
                ),
            ));
        }
        redline_pipeline::endpoint::split_listen_endpoint(&self.endpoint)
            .map_err(|e| config.invalid("endpoint", e))?;
        Ok(())
    }

    /// The Go runtime settings this config sets, which Redline has nothing to apply to:
    /// (key, value) of each one above zero (zero or less turns them off in Go too).
    pub fn go_runtime_settings(&self) -> Vec<(&'static str, i64)> {
        [
            ("block_profile_fraction", self.block_profile_fraction),
            ("mutex_profile_fraction", self.mutex_profile_fraction),
        ]
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .collect()
    }
}

pub fn parse(config: &ComponentConfig) -> Result<Config, ConfigError> {
    let parsed: Config = config.parse()?;
    parsed.check(config)?;
    Ok(parsed)
}

#[cfg(test)]
pub(crate) mod tests {
    use redline_pipeline::config::load_str;
    use redline_pipeline::ComponentConfig;

    use super::*;

    /// The `extensions.pprof` section of a config whose extension section is `section`.
    pub(crate) fn component(section: &str) -> ComponentConfig {
        let text = format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\n\
             exporters:\n  debug:\n\
             extensions:\n  pprof:{section}\n\
             service:\n  extensions: [pprof]\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"
        );
        let config = load_str("test.yaml", &text).expect("the config loads");
        config
            .extensions
            .into_iter()
            .find(|e| e.id().type_name() == "pprof")
            .expect("a pprof section")
    }

    fn parsed(section: &str) -> Result<Config, ConfigError> {
        parse(&component(section))
    }

    #[test]
    fn an_empty_section_takes_otelcols_defaults() {
        let c = parsed("").expect("valid");
        assert_eq!(c.endpoint, "localhost:1777");
        assert_eq!(c.block_profile_fraction, 0);
        assert_eq!(c.mutex_profile_fraction, 0);
        assert!(c.save_to_file.is_empty());
        assert!(c.go_runtime_settings().is_empty());
    }

    #[test]
    fn every_otelcol_key_is_accepted() {
        let c = parsed(
            "\n    endpoint: 127.0.0.1:0\n    dialer:\n      timeout: 5s\n    \
             block_profile_fraction: 3\n    mutex_profile_fraction: 5\n    \
             save_to_file: /tmp/cpu.prof\n",
        )
        .expect("valid");
        assert_eq!(c.endpoint, "127.0.0.1:0");
        assert_eq!(
            c.dialer.as_ref().and_then(|d| d.timeout),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(c.save_to_file, "/tmp/cpu.prof");
        assert_eq!(
            c.go_runtime_settings(),
            [("block_profile_fraction", 3), ("mutex_profile_fraction", 5)]
        );
    }

    #[test]
    fn fractions_of_zero_or_less_are_off_as_in_go() {
        let c = parsed(" {block_profile_fraction: -1, mutex_profile_fraction: 0}").expect("valid");
        assert!(c.go_runtime_settings().is_empty());
    }

    #[test]
    fn an_unknown_key_is_named() {
        let e = parsed(" {endpoint: 127.0.0.1:0, bogus: 1}")
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parsed(" {dialer: {keepalive: 1s}}")
            .expect_err("unknown dialer key")
            .to_string();
        assert!(e.contains("keepalive"), "{e}");
    }

    #[test]
    fn an_empty_endpoint_is_refused() {
        let e = parsed(" {endpoint: \"\"}")
            .expect_err("empty endpoint")
            .to_string();
        assert!(e.contains("extensions.pprof.endpoint"), "{e}");
        assert!(e.contains("is required"), "{e}");
    }

    #[test]
    fn an_endpoint_without_a_port_is_refused() {
        let e = parsed(" {endpoint: 127.0.0.1}")
            .expect_err("no port")
            .to_string();
        assert!(e.contains("extensions.pprof.endpoint"), "{e}");
    }

    #[test]
    fn a_fraction_must_be_a_number() {
        let e = parsed(" {block_profile_fraction: abc}")
            .expect_err("not an int")
            .to_string();
        assert!(e.contains("block_profile_fraction"), "{e}");
    }
}
