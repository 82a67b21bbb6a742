//! The `jaeger` receiver: spans from Jaeger clients (jaeger-client libraries, the
//! OpenTelemetry SDKs' Jaeger exporters), taken as a Jaeger collector and agent take them and
//! translated to OTLP as otelcol-contrib's `jaegerreceiver` translates them:
//! - `thrift_http`: `POST /api/traces`, a Thrift `Batch` (binary protocol), port 14268;
//! - `thrift_compact`: the agent's UDP port 6831, `emitBatch` in the compact protocol;
//! - `thrift_binary`: the agent's UDP port 6832, the same in the binary protocol;
//! - `grpc`: `jaeger.api_v2.CollectorService/PostSpans`, port 14250, what jaeger-agent sends.
//!
//! Neither Thrift nor Jaeger's protobuf is OTLP, so this receiver decodes every batch (Thrift
//! in place, strings borrowed) and encodes the OTLP request once; from there the pipeline carries raw OTLP bytes as for
//! every other receiver.

mod config;
mod grpc;
mod http;
mod ingest;
mod model;
mod proto;
mod thrift;
mod translate;
mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_http_server::receive::{security, BodyLimits, ServerSecurity};
use redline_http_server::{Conn, HttpProtocol, ServerHandle};
use redline_pipeline::body_budget::{BodyBudget, DEFAULT_BODY_BUDGET};
use redline_pipeline::component::{build_receiver, BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ReceiverFactory,
    RunningComponent, ShutdownError, Signal, SignalConsumers,
};

pub use config::{
    AgentPort, BinaryPort, BinaryUdpConfig, CompactPort, CompactUdpConfig, Config, GrpcConfig,
    JaegerGrpcEndpoint, Protocols, ThriftHttpConfig, UdpConfig,
};
use redline_grpc_server::GrpcProtocol;

use crate::http::HttpState;
use crate::ingest::Ingest;
use crate::udp::{AgentProtocol, UdpServer, UdpSettings};

/// A body translated to an encoded OTLP traces request and its span count, as the receiver
/// does it: a Thrift `Batch` in the binary protocol (`http`), an agent's `emitBatch` datagram
/// in the compact or binary protocol, or a gRPC `PostSpansRequest`. For benches and fuzzing.
#[doc(hidden)]
pub fn translate(body: &[u8], format: ThriftFormat) -> Result<(Vec<u8>, usize), String> {
    use thrift::{Binary, Compact};
    let batch = match format {
        ThriftFormat::HttpBatch => model::read_batch(&mut Binary::new(body)).map(Some),
        ThriftFormat::AgentCompact => model::read_emit_batch(&mut Compact::new(body)),
        ThriftFormat::AgentBinary => model::read_emit_batch(&mut Binary::new(body)),
        ThriftFormat::GrpcProtobuf => {
            let decoded = proto::decode(bytes::Bytes::copy_from_slice(body))?;
            let converted = proto::convert(&decoded)?;
            let encoded = translate::write_groups(&proto::regroup(&converted));
            return Ok((encoded.bytes, encoded.spans));
        }
    }
    .map_err(|e| e.0)?;
    Ok(batch.map_or((Vec::new(), 0), |b| {
        let encoded = translate::to_otlp(&b);
        (encoded.bytes, encoded.spans)
    }))
}

/// What [`translate`] reads.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum ThriftFormat {
    HttpBatch,
    AgentCompact,
    AgentBinary,
    /// Not Thrift: the gRPC API's `PostSpansRequest`.
    GrpcProtobuf,
}

/// The `jaeger` receiver factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct JaegerReceiverFactory;

