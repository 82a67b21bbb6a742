//! OTLP receiver: gRPC and HTTP servers producing raw TracesBatch values.
