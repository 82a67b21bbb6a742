"""`compression: zstd` on the `otlp` exporter, judged by otelcol-contrib's own receiver.

Redline forwards to an otelcol-contrib whose `otlp` receiver is the Tempo stand-in; otelcol
forwards what it decoded, uncompressed, to an OTLP sink. Every span Redline received must
arrive, byte for byte, which only happens if otelcol's gRPC zstd decompressor took Redline's
frames: from one exporter at zstd's default level and one at level 19.
"""

from __future__ import annotations

import grpc

import helpers
import traffic
from otlp_sink import OtlpSink

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

OTELCOL = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
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

REDLINE = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  otlp/zstd:
    endpoint: 127.0.0.1:{otelcol}
    compression: zstd
    tls:
      insecure: true
  otlp/zstd-level:
    endpoint: 127.0.0.1:{otelcol}
    compression: zstd
    compression_params:
      level: 19
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/zstd, otlp/zstd-level]
"""


def _span_bytes(requests) -> list:
    return sorted(sp.SerializeToString(deterministic=True)
                  for req in requests for rs in req.resource_spans
                  for ss in rs.scope_spans for sp in ss.spans)


def test_otelcol_decodes_redlines_zstd_frames(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        otelcol_port, grpc_port, telemetry = (helpers.free_port() for _ in range(3))
        (tmp_path / "otelcol.yaml").write_text(OTELCOL.format(port=otelcol_port, sink=sink.endpoint))
        otelcol = procs.start("otelcol", [otelcol_bin, "--config", tmp_path / "otelcol.yaml"])
        helpers.wait_until(lambda: helpers.port_accepts(otelcol_port), 30, "otelcol's receiver",
                           alive=otelcol)
        (tmp_path / "redline.yaml").write_text(
            REDLINE.format(grpc=grpc_port, otelcol=otelcol_port, telemetry=telemetry))
        redline = procs.start("redline", [redline_bin, "--config", tmp_path / "redline.yaml"])
        helpers.wait_until(lambda: helpers.port_accepts(grpc_port), 30, "Redline's receiver",
                           alive=redline)

        sent = [traffic.request(({"service.name": f"svc-{r}"},
                                 [traffic.span(name=f"op-{i % 7}", attrs={"i": i, "pad": "x" * (i % 50)})
                                  for i in range(150)]))
                for r in range(4)]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
            for req in sent:
                export(req.SerializeToString(), timeout=10)

        # Each span twice: once through each zstd exporter.
        want = sorted(_span_bytes(sent) * 2)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through otelcol", alive=otelcol)
        assert _span_bytes(sink.requests()) == want
        redline.stop()
        otelcol.stop()
