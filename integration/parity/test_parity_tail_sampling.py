"""Parity of the `tail_sampling` processor: otelcol-contrib and Redline hold the same spans
by trace, decide the same traces and forward the same spans.

One config holds a policy of every kind that decides by what a trace carries (status codes,
latency with and without an upper bound, string attributes by regex and exactly with an
inverted match, a numeric range, a boolean, span counts, tracestate, a probabilistic share
with a fixed salt, `and` with a `not`, a `drop` policy, OTTL conditions on spans and span
events, trace flags, a composite with rate allocations); the 17 policies are evaluated for
72 traces whose spans come in three requests (gRPC, OTLP/HTTP, gRPC) under several
resources and scopes, each trace built to hit or miss particular policies (and the edges
otelcol has: an unanchored regex, a resource value that is not a string read as "", a
double read as 0, a latency band judged on the first spans that fit it, `policy_order`
ignored), with every policy evaluated and with `sample_on_first_match`. What each
collector forwards is compared span by span, and both against the traces designed here to be
sampled; so are the processor's decision counters (per policy and in all).

Then: spans arriving after their trace was decided (forwarded at once when it was sampled,
never when it was not; without a decision cache and with one), traces still pending when
the collector is stopped (decided and forwarded, unless `drop_pending_traces_on_shutdown`),
and settings otelcol refuses at start, refused by both, with `redline validate` naming the
bad key.

Decisions are kept independent of timing: every trace's spans arrive within a few
milliseconds, long before its decision (1 to 2 s later with `decision_wait: 1s`), and no
limit is tight enough for the order of traces within a tick to matter.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
from configs import three_signals_pipeline
from expo import series_text
from pair import SIDES, rewrite
from test_parity_self_telemetry import scrape
from test_parity_signals import answer_diffs, compare_forwarded, forwarded, send, wait_all_forwarded
from traffic import kv

COMPONENT = "tail_sampling/parity"
SALT = "parity-salt"
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
SERVER, INTERNAL, CLIENT = 2, 1, 3
ERROR, OK = 2, 1

POLICIES = [
    {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
    {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
    {"name": "latency-band", "type": "latency", "latency": {"threshold_ms": 150, "upper_threshold_ms": 250}},
    {"name": "route-regex", "type": "string_attribute",
     "string_attribute": {"key": "http.route", "values": ["/api/v[0-9]+/orders", "^/admin$", "^(/status)?$"],
                          "enabled_regex_matching": True, "cache_max_size": 16}},
    {"name": "and-gold-outside-eu", "type": "and", "and": {"and_sub_policy": [
        {"name": "gold", "type": "string_attribute", "string_attribute": {"key": "tier", "values": ["gold"]}},
        {"name": "outside-eu", "type": "string_attribute",
         "string_attribute": {"key": "region", "values": ["eu-west", "eu-central"], "invert_match": True}},
    ]}},
    {"name": "http-5xx", "type": "numeric_attribute",
     "numeric_attribute": {"key": "http.status_code", "min_value": 500, "max_value": 599}},
    # 0 is no bound: any value up to 2, and anything that is not an int reads as 0.
    {"name": "few-retries", "type": "numeric_attribute",
     "numeric_attribute": {"key": "retries", "min_value": 0, "max_value": 2}},
    {"name": "debug-flag", "type": "boolean_attribute", "boolean_attribute": {"key": "debug", "value": True}},
    {"name": "big-traces", "type": "span_count", "span_count": {"min_spans": 4}},
    # The drop policy is listed in the middle: otelcol evaluates drop policies first anyway.
    {"name": "drop-healthz", "type": "drop", "drop": {"drop_sub_policy": [
        {"name": "root-healthz", "type": "ottl_condition", "ottl_condition": {
            "error_mode": "ignore",
            "span": ['span.name == "/healthz" and IsRootSpan()']}},
    ]}},
    {"name": "tracestate-keep", "type": "trace_state", "trace_state": {"key": "vendor", "values": ["keep"]}},
    {"name": "sample-25", "type": "probabilistic",
     "probabilistic": {"hash_salt": SALT, "sampling_percentage": 25}},
    {"name": "and-checkout-unacked", "type": "and", "and": {"and_sub_policy": [
        {"name": "checkout", "type": "string_attribute",
         "string_attribute": {"key": "service.name", "values": ["checkout"]}},
        {"name": "unacked", "type": "not", "not": {"not_sub_policy": {
            "name": "acked", "type": "boolean_attribute", "boolean_attribute": {"key": "acked", "value": True}}}},
    ]}},
    {"name": "ottl-span", "type": "ottl_condition", "ottl_condition": {
        "error_mode": "ignore",
        "span": ['span.attributes["db.system"] == "redis" and span.kind == SPAN_KIND_CLIENT']}},
    {"name": "ottl-event", "type": "ottl_condition", "ottl_condition": {
        "error_mode": "ignore",
        "spanevent": ['spanevent.name == "exception" and spanevent.attributes["exception.type"] == "TimeoutError"']}},
    {"name": "sampled-flag", "type": "trace_flags"},
    # `policy_order` names `comp-vip` first, but otelcol evaluates the sub-policies in the
    # order they are listed: `comp-bulk` first, with 1 % of 200 = 2 spans a second.
    {"name": "composite-customer", "type": "composite", "composite": {
        "max_total_spans_per_second": 200,
        "policy_order": ["comp-vip", "comp-bulk"],
        "composite_sub_policy": [
            {"name": "comp-bulk", "type": "string_attribute",
             "string_attribute": {"key": "customer", "values": ["bulk"]}},
            {"name": "comp-vip", "type": "string_attribute",
             "string_attribute": {"key": "customer", "values": ["vip"]}},
        ],
        "rate_allocation": [{"policy": "comp-vip", "percent": 90}, {"policy": "comp-bulk", "percent": 1}],
    }},
]
DROP = "drop-healthz"
POLICY_NAMES = [p["name"] for p in POLICIES]

RESOURCES = {
    "front": {"service.name": "frontend", "host.name": "node-1"},
    "back": {"service.name": "backend", "host.name": "node-2"},
    "gold": {"service.name": "billing", "tier": "gold"},
    "gold-eu": {"service.name": "billing", "tier": "gold", "region": "eu-west"},
    "debug": {"service.name": "ops", "debug": True},
    "checkout": {"service.name": "checkout"},
    "gateway-int": {"service.name": "gateway", "http.route": 7},
    "gateway-empty": {"service.name": "gateway", "http.route": ""},
}


def config(tail: dict) -> str:
    """otlp -> tail_sampling/parity -> otlp/tempo (traces only) with `tail` as its settings."""
    cfg = yaml.safe_load(three_signals_pipeline(signals=("traces",)))
    cfg["processors"] = {COMPONENT: tail}
    cfg["service"]["pipelines"]["traces"]["processors"] = [COMPONENT]
    return yaml.safe_dump(cfg, sort_keys=False)


# ---------------------------------------------------------------- the traces


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def in_probabilistic_share(trace_id: bytes, salt: str = SALT, percent: int = 25) -> bool:
    """otelcol's probabilistic policy: FNV-1a of salt and trace id, at most MaxUint64 * ratio."""
    return fnv1a64(salt.encode() + trace_id) <= (2**64 - 1) * percent // 100


