//! The transform processor's settings, with otelcol's two spellings of a statement list:
//! the basic form (a list of statement strings, context inferred) and the advanced form (a
//! list of `{context, conditions, statements, error_mode}` groups). Mixing them in one list
//! is refused, as otelcol does.

use std::fmt;

use redline_ottl::{ContextKind, ErrorMode};
use redline_pipeline::config::Unsupported;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// otelcol's default is `ignore`.
    #[serde(default = "ignore")]
    pub error_mode: ErrorMode,
    #[serde(default)]
    pub trace_statements: StatementLists,
    #[serde(default)]
    pub metric_statements: StatementLists,
    #[serde(default)]
    pub log_statements: StatementLists,
    pub profile_statements: Option<Unsupported>,
    /// Needs an otelcol feature gate (`transform.flatten.logs`) Redline does not have.
    pub flatten_data: Option<Unsupported>,
}

fn ignore() -> ErrorMode {
    ErrorMode::Ignore
}

/// One `*_statements` key: its groups, in order.
#[derive(Debug, Default)]
pub struct StatementLists(pub Vec<ContextStatements>);

/// One group of statements sharing a context, its `conditions` and error mode.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextStatements {
    /// `None` (basic form, or an advanced group without `context`): inferred from the paths.
    #[serde(default, deserialize_with = "context_name")]
    pub context: Option<ContextKind>,
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub statements: Vec<String>,
    pub error_mode: Option<ErrorMode>,
    pub shared_cache: Option<Unsupported>,
}

fn context_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ContextKind>, D::Error> {
    let name = String::deserialize(d)?;
    ContextKind::from_name(&name).map(Some).ok_or_else(|| {
        de::Error::custom(format!(
            "unknown context \"{name}\"; supported: resource, scope, span, spanevent, metric, datapoint, log"
        ))
    })
}

impl<'de> Deserialize<'de> for StatementLists {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ListsVisitor)
    }
}

/// One item of the list: a basic statement or an advanced group.
enum Item {
    Basic(String),
    Group(ContextStatements),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a statement string or a map with `context` and `statements`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        Ok(Item::Basic(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Item, E> {
        Ok(Item::Basic(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
        ContextStatements::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item::Group)
    }
}

struct ListsVisitor;

impl<'de> Visitor<'de> for ListsVisitor {
    type Value = StatementLists;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statements, or of statement groups")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatementLists, A::Error> {
        let mut basic = Vec::new();
        let mut groups = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            match item {
                Item::Basic(s) => basic.push(s),
                Item::Group(g) => groups.push(g),
            }
        }
        if !basic.is_empty() && !groups.is_empty() {
            return Err(de::Error::custom(
                "configuring multiple configuration styles is not supported: use only statement \
                 strings (basic) or only groups with `statements` (advanced)",
            ));
        }
        if !basic.is_empty() {
            groups.push(ContextStatements {
                statements: basic,
                ..Default::default()
            });
        }
        Ok(StatementLists(groups))
    }
}
