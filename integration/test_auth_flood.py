"""A client guessing passwords does not stall ingestion for everyone else.

Redline runs the reference pipeline (spanmetrics, forwarding to `loadgen sink`) with both OTLP
protocols behind `basicauth/ingest`: one user, a bcrypt hash of cost 10 (what `htpasswd -B`
writes). While 16 threads flood the HTTP receiver with wrong passwords and unknown user names,
each attempt a new guess so that no remembered outcome can answer it, `loadgen run` sends a
steady 5,000 spans/s over gRPC with the right password, verified exactly (every spanmetrics
series and the spans at the sink against loadgen's own tally).

The client authenticated once before the flood began (the common case: an attack starts
while the cluster's workloads are already sending). Asserted: it keeps its rate (every request accepted on the first try,
the achieved rate within 5% of the offered one); the flood only ever gets 401 or 503 (retry
later, when the queue of checks is full), never a 200, and nothing of it is counted.

Before bcrypt checks left the async workers, each guess held a worker for one bcrypt (~85 ms
in a release build, ~4x that in a debug one): 16 guessers kept both workers of a 2-core
machine busy and the authenticated client's requests queued behind them. The issue's bar is
the release binary: REDLINE_BIN=target/release/redline LOADGEN_BIN=target/release/loadgen.
"""

from __future__ import annotations

import base64
import collections
import secrets
import threading

import requests

import helpers
from loadgen_run import LoadgenSink, verified_run
from redline_config import otlp_tempo, pipeline, PROMETHEUS
from redline_run import Redline, encode_request, encode_span

USER = "ingest"
PASSWORD = "flood-test-right-password"
# bcrypt cost 10 of PASSWORD (a fixed test vector).
HASH = "$2b$10$GuBJekcLr1mt.Dm27ukFMOA9w4gKV7m5UJ.YzmKxkJJPzLf2j5SAW"

AUTH = "auth:\n  authenticator: basicauth/ingest\n"
CONFIG = pipeline(
    grpc_settings=AUTH,
    http_settings=AUTH,
    dimensions=["cdn.cache.hit"],
    exporters=[otlp_tempo(), PROMETHEUS],
    extensions=f"""
basicauth/ingest:
  htpasswd:
    inline: |
      {USER}:{HASH}
""",
)

GUESSERS = 16
RATE = 5_000
SECONDS = 10


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Flood:
    """GUESSERS threads posting a one-span request with a fresh wrong guess each time, until
    stopped; .statuses counts the answers by HTTP status."""

    def __init__(self, url: str):
        self.url, self.stop = url, threading.Event()
        self.statuses: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.body = encode_request("flood", [encode_span(1, "guess")])
        self.threads = [threading.Thread(target=self._guess, args=(i,), daemon=True) for i in range(GUESSERS)]

    def _guess(self, i: int):
        session = requests.Session()
        while not self.stop.is_set():
            # Half the guesses name the real user, half a user that does not exist.
            user = USER if i % 2 == 0 else f"nobody-{i}"
            headers = {"Authorization": basic(user, secrets.token_hex(8)),
                       "Content-Type": "application/x-protobuf"}
            try:
                status = session.post(self.url, data=self.body, headers=headers, timeout=10).status_code
            except requests.RequestException as e:
                status = f"{type(e).__name__}: {str(e)[:160]}"
            with self.lock:
                self.statuses[status] += 1

    def __enter__(self) -> "Flood":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def test_ingestion_keeps_its_rate_while_another_client_floods_wrong_passwords(
        redline_bin, loadgen_bin, procs, tmp_path):
    sink = LoadgenSink(procs, loadgen_bin, "--check")
    rl = Redline(procs, redline_bin, tmp_path, CONFIG, sink=sink.port).start()
    auth = ["--endpoint", f"127.0.0.1:{rl.grpc}", "--header", f"authorization: {basic(USER, PASSWORD)}",
            "--dimension", "cdn.cache.hit", "--pid", rl.proc.pid]
    # The client was authenticated before the attack began: a first run, so the right
    # password's bcrypt check is done and remembered.
    code, _, out = verified_run(loadgen_bin, rl.metrics_url, sink, tmp_path / "first.json",
                                [*auth, "--spans", "1000", "--seed", "1"], timeout=60)
    assert code == 0, out
    with Flood(rl.http_url) as flood:
        code, rep, out = verified_run(loadgen_bin, rl.metrics_url, sink, tmp_path / "ingest.json", [
            *auth, "--rate", str(RATE), "--duration", f"{SECONDS}s", "--seed", "2",
        ], timeout=SECONDS + 90)
    report = f"{out}\nflood answers: {dict(flood.statuses)}"
    assert rl.alive(), rl.proc.log_text()
    assert code == 0, report
    assert rep["verify"]["ok"], report
    assert rep["refused"]["requests"] == 0 and rep["retries"] == 0, report
    assert rep["accepted"]["spans"] == rep["sent"]["spans"] >= RATE * SECONDS * 0.95, report
    assert rep["spans_per_second"] >= RATE * 0.95, report
    print(f"authenticated client: {rep['spans_per_second']:.0f} spans/s, "
          f"p99 {rep['latency']['p99_ms']:.1f} ms; flood answers: {dict(flood.statuses)}")

    # The flood was refused, as wrong credentials (401) or retry-later (503), and it kept
    # trying the whole time.
    assert set(flood.statuses) <= {401, 503}, report
    assert flood.statuses[401] >= 1 and sum(flood.statuses.values()) >= GUESSERS, report
