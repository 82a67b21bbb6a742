"""The harness of the receiver parity tests (test_parity_zipkin.py, test_parity_jaeger.py,
test_parity_jaeger_grpc.py): each runs one trace receiver in otelcol and in Redline (or in
one of them alone, named by an environment variable), each collector (a "side") exporting
to an OTLP sink of its own, and compares what every side forwards with a model of otelcol's
translation and with what the other side forwards.

A test sends something to every side, takes what each forwarded off its sink
(`next_forwarded`, `forwarded`; `Side.expected` counts what was taken), compares it
(`check`), and ends with `settle`: nothing more was forwarded. A test of many cases keeps
each case's failure (`collect`) and fails once, with all of them (`report`).

The tenant cases (`TENANT_CASES`) run each collector on a config of their own
(`tenant_config`: the receiver's `include_metadata`, the `headers_setter` extension, an
`otlphttp` exporter to an OTLP/HTTP sink that records headers), started and stopped per case
(`tenant_sides`), and compare which spans arrived under which value of the tenant header
(`check_tenants`). The cardinality cases add a `batch` processor that keeps one tenant
(`tenant_batch_config`) and compare how the receiver answers the second tenant's refusal
(`check_over_the_limit`).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import time
from collections import defaultdict

import pytest
import requests
import yaml
from google.protobuf import text_format

import helpers
from expo import parse
from otlp_http_sink import OtlpHttpSink
from otlp_sink import OtlpSink
from pair import Collector, rewrite

QUIET = 0.3  # seconds without a forwarded request that count as "nothing more comes"
COUNTERS = ("otelcol_receiver_accepted_spans", "otelcol_receiver_refused_spans", "otelcol_receiver_failed_spans")


# ---------------------------------------------------------------- the collectors


class Side:
    """One collector with the receiver on ports of its own and its own sink; `expected` is
    how many forwarded requests the test has accounted for. A test module's subclass adds
    how its receiver is reached. `http_sink`: the OTLP/HTTP sink of a tenant case
    (`tenant_sides`), stopped with the side."""

    http_sink = None
    skip_empty = False  # a forwarded request without resource_spans is passed over as nothing
    forward_wait = 5  # seconds for a forward (each takes milliseconds)

    def __init__(self, name: str, collector: Collector, sink: OtlpSink):
        self.name, self.collector, self.sink = name, collector, sink
        self.expected = 0

    def is_request(self, req) -> bool:
        return bool(req.resource_spans) or not self.skip_empty

    def telemetry(self):
        r = requests.get(self.collector.url("telemetry", "/metrics"), timeout=10)
        assert r.status_code == 200, (self.name, r.status_code)
        return parse(r.text, r.headers.get("Content-Type", "text/plain"))

    def stop(self):
        try:
            self.collector.stop()
        finally:
            self.sink.stop()
            if self.http_sink is not None:
                self.http_sink.stop()


def sides_wanted(env: str) -> tuple:
    """The collectors the environment variable `env` names: otelcol, redline or both (the
    default)."""
    names = tuple(x.strip() for x in os.environ.get(env, "otelcol,redline").split(",") if x.strip())
    if not names or not set(names) <= {"otelcol", "redline"}:
        pytest.fail(f"{env}={os.environ.get(env)!r}: name otelcol, redline or both", pytrace=False)
    return names


def start_collector(name: str, argv: list, procs, workdir, config: str, configure,
                    http_sink: OtlpHttpSink | None = None):
    """One collector on `config` with a sink of its own: `configure(cfg, ports, collector)`
    puts the receiver's ports in the config (called with `collector` None) and, once the
    collector runs, waits for them and returns what the test keeps of them. Started again on
    other ports when one was taken between the check and the bind. `http_sink`: where the
    config's `otlphttp` exporters send (the caller's to stop). Returns (collector, sink,
    kept)."""
    for attempt in range(3):
        sink = OtlpSink().start()
        cfg, ports = rewrite(yaml.safe_load(config), sink.endpoint, None,
                             otlphttp_url=http_sink.url() if http_sink is not None else "")
        configure(cfg, ports, None)
        collector = Collector(name, procs, argv, cfg, ports, sink, workdir)
        try:
            collector.wait_ready()  # the TCP ports: the receiver's and the telemetry's
            return collector, sink, configure(cfg, ports, collector)
        except Exception:
            lost_port = "address already in use" in collector.proc.log_text()
            collector.proc.stop(timeout=15)
            sink.stop()
            if attempt == 2 or not lost_port:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_sides(request, env: str, procs, workdir, start):
    """By name, a Side for each collector `env` names, made by `start(name, argv, procs,
    workdir)`; stopped on leaving."""
    names = sides_wanted(env)
    argv = {"otelcol": [request.getfixturevalue("otelcol_bin")]}
    if "redline" in names:  # asked for only then: otelcol alone runs without a Redline build
        argv["redline"] = [request.getfixturevalue("redline_bin")]
    started: dict = {}
    try:
        for name in names:
            started[name] = start(name, argv[name], procs, workdir)
        yield started
    finally:
        for side in started.values():
            side.stop()


def sides_fixture(env: str, start):
    """A test module's `sides` fixture (module-scoped): by name, a Side for each collector
    `env` names, made by `start(name, argv, procs, workdir)`; stopped after the module."""

    @pytest.fixture(scope="module", name="sides")
    def sides(request, module_procs, tmp_path_factory) -> dict:
        workdir = tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_parity_"))
        with running_sides(request, env, module_procs, workdir, start) as started:
            yield started

    return sides


# ---------------------------------------------------------------- what was forwarded


def next_forwarded(side: Side, what: str):
    """The next request `side` forwarded (passing over what is no request to it: `Side.is_request`)."""
    found: list = []

    def arrived():
        for i, req in enumerate(side.sink.requests()[side.expected:]):
            if side.is_request(req):
                found.append(req)
                side.expected += i + 1
                return True
        return False

    helpers.wait_until(arrived, side.forward_wait, f"{side.name} to forward {what}", interval=0.01,
                       alive=side.collector.proc)
    return found[0]


def forwarded(sides: dict, what: str, took: dict | None = None) -> dict:
    """The next request each side forwarded, by side (in a list); with `took`, only of the
    sides it holds true for (those that accepted what was sent). Called before anything is
    asserted of the answers, so that what a side accepted is off its sink and the next case
    starts even."""
    return {name: [next_forwarded(side, what)] for name, side in sides.items() if took is None or took[name]}


def settle(sides: dict):
    """Nothing forwarded beyond what the test accounted for."""
    time.sleep(QUIET)
    extra = {name: [_spans_of(r) for r in side.sink.requests()[side.expected:] if side.is_request(r)]
             for name, side in sides.items()}
    for side in sides.values():
        side.expected = side.sink.request_count()
    assert not any(extra.values()), f"forwarded and not expected (span names, a list per request): {extra}"


def _spans_of(req) -> list:
    return [sp.name for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans]


def collect(problems: list, what: str, fn, *args):
    """fn(*args), its assertion kept in `problems` rather than raised (one test, many cases)."""
    try:
        fn(*args)
    except AssertionError as e:
        problems.append(f"--- {what}:\n{e}")


def report(problems: list, total_cases: int):
    assert not problems, f"{len(problems)} of {total_cases} case(s) failed:\n" + "\n\n".join(problems)


def assert_counts_moved(sides: dict, counts, before: dict, want: dict):
    """Each side's `counts(telemetry)` moved by `want` since `before` (by side)."""
    def deltas(name: str) -> dict:
        after = counts(sides[name].telemetry())
        return {k: after[k] - before[name][k] for k in after}

    for name in sides:
        try:
            helpers.wait_until(lambda: deltas(name) == want, 10, f"{name}'s counters")
        except helpers.WaitTimeout:
            pass  # the assertion says which counters are off, a timeout would not
        got = deltas(name)
        assert got == want, f"{name}: " + ", ".join(
            f"{k}: {got[k]} (want {want[k]})" for k in want if got[k] != want[k])


