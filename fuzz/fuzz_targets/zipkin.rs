//! The `zipkin` receiver's decoding and translation on arbitrary bytes: the first byte picks
//! JSON or protobuf and `parse_string_tags`, the rest is the body. It must never panic, and
//! what it produces must pass `translated::check`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/translated.rs"]
mod translated;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (protobuf, typed) = (mode & 1 == 1, mode & 2 == 2);
    let Ok((raw, spans)) = redline_zipkin_receiver::translate(body, protobuf, typed) else {
        return;
    };
    translated::check(&raw, spans);
});
