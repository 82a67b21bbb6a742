//! The compressors that take a whole message at once (gzip and zstd), each with its state
//! kept per thread: both exporters hold every byte of a message before compressing it, and
//! a compressor's match-finder tables cost more to set up than a small request costs to
//! compress.

use std::borrow::Cow;

use bytes::Bytes;

pub(crate) mod gzip;
pub(crate) mod zstd;

/// `parts` as one slice: borrowed when there is one, else copied together. Copying a few
/// batches costs a small part of compressing them, and both compressors are fastest on one
/// buffer.
fn whole<'a>(parts: &[&'a Bytes]) -> Cow<'a, [u8]> {
    match parts {
        [] => Cow::Borrowed(&[]),
        [one] => {
            let one: &'a Bytes = one;
            Cow::Borrowed(one)
        }
        _ => {
            let mut all = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
            parts.iter().for_each(|p| all.extend_from_slice(p));
            Cow::Owned(all)
        }
    }
}

/// Two requests to compress as one message: a large compressible one and a short one, and
/// what the message decompresses to.
#[cfg(test)]
fn two_parts() -> (Bytes, Bytes, Vec<u8>) {
    let a = Bytes::from(
        (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect::<Vec<_>>(),
    );
    let b = Bytes::from_static(b"second request");
    let mut expected = a.to_vec();
    expected.extend_from_slice(&b);
    (a, b, expected)
}
