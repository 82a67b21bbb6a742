"""Redline's own telemetry and health (issue: self-telemetry and operations).

- The otelcol-named counters on the telemetry endpoint (`service.telemetry.metrics`) equal
  what the load harness counted itself: spans it had accepted, spans that reached its sink.
- The health_check extension answers 200 while the pipeline runs and 503 while it is not
  running (here: draining on SIGTERM with Tempo unreachable), and the process still exits.
"""

from __future__ import annotations

import os
import signal
import time

import requests

import helpers
from loadgen_run import LoadgenSink, verified_run
from redline_config import PROMETHEUS, otlp_tempo, pipeline
from redline_run import Redline

CONFIG = pipeline(
    http=False,
    dimensions=["cdn.cache.hit"],
    exporters=[otlp_tempo("""
        retry_on_failure:
          initial_interval: 100ms
          max_interval: 200ms
    """), PROMETHEUS],
    extensions="""
        health_check:
          endpoint: 127.0.0.1:{health}
          path: /health
    """,
    telemetry=True,
)


def test_counters_match_the_load_harness_and_health_follows_the_pipeline(redline_bin, loadgen_bin, procs, tmp_path):
    sink = LoadgenSink(procs, loadgen_bin)
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, args=("--shutdown-timeout", "4s"), sink=sink.port).start()
    redline = rl.proc
    health_url = f"http://127.0.0.1:{rl.ports['health']}/health"
    helpers.wait_until(lambda: requests.get(health_url, timeout=1).status_code == 200, 30,
                       "health_check to report the pipeline ready", alive=redline)
    body = requests.get(health_url, timeout=2).json()
    assert body["status"] == "Server available" and body["state"] == "Ready", body

    # ---- a verified load: loadgen's own tally against Redline's self-telemetry
    code, rep, out = verified_run(loadgen_bin, rl.metrics_url, sink, tmp_path / "report.json", [
        "--endpoint", f"127.0.0.1:{rl.grpc}", "--rate", "5000", "--spans", "10000", "--dimension", "cdn.cache.hit",
    ])
    assert code == 0, f"{out}\n{redline.log_text()}"
    accepted, refused = rep["accepted"]["spans"], rep["refused"]["spans"]
    received = sink.counts()["spans"]
    assert accepted == received == 10_000 and refused == 0, rep

    def settled():
        s = rl.self_telemetry()
        return s if s.value("otelcol_exporter_sent_spans", exporter="otlp/tempo") == received else None

    s = helpers.wait_until(settled, 20, "otelcol_exporter_sent_spans to reach the sink's count")
    assert s.value("otelcol_receiver_accepted_spans", receiver="otlp", transport="grpc") == accepted
    assert s.value("otelcol_receiver_refused_spans", receiver="otlp", transport="grpc") == refused
    assert s.value("otelcol_exporter_sent_spans", exporter="otlp/tempo") == received
    assert s.value("otelcol_exporter_send_failed_spans", exporter="otlp/tempo") == 0
    assert s.value("otelcol_exporter_enqueue_failed_spans", exporter="otlp/tempo") == 0
    assert s.value("otelcol_exporter_queue_size", exporter="otlp/tempo", data_type="traces") == 0
    assert s.value("redline_spanmetrics_active_series", connector="spanmetrics") == rep["verify"]["series_expected"]
    assert s.value("redline_spanmetrics_overflow_spans", connector="spanmetrics") == 0

    # ---- Tempo goes away with data queued: on SIGTERM Redline drains (retrying until its
    # deadline) and must not look healthy meanwhile.
    sink.proc.stop()
    r = helpers.run([
        loadgen_bin, "run", "--endpoint", f"127.0.0.1:{rl.grpc}", "--spans", "500", "--quiet",
        "--service-prefix", "drain-",
    ], timeout=60)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    helpers.wait_until(
        lambda: rl.self_telemetry().value("otelcol_exporter_queue_size", exporter="otlp/tempo", data_type="traces") > 0,
        10, "batches to wait in the sending queue",
    )
    assert requests.get(health_url, timeout=2).status_code == 200

    os.kill(redline.pid, signal.SIGTERM)
    # The signal is handled asynchronously: health must turn 503 promptly and stay so.
    helpers.wait_until(lambda: requests.get(health_url, timeout=1).status_code == 503, 2,
                       "health to report 503 once the pipeline is draining")
    seen = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and redline.poll() is None:
        try:
            seen.append(requests.get(health_url, timeout=1).status_code)
        except requests.RequestException:
            break
        time.sleep(0.1)
    assert seen and set(seen) == {503}, f"health during the drain: {seen}\n{redline.log_text()}"
    code = redline.stop(timeout=15)
    assert not redline.killed, redline.log_text()
    assert code is not None
    assert "panicked" not in redline.log_text()
