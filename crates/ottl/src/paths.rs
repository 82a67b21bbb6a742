//! Contexts, their paths and enum symbols, and how a path's first segment picks the context
//! it reads (pkg/ottl `contexts/*`, `ctxcommon.PathExpressionParser`).

use serde::Deserialize;

/// The telemetry item a statement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextKind {
    Resource,
    Scope,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    Log,
}

/// The signal a group of statements is for (decides which contexts inference may pick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl ContextKind {
    pub fn name(self) -> &'static str {
        match self {
            ContextKind::Resource => "resource",
            ContextKind::Scope => "scope",
            ContextKind::Span => "span",
            ContextKind::SpanEvent => "spanevent",
            ContextKind::Metric => "metric",
            ContextKind::DataPoint => "datapoint",
            ContextKind::Log => "log",
        }
    }

    /// The context a configuration names (the transform and filter processors' `context`),
    /// in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "resource" => ContextKind::Resource,
            "scope" => ContextKind::Scope,
            "span" => ContextKind::Span,
            "spanevent" => ContextKind::SpanEvent,
            "metric" => ContextKind::Metric,
            "datapoint" => ContextKind::DataPoint,
            "log" => ContextKind::Log,
            _ => return None,
        })
    }

    /// The context a path prefix names (`instrumentation_scope` is scope's legacy name).
    pub fn from_prefix(name: &str) -> Option<Self> {
        Some(match name {
            "resource" => ContextKind::Resource,
            "scope" | "instrumentation_scope" => ContextKind::Scope,
            "span" => ContextKind::Span,
            "spanevent" => ContextKind::SpanEvent,
            "metric" => ContextKind::Metric,
            "datapoint" => ContextKind::DataPoint,
            "log" => ContextKind::Log,
            _ => return None,
        })
    }

    /// Path prefixes a statement of this context may use (itself and the ones above it).
    pub fn path_prefixes(self) -> &'static [&'static str] {
        const SCOPE: &[&str] = &["resource", "scope", "instrumentation_scope"];
        match self {
            ContextKind::Resource => &["resource"],
            ContextKind::Scope => SCOPE,
            ContextKind::Span => &["resource", "scope", "instrumentation_scope", "span"],
            ContextKind::SpanEvent => &[
                "resource",
                "scope",
                "instrumentation_scope",
                "span",
                "spanevent",
            ],
            ContextKind::Metric => &["resource", "scope", "instrumentation_scope", "metric"],
            ContextKind::DataPoint => &[
                "resource",
                "scope",
                "instrumentation_scope",
                "metric",
                "datapoint",
            ],
            ContextKind::Log => &["resource", "scope", "instrumentation_scope", "log"],
        }
    }

    /// Contexts of a signal, lowest first (inference priority: otelcol's
    /// `defaultContextInferPriority` restricted to the signal).
    pub fn of_signal(signal: Signal) -> &'static [ContextKind] {
        match signal {
            Signal::Traces => &[
                ContextKind::SpanEvent,
                ContextKind::Span,
                ContextKind::Scope,
                ContextKind::Resource,
            ],
            Signal::Metrics => &[
                ContextKind::DataPoint,
                ContextKind::Metric,
                ContextKind::Scope,
                ContextKind::Resource,
            ],
            Signal::Logs => &[ContextKind::Log, ContextKind::Scope, ContextKind::Resource],
        }
    }

    /// Inference priority (lower wins), as otelcol's default order.
    pub fn priority(self) -> usize {
        match self {
            ContextKind::Log => 0,
            ContextKind::DataPoint => 2,
            ContextKind::Metric => 3,
            ContextKind::SpanEvent => 4,
            ContextKind::Span => 5,
            ContextKind::Scope => 7,
            ContextKind::Resource => 9,
        }
    }

    /// The value of an enum symbol in this context.
    pub fn enum_value(self, symbol: &str) -> Option<i64> {
        match self {
            ContextKind::Span | ContextKind::SpanEvent => span_enum(symbol),
            ContextKind::Log => log_enum(symbol),
            ContextKind::Metric => metric_enum(symbol),
            ContextKind::DataPoint => metric_enum(symbol).or(match symbol {
                "FLAG_NONE" => Some(0),
                "FLAG_NO_RECORDED_VALUE" => Some(1),
                _ => None,
            }),
            ContextKind::Resource | ContextKind::Scope => None,
        }
    }
}

