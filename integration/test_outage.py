"""Tempo outages with the disk-backed sending queue (docs/architecture.md section 5: "Tempo down never
stalls metrics ... a disk-backed queue so a restart loses nothing").

Redline runs with `extensions: {file_storage: ...}` and `sending_queue: {storage: file_storage}`
between the OpenTelemetry Python SDK and the independent OTLP sink standing in for Tempo:

  1. sink up: a first set of spans is forwarded;
  2. sink stopped (outage): more spans are sent; the SDK's export succeeds, /metrics keeps being
     served and counts them, the exporter's queue holds them;
  3. Redline restarted (SIGTERM, then the same config) while the sink is still down: the batches
     are still queued (loaded from disk), the RED counters start again from 0 in the new
     process, and more spans are accepted;
  4. Redline killed (SIGKILL) and started again, sink still down: every batch is loaded back;
  5. sink back on the same port: every accepted span arrives, each exactly once.
"""

from __future__ import annotations

import collections
import os
import signal
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import helpers
from otlp_sink import OtlpSink
from redline_config import PROMETHEUS, otlp_tempo, pipeline
from redline_run import Redline

CALLS = "traces_spanmetrics_calls_total"
SPANS_PER_REQUEST = 5

CONFIG = pipeline(
    http=False,
    exporters=[otlp_tempo("""
        timeout: 1s
        retry_on_failure:
          initial_interval: 100ms
          max_interval: 300ms
          max_elapsed_time: 0   # retry for as long as Tempo is down: the disk holds the data
        sending_queue:
          storage: file_storage
    """), PROMETHEUS],
    extensions="""
        file_storage:
          directory: {queue_dir}
    """,
    telemetry=True,
)


def calls(rl: Redline) -> float:
    return sum(v for _, _, v in rl.samples(CALLS))


def own(rl: Redline, metric: str) -> float:
    """One of Redline's own metrics for the otlp/tempo exporter (or the receiver)."""
    return sum(v for (name, labels), v in rl.self_telemetry().items()
               if name == metric and dict(labels).get("exporter", "otlp/tempo") == "otlp/tempo")


class Client:
    """The real SDK: spans made by a TracerProvider, exported by its OTLP/gRPC exporter in
    requests of a known size, so the test knows every span id and every request it sent."""

    def __init__(self):
        self.memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "outage-test"}))
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = provider.get_tracer("test_outage")
        self.sent: list = []

    def send(self, grpc_port: int, requests_n: int, phase: str) -> None:
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
        try:
            for r in range(requests_n):
                self.memory.clear()
                for i in range(SPANS_PER_REQUEST):
                    with self.tracer.start_as_current_span(f"{phase}-{r}-{i}", kind=SpanKind.SERVER):
                        pass
                spans = self.memory.get_finished_spans()
                assert len(spans) == SPANS_PER_REQUEST
                result = exporter.export(spans)
                assert result == SpanExportResult.SUCCESS, f"{phase}: export {r} returned {result}"
                self.sent.extend((s.context.trace_id, s.context.span_id) for s in spans)
        finally:
            exporter.shutdown()


def arrived(*sinks) -> collections.Counter:
    seen = collections.Counter()
    for sink in sinks:
        for _, _, sp in sink.spans():
            seen[(int.from_bytes(sp.trace_id, "big"), int.from_bytes(sp.span_id, "big"))] += 1
    return seen


