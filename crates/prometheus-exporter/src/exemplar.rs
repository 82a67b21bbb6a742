//! OpenMetrics exemplars: ` # {trace_id="…",span_id="…"} value timestamp` after a counter or
//! bucket sample.

use redline_pipeline::Exemplar;

use crate::numfmt::{hex_word, push_hex, push_om_float, push_unix_seconds};

/// ` # {trace_id="…",span_id="…"} value [timestamp]`.
pub(crate) fn push_exemplar(out: &mut Vec<u8>, e: &Exemplar) {
    if e.trace_id != [0; 16] && e.span_id != [0; 8] {
        out.extend_from_slice(&exemplar_ids(&e.trace_id, &e.span_id));
    } else {
        out.extend_from_slice(b" # {");
        if e.trace_id != [0; 16] {
            out.extend_from_slice(b"trace_id=\"");
            push_hex(out, &e.trace_id);
            out.push(b'"');
        }
        if e.span_id != [0; 8] {
            out.extend_from_slice(b"span_id=\"");
            push_hex(out, &e.span_id);
            out.push(b'"');
        }
        out.extend_from_slice(b"} ");
    }
    push_om_float(out, e.value);
    if e.time_unix_nano != 0 {
        out.push(b' ');
        push_unix_seconds(out, e.time_unix_nano);
    }
}

/// ` # {trace_id="…",span_id="…"} ` for the usual exemplar with both ids, built in a fixed-size
/// array (plain stores, no bounds or capacity checks) and appended at once: there are ~200k
/// exemplars in a 100k-series OpenMetrics scrape.
fn exemplar_ids(trace_id: &[u8; 16], span_id: &[u8; 8]) -> [u8; 76] {
    const TEMPLATE: &[u8; 76] =
        b" # {trace_id=\"--------------------------------\",span_id=\"----------------\"} ";
    const TRACE_AT: usize = b" # {trace_id=\"".len();
    const SPAN_AT: usize = TRACE_AT + 32 + b"\",span_id=\"".len();
    let mut ids = *TEMPLATE;
    let (trace_words, _) = trace_id.as_chunks::<8>();
    for (i, word) in trace_words.iter().enumerate() {
        let at = TRACE_AT + 16 * i;
        ids[at..at + 16].copy_from_slice(&hex_word(u64::from_be_bytes(*word)));
    }
    ids[SPAN_AT..SPAN_AT + 16].copy_from_slice(&hex_word(u64::from_be_bytes(*span_id)));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(trace_id: [u8; 16], span_id: [u8; 8], value: f64, time_unix_nano: u64) -> String {
        let mut out = b"x".to_vec();
        push_exemplar(
            &mut out,
            &Exemplar {
                value,
                time_unix_nano,
                trace_id,
                span_id,
            },
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn ids_are_lowercase_hex_and_left_out_when_zero() {
        let trace = [
            0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
            0x31, 0x9c,
        ];
        let span = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];
        assert_eq!(
            rendered(trace, span, 0.5, 1_700_000_000_123_000_000),
            "x # {trace_id=\"0af7651916cd43dd8448eb211c80319c\",span_id=\"b7ad6b7169203331\"} 0.5 1700000000.123"
        );
        assert_eq!(
            rendered(trace, [0; 8], 1.0, 0),
            "x # {trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 1.0"
        );
        assert_eq!(
            rendered([0; 16], span, 2.25, 1_700_000_000_000_000_000),
            "x # {span_id=\"b7ad6b7169203331\"} 2.25 1700000000"
        );
        assert_eq!(rendered([0; 16], [0; 8], 3.0, 0), "x # {} 3.0");
        assert_eq!(
            rendered([0xff; 16], [0x01; 8], 1e-7, 1),
            "x # {trace_id=\"ffffffffffffffffffffffffffffffff\",span_id=\"0101010101010101\"} 1e-07 0.000000001"
        );
    }
}
