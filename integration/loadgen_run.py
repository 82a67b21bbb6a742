"""The load harness (crates/loadgen) in the tests: `loadgen sink` standing in for Tempo, and
`loadgen run --verify`, which checks Redline's series and the sink's count against its own
tally of what it sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import requests

import helpers


class LoadgenSink:
    """`loadgen sink` on free ports: OTLP on .port, its span counts at .count_url. `flags` are
    added to its command line (--check, --delay ...)."""

    def __init__(self, procs, loadgen_bin: Path, *flags: str):
        self.port, count_port = helpers.free_port(), helpers.free_port()
        self.count_url = f"http://127.0.0.1:{count_port}/count"
        self.proc = procs.start("loadgen-sink", [
            loadgen_bin, "sink", "--listen", f"127.0.0.1:{self.port}", "--count-listen", f"127.0.0.1:{count_port}",
            "--report-interval", "0s", *flags,
        ])
        helpers.wait_until(lambda: requests.get(self.count_url, timeout=1).status_code == 200, 30,
                           "loadgen sink to serve /count", alive=self.proc)

    def counts(self) -> dict:
        return requests.get(self.count_url, timeout=5).json()


def verified_run(loadgen_bin: Path, metrics_url: str, sink: LoadgenSink, report: Path, args: list,
                 timeout: float = 120) -> tuple[int, Optional[dict], str]:
    """`loadgen run --verify` of the traces.spanmetrics series at `metrics_url` and of the spans
    at `sink`, plus `args` (endpoint, load, --dimension ...). Returns the exit code, the JSON
    report (None if it wrote none) and everything it printed, for assertion messages."""
    r = helpers.run([
        loadgen_bin, "run", "--verify", "--namespace", "traces.spanmetrics",
        "--metrics-url", metrics_url, "--sink-count-url", sink.count_url, "--json", report, "--quiet", *args,
    ], timeout=timeout)
    out = f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    rep = json.loads(report.read_text()) if report.is_file() else None
    return r.returncode, rep, out
