//! MessagePack read in place: values borrow their strings and bytes from the buffer, and a
//! buffer that ends inside a value says so, so the connection reads more and tries again.
//!
//! Types are told apart as msgp (the Go library otelcol's receiver reads with) tells them:
//! positive fixints are signed integers, `uint 8`..`uint 64` unsigned ones; map keys inside
//! values must be strings.

use std::borrow::Cow;
use std::collections::HashMap;

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The buffer ends inside the value. `clean`: where msgp (otelcol's reader) only peeks,
    /// and so reports a clean end of stream rather than an unexpected one: before the
    /// value's first byte, inside a float or an extension, after a `bin`'s first byte.
    Incomplete { clean: bool },
    /// Not what the protocol allows here; the text says what and where.
    Malformed(String),
}

impl Error {
    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        Self::Malformed(what.into())
    }

    /// The same error with `context` in front of its text, as msgp wraps errors with the
    /// field they occurred in.
    pub(crate) fn within(self, context: &str) -> Self {
        match self {
            Self::Malformed(m) => Self::Malformed(format!("{context}: {m}")),
            incomplete => incomplete,
        }
    }
}

/// Deeper nesting is refused: no log record needs it, it bounds the recursion, and the OTLP
/// written for it stays within the 100 nested messages protobuf decoders (prost's among them)
/// accept: a map level is three messages, the attribute around the outermost six more.
pub(crate) const MAX_DEPTH: u32 = 30;

/// A MessagePack value. Strings are text once read (invalid UTF-8 replaced), so the OTLP
/// writer measures and writes them without checking them again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    F32(f32),
    F64(f64),
    Str(Cow<'a, str>),
    Bin(&'a [u8]),
    Array(Vec<Value<'a>>),
    /// Keys are strings, each once (a Go map in otelcol).
    Map(Box<Entries<'a>>),
    Ext(i8, &'a [u8]),
}

/// Keys and values in the order their keys first came, a key put again taking the new value
/// in its first place: a Go map read by msgp and then written by pdata, and pdata's own
/// attribute maps. Past a few entries the keys are indexed, so a hostile record of a million
/// keys costs a million lookups, not a million scans.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entries<'a> {
    list: Vec<(Cow<'a, str>, Value<'a>)>,
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

/// Entries scanned before they are indexed.
const SCANNED: usize = 16;

impl<'a> Entries<'a> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            list: Vec::with_capacity(n),
            index: None,
        }
    }

    pub(crate) fn put(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        let found = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.list.iter().position(|(k, _)| *k == key),
        };
        if let Some(i) = found {
            self.list[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.list.len());
        } else if self.list.len() >= SCANNED {
            let mut index: HashMap<_, _> = self
                .list
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.list.len());
            self.index = Some(index);
        }
        self.list.push((key, value));
    }

    /// Empty, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.index = None;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.list.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl PartialEq for Entries<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.list == other.list
    }
}

/// Bytes as text, invalid UTF-8 replaced.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A reader over one buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Values [`Reader::value`] may still read before [`Reader::allow_values`] again.
    values_left: usize,
}

