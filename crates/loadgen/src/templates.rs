//! A run's pre-encoded requests for the chosen signal, built before the clock starts.
//!
//! Metrics and logs requests are built to the mean encoded size of the trace model's first
//! requests (the same seed and knobs), so that the three signals can be compared per byte
//! and per request on equal terms.

use prost::Message;

use crate::encode::{EncodeError, Template};
use crate::model::{Generator, ModelError};
use crate::model_logs::LogsGenerator;
use crate::model_metrics::MetricsGenerator;
use crate::signal::Signal;
use crate::tally::{self, Contribution, TallySpec};

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("invalid model: {0}")]
    Model(#[from] ModelError),
    #[error("pre-encoding a request: {0}")]
    Encode(#[from] EncodeError),
}

/// The templates of a run.
pub struct Prepared {
    pub templates: Vec<Template>,
    /// The spanmetrics contribution of each template (traces with a tally spec only).
    pub contributions: Vec<Contribution>,
}

/// Trace requests sampled to size the other signals' requests.
const SIZE_SAMPLE: u64 = 8;

/// The mean encoded size of the trace model's first requests.
pub fn trace_request_bytes(traces: &Generator, base_time_ns: u64) -> usize {
    let total: usize = (0..SIZE_SAMPLE)
        .map(|i| traces.request(i, base_time_ns).encoded_len())
        .sum();
    total / SIZE_SAMPLE as usize
}

/// `count` templates of `signal`. `traces` is the run's trace model (its seed, services,
/// pods and resources per request shape the other signals too); `spec`, for traces,
/// asks for each template's spanmetrics contribution.
pub fn prepare(
    signal: Signal,
    traces: &Generator,
    count: usize,
    base_time_ns: u64,
    spec: Option<&TallySpec>,
) -> Result<Prepared, PrepareError> {
    let mut templates = Vec::with_capacity(count);
    let mut contributions = Vec::new();
    let cfg = traces.config().clone();
    match signal {
        Signal::Traces => {
            for i in 0..count as u64 {
                let req = traces.request(i, base_time_ns);
                templates.push(Template::encode(&req)?);
                if let Some(spec) = spec {
                    contributions.push(tally::contribution(spec, &req));
                }
            }
        }
        Signal::Metrics => {
            let g = MetricsGenerator::new(cfg, trace_request_bytes(traces, base_time_ns))?;
            for i in 0..count as u64 {
                templates.push(Template::metrics(&g.request(i, base_time_ns).0)?);
            }
        }
        Signal::Logs => {
            let target = trace_request_bytes(traces, base_time_ns);
            let g = LogsGenerator::new(cfg, traces.nonce(), target)?;
            for i in 0..count as u64 {
                templates.push(Template::logs(&g.request(i, base_time_ns).0)?);
            }
        }
    }
    Ok(Prepared {
        templates,
        contributions,
    })
}
