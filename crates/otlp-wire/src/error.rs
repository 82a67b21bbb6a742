//! Error type for the walker.
//!
//! The success path never allocates; an error carries a human-readable path
//! ("field 5 (name) of span 3 of scope_spans 0 of resource_spans 1") that is
//! built only while the error propagates outwards, so it costs nothing until
//! something is actually wrong.

use std::fmt;

/// Protobuf wire types (the low three bits of a field key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireType {
    /// 0: varint.
    Varint,
    /// 1: 8 bytes, little endian.
    Fixed64,
    /// 2: length-delimited (bytes, string, message, packed).
    Len,
    /// 3: start of a (deprecated) group.
    StartGroup,
    /// 4: end of a (deprecated) group.
    EndGroup,
    /// 5: 4 bytes, little endian.
    Fixed32,
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireType::Varint => "varint",
            WireType::Fixed64 => "fixed64",
            WireType::Len => "length-delimited",
            WireType::StartGroup => "start-group",
            WireType::EndGroup => "end-group",
            WireType::Fixed32 => "fixed32",
        };
        f.write_str(s)
    }
}

/// What is wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The input ends (or a length-delimited field ends) before the value does.
    #[error("truncated: value runs past the end of its enclosing message")]
    Truncated,
    /// A varint is longer than 10 bytes or does not fit in 64 bits.
    #[error("varint longer than 10 bytes or overflowing 64 bits")]
    VarintOverflow,
    /// A field key does not fit in 32 bits.
    #[error("field key {0} does not fit in 32 bits")]
    InvalidKey(u64),
    /// Field number 0 is reserved.
    #[error("field number 0 is invalid")]
    InvalidTag,
    /// Wire types 6 and 7 do not exist.
    #[error("invalid wire type {0}")]
    InvalidWireType(u8),
    /// A known field arrived with a wire type its declared type cannot have.
    #[error("wire type {actual}, expected {expected}")]
    UnexpectedWireType {
        /// The wire type the schema requires.
        expected: WireType,
        /// The wire type found in the input.
        actual: WireType,
    },
    /// A `string` field is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// An end-group marker without a matching start-group.
    #[error("unexpected end-group marker")]
    UnexpectedEndGroup,
    /// Messages (or groups) nest deeper than prost's recursion limit (100).
    #[error("nesting exceeds the recursion limit of {}", crate::RECURSION_LIMIT)]
    TooDeep,
}

/// A malformed OTLP export request (traces, metrics or logs): what is wrong, where, and at
/// which byte.
///
/// Boxed so `Result<_, WireError>` stays one pointer wide on the hot path;
/// the box is only allocated when something is actually wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct WireError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{} (at byte {})", PathPrefix(.path), .kind, .offset)]
struct Inner {
    #[source]
    kind: WireErrorKind,
    offset: usize,
    path: String,
}

impl WireError {
    #[cold]
    pub(crate) fn new(kind: WireErrorKind, offset: usize) -> Self {
        WireError(Box::new(Inner {
            kind,
            offset,
            path: String::new(),
        }))
    }

    /// What is wrong.
    pub fn kind(&self) -> &WireErrorKind {
        &self.0.kind
    }

    /// Byte offset in the request where the problem was detected.
    pub fn offset(&self) -> usize {
        self.0.offset
    }

    /// Location inside the message tree, innermost first, e.g.
    /// `field 5 (name) of span 3 of scope_spans 0 of resource_spans 1`.
    /// Empty when the problem is at the top level of the request.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Adds an enclosing location (called while the error propagates outwards).
    #[cold]
    pub(crate) fn within(mut self, segment: fmt::Arguments<'_>) -> Self {
        use fmt::Write as _;
        let path = &mut self.0.path;
        if !path.is_empty() {
            path.push_str(" of ");
        }
        let _ = path.write_fmt(segment);
        self
    }

    #[cold]
    pub(crate) fn field(self, tag: u32, name: &str) -> Self {
        self.within(format_args!("field {tag} ({name})"))
    }
}

/// Renders a non-empty path followed by ": ".
struct PathPrefix<'p>(&'p str);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}
