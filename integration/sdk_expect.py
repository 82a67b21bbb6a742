"""The Prometheus series the OTLP → Prometheus translation of otelcol-contrib v0.161.0 makes
of sdk_metrics' plan: names, labels and values, computed from the tally (sdk_metrics) and the
translation rules written out below, never read from a collector.

Rules (otelcol-contrib 0.161 `prometheus` exporter and `prometheusremotewrite` exporter,
default settings, i.e. UnderscoreEscapingWithSuffixes):

  * names: dots to underscores; unit suffix (`s` → `_seconds`, `ms` → `_milliseconds`,
    `By` → `_bytes`, `1` on a gauge → `_ratio`, `{...}` annotations dropped); monotonic sums
    get `_total`; non-monotonic sums (up-down counters) are gauges without `_total`;
  * labels: attribute keys with every character outside [a-zA-Z0-9_] as `_`; `job` =
    service.namespace/service.name, `instance` = service.instance.id; `otel_scope_name`,
    `otel_scope_version` from the scope, and `otel_scope_schema_url` on a scrape only (the
    remote-write translator has no schema URL label);
  * `target_info` = 1 per resource, labelled job, instance and every other resource
    attribute (service.name, service.namespace, service.instance.id left out);
  * explicit histograms: `_bucket{le}` cumulative, `_sum`, `_count`;
  * exponential histograms: a native histogram (schema = OTel scale, ≤ 8) where the scraper
    or the remote-write receiver takes native histograms; a scrape in the text format sees
    only `_bucket{le="+Inf"}`, `_sum`, `_count`;
  * `prometheus` exporter (scrape): delta monotonic sums and delta histograms are
    accumulated into cumulative series; delta non-monotonic sums are dropped;
  * `prometheusremotewrite`: every delta sum and delta histogram (monotonic or not) is
    dropped; gauges (no temporality) and target_info of a delta-only resource are written.
"""

from __future__ import annotations

import math
import re

import sdk_metrics as sm

PROM_NAME = {
    "shop.orders": "shop_orders_total",
    "shop.cpu.time": "shop_cpu_time_seconds_total",
    "shop.queue.depth": "shop_queue_depth",
    "shop.request.duration": "shop_request_duration_milliseconds",
    "shop.payload.size": "shop_payload_size_bytes",
    "shop.cpu.utilization": "shop_cpu_utilization_ratio",
    "shop.uptime": "shop_uptime_seconds_total",
}
# Prometheus TYPE per instrument kind (the family's metadata).
PROM_TYPE = {"counter": "counter", "observable_counter": "counter", "updowncounter": "gauge", "gauge": "gauge",
             "histogram": "histogram", "exponential": "histogram"}
SERVICE_KEYS = ("service.name", "service.namespace", "service.instance.id")


def label_name(key: str) -> str:
    out = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    return "key_" + out if out[0].isdigit() else out


def fmt_le(b: float, openmetrics_floats: bool = False) -> str:
    """A bucket bound as Prometheus stores it in `le`: 2.42 keeps the exposition's text
    (otelcol writes `5`), Prometheus 3 normalizes every bound to its float form (`5.0`)."""
    if b == math.inf:
        return "+Inf"
    text = repr(float(b))
    return text if openmetrics_floats else (text[:-2] if text.endswith(".0") else text)


def base_labels(temporality: str, route: str) -> dict:
    """Labels of every series of a provider; remote write has no otel_scope_schema_url."""
    out = {"job": sm.JOB, "instance": sm.instance_id(temporality), "otel_scope_name": sm.SCOPE_NAME,
           "otel_scope_version": sm.SCOPE_VERSION}
    if route == "scrape":
        out["otel_scope_schema_url"] = sm.SCOPE_SCHEMA_URL
    return out


def target_info(temporality: str) -> tuple:
    res = sm.resource_attributes(temporality)
    labels = {"job": sm.JOB, "instance": sm.instance_id(temporality),
              **{label_name(k): v for k, v in res.items() if k not in SERVICE_KEYS}}
    return ("target_info", key(labels))


def key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


def kept(kind: str, temporality: str, route: str, accumulated: bool = False) -> bool:
    """Whether a point of `kind` from a `temporality` provider survives `route` (scrape or rw);
    `accumulated`: a deltatocumulative processor made every delta point cumulative first."""
    if temporality == "cumulative" or kind == "gauge" or accumulated:
        return True
    if route == "scrape":
        return kind != "updowncounter"
    return False  # remote write: no delta sum or histogram


def expected(tally: sm.Tally, route: str, native: bool, le_floats: bool = False,
             accumulated: bool = False) -> tuple[dict, dict]:
    """(float series, native histograms) Prometheus must hold at the end.

    float series: {(name, label key): value}; native histograms: {(name, label key):
    observations} (checked separately: count, sum, buckets, quantile). `native`: the
    exponential histogram arrives as a native histogram (else as a text-format classic one);
    `le_floats`: Prometheus 3 (bounds normalized, see fmt_le); `accumulated`: delta points
    were made cumulative before the route (see kept)."""
    floats, natives = {}, {}
    for t in sm.TEMPORALITIES:
        base = base_labels(t, route)
        floats[target_info(t)] = 1.0
        for (name, akey), total in tally.sums.items():
            kind = sm.INSTRUMENTS[name][0]
            if kept(kind, t, route, accumulated):
                floats[(PROM_NAME[name], key({**base, **{label_name(k): v for k, v in akey}}))] = total
        for (name, akey), last in tally.last.items():
            kind = sm.INSTRUMENTS[name][0]
            if kept(kind, t, route, accumulated):
                # An observable counter reports its total: the last answer, whatever the
                # temporality (delta: the differences, accumulated again by the exporter).
                floats[(PROM_NAME[name], key({**base, **{label_name(k): v for k, v in akey}}))] = last
        for (name, akey), obs in tally.observations.items():
            kind = sm.INSTRUMENTS[name][0]
            if not kept(kind, t, route, accumulated):
                continue
            labels = {**base, **{label_name(k): v for k, v in akey}}
            fam = PROM_NAME[name]
            if kind == "exponential" and native:
                natives[(fam, key(labels))] = list(obs)
                continue
            floats[(fam + "_sum", key(labels))] = float(sum(obs))
            floats[(fam + "_count", key(labels))] = float(len(obs))
            buckets = sm.explicit_buckets(obs) if kind == "histogram" else [(math.inf, len(obs))]
            for le, n in buckets:
                floats[(fam + "_bucket", key({**labels, "le": fmt_le(le, le_floats)}))] = float(n)
    return floats, natives


def native_buckets(observations: list, scale: int = sm.EXPO_MAX_SCALE) -> dict:
    """{(lower, upper): count} of the positive buckets, and (0, 0) for the zero bucket."""
    out: dict = {}
    for v in observations:
        b = (0.0, 0.0) if v == 0 else sm.expo_bucket_bounds(v, scale)
        out[b] = out.get(b, 0) + 1
    return out


def families(route: str) -> dict:
    """{family name: (TYPE, HELP)} a scrape must show (metadata), from the instrument list."""
    out = {"target_info": ("gauge", "Target metadata")}
    for name, (kind, _unit, desc) in sm.INSTRUMENTS.items():
        out[PROM_NAME[name]] = (PROM_TYPE[kind], desc)
    return out
