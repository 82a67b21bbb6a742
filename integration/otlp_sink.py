"""An independent OTLP/gRPC sink (stands in for Tempo, or Mimir/Loki behind OTLP/gRPC).

Built on grpcio and the `opentelemetry-proto` package's generated servicers; shares no code
with Redline. Serves TraceService, MetricsService and LogsService and records every Export
request (deserialized), its metadata and peer. gzip-compressed requests are decompressed by
grpcio. Trace requests are what received()/requests()/request_count()/spans() return (as they
always have); metrics and logs are kept apart: received_of("metrics"), requests_of("logs").

In-process:   sink = OtlpSink(); sink.start(); ... sink.spans(); sink.stop()
Standalone:   python integration/otlp_sink.py --port 4317   (prints a line per request)
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

SIGNALS = ("traces", "metrics", "logs")


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: "OtlpSink"):
        self._sink = sink

    def Export(self, request, context):  # noqa: N802 - generated name
        self._sink._record(request, context)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, sink: "OtlpSink"):
        self._sink = sink

    def Export(self, request, context):  # noqa: N802 - generated name
        self._sink._record(request, context, "metrics")
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, sink: "OtlpSink"):
        self._sink = sink

    def Export(self, request, context):  # noqa: N802 - generated name
        self._sink._record(request, context, "logs")
        return logs_service_pb2.ExportLogsServiceResponse()


class Received:
    __slots__ = ("request", "metadata", "peer", "at")

    def __init__(self, request, metadata, peer, at):
        self.request = request
        self.metadata = metadata
        self.peer = peer
        self.at = at


class OtlpSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, on_request=None, tls=None):
        """`tls`: (key PEM, certificate PEM) bytes to serve over TLS instead of plaintext."""
        self.host = host
        self._tls = tls
        self._want_port = port
        self.port = None
        self._lock = threading.Lock()
        self._received: list[Received] = []  # traces
        self._other: dict = {"metrics": [], "logs": []}
        self._on_request = on_request
        self._server = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "OtlpSink":
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8),
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsServicer(self), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), self._server)
        address = f"{self.host}:{self._want_port}"
        if self._tls is not None:
            self.port = self._server.add_secure_port(address, grpc.ssl_server_credentials([self._tls]))
        else:
            self.port = self._server.add_insecure_port(address)
        if not self.port:
            raise RuntimeError(f"sink could not bind {self.host}:{self._want_port}")
        self._server.start()
        return self

    def stop(self, grace: float = 1.0):
        if self._server is not None:
            self._server.stop(grace).wait(timeout=grace + 5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    # -------------------------------------------------------------- recording
    def _record(self, request, context, signal: str = "traces"):
        rec = Received(request, tuple(context.invocation_metadata() or ()), context.peer(), time.time())
        with self._lock:
            (self._received if signal == "traces" else self._other[signal]).append(rec)
        if self._on_request and signal == "traces":
            self._on_request(rec)

    def received_of(self, signal: str) -> list:
        """Every Export request of `signal` ("traces", "metrics", "logs") in arrival order."""
        if signal == "traces":
            return self.received()
        with self._lock:
            return list(self._other[signal])

    def requests_of(self, signal: str) -> list:
        return [r.request for r in self.received_of(signal)]

    def counts(self) -> dict:
        """Requests received so far per signal."""
        with self._lock:
            return {"traces": len(self._received), **{k: len(v) for k, v in self._other.items()}}

    def received(self) -> list:
        with self._lock:
            return list(self._received)

    def requests(self) -> list:
        return [r.request for r in self.received()]

    def request_count(self) -> int:
        with self._lock:
            return len(self._received)

    def spans(self) -> list:
        """Every span received, as (resource_spans, scope_spans, span) triples, in arrival order."""
        out = []
        for req in self.requests():
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        out.append((rs, ss, sp))
        return out

    def span_count(self) -> int:
        return len(self.spans())

    def clear(self):
        with self._lock:
            self._received.clear()
            for v in self._other.values():
                v.clear()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=4317)
    args = ap.parse_args()

    def show(rec):
        n = sum(len(ss.spans) for rs in rec.request.resource_spans for ss in rs.scope_spans)
        print(f"sink: request from {rec.peer}: {len(rec.request.resource_spans)} resource_spans, {n} spans",
              flush=True)

    sink = OtlpSink(args.host, args.port, on_request=show).start()
    print(f"sink: listening on {sink.endpoint}", flush=True)
    try:
        sink._server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
