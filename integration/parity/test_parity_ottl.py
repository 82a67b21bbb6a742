"""Parity of the OTTL processors, `transform` and `filter`, on all three signals.

The same requests go through otelcol-contrib and Redline with the same processors; what each
forwards (and, for traces, the span metrics computed downstream of the processors) must be
identical, or the difference listed in docs/compatibility.md. The statements are the ones
real files use: cutting ids and query strings out of span names, dropping health checks,
editing and trimming attributes, and the converters those statements call.
"""

from __future__ import annotations

import pytest
import yaml

import otlp_signals
import scenario
import traffic
from otlp_signals import SIGNAL, SIGNALS
from signal_traffic import BUILD
from test_parity_signals import compare_forwarded, wait_all_forwarded

TRACE_STATEMENTS = [
    {"context": "span", "statements": [
        'replace_pattern(name, "\\\\?.*", "")',
        'replace_pattern(name, "/[0-9]+", "/{id}")',
        'set(attributes["env"], "prod") where resource.attributes["service.name"] == "checkout"',
        'delete_key(attributes, "password")',
        'delete_matching_keys(attributes, "^tmp\\\\.")',
        'replace_all_patterns(attributes, "value", "secret=[^&]*", "secret=***")',
        'replace_match(attributes["http.target"], "/api/v1/*", "/api/v1/{path}")',
        'set(attributes["route.upper"], ConvertCase(attributes["http.route"], "upper")) where attributes["http.route"] != nil',
        'set(attributes["name.parts"], Len(Split(name, "/")))',
        'set(attributes["name.hash"], SHA256(name)) where kind == SPAN_KIND_CLIENT',
        'set(attributes["name.head"], Substring(name, 0, 3)) where Len(name) >= 3',
        'set(attributes["retries"], Int(attributes["retries.text"])) where attributes["retries.text"] != nil',
        'set(attributes["code.text"], String(attributes["http.status_code"])) where attributes["http.status_code"] != nil',
        'set(attributes["summary"], Concat([name, attributes["http.method"]], " via ")) where IsMatch(name, "^GET")',
        'set(attributes["entrypoint"], name) where IsRootSpan()',
        'truncate_all(attributes, 12)',
        'limit(attributes, 9, ["http.method", "http.route"])',
        'set(status.code, STATUS_CODE_ERROR) where attributes["http.status_code"] != nil and attributes["http.status_code"] >= 500',
    ]},
    {"context": "spanevent", "statements": ['set(attributes["event.upper"], ConvertCase(name, "upper"))']},
    {"context": "resource", "statements": [
        'merge_maps(attributes, {"deployment.environment": "prod", "team": "payments"}, "insert")',
        'keep_matching_keys(attributes, "^(service|deployment|team|host)")',
    ]},
]

TRACE_FILTER = {
    "error_mode": "ignore",
    "traces": {
        "span": ['attributes["http.route"] == "/health"', 'IsMatch(name, ".*healthz$")'],
        "spanevent": ['name == "debug"'],
    },
}


def _ottl_pipelines(processors: dict, signal_processors: dict, base: str) -> str:
    cfg = yaml.safe_load(base)
    cfg["processors"] = processors
    for signal, names in signal_processors.items():
        cfg["service"]["pipelines"][signal]["processors"] = names
    return yaml.safe_dump(cfg, sort_keys=False)


def _http_span(name: str, attrs: dict, kind: int = 2, events=()):
    sp = traffic.span(name=name, kind=kind, attrs=attrs)
    for ev in events:
        sp.events.add(name=ev, time_unix_nano=sp.start_time_unix_nano + 1, attributes=[traffic.kv("n", 1)])
    return sp


