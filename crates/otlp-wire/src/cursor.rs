//! Low-level protobuf wire reading with prost's exact acceptance rules.
//!
//! Every read is bounds-checked against the end of the enclosing message, so a
//! value can never run into the bytes of the next sibling. prost reads past a
//! nested message's end and only then notices the overrun; both reject the
//! input, so the accepted language is the same.

use crate::error::{WireError, WireErrorKind, WireType};
use crate::RECURSION_LIMIT;

/// One decoded field value. Length-delimited payloads are returned as a
/// sub-cursor so their offsets stay absolute for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(Cursor<'a>),
    Fixed32(u32),
    /// Not consumed: the caller decides whether to skip the group or reject it.
    StartGroup,
    EndGroup,
}

impl Value<'_> {
    pub(crate) fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Len(_) => WireType::Len,
            Value::Fixed32(_) => WireType::Fixed32,
            Value::StartGroup => WireType::StartGroup,
            Value::EndGroup => WireType::EndGroup,
        }
    }
}

/// A window `[pos, end)` over a byte buffer. Invariant: `pos <= end <= buf.len()`
/// (every constructor and mutation keeps it, and all reads use `get`, so a broken
/// invariant could only end iteration early, never panic).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor {
            buf,
            pos: 0,
            end: buf.len(),
        }
    }

    pub(crate) fn empty() -> Self {
        Cursor::new(&[])
    }

    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes `[from, to)` of the underlying buffer (absolute offsets, as [`Self::pos`]);
    /// empty when out of range.
    #[inline]
    pub(crate) fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.buf.get(from..to).unwrap_or(&[])
    }

    /// The unread part of the window.
    #[inline]
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    /// The payload of the next field when it is field `tag` (below 16) with a one-byte length,
    /// as repeated message fields nearly always are; `None` (nothing consumed) otherwise.
    #[inline(always)]
    pub(crate) fn next_short_len_field(&mut self, tag: u32) -> Option<&'a [u8]> {
        let window = self.buf.get(self.pos..self.end)?;
        let [key, len, rest @ ..] = window else {
            return None;
        };
        if u32::from(*key) != (tag << 3 | 2) || *len >= 0x80 {
            return None;
        }
        let payload = rest.get(..usize::from(*len))?;
        self.pos += 2 + payload.len();
        Some(payload)
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    #[inline]
    fn err(&self, kind: WireErrorKind, at: usize) -> WireError {
        WireError::new(kind, at)
    }

    /// LEB128 varint, at most 10 bytes, the 10th byte at most 1 (prost's
    /// overflow rule, taken from protobuf-go's `ConsumeVarint`).
    #[inline(always)]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        // Fast paths: one- and two-byte varints are nearly all of them (tags, lengths of
        // strings and small messages, enums).
        let window = self.buf.get(self.pos..self.end).unwrap_or(&[]);
        if let Some(&b0) = window.first() {
            if b0 < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b0));
            }
            if let Some(&b1) = window.get(1) {
                if b1 < 0x80 {
                    self.pos += 2;
                    return Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
                }
            }
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10u32 {
            if self.pos >= self.end {
                return Err(self.err(WireErrorKind::Truncated, start));
            }
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err(WireErrorKind::Truncated, start));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b >= 0x02 {
                    return Err(self.err(WireErrorKind::VarintOverflow, start));
                }
                return Ok(value);
            }
        }
        Err(self.err(WireErrorKind::VarintOverflow, start))
    }

    #[inline(always)]
    fn take(&mut self, len: usize, at: usize) -> Result<Cursor<'a>, WireError> {
        if len > self.remaining() {
            return Err(self.err(WireErrorKind::Truncated, at));
        }
        let sub = Cursor {
            buf: self.buf,
            pos: self.pos,
            end: self.pos + len,
        };
        self.pos += len;
        Ok(sub)
    }

    #[inline(always)]
    fn fixed<const N: usize>(&mut self, at: usize) -> Result<[u8; N], WireError> {
        let bytes = self
            .buf
            .get(self.pos..self.end)
            .and_then(|w| w.first_chunk::<N>())
            .copied()
            .ok_or_else(|| self.err(WireErrorKind::Truncated, at))?;
        self.pos += N;
        Ok(bytes)
    }

    /// Reads a key and its value (except for groups, which stay unconsumed).
    #[inline(always)]
    pub(crate) fn next_field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        if let Some(field) = self.next_field_fast() {
            return Ok(field);
        }
        self.next_field_general()
    }

    /// The common shapes, decided from the first bytes without any loop: a one-byte key
    /// followed by a one-byte varint, a one-byte length, or a fixed64. `None` means "use the
    /// general path", which also produces every error.
    #[inline(always)]
    fn next_field_fast(&mut self) -> Option<(u32, Value<'a>)> {
        let window = self.buf.get(self.pos..self.end)?;
        let [key, b1, ..] = *window else {
            return None;
        };
        // One-byte key with a non-zero field number.
        if !(8..0x80).contains(&key) {
            return self.next_field_two_byte_key(window);
        }
        let tag = u32::from(key >> 3);
        match key & 7 {
            0 if b1 < 0x80 => {
                self.pos += 2;
                Some((tag, Value::Varint(u64::from(b1))))
            }
            2 => {
                // Lengths below 16 KiB: one or two bytes.
                let (len, header) = if b1 < 0x80 {
                    (usize::from(b1), 2)
                } else {
                    let b2 = *window.get(2)?;
                    if b2 >= 0x80 {
                        return None;
                    }
                    (usize::from(b1 & 0x7f) | (usize::from(b2) << 7), 3)
                };
                let start = self.pos + header;
                let end = start + len;
                if end > self.end {
                    return None;
                }
                self.pos = end;
                Some((
                    tag,
                    Value::Len(Cursor {
                        buf: self.buf,
                        pos: start,
                        end,
                    }),
                ))
            }
            1 => {
                let bytes = window.get(1..9)?.first_chunk::<8>()?;
                self.pos += 9;
                Some((tag, Value::Fixed64(u64::from_le_bytes(*bytes))))
            }
            _ => None,
        }
    }

    /// A two-byte key (fields 16 to 2047: a span's `flags`) followed by a fixed32, the one
    /// such field every span carries; anything else takes the general path.
    #[inline(always)]
    fn next_field_two_byte_key(&mut self, window: &[u8]) -> Option<(u32, Value<'a>)> {
        let [k0, k1, v0, v1, v2, v3, ..] = *window else {
            return None;
        };
        // A zero second byte would be a non-minimal key for a field below 16: left to the
        // general path, which decides as prost does.
        if k0 < 0x80 || k1 == 0 || k1 >= 0x80 || k0 & 7 != 5 {
            return None;
        }
        let tag = (u32::from(k0 & 0x7f) | (u32::from(k1) << 7)) >> 3;
        self.pos += 6;
        Some((tag, Value::Fixed32(u32::from_le_bytes([v0, v1, v2, v3]))))
    }

    #[inline(never)]
    fn next_field_general(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let key_at = self.pos;
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(self.err(WireErrorKind::InvalidKey(key), key_at));
        }
        let tag = (key as u32) >> 3;
        if tag == 0 {
            return Err(self.err(WireErrorKind::InvalidTag, key_at));
        }
        let value_at = self.pos;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.fixed::<8>(value_at)?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len)
                    .map_err(|_| self.err(WireErrorKind::Truncated, value_at))?;
                let at = self.pos;
                Value::Len(self.take(len, at)?)
            }
            3 => Value::StartGroup,
            4 => Value::EndGroup,
            5 => Value::Fixed32(u32::from_le_bytes(self.fixed::<4>(value_at)?)),
            other => {
                return Err(self.err(WireErrorKind::InvalidWireType(other as u8), key_at));
            }
        };
        Ok((tag, value))
    }

    /// Skips an unknown field exactly like prost's `skip_field`: it needs one
    /// level of recursion budget even for scalars, groups nest, and an end-group
    /// marker outside a group is an error.
    pub(crate) fn skip_unknown(
        &mut self,
        tag: u32,
        value: Value<'a>,
        depth_left: u32,
        at: usize,
    ) -> Result<(), WireError> {
        if depth_left == 0 {
            return Err(self.err(WireErrorKind::TooDeep, at));
        }
        match value {
            Value::StartGroup => self.skip_group(tag, depth_left),
            Value::EndGroup => Err(self.err(WireErrorKind::UnexpectedEndGroup, at)),
            _ => Ok(()),
        }
    }

    /// Skips the body of a group whose start-group key was just read.
    pub(crate) fn skip_group(&mut self, tag: u32, depth_left: u32) -> Result<(), WireError> {
        loop {
            let at = self.pos;
            let (inner_tag, value) = self.next_field()?;
            if let Value::EndGroup = value {
                if inner_tag != tag {
                    return Err(self.err(WireErrorKind::UnexpectedEndGroup, at));
                }
                return Ok(());
            }
            let inner_depth = depth_left.saturating_sub(1);
            self.skip_unknown(inner_tag, value, inner_depth, at)?;
        }
    }

    /// Next field for the lenient re-scans done after validation: skips groups,
    /// returns `None` at the end or (never for validated input) on malformed bytes.
    #[inline(always)]
    pub(crate) fn next_lenient(&mut self) -> Option<(u32, Value<'a>)> {
        if let Some(field) = self.next_field_fast() {
            return Some(field);
        }
        self.next_lenient_general()
    }

    #[inline(never)]
    fn next_lenient_general(&mut self) -> Option<(u32, Value<'a>)> {
        loop {
            if self.at_end() {
                return None;
            }
            match self.next_field() {
                Ok((tag, Value::StartGroup)) => {
                    if self.skip_group(tag, RECURSION_LIMIT).is_err() {
                        self.pos = self.end;
                        return None;
                    }
                }
                Ok(field) => return Some(field),
                Err(_) => {
                    // Stop rather than guess: views only exist for validated bytes.
                    self.pos = self.end;
                    return None;
                }
            }
        }
    }
}

/// Error for a known field that arrived with wire type `actual` instead of `expected`.
#[cold]
pub(crate) fn wrong_type(expected: WireType, actual: WireType, at: usize) -> WireError {
    WireError::new(WireErrorKind::UnexpectedWireType { expected, actual }, at)
}
