//! gzip request bodies and gRPC messages, inflated under a cap as Go's `gzip.Reader` reads
//! them, keeping the client's bytes when an exporter could send them on as they came
//! (`Batch::gzip_frame`).

use std::io::Read;

use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    #[error("decompressed data is over the size limit")]
    TooLarge,
    #[error("{0}")]
    Corrupt(std::io::Error),
}

/// An inflated gzip stream.
#[derive(Debug)]
pub struct Inflated {
    /// What follows the caller's head in `out`: the decompressed bytes.
    pub out: Vec<u8>,
    /// A copy of the compressed input, when it is one gzip member that the decoder read to
    /// its last byte (header, deflate stream, checked CRC and length: nothing before or after
    /// it that the output does not account for), and no larger than what it decompressed to.
    /// A copy, because the input is often a slice of a larger read buffer that holding it
    /// would keep alive.
    pub member: Option<Bytes>,
}

/// Inflates `compressed` (one or more gzip members, as Go's `gzip.Reader` reads them) after
/// the `head` bytes already in `out`: reading stops one byte past `limit` decompressed bytes,
/// so a bomb costs at most `limit` bytes of memory.
pub fn gunzip(compressed: &[u8], limit: usize, head: Vec<u8>) -> Result<Inflated, GunzipError> {
    let start = head.len();
    let mut out = head;
    out.reserve(compressed.len().saturating_mul(4).min(limit));
    let cap = (limit as u64).saturating_add(1);
    // `bufread` consumes exactly the member, so what it leaves tells a single member apart.
    let mut first = flate2::bufread::GzDecoder::new(compressed).take(cap);
    first.read_to_end(&mut out).map_err(GunzipError::Corrupt)?;
    if out.len() - start > limit {
        return Err(GunzipError::TooLarge);
    }
    let rest = first.into_inner().into_inner();
    if rest.is_empty() {
        let inflated = out.len() - start;
        let member = (compressed.len() <= inflated).then(|| Bytes::copy_from_slice(compressed));
        return Ok(Inflated { out, member });
    }
    // More members: decoded as one stream (the rare client that sends them), never forwarded
    // as they came, since not every receiver reads past the first member.
    let left = limit - (out.len() - start);
    let cap = (left as u64).saturating_add(1);
    let before = out.len();
    flate2::read::MultiGzDecoder::new(rest)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() - before > left {
        return Err(GunzipError::TooLarge);
    }
    Ok(Inflated { out, member: None })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn data() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| (i % 13).to_le_bytes())
            .collect()
    }

    #[test]
    fn one_member_is_kept_as_it_came() {
        for level in [1, 6, 9] {
            let packed = gzip(&data(), level);
            let got = gunzip(&packed, 1 << 20, Vec::new()).expect("valid");
            assert_eq!(got.out, data());
            assert_eq!(got.member.as_deref(), Some(&packed[..]), "level {level}");
        }
    }

    #[test]
    fn the_head_is_left_in_front() {
        let packed = gzip(b"abc", 6);
        let got = gunzip(&packed, 100, vec![9; 5]).expect("valid");
        assert_eq!(got.out, b"\x09\x09\x09\x09\x09abc");
        // 23 bytes of gzip for 3 of data: not worth sending on.
        assert!(got.member.is_none());
    }

    #[test]
    fn several_members_are_read_whole_and_not_kept() {
        let (a, b) = (data(), b"and a second member".to_vec());
        let mut packed = gzip(&a, 6);
        packed.extend(gzip(&b, 1));
        let got = gunzip(&packed, 1 << 20, Vec::new()).expect("valid");
        assert_eq!(got.out, [a, b].concat());
        assert!(got.member.is_none());
    }

    #[test]
    fn small_members_are_all_read() {
        let mut packed = gzip(b"first half ", 6);
        packed.extend(gzip(b"second half", 6));
        let got = gunzip(&packed, 1 << 20, vec![0; 5]).expect("valid");
        assert_eq!(got.out, b"\0\0\0\0\0first half second half");
    }

    #[test]
    fn empty_and_bare_header_inputs_are_answered_as_by_the_multi_member_reader() {
        let header_only = &gzip(b"", 6)[..10];
        for input in [&b""[..], header_only, b"\x1f"] {
            let mut out = Vec::new();
            let before = flate2::read::MultiGzDecoder::new(input).read_to_end(&mut out);
            let now = gunzip(input, 100, Vec::new());
            assert_eq!(before.is_ok(), now.is_ok(), "{input:?}: {now:?}");
            if let Ok(now) = now {
                assert_eq!(now.out, out);
                assert!(now.member.is_none(), "nothing worth sending on");
            }
        }
    }

    #[test]
    fn anything_after_the_member_is_refused() {
        let mut packed = gzip(&data(), 6);
        packed.extend_from_slice(b"junk");
        assert!(matches!(
            gunzip(&packed, 1 << 20, Vec::new()),
            Err(GunzipError::Corrupt(_))
        ));
    }

    #[test]
    fn a_wrong_checksum_or_truncation_is_refused() {
        let packed = gzip(&data(), 6);
        let mut bad_crc = packed.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert!(matches!(
            gunzip(&bad_crc, 1 << 20, Vec::new()),
            Err(GunzipError::Corrupt(_))
        ));
        assert!(matches!(
            gunzip(&packed[..n - 3], 1 << 20, Vec::new()),
            Err(GunzipError::Corrupt(_))
        ));
    }

    #[test]
    fn the_cap_holds_for_one_member_and_for_several() {
        let len = data().len();
        let packed = gzip(&data(), 6);
        assert!(gunzip(&packed, len, Vec::new()).is_ok(), "fits exactly");
        assert!(matches!(
            gunzip(&packed, len - 1, Vec::new()),
            Err(GunzipError::TooLarge)
        ));
        let mut two = packed.clone();
        two.extend_from_slice(&packed);
        assert!(gunzip(&two, 2 * len, Vec::new()).is_ok(), "fits exactly");
        assert!(matches!(
            gunzip(&two, 2 * len - 1, Vec::new()),
            Err(GunzipError::TooLarge)
        ));
        // The head does not count against the cap.
        assert!(gunzip(&packed, len, vec![0; 5]).is_ok());
    }
}
