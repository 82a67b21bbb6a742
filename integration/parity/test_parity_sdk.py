"""Parity on traffic from the OpenTelemetry SDK: the reference config, the configs Redline
ships, and each OTLP protocol the SDK speaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import helpers
import scenario
import traffic
from configs import BASE



def test_reference_config_unchanged(pair_factory, shared_dir, allow):
    """The user's file as they run it: only ports rewritten, otelcol's 60 s flush kept."""
    text = (shared_dir / "reference" / "otelcol-tempo.yaml").read_text()
    pair = pair_factory(text, flush_interval=None)
    traffic.sdk_send(pair, "grpc", traffic.PARITY_PLAN)
    scenario.check(pair, allow, "reference config", traffic.counted_spans(traffic.PARITY_PLAN))


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_sdk_protocols(pair_factory, allow, protocol):
    pair = pair_factory(BASE)
    traffic.sdk_send(pair, protocol, traffic.PARITY_PLAN)
    scenario.check(pair, allow, f"SDK over {protocol}", traffic.counted_spans(traffic.PARITY_PLAN))


@pytest.mark.parametrize("enums", ["integers", "names"])
def test_sdk_spans_as_otlp_json(pair_factory, allow, enums):
    """The SDK's spans in OTLP/JSON (the Python SDK has no JSON exporter; browser SDKs send
    this), enums as integers or as their names."""
    pair = pair_factory(BASE)
    spans = traffic.sdk_send(pair, "grpc", traffic.PARITY_PLAN[:1])  # known ids, then re-sent as JSON
    body = traffic.otlp_json(traffic.sdk_request(spans), enums_as_names=enums == "names")
    answers = pair.http_post("/v1/traces", body, {"Content-Type": "application/json"})
    assert {a.status for a in answers.values()} == {"200"}, answers
    scenario.check(pair, allow, f"OTLP/JSON ({enums})", 2 * len(spans), spans=False)
    fwd = pair.forwarded()
    assert [traffic_span_count(r) for r in (fwd["otelcol"], fwd["redline"])] == [2 * len(spans)] * 2


def traffic_span_count(requests) -> int:
    return sum(len(ss.spans) for r in requests for rs in r.resource_spans for ss in rs.scope_spans)


SHIPPED = sorted(p.name for p in (helpers.REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs(pair_factory, allow, name):
    """Every config Redline ships, run by both."""
    text = (helpers.REPO / "configs" / name).read_text()
    cfg = yaml.safe_load(text)
    pair = pair_factory(text)
    traffic.sdk_send(pair, "grpc", traffic.PARITY_PLAN)
    has_spanmetrics = any(k.split("/")[0] in ("spanmetrics", "span_metrics") for k in (cfg.get("connectors") or {}))
    scenario.check(pair, allow, f"configs/{name}", traffic.counted_spans(traffic.PARITY_PLAN) if has_spanmetrics else 0)
