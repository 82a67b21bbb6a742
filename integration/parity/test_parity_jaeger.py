"""Parity of the `jaeger` receiver: Jaeger Thrift spans taken over HTTP (`thrift_http`, the
Jaeger collector's `POST /api/traces`) and UDP (`thrift_compact` and `thrift_binary`, the
Jaeger agent's `emitBatch`) and translated to OTLP as otelcol-contrib's jaegerreceiver
(v0.161.0, with pkg/translator/jaeger's ThriftToTraces) takes and translates them.

Jaeger's own clients (jaeger-client-go/java/node/python, long deprecated but still deployed)
and the OpenTelemetry SDKs' old Jaeger exporters send spans this way; the receiver is their
way into the OTLP pipeline. What comes out (the resource of a process, a span's parent,
kind and status, its links, which tags are consumed and in what order the rest stay)
decides what Tempo and the RED dashboards show for those services.

One collector pair (or otelcol alone, see below) runs the receiver with its three Thrift
protocols into one traces pipeline whose `otlp` exporter writes to an OTLP sink. Every
request is sent once both collectors forwarded the one before, so that each Jaeger batch is
one forwarded OTLP request.

  - A real client: the OpenTelemetry Python SDK's Jaeger exporter
    (opentelemetry-exporter-jaeger-thrift 1.21.0, the last one published), in agent mode
    (compact Thrift over UDP) and collector mode (binary Thrift over HTTP): span kinds,
    parents, an error status with and without a description, an OK status, events with
    attributes, links, attributes of every type, an HTTP status code that makes an error.
    What arrives is compared with what the SDK recorded, through the rules of the exporter
    (`sdk_batch`) and of the receiver (`translate`) together.
  - Hand-encoded batches (jaeger_thrift.py), each sent over all four ways in (HTTP with
    either Content-Type, UDP compact, UDP binary): the process (service name, `hostname` and
    `jaeger.version` renamed unless their new names are there, an empty name, no tags),
    128- and 64-bit ids (negative as int64), the sampled flag, microseconds to nanoseconds
    (wrapping as Go's uint64 does), tags of every type (unset values, unknown TagTypes,
    duplicate keys: the first place, the last value), `span.kind`, `error` (only a bool true
    is an error), `otel.status_code`/`otel.status_description`, the `http.status_code`
    fallback (4xx by span kind, Go's `< 399`, string codes, `http.response.status_code`
    renamed), `http.status_message`, logs as events (the `event` field as the name), the
    parent from references (CHILD_OF over FOLLOWS_FROM, same trace only) and links (all but
    the parent's CHILD_OF), a span with every field zero (skipped), unknown fields (skipped),
    `w3c.tracestate` and `otel.scope.name` (tags: only the proto path reads them).
  - Attributes are compared IN ORDER: pdata's Map keeps insertion order, a Put on an
    existing key replaces in place and a Remove moves the last attribute into the removed
    one's place (`PMap` below), and the translator removes `span.kind`, `error`,
    `otel.status_*` and `event`.
  - HTTP: both Content-Types (with parameters, in any case), the `?format=jaeger.thrift`
    query Jaeger clients add, compressed bodies, bytes after the batch (ignored); bad
    bodies, Content-Types, paths and methods answered 400/404/405 and nothing forwarded,
    with a good request taken after each.
  - UDP: the message in the old binary form (no version word), as a CALL, with a sequence
    id and bytes after it, all taken; bad packets (empty, truncated, the other protocol, a
    bad version, an unknown method, a batch missing a required field) forward nothing, a
    good packet after them is taken; an emitBatch without a batch forwards nothing.
  - The receiver's own counters: `otelcol_receiver_{accepted,refused,failed}_spans` by
    transport (`collector_http`, `udp_thrift_compact`, `udp_thrift_binary`); a refused
    request or packet counts nowhere.
  - The tenant header over `thrift_http` (`test_tenant_header`, on collectors of its own,
    see receiver_sides.tenant_config): with `include_metadata` the receiver keeps each
    request's headers, so `headers_setter` sends each client's `X-Scope-OrgID` on with its
    spans (`anon` without one); without it, every span goes under `anon`. Compared: which
    span names arrived under which value of the header. Over a `batch` that keeps one
    tenant (`test_tenant_over_the_batch_cardinality_limit`), the second tenant's batch is
    refused with a permanent error: 500, as every error of the pipeline, and none of it
    arrives.

What each collector forwards is compared exactly (attributes and spans in order) with a model
of otelcol's translation written here from its source (`translate`), and with what the other
collector forwards; an empty resource, scope or status is the same whether or not the
message is on the wire. Refusals are compared by status; otelcol's texts are pinned below
(`BAD_BODIES`, `BAD_HEADERS`, `BAD_ROUTES`) for the record, Redline's only have to be there.

Not compared, on purpose (documented differences, none of it is sent here):
  - spans whose trace id or span id is all zero: otelcol forwards them, Redline drops them
    and counts them refused. (A span with every field zero is skipped by both; it is in the
    translation traffic, not in the counters'.)
  - Thrift strings that are not valid UTF-8: otelcol forwards the bytes as they are (not
    valid OTLP), Redline replaces invalid sequences with U+FFFD.
  - `protocols.grpc` (Jaeger's gRPC/protobuf API): test_parity_jaeger_grpc.py.
  - a batch that comes out without spans (a process and no spans, or only blank spans):
    otelcol forwards its resource alone, Redline forwards nothing;
    `test_batches_without_spans` checks each side does what it says.
  - `emitZipkinBatch` over UDP: otelcol's agent handler panics on it ("unsupported
    receiver") and the collector dies.

`JAEGER_PARITY_SIDES=otelcol` (or `redline`) runs one collector alone, to check the model
against otelcol by itself (every comparison with the model still runs; those between the
collectors do not). The default, and what CI runs, is both.
"""

from __future__ import annotations

import gzip
import math
import re
import socket
import warnings
import zlib

import pytest
import requests
import zstandard
from opentelemetry import trace as trace_api
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import helpers
import jaeger_thrift as jt
import receiver_sides
from jaeger_thrift import (BINARY_T, BOOL_T, CHILD_OF, DOUBLE_T, FOLLOWS_FROM, I32, I64, LIST, LONG_T, M64,
                           STRING, STRING_T, STRUCT, Batch, ClientStats, Log, Process, Span, SpanRef, Struct,
                           Tag, TList, b, d, n, raw, s)
from otlp_sink import OtlpSink
from pair import Collector
from receiver_sides import (COUNTERS, Side as ReceiverSide, assert_counts_moved, check, collect, forwarded,
                            next_forwarded, report, settle, sides_fixture, start_collector)
from test_parity_self_telemetry import total


def _jaeger_exporter():
    """opentelemetry-exporter-jaeger-thrift 1.21.0 imports the names of its environment
    variables (OTEL_EXPORTER_JAEGER_*) from opentelemetry.sdk.environment_variables, which
    SDKs after 1.21 no longer define; they are only names, so they are put back before the
    import. Nothing else of the exporter depends on the SDK's version."""
    import opentelemetry.sdk.environment_variables as names
    for name in ("AGENT_HOST", "AGENT_PORT", "AGENT_SPLIT_OVERSIZED_BATCHES", "ENDPOINT", "PASSWORD", "TIMEOUT",
                 "USER"):
        if not hasattr(names, f"OTEL_EXPORTER_JAEGER_{name}"):
            setattr(names, f"OTEL_EXPORTER_JAEGER_{name}", f"OTEL_EXPORTER_JAEGER_{name}")
    from opentelemetry.exporter.jaeger.thrift import JaegerExporter
    return JaegerExporter


JaegerExporter = _jaeger_exporter()

SIDES_ENV = "JAEGER_PARITY_SIDES"
TRACES = "/api/traces"
X_THRIFT = {"Content-Type": "application/x-thrift"}
VND_THRIFT = {"Content-Type": "application/vnd.apache.thrift.binary"}

