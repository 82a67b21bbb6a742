//! `batch`: otelcol users put a batch processor in every pipeline because the Go collector
//! encodes one export per batch. Redline already batches where it pays off, at the forwarder:
//! the OTLP exporter concatenates whatever is queued into one request (raw protobuf requests
//! concatenate into a valid request), so holding spans back in a processor would only add
//! latency and a window where accepted data sits outside any queue. The processor is
//! therefore accepted with its otelcol keys validated, and passes batches straight through.
//!
//! What it does do is otelcol's handling of client metadata, which decides the tenant a
//! `headers_setter` downstream sends: otelcol's batch processor exports every batch without
//! the client's metadata, unless `metadata_keys` lists keys to batch by, and then with those
//! keys only; a new combination of their values beyond `metadata_cardinality_limit` is
//! refused.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::{
    Batch, BuildContext, BuildError, ClientMetadata, ComponentConfig, ConfigError, Consumer,
    ProcessorFactory, Refused, Reservation, RunningComponent, Signal, SpanTap, TapId,
};
use serde::Deserialize;

/// otelcol's default `metadata_cardinality_limit`.
const DEFAULT_CARDINALITY_LIMIT: u32 = 1000;

/// otelcol's batch processor settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(
        default,
        deserialize_with = "redline_pipeline::duration::deserialize_opt"
    )]
    pub timeout: Option<Duration>,
    pub send_batch_size: Option<u32>,
    pub send_batch_max_size: Option<u32>,
    #[serde(default)]
    pub metadata_keys: Vec<String>,
    pub metadata_cardinality_limit: Option<u32>,
}

impl BatchConfig {
    pub fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        if let (Some(size), Some(max)) = (self.send_batch_size, self.send_batch_max_size) {
            if max != 0 && max < size {
                return Err(config.invalid(
                    "send_batch_max_size",
                    format!("must be 0 or at least send_batch_size ({size})"),
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, key) in self.metadata_keys.iter().enumerate() {
            let lower = key.to_ascii_lowercase();
            if !seen.insert(lower.clone()) {
                return Err(config.invalid(
                    &format!("metadata_keys[{i}]"),
                    format!("duplicate entry in metadata_keys: {lower:?} (case-insensitive)"),
                ));
            }
        }
        Ok(())
    }
}

pub struct BatchProcessorFactory;

impl FactoryInfo for BatchProcessorFactory {
    fn type_name(&self) -> &'static str {
        "batch"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        config.parse::<BatchConfig>()?.validate(config)
    }
}

impl ProcessorFactory for BatchProcessorFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
    }

    fn edits_data(&self) -> bool {
        false
    }

    /// otelcol's batch processor declares `MutatesData` (it splits and merges requests).
    fn mutates_data(&self) -> bool {
        true
    }

    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
        _signal: Signal,
        next: Arc<dyn Consumer>,
    ) -> BuildResult<(Arc<dyn Consumer>, Box<dyn RunningComponent>)> {
        let component = config.id().clone();
        let parsed = config.parse::<BatchConfig>();
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&component, e))?;
            let id = component.to_string();
            tracing::debug!(
                processor = %id,
                "batch: batches pass through; the OTLP exporter coalesces its queue instead"
            );
            let consumer: Arc<dyn Consumer> = Arc::new(MetadataBatcher {
                id,
                keys: parsed
                    .metadata_keys
                    .iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect(),
                limit: parsed
                    .metadata_cardinality_limit
                    .unwrap_or(DEFAULT_CARDINALITY_LIMIT) as usize,
                seen: Mutex::new(HashSet::new()),
                next,
            });
            let running: Box<dyn RunningComponent> = Box::new(NoopRunning);
            Ok((consumer, running))
        })
    }
}

/// Passes batches on with the client metadata otelcol's batch processor would export them
/// with.
struct MetadataBatcher {
    id: String,
    /// `metadata_keys`, lowercase; empty: no metadata goes on.
    keys: Vec<String>,
    /// `metadata_cardinality_limit`; 0 for none.
    limit: usize,
    /// The combinations of the keys' values seen so far (otelcol's batchers, one each, never
    /// retired).
    seen: Mutex<HashSet<Option<ClientMetadata>>>,
    next: Arc<dyn Consumer>,
}

