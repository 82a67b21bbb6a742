"""The `otlp` exporter's `balancer_name` and endpoint resolution, against otelcol-contrib.

configgrpc (v1.67) defaults `balancer_name` to `round_robin` and hands the endpoint to
grpc.NewClient, whose default resolver is DNS: `localhost:PORT` and `dns:///localhost:PORT`
both resolve through it. A name grpc-go has not registered in the binary is refused by
`validate` (`invalid balancer_name: <name>`).

- Each balancer (unset, `round_robin`, `pick_first`) with each endpoint form: both
  collectors deliver exactly the traces, metrics and logs sent, each item once.
- The sink is down when the traffic arrives and comes back on the same port within the
  retry window: both deliver everything, exactly once, with and without `wait_for_ready`.
- Names are accepted and refused alike; Redline's refusal names the key.

Only one address is ever resolved (localhost is 127.0.0.1 alone in /etc/hosts and every
server binds 127.0.0.1), so how round_robin spreads calls over several addresses is not
observable here; what is checked is that each policy connects, delivers and reconnects.

BALANCER_PARITY_SIDES=otelcol (or redline) runs one collector alone.
"""

from __future__ import annotations

import time

import pytest
import yaml

import helpers
import otlp_signals
from otlp_sink import OtlpSink
from otlp_signals import SIGNAL, SIGNALS
from receiver_sides import QUIET, Side, running_sides, start_collector
from signal_traffic import BUILD

SIDES_ENV = "BALANCER_PARITY_SIDES"
EXPORTER = "otlp/tempo"
# Short enough that a retry follows the sink's return at once, long enough (max_elapsed_time)
# to outlast grpc-go's reconnect backoff (1 s, then x1.6) while the sink is down.
RETRY = {"initial_interval": "100ms", "max_interval": "500ms", "max_elapsed_time": "30s"}
ENDPOINTS = {"host:port": "localhost:{port}", "dns:///": "dns:///localhost:{port}"}
UNSET = None
# Each collector's log line for an attempt that failed and will be retried.
RETRY_LOGGED = {"otelcol": "Exporting failed. Will retry", "redline": "export failed; will retry"}


def config(balancer, wait_for_ready: bool = False) -> str:
    exporter = {"endpoint": "127.0.0.1:4317", "tls": {"insecure": True}, "retry_on_failure": RETRY}
    if balancer is not UNSET:
        exporter["balancer_name"] = balancer
    if wait_for_ready:
        exporter["wait_for_ready"] = True
        # Reconnects follow grpc-go's backoff (about 1, 2.6, 5.2, 9.3 s): a 15 s attempt
        # outlasts the sink's return by several of them, however slowly the sink starts.
        exporter["timeout"] = "15s"
    return yaml.safe_dump({
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:4317"}}}},
        "exporters": {EXPORTER: exporter},
        "service": {"pipelines": {s: {"receivers": ["otlp"], "exporters": [EXPORTER]} for s in SIGNALS}},
    }, sort_keys=False)


def sides_on(request, procs, workdir, balancer, endpoint: str, wait_for_ready: bool = False):
    """Both collectors (or the one BALANCER_PARITY_SIDES names) on config(balancer), each
    exporter's endpoint written as `endpoint` around the port of that side's own sink."""
    text = config(balancer, wait_for_ready)

    def start(name, argv, procs_, workdir_):
        def configure(cfg, ports, collector):
            if collector is None:
                exporter = cfg["exporters"][EXPORTER]
                # rewrite() pointed it at the sink as 127.0.0.1:PORT; only the spelling changes.
                exporter["endpoint"] = endpoint.format(port=exporter["endpoint"].rsplit(":", 1)[1])

        collector, sink, _ = start_collector(name, argv, procs_, workdir_, text, configure)
        return Side(name, collector, sink)

    return running_sides(request, SIDES_ENV, procs, workdir, start)


def send(sides: dict, tag: str) -> dict:
    """One request of each signal to every side, each accepted; the requests by signal."""
    sent = {s: [BUILD[s](f"{tag} {s}")] for s in SIGNALS}
    for signal, (req,) in sent.items():
        answers = {name: side.collector.grpc_export(req.SerializeToString(), method=SIGNAL[signal].method).status
                   for name, side in sides.items()}
        assert answers == {name: "OK" for name in sides}, f"{signal}: {answers}"
    return sent


def delivered(side: Side) -> dict:
    return {s: side.sink.requests_of(s) for s in SIGNALS}


