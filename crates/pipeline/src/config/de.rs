//! A serde `Deserializer` over a [`Node`] tree whose errors carry the dotted key path and the
//! position of the value that failed.

use std::fmt;
use std::sync::Arc;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use super::unsupported::Unsupported;
use super::yaml::{join_key, key_mark_for, key_text};
use super::{ConfigError, Mark, Node, NodeValue};

/// Deserializes `node` into `T`. `path` and `mark` locate `node` itself, for errors about it
/// as a whole (a missing field, a wrong type at the top).
pub(crate) fn from_node<T: DeserializeOwned>(
    node: &Node,
    file: &Arc<str>,
    path: &str,
    mark: Mark,
) -> Result<T, ConfigError> {
    T::deserialize(NodeDe::new(node, path.to_owned())).map_err(|e| {
        let e = e.at(path, mark);
        let (path, mark) = e.location.unwrap_or_default();
        ConfigError::new(Some(file.clone()), Some(mark), path, e.reason)
    })
}

/// The error of [`NodeDe`]: the reason, and where it happened once the innermost node that
/// saw it has said so.
#[derive(Debug)]
pub(crate) struct DeError {
    reason: String,
    location: Option<(String, Mark)>,
}

impl DeError {
    /// Records where the error happened, unless a deeper node already did.
    fn at(mut self, path: &str, mark: Mark) -> Self {
        if self.location.is_none() {
            self.location = Some((path.to_owned(), mark));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            reason: msg.to_string(),
            location: None,
        }
    }
}

pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    /// A list item: `null` there is the empty string when a string is wanted, as mapstructure
    /// gives a slice element decoded from nil its zero value.
    list_item: bool,
}

impl<'a> NodeDe<'a> {
    fn new(node: &'a Node, path: String) -> Self {
        Self {
            node,
            path,
            list_item: false,
        }
    }

    fn text(&self) -> Option<&'a str> {
        match &self.node.value {
            NodeValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// No value: `null`, `~`, nothing, or a plain value that was only an unset `${env:VAR}`.
    fn is_nullish(&self) -> bool {
        match &self.node.value {
            NodeValue::Null => true,
            NodeValue::Scalar { text, quoted } => !quoted && text.is_empty(),
            _ => false,
        }
    }

    /// What the node is, in serde's words, for "invalid type" errors.
    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.value {
            NodeValue::Null => Unexpected::Other("null"),
            NodeValue::Seq(_) => Unexpected::Seq,
            NodeValue::Map(_) => Unexpected::Map,
            NodeValue::Scalar { text, quoted: true } => Unexpected::Str(text),
            NodeValue::Scalar {
                text,
                quoted: false,
            } => {
                if let Some(b) = parse_bool(text) {
                    Unexpected::Bool(b)
                } else if let Some(n) = parse_int(text) {
                    match (u64::try_from(n), i64::try_from(n)) {
                        (Ok(u), _) => Unexpected::Unsigned(u),
                        (_, Ok(i)) => Unexpected::Signed(i),
                        _ => Unexpected::Str(text),
                    }
                } else if let Some(f) = parse_float(text) {
                    Unexpected::Float(f)
                } else {
                    Unexpected::Str(text)
                }
            }
        }
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> DeError {
        de::Error::invalid_type(self.unexpected(), expected)
    }

    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        // Quoted numbers are accepted too: otelcol's mapstructure decodes "8" into an int.
        match self.text().and_then(parse_int) {
            Some(n) => {
                if let Ok(u) = u64::try_from(n) {
                    visitor.visit_u64(u)
                } else if let Ok(i) = i64::try_from(n) {
                    visitor.visit_i64(i)
                } else if let Ok(u) = u128::try_from(n) {
                    visitor.visit_u128(u)
                } else {
                    visitor.visit_i128(n)
                }
            }
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.text();
        if let Some(n) = text.and_then(parse_int) {
            // Exact for every integer a config would hold; beyond 2^53 precision loss is
            // what the user asked for by writing an integer into a float setting.
            #[allow(clippy::cast_precision_loss)]
            return visitor.visit_f64(n as f64);
        }
        match text.and_then(parse_float) {
            Some(f) => visitor.visit_f64(f),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let split: Vec<Node>;
        let items: &[Node] = match &self.node.value {
            NodeValue::Seq(items) => items,
            _ if self.is_nullish() => &[],
            // confmap's `StringToSliceHookFunc(",")`: a string where a list is wanted is its
            // comma-separated parts, spaces kept (`"a, b"` is `a` and ` b`), `""` none. A
            // plain number or bool is not a string, and stays refused.
            NodeValue::Scalar { text, quoted }
                if *quoted
                    || (parse_bool(text).is_none()
                        && parse_int(text).is_none()
                        && parse_float(text).is_none()) =>
            {
                split = if text.is_empty() {
                    Vec::new()
                } else {
                    text.split(',')
                        .map(|part| Node {
                            mark: self.node.mark,
                            value: NodeValue::Scalar {
                                text: part.to_owned(),
                                quoted: true,
                            },
                        })
                        .collect()
                };
                &split
            }
            _ => return Err(self.invalid_type(&visitor)),
        };
        let mut access = SeqAcc {
            iter: items.iter().enumerate(),
            path: &self.path,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.iter.len();
        if left > 0 {
            return Err(de::Error::invalid_length(
                items.len(),
                &format!("{} elements", items.len() - left).as_str(),
            ));
        }
        Ok(value)
    }

    fn map<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let entries: &[(Node, Node)] = match &self.node.value {
            NodeValue::Map(entries) => entries,
            _ if self.is_nullish() => &[],
            _ => return Err(self.invalid_type(&visitor)),
        };
        visitor.visit_map(MapAcc {
            iter: entries.iter(),
            value: None,
            path: &self.path,
        })
    }
}

/// Whether a plain scalar reads as a boolean or a number (YAML's core schema), not a string.
pub(crate) fn is_typed_plain(text: &str) -> bool {
    parse_bool(text).is_some() || parse_int(text).is_some() || parse_float(text).is_some()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// YAML 1.2 core-schema integers: decimal with an optional sign, `0x` hex, `0o` octal.
fn parse_int(s: &str) -> Option<i128> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, digits)
    };
    // from_str_radix would accept a second sign; the digits must be bare.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -n } else { n })
}

