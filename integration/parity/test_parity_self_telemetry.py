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
        "processors": {"memory_limiter": {"check_interval": "1s", "limit_mib": 4000}},
        "exporters": {
            "otlp/tempo": {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}},
            "otlphttp/gateway": {"endpoint": "http://127.0.0.1:4318/otlp"},
        },
        "service": {
            "telemetry": {"metrics": metrics},
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["memory_limiter"],
                                     "exporters": ["otlp/tempo", "otlphttp/gateway"]}},
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


def labels_of(expo, sample: str) -> set:
    return {lbls for fam in expo.families.values() for (name, lbls), _ in fam.samples.items()
            if name == sample}


def _stat(pid: int) -> list:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime, in USER_HZ (100) ticks."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / 100


def rss_bytes(pid: int) -> int:
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def process_age(pid: int) -> float:
    started = int(_stat(pid)[19]) / 100  # starttime: ticks after boot
    return float(Path("/proc/uptime").read_text().split()[0]) - started


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
            lambda: all(total(scrape(pair, side)[1], sent, exporter=e) == 15
                        for side in SIDES for e in ("otlp/tempo", "otlphttp/gateway")),
            20, "both collectors to count 15 spans sent by each exporter")

        answers = {side: scrape(pair, side) for side in SIDES}
        for side, (content_type, _) in answers.items():
            assert content_type.startswith("text/plain; version=0.0.4"), (side, content_type)
        otelcol, redline = answers["otelcol"][1], answers["redline"][1]
        # Each exporter's counters say where it sends, with its own sink's port.
        for side, expo in answers.items():
            sink_port = pair.sinks[side].endpoint.rsplit(":", 1)[1]
            http_port = str(pair.http_sinks[side].port)
            assert labels_of(expo[1], sent) == {
                (("exporter", "otlp/tempo"), ("server_address", "127.0.0.1"),
                 ("server_port", sink_port)),
                (("exporter", "otlphttp/gateway"), ("server_address", "127.0.0.1"),
                 ("server_port", http_port), ("url_path", "/otlp/v1/traces")),
            }, side
        for expo in (otelcol, redline):
            assert total(expo, accepted, receiver="otlp", transport="grpc") == 15
            assert total(expo, sent, exporter="otlp/tempo") == 15
            assert total(expo, f"otelcol_exporter_send_failed_spans{suffix}", exporter="otlp/tempo") == 0
            assert total(expo, f"otelcol_processor_memory_limiter_accepted_spans{suffix}",
                         processor="memory_limiter") == 15
            for direction in ("incoming", "outgoing"):
                assert total(expo, f"otelcol_processor_{direction}_items{suffix}",
                             processor="memory_limiter", otel_signal="traces") == 15
            assert labels_of(expo, "otelcol_exporter_in_flight_requests") == {
                (("data_type", "traces"), ("exporter", e)) for e in ("otlp/tempo", "otlphttp/gateway")}
            assert total(expo, "otelcol_exporter_in_flight_requests") == 0

        # The process figures collector dashboards plot, checked against the kernel's own.
        process = {f"otelcol_process_uptime{'_seconds' + suffix if suffix else ''}",
                   f"otelcol_process_cpu_seconds{suffix}",
                   f"otelcol_process_memory_rss{'_bytes' if suffix else ''}"}
        for expo in (otelcol, redline):
            assert process <= {n for fam in expo.families.values() for n, _ in fam.samples}
        pid = pair.redline.proc.pid
        cpu_before, rss_before = cpu_seconds(pid), rss_bytes(pid)
        _, fresh = scrape(pair, "redline")
        cpu_after, rss_after = cpu_seconds(pid), rss_bytes(pid)
        cpu = total(fresh, f"otelcol_process_cpu_seconds{suffix}")
        assert cpu_before <= cpu <= cpu_after, (cpu_before, cpu, cpu_after)
        rss = total(fresh, f"otelcol_process_memory_rss{'_bytes' if suffix else ''}")
        assert 0.9 * min(rss_before, rss_after) <= rss <= 1.1 * max(rss_before, rss_after)
        uptime = total(fresh, f"otelcol_process_uptime{'_seconds' + suffix if suffix else ''}")
        # /proc/uptime has 10 ms steps, so the process's age read from it can be up to 10 ms
        # short (a CI run saw uptime 0.2402 s against an age of 0.2400 s).
        assert 0 < uptime <= process_age(pid) + 0.01, (uptime, process_age(pid))

        ours = {name: fam for name, fam in redline.families.items() if name.startswith("otelcol_")}
        assert ours, "Redline served none of otelcol's metrics"
        # otelcol's SDK counters appear at their first count; Redline's failure counters are
        # served from the start at 0, so an alert's rate() sees the first failure too.
        only_ours = {name: [s.value for s in ours[name].samples.values()]
                     for name in ours if name not in otelcol.families}
        assert all(v == 0 for values in only_ours.values() for v in values), only_ours
        assert set(only_ours) <= {f"otelcol_exporter_send_failed_spans{suffix}",
                                  f"otelcol_exporter_enqueue_failed_spans{suffix}"}, only_ours
        # What otelcol serves and Redline does not: Go's runtime and HTTP handler figures,
        # and the receivers' `failed` counters, which count nothing unless a feature gate
        # splits errors from refusals (docs/compatibility.md §36).
        only_theirs = sorted(name for name in otelcol.families if name not in redline.families)
        assert only_theirs == sorted([
            "otelcol_process_runtime_heap_alloc_bytes",
            f"otelcol_process_runtime_total_alloc_bytes{suffix}",
            "otelcol_process_runtime_total_sys_memory_bytes",
            f"otelcol_receiver_failed_spans{suffix}",
            "promhttp_metric_handler_errors_total",
        ]), only_theirs
        for name, fam in ours.items():
            if name in only_ours:
                continue
            theirs = otelcol.families[name]
            assert fam.type == theirs.type, (name, fam.type, theirs.type)
            assert {n for n, _ in fam.samples} == {n for n, _ in theirs.samples}, name
    finally:
        pair.stop()


