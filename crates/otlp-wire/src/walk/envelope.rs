//! The envelope metrics and logs requests share with traces: the request's repeated
//! `Resource{Metrics,Logs}` (field 1), each with a `resource` (1), repeated
//! `Scope{Metrics,Logs}` (2) and `schema_url` (3); each scope entry with a `scope` (1), the
//! signal's items (2) and `schema_url` (3). Only the item reader differs per signal.

use super::fields::{Elements, Fields};
use super::trace::{resource, scope};
use super::views::ScopeView;
use crate::cursor::Cursor;
use crate::error::WireError;
use crate::RECURSION_LIMIT;

/// The names a signal gives the envelope's fields, for error paths.
pub(super) struct Names {
    /// The request's field 1, also the element label: `resource_metrics`.
    pub(super) resources: &'static str,
    /// The resource entry's field 2, also the element label: `scope_metrics`.
    pub(super) scopes: &'static str,
    /// The scope entry's field 2: `metrics`.
    pub(super) items: &'static str,
    /// One element of `items`: `metric`.
    pub(super) item: &'static str,
}

/// How many of each envelope message a request holds.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) resources: usize,
    pub(super) scopes: usize,
    pub(super) items: usize,
}

/// Validates a whole request, calling `item` with each item's bytes and recursion budget.
pub(super) fn request<'a>(
    c: Cursor<'a>,
    names: &Names,
    item: &mut impl FnMut(Cursor<'a>, u32) -> Result<(), WireError>,
) -> Result<Counts, WireError> {
    let mut counts = Counts::default();
    let mut resources = Elements::new(names.resources, names.resources);
    let mut fields = Fields::new(c, RECURSION_LIMIT);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => resources.read::<true>(f, |c, r| {
                resource_entry(c, r, names, &mut counts, &mut *item)
            })?,
            _ => fields.skip_unknown(f)?,
        }
    }
    counts.resources = resources.count();
    Ok(counts)
}

/// `ResourceMetrics` / `ResourceLogs`.
fn resource_entry<'a>(
    c: Cursor<'a>,
    r: u32,
    names: &Names,
    counts: &mut Counts,
    item: &mut impl FnMut(Cursor<'a>, u32) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut scopes = Elements::new(names.scopes, names.scopes);
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.singular("resource", |c, r| resource::<true>(c, r, &mut 0))?,
            2 => scopes.read::<true>(f, |c, r| {
                counts.items += scope_entry(c, r, names, &mut *item)?;
                Ok(())
            })?,
            3 => f.check_string("schema_url")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    counts.scopes += scopes.count();
    Ok(())
}

/// `ScopeMetrics` / `ScopeLogs`: returns how many items it holds.
fn scope_entry<'a>(
    c: Cursor<'a>,
    r: u32,
    names: &Names,
    item: &mut impl FnMut(Cursor<'a>, u32) -> Result<(), WireError>,
) -> Result<usize, WireError> {
    let mut items = Elements::new(names.items, names.item);
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.singular("scope", |c, r| {
                // The trace walker's scope reader, with a view nobody looks at.
                let mut view = ScopeView {
                    raw: &[],
                    index: 0,
                    name: "",
                    version: "",
                    dropped_attributes_count: 0,
                    schema_url: "",
                };
                scope::<true>(c, r, &mut view)
            })?,
            2 => items.read::<true>(f, &mut *item)?,
            3 => f.check_string("schema_url")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(items.count())
}
