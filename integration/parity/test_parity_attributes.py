"""Parity of the `resource` and `attributes` processors on traces, metrics and logs.

One config runs through both collectors: a `resource` processor in every pipeline (upsert,
insert from an attribute and with a default, update, delete by key and by pattern, hash of a
string and of a double, convert, from_context falling back to its default) and per signal
`attributes` processors with include/exclude sections of that signal (services, span names,
libraries, resources and attributes for spans; metric names for metrics; severity number,
bodies, libraries and attributes for logs) and every action kind. The hand-built requests of
the signals suite go to both over gRPC and OTLP/HTTP; what each forwards is compared item by
item, resource, scope and attribute order included (only the order of items is free).
"""

from __future__ import annotations

from configs import three_signals_with
from otlp_signals import SIGNALS
from test_parity_signals import check_forwarded, send_each_signal

import otlp_signals

PROCESSORS = {
    "resource": {"attributes": [
        {"key": "deployment.environment", "value": "parity", "action": "upsert"},
        {"key": "k8s.cluster.name", "from_attribute": "k8s.pod.name", "action": "insert"},
        {"key": "region", "from_attribute": "cloud.region", "default_value": "us-east-1", "action": "insert"},
        {"key": "canary", "value": False, "action": "update"},
        {"key": "team", "value": 7, "action": "insert"},
        {"key": "service.instance.id", "action": "delete"},
        {"key": "host.name", "action": "hash"},
        {"key": "ratio", "action": "hash"},
        {"key": "replicas", "action": "convert", "converted_type": "string"},
        {"key": "tenant", "from_context": "metadata.tenant", "default_value": "none", "action": "insert"},
        {"pattern": "^k8s\\.pod", "action": "delete"},
    ]},
    "attributes/traces": {
        "include": {"match_type": "strict", "services": ["checkout", "cart"]},
        "exclude": {"match_type": "regexp", "span_names": ["op-\\d-1$"]},
        "actions": [
            {"key": "http.route", "pattern": "^/(?P<route_kind>[a-z])/(?P<route_id>\\d+)$", "action": "extract"},
            {"key": "retry", "action": "convert", "converted_type": "double"},
            {"key": "sampled", "action": "delete"},
            {"key": "span.tagged", "value": ["a", 1], "action": "upsert"},
            {"key": "http.route", "action": "hash"},
        ],
    },
    "attributes/traces_by_scope": {
        "include": {"match_type": "strict",
                    "libraries": [{"name": "parity.tracer", "version": "1.0.0"}],
                    "resources": [{"key": "service.name", "value": "cart"}],
                    "attributes": [{"key": "route_id"}]},
        "actions": [{"key": "matched", "value": "hit", "action": "insert"}],
    },
    "attributes/metrics": {
        "include": {"match_type": "regexp", "metric_names": ["^http\\.", "^queue"]},
        "exclude": {"match_type": "strict", "metric_names": ["http.server.duration"]},
        "actions": [
            {"key": "code", "action": "convert", "converted_type": "string"},
            {"key": "method", "value": "ANY", "action": "upsert"},
            {"key": "queue", "from_attribute": "queue", "action": "update"},
            {"key": "metric.tagged", "value": 1.5, "action": "insert"},
        ],
    },
    "attributes/logs": {
        "include": {"match_type": "strict", "log_severity_number": {"min": 9, "match_undefined": False}},
        "exclude": {"match_type": "regexp", "log_bodies": ["^utf-8"]},
        "actions": [
            {"key": "log.index", "action": "convert", "converted_type": "string"},
            {"key": "tags", "action": "hash"},
            {"key": "resource.index", "action": "delete"},
            {"key": "severity.checked", "value": True, "action": "insert"},
        ],
    },
    "attributes/logs_by_attribute": {
        "include": {"match_type": "regexp", "libraries": [{"name": "^parity\\.logger$"}],
                    "attributes": [{"key": "log.index", "value": "^[0-4]$"}]},
        "actions": [{"key": "matched", "value": "hit", "action": "upsert"}],
    },
}

PIPELINE_PROCESSORS = {
    "traces": ["resource", "attributes/traces", "attributes/traces_by_scope"],
    "metrics": ["resource", "attributes/metrics"],
    "logs": ["resource", "attributes/logs", "attributes/logs_by_attribute"],
}


def test_resource_and_attributes_processors(pair_factory, allow):
    pair = pair_factory(three_signals_with(PROCESSORS, PIPELINE_PROCESSORS), flush_interval=None)
    diffs, sent = send_each_signal(pair, "attributes")

    want = {s: otlp_signals.count_items(s, sent[s]) for s in SIGNALS}
    flat, got = check_forwarded(pair, allow, diffs, want, sent)
    # The processors did act: every signal's items differ from what was sent.
    for s in SIGNALS:
        assert flat["redline"][s] != otlp_signals.flatten(s, sent[s]), f"{s}: nothing was changed"
        assert sum(flat["redline"][s].values()) == want[s], (s, got)
