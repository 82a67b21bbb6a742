"""Parity of the `zipkin` receiver: Zipkin v2 spans (JSON and protobuf, over HTTP) taken and
translated to OTLP as otelcol-contrib's zipkinreceiver (v0.161.0, with the translator of
pkg/translator/zipkin/zipkinv2) takes and translates them.

Zipkin is how older tracers (Brave, zipkin-go, the OpenTelemetry SDKs' Zipkin exporters, Envoy,
Istio's sidecars) send spans; the receiver is their way into the OTLP pipeline, so what comes
out of it (which resource a span lands under, its kind and status, what is an attribute,
which tags are consumed) decides what Tempo and the RED dashboards show for those services.

One collector pair (or otelcol alone, see below) runs the receiver twice into one traces
pipeline whose `otlp` exporter writes to an OTLP sink: `zipkin` with its defaults, and
`zipkin/typed` with `parse_string_tags: true`. Every request is sent once both collectors
forwarded the one before, so that each Zipkin request is one forwarded OTLP request.

  - A real client: the OpenTelemetry Python SDK's Zipkin JSON exporter, three services (one
    TracerProvider each, with its own resource), parents across services, every span kind,
    an error status with a description, an OK status, events with attributes, links (which
    that exporter does not send), attributes of several types, two tracers in one service.
    What arrives is compared with what the SDK recorded, through the rules the exporter and
    the receiver apply together (written out in `sdk_expected`).
  - Hand-written v2 JSON: a missing or zero timestamp, 128- and 64-bit trace ids, upper-case
    ids, a parentId equal to the id, resource tags (taken from each service's first span
    only), scope tags (`otel.scope.*` over `otel.library.*`), `span.kind` with and without a
    `kind`, `error` that is and is not "true", every `otel.status_code` spelling,
    `w3c.tracestate`, `otlp.link.N` (a gap ends them), local and remote endpoints (ipv4,
    ipv6, an IPv4-mapped ipv6, ports), annotations plain and in the `name|{json}|dropped`
    form (JSON attributes that are null, hold `|`, numbers beyond 2^53), spans without a
    local service (under a resource without attributes, sorted as otelcol's
    "OTLPResourceNoServiceName"), `otlp.service.name.source`, a null tag value.
  - The same spans as protobuf (`Content-Type: application/x-protobuf`, encoded here by
    hand), where a timestamp of 0 is a time (no absentField attribute), kinds are enum values
    (an unknown one reads as none) and an annotation may be at 0.
  - Tags typed by `zipkin/typed` (ints clamped to int64; Go's regexps: ASCII digits, no
    newline before the end), over JSON and protobuf, and the same untyped by `zipkin`.
  - Ordinary spans gzip, deflate, zlib and zstd compressed, on other paths than
    /api/v2/spans (all of them are v2), and requests without spans (taken, nothing
    forwarded).
  - Bad input, each answered 400 by both and nothing of it forwarded, and a good request
    taken after it.
  - The receiver's own counters: `otelcol_receiver_{accepted,refused,failed}_spans` by
    receiver and transport (`http_v2_json`, `http_v2_proto`); a request refused as
    undecodable counts nowhere.
  - The tenant header (`test_tenant_header`, on collectors of its own, see
    receiver_sides.tenant_config): with `include_metadata` the receiver keeps each request's
    headers, so `headers_setter` sends each client's `X-Scope-OrgID` on with its spans
    (`anon` without one); without it, every span goes under `anon`. Compared: which span
    names arrived under which value of the header. Over a `batch` that keeps one tenant
    (`test_tenant_over_the_batch_cardinality_limit`), the second tenant's request is refused
    with a permanent error: 400 (otelcol's body `"Bad Request"`), and none of it arrives.

What each collector forwards is compared with a model of otelcol's translation written here
from its source (`translate`), and with what the other collector forwards: exactly, after
two normalisations. The spans of one scope are compared in span-id order: otelcol sorts the
Zipkin spans by service and scope name with Go's unstable sort, which may reorder spans of
equal service and scope. Attributes are compared in key order: otelcol fills them from Go
maps. (Also: an empty resource, scope or status is the same whether or not the message is
present on the wire, and a forwarded request without resource_spans, which otelcol's exporter
sends for a Zipkin request without spans, is no request.) 400 answers are compared by status; otelcol's error texts are pinned
below (`BAD`) for the record, Redline's only have to be there.

Not compared, on purpose: Zipkin v1 (`api/v1/spans`, JSON and Thrift), which otelcol
translates and Redline refuses with 400 (`test_zipkin_v1_is_refused_by_redline` checks only
Redline); spans whose trace id is all zero, which otelcol forwards and Redline drops (no
request here has one).

`ZIPKIN_PARITY_SIDES=otelcol` (or `redline`) runs one collector alone, to check the model
against otelcol by itself (every comparison with the model still runs; those between the
collectors and the one-sided checks do not). The default, and what CI runs, is both.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import struct
import zlib

import pytest
import requests
import zstandard
from opentelemetry import trace as trace_api
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import helpers
import receiver_sides
from receiver_sides import (COUNTERS, Side as ReceiverSide, assert_counts_moved, collect, forwarded, report, settle,
                            sides_fixture, start_collector)
from test_parity_self_telemetry import total

SIDES_ENV = "ZIPKIN_PARITY_SIDES"
V2 = "/api/v2/spans"
JSON_CT = {"Content-Type": "application/json"}
PROTO_CT = {"Content-Type": "application/x-protobuf"}

CONFIG = """\
receivers:
  zipkin:
    endpoint: 127.0.0.1:9411
  zipkin/typed:
    endpoint: 127.0.0.1:9412
    parse_string_tags: true
exporters:
  otlp:
    endpoint: tempo:4317
    tls:
      insecure: true
service:
  pipelines:
    traces:
      receivers: [zipkin, zipkin/typed]
      exporters: [otlp]
