"""A Prometheus exposition read into families, for comparing two collectors' /metrics.

Reads the text format 0.0.4 and OpenMetrics 1.0 (what either collector answers), keeping
what the parity suite compares: each family's HELP and TYPE, every sample with its label set
and value, and which samples carry an exemplar (with the exemplar's label names). Written
for this suite and independent of Redline's renderer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(rf"^({_NAME})(\{{.*?\}})?\s+(\S+)(?:\s+(\S+))?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')

# Sample suffixes that belong to the family without them (histograms, summaries, counters).
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum")

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
TEXT = "text/plain;version=0.0.4"


def _unescape(v: str) -> str:
    out, i = [], 0
    while i < len(v):
        c = v[i]
        if c == "\\" and i + 1 < len(v):
            n = v[i + 1]
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(n, "\\" + n))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_labels(body: str) -> tuple:
    """`{a="x",b="y"}` -> (("a", "x"), ("b", "y")), sorted by name."""
    s = body[1:-1] if body.startswith("{") else body
    out, pos = [], 0
    while pos < len(s):
        m = _LABEL_RE.match(s, pos)
        if not m:
            if not s[pos:].strip(" ,"):
                break
            raise ValueError(f"bad label set {body!r} at {pos}")
        out.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return tuple(sorted(out))


def parse_value(v: str) -> float:
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    return float(v)


def _split_labels(rest: str) -> tuple[str, str]:
    """`{...} value ...` -> (`{...}`, ` value ...`), honouring quotes and escapes."""
    if not rest.startswith("{"):
        return "", rest
    in_q = esc = False
    for i, c in enumerate(rest):
        if esc:
            esc = False
        elif c == "\\":
            esc = True
        elif c == '"':
            in_q = not in_q
        elif c == "}" and not in_q:
            return rest[: i + 1], rest[i + 1:]
    raise ValueError(f"unterminated label set: {rest!r}")


def _canonical_bounds(labels: tuple) -> tuple:
    """`le`/`quantile` as one spelling: OpenMetrics writes le="2.0" where text writes le="2"."""
    if not any(k in ("le", "quantile") for k, _ in labels):
        return labels
    out = []
    for k, v in labels:
        if k in ("le", "quantile"):
            f = parse_value(v)
            v = "+Inf" if f == math.inf else (str(int(f)) if f.is_integer() else repr(f))
        out.append((k, v))
    return tuple(out)


@dataclass
class Sample:
    name: str
    labels: tuple
    value: float
    exemplar: tuple | None = None  # exemplar label names, sorted


@dataclass
class Family:
    name: str
    help: str | None = None
    type: str | None = None
    samples: dict = field(default_factory=dict)  # (sample name, labels) -> Sample


@dataclass
class Exposition:
    content_type: str
    families: dict  # name -> Family

    def sample(self, name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        for fam in self.families.values():
            if key in fam.samples:
                return fam.samples[key].value
        raise KeyError(f"no sample {name}{labels}")

    def total(self, name: str) -> float:
        """The sum of every sample called `name` (for example all calls_total series)."""
        return sum(s.value for f in self.families.values() for (n, _), s in f.samples.items() if n == name)


def _family_of(sample_name: str, families: dict, openmetrics: bool) -> str:
    if sample_name in families:
        return sample_name
    for suffix in _SUFFIXES:
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in families:
            return sample_name[: -len(suffix)]
    return sample_name


def parse(text: str, content_type: str = TEXT) -> Exposition:
    openmetrics = "openmetrics" in content_type
    families: dict[str, Family] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE", "UNIT"):
                fam = families.setdefault(parts[2], Family(parts[2]))
                value = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    fam.help = _unescape(value)
                elif parts[1] == "TYPE":
                    fam.type = value
            continue
        m = re.match(_NAME, line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        name = m.group(0)
        labels_text, rest = _split_labels(line[m.end():])
        exemplar = None
        if " # " in rest:
            rest, ex = rest.split(" # ", 1)
            ex_labels, _ = _split_labels(ex.strip())
            exemplar = tuple(k for k, _ in parse_labels(ex_labels))
        fields = rest.split()
        if not fields:
            raise ValueError(f"sample without a value: {line!r}")
        fam_name = _family_of(name, families, openmetrics)
        fam = families.setdefault(fam_name, Family(fam_name))
        labels = _canonical_bounds(parse_labels(labels_text)) if labels_text else ()
        fam.samples[(name, labels)] = Sample(name, labels, parse_value(fields[0]), exemplar)
    return Exposition(content_type, families)


def series_text(name: str, labels: tuple) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"