CONFIG = """\
receivers:
  jaeger:
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:14268
      thrift_compact:
        endpoint: 127.0.0.1:6831
      thrift_binary:
        endpoint: 127.0.0.1:6832
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
    """One collector with the jaeger receiver on ports of its own (`udp`: the agent's UDP
    ports by protocol) and its own sink."""

    def __init__(self, name: str, collector: Collector, sink: OtlpSink, udp: dict):
        super().__init__(name, collector, sink)
        self.udp = udp

    def url(self, path: str = TRACES) -> str:
        return self.collector.url("jaeger", path)

    def post(self, body: bytes, headers: dict, path: str = TRACES, method: str = "POST") -> requests.Response:
        return requests.request(method, self.url(path), data=body, headers=headers, timeout=15)

    def send(self, protocol: str, packet: bytes):
        jt.send_udp(self.udp[protocol], packet)


def free_udp_port() -> int:
    """A UDP port nothing holds, never one helpers handed out before."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in helpers._HANDED_OUT and helpers.port_is_free(port, "127.0.0.1"):
            helpers._HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free UDP port in 100 tries")


def _start(name: str, argv: list, procs, workdir, config: str = CONFIG, http_sink=None) -> Side:
    udp: dict = {}

    def configure(cfg, ports, collector):
        if collector is None:
            protocols = cfg["receivers"]["jaeger"]["protocols"]
            ports["jaeger"] = helpers.free_port()
            protocols["thrift_http"]["endpoint"] = f"127.0.0.1:{ports['jaeger']}"
            udp.update(compact=free_udp_port(), binary=free_udp_port())
            for proto, port in udp.items():
                protocols[f"thrift_{proto}"]["endpoint"] = f"127.0.0.1:{port}"
            return None
        helpers.wait_until(lambda: all(jt.udp_port_bound(p) for p in udp.values()), 30,
                           f"{name} to bind UDP {sorted(udp.values())}", alive=collector.proc)
        return dict(udp)

    collector, sink, kept = start_collector(name, argv, procs, workdir, config, configure, http_sink)
    return Side(name, collector, sink, kept)


sides = sides_fixture(SIDES_ENV, _start)


def post_all(sides: dict, body: bytes, headers: dict, path: str = TRACES) -> dict:
    """`body` posted to every side, each answering 202 with nothing and forwarding one
    request: that request, by side (in a list)."""
    answers = {name: side.post(body, headers, path) for name, side in sides.items()}
    got = forwarded(sides, "the request it accepted", {name: r.status_code == 202 for name, r in answers.items()})
    shown = {name: (r.status_code, r.text) for name, r in answers.items()}
    assert all(r.status_code == 202 for r in answers.values()), f"not accepted by all: {shown}"
    assert all(r.content == b"" for r in answers.values()), f"202 with a body: {shown}"
    return got


def send_all(sides: dict, protocol: str, packet: bytes) -> dict:
    """`packet` sent to every side's UDP `protocol` port, each forwarding one request."""
    for side in sides.values():
        side.send(protocol, packet)
    return forwarded(sides, f"the {protocol} packet")


# The four ways a batch comes in.
WAYS = ("http x-thrift", "http vnd.apache.thrift.binary", "udp compact", "udp binary")


def deliver(sides: dict, batch: Batch, way: str) -> dict:
    if way == "http x-thrift":
        return post_all(sides, jt.http_body(batch), X_THRIFT)
    if way == "http vnd.apache.thrift.binary":
        return post_all(sides, jt.http_body(batch), VND_THRIFT)
    protocol = way.split()[1]
    return send_all(sides, protocol, jt.emit_batch(batch, protocol))


# ---------------------------------------------------------------- otelcol's translation, as a model

UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = range(6)  # OTLP span kinds
STATUS_UNSET, STATUS_OK, STATUS_ERROR = range(3)
KINDS = {"client": CLIENT, "server": SERVER, "producer": PRODUCER, "consumer": CONSUMER, "internal": INTERNAL}
HTTP_STATUS_KEYS = ("http.status_code", "http.response.status_code")  # both emitted as http.status_code
INT64 = (-(1 << 63), (1 << 63) - 1)


class PMap:
    """pdata's Map, as the translator uses it: pairs in insertion order; a Put on an existing
    key replaces the value in its place; Remove moves the LAST pair into the removed one's
    place. Values are (type, value): str, int, double, bool, bytes."""

    def __init__(self):
        self.kv: list = []

    def _index(self, key: str):
        return next((i for i, (k, _) in enumerate(self.kv) if k == key), None)

    def __contains__(self, key: str) -> bool:
        return self._index(key) is not None

    def get(self, key: str):
        i = self._index(key)
        return None if i is None else self.kv[i][1]

    def put(self, key: str, value: tuple):
        i = self._index(key)
        if i is None:
            self.kv.append((key, value))
        else:
            self.kv[i] = (key, value)

    def remove(self, key: str):
        i = self._index(key)
        if i is not None:
            self.kv[i] = self.kv[-1]
            self.kv.pop()

    def write(self, attrs):
        for key, (kind, v) in self.kv:
            kv = attrs.add(key=key)
            if kind == "str":
                kv.value.string_value = v
            elif kind == "int":
                kv.value.int_value = v
            elif kind == "double":
                kv.value.double_value = v
            elif kind == "bool":
                kv.value.bool_value = v
            else:
                kv.value.bytes_value = v


def str_of(value) -> str:
    """pcommon.Value.Str(): the string, or "" for a value of another type."""
    return value[1] if value is not None and value[0] == "str" else ""


def tags_to_attrs(tags, m: PMap):
    """jThriftTagsToInternalAttributes (feature gates at their defaults): a tag of an
    unknown type becomes the string Go's %q makes of the TagType, whose String() is
    "<UNSET>"."""
    for tag in tags or []:
        key = "http.status_code" if tag.key in HTTP_STATUS_KEYS else tag.key
        vtype = tag.vType
        if vtype == STRING_T:
            m.put(key, ("str", tag.vStr or ""))
        elif vtype == BOOL_T:
            m.put(key, ("bool", bool(tag.vBool)))
        elif vtype == LONG_T:
            m.put(key, ("int", jt.i64(tag.vLong or 0)))
        elif vtype == DOUBLE_T:
            m.put(key, ("double", 0.0 if tag.vDouble is None else tag.vDouble))  # -0.0 stays
        elif vtype == BINARY_T:
            m.put(key, ("bytes", bytes(tag.vBinary or b"")))
        else:
            m.put(key, ("str", '<Unknown Jaeger TagType "<UNSET>">'))


def us_to_ns(us: int) -> int:
    """microsecondsToUnixNano: uint64(us) * 1000, wrapping."""
    return (jt.u64(us) * 1000) & M64


def trace_id(high: int, low: int) -> bytes:
    out = jt.u64(high).to_bytes(8, "big") + jt.u64(low).to_bytes(8, "big")
    return out if any(out) else b""


def span_id(v: int) -> bytes:
    out = jt.u64(v).to_bytes(8, "big")
    return out if any(out) else b""


def is_blank(sp: Span) -> bool:
    """reflect.DeepEqual with a new(jaeger.Span): every field zero and no list on the wire
    (a list sent empty is not nil)."""
    return (not any(jt.u64(v) for v in (sp.traceIdLow, sp.traceIdHigh, sp.spanId, sp.parentSpanId,
                                        sp.startTime, sp.duration))
            and sp.flags == 0 and sp.operationName == "" and sp.references is None and sp.tags is None
            and sp.logs is None)


def translate(batch: Batch):
    """otelcol's ThriftToTraces for `batch` (which the receiver decoded: it has a process,
    and a list of spans, maybe empty). One ExportTraceServiceRequest."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(batch.process, rs.resource)
    if not batch.spans:
        return req  # a resource and no scope spans
    ss = rs.scope_spans.add()
    for sp in batch.spans:
        if not is_blank(sp):
            _span(sp, ss.spans.add())
    return req


def _resource(process: Process, resource):
    """jThriftProcessToInternalResource, translateHostnameAttr, translateJaegerVersionAttr:
    each rename appends the new key and removes the old one, which puts the new one in the
    old one's place."""
    name = process.serviceName or ""
    if name == "" and process.tags is None:
        return
    m = PMap()
    if name:
        m.put("service.name", ("str", name))
    tags_to_attrs(process.tags, m)
    if "hostname" in m and "host.name" not in m:
        m.put("host.name", m.get("hostname"))
        m.remove("hostname")
    if "jaeger.version" in m and "opencensus.exporterversion" not in m:
        m.put("opencensus.exporterversion", ("str", "Jaeger-" + str_of(m.get("jaeger.version"))))
        m.remove("jaeger.version")
    m.write(resource.attributes)


