"""Parity of the `count` connector: spans, span events, metrics, data points and log records
counted into delta sums, as otelcol-contrib's countconnector (v0.161.0) counts them.

One collector pair runs four count connectors side by side, each feeding a metrics pipeline
of its own whose `otlp` exporter marks its requests with an `x-count` header:

  - `count`, with no settings: every signal in, the five default metrics out (also to the
    `prometheus` exporter);
  - `count/spans`: only the `spans` section set (conditions with and without the `span.`
    prefix on kind, status, name, attributes and the resource; attribute dimensions found on
    the span, the scope or the resource, with string and int defaults, values that are ints,
    bools, arrays and empty strings, a dimension missing so the span is not counted); the
    span events are still counted by the default `trace.span.event.count`;
  - `count/events`: `spanevents` (conditions on the event and its span; an event's dimensions
    come from the event, the scope and the resource, never from its span; a double default)
    and `logs` (a condition on severity_number, OR'ed conditions on the body and an
    attribute, dimensions with a default), with `spans: {}`, which keeps the default;
  - `count/metrics`: `metrics` and `datapoints` over a gauge, a sum, a histogram, an
    exponential histogram, a summary and a gauge without points (conditions on the metric's
    name and type and on point attributes; also to the `prometheus` exporter).

Traces, logs and metrics go in two requests each (gRPC, then OTLP/HTTP) under several
resources and scopes. The test keeps its own tally of what each connector must emit (each
metric's conditions are written here twice: in OTTL for the collectors, in Python for the
tally): per request and resource that counted anything, one ResourceMetrics with the
resource's attributes, one scope named after the connector, one delta monotonic int sum per
metric with a point per distinct attribute set; a point's start and time are the least and
greatest item timestamp of its section in that resource (span start and end, event time,
point time, the record's time and not its observed time), or "now" when there is none (and
always for `metric.count`). What each collector forwards is compared with the tally and with
the other's, order-insensitively ("now" is any time during the test).

The `prometheus` exporter accumulates a delta point only when its start is the previous
point's time: the second requests start where the first ones ended, except under one
resource (`gap`) and where the timestamps are "now", so the scrapes show sums and last
values; both scrapes are compared with each other and with the tally.

A metric without data makes otelcol's connectors fail the whole request (UNAVAILABLE) and
forward nothing of it; a collector that takes it must count it as the tally does. Last, the
settings otelcol refuses (a bad OTTL condition, an attribute without a key, attributes in
the `metrics` section, an empty metric name) are refused by both, `redline validate` naming
the key; a misspelt key, which otelcol silently ignores, Redline refuses.

Anything that differs from the tally fails; a difference between the two collectors fails
unless docs/compatibility.md lists it.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
from diff import compare_metrics
from pair import SIDES, rewrite
from test_parity_signals import answer_diffs, send, wait_all_forwarded
from traffic import anyvalue, kv

SCOPE = "github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector"
SEC, MS = 1_000_000_000, 1_000_000
T0 = 1_600_000_000 * SEC
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
INTERNAL, SERVER, CLIENT = 1, 2, 3
UNSET, OK, ERROR = 0, 1, 2
INFO, WARN, ERROR_SEV, FATAL = 9, 13, 17, 21
NOW = "now"  # a timestamp the connector took from the clock
NO_DEFAULT = object()


def edge(k: int) -> int:
    """Request k's items run from edge(k) to edge(k + 1): the second requests start exactly
    where the first ones end."""
    return T0 + 10 * k * SEC


# ---------------------------------------------------------------- the traffic, as the tally reads it


@dataclass
class Ev:
    name: str
    time: int
    attrs: dict = field(default_factory=dict)


@dataclass
class Sp:
    name: str
    kind: int
    status: int
    start: int
    end: int
    attrs: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


@dataclass
class Lg:
    body: object  # None: no body
    severity: int
    time: int
    attrs: dict = field(default_factory=dict)
    observed: int = 0


@dataclass
class Pt:
    time: int
    attrs: dict = field(default_factory=dict)


@dataclass
class Mt:
    name: str
    kind: str | None  # gauge, sum, histogram, exponential_histogram, summary; None: no data
    points: list = field(default_factory=list)


@dataclass
class Scope:
    name: str
    attrs: dict
    items: list


@dataclass
class Res:
    attrs: dict
    scopes: list
    schema_url: str = ""


FRONTEND = {"service.name": "frontend", "service.instance.id": "fe-1", "env": "prod", "tier": 2}
BACKEND = {"service.name": "backend", "service.instance.id": "be-1", "region": "resource-region"}


def trace_resources(k: int) -> list:
    a, b = edge(k), edge(k + 1)
    more = [Sp("GET /cart", SERVER, OK, a + 300 * MS, a + 400 * MS, {"http.route": "/cart", "cached": True})]
    return [
        Res(FRONTEND, [
            Scope("parity.http", {"region": "eu"}, [
                Sp("GET /cart", SERVER, UNSET, a, a + 100 * MS, {"http.route": "/cart", "cached": True},
                   [Ev("exception", a, {"exception.type": "Timeout"})]),
                Sp("checkout", SERVER, ERROR, a + 200 * MS, a + 900 * MS,
                   {"http.route": "/checkout", "region": "us", "env": "stage"},
                   [Ev("exception", a + 250 * MS, {"exception.type": "Io", "http.route": "/from-event"}),
                    Ev("retry", a + 260 * MS, {"region": "ap"})]),
                Sp("GET /static", CLIENT, OK, a + 10 * MS, a + 20 * MS, {"http.route": "", "cached": False},
                   [Ev("cache-miss", a + 15 * MS)]),
                *more[:k],
            ]),
            Scope("parity.db", {}, [
                Sp("SELECT", CLIENT, UNSET, a + 30 * MS, a + 40 * MS, {"db.system": "pg", "cached": "yes"}),
                Sp("INSERT", CLIENT, ERROR, a + 50 * MS, b, {"http.route": "/db", "region": ["eu", "us"]},
                   [Ev("exception", b, {"exception.type": 7})]),
                # A string "2" is not the resource's int 2: two points of span.by.tier.
                Sp("UPDATE", CLIENT, UNSET, a + 60 * MS, a + 70 * MS,
                   {"http.route": "/db", "tier": "2", "cached": True}),
            ]),
        ], schema_url="https://opentelemetry.io/schemas/1.21.0"),
        Res(BACKEND, [Scope("parity.rpc", {"team": "core"}, [
            Sp("rpc Get", SERVER, UNSET, a, b, {"http.route": "/rpc", "tier": "gold", "cached": True},
               [Ev("exception", 0, {"exception.type": "Timeout"}), Ev("exception", a),
                Ev("flush", b, {"http.route": "/ev"})]),
            Sp("/healthz", INTERNAL, UNSET, a + MS, a + 2 * MS),
        ])]),
        # Not contiguous: the second request starts a second late.
        Res({"service.name": "gap", "service.instance.id": "gap-1"}, [Scope("parity.gap", {}, [
            Sp("GET /gap", SERVER, UNSET, a + (SEC if k else 0), b, {"http.route": "/gap", "cached": False},
               [Ev("exception", b - (SEC if k else 0), {"exception.type": "Gap"})]),
        ] * (k + 1))]),
        # No timestamps at all: "now".
        Res({"service.name": "zero", "service.instance.id": "zero-1"}, [Scope("parity.zero", {}, [
            Sp("untimed", CLIENT, UNSET, 0, 0, {"cached": True}, [Ev("exception", 0, {"exception.type": "Untimed"})]),
        ])]),
        # Nothing that count/spans counts: no ResourceMetrics for it there.
        Res({"service.name": "quiet", "service.instance.id": "quiet-1"}, [Scope("parity.quiet", {}, [
            Sp("/healthz", INTERNAL, UNSET, a, a + MS),
        ])]),
    ]


def log_resources(k: int) -> list:
    a, b = edge(k), edge(k + 1)
    return [
        Res(FRONTEND, [
            Scope("parity.log", {"region": "eu"}, [
                Lg("disk slow", WARN, a, {"env": "stage"}),
                # Only the observed time: the record's own time (0) is what counts.
                Lg("upstream timeout", ERROR_SEV, 0, observed=b + 5 * SEC),
                Lg("ok", INFO, b, {"retry": True}),
                Lg("retry timeout", 0, a + 7 * MS, {"retry": "true"}),
            ]),
            Scope("parity.audit", {}, [Lg(None, FATAL, a + 8 * MS, {"env": 5})] * (k + 1)),
        ]),
        Res({"service.name": "jobs", "service.instance.id": "jobs-1"}, [Scope("parity.jobs", {}, [
            Lg("job failed", FATAL, 0, observed=a),
            Lg("job slow", WARN, 0, {"env": "batch"}, observed=a),
        ])]),
    ]


def metric_resources(k: int) -> list:
    a, b = edge(k), edge(k + 1)
    more = [Pt(a + 2 * MS, {"http.route": "/checkout", "code": 500})] if k else []
    return [
        Res(FRONTEND, [Scope("parity.metrics", {"region": "eu"}, [
            Mt("queue.depth", "gauge", [Pt(a), Pt(a + MS, {"env": "stage"})]),
            Mt("http.requests", "sum", [Pt(a + 2 * MS, {"http.route": "/cart", "code": 200}),
                                        Pt(a + 2 * MS, {"http.route": "/cart", "code": 500}),
                                        Pt(a + 2 * MS, {"code": 503}), *more]),
            Mt("http.duration", "histogram", [Pt(b, {"http.route": "/checkout", "region": "us"})]),
            Mt("rpc.duration", "exponential_histogram", [Pt(a + 3 * MS, {"code": 500})]),
            Mt("db.latency", "summary", [Pt(a + 4 * MS, {"env": "stage"}), Pt(0)]),
            Mt("idle.gauge", "gauge", []),
        ])]),
        Res({"service.name": "meter", "service.instance.id": "meter-1"}, [Scope("parity.meter", {}, [
            Mt("http.untimed", "sum", [Pt(0, {"http.route": "/u"}), Pt(0)]),
        ])]),
    ]


TRAFFIC = {"traces": trace_resources, "logs": log_resources, "metrics": metric_resources}
TRANSPORTS = ("grpc", "http/protobuf")


# ---------------------------------------------------------------- the traffic, as protobuf


def _attrs(d: dict) -> list:
    return [kv(k, v) for k, v in d.items()]


def _resource(r: Res) -> resource_pb2.Resource:
    return resource_pb2.Resource(attributes=_attrs(r.attrs))


def _scope(s: Scope) -> common_pb2.InstrumentationScope:
    return common_pb2.InstrumentationScope(name=s.name, attributes=_attrs(s.attrs))


def _span(n: int, s: Sp) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=(0xC0C0 << 64 | n).to_bytes(16, "big"), span_id=(0xC0 << 56 | n).to_bytes(8, "big"), name=s.name,
        kind=s.kind, start_time_unix_nano=s.start, end_time_unix_nano=s.end, attributes=_attrs(s.attrs),
        status=trace_pb2.Status(code=s.status),
        events=[trace_pb2.Span.Event(name=e.name, time_unix_nano=e.time, attributes=_attrs(e.attrs)) for e in s.events])


def _log(r: Lg) -> logs_pb2.LogRecord:
    rec = logs_pb2.LogRecord(time_unix_nano=r.time, observed_time_unix_nano=r.observed, severity_number=r.severity,
                             attributes=_attrs(r.attrs))
    if r.body is not None:
        rec.body.CopyFrom(anyvalue(r.body))
    return rec


def _metric(m: Mt) -> metrics_pb2.Metric:
    out = metrics_pb2.Metric(name=m.name, unit="1")
    if m.kind is None:
        return out
    data = getattr(out, m.kind)
    data.SetInParent()
    for p in m.points:
        dp = data.data_points.add(time_unix_nano=p.time, attributes=_attrs(p.attrs))
        if p.time:
            dp.start_time_unix_nano = p.time - SEC
        if m.kind in ("gauge", "sum"):
            dp.as_int = 3
        else:
            dp.count, dp.sum = 2, 1.5
    if m.kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    return out


def request(signal: str, resources: list):
    n = iter(range(1, 10_000))
    if signal == "traces":
        return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
            resource=_resource(r), schema_url=r.schema_url, scope_spans=[trace_pb2.ScopeSpans(
                scope=_scope(s), spans=[_span(next(n), sp) for sp in s.items]) for s in r.scopes])
            for r in resources])
    if signal == "logs":
        return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
            resource=_resource(r), schema_url=r.schema_url, scope_logs=[logs_pb2.ScopeLogs(
                scope=_scope(s), log_records=[_log(x) for x in s.items]) for s in r.scopes]) for r in resources])
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=_resource(r), schema_url=r.schema_url, scope_metrics=[metrics_pb2.ScopeMetrics(
            scope=_scope(s), metrics=[_metric(m) for m in s.items]) for s in r.scopes]) for r in resources])


# ---------------------------------------------------------------- the connectors


@dataclass
class Ctx:
    """One counted item with what OTTL can reach from it."""

    item: object
    res: Res
    scope: Scope
    span: Sp | None = None
    metric: Mt | None = None


@dataclass
class Def:
    """One metric of a section: its settings, and `match`, the test's own reading of
    `conditions` (None: no conditions)."""

    name: str
    description: str = ""
    conditions: tuple = ()
    attributes: tuple = ()  # (key, default or NO_DEFAULT)
    match: Callable[[Ctx], bool] | None = None

    def settings(self) -> dict:
        out: dict = {}
        if self.description:
            out["description"] = self.description
        if self.conditions:
            out["conditions"] = list(self.conditions)
        if self.attributes:
            out["attributes"] = [{"key": k} if d is NO_DEFAULT else {"key": k, "default_value": d}
                                 for k, d in self.attributes]
        return out


DEFAULTS = {
    "spans": [Def("trace.span.count", "The number of spans observed.")],
    "spanevents": [Def("trace.span.event.count", "The number of span events observed.")],
    "metrics": [Def("metric.count", "The number of metrics observed.")],
    "datapoints": [Def("metric.datapoint.count", "The number of data points observed.")],
    "logs": [Def("log.record.count", "The number of log records observed.")],
}


CONNECTORS = {
    "count": {},
    "count/spans": {"spans": [
        Def("span.server.count", "Server spans.", ("span.kind == SPAN_KIND_SERVER",),
            match=lambda c: c.item.kind == SERVER),
        Def("span.failed.count", "Failed spans, and every checkout.",
            ("status.code == STATUS_CODE_ERROR", 'name == "checkout"'),
            match=lambda c: c.item.status == ERROR or c.item.name == "checkout"),
        Def("span.by.route", "Spans by route, region and env.",
            attributes=(("http.route", "unknown"), ("region", NO_DEFAULT), ("env", "none"))),
        Def("span.by.tier", attributes=(("tier", 0), ("cached", NO_DEFAULT)),
            conditions=('attributes["http.route"] != nil',), match=lambda c: "http.route" in c.item.attrs),
        Def("span.backend.or.get", "Backend spans and GETs.",
            ('resource.attributes["service.name"] == "backend" or IsMatch(span.name, "^GET ")',),
            match=lambda c: c.res.attrs.get("service.name") == "backend" or c.item.name.startswith("GET ")),
    ]},
    "count/events": {
        "spans": [],
        "spanevents": [
            Def("event.exception.count", "Exceptions by type and service.", ('spanevent.name == "exception"',),
                (("exception.type", NO_DEFAULT), ("service.name", NO_DEFAULT)),
                match=lambda c: c.item.name == "exception"),
            Def("event.client.count", "Events of client spans.", ("span.kind == SPAN_KIND_CLIENT",),
                (("region", 1.5),), match=lambda c: c.span.kind == CLIENT),
            # The span's http.route is not looked at: only the event's, the scope's, the resource's.
            Def("event.by.route", attributes=(("http.route", NO_DEFAULT),)),
        ],
        "logs": [
            Def("log.severe.count", "Warnings and worse.", ("severity_number >= SEVERITY_NUMBER_WARN",),
                (("service.name", NO_DEFAULT),), match=lambda c: c.item.severity >= WARN),
            Def("log.by.env", attributes=(("env", "unknown"),)),
            Def("log.timeout.count", "Timeouts and retries.",
                ('IsMatch(log.body, "timeout")', 'log.attributes["retry"] == true'),
                match=lambda c: (isinstance(c.item.body, str) and "timeout" in c.item.body)
                or c.item.attrs.get("retry") is True),
        ],
    },
    "count/metrics": {
        "metrics": [
            Def("metric.histogram.count", "Histograms of either kind.",
                ("metric.type == METRIC_DATA_TYPE_HISTOGRAM", "type == METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM"),
                match=lambda c: c.item.kind in ("histogram", "exponential_histogram")),
            Def("metric.http.count", conditions=('IsMatch(name, "^http\\\\.")',),
                match=lambda c: c.item.name.startswith("http.")),
        ],
        "datapoints": [
            Def("datapoint.by.route", "Points by route and env.",
                attributes=(("http.route", NO_DEFAULT), ("env", "none"))),
            Def("datapoint.gauge.count", conditions=("metric.type == METRIC_DATA_TYPE_GAUGE",),
                match=lambda c: c.metric.kind == "gauge"),
            Def("datapoint.server.error.count", "Points of 500 and 503.",
                ('datapoint.attributes["code"] == 500', 'attributes["code"] == 503'), (("region", NO_DEFAULT),),
                match=lambda c: c.item.attrs.get("code") in (500, 503)),
        ],
    },
}
FEEDS = {"count": ("traces", "metrics", "logs"), "count/spans": ("traces",), "count/events": ("traces", "logs"),
         "count/metrics": ("metrics",)}
TO_PROMETHEUS = ("count", "count/metrics")
SECTIONS = {"traces": ("spans", "spanevents"), "metrics": ("metrics", "datapoints"), "logs": ("logs",)}


def effective(connector: str) -> dict:
    """The sections the connector counts with: a section set and not empty replaces the
    default's, the others keep it."""
    return {s: CONNECTORS[connector].get(s) or d for s, d in DEFAULTS.items()}


