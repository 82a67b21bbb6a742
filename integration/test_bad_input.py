"""Bad input gets a clear error and changes nothing (docs/architecture.md section 5).

One Redline runs for the module (OTLP gRPC + HTTP on free 127.0.0.1 ports, forwarding to an
in-process sink). Config errors are checked with `redline validate --config` and `redline --config`.
"""

from __future__ import annotations

import json
import os
import time

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
from redline_config import REFERENCE
from redline_run import Redline, request, serve_module, span

CALLS = "traces_spanmetrics_calls_total"


# ------------------------------------------------------------------------ a running redline


@pytest.fixture(scope="module")
def server(redline_bin, module_procs, module_sink, tmp_path_factory):
    rl = Redline(module_procs, redline_bin, tmp_path_factory.mktemp("badinput"), REFERENCE, sink=module_sink.port)
    yield from serve_module(rl, module_sink, "the bad-input tests", stop_timeout=10)


def make_request(service: str, n: int = 1):
    return request(service, [span("http.server") for _ in range(n)])


def key(service, status="STATUS_CODE_UNSET", name="http.server", kind="SPAN_KIND_SERVER"):
    return helpers.label_key({"service_name": service, "span_name": name, "span_kind": kind, "status_code": status})


def wait_counted(rl: Redline, k: tuple, want: float, what: str):
    helpers.wait_until(lambda: rl.series(CALLS).get(k) == want, 10, f"{what}: {k} == {want}", alive=rl.proc)


def sink_ids(rl: Redline) -> set:
    return {(sp.trace_id, sp.span_id) for _, _, sp in rl.sink.spans()}


# ------------------------------------------------------------------------ bad input over gRPC and HTTP


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x0a\xff\xff\xff\xff\x0f",  # field 1 (resource_spans), length far past the end
        b"\x0a\x05\x0a\x03\x0a\x01",  # nested lengths overrunning their parent
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint tag too long
        b"\x0b",  # deprecated group start, never closed
    ],
    ids=["length-overrun", "nested-overrun", "bad-varint", "open-group"],
)
def test_malformed_protobuf_grpc(server, garbage):
    before_calls, before_sink = server.series(CALLS), server.sink.request_count()
    with pytest.raises(grpc.RpcError) as ei:
        server.export(garbage, timeout=5)
    err = ei.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"got {err.code()}: {err.details()}"
    assert err.details(), "INVALID_ARGUMENT should carry the reason"
    time.sleep(1.0)
    assert server.series(CALLS) == before_calls, "a malformed request changed the metrics"
    assert server.sink.request_count() == before_sink, "a malformed request was forwarded"


