"""OTLP metrics into a Prometheus scrape endpoint: otelcol-contrib and Redline on the same load.

One config for both collectors: the `otlp` receiver (gRPC) into a `metrics` pipeline whose only
exporter is `prometheus`. Per round and collector: a fresh process, `loadgen run --signal
metrics` at full speed (cumulative sums and explicit histograms, 4 attributes per point, the
same requests for both), the collector's utime+stime from /proc/<pid>/stat from just before
loadgen sends until it is done (both exporters translate on the request path, so that is the
whole ingest cost), then one plain scrape of /metrics, timed, with its size and CPU. Reported:
medians of CPU-ns per data point, data points per CPU-second, scrape size, time and CPU, peak
RSS, and Redline/otelcol ratios. The two scrapes must hold the same series (names and label
sets); values of a few series may differ, because loadgen shifts each replayed request's
timestamps by the time since it started, so which of two requests with the same cumulative
series is the newer depends on the collector's speed (the parity suite compares values).

    python3 benches/compare/metrics_prom.py --otelcol-bin "$(scripts/otelcol-peer | tail -n1)"
    python3 benches/compare/metrics_prom.py --otelcol-bin ... --rounds 5 --requests 20k
    python3 benches/compare/metrics_prom.py --otelcol-bin ... --delta   # deltatocumulative in front

With --delta, loadgen sends its sums and histograms as deltas (`--delta-metrics`, each point
covering the second before it) and both collectors run a `deltatocumulative` processor in
front of the exporter, so what is measured is the processor and the exporter together.

Uses target/release/{redline,loadgen} (or --bin-dir). Only the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import procs
from procs import CompareError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
COLLECTORS = ("otelcol", "redline")

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    metrics:
      receivers: [otlp]
{processors}      exporters: [prometheus]
"""
DELTA_PROCESSOR = "      processors: [deltatocumulative]\n"
DELTA_SECTION = "processors:\n  deltatocumulative: {}\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benches/compare/metrics_prom.py", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", default="5k", help="requests per measurement (5k)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--otelcol-bin", required=True)
    ap.add_argument("--run-timeout", type=float, default=600)
    ap.add_argument("--delta", action="store_true",
                    help="delta sums and histograms, made cumulative by a deltatocumulative processor")
    a = ap.parse_args()
    a.request_count = procs.parse_count(a.requests)
    return a


def parse_scrape(body: bytes) -> dict:
    """{(name, sorted labels text): value} of a text exposition."""
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if "{" in head:
            name, _, rest = head.partition("{")
            labels = ",".join(sorted(_split_labels(rest.rstrip("}"))))
        else:
            name, labels = head, ""
        out[(name, labels)] = value
    return out


def _split_labels(s: str) -> list:
    parts, cur, quoted, esc = [], "", False, False
    for ch in s:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "\\":
            cur, esc = cur + ch, True
        elif ch == '"':
            cur, quoted = cur + ch, not quoted
        elif ch == "," and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


