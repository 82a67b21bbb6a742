"""Restart semantics, seen by a real Prometheus (2.42) scraping Redline every second.

Redline keeps its series in memory: after a restart every counter starts again from zero.
That must reach Prometheus as a counter reset it can see, never as a counter that goes
backwards inside one series without one: spans are sent, Redline is stopped (SIGTERM) and
started again on the same ports, fewer spans are sent, and then

  - `resets(...[5m])` is exactly 1 for every calls, errors and histogram-count series;
  - the raw samples (a range-vector query, no extrapolation) are the old value, then the new
    one, with no other decrease, and Prometheus saw the target down in between;
  - adding up the raw samples the way Prometheus treats resets gives exactly what was sent.

No `_created` samples are served: Prometheus 2.x stores them as extra `*_created` series
(checked by hand against 2.42), and otelcol's exporter does not write them either.
"""

from __future__ import annotations

import time

import pytest

import helpers
import promquery
from redline_config import PROMETHEUS, pipeline
from redline_run import Redline, encode_request, encode_span, raw_export

SEL = 'service_name="restart",span_name="op"'
SERIES = {
    # PromQL selector: (sent before the restart, sent after)
    f'traces_spanmetrics_calls_total{{{SEL},status_code="STATUS_CODE_UNSET"}}': (6, 2),
    f'traces_spanmetrics_calls_total{{{SEL},status_code="STATUS_CODE_ERROR"}}': (4, 1),
    f"traces_spanmetrics_errors_total{{{SEL}}}": (4, 1),
    f'traces_spanmetrics_duration_milliseconds_count{{{SEL},status_code="STATUS_CODE_UNSET"}}': (6, 2),
}


def send(rl: Redline, unset: int, error: int):
    spans = [encode_span(time.time_ns() + i, "op") for i in range(unset)]
    spans += [encode_span(time.time_ns() + 1000 + i, "op", error=True) for i in range(error)]
    with rl.grpc_channel() as ch:
        raw_export(ch)(encode_request("restart", spans), timeout=10)


def counter_total(samples: list) -> float:
    """What the samples add up to under Prometheus's counter rules (a decrease is a reset, after
    which the new value counts in full), including the first sample's value."""
    total, prev = 0.0, 0.0
    for _, v in samples:
        total += v - prev if v >= prev else v
        prev = v
    return total


@pytest.fixture
def stack(redline_bin, procs, tmp_path):
    rl = Redline(procs, redline_bin, tmp_path, pipeline(exporters=[PROMETHEUS])).start()
    prom = promquery.start_prometheus(procs, tmp_path, [f"127.0.0.1:{rl.prom}"])
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "prometheus to scrape redline",
                       alive=prom.proc)
    return rl, prom


def settled(prom: promquery.Prom, which: int, scrapes: int = 3):
    """Every series at its expected value for at least `scrapes` scrapes."""
    def ok():
        for sel, sent in SERIES.items():
            want = sent[which]
            recent = [v for _, v in prom.raw(f"{sel}[{scrapes + 1}s]")][-scrapes:]
            if len(recent) < scrapes or any(v != want for v in recent):
                return False
        return True
    return ok


def test_restart_is_a_reset_prometheus_sees(stack):
    rl, prom = stack
    send(rl, unset=6, error=4)
    helpers.wait_until(settled(prom, 0), 30, "Prometheus to hold the values from before the restart",
                       interval=0.5, alive=rl.proc)

    rl.stop()
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 0.0, 20,
                       "Prometheus to see redline down")
    rl.start()
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "Prometheus to see redline again")
    send(rl, unset=2, error=1)
    helpers.wait_until(settled(prom, 1), 30, "Prometheus to hold the values from after the restart",
                       interval=0.5, alive=rl.proc)

    # The restart is visible: one failed scrape at least, up 1 -> 0 -> 1.
    ups = [v for _, v in prom.raw('up{job="redline"}[5m]')]
    assert 0.0 in ups and ups[-1] == 1.0, ups

    for sel, (before, after) in SERIES.items():
        assert prom.scalar(f"resets({sel}[5m])") == 1.0, f"resets({sel}) != 1"
        samples = prom.raw(f"{sel}[5m]")
        values = [v for _, v in samples]
        # Old value, then the new one: no other change, so no decrease inside a lifetime.
        distinct = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
        assert distinct == [before, after], f"{sel}: samples {values}"
        assert counter_total(samples) == before + after, f"{sel}: {values}"
        # The series never gets a sample while Redline is down (no stale value carried over).
        down_at = [t for t, v in prom.raw('up{job="redline"}[5m]') if v == 0.0]
        times = [t for t, _ in samples]
        assert not any(t in times for t in down_at), f"{sel}: a sample at a failed scrape"

    # Nothing but the RED families (and Prometheus's own per-target series) were ingested:
    # in particular no `*_created` series.
    names = {m["__name__"] for m, _ in prom.query('count by (__name__) ({job="redline"})')}
    assert not any(n.endswith("_created") for n in names), names
    rl.stop()
