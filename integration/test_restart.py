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

With `spanmetrics.storage` (a `file_storage`), the same Prometheus also receives each series'
start time by remote write (`export_created_metric`), and:
  - a SIGTERM restart under a steady load is no reset: `resets()` is 0, no sample decreases,
    the last sample equals every span the load had answered, `increase()` over the samples'
    span equals every span sent after the first scrape, and the start time is one value
    across both processes;
  - a SIGKILL while the state file holds what Prometheus saw continues exactly; a SIGKILL
    after a scrape of newer values restarts from zero with a new start time: one reset
    Prometheus counts, never a decrease without one.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
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


def scraped(procs, tmp_path, rl: Redline) -> promquery.Prom:
    """A Prometheus scraping `rl` every second, once it has."""
    prom = promquery.start_prometheus(procs, tmp_path, [f"127.0.0.1:{rl.prom}"])
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "prometheus to scrape redline",
                       alive=prom.proc)
    return prom


@pytest.fixture
def stack(redline_bin, procs, tmp_path):
    rl = Redline(procs, redline_bin, tmp_path, pipeline(exporters=[PROMETHEUS])).start()
    return rl, scraped(procs, tmp_path, rl)


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


# ------------------------------------------------------------------ with `storage`: no reset

STATE_CONFIG = pipeline(
    exporters=[PROMETHEUS, """
        prometheusremotewrite:
          endpoint: http://127.0.0.1:{prometheus}/api/v1/write
          push_interval: 1s
          export_created_metric:
            enabled: true
    """],
    spanmetrics="storage: file_storage",
    extensions="""
        file_storage:
          directory: {state_dir}
    """,
)
STEADY = ('traces_spanmetrics_calls_total{job="redline",service_name="steady",span_name="op",'
          'status_code="STATUS_CODE_UNSET"}')
# Each series' start time (ms), from remote write's `export_created_metric`.
STEADY_CREATED = ('traces_spanmetrics_calls_total_created{service_name="steady",span_name="op",'
                  'status_code="STATUS_CODE_UNSET"}')


def with_state(redline_bin, procs, tmp_path):
    """Redline with `spanmetrics.storage`, scraped by Prometheus and remote writing to it
    (start times); and the state directory."""
    state = tmp_path / "state"
    state.mkdir()
    scrape = helpers.free_port()
    prom = promquery.start_prometheus(procs, tmp_path, [f"127.0.0.1:{scrape}"], remote_write=True)
    rl = Redline(procs, redline_bin, tmp_path, STATE_CONFIG, ports={"prom": scrape}, state_dir=state,
                 prometheus=prom.port).start()
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "prometheus to scrape redline",
                       alive=prom.proc)
    return rl, prom, state


class Steady:
    """Sends 20-span requests one after another, every 20 ms, until stopped; a refused or
    failed request is sent again (a graceful restart processes what it answered and nothing
    else: in-flight calls finish, later ones are refused unread). .accepted counts the spans
    of answered requests."""

    def __init__(self, rl: Redline):
        self.rl, self.stop, self.accepted, self.retries = rl, threading.Event(), 0, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        seq = 0
        channel = self.rl.grpc_channel()
        while not self.stop.is_set():
            body = encode_request("steady", [encode_span(seq * 100 + i, "op") for i in range(20)])
            while not self.stop.is_set():
                try:
                    raw_export(channel)(body, timeout=5)
                    self.accepted += 20
                    break
                except grpc.RpcError:
                    self.retries += 1
                    time.sleep(0.1)
            seq += 1
            time.sleep(0.02)
        channel.close()

    def __enter__(self) -> "Steady":
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)


