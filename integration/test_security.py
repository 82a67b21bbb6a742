"""TLS, mutual TLS and authentication end to end (the `redline` binary, real clients).

One Redline runs for the module with:
  - receiver `otlp`: gRPC and HTTP over TLS, both behind `bearertokenauth` (token from an
    environment variable);
  - receiver `otlp/mtls`: gRPC over mutual TLS (client certificates from the test CA);
  - exporter `prometheus`: /metrics over TLS behind `basicauth/metrics`.
Clients: the OpenTelemetry Python SDK's OTLPSpanExporter and raw grpc channels with TLS
credentials, `requests` over HTTPS. Certificates come from a CA made per run with the
`openssl` CLI. The token and the password must never show in `redline validate` output or logs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import helpers
from pki import make_pki

CALLS = "traces_spanmetrics_calls_total"
# Distinctive values, so a leak is unmistakable in any output.
TOKEN = "tok-7f3a9c1e5b2d8804-secret"
SCRAPE_USER = "prom"
SCRAPE_PASSWORD = "pw-51c0ffee9e4d-secret"

CONFIG = """\
extensions:
  bearertokenauth:
    token: ${{env:REDLINE_TEST_TOKEN}}
  basicauth/metrics:
    htpasswd:
      inline: |
        {user}:${{env:REDLINE_TEST_SCRAPE_PASSWORD}}

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        tls:
          cert_file: {certs}/server.pem
          key_file: {certs}/server.key
        auth:
          authenticator: bearertokenauth
      http:
        endpoint: 127.0.0.1:{http}
        tls:
          cert_file: {certs}/server.pem
          key_file: {certs}/server.key
        auth:
          authenticator: bearertokenauth
  otlp/mtls:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{mtls}
        tls:
          cert_file: {certs}/server.pem
          key_file: {certs}/server.key
          client_ca_file: {certs}/ca.pem

connectors:
  spanmetrics:
    namespace: traces.spanmetrics

exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom}
    tls:
      cert_file: {certs}/server.pem
      key_file: {certs}/server.key
    auth:
      authenticator: basicauth/metrics

service:
  extensions: [bearertokenauth, basicauth/metrics]
  pipelines:
    traces:
      receivers: [otlp, otlp/mtls]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

ENV = {"REDLINE_TEST_TOKEN": TOKEN, "REDLINE_TEST_SCRAPE_PASSWORD": SCRAPE_PASSWORD}


# ------------------------------------------------------------------------ certificates


# ------------------------------------------------------------------------ a running redline


class Server:
    pass


@pytest.fixture(scope="module")
def server(redline_bin, module_procs, tmp_path_factory):
    work = tmp_path_factory.mktemp("security")
    certs = work / "certs"
    certs.mkdir()
    make_pki(certs)
    s = Server()
    s.certs = certs
    s.ca = (certs / "ca.pem").read_bytes()
    s.grpc, s.http, s.mtls, s.prom = (helpers.free_port() for _ in range(4))
    s.config = work / "redline.yaml"
    s.config.write_text(CONFIG.format(grpc=s.grpc, http=s.http, mtls=s.mtls, prom=s.prom,
                                      certs=certs, user=SCRAPE_USER))
    s.redline_bin = redline_bin
    # Debug logs include every refusal's reason: the strictest place to look for leaks.
    s.proc = module_procs.start("redline", [redline_bin, "--config", s.config, "--log-level", "debug"],
                                env=ENV)
    s.metrics_url = f"https://localhost:{s.prom}/metrics"

    def ready():
        r = requests.get(s.metrics_url, verify=str(certs / "ca.pem"), timeout=2,
                         auth=(SCRAPE_USER, SCRAPE_PASSWORD))
        return (r.status_code == 200 and helpers.port_accepts(s.grpc)
                and helpers.port_accepts(s.http) and helpers.port_accepts(s.mtls))

    helpers.wait_until(ready, 30, "redline to serve over TLS", alive=s.proc)
    yield s
    assert s.proc.poll() is None, f"redline died during the security tests:\n{s.proc.log_text()}"
    code = s.proc.stop(timeout=10)
    assert code == 0 and not s.proc.killed, f"redline did not stop cleanly on SIGTERM (exit {code})"
    log = s.proc.log_path.read_text(errors="replace")
    assert TOKEN not in log and SCRAPE_PASSWORD not in log, "a secret appeared in the logs"


def calls(s: Server) -> dict:
    """calls_total by service, scraped over TLS with the scrape credentials."""
    r = requests.get(s.metrics_url, verify=str(s.certs / "ca.pem"), timeout=5,
                     auth=(SCRAPE_USER, SCRAPE_PASSWORD),
                     headers={"Accept": "text/plain;version=0.0.4"})
    assert r.status_code == 200, r.text
    out: dict = {}
    for name, labels, value in helpers.parse_text_metrics(r.text):
        if name == CALLS:
            svc = labels.get("service_name")
            out[svc] = out.get(svc, 0) + value
    return out


