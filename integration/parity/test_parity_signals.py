"""Parity on all three signals: traces, metrics and logs through the `otlp` receiver, traces
and metrics forwarded by `otlp` exporters (OTLP/gRPC), logs by an `otlphttp` exporter.

The same hand-built requests (signal_traffic.py: several resources, every metric kind, log
bodies of every AnyValue kind, severities, trace context) go to both collectors as protobuf
over gRPC, protobuf over HTTP and OTLP/JSON over HTTP (enums as integers, and as names). What
each answers is compared (status, partial_success), and what each forwards, decoded and
flattened to items with their resource and scope, order-insensitively (otelcol re-encodes and
may regroup; Redline forwards the received bytes). Redline must also forward exactly what was
sent. A signal no pipeline takes must be answered alike too.
"""

from __future__ import annotations

import time

import pytest

import helpers
import otlp_signals
from configs import three_signals_pipeline
from otlp_signals import SIGNAL, SIGNALS
from signal_traffic import BUILD, severity_trace

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
TRANSPORTS = ("grpc", "http/protobuf", "http/json", "http/json enum names")


def send(pair, signal: str, transport: str, request) -> dict:
    """`request` to both collectors over `transport`; their answers as the client sees them."""
    sig = SIGNAL[signal]
    if transport == "grpc":
        answers = pair.grpc_export(request.SerializeToString(), method=sig.method)
    elif transport == "http/protobuf":
        answers = pair.http_post(sig.path, request.SerializeToString(), PROTOBUF)
    else:
        body = otlp_signals.to_json(request, enums_as_names=transport.endswith("enum names"))
        answers = pair.http_post(sig.path, body, JSON)
    return {side: otlp_signals.partial_success(signal, a.status, a.body, a.content_type) for side, a in answers.items()}


def send_each_signal(pair, label: str) -> tuple[list, dict]:
    """The signals suite's request of each signal to both collectors over gRPC and OTLP/HTTP
    protobuf; the answers that differ, and the requests sent by signal (each one taken)."""
    diffs: list[str] = []
    sent = {s: [] for s in SIGNALS}
    for signal in SIGNALS:
        for transport in ("grpc", "http/protobuf"):
            request = BUILD[signal](f"{label} {signal} over {transport}")
            seen = send(pair, signal, transport, request)
            diffs += answer_diffs(f"{signal} over {transport}", seen)
            assert seen["redline"].startswith(("OK", "200")), seen
            sent[signal].append(request)
    return diffs, sent


def check_forwarded(pair, allow, diffs: list, want: dict, sent: dict) -> tuple[dict, dict]:
    """Waits until both collectors forwarded at least `want[signal]` items, then fails on any
    difference (answers in `diffs`, forwarded items) that docs/compatibility.md does not list.
    Returns the items forwarded (`flat[side][signal]`) and the counts waited for."""
    got = wait_all_forwarded(pair, want)
    flat, forwarded_apart = compare_forwarded(pair)
    unexplained = allow.unexplained(diffs + forwarded_apart)
    total = {s: otlp_signals.count_items(s, sent[s]) for s in SIGNALS}
    assert not unexplained, (f"{len(unexplained)} difference(s) between otelcol-contrib and Redline "
                             f"(forwarded {got}, sent {total}):\n  " + "\n  ".join(unexplained[:80]))
    return flat, got


def answer_diffs(case: str, seen: dict) -> list:
    a, b = seen["otelcol"], seen["redline"]
    return [] if a == b else [f"answer differs: {case}: otelcol={a} redline={b}"]


def forwarded(pair, side: str, signal: str) -> list:
    if signal == "logs":
        return pair.http_sinks[side].requests_of("logs")
    return pair.sinks[side].requests_of(signal)


