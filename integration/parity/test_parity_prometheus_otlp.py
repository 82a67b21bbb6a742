"""OTLP metrics into the `prometheus` exporter, side by side with otelcol-contrib.

The same request (monotonic sums with exemplars, gauges (two with colliding label names), a summary, an exponential histogram
above scale 8, an empty one and an invalid one, an explicit histogram with exemplars past its
last bound) goes to both over OTLP/HTTP; both are scraped in the text format, OpenMetrics and
protobuf, with `send_timestamps` off and on. The bodies must be equal once ordered alike:

  - client_golang sorts families, series and label pairs; Redline writes them in the order
    its sources give (the series are the same);
  - in OpenMetrics, Redline adds `# UNIT` lines and writes exemplar timestamps exactly
    (`1700000000.123456789`, Go: `1.7000000001234567e+09`), see the exporter's docs;
  - the order of an exemplar's labels (a Go map's order in otelcol, random).
"""

from __future__ import annotations

import re
import struct
import time

import pytest
import requests
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms
from opentelemetry.proto.common.v1 import common_pb2 as c
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1 import resource_pb2 as r

import helpers

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
    enable_open_metrics: true
    send_timestamps: {stamps}
{extra}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""

ACCEPT = {
    "text": "text/plain;version=0.0.4",
    "om": "application/openmetrics-text;version=1.0.0",
    "proto": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
}
START, T = 1_600_000_000_000_000_000, 1_700_000_000_123_456_789


def kv(k: str, v: str) -> c.KeyValue:
    return c.KeyValue(key=k, value=c.AnyValue(string_value=v))


def ex(v: float) -> m.Exemplar:
    return m.Exemplar(as_double=v, time_unix_nano=T, trace_id=b"\xab" * 16, span_id=b"\xcd" * 8)


def request(extra_resource: tuple = ()) -> bytes:
    buckets = m.ExponentialHistogramDataPoint.Buckets
    quantile = m.SummaryDataPoint.ValueAtQuantile
    metrics = [
        m.Metric(name="http.requests", description="Requests.", unit="1", sum=m.Sum(
            is_monotonic=True, aggregation_temporality=2, data_points=[
                m.NumberDataPoint(attributes=[kv("method", "GET")], start_time_unix_nano=START, time_unix_nano=T,
                                  as_double=12.5, exemplars=[ex(7.0), ex(2.5)]),
                m.NumberDataPoint(attributes=[kv("method", "POST")], start_time_unix_nano=START, time_unix_nano=T,
                                  as_int=3_000_000)])),
        m.Metric(name="temp", description="Temp.", unit="Cel", gauge=m.Gauge(data_points=[
            m.NumberDataPoint(time_unix_nano=T, as_double=-1.0),
            # Label names that meet after translation, or meet `job`: refused by both.
            m.NumberDataPoint(attributes=[kv("a.b", "1"), kv("a_b", "2")], time_unix_nano=T, as_double=2.0),
            m.NumberDataPoint(attributes=[kv("job", "mine")], time_unix_nano=T, as_double=3.0)])),
        m.Metric(name="rpc.latency", description="Latency.", unit="s", summary=m.Summary(data_points=[
            m.SummaryDataPoint(attributes=[kv("svc", "a")], start_time_unix_nano=START, time_unix_nano=T,
                               count=2_000_000, sum=1.25, quantile_values=[
                                   quantile(quantile=0.99, value=4), quantile(quantile=0.5, value=1),
                                   quantile(quantile=1, value=9)])])),
        m.Metric(name="payload", description="Sizes.", unit="By", exponential_histogram=m.ExponentialHistogram(
            aggregation_temporality=2, data_points=[
                m.ExponentialHistogramDataPoint(
                    attributes=[kv("svc", "a")], start_time_unix_nano=START, time_unix_nano=T, scale=10, count=12,
                    sum=7.5, zero_count=1, positive=buckets(offset=-5, bucket_counts=[1, 1, 1, 1, 5]),
                    negative=buckets(offset=2, bucket_counts=[2]), exemplars=[ex(3.0)]),
                m.ExponentialHistogramDataPoint(attributes=[kv("svc", "empty")], time_unix_nano=T, scale=2, count=0),
                # Buckets that do not add up to the count: refused by both.
                m.ExponentialHistogramDataPoint(attributes=[kv("svc", "bad")], time_unix_nano=T, scale=0, count=5,
                                                positive=buckets(bucket_counts=[1]))])),
        m.Metric(name="op.duration", description="Ops.", unit="ms", histogram=m.Histogram(
            aggregation_temporality=2, data_points=[
                m.HistogramDataPoint(start_time_unix_nano=START, time_unix_nano=T, count=10, sum=20.0,
                                     explicit_bounds=[1.0, 5.0], bucket_counts=[2, 1, 7],
                                     exemplars=[ex(0.5), ex(3.0), ex(100.0)])])),
    ]
    return ms.ExportMetricsServiceRequest(resource_metrics=[m.ResourceMetrics(
        resource=r.Resource(attributes=[kv("service.name", "checkout"), kv("service.instance.id", "i-1"),
                                        kv("host.name", "h1"), *extra_resource]),
        scope_metrics=[m.ScopeMetrics(scope=c.InstrumentationScope(name="lib", version="1.0"),
                                      metrics=metrics)])]).SerializeToString()


