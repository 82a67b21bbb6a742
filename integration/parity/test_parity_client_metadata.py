"""Multi-tenancy as Grafana users run it, against otelcol-contrib: the receiver keeps the
client's headers (`include_metadata`), the `batch` processor keeps or drops them
(`metadata_keys`, `metadata_cardinality_limit`), the `headers_setter` extension turns them into
the tenant header (`X-Scope-OrgID`) of each exported request, and the `attributes` processor
copies them into span attributes (`from_context: metadata.<key>`).

Both collectors run one config and forward to their own sinks, over OTLP/gRPC (`otlp`) and
OTLP/HTTP (`otlphttp`) at once, or by Prometheus remote write (`prometheusremotewrite`, as to
Mimir), or over OTLP/HTTP through a sending queue on disk (`file_storage`) across a restart;
both are fed the same requests, over OTLP/gRPC or OTLP/HTTP.
What is compared is which tenant got which data: for each exporter, the value(s) of the header
on each request the sink received, with the spans, log records or points (remote write: the
samples, as metric name, labels and value) that request carried, gathered per header value
(how a batch splits them into requests, or in which order concurrent requests arrive, is not
compared; that requests of two tenants are never merged is: their items would then sit under
one value). Repeated values of one header are kept in the order they came. A request whose
header could not be made arrives nowhere; a request the collector refuses is compared by the
status its client got. Every comparison is an exact equality with what otelcol-contrib did,
written out here as the expected value of both; each was first checked against otelcol alone
(REDLINE_BIN set to the otelcol binary: both sides are then otelcol).

What otelcol does, in short: without `include_metadata` (and after a `batch` without
`metadata_keys`, which exports with a fresh context) `from_context` finds nothing and the header
is `default_value`, or present and empty without one. Two values of the key fail that export
(the client was already answered OK). A tenant beyond `metadata_cardinality_limit` is refused
with gRPC INTERNAL / HTTP 500. On `otlphttp` the actions see the exporter's own `headers`; on
`otlp` they start from an empty map and the exporter's own header follows theirs.
`prometheusremotewrite` sends the header as the OTLP exporters do: each tenant's series under
its own value (the default value without a tenant, everything under it after a `batch`
without `metadata_keys`). The sending queue on disk keeps each request's client metadata: what
was queued, or being tried, when the collector stopped is sent after the restart with the
tenant it came with.

The peer's `headers_setter` is v0.158.0 (the newest the Go module proxy here serves; see
tools/otelcol/README.md).
"""

from __future__ import annotations

import http.client
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import traffic  # noqa: E402
from otlp_signals import SIGNAL  # noqa: E402
from pair import SIDES, Answer, Collector, Pair  # noqa: E402
from promwire import decode_write_request  # noqa: E402

TENANT = "x-scope-orgid"  # as the sinks record it (lower case)
EXPORTERS = ("otlp", "otlphttp")
T0 = 1_700_000_000_000_000_000

# ---------------------------------------------------------------- config


def tenant_header(**source) -> dict:
    """The Grafana tenant header, from the client's metadata unless `source` says otherwise."""
    return {"action": "upsert", "key": "X-Scope-OrgID", **(source or {"from_context": "x-scope-orgid"})}


def config(headers: list | None = None, *, include_metadata: bool = True, processors: dict | None = None,
           signals=("traces",), exporter_headers: dict | None = None) -> str:
    """otlp in (gRPC and HTTP) -> processors -> `otlp/tempo` and `otlphttp/tempo`, both
    authenticated by `headers_setter` with `headers` (no extension when None)."""
    listen = {"endpoint": "127.0.0.1:4317", **({"include_metadata": True} if include_metadata else {})}
    own = {"headers": exporter_headers} if exporter_headers else {}
    if headers is not None:
        own["auth"] = {"authenticator": "headers_setter"}
    doc = {
        "receivers": {"otlp": {"protocols": {"grpc": dict(listen), "http": dict(listen)}}},
        "processors": processors or {},
        "exporters": {
            "otlp/tempo": {"endpoint": "127.0.0.1:1", "tls": {"insecure": True}, **own},
            "otlphttp/tempo": {"endpoint": "http://127.0.0.1:1", "compression": "none", **own},
        },
        "service": {
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {s: {"receivers": ["otlp"], "processors": list(processors or {}),
                              "exporters": ["otlp/tempo", "otlphttp/tempo"]} for s in signals},
        },
    }
    if headers is not None:
        doc = {"extensions": {"headers_setter": {"headers": headers}}, **doc}
        doc["service"]["extensions"] = ["headers_setter"]
    return yaml.safe_dump(doc, sort_keys=False)


