//! The `system` detector: host and OS attributes read from the local machine, selected by
//! `resource_attributes` with otelcol's defaults (only `host.name` and `os.type` on), the
//! host name from the first `hostname_sources` entry that yields one.
//!
//! Everything comes from local files (`/proc`, `/sys`, `/etc`): the `dns` source finds the
//! host's canonical name in `/etc/hosts` as otelcol does first, but makes no DNS query after
//! that, and `cname` / `lookup`, which are DNS queries only, always fail over to the next
//! source.

mod host;
#[cfg(test)]
mod tests;

pub use host::{Files, LocalFiles};

use std::collections::BTreeMap;

use serde::Deserialize;

/// The semantic-conventions schema otelcol v0.161's system detector reports.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.40.0";

const HOSTNAME_SOURCES: [&str; 4] = ["dns", "os", "cname", "lookup"];

/// Attributes in the order otelcol emits them, with their default switch.
const ATTRIBUTES: [(&str, bool); 17] = [
    ("host.name", true),
    ("os.type", true),
    ("os.version", false),
    ("host.id", false),
    ("host.arch", false),
    ("host.ip", false),
    ("host.mac", false),
    ("host.interface", false),
    ("os.description", false),
    ("os.name", false),
    ("os.build.id", false),
    ("host.cpu.vendor.id", false),
    ("host.cpu.family", false),
    ("host.cpu.model.id", false),
    ("host.cpu.model.name", false),
    ("host.cpu.stepping", false),
    ("host.cpu.cache.l2.size", false),
];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemConfig {
    /// Default `[dns, os]`.
    #[serde(default)]
    pub hostname_sources: Vec<String>,
    #[serde(default)]
    pub resource_attributes: BTreeMap<String, Toggle>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    /// Absent keeps the attribute's default.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl SystemConfig {
    /// The first bad key (relative to `system`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, source) in self.hostname_sources.iter().enumerate() {
            if !HOSTNAME_SOURCES.contains(&source.as_str()) {
                return Err((
                    format!("hostname_sources[{i}]"),
                    format!("hostname_sources contains invalid value: {source:?}"),
                ));
            }
        }
        for name in self.resource_attributes.keys() {
            if !ATTRIBUTES.iter().any(|(known, _)| known == name) {
                return Err((
                    format!("resource_attributes.{name}"),
                    format!("unknown attribute; expected one of {}", attribute_names()),
                ));
            }
        }
        if self.enabled("host.ip") {
            return Err((
                "resource_attributes.host.ip".to_owned(),
                "is not supported by Redline yet (host.mac and host.interface are)".to_owned(),
            ));
        }
        Ok(())
    }

    fn enabled(&self, name: &str) -> bool {
        let default = ATTRIBUTES.iter().any(|(n, on)| *n == name && *on);
        self.resource_attributes
            .get(name)
            .and_then(|t| t.enabled)
            .unwrap_or(default)
    }

    fn sources(&self) -> Vec<&str> {
        if self.hostname_sources.is_empty() {
            vec!["dns", "os"]
        } else {
            self.hostname_sources.iter().map(String::as_str).collect()
        }
    }
}

fn attribute_names() -> String {
    ATTRIBUTES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `os.type` of the machine running the tests.
#[cfg(test)]
pub(crate) fn host_os_type_for_tests() -> &'static str {
    host::os_type()
}

/// A detected attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Detected {
    Str(String),
    Int(i64),
    List(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("all hostname sources failed to get hostname")]
    NoHostname,
    #[error("failed getting OS description: {0}")]
    Uname(std::io::Error),
    #[error("failed getting host cpuinfo: {0}")]
    CpuInfo(String),
    #[error("failed to get host MAC addresses or interfaces: {0}")]
    Interfaces(std::io::Error),
}

/// Runs the detector against `files`; the enabled attributes in otelcol's order.
pub fn detect(
    config: &SystemConfig,
    files: &dyn Files,
) -> Result<Vec<(String, Detected)>, SystemError> {
    let on = |name: &str| config.enabled(name);
    let hostname = config
        .sources()
        .into_iter()
        .find_map(|source| match host::hostname_from(source, files) {
            Ok(name) => Some(name),
            Err(reason) => {
                tracing::debug!(source, %reason, "resource_detection: hostname source failed");
                None
            }
        })
        .ok_or(SystemError::NoHostname)?;
    let platform = host::platform(files);
    let os_release = files
        .read("/etc/os-release")
        .or_else(|_| files.read("/usr/lib/os-release"))
        .ok();
    let mut out: Vec<(String, Detected)> = Vec::new();
    let mut put = |name: &str, value: Detected| {
        if on(name) {
            out.push((name.to_owned(), value));
        }
    };
    put("host.name", Detected::Str(hostname));
    put("os.type", Detected::Str(host::os_type().to_owned()));
    put("os.version", Detected::Str(platform.version.clone()));
    if on("host.id") {
        match host::machine_id(files) {
            Some(id) if !id.is_empty() => put("host.id", Detected::Str(id)),
            _ => tracing::warn!("resource_detection: failed to get host ID (no /etc/machine-id)"),
        }
    }
    put("host.arch", Detected::Str(host::host_arch().to_owned()));
    if on("host.mac") || on("host.interface") {
        let interfaces = host::interfaces(files).map_err(SystemError::Interfaces)?;
        let macs = interfaces
            .iter()
            .filter(|i| i.up && !i.loopback)
            .map(|i| i.mac.clone())
            .collect();
        put("host.mac", Detected::List(macs));
        put(
            "host.interface",
            Detected::List(interfaces.into_iter().map(|i| i.name).collect()),
        );
    }
    if on("os.description") {
        let uname = host::uname(files).map_err(SystemError::Uname)?;
        let release = os_release
            .as_deref()
            .map(host::os_release_name)
            .unwrap_or_default();
        let description = if release.is_empty() {
            uname
        } else {
            format!("{release} ({uname})")
        };
        put("os.description", Detected::Str(description));
    }
    put("os.name", Detected::Str(platform.name.clone()));
    if on("os.build.id") {
        let build = os_release
            .as_deref()
            .and_then(|text| host::os_release_value(text, "BUILD_ID"))
            .filter(|v| !v.is_empty());
        let build = match build {
            Some(b) => b,
            None => files
                .read("/proc/sys/kernel/osrelease")
                .map(|r| r.trim().to_owned())
                .unwrap_or_default(),
        };
        put("os.build.id", Detected::Str(build));
    }
    let cpu_wanted = ATTRIBUTES
        .iter()
        .any(|(n, _)| n.starts_with("host.cpu.") && on(n));
    if cpu_wanted {
        let text = files
            .read("/proc/cpuinfo")
            .map_err(|e| SystemError::CpuInfo(e.to_string()))?;
        if let Some(cpu) = host::first_cpu(&text).map_err(SystemError::CpuInfo)? {
            put("host.cpu.vendor.id", Detected::Str(cpu.vendor_id));
            put("host.cpu.family", Detected::Str(cpu.family));
            if !cpu.model.is_empty() {
                put("host.cpu.model.id", Detected::Str(cpu.model));
            }
            put("host.cpu.model.name", Detected::Str(cpu.model_name));
            put("host.cpu.stepping", Detected::Str(cpu.stepping.to_string()));
            put("host.cpu.cache.l2.size", Detected::Int(cpu.cache_size));
        }
    }
    Ok(out)
}
