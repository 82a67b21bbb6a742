use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::*;

fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("s{id}"),
        ..Span::default()
    }
}

fn scope(name: &str, spans: Vec<Span>) -> ScopeSpans {
    ScopeSpans {
        scope: Some(InstrumentationScope {
            name: name.into(),
            ..InstrumentationScope::default()
        }),
        spans,
        schema_url: format!("https://scope/{name}"),
    }
}

/// (trace, resource schema URL, [(scope name, scope schema URL, [span names])]) per group.
type Shape = (u8, String, Vec<(String, String, Vec<String>)>);

fn shape(groups: &[TraceGroup]) -> Vec<Shape> {
    groups
        .iter()
        .map(|g| {
            let rs = ResourceSpans::decode(&g.spans[..]).expect("decodes");
            assert_eq!(g.size_bytes, g.spans.len() as u64);
            let scopes = rs
                .scope_spans
                .into_iter()
                .map(|ss| {
                    let name = ss.scope.map(|s| s.name).unwrap_or_default();
                    let spans = ss.spans.into_iter().map(|s| s.name).collect();
                    (name, ss.schema_url, spans)
                })
                .collect();
            (g.id[0], rs.schema_url, scopes)
        })
        .collect()
}

fn owned(scopes: &[(&str, &[&str])]) -> Vec<(String, String, Vec<String>)> {
    scopes
        .iter()
        .map(|(name, spans)| {
            (
                (*name).to_owned(),
                format!("https://scope/{name}"),
                spans.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn spans_are_grouped_by_resource_and_trace_with_everything_else_kept() {
    let resource = |service: &str, scopes| ResourceSpans {
        resource: Some(Resource {
            attributes: vec![redline_processor_testkit::kv(
                "service.name",
                redline_processor_testkit::string(service),
            )],
            ..Resource::default()
        }),
        scope_spans: scopes,
        schema_url: format!("https://schema/{service}"),
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![
            resource(
                "cart",
                vec![
                    scope(
                        "http",
                        vec![span(1, 1, None), span(2, 2, None), span(1, 3, Some(1))],
                    ),
                    scope("db", vec![span(1, 4, Some(3))]),
                ],
            ),
            resource("pay", vec![scope("grpc", vec![span(2, 5, Some(2))])]),
        ],
    };
    let raw = request.encode_to_vec();
    let groups = by_trace(&raw).expect("splits");
    assert_eq!(
        shape(&groups),
        vec![
            (
                1,
                "https://schema/cart".to_owned(),
                owned(&[("http", &["s1", "s3"]), ("db", &["s4"])])
            ),
            (
                2,
                "https://schema/cart".to_owned(),
                owned(&[("http", &["s2"])])
            ),
            (
                2,
                "https://schema/pay".to_owned(),
                owned(&[("grpc", &["s5"])])
            ),
        ]
    );
    let counts: Vec<(i64, bool)> = groups.iter().map(|g| (g.span_count, g.has_root)).collect();
    assert_eq!(counts, vec![(3, true), (1, true), (1, false)]);

    // Forwarded again as a request, the spans are the client's bytes.
    let parts: Vec<Bytes> = groups.iter().map(|g| g.spans.clone()).collect();
    let again = ExportTraceServiceRequest::decode(&request_of(&parts)[..]).expect("decodes");
    let spans = |r: &ExportTraceServiceRequest| {
        let mut all: Vec<Vec<u8>> = r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(Message::encode_to_vec)
            .collect();
        all.sort();
        all
    };
    assert_eq!(spans(&again), spans(&request));
}

#[test]
fn unknown_fields_travel_with_the_resource_and_scope() {
    // Field 99 (a varint) in the resource spans and field 98 in the scope spans: kept.
    let mut scope_spans = scope("http", vec![span(1, 1, None)]).encode_to_vec();
    scope_spans.extend([0x90, 0x06, 0x07]);
    let mut rs = Vec::new();
    put_len_field(&mut rs, NESTED, scope_spans.len());
    rs.extend(&scope_spans);
    rs.extend([0x98, 0x06, 0x05]);
    let mut raw = Vec::new();
    put_len_field(&mut raw, RESOURCE_SPANS, rs.len());
    raw.extend(&rs);
    let groups = by_trace(&raw).expect("splits");
    assert_eq!(groups.len(), 1);
    let held = &groups[0].spans;
    assert!(held.windows(3).any(|w| w == [0x98, 0x06, 0x05]));
    assert!(held.windows(3).any(|w| w == [0x90, 0x06, 0x07]));
    assert_eq!(held.len(), rs.len());
}

#[test]
fn a_truncated_request_is_an_error_not_a_panic() {
    let raw = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![scope("http", vec![span(1, 1, None)])],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec();
    for cut in 1..raw.len() {
        let _ = by_trace(&raw[..cut]);
    }
    assert!(by_trace(&raw[..raw.len() - 1]).is_err());
}
