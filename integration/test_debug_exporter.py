"""The `debug` exporter against otelcol-contrib's, the removed `logging` exporter, and `nop`.

1. For each verbosity (basic, normal, detailed), Redline and otelcol-contrib (the v0.161 peer,
   otelcol_peer.py) run the same config: the `otlp` receiver (HTTP on a free 127.0.0.1 port)
   into a `debug` exporter with `use_internal_logger: false` in a traces, a metrics and a logs
   pipeline. With that key both write the exporter's output, and nothing else, to stdout
   (otelcol: a zap console logger on `output_paths`, default `stdout`, without time or level;
   Redline: the same text on `stdout`); their own logs go to stderr. The streams are captured
   apart. Both get the same OTLP/JSON requests (fixed ids and timestamps), one signal at a
   time, and what each printed must be identical byte for byte: the summary line per batch
   (`Traces\t{"resource spans": 1, "spans": 2}`), then at `normal` one line per item, at
   `detailed` the whole otlptext block. Then sampling_initial / sampling_thereafter, once.
2. `logging` (otelcol's former name of `debug`): Redline runs it as `debug` through its own log
   (stderr), with a warning naming `debug` as the replacement; the data it logs, once the log
   line around each message is taken off (`--log-format json`: the `message` field), is what
   otelcol's debug exporter prints at the same verbosity, less the text's last newline
   (docs/compatibility.md, 12). otelcol v0.161 refuses the config.
3. `nop`: takes every signal, prints nothing, and Redline's self-telemetry counts what it was
   given as sent (`otelcol_exporter_sent_*{exporter="nop"}`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

import helpers
import otelcol_peer
from otlp_signals import SENT, SIGNALS

# ---------------------------------------------------------------- the data

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC, in ns
TRACE_ID = "5b8efff798038103d269b633813fc60c"
OTHER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def _ns(offset_ms: float) -> str:
    return str(T0 + int(offset_ms * 1_000_000))


def _kv(key: str, value) -> dict:
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    elif isinstance(value, list):
        v = {"arrayValue": {"values": [_kv("", x)["value"] for x in value]}}
    elif isinstance(value, dict):
        v = {"kvlistValue": {"values": [_kv(k, x) for k, x in value.items()]}}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def _attrs(**kw) -> list:
    return [_kv(k.replace("__", "."), v) for k, v in kw.items()]


RESOURCE = {"attributes": _attrs(service__name="checkout", host__name="web-1", service__instance__id="i-42")}
SCOPE = {"name": "debug-it", "version": "1.4.0", "attributes": _attrs(lib__tier="core")}

TRACES = {"resourceSpans": [{
    "resource": RESOURCE,
    "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
    "scopeSpans": [{"scope": SCOPE, "spans": [
        {
            "traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174", "name": "GET /cart", "kind": 2,
            "traceState": "vendor=abc",
            "startTimeUnixNano": _ns(0), "endTimeUnixNano": _ns(250),
            "attributes": _attrs(http__method="GET", http__status_code=200, retry=False, ratio=0.25,
                                 tags=["a", "b"]),
            "events": [{"timeUnixNano": _ns(100), "name": "cache miss",
                        "attributes": _attrs(cache__key="cart:42")}],
            "links": [{"traceId": OTHER_TRACE_ID, "spanId": "b7ad6b7169203331", "traceState": "k=v",
                       "attributes": _attrs(link__kind="follows")}],
            "status": {"code": 1, "message": ""},
        },
        {
            "traceId": TRACE_ID, "spanId": "00f067aa0ba902b7", "parentSpanId": "eee19b7ec3c1b174",
            "name": "SELECT carts", "kind": 3,
            "startTimeUnixNano": _ns(20), "endTimeUnixNano": _ns(180.5),
            "attributes": _attrs(db__system="postgresql", db__rows=3),
            "events": [{"timeUnixNano": _ns(179), "name": "exception",
                        "attributes": _attrs(exception__type="TimeoutError", exception__message="db timeout")}],
            "links": [{"traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174"}],
            "droppedAttributesCount": 1,
            "status": {"code": 2, "message": "timeout"},
        },
    ]}],
}]}

METRICS = {"resourceMetrics": [{
    "resource": RESOURCE,
    "scopeMetrics": [{"scope": SCOPE, "metrics": [
        {"name": "app.requests", "description": "requests handled", "unit": "{request}",
         "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
             {"attributes": _attrs(route="/cart", code=200), "startTimeUnixNano": _ns(-60_000),
              "timeUnixNano": _ns(0), "asInt": "42"},
             {"attributes": _attrs(route="/checkout", code=500), "startTimeUnixNano": _ns(-60_000),
              "timeUnixNano": _ns(0), "asInt": "3"},
         ]}},
        {"name": "app.pool.usage", "unit": "1",
         "gauge": {"dataPoints": [
             {"attributes": _attrs(pool="db"), "timeUnixNano": _ns(0), "asDouble": 0.75},
         ]}},
        {"name": "app.latency", "description": "request latency", "unit": "ms",
         "histogram": {"aggregationTemporality": 1, "dataPoints": [
             {"attributes": _attrs(route="/cart"), "startTimeUnixNano": _ns(-10_000), "timeUnixNano": _ns(0),
              "count": "6", "sum": 812.5, "min": 3.5, "max": 410.0,
              "bucketCounts": ["1", "2", "2", "1"], "explicitBounds": [10.0, 100.0, 250.0],
              "exemplars": [{"timeUnixNano": _ns(-5_000), "asDouble": 410.0, "traceId": TRACE_ID,
                             "spanId": "eee19b7ec3c1b174", "filteredAttributes": _attrs(user="u-1")}]},
         ]}},
    ]}],
}]}

LOGS = {"resourceLogs": [{
    "resource": RESOURCE,
    "scopeLogs": [{"scope": SCOPE, "logRecords": [
        {"timeUnixNano": _ns(90), "observedTimeUnixNano": _ns(95), "severityNumber": 9, "severityText": "INFO",
         "body": {"stringValue": "cart loaded"}, "attributes": _attrs(route="/cart", items=3),
         "traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174", "flags": 1},
        {"timeUnixNano": _ns(179), "observedTimeUnixNano": _ns(181), "severityNumber": 17, "severityText": "ERROR",
         "body": {"kvlistValue": {"values": _attrs(msg="query failed", attempt=2)}},
         "attributes": _attrs(exception__type="TimeoutError"),
         "traceId": TRACE_ID, "spanId": "00f067aa0ba902b7", "flags": 1},
    ]}],
}]}

PAYLOAD = {"traces": TRACES, "metrics": METRICS, "logs": LOGS}
# Items per request, as otelcol counts them (spans, data points, log records).
ITEMS = {"traces": 2, "metrics": 4, "logs": 2}
SUMMARY = {
    "traces": 'Traces\t{"resource spans": 1, "spans": 2}',
    "metrics": 'Metrics\t{"resource metrics": 1, "metrics": 3, "data points": 4}',
    "logs": 'Logs\t{"resource logs": 1, "log records": 2}',
}
MESSAGE = {"traces": "Traces", "metrics": "Metrics", "logs": "Logs"}

# ---------------------------------------------------------------- configs

PIPELINES = """
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [{exporter}]
    metrics:
      receivers: [otlp]
      exporters: [{exporter}]
    logs:
      receivers: [otlp]
      exporters: [{exporter}]
