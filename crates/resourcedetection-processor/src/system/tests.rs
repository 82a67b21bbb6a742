//! The system detector against a made-up machine.

use std::collections::HashMap;
use std::io;

use super::host::{canonical_from_hosts_line, first_cpu, os_release_name, os_release_value, Cpu};
use super::*;

#[derive(Default)]
struct FakeFiles(HashMap<&'static str, &'static str>);

impl Files for FakeFiles {
    fn read(&self, path: &str) -> io::Result<String> {
        self.0
            .get(path)
            .map(|s| (*s).to_owned())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let prefix = format!("{path}/");
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_owned)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

fn machine() -> FakeFiles {
    FakeFiles(HashMap::from([
        ("/proc/sys/kernel/hostname", "myhost\n"),
        ("/proc/sys/kernel/ostype", "Linux\n"),
        ("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n"),
        ("/proc/sys/kernel/version", "#1 SMP Debian 6.1.76-1\n"),
        ("/proc/sys/kernel/arch", "x86_64\n"),
        ("/etc/hosts", "127.0.0.1 localhost\n# 10.0.0.1 myhost\n10.0.0.2\tmyhost.example.com  myhost # primary\n"),
        ("/etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n"),
        ("/etc/debian_version", "12.11\n"),
        (
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
        ),
        (
            "/proc/cpuinfo",
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\ncache size\t: 1024 KB\n\nprocessor\t: 1\nvendor_id\t: Other\n",
        ),
        ("/sys/class/net/lo/ifindex", "1\n"),
        ("/sys/class/net/lo/flags", "0x9\n"),
        ("/sys/class/net/lo/address", "00:00:00:00:00:00\n"),
        ("/sys/class/net/eth0/ifindex", "2\n"),
        ("/sys/class/net/eth0/flags", "0x1003\n"),
        ("/sys/class/net/eth0/address", "02:fc:00:00:00:0a\n"),
        ("/sys/class/net/ifb0/ifindex", "3\n"),
        ("/sys/class/net/ifb0/flags", "0x82\n"),
        ("/sys/class/net/ifb0/address", "4e:63:cd:9c:ef:96\n"),
    ]))
}

fn config(yaml_like: &[(&str, bool)], sources: &[&str]) -> SystemConfig {
    SystemConfig {
        hostname_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
        resource_attributes: yaml_like
            .iter()
            .map(|(k, on)| ((*k).to_owned(), Toggle { enabled: Some(*on) }))
            .collect(),
    }
}

fn s(v: &str) -> Detected {
    Detected::Str(v.into())
}

#[test]
fn defaults_are_host_name_from_hosts_and_os_type() {
    let got = detect(&SystemConfig::default(), &machine()).expect("detects");
    assert_eq!(
        got,
        vec![
            ("host.name".to_owned(), s("myhost.example.com")),
            ("os.type".to_owned(), s(host::os_type())),
        ]
    );
}

#[test]
fn every_attribute_in_otelcols_order() {
    let all: Vec<(&str, bool)> = ATTRIBUTES
        .iter()
        .filter(|(n, _)| *n != "host.ip")
        .map(|(n, _)| (*n, true))
        .collect();
    let got = detect(&config(&all, &["os"]), &machine()).expect("detects");
    let want = vec![
        ("host.name", s("myhost")),
        ("os.type", s(host::os_type())),
        ("os.version", s("12.11")),
        ("host.id", s("3d1219c7c4c5404aaa1f6d2a48adfda4")),
        ("host.arch", s(host::host_arch())),
        ("host.mac", Detected::List(vec!["02-FC-00-00-00-0A".into()])),
        ("host.interface", Detected::List(vec!["lo".into(), "eth0".into(), "ifb0".into()])),
        (
            "os.description",
            s("Debian GNU/Linux 12 (bookworm) (Linux myhost 6.1.0-18-amd64 #1 SMP Debian 6.1.76-1 x86_64)"),
        ),
        ("os.name", s("debian")),
        ("os.build.id", s("6.1.0-18-amd64")),
        ("host.cpu.vendor.id", s("AuthenticAMD")),
        ("host.cpu.family", s("26")),
        ("host.cpu.model.id", s("2")),
        ("host.cpu.model.name", s("AMD EPYC")),
        ("host.cpu.stepping", s("1")),
        ("host.cpu.cache.l2.size", Detected::Int(1024)),
    ];
    let want: Vec<(String, Detected)> = want.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(got, want);
}

#[test]
fn hostname_sources_fail_over_in_order() {
    let off_os_type = [("os.type", false)];
    let got = detect(
        &config(&off_os_type, &["cname", "lookup", "os"]),
        &machine(),
    )
    .expect("detects");
    assert_eq!(got, vec![("host.name".to_owned(), s("myhost"))]);
    assert!(matches!(
        detect(&config(&off_os_type, &["cname"]), &machine()),
        Err(SystemError::NoHostname)
    ));
    let mut no_hosts_entry = machine();
    no_hosts_entry
        .0
        .insert("/etc/hosts", "127.0.0.1 localhost\n");
    let got = detect(&config(&off_os_type, &[]), &no_hosts_entry).expect("dns fails over to os");
    assert_eq!(got, vec![("host.name".to_owned(), s("myhost"))]);
}

#[test]
fn validation_names_the_key() {
    let bad_source = config(&[], &["os", "mdns"]);
    assert_eq!(
        bad_source.validate().expect_err("invalid").0,
        "hostname_sources[1]"
    );
    let unknown = config(&[("host.colour", true)], &[]);
    assert_eq!(
        unknown.validate().expect_err("invalid").0,
        "resource_attributes.host.colour"
    );
    let ip = config(&[("host.ip", true)], &[]);
    assert!(ip.validate().is_err());
    let absent_enabled = SystemConfig {
        resource_attributes: [("host.name".to_owned(), Toggle { enabled: None })].into(),
        ..SystemConfig::default()
    };
    assert!(absent_enabled.enabled("host.name"), "keeps its default");
}

#[test]
fn parsers_follow_their_go_originals() {
    assert_eq!(
        canonical_from_hosts_line("h", "1.2.3.4 h.example h"),
        Some("h.example".into())
    );
    assert_eq!(
        canonical_from_hosts_line("h", "1.2.3.4 h"),
        Some("h".into())
    );
    assert_eq!(canonical_from_hosts_line("h", "1.2.3.4 bad_name h"), None);
    assert_eq!(canonical_from_hosts_line("h", "#1.2.3.4 h"), None);
    assert_eq!(canonical_from_hosts_line("h", "1.2.3.4"), None);

    let release = "NAME='My OS'\nVERSION_ID=\"1.0\"\n  # comment\nBUILD_ID=\"a\\\"b\"\n=x\n";
    assert_eq!(os_release_name(release), "My OS 1.0");
    assert_eq!(os_release_value(release, "BUILD_ID"), Some("a\"b".into()));
    assert_eq!(os_release_name("PRETTY_NAME=Only Pretty\n"), "Only Pretty");

    assert_eq!(first_cpu("").expect("empty is fine"), None);
    assert!(first_cpu("processor: 0\nstepping: x\n").is_err());
    assert_eq!(
        first_cpu("processor: 0\nstepping: unknown\nmodel name: M\n").expect("valid"),
        Some(Cpu {
            model_name: "M".into(),
            ..Cpu::default()
        })
    );
}
