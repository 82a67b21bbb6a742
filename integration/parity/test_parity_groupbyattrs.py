"""Parity of the `groupbyattrs` processor: spans, log records and metric data points moved
under the resource their grouping attributes make, as otelcol-contrib's
groupbyattrsprocessor (v0.161.0) moves them.

One collector pair runs three instances, on all three signals:

  - `groupbyattrs` with `keys: [host, tier, "", zone, host]` (the empty key and the second
    `host` are dropped), in the `traces`, `metrics` and `logs` pipelines, whose `otlp` exporter
    marks its requests `x-parity: grouped`;
  - `groupbyattrs/compact` with `keys: []`, which only merges equal resources and scopes,
    followed by the named `groupbyattrs/zone` with `keys: [zone]`, in the `*/compact`
    pipelines (`x-parity: compact`).

Traces, logs and metrics go in two big requests each (gRPC, then OTLP/HTTP with the resources
in the reverse order). They hold resources with equal attributes in another order (also inside
a kvlist value), one with a schema_url, dropped attributes and an entity reference, one that
is another plus a grouping attribute, one without attributes, and one with nothing in it;
scopes with the same name and version and another schema_url and attributes, the same name
and another version, no name; items with none, one and all of the keys, keys with int, double,
bool, bytes, array, kvlist and empty values, a key present twice, a key the resource already
has, an attribute whose key is ""; for metrics a gauge, a sum, a histogram, an exponential
histogram and a summary, a metric without data and metrics without points, a second metric of
the same name and type (also with another temporality) and one of the same name and another
type. Small requests follow, one case each, mostly without any grouping key, which otelcol
still rebuilds: a resource schema_url and dropped count, a scope schema_url, equal scopes or
resources apart, an empty scope or resource, an entity reference, a key twice on resources
that MapHash then finds equal, NaN (equal to NaN) and -0.0 (not 0.0) grouped, metrics without
data or points, two metrics of one name and type; one comes out as it went in, and one has no
data point at all (otelcol's receiver takes it and passes nothing on). Each request is sent
once both collectors forwarded the one before, so that no exporter queue holds two (Redline's
would send them as one request, docs/architecture.md).

The test carries its own model of the processor (`regroup`, written from otelcol's source):
for each item, the first occurrence of each key present, in the keys' order, is removed with
pdata's swap-remove (the map's last attribute takes its place) and set on a copy of the
resource's attributes (an attribute the resource has keeps its place, a new one is appended);
the item goes under the output resource with equal attributes (compared as pdata's MapHash
does: keys in any order, kvlists too, a duplicate key with its first value, doubles by their
bits), created in first-seen order with nothing but those attributes (no dropped count, entity
references or schema_url), under the scope of equal name and version (copied from the first
one seen, without its schema_url), and a data point under the metric of equal name and type
there (created from the first one: name, description, unit, metadata, temporality,
monotonicity). What each collector forwards is compared, request by request, exactly (the
order of resources, scopes, items and attributes included) with the model and with the other
collector.

Self-telemetry: otelcol's `otelcol_processor_groupbyattrs_num_{grouped,non_grouped}_{spans,
logs,metrics}` counters (no labels: every instance adds to one series), its
`otelcol_processor_groupbyattrs_{span,log,metric}_groups` histograms (the number of resources
of each output; buckets, sum and count) and the `otelcol_processor_{incoming,outgoing}_items`
of each instance are compared with the model's tally and, HELP and TYPE included, between the
collectors.

Last, the settings: `keys` that is a map or an int or holds a list, an int or a bool, and an
unknown key, are refused by both (`redline validate` naming the key); no settings, `keys:
null`, keys with duplicates and empty strings and a null key are taken by both; `keys` given
as one string otelcol splits at its commas (`""` is no keys, `"zone, host"` is `zone` and
` host`, the space kept), and Redline must too.

Anything that differs from the model fails; a difference between the two collectors fails
unless docs/compatibility.md lists it.
"""

from __future__ import annotations

import difflib
import re
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import yaml
from google.protobuf import text_format
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
from diff import compare_metrics
from expo import Exposition, Family, series_text
from otlp_signals import SIGNAL, SIGNALS, count_items
from pair import SIDES, rewrite
from test_parity_self_telemetry import scrape
from test_parity_signals import answer_diffs, send
from traffic import kv, span

