"""Every metric instrument of the OpenTelemetry Python SDK, recorded with a fixed plan and
exported deterministically over OTLP, with an independent tally of what was recorded.

Two MeterProviders, one per temporality, each its own process as far as a collector can
tell (its own service.instance.id):

    cumulative  OTLP/gRPC            every instrument cumulative (the SDK's default)
    delta       OTLP/HTTP protobuf   every instrument delta (up-down counters too)

Both record the same plan with the same meter (name, version, schema URL):

    shop.orders            Counter (int)          unit {order}   two attribute sets
    shop.cpu.time          Counter (float)        unit s         two attribute sets
    shop.queue.depth       UpDownCounter (int)    unit {item}    two attribute sets
    shop.request.duration  Histogram              unit ms        View: buckets 5 25 100 500
    shop.payload.size      Histogram              unit By        View: exponential, max_scale 3
    shop.cpu.utilization   ObservableGauge        unit 1         two attribute sets
    shop.uptime            ObservableCounter      unit s         one attribute set

in two phases; each phase ends with force_flush, and shutdown makes a third export (the
readers export only then: their interval is an hour). Observable callbacks answer from a
fixed list, one entry per collection, so the third export sees new values too.

Float values are binary fractions (0.25, 0.125, ...) so every sum is exact in float64.
The tally (Tally) is the plan itself, aggregated by this module's own arithmetic: nothing
of it is read back from the SDK's exports. The exports are kept anyway (`Emission.exported`),
encoded by the SDK's own encoder, for the few self-checks that the SDK did what the plan
assumes (three exports each, exponential scale 3).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

TEMPORALITIES = ("cumulative", "delta")

SCOPE_NAME = "shop.checkout"
SCOPE_VERSION = "1.4.2"
SCOPE_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"

SERVICE_NAMESPACE = "shop"
SERVICE_NAME = "checkout"
JOB = f"{SERVICE_NAMESPACE}/{SERVICE_NAME}"
EXTRA_RESOURCE = {"deployment.environment": "it", "host.name": "it-host-1", "k8s.pod.uid": "0f3c9a"}


def instance_id(temporality: str) -> str:
    return f"checkout-{temporality}"


def resource_attributes(temporality: str) -> dict:
    """The resource the SDK sends (Resource.create adds telemetry.sdk.*), as strings."""
    res = Resource.create({"service.name": SERVICE_NAME, "service.namespace": SERVICE_NAMESPACE,
                           "service.instance.id": instance_id(temporality), **EXTRA_RESOURCE})
    return {k: str(v) for k, v in res.attributes.items()}


HIST_BOUNDS = (5.0, 25.0, 100.0, 500.0)
EXPO_MAX_SCALE = 3
EXPO_MAX_SIZE = 160

CARD = {"payment.method": "card", "region": "eu"}
CASH = {"payment.method": "cash", "region": "us"}
GET = {"http.request.method": "GET", "http.response.status_code": 200}
POST = {"http.request.method": "POST", "http.response.status_code": 503}
CPU0 = {"cpu": 0}
CPU1 = {"cpu": 1}
HIGH = {"queue.priority": "high"}
LOW = {"queue.priority": "low"}
MAIN = {"process.role": "main"}

# Synchronous measurements per phase: (instrument, attributes, value).
PLAN = [
    [
        ("shop.orders", CARD, 3), ("shop.orders", CARD, 4), ("shop.orders", CASH, 1),
        ("shop.cpu.time", CPU0, 0.25), ("shop.cpu.time", CPU1, 1.5),
        ("shop.queue.depth", HIGH, 5), ("shop.queue.depth", LOW, 2), ("shop.queue.depth", HIGH, -2),
        ("shop.request.duration", GET, 3.0), ("shop.request.duration", GET, 5.0),
        ("shop.request.duration", GET, 42.0), ("shop.request.duration", POST, 250.0),
        ("shop.payload.size", GET, 0.0), ("shop.payload.size", GET, 3.0), ("shop.payload.size", GET, 100.0),
        ("shop.payload.size", POST, 1000.0),
    ],
    [
        ("shop.orders", CARD, 6), ("shop.orders", CASH, 2),
        ("shop.cpu.time", CPU0, 0.125), ("shop.cpu.time", CPU1, 2.0),
        ("shop.queue.depth", HIGH, 1), ("shop.queue.depth", LOW, -1),
        ("shop.request.duration", GET, 25.0), ("shop.request.duration", GET, 900.0),
        ("shop.request.duration", POST, 26.0),
        ("shop.payload.size", GET, 7.0), ("shop.payload.size", GET, 12.0), ("shop.payload.size", GET, 4096.0),
        ("shop.payload.size", POST, 1.5), ("shop.payload.size", GET, 9.0), ("shop.payload.size", POST, 2048.0),
    ],
]

# Observable answers per collection (force_flush, force_flush, shutdown).
GAUGE_ANSWERS = [{0: 0.25, 1: 0.5}, {0: 0.75, 1: 0.125}, {0: 0.5, 1: 0.0625}]
UPTIME_ANSWERS = [10.5, 25.0, 40.25]  # cumulative totals, as an observable counter reports

INSTRUMENTS = {
    # name: (kind, unit, description)
    "shop.orders": ("counter", "{order}", "Orders placed."),
    "shop.cpu.time": ("counter", "s", "CPU time spent."),
    "shop.queue.depth": ("updowncounter", "{item}", "Items waiting."),
    "shop.request.duration": ("histogram", "ms", "Request duration."),
    "shop.payload.size": ("exponential", "By", "Payload size."),
    "shop.cpu.utilization": ("gauge", "1", "CPU utilization."),
    "shop.uptime": ("observable_counter", "s", "Process uptime."),
}


def attrs_key(attrs: dict) -> tuple:
    return tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in attrs.items()))


# ---------------------------------------------------------------- the tally


@dataclass
class Tally:
    """What was recorded per (instrument, attribute key): for sums the total, for gauges and
    observable counters the last answer, for histograms every observation."""

    sums: dict = field(default_factory=lambda: defaultdict(float))
    last: dict = field(default_factory=dict)
    observations: dict = field(default_factory=lambda: defaultdict(list))
    collections: int = 0

    def record(self, name: str, attrs: dict, value):
        kind = INSTRUMENTS[name][0]
        k = (name, attrs_key(attrs))
        if kind in ("counter", "updowncounter"):
            self.sums[k] += value
        elif kind in ("histogram", "exponential"):
            self.observations[k].append(float(value))
        else:
            self.last[k] = float(value)


def tally_of_plan() -> Tally:
    """The tally of the whole plan, by this module's own arithmetic."""
    t = Tally()
    for phase in PLAN:
        for name, attrs, v in phase:
            t.record(name, attrs, v)
    for answers in GAUGE_ANSWERS:
        for cpu, v in answers.items():
            t.record("shop.cpu.utilization", {"cpu": cpu}, v)
    for v in UPTIME_ANSWERS:
        t.record("shop.uptime", MAIN, v)
    t.collections = len(GAUGE_ANSWERS)
    return t