def finished_spans(service: str, n: int):
    """n finished SDK spans of `service`, recorded in memory (so export() can be called
    directly and its result checked)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("security-test")
    for i in range(n):
        with tracer.start_as_current_span(f"op-{i % 2}"):
            pass
    spans = memory.get_finished_spans()
    provider.shutdown()
    assert len(spans) == n
    return spans


def credentials(s: Server, client_cert: bool = False) -> grpc.ChannelCredentials:
    if client_cert:
        return grpc.ssl_channel_credentials(
            root_certificates=s.ca,
            private_key=(s.certs / "client.key").read_bytes(),
            certificate_chain=(s.certs / "client.pem").read_bytes(),
        )
    return grpc.ssl_channel_credentials(root_certificates=s.ca)


def raw_request(service: str, n: int) -> trace_service_pb2.ExportTraceServiceRequest:
    now = time.time_ns()
    spans = [trace_pb2.Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="raw",
                            kind=trace_pb2.Span.SPAN_KIND_SERVER,
                            start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now)
             for _ in range(n)]
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[common_pb2.KeyValue(
            key="service.name", value=common_pb2.AnyValue(string_value=service))]),
        scope_spans=[trace_pb2.ScopeSpans(spans=spans)],
    )])


def export_raw(s: Server, port: int, service: str, n: int, token: str | None = None,
               client_cert: bool = False):
    """One Export over a raw TLS channel; raises grpc.RpcError on failure."""
    with grpc.secure_channel(f"localhost:{port}", credentials(s, client_cert)) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        metadata = [("authorization", f"Bearer {token}")] if token is not None else None
        return stub.Export(raw_request(service, n), metadata=metadata, timeout=10)


# ------------------------------------------------------------------------ gRPC


def test_sdk_exports_over_tls_with_the_token(server):
    exporter = OTLPSpanExporter(endpoint=f"localhost:{server.grpc}", credentials=credentials(server),
                                headers={"authorization": f"Bearer {TOKEN}"}, timeout=10)
    try:
        assert exporter.export(finished_spans("sec-sdk", 7)) == SpanExportResult.SUCCESS
        assert exporter.export(finished_spans("sec-sdk", 5)) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    helpers.wait_until(lambda: calls(server).get("sec-sdk") == 12, 15,
                       "12 sec-sdk spans counted", alive=server.proc)


def test_wrong_or_missing_token_is_unauthenticated_and_not_counted(server):
    for token in ["not-the-token", None]:
        with pytest.raises(grpc.RpcError) as e:
            export_raw(server, server.grpc, "sec-denied", 3, token=token)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, e.value
        assert "not-the-token" not in (e.value.details() or "")
    # The SDK exporter reports the failure (UNAUTHENTICATED is not retryable).
    exporter = OTLPSpanExporter(endpoint=f"localhost:{server.grpc}", credentials=credentials(server),
                                headers={"authorization": "Bearer wrong"}, timeout=10)
    try:
        assert exporter.export(finished_spans("sec-denied", 2)) == SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    # A request that is let in afterwards is counted; the refused ones never were.
    export_raw(server, server.grpc, "sec-after", 1, token=TOKEN)
    helpers.wait_until(lambda: calls(server).get("sec-after") == 1, 15, "the next request counted",
                       alive=server.proc)
    assert "sec-denied" not in calls(server)


def test_plaintext_grpc_is_refused_by_a_tls_receiver(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            stub.Export(raw_request("sec-plain", 1), timeout=5,
                        metadata=[("authorization", f"Bearer {TOKEN}")])
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), e.value
    assert "sec-plain" not in calls(server)


def test_mtls_needs_a_client_certificate(server):
    with pytest.raises(grpc.RpcError) as e:
        export_raw(server, server.mtls, "sec-mtls-nocert", 2)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE, e.value
    export_raw(server, server.mtls, "sec-mtls", 4, client_cert=True)
    helpers.wait_until(lambda: calls(server).get("sec-mtls") == 4, 15, "mTLS spans counted",
                       alive=server.proc)
    assert "sec-mtls-nocert" not in calls(server)


# ------------------------------------------------------------------------ HTTP


def test_https_with_bearer_token(server):
    url = f"https://localhost:{server.http}/v1/traces"
    body = raw_request("sec-http", 3).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    ca = str(server.certs / "ca.pem")

    r = requests.post(url, data=body, headers=headers, verify=ca, timeout=10)
    assert r.status_code == 401, r.text
    r = requests.post(url, data=b"{}", verify=ca, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": "Bearer nope-nope"})
    assert r.status_code == 401
    assert "does not match" in r.text and "nope-nope" not in r.text, r.text

    r = requests.post(url, data=body, verify=ca, timeout=10,
                      headers={**headers, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    helpers.wait_until(lambda: calls(server).get("sec-http") == 3, 15, "HTTPS spans counted",
                       alive=server.proc)

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"http://127.0.0.1:{server.http}/v1/traces", data=body, timeout=5,
                      headers={**headers, "Authorization": f"Bearer {TOKEN}"})


# ------------------------------------------------------------------------ Prometheus exporter


def test_metrics_endpoint_needs_tls_and_basic_auth(server):
    ca = str(server.certs / "ca.pem")
    r = requests.get(server.metrics_url, verify=ca, timeout=5)
    assert r.status_code == 401 and "no basic auth provided" in r.text, (r.status_code, r.text)
    r = requests.get(server.metrics_url, verify=ca, timeout=5, auth=(SCRAPE_USER, "guess"))
    assert r.status_code == 401 and "invalid credentials" in r.text
    r = requests.get(server.metrics_url, verify=ca, timeout=5, auth=(SCRAPE_USER, SCRAPE_PASSWORD))
    assert r.status_code == 200 and CALLS in r.text
    # Not trusted without the CA, and no plain HTTP.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(server.metrics_url, timeout=5, auth=(SCRAPE_USER, SCRAPE_PASSWORD))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.prom}/metrics", timeout=5,
                     auth=(SCRAPE_USER, SCRAPE_PASSWORD))


def test_real_prometheus_scrapes_over_tls_with_basic_auth(server, procs, tmp_path):
    """Prometheus 2.42 with `scheme: https`, the test CA and basic_auth; a second job with a
    wrong password must show the target down."""
    export_raw(server, server.grpc, "sec-prom", 6, token=TOKEN)
    port = helpers.free_port()
    job = """  - job_name: {name}
    scheme: https
    tls_config:
      ca_file: {ca}
      server_name: localhost
    basic_auth:
      username: {user}
      password: {password}
    static_configs:
      - targets: ['127.0.0.1:{prom}']