def config() -> str:
    connectors = {cid: {s: {d.name: d.settings() for d in defs} for s, defs in sections.items()} or None
                  for cid, sections in CONNECTORS.items()}
    exporters = {f"otlp/{cid.replace('/', '_')}": {"endpoint": "sink:4317", "tls": {"insecure": True},
                                                    "headers": {"x-count": cid}} for cid in CONNECTORS}
    exporters["prometheus"] = {"endpoint": "0.0.0.0:9464"}
    pipelines = {signal: {"receivers": ["otlp"], "exporters": [c for c in CONNECTORS if signal in FEEDS[c]]}
                 for signal in ("traces", "metrics", "logs")}
    for cid in CONNECTORS:
        pipelines[f"metrics/{cid.replace('/', '_')}"] = {
            "receivers": [cid],
            "exporters": [f"otlp/{cid.replace('/', '_')}"] + (["prometheus"] if cid in TO_PROMETHEUS else [])}
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "connectors": connectors, "exporters": exporters, "service": {"pipelines": pipelines},
    }, sort_keys=False)


# ---------------------------------------------------------------- the tally


def plain(v: common_pb2.AnyValue):
    """An AnyValue as a hashable, readable value that keeps its type."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return "array", tuple(plain(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return "kvlist", tuple(sorted((x.key, plain(x.value)) for x in v.kvlist_value.values))
    return (kind or "empty").removesuffix("_value"), getattr(v, kind) if kind else None


def plain_attrs(attrs) -> tuple:
    return tuple(sorted((a.key, plain(a.value)) for a in attrs))


def _items(section: str, res: Res):
    """(Ctx, its timestamps) of every item `section` counts, in order."""
    for s in res.scopes:
        for it in s.items:
            if section == "spans":
                yield Ctx(it, res, s), (it.start, it.end)
            elif section == "spanevents":
                for e in it.events:
                    yield Ctx(e, res, s, span=it), (e.time,)
            elif section == "metrics":
                yield Ctx(it, res, s), ()
            elif section == "datapoints":
                for p in it.points:
                    yield Ctx(p, res, s, metric=it), (p.time,)
            else:
                yield Ctx(it, res, s), (it.time,)


def _dims(d: Def, c: Ctx):
    """The point attributes of item `c` for metric `d`, or None when one is missing."""
    item_attrs = {} if isinstance(c.item, Mt) else c.item.attrs
    out = []
    for key, default in d.attributes:
        for attrs in (item_attrs, c.scope.attrs, c.res.attrs):
            if key in attrs:
                out.append((key, attrs[key]))
                break
        else:
            if default is NO_DEFAULT:
                return None
            out.append((key, default))
    return tuple(sorted((k, plain(anyvalue(v))) for k, v in out))


@dataclass(frozen=True)
class Point:
    """One data point forwarded, with everything around it that is compared."""

    connector: str
    resource: tuple
    scope: tuple
    metric: str
    description: str
    shape: tuple  # unit, data kind, temporality, monotonic
    attrs: tuple
    value: tuple
    start: object
    time: object
    extra: tuple = (0, 0)  # flags, exemplars

    def __str__(self):
        res = dict(self.resource).get("service.name", self.resource)
        return (f"[{self.connector}] {res}: {self.metric}{dict(self.attrs)} = {self.value} "
                f"@{self.start}..{self.time} desc={self.description!r} shape={self.shape} scope={self.scope}")


SUM_SHAPE = ("", "sum", DELTA, True)
OUT_SCOPE = (SCOPE, "", (), "")  # name, version, attributes, schema_url


def tally_request(connector: str, signal: str, resources: list) -> tuple[list, list]:
    """What `connector` emits for one request: its points, and one structure entry per
    ResourceMetrics (resource, schema_url, scopes, metric names)."""
    points, structure = [], []
    for res in resources:
        res_key = tuple(sorted((k, plain(anyvalue(v))) for k, v in res.attrs.items()))
        names = []
        for section in SECTIONS[signal]:
            defs = {d.name: d for d in effective(connector)[section]}
            counts: dict = {}
            stamps = []
            for c, ts in _items(section, res):
                stamps += [t for t in ts if t]
                for d in defs.values():
                    dims = _dims(d, c)
                    if dims is not None and (d.match is None or d.match(c)):
                        counts.setdefault(d.name, Counter())[dims] += 1
            start, end = (min(stamps), max(stamps)) if stamps else (NOW, NOW)
            for name, by_dims in counts.items():
                d = defs[name]
                names.append(d.name)
                points += [Point(connector, res_key, OUT_SCOPE, d.name, d.description, SUM_SHAPE, dims,
                                 ("int", n), start, end) for dims, n in by_dims.items()]
        if names:
            structure.append((connector, res_key, "", (OUT_SCOPE,), tuple(sorted(names))))
    return points, structure


def tally() -> tuple[list, Counter]:
    """Every point the connectors emit, request 0 before request 1, and the ResourceMetrics."""
    points, structure = [], Counter()
    for cid in CONNECTORS:
        for signal in FEEDS[cid]:
            for k in range(len(TRANSPORTS)):
                p, s = tally_request(cid, signal, TRAFFIC[signal](k))
                points += p
                structure.update(s)
    return points, structure


def prometheus_tally(points: list) -> dict:
    """The exporter's view after both requests, in the order sent: a delta point adds to the
    series' value when it starts where the last one ended, and replaces it otherwise."""
    series: dict = {}
    for p in points:
        if p.connector not in TO_PROMETHEUS:
            continue
        res = dict(p.resource)
        labels = {"job": res["service.name"][1], "instance": res["service.instance.id"][1],
                  "otel_scope_name": SCOPE, **{re.sub(r"[^a-zA-Z0-9_]", "_", k): str(v[1]) for k, v in p.attrs}}
        key = (prometheus_name(p.metric), tuple(sorted(labels.items())))
        value = p.value[1]
        last = series.get(key)
        if last and p.start != NOW and p.start == last[1]:
            value += last[0]
        series[key] = (value, p.time)
    return {k: v for k, (v, _) in series.items()}


