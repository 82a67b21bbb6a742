"""spanmetrics -> prometheusremotewrite into a real Prometheus (2.42, remote-write receiver on).

Spans are sent with the OpenTelemetry Python SDK (traceset.py) and checked against the test's
own model (redmodel.py) through PromQL: every calls / errors / bucket / sum / count series
exact. The first half arrives by a periodic push; the second half is sent right before
SIGTERM and must arrive by the final push made at shutdown.
"""

from __future__ import annotations

import os
import time

import pytest
import requests

import helpers
import promquery
import traceset
from redline_config import pipeline
from redline_run import Redline
from redmodel import Expected

INSTANCE = "redline-rw-test"

CONFIG = pipeline(
    http=False,
    dimensions=["cdn.cache.hit"],
    exporters=["""
        prometheusremotewrite:
          endpoint: http://127.0.0.1:{prometheus}/api/v1/write
          push_interval: 1s
          send_metadata: true
          external_labels:
            instance: ${{env:REDLINE_TEST_INSTANCE}}
          retry_on_failure:
            initial_interval: 50ms
            max_interval: 200ms
    """],
)


@pytest.fixture
def setup(redline_bin, procs, tmp_path):
    prom = promquery.start_prometheus(procs, tmp_path, remote_write=True)
    env = {"REDLINE_TEST_INSTANCE": INSTANCE}
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, args=("--log-format", "text"), env=env,
                 prometheus=prom.port)
    res = helpers.run([redline_bin, "validate", "--config", rl.cfg], env={**os.environ, **env})
    assert res.returncode == 0, f"redline validate failed:\n{res.stdout}\n{res.stderr}"
    rl.start()
    return prom, rl.proc, rl.grpc


def test_periodic_and_final_pushes_are_exact(setup):
    prom, redline, grpc = setup
    first, second = traceset.PLAN[:2], traceset.PLAN[2:]

    spans = traceset.send(f"127.0.0.1:{grpc}", plan=first)
    promquery.wait_exact(prom, Expected(spans), f'instance="{INSTANCE}"', "the periodic push", alive=redline)

    spans += traceset.send(f"127.0.0.1:{grpc}", plan=second)
    # Spans are counted when the SDK's export returns; stop at once so the last values can
    # only arrive by the final push (or a periodic one that happens to fall in between).
    stop_ms = int(time.time() * 1000)
    code = redline.stop(timeout=15)
    assert not redline.killed and code == 0, f"redline did not stop cleanly ({code}):\n{redline.log_text()}"
    exp = Expected(spans)
    assert len(exp.counted) == len(spans) - 2 >= 30
    promquery.wait_exact(prom, exp, f'instance="{INSTANCE}"', "the final push", timeout=15)

    # The final push was made after SIGTERM: its samples carry a collection time after it.
    latest = prom.query(f'max(timestamp(traces_spanmetrics_calls_total{{instance="{INSTANCE}"}}))')
    assert latest and latest[0][1] * 1000 >= stop_ms, f"no sample stamped after the stop ({latest} < {stop_ms})"

    # Prometheus accepted every request (a duplicate or out-of-order sample fails a whole one).
    log = redline.log_text()
    assert "refused the request" not in log and "giving up" not in log, log
    assert "level=error" not in prom.proc.log_text(), prom.proc.log_text()

    # Every series carries the external label, and nothing else was written.
    every = prom.query('count by (instance) ({__name__=~"traces_spanmetrics_.*"})')
    assert [m.get("instance") for m, _ in every] == [INSTANCE], every


def test_exemplars_arrive_with_remote_write(setup):
    prom, redline, grpc = setup
    spans = traceset.send(f"127.0.0.1:{grpc}", plan=traceset.PLAN[:1])
    sent_traces = {format(s.context.trace_id, "032x") for s in spans}
    q = 'traces_spanmetrics_duration_milliseconds_bucket{span_name="http.server"}'

    def exemplars():
        r = requests.get(
            f"{prom.base}/api/v1/query_exemplars",
            params={"query": q, "start": time.time() - 3600, "end": time.time() + 3600},
            timeout=5,
        )
        body = r.json()
        assert body.get("status") == "success", body
        return [e for s in body["data"] for e in s["exemplars"]]

    got = helpers.wait_until(exemplars, 20, f"exemplars for {q}", alive=redline)
    unknown = [e["labels"] for e in got if e["labels"].get("trace_id") not in sent_traces]
    assert not unknown, f"exemplars with trace ids never sent: {unknown}"


CREATED_CONFIG = pipeline(
    http=False,
    exporters=["""
        prometheusremotewrite:
          endpoint: http://127.0.0.1:{prometheus}/api/v1/write
          push_interval: 1s
          export_created_metric:
            enabled: true
    """],
)


def test_created_series_show_a_restart(redline_bin, procs, tmp_path):
    """otelcol's `export_created_metric`: each counter and histogram gets a `_created` series
    holding its start time (ms). After a restart the counters start from 0 again and the start
    time moves, so a reset is visible even where the new count passes the old one."""
    prom = promquery.start_prometheus(procs, tmp_path, remote_write=True)
    rl = Redline(procs, redline_bin, tmp_path, CREATED_CONFIG, prometheus=prom.port)
    created = 'traces_spanmetrics_calls_total_created{span_name="http.server"}'
    histogram_created = 'traces_spanmetrics_duration_milliseconds_created{span_name="http.server"}'

    def run_once() -> tuple:
        before_ms = time.time() * 1000
        rl.start()
        traceset.send(f"127.0.0.1:{rl.grpc}", plan=traceset.PLAN[:1])
        after_ms = time.time() * 1000
        rl.stop()
        return before_ms, after_ms

    def latest(q: str, newer_than: float):
        # The most recent sample, once it says a start time after `newer_than`.
        v = prom.scalar(f"max({q})")
        return v if v is not None and v > newer_than else None

    first_from, first_to = run_once()
    first = helpers.wait_until(lambda: latest(created, 0), 20, "the first _created sample")
    assert first_from <= first <= first_to, (first_from, first, first_to)
    assert helpers.wait_until(lambda: latest(histogram_created, 0), 5, "histogram _created") == first

    second_from, second_to = run_once()
    second = helpers.wait_until(lambda: latest(created, first), 20, "a later _created after the restart")
    assert second_from <= second <= second_to, (second_from, second, second_to)
    assert "level=error" not in prom.proc.log_text(), prom.proc.log_text()
