"""Every configuration key otelcol-contrib knows, Redline knows too.

The contract: a file written for otelcol either works the same in Redline or fails with a
message naming the key as a setting Redline does not support yet; no key otelcol decodes is
"unknown" to Redline, and no component type otelcol has (aliases included) is missing.

The peer lists its keys itself (`otelcol-redline-peer config-keys`, tools/otelcol/configkeys.go):
it walks each component's default config the way confmap decodes it (mapstructure tags,
`,squash`, optional sections), so the list follows the pinned release without being written
down here. Redline's `validate` then reads one component instance per key, each holding that
key alone, and no answer may be "unknown field". One bogus key per component type checks that
every type's keys were reached.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import helpers  # noqa: E402

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")

# A value of each shape the peer reports; any value does, since a key is unknown or not
# whatever it holds.
PLACEHOLDER = {"string": "x", "bool": True, "int": 1, "float": 0.5, "duration": "1s",
               "list": [], "map": {}, "any": "x"}

BOGUS = "redline_audit_not_a_key"


@pytest.fixture(scope="module")
def otelcol_keys(otelcol_bin) -> dict:
    out = helpers.run([str(otelcol_bin), "config-keys"], timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def redline_types(redline_bin) -> dict:
    out = helpers.run([str(redline_bin), "components"], timeout=30)
    assert out.returncode == 0, out.stderr
    types = {}
    for line in out.stdout.splitlines():
        kind, _, names = line.partition(": ")
        types[kind] = {n.strip() for n in names.split(",") if n.strip()}
    assert set(types) == set(KINDS), types
    return types


def nested(path: list, value):
    """`value` at `path`: "[]" is a list's first item, "*" the value of a map key."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if rest and rest[0] == "[]":
        return {head: [nested(rest[1:], value)] if rest[1:] else [value]}
    if rest and rest[0] == "*":
        return {head: {"k": nested(rest[1:], value)}}
    return {head: nested(rest, value)}


def test_every_component_type_of_otelcol_is_known_to_redline(otelcol_keys, redline_types):
    missing = sorted(f"{kind}: {t}" for kind in KINDS for t in otelcol_keys[kind]
                     if t not in redline_types[kind])
    assert not missing, "component types otelcol-contrib has and Redline does not:\n  " + "\n  ".join(missing)


@pytest.mark.parametrize("kind", KINDS)
def test_no_key_of_otelcol_is_unknown_to_redline(kind, otelcol_keys, redline_types, redline_bin, tmp_path):
    section, key_of = {}, {}
    for typ, keys in sorted(otelcol_keys[kind].items()):
        if typ not in redline_types[kind]:
            continue
        paths = sorted({tuple(k["path"]): k["kind"] for k in keys}.items())
        for n, (path, shape) in enumerate(paths):
            cid = f"{typ}/k{n}"
            section[cid] = nested(list(path), PLACEHOLDER[shape])
            key_of[cid] = ".".join(p for p in path if p not in ("[]", "*"))
        section[f"{typ}/bogus"] = {BOGUS: 1}
    config = tmp_path / "keys.yaml"
    config.write_text(yaml.safe_dump({kind: section}, sort_keys=False))
    out = helpers.run([str(redline_bin), "validate", "--config", str(config)], timeout=120)
    assert out.returncode != 0, "validate took the bogus keys"

    unknown, bogus_seen = [], set()
    line_re = re.compile(rf"^\S+:\d+:\d+: {kind}\.([^.\[]+/[^.\[]+)\S*: (.*)$")
    for line in out.stderr.splitlines():
        m = line_re.match(line)
        if not m or not m.group(2).startswith("unknown field"):
            continue
        cid = m.group(1)
        if cid.endswith("/bogus"):
            bogus_seen.add(cid)
        else:
            unknown.append(f"{kind}.{cid.split('/')[0]}: `{key_of.get(cid, cid)}`: {m.group(2)[:60]}")

    # Every type's instances were read: its bogus key was found.
    expected_bogus = {c for c in section if c.endswith("/bogus")}
    assert bogus_seen == expected_bogus, (sorted(expected_bogus - bogus_seen), out.stderr[-2000:])
    assert len(key_of) > 0
    assert not unknown, (f"{len(unknown)} otelcol keys are unknown to Redline (each should be "
                         "implemented or typed Unsupported):\n  " + "\n  ".join(unknown))
