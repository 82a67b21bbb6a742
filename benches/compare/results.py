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


def _run(cmd, cwd=None) -> str:
    try:
        out = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                             timeout=30)
        return out.stdout.strip() if out.returncode == 0 else f"(exit {out.returncode})"
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def environment(repo: Path, release: Path, rotel: Path, args) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines()
                  if ln.startswith("model name")), "unknown")
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal:"))
    commit = _run(["git", "rev-parse", "HEAD"], cwd=repo)
    # Read-only check: the checkout is shared with work in progress, so say when the binary
    # was built from more than the commit.
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--"], cwd=repo,
                           capture_output=True, timeout=30).returncode != 0
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:]
                    if not a.startswith("--rotel-version") and a != args.rotel_version)
    return {
        "repo": str(repo),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": f"benches/compare/run {argv}".strip(),
        "cpu_model": model,
        "cpus_online": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "rotel_pypi": args.rotel_version,
        "rotel_binary": _run([rotel, "version"]),
        "redline_version": _run([release / "redline", "--version"]),
        "redline_commit": commit,
        "redline_dirty": dirty,
        "spans": args.span_count,
        "rounds": args.rounds,
        "compressions": args.compressions,
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
            f"wire={_f(r.get('wire_bytes_per_span'), '{:.0f}')}B/span drained={r['drained']} "
            f"bg={r['background_cores']:.2f} cores {_verify(r)}")
    if "error" in r:
        line += f"\n  ERROR: {r['error']}"
    return line


def _good(rows, name, comp):
    return [r for r in rows if r["collector"] == name and r["compression"] == comp
            and "cpu_per_m" in r and "error" not in r and r.get("drained")]