def trace_requests() -> list:
    """Spans whose names carry ids and query strings, health checks, attributes for every
    statement, and span events, over three resources (one without service.name)."""
    checkout = {"service.name": "checkout", "host.name": "node-a", "tmp.build": "x", "k8s.pod.uid": "u-1"}
    cart = {"service.name": "cart", "deployment.environment": "staging"}
    anon = {"host.name": "no-service"}
    spans = []
    for i in range(30):
        spans.append(_http_span(f"GET /users/{1000 + i}?debug={i % 2}", {
            "http.method": "GET", "http.route": "/users/{id}", "http.status_code": 200 + (i % 4) * 100,
            "password": "hunter2", "tmp.trace": i, "http.target": f"/api/v1/users/{i}",
            "query": f"a=1&secret=s{i}&b=2", "retries.text": str(i % 3), "long.value": "x" * (5 + i),
        }, kind=2 if i % 3 else 3, events=("retry", "debug") if i % 5 == 0 else ()))
    health = [_http_span("GET /health", {"http.route": "/health", "http.method": "GET"}) for _ in range(6)]
    health += [_http_span("/readyz-healthz", {"http.method": "GET"}) for _ in range(4)]
    others = [_http_span(f"POST /orders/{i}", {"http.method": "POST", "http.route": "/orders/{id}"}, kind=3)
              for i in range(10)]
    # Children of the GET spans (IsRootSpan() is false for them); the rest have no parent.
    for i, child in enumerate(others[5:]):
        child.trace_id = spans[i].trace_id
        child.parent_span_id = spans[i].span_id
    return [
        traffic.request((checkout, spans[:15] + health[:5]), (cart, spans[15:] + others)),
        traffic.request((cart, health[5:]), (anon, others[:3] + spans[:2])),
    ]


def _surviving_counted(requests) -> int:
    """Spans span metrics count after the filter: not a health check, resource has a
    service.name. Tallied here, independently of both collectors."""
    n = 0
    for req in requests:
        for rs in req.resource_spans:
            if not any(a.key == "service.name" for a in rs.resource.attributes):
                continue
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    route = next((a.value.string_value for a in sp.attributes if a.key == "http.route"), None)
                    if route == "/health" or sp.name.endswith("healthz"):
                        continue
                    n += 1
    return n


def test_transform_and_filter_traces_with_span_metrics(pair_factory, allow):
    """filter then transform in front of spanmetrics and the Tempo exporter: health checks gone
    from both the series and the forwarded spans, URL ids collapsed into one series per route,
    every attribute edit identical in what is forwarded."""
    from configs import spanmetrics_pipeline
    config = _ottl_pipelines(
        {"filter/health": TRACE_FILTER, "transform/names": {"error_mode": "ignore", "trace_statements": TRACE_STATEMENTS}},
        {"traces": ["filter/health", "transform/names"]},
        spanmetrics_pipeline({"namespace": "traces.spanmetrics", "dimensions": [{"name": "http.method"}]}),
    )
    pair = pair_factory(config)
    requests = trace_requests()
    for req in requests:
        answers = pair.grpc_export(req.SerializeToString())
        assert {a.status for a in answers.values()} == {"OK"}, answers
    counted = _surviving_counted(requests)
    diffs = scenario.check(pair, allow, "ottl traces", counted)
    # Redline's own series: one per route template, never one per id.
    names = {dict(s.labels).get("span_name") for f in pair.scrape()["redline"].families.values()
             for s in f.samples.values() if dict(s.labels).get("span_name")}
    assert names and all("?" not in n and not any(ch.isdigit() for ch in n.split("/")[-1]) for n in names), names
    assert not any("health" in n for n in names), names
    assert not allow.unexplained(diffs)


METRIC_STATEMENTS = [
    {"context": "metric", "statements": [
        'set(description, "latency of HTTP servers") where name == "http.server.duration"',
        'set(unit, "1") where name == "pool.in_use"',
        'set(name, Concat(["app", name], ".")) where type == METRIC_DATA_TYPE_SUM',
    ]},
    {"context": "datapoint", "statements": [
        'set(attributes["region"], "eu-1")',
        'delete_key(attributes, "queue") where metric.name == "queue.depth"',
        'set(attributes["code.class"], Concat([Substring(String(attributes["code"]), 0, 1), "xx"], "")) where attributes["code"] != nil',
    ]},
    {"context": "resource", "statements": ['set(attributes["cluster"], "c1")']},
]

