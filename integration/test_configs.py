"""The files that run Redline next to Tempo (configs/, deploy/) checked by the tools that read
them, and against each other.

  - promtool: `check config` on every Prometheus config in configs/, `check rules` on the alert
    rules, `test rules` on their unit tests (firing and not firing for each alert)
  - amtool `check-config` on the Alertmanager config
  - `redline validate` on the stack's Redline config
  - the Grafana dashboard: schema basics (unique ids, gridPos, targets with a data source), the
    five reference panels' queries verbatim, exemplars on the latency panels, and every PromQL
    expression (template variables substituted) parsed by a real Prometheus
  - Grafana provisioning: exemplar links to the Tempo data source by uid
  - compose file, quadlet units and the Kubernetes manifest: every mounted file exists, the
    port plan holds (Redline owns 4317/4318 and forwards to Tempo's receiver on 14317), the
    ConfigMaps carry configs/ unchanged (Tempo's: receiver on 127.0.0.1 only), Prometheus'
    scrape targets are the stack's services on the right ports

Needs PyYAML in .venv (integration/requirements.txt), promtool (Debian prometheus) and amtool
(Debian prometheus-alertmanager).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import requests

import helpers
import promquery

try:
    import yaml
except ImportError:  # pragma: no cover - reported by the fixture below
    yaml = None

REPO = helpers.REPO
CONFIGS = REPO / "configs"
DEPLOY = REPO / "deploy"
DASHBOARD = CONFIGS / "grafana" / "dashboards" / "redline-red.json"
STACK_CONFIG = CONFIGS / "tempo-sidecar.yaml"
TEMPO_CONFIG = CONFIGS / "tempo" / "tempo.yaml"
RULES = CONFIGS / "prometheus" / "rules" / "redline-alerts.yml"

# The port plan: what each service of the stack listens on.
PORTS = {
    "redline": {4317, 4318, 9464, 13133, 8888},
    "tempo": {3200, 9095, 14317, 14318},
    "prometheus": {9090},
    "alertmanager": {9093},
    "grafana": {3000},
}
STACK = {"tempo", "redline", "prometheus", "alertmanager", "grafana"}
TEMPO_OTLP = 14317


@pytest.fixture(scope="module", autouse=True)
def need_yaml():
    if yaml is None:
        pytest.fail("PyYAML is missing from .venv: it is in integration/requirements.txt, run scripts/setup",
                    pytrace=False)


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found (Debian package {package}; scripts/setup installs it)", pytrace=False)
    return path


def ok(args: list, timeout: float = 60) -> str:
    r = helpers.run(args, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


# ------------------------------------------------------------------------ Prometheus and Alertmanager


def test_promtool_check_config():
    promtool = tool("promtool", "prometheus")
    found = sorted(CONFIGS.rglob("prometheus*.yml")) + sorted(CONFIGS.rglob("prometheus*.yaml"))
    assert found, "no Prometheus config under configs/"
    for cfg in found:
        out = ok([promtool, "check", "config", cfg])
        assert "SUCCESS" in out and "rule files found" in out, out


def test_promtool_check_rules():
    promtool = tool("promtool", "prometheus")
    out = ok([promtool, "check", "rules", RULES])
    assert "SUCCESS: 3 rules found" in out, out


def test_promtool_test_rules():
    promtool = tool("promtool", "prometheus")
    tests = sorted((CONFIGS / "prometheus" / "tests").glob("*.test.yml"))
    assert tests, "no rule unit tests"
    for t in tests:
        out = ok([promtool, "test", "rules", t])
        assert "SUCCESS" in out, out


def test_alert_rules_match_the_reference():
    """The three alerts of shared/reference/dashboard-queries.md, with severity and annotations."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    want = {
        "HttpServerErrorRateHigh": ("5m", "> 0.01", 'span_name="http.server"'),
        "HttpServerP95High": ("10m", "> 250", "histogram_quantile(0.95,"),
        "CacheHitRatioLow": ("15m", "< 0.8", 'cdn_cache_hit="true"'),
    }
    assert set(rules) == set(want)
    for name, (for_, threshold, needle) in want.items():
        r = rules[name]
        assert r["for"] == for_, (name, r["for"])
        expr = " ".join(r["expr"].split())
        assert expr.endswith(threshold) and needle in expr, (name, expr)
        assert r["labels"]["severity"] in ("critical", "warning"), name
        assert set(r["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert "$value" in r["annotations"]["summary"], name


def test_amtool_check_config():
    amtool = tool("amtool", "prometheus-alertmanager")
    for cfg in sorted((CONFIGS / "alertmanager").glob("*.yml")):
        out = ok([amtool, "check-config", cfg])
        assert "SUCCESS" in out, out


def test_redline_validates_the_stack_config(redline_bin):
    out = ok([redline_bin, "validate", "--config", STACK_CONFIG])
    assert "config is valid" in out and "warning" not in out.lower(), out


# ------------------------------------------------------------------------ the Grafana dashboard


def reference_queries(shared_dir: Path) -> dict:
    text = (shared_dir / "reference" / "dashboard-queries.md").read_text()
    rows = re.findall(r"^\|\s*([^|]+?)\s*\|\s*`([^`]+)`\s*\|\s*$", text, re.M)
    assert len(rows) == 5, rows
    return dict(rows)


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(d: dict) -> list:
    out = []
    for p in d["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows keep theirs inside
    return out


def prom_targets(d: dict) -> list:
    return [(p, t) for p in all_panels(d) for t in p.get("targets", [])
            if t.get("datasource", {}).get("type") == "prometheus"]


def test_dashboard_structure(shared_dir):
    d = dashboard()
    assert d["uid"] == "redline-red" and d["title"]
    assert d["schemaVersion"] >= 36
    panels = all_panels(d)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"

    boxes = []
    for p in panels:
        g = p.get("gridPos")
        assert g and all(isinstance(g.get(k), int) for k in "hwxy"), f"panel {p['id']}: gridPos {g}"
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, f"panel {p['id']}: {g}"
        boxes.append((p["id"], g))
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            overlap = (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                       and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"])
            assert not overlap, f"panels {a} and {b} overlap"

    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["tempo"]["type"] == "datasource" and variables["tempo"]["query"] == "tempo"
    svc = variables["service"]
    assert svc["definition"] == "label_values(traces_spanmetrics_calls_total, service_name)"
    assert svc["query"]["query"] == svc["definition"] and svc["multi"] and svc["includeAll"]

    for p in panels:
        if p["type"] == "row":
            continue
        assert p.get("targets"), f"panel {p['id']} has no query"
        for t in p["targets"]:
            ds = t.get("datasource") or {}
            assert ds.get("uid") in ("${datasource}", "${tempo}"), f"panel {p['id']}: datasource {ds}"
            assert t.get("refId"), f"panel {p['id']}: target without refId"
            if ds["type"] == "prometheus":
                assert t.get("expr", "").strip(), f"panel {p['id']}: target without expr"
                # Latency panels link their points to traces.
                assert t.get("exemplar") is ("histogram_quantile" in t["expr"]), f"panel {p['id']}: exemplar flag"
            else:
                assert ds["type"] == "tempo" and t.get("query"), f"panel {p['id']}: {t}"

    exprs = {t["expr"]: p["title"] for p, t in prom_targets(d)}
    for title, q in reference_queries(shared_dir).items():
        assert exprs.get(q) == title, f"reference panel {title!r}: query {q!r} not on a panel of that title"

    # One row per service with rate, errors and p50/p95/p99.
    rows = [p for p in panels if p["type"] == "row" and p.get("repeat") == "service"]
    assert len(rows) == 1
    service_exprs = [t["expr"] for _, t in prom_targets(d) if '"$service"' in t["expr"]]
    for needle in ("traces_spanmetrics_calls_total", "traces_spanmetrics_errors_total",
                   "histogram_quantile(0.5,", "histogram_quantile(0.95,", "histogram_quantile(0.99,"):
        assert any(needle in e for e in service_exprs), f"no per-service query with {needle}"


def substitute(expr: str) -> str:
    out = expr.replace("$__rate_interval", "1m").replace('"$service"', '"checkout"')
    assert "$" not in out, f"unsubstituted template variable in {expr!r}"
    return out


def test_every_promql_expression_parses(procs, tmp_path):
    """Dashboard and data-source queries through a real Prometheus's query API."""
    d = dashboard()
    queries = [substitute(t["expr"]) for _, t in prom_targets(d)]
    ds = yaml.safe_load((CONFIGS / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    for source in ds["datasources"]:
        for q in source.get("jsonData", {}).get("tracesToMetrics", {}).get("queries", []):
            # `$$` is the provisioning file's escape for `$`; Grafana fills $__tags.
            queries.append(q["query"].replace("$$__tags", 'service_name="checkout"'))
    label_query = next(v for v in d["templating"]["list"] if v["name"] == "service")["definition"]

    prom = promquery.start_prometheus(procs, tmp_path)
    bad = []
    for q in queries:
        r = requests.get(f"{prom.base}/api/v1/query", params={"query": q}, timeout=10)
        if r.status_code != 200 or r.json().get("status") != "success":
            bad.append(f"{q}\n    -> {r.status_code} {r.text[:300]}")
    assert not bad, "queries Prometheus rejects:\n  " + "\n  ".join(bad)
    m = re.fullmatch(r"label_values\((\w+), (\w+)\)", label_query)
    assert m, label_query
    r = requests.get(f"{prom.base}/api/v1/label/{m.group(2)}/values", params={"match[]": m.group(1)}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "success", r.text


def test_grafana_provisioning():
    ds = yaml.safe_load((CONFIGS / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text())
    by_type = {s["type"]: s for s in ds["datasources"]}
    prom, tempo = by_type["prometheus"], by_type["tempo"]
    assert prom["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": tempo["uid"]}]
    assert prom["url"] == "http://prometheus:9090" and tempo["url"] == "http://tempo:3200"
    # The Service Graph tab reads the servicegraph series from the provisioned Prometheus.
    assert tempo["jsonData"]["serviceMap"] == {"datasourceUid": prom["uid"]}
    # The dashboard's data-source variables default to the provisioned uids.
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == prom["uid"]
    assert variables["tempo"]["current"]["value"] == tempo["uid"]

    providers = yaml.safe_load((CONFIGS / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == ["/var/lib/grafana/dashboards"]


# ------------------------------------------------------------------------ the stack: compose, quadlet, Kubernetes


def tempo_receiver_endpoints(text: str) -> dict:
    cfg = yaml.safe_load(text)
    protocols = cfg["distributor"]["receivers"]["otlp"]["protocols"]
    return {k: v["endpoint"] for k, v in protocols.items()}


def stack_default(var: str) -> str:
    m = re.search(r"\$\{env:" + var + r":-([^}]+)\}", STACK_CONFIG.read_text())
    assert m, f"{STACK_CONFIG.name}: no default for {var}"
    return m.group(1)


def test_port_plan_of_the_configs():
    assert tempo_receiver_endpoints(TEMPO_CONFIG.read_text()) == {"grpc": "0.0.0.0:14317", "http": "0.0.0.0:14318"}
    assert stack_default("TEMPO_ENDPOINT") == f"127.0.0.1:{TEMPO_OTLP}"
    defaults = {int(stack_default(f"REDLINE_{k}_PORT")) for k in ("GRPC", "HTTP", "METRICS", "HEALTH", "TELEMETRY")}
    assert defaults == PORTS["redline"]
    prom = yaml.safe_load((CONFIGS / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {"redline:9464", "redline:8888"} <= targets
    for t in targets:
        host, port = t.rsplit(":", 1)
        service = "prometheus" if host == "localhost" else host
        assert int(port) in PORTS.get(service, set()), f"scrape target {t}: not a port of {service}"
    am = {t for a in prom["alerting"]["alertmanagers"] for sc in a["static_configs"] for t in sc["targets"]}
    assert am == {"alertmanager:9093"}


def split_volume(spec: str) -> tuple:
    parts = spec.split(":")
    return parts[0], parts[1], (parts[2] if len(parts) > 2 else "")


def test_compose_file():
    path = DEPLOY / "compose" / "compose.yaml"
    compose = yaml.safe_load(path.read_text())
    services = compose["services"]
    assert STACK <= set(services), set(services)
    named = set(compose.get("volumes") or {})
    mounts = {}  # service -> {container path: host path}
    for name, svc in services.items():
        assert svc.get("image"), name
        mounts[name] = {}
        for v in svc.get("volumes", []):
            src, dst, _ = split_volume(v)
            if src.startswith((".", "/")):
                host = (path.parent / src).resolve()
                assert host.exists(), f"{name}: mounted {src} does not exist ({host})"
                mounts[name][dst] = host
            else:
                assert src in named, f"{name}: volume {src} not declared"

    redline = services["redline"]
    cmd = redline["command"]
    cfg_path = cmd[cmd.index("--config") + 1]
    assert mounts["redline"].get(cfg_path) == STACK_CONFIG.resolve(), mounts["redline"]
    assert redline["environment"]["TEMPO_ENDPOINT"] == f"tempo:{TEMPO_OTLP}"
    published = {name: {int(p.split(":")[-1]) for p in svc.get("ports", [])} for name, svc in services.items()}
    assert {4317, 4318, 9464, 13133} <= published["redline"]
    assert not ({4317, 4318, 14317, 14318} & published["tempo"]), "Tempo's OTLP ports must stay private"
    for name, ports in published.items():
        assert ports <= PORTS.get(name, set()), f"{name} publishes {ports}, not in the port plan"

    tempo_cfg = services["tempo"]["command"][0].split("=", 1)[1]
    assert mounts["tempo"][tempo_cfg] == TEMPO_CONFIG.resolve()
    prom_cmd = services["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in prom_cmd
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom_cmd
    assert mounts["prometheus"]["/etc/prometheus"] == (CONFIGS / "prometheus").resolve()
    am_cfg = next(a for a in services["alertmanager"]["command"] if a.startswith("--config.file=")).split("=", 1)[1]
    assert mounts["alertmanager"][am_cfg] == (CONFIGS / "alertmanager" / "alertmanager.yml").resolve()
    assert mounts["grafana"]["/etc/grafana/provisioning"] == (CONFIGS / "grafana" / "provisioning").resolve()
    assert mounts["grafana"]["/var/lib/grafana/dashboards"] == (CONFIGS / "grafana" / "dashboards").resolve()


def parse_unit(path: Path) -> dict:
    """A systemd/quadlet unit: {section: {key: [values]}} (keys repeat)."""
    out, section = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None and "=" in line, f"{path.name}: bad line {raw!r}"
        k, v = line.split("=", 1)
        section.setdefault(k.strip(), []).append(v.strip())
    return out


def test_quadlet_units():
    qdir = DEPLOY / "quadlet"
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())["services"]
    units = {p.stem: parse_unit(p) for p in qdir.glob("*.container")}
    assert set(units) == STACK, set(units)
    network = parse_unit(qdir / "redline-tempo.network")
    assert "Network" in network
    for name, unit in units.items():
        c = unit["Container"]
        assert c["ContainerName"] == [name]
        assert c["Image"] == [compose[name]["image"]], f"{name}: image differs from the compose file"
        assert c["Network"] == ["redline-tempo.network"]
        assert unit["Install"]["WantedBy"] == ["default.target"]
        compose_dst = {split_volume(v)[1] for v in compose[name].get("volumes", [])}
        for v in c.get("Volume", []):
            src, dst, _ = split_volume(v)
            if src.startswith("/"):
                # Installed as a copy of configs/ in /etc/redline-tempo (deploy/README.md).
                assert src.startswith("/etc/redline-tempo/"), v
                assert (CONFIGS / src[len("/etc/redline-tempo/"):]).exists(), f"{name}: {src} has no source in configs/"
            assert dst in compose_dst, f"{name}: {dst} is not mounted in the compose file"
        ports = {int(p.split(":")[-1]) for p in c.get("PublishPort", [])}
        assert ports == {int(p.split(":")[-1]) for p in compose[name].get("ports", [])}, f"{name}: ports differ"

    r = units["redline"]["Container"]
    assert r["Environment"] == [f"TEMPO_ENDPOINT=tempo:{TEMPO_OTLP}"]
    exec_args = r["Exec"][0].split()
    cfg = exec_args[exec_args.index("--config") + 1]
    assert any(split_volume(v)[:2] == ("/etc/redline-tempo/tempo-sidecar.yaml", cfg) for v in r["Volume"])
    assert "--enable-feature=exemplar-storage" in units["prometheus"]["Container"]["Exec"][0]


def test_kubernetes_sidecar():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "tempo-redline.yaml").read_text()) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    # The ConfigMaps carry the files of configs/: Redline's unchanged, Tempo's with the receiver
    # bound to loopback (only the sidecar may send to it).
    assert by_kind["ConfigMap"]["redline-config"]["data"] == {"tempo-sidecar.yaml": STACK_CONFIG.read_text()}
    tempo_text = by_kind["ConfigMap"]["tempo-config"]["data"]["tempo.yaml"]
    orig = TEMPO_CONFIG.read_text().splitlines()
    copy = tempo_text.splitlines()
    assert len(orig) == len(copy)
    diff = [(a.strip(), b.strip()) for a, b in zip(orig, copy) if a != b]
    assert diff == [("endpoint: 0.0.0.0:14317", "endpoint: 127.0.0.1:14317"),
                    ("endpoint: 0.0.0.0:14318", "endpoint: 127.0.0.1:14318")], diff

    dep = by_kind["Deployment"]["tempo"]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert set(containers) == {"tempo", "redline"}
    rl, tempo = containers["redline"], containers["tempo"]
    rl_ports = {p["name"]: p["containerPort"] for p in rl["ports"]}
    assert set(rl_ports.values()) == PORTS["redline"]
    tempo_ports = {p["name"]: p["containerPort"] for p in tempo["ports"]}
    assert not (set(tempo_ports.values()) & PORTS["redline"]), "one network namespace: no port in both"
    env = {e["name"]: e["value"] for e in rl.get("env", [])}
    assert env["TEMPO_ENDPOINT"] == f"127.0.0.1:{TEMPO_OTLP}"
    assert tempo_receiver_endpoints(tempo_text)["grpc"] == env["TEMPO_ENDPOINT"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert rl[probe]["httpGet"]["port"] == "health" and rl_ports["health"] == 13133
    sc = rl["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"], sc["readOnlyRootFilesystem"]) == (65532, 65532, True, True)

    args = rl["args"]
    cfg = args[args.index("--config") + 1]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in rl["volumeMounts"]}
    cfg_dir, cfg_file = cfg.rsplit("/", 1)
    assert volumes[mounts[cfg_dir]]["configMap"]["name"] == "redline-config"
    assert cfg_file in by_kind["ConfigMap"]["redline-config"]["data"]
    tempo_cfg = tempo["args"][0].split("=", 1)[1]
    tdir, tfile = tempo_cfg.rsplit("/", 1)
    tmounts = {m["mountPath"]: m["name"] for m in tempo["volumeMounts"]}
    assert volumes[tmounts[tdir]]["configMap"]["name"] == "tempo-config" and tfile == "tempo.yaml"

    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(rl_ports["metrics"])
    svc = by_kind["Service"]["tempo"]
    all_named = {**rl_ports, **tempo_ports}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in all_named, f"service port {p['name']}: no container port {p['targetPort']}"
    svc_ports = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert svc_ports[4317] == "otlp-grpc" and svc_ports[4318] == "otlp-http", "applications reach Redline"
