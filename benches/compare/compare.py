"""otelcol-contrib, Redline and rotel side by side: same loads, same sink, alternating.

Run through ./run, which installs the pinned rotel into benches/compare/.venv and builds (or
finds) the pinned otelcol-contrib peer first.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import procs
import results
from procs import CompareError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RELEASE = REPO / "target" / "release"

# The collectors, in round 1's order; each later round starts one further along, so every
# collector runs first, second and third once in three rounds.
COLLECTORS = ("otelcol", "redline", "rotel")

# configs/otelcol-tempo.yaml with 127.0.0.1 ports and the sink as Tempo. Redline and otelcol
# run this same text. {compression} is empty for the reference config (the otlp exporter's
# default, gzip) or a `compression:` line. The telemetry reader keeps otelcol's own metrics
# off :8888 (Redline reads the same key and serves its self-telemetry there too).
COLLECTOR_CONFIG = """\
# configs/otelcol-tempo.yaml with 127.0.0.1 ports and the loadgen sink as Tempo.
# The same file runs Redline and otelcol-contrib.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
{foreign_receiver}connectors:
  spanmetrics:
    namespace: traces.spanmetrics
    dimensions:
      - name: cdn.cache.hit
{extra_dimensions}{extra_connectors}exporters:
  otlp/tempo:
    endpoint: 127.0.0.1:{sink}
{compression}{sending_queue}    tls:
      insecure: true
  prometheus:
    endpoint: 127.0.0.1:{prom}
{processors}{extensions}service:
{service_extensions}  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
  pipelines:
    traces:
      receivers: [otlp{foreign_id}]
{pipeline_processors}      exporters: [spanmetrics, {connector_ids}otlp/tempo]
    metrics:
      receivers: [spanmetrics{metric_receivers}]
      exporters: [prometheus]
