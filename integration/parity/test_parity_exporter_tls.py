"""The `otlp` exporter's `tls` section against otelcol-contrib: each collector forwards the
same spans to its own TLS sink (which speaks only TLS).

- Tempo behind a self-signed certificate is common inside a cluster, and the otelcol files
  for it say `tls: {insecure_skip_verify: true}`: with the sink's certificate from a CA
  neither collector was given, both must deliver every span; without the key both must
  refuse the certificate and deliver nothing.
- Hardened files pin `min_version: "1.3"`, `curve_preferences` and `cipher_suites`: both
  must deliver with them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
import traffic  # noqa: E402
from pair import Pair  # noqa: E402
from pki import make_pki  # noqa: E402


def config(tls: dict) -> str:
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {"otlp/tempo": {
            "endpoint": "127.0.0.1:4317", "tls": tls,
            "retry_on_failure": {"initial_interval": "100ms", "max_interval": "200ms",
                                 "max_elapsed_time": "2s"},
        }},
        "service": {
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/tempo"]}},
        },
    }, sort_keys=False)


def span_names(sink) -> list:
    return sorted(sp.name for _, _, sp in sink.spans())


def run(procs, tmp_path, redline_bin, tls: dict):
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    make_pki(certs)
    tls = {k: (str(certs / v) if k == "ca_file" else v) for k, v in tls.items()}
    sink_tls = ((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())
    pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, config(tls),
                flush_interval=None, sink_tls=sink_tls)
    body = traffic.request(({"service.name": "tls-parity"},
                            [traffic.span(name=f"op-{i}") for i in range(5)])).SerializeToString()
    return pair, body


@pytest.mark.parametrize("tls", [
    {"insecure_skip_verify": True},
    {"ca_file": "ca.pem", "min_version": "1.3", "curve_preferences": ["X25519", "P256"],
     "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]},
], ids=["insecure_skip_verify", "hardened"])
def test_both_deliver_over_tls(procs, tmp_path, redline_bin, tls):
    pair, body = run(procs, tmp_path, redline_bin, tls)
    try:
        assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}
        helpers.wait_until(lambda: all(s.span_count() == 5 for s in pair.sinks.values()), 20,
                           "both collectors to forward over TLS")
        expected = [f"op-{i}" for i in range(5)]
        assert {side: span_names(s) for side, s in pair.sinks.items()} == \
            {"otelcol": expected, "redline": expected}
    finally:
        pair.stop()


def test_without_it_the_certificate_is_refused_in_both(procs, tmp_path, redline_bin):
    pair, body = run(procs, tmp_path, redline_bin, {})
    try:
        assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}
        # Each says why its attempts fail (otelcol: grpc-go's x509 error; Redline: rustls's).
        helpers.wait_until(
            lambda: all("certificate" in c.proc.log_path.read_text(errors="replace")
                        for c in pair.c.values()), 30,
            "both collectors to refuse the certificate")
        assert {side: s.span_count() for side, s in pair.sinks.items()} == \
            {"otelcol": 0, "redline": 0}
    finally:
        pair.stop()