impl MetadataBatcher {
    /// What the batch goes on with, or the refusal of a combination over the limit.
    fn client_of(&self, batch: &Batch) -> Result<Option<ClientMetadata>, Refused> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let narrowed = batch
            .client()
            .map(|c| c.narrowed_to(&self.keys))
            .filter(|c| !c.is_empty());
        let mut seen = self.seen.lock();
        if !seen.contains(&narrowed) {
            if self.limit != 0 && seen.len() >= self.limit {
                // Permanent, as in otelcol: the combinations are never retired.
                return Err(Refused {
                    component: self.id.clone(),
                    reason: "too many batcher metadata-value combinations".to_owned(),
                    retry_after: Duration::from_secs(1),
                    permanent: true,
                });
            }
            seen.insert(narrowed.clone());
        }
        Ok(narrowed)
    }
}

impl Consumer for MetadataBatcher {
    fn reserve(&self, batch: &Batch) -> Result<Box<dyn Reservation>, Refused> {
        let client = self.client_of(batch)?;
        let inner = self.next.reserve(batch)?;
        if client.as_ref() == batch.client() {
            // Nothing to change (the usual case: no receiver keeps metadata).
            return Ok(inner);
        }
        Ok(Box::new(WithClient { inner, client }))
    }

    /// The bytes pass through unchanged, so readers of the receiver's walk still see them.
    fn span_taps(&self, taps: &mut Vec<(TapId, Arc<dyn SpanTap>)>) {
        self.next.span_taps(taps);
    }
}

/// A downstream reservation whose batch goes on with `client`.
struct WithClient {
    inner: Box<dyn Reservation>,
    client: Option<ClientMetadata>,
}

impl Reservation for WithClient {
    fn commit(self: Box<Self>, mut batch: Batch) {
        batch.set_client(self.client);
        self.inner.commit(batch);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use redline_pipeline::consumer::CommitFn;

    use super::*;

    struct Collect(Arc<Mutex<Vec<Option<ClientMetadata>>>>);
    impl Consumer for Collect {
        fn reserve(&self, _: &Batch) -> Result<Box<dyn Reservation>, Refused> {
            let got = self.0.clone();
            Ok(Box::new(CommitFn(move |b: Batch| {
                got.lock().push(b.client().cloned())
            })))
        }
    }

    fn batcher(
        keys: &[&str],
        limit: usize,
    ) -> (MetadataBatcher, Arc<Mutex<Vec<Option<ClientMetadata>>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let b = MetadataBatcher {
            id: "batch".to_owned(),
            keys: keys.iter().map(|k| k.to_ascii_lowercase()).collect(),
            limit,
            seen: Mutex::new(HashSet::new()),
            next: Arc::new(Collect(got.clone())),
        };
        (b, got)
    }

    fn from(tenant: Option<&str>) -> Batch {
        let batch = Batch::traces(Bytes::from_static(b"request"), 1);
        let mut pairs = vec![("user-agent", "sdk")];
        pairs.extend(tenant.map(|t| ("x-scope-orgid", t)));
        batch.with_client(ClientMetadata::from_pairs(pairs))
    }

    #[test]
    fn without_keys_no_metadata_goes_on() {
        let (b, got) = batcher(&[], 0);
        b.consume(from(Some("acme"))).expect("taken");
        assert_eq!(*got.lock(), [None]);
    }

    #[test]
    fn with_keys_only_those_go_on() {
        let (b, got) = batcher(&["X-Scope-OrgID"], 0);
        b.consume(from(Some("acme"))).expect("taken");
        b.consume(from(None)).expect("taken");
        let acme = ClientMetadata::from_pairs([("x-scope-orgid", "acme")]);
        assert_eq!(*got.lock(), [Some(acme), None]);
    }

    #[test]
    fn a_combination_over_the_limit_is_refused_and_known_ones_still_pass() {
        let (b, got) = batcher(&["x-scope-orgid"], 2);
        b.consume(from(Some("a"))).expect("first");
        b.consume(from(None))
            .expect("no tenant is a combination too");
        let refused = b.consume(from(Some("c"))).expect_err("third");
        assert_eq!(
            refused.reason,
            "too many batcher metadata-value combinations"
        );
        b.consume(from(Some("a"))).expect("known");
        assert_eq!(got.lock().len(), 3);
    }
}