# ---------------------------------------------------------------- what arrived


def forwarded_points(pair, side: str, now: tuple) -> tuple[Counter, Counter]:
    """The points `side` forwarded and their structure, each ResourceMetrics under the
    connector its exporter named (`x-count`); timestamps within `now` read as NOW."""
    points, structure = Counter(), Counter()

    def stamp(t):
        return NOW if now[0] <= t <= now[1] else t

    for rec in pair.sinks[side].received_of("metrics"):
        cid = dict(rec.metadata).get("x-count", "?")
        for rm in rec.request.resource_metrics:
            res = plain_attrs(rm.resource.attributes)
            scopes, names = [], []
            for sm in rm.scope_metrics:
                scope = (sm.scope.name, sm.scope.version, plain_attrs(sm.scope.attributes), sm.schema_url)
                scopes.append(scope)
                for m in sm.metrics:
                    names.append(m.name)
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind) if kind else None
                    shape = (m.unit, kind, getattr(data, "aggregation_temporality", None),
                             getattr(data, "is_monotonic", None))
                    for p in getattr(data, "data_points", []):
                        which = p.WhichOneof("value") or "as_int"
                        value = which.removeprefix("as_"), getattr(p, which)
                        points[Point(cid, res, scope, m.name, m.description, shape, plain_attrs(p.attributes),
                                     value, stamp(p.start_time_unix_nano), stamp(p.time_unix_nano),
                                     (p.flags, len(p.exemplars)))] += 1
            structure[(cid, res, rm.schema_url, tuple(sorted(scopes)), tuple(sorted(names)))] += 1
    return points, structure


