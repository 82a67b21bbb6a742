"""Sampled traffic counts as the population it stands for: spans carrying an OpenTelemetry
sampling threshold (W3C tracestate `ot=th:...`, OTEP 235) are counted by their adjusted count.

The population: a fixed-seed set of 80,000 spans in 55,000 short traces of three services
(POPULATION below). The test samples it itself, independently of Redline, as the sampling
spec says:

  - a trace is kept when its randomness (the trace id's last 7 bytes, big-endian) is >= the
    threshold T = 0xe0000000000000 (`ot=th:e`, 1 in 8): its non-error spans are sent with
    tracestate `ot=th:e` (adjusted count 8);
  - every error span, of any trace, is kept with threshold 0 (`ot=th:0`, adjusted count 1).

Two Redlines with the reference pipeline (redline_config.REFERENCE): "sampled" gets the kept
spans, "population" every span without sampling information (count 1). Both are scraped by
one Prometheus (jobs `sampled`, `population`) that evaluates a copy of the shipped alert
rules (configs/prometheus/rules/redline-alerts.yml) once per job: `for:` shortened as in
test_alerting.py, and a `job` matcher in every selector, nothing else (checked).

Asserted:
  1. every spanmetrics series of the sampled Redline (calls, errors, every duration bucket,
     count, sum) equals the sum of the adjusted counts of its kept spans (sum: float
     tolerance); the population Redline's equal the plain counts; Prometheus stores exactly
     those values for both jobs;
  2. on the 80,000 spans, the sampled job's calls (total, and rate between two Prometheus
     instants) and error ratio lie within 2% of the population's. Per service and span name
     (12,500 to 30,000 spans) the sampling error is larger than that: one standard deviation
     of an estimated count is sqrt(7 * non-error spans), 1.5% to 2.4% here, so there each
     calls total, rate and error ratio must be within 4 standard deviations (the output shows
     every figure; with this seed cdn-edge is ~3% off, 1.2 sd);
  3. the shipped alert rules fire for the same (alert, service) pairs on both jobs, those the
     population's truth implies, and nothing else is pending or firing, on an evaluation of
     the final values and again `for:` + 1 s later;
  4. for contrast: counted unweighted, the kept spans would fire HttpServerErrorRateHigh for
     two services whose true error ratio is below 1%, and CacheHitRatioLow for one whose
     true hit ratio is above 80%;
and the stand-in Tempo received every span once, tracestates unchanged.

`python integration/test_sampled_counts.py` prints the population's figures without servers.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter, defaultdict
from datetime import datetime

import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

import helpers
import promquery
from redline_config import REFERENCE
from redline_run import Redline, encode_request, field_bytes, fixed64, varint
from redmodel import DEFAULT_BUCKETS_MS, histogram_quantile

SEED = 20235  # the population and the trace ids are fixed: the outcome is deterministic
RULES = helpers.REPO / "configs" / "prometheus" / "rules" / "redline-alerts.yml"
FOR_S = 5
FOR = f"{FOR_S}s"
JOBS = ("sampled", "population")
PREFIX = "traces_spanmetrics_"
FAMILIES = ("calls_total", "errors_total", "duration_milliseconds_bucket",
            "duration_milliseconds_sum", "duration_milliseconds_count")

TH_E = 0xE0000000000000  # `ot=th:e`: the hex digits right-padded to 14 (56 bits)
MAX_RANDOMNESS = 1 << 56
KEPT_STATE, ERROR_STATE = "ot=th:e", "ot=th:0"
ADJUSTED = {KEPT_STATE: MAX_RANDOMNESS / (MAX_RANDOMNESS - TH_E), ERROR_STATE: 1.0, "": 1.0}
assert ADJUSTED[KEPT_STATE] == 8.0

SPANS_PER_REQUEST = 500
ROUNDS = 16  # the bulk is sent in ROUNDS rounds, one every ROUND_S
ROUND_S = 0.75
TOLERANCE = 0.02
SUM_REL = 1e-9

SERVER, INTERNAL = 2, 1
KIND = {SERVER: "SPAN_KIND_SERVER", INTERNAL: "SPAN_KIND_INTERNAL"}

# service -> traces, http.server (error ratio, lognormal median ms, sigma), and for the
# services with a cdn.file.read child: (cache hit ratio, error ratio of misses).
#   shop-api    true error ratio 0.5% (quiet); unweighted, the kept spans show ~3.9% (fires)
#   cdn-edge    3% errors, p95 ~570 ms, 70% hits: all three alerts fire on the truth
#   cdn-static  0.6% errors, 86% hits (quiet); unweighted, errors ~4.6% and hits ~73% (fire)
POPULATION = {
    "shop-api": dict(traces=30_000, http=(0.005, 30.0, 0.8), cdn=None),
    "cdn-edge": dict(traces=12_500, http=(0.03, 150.0, 0.7), cdn=(0.70, 0.01)),
    "cdn-static": dict(traces=12_500, http=(0.006, 20.0, 0.8), cdn=(0.86, 0.18)),
}
TOTAL_SPANS = 80_000


# ------------------------------------------------------------------ the population


class Sp:
    """One span of the population."""

    __slots__ = ("service", "name", "kind", "error", "dur_ns", "cache_hit", "span_id", "parent_id")

    def __init__(self, service, name, kind, error, dur_ns, cache_hit, span_id, parent_id):
        self.service, self.name, self.kind, self.error = service, name, kind, error
        self.dur_ns, self.cache_hit, self.span_id, self.parent_id = dur_ns, cache_hit, span_id, parent_id

    def labels(self) -> dict:
        lb = {"service_name": self.service, "span_name": self.name, "span_kind": KIND[self.kind],
              "status_code": "STATUS_CODE_ERROR" if self.error else "STATUS_CODE_UNSET"}
        if self.cache_hit is not None:
            lb["cdn_cache_hit"] = "true" if self.cache_hit else "false"
        return lb

    def ms(self) -> float:
        return self.dur_ns / 1_000_000


def _dur_ns(rng: random.Random, median_ms: float, sigma: float) -> int:
    """A lognormal duration, whole microseconds, at least 1 us."""
    return max(1, round(rng.lognormvariate(math.log(median_ms), sigma) * 1000)) * 1000


def build_population(seed: int = SEED) -> list:
    """[(trace_id bytes, [Sp])] in sending order (services interleaved)."""
    rng = random.Random(seed)
    traces = []
    for service, plan in POPULATION.items():
        err, median, sigma = plan["http"]
        for _ in range(plan["traces"]):
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
            root_id = (rng.getrandbits(64) | 1).to_bytes(8, "big")
            spans = [Sp(service, "http.server", SERVER, rng.random() < err, _dur_ns(rng, median, sigma), None,
                        root_id, None)]
            if plan["cdn"] is not None:
                hit_ratio, miss_err = plan["cdn"]
                hit = rng.random() < hit_ratio
                child_err = (not hit) and rng.random() < miss_err
                dur = _dur_ns(rng, 2.0, 0.6) if hit else _dur_ns(rng, 40.0, 0.7)
                spans.append(Sp(service, "cdn.file.read", INTERNAL, child_err, dur, hit,
                                (rng.getrandbits(64) | 1).to_bytes(8, "big"), root_id))
            traces.append((trace_id, spans))
    rng.shuffle(traces)
    return traces


def randomness(trace_id: bytes) -> int:
    """The sampling spec's randomness when no `rv` is given: the trace id's last 7 bytes."""
    return int.from_bytes(trace_id[9:], "big")


def sample(trace_id: bytes, spans: list) -> list:
    """The test's sampler: [(Sp, tracestate)] of the spans it keeps."""
    kept_trace = randomness(trace_id) >= TH_E
    out = []
    for sp in spans:
        if sp.error:
            out.append((sp, ERROR_STATE))
        elif kept_trace:
            out.append((sp, KEPT_STATE))
    return out


