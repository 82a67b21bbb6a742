//! The legacy `include` / `exclude` sections (`spans`, `metrics.include`, `logs.exclude`, ...),
//! as otelcol's filter processor applies them while its OTTL-bridge feature gates stay off (the
//! default): an item is dropped when it fails `include` or matches `exclude`.
//!
//! They are used only where the signal has no OTTL conditions: otelcol refuses both for
//! metrics and logs and in the `traces` section, and with `trace_conditions` it ignores
//! `spans` (so does Redline, with a warning). Metrics have one more, separate test: a resource
//! that fails `include`'s `resource_attributes` or matches `exclude`'s is dropped with
//! everything in it, whatever its metrics' names.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use redline_filter_match::{AttributesFilter, Filter, Kind, MatchProperties, SeverityNumberMatch};
use redline_otlp_wire::enums::SEVERITY_NUMBER_NAMES;
use redline_ottl::{point_count, FilterOutcome};
use redline_pipeline::Signal;

use crate::config::{FilterConfig, LogMatchProperties, MetricMatchProperties};

/// A signal's legacy section, compiled.
pub(crate) enum Legacy {
    Spans(Filter),
    Metrics(Metrics),
    Logs(Filter),
}

pub(crate) struct Metrics {
    names: Filter,
    include_resource: Option<AttributesFilter>,
    exclude_resource: Option<AttributesFilter>,
}

/// A problem of a legacy section: the key path under the processor, and why.
pub(crate) type Problem = (String, String);

impl Legacy {
    /// `None` when `signal` has no legacy section, or `trace_conditions` take its place.
    pub(crate) fn build(parsed: &FilterConfig, signal: Signal) -> Result<Option<Self>, Problem> {
        conflict(parsed, signal)?;
        match signal {
            Signal::Traces => {
                let (include, exclude) = (&parsed.spans.include, &parsed.spans.exclude);
                if include.is_none() && exclude.is_none() || !parsed.trace_conditions.is_empty() {
                    return Ok(None);
                }
                let filter = Filter::new(include.as_ref(), exclude.as_ref(), Kind::Spans)
                    .map_err(|e| ("spans".to_owned(), e.to_string()))?;
                Ok(Some(Self::Spans(filter)))
            }
            Signal::Metrics => {
                let m = &parsed.metrics;
                if m.include.is_none() && m.exclude.is_none() {
                    return Ok(None);
                }
                let metrics = Metrics::build(m.include.as_ref(), m.exclude.as_ref())?;
                // Sections that test nothing: otelcol then leaves requests as they are, even
                // their empty scopes and resources.
                let tests_nothing = metrics.names.is_noop()
                    && metrics.include_resource.is_none()
                    && metrics.exclude_resource.is_none();
                Ok((!tests_nothing).then_some(Self::Metrics(metrics)))
            }
            Signal::Logs => {
                let l = &parsed.logs;
                if l.include.is_none() && l.exclude.is_none() {
                    return Ok(None);
                }
                let side = |p: &Option<LogMatchProperties>, key: &str| match p {
                    Some(p) if !p.is_empty() => p.match_properties(key).map(Some),
                    _ => Ok(None),
                };
                let include = side(&l.include, "logs.include")?;
                let exclude = side(&l.exclude, "logs.exclude")?;
                let filter = Filter::new(include.as_ref(), exclude.as_ref(), Kind::Logs)
                    .map_err(|e| ("logs".to_owned(), e.to_string()))?;
                Ok((!filter.is_noop()).then_some(Self::Logs(filter)))
            }
        }
    }

    /// Whether `trace_conditions` make otelcol ignore `spans` (worth a warning).
    pub(crate) fn ignored_spans(parsed: &FilterConfig) -> bool {
        let spans = &parsed.spans;
        (spans.include.is_some() || spans.exclude.is_some()) && !parsed.trace_conditions.is_empty()
    }
}

