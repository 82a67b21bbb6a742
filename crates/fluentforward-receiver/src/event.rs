//! One Forward-protocol event, read as otelcol's receiver reads it, into OTLP log records.
//!
//! The protocol (fluentd's Forward Protocol Specification v1) has three carrier modes, told
//! apart by the type of an event's second element: Message `[tag, time, record, options?]`,
//! Forward `[tag, [[time, record], ...], options?]` and PackedForward `[tag, entries,
//! options?]` with the entries concatenated in a `str` or `bin`, gzipped when the option
//! `compressed` is `"gzip"`. Each record becomes a log record: the `message` or `log` key
//! its body, every other key an attribute, and the tag the attribute `fluent.tag`.

use std::io::Read;

use crate::msgpack::{self, Error, Reader, Value};
use crate::otlp::{self, Attributes};

/// The attribute that carries the event's tag.
const TAG_KEY: &str = "fluent.tag";

/// Largest decompressed PackedForward entries: a gzip bomb stops here.
pub(crate) const MAX_INFLATED: usize = 16 * 1024 * 1024;

/// What an event held besides its records.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Log records written.
    pub records: usize,
    /// The `chunk` option: the client waits for `{"ack": chunk}` once the records are taken.
    pub chunk: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Message,
    Forward,
    PackedForward,
}

/// Why an event was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventError {
    /// Its carrier mode cannot be told from its first bytes: otelcol closes the connection
    /// without counting a parse failure.
    Mode(String),
    /// It does not decode: a parse failure.
    Decode(String),
    /// The bytes end inside it; `clean` as for [`Error::Incomplete`].
    Incomplete { clean: bool },
}

impl EventError {
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Mode(r) | Self::Decode(r) => r,
            Self::Incomplete { .. } => "the connection ended inside an event",
        }
    }
}

/// Reads the event at the start of `stream` (the connection's bytes from the event's first;
/// `len` of them are the event, or all of them when it is not whole yet) and appends its log
/// records to `out` as `log_records` fields of a `ScopeLogs`. Its mode is told from
/// `stream` as otelcol tells it, which for an event shorter than a tag and one more byte
/// means reading into the next. On error nothing is appended.
pub(crate) fn read(stream: &[u8], len: usize, out: &mut Vec<u8>) -> Result<Parsed, EventError> {
    let mode = match mode(stream) {
        Ok(mode) => mode,
        Err(Error::Incomplete { clean }) => return Err(EventError::Incomplete { clean }),
        Err(Error::Malformed(m)) => return Err(EventError::Mode(m)),
    };
    let event = &stream[..len.min(stream.len())];
    let before = out.len();
    let result = match mode {
        Mode::Message => message(&mut Reader::new(event), out),
        Mode::Forward => forward(&mut Reader::new(event), out),
        Mode::PackedForward => packed_forward(&mut Reader::new(event), out),
    };
    result.map_err(|e| {
        out.truncate(before);
        match e {
            Error::Incomplete { clean } => EventError::Incomplete { clean },
            Error::Malformed(m) => EventError::Decode(m),
        }
    })
}

/// Whether an event that has begun (not yet whole) can still be one: its carrier mode is
/// known from its first bytes, and otelcol closes the connection as soon as it is not.
pub(crate) fn check_start(partial: &[u8]) -> Result<(), EventError> {
    let (min, max) = match mode(partial) {
        Ok(Mode::Message) => (3, 4),
        Ok(_) => (2, 3),
        Err(Error::Incomplete { .. }) => return Ok(()),
        Err(Error::Malformed(m)) => return Err(EventError::Mode(m)),
    };
    match event_len(&mut Reader::new(partial), min, max) {
        Ok(_) | Err(Error::Incomplete { .. }) => Ok(()),
        Err(Error::Malformed(m)) => Err(EventError::Decode(m)),
    }
}