/// YAML 1.2 core-schema floats (Rust's parser alone would also take `inf` or `NaN`).
fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let body = s.trim_start_matches(['+', '-']);
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
    {
        return None;
    }
    s.parse().ok()
}

macro_rules! forward_integer {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                self.integer(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Scalar { text, quoted: true } => visitor.visit_str(text),
            NodeValue::Scalar {
                text,
                quoted: false,
            } => {
                if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if parse_int(text).is_some() {
                    self.integer(visitor)
                } else if let Some(f) = parse_float(text) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            NodeValue::Seq(_) => self.seq(visitor),
            NodeValue::Map(_) => self.map(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text().and_then(parse_bool) {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    forward_integer! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Any scalar is a string when a string is wanted: `true` or `8` into a String field
    /// gives "true" or "8". otelcol refuses a literal number there but takes one a
    /// `${env:...}` reference gave; scalars are typed here after expansion, so both are taken
    /// (compatibility.md §25).
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(text) => visitor.visit_str(text),
            None if self.list_item && self.is_nullish() => visitor.visit_str(""),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text() {
            Some(text) => visitor.visit_bytes(text.as_bytes()),
            None => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_nullish() {
            // `exponential:` with no body still turns the otelcol feature on, so an
            // `Option<Unsupported>` must refuse it rather than read it as "absent". serde gives
            // no other way to learn the option's inner type than the visitor's type name.
            if std::any::type_name::<V>().contains(std::any::type_name::<Unsupported>()) {
                return Err(de::Error::custom(super::unsupported::UNSUPPORTED_REASON));
            }
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_nullish() {
            visitor.visit_unit()
        } else {
            Err(self.invalid_type(&visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Scalar { .. } => visitor.visit_enum(Enum {
                variant: self.node,
                value: None,
                path: self.path,
            }),
            NodeValue::Map(entries) => match entries.as_slice() {
                [(k, v)] => visitor.visit_enum(Enum {
                    variant: k,
                    value: Some(v),
                    path: join_key(&self.path, key_text(k)),
                }),
                _ => Err(de::Error::custom(format_args!(
                    "expected {} as a single `variant: settings` key",
                    Expecting(&visitor)
                ))),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// A visitor's "expected …" text.
struct Expecting<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
}

struct SeqAcc<'a> {
    iter: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a str,
}

impl<'de> SeqAccess<'de> for &mut SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, item)) = self.iter.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        let item_de = NodeDe {
            list_item: true,
            ..NodeDe::new(item, path.clone())
        };
        match seed.deserialize(item_de) {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(e.at(&path, item.mark)),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAcc<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a (Node, Node)>,
    path: &'a str,
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let key = &entry.0;
        let path = join_key(self.path, key_text(key));
        match seed.deserialize(NodeDe::new(key, path.clone())) {
            Ok(k) => Ok(Some(k)),
            // An unknown field lands here: its path and line are the key's.
            Err(e) => Err(e.at(&path, key.mark)),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("map value requested before its key"))?;
        let path = join_key(self.path, key_text(key));
        seed.deserialize(NodeDe::new(value, path.clone()))
            .map_err(|e| e.at(&path, key_mark_for(key, value)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Enum<'a> {
    variant: &'a Node,
    value: Option<&'a Node>,
    /// Path of the variant's settings (the enum's own path for a unit variant).
    path: String,
}

impl<'de, 'a> EnumAccess<'de> for Enum<'a> {
    type Error = DeError;
    type Variant = Variant<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant<'a>), DeError> {
        let name: &str = key_text(self.variant);
        let v = seed
            .deserialize(name.into_deserializer())
            .map_err(|e: DeError| e.at(&self.path, self.variant.mark))?;
        Ok((
            v,
            Variant {
                value: self.value,
                path: self.path,
                mark: self.variant.mark,
            },
        ))
    }
}

struct Variant<'a> {
    value: Option<&'a Node>,
    path: String,
    mark: Mark,
}

impl<'a> Variant<'a> {
    fn settings(&self, expected: &str) -> Result<NodeDe<'a>, DeError> {
        match self.value {
            Some(node) => Ok(NodeDe::new(node, self.path.clone())),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &expected)),
        }
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(node) => {
                let de = NodeDe::new(node, self.path.clone());
                if de.is_nullish() {
                    Ok(())
                } else {
                    Err(de::Error::invalid_type(
                        de.unexpected(),
                        &"no settings for this variant",
                    ))
                }
            }
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let de = self.settings("settings for this variant")?;
        let mark = de.node.mark;
        seed.deserialize(de).map_err(|e| e.at(&self.path, mark))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let de = self.settings("a list for this variant")?;
        de::Deserializer::deserialize_seq(de, visitor).map_err(|e| e.at(&self.path, self.mark))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let de = self.settings("settings for this variant")?;
        de::Deserializer::deserialize_map(de, visitor).map_err(|e| e.at(&self.path, self.mark))
    }
}
