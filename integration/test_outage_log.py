"""A Tempo outage under load keeps the log short: the first export failure of a kind is
logged, then one line per 10 s with how many identical failures were not.

Tempo stays down (nothing listens on the exporter's endpoint) for the whole minute while
loadgen sends at a steady rate; the exporter's 10 senders retry every 50–200 ms, which
without the limit would log thousands of lines. The bound stated here: at most 10 lines
about failed exports (the first, one per interval over 60 s, and slack for the interval
edges), and the summaries account for every failed attempt they stand for.
"""

from __future__ import annotations

import json

import helpers
from redline_config import PROMETHEUS, otlp_tempo, pipeline
from redline_run import Redline

OUTAGE_S = 60
MAX_FAILURE_LINES = 10

CONFIG = pipeline(
    http=False,
    exporters=[otlp_tempo("""
        timeout: 1s
        retry_on_failure:
          initial_interval: 50ms
          max_interval: 200ms
          max_elapsed_time: 0   # retry for as long as Tempo is down
    """), PROMETHEUS],
)


def _json_lines(text: str) -> list:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _message(entry: dict) -> str:
    fields = entry.get("fields", entry)
    return str(fields.get("message", ""))


def test_a_minute_of_tempo_outage_under_load_logs_a_bounded_number_of_lines(
        redline_bin, loadgen_bin, procs, tmp_path):
    down = helpers.free_port()  # nothing listens here: Tempo is down
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, sink=down).start()
    run = helpers.run([
        loadgen_bin, "run", "--endpoint", f"127.0.0.1:{rl.grpc}", "--rate", "2k",
        "--duration", f"{OUTAGE_S}s", "--retries", "0", "--quiet",
    ], timeout=OUTAGE_S + 60)
    # The queue fills and the rest is refused (retryably): loadgen's exit code says so, and
    # is not what this test is about.
    assert rl.proc.poll() is None, rl.proc.log_text()
    # Tempo never came back: the queued requests are dropped at the shutdown deadline, and
    # the exit code says so.
    rl.proc.stop(timeout=30)

    entries = _json_lines(rl.proc.log_text(limit=10_000_000))
    failures = [e for e in entries if "export failed" in _message(e)]
    report = "\n".join(json.dumps(e) for e in failures) + f"\nloadgen: {run.stdout}{run.stderr}"
    assert 2 <= len(failures) <= MAX_FAILURE_LINES, report
    fields = [e.get("fields", e) for e in failures]
    assert all(f.get("message") == "export failed; will retry" for f in fields), report
    # After the first line, each summary stood for identical failures that were not logged.
    assert int(fields[0].get("not_logged", -1)) == 0, report
    assert all(int(f.get("not_logged", 0)) > 0 for f in fields[1:]), report
    assert sum(int(f.get("not_logged", 0)) for f in fields) > 10 * len(fields), report
