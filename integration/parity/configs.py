"""Config files for parity scenarios: the reference pipeline with one block changed."""

from __future__ import annotations

import yaml


def spanmetrics_pipeline(spanmetrics: dict | None = None, prometheus: dict | None = None) -> str:
    """otlp (gRPC + HTTP) -> spanmetrics -> prometheus, and otlp -> otlp/tempo; the connector
    and exporter settings given replace the reference file's."""
    cfg = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "connectors": {"spanmetrics": spanmetrics if spanmetrics is not None else {
            "namespace": "traces.spanmetrics", "dimensions": [{"name": "cdn.cache.hit"}]}},
        "exporters": {
            "otlp/tempo": {"endpoint": "tempo:4317", "tls": {"insecure": True}},
            "prometheus": {"endpoint": "0.0.0.0:9464", **(prometheus or {})},
        },
        "service": {"pipelines": {
            "traces": {"receivers": ["otlp"], "exporters": ["spanmetrics", "otlp/tempo"]},
            "metrics": {"receivers": ["spanmetrics"], "exporters": ["prometheus"]},
        }},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


BASE = spanmetrics_pipeline()


def three_signals_pipeline(signals=("traces", "metrics", "logs")) -> str:
    """otlp (gRPC + HTTP) -> traces to otlp/tempo, metrics to otlp/mimir (OTLP/gRPC), logs to
    otlphttp/loki (OTLP/HTTP, its defaults: protobuf, gzip); only the pipelines of `signals`."""
    pipelines = {
        "traces": {"receivers": ["otlp"], "exporters": ["otlp/tempo"]},
        "metrics": {"receivers": ["otlp"], "exporters": ["otlp/mimir"]},
        "logs": {"receivers": ["otlp"], "exporters": ["otlphttp/loki"]},
    }
    exporters = {
        "traces": ("otlp/tempo", {"endpoint": "tempo:4317", "tls": {"insecure": True}}),
        "metrics": ("otlp/mimir", {"endpoint": "mimir:4317", "tls": {"insecure": True}}),
        "logs": ("otlphttp/loki", {"endpoint": "http://loki:3100/otlp"}),
    }
    cfg = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "exporters": dict(exporters[s] for s in signals),
        "service": {"pipelines": {s: pipelines[s] for s in signals}},
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def three_signals_with(processors: dict, per_signal: dict) -> str:
    """three_signals_pipeline() with `processors` defined and each signal's list of them in
    `per_signal` (signal -> processor ids, in order)."""
    cfg = yaml.safe_load(three_signals_pipeline())
    cfg["processors"] = processors
    for signal, ids in per_signal.items():
        cfg["service"]["pipelines"][signal]["processors"] = ids
    return yaml.safe_dump(cfg, sort_keys=False)


def sdk_metrics_pipeline() -> str:
    """otlp (gRPC + HTTP) -> the OTLP metrics translation: `prometheus` (scraped) and
    `prometheusremotewrite`, both with their defaults."""
    cfg = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "exporters": {
            "prometheus": {"endpoint": "0.0.0.0:9464"},
            "prometheusremotewrite": {"endpoint": "http://mimir:9009/api/v1/push"},
        },
        "service": {"pipelines": {
            "metrics": {"receivers": ["otlp"], "exporters": ["prometheus", "prometheusremotewrite"]},
        }},
    }
    return yaml.safe_dump(cfg, sort_keys=False)
