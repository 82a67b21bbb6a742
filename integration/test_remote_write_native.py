"""OTLP metrics -> prometheusremotewrite into a real Prometheus (2.42, remote-write receiver and
native histograms on): an exponential histogram arrives as a native histogram, as otelcol's
translator sends it, and its resource becomes `job`/`instance` and `target_info`.
"""

from __future__ import annotations

import time

import requests
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

import helpers
import promquery
from redline_run import Redline

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{prometheus}/api/v1/write
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 200ms
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite]
"""


def _kv(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def _request(now_ns: int) -> bytes:
    """One cumulative exponential histogram point: scale 0, zero bucket 1, buckets (1,2]: 1
    and (2,4]: 2, count 4, sum 10."""
    point = metrics_pb2.ExponentialHistogramDataPoint(
        attributes=[_kv("route", "/upload")],
        start_time_unix_nano=now_ns - 10_000_000_000,
        time_unix_nano=now_ns,
        count=4,
        sum=10.0,
        scale=0,
        zero_count=1,
        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[1, 2]),
    )
    metric = metrics_pb2.Metric(
        name="payload.size",
        unit="By",
        exponential_histogram=metrics_pb2.ExponentialHistogram(
            data_points=[point],
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
        ),
    )
    rm = metrics_pb2.ResourceMetrics(
        resource=resource_pb2.Resource(attributes=[
            _kv("service.name", "uploader"),
            _kv("service.instance.id", "u-1"),
            _kv("host.name", "h1"),
        ]),
        scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metric])],
    )
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[rm]).SerializeToString()


def test_exponential_histogram_arrives_as_a_native_histogram(redline_bin, procs, tmp_path):
    prom = promquery.start_prometheus(procs, tmp_path, remote_write=True, native_histograms=True)
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, prometheus=prom.port)
    rl.start()
    # A point a few seconds old, so Prometheus' instant queries (at "now") see it.
    body = _request(time.time_ns() - 2_000_000_000)
    r = requests.post(f"http://127.0.0.1:{rl.http}/v1/metrics", data=body,
                      headers={"Content-Type": "application/x-protobuf"}, timeout=5)
    assert r.status_code == 200, (r.status_code, r.text)

    sel = 'payload_size_bytes{job="uploader",instance="u-1",route="/upload"}'
    count = helpers.wait_until(lambda: prom.scalar(f"histogram_count({sel})"), 20,
                               "the native histogram in Prometheus", alive=rl.proc)
    assert count == 4.0
    assert prom.scalar(f"histogram_sum({sel})") == 10.0
    # Not classic series: a native histogram has no _bucket/_count companions.
    assert prom.query('{__name__=~"payload_size_bytes_.*"}') == []
    # Half of the 4 observations are at or below 2: the zero bucket and (1,2].
    assert prom.scalar(f"histogram_fraction(-1, 2, {sel})") == 0.5
    info = prom.query('target_info{job="uploader",instance="u-1",host_name="h1"}')
    assert len(info) == 1, info
    rl.stop()
    assert "level=error" not in prom.proc.log_text(), prom.proc.log_text()
