//! Rewriting only the resources of an export request, leaving every span, data point and
//! log record as received.
//!
//! The three export requests share one layout: field 1 repeats a `ResourceSpans`,
//! `ResourceMetrics` or `ResourceLogs`, whose field 1 is the `Resource` and field 3 the
//! `schema_url`. A processor that only changes resources (`resource`, `resource_detection`)
//! therefore needs neither the signal nor a full decode: [`splice_resources`] hands it each
//! resource's bytes, and copies everything it did not change byte for byte.

use crate::cursor::{wrong_type, Cursor, Value};
use crate::error::{WireError, WireType};
use crate::RECURSION_LIMIT;

const RESOURCE_GROUP: u32 = 1;
const RESOURCE: u32 = 1;
const SCHEMA_URL: u32 = 3;

/// The resource part of one `ResourceSpans` / `ResourceMetrics` / `ResourceLogs`.
#[derive(Debug)]
pub struct ResourceSlot<'a> {
    /// Every occurrence of the `resource` field, in order: protobuf merges a message field
    /// that occurs more than once, so the resource is all of them decoded into one message.
    /// Empty when the field is absent (an empty resource).
    pub resource: &'a [&'a [u8]],
    /// The `schema_url` (its last occurrence wins, as protobuf says); empty when absent.
    pub schema_url: &'a [u8],
}

/// What to put in place of one slot's resource part.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResourceEdit {
    /// The new encoded `Resource` message, or `None` to keep the old one.
    pub resource: Option<Vec<u8>>,
    /// The new `schema_url`, or `None` to keep the old one.
    pub schema_url: Option<String>,
}

