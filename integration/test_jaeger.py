"""The `jaeger` receiver end to end: apps instrumented with Jaeger get RED metrics, exactly.

A user's first day with Redline and services still on a Jaeger client is this config:

    receivers: jaeger (thrift_http, thrift_compact, thrift_binary) -> traces pipeline
      -> spanmetrics -> metrics pipeline -> prometheus

so what must hold is that every span a Jaeger client sent, and no other, shows in
`traces_spanmetrics_*` on /metrics under the labels the receiver's translation implies. Each
test starts its own Redline (the debug binary, 127.0.0.1: a free port for thrift_http, port 0
for the agent's UDP ports, read back from the log) and compares the whole scrape with an
independent tally: the spans the OpenTelemetry Python SDK recorded, sent by its Jaeger
exporter (opentelemetry-exporter-jaeger-thrift 1.21.0, the last one published) in both of its
modes, turned into what the receiver hands on (`as_received`: the exporter's and the
receiver's translation rules, written out there) and counted by the suite's own model
(redmodel.py): calls, errors, and every histogram bucket, count and sum; the receiver's own
counters (`otelcol_receiver_accepted_spans` by transport) too.

  - Three services, every span kind, ERROR (with and without a description), OK and unset
    statuses, HTTP status codes that make (or do not make) an error, an `error` attribute,
    durations next to bucket bounds that only the exporter's rounding to microseconds puts
    on one side; sent in agent mode (compact Thrift over UDP) and collector mode (binary
    Thrift over HTTP), one service over both.
  - Bad input loses nothing already taken: broken bodies and wrong Content-Types are answered
    400 with a reason and none of their spans counted; bad datagrams on both UDP ports are
    dropped (each one logged); every good batch before and after, on each of the three
    transports, is counted.
  - `auth` (bearertokenauth) with `tls` on thrift_http: without the token, with a wrong one
    and with the exporter's own basic auth 401 and nothing counted, plain HTTP refused; the
    SDK's exporter with the token over HTTPS is answered 202 and counted; the token is never
    in the log (at debug level).
  - `redline validate` refuses `protocols.grpc` (not supported yet) and `remote_sampling`
    (with otelcol's own text, pointing at the `jaegerremotesampling` extension).
"""

from __future__ import annotations

import json
import math
import os
import socket
import warnings
from types import SimpleNamespace

import pytest
import requests
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TTransport

import helpers
import redmodel
from pki import make_pki
from redline_run import Redline


def _jaeger_exporter_module():
    """opentelemetry-exporter-jaeger-thrift 1.21.0 imports the names of its environment
    variables (OTEL_EXPORTER_JAEGER_*) from opentelemetry.sdk.environment_variables, which
    SDKs after 1.21 no longer define; they are only names, so they are put back before the
    import (as integration/parity/test_parity_jaeger.py does). Nothing else of the exporter
    depends on the SDK's version."""
    import opentelemetry.sdk.environment_variables as names
    for name in ("AGENT_HOST", "AGENT_PORT", "AGENT_SPLIT_OVERSIZED_BATCHES", "ENDPOINT", "PASSWORD", "TIMEOUT",
                 "USER"):
        if not hasattr(names, f"OTEL_EXPORTER_JAEGER_{name}"):
            setattr(names, f"OTEL_EXPORTER_JAEGER_{name}", f"OTEL_EXPORTER_JAEGER_{name}")
    import opentelemetry.exporter.jaeger.thrift as module
    return module


_jaeger = _jaeger_exporter_module()
JaegerExporter = _jaeger.JaegerExporter
from opentelemetry.exporter.jaeger.thrift.gen.agent import Agent  # noqa: E402
from opentelemetry.exporter.jaeger.thrift.gen.jaeger import Collector as JaegerThrift  # noqa: E402
from opentelemetry.exporter.jaeger.thrift.translate import ThriftTranslator, Translate  # noqa: E402

