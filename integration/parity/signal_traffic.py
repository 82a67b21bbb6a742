"""Hand-built OTLP requests of all three signals for the parity suite: several resources
(with and without schema URLs), scopes with versions and attributes, every metric kind and
temporality, log bodies of every AnyValue kind, severities, trace context, event names.

Each builder takes a `tag` that goes into every resource (attribute `parity.case`), so the
same shapes sent over several transports stay distinguishable in what the collectors forward.
"""

from __future__ import annotations

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from traffic import anyvalue, kv

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA


def _ids(n: int) -> tuple:
    return (0x5B8EFFF798038103D269B633813F0000 + n).to_bytes(16, "big"), (0xEEE19B7EC3C10000 + n).to_bytes(8, "big")


def _resource(tag: str, attrs: dict) -> resource_pb2.Resource:
    return resource_pb2.Resource(attributes=[kv(k, v) for k, v in {**attrs, "parity.case": tag}.items()])


def _scope(name: str, version: str = "", **attrs) -> common_pb2.InstrumentationScope:
    return common_pb2.InstrumentationScope(name=name, version=version, attributes=[kv(k, v) for k, v in attrs.items()])


RESOURCES = [
    ({"service.name": "checkout", "service.instance.id": "checkout-1", "host.name": "node-a"},
     "https://opentelemetry.io/schemas/1.26.0"),
    ({"service.name": "cart", "k8s.pod.name": "cart-7d9f", "replicas": 3, "ratio": 0.75, "canary": True}, ""),
    ({"host.name": "no-service-name"}, ""),
]


# ---------------------------------------------------------------- traces


def traces(tag: str) -> trace_service_pb2.ExportTraceServiceRequest:
    out = []
    n = 0
    for r, (attrs, schema) in enumerate(RESOURCES):
        spans = []
        for i in range(3):
            n += 1
            tid, sid = _ids(r * 100 + n)
            sp = trace_pb2.Span(
                trace_id=tid, span_id=sid, name=f"{tag} op-{r}-{i}", kind=(i % 5) + 1,
                start_time_unix_nano=T0 + n * SEC, end_time_unix_nano=T0 + n * SEC + (i + 1) * 7_000_000,
                attributes=[kv("http.route", f"/r/{i}"), kv("retry", i), kv("sampled", i % 2 == 0)],
                trace_state="vendor=abc" if i == 1 else "", flags=0x301 if i == 2 else 0,
                status=trace_pb2.Status(code=i % 3, message="boom" if i % 3 == 2 else ""),
            )
            if i:
                sp.parent_span_id = _ids(r * 100 + n - 1)[1]
                sp.events.append(trace_pb2.Span.Event(time_unix_nano=T0 + n * SEC + 1000, name="retry",
                                                      attributes=[kv("attempt", i)]))
                sp.links.append(trace_pb2.Span.Link(trace_id=_ids(999)[0], span_id=_ids(999)[1],
                                                    attributes=[kv("link.kind", "follows")]))
            spans.append(sp)
        out.append(trace_pb2.ResourceSpans(
            resource=_resource(tag, attrs), schema_url=schema,
            scope_spans=[trace_pb2.ScopeSpans(scope=_scope("parity.tracer", "1.0.0", lib="py"), spans=spans,
                                              schema_url=schema)]))
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=out)


# ---------------------------------------------------------------- metrics


def _attrs(**a) -> list:
    return [kv(k, v) for k, v in a.items()]


def _exemplar(n: int, value) -> metrics_pb2.Exemplar:
    tid, sid = _ids(500 + n)
    ex = metrics_pb2.Exemplar(time_unix_nano=T0 + n, trace_id=tid, span_id=sid,
                              filtered_attributes=_attrs(**{"http.route": "/x"}))
    if isinstance(value, int):
        ex.as_int = value
    else:
        ex.as_double = value
    return ex


