"""The `zipkin` receiver end to end: apps instrumented with Zipkin get RED metrics, exactly.

A user's first day with Redline and Zipkin-instrumented services is this config:

    receivers: zipkin -> traces pipeline -> spanmetrics -> metrics pipeline -> prometheus

so what must hold is that every span a Zipkin client sent, and no other, shows in
`traces_spanmetrics_*` on /metrics under the labels the receiver's translation implies. Each
test starts its own Redline (the debug binary, 127.0.0.1, free ports) and compares the whole
scrape with an independent tally: the spans the OpenTelemetry Python SDK recorded, sent with
its Zipkin JSON exporter (`ZipkinExporter`, one TracerProvider per service), turned into what
the receiver hands on (`as_received`: the exporter's and the receiver's translation rules,
written out there) and counted by the suite's own model (redmodel.py): calls, errors, and
every histogram bucket, count and sum; the receiver's own counter
(`otelcol_receiver_accepted_spans`) too.

  - Three services, every span kind, ERROR (with and without a description), OK and unset
    statuses, durations spread over the default buckets (one not a whole microsecond: the
    exporter rounds it).
  - Bad input loses nothing already taken: broken JSON and a span without an id are each
    answered 400 with a reason, none of their spans counted (the request is all or
    nothing), and the good batches before and after are all counted.
  - `auth` (bearertokenauth) with `tls` on the receiver: without the token or with a wrong
    one 401 and nothing counted, plain HTTP refused; the SDK exporter with the token in its
    session over HTTPS is answered 202 and counted.
  - Zipkin v1 (`/api/v1/spans`) is refused with 400 saying "v1" (docs/compatibility.md §44),
    even for a body that would be taken on the v2 path, and logged once.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import requests
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.exporter.zipkin.json.v2 import JsonV2Encoder
from opentelemetry.exporter.zipkin.node_endpoint import NodeEndpoint
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

import helpers
import redmodel
from pki import make_pki
from redline_run import Redline

V2 = "/api/v2/spans"
PREFIX = "traces_spanmetrics_"
CALLS = PREFIX + "calls_total"
TOKEN = "zipkin-tok-4b1d9e7a22c3-secret"
JSON_CT = {"Content-Type": "application/json"}

CONFIG = """\
receivers:
  zipkin:
    endpoint: 127.0.0.1:{zipkin}
{zipkin_settings}
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
      receivers: [zipkin]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

AUTH_TLS = dict(
    zipkin_settings="""\
    tls:
      cert_file: {certs}/server.pem
      key_file: {certs}/server.key
    auth:
      authenticator: bearertokenauth""",
    extensions="""\
extensions:
  bearertokenauth:
    token: ${env:REDLINE_TEST_ZIPKIN_TOKEN}""",
    service_extensions="  extensions: [bearertokenauth]\n",
)


def start(procs, redline_bin, tmp_path, **blocks) -> Redline:
    """A Redline on CONFIG with the optional blocks, its zipkin port answering."""
    values = dict(zipkin_settings="", extensions="", service_extensions="")
    values.update(blocks)
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, env={"REDLINE_TEST_ZIPKIN_TOKEN": TOKEN}, **values).start()
    helpers.wait_until(lambda: helpers.port_accepts(rl.ports["zipkin"]), 30, "the zipkin receiver to listen",
                       alive=rl.proc)
    rl.zipkin_url = f"http://127.0.0.1:{rl.ports['zipkin']}"
    return rl


# ---------------------------------------------------------------- the client: the SDK

BASE_NS = 1_700_000_000_000_000_000
OK, ERROR = Status(StatusCode.OK), Status(StatusCode.ERROR)
S, C, I, P, K = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER


def record(service: str, plan: list) -> list:
    """Finished SDK spans of `service`, one per (name, kind, status or None, duration in ns)
    of `plan`, recorded in memory so that exactly these spans are exported and tallied."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(f"{service}.instrumentation", "1.0.0")
    for i, (name, kind, status, duration_ns) in enumerate(plan):
        start_ns = BASE_NS + i * 20_000_000_000
        sp = tracer.start_span(name, kind=kind, start_time=start_ns)
        if status is not None:
            sp.set_status(status)
        sp.end(end_time=start_ns + duration_ns)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    assert len(spans) == len(plan)
    return spans


def export(url: str, spans: list, session: requests.Session | None = None) -> SpanExportResult:
    """One export of `spans` by the SDK's Zipkin JSON exporter (one POST)."""
    exporter = ZipkinExporter(endpoint=url, session=session, timeout=10)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def sdk_body(spans: list) -> bytes:
    """The JSON body the SDK's Zipkin exporter sends for `spans` (its own encoder), to send by
    hand when the test needs the HTTP answer or a body to break."""
    local = NodeEndpoint()
    local.service_name = spans[0].resource.attributes["service.name"]
    return JsonV2Encoder().serialize(spans, local).encode()


def ms(x: float) -> int:
    return int(x * 1_000_000)