def _median_opt(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(rows, args) -> dict:
    out = {}
    for comp in args.compressions:
        for name in ("rotel", "redline"):
            g = _good(rows, name, comp)
            if not g:
                continue
            med = lambda k: statistics.median(r[k] for r in g)  # noqa: E731
            out[(name, comp)] = {
                "n": len(g),
                "cpu_per_m": med("cpu_per_m"),
                "cpu_per_m_send": med("cpu_per_m_send"),
                "wire": _median_opt([r.get("wire_bytes_per_span") for r in g]),
                "spans_per_cpu_s": med("spans_per_cpu_s"),
                "peak_rss_mib": med("peak_rss_bytes") / MIB,
                "rate": med("rate"),
                "p99_ms": med("p99_ms"),
                "background_cores": med("background_cores"),
            }
    return out


def ratios(med: dict, args) -> list[tuple]:
    out = []
    for comp in args.compressions:
        a, b = med.get(("redline", comp)), med.get(("rotel", comp))
        if a and b:
            out.append((comp, a["cpu_per_m"] / b["cpu_per_m"],
                        a["peak_rss_mib"] / b["peak_rss_mib"],
                        a["spans_per_cpu_s"] / b["spans_per_cpu_s"]))
    return out


MED_HEAD = ("| collector | compression | n | CPU-s / M spans | spans / CPU-s | peak RSS MiB | "
            "CPU-s / M (send phase) | wire B/span out | spans/s | p99 ms | bg load (cores) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")


def _med_rows(med: dict) -> list[str]:
    return [f"| {n} | {c} | {m['n']} | **{m['cpu_per_m']:.2f}** | {m['spans_per_cpu_s']:,.0f} | "
            f"**{m['peak_rss_mib']:.0f}** | {m['cpu_per_m_send']:.2f} | {_f(m['wire'], '{:.0f}')} | "
            f"{m['rate']:,.0f} | {m['p99_ms']:.1f} | {m['background_cores']:.2f} |"
            for (n, c), m in med.items()]


def _ratio_rows(rat) -> list[str]:
    def say(x, what):
        return (f"Redline uses {x:.2f}x rotel's {what}" if x >= 1
                else f"rotel uses {1 / x:.2f}x Redline's {what}")
    return [f"| {c} | {cpu:.3f} | {rss:.3f} | {spc:.2f} | {say(cpu, 'CPU')}; "
            f"{say(rss, 'memory')} |" for c, cpu, rss, spc in rat]


RATIO_HEAD = ("| compression | Redline/rotel CPU-s per M spans | Redline/rotel peak RSS | "
              "Redline/rotel spans per CPU-s | in words |\n|---|---|---|---|---|")


def summary_table(rows, args) -> str:
    med = medians(rows, args)
    return "\n".join(["", "Medians:", MED_HEAD, *_med_rows(med), "", "Ratios:", RATIO_HEAD,
                      *_ratio_rows(ratios(med, args))])


def _round_rows(rows) -> list[str]:
    out = ["| round | collector | compression | accepted | refused (retries) | s | spans/s | "
           "CPU s | CPU-s / M | spans / CPU-s | peak RSS MiB | CPU-s / M send phase | "
           "wire B/span | bg load | verify |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "cpu_per_m" not in r:
            out.append(f"| {r['round']} | {r['collector']} | {r['compression']} | ERROR: "
                       f"{r.get('error', '?').splitlines()[0]} ||||||||||||")
            continue
        flag = "" if r.get("drained") and "error" not in r else " (!)"
        out.append(
            f"| {r['round']} | {r['collector']} | {r['compression']} | {r['accepted']:,}{flag} | "
            f"{r['refused']:,} ({r['retries']}) | {r['elapsed_s']:.1f} | {r['rate']:,.0f} | "
            f"{r['cpu_to_drain_s']:.2f} | {r['cpu_per_m']:.2f} | {r['spans_per_cpu_s']:,.0f} | "
            f"{r['peak_rss_bytes'] / MIB:.0f} | {r['cpu_per_m_send']:.2f} | "
            f"{_f(r.get('wire_bytes_per_span'), '{:.0f}')} | {r['background_cores']:.2f} | "
            f"{_verify(r)} |")
    return out


def compression_notes(rows) -> list[str]:
    """Flag a collector that compresses although told not to: its numbers then include gzip."""
    out = []
    for name in ("rotel", "redline"):
        g = [r for r in rows if r["collector"] == name and r["compression"] == "none"
             and r.get("wire_bytes_per_span") and r.get("request_bytes_per_span")]
        if not g:
            continue
        wire = statistics.median(r["wire_bytes_per_span"] for r in g)
        raw = statistics.median(r["request_bytes_per_span"] for r in g)
        if wire < 0.5 * raw:
            out += [f"- **{name} compressed its export although set to `none`**: "
                    f"{wire:.0f} B/span on the wire against {raw:.0f} B/span of uncompressed "
                    "OTLP, so its `none` rows include gzip work.", ""]
    return out


def markdown(info: dict, rows: list, args) -> str:
    med = medians(rows, args)
    first = [r for r in rows if r["round"] == 1 and "loadgen_cmd" in r]
    rel = lambda cmd: cmd.replace(info["repo"] + "/", "")  # noqa: E731
    errors = [r for r in rows if "error" in r]
    lines = [
        "# Redline vs rotel, side by side",
        "",
        "Written by `benches/compare/run` (one run, rotel and Redline alternating on the same "
        "machine; see README.md). Do not edit by hand: rerun the script.",
        "",
        f"- Command: `{info['command']}` ({info['duration_s'] / 60:.1f} min, {info['date']})",
        f"- Machine: {info['cpu_model']}, {info['cpus_usable']} usable of "
        f"{info['cpus_online']} CPUs, {info['memory_gib']:.1f} GiB, Linux {info['kernel']}, "
        f"load average at start {' / '.join(info['loadavg_start'])}",
        f"- rotel: PyPI `rotel=={info['rotel_pypi']}` (binary says `{info['rotel_binary']}`)",
        f"- Redline: `{info['redline_version']}` built {info['redline_built']}, commit "
        f"{info['redline_commit']}"
        + (" plus uncommitted changes in the shared checkout" if info["redline_dirty"] else "")
        + " (every round runs a copy of the binaries taken at the start)",
        f"- Load: {info['spans']:,} spans per measurement, loadgen defaults (100-span requests, "
        f"~430 B and 10 attributes per span, seed 1), full speed (closed loop), "
        f"{info['connections']} connections x {info['concurrency']} in flight, refusals resent",
        "",
        "## What is compared",
        "",
        "The work differs: **Redline computes spanmetrics** (calls, errors, 16-bucket duration "
        "histogram per service, span name, kind, status and `cdn.cache.hit`) **and forwards**; "
        "**rotel only forwards** (receive, re-batch, export). Both receive OTLP/gRPC from "
        "loadgen and forward OTLP/gRPC to the same `loadgen sink` with the same compression.",
        "",
        "- rotel: `rotel-agent start` with its default batching (8192 spans or 200 ms): it "
        "decodes the requests and re-encodes batches." + (
            f" Extra arguments: `{' '.join(info['rotel_extra'])}`." if info["rotel_extra"]
            else ""),
        "- Redline: `configs/otelcol-tempo.yaml` on 127.0.0.1 ports (otlp receiver -> "
        "spanmetrics + otlp exporter -> sink; prometheus exporter), exporter `compression` "
        "set per row; it forwards the received bytes without re-encoding.",
        "- CPU s: the collector process's utime+stime from just before loadgen starts sending "
        "until the sink holds every accepted span, so work done after the acknowledgement "
        "(queued forwarding, the last batches) counts. \"Send phase\" is loadgen's own "
        "`--pid` figure, which stops when the last request is acknowledged. Peak RSS: VmHWM "
        "of the collector process at the end. Wire B/span: bytes the sink received on the "
        "collector's connections (kernel socket counters), per span. bg load: CPU used "
        "meanwhile by other processes on the machine, in cores (this machine is shared; "
        "it moves wall-clock rates much more than CPU seconds).",
        "",
        *compression_notes(rows),
        "## Medians",
        "",
        MED_HEAD,
        *_med_rows(med),
        "",
        RATIO_HEAD,
        *_ratio_rows(ratios(med, args)),
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
            f"- round {r['round']} {r['collector']} {r['compression']}: "
            f"{r['error'].splitlines()[0]}" for r in errors] + [""]
    lines += ["## Exact commands (round 1)", "", "Sink (Tempo stand-in, whole run):", "",
              "```", rel(info.get("sink_cmd", "")), "```", ""]
    for r in first:
        lines += [f"{r['collector']} ({r['compression']}):", "", "```",
                  rel(r["collector_cmd"]), rel(r["loadgen_cmd"]), "```", ""]
    return "\n".join(lines)