"""
RECEIVERS = ("zipkin", "zipkin/typed")


# ---------------------------------------------------------------- the collectors


class Side(ReceiverSide):
    """One collector with the zipkin receivers on ports of their own and its own sink."""

    # otelcol's exporter sends an empty request (no resource_spans) on for a Zipkin request
    # without spans: it carries nothing, so it is no request.
    skip_empty = True
    forward_wait = 15

    def url(self, receiver: str, path: str) -> str:
        return self.collector.url(receiver, path)

    def post(self, receiver: str, body: bytes, headers: dict, path: str = V2,
             method: str = "POST") -> requests.Response:
        return requests.request(method, self.url(receiver, path), data=body, headers=headers, timeout=15)


def _start(name: str, argv: list, procs, workdir, config: str = CONFIG, http_sink=None) -> Side:
    def configure(cfg, ports, collector):
        if collector is None:
            for rid in RECEIVERS:
                ports[rid] = helpers.free_port()
                cfg["receivers"][rid]["endpoint"] = f"127.0.0.1:{ports[rid]}"

    collector, sink, _ = start_collector(name, argv, procs, workdir, config, configure, http_sink)
    return Side(name, collector, sink)


sides = sides_fixture(SIDES_ENV, _start)


def exchange(sides: dict, body: bytes, headers: dict, receiver: str = "zipkin", path: str = V2) -> dict:
    """`body` posted to every side, each answering 202 (and nothing more) and forwarding one
    request: that request, by side (in a list)."""
    answers = {name: s.post(receiver, body, headers, path) for name, s in sides.items()}
    got = forwarded(sides, "the request it accepted", {name: r.status_code == 202 for name, r in answers.items()})
    statuses = {name: (r.status_code, r.text) for name, r in answers.items()}
    assert all(r.status_code == 202 for r in answers.values()), f"not accepted by all: {statuses}"
    assert all(r.content == b"" for r in answers.values()), f"202 with a body: {statuses}"
    return got


def check(what: str, got: dict, want: list):
    """Each side's forwarded requests equal the model's `want`, and each other, with the
    spans of each scope in span-id order and every attribute list in key order (see the
    module's docstring)."""
    receiver_sides.check(what, got, want, sort=True)


# ---------------------------------------------------------------- otelcol's translation, as a model

UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = range(6)  # OTLP span kinds
STATUS_UNSET, _STATUS_OK, STATUS_ERROR = range(3)
NO_SERVICE = "OTLPResourceNoServiceName"  # otelcol's sort key for spans without a local service
# The tags that move to the resource: getResourceSemanticConventionAttributeNames
# (zipkinv2/to_translator.go) as strings, and the three opencensus ones of nonSpanAttributes.
RESOURCE_KEYS = frozenset("""
    cloud.provider cloud.account.id cloud.region cloud.availability_zone cloud.platform
    aws.ecs.container.arn aws.ecs.cluster.arn aws.ecs.launchtype aws.ecs.task.arn
    aws.ecs.task.family aws.ecs.task.revision aws.eks.cluster.arn aws.log.group.names
    aws.log.group.arns aws.log.stream.names aws.log.stream.arns container.name container.id
    container.runtime container.image.name container.image.tag deployment.environment device.id
    device.model.identifier device.model.name device.manufacturer faas.name faas.id
    cloud.resource_id faas.version faas.instance faas.max_memory host.id host.name host.type
    host.arch host.image.name host.image.id host.image.version k8s.cluster.name k8s.node.name
    k8s.node.uid k8s.namespace.name k8s.pod.uid k8s.pod.name k8s.container.name
    k8s.container.restart_count k8s.replicaset.uid k8s.replicaset.name k8s.deployment.uid
    k8s.deployment.name k8s.statefulset.uid k8s.statefulset.name k8s.daemonset.uid
    k8s.daemonset.name k8s.job.uid k8s.job.name k8s.cronjob.uid k8s.cronjob.name os.type
    os.description os.name os.version process.pid process.executable.name
    process.executable.path process.command process.command_line process.command_args
    process.owner process.runtime.name process.runtime.version process.runtime.description
    service.name service.namespace service.instance.id service.version telemetry.sdk.name
    telemetry.sdk.language telemetry.sdk.version telemetry.auto.version webengine.name
    webengine.version webengine.description
    opencensus.starttime opencensus.exporterversion opencensus.resourcetype
""".split())
SCOPE_KEYS = ("otel.library.name", "otel.scope.name", "otel.library.version", "otel.scope.version")
SERVICE_NAME_SOURCE = "otlp.service.name.source"
# nonSpanAttributes: tags that never become span attributes.
NON_SPAN = RESOURCE_KEYS | set(SCOPE_KEYS) | {SERVICE_NAME_SOURCE}
ZIPKIN_KINDS = {"CLIENT": CLIENT, "SERVER": SERVER, "PRODUCER": PRODUCER, "CONSUMER": CONSUMER}
PROTO_KINDS = {"CLIENT": 1, "SERVER": 2, "PRODUCER": 3, "CONSUMER": 4}  # zipkin.proto3.Span.Kind
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2, "Unset": 0, "Ok": 1, "Error": 2}
ABSENT_START = "otel.zipkin.absentField.startTime"
INT64 = (-(1 << 63), (1 << 63) - 1)


def _tags(span: dict) -> dict:
    # A JSON null tag value decodes to "" (Go: the map's zero value).
    return {k: "" if v is None else v for k, v in (span.get("tags") or {}).items()}


def service_of(span: dict) -> str:
    return (span.get("localEndpoint") or {}).get("serviceName") or NO_SERVICE


def scope_of(span: dict) -> str:
    tags = _tags(span)
    return tags["otel.scope.name"] if "otel.scope.name" in tags else tags.get("otel.library.name", "")


def trace_id(h: str) -> bytes:
    """zipkin-go's TraceIDFromHex: up to 16 hex digits are the low half."""
    high, low = (int(h[:-16], 16), int(h[-16:], 16)) if len(h) > 16 else (0, int(h, 16))
    return _id_bytes(high.to_bytes(8, "big") + low.to_bytes(8, "big"))


def span_id(h) -> bytes:
    return _id_bytes(int(h or "0", 16).to_bytes(8, "big"))


def _id_bytes(b: bytes) -> bytes:
    return b if any(b) else b""  # pdata leaves an all-zero id out


def go_ip(text: str) -> str:
    """net.IP.String of what net.ParseIP made of `text`: an IPv4-mapped address is dotted."""
    a = ipaddress.ip_address(text)
    if a.version == 6 and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def typed(value: str):
    """parse_string_tags: zipkin.DetermineValueType (Go regexps: ASCII digits, `$` only at
    the very end), then strconv (an int out of range is clamped)."""
    if re.fullmatch(r"-?[0-9]+", value):
        return min(max(int(value), INT64[0]), INT64[1])
    if re.fullmatch(r"-?[0-9]+\.[0-9]+", value):
        return float(value)
    if value in ("true", "false"):
        return value == "true"
    return value


