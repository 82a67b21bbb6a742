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

import grpc
import pytest
import requests

import helpers
from redline_run import EXPORT, Redline, encode_request, encode_span

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}

connectors:
  spanmetrics:
    namespace: traces.spanmetrics

exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}

service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

SEL = 'service_name="restart",span_name="op"'
SERIES = {
    # PromQL selector: (sent before the restart, sent after)
    f'traces_spanmetrics_calls_total{{{SEL},status_code="STATUS_CODE_UNSET"}}': (6, 2),
    f'traces_spanmetrics_calls_total{{{SEL},status_code="STATUS_CODE_ERROR"}}': (4, 1),
    f"traces_spanmetrics_errors_total{{{SEL}}}": (4, 1),
    f'traces_spanmetrics_duration_milliseconds_count{{{SEL},status_code="STATUS_CODE_UNSET"}}': (6, 2),
}


class Prom:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def _get(self, q: str) -> dict:
        r = requests.get(f"{self.base}/api/v1/query", params={"query": q}, timeout=5)
        body = r.json()
        assert r.status_code == 200 and body.get("status") == "success", f"{q!r}: {r.status_code} {body}"
        return body["data"]

    def scalar(self, q: str):
        """The value of a one-element instant vector, None when empty."""
        data = self._get(q)
        assert data["resultType"] == "vector", data
        assert len(data["result"]) <= 1, f"{q!r} matched several series: {data['result']}"
        return float(data["result"][0]["value"][1]) if data["result"] else None

    def raw(self, q: str) -> list:
        """Raw samples [(t, v)] of a range selector with one series."""
        data = self._get(q)
        assert data["resultType"] == "matrix" and len(data["result"]) == 1, data
        return [(float(t), float(v)) for t, v in data["result"][0]["values"]]


def send(rl: Redline, unset: int, error: int):
    spans = [encode_span(time.time_ns() + i, "op") for i in range(unset)]
    spans += [encode_span(time.time_ns() + 1000 + i, "op", error=True) for i in range(error)]
    with grpc.insecure_channel(f"127.0.0.1:{rl.grpc}") as ch:
        ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)(
            encode_request("restart", spans), timeout=10)


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
    rl = Redline(procs, redline_bin, tmp_path, CONFIG)
    rl.start()
    prom_port = helpers.free_port()
    (tmp_path / "prometheus.yml").write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: redline
    static_configs:
      - targets: ['127.0.0.1:{rl.prom}']
""")
    prom_proc = procs.start("prometheus", [
        "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
    ])
    prom = Prom(prom_port)
    helpers.wait_until(lambda: requests.get(f"{prom.base}/-/ready", timeout=1).status_code == 200,
                       30, "prometheus /-/ready", alive=prom_proc)
    helpers.wait_until(lambda: prom.scalar('up{job="redline"}') == 1.0, 20, "prometheus to scrape redline",
                       alive=prom_proc)
    return rl, prom


def settled(prom: Prom, which: int, scrapes: int = 3):
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
    data = prom._get('count by (__name__) ({job="redline"})')
    names = {r["metric"]["__name__"] for r in data["result"]}
    assert not any(n.endswith("_created") for n in names), names
    rl.stop()
