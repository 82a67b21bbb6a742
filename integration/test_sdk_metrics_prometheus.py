"""OTLP metrics from the OpenTelemetry SDK → Prometheus, end to end, checked exactly.

    sdk_metrics (every instrument, cumulative over gRPC + delta over HTTP)
        --OTLP--> collector under test (otlp -> prometheus | prometheusremotewrite)
        --scrape / remote write--> a real Prometheus  --HTTP API--> this test

The collector under test is otelcol-contrib (the peer, OTELCOL_BIN; skipped when unset) or
Redline (REDLINE_BIN), on the same YAML. Every series Prometheus holds for the SDK's job must
be exactly the one sdk_expect computes from the tally (names, labels, values), no more, no
less; on Prometheus 3 (scraping the protobuf format with native histograms) the exponential
histogram is a native histogram with exact count, sum and buckets, and its median within the
bucket the tally puts it in.

Prometheus versions:
  * 2.42 (Debian, /usr/bin/prometheus): scrapes the text format (no scrape_protocols, no
    native histograms); the exponential histogram is seen as `_bucket{le="+Inf"}`, `_sum`,
    `_count`. For remote write it runs with --web.enable-remote-write-receiver and
    --enable-feature=native-histograms (else it refuses the native histogram samples).
  * 3.16 (PROMETHEUS3_BIN / scripts/prometheus3): `scrape_protocols` with PrometheusProto
    first and `scrape_native_histograms: true` in the scrape config (3.16 has the setting;
    --enable-feature=native-histograms is a no-op there and logs so).
  Seen through the HTTP API the two differ in: `le` (2.42 keeps the exposition's `5`, 3.16
  stores `5.0`; `+Inf` in both) and the exponential histogram (3.16: one native series
  `shop_payload_size_bytes`; 2.42: `_bucket{le="+Inf"}`, `_sum`, `_count` only). Names,
  other labels, values and metadata (TYPE, HELP) are the same.

The scrape config has honor_labels: true, so `job` and `instance` are the resource's
(service.namespace/service.name, service.instance.id), as with any otelcol prometheus
exporter; the scrape job itself then holds only Prometheus' own `up` and `scrape_*` series.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import requests

import helpers
import sdk_expect as ex
import sdk_metrics as sm
from promquery import Prom

PROM2 = Path("/usr/bin/prometheus")

COLLECTOR_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
{processors}
exporters:
{exporter}

service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
  pipelines:
    metrics:
      receivers: [otlp]
{pipeline_processors}      exporters: [{exporter_id}]
"""

# Delta sums and histograms made cumulative before they are exported.
DELTA_TO_CUMULATIVE = ("processors:\n  deltatocumulative: {}\n",
                       "      processors: [deltatocumulative]\n")

SCRAPE_EXPORTER = """  prometheus:
    endpoint: 127.0.0.1:{prom}
"""
RW_EXPORTER = """  prometheusremotewrite:
    endpoint: http://127.0.0.1:{rw_port}/api/v1/write
"""

SCRAPE_JOB = "collector"


# ---------------------------------------------------------------- binaries