# ------------------------------------------------------------------ encoding


def _kv(key: str, any_value: bytes) -> bytes:
    return field_bytes(9, field_bytes(1, key.encode()) + field_bytes(2, any_value))


def encode(trace_id: bytes, sp: Sp, tracestate: str, end_ns: int) -> bytes:
    """One encoded Span (opentelemetry.proto.trace.v1.Span), fields by number."""
    out = [field_bytes(1, trace_id), field_bytes(2, sp.span_id)]
    if tracestate:
        out.append(field_bytes(3, tracestate.encode()))
    if sp.parent_id is not None:
        out.append(field_bytes(4, sp.parent_id))
    out += [field_bytes(5, sp.name.encode()), varint(6 << 3) + varint(sp.kind),
            fixed64(7, end_ns - sp.dur_ns), fixed64(8, end_ns)]
    if sp.name == "http.server":
        out.append(_kv("http.request.method", field_bytes(1, b"GET")))
    if sp.cache_hit is not None:
        out.append(_kv("cdn.cache.hit", varint(2 << 3) + varint(int(sp.cache_hit))))  # bool_value
    if sp.error:
        out.append(field_bytes(15, field_bytes(2, b"upstream error") + varint(3 << 3) + varint(2)))
    return b"".join(out)


def requests_of(items: list) -> list:
    """Encoded ExportTraceServiceRequests of (service, span bytes) items: one service each,
    at most SPANS_PER_REQUEST spans."""
    by_service = defaultdict(list)
    for service, b in items:
        by_service[service].append(b)
    out = []
    for service, spans in by_service.items():
        for i in range(0, len(spans), SPANS_PER_REQUEST):
            out.append(encode_request(service, spans[i:i + SPANS_PER_REQUEST]))
    return out


