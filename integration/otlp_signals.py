"""The three OTLP signals side by side: their request/response messages, paths and gRPC
methods, OTLP/JSON in both directions, item counts as otelcol counts them, and a canonical
flattened form for comparing what was sent with what arrived.

Shares no code with Redline: everything here is the `opentelemetry-proto` package's generated
classes and `google.protobuf.json_format`.

Flattening: a request becomes a multiset (Counter) of its items (spans, metric data points,
log records), each with its resource and scope (and, for data points, the metric they belong
to without its other points), serialized deterministically. Two sets of requests carry the
same data exactly when their flattened forms are equal, however the items were grouped into
requests, resources and scopes; the order of items does not matter.

One normalization: a singular sub-message that is present but empty (and not a oneof member)
is dropped first. otelcol's encoder writes some of them although they were not sent (a log
record without a body goes out with `body {}`); in OTLP an empty message and an absent one
mean the same. Oneof members are kept: an empty `array_value` or `kvlist_value` is a value.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SIGNALS = ("traces", "metrics", "logs")


@dataclass(frozen=True)
class Signal:
    name: str
    request: type
    response: type
    path: str  # OTLP/HTTP path
    method: str  # gRPC method
    resources: str  # field of the request: resource_spans / resource_metrics / resource_logs
    scopes: str  # field of a resource entry
    items: str  # field of a scope entry
    rejected: str  # field of partial_success
    unit: str  # what otelcol's counters count


SIGNAL = {
    "traces": Signal("traces", trace_service_pb2.ExportTraceServiceRequest,
                     trace_service_pb2.ExportTraceServiceResponse, "/v1/traces",
                     "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                     "resource_spans", "scope_spans", "spans", "rejected_spans", "spans"),
    "metrics": Signal("metrics", metrics_service_pb2.ExportMetricsServiceRequest,
                      metrics_service_pb2.ExportMetricsServiceResponse, "/v1/metrics",
                      "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                      "resource_metrics", "scope_metrics", "metrics", "rejected_data_points", "metric_points"),
    "logs": Signal("logs", logs_service_pb2.ExportLogsServiceRequest,
                   logs_service_pb2.ExportLogsServiceResponse, "/v1/logs",
                   "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                   "resource_logs", "scope_logs", "log_records", "rejected_log_records", "log_records"),
}

# otelcol's self-telemetry counter names, per signal.
ACCEPTED = {s: f"otelcol_receiver_accepted_{SIGNAL[s].unit}" for s in SIGNALS}
REFUSED = {s: f"otelcol_receiver_refused_{SIGNAL[s].unit}" for s in SIGNALS}
SENT = {s: f"otelcol_exporter_sent_{SIGNAL[s].unit}" for s in SIGNALS}
SEND_FAILED = {s: f"otelcol_exporter_send_failed_{SIGNAL[s].unit}" for s in SIGNALS}

_POINT_FIELDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def signal_of_path(path: str) -> str:
    for s in SIGNALS:
        if path.endswith(SIGNAL[s].path):
            return s
    raise ValueError(f"not an OTLP/HTTP path: {path}")


def _normalize(msg):
    """In one walk: clear present-but-empty singular sub-messages that are not oneof members,
    and order every `attributes` list by key (attribute order carries no meaning in OTLP, and
    otelcol's OTTL map literals, Go maps, insert keys in random order)."""
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                continue
            if field.name == "attributes":
                ordered = [type(kv)() for kv in value]
                for slot, kv in zip(ordered, sorted(value, key=lambda kv: kv.key)):
                    slot.CopyFrom(kv)
                del value[:]
                value.extend(ordered)
            for v in value:
                _normalize(v)
            continue
        _normalize(value)
        if value.ByteSize() == 0 and field.containing_oneof is None:
            msg.ClearField(field.name)


def _ser(msg) -> bytes:
    norm = type(msg)()
    norm.CopyFrom(msg)
    _normalize(norm)
    return norm.SerializeToString(deterministic=True)


def data_points(metric) -> list:
    kind = metric.WhichOneof("data")
    return list(getattr(metric, kind).data_points) if kind else []


def _items(signal: str, scope_entry):
    """(item key, item bytes) of one scope entry: spans and log records as they are; metrics
    as one entry per data point, keyed by the metric without its data points."""
    if signal != "metrics":
        for it in getattr(scope_entry, SIGNAL[signal].items):
            yield b"", _ser(it)
        return
    for metric in scope_entry.metrics:
        kind = metric.WhichOneof("data")
        head = type(metric)()
        head.CopyFrom(metric)
        if kind:
            del getattr(head, kind).data_points[:]
        points = data_points(metric)
        if not points:
            yield _ser(head), b""
        for p in points:
            yield _ser(head), _ser(p)


def flatten(signal: str, requests) -> Counter:
    """The multiset of items of `requests` (messages of `signal`), each with its resource and
    scope: {(resource, resource schema_url, scope, scope schema_url, metric, item): count}."""
    sig = SIGNAL[signal]
    out: Counter = Counter()
    for req in requests:
        for rs in getattr(req, sig.resources):
            res = (_ser(rs.resource), rs.schema_url)
            for ss in getattr(rs, sig.scopes):
                scope = (_ser(ss.scope), ss.schema_url)
                for head, item in _items(signal, ss):
                    out[(*res, *scope, head, item)] += 1
    return out


def count_items(signal: str, requests) -> int:
    """Spans, metric data points or log records in `requests`, as otelcol counts them."""
    sig = SIGNAL[signal]
    n = 0
    for req in requests:
        for rs in getattr(req, sig.resources):
            for ss in getattr(rs, sig.scopes):
                if signal == "metrics":
                    n += sum(len(data_points(m)) for m in ss.metrics)
                else:
                    n += len(getattr(ss, sig.items))
    return n


def describe(signal: str, key: tuple) -> str:
    """A flattened item, readable: resource attributes, scope name, the item's name/body."""
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2
    from opentelemetry.proto.metrics.v1 import metrics_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    res = resource_pb2.Resource.FromString(key[0])
    scope = common_pb2.InstrumentationScope.FromString(key[2])
    attrs = {a.key: json_format.MessageToDict(a.value) for a in res.attributes}
    if signal == "traces":
        sp = trace_pb2.Span.FromString(key[5])
        what = f"span {sp.name!r} {sp.trace_id.hex()}/{sp.span_id.hex()}"
    elif signal == "logs":
        lr = logs_pb2.LogRecord.FromString(key[5])
        what = f"log {json_format.MessageToDict(lr.body)} sev={lr.severity_number} t={lr.time_unix_nano}"
    else:
        m = metrics_pb2.Metric.FromString(key[4])
        kind = m.WhichOneof("data") or "NO DATA: no gauge/sum/histogram/exponential_histogram/summary"
        what = f"metric {m.name!r} ({kind}) point {key[5].hex()[:60]}"
    return f"{what} scope={scope.name!r} resource={attrs}"


def diff_flat(signal: str, want: Counter, got: Counter, limit: int = 20) -> str:
    """'' when equal; else what is missing and what is extra, readable."""
    missing, extra = want - got, got - want
    if not missing and not extra:
        return ""
    lines = [f"{signal}: {sum(missing.values())} item(s) missing, {sum(extra.values())} unexpected"]
    for title, part in (("missing", missing), ("unexpected", extra)):
        for k, n in list(part.items())[:limit]:
            lines.append(f"  {title} x{n}: {describe(signal, k)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- OTLP/JSON

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _walk_ids(node, conv):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in _ID_FIELDS and isinstance(v, str):
                node[k] = conv(v)
            else:
                _walk_ids(v, conv)
    elif isinstance(node, list):
        for v in node:
            _walk_ids(v, conv)


def to_json(msg, enums_as_names: bool = False) -> bytes:
    """OTLP/JSON of a request: trace and span ids in hex (spans, links, logs, exemplars),
    enums as integers (or names), int64 as strings, zero values left out."""
    doc = json_format.MessageToDict(msg, use_integers_for_enums=not enums_as_names)
    _walk_ids(doc, lambda v: base64.b64decode(v).hex())
    return json.dumps(doc).encode()


def from_json(signal: str, body: bytes):
    """A request of `signal` from OTLP/JSON (hex ids)."""
    doc = json.loads(body or b"{}")
    _walk_ids(doc, lambda v: base64.b64encode(bytes.fromhex(v)).decode())
    return json_format.ParseDict(doc, SIGNAL[signal].request(), ignore_unknown_fields=True)


def partial_success(signal: str, status: str, body: bytes, content_type: str) -> str:
    """A client's view of an answer: the status, and for a success the partial_success
    (rejected count, whether a message came with it)."""
    if status not in ("OK", "200"):
        return status
    sig = SIGNAL[signal]
    if content_type == "application/json":
        doc = json.loads(body or b"{}")
        ps = doc.get("partialSuccess") or doc.get("partial_success") or {}
        camel = "".join(w.capitalize() if i else w for i, w in enumerate(sig.rejected.split("_")))
        rejected = int(ps.get(camel) or ps.get(sig.rejected) or 0)
        message = ps.get("errorMessage") or ps.get("error_message") or ""
    else:
        resp = sig.response.FromString(body or b"")
        rejected = getattr(resp.partial_success, sig.rejected)
        message = resp.partial_success.error_message
    return f"{status} rejected={rejected}" + (" with message" if message else "")