/// otelcol's refusals of a legacy section beside OTTL conditions of the same signal.
fn conflict(parsed: &FilterConfig, signal: Signal) -> Result<(), Problem> {
    let refuse = |key: &str, reason: &str| Err((key.to_owned(), reason.to_owned()));
    match signal {
        Signal::Traces => {
            let t = &parsed.traces;
            let ottl = !(t.resource.is_empty() && t.span.is_empty() && t.spanevent.is_empty());
            let spans = &parsed.spans;
            if ottl && (spans.include.is_some() || spans.exclude.is_some()) {
                return refuse(
                    "spans",
                    "cannot use \"traces.resource\", \"traces.span\", \"traces.spanevent\" and \
                     the span settings \"spans.include\", \"spans.exclude\" at the same time",
                );
            }
        }
        Signal::Metrics => {
            let m = &parsed.metrics;
            let legacy = m.include.is_some() || m.exclude.is_some();
            let ottl = !(m.resource.is_empty() && m.metric.is_empty() && m.datapoint.is_empty());
            if legacy && ottl {
                return refuse(
                    "metrics",
                    "cannot use \"metrics.resource\", \"metrics.metric\", \"metrics.datapoint\" \
                     and the settings \"metrics.include\", \"metrics.exclude\" at the same time",
                );
            }
            if legacy && !parsed.metric_conditions.is_empty() {
                return refuse(
                    "metric_conditions",
                    "cannot use context inferred metric conditions \"metric_conditions\" and the \
                     settings \"metrics.include\", \"metrics.exclude\" at the same time",
                );
            }
        }
        Signal::Logs => {
            let l = &parsed.logs;
            let legacy = l.include.is_some() || l.exclude.is_some();
            let ottl = !(l.resource.is_empty() && l.log_record.is_empty());
            if legacy && ottl {
                return refuse(
                    "logs",
                    "cannot use \"logs.resource\", \"logs.log_record\" and the settings \
                     \"logs.include\", \"logs.exclude\" at the same time",
                );
            }
            if legacy && !parsed.log_conditions.is_empty() {
                return refuse(
                    "log_conditions",
                    "cannot use context inferred log conditions \"log_conditions\" and the \
                     settings \"logs.include\", \"logs.exclude\" at the same time",
                );
            }
        }
    }
    Ok(())
}

/// Drops the spans `filter` does not select, then the scopes and resources left empty (those
/// that came empty too, as otelcol does).
pub(crate) fn filter_spans(filter: &Filter, req: &mut ExportTraceServiceRequest) -> FilterOutcome {
    let before = span_totals(req);
    req.resource_spans.retain_mut(|rs| {
        let resource = rs.resource.as_ref();
        rs.scope_spans.retain_mut(|ss| {
            let scope = ss.scope.as_ref();
            ss.spans.retain(|span| filter.span(resource, scope, span));
            !ss.spans.is_empty()
        });
        !rs.scope_spans.is_empty()
    });
    outcome(before, span_totals(req))
}

/// Drops the resources the resource tests reject, then the metrics the name test does not
/// select, then what is left empty. Without a name test, scopes are not looked into.
pub(crate) fn filter_metrics(m: &Metrics, req: &mut ExportMetricsServiceRequest) -> FilterOutcome {
    let before = metric_totals(req);
    let by_name = !m.names.is_noop();
    req.resource_metrics.retain_mut(|rm| {
        let attrs = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let fails_include = m
            .include_resource
            .as_ref()
            .is_some_and(|f| !f.matches(attrs));
        if fails_include
            || m.exclude_resource
                .as_ref()
                .is_some_and(|f| f.matches(attrs))
        {
            return false;
        }
        if !by_name {
            return !rm.scope_metrics.is_empty();
        }
        rm.scope_metrics.retain_mut(|sm| {
            sm.metrics.retain(|metric| m.names.metric(metric));
            !sm.metrics.is_empty()
        });
        !rm.scope_metrics.is_empty()
    });
    outcome(before, metric_totals(req))
}

/// As [`filter_spans`], for log records.
pub(crate) fn filter_logs(filter: &Filter, req: &mut ExportLogsServiceRequest) -> FilterOutcome {
    let before = log_totals(req);
    req.resource_logs.retain_mut(|rl| {
        let resource = rl.resource.as_ref();
        rl.scope_logs.retain_mut(|sl| {
            let scope = sl.scope.as_ref();
            sl.log_records
                .retain(|log| filter.log(resource, scope, log));
            !sl.log_records.is_empty()
        });
        !rl.scope_logs.is_empty()
    });
    outcome(before, log_totals(req))
}

impl Metrics {
    fn build(
        include: Option<&MetricMatchProperties>,
        exclude: Option<&MetricMatchProperties>,
    ) -> Result<Self, Problem> {
        for (key, side) in [("metrics.include", include), ("metrics.exclude", exclude)] {
            if side.is_some_and(|p| p.match_type == "expr" && !p.expressions.is_empty()) {
                return Err((
                    format!("{key}.expressions"),
                    "match_type `expr` (the expr language) is not supported by Redline: write the \
                     conditions as OTTL under `metrics.metric`"
                        .to_owned(),
                ));
            }
        }
        let resource = |p: Option<&MetricMatchProperties>, key: &str| match p {
            Some(p) => AttributesFilter::new(&p.match_type, &p.resource_attributes)
                .map_err(|e| (format!("{key}.resource_attributes"), e.to_string())),
            None => Ok(None),
        };
        Ok(Self {
            names: Filter::metric_names(names(include), names(exclude))
                .map_err(|e| ("metrics".to_owned(), e.to_string()))?,
            include_resource: resource(include, "metrics.include")?,
            exclude_resource: resource(exclude, "metrics.exclude")?,
        })
    }
}