TRACES = "/api/traces"
PREFIX = "traces_spanmetrics_"
CALLS = PREFIX + "calls_total"
TOKEN = "jaeger-tok-7c2e91f04ab8-secret"
X_THRIFT = {"Content-Type": "application/x-thrift"}
VND_THRIFT = {"Content-Type": "application/vnd.apache.thrift.binary"}
TRANSPORTS = {"http": "collector_http", "compact": "udp_thrift_compact", "binary": "udp_thrift_binary"}
NOT_TAKEN = "a Jaeger agent datagram was not taken"

CONFIG = """\
receivers:
  jaeger:
    protocols:
      thrift_http:
        endpoint: 127.0.0.1:{jaeger}
{http_settings}
      thrift_compact:
        endpoint: 127.0.0.1:0
      thrift_binary:
        endpoint: 127.0.0.1:0
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
{extensions}
service:
{service_extensions}  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [jaeger]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

AUTH_TLS = dict(
    http_settings="""\
        tls:
          cert_file: {certs}/server.pem
          key_file: {certs}/server.key
        auth:
          authenticator: bearertokenauth""",
    extensions="""\
extensions:
  bearertokenauth:
    token: ${env:REDLINE_TEST_JAEGER_TOKEN}""",
    service_extensions="  extensions: [bearertokenauth]\n",
)


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    """The exporter reads OTEL_EXPORTER_JAEGER_* (an endpoint there would turn agent mode into
    collector mode) and its HTTP client honours proxy variables: none of them here."""
    for name in list(os.environ):
        if name.startswith("OTEL_EXPORTER_JAEGER_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)


def start(procs, redline_bin, tmp_path, log_level: str = "info", **blocks) -> Redline:
    """A Redline on CONFIG with the optional blocks; its thrift_http port answering, and the
    UDP ports (port 0 in the config) read back from its log: .http_url, .udp[protocol]."""
    values = dict(http_settings="", extensions="", service_extensions="")
    values.update(blocks)
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, env={"REDLINE_TEST_JAEGER_TOKEN": TOKEN},
                 args=("--log-format", "json", "--log-level", log_level), **values).start()
    helpers.wait_until(lambda: helpers.port_accepts(rl.ports["jaeger"]), 30, "thrift_http to listen",
                       alive=rl.proc)
    rl.udp = helpers.wait_until(lambda: _udp_ports(rl), 30, "the jaeger receiver's UDP ports in the log",
                                alive=rl.proc)
    rl.http_url = f"http://127.0.0.1:{rl.ports['jaeger']}{TRACES}"
    return rl


def _udp_ports(rl: Redline) -> dict | None:
    ports = {}
    for rec in log_records(rl):
        if rec.get("message") == "listening" and rec.get("component") == "jaeger":
            proto = rec.get("endpoint", "").removeprefix("thrift_")
            if proto in ("compact", "binary"):
                ports[proto] = int(rec["addr"].rsplit(":", 1)[1])
    return ports if len(ports) == 2 else None


def log_records(rl: Redline) -> list:
    out = []
    for line in rl.proc.log_path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def send_udp(port: int, packet: bytes):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, ("127.0.0.1", port))


# ---------------------------------------------------------------- the client: the SDK

BASE_NS = 1_700_000_000_000_000_000
OK, ERROR = Status(StatusCode.OK), Status(StatusCode.ERROR)
S, C, I, P, K = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER


def record(service: str, plan: list) -> list:
    """Finished SDK spans of `service`, one per (name, kind, status or None, duration in ns
    [, attributes [, ns added to the start]]) of `plan`, recorded in memory so that exactly
    these spans are exported and tallied."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(f"{service}.instrumentation", "1.0.0")
    for i, (name, kind, status, duration_ns, *rest) in enumerate(plan):
        attrs = rest[0] if rest else None
        start_ns = BASE_NS + i * 20_000_000_000 + (rest[1] if len(rest) > 1 else 0)
        sp = tracer.start_span(name, kind=kind, start_time=start_ns, attributes=attrs)
        if status is not None:
            sp.set_status(status)
        sp.end(end_time=start_ns + duration_ns)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    assert len(spans) == len(plan)
    return spans


