"""Print the RED series a running Redline serves, as a small table.

    python integration/red_report.py --url http://127.0.0.1:9464/metrics [--wait-total N]

Per service and span name: calls, errors, error %, and p50/p95 estimated from the duration
histogram buckets the way PromQL's histogram_quantile does. With --wait-total N it first waits
(bounded by --timeout) until the calls add up to N.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers import parse_float, parse_text_metrics  # noqa: E402
from redmodel import histogram_quantile  # noqa: E402


def scrape(url: str) -> list:
    r = requests.get(url, headers={"Accept": "text/plain;version=0.0.4"}, timeout=5)
    r.raise_for_status()
    return parse_text_metrics(r.text)


def families(samples, ns="traces_spanmetrics_"):
    calls, errors = defaultdict(float), defaultdict(float)
    buckets = defaultdict(lambda: defaultdict(float))
    sums = defaultdict(float)
    hits = defaultdict(lambda: [0.0, 0.0])
    for name, lb, v in samples:
        if not name.startswith(ns):
            continue
        k = (lb.get("service_name", "?"), lb.get("span_name", "?"))
        fam = name[len(ns):]
        if fam == "calls_total":
            calls[k] += v
            if "cdn_cache_hit" in lb:
                hits[k][1] += v
                hits[k][0] += v if lb["cdn_cache_hit"] == "true" else 0
        elif fam == "errors_total":
            errors[k] += v
        elif fam.endswith("_bucket"):
            buckets[k][parse_float(lb["le"])] += v
        elif fam.endswith("_sum"):
            sums[k] += v
    return calls, errors, buckets, sums, hits


def fmt_ms(v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:9464/metrics")
    ap.add_argument("--wait-total", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=15)
    args = ap.parse_args(argv)

    deadline = time.monotonic() + args.timeout
    while True:
        samples = scrape(args.url)
        calls, errors, buckets, sums, hits = families(samples)
        total = sum(calls.values())
        if total >= args.wait_total or time.monotonic() >= deadline:
            break
        time.sleep(0.3)
    if args.wait_total and total != args.wait_total:
        print(f"WARNING: Redline counted {total:.0f} spans, {args.wait_total} were sent", file=sys.stderr)

    head = f"{'service':16s} {'span':14s} {'calls':>7s} {'errors':>7s} {'err%':>6s} {'avg ms':>8s} {'p50 ms':>8s} {'p95 ms':>8s}"
    print(head)
    print("-" * len(head))
    for k in sorted(calls):
        c, e = calls[k], errors.get(k, 0.0)
        b = buckets.get(k, {})
        print(f"{k[0]:16s} {k[1]:14s} {c:7.0f} {e:7.0f} {100 * e / c if c else 0:6.1f} "
              f"{fmt_ms(sums[k] / c if c else math.nan):>8s} {fmt_ms(histogram_quantile(0.5, b)):>8s} "
              f"{fmt_ms(histogram_quantile(0.95, b)):>8s}")
    for k, (hit, allc) in sorted(hits.items()):
        if allc:
            print(f"cache hit ratio {k[0]} {k[1]}: {hit:.0f}/{allc:.0f} = {100 * hit / allc:.1f}%")
    if not hits and any(k[1] == "cdn.file.read" for k in calls):
        print("cache hit ratio: n/a (no cdn_cache_hit label: the running config has no cdn.cache.hit dimension;"
              " the reference otelcol config adds it)")
    print(f"total: {total:.0f} spans counted in {len(calls)} service/span groups "
          f"({sum(1 for n, _, _ in samples if n.startswith('traces_spanmetrics_'))} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
