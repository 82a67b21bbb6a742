"""The test's own, independent model of what Redline must compute (docs/architecture.md section 4).

Given the spans the SDK exported (ReadableSpan objects from an InMemorySpanExporter), compute
every series the spanmetrics connector must serve, and PromQL's histogram_quantile exactly as
Prometheus evaluates it.
"""

from __future__ import annotations

import math
from collections import defaultdict

# Default otelcol spanmetrics buckets, in milliseconds (+Inf implied).
DEFAULT_BUCKETS_MS = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000]

NS_PER_MS = 1_000_000


def attr_to_label(v) -> str:
    """How an attribute value becomes a label value (otelcol: AsString)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def duration_ms(span) -> float:
    d = span.end_time - span.start_time
    return max(d, 0) / NS_PER_MS


def series_labels(span, dimensions=("cdn.cache.hit",)):
    """Label dict of the calls/duration series for a span, or None if it is not counted."""
    svc = span.resource.attributes.get("service.name")
    if not isinstance(svc, str) or svc == "":
        return None
    labels = {
        "service_name": svc,
        "span_name": span.name,
        "span_kind": "SPAN_KIND_" + span.kind.name,
        "status_code": "STATUS_CODE_" + span.status.status_code.name,
    }
    attrs = span.attributes or {}
    res_attrs = span.resource.attributes
    for dim in dimensions:
        key = dim.replace(".", "_")
        if dim in attrs:
            labels[key] = attr_to_label(attrs[dim])
        elif dim in res_attrs:
            labels[key] = attr_to_label(res_attrs[dim])
    return labels


def key(labels: dict) -> tuple:
    return tuple(sorted(labels.items()))


class Expected:
    """All series values implied by a list of spans."""

    def __init__(self, spans, buckets=DEFAULT_BUCKETS_MS, dimensions=("cdn.cache.hit",)):
        self.buckets = list(buckets)
        self.calls: dict = defaultdict(int)  # key(labels) -> n
        self.errors: dict = defaultdict(int)  # key(labels minus status_code) -> n ERROR
        self.hist_count: dict = defaultdict(int)  # key(labels) -> n
        self.hist_sum: dict = defaultdict(float)  # key(labels) -> ms
        self.hist_bucket: dict = defaultdict(int)  # (key(labels), le float) -> cumulative n
        self.counted = []  # spans that count
        self.not_counted = []  # spans without service.name
        self.by_ids = {}  # (trace_id int, span_id int) -> span
        for sp in spans:
            self.by_ids[(sp.context.trace_id, sp.context.span_id)] = sp
            labels = series_labels(sp, dimensions)
            if labels is None:
                self.not_counted.append(sp)
                continue
            self.counted.append(sp)
            k = key(labels)
            self.calls[k] += 1
            group = {k2: v for k2, v in labels.items() if k2 != "status_code"}
            self.errors[key(group)] += 1 if labels["status_code"] == "STATUS_CODE_ERROR" else 0
            ms = duration_ms(sp)
            self.hist_count[k] += 1
            self.hist_sum[k] += ms
            for le in self.buckets + [math.inf]:
                self.hist_bucket[(k, float(le))] += 1 if ms <= le else 0

    # ---------------------------------------------------------- aggregations like the dashboard
    @staticmethod
    def _match(k: tuple, matchers: dict) -> bool:
        d = dict(k)
        return all(d.get(n) == v for n, v in matchers.items())

    def sum_calls(self, by: str | None = None, **matchers):
        out: dict = defaultdict(int)
        for k, n in self.calls.items():
            if self._match(k, matchers):
                out[dict(k).get(by) if by else None] += n
        return dict(out) if by else out.get(None, 0)

    def sum_errors(self, **matchers) -> int:
        return sum(n for k, n in self.errors.items() if self._match(k, matchers))

    def sum_buckets(self, **matchers) -> dict:
        """le -> cumulative count, summed over the matching series (sum(...) by (le))."""
        out: dict = defaultdict(int)
        for (k, le), n in self.hist_bucket.items():
            if self._match(k, matchers):
                out[le] += n
        return dict(out)


def histogram_quantile(q: float, buckets: dict) -> float:
    """PromQL histogram_quantile over {upper_bound: cumulative count}, as Prometheus 2.x
    (promql/quantile.go bucketQuantile) computes it."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bs = sorted(buckets.items())
    if not bs or not math.isinf(bs[-1][0]):
        return math.nan
    # ensure monotonic (cumulative counts never decrease)
    fixed = []
    mx = -math.inf
    for ub, c in bs:
        mx = max(mx, c)
        fixed.append((ub, mx))
    bs = fixed
    if len(bs) < 2:
        return math.nan
    observations = bs[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search(len(buckets)-1, count >= rank)
    b = len(bs) - 1
    for i in range(len(bs) - 1):
        if bs[i][1] >= rank:
            b = i
            break
    if b == len(bs) - 1:
        return bs[-2][0]
    if b == 0 and bs[0][0] <= 0:
        return bs[0][0]
    bucket_start = 0.0
    bucket_end = bs[b][0]
    count = bs[b][1]
    if b > 0:
        bucket_start = bs[b - 1][0]
        count -= bs[b - 1][1]
        rank -= bs[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)
