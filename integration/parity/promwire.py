"""Prometheus' binary formats, decoded for comparing two collectors: remote-write requests
(snappy block format around a prometheus.WriteRequest) and the protobuf scrape format
(varint-delimited io.prometheus.client.MetricFamily messages).

Written for this suite from the .proto files (prometheus/prompb/types.proto, remote.proto;
prometheus/client_model metrics.proto), independent of Redline's encoders. Each is reduced to
a canonical, hashable form in which equal data compares equal however it was encoded:
native histogram buckets as absolute counts per bucket index (spans and deltas resolved,
empty buckets dropped), labels sorted.
"""

from __future__ import annotations

import math
import struct
from collections import Counter

# ---------------------------------------------------------------- snappy (block format)


def snappy_decompress(data: bytes) -> bytes:
    n, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                length = int.from_bytes(data[pos:pos + extra], "little")
                pos += extra
            length += 1
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError(f"snappy: bad copy offset {offset} at {len(out)}")
        for _ in range(length):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != n:
        raise ValueError(f"snappy: {len(out)} bytes decoded, header says {n}")
    return bytes(out)


# ---------------------------------------------------------------- protobuf wire format


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _signed64(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def fields(buf: bytes) -> dict:
    """{field number: [raw values]}: varints as int, fixed64 as 8 bytes, fixed32 as 4 bytes,
    length-delimited as bytes."""
    out: dict = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wt} of field {num}")
        out.setdefault(num, []).append(v)
    return out


def _double(raw) -> float:
    return struct.unpack("<d", raw)[0]


def _doubles(values: list) -> list:
    """A repeated double: packed (bytes of 8 * n) or not (8 bytes each)."""
    out = []
    for raw in values:
        out += [struct.unpack_from("<d", raw, i)[0] for i in range(0, len(raw), 8)]
    return out


def _varints(values: list, signed_zigzag: bool = False) -> list:
    out = []
    for raw in values:
        if isinstance(raw, int):
            out.append(raw)
            continue
        pos = 0
        while pos < len(raw):
            v, pos = _varint(raw, pos)
            out.append(v)
    return [_zigzag(v) for v in out] if signed_zigzag else out


def _str(f: dict, num: int, default: str = "") -> str:
    return f[num][-1].decode() if num in f else default


def _labels(raws: list) -> tuple:
    return tuple(sorted((_str(fields(r), 1), _str(fields(r), 2)) for r in raws))


def _buckets(spans: list, deltas: list, counts: list) -> tuple:
    """Absolute count per bucket index, non-empty buckets only, sorted."""
    idx, out, i = 0, {}, 0
    values = counts if counts else None
    running = 0
    for n, raw in enumerate(spans):
        sf = fields(raw)
        offset = _zigzag(sf[1][-1]) if 1 in sf else 0
        length = sf[2][-1] if 2 in sf else 0
        idx = (idx + offset) if n else offset
        for _ in range(length):
            if values is not None:
                c = values[i]
            else:
                running += deltas[i]
                c = running
            if c:
                out[idx] = out.get(idx, 0) + c
            idx += 1
            i += 1
    return tuple(sorted(out.items()))


# ---------------------------------------------------------------- remote write


def _rw_histogram(raw: bytes) -> tuple:
    f = fields(raw)
    count = f[1][-1] if 1 in f else (_double(f[2][-1]) if 2 in f else 0)
    zero = f[6][-1] if 6 in f else (_double(f[7][-1]) if 7 in f else 0)
    return ("histogram",
            ("count", float(count)), ("sum", _double(f[3][-1]) if 3 in f else 0.0),
            ("schema", _zigzag(f[4][-1]) if 4 in f else 0),
            ("zero_threshold", _double(f[5][-1]) if 5 in f else 0.0), ("zero_count", float(zero)),
            ("negative", _buckets(f.get(8, []), _varints(f.get(9, []), True), _doubles(f.get(10, [])))),
            ("positive", _buckets(f.get(11, []), _varints(f.get(12, []), True), _doubles(f.get(13, [])))),
            ("custom_values", tuple(_doubles(f.get(16, [])))),
            ("timestamp", _signed64(f[15][-1]) if 15 in f else 0))