"""
    cfg = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
    cfg += job.format(name="redline-tls", ca=server.certs / "ca.pem", user=SCRAPE_USER,
                      password=SCRAPE_PASSWORD, prom=server.prom)
    cfg += job.format(name="wrong-password", ca=server.certs / "ca.pem", user=SCRAPE_USER,
                      password="not-it", prom=server.prom)
    (tmp_path / "prometheus.yml").write_text(cfg)
    prom = procs.start("prometheus", [
        "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ])
    base = f"http://127.0.0.1:{port}"

    def query(q: str) -> list:
        body = requests.get(f"{base}/api/v1/query", params={"query": q}, timeout=5).json()
        assert body.get("status") == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def scraped():
        got = query('sum(traces_spanmetrics_calls_total{job="redline-tls",service_name="sec-prom"})')
        return got and got[0][1] == 6

    helpers.wait_until(scraped, 60, "Prometheus to scrape 6 sec-prom calls over TLS", alive=prom)
    helpers.wait_until(lambda: query('up{job="wrong-password"} == 0'), 30,
                       "the wrong-password job to be down", alive=prom)
    assert query('up{job="redline-tls"}')[0][1] == 1


# ------------------------------------------------------------------------ secrets stay secret


def test_validate_never_prints_secrets(server, tmp_path):
    ok = helpers.run([server.redline_bin, "validate", "--config", server.config], env={**os.environ, **ENV})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    out = ok.stdout + ok.stderr
    assert TOKEN not in out and SCRAPE_PASSWORD not in out, out

    # Secrets in the wrong place or shape: the error names the key, never the value.
    bad = server.config.read_text().replace(
        "    token: ${env:REDLINE_TEST_TOKEN}", "    tokens: ${env:REDLINE_TEST_TOKEN}",
    ).replace(
        f"      inline: |\n        {SCRAPE_USER}:${{env:REDLINE_TEST_SCRAPE_PASSWORD}}",
        "      inline:\n        nested: ${env:REDLINE_TEST_SCRAPE_PASSWORD}",
    )
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(bad)
    r = helpers.run([server.redline_bin, "validate", "--config", cfg], env={**os.environ, **ENV})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "extensions.bearertokenauth.tokens" in out, out
    assert "extensions.basicauth/metrics.htpasswd.inline" in out, out
    assert TOKEN not in out and SCRAPE_PASSWORD not in out, out

    # A missing certificate fails at start, naming the key and the file, still without secrets.
    ports = {k: helpers.free_port() for k in ("grpc", "http", "mtls", "prom")}
    missing = CONFIG.format(certs=server.certs, user=SCRAPE_USER, **ports).replace(
        f"{server.certs}/server.key", "/nonexistent/server.key", 1)
    cfg.write_text(missing)
    r = helpers.run([server.redline_bin, "--config", cfg], env={**os.environ, **ENV}, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "protocols.grpc.tls.key_file" in out and "/nonexistent/server.key" in out, out
    assert TOKEN not in out and SCRAPE_PASSWORD not in out, out
