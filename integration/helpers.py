"""Shared helpers for the end-to-end suite: ports, processes, bounded waits, /metrics parsing.

Every wait here has a deadline; nothing loops forever.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared/ folder (reference config, dashboard queries): ../shared next to the repo."""
    env = os.environ.get("REDLINE_SHARED")
    return Path(env).resolve() if env else (REPO.parent / "shared").resolve()


def _binary_path(env_var: str, default: str) -> Path:
    p = Path(os.environ.get(env_var, default))
    return p if p.is_absolute() else (REPO / p)


def redline_bin_path() -> Path:
    return _binary_path("REDLINE_BIN", "target/debug/redline")


def loadgen_bin_path() -> Path:
    return _binary_path("LOADGEN_BIN", "target/debug/loadgen")


# ---------------------------------------------------------------- ports


_HANDED_OUT: set = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, never one this process handed out before: the kernel may
    give the same ephemeral port to two binds in a row once the first socket is closed, and
    two placeholders of one config then collide."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- waits


class WaitTimeout(AssertionError):
    pass


def wait_until(
    fn: Callable[[], object],
    timeout: float,
    what: str,
    interval: float = 0.2,
    alive: Optional["Proc"] = None,
):
    """Poll fn() until it returns a truthy value; return it. Raise WaitTimeout at the deadline.

    Exceptions from fn count as "not yet" (the last one is reported). If `alive` is given and
    that process exits meanwhile, fail at once with its log.
    """
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    last_val: object = None
    while True:
        try:
            last_val = fn()
            if last_val:
                return last_val
        except Exception as e:  # noqa: BLE001 - reported below
            last_exc = e
        if alive is not None and alive.poll() is not None:
            raise AssertionError(
                f"{alive.name} exited with code {alive.returncode} while waiting for {what}\n"
                f"{alive.log_text()}"
            )
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_val!r}"
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# ---------------------------------------------------------------- processes


class Proc:
    """A child process with its stdout+stderr captured in a log file."""

    def __init__(self, name: str, args: list, log_path: Path, cwd: Optional[Path] = None, env=None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd) if cwd else None,
            env=full_env,
            start_new_session=True,  # our own process group: never hit by a stray Ctrl-C
        )
        self.pid = self.popen.pid

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def log_text(self, limit: int = 20000) -> str:
        try:
            if not self._log.closed:
                self._log.flush()
            data = self.log_path.read_bytes()
        except OSError as e:
            return f"<no log: {e}>"
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = f"...[{len(text) - limit} chars cut]...\n" + text[-limit:]
        return f"----- {self.name} (pid {self.pid}) {' '.join(self.args)}\n{text}----- end {self.name}"

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout=10)
                self.killed = True
        self._log.close()
        return self.popen.returncode

    killed = False


def run(args: list, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Run a command to completion with a deadline (raises subprocess.TimeoutExpired)."""
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------- Prometheus text format

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(\S+))?\s*$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v: str) -> str:
    return v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_labels(s: str) -> dict:
    out = {}
    pos = 0
    s = s or ""
    while pos < len(s):
        m = _LABEL_RE.match(s, pos)
        if not m:
            if s[pos:].strip() == "":
                break
            raise ValueError(f"bad label set {{{s}}} at {pos}")
        out[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return out


def parse_float(v: str) -> float:
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    return float(v)


def parse_text_metrics(text: str) -> list:
    """Samples of a text-format (0.0.4) exposition: [(name, labels dict, value)]. Exemplars
    (OpenMetrics ' # {...} v') are cut off."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.split(" # ", 1)[0]
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        samples.append((m.group(1), parse_labels(m.group(2) or ""), parse_float(m.group(3))))
    return samples


def label_key(labels: dict, drop: Iterable[str] = ()) -> tuple:
    drop = set(drop)
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))
