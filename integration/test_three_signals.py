"""Traces, metrics and logs through one Redline, from the OpenTelemetry Python SDK.

One config with three pipelines, each `otlp` -> [memory_limiter, batch] -> its backend:
traces to otlp/tempo and metrics to otlp/mimir (independent OTLP/gRPC sinks), logs to
otlphttp/loki (an independent OTLP/HTTP sink at /otlp, as Loki serves it). The SDK sends spans,
four kinds of metric instruments (counter, up-down counter, histogram, observable gauge) and
logs from Python's `logging` through the SDK's LoggingHandler, over OTLP/gRPC and, in a
second run, OTLP/HTTP protobuf.

Exactness: every SDK exporter is wrapped so that each export that succeeded is also encoded
with the SDK's own encoders (encode_spans / encode_metrics / encode_logs) and kept. The sinks
must have received exactly those spans, data points and log records, with their resources and
scopes (compared decoded and flattened; Redline may concatenate queued requests). Redline's
own counters (accepted per signal and transport, sent per exporter) must equal the tally.
"""

from __future__ import annotations

import logging
import time
import warnings

import pytest
from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common._internal._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

import helpers
import otlp_signals
from otlp_http_sink import OtlpHttpSink
from otlp_signals import ACCEPTED, REFUSED, SEND_FAILED, SENT, SIGNALS
from otlp_sink import OtlpSink
from redline_run import Redline

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}

processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:

