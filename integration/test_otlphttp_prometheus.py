"""Redline's `otlphttp` exporter in front of a real Prometheus 3 OTLP receiver.

    OpenTelemetry Python SDK --OTLP/gRPC--> redline (otlp -> otlphttp/prom)
        --OTLP/HTTP--> prometheus 3.16 --web.enable-otlp-receiver  (/api/v1/otlp/v1/metrics)

The exporter's endpoint is `http://127.0.0.1:<port>/api/v1/otlp`, the base URL Prometheus
documents: Redline appends `/v1/metrics`. Prometheus is the pinned build of
`tools/prometheus3/` (`scripts/prometheus3`, or PROMETHEUS3_BIN); Debian's 2.42 has no OTLP
receiver.

The SDK sends a counter (two label sets, known increments), a gauge and a histogram with
explicit buckets and known observations, cumulative, in three exports (force_flush twice,
then the reader's last export at shutdown). Every export the SDK makes is also encoded with
the SDK's own encoder and kept. Then:

  * Prometheus holds exactly the series the OTLP translation of 3.16 makes of them
    (UnderscoreEscapingWithSuffixes: `shop_orders_total`, `shop_queue_fill_ratio`,
    `shop_latency_milliseconds_{bucket,sum,count}`; job = service.namespace/service.name,
    instance = service.instance.id, deployment.environment promoted to a label, target_info
    with the other resource attributes), each with exactly one sample per exported data point
    (same millisecond timestamp, same value), and the latest values are the hand-computed ones;
  * Redline's otelcol_exporter_sent_metric_points{exporter="otlphttp/prom"} equals the
    data points the SDK exported, with nothing failed.

Prometheus 3.16 decodes `application/x-protobuf` and `application/json` (exact content type),
gzip or uncompressed, so both of Redline's encodings are run. A sample Prometheus refuses
(the same timestamp with another value) is answered 400: Redline must log it as a permanent
failure, count exactly that request's points as send_failed, and keep sending afterwards.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

import helpers
import otlp_signals
from otlp_signals import ACCEPTED, SEND_FAILED, SENT
from promquery import Prom
from redline_run import Redline

EXPORTER = "otlphttp/prom"

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}

exporters:
  otlphttp/prom:
    endpoint: http://127.0.0.1:{prom_port}/api/v1/otlp
    encoding: {encoding}
    compression: {compression}

service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [otlphttp/prom]
"""

# Prometheus 3.16: the OTLP translation spelled out (its defaults, except the promoted
# attribute), and an out-of-order window so that a sample a little older than the newest one
# of its series is still taken (the tests send none; a reordering would not fail them, the
# exact-samples check would still see every point).
PROM_CONFIG = """
global:
  scrape_interval: 1m
otlp:
  translation_strategy: UnderscoreEscapingWithSuffixes
  promote_resource_attributes: [deployment.environment]
storage:
  tsdb:
    out_of_order_time_window: 10m
"""

SERVICE = {"service.namespace": "redline-it", "service.name": "shop", "service.instance.id": "shop-1",
           "deployment.environment": "test"}
JOB, INSTANCE = "redline-it/shop", "shop-1"

# OTLP metric name -> the Prometheus name 3.16's UnderscoreEscapingWithSuffixes makes of it
# (counter: `_total`; unit "1" on a gauge: `_ratio`; "ms": `_milliseconds`; `{order}`: none).
PROM_NAME = {"shop.orders": "shop_orders_total", "shop.queue.fill": "shop_queue_fill_ratio",
             "shop.latency": "shop_latency_milliseconds"}
BOUNDS = (10.0, 50.0, 100.0, 500.0)

# (encoding, compression) of the otlphttp exporter.
VARIANTS = [("proto", "gzip"), ("json", "gzip"), ("proto", "none")]


# ---------------------------------------------------------------- Prometheus 3


