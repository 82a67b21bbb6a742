"""Parity of the `fluentforward` receiver: Fluent Forward protocol events (MessagePack over
TCP, heartbeats over UDP) taken and turned into OTLP log records as otelcol-contrib's
fluentforwardreceiver (v0.161.0, decoding with tinylib/msgp v1.6.4) takes and turns them.

Fluent Bit's and fluentd's `forward` outputs and the Fluentd client libraries send logs this
way; the receiver is their way into the OTLP logs pipeline (and so into Loki). What comes out
of it (the time of a record, which key is the body, what every record value becomes, the
order of the attributes) decides what a log line looks like and how it is found; what the
receiver acknowledges, refuses and closes decides whether Fluent Bit resends, drops or
stalls.

One collector pair (or otelcol alone, see below) runs the receiver twice into one logs
pipeline whose `otlp` exporter writes to an OTLP sink: `fluentforward` (the deprecated type
name, which most configurations still use) and `fluent_forward` (the current one).

  - A real client: the Fluentd client library (fluent-logger 0.11.1's FluentSender), message
    mode, with integer times and, with `nanosecond_precision=True`, EventTime times.
  - Hand-built events (fluent_msgpack.py) in every mode Fluent Bit and fluentd send:
    Message `[tag, time, record, options?]`, Forward `[tag, [[time, record], ...],
    options?]`, PackedForward `[tag, bin|str, options?]`, plain and gzip-compressed (one and
    two gzip members). The same records go through every mode: values of every MessagePack
    type (str, bin, every integer width, uint64 above int64's range, float32 and float64,
    bool, nil, nested maps and arrays, 16- and 32-bit lengths, an extension), keys that are
    bin, repeated, `fluent.tag`, `message` and `log` in every combination, times as integers
    (negative, beyond 2^32 and int64) and as EventTime, tags of every str length form.
  - Options: `chunk` answered with `{"ack": chunk}` (the raw bytes are compared) once the
    pipeline took the event, on the same connection, in order for pipelined events; no
    answer for a chunk that is not a str or is empty; `size`, `compressed` values other than
    "gzip", unknown options: ignored.
  - Heartbeats: a UDP datagram to the receiver's port is answered with its first byte.
  - Bad input, each on a fresh connection (`BAD`): what was forwarded (the complete events
    before the bad one on that connection), whether the receiver closed the connection at
    once or only after the client's end of stream, the receiver's counters; then a good
    chunked event on another connection is acknowledged and forwarded.
  - The receiver's own counters: `otelcol_receiver_{accepted,refused,failed}_log_records` by
    receiver and transport (otelcol says "http"), and the fluent ones otelcol serves as
    gauges without `_total` or labels (`otelcol_fluent_events_parsed`,
    `_parse_failures`, `_records_generated`, `_opened_connections`, `_closed_connections`;
    one set for all fluentforward receivers of a collector), compared by their deltas.

What each collector forwards is compared with a model written here from otelcol's source
(`log_record`: conversion.go's rules) and with what the other collector forwards: every log
record in full, with its resource and scope (otelcol: both empty). Three normalisations:
  - Request boundaries are not compared: otelcol's collector goroutine merges whatever events
    wait in its channel into one request, so the same events arrive in one request or in
    several. The records are compared as one list; requests are put in the order of their
    first record's time (the exporter's queue may send them out of order; every send of
    several events here gives each a later time than the one before), records keep their
    order within a request. A forwarded request without records is no request (otelcol
    forwards one, with an empty ResourceLogs, for an event without records, unless another
    event's records went with it).
  - Nested maps (kvlist values) are compared in key order: otelcol builds them from a Go map.
    The record's own keys stay in order: pdata's Map keeps insertion order and a key put
    again keeps its first place (the model's dict does the same).
  - An empty body, attribute value or resource is the same whether or not it is on the wire.

Not compared, on purpose: extension types 0 (EventTime), -1 (MessagePack timestamp), 3, 4
and 5 (msgp's complex and time types) as record values, where otelcol writes Go's `%v` of
what msgp decoded: a pointer (an address), a complex number, a time in the local zone; str values that are not UTF-8
(otelcol forwards the bytes, which are not valid OTLP); a tag that is a negative fixint,
which otelcol's mode detection takes for a fixstr as long as its low five bits say (and waits
for that many bytes); unix socket endpoints; the limit of 100 connections.

`FLUENT_PARITY_SIDES=otelcol` (or `redline`) runs one collector alone, to check the model
against otelcol by itself (every comparison with the model still runs; those between the
collectors do not). The default, and what CI runs, is both.
"""

from __future__ import annotations

import difflib
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgpack
import pytest
from fluent.sender import EventTime, FluentSender
from google.protobuf import text_format
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

import helpers
from fluent_msgpack import (F32, Pairs, Raw, Str, enc, event_time, forward, gzip_members, message, packed,
                            packed_entries)
from receiver_sides import (QUIET, Side as ReceiverSide, assert_counts_moved, collect, copy, report, sides_fixture,
                            start_collector)
from test_parity_self_telemetry import labels_of, total

SIDES_ENV = "FLUENT_PARITY_SIDES"
MAIN, CURRENT = "fluentforward", "fluent_forward"  # the deprecated type name, the current one
RECEIVERS = (MAIN, CURRENT)

CONFIG = """\
receivers:
  fluentforward:
    endpoint: 127.0.0.1:24224
  fluent_forward:
    endpoint: 127.0.0.1:24225
exporters:
  otlp:
    endpoint: loki:4317
    tls:
      insecure: true
service:
  pipelines:
    logs:
      receivers: [fluentforward, fluent_forward]
      exporters: [otlp]
"""

T0 = 1_700_000_000  # a time in seconds that every event here starts from
INT64_MAX = (1 << 63) - 1
U64 = 1 << 64
OPEN_WAIT = 0.5  # seconds a connection stays open before it counts as kept open


