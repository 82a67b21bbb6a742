"""A corpus of otelcol configs in the shapes otelcol's docs and READMEs show
(integration/configs/otelcol/*.yaml): every file is valid for Redline (`redline validate`
exits 0) and for otelcol-contrib itself (`validate` of the parity suite's peer build), so the
corpus is genuinely otelcol's YAML.

And configs with otelcol-contrib components Redline lacks (integration/configs/unsupported/):
`redline validate` fails with exactly one error per such component, each saying "not
supported by Redline", and no other error. otelcol validates each of those files too, unless
the peer build lacks one of its components (then that half is skipped, naming them).

A corpus file that fails only because of a feature being implemented at the time can be listed
in PENDING: it is then xfail(strict=True) (a failure once the feature lands, as a reminder to
drop the entry), and the xfail holds only when every error is of the pending kind; any other
error fails the test outright.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

import helpers
import otelcol_peer
from redline_run import Redline

HERE = Path(__file__).resolve().parent
CORPUS = sorted((HERE / "configs" / "otelcol").glob("*.yaml"))
UNSUPPORTED = sorted((HERE / "configs" / "unsupported").glob("*.yaml"))

# ${env:...} variables the corpus reads without a default; the same for both collectors. Those
# with a default (OTLP_GRPC_PORT, LOKI_URL, COLLECTOR_LOG_LEVEL, ...) stay unset on purpose.
ENV = {"LOKI_TENANT": "tenant-a", "TEMPO_ENDPOINT": "tempo:4317", "MEMORY_LIMIT_MIB": "800",
       "VENDOR_API_TOKEN": "token-123", "AGENT_TOKEN": "agent-secret"}
UNSET = ("OTLP_LISTEN_HOST", "OTLP_GRPC_PORT", "MEMORY_CHECK_INTERVAL", "BATCH_TIMEOUT", "LOKI_URL",
         "COLLECTOR_LOG_LEVEL")


class PendingFeature(AssertionError):
    """A corpus file failed only because of a feature being implemented right now."""


# file -> (reason, patterns every error of the file must match for the xfail to hold). Empty:
# periodic readers, the telemetry logs keys and resource, and the flow-sequence indentation
# (07, 08, 10) were pending when the corpus was written and have landed since. Example entry:
#   "07-telemetry-readers.yaml": ("periodic readers are being implemented",
#                                 [r"service\.telemetry\.metrics\.readers\[\d+\]\.periodic: "]),
PENDING: dict = {}

# otelcol-contrib v0.161.0 refuses the `logging` exporter by name (it was removed upstream in
# favour of `debug`); Redline still takes it, with a deprecation warning.
OTELCOL_REFUSES = {"04-logging-deprecated.yaml": "the logging exporter has been deprecated, use the debug exporter"}


def _run_env():
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(ENV)
    return env


def redline_validate(redline_bin, path: Path):
    """(exit code, error lines, reported error count, stdout + stderr)."""
    r = helpers.run([redline_bin, "validate", "--config", path.name], timeout=60, cwd=path.parent, env=_run_env())
    out = r.stdout + r.stderr
    summary = re.search(r"invalid config \((\d+) error\(s\)\)", out)
    errors = [line for line in r.stderr.splitlines()
              if line.startswith(path.name + ":") and not line.startswith("warning")]
    return r.returncode, errors, int(summary.group(1)) if summary else 0, out


def otelcol_validate(path: Path):
    r = helpers.run([otelcol_peer.otelcol_bin(), "validate", "--config", path.name], timeout=60, cwd=path.parent,
                    env=_run_env())
    return r.returncode, r.stdout + r.stderr


def _corpus_param(p: Path):
    if p.name in PENDING:
        return pytest.param(p, id=p.name, marks=pytest.mark.xfail(strict=True, raises=PendingFeature,
                                                                   reason=PENDING[p.name][0]))
    return pytest.param(p, id=p.name)


def test_corpus_is_there():
    assert 10 <= len(CORPUS) <= 20, [p.name for p in CORPUS]
    assert UNSUPPORTED


@pytest.mark.parametrize("path", [_corpus_param(p) for p in CORPUS])
def test_redline_validates(redline_bin, path):
    code, errors, count, out = redline_validate(redline_bin, path)
    if code != 0 and path.name in PENDING:
        patterns = [re.compile(p) for p in PENDING[path.name][1]]
        if errors and count == len(errors) and all(any(p.search(e) for p in patterns) for e in errors):
            raise PendingFeature(out)
    assert code == 0, f"redline validate {path.name} exited {code}:\n{out}"
    assert "config is valid" in out, out
    if path.name not in OTELCOL_REFUSES:  # the logging exporter may well be warned about
        assert "warning" not in out.lower(), out


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CORPUS])
def test_otelcol_validates(path):
    code, out = otelcol_validate(path)
    if path.name in OTELCOL_REFUSES:
        assert code != 0 and OTELCOL_REFUSES[path.name] in out, \
            f"otelcol-contrib was expected to refuse {path.name} ({OTELCOL_REFUSES[path.name]}):\n{out}"
        return
    assert code == 0, f"otelcol-contrib validate {path.name} exited {code}:\n{out}"


LOGGING = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  logging:
    verbosity: normal
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [logging]
"""


def test_the_logging_exporter_runs_with_a_deprecation_warning(redline_bin, procs, tmp_path):
    """Redline takes otelcol's removed `logging` exporter (04-logging-deprecated.yaml) and says,
    when it starts it, to use `debug` instead."""
    rl = Redline(procs, redline_bin, tmp_path, LOGGING).start()
    helpers.wait_until(lambda: "logging" in rl.proc.log_text() and "debug" in rl.proc.log_text()
                       and re.search(r"WARN.*`logging` exporter", rl.proc.log_text()), 10,
                       "the deprecation warning of the logging exporter", alive=rl.proc)
    rl.stop()


# What each unsupported-components file uses that Redline lacks, as `<section>.<id>`.
MISSING = {
    "contrib-kafka-routing.yaml": ["receivers.kafka", "connectors.routing", "exporters.kafka/acme"],
}


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in UNSUPPORTED])
def test_redline_names_each_missing_component_once(redline_bin, path):
    missing = MISSING[path.name]
    code, errors, count, out = redline_validate(redline_bin, path)
    assert code != 0, out
    assert count == len(errors), f"the summary counts {count} error(s), {len(errors)} printed:\n{out}"
    named = {}
    for e in errors:
        m = re.match(re.escape(path.name) + r":\d+:\d+: ([a-z_]+\.[^:]+): (.*)$", e)
        assert m, f"error line without position and key path: {e!r}"
        named.setdefault(m.group(1), []).append(m.group(2))
    assert sorted(named) == sorted(missing), f"errors for {sorted(named)}, components Redline lacks {missing}:\n{out}"
    for key, msgs in named.items():
        assert len(msgs) == 1, f"{key}: {len(msgs)} errors:\n{out}"
        assert "not supported by Redline" in msgs[0], f"{key}: {msgs[0]}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in UNSUPPORTED])
def test_otelcol_validates_the_unsupported_configs(path):
    absent = otelcol_peer.lacks(yaml.safe_load(path.read_text()))
    if absent:
        pytest.skip(f"the otelcol-contrib peer build lacks {', '.join(absent)}")
    code, out = otelcol_validate(path)
    assert code == 0, f"otelcol-contrib validate {path.name} exited {code}:\n{out}"
