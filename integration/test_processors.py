"""The processors users put in front of spanmetrics, each through a running Redline with the
OpenTelemetry SDK as client: what the Tempo sink receives and what /metrics serves are checked
against the spans the SDK exported, with the processors' effect computed here independently.

- `filter` + `transform`: health checks are gone from both the series and the forwarded
  spans; ids and query strings are cut out of span names, so a URL is one series, not one per
  id.
- `resource` + `attributes`: resource attributes set and removed, span attributes inserted
  for one service only (include), a hashed attribute; the inserted attribute becomes a
  spanmetrics dimension.
- `probabilistic_sampler` (proportional, 25%): the spans kept are exactly those whose trace
  randomness is at or above the threshold, and carry `ot=th:c` in their tracestate.
- `resourcedetection` (env): OTEL_RESOURCE_ATTRIBUTES lands on every resource.
"""

from __future__ import annotations

import collections

import helpers
import traceset
from otlp_sink import OtlpSink
from redline_run import Redline
from traceset import ERR, OK, UNSET, C, I, S

PIPELINE = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
{processors}
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    dimensions:
{dimensions}
exporters:
  otlp/tempo:
    endpoint: {sink}
    tls:
      insecure: true
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{pipeline}]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""


def _start(procs, redline_bin, tmp_path, sink, processors: str, pipeline: str,
           dimensions: str = "      - name: http.request.method", env=None) -> Redline:
    return Redline(procs, redline_bin, tmp_path, PIPELINE, sink=sink.endpoint, processors=processors,
                   pipeline=pipeline, dimensions=dimensions, env=env).start()


def _attrs(kvs) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


def _calls(redline: Redline) -> dict:
    """{(service, span name): calls} from /metrics."""
    out = collections.Counter()
    for _, labels, value in redline.samples("traces_spanmetrics_calls_total"):
        out[(labels["service_name"], labels["span_name"])] += int(value)
    return dict(out)


def _wait(sink: OtlpSink, redline: Redline, spans: int, calls: int):
    def settled():
        return sink.span_count() >= spans and sum(_calls(redline).values()) >= calls
    helpers.wait_until(settled, 20, f"{spans} forwarded spans and {calls} calls", alive=redline.proc)
    assert sink.span_count() == spans
    assert sum(_calls(redline).values()) == calls


URL_PLAN = [
    ({"service.name": "shop"}, [
        *[(f"GET /users/{1000 + i}?page={i % 3}", S, 5 + i, UNSET,
           {"http.request.method": "GET", "http.route": "/users/{id}"}, []) for i in range(12)],
        *[("GET /health", S, 1, UNSET, {"http.request.method": "GET", "http.route": "/health"}, [])
          for _ in range(5)],
        *[(f"POST /orders/{i}", S, 20, ERR if i == 0 else OK, {"http.request.method": "POST"},
           [("SELECT orders", C, 3, UNSET, {"db.system": "postgresql"})]) for i in range(4)],
    ]),
]


def test_filter_and_transform_in_front_of_spanmetrics(procs, redline_bin, tmp_path):
    processors = """\
  filter/health:
    error_mode: ignore
    traces:
      span:
        - attributes["http.route"] == "/health"
  transform/names:
    error_mode: ignore
    trace_statements:
      - context: span
        statements:
          - replace_pattern(name, "\\\\?.*", "")
          - replace_pattern(name, "/[0-9]+", "/{id}")
"""
    with OtlpSink() as sink:
        redline = _start(procs, redline_bin, tmp_path, sink, processors, "filter/health, transform/names")
        exported = traceset.send(f"127.0.0.1:{redline.grpc}", plan=URL_PLAN)
        assert len(exported) == 12 + 5 + 8
        # Independent tally: drop the health checks, rename the rest.
        want = collections.Counter()
        for sp in exported:
            if sp.attributes.get("http.route") == "/health":
                continue
            name = sp.name.split("?")[0]
            name = "/".join("{id}" if part.isdigit() else part for part in name.split("/"))
            want[("shop", name)] += 1
        assert want == {("shop", "GET /users/{id}"): 12, ("shop", "POST /orders/{id}"): 4,
                        ("shop", "SELECT orders"): 4}
        _wait(sink, redline, spans=20, calls=20)
        assert _calls(redline) == dict(want)
        forwarded = collections.Counter(sp.name for _, _, sp in sink.spans())
        assert forwarded == collections.Counter({n: c for (_, n), c in want.items()})
        # Span ids survive the re-encode: every forwarded span is one the SDK exported.
        ids = {sp.context.span_id.to_bytes(8, "big") for sp in exported}
        assert all(sp.span_id in ids for _, _, sp in sink.spans())
        redline.stop()


