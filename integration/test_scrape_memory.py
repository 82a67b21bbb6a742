"""A plain (no gzip) /metrics scrape streams: its body never exists in one piece.

Redline holds N span-metrics series (unique span names; each series is a calls counter and a
16-bucket duration histogram, ~4 KiB of text). Right before one `GET /metrics` without
`Accept-Encoding`, the process' peak RSS is reset (`echo 5 > /proc/PID/clear_refs` resets
VmHWM to the current RSS); the body is read in 64 KiB pieces with short pauses, as a slow
scraper would, then:

  - VmHWM - VmRSS(before) <= 32 MiB (rendering the whole body first would add the body's
    size: ~80 MiB at 20k series, ~400 MiB at 100k);
  - the body parses and has exactly N series of calls.

N is 100,000 (~330 MiB of text; ~50 s with a debug build on two cores, most of it sending
the spans and waiting for the series); REDLINE_SCRAPE_MEMORY_SERIES=20000 makes a quicker run
with the same bound.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import requests

import helpers
from redline_config import PROMETHEUS, pipeline
from redline_run import Redline, encode_request, encode_span, raw_export

SERIES = int(os.environ.get("REDLINE_SCRAPE_MEMORY_SERIES", "100000"))
BATCH = 1000
PEAK_BUDGET_KIB = 32 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def calls_total(text: str) -> tuple[int, float]:
    """Series of traces_spanmetrics_calls_total and the sum of their values."""
    series, total = 0, 0.0
    for name, _, v in helpers.parse_text_metrics(text):
        if name == "traces_spanmetrics_calls_total":
            series += 1
            total += v
    return series, total


def test_plain_scrape_streams_in_bounded_memory(redline_bin, procs, tmp_path):
    rl = Redline(procs, redline_bin, tmp_path, pipeline(exporters=[PROMETHEUS])).start()
    channel = rl.grpc_channel()
    export = raw_export(channel)
    try:
        for start in range(0, SERIES, BATCH):
            spans = [encode_span(seq, f"GET /item/{seq}") for seq in range(start, min(start + BATCH, SERIES))]
            export(encode_request("memory", spans), timeout=60)
    finally:
        channel.close()

    def all_counted() -> bool:
        r = requests.get(rl.metrics_url, headers={"Accept-Encoding": "gzip"}, timeout=300)
        return calls_total(r.text) == (SERIES, float(SERIES))

    # gzip scrapes while waiting: small on the wire, and they settle the allocator's pools.
    helpers.wait_until(all_counted, 300, f"{SERIES} series of calls", interval=1, alive=rl.proc)

    pid = rl.proc.pid
    rss_before = status_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    t0 = time.monotonic()
    body = bytearray()
    with requests.get(rl.metrics_url, headers={"Accept-Encoding": "identity"}, stream=True,
                      timeout=300) as r:
        assert r.status_code == 200
        assert "Content-Encoding" not in r.headers
        for piece in r.iter_content(chunk_size=64 * 1024):
            body.extend(piece)
            time.sleep(0.0005)
    seconds = time.monotonic() - t0
    peak = status_kib(pid, "VmHWM")
    grew = peak - rss_before
    print(f"\nplain scrape of {SERIES} series: {len(body) / 2**20:.1f} MiB in {seconds:.1f} s; "
          f"VmRSS before {rss_before} KiB, peak {peak} KiB (+{grew} KiB)")

    series, total = calls_total(body.decode())
    assert (series, total) == (SERIES, float(SERIES))
    assert grew <= PEAK_BUDGET_KIB, \
        f"peak RSS grew {grew} KiB during a {len(body) >> 20} MiB scrape (budget {PEAK_BUDGET_KIB} KiB)"
    assert rl.alive()
    rl.stop()
