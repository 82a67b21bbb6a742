"""A fixed, known set of spans sent with the real OpenTelemetry Python SDK.

Every provider exports over OTLP/gRPC (the SDK's own exporter) *and* to an InMemorySpanExporter,
so the test knows exactly what went over the wire and computes its expectations from that.
Durations are set explicitly through start_time/end_time.
"""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

MS = 1_000_000

S = SpanKind.SERVER
I = SpanKind.INTERNAL  # noqa: E741
C = SpanKind.CLIENT
OK, ERR, UNSET = StatusCode.OK, StatusCode.ERROR, StatusCode.UNSET

# (resource attributes, [(span name, kind, duration ms, status, attributes, children)])
# Durations hit bucket edges on purpose: exactly 2, 10 (le="10", upper-inclusive), 15000, and
# past the last bound (+Inf).
PLAN = [
    (
        {"service.name": "makiatto-edge", "host.name": "edge-1", "service.version": "1.4.2"},
        [
            ("http.server", S, 1, UNSET, {"http.request.method": "GET", "http.route": "/"}, []),
            ("http.server", S, 5, OK, {"http.request.method": "GET", "http.response.status_code": 200}, []),
            ("http.server", S, 10, UNSET, {"http.request.method": "GET", "url.path": "/index.html"}, []),
            ("http.server", S, 120, UNSET, {"http.request.method": "POST"}, []),
            ("http.server", S, 300, ERR, {"http.request.method": "GET", "http.response.status_code": 502}, []),
            ("http.server", S, 900, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 3000, ERR, {"http.request.method": "GET", "http.response.status_code": 504}, []),
            ("http.server", S, 2, UNSET, {"tags": ["a", "b"], "ratio": 0.25, "retries": 3, "cached": False}, []),
        ],
    ),
    (
        # Same service, another host: same label sets must add into the same series.
        {"service.name": "makiatto-edge", "host.name": "edge-2", "service.version": "1.4.2"},
        [
            ("http.server", S, 10, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 45, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 15000, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 20000, ERR, {"http.request.method": "GET"}, []),
            ("http.server", S, 3, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 7, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 30, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 75, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 150, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 11, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 60, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 4, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 8, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 6, UNSET, {"http.request.method": "GET"}, []),
        ],
    ),
    (
        {"service.name": "makiatto-cdn", "host.name": "cdn-1"},
        [
            (
                "http.server", S, 250, UNSET, {"http.request.method": "GET"},
                [
                    ("cdn.file.read", I, 3, UNSET, {"cdn.cache.hit": True, "cdn.file.path": "/a.css"}),
                    ("cdn.file.read", I, 7, UNSET, {"cdn.cache.hit": True, "cdn.file.path": "/b.js"}),
                    ("cdn.file.read", I, 80, UNSET, {"cdn.cache.hit": False, "cdn.file.path": "/c.png"}),
                ],
            ),
            (
                "http.server", S, 60, OK, {"http.request.method": "GET"},
                [
                    ("cdn.file.read", I, 1, UNSET, {"cdn.cache.hit": True}),
                    ("cdn.file.read", I, 2, UNSET, {"cdn.cache.hit": True}),
                    ("cdn.file.read", I, 150, ERR, {"cdn.cache.hit": False}),
                    ("cdn.file.read", I, 9, UNSET, {}),  # no cdn.cache.hit: label left off
                ],
            ),
            ("cdn.file.read", I, 4, UNSET, {"cdn.cache.hit": True}, []),
            ("cdn.file.read", I, 400, UNSET, {}, []),
        ],
    ),
    (
        {"service.name": "makiatto-wasm", "host.name": "wasm-1", "process.pid": 4242},
        [
            (
                "http.server", S, 40, UNSET, {"http.request.method": "POST"},
                [
                    ("wasm.invoke", I, 12, UNSET, {"wasm.module": "resize"}),
                    ("wasm.invoke", I, 25, UNSET, {"wasm.module": "resize"}),
                ],
            ),
            ("wasm.invoke", I, 0.5, UNSET, {"wasm.module": "thumb"}, []),
            ("wasm.invoke", I, 95, UNSET, {"wasm.module": "thumb"}, []),
            ("wasm.invoke", I, 180, ERR, {"wasm.module": "thumb"}, []),
            ("wasm.invoke", I, 700, UNSET, {"wasm.module": "transcode"}, []),
            ("wasm.invoke", I, -3, UNSET, {"wasm.module": "clock-skew"}, []),  # negative: counts as 0
            ("wasm.invoke", C, 33, OK, {"wasm.module": "fetch"}, []),
        ],
    ),
    (
        # No service.name at all: forwarded to Tempo, not counted.
        {"host.name": "mystery-host", "telemetry.sdk.language": "python"},
        [
            ("http.server", S, 10, UNSET, {"http.request.method": "GET"}, []),
            ("http.server", S, 500, ERR, {"http.request.method": "GET"}, []),
        ],
    ),
]


