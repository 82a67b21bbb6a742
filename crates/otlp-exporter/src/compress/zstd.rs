//! zstd as both exporters send it: one frame per message, compressed whole by a context kept
//! per thread.
//!
//! A new streaming encoder per message allocated and set up the context's tables (about a
//! megabyte at level 3) and its stream buffers every time: a fifth of the cost of
//! compressing one of the load's requests (BENCHMARKS.md, "zstd: a context per thread").
//! The frame records the content size, as the streaming encoder did with the size pledged.

use std::cell::RefCell;
use std::io;

use bytes::Bytes;

thread_local! {
    /// The thread's context and the level it is set to. A context changes level in place
    /// (its tables grow if the new level wants larger ones), so one per thread serves every
    /// exporter running on it.
    static CONTEXT: RefCell<Option<(i32, ::zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// `parts` concatenated and compressed at `level` into one zstd frame, after `head` zero
/// bytes the caller fills in (the gRPC message prefix): one buffer, sized to what it holds.
pub(crate) fn compress(parts: &[&Bytes], level: i32, head: usize) -> io::Result<Vec<u8>> {
    let input = super::whole(parts);
    CONTEXT.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some((set, c)) if *set == level => c,
            Some((set, c)) => {
                c.set_compression_level(level)?;
                *set = level;
                c
            }
            None => {
                &mut slot
                    .insert((level, ::zstd::bulk::Compressor::new(level)?))
                    .1
            }
        };
        let mut out = Vec::with_capacity(head + ::zstd::zstd_safe::compress_bound(input.len()));
        out.resize(head, 0);
        let mut cursor = io::Cursor::new(out);
        cursor.set_position(head as u64);
        compressor.compress_to_buffer(&input, &mut cursor)?;
        let mut out = cursor.into_inner();
        // The message is kept for every attempt of its request: hand back the worst-case
        // room.
        out.shrink_to_fit();
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unzstd(b: &[u8]) -> Vec<u8> {
        ::zstd::stream::decode_all(b).expect("valid zstd")
    }

    #[test]
    fn one_frame_of_the_concatenated_parts_with_its_size_at_any_level() {
        let (a, b, expected) = crate::compress::two_parts();
        // Levels change back and forth on the one context of this thread.
        for level in [3, 1, -5, 19, 3, 0, 1] {
            let out = compress(&[&a, &b], level, 5).expect("compresses");
            assert_eq!(out[..5], [0; 5], "the head is left for the caller");
            let frame = &out[5..];
            assert_eq!(unzstd(frame), expected, "level {level}");
            assert_eq!(
                ::zstd::zstd_safe::get_frame_content_size(frame)
                    .ok()
                    .flatten(),
                Some(expected.len() as u64),
                "level {level}: the frame records its size"
            );
            assert_eq!(
                ::zstd::zstd_safe::find_frame_compressed_size(frame).ok(),
                Some(frame.len()),
                "level {level}: one frame, nothing after it"
            );
            assert!(frame.len() < expected.len() / 4, "level {level} compressed");
            assert_eq!(out.capacity(), out.len(), "no worst-case room kept");
        }
    }

    #[test]
    fn a_level_is_what_zstd_makes_of_it() {
        let a = Bytes::from(b"abcdefgh".repeat(10_000));
        for level in [1, 3, 9] {
            let expected = ::zstd::bulk::compress(&a, level).expect("reference");
            assert_eq!(
                compress(&[&a], level, 0).expect("ours"),
                expected,
                "level {level}"
            );
        }
    }

    #[test]
    fn one_part_and_no_parts() {
        let a = Bytes::from_static(b"only one request, compressed in place");
        assert_eq!(unzstd(&compress(&[&a], 3, 0).expect("one")), a.to_vec());
        assert!(unzstd(&compress(&[], 3, 0).expect("empty")).is_empty());
    }
}