"""


def config(exporter: str, settings: str, http: int, telemetry: int) -> str:
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  {exporter}:
{settings}
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
""" + PIPELINES.format(exporter=exporter)


# ---------------------------------------------------------------- processes


class SplitProc(helpers.Proc):
    """helpers.Proc with stdout and stderr captured apart (the debug output is on stdout, the
    process's own log on stderr); stopped by PID like any Proc."""

    def __init__(self, name: str, args: list, workdir: Path):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = workdir / f"{name}.stderr"
        self.out_path = workdir / f"{name}.stdout"
        self._log = open(self.log_path, "wb")
        self._out = open(self.out_path, "wb")
        self.popen = subprocess.Popen(self.args, stdout=self._out, stderr=self._log, stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, NO_COLOR="1"), start_new_session=True)
        self.pid = self.popen.pid

    def stdout(self) -> str:
        return self.out_path.read_bytes().decode("utf-8", "replace")

    def stderr(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def log_text(self, limit: int = 20000) -> str:
        return super().log_text(limit) + f"\n----- stdout of {self.name}\n{self.stdout()[-limit:]}----- end"

    def stop(self, timeout: float = 10.0):
        code = super().stop(timeout)
        self._out.close()
        return code


class Collector:
    """One collector on a config of its own, listening for OTLP/HTTP on a free port; stdout
    and stderr captured apart."""

    def __init__(self, procs, side: str, argv: list, exporter: str, settings: str, name: str, args=()):
        self.side = side
        self.http, self.telemetry = helpers.free_port(), helpers.free_port()
        cfg = procs.workdir / f"{name}.yaml"
        cfg.write_text(config(exporter, settings, self.http, self.telemetry))
        self.proc = SplitProc(name, [*argv, "--config", cfg, *args], procs.workdir)
        procs.procs.append(self.proc)  # stopped by PID at teardown, logs shown on failure

    def wait_ready(self, timeout: float = 30):
        helpers.wait_until(lambda: helpers.port_accepts(self.http), timeout,
                           f"{self.proc.name} to listen on {self.http}", alive=self.proc)

    def post(self, signal: str, session=requests):
        r = session.post(f"http://127.0.0.1:{self.http}/v1/{signal}", data=json.dumps(PAYLOAD[signal]),
                         headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 200, f"{self.side} answered {r.status_code} to {signal}: {r.text[:300]}"
        assert not r.json().get("partialSuccess"), f"{self.side}: {r.text}"

    def telemetry_samples(self) -> dict:
        r = requests.get(f"http://127.0.0.1:{self.telemetry}/metrics", timeout=5)
        assert r.status_code == 200, f"{self.side} telemetry answered {r.status_code}"
        return {(n, helpers.label_key(lb)): v for n, lb, v in helpers.parse_text_metrics(r.text)}

    def stop(self):
        code = self.proc.stop(timeout=15)
        assert code == 0 and not self.proc.killed, \
            f"{self.side} did not stop cleanly (exit {code})\n{self.proc.log_text()}"


def start(*collectors: Collector) -> list:
    for c in collectors:
        c.wait_ready()
    return list(collectors)


def settled(read, must_contain: str, proc, quiet: float = 0.3, timeout: float = 10) -> str:
    """What `read()` returns once it contains `must_contain` and has not changed for `quiet` s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        text = read()
        if text != last:
            last, since = text, time.monotonic()
        elif must_contain in text and time.monotonic() - since >= quiet:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{proc.name}: no settled output containing {must_contain!r} "
                         f"within {timeout}s\n{proc.log_text()}")


def run_signals(collectors: list) -> dict:
    """POST each signal to every collector, one signal at a time (the next only once every
    collector has printed the last: otelcol's exporters print concurrently), and return
    {side: {signal: what it printed for it}}."""
    out = {c.side: {} for c in collectors}
    seen = {c.side: 0 for c in collectors}
    for signal in SIGNALS:
        for c in collectors:
            c.post(signal)
        for c in collectors:
            text = settled(c.proc.stdout, SUMMARY[signal], c.proc)
            out[c.side][signal] = text[seen[c.side]:]
            seen[c.side] = len(text)
    return out


def json_log(stderr: str) -> list:
    """Redline's log lines with `--log-format json`, parsed (the line around each message is
    the log's, the `message` is what was logged)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def assert_no_data_in_log(c: Collector):
    """The process's own log carries none of the printed data."""
    text = c.proc.stderr()
    for marker in ("ResourceSpans #", "ResourceTraces #", "ResourceMetrics #", "ResourceLog #",
                   *SUMMARY.values()):
        assert marker not in text, f"{c.side} logged {marker!r} on stderr:\n{text}"


# ---------------------------------------------------------------- 1. debug: Redline == otelcol


@pytest.mark.parametrize("verbosity", ["basic", "normal", "detailed"])
def test_debug_prints_what_otelcol_prints(redline_bin, procs, verbosity):
    settings = f"    verbosity: {verbosity}\n    use_internal_logger: false"
    pair = start(Collector(procs, "otelcol", [otelcol_peer.otelcol_bin()], "debug", settings, f"otelcol-{verbosity}"),
                 Collector(procs, "redline", [redline_bin], "debug", settings, f"redline-{verbosity}"))
    printed = run_signals(pair)
    for signal in SIGNALS:
        want, got = printed["otelcol"][signal], printed["redline"][signal]
        assert got == want, f"{signal} at {verbosity} differs:\n--- otelcol\n{want}\n--- redline\n{got}"
        # What was compared is the data: the summary line, then (normal, detailed) the text
        # and the newline the console logger ends each entry with.
        assert want.startswith(SUMMARY[signal] + "\n"), want
        if verbosity == "basic":
            assert want == SUMMARY[signal] + "\n", want
        else:
            assert want.endswith("\n\n") and len(want.splitlines()) > 3, want
    if verbosity == "normal":  # one line per item after the resource and scope lines
        assert [len(printed["otelcol"][s].splitlines()) for s in SIGNALS] == [1 + 2 + ITEMS[s] + 1 for s in SIGNALS]
    if verbosity == "detailed":
        assert "ResourceSpans #0" in printed["otelcol"]["traces"]
        assert "HistogramDataPoints #0" in printed["otelcol"]["metrics"]
        assert "LogRecord #1" in printed["otelcol"]["logs"]
    for c in pair:
        c.stop()
        # Nothing more at shutdown, and nothing of the data on stderr.
        assert c.proc.stdout() == "".join(printed[c.side][s] for s in SIGNALS), c.proc.log_text()
        assert_no_data_in_log(c)


def test_debug_sampling_is_otelcols(redline_bin, procs):
    """sampling_initial / sampling_thereafter: six identical requests within a second, the
    first one printed, then every fourth (the fifth): zap's sampler in otelcol, per batch in
    Redline; with identical batches the two agree at every verbosity."""
    settings = "    verbosity: normal\n    use_internal_logger: false\n    sampling_initial: 1\n" \
               "    sampling_thereafter: 4"
    pair = start(Collector(procs, "otelcol", [otelcol_peer.otelcol_bin()], "debug", settings, "otelcol-sampled"),
                 Collector(procs, "redline", [redline_bin], "debug", settings, "redline-sampled"))
    t0 = time.monotonic()
    for c in pair:
        with requests.Session() as s:
            for _ in range(6):
                c.post("traces", s)
    took = time.monotonic() - t0
    printed = {c.side: settled(c.proc.stdout, SUMMARY["traces"], c.proc, quiet=0.5) for c in pair}
    assert took < 0.9, f"the six requests took {took:.2f}s: the sampler's one-second window is not a given"
    assert printed["redline"] == printed["otelcol"], printed
    assert printed["otelcol"].count(SUMMARY["traces"] + "\n") == 2, printed["otelcol"]
    for c in pair:
        c.stop()


# ---------------------------------------------------------------- 2. logging


LOGGING_REFUSED = "'exporters' the logging exporter has been deprecated, use the debug exporter instead"


def test_logging_runs_as_debug_in_redline_and_is_refused_by_otelcol(redline_bin, procs):
    otelcol = otelcol_peer.otelcol_bin()
    # otelcol v0.161: the config does not load.
    refused = Collector(procs, "otelcol", [otelcol], "logging", "", "otelcol-logging")
    code = refused.proc.popen.wait(timeout=30)
    assert code == 1 and LOGGING_REFUSED in refused.proc.stderr(), refused.proc.log_text()
    assert not helpers.port_accepts(refused.http)

    # Redline: `logging` with no settings is `debug` at `normal` (the logging exporter's
    # default) through Redline's own log, after a warning naming `debug`.
    # The reference for the data: otelcol's debug exporter at normal.
    normal = "    verbosity: normal\n    use_internal_logger: false"
    reference = Collector(procs, "otelcol", [otelcol], "debug", normal, "otelcol-normal")
    rl = Collector(procs, "redline", [redline_bin], "logging", "", "redline-logging",
                   args=("--log-format", "json"))
    start(reference, rl)
    # The warning names `logging` and its replacement (today one per pipeline, with
    # `exporter` and `signal` fields; only the words are asserted).
    warnings = [e["message"] for e in json_log(rl.proc.stderr()) if e.get("level") == "WARN"]
    assert [w for w in warnings if "`logging`" in w and "use the `debug` exporter" in w], rl.proc.log_text()

    want = run_signals([reference])["otelcol"]

    def printed():
        return [e for e in json_log(rl.proc.stderr())
                if e.get("exporter") == "logging" and e.get("level") == "INFO"]

    for i, signal in enumerate(SIGNALS):  # one at a time: each signal's exporter logs on its own
        rl.post(signal)
        helpers.wait_until(lambda: len(printed()) >= 2 * (i + 1), 10, f"Redline to log the {signal}", alive=rl.proc)
    time.sleep(0.3)
    entries = printed()
    assert len(entries) == 6, entries
    assert rl.proc.stdout() == "", "logging writes to Redline's log only"
    got = {}
    for summary, text in zip(entries[::2], entries[1::2]):
        signal = summary["signal"]
        assert text["signal"] == signal, entries
        fields = {k: v for k, v in summary.items()
                  if k not in ("timestamp", "level", "message", "exporter", "signal")}
        got[signal] = f"{summary['message']}\t{json.dumps(fields)}\n{text['message']}"
    # otelcol's entry is the summary line and the text (with its last newline, then the
    # logger's); in a log line the message is the text without its trailing newline.
    assert got == {s: want[s].rstrip("\n") for s in SIGNALS}
    rl.stop()
    reference.stop()


# ---------------------------------------------------------------- 3. nop


def test_nop_takes_everything_prints_nothing_and_counts_it_sent(redline_bin, procs):
    rl = start(Collector(procs, "redline", [redline_bin], "nop", "", "redline-nop",
                         args=("--log-format", "json")))[0]
    for signal in SIGNALS:
        rl.post(signal)
    want = {s: float(ITEMS[s]) for s in SIGNALS}

    def sent():
        t = rl.telemetry_samples()
        return {s: t.get((SENT[s], (("exporter", "nop"),))) for s in SIGNALS}

    try:
        helpers.wait_until(lambda: sent() == want, 10, "otelcol_exporter_sent_*{exporter=nop} to count what was sent")
    except helpers.WaitTimeout:
        pass
    assert sent() == want
    assert sent()["logs"] == 2  # otelcol_exporter_sent_log_records{exporter="nop"}
    time.sleep(0.3)
    rl.stop()
    assert rl.proc.stdout() == ""
    log = json_log(rl.proc.stderr())
    assert not [e for e in log if e.get("level") in ("WARN", "ERROR")], log
    assert not [e for e in log if e.get("message") in MESSAGE.values() or "Resource" in e.get("message", "")], log
