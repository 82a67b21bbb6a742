"""Self-checks of the test harness itself (no redline needed): the SDK's exporter talking
straight to the sink must pass the same byte-for-byte comparison the pipeline test applies,
and the PromQL histogram_quantile model must match known values."""

import math

import traceset
from redmodel import DEFAULT_BUCKETS_MS, Expected, histogram_quantile


def test_sdk_to_sink_directly_is_byte_identical(sink):
    spans = traceset.send(sink.endpoint)
    assert traceset.compare_forwarded(spans, sink.spans()) == []
    # and the comparison does notice a missing span and a changed one
    received = sink.spans()
    assert traceset.compare_forwarded(spans, received[1:])
    rs, ss, sp = received[0]
    sp.name = sp.name + "x"
    assert any("span bytes differ" in p for p in traceset.compare_forwarded(spans, received))


def test_model_and_quantile():
    assert histogram_quantile(0.95, {1: 1, 2: 5, math.inf: 5}) == 1.9375
    assert histogram_quantile(0.95, {1: 1, 2: 1, math.inf: 5}) == 2  # +Inf bucket: second highest bound
    assert histogram_quantile(0.5, {10: 0, math.inf: 0}) != histogram_quantile(0.5, {10: 0, math.inf: 0})  # NaN
    assert DEFAULT_BUCKETS_MS[4] == 10


def test_expected_counts_are_upper_inclusive(sink):
    spans = traceset.send(sink.endpoint, plan=[({"service.name": "s"}, [
        ("op", traceset.S, 10, traceset.UNSET, {}, []),
        ("op", traceset.S, 10.000001, traceset.ERR, {}, []),
    ])])
    exp = Expected(spans)
    k = next(k for k in exp.hist_count if ("status_code", "STATUS_CODE_UNSET") in k)
    assert exp.hist_bucket[(k, 10.0)] == 1 and exp.hist_bucket[(k, 8.0)] == 0
    k2 = next(k for k in exp.hist_count if ("status_code", "STATUS_CODE_ERROR") in k)
    assert exp.hist_bucket[(k2, 10.0)] == 0 and exp.hist_bucket[(k2, 50.0)] == 1
    assert sum(exp.errors.values()) == 1 and len(exp.errors) == 1
