"""One parity scenario's comparison: wait for both collectors, then every difference in what
they serve and forward, checked against docs/compatibility.md."""

from __future__ import annotations

from diff import compare_exemplars, compare_metrics, compare_spans, one_side_labels
from expo import OPENMETRICS


def differences(pair, counted: int, spans: bool = True) -> list[str]:
    """Waits until both collectors have counted `counted` spans (otelcol after its flush) and
    both sinks are quiet, then lists every difference: /metrics as text, exemplars as
    OpenMetrics, and (with `spans`) the forwarded spans."""
    pair.wait_counted(counted)
    pair.wait_forwarded()
    text = pair.scrape()
    om = pair.scrape(OPENMETRICS)
    diffs = compare_metrics(text["otelcol"], text["redline"])
    diffs += compare_exemplars(om["otelcol"], om["redline"], one_side_labels(text["otelcol"], text["redline"]))
    if spans:
        fwd = pair.forwarded()
        diffs += compare_spans(fwd["otelcol"], fwd["redline"])
    return diffs


def check(pair, allow, name: str, counted: int, spans: bool = True) -> list[str]:
    """differences(), failing on any that docs/compatibility.md does not list. Returns them all
    (listed ones included) so a test can assert more about them."""
    diffs = differences(pair, counted, spans)
    allow.check(name, diffs)
    return diffs