def trace_id_for(n: int, sampled_by_share: bool) -> bytes:
    """The first trace id of the family of trace `n` that the probabilistic policy samples
    (or does not), so that which traces it takes is part of the design."""
    for k in range(1, 1000):
        # FNV-1a carries a change in the last bytes into few high bits: vary the first.
        tid = k.to_bytes(4, "big") + bytes.fromhex("7a11") + n.to_bytes(10, "big")
        if in_probabilistic_share(tid) == sampled_by_share:
            return tid
    raise AssertionError("no trace id found")


@dataclass
class S:
    """One span of a designed trace: which request (`part`) and resource carry it, and what
    it holds. Times are ms after the trace's start."""

    part: int = 0
    res: str = "back"
    scope: str = "parity.db"
    name: str = "query"
    kind: int = INTERNAL
    start: int = 10
    dur: int = 50
    status: int = 0
    attrs: dict = field(default_factory=dict)
    flags: int = 0
    trace_state: str = ""
    events: tuple = ()


@dataclass
class Case:
    name: str
    hits: set  # the policies that sample it (DROP: the drop policy drops it)
    spans: list
    index: int = 0  # makes its trace id, span ids and times
    trace_id: bytes = b""

    @property
    def decision(self) -> str:
        if DROP in self.hits:
            return "dropped"
        return "sampled" if self.hits else "not_sampled"