def record(plan, add_exporters) -> list:
    """Record `plan` with the SDK, one TracerProvider per resource; `add_exporters(provider)`
    adds the span processors that export. Returns the ReadableSpans the SDK finished."""
    now = time.time_ns()
    end_base = now - 50 * MS
    all_spans = []
    for i, (res_attrs, roots) in enumerate(plan):
        # Resource(...) directly (not Resource.create) so a resource without service.name
        # really has none (the SDK's default would add unknown_service).
        provider = TracerProvider(resource=Resource(res_attrs))
        mem = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(mem))
        add_exporters(provider)
        tracer = provider.get_tracer("redline.integration", "1.0.0")
        prev = None
        for j, (name, kind, dur, status, attrs, children) in enumerate(roots):
            end = end_base - (i * 100 + j) * MS
            start = end - int(dur * MS)
            links = [Link(prev.get_span_context(), {"link.kind": "previous"})] if prev is not None else []
            span = tracer.start_span(name, kind=kind, start_time=start, attributes=attrs, links=links)
            span.add_event("request.received", {"bytes": 512 + j}, timestamp=start)
            for k, (cname, ckind, cdur, cstatus, cattrs) in enumerate(children):
                ctx = trace.set_span_in_context(span)
                cstart = start + k * MS
                child = tracer.start_span(cname, context=ctx, kind=ckind, start_time=cstart, attributes=cattrs)
                if cstatus != UNSET:
                    child.set_status(Status(cstatus, "failed" if cstatus == ERR else None))
                child.end(end_time=cstart + int(cdur * MS))
            if status != UNSET:
                span.set_status(Status(status, "upstream error" if status == ERR else None))
            span.end(end_time=end)
            prev = span
        if not provider.force_flush(timeout_millis=15000):
            raise RuntimeError(f"SDK flush timed out for resource {res_attrs}")
        provider.shutdown()
        all_spans.extend(mem.get_finished_spans())
    return all_spans


def send(endpoint: str = "127.0.0.1:4317", batch: bool = True, plan=PLAN) -> list:
    """Send the plan to an OTLP/gRPC endpoint. Returns the ReadableSpans the SDK exported."""

    def exporters(provider):
        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=100, max_export_batch_size=6)
            if batch
            else SimpleSpanProcessor(exporter)
        )

    return record(plan, exporters)


def _span_key_and_bytes(rs, ss, sp):
    return (sp.trace_id.hex(), sp.span_id.hex()), (
        sp.SerializeToString(), rs.resource.SerializeToString(), rs.schema_url,
        ss.scope.SerializeToString(), ss.schema_url,
    )


def compare_forwarded(spans, received) -> list:
    """Problems (empty = none) between the SDK's own encoding of `spans` (encode_spans, what its
    OTLP exporter put on the wire) and `received`: (resource_spans, scope_spans, span) triples
    as an OtlpSink records them. Exactly once each, byte for byte, same resource and scope."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    want = {}
    for rs in encode_spans(spans).resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                k, v = _span_key_and_bytes(rs, ss, sp)
                want[k] = v
    got, problems = {}, []
    for rs, ss, sp in received:
        k, v = _span_key_and_bytes(rs, ss, sp)
        if k in got:
            problems.append(f"span {k} received more than once")
        got[k] = v
    problems += [f"span {k} sent but not received" for k in sorted(set(want) - set(got))]
    problems += [f"span {k} received but never sent" for k in sorted(set(got) - set(want))]
    what = ("span bytes", "resource", "resource schema_url", "scope", "scope schema_url")
    problems += [f"span {k}: {what[i]} differs" for k in want if k in got for i in range(5) if want[k][i] != got[k][i]]
    return problems