ATTR_PLAN = [
    ({"service.name": "checkout", "telemetry.sdk.language": "python", "host.name": "node-1"}, [
        ("POST /pay", S, 12, OK, {"http.request.method": "POST", "user.email": "a@example.com"}, []),
        ("POST /pay", S, 14, OK, {"http.request.method": "POST", "user.email": "b@example.com"}, []),
    ]),
    ({"service.name": "cart", "telemetry.sdk.language": "python"}, [
        ("GET /cart", S, 3, UNSET, {"http.request.method": "GET", "user.email": "c@example.com"}, []),
    ]),
]


def test_resource_and_attributes(procs, redline_bin, tmp_path):
    processors = """\
  resource:
    attributes:
      - key: deployment.environment
        value: prod
        action: upsert
      - key: telemetry.sdk.language
        action: delete
  attributes/team:
    include:
      match_type: strict
      services: [checkout]
    actions:
      - key: team
        value: payments
        action: insert
      - key: user.email
        action: hash
"""
    with OtlpSink() as sink:
        redline = _start(procs, redline_bin, tmp_path, sink, processors, "resource, attributes/team",
                         dimensions="      - name: team\n        default: none")
        traceset.send(f"127.0.0.1:{redline.grpc}", plan=ATTR_PLAN)
        _wait(sink, redline, spans=3, calls=3)
        for rs, _, sp in sink.spans():
            res = _attrs(rs.resource.attributes)
            attrs = _attrs(sp.attributes)
            assert res["deployment.environment"] == "prod"
            assert "telemetry.sdk.language" not in res
            if res["service.name"] == "checkout":
                assert attrs["team"] == "payments"
                assert attrs["user.email"] != "a@example.com" and len(attrs["user.email"]) in (40, 64)
            else:
                assert "team" not in attrs and attrs["user.email"] == "c@example.com"
        teams = collections.Counter()
        for _, labels, value in redline.samples("traces_spanmetrics_calls_total"):
            teams[(labels["service_name"], labels["team"])] += int(value)
        assert teams == {("checkout", "payments"): 2, ("cart", "none"): 1}
        redline.stop()


def test_probabilistic_sampler_proportional(procs, redline_bin, tmp_path):
    processors = """\
  probabilistic_sampler:
    mode: proportional
    sampling_percentage: 25
"""
    plan = [({"service.name": "sampled"}, [("op", S, 2, UNSET, {"http.request.method": "GET"}, [])
                                           for _ in range(400)])]
    with OtlpSink() as sink:
        redline = _start(procs, redline_bin, tmp_path, sink, processors, "probabilistic_sampler")
        exported = traceset.send(f"127.0.0.1:{redline.grpc}", plan=plan)
        # Kept when the trace's 56 random bits are at or above the threshold (1 - 0.25) * 2^56.
        threshold = 3 << 54
        kept = {sp.context.span_id for sp in exported
                if sp.context.trace_id & ((1 << 56) - 1) >= threshold}
        assert 40 < len(kept) < 160  # the SDK's ids are random; the count itself is exact below
        # spanmetrics, after the sampler, counts each kept span as its adjusted count (ot=th:c
        # keeps 1/4: 4 each), so calls estimate the spans sent before sampling.
        _wait(sink, redline, spans=len(kept), calls=4 * len(kept))
        assert {int.from_bytes(sp.span_id, "big") for _, _, sp in sink.spans()} == kept
        assert {sp.trace_state for _, _, sp in sink.spans()} == {"ot=th:c"}
        redline.stop()