METRIC_FILTER = {"metrics": {
    "metric": ['name == "gc.pause"', 'IsMatch(name, "^build\\\\.")'],
    "datapoint": ['attributes["route"] == "/b"', 'metric.name == "queue.depth" and value_int < 0'],
}}

LOG_STATEMENTS = [
    {"context": "log", "statements": [
        'set(severity_text, "WARNING") where severity_number == SEVERITY_NUMBER_WARN',
        'replace_pattern(body, "ü", "u")',
        'set(attributes["body.len"], Len(body)) where IsString(body)',
        'set(attributes["trace"], "yes") where trace_id.string != \"\"',
        'delete_key(attributes, "tags")',
    ]},
    {"context": "scope", "statements": ['set(attributes["edited"], true)']},
]

LOG_FILTER = {"logs": {"log_record": ['severity_number > SEVERITY_NUMBER_UNSPECIFIED and severity_number < SEVERITY_NUMBER_INFO',
                                      'IsMap(body) and body["event"] == "login"']}}


def test_transform_and_filter_metrics_and_logs(pair_factory, allow):
    from configs import three_signals_pipeline
    config = _ottl_pipelines(
        {"transform": {"metric_statements": METRIC_STATEMENTS, "log_statements": LOG_STATEMENTS,
                       "trace_statements": TRACE_STATEMENTS},
         "filter": {**METRIC_FILTER, **LOG_FILTER, "traces": TRACE_FILTER["traces"]}},
        {s: ["filter", "transform"] for s in SIGNALS},
        three_signals_pipeline(),
    )
    pair = pair_factory(config, flush_interval=None)
    sent = {s: [] for s in SIGNALS}
    for signal in SIGNALS:
        for transport in ("grpc", "http/protobuf"):
            request = BUILD[signal](f"ottl {signal} over {transport}")
            body = request.SerializeToString()
            if transport == "grpc":
                answers = pair.grpc_export(body, method=SIGNAL[signal].method)
                assert {a.status for a in answers.values()} == {"OK"}, answers
            else:
                answers = pair.http_post(SIGNAL[signal].path, body, {"Content-Type": "application/x-protobuf"})
                assert {a.status for a in answers.values()} == {"200"}, answers
            sent[signal].append(request)
    # Both forward something of every signal; the exact content is the comparison below.
    wait_all_forwarded(pair, {s: 1 for s in SIGNALS})
    flat, diffs = compare_forwarded(pair)
    allow.check("ottl metrics and logs", diffs)
    # The filters did act (gc.pause, build.* and low severities are gone); what exactly is
    # left is the comparison above.
    for s in ("metrics", "logs"):
        assert sum(flat["redline"][s].values()) < otlp_signals.count_items(s, sent[s]), s


@pytest.mark.parametrize("bad", [
    ('set(attributes["a"], "b") where nme == "x"', "nme"),
    ('sett(attributes["a"], "b")', "sett"),
    ('replace_pattern(name, "(", "x")', "regex"),
])
def test_bad_statement_is_refused_at_start(redline_bin, tmp_path, bad):
    """A statement otelcol refuses at start is refused by `redline validate` too, naming the
    statement and what is wrong (both collectors refuse to start)."""
    import subprocess
    statement, needle = bad
    from configs import three_signals_pipeline
    config = _ottl_pipelines({"transform": {"trace_statements": [{"context": "span", "statements": [statement]}]}},
                             {"traces": ["transform"]}, three_signals_pipeline(("traces",)))
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    out = subprocess.run([str(redline_bin), "validate", "--config", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "trace_statements[0].statements[0]" in out.stderr + out.stdout, out.stderr
    assert needle in (out.stderr + out.stdout), out.stderr
