"""The collectors' own metrics (`service.telemetry.metrics`, otelcol's :8888) against
otelcol-contrib: the dashboards and alerts users have for their collectors query these names.

otelcol serves them without unit and type suffixes (`otelcol_receiver_accepted_spans`, no
`_total`) unless the reader turns `without_units` or `without_type_suffix` off, and always in
the classic text format, even to a scraper that prefers OpenMetrics (as Prometheus does, where
OpenMetrics would rename each counter's samples `…_total`). Every family Redline serves under an
otelcol name must be one otelcol serves, with the same type, the same sample names and the
same counts for the same traffic; the one exception is a failure counter still at 0, which
otelcol serves only from its first failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
import otelcol_peer  # noqa: E402
import traffic  # noqa: E402
from expo import parse  # noqa: E402
from pair import SIDES, Pair  # noqa: E402

# What Prometheus sends (its default scrape_protocols).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def config(naming: dict) -> str:
    metrics = {"readers": [{"pull": {"exporter": {"prometheus": {"host": "127.0.0.1", "port": 8888,
                                                                  **naming}}}}]}
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {"otlp/tempo": {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}}},
        "service": {
            "telemetry": {"metrics": metrics},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp/tempo"]}},
        },
    }, sort_keys=False)


def scrape(pair: Pair, side: str):
    r = requests.get(pair.c[side].url("telemetry", "/metrics"),
                     headers={"Accept": PROMETHEUS_ACCEPT}, timeout=10)
    assert r.status_code == 200, (side, r.status_code)
    return r.headers["Content-Type"], parse(r.text, r.headers["Content-Type"])


def total(expo, sample: str, **labels) -> float:
    """Sum over the series of `sample` that have `labels` (otelcol adds labels of its own,
    such as `server_address`, which Redline does not)."""
    return sum(s.value for fam in expo.families.values() for (name, lbls), s in fam.samples.items()
               if name == sample and labels.items() <= dict(lbls).items())


@pytest.mark.parametrize("naming, suffix", [
    ({}, ""),
    ({"without_type_suffix": False}, "_total"),
], ids=["otelcol_default", "without_type_suffix_false"])
def test_own_metrics_have_otelcols_names_types_and_counts(procs, tmp_path, redline_bin, naming, suffix):
    pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, config(naming),
                flush_interval=None)
    try:
        body = traffic.request(({"service.name": "telemetry-parity"},
                                [traffic.span(name=f"op-{i}") for i in range(5)])).SerializeToString()
        for _ in range(3):
            assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}
        accepted = f"otelcol_receiver_accepted_spans{suffix}"
        sent = f"otelcol_exporter_sent_spans{suffix}"
        helpers.wait_until(
            lambda: all(total(scrape(pair, side)[1], sent, exporter="otlp/tempo") == 15
                        for side in SIDES),
            20, "both collectors to count 15 spans sent")

        answers = {side: scrape(pair, side) for side in SIDES}
        for side, (content_type, _) in answers.items():
            assert content_type.startswith("text/plain; version=0.0.4"), (side, content_type)
        otelcol, redline = answers["otelcol"][1], answers["redline"][1]
        for expo in (otelcol, redline):
            assert total(expo, accepted, receiver="otlp", transport="grpc") == 15
            assert total(expo, sent, exporter="otlp/tempo") == 15
            assert total(expo, f"otelcol_exporter_send_failed_spans{suffix}", exporter="otlp/tempo") == 0

        ours = {name: fam for name, fam in redline.families.items() if name.startswith("otelcol_")}
        assert ours, "Redline served none of otelcol's metrics"
        # otelcol's SDK counters appear at their first count; Redline's failure counters are
        # served from the start at 0, so an alert's rate() sees the first failure too.
        only_ours = {name: [s.value for s in ours[name].samples.values()]
                     for name in ours if name not in otelcol.families}
        assert all(v == 0 for values in only_ours.values() for v in values), only_ours
        assert set(only_ours) <= {f"otelcol_exporter_send_failed_spans{suffix}",
                                  f"otelcol_exporter_enqueue_failed_spans{suffix}"}, only_ours
        for name, fam in ours.items():
            if name in only_ours:
                continue
            theirs = otelcol.families[name]
            assert fam.type == theirs.type, (name, fam.type, theirs.type)
            assert {n for n, _ in fam.samples} == {n for n, _ in theirs.samples}, name
    finally:
        pair.stop()