def decode_write_request(body: bytes) -> tuple[Counter, Counter]:
    """(samples, metadata) of one snappy-compressed WriteRequest, as multisets:
    samples (name, labels without __name__, timestamp ms, value) for floats and
    (name, labels, timestamp ms, histogram tuple) for native histograms; exemplars as
    (name, labels, "exemplar", labels, value, timestamp); metadata (family, type, help, unit)."""
    f = fields(snappy_decompress(body))
    samples: Counter = Counter()
    for ts in f.get(1, []):
        tf = fields(ts)
        labels = _labels(tf.get(1, []))
        name = dict(labels).get("__name__", "")
        rest = tuple((k, v) for k, v in labels if k != "__name__")
        for s in tf.get(2, []):
            sf = fields(s)
            v = _double(sf[1][-1]) if 1 in sf else 0.0
            samples[(name, rest, _signed64(sf[2][-1]) if 2 in sf else 0, "nan" if math.isnan(v) else v)] += 1
        for h in tf.get(4, []):
            hist = _rw_histogram(h)
            samples[(name, rest, dict(hist[1:])["timestamp"], hist)] += 1
        for e in tf.get(3, []):
            ef = fields(e)
            samples[(name, rest, "exemplar", _labels(ef.get(1, [])), _double(ef[2][-1]) if 2 in ef else 0.0,
                     _signed64(ef[3][-1]) if 3 in ef else 0)] += 1
    metadata: Counter = Counter()
    for m in f.get(3, []):
        mf = fields(m)
        metadata[(_str(mf, 2), mf[1][-1] if 1 in mf else 0, _str(mf, 4), _str(mf, 5))] += 1
    return samples, metadata


def decode_bodies(bodies: list) -> tuple[Counter, Counter]:
    samples, metadata = Counter(), Counter()
    for b in bodies:
        s, m = decode_write_request(b)
        samples += s
        metadata += m
    return samples, metadata


# ---------------------------------------------------------------- protobuf scrape

PROTO_ACCEPT = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
                "encoding=delimited;q=0.9,text/plain;version=0.0.4;q=0.1")
_TYPES = {0: "counter", 1: "gauge", 2: "summary", 3: "untyped", 4: "histogram", 5: "gaugehistogram"}


def _timestamp(raw) -> tuple:
    f = fields(raw)
    return (f[1][-1] if 1 in f else 0, f[2][-1] if 2 in f else 0)


def _proto_metric(raw: bytes) -> tuple:
    """(labels, value tuple) of one io.prometheus.client.Metric."""
    f = fields(raw)
    labels = _labels(f.get(1, []))
    if 2 in f:
        gf = fields(f[2][-1])
        value = ("gauge", _double(gf[1][-1]) if 1 in gf else 0.0)
    elif 3 in f:
        cf = fields(f[3][-1])
        value = ("counter", _double(cf[1][-1]) if 1 in cf else 0.0,
                 ("created", _timestamp(cf[3][-1]) if 3 in cf else None), ("exemplar", 2 in cf))
    elif 5 in f:
        uf = fields(f[5][-1])
        value = ("untyped", _double(uf[1][-1]) if 1 in uf else 0.0)
    elif 4 in f:
        sf = fields(f[4][-1])
        value = ("summary", sf[1][-1] if 1 in sf else 0, _double(sf[2][-1]) if 2 in sf else 0.0,
                 tuple((_double(fields(q)[1][-1]), _double(fields(q)[2][-1])) for q in sf.get(3, [])))
    elif 7 in f:
        hf = fields(f[7][-1])
        classic = []
        for b in hf.get(3, []):
            bf = fields(b)
            n = _double(bf[4][-1]) if 4 in bf else float(bf[1][-1] if 1 in bf else 0)
            classic.append((_double(bf[2][-1]) if 2 in bf else math.nan, n, 3 in bf))
        count = _double(hf[4][-1]) if 4 in hf and _double(hf[4][-1]) > 0 else float(hf[1][-1] if 1 in hf else 0)
        zero = _double(hf[8][-1]) if 8 in hf and _double(hf[8][-1]) > 0 else float(hf[7][-1] if 7 in hf else 0)
        native = 5 in hf or 12 in hf or 9 in hf or 6 in hf or 7 in hf
        value = ("histogram", ("count", count), ("sum", _double(hf[2][-1]) if 2 in hf else 0.0),
                 ("classic_buckets", tuple(classic)),
                 ("created", _timestamp(hf[15][-1]) if 15 in hf else None),
                 ("native", native),
                 ("schema", _zigzag(hf[5][-1]) if 5 in hf else None),
                 ("zero_threshold", _double(hf[6][-1]) if 6 in hf else None), ("zero_count", zero),
                 ("negative", _buckets(hf.get(9, []), _varints(hf.get(10, []), True), _doubles(hf.get(11, [])))),
                 ("positive", _buckets(hf.get(12, []), _varints(hf.get(13, []), True), _doubles(hf.get(14, [])))),
                 ("exemplars", len(hf.get(16, []))))
    else:
        value = ("empty",)
    ts = _signed64(f[6][-1]) if 6 in f else None
    return labels, value + (("timestamp_ms", ts),)


