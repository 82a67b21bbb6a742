//! Validation of attribute trees: `KeyValue`, `AnyValue`, `ArrayValue`, `KeyValueList`.
//!
//! Attributes are the bulk of most requests, so the shape nearly every encoder writes is
//! recognised from its bytes first; everything else goes through the general readers, which
//! decide exactly as prost does.

use super::fields::{Elements, Fields};
use crate::cursor::Cursor;
use crate::error::{WireError, WireType};

/// Whether a `KeyValue` has the shape nearly every encoder writes and is valid: an ASCII
/// key, then at most one `value` holding at most one scalar (ASCII string, bool, int,
/// double), all with one-byte lengths. `false` only means "take the general path", which
/// decides (and reports errors) exactly as prost does.
#[inline(always)]
fn key_value_is_simple(kv: &[u8], r: u32) -> bool {
    let [0x0a, klen, rest @ ..] = kv else {
        return false;
    };
    let Some((key, rest)) = rest.split_at_checked(usize::from(*klen)) else {
        return false;
    };
    if *klen >= 0x80 || !short_is_ascii(key) {
        return false;
    }
    match rest {
        [] => true,
        // The value is a nested message: it needs one level of recursion budget.
        [0x12, vlen, value @ ..] if *vlen < 0x80 && value.len() == usize::from(*vlen) && r > 0 => {
            any_value_is_simple(value)
        }
        _ => false,
    }
}

#[inline(always)]
fn any_value_is_simple(v: &[u8]) -> bool {
    match v {
        [] => true,
        [0x0a, slen, s @ ..] => *slen < 0x80 && s.len() == usize::from(*slen) && short_is_ascii(s),
        [0x10, b] => *b < 0x80,
        // int_value: the varint must end exactly at the end of the message.
        [0x18, rest @ ..] => match rest.split_last() {
            Some((last, init)) => *last < 0x80 && init.len() < 9 && init.iter().all(|b| *b >= 0x80),
            None => false,
        },
        [0x21, double @ ..] => double.len() == 8,
        _ => false,
    }
}

/// `<[u8]>::is_ascii` for the short strings of attributes (keys, most values), with loads
/// that overlap instead of a call and a tail loop; longer strings take the library's.
#[inline(always)]
fn short_is_ascii(s: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let len = s.len();
    if let (Some(head), Some(tail)) = (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        if len <= 16 {
            return (u64::from_ne_bytes(*head) | u64::from_ne_bytes(*tail)) & HIGH == 0;
        }
        return s.is_ascii();
    }
    if let (Some(head), Some(tail)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        return (u32::from_ne_bytes(*head) | u32::from_ne_bytes(*tail)) & 0x8080_8080 == 0;
    }
    s.iter().all(|b| *b < 0x80)
}

/// `KeyValue`. The usual shape is recognised inline, in the caller's loop over the
/// attributes: as a call, entering and leaving cost about what the check does.
#[inline(always)]
pub(super) fn key_value(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    if key_value_is_simple(c.rest(), r) {
        return Ok(());
    }
    key_value_general(c, r)
}

#[inline(never)]
fn key_value_general(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_string("key")?,
            2 => f.singular("value", any_value)?,
            3 => f.check_type(WireType::Varint, "key_strindex")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

/// `AnyValue` (log bodies; attribute values go through [`key_value`]).
pub(super) fn any_value(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => f.check_string("string_value")?,
            2 => f.check_type(WireType::Varint, "bool_value")?,
            3 => f.check_type(WireType::Varint, "int_value")?,
            4 => f.check_type(WireType::Fixed64, "double_value")?,
            5 => f.singular("array_value", array_value)?,
            6 => f.singular("kvlist_value", kvlist_value)?,
            7 => f.check_type(WireType::Len, "bytes_value")?,
            8 => f.check_type(WireType::Varint, "string_value_strindex")?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

fn array_value(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut values = Elements::new("values", "element");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => values.read::<true>(f, any_value)?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

fn kvlist_value(c: Cursor<'_>, r: u32) -> Result<(), WireError> {
    let mut values = Elements::new("values", "entry");
    let mut fields = Fields::new(c, r);
    while let Some(f) = fields.next_field()? {
        match f.tag {
            1 => values.read::<true>(f, |c, r| key_value(c, r))?,
            _ => fields.skip_unknown(f)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::short_is_ascii;

    #[test]
    fn short_is_ascii_sees_a_high_byte_anywhere() {
        for len in 0..40 {
            let mut bytes = vec![b'a'; len];
            assert!(short_is_ascii(&bytes), "{len} ASCII bytes");
            for at in 0..len {
                bytes[at] = 0x80;
                assert!(!short_is_ascii(&bytes), "high byte at {at} of {len}");
                bytes[at] = 0x7f;
                assert!(short_is_ascii(&bytes));
                bytes[at] = b'a';
            }
        }
    }
}