def parent_of(sp: Span) -> int:
    """jThriftSpanParentID: parentSpanId, else the first CHILD_OF reference into the same
    trace, else the first FOLLOWS_FROM one."""
    if jt.u64(sp.parentSpanId):
        return jt.u64(sp.parentSpanId)
    follows = None
    for ref in sp.references or []:
        if jt.u64(ref.traceIdHigh) != jt.u64(sp.traceIdHigh) or jt.u64(ref.traceIdLow) != jt.u64(sp.traceIdLow):
            continue
        if ref.refType == CHILD_OF:
            return jt.u64(ref.spanId)
        if follows is None and ref.refType == FOLLOWS_FROM:
            follows = ref
    return jt.u64(follows.spanId) if follows is not None else 0


def _span(sp: Span, out):
    out.trace_id = trace_id(sp.traceIdHigh, sp.traceIdLow)
    out.span_id = span_id(sp.spanId)
    out.name = sp.operationName
    out.start_time_unix_nano = us_to_ns(sp.startTime)
    out.end_time_unix_nano = us_to_ns(sp.startTime + sp.duration)  # int64 addition, wrapped by u64
    if sp.flags & 1:
        out.flags = 1
    parent = parent_of(sp)
    if parent:
        out.parent_span_id = span_id(parent)
    m = PMap()
    tags_to_attrs(sp.tags, m)
    if "span.kind" in m:
        out.kind = KINDS.get(str_of(m.get("span.kind")), UNSPECIFIED)
        m.remove("span.kind")
    _status(m, out)
    m.write(out.attributes)
    for log in sp.logs or []:
        ev = out.events.add(time_unix_nano=us_to_ns(log.timestamp))
        if not log.fields:
            continue
        em = PMap()
        tags_to_attrs(log.fields, em)
        if "event" in em:
            ev.name = str_of(em.get("event"))
            em.remove("event")
        em.write(ev.attributes)
    for ref in sp.references or []:
        if jt.u64(ref.spanId) == parent and ref.refType == CHILD_OF:
            continue
        link = out.links.add(trace_id=trace_id(ref.traceIdHigh, ref.traceIdLow), span_id=span_id(ref.spanId))
        kv = link.attributes.add(key="opentracing.ref_type")
        kv.value.string_value = "child_of" if ref.refType == CHILD_OF else "follows_from"


