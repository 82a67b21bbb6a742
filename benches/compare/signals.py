"""Forwarding cost per byte by signal: Redline's CPU to forward traces, metrics and logs.

One Redline config (otlp receiver, gRPC → a traces, a metrics and a logs pipeline, each to
the same `otlp` exporter with `compression: none` → one `loadgen sink`), the same loadgen
settings for every signal (full speed, a fixed number of ~43 KB requests), and Redline's
utime+stime from /proc/<pid>/stat from just before loadgen sends until the sink holds every
accepted item. Per signal: CPU-ns per byte received and per item, median of the rounds; a
fresh Redline process per measurement, the signals' order rotated each round.

    python3 benches/compare/signals.py                      # 3 rounds x 20k requests
    python3 benches/compare/signals.py --bin-dir /tmp/bin --rounds 5 --requests 10k

Uses target/release/{redline,loadgen} (build them first, or --bin-dir); copies them into
.work/signals/bin so a rebuild during the run changes nothing. Only the standard library;
process handling (start, stop by PID, /proc readings) is procs.py's, as for compare.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import procs
from procs import CompareError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SIGNALS = ("traces", "metrics", "logs")
# What the sink's /count calls each signal's items.
SINK_ITEMS = {"traces": "spans", "metrics": "data_points", "logs": "log_records"}
SINK_BYTES = {"traces": "bytes", "metrics": "metrics_bytes", "logs": "logs_bytes"}



def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benches/compare/signals.py", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", default="20k", help="requests per measurement (20k)")
    ap.add_argument("--signals", default=",".join(SIGNALS))
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--run-timeout", type=float, default=300)
    ap.add_argument("--verify", choices=["first", "all", "none"], default="first",
                    help="rounds in which metrics/logs runs use loadgen --verify (first)")
    a = ap.parse_args()
    a.request_count = procs.parse_count(a.requests)
    a.signal_list = [s.strip() for s in a.signals.split(",") if s.strip()]
    for s in a.signal_list:
        if s not in SIGNALS:
            ap.error(f"unknown signal {s!r}")
    return a


class Bench:
    def __init__(self, args, work: Path, bin_dir: Path):
        self.args, self.work, self.bin = args, work, bin_dir
        self.sink = procs.Sink(bin_dir, work)

    def measure(self, rnd: int, sig: str, verify: bool) -> dict:
        tag = f"r{rnd}-{sig}"
        grpc = procs.free_port()
        cfg = self.work / f"{tag}.yaml"
        # Forwarding only, every signal: otlp receiver -> otlp exporter (uncompressed) -> sink.
        receiver = f"  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{grpc}\n"
        cfg.write_text(procs.forwarding_config(receiver, "otlp", SIGNALS, self.sink.port))
        log = self.work / f"{tag}.redline.log"
        p = procs.start([self.bin / "redline", "--config", cfg], log)
        row = {"round": rnd, "signal": sig, "verify": verify}
        try:
            procs.wait_until("redline", lambda: procs.tcp_open(grpc), p, 30, log)
            report = self.work / f"{tag}.json"
            lg = [self.bin / "loadgen", "run", "--signal", sig, "-e", f"127.0.0.1:{grpc}",
                  "--requests", str(self.args.request_count),
                  "--connections", str(self.args.connections),
                  "--concurrency", str(self.args.concurrency),
                  "--retries", "100", "--backoff", "10ms",
                  "--pid", str(p.pid), "--json", report, "-q"]
            if verify:
                lg += ["--verify", "--sink-count-url", self.sink.count_url]
            row["loadgen_cmd"] = " ".join(shlex.quote(str(c)) for c in lg)
            self._run(p, sig, lg, report, tag, row)
        finally:
            row["exit_code"] = procs.stop(p)
        return row

    def _run(self, p, sig: str, lg, report: Path, tag: str, row: dict) -> None:
        items_key, bytes_key = SINK_ITEMS[sig], SINK_BYTES[sig]
        base = self.sink.counts()
        usage = procs.Usage(p.pid, self.sink.proc.pid)
        returncode = procs.run_loadgen(lg, self.work / f"{tag}.loadgen.log", self.args.run_timeout, tag)
        rep = json.loads(report.read_text())
        accepted = rep["accepted"]["spans"]
        # Redline acknowledges before forwarding: count until the sink has every item.
        procs.wait_until(f"{tag}: sink drain",
                         lambda: self.sink.counts()[items_key] - base[items_key] >= accepted,
                         p, 60, None)
        used = usage.since()
        (cpu, sink_cpu), loadgen_cpu, wall = used["cpu"], used["children"], used["wall"]
        now = self.sink.counts()
        received_bytes = now[bytes_key] - base[bytes_key]
        row.update(
            loadgen_exit=returncode,
            accepted_requests=rep["accepted"]["requests"],
            accepted_items=accepted,
            accepted_bytes=rep["accepted_bytes"],
            sink_items=now[items_key] - base[items_key],
            sink_requests=now[{"traces": "requests"}.get(sig, f"{sig}_requests")]
            - base[{"traces": "requests"}.get(sig, f"{sig}_requests")],
            sink_bytes=received_bytes,
            retries=rep.get("retries", 0),
            bytes_per_request=rep["bytes_per_request"],
            items_per_request=rep["spans_per_request"],
            elapsed_s=rep["elapsed_seconds"],
            cpu_s=cpu,
            cpu_ns_per_byte=cpu * 1e9 / rep["accepted_bytes"],
            cpu_ns_per_item=cpu * 1e9 / accepted,
            mb_per_cpu_s=rep["accepted_bytes"] / cpu / 1e6 if cpu > 0 else 0.0,
            peak_rss_mib=procs.peak_rss_bytes(p.pid) / 2**20,
            loadgen_cpu_s=loadgen_cpu,
            sink_cpu_s=sink_cpu,
            # CPU used by everything else on the machine during the run, in cores.
            background_cores=max(used["busy"] - cpu - loadgen_cpu - sink_cpu, 0.0) / wall,
        )
        v = rep.get("verify")
        if v is not None:
            row["verify_ok"] = v["ok"]
        exact = row["sink_items"] == accepted and row["sink_bytes"] == rep["accepted_bytes"]
        row["exact"] = exact
        if returncode != 0 or not exact:
            row["error"] = f"loadgen exit {returncode}, sink exact: {exact}"



def main() -> int:
    args = parse_args()
    work = procs.prepare_run("signals", args.bin_dir, HERE)
    bench = Bench(args, work, work / "bin")
    rows = []
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(args.signal_list)
        for sig in args.signal_list[k:] + args.signal_list[:k]:
            verify = sig != "traces" and (args.verify == "all" or (args.verify == "first" and rnd == 1))
            try:
                row = bench.measure(rnd, sig, verify)
            except CompareError as e:
                row = {"round": rnd, "signal": sig, "error": str(e)}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "loadgen_cmd"}), file=sys.stderr, flush=True)
    procs.stop(bench.sink.proc)
    (work / "rows.json").write_text(json.dumps(rows, indent=2))

    print("| signal | B/request | items/request | CPU-ns per byte | CPU-ns per item | MB per CPU-s | "
          "/ traces (per byte) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = procs.median_of(rows, 'signal', "traces", "cpu_ns_per_byte")
    for sig in args.signal_list:
        per_byte = procs.median_of(rows, 'signal', sig, "cpu_ns_per_byte")
        print(f"| {sig} | {procs.median_of(rows, 'signal', sig, 'bytes_per_request'):,.0f} | "
              f"{procs.median_of(rows, 'signal', sig, 'items_per_request'):.0f} | {per_byte:.3f} | "
              f"{procs.median_of(rows, 'signal', sig, 'cpu_ns_per_item'):.0f} | {procs.median_of(rows, 'signal', sig, 'mb_per_cpu_s'):.0f} | "
              f"{per_byte / base:.2f} |")
    print(f"signals: rows in {work / 'rows.json'}; sink: {' '.join(map(str, bench.sink.cmd))}",
          file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as e:
        print(f"signals: {e}", file=sys.stderr)
        sys.exit(1)
