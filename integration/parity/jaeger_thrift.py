"""Jaeger Thrift written by hand, for the `jaeger` receiver's parity test.

The structs of jaeger-idl's jaeger.thrift (Batch, Process, Span, Tag, Log, SpanRef,
ClientStats) as small dataclasses, and the two Thrift protocols the receiver reads: the
binary protocol (`POST /api/traces` bodies, which are a bare Batch struct, and the agent's
`thrift_binary` UDP port) and the compact protocol (the agent's `thrift_compact` UDP port).
Over UDP a packet is one message of the agent service: `emitBatch(1: Batch batch)`, oneway.

Fields are written in id order and a field left None is not written, as Thrift's generated
code does; `omit` names required fields to leave out anyway and `extra` adds raw fields
(unknown ids, wrong types), for the requests otelcol refuses or skips over. Integers are
taken signed or unsigned and written as the two's complement of their width.

`test_parity_jaeger.test_hand_encoders_match_the_thrift_library` checks these encoders
against the Apache Thrift Python library byte for byte.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Optional

# TType: the wire types of the binary protocol.
STOP, BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = 0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15
# The compact protocol's types (booleans in a field header are TRUE or FALSE).
_C_TRUE, _C_FALSE = 1, 2
_COMPACT = {BYTE: 3, I16: 4, I32: 5, I64: 6, DOUBLE: 7, STRING: 8, LIST: 9, SET: 10, MAP: 11, STRUCT: 12}
# TMessageType
CALL, REPLY, EXCEPTION, ONEWAY = 1, 2, 3, 4

# jaeger.thrift's enums.
STRING_T, DOUBLE_T, BOOL_T, LONG_T, BINARY_T = range(5)  # TagType
CHILD_OF, FOLLOWS_FROM = 0, 1  # SpanRefType

M64 = (1 << 64) - 1


def i64(v: int) -> int:
    """`v` (signed or unsigned) as the signed int64 Thrift carries."""
    v &= M64
    return v - (1 << 64) if v >> 63 else v


def u64(v: int) -> int:
    return v & M64


# ---------------------------------------------------------------- generic values


@dataclass
class Struct:
    """A struct as its fields: (id, TType, value). A STRUCT value is a Struct, a LIST value
    a TList, a STRING value str or bytes."""

    fields: list


@dataclass
class TList:
    elem: int
    items: list
    size: Optional[int] = None  # the size written, when it is not len(items) (a lie)


def _fields(pairs, omit=(), extra=()) -> Struct:
    """Struct of (id, TType, value) with None values and the `omit` ids left out, `extra`
    raw fields appended."""
    return Struct([f for f in pairs if f[2] is not None and f[0] not in omit] + list(extra))


def _tlist(elem: int, items) -> Optional[TList]:
    return None if items is None else TList(elem, [x.struct() if hasattr(x, "struct") else x for x in items])


# ---------------------------------------------------------------- jaeger.thrift


@dataclass
class Tag:
    key: Optional[str]
    vType: Optional[int]
    vStr: Optional[str] = None
    vDouble: Optional[float] = None
    vBool: Optional[bool] = None
    vLong: Optional[int] = None
    vBinary: Optional[bytes] = None
    extra: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, STRING, self.key), (2, I32, self.vType), (3, STRING, self.vStr),
                        (4, DOUBLE, self.vDouble), (5, BOOL, self.vBool), (6, I64, self.vLong),
                        (7, STRING, self.vBinary)], extra=self.extra)


def s(key: str, v: str) -> Tag:
    return Tag(key, STRING_T, vStr=v)


def d(key: str, v: float) -> Tag:
    return Tag(key, DOUBLE_T, vDouble=v)


def b(key: str, v: bool) -> Tag:
    return Tag(key, BOOL_T, vBool=v)


def n(key: str, v: int) -> Tag:
    return Tag(key, LONG_T, vLong=v)


def raw(key: str, v: bytes) -> Tag:
    return Tag(key, BINARY_T, vBinary=v)


@dataclass
class Log:
    timestamp: Optional[int]
    fields: Optional[list]
    omit: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, I64, self.timestamp), (2, LIST, _tlist(STRUCT, self.fields))], self.omit)


@dataclass
class SpanRef:
    refType: int
    traceIdLow: int
    traceIdHigh: int
    spanId: int
    omit: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, I32, self.refType), (2, I64, self.traceIdLow), (3, I64, self.traceIdHigh),
                        (4, I64, self.spanId)], self.omit)


@dataclass
class Span:
    traceIdLow: int
    traceIdHigh: int
    spanId: int
    parentSpanId: int = 0
    operationName: str = ""
    references: Optional[list] = None
    flags: int = 1
    startTime: int = 0
    duration: int = 0
    tags: Optional[list] = None
    logs: Optional[list] = None
    omit: tuple = ()
    extra: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, I64, self.traceIdLow), (2, I64, self.traceIdHigh), (3, I64, self.spanId),
                        (4, I64, self.parentSpanId), (5, STRING, self.operationName),
                        (6, LIST, _tlist(STRUCT, self.references)), (7, I32, self.flags),
                        (8, I64, self.startTime), (9, I64, self.duration), (10, LIST, _tlist(STRUCT, self.tags)),
                        (11, LIST, _tlist(STRUCT, self.logs))], self.omit, self.extra)


@dataclass
class Process:
    serviceName: Optional[str]
    tags: Optional[list] = None
    omit: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, STRING, self.serviceName), (2, LIST, _tlist(STRUCT, self.tags))], self.omit)


@dataclass
class ClientStats:
    fullQueueDroppedSpans: int = 0
    tooLargeDroppedSpans: int = 0
    failedToEmitSpans: int = 0
    omit: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, I64, self.fullQueueDroppedSpans), (2, I64, self.tooLargeDroppedSpans),
                        (3, I64, self.failedToEmitSpans)], self.omit)


@dataclass
class Batch:
    process: Optional[Process]
    spans: Optional[list] = field(default_factory=list)
    seqNo: Optional[int] = None
    stats: Optional[ClientStats] = None
    omit: tuple = ()
    extra: tuple = ()

    def struct(self) -> Struct:
        return _fields([(1, STRUCT, self.process.struct() if self.process else None),
                        (2, LIST, _tlist(STRUCT, self.spans)), (3, I64, self.seqNo),
                        (4, STRUCT, self.stats.struct() if self.stats else None)], self.omit, self.extra)


# ---------------------------------------------------------------- the binary protocol


def _bytes_of(v) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


def binary(ttype: int, v) -> bytes:
    """One value in the binary protocol (big-endian, strings and lists sized by an i32)."""
    if ttype == BOOL:
        return b"\x01" if v else b"\x00"
    if ttype == BYTE:
        return struct.pack(">b", v)
    if ttype == I16:
        return struct.pack(">h", v)
    if ttype == I32:
        return struct.pack(">i", v)
    if ttype == I64:
        return struct.pack(">q", i64(v))
    if ttype == DOUBLE:
        return struct.pack(">d", v)
    if ttype == STRING:
        data = _bytes_of(v)
        return struct.pack(">i", len(data)) + data
    if ttype == STRUCT:
        out = b"".join(struct.pack(">bh", t, fid) + binary(t, fv) for fid, t, fv in v.fields)
        return out + b"\x00"
    if ttype == LIST:
        size = len(v.items) if v.size is None else v.size
        return struct.pack(">bi", v.elem, size) + b"".join(binary(v.elem, x) for x in v.items)
    raise ValueError(f"TType {ttype}")


def binary_message(name: str, args: Struct, mtype: int = ONEWAY, seqid: int = 0, strict: bool = True) -> bytes:
    """A message (the agent's UDP packet): strict (the version word), or the old form that
    starts with the name."""
    if strict:
        head = struct.pack(">I", 0x80010000 | mtype) + binary(STRING, name) + struct.pack(">i", seqid)
    else:
        head = binary(STRING, name) + struct.pack(">bi", mtype, seqid)
    return head + binary(STRUCT, args)


# ---------------------------------------------------------------- the compact protocol


def _varint(u: int) -> bytes:
    out = bytearray()
    while True:
        byte, u = u & 0x7F, u >> 7
        out.append(byte | (0x80 if u else 0))
        if not u:
            return bytes(out)


def _zigzag(v: int, bits: int) -> int:
    return ((v << 1) ^ (v >> (bits - 1))) & ((1 << bits) - 1)


def compact(ttype: int, v) -> bytes:
    """One value in the compact protocol (zigzag varints, little-endian doubles, field ids as
    deltas)."""
    if ttype == BOOL:  # a bool outside a field header (in a list)
        return bytes([_C_TRUE if v else _C_FALSE])
    if ttype == BYTE:
        return struct.pack("<b", v)
    if ttype == I16:
        return _varint(_zigzag(v, 16))
    if ttype == I32:
        return _varint(_zigzag(v, 32))
    if ttype == I64:
        return _varint(_zigzag(i64(v), 64))
    if ttype == DOUBLE:
        return struct.pack("<d", v)
    if ttype == STRING:
        data = _bytes_of(v)
        return _varint(len(data)) + data
    if ttype == STRUCT:
        out, last = bytearray(), 0
        for fid, t, fv in v.fields:
            ctype = (_C_TRUE if fv else _C_FALSE) if t == BOOL else _COMPACT[t]
            if 0 < fid - last <= 15:
                out.append((fid - last) << 4 | ctype)
            else:
                out.append(ctype)
                out += _varint(_zigzag(fid, 16))
            last = fid
            if t != BOOL:
                out += compact(t, fv)
        return bytes(out) + b"\x00"
    if ttype == LIST:
        size = len(v.items) if v.size is None else v.size
        ctype = _C_TRUE if v.elem == BOOL else _COMPACT[v.elem]
        head = bytes([size << 4 | ctype]) if size <= 14 else bytes([0xF0 | ctype]) + _varint(size)
        return head + b"".join(compact(v.elem, x) for x in v.items)
    raise ValueError(f"TType {ttype}")


def compact_message(name: str, args: Struct, mtype: int = ONEWAY, seqid: int = 0) -> bytes:
    return bytes([0x82, 0x01 | (mtype << 5)]) + _varint(seqid & 0xFFFFFFFF) + compact(STRING, name) \
        + compact(STRUCT, args)


# ---------------------------------------------------------------- what goes on the wire


def http_body(batch: Batch) -> bytes:
    """A `POST /api/traces` body: the Batch struct in the binary protocol."""
    return binary(STRUCT, batch.struct())


def emit_batch_args(batch: Optional[Batch]) -> Struct:
    return _fields([(1, STRUCT, batch.struct() if batch else None)])


def emit_batch(batch: Optional[Batch], protocol: str, **kw) -> bytes:
    """The agent's UDP packet: `emitBatch(batch)`, a oneway message, in `protocol`
    ("compact" or "binary")."""
    args = emit_batch_args(batch)
    encode = compact_message if protocol == "compact" else binary_message
    return encode("emitBatch", args, **kw)


def send_udp(port: int, packet: bytes, host: str = "127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(packet, (host, port))


def udp_port_bound(port: int) -> bool:
    """Whether a socket is bound to UDP `port`, from /proc/net/udp{,6} (Linux): looked up,
    not probed, since a bind of our own could take the port from the collector."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        if any(int(row.split()[1].rsplit(":", 1)[1], 16) == port for row in rows if row.strip()):
            return True
    return False