KEYS = ["host", "tier", "", "zone", "host"]
PIPELINES = {  # x-parity value -> the processors' keys, in pipeline order
    "grouped": {"groupbyattrs": KEYS},
    "compact": {"groupbyattrs/compact": [], "groupbyattrs/zone": ["zone"]},
}
TRANSPORTS = ("grpc", "http/protobuf")
SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
S20, S21 = "https://opentelemetry.io/schemas/1.20.0", "https://opentelemetry.io/schemas/1.21.0"
NAN = float("nan")
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
UNIT = {"traces": "spans", "logs": "logs", "metrics": "metrics"}  # in otelcol's counter names
GROUPS = {"traces": "span", "logs": "log", "metrics": "metric"}
# The OpenTelemetry SDK's default histogram bounds, which otelcol's histograms use.
BOUNDS = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)


def effective(keys: list) -> list:
    """The keys otelcol groups by: empty ones dropped, each once, in their first place."""
    return list(dict.fromkeys(k for k in keys if k))


def config(keys_setting=None) -> str:
    """The pair's config; `keys_setting` replaces the first instance's `keys` as written."""
    processors = {pid: {"keys": keys} for pipe in PIPELINES.values() for pid, keys in pipe.items()}
    if keys_setting is not None:
        processors["groupbyattrs"] = {"keys": keys_setting}
    pipelines = {}
    for label, pipe in PIPELINES.items():
        for signal in SIGNALS:
            pipelines[signal if label == "grouped" else f"{signal}/{label}"] = {
                "receivers": ["otlp"], "processors": list(pipe), "exporters": [f"otlp/{label}"]}
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "processors": processors,
        "exporters": {f"otlp/{label}": {"endpoint": "sink:4317", "tls": {"insecure": True},
                                        "headers": {"x-parity": label}} for label in PIPELINES},
        "service": {"pipelines": pipelines},
    }, sort_keys=False)


# ---------------------------------------------------------------- the traffic

# Attribute lists in order, a key possibly twice.
NONE = [("http.route", "/cart"), ("", "a key that is empty")]  # "" is no grouping key
HOST = [("host", "h1"), ("http.route", "/a")]
ORDER = [("tier", 3), ("a", 1), ("host", "h1"), ("b", 2), ("c", 3)]  # host out first: [tier a c b], then [b a c]
TWICE = [("host", "h2"), ("x", 1), ("host", "h3"), ("y", 2)]  # h2 moves, h3 stays
ONLY = [("zone", "z1"), ("tier", "t1"), ("host", "h1")]  # nothing left on the item
TIER_SAME = [("tier", "resource-tier"), ("host", "h1"), ("d", 4)]  # the resource's own tier value
ARRAY = [("zone", ["eu", 1, True]), ("n", 1)]
KV1 = [("zone", {"a": 1, "b": "x"}), ("m", 2)]
KV2 = [("n", 0), ("zone", {"b": "x", "a": 1})]  # the same kvlist in another order: KV1's resource
SCALARS = [("host", True), ("tier", 2.5), ("e", 5)]
BYTES = [("host", b"\x00\x01"), ("q", "r")]
EMPTY_VALUE = [("zone", common_pb2.AnyValue()), ("w", 1)]
BARE = []

SHOP = [("service.name", "shop"), ("tier", "resource-tier"), ("env", "prod")]
SHOP_REORDERED = [("env", "prod"), ("service.name", "shop"), ("tier", "resource-tier")]
DB = [("service.name", "db"), ("k8s", {"ns": "a", "pod": "p"})]
DB_REORDERED = [("k8s", {"pod": "p", "ns": "a"}), ("service.name", "db")]
CACHE_H1 = [("service.name", "cache"), ("host", "h1")]
CACHE = [("service.name", "cache")]  # with host h1: CACHE_H1's resource


@dataclass
class M:
    """A metric: its kind (None: no data) and one data point per attribute list."""

    name: str
    kind: str | None
    points: list = field(default_factory=list)
    temporality: int = DELTA
    monotonic: bool = True
    description: str = ""
    unit: str = ""


@dataclass
class Sc:
    name: str
    version: str
    items: list  # attribute lists (spans, log records) or M (metrics)
    attrs: list = field(default_factory=list)
    schema_url: str = ""
    dropped: int = 0


@dataclass
class Res:
    attrs: list
    scopes: list
    schema_url: str = ""
    dropped: int = 0
    entity: bool = False