"""


@dataclass(frozen=True)
class Load:
    key: str
    title: str
    compression: str | None  # the otlp exporter's `compression:`; None = key left out (gzip)
    rotel_compression: str | None  # None: rotel has no such compression, the load skips it
    rate: float | None = None  # open loop, spans per second
    duration: str | None = None
    # Processors in front of spanmetrics and the exporter: {id: YAML body}, in pipeline order.
    # Their loads run otelcol and Redline only (rotel has no OTTL) and without --verify (the
    # series no longer match what loadgen sent).
    processors: tuple = ()
    drops: bool = False  # some spans never reach the sink: wait for it to go quiet instead
    # The otlp/tempo exporter's sending queue on a `file_storage` extension with `fsync: true`,
    # in a fresh directory per run.
    disk_queue: bool = False
    # loadgen sends gzip (`--gzip`), as SDKs configured with `compression: gzip` do.
    client_gzip: bool = False
    # More spanmetrics `dimensions` entries (YAML list items), after cdn.cache.hit. Such loads
    # run without --verify too: loadgen's check knows the reference config's labels only.
    dimensions: str = ""
    # More connectors after spanmetrics, fed by the traces pipeline and feeding the metrics
    # pipeline: {id: YAML body}. Such loads run without --verify and without rotel.
    connectors: tuple = ()
    # loadgen sends the same spans as Zipkin v2 JSON (`--protocol zipkin`) to a `zipkin`
    # receiver, or as Jaeger Thrift over HTTP (`--protocol jaeger`) to a `jaeger` receiver's
    # `thrift_http`, or as Jaeger gRPC (`--protocol jaeger-grpc`) to its `grpc`, in the traces
    # pipeline. Such loads run without --verify (Zipkin's and Thrift's microsecond times move
    # durations across bucket bounds, and the Jaeger translation makes an error of a span
    # whose http.status_code says so) and without rotel (no such receivers).
    foreign: str = ""


# loadgen's span names have no query string: the statement runs on every span and changes none.
UNTOUCHED = (("transform/untouched", 'trace_statements:\n  - replace_pattern(span.name, "\\\\?.*", "")'),)
# Dots in every one of loadgen's span names but a few: nearly every request is edited.
RENAME = (("transform/rename", 'trace_statements:\n  - replace_pattern(span.name, "\\\\.", "_")'),)
# loadgen's `http.request.method` and `http.response.status_code`: 2 labels of a few values.
GLOB_HTTP = "      - glob: \"http.*.*\"\n"
# `http.server` is one of each service's ten span names: about a tenth of the spans.
FILTER10 = (("filter/tenth", 'traces:\n  span:\n    - name == "http.server"'),)
# The shipped sidecar's memory_limiter, far above what the run uses: it never refuses.
LIMITED = (("memory_limiter", "check_interval: 1s\nlimit_mib: 4000"),)
# Every trace held a second, then kept: what holding, regrouping and re-encoding cost. Room for
# every trace of two seconds at full speed, so neither collector evicts one.
TAIL = (("tail_sampling", "decision_wait: 1s\nnum_traces: 200000\npolicies:\n"
         "  - {name: all, type: always_sample}"),)
# The same at a steady rate, each trace held 5 s: what holding costs where sidecars live.
TAIL5 = (("tail_sampling", "decision_wait: 5s\nnum_traces: 200000\npolicies:\n"
          "  - {name: all, type: always_sample}"),)
# As otelcol's docs advise: a `batch` processor after `tail_sampling` merges the traces it
# releases one by one into requests the exporter's queue can hold.
TAIL5_BATCH = TAIL5 + (("batch", "{}"),)
# Spans counted by the `count` connector by status code, server spans only: an OTTL
# condition and an attribute dimension on every span (loadgen's `http.response.status_code`).
COUNT = (("count", "spans:\n  spans.by.status:\n    conditions: ['kind == SPAN_KIND_SERVER']\n"
          "    attributes: [{key: http.response.status_code, default_value: none}]"),)
# Each span's `server.address` (one per service) moved to its resource: every request is
# decoded, regrouped and re-encoded.
GROUPBY = (("groupbyattrs", "keys: [server.address]"),)
# The client's address and user agent removed from every span, product ids masked in paths;
# the resource keys and the spanmetrics dimension allowed: every request is decoded, edited
# and re-encoded.
REDACT = (("redaction", "allowed_keys: [service.name, service.namespace, service.version, "
           "host.name, deployment.environment.name, telemetry.sdk.language, telemetry.sdk.name, "
           "telemetry.sdk.version, http.request.method, http.response.status_code, url.path, "
           "server.address, server.port, thread.name, code.function, cdn.cache.hit]\n"
           "blocked_values: ['[0-9]{3,}']"),)
# Every attribute kept, card numbers masked: loadgen sends none, so no request changes (the
# deployment that guards against rare leaks).
MASK = (("redaction", "allow_all_keys: true\nblocked_values: ['\\b4[0-9]{15}\\b']"),)
PROCESSOR_LOADS = ("untouched", "rename", "filter10", "limited", "tail", "tailsteady",
                   "tailbatch", "groupby", "redact", "mask")


def loads(args) -> dict[str, Load]:
    return {
        "reference": Load("reference", "reference config (forwarding with gzip)", None, "gzip"),
        "none": Load("none", "forwarding uncompressed (`compression: none`)", "none", "none"),
        "zstd": Load("zstd", "forwarding with `compression: zstd`", "zstd", None),
        "gzipclient": Load("gzipclient", "reference config, the client sending gzip "
                           "(loadgen `--gzip`)", None, "gzip", client_gzip=True),
        # rotel has no persistent queue: None keeps it out of this load.
        "disk": Load("disk", "uncompressed, persistent sending queue (`file_storage`, "
                     "`fsync: true`)", "none", None, disk_queue=True),
        "steady": Load("steady", f"steady {results.si(args.rate_value)} spans/s for "
                       f"{args.duration} (reference config)", None, "gzip",
                       rate=args.rate_value, duration=args.duration),
        # The steady-state target is set uncompressed: the per-request costs, not deflate.
        "nonesteady": Load("nonesteady", f"steady {results.si(args.rate_value)} spans/s for "
                           f"{args.duration}, forwarding uncompressed", "none", "none",
                           rate=args.rate_value, duration=args.duration),
        "gzipsteady": Load("gzipsteady", f"steady {results.si(args.rate_value)} spans/s for "
                           f"{args.duration}, the client sending gzip (reference config)", None,
                           "gzip", rate=args.rate_value, duration=args.duration,
                           client_gzip=True),
        "untouched": Load("untouched", "uncompressed, a `transform` statement that changes nothing",
                          "none", "none", processors=UNTOUCHED),
        "rename": Load("rename", "uncompressed, `transform` renaming nearly every span",
                       "none", "none", processors=RENAME),
        "filter10": Load("filter10", "uncompressed, `filter` dropping ~10% of spans",
                         "none", "none", processors=FILTER10, drops=True),
        "limited": Load("limited", "uncompressed, behind a `memory_limiter` that never refuses",
                        "none", "none", processors=LIMITED),
        "tail": Load("tail", "uncompressed, `tail_sampling` keeping every trace after 1 s",
                     "none", "none", processors=TAIL),
        "tailsteady": Load("tailsteady", f"steady {results.si(args.rate_value)} spans/s for "
                           f"{args.duration}, uncompressed, `tail_sampling` keeping every "
                           "trace after 5 s", "none", "none", rate=args.rate_value,
                           duration=args.duration, processors=TAIL5),
        "tailbatch": Load("tailbatch", f"steady {results.si(args.rate_value)} spans/s for "
                          f"{args.duration}, uncompressed, `tail_sampling` keeping every trace "
                          "after 5 s, then `batch`", "none", "none", rate=args.rate_value,
                          duration=args.duration, processors=TAIL5_BATCH),
        "count": Load("count", "uncompressed, a `count` connector counting server spans by "
                      "status code", "none", None, connectors=COUNT),
        "groupby": Load("groupby", "uncompressed, `groupbyattrs` moving `server.address` to "
                        "the resource", "none", "none", processors=GROUPBY),
        "redact": Load("redact", "uncompressed, `redaction` removing two attributes of every span "
                       "and masking numbers in paths", "none", "none", processors=REDACT),
        "mask": Load("mask", "uncompressed, `redaction` masking card numbers, which no span "
                     "carries", "none", "none", processors=MASK),
        "zipkin": Load("zipkin", "uncompressed, the client sending Zipkin v2 JSON to a `zipkin` "
                       "receiver (loadgen `--protocol zipkin`)", "none", None, foreign="zipkin"),
        # Below what otelcol's zipkin receiver takes at full speed on 2 cores (~24k spans/s):
        # at full speed it answers 500 to the requests its queue cannot hold, which Zipkin
        # clients do not resend, so only a rate both take compares the same spans.
        "zipkinsteady": Load("zipkinsteady", f"steady 10k spans/s for {args.duration}, "
                             "uncompressed, the client sending Zipkin v2 JSON", "none", None,
                             rate=10_000, duration=args.duration, foreign="zipkin"),
        "jaeger": Load("jaeger", "uncompressed, the client sending Jaeger Thrift batches over HTTP "
                       "to a `jaeger` receiver (loadgen `--protocol jaeger`)", "none", None,
                       foreign="jaeger"),
        "jaegersteady": Load("jaegersteady", f"steady 10k spans/s for {args.duration}, "
                             "uncompressed, the client sending Jaeger Thrift over HTTP", "none",
                             None, rate=10_000, duration=args.duration, foreign="jaeger"),
        "jaegergrpc": Load("jaegergrpc", "uncompressed, the client sending Jaeger gRPC PostSpans "
                           "calls (as jaeger-agent) to a `jaeger` receiver (loadgen `--protocol "
                           "jaeger-grpc`)", "none", None, foreign="jaeger-grpc"),
        # rotel has no span metrics: None keeps it out of this load.
        "globs": Load("globs", "uncompressed, a spanmetrics glob dimension (`http.*.*`)",
                      "none", None, dimensions=GLOB_HTTP),
    }


def processors_yaml(load: Load) -> tuple[str, str]:
    """The `processors:` section and the pipeline's `processors:` line of a load."""
    if not load.processors:
        return "", ""
    body = "".join(f"  {pid}:\n" + "".join(f"    {line}\n" for line in yaml.split("\n"))
                   for pid, yaml in load.processors)
    ids = ", ".join(pid for pid, _ in load.processors)
    return f"processors:\n{body}", f"      processors: [{ids}]\n"


