//! The `jaeger` receiver's decoding and translation on arbitrary bytes: the first byte picks
//! the format (a `Batch` as Thrift over HTTP sends it, an agent datagram in the compact or
//! binary protocol, or the gRPC API's `PostSpansRequest`), the rest is the body. It must never panic, and what it
//! produces must pass `translated::check`.

#![no_main]

use libfuzzer_sys::fuzz_target;

use redline_jaeger_receiver::{translate, ThriftFormat};

#[path = "common/translated.rs"]
mod translated;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let format = match mode % 4 {
        0 => ThriftFormat::HttpBatch,
        1 => ThriftFormat::AgentCompact,
        2 => ThriftFormat::AgentBinary,
        _ => ThriftFormat::GrpcProtobuf,
    };
    let Ok((raw, spans)) = translate(body, format) else {
        return;
    };
    translated::check(&raw, spans);
});
