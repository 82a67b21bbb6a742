"""The `zpages` extension: otelcol-contrib and Redline run the same config and must describe
it the same way on /debug/pipelinez (each pipeline's signal, MutatesData and components),
/debug/extensionz and /debug/featurez, serve /debug/servicez and (with `expvar`) the command
line on /debug/expvarz, and accept and refuse the same `zpages` settings.

The pages are HTML written for people; the tests compare what the tables say, not markup."""

from __future__ import annotations

import html.parser
import json

import pytest
import requests

import helpers

# Every processor and connector type both collectors have, so MutatesData is compared for each,
# and lists whose order matters (processors) next to lists otelcol keeps unordered.
CONFIG = """
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:{grpc}}}
      http: {{endpoint: 127.0.0.1:{http}}}
processors:
  batch: {{}}
  memory_limiter: {{check_interval: 1s, limit_mib: 1000}}
  transform: {{}}
  filter: {{}}
  attributes: {{actions: [{{key: a, value: b, action: insert}}]}}
  resource: {{attributes: [{{key: a, value: b, action: insert}}]}}
  probabilistic_sampler: {{sampling_percentage: 50}}
connectors:
  spanmetrics: {{}}
  forward: {{}}
exporters:
  debug: {{}}
  otlp: {{endpoint: 127.0.0.1:{sink}, tls: {{insecure: true}}}}
  prometheus: {{endpoint: 127.0.0.1:{prom}}}
extensions:
  zpages: {{endpoint: 127.0.0.1:{zpages}, expvar: {{enabled: true}}}}
  health_check: {{endpoint: 127.0.0.1:{health}}}
service:
  extensions: [zpages, health_check]
  telemetry: {{metrics: {{readers: [{{pull: {{exporter: {{prometheus: {{host: 127.0.0.1, port: {telemetry}}}}}}}}}]}}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [spanmetrics, otlp, forward]
    traces/forwarded:
      receivers: [forward]
      processors: [probabilistic_sampler]
      exporters: [debug]
    traces/transform: {{receivers: [otlp], processors: [transform], exporters: [debug]}}
    traces/filter: {{receivers: [otlp], processors: [filter], exporters: [debug]}}
    traces/attributes: {{receivers: [otlp], processors: [attributes], exporters: [debug]}}
    traces/resource: {{receivers: [otlp], processors: [resource], exporters: [debug]}}
    traces/limiter: {{receivers: [otlp], processors: [memory_limiter], exporters: [debug]}}
    traces/plain: {{receivers: [otlp], exporters: [debug, otlp]}}
    logs/sampled: {{receivers: [otlp], processors: [probabilistic_sampler], exporters: [debug]}}
    metrics:
      receivers: [spanmetrics]
      processors: [batch]
      exporters: [prometheus]
"""

PORTS = ("grpc", "http", "sink", "prom", "zpages", "health", "telemetry")


