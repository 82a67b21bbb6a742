//! Walking a request's spans into observations.

use redline_otlp_wire::{AnyValueView, ResourceView, ScopeView, SpanKeys, SpanView, TraceVisitor};
use redline_sampling_tracestate::{round_weight, AdjustedCounts};
use smallvec::SmallVec;

use super::events::EventsWalk;
use super::key::{note_resource_dims, DimSrc, SpanKey};
use super::local::Local;
use super::observe::{Now, Observation};
use super::SpanMetrics;
use crate::config::{COUNTED, EXTRAPOLATED};
use crate::glob_labels::GlobLabels;
use crate::series::{enum_index, KIND_NAMES, STATUS_ERROR, STATUS_NAMES};

/// The visitor that turns spans into observations, grouped by series in a [`Local`] until
/// [`finish`](Self::finish) counts them. Its buffers live for one request, so spans whose
/// labels are strings allocate nothing.
pub(crate) struct Aggregator<'m, 'a> {
    m: &'m SpanMetrics,
    /// `None` while the current resource has no `service.name`: its spans are not counted.
    service: Option<&'a str>,
    /// Dimension values found in the current resource's attributes (`resource_has`), kept
    /// as strings so they are converted once per resource, not per span.
    resource_dims: Vec<String>,
    /// Inline up to 8 dimensions: no allocation per request for these in the common case.
    resource_has: SmallVec<[bool; 8]>,
    srcs: SmallVec<[DimSrc<'a>; 8]>,
    scratch: Vec<String>,
    /// The last tracestate's parse, reused by the request's next span.
    adjusted: AdjustedCounts<'a>,
    /// `span_multiplier_key` read from the current resource.
    resource_multiplier: Option<f64>,
    /// The current scope's name and version when `include_instrumentation_scope` lists it.
    scope: Option<(&'a str, &'a str)>,
    local: Local<'a>,
    /// The events family's walk (`events.enabled`); boxed, so that requests without it do
    /// not move its buffers around.
    events: Option<Box<EventsWalk<'m, 'a>>>,
    /// The walk of the duration family's store, when it has labels of its own: the same
    /// visit of each span, against that store's dimensions.
    duration: Option<Box<Aggregator<'m, 'a>>>,
    /// The labels of glob dimensions (`glob_dim`).
    glob_labels: GlobLabels,
}

/// A multiplier attribute's value as a number (Tempo reads doubles and integers).
fn multiplier(value: &AnyValueView<'_>) -> Option<f64> {
    match value {
        AnyValueView::Double(d) => Some(*d),
        AnyValueView::Int(i) => Some(*i as f64),
        _ => None,
    }
}

impl<'m, 'a> Aggregator<'m, 'a> {
    /// `request_len`: the encoded request's size, to size the buffers.
    pub(super) fn new(m: &'m SpanMetrics, request_len: usize) -> Self {
        let n = m.layout.n_dims;
        let now_ms = m.now_ms();
        Self {
            m,
            service: None,
            resource_dims: vec![String::new(); n],
            resource_has: smallvec::smallvec![false; n],
            srcs: smallvec::smallvec![DimSrc::Absent; n],
            scratch: vec![String::new(); n],
            adjusted: AdjustedCounts::new(),
            resource_multiplier: None,
            scope: None,
            events: m.events.as_deref().map(|e| Box::new(EventsWalk::new(e))),
            duration: m
                .duration
                .as_deref()
                .map(|d| Box::new(Aggregator::new(d, request_len))),
            glob_labels: GlobLabels::default(),
            // ~430 bytes per span is typical; fewer bytes mean more spans, so aim low.
            local: Local::with_capacity(
                request_len / 256,
                Now {
                    ms: now_ms,
                    unix_nano: m.now_unix_nano(now_ms),
                },
            ),
        }
    }

    /// Counts the spans seen into the series map. Dropping the aggregator instead counts
    /// nothing.
    pub(crate) fn finish(self) -> usize {
        let counted = self.local.len();
        self.local.flush(self.m);
        if let Some(events) = self.events {
            events.finish();
        }
        if let Some(duration) = self.duration {
            duration.finish();
        }
        counted
    }

    /// How many spans this one stands for, and whether that came from sampling information:
    /// the multiplier attribute when configured and present, else the tracestate's adjusted
    /// count, else 1.
    fn weight(&mut self, span: &SpanView<'a>, span_multiplier: Option<f64>) -> (u64, bool) {
        let multiplier = span_multiplier.or(self.resource_multiplier);
        let tracestate = span.trace_state();
        if multiplier.is_none() && tracestate.is_empty() {
            return (1, false); // the common case: no sampling information at all
        }
        let random = span
            .span_id()
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes);
        if let Some(m) = multiplier {
            return (round_weight(m, random), true);
        }
        match self.adjusted.get(tracestate, random) {
            Some(n) => (n, true),
            None => (1, false),
        }
    }
}