/// Values one record may hold (its keys, and every element nested in its values): a record
/// of more is refused, so a small event cannot make the tree it is read into large (a value
/// in memory is tens of bytes; on the wire, one).
pub(crate) const MAX_RECORD_VALUES: usize = 100_000;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            values_left: MAX_RECORD_VALUES,
        }
    }

    /// Allows [`MAX_RECORD_VALUES`] more values: one record's worth.
    pub(crate) fn allow_values(&mut self) {
        self.values_left = MAX_RECORD_VALUES;
    }

    /// Takes `n` values from what may still be read.
    pub(crate) fn take_values(&mut self, n: usize) -> Result<(), Error> {
        self.values_left = self.values_left.checked_sub(n).ok_or_else(|| {
            Error::malformed(format!(
                "a record of more than {MAX_RECORD_VALUES} keys and values"
            ))
        })?;
        Ok(())
    }

    /// Bytes read so far.
    #[cfg(test)]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn peek(&self) -> Result<u8, Error> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(Error::Incomplete { clean: true })
    }

    /// The byte `n` places ahead, without reading anything; a peek that falls short is a
    /// clean end, as for msgp.
    pub(crate) fn peek_at(&self, n: usize) -> Result<u8, Error> {
        self.buf
            .get(self.pos + n)
            .copied()
            .ok_or(Error::Incomplete { clean: true })
    }

    /// `n` bytes of a value whose first byte was already read.
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        self.take_as(n, false)
    }

    /// [`Reader::take`], the shortfall reported `clean` or not.
    fn take_as(&mut self, n: usize, clean: bool) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(Error::Incomplete { clean })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn be(&mut self, n: usize) -> Result<u64, Error> {
        self.be_as(n, false)
    }

    fn be_as(&mut self, n: usize, clean: bool) -> Result<u64, Error> {
        Ok(self
            .take_as(n, clean)?
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn lead(&mut self) -> Result<u8, Error> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// An array header: its length.
    pub(crate) fn array_len(&mut self) -> Result<usize, Error> {
        match self.peek()? {
            b @ 0x90..=0x9f => {
                self.pos += 1;
                Ok(usize::from(b & 0x0f))
            }
            0xdc => {
                self.pos += 1;
                Ok(self.be(2)? as usize)
            }
            0xdd => {
                self.pos += 1;
                Ok(self.be(4)? as usize)
            }
            b => Err(Error::malformed(format!(
                "wanted an array, found {}",
                type_name(b)
            ))),
        }
    }

    /// A map header: its number of entries.
    pub(crate) fn map_len(&mut self) -> Result<usize, Error> {
        match self.peek()? {
            b @ 0x80..=0x8f => {
                self.pos += 1;
                Ok(usize::from(b & 0x0f))
            }
            0xde => {
                self.pos += 1;
                Ok(self.be(2)? as usize)
            }
            0xdf => {
                self.pos += 1;
                Ok(self.be(4)? as usize)
            }
            b => Err(Error::malformed(format!(
                "wanted a map, found {}",
                type_name(b)
            ))),
        }
    }

    /// A `str`; anything else is refused without being read.
    pub(crate) fn str(&mut self) -> Result<&'a [u8], Error> {
        let len = match self.peek()? {
            b @ 0xa0..=0xbf => {
                self.pos += 1;
                usize::from(b & 0x1f)
            }
            0xd9 => {
                self.pos += 1;
                self.be(1)? as usize
            }
            0xda => {
                self.pos += 1;
                self.be(2)? as usize
            }
            0xdb => {
                self.pos += 1;
                self.be(4)? as usize
            }
            b => {
                return Err(Error::malformed(format!(
                    "wanted a string, found {}",
                    type_name(b)
                )))
            }
        };
        self.take(len)
    }

    /// A `bin`; anything else is refused without being read.
    pub(crate) fn bin(&mut self) -> Result<&'a [u8], Error> {
        let len = match self.peek()? {
            0xc4 => {
                self.pos += 1;
                // msgp peeks a bin's first two bytes.
                self.be_as(1, true)? as usize
            }
            0xc5 => {
                self.pos += 1;
                self.be(2)? as usize
            }
            0xc6 => {
                self.pos += 1;
                self.be(4)? as usize
            }
            b => {
                return Err(Error::malformed(format!(
                    "wanted bytes, found {}",
                    type_name(b)
                )))
            }
        };
        self.take(len)
    }

    /// Any value.
    pub(crate) fn value(&mut self) -> Result<Value<'a>, Error> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: u32) -> Result<Value<'a>, Error> {
        let b = self.peek()?;
        self.take_values(1)?;
        Ok(match b {
            0x00..=0x7f => {
                self.pos += 1;
                Value::Int(i64::from(b))
            }
            0xe0..=0xff => {
                self.pos += 1;
                Value::Int(i64::from(b as i8))
            }
            0x80..=0x8f | 0xde | 0xdf => {
                if depth >= MAX_DEPTH {
                    return Err(Error::malformed("values nested too deeply"));
                }
                let len = self.map_len()?;
                // Refused before anything is read or allocated for it.
                if len.saturating_mul(2) > self.values_left {
                    self.take_values(len.saturating_mul(2))?;
                }
                let mut entries = Entries::with_capacity(len.min(1024));
                for _ in 0..len {
                    let key = text(self.str()?);
                    let value = self.value_at(depth + 1)?;
                    entries.put(key, value);
                }
                Value::Map(Box::new(entries))
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                if depth >= MAX_DEPTH {
                    return Err(Error::malformed("values nested too deeply"));
                }
                let len = self.array_len()?;
                // Refused before anything is read or allocated for it.
                if len > self.values_left {
                    self.take_values(len)?;
                }
                let mut items = Vec::with_capacity(len.min(1024));
                for _ in 0..len {
                    items.push(self.value_at(depth + 1)?);
                }
                Value::Array(items)
            }
            0xa0..=0xbf | 0xd9..=0xdb => Value::Str(text(self.str()?)),
            0xc4..=0xc6 => Value::Bin(self.bin()?),
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc2 | 0xc3 => {
                self.pos += 1;
                Value::Bool(b == 0xc3)
            }
            // msgp peeks a float whole before reading it.
            0xca => {
                self.pos += 1;
                Value::F32(f32::from_bits(self.be_as(4, true)? as u32))
            }
            0xcb => {
                self.pos += 1;
                Value::F64(f64::from_bits(self.be_as(8, true)?))
            }
            0xcc..=0xcf => {
                self.pos += 1;
                Value::Uint(self.be(1 << (b - 0xcc))?)
            }
            0xd0..=0xd3 => {
                self.pos += 1;
                let n = 1usize << (b - 0xd0);
                let raw = self.be(n)?;
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n as u32;
                Value::Int(((raw << shift) as i64) >> shift)
            }
            0xd4..=0xd8 | 0xc7..=0xc9 => {
                let (ty, data) = self.ext()?;
                Value::Ext(ty, data)
            }
            // 0xc1: never used.
            _ => return Err(Error::malformed("0xc1 is not a MessagePack type")),
        })
    }

    /// An extension: its type and payload. msgp peeks an extension whole before reading it.
    pub(crate) fn ext(&mut self) -> Result<(i8, &'a [u8]), Error> {
        let len = match self.lead()? {
            b @ 0xd4..=0xd8 => 1usize << (b - 0xd4),
            0xc7 => self.be_as(1, true)? as usize,
            0xc8 => self.be_as(2, true)? as usize,
            0xc9 => self.be_as(4, true)? as usize,
            b => {
                self.pos -= 1;
                return Err(Error::malformed(format!(
                    "wanted an extension, found {}",
                    type_name(b)
                )));
            }
        };
        let ty = self.take_as(1, true)?[0] as i8;
        Ok((ty, self.take_as(len, true)?))
    }
}