def differences(what: str, want: Counter, got: Counter, a: str, b: str, limit: int = 40) -> list:
    out = [f"{what} only in {a} x{n}: {k}" for k, n in list((want - got).items())[:limit]]
    out += [f"{what} only in {b} x{n}: {k}" for k, n in list((got - want).items())[:limit]]
    return out


def prometheus_name(metric: str) -> str:
    return metric.replace(".", "_") + "_total"


def count_families(expo) -> dict:
    """The samples of the count metrics in a scrape: (name, labels) -> value, without the
    labels whose value is empty (to Prometheus, absent)."""
    names = {prometheus_name(d.name) for cid in TO_PROMETHEUS for defs in effective(cid).values() for d in defs}
    return {(name, tuple((k, v) for k, v in labels if v)): s.value for fam in expo.families.values()
            for (name, labels), s in fam.samples.items() if name in names}


# ---------------------------------------------------------------- the tests


def test_counts_match_the_tally_and_each_other(pair_factory, allow):
    pair = pair_factory(config(), flush_interval=None)
    begin = time.time_ns()
    wrong, apart = [], []  # against the design; between the two collectors
    for signal in ("traces", "logs", "metrics"):
        for k, transport in enumerate(TRANSPORTS):
            seen = send(pair, signal, transport, request(signal, TRAFFIC[signal](k)))
            apart += answer_diffs(f"{signal} request {k} over {transport}", seen)
            assert seen["otelcol"].startswith(("OK", "200")), seen
    sequence, want_structure = tally()
    want = Counter(sequence)
    wait_all_forwarded(pair, {"traces": 0, "metrics": len(sequence), "logs": 0})
    now = (begin - SEC, time.time_ns() + SEC)

    got = {side: forwarded_points(pair, side, now) for side in SIDES}
    for side in SIDES:
        points, structure = got[side]
        wrong += differences(f"{side}: point", want, points, "the tally", side)
        wrong += differences(f"{side}: ResourceMetrics", want_structure, structure, "the tally", side)
    apart += differences("count: point", got["otelcol"][0], got["redline"][0], "otelcol", "redline")
    apart += differences("count: ResourceMetrics", got["otelcol"][1], got["redline"][1], "otelcol", "redline")

    # The prometheus exporter: both scrapes alike, and the count series as the tally says.
    want_prom = prometheus_tally(sequence)

    def scraped():
        return {side: pair.c[side].scrape() for side in SIDES}

    try:
        helpers.wait_until(lambda: all(count_families(e) == want_prom for e in scraped().values()), 10,
                           "both scrapes to show the tally")
    except helpers.WaitTimeout:
        pass
    expo = scraped()
    apart += compare_metrics(expo["otelcol"], expo["redline"])
    for side in SIDES:
        wrong += differences(f"{side}: prometheus sample", Counter(want_prom.items()),
                             Counter(count_families(expo[side]).items()), "the tally", side)
        families = {f.name.removesuffix("_total"): f for f in expo[side].families.values()}
        for d in [d for cid in TO_PROMETHEUS for defs in effective(cid).values() for d in defs]:
            fam = families.get(prometheus_name(d.name).removesuffix("_total"))
            if fam is None or (fam.type, fam.help or "") != ("counter", d.description):
                wrong.append(f"{side}: {d.name}: family {fam}")

    # A metric without data: otelcol's connectors fail the whole request (503 / UNAVAILABLE,
    # `invalid metric type: Empty`) and forward nothing of it.
    resources = [Res({"service.name": "broken", "service.instance.id": "broken-1"}, [
        Scope("parity.broken", {}, [Mt("no.data", None), Mt("fine", "gauge", [Pt(edge(5))])])])]
    seen = send(pair, "metrics", "grpc", request("metrics", resources))
    apart += answer_diffs("count: a request with a metric without data", seen)
    assert seen["otelcol"] == "UNAVAILABLE", seen
    wait_all_forwarded(pair, {"traces": 0, "metrics": 0, "logs": 0}, quiet=1.0)
    late = {side: forwarded_points(pair, side, (begin - SEC, time.time_ns() + SEC))[0] - got[side][0]
            for side in SIDES}
    if late["otelcol"]:
        wrong.append(f"otelcol forwarded counts of the request it failed: {late['otelcol']}")
    apart += differences("count: point for a request with a metric without data", late["otelcol"],
                         late["redline"], "otelcol", "redline")
    if seen["redline"].startswith("OK"):
        # Taken, the request is counted as the tally counts it: the metric without data by
        # `metrics`, not at all by `datapoints`.
        taken = Counter(p for cid in CONNECTORS if "metrics" in FEEDS[cid]
                        for p in tally_request(cid, "metrics", resources)[0])
        wrong += differences("redline: point of the request with a metric without data", taken,
                             late["redline"], "the tally", "redline")

    problems = wrong + allow.unexplained(apart)
    assert not problems, f"{len(problems)} difference(s):\n  " + "\n  ".join(problems)


