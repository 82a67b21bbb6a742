//! OTLP gRPC exporter: forwards raw request bytes to Tempo.