def test_spans_accepted_during_an_outage_and_a_restart_all_reach_tempo(redline_bin, procs, tmp_path):
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    sink = OtlpSink().start()
    sink_port = sink.port
    sinks = [sink]
    try:
        rl = Redline(procs, redline_bin, tmp_path, CONFIG, args=("--shutdown-timeout", "2s"),
                     sink=sink_port, queue_dir=queue_dir)
        client = Client()

        # 1. Tempo up.
        rl.start()
        client.send(rl.grpc, 2, "before")
        helpers.wait_until(lambda: sink.span_count() == 10, 15, "the first spans at the sink", alive=rl.proc)

        # 2. Tempo down: accepted, counted, queued; metrics served throughout.
        sink.stop()
        client.send(rl.grpc, 3, "outage")
        helpers.wait_until(lambda: calls(rl) == 25, 10, "spanmetrics to count 25 spans", alive=rl.proc)
        for _ in range(4):
            assert calls(rl) == 25
            assert own(rl, "otelcol_receiver_accepted_spans") == 25
            assert own(rl, "otelcol_exporter_sent_spans") == 10
            assert own(rl, "otelcol_exporter_queue_size") == 3, "one batch per SDK request"
            assert own(rl, "otelcol_exporter_send_failed_spans") == 0
            assert own(rl, "otelcol_exporter_enqueue_failed_spans") == 0
            time.sleep(0.3)  # the exporter keeps retrying meanwhile

        # 3. Restart while Tempo is still down: nothing is lost, nothing is counted as failed.
        rl.stop()
        log = rl.proc.log_text()
        assert "kept on disk for the next start" in log, log
        assert list(queue_dir.iterdir()), "the queue directory holds the batches"

        rl.start()
        assert own(rl, "otelcol_exporter_queue_size") == 3, "the 3 batches are loaded back"
        assert calls(rl) == 0, "a new process counts from 0 (Prometheus sees a counter reset)"
        assert own(rl, "otelcol_receiver_accepted_spans") == 0
        second_log = rl.proc.log_text()
        client.send(rl.grpc, 2, "after-restart")
        helpers.wait_until(lambda: calls(rl) == 10, 10, "the new spans counted", alive=rl.proc)
        assert own(rl, "otelcol_exporter_queue_size") == 5

        # 4. A crash (SIGKILL: no shutdown at all) while Tempo is still down: every batch that
        # was accepted is on disk already, and the next process loads it.
        os.kill(rl.proc.pid, signal.SIGKILL)
        rl.proc.popen.wait(timeout=10)
        rl.proc.stop()
        rl.start()
        assert own(rl, "otelcol_exporter_queue_size") == 5, "3 + 2 batches survived the crash"
        third_log = rl.proc.log_text()
        assert "did not stop cleanly" in third_log, third_log

        # 5. Tempo back on the same port: everything accepted arrives.
        sink2 = OtlpSink(port=sink_port).start()
        sinks.append(sink2)
        total = len(client.sent)
        assert total == 35
        helpers.wait_until(
            lambda: len(arrived(*sinks)) == total, 30, f"all {total} spans at the sink", alive=rl.proc
        )
        seen = arrived(*sinks)
        missing = [s for s in client.sent if s not in seen]
        assert not missing, f"{len(missing)} accepted spans never arrived"
        assert set(seen) == set(client.sent), "the sink got only what was sent"
        # Duplicates could only come from batches in flight when a process stopped (or sent
        # but not yet acknowledged on disk when it crashed); Tempo was down both times, so none
        # of them had been delivered: every span arrives exactly once.
        dups = {s: n for s, n in seen.items() if n > 1}
        assert not dups, f"{len(dups)} spans arrived more than once"
        helpers.wait_until(
            lambda: own(rl, "otelcol_exporter_queue_size") == 0, 10, "the queue to empty", alive=rl.proc
        )
        assert own(rl, "otelcol_exporter_sent_spans") == 25, "15 + 10 spans from disk"
        assert own(rl, "otelcol_exporter_send_failed_spans") == 0
        assert calls(rl) == 0, "spans loaded from disk were counted by the process that accepted them"
        assert "loaded the batches a previous run left on disk" in second_log, second_log
        # The SIGTERM stop interrupted only retry waits of failed attempts: nothing was in flight.
        assert "arrive twice" not in second_log, second_log
        rl.stop()
    finally:
        for s in sinks:
            s.stop()
