//! The `otlp` exporter's transport: a lazily connected tonic channel carrying `Export` calls
//! whose messages Redline frames and compresses itself (see `codec`).

use std::sync::Arc;
use std::time::Duration;

use redline_http_client::{GrpcConnector, Proxy};
use redline_pipeline::client_tls::ClientTlsConfig;
use redline_pipeline::endpoint::parse_grpc_endpoint;
use redline_pipeline::extension::ClientAuthenticator;
use redline_pipeline::rpc_status::ExportResponse;
use redline_pipeline::ClientMetadata;
use redline_pipeline::{BuildContext, BuildError, ComponentId, Signal};
use tonic::transport::Endpoint;
use tonic::Status;

use crate::balance::{connect_timeout, system_resolver, Channels, Connect, Reported, RoundRobin};
use crate::codec::Message;
use crate::config::{Config, MessageEncoding};
use crate::exporter::{client_authenticator, launch, request_headers, ExporterError, Started};
use crate::grpc::ExportClient;
use crate::queue::Taken;
use crate::retry::classify;
use crate::transport::{client_gzip_frame, encode_off_runtime, raw_parts, Failure, Transport};

/// Builds and starts the `otlp` exporter of one signal. Never connects: the channel connects
/// on first use, so Redline starts while Tempo is still down. Must be called within a tokio
/// runtime.
pub fn start(
    id: &ComponentId,
    config: Config,
    ctx: &BuildContext,
    signal: Signal,
) -> Result<Started, BuildError> {
    let auth = client_authenticator(id, config.auth.as_ref(), ctx)?;
    let transport =
        GrpcTransport::new(&config, signal, auth).map_err(|e| BuildError::new(id, e))?;
    for (key, value) in [
        ("read_buffer_size", config.read_buffer_size),
        ("write_buffer_size", config.write_buffer_size),
    ] {
        if value.is_some() {
            tracing::info!(
                exporter = %id,
                %signal,
                "{key} has no effect in Redline: hyper sizes its buffers itself"
            );
        }
    }
    let started = launch(
        id,
        signal,
        ctx,
        &config.sending_queue,
        &config.retry_on_failure,
        transport,
    )?;
    tracing::debug!(
        exporter = %id,
        %signal,
        endpoint = %config.endpoint,
        tls = config.uses_tls(),
        compression = ?config.compression,
        encoding = ?config.message_encoding(),
        "otlp exporter started"
    );
    Ok(started)
}

pub(crate) struct GrpcTransport {
    grpc: ExportClient,
    endpoint: String,
    encoding: Option<MessageEncoding>,
    timeout: Option<Duration>,
}

impl GrpcTransport {
    fn new(
        config: &Config,
        signal: Signal,
        auth: Option<Arc<dyn ClientAuthenticator>>,
    ) -> Result<Self, ExporterError> {
        config.check().map_err(|e| ExporterError::Config {
            key: e.key_path,
            reason: e.reason,
        })?;
        let target = parse_grpc_endpoint(&config.endpoint).map_err(ExporterError::Endpoint)?;
        let tls = config.uses_tls();
        let scheme = if tls { "https" } else { "http" };
        // With TLS the connector below makes every connection TLS: the channel itself is built
        // on `http://`, with an `https` origin for its requests.

        let user_agent = config
            .user_agent
            .clone()
            .unwrap_or_else(|| format!("redline/{}", env!("CARGO_PKG_VERSION")));
        let timeout = (!config.timeout.is_zero()).then_some(config.timeout);
        let mut endpoint = Endpoint::from_shared(format!("http://{}", target.authority))
            .map_err(|e| ExporterError::Endpoint(e.to_string()))?
            .user_agent(user_agent)
            .map_err(|e| ExporterError::Config {
                key: "user_agent".into(),
                reason: e.to_string(),
            })?
            .tcp_nodelay(true)
            // A black-holed Tempo must fail an attempt, not hang it past its timeout.
            .connect_timeout(timeout.unwrap_or(Duration::from_secs(30)));
        if let Some(k) = &config.keepalive {
            endpoint = endpoint
                .http2_keep_alive_interval(k.time)
                .keep_alive_timeout(k.timeout)
                .keep_alive_while_idle(k.permit_without_stream);
        }
        let authority = config.authority.as_deref().unwrap_or(&target.authority);
        let origin = format!("{scheme}://{authority}")
            .parse::<http::Uri>()
            .map_err(|e| ExporterError::Config {
                key: "authority".into(),
                reason: e.to_string(),
            })?;
        endpoint = endpoint.origin(origin);
        // grpc-go takes its proxy from HTTPS_PROXY and NO_PROXY (otelcol has no key for it).
        let proxy = Proxy::from_env();
        let dst = format!("http://{}", target.authority)
            .parse::<http::Uri>()
            .map_err(|e| ExporterError::Endpoint(e.to_string()))?;
        proxy.check(&dst, true).map_err(|e| ExporterError::Config {
            key: e.key,
            reason: e.reason,
        })?;
        let connector = connector(tls, &config.tls, proxy)?;
        let channels = if config.round_robin() && !connector.proxied(&dst) {
            let port = target.port;
            let connect_timeout = connect_timeout(timeout);
            let connect: Connect = Box::new(move |address, health| {
                endpoint.clone().connect_with_connector_lazy(Reported::new(
                    connector.to_address(address),
                    health,
                    connect_timeout,
                ))
            });
            Channels::RoundRobin(Arc::new(RoundRobin::new(
                target.host,
                port,
                connect,
                system_resolver(),
            )))
        } else {
            // grpc-go's `pick_first`: the connector tries the name's addresses in order.
            Channels::One(endpoint.connect_with_connector_lazy(connector))
        };

        let headers = request_headers(&config.headers)?;

        Ok(Self {
            grpc: ExportClient::new(channels, signal.grpc_export_path(), headers, timeout)
                .with_auth(auth)
                .waiting_for_ready(config.wait_for_ready),
            endpoint: config.endpoint.clone(),
            encoding: config.message_encoding(),
            timeout,
        })
    }
}