class Bench:
    def __init__(self, args, work: Path, bin_dir: Path, otelcol: Path):
        self.args, self.work, self.bin, self.otelcol = args, work, bin_dir, otelcol
        self.scrapes: dict = {}

    def measure(self, rnd: int, name: str) -> dict:
        tag = f"r{rnd}-{name}"
        grpc, prom = procs.free_port(), procs.free_port()
        cfg = self.work / f"{tag}.yaml"
        text = CONFIG.format(grpc=grpc, prom=prom, processors=DELTA_PROCESSOR if self.args.delta else "")
        cfg.write_text(DELTA_SECTION + text if self.args.delta else text)
        log = self.work / f"{tag}.log"
        binary = self.bin / "redline" if name == "redline" else self.otelcol
        p = procs.start([binary, "--config", cfg], log)
        row = {"round": rnd, "collector": name}
        url = f"http://127.0.0.1:{prom}/metrics"
        try:
            procs.wait_until(name, lambda: procs.tcp_open(grpc) and procs.tcp_open(prom), p, 30, log)
            report = self.work / f"{tag}.json"
            lg = [self.bin / "loadgen", "run", "--signal", "metrics", "-e", f"127.0.0.1:{grpc}",
                  "--requests", str(self.args.request_count),
                  "--connections", str(self.args.connections),
                  "--concurrency", str(self.args.concurrency),
                  "--retries", "100", "--backoff", "10ms", "--json", report, "-q"]
            if self.args.delta:
                lg.append("--delta-metrics")
            cpu0 = procs.cpu_seconds(p.pid)
            lp = procs.start(lg, self.work / f"{tag}.loadgen.log")
            try:
                lp.wait(timeout=self.args.run_timeout)
            except Exception:
                procs.stop(lp)
                raise CompareError(f"{tag}: loadgen did not finish")
            cpu = procs.cpu_seconds(p.pid) - cpu0
            rep = json.loads(report.read_text())
            points = rep["accepted"]["spans"]
            s_cpu0, t0 = procs.cpu_seconds(p.pid), time.monotonic()
            body = procs.http_get(url, timeout=120)
            scrape_s = time.monotonic() - t0
            scrape_cpu = procs.cpu_seconds(p.pid) - s_cpu0
            series = parse_scrape(body)
            self.scrapes.setdefault(rnd, {})[name] = series
            row.update(
                loadgen_exit=lp.returncode,
                accepted_points=points,
                accepted_bytes=rep["accepted_bytes"],
                points_per_request=rep["spans_per_request"],
                cpu_s=cpu,
                cpu_ns_per_point=cpu * 1e9 / points if points else float("nan"),
                points_per_cpu_s=points / cpu if cpu > 0 else 0.0,
                scrape_bytes=len(body),
                scrape_samples=len(series),
                scrape_ms=scrape_s * 1e3,
                scrape_cpu_ms=scrape_cpu * 1e3,
                peak_rss_mib=procs.peak_rss_bytes(p.pid) / 2**20,
            )
            if lp.returncode != 0:
                row["error"] = f"loadgen exit {lp.returncode}"
        finally:
            row["exit_code"] = procs.stop(p)
        return row



def main() -> int:
    args = parse_args()
    work = procs.prepare_run("metrics_prom", args.bin_dir, HERE)
    bench = Bench(args, work, work / "bin", Path(args.otelcol_bin).resolve())
    rows = []
    for rnd in range(1, args.rounds + 1):
        order = COLLECTORS if rnd % 2 else tuple(reversed(COLLECTORS))
        for name in order:
            try:
                row = bench.measure(rnd, name)
            except CompareError as e:
                row = {"round": rnd, "collector": name, "error": str(e)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        got = bench.scrapes.get(rnd, {})
        if len(got) == 2:
            a, b = got["otelcol"], got["redline"]
            only_o, only_r = sorted(set(a) - set(b)), sorted(set(b) - set(a))
            differ = sorted(k for k in set(a) & set(b) if float(a[k]) != float(b[k]))
            print(json.dumps({"round": rnd, "series_only_otelcol": len(only_o), "series_only_redline": len(only_r),
                              "values_differ": len(differ), "examples": [only_o[:2], only_r[:2], differ[:2]]}),
                  file=sys.stderr, flush=True)
    (work / "rows.json").write_text(json.dumps(rows, indent=2))

    keys = [("cpu_ns_per_point", "CPU-ns per data point", "{:,.0f}"),
            ("points_per_cpu_s", "data points per CPU-s", "{:,.0f}"),
            ("peak_rss_mib", "peak RSS (MiB)", "{:.0f}"),
            ("scrape_samples", "samples per scrape", "{:,.0f}"),
            ("scrape_bytes", "scrape bytes", "{:,.0f}"),
            ("scrape_ms", "scrape time (ms)", "{:.1f}"),
            ("scrape_cpu_ms", "scrape CPU (ms)", "{:.1f}")]
    print("| | otelcol-contrib | Redline | Redline / otelcol |")
    print("|---|---:|---:|---:|")
    for key, label, fmt in keys:
        o, r = procs.median_of(rows, 'collector', "otelcol", key), procs.median_of(rows, 'collector', "redline", key)
        ratio = r / o if o else float("nan")
        print(f"| {label} | {fmt.format(o)} | {fmt.format(r)} | {ratio:.2f} |")
    print(f"metrics_prom: rows in {work / 'rows.json'}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as e:
        print(f"metrics_prom: {e}", file=sys.stderr)
        sys.exit(1)