impl JaegerReceiverFactory {
    /// Starts a receiver from a config already parsed and checked: what `build` does after
    /// parsing, for tests and embedders.
    pub async fn start(
        &self,
        id: &ComponentId,
        config: &Config,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> Result<Box<dyn RunningComponent>, BuildError> {
        Ok(Box::new(start(id, config, ctx, next).await?))
    }
}

impl FactoryInfo for JaegerReceiverFactory {
    fn type_name(&self) -> &'static str {
        "jaeger"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        Config::from_component(config)
            .ok()
            .and_then(|c| c.protocols.thrift_http)
            .map(|h| h.timeouts().deprecation_warnings("protocols.thrift_http."))
            .unwrap_or_default()
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        let Ok(c) = Config::from_component(config) else {
            return Vec::new();
        };
        let http = c.protocols.thrift_http.and_then(|h| h.auth);
        let grpc = c.protocols.grpc.and_then(|g| g.auth);
        [("protocols.thrift_http", http), ("protocols.grpc", grpc)]
            .into_iter()
            .filter_map(|(key, auth)| Some((format!("{key}.auth.authenticator"), auth?.id().ok()?)))
            .collect()
    }
}

impl ReceiverFactory for JaegerReceiverFactory {
    fn signals(&self) -> &'static [Signal] {
        &[Signal::Traces]
    }

    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
        next: SignalConsumers,
    ) -> BuildResult<Box<dyn RunningComponent>> {
        build_receiver(
            config,
            ctx,
            next,
            Config::from_component,
            |id, parsed, ctx, next| async move { start(&id, &parsed, &ctx, next).await },
        )
    }
}

/// Binds every protocol's socket before returning, so a port in use fails the build.
async fn start(
    id: &ComponentId,
    config: &Config,
    ctx: &BuildContext,
    next: SignalConsumers,
) -> Result<Running, BuildError> {
    let traces = next.only(Signal::Traces, id, "jaeger")?;
    let name = id.to_string();
    let ingest = |transport: &'static str| Ingest {
        next: traces.clone(),
        counters: ctx.telemetry.receiver(&name, transport, Signal::Traces),
    };
    let mut running = Running {
        id: name.clone(),
        grpc: None,
        http: None,
        udp: Vec::new(),
    };
    let agents = [
        (
            AgentProtocol::Compact,
            config
                .protocols
                .thrift_compact
                .as_ref()
                .map(|c| (c.endpoint.as_str(), settings(AgentProtocol::Compact, c))),
        ),
        (
            AgentProtocol::Binary,
            config
                .protocols
                .thrift_binary
                .as_ref()
                .map(|c| (c.endpoint.as_str(), settings(AgentProtocol::Binary, c))),
        ),
    ];
    for (protocol, agent) in agents {
        let Some((endpoint, settings)) = agent else {
            continue;
        };
        let server = udp::start(endpoint, settings, ingest(protocol.transport()))
            .await
            .map_err(|e| {
                BuildError::new(id, format!("protocols.{}.endpoint: {e}", protocol.key()))
            })?;
        tracing::info!(receiver = %id, addr = %server.addr, protocol = protocol.key(), "Jaeger agent listening");
        running.udp.push((protocol, server));
    }
    let protocols = &config.protocols;
    // One budget for the bodies in flight on both servers, as the otlp receiver's.
    let budget = BodyBudget::new(ctx.body_budget.unwrap_or(DEFAULT_BODY_BUDGET));
    if let Some(h) = &protocols.thrift_http {
        let ingest = ingest(http::TRANSPORT);
        running.http = Some(start_http(id, h, ctx, ingest, budget.clone()).await?);
    }
    if let Some(g) = &protocols.grpc {
        let ingest = ingest(grpc::TRANSPORT);
        running.grpc = Some(start_grpc(id, g, ctx, ingest, budget).await?);
    }
    Ok(running)
}

fn settings<P>(protocol: AgentProtocol, c: &UdpConfig<P>) -> UdpSettings {
    UdpSettings {
        protocol,
        queue_size: c.queue_size(),
        max_packet_size: c.max_packet_size(),
        workers: c.workers(),
        socket_buffer_size: c.socket_buffer_size(),
    }
}