def scrapes(procs, tmp_path, binary, name: str, stamps: bool, extra: str = "", body: bytes = b"") -> dict:
    http, prom = helpers.free_port(), helpers.free_port()
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(CONFIG.format(http=http, prom=prom, stamps=str(stamps).lower(), extra=extra))
    proc = procs.start(name, [binary, "--config", cfg])
    url = f"http://127.0.0.1:{prom}/metrics"
    helpers.wait_until(lambda: requests.get(url, timeout=1).status_code == 200, 30, f"{name} /metrics",
                       alive=proc)
    sent = requests.post(f"http://127.0.0.1:{http}/v1/metrics", data=body or request(),
                         headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert sent.status_code == 200, sent.text
    out = {}
    deadline = time.monotonic() + 10
    for fmt, accept in ACCEPT.items():
        while True:
            got = requests.get(url, headers={"Accept": accept}, timeout=10)
            if b"payload" in got.content or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        out[fmt] = (got.headers.get("Content-Type"), got.content)
    proc.stop()
    return out


def sorted_text(body: bytes, om: bool) -> list:
    lines = []
    for line in body.decode().splitlines():
        if om and line.startswith("# UNIT "):
            continue
        if om and " # {" in line:
            # Exemplar timestamps: Go's float vs Redline's exact decimal; compare as numbers.
            head, exemplar = line.split(" # ", 1)
            labels, rest = exemplar.split("} ", 1)
            # otelcol's exemplar labels come from a Go map: any order.
            labels = ",".join(sorted(labels.lstrip("{").split(",")))
            value, *stamp = rest.split(" ")
            line = f"{head} # {{{labels}}} {value} " + " ".join(f"{float(s):.6f}" for s in stamp)
        sample = re.match(r"^([^{ ]+)\{([^}]*)\}(.*)$", line)
        if sample:
            pairs = re.findall(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"', sample.group(2))
            last = [p for p in pairs if p.startswith(("le=", "quantile="))]
            line = sample.group(1) + "{" + ",".join(sorted(set(pairs) - set(last)) + last) + "}" + sample.group(3)
        lines.append(line)
    return sorted(lines)


# Delimited io.prometheus.client.MetricFamily, decoded without the schema's code: enough to
# print every field and sort what Go sorts.
SUB = {"MetricFamily": {4: "Metric"}, "Metric": {1: "LabelPair", 2: "Gauge", 3: "Counter", 4: "Summary", 7: "Histogram"},
       "Counter": {2: "Exemplar", 3: "Timestamp"}, "Summary": {3: "Quantile", 4: "Timestamp"},
       "Histogram": {3: "Bucket", 9: "Span", 12: "Span", 15: "Timestamp", 16: "Exemplar"},
       "Bucket": {3: "Exemplar"}, "Exemplar": {1: "LabelPair", 3: "Timestamp"}}
STRINGS = {("MetricFamily", 1), ("MetricFamily", 2), ("LabelPair", 1), ("LabelPair", 2)}


def varint(b: bytes, i: int) -> tuple:
    n = shift = 0
    while True:
        x = b[i]
        i += 1
        n |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return n, i


def dump(b: bytes, msg: str) -> list:
    out, i = [], 0
    while i < len(b):
        key, i = varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
            out.append(f"{field}:{v}")
        elif wire == 1:
            out.append(f"{field}:{struct.unpack('<d', b[i:i + 8])[0]!r}")
            i += 8
        elif wire == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
            if field in SUB.get(msg, {}):
                out.append(f"{field}{{" + ";".join(dump(v, SUB[msg][field])) + "}")
            elif (msg, field) in STRINGS:
                out.append(f"{field}:{v.decode()!r}")
            else:
                out.append(f"{field}:{v!r}")
        else:
            raise AssertionError(f"wire type {wire} in {msg}")
    if msg == "Exemplar":
        out.sort()
    return out


def sorted_proto(body: bytes) -> list:
    families, i = [], 0
    while i < len(body):
        n, i = varint(body, i)
        fields = dump(body[i:i + n], "MetricFamily")
        i += n
        metrics = sorted(f for f in fields if f.startswith("4{"))
        families.append([f for f in fields if not f.startswith("4{")] + metrics)
    return sorted(families)


@pytest.mark.parametrize("stamps", [False, True])
def test_otlp_metrics_scrape_like_otelcol(otelcol_bin, redline_bin, procs, tmp_path, stamps):
    o = scrapes(procs, tmp_path, otelcol_bin, "otelcol", stamps)
    rl = scrapes(procs, tmp_path, redline_bin, "redline", stamps)
    for fmt in ACCEPT:
        assert o[fmt][0] == rl[fmt][0], f"{fmt}: Content-Type"
    assert sorted_text(rl["text"][1], False) == sorted_text(o["text"][1], False)
    assert sorted_text(rl["om"][1], True) == sorted_text(o["om"][1], True)
    assert sorted_proto(rl["proto"][1]) == sorted_proto(o["proto"][1])


RESOURCE_LABELS = {
    "resource_constant_labels included": "    resource_constant_labels:\n      included: [\"k8s.*\", \"host.?ame\"]",
    "resource_constant_labels excluded": "    resource_constant_labels:\n      excluded: [\"service.*\", \"k8s.node.*\"]",
    "resource_constant_labels all": "    resource_constant_labels:\n      included: [\"*\"]",
    "resource_to_telemetry_conversion enabled":
        "    resource_to_telemetry_conversion:\n      enabled: true",
    "resource_to_telemetry_conversion without service attributes":
        "    resource_to_telemetry_conversion:\n      enabled: true\n      exclude_service_attributes: true",
    "resource_to_telemetry_conversion patterns":
        "    resource_to_telemetry_conversion:\n      included: [\"k8s.pod.*\"]",
}


@pytest.mark.parametrize("name", sorted(RESOURCE_LABELS))
def test_resource_attributes_become_labels_as_in_otelcol(otelcol_bin, redline_bin, procs, tmp_path, name):
    """Which resource attributes become labels of every series: the same series, labels and
    values in both (text format)."""
    body = request((kv("k8s.pod.name", "pod-7"), kv("k8s.node.name", "node-2"), kv("deployment.environment", "prod")))
    o = scrapes(procs, tmp_path, otelcol_bin, "otelcol", False, RESOURCE_LABELS[name], body)
    rl = scrapes(procs, tmp_path, redline_bin, "redline", False, RESOURCE_LABELS[name], body)
    ours, theirs = sorted_text(rl["text"][1], False), sorted_text(o["text"][1], False)
    assert ours == theirs
    # The selection did something: a series of the request carries what it should.
    requests_line = next(line for line in ours if line.startswith("http_requests_total{") and 'method="GET"' in line)
    expect = {
        "resource_constant_labels included": ['k8s_pod_name="pod-7"', 'host_name="h1"'],
        "resource_constant_labels excluded": ['k8s_pod_name="pod-7"', 'deployment_environment="prod"'],
        "resource_constant_labels all": ['service_name="checkout"', 'k8s_node_name="node-2"'],
        "resource_to_telemetry_conversion enabled": ['service_name="checkout"', 'host_name="h1"'],
        "resource_to_telemetry_conversion without service attributes": ['host_name="h1"'],
        "resource_to_telemetry_conversion patterns": ['k8s_pod_name="pod-7"'],
    }[name]
    for label in expect:
        assert label in requests_line, (label, requests_line)


def test_resource_label_settings_refused_as_otelcol_refuses_them(otelcol_bin, redline_bin, tmp_path):
    for n, extra in enumerate([
        "    resource_constant_labels:\n      enabled: true",
        "    resource_to_telemetry_conversion:\n      enabled: true\n      included: [\"a\"]",
        "    resource_to_telemetry_conversion:\n      enabled: true\n    resource_constant_labels:\n      included: [\"a\"]",
    ]):
        cfg = tmp_path / f"bad-{n}.yaml"
        cfg.write_text(CONFIG.format(http=helpers.free_port(), prom=helpers.free_port(), stamps="false", extra=extra))
        peer = helpers.run([str(otelcol_bin), "validate", "--config", str(cfg)], timeout=60)
        ours = helpers.run([str(redline_bin), "validate", "--config", str(cfg)], timeout=30)
        assert peer.returncode != 0 and ours.returncode != 0, (extra, peer.stderr, ours.stderr)
        assert "exporters.prometheus.resource_" in ours.stderr, ours.stderr
