"""otelcol-contrib and Redline started side by side on the same config file.

The user's YAML is read once; each collector gets a copy in which only listen and send
addresses are rewritten (its own free ports on 127.0.0.1, its own OTLP sink standing in for
Tempo), each `file_storage` directory becomes a subdirectory of its own and, where a scenario
asks for it, the spanmetrics flush interval (otelcol's default of 60 s only delays when its
series appear, it changes no value). Both are fed the same bytes; the suite then compares
what each serves and forwards.
"""

from __future__ import annotations

import copy
import http.server
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc
import requests
import yaml

import helpers
from expo import OPENMETRICS, TEXT, Exposition, parse
from otlp_http_sink import OtlpHttpSink
from otlp_sink import OtlpSink

SIDES = ("otelcol", "redline")
# Variables the shipped configs read with ${env:...} and no default; the same for both.
CONFIG_ENV = {"HOSTNAME": "parity-host", "TEMPO_ENDPOINT": "127.0.0.1:1", "REMOTE_WRITE_URL": "http://127.0.0.1:1",
              "REDLINE_FORWARD_ENDPOINT": "127.0.0.1:1"}
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


class RemoteWriteSink:
    """Accepts Prometheus remote-write requests on 127.0.0.1 and keeps their (snappy) bodies,
    and in `requests` each one's headers ((lower-case name, value) pairs as they came) with
    its body."""

    def __init__(self):
        bodies = self.bodies = []
        requests_ = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                requests_.append((tuple((k.lower(), v) for k, v in self.headers.items()), body))
                bodies.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/write"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def rewrite(config: dict, sink_endpoint: str, flush_interval: Optional[str],
            remote_write_url: str = "", otlphttp_url: str = "") -> tuple[dict, dict]:
    """A copy of `config` listening on free 127.0.0.1 ports and sending to `sink_endpoint`
    (OTLP/gRPC), `otlphttp_url` (OTLP/HTTP: `endpoint` and the per-signal URLs the file sets,
    their paths kept) and `remote_write_url`;
    returns (config, ports) with ports keyed `grpc`, `http`, `prom` (first of each kind),
    `<id>` for every other listener, and `telemetry`."""
    cfg = copy.deepcopy(config)
    ports: dict = {}

    def listen(key: str) -> str:
        port = helpers.free_port()
        ports.setdefault(key, port)
        return f"127.0.0.1:{port}"

    for rid, rc in (cfg.get("receivers") or {}).items():
        if _type(rid) != "otlp":
            continue
        protocols = (rc or {}).get("protocols") or {}
        for proto in ("grpc", "http"):
            if proto in protocols:
                protocols[proto] = dict(protocols[proto] or {})
                protocols[proto]["endpoint"] = listen(proto if rid == "otlp" else f"{rid}.{proto}")
    for eid, ec in (cfg.get("exporters") or {}).items():
        kind = _type(eid)
        if kind in ("otlp", "otlp_grpc"):
            ec["endpoint"] = sink_endpoint
        elif kind in ("otlphttp", "otlp_http") and otlphttp_url:
            # Only scheme, host and port change: the path (Loki's /otlp, ...) stays.
            for key in ("endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"):
                if ec.get(key):
                    ec[key] = otlphttp_url + urllib.parse.urlsplit(str(ec[key])).path.rstrip("/")
        elif kind == "prometheusremotewrite":
            ec["endpoint"] = remote_write_url
        elif kind == "prometheus":
            ec["endpoint"] = listen("prom" if "prom" not in ports else eid)
    for xid, xc in (cfg.get("extensions") or {}).items():
        if _type(xid) in ("health_check", "zpages"):
            key = "health" if _type(xid) == "health_check" else "zpages"
            cfg["extensions"][xid] = dict(xc or {}, endpoint=listen(key))
    if flush_interval is not None:
        for cid, cc in (cfg.get("connectors") or {}).items():
            if _type(cid) in ("spanmetrics", "span_metrics"):
                cfg["connectors"][cid] = dict(cc or {}, metrics_flush_interval=flush_interval)
    # Each collector's own metrics on a port of its own (otelcol's default is :8888 for all).
    telemetry = cfg.setdefault("service", {}).setdefault("telemetry", {}) or {}
    cfg["service"]["telemetry"] = telemetry
    port = helpers.free_port()
    ports["telemetry"] = port
    # The file's naming options (`without_type_suffix`, ...) are kept.
    readers = (telemetry.get("metrics") or {}).get("readers") or [{}]
    naming = {k: v for k, v in
              (((readers[0].get("pull") or {}).get("exporter") or {}).get("prometheus") or {}).items()
              if k.startswith("without_")}
    telemetry["metrics"] = {
        "level": "normal",
        "readers": [{"pull": {"exporter": {"prometheus": {
            "host": "127.0.0.1", "port": port, **naming}}}}],
    }
    return cfg, ports