/// What a leading byte starts, for error texts.
pub(crate) fn type_name(b: u8) -> &'static str {
    match b {
        0x00..=0x7f | 0xe0..=0xff | 0xd0..=0xd3 => "int",
        0xcc..=0xcf => "uint",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "str",
        0xc4..=0xc6 => "bin",
        0xc0 => "nil",
        0xc2 | 0xc3 => "bool",
        0xca => "float32",
        0xcb => "float64",
        0xd4..=0xd8 | 0xc7..=0xc9 => "ext",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_as_msgp_types_it() {
        let mut buf = vec![0x9f - 0x0f + 14]; // fixarray of 14
        buf.extend([0x05, 0xff, 0xcc, 0xfe, 0xd1, 0xff, 0x7f, 0xc0, 0xc3]);
        buf.extend([0xca, 0x3f, 0xc0, 0, 0]); // 1.5f32
        buf.extend([0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0]); // 2.5
        buf.extend([0xa2, b'h', b'i', 0xc4, 2, 0, 1]);
        buf.extend([0x81, 0xa1, b'k', 0x91, 0x01]); // {"k": [1]}
        buf.extend([0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2]); // EventTime 1s 2ns
        buf.extend([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        buf.extend([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        let mut r = Reader::new(&buf);
        let Value::Array(items) = r.value().expect("an array") else {
            panic!("not an array");
        };
        assert_eq!(
            items,
            vec![
                Value::Int(5),
                Value::Int(-1),
                Value::Uint(254),
                Value::Int(-129),
                Value::Nil,
                Value::Bool(true),
                Value::F32(1.5),
                Value::F64(2.5),
                Value::Str("hi".into()),
                Value::Bin(&[0, 1]),
                Value::Map({
                    let mut m = Entries::default();
                    m.put("k".into(), Value::Array(vec![Value::Int(1)]));
                    Box::new(m)
                }),
                Value::Ext(0, &[0, 0, 0, 1, 0, 0, 0, 2]),
                Value::Uint(u64::MAX),
                Value::Int(i64::MIN),
            ]
        );
        assert!(r.is_empty());
    }

    #[test]
    fn a_short_buffer_says_where_it_ended() {
        assert_eq!(
            Reader::new(&[]).value(),
            Err(Error::Incomplete { clean: true })
        );
        assert_eq!(
            Reader::new(&[0xa3, b'a']).value(),
            Err(Error::Incomplete { clean: false })
        );
        assert_eq!(
            Reader::new(&[0xdd, 0, 0]).array_len(),
            Err(Error::Incomplete { clean: false })
        );
        // A declared length beyond the buffer is only incomplete, never allocated.
        assert_eq!(
            Reader::new(&[0xc6, 0xff, 0xff, 0xff, 0xff]).value(),
            Err(Error::Incomplete { clean: false })
        );
    }

    #[test]
    fn wrong_types_and_deep_nesting_are_refused() {
        assert!(matches!(
            Reader::new(&[0x81, 0x01, 0x02]).value(),
            Err(Error::Malformed(m)) if m.contains("wanted a string, found int")
        ));
        assert!(matches!(
            Reader::new(&[0xc1]).value(),
            Err(Error::Malformed(_))
        ));
        let deep = vec![0x91; 100];
        assert!(matches!(
            Reader::new(&deep).value(),
            Err(Error::Malformed(m)) if m.contains("nested")
        ));
        let mut r = Reader::new(&[0xc4, 1, 7]);
        assert!(r.str().is_err());
        assert_eq!(r.position(), 0, "a refused type is not read");
        assert_eq!(r.bin(), Ok(&[7u8][..]));
    }

    #[test]
    fn map_keys_stay_once_in_their_first_place_however_many() {
        for n in [3usize, 40, 5000] {
            let mut m = Entries::default();
            for i in 0..n {
                m.put(format!("k{i}").into(), Value::Int(i as i64));
            }
            // Every key again, in reverse: values replaced, order kept.
            for i in (0..n).rev() {
                m.put(format!("k{i}").into(), Value::Int(-(i as i64)));
            }
            let got: Vec<(String, Value<'_>)> =
                m.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
            let want: Vec<(String, Value<'_>)> = (0..n)
                .map(|i| (format!("k{i}"), Value::Int(-(i as i64))))
                .collect();
            assert_eq!(got, want, "{n} keys");
        }
    }
}