def case(name: str, hits=(), root: dict | None = None, mid: dict | None = None, late: dict | None = None,
         extra=(), no_late: bool = False) -> Case:
    """A trace of a root span (request 0, `frontend`), a child (request 0, `backend`) and a
    later child (request 1, `backend`), each changed by the fields given, plus `extra` spans."""
    spans = [S(**{"part": 0, "res": "front", "scope": "parity.http", "name": name, "kind": SERVER, "start": 0,
                  "dur": 100, **(root or {})}),
             S(**(mid or {}))]
    if not no_late:
        spans.append(S(**{"part": 1, "name": "render", "start": 20, "dur": 60, **(late or {})}))
    spans += extra
    return Case(name, set(hits), spans)


def exception(kind: str) -> trace_pb2.Span.Event:
    return trace_pb2.Span.Event(time_unix_nano=T0, name="exception", attributes=[kv("exception.type", kind)])


EXTRA = S(part=2, res="front", scope="parity.client", name="call", kind=CLIENT, start=30, dur=10)

CASES = [
    # Nothing to sample, some taken by the probabilistic share (trace ids chosen for it).
    case("plain-1"),
    case("plain-2", {"sample-25"}),
    case("plain-3"),
    case("plain-4", {"sample-25"}),
    case("plain-5", {"sample-25"}),
    case("plain-one-request", late={"part": 0}),
    # Status codes: on any span, in any request.
    case("error-root", {"errors"}, root={"status": ERROR}),
    case("error-late", {"errors"}, late={"status": ERROR}),
    case("error-root-last", {"errors"}, root={"part": 2}, mid={"status": ERROR}),
    case("ok-only", root={"status": OK}, late={"status": OK}),
    # The drop policy wins over every other; a /healthz span that is not the root is kept.
    case("healthz-error", {DROP, "errors"}, root={"name": "/healthz"}, late={"status": ERROR}),
    case("healthz-plain", {DROP}, root={"name": "/healthz"}),
    case("healthz-share", {DROP, "sample-25"}, root={"name": "/healthz"}),
    case("healthz-child", {"errors"}, mid={"name": "/healthz", "status": ERROR}),
    # Latency: the earliest start to the latest end across the trace's spans.
    case("slow-root", {"slow"}, root={"dur": 600}),
    case("slow-spread", {"slow"}, late={"start": 560, "dur": 40}),
    case("slow-edge", root={"dur": 500}),
    case("slow-and-error", {"slow", "errors"}, root={"dur": 700, "status": ERROR}),
    case("band-middle", {"latency-band"}, root={"dur": 200}),
    case("band-upper-edge", {"latency-band"}, root={"dur": 250}),
    case("band-over", root={"dur": 251}),
    # otelcol stops at the first span for which the trace so far is within the band: the
    # root alone spans 200 ms, the whole trace 400 ms, and it is sampled.
    case("band-prefix", {"latency-band"}, root={"dur": 200}, late={"start": 300, "dur": 100}),
    # Regex (unanchored: a match anywhere in the value), on span attributes only here.
    case("route-match", {"route-regex"}, mid={"attrs": {"http.route": "/api/v2/orders/42"}}),
    case("route-inside", {"route-regex"}, late={"attrs": {"http.route": "/internal/api/v3/orders"}}),
    case("route-anchored", {"route-regex"}, mid={"attrs": {"http.route": "/admin"}}),
    case("route-anchored-miss", mid={"attrs": {"http.route": "/admin/users"}}),
    case("route-miss", mid={"attrs": {"http.route": "/api/vX/orders"}}),
    case("route-int", mid={"attrs": {"http.route": 42}}),
    # A regex that matches the empty string: a span's empty (or not string) value is skipped,
    # a resource's is matched as "".
    case("route-status", {"route-regex"}, mid={"attrs": {"http.route": "/status"}}),
    case("route-empty-on-span", mid={"attrs": {"http.route": ""}}),
    case("route-int-on-resource", {"route-regex"}, late={"res": "gateway-int"}),
    case("route-empty-on-resource", {"route-regex"}, late={"res": "gateway-empty"}),
    # `and` of an exact value and an inverted match (no region in the EU on any span or resource).
    case("gold-span", {"and-gold-outside-eu"}, mid={"attrs": {"tier": "gold"}}),
    case("gold-in-eu", mid={"attrs": {"tier": "gold"}}, late={"attrs": {"region": "eu-west"}}),
    case("gold-us", {"and-gold-outside-eu"}, mid={"attrs": {"tier": "gold", "region": "us-east"}}),
    case("gold-resource-only", {"and-gold-outside-eu"}, late={"res": "gold"}),
    case("gold-resource-eu", late={"res": "gold-eu"}),
    case("gold-region-int", {"and-gold-outside-eu"}, mid={"attrs": {"tier": "gold", "region": 5}}),
    case("silver", mid={"attrs": {"tier": "silver"}}),
    # Numeric range, bounds included; a double or a string reads as 0.
    case("http-503", {"http-5xx"}, late={"attrs": {"http.status_code": 503}}),
    case("http-599", {"http-5xx"}, mid={"attrs": {"http.status_code": 599}}),
    case("http-499", mid={"attrs": {"http.status_code": 499}}),
    case("http-double", mid={"attrs": {"http.status_code": 503.0}}),
    case("http-string", mid={"attrs": {"http.status_code": "503"}}),
    case("retries-negative", {"few-retries"}, mid={"attrs": {"retries": -5}}),
    case("retries-3", mid={"attrs": {"retries": 3}}),
    case("retries-double", {"few-retries"}, mid={"attrs": {"retries": 2.5}}),
    case("retries-string", {"few-retries"}, late={"attrs": {"retries": "many"}}),
    # Boolean: a string "true" is not true; a resource attribute counts.
    case("debug-true", {"debug-flag"}, mid={"attrs": {"debug": True}}),
    case("debug-string", mid={"attrs": {"debug": "true"}}),
    case("debug-false", mid={"attrs": {"debug": False}}),
    case("debug-resource-only", {"debug-flag"}, late={"res": "debug"}),
    # Span counts, over all requests.
    case("four-spans", {"big-traces"}, extra=[EXTRA]),
    case("five-spans", {"big-traces"}, extra=[S(part=1, res="front", scope="parity.http", name="retry"), EXTRA]),
    case("two-spans", no_late=True),
    # Tracestate.
    case("tracestate-keep", {"tracestate-keep"}, mid={"trace_state": "congo=t61rcWkgMzE,vendor=keep"}),
    case("tracestate-other", mid={"trace_state": "vendor=drop"}),
    case("tracestate-malformed", mid={"trace_state": "vendor=keep,Bad=1"}),
    # `and` with a `not`: service.name on a resource, and no span says acked=true.
    case("checkout-unacked", {"and-checkout-unacked"}, late={"res": "checkout"}),
    case("checkout-acked", late={"res": "checkout", "attrs": {"acked": True}}),
    # OTTL on spans and on span events.
    case("redis-client", {"ottl-span"}, mid={"kind": CLIENT, "attrs": {"db.system": "redis"}}),
    case("redis-server", mid={"kind": SERVER, "attrs": {"db.system": "redis"}}),
    case("timeout-event", {"ottl-event"}, late={"events": (exception("TimeoutError"),)}),
    case("other-event", late={"events": (exception("ValueError"),)}),
    # Trace flags: the sampled bit of the low byte.
    case("flag-sampled", {"sampled-flag"}, late={"flags": 0x01}),
    case("flag-other-bits", mid={"flags": 0x300}),
    case("flag-both", {"sampled-flag"}, mid={"flags": 0x301}),
    # Composite: 2 spans a second for `comp-bulk`, which is evaluated first.
    case("customer-vip", {"composite-customer"}, mid={"attrs": {"customer": "vip"}}),
    case("customer-bulk-small", {"composite-customer"}, mid={"attrs": {"customer": "bulk"}}, no_late=True),
    case("customer-bulk-large", mid={"attrs": {"customer": "bulk"}}),
    case("customer-bulk-and-vip", mid={"attrs": {"customer": "bulk"}}, late={"attrs": {"customer": "vip"}}),
    # Several policies at once.
    case("many", {"errors", "debug-flag", "http-5xx", "sample-25"},
         root={"status": ERROR, "attrs": {"debug": True}}, late={"attrs": {"http.status_code": 500}}),
]


