//! A client codec that sends an already-encoded `ExportTraceServiceRequest` as is: the forward
//! path never decodes or re-encodes spans (DESIGN §1). Only the small response is decoded.

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::Status;

/// gRPC method the bytes are sent to.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Clone, Copy, Debug, Default)]
pub struct RawTracesCodec;

impl Codec for RawTracesCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = tonic_prost::ProstDecoder<ExportTraceServiceResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // tonic frames (and compresses) whatever lands in `dst`; the bytes are already a
        // valid message body, so copying them is the whole encoding.
        dst.put(item);
        Ok(())
    }
}
