"""Redline's user-space instructions per span under callgrind, for the compare loads.

CPU seconds on a shared 2-core machine move by 20-40% between runs; instruction counts do
not (repeat runs agree within ~1%), so small differences, such as what a `transform` that
changes nothing adds to forwarding, are read here. Each load runs the same YAML as
`compare.py` (free 127.0.0.1 ports, the loadgen sink as Tempo) with Redline under
`valgrind --tool=callgrind`; the counters are zeroed once Redline is up and dumped after
loadgen's last acknowledged request and the sink's last span, so start-up is not counted.

    python3 benches/compare/instructions.py --loads none,untouched,rename,filter10 --spans 50k

Needs valgrind and a release build (`cargo build --release -p redline -p redline-loadgen`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import compare
import procs


def callgrind_total(dump: Path) -> int:
    """PROGRAM TOTALS of a callgrind dump."""
    out = subprocess.run(["callgrind_annotate", str(dump)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if "PROGRAM TOTALS" in line:
            return int(line.split()[0].replace(",", ""))
    raise procs.CompareError(f"no PROGRAM TOTALS in {dump}")


def measure(load: compare.Load, spans: int, bin_dir: Path, work: Path, protocol: str = "grpc") -> int:
    """Instructions Redline ran while `spans` spans of `load` went through it, sent over
    `protocol` (OTLP/gRPC, or OTLP/HTTP with protobuf bodies on the same port)."""
    grpc, prom, telemetry = (procs.free_port() for _ in range(3))
    sink_port, count_port = procs.free_port(), procs.free_port()
    section, line = compare.processors_yaml(load)
    config = work / f"{load.key}.yaml"
    compression = f"    compression: {load.compression}\n" if load.compression else ""
    text = compare.COLLECTOR_CONFIG.format(
        grpc=grpc, sink=sink_port, prom=prom, telemetry=telemetry, compression=compression,
        processors=section, pipeline_processors=line, sending_queue="", extensions="",
        service_extensions="", extra_dimensions=load.dimensions, extra_connectors="",
        connector_ids="", metric_receivers="", foreign_receiver="", foreign_id="")
    endpoint = f"127.0.0.1:{grpc}"
    if protocol == "http":
        receiver = f"      grpc:\n        endpoint: {endpoint}\n"
        if receiver not in text:
            raise procs.CompareError("the collector config has no gRPC receiver to serve HTTP instead")
        text = text.replace(receiver, f"      http:\n        endpoint: {endpoint}\n")
        endpoint = f"http://{endpoint}"
    config.write_text(text)
    sink = procs.start([str(bin_dir / "loadgen"), "sink", "--listen", f"127.0.0.1:{sink_port}",
                        "--count-listen", f"127.0.0.1:{count_port}", "--report-interval", "0s"],
                       work / f"{load.key}.sink.log")
    out = work / f"{load.key}.callgrind"
    log = work / f"{load.key}.redline.log"
    redline = procs.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           str(bin_dir / "redline"), "--config", str(config)], log)
    try:
        procs.wait_until("redline under callgrind", lambda: procs.tcp_open(grpc), redline, 120, log)
        subprocess.run(["callgrind_control", "--zero", str(redline.pid)], check=True,
                       capture_output=True)
        subprocess.run([str(bin_dir / "loadgen"), "run", "-e", endpoint, "--protocol", protocol, "--spans",
                        str(spans), "--connections", "4", "--concurrency", "8", "--retries",
                        "100", "--backoff", "10ms", "--timeout", "60s", "-q"], check=True)
        count_url = f"http://127.0.0.1:{count_port}/count"
        procs.wait_quiet("the sink", lambda: procs.sink_spans(count_url), None, 120, 2.0)
        subprocess.run(["callgrind_control", "--dump", str(redline.pid)], check=True,
                       capture_output=True)
        time.sleep(1)
        dumps = sorted(work.glob(f"{load.key}.callgrind.*"))
        if not dumps:
            raise procs.CompareError(f"callgrind wrote no dump for {load.key}")
        return callgrind_total(dumps[-1])
    finally:
        procs.stop(redline)
        procs.stop(sink)


def main() -> int:
    ap = argparse.ArgumentParser(prog="benches/compare/instructions.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", default="none,untouched,rename,filter10")
    ap.add_argument("--spans", default="50k", help="spans per load (k/M suffix; 50k)")
    ap.add_argument("--bin-dir", type=Path, default=compare.RELEASE)
    ap.add_argument("--protocol", choices=["grpc", "http"], default="grpc",
                    help="how loadgen sends: OTLP/gRPC (default) or OTLP/HTTP with protobuf bodies")
    ap.add_argument("--keep", type=Path, help="write configs, logs and callgrind dumps here "
                    "(for callgrind_annotate) instead of a temporary directory")
    args = ap.parse_args()
    spans = procs.parse_count(args.spans)
    args.rate_value = 0.0
    args.duration = "0s"
    known = compare.loads(args)
    base = None
    with tempfile.TemporaryDirectory(prefix="redline-instructions-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("| load | instructions per span | vs none |")
        print("|---|---:|---:|")
        for key in args.loads.split(","):
            if key not in known or known[key].rate:
                print(f"unknown or open-loop load {key!r}", file=sys.stderr)
                return 2
            per_span = measure(known[key], spans, args.bin_dir, work, args.protocol) / spans
            base = per_span if key == "none" else base
            ratio = f"{per_span / base:.3f}" if base else "-"
            print(f"| {key} | {per_span:,.0f} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        procs.stop_all()
