"""Parity of the `filter` processor's legacy `include` / `exclude` sections on traces, metrics
and logs (otelcol's `filterspan`, `filtermetric` and `filterlog` matchers).

Two filters per signal run in one config through both collectors: for spans, services
(strict) and span names (regexp), then span kinds (regexp) and attribute, resource and library
values (strict); for metrics, names (regexp include, strict exclude), then resource attributes
(regexp), which drop a whole resource; for logs, the severity number with undefined ones
kept, then bodies (their text form: maps as JSON) together with record attributes (an int
matched as text). The hand-built requests of the signals suite go to both over gRPC and
OTLP/HTTP; what each forwards is compared item by item.
"""

from __future__ import annotations

from configs import three_signals_with
from otlp_signals import SIGNALS
from test_parity_signals import check_forwarded, send_each_signal

import otlp_signals

PROCESSORS = {
    "filter/spans_by_name": {"spans": {
        "include": {"match_type": "strict", "services": ["checkout", "cart"]},
        "exclude": {"match_type": "regexp", "span_names": ["op-\\d-1$"]},
    }},
    "filter/spans_by_value": {"spans": {
        "include": {"match_type": "regexp", "span_kinds": ["_(INTERNAL|CLIENT)$"]},
        "exclude": {"match_type": "strict",
                    "attributes": [{"key": "sampled", "value": True}, {"key": "retry", "value": 2}],
                    "resources": [{"key": "canary", "value": True}],
                    "libraries": [{"name": "parity.tracer", "version": "1.0.0"}]},
    }},
    "filter/metrics_by_name": {"metrics": {
        "include": {"match_type": "regexp", "metric_names": ["^http\\.", "^queue", "^gc", "^build"]},
        "exclude": {"match_type": "strict", "metric_names": ["http.server.duration"]},
    }},
    "filter/metrics_by_resource": {"metrics": {
        "exclude": {"match_type": "regexp", "resource_attributes": [{"key": "host.name", "value": "^no-"}]},
    }},
    "filter/logs_by_severity": {"logs": {
        "include": {"severity_number": {"min": "info", "match_undefined": True}},
    }},
    "filter/logs_by_body": {"logs": {
        "exclude": {"match_type": "regexp", "bodies": ["^utf-8", "login"],
                    "record_attributes": [{"key": "log.index", "value": "^[0-7]$"}]},
    }},
}

PIPELINE_PROCESSORS = {
    "traces": ["filter/spans_by_name", "filter/spans_by_value"],
    "metrics": ["filter/metrics_by_name", "filter/metrics_by_resource"],
    "logs": ["filter/logs_by_severity", "filter/logs_by_body"],
}


def test_legacy_include_exclude_sections(pair_factory, allow):
    pair = pair_factory(three_signals_with(PROCESSORS, PIPELINE_PROCESSORS), flush_interval=None)
    diffs, sent = send_each_signal(pair, "legacy filter")

    total = {s: otlp_signals.count_items(s, sent[s]) for s in SIGNALS}
    _, got = check_forwarded(pair, allow, diffs, {s: 1 for s in SIGNALS}, sent)
    # Each signal lost some items and kept some, the same ones in both collectors.
    for s in SIGNALS:
        kept = {side: got[(side, s)] for side in pair.c}
        assert kept["otelcol"] == kept["redline"], (s, kept)
        assert 0 < kept["redline"] < total[s], (s, kept, total[s])