def _parse_int(text: str):
    """strconv.ParseInt(text, 10, 0): an optional sign and ASCII digits, within int64."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    v = int(text)
    return v if INT64[0] <= v <= INT64[1] else None


def _http_status(value, kind: int):
    """getStatusCodeFromHTTPStatusAttr: None when the value is no code."""
    if value[0] == "int":
        code = value[1]
    elif value[0] == "str":
        code = _parse_int(value[1])
        if code is None:
            return None
    else:
        return None
    if 400 <= code < 500 and kind in (CLIENT, SERVER):
        return STATUS_ERROR if kind == CLIENT else STATUS_UNSET
    return STATUS_UNSET if 100 <= code < 399 else STATUS_ERROR  # tracetranslator.StatusCodeFromHTTP


def _status(m: PMap, out):
    """setInternalSpanStatus."""
    code, message, exists = STATUS_UNSET, "", False

    def description():
        if "otel.status_description" in m:
            text = str_of(m.get("otel.status_description"))
            m.remove("otel.status_description")
            return text
        return None

    error = m.get("error")
    if error is not None and error[0] == "bool" and error[1]:
        code, exists = STATUS_ERROR, True
        m.remove("error")
        desc = description()
        if desc is not None:
            message = desc
        elif "http.status_message" in m:
            message = str_of(m.get("http.status_message"))
    if "otel.status_code" in m:
        if not exists:
            exists = True
            code = {"OK": STATUS_OK, "ERROR": STATUS_ERROR}.get(str_of(m.get("otel.status_code")).upper(), STATUS_UNSET)
            desc = description()
            if desc is not None:
                message = desc
        m.remove("otel.status_code")
    elif not exists and "http.status_code" in m:
        http = _http_status(m.get("http.status_code"), out.kind)
        if http is not None:
            if http != STATUS_UNSET:
                code, exists = http, True
            if "http.status_message" in m:
                message = str_of(m.get("http.status_message"))
    if exists:
        out.status.code = code
        out.status.message = message


# ---------------------------------------------------------------- hand-written traffic

US = 1_700_000_000_000_000  # a Jaeger timestamp: microseconds
TH, TL = 0x5B8EFFF798038103, 0xD269B633813FC60C  # a 128-bit trace id; its low half is negative as int64
T64 = 0x463AC35C9F6413AD  # a 64-bit one (high half 0)
OH, OL = 0x0AF7651916CD43DD, 0x8448EB211C80319C  # another trace
P1, P2, P3, P4 = 0xB7AD6B7169203331, 0x00F067AA0BA902B7, 0x53995C3F42CD8AD8, 0xE457B5A2E4D86BD1


def _ok_span(sid: int, name: str, **kw) -> Span:
    return Span(TL, TH, sid, operationName=name, startTime=US, duration=10, **kw)


# Processes: each in a batch of its own (one span), as a batch has one process.
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
    ("an empty name and an empty tag list", Process("", [])),
    ("HTTP status tags in the process: both named http.status_code",
     Process("epsilon", [n("http.response.status_code", 200), s("x", "y"), s("http.status_code", "z")])),
]

IDS_AND_TIMES = Batch(Process("ids-and-times"), [
    Span(TL, TH, P1, operationName="128-bit ids, negative as int64", flags=1, startTime=US, duration=1500),
    Span(T64, 0, 0x2, parentSpanId=P1, operationName="64-bit trace id, not sampled", flags=0, startTime=US + 1,
         duration=2),
    Span(TL, TH, 0x3, operationName="flags 2 (debug): not sampled", flags=2, startTime=US, duration=1),
    Span(TL, TH, 0x4, operationName="flags 3", flags=3, startTime=US, duration=1),
    Span(TL, TH, 0x5, operationName="flags -1", flags=-1, startTime=US, duration=1),
    Span(TL, TH, 0x6, operationName="no start, no duration", flags=1),
    Span(TL, TH, 0x7, operationName="a negative duration", startTime=US, duration=-5),
    Span(TL, TH, 0x8, operationName="a negative start", startTime=-1000, duration=10),
    Span(TL, TH, 0x9, operationName="nanoseconds beyond 2^64 wrap", startTime=18_446_744_073_709_552, duration=1),
    Span(0, 0, 0, flags=0),  # every field zero: skipped
    Span(TL, TH, 0xA, operationName="", startTime=US, duration=3),
    Span(TL, TH, 0xB, operationName="an empty tag, log and reference list", startTime=US, duration=3,
         tags=[], logs=[], references=[]),
    Span(TL, TH, 0xC, parentSpanId=P1, operationName="unknown fields skipped", startTime=US, duration=3,
         extra=((99, STRING, "skipped"), (12, I32, 5), (20, STRUCT, Struct([(1, STRING, "x")])))),
], seqNo=7, stats=ClientStats(1, 2, 3), extra=((9, STRING, "an unknown batch field"),))

TAGS = Batch(Process("tags"), [
    Span(TL, TH, 0x10, operationName="every type", startTime=US, duration=3, tags=[
        s("str", "text"), s("empty", ""), Tag("str.unset", STRING_T), d("double", 3.25), d("double.negzero", -0.0),
        d("double.inf", math.inf), d("double.nan", math.nan), Tag("double.unset", DOUBLE_T), b("true", True),
        b("false", False), Tag("bool.unset", BOOL_T), n("long", -42), n("long.max", INT64[1]),
        n("long.min", INT64[0]), Tag("long.unset", LONG_T), raw("binary", b"\x00\x01\xfe\xff"),
        Tag("binary.unset", BINARY_T), Tag("string.with.a.long", STRING_T, vLong=5),
        Tag("long.with.a.string", LONG_T, vStr="x", vLong=9), Tag("type.5", 5, vStr="x"), Tag("type.-1", -1),
        s("unicode", "héllo ✓ 日本"), s("", "an empty key"), s("w3c.tracestate", "a=b"),
        s("otel.scope.name", "not a scope"), s("otel.library.name", "nor this")]),
    Span(TL, TH, 0x11, operationName="duplicate keys: the first place, the last value and type", startTime=US,
         duration=3, tags=[s("dup", "a"), s("other", "o"), n("dup", 2), d("other", 1.5), b("dup", True)]),
    Span(TL, TH, 0x12, operationName="no tags", startTime=US, duration=3),
])

KINDS_AND_STATUS = Batch(Process("kinds-and-status"), [
    Span(TL, TH, 0x20, operationName="server; span.kind's place taken by the last tag", startTime=US, duration=1,
         tags=[s("a", "1"), s("span.kind", "server"), s("b", "2"), s("c", "3")]),
    Span(TL, TH, 0x21, operationName="client", startTime=US, duration=1, tags=[s("span.kind", "client")]),
    Span(TL, TH, 0x22, operationName="producer", startTime=US, duration=1, tags=[s("span.kind", "producer")]),
    Span(TL, TH, 0x23, operationName="consumer", startTime=US, duration=1, tags=[s("span.kind", "consumer")]),
    Span(TL, TH, 0x24, operationName="internal", startTime=US, duration=1, tags=[s("span.kind", "internal")]),
    Span(TL, TH, 0x25, operationName="SERVER: no kind", startTime=US, duration=1,
         tags=[s("span.kind", "SERVER"), s("x", "1")]),
    Span(TL, TH, 0x26, operationName="a long span.kind: no kind", startTime=US, duration=1,
         tags=[n("span.kind", 2), s("x", "1")]),
    Span(TL, TH, 0x27, operationName="error true over otel.status_code OK; its description", startTime=US,
         duration=1, tags=[s("x", "1"), b("error", True), s("otel.status_description", "desc"), s("y", "2"),
                           s("otel.status_code", "OK"), s("z", "3")]),
    Span(TL, TH, 0x28, operationName="error true and http.status_message", startTime=US, duration=1,
         tags=[b("error", True), s("http.status_message", "Bad Gateway"), s("k", "v")]),
    Span(TL, TH, 0x29, operationName="error true alone", startTime=US, duration=1, tags=[b("error", True)]),
    Span(TL, TH, 0x2A, operationName="error false: a tag", startTime=US, duration=1, tags=[b("error", False)]),
    Span(TL, TH, 0x2B, operationName="error string true: a tag", startTime=US, duration=1,
         tags=[s("error", "true"), s("otel.status_description", "no code: a tag")]),
    Span(TL, TH, 0x2C, operationName="error long 1: a tag", startTime=US, duration=1, tags=[n("error", 1)]),
    Span(TL, TH, 0x2D, operationName="error string and otel.status_code ERROR", startTime=US, duration=1,
         tags=[s("error", "true"), s("otel.status_code", "ERROR"), s("otel.status_description", "boom")]),
    Span(TL, TH, 0x2E, operationName="OK with a description", startTime=US, duration=1,
         tags=[s("otel.status_description", "fine"), s("otel.status_code", "OK"), s("k", "v")]),
    Span(TL, TH, 0x2F, operationName="ok in lower case", startTime=US, duration=1, tags=[s("otel.status_code", "ok")]),
    Span(TL, TH, 0x30, operationName="Error in mixed case", startTime=US, duration=1,
         tags=[s("otel.status_code", "Error")]),
    Span(TL, TH, 0x31, operationName="UNSET with a description: a message without a code", startTime=US,
         duration=1, tags=[s("otel.status_code", "UNSET"), s("otel.status_description", "d")]),
    Span(TL, TH, 0x32, operationName="an unknown code", startTime=US, duration=1,
         tags=[s("otel.status_code", "garbage"), s("k", "v")]),
    Span(TL, TH, 0x33, operationName="a long otel.status_code", startTime=US, duration=1,
         tags=[n("otel.status_code", 2)]),
    Span(TL, TH, 0x34, operationName="error false and otel.status_code ERROR", startTime=US, duration=1,
         tags=[b("error", False), s("otel.status_code", "ERROR")]),
    Span(TL, TH, 0x35, operationName="error true, otel.status_code OK, http.status_message", startTime=US,
         duration=1, tags=[s("otel.status_code", "OK"), s("http.status_message", "m"), b("error", True)]),
])


def _http(sid: int, name: str, *tags: Tag) -> Span:
    return Span(TL, TH, sid, operationName=name, startTime=US, duration=1, tags=list(tags))


HTTP_STATUS = Batch(Process("http-status"), [
    _http(0x40, "404 server: unset", s("span.kind", "server"), n("http.status_code", 404)),
    _http(0x41, "404 client: error", s("span.kind", "client"), n("http.status_code", 404)),
    _http(0x42, "404 without a kind: error", n("http.status_code", 404)),
    _http(0x43, "404 internal: error", s("span.kind", "internal"), n("http.status_code", 404)),
    _http(0x44, "500 and a message", s("span.kind", "server"), n("http.status_code", 500),
          s("http.status_message", "Internal")),
    _http(0x45, "200 and a message: no status", n("http.status_code", 200), s("http.status_message", "OK")),
    _http(0x46, "399: error (Go's < 399)", n("http.status_code", 399)),
    _http(0x47, "398: unset", n("http.status_code", 398)),
    _http(0x48, "100: unset", n("http.status_code", 100)),
    _http(0x49, "99: error", n("http.status_code", 99)),
    _http(0x4A, "0: error", n("http.status_code", 0)),
    _http(0x4B, "-1: error", n("http.status_code", -1)),
    _http(0x4C, "a string 503", s("http.status_code", "503")),
    _http(0x4D, "a string +404, client", s("http.status_code", "+404"), s("span.kind", "client")),
    _http(0x4E, "a string with a space: no code", s("http.status_code", " 503")),
    _http(0x4F, "a string 5e2: no code", s("http.status_code", "5e2")),
    _http(0x50, "a string out of int64: no code", s("http.status_code", "99999999999999999999"),
          s("http.status_message", "unused")),
    _http(0x51, "a double: no code", d("http.status_code", 500.0)),
    _http(0x52, "a bool: no code", b("http.status_code", True)),
    _http(0x53, "http.response.status_code renamed", n("http.response.status_code", 502)),
    _http(0x54, "both: one key, the last value", n("http.status_code", 200), s("x", "1"),
          n("http.response.status_code", 503)),
    _http(0x55, "otel.status_code over the HTTP code", n("http.status_code", 500), s("otel.status_code", "OK")),
    _http(0x56, "error false and 500", b("error", False), n("http.status_code", 500)),
    _http(0x57, "the kind after the code", n("http.status_code", 404), s("span.kind", "client")),
])

LOGS = Batch(Process("logs"), [
    Span(TL, TH, 0x60, operationName="logs", startTime=US, duration=100, logs=[
        Log(US + 1, [s("event", "cache miss"), s("k", "v"), n("n", 1)]),
        Log(US + 2, [n("event", 5), s("k", "v")]),
        Log(US + 3, []),
        Log(US + 4, [s("message", "hello"), d("x", 1.5)]),
        Log(0, [s("event", "at zero")]),
        Log(US + 5, [s("event", "a"), s("k", "v"), s("event", "b")]),
        Log(US + 6, [n("http.response.status_code", 500), s("error", "x")]),
        Log(US + 7, [s("event", "")]),
        Log(-1, [raw("b", b"\x01")]),
    ]),
])


def _refs(sid: int, name: str, parent: int, *refs: SpanRef) -> Span:
    return Span(TL, TH, sid, parentSpanId=parent, operationName=name, startTime=US, duration=1, references=list(refs))


def _same(ref_type: int, sid: int) -> SpanRef:
    return SpanRef(ref_type, TL, TH, sid)


def _other(ref_type: int, sid: int) -> SpanRef:
    return SpanRef(ref_type, OL, OH, sid)


REFERENCES = Batch(Process("references"), [
    _refs(0x70, "CHILD_OF in the trace: the parent, no link", 0, _same(CHILD_OF, P1)),
    _refs(0x71, "FOLLOWS_FROM in the trace: the parent and a link", 0, _same(FOLLOWS_FROM, P2)),
    _refs(0x72, "CHILD_OF over an earlier FOLLOWS_FROM", 0, _same(FOLLOWS_FROM, P2), _same(CHILD_OF, P1)),
    _refs(0x73, "CHILD_OF in another trace: a link; FOLLOWS_FROM in the trace: the parent", 0,
          _other(CHILD_OF, P3), _same(FOLLOWS_FROM, P2)),
    _refs(0x74, "CHILD_OF in another trace only: no parent", 0, _other(CHILD_OF, P3)),
    _refs(0x75, "parentSpanId and its CHILD_OF", P1, _same(CHILD_OF, P1), _other(FOLLOWS_FROM, P4)),
    _refs(0x76, "parentSpanId and a CHILD_OF of that id in another trace: no link either", P1,
          _other(CHILD_OF, P1)),
    _refs(0x77, "two CHILD_OF: the first is the parent", 0, _same(CHILD_OF, P1), _same(CHILD_OF, P2)),
    _refs(0x78, "an unknown refType: no parent, a follows_from link", 0, _same(5, P1)),
    _refs(0x79, "parentSpanId and a FOLLOWS_FROM of it: a link", P1, _same(FOLLOWS_FROM, P1)),
    _refs(0x7A, "a CHILD_OF of span id 0: nothing", 0, _same(CHILD_OF, 0)),
    _refs(0x7B, "the same low half, another high half: another trace", 0, SpanRef(CHILD_OF, TL, OH, P3)),
    _refs(0x7C, "parentSpanId and another CHILD_OF: a link", P1, _same(CHILD_OF, P2)),
    _refs(0x7D, "64-bit trace: the parent from the same 64-bit trace", 0, SpanRef(CHILD_OF, TL, 0, P4)),
])

EDGE = [(what, Batch(process, [_ok_span(0x90 + i, "in " + (process.serviceName or "no name"))]))
        for i, (what, process) in enumerate(PROCESSES)] + [
    ("ids and times", IDS_AND_TIMES), ("tags", TAGS), ("kinds and status", KINDS_AND_STATUS),
    ("the http.status_code fallback", HTTP_STATUS), ("logs", LOGS), ("references", REFERENCES),
]

# Batches that come out without spans: otelcol forwards a request holding the resource alone
# (and, for the blank span, an empty scope); Redline forwards nothing (docs/compatibility.md
# §45: no span, no request).
SPANLESS = [
    ("a process and no spans: a resource without scope spans", Batch(Process("no-spans"), [])),
    ("only a span with every field zero: an empty scope", Batch(Process("blank"), [Span(0, 0, 0, flags=0)])),
]

SMALL = Batch(Process("small", [s("hostname", "small-host")]), [
    Span(TL, TH, 0x0100000000000001, operationName="ok", startTime=US, duration=3,
         tags=[s("span.kind", "server"), s("k", "v")]),
])

# A few ordinary spans, for what is not about translation (counters, compression), so that a
# difference in an edge case fails only the edge-case tests.
PLAIN = Batch(Process("plain", [s("jaeger.version", "Go-2.30.0")]), SMALL.spans + [
    Span(TL, TH, 0x0100000000000002, parentSpanId=0x0100000000000001, operationName="call", startTime=US + 1,
         duration=2, tags=[s("span.kind", "client"), n("http.status_code", 503)]),
    Span(TL, TH, 0x0100000000000003, operationName="work", startTime=US + 1, duration=1,
         references=[_same(CHILD_OF, 0x0100000000000002)], logs=[Log(US + 2, [s("event", "done")])]),
])


# ---------------------------------------------------------------- the SDK's exporter as the client

SDK_BASE = 1_700_000_100_000_000_000  # nanoseconds; offsets below are not whole microseconds
SDK_KINDS = {SpanKind.CLIENT: "client", SpanKind.SERVER: "server", SpanKind.CONSUMER: "consumer",
             SpanKind.PRODUCER: "producer", SpanKind.INTERNAL: "internal"}


def _us(ns: int) -> int:
    return (ns + 500) // 1000  # the exporter rounds to microseconds


def _sdk_tag(key: str, value):
    """The exporter's _translate_attribute: a sequence becomes the str() of the tuple."""
    if isinstance(value, bool):
        return b(key, value)
    if isinstance(value, str):
        return s(key, value)
    if isinstance(value, int):
        return n(key, value)
    if isinstance(value, float):
        return d(key, value)
    return s(key, str(value))


