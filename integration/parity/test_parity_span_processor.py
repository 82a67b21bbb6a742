"""Parity of the `span` processor: span names built from attributes of every value type (with
and without a separator, a key missing), attributes extracted from names by named groups
(rules in turn, `break_after_match`, `keep_original_name`, an unnamed group, an attribute
overwritten), status set (`Error` with a description, `Ok` over an error, `Unset`), and the
spans selected by `include` / `exclude` (services, span names, kinds, attributes).

One config runs through both collectors; the same requests go to both over gRPC and
OTLP/HTTP, and what each forwards is compared span by span. Settings otelcol refuses at start
are refused by both, and `redline validate` names every bad key of a section in one run.
"""

from __future__ import annotations

import time

import pytest
import requests
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
import otlp_signals
from configs import three_signals_with
from test_parity_signals import check_forwarded, send
from traffic import anyvalue, kv

PROCESSORS = {
    # Every value type, with a separator; spans of `cart` only.
    "span/from_attributes": {
        "include": {"match_type": "strict", "services": ["cart"]},
        "name": {"from_attributes": ["http.method", "retry", "ratio", "cached", "blob"], "separator": " | "},
    },
    # No separator, on spans with an `order.id`; a span missing `region` keeps its name.
    "span/joined": {
        "include": {"match_type": "strict", "attributes": [{"key": "order.id"}]},
        "name": {"from_attributes": ["region", "order.id"]},
    },
    # Rules in turn, each on the previous one's name; an attribute the span had is replaced.
    "span/to_attributes": {
        "exclude": {"match_type": "regexp", "span_names": ["^health"]},
        "name": {"to_attributes": {"rules": [
            r"^(?P<http_method>[A-Z]+) /api/(?P<api_version>v\d+)/",
            r"/orders/(?P<order_id>\d+)$",
            r"^/(v\d)/(?P<item>[a-z]+)$",
        ]}},
    },
    "span/first_rule_only": {
        "include": {"match_type": "regexp", "span_names": ["^health"]},
        "name": {"to_attributes": {"break_after_match": True, "keep_original_name": True, "rules": [
            r"^health/(?P<probe>[a-z]+)",
            r"(?P<never>.+)",
        ]}},
    },
    "span/errors": {
        "include": {"match_type": "strict", "attributes": [{"key": "error", "value": True}]},
        "status": {"code": "Error", "description": "marked by the span processor"},
    },
    "span/ok": {
        "include": {"match_type": "strict", "span_kinds": ["SPAN_KIND_CLIENT"]},
        "exclude": {"match_type": "strict", "attributes": [{"key": "error", "value": True}]},
        "status": {"code": "Ok"},
    },
    "span/unset": {
        "include": {"match_type": "regexp", "services": ["^inventory$"]},
        "status": {"code": "Unset"},
    },
    # A rule that matches an empty name: otelcol leaves spans without a name alone.
    "span/whole_name": {
        "include": {"match_type": "strict", "services": ["inventory"], "span_kinds": ["SPAN_KIND_INTERNAL"]},
        "name": {"to_attributes": {"rules": [r"^(?P<whole>.*)$"]}},
    },
}

PIPELINE = ["span/from_attributes", "span/joined", "span/to_attributes", "span/first_rule_only",
            "span/errors", "span/ok", "span/unset", "span/whole_name"]

T0 = 1_700_000_000_000_000_000


def _span(n: int, name: str, kind: int, attrs: dict, status=(0, "")) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=(0x4BF92F3577B34DA6A3CE929D0E0E0000 + n).to_bytes(16, "big"),
        span_id=(0x00F067AA0BA90000 + n).to_bytes(8, "big"),
        name=name, kind=kind, start_time_unix_nano=T0 + n, end_time_unix_nano=T0 + n + 5_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()],
        status=trace_pb2.Status(code=status[0], message=status[1]))


def request(tag: str) -> trace_service_pb2.ExportTraceServiceRequest:
    client, server, internal = 3, 2, 1
    services = {
        "cart": [
            _span(1, "GET /api/v2/orders/1234", server,
                  {"http.method": "GET", "retry": 3, "ratio": 0.25, "cached": False, "blob": b"\x01"}),
            _span(2, "lookup", client,
                  {"http.method": "POST", "retry": -1, "ratio": 1e21, "cached": True, "blob": [1, "a"]}),
            _span(3, "missing one", internal, {"http.method": "GET", "retry": 0, "ratio": 1e-7, "cached": True}),
            _span(4, "map", client,
                  {"http.method": "PUT", "retry": 1, "ratio": 3.0, "cached": True, "blob": {"k": "v"},
                   "error": True}),
        ],
        "checkout": [
            _span(5, "POST /api/v1/orders/77", server, {"order_api": "x", "api_version": 9, "error": True},
                  status=(1, "")),
            _span(6, "charge", client, {"order.id": 991, "region": "eu-west-1"}, status=(2, "card declined")),
            _span(7, "refund", client, {"order.id": 17}),
            _span(8, "/v1/widgets", internal, {}),
            _span(9, "health/live/check", server, {"error": False}),
        ],
        "inventory": [
            _span(11, "DELETE /api/v3/orders/5", client, {"error": True}, status=(2, "gone")),
            _span(12, "health", internal, {}, status=(1, "")),
            _span(10, "", internal, {}),
        ],
    }
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv("service.name", svc), kv("parity.case", tag)]),
            scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="parity.span", version="1"),
                                              spans=spans)])
        for svc, spans in services.items()])