def explicit_buckets(observations: list, bounds=HIST_BOUNDS) -> list:
    """Cumulative counts per upper bound (le), +Inf last: [(le, count)]."""
    out = []
    for b in (*bounds, math.inf):
        out.append((b, sum(1 for v in observations if v <= b)))
    return out


def expo_index(v: float, scale: int) -> int:
    """OTel exponential bucket index of v > 0 at `scale`: bucket i holds (base^i, base^(i+1)]."""
    # Exact for powers of two (the boundaries), else via log2.
    m, e = math.frexp(v)  # v = m * 2^e, m in [0.5, 1)
    if m == 0.5:
        return ((e - 1) << scale) - 1 if scale >= 0 else ((e - 1) >> -scale) - 1
    return math.ceil(math.log2(v) * 2**scale) - 1


def expo_bucket_bounds(v: float, scale: int) -> tuple:
    """(lower, upper] of the exponential bucket holding v at `scale` (v > 0)."""
    i = expo_index(v, scale)
    base = 2.0 ** (2.0 ** -scale)
    return base**i, base ** (i + 1)


def median_observation(observations: list) -> float:
    """The observation the 0.5 quantile falls on, as Prometheus ranks it (rank = q * count).
    The plan gives every exponential histogram an odd count, so the rank is inside a bucket,
    never on the edge between two (where any value of an empty gap would be right)."""
    assert len(observations) % 2 == 1, observations
    s = sorted(observations)
    rank = 0.5 * len(s)
    return s[max(0, math.ceil(rank) - 1)]


# ---------------------------------------------------------------- emitting


@dataclass
class Emission:
    tally: Tally
    exported: dict  # temporality -> [ExportMetricsServiceRequest]
    callback_calls: dict  # temporality -> int


def _views():
    return [
        View(instrument_name="shop.request.duration",
             aggregation=ExplicitBucketHistogramAggregation(boundaries=list(HIST_BOUNDS))),
        View(instrument_name="shop.payload.size",
             aggregation=ExponentialBucketHistogramAggregation(max_size=EXPO_MAX_SIZE, max_scale=EXPO_MAX_SCALE)),
    ]


_DELTA = {k: AggregationTemporality.DELTA for k in
          (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter, ObservableGauge)}
_CUMULATIVE = {k: AggregationTemporality.CUMULATIVE for k in _DELTA}


def _recording(base):
    class Recording(base):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.exported, self.failed = [], []

        def export(self, data, *args, **kw):
            request = encode_metrics(data)
            result = super().export(data, *args, **kw)
            (self.exported if result == MetricExportResult.SUCCESS else self.failed).append(request)
            return result

    return Recording