def sdk_batch(spans: list, service: str) -> Batch:
    """The Batch the SDK's Jaeger exporter (1.21.0) sends for `spans`: the service's name as
    the process (and nothing else of the resource there), the span's attributes then the
    resource's as tags, `otel.status_code` (+ `otel.status_description`) for a set status,
    `span.kind` always, the scope as `otel.library.*` and `otel.scope.*`, `error: true` for
    an error, the parent as parentSpanId, links as FOLLOWS_FROM (without their attributes),
    an event as a log whose last field is `message: <name>`, times in rounded microseconds."""
    out = []
    for sp in spans:
        ctx = sp.get_span_context()
        tags = [_sdk_tag(k, v) for k, v in {**sp.attributes}.items()]
        tags += [_sdk_tag(k, v) for k, v in sp.resource.attributes.items()]
        if sp.status.status_code is not StatusCode.UNSET:
            tags.append(s("otel.status_code", sp.status.status_code.name))
            if sp.status.description is not None:
                tags.append(s("otel.status_description", sp.status.description))
        tags.append(s("span.kind", SDK_KINDS[sp.kind]))
        scope = sp.instrumentation_scope
        for prefix in ("otel.library", "otel.scope"):
            tags += [Tag(f"{prefix}.name", STRING_T, vStr=scope.name),
                     Tag(f"{prefix}.version", STRING_T, vStr=scope.version)]
        if sp.status.status_code is StatusCode.ERROR:
            tags.append(b("error", True))
        refs = [SpanRef(FOLLOWS_FROM, jt.i64(link.context.trace_id), jt.i64(link.context.trace_id >> 64),
                        jt.i64(link.context.span_id)) for link in sp.links] or None
        logs = [Log(_us(ev.timestamp), [*(_sdk_tag(k, v) for k, v in ev.attributes.items()), s("message", ev.name)])
                for ev in sp.events] or None
        out.append(Span(jt.i64(ctx.trace_id), jt.i64(ctx.trace_id >> 64), jt.i64(ctx.span_id),
                        jt.i64(sp.parent.span_id) if sp.parent else 0, sp.name, refs, int(ctx.trace_flags),
                        _us(sp.start_time), _us(sp.end_time - sp.start_time), tags, logs))
    return Batch(Process(service), out)


def _at(us: float) -> int:
    return SDK_BASE + int(us * 1000)


LINK_T, LINK_S = 0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331


def record(tracer_http, tracer_db):
    """One service's spans: server, internal, client and producer, statuses, events, a link."""
    server = tracer_http.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=_at(0) + 1_499,
                                    attributes={"http.method": "GET", "http.status_code": 404, "ratio": 0.25,
                                                "cached": False, "labels": ("a", "b"), "ports": (80, 443)})
    ctx = trace_api.set_span_in_context(server)
    render = tracer_db.start_span("render", context=ctx, start_time=_at(10) + 500)  # INTERNAL
    render.add_event("cache miss", {"key": "cart:1", "size": 3, "hit": False, "event": "an event field"},
                     timestamp=_at(11) + 499)
    render.add_event("no attributes", timestamp=_at(12))
    render.set_status(Status(StatusCode.ERROR, "render failed"))
    render.end(end_time=_at(20) + 501)
    client = tracer_http.start_span(
        "POST /pay", kind=SpanKind.CLIENT, context=ctx, start_time=_at(30),
        links=[Link(SpanContext(LINK_T, LINK_S, True, TraceFlags(1)), {"link.kind": "follows"})],
        attributes={"peer.service": "payments", "http.status_code": 503, "http.status_message": "Unavailable"})
    client.end(end_time=_at(80) + 999)
    producer = tracer_db.start_span("publish", kind=SpanKind.PRODUCER, context=ctx, start_time=_at(85))
    producer.set_status(Status(StatusCode.OK))
    producer.end(end_time=_at(90))
    consumer = tracer_db.start_span("consume", kind=SpanKind.CONSUMER, context=ctx, start_time=_at(91))
    consumer.set_status(Status(StatusCode.ERROR))  # no description
    consumer.end(end_time=_at(92))
    server.end(end_time=_at(100))


