//! Redline's own metrics, named as otelcol names them so existing dashboards for the
//! collector work. Every name is defined here once; components only get counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::component::Signal;
use crate::metrics::{FamilyDesc, MetricKind, MetricsSink, MetricsSource};

mod histogram;

pub use histogram::{HistogramFamily, DEFAULT_BOUNDS};

pub const RECEIVER_ACCEPTED_SPANS: &str = "otelcol_receiver_accepted_spans";
pub const RECEIVER_REFUSED_SPANS: &str = "otelcol_receiver_refused_spans";
pub const RECEIVER_ACCEPTED_METRIC_POINTS: &str = "otelcol_receiver_accepted_metric_points";
pub const RECEIVER_REFUSED_METRIC_POINTS: &str = "otelcol_receiver_refused_metric_points";
pub const RECEIVER_ACCEPTED_LOG_RECORDS: &str = "otelcol_receiver_accepted_log_records";
pub const RECEIVER_REFUSED_LOG_RECORDS: &str = "otelcol_receiver_refused_log_records";
pub const EXPORTER_SENT_SPANS: &str = "otelcol_exporter_sent_spans";
pub const EXPORTER_SEND_FAILED_SPANS: &str = "otelcol_exporter_send_failed_spans";
pub const EXPORTER_ENQUEUE_FAILED_SPANS: &str = "otelcol_exporter_enqueue_failed_spans";
pub const EXPORTER_SENT_METRIC_POINTS: &str = "otelcol_exporter_sent_metric_points";
pub const EXPORTER_SEND_FAILED_METRIC_POINTS: &str = "otelcol_exporter_send_failed_metric_points";
pub const EXPORTER_ENQUEUE_FAILED_METRIC_POINTS: &str =
    "otelcol_exporter_enqueue_failed_metric_points";
pub const EXPORTER_SENT_LOG_RECORDS: &str = "otelcol_exporter_sent_log_records";
pub const EXPORTER_SEND_FAILED_LOG_RECORDS: &str = "otelcol_exporter_send_failed_log_records";
pub const EXPORTER_ENQUEUE_FAILED_LOG_RECORDS: &str = "otelcol_exporter_enqueue_failed_log_records";
pub const EXPORTER_QUEUE_SIZE: &str = "otelcol_exporter_queue_size";
pub const EXPORTER_QUEUE_CAPACITY: &str = "otelcol_exporter_queue_capacity";
pub const EXPORTER_IN_FLIGHT_REQUESTS: &str = "otelcol_exporter_in_flight_requests";
/// The collector process (served by the binary).
pub const PROCESS_UPTIME: &str = "otelcol_process_uptime";
pub const PROCESS_CPU_SECONDS: &str = "otelcol_process_cpu_seconds";
pub const PROCESS_MEMORY_RSS: &str = "otelcol_process_memory_rss";
/// Items a processor took and passed on (label `processor`, `otel_signal`), in the signal's unit.
pub const PROCESSOR_INCOMING_ITEMS: &str = "otelcol_processor_incoming_items";
pub const PROCESSOR_OUTGOING_ITEMS: &str = "otelcol_processor_outgoing_items";
/// Items the filter processor dropped (label `filter`: the processor id).
pub const PROCESSOR_FILTER_SPANS_FILTERED: &str = "otelcol_processor_filter_spans_filtered";
pub const PROCESSOR_FILTER_DATAPOINTS_FILTERED: &str =
    "otelcol_processor_filter_datapoints_filtered";