# Settings otelcol refuses when it validates the config: what it says, and the key `redline
# validate` names.
REFUSED = [
    ("unknown path", {"spans": {"broken": {"conditions": ['span.name == "x"', 'span.nmae == "x"']}}},
     'spans condition: metric "broken"', "spans.broken.conditions[1]"),
    ("condition of another context", {"spanevents": {"broken": {"conditions": ["severity_number >= 9"]}}},
     'spanevents condition: metric "broken"', "spanevents.broken.conditions[0]"),
    ("syntax error", {"logs": {"broken": {"conditions": ['log.body == "a" and']}}},
     'logs condition: metric "broken"', "logs.broken.conditions[0]"),
    ("unknown function", {"datapoints": {"broken": {"conditions": ['IsMatches(metric.name, "a")']}}},
     'datapoints condition: metric "broken"', "datapoints.broken.conditions[0]"),
    ("attribute without a key", {"logs": {"broken": {"attributes": [{"key": "env"}, {"default_value": "x"}]}}},
     "attribute key missing", "logs.broken.attributes[1].key"),
    ("attributes in the metrics section", {"metrics": {"broken": {"attributes": [{"key": "env"}]}}},
     'metrics attributes not supported: metric "broken"', "metrics.broken.attributes"),
    ("empty metric name", {"datapoints": {"": {"description": "no name"}}},
     "datapoints: metric name missing", "datapoints"),
]

