"""Exporters that authenticate: `auth: {authenticator: <extension>}` on `otlp` and `otlphttp`,
against otelcol-contrib.

Both collectors run one config and forward the same spans to their own sink, which records
the headers (OTLP/HTTP) or metadata (OTLP/gRPC, over TLS) each request came with: the
credentials must be the same, byte for byte. `bearertokenauth` is in the peer; `basicauth` is
not (the Go module proxy serves no v0.161 of it), so its client side is checked against
Redline alone, with the header computed here. A gRPC exporter on a plaintext channel with
credentials fails to start in both (otelcol: grpc-go refuses the credentials; Redline says so
already in `validate`).
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
import traffic  # noqa: E402
from otlp_http_sink import OtlpHttpSink  # noqa: E402
from pair import Pair  # noqa: E402
from pki import make_pki  # noqa: E402
from redline_run import Redline  # noqa: E402


def pipeline(exporter_id: str, exporter: dict, extensions: dict) -> str:
    return yaml.safe_dump({
        "extensions": extensions,
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {exporter_id: exporter},
        "service": {
            "extensions": list(extensions),
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": [exporter_id]}},
        },
    }, sort_keys=False)


def send_spans(pair: Pair, n: int = 3):
    body = traffic.request(({"service.name": "auth-parity"},
                            [traffic.span(name=f"op-{i}") for i in range(n)])).SerializeToString()
    assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}


BEARER = {"bearertokenauth/out": {"token": "s3cret-t0ken"}}
CUSTOM = {"bearertokenauth/out": {"scheme": "Token", "header": "X-Api-Key",
                                  "tokens": ["first-t0ken", "second-t0ken"]}}


@pytest.mark.parametrize("extensions, header, value", [
    (BEARER, "authorization", "Bearer s3cret-t0ken"),
    (CUSTOM, "x-api-key", "Token first-t0ken"),
], ids=["bearer", "custom scheme and header"])
def test_otlphttp_sends_the_same_credentials_as_otelcol(procs, tmp_path, redline_bin, extensions, header, value):
    config = pipeline("otlphttp/out", {"endpoint": "http://127.0.0.1:4318", "compression": "none",
                                       "auth": {"authenticator": "bearertokenauth/out"}}, extensions)
    pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, config, flush_interval=None)
    try:
        send_spans(pair)
        helpers.wait_until(lambda: all(s.posted_of("traces") for s in pair.http_sinks.values()), 20,
                           "both collectors to forward over OTLP/HTTP")
        sent = {side: {p.headers.get(header) for p in s.posted_of("traces")}
                for side, s in pair.http_sinks.items()}
        assert sent == {"otelcol": {value}, "redline": {value}}, sent
    finally:
        pair.stop()


def test_otlp_grpc_over_tls_sends_the_same_credentials_as_otelcol(procs, tmp_path, redline_bin):
    certs = tmp_path / "certs"
    certs.mkdir()
    make_pki(certs)
    tls = ((certs / "server.key").read_bytes(), (certs / "server.pem").read_bytes())
    config = pipeline("otlp/out", {"endpoint": "127.0.0.1:4317", "tls": {"ca_file": str(certs / "ca.pem")},
                                   "auth": {"authenticator": "bearertokenauth/out"}}, BEARER)
    pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, config, flush_interval=None,
                sink_tls=tls)
    try:
        send_spans(pair)
        helpers.wait_until(lambda: all(s.received_of("traces") for s in pair.sinks.values()), 20,
                           "both collectors to forward over OTLP/gRPC with TLS")
        sent = {side: {dict(r.metadata).get("authorization") for r in s.received_of("traces")}
                for side, s in pair.sinks.items()}
        assert sent == {"otelcol": {"Bearer s3cret-t0ken"}, "redline": {"Bearer s3cret-t0ken"}}, sent
    finally:
        pair.stop()


def test_credentials_on_a_plaintext_grpc_channel_fail_the_start_in_both(tmp_path, redline_bin):
    config = tmp_path / "plaintext.yaml"
    config.write_text(pipeline("otlp/out", {"endpoint": f"127.0.0.1:{helpers.free_port()}",
                                            "tls": {"insecure": True},
                                            "auth": {"authenticator": "bearertokenauth/out"}}, BEARER)
                      .replace("127.0.0.1:4317", f"127.0.0.1:{helpers.free_port()}"))
    peer = helpers.run([str(otelcol_peer.otelcol_bin()), "--config", str(config)], timeout=60)
    assert peer.returncode != 0 and "require transport level security" in peer.stderr, peer.stderr[-800:]
    ours = helpers.run([str(redline_bin), "validate", "--config", str(config)], timeout=30)
    assert ours.returncode != 0, ours.stderr
    assert "exporters.otlp/out.auth: credentials are sent over TLS only" in ours.stderr, ours.stderr
    run = helpers.run([str(redline_bin), "--config", str(config)], timeout=30)
    assert run.returncode != 0 and "over TLS only" in run.stderr, run.stderr[-800:]


def test_basicauth_client_auth_sends_basic_credentials(procs, tmp_path, redline_bin):
    """basicauth is not in the peer: the header is what RFC 7617 and otelcol's extension make
    of `client_auth`, base64 of `username:password`."""
    with OtlpHttpSink() as sink:
        template = pipeline("otlphttp/cloud", {"endpoint": sink.url("/otlp"), "compression": "none",
                                               "auth": {"authenticator": "basicauth/cloud"}},
                            {"basicauth/cloud": {"client_auth": {"username": "123456",
                                                                 "password": "${env:CLOUD_TOKEN}"}}})
        template = (template.replace("127.0.0.1:4317", "127.0.0.1:{grpc}")
                    .replace("${env:CLOUD_TOKEN}", "${{env:CLOUD_TOKEN}}"))
        rl = Redline(procs, redline_bin, tmp_path, template, env={"CLOUD_TOKEN": "glc_s3cret"}).start()
        body = traffic.request(({"service.name": "auth"}, [traffic.span(name="op")])).SerializeToString()
        rl.grpc_channel().unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export")(body, timeout=10)
        helpers.wait_until(lambda: sink.posted_of("traces"), 20, "Redline to forward")
        time.sleep(0.2)
        want = "Basic " + base64.b64encode(b"123456:glc_s3cret").decode()
        assert {p.headers.get("authorization") for p in sink.posted_of("traces")} == {want}
        assert [p.path for p in sink.posted_of("traces")] == ["/otlp/v1/traces"]
        rl.stop()