@lru_cache(maxsize=1)
def _locate_prometheus3() -> tuple:
    """PROMETHEUS3_BIN, else the path `scripts/prometheus3` prints last (it builds once and
    caches; scripts/test runs it before the suite)."""
    env = os.environ.get("PROMETHEUS3_BIN")
    if env:
        p = Path(env)
    else:
        out = subprocess.run([str(helpers.REPO / "scripts" / "prometheus3")], capture_output=True, text=True,
                             timeout=1900, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            return None, f"scripts/prometheus3 failed:\n{out.stderr}"
        p = Path(out.stdout.strip().splitlines()[-1])
    if not (p.is_file() and os.access(p, os.X_OK)):
        return None, f"Prometheus 3 not found at {p} (scripts/prometheus3 builds it; or set PROMETHEUS3_BIN)"
    return p, ""


@pytest.fixture(scope="module")
def prometheus3_bin() -> Path:
    p, why = _locate_prometheus3()
    if p is None:
        if os.environ.get("REDLINE_ALLOW_SKIP") == "1":
            pytest.skip(why + "; skipped because REDLINE_ALLOW_SKIP=1")
        pytest.fail(why, pytrace=False)
    return p


def start_prometheus3(procs, work: Path, binary: Path) -> Prom:
    """Prometheus 3 on a free 127.0.0.1 port with its OTLP receiver, storage in `work`."""
    port = helpers.free_port()
    (work / "prometheus3.yml").write_text(PROM_CONFIG)
    proc = procs.start("prometheus3", [
        binary,
        f"--config.file={work / 'prometheus3.yml'}",
        f"--storage.tsdb.path={work / 'prom3-tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-otlp-receiver",
        "--log.level=info",
    ])
    prom = Prom(port, proc)
    helpers.wait_until(lambda: requests.get(f"{prom.base}/-/ready", timeout=1).status_code == 200,
                       30, "prometheus 3 /-/ready", alive=proc)
    return prom


def start_pair(procs, tmp_path, redline_bin, prometheus3_bin, encoding, compression):
    prom = start_prometheus3(procs, tmp_path, prometheus3_bin)
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, prom_port=prom.port, encoding=encoding,
                 compression=compression).start()
    return prom, rl


def exporter_counts(rl: Redline) -> dict:
    t = rl.self_telemetry()
    return {"sent": t.sum(SENT["metrics"], exporter=EXPORTER),
            "send failed": t.sum(SEND_FAILED["metrics"], exporter=EXPORTER),
            "accepted": t.sum(ACCEPTED["metrics"], receiver="otlp", transport="grpc")}


def stored(prom: Prom, window: str = "1h") -> dict:
    """Every sample Prometheus holds for the test's job, target_info aside:
    {(name, label key without __name__): [(timestamp ms, value)]}."""
    data = prom.data(f'{{job="{JOB}",__name__!="target_info"}}[{window}]')
    assert data["resultType"] == "matrix", data
    out = {}
    for s in data["result"]:
        m = dict(s["metric"])
        name = m.pop("__name__")
        out[(name, helpers.label_key(m))] = [(round(float(t) * 1000), helpers.parse_float(v)) for t, v in s["values"]]
    return out


def latest(prom: Prom) -> dict:
    return {(m["__name__"], helpers.label_key(m, ("__name__",))): v for m, v in prom.query(f'{{job="{JOB}"}}')}


# ---------------------------------------------------------------- what the SDK sent, translated


def _value(any_value) -> str:
    kind = any_value.WhichOneof("value")
    v = getattr(any_value, kind)
    return str(v).lower() if kind == "bool_value" else str(v)


def translated(requests: list) -> dict:
    """The samples Prometheus 3.16 makes of the exported requests, in stored()'s form: one per
    data point (per bucket, sum and count for histograms), at the point's time in ms."""
    out = defaultdict(list)
    for req in requests:
        for rm in req.resource_metrics:
            res = {a.key: _value(a.value) for a in rm.resource.attributes}
            base = {"job": f"{res['service.namespace']}/{res['service.name']}",
                    "instance": res["service.instance.id"],
                    "deployment_environment": res["deployment.environment"]}
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    name = PROM_NAME[m.name]
                    kind = m.WhichOneof("data")
                    for p in otlp_signals.data_points(m):
                        labels = {**base, **{a.key: _value(a.value) for a in p.attributes}}
                        ts = p.time_unix_nano // 1_000_000

                        def add(n, v, **extra):
                            out[(n, helpers.label_key({**labels, **extra}))].append((ts, float(v)))

                        if kind in ("sum", "gauge"):
                            add(name, p.as_double if p.WhichOneof("value") == "as_double" else p.as_int)
                        elif kind == "histogram":
                            add(name + "_sum", p.sum)
                            add(name + "_count", p.count)
                            cum = 0
                            for bound, n in zip(list(p.explicit_bounds) + [math.inf], p.bucket_counts):
                                cum += n
                                add(name + "_bucket", cum, le="+Inf" if bound == math.inf else f"{bound:g}")
                        else:
                            raise AssertionError(f"unexpected metric kind {kind} of {m.name}")
    return dict(out)