fn span_enum(symbol: &str) -> Option<i64> {
    Some(match symbol {
        "SPAN_KIND_UNSPECIFIED" => 0,
        "SPAN_KIND_INTERNAL" => 1,
        "SPAN_KIND_SERVER" => 2,
        "SPAN_KIND_CLIENT" => 3,
        "SPAN_KIND_PRODUCER" => 4,
        "SPAN_KIND_CONSUMER" => 5,
        "STATUS_CODE_UNSET" => 0,
        "STATUS_CODE_OK" => 1,
        "STATUS_CODE_ERROR" => 2,
        _ => return None,
    })
}

fn log_enum(symbol: &str) -> Option<i64> {
    const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rest = symbol.strip_prefix("SEVERITY_NUMBER_")?;
    if rest == "UNSPECIFIED" {
        return Some(0);
    }
    for (i, level) in (0i64..).zip(LEVELS) {
        if let Some(suffix) = rest.strip_prefix(level) {
            let step = match suffix {
                "" => 1,
                "2" => 2,
                "3" => 3,
                "4" => 4,
                _ => return None,
            };
            return Some(i * 4 + step);
        }
    }
    None
}

fn metric_enum(symbol: &str) -> Option<i64> {
    Some(match symbol {
        "AGGREGATION_TEMPORALITY_UNSPECIFIED" => 0,
        "AGGREGATION_TEMPORALITY_DELTA" => 1,
        "AGGREGATION_TEMPORALITY_CUMULATIVE" => 2,
        "METRIC_DATA_TYPE_NONE" => 0,
        "METRIC_DATA_TYPE_GAUGE" => 1,
        "METRIC_DATA_TYPE_SUM" => 2,
        "METRIC_DATA_TYPE_HISTOGRAM" => 3,
        "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM" => 4,
        "METRIC_DATA_TYPE_SUMMARY" => 5,
        _ => return None,
    })
}

