//! Merging the detected resource into each batch's resources, as otelcol's
//! `MergeResource` / `MergeSchemaURL` do.

use bytes::Bytes;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use redline_otlp_wire::{splice_resources, ResourceEdit};
use redline_pipeline::edit::{undecodable, BatchEditor, Edited};
use redline_pipeline::{Batch, Refused};

/// What detection found: attributes in order, and a schema URL (empty when none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detection {
    pub attributes: Vec<KeyValue>,
    pub schema_url: String,
}

/// Merges `from` into `to`: into an empty list everything is copied in order; otherwise
/// each key replaces the existing value (`overwrite`) or is added only when missing. Whether
/// `to` changed.
pub fn merge_attributes(to: &mut Vec<KeyValue>, from: &[KeyValue], overwrite: bool) -> bool {
    if from.is_empty() {
        return false;
    }
    if to.is_empty() {
        to.extend_from_slice(from);
        return true;
    }
    let mut changed = false;
    for kv in from {
        match to.iter_mut().find(|existing| existing.key == kv.key) {
            Some(existing) if overwrite => {
                if existing.value != kv.value {
                    existing.value = kv.value.clone();
                    changed = true;
                }
            }
            Some(_) => {}
            None => {
                to.push(kv.clone());
                changed = true;
            }
        }
    }
    changed
}

/// Applies a [`Detection`] to every resource of a batch.
pub struct DetectionEditor {
    id: String,
    detection: Detection,
    overwrite: bool,
}

impl DetectionEditor {
    pub fn new(id: String, detection: Detection, overwrite: bool) -> Self {
        Self {
            id,
            detection,
            overwrite,
        }
    }
}

impl BatchEditor for DetectionEditor {
    fn edit(&self, batch: &Batch) -> Result<Edited, Refused> {
        let edited = splice_resources(&batch.raw, |slot| {
            // A group with no schema URL takes the detected one; one it has is kept.
            let schema_url = (slot.schema_url.is_empty() && !self.detection.schema_url.is_empty())
                .then(|| self.detection.schema_url.clone());
            let mut resource = None;
            if !self.detection.attributes.is_empty() {
                let mut decoded = Resource::default();
                for chunk in slot.resource {
                    decoded.merge(*chunk)?;
                }
                if merge_attributes(
                    &mut decoded.attributes,
                    &self.detection.attributes,
                    self.overwrite,
                ) {
                    resource = Some(decoded.encode_to_vec());
                }
            }
            Ok::<_, prost::DecodeError>(Some(ResourceEdit {
                resource,
                schema_url,
            }))
        })
        .map_err(|e| undecodable(&self.id, e))?;
        Ok(match edited {
            Some(raw) => Edited::Replaced(Batch::new(batch.signal, Bytes::from(raw), batch.items)),
            None => Edited::Unchanged,
        })
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn merge_copies_overrides_or_keeps() {
        let detected = [kv("host.name", "h"), kv("os.type", "linux")];
        let mut empty = Vec::new();
        assert!(merge_attributes(&mut empty, &detected, false));
        assert_eq!(empty, detected);

        let mut existing = vec![kv("service.name", "s"), kv("host.name", "mine")];
        assert!(merge_attributes(&mut existing, &detected, true));
        assert_eq!(
            existing,
            vec![
                kv("service.name", "s"),
                kv("host.name", "h"),
                kv("os.type", "linux")
            ]
        );

        let mut kept = vec![kv("host.name", "mine")];
        assert!(merge_attributes(&mut kept, &detected, false));
        assert_eq!(kept, vec![kv("host.name", "mine"), kv("os.type", "linux")]);

        let mut complete = vec![kv("host.name", "h"), kv("os.type", "linux")];
        assert!(
            !merge_attributes(&mut complete, &detected, true),
            "nothing to change"
        );
        assert!(!merge_attributes(&mut complete, &[], true));
    }
}
