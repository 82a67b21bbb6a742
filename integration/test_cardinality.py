"""A cardinality attack against the redline binary (docs/architecture.md section 5: series are bounded).

Redline runs with `aggregation_cardinality_limit: 1000` and a `user.id` dimension. The test
floods it over gRPC with 200,000 spans that are each a new label set (unique span names, then
unique `user.id` values; every 10th span an error) and checks, against its own tally:

  - exactly 1000 label sets are kept; every later span is in the one overflow series
    `{otel_metric_overflow="true"}`, whose calls and errors are exactly the excess;
  - calls, errors and histogram counts across all series add up to what was sent;
  - resident memory after 200,000 attempted series is within a few MiB of what it was after
    10,000 (an unbounded map would have grown by ~50 MB);
  - /metrics stays the size of 1001 series (its scrape time is printed, not asserted).

REDLINE_CARDINALITY_FULL=1 adds a long run (meant for a release build:
REDLINE_BIN=target/release/redline): the default limit (no limit in the config) and 1,000,000
attempted series, printing RSS figures for BENCHMARKS.md.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import pytest
import requests

import helpers
from redline_config import PROMETHEUS, pipeline
from redline_run import TEXT_ACCEPT, Redline, encode_request, encode_span, raw_export

PREFIX = "traces_spanmetrics_"
OVERFLOW = (("otel_metric_overflow", "true"),)
BATCH = 1000


def config(limit: Optional[int]) -> str:
    """spanmetrics with the user.id dimension and `limit` series (None: the default limit)."""
    return pipeline(dimensions=["user.id"], exporters=[PROMETHEUS],
                    spanmetrics=f"aggregation_cardinality_limit: {limit}" if limit is not None else "")


class Flood:
    """Sends unique label sets and keeps the tally of what was sent."""

    def __init__(self, rl: Redline):
        self.rl = rl
        self.channel = rl.grpc_channel()
        self.export = raw_export(self.channel)
        self.sent = 0
        self.errors = 0
        self.error_seqs: list = []

    def send(self, n: int):
        """n more spans, each a new label set: the first half of the run varies the span name,
        the rest the user.id dimension."""
        end = self.sent + n
        while self.sent < end:
            batch = []
            for seq in range(self.sent, min(self.sent + BATCH, end)):
                error = seq % 10 == 0
                if seq % 2 == 0:
                    batch.append(encode_span(seq, f"GET /item/{seq}", {"user.id": "u"}, error))
                else:
                    batch.append(encode_span(seq, "GET /user", {"user.id": f"u{seq}"}, error))
                if error:
                    self.errors += 1
                    self.error_seqs.append(seq)
            self.export(encode_request("flood", batch), timeout=60)
            self.sent += len(batch)

    def close(self):
        self.channel.close()


def families(rl: Redline) -> dict:
    """calls, errors and histogram counts by label set (overflow included)."""
    text = requests.get(rl.metrics_url, headers=TEXT_ACCEPT, timeout=60).text
    out = {"calls": {}, "errors": {}, "count": {}, "lines": text.count("\n")}
    for name, labels, v in helpers.parse_text_metrics(text):
        fam = {PREFIX + "calls_total": "calls", PREFIX + "errors_total": "errors",
               PREFIX + "duration_milliseconds_count": "count"}.get(name)
        if fam:
            out[fam][helpers.label_key(labels)] = v
    return out


def wait_total(rl: Redline, want: int, timeout: float = 60):
    helpers.wait_until(lambda: sum(families(rl)["calls"].values()) == want, timeout,
                       f"calls across all series == {want}", interval=0.5, alive=rl.proc)


def scrape_seconds(rl: Redline) -> float:
    """How long one /metrics scrape takes: printed, not asserted (it depends on the machine)."""
    t0 = time.monotonic()
    requests.get(rl.metrics_url, headers=TEXT_ACCEPT, timeout=60).raise_for_status()
    return time.monotonic() - t0


def test_flood_is_bounded_by_the_limit(redline_bin, procs, tmp_path):
    limit = 1000
    rl = Redline(procs, redline_bin, tmp_path, config(limit)).start()
    flood = Flood(rl)
    try:
        flood.send(10_000)
        wait_total(rl, 10_000)
        rss_10k = rl.rss_kib()

        flood.send(190_000)
        wait_total(rl, 200_000, timeout=120)
        rss_200k = rl.rss_kib()

        fam = families(rl)
        scrape_s = scrape_seconds(rl)
    finally:
        flood.close()

    calls, errors, count = fam["calls"], fam["errors"], fam["count"]
    kept = {k: v for k, v in calls.items() if k != OVERFLOW}
    print(f"\ncardinality flood: {flood.sent} spans, {len(kept)} series kept + overflow "
          f"{calls.get(OVERFLOW)}; RSS {rss_10k} KiB after 10k attempted series, {rss_200k} KiB "
          f"after 200k (+{rss_200k - rss_10k} KiB); /metrics {fam['lines']} lines in {scrape_s * 1000:.0f} ms")

    # The first `limit` label sets are kept, one span each; everything after is overflow.
    assert len(kept) == limit, f"{len(kept)} label sets kept, limit {limit}"
    assert all(v == 1.0 for v in kept.values())
    assert calls[OVERFLOW] == flood.sent - limit
    assert sum(calls.values()) == flood.sent
    # Errors: those among the first `limit` spans are in their own series, the rest in overflow.
    kept_errors = sum(1 for s in flood.error_seqs if s < limit)
    assert errors.get(OVERFLOW) == flood.errors - kept_errors
    assert sum(errors.values()) == flood.errors
    assert count.get(OVERFLOW) == flood.sent - limit and sum(count.values()) == flood.sent

    # Memory: 190,000 more attempted series cost no series memory. An unbounded map holds
    # ~250 bytes per series plus the interned names (~50 MB here); allow 16 MiB of noise.
    assert rss_200k - rss_10k < 16 * 1024, f"RSS grew {rss_200k - rss_10k} KiB from 10k to 200k attempted series"
    # /metrics: 1001 label sets, each calls + errors + 16 buckets + +Inf + sum + count.
    assert fam["lines"] <= (limit + 1) * 21 + 20, f"/metrics has {fam['lines']} lines"
    assert rl.alive()
    rl.stop()


@pytest.mark.skipif(os.environ.get("REDLINE_CARDINALITY_FULL") != "1",
                    reason="long run: set REDLINE_CARDINALITY_FULL=1 (with a release REDLINE_BIN)")
def test_million_attempted_series_with_default_limit(redline_bin, procs, tmp_path):
    rl = Redline(procs, redline_bin, tmp_path, config(None)).start()
    flood = Flood(rl)
    rss = {"start": rl.rss_kib()}
    try:
        for mark in (100_000, 1_000_000):
            flood.send(mark - flood.sent)
            wait_total(rl, mark, timeout=600)
            rss[mark] = rl.rss_kib()
        fam = families(rl)
        scrape_s = scrape_seconds(rl)
    finally:
        flood.close()
    calls = fam["calls"]
    kept = len(calls) - (1 if OVERFLOW in calls else 0)
    print(f"\n1M attempted series, default limit: kept {kept}, overflow {calls.get(OVERFLOW)}; VmRSS "
          f"start {rss['start']} KiB, at 100k {rss[100_000]} KiB, at 1M {rss[1_000_000]} KiB; "
          f"/metrics {fam['lines']} lines in {scrape_s * 1000:.0f} ms")
    assert kept == 100_000
    assert calls[OVERFLOW] == 900_000 and sum(calls.values()) == 1_000_000
    assert rss[1_000_000] - rss[100_000] < 32 * 1024
    rl.stop()