def layout(signal: str, k: int) -> list:
    """Request k's resources (the second request has them in the reverse order)."""
    if signal == "metrics":
        shop_first = [
            M("temp", "gauge", [NONE, HOST, ORDER], description="Temperature", unit="Cel"),
            M("requests", "sum", [HOST, TWICE, ONLY], unit="1"),
            M("latency", "histogram", [NONE, HOST], CUMULATIVE, unit="ms"),
            M("size", "exponential_histogram", [ARRAY, KV1]),
            M("rpc", "summary", [SCALARS, HOST]),
            M("no.data", None),
            M("no.points", "gauge"),
            M("temp", "sum", [HOST], CUMULATIVE, False, "Temperature as a sum"),  # another type: its own
            M("temp", "gauge", [HOST, BARE], description="Second temperature"),  # into the first gauge
        ]
        shop_second = [M("requests", "sum", [HOST, TIER_SAME])]
        shop_reordered = [M("requests", "sum", [NONE, HOST], CUMULATIVE, False, "other"),  # into the delta sum
                          M("no.points.sum", "sum")]
        db = [M("size", "exponential_histogram", [KV2, EMPTY_VALUE]), M("rpc", "summary", [BYTES])]
        db_reordered, cache_h1, cache = [M("latency", "histogram", [NONE])], [M("hits", "sum", [NONE])], [
            M("hits", "sum", [HOST, TIER_SAME])]
        bare, empty = [M("only.no.data", None), M("rpc", "summary", [NONE, ONLY])], [M("only.no.data", None)]
    else:
        shop_first, shop_second = [NONE, HOST, ORDER, TWICE], [ONLY, HOST, TIER_SAME]
        shop_reordered, db = [HOST, NONE, BARE], [ARRAY, KV1, SCALARS]
        db_reordered, cache_h1, cache = [KV2, EMPTY_VALUE, NONE], [NONE], [HOST, TIER_SAME]
        bare, empty = [NONE, ONLY], []
    resources = [
        Res(SHOP, [Sc("parity.http", "1.0", shop_first, [("team", "web")], S20, 1),
                   Sc("parity.http", "2.0", shop_second)], schema_url=S21, dropped=3, entity=True),
        Res(DB, [Sc("parity.db", "", db)]),
        Res(SHOP_REORDERED, [Sc("parity.http", "1.0", shop_reordered, [("team", "other")]),
                             Sc("", "", [BYTES] if signal != "metrics" else [M("b", "gauge", [BYTES])])]),
        Res(DB_REORDERED, [Sc("parity.db", "", db_reordered)]),
        Res(CACHE_H1, [Sc("parity.cache", "", cache_h1)]),
        Res(CACHE, [Sc("parity.cache", "", cache)]),
        Res(BARE, [Sc("parity.bare", "", bare)]),
        Res([("service.name", "empty")], [Sc("parity.empty", "", empty)]),
    ]
    return resources[::-1] if k else resources


def small(signal: str) -> list:
    """Small requests, one case each: mostly requests in which no item has a grouping key,
    each of which otelcol still rebuilds for one reason (but one that comes out as it went
    in)."""
    metrics = signal == "metrics"

    def items(*attr_lists) -> list:
        return [M(f"quiet.{i}", "sum", [a]) for i, a in enumerate(attr_lists)] if metrics else list(attr_lists)

    def sc(name="parity.quiet", version="1", *attr_lists, **kw) -> Sc:
        return Sc(name, version, items(*(attr_lists or (NONE,))), **kw)

    requests = [
        [Res(SHOP, [sc("parity.quiet", "1", NONE, BARE)], schema_url=S21, dropped=2)],  # resource schema, count
        [Res(CACHE, [sc(schema_url=S20)])],  # the scope's schema_url
        [Res(CACHE, [sc(), sc("parity.other", ""), sc("parity.quiet", "1", BARE, attrs=[("team", "x")])])],
        [Res(CACHE, [sc()]), Res(DB, [sc()]), Res(CACHE, [sc("parity.other", "")])],  # equal resources
        [Res(CACHE, [sc(), Sc("parity.empty", "", [])]), Res(DB, [])],  # nothing in a scope, a resource
        [Res(CACHE, [sc()], entity=True)],  # an entity reference
        [Res(CACHE, [sc("parity.quiet", "1", NONE, BARE, attrs=[("team", "x")], dropped=1),
                     sc("parity.quiet", "2")]), Res(DB, [sc()])],  # as it went in
        # A key twice on a resource: MapHash reads the first value for both, so these are equal.
        [Res([("service.name", "dup"), ("service.name", "one")], [sc()]),
         Res([("service.name", "dup"), ("service.name", "two")], [sc("parity.other", "")])],
        # Doubles compared by their bits: NaN equals NaN, 0.0 is not -0.0.
        [Res(CACHE, [sc("parity.float", "", [("tier", NAN)], [("tier", NAN), ("f", 1)], [("tier", 0.0)],
                        [("tier", -0.0)])])],
    ]
    if metrics:
        requests += [
            [Res(CACHE, [Sc("parity.quiet", "", [M("x", "gauge", [NONE]), M("no.data", None),
                                                  M("y", "sum", [BARE])])])],
            [Res(CACHE, [Sc("parity.quiet", "", [M("no.points", "gauge"), M("x", "gauge", [NONE])])])],
            [Res(CACHE, [Sc("parity.quiet", "", [M("x", "gauge", [NONE]), M("y", "sum", [NONE]),
                                                  M("x", "gauge", [BARE], description="again")])])],
            [Res(CACHE, [Sc("parity.quiet", "", [M("no.data", None), M("no.points", "sum")])])],  # no points at all
        ]
    return requests


