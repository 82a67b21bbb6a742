//! Thrift's binary and compact protocols, read in place: the two encodings Jaeger clients
//! write (binary over HTTP and to the agent's port 6832, compact to 6831).
//!
//! Only what a Jaeger `Batch` needs is read; everything else is skipped by type, as Go's
//! generated code skips fields it does not know or whose type is not the expected one.

use std::fmt;

/// A field or element type (Thrift's `TType` numbering, which the binary protocol writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TType {
    Bool,
    Byte,
    Double,
    I16,
    I32,
    I64,
    String,
    Struct,
    Map,
    Set,
    List,
    Uuid,
}

impl TType {
    fn from_binary(id: u8) -> Result<Self, ThriftError> {
        Ok(match id {
            2 => Self::Bool,
            3 => Self::Byte,
            4 => Self::Double,
            6 => Self::I16,
            8 => Self::I32,
            10 => Self::I64,
            11 => Self::String,
            12 => Self::Struct,
            13 => Self::Map,
            14 => Self::Set,
            15 => Self::List,
            16 => Self::Uuid,
            other => return Err(ThriftError::new(format!("unknown data type {other}"))),
        })
    }

    fn from_compact(id: u8) -> Result<Self, ThriftError> {
        Ok(match id {
            1 | 2 => Self::Bool,
            3 => Self::Byte,
            4 => Self::I16,
            5 => Self::I32,
            6 => Self::I64,
            7 => Self::Double,
            8 => Self::String,
            9 => Self::List,
            10 => Self::Set,
            11 => Self::Map,
            12 => Self::Struct,
            13 => Self::Uuid,
            other => return Err(ThriftError::new(format!("unknown compact type {other}"))),
        })
    }
}

/// Why a body or packet is not a Thrift message Redline can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThriftError(pub String);

impl ThriftError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn eof() -> Self {
        Self::new("the data ends before the message does")
    }
}

impl fmt::Display for ThriftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Go's thrift library's default nesting limit.
const MAX_DEPTH: u32 = 64;

/// A message header: the method called.
pub(crate) struct MessageBegin<'a> {
    pub name: &'a [u8],
}

/// What both protocols give the `Batch` reader.
pub(crate) trait Protocol<'a> {
    fn message_begin(&mut self) -> Result<MessageBegin<'a>, ThriftError>;
    fn struct_begin(&mut self);
    fn struct_end(&mut self);
    /// The next field's type and id; `None` at the struct's end.
    fn field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError>;
    fn read_bool(&mut self) -> Result<bool, ThriftError>;
    fn read_byte(&mut self) -> Result<i8, ThriftError>;
    fn read_i16(&mut self) -> Result<i16, ThriftError>;
    fn read_i32(&mut self) -> Result<i32, ThriftError>;
    fn read_i64(&mut self) -> Result<i64, ThriftError>;
    fn read_double(&mut self) -> Result<f64, ThriftError>;
    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError>;
    fn read_uuid(&mut self) -> Result<&'a [u8], ThriftError>;
    /// A list's or set's element type and length.
    fn list_begin(&mut self) -> Result<(TType, usize), ThriftError>;
    /// A map's key type, value type and length.
    fn map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError>;

    /// Skips one value of type `ty`, nested at most [`MAX_DEPTH`] deep.
    fn skip(&mut self, ty: TType) -> Result<(), ThriftError> {
        self.skip_at(ty, 0)
    }

    fn skip_at(&mut self, ty: TType, depth: u32) -> Result<(), ThriftError> {
        if depth >= MAX_DEPTH {
            return Err(ThriftError::new("depth limit exceeded"));
        }
        match ty {
            TType::Bool => self.read_bool().map(drop),
            TType::Byte => self.read_byte().map(drop),
            TType::I16 => self.read_i16().map(drop),
            TType::I32 => self.read_i32().map(drop),
            TType::I64 => self.read_i64().map(drop),
            TType::Double => self.read_double().map(drop),
            TType::String => self.read_binary().map(drop),
            TType::Uuid => self.read_uuid().map(drop),
            TType::Struct => {
                self.struct_begin();
                while let Some((field, _)) = self.field_begin()? {
                    self.skip_at(field, depth + 1)?;
                }
                self.struct_end();
                Ok(())
            }
            TType::List | TType::Set => {
                let (elem, len) = self.list_begin()?;
                for _ in 0..len {
                    self.skip_at(elem, depth + 1)?;
                }
                Ok(())
            }
            TType::Map => {
                let (key, value, len) = self.map_begin()?;
                for _ in 0..len {
                    self.skip_at(key, depth + 1)?;
                    self.skip_at(value, depth + 1)?;
                }
                Ok(())
            }
        }
    }
}