class Tables(html.parser.HTMLParser):
    """Every table row as a list of cells; a cell is the list of its items: the texts of its
    links (otelcol links each component), else its texts between line breaks. otelcol's
    spacer cells (`|`) and processor arrows are dropped."""

    def __init__(self, text: str):
        super().__init__()
        self.rows, self._row, self._cell, self._piece = [], None, None, ""
        self._links, self._in_link = None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._in_link = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell, self._piece, self._links = [], "", []
        elif tag == "br" and self._cell is not None:
            self._flush()

    def _flush(self):
        t = " ".join(self._piece.split())
        self._piece_was_spacer = t == "|" and not self._cell
        if t and t not in ("|", "\u2192"):
            self._cell.append(t)
        self._piece = ""

    def handle_endtag(self, tag):
        if tag == "a":
            self._in_link = False
        elif tag in ("td", "th") and self._cell is not None:
            self._flush()
            spacer = self._piece_was_spacer
            if not spacer:
                self._row.append(self._links or self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            if self._in_link and data.strip():
                self._links.append(data.strip())
            self._piece += data


def table(text: str) -> list:
    """The rows of a page's tables, header first."""
    return [r for r in Tables(text).rows if r]


def pipelines(text: str) -> dict:
    rows = table(text)
    header = [c[0] for c in rows[0]]
    assert header == ["FullName", "InputType", "MutatesData", "Receivers", "Processors", "Exporters"], header
    out = {}
    for r in rows[1:]:
        # otelcol writes a lone arrow in an empty processors cell: the cell is then empty.
        assert len(r) == 6, r
        cells = r
        name, signal, mutates = cells[0][0], cells[1][0], cells[2][0]
        out[name] = {"signal": signal, "mutates": mutates, "receivers": sorted(cells[3]),
                     "processors": cells[4], "exporters": sorted(cells[5])}
    return out


@pytest.fixture(scope="module")
def both(module_procs, otelcol_bin, redline_bin, tmp_path_factory):
    """Both collectors running CONFIG, each on ports of its own: {name: (ports, proc)}."""
    work = tmp_path_factory.mktemp("zpages")
    running = {}
    for name, binary in (("otelcol", otelcol_bin), ("redline", redline_bin)):
        ports = {p: helpers.free_port() for p in PORTS}
        config = work / f"{name}.yaml"
        config.write_text(CONFIG.format(**ports))
        proc = module_procs.start(name, [binary, "--config", config])
        helpers.wait_until(lambda: helpers.port_accepts(ports["zpages"]), 30, f"{name}'s zpages", alive=proc)
        running[name] = (ports, proc)
    return running


def get(both, name, path):
    ports, _ = both[name]
    return requests.get(f"http://127.0.0.1:{ports['zpages']}{path}", timeout=10)


def test_pipelinez_describes_every_pipeline_as_otelcol_does(both):
    pages = {n: get(both, n, "/debug/pipelinez") for n in both}
    for r in pages.values():
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    peer, ours = (pipelines(pages[n].text) for n in ("otelcol", "redline"))
    assert ours == peer
    # What the comparison covers: the table is not empty or trivially equal.
    assert len(ours) == 10
    assert ours["traces"] == {"signal": "traces", "mutates": "true", "receivers": ["otlp"],
                              "processors": ["memory_limiter", "batch"],
                              "exporters": ["forward (connector)", "otlp", "spanmetrics (connector)"]}
    assert ours["traces/limiter"]["mutates"] == "false"
    assert ours["traces/plain"]["mutates"] == "false" and ours["traces/plain"]["processors"] == []
    assert ours["metrics"]["receivers"] == ["spanmetrics (connector)"]


def test_extensionz_lists_the_same_extensions(both):
    names = {}
    for n in both:
        r = get(both, n, "/debug/extensionz")
        assert r.status_code == 200
        names[n] = [c[0] for row in table(r.text) for c in row if c[0] != "FullName"]
    assert names["redline"] == names["otelcol"] == ["health_check", "zpages"]


def test_featurez_shows_redlines_gates_in_otelcols_state(both):
    rows = {}
    for n in both:
        r = get(both, n, "/debug/featurez")
        assert r.status_code == 200
        t = table(r.text)
        header = [c[0] for c in t[0]]
        assert header[:2] == ["ID", "Enabled"], header
        stage = header.index("Stage")
        rows[n] = {row[0][0]: (row[1][0], row[stage][0]) for row in t[1:]}
    peer, ours = rows["otelcol"], rows["redline"]
    assert ours and set(ours) <= set(peer), set(ours) - set(peer)
    # Redline always runs this gate disabled (docs/compatibility.md §26); the others agree.
    differs = {g for g in ours if ours[g] != peer[g]}
    assert differs == {"connector.spanmetrics.includeCollectorInstanceID"}, differs
    assert ours["connector.spanmetrics.includeCollectorInstanceID"] == ("false", "Beta")


def test_servicez_and_expvarz(both, redline_bin):
    for n in both:
        r = get(both, n, "/debug/servicez")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        for link in ("pipelinez", "extensionz", "featurez"):
            assert f'href="{link}"' in r.text
        expvar = get(both, n, "/debug/expvarz")
        assert expvar.status_code == 200 and expvar.headers["content-type"].startswith("application/json")
        doc = json.loads(expvar.text)
        _, proc = both[n]
        assert [str(a) for a in doc["cmdline"]][1:] == ["--config", str(proc.args[-1])]
    build = {row[0][0]: row[1][0] for row in Tables(get(both, "redline", "/debug/servicez").text).rows
             if len(row) == 2}
    version = helpers.run([redline_bin, "--version"], timeout=10).stdout.split()[-1]
    assert build["Command"] == "redline" and build["Version"] == version
    ours = json.loads(get(both, "redline", "/debug/expvarz").text)
    assert ours["process"]["resident_memory_bytes"] >= 1 << 20


@pytest.mark.parametrize("path", ["/debug/tracez", "/debug/rpcz", "/", "/debug/"])
def test_absent_pages_are_404_in_both(both, path):
    assert [get(both, n, path).status_code for n in both] == [404, 404]


# zpages settings: name, the extension's section, whether otelcol-contrib and Redline accept it.
# otelcol's zpages config takes any key and ignores those it does not know, so a misspelt
# key silently leaves its setting at the default; Redline refuses it, naming the key
# (docs/compatibility.md §26).
CASES = [
    ("defaults", "{}", True, True),
    ("expvar on", "{endpoint: 127.0.0.1:0, expvar: {enabled: true}}", True, True),
    ("empty endpoint", "{endpoint: ''}", False, False),
    ("misspelt key", "{endpont: 127.0.0.1:0}", True, False),
    ("misspelt expvar key", "{expvar: {enable: true}}", True, False),
]


@pytest.mark.parametrize("name,section,peer_valid,valid", CASES, ids=[c[0] for c in CASES])
def test_same_settings_accepted_and_refused(otelcol_bin, redline_bin, tmp_path, name, section,
                                            peer_valid, valid):
    config = tmp_path / "zpages.yaml"
    config.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:0}}}}\n"
        "exporters: {debug: {}}\n"
        f"extensions: {{zpages: {section}}}\n"
        "service: {extensions: [zpages], pipelines: {traces: {receivers: [otlp], exporters: [debug]}}}\n")
    peer = helpers.run([otelcol_bin, "validate", "--config", config], timeout=60)
    ours = helpers.run([redline_bin, "validate", "--config", config], timeout=30)
    assert (peer.returncode == 0, ours.returncode == 0) == (peer_valid, valid), (peer.stderr, ours.stderr)
    if not valid:
        key = {"empty endpoint": "endpoint", "misspelt key": "endpont",
               "misspelt expvar key": "enable"}[name]
        assert key in ours.stderr + ours.stdout, ours.stderr