def check_delivered(sides: dict, sent: dict, timeout: float = 20):
    """Every side's sink got exactly the items sent, each once: waits (bounded) until each has
    as many items as were sent, then QUIET more so a duplicate would show."""
    want = {s: otlp_signals.count_items(s, sent[s]) for s in SIGNALS}

    def counts(side):
        return {s: otlp_signals.count_items(s, reqs) for s, reqs in delivered(side).items()}

    try:
        helpers.wait_until(lambda: all(all(counts(side)[s] >= want[s] for s in SIGNALS) for side in sides.values()),
                           timeout, f"every side to deliver {want}", interval=0.05)
    except helpers.WaitTimeout:
        pass  # the comparison below says what is missing, a timeout would not
    time.sleep(QUIET)
    problems = []
    for name, side in sides.items():
        got = delivered(side)
        for s in SIGNALS:
            apart = otlp_signals.diff_flat(s, otlp_signals.flatten(s, sent[s]), otlp_signals.flatten(s, got[s]))
            if apart:
                problems.append(f"{name}: {apart}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- delivery


@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=ENDPOINTS.keys())
@pytest.mark.parametrize("balancer", [UNSET, "round_robin", "pick_first"], ids=["unset", "round_robin", "pick_first"])
def test_each_balancer_delivers_what_was_sent(request, procs, tmp_path, balancer, endpoint):
    with sides_on(request, procs, tmp_path, balancer, endpoint) as sides:
        sent = send(sides, f"balancer {balancer} {endpoint}")
        check_delivered(sides, sent)


# wait_for_ready: the first attempt waits for the connection (the sink is back within the
# exporter's 5 s timeout) instead of failing and being retried.
COMES_BACK = [(UNSET, False), ("pick_first", False), (UNSET, True), ("pick_first", True)]


@pytest.mark.parametrize("balancer,wait_for_ready", COMES_BACK,
                         ids=["unset", "pick_first", "unset-wait_for_ready", "pick_first-wait_for_ready"])
def test_a_sink_that_comes_back_gets_everything_once(request, procs, tmp_path, balancer, wait_for_ready):
    # dns:/// so that the failed connects also go through the resolver's re-resolution.
    with sides_on(request, procs, tmp_path, balancer, ENDPOINTS["dns:///"], wait_for_ready) as sides:
        ports = {name: side.sink.port for name, side in sides.items()}
        for side in sides.values():
            side.sink.stop()
        sent = send(sides, f"sink down {balancer}")
        # Long enough for the first attempt and several 100 ms retries to fail; the
        # queue keeps the data meanwhile.
        time.sleep(1.5)
        for name, side in sides.items():
            assert side.collector.proc.poll() is None, side.collector.proc.log_text()
            side.sink = OtlpSink(port=ports[name]).start()
        check_delivered(sides, sent, timeout=25)
        # Failing fast, each collector logged a failed attempt it would retry; waiting for
        # ready, none failed.
        retried = {name: RETRY_LOGGED[name] in side.collector.proc.log_text() for name, side in sides.items()}
        assert retried == {name: not wait_for_ready for name in sides}, retried


# ---------------------------------------------------------------- validation

# otelcol's answer is the expected one. least_request_experimental, weighted_round_robin,
# grpclb: grpc-go registers them only in a binary that imports their packages (xds, or
# google.golang.org/api for grpclb); the peer does not, so it refuses them. Names are
# case-sensitive in grpc-go >= 1.82. An empty name is valid and sets no service config, so
# grpc-go's own default (pick_first) applies, not configgrpc's round_robin.
NAMES = [("bogus", False), ("least_request_experimental", False), ("Round_Robin", False),
         ("round_robin", True), ("pick_first", True), ("", True)]


@pytest.mark.parametrize("name,valid", NAMES, ids=[n or "empty" for n, _ in NAMES])
def test_same_names_accepted_and_refused(otelcol_bin, redline_bin, tmp_path, name, valid):
    path = tmp_path / "balancer.yaml"
    path.write_text(config(name))
    peer = helpers.run([otelcol_bin, "validate", "--config", path], timeout=60)
    ours = helpers.run([redline_bin, "validate", "--config", path], timeout=30)
    assert (peer.returncode == 0, ours.returncode == 0) == (valid, valid), \
        f"otelcol:\n{peer.stderr[-2000:]}\nredline:\n{ours.stdout}{ours.stderr[-2000:]}"
    if not valid:
        assert f"invalid balancer_name: {name}" in peer.stderr, peer.stderr[-2000:]
        # Redline's own form is `exporters.otlp/tempo.balancer_name: ...`; the exporter and
        # the key are what a user needs to find the line.
        out = ours.stderr + ours.stdout
        assert EXPORTER in out and "balancer_name" in out, out[-2000:]
