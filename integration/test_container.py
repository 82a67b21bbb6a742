"""The container image (Containerfile, scripts/build-image) run with podman.

The image is built from a static binary (`scripts/build-image --profile dev`: same code and
Containerfile as the release image, a faster build) unless REDLINE_IMAGE names one already
built. Each test runs the image with the host's network, so the ports it listens on are
127.0.0.1 ports this test picked free, and talks to it with the OpenTelemetry Python SDK:

  - the image's metadata and files: non-root user, REDLINE_LISTEN_HOST=0.0.0.0, the exposed
    ports, exactly the expected files, the shipped defaults byte-identical to configs/
  - `validate` of the embedded default inside the image
  - the default config on free ports (the embedded one if configs/default.yaml reads its ports
    from the environment, else a mounted copy with only the ports moved): spans sent with the
    SDK appear in /metrics with exact counts; `podman stop` exits 0
  - the stack config (configs/tempo-sidecar.yaml, unchanged, ports from its env variables):
    health check, every span forwarded byte for byte to a sink standing in for Tempo (reached
    by host name, as in the compose stack), exact
    RED series with the cdn.cache.hit dimension, self-telemetry, running as uid 65532

Environment:
  REDLINE_IMAGE        use this image instead of building one (e.g. localhost/redline:latest
                       from scripts/build-image)
  PODMAN_GLOBAL_ARGS   global podman flags (default without systemd:
                       --cgroup-manager=cgroupfs --events-backend=file)
  REDLINE_ALLOW_SKIP=1 skip (instead of fail) when podman is not installed

podman runs as root here. `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024`: podman's
default rlimits are above this sandbox's hard limits, and runc then fails with "error setting
rlimit type 7: operation not permitted".
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

import helpers
import traceset
from redmodel import Expected

REPO = helpers.REPO
PREFIX = "traces_spanmetrics_"
UID = "65532"
EXPOSED = {"4317/tcp", "4318/tcp", "9464/tcp", "13133/tcp", "8888/tcp"}
# Exactly what scripts/build-image puts in the image (regular files, mode).
IMAGE_FILES = {
    "usr/local/bin/redline": 0o555,
    "etc/redline/default.yaml": 0o444,
    "etc/redline/default-forward.yaml": 0o444,
    "etc/ssl/certs/ca-certificates.crt": 0o444,
    "etc/passwd": 0o444,
    "etc/group": 0o444,
    "etc/nsswitch.conf": 0o444,
}
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # release ~12 MB, dev ~30 MB; an unstripped binary is ~170 MB
RUN_FLAGS = ["--runtime", "runc", "--network=host", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def podman_global() -> list:
    env = os.environ.get("PODMAN_GLOBAL_ARGS")
    if env is not None:
        return shlex.split(env)
    if not Path("/run/systemd/system").is_dir():
        return ["--cgroup-manager=cgroupfs", "--events-backend=file"]
    return []


def podman(*args, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    r = helpers.run(["podman", *podman_global(), *args], timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if shutil.which("podman") is None:
        msg = "podman is not installed (Debian: apt-get install podman runc; scripts/setup does it)"
        if os.environ.get("REDLINE_ALLOW_SKIP") == "1":
            pytest.skip(msg + "; skipped because REDLINE_ALLOW_SKIP=1")
        pytest.fail(msg, pytrace=False)
    given = os.environ.get("REDLINE_IMAGE")
    if given:
        podman("image", "exists", given)
        yield given
        return
    tag = f"localhost/redline-test:{os.getpid()}"
    env = dict(os.environ, PODMAN_GLOBAL_ARGS=" ".join(podman_global()))
    # Cold, this compiles the dependencies once more (static, in target/<host triple>/debug).
    r = subprocess.run(
        [str(REPO / "scripts" / "build-image"), "--profile", "dev", "--tag", tag],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"scripts/build-image failed ({r.returncode}):\n{r.stderr[-6000:]}"
    assert r.stdout.strip().splitlines()[-1] == tag, r.stdout
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag, check=False)


class Container:
    """One detached container, stopped and removed by name with bounded waits."""

    seq = 0

    def __init__(self, image: str, args: list, env: dict, mounts: dict, hosts: dict | None = None):
        Container.seq += 1
        self.name = f"redline-test-{os.getpid()}-{Container.seq}"
        cmd = ["run", "--detach", "--name", self.name, *RUN_FLAGS]
        for host, ip in (hosts or {}).items():
            cmd += ["--add-host", f"{host}:{ip}"]
        for k, v in env.items():
            cmd += ["--env", f"{k}={v}"]
        for host, inside in mounts.items():
            cmd += ["--volume", f"{host}:{inside}:ro"]
        podman(*cmd, image, *args, timeout=90)
        self.exit_code = None

    def running(self) -> bool:
        r = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False, timeout=20)
        return r.stdout.strip() == "true"

    def logs(self) -> str:
        r = podman("logs", self.name, check=False, timeout=20)
        return r.stdout + r.stderr

    def pid(self) -> int:
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name, timeout=20).stdout.strip())

    def wait_http(self, url: str, what: str, timeout: float = 30) -> requests.Response:
        def ok():
            if not self.running():
                raise AssertionError(f"container {self.name} exited while waiting for {what}:\n{self.logs()}")
            try:
                r = requests.get(url, timeout=2)
            except requests.RequestException:
                return None
            return r if r.status_code == 200 else None

        deadline = time.monotonic() + timeout
        while True:
            r = ok()
            if r is not None:
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({url}):\n{self.logs()}")
            time.sleep(0.3)

    def stop(self) -> int:
        """SIGTERM (podman stop, SIGKILL after 15s), then the exit code."""
        if self.exit_code is None:
            podman("stop", "--time", "15", self.name, timeout=60)
            r = podman("wait", self.name, timeout=30)
            self.exit_code = int(r.stdout.strip().splitlines()[-1])
        return self.exit_code

    def remove(self):
        podman("rm", "--force", "--time", "5", self.name, check=False, timeout=60)


@pytest.fixture
def containers():
    started: list[Container] = []

    def start(*a, **kw) -> Container:
        c = Container(*a, **kw)
        started.append(c)
        return c

    try:
        yield start
    finally:
        for c in reversed(started):
            c.remove()


# ------------------------------------------------------------------------ model comparison


def red_problems(metrics_text: str, exp: Expected) -> list:
    """Differences between the spanmetrics families of an exposition and the model."""
    got = {"calls": {}, "errors": {}, "count": {}, "sum": {}, "bucket": {}}
    for name, labels, value in helpers.parse_text_metrics(metrics_text):
        if not name.startswith(PREFIX):
            continue
        fam = name[len(PREFIX):]
        if fam == "duration_milliseconds_bucket":
            got["bucket"][(helpers.label_key(labels, ("le",)), helpers.parse_float(labels["le"]))] = value
            continue
        k = helpers.label_key(labels)
        target = {"calls_total": "calls", "errors_total": "errors", "duration_milliseconds_count": "count",
                  "duration_milliseconds_sum": "sum"}.get(fam)
        if target is None:
            got.setdefault("other", {})[(name, k)] = value
        else:
            got[target][k] = value
    want = {
        "calls": {k: float(n) for k, n in exp.calls.items()},
        "errors": {k: float(n) for k, n in exp.errors.items()},
        "count": {k: float(n) for k, n in exp.hist_count.items()},
        "sum": dict(exp.hist_sum),
        "bucket": {k: float(n) for k, n in exp.hist_bucket.items()},
    }
    problems = [f"unexpected family {k}" for k in got.get("other", {})]
    for fam, w in want.items():
        g = got[fam]
        for k in sorted(set(w) | set(g), key=repr):
            if k not in g:
                problems.append(f"{fam}: missing {k} (want {w[k]})")
            elif k not in w:
                problems.append(f"{fam}: unexpected {k} = {g[k]}")
            elif abs(g[k] - w[k]) > 1e-9 * max(1.0, abs(w[k])):
                problems.append(f"{fam}: {k} = {g[k]}, want {w[k]}")
    return problems


def wait_red(url: str, exp: Expected, c: Container, timeout: float = 20) -> str:
    state = {}

    def settled():
        state["text"] = requests.get(url, timeout=2).text
        state["problems"] = red_problems(state["text"], exp)
        return not state["problems"]

    try:
        helpers.wait_until(settled, timeout, f"the RED series at {url}", interval=0.5)
    except helpers.WaitTimeout:
        raise AssertionError(
            "series differ from the spans sent:\n  " + "\n  ".join((state.get("problems") or ["no scrape"])[:30])
            + f"\n{c.logs()}"
        ) from None
    return state["text"]


# ------------------------------------------------------------------------ tests


def test_image_metadata_and_files(image, tmp_path):
    info = json.loads(podman("image", "inspect", image).stdout)[0]
    cfg = info["Config"]
    size = int(info["Size"])
    print(f"\nimage {image}: {size / 1e6:.1f} MB")
    assert cfg.get("User") == f"{UID}:{UID}", cfg.get("User")
    assert "REDLINE_LISTEN_HOST=0.0.0.0" in cfg.get("Env", []), cfg.get("Env")
    assert set(cfg.get("ExposedPorts", {})) == EXPOSED, cfg.get("ExposedPorts")
    assert cfg.get("Entrypoint") == ["/usr/local/bin/redline"], cfg.get("Entrypoint")
    assert not cfg.get("Cmd"), f"no default arguments: the embedded default runs ({cfg.get('Cmd')})"
    assert size < MAX_IMAGE_BYTES, f"image is {size} bytes: is the binary stripped?"

    # The filesystem: exactly the expected files, owned by root, not writable by the user.
    cid = podman("create", image).stdout.strip()
    try:
        tar = tmp_path / "fs.tar"
        podman("export", "--output", str(tar), cid, timeout=120)
    finally:
        podman("rm", "--force", cid, check=False)

    with tarfile.open(tar) as t:
        files = {m.name.lstrip("./"): m for m in t.getmembers() if m.isfile()}
        assert set(files) == set(IMAGE_FILES), f"image files: {sorted(files)}"
        for name, mode in IMAGE_FILES.items():
            m = files[name]
            assert (m.uid, m.mode & 0o7777) == (0, mode), f"{name}: uid {m.uid} mode {oct(m.mode)}"
        for name in ("default.yaml", "default-forward.yaml"):
            shipped = t.extractfile(files[f"etc/redline/{name}"]).read()
            assert shipped == (REPO / "configs" / name).read_bytes(), f"/etc/redline/{name} differs from configs/{name}"
        passwd = t.extractfile(files["etc/passwd"]).read().decode()
        assert f":{UID}:{UID}:" in passwd, passwd

    # The binary in the image runs on its own (static) and validates the embedded default.
    r = podman("run", "--rm", *RUN_FLAGS, image, "validate", timeout=60, check=False)
    assert r.returncode == 0 and "embedded default: config is valid" in r.stdout, r.stdout + r.stderr
    r = podman("run", "--rm", *RUN_FLAGS, image, "components", timeout=60)
    assert "spanmetrics" in r.stdout and "health_check" in r.stdout, r.stdout


def test_default_config_counts_spans(image, containers, tmp_path):
    """The default config on free ports: the embedded one as shipped when configs/default.yaml
    takes its ports from the environment, else a mounted copy with only the ports moved."""
    grpc, http, metrics = (helpers.free_port() for _ in range(3))
    text = (REPO / "configs" / "default.yaml").read_text()
    env = {"REDLINE_LISTEN_HOST": "127.0.0.1"}
    if "${env:REDLINE_GRPC_PORT" in text:
        env.update(REDLINE_GRPC_PORT=str(grpc), REDLINE_HTTP_PORT=str(http), REDLINE_METRICS_PORT=str(metrics))
        c = containers(image, [], env=env, mounts={})
    else:
        for old, new in ((":4317", grpc), (":4318", http), (":9464", metrics)):
            assert text.count(old) == 1, f"configs/default.yaml: expected one {old}"
            text = text.replace(old, f":{new}")
        cfg = tmp_path / "default-test.yaml"
        cfg.write_text(text)
        cfg.chmod(0o644)
        c = containers(image, ["--config", "/etc/redline/test.yaml"], env=env,
                       mounts={cfg: "/etc/redline/test.yaml"})
    url = f"http://127.0.0.1:{metrics}/metrics"
    c.wait_http(url, "Redline's /metrics in the container")

    spans = traceset.send(f"127.0.0.1:{grpc}")
    exp = Expected(spans, dimensions=())
    assert exp.counted, "the trace set counts spans"
    wait_red(url, exp, c)

    assert c.stop() == 0, c.logs()
    assert "stopped" in c.logs(), c.logs()


def test_stack_config_forwards_to_tempo(image, containers, sink):
    """configs/tempo-sidecar.yaml, mounted unchanged: the sidecar as deploy/ runs it, with the
    sink standing in for Tempo."""
    ports = {k: helpers.free_port() for k in ("GRPC", "HTTP", "METRICS", "HEALTH", "TELEMETRY")}
    env = {f"REDLINE_{k}_PORT": str(p) for k, p in ports.items()}
    env["REDLINE_LISTEN_HOST"] = "127.0.0.1"
    # By name, as in the compose stack: the static binary resolves it through the /etc/hosts
    # the engine writes (glibc's built-in `files` lookup; no NSS modules in the image).
    env["TEMPO_ENDPOINT"] = f"tempo:{sink.port}"
    c = containers(image, ["--config", "/etc/redline/tempo-sidecar.yaml"], env=env,
                   mounts={REPO / "configs" / "tempo-sidecar.yaml": "/etc/redline/tempo-sidecar.yaml"},
                   hosts={"tempo": "127.0.0.1"})

    health = c.wait_http(f"http://127.0.0.1:{ports['HEALTH']}/", "the health check")
    assert health.json().get("status") == "Server available", health.text

    # Runs as the unprivileged user, whatever the mounted config.
    status = Path(f"/proc/{c.pid()}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert uids == [UID] * 4, f"process uids {uids}"

    spans = traceset.send(f"127.0.0.1:{ports['GRPC']}")
    exp = Expected(spans)  # the stack config has the cdn.cache.hit dimension
    wait_red(f"http://127.0.0.1:{ports['METRICS']}/metrics", exp, c)

    helpers.wait_until(lambda: sink.span_count() >= len(spans), 20,
                       f"the sink to receive {len(spans)} spans (has {sink.span_count()})")
    problems = traceset.compare_forwarded(spans, sink.spans())
    assert not problems, "forwarded spans differ:\n  " + "\n  ".join(problems[:20])

    tel = requests.get(f"http://127.0.0.1:{ports['TELEMETRY']}/metrics", timeout=5).text
    accepted = sum(v for n, labels, v in helpers.parse_text_metrics(tel)
                   if n == "otelcol_receiver_accepted_spans" and labels.get("transport") == "grpc")
    assert accepted == len(spans), f"self-telemetry counts {accepted} accepted spans, sent {len(spans)}"

    assert c.stop() == 0, c.logs()
