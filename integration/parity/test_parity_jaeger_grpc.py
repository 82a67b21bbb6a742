"""Parity of the `jaeger` receiver's `protocols.grpc`: Jaeger's gRPC API
(`jaeger.api_v2.CollectorService/PostSpans`, protobuf: jaeger-idl's proto/api_v2), taken and
translated to OTLP as otelcol-contrib's jaegerreceiver (v0.161.0, with pkg/translator/jaeger's
ProtoToTraces and jaeger-idl v0.11.4's gogo-generated decoding) takes and translates it.

That API is what jaeger-agent, Jaeger's own collectors and other Jaeger-speaking forwarders
send to a Jaeger collector; the receiver is their way into the OTLP pipeline.

One collector pair (or otelcol alone, see below) runs the receiver with `protocols.grpc` only,
into one traces pipeline whose `otlp` exporter writes to an OTLP sink. Each request is sent
once both collectors forwarded the one before, so that each PostSpans call is one forwarded
OTLP request. Requests are protobuf written by hand (jaeger_proto.py, checked against the
protobuf library's encoder by `test_hand_encoder_matches_protobuf`) and sent as raw bytes with
grpcio.

  - Translation (`test_translation`), one PostSpans per batch: the process (service name,
    `hostname` and `jaeger.version` renamed unless their new names are there, an empty name,
    no process, `OTLPResourceNoServiceName`, which gives a resource without attributes), ids
    of 16 and 8 bytes, the sampled flag (a uint32: bits beyond 32 dropped), Timestamps and
    Durations to nanoseconds (an absent start_time is Go's zero time, 0001-01-01, whose
    UnixNano wraps; before 1970 and after 2262 wrap too; negative and extreme durations),
    tags of every type (proto3 defaults, unknown ValueTypes named by number, duplicate keys:
    the first place, the last value), the scope from `otel.scope.name`/`otel.scope.version`
    (removed, the others keeping their order; the version only with a name; the string field
    whatever the type; ScopeSpans in first-appearance order), `w3c.tracestate` as the span's
    trace_state (removed after span.kind and the status tags), the parent from the
    references only (jaeger-idl's Span.ParentSpanID: the first CHILD_OF into the same trace,
    else the first FOLLOWS_FROM; an id of 8 bytes is the same trace as its 16-byte form),
    links (every reference but a CHILD_OF of the parent's id), logs as events, a span with
    every field at its zero value (skipped), `process_id` and `warnings` (ignored), and the
    rules shared with the Thrift path (span.kind, error, otel.status_code, the
    http.status_code fallback, logs) on test_parity_jaeger.py's own batches, converted.
  - Resources: spans with a `process` of their own are regrouped by process (otelcol's
    regroup(): processes with the same service name and tags in the same order are one
    resource, the first seen is the one written; tags in another order are another). otelcol
    collects the groups in a Go map, so the ORDER of ResourceSpans in a request is random
    (seen: 3 orders in 8 calls); requests are compared with their ResourceSpans sorted
    (`in_order`), scopes, spans and attributes in their order.
  - The wire (`test_wire_forms`): what gogo's generated decoding makes of repeated and unknown
    fields: a start_time or duration sent twice is the last one WHOLE (gogo's stdtime
    unmarshalling), not the field-by-field merge of other protobuf decoders; a process or the
    batch sent twice merged; the last trace id, operation name; tags split around other
    fields appended; unknown fields of every wire type, groups included, skipped; a bool of 2.
  - Batches that come out without spans (`test_batches_without_spans`): otelcol forwards them
    (an empty request, or resources alone), Redline forwards nothing; each side is checked
    against its own rule. (A resource without spans BESIDE resources with spans, which
    regroup() makes of a batch process that no span keeps, or of no process and a blank
    span, is in the compared traffic.)
  - gzip-compressed calls (`test_gzip`), taken; deflate is answered UNIMPLEMENTED.
  - Refusals (`test_bad_messages_refused`): ids of other lengths, truncated or malformed
    protobuf, Timestamps and Durations out of their ranges, wrong wire types, a message over
    gRPC's 4 MiB (plain or after gzip), deflate; `test_unknown_methods`: other methods and
    services answered UNIMPLEMENTED. Nothing of a refused call is forwarded, and a good call
    after each is taken. The STATUS CODE is compared; otelcol's texts are pinned below
    (`BAD_MESSAGES`, `UNKNOWN_METHODS`) for the record, Redline's only have to be there.
  - The receiver's counters: `otelcol_receiver_{accepted,refused,failed}_spans` with
    `transport="grpc"`; a refused call counts nowhere.
  - The tenant header (`test_tenant_header`, on collectors of its own, see
    receiver_sides.tenant_config): with `include_metadata` the receiver keeps each call's
    metadata, so `headers_setter` sends each client's `x-scope-orgid` on as `X-Scope-OrgID`
    with its spans (`anon` without one); without it, every span goes under `anon`. Compared:
    which span names arrived under which value of the header. Over a `batch` that keeps one
    tenant (`test_tenant_over_the_batch_cardinality_limit`), the second tenant's call is
    refused with a permanent error: UNKNOWN, and none of it arrives.

What each collector forwards is compared exactly with a model of otelcol's translation written
here from its source (`translate`, with test_parity_jaeger.py's pdata-order `PMap` and status
rules), and with what the other collector forwards; an empty resource, scope or status is the
same whether or not the message is on the wire.

Not compared, on purpose (documented differences, none of it is sent in compared traffic):
  - spans whose trace id or span id is all zero (or absent): otelcol forwards them, Redline
    drops them and counts them refused. A span with only unknown fields is one of those for
    otelcol (gogo keeps unknown fields, so the span is not blank).
  - strings that are not valid UTF-8: otelcol forwards the bytes as they are (not valid OTLP),
    Redline replaces invalid sequences with U+FFFD.
  - batches that come out without spans: see `test_batches_without_spans`.
  - error messages of refused calls (status codes are compared).
  - processes whose hash input coincides without being equal (regroup() keys its map by an
    FNV-64a hash of the service name and the tags written one after the other, and stops at a
    tag of an unknown type: seen with otelcol, `Process("ab\\0\\0x")` and
    `Process("a", [b="x"])` are one resource, the first's; so are two processes that differ
    only after a tag of an unknown type). The traffic here merges only equal processes, and
    no process with an empty one (both hash nothing: one resource without attributes).

`JAEGER_GRPC_PARITY_SIDES=otelcol` (or `redline`) runs one collector alone, to check the model
against otelcol by itself (every comparison with the model still runs; those between the
collectors do not). The default, and what CI runs, is both.
"""

from __future__ import annotations

import dataclasses
import math
import struct

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

import helpers
import jaeger_proto as jp
import jaeger_thrift as jt
import receiver_sides
import test_parity_jaeger as tj
from jaeger_proto import (BINARY, BOOL, CHILD_OF, FLOAT64, FOLLOWS_FROM, INT64, M64, STRING, Batch, Duration,
                          KeyValue, Log, Process, Span, SpanRef, Timestamp, at, b, d, lasting, n, post_spans, raw, s)
from otlp_sink import OtlpSink
from pair import Collector
from receiver_sides import (COUNTERS, Side as ReceiverSide, assert_counts_moved, collect, copy, forwarded,
                            next_forwarded, report, settle, sides_fixture, sort_repeated, start_collector)
from test_parity_jaeger import UNSPECIFIED, PMap, str_of
from test_parity_self_telemetry import total

SIDES_ENV = "JAEGER_GRPC_PARITY_SIDES"
CALL_TIMEOUT = 15  # seconds for one gRPC call