def test_resourcedetection_env(procs, redline_bin, tmp_path):
    processors = """\
  resourcedetection:
    detectors: [env]
    override: false
"""
    with OtlpSink() as sink:
        redline = _start(procs, redline_bin, tmp_path, sink, processors, "resourcedetection",
                         dimensions="      - name: k8s.cluster.name",
                         env={"OTEL_RESOURCE_ATTRIBUTES": "k8s.cluster.name=eu-west,service.name=ignored"})
        traceset.send(f"127.0.0.1:{redline.grpc}", plan=ATTR_PLAN)
        _wait(sink, redline, spans=3, calls=3)
        for rs, _, _ in sink.spans():
            res = _attrs(rs.resource.attributes)
            assert res["k8s.cluster.name"] == "eu-west"
            assert res["service.name"] in ("checkout", "cart")  # override: false keeps the SDK's
        clusters = {labels["k8s_cluster_name"] for _, labels, _ in redline.samples("traces_spanmetrics_calls_total")}
        assert clusters == {"eu-west"}
        redline.stop()


SPAN_METRICS_THROUGH_TRANSFORM = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  transform/team:
    metric_statements:
      - context: datapoint
        statements:
          - set(attributes["team"], "core") where attributes["service.name"] == "shop"
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    metrics_flush_interval: 1s
exporters:
  otlp/tempo:
    endpoint: {sink}
    tls:
      insecure: true
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      processors: [transform/team]
      exporters: [prometheus]
"""


def test_a_metrics_processor_sees_span_metrics(procs, redline_bin, tmp_path):
    """A `transform` in the metrics pipeline after spanmetrics edits the span metrics that
    Prometheus scrapes (the connector pushes them through it every flush interval), as in
    otelcol; the Prometheus exporter does not read the connector's store past it."""
    with OtlpSink() as sink:
        redline = Redline(procs, redline_bin, tmp_path, SPAN_METRICS_THROUGH_TRANSFORM,
                          sink=sink.endpoint).start()
        exported = traceset.send(f"127.0.0.1:{redline.grpc}", plan=URL_PLAN)

        def counted() -> int:
            return sum(int(v) for _, _, v in redline.samples("traces_spanmetrics_calls_total"))
        helpers.wait_until(lambda: counted() == len(exported), 20, "every span counted",
                           alive=redline.proc)
        teams = {labels.get("team") for _, labels, _ in redline.samples("traces_spanmetrics_calls_total")}
        assert teams == {"core"}, teams
        redline.stop()


TWO_PIPELINES = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
processors:
  filter/keep-all:
    error_mode: ignore
    traces:
      span:
        - name == "no span has this name"
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
exporters:
  otlp/tempo:
    endpoint: {sink}
    tls:
      insecure: true
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  pipelines:
    traces/direct:
      receivers: [otlp]
      exporters: [spanmetrics, otlp/tempo]
    traces/filtered:
      receivers: [otlp]
      processors: [filter/keep-all]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""


def test_one_connector_fed_by_two_pipelines_counts_each_delivery(procs, redline_bin, tmp_path):
    """spanmetrics counts the receiver's spans as it validates them (one walk per request).
    Fed the same request a second time, through a filter that keeps every span and so passes
    the very same bytes on, it must count them again, as otelcol-contrib does for a connector
    that two pipelines feed: every series is exactly twice the spans sent."""
    with OtlpSink() as sink:
        redline = Redline(procs, redline_bin, tmp_path, TWO_PIPELINES, sink=sink.endpoint).start()
        exported = traceset.send(f"127.0.0.1:{redline.grpc}", plan=URL_PLAN)
        want = collections.Counter(("shop", sp.name) for sp in exported)
        spans = sum(want.values())
        _wait(sink, redline, spans=spans, calls=2 * spans)
        assert _calls(redline) == {k: 2 * v for k, v in want.items()}
        redline.stop()