def test_span_processor(pair_factory, allow):
    pair = pair_factory(three_signals_with(PROCESSORS, {"traces": PIPELINE}), flush_interval=None)
    diffs, sent = [], []
    for transport in ("grpc", "http/protobuf"):
        req = request(f"span over {transport}")
        seen = send(pair, "traces", transport, req)
        if seen["otelcol"] != seen["redline"]:
            diffs.append(f"answer differs over {transport}: {seen}")
        assert seen["redline"].startswith(("OK", "200")), seen
        sent.append(req)
    want = {"traces": otlp_signals.count_items("traces", sent), "metrics": 0, "logs": 0}
    flat, _ = check_forwarded(pair, allow, diffs, want, {"traces": sent, "metrics": [], "logs": []})

    # The processors did act, as written above; read from what Redline forwarded.
    spans = {}
    for key in flat["redline"]["traces"]:
        s = trace_pb2.Span.FromString(key[-1])
        spans[int.from_bytes(s.span_id[-2:], "big")] = s
    attrs = {n: {a.key: a.value for a in s.attributes} for n, s in spans.items()}
    assert spans[2].name == "POST | -1 | 1000000000000000000000 | true | <unknown-attribute-type>"
    assert spans[3].name == "missing one"
    assert spans[1].name == "GET | 3 | 0.25 | false | <unknown-attribute-type>"
    assert spans[6].name == "eu-west-1991" and spans[7].name == "refund"
    assert spans[5].name == "{http_method} /api/{api_version}/orders/{order_id}"
    assert attrs[5]["api_version"] == anyvalue("v1") and attrs[5]["order_id"] == anyvalue("77")
    assert spans[8].name == "/{}/{item}" and attrs[8][""] == anyvalue("v1")
    assert spans[9].name == "health/live/check" and attrs[9]["probe"] == anyvalue("live")
    assert "never" not in attrs[9]
    assert spans[12].name == "{whole}" and attrs[12]["whole"] == anyvalue("health")
    assert attrs[12]["never"] == anyvalue("health")
    assert spans[10].name == "" and "whole" not in attrs[10]
    assert (spans[5].status.code, spans[5].status.message) == (2, "marked by the span processor")
    assert (spans[6].status.code, spans[6].status.message) == (1, "")
    assert (spans[11].status.code, spans[11].status.message) == (0, "")


def _config(tmp_path, span: dict):
    path = tmp_path / "span.yaml"
    path.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"span": span},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "processors": ["span"],
                                             "exporters": ["debug"]}}},
    }))
    return path


# Sections otelcol refuses when it builds the pipeline, and the key Redline names.
REFUSED = [
    ("nothing to do", {"name": {"separator": "-"}}, "processors.span.name"),
    ("status code spelt in lower case", {"status": {"code": "ok"}}, "processors.span.status.code"),
    ("description without Error", {"status": {"code": "Ok", "description": "x"}},
     "processors.span.status.description"),
    ("rule that does not compile", {"name": {"to_attributes": {"rules": ["(?P<x>"]}}},
     "processors.span.name.to_attributes.rules[0]"),
    ("include without match_type", {"include": {"services": ["a"]}, "status": {"code": "Ok"}},
     "processors.span.include"),
]


@pytest.mark.parametrize("section,key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_sections_are_refused_by_both(otelcol_bin, redline_bin, tmp_path, section, key):
    path = _config(tmp_path, section)
    # otelcol checks these when it builds the pipeline, so its start (not `validate`) fails.
    peer = helpers.run([otelcol_bin, "--config", path], timeout=60)
    assert peer.returncode != 0 and "span" in peer.stderr, peer.stderr[-2000:]
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert ours.returncode != 0 and key in ours.stderr + ours.stdout, ours.stderr


def test_validate_names_every_bad_key_of_a_section(redline_bin, tmp_path):
    path = _config(tmp_path, {"status": {"code": "Unset", "description": "x"},
                              "name": {"to_attributes": {"rules": ["ok", "[z-a]"]}},
                              "exclude": {"match_type": "glob", "span_names": ["a"]}})
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    out = ours.stderr + ours.stdout
    assert ours.returncode != 0
    for key in ("processors.span.status.description", "processors.span.name.to_attributes.rules[1]",
                "processors.span.exclude"):
        assert key in out, out


def test_a_group_that_took_no_part_crashes_otelcol_not_redline(pair_factory):
    """otelcol slices the span name at -1 for a group outside the match: its HTTP server
    drops the connection, its gRPC server takes the whole collector down. Redline keeps the
    group's text and forwards (docs/compatibility.md §37)."""
    processors = {"span": {"name": {"to_attributes": {"rules": [r"^(?P<scheme>https?://)?(?P<host>[a-z.]+)$"]}}}}
    pair = pair_factory(three_signals_with(processors, {"traces": ["span"]}), flush_interval=None)
    req = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        scope_spans=[trace_pb2.ScopeSpans(spans=[_span(1, "example.org", 3, {})])])])
    body = req.SerializeToString()
    otelcol, redline = pair.c["otelcol"], pair.c["redline"]

    assert redline.http_post("/v1/traces", body, {"Content-Type": "application/x-protobuf"}).status == "200"
    with pytest.raises(requests.ConnectionError):
        otelcol.http_post("/v1/traces", body, {"Content-Type": "application/x-protobuf"})

    assert redline.grpc_export(body).status == "OK"
    assert otelcol.grpc_export(body).status == "UNAVAILABLE"
    deadline = time.monotonic() + 15
    while otelcol.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert otelcol.proc.poll() not in (None, 0)
    assert "slice bounds out of range" in otelcol.proc.log_text()

    deadline = time.monotonic() + 15
    while len(spans := [s for r in pair.sinks["redline"].requests_of("traces") for rs in r.resource_spans
                        for ss in rs.scope_spans for s in ss.spans]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(s.name, {a.key: a.value.string_value for a in s.attributes}) for s in spans] == \
        [("{host}", {"host": "example.org"})] * 2
    assert redline.proc.poll() is None
