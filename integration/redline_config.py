"""Redline configs for the end-to-end tests, written as YAML templates.

Every test runs the same otelcol pipeline (OTLP receiver -> spanmetrics -> exporters) and
differs from the others in a few blocks: receiver limits, a processor, an exporter's settings,
an extension. `pipeline()` writes the whole file around just those blocks, so a test shows
what its config adds and the rest is written once.

The result is a str.format template (redline_run.Redline fills it): `{grpc}` and `{http}` are
the OTLP receiver, `{prom}` Redline's /metrics, `{sink}` the stand-in Tempo, `{telemetry}` the
self-telemetry endpoint; blocks may add their own placeholders.
"""

from __future__ import annotations

import textwrap
from typing import Iterable, Sequence


def _block(yaml: str, indent: int) -> str:
    """`yaml` (with any common indentation) indented by `indent` spaces, ending in a newline."""
    if not yaml.strip():
        return ""
    return textwrap.indent(textwrap.dedent(yaml).strip("\n") + "\n", " " * indent)


def _names(yaml: str) -> list:
    """The top-level keys of a block: the components it defines."""
    return [line.split(":", 1)[0] for line in textwrap.dedent(yaml).splitlines()
            if line.strip() and not line[0].isspace()]


def _flow(names: Iterable[str]) -> str:
    return "[" + ", ".join(names) + "]"


def otlp_tempo(settings: str = "") -> str:
    """The otlp/tempo exporter (plaintext gRPC to `{sink}`) with `settings` added under it."""
    return "otlp/tempo:\n  endpoint: 127.0.0.1:{sink}\n  tls:\n    insecure: true\n" + _block(settings, 2)


PROMETHEUS = "prometheus:\n  endpoint: 127.0.0.1:{prom}\n"


def pipeline(
    *,
    http: bool = True,
    grpc_settings: str = "",
    http_settings: str = "",
    processors: str = "",
    dimensions: Iterable[str] = (),
    spanmetrics: str = "",
    exporters: Sequence[str] = (otlp_tempo(), PROMETHEUS),
    extensions: str = "",
    telemetry: bool = False,
) -> str:
    """A config: the `otlp` receiver (gRPC, and HTTP unless `http` is false) with extra
    settings per protocol, spanmetrics in namespace traces.spanmetrics with `dimensions` and
    extra `spanmetrics` settings, and `exporters`, one block each (default: otlp/tempo and
    prometheus). Blocks are YAML at any indentation.

    Wiring follows from the blocks: every processor runs in the traces pipeline, which feeds
    spanmetrics and the otlp* exporters; every other exporter is in the metrics pipeline;
    every extension is enabled. `telemetry` serves Redline's own metrics on `{telemetry}`."""
    receivers = "receivers:\n  otlp:\n    protocols:\n"
    receivers += "      grpc:\n        endpoint: 127.0.0.1:{grpc}\n" + _block(grpc_settings, 8)
    if http:
        receivers += "      http:\n        endpoint: 127.0.0.1:{http}\n" + _block(http_settings, 8)

    connectors = "connectors:\n  spanmetrics:\n    namespace: traces.spanmetrics\n"
    if dimensions:
        connectors += "    dimensions:\n" + "".join(f"      - name: {d}\n" for d in dimensions)
    connectors += _block(spanmetrics, 4)

    exporters = "".join(_block(e, 0) for e in exporters)
    exporter_names = _names(exporters)
    forwarders = [n for n in exporter_names if n.split("/")[0] == "otlp"]
    service = "service:\n"
    if extensions:
        service += f"  extensions: {_flow(_names(extensions))}\n"
    if telemetry:
        service += "  telemetry:\n    metrics:\n      address: 127.0.0.1:{telemetry}\n"
    service += "  pipelines:\n    traces:\n      receivers: [otlp]\n"
    if processors:
        service += f"      processors: {_flow(_names(processors))}\n"
    service += f"      exporters: {_flow(['spanmetrics', *forwarders])}\n"
    service += "    metrics:\n      receivers: [spanmetrics]\n"
    service += f"      exporters: {_flow(n for n in exporter_names if n not in forwarders)}\n"

    sections = [
        receivers,
        "processors:\n" + _block(processors, 2) if processors else "",
        connectors,
        "exporters:\n" + _block(exporters, 2),
        "extensions:\n" + _block(extensions, 2) if extensions else "",
        service,
    ]
    return "\n".join(s for s in sections if s)


# The reference pipeline (shared/reference/otelcol-tempo.yaml) on 127.0.0.1 ports.
REFERENCE = pipeline(dimensions=["cdn.cache.hit"])