/// The carrier mode, from the type of the element after the tag, as otelcol finds it
/// (including its reading of the tag's header).
fn mode(event: &[u8]) -> Result<Mode, Error> {
    let r = Reader::new(event);
    let tag_lead = r.peek_at(1)?;
    // otelcol takes any byte with these bits set as a fixstr header.
    let tag_len = if tag_lead & 0b1010_0000 == 0b1010_0000 {
        1 + usize::from(tag_lead & 0b0001_1111)
    } else {
        let be = |n: usize| -> Result<usize, Error> {
            (0..n).try_fold(0usize, |acc, i| {
                Ok(acc << 8 | usize::from(r.peek_at(2 + i)?))
            })
        };
        match tag_lead {
            0xd9 => 2 + be(1)?,
            0xda => 3 + be(2)?,
            0xdb => 5 + be(4)?,
            _ => return Err(Error::malformed("malformed tag field")),
        }
    };
    let second = r.peek_at(1 + tag_len)?;
    match msgpack::type_name(second) {
        "int" | "uint" | "ext" => Ok(Mode::Message),
        "array" => Ok(Mode::Forward),
        "bin" | "str" => Ok(Mode::PackedForward),
        other => Err(Error::malformed(format!(
            "unable to determine next event mode for type {other}"
        ))),
    }
}

/// The event's array header, between `min` and `max` elements.
fn event_len(r: &mut Reader<'_>, min: usize, max: usize) -> Result<usize, Error> {
    let len = r.array_len()?;
    if len < min || len > max {
        return Err(Error::malformed(format!(
            "wanted array of size {min}; got {len}"
        )));
    }
    Ok(len)
}