def prometheus3_path():
    env = os.environ.get("PROMETHEUS3_BIN")
    if env:
        p = Path(env)
    else:
        import subprocess
        out = subprocess.run([str(helpers.REPO / "scripts" / "prometheus3")], capture_output=True, text=True,
                             timeout=1900, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            return None
        p = Path(out.stdout.strip().splitlines()[-1])
    return p if p.is_file() and os.access(p, os.X_OK) else None


def prometheus_bin(version: str) -> Path:
    if version == "2":
        if not PROM2.is_file():
            pytest.fail(f"{PROM2} missing (scripts/setup installs Debian's prometheus)", pytrace=False)
        return PROM2
    p = prometheus3_path()
    if p is None:
        msg = "Prometheus 3 not found (set PROMETHEUS3_BIN or run scripts/prometheus3)"
        if os.environ.get("REDLINE_ALLOW_SKIP") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return p


@pytest.fixture(params=["otelcol", "redline"])
def collector_bin(request) -> tuple:
    if request.param == "otelcol":
        env = os.environ.get("OTELCOL_BIN")
        if not env:
            pytest.skip("OTELCOL_BIN unset: the otelcol-contrib peer is not run")
        return "otelcol", Path(env)
    return "redline", request.getfixturevalue("redline_bin")


# ---------------------------------------------------------------- processes


class Collector:
    def __init__(self, procs, work: Path, side: str, binary: Path, exporter: str, exporter_id: str,
                 processors: tuple = ("", ""), **ports):
        self.side = side
        self.ports = {k: helpers.free_port() for k in ("grpc", "http", "telemetry")}
        self.ports.update(ports)
        self.cfg = work / f"{side}.yaml"
        self.cfg.write_text(COLLECTOR_CONFIG.format(exporter=exporter.format(**self.ports), exporter_id=exporter_id,
                                                    processors=processors[0], pipeline_processors=processors[1],
                                                    **self.ports))
        self.proc = procs.start(side, [binary, "--config", self.cfg])
        listen = [self.ports[k] for k in ("grpc", "http", "prom") if k in self.ports]
        helpers.wait_until(lambda: all(helpers.port_accepts(p) for p in listen), 30,
                           f"{side} to listen on {listen}", alive=self.proc)

    def emit(self) -> sm.Emission:
        return sm.emit(f"127.0.0.1:{self.ports['grpc']}", f"http://127.0.0.1:{self.ports['http']}/v1/metrics")


def start_prometheus(procs, work: Path, version: str, scrape_target: str = "", remote_write: bool = False) -> Prom:
    binary = prometheus_bin(version)
    port = helpers.free_port()
    cfg = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
    if scrape_target:
        cfg += (f"scrape_configs:\n  - job_name: {SCRAPE_JOB}\n    honor_labels: true\n"
                f"    static_configs:\n      - targets: ['{scrape_target}']\n")
        if version == "3":
            cfg += ("    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
                    "    scrape_native_histograms: true\n")
    (work / f"prometheus{version}.yml").write_text(cfg)
    args = [binary, f"--config.file={work / f'prometheus{version}.yml'}",
            f"--storage.tsdb.path={work / f'tsdb{version}'}", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn"]
    if remote_write:
        args.append("--web.enable-remote-write-receiver")
        if version == "2":
            args.append("--enable-feature=native-histograms")
    proc = procs.start(f"prometheus{version}", args)
    prom = Prom(port, proc)
    helpers.wait_until(lambda: requests.get(f"{prom.base}/-/ready", timeout=1).status_code == 200,
                       30, f"prometheus {version} /-/ready", alive=proc)
    return prom


# ---------------------------------------------------------------- reading Prometheus


def held(prom: Prom) -> tuple[dict, dict]:
    """(float series, native histograms) Prometheus holds for the SDK's job: {(name, label
    key): value} and {(name, label key): histogram object of the API}."""
    data = prom.data(f'{{job="{sm.JOB}"}}')
    assert data["resultType"] == "vector", data
    floats, natives = {}, {}
    for s in data["result"]:
        m = dict(s["metric"])
        name = m.pop("__name__")
        if "histogram" in s:
            natives[(name, ex.key(m))] = s["histogram"][1]
        else:
            floats[(name, ex.key(m))] = helpers.parse_float(s["value"][1])
    return floats, natives


def differences(want: dict, got: dict, what: str) -> list:
    out = [f"{what} missing: {k} (want {want[k]})" for k in sorted(set(want) - set(got))]
    out += [f"{what} unexpected: {k} = {got[k]}" for k in sorted(set(got) - set(want))]
    out += [f"{what} {k}: got {got[k]}, want {want[k]}" for k in sorted(set(want) & set(got)) if got[k] != want[k]]
    return out


def native_differences(want: dict, got: dict) -> list:
    """Native histograms: count, sum and every bucket (bounds within 1e-12, counts exact)."""
    out = [f"native histogram missing: {k}" for k in sorted(set(want) - set(got))]
    out += [f"native histogram unexpected: {k}: {got[k]}" for k in sorted(set(got) - set(want))]
    for k in sorted(set(want) & set(got)):
        obs, h = want[k], got[k]
        if float(h["count"]) != len(obs) or float(h["sum"]) != sum(obs):
            out.append(f"native histogram {k}: count/sum {h['count']}/{h['sum']}, want {len(obs)}/{sum(obs)}")
        wb = ex.native_buckets(obs)
        gb = {}
        for _boundary, lo, hi, n in h.get("buckets") or []:
            lo, hi = float(lo), float(hi)
            b = (0.0, 0.0) if lo <= 0 <= hi else (lo, hi)
            gb[b] = gb.get(b, 0) + int(float(n))
        match = len(gb) == len(wb) and all(
            any(math.isclose(lo, wl, rel_tol=1e-12) and math.isclose(hi, wh, rel_tol=1e-12) and n == wb[(wl, wh)]
                for (wl, wh) in wb) for (lo, hi), n in gb.items())
        if not match:
            out.append(f"native histogram {k}: buckets {sorted(gb.items())}, want {sorted(wb.items())}")
    return out


def wait_exact(prom: Prom, want_floats: dict, want_natives: dict, what: str, alive=None, timeout: float = 20):
    state = {}

    def settled():
        floats, natives = held(prom)
        state["problems"] = differences(want_floats, floats, "series") + native_differences(want_natives, natives)
        return not state["problems"]

    try:
        helpers.wait_until(settled, timeout, what, interval=0.5, alive=alive)
    except helpers.WaitTimeout:
        problems = state.get("problems") or ["no answer from Prometheus"]
        raise AssertionError(f"{what}: Prometheus' series differ from the tally "
                             f"({len(problems)}):\n  " + "\n  ".join(problems[:80])) from None


def check_native_queries(prom: Prom, want_natives: dict):
    """PromQL on each native histogram: histogram_count / histogram_sum exact, the median
    within the bucket holding the tally's median observation."""
    for (name, labels), obs in want_natives.items():
        sel = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
        assert prom.scalar(f"histogram_count({sel})") == len(obs), sel
        assert prom.scalar(f"histogram_sum({sel})") == sum(obs), sel
        q = prom.scalar(f"histogram_quantile(0.5, {sel})")
        med = sm.median_observation(obs)
        lo, hi = (0.0, 0.0) if med == 0 else sm.expo_bucket_bounds(med, sm.EXPO_MAX_SCALE)
        assert q is not None and lo - 1e-9 <= q <= hi + 1e-9, \
            f"histogram_quantile(0.5, {sel}) = {q}, want within ({lo}, {hi}] (median observation {med})"


def check_metadata(prom: Prom, openmetrics: bool = False):
    """TYPE and HELP of every family, as Prometheus took them from the scrape. An OpenMetrics
    exposition names a counter family without `_total`, and Prometheus keys its metadata so."""
    r = requests.get(f"{prom.base}/api/v1/metadata", timeout=5).json()
    assert r["status"] == "success", r
    got = {name: {(m["type"], m["help"]) for m in metas} for name, metas in r["data"].items()}
    want = ex.families("scrape")
    if openmetrics:
        want = {(fam[: -len("_total")] if tw[0] == "counter" and fam.endswith("_total") else fam): tw
                for fam, tw in want.items()}
    problems = [f"{fam}: metadata {got.get(fam)}, want {{{tw}}}" for fam, tw in want.items() if got.get(fam) != {tw}]
    assert not problems, "metadata differs:\n  " + "\n  ".join(problems)


def check_scrape_job_clean(prom: Prom):
    """honor_labels kept the resource's job: under the scrape job only Prometheus' own series."""
    names = {m["__name__"] for m, _ in prom.query(f'{{job="{SCRAPE_JOB}"}}')}
    assert names <= {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                     "scrape_series_added"}, names
    assert prom.scalar(f'up{{job="{SCRAPE_JOB}"}}') == 1.0


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("prom_version", ["2", "3"], ids=["prometheus2.42", "prometheus3"])
def test_scrape(collector_bin, prom_version, procs, tmp_path):
    """otlp -> prometheus exporter, scraped: every series exact, delta accumulated into
    cumulative, delta up-down counters dropped; Prometheus 3 takes the exponential histogram
    as a native histogram."""
    side, binary = collector_bin
    col = Collector(procs, tmp_path, side, binary, SCRAPE_EXPORTER, "prometheus", prom=helpers.free_port())
    prom = start_prometheus(procs, tmp_path, prom_version, scrape_target=f"127.0.0.1:{col.ports['prom']}")
    emission = col.emit()
    native = prom_version == "3"
    # Prometheus 2 stores `le` as the exposition spells it: OpenMetrics writes `5.0`, the text
    # format `5`. Redline serves OpenMetrics by default (docs/compatibility.md, 5), otelcol
    # text; Prometheus 3 stores `5.0` from either.
    le_floats = prom_version == "3" or side == "redline"
    floats, natives = ex.expected(emission.tally, "scrape", native=native, le_floats=le_floats)
    wait_exact(prom, floats, natives, f"{side} scraped by Prometheus {prom_version}", alive=col.proc)
    if native:
        check_native_queries(prom, natives)
    # Prometheus 3 scrapes protobuf first; 2.42 takes Redline's OpenMetrics.
    check_metadata(prom, openmetrics=side == "redline" and prom_version == "2")
    check_scrape_job_clean(prom)
    assert col.proc.poll() is None, col.proc.log_text()


def test_remote_write(collector_bin, procs, tmp_path):
    """otlp -> prometheusremotewrite into Prometheus 2.42 (native histograms on): the
    cumulative provider's series exact, the exponential histogram native; of the delta
    provider only its gauges and target_info (otelcol's remote-write translation drops delta
    sums and histograms, where its scrape exporter accumulates them)."""
    side, binary = collector_bin
    prom = start_prometheus(procs, tmp_path, "2", remote_write=True)
    col = Collector(procs, tmp_path, side, binary, RW_EXPORTER, "prometheusremotewrite", rw_port=prom.port)
    emission = col.emit()
    floats, natives = ex.expected(emission.tally, "rw", native=True)
    wait_exact(prom, floats, natives, f"{side} remote-writing to Prometheus 2.42", alive=col.proc)
    check_native_queries(prom, natives)
    assert "level=error" not in prom.proc.log_text(), prom.proc.log_text()
    assert col.proc.poll() is None, col.proc.log_text()


def test_remote_write_behind_deltatocumulative(collector_bin, procs, tmp_path):
    """otlp -> deltatocumulative -> prometheusremotewrite into Prometheus 2.42: the delta
    provider's sums, up-down counters and histograms arrive made cumulative, so Prometheus
    holds every series of both providers, each exactly the tally's total."""
    side, binary = collector_bin
    prom = start_prometheus(procs, tmp_path, "2", remote_write=True)
    col = Collector(procs, tmp_path, side, binary, RW_EXPORTER, "prometheusremotewrite",
                    processors=DELTA_TO_CUMULATIVE, rw_port=prom.port)
    emission = col.emit()
    floats, natives = ex.expected(emission.tally, "rw", native=True, accumulated=True)
    wait_exact(prom, floats, natives, f"{side} remote-writing delta made cumulative", alive=col.proc)
    check_native_queries(prom, natives)
    assert "level=error" not in prom.proc.log_text(), prom.proc.log_text()
    assert col.proc.poll() is None, col.proc.log_text()


def test_tally_by_hand():
    """The tally's arithmetic against values added up by hand from sdk_metrics.PLAN (no
    collector): a wrong tally would make every test above wrong the same way."""
    t = sm.tally_of_plan()
    k = sm.attrs_key
    assert t.sums[("shop.orders", k(sm.CARD))] == 3 + 4 + 6 == 13
    assert t.sums[("shop.orders", k(sm.CASH))] == 3
    assert t.sums[("shop.cpu.time", k(sm.CPU0))] == 0.375 and t.sums[("shop.cpu.time", k(sm.CPU1))] == 3.5
    assert t.sums[("shop.queue.depth", k(sm.HIGH))] == 4 and t.sums[("shop.queue.depth", k(sm.LOW))] == 1
    get = t.observations[("shop.request.duration", k(sm.GET))]
    assert (len(get), sum(get)) == (5, 975.0)
    assert sm.explicit_buckets(get) == [(5.0, 2), (25.0, 3), (100.0, 4), (500.0, 4), (math.inf, 5)]
    pay = t.observations[("shop.payload.size", k(sm.GET))]
    assert (len(pay), sum(pay), sm.median_observation(pay)) == (7, 4227.0, 9.0)
    # 9 at scale 3: 2^(25/8) = 8.72 < 9 <= 2^(26/8) = 9.51; 4096 = 2^12 is the upper edge of bucket 95.
    assert sm.expo_index(9.0, 3) == 25 and sm.expo_index(4096.0, 3) == 95 and sm.expo_index(3.0, 3) == 12
    assert t.last[("shop.uptime", k(sm.MAIN))] == 40.25
    assert t.last[("shop.cpu.utilization", k(sm.CPU0))] == 0.5
    floats, natives = ex.expected(t, "rw", native=True)
    # remote write: nothing of the delta provider but its gauges and target_info
    delta = {n for (n, lb) in floats if dict(lb).get("instance") == "checkout-delta"}
    assert delta == {"shop_cpu_utilization_ratio", "target_info"}, delta