# ---------------------------------------------------------------- the collectors


class Side(ReceiverSide):
    """One collector with both receivers on ports of their own (TCP and UDP on the same
    number) and its own sink; `expected` counts the log requests the test has taken."""

    def address(self, receiver: str = MAIN) -> tuple:
        return "127.0.0.1", self.collector.ports[receiver]

    def connect(self, receiver: str = MAIN) -> socket.socket:
        return socket.create_connection(self.address(receiver), timeout=5)

    def send(self, data: bytes, receiver: str = MAIN):
        """`data` on a connection of its own, closed once written (the receiver still reads
        what was sent before the end of stream)."""
        with self.connect(receiver) as conn:
            conn.sendall(data)

    def log_requests(self) -> list:
        return self.sink.requests_of("logs")


def heartbeat(address: tuple, datagram: bytes, timeout: float = 1.0):
    """The answer to one UDP datagram, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(timeout)
        udp.sendto(datagram, address)
        try:
            return udp.recvfrom(65536)[0]
        except socket.timeout:
            return None


def _start(name: str, argv: list, procs, workdir) -> Side:
    def configure(cfg, ports, collector):
        if collector is None:
            for rid in RECEIVERS:
                ports[rid] = helpers.free_port()
                cfg["receivers"][rid]["endpoint"] = f"127.0.0.1:{ports[rid]}"
            return None
        # The UDP socket is bound after the TCP one: wait for it too.
        for rid in RECEIVERS:
            helpers.wait_until(lambda: heartbeat(("127.0.0.1", ports[rid]), b"\x00", 0.2) == b"\x00", 15,
                               f"{name}'s {rid} to answer heartbeats", alive=collector.proc)
        return None

    collector, sink, _ = start_collector(name, argv, procs, workdir, CONFIG, configure)
    return Side(name, collector, sink)


sides = sides_fixture(SIDES_ENV, _start)


def on_all(sides: dict, fn) -> dict:
    """fn(side) for every side at once (each may wait on its connection), by side."""
    with ThreadPoolExecutor(len(sides)) as pool:
        futures = {name: pool.submit(fn, side) for name, side in sides.items()}
        return {name: f.result() for name, f in futures.items()}


# ---------------------------------------------------------------- what was forwarded


def _record_count(req) -> int:
    return sum(len(sl.log_records) for rl in req.resource_logs for sl in rl.scope_logs)


def taken(sides: dict, n: int) -> dict:
    """The log requests each side forwarded since the last take, once they hold `n` records,
    or after Side.forward_wait with what came (the comparison says what is missing). By
    side."""
    got = {}
    for name, side in sides.items():
        def enough():
            return sum(_record_count(r) for r in side.log_requests()[side.expected:]) >= n

        try:
            helpers.wait_until(enough, side.forward_wait, f"{name} to forward {n} record(s)", interval=0.01,
                               alive=side.collector.proc)
        except helpers.WaitTimeout:
            pass
        reqs = side.log_requests()
        got[name], side.expected = reqs[side.expected:], len(reqs)
    return got


def settle(sides: dict):
    """Nothing forwarded beyond what the test took (requests without records aside)."""
    time.sleep(QUIET)
    extra = {}
    for name, side in sides.items():
        reqs = side.log_requests()
        extra[name] = [_flat(r) for r in reqs[side.expected:] if _record_count(r)]
        side.expected = len(reqs)
    assert not any(extra.values()), f"forwarded and not expected: {extra}"


def _flat(req) -> list:
    return [text_format.MessageToString(one, as_utf8=True, as_one_line=True) for one in _one_per_record(req)]


def _one_per_record(req) -> list:
    """Each log record of a request as a ResourceLogs of its own, with its resource and scope."""
    out = []
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                one = logs_pb2.ResourceLogs(schema_url=rl.schema_url)
                one.resource.CopyFrom(rl.resource)
                scoped = one.scope_logs.add(schema_url=sl.schema_url)
                scoped.scope.CopyFrom(sl.scope)
                scoped.log_records.add().CopyFrom(lr)
                out.append(one)
    return out


def _normalise_value(v):
    if v.HasField("kvlist_value"):
        kept = sorted((copy(kv) for kv in v.kvlist_value.values), key=lambda kv: kv.key)
        del v.kvlist_value.values[:]
        v.kvlist_value.values.extend(kept)
        for kv in v.kvlist_value.values:
            kv.value.SetInParent()
            _normalise_value(kv.value)
    elif v.HasField("array_value"):
        for x in v.array_value.values:
            _normalise_value(x)


def canonical(records: list) -> str:
    """Records (ResourceLogs of one record each) as text, normalised (see the docstring)."""
    out = []
    for i, one in enumerate(records):
        one = copy(one)
        one.resource.SetInParent()
        scoped = one.scope_logs[0]
        scoped.scope.SetInParent()
        lr = scoped.log_records[0]
        lr.body.SetInParent()
        _normalise_value(lr.body)
        for kv in lr.attributes:
            kv.value.SetInParent()
            _normalise_value(kv.value)
        out.append(f"--- record {i}\n" + text_format.MessageToString(one, as_utf8=True))
    return "\n".join(out)


def records_of(requests_: list) -> list:
    """The forwarded records in one list: requests in the order of their first record's
    time, records in their order within a request."""
    blocks = [_one_per_record(r) for r in requests_ if _record_count(r)]
    blocks.sort(key=lambda b: b[0].scope_logs[0].log_records[0].time_unix_nano)
    return [one for block in blocks for one in block]


def _diff(a: str, b: str, an: str, bn: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), an, bn, lineterm="", n=4))


def check(what: str, got: dict, want: list):
    """Each side's forwarded records equal the model's `want` (LogRecords), and each other."""
    want_text = canonical([_alone(lr) for lr in want])
    texts = {name: canonical(records_of(reqs)) for name, reqs in got.items()}
    problems = [f"{name} differs from the model:\n{_diff(want_text, t, 'model', name)}"
                for name, t in texts.items() if t != want_text]
    if len(texts) == 2 and texts["otelcol"] != texts["redline"]:
        problems.append("otelcol and redline differ:\n" + _diff(texts["otelcol"], texts["redline"], "otelcol",
                                                                 "redline"))
    assert not problems, f"{what}:\n" + "\n\n".join(problems)


def _alone(lr) -> logs_pb2.ResourceLogs:
    """A modelled record under otelcol's resource and scope: both empty."""
    one = logs_pb2.ResourceLogs()
    one.scope_logs.add().log_records.add().CopyFrom(lr)
    return one