pub const PROCESSOR_FILTER_LOGS_FILTERED: &str = "otelcol_processor_filter_logs_filtered";
/// The `fluent_forward` receiver's connections opened and closed, events parsed, events that
/// failed to parse and log records made (sums that otelcol declares non-monotonic, so they
/// are served as gauges, without `_total`).
pub const FLUENT_OPENED_CONNECTIONS: &str = "otelcol_fluent_opened_connections";
pub const FLUENT_CLOSED_CONNECTIONS: &str = "otelcol_fluent_closed_connections";
pub const FLUENT_EVENTS_PARSED: &str = "otelcol_fluent_events_parsed";
pub const FLUENT_PARSE_FAILURES: &str = "otelcol_fluent_parse_failures";
pub const FLUENT_RECORDS_GENERATED: &str = "otelcol_fluent_records_generated";
/// Delta points the `deltatocumulative` processor took (label `error` when it dropped them).
pub const DELTATOCUMULATIVE_DATAPOINTS: &str = "otelcol_deltatocumulative_datapoints";
/// The `deltatocumulative` processor's streams: tracked now, the most it tracks, and the
/// seconds after which an idle one is forgotten.
pub const DELTATOCUMULATIVE_STREAMS_TRACKED: &str = "otelcol_deltatocumulative_streams_tracked";
pub const DELTATOCUMULATIVE_STREAMS_LIMIT: &str = "otelcol_deltatocumulative_streams_limit";
pub const DELTATOCUMULATIVE_STREAMS_MAX_STALE: &str = "otelcol_deltatocumulative_streams_max_stale";
/// The `groupbyattrs` processor: items that had grouping attributes and items that had none,
/// per signal, and how many resources each request came out with.
pub const GROUPBYATTRS_NUM_GROUPED_SPANS: &str = "otelcol_processor_groupbyattrs_num_grouped_spans";
pub const GROUPBYATTRS_NUM_NON_GROUPED_SPANS: &str =
    "otelcol_processor_groupbyattrs_num_non_grouped_spans";
pub const GROUPBYATTRS_NUM_GROUPED_LOGS: &str = "otelcol_processor_groupbyattrs_num_grouped_logs";
pub const GROUPBYATTRS_NUM_NON_GROUPED_LOGS: &str =
    "otelcol_processor_groupbyattrs_num_non_grouped_logs";
pub const GROUPBYATTRS_NUM_GROUPED_METRICS: &str =
    "otelcol_processor_groupbyattrs_num_grouped_metrics";
pub const GROUPBYATTRS_NUM_NON_GROUPED_METRICS: &str =
    "otelcol_processor_groupbyattrs_num_non_grouped_metrics";
pub const GROUPBYATTRS_SPAN_GROUPS: &str = "otelcol_processor_groupbyattrs_span_groups";
pub const GROUPBYATTRS_LOG_GROUPS: &str = "otelcol_processor_groupbyattrs_log_groups";
pub const GROUPBYATTRS_METRIC_GROUPS: &str = "otelcol_processor_groupbyattrs_metric_groups";
/// The `tail_sampling` processor's decisions: per policy (labels `policy`, `sampled`,
/// `decision`) and per trace (`sampled`, `decision`).
pub const TAIL_SAMPLING_COUNT_TRACES_SAMPLED: &str =
    "otelcol_processor_tail_sampling_count_traces_sampled";
pub const TAIL_SAMPLING_GLOBAL_COUNT_TRACES_SAMPLED: &str =
    "otelcol_processor_tail_sampling_global_count_traces_sampled";
/// Spans of traces already decided, forwarded or dropped on arrival by a decision cache hit
/// (label `sampled`).
pub const TAIL_SAMPLING_EARLY_RELEASES_FROM_CACHE_DECISION: &str =
    "otelcol_processor_tail_sampling_early_releases_from_cache_decision";
pub const TAIL_SAMPLING_NEW_TRACE_ID_RECEIVED: &str =
    "otelcol_processor_tail_sampling_new_trace_id_received";
pub const TAIL_SAMPLING_POLICY_EVALUATION_ERROR: &str =
    "otelcol_processor_tail_sampling_sampling_policy_evaluation_error";
/// Per policy (label `policy`): evaluations, and the microseconds they took.
pub const TAIL_SAMPLING_POLICY_EXECUTION_COUNT: &str =
    "otelcol_processor_tail_sampling_sampling_policy_execution_count";
pub const TAIL_SAMPLING_POLICY_EXECUTION_TIME_SUM: &str =
    "otelcol_processor_tail_sampling_sampling_policy_execution_time_sum";
/// Traces evicted for room before they were due.
pub const TAIL_SAMPLING_TRACE_DROPPED_TOO_EARLY: &str =
    "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early";