impl Transport for GrpcTransport {
    type Request = Message;

    /// Frames (and compresses) the batches of `taken` as one gRPC message.
    async fn encode(&self, taken: &Taken) -> Result<Message, String> {
        if let (Some(MessageEncoding::Gzip(_)), Some(frame)) =
            (self.encoding, client_gzip_frame(taken))
        {
            // Valid gzip of exactly these bytes, whatever level the client used
            // (docs/compatibility.md §23).
            return Message::client_gzip(frame).map_err(|e| e.to_string());
        }
        let raw = raw_parts(taken);
        let len = usize::try_from(taken.bytes).unwrap_or(usize::MAX);
        let encoding = self.encoding;
        let encode = move || {
            Message::encode(&raw.iter().collect::<Vec<_>>(), encoding).map_err(|e| e.to_string())
        };
        if encoding.is_none() {
            // Framing without compression only copies small batches: never worth a thread.
            return encode();
        }
        encode_off_runtime(len, encode).await
    }

    async fn send(
        &self,
        message: &Message,
        client: Option<&ClientMetadata>,
    ) -> Result<ExportResponse, Failure> {
        self.grpc
            .export(message, client)
            .await
            .map_err(|s| failure(&s))
    }

    fn attempt_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn timed_out(&self, timeout: Duration) -> Failure {
        failure(&Status::deadline_exceeded(format!(
            "no answer within the {timeout:?} timeout"
        )))
    }

    fn describe(&self) -> &str {
        &self.endpoint
    }

    fn endpoint_labels(&self) -> Vec<(&'static str, String)> {
        crate::endpoint_labels::grpc(&self.endpoint)
    }

    fn forwards_gzip_frames(&self) -> bool {
        matches!(self.encoding, Some(MessageEncoding::Gzip(_)))
    }
}

fn failure(status: &Status) -> Failure {
    Failure {
        verdict: classify(status.code(), status.details()),
        code: format!("{:?}", status.code()),
        message: status.message().to_owned(),
    }
}

/// The channel's connector (TLS with the roots and client certificate read here, so a missing
/// or bad file fails the build naming its key), through the proxy that applies.
fn connector(tls: bool, t: &ClientTlsConfig, proxy: Proxy) -> Result<GrpcConnector, ExporterError> {
    GrpcConnector::new(tls.then_some(t), proxy).map_err(|e| {
        // Without a CA of its own the only failure of the roots is finding no system roots,
        // where a plaintext connection may be what was meant.
        let hint = if t.has_ca() || t.insecure_skip_verify || e.key != "ca_file" {
            ""
        } else {
            "; set tls.ca_file, or tls.insecure: true for a plaintext connection"
        };
        ExporterError::Config {
            key: format!("tls.{}", e.key),
            reason: e.reason + hint,
        }
    })
}