/// A cursor over the bytes both protocols read from.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ThriftError> {
        let end = self.pos.checked_add(n).ok_or_else(ThriftError::eof)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(ThriftError::eof)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ThriftError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, ThriftError> {
        Ok(self.array::<1>()?[0])
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// A container length, refused when negative or longer than the data left could hold
    /// (each element takes at least one byte, except in the compact protocol's bool lists,
    /// which a Jaeger batch never has).
    fn length(&self, len: i64, what: &str) -> Result<usize, ThriftError> {
        let len = usize::try_from(len)
            .map_err(|_| ThriftError::new(format!("negative {what} length {len}")))?;
        if len > self.remaining() {
            return Err(ThriftError::new(format!(
                "{what} length {len} is longer than the data left ({} bytes)",
                self.remaining()
            )));
        }
        Ok(len)
    }
}

/// `TBinaryProtocol`: big-endian fixed-width numbers, length-prefixed strings.
pub(crate) struct Binary<'a>(Cursor<'a>);

impl<'a> Binary<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self(Cursor { buf, pos: 0 })
    }

    fn ttype(&mut self) -> Result<TType, ThriftError> {
        TType::from_binary(self.0.byte()?)
    }
}

const BINARY_VERSION_1: u32 = 0x8001_0000;
const BINARY_VERSION_MASK: u32 = 0xffff_0000;

impl<'a> Protocol<'a> for Binary<'a> {
    fn message_begin(&mut self) -> Result<MessageBegin<'a>, ThriftError> {
        let size = self.read_i32()?;
        if size < 0 {
            if (size as u32) & BINARY_VERSION_MASK != BINARY_VERSION_1 {
                return Err(ThriftError::new("bad version in the message header"));
            }
            let name = self.read_binary()?;
            self.read_i32()?;
            return Ok(MessageBegin { name });
        }
        // The old header without a version: the name's length comes first.
        let name = self.0.take(self.0.length(size.into(), "name")?)?;
        self.read_byte()?;
        self.read_i32()?;
        Ok(MessageBegin { name })
    }

    fn struct_begin(&mut self) {}

    fn struct_end(&mut self) {}

    fn field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        let ty = self.0.byte()?;
        if ty == 0 {
            return Ok(None);
        }
        let ty = TType::from_binary(ty)?;
        Ok(Some((ty, self.read_i16()?)))
    }

    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        Ok(self.0.byte()? == 1)
    }

    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(i8::from_be_bytes(self.0.array()?))
    }

    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        Ok(i16::from_be_bytes(self.0.array()?))
    }

    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        Ok(i32::from_be_bytes(self.0.array()?))
    }

    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        Ok(i64::from_be_bytes(self.0.array()?))
    }

    fn read_double(&mut self) -> Result<f64, ThriftError> {
        Ok(f64::from_bits(u64::from_be_bytes(self.0.array()?)))
    }

    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError> {
        let len = self.read_i32()?;
        let len = self.0.length(len.into(), "string")?;
        self.0.take(len)
    }

    fn read_uuid(&mut self) -> Result<&'a [u8], ThriftError> {
        self.0.take(16)
    }

    fn list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let elem = self.ttype()?;
        let len = self.read_i32()?;
        Ok((elem, self.0.length(len.into(), "list")?))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let key = self.ttype()?;
        let value = self.ttype()?;
        let len = self.read_i32()?;
        Ok((key, value, self.0.length(len.into(), "map")?))
    }
}

/// `TCompactProtocol`: zigzag varints, field ids as deltas, bools in the field header.
pub(crate) struct Compact<'a> {
    cursor: Cursor<'a>,
    last_field: i16,
    /// The enclosing structs' last field ids.
    outer_fields: Vec<i16>,
    /// A bool field's value, which its header carried.
    pending_bool: Option<bool>,
}

const COMPACT_PROTOCOL_ID: u8 = 0x82;
const COMPACT_VERSION: u8 = 1;
const COMPACT_TRUE: u8 = 1;