def attributes(pairs: list) -> list:
    return [kv(key, value) for key, value in pairs]


def _span(k: int, n: int, attrs: list) -> trace_pb2.Span:
    sp = span(name=f"span {k}.{n}", kind=1 + n % 5, status=n % 3, start=T0 + (10 * k + n) * SEC)
    sp.attributes.extend(attributes(attrs))
    sp.dropped_attributes_count = n % 2
    sp.trace_state = "k=v"
    sp.events.add(name="ev", time_unix_nano=sp.start_time_unix_nano, attributes=attributes([("host", "event")]))
    sp.links.add(trace_id=sp.trace_id, span_id=sp.span_id, attributes=attributes([("zone", "link")]))
    return sp


def _log(k: int, n: int, attrs: list) -> logs_pb2.LogRecord:
    return logs_pb2.LogRecord(
        time_unix_nano=T0 + n * SEC if n % 3 else 0, observed_time_unix_nano=T0 + (10 * k + n) * SEC,
        severity_number=1 + n % 24, severity_text="WARN" if n % 2 else "", event_name="parity.event" if n % 4 else "",
        body=common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=attributes([("host", "body"), ("n", n)]))),
        attributes=attributes(attrs), dropped_attributes_count=n % 2, flags=n % 2,
        trace_id=bytes([k + 1] * 16) if n % 2 else b"", span_id=bytes([n + 1] * 8) if n % 2 else b"")


def _point(kind: str, k: int, n: int, attrs: list):
    start, t = T0 + k * SEC, T0 + (10 * k + n) * SEC
    common = {"attributes": attributes(attrs), "start_time_unix_nano": start, "time_unix_nano": t, "flags": n % 2}
    if kind in ("gauge", "sum"):
        p = metrics_pb2.NumberDataPoint(**common, **({"as_double": n + 0.5} if kind == "gauge" else {"as_int": n}))
        if n % 2:
            p.exemplars.add(time_unix_nano=t, as_double=1.5, filtered_attributes=attributes([("host", "exemplar")]))
        return p
    if kind == "histogram":
        return metrics_pb2.HistogramDataPoint(**common, count=3 + n, sum=12.5, bucket_counts=[1, 2 + n, 0],
                                              explicit_bounds=[1.0, 10.0], min=0.5, max=9.5)
    if kind == "exponential_histogram":
        return metrics_pb2.ExponentialHistogramDataPoint(
            **common, count=4, sum=7.0, scale=2, zero_count=1, zero_threshold=0.001,
            positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=n, bucket_counts=[1, 1]),
            negative=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=-1, bucket_counts=[1]))
    return metrics_pb2.SummaryDataPoint(**common, count=2, sum=3.0 + n, quantile_values=[
        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
        metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=2.0 + n)])


def _metric(k: int, m: M, n: int) -> metrics_pb2.Metric:
    out = metrics_pb2.Metric(name=m.name, description=m.description, unit=m.unit,
                             metadata=attributes([("origin", m.name)]))
    if m.kind is None:
        return out
    data = getattr(out, m.kind)
    data.SetInParent()
    if m.kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = m.temporality
    if m.kind == "sum":
        data.is_monotonic = m.monotonic
    data.data_points.extend(_point(m.kind, k, n + i, attrs) for i, attrs in enumerate(m.points))
    return out


