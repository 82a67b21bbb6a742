//! Test support: an extension's section as the config loader hands it to the factory.

use redline_pipeline::ComponentConfig;

/// The section of extension `type_name` whose body is `yaml` (indented under its id), in a
/// config with one OTLP pipeline that lists the extension.
pub(crate) fn extension_section(type_name: &str, yaml: &str) -> ComponentConfig {
    let text = format!(
        "receivers:\n  otlp:\nexporters:\n  otlp:\nextensions:\n  {type_name}:\n{yaml}\n\
         service:\n  extensions: [{type_name}]\n  pipelines:\n    traces:\n      \
         receivers: [otlp]\n      exporters: [otlp]\n"
    );
    let loaded = redline_pipeline::config::load_str("test.yaml", &text).expect("loads");
    loaded
        .extensions
        .into_iter()
        .next()
        .expect("the extension's section")
}
