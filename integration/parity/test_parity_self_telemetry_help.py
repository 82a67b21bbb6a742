"""The HELP and TYPE of the collectors' own metrics (`service.telemetry.metrics`) against
otelcol-contrib's.

otelcol's instruments carry their stability in their descriptions (`Number of spans
successfully pushed into the pipeline. [Alpha]`, `... [Development]`, as mdatagen writes them
from each component's `metadata.yaml`). Dashboards and alert rules read only names, but tools
that show or diff the exposition (Grafana's metric browser, promtool, a review of what a
scrape returns) show the HELP line, so Redline serves the same text.

One pair runs on a config with every component both collectors build that counts something
of its own: the otlp receiver (gRPC and HTTP); the batch, memory_limiter (one that refuses
everything, behind a receiver of its own), resource, attributes, filter, transform,
probabilistic_sampler, span, tail_sampling (one with a decision cache, one whose traces are
all too large), deltatocumulative and groupbyattrs (one that groups everything, one that
groups nothing) processors; the spanmetrics, count and forward connectors; the otlp,
otlphttp, debug, prometheus and prometheusremotewrite exporters; the health_check and zpages
extensions. It takes traffic of the three signals over both transports, then the same again
while the otlphttp destination answers 400 (so both count failed sends), and both telemetry
endpoints are scraped. Every family both serve must have the same HELP and TYPE, and both must
serve at least the families listed in EXERCISED (a family that silently stopped being served
would otherwise leave nothing to compare). Families only one side serves are printed (`-s`
shows them), not failed on: test_parity_self_telemetry.py pins which those may be for its
own, smaller config.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import grpc
import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import helpers  # noqa: E402
from expo import TEXT, parse  # noqa: E402
from otlp_signals import SIGNAL  # noqa: E402
from pair import SIDES  # noqa: E402
from signal_traffic import BUILD  # noqa: E402
from test_parity_signals import send  # noqa: E402

UNITS = ("spans", "metric_points", "log_records")
# The families this config and traffic make both collectors serve.
EXERCISED = {
    *(f"otelcol_receiver_{what}_{unit}" for what in ("accepted", "refused") for unit in UNITS),
    *(f"otelcol_exporter_{what}_{unit}" for what in ("sent", "send_failed") for unit in UNITS),
    "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity",
    "otelcol_exporter_in_flight_requests",
    "otelcol_processor_incoming_items", "otelcol_processor_outgoing_items",
    *(f"otelcol_processor_memory_limiter_{what}_{unit}" for what in ("accepted", "refused")
      for unit in UNITS),
    "otelcol_processor_filter_spans_filtered", "otelcol_processor_filter_datapoints_filtered",
    "otelcol_processor_filter_logs_filtered",
    "otelcol_processor_probabilistic_sampler_count_traces_sampled",
    "otelcol_processor_probabilistic_sampler_count_logs_sampled",
    *(f"otelcol_processor_groupbyattrs_{kind}_{signal}" for kind in ("num_grouped", "num_non_grouped")
      for signal in ("spans", "metrics", "logs")),
    *(f"otelcol_processor_groupbyattrs_{signal}_groups" for signal in ("span", "metric", "log")),
    *(f"otelcol_processor_tail_sampling_{name}" for name in (
        "count_traces_sampled", "global_count_traces_sampled", "new_trace_id_received",
        "early_releases_from_cache_decision", "traces_dropped_too_large",
        "sampling_policy_evaluation_error", "sampling_policy_execution_count",
        "sampling_policy_execution_time_sum", "sampling_trace_dropped_too_early",
        "sampling_traces_on_memory")),
    "otelcol_deltatocumulative_datapoints", "otelcol_deltatocumulative_streams_tracked",
    "otelcol_deltatocumulative_streams_limit", "otelcol_deltatocumulative_streams_max_stale",
    "otelcol_process_uptime", "otelcol_process_cpu_seconds", "otelcol_process_memory_rss",
}


def config() -> str:
    always = [{"name": "all", "type": "always_sample"}]
    return yaml.safe_dump({
        "extensions": {"health_check": {}, "zpages": {}},
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"},
                                             "http": {"endpoint": "127.0.0.1:4318"}}},
                      "otlp/tight": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4319"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 4000},
            # Below either collector's footprint: refuses everything.
            "memory_limiter/tight": {"check_interval": "1s", "limit_mib": 2, "spike_limit_mib": 1},
            "batch": {"timeout": "200ms"},
            "resource": {"attributes": [{"key": "deployment.environment", "value": "parity",
                                         "action": "upsert"}]},
            "attributes": {"actions": [{"key": "help.parity", "value": "yes", "action": "insert"}]},
            "filter": {"error_mode": "ignore",
                       "traces": {"span": ['name == "never"']},
                       "metrics": {"datapoint": ['attributes["never"] == "x"']},
                       "logs": {"log_record": ['body == "never"']}},
            "transform": {"error_mode": "ignore",
                          "trace_statements": ['set(span.attributes["t"], "1")'],
                          "metric_statements": ['set(datapoint.attributes["t"], "1")'],
                          "log_statements": ['set(log.attributes["t"], "1")']},
            "probabilistic_sampler": {"sampling_percentage": 100},
            "span": {"name": {"to_attributes": {"rules": [r"^(?P<verb>\w+) .*$"]}}},
            # The second round's traces (the same trace ids) meet the decision cache.
            "tail_sampling": {"decision_wait": "1s", "decision_cache": {"sampled_cache_size": 1000},
                              "policies": always},
            # Every trace is too large.
            "tail_sampling/small": {"decision_wait": "1s", "maximum_trace_size_bytes": 1,
                                    "policies": always},
            "deltatocumulative": {},
            # Every item has `t` (set by transform); none has `absent`.
            "groupbyattrs": {"keys": ["host.name", "t"]},
            "groupbyattrs/none": {"keys": ["absent"]},
        },
        "connectors": {"spanmetrics": {"metrics_flush_interval": "1s"}, "count": {}, "forward": {}},
        "exporters": {
            "otlp": {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}},
            "otlphttp": {"endpoint": "http://127.0.0.1:4318"},
            "debug": {},
            "prometheus": {"endpoint": "127.0.0.1:8889"},
            "prometheusremotewrite": {"endpoint": "http://127.0.0.1:1/api/v1/write"},
        },
        "service": {
            "extensions": ["health_check", "zpages"],
            "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                "host": "127.0.0.1", "port": 8888}}}}]}},
            "pipelines": {
                "traces": {"receivers": ["otlp"],
                           "processors": ["memory_limiter", "resource", "attributes", "filter",
                                          "transform", "probabilistic_sampler", "span",
                                          "groupbyattrs", "groupbyattrs/none", "batch"],
                           "exporters": ["otlp", "otlphttp", "spanmetrics", "count", "forward"]},
                "traces/tail": {"receivers": ["forward"], "processors": ["tail_sampling"],
                                "exporters": ["debug"]},
                "traces/small": {"receivers": ["forward"], "processors": ["tail_sampling/small"],
                                 "exporters": ["debug"]},
                "metrics": {"receivers": ["otlp", "spanmetrics", "count"],
                            "processors": ["memory_limiter", "filter", "transform", "deltatocumulative",
                                           "groupbyattrs", "groupbyattrs/none", "batch"],
                            "exporters": ["otlp", "otlphttp", "prometheus", "prometheusremotewrite"]},
                "logs": {"receivers": ["otlp"],
                         "processors": ["memory_limiter", "resource", "attributes", "filter",
                                        "transform", "probabilistic_sampler", "groupbyattrs",
                                        "groupbyattrs/none", "batch"],
                         "exporters": ["otlphttp", "count", "debug"]},
                "traces/tight": {"receivers": ["otlp/tight"], "processors": ["memory_limiter/tight"],
                                 "exporters": ["otlp"]},
                "metrics/tight": {"receivers": ["otlp/tight"], "processors": ["memory_limiter/tight"],
                                  "exporters": ["otlp"]},
                "logs/tight": {"receivers": ["otlp/tight"], "processors": ["memory_limiter/tight"],
                               "exporters": ["otlphttp"]},
            },
        },
    }, sort_keys=False)


def scrape(pair, side: str):
    r = requests.get(pair.c[side].url("telemetry", "/metrics"), headers={"Accept": TEXT}, timeout=10)
    assert r.status_code == 200, (side, r.status_code)
    return parse(r.text, r.headers["Content-Type"])


def total(expo, sample: str, **labels) -> float:
    return sum(s.value for fam in expo.families.values() for (name, lbls), s in fam.samples.items()
               if name == sample and labels.items() <= dict(lbls).items())


def send_all(pair, label: str):
    """Each signal's request to both collectors' `otlp` receiver, over gRPC and OTLP/HTTP."""
    for signal, build in BUILD.items():
        for transport in ("grpc", "http/protobuf"):
            seen = send(pair, signal, transport, build(f"{label} {signal} {transport}"))
            assert all(a.startswith(("OK", "200")) for a in seen.values()), seen


def send_tight(pair):
    """Each signal's request to `otlp/tight`, whose memory limiter refuses it (both answer
    with an error; which one is not this test's business)."""
    for side in SIDES:
        with grpc.insecure_channel(f"127.0.0.1:{pair.c[side].ports['otlp/tight.grpc']}") as channel:
            for signal, build in BUILD.items():
                call = channel.unary_unary(SIGNAL[signal].method, request_serializer=None,
                                           response_deserializer=None)
                try:
                    call(build(f"help tight {signal}").SerializeToString(), timeout=10)
                except grpc.RpcError:
                    pass


