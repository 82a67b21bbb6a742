"""`${...}` references in config values: `${env:...}`, `${file:...}` and `${yaml:...}`, as
otelcol's resolver expands them. The text a reference gives is YAML (a whole section may come
from a file or a variable), a string stays exactly as written (a trailing newline included),
and it is expanded again (a variable may hold a `${file:...}`, `$$` is an escape in it too).
otelcol-contrib and Redline must accept and refuse the same files (their `validate`), and
send the same values when they run."""

from __future__ import annotations

import os

import pytest

import helpers
import relay
from otlp_sink import OtlpSink

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${{file:{dir}/listen}}
exporters: ${{file:{dir}/exporters.yaml}}
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/sink]
"""

EXPORTERS = """\
otlp/sink:
  endpoint: ${{env:SINK_ENDPOINT}}
  compression: ${{yaml:none}}
  tls:
    insecure: true
  headers:
    x-token: ${{file:{dir}/token}}
    x-site: "site-${{env:SITE}}"
    x-literal: "$${{env:SITE}}"
    x-indirect: ${{env:INDIRECT}}
    x-secret: ${{env:SECRET}}
"""

# A variable's `$$` is an escape, and its unclosed `${` is text.
HEADERS = {"x-token": "abc$def", "x-site": "site-eu", "x-literal": "${env:SITE}",
           "x-indirect": "abc$def", "x-secret": "pa$w${rd"}


def _start(procs, binary, name, tmp_path, sink):
    """`binary` on CONFIG, its receiver address and exporters read from files in a directory
    of its own; ready to take traffic. Returns (process, gRPC port)."""
    d = tmp_path / name
    d.mkdir()
    port = helpers.free_port()
    (d / "listen").write_text(f"127.0.0.1:{port}")
    (d / "token").write_text("abc$$def")
    (d / "exporters.yaml").write_text(EXPORTERS.format(dir=d))
    config = d / "config.yaml"
    config.write_text(CONFIG.format(dir=d, telemetry=helpers.free_port()))
    env = {"SINK_ENDPOINT": sink.endpoint, "SITE": "eu", "INDIRECT": f"${{file:{d}/token}}",
           "SECRET": "pa$$w${rd"}
    proc = procs.start(name, [binary, "--config", config], env=env)
    helpers.wait_until(lambda: helpers.port_accepts(port), 30, f"{name}'s receiver", alive=proc)
    return proc, port


def test_referenced_values_reach_the_sink_as_otelcol_sends_them(procs, otelcol_bin, redline_bin,
                                                                tmp_path):
    sent = [relay.request("references", 20)]
    seen = {}
    for name, binary in (("otelcol", otelcol_bin), ("redline", redline_bin)):
        with OtlpSink() as sink:
            proc, port = _start(procs, binary, name, tmp_path, sink)
            relay.send_grpc(port, sent)
            helpers.wait_until(lambda: sink.span_count() >= 20, 30, f"{name}'s spans",
                               alive=proc)
            assert relay.span_bytes(sink.requests()) == relay.span_bytes(sent)
            metadata = dict(sink.received()[0].metadata)
            seen[name] = {k: metadata.get(k) for k in HEADERS}
            proc.stop()
    assert seen["otelcol"] == HEADERS, seen
    assert seen["redline"] == seen["otelcol"]


# Each case: name, the exporter block (YAML under `exporters:`; {d} is a directory holding
# the files below), extra environment, and whether otelcol-contrib's and Redline's `validate`
# accept it. Where they differ, docs/compatibility.md §25 says why.
FILES = {
    "exporter.yaml": "otlp/tempo:\n  endpoint: 127.0.0.1:4317\n  tls: {insecure: true}\n"
                     "  timeout: ${env:TIMEOUT:-5s}\n",
    "zstd": "zstd",
    "zstd-newline": "zstd\n",
    "timeout-newline": "3s\n",
    "port-newline": "4317\n",
    "self": "x: ${file:{d}/self}\n",
    "broken-map": "a: ${file:{d}/missing}\n",
    "bogus.yaml": "otlp/tempo:\n  endpoint: 127.0.0.1:4317\n  tls: {insecure: true}\n  bogus: 1\n",
}
EXPORTER = "  otlp/tempo:\n    endpoint: 127.0.0.1:4317\n    tls: {insecure: true}\n"
CASES = [
    ("a section from a file", "  ${file:{d}/exporter.yaml}", {}, True, True),
    ("a section from a variable", "  ${env:SECTION}",
     {"SECTION": "otlp/tempo: {endpoint: '127.0.0.1:4317', tls: {insecure: true}}"}, True, True),
    ("a variable holding a file reference",
     EXPORTER + "    compression: ${env:REF}\n", {"REF": "${file:{d}/zstd}"}, True, True),
    ("a reference built from another",
     EXPORTER + "    compression: ${file:{d}/${env:NAME}}\n", {"NAME": "zstd"}, True, True),
    ("inline yaml", EXPORTER + "    compression: ${yaml:snappy}\n", {}, True, True),
    ("a string keeps its newline", EXPORTER + "    compression: ${file:{d}/zstd-newline}\n", {},
     False, False),
    ("a missing file", EXPORTER + "    compression: ${file:{d}/missing}\n", {}, False, False),
    ("a file including itself", EXPORTER + "    headers: ${file:{d}/self}\n", {}, False, False),
    ("a missing file inside a map", EXPORTER + "    headers: ${file:{d}/broken-map}\n", {},
     False, False),
    ("a variable referring to itself", EXPORTER + "    compression: ${env:LOOP}\n",
     {"LOOP": "${env:LOOP}"}, False, False),
    ("a provider neither has", EXPORTER + "    compression: ${https://example.com/c}\n", {},
     False, False),
    ("an unknown key in a section from a file", "  ${file:{d}/bogus.yaml}", {}, False, False),
    # Redline trims the space around durations and endpoints (it always has, in any value):
    # text written by `echo` works there. otelcol refuses the newline.
    ("a duration with a newline", EXPORTER + "    timeout: ${file:{d}/timeout-newline}\n", {},
     False, True),
    ("an endpoint with a newline",
     "  otlp/tempo:\n    endpoint: '127.0.0.1:${file:{d}/port-newline}'\n"
     "    tls: {insecure: true}\n", {}, False, True),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_references_accepted_and_refused(otelcol_bin, redline_bin, tmp_path, case):
    _, exporters, extra_env, peer_valid, redline_valid = case
    d = tmp_path
    for name, text in FILES.items():
        (d / name).write_text(text.replace("{d}", str(d)))
    exporters = exporters.replace("{d}", str(d))
    config = d / "config.yaml"
    config.write_text(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n"
        f"        endpoint: 127.0.0.1:{helpers.free_port()}\n"
        f"exporters:\n{exporters}\n"
        "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        "      exporters: [otlp/tempo]\n")
    env = {**os.environ, **{k: v.replace("{d}", str(d)) for k, v in extra_env.items()}}
    peer = helpers.run([otelcol_bin, "validate", "--config", config], timeout=60, env=env)
    ours = helpers.run([redline_bin, "validate", "--config", config], timeout=30, env=env)
    assert (peer.returncode == 0) == peer_valid, f"otelcol-contrib:\n{peer.stdout}{peer.stderr}"
    assert (ours.returncode == 0) == redline_valid, f"redline:\n{ours.stdout}{ours.stderr}"
    assert "panicked" not in ours.stderr, ours.stderr