def metric_set(tag: str) -> list:
    """One Metric of every kind, temporality and value type."""
    start, now = T0, T0 + 60 * SEC
    return [
        metrics_pb2.Metric(name="queue.depth", description="items waiting", unit="{item}", gauge=metrics_pb2.Gauge(
            data_points=[metrics_pb2.NumberDataPoint(time_unix_nano=now, as_int=42, attributes=_attrs(queue="a")),
                         metrics_pb2.NumberDataPoint(time_unix_nano=now, as_int=-7, attributes=_attrs(queue="b"))])),
        metrics_pb2.Metric(name="cpu.temperature", unit="Cel", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=now, as_double=71.25,
                                        exemplars=[_exemplar(1, 71.5)]),
            metrics_pb2.NumberDataPoint(time_unix_nano=now, flags=1, attributes=_attrs(core=1))])),  # no recorded value
        metrics_pb2.Metric(name="http.requests", unit="{request}", sum=metrics_pb2.Sum(
            aggregation_temporality=CUMULATIVE, is_monotonic=True, data_points=[
                metrics_pb2.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=now, as_int=1234,
                                            attributes=_attrs(code=200, method="GET"),
                                            exemplars=[_exemplar(2, 1)]),
                metrics_pb2.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=now, as_int=5,
                                            attributes=_attrs(code=500, method="POST"))])),
        metrics_pb2.Metric(name="pool.in_use", sum=metrics_pb2.Sum(
            aggregation_temporality=DELTA, is_monotonic=False, data_points=[
                metrics_pb2.NumberDataPoint(start_time_unix_nano=now - SEC, time_unix_nano=now, as_double=-2.5)])),
        metrics_pb2.Metric(name="http.server.duration", unit="ms", histogram=metrics_pb2.Histogram(
            aggregation_temporality=CUMULATIVE, data_points=[
                metrics_pb2.HistogramDataPoint(
                    start_time_unix_nano=start, time_unix_nano=now, count=10, sum=1234.5, min=0.5, max=800.0,
                    explicit_bounds=[5, 10, 100, 1000], bucket_counts=[1, 2, 3, 4, 0],
                    attributes=_attrs(route="/a"), exemplars=[_exemplar(3, 800.0)]),
                metrics_pb2.HistogramDataPoint(  # no sum/min/max, no buckets: count only
                    start_time_unix_nano=start, time_unix_nano=now, count=3, attributes=_attrs(route="/b"))])),
        metrics_pb2.Metric(name="rpc.latency", unit="s", histogram=metrics_pb2.Histogram(
            aggregation_temporality=DELTA, data_points=[metrics_pb2.HistogramDataPoint(
                start_time_unix_nano=now - SEC, time_unix_nano=now, count=2, sum=0.3,
                explicit_bounds=[0.1], bucket_counts=[1, 1])])),
        metrics_pb2.Metric(name="payload.size", unit="By", exponential_histogram=metrics_pb2.ExponentialHistogram(
            aggregation_temporality=DELTA, data_points=[metrics_pb2.ExponentialHistogramDataPoint(
                start_time_unix_nano=now - SEC, time_unix_nano=now, count=12, sum=4096.0, scale=3, zero_count=1,
                zero_threshold=0.001, min=-3.0, max=900.0,
                positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=-2, bucket_counts=[1, 0, 4, 3]),
                negative=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[2, 1]),
                attributes=_attrs(direction="in"), exemplars=[_exemplar(4, 512.0)])])),
        metrics_pb2.Metric(name="gc.pause", unit="ms", summary=metrics_pb2.Summary(data_points=[
            metrics_pb2.SummaryDataPoint(
                start_time_unix_nano=start, time_unix_nano=now, count=100, sum=250.0, attributes=_attrs(gen="young"),
                quantile_values=[metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v)
                                 for q, v in ((0.0, 0.1), (0.5, 2.0), (0.99, 9.5), (1.0, 12.0))])])),
        metrics_pb2.Metric(name="build.info", description="with metadata", gauge=metrics_pb2.Gauge(data_points=[
            metrics_pb2.NumberDataPoint(time_unix_nano=now, as_int=1, attributes=_attrs(version="1.2.3"))]),
            metadata=_attrs(**{"prometheus.type": "info"})),
    ]


