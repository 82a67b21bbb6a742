//! `prometheusremotewrite` exporter.
