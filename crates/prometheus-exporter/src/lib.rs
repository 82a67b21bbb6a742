//! Prometheus exporter: text 0.0.4 and OpenMetrics exposition served over HTTP.
