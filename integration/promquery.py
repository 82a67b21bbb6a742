"""A real Prometheus for the tests that check Redline through one: start it (scraping, with
the remote-write receiver, evaluating rules), query it, and compare spanmetrics series with
the model.

Families are read with `sum without (<dropped labels>) (<family>{<matchers>})`, so several
instances of one label set (replicas) add up exactly as a dashboard would add them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import requests

import helpers
from redmodel import Expected

PREFIX = "traces_spanmetrics_"
FAMILIES = {
    "calls": "calls_total",
    "errors": "errors_total",
    "bucket": "duration_milliseconds_bucket",
    "sum": "duration_milliseconds_sum",
    "count": "duration_milliseconds_count",
}
REL = 1e-9


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


class Prom:
    def __init__(self, port: int, proc=None):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.proc = proc

    def data(self, q: str, at: Optional[float] = None) -> dict:
        """The `data` of an instant query (at Unix time `at`, default now), whatever its
        result type."""
        params = {"query": q} if at is None else {"query": q, "time": f"{at:.3f}"}
        r = requests.get(f"{self.base}/api/v1/query", params=params, timeout=5)
        body = r.json()
        assert r.status_code == 200 and body.get("status") == "success", f"query {q!r} failed: {r.status_code} {body}"
        return body["data"]

    def query(self, q: str, allow_scalar: bool = False) -> list:
        """[(labels, value)] of an instant vector (a scalar, if allowed, as one element)."""
        data = self.data(q)
        if allow_scalar and data["resultType"] == "scalar":
            return [({}, helpers.parse_float(data["result"][1]))]
        assert data["resultType"] == "vector", data
        return [(s["metric"], helpers.parse_float(s["value"][1])) for s in data["result"]]

    def scalar(self, q: str) -> Optional[float]:
        """The value of a one-element instant vector, None when empty."""
        result = self.query(q)
        assert len(result) <= 1, f"{q!r} matched several series: {result}"
        return result[0][1] if result else None

    def raw(self, q: str) -> list:
        """Raw samples [(t, v)] of a range selector with one series."""
        data = self.data(q)
        assert data["resultType"] == "matrix" and len(data["result"]) == 1, data
        return [(float(t), helpers.parse_float(v)) for t, v in data["result"][0]["values"]]

    def snapshot(self, matchers: str = "", drop=("instance", "job")) -> dict:
        """family -> {label key (without `le`) [, le float]: value}, summed over `drop`."""
        snap = {}
        for fam, suffix in FAMILIES.items():
            q = f"sum without ({', '.join(drop)}) ({PREFIX}{suffix}{{{matchers}}})"
            out = {}
            for metric, v in self.query(q):
                k = helpers.label_key(metric, ("le", "__name__"))
                if fam == "bucket":
                    out[(k, helpers.parse_float(metric["le"]))] = v
                else:
                    out[k] = v
            snap[fam] = out
        return snap

    def stored_snapshot(self) -> dict:
        """Like snapshot(), but every spanmetrics series as stored (nothing summed: one target),
        and series of any other family under "other"."""
        by_suffix = {suffix: fam for fam, suffix in FAMILIES.items()}
        snap = {fam: {} for fam in (*FAMILIES, "other")}
        for metric, v in self.query('{__name__=~"%s.*"}' % PREFIX):
            fam = by_suffix.get(metric["__name__"][len(PREFIX):], "other")
            k = helpers.label_key(metric, ("job", "instance", "__name__", "le"))
            if fam == "bucket":
                snap[fam][(k, helpers.parse_float(metric["le"]))] = v
            elif fam == "other":
                snap[fam][(metric["__name__"], k)] = v
            else:
                snap[fam][k] = v
        return snap

    def series(self, matchers: str) -> dict:
        """Every spanmetrics series matching: (name, labels without job/instance, le as float) -> value."""
        out = {}
        for metric, v in self.query('{__name__=~"%s.*",%s}' % (PREFIX, matchers)):
            le = helpers.parse_float(metric["le"]) if "le" in metric else None
            out[(metric["__name__"], helpers.label_key(metric, ("job", "instance", "le", "__name__")), le)] = v
        return out


def start_prometheus(group, work: Path, scrape_targets=(), job="redline", remote_write=False,
                     rules: Optional[str] = None, native_histograms: bool = False,
                     jobs: Optional[dict] = None) -> Prom:
    """A Prometheus on a free 127.0.0.1 port, scraping `scrape_targets` (job `job`), and every
    job of `jobs` ({job name: [targets]}), every second and,
    with `remote_write`, accepting pushes on /api/v1/write (2.42: --web.enable-remote-write-receiver).
    `rules` (a rule file's text) are evaluated every second. `native_histograms` stores the
    native histograms of remote-write requests (2.42 drops them without the feature flag)."""
    port = helpers.free_port()
    cfg = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
    if rules is not None:
        (work / "rules.yml").write_text(rules)
        cfg += f"  evaluation_interval: 1s\nrule_files:\n  - {work / 'rules.yml'}\n"
    scrape_jobs = {job: list(scrape_targets)} if scrape_targets else {}
    scrape_jobs.update(jobs or {})
    if scrape_jobs:
        cfg += "scrape_configs:\n"
        for name, job_targets in scrape_jobs.items():
            targets = ", ".join(f"'{t}'" for t in job_targets)
            cfg += f"  - job_name: {name}\n    static_configs:\n      - targets: [{targets}]\n"
    (work / "prometheus.yml").write_text(cfg)
    args = [
        "prometheus",
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]
    if remote_write:
        args.append("--web.enable-remote-write-receiver")
    if native_histograms:
        args.append("--enable-feature=native-histograms")
    proc = group.start("prometheus", args)
    prom = Prom(port, proc)
    helpers.wait_until(
        lambda: requests.get(f"{prom.base}/-/ready", timeout=1).status_code == 200,
        30, "prometheus /-/ready", alive=proc,
    )
    return prom


def compare(snap: dict, exp: Expected) -> list:
    """Human-readable differences between a snapshot and the model (empty = equal)."""
    want = {
        "calls": {k: float(n) for k, n in exp.calls.items()},
        "errors": {k: float(n) for k, n in exp.errors.items()},
        "bucket": {k: float(n) for k, n in exp.hist_bucket.items()},
        "sum": dict(exp.hist_sum),
        "count": {k: float(n) for k, n in exp.hist_count.items()},
        "other": {},  # families the model does not know: none expected
    }
    problems = []
    for fam, w in want.items():
        got = snap.get(fam, {})
        for k in sorted(set(w) | set(got), key=repr):
            if k not in got:
                problems.append(f"{fam}: missing series {k} (want {w[k]})")
            elif k not in w:
                problems.append(f"{fam}: unexpected series {k} = {got[k]}")
            elif not close(got[k], w[k]):
                problems.append(f"{fam}: {k} = {got[k]}, want {w[k]}")
    return problems


def wait_exact(prom: Prom, exp: Expected, matchers: str, what: str, timeout: float = 30, alive=None) -> dict:
    """Polls until the snapshot equals the model; on timeout fails with the differences."""
    state = {}

    def settled():
        state["snap"] = prom.snapshot(matchers)
        state["problems"] = compare(state["snap"], exp)
        return not state["problems"]

    try:
        helpers.wait_until(settled, timeout, what, interval=0.5, alive=alive)
    except helpers.WaitTimeout:
        problems = state.get("problems") or ["no snapshot taken"]
        raise AssertionError(f"{what}: series differ from the spans sent:\n  " + "\n  ".join(problems[:40])) from None
    return state["snap"]