# ---------------------------------------------------------------- comparison


def copy(msg):
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def sort_repeated(field, key):
    kept = sorted((copy(m) for m in field), key=key)
    del field[:]
    field.extend(kept)


def canonical(requests_: list, sort: bool = False) -> str:
    """Forwarded (or modelled) requests as text, ids in hex, an empty resource, scope or
    status present; everything in its order, or with `sort` the spans of each scope in
    span-id order and every attribute list in key order (resources and scopes keep theirs)."""
    texts = []
    for req in requests_:
        req = copy(req)
        for rs in req.resource_spans:
            rs.resource.SetInParent()
            with_attributes = [rs.resource]
            for ss in rs.scope_spans:
                ss.scope.SetInParent()
                with_attributes.append(ss.scope)
                if sort:
                    sort_repeated(ss.spans, key=lambda sp: sp.span_id)
                for sp in ss.spans:
                    sp.status.SetInParent()
                    with_attributes += [sp, *sp.events, *sp.links]
                    for part in (sp, *sp.links):
                        for f in ("trace_id", "span_id", "parent_span_id"):
                            if hasattr(part, f) and getattr(part, f):
                                setattr(part, f, getattr(part, f).hex().encode())
            if sort:
                for part in with_attributes:
                    sort_repeated(part.attributes, key=lambda kv: kv.key)
        texts.append(text_format.MessageToString(req, as_utf8=True))
    return "\n=== next request ===\n".join(texts)