BATCH = {"batch": {"timeout": "100ms"}}
BATCH_BY_TENANT = {"batch": {"timeout": "100ms", "metadata_keys": ["X-Scope-OrgID"]}}

# ---------------------------------------------------------------- traffic


def body(signal: str, names: list) -> bytes:
    """A request of `signal` with one item per name: spans named so, log records with that
    body, gauge points of metrics named so."""
    if signal == "traces":
        return traffic.request(({"service.name": "tenants"}, [traffic.span(name=n) for n in names])
                               ).SerializeToString()
    if signal == "logs":
        records = [logs_pb2.LogRecord(time_unix_nano=T0, body=common_pb2.AnyValue(string_value=n)) for n in names]
        return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
            scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]).SerializeToString()
    metrics = [metrics_pb2.Metric(name=n, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=1)])) for n in names]
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)])]).SerializeToString()


def items(signal: str, request, attribute: str = "") -> list:
    if signal == "traces":
        spans = [sp for rs in request.resource_spans for ss in rs.scope_spans for sp in ss.spans]
        if attribute:
            return [(sp.name, next((a.value.string_value for a in sp.attributes if a.key == attribute), None))
                    for sp in spans]
        return [sp.name for sp in spans]
    if signal == "logs":
        return [r.body.string_value for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    return [m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            for _ in m.gauge.data_points]


def http_post(c: Collector, path: str, data: bytes, headers: list) -> Answer:
    """POST with `headers` as (name, value) pairs: a name may come twice."""
    conn = http.client.HTTPConnection("127.0.0.1", c.ports["http"], timeout=15)
    try:
        conn.putrequest("POST", path)
        for k, v in [("Content-Type", "application/x-protobuf"), ("Content-Length", str(len(data))), *headers]:
            conn.putheader(k, v)
        conn.endheaders(data)
        r = conn.getresponse()
        return Answer(str(r.status), r.read(), (r.getheader("Content-Type") or "").split(";")[0])
    finally:
        conn.close()


def send(pair: Pair, protocol: str, signal: str, names: list, tenants: tuple) -> dict:
    """Send one request of `signal` with `names` to both collectors, with the tenant header
    once per value of `tenants` (none when empty). Returns each one's status."""
    data = body(signal, names)
    if protocol == "grpc":
        md = tuple((TENANT, t) for t in tenants)
        answers = pair.grpc_export(data, method=SIGNAL[signal].method, metadata=md)
    else:
        # Mixed case on the wire: header names are case-insensitive.
        answers = pair.each(lambda c: http_post(c, SIGNAL[signal].path, data,
                                                [("X-Scope-OrgID", t) for t in tenants]))
    return {side: a.status for side, a in answers.items()}


# ---------------------------------------------------------------- what the sinks got


def tenant_values(metadata) -> tuple:
    return tuple(v for k, v in metadata if k == TENANT)


def received(pair: Pair, side: str, signal: str, key=tenant_values, attribute: str = "") -> dict:
    """{exporter: {key(headers of a request): sorted items of all such requests}}, where
    `key` picks from the request's (lower-case name, value) pairs in the order they came; an
    item is a name, or with `attribute` (spans only) (name, the span's value of it or None)."""
    out: dict = {}
    per = (("otlp", [(r.metadata, r.request) for r in pair.sinks[side].received_of(signal)]),
           ("otlphttp", [(p.header_list, p.request) for p in pair.http_sinks[side].posted_of(signal)]))
    for exporter, requests in per:
        got = defaultdict(list)
        for metadata, request in requests:
            got[key(metadata)].extend(items(signal, request, attribute))
        out[exporter] = {k: sorted(v, key=repr) for k, v in got.items()}
    return out


def count(seen: dict) -> int:
    return sum(len(v) for per in seen.values() for v in per.values())


def wait_received(pair: Pair, expected: dict, signal: str = "traces", timeout: float = 20, **kw) -> dict:
    """Until each side's sinks hold as many items as `expected` (or the timeout: the
    comparison then shows what is missing), then half a second more for anything extra.
    Returns {side: received(...)}."""
    want = count(expected)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(count(received(pair, s, signal, **kw)) >= want for s in SIDES):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return {s: received(pair, s, signal, **kw) for s in SIDES}


def both(expected) -> dict:
    return {side: expected for side in SIDES}


def on_both_exporters(per_key: dict) -> dict:
    return {e: per_key for e in EXPORTERS}


def ok(protocol: str) -> str:
    return "OK" if protocol == "grpc" else "200"


PROTOCOLS = pytest.mark.parametrize("protocol", ["grpc", "http"])

# Three clients: two tenants and one that sends no tenant header.
CLIENTS = (("acme", ("a1", "a2")), ("globex", ("g1",)), (None, ("n1", "n2")))


def send_clients(pair: Pair, protocol: str, signal: str = "traces") -> None:
    for tenant, names in CLIENTS:
        status = send(pair, protocol, signal, list(names), (tenant,) if tenant else ())
        assert status == both(ok(protocol)), (tenant, status)


PER_TENANT = {("acme",): ["a1", "a2"], ("globex",): ["g1"], ("anon",): ["n1", "n2"]}
ALL_ANON = {("anon",): ["a1", "a2", "g1", "n1", "n2"]}
WITH_DEFAULT = [tenant_header(from_context="x-scope-orgid", default_value="anon")]

# ---------------------------------------------------------------- tests


@PROTOCOLS
@pytest.mark.parametrize("headers, include_metadata, processors, expected", [
    (WITH_DEFAULT, True, None, PER_TENANT),
    ([tenant_header(from_context="X-Scope-OrgID", default_value="anon")], True, None, PER_TENANT),
    (WITH_DEFAULT, False, None, ALL_ANON),
    ([tenant_header()], False, None, {("",): ["a1", "a2", "g1", "n1", "n2"]}),
    (WITH_DEFAULT, True, BATCH, ALL_ANON),
    (WITH_DEFAULT, True, BATCH_BY_TENANT, PER_TENANT),
    ([tenant_header(value="static-tenant")], True, None, {("static-tenant",): ["a1", "a2", "g1", "n1", "n2"]}),
], ids=["include_metadata", "from_context in another case", "without include_metadata",
        "no default_value: an empty header", "batch drops the metadata", "batch keeps metadata_keys",
        "static value"])
def test_the_tenant_header_of_each_exported_request(pair_factory, protocol, headers, include_metadata,
                                                    processors, expected):
    pair = pair_factory(config(headers, include_metadata=include_metadata, processors=processors))
    send_clients(pair, protocol)
    expected = on_both_exporters(expected)
    assert wait_received(pair, expected) == both(expected)


@PROTOCOLS
@pytest.mark.parametrize("processors", [None, BATCH_BY_TENANT], ids=["no batch", "batch by tenant"])
def test_two_tenant_values_fail_the_export(pair_factory, protocol, processors):
    """headers_setter refuses a key with two values ("2 source keys found in the context"):
    that request is sent by neither exporter (otlp drops it at once, otlphttp retries until
    shutdown); its client was answered OK before the export. The other tenants go through."""
    pair = pair_factory(config(WITH_DEFAULT, processors=processors))
    assert send(pair, protocol, "traces", ["both"], ("acme", "globex")) == both(ok(protocol))
    send_clients(pair, protocol)
    expected = on_both_exporters(PER_TENANT)
    assert wait_received(pair, expected) == both(expected)


@PROTOCOLS
def test_metadata_cardinality_limit_refuses_a_third_tenant(pair_factory, protocol):
    """A new tenant beyond `metadata_cardinality_limit` is refused with a permanent error
    (gRPC INTERNAL, HTTP 500: the receiver's code for a permanent error without a status),
    the tenants already seen keep going through; no tenant header at all is a value too."""
    processors = {"batch": {**BATCH_BY_TENANT["batch"], "metadata_cardinality_limit": 2}}
    pair = pair_factory(config(WITH_DEFAULT, processors=processors))
    sent = [("acme", "a1"), ("globex", "g1"), ("initech", "i1"), ("acme", "a2"), ("globex", "g2"), (None, "n1")]
    statuses = [send(pair, protocol, "traces", [name], (t,) if t else ()) for t, name in sent]
    refused = "INTERNAL" if protocol == "grpc" else "500"
    assert statuses == [both(s) for s in (ok(protocol), ok(protocol), refused, ok(protocol), ok(protocol),
                                          refused)]
    expected = on_both_exporters({("acme",): ["a1", "a2"], ("globex",): ["g1", "g2"]})
    assert wait_received(pair, expected) == both(expected)


def existing_and_absent(metadata) -> tuple:
    return tuple((name, tuple(v for k, v in metadata if k == name)) for name in ("x-existing", "x-absent"))


@pytest.mark.parametrize("action, expected", [
    ("insert", {"otlp": (("x-existing", ("set", "orig")), ("x-absent", ("set",))),
                "otlphttp": (("x-existing", ("orig",)), ("x-absent", ("set",)))}),
    ("update", {"otlp": (("x-existing", ("orig",)), ("x-absent", ())),
                "otlphttp": (("x-existing", ("set",)), ("x-absent", ()))}),
    ("upsert", {"otlp": (("x-existing", ("set", "orig")), ("x-absent", ("set",))),
                "otlphttp": (("x-existing", ("set",)), ("x-absent", ("set",)))}),
    ("delete", {"otlp": (("x-existing", ("orig",)), ("x-absent", ())),
                "otlphttp": (("x-existing", ()), ("x-absent", ()))}),
])
def test_actions_on_the_exporters_own_headers(pair_factory, action, expected):
    """Each action on a header the exporter's own `headers` sets (X-Existing: orig) and on one
    it does not. otlphttp applies them to the request's headers, its own already in; otlp
    starts from no header at all (its own `headers` travel separately, after the
    extension's), so there `update`/`delete` find nothing and `insert`/`upsert` add a value.

    `delete` is given a `value` too: otelcol's extension (v0.158.0) validates a `delete`
    without a source but then dereferences the missing source on the first export and the
    whole collector dies (SIGSEGV); that crash is not something to compare."""
    headers = [{"action": action, "key": key, "value": "set"} for key in ("X-Existing", "X-Absent")]
    pair = pair_factory(config(headers, exporter_headers={"X-Existing": "orig"}))
    assert send(pair, "grpc", "traces", ["s1"], ("acme",)) == both("OK")
    expected = {e: {expected[e]: ["s1"]} for e in EXPORTERS}
    assert wait_received(pair, expected, key=existing_and_absent) == both(expected)


@PROTOCOLS
def test_all_three_signals_carry_the_tenant(pair_factory, protocol):
    signals = ("traces", "metrics", "logs")
    pair = pair_factory(config(WITH_DEFAULT, processors=BATCH_BY_TENANT, signals=signals))
    for signal in signals:
        send_clients(pair, protocol, signal)
    expected = on_both_exporters(PER_TENANT)
    assert {s: wait_received(pair, expected, s) for s in signals} == {s: both(expected) for s in signals}


@PROTOCOLS
@pytest.mark.parametrize("include_metadata, expected", [
    (True, [("a1", "acme"), ("d1", "acme;globex"), ("n1", None)]),
    (False, [("a1", None), ("d1", None), ("n1", None)]),
], ids=["include_metadata", "without include_metadata"])
def test_attributes_from_context(pair_factory, protocol, include_metadata, expected):
    """`from_context: metadata.x-scope-orgid` inserts the client's header value, several
    values joined with ";"; without include_metadata there is nothing to insert."""
    processors = {"attributes/tenant": {"actions": [
        {"key": "tenant", "from_context": "metadata.x-scope-orgid", "action": "insert"}]}}
    pair = pair_factory(config(None, include_metadata=include_metadata, processors=processors))
    for name, tenants in (("a1", ("acme",)), ("d1", ("acme", "globex")), ("n1", ())):
        assert send(pair, protocol, "traces", [name], tenants) == both(ok(protocol))
    expected = on_both_exporters({(): expected})
    assert wait_received(pair, expected, key=lambda md: (), attribute="tenant") == both(expected)



# ---------------------------------------------------------------- prometheusremotewrite (Mimir)


def prw_config(processors: dict | None) -> str:
    """otlp in (include_metadata) -> processors -> `prometheusremotewrite/mimir`,
    authenticated by `headers_setter` (the tenant header, `anon` without one)."""
    listen = {"endpoint": "127.0.0.1:4317", "include_metadata": True}
    return yaml.safe_dump({
        "extensions": {"headers_setter": {"headers": WITH_DEFAULT}},
        "receivers": {"otlp": {"protocols": {"grpc": dict(listen), "http": dict(listen)}}},
        "processors": processors or {},
        "exporters": {"prometheusremotewrite/mimir": {"endpoint": "http://127.0.0.1:1/api/v1/push",
                                                      "auth": {"authenticator": "headers_setter"}}},
        "service": {
            "extensions": ["headers_setter"],
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"metrics": {"receivers": ["otlp"], "processors": list(processors or {}),
                                      "exporters": ["prometheusremotewrite/mimir"]}},
        },
    }, sort_keys=False)