fn message(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<Parsed, Error> {
    let len = event_len(r, 3, 4)?;
    let tag = Value::Str(msgpack::text(r.str().map_err(|e| e.within("Tag"))?));
    record(r, &tag, true, &mut Attributes::default(), out)?;
    let chunk = if len == 4 { options(r)?.chunk } else { None };
    Ok(Parsed { records: 1, chunk })
}

fn forward(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<Parsed, Error> {
    let len = event_len(r, 2, 3)?;
    let tag = Value::Str(msgpack::text(r.str().map_err(|e| e.within("Tag"))?));
    let entries = r.array_len().map_err(|e| e.within("Record"))?;
    let mut attributes = Attributes::default();
    for i in 0..entries {
        entry(r, &tag, &mut attributes, out).map_err(|e| e.within(&format!("Entries/{i}")))?;
    }
    let chunk = if len == 3 { options(r)?.chunk } else { None };
    Ok(Parsed {
        records: entries,
        chunk,
    })
}

fn packed_forward(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<Parsed, Error> {
    let len = event_len(r, 2, 3)?;
    let tag = Value::Str(msgpack::text(r.str().map_err(|e| e.within("Tag"))?));
    let raw = match msgpack::type_name(r.peek()?) {
        "str" => r.str(),
        "bin" => r.bin(),
        other => Err(Error::malformed(format!("invalid type {other}"))),
    }
    .map_err(|e| e.within("EntriesRaw"))?;
    let options = if len == 3 {
        options(r)?
    } else {
        Options::default()
    };
    let inflated;
    let entries = if options.gzip {
        inflated = gunzip(raw)?;
        &inflated[..]
    } else {
        raw
    };
    let mut records = 0;
    let mut r = Reader::new(entries);
    let mut attributes = Attributes::default();
    loop {
        let before = out.len();
        match entry(&mut r, &tag, &mut attributes, out) {
            Ok(()) => records += 1,
            // Go's reader reports a clean end of stream where an element would begin, and
            // otelcol stops there, keeping the entries before it.
            Err(Error::Incomplete { clean: true }) => {
                out.truncate(before);
                break;
            }
            Err(Error::Incomplete { clean: false }) => {
                return Err(Error::malformed("unexpected EOF in the packed entries"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Parsed {
        records,
        chunk: options.chunk,
    })
}

/// Every gzip member of PackedForward entries, as Go's `gzip.Reader` reads them.
fn gunzip(raw: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw)
        .take(MAX_INFLATED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::malformed(format!("gzip: {e}")))?;
    if out.len() > MAX_INFLATED {
        return Err(Error::malformed(format!(
            "packed entries inflate to more than {MAX_INFLATED} bytes"
        )));
    }
    Ok(out)
}

/// One `[time, record]` entry.
fn entry<'a>(
    r: &mut Reader<'a>,
    tag: &Value<'a>,
    attributes: &mut Attributes<'a>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let len = r.array_len()?;
    if len != 2 {
        return Err(Error::malformed(format!(
            "wanted array of size 2; got {len}"
        )));
    }
    record(r, tag, false, attributes, out)
}

#[derive(Default)]
struct Options {
    chunk: Option<Vec<u8>>,
    gzip: bool,
}

/// The options map: keys are strings; only a string `chunk` and `compressed` matter.
fn options(r: &mut Reader<'_>) -> Result<Options, Error> {
    r.allow_values();
    let len = r.map_len().map_err(|e| e.within("Option"))?;
    let mut options = Options::default();
    for _ in 0..len {
        let key = r.str().map_err(|e| e.within("Option"))?;
        let within = |e: Error| e.within(&format!("Option/{}", msgpack::text(key)));
        // The chunk goes back in the acknowledgement byte for byte.
        if key == b"chunk" && msgpack::type_name(r.peek().map_err(within)?) == "str" {
            options.chunk = Some(r.str().map_err(within)?.to_vec());
            continue;
        }
        let value = r.value().map_err(within)?;
        match key {
            b"chunk" => options.chunk = None,
            b"compressed" => options.gzip = value == Value::Str("gzip".into()),
            _ => {}
        }
    }
    // An empty chunk asks for no acknowledgement.
    options.chunk = options.chunk.filter(|c| !c.is_empty());
    Ok(options)
}

/// A record's time and map, written as one log record. `tag_first`: the tag attribute goes
/// before the record's keys (Message mode) rather than after them.
fn record<'a>(
    r: &mut Reader<'a>,
    tag: &Value<'a>,
    tag_first: bool,
    attributes: &mut Attributes<'a>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    r.allow_values();
    let time = time(r).map_err(|e| e.within("Time"))?;
    let keys = r.map_len().map_err(|e| e.within("Record"))?;
    r.take_values(keys).map_err(|e| e.within("Record"))?;
    attributes.clear();
    if tag_first {
        attributes.put(TAG_KEY.into(), tag.clone());
    }
    let mut body = Value::Nil;
    for _ in 0..keys {
        // Some clients send keys as bin.
        let key = match r.str() {
            Ok(key) => key,
            Err(Error::Malformed(_)) => r.bin().map_err(|e| e.within("Record"))?,
            Err(incomplete) => return Err(incomplete),
        };
        let key = msgpack::text(key);
        let value = r.value().map_err(|e| e.within(&format!("Record/{key}")))?;
        if key == "message" || key == "log" {
            // A nil leaves the body as it was.
            if value != Value::Nil {
                body = value;
            }
        } else {
            attributes.put(key, value);
        }
    }
    if !tag_first {
        attributes.put(TAG_KEY.into(), tag.clone());
    }
    otlp::log_record(time, &body, attributes, out);
    Ok(())
}

/// The record's time in Unix nanoseconds: whole seconds as an integer, or fluentd's
/// EventTime extension (seconds and nanoseconds, big-endian). Go's arithmetic wraps.
fn time(r: &mut Reader<'_>) -> Result<u64, Error> {
    let (seconds, nanos) = match r.value()? {
        Value::Int(s) => (s, 0),
        Value::Uint(s) => (s as i64, 0),
        Value::Ext(0, data) => match <[u8; 8]>::try_from(data) {
            Ok(b) => (
                i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                i64::from(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
            ),
            Err(_) => return Err(Error::malformed("data should be exactly 8 bytes")),
        },
        other => {
            return Err(Error::malformed(format!(
                "unknown type of value: {}",
                otlp::describe(&other)
            )))
        }
    };
    Ok(seconds.wrapping_mul(1_000_000_000).wrapping_add(nanos) as u64)
}

#[cfg(test)]
mod tests;