def send_sdk_metrics(rl: Redline) -> list:
    """The counter, gauge and histogram through the SDK over OTLP/gRPC, in three cumulative
    exports; returns the encoded request of every export (all must succeed)."""
    exported, failed = [], []

    class Recording(OTLPMetricExporter):
        def export(self, data, *args, **kw):
            request = encode_metrics(data)
            result = super().export(data, *args, **kw)
            (exported if result == MetricExportResult.SUCCESS else failed).append(request)
            return result

    exporter = Recording(endpoint=f"127.0.0.1:{rl.grpc}", insecure=True, timeout=10)
    # Exports only on force_flush and at shutdown.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    mp = MeterProvider(resource=Resource.create(SERVICE), metric_readers=[reader])
    meter = mp.get_meter("redline.it.prometheus3", "1.0")
    orders = meter.create_counter("shop.orders", unit="{order}", description="orders placed")
    fill = meter.create_gauge("shop.queue.fill", unit="1", description="queue fill level")
    latency = meter.create_histogram("shop.latency", unit="ms", description="request latency",
                                     explicit_bucket_boundaries_advisory=list(BOUNDS))
    try:
        for v in (3, 4):
            orders.add(v, {"route": "/cart", "code": 200})
        orders.add(5, {"route": "/checkout", "code": 500})
        fill.set(0.25)
        for v in (3, 10, 42):
            latency.record(v)
        assert mp.force_flush(10_000)
        time.sleep(0.05)  # the next export's points get a later millisecond
        orders.add(6, {"route": "/cart", "code": 200})
        fill.set(0.75)
        for v in (77, 100, 250, 900):
            latency.record(v)
        assert mp.force_flush(10_000)
        time.sleep(0.05)
    finally:
        mp.shutdown()  # the reader's last export: the same cumulative values, later
    assert not failed, f"{len(failed)} SDK export(s) failed\n{rl.proc.log_text()}"
    assert len(exported) == 3, len(exported)
    return exported


def final_values() -> dict:
    """The latest value of every series, by hand from what send_sdk_metrics recorded."""
    base = {"job": JOB, "instance": INSTANCE, "deployment_environment": "test"}

    def k(name, **labels):
        return name, helpers.label_key({**base, **labels})

    le = {"10": 2, "50": 3, "100": 5, "500": 6, "+Inf": 7}  # observations 3 10 42 77 100 250 900
    want = {
        k("shop_orders_total", route="/cart", code="200"): 13.0,
        k("shop_orders_total", route="/checkout", code="500"): 5.0,
        k("shop_queue_fill_ratio"): 0.75,
        k("shop_latency_milliseconds_sum"): 1382.0,
        k("shop_latency_milliseconds_count"): 7.0,
        **{k("shop_latency_milliseconds_bucket", le=b): float(n) for b, n in le.items()},
    }
    sdk = Resource.create(SERVICE).attributes
    info = {a.replace(".", "_"): str(v) for a, v in sdk.items()
            if a not in ("service.namespace", "service.name", "service.instance.id")}
    want[("target_info", helpers.label_key({"job": JOB, "instance": INSTANCE, **info}))] = 1.0
    return want


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("encoding,compression", VARIANTS, ids=[f"{e}-{c}" for e, c in VARIANTS])
def test_sdk_metrics_land_in_prometheus3(redline_bin, prometheus3_bin, procs, tmp_path, encoding, compression):
    prom, rl = start_pair(procs, tmp_path, redline_bin, prometheus3_bin, encoding, compression)
    exported = send_sdk_metrics(rl)
    points = otlp_signals.count_items("metrics", exported)
    assert points == 3 * 4, points  # per export: 2 counter points, 1 gauge point, 1 histogram point

    # Redline forwarded every point and Prometheus answered 2xx for each request.
    try:
        helpers.wait_until(lambda: exporter_counts(rl)["sent"] >= points, 20,
                           f"redline to send {points} points", alive=rl.proc)
    except helpers.WaitTimeout:
        pass  # reported with the exact counts below
    assert exporter_counts(rl) == {"sent": points, "send failed": 0, "accepted": points}, \
        f"{exporter_counts(rl)}\n{rl.proc.log_text()}"

    # Prometheus holds exactly one sample per exported data point, and nothing else.
    want = translated(exported)
    state = {}

    def settled():
        state["got"] = stored(prom)
        return state["got"] == want

    try:
        helpers.wait_until(settled, 10, "prometheus to hold the exported samples", interval=0.3)
    except helpers.WaitTimeout:
        got = state.get("got", {})
        diff = [f"missing {k}: {want[k]}" for k in sorted(set(want) - set(got))]
        diff += [f"unexpected {k}: {got[k]}" for k in sorted(set(got) - set(want))]
        diff += [f"{k}: got {got[k]}, want {want[k]}" for k in sorted(set(got) & set(want)) if got[k] != want[k]]
        raise AssertionError("prometheus' samples differ from the SDK's exports:\n  " + "\n  ".join(diff)) from None

    # And the latest values, names and labels are the hand-computed ones.
    assert latest(prom) == final_values()
    rl.stop()