def prw_body(instance: str, depth: int, total: float) -> bytes:
    """One client's metrics: a gauge `queue_depth` and a cumulative monotonic sum `requests`,
    under a resource with `instance` as service.instance.id and a host.name (so that each
    client's resource has a target_info of its own)."""
    resource = resource_pb2.Resource(attributes=[traffic.kv(k, v) for k, v in (
        ("service.name", "shop"), ("service.instance.id", instance), ("host.name", "h1"))])
    gauge = metrics_pb2.Metric(name="queue_depth", gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=depth)]))
    counter = metrics_pb2.Metric(name="requests", sum=metrics_pb2.Sum(
        aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE, is_monotonic=True,
        data_points=[metrics_pb2.NumberDataPoint(start_time_unix_nano=T0 - 10**9, time_unix_nano=T0,
                                                 as_double=total)]))
    return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
        resource=resource, scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[gauge, counter])])]).SerializeToString()


# (tenant header or None, service.instance.id, queue_depth, requests)
PRW_CLIENTS = (("acme", "a", 3, 10.0), ("globex", "g", 7, 20.0), (None, "n", 1, 5.0))


def prw_series(instance: str, depth: int, total: float) -> list:
    """What one client's metrics are as remote-write series: (name, labels, value)."""
    ident = (("instance", instance), ("job", "shop"))
    return sorted([("queue_depth", ident, float(depth)), ("requests_total", ident, total),
                   ("target_info", (("host_name", "h1"), *ident), 1.0)], key=repr)


