"""Fixtures for the end-to-end suite.

Environment:
  REDLINE_BIN          path to the binary (default target/debug/redline, relative to the repo)
  LOADGEN_BIN          path to the load harness (default target/debug/loadgen, relative to the repo)
  REDLINE_ALLOW_SKIP=1 skip (instead of fail) the tests that need a binary when it is missing
  REDLINE_SHARED       the shared/ folder with reference/ (default ../shared next to the repo)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import helpers  # noqa: E402
from otlp_sink import OtlpSink  # noqa: E402


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(node) -> bool:
    return any(
        getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
        for w in ("setup", "call")
    )


def _binary(p: Path, package: str, env_var: str) -> Path:
    if not (p.is_file() and os.access(p, os.X_OK)):
        msg = f"{p.name} binary not found at {p} (build it with `cargo build -p {package}`, or set {env_var})"
        if os.environ.get("REDLINE_ALLOW_SKIP") == "1":
            pytest.skip(msg + "; skipped because REDLINE_ALLOW_SKIP=1")
        pytest.fail(msg, pytrace=False)
    return p


@pytest.fixture(scope="session")
def redline_bin() -> Path:
    return _binary(helpers.redline_bin_path(), "redline", "REDLINE_BIN")


@pytest.fixture(scope="session")
def loadgen_bin() -> Path:
    return _binary(helpers.loadgen_bin_path(), "redline-loadgen", "LOADGEN_BIN")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = helpers.shared_dir()
    if not (d / "reference" / "otelcol-tempo.yaml").is_file():
        pytest.fail(f"shared reference files not found under {d} (set REDLINE_SHARED)", pytrace=False)
    return d


class ProcGroup:
    """Processes started by one test/module; stopped by PID in reverse order at teardown."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[helpers.Proc] = []

    def start(self, name: str, args: list, **kw) -> helpers.Proc:
        p = helpers.Proc(name, args, self.workdir / f"{name}.log", **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop()

    def dump_logs(self):
        for p in self.procs:
            print(p.log_text(), file=sys.stderr)


def _procs_fixture(request, tmp_path_factory, name):
    group = ProcGroup(tmp_path_factory.mktemp(name))
    try:
        yield group
    finally:
        group.stop_all()
        failed = _failed(request.node) if request.scope == "function" else any(
            _failed(i) for i in request.session.items if i.module is getattr(request, "module", None)
        )
        if failed:
            print(f"\n===== logs of processes ({name}) =====", file=sys.stderr)
            group.dump_logs()


@pytest.fixture
def procs(request, tmp_path_factory):
    yield from _procs_fixture(request, tmp_path_factory, "procs")


@pytest.fixture(scope="module")
def module_procs(request, tmp_path_factory):
    yield from _procs_fixture(request, tmp_path_factory, "mprocs")


def _sink_fixture():
    s = OtlpSink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def sink():
    yield from _sink_fixture()


@pytest.fixture(scope="module")
def module_sink():
    yield from _sink_fixture()