def own_storage(cfg: dict, side: str) -> None:
    """Each collector its own `file_storage` directory: `<directory>/<side>`, made here."""
    for xid, xc in (cfg.get("extensions") or {}).items():
        if _type(xid) == "file_storage" and (xc or {}).get("directory"):
            directory = Path(xc["directory"]) / side
            directory.mkdir(parents=True, exist_ok=True)
            cfg["extensions"][xid] = dict(xc, directory=str(directory))


@dataclass
class Answer:
    """What one collector answered a client: the gRPC status code name or HTTP status, and
    the response body."""

    status: str
    body: bytes = b""
    content_type: str = ""


class Collector:
    def __init__(self, side: str, procs, argv: list, cfg: dict, ports: dict, sink: OtlpSink, workdir: Path,
                 env: Optional[dict] = None):
        self.side, self.ports, self.sink = side, ports, sink
        self.config_path = workdir / f"{side}.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self._procs, self._argv, self._env = procs, argv, {**CONFIG_ENV, **(env or {})}
        self.starts = 1
        self.proc = procs.start(side, [*argv, "--config", self.config_path], env=self._env)
        self.channel = None

    def start_again(self):
        """After `stop()`: start again on the same config file (same ports and storage
        directories); ready when this returns."""
        self.starts += 1
        self.proc = self._procs.start(f"{self.side}-{self.starts}", [*self._argv, "--config", self.config_path],
                                      env=self._env)
        self.wait_ready()

    def url(self, key: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[key]}{path}"

    def wait_ready(self, timeout: float = 60):
        listening = [p for k, p in self.ports.items()]
        helpers.wait_until(lambda: all(helpers.port_accepts(p) for p in listening), timeout,
                           f"{self.side} to listen on {sorted(self.ports)}", alive=self.proc)
        if "grpc" in self.ports:
            self.channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['grpc']}")

    def scrape(self, accept: str = TEXT, key: str = "prom") -> Exposition:
        r = requests.get(self.url(key, "/metrics"), headers={"Accept": accept}, timeout=30)
        assert r.status_code == 200, f"{self.side} /metrics answered {r.status_code}: {r.text[:300]}"
        return parse(r.text, r.headers.get("Content-Type", TEXT))

    def grpc_export(self, body: bytes, method: str = TRACE_EXPORT, metadata=(), compression=None) -> Answer:
        call = self.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            out = call(body, timeout=15, metadata=metadata or None, compression=compression)
            return Answer("OK", out)
        except grpc.RpcError as e:
            return Answer(e.code().name)

    def http_post(self, path: str, body: bytes, headers: dict) -> Answer:
        r = requests.post(self.url("http", path), data=body, headers=headers, timeout=15)
        return Answer(str(r.status_code), r.content, r.headers.get("Content-Type", "").split(";")[0])

    def stop(self):
        if self.channel is not None:
            self.channel.close()
        code = self.proc.stop(timeout=15)
        assert not self.proc.killed, f"{self.side} did not stop within 15 s\n{self.proc.log_text()}"
        return code


