"""Parity of the `deltatocumulative` processor: a sequence of delta requests (int and double
sums, monotonic and not, explicit histograms whose bounds change, exponential histograms whose
scale drops and whose buckets outgrow 160, points out of order or starting too early, streams
told apart by resource, scope and point attributes) goes to both collectors in the same order
over gRPC; what each forwards to its OTLP sink is compared item by item, and the running
totals Redline forwards are checked against a tally kept here. Cumulative sums, gauges and
summaries pass as sent; a request whose every point is dropped is answered OK and forwards
nothing, in both.
"""

from __future__ import annotations

import math

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

import helpers
import otlp_signals
import yaml
from configs import three_signals_with
from test_parity_self_telemetry import scrape
from test_parity_signals import check_forwarded, send
from traffic import kv

DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000


def _request(step: int, metrics_by_resource: dict) -> metrics_service_pb2.ExportMetricsServiceRequest:
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[
        metrics_pb2.ResourceMetrics(
            resource=resource_pb2.Resource(attributes=[kv("service.name", svc), kv("host.name", "node-1")]),
            scope_metrics=[metrics_pb2.ScopeMetrics(
                scope=common_pb2.InstrumentationScope(name="parity.delta", version="1"), metrics=ms)])
        for svc, ms in metrics_by_resource.items()])


def _number(step: int, value, start_step=None, **attrs) -> metrics_pb2.NumberDataPoint:
    start = T0 + (step - 1 if start_step is None else start_step) * SEC
    p = metrics_pb2.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=T0 + step * SEC,
                                    attributes=[kv(k, v) for k, v in attrs.items()])
    if isinstance(value, int):
        p.as_int = value
    else:
        p.as_double = value
    return p


def _sum(name, points, temporality=DELTA, monotonic=True) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(name=name, unit="1", sum=metrics_pb2.Sum(
        aggregation_temporality=temporality, is_monotonic=monotonic, data_points=points))


def _histogram(step, bounds, counts, sum_=None, **attrs) -> metrics_pb2.Metric:
    p = metrics_pb2.HistogramDataPoint(
        start_time_unix_nano=T0 + (step - 1) * SEC, time_unix_nano=T0 + step * SEC, count=sum(counts),
        explicit_bounds=bounds, bucket_counts=counts, attributes=[kv(k, v) for k, v in attrs.items()],
        min=0.01 * step, max=10.0 * step)
    if sum_ is not None:
        p.sum = sum_
    return metrics_pb2.Metric(name="http.server.duration", unit="ms", histogram=metrics_pb2.Histogram(
        aggregation_temporality=DELTA, data_points=[p]))


def _expo(step, scale, offset, counts, zero_count=0, negative=None) -> metrics_pb2.Metric:
    p = metrics_pb2.ExponentialHistogramDataPoint(
        start_time_unix_nano=T0 + (step - 1) * SEC, time_unix_nano=T0 + step * SEC,
        count=sum(counts) + zero_count + sum(negative or []), sum=1.25 * step, scale=scale,
        zero_count=zero_count,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=counts))
    if negative:
        p.negative.offset = offset - 1
        p.negative.bucket_counts.extend(negative)
    return metrics_pb2.Metric(name="rpc.duration", unit="s", exponential_histogram=metrics_pb2.ExponentialHistogram(
        aggregation_temporality=DELTA, data_points=[p]))


def _passthrough(step) -> list:
    return [
        _sum("requests.cumulative", [_number(step, 100 * step, start_step=0)], temporality=CUMULATIVE),
        metrics_pb2.Metric(name="queue.depth", gauge=metrics_pb2.Gauge(data_points=[_number(step, 7)])),
        metrics_pb2.Metric(name="rpc.summary", summary=metrics_pb2.Summary(data_points=[
            metrics_pb2.SummaryDataPoint(time_unix_nano=T0 + step * SEC, count=3, sum=1.5)])),
    ]


def requests() -> list:
    """The requests in the order sent."""
    out = []
    for step in range(1, 5):
        cart = [
            _sum("hits", [_number(step, step, route="/a"), _number(step, 10, route="/b")]),
            _sum("bytes", [_number(step, 0.5 * step)], monotonic=False),
            _histogram(step, [0.1, 1.0] if step < 3 else [0.5], [1, step, 2] if step < 3 else [step, 1],
                       sum_=2.5 * step if step != 2 else None),
            # Scale 3 then 1 (downscaled), then buckets too far apart for 160.
            _expo(step, 3 if step == 1 else 1, -3 if step < 3 else 200 * step, [1, 2, 3, step],
                  zero_count=step, negative=[step] if step % 2 else None),
            *_passthrough(step),
        ]
        checkout = [_sum("hits", [_number(step, 100 * step, route="/a")])]
        out.append(_request(step, {"cart": cart, "checkout": checkout}))
    # Out of order (an old time) and a start before the stream's: both dropped, so is the
    # request's every point: nothing to forward.
    out.append(_request(5, {"cart": [_sum("hits", [_number(2, 1, route="/a")]),
                                     _sum("bytes", [_number(9, 1.0, start_step=-5)], monotonic=False)]}))
    # A scope without metrics and a new stream.
    req = _request(6, {"checkout": [_sum("hits", [_number(6, 5, route="/c")])]})
    req.resource_metrics[0].scope_metrics.append(metrics_pb2.ScopeMetrics(
        scope=common_pb2.InstrumentationScope(name="empty")))
    out.append(req)
    return out