def test_malformed_json_http(server):
    before_calls, before_sink = server.series(CALLS), server.sink.request_count()
    for body in (b'{"resourceSpans": [', b"not json at all", b'{"resourceSpans": "nope"}'):
        r = requests.post(server.http_url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
        assert r.status_code == 400, f"body {body!r}: HTTP {r.status_code} {r.text[:200]}"
    time.sleep(1.0)
    assert server.series(CALLS) == before_calls
    assert server.sink.request_count() == before_sink


def test_malformed_protobuf_http(server):
    before_calls, before_sink = server.series(CALLS), server.sink.request_count()
    r = requests.post(server.http_url, data=b"\x0a\xff\xff\xff\xff\x0f",
                      headers={"Content-Type": "application/x-protobuf"}, timeout=5)
    assert r.status_code == 400, f"HTTP {r.status_code} {r.text[:200]}"
    time.sleep(1.0)
    assert server.series(CALLS) == before_calls
    assert server.sink.request_count() == before_sink


def test_valid_json_http_is_counted_and_forwarded(server):
    trace_id, span_id = os.urandom(16), os.urandom(8)
    now = time.time_ns()
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
            "scopeSpans": [{
                "scope": {"name": "bad-input-test"},
                "spans": [{
                    "traceId": trace_id.hex(), "spanId": span_id.hex(), "name": "http.server", "kind": 2,
                    "startTimeUnixNano": str(now - 7_000_000), "endTimeUnixNano": str(now),
                    "attributes": [{"key": "cdn.cache.hit", "value": {"boolValue": True}}],
                    "status": {"code": 2, "message": "boom"},
                }],
            }],
        }]
    }
    r = requests.post(server.http_url, data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 200, f"HTTP {r.status_code} {r.text[:200]}"
    k = helpers.label_key({"service_name": "json-svc", "span_name": "http.server", "span_kind": "SPAN_KIND_SERVER",
                           "status_code": "STATUS_CODE_ERROR", "cdn_cache_hit": "true"})
    wait_counted(server, k, 1.0, "JSON span counted")
    helpers.wait_until(lambda: (trace_id, span_id) in sink_ids(server), 10, "the JSON span to reach the sink")
    sp = next(sp for _, _, sp in server.sink.spans() if (sp.trace_id, sp.span_id) == (trace_id, span_id))
    assert sp.name == "http.server" and sp.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert sp.end_time_unix_nano - sp.start_time_unix_nano == 7_000_000


def test_still_serving_after_bad_input(server):
    # more garbage first, then a valid request over gRPC (gzip) and the SDK-style stub
    with pytest.raises(grpc.RpcError):
        server.export(b"\x0a\xff\xff\xff\xff\x0f", timeout=5)
    req = make_request("after-garbage", n=3)
    trace_service_pb2_grpc.TraceServiceStub(server.channel).Export(req, timeout=5, compression=grpc.Compression.Gzip)
    wait_counted(server, key("after-garbage"), 3.0, "valid spans after garbage counted")
    ids = {(sp.trace_id, sp.span_id) for sp in req.resource_spans[0].scope_spans[0].spans}
    helpers.wait_until(lambda: ids <= sink_ids(server), 10, "valid spans after garbage forwarded")
    r = requests.post(server.http_url, data=make_request("after-garbage-http").SerializeToString(),
                      headers={"Content-Type": "application/x-protobuf"}, timeout=5)
    assert r.status_code == 200, r.text[:200]
    wait_counted(server, key("after-garbage-http"), 1.0, "protobuf over HTTP counted")


# ------------------------------------------------------------------------ config errors


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in config")


BASE = REFERENCE.format(grpc=14317, http=14318, sink=14319, prom=19464)

BAD_CONFIGS = {
    # name: (replace old, with new, strings stderr must name, line marker or None)
    "typo-key": ("    dimensions:\n", "    dimensons:\n", ["connectors.spanmetrics.dimensons"], "dimensons:"),
    "wrong-type-list": ("    namespace: traces.spanmetrics\n", "    namespace: [1, 2]\n",
                        ["connectors.spanmetrics.namespace"], "namespace: [1, 2]"),
    "wrong-type-int": ("    namespace: traces.spanmetrics\n",
                       "    namespace: traces.spanmetrics\n    aggregation_cardinality_limit: lots\n",
                       ["connectors.spanmetrics.aggregation_cardinality_limit"], "aggregation_cardinality_limit"),
    "dangling-exporter": ("exporters: [spanmetrics, otlp/tempo]", "exporters: [spanmetrics, otlp/tmpo]",
                          ["service.pipelines.traces.exporters", "otlp/tmpo"], None),
}


def _bad_config(tmp_path, name):
    old, new, names, marker = BAD_CONFIGS[name]
    assert BASE.count(old) == 1
    text = BASE.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path, names, (_line_of(text, marker) if marker else None)


def _check_error_output(res, path, names, line, how):
    err = res.stderr
    assert res.returncode not in (0, None), f"{how}: exit 0 for a broken config\nstderr:\n{err}"
    assert res.returncode < 100 and res.returncode > 0, f"{how}: odd exit code {res.returncode} (crash?)\n{err}"
    assert "panicked" not in err and "RUST_BACKTRACE" not in err, f"{how}: panicked\n{err}"
    assert str(path) in err or path.name in err, f"{how}: stderr does not name the file {path}\n{err}"
    for n in names:
        assert n in err, f"{how}: stderr does not name {n!r}\n{err}"
    if line is not None:
        assert f"{path.name}:{line}:" in err, f"{how}: stderr does not point at line {line} ({path.name}:{line}:)\n{err}"


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_validate_rejects_bad_config(redline_bin, tmp_path, name):
    path, names, line = _bad_config(tmp_path, name)
    res = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    print(f"validate {name}: exit {res.returncode}\n{res.stderr}")
    _check_error_output(res, path, names, line, "redline validate")


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_run_rejects_bad_config(redline_bin, tmp_path, name):
    path, names, line = _bad_config(tmp_path, name)
    try:
        res = helpers.run([redline_bin, "--config", path], timeout=20)
    except Exception as e:  # TimeoutExpired: it started serving a broken config
        pytest.fail(f"redline --config {name}: did not exit within 20s on a broken config ({e})")
    print(f"run {name}: exit {res.returncode}\n{res.stderr}")
    _check_error_output(res, path, names, line, "redline --config")


@pytest.mark.parametrize("value", ["0", "two", "-3"])
def test_run_rejects_a_bad_worker_count(redline_bin, tmp_path, value):
    """TOKIO_WORKER_THREADS, which tokio would panic on, is refused with a message naming it."""
    path = tmp_path / "good.yaml"
    path.write_text(BASE)
    env = {**os.environ, "TOKIO_WORKER_THREADS": value}
    res = helpers.run([redline_bin, "--config", path], timeout=20, env=env)
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stderr}"
    assert "panicked" not in res.stderr, res.stderr
    assert f'TOKIO_WORKER_THREADS="{value}": expected a number of runtime worker threads' \
        in res.stderr, res.stderr


