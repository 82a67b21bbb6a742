"""Exporters behind an HTTP proxy, against otelcol-contrib.

- `otlphttp` with `proxy_url` (credentials in the URL): every request goes to the proxy, a
  plain-HTTP one as an absolute-form request carrying `Proxy-Authorization`, as Go's
  transport sends it; both collectors must deliver, and the proxy must see the same request
  line and credentials from each.
- With `HTTP_PROXY`/`HTTPS_PROXY` in the environment and no `proxy_url`, both collectors must
  reach a loopback Tempo and Loki directly (Go never proxies localhost or loopback
  addresses, for `otlphttp` and for grpc-go alike): the proxy sees nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
import traffic  # noqa: E402
from http_proxy import HttpProxy, Proxied  # noqa: E402
from pair import Pair  # noqa: E402


def config(exporters: dict) -> str:
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": exporters,
        "service": {
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": list(exporters)}},
        },
    }, sort_keys=False)


def send(pair: Pair, n: int = 4):
    body = traffic.request(({"service.name": "proxy-parity"},
                            [traffic.span(name=f"op-{i}") for i in range(n)])).SerializeToString()
    assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}


def test_otlphttp_proxy_url_sends_what_otelcol_sends(procs, tmp_path, redline_bin):
    proxy = HttpProxy().start()
    try:
        pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin,
                    config({"otlphttp/out": {"endpoint": "http://127.0.0.1:4318", "compression": "none",
                                             "proxy_url": proxy.url("otel:s3cret")}}),
                    flush_interval=None)
        try:
            send(pair)
            helpers.wait_until(lambda: all(s.posted_of("traces") for s in pair.http_sinks.values()), 20,
                               "both collectors to deliver through the proxy")
            seen = {side: {r for r in proxy.requests() if f":{s.port}/" in r.target}
                    for side, s in pair.http_sinks.items()}
            expected = {side: {Proxied("POST", s.url("/v1/traces"), "Basic b3RlbDpzM2NyZXQ=")}
                        for side, s in pair.http_sinks.items()}
            assert seen == expected, proxy.requests()
        finally:
            pair.stop()
    finally:
        proxy.stop()


def test_loopback_endpoints_bypass_the_environments_proxy_in_both(procs, tmp_path, redline_bin):
    proxy = HttpProxy().start()
    try:
        env = {"HTTP_PROXY": proxy.url(), "HTTPS_PROXY": proxy.url(), "NO_PROXY": ""}
        pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin,
                    config({"otlp/tempo": {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}},
                            "otlphttp/loki": {"endpoint": "http://127.0.0.1:4318"}}),
                    flush_interval=None, env=env)
        try:
            send(pair)
            helpers.wait_until(
                lambda: all(s.posted_of("traces") for s in pair.http_sinks.values())
                and all(s.span_count() == 4 for s in pair.sinks.values()), 20,
                "both collectors to deliver over gRPC and HTTP")
            assert proxy.requests() == []
        finally:
            pair.stop()
    finally:
        proxy.stop()