pub const TAIL_SAMPLING_TRACES_ON_MEMORY: &str =
    "otelcol_processor_tail_sampling_sampling_traces_on_memory";
pub const TAIL_SAMPLING_TRACES_DROPPED_TOO_LARGE: &str =
    "otelcol_processor_tail_sampling_traces_dropped_too_large";
/// Items the memory limiter let through and refused (label `processor`).
pub const PROCESSOR_MEMORY_LIMITER_ACCEPTED_SPANS: &str =
    "otelcol_processor_memory_limiter_accepted_spans";
pub const PROCESSOR_MEMORY_LIMITER_ACCEPTED_METRIC_POINTS: &str =
    "otelcol_processor_memory_limiter_accepted_metric_points";
pub const PROCESSOR_MEMORY_LIMITER_ACCEPTED_LOG_RECORDS: &str =
    "otelcol_processor_memory_limiter_accepted_log_records";
pub const PROCESSOR_MEMORY_LIMITER_REFUSED_SPANS: &str =
    "otelcol_processor_memory_limiter_refused_spans";
pub const PROCESSOR_MEMORY_LIMITER_REFUSED_METRIC_POINTS: &str =
    "otelcol_processor_memory_limiter_refused_metric_points";
pub const PROCESSOR_MEMORY_LIMITER_REFUSED_LOG_RECORDS: &str =
    "otelcol_processor_memory_limiter_refused_log_records";
/// Series a spanmetrics connector holds (gauge, label `connector`).
pub const SPANMETRICS_ACTIVE_SERIES: &str = "redline_spanmetrics_active_series";
/// Spans folded into the overflow series by the cardinality limit (counter).
pub const SPANMETRICS_OVERFLOW_SPANS: &str = "redline_spanmetrics_overflow_spans";

/// The names, descriptions and units of one signal's counters. The descriptions are otelcol's
/// (receiverhelper's and exporterhelper's `metadata.yaml`), stability tag included, so both
/// serve the same HELP: `log record` in the singular where otelcol writes it so.
struct SignalNames {
    unit: &'static str,
    accepted: (&'static str, &'static str),
    refused: (&'static str, &'static str),
    sent: (&'static str, &'static str),
    send_failed: (&'static str, &'static str),
    enqueue_failed: (&'static str, &'static str),
}

fn names(signal: Signal) -> SignalNames {
    match signal {
        Signal::Traces => SignalNames {
            unit: "{spans}",
            accepted: (
                RECEIVER_ACCEPTED_SPANS,
                "Number of spans successfully pushed into the pipeline. [Alpha]",
            ),
            refused: (
                RECEIVER_REFUSED_SPANS,
                "Number of spans that could not be pushed into the pipeline. [Alpha]",
            ),
            sent: (
                EXPORTER_SENT_SPANS,
                "Number of spans successfully sent to destination. [Alpha]",
            ),
            send_failed: (
                EXPORTER_SEND_FAILED_SPANS,
                "Number of spans in failed attempts to send to destination. At detailed \
                 telemetry level, includes attributes: error.type (semantic convention), \
                 error.permanent. [Alpha]",
            ),
            enqueue_failed: (
                EXPORTER_ENQUEUE_FAILED_SPANS,
                "Number of spans failed to be added to the sending queue. [Alpha]",
            ),
        },
        Signal::Metrics => SignalNames {
            unit: "{datapoints}",
            accepted: (
                RECEIVER_ACCEPTED_METRIC_POINTS,
                "Number of metric points successfully pushed into the pipeline. [Alpha]",
            ),
            refused: (
                RECEIVER_REFUSED_METRIC_POINTS,
                "Number of metric points that could not be pushed into the pipeline. [Alpha]",
            ),
            sent: (
                EXPORTER_SENT_METRIC_POINTS,
                "Number of metric points successfully sent to destination. [Alpha]",
            ),
            send_failed: (
                EXPORTER_SEND_FAILED_METRIC_POINTS,
                "Number of metric points in failed attempts to send to destination. At \
                 detailed telemetry level, includes attributes: error.type (semantic \
                 convention), error.permanent. [Alpha]",
            ),
            enqueue_failed: (
                EXPORTER_ENQUEUE_FAILED_METRIC_POINTS,
                "Number of metric points failed to be added to the sending queue. [Alpha]",
            ),
        },
        Signal::Logs => SignalNames {
            unit: "{records}",
            accepted: (
                RECEIVER_ACCEPTED_LOG_RECORDS,
                "Number of log records successfully pushed into the pipeline. [Alpha]",
            ),
            refused: (
                RECEIVER_REFUSED_LOG_RECORDS,
                "Number of log records that could not be pushed into the pipeline. [Alpha]",
            ),
            sent: (
                EXPORTER_SENT_LOG_RECORDS,
                "Number of log record successfully sent to destination. [Alpha]",
            ),
            send_failed: (
                EXPORTER_SEND_FAILED_LOG_RECORDS,
                "Number of log records in failed attempts to send to destination. At \
                 detailed telemetry level, includes attributes: error.type (semantic \
                 convention), error.permanent. [Alpha]",
            ),
            enqueue_failed: (
                EXPORTER_ENQUEUE_FAILED_LOG_RECORDS,
                "Number of log records failed to be added to the sending queue. [Alpha]",
            ),
        },
    }
}