async fn start_http(
    id: &ComponentId,
    config: &ThriftHttpConfig,
    ctx: &BuildContext,
    ingest: Ingest,
    budget: BodyBudget,
) -> Result<ServerHandle, BuildError> {
    let ServerSecurity { tls, auth } = security(
        id,
        "protocols.thrift_http.",
        redline_pipeline::tls::ALPN_HTTP,
        config.tls.as_ref(),
        config.auth.as_ref(),
        &ctx.extensions,
    )?;
    let listener = redline_pipeline::endpoint::listen(&config.endpoint)
        .await
        .map_err(|e| BuildError::new(id, format!("protocols.thrift_http.endpoint: {e}")))?;
    let state = Arc::new(HttpState {
        ingest,
        limits: BodyLimits {
            max: config.max_request_body_size(),
            encodings: config.encodings(),
            budget,
        },
        // Config::check refused invalid headers.
        response_headers: redline_http_server::response_headers(&config.response_headers)
            .unwrap_or_default(),
        auth,
        include_metadata: config.include_metadata,
    });
    let secure = tls.is_some();
    let conn = Conn::new(
        HttpProtocol::new(http::router(state), &config.timeouts()),
        tls,
    );
    let handle = ServerHandle::spawn("http", listener, conn);
    tracing::info!(receiver = %id, addr = %handle.addr, tls = secure, "Jaeger Thrift over HTTP listening");
    Ok(handle)
}

async fn start_grpc(
    id: &ComponentId,
    config: &GrpcConfig,
    ctx: &BuildContext,
    ingest: Ingest,
    budget: BodyBudget,
) -> Result<ServerHandle, BuildError> {
    config.note_ineffective_keys(id, "protocols.grpc");
    let ServerSecurity { tls, auth } = security(
        id,
        "protocols.grpc.",
        redline_pipeline::tls::ALPN_H2,
        config.tls.as_ref(),
        config.auth.as_ref(),
        &ctx.extensions,
    )?;
    let listener = redline_pipeline::endpoint::listen(&config.endpoint)
        .await
        .map_err(|e| BuildError::new(id, format!("protocols.grpc.endpoint: {e}")))?;
    let state = Arc::new(grpc::GrpcState {
        ingest,
        max_recv_msg_size: config.max_recv_msg_size(),
        max_header_list_size: config.max_header_list_size() as usize,
        budget,
        auth,
        include_metadata: config.include_metadata,
    });
    let secure = tls.is_some();
    let conn = Conn::new(GrpcProtocol::new(config, grpc::GrpcService { state }), tls);
    let handle = ServerHandle::spawn("grpc", listener, conn);
    tracing::info!(receiver = %id, addr = %handle.addr, tls = secure, "Jaeger gRPC listening");
    Ok(handle)
}

struct Running {
    id: String,
    grpc: Option<ServerHandle>,
    http: Option<ServerHandle>,
    udp: Vec<(AgentProtocol, UdpServer)>,
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut addrs: Vec<_> = self
            .udp
            .iter()
            .map(|(protocol, server)| (protocol.key(), server.addr))
            .collect();
        if let Some(http) = &self.http {
            addrs.push(("thrift_http", http.addr));
        }
        if let Some(grpc) = &self.grpc {
            addrs.push(("grpc", grpc.addr));
        }
        addrs
    }

    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Running {
            id,
            grpc,
            http,
            udp,
        } = *self;
        Box::pin(async move {
            let mut clean = true;
            for server in [grpc, http].into_iter().flatten() {
                clean &= server.shutdown(deadline).await;
            }
            for (_, server) in udp {
                clean &= server.shutdown(deadline).await;
            }
            if clean {
                Ok(())
            } else {
                Err(ShutdownError {
                    component: id,
                    reason: "requests or datagrams in flight were dropped at the shutdown \
                             deadline"
                        .to_owned(),
                })
            }
        })
    }
}