FRONTEND = [
    ("GET /checkout", S, None, ms(45)),
    ("GET /checkout", S, None, ms(120)),
    ("GET /checkout", S, Status(StatusCode.ERROR, "upstream 503"), ms(950)),
    ("render", I, None, ms(3)),
    ("render", I, None, 7_250_400),  # 7.2504 ms: the exporter sends 7250 µs
    ("POST /pay", C, OK, ms(30)),
    ("POST /pay", C, Status(StatusCode.ERROR, "timeout"), ms(2500)),
]
CHECKOUT = [
    ("POST /pay", S, OK, ms(25)),
    ("POST /pay", S, Status(StatusCode.ERROR, "card declined"), ms(1.5)),
    ("publish order", P, OK, ms(0.5)),
    ("SELECT orders", C, None, ms(9)),
    ("SELECT orders", C, None, ms(11)),
]
INVENTORY = [
    ("consume order", K, None, ms(60)),
    ("consume order", K, ERROR, ms(5)),  # ERROR without a description: the exporter sends error=""
    ("reindex", I, ERROR, ms(1200)),
    ("reindex", I, OK, ms(300)),
]


# ---------------------------------------------------------------- the tally

# How a span recorded by the SDK arrives in the pipeline, i.e. which series it counts in.
# The SDK's Zipkin exporter sends INTERNAL as no `kind` (Zipkin has no such kind), and the
# receiver makes a span without a kind SPAN_KIND_UNSPECIFIED. It sends a status as the tag
# `otel.status_code` ("OK"/"ERROR", spellings otelcol's translator does not read) plus, for
# ERROR only, `error: <description>`; the receiver makes any `error` tag STATUS_CODE_ERROR,
# so ERROR stays ERROR and OK arrives as UNSET. Times go in whole microseconds, rounded.
RECEIVED_KIND = {SpanKind.INTERNAL: "UNSPECIFIED", SpanKind.SERVER: "SERVER", SpanKind.CLIENT: "CLIENT",
                 SpanKind.PRODUCER: "PRODUCER", SpanKind.CONSUMER: "CONSUMER"}
RECEIVED_STATUS = {StatusCode.UNSET: "UNSET", StatusCode.OK: "UNSET", StatusCode.ERROR: "ERROR"}


def _us(ns: int) -> int:
    return (ns + 500) // 1000  # the exporter's rounding


def as_received(sp) -> SimpleNamespace:
    """`sp` with the kind, status and times the receiver hands on, in the shape redmodel reads."""
    start = _us(sp.start_time) * 1000
    return SimpleNamespace(
        context=sp.context, resource=sp.resource, name=sp.name, attributes=sp.attributes,
        kind=SimpleNamespace(name=RECEIVED_KIND[sp.kind]),
        status=SimpleNamespace(status_code=SimpleNamespace(name=RECEIVED_STATUS[sp.status.status_code])),
        start_time=start, end_time=start + _us(sp.end_time - sp.start_time) * 1000,
    )


def tally(spans: list) -> redmodel.Expected:
    return redmodel.Expected([as_received(sp) for sp in spans], dimensions=())


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


def accepted_spans(rl: Redline) -> float:
    return rl.self_telemetry().value("otelcol_receiver_accepted_spans", receiver="zipkin", transport="http_v2_json")


# ---------------------------------------------------------------- the tests


def test_sdk_zipkin_exporter_to_span_metrics(procs, redline_bin, tmp_path):
    rl = start(procs, redline_bin, tmp_path)
    sent = []
    for service, plan in (("frontend", FRONTEND), ("checkout", CHECKOUT), ("inventory", INVENTORY)):
        spans = record(service, plan)
        # frontend in two requests: counts add up across requests of one service.
        for batch in ([spans[:3], spans[3:]] if service == "frontend" else [spans]):
            assert export(rl.zipkin_url + V2, batch) == SpanExportResult.SUCCESS
            sent += batch
    exp = tally(sent)
    assert len(exp.counted) == len(sent) == 16
    # The rules above, spelled out for a few series the tally must hold.
    assert exp.calls[redmodel.key({"service_name": "frontend", "span_name": "render",
                                   "span_kind": "SPAN_KIND_UNSPECIFIED", "status_code": "STATUS_CODE_UNSET"})] == 2
    assert exp.calls[redmodel.key({"service_name": "checkout", "span_name": "publish order",
                                   "span_kind": "SPAN_KIND_PRODUCER", "status_code": "STATUS_CODE_UNSET"})] == 1
    assert exp.sum_errors() == 5 and len(exp.calls) == 13

    wait_counted(rl, len(sent))
    check_red(rl, exp)
    assert accepted_spans(rl) == len(sent)
    assert rl.alive()
    rl.stop()