impl<'a> Compact<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            cursor: Cursor { buf, pos: 0 },
            last_field: 0,
            outer_fields: Vec::new(),
            pending_bool: None,
        }
    }

    fn varint(&mut self) -> Result<u64, ThriftError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.cursor.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ThriftError::new("a varint longer than 10 bytes"))
    }

    fn zigzag(&mut self) -> Result<i64, ThriftError> {
        let n = self.varint()?;
        Ok((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    /// A length: Go reads it as a 32-bit varint.
    fn varint32(&mut self) -> Result<i64, ThriftError> {
        Ok(i64::from(self.varint()? as u32 as i32))
    }
}

impl<'a> Protocol<'a> for Compact<'a> {
    fn message_begin(&mut self) -> Result<MessageBegin<'a>, ThriftError> {
        if self.cursor.byte()? != COMPACT_PROTOCOL_ID {
            return Err(ThriftError::new("not a compact protocol message"));
        }
        if self.cursor.byte()? & 0x1f != COMPACT_VERSION {
            return Err(ThriftError::new("bad version in the message header"));
        }
        self.varint()?;
        let name = self.read_binary()?;
        Ok(MessageBegin { name })
    }

    fn struct_begin(&mut self) {
        self.outer_fields.push(self.last_field);
        self.last_field = 0;
    }

    fn struct_end(&mut self) {
        self.last_field = self.outer_fields.pop().unwrap_or(0);
    }

    fn field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        let header = self.cursor.byte()?;
        let kind = header & 0x0f;
        if kind == 0 {
            return Ok(None);
        }
        let delta = header >> 4;
        let id = if delta == 0 {
            self.read_i16()?
        } else {
            self.last_field.wrapping_add(i16::from(delta))
        };
        let ty = TType::from_compact(kind)?;
        if ty == TType::Bool {
            self.pending_bool = Some(kind == COMPACT_TRUE);
        }
        self.last_field = id;
        Ok(Some((ty, id)))
    }

    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        match self.pending_bool.take() {
            Some(value) => Ok(value),
            None => Ok(self.cursor.byte()? == COMPACT_TRUE),
        }
    }

    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(self.cursor.byte()? as i8)
    }

    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        Ok(self.zigzag()? as i16)
    }

    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        Ok(self.zigzag()? as i32)
    }

    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        self.zigzag()
    }

    fn read_double(&mut self) -> Result<f64, ThriftError> {
        Ok(f64::from_bits(u64::from_le_bytes(self.cursor.array()?)))
    }

    fn read_binary(&mut self) -> Result<&'a [u8], ThriftError> {
        let len = self.varint32()?;
        let len = self.cursor.length(len, "string")?;
        self.cursor.take(len)
    }

    fn read_uuid(&mut self) -> Result<&'a [u8], ThriftError> {
        self.cursor.take(16)
    }

    fn list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let header = self.cursor.byte()?;
        let short = header >> 4;
        let len = if short == 15 {
            self.varint32()?
        } else {
            i64::from(short)
        };
        let elem = TType::from_compact(header & 0x0f)?;
        Ok((elem, self.cursor.length(len, "list")?))
    }

    fn map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let len = self.varint32()?;
        let len = self.cursor.length(len, "map")?;
        if len == 0 {
            return Ok((TType::Byte, TType::Byte, 0));
        }
        let types = self.cursor.byte()?;
        Ok((
            TType::from_compact(types >> 4)?,
            TType::from_compact(types & 0x0f)?,
            len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_fields_are_deltas_and_bools_live_in_the_header() {
        // field 1 i64 = -2 (zigzag 3), field 5 bool true (delta 4), field 20 string "ab"
        // (long form: id zigzag 40), stop.
        let bytes = [0x16, 0x03, 0x41, 0x08, 40, 0x02, b'a', b'b', 0x00];
        let mut p = Compact::new(&bytes);
        p.struct_begin();
        assert_eq!(p.field_begin(), Ok(Some((TType::I64, 1))));
        assert_eq!(p.read_i64(), Ok(-2));
        assert_eq!(p.field_begin(), Ok(Some((TType::Bool, 5))));
        assert_eq!(p.read_bool(), Ok(true));
        assert_eq!(p.field_begin(), Ok(Some((TType::String, 20))));
        assert_eq!(p.read_binary(), Ok(&b"ab"[..]));
        assert_eq!(p.field_begin(), Ok(None));
    }

    #[test]
    fn binary_message_headers_old_and_new() {
        let mut strict = vec![0x80, 0x01, 0x00, 0x04, 0, 0, 0, 9];
        strict.extend_from_slice(b"emitBatch");
        strict.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(
            Binary::new(&strict).message_begin().map(|m| m.name),
            Ok(&b"emitBatch"[..])
        );
        let mut old = vec![0, 0, 0, 9];
        old.extend_from_slice(b"emitBatch");
        old.extend_from_slice(&[4, 0, 0, 0, 1]);
        assert_eq!(
            Binary::new(&old).message_begin().map(|m| m.name),
            Ok(&b"emitBatch"[..])
        );
        let bad = [0x80, 0x02, 0x00, 0x04];
        assert!(Binary::new(&bad).message_begin().is_err());
    }

    #[test]
    fn lengths_past_the_data_and_deep_nesting_are_refused() {
        // A string claiming 1000 bytes.
        let bytes = [0, 0, 0x03, 0xe8, b'x'];
        assert!(Binary::new(&bytes).read_binary().is_err());
        // A list of i64 claiming 2^31-1 elements.
        let bytes = [10, 0x7f, 0xff, 0xff, 0xff];
        assert!(Binary::new(&bytes).list_begin().is_err());
        // Structs nested 100 deep: field 1 of type struct, again and again.
        let nested: Vec<u8> = std::iter::repeat_n([12u8, 0, 1], 100).flatten().collect();
        let err = Binary::new(&nested).skip(TType::Struct);
        assert_eq!(err, Err(ThriftError::new("depth limit exceeded")));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let full = [0x16, 0x03, 0x41, 0x08, 40, 0x02, b'a', b'b', 0x00];
        for end in 0..full.len() {
            let mut p = Compact::new(&full[..end]);
            let _ = p.skip(TType::Struct);
        }
    }
}
