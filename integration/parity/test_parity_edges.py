"""Parity on requests the SDKs never make: awkward names and values, missing or out-of-range
fields, bad ids, every body encoding, oversized and malformed requests. Each request goes to
both collectors; what they answer, count and forward is compared."""

from __future__ import annotations

import gzip
import json

import grpc
import zstandard

import scenario
import traffic
from configs import spanmetrics_pipeline
from diff import compare_answers
from traffic import request, span

PROTOBUF = {"Content-Type": "application/x-protobuf"}
SVC = {"service.name": "edge-cases", "service.instance.id": "edge-1"}

CONFIG = spanmetrics_pipeline({
    "namespace": "traces.spanmetrics",
    "dimensions": [{"name": "odd.value"}, {"name": "cdn.cache.hit"}],
})


def _invalid_utf8(req) -> bytes:
    """`req` encoded, with the marker `INVALID!` in a string field turned into invalid UTF-8
    (same length, so every length prefix stays right)."""
    return req.SerializeToString().replace(b"INVALID!", b"IN\xffVA\xc3(!")


def test_edge_cases(pair_factory, allow):
    pair = pair_factory(CONFIG)
    diffs: list[str] = []
    counted = 0

    def grpc_case(name, body, counts, **kw):
        nonlocal counted
        diffs.extend(compare_answers(name, pair.grpc_export(body, **kw)))
        counted += counts

    def http_case(name, body, headers, counts):
        nonlocal counted
        diffs.extend(compare_answers(name, pair.http_post("/v1/traces", body, headers)))
        counted += counts

    awkward = ['quote"d', "back\\slash", "new\nline", "utf-8 ünïcödé ☃ 日本", "tab\there", "{braces}=,"]
    grpc_case("awkward names and values", request((SVC, [
        span(name=n, attrs={"odd.value": n}) for n in awkward])).SerializeToString(), len(awkward))
    grpc_case("invalid UTF-8 in a span name", _invalid_utf8(request((SVC, [span(name="INVALID!")]))), 1)
    grpc_case("invalid UTF-8 in a dimension value",
              _invalid_utf8(request((SVC, [span(name="bad-value", attrs={"odd.value": "INVALID!"})]))), 1)
    grpc_case("empty span name", request((SVC, [span(name="")])).SerializeToString(), 1)
    grpc_case("no service.name", request(({"host.name": "nameless"}, [span(name="nameless")])).SerializeToString(), 0)
    grpc_case("empty service.name", request(({"service.name": ""}, [span(name="empty-service")])).SerializeToString(), 1)
    grpc_case("out-of-range kind and status", request((SVC, [
        span(name="kind-9", kind=9), span(name="status-7", status=7), span(name="kind-neg", kind=-1)])).SerializeToString(), 3)
    grpc_case("end before start", request((SVC, [span(name="negative", dur_ms=-5)])).SerializeToString(), 1)
    bounds = [2, 4, 10, 100, 1000, 15000, 15000.000001]
    grpc_case("durations on bucket bounds", request((SVC, [
        span(name="bounds", dur_ms=d) for d in bounds])).SerializeToString(), len(bounds))
    odd_values = [["a", "b"], [1, 2.5, True], {"k": "v", "n": 1}, b"\x00\x01bytes", True, 2.5, 42, 1e100, [],
                  {}, 0.1 + 0.2, -0.0]
    grpc_case("array, map, bytes and other values as dimensions", request((SVC, [
        span(name="odd-types", attrs={"odd.value": v}) for v in odd_values])).SerializeToString(), len(odd_values))
    grpc_case("a boolean dimension", request((SVC, [
        span(name="cache", attrs={"cdn.cache.hit": True}), span(name="cache", attrs={"cdn.cache.hit": "true"})])
    ).SerializeToString(), 2)
    grpc_case("several resources and scopes in one request", request(
        ({"service.name": "multi-a"}, [span(name="x"), span(name="y")]),
        ({"service.name": "multi-b"}, [span(name="x")]),
    ).SerializeToString(), 3)
    bad_ids = [span(name="short-trace-id", trace_id=b"\x01" * 8), span(name="zero-span-id", span_id=b"\x00" * 8),
               span(name="zero-trace-id", trace_id=b"\x00" * 16), span(name="no-ids", trace_id=b"", span_id=b"")]
    grpc_case("bad trace and span ids", request((SVC, bad_ids)).SerializeToString(), 0)
    grpc_case("gzip over gRPC", request((SVC, [span(name="grpc-gzip")])).SerializeToString(), 1,
              compression=grpc.Compression.Gzip)
    grpc_case("malformed protobuf", b"\x0a\xff\xff\xff\xff\x0f garbage", 0)
    grpc_case("empty request", b"", 0)
    big = request((SVC, [span(name="big", attrs={"blob": "x" * (5 << 20)})])).SerializeToString()
    grpc_case("gRPC message over 4 MiB", big, 0)

    body = request((SVC, [span(name="http-proto")])).SerializeToString()
    http_case("HTTP protobuf", body, PROTOBUF, 1)
    http_case("HTTP protobuf, gzip", gzip.compress(request((SVC, [span(name="http-gzip")])).SerializeToString()),
              {**PROTOBUF, "Content-Encoding": "gzip"}, 1)
    http_case("HTTP protobuf, zstd",
              zstandard.ZstdCompressor().compress(request((SVC, [span(name="http-zstd")])).SerializeToString()),
              {**PROTOBUF, "Content-Encoding": "zstd"}, 1)
    omitted = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "edge-cases"}},
        {"key": "service.instance.id", "value": {"stringValue": "edge-1"}}]},
        "scopeSpans": [{"scope": {}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "json-omitted", "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000250000000",
            "attributes": [{"key": "odd.value", "value": {"arrayValue": {}}}, {"key": "empty", "value": {}}],
            "status": {"code": "STATUS_CODE_ERROR"}}]}]}]}
    http_case("OTLP/JSON with omitted empty fields and enum names", json.dumps(omitted).encode(),
              {"Content-Type": "application/json"}, 1)
    http_case("OTLP/JSON that is not JSON", b"{not json", {"Content-Type": "application/json"}, 0)
    http_case("unsupported content type", body, {"Content-Type": "text/plain"}, 0)
    http_case("HTTP body over 20 MiB", request((SVC, [span(name="huge", attrs={"blob": "x" * (21 << 20)})]))
              .SerializeToString(), PROTOBUF, 0)

    diffs += scenario.differences(pair, counted)
    allow.check("edge cases", diffs)
