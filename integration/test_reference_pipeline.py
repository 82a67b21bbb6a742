"""The main acceptance test: the user's otelcol config, unchanged but for the Tempo address,
run by Redline between the real OpenTelemetry Python SDK, a real Prometheus and an independent
OTLP sink standing in for Tempo.

Checked against the test's own model of the spans it sent (redmodel.py):
  - every series (calls, errors, duration bucket/sum/count) through Prometheus's HTTP API
  - every dashboard query of shared/reference/dashboard-queries.md (rate(x[5m]) -> x)
  - the user's alert rules load and evaluate
  - exemplars (trace_id/span_id of sent spans, their durations) via /api/v1/query_exemplars
  - the sink received exactly the spans sent, byte for byte
  - `promtool check metrics` on the text exposition
"""

from __future__ import annotations

import difflib
import re
import time
from pathlib import Path

import pytest
import requests

import helpers
import promquery
import traceset
from promquery import close
from redmodel import Expected, histogram_quantile

GRPC_PORT = 4317  # as written in the reference file
METRICS_PORT = 9464  # as written in the reference file
METRICS_URL = f"http://127.0.0.1:{METRICS_PORT}/metrics"
PREFIX = "traces_spanmetrics_"

# Promtool lints the name the metric contract (and otelcol) mandates: milliseconds, not seconds.
KNOWN_LINT = {'traces_spanmetrics_duration_milliseconds use base unit "seconds" instead of "milliseconds"'}

ALERT_RULES = """\
groups:
  - name: redline-reference-alerts
    rules:
      - alert: HttpServerErrorRateHigh
        expr: >
          sum(rate(traces_spanmetrics_errors_total{span_name="http.server"}[5m]))
          / sum(rate(traces_spanmetrics_calls_total{span_name="http.server"}[5m])) > 0.01
        for: 5m
      - alert: HttpServerP95High
        expr: >
          histogram_quantile(0.95, sum(rate(traces_spanmetrics_duration_milliseconds_bucket{span_name="http.server"}[5m])) by (le))
          > 250
        for: 10m
      - alert: CacheHitRatioLow
        expr: >
          sum(rate(traces_spanmetrics_calls_total{span_name="cdn.file.read", cdn_cache_hit="true"}[5m]))
          / sum(rate(traces_spanmetrics_calls_total{span_name="cdn.file.read"}[5m])) < 0.8
        for: 15m
"""


# ------------------------------------------------------------------------ the pipeline


class Run:
    pass


