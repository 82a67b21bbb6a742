//! A call's client metadata as otelcol's gRPC server keeps it (`include_metadata`).

use redline_pipeline::ClientMetadata;

/// Headers grpc-go consumes itself and leaves out of a call's metadata.
const TRANSPORT_HEADERS: [&str; 7] = [
    "te",
    "connection",
    "grpc-encoding",
    "grpc-timeout",
    "grpc-message-type",
    "grpc-message",
    "grpc-status",
];

/// The metadata otelcol's receiver finds for a call: its headers but those grpc-go consumes,
/// with `:authority`, and `host` set to the authority as configgrpc adds it.
pub fn client_metadata<B>(req: &http::Request<B>) -> ClientMetadata {
    let authority = req.uri().authority().map(|a| a.as_str());
    let headers = req.headers().iter().filter_map(|(name, value)| {
        let name = name.as_str();
        // A `host` header gives way to the authority, as grpc-go keeps one of the two.
        let kept = !TRANSPORT_HEADERS.contains(&name) && (name != "host" || authority.is_none());
        kept.then_some((name, value.to_str().ok()?))
    });
    let authority = authority
        .into_iter()
        .flat_map(|a| [(":authority", a), ("host", a)]);
    ClientMetadata::from_pairs(headers.chain(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_grpc_go_hands_on() {
        let req = http::Request::builder()
            .uri("http://collector:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            .header("te", "trailers")
            .header("grpc-timeout", "5S")
            .header("content-type", "application/grpc")
            .header("x-scope-orgid", "acme")
            .body(())
            .expect("request");
        let md = client_metadata(&req);
        let keys: Vec<&str> = md.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [":authority", "content-type", "host", "x-scope-orgid"]
        );
        assert_eq!(&*md.get("Host")[0], "collector:4317");
        assert_eq!(&*md.get("X-Scope-OrgID")[0], "acme");
    }
}
