"""otelcol's command line for configs: `--config` given several times (a path, `file:`,
`env:`, `yaml:`) and `--set`, merged in order. otelcol-contrib and Redline must accept and
refuse the same command lines (their `validate`), and a merged config must run as merged."""

from __future__ import annotations

import os

import pytest

import helpers
import relay
from otlp_sink import OtlpSink
from redline_config import pipeline

# The reference pipeline (gRPC only): otlp -> spanmetrics and otlp/tempo; prometheus.
BASE = pipeline(http=False, dimensions=["cdn.cache.hit"])


def _base(grpc=None):
    return BASE.format(grpc=grpc or helpers.free_port(), sink=helpers.free_port(),
                       prom=helpers.free_port())


# Each case: name, the config-source arguments ({base} and {overlay} are files, $BASE_CONFIG
# holds the base config), the overlay's text, and whether the merged config is valid.
CASES = [
    ("overlay adds an exporter and replaces the pipeline's list",
     ["--config", "{base}", "--config", "file:{overlay}"],
     "exporters:\n  debug: {}\nservice:\n  pipelines:\n    traces:\n      exporters: [spanmetrics, debug]\n",
     True),
    ("overlay empties the receiver list (lists are replaced, not appended)",
     ["--config", "{base}", "--config", "{overlay}"],
     "service:\n  pipelines:\n    traces:\n      receivers: []\n",
     False),
    ("overlay sets the exporter to null: its defaults, without an endpoint",
     ["--config", "{base}", "--config", "{overlay}"],
     "exporters:\n  otlp/tempo:\n",
     False),
    ("overlay nulls a nested map only",
     ["--config", "{base}", "--config", "{overlay}"],
     "exporters:\n  otlp/tempo:\n    tls: null\n",
     True),
    ("keys written with :: in a file",
     ["--config", "{base}", "--config", "{overlay}"],
     "exporters::otlp/tempo::timeout: 3s\n",
     True),
    ("the base from an environment variable",
     ["--config", "env:BASE_CONFIG"],
     None,
     True),
    ("inline yaml with :: keys",
     ["--config", "{base}", "--config", "yaml:exporters::otlp/tempo::compression: zstd"],
     None,
     True),
    ("--set with dots, a good value",
     ["--config", "{base}", "--set", "exporters.otlp/tempo.timeout=2s"],
     None,
     True),
    ("--set with a value the exporter refuses",
     ["--config", "{base}", "--set", "exporters.otlp/tempo.compression=zip"],
     None,
     False),
    ("--set a list naming an exporter that is not defined",
     ["--config", "{base}", "--set", "service.pipelines.traces.exporters=[spanmetrics, debug]"],
     None,
     False),
    # otelcol's `confmap.enableMergeAppendOption`: component lists append. Without the gate
    # the overlay's list replaces the base's, leaving spanmetrics fed by no pipeline.
    ("with the append gate, an overlay's exporter joins the pipeline's",
     ["--feature-gates=confmap.enableMergeAppendOption", "--config", "{base}", "--config",
      "{overlay}"],
     "exporters:\n  debug: {}\nservice:\n  pipelines:\n    traces:\n      exporters: [debug]\n",
     True),
    ("without the gate, the same overlay replaces the pipeline's exporters",
     ["--config", "{base}", "--config", "{overlay}"],
     "exporters:\n  debug: {}\nservice:\n  pipelines:\n    traces:\n      exporters: [debug]\n",
     False),
    ("--set without an equals sign",
     ["--config", "{base}", "--set", "exporters.otlp/tempo.timeout"],
     None,
     False),
]


def _args(template, base, overlay):
    return [a.format(base=base, overlay=overlay) for a in template]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_command_lines_accepted_and_refused(otelcol_bin, redline_bin, tmp_path, case):
    _, template, overlay_text, valid = case
    base_text = _base()
    base = tmp_path / "base.yaml"
    base.write_text(base_text)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(overlay_text or "")
    args = _args(template, base, overlay)
    env = {**os.environ, "BASE_CONFIG": base_text}
    peer = helpers.run([otelcol_bin, "validate", *args], timeout=60, env=env)
    ours = helpers.run([redline_bin, "validate", *args], timeout=30, env=env)
    assert (peer.returncode == 0) == valid, f"otelcol-contrib:\n{peer.stdout}{peer.stderr}"
    assert (ours.returncode == 0) == valid, f"redline:\n{ours.stdout}{ours.stderr}"
    assert "panicked" not in ours.stderr, ours.stderr


