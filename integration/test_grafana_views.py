"""Grafana's two trace views over Redline's metrics, through a real Prometheus: the Tempo data
source's Service Graph (node graph from the `servicegraph` connector's series) and its RED table
(spanmetrics with `tempo_red_table: true`), with the exact PromQL those views run.

Traffic: the OpenTelemetry Python SDK (spans made by TracerProviders of three services, sent by
its OTLP/gRPC exporter), a known topology sent twice (batch 1, then batch 2):

  frontend  --HTTP------------>  checkout   4 traces: CLIENT -> SERVER "POST /checkout",
                                            server 30 ms x3 and 300 ms x1 (that one ERROR)
  checkout  --messaging_system->  worker     3 traces: PRODUCER (1 ms) -> CONSUMER (150 ms), kafka
  checkout  --database-------->  orders     2 CLIENT spans "SELECT orders" (7 ms), db.name=orders
  user      --virtual_node---->  checkout   5 root SERVER spans "POST /webhook" (300 ms)

Checked, every value exact (counts equal, floats to 1e-9 relative), none as "> 0":
  - raw counters: request_total per (client, server, connection_type), failed_total per
    (client, server), server latency sums; calls per checkout label set; latency sum/count
  - Grafana's queries with their `[$__range]` filled in by the window between two scrapes: the
    last scrape after batch 1 had settled (t_a) and the last after batch 2 had (t_b), evaluated
    at t_b over exactly t_b - t_a, so Prometheus has no edge to extrapolate to (as in
    test_restart.py): increase() is batch 2's counts, rate() those over the window, quantiles
    those of batch 2's controlled durations in the default buckets
  - every spanmetrics series has `service` equal to `service_name`; the `latency` histogram's
    bounds are the duration's in seconds
  - the shipped dashboard's Node Graph panel (configs/grafana/dashboards/redline-red.json): its
    queries and transformations make the edges frame Grafana draws, with these values
"""

from __future__ import annotations

import json
import math
import time

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

import helpers
import promquery
from promquery import close
from redline_run import Redline
from redmodel import DEFAULT_BUCKETS_MS, histogram_quantile
from sdk_expect import fmt_le

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    tempo_red_table: true
  servicegraph:
    store:
      ttl: 2s
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, servicegraph]
    metrics:
      receivers: [spanmetrics, servicegraph]
      exporters: [prometheus]