def _put(attrs, key: str, value):
    kv = attrs.add(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value


def _put_all(attrs, values: dict):
    for k, v in values.items():
        _put(attrs, k, v)


def _json_attrs(text: str) -> dict:
    """jsonMapToAttributeMap: strings, bools, numbers (as float64, an int when whole);
    anything else left out."""
    out = {}
    for k, v in (json.loads(text) or {}).items():
        if isinstance(v, bool) or isinstance(v, str):
            out[k] = v
        elif isinstance(v, (int, float)):
            f = float(v)
            out[k] = int(f) if f.is_integer() else f
    return out


def _split_form(value: str, head: int) -> tuple:
    """The `|`-separated form of annotations (head 1) and otlp.link.N (head 3): the head
    parts, the JSON attributes (which may hold `|`) and the dropped count."""
    parts = value.split("|")
    return parts[:head], "|".join(parts[head:-1]), int(parts[-1])


def translate(spans: list, parse_string_tags: bool = False, proto: bool = False):
    """otelcol's ToTraces, for `spans` as written in Zipkin v2 JSON (`proto`: sent as
    protobuf by `encode_proto`). One ExportTraceServiceRequest."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    prev_service, prev_scope, rs, ss = "", "", None, None
    # Go's sort.Sort is unstable; spans of one service and scope are compared in id order.
    for s in sorted(spans, key=lambda s: (service_of(s).encode(), scope_of(s).encode())):
        tags = _tags(s)
        service = service_of(s)
        if service != prev_service:
            prev_service = service
            rs = req.resource_spans.add()
            _put_all(rs.resource.attributes, _resource(tags, service))
            prev_scope, ss = scope_of(s), None
        if ss is None or scope_of(s) != prev_scope:
            prev_scope = scope_of(s)
            ss = rs.scope_spans.add()
            if prev_scope:
                for key in SCOPE_KEYS:  # otel.scope.* after otel.library.*: they win
                    if key in tags:
                        setattr(ss.scope, key.rsplit(".", 1)[1], tags.pop(key))
        _span(ss.spans.add(), s, tags, parse_string_tags, proto)
    return req


def _resource(tags: dict, service: str) -> dict:
    """populateResourceFromZipkinSpan, for the first span of each service."""
    if service == NO_SERVICE:
        return {}
    if not tags:
        return {"service.name": service}
    attrs = {tags.pop(SERVICE_NAME_SOURCE, "") or "service.name": service}
    for key in sorted(RESOURCE_KEYS & set(tags)):
        attrs[key] = tags.pop(key)
    return attrs


def _span(sp, s: dict, tags: dict, parse_string_tags: bool, proto: bool):
    sp.trace_id = trace_id(s["traceId"])
    sp.span_id = span_id(s["id"])
    if "w3c.tracestate" in tags:
        sp.trace_state = tags.pop("w3c.tracestate")
    if s.get("parentId") is not None and int(s["parentId"] or "0", 16) != int(s["id"], 16):
        sp.parent_span_id = span_id(s["parentId"])
    sp.name = s.get("name", "")
    kind = s.get("kind")
    if proto:  # what the enum value reads as: a name, or the number of an unknown value
        kind = {v: k for k, v in PROTO_KINDS.items()}.get(encode_kind(kind))
    if kind in ZIPKIN_KINDS:
        sp.kind = ZIPKIN_KINDS[kind]
    elif "span.kind" in tags:
        sp.kind = INTERNAL if tags.pop("span.kind") == "internal" else UNSPECIFIED
    sp.status.SetInParent()
    if "otel.status_code" in tags:
        sp.status.code = STATUS_CODES.get(tags.pop("otel.status_code"), STATUS_UNSET)
        if "otel.status_description" in tags:
            sp.status.message = tags.pop("otel.status_description")
    if "error" in tags:
        sp.status.code = STATUS_ERROR
        if tags["error"] == "true":
            del tags["error"]
    for i in range(128):
        value = tags.pop(f"otlp.link.{i}", None)
        if value is None:
            break
        if len(value.split("|")) < 5:
            continue
        (tid, sid, state), attrs, dropped = _split_form(value, 3)
        link = sp.links.add(trace_id=_id_bytes(bytes.fromhex(tid.strip('"'))),
                            span_id=_id_bytes(bytes.fromhex(sid.strip('"'))), trace_state=state,
                            dropped_attributes_count=dropped)
        _put_all(link.attributes, _json_attrs(attrs))
    attrs = {k: typed(v) if parse_string_tags else v for k, v in tags.items() if k not in NON_SPAN}
    local, remote = s.get("localEndpoint") or {}, s.get("remoteEndpoint") or {}
    for field in ("ipv4", "ipv6"):  # both: the ipv6 one is left
        if local.get(field):
            attrs["network.local.address"] = go_ip(local[field])
    if local.get("port"):
        attrs["net.host.port"] = local["port"]
    if remote.get("serviceName"):
        attrs["service.peer.name"] = remote["serviceName"]
    for field in ("ipv4", "ipv6"):
        if remote.get(field):
            attrs["network.peer.address"] = go_ip(remote[field])
    if remote.get("port"):
        attrs["net.peer.port"] = remote["port"]
    start, duration = (s.get("timestamp") or 0) * 1000, (s.get("duration") or 0) * 1000
    # JSON: a timestamp missing or 0 is no timestamp; protobuf: 0 is the epoch.
    if start == 0 and not proto:
        attrs[ABSENT_START] = True
    sp.start_time_unix_nano, sp.end_time_unix_nano = start, start + duration
    _put_all(sp.attributes, attrs)
    for a in s.get("annotations") or []:
        ev = sp.events.add(time_unix_nano=a["timestamp"] * 1000, name=a["value"].split("|")[0])
        if len(a["value"].split("|")) >= 3:
            _, ev_attrs, ev.dropped_attributes_count = _split_form(a["value"], 1)
            _put_all(ev.attributes, _json_attrs(ev_attrs))


# ---------------------------------------------------------------- Zipkin protobuf, by hand


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64: ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _bytes_field(number: int, data: bytes) -> bytes:
    return _field(number, 2, _varint(len(data)) + data)


def _str_field(number: int, text: str) -> bytes:
    return _bytes_field(number, text.encode()) if text else b""


def _fixed64(number: int, value: int) -> bytes:
    return _field(number, 1, struct.pack("<Q", value)) if value else b""


def encode_kind(kind) -> int:
    return kind if isinstance(kind, int) else PROTO_KINDS.get(kind, 0)


def _endpoint(ep: dict) -> bytes:
    out = _str_field(1, ep.get("serviceName", ""))
    for number, field in ((2, "ipv4"), (3, "ipv6")):
        if ep.get(field):
            out += _bytes_field(number, ipaddress.ip_address(ep[field]).packed)
    if ep.get("port"):
        out += _field(4, 0, _varint(ep["port"]))
    return out


def encode_span(s: dict, trace_id_bytes: bytes | None = None) -> bytes:
    """zipkin.proto3.Span of a span written as v2 JSON: ids as bytes (trace id 16 of them),
    kind as its enum value, tags as a map, JSON null tags as ""."""
    out = _bytes_field(1, trace_id_bytes if trace_id_bytes is not None
                       else int(s["traceId"], 16).to_bytes(16, "big"))
    if s.get("parentId"):
        out += _bytes_field(2, int(s["parentId"], 16).to_bytes(8, "big"))
    if s.get("id"):
        out += _bytes_field(3, int(s["id"], 16).to_bytes(8, "big"))
    if encode_kind(s.get("kind")):
        out += _field(4, 0, _varint(encode_kind(s.get("kind"))))
    out += _str_field(5, s.get("name", ""))
    out += _fixed64(6, s.get("timestamp") or 0)
    if s.get("duration"):
        out += _field(7, 0, _varint(s["duration"]))
    for number, key in ((8, "localEndpoint"), (9, "remoteEndpoint")):
        if key in s:
            out += _bytes_field(number, _endpoint(s[key]))
    for a in s.get("annotations") or []:
        out += _bytes_field(10, _fixed64(1, a["timestamp"]) + _str_field(2, a["value"]))
    for k, v in _tags(s).items():
        out += _bytes_field(11, _str_field(1, k) + _str_field(2, v))
    if s.get("debug"):
        out += _field(12, 0, _varint(1))
    if s.get("shared"):
        out += _field(13, 0, _varint(1))
    return out


def encode_proto(spans: list) -> bytes:
    """zipkin.proto3.ListOfSpans."""
    return b"".join(_bytes_field(1, encode_span(s)) for s in spans)


# ---------------------------------------------------------------- hand-written traffic

US = 1_700_000_000_000_000  # a Zipkin timestamp: microseconds
T128 = "5b8efff798038103d269b633813fc60c"
T64 = "463ac35c9f6413ad"
T_UPPER = "4BF92F3577B34DA6A3CE929D0E0E4736"
LINK_T, LINK_S = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"

EDGE = [
    # alpha's second scope (otel.scope.name): a 64-bit trace id, span.kind without kind,
    # error not "true" (kept) over STATUS_CODE_OK, a resource tag that is not the first
    # span's (dropped), tracestate, links (one too short, one with quoted ids and a `|` in
    # its JSON, one after a gap that stays a tag), a remote endpoint with ipv6.
    {"traceId": T64, "id": "a000000000000002", "parentId": "a000000000000001", "name": "cache lookup",
     "timestamp": US + 1000, "duration": 250, "localEndpoint": {"serviceName": "alpha"},
     "remoteEndpoint": {"serviceName": "redis", "ipv6": "2001:0db8:0000:0000:0000:0000:0000:0001", "port": 6379},
     "tags": {"span.kind": "internal", "otel.scope.name": "lib.b", "otel.scope.version": "2.0",
              "host.name": "not-the-first-span", "otel.status_code": "STATUS_CODE_OK", "error": "false",
              "w3c.tracestate": "vendor=a,other=b",
              "otlp.link.0": f'{LINK_T}|{LINK_S}|ls=1|{{"lk":"v","n":7,"r":0.5,"ok":true}}|2',
              "otlp.link.1": "too|few",
              "otlp.link.2": f'"{LINK_T}"|"{LINK_S}"||{{"p":"a|b"}}|0',
              "otlp.link.4": "after a gap: a tag"}},
    # gamma: otlp.service.name.source names the resource attribute of the service name, and
    # a service.name tag is a resource attribute of its own; span.kind "internal".
    {"traceId": T128, "id": "e000000000000009", "name": "renamed", "timestamp": US + 7000, "duration": 7,
     "localEndpoint": {"serviceName": "gamma"},
     "tags": {SERVICE_NAME_SOURCE: "app.name", "service.name": "gamma-from-tag", "span.kind": "internal"}},
    # beta's second scope: otel.scope.* over otel.library.*, a timestamp of 0, upper-case ids.
    {"traceId": T_UPPER, "id": "B000000000000004", "name": "publish", "kind": "PRODUCER", "timestamp": 0,
     "duration": 10, "localEndpoint": {"serviceName": "beta", "port": 9090},
     "tags": {"otel.library.name": "old.lib", "otel.scope.name": "new.lib", "otel.library.version": "0.1",
              "otel.scope.version": "0.2", "messaging.system": "kafka"}},
    # No local service (an endpoint with only an address and a port): a resource without
    # attributes, first in order; its resource tags are dropped. A lower-case kind is no
    # kind, span.kind "consumer" is none either; a description without a code is a tag.
    {"traceId": T128, "id": "c000000000000006", "parentId": "", "kind": "client", "timestamp": US + 4000,
     "duration": 1, "localEndpoint": {"ipv4": "192.168.1.2", "port": 9000},
     "tags": {"host.name": "dropped", "otel.status_description": "no code: a tag", "span.kind": "consumer"}},
    # alpha's first span (no scope): its resource tags make alpha's resource. No timestamp,
    # parentId equal to the id, a status code with a description, annotations in every form.
    {"traceId": T128, "id": "a000000000000001", "parentId": "a000000000000001", "name": "GET /cart",
     "kind": "SERVER", "duration": 1500, "debug": True,
     "localEndpoint": {"serviceName": "alpha", "ipv4": "10.0.0.1", "port": 8080},
     "tags": {"host.name": "alpha-host", "k8s.pod.name": "alpha-pod-1", "telemetry.sdk.language": "go",
              "service.version": "1.4.2", "faas.id": "fn-1", "opencensus.exporterversion": "0.1",
              "otel.status_code": "STATUS_CODE_ERROR", "otel.status_description": "upstream failed",
              "http.status_code": "503", "user.id": "42", "nullable": None},
     "annotations": [
         {"timestamp": US + 100, "value": "cache miss"},
         {"timestamp": US + 200, "value": 'retry|{"attempt":2,"backoff":1.5,"final":false,"who":"db",'
                                          '"whole":3.0,"e":1e3,"big":9007199254740993,"nested":{"x":1},'
                                          '"list":[1],"nil":null}|3'},
         {"timestamp": US + 300, "value": "two|parts"},
         {"timestamp": US + 400, "value": 'piped|{"k":"x|y"}|1'},
         {"timestamp": US + 500, "value": "nothing|null|0"}]},
    # Zeta: upper case, so after "OTLPResourceNoServiceName" and before "alpha". A scope
    # version without a name is no scope; number-like tags stay strings without
    # parse_string_tags.
    {"traceId": T128, "id": "d000000000000008", "name": "upper-case service", "kind": "SERVER",
     "timestamp": US + 6000, "duration": 5, "localEndpoint": {"serviceName": "Zeta"},
     "tags": {"otel.scope.version": "9.9", "count": "42", "ratio": "0.5", "flag": "true"}},
    # beta's first span: a resource tag; error "true" is consumed; span.kind beside a kind
    # stays a tag.
    {"traceId": T_UPPER, "id": "b000000000000005", "parentId": "B000000000000004", "name": "consume",
     "kind": "CONSUMER", "timestamp": US + 3000, "duration": 40, "localEndpoint": {"serviceName": "beta"},
     "tags": {"service.namespace": "shop", "error": "true", "span.kind": "producer"}},
    # alpha's otel.library.name scope: both local addresses (ipv6 is kept), a remote ipv4 and
    # port, the legacy "Error" code, span.kind beside a kind.
    {"traceId": T128, "id": "a000000000000003", "parentId": "a000000000000001", "name": "query",
     "kind": "CLIENT", "timestamp": US + 2000, "duration": 3000,
     "localEndpoint": {"serviceName": "alpha", "ipv4": "10.0.0.1", "ipv6": "fe80::1"},
     "remoteEndpoint": {"ipv4": "192.168.0.10", "port": 5432},
     "tags": {"otel.library.name": "lib.a", "otel.library.version": "1.0", "span.kind": "server",
              "otel.status_code": "Error", "otel.status_description": "timeout", "db.statement": "SELECT 1"}},
    # An empty local service name; no duration; a remote IPv4-mapped ipv6 (dotted in otelcol).
    {"traceId": T64, "id": "c000000000000007", "name": "orphan", "timestamp": US + 5000,
     "localEndpoint": {"serviceName": ""},
     "remoteEndpoint": {"serviceName": "upstream", "ipv6": "::ffff:10.1.2.3"}},
]

# Only protobuf can say these: an unknown kind value (read as no kind, so span.kind
# applies), timestamps of 0 on the span and an annotation, a local endpoint that is present
# and empty (no service).
PROTO_ONLY = [
    {"traceId": T128, "id": "9000000000000001", "name": "proto only", "kind": 7, "timestamp": 0,
     "duration": 20, "localEndpoint": {}, "tags": {"span.kind": "internal"},
     "annotations": [{"timestamp": 0, "value": "at zero"}, {"timestamp": US, "value": 'ev|{"a":"b"}|0'}]},
]

TYPED = [
    {"traceId": T128, "id": "f000000000000001", "name": "typed", "timestamp": US, "duration": 1,
     "localEndpoint": {"serviceName": "typed-svc"},
     "tags": {"int": "42", "negative": "-7", "zero.padded": "007", "minus.zero": "-0",
              "too.big": "99999999999999999999", "too.small": "-99999999999999999999",
              "double": "3.25", "negative.double": "-0.5", "double.minus.zero": "-0.0", "exponent": "1e5",
              "trailing.dot": "1.", "leading.dot": ".5", "plus": "+1", "true": "true", "false": "false",
              "capital": "True", "empty": "", "object": '{"a":1}', "array": "[1,2]", "spaced": " 42",
              "newline": "42\n", "arabic.digits": "\u0664\u0662", "http.status_code": "200",
              "nullable": None, "host.name": "12345", "process.pid": "4242"},
     "annotations": [{"timestamp": US, "value": 'typed|{"n":"5","m":5}|0'}]},
]

SMALL = [  # one plain span for the requests that only need something to go through
    {"traceId": T128, "id": "0100000000000001", "name": "ok", "kind": "SERVER", "timestamp": US, "duration": 3,
     "localEndpoint": {"serviceName": "small"}, "tags": {"k": "v"}},
]


# A few ordinary spans, for what is not about translation (compression, paths, counters), so
# that a difference in an edge case fails only the edge-case tests.
PLAIN = SMALL + [
    {"traceId": T128, "id": "0100000000000002", "parentId": "0100000000000001", "name": "call", "kind": "CLIENT",
     "timestamp": US + 1, "duration": 2, "localEndpoint": {"serviceName": "small", "ipv4": "10.1.1.1"},
     "remoteEndpoint": {"serviceName": "other", "port": 80}, "tags": {"http.method": "GET"}},
    {"traceId": T128, "id": "0100000000000003", "parentId": "0100000000000002", "name": "serve", "kind": "SERVER",
     "timestamp": US + 1, "duration": 1, "localEndpoint": {"serviceName": "other"},
     "annotations": [{"timestamp": US + 2, "value": "done"}]},
]


def body(spans: list) -> bytes:
    return json.dumps(spans).encode()


# ---------------------------------------------------------------- the SDK as the client

SDK_BASE = 1_700_000_100_000_000_000  # nanoseconds; offsets below are not whole microseconds


class _Recording(ZipkinExporter):
    """The SDK's exporter, keeping whether each export succeeded."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.results = []

    def export(self, spans):
        result = super().export(spans)
        self.results.append(result)
        return result


def _provider(resource: dict, sides: dict):
    provider = TracerProvider(resource=Resource.create(resource))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    exporters = []
    for side in sides.values():
        exporter = _Recording(endpoint=side.url("zipkin", V2))
        exporters.append(exporter)
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    return provider, memory, exporters


def _at(us: float) -> int:
    return SDK_BASE + int(us * 1000)


def record_frontend(tracer_http, tracer_db):
    server = tracer_http.start_span("GET /checkout", kind=SpanKind.SERVER, start_time=_at(0) + 1_499,
                                    attributes={"http.method": "GET", "http.status_code": 200, "ratio": 0.25,
                                                "cached": False, "labels": ("a", "b"), "ports": (80, 443)})
    ctx = trace_api.set_span_in_context(server)
    render = tracer_db.start_span("render", context=ctx, start_time=_at(10) + 500)  # INTERNAL
    render.add_event("cache miss", {"key": "cart:1", "size": 3, "hit": False}, timestamp=_at(11) + 499)
    render.add_event("no attributes", timestamp=_at(12))
    render.end(end_time=_at(20) + 501)
    client = tracer_http.start_span(
        "POST /pay", kind=SpanKind.CLIENT, context=ctx, start_time=_at(30),
        links=[Link(SpanContext(int(LINK_T, 16), int(LINK_S, 16), True, TraceFlags(1)), {"link.kind": "follows"})],
        attributes={"peer.service": "checkout"})
    client.end(end_time=_at(80) + 999)
    server.end(end_time=_at(100))
    return client.get_span_context()


def record_checkout(tracer, parent):
    ctx = trace_api.set_span_in_context(NonRecordingSpan(parent))
    server = tracer.start_span("POST /pay", kind=SpanKind.SERVER, context=ctx, start_time=_at(40),
                               attributes={"payment.amount": 12.5})
    server.set_status(Status(StatusCode.ERROR, "card declined"))
    server.add_event("exception", {"exception.type": "CardError", "exception.message": "declined"},
                     timestamp=_at(45))
    producer = tracer.start_span("publish order", kind=SpanKind.PRODUCER,
                                 context=trace_api.set_span_in_context(server), start_time=_at(50))
    producer.set_status(Status(StatusCode.OK))
    producer.end(end_time=_at(55))
    server.end(end_time=_at(70))
    return producer.get_span_context()


def record_inventory(tracer, producer):
    consumer = tracer.start_span("consume order", kind=SpanKind.CONSUMER,
                                 context=trace_api.set_span_in_context(NonRecordingSpan(producer)),
                                 links=[Link(producer)], start_time=_at(200))
    consumer.end(end_time=_at(260))
    root = tracer.start_span("réindex ✓", start_time=_at(300), attributes={"batch": 500})
    root.set_status(Status(StatusCode.ERROR))  # no description
    root.end(end_time=_at(301))


def _us(ns: int) -> int:
    return (ns + 500) // 1000  # the exporter rounds to microseconds


def _tag(value) -> str:
    """The exporter's tag value: bools in lower case, sequences as a JSON list of strings."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps([str(v).lower() if isinstance(v, bool) else str(v) for v in value], separators=(",", ":"))


SDK_KINDS = {SpanKind.INTERNAL: UNSPECIFIED, SpanKind.SERVER: SERVER, SpanKind.CLIENT: CLIENT,
             SpanKind.PRODUCER: PRODUCER, SpanKind.CONSUMER: CONSUMER}


def sdk_expected(spans: list):
    """What otelcol makes of one TracerProvider's spans sent by the SDK's Zipkin exporter,
    from the spans as the SDK recorded them. The exporter sends the resource's attributes
    and the scope as tags, INTERNAL as no kind, an error status as `otel.status_code: ERROR`
    and `error: <description>`, OK as `otel.status_code: OK`, an event as an annotation
    whose value is `{"<name>": {<attributes>}}`, no links, times in rounded microseconds;
    the receiver makes the resource attributes it knows the resource (the others stay on
    every span), the scope tags the scope, knows neither ERROR nor OK as a status code (so
    only `error` makes an error, and it stays as an attribute: it is not "true"), and takes
    an annotation without `|` as an event name."""
    resource = dict(spans[0].resource.attributes)
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _put_all(rs.resource.attributes, {"service.name": resource["service.name"],
                                      **{k: _tag(v) for k, v in resource.items() if k in RESOURCE_KEYS}})
    for scope in sorted({sp.instrumentation_scope.name for sp in spans}):
        mine = [sp for sp in spans if sp.instrumentation_scope.name == scope]
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = scope, mine[0].instrumentation_scope.version or ""
        for sp in mine:
            out = ss.spans.add(trace_id=sp.context.trace_id.to_bytes(16, "big"),
                               span_id=sp.context.span_id.to_bytes(8, "big"), name=sp.name,
                               kind=SDK_KINDS[sp.kind])
            if sp.parent is not None:
                out.parent_span_id = sp.parent.span_id.to_bytes(8, "big")
            out.start_time_unix_nano = _us(sp.start_time) * 1000
            out.end_time_unix_nano = out.start_time_unix_nano + _us(sp.end_time - sp.start_time) * 1000
            attrs = {k: _tag(v) for k, v in {**sp.attributes, **resource}.items() if k not in NON_SPAN}
            out.status.SetInParent()
            if sp.status.status_code is StatusCode.ERROR:
                out.status.code = STATUS_ERROR
                attrs["error"] = sp.status.description or ""
            _put_all(out.attributes, attrs)
            for ev in sp.events:
                out.events.add(time_unix_nano=_us(ev.timestamp) * 1000,
                               name=json.dumps({ev.name: dict(ev.attributes)}, sort_keys=True))
    return req


# ---------------------------------------------------------------- the tests


def test_sdk_zipkin_exporter(sides):
    """Three services, one request each, as the SDK sends them."""
    services = [
        ({"service.name": "frontend", "host.name": "fe-host", "deployment.environment": "prod", "team": "web"},
         lambda p, ctx: record_frontend(p.get_tracer("frontend.http", "1.2.0"), p.get_tracer("frontend.db", "0.9"))),
        ({"service.name": "checkout", "host.name": "co-host", "k8s.pod.name": "co-pod-1"},
         lambda p, ctx: record_checkout(p.get_tracer("checkout", "2.0"), ctx)),
        ({"service.name": "inventory"},  # a tracer without a version: the exporter sends null
         lambda p, ctx: record_inventory(p.get_tracer("inventory"), ctx)),
    ]
    carried = None
    for resource, record in services:
        provider, memory, exporters = _provider(resource, sides)
        try:
            carried = record(provider, carried)
            assert provider.force_flush(10_000)
            spans = memory.get_finished_spans()
            assert all(e.results and all(r.name == "SUCCESS" for r in e.results) for e in exporters), \
                {name: e.results for name, e in zip(sides, exporters)}
            got = forwarded(sides, f"{resource['service.name']}'s spans")
            check(f"the SDK's {resource['service.name']} spans", got, [sdk_expected(list(spans))])
        finally:
            provider.shutdown()
    settle(sides)


def test_edge_rules_json(sides):
    check("v2 JSON edge cases", exchange(sides, body(EDGE), JSON_CT), [translate(EDGE)])
    settle(sides)


def test_edge_rules_protobuf(sides):
    spans = EDGE + PROTO_ONLY
    check("v2 protobuf edge cases", exchange(sides, encode_proto(spans), PROTO_CT), [translate(spans, proto=True)])
    settle(sides)


def test_parse_string_tags(sides):
    check("parse_string_tags, JSON", exchange(sides, body(TYPED), JSON_CT, receiver="zipkin/typed"),
          [translate(TYPED, parse_string_tags=True)])
    check("parse_string_tags, protobuf", exchange(sides, encode_proto(TYPED), PROTO_CT, receiver="zipkin/typed"),
          [translate(TYPED, parse_string_tags=True, proto=True)])
    # The same without parse_string_tags: all strings.
    check("no parse_string_tags", exchange(sides, body(TYPED), JSON_CT), [translate(TYPED)])
    settle(sides)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


COMPRESSED = [
    ("gzip", gzip.compress, False),
    ("deflate", zlib.compress, False),  # zlib-wrapped, as HTTP's "deflate" is
    ("zlib", zlib.compress, False),
    ("zstd", _zstd, False),
    ("gzip", gzip.compress, True),
]


def test_compressed_bodies(sides):
    problems: list = []
    for encoding, compress, proto in COMPRESSED:
        data = encode_proto(PLAIN) if proto else body(PLAIN)
        headers = {**(PROTO_CT if proto else JSON_CT), "Content-Encoding": encoding}
        what = f"{encoding} {'protobuf' if proto else 'JSON'}"
        collect(problems, what, lambda: check(what, exchange(sides, compress(data), headers),
                                              [translate(PLAIN, proto=proto)]))
    settle(sides)
    report(problems, len(COMPRESSED))


PATHS = [
    ("/", JSON_CT, False),
    ("/zipkin/custom/path", {"Content-Type": "text/plain"}, False),  # anything not protobuf is JSON
    ("/", {}, False),
    ("/api/v2/spans/", PROTO_CT, True),
]


def test_any_path_is_v2(sides):
    problems: list = []
    for path, headers, proto in PATHS:
        data = encode_proto(SMALL) if proto else body(SMALL)
        what = f"{path} {headers}"
        collect(problems, what, lambda: check(what, exchange(sides, data, headers, path=path),
                                              [translate(SMALL, proto=proto)]))
    settle(sides)
    report(problems, len(PATHS))


EMPTY = [("an empty list", b"[]", JSON_CT), ("null", b"null", JSON_CT), ("an empty protobuf", b"", PROTO_CT)]


def test_no_spans_accepted_and_nothing_forwarded(sides):
    """Taken (202), and nothing forwarded (but maybe an empty request, see Side.skip_empty):
    the next request forwarded is the next one taken."""
    problems: list = []
    for what, data, headers in EMPTY:
        def case():
            answers = {name: s.post("zipkin", data, headers) for name, s in sides.items()}
            assert {name: (r.status_code, r.content) for name, r in answers.items()} == \
                {name: (202, b"") for name in sides}, {name: (r.status_code, r.text) for name, r in answers.items()}
            check(f"the request after {what}", exchange(sides, body(SMALL), JSON_CT), [translate(SMALL)])
        collect(problems, what, case)
    settle(sides)
    report(problems, len(EMPTY))


def _small(**changes) -> dict:
    return {**SMALL[0], **changes}


def _proto_span(**changes) -> bytes:
    return encode_span(_small(**changes))


GOOD_PROTO = encode_proto(SMALL)
# (case, headers, body, otelcol's answer). otelcol answers with http.Error: the text and a
# newline, as text/plain; charset=utf-8. Go protobuf's texts are left out: it randomises the
# space after "proto:" between builds on purpose.
BAD = [
    ("invalid JSON", JSON_CT, b'[{"traceId":', "unexpected end of JSON input"),
    ("a JSON object, not a list", JSON_CT, b'{"traceId": "1"}',
     "json: cannot unmarshal object into Go value of type []*model.SpanModel"),
    ("an empty JSON body", JSON_CT, b"", "unexpected end of JSON input"),
    ("a span without id", JSON_CT, body([{k: v for k, v in SMALL[0].items() if k != "id"}]), "valid span id required"),
    ("a span id of 0", JSON_CT, body([_small(id="0000000000000000")]), "valid span id required"),
    ("a trace id of 33 hex digits", JSON_CT, body([_small(traceId="1" * 33)]),
     'strconv.ParseUint: parsing "11111111111111111": value out of range'),
    ("a trace id that is not hex", JSON_CT, body([_small(traceId="xyz")]),
     'strconv.ParseUint: parsing "xyz": invalid syntax'),
    ("an empty trace id", JSON_CT, body([_small(traceId="")]), "valid traceId required"),
    ("an invalid ipv4", JSON_CT, body([_small(localEndpoint={"serviceName": "s", "ipv4": "1.2.3"})]),
     "invalid IP address: 1.2.3"),
    ("a port above 65535", JSON_CT, body([_small(localEndpoint={"serviceName": "s", "port": 70000})]),
     "json: cannot unmarshal number 70000 into Go struct field Endpoint.Alias.localEndpoint.Port of type uint16"),
    ("a negative timestamp", JSON_CT, body([_small(timestamp=-1)]),
     "json: cannot unmarshal number -1 into Go struct field .timestamp of type uint64"),
    ("a tag with a number value", JSON_CT, body([_small(tags={"n": 1})]),
     "json: cannot unmarshal number into Go struct field .Alias.tags of type string"),
    ("an annotation at timestamp 0", JSON_CT, body([_small(annotations=[{"timestamp": 0, "value": "x"}])]),
     "valid annotation timestamp required"),
    ("an annotation with malformed JSON attributes", JSON_CT,
     body([_small(annotations=[{"timestamp": US, "value": "x|{bad|1"}])]),
     "invalid character 'b' looking for beginning of object key string"),
    ("an annotation without a dropped count", JSON_CT,
     body([_small(annotations=[{"timestamp": US, "value": 'x|{"a":1}|'}])]),
     'strconv.ParseUint: parsing "": invalid syntax'),
    ("a link whose trace id is too short", JSON_CT,
     body([_small(tags={"otlp.link.0": f"abc|{LINK_S}||{{}}|0"})]), "invalid length for ID"),
    ("a good span before a bad one", JSON_CT, body([SMALL[0], _small(id="0")]), "valid span id required"),
    ("a truncated protobuf", PROTO_CT, GOOD_PROTO[:-3], None),
    ("a protobuf trace id of 15 bytes", PROTO_CT, _bytes_field(1, encode_span(SMALL[0], bytes(range(1, 16)))),
     "invalid TraceID: has length 15 yet wanted length 16"),
    ("a protobuf span without id", PROTO_CT, _bytes_field(1, _proto_span(id="")), "expected a non-nil SpanID"),
    ("a protobuf span id of 4 bytes", PROTO_CT,
     _bytes_field(1, encode_span(SMALL[0])[:18] + _bytes_field(3, b"\x01\x02\x03\x04")),
     "invalid SpanID: has length 4 yet wanted length 8"),
    ("invalid UTF-8 in a protobuf string", PROTO_CT,
     _bytes_field(1, encode_span(SMALL[0]) + _bytes_field(5, b"\xff\xfe")), None),
    ("protobuf sent as application/protobuf (read as JSON)", {"Content-Type": "application/protobuf"},
     GOOD_PROTO, "invalid character '>' looking for beginning of value"),  # 0x0a is JSON whitespace
    ("gzip declared, the body plain", {**JSON_CT, "Content-Encoding": "gzip"}, body(SMALL), "gzip: invalid header"),
    ("an unsupported Content-Encoding", {**JSON_CT, "Content-Encoding": "br"}, body(SMALL),
     "unsupported Content-Encoding: br"),
]


def test_bad_input_refused_and_nothing_forwarded(sides):
    """Each case answered 400 with a reason by both, nothing of it forwarded: the next
    request forwarded is the good one sent after it."""
    problems: list = []
    for case, headers, data, otelcol_text in BAD:
        def one():
            answers = {name: s.post("zipkin", data, headers) for name, s in sides.items()}
            shown = {name: (r.status_code, r.text) for name, r in answers.items()}
            assert all(r.status_code == 400 for r in answers.values()), f"not 400: {shown}"
            assert all(r.text.strip() for r in answers.values()), f"a 400 without a reason: {shown}"
            if "otelcol" in answers:
                assert answers["otelcol"].headers.get("Content-Type") == "text/plain; charset=utf-8", shown
                if otelcol_text is not None:
                    assert answers["otelcol"].text == otelcol_text + "\n", f"otelcol's text changed: {shown}"
            check("the good request after it", exchange(sides, body(SMALL), JSON_CT), [translate(SMALL)])
        collect(problems, case, one)
    settle(sides)
    report(problems, len(BAD))


def test_zipkin_v1_is_refused_by_redline(sides):
    """Redline takes Zipkin v2 only. otelcol translates v1 JSON and Thrift on any path that
    holds `api/v1/spans`; Redline answers 400 there and forwards nothing (a documented
    difference, so otelcol is not asked)."""
    if "redline" not in sides:
        pytest.skip(f"Redline is not running ({SIDES_ENV})")
    redline = {"redline": sides["redline"]}
    v1 = [{"traceId": T64, "id": "a000000000000001", "name": "v1", "timestamp": US, "duration": 1,
           "annotations": [{"timestamp": US, "value": "sr", "endpoint": {"serviceName": "v1-svc"}}],
           "binaryAnnotations": [{"key": "k", "value": "v", "endpoint": {"serviceName": "v1-svc"}}]}]
    for path, headers, data in (("/api/v1/spans", JSON_CT, body(v1)),
                                ("/api/v1/spans", {"Content-Type": "application/x-thrift"}, b"\x0c\x00\x00\x00\x00"),
                                ("/zipkin/api/v1/spans", JSON_CT, body(SMALL))):
        r = redline["redline"].post("zipkin", data, headers, path=path)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert r.text.strip(), (path, "a 400 without a reason")
    check("the request after v1 ones", exchange(redline, body(SMALL), JSON_CT), [translate(SMALL)])
    settle(redline)


def _counts(expo) -> dict:
    return {(c, r, t): total(expo, c, receiver=r, transport=t)
            for c in COUNTERS for r in RECEIVERS for t in ("http_v2_json", "http_v2_proto")}


def test_receiver_counters(sides):
    """Accepted spans by receiver and transport; a refused (undecodable) request counts
    nowhere."""
    before = {name: _counts(s.telemetry()) for name, s in sides.items()}
    exchange(sides, body(PLAIN), JSON_CT)
    exchange(sides, encode_proto(PLAIN), PROTO_CT)
    exchange(sides, body(TYPED), JSON_CT, receiver="zipkin/typed")
    exchange(sides, encode_proto(TYPED), PROTO_CT, receiver="zipkin/typed")
    exchange(sides, body(SMALL), JSON_CT, path="/")
    for s in sides.values():
        assert s.post("zipkin", b"{", JSON_CT).status_code == 400
        assert s.post("zipkin", GOOD_PROTO[:-3], PROTO_CT).status_code == 400
    settle(sides)
    want = {key: 0 for key in before[next(iter(sides))]}
    want.update({
        ("otelcol_receiver_accepted_spans", "zipkin", "http_v2_json"): len(PLAIN) + len(SMALL),
        ("otelcol_receiver_accepted_spans", "zipkin", "http_v2_proto"): len(PLAIN),
        ("otelcol_receiver_accepted_spans", "zipkin/typed", "http_v2_json"): len(TYPED),
        ("otelcol_receiver_accepted_spans", "zipkin/typed", "http_v2_proto"): len(TYPED),
    })
    assert_counts_moved(sides, _counts, before, want)


@receiver_sides.TENANT_CASES
def test_tenant_header(request, procs, tmp_path, include_metadata, expected):
    """Three Zipkin JSON requests (two tenants' and one without the header), each with spans
    of its own, to `zipkin` with `include_metadata` true or false: the span names under each
    value of the header the exporter sent."""
    config = receiver_sides.tenant_config(CONFIG, [("receivers", "zipkin")], include_metadata)
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        for i, (tenant, names) in enumerate(receiver_sides.TENANT_CLIENTS):
            answers = _post_tenant(sides, i, tenant, names)
            assert all(a[0] == 202 for a in answers.values()), (tenant, answers)
        receiver_sides.check_tenants(sides, expected)


def _post_tenant(sides: dict, i: int, tenant, names) -> dict:
    """Client `i` of receiver_sides.TENANT_CLIENTS: a Zipkin JSON request with a span per
    name, posted to every side's `zipkin`; by side, (status, text)."""
    spans = [{"traceId": T128, "id": f"02000000000000{i}{j}", "name": name, "kind": "SERVER",
              "timestamp": US, "duration": 1, "localEndpoint": {"serviceName": "tenants"}}
             for j, name in enumerate(names)]
    headers = {**JSON_CT, **receiver_sides.tenant_header(tenant)}
    answers = {name: s.post("zipkin", body(spans), headers) for name, s in sides.items()}
    return {name: (r.status_code, r.text) for name, r in answers.items()}


def test_tenant_over_the_batch_cardinality_limit(request, procs, tmp_path):
    """Two tenants' requests into a `batch` that keeps one tenant
    (receiver_sides.tenant_batch_config): the second's is refused with a permanent error,
    which otelcol answers 400, so that the reporter does not send it again (its body is
    `"Bad Request"`, the same for every permanent error; another one, 500)."""
    config = receiver_sides.tenant_batch_config(CONFIG, [("receivers", "zipkin")])
    with receiver_sides.tenant_sides(request, SIDES_ENV, procs, tmp_path, _start, config) as sides:
        answers = [_post_tenant(sides, i, tenant, names)
                   for i, (tenant, names) in enumerate(receiver_sides.TENANTS_OVER_THE_LIMIT)]
        receiver_sides.check_over_the_limit(sides, answers, (202, ""), 400, '"Bad Request"')
