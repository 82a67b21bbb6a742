"""Three Redline replicas behind one Prometheus: a known span set split round-robin between
them, every series summed across replicas must equal the totals exactly.

Both ways replicas are usually collected are checked in one real Prometheus:
  - scraped: each replica's :9464 endpoint is a target, so `instance` tells them apart;
  - remote write: each replica pushes with `external_labels: {instance: redline-N}`.
A replica's series are also the same (names, labels, values) whether scraped or pushed.
"""

from __future__ import annotations

import pytest

import helpers
import promquery
import traceset
from redline_config import PROMETHEUS, pipeline
from redline_run import Redline
from redmodel import Expected

N = 3
SCRAPE_JOB = "redline-scrape"
RW_JOB = "redline-rw"

CONFIG = pipeline(
    http=False,
    dimensions=["cdn.cache.hit"],
    spanmetrics="metrics_flush_interval: 1s",
    exporters=[PROMETHEUS, """
        prometheusremotewrite:
          endpoint: http://127.0.0.1:{prometheus}/api/v1/write
          external_labels:
            instance: redline-{i}
            job: {rw_job}
    """],
)


def split_round_robin(plan, n):
    """n plans holding every n-th root span (with its children) of every resource."""
    return [[(res, roots[k::n]) for res, roots in plan if roots[k::n]] for k in range(n)]


@pytest.fixture(scope="module")
def cluster(redline_bin, module_procs, tmp_path_factory):
    work = tmp_path_factory.mktemp("scale-out")
    ports = [{"grpc": helpers.free_port(), "prom": helpers.free_port()} for _ in range(N)]
    targets = [f"127.0.0.1:{p['prom']}" for p in ports]
    prom = promquery.start_prometheus(module_procs, work, targets, job=SCRAPE_JOB, remote_write=True)
    replicas = [Redline(module_procs, redline_bin, work, CONFIG, name=f"redline-{i}", args=("--log-format", "text"),
                        ports=p, prometheus=prom.port, i=i, rw_job=RW_JOB).start()
                for i, p in enumerate(ports, start=1)]
    helpers.wait_until(
        lambda: sorted(v for _, v in prom.query(f'up{{job="{SCRAPE_JOB}"}}')) == [1.0] * N,
        20, "prometheus to scrape every replica", alive=prom.proc,
    )

    spans = []
    for rl, plan in zip(replicas, split_round_robin(traceset.PLAN, N)):
        spans += traceset.send(f"127.0.0.1:{rl.grpc}", plan=plan)
    exp = Expected(spans)
    assert len(exp.counted) == len(spans) - 2 >= 30
    yield prom, replicas, exp, targets


def test_every_replica_got_a_share(cluster):
    prom, replicas, exp, targets = cluster
    per_instance = helpers.wait_until(
        lambda: (lambda r: r if len(r) == N else None)(
            prom.query(f'sum by (instance) (traces_spanmetrics_calls_total{{job="{SCRAPE_JOB}"}})')
        ),
        20, "every replica to report calls",
    )
    assert all(v > 0 for _, v in per_instance), per_instance


def test_scraped_sums_across_replicas_are_exact(cluster):
    prom, replicas, exp, _ = cluster
    promquery.wait_exact(prom, exp, f'job="{SCRAPE_JOB}"', "scraped series summed over instance")


def test_remote_written_sums_across_replicas_are_exact(cluster):
    prom, replicas, exp, _ = cluster
    promquery.wait_exact(prom, exp, f'job="{RW_JOB}"', "remote-written series summed over instance")
    got = sorted(m.get("instance") for m, _ in prom.query(f'count by (instance) ({{job="{RW_JOB}"}})'))
    assert got == [f"redline-{i}" for i in range(1, N + 1)], got


def test_scraped_and_pushed_series_are_the_same(cluster):
    prom, replicas, exp, targets = cluster
    # Both sides settled (the two tests above) before this one compares them per replica.
    promquery.wait_exact(prom, exp, f'job="{SCRAPE_JOB}"', "scraped series")
    promquery.wait_exact(prom, exp, f'job="{RW_JOB}"', "remote-written series")
    for i, target in enumerate(targets, start=1):
        scraped = prom.series(f'job="{SCRAPE_JOB}",instance="{target}"')
        pushed = prom.series(f'job="{RW_JOB}",instance="redline-{i}"')
        assert scraped, f"nothing scraped from {target}"
        assert set(scraped) == set(pushed), (
            f"replica {i}: series only scraped {sorted(set(scraped) - set(pushed))[:5]}, "
            f"only pushed {sorted(set(pushed) - set(scraped))[:5]}"
        )
        diff = [k for k in scraped if not promquery.close(scraped[k], pushed[k])]
        assert not diff, f"replica {i}: values differ for {diff[:5]}"


def test_replicas_stop_cleanly(cluster):
    prom, replicas, exp, _ = cluster
    for rl in replicas:
        rl.stop()
        assert "panicked" not in rl.proc.log_text()
