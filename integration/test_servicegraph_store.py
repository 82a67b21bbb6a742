"""The servicegraph connector's pairing store stays within `store.max_items` under a flood of
half-open edges, and every span it cannot hold is counted, against the running binary.

Client spans whose servers never report wait in the store. With `max_items: 200` and a TTL
far longer than the test, 5,000 such spans leave exactly 200 edges held and 4,800 spans
dropped (otelcol's `otelcol_connector_servicegraph_dropped_spans`); the process' RSS after a
second flood of 50,000 is no higher than after the first beyond allocator noise.
"""

from __future__ import annotations

import requests

import helpers
from redline_run import Redline, TEXT_ACCEPT
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
connectors:
  servicegraph:
    store:
      ttl: 10m
      max_items: 200
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [servicegraph]
    metrics:
      receivers: [servicegraph]
      exporters: [prometheus]
"""

CLIENT, SERVER = trace_pb2.Span.SPAN_KIND_CLIENT, trace_pb2.Span.SPAN_KIND_SERVER
_seq = [0]


def _span(kind, trace_id: bytes, span_id: bytes, parent: bytes = b"") -> trace_pb2.Span:
    start = 1_700_000_000_000_000_000
    return trace_pb2.Span(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name="GET /",
                          kind=kind, start_time_unix_nano=start, end_time_unix_nano=start + 5_000_000)


def _resource(service: str, spans: list) -> trace_pb2.ResourceSpans:
    return trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[
            common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value=service))]),
        scope_spans=[trace_pb2.ScopeSpans(spans=spans)])


def _ids() -> tuple:
    _seq[0] += 1
    n = _seq[0]
    return n.to_bytes(16, "big"), (n | 1 << 62).to_bytes(8, "big"), (n | 1 << 61).to_bytes(8, "big")


def half_open(n: int) -> bytes:
    """`n` client spans of `frontend` whose server never reports."""
    spans = []
    for _ in range(n):
        trace_id, client_id, _ = _ids()
        spans.append(_span(CLIENT, trace_id, client_id))
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[_resource("frontend", spans)]).SerializeToString()


def paired(n: int) -> bytes:
    """`n` complete frontend -> checkout requests, both spans in one request."""
    clients, servers = [], []
    for _ in range(n):
        trace_id, client_id, server_id = _ids()
        clients.append(_span(CLIENT, trace_id, client_id))
        servers.append(_span(SERVER, trace_id, server_id, parent=client_id))
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[_resource("frontend", clients), _resource("checkout", servers)]).SerializeToString()


def post(rl: Redline, body: bytes):
    r = requests.post(rl.http_url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)


def requests_between(rl: Redline, client: str, server: str) -> float:
    r = requests.get(rl.metrics_url, headers=TEXT_ACCEPT, timeout=10)
    return sum(v for n, lb, v in helpers.parse_text_metrics(r.text)
               if n == "traces_service_graph_request_total" and lb.get("client") == client
               and lb.get("server") == server)


def test_a_full_store_holds_max_items_and_counts_every_dropped_span(redline_bin, procs, tmp_path):
    rl = Redline(procs, redline_bin, tmp_path, CONFIG).start()
    for _ in range(10):
        post(rl, half_open(500))
    tel = rl.self_telemetry()
    assert tel.value("otelcol_connector_servicegraph_dropped_spans", connector="servicegraph") == 4_800
    # otelcol's `total_edges`: the Prometheus translator moves `total` to the end.
    assert tel.value("otelcol_connector_servicegraph_total_edges", connector="servicegraph") == 200
    assert tel.value("redline_servicegraph_store_edges", connector="servicegraph") == 200
    rss_first = rl.rss_kib()

    # Ten times more: nothing more is held, every span is counted as dropped.
    for _ in range(100):
        post(rl, half_open(500))
    tel = rl.self_telemetry()
    assert tel.value("otelcol_connector_servicegraph_dropped_spans", connector="servicegraph") == 54_800
    assert tel.value("redline_servicegraph_store_edges", connector="servicegraph") == 200
    # 50,000 more half edges held would take several MB; allocator noise stays well below 4 MiB.
    assert rl.rss_kib() - rss_first < 4096, (rss_first, rl.rss_kib())

    # While the store is full, a request's client span finds no place to wait for its server
    # span, and the server span none to wait for its client: both are dropped and counted,
    # as otelcol does, and no edge is recorded.
    post(rl, paired(100))
    tel = rl.self_telemetry()
    assert tel.value("otelcol_connector_servicegraph_dropped_spans", connector="servicegraph") == 55_000
    assert requests_between(rl, "frontend", "checkout") == 0
    rl.stop()