def exchange(sides: dict, data: bytes, want: list, what: str, receiver: str = MAIN):
    """`data` sent to every side on a connection of its own; what they forwarded compared
    with the modelled records `want`."""
    for side in sides.values():
        side.send(data, receiver)
    check(what, taken(sides, len(want)), want)


# ---------------------------------------------------------------- otelcol's conversion, as a model


def time_nanos(t) -> int:
    """timeFromTimestamp, then pcommon.NewTimestampFromTime: seconds (an integer, signed as
    int64) or an EventTime's seconds and nanoseconds (two uint32, the nanoseconds may exceed
    a second), as Go's UnixNano computes them: wrapping to 64 bits."""
    if isinstance(t, msgpack.ExtType):
        seconds, nanos = struct.unpack(">II", t.data)
    else:
        seconds, nanos = t, 0
    return (seconds * 1_000_000_000 + nanos) % U64


def _items(m) -> list:
    """A record or map's pairs as sent, keys as text (bin keys are read as strings)."""
    pairs = m.pairs if isinstance(m, Pairs) else list(m.items())
    return [(k.decode() if isinstance(k, bytes) else k, v) for k, v in pairs]


def put_value(av, v):
    """parseToAttributeValue: what msgp's ReadIntf made of `v`, into `av`. A nil leaves `av`
    as it is (empty for a new attribute, the body it had for the body)."""
    if v is None:
        return
    av.Clear()
    if isinstance(v, bool):
        av.bool_value = v
    elif isinstance(v, int):
        if v > INT64_MAX:  # a uint64 beyond int64: its decimal text
            av.string_value = str(v)
        else:
            av.int_value = v
    elif isinstance(v, float):
        av.double_value = v
    elif isinstance(v, F32):
        av.double_value = v.as_double
    elif isinstance(v, str):
        av.string_value = v
    elif isinstance(v, (bytes, Str)):
        av.string_value = (v.data if isinstance(v, Str) else v).decode()
    elif isinstance(v, msgpack.ExtType):  # (a namedtuple: before the arrays)
        if v.code in (0, 3, 4, 5):
            raise TypeError(f"no model for {v!r}")
        # An extension msgp does not know: a *RawExtension{Data, Type}, through %v.
        av.string_value = "&{[%s] %d}" % (" ".join(str(b) for b in v.data), v.code)
    elif isinstance(v, (list, tuple)):
        av.array_value.SetInParent()
        for x in v:
            put_value(av.array_value.values.add(), x)
    elif isinstance(v, (dict, Pairs)):
        av.kvlist_value.SetInParent()
        for k, x in dict(_items(v)).items():  # a Go map: a repeated key's last value
            put_value(av.kvlist_value.values.add(key=k).value, x)
    else:
        raise TypeError(f"no model for {v!r}")


def log_record(mode: str, tag: str, t, record) -> logs_pb2.LogRecord:
    """One event entry as otelcol makes it a LogRecord: `message` and `log` are the body
    (the last one sent wins, a nil keeps the one before), every other key an attribute in
    the order sent (a repeated key keeps its first place), and `fluent.tag`: first in
    message mode (a record key of that name replaces it there), last in forward and packed
    forward mode (where it replaces a record key of that name)."""
    lr = logs_pb2.LogRecord(time_unix_nano=time_nanos(t))
    attrs: dict = {}
    if mode == "message":
        attrs["fluent.tag"] = common_pb2.AnyValue(string_value=tag)
    for k, v in _items(record):
        if k in ("message", "log"):
            put_value(lr.body, v)
        else:
            attrs[k] = common_pb2.AnyValue()
            put_value(attrs[k], v)
    if mode != "message":
        attrs["fluent.tag"] = common_pb2.AnyValue(string_value=tag)
    for k, av in attrs.items():
        lr.attributes.add(key=k).value.CopyFrom(av)
    return lr


def ack(chunk: str) -> bytes:
    """The answer to a chunked event: {"ack": chunk}, the str in its shortest form."""
    return b"\x81\xa3ack" + msgpack.packb(chunk)


# ---------------------------------------------------------------- what is sent

