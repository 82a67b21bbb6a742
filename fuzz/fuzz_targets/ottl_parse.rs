//! The OTTL parser on arbitrary text.
//!
//! Every input that is UTF-8 is parsed as a statement, a condition and a value. No parse may
//! panic, overflow the stack (nesting is capped) or take more than linear time, and every
//! span of a result or an error must lie within the text on character boundaries (the
//! compiler slices the text with them to report columns). The checks live in the crate
//! (`span_check.rs`, included by path) so its unit tests run the same code.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redline_ottl::{ast, parse_condition, parse_statement, parse_value, ParseError};

#[path = "../../crates/ottl/src/parser/span_check.rs"]
mod span_check;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        span_check::check(text);
    }
});
