"""`compression: zstd` on the `otlp` exporter, judged by otelcol-contrib's own receiver.

Redline forwards to an otelcol-contrib whose `otlp` receiver is the Tempo stand-in; otelcol
forwards what it decoded, uncompressed, to an OTLP sink. Every span Redline received must
arrive, byte for byte, which only happens if otelcol's gRPC zstd decompressor took Redline's
frames: from one exporter at zstd's default level and one at level 19.
"""

from __future__ import annotations

import relay
import helpers
from otlp_sink import OtlpSink

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


def test_otelcol_decodes_redlines_zstd_frames(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        otelcol, otelcol_port, _ = relay.start_otelcol_relay(procs, otelcol_bin, tmp_path, sink)
        grpc_port, telemetry = helpers.free_port(), helpers.free_port()
        redline = relay.start_redline(
            procs, redline_bin, tmp_path,
            REDLINE.format(grpc=grpc_port, otelcol=otelcol_port, telemetry=telemetry), [grpc_port])

        sent = [relay.request(str(r)) for r in range(4)]
        relay.send_grpc(grpc_port, sent)

        # Each span twice: once through each zstd exporter.
        want = sorted(relay.span_bytes(sent) * 2)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through otelcol", alive=otelcol)
        assert relay.span_bytes(sink.requests()) == want
        redline.stop()
        otelcol.stop()
