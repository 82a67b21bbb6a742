"""CORS on the OTLP/HTTP receiver, as a browser exercises it, against otelcol-contrib.

A config with cors.allowed_origins ["https://*.example.com"] runs in Redline and in
otelcol-contrib (the parity suite's Pair: same file, own ports and sinks); a second one adds
allowed_headers, max_age and exposed_headers.
Browser-style requests go to both: preflights (OPTIONS with Origin,
Access-Control-Request-Method and -Headers) and POSTs of OTLP/JSON logs with an Origin, from
listed and unlisted origins. Redline's answers are checked against what a browser needs, and
the status and every CORS response header (Access-Control-*, Vary) must be identical in both.

Note (otelcol's behaviour, which Redline follows): once `allowed_headers` is set, only the
listed headers are allowed, so a preflight asking for `content-type` (every OTLP/JSON or
protobuf POST from a browser) is refused unless Content-Type is listed too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent / "parity"))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
from pair import Pair  # noqa: E402

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
        cors:
          allowed_origins: ["https://*.example.com"]
{extra}
exporters:
  otlp:
    endpoint: 127.0.0.1:4317
    tls:
      insecure: true
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp]
"""
CONFIGS = {
    "origins": CONFIG.format(extra=""),
    "headers and max_age": CONFIG.format(extra='          allowed_headers: ["X-Tenant"]\n          max_age: 7200\n'
                                                '          exposed_headers: ["x-trace-id", "Retry-After"]'),
}

ALLOWED = "https://app.example.com"
UNLISTED = "https://evil.test"

LOGS = {"resourceLogs": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "browser-app"}}]},
    "scopeLogs": [{"scope": {"name": "web"}, "logRecords": [{
        "timeUnixNano": "1700000000000000000", "severityNumber": 9, "severityText": "INFO",
        "body": {"stringValue": "page loaded"},
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}]}]}]}


def preflight(origin, method="POST", headers="content-type"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return ("OPTIONS", h, None)


def post(origin):
    h = {"Content-Type": "application/json"}
    if origin:
        h["Origin"] = origin
    return ("POST", h, json.dumps(LOGS).encode())


CASES = {
    "preflight, listed origin": preflight(ALLOWED),
    "preflight, listed origin, X-Requested-With": preflight(ALLOWED, headers="x-requested-with"),
    "preflight, listed origin, configured header": preflight(ALLOWED, headers="content-type,x-tenant"),
    "preflight, listed origin, configured header only": preflight(ALLOWED, headers="x-tenant"),
    "preflight, listed origin, header not configured": preflight(ALLOWED, headers="content-type,x-other"),
    "preflight, listed origin, no request headers": preflight(ALLOWED, headers=None),
    "preflight, listed origin, method PUT": preflight(ALLOWED, method="PUT"),
    "preflight, unlisted origin": preflight(UNLISTED),
    "preflight, bare domain of the wildcard": preflight("https://example.com"),
    "preflight, other scheme": preflight("http://app.example.com"),
    "POST, listed origin": post(ALLOWED),
    "POST, unlisted origin": post(UNLISTED),
    "POST, no origin": post(None),
}


def cors_view(r: requests.Response) -> tuple:
    """Status and every CORS response header (names lower-cased; repeated headers joined as
    HTTP allows)."""
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")
               or k.lower() == "vary"}
    return r.status_code, dict(sorted(headers.items()))


def ask(collector, case):
    method, headers, body = case
    return requests.request(method, collector.url("http", "/v1/logs"), headers=headers, data=body, timeout=10)


@pytest.fixture(params=list(CONFIGS))
def pair(request, procs, tmp_path, redline_bin):
    p = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, CONFIGS[request.param], flush_interval=None)
    p.name = request.param
    try:
        yield p
    finally:
        p.stop()


def test_cors_like_a_browser_and_like_otelcol(pair):
    answers = {side: {name: ask(c, case) for name, case in CASES.items()} for side, c in pair.c.items()}
    rl = answers["redline"]

    # What a browser needs from Redline.
    if pair.name == "origins":
        ok = rl["preflight, listed origin"]
        h = {k.lower(): v for k, v in ok.headers.items()}
        assert ok.status_code == 204, ok.status_code
        assert h.get("access-control-allow-origin") == ALLOWED, h
        assert h.get("access-control-allow-methods", "").upper() == "POST", h
        assert h.get("access-control-allow-headers", "").lower() == "content-type", h
        assert h.get("access-control-allow-credentials") == "true", h
        assert "access-control-max-age" not in h, h
        denied = ("preflight, unlisted origin", "preflight, listed origin, header not configured",
                  "preflight, listed origin, method PUT", "preflight, bare domain of the wildcard",
                  "preflight, other scheme")
    else:
        ok = rl["preflight, listed origin, configured header only"]
        h = {k.lower(): v for k, v in ok.headers.items()}
        assert ok.status_code == 204, ok.status_code
        assert h.get("access-control-allow-origin") == ALLOWED, h
        assert h.get("access-control-allow-headers", "").lower() == "x-tenant", h
        assert h.get("access-control-max-age") == "7200", h
        denied = ("preflight, unlisted origin", "preflight, listed origin", "preflight, listed origin, method PUT")
    for name in denied:
        r = rl[name]
        assert r.status_code == 204, (name, r.status_code)
        assert not [k for k in r.headers if k.lower().startswith("access-control-allow")], (name, dict(r.headers))
    got = rl["POST, listed origin"]
    assert got.status_code == 200, got.text
    assert got.headers.get("Access-Control-Allow-Origin") == ALLOWED, dict(got.headers)
    # What a page's script may read of the answer, in Go's canonical spelling.
    exposed = "X-Trace-Id, Retry-After" if pair.name == "headers and max_age" else None
    assert got.headers.get("Access-Control-Expose-Headers") == exposed, dict(got.headers)
    assert got.headers.get("Access-Control-Allow-Credentials") == "true", dict(got.headers)
    bad = rl["POST, unlisted origin"]
    assert bad.status_code == 200, bad.text  # CORS is the browser's to enforce: the data is taken
    assert not [k for k in bad.headers if k.lower().startswith("access-control-")], dict(bad.headers)

    # The same as otelcol-contrib, request by request.
    diffs = []
    for name in CASES:
        a, b = cors_view(answers["otelcol"][name]), cors_view(rl[name])
        if a != b:
            diffs.append(f"{name}:\n    otelcol {a}\n    redline {b}")
    assert not diffs, "CORS answers differ from otelcol-contrib:\n  " + "\n  ".join(diffs)

    # Every POST was taken (CORS decides what a browser may read, not what is accepted): both
    # forward the three log records.
    def forwarded():
        n = {side: sum(len(sl.log_records) for req in pair.sinks[side].requests_of("logs")
                       for rl_ in req.resource_logs for sl in rl_.scope_logs) for side in pair.c}
        return n if all(v == 3 for v in n.values()) else None

    helpers.wait_until(forwarded, 15, "both collectors to forward the 3 log records")
    time.sleep(0.3)
