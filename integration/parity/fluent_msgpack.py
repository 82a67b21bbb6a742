"""Fluent Forward protocol events as MessagePack bytes, for the fluentforward receiver tests.

The shapes are those of the Forward Protocol Specification v1, as Fluent Bit and fluentd's
out_forward send them:

  Message        [tag, time, record, options?]
  Forward        [tag, [[time, record], ...], options?]
  PackedForward  [tag, bin (or str) of concatenated [time, record] entries, options?]
                 (`{"compressed": "gzip"}`: the entries gzip-compressed, maybe in several
                 gzip members, as fluentd appends one per flush)

A time is an integer of seconds or an EventTime, the extension type 0 holding seconds and
nanoseconds as two big-endian uint32.

Ordinary values are packed by the `msgpack` library (str as str, bytes as bin, the smallest
integer and header forms). What it cannot write is said with the wrappers below: bytes
placed as they are (`Raw`), a float32 (`F32`), a map written pair by pair with repeated or
non-string keys (`Pairs`), a str whose bytes are given (`Str`). Written for this suite; it
shares nothing with Redline.
"""

from __future__ import annotations

import gzip
import struct

import msgpack

EVENT_TIME = 0  # the extension type of EventTime


class Raw:
    """Bytes put into the encoding as they are (an object already encoded, or a broken one)."""

    def __init__(self, data: bytes):
        self.data = data


class F32:
    """A float sent as a MessagePack float32."""

    def __init__(self, value: float):
        self.value = value

    @property
    def as_double(self) -> float:
        """What the float32 holds, widened to a double."""
        return struct.unpack(">f", struct.pack(">f", self.value))[0]


class Pairs:
    """A map written pair by pair, in this order: keys may repeat, and may be bin (bytes) or
    of any other type."""

    def __init__(self, pairs: list):
        self.pairs = list(pairs)


class Str:
    """A MessagePack str holding these bytes (the library writes bytes only as bin)."""

    def __init__(self, data: bytes):
        self.data = data


def event_time(seconds: int, nanos: int = 0) -> msgpack.ExtType:
    return msgpack.ExtType(EVENT_TIME, struct.pack(">II", seconds, nanos))


def _header(n: int, fix: int, fix_max: int, b16: int, b32: int) -> bytes:
    if n <= fix_max:
        return bytes([fix | n])
    if n < 1 << 16:
        return struct.pack(">BH", b16, n)
    return struct.pack(">BI", b32, n)


def array_header(n: int) -> bytes:
    return _header(n, 0x90, 15, 0xDC, 0xDD)


def map_header(n: int) -> bytes:
    return _header(n, 0x80, 15, 0xDE, 0xDF)


def str_header(n: int) -> bytes:
    if n <= 31:
        return bytes([0xA0 | n])
    if n < 1 << 8:
        return bytes([0xD9, n])
    return _header(n, 0, -1, 0xDA, 0xDB)


def enc(v) -> bytes:
    """`v` as MessagePack: containers element by element (so that the wrappers may sit
    anywhere inside), everything else as the library packs it."""
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, F32):
        return struct.pack(">Bf", 0xCA, v.value)
    if isinstance(v, Str):
        return str_header(len(v.data)) + v.data
    if isinstance(v, msgpack.ExtType):  # a namedtuple: not to be written as an array
        return msgpack.packb(v)
    if isinstance(v, Pairs):
        return map_header(len(v.pairs)) + b"".join(enc(k) + enc(x) for k, x in v.pairs)
    if isinstance(v, dict):
        return map_header(len(v)) + b"".join(enc(k) + enc(x) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return array_header(len(v)) + b"".join(enc(x) for x in v)
    return msgpack.packb(v, use_bin_type=True)


def message(tag, time, record, options=None) -> bytes:
    return enc([tag, time, record] + ([] if options is None else [options]))


def forward(tag, entries: list, options=None) -> bytes:
    """`entries`: (time, record) pairs."""
    return enc([tag, [list(e) for e in entries]] + ([] if options is None else [options]))


def packed_entries(entries: list) -> bytes:
    """The entries of a PackedForward event: each [time, record] encoded, concatenated."""
    return b"".join(enc(list(e)) for e in entries)


def packed(tag, body: bytes, options=None, as_str: bool = False) -> bytes:
    """A PackedForward event around `body` (encoded entries, maybe compressed), sent as bin or
    (`as_str`) as str, as old fluentd versions did."""
    carried = Str(body) if as_str else body
    return enc([tag, carried] + ([] if options is None else [options]))


def gzip_members(*parts: bytes) -> bytes:
    """Each part compressed as a gzip member of its own, the members concatenated."""
    return b"".join(gzip.compress(p, mtime=0) for p in parts)