def test_bad_input_loses_nothing_already_taken(procs, redline_bin, tmp_path):
    rl = start(procs, redline_bin, tmp_path)
    url = rl.zipkin_url + V2
    first = record("orders", [("GET /orders", S, None, ms(12)), ("GET /orders", S, ERROR, ms(80)),
                              ("load", I, None, ms(3))])
    assert export(url, first) == SpanExportResult.SUCCESS
    wait_counted(rl, len(first))

    # Good spans of another service made bad: the SDK's JSON cut off mid-span, and three
    # spans whose second has no id. Each request is refused whole: none of its spans counts.
    never = record("never-counted", [("GET /lost", S, None, ms(4))] * 3)
    cut = sdk_body(never)[:-40]
    no_id = json.loads(sdk_body(never))
    del no_id[1]["id"]
    reasons = {}
    for what, body in (("broken JSON", cut), ("a span without an id", json.dumps(no_id).encode())):
        r = requests.post(url, data=body, headers=JSON_CT, timeout=10)
        assert r.status_code == 400 and r.text.strip(), (what, r.status_code, r.text)
        reasons[what] = r.text.strip()
    assert "span 1" in reasons["a span without an id"] and "id" in reasons["a span without an id"], reasons

    second = record("orders", [("GET /orders", S, None, ms(14)), ("POST /orders", S, OK, ms(220)),
                               ("load", I, ERROR, ms(5))])
    assert export(url, second) == SpanExportResult.SUCCESS
    exp = tally(first + second)
    assert sum(exp.calls.values()) == 6
    wait_counted(rl, 6)
    check_red(rl, exp)
    # The receiver's own counters: the refused requests count nowhere.
    assert accepted_spans(rl) == 6
    assert rl.self_telemetry().value("otelcol_receiver_refused_spans", receiver="zipkin",
                                     transport="http_v2_json") == 0
    assert rl.alive()
    rl.stop()


def test_bearer_token_auth_over_tls(procs, redline_bin, tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    make_pki(certs)
    ca = str(certs / "ca.pem")
    rl = start(procs, redline_bin, tmp_path, **{k: v.replace("{certs}", str(certs)) for k, v in AUTH_TLS.items()})
    url = f"https://127.0.0.1:{rl.ports['zipkin']}{V2}"

    denied = record("denied", [("GET /x", S, None, ms(2.5)), ("GET /y", C, ERROR, ms(7))])
    body = sdk_body(denied)
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        r = requests.post(url, data=body, headers={**JSON_CT, **headers}, verify=ca, timeout=10)
        assert r.status_code == 401 and r.text.strip() and "wrong-token" not in r.text, (r.status_code, r.text)
    assert export(url, denied, session=_session(ca)) == SpanExportResult.FAILURE
    with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP on a TLS receiver
        requests.post(f"http://127.0.0.1:{rl.ports['zipkin']}{V2}", data=body, timeout=5,
                      headers={**JSON_CT, "Authorization": f"Bearer {TOKEN}"})

    raw = record("allowed", [("GET /ok", S, None, ms(15)), ("cache", I, None, ms(1))])
    r = requests.post(url, data=sdk_body(raw), headers={**JSON_CT, "Authorization": f"Bearer {TOKEN}"},
                      verify=ca, timeout=10)
    assert r.status_code == 202, (r.status_code, r.text)
    sdk = record("allowed", [("GET /ok", S, Status(StatusCode.ERROR, "x"), ms(40)), ("publish", P, OK, ms(6))])
    assert export(url, sdk, session=_session(ca, TOKEN)) == SpanExportResult.SUCCESS

    exp = tally(raw + sdk)
    wait_counted(rl, 4)
    check_red(rl, exp)
    assert accepted_spans(rl) == 4
    assert rl.alive()
    rl.stop()
    assert TOKEN not in rl.proc.log_path.read_text(errors="replace"), "the token appeared in the log"


def _session(ca: str, token: str | None = None) -> requests.Session:
    """A session for the SDK's exporter: the test CA, and the token if given."""
    s = requests.Session()
    s.verify = ca
    # Else REQUESTS_CA_BUNDLE, when set, wins over the session's CA (requests issue #3829).
    s.trust_env = False
    if token is not None:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def test_zipkin_v1_is_refused(procs, redline_bin, tmp_path):
    rl = start(procs, redline_bin, tmp_path)
    # A body the v2 path takes: refused on the v1 path for the path alone.
    legacy = record("legacy", [("GET /v1", S, None, ms(4))])
    body = sdk_body(legacy)
    for _ in range(2):
        r = requests.post(rl.zipkin_url + "/api/v1/spans", data=body, headers=JSON_CT, timeout=10)
        assert r.status_code == 400 and "v1" in r.text, (r.status_code, r.text)
    r = requests.post(rl.zipkin_url + V2, data=body, headers=JSON_CT, timeout=10)
    assert r.status_code == 202, (r.status_code, r.text)
    wait_counted(rl, 1)
    check_red(rl, tally(legacy))
    assert accepted_spans(rl) == 1
    assert rl.alive()
    rl.stop()
    log = rl.proc.log_path.read_text(errors="replace")
    assert log.count("Zipkin v1 spans") == 1, log
