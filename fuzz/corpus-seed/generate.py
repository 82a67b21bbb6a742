"""Writes the committed fuzz seeds (fuzz/corpus-seed/<target>/). Re-run after changing it:

    .venv/bin/python fuzz/corpus-seed/generate.py

Seeds are small on purpose: libFuzzer mutates them, so they only need to reach every shape
(all AnyValue kinds, nesting, events, links, merged fields, several resources; every metric
kind, exemplars, buckets, quantiles, log bodies), not volume.
The config seeds are the repo's own configs plus sections with every spanmetrics key.
The OTTL seeds are statements and a condition that together use every construct of the grammar.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def kv(key, **value):
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def nested(depth: int) -> common_pb2.AnyValue:
    v = common_pb2.AnyValue(int_value=depth)
    for _ in range(depth):
        v = common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[v]))
    return v


def span(i: int, **kw) -> trace_pb2.Span:
    base = dict(
        trace_id=bytes([i + 1] * 16), span_id=bytes([i + 1] * 8), name=f"op{i}",
        kind=trace_pb2.Span.SPAN_KIND_SERVER, start_time_unix_nano=1_700_000_000_000_000_000,
        end_time_unix_nano=1_700_000_000_005_000_000 + i,
    )
    base.update(kw)
    return trace_pb2.Span(**base)


def requests() -> dict:
    attrs = [
        kv("a", string_value="x"), kv("b", bool_value=True), kv("http.method", string_value="GET"),
        kv("i", int_value=-7), kv("d", double_value=0.5), kv("by", bytes_value=b"\x00\xff"),
        kv("arr", array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(string_value="e")])),
        kv("map", kvlist_value=common_pb2.KeyValueList(values=[kv("k", int_value=1)])),
        common_pb2.KeyValue(key="empty"),
    ]
    rich = span(
        1, attributes=attrs, parent_span_id=b"\x01" * 8, trace_state="k=v",
        status=trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="boom"),
        events=[trace_pb2.Span.Event(time_unix_nano=5, name="ev", attributes=[kv("e", string_value="1")])],
        links=[trace_pb2.Span.Link(trace_id=b"\x02" * 16, span_id=b"\x02" * 8, attributes=[kv("l", int_value=2)])],
        flags=0x101, dropped_attributes_count=3,
    )
    res = resource_pb2.Resource(attributes=[kv("service.name", string_value="svc"), kv("a", string_value="r")])
    one = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=res,
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="s", version="1"),
                                          spans=[rich, span(2), span(3, trace_id=b"", span_id=b"\x00" * 8)])],
        schema_url="https://opentelemetry.io/schemas/1.21.0",
    )])
    multi = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(resource=res, scope_spans=[trace_pb2.ScopeSpans(spans=[span(4)])]),
        trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span(5)])]),  # no service.name
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv("service.name", int_value=3)]),
            scope_spans=[trace_pb2.ScopeSpans(
                spans=[span(6, attributes=[common_pb2.KeyValue(key="deep", value=nested(20))])])]),
    ])
    raw_one = one.SerializeToString()
    # Two encoded requests concatenated are one request (repeated fields merge), and a repeated
    # singular message (the resource) merges: both shapes the walker must read like prost.
    merged_resource = (trace_pb2.ResourceSpans(resource=resource_pb2.Resource(attributes=[kv("x", string_value="1")]))
                       .SerializeToString()
                       + trace_pb2.ResourceSpans(resource=res, scope_spans=[trace_pb2.ScopeSpans(spans=[span(7)])])
                       .SerializeToString())
    merged = b"\x0a" + _varint(len(merged_resource)) + merged_resource
    return {
        "empty.bin": b"",
        "one.bin": raw_one,
        "multi.bin": multi.SerializeToString(),
        "concat.bin": raw_one + multi.SerializeToString(),
        "merged-resource.bin": merged,
        "truncated.bin": raw_one[: len(raw_one) // 2],
    }


def metrics_requests() -> dict:
    m = metrics_pb2
    attrs = [kv("a", string_value="x"), kv("i", int_value=3)]
    exemplars = [
        m.Exemplar(filtered_attributes=[kv("e", bool_value=True)], time_unix_nano=7, as_double=0.25,
                   span_id=b"\x01" * 8, trace_id=b"\x02" * 16),
        m.Exemplar(as_int=-4),
    ]
    number = m.NumberDataPoint(attributes=attrs, start_time_unix_nano=1, time_unix_nano=2, as_double=1.5,
                               exemplars=exemplars, flags=1)
    metrics = [
        m.Metric(name="gauge", unit="1", gauge=m.Gauge(data_points=[number, m.NumberDataPoint(as_int=5)])),
        m.Metric(name="sum", description="d", sum=m.Sum(data_points=[number], is_monotonic=True,
                 aggregation_temporality=m.AGGREGATION_TEMPORALITY_CUMULATIVE)),
        m.Metric(name="histogram", histogram=m.Histogram(aggregation_temporality=1, data_points=[
            m.HistogramDataPoint(attributes=attrs, count=6, sum=3.0, bucket_counts=[1, 2, 3],
                                 explicit_bounds=[0.5, 1.0], exemplars=exemplars, min=0.1, max=2.0)])),
        m.Metric(name="exponential", exponential_histogram=m.ExponentialHistogram(data_points=[
            m.ExponentialHistogramDataPoint(count=3, scale=-2, zero_count=1, zero_threshold=1e-9,
                                            positive=m.ExponentialHistogramDataPoint.Buckets(offset=-1, bucket_counts=[1, 300]),
                                            negative=m.ExponentialHistogramDataPoint.Buckets(bucket_counts=[1]),
                                            exemplars=exemplars)])),
        m.Metric(name="summary", summary=m.Summary(data_points=[m.SummaryDataPoint(
            count=2, sum=4.0, quantile_values=[m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0)])])),
        m.Metric(name="no-data", metadata=[kv("meta", string_value="v")]),
        m.Metric(name="deep", gauge=m.Gauge(data_points=[m.NumberDataPoint(
            attributes=[common_pb2.KeyValue(key="deep", value=nested(20))])])),
    ]
    res = resource_pb2.Resource(attributes=[kv("service.name", string_value="svc")])
    one = metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[m.ResourceMetrics(
        resource=res, schema_url="https://opentelemetry.io/schemas/1.21.0",
        scope_metrics=[m.ScopeMetrics(scope=common_pb2.InstrumentationScope(name="s", version="1"),
                                      metrics=metrics)])]).SerializeToString()
    # Two encoded metrics concatenated are one metric: the last `data` variant wins.
    merged_metric = metrics[0].SerializeToString() + metrics[1].SerializeToString() + metrics[0].SerializeToString()
    merged = _nest([1, 2, 2], merged_metric)
    return {
        "empty.bin": b"",
        "one.bin": one,
        "concat.bin": one + one,
        "merged-metric.bin": merged,
        "truncated.bin": one[: len(one) // 2],
    }


def logs_requests() -> dict:
    lg = logs_pb2
    records = [
        lg.LogRecord(time_unix_nano=1, observed_time_unix_nano=2, severity_number=lg.SEVERITY_NUMBER_ERROR,
                     severity_text="ERROR", body=common_pb2.AnyValue(string_value="boom"),
                     attributes=[kv("a", string_value="x"), kv("by", bytes_value=b"\x00\xff")],
                     dropped_attributes_count=1, flags=1, trace_id=b"\x01" * 16, span_id=b"\x02" * 8,
                     event_name="app.event"),
        lg.LogRecord(body=common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[
            kv("k", double_value=0.5), kv("arr", array_value=common_pb2.ArrayValue(values=[common_pb2.AnyValue(int_value=1)]))]))),
        lg.LogRecord(body=nested(30)),
        lg.LogRecord(),
    ]
    one = logs_service_pb2.ExportLogsServiceRequest(resource_logs=[lg.ResourceLogs(
        resource=resource_pb2.Resource(attributes=[kv("service.name", string_value="svc")]),
        scope_logs=[lg.ScopeLogs(scope=common_pb2.InstrumentationScope(name="s"), log_records=records,
                                 schema_url="https://opentelemetry.io/schemas/1.21.0")])]).SerializeToString()
    return {
        "empty.bin": b"",
        "one.bin": one,
        "concat.bin": one + one,
        "merged-record.bin": _nest([1, 2, 2], records[0].SerializeToString() + records[1].SerializeToString()),
        "truncated.bin": one[: len(one) // 2],
    }


def sampler_inputs() -> dict:
    """A selector byte (bit 0: logs; the others pick mode, percentage, fail_closed, source)
    and a request with tracestates or sampling attributes of every kind."""
    states = ["", "ot=th:8", "ot=rv:c0000000000000;th:4,vendor=x", " ot=th:zz , k@s=1", "ot=p:2;th:c;x:y"]
    spans = [span(i, trace_state=ts, attributes=[kv("sampling.priority", int_value=i - 1)] if i % 2 else [])
             for i, ts in enumerate(states)]
    traces = trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        scope_spans=[trace_pb2.ScopeSpans(spans=spans), trace_pb2.ScopeSpans()])]).SerializeToString()
    records = [
        logs_pb2.LogRecord(trace_id=bytes([i + 1] * 16) if i % 2 else b"", attributes=attrs)
        for i, attrs in enumerate([
            [kv("a", string_value="id-1"), kv("p", double_value=50.0)],
            [kv("sampling.threshold", string_value="8"), kv("x", int_value=1)],
            [kv("sampling.randomness", string_value="c0000000000000"), kv("a", bytes_value=b"\x01")],
            [kv("sampling.threshold", string_value="zz"), kv("p", int_value=0)],
        ])
    ]
    logs = logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]).SerializeToString()
    return {
        "traces-hash.bin": bytes([0x08]) + traces,
        "traces-proportional.bin": bytes([0x94]) + traces,
        "traces-equalizing.bin": bytes([0x28]) + traces,
        "logs-record.bin": bytes([0x49]) + logs,
        "logs-equalizing.bin": bytes([0xa5]) + logs,
        "tracestate.bin": b"ot=rv:c0000000000000;th:8;p:1,congo=t61rcWkgMzE",
    }


def _nest(path: list, payload: bytes) -> bytes:
    """`payload` wrapped in length-delimited fields, path[0] outermost."""
    for tag in reversed(path):
        payload = _varint(tag << 3 | 2) + _varint(len(payload)) + payload
    return payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def json_bodies() -> dict:
    span_json = {
        "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
        "parentSpanId": "", "name": "GET /", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000005000000,
        "attributes": [
            {"key": "a", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "42"}},
            {"key": "d", "value": {"doubleValue": 1.5}},
            {"key": "b", "value": {"boolValue": True}},
            {"key": "by", "value": {"bytesValue": "AP8="}},
            {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "e"}, {"intValue": 1}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}},
        ],
        "events": [{"timeUnixNano": "1", "name": "ev", "attributes": []}],
        "links": [{"traceId": "0102030405060708090a0b0c0d0e0f11", "spanId": "0102030405060709"}],
        "status": {"code": 2, "message": "boom"},
        "flags": 257,
    }
    full = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "s", "version": "1"}, "spans": [span_json]}],
        "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
    }]}
    deep: dict = {"intValue": "1"}
    for _ in range(30):
        deep = {"arrayValue": {"values": [deep]}}
    deep_body = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708", "name": "d",
        "attributes": [{"key": "deep", "value": deep}]}]}]}]}
    return {
        "empty-object.json": b"{}",
        "full.json": json.dumps(full).encode(),
        "deep.json": json.dumps(deep_body).encode(),
        "snake-case.json": b'{"resource_spans":[{"scope_spans":[{"spans":[{"name":"x","kind":"SPAN_KIND_CLIENT"}]}]}]}',
    }


SPANMETRICS_ALL_KEYS = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:HOST}:${env:PORT:-4317}
        max_recv_msg_size_mib: 4
      http:
        endpoint: 127.0.0.1:4318
        traces_url_path: /v1/traces
processors:
  batch:
    timeout: 200ms
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    dimensions:
      - name: cdn.cache.hit
      - name: http.method
        default: GET
    exclude_dimensions: [span.kind]
    histogram:
      unit: s
      explicit:
        buckets: [100us, 1ms, 1m30s]
    aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE
    metrics_flush_interval: 15s
    metrics_expiration: 5m
    aggregation_cardinality_limit: 1000
    exemplars:
      enabled: true
      max_per_data_point: 1
    resource_metrics_key_attributes: [service.name]
exporters:
  otlp/tempo:
    endpoint: ${env:NESTED}
    tls:
      insecure: true
  prometheus:
    endpoint: 127.0.0.1:9464
    namespace: ns
    const_labels:
      env: prod
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""


def zipkin_bodies() -> dict:
    """Mode byte (bit 0: protobuf, bit 1: typed tags), then a Zipkin v2 body."""
    span = {
        "traceId": "463ac35c9f6413ad48485a3953bb6124", "id": "48485a3953bb6124",
        "parentId": "0000000000000001", "name": "get /api", "kind": "SERVER",
        "timestamp": 1700000000000001, "duration": 25,
        "localEndpoint": {"serviceName": "web", "ipv4": "10.0.0.1", "port": 8080},
        "remoteEndpoint": {"serviceName": "db", "ipv6": "::1", "port": 5432},
        "annotations": [{"timestamp": 1700000000000002, "value": "ws"},
                        {"timestamp": 1700000000000003, "value": 'exc|{"n":2,"s":"a|b"}|1'}],
        "tags": {"http.status_code": "200", "host.name": "h", "otel.scope.name": "lib",
                 "otel.status_code": "Error", "otel.status_description": "boom", "error": "x",
                 "span.kind": "internal", "w3c.tracestate": "k=v", "n": "-12", "d": "1.5",
                 "otlp.link.0": "0102030405060708090a0b0c0d0e0f10|0102030405060708|s|{}|0"},
    }
    bare = {"traceId": "1", "id": "2"}
    # zipkin.proto3: ListOfSpans { spans: [Span { trace_id, id, kind, name, timestamp,
    # local_endpoint { service_name, ipv4 }, annotations { timestamp, value }, tags }] }
    endpoint = b"\x0a\x03web\x12\x04\x0a\x00\x00\x01"
    annotation = b"\x09" + (1).to_bytes(8, "little") + b"\x12\x02ws"
    tag = b"\x0a\x01k\x12\x02-1"
    pb = (b"\x0a\x10" + bytes(range(1, 17)) + b"\x1a\x08" + bytes(range(1, 9)) + b"\x20\x02"
          + b"\x2a\x03get" + b"\x31" + (1700000000000001).to_bytes(8, "little")
          + b"\x42" + bytes([len(endpoint)]) + endpoint
          + b"\x52" + bytes([len(annotation)]) + annotation
          + b"\x5a" + bytes([len(tag)]) + tag)
    body = b"\x0a" + bytes([len(pb)]) + pb
    return {
        "full.json": b"\x00" + json.dumps([span, None, bare]).encode(),
        "typed.json": b"\x02" + json.dumps([span]).encode(),
        "bare.json": b"\x00" + json.dumps([bare]).encode(),
        "span.pb": b"\x01" + body,
        "typed.pb": b"\x03" + body,
    }


def jaeger_bodies() -> dict:
    """Mode byte (0: a Batch as Thrift over HTTP, 1: an agent datagram in the compact
    protocol, 2: in the binary protocol, 3: the gRPC API's PostSpansRequest), then the body."""
    import struct

    def binary_field(ty, fid, payload):
        return bytes([ty]) + struct.pack(">h", fid) + payload

    def bstr(v):
        return struct.pack(">i", len(v)) + v

    def blist(items):
        return bytes([12]) + struct.pack(">i", len(items)) + b"".join(items)

    def btag(key, vtype, fid, ty, payload):
        return (binary_field(11, 1, bstr(key)) + binary_field(8, 2, struct.pack(">i", vtype))
                + binary_field(ty, fid, payload) + b"\0")

    tags = [btag(b"span.kind", 0, 3, 11, bstr(b"server")),
            btag(b"error", 2, 5, 2, b"\1"),
            btag(b"http.status_code", 3, 6, 10, struct.pack(">q", 503)),
            btag(b"ratio", 1, 4, 4, struct.pack(">d", 0.5)),
            btag(b"raw", 4, 7, 11, bstr(b"\0\xff"))]
    log = binary_field(10, 1, struct.pack(">q", 1700000000000002)) + binary_field(
        15, 2, blist([btag(b"event", 0, 3, 11, bstr(b"retry"))])) + b"\0"
    ref = b"".join(binary_field(ty, fid, payload) for ty, fid, payload in (
        (8, 1, struct.pack(">i", 1)), (10, 2, struct.pack(">q", 7)),
        (10, 3, struct.pack(">q", 1)), (10, 4, struct.pack(">q", 9)))) + b"\0"
    span = b"".join(binary_field(10, fid, struct.pack(">q", v)) for fid, v in (
        (1, 7), (2, 1), (3, 2), (4, 0))) + binary_field(11, 5, bstr(b"GET /")) + binary_field(
        15, 6, blist([ref])) + binary_field(8, 7, struct.pack(">i", 1)) + b"".join(
        binary_field(10, fid, struct.pack(">q", v)) for fid, v in (
            (8, 1700000000000001), (9, 25))) + binary_field(15, 10, blist(tags)) + binary_field(
        15, 11, blist([log])) + b"\0"
    process = binary_field(11, 1, bstr(b"web")) + binary_field(
        15, 2, blist([btag(b"hostname", 0, 3, 11, bstr(b"h1"))])) + b"\0"
    batch = binary_field(12, 1, process) + binary_field(15, 2, blist([span])) + b"\0"
    binary_call = b"\x80\x01\x00\x04" + bstr(b"emitBatch") + struct.pack(">i", 1)
    # The compact protocol: a process-only batch with one span of the required fields.
    def zz(v):
        v = (v << 1) ^ (v >> 63)
        out = b""
        while v >= 0x80:
            out += bytes([(v & 0x7f) | 0x80])
            v >>= 7
        return out + bytes([v])
    cspan = (b"\x16" + zz(7) + b"\x16" + zz(1) + b"\x16" + zz(2) + b"\x16" + zz(0)
             + b"\x18\x03GET" + b"\x25" + zz(1) + b"\x16" + zz(1700000000000001)
             + b"\x16" + zz(25) + b"\0")
    cbatch = b"\x1c" + b"\x18\x03web" + b"\0" + b"\x19\x1c" + cspan + b"\0"
    compact_call = b"\x82\x81\x01\x09emitBatch" + b"\x1c" + cbatch + b"\0"
    # The gRPC API's PostSpansRequest { batch { spans [span], process } }, protobuf.
    def ld(field, payload):
        return bytes([field << 3 | 2]) + _varint(len(payload)) + payload

    def _varint(n):
        out = b""
        while n >= 0x80:
            out += bytes([(n & 0x7f) | 0x80])
            n >>= 7
        return out + bytes([n])

    kv = ld(1, b"otel.scope.name") + ld(3, b"lib")
    pspan = (ld(1, bytes(range(1, 17))) + ld(2, bytes(range(1, 9))) + ld(3, b"GET /")
             + ld(4, ld(1, bytes(range(1, 17))) + ld(2, bytes(range(2, 10))))
             + bytes([5 << 3]) + b"\x01"
             + ld(6, bytes([1 << 3]) + _varint(1700000000) + bytes([2 << 3]) + _varint(5))
             + ld(7, bytes([2 << 3]) + _varint(1500)) + ld(8, kv)
             + ld(9, ld(1, bytes([1 << 3]) + _varint(1700000000)) + ld(2, ld(1, b"event") + ld(3, b"retry"))))
    pbatch = ld(1, pspan) + ld(2, ld(1, b"web") + ld(2, ld(1, b"hostname") + ld(3, b"h1")))
    return {
        "grpc.pb": b"\x03" + ld(1, pbatch),
        "batch.thrift": b"\x00" + batch,
        "agent-binary.thrift": b"\x02" + binary_call + binary_field(12, 1, batch) + b"\0",
        "agent-compact.thrift": b"\x01" + compact_call,
    }


def configs() -> dict:
    out = {"all-keys.yaml": SPANMETRICS_ALL_KEYS.encode(), "anchors.yaml":
           b"x: &a {endpoint: 1}\nreceivers:\n  otlp: *a\n  otlp/2: {<<: *a}\n"}
    for p in sorted((REPO / "configs").glob("*.yaml")):
        out[p.name] = p.read_bytes()
    return out


OTTL_TEXTS = [
    'set(attributes["test"], "pass") where name == "fido"',
    'set(span.attributes["k"], Concat([attributes["a"], "x"], "-")) where IsMatch(name, "^op") and not (kind == SPAN_KIND_SERVER or status.code != 1)',
    'keep_keys(resource.attributes, ["service.name", "host.name"])',
    'replace_pattern(attributes["message"], "device=*", attributes["device_name"], SHA256)',
    'set(attributes["x"], Split(attributes["y"], ",")[Len(attributes["z"]) - 1]) where attributes["n"] > -1.5e3',
    'set(attributes["m"], {"a": 1, "b": [0x0102, nil, true, .5] "c": {"d": "\\x41\\u00e9"},})',
    'set(name = attributes["a"], value = -(1 + 2) * 3 / x) where (1 + 2) * 3 == 9',
    'limit(attributes, 100, ["http.method"]) where Foo()[0]["k"] == nil',
    '((x == 1))',
]


def fluentforward_streams() -> dict:
    """Connection streams for the fluent_forward target: the first byte is where the stream
    splits into two reads, then each carrier mode's event twice, options included."""
    import gzip

    import msgpack

    entries = b"".join(msgpack.packb([i, {"log": f"line {i}", "n": i, "m": {"a": [1, 2.5, None, True]}}])
                       for i in range(3))
    event_time = b"\xd7\x00" + (1700000000).to_bytes(4, "big") + (5).to_bytes(4, "big")
    events = {
        "message": msgpack.packb(["app", 1700000000, {"log": "hi", "k": "v"}]),
        "message_eventtime_chunk": b"\x94\xa3app" + event_time + msgpack.packb({"message": "x"})
        + msgpack.packb({"chunk": "c1"}),
        "forward": msgpack.packb(["app", [[1, {"log": "a"}], [2, {"log": "b", "x": b"bin"}]],
                                  {"chunk": "c2", "size": 2}]),
        "packed": msgpack.packb(["app", entries, {"size": 3}], use_bin_type=True),
        "packed_gzip": msgpack.packb(["app", gzip.compress(entries, mtime=0), {"compressed": "gzip"}],
                                     use_bin_type=True),
    }
    return {name: bytes([7]) + event + event for name, event in events.items()}


def ottl_texts() -> dict:
    return {f"{i:02}.ottl": text.encode() for i, text in enumerate(OTTL_TEXTS)}


def main():
    for target, files in (("lean_decoder", requests()), ("otlp_json", json_bodies()), ("config_loader", configs()),
                          ("metrics_validator", metrics_requests()), ("logs_validator", logs_requests()),
                          ("ottl_parse", ottl_texts()), ("ottl_exec", requests()),
                          ("probabilistic_sampler", sampler_inputs()), ("zipkin", zipkin_bodies()),
                          ("jaeger", jaeger_bodies()), ("fluentforward", fluentforward_streams())):
        d = HERE / target
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for name, data in files.items():
            (d / name).write_bytes(data)
        print(f"{target}: {len(files)} seeds, {sum(len(v) for v in files.values())} bytes")


if __name__ == "__main__":
    main()
