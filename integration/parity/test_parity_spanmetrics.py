"""Parity of each spanmetrics option Redline accepts, on the SDK's traffic."""

from __future__ import annotations

import time

import pytest

import scenario
from diff import compare_exemplars, one_side_labels
from expo import OPENMETRICS
import traffic
from configs import spanmetrics_pipeline
from traceset import OK, S, UNSET

COUNTED = traffic.counted_spans(traffic.PARITY_PLAN)

OPTIONS = {
    "dimensions with defaults": {
        "namespace": "traces.spanmetrics",
        "dimensions": [
            {"name": "cdn.cache.hit"},
            {"name": "http.request.method", "default": "GET"},
            {"name": "wasm.module", "default": "none"},
            {"name": "http.response.status_code"},
        ],
    },
    "exclude_dimensions": {
        "namespace": "traces.spanmetrics",
        "dimensions": [{"name": "cdn.cache.hit"}],
        "exclude_dimensions": ["status.code", "span.kind"],
    },
    "buckets and unit s": {
        "namespace": "traces.spanmetrics",
        "histogram": {"unit": "s", "explicit": {"buckets": ["1ms", "10ms", "100ms", "250ms", "1s", "15s"]}},
    },
    "buckets in ms": {
        "namespace": "traces.spanmetrics",
        "histogram": {"unit": "ms", "explicit": {"buckets": ["2ms", "10ms", "100ms", "1s", "15s", "20s"]}},
    },
    "namespace": {"namespace": "app.red"},
    "default namespace": {},
    "resource attributes as dimensions": {
        "namespace": "traces.spanmetrics",
        "dimensions": [{"name": "host.name"}, {"name": "service.version", "default": "unknown"}],
    },
    "exemplars off": {"namespace": "traces.spanmetrics", "exemplars": {"enabled": False}},
    "exponential histogram": {"namespace": "traces.spanmetrics", "histogram": {"exponential": {"max_size": 160}}},
    "exponential histogram, 8 buckets, unit s": {
        "namespace": "traces.spanmetrics",
        "histogram": {"unit": "s", "exponential": {"max_size": 8}},
    },
    "calls_dimensions and histogram.dimensions": {
        "namespace": "traces.spanmetrics",
        "dimensions": [{"name": "http.request.method", "default": "GET"}],
        "calls_dimensions": [{"name": "cdn.cache.hit"}, {"name": "host.name"}],
        "histogram": {"dimensions": [{"name": "wasm.module", "default": "none"},
                                     {"name": "http.response.status_code"}]},
    },
    "globs in every list": {
        "namespace": "traces.spanmetrics",
        "dimensions": [{"glob": "cdn.*.*"}],
        "calls_dimensions": [{"glob": "http.request.*"}],
        "histogram": {"dimensions": [{"glob": "wasm.*"}, {"glob": "host.*"}]},
    },
    # Changes nothing while the excludeResourceMetrics gate is off, in either collector.
    "add_resource_attributes": {"namespace": "traces.spanmetrics", "add_resource_attributes": True},
    "histogram.dimensions, exponential": {
        "namespace": "traces.spanmetrics",
        "histogram": {"exponential": {"max_size": 20}, "dimensions": [{"name": "wasm.module"}]},
    },
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_spanmetrics_option(pair_factory, allow, name):
    pair = pair_factory(spanmetrics_pipeline(OPTIONS[name]))
    traffic.sdk_send(pair, "grpc", traffic.PARITY_PLAN)
    scenario.check(pair, allow, name, COUNTED)


def test_exemplars_enabled_in_both(pair_factory, allow):
    """With exemplars and OpenMetrics on in both, the same series carry exemplars.

    otelcol attaches the exemplars of one flush interval to that flush's data points and then
    drops them, so they are visible for one interval after the spans; Redline keeps each
    series' latest exemplar. The comparison takes otelcol's scrape while it shows them."""
    pair = pair_factory(spanmetrics_pipeline(
        {"namespace": "traces.spanmetrics", "exemplars": {"enabled": True}},
        {"enable_open_metrics": True}), flush_interval="3s")
    traffic.sdk_send(pair, "grpc", traffic.PARITY_PLAN)
    best, deadline = None, time.monotonic() + 10
    while time.monotonic() < deadline:
        om = pair.otelcol.scrape(OPENMETRICS)
        n = sum(1 for f in om.families.values() for x in f.samples.values() if x.exemplar)
        if best is None or n > best[0]:
            best = (n, om)
        elif n < best[0]:
            break  # the flush after the spans' has dropped them
        time.sleep(0.2)
    assert best[0] > 0, "otelcol never served an exemplar"
    text = pair.scrape()
    red_om = pair.redline.scrape(OPENMETRICS)
    drop = one_side_labels(text["otelcol"], text["redline"])
    # Series by series (buckets of one histogram taken together): the same ones carry exemplars.
    by_series = compare_exemplars(best[1], red_om, drop | {"le"})
    assert by_series == [], "\n".join(by_series)
    # Bucket by bucket they differ as docs/compatibility.md section 6 says.
    allow.check("exemplars per bucket", compare_exemplars(best[1], red_om, drop))
    scenario.check(pair, allow, "exemplars enabled", COUNTED)


def test_cardinality_limit(pair_factory, allow):
    """Label sets past aggregation_cardinality_limit fold into the overflow series."""
    spans = [traffic.span(name=f"route-{i}", dur_ms=5) for i in range(12)]
    pair = pair_factory(spanmetrics_pipeline({"namespace": "traces.spanmetrics", "aggregation_cardinality_limit": 5}))
    answers = pair.grpc_export(traffic.request(({"service.name": "limited"}, spans)).SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, "cardinality limit", len(spans))


def test_several_resources_per_service(pair_factory, allow):
    """Two hosts of one service without service.instance.id: otelcol shows the last resource
    written, Redline the sum (docs/compatibility.md, section 2)."""
    plan = [
        ({"service.name": "several-resources", "host.name": "a"},
         [("http.server", S, 10, UNSET, {}, []), ("http.server", S, 20, OK, {}, [])]),
        ({"service.name": "several-resources", "host.name": "b"},
         [("http.server", S, 30, UNSET, {}, []), ("http.server", S, 3000, UNSET, {}, [])]),
    ]
    pair = pair_factory(spanmetrics_pipeline())
    traffic.sdk_send(pair, "grpc", plan)
    diffs = scenario.differences(pair, traffic.counted_spans(plan))
    allow.check("several resources per service", diffs)
    red = pair.redline.scrape()
    assert red.sample("traces_spanmetrics_calls_total", service_name="several-resources", span_name="http.server",
                      span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_UNSET") == 3


def _sampled_spans() -> list:
    """Spans of every sampling shape: thresholds whose adjusted count is whole (otelcol rounds
    fractional ones at random, so those cannot be compared value for value), a threshold of 0
    (errors kept always), an `rv` without a threshold, a malformed and a foreign tracestate,
    none at all, and the older `p` value otelcol does not read (docs/compatibility.md §21)."""
    shapes = [
        ("ot=th:e", 0, 5), ("ot=th:c", 0, 40), ("vendor=x,ot=th:8;rv:abcdefabcdefab", 0, 300),
        ("ot=th:0", 2, 900), ("ot=th:e", 2, 900), ("ot=rv:01234567890abc", 0, 5),
        ("ot=th:zz", 0, 5), ("vendor=th:8", 0, 40), ("", 0, 40), ("ot=p:3", 0, 3000),
    ]
    spans = []
    for i, (state, status, dur) in enumerate(shapes * 3):
        name = "GET /sampled-p" if "p:" in state else "GET /sampled"
        s = traffic.span(name=name, status=status, dur_ms=dur + i)
        s.trace_state = state
        spans.append(s)
    return spans


@pytest.mark.parametrize("method", [False, True])
def test_sampled_spans_count_their_adjusted_count(pair_factory, allow, method):
    """Each span counts 1/p of its sampling threshold (`ot=th`) in calls, buckets and sums, in
    both collectors; with enable_metrics_sampling_method each series says whether it was
    extrapolated or counted."""
    spans = _sampled_spans()
    options = {"namespace": "traces.spanmetrics", "exemplars": {"enabled": False}}
    if method:
        options["enable_metrics_sampling_method"] = True
    pair = pair_factory(spanmetrics_pipeline(options))
    answers = pair.grpc_export(traffic.request(({"service.name": "sampled"}, spans)).SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, f"sampled spans, sampling method {method}", len(spans))
    red = pair.redline.scrape()
    extra = {"sampling_method": "extrapolated"} if method else {}
    # 3 rounds of: th:e 8, th:c 4, th:8 2, and 1 each for rv-only, bad, foreign and none.
    unset = dict(service_name="sampled", span_name="GET /sampled", span_kind="SPAN_KIND_SERVER",
                 status_code="STATUS_CODE_UNSET")
    if method:
        assert red.sample("traces_spanmetrics_calls_total", **unset, **extra) == 3 * (8 + 4 + 2)
        assert red.sample("traces_spanmetrics_calls_total", **unset, sampling_method="counted") == 3 * 4
    else:
        assert red.sample("traces_spanmetrics_calls_total", **unset) == 3 * (8 + 4 + 2 + 1 + 1 + 1 + 1)
    errors = dict(unset, status_code="STATUS_CODE_ERROR", **extra)
    assert red.sample("traces_spanmetrics_calls_total", **errors) == 3 * (1 + 8)
    # Older p-values: 2^3 each in Redline, 1 in otelcol.
    old = dict(unset, span_name="GET /sampled-p", **extra)
    assert red.sample("traces_spanmetrics_calls_total", **old) == 3 * 8


def _calls(expo, span_name: str):
    """calls_total of `span_name` summed over its series; None when it has none."""
    values = [s.value for f in expo.families.values() for (n, labels), s in f.samples.items()
              if n == "traces_spanmetrics_calls_total" and dict(labels).get("span_name") == span_name]
    return sum(values) if values else None


def test_series_expiration_drops_an_idle_series_in_both(pair_factory):
    """`series_expiration`: a series without spans for that long is no longer served, while
    the series that keep getting spans stay and keep counting. (The exporter's own
    `metric_expiration` is short so that otelcol's Prometheus exporter lets go of the series
    its connector dropped; Redline's exporter serves the connector's live series.)"""
    pair = pair_factory(spanmetrics_pipeline(
        {"namespace": "traces.spanmetrics", "metrics_expiration": "0s", "series_expiration": "2s"},
        {"metric_expiration": "1s"}), flush_interval="500ms")

    def send(*names):
        body = traffic.request(({"service.name": "expiring"},
                                [traffic.span(name=n, dur_ms=5) for n in names])).SerializeToString()
        assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}

    send("kept", "idle")
    sent = 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = {side: _calls(x, "idle") for side, x in pair.scrape().items()}
        if all(v == 1 for v in seen.values()):
            break
        time.sleep(0.2)
    assert all(v == 1 for v in seen.values()), seen

    gone, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        send("kept")
        sent += 1
        scrapes = pair.scrape()
        if all(_calls(x, "idle") is None for x in scrapes.values()):
            gone = scrapes
            break
        time.sleep(0.5)
    assert gone is not None, {side: _calls(x, "idle") for side, x in pair.scrape().items()}
    # The series that kept getting spans is still served and counts every span in both.
    pair.wait_counted(sent)
    kept = {side: _calls(x, "kept") for side, x in pair.scrape().items()}
    assert kept == {"otelcol": sent, "redline": sent}, kept


def test_include_instrumentation_scope_labels_the_listed_scopes(pair_factory, allow):
    """Spans of a listed scope get its name and version as labels; other scopes' spans do
    not. Each scope has span names of its own: otelcol keys a series without the scope (the
    first span's scope labels the series), Redline by every label (docs/compatibility.md §29)."""
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    def scope(name, version, spans):
        return trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name=name, version=version), spans=spans)

    request = traffic.request(({"service.name": "scoped"}, []))
    request.resource_spans[0].scope_spans.extend([
        scope("io.opentelemetry.http", "2.1.0", [traffic.span(name="GET /a", dur_ms=3) for _ in range(3)]),
        scope("unlisted", "9.9", [traffic.span(name="GET /b", dur_ms=30) for _ in range(2)]),
        scope("bare", "", [traffic.span(name="GET /c", dur_ms=300, status=2)]),
    ])
    pair = pair_factory(spanmetrics_pipeline({
        "namespace": "traces.spanmetrics",
        "include_instrumentation_scope": ["io.opentelemetry.http", "bare"],
    }))
    answers = pair.grpc_export(request.SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, "include_instrumentation_scope", 6)
    red = pair.redline.scrape()
    assert red.sample("traces_spanmetrics_calls_total", service_name="scoped", span_name="GET /a",
                      span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_UNSET",
                      span_instrumentation_scope_name="io.opentelemetry.http",
                      span_instrumentation_scope_version="2.1.0") == 3
    assert red.sample("traces_spanmetrics_calls_total", service_name="scoped", span_name="GET /b",
                      span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_UNSET") == 2
    assert red.sample("traces_spanmetrics_calls_total", service_name="scoped", span_name="GET /c",
                      span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_ERROR",
                      span_instrumentation_scope_name="bare") == 1


def test_calls_and_duration_keyed_by_their_own_dimensions(pair_factory, allow):
    """`calls_dimensions` and `histogram.dimensions`: calls (and errors) carry the shared
    dimensions and their own, the duration histogram the shared ones and its own, each looked
    up in the span's attributes, then the resource's, then the default."""
    def at(url, scheme, status=0, dur_ms=10.0):
        attrs = {"http.route": "/a", "url.scheme": scheme}
        if url is not None:
            attrs["http.url"] = url
        return traffic.span(name="GET /a", status=status, dur_ms=dur_ms, attrs=attrs)

    spans = [at("/x", "https", dur_ms=3), at("/x", "http", dur_ms=7), at("/y", "https", dur_ms=60),
             at(None, "https", status=2, dur_ms=1)]
    request = traffic.request(({"service.name": "split", "region": "eu"}, spans))
    pair = pair_factory(spanmetrics_pipeline({
        "namespace": "traces.spanmetrics",
        "dimensions": [{"name": "http.route"}],
        "calls_dimensions": [{"name": "http.url", "default": "/ping"}],
        "histogram": {"dimensions": [{"name": "url.scheme"}, {"name": "region"}]},
    }))
    answers = pair.grpc_export(request.SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, "calls and duration dimensions", len(spans))
    # The comparison above holds otelcol to the same values; these are the expected ones.
    red = pair.redline.scrape()
    common = {"service_name": "split", "span_name": "GET /a", "span_kind": "SPAN_KIND_SERVER",
              "http_route": "/a"}
    unset, error = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"

    def calls(status, url):
        return red.sample("traces_spanmetrics_calls_total", status_code=status, http_url=url, **common)

    def duration(suffix, status, scheme):
        return red.sample(f"traces_spanmetrics_duration_milliseconds_{suffix}", status_code=status,
                          url_scheme=scheme, region="eu", **common)
    assert (calls(unset, "/x"), calls(unset, "/y"), calls(error, "/ping")) == (2, 1, 1)
    assert red.total("traces_spanmetrics_calls_total") == 4
    assert (duration("count", unset, "https"), duration("sum", unset, "https")) == (2, 63)
    assert (duration("count", unset, "http"), duration("count", error, "https")) == (1, 1)
    assert red.total("traces_spanmetrics_duration_milliseconds_count") == 4


def test_otelcol_readme_example_with_glob_dimensions(pair_factory, allow):
    """The connector's example from otelcol's README, unchanged but for the flush interval:
    glob dimensions (a span's matching attributes, then the resource's it does not have; for
    events, the event's ahead of the resource's), calls_dimensions, histogram.dimensions,
    events, exclude_dimensions and include_instrumentation_scope together."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    def with_event(span, **attrs):
        span.events.append(trace_pb2.Span.Event(
            name="exception", time_unix_nano=span.start_time_unix_nano + 1_000,
            attributes=[traffic.kv(k, v) for k, v in attrs.items()]))
        return span

    spans = [
        traffic.span(name="GET /a", attrs={"http.status_code": 200, "k8s.pod.name": "p1",
                                            "db.system.name": "pg", "url.scheme": "http", "http.url": "/a"}),
        traffic.span(name="GET /a", attrs={"k8s.node.name": "n2", "k8s.pod.name": "p1"}),
        with_event(traffic.span(name="GET /b", status=2, attrs={"k8s.pod.name": "p2"}),
                   **{"exception.type": "Timeout", "exception.message": "slow"}),
        with_event(traffic.span(name="GET /b", status=2),
                   **{"exception.type": "Io", "k8s.container.name": "c1", "k8s.node.name": "from-event"}),
        traffic.span(name="GET /c", attrs={"k8s.cluster.label.name": "no", "http.method": "POST"}),
    ]
    plain = [traffic.span(name="GET /d")]
    request = traffic.request(
        ({"service.name": "globbed", "k8s.namespace.name": "prod", "k8s.node.name": "n1"}, spans),
        ({"service.name": "plain"}, plain))
    pair = pair_factory(spanmetrics_pipeline({
        "histogram": {"dimensions": [{"name": "url.scheme", "default": "https"}],
                      "explicit": {"buckets": ["100us", "1ms", "2ms", "6ms", "10ms", "100ms", "250ms"]}},
        "dimensions": [{"name": "http.method", "default": "GET"}, {"name": "http.status_code"},
                       {"glob": "k8s.*.name"}, {"glob": "db.**.name"}],
        "calls_dimensions": [{"name": "http.url", "default": "/ping"}],
        "exemplars": {"enabled": True},
        "exclude_dimensions": ["status.code"],
        "aggregation_temporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
        "metrics_flush_interval": "15s",
        "metrics_expiration": "5m",
        "series_expiration": "5m",
        "events": {"enabled": True, "dimensions": [{"name": "exception.type"}, {"name": "exception.message"}]},
        "resource_metrics_key_attributes": ["service.name", "telemetry.sdk.language", "telemetry.sdk.name"],
        "include_instrumentation_scope": ["express"],
    }))
    answers = pair.grpc_export(request.SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, "otelcol README example", len(spans) + len(plain))
    red = pair.redline.scrape()

    def calls(**labels):
        return red.sample("traces_span_metrics_calls_total", span_kind="SPAN_KIND_SERVER", http_method="GET",
                          service_name="globbed", **labels)
    assert calls(span_name="GET /a", http_status_code="200", k8s_pod_name="p1", k8s_node_name="n1",
                 k8s_namespace_name="prod", db_system_name="pg", http_url="/a") == 1
    assert calls(span_name="GET /a", k8s_pod_name="p1", k8s_node_name="n2", k8s_namespace_name="prod",
                 http_url="/ping") == 1
    assert red.sample("traces_span_metrics_events_total", span_kind="SPAN_KIND_SERVER", http_method="GET",
                      service_name="globbed", span_name="GET /b", exception_type="Io",
                      k8s_container_name="c1", k8s_node_name="from-event", k8s_namespace_name="prod") == 1
    assert red.total("traces_span_metrics_calls_total") == 6


def test_events_count_span_events_by_event_dimensions(pair_factory, allow):
    """`events.enabled`: each span event counts under the span's labels and the event
    dimensions, looked up in the span's attributes, the event's, the resource's, then the
    default; both collectors serve `events_total` alike."""
    from opentelemetry.proto.trace.v1 import trace_pb2

    def with_events(span, *events):
        for name, attrs in events:
            span.events.append(trace_pb2.Span.Event(
                name=name, time_unix_nano=span.start_time_unix_nano + 1_000,
                attributes=[traffic.kv(k, v) for k, v in attrs.items()]))
        return span

    timeout = ("exception", {"exception.type": "Timeout"})
    eu = [
        with_events(traffic.span(name="GET /a", status=2, attrs={"http.route": "/a"}), timeout, timeout),
        with_events(traffic.span(name="GET /a", status=2, attrs={"http.route": "/a"}), timeout),
        # The span's own value wins over the event's, the event's over the resource's.
        with_events(traffic.span(name="GET /b", attrs={"exception.type": "FromSpan"}),
                    ("exception", {"exception.type": "E", "region": "us"})),
        # A span dimension the span lacks is taken from the event for the events series.
        with_events(traffic.span(name="GET /c"), ("exception", {"http.route": "/from-event"})),
        with_events(traffic.span(name="GET /d"), ("exception", {"exception.type": 7}), ("log", {})),
        traffic.span(name="GET /e"),
    ]
    plain = [with_events(traffic.span(name="GET /a"), timeout)]
    request = traffic.request(({"service.name": "eventful", "region": "eu"}, eu),
                              ({"service.name": "plain"}, plain))
    pair = pair_factory(spanmetrics_pipeline({
        "namespace": "traces.spanmetrics",
        "dimensions": [{"name": "http.route"}],
        "events": {"enabled": True, "dimensions": [{"name": "exception.type"},
                                                   {"name": "region", "default": "none"}]},
    }))
    answers = pair.grpc_export(request.SerializeToString())
    assert {a.status for a in answers.values()} == {"OK"}
    scenario.check(pair, allow, "events", 7)
    # The comparison above holds otelcol to the same values; its labels add the job and scope.
    red = pair.redline.scrape()

    def events(**labels):
        return red.sample("traces_spanmetrics_events_total", span_kind="SPAN_KIND_SERVER", **labels)
    assert events(service_name="eventful", span_name="GET /a", status_code="STATUS_CODE_ERROR",
                  http_route="/a", exception_type="Timeout", region="eu") == 3
    assert events(service_name="eventful", span_name="GET /b", status_code="STATUS_CODE_UNSET",
                  exception_type="FromSpan", region="us") == 1
    assert events(service_name="eventful", span_name="GET /c", status_code="STATUS_CODE_UNSET",
                  http_route="/from-event", region="eu") == 1
    assert events(service_name="eventful", span_name="GET /d", status_code="STATUS_CODE_UNSET",
                  exception_type="7", region="eu") == 1
    assert events(service_name="eventful", span_name="GET /d", status_code="STATUS_CODE_UNSET",
                  region="eu") == 1
    assert events(service_name="plain", span_name="GET /a", status_code="STATUS_CODE_UNSET",
                  exception_type="Timeout", region="none") == 1
    assert red.total("traces_spanmetrics_events_total") == 8
