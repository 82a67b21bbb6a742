"""Parity of the `probabilistic_sampler` processor: otelcol-contrib and Redline must keep
exactly the same spans and log records, and write the same sampling state on them.

One config holds a pipeline pair (traces and logs) per sampler setting, each behind its own
`otlp` receiver and all exporting to one sink; every request carries its case name as the
resource attribute `parity.case`, so what each case forwarded is told apart. The traffic is
a few thousand spans and log records with random trace ids (fixed seed), with arriving
tracestates of every kind (none, other vendors, `ot=th`/`rv` consistent or not, malformed,
oversized), `sampling.priority` attributes, and log records with and without trace ids,
with hashed attributes, priorities and `sampling.threshold`/`sampling.randomness` attributes.

Compared: the forwarded items (ids, tracestates, attributes, everything), flattened per case,
and the processor's own counters (`otelcol_processor_probabilistic_sampler_count_*`).
"""

from __future__ import annotations

import random
import time

import grpc
import yaml

import otlp_signals
from expo import Exposition
from diff import compare_metrics
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from otlp_signals import SIGNAL
from traffic import kv

# Case name -> processor settings. Percentages 10 and 33.3 in every mode, plus the keys
# that change decisions: seed, fail_closed, precision, 0%, logs' record source and priority.
CASES = {
    "default10": {"sampling_percentage": 10},
    "hash33": {"sampling_percentage": 33.3, "hash_seed": 12345, "fail_closed": False},
    "prop10": {"mode": "proportional", "sampling_percentage": 10},
    "prop33": {"mode": "proportional", "sampling_percentage": 33.3, "sampling_precision": 6,
               "fail_closed": False},
    "eq10": {"mode": "equalizing", "sampling_percentage": 10},
    "eq33": {"mode": "equalizing", "sampling_percentage": 33.3, "fail_closed": False},
    "zero": {"sampling_percentage": 0, "fail_closed": False, "sampling_priority": "prio"},
    "record33": {"sampling_percentage": 33.3, "hash_seed": 7, "attribute_source": "record",
                 "from_attribute": "log.id", "sampling_priority": "prio"},
}

SPANS_PER_CASE = 3000
RECORDS_PER_CASE = 2000
PER_REQUEST = 100


def config() -> str:
    receivers, processors, pipelines = {}, {}, {}
    for case, settings in CASES.items():
        receivers[f"otlp/{case}"] = {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}}
        processors[f"probabilistic_sampler/{case}"] = settings
        for signal in ("traces", "logs"):
            pipelines[f"{signal}/{case}"] = {"receivers": [f"otlp/{case}"],
                                             "processors": [f"probabilistic_sampler/{case}"],
                                             "exporters": ["otlp/sink"]}
    cfg = {
        "receivers": receivers,
        "processors": processors,
        "exporters": {"otlp/sink": {"endpoint": "sink:4317", "tls": {"insecure": True}}},
        "service": {"pipelines": pipelines},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def _hex(rng: random.Random, digits: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(digits))


def tracestate(rng: random.Random) -> str:
    """No tracestate most of the time; else one of every kind otelcol reads differently."""
    if rng.random() < 0.6:
        return ""
    rv = _hex(rng, 14)
    th = rng.choice(["0", "4", "8", "c", "e", "fd70a", "ffffffffffffff", "ABC"])
    return rng.choice([
        "vendor=abc",
        f"ot=th:{th}",
        f"ot=th:{th},vendor=x",
        f"ot=rv:{rv}",
        f"ot=rv:{rv};th:{th}",
        f"congo=t61rcWkgMzE,ot=th:{th};rv:{rv};pn:abc",
        f" ot=th:{th} , , k@sys=1 ",
        "ot=th:zz",
        "ot=rv:123",
        "ot=p:8;x:y",
        f"ot=th:{th};",
        "BAD=1",
        ",".join(f"k{i}=v" for i in range(32)),
        "ot=th:" + "8" * 15,
    ])


PRIORITIES = [0, 1, -1, 0.0, 0.5, "1", "0", "0.0", "x", "1e400", "0x1p-2", "NaN", True]


def spans_requests(case: str, rng: random.Random) -> list:
    out = []
    for start in range(0, SPANS_PER_CASE, PER_REQUEST):
        resources = []
        for r in range(2):
            scopes = []
            for s in range(2):
                spans = []
                for i in range(PER_REQUEST // 4):
                    attrs = [kv("n", start + r * 50 + s * 25 + i)]
                    if rng.random() < 0.05:
                        attrs.append(kv("sampling.priority", rng.choice(PRIORITIES)))
                    spans.append(trace_pb2.Span(
                        trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=f"op-{i % 7}",
                        trace_state=tracestate(rng), attributes=attrs,
                        start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_100_000_000))
                scopes.append(trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name=f"scope-{s}"),
                                                   spans=spans))
            resources.append(trace_pb2.ResourceSpans(
                resource=resource_pb2.Resource(attributes=[kv("parity.case", case), kv("service.name", f"svc-{r}")]),
                scope_spans=scopes))
        out.append(trace_service_pb2.ExportTraceServiceRequest(resource_spans=resources))
    return out