RECORDS = [
    ("strings", {"message": "hello", "s": "plain", "empty": "", "unicode": "héllo ✓ 日本語",
                 "str8": "a" * 40, "str16": "b" * 300, "str32": "c" * 70_000}),
    ("bin", {"b": b"bytes", "empty": b"", "bin16": b"z" * 300, "bin32": b"y" * 70_000}),
    ("integers", {"zero": 0, "fixint": 127, "uint8": 255, "uint16": 65_535, "uint32": 2**32 - 1,
                  "uint64": 2**32, "int64_max": INT64_MAX, "above_int64": INT64_MAX + 1, "uint64_max": U64 - 1,
                  "neg_fixint": -32, "int8": -128, "int16": -32_768, "int32": -(2**31), "int64_min": -(2**63)}),
    ("floats", {"f64": 1.5, "tiny": 5e-324, "neg_zero": -0.0, "inf": float("inf"), "neg_inf": float("-inf"),
                "nan": float("nan"), "f32": F32(0.1), "f32_whole": F32(2.0), "f32_inf": F32(float("inf"))}),
    ("bool and nil", {"t": True, "f": False, "nil": None}),
    ("nested", {"map": {"b": 1, "a": "x", "c": {"d": [1, "two", 3.0, None, True, b"bin", {"e": "f"}]},
                        "nil": None, "bin": b"v", "big": U64 - 1, "f32": F32(0.5)},
                "arrays": [[], {}, [1, [2, [3]]], None, -1], "empty_map": {}, "empty_array": [],
                "map16": {f"n{i:02d}": i for i in range(20)}, "array16": list(range(20))}),
    ("a map16 record", {f"k{i:02d}": i for i in range(20)}),
    ("bin keys", Pairs([(b"bin.key", "v"), ("s", 1), (b"message", "a body from a bin key")])),
    ("repeated keys", Pairs([("a", 1), ("b", 2), ("a", "three"), ("message", "first"), ("message", "second")])),
    ("fluent.tag in the record", Pairs([("x", 1), ("fluent.tag", "from the record"), ("y", 2)])),
    ("fluent.tag nil in the record", {"fluent.tag": None, "z": 0}),
    ("an empty record", {}),
    ("an empty key", {"": "the empty key"}),
    ("extension values", {"ext7": msgpack.ExtType(7, b"\x01\x02\x03\x04"), "ext100": msgpack.ExtType(100, b""),
                          "ext16": msgpack.ExtType(42, bytes(range(16)))}),
    ("message", {"message": "m", "level": "info"}),
    ("log", {"log": "l", "stream": "stdout"}),
    ("message, then log", {"message": "m", "log": "l"}),
    ("log, then message", {"log": "l", "message": "m"}),
    ("a map body", {"message": {"k": "v", "n": 1, "inner": {"z": [1]}}}),
    ("an array body", {"log": [1, "a", None, {"k": b"v"}]}),
    ("an int body", {"message": 42}),
    ("a uint64 body", {"message": U64 - 1}),
    ("a double body", {"log": 2.5}),
    ("a bool body", {"log": False}),
    ("a bin body", {"log": b"raw line\n"}),
    ("a nil body", {"message": None, "k": "v"}),
    ("a nil after a body", {"message": "kept", "log": None}),
    ("a body after a map body", {"message": {"a": 1}, "log": "replaced"}),
    ("keys like message", {"Message": "x", "msg": "y", "LOG": "z", "logs": "w", "message ": "v"}),
]

TIMES = [0, 1, T0, 2**31 - 1, 2**32 - 1, 2**32, 10**10, 18_446_744_073, INT64_MAX, U64 - 1, -1, -(2**63),
         event_time(0, 0), event_time(T0, 999_999_999), event_time(T0, 1), event_time(1, 1_500_000_000),
         event_time(2**32 - 1, 2**32 - 1), event_time(2**31, 0), EventTime(T0 + 0.25)]

TAGS = ["", "a", "app.access", "x" * 31, "y" * 32, "z" * 255, "long." * 60, "w" * 70_000, "tag ✓ 日本"]

MODES = ("message", "forward", "packed", "packed as str", "packed gzip", "packed gzip, two members")


def encode_event(mode: str, tag: str, entries: list) -> bytes:
    """`entries` ((time, record) pairs) as one event of `mode` (any but message)."""
    if mode == "forward":
        return forward(tag, entries)
    body = packed_entries(entries)
    if mode == "packed":
        return packed(tag, body)
    if mode == "packed as str":
        return packed(tag, body, as_str=True)
    if mode == "packed gzip":
        return packed(tag, gzip_members(body), {"compressed": "gzip"})
    assert mode == "packed gzip, two members", mode
    half = len(entries) // 2
    return packed(tag, gzip_members(packed_entries(entries[:half]), packed_entries(entries[half:])),
                  {"compressed": "gzip"})


def deliver(sides: dict, mode: str, tag: str, entries: list, what: str, receiver: str = MAIN):
    """`entries` sent to every side in `mode` (message mode: one event at a time, each
    forwarded before the next is sent), compared with the model."""
    if mode == "message":
        problems: list = []
        for i, (t, r) in enumerate(entries):
            collect(problems, f"{what}, entry {i}", exchange, sides, message(tag, t, r),
                    [log_record("message", tag, t, r)], f"{what}, entry {i}", receiver)
        report(problems, len(entries))
        return
    exchange(sides, encode_event(mode, tag, entries), [log_record("forward", tag, t, r) for t, r in entries], what,
             receiver)


# ---------------------------------------------------------------- the tests


def test_fluent_logger_client(sides):
    """FluentSender, as an application uses it: several events on one connection, with
    integer times to `fluentforward`, then (nanosecond_precision) with EventTime times to
    `fluent_forward`."""
    plain = [
        ("access", T0, {"message": "GET /index.html", "status": 200, "bytes": 5120, "ua": "curl/8"}),
        (None, T0 + 1, {"log": "started", "pid": 4242, "ok": True, "ratio": 0.75}),
        ("error", T0 + 2, {"message": "boom", "tags": ["a", "b"], "ctx": {"user": "u1", "id": 7}, "none": None}),
        ("bin", T0 + 3, {"payload": b"\x00\x01binary", "message": "with bin"}),
    ]
    precise = [
        ("ns", EventTime(T0 + 10, 123_456_789), {"message": "with nanoseconds"}),
        ("ns", EventTime.from_unix_nano((T0 + 11) * 10**9 + 1), {"log": "one nanosecond in"}),
        ("float", T0 + 12.5, {"message": "a float time, made an EventTime by the sender"}),
    ]
    for name, side in sides.items():
        for receiver, events, nanos in ((MAIN, plain, False), (CURRENT, precise, True)):
            sender = FluentSender("app", host="127.0.0.1", port=side.address(receiver)[1],
                                  nanosecond_precision=nanos)
            try:
                for label, t, record in events:
                    assert sender.emit_with_time(label, t, record), (name, label, sender.last_error)
            finally:
                sender.close()
    # The sender makes a float time an EventTime of its own when nanosecond_precision is on.
    want = [log_record("message", f"app.{label}" if label else "app", EventTime(t) if isinstance(t, float) else t,
                       record) for label, t, record in plain + precise]
    check("FluentSender's events", taken(sides, len(want)), want)
    settle(sides)


