"""The otelcol-contrib peer binary for tests outside integration/parity/, found by the same
rules as the parity suite's `otelcol_bin` fixture (parity/conftest.py): OTELCOL_BIN, else the
path `scripts/otelcol-peer` prints on its last stdout line (it builds once and caches). Like
the parity suite, a missing peer fails the test rather than skipping it."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

import helpers


@lru_cache(maxsize=1)
def _locate() -> tuple:
    env = os.environ.get("OTELCOL_BIN")
    if env:
        p = Path(env)
    else:
        out = subprocess.run([str(helpers.REPO / "scripts" / "otelcol-peer")], capture_output=True,
                             text=True, timeout=1900, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            return None, f"scripts/otelcol-peer failed:\n{out.stderr}"
        p = Path(out.stdout.strip().splitlines()[-1])
    if not (p.is_file() and os.access(p, os.X_OK)):
        return None, f"otelcol-contrib peer not found at {p}"
    return p, ""


def otelcol_bin() -> Path:
    p, why = _locate()
    if p is None:
        pytest.fail(why, pytrace=False)
    return p


@lru_cache(maxsize=1)
def components() -> dict:
    """The component types the peer build has: {"receivers": {...}, "processors": {...}, ...}."""
    import yaml

    r = helpers.run([otelcol_bin(), "components"], timeout=60)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    return {kind: {c["name"] for c in doc.get(kind) or []}
            for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}


# otelcol-contrib accepts the old names of these types as aliases of the new ones.
ALIASES = {"otlp": "otlp_grpc", "otlphttp": "otlp_http", "prometheusremotewrite": "prometheus_remote_write",
           "spanmetrics": "span_metrics"}


def lacks(config: dict) -> list:
    """The component ids of `config` whose type the peer build does not have."""
    have = components()
    missing = []
    for kind in ("receivers", "processors", "exporters", "connectors", "extensions"):
        for cid in (config.get(kind) or {}):
            t = cid.split("/", 1)[0]
            if t not in have[kind] and ALIASES.get(t) not in have[kind]:
                missing.append(f"{kind}.{cid}")
    return missing