/// A field of some context, resolved at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Resource(ResourceField),
    Scope(ScopeField),
    Span(SpanField),
    SpanEvent(EventField),
    Metric(MetricField),
    DataPoint(DataPointField),
    Log(LogField),
    /// The per-item scratch map `cache`.
    Cache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceField {
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeField {
    Name,
    Version,
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanField {
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    TraceStateKey,
    Name,
    Kind,
    KindString,
    KindDeprecatedString,
    StartTimeUnixNano,
    EndTimeUnixNano,
    Attributes,
    DroppedAttributesCount,
    Events,
    DroppedEventsCount,
    Links,
    DroppedLinksCount,
    Status,
    StatusCode,
    StatusMessage,
    Flags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    TimeUnixNano,
    Name,
    Attributes,
    DroppedAttributesCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricField {
    Name,
    Description,
    Unit,
    Type,
    AggregationTemporality,
    IsMonotonic,
    DataPoints,
    Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataPointField {
    Attributes,
    StartTimeUnixNano,
    TimeUnixNano,
    ValueDouble,
    ValueInt,
    Flags,
    Count,
    Sum,
    BucketCounts,
    ExplicitBounds,
    Scale,
    ZeroCount,
    /// The whole `positive` buckets of an exponential histogram point.
    Positive,
    PositiveOffset,
    PositiveBucketCounts,
    Negative,
    NegativeOffset,
    NegativeBucketCounts,
    QuantileValues,
    Exemplars,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    TimeUnixNano,
    ObservedTimeUnixNano,
    SeverityNumber,
    SeverityText,
    Body,
    BodyString,
    Attributes,
    DroppedAttributesCount,
    Flags,
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    EventName,
}

/// How indexes after a field are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexing {
    /// No `[...]` allowed.
    None,
    /// Any number of keys into the (map or any-value) field.
    Nested,
    /// Exactly one string key (`trace_state["k"]`).
    ExactlyOne,
}

impl Field {
    pub fn indexing(self) -> Indexing {
        match self {
            Field::Resource(ResourceField::Attributes)
            | Field::Scope(ScopeField::Attributes)
            | Field::Span(SpanField::Attributes)
            | Field::SpanEvent(EventField::Attributes)
            | Field::DataPoint(DataPointField::Attributes)
            | Field::Metric(MetricField::Metadata)
            | Field::Log(LogField::Attributes)
            | Field::Log(LogField::Body)
            | Field::Cache => Indexing::Nested,
            Field::Span(SpanField::TraceStateKey) => Indexing::ExactlyOne,
            _ => Indexing::None,
        }
    }
}

/// Paths of one context, as `segment[.segment]` names, with the field each resolves to.
/// Keys (`[...]`) are checked separately with [`Field::indexing`].
pub fn fields_of(context: ContextKind) -> &'static [(&'static str, Field)] {
    use DataPointField as D;
    use EventField as E;
    use LogField as L;
    use MetricField as M;
    use ResourceField as R;
    use ScopeField as S;
    use SpanField as P;
    match context {
        ContextKind::Resource => &[
            ("attributes", Field::Resource(R::Attributes)),
            (
                "dropped_attributes_count",
                Field::Resource(R::DroppedAttributesCount),
            ),
            ("schema_url", Field::Resource(R::SchemaUrl)),
        ],
        ContextKind::Scope => &[
            ("name", Field::Scope(S::Name)),
            ("version", Field::Scope(S::Version)),
            ("attributes", Field::Scope(S::Attributes)),
            (
                "dropped_attributes_count",
                Field::Scope(S::DroppedAttributesCount),
            ),
            ("schema_url", Field::Scope(S::SchemaUrl)),
        ],
        ContextKind::Span => &[
            ("trace_id", Field::Span(P::TraceId)),
            ("trace_id.string", Field::Span(P::TraceIdString)),
            ("span_id", Field::Span(P::SpanId)),
            ("span_id.string", Field::Span(P::SpanIdString)),
            ("parent_span_id", Field::Span(P::ParentSpanId)),
            ("parent_span_id.string", Field::Span(P::ParentSpanIdString)),
            ("trace_state", Field::Span(P::TraceState)),
            ("name", Field::Span(P::Name)),
            ("kind", Field::Span(P::Kind)),
            ("kind.string", Field::Span(P::KindString)),
            (
                "kind.deprecated_string",
                Field::Span(P::KindDeprecatedString),
            ),
            ("start_time_unix_nano", Field::Span(P::StartTimeUnixNano)),
            ("end_time_unix_nano", Field::Span(P::EndTimeUnixNano)),
            ("attributes", Field::Span(P::Attributes)),
            (
                "dropped_attributes_count",
                Field::Span(P::DroppedAttributesCount),
            ),
            ("events", Field::Span(P::Events)),
            ("dropped_events_count", Field::Span(P::DroppedEventsCount)),
            ("links", Field::Span(P::Links)),
            ("dropped_links_count", Field::Span(P::DroppedLinksCount)),
            ("status", Field::Span(P::Status)),
            ("status.code", Field::Span(P::StatusCode)),
            ("status.message", Field::Span(P::StatusMessage)),
            ("flags", Field::Span(P::Flags)),
        ],
        ContextKind::SpanEvent => &[
            ("time_unix_nano", Field::SpanEvent(E::TimeUnixNano)),
            ("name", Field::SpanEvent(E::Name)),
            ("attributes", Field::SpanEvent(E::Attributes)),
            (
                "dropped_attributes_count",
                Field::SpanEvent(E::DroppedAttributesCount),
            ),
        ],
        ContextKind::Metric => &[
            ("name", Field::Metric(M::Name)),
            ("description", Field::Metric(M::Description)),
            ("unit", Field::Metric(M::Unit)),
            ("type", Field::Metric(M::Type)),
            (
                "aggregation_temporality",
                Field::Metric(M::AggregationTemporality),
            ),
            ("is_monotonic", Field::Metric(M::IsMonotonic)),
            ("data_points", Field::Metric(M::DataPoints)),
            ("metadata", Field::Metric(M::Metadata)),
        ],
        ContextKind::DataPoint => &[
            ("attributes", Field::DataPoint(D::Attributes)),
            (
                "start_time_unix_nano",
                Field::DataPoint(D::StartTimeUnixNano),
            ),
            ("time_unix_nano", Field::DataPoint(D::TimeUnixNano)),
            ("value_double", Field::DataPoint(D::ValueDouble)),
            ("value_int", Field::DataPoint(D::ValueInt)),
            ("exemplars", Field::DataPoint(D::Exemplars)),
            ("flags", Field::DataPoint(D::Flags)),
            ("count", Field::DataPoint(D::Count)),
            ("sum", Field::DataPoint(D::Sum)),
            ("bucket_counts", Field::DataPoint(D::BucketCounts)),
            ("explicit_bounds", Field::DataPoint(D::ExplicitBounds)),
            ("scale", Field::DataPoint(D::Scale)),
            ("zero_count", Field::DataPoint(D::ZeroCount)),
            ("positive", Field::DataPoint(D::Positive)),
            ("negative", Field::DataPoint(D::Negative)),
            ("positive.offset", Field::DataPoint(D::PositiveOffset)),
            (
                "positive.bucket_counts",
                Field::DataPoint(D::PositiveBucketCounts),
            ),
            ("negative.offset", Field::DataPoint(D::NegativeOffset)),
            (
                "negative.bucket_counts",
                Field::DataPoint(D::NegativeBucketCounts),
            ),
            ("quantile_values", Field::DataPoint(D::QuantileValues)),
        ],
        ContextKind::Log => &[
            ("time_unix_nano", Field::Log(L::TimeUnixNano)),
            (
                "observed_time_unix_nano",
                Field::Log(L::ObservedTimeUnixNano),
            ),
            ("severity_number", Field::Log(L::SeverityNumber)),
            ("severity_text", Field::Log(L::SeverityText)),
            ("body", Field::Log(L::Body)),
            ("body.string", Field::Log(L::BodyString)),
            ("attributes", Field::Log(L::Attributes)),
            (
                "dropped_attributes_count",
                Field::Log(L::DroppedAttributesCount),
            ),
            ("flags", Field::Log(L::Flags)),
            ("trace_id", Field::Log(L::TraceId)),
            ("trace_id.string", Field::Log(L::TraceIdString)),
            ("span_id", Field::Log(L::SpanId)),
            ("span_id.string", Field::Log(L::SpanIdString)),
            ("event_name", Field::Log(L::EventName)),
        ],
    }
}

/// Looks up `first[.second]` among a context's fields; returns the field and how many
/// segments it used. `trace_state` with keys becomes [`SpanField::TraceStateKey`].
pub fn lookup(
    context: ContextKind,
    first: &str,
    second: Option<&str>,
    first_has_keys: bool,
) -> Option<(Field, usize)> {
    let table = fields_of(context);
    if let Some(second) = second {
        let dotted = format!("{first}.{second}");
        if let Some((_, f)) = table.iter().find(|(n, _)| *n == dotted) {
            return Some((*f, 2));
        }
    }
    let (_, field) = table.iter().find(|(n, _)| *n == first)?;
    if *field == Field::Span(SpanField::TraceState) && first_has_keys {
        return Some((Field::Span(SpanField::TraceStateKey), 1));
    }
    Some((*field, 1))
}

/// The valid paths of a context, for error messages.
pub fn describe_paths(context: ContextKind) -> String {
    let mut names: Vec<&str> = fields_of(context).iter().map(|(n, _)| *n).collect();
    names.push("cache");
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_symbols() {
        assert_eq!(
            ContextKind::Log.enum_value("SEVERITY_NUMBER_UNSPECIFIED"),
            Some(0)
        );
        assert_eq!(
            ContextKind::Log.enum_value("SEVERITY_NUMBER_TRACE"),
            Some(1)
        );
        assert_eq!(
            ContextKind::Log.enum_value("SEVERITY_NUMBER_DEBUG"),
            Some(5)
        );
        assert_eq!(
            ContextKind::Log.enum_value("SEVERITY_NUMBER_INFO4"),
            Some(12)
        );
        assert_eq!(
            ContextKind::Log.enum_value("SEVERITY_NUMBER_FATAL4"),
            Some(24)
        );
        assert_eq!(ContextKind::Log.enum_value("SEVERITY_NUMBER_FATAL5"), None);
        assert_eq!(ContextKind::Span.enum_value("SEVERITY_NUMBER_INFO"), None);
        assert_eq!(
            ContextKind::SpanEvent.enum_value("STATUS_CODE_ERROR"),
            Some(2)
        );
        assert_eq!(
            ContextKind::DataPoint.enum_value("FLAG_NO_RECORDED_VALUE"),
            Some(1)
        );
        assert_eq!(
            ContextKind::Metric.enum_value("METRIC_DATA_TYPE_SUMMARY"),
            Some(5)
        );
    }

    #[test]
    fn lookup_dotted_and_keyed() {
        assert_eq!(
            lookup(ContextKind::Span, "status", Some("code"), false),
            Some((Field::Span(SpanField::StatusCode), 2))
        );
        assert_eq!(
            lookup(ContextKind::Span, "status", None, false),
            Some((Field::Span(SpanField::Status), 1))
        );
        assert_eq!(
            lookup(ContextKind::Span, "trace_state", None, true),
            Some((Field::Span(SpanField::TraceStateKey), 1))
        );
        assert_eq!(lookup(ContextKind::Resource, "name", None, false), None);
        assert_eq!(
            lookup(ContextKind::DataPoint, "positive", Some("offset"), false),
            Some((Field::DataPoint(DataPointField::PositiveOffset), 2))
        );
        assert_eq!(
            lookup(ContextKind::DataPoint, "negative", None, false),
            Some((Field::DataPoint(DataPointField::Negative), 1))
        );
    }
}
