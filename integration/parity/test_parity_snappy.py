"""`compression: snappy` both ways between Redline and otelcol-contrib.

otelcol's snappy (confighttp v0.161 / configgrpc v1.67): gRPC `grpc-encoding: snappy` carries
the snappy framed format; OTLP/HTTP `Content-Encoding: snappy` is the block format and
`x-snappy-framed` the framed one; its HTTP receiver takes a `snappy` body as framed when it
starts with the framed stream identifier.

1. Redline's exporters (`otlp` snappy, `otlphttp` snappy and x-snappy-framed) send to
   otelcol-contrib's own `otlp` receiver, which forwards what it decoded, uncompressed, to an
   OTLP sink: every span Redline received arrives three times, byte for byte. (otelcol's gRPC
   server answers a snappy request in snappy, so Redline's exporter reads that too.)
2. otelcol-contrib's exporters (`otlp` snappy, `otlphttp` snappy and x-snappy-framed) send to
   Redline's `otlp` receiver, which forwards to the sink uncompressed: the same, the other
   way.
"""

from __future__ import annotations

import grpc
import requests

import helpers
import traffic
from otlp_sink import OtlpSink
from redline_run import SelfTelemetry

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

# 1. Redline -> otelcol
OTELCOL_RECEIVING = """\
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

REDLINE_SENDING = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlp/snappy:
    endpoint: 127.0.0.1:{otelcol_grpc}
    compression: snappy
    tls:
      insecure: true
  otlphttp/snappy:
    endpoint: http://127.0.0.1:{otelcol_http}
    compression: snappy
  otlphttp/framed:
    endpoint: http://127.0.0.1:{otelcol_http}
    compression: x-snappy-framed
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/snappy, otlphttp/snappy, otlphttp/framed]
"""

# 2. otelcol -> Redline
OTELCOL_SENDING = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlp/snappy:
    endpoint: 127.0.0.1:{redline_grpc}
    compression: snappy
    tls:
      insecure: true
  otlphttp/snappy:
    endpoint: http://127.0.0.1:{redline_http}
    compression: snappy
  otlphttp/framed:
    endpoint: http://127.0.0.1:{redline_http}
    compression: x-snappy-framed
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/snappy, otlphttp/snappy, otlphttp/framed]
"""

REDLINE_RECEIVING = """\
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
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
"""


def _span_bytes(requests) -> list:
    return sorted(sp.SerializeToString(deterministic=True)
                  for req in requests for rs in req.resource_spans
                  for ss in rs.scope_spans for sp in ss.spans)


def _traffic() -> list:
    return [traffic.request(({"service.name": f"svc-{r}"},
                             [traffic.span(name=f"op-{i % 7}", attrs={"i": i, "pad": "x" * (i % 50)})
                              for i in range(150)]))
            for r in range(4)]


def _send(port: int, requests) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for req in requests:
            export(req.SerializeToString(), timeout=10)


def test_otelcol_decodes_redlines_snappy(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        o_grpc, o_http, r_grpc, telemetry = (helpers.free_port() for _ in range(4))
        (tmp_path / "otelcol.yaml").write_text(
            OTELCOL_RECEIVING.format(grpc=o_grpc, http=o_http, sink=sink.endpoint))
        otelcol = procs.start("otelcol", [otelcol_bin, "--config", tmp_path / "otelcol.yaml"])
        for port in (o_grpc, o_http):
            helpers.wait_until(lambda: helpers.port_accepts(port), 30, "otelcol's receiver",
                               alive=otelcol)
        (tmp_path / "redline.yaml").write_text(REDLINE_SENDING.format(
            grpc=r_grpc, otelcol_grpc=o_grpc, otelcol_http=o_http, telemetry=telemetry))
        redline = procs.start("redline", [redline_bin, "--config", tmp_path / "redline.yaml"])
        helpers.wait_until(lambda: helpers.port_accepts(r_grpc), 30, "Redline's receiver",
                           alive=redline)

        sent = _traffic()
        _send(r_grpc, sent)

        # Each span three times: once through each snappy exporter.
        want = sorted(_span_bytes(sent) * 3)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through otelcol", alive=otelcol)
        assert _span_bytes(sink.requests()) == want
        # Every exporter sent all 600 spans, none failed (otelcol's snappy answers included).
        exporters = ("otlp/snappy", "otlphttp/snappy", "otlphttp/framed")

        def own() -> SelfTelemetry:
            text = requests.get(f"http://127.0.0.1:{telemetry}/metrics", timeout=5).text
            return SelfTelemetry({(n, frozenset(lb.items())): v
                                  for n, lb, v in helpers.parse_text_metrics(text)})

        helpers.wait_until(
            lambda: all(own().value("otelcol_exporter_sent_spans_total", exporter=e) == 600
                        for e in exporters), 10, "every exporter's sent count", alive=redline)
        s = own()
        for exporter in exporters:
            assert s.value("otelcol_exporter_sent_spans_total", exporter=exporter) == 600
            assert s.value("otelcol_exporter_send_failed_spans_total", exporter=exporter) == 0
        redline.stop()
        otelcol.stop()


def test_redline_decodes_otelcols_snappy(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        o_grpc, r_grpc, r_http, telemetry = (helpers.free_port() for _ in range(4))
        (tmp_path / "redline.yaml").write_text(REDLINE_RECEIVING.format(
            grpc=r_grpc, http=r_http, sink=sink.endpoint, telemetry=telemetry))
        redline = procs.start("redline", [redline_bin, "--config", tmp_path / "redline.yaml"])
        for port in (r_grpc, r_http):
            helpers.wait_until(lambda: helpers.port_accepts(port), 30, "Redline's receiver",
                               alive=redline)
        (tmp_path / "otelcol.yaml").write_text(OTELCOL_SENDING.format(
            grpc=o_grpc, redline_grpc=r_grpc, redline_http=r_http))
        otelcol = procs.start("otelcol", [otelcol_bin, "--config", tmp_path / "otelcol.yaml"])
        helpers.wait_until(lambda: helpers.port_accepts(o_grpc), 30, "otelcol's receiver",
                           alive=otelcol)

        sent = _traffic()
        _send(o_grpc, sent)

        want = sorted(_span_bytes(sent) * 3)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through Redline", alive=redline)
        assert _span_bytes(sink.requests()) == want
        otelcol.stop()
        redline.stop()
