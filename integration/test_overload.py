"""Overload (docs/architecture.md section 5): a memory_limiter keeps Redline inside its memory budget
when Tempo is slower than the intake, and the refusals it causes are retryable and lose nothing.

Redline runs the traces pipeline with `memory_limiter` (budget = idle RSS + 24 MiB, spike
8 MiB) in front of spanmetrics and an OTLP exporter whose queue is large but whose only sender
goes to a `loadgen sink --delay` (a slow Tempo), in small requests: the queue, and so the RSS,
grows under load until the limiter refuses. `loadgen run --verify` resends refused requests
(UNAVAILABLE + RetryInfo) and checks every series and the sink's count exactly. 60k spans
drain in ~25 s on a debug build (the sink takes 500 spans per 200 ms).

Environment: REDLINE_BIN, LOADGEN_BIN (default target/debug/loadgen), as test_loadgen.py.
"""

from __future__ import annotations

import json

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2

from loadgen_run import LoadgenSink, verified_run
from redline_config import PROMETHEUS, otlp_tempo, pipeline
from redline_run import Redline, raw_export, request, span

MIB = 1024 * 1024
SPIKE_MIB = 8
HEADROOM_MIB = 24
# The limiter refuses at the soft limit (budget - spike) and counts what it admits between
# two 100 ms samples against it, so the spike allowance (8 MiB) only has to cover what the
# admitted bytes cost beyond their own size (decoding, queueing, series) until the next
# sample: peak RSS must stay under the budget itself.

CONFIG = pipeline(
    http=False,
    processors="""
        memory_limiter:
          check_interval: 100ms
          limit_mib: {limit}
          spike_limit_mib: {spike}
    """,
    exporters=[otlp_tempo("""
        timeout: 30s
        sending_queue:
          num_consumers: 1
          queue_size: 100000
          batch:
            flush_timeout: 10ms
            sizer: items
            min_size: 0
            max_size: 500
    """), PROMETHEUS],
)


def test_memory_limiter_refuses_then_everything_arrives(redline_bin, loadgen_bin, procs, tmp_path):
    sink = LoadgenSink(procs, loadgen_bin, "--check", "--delay", "200ms")

    # Idle RSS is measured on a first run with a huge budget, so the real budget is set
    # relative to what this build on this machine actually uses.
    def start(limit_mib: int, name: str) -> Redline:
        return Redline(procs, redline_bin, tmp_path, CONFIG, name=name, args=(),
                       sink=sink.port, limit=limit_mib, spike=SPIKE_MIB).start()

    probe = start(100_000, "redline-probe")
    idle_kb = probe.rss_kib()
    probe.stop()
    budget_mib = idle_kb // 1024 + HEADROOM_MIB
    rl = start(budget_mib, "redline")
    redline = rl.proc

    spans = 60_000
    code, rep, out = verified_run(loadgen_bin, rl.metrics_url, sink, tmp_path / "overload.json", [
        "--pid", redline.pid, "--endpoint", f"127.0.0.1:{rl.grpc}", "--spans", str(spans), "--seed", "11",
        "--connections", "4", "--concurrency", "8",
        "--retries", "50", "--backoff", "20ms", "--settle-timeout", "60s",
    ])
    out += "\n"
    assert rep is not None, out
    out += json.dumps({k: rep.get(k) for k in ("sent", "accepted", "refused", "retries",
                                                "refused_by_status", "collector")}, indent=1)

    # The limiter did refuse, with a retryable status.
    assert rep["retries"] > 0 or "UNAVAILABLE" in rep["refused_by_status"], out
    assert "memory_limiter: over the soft limit" in redline.log_text(), out
    # ...and reopened once the queue drained: freed memory is released, so the limiter does
    # not stay shut on memory glibc keeps but nothing uses (no MALLOC_* tuning here).
    assert "memory_limiter: below the soft limit, accepting data again" in redline.log_text(), out

    # ...and nothing was lost or double counted.
    assert code == 0, out
    v = rep["verify"]
    assert v["ok"], out + json.dumps(v, indent=1)[:4000]
    assert rep["accepted"]["spans"] == spans and rep["rejected_spans"] == 0, out
    assert v["counted_spans"] == v["expected_spans"] == spans, out
    assert v["sink"]["ok"] and v["sink"]["received_spans"] == spans, out

    # ...and memory stayed within the budget.
    peak = rep["collector"]["peak_rss_bytes"]
    assert 0 < peak <= budget_mib * MIB, \
        f"peak {peak / MIB:.1f} MiB, budget {budget_mib} MiB, idle {idle_kb / 1024:.1f} MiB\n" + out
    assert redline.poll() is None, redline.log_text()
    print(f"peak {peak / MIB:.1f} MiB, budget {budget_mib} MiB, idle {idle_kb / 1024:.1f} MiB, retries {rep['retries']}")


SHUT_CONFIG = pipeline(
    processors="""
        memory_limiter:
          check_interval: 250ms
          limit_mib: 1
    """,
    exporters=[PROMETHEUS],
    telemetry=True,
)


def retry_delay(status_bytes: bytes) -> float:
    """The RetryInfo delay, in seconds, inside an encoded google.rpc.Status."""
    st = status_pb2.Status.FromString(status_bytes)
    for detail in st.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    raise AssertionError(f"no RetryInfo in {st}")


def test_a_shut_limiter_refuses_both_protocols_retryably_and_counts_it(redline_bin, procs, tmp_path):
    # 1 MiB is below any process's RSS: the limiter refuses everything, deterministically.
    rl = Redline(procs, redline_bin, tmp_path, SHUT_CONFIG).start()

    # gRPC: UNAVAILABLE with RetryInfo (the OTLP spec's retryable answer) = check_interval.
    with rl.grpc_channel() as ch:
        with pytest.raises(grpc.RpcError) as refused:
            raw_export(ch)(request("svc", [span("grpc-op") for _ in range(3)]).SerializeToString(), timeout=10)
    err = refused.value
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err
    details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert details, f"no grpc-status-details-bin: {err.trailing_metadata()}"
    assert retry_delay(details) == 0.25
    assert "memory_limiter" in err.details(), err.details()

    # HTTP: 503 with Retry-After (whole seconds, rounded up) and a google.rpc.Status body.
    r = requests.post(rl.http_url, data=request("svc", [span("http-op") for _ in range(5)]).SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.headers.get("Retry-After") == "1", r.headers
    assert "memory_limiter" in status_pb2.Status.FromString(r.content).message

    # Refused spans are counted as refused, per transport, and nothing reached spanmetrics.
    s = rl.self_telemetry()
    assert s.value("otelcol_receiver_refused_spans", receiver="otlp", transport="grpc") == 3
    assert s.value("otelcol_receiver_refused_spans", receiver="otlp", transport="http") == 5
    assert s.value("otelcol_receiver_accepted_spans", receiver="otlp", transport="grpc") == 0
    assert s.value("otelcol_receiver_accepted_spans", receiver="otlp", transport="http") == 0
    assert rl.samples("traces_spanmetrics_calls_total") == []
    assert rl.alive(), rl.proc.log_text()