def post_all(session: requests.Session, url: str, bodies: list) -> None:
    for body in bodies:
        r = session.post(url, data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
        resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
        assert resp.partial_success.rejected_spans == 0, f"{url}: {resp}"


# ------------------------------------------------------------------ the tally


class Tally:
    """The series a spanmetrics connector must serve for spans counted with weights:
    (metric name, label key without `le`, le float or None) -> value, as read from
    /metrics or Prometheus."""

    def __init__(self):
        self.v = defaultdict(float)

    def add(self, sp: Sp, weight: float) -> None:
        lb = sp.labels()
        k = helpers.label_key(lb)
        group = helpers.label_key(lb, ("status_code",))
        ms = sp.ms()
        self.v[(PREFIX + "calls_total", k, None)] += weight
        self.v[(PREFIX + "errors_total", group, None)] += weight if sp.error else 0.0
        self.v[(PREFIX + "duration_milliseconds_count", k, None)] += weight
        self.v[(PREFIX + "duration_milliseconds_sum", k, None)] += ms * weight
        for le in DEFAULT_BUCKETS_MS + [math.inf]:
            self.v[(PREFIX + "duration_milliseconds_bucket", k, float(le))] += weight if ms <= le else 0.0

    def copy(self) -> "Tally":
        t = Tally()
        t.v.update(self.v)
        return t

    def total(self, family: str, **matchers) -> float:
        return sum(v for (name, k, _), v in self.v.items()
                   if name == PREFIX + family and all(dict(k).get(m) == x for m, x in matchers.items()))

    def buckets(self, **matchers) -> dict:
        out = defaultdict(float)
        for (name, k, le), v in self.v.items():
            if name == PREFIX + "duration_milliseconds_bucket" and all(dict(k).get(m) == x for m, x in matchers.items()):
                out[le] += v
        return dict(out)


def differences(got: dict, want: Tally) -> list:
    """Readable differences (empty = equal): counts exactly, sums within SUM_REL."""
    problems = []
    for k in sorted(set(got) | set(want.v), key=repr):
        if k not in got:
            problems.append(f"missing {k} (want {want.v[k]})")
        elif k not in want.v:
            problems.append(f"unexpected {k} = {got[k]}")
        elif k[0].endswith("_sum"):
            if not math.isclose(got[k], want.v[k], rel_tol=SUM_REL, abs_tol=1e-9):
                problems.append(f"{k} = {got[k]!r}, want {want.v[k]!r}")
        elif got[k] != want.v[k]:
            problems.append(f"{k} = {got[k]!r}, want {want.v[k]!r}")
    return problems


def scraped(rl: Redline) -> dict:
    """Every spanmetrics sample of a Redline's /metrics, keyed like Tally."""
    out = {}
    for name, lb, v in rl.samples():
        if not name.startswith(PREFIX):
            continue
        assert name[len(PREFIX):] in FAMILIES, f"unexpected spanmetrics family {name}"
        le = helpers.parse_float(lb["le"]) if "le" in lb else None
        out[(name, helpers.label_key(lb, ("le",)), le)] = v
    return out


def stored(prom: promquery.Prom, job: str, at: float | None = None) -> dict:
    """Every spanmetrics series Prometheus holds for `job` (at `at`), keyed like Tally."""
    data = prom.data('{__name__=~"%s.*",job="%s"}' % (PREFIX, job), at=at)
    out = {}
    for s in data["result"]:
        m = s["metric"]
        le = helpers.parse_float(m["le"]) if "le" in m else None
        out[(m["__name__"], helpers.label_key(m, ("job", "instance", "le", "__name__")), le)] = \
            helpers.parse_float(s["value"][1])
    return out


def wait_equal(read, want: Tally, what: str, alive=None, timeout: float = 30) -> None:
    state = {"problems": ["nothing read"]}

    def ok():
        state["problems"] = differences(read(), want)
        return not state["problems"]

    try:
        helpers.wait_until(ok, timeout, what, interval=0.5, alive=alive)
    except helpers.WaitTimeout:
        p = state["problems"]
        raise AssertionError(f"{what}: {len(p)} series differ:\n  " + "\n  ".join(p[:40])) from None


# ------------------------------------------------------------------ alert rules


def rules_copy() -> str:
    """The shipped rules, `for:` shortened, evaluated once per job: each job's group has a
    `job` matcher in every selector and the job in its name, and differs in nothing else."""
    orig = RULES.read_text()
    body = orig[orig.index("groups:\n") + len("groups:\n"):]
    short = re.sub(r"^(\s*for:) \d+m$", rf"\1 {FOR}", body, flags=re.M)
    assert short.count(f"for: {FOR}") == 3
    groups = []
    for job in JOBS:
        g, n = re.subn(r"\b(traces_spanmetrics_\w+)\{", rf'\1{{job="{job}", ', short)
        assert n == 6, f"expected 6 selectors in {RULES.name}, found {n}"
        g, n = re.subn(r"^(  - name: redline-red)$", rf"\1-{job}", g, flags=re.M)
        assert n == 1
        # Undo the two changes: the shortened original comes back.
        assert re.sub(r"-" + job + "$", "", g.replace(f'job="{job}", ', ""), flags=re.M) == short
        groups.append(g)
    return "groups:\n" + "".join(groups)


def rule_exprs() -> dict:
    """alert name -> expr of the shipped rules (for reporting values)."""
    text = RULES.read_text()
    out = {}
    for m in re.finditer(r"- alert: (\w+)\n\s+expr: \|\n(.*?)\n\s+for:", text, flags=re.S):
        out[m.group(1)] = " ".join(m.group(2).split())
    assert set(out) == {"HttpServerErrorRateHigh", "HttpServerP95High", "CacheHitRatioLow"}, out
    return out


def _unix(rfc3339: str) -> float:
    """Prometheus' RFC 3339 timestamps (nanoseconds, Z) as Unix seconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    assert m, rfc3339
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float(m.group(2) or 0)


def alert_states(prom: promquery.Prom) -> tuple:
    """({job: {(alert name, service_name): state}} of the active alerts of each job's group,
    the time of the oldest of the groups' last evaluations)."""
    r = requests.get(f"{prom.base}/api/v1/rules", timeout=5)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", body
    out = {job: {} for job in JOBS}
    groups = body["data"]["groups"]
    assert sorted(g["name"] for g in groups) == sorted(f"redline-red-{job}" for job in JOBS), groups
    for g in groups:
        job = g["name"].rsplit("-", 1)[1]
        for rule in g["rules"]:
            assert rule.get("health") in ("ok", "unknown"), rule
            for a in rule.get("alerts", []):
                out[job][(rule["name"], a["labels"]["service_name"])] = a["state"]
    return out, min(_unix(g["lastEvaluation"]) for g in groups)


def alerts_on(tally: Tally) -> set:
    """(alert, service) pairs the shipped rules' conditions give for these totals."""
    fired = set()
    for service, plan in POPULATION.items():
        calls = tally.total("calls_total", service_name=service, span_name="http.server")
        errors = tally.total("errors_total", service_name=service, span_name="http.server")
        if errors / calls > 0.01:
            fired.add(("HttpServerErrorRateHigh", service))
        if histogram_quantile(0.95, tally.buckets(service_name=service, span_name="http.server")) > 250:
            fired.add(("HttpServerP95High", service))
        if plan["cdn"] is not None:
            hits = tally.total("calls_total", service_name=service, span_name="cdn.file.read", cdn_cache_hit="true")
            if hits / tally.total("calls_total", service_name=service, span_name="cdn.file.read") < 0.8:
                fired.add(("CacheHitRatioLow", service))
    return fired


# ------------------------------------------------------------------ the test


def test_sampled_spans_count_their_adjusted_counts(redline_bin, procs, sink, tmp_path):
    t_start = time.monotonic()

    def phase(what):
        print(f"[{time.monotonic() - t_start:5.1f}s] {what}")

    traces = build_population()
    assert sum(len(s) for _, s in traces) == TOTAL_SPANS

    # ---- tallies: the population (count 1), the kept spans (adjusted counts), unweighted kept
    truth, estimate, naive = Tally(), Tally(), Tally()
    sampled = []  # per trace: [(Sp, tracestate)]
    for trace_id, spans in traces:
        kept = sample(trace_id, spans)
        sampled.append(kept)
        for sp in spans:
            truth.add(sp, 1.0)
        for sp, ts in kept:
            estimate.add(sp, ADJUSTED[ts])
            naive.add(sp, 1.0)
    n_kept = sum(len(k) for k in sampled)
    n_errors = sum(sp.error for _, s in traces for sp in s)
    assert n_kept == sum(1 for k in sampled for _, ts in k if ts == KEPT_STATE) + n_errors

    # ---- warm-up: the first traces (in order) that between them make every label set of both
    # streams, so every series exists, and is scraped, before the bulk (rate() counts from a
    # series' first sample)
    want_sets = {j: {k for (name, k, _) in t.v if name == PREFIX + "calls_total"} for j, t in
                 (("sampled", estimate), ("population", truth))}
    seen = {j: set() for j in JOBS}
    warm = []
    for i, ((_, spans), kept) in enumerate(zip(traces, sampled)):
        new_p = {helpers.label_key(sp.labels()) for sp in spans} - seen["population"]
        new_s = {helpers.label_key(sp.labels()) for sp, _ in kept} - seen["sampled"]
        if new_p or new_s:
            warm.append(i)
            seen["population"] |= new_p
            seen["sampled"] |= new_s
        if seen == want_sets:
            break
    assert seen == want_sets
    warm_set = set(warm)
    order = warm + [i for i in range(len(traces)) if i not in warm_set]

    # ---- encoding, in sending order
    end_ns = time.time_ns() - 60 * 1_000_000_000
    pop_items, smp_items = [], []
    for i in order:
        trace_id, spans = traces[i]
        pop_items.append([(sp.service, encode(trace_id, sp, "", end_ns)) for sp in spans])
        smp_items.append([(sp.service, encode(trace_id, sp, ts, end_ns)) for sp, ts in sampled[i]])

    warm_truth, warm_est = Tally(), Tally()
    for i in warm:
        for sp in traces[i][1]:
            warm_truth.add(sp, 1.0)
        for sp, ts in sampled[i]:
            warm_est.add(sp, ADJUSTED[ts])

    phase(f"population built: {TOTAL_SPANS} spans, {n_kept} kept ({n_errors} errors), {len(warm)} warm-up traces")

    # ---- two Redlines (the reference pipeline), one Prometheus evaluating the shipped rules per job
    rls = {job: Redline(procs, redline_bin, tmp_path, REFERENCE, name=f"redline-{job}", sink=sink.port).start()
           for job in JOBS}
    prom = promquery.start_prometheus(procs, tmp_path, jobs={job: [f"127.0.0.1:{rl.prom}"] for job, rl in rls.items()},
                                      rules=rules_copy())
    helpers.wait_until(lambda: sorted(v for _, v in prom.query("up")) == [1.0, 1.0], 20,
                       "prometheus to scrape both Redlines", alive=prom.proc)
    streams = {"sampled": smp_items, "population": pop_items}
    session = requests.Session()

    def send(job, lo, hi):
        post_all(session, rls[job].http_url, requests_of([x for items in streams[job][lo:hi] for x in items]))

    for job in JOBS:
        send(job, 0, len(warm))
    for job, want in (("sampled", warm_est), ("population", warm_truth)):
        wait_equal(lambda rl=rls[job]: scraped(rl), want,
                   f"{job} Redline /metrics after the warm-up", alive=rls[job].proc)
    for job, want in (("sampled", warm_est), ("population", warm_truth)):
        wait_equal(lambda job=job: stored(prom, job), want, f"Prometheus job {job} after the warm-up", alive=prom.proc)
    t0 = time.time()
    phase("warm-up counted and scraped")
    time.sleep(1.2)  # one more scrape of the warm-up values: every series has two samples

    # ---- the bulk, in rounds, both streams side by side
    n = len(order)
    bounds = [len(warm) + (n - len(warm)) * r // ROUNDS for r in range(ROUNDS + 1)]
    for r in range(ROUNDS):
        tick = time.monotonic()
        for job in JOBS:
            send(job, bounds[r], bounds[r + 1])
        time.sleep(max(0.0, ROUND_S - (time.monotonic() - tick)))
    session.close()
    phase("bulk sent")

    # ---- 1. exact: each series = the sum of its spans' adjusted counts
    for job, want in (("sampled", estimate), ("population", truth)):
        wait_equal(lambda rl=rls[job]: scraped(rl), want, f"{job} Redline /metrics", alive=rls[job].proc)
    for job, want in (("sampled", estimate), ("population", truth)):
        wait_equal(lambda job=job: stored(prom, job), want, f"Prometheus job {job}", alive=prom.proc)
    t1 = time.time()
    phase("final values exact in both Redlines and in Prometheus")

    # ---- 2. estimates vs the population. Prometheus held exactly the warm-up tallies at t0 and
    # the final ones at t1, so each job's rate over [t0, t1] is its increase / (t1 - t0).
    for job, t, want in (("sampled", t0, warm_est), ("population", t0, warm_truth)):
        problems = differences(stored(prom, job, at=t), want)
        assert not problems, f"Prometheus job {job} at t0:\n  " + "\n  ".join(problems[:40])
    at = {job: {t: stored(prom, job, at=t) for t in (t0, t1)} for job in JOBS}

    def prom_rate(job, family, **m):
        return sum(v - at[job][t0].get(k, 0.0) for k, v in at[job][t1].items()
                   if k[0] == PREFIX + family and all(dict(k[1]).get(a) == b for a, b in m.items())) / (t1 - t0)

    report, bad = [], []

    def within(what, got, want, bound):
        rel = got / want - 1
        report.append(f"{what}: sampled {got:.6g}, population {want:.6g} ({rel:+.2%}, bound {bound:.2%})")
        if abs(rel) > bound:
            bad.append(report[-1])

    # The figure: on the 80,000 spans, the estimated rate and error ratio within 2%.
    within("all spans: calls rate", prom_rate("sampled", "calls_total"), prom_rate("population", "calls_total"),
           TOLERANCE)
    within("all spans: calls total", estimate.total("calls_total"), truth.total("calls_total"), TOLERANCE)
    within("all spans: error ratio",
           prom_rate("sampled", "errors_total") / prom_rate("sampled", "calls_total"),
           prom_rate("population", "errors_total") / prom_rate("population", "calls_total"), TOLERANCE)
    # Per service and span name (12,500 to 30,000 spans each) 1/8 sampling is not that precise:
    # the standard deviation of the estimated calls is sqrt(7 * non-error spans), 1.5% to 2.4%
    # here. Each estimate must be within 4 standard deviations (the error ratio, an exact error
    # count over the estimated calls, likewise); the printed report shows the figures.
    warm_slack = 8.0 * len(warm)
    for service, plan in POPULATION.items():
        for span_name in ["http.server"] + (["cdn.file.read"] if plan["cdn"] else []):
            m = dict(service_name=service, span_name=span_name)
            calls = truth.total("calls_total", **m)
            sigma = math.sqrt(7.0 * (calls - truth.total("errors_total", **m)))
            bound = 4 * sigma / (calls - 4 * sigma)
            within(f"{service} {span_name}: calls total", estimate.total("calls_total", **m), calls, bound)
            within(f"{service} {span_name}: calls rate", prom_rate("sampled", "calls_total", **m),
                   prom_rate("population", "calls_total", **m), bound + warm_slack / calls)
            within(f"{service} {span_name}: error ratio",
                   prom_rate("sampled", "errors_total", **m) / prom_rate("sampled", "calls_total", **m),
                   prom_rate("population", "errors_total", **m) / prom_rate("population", "calls_total", **m),
                   bound + warm_slack / calls)
    print("\n".join(report))
    assert not bad, "estimates off by more than their bound:\n  " + "\n  ".join(bad)

    # ---- 3. the shipped alert rules: the same alerts on both jobs, the ones the truth implies
    expected = alerts_on(truth)
    assert expected == {("HttpServerErrorRateHigh", "cdn-edge"), ("HttpServerP95High", "cdn-edge"),
                        ("CacheHitRatioLow", "cdn-edge")}, expected
    firing = {a: "firing" for a in expected}
    state = {}

    def settled(after):
        # An evaluation of both groups on the final values, with exactly the expected alerts
        # firing and nothing pending: a condition true on the final values shows as pending.
        state["s"], evaluated = alert_states(prom)
        return evaluated > after and all(state["s"][job] == firing for job in JOBS)

    def values():
        return {job: {name: prom.query(re.sub(r"\b(traces_spanmetrics_\w+)\{", rf'\1{{job="{job}", ', e))
                      for name, e in rule_exprs().items()} for job in JOBS}

    for what in ("both jobs' alerts to settle", f"the alerts to hold for {FOR_S + 1}s"):
        after = t1 if "settle" in what else time.time() + FOR_S + 1
        try:
            helpers.wait_until(lambda: settled(after), 30, what, interval=0.5, alive=prom.proc)
        except helpers.WaitTimeout:
            raise AssertionError(f"{what}: alert states {state.get('s')}, want {sorted(expected)} firing on both "
                                 f"jobs and nothing pending\nrule expression values: {values()}") from None
    assert state["s"]["sampled"] == state["s"]["population"] == firing
    phase(f"alerts firing on both jobs, and only those: {sorted(expected)}; values {values()}")

    # ---- 4. contrast: unweighted, the kept spans would set off three more alerts
    wrong = alerts_on(naive) - expected
    for service in ("shop-api", "cdn-static"):
        m = dict(service_name=service, span_name="http.server")
        assert truth.total("errors_total", **m) / truth.total("calls_total", **m) < 0.01
        assert naive.total("errors_total", **m) / naive.total("calls_total", **m) > 0.01
    assert wrong == {("HttpServerErrorRateHigh", "shop-api"), ("HttpServerErrorRateHigh", "cdn-static"),
                     ("CacheHitRatioLow", "cdn-static")}, wrong

    # ---- the traces themselves are forwarded as they came, tracestates included
    want_states = Counter({"": TOTAL_SPANS, ERROR_STATE: n_errors, KEPT_STATE: n_kept - n_errors})
    helpers.wait_until(lambda: len(sink.spans()) >= TOTAL_SPANS + n_kept, 30, "the sink to receive every span",
                       alive=rls["sampled"].proc)
    got_states = Counter(sp.trace_state for _, _, sp in sink.spans())
    assert got_states == want_states, got_states

    for job, rl in rls.items():
        assert rl.alive(), f"redline-{job} died:\n{rl.proc.log_text()}"
        rl.stop()
    phase("done")


if __name__ == "__main__":  # the population's figures, without any server
    pop = build_population()
    t, e, nv = Tally(), Tally(), Tally()
    for tid, spans in pop:
        for sp in spans:
            t.add(sp, 1.0)
        for sp, ts in sample(tid, spans):
            e.add(sp, ADJUSTED[ts])
            nv.add(sp, 1.0)
    for svc in POPULATION:
        for sn in ("http.server", "cdn.file.read"):
            m = dict(service_name=svc, span_name=sn)
            c = t.total("calls_total", **m)
            if not c:
                continue
            print(f"{svc:11} {sn:13} calls {c:7.0f} est {e.total('calls_total', **m):7.0f} "
                  f"({e.total('calls_total', **m) / c - 1:+.2%}) err {t.total('errors_total', **m) / c:.4f} "
                  f"est {e.total('errors_total', **m) / e.total('calls_total', **m):.4f} "
                  f"naive {nv.total('errors_total', **m) / nv.total('calls_total', **m):.4f} "
                  f"p95 {histogram_quantile(0.95, t.buckets(**m)):.0f} "
                  f"est {histogram_quantile(0.95, e.buckets(**m)):.0f}")
    print("truth", sorted(alerts_on(t)), "\nestimate", sorted(alerts_on(e)), "\nnaive", sorted(alerts_on(nv)))
