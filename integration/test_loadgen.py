"""loadgen end to end (docs/architecture.md section 6): `loadgen sink` stands in for Tempo, Redline runs
the reference pipeline (spanmetrics with the cdn.cache.hit dimension, namespace
traces.spanmetrics, OTLP forwarding to the sink, Prometheus exporter), and `loadgen run
--verify` checks every series exactly against its own tally and the spans that reached the sink.

Environment:
  LOADGEN_BIN      the loadgen binary (default target/debug/loadgen; `cargo test --workspace`
                   or `cargo build -p redline-loadgen` builds it)
  REDLINE_LONG=1   also run the 10M-span test (use release binaries:
                   cargo build --release -p redline -p redline-loadgen
                   REDLINE_BIN=target/release/redline LOADGEN_BIN=target/release/loadgen \
                   REDLINE_LONG=1 .venv/bin/pytest -q integration/test_loadgen.py)
"""

from __future__ import annotations

import json
import os

import pytest

import helpers
from loadgen_run import LoadgenSink, verified_run
from redline_config import REFERENCE
from redline_run import Redline

CALLS = "traces_spanmetrics_calls_total"


class Stack:
    pass


@pytest.fixture(scope="module")
def stack(redline_bin, loadgen_bin, module_procs, tmp_path_factory):
    s = Stack()
    s.work = tmp_path_factory.mktemp("loadgen")
    s.loadgen = loadgen_bin
    s.sink = LoadgenSink(module_procs, loadgen_bin, "--check")
    s.redline = Redline(module_procs, redline_bin, s.work, REFERENCE, args=(), sink=s.sink.port).start()
    yield s
    assert s.redline.alive(), f"redline died during the loadgen tests:\n{s.redline.proc.log_text()}"
    assert s.sink.proc.poll() is None, f"loadgen sink died:\n{s.sink.proc.log_text()}"


def run_loadgen(s: Stack, name: str, args: list, timeout: float = 120):
    """Runs `loadgen run` against the stack with the verification flags of this config;
    returns (exit code, JSON report, output)."""
    return verified_run(s.loadgen, s.redline.metrics_url, s.sink, s.work / f"{name}.json", [
        "--dimension", "cdn.cache.hit", "--pid", s.redline.proc.pid,
        # Redline answers UNAVAILABLE when its pipeline is full: resend like an OTLP exporter,
        # so that every span is eventually accepted (still checked exactly either way).
        "--retries", "30", "--backoff", "5ms", *args,
    ], timeout=timeout)


def assert_exact(rep: dict, spans: int, out: str):
    v = rep["verify"]
    assert v["ok"], out + json.dumps(v, indent=1)[:4000]
    assert rep["sent"]["spans"] == spans, out
    assert rep["accepted"]["spans"] == spans, out
    assert rep["refused"]["spans"] == 0 and rep["uncertain_requests"] == 0 and rep["rejected_spans"] == 0, out
    assert v["expected_spans"] == spans
    assert v["counted_spans"] == spans
    assert v["sink"]["ok"] and v["sink"]["received_spans"] == spans and v["sink"]["expected_spans"] == spans
    assert v["mismatch_count"] == 0 and v["mismatches"] == []
    assert v["counted_errors"] == v["expected_errors"] > 0
    assert v["sink"]["counts"]["duplicate_ids"] == 0
    assert v["sink"]["counts"]["invalid_ids"] == 0


def test_full_speed_grpc_is_exact(stack):
    """20k spans at full speed over 4 gRPC connections (a few seconds on a debug build):
    every series of 1,000+ checked exactly, and every span reached the sink once."""
    before = stack.sink.counts()["spans"]
    code, rep, out = run_loadgen(stack, "grpc", [
        "--endpoint", f"127.0.0.1:{stack.redline.grpc}", "--spans", "20000", "--services", "14",
        "--service-prefix", "lg-", "--seed", "7",
    ])
    assert code == 0, out
    assert_exact(rep, 20_000, out)
    assert rep["verify"]["series_expected"] >= 1000, out
    assert rep["latency"]["measured_from"] == "send"
    assert rep["collector"]["pid"] == stack.redline.proc.pid and rep["collector"]["peak_rss_bytes"] > 0
    # The sink's own counter, read independently of loadgen.
    assert stack.sink.counts()["spans"] - before == 20_000

    # Independently of loadgen's parser: the exposition has those series, with cdn_cache_hit
    # true, false and absent, and the sum of calls over loadgen's services is the span count.
    calls = [(lb, v) for _, lb, v in stack.redline.samples(CALLS) if lb["service_name"].startswith("lg-")]
    assert len(calls) == rep["verify"]["series_expected"]
    assert sum(v for _, v in calls) == 20_000
    assert {lb.get("cdn_cache_hit") for lb, _ in calls} == {"true", "false", None}
    assert any('"' in lb["span_name"] for lb, _ in calls), "escaped span names are part of the load"


def test_fixed_rate_http_gzip_on_a_running_instance(stack):
    """Open loop over OTLP/HTTP with gzip against the same, already counting Redline: the
    baseline scrape makes the check work on deltas."""
    code, rep, out = run_loadgen(stack, "http", [
        "--protocol", "http", "--endpoint", f"http://127.0.0.1:{stack.redline.http}", "--gzip",
        "--rate", "4000", "--duration", "2s", "--spans-per-request", "50", "--service-prefix", "lg-",
        "--seed", "8",
    ])
    assert code == 0, out
    assert_exact(rep, 8_000, out)
    assert rep["latency"]["measured_from"] == "intended"
    assert rep["target_spans_per_second"] == 4000


def test_a_wrong_expectation_fails_with_a_report(stack):
    """Verification is not vacuous: told the collector has no dimensions, loadgen expects
    series without cdn_cache_hit, finds others, and exits 1 with the mismatches listed."""
    report = stack.work / "wrong.json"
    r = helpers.run([
        stack.loadgen, "run", "--verify", "--namespace", "traces.spanmetrics",
        "--metrics-url", stack.redline.metrics_url, "--endpoint", f"127.0.0.1:{stack.redline.grpc}",
        "--spans", "2000", "--service-prefix", "lg-wrong-", "--settle-timeout", "2s",
        "--max-mismatches", "3", "--json", report,
    ], timeout=60)
    assert r.returncode == 1, f"{r.stdout}\n{r.stderr}"
    rep = json.loads(report.read_text())
    v = rep["verify"]
    assert not v["ok"] and v["mismatch_count"] > 3 and len(v["mismatches"]) == 3
    assert "FAILED" in r.stdout and "counts did not settle" in r.stdout
    # What was sent was still counted in full, only in other series.
    assert v["counted_spans"] == rep["accepted"]["spans"] == 2000


@pytest.mark.skipif(os.environ.get("REDLINE_LONG") != "1", reason="long run: set REDLINE_LONG=1 (release binaries)")
def test_long_ten_million_spans(stack):
    """10M spans at full speed, verified exactly (minutes; use release builds)."""
    code, rep, out = run_loadgen(stack, "long", [
        "--endpoint", f"127.0.0.1:{stack.redline.grpc}", "--spans", "10000000", "--service-prefix", "lg-long-",
        "--connections", "4", "--concurrency", "8", "--settle-timeout", "60s",
    ], timeout=3600)
    print(out)
    assert code == 0, out
    assert_exact(rep, 10_000_000, out)