/// A failure of [`splice_resources`]: the bytes were not a valid request, or the editor
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError<E> {
    /// The request is not valid protobuf (never for a batch a receiver validated).
    #[error("malformed export request: {0}")]
    Wire(#[from] WireError),
    /// The editor refused a resource.
    #[error(transparent)]
    Edit(E),
}

/// Calls `edit` on the resource of every resource group of `request` (an encoded
/// `Export{Trace,Metrics,Logs}ServiceRequest`) in order, and returns the re-assembled request
/// when at least one edit changed something, `None` when none did.
pub fn splice_resources<E>(
    request: &[u8],
    mut edit: impl FnMut(ResourceSlot<'_>) -> Result<Option<ResourceEdit>, E>,
) -> Result<Option<Vec<u8>>, SpliceError<E>> {
    // (start, end) of a replaced resource group in `request`, and its new body.
    let mut replaced: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut top = Cursor::new(request);
    while !top.at_end() {
        let start = top.pos();
        let (tag, value) = top.next_field()?;
        let group = match value {
            Value::Len(group) if tag == RESOURCE_GROUP => group,
            other => {
                top.skip_unknown(tag, other, RECURSION_LIMIT, start)?;
                continue;
            }
        };
        let schema_url = read_slot(group, &mut chunks)?;
        let slot = ResourceSlot {
            resource: &chunks,
            schema_url,
        };
        let Some(change) = edit(slot).map_err(SpliceError::Edit)? else {
            continue;
        };
        if change.resource.is_none() && change.schema_url.is_none() {
            continue;
        }
        let body = rebuild_group(group, &change)?;
        replaced.push((start, top.pos(), body));
    }
    if replaced.is_empty() {
        return Ok(None);
    }
    let extra: usize = replaced.iter().map(|(_, _, b)| b.len() + 10).sum();
    let mut out = Vec::with_capacity(request.len() + extra);
    let mut copied = 0;
    for (start, end, body) in &replaced {
        out.extend_from_slice(request.get(copied..*start).unwrap_or_default());
        put_len_field(&mut out, RESOURCE_GROUP, body);
        copied = *end;
    }
    out.extend_from_slice(request.get(copied..).unwrap_or_default());
    Ok(Some(out))
}

/// Collects the resource occurrences of one group into `chunks`; returns its schema URL.
fn read_slot<'a>(mut group: Cursor<'a>, chunks: &mut Vec<&'a [u8]>) -> Result<&'a [u8], WireError> {
    chunks.clear();
    let mut schema_url: &[u8] = &[];
    while !group.at_end() {
        let at = group.pos();
        let (tag, value) = group.next_field()?;
        match (tag, value) {
            (RESOURCE, Value::Len(resource)) => chunks.push(resource.rest()),
            (SCHEMA_URL, Value::Len(url)) => schema_url = url.rest(),
            (RESOURCE | SCHEMA_URL, other) => {
                return Err(wrong_type(WireType::Len, other.wire_type(), at))
            }
            (tag, other) => group.skip_unknown(tag, other, RECURSION_LIMIT, at)?,
        }
    }
    Ok(schema_url)
}

/// The group's body with its resource and/or schema URL replaced. The new resource takes
/// the place of the first old occurrence (or leads when there was none); every other field
/// keeps its bytes and order.
fn rebuild_group(mut group: Cursor<'_>, change: &ResourceEdit) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(group.rest().len() + 64);
    let mut resource_written = false;
    if let Some(resource) = &change.resource {
        put_len_field(&mut out, RESOURCE, resource);
        resource_written = true;
    }
    while !group.at_end() {
        let start = group.pos();
        let (tag, value) = group.next_field()?;
        if let Value::StartGroup = value {
            group.skip_group(tag, RECURSION_LIMIT)?;
        }
        let replaced = match tag {
            RESOURCE => resource_written,
            SCHEMA_URL => change.schema_url.is_some(),
            _ => false,
        };
        if !replaced {
            out.extend_from_slice(group.slice(start, group.pos()));
        }
    }
    if let Some(url) = &change.schema_url {
        if !url.is_empty() {
            put_len_field(&mut out, SCHEMA_URL, url.as_bytes());
        }
    }
    Ok(out)
}

fn put_len_field(out: &mut Vec<u8>, tag: u32, body: &[u8]) {
    put_varint(out, (u64::from(tag) << 3) | 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len_field(tag: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_len_field(&mut out, tag, body);
        out
    }

    /// A resource group: resource `r`, a scope-spans field holding `payload`, schema `url`.
    fn group(r: &[u8], payload: &[u8], url: &[u8]) -> Vec<u8> {
        let mut g = len_field(RESOURCE, r);
        g.extend(len_field(2, payload));
        if !url.is_empty() {
            g.extend(len_field(SCHEMA_URL, url));
        }
        len_field(RESOURCE_GROUP, &g)
    }

    #[test]
    fn unchanged_when_no_edit() {
        let req = [group(b"r1", b"spans", b""), group(b"r2", b"more", b"u")].concat();
        let mut seen = Vec::new();
        let out = splice_resources::<()>(&req, |slot| {
            seen.push((slot.resource.concat(), slot.schema_url.to_vec()));
            Ok(None)
        })
        .expect("valid request");
        assert_eq!(out, None);
        assert_eq!(
            seen,
            vec![
                (b"r1".to_vec(), Vec::new()),
                (b"r2".to_vec(), b"u".to_vec())
            ]
        );
    }

    #[test]
    fn replaces_only_the_edited_resource_and_keeps_the_rest() {
        let req = [group(b"r1", b"spans", b""), group(b"r2", b"more", b"u")].concat();
        let mut n = 0;
        let out = splice_resources::<()>(&req, |_| {
            n += 1;
            Ok((n == 2).then(|| ResourceEdit {
                resource: Some(b"NEW".to_vec()),
                schema_url: Some("s".into()),
            }))
        })
        .expect("valid request")
        .expect("one edit");
        let want = [group(b"r1", b"spans", b""), group(b"NEW", b"more", b"s")].concat();
        assert_eq!(out, want);
    }

    #[test]
    fn adds_a_resource_where_there_was_none_and_merges_repeated_ones() {
        let bare = len_field(RESOURCE_GROUP, &len_field(2, b"x"));
        let out = splice_resources::<()>(&bare, |slot| {
            assert!(slot.resource.is_empty());
            Ok(Some(ResourceEdit {
                resource: Some(b"R".to_vec()),
                schema_url: None,
            }))
        })
        .expect("valid")
        .expect("edited");
        assert_eq!(out, group(b"R", b"x", b""));

        let twice = len_field(
            RESOURCE_GROUP,
            &[len_field(RESOURCE, b"a"), len_field(RESOURCE, b"b")].concat(),
        );
        let out = splice_resources::<()>(&twice, |slot| {
            assert_eq!(slot.resource, &[&b"a"[..], &b"b"[..]]);
            Ok(Some(ResourceEdit {
                resource: Some(b"ab".to_vec()),
                schema_url: None,
            }))
        })
        .expect("valid")
        .expect("edited");
        assert_eq!(out, len_field(RESOURCE_GROUP, &len_field(RESOURCE, b"ab")));
    }

    #[test]
    fn an_empty_schema_url_removes_the_field() {
        let req = group(b"r", b"p", b"old");
        let out = splice_resources::<()>(&req, |_| {
            Ok(Some(ResourceEdit {
                resource: None,
                schema_url: Some(String::new()),
            }))
        })
        .expect("valid")
        .expect("edited");
        assert_eq!(out, group(b"r", b"p", b""));
    }

    #[test]
    fn malformed_bytes_and_editor_errors_are_reported() {
        let bad = [0x0a, 0x05, 0x0a];
        assert!(matches!(
            splice_resources::<()>(&bad, |_| Ok(None)),
            Err(SpliceError::Wire(_))
        ));
        let req = group(b"r", b"p", b"");
        assert!(matches!(
            splice_resources(&req, |_| Err("no")),
            Err(SpliceError::Edit("no"))
        ));
    }
}