def prw_received(pair: Pair, side: str) -> dict:
    """{tenant header values of a remote-write request: sorted (name, labels, value) of every
    sample of all such requests}."""
    got = defaultdict(list)
    for headers, data in list(pair.remote_write[side].requests):
        samples, _ = decode_write_request(data)
        got[tenant_values(headers)].extend((name, labels, value) for (name, labels, _ts, value), n
                                           in samples.items() for _ in range(n))
    return {k: sorted(v, key=repr) for k, v in got.items()}


def wait_prw(pair: Pair, expected: dict, timeout: float = 20) -> dict:
    want = sum(len(v) for v in expected.values())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(sum(len(v) for v in prw_received(pair, s).values()) >= want for s in SIDES):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return {s: prw_received(pair, s) for s in SIDES}


PRW_PER_TENANT = {("acme",): prw_series("a", 3, 10.0), ("globex",): prw_series("g", 7, 20.0),
                  ("anon",): prw_series("n", 1, 5.0)}
PRW_ALL_ANON = {("anon",): sorted(sum(PRW_PER_TENANT.values(), []), key=repr)}


@PROTOCOLS
@pytest.mark.parametrize("processors, expected", [
    (None, PRW_PER_TENANT),
    (BATCH_BY_TENANT, PRW_PER_TENANT),
    (BATCH, PRW_ALL_ANON),
], ids=["no batch", "batch keeps metadata_keys", "batch drops the metadata"])
def test_remote_write_tenant_header(pair_factory, protocol, processors, expected):
    """Mimir multi-tenancy over remote write: each tenant's series arrive under its
    X-Scope-OrgID. The exporter may send the tenants' requests at once (its queue has
    several consumers), so only which series came under which value is compared."""
    pair = pair_factory(prw_config(processors))
    for tenant, instance, depth, total in PRW_CLIENTS:
        data = prw_body(instance, depth, total)
        if protocol == "grpc":
            answers = pair.grpc_export(data, method=SIGNAL["metrics"].method,
                                       metadata=((TENANT, tenant),) if tenant else ())
        else:
            answers = pair.each(lambda c: http_post(c, SIGNAL["metrics"].path, data,
                                                    [("X-Scope-OrgID", tenant)] if tenant else []))
        assert {side: a.status for side, a in answers.items()} == both(ok(protocol)), tenant
    assert wait_prw(pair, expected) == both(expected)