def test_deltatocumulative(pair_factory, allow):
    processors = {"deltatocumulative": {}}
    cfg = yaml.safe_load(three_signals_with(processors, {"metrics": ["deltatocumulative"]}))
    cfg["service"]["telemetry"] = {"metrics": {"readers": [
        {"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8888}}}}]}}
    pair = pair_factory(yaml.safe_dump(cfg, sort_keys=False), flush_interval=None)
    diffs = []
    for i, req in enumerate(requests()):
        seen = send(pair, "metrics", "grpc", req)
        if seen["otelcol"] != seen["redline"]:
            diffs.append(f"answer differs for request {i}: {seen}")
        assert seen["redline"].startswith("OK"), seen
    # 4 steps of 9 points (6 converted, 3 passed) and the new stream; request 5 drops both.
    want = {"traces": 0, "metrics": 4 * 9 + 1, "logs": 0}
    sent = {"traces": [], "metrics": requests(), "logs": []}
    flat, got = check_forwarded(pair, allow, diffs, want, sent)
    assert got[("redline", "metrics")] == want["metrics"], got

    # Its own metrics: points converted and dropped (by reason), streams tracked, limits.
    own = {}
    for side in ("otelcol", "redline"):
        _, exposition = scrape(pair, side)
        own[side] = {key: sample.value for name, f in exposition.families.items()
                     if name.startswith("otelcol_deltatocumulative_") for key, sample in f.samples.items()}
    assert own["redline"] == own["otelcol"]
    assert own["redline"][("otelcol_deltatocumulative_datapoints", ())] == 4 * 6 + 1
    assert own["redline"][("otelcol_deltatocumulative_streams_tracked", ())] == 7

    # The running totals, from what Redline forwarded, against a tally kept here.
    forwarded = pair.sinks["redline"].requests_of("metrics")
    series = {}
    for req in forwarded:
        for rm in req.resource_metrics:
            svc = next(a.value.string_value for a in rm.resource.attributes if a.key == "service.name")
            for sm in rm.scope_metrics:
                assert sm.scope.name == "parity.delta", "the empty scope is dropped"
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    for p in otlp_signals.data_points(m):
                        attrs = tuple((a.key, a.value.string_value) for a in p.attributes)
                        series.setdefault((svc, m.name, attrs), []).append(p)
                    if m.name in ("hits", "bytes", "http.server.duration", "rpc.duration"):
                        assert getattr(m, kind).aggregation_temporality == CUMULATIVE, m.name
    # The exporter sends requests concurrently, so they reach the sink in any order.
    for points in series.values():
        points.sort(key=lambda p: p.time_unix_nano)
    hits_a = series[("cart", "hits", (("route", "/a"),))]
    assert [p.as_int for p in hits_a] == [1, 3, 6, 10]
    assert {p.start_time_unix_nano for p in hits_a} == {T0}
    assert [p.as_int for p in series[("cart", "hits", (("route", "/b"),))]] == [10, 20, 30, 40]
    assert [p.as_int for p in series[("checkout", "hits", (("route", "/a"),))]] == [100, 300, 600, 1000]
    assert [p.as_int for p in series[("checkout", "hits", (("route", "/c"),))]] == [5]
    assert [p.as_double for p in series[("cart", "bytes", ())]] == [0.5, 1.5, 3.0, 5.0]
    hist = series[("cart", "http.server.duration", ())]
    assert [list(p.bucket_counts) for p in hist] == [[1, 1, 2], [2, 3, 4], [3, 1], [7, 2]]
    assert [p.HasField("sum") for p in hist] == [True, False, True, True]
    assert [p.sum for p in hist[2:]] == [7.5, 17.5]
    expo = series[("cart", "rpc.duration", ())]
    sent_expo = [m.exponential_histogram.data_points[0] for r in requests()[:4]
                 for m in r.resource_metrics[0].scope_metrics[0].metrics if m.name == "rpc.duration"]
    assert [p.count for p in expo] == [sum(p.count for p in sent_expo[:i + 1]) for i in range(4)]
    assert [p.zero_count for p in expo] == [1, 3, 6, 10]
    # Every bucket count forwarded adds up to the count less the zero bucket.
    for p in expo:
        assert sum(p.positive.bucket_counts) + sum(p.negative.bucket_counts) + p.zero_count == p.count
    assert expo[1].scale == 1 and expo[3].scale < 1
    assert math.isclose(expo[3].sum, 1.25 * 10)


SETTINGS = [
    ("defaults", {}, True),
    ("both set", {"max_stale": "30s", "max_streams": 1000}, True),
    ("no streams at all", {"max_streams": 0}, True),
    ("max_stale zero", {"max_stale": "0s"}, False),
    ("max_streams negative", {"max_streams": -1}, False),
]


@pytest.mark.parametrize("section,valid", [c[1:] for c in SETTINGS], ids=[c[0] for c in SETTINGS])
def test_settings_accepted_and_refused_alike(otelcol_bin, redline_bin, tmp_path, section, valid):
    path = tmp_path / "d2c.yaml"
    path.write_text(yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "processors": {"delta_to_cumulative": section},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"metrics": {"receivers": ["otlp"], "processors": ["delta_to_cumulative"],
                                              "exporters": ["debug"]}}},
    }))
    peer = helpers.run([otelcol_bin, "validate", "--config", path], timeout=60)
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert (peer.returncode == 0, ours.returncode == 0) == (valid, valid), (peer.stderr, ours.stderr)
    if not valid:
        key = next(iter(section))
        assert f"processors.delta_to_cumulative.{key}" in ours.stderr, ours.stderr