/// A metrics section's name test: its match type and names.
fn names(p: Option<&MetricMatchProperties>) -> Option<(&str, &[String])> {
    p.map(|p| (p.match_type.as_str(), p.metric_names.as_slice()))
}

impl LogMatchProperties {
    /// otelcol's `isEmpty`: a section that lists nothing is left out.
    fn is_empty(&self) -> bool {
        self.resource_attributes.is_empty()
            && self.record_attributes.is_empty()
            && self.severity_texts.is_empty()
            && self.bodies.is_empty()
            && self.severity_number.is_none()
    }

    /// otelcol's `matchProperties`: the same section in the form the log matcher reads.
    fn match_properties(&self, key: &str) -> Result<MatchProperties, Problem> {
        let severity_number = match &self.severity_number {
            None => None,
            Some(n) => Some(SeverityNumberMatch {
                min: severity_number(&n.min).ok_or_else(|| {
                    (
                        format!("{key}.severity_number.min"),
                        format!("'{}' is not a valid severity", n.min),
                    )
                })?,
                match_undefined: n.match_undefined,
            }),
        };
        Ok(MatchProperties {
            match_type: self.match_type.clone(),
            resources: self.resource_attributes.clone(),
            attributes: self.record_attributes.clone(),
            log_severity_texts: self.severity_texts.clone(),
            log_bodies: self.bodies.clone(),
            log_severity_number: severity_number,
            ..MatchProperties::default()
        })
    }
}

/// otelcol's severity names (`TRACE` .. `FATAL4`, any case) and numbers (`"1"` .. `"24"`);
/// the empty name is 0 (every record with a severity then matches).
fn severity_number(text: &str) -> Option<i32> {
    if text.is_empty() {
        return Some(0);
    }
    if let Ok(n) = text.parse::<i32>() {
        return (1..=24).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    SEVERITY_NUMBER_NAMES
        .iter()
        .position(|name| name.strip_prefix("SEVERITY_NUMBER_") == Some(upper.as_str()))
        .filter(|n| *n > 0)
        .and_then(|n| i32::try_from(n).ok())
}

/// Resources, scopes, and the items (spans) of a request.
fn span_totals(req: &ExportTraceServiceRequest) -> [usize; 4] {
    let scopes = || req.resource_spans.iter().flat_map(|r| &r.scope_spans);
    let spans = scopes().map(|s| s.spans.len()).sum();
    [req.resource_spans.len(), scopes().count(), spans, spans]
}

/// Resources, scopes, metrics and data points (the items) of a request.
fn metric_totals(req: &ExportMetricsServiceRequest) -> [usize; 4] {
    let metrics = || {
        req.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
    };
    let scopes = req
        .resource_metrics
        .iter()
        .map(|r| r.scope_metrics.len())
        .sum();
    let points = metrics().map(point_count).sum();
    [
        req.resource_metrics.len(),
        scopes,
        metrics().count(),
        points,
    ]
}

/// Resources, scopes, and the items (log records) of a request.
fn log_totals(req: &ExportLogsServiceRequest) -> [usize; 4] {
    let scopes = || req.resource_logs.iter().flat_map(|r| &r.scope_logs);
    let logs = scopes().map(|s| s.log_records.len()).sum();
    [req.resource_logs.len(), scopes().count(), logs, logs]
}

/// Changed when anything was dropped; the items left are the last total.
fn outcome(before: [usize; 4], after: [usize; 4]) -> FilterOutcome {
    FilterOutcome {
        changed: before != after,
        remaining_items: after[3],
    }
}

#[cfg(test)]
mod tests {
    use super::severity_number;

    #[test]
    fn severities_are_read_as_otelcol_reads_them() {
        assert_eq!(severity_number("INFO"), Some(9));
        assert_eq!(severity_number("warn3"), Some(15));
        assert_eq!(severity_number("Fatal4"), Some(24));
        assert_eq!(severity_number("TRACE"), Some(1));
        assert_eq!(severity_number("17"), Some(17));
        assert_eq!(severity_number(""), Some(0));
        for bad in ["25", "0", "INFO5", "verbose", "-1"] {
            assert_eq!(severity_number(bad), None, "{bad}");
        }
    }
}