def _sdk_round(sides: dict, mode: str):
    """The spans of `record` exported by the SDK's Jaeger exporter to each side in `mode`
    ("agent": compact Thrift over UDP; "collector": binary Thrift over HTTP); what each side
    forwarded, and the model of it."""
    service = f"sdk-{mode}"
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.name": "sdk-host",
                                                        "deployment.environment": "test"}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    exporters = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter is deprecated, and says so
        for side in sides.values():
            if mode == "agent":
                exporter = JaegerExporter(agent_host_name="127.0.0.1", agent_port=side.udp["compact"])
            else:
                exporter = JaegerExporter(collector_endpoint=side.url())
            exporters.append(exporter)
            provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    try:
        record(provider.get_tracer("shop.http", "1.2.0"), provider.get_tracer("shop.db"))
        assert provider.force_flush(10_000)
        if mode == "collector":
            codes = {name: e._collector.http_transport.code for name, e in zip(sides, exporters)}
            assert codes == {name: 202 for name in sides}, codes
        got = forwarded(sides, f"the SDK's {mode} export")
        return got, [translate(sdk_batch(list(memory.get_finished_spans()), service))]
    finally:
        provider.shutdown()


# ---------------------------------------------------------------- the tests


def _generated(batch: Batch):
    """`batch` as the Thrift library's generated classes (the exporter's copy of
    jaeger.thrift, which has no seqNo and stats)."""
    from opentelemetry.exporter.jaeger.thrift.gen.jaeger import ttypes as g

    def tags(ts):
        return None if ts is None else [g.Tag(t.key, t.vType, t.vStr, t.vDouble, t.vBool, t.vLong, t.vBinary)
                                        for t in ts]

    spans = [g.Span(sp.traceIdLow, sp.traceIdHigh, sp.spanId, sp.parentSpanId, sp.operationName,
                    None if sp.references is None else
                    [g.SpanRef(r.refType, r.traceIdLow, r.traceIdHigh, r.spanId) for r in sp.references],
                    sp.flags, sp.startTime, sp.duration, tags(sp.tags),
                    None if sp.logs is None else [g.Log(lg.timestamp, tags(lg.fields)) for lg in sp.logs])
             for sp in batch.spans]
    return g.Batch(g.Process(batch.process.serviceName, tags(batch.process.tags)), spans)


def _signed(batch: Batch) -> Batch:
    """The same batch with every id signed (the library writes only int64 in range)."""
    def fix(sp: Span) -> Span:
        refs = None if sp.references is None else [
            SpanRef(r.refType, jt.i64(r.traceIdLow), jt.i64(r.traceIdHigh), jt.i64(r.spanId)) for r in sp.references]
        return Span(jt.i64(sp.traceIdLow), jt.i64(sp.traceIdHigh), jt.i64(sp.spanId), jt.i64(sp.parentSpanId),
                    sp.operationName, refs, sp.flags, sp.startTime, sp.duration, sp.tags, sp.logs)
    return Batch(batch.process, [fix(sp) for sp in batch.spans])


def test_hand_encoders_match_the_thrift_library():
    """jaeger_thrift's binary and compact encoders, and its emitBatch messages, byte for byte
    what Apache Thrift's Python library writes (no collector needed)."""
    from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent
    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.transport import TTransport

    problems = []
    for what, batch in [("tags", TAGS), ("kinds and status", KINDS_AND_STATUS), ("logs", LOGS),
                        ("references", REFERENCES), *((w, bt) for w, bt in EDGE[:len(PROCESSES)])]:
        batch = _signed(batch)
        for protocol, factory in (("binary", TBinaryProtocol.TBinaryProtocolFactory()),
                                  ("compact", TCompactProtocol.TCompactProtocolFactory())):
            buf = TTransport.TMemoryBuffer()
            _generated(batch).write(factory.getProtocol(buf))
            mine = jt.binary(STRUCT, batch.struct()) if protocol == "binary" else jt.compact(STRUCT, batch.struct())
            if mine != buf.getvalue():
                problems.append(f"{what}, {protocol} struct")
            buf = TTransport.TMemoryBuffer()
            client = Agent.Client(factory.getProtocol(buf))
            client._seqid = 5
            client.emitBatch(_generated(batch))
            if jt.emit_batch(batch, protocol, seqid=5) != buf.getvalue():
                problems.append(f"{what}, {protocol} emitBatch message")
    assert not problems, problems


def test_sdk_exporter_agent_udp(sides):
    got, want = _sdk_round(sides, "agent")
    check("the SDK's Jaeger exporter, agent mode (compact Thrift over UDP)", got, want)
    settle(sides)


def test_sdk_exporter_collector_http(sides):
    got, want = _sdk_round(sides, "collector")
    check("the SDK's Jaeger exporter, collector mode (binary Thrift over HTTP)", got, want)
    settle(sides)