def numbered(cases: list, first: int = 0) -> list:
    """`cases` with their index and trace id set (the trace id in the probabilistic share
    exactly when the case says the probabilistic policy samples it)."""
    for n, c in enumerate(cases, first):
        c.index, c.trace_id = n, trace_id_for(n, "sample-25" in c.hits)
    return cases


numbered(CASES)


def span_id(case_index: int, span_index: int) -> bytes:
    return (0x5D00000000000000 | case_index << 8 | span_index + 1).to_bytes(8, "big")


def build_span(c: Case, i: int, s: S) -> trace_pb2.Span:
    """Span `i` of case `c`: span 0 is the root, the others its children."""
    n = c.index
    start = T0 + n * 10_000 * MS + s.start * MS
    return trace_pb2.Span(
        trace_id=c.trace_id, span_id=span_id(n, i), parent_span_id=b"" if i == 0 else span_id(n, 0),
        name=s.name, kind=s.kind, start_time_unix_nano=start, end_time_unix_nano=start + s.dur * MS,
        attributes=[kv(k, v) for k, v in s.attrs.items()], flags=s.flags, trace_state=s.trace_state,
        events=list(s.events), status=trace_pb2.Status(code=s.status))


def requests(cases) -> list:
    """The requests carrying `cases`, in sending order (one per `part`)."""
    return grouped([(c, i, s) for c in cases for i, s in enumerate(c.spans)])