def _diff(a: str, b: str, an: str, bn: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), an, bn, lineterm="", n=4))


def check(what: str, got: dict, want: list, sort: bool = False):
    """Each side's forwarded requests equal the model's `want`, and each other (as
    `canonical` writes them, with `sort`)."""
    want_text = canonical(want, sort)
    texts = {name: canonical(reqs, sort) for name, reqs in got.items()}
    problems = [f"{name} differs from the model:\n{_diff(want_text, t, 'model', name)}"
                for name, t in texts.items() if t != want_text]
    if len(texts) == 2 and texts["otelcol"] != texts["redline"]:
        problems.append("otelcol and redline differ:\n"
                        + _diff(texts["otelcol"], texts["redline"], "otelcol", "redline"))
    assert not problems, f"{what}:\n" + "\n\n".join(problems)


# ---------------------------------------------------------------- the tenant header (include_metadata)

TENANT = "x-scope-orgid"  # the header as the sink records names (lower case)
# Three clients, one request each with spans of its own: two tenants (the header
# `X-Scope-OrgID`) and one without the header.
TENANT_CLIENTS = (("acme", ("a1", "a2")), ("globex", ("g1",)), (None, ("n1", "n2")))
# The header's value(s) on each request the sink got: the names of all the spans under them.
PER_TENANT = {("acme",): ["a1", "a2"], ("globex",): ["g1"], ("anon",): ["n1", "n2"]}
ALL_ANON = {("anon",): ["a1", "a2", "g1", "n1", "n2"]}
TENANT_CASES = pytest.mark.parametrize("include_metadata, expected", [(True, PER_TENANT), (False, ALL_ANON)],
                                       ids=["include_metadata", "without include_metadata"])


def tenant_config(config: str, servers: list, include_metadata: bool) -> str:
    """`config` as Grafana users run multi-tenancy: `include_metadata` set (true or false) on
    each server section in `servers` (each a path of keys, e.g. ("receivers", "zipkin")), the
    `headers_setter` extension making `X-Scope-OrgID` from the client's `x-scope-orgid`
    (`anon` without it), and every pipeline exporting only to `otlphttp/x` (the side's
    OTLP/HTTP sink, see `tenant_sides`), authenticated by that extension."""
    cfg = yaml.safe_load(config)
    for path in servers:
        section = cfg
        for key in path:
            section = section[key]
        section["include_metadata"] = include_metadata
    cfg = {"extensions": {"headers_setter": {"headers": [
        {"action": "upsert", "key": "X-Scope-OrgID", "from_context": TENANT, "default_value": "anon"}]}}, **cfg}
    cfg["exporters"] = {"otlphttp/x": {"endpoint": "http://127.0.0.1:1", "compression": "none",
                                       "auth": {"authenticator": "headers_setter"}}}
    cfg["service"]["extensions"] = ["headers_setter"]
    for pipeline in cfg["service"]["pipelines"].values():
        pipeline["exporters"] = ["otlphttp/x"]
    return yaml.safe_dump(cfg, sort_keys=False)


# Two tenants, one after the other, into a `batch` that keeps one (`tenant_batch_config`):
# the first is taken, the second refused, and only the first's spans arrive.
TENANTS_OVER_THE_LIMIT = TENANT_CLIENTS[:2]
FIRST_TENANT_ONLY = {("acme",): ["a1", "a2"]}


