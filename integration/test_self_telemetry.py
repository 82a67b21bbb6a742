"""Redline's own telemetry and health (issue: self-telemetry and operations).

- The otelcol-named counters on the telemetry endpoint (`service.telemetry.metrics`) equal
  what the load harness counted itself: spans it had accepted, spans that reached its sink.
- The health_check extension answers 200 while the pipeline runs and 503 while it is not
  running (here: draining on SIGTERM with Tempo unreachable), and the process still exits.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests

import helpers

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    dimensions:
      - name: cdn.cache.hit
exporters:
  otlp/tempo:
    endpoint: 127.0.0.1:{sink}
    tls:
      insecure: true
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 200ms
  prometheus:
    endpoint: 127.0.0.1:{prom}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
    path: /health
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, otlp/tempo]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""


def loadgen_bin() -> Path:
    p = Path(os.environ.get("LOADGEN_BIN", "target/debug/loadgen"))
    p = p if p.is_absolute() else helpers.REPO / p
    if not (p.is_file() and os.access(p, os.X_OK)):
        msg = f"loadgen binary not found at {p} (cargo build -p redline-loadgen, or set LOADGEN_BIN)"
        if os.environ.get("REDLINE_ALLOW_SKIP") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return p


def telemetry(url: str) -> dict:
    """Self-telemetry series as {(name, frozenset(labels)): value}."""
    text = requests.get(url, timeout=5).text
    return {(n, frozenset(lb.items())): v for n, lb, v in helpers.parse_text_metrics(text)}


def value(series: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    assert key in series, f"no {name}{labels} in self-telemetry: {sorted(k for k in series if k[0] == name)}"
    return series[key]


def test_counters_match_the_load_harness_and_health_follows_the_pipeline(redline_bin, procs, tmp_path):
    lg = loadgen_bin()
    ports = {k: helpers.free_port() for k in ("grpc", "prom", "health", "telemetry", "sink", "count")}
    sink = procs.start("loadgen-sink", [
        lg, "sink", "--listen", f"127.0.0.1:{ports['sink']}", "--count-listen", f"127.0.0.1:{ports['count']}",
        "--report-interval", "0s",
    ])
    count_url = f"http://127.0.0.1:{ports['count']}/count"
    helpers.wait_until(lambda: requests.get(count_url, timeout=1).ok, 30, "the sink", alive=sink)

    cfg = tmp_path / "redline.yaml"
    cfg.write_text(CONFIG.format(**ports))
    redline = procs.start("redline", [redline_bin, "--config", cfg, "--shutdown-timeout", "4s"])
    health_url = f"http://127.0.0.1:{ports['health']}/health"
    telemetry_url = f"http://127.0.0.1:{ports['telemetry']}/metrics"
    helpers.wait_until(lambda: requests.get(health_url, timeout=1).status_code == 200, 30,
                       "health_check to report the pipeline ready", alive=redline)
    body = requests.get(health_url, timeout=2).json()
    assert body["status"] == "Server available" and body["state"] == "Ready", body

    # ---- a verified load: loadgen's own tally against Redline's self-telemetry
    report = tmp_path / "report.json"
    r = helpers.run([
        lg, "run", "--endpoint", f"127.0.0.1:{ports['grpc']}", "--rate", "5000", "--spans", "10000",
        "--verify", "--namespace", "traces.spanmetrics", "--dimension", "cdn.cache.hit",
        "--metrics-url", f"http://127.0.0.1:{ports['prom']}/metrics", "--sink-count-url", count_url,
        "--json", report, "--quiet",
    ], timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{redline.log_text()}"
    rep = json.loads(report.read_text())
    accepted, refused = rep["accepted"]["spans"], rep["refused"]["spans"]
    received = requests.get(count_url, timeout=5).json()["spans"]
    assert accepted == received == 10_000 and refused == 0, rep

    def settled():
        s = telemetry(telemetry_url)
        return s if value(s, "otelcol_exporter_sent_spans_total", exporter="otlp/tempo") == received else None

    s = helpers.wait_until(settled, 20, "otelcol_exporter_sent_spans to reach the sink's count")
    assert value(s, "otelcol_receiver_accepted_spans_total", receiver="otlp", transport="grpc") == accepted
    assert value(s, "otelcol_receiver_refused_spans_total", receiver="otlp", transport="grpc") == refused
    assert value(s, "otelcol_exporter_sent_spans_total", exporter="otlp/tempo") == received
    assert value(s, "otelcol_exporter_send_failed_spans_total", exporter="otlp/tempo") == 0
    assert value(s, "otelcol_exporter_enqueue_failed_spans_total", exporter="otlp/tempo") == 0
    assert value(s, "otelcol_exporter_queue_size", exporter="otlp/tempo") == 0
    assert value(s, "redline_spanmetrics_active_series", connector="spanmetrics") == rep["verify"]["series_expected"]
    assert value(s, "redline_spanmetrics_overflow_spans_total", connector="spanmetrics") == 0

    # ---- Tempo goes away with data queued: on SIGTERM Redline drains (retrying until its
    # deadline) and must not look healthy meanwhile.
    sink.stop()
    r = helpers.run([
        lg, "run", "--endpoint", f"127.0.0.1:{ports['grpc']}", "--spans", "500", "--quiet",
        "--service-prefix", "drain-",
    ], timeout=60)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    helpers.wait_until(
        lambda: value(telemetry(telemetry_url), "otelcol_exporter_queue_size", exporter="otlp/tempo") > 0,
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
