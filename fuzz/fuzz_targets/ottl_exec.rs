//! OTTL on arbitrary traces requests: whatever decodes and validates, the dry run of each
//! fixed statement group and filter must never say "no change" when applying changes it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redline_ottl::fuzzing::dry_run_invariant(data);
});