class Pair:
    """otelcol-contrib and Redline on one config. `flush_interval` rewrites the spanmetrics
    flush interval (None: the file's own, otelcol's default 60 s)."""

    def __init__(self, procs, workdir: Path, otelcol_bin: Path, redline_bin: Path, config_text: str,
                 flush_interval: Optional[str] = "1s", sink_tls=None, env: Optional[dict] = None):
        """`sink_tls`: (key PEM, certificate PEM) for OTLP/gRPC sinks that serve TLS; `env`:
        variables for both collectors' processes."""
        self.config = yaml.safe_load(config_text)
        self.flush_seconds = _seconds(flush_interval) if flush_interval else 60.0
        self.sinks = {side: OtlpSink(tls=sink_tls).start() for side in SIDES}
        self.remote_write = {side: RemoteWriteSink() for side in SIDES}
        self.http_sinks = {side: OtlpHttpSink().start() for side in SIDES}
        argv = {"otelcol": [otelcol_bin], "redline": [redline_bin]}
        self.c: dict[str, Collector] = {}
        try:
            for side in SIDES:
                # A free port can be taken by another process between the check and the
                # bind: then that collector starts again on fresh ports.
                for attempt in range(3):
                    cfg, ports = rewrite(self.config, self.sinks[side].endpoint, flush_interval,
                                         self.remote_write[side].url, self.http_sinks[side].url())
                    own_storage(cfg, side)
                    self.c[side] = Collector(side, procs, argv[side], cfg, ports, self.sinks[side], workdir,
                                             env)
                    try:
                        self.c[side].wait_ready()
                        break
                    except Exception:
                        lost_port = "address already in use" in self.c[side].proc.log_text()
                        if attempt == 2 or not lost_port:
                            raise
                        self.c[side].proc.stop(timeout=15)
        except BaseException:
            self.stop()
            raise

    @property
    def otelcol(self) -> Collector:
        return self.c["otelcol"]

    @property
    def redline(self) -> Collector:
        return self.c["redline"]

    def each(self, fn) -> dict:
        return {side: fn(self.c[side]) for side in SIDES}

    def grpc_export(self, body: bytes, **kw) -> dict:
        return self.each(lambda c: c.grpc_export(body, **kw))

    def http_post(self, path: str, body: bytes, headers: dict) -> dict:
        return self.each(lambda c: c.http_post(path, body, headers))

    def scrape(self, accept: str = TEXT) -> dict:
        return self.each(lambda c: c.scrape(accept))

    def wait_counted(self, expected: int, suffix: str = "calls_total", timeout: Optional[float] = None):
        """Until both serve `expected` calls in all. otelcol exports a new counter series as 0
        at the first flush that has it and its count at the next, so this takes up to two
        flush intervals there. A collector that never gets there is left to the comparison to
        explain; nothing fails here."""
        deadline = time.monotonic() + (timeout if timeout is not None else 2 * self.flush_seconds + 15)
        pending = set(SIDES)
        while pending and time.monotonic() < deadline:
            for side in list(pending):
                try:
                    expo = self.c[side].scrape()
                except (requests.RequestException, AssertionError):
                    continue
                total = sum(s.value for f in expo.families.values() for (n, _), s in f.samples.items()
                            if n.endswith(suffix))
                if total == expected:
                    pending.discard(side)
            time.sleep(0.3)
        # One more flush so that otelcol's last interval is in, whatever it held.
        if "otelcol" not in pending:
            time.sleep(min(self.flush_seconds, 2.0))
        return pending

    def wait_forwarded(self, timeout: float = 20, quiet: float = 1.5):
        """Until neither sink has received anything for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            now = tuple(self.sinks[s].request_count() for s in SIDES)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.2)

    def forwarded(self) -> dict:
        return {side: self.sinks[side].requests() for side in SIDES}

    def stop(self):
        for c in self.c.values():
            try:
                c.stop()
            except AssertionError:
                pass
        for s in [*self.sinks.values(), *self.remote_write.values(), *self.http_sinks.values()]:
            s.stop()


def _seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for u in ("ms", "s", "m"):
        if d.endswith(u):
            return float(d[: -len(u)]) * units[u]
    raise ValueError(f"duration {d!r}")
