//! Hand-rolled protobuf writing for the hot path: one pass over the sources writes
//! `WriteRequest` bytes directly, with no per-label `String`s (100k histogram series are ~2M
//! time series per push). The layout is the one [`crate::proto`] derives; the encoding tests
//! decode the output with those prost messages.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

/// Bytes of a length-delimited field (key + length + payload) with a payload of `len`.
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

/// A string field, left out when empty as proto3 does.
fn string_len(tag: u32, s: &[u8]) -> usize {
    if s.is_empty() {
        0
    } else {
        delimited_len(tag, s.len())
    }
}

fn put_string(out: &mut Vec<u8>, tag: u32, s: &[u8]) {
    if s.is_empty() {
        return;
    }
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(s.len() as u64, out);
    out.extend_from_slice(s);
}

/// `Label { name = 1; value = 2 }` as a field `tag` of its parent.
pub(crate) fn label_field_len(tag: u32, name: &[u8], value: &[u8]) -> usize {
    delimited_len(tag, string_len(1, name) + string_len(2, value))
}

pub(crate) fn put_label_field(out: &mut Vec<u8>, tag: u32, name: &[u8], value: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint((string_len(1, name) + string_len(2, value)) as u64, out);
    put_string(out, 1, name);
    put_string(out, 2, value);
}

/// `Sample { double value = 1; int64 timestamp = 2 }` as field 2 of a `TimeSeries`. Both
/// fields are always written: a zero is valid on the wire and keeps the length fixed.
pub(crate) fn sample_field_len(timestamp_ms: i64) -> usize {
    delimited_len(2, 9 + 1 + encoded_len_varint(timestamp_ms as u64))
}

pub(crate) fn put_sample_field(out: &mut Vec<u8>, value: f64, timestamp_ms: i64) {
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(
        (9 + 1 + encoded_len_varint(timestamp_ms as u64)) as u64,
        out,
    );
    encode_key(1, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
    encode_key(2, WireType::Varint, out);
    encode_varint(timestamp_ms as u64, out);
}

/// `Exemplar { labels = 1; double value = 2; int64 timestamp = 3 }` payload length.
pub(crate) fn exemplar_payload_len(labels: &[(&[u8], &[u8])], timestamp_ms: i64) -> usize {
    labels
        .iter()
        .map(|(n, v)| label_field_len(1, n, v))
        .sum::<usize>()
        + 9
        + 1
        + encoded_len_varint(timestamp_ms as u64)
}

/// An exemplar as field 3 of a `TimeSeries`.
pub(crate) fn put_exemplar_field(
    out: &mut Vec<u8>,
    labels: &[(&[u8], &[u8])],
    value: f64,
    timestamp_ms: i64,
) {
    encode_key(3, WireType::LengthDelimited, out);
    encode_varint(exemplar_payload_len(labels, timestamp_ms) as u64, out);
    for (n, v) in labels {
        put_label_field(out, 1, n, v);
    }
    encode_key(2, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
    encode_key(3, WireType::Varint, out);
    encode_varint(timestamp_ms as u64, out);
}

/// Key and length prefix of a length-delimited field.
pub(crate) fn put_header(out: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

pub(crate) fn header_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64)
}
