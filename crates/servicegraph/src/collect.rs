//! The edge metrics as a [`MetricsSource`]: what the Prometheus exporters read in place and
//! the push encodes, in otelcol's families, names and units.

use redline_pipeline::{FamilyDesc, HistogramPoint, MetricKind, MetricsSink, MetricsSource};

use crate::graph::ServiceGraph;
use crate::series::{Hist, Series, SeriesKey};

pub const REQUEST_TOTAL: &str = "traces_service_graph_request_total";
pub const REQUEST_FAILED_TOTAL: &str = "traces_service_graph_request_failed_total";
/// Unit `s`: Prometheus renders `traces_service_graph_request_server_seconds`.
pub const REQUEST_SERVER: &str = "traces_service_graph_request_server";
pub const REQUEST_CLIENT: &str = "traces_service_graph_request_client";

impl ServiceGraph {
    /// The labels of a series, sorted by key (client_golang's order, so a scrape reads as
    /// otelcol's).
    fn labels<'s>(&'s self, key: &'s SeriesKey, out: &mut Vec<(&'s str, &'s str)>) {
        out.clear();
        out.push(("client", &key.client));
        out.push(("server", &key.server));
        out.push(("connection_type", key.conn.as_str()));
        out.push(("failed", if key.failed { "true" } else { "false" }));
        for (name, value) in self.dim_labels.iter().zip(key.dims.iter()) {
            if let Some(v) = value {
                out.push((name.as_str(), v));
            }
        }
        if self.settings.virtual_node_extra_label {
            out.push(("virtual_node", key.virtual_node.as_str()));
        }
        out.sort_by(|a, b| a.0.cmp(b.0));
    }

    fn emit_counters(
        &self,
        rows: &[(SeriesKey, Series)],
        failed_only: bool,
        sink: &mut dyn MetricsSink,
    ) {
        let mut labels = Vec::with_capacity(6 + self.dim_labels.len());
        for (key, series) in rows {
            if failed_only && !key.failed {
                continue;
            }
            self.labels(key, &mut labels);
            // A series' key includes `failed`, so its failed count is its whole count.
            sink.counter(&labels, series.total, self.start_unix_nano, None);
        }
    }

    fn emit_histograms(
        &self,
        rows: &[(SeriesKey, Series)],
        pick: fn(&Series) -> &Hist,
        sink: &mut dyn MetricsSink,
    ) {
        let mut labels = Vec::with_capacity(6 + self.dim_labels.len());
        for (key, series) in rows {
            let h = pick(series);
            self.labels(key, &mut labels);
            let point = HistogramPoint {
                bounds: self.series.bounds(),
                bucket_counts: &h.counts,
                sum: h.sum,
                count: h.count,
                start_time_unix_nano: self.start_unix_nano,
                time_unix_nano: 0,
                exemplars: h.exemplar.as_slice(),
            };
            sink.histogram(&labels, &point);
        }
    }
}

impl MetricsSource for ServiceGraph {
    fn flush_interval(&self) -> Option<std::time::Duration> {
        // 0 means "after every batch" in otelcol: no period for a push exporter to follow.
        Some(self.settings.flush_interval).filter(|d| !d.is_zero())
    }

    fn collect(&self, sink: &mut dyn MetricsSink) {
        let rows = self.series.snapshot();
        sink.family(&FamilyDesc {
            name: REQUEST_TOTAL,
            description: "Total count of requests between two nodes",
            unit: "",
            kind: MetricKind::Counter,
        });
        self.emit_counters(&rows, false, sink);
        sink.family(&FamilyDesc {
            name: REQUEST_FAILED_TOTAL,
            description: "Total count of failed requests between two nodes",
            unit: "",
            kind: MetricKind::Counter,
        });
        self.emit_counters(&rows, true, sink);
        sink.family(&FamilyDesc {
            name: REQUEST_SERVER,
            description: "Time for a request between two nodes as seen from the server",
            unit: "s",
            kind: MetricKind::Histogram,
        });
        self.emit_histograms(&rows, |s| &s.server, sink);
        sink.family(&FamilyDesc {
            name: REQUEST_CLIENT,
            description: "Time for a request between two nodes as seen from the client",
            unit: "s",
            kind: MetricKind::Histogram,
        });
        self.emit_histograms(&rows, |s| &s.client, sink);
    }
}
