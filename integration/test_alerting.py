"""Alerting end to end: traffic with errors -> Redline -> Prometheus rules -> Alertmanager ->
a webhook.

  - Redline runs configs/tempo-sidecar.yaml unchanged (ports from its env variables, Tempo =
    the test's OTLP sink)
  - a real Prometheus scrapes it every second and evaluates a TEST COPY of
    configs/prometheus/rules/redline-alerts.yml in which only the `for:` durations are
    shortened to 5s (the test checks that nothing else differs); rate windows stay [5m]
  - a real Alertmanager runs a test copy of configs/alertmanager/alertmanager.yml in which only
    the webhook URL and the grouping waits differ, posting to a webhook receiver in this test
  - loadgen sends http.server traffic with 20% errors (traffic() is the one place to change the
    traffic source)

The webhook must receive HttpServerErrorRateHigh, firing, with the rule's labels, within 90s.

Needs prometheus-alertmanager (Debian) and loadgen (LOADGEN_BIN, default target/debug/loadgen).
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import helpers

REPO = helpers.REPO
RULES = REPO / "configs" / "prometheus" / "rules" / "redline-alerts.yml"
AM_CONFIG = REPO / "configs" / "alertmanager" / "alertmanager.yml"
STACK_CONFIG = REPO / "configs" / "tempo-sidecar.yaml"
SERVICE_PREFIX = "alerting-"
FOR = "5s"


class Webhook:
    """Records the JSON body of every POST (Alertmanager's webhook payloads)."""

    def __init__(self):
        self.bodies: list = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                with hook.lock:
                    hook.bodies.append((self.path, raw))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self) -> list:
        out = []
        with self.lock:
            bodies = list(self.bodies)
        for path, raw in bodies:
            body = json.loads(raw)
            out.extend(dict(a, _path=path, _receiver=body.get("receiver")) for a in body.get("alerts", []))
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def traffic(procs, loadgen_bin: Path, grpc_port: int) -> helpers.Proc:
    """Spans with ~20% errors on every span name, http.server included, for up to 90s (the
    test stops it as soon as the alert arrives)."""
    return procs.start("loadgen", [
        loadgen_bin, "run",
        "--endpoint", f"127.0.0.1:{grpc_port}",
        "--rate", "300", "--duration", "90s",
        "--services", "2", "--service-prefix", SERVICE_PREFIX,
        "--error-ratio", "0.2",
        # Quiet for the other two alerts: p95 well under 250 ms, cache hits well over 80%.
        "--latency-median", "5ms", "--latency-p99", "100ms",
        "--cache-hit-ratio", "0.97", "--cache-missing-ratio", "0",
        "--connections", "1",
    ])


def only_diff(orig: str, copy: str) -> list:
    return [line for line in difflib.unified_diff(orig.splitlines(), copy.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_error_rate_alert_reaches_the_webhook(redline_bin, loadgen_bin, procs, sink, tmp_path):
    am_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if am_bin is None:
        pytest.fail("Alertmanager not found (Debian package prometheus-alertmanager; scripts/setup installs it)",
                    pytrace=False)
    hook = Webhook()
    try:
        run_alerting(redline_bin, loadgen_bin, am_bin, procs, sink, tmp_path, hook)
    finally:
        hook.stop()


def run_alerting(redline_bin, loadgen_bin, am_bin, procs, sink, tmp_path, hook):
    # ---- rules: a copy with only `for:` shortened
    orig_rules = RULES.read_text()
    rules = re.sub(r"^(\s*for:) \d+m$", rf"\1 {FOR}", orig_rules, flags=re.M)
    diff = only_diff(orig_rules, rules)
    assert len(diff) == 6 and all(re.fullmatch(r"[-+]\s+for: \w+", d) for d in diff), diff
    (tmp_path / "rules.yml").write_text(rules)

    # ---- Alertmanager: a copy with only the receiver URL and the waits changed
    orig_am = AM_CONFIG.read_text()
    am = orig_am
    for old, new in (('url: "http://alert-webhook:8080/alerts"', f'url: "http://127.0.0.1:{hook.port}/alerts"'),
                     ("group_wait: 30s", "group_wait: 1s"),
                     ("group_interval: 5m", "group_interval: 5s")):
        assert am.count(old) == 1, f"{AM_CONFIG.name}: expected one {old!r}"
        am = am.replace(old, new)
    assert len(only_diff(orig_am, am)) == 6
    (tmp_path / "alertmanager.yml").write_text(am)
    am_port = helpers.free_port()
    am_proc = procs.start("alertmanager", [
        am_bin, f"--config.file={tmp_path / 'alertmanager.yml'}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",  # no gossip: a single instance
        "--log.level=warn",
    ])

    # ---- Redline: the stack config, unchanged
    ports = {k: helpers.free_port() for k in ("GRPC", "HTTP", "METRICS", "HEALTH", "TELEMETRY")}
    env = {f"REDLINE_{k}_PORT": str(p) for k, p in ports.items()}
    env.update(REDLINE_LISTEN_HOST="127.0.0.1", TEMPO_ENDPOINT=f"127.0.0.1:{sink.port}")
    redline = procs.start("redline", [redline_bin, "--config", STACK_CONFIG], env=env)

    # ---- Prometheus: scrape every second, evaluate every second, alert to Alertmanager
    prom_port = helpers.free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {tmp_path / 'rules.yml'}\n"
        f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am_port}']\n"
        "scrape_configs:\n  - job_name: redline\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{ports['METRICS']}']\n"
    )
    prom = procs.start("prometheus", [
        "prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
        "--log.level=warn",
    ])

    for proc, url in ((am_proc, f"http://127.0.0.1:{am_port}/-/ready"),
                      (redline, f"http://127.0.0.1:{ports['HEALTH']}/"),
                      (prom, f"http://127.0.0.1:{prom_port}/-/ready")):
        helpers.wait_until(lambda: requests.get(url, timeout=1).status_code == 200, 30, f"{proc.name} ready",
                           alive=proc)

    load = traffic(procs, loadgen_bin, ports["GRPC"])

    def firing():
        return [a for a in hook.alerts()
                if a["labels"].get("alertname") == "HttpServerErrorRateHigh" and a["status"] == "firing"]

    try:
        got = helpers.wait_until(firing, 90, "HttpServerErrorRateHigh at the webhook", interval=0.5, alive=redline)
    except helpers.WaitTimeout:
        rules_state = requests.get(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5).text
        raise AssertionError(f"no firing alert reached the webhook; webhook got {hook.alerts()}\n"
                             f"Prometheus rules: {rules_state[:3000]}\n{load.log_text(3000)}") from None
    finally:
        load.stop()

    a = got[0]
    assert a["_path"] == "/alerts" and a["_receiver"] == "webhook", a
    labels = a["labels"]
    assert labels["severity"] == "critical", labels
    assert labels["service_name"].startswith(SERVICE_PREFIX), labels
    assert set(labels) == {"alertname", "service_name", "severity"}, labels
    ann = a["annotations"]
    assert ann["summary"].startswith(f"{labels['service_name']}: http.server error rate "), ann
    assert ann["summary"].endswith("% (above 1%)"), ann
    assert ann["runbook_url"] == "https://runbooks.example.com/redline/HttpServerErrorRateHigh", ann
    # The traffic is fast and mostly cached: the other two alerts must stay quiet.
    names = {x["labels"]["alertname"] for x in hook.alerts()}
    assert names == {"HttpServerErrorRateHigh"}, names
