"""Parity of the OTLP metrics → Prometheus translation on SDK traffic.

The OpenTelemetry SDK records sdk_metrics' plan (every instrument kind, a cumulative and a
delta provider) into encoded requests once (sdk_metrics.record_requests); the same bytes go
to otelcol-contrib and to Redline, in the SDK's export order (cumulative over OTLP/gRPC,
delta over OTLP/HTTP protobuf), on one config: otlp -> prometheus + prometheusremotewrite.

Compared, each difference one line, checked against docs/compatibility.md:
  * the answer to every export (status, partial_success);
  * the `prometheus` exporter's /metrics in the text format and in OpenMetrics (families,
    HELP, TYPE, label names, series, values: diff.compare_metrics);
  * its protobuf format (promwire: families, TYPE, HELP, UNIT, every series' whole value,
    native histograms bucket by bucket, created timestamps);
  * every sample (float and native histogram, with its timestamp) and metadata entry the
    `prometheusremotewrite` exporter wrote, decoded from the WriteRequests the recording
    sink took, as a multiset (how samples are grouped into requests does not matter).
"""

from __future__ import annotations

import time

import requests

import otlp_signals
import sdk_metrics
from configs import sdk_metrics_pipeline
from diff import compare_exemplars, one_side_labels, compare_metrics
from expo import OPENMETRICS, TEXT
from pair import SIDES
from promwire import PROTO_ACCEPT, compare_proto_scrape, compare_remote_write, decode_bodies, decode_delimited

METRICS = otlp_signals.SIGNAL["metrics"]
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def send(pair, log: list) -> list[str]:
    """Every recorded export to both collectors; the answers' differences."""
    diffs = []
    for n, (temporality, request) in enumerate(log):
        body = request.SerializeToString()
        if temporality == "cumulative":
            answers = pair.grpc_export(body, method=METRICS.method)
        else:
            answers = pair.http_post(METRICS.path, body, PROTOBUF)
        seen = {side: otlp_signals.partial_success("metrics", a.status, a.body, a.content_type)
                for side, a in answers.items()}
        assert seen["otelcol"].startswith(("OK", "200")), f"otelcol refused export {n}: {seen}"
        if seen["otelcol"] != seen["redline"]:
            diffs.append(f"answer differs: {temporality} export {n}: otelcol={seen['otelcol']} "
                         f"redline={seen['redline']}")
    return diffs


def proto_scrape(collector) -> tuple[str, bytes]:
    r = requests.get(collector.url("prom", "/metrics"), headers={"Accept": PROTO_ACCEPT}, timeout=30)
    assert r.status_code == 200, f"{collector.side} /metrics answered {r.status_code}"
    return r.headers.get("Content-Type", ""), r.content


def wait_settled(pair, timeout: float = 20, quiet: float = 1.5):
    """Until neither collector's scrape nor its remote-write sink changes for `quiet`
    seconds (bounded: a collector that never settles is left to the comparison)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = []
        for side in SIDES:
            try:
                text = requests.get(pair.c[side].url("prom", "/metrics"), headers={"Accept": TEXT}, timeout=5).text
            except requests.RequestException:
                text = None
            now.append((text, len(pair.remote_write[side].bodies)))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet and last[0][0] and last[0][1]:
            return
        time.sleep(0.25)


def test_sdk_metrics_translation(pair_factory, allow):
    pair = pair_factory(sdk_metrics_pipeline(), flush_interval=None)
    _, log = sdk_metrics.record_requests()
    diffs = send(pair, log)
    wait_settled(pair)

    text, om = pair.scrape(TEXT), pair.scrape(OPENMETRICS)
    diffs += compare_metrics(text["otelcol"], text["redline"])
    # With their defaults otelcol answers an OpenMetrics scrape in the text format and Redline
    # in OpenMetrics (docs/compatibility.md, 5): compared as such only when both speak it.
    diffs += compare_exemplars(om["otelcol"], om["redline"], one_side_labels(text["otelcol"], text["redline"]))
    if all("openmetrics" in om[side].content_type for side in SIDES):
        diffs += [f"openmetrics: {d}" for d in compare_metrics(om["otelcol"], om["redline"])]

    proto = pair.each(proto_scrape)
    kinds = {side: "protobuf" if "protobuf" in ct else ct.split(";")[0] for side, (ct, _) in proto.items()}
    assert kinds["otelcol"] == "protobuf", kinds
    if kinds["redline"] != "protobuf":
        diffs.append(f"format for a protobuf scrape: otelcol=protobuf redline={kinds['redline']}")
    else:
        diffs += compare_proto_scrape(decode_delimited(proto["otelcol"][1]), decode_delimited(proto["redline"][1]))

    rw = {side: decode_bodies(list(pair.remote_write[side].bodies)) for side in SIDES}
    assert rw["otelcol"][0], "otelcol remote-wrote nothing"
    diffs += compare_remote_write(rw["otelcol"], rw["redline"])
    allow.check("SDK metrics -> prometheus + prometheusremotewrite", diffs)
