"""Jaeger's gRPC API written by hand, for the `jaeger` receiver's `protocols.grpc` parity test.

The messages of jaeger-idl's proto/api_v2 (model.proto: Batch, Process, Span, SpanRef,
KeyValue, Log; collector.proto: PostSpansRequest, the request of
`jaeger.api_v2.CollectorService/PostSpans`) as small dataclasses, encoded in the protobuf
wire format: fields in number order, a proto3 field at its default value left out as every
encoder does, and google.protobuf.Timestamp / Duration as messages of (seconds, nanos).

What a client could not otherwise send is explicit here: a Timestamp or Duration of None is
not written at all (Jaeger's Go model always writes them), any out-of-range value is written
as given, ids are bytes of any length (None: not written; b"": written empty), a
PostSpansRequest always has its `batch` field (as gogo's generated code writes a
non-nullable message), and `extra` appends raw bytes (unknown fields, repeated fields, wrong
wire types) to a message.

`test_parity_jaeger_grpc.test_hand_encoder_matches_protobuf` checks this encoder against
the protobuf library's own, on messages built from the same .proto definitions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # wire types
STRING, BOOL, INT64, FLOAT64, BINARY = range(5)  # ValueType
CHILD_OF, FOLLOWS_FROM = 0, 1  # SpanRefType

M64 = (1 << 64) - 1


# ---------------------------------------------------------------- the wire format


def varint(v: int) -> bytes:
    """A varint; a negative value as its 64-bit two's complement (ten bytes)."""
    u = v & M64
    out = bytearray()
    while True:
        byte, u = u & 0x7F, u >> 7
        out.append(byte | (0x80 if u else 0))
        if not u:
            return bytes(out)


def tag(num: int, wire: int) -> bytes:
    return varint(num << 3 | wire)


def f_varint(num: int, v: int) -> bytes:
    return tag(num, VARINT) + varint(v)


def f_bytes(num: int, data) -> bytes:
    data = data.encode() if isinstance(data, str) else bytes(data)
    return tag(num, LEN) + varint(len(data)) + data


def f_double(num: int, v: float) -> bytes:
    return tag(num, FIXED64) + struct.pack("<d", v)


def _opt(num: int, msg) -> bytes:
    """A message field: not written when None; written (maybe empty) otherwise."""
    return b"" if msg is None else f_bytes(num, msg.encode())


def _set(num: int, v, write) -> bytes:
    """A proto3 scalar: not written at its default (0, False, "", b""; -0.0 is written, as
    its bits are not zero)."""
    if isinstance(v, float):
        return write(num, v) if struct.pack("<d", v) != bytes(8) else b""
    return write(num, v) if v else b""


# ---------------------------------------------------------------- google.protobuf


@dataclass
class Timestamp:
    seconds: int = 0
    nanos: int = 0

    def encode(self) -> bytes:
        return _set(1, self.seconds, f_varint) + _set(2, self.nanos, f_varint)


@dataclass
class Duration:
    seconds: int = 0
    nanos: int = 0

    def encode(self) -> bytes:
        return _set(1, self.seconds, f_varint) + _set(2, self.nanos, f_varint)


def at(ns: int) -> Timestamp:
    """A Unix time in nanoseconds as a Timestamp (nanos in [0, 1e9), as the spec says)."""
    return Timestamp(ns // 10**9, ns % 10**9)


def lasting(ns: int) -> Duration:
    """A duration in nanoseconds as a Duration (seconds and nanos of the same sign, as Go's
    DurationProto writes it)."""
    sign = -1 if ns < 0 else 1
    return Duration(sign * (abs(ns) // 10**9), sign * (abs(ns) % 10**9))


# ---------------------------------------------------------------- jaeger.api_v2


@dataclass
class KeyValue:
    key: str
    v_type: int = STRING
    v_str: str = ""
    v_bool: bool = False
    v_int64: int = 0
    v_float64: float = 0.0
    v_binary: bytes = b""
    extra: bytes = b""

    def encode(self) -> bytes:
        return (_set(1, self.key, f_bytes) + _set(2, self.v_type, f_varint) + _set(3, self.v_str, f_bytes)
                + _set(4, self.v_bool, f_varint) + _set(5, self.v_int64, f_varint)
                + _set(6, float(self.v_float64), f_double) + _set(7, self.v_binary, f_bytes) + self.extra)


def s(key: str, v: str) -> KeyValue:
    return KeyValue(key, STRING, v_str=v)


def b(key: str, v: bool) -> KeyValue:
    return KeyValue(key, BOOL, v_bool=v)


def n(key: str, v: int) -> KeyValue:
    return KeyValue(key, INT64, v_int64=v)


def d(key: str, v: float) -> KeyValue:
    return KeyValue(key, FLOAT64, v_float64=v)


def raw(key: str, v: bytes) -> KeyValue:
    return KeyValue(key, BINARY, v_binary=v)


@dataclass
class Log:
    timestamp: Optional[Timestamp]
    fields: list = field(default_factory=list)

    def encode(self) -> bytes:
        return _opt(1, self.timestamp) + b"".join(f_bytes(2, kv.encode()) for kv in self.fields)


@dataclass
class SpanRef:
    trace_id: Optional[bytes]
    span_id: Optional[bytes]
    ref_type: int = CHILD_OF

    def encode(self) -> bytes:
        return (b"" if self.trace_id is None else f_bytes(1, self.trace_id)) \
            + (b"" if self.span_id is None else f_bytes(2, self.span_id)) + _set(3, self.ref_type, f_varint)


@dataclass
class Process:
    service_name: str = ""
    tags: list = field(default_factory=list)
    extra: bytes = b""

    def encode(self) -> bytes:
        return _set(1, self.service_name, f_bytes) + b"".join(f_bytes(2, kv.encode()) for kv in self.tags) \
            + self.extra


@dataclass
class Span:
    trace_id: Optional[bytes] = None
    span_id: Optional[bytes] = None
    operation_name: str = ""
    references: list = field(default_factory=list)
    flags: int = 0
    start_time: Optional[Timestamp] = None
    duration: Optional[Duration] = None
    tags: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    process: Optional[Process] = None
    process_id: str = ""
    warnings: list = field(default_factory=list)
    extra: bytes = b""

    def encode(self) -> bytes:
        return ((b"" if self.trace_id is None else f_bytes(1, self.trace_id))
                + (b"" if self.span_id is None else f_bytes(2, self.span_id))
                + _set(3, self.operation_name, f_bytes)
                + b"".join(f_bytes(4, r.encode()) for r in self.references)
                + _set(5, self.flags, f_varint) + _opt(6, self.start_time) + _opt(7, self.duration)
                + b"".join(f_bytes(8, kv.encode()) for kv in self.tags)
                + b"".join(f_bytes(9, lg.encode()) for lg in self.logs)
                + _opt(10, self.process) + _set(11, self.process_id, f_bytes)
                + b"".join(f_bytes(12, w) for w in self.warnings) + self.extra)


@dataclass
class Batch:
    spans: list = field(default_factory=list)
    process: Optional[Process] = None
    extra: bytes = b""

    def encode(self) -> bytes:
        return b"".join(f_bytes(1, sp.encode()) for sp in self.spans) + _opt(2, self.process) + self.extra


def post_spans(batch: Batch, extra: bytes = b"") -> bytes:
    """A PostSpansRequest: the batch, always written (gogo's non-nullable field)."""
    return f_bytes(1, batch.encode()) + extra
