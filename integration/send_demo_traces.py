"""Send a realistic burst of traces to an OTLP/gRPC endpoint with the OpenTelemetry Python SDK.

Three services of a small CDN: makiatto-edge (http.server), makiatto-cdn (http.server ->
cdn.file.read with cdn.cache.hit) and makiatto-wasm (http.server -> wasm.invoke), with
log-normal-ish latencies and a few percent errors. Seeded, so every run sends the same shape.

    python integration/send_demo_traces.py --endpoint 127.0.0.1:4317 --traces 300
Prints the number of spans sent per service on stdout (last line: "sent N spans").
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

MS = 1_000_000


def provider_for(service: str, host: str, endpoint: str) -> TracerProvider:
    res = Resource.create({"service.name": service, "host.name": host, "deployment.environment": "demo"})
    p = TracerProvider(resource=res)
    p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10),
                                            schedule_delay_millis=200, max_export_batch_size=256))
    return p


def lat(rng: random.Random, median_ms: float, spread: float = 0.8) -> float:
    return max(0.05, rng.lognormvariate(0, spread) * median_ms)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default="127.0.0.1:4317")
    ap.add_argument("--traces", type=int, default=300, help="requests per service")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    sent: Counter = Counter()

    providers = {
        "makiatto-edge": provider_for("makiatto-edge", "edge-1", args.endpoint),
        "makiatto-cdn": provider_for("makiatto-cdn", "cdn-1", args.endpoint),
        "makiatto-wasm": provider_for("makiatto-wasm", "wasm-1", args.endpoint),
    }
    tracers = {s: p.get_tracer("redline.demo") for s, p in providers.items()}
    now = time.time_ns()

    for i in range(args.traces):
        t0 = now - (args.traces - i) * 20 * MS
        # edge: plain HTTP server spans, 2% errors
        tr = tracers["makiatto-edge"]
        d = lat(rng, 35)
        sp = tr.start_span("http.server", kind=SpanKind.SERVER, start_time=t0,
                           attributes={"http.request.method": "GET", "http.route": rng.choice(["/", "/assets/*", "/api/*"])})
        if rng.random() < 0.02:
            sp.set_status(Status(StatusCode.ERROR, "upstream timeout"))
            sp.set_attribute("http.response.status_code", 504)
        sp.end(end_time=t0 + int(d * MS))
        sent["makiatto-edge http.server"] += 1

        # cdn: HTTP server span with 1-3 file reads, ~85% cache hits
        tr = tracers["makiatto-cdn"]
        root = tr.start_span("http.server", kind=SpanKind.SERVER, start_time=t0,
                             attributes={"http.request.method": "GET", "http.route": "/files/*"})
        ctx = trace.set_span_in_context(root)
        t = t0 + MS
        for _ in range(rng.randint(1, 3)):
            hit = rng.random() < 0.85
            rd = lat(rng, 1.5 if hit else 60)
            c = tr.start_span("cdn.file.read", context=ctx, kind=SpanKind.INTERNAL, start_time=t,
                              attributes={"cdn.cache.hit": hit, "cdn.file.size": rng.randint(200, 2_000_000)})
            if not hit and rng.random() < 0.03:
                c.set_status(Status(StatusCode.ERROR, "origin fetch failed"))
            c.end(end_time=t + int(rd * MS))
            sent["makiatto-cdn cdn.file.read"] += 1
            t += int(rd * MS)
        root.end(end_time=t + MS)
        sent["makiatto-cdn http.server"] += 1

        # wasm: HTTP server span around one module invocation, 4% errors
        tr = tracers["makiatto-wasm"]
        root = tr.start_span("http.server", kind=SpanKind.SERVER, start_time=t0,
                             attributes={"http.request.method": "POST", "http.route": "/fn/*"})
        ctx = trace.set_span_in_context(root)
        wd = lat(rng, 120, 0.6)
        w = tr.start_span("wasm.invoke", context=ctx, kind=SpanKind.INTERNAL, start_time=t0 + MS,
                          attributes={"wasm.module": rng.choice(["resize", "thumbnail", "markdown"])})
        failed = rng.random() < 0.04
        if failed:
            w.set_status(Status(StatusCode.ERROR, "trap: out of fuel"))
            root.set_status(Status(StatusCode.ERROR, "function failed"))
        w.end(end_time=t0 + MS + int(wd * MS))
        root.end(end_time=t0 + 2 * MS + int(wd * MS))
        sent["makiatto-wasm wasm.invoke"] += 1
        sent["makiatto-wasm http.server"] += 1

    ok = True
    for p in providers.values():
        ok &= p.force_flush(timeout_millis=20000)
        p.shutdown()
    for k in sorted(sent):
        print(f"  {k:32s} {sent[k]:6d} spans")
    total = sum(sent.values())
    print(f"sent {total} spans")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
