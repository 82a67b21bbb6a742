//! Reading a request body under the receivers' limits: a size cap, and the body budget taken
//! chunk by chunk before each chunk is kept.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use redline_pipeline::body_budget::BodyPermit;

/// Why a body was not read whole.
pub enum BodyError {
    /// Longer than the cap.
    TooLarge,
    /// The budget could not cover the next chunk; the rest of the body is still unread.
    OverBudget(axum::body::Body),
    Read(String),
}

/// Reads a body of at most `max` bytes, taking each chunk beyond what `permit` holds from its
/// budget before keeping it.
pub async fn read_body(
    mut body: axum::body::Body,
    max: usize,
    permit: &mut BodyPermit,
) -> Result<Bytes, BodyError> {
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len();
        if len > max {
            return Err(BodyError::TooLarge);
        }
        let beyond = (len as u64).saturating_sub(permit.bytes());
        if !permit.grow(beyond) {
            return Err(BodyError::OverBudget(body));
        }
        chunks.push(data);
    }
    Ok(match chunks.len() {
        1 => chunks.swap_remove(0),
        _ => {
            let mut all = BytesMut::with_capacity(len);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    })
}

/// Reads and discards up to `max` bytes of a refused body, for at most a few seconds, so that
/// an HTTP/1.1 client still sending it can read the answer: closing on unread data would
/// reset the connection under it.
pub async fn drain(mut body: axum::body::Body, max: usize) {
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > max {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_DEADLINE, discard).await;
}

const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// What is read of a refused request's body so the connection stays usable (Go's net/http
/// reads the same after a handler that did not); a longer body closes the connection.
pub const UNREAD_BODY_DRAINED: usize = 256 * 1024;