@pytest.mark.parametrize("mode", MODES)
def test_records(sides, mode):
    """Every record of RECORDS (one entry each, a second apart), in `mode`."""
    entries = [(T0 + i, record) for i, (_, record) in enumerate(RECORDS)]
    if mode == "message":  # one event per record: a failure names the record
        problems: list = []
        for i, (what, record) in enumerate(RECORDS):
            collect(problems, what, exchange, sides, message("rec.msg", T0 + i, record),
                    [log_record("message", "rec.msg", T0 + i, record)], what)
        settle(sides)
        report(problems, len(RECORDS))
        return
    deliver(sides, mode, f"rec.{mode}", entries, f"RECORDS, {mode}")
    settle(sides)


@pytest.mark.parametrize("mode", ("message", "forward", "packed gzip"))
def test_times(sides, mode):
    entries = [(t, {"message": f"time {i}"}) for i, t in enumerate(TIMES)]
    deliver(sides, mode, "times", entries, f"TIMES, {mode}")
    settle(sides)


@pytest.mark.parametrize("mode", ("message", "forward", "packed"))
def test_tags(sides, mode):
    """Tags of every str length form (fixstr, str8, str16, str32): otelcol's mode detection
    reads the tag's length before the second element."""
    problems: list = []
    for i, tag in enumerate(TAGS):
        what = f"a tag of {len(tag.encode())} bytes"
        collect(problems, what, deliver, sides, mode, tag, [(T0 + i, {"message": what})], what)
    settle(sides)
    report(problems, len(TAGS))


def test_current_type_name(sides):
    """`fluent_forward`, the type's current name, takes every mode as `fluentforward` does."""
    entries = [(T0 + i, record) for i, (_, record) in enumerate(RECORDS[:6])]
    for mode in ("forward", "packed gzip"):
        deliver(sides, mode, "current", entries, f"fluent_forward, {mode}", receiver=CURRENT)
    deliver(sides, "message", "current", entries[:2], "fluent_forward, message", receiver=CURRENT)
    settle(sides)


@dataclass
class Acked:
    """A case of options: the bytes sent on one connection, the chunks acknowledged on it
    (in order), the records forwarded."""

    what: str
    data: bytes
    chunks: list
    records: list = field(default_factory=list)


def _acked_cases() -> list:
    one = (T0, {"message": "one", "k": 1})
    two = [(T0 + 1, {"log": "two"}), (T0 + 2, {"log": "three", "n": None})]

    def msg(tag: str, options) -> bytes:
        return message(tag, one[0], one[1], options)

    return [
        Acked("message, a chunk", msg("ack.m", {"chunk": "c1"}), ["c1"], [log_record("message", "ack.m", *one)]),
        Acked("message, a chunk of 40 characters (str8)", msg("ack.m", {"chunk": "k" * 40}), ["k" * 40],
              [log_record("message", "ack.m", *one)]),
        Acked("message, a chunk of 300 characters (str16)", msg("ack.m", {"chunk": "q" * 300}), ["q" * 300],
              [log_record("message", "ack.m", *one)]),
        Acked("message, a non-ASCII chunk", msg("ack.m", {"chunk": "é✓"}), ["é✓"],
              [log_record("message", "ack.m", *one)]),
        Acked("forward, chunk and size as Fluent Bit sends them",
              forward("ack.f", two, {"size": 2, "chunk": "p8n9gmxTQVC8/nh2wlKKeQ=="}), ["p8n9gmxTQVC8/nh2wlKKeQ=="],
              [log_record("forward", "ack.f", *e) for e in two]),
        Acked("packed, a size that is wrong (ignored)",
              packed("ack.p", packed_entries(two), {"size": 99, "chunk": "s"}), ["s"],
              [log_record("forward", "ack.p", *e) for e in two]),
        Acked("packed gzip, chunk, size and compressed as fluentd sends them",
              packed("ack.g", gzip_members(packed_entries(two)), {"chunk": "gz", "size": 2, "compressed": "gzip"}),
              ["gz"], [log_record("forward", "ack.g", *e) for e in two]),
        Acked("two chunked events in one write: two acks, in order",
              msg("ack.m", {"chunk": "first"}) + forward("ack.f", two, {"chunk": "second"}), ["first", "second"],
              [log_record("message", "ack.m", *one)] + [log_record("forward", "ack.f", *e) for e in two]),
        Acked("a chunk that is an int: no ack", msg("ack.m", {"chunk": 5}), [],
              [log_record("message", "ack.m", *one)]),
        Acked("a chunk that is bin: no ack", msg("ack.m", {"chunk": b"bin"}), [],
              [log_record("message", "ack.m", *one)]),
        Acked("an empty chunk: no ack", msg("ack.m", {"chunk": ""}), [], [log_record("message", "ack.m", *one)]),
        Acked("a nil chunk: no ack", msg("ack.m", {"chunk": None}), [], [log_record("message", "ack.m", *one)]),
        Acked("empty options", forward("ack.f", two, {}), [], [log_record("forward", "ack.f", *e) for e in two]),
        Acked("unknown options", msg("ack.m", {"x": [1, {"y": b"z"}], "size": "many", "compressed": None}), [],
              [log_record("message", "ack.m", *one)]),
        Acked("compressed: text (the entries are read as they are)",
              packed("ack.p", packed_entries(two), {"compressed": "text"}), [],
              [log_record("forward", "ack.p", *e) for e in two]),
        Acked("compressed: GZIP, not gzip (read as they are)",
              packed("ack.p", packed_entries(two), {"compressed": "GZIP", "chunk": "upper"}), ["upper"],
              [log_record("forward", "ack.p", *e) for e in two]),
        Acked("packed without entries (bin): taken, nothing forwarded", packed("ack.p", b"", {"chunk": "none"}),
              ["none"], []),
        Acked("packed without entries (gzip of nothing)", packed("ack.p", gzip_members(b""),
                                                                  {"compressed": "gzip", "chunk": "gz0"}), ["gz0"], []),
    ]


