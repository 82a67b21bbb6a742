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

import relay
import helpers
from otlp_sink import OtlpSink

# 1. Redline -> otelcol (relayed to the sink by relay.py)
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

# 2. otelcol -> Redline (Redline runs relay.py's RELAY)
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

def test_otelcol_decodes_redlines_snappy(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        otelcol, o_grpc, o_http = relay.start_otelcol_relay(procs, otelcol_bin, tmp_path, sink)
        r_grpc, telemetry = helpers.free_port(), helpers.free_port()
        redline = relay.start_redline(procs, redline_bin, tmp_path, REDLINE_SENDING.format(
            grpc=r_grpc, otelcol_grpc=o_grpc, otelcol_http=o_http, telemetry=telemetry), [r_grpc])

        sent = [relay.request(str(r)) for r in range(4)]
        relay.send_grpc(r_grpc, sent)

        # Each span three times: once through each snappy exporter.
        want = sorted(relay.span_bytes(sent) * 3)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through otelcol", alive=otelcol)
        assert relay.span_bytes(sink.requests()) == want
        # Every exporter sent all 600 spans, none failed (otelcol's snappy answers included).
        relay.assert_every_exporter_sent(
            redline, telemetry, ("otlp/snappy", "otlphttp/snappy", "otlphttp/framed"), 600)
        redline.stop()
        otelcol.stop()


def test_redline_decodes_otelcols_snappy(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        o_grpc, r_grpc, r_http = (helpers.free_port() for _ in range(3))
        redline = relay.start_redline(procs, redline_bin, tmp_path, relay.RELAY.format(
            grpc=r_grpc, http=r_http, sink=sink.endpoint), [r_grpc, r_http])
        (tmp_path / "otelcol.yaml").write_text(OTELCOL_SENDING.format(
            grpc=o_grpc, redline_grpc=r_grpc, redline_http=r_http))
        otelcol = procs.start("otelcol", [otelcol_bin, "--config", tmp_path / "otelcol.yaml"])
        helpers.wait_until(lambda: helpers.port_accepts(o_grpc), 30, "otelcol's receiver",
                           alive=otelcol)

        sent = [relay.request(str(r)) for r in range(4)]
        relay.send_grpc(o_grpc, sent)

        want = sorted(relay.span_bytes(sent) * 3)
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through Redline", alive=redline)
        assert relay.span_bytes(sink.requests()) == want
        otelcol.stop()
        redline.stop()
