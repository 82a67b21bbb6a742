"""Starting a Redline on free ports with a config template, and reading what it serves.

Shared by the tests that run the binary with a config of their own (redline_config.py);
the protobuf builders below make requests by hand, hostile ones included.
"""

from __future__ import annotations

import os
import string
import struct
import time
from pathlib import Path
from typing import Optional

import grpc
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TEXT_ACCEPT = {"Accept": "text/plain;version=0.0.4"}


class Redline:
    """One Redline process on 127.0.0.1, its config written from `template`.

    Every placeholder of the template not given in `values` is a port, kept in .ports under
    its name (grpc, http, prom = /metrics, telemetry, ...): the one in `ports` if chosen
    beforehand, else a free one. start() waits until every listener it knows of answers
    (OTLP gRPC and HTTP, /metrics, self-telemetry); after stop() it can start again on the
    same ports and config. `args` follow `--config` on the command line, `env` is added to
    the environment."""

    def __init__(self, procs, redline_bin: Path, workdir: Path, template: str, name: str = "redline",
                 args: tuple = ("--log-format", "json"), env: Optional[dict] = None,
                 ports: Optional[dict] = None, **values):
        self.procs, self.bin, self.workdir, self.name = procs, redline_bin, workdir, name
        self.args, self.env = list(args), env
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
        self.ports = {f: (ports or {}).get(f) or helpers.free_port() for f in sorted(fields - set(values))}
        self.grpc, self.http, self.prom = (self.ports.get(k) for k in ("grpc", "http", "prom"))
        self.cfg = workdir / f"{name}.yaml"
        self.cfg.write_text(template.format(**self.ports, **values))
        self.metrics_url = self._url("prom", "/metrics")
        self.telemetry_url = self._url("telemetry", "/metrics")
        self.http_url = self._url("http", "/v1/traces")
        self.proc = None
        self.starts = 0

    def _url(self, port: str, path: str) -> Optional[str]:
        return f"http://127.0.0.1:{self.ports[port]}{path}" if port in self.ports else None

    def _ready(self) -> bool:
        return (all(helpers.port_accepts(p) for p in (self.grpc, self.http) if p)
                and all(requests.get(u, timeout=1).status_code == 200
                        for u in (self.metrics_url, self.telemetry_url) if u))

    def start(self) -> "Redline":
        self.starts += 1
        self.proc = self.procs.start(f"{self.name}-{self.starts}", [self.bin, "--config", self.cfg, *self.args],
                                     env=self.env)
        listeners = [k for k in ("grpc", "http", "prom", "telemetry") if k in self.ports]
        helpers.wait_until(self._ready, 30, f"{self.name} to listen on {', '.join(listeners)}", alive=self.proc)
        return self

    def stop(self, timeout: float = 15) -> int:
        code = self.proc.stop(timeout=timeout)
        assert code == 0 and not self.proc.killed, \
            f"{self.name} did not stop cleanly (exit {code})\n{self.proc.log_text()}"
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def grpc_channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.grpc}")

    def samples(self, name: Optional[str] = None) -> list:
        r = requests.get(self.metrics_url, headers=TEXT_ACCEPT, timeout=30)
        assert r.status_code == 200, f"/metrics answered {r.status_code}"
        return [s for s in helpers.parse_text_metrics(r.text) if name is None or s[0] == name]

    def series(self, name: str) -> dict:
        return {helpers.label_key(lb): v for _, lb, v in self.samples(name)}

    def self_telemetry(self) -> "SelfTelemetry":
        r = requests.get(self.telemetry_url, timeout=5)
        assert r.status_code == 200, f"self-telemetry answered {r.status_code}"
        return SelfTelemetry({(n, frozenset(lb.items())): v for n, lb, v in helpers.parse_text_metrics(r.text)})

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)


class SelfTelemetry(dict):
    """Redline's own metrics (service.telemetry.metrics): {(name, frozenset(labels)): value}."""

    def value(self, name: str, **labels) -> float:
        """The series `name` with `labels` (an exporter's counters also carry where it sends:
        `server_address`, ... as in otelcol, which a test need not name)."""
        matching = [v for (n, lb), v in self.items() if n == name and frozenset(labels.items()) <= lb]
        assert len(matching) == 1, \
            f"{len(matching)} series {name}{labels} in self-telemetry: {sorted(k for k in self if k[0] == name)}"
        return matching[0]

    def sum(self, name: str, **labels) -> float:
        """The sum of every series `name` with `labels`; 0 when there is none yet."""
        return sum(v for (n, lb), v in self.items() if n == name and frozenset(labels.items()) <= lb)


def raw_export(channel: grpc.Channel):
    """OTLP's trace Export on `channel`, sending requests already encoded (bytes in, bytes out)."""
    return channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)


def serve_module(rl: Redline, sink, what: str, stop_timeout: float = 15):
    """The body of a module fixture: `rl` started, forwarding to `sink` (.sink), with a gRPC
    .channel and a raw .export on it. When the module is done, `rl` must have survived `what`
    and must stop cleanly."""
    rl.start()
    rl.sink = sink
    rl.channel = rl.grpc_channel()
    rl.export = raw_export(rl.channel)
    yield rl
    rl.channel.close()
    assert rl.alive(), f"redline died during {what}:\n{rl.proc.log_text()}"
    rl.stop(timeout=stop_timeout)


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