CONFIG = """\
receivers:
  jaeger:
    protocols:
      grpc:
        endpoint: 127.0.0.1:14250
exporters:
  otlp:
    endpoint: tempo:4317
    tls:
      insecure: true
service:
  pipelines:
    traces:
      receivers: [jaeger]
      exporters: [otlp]
"""


# ---------------------------------------------------------------- the collectors


class Side(ReceiverSide):
    """One collector with the jaeger receiver's gRPC server on a port of its own and its own
    sink."""

    def __init__(self, name: str, collector: Collector, sink: OtlpSink, port: int):
        super().__init__(name, collector, sink)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def call(self, body: bytes, method: str = jp.POST_SPANS, compression=None, metadata=()) -> tuple:
        """(status code name, details or the response's bytes); `metadata`: (key, value)
        pairs sent with the call."""
        stub = self.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            return "OK", stub(body, timeout=CALL_TIMEOUT, compression=compression, metadata=metadata or None)
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""

    def stop(self):
        try:
            self.channel.close()
        finally:
            super().stop()


def _start(name: str, argv: list, procs, workdir, config: str = CONFIG, http_sink=None) -> Side:
    def configure(cfg, ports, collector):
        if collector is None:
            ports["jaeger"] = helpers.free_port()
            cfg["receivers"]["jaeger"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{ports['jaeger']}"
        return ports["jaeger"]

    collector, sink, port = start_collector(name, argv, procs, workdir, config, configure, http_sink)
    return Side(name, collector, sink, port)


sides = sides_fixture(SIDES_ENV, _start)


def post_all(sides: dict, body: bytes, compression=None) -> dict:
    """`body` sent to every side, each answering OK with an empty PostSpansResponse and
    forwarding one request: that request, by side (in a list)."""
    answers = {name: side.call(body, compression=compression) for name, side in sides.items()}
    got = forwarded(sides, "the call it accepted", {name: a[0] == "OK" for name, a in answers.items()})
    assert all(a == ("OK", b"") for a in answers.values()), f"not all OK with an empty response: {answers}"
    return got


# ---------------------------------------------------------------- comparison


def _normalised(req):
    """A copy with an empty resource, scope and status present (as `canonical` shows them)
    and the ResourceSpans sorted by their bytes: otelcol's order of them is random."""
    out = copy(req)
    for rs in out.resource_spans:
        rs.resource.SetInParent()
        for ss in rs.scope_spans:
            ss.scope.SetInParent()
            for sp in ss.spans:
                sp.status.SetInParent()
    sort_repeated(out.resource_spans, key=lambda rs: rs.SerializeToString(deterministic=True))
    return out


def in_order(reqs: list) -> list:
    return [_normalised(r) for r in reqs]


def check(what: str, got: dict, want: list):
    """Each side's forwarded requests equal the model's `want`, and each other, with the
    ResourceSpans of each request in a canonical order."""
    receiver_sides.check(what, {name: in_order(reqs) for name, reqs in got.items()}, in_order(want))


# ---------------------------------------------------------------- otelcol's translation, as a model

NO_SERVICE_NAME = "OTLPResourceNoServiceName"  # tracetranslator.ResourceNoServiceName
ZERO_TIME = -62_135_596_800  # Go's zero time.Time (0001-01-01), in Unix seconds


def i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def time_ns(ts) -> int:
    """A decoded Timestamp as Unix nanoseconds, exactly (gogo's stdtime: an absent one is
    Go's zero time)."""
    return ZERO_TIME * 10**9 if ts is None else ts.seconds * 10**9 + ts.nanos


def duration_ns(du) -> int:
    return 0 if du is None else du.seconds * 10**9 + du.nanos


def wire_ns(ns: int) -> int:
    """pcommon.NewTimestampFromTime: uint64(t.UnixNano()), which wraps outside 1678..2262."""
    return ns & M64


def trace_id(raw_id) -> tuple:
    """jaeger-idl's TraceID (High, Low) from the bytes (16, or 8: the low half)."""
    raw_id = raw_id or b""
    if len(raw_id) == 8:
        return 0, int.from_bytes(raw_id, "big")
    return int.from_bytes(raw_id[:8], "big"), int.from_bytes(raw_id[8:], "big")


def span_id(raw_id) -> int:
    return int.from_bytes(raw_id or b"", "big")


def otlp_trace_id(tid: tuple) -> bytes:
    out = tid[0].to_bytes(8, "big") + tid[1].to_bytes(8, "big")
    return out if any(out) else b""


def otlp_span_id(sid: int) -> bytes:
    return sid.to_bytes(8, "big") if sid else b""


def tags_to_attrs(kvs, m: PMap):
    """jTagsToInternalAttributes (feature gates at their defaults): http.response.status_code
    written as http.status_code; an unknown ValueType named by its number (the enum's String())."""
    for kv in kvs:
        key = "http.status_code" if kv.key in tj.HTTP_STATUS_KEYS else kv.key
        vtype = i32(kv.v_type)
        if vtype == STRING:
            m.put(key, ("str", kv.v_str))
        elif vtype == BOOL:
            m.put(key, ("bool", bool(kv.v_bool)))
        elif vtype == INT64:
            m.put(key, ("int", jt.i64(kv.v_int64)))
        elif vtype == FLOAT64:
            m.put(key, ("double", kv.v_float64))
        elif vtype == BINARY:
            m.put(key, ("bytes", bytes(kv.v_binary)))
        else:
            m.put(key, ("str", f'<Unknown Jaeger TagType "{vtype}">'))


def process_key(p) -> bytes:
    """What regroup() hashes for a process (model.Process.Hash): the service name, then each
    tag's key, type (uint16, big-endian) and value; hashing stops at a tag of an unknown type.
    No process hashes nothing, as an empty one does."""
    if p is None:
        return b""
    out = p.service_name.encode()
    for kv in p.tags:
        out += kv.key.encode() + struct.pack(">H", kv.v_type & 0xFFFF)
        vtype = i32(kv.v_type)
        if vtype == STRING:
            out += kv.v_str.encode()
        elif vtype == BOOL:
            out += b"\x01" if kv.v_bool else b"\x00"
        elif vtype == INT64:
            out += struct.pack(">q", jt.i64(kv.v_int64))
        elif vtype == FLOAT64:
            out += struct.pack(">d", kv.v_float64)
        elif vtype == BINARY:
            out += bytes(kv.v_binary)
        else:
            break
    return out


def is_blank(sp: Span) -> bool:
    """reflect.DeepEqual with a new(model.Span): every field at its zero value, no start_time
    on the wire (a present one, even empty, is 1970, not Go's zero time), no element in any
    list, no process, and no unknown field (gogo keeps them: the span is not blank)."""
    return (trace_id(sp.trace_id) == (0, 0) and span_id(sp.span_id) == 0 and sp.operation_name == ""
            and not sp.references and sp.flags & 0xFFFFFFFF == 0 and sp.start_time is None
            and duration_ns(sp.duration) == 0 and not sp.tags and not sp.logs and sp.process is None
            and sp.process_id == "" and not sp.warnings and not sp.extra)


def regroup(batch: Batch) -> list:
    """(process, spans) by process, the batch's own first: regroup(). The order otelcol
    writes them in is random (a Go map's)."""
    groups: dict = {}

    def group(p):
        return groups.setdefault(process_key(p), (p, []))

    own = group(batch.process)
    for sp in batch.spans:
        (own if sp.process is None else group(sp.process))[1].append(sp)
    return list(groups.values())


def translate(batch: Batch):
    """otelcol's ProtoToTraces for one decoded batch: one ExportTraceServiceRequest (maybe
    with no ResourceSpans at all: otelcol forwards it so)."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    for process, spans in regroup(batch):
        if process is None and not spans:
            continue
        rs = req.resource_spans.add()
        _resource(process, rs.resource)
        scopes: dict = {}
        for sp in spans:
            if is_blank(sp):
                continue
            tags = list(sp.tags)
            scope = _scope(tags)
            if scope not in scopes:
                ss = rs.scope_spans.add()
                ss.scope.name, ss.scope.version = scope
                scopes[scope] = ss
            _span(sp, tags, scopes[scope].spans.add())
    return req


def _resource(process, resource):
    """jProcessToInternalResource: nothing for no process, OTLPResourceNoServiceName, or an
    empty name without tags; the renames as on the Thrift path."""
    if process is None or process.service_name == NO_SERVICE_NAME:
        return
    if process.service_name == "" and not process.tags:
        return
    m = PMap()
    if process.service_name:
        m.put("service.name", ("str", process.service_name))
    tags_to_attrs(process.tags, m)
    if "hostname" in m and "host.name" not in m:
        m.put("host.name", m.get("hostname"))
        m.remove("hostname")
    if "jaeger.version" in m and "opencensus.exporterversion" not in m:
        m.put("opencensus.exporterversion", ("str", "Jaeger-" + str_of(m.get("jaeger.version"))))
        m.remove("jaeger.version")
    m.write(resource.attributes)


def _take_tag(tags: list, key: str):
    """getAndDeleteTag: the first tag of `key` taken out of the list (the others keep their
    order); its string field, whatever its type."""
    for i, kv in enumerate(tags):
        if kv.key == key:
            del tags[i]
            return kv.v_str
    return None


def _scope(tags: list) -> tuple:
    name = _take_tag(tags, "otel.scope.name")
    if name is None:
        return "", ""
    version = _take_tag(tags, "otel.scope.version")
    return name, version or ""


def parent_of(sp: Span) -> int:
    """model.Span.ParentSpanID: the first CHILD_OF into the span's trace, else the first
    FOLLOWS_FROM into it; other reference types never."""
    own = trace_id(sp.trace_id)
    follows = None
    for ref in sp.references:
        if trace_id(ref.trace_id) != own:
            continue
        if i32(ref.ref_type) == CHILD_OF:
            return span_id(ref.span_id)
        if follows is None and i32(ref.ref_type) == FOLLOWS_FROM:
            follows = ref
    return span_id(follows.span_id) if follows is not None else 0


def _span(sp: Span, tags: list, out):
    out.trace_id = otlp_trace_id(trace_id(sp.trace_id))
    out.span_id = otlp_span_id(span_id(sp.span_id))
    out.name = sp.operation_name
    start = time_ns(sp.start_time)
    out.start_time_unix_nano = wire_ns(start)
    out.end_time_unix_nano = wire_ns(start + duration_ns(sp.duration))
    if sp.flags & 1:
        out.flags = 1
    parent = parent_of(sp)
    if parent:
        out.parent_span_id = otlp_span_id(parent)
    m = PMap()
    tags_to_attrs(tags, m)
    if "span.kind" in m:
        out.kind = tj.KINDS.get(str_of(m.get("span.kind")), UNSPECIFIED)
        m.remove("span.kind")
    tj._status(m, out)
    if "w3c.tracestate" in m:
        out.trace_state = str_of(m.get("w3c.tracestate"))
        m.remove("w3c.tracestate")
    m.write(out.attributes)
    for log in sp.logs:
        ev = out.events.add(time_unix_nano=wire_ns(time_ns(log.timestamp)))
        if not log.fields:
            continue
        em = PMap()
        tags_to_attrs(log.fields, em)
        if "event" in em:
            ev.name = str_of(em.get("event"))
            em.remove("event")
        em.write(ev.attributes)
    for ref in sp.references:
        if span_id(ref.span_id) == parent and i32(ref.ref_type) == CHILD_OF:
            continue
        link = out.links.add(trace_id=otlp_trace_id(trace_id(ref.trace_id)),
                             span_id=otlp_span_id(span_id(ref.span_id)))
        kv = link.attributes.add(key="opentracing.ref_type")
        kv.value.string_value = "child_of" if i32(ref.ref_type) == CHILD_OF else "follows_from"


def redline_spanless(req):
    """Redline's rule for what comes out without spans: no request when no resource holds a
    span (docs/compatibility.md §45), otherwise the same request."""
    return req if any(ss.spans for rs in req.resource_spans for ss in rs.scope_spans) else None


# ---------------------------------------------------------------- test_parity_jaeger's batches, as protobuf

THRIFT_TYPES = {jt.STRING_T: STRING, jt.DOUBLE_T: FLOAT64, jt.BOOL_T: BOOL, jt.LONG_T: INT64, jt.BINARY_T: BINARY}


def _from_thrift_tag(t: jt.Tag) -> KeyValue:
    """The same tag as a KeyValue (a TagType the proto has not stays the number it is)."""
    return KeyValue(t.key, THRIFT_TYPES.get(t.vType, t.vType), v_str=t.vStr or "", v_bool=bool(t.vBool),
                    v_int64=t.vLong or 0, v_float64=0.0 if t.vDouble is None else t.vDouble,
                    v_binary=t.vBinary or b"")


def _tid(high: int, low: int) -> bytes:
    return jt.u64(high).to_bytes(8, "big") + jt.u64(low).to_bytes(8, "big")


def from_thrift(batch: jt.Batch) -> Batch:
    """A Thrift batch of test_parity_jaeger (no parentSpanId: the proto has none) as the
    protobuf batch a Jaeger client would send: microseconds as Timestamps and Durations."""
    spans = []
    for sp in batch.spans:
        assert not sp.parentSpanId, sp
        spans.append(Span(
            _tid(sp.traceIdHigh, sp.traceIdLow), jt.u64(sp.spanId).to_bytes(8, "big"), sp.operationName,
            [SpanRef(_tid(r.traceIdHigh, r.traceIdLow), jt.u64(r.spanId).to_bytes(8, "big"), r.refType)
             for r in sp.references or []],
            sp.flags & 0xFFFFFFFF, at(sp.startTime * 1000), lasting(sp.duration * 1000),
            [_from_thrift_tag(t) for t in sp.tags or []],
            [Log(at(lg.timestamp * 1000), [_from_thrift_tag(t) for t in lg.fields or []]) for lg in sp.logs or []]))
    p = batch.process
    return Batch(spans, Process(p.serviceName or "", [_from_thrift_tag(t) for t in p.tags or []]))


# ---------------------------------------------------------------- hand-written traffic

NS = 1_700_000_000_123_456_789  # a Unix time in nanoseconds
TID = bytes.fromhex("5b8efff798038103d269b633813fc60c")  # a 128-bit trace id
T64 = bytes.fromhex("463ac35c9f6413ad")  # a 64-bit one (8 bytes: the low half)
OTHER = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")  # another trace
P1, P2, P3, P4 = (bytes.fromhex(h) for h in ("b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8",
                                             "e457b5a2e4d86bd1"))


def sid(i: int) -> bytes:
    return i.to_bytes(8, "big")


def _ok(i: int, name: str, **kw) -> Span:
    return Span(TID, sid(i), name, **{"flags": 1, "start_time": at(NS), "duration": lasting(1500), **kw})


PROCESSES = [
    ("a service name and agent tags: hostname and jaeger.version renamed in place, a duplicate key",
     Process("alpha", [s("jaeger.version", "Go-2.30.0"), s("hostname", "alpha-host"), s("ip", "10.0.0.1"),
                       n("pid", 4242), s("dup", "first"), b("flag", True), d("load", 0.75), s("dup", "second"),
                       raw("blob", b"\x00\xff")])),
    ("host.name and opencensus.exporterversion already there: hostname and jaeger.version stay",
     Process("beta", [s("hostname", "h1"), s("host.name", "h2"), s("opencensus.exporterversion", "x"),
                      s("jaeger.version", "Java-1.8")])),
    ("a hostname and a jaeger.version that are not strings",
     Process("gamma", [n("hostname", 7), n("jaeger.version", 3), s("after", "x")])),
    ("a service.name tag over the process's name", Process("delta", [s("service.name", "from-tag"), s("k", "v")])),
    ("an empty name and tags", Process("", [s("hostname", "nameless-host"), s("k", "v")])),
    ("an empty name and no tags: a resource without attributes", Process("")),
    ("no process: a resource without attributes", None),
    ("OTLPResourceNoServiceName: a resource without attributes, its tags dropped",
     Process(NO_SERVICE_NAME, [s("k", "v"), s("hostname", "h")])),
    ("HTTP status tags in the process: both named http.status_code",
     Process("epsilon", [n("http.response.status_code", 200), s("x", "y"), s("http.status_code", "z")])),
    ("a tag of an unknown type in the process", Process("zeta", [KeyValue("odd", 9, v_str="x"), s("k", "v")])),
]

Y1 = Timestamp(ZERO_TIME)  # 0001-01-01T00:00:00Z, the earliest Timestamp gogo takes
Y9999 = Timestamp(253_402_300_799, 999_999_999)  # the latest
MAX_DURATION = Duration(9_223_372_036, 854_775_807)  # time.Duration's range
MIN_DURATION = Duration(-9_223_372_036, -854_775_808)

IDS_AND_TIMES = Batch([
    _ok(0x1, "16-byte ids, sampled, nanoseconds kept"),
    Span(T64, sid(0x2), "an 8-byte trace id: the low half", start_time=at(NS), duration=lasting(2)),
    _ok(0x3, "flags 2 (debug): not sampled", flags=2),
    _ok(0x4, "flags 3", flags=3),
    _ok(0x5, "flags 0xffffffff", flags=0xFFFFFFFF),
    _ok(0x6, "flags 2^32 + 2: a uint32, the high bits dropped", flags=(1 << 32) + 2),
    _ok(0x7, "flags 2^32 + 1", flags=(1 << 32) + 1),
    _ok(0x8, "no start_time: Go's zero time, wrapped", start_time=None),
    _ok(0x9, "no duration", duration=None),
    _ok(0xA, "no start_time, no duration", start_time=None, duration=None),
    _ok(0xB, "an empty start_time: 1970", start_time=Timestamp()),
    _ok(0xC, "a negative duration", duration=Duration(-1, -5)),
    _ok(0xD, "before 1970: wrapped", start_time=Timestamp(-1, 5), duration=Duration(0, 3)),
    _ok(0xE, "0001-01-01 exactly", start_time=Y1, duration=Duration(0, 1)),
    _ok(0xF, "9999-12-31T23:59:59.999999999 and a second more", start_time=Y9999, duration=Duration(1)),
    _ok(0x10, "the longest duration", duration=MAX_DURATION),
    _ok(0x11, "the most negative duration", duration=MIN_DURATION),
    _ok(0x12, "2262 and after: wrapped", start_time=Timestamp(9_223_372_036, 854_775_807), duration=Duration(0, 1)),
    Span(),  # every field zero: skipped
    _ok(0x13, ""),
    _ok(0x14, "process_id and warnings: ignored", process_id="p1", warnings=["w1", "", "w2"]),
    Span(TID, sid(0x15), "ids alone"),
], Process("ids-and-times"))

PROTO_TAGS = Batch([
    Span(TID, sid(0x20), "proto3 defaults and odd fields", start_time=at(NS), tags=[
        KeyValue("str.default"), KeyValue("bool.default", BOOL), KeyValue("long.default", INT64),
        KeyValue("double.default", FLOAT64), KeyValue("binary.default", BINARY),
        KeyValue("string.with.a.long", STRING, v_int64=5), KeyValue("long.with.a.string", INT64, v_str="12"),
        KeyValue("double.with.a.bool", FLOAT64, v_bool=True), KeyValue("binary.with.a.string", BINARY, v_str="x"),
        KeyValue("type.5", 5, v_str="x"), KeyValue("type.-1", -1), KeyValue("type.2^31-1", (1 << 31) - 1),
        d("double.negzero", -0.0), d("double.inf", -math.inf), d("double.nan", math.nan),
        n("long.max", (1 << 63) - 1), n("long.min", -(1 << 63)), raw("binary", bytes(range(256))),
        s("", "an empty key"), s("unicode", "héllo ✓ 日本 \u0000 nul"), KeyValue("", 9)]),
    Span(TID, sid(0x21), "duplicate keys across types: the first place, the last value", start_time=at(NS),
         tags=[s("dup", "a"), n("other", 1), b("dup", False), raw("other", b"\x01"), d("dup", 2.5)]),
], Process("proto-tags"))

SCOPES = Batch([
    _ok(0x30, "name and version among other tags; a second name stays", tags=[
        s("x", "1"), s("otel.scope.version", "v1"), s("otel.scope.name", "lib"), s("y", "2"),
        s("otel.scope.name", "dup"), s("z", "3")]),
    _ok(0x31, "a version without a name: no scope, the tag stays", tags=[s("otel.scope.version", "v1"), s("k", "v")]),
    Span(),  # blank: skipped, opens no scope
    _ok(0x32, "non-string scope tags: their string field", tags=[
        KeyValue("otel.scope.name", INT64, v_str="hidden", v_int64=5), n("otel.scope.version", 3), s("k", "v")]),
    _ok(0x33, "the first scope again: its ScopeSpans",
        tags=[s("otel.scope.name", "lib"), s("otel.scope.version", "v1")]),
    _ok(0x34, "the name alone: another scope", tags=[s("otel.scope.name", "lib")]),
    _ok(0x35, "no scope tags: the scope without a name"),
    _ok(0x36, "an empty name and a version", tags=[s("otel.scope.name", ""), s("otel.scope.version", "v2")]),
    _ok(0x37, "otel.library.* are only tags", tags=[s("otel.library.name", "old"), s("otel.library.version", "0")]),
    _ok(0x38, "two versions: the first taken", tags=[s("otel.scope.version", "a"), s("otel.scope.name", "two"),
                                                     s("otel.scope.version", "b")]),
], Process("scopes"))

TRACESTATE = Batch([
    _ok(0x40, "first of three: the last in its place", tags=[s("w3c.tracestate", "a=b,c=d"), s("k", "v"),
                                                            s("z", "z")]),
    _ok(0x41, "not a string: an empty trace_state, the tag removed", tags=[n("w3c.tracestate", 5), s("k", "v")]),
    _ok(0x42, "removed after span.kind and the status tags", tags=[
        s("w3c.tracestate", "ts=1"), s("a", "1"), s("span.kind", "client"), s("b", "2"), b("error", True),
        s("c", "3"), s("otel.status_description", "d"), s("e", "5")]),
    _ok(0x43, "twice: the last value", tags=[s("w3c.tracestate", "first=1"), s("k", "v"),
                                            s("w3c.tracestate", "last=2")]),
    _ok(0x44, "empty", tags=[s("w3c.tracestate", "")]),
], Process("tracestate"))


def _ref(tid, span, ref_type=CHILD_OF) -> SpanRef:
    return SpanRef(tid, span, ref_type)


def _refs(i: int, name: str, *refs: SpanRef, tid: bytes = TID) -> Span:
    return Span(tid, sid(i), name, start_time=at(NS), duration=lasting(1), references=list(refs))


REFERENCES = Batch([
    _refs(0x50, "CHILD_OF in the trace: the parent, no link", _ref(TID, P1)),
    _refs(0x51, "FOLLOWS_FROM in the trace: the parent and a link", _ref(TID, P2, FOLLOWS_FROM)),
    _refs(0x52, "CHILD_OF over an earlier FOLLOWS_FROM", _ref(TID, P2, FOLLOWS_FROM), _ref(TID, P1)),
    _refs(0x53, "CHILD_OF in another trace: a link; FOLLOWS_FROM in the trace: the parent",
          _ref(OTHER, P3), _ref(TID, P2, FOLLOWS_FROM)),
    _refs(0x54, "CHILD_OF in another trace only: no parent", _ref(OTHER, P3)),
    _refs(0x55, "two CHILD_OF: the first is the parent", _ref(TID, P1), _ref(TID, P2)),
    _refs(0x56, "an unknown ref type: no parent, a follows_from link", _ref(TID, P1, 5)),
    _refs(0x57, "a CHILD_OF of span id 0: no parent, no link; the FOLLOWS_FROM after it not the parent",
          _ref(TID, sid(0)), _ref(TID, P2, FOLLOWS_FROM)),
    _refs(0x58, "the parent's id in another trace as CHILD_OF: no link either", _ref(TID, P1), _ref(OTHER, P1)),
    _refs(0x59, "a FOLLOWS_FROM of the parent's id: a link", _ref(TID, P1), _ref(TID, P1, FOLLOWS_FROM)),
    _refs(0x5A, "the same low half, another high half: another trace", _ref(OTHER[:8] + TID[8:], P3)),
    _refs(0x5B, "an 8-byte trace id and its 16-byte form: the same trace", _ref(bytes(8) + T64, P4), tid=T64),
    _refs(0x5C, "a 16-byte trace id and its 8-byte form", _ref(T64, P4), tid=bytes(8) + T64),
    _refs(0x5D, "a reference without a trace id: another trace, a link without one", _ref(None, P3)),
    _refs(0x5E, "a FOLLOWS_FROM in another trace then one in the trace", _ref(OTHER, P3, FOLLOWS_FROM),
          _ref(TID, P4, FOLLOWS_FROM), _ref(TID, P2, FOLLOWS_FROM)),
    _refs(0x5F, "a reference type of -1 (an int32)", _ref(TID, P1, -1), _ref(TID, P2)),
    _refs(0x7F, "a FOLLOWS_FROM to span id 0: a link without a span id", _ref(TID, sid(0), FOLLOWS_FROM)),
], Process("references"))

A = Process("alpha", [s("k", "v"), n("n", 1)])
A_REORDERED = Process("alpha", [n("n", 1), s("k", "v")])
B_ = Process("beta")
REGROUP = [
    ("spans with processes of their own: one resource per distinct process", Batch([
        _ok(0x60, "the batch's process"),
        _ok(0x61, "beta", process=B_),
        _ok(0x62, "alpha again, equal: the batch's resource", process=Process("alpha", [s("k", "v"), n("n", 1)])),
        _ok(0x63, "beta again", process=Process("beta")),
        _ok(0x64, "alpha with its tags in another order: another resource", process=A_REORDERED),
        _ok(0x65, "an empty process: a resource without attributes", process=Process()),
        _ok(0x66, "OTLPResourceNoServiceName: another resource without attributes",
            process=Process(NO_SERVICE_NAME)),
        _ok(0x67, "back to the batch's"),
    ], A)),
    ("no process in the batch, spans without one: one resource without attributes",
     Batch([_ok(0x68, "one"), _ok(0x69, "two")])),
    ("no process in the batch; a span with one, a span without", Batch([
        _ok(0x6A, "gamma", process=Process("gamma", [s("hostname", "g")])), _ok(0x6B, "none")])),
    ("no process in the batch, every span with one: no resource for the batch", Batch([
        _ok(0x6C, "delta", process=Process("delta")), _ok(0x6D, "epsilon", process=Process("epsilon")),
        _ok(0x6E, "delta again", process=Process("delta"))])),
    ("no process in the batch; an empty process on a span: the same resource", Batch([
        _ok(0x6F, "no process"), _ok(0x70, "an empty process", process=Process())])),
    ("a batch process no span keeps: its resource without spans beside theirs", Batch([
        _ok(0x75, "own", process=Process("own"))], Process("unused"))),
    ("no process in the batch, a blank span and a span with a process: an empty resource without scopes "
     "beside", Batch([Span(), _ok(0x76, "own", process=Process("own"))])),
    ("scopes within regrouped resources", Batch([
        _ok(0x71, "lib in alpha", tags=[s("otel.scope.name", "lib")]),
        _ok(0x72, "lib in beta", process=B_, tags=[s("otel.scope.name", "lib")]),
        _ok(0x73, "none in beta", process=B_),
        _ok(0x74, "none in alpha")], A)),
]

EDGE = [(what, Batch([_ok(0x90 + i, "in " + (p.service_name if p else "no process"))], p))
        for i, (what, p) in enumerate(PROCESSES)] + [
    ("ids and times", IDS_AND_TIMES), ("proto tags", PROTO_TAGS), ("scopes", SCOPES),
    ("w3c.tracestate", TRACESTATE), ("references", REFERENCES),
    ("the Thrift test's tags", from_thrift(tj.TAGS)),
    ("the Thrift test's kinds and status", from_thrift(tj.KINDS_AND_STATUS)),
    ("the Thrift test's http.status_code fallback", from_thrift(tj.HTTP_STATUS)),
    ("the Thrift test's logs", from_thrift(tj.LOGS)),
    ("logs without a timestamp or fields", Batch([_ok(0xA0, "logs", logs=[
        Log(None, [s("event", "at Go's zero time"), s("k", "v")]), Log(Timestamp(), []), Log(None),
        Log(at(NS + 1), [s("event", "a"), n("event", 5), s("k", "v")]), Log(Y9999, [raw("b", b"\x00")])])],
        Process("logs"))),
] + REGROUP

SMALL = Batch([Span(TID, sid(0x0100000000000001), "ok", flags=1, start_time=at(NS), duration=lasting(3000),
                    tags=[s("span.kind", "server"), s("k", "v")])], Process("small", [s("hostname", "small-host")]))

# A few ordinary spans, for what is not about translation (counters, compression), so that a
# difference in an edge case fails only the edge-case tests.
PLAIN = Batch(SMALL.spans + [
    Span(TID, sid(0x0100000000000002), "call", flags=1, start_time=at(NS + 1000), duration=lasting(2000),
         references=[SpanRef(TID, sid(0x0100000000000001))],
         tags=[s("span.kind", "client"), n("http.status_code", 503)]),
    Span(TID, sid(0x0100000000000003), "work", flags=1, start_time=at(NS + 1000), duration=lasting(1000),
         references=[SpanRef(TID, sid(0x0100000000000002))], logs=[Log(at(NS + 2000), [s("event", "done")])]),
], Process("plain", [s("jaeger.version", "Go-2.30.0")]))


def _unknown_fields(base: int) -> bytes:
    """Unknown fields of every wire type, a group with a field inside included."""
    return (jp.f_varint(base, 7) + jp.tag(base + 1, jp.FIXED64) + bytes(8) + jp.f_bytes(base + 2, b"skipped")
            + jp.tag(base + 3, jp.FIXED32) + bytes(4) + jp.tag(base + 4, 3) + jp.f_varint(1, 1) + jp.tag(base + 4, 4))


_W = Span(TID, sid(0x80), "wire", flags=1, start_time=at(NS), duration=lasting(10))

# (case, the request's bytes, the batch gogo's decoding makes of them)
WIRE = [
    ("start_time twice: the last one whole, not merged with the first",
     post_spans(Batch([dataclasses.replace(_W, start_time=Timestamp(1_700_000_000, 7),
                                           extra=jp.f_bytes(6, Timestamp(1_700_000_001).encode()))])),
     Batch([dataclasses.replace(_W, start_time=Timestamp(1_700_000_001))])),
    ("duration twice: the last one whole",
     post_spans(Batch([dataclasses.replace(_W, duration=Duration(3), extra=jp.f_bytes(7, Duration(0, 11).encode()))])),
     Batch([dataclasses.replace(_W, duration=Duration(0, 11))])),
    ("the process twice in the batch: merged, the tags of both",
     post_spans(Batch([_W], Process("svc", [s("a", "1")]), extra=jp.f_bytes(2, Process("", [s("b", "2")]).encode()))),
     Batch([_W], Process("svc", [s("a", "1"), s("b", "2")]))),
    ("a span's process twice: merged",
     post_spans(Batch([dataclasses.replace(_W, process=Process("own"), extra=jp.f_bytes(10, Process(
         "", [s("t", "x")]).encode()))])),
     Batch([dataclasses.replace(_W, process=Process("own", [s("t", "x")]))])),
    ("the batch twice in the request: merged",
     post_spans(Batch([_W], Process("svc")), extra=jp.f_bytes(1, Batch([dataclasses.replace(
         _W, operation_name="second")]).encode())),
     Batch([_W, dataclasses.replace(_W, operation_name="second")], Process("svc"))),
    ("the trace id and the operation name twice: the last ones",
     post_spans(Batch([dataclasses.replace(_W, trace_id=T64, operation_name="first",
                                           extra=jp.f_bytes(1, TID) + jp.f_bytes(3, "last"))])),
     Batch([dataclasses.replace(_W, operation_name="last")])),
    ("tags written around other fields: in their order",
     post_spans(Batch([dataclasses.replace(_W, tags=[s("a", "1")], extra=(
         jp.f_bytes(8, s("b", "2").encode()) + jp.f_bytes(9, Log(at(NS)).encode())
         + jp.f_bytes(8, n("c", 3).encode())))])),
     Batch([dataclasses.replace(_W, tags=[s("a", "1"), s("b", "2"), n("c", 3)], logs=[Log(at(NS))])])),
    ("unknown fields of every wire type in every message: skipped",
     post_spans(Batch([dataclasses.replace(
         _W, tags=[KeyValue("k", STRING, v_str="v", extra=_unknown_fields(20))],
         extra=_unknown_fields(20))], Process("svc", [s("p", "q")], extra=_unknown_fields(30)),
         extra=_unknown_fields(40)), extra=_unknown_fields(50)),
     Batch([dataclasses.replace(_W, tags=[s("k", "v")])], Process("svc", [s("p", "q")]))),
    ("a bool written as 2: true",
     post_spans(Batch([dataclasses.replace(_W, tags=[KeyValue("b", BOOL, extra=jp.f_varint(4, 2))])])),
     Batch([dataclasses.replace(_W, tags=[b("b", True)])])),
    ("a blank span written with every field at its zero value: skipped",
     post_spans(Batch([Span(extra=jp.f_bytes(1, bytes(16)) + jp.f_bytes(2, bytes(8)) + jp.f_bytes(3, b"")
                            + jp.f_varint(5, 0) + jp.f_bytes(7, b"") + jp.f_bytes(11, b"")), _W], Process("svc"))),
     Batch([Span(), _W], Process("svc"))),
    ("overlong varints (a flags of 1 in ten bytes)",
     post_spans(Batch([dataclasses.replace(_W, flags=0, extra=jp.tag(5, 0) + b"\x81" + b"\x80" * 8 + b"\x00")])),
     Batch([dataclasses.replace(_W, flags=1)])),
]

# Batches that come out without spans.
SPANLESS = [
    ("an empty request (no batch field)", b"", Batch()),
    ("an empty batch", post_spans(Batch()), Batch()),
    ("a process and no spans: a resource alone", post_spans(Batch([], Process("no-spans"))),
     Batch([], Process("no-spans"))),
    ("only blank spans: a resource without scopes", post_spans(Batch([Span(), Span()], Process("blank"))),
     Batch([Span(), Span()], Process("blank"))),
]


# ---------------------------------------------------------------- the tests


def _descriptor_classes() -> dict:
    """Message classes for jaeger-idl's api_v2 messages built from descriptors (the enums as
    int32, as they are on the wire; the gogo options change nothing on it)."""
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import duration_pb2, timestamp_pb2
    for dep in (timestamp_pb2, duration_pb2):
        pool.AddSerializedFile(dep.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(name="jaeger/api_v2.proto", package="jaeger.api_v2", syntax="proto3",
                                            dependency=["google/protobuf/timestamp.proto",
                                                        "google/protobuf/duration.proto"])
    types = {"str": f.TYPE_STRING, "bytes": f.TYPE_BYTES, "int32": f.TYPE_INT32, "uint32": f.TYPE_UINT32,
             "bool": f.TYPE_BOOL, "int64": f.TYPE_INT64, "double": f.TYPE_DOUBLE}
    messages = {
        "KeyValue": "key str, v_type int32, v_str str, v_bool bool, v_int64 int64, v_float64 double, v_binary bytes",
        "Log": "timestamp .google.protobuf.Timestamp, fields *KeyValue",
        "SpanRef": "trace_id bytes, span_id bytes, ref_type int32",
        "Process": "service_name str, tags *KeyValue",
        "Span": "trace_id bytes, span_id bytes, operation_name str, references *SpanRef, flags uint32, "
                "start_time .google.protobuf.Timestamp, duration .google.protobuf.Duration, tags *KeyValue, "
                "logs *Log, process Process, process_id str, warnings *str",
        "Batch": "spans *Span, process Process",
        "PostSpansRequest": "batch Batch",
    }
    for name, spec in messages.items():
        msg = fd.message_type.add(name=name)
        for number, item in enumerate(spec.split(", "), 1):
            fname, ftype = item.split()
            label = f.LABEL_REPEATED if ftype.startswith("*") else f.LABEL_OPTIONAL
            ftype = ftype.lstrip("*")
            field = msg.field.add(name=fname, number=number, label=label)
            if ftype in types:
                field.type = types[ftype]
            else:
                field.type = f.TYPE_MESSAGE
                field.type_name = ftype if ftype.startswith(".") else f".jaeger.api_v2.{ftype}"
    pool.AddSerializedFile(fd.SerializeToString())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"jaeger.api_v2.{name}"))
            for name in messages}


def _to_message(obj, cls):
    msg = cls()
    msg.SetInParent()
    for fld in dataclasses.fields(obj):
        value = getattr(obj, fld.name)
        if fld.name == "extra" or value is None:
            continue
        desc = cls.DESCRIPTOR.fields_by_name[fld.name]
        sub = desc.message_type and message_factory.GetMessageClass(desc.message_type)
        if desc.is_repeated:
            if sub:
                getattr(msg, fld.name).extend(_to_message(x, sub) for x in value)
            else:
                getattr(msg, fld.name).extend(value)
        elif sub:
            getattr(msg, fld.name).CopyFrom(_to_message(value, sub))
        else:
            setattr(msg, fld.name, value)
    return msg


def test_hand_encoder_matches_protobuf():
    """jaeger_proto's requests, byte for byte what the protobuf library writes for the same
    messages (built from descriptors of jaeger-idl's model.proto and collector.proto); no
    collector needed."""
    classes = _descriptor_classes()
    problems = []
    for what, batch in EDGE + [("small", SMALL), ("plain", PLAIN)]:
        batch = dataclasses.replace(batch, spans=[dataclasses.replace(sp, flags=sp.flags & 0xFFFFFFFF)
                                                  for sp in batch.spans])
        theirs = classes["PostSpansRequest"](batch=_to_message(batch, classes["Batch"])).SerializeToString()
        if post_spans(batch) != theirs:
            problems.append(what)
    assert not problems, problems


def test_translation(sides):
    """Every hand-written batch, one PostSpans each."""
    problems: list = []
    for what, batch in EDGE:
        collect(problems, what, lambda: check(what, post_all(sides, post_spans(batch)), [translate(batch)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(EDGE))


def test_wire_forms(sides):
    """Repeated, unknown and oddly written fields, as gogo's decoding takes them."""
    problems: list = []
    for what, body, decoded in WIRE:
        collect(problems, what, lambda: check(what, post_all(sides, body), [translate(decoded)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(WIRE))


def test_batches_without_spans(sides):
    """Each SPANLESS request, then SMALL: otelcol forwards the model's request (an empty one,
    or resources without spans) and then SMALL's; Redline forwards SMALL's alone."""
    problems: list = []
    for what, body, decoded in SPANLESS:
        def case():
            answers = {name: side.call(body) for name, side in sides.items()}
            assert all(a == ("OK", b"") for a in answers.values()), answers
            model = translate(decoded)
            if "otelcol" in sides:
                check(f"{what}, otelcol", {"otelcol": [next_forwarded(sides["otelcol"], what)]}, [model])
            assert redline_spanless(model) is None, f"{what}: not a request without spans"
            # What comes next on each side is SMALL's request.
            check(f"SMALL after {what}", post_all(sides, post_spans(SMALL)), [translate(SMALL)])
        collect(problems, what, case)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(SPANLESS))


def test_gzip(sides):
    problems: list = []
    cases = [("plain", PLAIN), ("small", SMALL), ("proto tags", PROTO_TAGS), ("regrouped", REGROUP[0][1])]
    for what, batch in cases:
        collect(problems, what, lambda: check(
            f"{what}, gzip", post_all(sides, post_spans(batch), grpc.Compression.Gzip), [translate(batch)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(cases))


GOOD = post_spans(SMALL)
U = "grpc: error unmarshalling request: "  # grpc-go's codec error, status INTERNAL


def _one(**changes) -> bytes:
    """SMALL's request with its span changed."""
    return post_spans(Batch([dataclasses.replace(SMALL.spans[0], **changes)], SMALL.process))


def _ts(seconds: int, nanos: int) -> str:
    """gogo's %#v of a Timestamp, in its error texts."""
    return f"&types.Timestamp{{Seconds: {seconds},\nNanos: {nanos},\n}}"


def _du(seconds: int, nanos: int) -> str:
    return f"&types.Duration{{Seconds: {seconds},\nNanos: {nanos},\n}}"


OVER_4MIB = _one(operation_name="x" * (4 << 20))
# (case, request, status, otelcol's text, compression)
BAD_MESSAGES = [
    ("an empty trace id", _one(trace_id=b""), "INTERNAL", U + "invalid length for TraceID", None),
    ("a 15-byte trace id", _one(trace_id=TID[1:]), "INTERNAL", U + "invalid length for TraceID", None),
    ("a 17-byte trace id", _one(trace_id=TID + b"\x01"), "INTERNAL", U + "invalid length for TraceID", None),
    ("a 4-byte trace id", _one(trace_id=TID[:4]), "INTERNAL", U + "invalid length for TraceID", None),
    ("an empty span id", _one(span_id=b""), "INTERNAL", U + "invalid length for SpanID", None),
    ("a 7-byte span id", _one(span_id=P1[1:]), "INTERNAL", U + "invalid length for SpanID", None),
    ("a 16-byte span id", _one(span_id=TID), "INTERNAL", U + "invalid length for SpanID", None),
    ("a reference's 12-byte trace id", _one(references=[SpanRef(TID[:12], P1)]), "INTERNAL",
     U + "invalid length for TraceID", None),
    ("a reference's empty trace id", _one(references=[SpanRef(b"", P1)]), "INTERNAL",
     U + "invalid length for TraceID", None),
    ("a reference's 9-byte span id", _one(references=[SpanRef(TID, P1 + b"\x00")]), "INTERNAL",
     U + "invalid length for SpanID", None),
    ("a good span before one with a bad id",
     post_spans(Batch([SMALL.spans[0], dataclasses.replace(SMALL.spans[0], span_id=P1[:3])], SMALL.process)),
     "INTERNAL", U + "invalid length for SpanID", None),
    ("a truncated request", GOOD[:-3], "INTERNAL", U + "unexpected EOF", None),
    ("garbage", b"\xff\xff\xff", "INTERNAL", U + "unexpected EOF", None),
    ("a length beyond the message", b"\x0a\x10\x0a", "INTERNAL", U + "unexpected EOF", None),
    ("a negative length", jp.f_bytes(1, jp.f_bytes(1, b"\x0a" + jp.varint(-1))), "INTERNAL",
     U + "proto: negative length found during unmarshaling", None),
    ("a varint of eleven bytes", jp.f_bytes(1, jp.f_bytes(1, b"\x28" + b"\xff" * 10 + b"\x01")), "INTERNAL",
     U + "proto: integer overflow", None),
    ("the batch as a varint", jp.f_varint(1, 1), "INTERNAL", U + "proto: wrong wireType = 0 for field Batch", None),
    ("a trace id as a varint", _one(trace_id=None, extra=jp.f_varint(1, 5)), "INTERNAL",
     U + "proto: wrong wireType = 0 for field TraceID", None),
    ("a tag's key as a varint", _one(tags=[KeyValue("", extra=jp.f_varint(1, 3))]), "INTERNAL",
     U + "proto: wrong wireType = 0 for field Key", None),
    ("an end-group tag in a span", _one(extra=jp.tag(99, 4)), "INTERNAL",
     U + "proto: Span: wiretype end group for non-group", None),
    ("an end-group tag in the request", GOOD + b"\x0c", "INTERNAL",
     U + "proto: PostSpansRequest: wiretype end group for non-group", None),
    ("wire type 6", _one(extra=jp.tag(99, 6) + b"\x00"), "INTERNAL", U + "proto: illegal wireType 6", None),
    ("field number 0", _one(extra=b"\x00\x00"), "INTERNAL", U + "proto: Span: illegal tag 0 (wire type 0)", None),
    ("start_time nanos of 1e9", _one(start_time=Timestamp(1_700_000_000, 10**9)), "INTERNAL",
     U + "timestamp: " + _ts(1_700_000_000, 10**9) + ": nanos not in range [0, 1e9)", None),
    ("start_time nanos of -1", _one(start_time=Timestamp(1_700_000_000, -1)), "INTERNAL",
     U + "timestamp: " + _ts(1_700_000_000, -1) + ": nanos not in range [0, 1e9)", None),
    ("start_time before 0001-01-01", _one(start_time=Timestamp(ZERO_TIME - 1)), "INTERNAL",
     U + "timestamp: " + _ts(ZERO_TIME - 1, 0) + " before 0001-01-01", None),
    ("start_time at 10000-01-01", _one(start_time=Timestamp(253_402_300_800)), "INTERNAL",
     U + "timestamp: " + _ts(253_402_300_800, 0) + " after 10000-01-01", None),
    ("a log's timestamp with nanos of -1", _one(logs=[Log(Timestamp(1, -1))]), "INTERNAL",
     U + "timestamp: " + _ts(1, -1) + ": nanos not in range [0, 1e9)", None),
    ("a duration of seconds and nanos of different signs", _one(duration=Duration(1, -1)), "INTERNAL",
     U + "duration: " + _du(1, -1) + ": seconds and nanos have different signs", None),
    ("a duration's nanos of -1e9", _one(duration=Duration(0, -10**9)), "INTERNAL",
     U + "duration: " + _du(0, -10**9) + ": nanos out of range", None),
    ("a duration beyond 10000 years", _one(duration=Duration(315_576_000_001)), "INTERNAL",
     U + "duration: " + _du(315_576_000_001, 0) + ": seconds out of range", None),
    ("a duration beyond time.Duration", _one(duration=Duration(9_223_372_037)), "INTERNAL",
     U + "duration: " + _du(9_223_372_037, 0) + " is out of range for time.Duration", None),
    ("a duration 1 ns below time.Duration", _one(duration=Duration(-9_223_372_036, -854_775_809)), "INTERNAL",
     U + "duration: " + _du(-9_223_372_036, -854_775_809) + " is out of range for time.Duration", None),
    ("a message over 4 MiB", OVER_4MIB, "RESOURCE_EXHAUSTED",
     f"grpc: received message larger than max ({len(OVER_4MIB)} vs. 4194304)", None),
    ("a message over 4 MiB once decompressed", OVER_4MIB, "RESOURCE_EXHAUSTED",
     "grpc: received message after decompression larger than max 4194304", grpc.Compression.Gzip),
    ("deflate", GOOD, "UNIMPLEMENTED", 'grpc: Decompressor is not installed for grpc-encoding "deflate"',
     grpc.Compression.Deflate),
]


def _refused(sides: dict, case: str, body: bytes, status: str, otelcol_text, method: str = jp.POST_SPANS,
             compression=None):
    """`body` answered `status` with a message by every side, nothing of it forwarded: the
    next request forwarded is the good one sent after it."""
    answers = {name: side.call(body, method, compression) for name, side in sides.items()}
    forwarded(sides, f"the call it should have refused ({case})",  # taken after all
              {name: code == "OK" for name, (code, _) in answers.items()})
    shown = {name: (code, text if isinstance(text, str) else text[:100]) for name, (code, text) in answers.items()}
    assert all(code == status for code, _ in answers.values()), f"not {status}: {shown}"
    assert all(text for _, text in answers.values()), f"a {status} without a message: {shown}"
    if "otelcol" in answers and otelcol_text is not None:
        assert answers["otelcol"][1] == otelcol_text, f"otelcol's text changed: {shown}"
    check(f"the good call after {case}", post_all(sides, GOOD), [translate(SMALL)])


def test_bad_messages_refused(sides):
    problems: list = []
    for case, body, status, otelcol_text, compression in BAD_MESSAGES:
        collect(problems, case, _refused, sides, case, body, status, otelcol_text, jp.POST_SPANS, compression)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD_MESSAGES))


# (case, method, otelcol's text)
UNKNOWN_METHODS = [
    ("another method of the service", "/jaeger.api_v2.CollectorService/PostSpan",
     "unknown method PostSpan for service jaeger.api_v2.CollectorService"),
    ("the method's name in lower case", "/jaeger.api_v2.CollectorService/postSpans",
     "unknown method postSpans for service jaeger.api_v2.CollectorService"),
    ("another service", "/jaeger.api_v2.QueryService/GetTrace", "unknown service jaeger.api_v2.QueryService"),
    ("OTLP's trace Export", "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
     "unknown service opentelemetry.proto.collector.trace.v1.TraceService"),
]


def test_unknown_methods(sides):
    problems: list = []
    for case, method, otelcol_text in UNKNOWN_METHODS:
        collect(problems, case, _refused, sides, case, GOOD, "UNIMPLEMENTED", otelcol_text, method)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(UNKNOWN_METHODS))


def _counts(expo) -> dict:
    return {c: total(expo, c, receiver="jaeger", transport="grpc") for c in COUNTERS}


def test_receiver_counters(sides):
    """Accepted spans: every span of each accepted batch; a refused call counts nowhere."""
    before = {name: _counts(side.telemetry()) for name, side in sides.items()}
    post_all(sides, post_spans(PLAIN))
    post_all(sides, post_spans(SMALL))
    post_all(sides, post_spans(PLAIN), grpc.Compression.Gzip)
    post_all(sides, post_spans(REGROUP[0][1]))
    for side in sides.values():
        assert side.call(GOOD[:-3])[0] == "INTERNAL"
        assert side.call(_one(trace_id=TID[:5]))[0] == "INTERNAL"
        assert side.call(GOOD, "/jaeger.api_v2.CollectorService/PostSpan")[0] == "UNIMPLEMENTED"
        assert side.call(OVER_4MIB)[0] == "RESOURCE_EXHAUSTED"
    settle(sides)
    want = {c: 0 for c in COUNTERS}
    want["otelcol_receiver_accepted_spans"] = 2 * len(PLAIN.spans) + len(SMALL.spans) + len(REGROUP[0][1].spans)
    assert_counts_moved(sides, _counts, before, want)


@receiver_sides.TENANT_CASES
def test_tenant_header(request, procs, tmp_path, include_metadata, expected):
    """Three PostSpans calls (two tenants', with `x-scope-orgid` metadata, and one without),
    each with spans of its own, to `grpc` with `include_metadata` true or false: the span
    names under each value of the header the exporter sent."""
    config = receiver_sides.tenant_config(CONFIG, [("receivers", "jaeger", "protocols", "grpc")], include_metadata)
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        for i, (tenant, names) in enumerate(receiver_sides.TENANT_CLIENTS):
            answers = _call_tenant(sides, i, tenant, names)
            assert all(a == ("OK", b"") for a in answers.values()), (tenant, answers)
        receiver_sides.check_tenants(sides, expected)


def _call_tenant(sides: dict, i: int, tenant, names) -> dict:
    """Client `i` of receiver_sides.TENANT_CLIENTS: a PostSpans call with a span per name to
    every side; by side, (status code name, details or the response's bytes)."""
    batch = Batch([_ok(0x0200000000000000 + 16 * i + j, name) for j, name in enumerate(names)],
                  Process("tenants"))
    return {name: side.call(post_spans(batch), metadata=receiver_sides.tenant_metadata(tenant))
            for name, side in sides.items()}


def test_tenant_over_the_batch_cardinality_limit(request, procs, tmp_path):
    """Two tenants' calls into a `batch` that keeps one tenant
    (receiver_sides.tenant_batch_config): the second's is refused with a permanent error,
    which otelcol's PostSpans returns as it is, and grpc-go answers an error without a status
    UNKNOWN with its text (not UNAVAILABLE: a client must not retry it)."""
    config = receiver_sides.tenant_batch_config(CONFIG, [("receivers", "jaeger", "protocols", "grpc")])
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        answers = [_call_tenant(sides, i, tenant, names)
                   for i, (tenant, names) in enumerate(receiver_sides.TENANTS_OVER_THE_LIMIT)]
        receiver_sides.check_over_the_limit(sides, answers, ("OK", b""), "UNKNOWN",
                                            "Permanent error: too many batcher metadata-value combinations")