"""

MS = 1_000_000
BATCHES = 2
# One batch. Durations in ms; both connectors' default buckets are 2, 4, 6, 8, 10, 50, 100, ...
HTTP = [(30, False), (30, False), (30, False), (300, True)]  # checkout server span: (ms, ERROR)
MESSAGES = 3  # producer 1 ms, consumer 150 ms
QUERIES = 2  # 7 ms
WEBHOOKS = 5  # 300 ms

# Per batch: service-graph edges with their server-side durations (s) and failures.
EDGES = {
    ("frontend", "checkout", ""): [ms / 1000 for ms, _ in HTTP],
    ("checkout", "worker", "messaging_system"): [0.150] * MESSAGES,
    ("checkout", "orders", "database"): [0.007] * QUERIES,
    ("user", "checkout", "virtual_node"): [0.300] * WEBHOOKS,
}
FAILED = {("frontend", "checkout"): sum(err for _, err in HTTP)}
# Per batch: checkout's spans as spanmetrics labels them, with durations (s).
CHECKOUT = {
    ("POST /checkout", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"): [ms / 1000 for ms, err in HTTP if not err],
    ("POST /checkout", "SPAN_KIND_SERVER", "STATUS_CODE_ERROR"): [ms / 1000 for ms, err in HTTP if err],
    ("POST /webhook", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET"): [0.300] * WEBHOOKS,
    ("orders publish", "SPAN_KIND_PRODUCER", "STATUS_CODE_UNSET"): [0.001] * MESSAGES,
    ("SELECT orders", "SPAN_KIND_CLIENT", "STATUS_CODE_UNSET"): [0.007] * QUERIES,
}
DASHBOARD = helpers.REPO / "configs" / "grafana" / "dashboards" / "redline-red.json"
BOUNDS_S = [b / 1000 for b in DEFAULT_BUCKETS_MS] + [math.inf]


def cumulative(durations: list, batches: int = 1) -> dict:
    """{upper bound (s): cumulative count}, upper-inclusive, as both connectors count."""
    return {b: float(batches * sum(d <= b for d in durations)) for b in BOUNDS_S}


def quantile(q: float, durations: list) -> float:
    return histogram_quantile(q, cumulative(durations))


# ------------------------------------------------------------------------ traffic


class Services:
    """A TracerProvider per service, finished spans kept in memory and sent per service with the
    SDK's OTLP/gRPC exporter, each export checked to succeed."""

    NAMES = ("frontend", "checkout", "worker")

    def __init__(self, grpc_port: int):
        self.exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
        self.memory, self.tracers, self.providers = {}, {}, []
        for name in self.NAMES:
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            self.memory[name] = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(self.memory[name]))
            self.tracers[name] = provider.get_tracer("redline.grafana-views")
            self.providers.append(provider)

    def span(self, service, name, kind, ms, parent=None, attrs=None, error=False):
        t0 = time.time_ns()
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        sp = self.tracers[service].start_span(name, context=ctx, kind=kind, start_time=t0, attributes=attrs)
        if error:
            sp.set_status(Status(StatusCode.ERROR, "failed"))
        sp.end(end_time=t0 + int(ms * MS))
        return sp

    def batch(self) -> int:
        """One batch of the topology; returns the number of spans sent."""
        for ms, err in HTTP:
            client = self.span("frontend", "POST /checkout", SpanKind.CLIENT, ms + 2,
                               attrs={"http.request.method": "POST", "server.address": "checkout"}, error=err)
            self.span("checkout", "POST /checkout", SpanKind.SERVER, ms, parent=client,
                      attrs={"http.request.method": "POST", "http.route": "/checkout"}, error=err)
        for _ in range(MESSAGES):
            producer = self.span("checkout", "orders publish", SpanKind.PRODUCER, 1,
                                 attrs={"messaging.system": "kafka", "messaging.destination.name": "orders"})
            self.span("worker", "orders process", SpanKind.CONSUMER, 150, parent=producer,
                      attrs={"messaging.system": "kafka", "messaging.destination.name": "orders"})
        for _ in range(QUERIES):
            self.span("checkout", "SELECT orders", SpanKind.CLIENT, 7,
                      attrs={"db.system": "postgresql", "db.name": "orders"})
        for _ in range(WEBHOOKS):
            self.span("checkout", "POST /webhook", SpanKind.SERVER, 300,
                      attrs={"http.request.method": "POST", "http.route": "/webhook"})
        sent = 0
        for name in self.NAMES:  # one request per service, as three processes would send them
            spans = self.memory[name].get_finished_spans()
            self.memory[name].clear()
            assert self.exporter.export(spans) is SpanExportResult.SUCCESS, f"export of {name}'s spans failed"
            sent += len(spans)
        return sent

    def close(self):
        self.exporter.shutdown()
        for p in self.providers:
            p.shutdown()


# ------------------------------------------------------------------------ expectations

Q_EDGES = "sum by (client, server, connection_type) (traces_service_graph_request_total)"
Q_FAILED = "sum by (client, server) (traces_service_graph_request_failed_total)"
Q_SERVER_SUM = "sum by (client, server, connection_type) (traces_service_graph_request_server_seconds_sum)"
Q_CALLS = ('sum by (span_name, span_kind, status_code) '
           '(traces_spanmetrics_calls_total{service="checkout", service_name="checkout"})')
Q_LATENCY_SUM = 'sum(traces_spanmetrics_latency_sum{service="checkout"})'
Q_LATENCY_COUNT = 'sum(traces_spanmetrics_latency_count{service="checkout"})'
Q_DURATION_SUM_MS = 'sum(traces_spanmetrics_duration_milliseconds_sum{service_name="checkout"})'