def connectors_yaml(load: Load) -> tuple[str, str, str]:
    """A load's extra `connectors:` entries, its traces exporters and its metrics receivers."""
    body = "".join(f"  {cid}:\n" + "".join(f"    {line}\n" for line in yaml.split("\n"))
                   for cid, yaml in load.connectors)
    ids = [cid for cid, _ in load.connectors]
    return body, "".join(f"{cid}, " for cid in ids), "".join(f", {cid}" for cid in ids)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="benches/compare/run",
        description="Compare otelcol-contrib, Redline and rotel: CPU seconds per million spans, "
        "peak RSS and latency under the same loadgen loads, forwarding to the same loadgen sink.",
    )
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--spans", default="2M",
                    help="spans per closed-loop measurement (k/M suffix; 2M)")
    ap.add_argument(
        "--loads", default="reference,none,steady",
        help="loads to measure, comma-separated: reference (the reference config, gzip), none "
        "(forwarding uncompressed), zstd (forwarding with zstd; otelcol and Redline only), "
        "gzipclient (the reference config, loadgen sending gzip), disk "
        "(uncompressed through a file_storage sending queue with fsync; otelcol and Redline "
        "only), steady "
        "(open loop at --rate for --duration), nonesteady (steady, forwarding uncompressed), "
        "gzipsteady (steady, loadgen sending gzip); untouched, rename, filter10, limited, tail, "
        "tailsteady, tailbatch, groupby, redact, mask (uncompressed with a "
        "processor; otelcol and Redline only); globs (uncompressed, a spanmetrics glob "
        "dimension; otelcol and Redline only); count (uncompressed, a count connector; "
        "otelcol and Redline only); zipkin (uncompressed, loadgen sending Zipkin v2 JSON to a "
        "zipkin receiver; otelcol and Redline only), zipkinsteady (the same at 10k spans/s); "
        "jaeger (uncompressed, loadgen sending Jaeger Thrift over HTTP to a jaeger receiver; "
        "otelcol and Redline only), jaegersteady (the same at 10k spans/s); jaegergrpc "
        "(uncompressed, loadgen sending Jaeger gRPC as jaeger-agent does; otelcol and Redline "
        "only); "
        "default "
        "reference,none,steady",
    )
    ap.add_argument("--rate", default="50k", help="spans per second of the steady load (50k)")
    ap.add_argument("--duration", default="20s", help="length of the steady load (20s)")
    ap.add_argument(
        "--collectors", default=",".join(COLLECTORS),
        help="collectors to measure, comma-separated (default otelcol,redline,rotel)",
    )
    ap.add_argument("--connections", type=int, default=4, help="loadgen connections (4)")
    ap.add_argument("--concurrency", type=int, default=8,
                    help="loadgen in flight per conn (8; the most in flight with --rate)")
    ap.add_argument(
        "--verify", choices=["first", "all", "none"], default="first",
        help="rounds in which Redline's metrics are checked exactly with --verify (first)",
    )
    ap.add_argument(
        "--rotel-arg", action="append", default=[],
        help="extra argument for `rotel-agent start` (repeatable), e.g. --disable-batching",
    )
    ap.add_argument("--run-timeout", type=float, default=300, help="bound on one loadgen run (s)")
    ap.add_argument("--no-build", action="store_true", help="use target/release as it is")
    ap.add_argument(
        "--bin-dir", help="take redline and loadgen from this directory instead of "
        "target/release (implies --no-build), e.g. a build of a clean checkout",
    )
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"), help="results file")
    ap.add_argument("--rotel-version", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--otelcol-bin", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.span_count = procs.parse_count(a.spans)
    a.rate_value = float(procs.parse_count(a.rate))
    a.load_keys = [x.strip() for x in a.loads.split(",") if x.strip()]
    known = loads(a)
    for k in a.load_keys:
        if k not in known:
            ap.error(f"unknown load {k!r}: use {', '.join(known)}")
    a.collectors = [x.strip() for x in a.collectors.split(",") if x.strip()]
    for c in a.collectors:
        if c not in COLLECTORS:
            ap.error(f"unknown collector {c!r}: use otelcol, redline and/or rotel")
    if "otelcol" in a.collectors and not a.otelcol_bin:
        ap.error("no otelcol binary: run through ./run, or leave otelcol out of --collectors")
    if a.rounds < 1 or a.span_count < 1 or a.rate_value <= 0:
        ap.error("--rounds, --spans and --rate must be positive")
    if a.bin_dir:
        a.no_build = True
    return a


def rotel_binary() -> Path:
    spec = importlib.util.find_spec("rotel")
    if spec is None or not spec.submodule_search_locations:
        raise CompareError("the rotel package is not installed in this interpreter (use ./run)")
    path = Path(list(spec.submodule_search_locations)[0]) / "rotel-agent"
    if not os.access(path, os.X_OK):
        raise CompareError(f"{path} is not executable")
    return path


def build(args) -> None:
    if args.no_build:
        return
    cmd = ["cargo", "build", "--release", "-p", "redline", "-p", "redline-loadgen"]
    print(f"compare: {' '.join(cmd)}", file=sys.stderr, flush=True)
    try:
        subprocess.run(cmd, cwd=REPO, check=True, timeout=3600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        raise CompareError(
            f"{' '.join(cmd)} failed ({e}); to measure binaries built elsewhere (e.g. a clone "
            "of a clean commit) use --bin-dir DIR") from None


class Bench:
    def __init__(self, args, work: Path, rotel: Path | None, otelcol: Path | None,
                 bin_dir: Path):
        self.args = args
        self.bin = bin_dir
        self.work = work
        self.rotel = rotel
        self.otelcol = otelcol
        self.sink_port = procs.free_port()
        self.count_port = procs.free_port()
        self.count_url = f"http://127.0.0.1:{self.count_port}/count"
        self.sink = None
        # Persistent queue directories of the running collector, removed once it stopped.
        self.queue_dirs: list[Path] = []

    def start_sink(self) -> str:
        log = self.work / "sink.log"
        cmd = [self.bin / "loadgen", "sink", "--listen", f"127.0.0.1:{self.sink_port}",
               "--count-listen", f"127.0.0.1:{self.count_port}", "--report-interval", "0s"]
        self.sink = procs.start(cmd, log)
        procs.wait_until("sink", lambda: procs.http_ok(self.count_url), self.sink, 20, log)
        return " ".join(shlex.quote(str(c)) for c in cmd)

    def start_collector(self, name: str, load: Load, tag: str):
        grpc, other = procs.free_port(), procs.free_port()
        log = self.work / f"{tag}.log"
        if name == "rotel":
            cmd = [self.rotel, "start",
                   "--otlp-grpc-endpoint", f"127.0.0.1:{grpc}",
                   "--otlp-http-endpoint", f"127.0.0.1:{other}",
                   "--exporter", "otlp",
                   "--otlp-exporter-endpoint", f"http://127.0.0.1:{self.sink_port}",
                   "--otlp-exporter-protocol", "grpc",
                   "--otlp-exporter-compression", load.rotel_compression,
                   "--pid-file", self.work / "rotel.pid",
                   "--log-file", self.work / "rotel-agent.log",
                   *self.args.rotel_arg]
            p = procs.start(cmd, log)
            self._ready(p, name, lambda: procs.tcp_open(grpc), log)
            return p, cmd, f"127.0.0.1:{grpc}", None
        # Redline and otelcol: the same YAML.
        cfg = self.work / f"{tag}.yaml"
        comp = f"    compression: {load.compression}\n" if load.compression else ""
        section, line = processors_yaml(load)
        connectors, connector_ids, metric_receivers = connectors_yaml(load)
        queue, extensions, service_extensions = "", "", ""
        if load.disk_queue:
            # A fresh directory on the disk (not tmpfs) per run: a previous run's backlog must
            # not be sent, and fsync must reach a real device.
            qdir = Path(tempfile.mkdtemp(prefix=f"compare-{tag}-queue-", dir=self.work))
            self.queue_dirs.append(qdir)
            queue = "    sending_queue:\n      storage: file_storage/queue\n"
            extensions = (f"extensions:\n  file_storage/queue:\n    directory: {qdir}\n"
                          "    fsync: true\n")
            service_extensions = "  extensions: [file_storage/queue]\n"
        foreign_port = procs.free_port() if load.foreign else None
        foreign_receiver = {
            "": "",
            "zipkin": f"  zipkin:\n    endpoint: 127.0.0.1:{foreign_port}\n",
            "jaeger": ("  jaeger:\n    protocols:\n      thrift_http:\n"
                       f"        endpoint: 127.0.0.1:{foreign_port}\n"),
            "jaeger-grpc": ("  jaeger:\n    protocols:\n      grpc:\n"
                            f"        endpoint: 127.0.0.1:{foreign_port}\n"),
        }[load.foreign]
        cfg.write_text(COLLECTOR_CONFIG.format(
            foreign_receiver=foreign_receiver,
            foreign_id=f", {load.foreign.split('-')[0]}" if load.foreign else "",
            grpc=grpc, sink=self.sink_port, prom=other, telemetry=procs.free_port(),
            compression=comp, processors=section, pipeline_processors=line,
            sending_queue=queue, extensions=extensions, service_extensions=service_extensions,
            extra_dimensions=load.dimensions, extra_connectors=connectors,
            connector_ids=connector_ids, metric_receivers=metric_receivers))
        binary = self.bin / "redline" if name == "redline" else self.otelcol
        cmd = [binary, "--config", cfg]
        p = procs.start(cmd, log)
        metrics = f"http://127.0.0.1:{other}/metrics"
        # Ready: gRPC port open and the prometheus exporter answering.
        self._ready(p, name, lambda: procs.tcp_open(grpc) and procs.http_ok(metrics), log)
        if foreign_port is not None:
            self._ready(p, name, lambda: procs.tcp_open(foreign_port), log)
            return p, cmd, f"127.0.0.1:{foreign_port}", metrics
        return p, cmd, f"127.0.0.1:{grpc}", metrics

    @staticmethod
    def _ready(p, name: str, check, log: Path) -> None:
        try:
            procs.wait_until(name, check, p, 30, log)
        except CompareError:
            procs.stop(p)
            raise

    def measure(self, rnd: int, name: str, load: Load, verify: bool) -> dict:
        tag = f"r{rnd}-{load.key}-{name}"
        row = {"round": rnd, "collector": name, "load": load.key, "verify": verify}
        p, cmd, endpoint, metrics = self.start_collector(name, load, tag)
        try:
            row["collector_cmd"] = " ".join(shlex.quote(str(c)) for c in cmd)
            cfg = self.work / f"{tag}.yaml"
            if cfg.exists():
                row["config"] = cfg.read_text()
            report_path = self.work / f"{tag}.json"
            lg = [self.bin / "loadgen", "run", "-e", endpoint]
            if load.rate:
                lg += ["--rate", f"{load.rate:.0f}", "--duration", load.duration]
            else:
                lg += ["--spans", str(self.args.span_count)]
            lg += ["--connections", str(self.args.connections),
                   "--concurrency", str(self.args.concurrency),
                   "--retries", "100", "--backoff", "10ms",
                   "--pid", str(p.pid), "--json", report_path, "-q"]
            if load.client_gzip:
                lg += ["--gzip"]
            if load.foreign:
                lg += ["--protocol", load.foreign]
            if verify:
                lg += ["--verify", "--metrics-url", metrics, "--dimension", "cdn.cache.hit",
                       "--sink-count-url", self.count_url]
            row["loadgen_cmd"] = " ".join(shlex.quote(str(c)) for c in lg)
            self._run_loadgen(p, lg, report_path, tag, row, drops=load.drops)
        finally:
            rc = procs.stop(p)
            row["exit_code"] = rc
            for qdir in self.queue_dirs:
                shutil.rmtree(qdir, ignore_errors=True)
            self.queue_dirs.clear()
        return row

    def _run_loadgen(self, p, lg, report_path: Path, tag: str, row: dict,
                     drops: bool = False) -> None:
        sink0 = procs.sink_spans(self.count_url)
        cpu0 = procs.cpu_seconds(p.pid)
        sink_cpu0 = procs.cpu_seconds(self.sink.pid)
        busy0, wall0 = procs.machine_busy_seconds(), time.monotonic()
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        row["loadavg_1m"] = float(Path("/proc/loadavg").read_text().split()[0])

        log = self.work / f"{tag}.loadgen.log"
        lp = procs.start(lg, log)
        try:
            lp.wait(timeout=self.args.run_timeout)
        except subprocess.TimeoutExpired:
            procs.stop(lp)
            raise CompareError(f"{tag}: loadgen did not finish in {self.args.run_timeout:.0f}s")
        procs.stop(lp)
        cpu_at_end = procs.cpu_seconds(p.pid)
        busy1, wall1 = procs.machine_busy_seconds(), time.monotonic()
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sink_cpu1 = procs.cpu_seconds(self.sink.pid)
        row["loadgen_exit"] = lp.returncode
        if not report_path.exists():
            raise CompareError(f"{tag}: loadgen wrote no report\n{procs.log_tail(log)}")
        rep = json.loads(report_path.read_text())
        col = rep.get("collector") or {}
        # Spans of an accepted request the collector rejected (OTLP partial success, or a
        # later Jaeger batch of the request refused) are not forwarded: they are not awaited.
        accepted = rep["accepted"]["spans"] - rep.get("rejected_spans", 0)

        # The collectors acknowledge before forwarding; count the CPU until the sink has
        # every accepted span, so the last batches' export work is in too.
        drained_ok = True
        try:
            if drops:
                procs.wait_quiet(f"{tag}: sink drain", lambda: procs.sink_spans(self.count_url), p,
                                 60, quiet=1.0)
            else:
                procs.wait_until(
                    f"{tag}: sink drain",
                    lambda: procs.sink_spans(self.count_url) - sink0 >= accepted, p, 60, None)
        except CompareError as e:
            drained_ok = False
            row["error"] = str(e)
        row["cpu_to_drain_s"] = procs.cpu_seconds(p.pid) - cpu0
        row["peak_rss_bytes_drained"] = procs.peak_rss_bytes(p.pid)
        row["sink_spans"] = procs.sink_spans(self.count_url) - sink0
        # A fresh collector opens fresh connections to the sink, so these count only its sends.
        wire = procs.tcp_bytes_received(self.sink_port)
        row["wire_bytes_per_span"] = wire / row["sink_spans"] if wire and row["sink_spans"] else None
        row["drained"] = drained_ok and (drops or row["sink_spans"] == accepted)

        loadgen_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        other = (busy1 - busy0) - (cpu_at_end - cpu0) - loadgen_cpu - (sink_cpu1 - sink_cpu0)
        row["background_cores"] = max(other, 0.0) / max(wall1 - wall0, 1e-9)
        row.update(
            sent=rep["sent"]["spans"],
            accepted=accepted,
            accepted_requests=rep["accepted"]["requests"],
            refused=rep["refused"]["spans"],
            retries=rep.get("retries", 0),
            uncertain_requests=rep.get("uncertain_requests", 0),
            elapsed_s=rep["elapsed_seconds"],
            request_bytes_per_span=rep["bytes_per_request"] / max(rep["spans_per_request"], 1),
            rate=rep["spans_per_second"],
            target_rate=rep.get("target_spans_per_second"),
            latency_from=rep["latency"].get("measured_from"),
            p50_ms=rep["latency"]["p50_ms"],
            p99_ms=rep["latency"]["p99_ms"],
            dispatch_lag_ms=rep.get("max_dispatch_lag_ms"),
            # loadgen's own --pid figures cover the send phase only.
            cpu_send_s=col.get("cpu_seconds", 0.0),
            cpu_per_m_send=col.get("cpu_seconds_per_million_spans", 0.0),
            loadgen_cpu_s=loadgen_cpu,
        )
        cpu = row["cpu_to_drain_s"]
        row["cpu_per_m"] = cpu / accepted * 1e6 if accepted else 0.0
        row["spans_per_cpu_s"] = accepted / cpu if cpu > 0 else 0.0
        row["peak_rss_bytes"] = row["peak_rss_bytes_drained"]
        v = rep.get("verify")
        if v is not None:
            row["verify_result"] = {
                k: v.get(k) for k in ("ok", "expected_spans", "counted_spans", "expected_errors",
                                      "counted_errors", "series_expected", "values_checked",
                                      "mismatch_count")}
            row["verify_result"]["sink_ok"] = (v.get("sink") or {}).get("ok")
        if lp.returncode != 0:
            row["error"] = f"loadgen exited {lp.returncode}: {procs.log_tail(log, 5)}"


def main() -> int:
    args = parse_args()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    atexit.register(procs.stop_all)

    build(args)
    rotel = rotel_binary() if "rotel" in args.collectors else None
    otelcol = Path(args.otelcol_bin).resolve() if "otelcol" in args.collectors else None
    if otelcol is not None and not os.access(otelcol, os.X_OK):
        raise CompareError(f"{otelcol} is not executable")
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    for old in work.iterdir():
        if old.is_file():
            old.unlink()
    # Others rebuild target/release while this runs: every round must run the same binaries.
    src = Path(args.bin_dir).resolve() if args.bin_dir else RELEASE
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    for b in ("redline", "loadgen"):
        if not (src / b).exists():
            raise CompareError(f"{src / b} is missing" + (
                "" if args.bin_dir else ": run without --no-build"))
        shutil.copy2(src / b, bin_dir / b)

    info = results.environment(REPO, bin_dir, rotel, otelcol, args)
    info["redline_from"] = str(src)
    info["redline_built"] = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime((src / "redline").stat().st_mtime))
    bench = Bench(args, work, rotel, otelcol, bin_dir)
    info["sink_cmd"] = bench.start_sink()
    all_loads = loads(args)
    rows = []
    started = time.monotonic()
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(args.collectors)
        order = args.collectors[k:] + args.collectors[:k]
        for key in args.load_keys:
            load = all_loads[key]
            for name in order:
                if name == "rotel" and (load.processors or load.rotel_compression is None):
                    continue
                verify = not (load.processors or load.dimensions or load.connectors
                                or load.foreign) and name == "redline" and (
                    args.verify == "all" or (args.verify == "first" and rnd == 1))
                print(f"compare: round {rnd}/{args.rounds} load={key} {name}"
                      f"{' +verify' if verify else ''}", file=sys.stderr, flush=True)
                try:
                    row = bench.measure(rnd, name, load, verify)
                except CompareError as e:
                    row = {"round": rnd, "collector": name, "load": key,
                           "verify": verify, "error": str(e)}
                rows.append(row)
                print(results.row_line(row), file=sys.stderr, flush=True)
    info["duration_s"] = time.monotonic() - started
    procs.stop(bench.sink)

    text = results.markdown(info, rows, args, all_loads)
    Path(args.out).write_text(text)
    (work / "rows.json").write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(results.summary_table(rows, args, all_loads))
    print(f"compare: wrote {args.out} (raw: {work / 'rows.json'})", file=sys.stderr)
    return 1 if any("error" in r or not r.get("drained", False) for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CompareError as e:
        print(f"compare: {e}", file=sys.stderr)
        sys.exit(1)