/// Counters of one receiver for one signal on one transport (`grpc`, `http`), in the
/// signal's unit (spans, metric points, log records).
#[derive(Default, Debug)]
pub struct ReceiverCounters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
}

/// Counters of one processor instance (one per pipeline) for one signal, in items.
#[derive(Default, Debug)]
pub struct ProcessorCounters {
    pub incoming: AtomicU64,
    pub outgoing: AtomicU64,
}

/// Counters of one exporter for one signal.
#[derive(Default, Debug)]
pub struct ExporterCounters {
    pub sent: AtomicU64,
    pub send_failed: AtomicU64,
    pub enqueue_failed: AtomicU64,
    /// Batches waiting in the sending queue.
    pub queue_size: AtomicI64,
    pub queue_capacity: AtomicI64,
    /// Requests taken off the queue and not yet delivered or given up (retry waits included).
    pub in_flight: AtomicI64,
    /// Where the exporter sends, as labels of its sent and failed counters (otelcol's
    /// `server_address`, `server_port`, `url_path`), in label-name order; set once at build.
    endpoint: std::sync::OnceLock<Vec<(&'static str, String)>>,
}

impl ExporterCounters {
    /// Sets the endpoint labels; later calls change nothing.
    pub fn set_endpoint_labels(&self, labels: Vec<(&'static str, String)>) {
        let _ = self.endpoint.set(labels);
    }

    fn endpoint_labels(&self) -> &[(&'static str, String)] {
        self.endpoint.get().map_or(&[], Vec::as_slice)
    }
}

/// Names, description and unit of a counter a component defines itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterDesc {
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
}

/// A counter family a component defines itself, with labels of its own (otelcol's
/// component-specific metrics). Every component asking for the same name shares it, so the
/// family is served once; a series appears once it has counted something, as an OTel SDK
/// counter's does after its first add.
#[derive(Clone)]
pub struct CounterFamily {
    inner: Arc<FamilyState>,
}

type LabelSet = Vec<(&'static str, String)>;

struct FamilyState {
    desc: CounterDesc,
    series: Mutex<BTreeMap<LabelSet, Series>>,
}

#[derive(Default)]
struct Series {
    count: Arc<AtomicU64>,
    /// Served at 0 too, not only once it has counted something.
    at_zero: bool,
}

impl CounterFamily {
    /// The counter of one label set; the same counter for the same labels.
    pub fn series(&self, labels: &[(&'static str, &str)]) -> Arc<AtomicU64> {
        let key: LabelSet = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.inner
            .series
            .lock()
            .entry(key)
            .or_default()
            .count
            .clone()
    }

    /// [`series`](Self::series), served from now on even while it is 0: for counters
    /// otelcol adds to on every batch (the filter processor's drops), which it serves at 0
    /// once it has seen traffic, so a rule on them sees the first increase.
    pub fn series_served_at_zero(&self, labels: &[(&'static str, &str)]) -> Arc<AtomicU64> {
        let key: LabelSet = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut series = self.inner.series.lock();
        let s = series.entry(key).or_default();
        s.at_zero = true;
        s.count.clone()
    }
}

type ReceiverKey = (Signal, String, &'static str);

/// Components' own families of one kind, by name.
type Families = Mutex<BTreeMap<&'static str, Arc<FamilyState>>>;

/// The family `desc` names in `families`; the first caller's description and unit stand.
fn family_in(families: &Families, desc: CounterDesc) -> CounterFamily {
    let inner = families
        .lock()
        .entry(desc.name)
        .or_insert_with(|| {
            Arc::new(FamilyState {
                desc,
                series: Mutex::new(BTreeMap::new()),
            })
        })
        .clone();
    CounterFamily { inner }
}

impl FamilyState {
    /// The series to serve now: those that counted something or are served at 0.
    fn served(&self) -> Vec<(LabelSet, u64)> {
        self.series
            .lock()
            .iter()
            .filter_map(|(labels, s)| {
                let value = s.count.load(Ordering::Relaxed);
                (value > 0 || s.at_zero).then(|| (labels.clone(), value))
            })
            .collect()
    }
}

/// Registry of the process's own counters.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Arc<Registry>,
}

#[derive(Default)]
struct Registry {
    /// By (signal, receiver id, transport).
    receivers: Mutex<BTreeMap<ReceiverKey, Arc<ReceiverCounters>>>,
    exporters: Mutex<BTreeMap<(Signal, String), Arc<ExporterCounters>>>,
    processors: Mutex<BTreeMap<(Signal, String), Arc<ProcessorCounters>>>,
    /// Components' own families (e.g. spanmetrics series counts), read at collect time.
    sources: Mutex<Vec<Arc<dyn MetricsSource>>>,
    /// Components' own counters, by name.
    families: Families,
    /// Components' own sums that otelcol declares non-monotonic (served as gauges), by name.
    up_down_families: Families,
    /// Components' own histograms, by name.
    histograms: Mutex<BTreeMap<&'static str, Arc<histogram::HistogramState>>>,
    start_time_unix_nano: AtomicU64,
}

impl Telemetry {
    pub fn new() -> Self {
        let t = Self::default();
        t.inner
            .start_time_unix_nano
            .store(now_unix_nano(), Ordering::Relaxed);
        t
    }

    /// Counters for `receiver` on `transport` for `signal`; the same counters for the same
    /// triple.
    pub fn receiver(
        &self,
        receiver: &str,
        transport: &'static str,
        signal: Signal,
    ) -> Arc<ReceiverCounters> {
        self.inner
            .receivers
            .lock()
            .entry((signal, receiver.to_owned(), transport))
            .or_default()
            .clone()
    }

    /// Adds a component's own metrics to what the telemetry endpoint serves.
    pub fn register_source(&self, source: Arc<dyn MetricsSource>) {
        self.inner.sources.lock().push(source);
    }

    /// The counter family `desc` names; the first caller's description and unit stand.
    pub fn counter_family(&self, desc: CounterDesc) -> CounterFamily {
        family_in(&self.inner.families, desc)
    }

    /// The family of sums `desc` names that otelcol declares non-monotonic (an
    /// UpDownCounter), served as gauges; shared by every component asking for the name.
    pub fn up_down_family(&self, desc: CounterDesc) -> CounterFamily {
        family_in(&self.inner.up_down_families, desc)
    }

    /// The histogram `desc` names, with `bounds`; the first caller's description, unit and
    /// bounds stand.
    pub fn histogram_family(&self, desc: CounterDesc, bounds: &'static [f64]) -> HistogramFamily {
        let inner = self
            .inner
            .histograms
            .lock()
            .entry(desc.name)
            .or_insert_with(|| Arc::new(histogram::HistogramState::new(desc, bounds)))
            .clone();
        HistogramFamily { inner }
    }

    pub fn start_time_unix_nano(&self) -> u64 {
        self.inner.start_time_unix_nano.load(Ordering::Relaxed)
    }

    /// Counters for `processor` on `signal`; processors of one id in several pipelines of a
    /// signal share them, as otelcol's attributes (processor, otel.signal) do.
    pub fn processor(&self, processor: &str, signal: Signal) -> Arc<ProcessorCounters> {
        self.inner
            .processors
            .lock()
            .entry((signal, processor.to_owned()))
            .or_default()
            .clone()
    }

    pub fn exporter(&self, exporter: &str, signal: Signal) -> Arc<ExporterCounters> {
        self.inner
            .exporters
            .lock()
            .entry((signal, exporter.to_owned()))
            .or_default()
            .clone()
    }
}

pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn counter_family(sink: &mut dyn MetricsSink, name: &str, description: &str, unit: &str) {
    sink.family(&FamilyDesc {
        name,
        description,
        unit,
        kind: MetricKind::Counter,
    });
}

impl MetricsSource for Telemetry {
    fn collect(&self, sink: &mut dyn MetricsSink) {
        let start = self.inner.start_time_unix_nano.load(Ordering::Relaxed);
        let receivers: Vec<_> = self
            .inner
            .receivers
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let exporters: Vec<_> = self
            .inner
            .exporters
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Families of a signal appear once a component of that signal exists, as in otelcol.
        let signals_of = |list: &[Signal]| {
            let mut seen: Vec<Signal> = list.to_vec();
            seen.dedup();
            seen
        };
        let receiver_signals: Vec<Signal> = receivers.iter().map(|((s, _, _), _)| *s).collect();
        let exporter_signals: Vec<Signal> = exporters.iter().map(|((s, _), _)| *s).collect();

        type RecvField = fn(&ReceiverCounters) -> &AtomicU64;
        for signal in signals_of(&receiver_signals) {
            let n = names(signal);
            let recv: [(&str, &str, RecvField); 2] = [
                (n.accepted.0, n.accepted.1, |c| &c.accepted),
                (n.refused.0, n.refused.1, |c| &c.refused),
            ];
            for (name, help, field) in recv {
                counter_family(sink, name, help, n.unit);
                for ((_, id, transport), c) in
                    receivers.iter().filter(|((s, _, _), _)| *s == signal)
                {
                    let labels = [("receiver", id.as_str()), ("transport", *transport)];
                    sink.counter(&labels, field(c).load(Ordering::Relaxed), start, None);
                }
            }
        }

        type ExpField = fn(&ExporterCounters) -> &AtomicU64;
        for signal in signals_of(&exporter_signals) {
            let n = names(signal);
            // The last field: whether the series carry the exporter's endpoint (otelcol's
            // queue counts enqueue failures without it).
            let exp: [(&str, &str, ExpField, bool); 3] = [
                (n.sent.0, n.sent.1, |c| &c.sent, true),
                (n.send_failed.0, n.send_failed.1, |c| &c.send_failed, true),
                (
                    n.enqueue_failed.0,
                    n.enqueue_failed.1,
                    |c| &c.enqueue_failed,
                    false,
                ),
            ];
            for (name, help, field, with_endpoint) in exp {
                counter_family(sink, name, help, n.unit);
                for ((_, id), c) in exporters.iter().filter(|((s, _), _)| *s == signal) {
                    let mut labels = vec![("exporter", id.as_str())];
                    if with_endpoint {
                        labels.extend(c.endpoint_labels().iter().map(|(k, v)| (*k, v.as_str())));
                    }
                    sink.counter(&labels, field(c).load(Ordering::Relaxed), start, None);
                }
            }
        }

        let processors: Vec<_> = self
            .inner
            .processors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Descriptions here and below are otelcol's, stability tag included.
        if !processors.is_empty() {
            type ProcField = fn(&ProcessorCounters) -> &AtomicU64;
            let fields: [(&str, &str, ProcField); 2] = [
                (
                    PROCESSOR_INCOMING_ITEMS,
                    "Number of items passed to the processor. [Alpha]",
                    |c| &c.incoming,
                ),
                (
                    PROCESSOR_OUTGOING_ITEMS,
                    "Number of items emitted from the processor. [Alpha]",
                    |c| &c.outgoing,
                ),
            ];
            for (name, help, field) in fields {
                counter_family(sink, name, help, "{items}");
                for ((signal, id), c) in &processors {
                    let labels = [("otel_signal", signal.as_str()), ("processor", id.as_str())];
                    sink.counter(&labels, field(c).load(Ordering::Relaxed), start, None);
                }
            }
        }

        // Only exporters with a sending queue have these, as in otelcol.
        let queued: Vec<_> = exporters
            .iter()
            .filter(|(_, c)| c.queue_capacity.load(Ordering::Relaxed) > 0)
            .collect();
        type GaugeField = fn(&ExporterCounters) -> &AtomicI64;
        // Units are annotations, not `1`: otelcol's translation turns unit `1` on a gauge
        // into a `_ratio` suffix, and these are counts.
        let gauges: [(&str, &str, &str, GaugeField); 3] = [
            (
                EXPORTER_QUEUE_SIZE,
                "Current size of the retry queue (in batches). [Alpha]",
                "{batches}",
                |c| &c.queue_size,
            ),
            (
                EXPORTER_QUEUE_CAPACITY,
                "Fixed capacity of the retry queue (in batches). [Alpha]",
                "{batches}",
                |c| &c.queue_capacity,
            ),
            (
                EXPORTER_IN_FLIGHT_REQUESTS,
                "Number of export requests currently in-flight (including retry backoff). [Development]",
                "{requests}",
                |c| &c.in_flight,
            ),
        ];
        for (name, help, unit, field) in gauges.into_iter().filter(|_| !queued.is_empty()) {
            sink.family(&FamilyDesc {
                name,
                description: help,
                unit,
                kind: MetricKind::Gauge,
            });
            for ((signal, id), c) in &queued {
                let labels = [("data_type", signal.as_str()), ("exporter", id.as_str())];
                sink.gauge(&labels, field(c).load(Ordering::Relaxed) as f64);
            }
        }

        let families: Vec<_> = self.inner.families.lock().values().cloned().collect();
        for family in families {
            let counted = family.served();
            if counted.is_empty() {
                continue;
            }
            counter_family(
                sink,
                family.desc.name,
                family.desc.description,
                family.desc.unit,
            );
            for (labels, value) in &counted {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                sink.counter(&labels, *value, start, None);
            }
        }

        let up_down: Vec<_> = self
            .inner
            .up_down_families
            .lock()
            .values()
            .cloned()
            .collect();
        for family in up_down {
            let values = family.served();
            if values.is_empty() {
                continue;
            }
            sink.family(&FamilyDesc {
                name: family.desc.name,
                description: family.desc.description,
                unit: family.desc.unit,
                kind: MetricKind::Gauge,
            });
            for (labels, value) in &values {
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                sink.gauge(&labels, *value as f64);
            }
        }

        let histograms: Vec<_> = self.inner.histograms.lock().values().cloned().collect();
        for histogram in histograms {
            histogram.collect(sink, start);
        }

        let sources: Vec<_> = self.inner.sources.lock().clone();
        for source in sources {
            source.collect(sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ExponentialHistogramPoint, HistogramPoint, NumberPoint, SummaryPoint};

    /// Families and counter points, as text lines.
    #[derive(Default)]
    struct Lines(Vec<String>);

    impl MetricsSink for Lines {
        fn family(&mut self, desc: &FamilyDesc<'_>) {
            self.0.push(format!("# {} {}", desc.name, desc.unit));
        }
        fn counter(&mut self, labels: &[(&str, &str)], value: u64, _: u64, _: Option<&Exemplar>) {
            self.0.push(format!("{labels:?} {value}"));
        }
        fn gauge(&mut self, _: &[(&str, &str)], _: f64) {}
        fn histogram(&mut self, _: &[(&str, &str)], p: &HistogramPoint<'_>) {
            self.0.push(format!(
                "{:?} {:?} sum {} count {}",
                p.bounds, p.bucket_counts, p.sum, p.count
            ));
        }
        fn number(&mut self, _: &[(&str, &str)], _: &NumberPoint<'_>) {}
        fn summary(&mut self, _: &[(&str, &str)], _: &SummaryPoint<'_>) {}
        fn exponential_histogram(&mut self, _: &[(&str, &str)], _: &ExponentialHistogramPoint<'_>) {
        }
    }

    use crate::metrics::Exemplar;

    #[test]
    fn a_counter_family_is_shared_by_name_and_shows_counted_series_only() {
        let telemetry = Telemetry::new();
        let desc = CounterDesc {
            name: "otelcol_component_things",
            description: "Things.",
            unit: "1",
        };
        let a = telemetry.counter_family(desc);
        let b = telemetry.counter_family(desc);
        a.series(&[("kind", "x"), ("ok", "true")])
            .fetch_add(2, Ordering::Relaxed);
        b.series(&[("kind", "x"), ("ok", "true")])
            .fetch_add(1, Ordering::Relaxed);
        let _never_counted = b.series(&[("kind", "y"), ("ok", "false")]);
        let quiet = telemetry.counter_family(CounterDesc {
            name: "otelcol_component_quiet",
            ..desc
        });
        let _zero = quiet.series(&[("kind", "z")]);

        let mut lines = Lines::default();
        telemetry.collect(&mut lines);
        // The exporter queue gauges are always served; only this test's families matter here.
        lines.0.retain(|l| !l.starts_with("# otelcol_exporter_"));
        assert_eq!(
            lines.0,
            [
                "# otelcol_component_things 1",
                r#"[("kind", "x"), ("ok", "true")] 3"#
            ]
        );

        // A series asked to be served at zero is, from then on.
        let _served = quiet.series_served_at_zero(&[("kind", "w")]);
        let mut lines = Lines::default();
        telemetry.collect(&mut lines);
        lines
            .0
            .retain(|l| l.contains("quiet") || l.contains("\"w\""));
        assert_eq!(
            lines.0,
            ["# otelcol_component_quiet 1", r#"[("kind", "w")] 0"#]
        );
    }

    #[test]
    fn a_histogram_family_is_shared_by_name_and_served_once_recorded() {
        let telemetry = Telemetry::new();
        let desc = CounterDesc {
            name: "otelcol_component_groups",
            description: "Groups.",
            unit: "1",
        };
        let a = telemetry.histogram_family(desc, &[0.0, 5.0]);
        let mut lines = Lines::default();
        telemetry.collect(&mut lines);
        assert!(
            !lines.0.iter().any(|l| l.contains("groups")),
            "{:?}",
            lines.0
        );
        // The bound is the bucket's upper end, inclusive.
        for value in [0.0, 1.0, 5.0, 6.0] {
            a.record(value);
        }
        telemetry.histogram_family(desc, &[]).record(2.0);
        let mut lines = Lines::default();
        telemetry.collect(&mut lines);
        lines.0.retain(|l| !l.starts_with("# otelcol_exporter_"));
        assert_eq!(
            lines.0,
            [
                "# otelcol_component_groups 1",
                "[0.0, 5.0] [1, 3, 1] sum 14 count 5"
            ]
        );
    }

    #[test]
    fn processor_counters_are_shared_per_id_and_signal() {
        let t = Telemetry::new();
        let a = t.processor("filter/x", Signal::Traces);
        let b = t.processor("filter/x", Signal::Traces);
        a.incoming.fetch_add(10, Ordering::Relaxed);
        b.incoming.fetch_add(5, Ordering::Relaxed);
        b.outgoing.fetch_add(12, Ordering::Relaxed);
        let mut lines = Lines::default();
        t.collect(&mut lines);
        lines.0.retain(|l| !l.starts_with("# otelcol_exporter_"));
        assert_eq!(
            lines.0,
            [
                "# otelcol_processor_incoming_items {items}",
                r#"[("otel_signal", "traces"), ("processor", "filter/x")] 15"#,
                "# otelcol_processor_outgoing_items {items}",
                r#"[("otel_signal", "traces"), ("processor", "filter/x")] 12"#,
            ]
        );
    }
}
