"""Span metrics exported as OTLP metrics through `otlp` and `otlphttp`, as otelcol allows.

The traces pipeline feeds the spanmetrics connector; its metrics pipeline has Prometheus (which
reads the connector's store in place) and two OTLP exporters, gRPC and HTTP, each to an
independent sink. The connector pushes its cumulative state every `metrics_flush_interval`
(1 s here) and once more on shutdown. The SDK sends the fixed trace set (traceset.py); the last
request each sink received must hold exactly the series the independent model (redmodel.py)
computes from the spans the SDK exported: calls, errors and every histogram bucket, count and
sum, under one resource per service.name, scope `spanmetricsconnector`.
"""

from __future__ import annotations

import math

import helpers
import redmodel
import traceset
from otlp_http_sink import OtlpHttpSink
from otlp_sink import OtlpSink
from redline_run import Redline

CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
connectors:
  spanmetrics:
    metrics_flush_interval: 1s
    dimensions:
      - name: cdn.cache.hit
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
  otlp/mimir:
    endpoint: {grpc_sink}
    tls:
      insecure: true
  otlphttp/mimir:
    endpoint: {http_sink}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus, otlp/mimir, otlphttp/mimir]
"""

PREFIX = "traces.span.metrics."
LABEL = {"service.name": "service_name", "span.name": "span_name", "span.kind": "span_kind",
         "status.code": "status_code", "cdn.cache.hit": "cdn_cache_hit"}


def _value(any_value) -> str:
    return getattr(any_value, any_value.WhichOneof("value"))


def _flatten(request) -> dict:
    """{(metric, labels key): point} of one request; checks resource and scope on the way."""
    out = {}
    for rm in request.resource_metrics:
        resource = {kv.key: _value(kv.value) for kv in rm.resource.attributes}
        assert list(resource) == ["service.name"], resource
        for sm in rm.scope_metrics:
            assert sm.scope.name == "spanmetricsconnector"
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                for p in getattr(m, kind).data_points:
                    labels = {LABEL[kv.key]: _value(kv.value) for kv in p.attributes}
                    assert labels["service_name"] == resource["service.name"]
                    out[(m.name, redmodel.key(labels))] = p
    return out


def _calls_total(request) -> int:
    return sum(p.as_int for (name, _), p in _flatten(request).items() if name == PREFIX + "calls")


def _check(request, exp: redmodel.Expected) -> None:
    points = _flatten(request)
    calls = {k: p.as_int for (name, k), p in points.items() if name == PREFIX + "calls"}
    assert calls == dict(exp.calls)
    errors = {k: p.as_int for (name, k), p in points.items() if name == PREFIX + "errors"}
    assert errors == dict(exp.errors)
    hists = {k: p for (name, k), p in points.items() if name == PREFIX + "duration"}
    assert set(hists) == set(exp.hist_count)
    for k, p in hists.items():
        assert list(p.explicit_bounds) == [float(b) for b in exp.buckets]
        assert p.count == exp.hist_count[k]
        assert math.isclose(p.sum, exp.hist_sum[k], rel_tol=1e-9, abs_tol=1e-9), (k, p.sum)
        cumulative = 0
        for le, n in zip([*exp.buckets, math.inf], p.bucket_counts):
            cumulative += n
            assert cumulative == exp.hist_bucket[(k, float(le))], (k, le)


def test_span_metrics_reach_otlp_and_otlphttp_exactly(procs, redline_bin, tmp_path):
    with OtlpSink() as grpc_sink, OtlpHttpSink() as http_sink:
        redline = Redline(procs, redline_bin, tmp_path, CONFIG, grpc_sink=grpc_sink.endpoint,
                          http_sink=http_sink.url()).start()
        spans = traceset.send(f"127.0.0.1:{redline.grpc}")
        exp = redmodel.Expected(spans)
        want = sum(exp.calls.values())
        assert want == len(exp.counted) > 0

        def settled() -> bool:
            last = [s.requests_of("metrics")[-1:] for s in (grpc_sink, http_sink)]
            return all(r and _calls_total(r[0]) == want for r in last)

        helpers.wait_until(settled, 20, "both sinks to receive every span's metrics", alive=redline.proc)
        for sink in (grpc_sink, http_sink):
            _check(sink.requests_of("metrics")[-1], exp)

        # The last push on shutdown carries the same cumulative totals.
        before = [len(s.requests_of("metrics")) for s in (grpc_sink, http_sink)]
        redline.stop()
        for sink, n in zip((grpc_sink, http_sink), before):
            requests = sink.requests_of("metrics")
            assert len(requests) > n
            _check(requests[-1], exp)
