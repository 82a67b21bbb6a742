"""The traffic the parity suite sends to both collectors.

- `sdk_send`: the OpenTelemetry Python SDK exporting one set of spans (integration/traceset.py's
  PLAN: several services, a service on two hosts, a resource without service.name, durations
  on bucket bounds) to both collectors at once, over OTLP/gRPC or OTLP/HTTP protobuf. Each
  TracerProvider has one exporter per collector, so both get the very same spans.
- `otlp_json`: an ExportTraceServiceRequest in OTLP/JSON (hex ids, integer enums, int64 as
  strings), as the OTLP/HTTP JSON encoding specifies.
- `request`: hand-built requests for edge cases the SDK never makes.
"""

from __future__ import annotations

import base64
import json

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from traceset import PLAN, record


def counted_spans(plan=PLAN) -> int:
    """Spans of `plan` that span metrics count: those whose resource has a service.name."""
    return sum(len(roots) + sum(len(r[5]) for r in roots) for res, roots in plan if "service.name" in res)


def all_spans(plan=PLAN) -> int:
    return sum(len(roots) + sum(len(r[5]) for r in roots) for _, roots in plan)


def _exporter(protocol: str, collector):
    if protocol == "grpc":
        return GrpcExporter(endpoint=f"127.0.0.1:{collector.ports['grpc']}", insecure=True, timeout=10)
    if protocol == "http/protobuf":
        return HttpExporter(endpoint=collector.url("http", "/v1/traces"), timeout=10)
    raise ValueError(protocol)


def sdk_send(pair, protocol: str = "grpc", plan=PLAN) -> list:
    """Record `plan` with the SDK, exporting every span to both collectors of `pair` over
    `protocol` (one request per span, so no SDK batching decides what goes together).
    Returns the ReadableSpans."""

    def exporters(provider):
        for collector in pair.c.values():
            provider.add_span_processor(SimpleSpanProcessor(_exporter(protocol, collector)))

    return record(plan, exporters)


def sdk_request(spans) -> bytes:
    """The SDK's own encoding of `spans` as one ExportTraceServiceRequest."""
    return encode_spans(spans).SerializeToString()


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_FIELDS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(node, list):
        for v in node:
            _hex_ids(v)


def otlp_json(request_bytes: bytes, enums_as_names: bool = False) -> bytes:
    """OTLP/JSON of an encoded ExportTraceServiceRequest: ids in hex, enums as integers (or
    as their names, which OTLP receivers also accept), zero values left out."""
    req = trace_service_pb2.ExportTraceServiceRequest.FromString(request_bytes)
    doc = json_format.MessageToDict(req, use_integers_for_enums=not enums_as_names)
    _hex_ids(doc)
    return json.dumps(doc).encode()


# ---------------------------------------------------------------- hand-built requests


def kv(key: str, value) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=anyvalue(value))


def anyvalue(v) -> common_pb2.AnyValue:
    if isinstance(v, common_pb2.AnyValue):
        return v
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, int):
        return common_pb2.AnyValue(int_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    if isinstance(v, bytes):
        return common_pb2.AnyValue(bytes_value=v)
    if isinstance(v, (list, tuple)):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[anyvalue(x) for x in v]))
    if isinstance(v, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[kv(k, x) for k, x in v.items()]))
    return common_pb2.AnyValue(string_value=str(v))


_seq = [0]


def span(name="op", kind=2, status=0, dur_ms=10.0, attrs=None, trace_id=None, span_id=None,
         start=None) -> trace_pb2.Span:
    """A span with fresh ids unless given; `dur_ms` may be negative (end before start)."""
    _seq[0] += 1
    n = _seq[0]
    start = start if start is not None else 1_700_000_000_000_000_000 + n * 1_000_000_000
    return trace_pb2.Span(
        trace_id=trace_id if trace_id is not None else n.to_bytes(16, "big"),
        span_id=span_id if span_id is not None else (n | 1 << 60).to_bytes(8, "big"),
        name=name, kind=kind, start_time_unix_nano=start,
        end_time_unix_nano=start + int(dur_ms * 1_000_000),
        attributes=[kv(k, v) for k, v in (attrs or {}).items()],
        status=trace_pb2.Status(code=status),
    )


def request(*resources) -> trace_service_pb2.ExportTraceServiceRequest:
    """resources: (resource attributes, [spans]) pairs, one scope each."""
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv(k, v) for k, v in res.items()]),
            scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="parity"), spans=spans)],
        )
        for res, spans in resources
    ])


def with_instance_ids(plan=PLAN) -> list:
    """`plan` with a service.instance.id on every resource that has a service.name, as SDKs in
    Kubernetes set it: each resource is then its own instance, in both collectors."""
    out = []
    for res, roots in plan:
        res = dict(res)
        if "service.name" in res:
            res["service.instance.id"] = f"{res['service.name']}@{res.get('host.name', 'host')}"
        out.append((res, roots))
    return out


PARITY_PLAN = with_instance_ids()
