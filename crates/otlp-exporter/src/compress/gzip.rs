//! gzip as both exporters send it: libdeflate, compressing the whole request at once.
//!
//! The exporters always hold the whole request before compressing it, which is exactly what
//! libdeflate is built for; at otelcol's default level (6) it compresses the load's requests
//! faster than flate2 (zlib-rs or zlib-ng) streaming, for about 2% more bytes (BENCHMARKS.md,
//! "gzip: backends at level 6"). Its levels 1 to 9 are what `compression_params.level`
//! takes, as otelcol's zlib levels; libdeflate's 10 to 12 are not offered.

use std::cell::RefCell;

use bytes::Bytes;
use libdeflater::{CompressionLvl, Compressor};

/// The levels a config can ask for (zlib's, which otelcol takes).
const LEVELS: usize = 9;

#[derive(Debug, thiserror::Error)]
pub(crate) enum GzipError {
    #[error("`{0}` is not a gzip level (1 to 9)")]
    Level(u32),
    #[error("libdeflate: {0}")]
    Compress(#[from] libdeflater::CompressionError),
}

thread_local! {
    /// One compressor per level and thread: allocating one (hundreds of KiB of match-finder
    /// tables) costs more than compressing a small request with it.
    static COMPRESSORS: RefCell<[Option<Compressor>; LEVELS]> =
        const { RefCell::new([const { None }; LEVELS]) };
}

/// `parts` concatenated and gzipped at `level` (1..=9), after `head` zero bytes the caller
/// fills in (the gRPC message prefix): one buffer, sized to what it holds.
pub(crate) fn compress(parts: &[&Bytes], level: u32, head: usize) -> Result<Vec<u8>, GzipError> {
    let index = usize::try_from(level)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|i| *i < LEVELS)
        .ok_or(GzipError::Level(level))?;
    let input = super::whole(parts);
    COMPRESSORS.with_borrow_mut(|compressors| {
        let compressor = match &mut compressors[index] {
            Some(c) => c,
            slot => {
                let lvl = i32::try_from(level)
                    .ok()
                    .and_then(|l| CompressionLvl::new(l).ok())
                    .ok_or(GzipError::Level(level))?;
                slot.insert(Compressor::new(lvl))
            }
        };
        let bound = compressor.gzip_compress_bound(input.len());
        let mut out = vec![0u8; head + bound];
        let len = compressor.gzip_compress(&input, &mut out[head..])?;
        out.truncate(head + len);
        // The message is kept for every attempt of its request: hand back the worst-case
        // room.
        out.shrink_to_fit();
        Ok(out)
    })
}

/// The decompressed bytes of one gzip member, for the tests of whatever sends gzip.
#[cfg(test)]
pub(crate) fn gunzip(b: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_is_one_gzip_member_of_the_concatenated_parts() {
        let (a, b, expected) = crate::compress::two_parts();
        for level in 1..=9 {
            let out = compress(&[&a, &b], level, 3).expect("compresses");
            assert_eq!(out[..3], [0, 0, 0], "the head is left for the caller");
            let gz = &out[3..];
            assert_eq!(gz[..3], [0x1f, 0x8b, 8], "a gzip member, deflate");
            assert_eq!(gunzip(gz), expected, "level {level}");
            // flate2's single-member reader stops at the member's end: nothing may follow.
            let mut decoder = flate2::bufread::GzDecoder::new(gz);
            std::io::copy(&mut decoder, &mut std::io::sink()).expect("valid");
            assert!(decoder.into_inner().is_empty(), "level {level}: one member");
            assert!(gz.len() < expected.len() / 4, "level {level} compressed");
            assert_eq!(out.capacity(), out.len(), "no worst-case room kept");
        }
    }

    #[test]
    fn one_part_and_no_parts() {
        let a = Bytes::from_static(b"only one request, compressed in place");
        assert_eq!(gunzip(&compress(&[&a], 6, 0).expect("one")), a.to_vec());
        assert!(gunzip(&compress(&[], 6, 0).expect("empty")).is_empty());
    }

    #[test]
    fn levels_outside_zlibs_are_refused() {
        let a = Bytes::from_static(b"x");
        for level in [0, 10, 12, u32::MAX] {
            assert!(matches!(
                compress(&[&a], level, 0),
                Err(GzipError::Level(l)) if l == level
            ));
        }
    }
}
