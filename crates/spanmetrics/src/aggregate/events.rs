//! The events family's share of a request's walk: each event of a counted span is one
//! observation of the events store, under the span's labels and the event dimensions.
//!
//! A dimension's value is looked up as otelcol looks it up for an event: the span's
//! attributes first, then the event's, then the resource's, then the dimension's default
//! (otelcol overlays the event's attributes on a copy of the resource's).

use redline_otlp_wire::{EventView, ResourceView, SpanView};
use smallvec::SmallVec;

use super::key::{note_resource_dims, DimSrc, SpanKey};
use super::local::Local;
use super::observe::{Now, Observation};
use super::SpanMetrics;
use crate::glob_labels::GlobLabels;

pub(super) struct EventsWalk<'m, 'a> {
    store: &'m SpanMetrics,
    resource_dims: Vec<String>,
    resource_has: SmallVec<[bool; 8]>,
    /// Per dimension: the span's own value, found once per span.
    span_srcs: SmallVec<[DimSrc<'a>; 8]>,
    span_scratch: Vec<String>,
    srcs: SmallVec<[DimSrc<'a>; 8]>,
    scratch: Vec<String>,
    local: Local<'a>,
    glob_labels: GlobLabels,
}

impl<'m, 'a> EventsWalk<'m, 'a> {
    pub(super) fn new(store: &'m SpanMetrics) -> Self {
        let n = store.layout.n_dims;
        let now_ms = store.now_ms();
        Self {
            store,
            resource_dims: vec![String::new(); n],
            resource_has: smallvec::smallvec![false; n],
            span_srcs: smallvec::smallvec![DimSrc::Absent; n],
            span_scratch: vec![String::new(); n],
            srcs: smallvec::smallvec![DimSrc::Absent; n],
            scratch: vec![String::new(); n],
            glob_labels: GlobLabels::default(),
            local: Local::with_capacity(
                0,
                Now {
                    ms: now_ms,
                    unix_nano: store.now_unix_nano(now_ms),
                },
            ),
        }
    }

    fn attribute_dims(&self) -> &'m [crate::config::Dimension] {
        self.store.settings.attribute_dimensions()
    }

    /// Notes the resource's values of the dimensions, first attribute of each key.
    pub(super) fn resource(&mut self, resource: &ResourceView<'a>) {
        let dims = self.attribute_dims();
        let settings = &self.store.settings;
        if settings.glob_dim.is_some() {
            self.glob_labels.resource(&settings.globs, resource);
        }
        note_resource_dims(
            resource,
            dims,
            &mut self.resource_has,
            &mut self.resource_dims,
        );
    }

    /// Adds one observation per event of `span`. `key` and `obs` are the span's own, in the
    /// connector's store: the events share its labels, its `sampling.method` and the
    /// observation they add to. Not inlined: the span visit, which every span of every
    /// request runs with or without events, stays as small as it was.
    #[inline(never)]
    pub(super) fn span(
        &mut self,
        span: &SpanView<'a>,
        key: &SpanKey<'_, 'a>,
        obs: &Observation,
        scope: Option<(&'a str, &'a str)>,
    ) {
        let mut events = span.events().peekable();
        if events.peek().is_none() {
            return;
        }
        let dims = self.attribute_dims();
        for ((dim, src), buf) in dims
            .iter()
            .zip(self.span_srcs.iter_mut())
            .zip(self.span_scratch.iter_mut())
        {
            *src = match span.lazy_attribute(dim.name.as_bytes()) {
                Some(kv) => DimSrc::of(kv.value(), buf),
                None => DimSrc::Absent,
            };
        }
        let sampling = key
            .settings
            .sampling_dim
            .and_then(|at| match key.srcs.get(at) {
                Some(DimSrc::Borrowed(s)) => Some(*s),
                _ => None,
            });
        for event in events {
            self.event(span, &event, key, obs, sampling, scope);
        }
    }

    fn event(
        &mut self,
        span_view: &SpanView<'a>,
        event: &EventView<'a>,
        span: &SpanKey<'_, 'a>,
        obs: &Observation,
        sampling: Option<&'a str>,
        scope: Option<(&'a str, &'a str)>,
    ) {
        let settings = &self.store.settings;
        let dims = self.attribute_dims();
        self.srcs.fill(DimSrc::Absent);
        for (i, dim) in dims.iter().enumerate() {
            let (Some(src), Some(buf)) = (self.srcs.get_mut(i), self.scratch.get_mut(i)) else {
                continue;
            };
            *src = match self.span_srcs.get(i) {
                Some(DimSrc::Borrowed(s)) => DimSrc::Borrowed(s),
                Some(DimSrc::Scratch) => {
                    buf.clear();
                    buf.push_str(self.span_scratch.get(i).map_or("", String::as_str));
                    DimSrc::Scratch
                }
                _ => match event
                    .attributes()
                    .lazy()
                    .find(|kv| kv.key_bytes() == dim.name.as_bytes())
                {
                    Some(kv) => DimSrc::of(kv.value(), buf),
                    None if self.resource_has.get(i).copied().unwrap_or(false) => DimSrc::Resource,
                    None if dim.default.is_some() => DimSrc::Default,
                    None => DimSrc::Absent,
                },
            };
        }
        if let (Some(at), Some(value)) = (settings.sampling_dim, sampling) {
            if let Some(src) = self.srcs.get_mut(at) {
                *src = DimSrc::Borrowed(value);
            }
        }
        if let (Some(at), Some((name, version))) = (settings.scope_dims, scope) {
            if let Some(src) = self.srcs.get_mut(at) {
                *src = DimSrc::Borrowed(name);
            }
            if let Some(src) = self.srcs.get_mut(at + 1).filter(|_| !version.is_empty()) {
                *src = DimSrc::Borrowed(version);
            }
        }
        if let Some(at) = settings.glob_dim {
            let labels = &mut self.glob_labels;
            labels.span(&settings.globs, span_view);
            let attributes = event.attributes().lazy();
            labels.event(
                &settings.globs,
                span_view,
                attributes.map(|kv| (kv.key_bytes(), kv.value())),
            );
            if let (Some(src), Some(buf)) = (self.srcs.get_mut(at), self.scratch.get_mut(at)) {
                *src = if labels.finish(span_view, buf) {
                    DimSrc::Scratch
                } else {
                    DimSrc::Absent
                };
            }
        }
        let key = SpanKey {
            service: span.service,
            name: span.name,
            kind: span.kind,
            status: span.status,
            srcs: &self.srcs,
            scratch: &self.scratch,
            resource: &self.resource_dims,
            settings,
        };
        let obs = Observation {
            duration: obs.duration,
            weight: obs.weight,
            is_error: obs.is_error,
            trace_id: obs.trace_id,
            span_id: obs.span_id,
        };
        self.local.add(self.store, &key, obs);
    }

    pub(super) fn finish(self) {
        self.local.flush(self.store);
    }
}
