//! What the system detector reads, and how: the same files and parsing rules otelcol's
//! dependencies use (Go's `os.Hostname`, go-fqdn's hosts-file lookup, the OpenTelemetry SDK's
//! os-release and machine-id readers, gopsutil's platform and cpuinfo parsing).

use std::io;

/// Read access to the machine's files, so tests can stand in for the machine.
pub trait Files: Send + Sync {
    fn read(&self, path: &str) -> io::Result<String>;
    /// Entry names of a directory.
    fn list(&self, path: &str) -> io::Result<Vec<String>>;
}

/// The real machine.
pub struct LocalFiles;

impl Files for LocalFiles {
    fn read(&self, path: &str) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        std::fs::read_dir(path)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

pub(super) fn hostname_from(source: &str, files: &dyn Files) -> Result<String, String> {
    match source {
        "os" => os_hostname(files).map_err(|e| format!("failed getting OS hostname: {e}")),
        "dns" => {
            let host =
                os_hostname(files).map_err(|e| format!("getFQDN failed getting FQDN: {e}"))?;
            let hosts = files
                .read("/etc/hosts")
                .map_err(|e| format!("cannot open hosts file: {e}"))?;
            hosts
                .lines()
                .find_map(|line| canonical_from_hosts_line(&host, line))
                .ok_or_else(|| {
                    format!("{host:?} is not in /etc/hosts, and Redline makes no DNS query")
                })
        }
        other => Err(format!(
            "hostname source {other:?} needs a DNS query, which Redline does not make"
        )),
    }
}

/// Go's `os.Hostname` on Linux: the kernel's host name as `/proc` shows it.
fn os_hostname(files: &dyn Files) -> io::Result<String> {
    let name = files.read("/proc/sys/kernel/hostname")?;
    Ok(name.trim_end_matches('\n').to_owned())
}

/// go-fqdn's hosts-file rule: on a line `ip canonical alias...` (a `#` ends the line), the
/// canonical name is the answer when it or an alias is `host`; a canonical name that is
/// not a valid host name disqualifies the line.
pub(super) fn canonical_from_hosts_line(host: &str, line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or_default();
    let mut fields = line.split([' ', '\t']).filter(|f| !f.is_empty());
    let _ip = fields.next()?;
    let canonical = fields.next()?;
    let valid = canonical.len() <= 254
        && canonical
            .chars()
            .all(|c| !c.is_ascii() || c == '.' || c == '-' || c.is_ascii_alphanumeric());
    if !valid {
        return None;
    }
    if canonical == host || fields.any(|alias| alias == host) {
        return Some(canonical.to_owned());
    }
    None
}

/// Go's `GOOS`, spelled as otelcol's `os.type` spells it.
pub(super) fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "dragonfly" => "dragonflybsd",
        other => other,
    }
}

/// Go's `GOARCH`, spelled as otelcol's `host.arch` spells it.
pub(super) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

pub(super) fn machine_id(files: &dyn Files) -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|p| files.read(p).ok())
        .map(|id| id.trim().to_owned())
}

/// `uname -snrvm`, from `/proc/sys/kernel`.
pub(super) fn uname(files: &dyn Files) -> io::Result<String> {
    let read = |name: &str| {
        files
            .read(&format!("/proc/sys/kernel/{name}"))
            .map(|v| v.trim_end_matches('\n').to_owned())
    };
    let machine = read("arch").unwrap_or_else(|_| std::env::consts::ARCH.to_owned());
    Ok(format!(
        "{} {} {} {} {}",
        read("ostype")?,
        read("hostname")?,
        read("osrelease")?,
        read("version")?,
        machine
    ))
}

/// One value of an os-release file: trimmed, unquoted, unescaped; the last line wins.
pub(super) fn os_release_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.is_empty() || k.trim() != key {
            continue;
        }
        found = Some(unescape(unquote(v.trim())));
    }
    found
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&q @ (b'"' | b'\'')), Some(&end)) if b.len() >= 2 && q == end => &s[1..s.len() - 1],
        _ => s,
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if matches!(next, '$' | '"' | '\'' | '\\' | '`') {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// The SDK's OS release text: `NAME VERSION` (or `VERSION_ID`), else `PRETTY_NAME`.
pub(super) fn os_release_name(text: &str) -> String {
    let get = |k| os_release_value(text, k).unwrap_or_default();
    let name = get("NAME");
    let mut version = get("VERSION");
    if version.is_empty() {
        version = get("VERSION_ID");
    }
    if !name.is_empty() && !version.is_empty() {
        format!("{name} {version}")
    } else {
        get("PRETTY_NAME")
    }
}

/// gopsutil's platform name and version (`os.name`, `os.version`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Platform {
    pub name: String,
    pub version: String,
}