def grouped(spans) -> list:
    """Requests of (case, span index, S) triples: one per `part`, spans grouped by resource
    and scope in the order they first appear."""
    parts: dict = {}
    for c, i, s in spans:
        scopes = parts.setdefault(s.part, {}).setdefault(s.res, {})
        scopes.setdefault(s.scope, []).append(build_span(c, i, s))
    return [trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=[kv(k, v) for k, v in RESOURCES[res].items()]),
            scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name=scope), spans=spans)
                         for scope, spans in scopes.items()])
        for res, scopes in parts[p].items()]) for p in sorted(parts)]


# ---------------------------------------------------------------- what arrived


def span_set(reqs) -> set:
    """(trace id, span id, name, resource attributes, scope name) of every span in `reqs`."""
    return {(sp.trace_id.hex(), sp.span_id.hex(), sp.name,
             tuple(sorted((a.key, a.value.SerializeToString()) for a in rs.resource.attributes)), ss.scope.name)
            for req in reqs for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans}


def against_design(side: str, got: set, want: set, names: dict) -> list:
    """What `side` forwarded that the design does not sample, and what it left out, by case."""
    out = []
    for title, keys in (("forwarded although not sampled by design", got - want),
                        ("not forwarded although sampled by design", want - got)):
        by_case = Counter(names.get(k[0], k[0]) for k in keys)
        out += [f"{side}: {title}: {name} ({n} span(s))" for name, n in sorted(by_case.items())]
    return out