def raw_expected(batches: int) -> dict:
    """query -> ({label values: value}, label names) after `batches` batches."""
    all_checkout = [d for ds in CHECKOUT.values() for d in ds]
    return {
        Q_EDGES: ({k: float(batches * len(v)) for k, v in EDGES.items()}, ("client", "server", "connection_type")),
        Q_FAILED: ({k: float(batches * n) for k, n in FAILED.items()}, ("client", "server")),
        Q_SERVER_SUM: ({k: batches * sum(v) for k, v in EDGES.items()}, ("client", "server", "connection_type")),
        Q_CALLS: ({k: float(batches * len(v)) for k, v in CHECKOUT.items()}, ("span_name", "span_kind", "status_code")),
        Q_LATENCY_SUM: ({(): batches * sum(all_checkout)}, ()),
        Q_LATENCY_COUNT: ({(): float(batches * len(all_checkout))}, ()),
        Q_DURATION_SUM_MS: ({(): batches * sum(all_checkout) * 1000}, ()),
    }


def instant(prom: promquery.Prom, q: str, at: float, labels: tuple) -> dict:
    data = prom.data(q, at=at)
    assert data["resultType"] == "vector", data
    # Prometheus drops empty labels: connection_type "" is an absent label.
    return {tuple(s["metric"].get(name, "") for name in labels): helpers.parse_float(s["value"][1])
            for s in data["result"]}


def differences(got: dict, want: dict) -> list:
    out = []
    for k in sorted(set(got) | set(want)):
        if k not in got:
            out.append(f"missing {k} (want {want[k]})")
        elif k not in want:
            out.append(f"unexpected {k} = {got[k]}")
        elif not close(got[k], want[k]):
            out.append(f"{k} = {got[k]}, want {want[k]}")
    return out


def raw_problems(prom, batches: int, at: float) -> list:
    problems = []
    for q, (want, labels) in raw_expected(batches).items():
        problems += [f"{q}: {d}" for d in differences(instant(prom, q, at, labels), want)]
    return problems


def last_scrape(prom) -> float:
    """Timestamp of Prometheus' latest scrape of Redline (every series of a scrape has it)."""
    return prom.raw('up{job="redline"}[30s]')[-1][0]


def settle(prom, batches: int, alive, what: str) -> float:
    """Waits (bounded) until the latest scrape holds exactly `batches` batches; returns its time."""
    state = {}

    def settled():
        state["at"] = last_scrape(prom)
        state["problems"] = raw_problems(prom, batches, state["at"])
        return not state["problems"]

    try:
        helpers.wait_until(settled, 25, what, interval=0.5, alive=alive)
    except helpers.WaitTimeout:
        raise AssertionError(f"{what}: Prometheus never held the expected values:\n  "
                             + "\n  ".join(state.get("problems") or ["no query answered"])) from None
    return state["at"]


# ------------------------------------------------------------------------ the run


class Run:
    pass


@pytest.fixture(scope="module")
def run(redline_bin, module_procs, tmp_path_factory):
    work = tmp_path_factory.mktemp("grafana-views")
    rl = Redline(module_procs, redline_bin, work, CONFIG).start()
    prom = promquery.start_prometheus(module_procs, work, [f"127.0.0.1:{rl.prom}"])
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "Prometheus to scrape Redline",
                       alive=prom.proc)
    services = Services(rl.grpc)
    try:
        r = Run()
        r.prom, r.redline = prom, rl
        r.sent = services.batch()
        r.t_a = settle(prom, 1, rl.proc, "batch 1")
        # Batch 2 leaves after the scrape at t_a: nothing of it is in that scrape.
        r.sent += services.batch()
        r.t_b = settle(prom, BATCHES, rl.proc, "batch 2")
        r.range = f"{round((r.t_b - r.t_a) * 1000)}ms"
        r.seconds = round((r.t_b - r.t_a) * 1000) / 1000
        assert r.seconds >= 1, (r.t_a, r.t_b)
    finally:
        services.close()
    assert r.sent == BATCHES * (2 * len(HTTP) + 2 * MESSAGES + QUERIES + WEBHOOKS)
    yield r
    assert rl.alive(), f"redline died:\n{rl.proc.log_text()}"
    rl.stop()


def grafana(run, expr: str, labels: tuple) -> dict:
    """A Grafana query with its `$__range` as the window t_a..t_b, evaluated at t_b."""
    q = expr.replace("$__range", run.range)
    return instant(run.prom, q, run.t_b, labels)