@pytest.mark.parametrize("encoding", ["proto", "json"])
def test_prometheus3_refusal_is_a_permanent_failure(redline_bin, prometheus3_bin, procs, tmp_path, encoding):
    """Prometheus answers 400 to a sample at a timestamp it already holds with another value
    (`duplicate sample for timestamp`): Redline drops that request as a permanent error (no
    retry), counts its point as send_failed, and sends the next request as usual."""
    prom, rl = start_pair(procs, tmp_path, redline_bin, prometheus3_bin, encoding, "gzip")
    channel = rl.grpc_channel()
    stub = metrics_service_pb2_grpc.MetricsServiceStub(channel)
    t0 = time.time_ns() // 1_000_000 * 1_000_000 - 2_000_000_000  # both points in the past of the query

    def gauge(value: float, t_ns: int):
        attrs = [common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v))
                 for k, v in (("service.name", "dup"), ("service.instance.id", "d1"))]
        point = metrics_pb2.NumberDataPoint(time_unix_nano=t_ns, as_double=value)
        return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
            resource=resource_pb2.Resource(attributes=attrs),
            scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metrics_pb2.Metric(
                name="dup.level", gauge=metrics_pb2.Gauge(data_points=[point]))])])])

    def counts_reach(sent, failed):
        helpers.wait_until(lambda: (lambda c: c["sent"] == sent and c["send failed"] == failed)(exporter_counts(rl)),
                           20, f"sent={sent} send_failed={failed}", alive=rl.proc)

    stub.Export(gauge(1.0, t0), timeout=10)
    counts_reach(1, 0)
    stub.Export(gauge(2.0, t0), timeout=10)  # same series, same timestamp, another value
    counts_reach(1, 1)
    # (A retried 400 would have kept send_failed at 0 for retry_on_failure's 300 s.)
    stub.Export(gauge(3.0, t0 + 1_000_000_000), timeout=10)
    counts_reach(2, 1)
    channel.close()
    assert exporter_counts(rl) == {"sent": 2, "send failed": 1, "accepted": 3}

    samples = prom.data('dup_level{job="dup",instance="d1"}[1h]')["result"]
    assert [[(round(float(t) * 1000), v) for t, v in s["values"]] for s in samples] == \
        [[(t0 // 1_000_000, "1"), (t0 // 1_000_000 + 1000, "3")]]

    log = rl.proc.log_text(limit=200_000)
    failures = [line for line in log.splitlines() if "permanent error" in line]
    assert len(failures) == 1, f"want one permanent-failure log line, got {failures}\n{log}"
    line = failures[0]
    assert EXPORTER in line and "HTTP 400" in line and "duplicate sample for timestamp" in line, line
    rl.stop()
