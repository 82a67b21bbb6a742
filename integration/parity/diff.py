"""What differs between otelcol-contrib and Redline, as one line per difference.

Each difference is a short line of a fixed form (`family only in redline: NAME`, `value
differs: SERIES: otelcol=X redline=Y`, ...), so that docs/compatibility.md can allow it with
a pattern. A pattern is the line itself with `*` standing for any text; nothing else in it is
special.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from expo import Exposition, series_text

SIDES = ("otelcol", "redline")


# ---------------------------------------------------------------- /metrics


def _fmt(v: float) -> str:
    return repr(float(v))


def _project(family, drop: set) -> dict:
    """Samples keyed by (name, labels without `drop`); samples that become one are summed."""
    out: dict = defaultdict(float)
    for (name, labels), s in family.samples.items():
        out[(name, tuple((k, v) for k, v in labels if k not in drop))] += s.value
    return out


def _bucket_of_missing_histogram(key, other: dict) -> bool:
    """A bucket of a histogram series the other side lacks altogether: its `_count` is
    reported, its buckets would only repeat that."""
    name, labels = key
    if not name.endswith("_bucket"):
        return False
    count = (name[: -len("_bucket")] + "_count", tuple((k, v) for k, v in labels if k != "le"))
    return count not in other


def _label_names(family) -> set:
    return {k for (_, labels) in family.samples for k, _ in labels}


def compare_metrics(otelcol: Exposition, redline: Exposition, rel_tol: float = 1e-9) -> list[str]:
    """Every difference between two text expositions: families, HELP/TYPE, label names,
    series and values (a relative tolerance for float sums only)."""
    diffs: list[str] = []
    a, b = otelcol.families, redline.families
    for name in sorted(set(a) - set(b)):
        diffs.append(f"family only in otelcol: {name}")
    for name in sorted(set(b) - set(a)):
        diffs.append(f"family only in redline: {name}")
    for name in sorted(set(a) & set(b)):
        fa, fb = a[name], b[name]
        if fa.help != fb.help:
            diffs.append(f"HELP differs: {name}: otelcol={fa.help!r} redline={fb.help!r}")
        if fa.type != fb.type:
            diffs.append(f"TYPE differs: {name}: otelcol={fa.type} redline={fb.type}")
        la, lb = _label_names(fa), _label_names(fb)
        for label in sorted(la - lb):
            diffs.append(f"label only in otelcol: {name} {label}")
        for label in sorted(lb - la):
            diffs.append(f"label only in redline: {name} {label}")
        # Series are compared on the labels both sides have: a label only one side adds is
        # reported once above, not once per series.
        drop = la ^ lb
        pa, pb = _project(fa, drop), _project(fb, drop)
        for side, mine, other in (("otelcol", pa, pb), ("redline", pb, pa)):
            for key in sorted(set(mine) - set(other)):
                if not _bucket_of_missing_histogram(key, other):
                    diffs.append(f"series only in {side}: {series_text(*key)}")
        for key in sorted(set(pa) & set(pb)):
            va, vb = pa[key], pb[key]
            if va != vb and not (va == va and vb == vb and abs(va - vb) <= rel_tol * max(abs(va), abs(vb))):
                diffs.append(f"value differs: {series_text(*key)}: otelcol={_fmt(va)} redline={_fmt(vb)}")
    return diffs


def one_side_labels(otelcol: Exposition, redline: Exposition) -> set:
    """Label names that only one side puts on a family both serve."""
    out = set()
    for name in set(otelcol.families) & set(redline.families):
        out |= _label_names(otelcol.families[name]) ^ _label_names(redline.families[name])
    return out


def _exemplars(expo: Exposition, drop: set) -> dict:
    return {(s.name, tuple((k, v) for k, v in s.labels if k not in drop)): s.exemplar
            for f in expo.families.values() for s in f.samples.values() if s.exemplar is not None}


def _samples(expo: Exposition, drop: set) -> set:
    return {(s.name, tuple((k, v) for k, v in s.labels if k not in drop))
            for f in expo.families.values() for s in f.samples.values()}


def compare_exemplars(otelcol: Exposition, redline: Exposition, drop: set) -> list[str]:
    """Which series carry an exemplar (and with which labels), from scrapes that asked for
    OpenMetrics; `drop` are the label names only one side has (see one_side_labels)."""
    diffs = []
    kinds = {side: "openmetrics" if "openmetrics" in e.content_type else "text"
             for side, e in (("otelcol", otelcol), ("redline", redline))}
    if kinds["otelcol"] != kinds["redline"]:
        diffs.append(f"format for an OpenMetrics scrape: otelcol={kinds['otelcol']} redline={kinds['redline']}")
    ea, eb = _exemplars(otelcol, drop), _exemplars(redline, drop)
    sa, sb = _samples(otelcol, drop), _samples(redline, drop)
    for key in sorted(set(ea) - set(eb)):
        if key in sb:
            diffs.append(f"exemplar only in otelcol: {series_text(*key)}")
    for key in sorted(set(eb) - set(ea)):
        if key in sa:
            diffs.append(f"exemplar only in redline: {series_text(*key)}")
    for key in sorted(set(ea) & set(eb)):
        if ea[key] != eb[key]:
            diffs.append(f"exemplar labels differ: {series_text(*key)}: otelcol={ea[key]} redline={eb[key]}")
    return diffs


# ---------------------------------------------------------------- forwarded spans


def _span_key(span) -> str:
    return f"{span.trace_id.hex()}/{span.span_id.hex()}/{span.name!r}"


def _attrs_by_key(msg) -> bytes:
    """`msg` serialized with its attributes (and those of its events and links) sorted by key.
    OTLP attributes are a map, their order carries no meaning, and otelcol's is not stable:
    OTTL map literals are Go maps, so `merge_maps` inserts their keys in random order."""
    norm = type(msg)()
    norm.CopyFrom(msg)
    parts = [norm] + list(getattr(norm, "events", ())) + list(getattr(norm, "links", ()))
    for part in parts:
        ordered = sorted((_copy_kv(kv) for kv in part.attributes), key=lambda kv: kv.key)
        del part.attributes[:]
        part.attributes.extend(ordered)
    return norm.SerializeToString(deterministic=True)


def _copy_kv(kv):
    out = type(kv)()
    out.CopyFrom(kv)
    return out


def _canonical(requests) -> Counter:
    """Each forwarded span with its resource and scope, serialized deterministically, so that
    how a collector groups spans into requests does not matter."""
    out: Counter = Counter()
    for req in requests:
        for rs in req.resource_spans:
            res = _attrs_by_key(rs.resource) + b"|" + rs.schema_url.encode()
            for ss in rs.scope_spans:
                scope = _attrs_by_key(ss.scope) + b"|" + ss.schema_url.encode()
                for sp in ss.spans:
                    out[(_span_key(sp), res, scope, _attrs_by_key(sp))] += 1
    return out


def compare_spans(otelcol_requests, redline_requests) -> list[str]:
    """Spans forwarded by one collector and not (or not byte-equal) by the other."""
    ca, cb = _canonical(otelcol_requests), _canonical(redline_requests)
    only_a, only_b = ca - cb, cb - ca
    diffs = []
    by_key_b = {k[0]: k for k in only_b}
    for k in sorted(only_a):
        if k[0] in by_key_b:
            other = by_key_b.pop(k[0])
            parts = [p for p, i in (("resource", 1), ("scope", 2), ("span", 3)) if k[i] != other[i]]
            diffs.append(f"forwarded span differs: {k[0]}: {', '.join(parts)}")
        else:
            diffs.append(f"span forwarded only by otelcol: {k[0]}")
    for key in sorted(by_key_b):
        diffs.append(f"span forwarded only by redline: {key}")
    return diffs


# ---------------------------------------------------------------- the allow-list


@dataclass
class Entry:
    title: str
    patterns: list
    regexes: list = field(default_factory=list)
    used: int = 0


def _glob(pattern: str) -> re.Pattern:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$", re.S)


class AllowList:
    """The differences docs/compatibility.md allows: each `##`/`###` section with a fenced
    ```parity-allow block is one entry, one pattern per line."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[Entry] = []
        title, block = None, None
        for line in path.read_text().splitlines():
            if block is not None:
                if line.startswith("```"):
                    self.entries.append(Entry(title or "(untitled)", block, [_glob(p) for p in block]))
                    block = None
                elif line.strip():
                    block.append(line.strip())
            elif line.startswith("#"):
                title = line.lstrip("#").strip()
            elif line.strip() == "```parity-allow":
                block = []
        if not self.entries:
            raise ValueError(f"{path}: no ```parity-allow blocks")

    def unexplained(self, diffs: list[str]) -> list[str]:
        """The differences no entry allows (and count which entries were needed)."""
        left = []
        for d in diffs:
            hits = [e for e in self.entries if any(r.match(d) for r in e.regexes)]
            for e in hits:
                e.used += 1
            if not hits:
                left.append(d)
        return left

    def check(self, scenario: str, diffs: list[str]):
        """Fail the calling test with every difference docs/compatibility.md does not list."""
        left = self.unexplained(diffs)
        if left:
            shown = "\n  ".join(left[:60]) + (f"\n  ... and {len(left) - 60} more" if len(left) > 60 else "")
            raise AssertionError(
                f"{scenario}: {len(left)} difference(s) between otelcol-contrib and Redline that "
                f"{self.path.name} does not list (fix Redline, or add an entry with its reason):\n  {shown}"
            )


# ---------------------------------------------------------------- answers to clients


def _partial(answer) -> str:
    """A client's view of an answer: the status, and for a success the partial_success
    (rejected count, whether a message came with it). Error texts differ between any two
    implementations and are not compared; status codes and counts are."""
    import json

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    if answer.status not in ("OK", "200"):
        return answer.status
    if answer.content_type == "application/json":
        doc = json.loads(answer.body or b"{}")
        ps = doc.get("partialSuccess") or doc.get("partial_success") or {}
        rejected, message = int(ps.get("rejectedSpans") or ps.get("rejected_spans") or 0), ps.get("errorMessage", "")
    else:
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(answer.body or b"")
        rejected, message = resp.partial_success.rejected_spans, resp.partial_success.error_message
    return f"{answer.status} rejected={rejected}" + (" with message" if message else "")


def compare_answers(case: str, answers: dict) -> list[str]:
    a, b = _partial(answers["otelcol"]), _partial(answers["redline"])
    return [] if a == b else [f"answer differs: {case}: otelcol={a} redline={b}"]