def check(run, expr: str, labels: tuple, want: dict):
    got = grafana(run, expr, labels)
    diff = differences(got, want)
    assert not diff, f"{expr} over {run.range}:\n  " + "\n  ".join(diff)


# ------------------------------------------------------------------------ tests


def test_raw_counters_equal_the_spans_sent(run):
    # settle() already required this at t_b; here the values both windows stand on, explicitly.
    assert raw_problems(run.prom, 1, run.t_a) == []
    assert raw_problems(run.prom, BATCHES, run.t_b) == []
    edges = instant(run.prom, Q_EDGES, run.t_b, ("client", "server", "connection_type"))
    assert edges == {("frontend", "checkout", ""): 8.0, ("checkout", "worker", "messaging_system"): 6.0,
                     ("checkout", "orders", "database"): 4.0, ("user", "checkout", "virtual_node"): 10.0}
    assert instant(run.prom, Q_FAILED, run.t_b, ("client", "server")) == {("frontend", "checkout"): 2.0}


def test_service_graph_node_graph_queries(run):
    """What the Tempo data source's Service Graph runs: edges, failed edges, server latency."""
    by = ("client", "server")
    per_batch = {k[:2]: float(len(v)) for k, v in EDGES.items()}
    check(run, "sum by (client, server) (increase(traces_service_graph_request_total[$__range]))", by, per_batch)
    check(run, "sum by (client, server) (rate(traces_service_graph_request_total[$__range]))", by,
          {k: v / run.seconds for k, v in per_batch.items()})
    failed = {k: float(n) for k, n in FAILED.items()}
    check(run, "sum by (client, server) (increase(traces_service_graph_request_failed_total[$__range]))", by, failed)
    check(run, "sum by (client, server) (rate(traces_service_graph_request_failed_total[$__range]))", by,
          {k: v / run.seconds for k, v in failed.items()})
    # frontend->checkout 0.32 s, checkout->worker 0.19, checkout->orders 0.0078, user->checkout 0.38
    check(run, "histogram_quantile(0.9, sum by (client, server, le) "
               "(rate(traces_service_graph_request_server_seconds_bucket[$__range])))", by,
          {k[:2]: quantile(0.9, v) for k, v in EDGES.items()})
    assert close(quantile(0.9, EDGES[("frontend", "checkout", "")]), 0.32)


def test_red_table_queries(run):
    """What the Tempo data source's RED table runs for one service (checkout)."""
    by = ("span_name",)
    server = {("POST /checkout",): float(len(HTTP)), ("POST /webhook",): float(WEBHOOKS)}
    errors = {("POST /checkout",): float(sum(err for _, err in HTTP))}
    calls = 'traces_spanmetrics_calls_total{service="checkout", span_kind="SPAN_KIND_SERVER"%s}'
    err = ', status_code="STATUS_CODE_ERROR"'
    check(run, f"sum by (span_name) (increase({calls % ''}[$__range]))", by, server)
    check(run, f"sum by (span_name) (rate({calls % ''}[$__range]))", by,
          {k: v / run.seconds for k, v in server.items()})
    check(run, f"sum by (span_name) (increase({calls % err}[$__range]))", by, errors)
    check(run, f"sum by (span_name) (rate({calls % err}[$__range]))", by,
          {k: v / run.seconds for k, v in errors.items()})
    # Every checkout span of batch 2: 0.001 x3, 0.007 x2, 0.03 x3, 0.3 x6 -> p90 0.35333 s.
    all_checkout = [d for ds in CHECKOUT.values() for d in ds]
    check(run, 'histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{service="checkout"}'
               '[$__range])) by (le))', (), {(): quantile(0.9, all_checkout)})
    assert close(quantile(0.9, all_checkout), 0.2 + 0.2 * (12.6 - 8) / 6)
    # Per operation, as the table's latency column: POST /checkout 0.32 s, POST /webhook 0.38 s.
    check(run, 'histogram_quantile(.9, sum(rate(traces_spanmetrics_latency_bucket{service="checkout", '
               'span_kind="SPAN_KIND_SERVER"}[$__range])) by (le, span_name))', by,
          {("POST /checkout",): quantile(0.9, [ms / 1000 for ms, _ in HTTP]), ("POST /webhook",): 0.38})