exporters:
  otlp/tempo:
    endpoint: 127.0.0.1:{tempo}
    tls:
      insecure: true
  otlp/mimir:
    endpoint: 127.0.0.1:{mimir}
    tls:
      insecure: true
  otlphttp/loki:
    endpoint: http://127.0.0.1:{loki}/otlp

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
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/tempo]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp/mimir]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp/loki]
"""

EXPORTER = {"traces": "otlp/tempo", "metrics": "otlp/mimir", "logs": "otlphttp/loki"}
ROUNDS = 40


class Tally:
    """What the SDK exported successfully: the encoded request of every export, per signal."""

    def __init__(self):
        self.requests = {s: [] for s in SIGNALS}
        self.failed = {s: 0 for s in SIGNALS}

    def keep(self, signal: str, request, ok: bool):
        if ok:
            self.requests[signal].append(request)
        else:
            self.failed[signal] += 1

    def count(self, signal: str) -> int:
        return otlp_signals.count_items(signal, self.requests[signal])

    def flat(self, signal: str):
        return otlp_signals.flatten(signal, self.requests[signal])


def recording(base, signal: str, encode, ok_value, tally: Tally):
    """A subclass of the SDK exporter `base` that keeps the SDK's own encoding of every
    export (made before the export, from the same data) when the export succeeded."""

    class Recording(base):
        def export(self, data, *args, **kw):
            request = encode(data)
            result = super().export(data, *args, **kw)
            tally.keep(signal, request, result == ok_value)
            return result

    return Recording


def sdk_exporters(protocol: str, rl: Redline, tally: Tally) -> dict:
    if protocol == "grpc":
        kw = {"endpoint": f"127.0.0.1:{rl.grpc}", "insecure": True, "timeout": 10}
        bases = {"traces": GrpcSpanExporter, "metrics": GrpcMetricExporter, "logs": GrpcLogExporter}
        per_signal = {s: kw for s in SIGNALS}
    else:
        bases = {"traces": HttpSpanExporter, "metrics": HttpMetricExporter, "logs": HttpLogExporter}
        per_signal = {s: {"endpoint": f"http://127.0.0.1:{rl.http}/v1/{s}", "timeout": 10} for s in SIGNALS}
    encoders = {"traces": (encode_spans, SpanExportResult.SUCCESS),
                "metrics": (encode_metrics, MetricExportResult.SUCCESS),
                "logs": (encode_logs, LogRecordExportResult.SUCCESS)}
    return {s: recording(bases[s], s, *encoders[s], tally)(**per_signal[s]) for s in SIGNALS}


def run_sdk(protocol: str, rl: Redline, tally: Tally):
    """Spans, metrics of four instrument kinds and logs (some inside spans, so they carry the
    trace context, one with an exception) through the SDK, then shut every provider down so
    that nothing is left pending."""
    exporters = sdk_exporters(protocol, rl, tally)
    resource = Resource.create({"service.name": "three-signals", "service.instance.id": f"it-{protocol}",
                                "deployment.environment": "test"})

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(exporters["traces"], schedule_delay_millis=100, max_export_batch_size=64))
    tracer = tp.get_tracer("three-signals.app", "1.2.3")

    gauge_values = iter(range(1000))

    def observe(_options):
        v = next(gauge_values)
        return [metrics_api.Observation(v * 1.5, {"pool": "db"}), metrics_api.Observation(-v, {"pool": "cache"})]

    reader = PeriodicExportingMetricReader(exporters["metrics"], export_interval_millis=200)
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    meter = mp.get_meter("three-signals.meter", "0.9")
    requests_total = meter.create_counter("app.requests", unit="{request}", description="requests handled")
    in_flight = meter.create_up_down_counter("app.in_flight", unit="{request}")
    latency = meter.create_histogram("app.latency", unit="ms", description="request latency")
    meter.create_observable_gauge("app.pool.usage", callbacks=[observe], unit="1")

    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(exporters["logs"], schedule_delay_millis=100,
                                                        max_export_batch_size=64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's handler is deprecated, still shipped
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=lp)
    log = logging.getLogger(f"three-signals.{protocol}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(handler)

    try:
        routes = ["/api/cart", "/api/checkout", "/health"]
        for i in range(ROUNDS):
            route = routes[i % len(routes)]
            with tracer.start_as_current_span("GET " + route, kind=trace_api.SpanKind.SERVER,
                                              attributes={"http.route": route, "round": i}) as sp:
                in_flight.add(1, {"route": route})
                with tracer.start_as_current_span("db.query", kind=trace_api.SpanKind.CLIENT) as child:
                    child.set_attribute("db.system", "postgresql")
                    if i % 7 == 3:
                        child.set_status(trace_api.Status(trace_api.StatusCode.ERROR, "timeout"))
                requests_total.add(1, {"route": route, "code": 500 if i % 7 == 3 else 200})
                latency.record(0.5 + i * 3.7, {"route": route})
                log.info("handled %s in round %d", route, i, extra={"route": route})
                if i % 7 == 3:
                    try:
                        raise TimeoutError("db timeout")
                    except TimeoutError:
                        log.exception("request failed")
                sp.add_event("done", {"round": i})
                in_flight.add(-1, {"route": route})
            if i % 10 == 0:
                log.warning("outside any span: round %d", i)
            time.sleep(0.02)  # ~1 s in all: several periodic metric exports and span/log batches
        log.debug({"structured": True, "rounds": ROUNDS})  # a map body
    finally:
        log.removeHandler(handler)
        for provider in (tp, mp, lp):
            provider.shutdown()


@pytest.fixture
def backends():
    tempo, mimir, loki = OtlpSink().start(), OtlpSink().start(), OtlpHttpSink().start()
    try:
        yield tempo, mimir, loki
    finally:
        for s in (tempo, mimir, loki):
            s.stop()


def received(signal: str, tempo, mimir, loki) -> list:
    if signal == "logs":
        return loki.requests_of("logs")
    return (tempo if signal == "traces" else mimir).requests_of(signal)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_sdk_three_signals(redline_bin, procs, tmp_path, backends, protocol):
    tempo, mimir, loki = backends
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, tempo=tempo.port, mimir=mimir.port, loki=loki.port).start()
    tally = Tally()
    run_sdk(protocol, rl, tally)
    assert tally.failed == {s: 0 for s in SIGNALS}, \
        f"SDK exports failed: {tally.failed}\n{rl.proc.log_text()}"
    want = {s: tally.count(s) for s in SIGNALS}
    exports = {s: len(tally.requests[s]) for s in SIGNALS}
    assert all(want.values()) and exports["metrics"] >= 3, (want, exports)

    # Everything the SDK exported reaches its backend (bounded wait), then nothing more.
    def arrived():
        got = {s: otlp_signals.count_items(s, received(s, tempo, mimir, loki)) for s in SIGNALS}
        return got if all(got[s] >= want[s] for s in SIGNALS) else None

    helpers.wait_until(arrived, 20, f"the backends to receive {want}", alive=rl.proc)
    time.sleep(0.5)
    problems = [otlp_signals.diff_flat(s, tally.flat(s), otlp_signals.flatten(s, received(s, tempo, mimir, loki)))
                for s in SIGNALS]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)

    # Each backend got its own signal only; the logs came as otlphttp sends them by default.
    assert tempo.counts() == {"traces": tempo.counts()["traces"], "metrics": 0, "logs": 0}, tempo.counts()
    assert mimir.counts() == {"traces": 0, "metrics": mimir.counts()["metrics"], "logs": 0}, mimir.counts()
    posts = loki.posted()
    assert posts and {p.path for p in posts} == {"/otlp/v1/logs"}, {p.path for p in posts}
    assert not [p.error for p in posts if p.error], [p.error for p in posts]
    assert {p.headers.get("content-type") for p in posts} == {"application/x-protobuf"}
    assert {p.headers.get("content-encoding") for p in posts} == {"gzip"}

    # Redline's own counters equal the tally exactly.
    transport = "grpc" if protocol == "grpc" else "http"
    other = "http" if transport == "grpc" else "grpc"

    def settled():
        t = rl.self_telemetry()
        return t if all(t.sum(SENT[s], exporter=EXPORTER[s]) == want[s] for s in SIGNALS) else None

    try:
        t = helpers.wait_until(settled, 10, "Redline's exporter counters to reach the tally")
    except helpers.WaitTimeout:
        t = rl.self_telemetry()
    got = {}
    for s in SIGNALS:
        got[s] = {
            "accepted": t.get((ACCEPTED[s], frozenset({("receiver", "otlp"), ("transport", transport)}))),
            f"accepted over {other}": t.get((ACCEPTED[s], frozenset({("receiver", "otlp"), ("transport", other)})), 0),
            "refused": t.get((REFUSED[s], frozenset({("receiver", "otlp"), ("transport", transport)})), 0),
            "sent": t.sum(SENT[s], exporter=EXPORTER[s]),
            "send failed": t.sum(SEND_FAILED[s], exporter=EXPORTER[s]),
        }
    expected = {s: {"accepted": want[s], f"accepted over {other}": 0, "refused": 0, "sent": want[s],
                    "send failed": 0} for s in SIGNALS}
    assert got == expected, f"self-telemetry differs from the tally:\n got {got}\nwant {expected}"
    rl.stop()