def requests(signal: str) -> list:
    """(transport, request) of `signal` to send: the two of layout(), then the small ones,
    alternately over gRPC and OTLP/HTTP."""
    layouts = [layout(signal, k) for k in range(len(TRANSPORTS))] + small(signal)
    return [(TRANSPORTS[k % len(TRANSPORTS)], build(signal, k, res)) for k, res in enumerate(layouts)]


def build(signal: str, k: int, resources: list):
    """Request number k of `signal`, holding `resources`."""
    sig = SIGNAL[signal]
    req = sig.request()
    n = 0
    for res in resources:
        rs = getattr(req, sig.resources).add(schema_url=res.schema_url)
        rs.resource.attributes.extend(attributes(res.attrs))
        rs.resource.dropped_attributes_count = res.dropped
        if res.entity:
            rs.resource.entity_refs.add(type="service", id_keys=["service.name"])
        for sc in res.scopes:
            ss = getattr(rs, sig.scopes).add(schema_url=sc.schema_url)
            ss.scope.name, ss.scope.version, ss.scope.dropped_attributes_count = sc.name, sc.version, sc.dropped
            ss.scope.attributes.extend(attributes(sc.attrs))
            for item in sc.items:
                n += 1
                if signal == "traces":
                    ss.spans.append(_span(k, n, item))
                elif signal == "logs":
                    ss.log_records.append(_log(k, n, item))
                else:
                    ss.metrics.append(_metric(k, item, 10 * n))
    return req


# ---------------------------------------------------------------- the model


def hash_key(attrs) -> tuple:
    """What pdata's MapHash sees of a map: its keys sorted (a duplicate twice), each with the
    value of its first occurrence; kvlists alike, arrays in order, values with their type."""
    first: dict = {}
    for a in attrs:
        first.setdefault(a.key, a.value)
    return tuple((key, _value_key(first[key])) for key in sorted(a.key for a in attrs))


def _value_key(v: common_pb2.AnyValue):
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        return "kvlist", hash_key(v.kvlist_value.values)
    if kind == "array_value":
        return "array", tuple(_value_key(x) for x in v.array_value.values)
    if kind == "double_value":
        return "double", struct.pack("<d", v.double_value)
    return kind, getattr(v, kind) if kind else None


def _first(attrs, key: str):
    return next((a for a in attrs if a.key == key), None)


def _swap_remove(attrs, key: str):
    """pdata's Map.Remove: the first occurrence replaced by the last attribute."""
    i = next(i for i, a in enumerate(attrs) if a.key == key)
    if i != len(attrs) - 1:
        attrs[i].CopyFrom(attrs[-1])
    del attrs[-1]


def _find_or_add(entries, match, make):
    for e in entries:
        if match(e):
            return e
    e = entries.add()
    make(e)
    return e


@dataclass
class Outcome:
    """One instance's output for one request, and what it counts."""

    request: object
    grouped: int = 0
    non_grouped: int = 0


def regroup(signal: str, req, keys: list) -> Outcome:
    """What groupbyattrs with `keys` makes of `req`."""
    sig = SIGNAL[signal]
    keys = effective(keys)
    src = sig.request()
    src.CopyFrom(req)
    out = Outcome(sig.request())
    hashes: list = []

    def place(rs, ss, attrs) -> object:
        """Moves the grouping attributes off `attrs`; the output scope entry for the item."""
        required = [(key, a.value) for key in keys for a in [_first(attrs, key)] if a is not None]
        if required:
            out.grouped += 1
            for key, _ in required:
                _swap_remove(attrs, key)
        else:
            out.non_grouped += 1
        reference = resource_pb2.Resource(attributes=rs.resource.attributes)
        res_attrs = reference.attributes
        for key, value in required:
            slot = _first(res_attrs, key) or res_attrs.add(key=key)
            slot.value.CopyFrom(value)
        h = hash_key(res_attrs)
        resources = getattr(out.request, sig.resources)
        if h not in hashes:
            hashes.append(h)
            resources.add().resource.attributes.extend(res_attrs)
        target = resources[hashes.index(h)]
        return _find_or_add(getattr(target, sig.scopes),
                            lambda e: (e.scope.name, e.scope.version) == (ss.scope.name, ss.scope.version),
                            lambda e: e.scope.CopyFrom(ss.scope))

    for rs in getattr(src, sig.resources):
        for ss in getattr(rs, sig.scopes):
            if signal != "metrics":
                for item in getattr(ss, sig.items):
                    getattr(place(rs, ss, item.attributes), sig.items).add().CopyFrom(item)
                continue
            for m in ss.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points if kind else ():
                    scope = place(rs, ss, p.attributes)
                    metric = _find_or_add(scope.metrics, lambda e: (e.name, e.WhichOneof("data")) == (m.name, kind),
                                          lambda e: _metric_head(e, m))
                    getattr(metric, kind).data_points.add().CopyFrom(p)
    return out


