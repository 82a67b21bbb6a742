"""Many large bodies at once: the receiver's byte budget keeps Redline under its memory limit.

The `memory_limiter` samples resident memory and is consulted once a request is whole, so a
crowd of large bodies arriving together used to be read (all of them, in full) before it
could refuse anything. Now the receiver takes each body's declared length from a budget (the
limiter's spike allowance) before reading it, and refuses what does not fit, retryably.

Redline runs with `memory_limiter` (limit = idle RSS + 48 MiB, spike 16 MiB: the body budget).
48 clients each POST a valid 2 MiB request (96 MiB in all) over OTLP/HTTP at once, trickling
their bodies in over ~1 s so that all of them are in flight together. Asserted: every answer
is 200 or 503 with Retry-After (nothing else, no reset connection); the accepted ones are
counted exactly, nothing refused is; and Redline's peak RSS (VmHWM) stays under the limit.
Before the budget, the 48 bodies were all buffered at once (~96 MiB over idle).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import helpers
from redline_config import pipeline
from redline_run import Redline, encode_request, encode_span

MIB = 1024 * 1024
CLIENTS = 48
BODY_MIB = 2
SPIKE_MIB = 16
HEADROOM_MIB = 48
CALLS = "traces_spanmetrics_calls_total"

CONFIG = pipeline(
    processors="""
        memory_limiter:
          check_interval: 100ms
          limit_mib: {limit}
          spike_limit_mib: {spike}
    """,
)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def slow_post(port: int, body: bytes, results: list, start: threading.Barrier):
    """POSTs `body` with its Content-Length declared up front, sending it in 64 pieces over
    ~1 s; appends (status, retry-after) or the error to `results`."""
    head = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-protobuf\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    piece = len(body) // 64 + 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            start.wait(timeout=30)
            s.sendall(head)
            for i in range(0, len(body), piece):
                s.sendall(body[i:i + piece])
                time.sleep(0.015)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        lines = answer.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        results.append((status, headers.get("retry-after")))
    except (OSError, ValueError, IndexError) as e:
        results.append(repr(e))


def test_concurrent_large_bodies_stay_within_the_memory_limit(redline_bin, procs, sink, tmp_path):
    def start(limit_mib: int, name: str) -> Redline:
        return Redline(procs, redline_bin, tmp_path, CONFIG, name=name, sink=sink.port,
                       limit=limit_mib, spike=SPIKE_MIB).start()

    # Idle RSS from a first run with a huge limit: the real one is set relative to what this
    # build on this machine uses.
    probe = start(100_000, "redline-probe")
    idle_mib = probe.rss_kib() // 1024
    probe.stop()
    limit_mib = idle_mib + HEADROOM_MIB
    rl = start(limit_mib, "redline")

    body = encode_request("budget", [encode_span(1, "big", {"blob": "x" * (BODY_MIB * MIB)})])
    results: list = []
    barrier = threading.Barrier(CLIENTS)
    threads = [threading.Thread(target=slow_post, args=(rl.http, body, results, barrier)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    peak_mib = peak_rss_kib(rl.proc.pid) / 1024
    report = f"results: {results}\nidle {idle_mib} MiB, limit {limit_mib} MiB, peak {peak_mib:.0f} MiB"

    assert len(results) == CLIENTS, report
    assert all(isinstance(r, tuple) for r in results), report
    accepted = sum(1 for status, _ in results if status == 200)
    refused = [r for r in results if r[0] != 200]
    assert all(r == (503, "1") for r in refused), report
    assert accepted >= 1 and refused, report
    print(report)

    assert peak_mib < limit_mib, report
    k = helpers.label_key({"service_name": "budget", "span_name": "big", "span_kind": "SPAN_KIND_SERVER",
                           "status_code": "STATUS_CODE_UNSET"})
    helpers.wait_until(lambda: rl.series(CALLS).get(k) == float(accepted), 20,
                       "the accepted bodies counted", alive=rl.proc)
    helpers.wait_until(lambda: sink.span_count() == accepted, 30, "the accepted bodies forwarded")