def exporter(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "use OTLP instead": the point here
        return JaegerExporter(**kw)


def export_agent(rl: Redline, spans: list):
    """One export by the SDK's Jaeger exporter in agent mode: one emitBatch datagram, compact
    Thrift, to thrift_compact (UDP: nothing answers)."""
    exp = exporter(agent_host_name="127.0.0.1", agent_port=rl.udp["compact"])
    assert exp.collector_endpoint is None
    assert exp.export(spans).name == "SUCCESS"
    exp.shutdown()


def export_collector(url: str, spans: list, headers: dict | None = None, **kw) -> int:
    """One export by the SDK's Jaeger exporter in collector mode (one POST of a binary Thrift
    Batch, `?format=jaeger.thrift` as Jaeger's docs have it); the HTTP status it got. The
    exporter reports SUCCESS whatever the answer (it only logs an error), so the status is
    read from its HTTP transport. `headers` go on that transport (the exporter itself has no
    setting for a bearer token, only basic auth)."""
    exp = exporter(collector_endpoint=url + "?format=jaeger.thrift", **kw)
    client = exp._collector_http_client
    if headers:
        assert client.auth is None, "basic auth and headers: one or the other"
        client.http_transport.setCustomHeaders(headers)
    assert exp.export(spans).name == "SUCCESS"
    exp.shutdown()
    return client.http_transport.code


def sdk_batch(spans: list):
    """The Batch the SDK's exporter makes of `spans` (its own translator, as export() does)."""
    return JaegerThrift.Batch(spans=Translate(spans)._translate(ThriftTranslator()),
                              process=JaegerThrift.Process(serviceName=spans[0].resource.attributes["service.name"]))


def http_body(spans: list) -> bytes:
    """The body the exporter POSTs in collector mode: the Batch in binary Thrift."""
    buf = TTransport.TMemoryBuffer()
    sdk_batch(spans).write(TBinaryProtocol.TBinaryProtocol(buf))
    return buf.getvalue()


def datagram(spans: list, protocol: str) -> bytes:
    """An agent's emitBatch message for `spans`: in compact Thrift it is what the exporter
    sends in agent mode (its AgentClientUDP, byte for byte); in binary Thrift what a Jaeger
    client sends to the agent's port 6832, made by the same generated client."""
    buf = TTransport.TMemoryBuffer()
    proto = {"compact": TCompactProtocol.TCompactProtocol, "binary": TBinaryProtocol.TBinaryProtocol}[protocol]
    client = Agent.Client(iprot=proto(trans=buf))
    client._seqid = 0
    client.emitBatch(sdk_batch(spans))
    return buf.getvalue()


def ms(x: float) -> int:
    return int(round(x * 1_000_000))


FRONTEND = [
    ("GET /checkout", S, None, ms(45)),
    ("GET /checkout", S, None, ms(120)),
    ("GET /checkout", S, Status(StatusCode.ERROR, "upstream 503"), ms(950)),
    ("GET /checkout", S, None, ms(30), {"http.status_code": 503}),   # unset + 5xx: ERROR
    ("GET /checkout", S, None, ms(8), {"http.status_code": 404}),    # unset + 4xx on a server: UNSET
    ("GET /checkout", S, OK, ms(12), {"http.status_code": 500}),     # OK stays OK: the code is not read
    ("render", I, None, 2_000_499),   # 2000 µs: 2 ms, in le=2 (the nanoseconds would not be)
    ("render", I, None, 10_000_500),  # 10001 µs (rounded, not cut to 10000): le=50, not le=10
    ("POST /pay", C, OK, ms(30)),
    ("POST /pay", C, Status(StatusCode.ERROR, "timeout"), ms(2500)),
    ("POST /pay", C, None, ms(40), {"http.response.status_code": 404}),  # unset + 4xx on a client: ERROR
]
CHECKOUT = [
    ("POST /pay", S, OK, ms(25)),
    ("POST /pay", S, Status(StatusCode.ERROR, "card declined"), ms(1.5)),
    ("publish order", P, OK, ms(0.5)),
    ("SELECT orders", C, None, ms(9)),
    # Start .6 µs past a microsecond (rounded up), duration 1000.8 µs (rounded to 1001): the
    # end the receiver makes is start + duration, 1.001 ms after the start, not the 1.000 ms
    # between the rounded start and the rounded end.
    ("SELECT orders", C, None, 1_000_800, None, 600),
    ("GET /stock", C, None, ms(11), {"http.status_code": "502"}),  # a string code is read too
]
INVENTORY_AGENT = [
    ("consume order", K, None, ms(60)),
    ("consume order", K, ERROR, ms(5)),  # ERROR without a description
    ("reindex", I, ERROR, ms(1200)),
    ("reindex", I, OK, ms(300)),
]
INVENTORY_COLLECTOR = [
    ("reindex", I, None, ms(20), {"http.status_code": 399}),  # otelcol's HTTP rule: < 399 only is fine
    ("GET /health", S, None, ms(1), {"http.status_code": 200}),
    ("sync", I, None, ms(7), {"error": True}),     # a bool `error` tag is an error, status or not
    ("sync", I, None, ms(7), {"error": "true"}),   # any other `error` tag is not
    ("consume order", K, None, ms(15000)),
]


# ---------------------------------------------------------------- the tally

# How a span recorded by the SDK arrives in the pipeline, i.e. which series it counts in.
#
# The exporter (opentelemetry-exporter-jaeger-thrift, translate/__init__.py) sends:
#   - the kind as the tag `span.kind`: "server", "client", "producer", "consumer", "internal";
#   - for a status other than UNSET the tag `otel.status_code` ("OK"/"ERROR"), plus
#     `otel.status_description` when there is one, plus for ERROR the bool tag `error`=true;
#   - the span's attributes as tags of their type (then the resource's, then the scope's);
#   - start and duration in microseconds, each rounded: (ns + 500) // 1000.
# The receiver (otelcol's ThriftToTraces) reads them back:
#   - `span.kind` to the same OTLP kind (INTERNAL stays INTERNAL, unlike Zipkin);
#   - the status: a bool `error` tag true is ERROR; else `otel.status_code` (OK, ERROR);
#     else an HTTP status code tag (`http.status_code`, `http.response.status_code` renamed
#     to it; an int, or a string Go's ParseInt reads): 4xx is ERROR on a CLIENT span and
#     unset on a SERVER span, otherwise 100 <= code < 399 is unset and anything else ERROR;
#   - start = startTime µs, end = (startTime + duration) µs, in nanoseconds.
RECEIVED_KIND = {k: k.name for k in SpanKind}


def _go_parse_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value[1:] if value[:1] in "+-" else value
        return int(value) if digits and all(ch in "0123456789" for ch in digits) else None
    return None


def received_status(sp) -> str:
    attrs = dict(sp.attributes or {})
    code = sp.status.status_code
    if code is StatusCode.ERROR or attrs.get("error") is True:
        return "ERROR"
    if code is StatusCode.OK:
        return "OK"
    http = [v for k, v in attrs.items() if k in ("http.status_code", "http.response.status_code")]
    status = _go_parse_int(http[-1]) if http else None  # one key after the rename: the last wins
    if status is None:
        return "UNSET"
    if 400 <= status < 500 and sp.kind is SpanKind.CLIENT:
        return "ERROR"
    if 400 <= status < 500 and sp.kind is SpanKind.SERVER:
        return "UNSET"
    return "UNSET" if 100 <= status < 399 else "ERROR"


def _us(ns: int) -> int:
    return (ns + 500) // 1000  # the exporter's rounding


def as_received(sp) -> SimpleNamespace:
    """`sp` with the kind, status and times the receiver hands on, in the shape redmodel reads."""
    start_us = _us(sp.start_time)
    return SimpleNamespace(
        context=sp.context, resource=sp.resource, name=sp.name, attributes=sp.attributes,
        kind=SimpleNamespace(name=RECEIVED_KIND[sp.kind]),
        status=SimpleNamespace(status_code=SimpleNamespace(name=received_status(sp))),
        start_time=start_us * 1000, end_time=(start_us + _us(sp.end_time - sp.start_time)) * 1000,
    )


def tally(spans: list) -> redmodel.Expected:
    return redmodel.Expected([as_received(sp) for sp in spans], dimensions=())


def series(service: str, name: str, kind: str, status: str) -> tuple:
    return redmodel.key({"service_name": service, "span_name": name, "span_kind": "SPAN_KIND_" + kind,
                         "status_code": "STATUS_CODE_" + status})


# ---------------------------------------------------------------- what Redline serves


def red(rl: Redline) -> dict:
    """One scrape: {family: {labels key: value}}, buckets keyed (labels key, le)."""
    out: dict = {"calls": {}, "errors": {}, "count": {}, "sum": {}, "bucket": {}}
    fams = {"calls_total": "calls", "errors_total": "errors", "duration_milliseconds_count": "count",
            "duration_milliseconds_sum": "sum"}
    for name, labels, value in rl.samples():
        if not name.startswith(PREFIX):
            continue
        fam = name[len(PREFIX):]
        if fam == "duration_milliseconds_bucket":
            out["bucket"][(helpers.label_key(labels, drop=("le",)), helpers.parse_float(labels["le"]))] = value
        else:
            assert fam in fams, f"unexpected family {name}"
            out[fams[fam]][helpers.label_key(labels)] = value
    return out


def wait_counted(rl: Redline, n: int):
    """Wait (bounded) until /metrics counts `n` calls in all: the exact checks follow."""
    helpers.wait_until(lambda: sum(rl.series(CALLS).values()) >= n, 15, f"{n} calls on /metrics", alive=rl.proc)


def check_red(rl: Redline, exp: redmodel.Expected):
    got = red(rl)
    assert got["calls"] == dict(exp.calls)
    # Every span is one call and one duration observation, per series.
    assert got["count"] == dict(exp.hist_count) == got["calls"]
    assert got["errors"] == dict(exp.errors)
    assert set(got["sum"]) == set(exp.hist_sum)
    for k, v in got["sum"].items():
        assert math.isclose(v, exp.hist_sum[k], rel_tol=1e-9, abs_tol=1e-9), (k, v, exp.hist_sum[k])
    assert got["bucket"] == dict(exp.hist_bucket)


def receiver_counts(rl: Redline, counter: str = "otelcol_receiver_accepted_spans") -> dict:
    """`counter` of the jaeger receiver by transport (0 for a transport without a series)."""
    tel = rl.self_telemetry()
    return {short: tel.sum(counter, receiver="jaeger", transport=t) for short, t in TRANSPORTS.items()}


# ---------------------------------------------------------------- the tests


def test_sdk_jaeger_exporter_to_span_metrics(procs, redline_bin, tmp_path):
    rl = start(procs, redline_bin, tmp_path)
    frontend, checkout = record("frontend", FRONTEND), record("checkout", CHECKOUT)
    inv_agent, inv_collector = record("inventory", INVENTORY_AGENT), record("inventory", INVENTORY_COLLECTOR)
    # frontend in two requests: counts add up across requests of one service.
    assert export_collector(rl.http_url, frontend[:4]) == 202
    assert export_collector(rl.http_url, frontend[4:]) == 202
    export_agent(rl, checkout)
    # inventory over both: one service's counts add up across transports.
    export_agent(rl, inv_agent)
    assert export_collector(rl.http_url, inv_collector) == 202
    sent = frontend + checkout + inv_agent + inv_collector
    exp = tally(sent)
    assert len(exp.counted) == len(sent) == 26

    # The rules above, spelled out for the series the tally must hold.
    assert exp.calls[series("frontend", "render", "INTERNAL", "UNSET")] == 2
    assert exp.calls[series("frontend", "GET /checkout", "SERVER", "ERROR")] == 2  # a status, a 503
    assert exp.calls[series("frontend", "GET /checkout", "SERVER", "UNSET")] == 3  # with a 404
    assert exp.calls[series("frontend", "GET /checkout", "SERVER", "OK")] == 1     # with a 500
    assert exp.calls[series("frontend", "POST /pay", "CLIENT", "ERROR")] == 2      # a status, a 404
    assert exp.calls[series("checkout", "GET /stock", "CLIENT", "ERROR")] == 1     # "502"
    assert exp.calls[series("checkout", "publish order", "PRODUCER", "OK")] == 1
    assert exp.calls[series("inventory", "reindex", "INTERNAL", "ERROR")] == 2     # a status, a 399
    assert exp.calls[series("inventory", "sync", "INTERNAL", "ERROR")] == 1
    assert exp.calls[series("inventory", "sync", "INTERNAL", "UNSET")] == 1
    assert exp.calls[series("inventory", "consume order", "CONSUMER", "UNSET")] == 2
    render = series("frontend", "render", "INTERNAL", "UNSET")
    assert exp.hist_bucket[(render, 2.0)] == 1 and exp.hist_bucket[(render, 10.0)] == 1
    assert exp.hist_bucket[(render, 50.0)] == 2
    assert math.isclose(exp.hist_sum[render], 2.0 + 10.001)
    assert math.isclose(exp.hist_sum[series("checkout", "SELECT orders", "CLIENT", "UNSET")], 9.0 + 1.001)
    assert exp.sum_errors() == 10 and len(exp.calls) == 18

    wait_counted(rl, len(sent))
    check_red(rl, exp)
    assert receiver_counts(rl) == {"http": 11 + 5, "compact": 6 + 4, "binary": 0}
    assert receiver_counts(rl, "otelcol_receiver_refused_spans") == {"http": 0, "compact": 0, "binary": 0}
    assert rl.alive()
    rl.stop()


def _refused(url: str, body: bytes, headers: dict, reason: str):
    r = requests.post(url, data=body, headers=headers, timeout=10)
    assert r.status_code == 400 and r.text.startswith(reason), (reason, r.status_code, r.text)


def test_bad_input_loses_nothing_already_taken(procs, redline_bin, tmp_path):
    # The receiver's debug lines count every datagram it did not take (the first is a warning).
    rl = start(procs, redline_bin, tmp_path, log_level="info,redline_jaeger_receiver=debug")
    url = rl.http_url
    batches = {proto: [record(f"orders-{proto}", [("GET /orders", S, None, ms(12)), ("GET /orders", S, ERROR, ms(80)),
                                                  ("load", I, None, ms(3))]),
                       record(f"orders-{proto}", [("GET /orders", S, None, ms(14)), ("POST /orders", S, OK, ms(220)),
                                                  ("load", I, ERROR, ms(5)), ("publish", P, None, ms(1))])]
               for proto in TRANSPORTS}
    # Before: one good batch on each transport, all counted.
    assert export_collector(url, batches["http"][0]) == 202
    export_agent(rl, batches["compact"][0])
    send_udp(rl.udp["binary"], datagram(batches["binary"][0], "binary"))
    wait_counted(rl, 9)
    assert receiver_counts(rl) == {"http": 3, "compact": 3, "binary": 3}

    # Good spans of another service made bad; each request refused whole, none counted.
    never = record("never-counted", [("GET /lost", S, None, ms(4))] * 3)
    body = http_body(never)
    _refused(url, body[:-7], X_THRIFT, "Unable to process request body: ")
    _refused(url, b"\x00garbage\xff", X_THRIFT, "Unable to process request body: ")
    _refused(url, datagram(never, "compact"), VND_THRIFT, "Unable to process request body: ")
    _refused(url, body, {"Content-Type": "application/json"}, "Unsupported content type: application/json")
    _refused(url, body, {"Content-Type": "application/vnd.apache.thrift.compact"},
             "Unsupported content type: application/vnd.apache.thrift.compact")
    _refused(url, body, {}, "Cannot parse content type: mime: no media type")
    # Not the collector's path or method: nothing taken either.
    assert requests.post(url + "/", data=body, headers=X_THRIFT, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 405

    bad_packets = {
        "compact": [b"\x00garbage\xff", datagram(never, "compact")[:-4], datagram(never, "binary"), body],
        "binary": [b"\x00garbage\xff", datagram(never, "binary")[:-4], datagram(never, "compact"), body,
                   b"\x80\x02\x00\x04" + datagram(never, "binary")[4:]],  # a bad version word
    }
    for proto, packets in bad_packets.items():
        send_udp(rl.udp[proto], b"")  # empty: skipped before decoding, not logged
        for packet in packets:
            send_udp(rl.udp[proto], packet)
    # Every bad datagram was read and dropped, each logged once, naming its port's transport.
    def not_taken():
        recs = [r for r in log_records(rl) if r.get("message", "").startswith(NOT_TAKEN)]
        return {proto: sum(r.get("transport") == TRANSPORTS[proto] for r in recs) for proto in bad_packets}
    want_logged = {proto: len(packets) for proto, packets in bad_packets.items()}
    helpers.wait_until(lambda: not_taken() == want_logged, 10, f"the bad datagrams logged: {want_logged}",
                       alive=rl.proc)
    assert not_taken() == want_logged
    warned = [r for r in log_records(rl) if r.get("message", "").startswith(NOT_TAKEN) and r.get("level") == "WARN"]
    assert len(warned) == 2, warned  # once at warn per port, then debug

    # After: a good batch on each transport (HTTP by hand with the other Content-Type too).
    assert export_collector(url, batches["http"][1][:2]) == 202
    r = requests.post(url, data=http_body(batches["http"][1][2:]), headers=VND_THRIFT, timeout=10)
    assert r.status_code == 202 and r.content == b"", (r.status_code, r.text)
    export_agent(rl, batches["compact"][1])
    send_udp(rl.udp["binary"], datagram(batches["binary"][1], "binary"))

    exp = tally([sp for pair in batches.values() for batch in pair for sp in batch])
    assert sum(exp.calls.values()) == 21 and exp.sum_errors() == 6
    wait_counted(rl, 21)
    check_red(rl, exp)
    # The receiver's own counters: the refused requests and dropped datagrams count nowhere.
    assert receiver_counts(rl) == {"http": 7, "compact": 7, "binary": 7}
    assert receiver_counts(rl, "otelcol_receiver_refused_spans") == {"http": 0, "compact": 0, "binary": 0}
    assert rl.alive()
    rl.stop()


def test_bearer_token_auth_over_tls(procs, redline_bin, tmp_path, monkeypatch):
    certs = tmp_path / "certs"
    certs.mkdir()
    make_pki(certs)
    ca = str(certs / "ca.pem")
    # The exporter's HTTP client (Thrift's THttpClient) has no CA setting the exporter passes
    # on: it trusts the system's store, which OpenSSL takes from SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    rl = start(procs, redline_bin, tmp_path, log_level="debug",
               **{k: v.replace("{certs}", str(certs)) for k, v in AUTH_TLS.items()})
    url = f"https://127.0.0.1:{rl.ports['jaeger']}{TRACES}"

    denied = record("denied", [("GET /x", S, None, ms(2.5)), ("GET /y", C, ERROR, ms(7))])
    body = http_body(denied)
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        r = requests.post(url, data=body, headers={**X_THRIFT, **headers}, verify=ca, timeout=10)
        assert r.status_code == 401 and r.text.strip() and "wrong-token" not in r.text, (r.status_code, r.text)
    # The exporter's own credentials are basic auth: refused by bearertokenauth; a wrong token
    # on its transport too.
    assert export_collector(url, denied, username="jaeger", password="not-the-token") == 401
    assert export_collector(url, denied, headers={"Authorization": "Bearer wrong-token"}) == 401
    with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP on a TLS receiver
        requests.post(f"http://127.0.0.1:{rl.ports['jaeger']}{TRACES}", data=body, timeout=5,
                      headers={**X_THRIFT, "Authorization": f"Bearer {TOKEN}"})

    raw = record("allowed", [("GET /ok", S, None, ms(15)), ("cache", I, None, ms(1))])
    r = requests.post(url, data=http_body(raw), headers={**X_THRIFT, "Authorization": f"Bearer {TOKEN}"},
                      verify=ca, timeout=10)
    assert r.status_code == 202, (r.status_code, r.text)
    sdk = record("allowed", [("GET /ok", S, Status(StatusCode.ERROR, "x"), ms(40)), ("publish", P, OK, ms(6))])
    assert export_collector(url, sdk, headers={"Authorization": f"Bearer {TOKEN}"}) == 202

    exp = tally(raw + sdk)
    wait_counted(rl, 4)
    check_red(rl, exp)
    assert receiver_counts(rl) == {"http": 4, "compact": 0, "binary": 0}
    assert rl.alive()
    rl.stop()
    log = rl.proc.log_path.read_text(errors="replace")
    assert TOKEN not in log, "the token appeared in the log"
    assert "wrong-token" not in log and "not-the-token" not in log, "a refused credential appeared in the log"


VALIDATE = """\
receivers:
  jaeger:
{jaeger}
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [jaeger]
      exporters: [debug]
"""


def _validate(redline_bin, tmp_path, name: str, jaeger: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(VALIDATE.format(jaeger=jaeger))
    res = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "panicked" not in res.stderr, res.stderr
    return path, res.stderr


def test_validate_grpc_keys_remote_sampling_and_udp_bounds(redline_bin, tmp_path):
    # gRPC alone is a protocol; its configgrpc keys are checked where they are written.
    path = tmp_path / "grpc-alone.yaml"
    path.write_text(VALIDATE.format(jaeger="    protocols:\n      grpc:"))
    res = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert res.returncode == 0, res.stderr
    path, err = _validate(redline_bin, tmp_path, "grpc-keys",
                          "    protocols:\n      grpc:\n        endpoint: 127.0.0.1:14250\n"
                          "        max_recv_msg_size_mib: 5000\n")
    assert (f"{path}:6:32: receivers.jaeger.protocols.grpc.max_recv_msg_size_mib: 5000 MiB is larger "
            "than a gRPC message can be (4095 MiB)") in err, err
    assert "invalid config (1 error(s))" in err, err

    path, err = _validate(redline_bin, tmp_path, "remote-sampling",
                          "    protocols:\n      thrift_compact:\n    remote_sampling:\n"
                          "      host_endpoint: 127.0.0.1:5778")
    assert (f"{path}:5:5: receivers.jaeger.remote_sampling: remote sampling config detected in the "
            "Jaeger receiver; use the `jaegerremotesampling` extension instead") in err, err
    assert "invalid config (1 error(s))" in err, err

    # The UDP servers' sizes: every out-of-range one named, in one run.
    path, err = _validate(redline_bin, tmp_path, "udp-bounds",
                          "    protocols:\n      thrift_compact:\n        workers: 0\n"
                          "      thrift_binary:\n        queue_size: 2000000\n")
    assert f"{path}:5:18: receivers.jaeger.protocols.thrift_compact.workers: must be at least 1" in err, err
    assert (f"{path}:7:21: receivers.jaeger.protocols.thrift_binary.queue_size: must be at most 1048576"
            in err), err
    assert "invalid config (2 error(s))" in err, err