def decode_delimited(body: bytes) -> dict:
    """{family name: (type, help, unit, {labels: value tuple})} of a protobuf scrape."""
    out = {}
    pos = 0
    while pos < len(body):
        n, pos = _varint(body, pos)
        f = fields(body[pos:pos + n])
        pos += n
        name = _str(f, 1)
        metrics = dict(_proto_metric(m) for m in f.get(4, []))
        out[name] = (_TYPES.get(f[3][-1] if 3 in f else 0, "?"), _str(f, 2), _str(f, 5), metrics)
    return out


def series_text(name: str, labels: tuple) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


# ---------------------------------------------------------------- differences, one line each


def _short(v) -> str:
    return repr(v)


def compare_remote_write(otelcol: tuple, redline: tuple) -> list[str]:
    """Every difference between the (samples, metadata) two collectors remote-wrote:
    `remote-write sample only in SIDE: SERIES @TS = VALUE` (a float sample, a native histogram
    or an exemplar that the other side did not write at that timestamp with that value) and
    `remote-write metadata only in SIDE: FAMILY type=T help=H unit=U`."""
    diffs = []
    (sa, ma), (sb, mb) = otelcol, redline
    for side, mine, other in (("otelcol", sa, sb), ("redline", sb, sa)):
        for key in sorted(mine - other, key=repr):
            name, labels, ts, *value = key
            diffs.append(f"remote-write sample only in {side}: {series_text(name, labels)} @{ts} = "
                         f"{_short(value[0] if len(value) == 1 else tuple(value))}")
    for side, mine, other in (("otelcol", ma, mb), ("redline", mb, ma)):
        for fam, typ, help_, unit in sorted(mine - other):
            diffs.append(f"remote-write metadata only in {side}: {fam} type={typ} help={help_!r} unit={unit!r}")
    return diffs


def compare_proto_scrape(otelcol: dict, redline: dict) -> list[str]:
    """Every difference between two protobuf scrapes: families, TYPE, HELP, UNIT, series
    and their whole value (float, classic and native histogram, created timestamp)."""
    diffs = []
    for name in sorted(set(otelcol) - set(redline)):
        diffs.append(f"protobuf family only in otelcol: {name}")
    for name in sorted(set(redline) - set(otelcol)):
        diffs.append(f"protobuf family only in redline: {name}")
    for name in sorted(set(otelcol) & set(redline)):
        (ta, ha, ua, ma), (tb, hb, ub, mb) = otelcol[name], redline[name]
        if ta != tb:
            diffs.append(f"protobuf TYPE differs: {name}: otelcol={ta} redline={tb}")
        if ha != hb:
            diffs.append(f"protobuf HELP differs: {name}: otelcol={ha!r} redline={hb!r}")
        if ua != ub:
            diffs.append(f"protobuf UNIT differs: {name}: otelcol={ua!r} redline={ub!r}")
        for labels in sorted(set(ma) - set(mb)):
            diffs.append(f"protobuf series only in otelcol: {series_text(name, labels)}")
        for labels in sorted(set(mb) - set(ma)):
            diffs.append(f"protobuf series only in redline: {series_text(name, labels)}")
        for labels in sorted(set(ma) & set(mb)):
            if ma[labels] != mb[labels]:
                diffs.append(f"protobuf value differs: {series_text(name, labels)}: "
                             f"otelcol={ma[labels]!r} redline={mb[labels]!r}")
    return diffs