def test_filter_drops_are_counted_alike_and_served_at_zero(procs, tmp_path, redline_bin):
    """The filter processor's drop counter: otelcol adds to it on every batch, so it serves
    0 once traffic has passed; Redline serves it from the start (an alert on its increase
    then sees the first drops), and both count the same drops."""
    cfg = yaml.safe_load(config({}))
    cfg["processors"] = {"filter/none": {"traces": {"span": ['name == "never"']}},
                         "filter/health": {"traces": {"span": ['name == "healthz"']}}}
    cfg["service"]["pipelines"]["traces"]["processors"] = ["filter/none", "filter/health"]
    pair = Pair(procs, tmp_path, otelcol_peer.otelcol_bin(), redline_bin, yaml.safe_dump(cfg),
                flush_interval=None)
    try:
        body = traffic.request(({"service.name": "telemetry-parity"},
                                [traffic.span(name=n) for n in ("op", "healthz", "healthz", "op")])
                               ).SerializeToString()
        for _ in range(2):
            assert {a.status for a in pair.grpc_export(body).values()} == {"OK"}
        helpers.wait_until(
            lambda: all(total(scrape(pair, side)[1], "otelcol_exporter_sent_spans", exporter="otlp/tempo") == 4
                        for side in SIDES),
            20, "both collectors to send the 4 spans left")
        for side in SIDES:
            expo = scrape(pair, side)[1]
            assert labels_of(expo, "otelcol_processor_filter_spans_filtered") == {
                (("filter", "filter/none"),), (("filter", "filter/health"),)}, side
            assert total(expo, "otelcol_processor_filter_spans_filtered", filter="filter/none") == 0
            assert total(expo, "otelcol_processor_filter_spans_filtered", filter="filter/health") == 4
    finally:
        pair.stop()