def test_validate_reports_command_line_and_config_problems_together(redline_bin, tmp_path):
    """A refused `--set` or feature gate does not hide the config's own problems."""
    path = tmp_path / "typo.yaml"
    path.write_text(BASE.replace("    dimensions:\n", "    dimensons:\n"))
    res = helpers.run([redline_bin, "validate", "--config", path, "--set", "nokey",
                       "--feature-gates=connector.spanmetrics.legacyMetricNames"], timeout=30)
    assert res.returncode == 1, res.stderr
    assert "--set: `nokey`: expected key.path=value" in res.stderr, res.stderr
    assert "--feature-gates: feature gate `connector.spanmetrics.legacyMetricNames`" in res.stderr
    assert "connectors.spanmetrics.dimensons: unknown field" in res.stderr, res.stderr
    assert "invalid config (3 error(s))" in res.stderr, res.stderr


def test_validate_accepts_good_configs(redline_bin, tmp_path, shared_dir):
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    for path in (good, shared_dir / "reference" / "otelcol-tempo.yaml"):
        res = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
        assert res.returncode == 0, f"validate rejected {path}:\n{res.stderr}"


def test_validate_lists_every_problem_of_a_connector(redline_bin, tmp_path):
    """Three independent mistakes in one spanmetrics section and two in a servicegraph
    section: one run of `redline validate` names all five, each at its line."""
    text = BASE.replace("    namespace: traces.spanmetrics\n",
                        "    namespace: traces.spanmetrics\n"
                        "    exclude_dimensions: [nope]\n"
                        "    span_multiplier_key: \"\"\n"
                        "    metrics_flush_interval: 0s\n")
    text = text.replace("connectors:\n",
                        "connectors:\n"
                        "  servicegraph:\n"
                        "    latency_histogram_buckets: [10ms, 5ms]\n"
                        "    store: {max_items: 0}\n")
    assert text != BASE
    _check_validate_names_all(redline_bin, tmp_path / "several.yaml", text, [
        ("connectors.spanmetrics.exclude_dimensions[0]", "exclude_dimensions: [nope]"),
        ("connectors.spanmetrics.span_multiplier_key", "span_multiplier_key"),
        ("connectors.spanmetrics.metrics_flush_interval", "metrics_flush_interval: 0s"),
        ("connectors.servicegraph.latency_histogram_buckets", "latency_histogram_buckets"),
        ("connectors.servicegraph.store.max_items", "store: {max_items: 0}"),
    ])


def _check_validate_names_all(redline_bin, path, text, problems):
    """One `redline validate` run on `text` names each (key path, line marker) of `problems`
    at its line, and no more."""
    path.write_text(text)
    res = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    for key, marker in problems:
        _check_error_output(res, path, [key], _line_of(text, marker), "redline validate")
    assert f"invalid config ({len(problems)} error(s))" in res.stderr, res.stderr


def test_validate_goes_past_keys_that_do_not_parse(redline_bin, tmp_path):
    """A key that does not parse stops serde for its whole section; `redline validate` sets
    it aside and checks the rest, so one run names every bad key of the exporter and of the
    receiver. The exporter's `endpoint` is required: it goes back as a stand-in, so the level,
    checked only once the section parses, is still reported."""
    text = BASE.replace("    endpoint: 127.0.0.1:14319\n",
                        "    endpoint: [127.0.0.1:14319]\n"
                        "    headers: {x-scope-orgid: [a, b]}\n"
                        "    timeout: -1s\n"
                        "    compression: gzip\n"
                        "    compression_params: {level: 12}\n"
                        "    retry_on_failure: {enabled: maybe}\n")
    text = text.replace("        endpoint: 127.0.0.1:14318\n",
                        "        endpoint: 127.0.0.1:14318\n"
                        "        max_request_body_size: big\n"
                        "        bogus_key: 1\n")
    assert text.count("maybe") == 1 and text.count("bogus_key") == 1
    _check_validate_names_all(redline_bin, tmp_path / "past-first.yaml", text, [
        ("exporters.otlp/tempo.endpoint", "endpoint: [127.0.0.1:14319]"),
        ("exporters.otlp/tempo.headers.x-scope-orgid", "x-scope-orgid: [a, b]"),
        ("exporters.otlp/tempo.timeout", "timeout: -1s"),
        ("exporters.otlp/tempo.compression_params.level", "level: 12"),
        ("exporters.otlp/tempo.retry_on_failure.enabled", "enabled: maybe"),
        ("receivers.otlp.protocols.http.max_request_body_size", "max_request_body_size: big"),
        ("receivers.otlp.protocols.http.bogus_key", "bogus_key: 1"),
    ])
