"""The parity suite's own decoders (promwire.py) on hand-made input: snappy literals and
overlapping copies, a WriteRequest with a float sample and a native histogram given as
deltas and as absolute counts, and a delimited protobuf scrape. No collector runs."""

from __future__ import annotations

import struct

from promwire import decode_delimited, decode_write_request, snappy_decompress
from redline_run import field_bytes, varint


def _double(num: int, v: float) -> bytes:
    return varint(num << 3 | 1) + struct.pack("<d", v)


def _uint(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def _sint(num: int, v: int) -> bytes:
    return _uint(num, (v << 1) ^ (v >> 63))


def _snappy_literal(data: bytes) -> bytes:
    """The whole body as one literal (valid snappy: a compressor may always do this)."""
    n = len(data) - 1
    tag = bytes([n << 2]) if n < 60 else bytes([61 << 2]) + n.to_bytes(2, "little")
    return varint(len(data)) + tag + data


def test_snappy_copies():
    # "abcd" literal, then a 1-byte-offset copy of 8 bytes at offset 4 (overlapping itself).
    body = varint(12) + bytes([3 << 2]) + b"abcd" + bytes([1 | (4 << 2), 4])
    assert snappy_decompress(body) == b"abcdabcdabcd"
    # A 2-byte-offset copy.
    body = varint(6) + bytes([2 << 2]) + b"xyz" + bytes([2 | (2 << 2)]) + (3).to_bytes(2, "little")
    assert snappy_decompress(body) == b"xyzxyz"


def _label(name: str, value: str) -> bytes:
    return field_bytes(1, field_bytes(1, name.encode()) + field_bytes(2, value.encode()))


def test_write_request():
    span = field_bytes(11, _sint(1, -2) + _uint(2, 3))  # buckets -2, -1, 0
    deltas = field_bytes(12, b"".join(varint((d << 1) ^ (d >> 63)) for d in (1, 1, -2)))  # 1, 2, 0
    hist = (_uint(1, 4) + _double(3, 7.5) + _sint(4, 3) + _double(5, 1e-128) + _uint(6, 1) + span + deltas
            + _uint(15, 1000))
    ts = (_label("__name__", "h") + _label("a", "1") + field_bytes(4, hist)
          + field_bytes(2, _double(1, 2.5) + _uint(2, 1000)))
    req = field_bytes(1, ts) + field_bytes(3, _uint(1, 3) + field_bytes(2, b"h") + field_bytes(4, b"help"))
    samples, metadata = decode_write_request(_snappy_literal(req))
    hist_key = [k for k in samples if isinstance(k[3], tuple)][0]
    assert dict(hist_key[3][1:])["positive"] == ((-2, 1), (-1, 2))
    assert dict(hist_key[3][1:])["count"] == 4.0 and dict(hist_key[3][1:])["schema"] == 3
    assert ("h", (("a", "1"),), 1000, 2.5) in samples
    assert metadata == {("h", 3, "help", ""): 1}

    # The same buckets as absolute counts (positive_counts, packed doubles): the same value.
    hist2 = (_uint(1, 4) + _double(3, 7.5) + _sint(4, 3) + _double(5, 1e-128) + _uint(6, 1) + span
             + field_bytes(13, struct.pack("<3d", 1, 2, 0)) + _uint(15, 1000))
    ts2 = _label("__name__", "h") + _label("a", "1") + field_bytes(4, hist2)
    samples2, _ = decode_write_request(_snappy_literal(field_bytes(1, ts2)))
    assert hist_key in samples2


def test_delimited_scrape():
    metric = field_bytes(1, field_bytes(1, b"k") + field_bytes(2, b"v")) + field_bytes(3, _double(1, 13.0))
    fam = field_bytes(1, b"c_total") + field_bytes(2, b"Orders.") + _uint(3, 0) + field_bytes(4, metric)
    body = varint(len(fam)) + fam
    out = decode_delimited(body * 1)
    assert out["c_total"][:3] == ("counter", "Orders.", "")
    assert out["c_total"][3][(("k", "v"),)][:2] == ("counter", 13.0)
