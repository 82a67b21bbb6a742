"""Fixtures of the parity suite: the otelcol-contrib peer, the allow-list, a Pair per test.

Environment:
  OTELCOL_BIN   the otelcol-contrib peer (scripts/test exports it); unset, the suite asks
                scripts/otelcol-peer, which builds it once and reuses the build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import helpers  # noqa: E402
from diff import AllowList  # noqa: E402
from pair import Pair  # noqa: E402

COMPATIBILITY = helpers.REPO / "docs" / "compatibility.md"


@pytest.fixture(scope="session")
def otelcol_bin() -> Path:
    env = os.environ.get("OTELCOL_BIN")
    if env:
        p = Path(env)
    else:
        out = subprocess.run([str(helpers.REPO / "scripts" / "otelcol-peer")], capture_output=True,
                             text=True, timeout=1900, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            pytest.fail(f"scripts/otelcol-peer failed:\n{out.stderr}", pytrace=False)
        p = Path(out.stdout.strip().splitlines()[-1])
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"otelcol-contrib peer not found at {p}", pytrace=False)
    return p


_ALLOW: list = []


@pytest.fixture(scope="session")
def allow() -> AllowList:
    if not _ALLOW:
        _ALLOW.append(AllowList(COMPATIBILITY))
    return _ALLOW[0]


@pytest.fixture
def pair_factory(procs, tmp_path, otelcol_bin, redline_bin):
    """pair_factory(config_text, flush_interval="1s") -> a started Pair, stopped after the test."""
    made = []

    def make(config_text: str, flush_interval="1s") -> Pair:
        p = Pair(procs, tmp_path, otelcol_bin, redline_bin, config_text, flush_interval)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def pytest_terminal_summary(terminalreporter):
    """Which compatibility entries this run needed: an entry no scenario needed is a
    candidate for removal (when the whole parity suite ran)."""
    if not _ALLOW:
        return
    allow = _ALLOW[0]
    terminalreporter.section("parity: docs/compatibility.md entries used")
    for e in allow.entries:
        terminalreporter.write_line(f"{e.used:6d}  {e.title}")
