//! Strict, typed reads of one message's fields with prost's rules.
//!
//! Every read names the field in its error ("field 5 (name)"), so the message readers are a
//! `match` on the field number with one line per field. `r` is prost's remaining recursion
//! budget for the fields of a message (100 for the request's own fields): a nested message
//! needs `r > 0` and gets `r - 1`; an unknown field also needs `r > 0` (prost's
//! `skip_field`).

use crate::cursor::{wrong_type, Cursor, Value};
use crate::error::{WireError, WireErrorKind, WireType};

/// Budget for a nested message field, or `TooDeep`.
#[inline]
pub(super) fn nest(r: u32, at: usize) -> Result<u32, WireError> {
    r.checked_sub(1)
        .ok_or_else(|| WireError::new(WireErrorKind::TooDeep, at))
}

/// The fields of one message, read in wire order.
pub(super) struct Fields<'a> {
    cursor: Cursor<'a>,
    r: u32,
}

impl<'a> Fields<'a> {
    /// The fields of the message `cursor` covers, with recursion budget `r` for them.
    #[inline(always)]
    pub(super) fn new(cursor: Cursor<'a>, r: u32) -> Self {
        Fields { cursor, r }
    }

    /// The next field, or `None` at the end of the message.
    #[inline(always)]
    pub(super) fn next_field(&mut self) -> Result<Option<Field<'a>>, WireError> {
        if self.cursor.at_end() {
            return Ok(None);
        }
        let at = self.cursor.pos();
        let (tag, value) = self.cursor.next_field()?;
        Ok(Some(Field {
            tag,
            value,
            at,
            r: self.r,
        }))
    }

    /// Skips a field the schema does not know, exactly as prost does (groups included).
    #[inline(always)]
    pub(super) fn skip_unknown(&mut self, f: Field<'a>) -> Result<(), WireError> {
        self.cursor
            .skip_unknown(f.tag, f.value, f.r, f.at)
            .map_err(|e| e.field(f.tag, "unknown"))
    }

    /// Absolute offset of the next field, i.e. the end of the one just read.
    #[inline]
    pub(super) fn pos(&self) -> usize {
        self.cursor.pos()
    }

    /// Bytes `[from, to)` of the request (absolute offsets, as [`Field::at`]).
    #[inline]
    pub(super) fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        self.cursor.slice(from, to)
    }
}

/// One field just read: its number, its value, and where its key starts.
#[derive(Clone, Copy)]
pub(super) struct Field<'a> {
    /// The field number.
    pub(super) tag: u32,
    /// Absolute offset of the field's key, where its errors point.
    pub(super) at: usize,
    value: Value<'a>,
    /// Recursion budget of the message the field belongs to.
    r: u32,
}

impl<'a> Field<'a> {
    /// The error for a wrong wire type. The cold constructors get only scalars: handing
    /// them the whole field made the compiler keep every field in memory in the hot loops
    /// (a store-forwarding stall that doubled the cost of a span).
    #[inline]
    fn wrong_type(self, expected: WireType, name: &str) -> WireError {
        wrong_type_of_field(expected, self.value.wire_type(), self.at, self.tag, name)
    }

    /// Checks the wire type of a field whose value is not needed.
    #[inline(always)]
    pub(super) fn check_type(self, expected: WireType, name: &str) -> Result<(), WireError> {
        if self.value.wire_type() == expected {
            Ok(())
        } else {
            Err(self.wrong_type(expected, name))
        }
    }

