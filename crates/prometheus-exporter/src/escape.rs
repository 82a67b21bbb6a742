//! Escaping of label values and `# HELP` text. Every series carries a few label values, so this
//! runs ~1M times per 100k-series scrape: short values are checked a word at a time and copied
//! whole when clean (the common case); otherwise `memchr` finds each byte to escape and the
//! clean runs between them are copied whole, rather than looking at the value byte by byte.

/// Appends a label value escaped for both formats: `\` → `\\`, `"` → `\"`, newline → `\n`.
/// Other UTF-8 passes through.
pub(crate) fn push_label_value(out: &mut Vec<u8>, value: &str) {
    push_escaped(out, value.as_bytes(), true);
}

/// Appends `bytes` with `\` and newline escaped, and `"` too when `quote` (label values and
/// OpenMetrics `# HELP`; text 0.0.4 `# HELP` leaves quotes alone).
pub(crate) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8], quote: bool) {
    // Most label values are short and clean: a few word loads show it, and they go in whole.
    if quote && bytes.len() < SHORT_VALUE && !short_has_quoted_special(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut rest = bytes;
    loop {
        let next = if quote {
            memchr::memchr3(b'\\', b'"', b'\n', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(at) = next else {
            out.extend_from_slice(rest);
            return;
        };
        let (clean, tail) = rest.split_at(at);
        out.extend_from_slice(clean);
        let Some((&special, tail)) = tail.split_first() else {
            return;
        };
        out.extend_from_slice(match special {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = tail;
    }
}

/// Below this length word loads beat `memchr3`'s call and setup (most label values are
/// names, kinds and status codes of 4–30 bytes).
const SHORT_VALUE: usize = 32;

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// Non-zero exactly when some byte of `word` is `\`, `"` or newline (the classic
/// "has a zero byte" test on `word` XOR each of them).
#[inline]
fn quoted_special_bits(word: u64) -> u64 {
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\n')))
}

/// Whether `bytes` (shorter than [`SHORT_VALUE`]) holds a byte to escape. Whole words, then
/// one word ending at the last byte (overlapping bytes already seen, which is harmless for a
/// yes/no answer), so there is no byte-at-a-time tail.
#[inline]
fn short_has_quoted_special(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let bits = if n >= 8 {
        let (words, _) = bytes.as_chunks::<8>();
        let last = bytes.last_chunk::<8>().copied().unwrap_or_default();
        words.iter().fold(0, |acc, w| {
            acc | quoted_special_bits(u64::from_le_bytes(*w))
        }) | quoted_special_bits(u64::from_le_bytes(last))
    } else if n >= 4 {
        // Zero bytes are not special, so widening is harmless.
        let head = bytes.first_chunk::<4>().copied().unwrap_or_default();
        let tail = bytes.last_chunk::<4>().copied().unwrap_or_default();
        let word = u64::from(u32::from_le_bytes(head)) | u64::from(u32::from_le_bytes(tail)) << 32;
        quoted_special_bits(word)
    } else {
        return bytes.iter().any(|b| matches!(b, b'\\' | b'"' | b'\n'));
    };
    bits != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious byte-at-a-time version the fast path must agree with.
    fn reference(bytes: &[u8], quote: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'"' if quote => out.extend_from_slice(b"\\\""),
                _ => out.push(b),
            }
        }
        out
    }

    fn check(value: &str) {
        for quote in [true, false] {
            // Appends after existing content, as the renderer does.
            let mut out = b"prefix".to_vec();
            push_escaped(&mut out, value.as_bytes(), quote);
            let mut want = b"prefix".to_vec();
            want.extend_from_slice(&reference(value.as_bytes(), quote));
            assert!(out == want, "{value:?} quote={quote}");
        }
        let mut out = Vec::new();
        push_label_value(&mut out, value);
        assert!(out == reference(value.as_bytes(), true), "{value:?}");
    }

    #[test]
    fn escapes_match_the_reference() {
        let long_clean = "GET /api/v1/resource-".repeat(40);
        let long_tail = format!("{long_clean}\"");
        let long_head = format!("\\{long_clean}");
        let long_middle = format!("{long_clean}\n{long_clean}");
        let cases = [
            "",
            "plain",
            "\\",
            "\"",
            "\n",
            "\\\\",
            "\"\"\"",
            "\n\n",
            "\\start",
            "\"start",
            "\nstart",
            "mid\\dle",
            "mid\"dle",
            "mid\nd le",
            "end\\",
            "end\"",
            "end\n",
            "a\"b\\c\nd",
            "\\\"\n",
            "all \\ \" \n at\\once\"\n",
            "\r\t other control bytes pass",
            "[]!#\t\x0b\\[]!#\t\x0b\"[]!#\t\x0b\n",
            "ключ \"значение\"\n",
            "日本語\\テキスト",
            "emoji 🦀\n🦀\"",
            long_clean.as_str(),
            long_tail.as_str(),
            long_head.as_str(),
            long_middle.as_str(),
        ];
        for value in cases {
            check(value);
        }
    }

    #[test]
    fn every_byte_value_at_every_position() {
        // Neighbours of the special bytes (`[`, `]`, `!`, `#`, tab, 0x0b) and bytes with the
        // high bit set are where a word-at-a-time scan goes wrong.
        for len in [1usize, 2, 3, 4, 5, 7, 8, 9, 16, 24, 31, 32, 40] {
            for at in 0..len {
                for (b, quote_last) in (0..=u8::MAX).flat_map(|b| [(b, false), (b, true)]) {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    if quote_last {
                        bytes.push(b'"');
                    }
                    for quote in [true, false] {
                        let mut out = Vec::new();
                        push_escaped(&mut out, &bytes, quote);
                        assert!(out == reference(&bytes, quote), "{bytes:?} {quote}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_position_of_every_special_byte() {
        // Lengths around the vector widths memchr uses (16, 32, 64 bytes) and past them.
        for len in [1usize, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100] {
            for at in 0..len {
                for special in ['\\', '"', '\n'] {
                    let head = "a".repeat(at);
                    let tail = "é".repeat((len - at) / 2);
                    check(&format!("{head}{special}{tail}"));
                    check(&format!("{head}{special}{tail}{special}"));
                }
            }
        }
    }
}
