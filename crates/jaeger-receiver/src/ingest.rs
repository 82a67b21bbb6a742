//! From a decoded batch to the pipeline, for every transport: translated once, handed over,
//! counted under the transport it came by.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use redline_pipeline::telemetry::ReceiverCounters;
use redline_pipeline::{Batch, ClientMetadata, Consumer, Refused, Signal};

use crate::model;
use crate::translate;

/// Where one transport's batches go.
pub(crate) struct Ingest {
    pub next: Arc<dyn Consumer>,
    pub counters: Arc<ReceiverCounters>,
}

impl Ingest {
    /// Translates and hands over a batch `client` sent (its metadata, when the server keeps
    /// it); the pipeline's refusal is returned for the caller to answer with.
    pub(crate) fn batch(
        &self,
        batch: &model::Batch<'_>,
        client: Option<ClientMetadata>,
    ) -> Result<(), Refused> {
        self.encoded(translate::to_otlp(batch), client)
    }

    /// Hands over a translated request.
    pub(crate) fn encoded(
        &self,
        encoded: translate::Encoded,
        client: Option<ClientMetadata>,
    ) -> Result<(), Refused> {
        if encoded.dropped > 0 {
            self.counters
                .refused
                .fetch_add(encoded.dropped as u64, Ordering::Relaxed);
            tracing::debug!(
                dropped = encoded.dropped,
                "Jaeger spans with an all-zero trace or span id dropped"
            );
        }
        let spans = encoded.spans;
        if spans == 0 {
            return Ok(());
        }
        let mut batch = Batch::new(Signal::Traces, Bytes::from(encoded.bytes), spans);
        batch.set_client(client);
        match self.next.reserve(&batch) {
            Ok(reservation) => {
                reservation.commit(batch);
                self.counters
                    .accepted
                    .fetch_add(spans as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(refused) => {
                self.counters
                    .refused
                    .fetch_add(spans as u64, Ordering::Relaxed);
                tracing::debug!(%refused, spans, "pipeline refused Jaeger spans");
                Err(refused)
            }
        }
    }
}