    /// The payload of a length-delimited field (`bytes`, `string` or a message).
    #[inline(always)]
    pub(super) fn payload(self, name: &str) -> Result<Cursor<'a>, WireError> {
        match self.value {
            Value::Len(c) => Ok(c),
            _ => Err(self.wrong_type(WireType::Len, name)),
        }
    }

    /// A `bytes` field.
    #[inline]
    pub(super) fn bytes(self, name: &str) -> Result<&'a [u8], WireError> {
        Ok(self.payload(name)?.rest())
    }

    /// A `string` field whose text is needed.
    #[inline]
    pub(super) fn string(self, name: &str) -> Result<&'a str, WireError> {
        let c = self.payload(name)?;
        std::str::from_utf8(c.rest())
            .map_err(|_| WireError::new(WireErrorKind::InvalidUtf8, c.pos()).field(self.tag, name))
    }

    /// Checks a `string` field whose text is not needed. Nearly all OTLP strings are ASCII,
    /// which is checked a word at a time; anything else gets the full UTF-8 validation.
    #[inline(always)]
    pub(super) fn check_string(self, name: &str) -> Result<(), WireError> {
        let c = self.payload(name)?;
        let bytes = c.rest();
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            Ok(())
        } else {
            Err(WireError::new(WireErrorKind::InvalidUtf8, c.pos()).field(self.tag, name))
        }
    }

    /// A varint field (`uint32`, `int32`, enums, `bool`, ...) before truncation.
    #[inline]
    pub(super) fn varint(self, name: &str) -> Result<u64, WireError> {
        match self.value {
            Value::Varint(x) => Ok(x),
            _ => Err(self.wrong_type(WireType::Varint, name)),
        }
    }

    /// A `fixed64` field.
    #[inline]
    pub(super) fn fixed64(self, name: &str) -> Result<u64, WireError> {
        match self.value {
            Value::Fixed64(x) => Ok(x),
            _ => Err(self.wrong_type(WireType::Fixed64, name)),
        }
    }

    /// A `fixed32` field.
    #[inline]
    pub(super) fn fixed32(self, name: &str) -> Result<u32, WireError> {
        match self.value {
            Value::Fixed32(x) => Ok(x),
            _ => Err(self.wrong_type(WireType::Fixed32, name)),
        }
    }

    /// A `repeated` scalar field whose values are not needed. prost accepts both encodings
    /// whatever the schema says: one value per field occurrence with the element's wire type
    /// `element` (`Varint`, `Fixed64` or `Fixed32`), or packed: a length-delimited run that
    /// holds whole values and nothing else (a value cut by the end of the run is an error).
    /// Packed runs take no recursion budget.
    #[inline(always)]
    pub(super) fn check_repeated_scalar(
        self,
        element: WireType,
        name: &str,
    ) -> Result<(), WireError> {
        let Value::Len(run) = self.value else {
            return self.check_type(element, name);
        };
        // Out of line with scalars only: a whole `Field` handed to a call would keep the
        // hot loop's fields in memory (see `wrong_type`).
        check_packed_run(run, element, self.tag, self.at, name)
    }

    /// A singular message field, read by `read` with the nested budget. Each occurrence is
    /// read on its own (protobuf merges them: the caller keeps the last value of each
    /// scalar); any error inside it is named by this field.
    #[inline(always)]
    pub(super) fn singular<T>(
        self,
        name: &str,
        read: impl FnOnce(Cursor<'a>, u32) -> Result<T, WireError>,
    ) -> Result<T, WireError> {
        let inner = self.payload(name)?;
        let r = nest(self.r, self.at).map_err(|e| e.field(self.tag, name))?;
        read(inner, r).map_err(|e| e.field(self.tag, name))
    }
}

/// The error of [`Field::wrong_type`], out of line.
#[cold]
fn wrong_type_of_field(
    expected: WireType,
    actual: WireType,
    at: usize,
    tag: u32,
    name: &str,
) -> WireError {
    wrong_type(expected, actual, at).field(tag, name)
}

/// The elements of one repeated message field, counted so that an error says which
/// element is bad ("attribute 2") rather than naming the field.
pub(super) struct Elements {
    field: &'static str,
    element: &'static str,
    count: usize,
}

impl Elements {
    /// Field `field`, whose elements errors call `element`.
    #[inline(always)]
    pub(super) fn new(field: &'static str, element: &'static str) -> Self {
        Elements {
            field,
            element,
            count: 0,
        }
    }

    /// How many elements were read so far.
    #[inline]
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// Reads the next element, the field `f`: its wire type always, its contents with
    /// `check` only when `CHECK` (the trusting walk leaves them to the lazy views).
    ///
    /// Hot checks are passed as closures (`|c, r| key_value(c, r)`), not as the function
    /// itself: LLVM may leave a function item's `FnOnce` shim out of line, which cost the
    /// attribute loop ~500 instructions per span in one build (BENCHMARKS.md, issue 14).
    #[inline(always)]
    pub(super) fn read<'a, const CHECK: bool>(
        &mut self,
        f: Field<'a>,
        check: impl FnOnce(Cursor<'a>, u32) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        self.read_bytes::<CHECK>(f, check).map(|_| ())
    }

    /// [`Self::read`], returning the element's bytes.
    #[inline(always)]
    pub(super) fn read_bytes<'a, const CHECK: bool>(
        &mut self,
        f: Field<'a>,
        check: impl FnOnce(Cursor<'a>, u32) -> Result<(), WireError>,
    ) -> Result<&'a [u8], WireError> {
        let inner = f.payload(self.field)?;
        if CHECK {
            let r = nest(f.r, f.at)?;
            check(inner, r)
                .map_err(|e| e.within(format_args!("{} {}", self.element, self.count)))?;
        }
        self.count += 1;
        Ok(inner.rest())
    }
}

/// The packed form of [`Field::check_repeated_scalar`].
fn check_packed_run(
    mut run: Cursor<'_>,
    element: WireType,
    tag: u32,
    at: usize,
    name: &str,
) -> Result<(), WireError> {
    let width = match element {
        WireType::Fixed64 => 8,
        WireType::Fixed32 => 4,
        WireType::Varint => {
            while !run.at_end() {
                run.varint().map_err(|e| e.field(tag, name))?;
            }
            return Ok(());
        }
        // Only scalars are packable; the schema never asks for anything else.
        _ => return Err(wrong_type_of_field(element, WireType::Len, at, tag, name)),
    };
    let len = run.rest().len();
    if len.is_multiple_of(width) {
        Ok(())
    } else {
        // The last value runs past the end of the run.
        let at = run.pos() + (len - len % width);
        Err(WireError::new(WireErrorKind::Truncated, at).field(tag, name))
    }
}