def wait_all_forwarded(pair, want: dict, timeout: float = 30, quiet: float = 1.5):
    """Until both collectors forwarded at least `want[signal]` items of every signal and then
    nothing more for `quiet` seconds (bounded)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = {(side, s): otlp_signals.count_items(s, forwarded(pair, side, s)) for side in pair.c for s in SIGNALS}
        if now != last:
            last, since = now, time.monotonic()
        elif all(now[(side, s)] >= want[s] for side in pair.c for s in SIGNALS) and time.monotonic() - since >= quiet:
            return now
        time.sleep(0.2)
    return last


def forwarded_diffs(signal: str, otelcol, redline) -> list:
    """Items forwarded by one collector and not (or not equal) by the other."""
    only_a, only_b = otelcol - redline, redline - otelcol
    out = [f"forwarded {signal} only by otelcol: {otlp_signals.describe(signal, k)}" for k in only_a]
    out += [f"forwarded {signal} only by redline: {otlp_signals.describe(signal, k)}" for k in only_b]
    return sorted(out)


def compare_forwarded(pair) -> tuple[dict, list]:
    """What each collector forwarded, flattened (`flat[side][signal]`), and the items one of
    them forwarded and the other did not."""
    flat = {side: {s: otlp_signals.flatten(s, forwarded(pair, side, s)) for s in SIGNALS} for side in pair.c}
    return flat, [d for s in SIGNALS for d in forwarded_diffs(s, flat["otelcol"][s], flat["redline"][s])]


def test_three_signals(pair_factory, allow):
    pair = pair_factory(three_signals_pipeline(), flush_interval=None)
    diffs: list[str] = []
    sent = {s: [] for s in SIGNALS}
    for signal in SIGNALS:
        for transport in TRANSPORTS:
            request = BUILD[signal](f"{signal} over {transport}")
            seen = send(pair, signal, transport, request)
            diffs += answer_diffs(f"{signal} over {transport}", seen)
            if seen["redline"].startswith(("OK", "200")):
                sent[signal].append(request)
        if signal == "logs":
            for transport in TRANSPORTS:
                request = severity_trace(f"severity TRACE over {transport}")
                seen = send(pair, signal, transport, request)
                diffs += answer_diffs(f"log with severity TRACE over {transport}", seen)
                if seen["redline"].startswith(("OK", "200")):
                    sent[signal].append(request)
        # An empty request: nothing to forward, both must take it.
        for transport in ("grpc", "http/protobuf", "http/json"):
            diffs += answer_diffs(f"empty {signal} request over {transport}",
                                  send(pair, signal, transport, SIGNAL[signal].request()))

    want = {s: otlp_signals.count_items(s, sent[s]) for s in SIGNALS}
    got = wait_all_forwarded(pair, want)
    flat, forwarded_apart = compare_forwarded(pair)
    diffs += forwarded_apart
    unexplained = allow.unexplained(diffs)

    # Redline forwards the received bytes: exactly what was sent, each item once.
    problems = [otlp_signals.diff_flat(s, otlp_signals.flatten(s, sent[s]), flat["redline"][s]) for s in SIGNALS]
    problems = [p for p in problems if p]
    report = []
    if unexplained:
        report.append(f"{len(unexplained)} difference(s) between otelcol-contrib and Redline that "
                      f"compatibility.md does not list:\n  " + "\n  ".join(unexplained[:80]))
    if problems:
        report.append(f"Redline did not forward exactly what was sent (forwarded {got}, sent {want}):\n"
                      + "\n".join(problems))
    assert not report, "\n".join(report)
    for side in pair.c:  # both as otlphttp sends by default: to <endpoint>/v1/logs, gzip
        posts = pair.http_sinks[side].posted()
        assert {p.path for p in posts} == {"/otlp/v1/logs"}, (side, {p.path for p in posts})
        assert {p.headers.get("content-encoding") for p in posts} == {"gzip"}, (side, [p.headers for p in posts])
        assert {p.headers.get("content-type") for p in posts} == {"application/x-protobuf"}, side


@pytest.mark.parametrize("only", ["traces", "logs"])
def test_signal_without_a_pipeline(pair_factory, allow, only):
    """Only one signal has a pipeline: the others are refused alike (gRPC UNIMPLEMENTED, HTTP
    404 in otelcol), over every transport; the one with a pipeline is taken."""
    pair = pair_factory(three_signals_pipeline(signals=(only,)), flush_interval=None)
    diffs = []
    for signal in SIGNALS:
        for transport in ("grpc", "http/protobuf", "http/json"):
            seen = send(pair, signal, transport, BUILD[signal](f"{signal} without pipeline"))
            diffs += answer_diffs(f"{signal} over {transport} with only a {only} pipeline", seen)
            if signal == only:
                assert seen["redline"].startswith(("OK", "200")), seen
            else:
                assert seen["redline"] in ("UNIMPLEMENTED", "404"), seen
    allow.check(f"only a {only} pipeline", diffs)
    helpers.wait_until(lambda: otlp_signals.count_items(only, forwarded(pair, "redline", only)) > 0, 15,
                       f"Redline to forward the {only}")
