"""Process bookkeeping for the comparison: start, wait, stop by PID, and /proc readings.

Every process the driver starts is registered here so that `stop_all` (run from atexit and
from the SIGINT/SIGTERM handlers) can end exactly those, by PID, whatever failed.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The kernel reports /proc CPU times in USER_HZ ticks.
CLK_TCK = os.sysconf("SC_CLK_TCK")

_started: list[subprocess.Popen] = []


class CompareError(Exception):
    pass


def start(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    out = open(log, "wb")
    # Own session: a Ctrl-C in the terminal reaches only the driver, which then stops the
    # children in order instead of all of them racing.
    p = subprocess.Popen(
        [str(c) for c in cmd],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    out.close()
    _started.append(p)
    return p


def stop(p: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM, bounded wait, then SIGKILL. Returns the exit code."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if p in _started:
        _started.remove(p)
    return p.returncode


def stop_all() -> None:
    for p in reversed(list(_started)):
        try:
            stop(p, timeout=5)
        except Exception:  # noqa: BLE001 - cleanup must reach every process
            pass


def parse_count(s: str) -> int:
    """`20k` -> 20000, `1.5m` -> 1500000, `300` -> 300."""
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1:].lower(), 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check, proc: subprocess.Popen | None, timeout: float, log: Path | None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log_tail(log) if log else ""
            raise CompareError(f"{what}: process exited with {proc.returncode}\n{tail}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    tail = log_tail(log) if log else ""
    raise CompareError(f"{what}: not ready after {timeout:.0f}s\n{tail}")


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


def http_get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        if r.status != 200:
            raise OSError(f"GET {url}: HTTP {r.status}")
        return r.read()


def http_ok(url: str) -> bool:
    http_get(url)
    return True


def sink_spans(count_url: str) -> int:
    return int(json.loads(http_get(count_url))["spans"])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process; the comm field may hold spaces, so split after ')'."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all cores), from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK


def tcp_bytes_received(port: int) -> int | None:
    """Bytes received so far on the established connections to a local listening port.

    Reads the kernel's per-socket counters (`ss -ti`), so it sees the bytes on the wire,
    compressed or not, which the sink's own counters (after decompression) cannot show.
    """
    try:
        out = subprocess.run(
            ["ss", "-tinH", "state", "established", f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    total, seen = 0, False
    for word in out.split():
        if word.startswith("bytes_received:"):
            total += int(word.split(":", 1)[1])
            seen = True
    return total if seen else None


def prepare_run(name: str, bin_dir: Path, here: Path) -> Path:
    """What every driver does first: SIGINT/SIGTERM exit (so atexit stops the children), a
    work directory `.work/<name>`, and the redline and loadgen binaries copied into its `bin`
    so a rebuild during the run changes nothing. Returns the work directory."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda n, _f: sys.exit(128 + n))
    atexit.register(stop_all)
    work = here / ".work" / name
    (work / "bin").mkdir(parents=True, exist_ok=True)
    for b in ("redline", "loadgen"):
        shutil.copy2(Path(bin_dir) / b, work / "bin" / b)
    return work


def median_of(rows: list, field: str, value, key: str) -> float:
    """Median of `key` over the rows whose `field` is `value` and that have no error."""
    vals = [r[key] for r in rows if r.get(field) == value and key in r and "error" not in r]
    return statistics.median(vals) if vals else float("nan")


def wait_quiet(what: str, read, proc: subprocess.Popen | None, timeout: float, quiet: float):
    """Until read() has not changed for `quiet` seconds (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise CompareError(f"{what}: process exited with {proc.returncode}")
        try:
            now = read()
        except OSError:
            now = None
        if now != last:
            last, since = now, time.monotonic()
        elif now is not None and time.monotonic() - since >= quiet:
            return now
        time.sleep(0.05)
    raise CompareError(f"{what}: still changing after {timeout:.0f}s")


def forwarding_config(receivers: str, receiver_id: str, signals, sink: int) -> str:
    """A collector that forwards `signals` from `receiver_id` (its `receivers:` section is
    `receivers`, indented as under the top-level key) to the loadgen sink on port `sink`
    uncompressed, its own metrics served on a free port."""
    pipelines = "".join(
        f"    {s}:\n      receivers: [{receiver_id}]\n      exporters: [otlp]\n" for s in signals
    )
    return f"""\
receivers:
{receivers}exporters:
  otlp:
    endpoint: 127.0.0.1:{sink}
    compression: none
    tls:
      insecure: true
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {free_port()}
  pipelines:
{pipelines}"""


class Sink:
    """A `loadgen sink` on free 127.0.0.1 ports, stopped with the other processes: where
    collectors export (`port`), and its running counts (`counts()`, the `/count` JSON)."""

    def __init__(self, bin_dir: Path, work: Path):
        self.port, count_port = free_port(), free_port()
        self.count_url = f"http://127.0.0.1:{count_port}/count"
        log = work / "sink.log"
        self.cmd = [Path(bin_dir) / "loadgen", "sink", "--listen", f"127.0.0.1:{self.port}",
                    "--count-listen", f"127.0.0.1:{count_port}", "--report-interval", "0s"]
        self.proc = start(self.cmd, log)
        wait_until("sink", lambda: http_ok(self.count_url), self.proc, 20, log)

    def counts(self) -> dict:
        return json.loads(http_get(self.count_url))


def run_loadgen(cmd: list, log: Path, timeout: float, tag: str) -> int:
    """Runs loadgen to its end; its exit code. A run past `timeout` is stopped and fails."""
    lp = start(cmd, log)
    try:
        lp.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(lp)
        raise CompareError(f"{tag}: loadgen did not finish")
    stop(lp)
    return lp.returncode


class Usage:
    """CPU seconds from now: of processes by PID, of this driver's finished children
    (loadgen), and of the whole machine, with the wall time, for a run's accounting."""

    def __init__(self, *pids: int):
        import resource
        self._resource = resource
        self.pids = pids
        self.cpu0 = [cpu_seconds(pid) for pid in pids]
        self.kids0 = self._children()
        self.busy0, self.wall0 = machine_busy_seconds(), time.monotonic()

    def _children(self) -> float:
        r = self._resource.getrusage(self._resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def since(self) -> dict:
        """`cpu` (a list, per PID), `children`, `busy` (the machine) and `wall` seconds."""
        return {"cpu": [cpu_seconds(pid) - c0 for pid, c0 in zip(self.pids, self.cpu0)],
                "children": self._children() - self.kids0,
                "busy": machine_busy_seconds() - self.busy0,
                "wall": max(time.monotonic() - self.wall0, 1e-9)}