def test_tempo_red_table_series_shape(run):
    """`service` = `service_name` on every spanmetrics series; `latency` is `duration` in seconds."""
    data = run.prom.data('{__name__=~"traces_spanmetrics_.*"}', at=run.t_b)["result"]
    names = {s["metric"]["__name__"] for s in data}
    assert {"traces_spanmetrics_calls_total", "traces_spanmetrics_latency_bucket", "traces_spanmetrics_latency_sum",
            "traces_spanmetrics_latency_count", "traces_spanmetrics_duration_milliseconds_bucket"} <= names, names
    bad = [s["metric"] for s in data if s["metric"].get("service") != s["metric"].get("service_name")]
    assert not bad, f"series whose service differs from service_name: {bad[:5]}"
    services = {s["metric"]["service"] for s in data if s["metric"]["__name__"] == "traces_spanmetrics_calls_total"}
    assert services == {"frontend", "checkout", "worker"}

    def les(family):
        return {s["metric"]["le"] for s in data if s["metric"]["__name__"] == family}

    # As the exposition writes them (Prometheus 2.x keeps the text; OpenMetrics, which it asks
    # for, writes floats: 2.0): the duration's bounds, and the same in seconds in their shortest
    # form (0.002, 1.4; not 1400 * 0.001 = 1.4000000000000001).
    in_ms, in_s = les("traces_spanmetrics_duration_milliseconds_bucket"), les("traces_spanmetrics_latency_bucket")
    assert in_ms == {fmt_le(b, True) for b in DEFAULT_BUCKETS_MS} | {"+Inf"}, sorted(in_ms)
    assert in_s == {fmt_le(b, True) for b in BOUNDS_S}, sorted(in_s)
    # checkout's POST /webhook spans in the latency buckets: exactly the durations sent, in seconds.
    q = 'sum by (le) (traces_spanmetrics_latency_bucket{service="checkout", span_name="POST /webhook"})'
    got = sorted((helpers.parse_float(k[0]), v) for k, v in instant(run.prom, q, run.t_b, ("le",)).items())
    assert [v for _, v in got] == [cumulative([0.300] * WEBHOOKS, BATCHES)[b] for b in BOUNDS_S], got


def test_dashboard_node_graph_panel(run):
    """The shipped dashboard's Node Graph panel: its two queries (the panel's $__rate_interval
    as the window), merged and renamed as its transformations say, give the edges frame the
    panel draws: id, source, target, mainstat (req/s), secondarystat (failed/s, 0 if none)."""
    dashboard = json.loads(DASHBOARD.read_text())
    panel = next(p for p in dashboard["panels"] if p["type"] == "nodeGraph")
    targets = {t["refId"]: t for t in panel["targets"]}
    assert set(targets) == {"edges", "failed"} and all(t["format"] == "table" and t["instant"]
                                                       for t in targets.values())
    columns = {}
    for ref, t in targets.items():
        q = t["expr"].replace("$__rate_interval", run.range)
        columns[ref] = instant(run.prom, q, run.t_b, ("id", "client", "server"))
    assert set(columns["edges"]) == set(columns["failed"])  # the merge joins row by row
    transforms = [t["id"] for t in panel["transformations"]]
    assert transforms == ["merge", "organize"], transforms
    rename = panel["transformations"][1]["options"]["renameByName"]
    assert rename == {"client": "source", "server": "target", "Value #edges": "mainstat",
                      "Value #failed": "secondarystat"}
    frame = {k: {"mainstat": v, "secondarystat": columns["failed"][k]} for k, v in columns["edges"].items()}
    want = {(f"{c}->{s}", c, s): {"mainstat": len(v) / run.seconds,
                                  "secondarystat": FAILED.get((c, s), 0) / run.seconds}
            for (c, s, _), v in EDGES.items()}
    assert set(frame) == set(want), (frame, want)
    bad = [(k, frame[k], want[k]) for k in want
           if not all(close(frame[k][f], want[k][f]) for f in ("mainstat", "secondarystat"))]
    assert not bad, bad