def tenant_batch_config(config: str, servers: list) -> str:
    """`tenant_config` with `include_metadata` and, in the traces pipeline, a `batch`
    processor batching by the tenant (`metadata_keys`) that keeps at most one value of it
    (`metadata_cardinality_limit: 1`): otelcol refuses a second tenant's data with a
    permanent error ("too many batcher metadata-value combinations"), so each receiver's
    answer to a permanent error is what a client sees."""
    cfg = yaml.safe_load(tenant_config(config, servers, True))
    cfg["processors"] = {"batch": {"metadata_keys": [TENANT], "metadata_cardinality_limit": 1}}
    cfg["service"]["pipelines"]["traces"]["processors"] = ["batch"]
    return yaml.safe_dump(cfg, sort_keys=False)


def check_over_the_limit(sides: dict, answers: list, accepted: tuple, refused, otelcol_text: str):
    """`answers`, one per client of `TENANTS_OVER_THE_LIMIT` (by side, (status, text)): the
    first tenant's is `accepted` and the second's has the status `refused` on every side,
    otelcol's text being `otelcol_text` (pinned for the record; another side's only has to be
    there); then only the first tenant's spans arrived (`check_tenants`)."""
    first, second = answers
    assert first == {name: accepted for name in sides}, f"the first tenant not taken by all: {answers}"
    assert {name: a[0] for name, a in second.items()} == {name: refused for name in sides}, \
        f"the second tenant not refused with {refused} by all: {answers}"
    if "otelcol" in second:
        assert second["otelcol"][1] == otelcol_text, f"otelcol's text changed: {answers}"
    assert all(a[1].strip() for a in second.values()), f"a refusal without a reason: {answers}"
    check_tenants(sides, FIRST_TENANT_ONLY)


@contextlib.contextmanager
def tenant_sides(request, env: str, procs, workdir, start, config: str):
    """By name, a Side for each collector `env` names on `config` (`tenant_config`), each
    with an OTLP/HTTP sink of its own (`Side.http_sink`), made by `start(name, argv, procs,
    workdir, config=config, http_sink=sink)`; stopped on leaving."""

    def one(name: str, argv: list, procs_, workdir_):
        http_sink = OtlpHttpSink().start()
        try:
            side = start(name, argv, procs_, workdir_, config=config, http_sink=http_sink)
        except BaseException:
            http_sink.stop()
            raise
        side.http_sink = http_sink
        return side

    with running_sides(request, env, procs, workdir, one) as started:
        yield started


def tenant_header(tenant) -> dict:
    """The HTTP header of a client of `TENANT_CLIENTS` (none for None); mixed case, as a
    header's name is case-insensitive."""
    return {"X-Scope-OrgID": tenant} if tenant else {}


def tenant_metadata(tenant) -> tuple:
    """The gRPC metadata of a client of `TENANT_CLIENTS` (none for None)."""
    return ((TENANT, tenant),) if tenant else ()


def tenants_received(side: Side) -> dict:
    """{values of the tenant header on a request the side's OTLP/HTTP sink got, in the order
    they came: sorted names of the spans of all such requests}; a body that did not decode is
    kept as its path and error."""
    got = defaultdict(list)
    for p in side.http_sink.posted():
        values = tuple(v for k, v in p.header_list if k == TENANT)
        if p.signal != "traces" or p.request is None:
            got[values].append(f"<{p.path}: {p.error or 'not traces'}>")
        else:
            got[values].extend(_spans_of(p.request))
    return {k: sorted(v) for k, v in got.items()}


def check_tenants(sides: dict, expected: dict, timeout: float = 20):
    """Every side's sink got, under each value of the tenant header, exactly the spans
    `expected` holds there (so both sides got the same). Waits (at most `timeout` seconds)
    until each got as many spans as expected, then QUIET more for anything extra."""
    want = sum(len(v) for v in expected.values())

    def counted() -> bool:
        return all(sum(len(v) for v in tenants_received(s).values()) >= want for s in sides.values())

    try:
        helpers.wait_until(counted, timeout, f"{want} spans at each sink", interval=0.05)
    except helpers.WaitTimeout:
        pass  # the comparison says what is missing, a timeout would not
    time.sleep(QUIET)
    got = {name: tenants_received(s) for name, s in sides.items()}
    assert got == {name: expected for name in sides}, f"spans by tenant header value, per side: {got}"