@pytest.fixture(scope="module")
def run(redline_bin, shared_dir, module_procs, module_sink, tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    orig_path = shared_dir / "reference" / "otelcol-tempo.yaml"
    orig = orig_path.read_text()
    assert orig.count("systemd-tempo:4317") == 1, "reference config changed: expected one systemd-tempo:4317"
    copy = orig.replace("systemd-tempo:4317", f"127.0.0.1:{module_sink.port}")
    diff = [
        line
        for line in difflib.unified_diff(orig.splitlines(), copy.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == [
        "-    endpoint: systemd-tempo:4317",
        f"+    endpoint: 127.0.0.1:{module_sink.port}",
    ], f"the config copy must differ from the reference only in the Tempo endpoint: {diff}"
    cfg = work / "otelcol-tempo.yaml"
    cfg.write_text(copy)

    for port in (GRPC_PORT, METRICS_PORT):
        assert helpers.port_is_free(port), (
            f"port {port} is in use; the reference config binds 0.0.0.0:{port} as written, stop whatever holds it"
        )

    r = Run()
    r.work, r.cfg, r.sink = work, cfg, module_sink
    r.redline = module_procs.start("redline", [redline_bin, "--config", cfg, "--log-format", "text"])

    def redline_ready():
        ok = requests.get(METRICS_URL, timeout=1).status_code == 200
        return ok and helpers.port_accepts(GRPC_PORT)

    helpers.wait_until(redline_ready, 30, "redline to serve :9464/metrics and accept on :4317", alive=r.redline)

    # ---- a real Prometheus scraping it every second, with exemplar storage and the alert rules
    r.prom = promquery.start_prometheus(module_procs, work, [f"127.0.0.1:{METRICS_PORT}"], rules=ALERT_RULES)
    helpers.wait_until(
        lambda: [v for _, v in r.prom.query('up{job="redline"}')] == [1.0],
        20, "prometheus to scrape redline (up == 1)", alive=r.prom.proc,
    )

    # ---- the traffic
    r.t0 = time.time()
    r.spans = traceset.send(f"127.0.0.1:{GRPC_PORT}")
    r.exp = Expected(r.spans)
    assert len(r.exp.not_counted) == 2 and len(r.exp.counted) == len(r.spans) - 2 >= 30

    # ---- wait (bounded) until Prometheus holds the final values; the tests assert and show diffs
    state = {}

    def settled():
        state["snap"] = r.prom.stored_snapshot()
        state["problems"] = promquery.compare(state["snap"], r.exp)
        return not state["problems"]

    try:
        helpers.wait_until(settled, 30, "Prometheus to hold the expected series", interval=0.5, alive=r.redline)
    except helpers.WaitTimeout:
        pass
    r.snap, r.problems = state.get("snap"), state.get("problems")
    yield r


# ------------------------------------------------------------------------ tests


def test_every_series_exact(run):
    assert run.problems == [], "series in Prometheus differ from the spans sent:\n  " + "\n  ".join(run.problems)


def _dashboard_queries(shared_dir: Path) -> dict:
    text = (shared_dir / "reference" / "dashboard-queries.md").read_text()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*([^|]+?)\s*\|\s*`(.+)`\s*\|\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _expected_panels(exp: Expected) -> dict:
    cdn_hit = exp.sum_calls(span_name="cdn.file.read", cdn_cache_hit="true")
    cdn_all = exp.sum_calls(span_name="cdn.file.read")
    return {
        "HTTP request rate": ("by", "service_name", exp.sum_calls(by="service_name", span_name="http.server")),
        "Error rate": ("scalar", exp.sum_errors(span_name="http.server")),
        "p95 latency": ("scalar", histogram_quantile(0.95, exp.sum_buckets(span_name="http.server"))),
        "Cache hit ratio": ("scalar", cdn_hit / cdn_all),
        "WASM p95 execution": ("scalar", histogram_quantile(0.95, exp.sum_buckets(span_name="wasm.invoke"))),
    }


def test_dashboard_queries(run, shared_dir):
    queries = _dashboard_queries(shared_dir)
    expected = _expected_panels(run.exp)
    assert set(queries) == set(expected), (
        f"dashboard-queries.md panels {sorted(queries)} != panels this test knows {sorted(expected)}"
    )
    failures = []
    for panel, q in queries.items():
        instant = re.sub(r"rate\(([^\[\]]+)\[5m\]\)", r"\1", q)
        assert "rate(" not in instant and "[5m]" not in instant, instant
        res = run.prom.query(instant, allow_scalar=True)
        want = expected[panel]
        if want[0] == "by":
            got = {m.get(want[1]): v for m, v in res}
            ok = set(got) == set(want[2]) and all(close(got[k], float(want[2][k])) for k in got)
            if not ok:
                failures.append(f"{panel}: {instant}\n    got  {got}\n    want {want[2]}")
        else:
            got = [v for _, v in res]
            if len(got) != 1 or not close(got[0], float(want[1])):
                failures.append(f"{panel}: {instant}\n    got  {got}\n    want {want[1]}")
        print(f"{panel}: {instant} -> {[(m, v) for m, v in res]}")
    assert not failures, "dashboard queries returned wrong values:\n  " + "\n  ".join(failures)


def test_alert_rules_load_and_evaluate(run):
    rules_file = run.work / "rules.yml"
    res = helpers.run(["promtool", "check", "rules", rules_file], timeout=30)
    assert res.returncode == 0, f"promtool check rules failed:\n{res.stdout}\n{res.stderr}"

    def evaluated():
        body = requests.get(f"{run.prom.base}/api/v1/rules", timeout=5).json()
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        return rules if len(rules) == 3 and all(r.get("lastEvaluation", "").startswith("2") and
                                                 not r["lastEvaluation"].startswith("0001") for r in rules) else None

    rules = helpers.wait_until(evaluated, 15, "the alert rules to be evaluated")
    bad = [(r["name"], r.get("health"), r.get("lastError")) for r in rules if r.get("health") != "ok"]
    assert not bad, f"alert rules unhealthy: {bad}"


def test_exemplars(run):
    sent = {(format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")): s for s in run.spans}
    sent_traces = {t for t, _ in sent}
    start, end = run.t0 - 3600, time.time() + 3600

    def fetch(q):
        r = requests.get(f"{run.prom.base}/api/v1/query_exemplars",
                         params={"query": q, "start": start, "end": end}, timeout=5)
        body = r.json()
        assert body.get("status") == "success", body
        return [(s["seriesLabels"], e) for s in body["data"] for e in s["exemplars"]]

    q = 'traces_spanmetrics_duration_milliseconds_bucket{span_name="http.server"}'
    exemplars = helpers.wait_until(lambda: fetch(q), 15, f"exemplars for {q}")
    problems = []
    for series, ex in exemplars:
        labels, value = ex["labels"], float(ex["value"])
        tid, sid = labels.get("trace_id"), labels.get("span_id")
        if tid not in sent_traces:
            problems.append(f"exemplar trace_id {tid!r} is not a sent trace ({series})")
            continue
        if sid is not None:
            span = sent.get((tid, sid))
            if span is None:
                problems.append(f"exemplar span_id {sid!r} is not a span of trace {tid}")
                continue
            dur = max(span.end_time - span.start_time, 0) / 1e6
            if not close(value, dur):
                problems.append(f"exemplar value {value} != duration {dur} ms of span {tid}/{sid}")
            if span.name != series.get("span_name") or span.resource.attributes.get("service.name") != series.get(
                "service_name"
            ):
                problems.append(f"exemplar of span {span.name}/{span.resource.attributes} on series {series}")
            le = helpers.parse_float(series["le"])
            if value > le:
                problems.append(f"exemplar value {value} above its bucket le={series['le']}")
        else:
            durations = [max(s.end_time - s.start_time, 0) / 1e6 for (t, _), s in sent.items() if t == tid]
            if not any(close(value, d) for d in durations):
                problems.append(f"exemplar value {value} is no duration of trace {tid} ({durations})")
    assert not problems, "bad exemplars:\n  " + "\n  ".join(problems)
    print(f"{len(exemplars)} http.server bucket exemplars ok")

    calls = helpers.wait_until(
        lambda: fetch('traces_spanmetrics_calls_total{span_name="http.server"}'), 15, "exemplars on calls_total"
    )
    bad = [e["labels"] for _, e in calls if e["labels"].get("trace_id") not in sent_traces]
    assert not bad, f"calls_total exemplars with unknown trace ids: {bad}"


def test_sink_received_exactly_what_was_sent(run):
    n = len(run.spans)
    helpers.wait_until(lambda: run.sink.span_count() >= n, 20,
                       f"the sink to receive {n} spans (has {run.sink.span_count()})")
    time.sleep(1.0)  # anything extra (duplicates from retries) would show up now
    problems = traceset.compare_forwarded(run.spans, run.sink.spans())
    assert not problems, "forwarded spans differ from what the SDK sent:\n  " + "\n  ".join(problems[:30])
    print(f"sink: {run.sink.request_count()} requests, {run.sink.span_count()} spans, all byte-identical")


def test_expositions_and_promtool(run):
    r = requests.get(METRICS_URL, headers={"Accept": "text/plain;version=0.0.4"}, timeout=5)
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    text = r.text
    assert " # {" not in text, "the 0.0.4 text format cannot carry exemplars"
    for fam, typ in (("calls_total", "counter"), ("errors_total", "counter"), ("duration_milliseconds", "histogram")):
        name = PREFIX + fam
        base = name[: -len("_total")] if typ == "counter" else name
        assert re.search(rf"^# HELP ({name}|{base}) ", text, re.M), f"no # HELP for {name}"
        assert re.search(rf"^# TYPE ({name}|{base}) {typ}$", text, re.M), f"no # TYPE {typ} for {name}"
    (run.work / "scrape.txt").write_text(text)
    res = helpers.run(["promtool", "check", "metrics"], input=text, timeout=30)
    out = (res.stdout + res.stderr).strip()
    print(f"promtool check metrics: exit {res.returncode}\n{out}")
    assert res.returncode in (0, 3), f"promtool could not parse the exposition (exit {res.returncode}):\n{out}"
    problems = [l.strip() for l in out.splitlines() if l.strip() and l.strip() not in KNOWN_LINT]
    assert not problems, f"promtool check metrics found problems:\n{out}"

    om = requests.get(METRICS_URL, headers={"Accept": "application/openmetrics-text;version=1.0.0"}, timeout=5)
    assert om.status_code == 200
    assert om.headers.get("Content-Type", "").startswith("application/openmetrics-text"), om.headers
    assert om.text.rstrip("\n").endswith("# EOF"), "OpenMetrics exposition must end with # EOF"
    assert re.search(r'_bucket\{[^}]*span_name="http.server"[^}]*\} \S+ # \{[^}]*trace_id="[0-9a-f]{32}"', om.text), (
        "no exemplar with a trace_id on an http.server bucket line in the OpenMetrics exposition"
    )


def test_redline_still_running_then_stops_cleanly(run):
    assert run.redline.poll() is None, f"redline died:\n{run.redline.log_text()}"
    t = time.monotonic()
    code = run.redline.stop(timeout=10)
    took = time.monotonic() - t
    assert not run.redline.killed, f"redline ignored SIGTERM for 10s:\n{run.redline.log_text()}"
    assert code == 0, f"redline exited {code} on SIGTERM:\n{run.redline.log_text()}"
    assert "panicked" not in run.redline.log_text()
    print(f"redline stopped on SIGTERM in {took:.2f}s")
