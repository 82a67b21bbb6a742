//! The one response type reads the export responses of every signal.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use redline_pipeline::rpc_status::ExportResponse;

#[test]
fn reads_the_responses_of_every_signal() {
    let encoded = [
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "t".into(),
            }),
        }
        .encode_to_vec(),
        ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "t".into(),
            }),
        }
        .encode_to_vec(),
        ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "t".into(),
            }),
        }
        .encode_to_vec(),
    ];
    for bytes in encoded {
        let r = ExportResponse::decode(bytes.as_slice()).expect("decodes");
        let p = r.partial_success.expect("partial success");
        assert_eq!((p.rejected, p.error_message.as_str()), (3, "t"));
    }
}
