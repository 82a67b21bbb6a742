//! spanmetrics connector: sharded RED aggregation over raw OTLP spans.