def test_a_merged_config_runs_as_merged(procs, redline_bin, tmp_path):
    """The port a `--set` gives is the one served, and the overlay's exporter is the one
    used: the base's receiver port stays closed."""
    base_port, set_port = helpers.free_port(), helpers.free_port()
    base = tmp_path / "base.yaml"
    base.write_text(_base(base_port))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("exporters:\n  debug: {verbosity: basic}\n"
                       "service:\n  pipelines:\n    traces:\n      exporters: [spanmetrics, debug]\n")
    rl = procs.start("redline", [redline_bin, "--config", base, "--config", f"file:{overlay}",
                                 "--set", f"receivers.otlp.protocols.grpc.endpoint=127.0.0.1:{set_port}"])
    helpers.wait_until(lambda: helpers.port_accepts(set_port), 20, "the --set gRPC port", alive=rl)
    assert not helpers.port_accepts(base_port), "the base's port is served although --set moved it"
    log = rl.log_text()
    # The base's exporter is left out of the merged pipeline: the warning names it at its
    # line in the base file, not in the merged config's name.
    assert f"WARN {base}:14:3: exporters.otlp/tempo: defined but not used" in log, log
    assert f"config={base} + {overlay} + --set receivers.otlp.protocols.grpc.endpoint" in log, log


def test_with_the_append_gate_both_exporters_send(procs, redline_bin, tmp_path):
    """`confmap.enableMergeAppendOption`: the overlay's `debug` joins the base's exporters
    instead of replacing them, so the base's `otlp/tempo` still sends every span."""
    port = helpers.free_port()
    with OtlpSink() as sink:
        base = tmp_path / "base.yaml"
        base.write_text(BASE.format(grpc=port, sink=sink.port, prom=helpers.free_port()))
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text("exporters:\n  debug: {verbosity: basic}\n"
                           "service:\n  pipelines:\n    traces:\n      exporters: [debug]\n")
        rl = procs.start("redline", [redline_bin, "--config", base, "--config", overlay,
                                     "--feature-gates=confmap.enableMergeAppendOption"])
        helpers.wait_until(lambda: helpers.port_accepts(port), 20, "the gRPC port", alive=rl)
        sent = [relay.request("append", 20)]
        relay.send_grpc(port, sent)
        helpers.wait_until(lambda: sink.span_count() >= 20, 20, "the spans at the sink", alive=rl)
        assert relay.span_bytes(sink.requests()) == relay.span_bytes(sent)
        helpers.wait_until(lambda: "exporter=debug" in rl.log_text(), 20, "debug's output",
                           alive=rl)
        log = rl.log_text()
        assert "spans=20" in log, log
        assert "defined but not used" not in log, log


# `--feature-gates` values: whether otelcol-contrib's validate accepts them, and whether
# Redline's does. Where they differ, docs/compatibility.md says why.
GATES = [
    ("-connector.spanmetrics.includeCollectorInstanceID", True, True),
    ("+exporter.prometheusexporter.DisableAddMetricSuffixes,-pdata.useProtoPooling", True, True),
    ("-processor.filter.defaultErrorModeIgnore", False, False),
    # Redline does not do what the gate asks: refused rather than ignored.
    ("connector.spanmetrics.legacyMetricNames", True, False),
    # A gate of a component neither build has: the peer (a subset of contrib) does not know
    # it, full contrib does; Redline warns and goes on.
    ("receiver.kafka.someGate", False, True),
]


@pytest.mark.parametrize("gates,peer_valid,redline_valid", GATES, ids=[g[0] for g in GATES])
def test_feature_gates(otelcol_bin, redline_bin, tmp_path, gates, peer_valid, redline_valid):
    base = tmp_path / "base.yaml"
    base.write_text(_base())
    args = ["validate", "--config", base, f"--feature-gates={gates}"]
    peer = helpers.run([otelcol_bin, *args], timeout=60)
    ours = helpers.run([redline_bin, *args], timeout=30)
    assert (peer.returncode == 0) == peer_valid, f"otelcol-contrib:\n{peer.stdout}{peer.stderr}"
    assert (ours.returncode == 0) == redline_valid, f"redline:\n{ours.stdout}{ours.stderr}"
    if not redline_valid:
        assert "--feature-gates: feature gate `" in ours.stderr, ours.stderr
