"""Parity of the `redaction` processor: attributes removed, masked (with `****` or a hash),
allowed and ignored, log bodies walked, and the `redaction.*` summary attributes, as
otelcol-contrib's redactionprocessor (v0.161.0) does them.

One collector pair runs nine instances side by side, each in a `traces`, `metrics` and `logs`
pipeline of its own whose `otlp` exporter marks its requests with `x-parity: <instance>`:

  - `redaction`, with no settings: every attribute removed, no summary;
  - `redaction/debug`: `allowed_keys`, `ignored_keys`, `ignored_key_patterns`,
    `blocked_key_patterns`, `blocked_values` (a card number that matches twice in a value, a
    secret, and `^(?:none)?$`, which matches the empty string: an int, bool, double, bytes,
    array, kvlist or empty value reads as "" and becomes the string `****`) and
    `allowed_values`, `summary: debug`;
  - `redaction/types`: the same lists with `redact_all_types` (values read as their text:
    `4111111111111111`, `0.25`, `1e+21`, `1.5e-7`, `true`, base64, JSON with sorted keys) and
    `hash_function: sha1`, `summary: info`;
  - `redaction/sha3`: `allow_all_keys` (its `allowed_keys` unused), `hash_function: SHA3`
    (SHA3-256; the name in any case), `summary: debug`;
  - `redaction/md5`: `allow_all_keys`, `redact_all_types`, `hash_function: md5`,
    `summary: silent`;
  - `redaction/hmac256`: `allow_all_keys`, `allowed_values: ["^$"]` (every value that reads
    as "" is allowed), `hash_function: hmac-sha256` with a 32-byte key, `summary: info`;
  - `redaction/hmac512`: `allowed_keys`, a blocked key pattern, `redact_all_types`,
    `hash_function: Hmac-SHA512` with a 64-byte key, `summary: debug`;
  - `redaction/zeros`: `allow_all_keys`, `blocked_values: ["0*"]`, which matches the empty
    string between every two characters (Go's ReplaceAll: not right after another match);
  - `redaction/upper`: `summary: DEBUG`, which otelcol compares as written: no summary.

Traces, logs and metrics go in two requests each (gRPC, then OTLP/HTTP), one at a time (each
sent once both collectors forwarded the one before, so that no exporter queue holds two:
Redline's would send them as one request). Their resource, scope, span, span event, log
record and data point attributes (every metric kind) hold: allowed keys with values that are
allowed, blocked, blocked twice, "none" and "", of every type; keys not allowed; keys
ignored by name and by pattern; blocked keys (one also ignored, one not allowed, one with an
allowed value, one with a value of two lines: each line masked whole), keys present twice
(both removed when not allowed: pdata's swap-remove moves the last attribute into each hole),
and the processor's own attributes already set (`redaction.masked.keys` merged, a count
added to, a count that is a string, an empty key list, `redaction.allowed.*` and
`redaction.body.*`, which are not always allowed). Span links, span names, exemplars and
metric metadata keep theirs. Log bodies: strings, an int, a double, a bool, bytes, none, a
string that `allowed_values` allows (left alone with no body summary at all), maps with
nested maps and arrays (keys checked against `allowed_keys` at every level, `a.b` and
`a.[0]` paths in the summary, a blocked key masked even when its value is allowed, a map
under a blocked key becoming `****`, a key twice) and an array.

The test carries its own model of the processor (`Redaction`, written from otelcol's
processor.go): for each attribute map, in order, ignored keys are kept, keys not allowed
(the processor's `redaction.{redacted,masked}.{keys,count}` and `redaction.ignored.count`
always are) are listed for removal, a value whose text matches `allowed_values` is allowed, a
key matching `blocked_key_patterns` is masked whole (`.*`), and every `blocked_values` regex
that matches replaces its matches (Go's ReplaceAll rules, `****` or the hash's hex) and the
value becomes a string when that changed it; then the listed keys are removed one by one, and
the summary set (`debug`: the sorted keys, merged with the existing list; `info` and `debug`:
the counts, added to an existing int). What each collector forwards is compared exactly
(every field and the order of attributes) with the model and with the other collector.

Last, the settings: bad regexes in each list (Go's syntax: no lookahead, no repetition of a
repetition, at most 1000 repeats), an unknown hash function, a missing or short HMAC key, an
unknown key and a bool that is not one are refused by both (`redline validate` naming the
key); odd but valid settings (a summary level otelcol does not know, a brace that starts no
repeat, which Go reads as a literal brace, ...) are taken by both; the database and URL sanitizers,
which Redline does not implement, are taken when disabled and refused by Redline when enabled.

Anything that differs from the model fails; a difference between the two collectors fails
unless docs/compatibility.md lists it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from collections import Counter
from decimal import Decimal

import pytest
import yaml
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import helpers
from otlp_signals import SIGNAL, SIGNALS
from pair import SIDES, rewrite
from test_parity_groupbyattrs import _swap_remove, canonical, received, request_diffs, wait_requests
from test_parity_signals import answer_diffs, send
from traffic import anyvalue, kv

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
TRANSPORTS = ("grpc", "http/protobuf")

CARD = r"\b4[0-9]{3}(?:-?[0-9]{4}){3}\b"
SECRET = r"secret-[a-z]+"
NONE_OR_EMPTY = r"^(?:none)?$"
ALLOWED_KEYS = ["service.name", "host", "user.email", "api_token", "card", "note", "empty", "status", "count",
                "ratio", "huge", "tiny", "ok", "raw", "list", "map", "nothing", "mail_token", "zeros",
                "redaction.masked.keys",  # the processor's own: allowed anyway
                # log body keys
                "user", "email", "name", "items", "qty"]
LISTS = {
    "allowed_keys": ALLOWED_KEYS,
    "ignored_keys": ["internal"],
    "ignored_key_patterns": [r"^trace\.", r"\.uid$"],
    "blocked_key_patterns": ["token", r"^pass(word)?$"],
    "blocked_values": [CARD, SECRET, NONE_OR_EMPTY],
    "allowed_values": [r".+@mycompany\.com$", r"^ok-[0-9]+$"],
}
KEY32 = "0123456789abcdef0123456789ABCDEF"
KEY64 = KEY32 + "fedcba9876543210FEDCBA9876543210"
INSTANCES = {  # id -> settings, as written in the config
    "redaction": None,
    "redaction/debug": {**LISTS, "summary": "debug"},
    "redaction/types": {**LISTS, "redact_all_types": True, "hash_function": "sha1", "summary": "info"},
    "redaction/sha3": {"allow_all_keys": True, "allowed_keys": ["unused"], "ignored_keys": ["internal"],
                       "blocked_key_patterns": ["token"], "blocked_values": [CARD, SECRET],
                       "hash_function": "SHA3", "summary": "debug"},
    "redaction/md5": {"allow_all_keys": True, "blocked_key_patterns": ["^api_"], "blocked_values": [SECRET, CARD],
                      "redact_all_types": True, "hash_function": "md5", "summary": "silent"},
    "redaction/hmac256": {"allow_all_keys": True, "blocked_values": [SECRET, CARD], "allowed_values": ["^$"],
                          "blocked_key_patterns": ["token"], "hash_function": "hmac-sha256", "hmac_key": KEY32,
                          "summary": "info"},
    "redaction/hmac512": {"allowed_keys": ALLOWED_KEYS, "blocked_key_patterns": ["token"], "blocked_values": [CARD],
                          "redact_all_types": True, "hash_function": "Hmac-SHA512", "hmac_key": KEY64,
                          "summary": "debug"},
    "redaction/zeros": {"allow_all_keys": True, "blocked_values": ["0*"], "summary": "debug"},
    # otelcol compares the summary level as written: `DEBUG` is neither debug nor info.
    "redaction/upper": {"allow_all_keys": True, "blocked_values": [SECRET], "summary": "DEBUG"},
}


def _suffix(pid: str) -> str:
    return pid.split("/", 1)[1] if "/" in pid else "default"


def config(instances: dict = INSTANCES) -> str:
    pipelines = {f"{signal}/{_suffix(pid)}": {"receivers": ["otlp"], "processors": [pid],
                                               "exporters": [f"otlp/{_suffix(pid)}"]}
                 for pid in instances for signal in SIGNALS}
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "processors": dict(instances),
        "exporters": {f"otlp/{_suffix(pid)}": {"endpoint": "sink:4317", "tls": {"insecure": True},
                                               "headers": {"x-parity": pid}} for pid in instances},
        "service": {"pipelines": pipelines},
    }, sort_keys=False)


# ---------------------------------------------------------------- the traffic

EMPTY = common_pb2.AnyValue()
CARD_NO = "4111111111111111"


def kvlist(*pairs) -> common_pb2.AnyValue:
    """A kvlist value from (key, value) pairs, a key possibly twice."""
    return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[kv(k, v) for k, v in pairs]))


# The attributes of spans, events, log records and data points, in order, a key possibly twice.
ITEM = [
    ("user.email", "jane@mycompany.com"),  # allowed value
    ("api_token", "tok-1\nline two"),  # blocked key: `.*` masks each line
    ("card", "paid 4111-1111-1111-1111, refund 4222222222222222."),  # two matches
    ("note", "secret-abc, then secret-def and 4333333333333333"),  # two regexes, one twice
    ("empty", ""),
    ("status", "none"),
    ("count", 4111111111111111),
    ("ratio", 0.25),
    ("huge", 1e21),
    ("tiny", 1.5e-7),
    ("ok", True),
    ("raw", b"\x00\x01\xfe"),
    ("list", ["secret-x", 7, 2.5, "4111111111111111"]),
    ("map", {"z": "secret-y", "a": 1, "c": [True, EMPTY], "b": 100.0}),
    ("nothing", EMPTY),
    ("session", "s-1"),  # not allowed
    ("trace.origin", "secret-kept"),  # ignored by pattern
    ("internal", "secret-kept"),  # ignored by name, not in allowed_keys
    ("card", "4333333333333333"),  # twice
    ("session", "s-2"),  # twice, not allowed
    ("mail_token", "mail jane@mycompany.com"),  # blocked key, allowed value
    ("other_token", "t-1"),  # blocked key, not allowed
    ("trace.token", "secret-x"),  # blocked key, ignored
    ("zeros", "a00b0c 100"),
    ("k8s.pod.uid", 42),  # ignored by pattern
]
# The processor's own attributes, as an earlier redaction left them.
PRIOR = [
    ("redaction.masked.keys", "zeta,alpha"),
    ("redaction.masked.count", 2),
    ("redaction.redacted.count", "3"),  # not an int: read as 0
    ("redaction.redacted.keys", ""),  # empty: nothing to merge
    ("redaction.allowed.keys", "prior"),  # not always allowed
    ("redaction.allowed.count", 1),
    ("redaction.ignored.count", 5),
    ("redaction.body.masked.keys", "body"),
    ("redaction.body.masked.count", 1),
    ("card", "4111111111111111"),
    ("session", "s-3"),
]
FEW = [("status", "ok-7"), ("host", "h-secret-abc"), ("trace.id", "x")]
RESOURCE = [("service.name", "shop"), ("host", "secret-host"), ("deployment.token", "abc"), ("k8s.node.uid", "u"),
            ("service.name", "shop-twice"), ("redaction.redacted.count", 1)]
SCOPE = [("team", "web"), ("card", "4111111111111111"), ("trace.sampler", True), ("count", 0)]

STRING_BODY = "user jane paid 4111111111111111 with secret-abc; none 0 00"
ALLOWED_BODY = "card 4111111111111111 of jane@mycompany.com"  # allowed: no masking, no summary
MAP_BODY = kvlist(
    ("user", {"email": "jane@mycompany.com", "name": "Jane secret-abc", "api_token": 12345, "session": "s"}),
    ("card", "4111111111111111"),
    ("items", [{"card": "4222-2222-2222-2222", "qty": 2}, "secret-xyz", 7, ["none", ""], {"session": 1}]),
    ("session", "top"),
    ("internal", "secret-ignored"),
    ("trace.id", "secret-ignored-too"),
    ("api_token", {"nested": "map"}),  # a blocked key's map: masked as ""
    ("mail_token", "jane@mycompany.com"),  # masked: in a body, the key is checked first
    ("count", 0),
    ("session", "again"),
    ("raw", b"secret-abc"),
    ("zeros", 1000),
)
ARRAY_BODY = ["secret-abc", {"card": "4111111111111111", "session": "x", "email": "a@mycompany.com"},
              [1, "none", ["secret-q"]], 4222222222222222]


def _attrs(pairs: list) -> list:
    return [kv(k, v) for k, v in pairs]


def _span(k: int, n: int, attrs: list, events: list) -> trace_pb2.Span:
    sp = trace_pb2.Span(
        trace_id=(0xAD << 64 | 16 * k + n).to_bytes(16, "big"), span_id=(0xAD << 40 | 16 * k + n).to_bytes(8, "big"),
        name=f"GET /secret-abc/{n}", kind=2, start_time_unix_nano=T0 + n * SEC, end_time_unix_nano=T0 + (n + 1) * SEC,
        attributes=_attrs(attrs), status=trace_pb2.Status(code=n % 3, message="secret-status"))
    for i, ev in enumerate(events):
        sp.events.add(name=f"ev{i}", time_unix_nano=T0 + n * SEC, attributes=_attrs(ev))
    sp.links.add(trace_id=sp.trace_id, span_id=sp.span_id, attributes=_attrs([("session", "link"), ("card", CARD_NO)]))
    return sp


def _log(n: int, attrs: list, body) -> logs_pb2.LogRecord:
    rec = logs_pb2.LogRecord(time_unix_nano=T0 + n * SEC, observed_time_unix_nano=T0 + n * SEC, severity_number=9,
                             severity_text="INFO", attributes=_attrs(attrs), event_name="secret-event")
    if body is not None:
        rec.body.CopyFrom(anyvalue(body))
    return rec


def _metric(name: str, kind: str, point_attrs: list) -> metrics_pb2.Metric:
    m = metrics_pb2.Metric(name=name, unit="1", description="secret-abc", metadata=_attrs([("session", "meta")]))
    data = getattr(m, kind)
    data.SetInParent()
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    for i, attrs in enumerate(point_attrs):
        common = {"attributes": _attrs(attrs), "start_time_unix_nano": T0, "time_unix_nano": T0 + (i + 1) * SEC}
        if kind in ("gauge", "sum"):
            p = data.data_points.add(**common, as_int=i)
            p.exemplars.add(time_unix_nano=T0, as_double=1.5, filtered_attributes=_attrs([("card", CARD_NO)]))
        elif kind == "histogram":
            data.data_points.add(**common, count=3, sum=4.5, bucket_counts=[1, 2], explicit_bounds=[1.0])
        elif kind == "exponential_histogram":
            data.data_points.add(**common, count=2, sum=3.0, scale=1, zero_count=1,
                                 positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(offset=1,
                                                                                            bucket_counts=[1]))
        else:
            data.data_points.add(**common, count=2, sum=3.0, quantile_values=[
                metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0)])
    return m


def build(signal: str, k: int):
    """Request k of `signal`: a resource with two scopes and one with a few attributes; the
    second request has the item attribute lists in another order."""
    lists = [ITEM, PRIOR + ITEM[:6], FEW, []] if k == 0 else [PRIOR + ITEM[::-1], FEW, ITEM[6:], []]
    req = SIGNAL[signal].request()
    sig = SIGNAL[signal]
    for r, (res_attrs, scopes) in enumerate([(RESOURCE, [SCOPE, []]), (FEW + PRIOR[:3], [FEW])]):
        rs = getattr(req, sig.resources).add()
        rs.resource.attributes.extend(_attrs(res_attrs))
        for s, scope_attrs in enumerate(scopes):
            ss = getattr(rs, sig.scopes).add()
            ss.scope.name, ss.scope.version = f"parity.redaction.{r}.{s}", "1.0"
            ss.scope.attributes.extend(_attrs(scope_attrs))
            if signal == "traces":
                ss.spans.extend(_span(k, 4 * r + n, attrs, [lists[(n + 1) % 4], lists[(n + 2) % 4]])
                                for n, attrs in enumerate(lists))
            elif signal == "logs":
                bodies = [STRING_BODY, MAP_BODY, ALLOWED_BODY, None, 4222222222222222, ARRAY_BODY, 0.5, False,
                          b"\x00secret-abc", kvlist(), EMPTY, "", "none"]
                bodies = bodies if k == 0 else bodies[::-1]
                ss.log_records.extend(_log(n, lists[n % 4], body) for n, body in enumerate(bodies))
            else:
                kinds = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
                ss.metrics.extend(_metric(f"parity.{kind}", kind, [lists[(n + i) % 4] for i in range(2)])
                                  for n, kind in enumerate(kinds))
    return req


# ---------------------------------------------------------------- the model

OWN_KEYS = {"redaction.redacted.keys", "redaction.redacted.count", "redaction.masked.keys",
            "redaction.masked.count", "redaction.ignored.count"}
MASK_ALL = re.compile(".*")
HASHES = {"sha1": hashlib.sha1, "sha3": hashlib.sha3_256, "md5": hashlib.md5}
HMACS = {"hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}


def go_replace_all(rx: re.Pattern, s: str, repl) -> str:
    """Go's Regexp.ReplaceAllStringFunc: matches searched from successive positions; an empty
    match right after the previous match is not replaced; at least one character forward."""
    out, last, pos = [], 0, 0
    while pos <= len(s):
        m = rx.search(s, pos)
        if m is None:
            break
        out.append(s[last:m.start()])
        if m.end() > last or m.start() == 0:
            out.append(repl(m.group(0)))
        last = m.end()
        width = 1 if pos < len(s) else 0
        if pos + width > m.end():
            pos += width
        elif pos + 1 > m.end():
            pos += 1
        else:
            pos = m.end()
    out.append(s[last:])
    return "".join(out)


def go_float(f: float) -> str:
    """pdata's text of a double (and encoding/json's): ES6 number formatting."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f != 0 and (abs(f) < 1e-6 or abs(f) >= 1e21):
        mantissa, exp = repr(f).split("e")
        return f"{mantissa}e{'-' if int(exp) < 0 else '+'}{abs(int(exp))}"
    text = format(Decimal(repr(f)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_json(v: common_pb2.AnyValue) -> str:
    """encoding/json of pdata's AsRaw(): map keys sorted (the last of a key twice), bytes in
    base64, an empty value null."""
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        last = {e.key: e.value for e in v.kvlist_value.values}
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{go_json(last[k])}" for k in sorted(last)) + "}"
    if kind == "array_value":
        return "[" + ",".join(go_json(x) for x in v.array_value.values) + "]"
    if kind in ("string_value", "bytes_value"):
        return json.dumps(as_string(v), ensure_ascii=False)
    return as_string(v) if kind else "null"


def as_string(v: common_pb2.AnyValue) -> str:
    """pdata's Value.AsString()."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "int_value":
        return str(v.int_value)
    if kind == "double_value":
        return go_float(v.double_value)
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    if kind in ("kvlist_value", "array_value"):
        return go_json(v)
    return ""


def str_of(v: common_pb2.AnyValue) -> str:
    """pdata's Value.Str(): "" for anything but a string."""
    return v.string_value if v.WhichOneof("value") == "string_value" else ""


def set_str(v: common_pb2.AnyValue, s: str):
    v.Clear()
    v.string_value = s


def _get(attrs, key: str):
    return next((a.value for a in attrs if a.key == key), None)


def _put(attrs, key: str, value):
    slot = _get(attrs, key)
    if slot is None:
        slot = attrs.add(key=key).value
    slot.Clear()
    if isinstance(value, str):
        slot.string_value = value
    else:
        slot.int_value = value


class Redaction:
    """otelcol's redaction processor with `settings`, applied to a copy of a request."""

    def __init__(self, settings: dict | None):
        s = settings or {}
        self.allow_all = s.get("allow_all_keys", False)
        self.allowed = set(s.get("allowed_keys") or ()) | OWN_KEYS
        self.ignored = set(s.get("ignored_keys") or ())
        self.ignored_patterns = [re.compile(p) for p in s.get("ignored_key_patterns") or ()]
        self.blocked_keys = [re.compile(p) for p in s.get("blocked_key_patterns") or ()]
        self.blocked_values = [re.compile(p) for p in s.get("blocked_values") or ()]
        self.allowed_values = [re.compile(p) for p in s.get("allowed_values") or ()]
        self.hash = (s.get("hash_function") or "").lower()
        self.hmac_key = (s.get("hmac_key") or "").encode()
        self.all_types = s.get("redact_all_types", False)
        self.summary = s.get("summary") or ""

    # -- the checks, in the processor's order
    def ignore(self, k: str) -> bool:
        return k in self.ignored or any(rx.search(k) for rx in self.ignored_patterns)

    def redact(self, k: str) -> bool:
        return not self.allow_all and k not in self.allowed

    def allow_value(self, s: str) -> bool:
        return any(rx.search(s) for rx in self.allowed_values)

    def mask_key(self, k: str) -> bool:
        return any(rx.search(k) for rx in self.blocked_keys)

    def hashed(self, match: str) -> str:
        if self.hash in HASHES:
            return HASHES[self.hash](match.encode()).hexdigest()
        if self.hash in HMACS:
            return hmac.new(self.hmac_key, match.encode(), HMACS[self.hash]).hexdigest()
        return "****"

    def mask(self, s: str, rx: re.Pattern) -> str:
        return go_replace_all(rx, s, self.hashed)

    def blocked(self, s: str) -> str:
        for rx in self.blocked_values:
            if rx.search(s):
                s = self.mask(s, rx)
        return s

    # -- attribute maps
    def attributes(self, attrs):
        redacted, masked, allowed, ignored = [], [], [], []
        for a in attrs:
            k, v = a.key, a.value
            if self.ignore(k):
                ignored.append(k)
                continue
            if self.redact(k):
                redacted.append(k)
                continue
            s = as_string(v) if self.all_types else str_of(v)
            if self.allow_value(s):
                allowed.append(k)
                continue
            if self.mask_key(k):
                masked.append(k)
                set_str(v, self.mask(s, MASK_ALL))
                continue
            out = self.blocked(s)
            if out != s:
                masked.append(k)
                set_str(v, out)
        for k in redacted:
            _swap_remove(attrs, k)
        self.summarize(attrs, redacted, "redaction.redacted")
        self.summarize(attrs, masked, "redaction.masked")
        self.summarize(attrs, allowed, "redaction.allowed")
        self.summarize(attrs, ignored, "redaction.ignored", with_keys=False)

    def summarize(self, attrs, keys: list, prefix: str, with_keys: bool = True):
        if not keys or self.summary not in ("debug", "info"):
            return
        if self.summary == "debug" and with_keys:
            listed = list(keys)
            existing = _get(attrs, f"{prefix}.keys")
            if existing is not None and str_of(existing):
                listed += str_of(existing).split(",")
            _put(attrs, f"{prefix}.keys", ",".join(sorted(listed)))
        existing = _get(attrs, f"{prefix}.count")
        before = existing.int_value if existing is not None and existing.WhichOneof("value") == "int_value" else 0
        _put(attrs, f"{prefix}.count", len(keys) + before)

    # -- log bodies
    def body(self, record):
        found = {"redacted": [], "masked": [], "allowed": [], "ignored": []}
        body = record.body
        kind = body.WhichOneof("value")
        if kind == "kvlist_value":
            self.walk_map(None, body.kvlist_value.values, found)
        elif kind == "array_value":
            for i, x in enumerate(body.array_value.values):
                self.walk(f"[{i}]", x, found)
        else:
            s = as_string(body)
            if self.allow_value(s):
                return  # no summary at all, not even `redaction.body.allowed.*`
            out = self.blocked(s)
            if out != s:
                found["masked"].append("body")
                set_str(body, out)
        for what in ("redacted", "masked", "allowed", "ignored"):
            self.summarize(record.attributes, found[what], f"redaction.body.{what}", with_keys=what != "ignored")

    def walk_map(self, path, entries, found):
        gone = []
        for e in entries:
            here = e.key if path is None else f"{path}.{e.key}"
            if self.ignore(e.key):
                found["ignored"].append(here)
            elif self.redact(e.key):
                gone.append(e.key)
            elif self.mask_key(e.key):
                found["masked"].append(here)
                set_str(e.value, self.mask(str_of(e.value), MASK_ALL))
            else:
                self.walk(here, e.value, found)
        for k in gone:
            _swap_remove(entries, k)
            found["redacted"].append(k if path is None else f"{path}.{k}")

    def walk(self, path: str, v, found):
        kind = v.WhichOneof("value")
        if kind == "kvlist_value":
            self.walk_map(path, v.kvlist_value.values, found)
        elif kind == "array_value":
            for i, x in enumerate(v.array_value.values):
                self.walk(f"{path}.[{i}]", x, found)
        else:
            s = as_string(v)
            if self.allow_value(s):
                found["allowed"].append(path)
                return
            out = self.blocked(s)
            if out != s:
                found["masked"].append(path)
                set_str(v, out)

    # -- requests
    def apply(self, signal: str, req):
        sig = SIGNAL[signal]
        out = sig.request()
        out.CopyFrom(req)
        for rs in getattr(out, sig.resources):
            self.attributes(rs.resource.attributes)
            for ss in getattr(rs, sig.scopes):
                self.attributes(ss.scope.attributes)
                for item in getattr(ss, sig.items):
                    if signal == "traces":
                        self.attributes(item.attributes)
                        for ev in item.events:
                            self.attributes(ev.attributes)
                    elif signal == "logs":
                        self.attributes(item.attributes)
                        self.body(item)
                    else:
                        kind = item.WhichOneof("data")
                        for p in getattr(item, kind).data_points if kind else ():
                            self.attributes(p.attributes)
        return out


def test_model_follows_go():
    """A few of the model's answers checked by hand against Go's documented behaviour."""
    stars = lambda m: "****"  # noqa: E731
    assert go_replace_all(re.compile("0*"), "a00b", stars) == "****a****b****"
    assert go_replace_all(re.compile("x*"), "", stars) == "****"
    assert go_replace_all(MASK_ALL, "one\ntwo", stars) == "****\n****"
    assert go_replace_all(re.compile(CARD), "4111111111111111 4222-2222-2222-2222", stars) == "**** ****"
    assert [go_float(f) for f in (0.25, 1e21, 1.5e-7, 100.0, 2.5)] == ["0.25", "1e+21", "1.5e-7", "100", "2.5"]
    assert go_json(anyvalue({"z": "q", "a": [1, 2.0, EMPTY, b"\x01"]})) == '{"a":[1,2,null,"AQ=="],"z":"q"}'


# ---------------------------------------------------------------- the tests


def test_redacted_as_the_model_redacts(pair_factory, allow):
    pair = pair_factory(config(), flush_interval=None)
    models = {pid: Redaction(settings) for pid, settings in INSTANCES.items()}
    want: dict = {}
    wrong, apart, detail = [], [], []  # against the model; between the collectors
    sent = 0
    for signal in ("traces", "logs", "metrics"):
        for k, transport in enumerate(TRANSPORTS):
            req = build(signal, k)
            seen = send(pair, signal, transport, req)
            apart += answer_diffs(f"redaction: {signal} request {k} over {transport}", seen)
            assert seen["otelcol"].startswith(("OK", "200")), seen
            for pid, model in models.items():
                want.setdefault((pid, signal), Counter())[canonical(model.apply(signal, req))] += 1
            sent += len(models)
            # One request at a time in each exporter: Redline's would send two queued ones as one.
            wait_requests(pair, sent)
    wait_requests(pair, sent, quiet=0.5)

    got = {side: received(pair, side) for side in SIDES}
    for side in SIDES:
        wrong += request_diffs(want, got[side], "the model", side, detail)
    apart += request_diffs(got["otelcol"], got["redline"], "otelcol", "redline", detail)
    problems = wrong + allow.unexplained(apart)
    assert not problems, (f"{len(problems)} difference(s):\n  " + "\n  ".join(problems)
                          + ("\n\n" + "\n\n".join(detail[:8]) if detail else ""))


def validate_both(otelcol_bin, redline_bin, tmp_path, settings) -> tuple:
    """otelcol's and Redline's `validate` of a config whose only processor is `redaction`
    with `settings`, in all three pipelines."""
    cfg, _ = rewrite(yaml.safe_load(config({"redaction": settings})), "127.0.0.1:1", None)
    path = tmp_path / "redaction.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return tuple(helpers.run([b, "validate", "--config", path], timeout=60) for b in (otelcol_bin, redline_bin))


def _names(out, key: str) -> bool:
    return re.search(rf"processors\.redaction\.{re.escape(key)}(?![\w.])", out.stderr + out.stdout) is not None


# Settings otelcol refuses (a bad regex only when it builds the pipelines, which `validate`
# does): what it says, and the key `redline validate` names.
REFUSED = [
    ("bad blocked_values regex", {"blocked_values": [CARD, "["]}, "failed to process block list", "blocked_values"),
    ("bad allowed_values regex", {"allowed_values": ["(a"]}, "failed to process allow list", "allowed_values"),
    ("bad blocked_key_patterns regex", {"blocked_key_patterns": ["a**"]}, "invalid nested repetition operator",
     "blocked_key_patterns"),
    ("bad ignored_key_patterns regex", {"ignored_key_patterns": ["a(?=b)"]}, "failed to process ignore keys list",
     "ignored_key_patterns"),
    # Go's own limits: no repetition of a repetition, at most 1000 repeats.
    ("regex with a repeat count over 1000", {"allowed_values": ["a{1001}"]}, "invalid repeat count",
     "allowed_values"),
    ("unknown hash function", {"hash_function": "sha256"}, "unknown HashFunction sha256", "hash_function"),
    ("hmac without a key", {"hash_function": "hmac-sha256"},
     'hmac_key must not be empty when hash_function is "hmac-sha256"', "hmac_key"),
    ("hmac-sha256 key of 31 bytes", {"hash_function": "HMAC-SHA256", "hmac_key": KEY32[:31]},
     'hmac_key must be at least 32 bytes long for "hmac-sha256", got 31 bytes', "hmac_key"),
    ("hmac-sha512 key of 63 bytes", {"hash_function": "hmac-sha512", "hmac_key": KEY64[:63]},
     'hmac_key must be at least 64 bytes long for "hmac-sha512", got 63 bytes', "hmac_key"),
    ("unknown key", {"allow_all_keys": True, "allowed_key": ["a"]}, "has invalid keys: allowed_key", "allowed_key"),
    ("allow_all_keys not a bool", {"allow_all_keys": "yes"}, "'allow_all_keys' expected type 'bool'",
     "allow_all_keys"),
]
ACCEPTED = [
    ("no settings", None),
    ("empty settings", {}),
    ("hash function names in any case", {"hash_function": "Sha1", "summary": "info"}),
    ("an empty hash function", {"hash_function": ""}),
    ("hmac-sha512 key of 64 bytes", {"hash_function": "HMAC-SHA512", "hmac_key": KEY64}),
    ("an hmac key without hmac", {"hash_function": "md5", "hmac_key": "short"}),
    ("summary of another word", {"summary": "verbose"}),  # otelcol: no summary
    # Go reads `{` that starts no valid repeat as a literal brace.
    ("regex with a literal brace", {"blocked_values": ["a{,5}", "{x}"]}),
    ("empty lists", {"allowed_keys": [], "blocked_values": [], "allowed_values": [], "ignored_keys": [],
                     "ignored_key_patterns": [], "blocked_key_patterns": []}),
    ("sanitizers disabled", {
        "db_sanitizer": {"sql": {"enabled": False, "attributes": ["db.statement"]}, "redis": {"enabled": False},
                         "valkey": {"enabled": False}, "memcached": {"enabled": False},
                         "mongo": {"enabled": False}, "opensearch": {"enabled": False}, "es": {"enabled": False},
                         "sanitize_span_name": True},
        "url_sanitizer": {"enabled": False, "attributes": ["http.url"], "sanitize_span_name": False}}),
]
# The database and URL sanitizers otelcol runs when enabled; Redline does not implement them
# and refuses them enabled ("not supported"), naming the key, rather than forward the queries
# and URLs unsanitized. A documented difference (docs/compatibility.md §42).
UNSUPPORTED = [
    ("url_sanitizer", {"url_sanitizer": {"enabled": True}}, "url_sanitizer.enabled"),
    ("db_sanitizer sql", {"db_sanitizer": {"sql": {"enabled": True}}}, "db_sanitizer.sql.enabled"),
    ("db_sanitizer redis", {"allow_all_keys": True, "db_sanitizer": {"redis": {"enabled": True}}},
     "db_sanitizer.redis.enabled"),
    ("db_sanitizer mongo", {"db_sanitizer": {"mongo": {"enabled": True, "attributes": ["db.query"]}}},
     "db_sanitizer.mongo.enabled"),
]


@pytest.mark.parametrize("settings,message,key", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_bad_settings_are_refused_by_both(otelcol_bin, redline_bin, tmp_path, settings, message, key):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode != 0 and message in peer.stderr, peer.stderr[-2000:]
    assert ours.returncode != 0 and _names(ours, key), \
        f"redline validate: {ours.returncode}\n{ours.stdout}{ours.stderr}"


@pytest.mark.parametrize("settings", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_settings_taken_by_both(otelcol_bin, redline_bin, tmp_path, settings):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode == 0, peer.stderr[-2000:]
    assert ours.returncode == 0, ours.stderr[-2000:]


@pytest.mark.parametrize("settings,key", [c[1:] for c in UNSUPPORTED], ids=[c[0] for c in UNSUPPORTED])
def test_enabled_sanitizers_are_refused_by_redline(otelcol_bin, redline_bin, tmp_path, settings, key):
    peer, ours = validate_both(otelcol_bin, redline_bin, tmp_path, settings)
    assert peer.returncode == 0, peer.stderr[-2000:]
    text = ours.stderr + ours.stdout
    assert ours.returncode != 0 and _names(ours, key) and "not supported" in text, \
        f"redline validate: {ours.returncode}\n{text}"