# ---------------------------------------------------------------- the persistent queue


def queue_config(directory: Path, processors: dict | None, consumers: int | None) -> str:
    """otlp in (include_metadata) -> processors -> `otlphttp/tempo` with its sending queue
    on disk (`file_storage`) and `consumers` (otelcol's default of 10 when None), authenticated
    by `headers_setter` (`anon` without a tenant)."""
    listen = {"endpoint": "127.0.0.1:4317", "include_metadata": True}
    queue = {"storage": "file_storage", **({"num_consumers": consumers} if consumers else {})}
    return yaml.safe_dump({
        "extensions": {"headers_setter": {"headers": WITH_DEFAULT}, "file_storage": {"directory": str(directory)}},
        "receivers": {"otlp": {"protocols": {"grpc": dict(listen), "http": dict(listen)}}},
        "processors": processors or {},
        "exporters": {"otlphttp/tempo": {"endpoint": "http://127.0.0.1:1", "compression": "none",
                                         "auth": {"authenticator": "headers_setter"}, "sending_queue": queue}},
        "service": {
            "extensions": ["headers_setter", "file_storage"],
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": list(processors or {}),
                                     "exporters": ["otlphttp/tempo"]}},
        },
    }, sort_keys=False)


def attempted(pair: Pair, side: str) -> dict:
    """{tenant header values: sorted names of the spans} of every POST the sink got, each span
    once however often it was tried."""
    got = defaultdict(set)
    for p in pair.http_sinks[side].posted_of("traces"):
        got[tenant_values(p.header_list)].update(items("traces", p.request))
    return {k: sorted(v) for k, v in got.items()}


