"""What the compression parity tests share: otelcol-contrib as the judge of Redline's
compressed exports (its `otlp` receiver decodes them and relays the spans uncompressed to an
OTLP sink), the traffic they send, and how they compare what arrived."""

from __future__ import annotations

import grpc
import requests

import helpers
import traffic
from redline_run import SelfTelemetry

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# An `otlp` receiver (gRPC and HTTP) relaying what it decoded to `sink` uncompressed: the same
# file runs otelcol-contrib (the judge of Redline's exporters) and Redline (otelcol's).
RELAY = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlp:
    endpoint: {sink}
    compression: none
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"""


def start_otelcol_relay(procs, otelcol_bin, tmp_path, sink) -> tuple:
    """otelcol-contrib relaying to `sink`, ready: (process, gRPC port, HTTP port)."""
    grpc_port, http_port = helpers.free_port(), helpers.free_port()
    config = tmp_path / "otelcol-relay.yaml"
    config.write_text(RELAY.format(grpc=grpc_port, http=http_port, sink=sink.endpoint))
    otelcol = procs.start("otelcol", [otelcol_bin, "--config", config])
    for port in (grpc_port, http_port):
        helpers.wait_until(lambda: helpers.port_accepts(port), 30, "otelcol's receiver",
                           alive=otelcol)
    return otelcol, grpc_port, http_port


def start_redline(procs, redline_bin, tmp_path, yaml: str, ports) -> object:
    """Redline on `yaml`, its receiver accepting on every one of `ports`."""
    config = tmp_path / "redline.yaml"
    config.write_text(yaml)
    redline = procs.start("redline", [redline_bin, "--config", config])
    for port in ports:
        helpers.wait_until(lambda: helpers.port_accepts(port), 30, "Redline's receiver",
                           alive=redline)
    return redline


def span_bytes(reqs) -> list:
    """Every span of `reqs` (decoded export requests), serialized, sorted: equal lists mean
    the same spans arrived, byte for byte, however they were batched."""
    return sorted(sp.SerializeToString(deterministic=True)
                  for req in reqs for rs in req.resource_spans
                  for ss in rs.scope_spans for sp in ss.spans)


def span_count(reqs) -> int:
    return sum(len(ss.spans) for req in reqs for rs in req.resource_spans for ss in rs.scope_spans)


def request(tag: str, spans: int = 150):
    """One request of `spans` spans of service `svc-<tag>`, compressible as real traffic is."""
    return traffic.request(({"service.name": f"svc-{tag}"},
                            [traffic.span(name=f"op-{i % 7}", attrs={"i": i, "pad": "x" * (i % 50)})
                             for i in range(spans)]))


def send_grpc(port: int, reqs, compression=None) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for req in reqs:
            export(req.SerializeToString(), timeout=10, compression=compression)


def self_telemetry(port: int) -> SelfTelemetry:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return SelfTelemetry({(n, frozenset(lb.items())): v
                          for n, lb, v in helpers.parse_text_metrics(text)})


def assert_every_exporter_sent(redline, telemetry: int, exporters, spans: int) -> None:
    """Each of `exporters` reports all `spans` sent and none failed."""
    helpers.wait_until(
        lambda: all(self_telemetry(telemetry).value("otelcol_exporter_sent_spans",
                                                    exporter=e) == spans for e in exporters),
        10, "every exporter's sent count", alive=redline)
    s = self_telemetry(telemetry)
    for exporter in exporters:
        assert s.value("otelcol_exporter_sent_spans", exporter=exporter) == spans
        assert s.value("otelcol_exporter_send_failed_spans", exporter=exporter) == 0
