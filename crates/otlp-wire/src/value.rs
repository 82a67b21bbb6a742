//! Attribute views: `KeyValueView`, `AnyValueView`, their iterators, and the
//! OpenTelemetry Collector's `Value.AsString()` rendering.
//!
//! All views borrow the request bytes and are created only by the walker after
//! the bytes they cover have been validated, so the lazy re-scans here can be
//! lenient (they stop instead of erroring on input they will never see).

use std::fmt::{self, Write as _};

use crate::cursor::{Cursor, Value};
use crate::RECURSION_LIMIT;

/// One attribute: `KeyValue { key, value }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyValueView<'a> {
    /// The key (last occurrence wins, as in protobuf).
    pub key: &'a str,
    /// The value; [`AnyValueView::Empty`] when absent.
    pub value: AnyValueView<'a>,
}

/// A borrowed `AnyValue`.
///
/// `Array` and `KvList` are lazy: iterate them with [`ArrayView::iter`] /
/// [`KvListView::iter`]. They are small wrappers rather than one raw slice
/// because protobuf merge rules can spread one logical array over several
/// occurrences of the field on the wire (see [`ArrayView`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum AnyValueView<'a> {
    /// No value set (also used for the profiling-only `string_value_strindex`,
    /// which OTLP says non-profiling receivers treat as absent).
    #[default]
    Empty,
    /// `string_value`.
    String(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`.
    Array(ArrayView<'a>),
    /// `kvlist_value`.
    KvList(KvListView<'a>),
}

/// Where a merged `AnyValue`'s fields live: the rest of one `AnyValue` (`head`)
/// followed by every `value` (field 2) occurrence in the rest of its `KeyValue`
/// (`tail`). protobuf merges repeated occurrences of a singular message field,
/// so `KeyValue{value:{array:[1]}, value:{array:[2]}}` is the array `[1, 2]`.
#[derive(Debug, Clone, Copy, Default)]
struct Stream<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

/// A lazily iterated `ArrayValue`.
#[derive(Debug, Clone, Copy)]
pub struct ArrayView<'a> {
    stream: Stream<'a>,
}

/// A lazily iterated `KeyValueList`.
#[derive(Debug, Clone, Copy)]
pub struct KvListView<'a> {
    stream: Stream<'a>,
}

impl<'a> ArrayView<'a> {
    /// Elements in wire order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            head: PathIter::new(self.stream.head, &[5, 1]),
            tail: PathIter::new(self.stream.tail, &[2, 5, 1]),
        }
    }

    /// Number of elements (walks the bytes).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<'a> KvListView<'a> {
    /// Entries in wire order (duplicate keys are kept; see `write_as_string`
    /// for how they render).
    pub fn iter(&self) -> AttributeIter<'a> {
        AttributeIter {
            head: PathIter::new(self.stream.head, &[6, 1]),
            tail: PathIter::new(self.stream.tail, &[2, 6, 1]),
        }
    }

    /// Number of entries (walks the bytes).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// First entry with this key, like pdata's `Map.Get`.
    pub fn get(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.iter().get(key)
    }
}

// Equality is by content, not by how the bytes happen to be laid out.
impl PartialEq for ArrayView<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl PartialEq for KvListView<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Iterator over the elements of an [`ArrayView`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    head: PathIter<'a>,
    tail: PathIter<'a>,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = AnyValueView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let element = match self.head.next() {
            Some(e) => e,
            None => self.tail.next()?,
        };
        // Array elements are separate messages: no merging across them.
        Some(resolve_any(Stream {
            head: element,
            tail: &[],
        }))
    }
}

/// A copyable handle on the attributes of one message of the request (a span, a resource, a
/// scope, an event or a link): two words, where an [`AttributeIter`] carries its scan state.
#[derive(Debug, Clone, Copy)]
pub struct AttributesRef<'a> {
    msg: &'a [u8],
    path: &'static [u32],
}

impl<'a> AttributesRef<'a> {
    /// The attributes found by following `path` from the fields of `msg` (as
    /// [`AttributeIter::new`]).
    pub(crate) fn new(msg: &'a [u8], path: &'static [u32]) -> Self {
        AttributesRef { msg, path }
    }

    /// The attributes in wire order.
    pub fn iter(&self) -> AttributeIter<'a> {
        AttributeIter::new(self.msg, self.path)
    }

    /// The first attribute with this key, like pdata's `Map.Get`.
    pub fn get(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.iter().get(key)
    }
}

/// Iterator over `KeyValue`s (span/resource/scope/event/link attributes, kvlists).
#[derive(Debug, Clone)]
pub struct AttributeIter<'a> {
    head: PathIter<'a>,
    tail: PathIter<'a>,
}

impl<'a> AttributeIter<'a> {
    /// Attributes found by following `path` (field numbers, outermost first)
    /// from the fields of `msg`.
    pub(crate) fn new(msg: &'a [u8], path: &'static [u32]) -> Self {
        AttributeIter {
            head: PathIter::new(msg, path),
            tail: PathIter::new(&[], &[]),
        }
    }
}

impl<'a> AttributeIter<'a> {
    /// Value of the first remaining attribute with this key, like pdata's
    /// `Map.Get`. Cheaper than `find`: values of other keys are not decoded.
    pub fn get(mut self, key: &str) -> Option<AnyValueView<'a>> {
        let matches = |kv: &&'a [u8]| raw_key(kv) == key.as_bytes();
        let kv = match self.head.find(matches) {
            Some(kv) => kv,
            None => self.tail.find(matches)?,
        };
        Some(value_of(kv))
    }
}

/// The raw bytes of a `KeyValue`'s key (last occurrence wins).
#[inline]
pub(crate) fn raw_key(kv: &[u8]) -> &[u8] {
    // Fast path for the layout every encoder writes: the key, then at most one `value`, and
    // nothing else (so this key is the last one), both with one-byte lengths.
    if let [0x0a, klen, rest @ ..] = kv {
        let klen = usize::from(*klen);
        if klen < 0x80 {
            if let (Some(key), Some(after)) = (rest.get(..klen), rest.get(klen..)) {
                match after {
                    [] => return key,
                    [0x12, vlen, value @ ..]
                        if *vlen < 0x80 && value.len() == usize::from(*vlen) =>
                    {
                        return key;
                    }
                    _ => {}
                }
            }
        }
    }
    raw_key_slow(kv)
}

#[inline(never)]
fn raw_key_slow(kv: &[u8]) -> &[u8] {
    let mut cursor = Cursor::new(kv);
    let mut key: &[u8] = &[];
    while let Some((tag, v)) = cursor.next_lenient() {
        if let (1, Value::Len(s)) = (tag, v) {
            key = s.rest();
        }
    }
    key
}

impl<'a> AttributeIter<'a> {
    /// The same attributes with their values left undecoded: the cheap way to look for a few
    /// keys among many (compare [`LazyAttribute::key_bytes`], decode only the matches).
    pub fn lazy(self) -> LazyAttributes<'a> {
        LazyAttributes { inner: self }
    }
}

/// Iterator over attributes whose values are decoded on demand; see [`AttributeIter::lazy`].
#[derive(Debug, Clone)]
pub struct LazyAttributes<'a> {
    inner: AttributeIter<'a>,
}

/// One attribute of a [`LazyAttributes`] iteration.
#[derive(Debug, Clone, Copy)]
pub struct LazyAttribute<'a> {
    kv: &'a [u8],
    key: &'a [u8],
}

impl<'a> LazyAttribute<'a> {
    /// The attribute whose `KeyValue` message is `kv`.
    #[inline(always)]
    pub(crate) fn of(kv: &'a [u8]) -> Self {
        LazyAttribute {
            kv,
            key: raw_key(kv),
        }
    }

    /// The key's bytes, not checked for UTF-8 (validated input always is): comparing them
    /// with a `&str`'s bytes is the same as comparing the strings.
    pub fn key_bytes(&self) -> &'a [u8] {
        self.key
    }

    /// The key, or `""` if it is not UTF-8.
    pub fn key(&self) -> &'a str {
        std::str::from_utf8(self.key).unwrap_or("")
    }

    /// The decoded value; [`AnyValueView::Empty`] when absent.
    pub fn value(&self) -> AnyValueView<'a> {
        value_of(self.kv)
    }
}

impl<'a> Iterator for LazyAttributes<'a> {
    type Item = LazyAttribute<'a>;

    // Inlined into the caller's scan: a call per attribute costs a third of reading it.
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let kv = match self.inner.head.next() {
            Some(kv) => kv,
            None => self.inner.tail.next()?,
        };
        Some(LazyAttribute::of(kv))
    }
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = KeyValueView<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let kv = match self.head.next() {
            Some(kv) => kv,
            None => self.tail.next()?,
        };
        Some(key_value(kv))
    }
}

/// Walks nested length-delimited fields: yields the payload of every field
/// `path[last]` inside every `path[last-1]` … inside every `path[0]` of the
/// starting message. Three levels cover every path the schema needs, so the
/// stack lives inline and iteration never allocates.
#[derive(Debug, Clone)]
pub(crate) struct PathIter<'a> {
    cursors: [Cursor<'a>; 3],
    path: &'static [u32],
    active: usize,
}

impl<'a> PathIter<'a> {
    pub(crate) fn new(msg: &'a [u8], path: &'static [u32]) -> Self {
        PathIter {
            cursors: [Cursor::new(msg), Cursor::empty(), Cursor::empty()],
            path,
            active: 0,
        }
    }
}

impl<'a> Iterator for PathIter<'a> {
    type Item = &'a [u8];

    // Inlined into attribute scans (ten or so calls per span): as a call, saving and
    // restoring registers cost about as much as reading the field.
    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        // One level (span, event and link attributes): a plain scan of the message's fields.
        if let [want] = *self.path {
            let cursor = self.cursors.first_mut()?;
            if let Some(payload) = cursor.next_short_len_field(want) {
                return Some(payload);
            }
            loop {
                if let (tag, Value::Len(payload)) = cursor.next_lenient()? {
                    if tag == want {
                        return Some(payload.rest());
                    }
                }
            }
        }
        self.next_nested()
    }
}

impl<'a> PathIter<'a> {
    #[inline(never)]
    fn next_nested(&mut self) -> Option<&'a [u8]> {
        loop {
            let want = *self.path.get(self.active)?;
            let cursor = self.cursors.get_mut(self.active)?;
            match cursor.next_lenient() {
                None => {
                    // This level is exhausted: resume the enclosing one.
                    self.active = self.active.checked_sub(1)?;
                }
                Some((tag, Value::Len(payload))) if tag == want => {
                    if self.active + 1 >= self.path.len() {
                        return Some(payload.rest());
                    }
                    let deeper = self.cursors.get_mut(self.active + 1)?;
                    *deeper = Cursor::new(payload.rest());
                    self.active += 1;
                }
                Some(_) => {}
            }
        }
    }
}

/// Builds a `KeyValueView` from the bytes of one `KeyValue` message.
pub(crate) fn key_value(kv: &[u8]) -> KeyValueView<'_> {
    let mut cursor = Cursor::new(kv);
    let mut key = "";
    let mut value: Option<Stream<'_>> = None;
    while let Some((tag, v)) = cursor.next_lenient() {
        match (tag, v) {
            (1, Value::Len(s)) => key = std::str::from_utf8(s.rest()).unwrap_or(""),
            (2, Value::Len(s)) if value.is_none() => {
                // Later `value` occurrences merge into this one; they are all in
                // the rest of this KeyValue.
                value = Some(Stream {
                    head: s.rest(),
                    tail: cursor.rest(),
                });
            }
            _ => {}
        }
    }
    KeyValueView {
        key,
        value: value.map(resolve_any).unwrap_or(AnyValueView::Empty),
    }
}

/// The value of one `KeyValue` message, as [`key_value`] finds it, without decoding the key.
fn value_of(kv: &[u8]) -> AnyValueView<'_> {
    if let Some(value) = simple_value_of(kv) {
        return value;
    }
    let mut cursor = Cursor::new(kv);
    while let Some((tag, v)) = cursor.next_lenient() {
        if let (2, Value::Len(s)) = (tag, v) {
            return resolve_any(Stream {
                head: s.rest(),
                tail: cursor.rest(),
            });
        }
    }
    AnyValueView::Empty
}

/// [`value_of`] for the layout nearly every encoder writes: the key, then one `value` that
/// ends the message and holds one string, bool or one-byte int, all with one-byte lengths.
/// `None` means "not that layout", never a different answer: nothing follows that could
/// merge into the value or replace it.
#[inline(always)]
fn simple_value_of(kv: &[u8]) -> Option<AnyValueView<'_>> {
    let [0x0a, klen, rest @ ..] = kv else {
        return None;
    };
    if *klen >= 0x80 {
        return None;
    }
    let [0x12, vlen, value @ ..] = rest.get(usize::from(*klen)..)? else {
        return None;
    };
    if *vlen >= 0x80 || value.len() != usize::from(*vlen) {
        return None;
    }
    match value {
        [0x0a, slen, s @ ..] if *slen < 0x80 && s.len() == usize::from(*slen) => {
            Some(AnyValueView::String(std::str::from_utf8(s).unwrap_or("")))
        }
        [0x10, b] if *b < 0x80 => Some(AnyValueView::Bool(*b != 0)),
        [0x18, x] if *x < 0x80 => Some(AnyValueView::Int(i64::from(*x))),
        _ => None,
    }
}

/// Applies protobuf oneof merge rules to the fields of a (possibly merged)
/// `AnyValue`: the last oneof field wins; a message variant merges all of its
/// occurrences after the last occurrence of any other variant.
fn resolve_any(stream: Stream<'_>) -> AnyValueView<'_> {
    let mut tail = Cursor::new(stream.tail);
    let mut segment = Cursor::new(stream.head);
    let mut last_tag = 0u32;
    let mut scalar = AnyValueView::Empty;
    let mut run = Stream::default();
    loop {
        loop {
            let before = segment.rest();
            let Some((tag, v)) = segment.next_lenient() else {
                break;
            };
            match (tag, v) {
                (1, Value::Len(s)) => {
                    scalar = AnyValueView::String(std::str::from_utf8(s.rest()).unwrap_or(""));
                }
                (2, Value::Varint(x)) => scalar = AnyValueView::Bool(x != 0),
                (3, Value::Varint(x)) => scalar = AnyValueView::Int(x as i64),
                (4, Value::Fixed64(x)) => scalar = AnyValueView::Double(f64::from_bits(x)),
                (5 | 6, Value::Len(_)) => {
                    if last_tag != tag {
                        run = Stream {
                            head: before,
                            tail: tail.rest(),
                        };
                    }
                }
                (7, Value::Len(s)) => scalar = AnyValueView::Bytes(s.rest()),
                (8, Value::Varint(_)) => scalar = AnyValueView::Empty,
                // Unknown fields do not touch the oneof.
                _ => continue,
            }
            last_tag = tag;
        }
        // Continue with the next merged occurrence, if any.
        let next = loop {
            match tail.next_lenient() {
                Some((2, Value::Len(s))) => break Some(s),
                Some(_) => {}
                None => break None,
            }
        };
        match next {
            Some(s) => segment = Cursor::new(s.rest()),
            None => break,
        }
    }
    match last_tag {
        5 => AnyValueView::Array(ArrayView { stream: run }),
        6 => AnyValueView::KvList(KvListView { stream: run }),
        _ => scalar,
    }
}

impl<'a> AnyValueView<'a> {
    /// The string if this is a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            AnyValueView::String(s) => Some(s),
            _ => None,
        }
    }

    /// pdata's `Value.Str()`: the string, or `""` for any other type.
    pub fn str_or_empty(&self) -> &'a str {
        self.as_str().unwrap_or("")
    }

    /// Appends pdata's `Value.AsString()` (as used by the Go spanmetrics
    /// connector for label values) to `out`:
    ///
    /// - empty → `""`; string → as is; bool → `true`/`false`; int → decimal;
    /// - double → Go's `float64AsString` (ES6-style shortest form: fixed
    ///   notation unless |f| < 1e-6 or ≥ 1e21, then `1e-7` / `1e+21`);
    ///   NaN/±Inf → `json: unsupported value: NaN` / `+Inf` / `-Inf`;
    /// - bytes → standard base64 with padding;
    /// - array / kvlist → `json.Marshal(AsRaw())`: maps with keys sorted
    ///   bytewise and the last duplicate key winning, strings escaped as Go does
    ///   (HTML-safe `\u003c` `\u003e` `\u0026`, `\u2028`/`\u2029`, `\b` `\f` `\n`
    ///   `\r` `\t`, other control characters `\u00XX`), nested empty → `null`,
    ///   nested empty bytes → `null` (pdata's `ByteSlice.AsRaw` returns a nil
    ///   slice), nested bytes → base64 string. If the value contains NaN or
    ///   ±Inf anywhere, Go's `json.Marshal` fails and `AsString` returns `""`;
    ///   so does this.
    ///
    /// Allocation: none for scalars beyond growing `out`; kvlists need one
    /// temporary `Vec` per map to sort keys (attribute maps are rare).
    ///
    /// Known gap: Go before 1.22 wrote `\b`/`\f` as `\u0008`/`\u000c`; this
    /// follows current Go.
    pub fn write_as_string(&self, out: &mut String) {
        match self {
            AnyValueView::Empty => {}
            AnyValueView::String(s) => out.push_str(s),
            AnyValueView::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            AnyValueView::Int(i) => {
                let _ = write!(out, "{i}");
            }
            AnyValueView::Double(f) => {
                if f.is_finite() {
                    write_go_float(*f, out);
                } else {
                    // Go: fmt.Sprintf("json: unsupported value: %s", FormatFloat(f, 'g', -1, 64))
                    out.push_str("json: unsupported value: ");
                    out.push_str(if f.is_nan() {
                        "NaN"
                    } else if *f > 0.0 {
                        "+Inf"
                    } else {
                        "-Inf"
                    });
                }
            }
            AnyValueView::Bytes(b) => write_base64(b, out),
            AnyValueView::Array(_) | AnyValueView::KvList(_) => {
                let start = out.len();
                if write_json(self, out, RECURSION_LIMIT).is_err() {
                    // json.Marshal error is ignored in Go and yields "".
                    out.truncate(start);
                }
            }
        }
    }

    /// Convenience wrapper around [`write_as_string`](Self::write_as_string).
    pub fn to_as_string(&self) -> String {
        let mut s = String::new();
        self.write_as_string(&mut s);
        s
    }
}

fn write_base64(bytes: &[u8], out: &mut String) {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode_string(bytes, out);
}

/// Go's `float64AsString` / encoding/json float encoding for finite values.
fn write_go_float(f: f64, out: &mut String) {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the same shortest digits as Go's
        // `AppendFloat(f, 'e', -1, 64)` but writes the exponent as `e-7` /
        // `e21`; Go writes `e-07` (cleaned up to `e-7` by float64AsString) and
        // `e+21`. Only the `+` is missing.
        let start = out.len();
        let _ = write!(out, "{f:e}");
        if let Some(e) = out.get(start..).and_then(|s| s.find('e')) {
            let after = start + e + 1;
            if out.get(after..after + 1) != Some("-") {
                out.insert(after, '+');
            }
        }
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form in plain
        // decimal notation, like Go's `AppendFloat(f, 'f', -1, 64)`.
        let _ = write!(out, "{f}");
    }
}

/// json.Marshal would fail (NaN or infinity inside an array/map).
struct Unsupported;

fn write_json(value: &AnyValueView<'_>, out: &mut String, depth: u32) -> Result<(), Unsupported> {
    // Validated input cannot nest deeper than prost's limit; the guard only
    // keeps a hostile caller-constructed chain from exhausting the stack.
    let depth = depth.checked_sub(1).ok_or(Unsupported)?;
    match value {
        AnyValueView::Empty => out.push_str("null"),
        AnyValueView::String(s) => write_json_string(s, out),
        AnyValueView::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AnyValueView::Int(i) => {
            let _ = write!(out, "{i}");
        }
        AnyValueView::Double(f) => {
            if !f.is_finite() {
                return Err(Unsupported);
            }
            write_go_float(*f, out);
        }
        AnyValueView::Bytes(b) => {
            if b.is_empty() {
                out.push_str("null");
            } else {
                out.push('"');
                write_base64(b, out);
                out.push('"');
            }
        }
        AnyValueView::Array(a) => {
            out.push('[');
            for (i, element) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&element, out, depth)?;
            }
            out.push(']');
        }
        AnyValueView::KvList(m) => {
            // Go builds a map (later duplicates overwrite earlier ones) and
            // json.Marshal sorts its keys bytewise. A stable sort keeps wire
            // order among equal keys, so the last of each run is the winner.
            let mut entries: Vec<KeyValueView<'_>> = m.iter().collect();
            entries.sort_by(|a, b| a.key.cmp(b.key));
            out.push('{');
            let mut first = true;
            let mut iter = entries.iter().peekable();
            while let Some(kv) = iter.next() {
                if iter.peek().is_some_and(|next| next.key == kv.key) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_string(kv.key, out);
                out.push(':');
                write_json(&kv.value, out, depth)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Go encoding/json string encoding with its default HTML escaping.
fn write_json_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(char::from(
                    HEX.get((b >> 4) as usize).copied().unwrap_or(b'0'),
                ));
                out.push(char::from(
                    HEX.get((b & 0xf) as usize).copied().unwrap_or(b'0'),
                ));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl fmt::Display for AnyValueView<'_> {
    /// Same text as [`AnyValueView::write_as_string`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyValueView::String(s) => f.write_str(s),
            other => f.write_str(&other.to_as_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `KeyValue{key: "k", value}` with `value` already encoded as an `AnyValue`, plus `extra`
    /// bytes after it.
    fn kv(value: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut out = vec![0x0a, 1, b'k', 0x12, value.len() as u8];
        out.extend_from_slice(value);
        out.extend_from_slice(extra);
        out
    }

    #[test]
    fn the_one_step_read_answers_only_for_the_usual_layout() {
        let usual: &[(&[u8], AnyValueView<'_>)] = &[
            (&[0x0a, 2, b'h', b'i'], AnyValueView::String("hi")),
            (&[0x10, 1], AnyValueView::Bool(true)),
            (&[0x18, 0x7f], AnyValueView::Int(127)),
        ];
        for (value, want) in usual {
            let bytes = kv(value, &[]);
            assert_eq!(simple_value_of(&bytes), Some(*want), "{value:?}");
            assert_eq!(value_of(&bytes), *want);
        }
        // A second `value` merges into the first (the last scalar wins): the general reader's.
        let merged = kv(&[0x10, 1], &[0x12, 2, 0x18, 5]);
        assert_eq!(simple_value_of(&merged), None);
        assert_eq!(value_of(&merged), AnyValueView::Int(5));
        // Multi-byte ints and doubles go the general way too, with the same answer as ever.
        let wide = kv(&[0x18, 0x80, 0x01], &[]);
        assert_eq!(simple_value_of(&wide), None);
        assert_eq!(value_of(&wide), AnyValueView::Int(128));
    }

    #[test]
    fn a_short_field_is_taken_only_when_it_is_the_asked_one_and_whole() {
        let bytes = [0x4a, 2, 1, 2, 0x4a, 5, 1];
        let mut cursor = Cursor::new(&bytes);
        assert_eq!(cursor.next_short_len_field(8), None, "another field number");
        assert_eq!(cursor.next_short_len_field(9), Some(&[1u8, 2][..]));
        assert_eq!(cursor.next_short_len_field(9), None, "runs past the end");
        assert_eq!(
            cursor.rest(),
            &[0x4a, 5, 1],
            "nothing consumed when refused"
        );
    }
}
