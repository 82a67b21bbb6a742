//! The processor end to end: config section -> detection -> batches.

use std::io;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use redline_pipeline::edit::{BatchEditor, Edited};
use redline_pipeline::Batch;
use redline_processor_testkit::{build, component, send};

use super::*;

fn invalid(body: &str) -> String {
    ResourceDetectionFactory
        .validate(&component(body))
        .expect_err("invalid")
        .to_string()
}

struct Host;

impl Files for Host {
    fn read(&self, path: &str) -> io::Result<String> {
        match path {
            "/proc/sys/kernel/hostname" => Ok("box\n".into()),
            "/etc/hosts" => Ok("127.0.0.1 localhost\n".into()),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, path.to_owned())),
        }
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        Err(io::Error::new(io::ErrorKind::NotFound, path.to_owned()))
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

fn kv_s(k: &str, v: &str) -> KeyValue {
    kv(k.into(), s(v))
}

fn detection(body: &str, env: &[(&str, &str)]) -> Result<Detection, String> {
    let (cfg, detectors) = parse(&component(body)).map_err(|e| e.to_string())?;
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    detect(&cfg, &detectors, &lookup, &Host).map_err(|e| e.to_string())
}

#[test]
fn config_defaults_and_refusals() {
    let (cfg, detectors) = parse(&component("  resource_detection/p:\n")).expect("valid");
    assert_eq!(detectors, vec![Detector::Env]);
    assert!(cfg.override_existing);
    let e = invalid("  resource_detection/p:\n    detectors: [env, ec2]\n");
    assert!(
        e.contains("detectors[1]")
            && e.contains("detector \"ec2\" is not supported by Redline; supported: env, system"),
        "{e}"
    );
    let e = invalid("  resource_detection/p:\n    detectors: [nope]\n");
    assert!(e.contains("invalid detector key: nope"), "{e}");
    let e = invalid("  resource_detection/p:\n    detectors: [env]\n    refresh_interval: 5m\n");
    assert!(e.contains("refresh_interval"), "{e}");
    let e = invalid("  resource_detection/p:\n    detectors: [env]\n    ec2: {tags: [a]}\n");
    assert!(e.contains("ec2") && e.contains("does not support"), "{e}");
    let e = invalid("  resource_detection/p:\n    timeout: 0s\n    retry: {enabled: true}\n");
    assert!(e.contains("retry.enabled requires"), "{e}");
    let e = invalid("  resource_detection/p:\n    detectors: [system]\n    system: {hostname_sources: [os, ntp]}\n");
    assert!(e.contains("system.hostname_sources[1]"), "{e}");
    parse(&component(
        "  resourcedetection/p:\n    detectors: [\" env \", system]\n    timeout: 2s\n    override: false\n    system:\n      hostname_sources: [os]\n      resource_attributes:\n        host.id: {enabled: true}\n",
    ))
    .expect("the deprecated type name and otelcol's keys are accepted");
    assert_eq!(
        ResourceDetectionFactory
            .warnings(&component("  resourcedetection/p:\n"))
            .len(),
        1
    );
}

#[test]
fn first_detector_wins_and_system_brings_the_schema_url() {
    let got = detection(
        "  resource_detection/p:\n    detectors: [env, system]\n    system: {hostname_sources: [dns, os]}\n",
        &[("OTEL_RESOURCE_ATTRIBUTES", "host.name=from-env,team=a%20b")],
    )
    .expect("detects");
    assert_eq!(
        got,
        Detection {
            attributes: vec![
                kv_s("host.name", "from-env"),
                kv_s("team", "a b"),
                kv_s("os.type", system::host_os_type_for_tests()),
            ],
            schema_url: "https://opentelemetry.io/schemas/1.40.0".into(),
        }
    );
    let err = detection(
        "  resource_detection/p:\n",
        &[("OTEL_RESOURCE_ATTRIBUTES", "garbage")],
    )
    .expect_err("fails");
    assert_eq!(err, "env detector: invalid resource format: \"garbage\"");
}

fn request(resource: Option<Resource>, schema_url: &str) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource,
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "s".into(),
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            schema_url: schema_url.into(),
        }],
    }
}

fn with_attrs(attrs: Vec<KeyValue>) -> Option<Resource> {
    Some(Resource {
        attributes: attrs,
        ..Resource::default()
    })
}

fn edit(
    editor: &DetectionEditor,
    req: &ExportTraceServiceRequest,
) -> Option<ExportTraceServiceRequest> {
    let batch = Batch::new(Signal::Traces, Bytes::from(req.encode_to_vec()), 1);
    match editor.edit(&batch).expect("valid batch") {
        Edited::Replaced(b) => {
            Some(ExportTraceServiceRequest::decode(&b.raw[..]).expect("decodes"))
        }
        Edited::Unchanged => None,
        Edited::Dropped => panic!("detection never drops"),
    }
}

#[test]
fn editor_merges_with_and_without_override() {
    let found = Detection {
        attributes: vec![kv_s("host.name", "box"), kv_s("env", "prod")],
        schema_url: "https://opentelemetry.io/schemas/1.40.0".into(),
    };
    let overriding = DetectionEditor::new("p".into(), found.clone(), true);
    let mine = request(
        with_attrs(vec![kv_s("service.name", "svc"), kv_s("host.name", "mine")]),
        "",
    );
    assert_eq!(
        edit(&overriding, &mine),
        Some(request(
            with_attrs(vec![
                kv_s("service.name", "svc"),
                kv_s("host.name", "box"),
                kv_s("env", "prod")
            ]),
            "https://opentelemetry.io/schemas/1.40.0",
        ))
    );
    let keeping = DetectionEditor::new("p".into(), found.clone(), false);
    assert_eq!(
        edit(&keeping, &request(None, "https://example.com/s")),
        Some(request(
            with_attrs(vec![kv_s("host.name", "box"), kv_s("env", "prod")]),
            "https://example.com/s",
        ))
    );
    let complete = request(
        with_attrs(vec![kv_s("host.name", "box"), kv_s("env", "prod")]),
        "https://example.com/s",
    );
    assert_eq!(
        edit(&overriding, &complete),
        None,
        "nothing to change: original bytes"
    );
    let nothing = DetectionEditor::new("p".into(), Detection::default(), true);
    assert_eq!(edit(&nothing, &mine), None);
}

#[test]
fn the_factory_detects_once_at_build_and_fails_the_start_on_bad_input() {
    let config = component(
        "  resource_detection/p:\n    detectors: [system]\n    system: {hostname_sources: [os]}\n",
    );
    let (consumer, sink, _) = build(&ResourceDetectionFactory, &config, Signal::Traces)
        .expect("the local machine has a host name");
    send(
        &consumer,
        Signal::Traces,
        request(None, "").encode_to_vec(),
        1,
    );
    let got = sink.take();
    let req = ExportTraceServiceRequest::decode(&got[0].raw[..]).expect("decodes");
    let attrs = &req.resource_spans[0]
        .resource
        .as_ref()
        .expect("a resource")
        .attributes;
    assert_eq!(
        attrs.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        vec!["host.name", "os.type"]
    );
    assert_eq!(req.resource_spans[0].schema_url, system::SCHEMA_URL);
}