def tail_counters(pair, side: str) -> dict:
    """otelcol_processor_tail_sampling_{count,global_count}_traces_sampled: (sample, labels) -> value."""
    _, expo = scrape(pair, side)
    return {key: s.value for name, fam in expo.families.items() if name in COUNTERS
            for key, s in fam.samples.items()}


PER_POLICY = "otelcol_processor_tail_sampling_count_traces_sampled"
GLOBAL = "otelcol_processor_tail_sampling_global_count_traces_sampled"
COUNTERS = (PER_POLICY, GLOBAL)


def labels(**kw) -> tuple:
    return tuple(sorted(kw.items()))


def designed_counters(cases, first_match: bool = False) -> dict:
    """The decision counters the design implies: the drop policy sees every trace, the other
    policies (in their order) those it did not drop, up to the first that samples the trace
    with `sample_on_first_match`; each counts its own decision."""
    out: Counter = Counter()
    for c in cases:
        out[(GLOBAL, labels(sampled=str(c.decision == "sampled").lower(), decision=c.decision))] += 1
        out[(PER_POLICY, labels(policy=f"parity.{DROP}", sampled="false",
                                decision="dropped" if c.decision == "dropped" else "not_sampled"))] += 1
        if c.decision == "dropped":
            continue
        for p in POLICY_NAMES:
            if p != DROP:
                hit = p in c.hits
                out[(PER_POLICY, labels(policy=f"parity.{p}", sampled=str(hit).lower(),
                                        decision="sampled" if hit else "not_sampled"))] += 1
                if hit and first_match:
                    break
    return dict(out)


def wait_decided(pair, traces: int, timeout: float = 20):
    """Until both collectors count `traces` decisions in all (bounded; the comparison after
    it explains a collector that never gets there)."""
    def decided():
        return all(sum(v for (name, _), v in tail_counters(pair, side).items() if name == GLOBAL) >= traces
                   for side in SIDES)
    try:
        helpers.wait_until(decided, timeout, f"both collectors to decide {traces} traces")
    except helpers.WaitTimeout:
        pass


def send_all(pair, reqs, transports=("grpc", "http/protobuf", "grpc")) -> list:
    diffs = []
    for i, req in enumerate(reqs):
        transport = transports[i % len(transports)]
        seen = send(pair, "traces", transport, req)
        diffs += answer_diffs(f"request {i} over {transport}", seen)
        assert seen["redline"].startswith(("OK", "200")), seen
    return diffs


def forwarded_problems(pair, allow, diffs: list, want: set, cases) -> list:
    """What each collector forwarded against the spans `want` (the design's), and the
    differences between the two (with the answers' in `diffs`) that compatibility.md does not
    list."""
    names = {c.trace_id.hex(): c.name for c in cases}
    problems = []
    for side in SIDES:
        problems += against_design(side, span_set(forwarded(pair, side, "traces")), want, names)
    _, apart = compare_forwarded(pair)
    return problems + [f"otelcol and redline differ: {d}" for d in allow.unexplained(diffs + apart)]


def report(problems: list, what: str):
    assert not problems, f"{len(problems)} problem(s) {what}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("first_match", [False, True], ids=["every_policy", "sample_on_first_match"])