def test_with_storage_a_restart_under_load_is_no_reset(redline_bin, procs, tmp_path):
    rl, prom, state = with_state(redline_bin, procs, tmp_path)
    with Steady(rl) as load:
        helpers.wait_until(lambda: (prom.scalar(STEADY) or 0) > 0, 20, "Prometheus to see the load",
                           alive=rl.proc)
        first_sample_ms = prom.raw(f"{STEADY}[1m]")[0][0] * 1000
        time.sleep(2)
        rl.stop()  # SIGTERM: receivers stop, the connector writes its state, the process exits
        helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 0.0, 20, "Prometheus to see redline down")
        rl.start()
        restarted = time.time()
        assert "counters continue from the state a previous run left" in rl.proc.log_text(), \
            rl.proc.log_text()
        time.sleep(3)
    sent = load.accepted
    helpers.wait_until(lambda: prom.scalar(STEADY) == float(sent), 20,
                       "Prometheus to hold every span sent", interval=0.5, alive=rl.proc)

    # Prometheus saw the restart (a failed scrape) but no reset: the counter went on.
    ups = [v for _, v in prom.raw('up{job="redline"}[5m]')]
    assert 0.0 in ups and ups[-1] == 1.0, ups
    assert prom.scalar(f"resets({STEADY}[5m])") == 0.0
    samples = prom.raw(f"{STEADY}[5m]")
    values = [v for _, v in samples]
    assert all(b >= a for a, b in zip(values, values[1:])), f"a decrease: {values}"
    # Every span counted once: the last sample is what was sent, and adding up the samples
    # the way increase() does gives it too (the series began at the first request).
    assert values[-1] == float(sent) and counter_total(samples) == float(sent), (sent, values)
    # increase() itself, over exactly the samples' span (evaluated at the last one, so it has
    # no edge to extrapolate to): every span sent after the first scrape.
    first, last = samples[0][0], samples[-1][0]
    inc = prom.data(f"increase({STEADY}[{round((last - first) * 1000)}ms])", at=last)["result"]
    assert [helpers.parse_float(r["value"][1]) for r in inc] == [float(sent) - values[0]], (inc, values)
    assert load.retries > 0, "the load ran across the restart"
    # One start time for the series across both processes.
    helpers.wait_until(lambda: prom.raw(f"{STEADY_CREATED}[5m]")[-1][0] > restarted, 20,
                       "a start time pushed by the new process")
    starts = {v for _, v in prom.raw(f"{STEADY_CREATED}[5m]")}
    assert len(starts) == 1 and next(iter(starts)) <= first_sample_ms, starts
    rl.stop()


def crash(rl: Redline):
    """SIGKILL: no shutdown at all, so nothing is written on the way out."""
    os.kill(rl.proc.pid, signal.SIGKILL)
    rl.proc.popen.wait(timeout=10)


def state_file(state_dir) -> "Path | None":
    found = [p for p in state_dir.rglob("state") if p.is_file()]
    return found[0] if found else None


def test_with_storage_a_crash_never_makes_a_counter_go_back(redline_bin, procs, tmp_path):
    """SIGKILL, twice. First with the state file as new as anything Prometheus saw: the
    counters continue. Then after Prometheus saw values newer than the file: the file is gone
    before that scrape was answered, so the restart starts from zero, a reset Prometheus
    detects, never a counter that silently goes back."""
    rl, prom, state = with_state(redline_bin, procs, tmp_path)
    sel = 'traces_spanmetrics_calls_total{job="redline",service_name="restart",span_name="op",status_code="STATUS_CODE_UNSET"}'

    send(rl, unset=5, error=0)
    # The state is written every 10 s; Prometheus keeps scraping the same values meanwhile.
    helpers.wait_until(lambda: state_file(state) is not None, 20, "the state to be written", alive=rl.proc)
    helpers.wait_until(lambda: prom.scalar(sel) == 5.0, 20, "Prometheus to see 5")
    time.sleep(2)
    assert state_file(state) is not None, "scrapes of what the file holds keep it"
    crash(rl)
    rl.start()
    send(rl, unset=1, error=0)
    helpers.wait_until(lambda: prom.scalar(sel) == 6.0, 20, "Prometheus to see 6 (continued)", alive=rl.proc)
    assert prom.scalar(f"resets({sel}[5m])") == 0.0

    # Newer than the file, and scraped: the file goes before those values leave Redline.
    helpers.wait_until(lambda: state_file(state) is None, 20, "the outgrown state file to be deleted",
                       alive=rl.proc)
    crash(rl)
    rl.start()
    send(rl, unset=2, error=0)
    helpers.wait_until(lambda: prom.scalar(sel) == 2.0, 20, "Prometheus to see 2 (from zero)", alive=rl.proc)
    assert prom.scalar(f"resets({sel}[5m])") == 1.0, "the one decrease is a reset Prometheus counts"
    values = [v for _, v in prom.raw(f"{sel}[5m]")]
    distinct = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
    assert distinct == [5.0, 6.0, 2.0], values
    # The start time stayed through the first crash and moved with the reset.
    created = sel.replace("_total{", "_total_created{").replace('job="redline",', "")
    helpers.wait_until(lambda: prom.raw(f"{created}[5m]")[-1][1] > prom.raw(f"{created}[5m]")[0][1], 20,
                       "the new start time pushed")
    starts = [v for _, v in prom.raw(f"{created}[5m]")]
    distinct_starts = [v for i, v in enumerate(starts) if i == 0 or v != starts[i - 1]]
    assert len(distinct_starts) == 2 and distinct_starts[1] > distinct_starts[0], starts
    rl.stop()
