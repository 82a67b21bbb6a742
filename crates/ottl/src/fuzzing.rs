//! The body of the `ottl_exec` fuzz target, kept here so unit tests run it too: decode any
//! bytes as a traces request, and check that the dry run never says "no change" (or "nothing
//! dropped") when applying changes the request.

use std::sync::OnceLock;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::exec::{
    filter_traces, traces_may_drop, ConditionSet, ErrorMode, StatementGroup, TraceFilters,
};
use crate::paths::{ContextKind, Signal};

/// Statements covering many functions and paths, one group each.
pub const STATEMENTS: &[&str] = &[
    r#"set(attributes["env"], "prod")"#,
    r#"set(name, name)"#,
    r#"delete_key(attributes, "user")"#,
    r#"delete_matching_keys(attributes, "^zz")"#,
    r#"keep_keys(attributes, ["user", "http.url"])"#,
    r#"keep_matching_keys(attributes, ".*")"#,
    r#"limit(attributes, 2, [])"#,
    r#"truncate_all(attributes, 3)"#,
    r#"replace_pattern(attributes["http.url"], "token=[a-z]+", "token=***")"#,
    r#"replace_pattern(name, "[0-9]+", "{id}")"#,
    r#"replace_all_patterns(attributes, "value", "a", "b")"#,
    r#"replace_all_patterns(attributes, "key", "^u", "v")"#,
    r#"replace_match(name, "GET *", "GET")"#,
    r#"replace_all_matches(attributes, "a*", "x")"#,
    r#"merge_maps(attributes, {"user": "alice"}, "upsert")"#,
    r#"set(attributes["n"], Int(attributes["n"]) + 1) where IsMatch(String(attributes["n"]), "^[0-9]+$")"#,
    r#"set(status.code, STATUS_CODE_ERROR) where kind == SPAN_KIND_SERVER"#,
    r#"set(resource.attributes["host"], "h1")"#,
    r#"set(attributes["c"], Concat([resource.attributes["service.name"], name], "/"))"#,
];

struct Compiled {
    groups: Vec<StatementGroup>,
    spans: ConditionSet,
    events: ConditionSet,
}

fn compiled() -> Option<&'static Compiled> {
    static COMPILED: OnceLock<Option<Compiled>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let mut groups = Vec::new();
            for s in STATEMENTS {
                for context in [ContextKind::Span, ContextKind::SpanEvent] {
                    // Not every statement suits the span event context; skip those.
                    if let Ok(g) = StatementGroup::compile(
                        Some(context),
                        Signal::Traces,
                        &[s.to_string()],
                        &[],
                        ErrorMode::Silent,
                    ) {
                        groups.push(g);
                    }
                }
            }
            let spans = ConditionSet::compile(
                ContextKind::Span,
                &[r#"attributes["user"] == "alice" or IsMatch(name, "^db")"#.to_string()],
                ErrorMode::Silent,
            )
            .ok()?;
            let events = ConditionSet::compile(
                ContextKind::SpanEvent,
                &[r#"name == "ev""#.to_string()],
                ErrorMode::Silent,
            )
            .ok()?;
            (!groups.is_empty()).then_some(Compiled {
                groups,
                spans,
                events,
            })
        })
        .as_ref()
}

/// Panics when the dry-run invariant is broken for this input.
pub fn dry_run_invariant(data: &[u8]) {
    let Ok(req) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    let raw = bytes::Bytes::copy_from_slice(data);
    let Ok((_, names)) = redline_otlp_wire::validate_with_span_names(&raw) else {
        return;
    };
    // Without a parser (it is built separately) there is nothing to run.
    let Some(c) = compiled() else { return };
    for g in &c.groups {
        let Ok(may) = g.may_change_traces(data) else {
            continue;
        };
        // The run on recorded span names answers from the memo when it can; never otherwise.
        assert_eq!(
            g.may_change_named_traces(&names).ok(),
            Some(may),
            "the named dry run disagrees for {:?} {:?}",
            g.context(),
            g.statement_texts()
        );
        let mut applied = req.clone();
        let _ = g.apply_traces(&mut applied);
        assert!(
            may || same(&applied, &req),
            "dry run missed a change for {:?} {:?}",
            g.context(),
            g.statement_texts()
        );
    }
    let filters = TraceFilters {
        resource: None,
        span: Some(&c.spans),
        span_event: Some(&c.events),
    };
    if let Ok(may) = traces_may_drop(filters, data) {
        let mut filtered = req.clone();
        if filter_traces(filters, &mut filtered).is_ok() {
            assert!(may || same(&filtered, &req), "filter dry run missed a drop");
        }
    }
}

/// Equal encodings: a NaN attribute value (the fuzzer writes them) makes a request unequal to
/// itself under `PartialEq`, though nothing changed.
fn same(a: &ExportTraceServiceRequest, b: &ExportTraceServiceRequest) -> bool {
    a.encode_to_vec() == b.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_and_mutations_hold_the_invariant() {
        assert!(compiled().is_some(), "the fixed statements compile");
        let raw = crate::exec::tests::sample().encode_to_vec();
        dry_run_invariant(&raw);
        // Truncations and byte flips: whatever still decodes must hold too.
        for cut in (0..raw.len()).step_by(7) {
            dry_run_invariant(&raw[..cut]);
        }
        for i in (0..raw.len()).step_by(5) {
            let mut m = raw.clone();
            m[i] ^= 0x5a;
            dry_run_invariant(&m);
        }
    }

    #[test]
    fn inputs_the_fuzzer_found_hold_the_invariant() {
        // A double attribute holding NaN.
        dry_run_invariant(include_bytes!("fuzzing_cases/nan_double.bin"));
    }
}
