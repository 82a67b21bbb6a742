//! Conditions judged one item at a time, for components that walk a decoded request
//! themselves and only ask whether an item matches (the count connector).

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use redline_otlp_wire::{EventView, LazySpanView, ResourceView, ScopeView};

use super::ConditionSet;
use crate::contexts::proto::{scoped, MetricParts};
use crate::contexts::wire::WireCtx;
use crate::error::ExecError;

/// The resource and scope an item lies under, as OTTL paths reach them.
pub struct ItemScope<'a> {
    pub resource: &'a mut Option<Resource>,
    pub resource_schema_url: &'a mut String,
    pub scope: &'a mut Option<InstrumentationScope>,
    pub scope_schema_url: &'a mut String,
}

impl ItemScope<'_> {
    /// The same places, lent for one evaluation.
    pub fn reborrow(&mut self) -> ItemScope<'_> {
        ItemScope {
            resource: &mut *self.resource,
            resource_schema_url: &mut *self.resource_schema_url,
            scope: &mut *self.scope,
            scope_schema_url: &mut *self.scope_schema_url,
        }
    }

    pub fn resource_attributes(&self) -> &[KeyValue] {
        self.resource.as_ref().map_or(&[], |r| &r.attributes)
    }

    pub fn scope_attributes(&self) -> &[KeyValue] {
        self.scope.as_ref().map_or(&[], |s| &s.attributes)
    }
}

/// One item a condition set can judge. The set must have been compiled for the item's
/// context; any other item is an evaluation error.
pub enum Item<'a> {
    Span(&'a mut Span),
    /// The event at `index` of the span's events.
    SpanEvent(&'a mut Span, usize),
    Log(&'a mut LogRecord),
    Metric(&'a mut Metric),
    /// The data point at `index` of the metric's points, whatever their kind.
    DataPoint(&'a mut Metric, usize),
}

impl ConditionSet {
    /// Whether `item` matches one of the conditions (otelcol's `ConditionSequence.Eval` with
    /// OR); a runtime error follows the set's error mode. Nothing is changed, though the
    /// references are mutable: evaluation shares its contexts with the statements that edit.
    pub fn matches_item(&self, at: ItemScope<'_>, item: Item<'_>) -> Result<bool, ExecError> {
        let mut ctx = scoped(
            at.resource,
            at.resource_schema_url,
            at.scope,
            at.scope_schema_url,
        );
        match item {
            Item::Span(span) => ctx.span = Some(span),
            Item::SpanEvent(span, index) => {
                ctx.span = Some(span);
                ctx.event = Some(index);
            }
            Item::Log(log) => ctx.log = Some(log),
            Item::Metric(metric) => {
                ctx.metric = Some(MetricParts {
                    metric,
                    point: None,
                })
            }
            Item::DataPoint(metric, index) => {
                ctx.metric = Some(MetricParts {
                    metric,
                    point: Some(index),
                })
            }
        }
        self.matches(&ctx)
    }
}

impl ConditionSet {
    /// [`ConditionSet::matches_item`] for a span of an encoded traces request, or one of its
    /// events with `event`, read in place: nothing is decoded but the fields the conditions
    /// read, and nothing allocated for them.
    pub fn matches_wire_span(
        &self,
        resource: &ResourceView<'_>,
        scope: Option<&ScopeView<'_>>,
        span: &LazySpanView<'_>,
        event: Option<&EventView<'_>>,
    ) -> Result<bool, ExecError> {
        self.matches(&WireCtx {
            resource,
            scope,
            span: Some(span),
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::ErrorMode;
    use crate::paths::ContextKind;
    use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, NumberDataPoint};

    fn set(context: ContextKind, condition: &str) -> ConditionSet {
        ConditionSet::compile(context, &[condition.to_owned()], ErrorMode::Propagate)
            .expect("compiles")
    }

    /// The resource and scope of the items these tests judge.
    #[derive(Default)]
    struct Place {
        resource: Option<Resource>,
        resource_schema_url: String,
        scope: Option<InstrumentationScope>,
        scope_schema_url: String,
    }

    impl Place {
        fn at(&mut self) -> ItemScope<'_> {
            ItemScope {
                resource: &mut self.resource,
                resource_schema_url: &mut self.resource_schema_url,
                scope: &mut self.scope,
                scope_schema_url: &mut self.scope_schema_url,
            }
        }
    }

    #[test]
    fn judges_each_kind_of_item_in_its_context() {
        let mut place = Place::default();
        let mut span = Span {
            name: "GET /".into(),
            events: vec![Default::default(), Default::default()],
            ..Default::default()
        };
        span.events[1].name = "exception".into();
        assert!(set(ContextKind::Span, r#"span.name == "GET /""#)
            .matches_item(place.at(), Item::Span(&mut span))
            .expect("evaluates"));
        let event = set(ContextKind::SpanEvent, r#"name == "exception""#);
        assert!(!event
            .matches_item(place.at(), Item::SpanEvent(&mut span, 0))
            .expect("evaluates"));
        assert!(event
            .matches_item(place.at(), Item::SpanEvent(&mut span, 1))
            .expect("evaluates"));

        let mut log = LogRecord {
            severity_number: 13,
            ..Default::default()
        };
        assert!(
            set(ContextKind::Log, "severity_number >= SEVERITY_NUMBER_WARN")
                .matches_item(place.at(), Item::Log(&mut log))
                .expect("evaluates")
        );

        let mut metric = Metric {
            name: "m".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint::default(),
                    NumberDataPoint {
                        value: Some(
                            opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                                7,
                            ),
                        ),
                        ..Default::default()
                    },
                ],
            })),
            ..Default::default()
        };
        assert!(set(ContextKind::Metric, r#"metric.name == "m""#)
            .matches_item(place.at(), Item::Metric(&mut metric))
            .expect("evaluates"));
        let point = set(ContextKind::DataPoint, "value_int == 7");
        assert!(!point
            .matches_item(place.at(), Item::DataPoint(&mut metric, 0))
            .expect("evaluates"));
        assert!(point
            .matches_item(place.at(), Item::DataPoint(&mut metric, 1))
            .expect("evaluates"));
    }

    #[test]
    fn an_item_of_another_context_is_an_error_not_a_panic() {
        let mut place = Place::default();
        let mut log = LogRecord::default();
        assert!(set(ContextKind::Span, r#"name == "x""#)
            .matches_item(place.at(), Item::Log(&mut log))
            .is_err());
    }
}
