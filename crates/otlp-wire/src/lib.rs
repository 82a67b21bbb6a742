//! Zero-allocation OTLP trace wire-format walker and validator.