def log_attributes(rng: random.Random, i: int) -> list:
    attrs = [kv("n", i)]
    roll = rng.random()
    if roll < 0.5:
        attrs.append(kv("log.id", rng.choice([f"id-{rng.randrange(10**9)}", rng.randrange(10**9),
                                               rng.randbytes(8), "", 2.5, False])))
    if rng.random() < 0.15:
        attrs.append(kv("prio", rng.choice([0, 25, 100, 150, -3, 12.5, 0.0, "50"])))
    if rng.random() < 0.1:
        attrs.append(kv("sampling.threshold", rng.choice(["8", "c", "0", "zz", "", 8])))
    if rng.random() < 0.1:
        attrs.append(kv("sampling.randomness", rng.choice([_hex(rng, 14), "123", 7])))
    if rng.random() < 0.3:
        attrs.append(kv("after", "last"))
    rng.shuffle(attrs)
    return attrs


def logs_requests(case: str, rng: random.Random) -> list:
    out = []
    for start in range(0, RECORDS_PER_CASE, PER_REQUEST):
        records = []
        for i in range(PER_REQUEST):
            with_trace = rng.random() < 0.8
            records.append(logs_pb2.LogRecord(
                time_unix_nano=1_700_000_000_000_000_000 + i, severity_number=9,
                body=common_pb2.AnyValue(string_value=f"record {start + i}"),
                trace_id=rng.randbytes(16) if with_trace else b"",
                span_id=rng.randbytes(8) if with_trace else b"",
                attributes=log_attributes(rng, start + i)))
        out.append(logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
            resource=resource_pb2.Resource(attributes=[kv("parity.case", case)]),
            scope_logs=[logs_pb2.ScopeLogs(log_records=records[:60]),
                        logs_pb2.ScopeLogs(scope=common_pb2.InstrumentationScope(name="other"),
                                           log_records=records[60:])])]))
    return out


def send(pair, case: str, signal: str, requests: list) -> list:
    diffs = []
    for side, collector in pair.c.items():
        with grpc.insecure_channel(f"127.0.0.1:{collector.ports[f'otlp/{case}.grpc']}") as channel:
            call = channel.unary_unary(SIGNAL[signal].method, request_serializer=None,
                                       response_deserializer=None)
            for n, req in enumerate(requests):
                try:
                    call(req.SerializeToString(), timeout=15)
                except grpc.RpcError as e:
                    diffs.append(f"answer differs: {case} {signal} request {n}: {side}={e.code().name}")
    return diffs


def wait_quiet(pair, timeout: float = 60, quiet: float = 2.0):
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = tuple(sorted((side, tuple(sorted(sink.counts().items()))) for side, sink in pair.sinks.items()))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def by_case(signal: str, requests: list) -> dict:
    """Forwarded items per `parity.case`."""
    sig = SIGNAL[signal]
    out: dict = {}
    for req in requests:
        for rs in getattr(req, sig.resources):
            case = next((a.value.string_value for a in rs.resource.attributes if a.key == "parity.case"), "")
            one = sig.request()
            getattr(one, sig.resources).append(rs)
            out.setdefault(case, []).append(one)
    return {case: otlp_signals.flatten(signal, reqs) for case, reqs in out.items()}


def sampler_families(expo: Exposition) -> Exposition:
    """The sampler's counters, under the names both collectors serve them (no `_total`, as
    otelcol's own metrics are served by default)."""
    return Exposition(expo.content_type, {name: fam for name, fam in expo.families.items()
                                          if "probabilistic_sampler" in name})


def test_sampler_keeps_what_otelcol_keeps(pair_factory, allow):
    pair = pair_factory(config(), flush_interval=None)
    diffs: list[str] = []
    sent = {"traces": {}, "logs": {}}
    for n, case in enumerate(CASES):
        rng = random.Random(20261205 + n)
        for signal, requests in (("traces", spans_requests(case, rng)), ("logs", logs_requests(case, rng))):
            diffs += send(pair, case, signal, requests)
            sent[signal][case] = otlp_signals.count_items(signal, requests)
    wait_quiet(pair)

    kept = {}
    for signal in ("traces", "logs"):
        flat = {side: by_case(signal, pair.sinks[side].requests_of(signal)) for side in pair.c}
        for case in CASES:
            a, b = flat["otelcol"].get(case, {}), flat["redline"].get(case, {})
            kept[(signal, case)] = sum(b.values())
            for key in sorted(set(a) - set(b)):
                diffs.append(f"forwarded {signal} only by otelcol [{case}]: {otlp_signals.describe(signal, key)}")
            for key in sorted(set(b) - set(a)):
                diffs.append(f"forwarded {signal} only by redline [{case}]: {otlp_signals.describe(signal, key)}")

    telemetry = pair.each(lambda c: sampler_families(c.scrape(key="telemetry")))
    diffs += compare_metrics(telemetry["otelcol"], telemetry["redline"])
    allow.check("probabilistic_sampler", diffs)

    # The scenario means something only if every sampling case kept some and dropped some.
    for (signal, case), n in kept.items():
        if case != "zero":
            assert 0 < n < sent[signal][case], f"{case} {signal}: kept {n} of {sent[signal][case]}"
    assert telemetry["redline"].families, "no probabilistic_sampler counters served"
