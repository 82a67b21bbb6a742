"""The `health_check` and `zpages` servers' settings against otelcol-contrib, on one config.

- Probes over HTTPS: files that serve the health check (Kubernetes `scheme: HTTPS` probes) and
  the zpages behind `tls`, with `client_ca_file` when the probe presents a certificate. Both
  collectors must answer over TLS with the same certificate, refuse a client without one when
  `client_ca_file` is set, and never answer in plaintext.
- `check_collector_pipeline`, which old guides copy into files: otelcol keeps reading it and
  ignores it, so with every export failing and a threshold of one failure per second both
  must still start and answer healthy.
- `dialer` on a listening server: both start with it (a listener never dials).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
import traffic  # noqa: E402
from pair import SIDES, Pair  # noqa: E402
from pki import make_pki  # noqa: E402


def config(certs: Path, mutual: bool) -> str:
    tls = {"cert_file": str(certs / "server.pem"), "key_file": str(certs / "server.key")}
    if mutual:
        tls["client_ca_file"] = str(certs / "ca.pem")
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {
            "endpoint": "127.0.0.1:4317", "dialer": {"timeout": "5s"}}}}},
        "exporters": {"otlp/tempo": {
            "endpoint": "127.0.0.1:4317", "tls": {"insecure": True},
            "retry_on_failure": {"enabled": False},
        }},
        "extensions": {
            "health_check": {
                "endpoint": "127.0.0.1:13133", "tls": tls, "dialer": {"timeout": "5s"},
                "check_collector_pipeline": {"enabled": True, "interval": "1s",
                                             "exporter_failure_threshold": 1},
            },
            "zpages": {"endpoint": "127.0.0.1:55679", "tls": tls},
        },
        "service": {
            "extensions": ["health_check", "zpages"],
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/tempo"]}},
        },
    }, sort_keys=False)


@pytest.fixture
def certs(tmp_path) -> Path:
    d = tmp_path / "certs"
    d.mkdir()
    make_pki(d)
    return d


def start(procs, tmp_path, redline_bin, certs, mutual: bool) -> Pair:
    return Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin,
                config(certs, mutual), flush_interval=None)


def get(url: str, certs: Path, client_cert: bool = True):
    cert = (str(certs / "client.pem"), str(certs / "client.key")) if client_cert else None
    return requests.get(url, verify=str(certs / "ca.pem"), cert=cert, timeout=10)


def https(pair: Pair, side: str, key: str, path: str) -> str:
    return f"https://127.0.0.1:{pair.c[side].ports[key]}{path}"


def plaintext_answer(url: str) -> str:
    """What a plaintext client gets from a TLS listener: anything but a health answer."""
    try:
        return str(requests.get(url, timeout=10).status_code)
    except requests.exceptions.ConnectionError:
        return "closed"


def failed_spans(pair: Pair) -> dict:
    """Each collector's `otelcol_exporter_send_failed_spans`."""
    def of(side: str) -> float:
        text = requests.get(pair.c[side].url("telemetry", "/metrics"), timeout=10).text
        return sum(v for n, _, v in helpers.parse_text_metrics(text)
                   if n == "otelcol_exporter_send_failed_spans")
    return {side: of(side) for side in SIDES}


@pytest.mark.parametrize("mutual", [False, True], ids=["server_tls", "mutual_tls"])
def test_health_and_zpages_serve_over_tls_in_both(procs, tmp_path, redline_bin, certs, mutual):
    pair = start(procs, tmp_path, redline_bin, certs, mutual)
    try:
        for side in SIDES:
            health = get(https(pair, side, "health", "/"), certs)
            assert (health.status_code, health.json()["status"]) == (200, "Server available"), side
            page = get(https(pair, side, "zpages", "/debug/servicez"), certs)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"], side
            # Never in plaintext: Go's server answers 400 to an HTTP request on a TLS port,
            # Redline closes the connection; neither serves the health document.
            plain = plaintext_answer(f"http://127.0.0.1:{pair.c[side].ports['health']}/")
            assert plain in ("400", "closed"), (side, plain)
            if mutual:
                # A probe without a certificate fails its handshake.
                with pytest.raises(requests.exceptions.SSLError):
                    get(https(pair, side, "health", "/"), certs, client_cert=False)
    finally:
        pair.stop()


def test_check_collector_pipeline_is_ignored_by_both(procs, tmp_path, redline_bin, certs):
    pair = start(procs, tmp_path, redline_bin, certs, mutual=False)
    try:
        # Tempo goes away: every export fails, one failure per request.
        for sink in pair.sinks.values():
            sink.stop()
        body = traffic.request(({"service.name": "health-parity"},
                                [traffic.span(name=f"op-{i}") for i in range(3)])).SerializeToString()
        for _ in range(5):
            pair.grpc_export(body)
        expected = {"otelcol": 15, "redline": 15}
        helpers.wait_until(lambda: print(failed_spans(pair)) or failed_spans(pair) == expected, 20,
                           "both exporters to fail every span")
        assert failed_spans(pair) == expected
        # Past the check's interval, with five times its threshold of failures.
        time.sleep(2.5)
        answers = {side: get(https(pair, side, "health", "/"), certs).status_code for side in SIDES}
        assert answers == {"otelcol": 200, "redline": 200}
        assert "check_collector_pipeline has no effect" in pair.redline.proc.log_text()
    finally:
        pair.stop()