@pytest.mark.parametrize("way", WAYS)
def test_translation(sides, way):
    """Every hand-written batch, one request each, over `way`."""
    problems: list = []
    for what, batch in EDGE:
        collect(problems, what, lambda: check(f"{what} ({way})", deliver(sides, batch, way), [translate(batch)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(EDGE))


@pytest.mark.parametrize("way", WAYS)
def test_batches_without_spans(sides, way):
    """Each SPANLESS batch, then SMALL, over `way`: otelcol forwards the model's resource-only
    request and then SMALL's; Redline forwards SMALL's alone."""
    problems: list = []
    for what, batch in SPANLESS:
        def case():
            if way.startswith("http"):
                headers = X_THRIFT if way == "http x-thrift" else VND_THRIFT
                answers = {name: side.post(jt.http_body(batch), headers, TRACES)
                           for name, side in sides.items()}
                assert all(r.status_code == 202 for r in answers.values()), \
                    {name: (r.status_code, r.text) for name, r in answers.items()}
            else:
                protocol = way.split()[1]
                for side in sides.values():
                    side.send(protocol, jt.emit_batch(batch, protocol))
            if "otelcol" in sides:
                check(f"{what} ({way}), otelcol", {"otelcol": [next_forwarded(sides["otelcol"], what)]},
                      [translate(batch)])
            # What comes next on each side is SMALL's request: Redline forwarded nothing.
            check(f"SMALL after {what} ({way})", deliver(sides, SMALL, way), [translate(SMALL)])
        collect(problems, what, case)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(SPANLESS))


ACCEPTED_HTTP = [
    ("Content-Type with a parameter", {"Content-Type": "application/x-thrift; charset=utf-8"}, TRACES, None),
    ("Content-Type in upper case", {"Content-Type": "Application/X-Thrift"}, TRACES, None),
    ("the vnd Content-Type with a parameter", {"Content-Type": "application/vnd.apache.thrift.binary; q=1"},
     TRACES, None),
    ("the query Jaeger clients add", X_THRIFT, TRACES + "?format=jaeger.thrift", None),
    ("bytes after the batch (ignored)", X_THRIFT, TRACES, lambda body: body + b"\xff\x00trailing"),
    ("gzip", {**X_THRIFT, "Content-Encoding": "gzip"}, TRACES, gzip.compress),
    ("deflate (zlib-wrapped)", {**X_THRIFT, "Content-Encoding": "deflate"}, TRACES, zlib.compress),
    ("zstd", {**X_THRIFT, "Content-Encoding": "zstd"}, TRACES,
     lambda body: zstandard.ZstdCompressor().compress(body)),
]


def test_http_variants_accepted(sides):
    problems: list = []
    for what, headers, path, change in ACCEPTED_HTTP:
        data = jt.http_body(SMALL)
        data = change(data) if change else data
        collect(problems, what, lambda: check(what, post_all(sides, data, headers, path), [translate(SMALL)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(ACCEPTED_HTTP))


GOOD = jt.http_body(SMALL)


def _body(**changes) -> bytes:
    """SMALL's body with the batch's fields changed."""
    fields = {"process": SMALL.process, "spans": SMALL.spans, **changes}
    return jt.http_body(Batch(**fields))


def _span_body(**changes) -> bytes:
    sp = SMALL.spans[0]
    fields = {k: getattr(sp, k) for k in ("traceIdLow", "traceIdHigh", "spanId", "parentSpanId", "operationName",
                                          "references", "flags", "startTime", "duration", "tags", "logs")}
    return _body(spans=[Span(**{**fields, **changes})])


def _with_tag(tag: Tag) -> bytes:
    return _span_body(tags=[tag])


# (case, body, otelcol's text). otelcol answers with http.Error: the HTML-escaped text and a
# newline, as text/plain; charset=utf-8. The texts are Apache Thrift's (Go) decoding errors.
REQUIRED = "Unable to process request body: Required field "
SPAN_ERROR = "Unable to process request body: *jaeger.Span error reading struct: "
SPAN_REQUIRED = SPAN_ERROR + "Required field "
TAG_REQUIRED = SPAN_ERROR + "*jaeger.Tag error reading struct: Required field "
BAD_BODIES = [
    ("an empty body", b"", "Unable to process request body: *jaeger.Batch field 0 read error: EOF"),
    ("garbage", b"\xff\xff\xff\xff", "Unable to process request body: Unknown data type 255"),
    ("a truncated batch", GOOD[:-3], "Unable to process request body: *jaeger.Span error reading struct: "
     "*jaeger.Tag error reading struct: *jaeger.Tag field 0 read error: EOF"),
    ("a batch without a process", _body(process=None), REQUIRED + "Process is not set"),
    ("a batch without spans", _body(spans=None), REQUIRED + "Spans is not set"),
    ("a process without a service name", _body(process=Process(None)),
     "Unable to process request body: *jaeger.Process error reading struct: Required field ServiceName is not set"),
    ("a process sent as a string", jt.binary(STRUCT, Struct([(1, STRING, "svc"), (2, LIST, TList(STRUCT, []))])),
     REQUIRED + "Process is not set"),  # a field of the wrong type is skipped
    ("a span without an operation name", _span_body(omit=(5,)), SPAN_REQUIRED + "OperationName is not set"),
    ("a span without traceIdHigh", _span_body(omit=(2,)), SPAN_REQUIRED + "TraceIdHigh is not set"),
    ("a span without flags", _span_body(omit=(7,)), SPAN_REQUIRED + "Flags is not set"),
    ("a span without a duration", _span_body(omit=(9,)), SPAN_REQUIRED + "Duration is not set"),
    ("an operation name sent as an i64", _span_body(omit=(5,), extra=((5, I64, 7),)),
     SPAN_REQUIRED + "OperationName is not set"),
    ("a tag without a key", _with_tag(Tag(None, STRING_T, vStr="v")), TAG_REQUIRED + "Key is not set"),
    ("a tag without a type", _with_tag(Tag("k", None, vStr="v")), TAG_REQUIRED + "VType is not set"),
    ("a log without fields", _span_body(logs=[Log(US, None)]),
     SPAN_ERROR + "*jaeger.Log error reading struct: Required field Fields is not set"),
    ("a log without a timestamp", _span_body(logs=[Log(None, [s("k", "v")])]),
     SPAN_ERROR + "*jaeger.Log error reading struct: Required field Timestamp is not set"),
    ("a reference without a span id", _span_body(references=[SpanRef(CHILD_OF, TL, TH, P1, omit=(4,))]),
     SPAN_ERROR + "*jaeger.SpanRef error reading struct: Required field SpanId is not set"),
    ("client stats without failedToEmitSpans", _body(stats=ClientStats(omit=(3,))),
     "Unable to process request body: *jaeger.ClientStats error reading struct: "
     "Required field FailedToEmitSpans is not set"),
    ("a negative list size", jt.binary(STRUCT, Struct([(1, STRUCT, SMALL.process.struct()),
                                                       (2, LIST, TList(STRUCT, [], size=-1))])),
     "Unable to process request body: error reading list begin: negative size: -1"),
    ("more spans announced than sent", jt.binary(STRUCT, Struct([(1, STRUCT, SMALL.process.struct()),
                                                                 (2, LIST, TList(STRUCT, [SMALL.spans[0].struct()],
                                                                                 size=2))])),
     SPAN_REQUIRED + "TraceIdLow is not set"),  # the batch's STOP read as an empty second span,
    ("a string longer than the body", b"\x0c\x00\x01" + b"\x0b\x00\x01" + b"\x00\x00\x03\xe8abc",
     "Unable to process request body: *jaeger.Process error reading struct: error reading field 1: EOF"),
    ("the batch in the compact protocol", jt.compact(STRUCT, SMALL.struct()),
     "Unable to process request body: Unknown data type 28"),
    ("an agent message (emitBatch) in the binary protocol", jt.emit_batch(SMALL, "binary"),
     "Unable to process request body: Unknown data type 128"),
    ("a good span before a bad one", _body(spans=[SMALL.spans[0], Span(TL, TH, P1, omit=(5,))]),
     SPAN_REQUIRED + "OperationName is not set"),
]


def _bad_http(sides: dict, case: str, data: bytes, headers: dict, otelcol_text, path: str = TRACES,
              method: str = "POST", status: int = 400):
    """`data` answered `status` with a reason by every side, nothing of it forwarded: the
    next request forwarded is the good one sent after it."""
    answers = {name: side.post(data, headers, path, method) for name, side in sides.items()}
    forwarded(sides, f"the request it should have refused ({case})",  # taken after all
              {name: r.status_code == 202 for name, r in answers.items()})
    shown = {name: (r.status_code, r.text) for name, r in answers.items()}
    assert all(r.status_code == status for r in answers.values()), f"not {status}: {shown}"
    if status == 400:
        assert all(r.text.strip() for r in answers.values()), f"a 400 without a reason: {shown}"
    if "otelcol" in answers and otelcol_text is not None:
        want = otelcol_text + "\n" if otelcol_text else ""
        assert answers["otelcol"].text == want, f"otelcol's text changed: {shown}"
        if want:
            assert answers["otelcol"].headers.get("Content-Type") == "text/plain; charset=utf-8", shown
    check(f"the good request after {case}", post_all(sides, GOOD, X_THRIFT), [translate(SMALL)])


def test_bad_bodies_refused_and_nothing_forwarded(sides):
    problems: list = []
    for case, data, otelcol_text in BAD_BODIES:
        collect(problems, case, _bad_http, sides, case, data, X_THRIFT, otelcol_text)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD_BODIES))


BAD_HEADERS = [
    ("no Content-Type", {}, "Cannot parse content type: mime: no media type"),
    ("application/json", {"Content-Type": "application/json"}, "Unsupported content type: application/json"),
    ("text/plain", {"Content-Type": "text/plain"}, "Unsupported content type: text/plain"),
    ("application/thrift", {"Content-Type": "application/thrift"}, "Unsupported content type: application/thrift"),
    ("the compact protocol's type", {"Content-Type": "application/vnd.apache.thrift.compact"},
     "Unsupported content type: application/vnd.apache.thrift.compact"),
    ("a malformed parameter", {"Content-Type": "application/x-thrift; charset"},
     "Cannot parse content type: mime: invalid media parameter"),
    ("a malformed type", {"Content-Type": "/x-thrift"}, "Cannot parse content type: mime: no media type"),
    # confighttp's decompression, before the receiver.
    ("gzip declared, the body plain", {**X_THRIFT, "Content-Encoding": "gzip"}, "gzip: invalid header"),
    ("an unsupported Content-Encoding", {**X_THRIFT, "Content-Encoding": "br"}, "unsupported Content-Encoding: br"),
]


def test_bad_headers_refused(sides):
    problems: list = []
    for case, headers, otelcol_text in BAD_HEADERS:
        collect(problems, case, _bad_http, sides, case, GOOD, headers, otelcol_text)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD_HEADERS))