class _Encoder(MetricExporter):
    """Exports nowhere: encodes each export as the OTLP exporters would and keeps it."""

    def __init__(self, temporality: str, log: list):
        super().__init__(preferred_temporality=_DELTA if temporality == "delta" else _CUMULATIVE)
        self.temporality, self.log = temporality, log
        self.exported, self.failed = [], []

    def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
        request = encode_metrics(metrics_data)
        self.exported.append(request)
        self.log.append((self.temporality, request))
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        pass


def record_requests() -> tuple[Emission, list]:
    """The plan recorded by the SDK as for emit(), but exported nowhere: (emission, [(temporality,
    ExportMetricsServiceRequest)] in export order), for sending the same bytes to several
    collectors (cumulative ones over gRPC, delta ones over HTTP, as emit() does)."""
    log: list = []
    exporters = {t: _Encoder(t, log) for t in TEMPORALITIES}
    return _run(exporters), log


def emit(grpc_endpoint: str, http_url: str) -> Emission:
    """Records the plan with both providers (cumulative over gRPC to `grpc_endpoint`
    host:port, delta over OTLP/HTTP to `http_url` .../v1/metrics) and exports it; every export
    must succeed."""
    exporters = {
        "cumulative": _recording(GrpcExporter)(endpoint=grpc_endpoint, insecure=True, timeout=10,
                                               preferred_temporality=_CUMULATIVE),
        "delta": _recording(HttpExporter)(endpoint=http_url, timeout=10, preferred_temporality=_DELTA),
    }
    return _run(exporters)


def _run(exporters: dict) -> Emission:
    providers = {}
    calls = {t: {"gauge": 0, "uptime": 0} for t in TEMPORALITIES}  # callbacks made per temporality
    instruments = {}
    for t in TEMPORALITIES:
        reader = PeriodicExportingMetricReader(exporters[t], export_interval_millis=3_600_000)
        mp = MeterProvider(resource=Resource.create({
            "service.name": SERVICE_NAME, "service.namespace": SERVICE_NAMESPACE,
            "service.instance.id": instance_id(t), **EXTRA_RESOURCE}), metric_readers=[reader], views=_views())
        providers[t] = mp
        meter = mp.get_meter(SCOPE_NAME, SCOPE_VERSION, schema_url=SCOPE_SCHEMA_URL)

        def gauge_cb(options: CallbackOptions, t=t):
            answers = GAUGE_ANSWERS[calls[t]["gauge"]]
            calls[t]["gauge"] += 1
            return [Observation(v, {"cpu": cpu}) for cpu, v in answers.items()]

        def uptime_cb(options: CallbackOptions, t=t):
            v = UPTIME_ANSWERS[calls[t]["uptime"]]
            calls[t]["uptime"] += 1
            return [Observation(v, MAIN)]

        ins = {}
        for name, (kind, unit, desc) in INSTRUMENTS.items():
            if kind == "counter":
                ins[name] = meter.create_counter(name, unit=unit, description=desc)
            elif kind == "updowncounter":
                ins[name] = meter.create_up_down_counter(name, unit=unit, description=desc)
            elif kind in ("histogram", "exponential"):
                ins[name] = meter.create_histogram(name, unit=unit, description=desc)
            elif kind == "gauge":
                meter.create_observable_gauge(name, callbacks=[gauge_cb], unit=unit, description=desc)
            elif kind == "observable_counter":
                meter.create_observable_counter(name, callbacks=[uptime_cb], unit=unit, description=desc)
        instruments[t] = ins

    try:
        for phase in PLAN:
            for t in TEMPORALITIES:
                for name, attrs, v in phase:
                    inst = instruments[t][name]
                    (inst.record if INSTRUMENTS[name][0] in ("histogram", "exponential") else inst.add)(v, attrs)
            for t in TEMPORALITIES:
                assert providers[t].force_flush(10_000), f"{t} force_flush failed"
    finally:
        for t in TEMPORALITIES:
            providers[t].shutdown()
    failed = {t: len(e.failed) for t, e in exporters.items() if e.failed}
    assert not failed, f"SDK exports failed: {failed}"
    exported = {t: e.exported for t, e in exporters.items()}
    assert {t: len(v) for t, v in exported.items()} == {t: 3 for t in TEMPORALITIES}, \
        {t: len(v) for t, v in exported.items()}
    assert calls == {t: {"gauge": len(GAUGE_ANSWERS), "uptime": len(UPTIME_ANSWERS)} for t in TEMPORALITIES}, calls
    _self_check(exported)
    return Emission(tally_of_plan(), exported, calls)


def _self_check(exported: dict):
    """The SDK did what the plan assumes: each exponential histogram point at scale 3."""
    for reqs in exported.values():
        for req in reqs:
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    assert (sm.scope.name, sm.scope.version, sm.schema_url) == \
                        (SCOPE_NAME, SCOPE_VERSION, SCOPE_SCHEMA_URL), sm.scope
                    for m in sm.metrics:
                        if m.WhichOneof("data") == "exponential_histogram":
                            scales = {p.scale for p in m.exponential_histogram.data_points}
                            assert scales <= {EXPO_MAX_SCALE}, scales