ACKED = _acked_cases()


def _read(conn: socket.socket, n: int, timeout: float) -> tuple:
    """Up to `n` bytes, waiting at most `timeout`: (bytes, "open" | "closed")."""
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while len(data) < n and time.monotonic() < deadline:
            conn.settimeout(max(deadline - time.monotonic(), 0.01))
            got = conn.recv(n - len(data))
            if not got:
                return data, "closed"
            data += got
    except socket.timeout:
        pass
    except ConnectionError:
        return data, "closed"
    return data, "open"


def test_options_and_acks(sides):
    """Each case on a connection of its own: the acks (raw bytes) arrive on it, nothing
    else does, it stays open; the records are forwarded."""
    problems: list = []
    for case in ACKED:
        def one():
            want_acks = b"".join(ack(c) for c in case.chunks)

            def run(side):
                with side.connect() as conn:
                    conn.sendall(case.data)
                    acks, _ = _read(conn, len(want_acks), 5)
                    got = taken({side.name: side}, len(case.records))[side.name]
                    extra, state = _read(conn, 1, 0.1)
                    return acks, got, extra, state

            answers = on_all(sides, run)
            check(case.what, {name: a[1] for name, a in answers.items()}, case.records)
            shown = {name: (a[0], a[2], a[3]) for name, a in answers.items()}
            assert all(a[0] == want_acks for a in answers.values()), f"acks (want {want_acks!r}): {shown}"
            assert all(a[2] == b"" and a[3] == "open" for a in answers.values()), \
                f"more than the acks, or the connection closed: {shown}"
        collect(problems, case.what, one)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(ACKED))


# (datagram, answer): the first byte of what was sent, whatever it is; nothing for nothing.
HEARTBEATS = [(b"\x00", b"\x00"), (b"hello", b"h"), (b"\xff" * 2000, b"\xff"), (b"", None), (b"\x01", b"\x01")]


def test_heartbeats(sides):
    """Heartbeats on both receivers' UDP ports."""
    problems: list = []
    for name, side in sides.items():
        for receiver in RECEIVERS:
            def one():
                got = [heartbeat(side.address(receiver), d, 0.5 if want else 0.3) for d, want in HEARTBEATS]
                assert got == [want for _, want in HEARTBEATS], got
            collect(problems, f"{name} {receiver}", one)
    report(problems, len(sides) * len(RECEIVERS))


# ---------------------------------------------------------------- bad input

GOOD = message("good", T0, {"message": "complete", "n": 1})
GOOD_RECORD = log_record("message", "good", T0, {"message": "complete", "n": 1})
ENTRIES = [(T0 + 1, {"message": "first"}), (T0 + 2, {"log": "second", "k": "v"})]
ENTRIES_BODY = packed_entries(ENTRIES)
ENTRY_RECORDS = [log_record("forward", "p", *e) for e in ENTRIES]
AT_ONCE, AT_OUR_EOF = "at once", "at our end of stream"


@dataclass
class Bad:
    """Bytes sent on one connection; the records otelcol forwards of them; when it closes the
    connection (AT_ONCE, or only AT_OUR_EOF: it waits for more); how many parse failures
    and parsed events it counts."""

    what: str
    data: bytes
    records: list
    closes: str
    failures: int
    parsed: int = 0