@PROTOCOLS
@pytest.mark.parametrize("processors", [None, BATCH_BY_TENANT], ids=["no batch", "batch by tenant"])
@pytest.mark.parametrize("consumers", [None, 1], ids=["all in flight", "two wait in the queue"])
def test_the_queue_on_disk_keeps_the_tenant_across_a_restart(pair_factory, tmp_path, protocol, processors,
                                                             consumers):
    """Tempo answers 503 while the three clients' spans are sent: each collector tries them,
    with their tenant header, and keeps them in its queue on disk (with 10 consumers all three
    requests are tried and wait for their retry; with 1, one is and the other two wait in the
    queue). Both are stopped (SIGTERM) and started again on the same config, Tempo now
    answering 200: the queue sends every request again with its own tenant, as it was
    received (otelcol: "Moved items for dispatching back to queue")."""
    pair = pair_factory(queue_config(tmp_path / "queue", processors, consumers))
    for sink in pair.http_sinks.values():
        sink.status = 503
    send_clients(pair, protocol)
    names = sorted(n for _, ns in CLIENTS for n in ns)

    def tried(side: str) -> list:
        return sorted(sum(attempted(pair, side).values(), []))

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(tried(s) == names if consumers is None else tried(s)
                                                  for s in SIDES):
        time.sleep(0.1)
    if consumers is None:
        assert {s: attempted(pair, s) for s in SIDES} == both(PER_TENANT)
    else:
        time.sleep(0.5)  # nothing more is tried before the first request's retry, 5 s on
        assert {s: [PER_TENANT.get(k) == v for k, v in attempted(pair, s).items()] for s in SIDES} == both([True])
    for side in SIDES:
        pair.c[side].stop()
        pair.http_sinks[side].clear()
        pair.http_sinks[side].status = 200
        pair.c[side].start_again()
    expected = {"otlp": {}, "otlphttp": PER_TENANT}
    assert wait_received(pair, expected) == both(expected)
