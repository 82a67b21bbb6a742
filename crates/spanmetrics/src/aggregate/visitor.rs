//! Walking a request's spans into observations.

use redline_otlp_wire::{KeyValueView, ResourceView, SpanView, TraceVisitor};

use super::key::{DimSrc, SpanKey};
use super::observe::Observation;
use super::SpanMetrics;
use crate::series::{enum_index, KIND_NAMES, STATUS_ERROR, STATUS_NAMES};

/// The visitor that turns spans into observations. Its buffers live for one request, so
/// spans whose labels are strings allocate nothing.
pub(super) struct Aggregator<'m, 'a> {
    m: &'m SpanMetrics,
    /// `None` while the current resource has no `service.name`: its spans are not counted.
    service: Option<&'a str>,
    /// Dimension values found in the current resource's attributes (`resource_has`), kept
    /// as strings so they are converted once per resource, not per span.
    resource_dims: Vec<String>,
    resource_has: Vec<bool>,
    srcs: Vec<DimSrc<'a>>,
    scratch: Vec<String>,
    now_ms: u64,
    now_unix_nano: u64,
    pub(super) counted: usize,
}

impl<'m, 'a> Aggregator<'m, 'a> {
    pub(super) fn new(m: &'m SpanMetrics) -> Self {
        let n = m.layout.n_dims;
        let now_ms = m.now_ms();
        Self {
            m,
            service: None,
            resource_dims: vec![String::new(); n],
            resource_has: vec![false; n],
            srcs: Vec::with_capacity(n),
            scratch: vec![String::new(); n],
            now_ms,
            now_unix_nano: m.now_unix_nano(now_ms),
            counted: 0,
        }
    }

    fn dim_index(&self, kv: &KeyValueView<'_>) -> Option<usize> {
        self.m
            .settings
            .dimensions
            .iter()
            .position(|d| d.name == kv.key)
    }
}

impl<'a> TraceVisitor<'a> for Aggregator<'_, 'a> {
    fn resource(&mut self, resource: &ResourceView<'a>) {
        // pdata's first match wins; a non-string value reads as "" (Go's `Str()`).
        self.service = resource.service_name();
        self.resource_has.fill(false);
        if self.m.layout.n_dims == 0 {
            return;
        }
        for kv in resource.attributes() {
            if let Some(i) = self.dim_index(&kv) {
                if let (Some(has), Some(buf)) =
                    (self.resource_has.get_mut(i), self.resource_dims.get_mut(i))
                {
                    if !*has {
                        *has = true;
                        buf.clear();
                        kv.value.write_as_string(buf);
                    }
                }
            }
        }
    }

    fn span(&mut self, span: &SpanView<'a>) {
        let Some(service) = self.service else {
            return;
        };
        let n = self.m.layout.n_dims;
        self.srcs.clear();
        self.srcs.resize(n, DimSrc::Absent);
        if n > 0 {
            let mut set = 0usize;
            // Keys are compared as bytes and only the values of configured dimensions are
            // decoded: a span has ~10 attributes and typically one or two dimensions.
            for kv in span.attributes().lazy() {
                let key = kv.key_bytes();
                let Some(i) = self
                    .m
                    .settings
                    .dimensions
                    .iter()
                    .position(|d| d.name.as_bytes() == key)
                else {
                    continue;
                };
                let Some(src) = self.srcs.get_mut(i) else {
                    continue;
                };
                if !matches!(src, DimSrc::Absent) {
                    continue; // the first occurrence of a key wins, as in pdata
                }
                let value = kv.value();
                *src = match value.as_str() {
                    Some(s) => DimSrc::Borrowed(s),
                    None => {
                        if let Some(buf) = self.scratch.get_mut(i) {
                            buf.clear();
                            value.write_as_string(buf);
                        }
                        DimSrc::Scratch
                    }
                };
                set += 1;
                if set == n {
                    break;
                }
            }
            for (i, src) in self.srcs.iter_mut().enumerate() {
                if matches!(src, DimSrc::Absent) {
                    if self.resource_has.get(i).copied().unwrap_or(false) {
                        *src = DimSrc::Resource;
                    } else if matches!(self.m.settings.dimensions.get(i), Some(d) if d.default.is_some())
                    {
                        *src = DimSrc::Default;
                    }
                }
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
        let trace_id = <&[u8; 16]>::try_from(trace_id)
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
            is_error: status == STATUS_ERROR,
            trace_id,
            span_id: span.span_id(),
            now_ms: self.now_ms,
            now_unix_nano: self.now_unix_nano,
        };
        self.m.observe(&key, &obs);
        self.counted += 1;
    }
}
