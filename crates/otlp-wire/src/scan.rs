//! Key-only scans of a message already validated: where a caller wants one field, the other
//! fields are stepped over by their lengths without being turned into values.

/// What [`last_len`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastLen<'a> {
    /// The payload of the field's last occurrence (protobuf: the last one wins).
    Found(&'a [u8]),
    /// The message has no such field.
    Absent,
    /// Groups, keys or lengths this scan does not step over (never for what OTLP encoders
    /// write): the caller falls back to its general field reader.
    Unusual,
}

/// One varint of at most two bytes (keys up to field 2047, lengths under 16 KiB) at `pos`:
/// the value and the bytes it took, or `None` for anything longer.
#[inline(always)]
fn short_varint(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let b0 = *buf.get(pos)?;
    if b0 < 0x80 {
        return Some((usize::from(b0), 1));
    }
    let b1 = *buf.get(pos + 1)?;
    (b1 < 0x80).then_some((usize::from(b0 & 0x7f) | (usize::from(b1) << 7), 2))
}

/// The last occurrence of length-delimited field `tag` in `message`, reading only keys and
/// lengths. Offsets are checked once at the end: every step moves forward, so a scan that
/// lands exactly on the end has every payload it passed inside the message.
pub(crate) fn last_len(message: &[u8], tag: u32) -> LastLen<'_> {
    let mut pos = 0;
    let mut found = None;
    // The key of `tag` as one byte, when it fits (fields 1 to 15).
    let wanted = (tag < 16).then_some((tag << 3 | 2) as u8);
    loop {
        // Most fields of a span are length-delimited with a one-byte key and a one-byte
        // length (attributes): stepped over here, two bytes read each.
        while let Some(&[key, len]) = message.get(pos..pos + 2) {
            if key & 0x87 != 2 || len >= 0x80 {
                break;
            }
            let start = pos + 2;
            pos = start + usize::from(len);
            if Some(key) == wanted {
                found = Some((start, pos));
            }
        }
        let Some(&first) = message.get(pos) else {
            break;
        };
        let key = if first < 0x80 {
            pos += 1;
            usize::from(first)
        } else {
            let Some((key, n)) = short_varint(message, pos) else {
                return LastLen::Unusual;
            };
            pos += n;
            key
        };
        // Two-byte keys or lengths.
        if key & 7 == 2 {
            let Some((len, n)) = short_varint(message, pos) else {
                return LastLen::Unusual;
            };
            let start = pos + n;
            pos = start + len;
            if key >> 3 == tag as usize {
                found = Some((start, pos));
            }
            continue;
        }
        match key & 7 {
            0 => loop {
                // A varint ends at its first byte below 0x80.
                let Some(&byte) = message.get(pos) else {
                    return LastLen::Unusual;
                };
                pos += 1;
                if byte < 0x80 {
                    break;
                }
            },
            1 => pos += 8,
            5 => pos += 4,
            _ => return LastLen::Unusual,
        }
    }
    if pos != message.len() {
        return LastLen::Unusual;
    }
    match found.and_then(|(start, end)| message.get(start..end)) {
        Some(payload) => LastLen::Found(payload),
        None => LastLen::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_occurrence_wins_and_other_wire_types_are_stepped_over() {
        // 5:"ab", 6:varint 300, 7:fixed64, 9:"x", 16:fixed32, 5:"cd"
        let mut m = vec![0x2a, 2, b'a', b'b', 0x30, 0xac, 0x02, 0x39];
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&[0x4a, 1, b'x', 0x85, 0x01, 1, 0, 0, 0, 0x2a, 2, b'c', b'd']);
        assert_eq!(last_len(&m, 5), LastLen::Found(b"cd"));
        assert_eq!(last_len(&m, 9), LastLen::Found(b"x"));
        assert_eq!(last_len(&m, 3), LastLen::Absent);
        assert_eq!(last_len(&[], 5), LastLen::Absent);
        // Two-byte lengths and keys take the general path; the last occurrence still wins.
        let mut long = vec![0x2a, 0x80, 0x01];
        long.extend_from_slice(&[b'z'; 128]);
        long.extend_from_slice(&[0x82, 0x01, 1, b'q']);
        assert_eq!(last_len(&long, 5), LastLen::Found(&[b'z'; 128][..]));
        assert_eq!(last_len(&long, 16), LastLen::Found(b"q"));
        long.extend_from_slice(&[0x2a, 1, b'y']);
        assert_eq!(last_len(&long, 5), LastLen::Found(b"y"));
    }

    #[test]
    fn what_it_cannot_step_over_is_unusual() {
        // A group, a length past the end, a truncated fixed64, a three-byte length.
        for m in [
            &[0x0b, 0x0c][..],
            &[0x2a, 5, b'a'],
            &[0x39, 0, 0],
            &[0x2a, 0x80, 0x80, 0x01],
        ] {
            assert_eq!(last_len(m, 5), LastLen::Unusual, "{m:?}");
        }
    }
}