def test_help_and_type_of_every_family_both_serve(pair_factory):
    pair = pair_factory(config(), flush_interval="1s")
    send_all(pair, "help ok")
    decided = "otelcol_processor_tail_sampling_global_count_traces_sampled"
    helpers.wait_until(lambda: all(decided in scrape(pair, side).families for side in SIDES),
                       30, "both tail samplers to decide")
    send_tight(pair)
    # The otlphttp exporters' destination now refuses everything (400: permanent, no
    # retries), and the traces come again, after their decisions.
    for side in SIDES:
        pair.http_sinks[side].status = 400
    send_all(pair, "help refused")
    counted = [(f"otelcol_exporter_send_failed_{unit}", {"exporter": "otlphttp"}) for unit in UNITS]
    counted += [(f"otelcol_processor_memory_limiter_refused_{unit}", {"processor": "memory_limiter/tight"})
                for unit in UNITS]
    counted += [("otelcol_processor_tail_sampling_early_releases_from_cache_decision", {})]
    helpers.wait_until(
        lambda: all(total(scrape(pair, side), name, **labels) > 0
                    for side in SIDES for name, labels in counted),
        30, "both to count failed sends, memory limiter refusals and cache hits")
    # One more spanmetrics flush and scrape interval, so every instrument has been through.
    time.sleep(2)

    expo = {side: scrape(pair, side) for side in SIDES}
    otelcol, redline = expo["otelcol"].families, expo["redline"].families
    both = sorted(set(otelcol) & set(redline))
    print(f"\n{len(both)} families both serve")
    for side, mine, other in (("otelcol", otelcol, redline), ("redline", redline, otelcol)):
        only = sorted(set(mine) - set(other))
        print(f"only {side} serves {len(only)}:")
        for name in only:
            print(f"  {name} [{mine[name].type}] {mine[name].help!r}")
    missing = {side: sorted(EXERCISED - set(expo[side].families)) for side in SIDES}
    assert not any(missing.values()), f"families this traffic should have made appear: {missing}"
    differ = [f"{name}: TYPE {otelcol[name].type} / {redline[name].type}, "
              f"HELP {otelcol[name].help!r} / {redline[name].help!r}"
              for name in both
              if (otelcol[name].help, otelcol[name].type) != (redline[name].help, redline[name].type)]
    assert not differ, (f"{len(differ)} of {len(both)} families differ (otelcol / redline):\n  "
                        + "\n  ".join(differ))
