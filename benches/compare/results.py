"""Machine facts, the per-round table, medians, ratios, and RESULTS.md."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

MIB = 1024 * 1024
NAMES = {"otelcol": "otelcol-contrib", "redline": "Redline", "rotel": "rotel"}


def si(v: float) -> str:
    if v >= 1e6 and v % 1e5 == 0:
        return f"{v / 1e6:g}M"
    if v >= 1e3 and v % 100 == 0:
        return f"{v / 1e3:g}k"
    return f"{v:,.0f}"


def _run(cmd, cwd=None) -> str:
    try:
        out = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                             timeout=30)
        return out.stdout.strip() if out.returncode == 0 else f"(exit {out.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def environment(repo: Path, release: Path, rotel: Path | None, otelcol: Path | None,
                args) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines()
                  if ln.startswith("model name")), "unknown")
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal:"))
    # The sources the binary was built from: this checkout, or with --bin-dir the git
    # checkout that directory sits in (e.g. a clone of a clean commit), if any.
    src = repo
    if args.bin_dir:
        top = _run(["git", "rev-parse", "--show-toplevel"], cwd=args.bin_dir)
        src = Path(top) if top and not top.startswith("(") else None
    commit = _run(["git", "rev-parse", "HEAD"], cwd=src) if src else "(unknown)"
    # Read-only check: the checkout is shared with work in progress, so say when the binary
    # was built from more than the commit (only the paths that go into the binaries).
    dirty = src is not None and subprocess.run(
        ["git", "diff", "--quiet", "HEAD", "--", "crates", "proto", "configs", "Cargo.toml",
         "Cargo.lock", "rust-toolchain.toml"],
        cwd=src, capture_output=True, timeout=30).returncode != 0
    skip = {"--rotel-version", "--otelcol-bin"}
    argv, it = [], iter(sys.argv[1:])
    for a in it:
        if a in skip:
            next(it, None)
        elif a.split("=", 1)[0] not in skip:
            argv.append(shlex.quote(a))
    return {
        "repo": str(repo),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": f"benches/compare/run {' '.join(argv)}".strip(),
        "cpu_model": model,
        "cpus_online": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "rotel_pypi": args.rotel_version if rotel else None,
        "rotel_binary": _run([rotel, "version"]) if rotel else None,
        "otelcol_binary": str(otelcol) if otelcol else None,
        "otelcol_version": _run([otelcol, "--version"]) if otelcol else None,
        "redline_version": _run([release / "redline", "--version"]),
        "redline_commit": commit,
        "redline_dirty": dirty,
        "spans": args.span_count,
        "rate": args.rate_value,
        "duration": args.duration,
        "rounds": args.rounds,
        "loads": args.load_keys,
        "collectors": args.collectors,
        "connections": args.connections,
        "concurrency": args.concurrency,
        "rotel_extra": args.rotel_arg,
    }


def _f(v, fmt="{:.2f}") -> str:
    return "-" if v is None else fmt.format(v)


def _verify(r) -> str:
    v = r.get("verify_result")
    if not v:
        return ""
    if v.get("ok"):
        return f"ok ({v.get('series_expected')} series, {v.get('values_checked')} values)"
    return f"FAILED ({v.get('mismatch_count')} mismatches)"


def row_line(r: dict) -> str:
    if "cpu_per_m" not in r:
        return f"  ERROR: {r.get('error', '?')}"
    line = (f"  accepted={r['accepted']} refused={r['refused']} rate={r['rate']:.0f}/s "
            f"cpu={r['cpu_to_drain_s']:.2f}s cpu/M={r['cpu_per_m']:.2f}s "
            f"(send phase {r['cpu_per_m_send']:.2f}) "
            f"spans/cpu-s={r['spans_per_cpu_s']:.0f} rss={r['peak_rss_bytes'] / MIB:.0f}MiB "
            f"p50={r['p50_ms']:.1f}ms p99={r['p99_ms']:.1f}ms "
            f"wire={_f(r.get('wire_bytes_per_span'), '{:.0f}')}B/span drained={r['drained']} "
            f"bg={r['background_cores']:.2f} cores {_verify(r)}")
    if "error" in r:
        line += f"\n  ERROR: {r['error']}"
    return line


def _good(rows, name, load):
    return [r for r in rows if r["collector"] == name and r["load"] == load
            and "cpu_per_m" in r and "error" not in r and r.get("drained")]


def _median_opt(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(rows, args) -> dict:
    out = {}
    for load in args.load_keys:
        for name in args.collectors:
            g = _good(rows, name, load)
            if not g:
                continue
            med = lambda k: statistics.median(r[k] for r in g)  # noqa: E731
            out[(load, name)] = {
                "n": len(g),
                "cpu_per_m": med("cpu_per_m"),
                "cpu_per_m_send": med("cpu_per_m_send"),
                "wire": _median_opt([r.get("wire_bytes_per_span") for r in g]),
                "spans_per_cpu_s": med("spans_per_cpu_s"),
                "peak_rss_mib": med("peak_rss_bytes") / MIB,
                "rate": med("rate"),
                "p50_ms": med("p50_ms"),
                "p99_ms": med("p99_ms"),
                "background_cores": med("background_cores"),
            }
    return out


def ratios(med: dict, args) -> list[tuple]:
    """(load, peer, {metric: Redline/peer}) for every load where both have medians."""
    out = []
    for load in args.load_keys:
        a = med.get((load, "redline"))
        for peer in ("otelcol", "rotel"):
            b = med.get((load, peer))
            if a and b:
                out.append((load, peer, {
                    k: (a[k] / b[k] if b[k] else None)
                    for k in ("cpu_per_m", "peak_rss_mib", "spans_per_cpu_s", "p50_ms",
                              "p99_ms")}))
    return out


MED_HEAD = ("| collector | n | CPU-s / M spans | spans / CPU-s | peak RSS MiB | p50 ms | "
            "p99 ms | spans/s | CPU-s / M (send phase) | wire B/span out | bg load (cores) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")


def _med_rows(med: dict, load: str) -> list[str]:
    return [f"| {NAMES[n]} | {m['n']} | **{m['cpu_per_m']:.2f}** | {m['spans_per_cpu_s']:,.0f} | "
            f"**{m['peak_rss_mib']:.0f}** | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
            f"{m['rate']:,.0f} | {m['cpu_per_m_send']:.2f} | {_f(m['wire'], '{:.0f}')} | "
            f"{m['background_cores']:.2f} |"
            for (lo, n), m in med.items() if lo == load]


RATIO_HEAD = ("| load | Redline / peer | CPU-s per M spans | peak RSS | spans per CPU-s | "
              "p50 | p99 | in words |\n|---|---|---|---|---|---|---|---|")


def _ratio_rows(rat, all_loads) -> list[str]:
    def say(x, peer, what):
        if x is None:
            return "-"
        return (f"Redline uses {x:.2f}x {peer}'s {what}" if x >= 1
                else f"{peer} uses {1 / x:.2f}x Redline's {what}")
    out = []
    for load, peer, r in rat:
        p = NAMES[peer]
        out.append(
            f"| {load} | Redline / {p} | **{_f(r['cpu_per_m'], '{:.3f}')}** | "
            f"**{_f(r['peak_rss_mib'], '{:.3f}')}** | {_f(r['spans_per_cpu_s'])} | "
            f"{_f(r['p50_ms'])} | {_f(r['p99_ms'])} | {say(r['cpu_per_m'], p, 'CPU')}; "
            f"{say(r['peak_rss_mib'], p, 'memory')} |")
    return out


def summary_table(rows, args, all_loads) -> str:
    med = medians(rows, args)
    out = ["", "Medians:"]
    for load in args.load_keys:
        out += ["", f"{load}: {all_loads[load].title}", MED_HEAD, *_med_rows(med, load)]
    return "\n".join(out + ["", "Ratios:", RATIO_HEAD, *_ratio_rows(ratios(med, args), all_loads)])


def _round_rows(rows) -> list[str]:
    out = ["| round | load | collector | accepted | refused (retries) | s | spans/s | "
           "CPU s | CPU-s / M | spans / CPU-s | peak RSS MiB | p50 ms | p99 ms | "
           "CPU-s / M send phase | wire B/span | bg load | verify |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "cpu_per_m" not in r:
            out.append(f"| {r['round']} | {r['load']} | {NAMES[r['collector']]} | ERROR: "
                       f"{r.get('error', '?').splitlines()[0]} ||||||||||||||")
            continue
        flag = "" if r.get("drained") and "error" not in r else " (!)"
        out.append(
            f"| {r['round']} | {r['load']} | {NAMES[r['collector']]} | {r['accepted']:,}{flag} | "
            f"{r['refused']:,} ({r['retries']}) | {r['elapsed_s']:.1f} | {r['rate']:,.0f} | "
            f"{r['cpu_to_drain_s']:.2f} | {r['cpu_per_m']:.2f} | {r['spans_per_cpu_s']:,.0f} | "
            f"{r['peak_rss_bytes'] / MIB:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['cpu_per_m_send']:.2f} | {_f(r.get('wire_bytes_per_span'), '{:.0f}')} | "
            f"{r['background_cores']:.2f} | {_verify(r)} |")
    return out


def compression_notes(rows) -> list[str]:
    """Flag a collector that compresses although told not to: its numbers then include gzip."""
    out = []
    for name in NAMES:
        g = [r for r in rows if r["collector"] == name and r["load"] == "none"
             and r.get("wire_bytes_per_span") and r.get("request_bytes_per_span")]
        if not g:
            continue
        wire = statistics.median(r["wire_bytes_per_span"] for r in g)
        raw = statistics.median(r["request_bytes_per_span"] for r in g)
        if wire < 0.5 * raw:
            out += [f"- **{NAMES[name]} compressed its export although set to `none`**: "
                    f"{wire:.0f} B/span on the wire against {raw:.0f} B/span of uncompressed "
                    "OTLP, so its `none` rows include gzip work.", ""]
    return out


def retry_notes(rows, args) -> list[str]:
    """Flag a collector that refused requests (resent by loadgen): its CPU includes them."""
    out = []
    for name in args.collectors:
        parts = []
        for load in args.load_keys:
            g = [r for r in _good(rows, name, load) if r.get("retries")]
            if not g:
                continue
            med = statistics.median(r["retries"] for r in g)
            reqs = _median_opt([r.get("accepted_requests") for r in g])
            parts.append(f"`{load}` {len(g)} of {len(_good(rows, name, load))} runs, median "
                         f"{med:,.0f} resends" + (f" for {reqs:,.0f} accepted requests"
                                                   if reqs else ""))
        if parts:
            out += [f"- **{NAMES[name]} refused requests** (a retryable gRPC status, resent by "
                    f"loadgen; {'; '.join(parts)}). The sink still received exactly the "
                    "accepted spans, but its CPU per accepted span includes receiving and processing the "
                    "refused attempts." + (
                        " otelcol-contrib refuses with \"sending queue is full\" when its "
                        "exporter's queue (1000 requests) is full, after its spanmetrics "
                        "connector has seen the request." if name == "otelcol" else ""), ""]
    return out


def rate_notes(rows, info) -> list[str]:
    """Flag steady runs that did not reach the target rate (collector or loadgen behind)."""
    out = []
    for r in rows:
        t = r.get("target_rate")
        if str(r.get("load", "")).endswith("steady") and t and r.get("rate") and r["rate"] < 0.97 * t:
            out.append(f"- round {r['round']} {NAMES[r['collector']]}: the {r['load']} load reached "
                       f"{r['rate']:,.0f} of {t:,.0f} spans/s (the in-flight limit was hit; "
                       "that wait is in its latency).")
    return out + [""] if out else []


def markdown(info: dict, rows: list, args, all_loads) -> str:
    med = medians(rows, args)
    first = [r for r in rows if r["round"] == 1 and "loadgen_cmd" in r]
    rel = lambda cmd: cmd.replace(info["repo"] + "/", "")  # noqa: E731
    errors = [r for r in rows if "error" in r]
    order = ", ".join(NAMES[c] for c in info["collectors"])
    lines = [
        "# otelcol-contrib, Redline and rotel, side by side",
        "",
        "Written by `benches/compare/run` (one run, the collectors alternating on the same "
        "machine; see README.md). Do not edit by hand: rerun the script.",
        "",
        f"- Command: `{info['command']}` ({info['duration_s'] / 60:.1f} min, {info['date']})",
        f"- Machine: {info['cpu_model']}, {info['cpus_usable']} usable of "
        f"{info['cpus_online']} CPUs, {info['memory_gib']:.1f} GiB, Linux {info['kernel']}, "
        f"load average at start {' / '.join(info['loadavg_start'])}",
    ]
    if info.get("otelcol_version"):
        lines.append(
            f"- otelcol-contrib: `{info['otelcol_version']}`, the pinned v0.161.0 contrib "
            "components built by `scripts/otelcol-peer` (`tools/otelcol`; otlp receiver, "
            "spanmetrics connector, otlp and prometheus exporters from the v0.161.0 modules)")
    if info.get("rotel_pypi"):
        lines.append(f"- rotel: PyPI `rotel=={info['rotel_pypi']}` (binary says "
                     f"`{info['rotel_binary']}`)")
    lines += [
        f"- Redline: `{info['redline_version']}` built {info['redline_built']}"
        + (f" from `{rel(info['redline_from'])}`" if info.get("redline_from") else "")
        + f", commit {info['redline_commit']}"
        + (" with uncommitted changes to its sources" if info["redline_dirty"] else "")
        + " (every round runs a copy of the binaries taken at the start)",
        f"- Rounds: {info['rounds']}; in each, every load runs once per collector, in the order "
        f"{order} in round 1 and rotated by one each round; medians over the rounds",
        f"- Loads: loadgen defaults (100-span requests, ~430 B and 10 attributes per span, "
        f"seed 1), {info['connections']} connections x {info['concurrency']} in flight, "
        "refusals resent (`--retries 100 --backoff 10ms`):",
    ]
    for key in info["loads"]:
        ld = all_loads[key]
        how = (f"open loop, {ld.rate:,.0f} spans/s for {ld.duration}" if ld.rate
               else f"closed loop (full speed), {info['spans']:,} spans")
        lines.append(f"  - `{key}`: {ld.title}; {how}")
    lines += [
        "",
        "## What is compared",
        "",
        "- **otelcol-contrib and Redline run the same YAML**: `configs/otelcol-tempo.yaml` on "
        "127.0.0.1 ports (otlp receiver gRPC -> spanmetrics connector, namespace "
        "`traces.spanmetrics`, dimension `cdn.cache.hit` -> prometheus exporter; and -> otlp "
        "exporter `otlp/tempo` to the sink), plus `service.telemetry.metrics.readers` on a free "
        "127.0.0.1 port (otherwise otelcol binds :8888). `reference` and `steady` leave "
        "`compression` out (gzip, the otlp exporter's default); `none` sets "
        "`compression: none`, `zstd` `compression: zstd`, `disk` `compression: none` with "
        "`sending_queue: {storage: file_storage/queue}` on a `file_storage` extension with "
        "`fsync: true` (a fresh directory per run). Everything else is each collector's default: otelcol's "
        "exporter has its default sending queue (1000 requests, 10 consumers; its batching "
        "stays off, the `pkg.exporterhelper.queueBatchEnabled` gate being alpha) and no "
        "`batch` processor is configured; its spanmetrics flushes every 60 s "
        "(`metrics_flush_interval` default), which does not touch forwarding.",
        "- **rotel only forwards** (`rotel-agent start`, default batching of 8192 spans or "
        "200 ms: it decodes the requests and re-encodes batches), with "
        "`--otlp-exporter-compression gzip` (`none` for the `none` load)." + (
            f" Extra arguments: `{' '.join(info['rotel_extra'])}`." if info["rotel_extra"]
            else ""),
        "- Redline forwards the received bytes without re-encoding; otelcol decodes, "
        "computes spanmetrics on pdata and re-encodes for its exporter.",
        "- CPU s: the collector process's utime+stime from just before loadgen starts sending "
        "until the sink holds every accepted span, so work done after the acknowledgement "
        "(queued forwarding, the last batches) counts. \"Send phase\" is loadgen's own "
        "`--pid` figure, which stops when the last request is acknowledged. Peak RSS: VmHWM "
        "of the collector process at the end. p50/p99: loadgen's request latency (closed "
        "loop: from send, so it mostly mirrors throughput with 32 requests in flight; open "
        "loop: from the intended send time, no coordinated omission, each request released by "
        "a pacer thread on the kernel's high-resolution timer). Wire B/span: bytes the "
        "sink received on the collector's connections (kernel socket counters), per span. "
        "bg load: CPU used meanwhile by other processes on the machine, in cores (this "
        "machine is shared; it moves wall-clock rates and latency much more than CPU seconds).",
        "- Exact: a run counts only if the sink received exactly the spans loadgen saw "
        "accepted (`(!)` otherwise). In round 1 Redline's runs also have `loadgen --verify` "
        "(every spanmetrics series checked against loadgen's tally, and the sink's count).",
        "",
        *compression_notes(rows),
        *retry_notes(rows, args),
        *rate_notes(rows, info),
        "## Medians",
        "",
        "Each column is the median of its own values over the rounds (n = rounds that "
        "counted).",
        "",
    ]
    for key in info["loads"]:
        lines += [f"### `{key}`: {all_loads[key].title}", "", MED_HEAD, *_med_rows(med, key), ""]
    lines += [
        "## Ratios (medians)",
        "",
        "Below 1: Redline uses less (CPU, memory, latency); for spans per CPU-s above 1 is "
        "better for Redline.",
        "",
        RATIO_HEAD,
        *_ratio_rows(ratios(med, args), all_loads),
        "",
        "## Every round",
        "",
        *_round_rows(rows),
        "",
        "(!) = not every accepted span reached the sink, or the run had an error.",
        "",
    ]
    if errors:
        lines += ["## Errors", ""] + [
            f"- round {r['round']} {r['load']} {NAMES[r['collector']]}: "
            f"{r['error'].splitlines()[0]}" for r in errors] + [""]
    lines += ["## Exact commands (round 1)", "", "Sink (Tempo stand-in, whole run):", "",
              "```", rel(info.get("sink_cmd", "")), "```", ""]
    for r in first:
        lines += [f"{r['load']}, {NAMES[r['collector']]}:", "", "```",
                  rel(r["collector_cmd"]), rel(r["loadgen_cmd"]), "```", ""]
    cfg = next((r.get("config") for r in first
                if r["collector"] in ("redline", "otelcol") and r["load"] == "reference"
                and r.get("config")), None)
    if cfg:
        lines += ["The `reference` YAML as round 1 ran it (otelcol-contrib and Redline get "
                  "this text, each with its own free ports; `none` adds "
                  "`compression: none` under `otlp/tempo`):", "", "```yaml", cfg.rstrip(),
                  "```", ""]
    return "\n".join(lines)