def _metric_head(e: metrics_pb2.Metric, m: metrics_pb2.Metric):
    """otelcol's new metric: the first one's name, description, unit, metadata, and its
    temporality and monotonicity."""
    e.name, e.description, e.unit = m.name, m.description, m.unit
    e.metadata.extend(m.metadata)
    kind = m.WhichOneof("data")
    data = getattr(e, kind)
    data.SetInParent()
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = getattr(m, kind).aggregation_temporality
    if kind == "sum":
        data.is_monotonic = m.sum.is_monotonic


@dataclass
class Tally:
    """Requests each pipeline must forward, and the telemetry the instances must count."""

    forwarded: dict = field(default_factory=dict)  # (label, signal) -> Counter of request texts
    counters: Counter = field(default_factory=Counter)  # (sample, labels) -> value
    groups: dict = field(default_factory=dict)  # signal -> resources of each output

    def add(self, signal: str, req):
        if not count_items(signal, [req]):
            return  # otelcol's receiver answers a request without items and passes nothing on
        for label, pipe in PIPELINES.items():
            out = req
            for pid, keys in pipe.items():
                before = out
                outcome = regroup(signal, before, keys)
                out = outcome.request
                self.counters[(f"otelcol_processor_groupbyattrs_num_grouped_{UNIT[signal]}", ())] += outcome.grouped
                self.counters[(f"otelcol_processor_groupbyattrs_num_non_grouped_{UNIT[signal]}", ())] += \
                    outcome.non_grouped
                items = (("otel_signal", signal), ("processor", pid))
                self.counters[("otelcol_processor_incoming_items", items)] += count_items(signal, [before])
                self.counters[("otelcol_processor_outgoing_items", items)] += count_items(signal, [out])
                self.groups.setdefault(signal, []).append(len(getattr(out, SIGNAL[signal].resources)))
            self.forwarded.setdefault((label, signal), Counter())[canonical(out)] += 1

    def requests(self) -> int:
        return sum(sum(c.values()) for c in self.forwarded.values())

    def samples(self) -> dict:
        """Every series the model implies, histograms included."""
        out = {key: float(v) for key, v in self.counters.items()}
        for signal, sizes in self.groups.items():
            name = f"otelcol_processor_groupbyattrs_{GROUPS[signal]}_groups"
            for bound in BOUNDS:
                out[(f"{name}_bucket", (("le", str(bound)),))] = float(sum(s <= bound for s in sizes))
            out[(f"{name}_bucket", (("le", "+Inf"),))] = float(len(sizes))
            out[(f"{name}_sum", ())], out[(f"{name}_count", ())] = float(sum(sizes)), float(len(sizes))
        return out


# ---------------------------------------------------------------- what arrived


def _clear_empty(msg):
    """Clears present-but-empty singular sub-messages that are not oneof members (otelcol
    writes some that were not sent, `status {}`); attribute order is kept."""
    for fd, value in msg.ListFields():
        if fd.message_type is None or fd.message_type.GetOptions().map_entry:
            continue
        for v in (value if fd.is_repeated else [value]):
            _clear_empty(v)
        if not fd.is_repeated and value.ByteSize() == 0 and fd.containing_oneof is None:
            msg.ClearField(fd.name)


def canonical(req) -> str:
    norm = type(req)()
    norm.CopyFrom(req)
    _clear_empty(norm)
    return text_format.MessageToString(norm, as_utf8=True)


def received(pair, side: str) -> dict:
    """(label, signal) -> Counter of the request texts `side` forwarded."""
    out: dict = {}
    for signal in SIGNALS:
        for rec in pair.sinks[side].received_of(signal):
            label = dict(rec.metadata).get("x-parity", "?")
            out.setdefault((label, signal), Counter())[canonical(rec.request)] += 1
    return out