def metrics(tag: str) -> metrics_service_pb2.ExportMetricsServiceRequest:
    out = []
    for r, (attrs, schema) in enumerate(RESOURCES):
        ms = metric_set(tag)
        out.append(metrics_pb2.ResourceMetrics(
            resource=_resource(tag, attrs), schema_url=schema,
            scope_metrics=[
                metrics_pb2.ScopeMetrics(scope=_scope("parity.meter", "2.0", **{"meter.kind": "sdk"}),
                                         metrics=ms[: 5 + r], schema_url=schema),
                metrics_pb2.ScopeMetrics(scope=_scope("parity.runtime"), metrics=ms[5 + r:]),
            ]))
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=out)


# ---------------------------------------------------------------- logs

BODIES = [
    "a plain message",
    "utf-8 ünïcödé ☃ and\nnew line",
    42,
    -1.5,
    True,
    b"\x00\x01binary",
    ["a", 1, 2.5, False, ["nested"]],
    {"event": "login", "user": {"id": 7, "roles": ["admin"]}, "ok": True},
    [],
    {},
    None,  # no body at all
]
# SEVERITY_NUMBER_TRACE (1) is sent on its own (severity_trace below): otelcol refuses its
# enum name in OTLP/JSON, which would take every other record of the request with it.
SEVERITIES = [(2, "TRACE2"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (21, "FATAL"), (0, ""),
              (10, "INFO2"), (24, "FATAL4"), (0, "custom-text"), (9, "")]


def logs(tag: str) -> logs_service_pb2.ExportLogsServiceRequest:
    out = []
    for r, (attrs, schema) in enumerate(RESOURCES):
        records = []
        for i, body in enumerate(BODIES):
            sev, text = SEVERITIES[i % len(SEVERITIES)]
            rec = logs_pb2.LogRecord(
                time_unix_nano=T0 + i * SEC if i % 4 else 0, observed_time_unix_nano=T0 + i * SEC + 5,
                severity_number=sev, severity_text=text,
                attributes=[kv("log.index", i), kv("resource.index", r), kv("tags", ["x", "y"])],
                dropped_attributes_count=1 if i == 3 else 0,
            )
            if body is not None:
                rec.body.CopyFrom(anyvalue(body))
            if i % 3 == 0:
                tid, sid = _ids(700 + r * 20 + i)
                rec.trace_id, rec.span_id, rec.flags = tid, sid, 1
            if i == 7:
                rec.event_name = "user.login"
            records.append(rec)
        out.append(logs_pb2.ResourceLogs(
            resource=_resource(tag, attrs), schema_url=schema,
            scope_logs=[logs_pb2.ScopeLogs(scope=_scope("parity.logger", "0.1"), log_records=records[:6],
                                           schema_url=schema),
                        logs_pb2.ScopeLogs(scope=_scope(""), log_records=records[6:])]))
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=out)


def severity_trace(tag: str) -> logs_service_pb2.ExportLogsServiceRequest:
    """One log record with severity TRACE (1)."""
    tid, sid = _ids(900)
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=_resource(tag, {"service.name": "tracing-logs"}),
        scope_logs=[logs_pb2.ScopeLogs(scope=_scope("parity.logger"), log_records=[logs_pb2.LogRecord(
            time_unix_nano=T0, observed_time_unix_nano=T0 + 1, severity_number=1, severity_text="TRACE",
            body=anyvalue("entering handler"), trace_id=tid, span_id=sid, flags=1)])])])


BUILD = {"traces": traces, "metrics": metrics, "logs": logs}