BAD = [
    Bad("not MessagePack: a line of text", b"hello world\n", [], AT_ONCE, 0),
    Bad("JSON", b'{"message": "x"}\n', [], AT_ONCE, 0),
    # The length of the array is checked when the event is decoded (a parse failure), its
    # tag and second element before, to choose the mode (an error that counts nowhere).
    Bad("a message of two elements", enc(["t", T0]), [], AT_ONCE, 1),
    Bad("a message of five elements", enc(["t", T0, {}, {}, {}]), [], AT_ONCE, 1),
    Bad("a forward event of four elements", enc(["t", [[T0, {}]], {}, {}]), [], AT_ONCE, 1),
    Bad("a tag that is an int", enc([5, T0, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("a tag that is nil", enc([None, T0, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("a tag that is bin", enc([b"t", T0, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("an event array with a 16-bit length (its second byte read as the tag's type)",
        b"\xdc\x00\x03" + enc("t") + enc(T0) + enc({"message": "x"}), [], AT_ONCE, 0),
    Bad("a float time (no mode has one)", enc(["t", 1.5, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("a nil time", enc(["t", None, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("a bool time", enc(["t", True, {"message": "x"}]), [], AT_ONCE, 0),
    Bad("a map as second element", enc(["t", {}, {}]), [], AT_ONCE, 0),
    Bad("a float time in a forward entry", forward("t", [(1.5, {"message": "x"})]), [], AT_ONCE, 1),
    Bad("a string time in a forward entry", forward("t", [("1700000000", {"message": "x"})]), [], AT_ONCE, 1),
    # A str second element makes a PackedForward event: the time's text is read as entries.
    Bad("a string time (message)", enc(["t", "1700000000", {"message": "x"}]), [], AT_ONCE, 1),
    Bad("an empty string time (message): a PackedForward without entries, the record its options",
        enc(["t", "", {"message": "x"}]), [], AT_OUR_EOF, 0, parsed=1),
    Bad("an EventTime of 4 bytes", enc(["t", msgpack.ExtType(0, b"\x00\x00\x00\x01"), {}]), [], AT_ONCE, 1),
    Bad("an EventTime of 16 bytes", enc(["t", msgpack.ExtType(0, bytes(16)), {}]), [], AT_ONCE, 1),
    Bad("an extension time of type 7", enc(["t", msgpack.ExtType(7, bytes(8)), {}]), [], AT_ONCE, 1),
    Bad("a MessagePack timestamp (extension -1) time", enc(["t", Raw(b"\xd6\xff" + struct.pack(">I", T0)), {}]),
        [], AT_ONCE, 1),
    Bad("a record that is a str", enc(["t", T0, "record"]), [], AT_ONCE, 1),
    Bad("a record that is an array", enc(["t", T0, ["message", "x"]]), [], AT_ONCE, 1),
    Bad("a record that is nil", enc(["t", T0, None]), [], AT_ONCE, 1),
    Bad("a record key that is an int", enc(["t", T0, Pairs([(1, "x")])]), [], AT_ONCE, 1),
    Bad("a record key that is nil", enc(["t", T0, Pairs([(None, "x")])]), [], AT_ONCE, 1),
    # Bin keys are read at the record's top level only: nested maps take str keys.
    Bad("a bin key in a nested map", enc(["t", T0, {"m": Pairs([(b"k", 1)])}]), [], AT_ONCE, 1),
    Bad("an int key in a nested map", enc(["t", T0, {"m": Pairs([(1, 1)])}]), [], AT_ONCE, 1),
    Bad("options that are nil", enc(["t", T0, {"message": "x"}, None]), [], AT_ONCE, 1),
    Bad("options that are an array", enc(["t", T0, {"message": "x"}, ["chunk", "c"]]), [], AT_ONCE, 1),
    Bad("an option key that is an int", enc(["t", T0, {"message": "x"}, Pairs([(1, "c")])]), [], AT_ONCE, 1),
    Bad("an option key that is bin", enc(["t", T0, {"message": "x"}, Pairs([(b"chunk", "c")])]), [], AT_ONCE, 1),
    Bad("a complete event, then garbage, then a complete event (never read)",
        GOOD + b"\x93\x05\x05" + message("t", T0, {"message": "lost"}), [GOOD_RECORD], AT_ONCE, 0, parsed=1),
    # Truncated events: otelcol waits for the rest; at the client's end of stream it counts a
    # parse failure only where msgp reads past the end inside an object (io.ErrUnexpectedEOF:
    # the rest of an int, the bytes of a str or bin, a str's, array's or map's length), not
    # where it finds nothing or only peeks (io.EOF: nothing where an object starts, the tag and
    # the byte after it that choose the mode, a float, an extension).
    Bad("a complete event, then one cut inside a str", GOOD + message("t", T0, {"message": "hello"})[:-2],
        [GOOD_RECORD], AT_OUR_EOF, 1, parsed=1),
    Bad("a complete event, then one cut inside its int time", GOOD + message("t", T0, {})[:4],
        [GOOD_RECORD], AT_OUR_EOF, 1, parsed=1),
    Bad("a complete event, then one cut before its record", GOOD + message("t", T0, {"message": "x"})[:8],
        [GOOD_RECORD], AT_OUR_EOF, 0, parsed=1),
    Bad("a complete event, then one cut inside a float value", GOOD + message("t", T0, {"f": 1.5})[:-4],
        [GOOD_RECORD], AT_OUR_EOF, 0, parsed=1),
    Bad("a complete event, then one cut inside its EventTime", GOOD + message("t", event_time(T0), {})[:7],
        [GOOD_RECORD], AT_OUR_EOF, 0, parsed=1),
    Bad("a complete event, then the first byte of one", GOOD + b"\x93", [GOOD_RECORD], AT_OUR_EOF, 0, parsed=1),
    Bad("a complete event, then one cut inside its tag", GOOD + b"\x93\xa5ab", [GOOD_RECORD], AT_OUR_EOF, 0,
        parsed=1),
    Bad("[tag] alone (the mode is read from the byte after the tag)", enc(["t"]), [], AT_OUR_EOF, 0),
    Bad("a connection without data", b"", [], AT_OUR_EOF, 0),
    # PackedForward entries are decoded once the whole event is read. Entries that end where
    # an entry or an object should start end the entries (the cut one is dropped); entries
    # cut inside an object, or followed by anything but an entry, refuse the whole event.
    Bad("packed entries cut after an entry's array header: the entries before are taken",
        packed("p", ENTRIES_BODY + b"\x92"), ENTRY_RECORDS, AT_OUR_EOF, 0, parsed=1),
    Bad("packed entries cut after an entry's time: the entries before are taken",
        packed("p", ENTRIES_BODY + b"\x92" + enc(T0)), ENTRY_RECORDS, AT_OUR_EOF, 0, parsed=1),
    Bad("packed entries cut inside a str: the event is refused",
        packed("p", ENTRIES_BODY + packed_entries([(T0, {"message": "cut"})])[:-2]), [], AT_ONCE, 1),
    Bad("packed entries followed by an int: the event is refused", packed("p", ENTRIES_BODY + b"\x05"), [],
        AT_ONCE, 1),
    Bad("packed entries that are not arrays", packed("p", enc({"message": "x"})), [], AT_ONCE, 1),
    Bad("packed gzip entries cut after an entry's array header: the entries before are taken",
        packed("p", gzip_members(ENTRIES_BODY + b"\x92"), {"compressed": "gzip"}), ENTRY_RECORDS, AT_OUR_EOF, 0,
        parsed=1),
    Bad("gzip declared, the entries plain", packed("p", ENTRIES_BODY, {"compressed": "gzip"}), [], AT_ONCE, 1),
    Bad("a gzip member cut short", packed("p", gzip_members(ENTRIES_BODY)[:-4], {"compressed": "gzip"}), [],
        AT_ONCE, 1),
    Bad("a gzip member, then garbage", packed("p", gzip_members(ENTRIES_BODY) + b"garbage", {"compressed": "gzip"}),
        [], AT_ONCE, 1),
    Bad("gzip entries without the compressed option", packed("p", gzip_members(ENTRIES_BODY)), [], AT_ONCE, 1),
    Bad("packed entries that are a map (the mode is unknown)", enc(["p", {}, {"compressed": "gzip"}]), [],
        AT_ONCE, 0),
]

FLUENT = ("otelcol_fluent_events_parsed", "otelcol_fluent_parse_failures", "otelcol_fluent_records_generated",
          "otelcol_fluent_opened_connections", "otelcol_fluent_closed_connections")
RECEIVER_COUNTERS = ("otelcol_receiver_accepted_log_records", "otelcol_receiver_refused_log_records",
                     "otelcol_receiver_failed_log_records")


def _counts(expo) -> dict:
    out = {name: total(expo, name) for name in FLUENT}
    out.update({(c, r): total(expo, c, receiver=r, transport="http") for c in RECEIVER_COUNTERS for r in RECEIVERS})
    return out


def _closes(side: Side, data: bytes) -> str:
    """`data` sent on a connection of its own: when the receiver closed it."""
    with side.connect() as conn:
        try:
            conn.sendall(data)
        except ConnectionError:
            return AT_ONCE
        got, state = _read(conn, 1, OPEN_WAIT)
        assert got == b"", f"{side.name} answered {got!r}"
        if state == "closed":
            return AT_ONCE
        conn.shutdown(socket.SHUT_WR)
        got, state = _read(conn, 1, 5)
        assert got == b"", f"{side.name} answered {got!r}"
        return AT_OUR_EOF if state == "closed" else "never"


def test_bad_input(sides):
    """Each BAD case on a connection of its own, then a good chunked event on another: what
    was forwarded of the case (and the good event), when the connection was closed, the
    counters' deltas (a parse failure, the events parsed, the two connections opened and
    closed)."""
    problems: list = []
    for case in BAD:
        def one():
            before = {name: _counts(side.telemetry()) for name, side in sides.items()}
            closed = on_all(sides, lambda side: _closes(side, case.data))

            def good(side):
                with side.connect() as conn:
                    conn.sendall(message("good.after", T0 + 100, {"message": "after"}, {"chunk": "after"}))
                    return _read(conn, len(ack("after")), 5)[0]

            acks = on_all(sides, good)
            after = log_record("message", "good.after", T0 + 100, {"message": "after"})
            check("what was forwarded", taken(sides, len(case.records) + 1), case.records + [after])
            assert closed == {name: case.closes for name in sides}, f"closed {closed} (want {case.closes})"
            assert acks == {name: ack("after") for name in sides}, f"the good event after it: acks {acks}"
            records = len(case.records) + 1
            want = {key: 0 for key in before[next(iter(sides))]}
            want.update({
                "otelcol_fluent_events_parsed": case.parsed + 1,
                "otelcol_fluent_parse_failures": case.failures,
                "otelcol_fluent_records_generated": records,
                "otelcol_fluent_opened_connections": 2,
                "otelcol_fluent_closed_connections": 2,
                ("otelcol_receiver_accepted_log_records", MAIN): records,
            })
            assert_counts_moved(sides, _counts, before, want)
        collect(problems, case.what, one)
    collect(problems, "after the last case", settle, sides)
    report(problems, len(BAD))


# ---------------------------------------------------------------- own telemetry


def test_receiver_counters(sides):
    """Accepted log records by receiver (transport "http"); the fluent counters, one set for
    both receivers; a refused event counts as a parse failure and nowhere else."""
    before = {name: _counts(side.telemetry()) for name, side in sides.items()}
    entries = [(T0 + i, {"message": f"n{i}"}) for i in range(3)]
    deliver(sides, "message", "count", entries[:1], "one message")
    deliver(sides, "forward", "count", entries, "a forward event of three", receiver=CURRENT)
    deliver(sides, "packed gzip", "count", entries[:2], "a packed event of two")
    deliver(sides, "packed", "count", entries, "a packed event of three", receiver=CURRENT)
    for side in sides.values():
        side.send(enc(["t", T0, "not a record"]), CURRENT)
    settle(sides)
    want = {key: 0 for key in before[next(iter(sides))]}
    want.update({
        "otelcol_fluent_events_parsed": 4,
        "otelcol_fluent_parse_failures": 1,
        "otelcol_fluent_records_generated": 9,
        "otelcol_fluent_opened_connections": 5,
        "otelcol_fluent_closed_connections": 5,
        ("otelcol_receiver_accepted_log_records", MAIN): 3,
        ("otelcol_receiver_accepted_log_records", CURRENT): 6,
    })
    assert_counts_moved(sides, _counts, before, want)


def test_telemetry_names_types_and_labels(sides):
    """The families as otelcol serves them (after the tests before, every one has a sample):
    the fluent ones are gauges (pdata's UpDownCounters) without labels, the receiver's are
    counters by receiver and transport."""
    want = {**{name: ("gauge", {()}) for name in FLUENT},
            **{name: ("counter", {(("receiver", r), ("transport", "http")) for r in RECEIVERS})
               for name in RECEIVER_COUNTERS}}
    got = {}
    for side_name, side in sides.items():
        expo = side.telemetry()
        got[side_name] = {name: (expo.families[name].type if name in expo.families else None, labels_of(expo, name))
                          for name in want}
    # Redline serves no receiver `failed` counters: otelcol counts nothing in them unless a
    # feature gate splits errors from refusals (docs/compatibility.md §36).
    if "redline" in got:
        assert got["redline"].pop("otelcol_receiver_failed_log_records") == (None, set())
    problems = [f"{side_name}: {name}: {g} (want {want[name]})"
                for side_name, families in got.items() for name, g in families.items() if g != want[name]]
    assert not problems, "\n".join(problems)