/// gopsutil's detection for the Debian family and Alpine, and its `os-release` fallback
/// (`ID`, `VERSION_ID`) for the rest.
pub(super) fn platform(files: &dyn Files) -> Platform {
    let non_empty = |p: &str| files.read(p).ok().filter(|t| !t.is_empty());
    let lsb = non_empty("/etc/lsb-release").unwrap_or_default();
    let lsb_value = |key: &str| {
        lsb.lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().replace('"', ""))
            .next_back()
            .unwrap_or_default()
    };
    let first_line = |text: String| text.lines().next().unwrap_or_default().to_owned();
    let (name, version) = if let Some(debian) = non_empty("/etc/debian_version") {
        match lsb_value("DISTRIB_ID").as_str() {
            "Ubuntu" => ("ubuntu".to_owned(), lsb_value("DISTRIB_RELEASE")),
            "LinuxMint" => ("linuxmint".to_owned(), lsb_value("DISTRIB_RELEASE")),
            _ => {
                let name = if non_empty("/usr/bin/raspi-config").is_some() {
                    "raspbian"
                } else {
                    "debian"
                };
                (name.to_owned(), first_line(debian))
            }
        }
    } else if let Some(alpine) = non_empty("/etc/alpine-release") {
        ("alpine".to_owned(), first_line(alpine))
    } else if let Some(release) = non_empty("/etc/os-release") {
        let get = |k| os_release_value(&release, k).unwrap_or_default();
        (get("ID"), get("VERSION_ID"))
    } else {
        (String::new(), String::new())
    };
    Platform {
        name: name.trim_matches('"').to_owned(),
        version,
    }
}

/// The first processor of `/proc/cpuinfo` (the x86 field names).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Cpu {
    pub vendor_id: String,
    pub family: String,
    pub model: String,
    pub model_name: String,
    pub stepping: i32,
    pub cache_size: i64,
}

pub(super) fn first_cpu(text: &str) -> Result<Option<Cpu>, String> {
    let mut cpu: Option<Cpu> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            if cpu.is_some() {
                break;
            }
            cpu = Some(Cpu::default());
            continue;
        }
        let Some(c) = cpu.as_mut() else {
            continue;
        };
        match key {
            "vendor_id" | "vendorId" => c.vendor_id = value.to_owned(),
            "cpu family" => c.family = value.to_owned(),
            "model" => c.model = value.to_owned(),
            "model name" => c.model_name = value.to_owned(),
            "stepping" if !value.eq_ignore_ascii_case("unknown") => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| format!("stepping {value:?} is not a number"))?;
                c.stepping = n as i32;
            }
            "cache size" => {
                let n: i64 = value
                    .replacen(" KB", "", 1)
                    .parse()
                    .map_err(|_| format!("cache size {value:?} is not a number of KB"))?;
                c.cache_size = i64::from(n as i32);
            }
            _ => {}
        }
    }
    Ok(cpu)
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Interface {
    pub name: String,
    pub up: bool,
    pub loopback: bool,
    /// IEEE RA form (`02-FC-00-00-00-01`); empty for an interface without an address.
    pub mac: String,
}

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;

/// The network interfaces in index order, as Go's `net.Interfaces` lists them.
pub(super) fn interfaces(files: &dyn Files) -> io::Result<Vec<Interface>> {
    let mut found = Vec::new();
    for name in files.list("/sys/class/net")? {
        let read = |f: &str| {
            files
                .read(&format!("/sys/class/net/{name}/{f}"))
                .map(|v| v.trim().to_owned())
        };
        let index: u64 = read("ifindex")?.parse().unwrap_or(u64::MAX);
        let flags = read("flags")
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        let address = read("address").unwrap_or_default();
        let all_zero = address.split(':').all(|b| b.chars().all(|c| c == '0'));
        let mac = if all_zero {
            String::new()
        } else {
            address.to_uppercase().replace(':', "-")
        };
        found.push((
            index,
            Interface {
                name,
                up: flags & IFF_UP != 0,
                loopback: flags & IFF_LOOPBACK != 0,
                mac,
            },
        ));
    }
    found.sort_by_key(|(index, _)| *index);
    Ok(found.into_iter().map(|(_, i)| i).collect())
}
