"""gzip from Redline's exporters, judged by otelcol-contrib's own receiver.

Redline's `otlp` (gRPC, at the default level 6 and at level 1) and `otlphttp` exporters
compress with libdeflate, and send a client's own gzip as it came when the request they send
is exactly the one the client gzipped (docs/compatibility.md §23). They forward to an
otelcol-contrib whose `otlp` receiver is the Tempo stand-in; otelcol forwards what it
decoded, uncompressed, to an OTLP sink. Every span Redline received must arrive once through
each exporter, byte for byte, which only happens if otelcol's gzip readers (grpc-go's and
confighttp's) took every body: Redline's own gzip (the traffic sent uncompressed) and the
clients' (sent gzipped over OTLP/HTTP and over gRPC). A further `otlphttp` exporter posts to
a plain HTTP sink that records bodies as they came: the HTTP client's gzip bodies arrive
there unchanged.
"""

from __future__ import annotations

import gzip

import grpc
import requests

import relay
import helpers
from otlp_http_sink import OtlpHttpSink
from otlp_sink import OtlpSink

REDLINE = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  otlp/gzip:
    endpoint: 127.0.0.1:{otelcol_grpc}
    tls:
      insecure: true
  otlp/level1:
    endpoint: 127.0.0.1:{otelcol_grpc}
    compression_params:
      level: 1
    tls:
      insecure: true
  otlphttp/gzip:
    endpoint: http://127.0.0.1:{otelcol_http}
  otlphttp/recorded:
    endpoint: http://127.0.0.1:{recorder}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/gzip, otlp/level1, otlphttp/gzip, otlphttp/recorded]
"""

TO_OTELCOL = ("otlp/gzip", "otlp/level1", "otlphttp/gzip")


def test_otelcol_takes_redlines_gzip_and_the_clients(procs, otelcol_bin, redline_bin, tmp_path):
    with OtlpSink() as sink:
        recorder = OtlpHttpSink().start()
        otelcol, o_grpc, o_http = relay.start_otelcol_relay(procs, otelcol_bin, tmp_path, sink)
        r_grpc, r_http, telemetry = (helpers.free_port() for _ in range(3))
        redline = relay.start_redline(procs, redline_bin, tmp_path, REDLINE.format(
            grpc=r_grpc, http=r_http, otelcol_grpc=o_grpc, otelcol_http=o_http,
            recorder=recorder.port, telemetry=telemetry), [r_grpc, r_http])

        plain = [relay.request(f"plain-{r}", 120) for r in range(3)]
        http_gzipped = [relay.request(f"http-gzip-{r}", 120) for r in range(2)]
        grpc_gzipped = [relay.request(f"grpc-gzip-{r}", 120) for r in range(2)]
        relay.send_grpc(r_grpc, plain)
        relay.send_grpc(r_grpc, grpc_gzipped, grpc.Compression.Gzip)
        # Each HTTP body once the recorder has everything before it, so that it is the only
        # batch queued when the exporter takes it (queued batches go out concatenated, then
        # compressed by Redline).
        def recorded() -> int:
            return len(relay.span_bytes(recorder.requests_of("traces")))

        bodies = [gzip.compress(req.SerializeToString()) for req in http_gzipped]
        for n, body in enumerate(bodies):
            before = len(relay.span_bytes(plain + grpc_gzipped + http_gzipped[:n]))
            helpers.wait_until(lambda: recorded() >= before, 30,
                               f"{before} spans at the recording sink", alive=redline)
            answer = requests.post(f"http://127.0.0.1:{r_http}/v1/traces", data=body, timeout=10,
                                   headers={"Content-Type": "application/x-protobuf",
                                            "Content-Encoding": "gzip"})
            assert answer.status_code == 200, answer.text

        sent = plain + http_gzipped + grpc_gzipped
        want = sorted(relay.span_bytes(sent) * len(TO_OTELCOL))
        helpers.wait_until(lambda: sink.span_count() >= len(want), 30,
                           f"{len(want)} spans through otelcol", alive=otelcol)
        assert relay.span_bytes(sink.requests()) == want

        # The HTTP client's gzip bodies, as they came.
        helpers.wait_until(lambda: recorded() >= len(relay.span_bytes(sent)), 30,
                           "every span at the recording sink", alive=redline)
        raw_bodies = [p.raw for p in recorder.posted_of("traces")]
        assert relay.span_bytes(recorder.requests_of("traces")) == relay.span_bytes(sent)
        for body in bodies:
            assert body in raw_bodies, "the client's gzip body was sent on as it came"

        relay.assert_every_exporter_sent(redline, telemetry, TO_OTELCOL,
                                               relay.span_count(sent))
        redline.stop()
        otelcol.stop()
        recorder.stop()