NOT_FOUND = "404 page not found"
# (case, method, path, status, otelcol's text: gorilla/mux's, a 405 has none)
BAD_ROUTES = [
    ("GET /api/traces", "GET", TRACES, 405, ""),
    ("PUT /api/traces", "PUT", TRACES, 405, ""),
    ("a trailing slash", "POST", TRACES + "/", 404, NOT_FOUND),
    ("/api/v2/spans", "POST", "/api/v2/spans", 404, NOT_FOUND),
    ("/", "POST", "/", 404, NOT_FOUND),
]


def test_other_paths_and_methods(sides):
    problems: list = []
    for case, method, path, status, otelcol_text in BAD_ROUTES:
        collect(problems, case, _bad_http, sides, case, GOOD, X_THRIFT, otelcol_text, path, method, status)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD_ROUTES))


def _args(*fields) -> Struct:
    return Struct(list(fields))


SMALL_ARGS = jt.emit_batch_args(SMALL)

# (case, protocol, packet): a packet that forwards nothing.
BAD_PACKETS = [
    (f"{proto}: {case}", proto, packet) for proto in ("compact", "binary") for case, packet in [
        ("an empty packet", b""),
        ("garbage", b"\xff\xfe\xfd\xfc\xfb"),
        ("a truncated message", jt.emit_batch(SMALL, proto)[:-4]),
        ("the other protocol's message", jt.emit_batch(SMALL, "binary" if proto == "compact" else "compact")),
        ("an unknown method", (jt.compact_message if proto == "compact" else jt.binary_message)(
            "emitBatches", SMALL_ARGS)),
        ("a batch without spans", jt.emit_batch(Batch(SMALL.process, None), proto)),
        ("a span without an operation name",
         jt.emit_batch(Batch(SMALL.process, [Span(TL, TH, P1, omit=(5,))]), proto)),
        ("an HTTP body (a bare Batch)",
         jt.http_body(SMALL) if proto == "binary" else jt.compact(STRUCT, SMALL.struct())),
        ("an emitBatch without a batch", jt.emit_batch(None, proto)),
        ("an emitBatch whose batch is an i32", (jt.compact_message if proto == "compact" else jt.binary_message)(
            "emitBatch", _args((1, I32, 5)))),
    ]
] + [
    ("binary: a bad version", "binary", b"\x80\x02\x00\x04" + jt.emit_batch(SMALL, "binary")[4:]),
    ("compact: a bad protocol id", "compact", b"\x81" + jt.emit_batch(SMALL, "compact")[1:]),
    ("compact: a bad version", "compact", b"\x82\x82" + jt.emit_batch(SMALL, "compact")[2:]),
]


def test_bad_packets_forward_nothing(sides):
    """Each bad packet, then a good one on the same port: only the good one is forwarded."""
    problems: list = []
    for case, proto, packet in BAD_PACKETS:
        def one():
            for side in sides.values():
                side.send(proto, packet)
            check(f"the good packet after {case}", send_all(sides, proto, jt.emit_batch(SMALL, proto)),
                  [translate(SMALL)])
        collect(problems, case, one)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD_PACKETS))


ACCEPTED_PACKETS = [
    ("binary: the old message form (no version word)", "binary", jt.emit_batch(SMALL, "binary", strict=False)),
    ("binary: a CALL, not ONEWAY", "binary", jt.emit_batch(SMALL, "binary", mtype=jt.CALL)),
    ("compact: a CALL, not ONEWAY", "compact", jt.emit_batch(SMALL, "compact", mtype=jt.CALL)),
    ("binary: a sequence id", "binary", jt.emit_batch(SMALL, "binary", seqid=-7)),
    ("compact: a sequence id", "compact", jt.emit_batch(SMALL, "compact", seqid=123456)),
    ("binary: bytes after the message", "binary", jt.emit_batch(SMALL, "binary") + b"\xff\x00"),
    ("compact: bytes after the message", "compact", jt.emit_batch(SMALL, "compact") + b"\xff\x00"),
]


def test_packet_variants_accepted(sides):
    problems: list = []
    for case, proto, packet in ACCEPTED_PACKETS:
        collect(problems, case, lambda: check(case, send_all(sides, proto, packet), [translate(SMALL)]))
    collect(problems, "after the last case", settle, sides)
    report(problems, len(ACCEPTED_PACKETS))


TRANSPORTS = ("collector_http", "udp_thrift_compact", "udp_thrift_binary")


def _counts(expo) -> dict:
    return {(c, t): total(expo, c, receiver="jaeger", transport=t) for c in COUNTERS for t in TRANSPORTS}


def test_receiver_counters(sides):
    """Accepted spans by transport (every span of the batch); a refused request or packet,
    and an emitBatch without a batch, count nowhere."""
    before = {name: _counts(side.telemetry()) for name, side in sides.items()}
    post_all(sides, jt.http_body(PLAIN), X_THRIFT)
    post_all(sides, jt.http_body(SMALL), VND_THRIFT)
    send_all(sides, "compact", jt.emit_batch(PLAIN, "compact"))
    send_all(sides, "binary", jt.emit_batch(PLAIN, "binary"))
    send_all(sides, "binary", jt.emit_batch(SMALL, "binary"))
    for side in sides.values():
        assert side.post(GOOD[:-3], X_THRIFT).status_code == 400
        assert side.post(GOOD, {"Content-Type": "application/json"}).status_code == 400
        side.send("compact", jt.emit_batch(SMALL, "compact")[:-4])
        side.send("binary", b"garbage")
        side.send("compact", jt.emit_batch(None, "compact"))
    settle(sides)
    want = {key: 0 for key in before[next(iter(sides))]}
    want.update({
        ("otelcol_receiver_accepted_spans", "collector_http"): len(PLAIN.spans) + len(SMALL.spans),
        ("otelcol_receiver_accepted_spans", "udp_thrift_compact"): len(PLAIN.spans),
        ("otelcol_receiver_accepted_spans", "udp_thrift_binary"): len(PLAIN.spans) + len(SMALL.spans),
    })
    assert_counts_moved(sides, _counts, before, want)


@receiver_sides.TENANT_CASES
def test_tenant_header(request, procs, tmp_path, include_metadata, expected):
    """Three Thrift batches over HTTP (two tenants' and one without the header), each with
    spans of its own, to `thrift_http` with `include_metadata` true or false: the span names
    under each value of the header the exporter sent."""
    config = receiver_sides.tenant_config(CONFIG, [("receivers", "jaeger", "protocols", "thrift_http")],
                                          include_metadata)
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        for i, (tenant, names) in enumerate(receiver_sides.TENANT_CLIENTS):
            answers = _post_tenant(sides, i, tenant, names)
            assert all(a[0] == 202 for a in answers.values()), (tenant, answers)
        receiver_sides.check_tenants(sides, expected)


def _post_tenant(sides: dict, i: int, tenant, names) -> dict:
    """Client `i` of receiver_sides.TENANT_CLIENTS: a Thrift batch with a span per name,
    posted to every side's `thrift_http`; by side, (status, text)."""
    batch = Batch(Process("tenants"), [_ok_span(0x0200000000000000 + 16 * i + j, name)
                                       for j, name in enumerate(names)])
    headers = {**X_THRIFT, **receiver_sides.tenant_header(tenant)}
    answers = {name: side.post(jt.http_body(batch), headers) for name, side in sides.items()}
    return {name: (r.status_code, r.text) for name, r in answers.items()}


def test_tenant_over_the_batch_cardinality_limit(request, procs, tmp_path):
    """Two tenants' batches over HTTP into a `batch` that keeps one tenant
    (receiver_sides.tenant_batch_config): the second's is refused with a permanent error,
    which otelcol's `thrift_http` answers 500 as it does every error of the pipeline (it
    does not tell a permanent one apart)."""
    config = receiver_sides.tenant_batch_config(CONFIG, [("receivers", "jaeger", "protocols", "thrift_http")])
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        answers = [_post_tenant(sides, i, tenant, names)
                   for i, (tenant, names) in enumerate(receiver_sides.TENANTS_OVER_THE_LIMIT)]
        receiver_sides.check_over_the_limit(
            sides, answers, (202, ""), 500,
            "Cannot submit Jaeger batch: Permanent error: too many batcher metadata-value combinations\n")