def wait_requests(pair, expected: int, timeout: float = 10, quiet: float = 0.0):
    """Until both sinks hold `expected` requests of any signal and nothing more came for
    `quiet` seconds (bounded: the comparison explains a collector that never gets there)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        now = tuple(sum(pair.sinks[side].counts().values()) for side in SIDES)
        if now != last:
            last, since = now, time.monotonic()
        if min(now) >= expected and time.monotonic() - since >= quiet:
            return
        time.sleep(0.01)


def request_diffs(want: dict, got: dict, a: str, b: str, detail: list) -> list:
    """One line per request forwarded by one of `a` and `b` and not the other; a line diff of
    each such pair of requests goes to `detail`."""
    out = []
    for key in sorted(set(want) | set(got)):
        mine, theirs = want.get(key, Counter()), got.get(key, Counter())
        only_a, only_b = list((mine - theirs).elements()), list((theirs - mine).elements())
        out += [f"{key[0]} {key[1]}: request only in {a}: {_head(t)}" for t in only_a]
        out += [f"{key[0]} {key[1]}: request only in {b}: {_head(t)}" for t in only_b]
        for x, y in zip(only_a, only_b):
            lines = difflib.unified_diff(x.splitlines(), y.splitlines(), a, b, n=4, lineterm="")
            detail.append(f"--- {key[0]} {key[1]}:\n" + "\n".join(list(lines)[:150]))
    return out


def _head(text: str) -> str:
    """A request in a few words, for the difference lines."""
    resources = sum(line.startswith("resource_") for line in text.splitlines())
    return f"{resources} resource(s), {len(text)} characters"


def telemetry(pair, side: str) -> Exposition:
    """`side`'s own series of the groupbyattrs instances: the processor's families, and the
    incoming and outgoing items of each instance."""
    _, expo = scrape(pair, side)
    families = {}
    for name, fam in expo.families.items():
        if name.startswith("otelcol_processor_groupbyattrs_"):
            families[name] = fam
        elif name in ("otelcol_processor_incoming_items", "otelcol_processor_outgoing_items"):
            ours = {key: s for key, s in fam.samples.items()
                    if dict(key[1]).get("processor", "").startswith("groupbyattrs")}
            families[name] = Family(name, fam.help, fam.type, ours)
    return Exposition(expo.content_type, families)


def samples(expo: Exposition) -> dict:
    """(sample, labels) -> value, with only the labels the model gives (`otel_signal` and
    `processor` on the item counters)."""
    out: dict = {}
    for fam in expo.families.values():
        for (name, labels), s in fam.samples.items():
            kept = tuple((k, v) for k, v in labels if k in ("le", "otel_signal", "processor"))
            out[(name, kept)] = out.get((name, kept), 0.0) + s.value
    return out


# ---------------------------------------------------------------- the tests


def test_grouped_as_the_model_groups(pair_factory, allow):
    pair = pair_factory(config(), flush_interval=None)
    wrong, apart, detail = [], [], []  # against the model; between the collectors
    tally = Tally()
    for signal in ("traces", "logs", "metrics"):
        for k, (transport, req) in enumerate(requests(signal)):
            seen = send(pair, signal, transport, req)
            apart += answer_diffs(f"groupbyattrs: {signal} request {k} over {transport}", seen)
            assert seen["otelcol"].startswith(("OK", "200")), seen
            tally.add(signal, req)
            # One request at a time in each exporter: Redline's would send two queued ones as
            # one (docs/architecture.md), which keeps every item and changes what is compared.
            wait_requests(pair, tally.requests())
    wait_requests(pair, tally.requests(), quiet=0.5)

    got = {side: received(pair, side) for side in SIDES}
    for side in SIDES:
        wrong += request_diffs(tally.forwarded, got[side], "the model", side, detail)
    apart += request_diffs(got["otelcol"], got["redline"], "otelcol", "redline", detail)

    # Their own counters, after everything was forwarded (both count before they forward).
    expo = {side: telemetry(pair, side) for side in SIDES}
    want = tally.samples()
    for side in SIDES:
        served = samples(expo[side])
        for key in sorted(set(want) | set(served)):
            if want.get(key) != served.get(key):
                wrong.append(f"{side}: {series_text(*key)} = {served.get(key)} (model: {want.get(key)})")
    apart += compare_metrics(expo["otelcol"], expo["redline"])

    problems = wrong + allow.unexplained(apart)
    assert not problems, (f"{len(problems)} difference(s):\n  " + "\n  ".join(problems)
                          + ("\n\n" + "\n\n".join(detail[:6]) if detail else ""))


def test_keys_as_one_string_are_split_at_commas(pair_factory, allow):
    """`keys: "zone, host"` is otelcol's [zone, " host"] (confmap splits a string given for a
    list at its commas, spaces kept): the traces are grouped by `zone` alone, since no item
    has ` host`."""
    pair = pair_factory(config("zone, host"), flush_interval=None)
    req = build("traces", 0, layout("traces", 0))
    seen = send(pair, "traces", "grpc", req)
    apart = answer_diffs("groupbyattrs: keys as one string", seen)
    want = {("grouped", "traces"): Counter([canonical(regroup("traces", req, ["zone", " host"]).request)])}
    wait_requests(pair, 2, quiet=0.5)  # the grouped and the compact traces
    detail: list = []
    wrong = []
    for side in SIDES:
        got = {k: v for k, v in received(pair, side).items() if k == ("grouped", "traces")}
        wrong += request_diffs(want, got, "the model", side, detail)
    problems = wrong + allow.unexplained(apart)
    assert not problems, "\n  ".join(problems) + ("\n\n" + "\n\n".join(detail[:2]) if detail else "")


def validate_both(otelcol_bin, redline_bin, tmp_path, settings) -> tuple:
    """otelcol's and Redline's `validate` of the pair's config with `settings` for
    `groupbyattrs`."""
    cfg = yaml.safe_load(config())
    cfg["processors"]["groupbyattrs"] = settings
    cfg, _ = rewrite(cfg, "127.0.0.1:1", None)
    path = tmp_path / "groupbyattrs.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tuple(helpers.run([b, "validate", "--config", path], timeout=60) for b in (otelcol_bin, redline_bin))


# Settings otelcol refuses: what it says, and the key `redline validate` names.
REFUSED = [
    ("keys a map", {"keys": {"host": 1}}, "'keys' source data must be an array or slice", "keys"),
    ("keys holding a list", {"keys": ["host", ["zone"]]}, "'keys[1]' expected type 'string'", "keys"),
    ("keys an int", {"keys": 5}, "'keys' source data must be an array or slice, got int", "keys"),
    ("unknown key", {"keys": ["host"], "key": ["zone"]}, "has invalid keys: key", "key"),
    ("unknown key only", {"group_by": ["host"]}, "has invalid keys: group_by", "group_by"),
]
# Settings otelcol refuses and Redline takes (docs/compatibility.md §25: a number or bool
# where a string is wanted is its text, as otelcol takes it from a `${env:...}` reference).
TAKEN_AS_TEXT = [
    ("keys holding an int", {"keys": ["host", 1]}, "'keys[1]' expected type 'string', got unconvertible type 'int'"),
    ("keys holding a bool", {"keys": ["host", True]},
     "'keys[1]' expected type 'string', got unconvertible type 'bool'"),
]
ACCEPTED = [
    ("no settings", None),
    ("no keys", {}),
    ("keys null", {"keys": None}),
    ("empty and repeated keys", {"keys": ["", "host", "host", ""]}),
    ("a key null", {"keys": ["host", None]}),
    ("keys an empty string", {"keys": ""}),  # split at commas: no keys
]


@pytest.mark.parametrize("settings,message,key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_settings_are_refused_by_both(otelcol_bin, redline_bin, tmp_path, settings, message, key):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode != 0 and message in peer.stderr, peer.stderr[-2000:]
    named = re.search(rf"processors\.groupbyattrs\.{re.escape(key)}(?!\w)", ours.stderr + ours.stdout)
    assert ours.returncode != 0 and named, f"redline validate: {ours.returncode}\n{ours.stdout}{ours.stderr}"


@pytest.mark.parametrize("settings,message", [c[1:] for c in TAKEN_AS_TEXT], ids=[c[0] for c in TAKEN_AS_TEXT])
def test_numbers_in_keys_are_refused_by_otelcol_and_taken_as_text_by_redline(
        otelcol_bin, redline_bin, tmp_path, settings, message):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode != 0 and message in peer.stderr, peer.stderr[-2000:]
    assert ours.returncode == 0, ours.stderr[-2000:]


@pytest.mark.parametrize("settings", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_settings_taken_by_both(otelcol_bin, redline_bin, tmp_path, settings):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode == 0, peer.stderr[-2000:]
    assert ours.returncode == 0, ours.stderr[-2000:]
