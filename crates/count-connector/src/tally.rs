//! Counting one resource's items into its metrics, as otelcol's countconnector counter does:
//! one int point per distinct attribute set, start and end times the earliest and latest
//! item times seen (any item, counted or not), or the time of counting when there were none.

use hashbrown::HashMap;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, Sum,
};
use prost::Message;
use redline_otlp_wire::{AnyValueView, AttributesRef, KeyValueView};
use redline_ottl::{ConditionSet, ExecError};

use crate::config::Definition;

/// The counts of one section's metrics within one resource.
pub(crate) struct Tally<'d> {
    definitions: &'d [Definition],
    /// Per point: its metric (index into `definitions`), attributes and count, in the order
    /// first counted.
    points: Vec<(usize, Vec<KeyValue>, u64)>,
    /// Point index by metric and encoded attributes (attributes come in the configured
    /// order, so equal sets encode equally).
    index: HashMap<(usize, Vec<u8>), usize>,
    /// Earliest and latest non-zero item time.
    times: Option<(u64, u64)>,
    /// Each metric's attributes of the item being counted, `None` when one is missing.
    found: Vec<Option<Vec<KeyValue>>>,
}

impl<'d> Tally<'d> {
    pub fn new(definitions: &'d [Definition]) -> Self {
        Self {
            definitions,
            points: Vec::new(),
            index: HashMap::new(),
            times: None,
            found: Vec::with_capacity(definitions.len()),
        }
    }

    pub fn saw_time(&mut self, time: u64) {
        if time == 0 {
            return;
        }
        self.times = Some(match self.times {
            None => (time, time),
            Some((first, last)) => (first.min(time), last.max(time)),
        });
    }

    /// Looks up an item's attributes for every metric: its own, its scope's and its
    /// resource's, searched in that order. [`Tally::count`] then counts it.
    pub fn look_up(&mut self, attributes: [&dyn Attributes; 3]) {
        let definitions = self.definitions;
        self.found.clear();
        self.found
            .extend(definitions.iter().map(|d| dimensions(d, attributes)));
    }

    /// Counts the item last looked up in each metric it has every attribute of and whose
    /// conditions `matches` judges it to meet. The first error fails the request, as
    /// otelcol's `ottl.PropagateError` does.
    pub fn count(
        &mut self,
        mut matches: impl FnMut(&ConditionSet) -> Result<bool, ExecError>,
    ) -> Result<(), ExecError> {
        let definitions = self.definitions;
        for (i, definition) in definitions.iter().enumerate() {
            let Some(dims) = self.found.get_mut(i).and_then(Option::take) else {
                continue;
            };
            if let Some(set) = &definition.condition {
                if !matches(set)? {
                    continue;
                }
            }
            self.increment(i, dims);
        }
        Ok(())
    }

    fn increment(&mut self, definition: usize, attributes: Vec<KeyValue>) {
        let key = (definition, encode(&attributes));
        match self.index.get(&key) {
            Some(&at) => self.points[at].2 += 1,
            None => {
                self.index.insert(key, self.points.len());
                self.points.push((definition, attributes, 1));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Appends one delta, monotonic sum per metric that counted something.
    pub fn append_to(self, metrics: &mut Vec<Metric>, now: u64) -> usize {
        let (start, end) = self.times.unwrap_or((now, now));
        let mut sums: Vec<Option<Metric>> =
            self.definitions.iter().map(|_| None::<Metric>).collect();
        let points = self.points.len();
        for (definition, attributes, count) in self.points {
            let metric = sums[definition].get_or_insert_with(|| {
                let d = &self.definitions[definition];
                Metric {
                    name: d.name.clone(),
                    description: d.description.clone(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: AggregationTemporality::Delta as i32,
                        is_monotonic: true,
                    })),
                    ..Metric::default()
                }
            });
            if let Some(metric::Data::Sum(sum)) = &mut metric.data {
                sum.data_points.push(NumberDataPoint {
                    attributes,
                    start_time_unix_nano: start,
                    time_unix_nano: end,
                    // A count past i64::MAX is not reachable in one request.
                    value: Some(number_data_point::Value::AsInt(
                        i64::try_from(count).unwrap_or(i64::MAX),
                    )),
                    ..NumberDataPoint::default()
                });
            }
        }
        metrics.extend(sums.into_iter().flatten());
        points
    }
}

/// The metric's attribute values for an item: the first attribute of each key on the item,
/// else its scope, else its resource, else the default; `None` when one has none. A key
/// configured twice is one attribute of the set, so the set can never be complete and the
/// metric never counts, as in otelcol.
fn dimensions(definition: &Definition, attributes: [&dyn Attributes; 3]) -> Option<Vec<KeyValue>> {
    let mut out: Vec<KeyValue> = Vec::with_capacity(definition.attributes.len());
    for dimension in &definition.attributes {
        let found = attributes
            .iter()
            .find_map(|list| list.value_of(&dimension.key))
            .or_else(|| dimension.default.clone())?;
        if out.iter().any(|kv| kv.key == dimension.key) {
            return None;
        }
        out.push(KeyValue {
            key: dimension.key.clone(),
            value: Some(found),
            ..KeyValue::default()
        });
    }
    Some(out)
}

fn encode(attributes: &[KeyValue]) -> Vec<u8> {
    let mut buf = Vec::new();
    for kv in attributes {
        // Writing to a Vec cannot fail.
        let _ = kv.encode_length_delimited(&mut buf);
    }
    buf
}

/// Attributes an item's dimensions are looked up in: decoded, or read in place from the
/// request's bytes.
pub(crate) trait Attributes {
    /// The value of the first attribute with this key, like pdata's `Map.Get`; an attribute
    /// without a value is present, its value empty.
    fn value_of(&self, key: &str) -> Option<AnyValue>;
}

/// Decoded attributes.
pub(crate) struct Decoded<'a>(pub &'a [KeyValue]);

impl Attributes for Decoded<'_> {
    fn value_of(&self, key: &str) -> Option<AnyValue> {
        self.0
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.clone().unwrap_or_default())
    }
}

impl Attributes for AttributesRef<'_> {
    fn value_of(&self, key: &str) -> Option<AnyValue> {
        self.get(key).map(|v| to_proto(&v))
    }
}

/// A value read in place, copied into a prost `AnyValue`: arrays and maps whole, entries in
/// wire order. Views exist only for validated bytes, whose nesting the receiver bounded.
pub(crate) fn to_proto(value: &AnyValueView<'_>) -> AnyValue {
    let value = match *value {
        AnyValueView::Empty => None,
        AnyValueView::String(s) => Some(any_value::Value::StringValue(s.to_owned())),
        AnyValueView::Bool(b) => Some(any_value::Value::BoolValue(b)),
        AnyValueView::Int(i) => Some(any_value::Value::IntValue(i)),
        AnyValueView::Double(d) => Some(any_value::Value::DoubleValue(d)),
        AnyValueView::Bytes(b) => Some(any_value::Value::BytesValue(b.to_vec())),
        AnyValueView::Array(a) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: a.iter().map(|v| to_proto(&v)).collect(),
        })),
        AnyValueView::KvList(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: m.iter().map(|kv| key_value(&kv)).collect(),
        })),
    };
    AnyValue { value }
}

pub(crate) fn key_value(kv: &KeyValueView<'_>) -> KeyValue {
    KeyValue {
        key: kv.key.to_owned(),
        value: Some(to_proto(&kv.value)),
        ..KeyValue::default()
    }
}
