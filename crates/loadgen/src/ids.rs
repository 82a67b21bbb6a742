//! Trace and span id layout. Ids are built so that a replayed template only needs a few bytes
//! overwritten to be unique again:
//!
//! - trace id: `[trace index + 1: u32 BE][run nonce: u32 BE][send sequence: u64 BE]`
//! - span id:  `[send sequence: low 40 bits][span index in request + 1: 24 bits]`, BE
//!
//! Both are never all-zero (the index part is at least 1), so every span is valid per OTLP
//! and a collector never rejects it with `partial_success`: `--verify` relies on that.

/// Span indexes use 24 bits of the span id.
pub const MAX_SPANS_PER_REQUEST: usize = 1 << 24;
const INDEX_MASK: u64 = (1 << 24) - 1;

pub fn trace_id(trace_index: u32, nonce: u32, seq: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&trace_index.wrapping_add(1).max(1).to_be_bytes());
    id[4..8].copy_from_slice(&nonce.to_be_bytes());
    id[8..].copy_from_slice(&seq.to_be_bytes());
    id
}

pub fn span_id(span_index: u32, seq: u64) -> [u8; 8] {
    span_id_from_low(u64::from(span_index) + 1, seq)
}

/// The span id for the index part `low` (index + 1) of a template id.
pub fn span_id_from_low(low: u64, seq: u64) -> [u8; 8] {
    ((seq << 24) | (low & INDEX_MASK)).to_be_bytes()
}

/// The index part of a span id (what [`span_id_from_low`] keeps).
pub fn span_id_low(id: [u8; 8]) -> u64 {
    u64::from_be_bytes(id) & INDEX_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let t = trace_id(0, 0xa1b2_c3d4, 5);
        assert_eq!(
            t,
            [0, 0, 0, 1, 0xa1, 0xb2, 0xc3, 0xd4, 0, 0, 0, 0, 0, 0, 0, 5]
        );
        assert_eq!(span_id(0, 0), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(span_id(2, 1), [0, 0, 0, 0, 1, 0, 0, 3]);
        assert_eq!(span_id_low(span_id(41, 99)), 42);
        assert_eq!(span_id_from_low(42, 99), span_id(41, 99));
    }

    #[test]
    fn never_zero() {
        assert!(trace_id(u32::MAX, 0, 0).iter().any(|b| *b != 0));
        assert!(span_id(0, 0).iter().any(|b| *b != 0));
    }
}
