"""Scrape size and time of ~100k span-metrics series: classic histograms against native ones.

One Redline per histogram kind, the same traffic: the spanmetrics connector with its default
explicit buckets, or with `histogram: {exponential: {max_size: 160}}` (otelcol's key; the
duration then is a base-2 exponential histogram, served as a native histogram). loadgen sends
`--spans` spans over `--services` x `--span-names` span names (each name its own series), then
each exposition is scraped `--scrapes` times: text 0.0.4, OpenMetrics and protobuf, plain and
gzip. Reported per kind and format: series, body bytes, median wall time of a scrape, and
Redline's CPU per scrape. The native rows only exist in protobuf: text formats cannot carry a
native histogram and show its `+Inf` bucket, `_sum` and `_count` only.

    python3 benches/compare/scrape_native.py                     # ~100k series
    python3 benches/compare/scrape_native.py --spans 2m --scrapes 9

Uses target/release/{redline,loadgen} (or --bin-dir). Only the standard library.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import procs
from procs import CompareError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    aggregation_cardinality_limit: 0
    metrics_expiration: 0s
{histogram}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

KINDS = {
    "classic": "",
    "native": "    histogram:\n      exponential:\n        max_size: 160",
}

FORMATS = {
    "text": "text/plain;version=0.0.4",
    "openmetrics": "application/openmetrics-text;version=1.0.0",
    "protobuf": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benches/compare/scrape_native.py", description=__doc__.split("\n")[0])
    ap.add_argument("--spans", default="1m")
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--span-names", type=int, default=2000)
    ap.add_argument("--templates", type=int, default=6000)
    ap.add_argument("--scrapes", type=int, default=5)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    a = ap.parse_args()
    a.span_count = procs.parse_count(a.spans)
    return a


def scrape(url: str, accept: str, gz: bool) -> tuple[bytes, float]:
    headers = {"Accept": accept}
    if gz:
        headers["Accept-Encoding"] = "gzip"
    t0 = time.monotonic()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=300) as r:
        body = r.read()
    return body, time.monotonic() - t0


def count_series(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(b"traces_spanmetrics_calls_total"))


def measure(args, work: Path, kind: str) -> list[dict]:
    grpc, prom = procs.free_port(), procs.free_port()
    cfg = work / f"{kind}.yaml"
    cfg.write_text(CONFIG.format(grpc=grpc, prom=prom, histogram=KINDS[kind]))
    log = work / f"{kind}.log"
    p = procs.start([work / "bin" / "redline", "--config", cfg], log)
    rows = []
    try:
        procs.wait_until("redline", lambda: procs.tcp_open(grpc) and procs.tcp_open(prom), p, 30, log)
        lg = [work / "bin" / "loadgen", "run", "-e", f"127.0.0.1:{grpc}", "--spans", str(args.span_count),
              "--services", str(args.services), "--span-names", str(args.span_names),
              "--templates", str(args.templates), "--error-ratio", "0", "--attributes", "4", "-q"]
        lp = procs.start(lg, work / f"{kind}.loadgen.log")
        lp.wait(timeout=900)
        if lp.returncode != 0:
            raise CompareError(f"{kind}: loadgen exit {lp.returncode}")
        url = f"http://127.0.0.1:{prom}/metrics"
        series = count_series(scrape(url, FORMATS["text"], False)[0])
        for fmt, accept in FORMATS.items():
            for gz in (False, True):
                times, cpus, size = [], [], 0
                for _ in range(args.scrapes):
                    c0 = procs.cpu_seconds(p.pid)
                    body, took = scrape(url, accept, gz)
                    cpus.append(procs.cpu_seconds(p.pid) - c0)
                    times.append(took)
                    size = len(body)
                    if gz:
                        gzip.decompress(body)
                rows.append({"kind": kind, "format": fmt, "gzip": gz, "series": series, "bytes": size,
                             "median_ms": statistics.median(times) * 1e3,
                             "median_cpu_ms": statistics.median(cpus) * 1e3})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        rows.append({"kind": kind, "peak_rss_mib": procs.peak_rss_bytes(p.pid) / 2**20})
    finally:
        procs.stop(p)
    return rows


def main() -> int:
    args = parse_args()
    work = procs.prepare_run("scrape_native", args.bin_dir, HERE)
    rows = []
    for kind in KINDS:
        rows += measure(args, work, kind)
    (work / "rows.json").write_text(json.dumps(rows, indent=2))
    print("| histogram | format | gzip | series | body | scrape (median) | Redline CPU per scrape |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "format" not in r:
            continue
        print(f"| {r['kind']} | {r['format']} | {'yes' if r['gzip'] else 'no'} | {r['series']:,} | "
              f"{r['bytes'] / 2**20:,.1f} MiB | {r['median_ms']:,.0f} ms | {r['median_cpu_ms']:,.0f} ms |")
    for r in rows:
        if "peak_rss_mib" in r:
            print(f"peak RSS ({r['kind']}): {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as e:
        print(f"scrape_native: {e}", file=sys.stderr)
        sys.exit(1)