impl<'m: 'a, 'a> TraceVisitor<'a> for Aggregator<'m, 'a> {
    fn span_keys(&self) -> &'a SpanKeys {
        &self.m.span_keys
    }

    fn resource(&mut self, resource: &ResourceView<'a>) {
        // pdata's first match wins; a non-string value reads as "" (Go's `Str()`).
        self.service = resource.service_name();
        if let Some(events) = &mut self.events {
            events.resource(resource);
        }
        if let Some(duration) = &mut self.duration {
            duration.resource(resource);
        }
        self.resource_multiplier = None;
        if let Some(key) = self.m.settings.span_multiplier_key.as_deref() {
            self.resource_multiplier = resource
                .attributes()
                .lazy()
                .find(|kv| kv.key_bytes() == key.as_bytes())
                .and_then(|kv| multiplier(&kv.value()));
        }
        if self.m.settings.glob_dim.is_some() {
            self.glob_labels.resource(&self.m.settings.globs, resource);
        }
        note_resource_dims(
            resource,
            self.m.settings.attribute_dimensions(),
            &mut self.resource_has,
            &mut self.resource_dims,
        );
    }

    fn scope(&mut self, scope: &ScopeView<'a>) {
        let listed = self
            .m
            .settings
            .include_scopes
            .iter()
            .any(|s| s == scope.name());
        self.scope = listed.then(|| (scope.name(), scope.version()));
        if let Some(duration) = &mut self.duration {
            duration.scope(scope);
        }
    }

    fn span(&mut self, span: &SpanView<'a>) {
        if let Some(duration) = &mut self.duration {
            duration.span(span);
        }
        let Some(service) = self.service else {
            return;
        };
        let settings = &self.m.settings;
        let n_attr = settings.attribute_dims;
        let multiplier_key = settings.span_multiplier_key.as_deref().map(str::as_bytes);
        let mut span_multiplier = None;
        // `srcs` holds one entry per dimension from the start (`new`): reset, not resized.
        self.srcs.fill(DimSrc::Absent);
        if n_attr > 0 || multiplier_key.is_some() {
            // Each key's first attribute, as pdata's `Get`: the walk noted them while it read
            // the span (`span_keys`), so these are lookups; only the values of configured
            // keys are decoded.
            if let Some(key) = multiplier_key {
                span_multiplier = span.lazy_attribute(key).map(|kv| multiplier(&kv.value()));
            }
            let dims = settings.attribute_dimensions();
            for ((dim, src), buf) in dims.iter().zip(&mut self.srcs).zip(&mut self.scratch) {
                let Some(kv) = span.lazy_attribute(dim.name.as_bytes()) else {
                    continue;
                };
                *src = DimSrc::of(kv.value(), buf);
            }
            for (i, src) in self.srcs.iter_mut().enumerate().take(n_attr) {
                if matches!(src, DimSrc::Absent) {
                    if self.resource_has.get(i).copied().unwrap_or(false) {
                        *src = DimSrc::Resource;
                    } else if matches!(settings.dimensions.get(i), Some(d) if d.default.is_some()) {
                        *src = DimSrc::Default;
                    }
                }
            }
        }

        let (weight, extrapolated) = self.weight(span, span_multiplier.flatten());
        if let Some(src) = settings.sampling_dim.and_then(|at| self.srcs.get_mut(at)) {
            *src = DimSrc::Borrowed(if extrapolated { EXTRAPOLATED } else { COUNTED });
        }
        if let (Some(at), Some((name, version))) = (settings.scope_dims, self.scope) {
            if let Some(src) = self.srcs.get_mut(at) {
                *src = DimSrc::Borrowed(name);
            }
            if let Some(src) = self.srcs.get_mut(at + 1).filter(|_| !version.is_empty()) {
                *src = DimSrc::Borrowed(version);
            }
        }
        if let Some(at) = settings.glob_dim {
            self.glob_labels.span(&settings.globs, span);
            if let (Some(src), Some(buf)) = (self.srcs.get_mut(at), self.scratch.get_mut(at)) {
                *src = if self.glob_labels.finish(span, buf) {
                    DimSrc::Scratch
                } else {
                    DimSrc::Absent
                };
            }
        }
        let name = span.name();
        let kind = enum_index(span.kind(), &KIND_NAMES);
        let status = enum_index(span.status_code(), &STATUS_NAMES);
        let nanos = span
            .end_time_unix_nano()
            .saturating_sub(span.start_time_unix_nano());
        let duration = nanos as f64 / self.m.settings.unit.nanos_per_unit();
        let trace_id = span.trace_id();
        // Like Go: no exemplar for spans without a (non-zero) trace id.
        let trace_id = <[u8; 16]>::try_from(trace_id)
            .ok()
            .filter(|t| t.iter().any(|b| *b != 0));

        let key = SpanKey {
            service: Some(service),
            name: Some(name),
            kind,
            status,
            srcs: &self.srcs,
            scratch: &self.scratch,
            resource: &self.resource_dims,
            settings: &self.m.settings,
        };
        let obs = Observation {
            duration,
            weight,
            is_error: status == STATUS_ERROR,
            trace_id,
            span_id: <[u8; 8]>::try_from(span.span_id()).unwrap_or_default(),
        };
        // Before the span is handed over, with nothing kept for after: the visit of a span
        // without events stays what it was.
        if let Some(events) = &mut self.events {
            events.span(span, &key, &obs, self.scope);
        }
        self.local.add(self.m, &key, obs);
    }
}