def test_policies_decide_the_same_traces(pair_factory, allow, first_match):
    tail = {"decision_wait": "1s", "sample_on_first_match": first_match, "policies": POLICIES}
    pair = pair_factory(config(tail), flush_interval=None)
    diffs = send_all(pair, requests(CASES))

    sampled = [c for c in CASES if c.decision == "sampled"]
    want = span_set(requests(sampled))
    wait_all_forwarded(pair, {"traces": len(want), "metrics": 0, "logs": 0})
    wait_decided(pair, len(CASES))
    problems = forwarded_problems(pair, allow, diffs, want, CASES)

    # The decision counters, each side's against the design's (so against each other's).
    designed = designed_counters(CASES, first_match)
    for side in SIDES:
        served = tail_counters(pair, side)
        for key in sorted(set(designed) | set(served)):
            if designed.get(key) != served.get(key):
                problems.append(f"{side}: {series_text(*key)} = {served.get(key)} (design: {designed.get(key)})")
    types = {side: {name: fam.type for name, fam in scrape(pair, side)[1].families.items() if name in COUNTERS}
             for side in SIDES}
    if types["otelcol"] != types["redline"]:
        problems.append(f"family types differ: {types}")
    report(problems, f"({len(sampled)} of {len(CASES)} traces sampled by design, {len(want)} spans)")


LATE = S(part=0, res="front", scope="parity.late", name="late", start=900)


@pytest.mark.parametrize("cache", [{}, {"decision_cache": {"sampled_cache_size": 100, "non_sampled_cache_size": 100}}],
                         ids=["no_decision_cache", "decision_cache"])
def test_late_spans_follow_the_decision(pair_factory, allow, cache):
    """A span arriving after its trace was decided: forwarded at once when the trace was
    sampled (the trace kept in memory, or the sampled cache answering), never when it was
    not sampled or dropped, even with an error status that would have sampled it."""
    policies = [p for p in POLICIES if p["name"] in ("errors", DROP)]
    pair = pair_factory(config({"decision_wait": "1s", "policies": policies, **cache}), flush_interval=None)
    cases = numbered([case("late-sampled", {"errors"}, root={"status": ERROR}), case("late-not-sampled"),
                      case("late-dropped", {DROP}, root={"name": "/healthz"})], first=100)
    sent = time.monotonic()
    diffs = send_all(pair, requests(cases))
    want = span_set(requests(cases[:1]))
    wait_all_forwarded(pair, {"traces": len(want), "metrics": 0, "logs": 0})
    wait_decided(pair, len(cases))
    # decision_wait and 2 s more after the first spans: every trace decided, in both.
    time.sleep(max(0.0, sent + 3 - time.monotonic()))

    def arrived(side, late_id):
        return [r.at for r in pair.sinks[side].received() for rs in r.request.resource_spans
                for ss in rs.scope_spans for sp in ss.spans if sp.span_id == late_id]

    # Three late spans of the sampled trace, 0.35 s apart (so at different points between two
    # ticks): otelcol forwards each while it handles the request, within milliseconds.
    delays: dict = {side: [] for side in SIDES}
    for k in range(3):
        others = [(c, 9, replace(LATE, status=ERROR)) for c in cases[1:]] if k == 0 else []
        ours = [(cases[0], 9 + k, LATE)]
        late_id = span_id(cases[0].index, 9 + k)
        at = time.time()
        diffs += send_all(pair, grouped(ours + others))
        want |= span_set(grouped(ours))
        try:
            helpers.wait_until(lambda i=late_id: all(arrived(side, i) for side in SIDES), 5, "a late span")
        except helpers.WaitTimeout:
            pass
        for side in SIDES:
            delays[side].append(round(min(arrived(side, late_id)) - at, 3) if arrived(side, late_id) else None)
        time.sleep(0.35)
    problems = [f"{side}: the late spans of the sampled trace not forwarded at once: after {d} s"
                for side, d in delays.items() if any(x is None or x > 0.5 for x in d)]
    # Two ticks and more: the late spans of the traces not sampled are not forwarded later either.
    time.sleep(2.5)
    report(problems + forwarded_problems(pair, allow, diffs, want, cases), "with late spans")


