"""Starting a Redline on free ports with a config template, and reading what it serves.

Shared by the reliability tests (test_hostile_input, test_cardinality, test_restart).
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Optional

import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TEXT_ACCEPT = {"Accept": "text/plain;version=0.0.4"}


class Redline:
    """One Redline process and its ports (grpc, http, prom) on 127.0.0.1."""

    def __init__(self, procs, redline_bin: Path, workdir: Path, template: str, name: str = "redline",
                 ports: Optional[dict] = None, **extra):
        self.procs, self.bin, self.workdir, self.name = procs, redline_bin, workdir, name
        self.ports = ports or {"grpc": helpers.free_port(), "http": helpers.free_port(), "prom": helpers.free_port()}
        self.grpc, self.http, self.prom = self.ports["grpc"], self.ports["http"], self.ports["prom"]
        self.cfg = workdir / f"{name}.yaml"
        self.cfg.write_text(template.format(**self.ports, **extra))
        self.metrics_url = f"http://127.0.0.1:{self.prom}/metrics"
        self.http_url = f"http://127.0.0.1:{self.http}/v1/traces"
        self.proc = None
        self.starts = 0

    def start(self) -> "Redline":
        self.starts += 1
        self.proc = self.procs.start(f"{self.name}-{self.starts}",
                                     [self.bin, "--config", self.cfg, "--log-format", "json"])

        def ready():
            return (requests.get(self.metrics_url, timeout=1).status_code == 200
                    and helpers.port_accepts(self.grpc) and helpers.port_accepts(self.http))

        helpers.wait_until(ready, 30, f"{self.name} to listen on grpc, http and /metrics", alive=self.proc)
        return self

    def stop(self) -> int:
        code = self.proc.stop(timeout=15)
        assert code == 0 and not self.proc.killed, f"{self.name} did not stop cleanly (exit {code})\n{self.proc.log_text()}"
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def samples(self, name: Optional[str] = None) -> list:
        text = requests.get(self.metrics_url, headers=TEXT_ACCEPT, timeout=30).text
        return [s for s in helpers.parse_text_metrics(text) if name is None or s[0] == name]

    def series(self, name: str) -> dict:
        return {helpers.label_key(lb): v for _, lb, v in self.samples(name)}

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc/PID/status (VmRSS, in KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def span(name: str = "op", attrs: Optional[dict] = None, status=trace_pb2.Status.STATUS_CODE_UNSET,
         duration_ns: int = 5_000_000) -> trace_pb2.Span:
    now = time.time_ns()
    return trace_pb2.Span(
        trace_id=os.urandom(16), span_id=os.urandom(8), name=name, kind=trace_pb2.Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now - duration_ns, end_time_unix_nano=now,
        attributes=[common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v))
                    for k, v in (attrs or {}).items()],
        status=trace_pb2.Status(code=status),
    )


def request(service: str, spans: list) -> trace_service_pb2.ExportTraceServiceRequest:
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[common_pb2.KeyValue(
            key="service.name", value=common_pb2.AnyValue(string_value=service))]),
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="redline-it"), spans=spans)],
    )])


# ---------------------------------------------------------------- hand-made protobuf


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_array_value(depth: int) -> bytes:
    """An AnyValue that is `depth` arrays inside each other around int 1."""
    v = varint(3 << 3) + varint(1)  # AnyValue.int_value = 1
    for _ in range(depth):
        v = field_bytes(5, field_bytes(1, v))  # AnyValue.array_value { values: v }
    return v


def with_span_attribute(service: str, name: str, key: str, any_value: bytes) -> bytes:
    """An encoded request of one valid span carrying the raw attribute `key` = `any_value`:
    python-protobuf refuses to build messages this deep, so the attribute is appended by hand
    (fields may come in any order)."""
    sp = span(name).SerializeToString() + field_bytes(9, field_bytes(1, key.encode()) + field_bytes(2, any_value))
    res = resource_pb2.Resource(attributes=[common_pb2.KeyValue(
        key="service.name", value=common_pb2.AnyValue(string_value=service))]).SerializeToString()
    return field_bytes(1, field_bytes(1, res) + field_bytes(2, field_bytes(2, sp)))


def fixed64(number: int, value: int) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def encode_span(seq: int, name: str, attrs: Optional[dict] = None, error: bool = False,
                duration_ns: int = 3_000_000, start_ns: int = 1_700_000_000_000_000_000) -> bytes:
    """One encoded Span, built by hand (python-protobuf objects are too slow for floods):
    ids derived from `seq` (valid: right length, not zero), kind SERVER, status ERROR or UNSET."""
    ids = struct.pack(">Q", seq + 1)
    out = [field_bytes(1, ids * 2), field_bytes(2, ids), field_bytes(5, name.encode()),
           varint(6 << 3) + varint(2), fixed64(7, start_ns), fixed64(8, start_ns + duration_ns)]
    for k, v in (attrs or {}).items():
        kv = field_bytes(1, k.encode()) + field_bytes(2, field_bytes(1, v.encode()))
        out.append(field_bytes(9, kv))
    if error:
        out.append(field_bytes(15, varint(3 << 3) + varint(2)))
    return b"".join(out)


def encode_request(service: str, spans: list) -> bytes:
    """An ExportTraceServiceRequest of one resource (service.name) and one scope around
    already encoded spans."""
    res = field_bytes(1, field_bytes(1, b"service.name") + field_bytes(2, field_bytes(1, service.encode())))
    scope = b"".join(field_bytes(2, s) for s in spans)
    return field_bytes(1, field_bytes(1, res) + field_bytes(2, scope))