# Keys otelcol ignores (it reads the connector's settings with WithIgnoreUnused), which Redline
# deliberately refuses: a misspelt key would otherwise leave a metric counting everything, or a
# section at its default, without a word.
MISSPELT = [
    ("conditon", {"spans": {"broken": {"conditon": ["span.kind == SPAN_KIND_SERVER"]}}}, "spans.broken.conditon"),
    ("section span", {"span": {"broken": {}}}, "span"),
    ("default", {"logs": {"broken": {"attributes": [{"key": "env", "default": "x"}]}}},
     "logs.broken.attributes[0].default"),
]


def _config_file(tmp_path, settings: dict):
    cfg = yaml.safe_load(config())
    cfg["connectors"] = {"count/bad": settings}
    cfg["exporters"] = {"otlp/count_bad": {"endpoint": "sink:4317", "tls": {"insecure": True}}}
    cfg["service"]["pipelines"] = {
        signal: {"receivers": ["otlp"], "exporters": ["count/bad"]} for signal in ("traces", "metrics", "logs")}
    cfg["service"]["pipelines"]["metrics/out"] = {"receivers": ["count/bad"], "exporters": ["otlp/count_bad"]}
    cfg, _ = rewrite(cfg, "127.0.0.1:1", None)
    path = tmp_path / "count.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("settings,message,key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_settings_are_refused_by_both(otelcol_bin, redline_bin, tmp_path, settings, message, key):
    path = _config_file(tmp_path, settings)
    peer = helpers.run([otelcol_bin, "validate", "--config", path], timeout=60)
    assert peer.returncode != 0 and message in peer.stderr, peer.stderr[-2000:]
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert ours.returncode != 0 and f"connectors.count/bad.{key}" in ours.stderr + ours.stdout, ours.stderr
    started = helpers.run([redline_bin, "--config", path], timeout=30)
    assert started.returncode != 0, started.stderr[-2000:]


@pytest.mark.parametrize("settings,key", [c[1:] for c in MISSPELT], ids=[c[0] for c in MISSPELT])
def test_misspelt_keys_ignored_by_otelcol_are_refused_by_redline(otelcol_bin, redline_bin, tmp_path, settings, key):
    path = _config_file(tmp_path, settings)
    peer = helpers.run([otelcol_bin, "validate", "--config", path], timeout=60)
    assert peer.returncode == 0, peer.stderr[-2000:]
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert ours.returncode != 0 and f"connectors.count/bad.{key}" in ours.stderr + ours.stdout, ours.stderr