@pytest.mark.parametrize("drop_pending", [False, True], ids=["decided_at_shutdown", "drop_pending_traces_on_shutdown"])
def test_pending_traces_at_shutdown(pair_factory, allow, drop_pending):
    """Stopped (SIGTERM) long before the decision is due, otelcol decides every trace it
    holds and forwards the sampled ones before it exits; `drop_pending_traces_on_shutdown`
    drops them instead."""
    tail = {"decision_wait": "30s", "policies": POLICIES[:1]}
    if drop_pending:
        tail["drop_pending_traces_on_shutdown"] = True
    pair = pair_factory(config(tail), flush_interval=None)
    cases = numbered([case("pending-sampled", {"errors"}, late={"status": ERROR}), case("pending-not-sampled")],
                     first=200)
    diffs = send_all(pair, requests(cases))
    assert {side: pair.sinks[side].request_count() for side in SIDES} == {"otelcol": 0, "redline": 0}
    codes = {side: pair.c[side].stop() for side in SIDES}
    want = set() if drop_pending else span_set(requests(cases[:1]))
    problems = [] if codes["otelcol"] == codes["redline"] else [f"exit codes differ: {codes}"]
    report(problems + forwarded_problems(pair, allow, diffs, want, cases), "at shutdown")


ALWAYS = {"name": "all", "type": "always_sample"}

# Settings otelcol refuses when it starts the processor (`sampling_strategy`: already when it
# validates the config), what it says, and the key `redline validate` names.
REFUSED = [
    ("unknown policy type", {"policies": [{"name": "a", "type": "sometimes"}]},
     "unknown sampling policy type sometimes", "policies[0].type"),
    ("status code BAD", {"policies": [{"name": "a", "type": "status_code",
                                       "status_code": {"status_codes": ["ERROR", "BAD"]}}]},
     'unknown status code "BAD"', "policies[0].status_code.status_codes[1]"),
    ("status code BAD in an and sub-policy", {"policies": [{"name": "a", "type": "and", "and": {"and_sub_policy": [
        ALWAYS, {"name": "b", "type": "status_code", "status_code": {"status_codes": ["BAD"]}}]}}]},
     'unknown status code "BAD"', "policies[0].and.and_sub_policy[1].status_code.status_codes[0]"),
    ("regex that does not compile", {"policies": [{"name": "a", "type": "string_attribute", "string_attribute": {
        "key": "k", "values": ["ok", "[z-a]"], "enabled_regex_matching": True}}]},
     "invalid regex", "policies[0].string_attribute.values[1]"),
    ("policy without a name", {"policies": [ALWAYS, {"type": "always_sample"}]},
     "policy name cannot be empty", "policies[1].name"),
    ("duplicate policy names", {"policies": [ALWAYS, {"name": "all", "type": "trace_flags"}]},
     'duplicate policy name "all"', "policies[1].name"),
    ("ottl_condition without conditions", {"policies": [{"name": "a", "type": "ottl_condition",
                                                         "ottl_condition": {"error_mode": "ignore"}}]},
     "expected at least one OTTL condition", "policies[0].ottl_condition"),
    ("unknown sampling_strategy", {"sampling_strategy": "bogus", "policies": [ALWAYS]},
     'invalid sampling_strategy "bogus"', "sampling_strategy"),
]


@pytest.mark.parametrize("tail,message,key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_settings_are_refused_by_both(otelcol_bin, redline_bin, tmp_path, tail, message, key):
    cfg, _ = rewrite(yaml.safe_load(config(tail)), "127.0.0.1:1", None)
    path = tmp_path / "tail.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    peer = helpers.run([otelcol_bin, "--config", path], timeout=60)
    assert peer.returncode != 0 and message in peer.stderr, peer.stderr[-2000:]
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert ours.returncode != 0 and f"processors.{COMPONENT}.{key}" in ours.stderr + ours.stdout, ours.stderr
    started = helpers.run([redline_bin, "--config", path], timeout=30)
    assert started.returncode != 0, started.stderr[-2000:]
