"""The `fluent_forward` receiver side by side with otelcol-contrib's: CPU and memory to take
Fluent Forward events and forward their records as OTLP.

Each collector (otelcol-contrib from `scripts/otelcol-peer`, Redline) runs the same YAML: a
`fluentforward` receiver in a logs pipeline to an `otlp` exporter (`compression: none`) and
a `loadgen sink`. loadgen sends its generated logs (`--signal logs`, ~43 KB and ~113 records
per request) as Fluent Bit's `forward` output sends them (`--protocol fluent`: one
PackedForward event per request, each acknowledged before the connection sends the next),
at full speed and at a steady rate. Measured: the collector's utime+stime from /proc from
just before loadgen sends until the sink holds every acknowledged record, per million
records; its peak RSS; records acknowledged against records at the sink (every run must be
exact). A fresh collector process per measurement, the collectors' order alternating by
round; medians of the rounds.

    python3 benches/compare/fluent.py --otelcol $(scripts/otelcol-peer | tail -1)
    python3 benches/compare/fluent.py --otelcol BIN --rounds 3 --requests 20k --rate 20k --duration 20s

Uses target/release/{redline,loadgen} (build them first, or --bin-dir), copied into
.work/fluent/bin so a rebuild during the run changes nothing. Only the standard library;
process handling is procs.py's, as for compare.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import procs
from procs import CompareError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent



def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="benches/compare/fluent.py", description=__doc__.split("\n")[0])
    ap.add_argument("--otelcol", required=True, help="the otelcol-contrib peer binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", default="20k", help="requests of the full-speed load (20k)")
    ap.add_argument("--rate", default="20k", help="records per second of the steady load (20k)")
    ap.add_argument("--duration", default="20s", help="length of the steady load (20s)")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--run-timeout", type=float, default=600)
    return ap.parse_args()


class Bench:
    def __init__(self, args, work: Path, bin_dir: Path):
        self.args, self.work, self.bin = args, work, bin_dir
        self.sink = procs.Sink(bin_dir, work)

    def records(self) -> int:
        return self.sink.counts()["log_records"]

    def measure(self, rnd: int, collector: str, load: str) -> dict:
        tag = f"r{rnd}-{load}-{collector}"
        port = procs.free_port()
        cfg = self.work / f"{tag}.yaml"
        receiver = f"  fluentforward:\n    endpoint: 127.0.0.1:{port}\n"
        cfg.write_text(procs.forwarding_config(receiver, "fluentforward", ["logs"], self.sink.port))
        binary = self.args.otelcol if collector == "otelcol" else self.bin / "redline"
        log = self.work / f"{tag}.log"
        p = procs.start([binary, "--config", cfg], log)
        row = {"round": rnd, "collector": collector, "load": load}
        try:
            procs.wait_until(collector, lambda: procs.tcp_open(port), p, 60, log)
            report = self.work / f"{tag}.json"
            lg = [self.bin / "loadgen", "run", "--signal", "logs", "--protocol", "fluent",
                  "-e", f"127.0.0.1:{port}", "--connections", str(self.args.connections),
                  "--concurrency", "1", "--retries", "100", "--backoff", "10ms",
                  "--pid", str(p.pid), "--json", report, "-q"]
            if load == "full":
                lg += ["--requests", str(procs.parse_count(self.args.requests))]
            else:
                lg += ["--rate", self.args.rate, "--duration", self.args.duration]
            row["loadgen_cmd"] = " ".join(shlex.quote(str(c)) for c in lg)
            self._run(p, lg, report, tag, row)
        finally:
            row["exit_code"] = procs.stop(p)
        return row

    def _run(self, p, lg, report: Path, tag: str, row: dict) -> None:
        base = self.records()
        usage = procs.Usage(p.pid)
        returncode = procs.run_loadgen(lg, self.work / f"{tag}.loadgen.log", self.args.run_timeout, tag)
        rep = json.loads(report.read_text())
        acked = rep["accepted"]["spans"]
        # Both collectors acknowledge before forwarding: count until the sink has every record.
        procs.wait_until(f"{tag}: sink drain", lambda: self.records() - base >= acked, p, 60, None)
        used = usage.since()
        cpu = used["cpu"][0]
        sink = self.records() - base
        row.update(
            loadgen_exit=returncode, acked_records=acked, sink_records=sink, exact=sink == acked,
            records_per_request=rep["spans_per_request"], elapsed_s=rep["elapsed_seconds"],
            cpu_s=cpu, cpu_s_per_m=cpu * 1e6 / acked if acked else 0.0,
            records_per_s=acked / max(rep["elapsed_seconds"], 1e-9),
            peak_rss_mib=procs.peak_rss_bytes(p.pid) / 2**20,
            p50_ms=rep["latency"]["p50_ms"], p99_ms=rep["latency"]["p99_ms"],
            background_cores=max(used["busy"] - cpu - used["children"], 0.0) / used["wall"],
        )
        if returncode != 0 or sink != acked:
            row["error"] = f"loadgen exit {returncode}, sink {sink} of {acked} acknowledged records"


def main() -> int:
    args = parse_args()
    work = procs.prepare_run("fluent", args.bin_dir, HERE)
    bench = Bench(args, work, work / "bin")
    rows = []
    collectors = ["otelcol", "redline"]
    for rnd in range(1, args.rounds + 1):
        for load in ("full", "steady"):
            for collector in (collectors if rnd % 2 else collectors[::-1]):
                try:
                    row = bench.measure(rnd, collector, load)
                except CompareError as e:
                    row = {"round": rnd, "collector": collector, "load": load, "error": str(e)}
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "loadgen_cmd"}), file=sys.stderr,
                      flush=True)
    procs.stop(bench.sink.proc)
    (work / "rows.json").write_text(json.dumps(rows, indent=2))

    def med(collector, load, key):
        vals = sorted(r[key] for r in rows if r.get("collector") == collector and r.get("load") == load
                      and "error" not in r and r.get(key) is not None)
        return vals[len(vals) // 2] if vals else float("nan")

    print("| load | collector | CPU-s per M records | records/s | peak RSS MiB | p50 / p99 ms | "
          "exact runs |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for load in ("full", "steady"):
        for c in collectors:
            exact = sum(1 for r in rows if r.get("collector") == c and r.get("load") == load and r.get("exact"))
            runs = sum(1 for r in rows if r.get("collector") == c and r.get("load") == load)
            print(f"| {load} | {c} | {med(c, load, 'cpu_s_per_m'):.2f} | {med(c, load, 'records_per_s'):,.0f} | "
                  f"{med(c, load, 'peak_rss_mib'):.0f} | {med(c, load, 'p50_ms')} / {med(c, load, 'p99_ms')} | "
                  f"{exact}/{runs} |")
        print(f"| {load} | Redline / otelcol CPU | "
              f"{med('redline', load, 'cpu_s_per_m') / med('otelcol', load, 'cpu_s_per_m'):.3f} | | | | |")
    print(f"fluent: rows in {work / 'rows.json'}", file=sys.stderr)
    shutil.rmtree(work / "bin", ignore_errors=True)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as e:
        print(f"fluent: {e}", file=sys.stderr)
        sys.exit(1)
