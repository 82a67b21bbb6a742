//! OTLP receiver: gRPC and HTTP servers producing raw Batch values.
//!
//! `receivers: otlp: protocols: {grpc: …, http: …}` as in otelcol. Requests stay encoded:
//! gRPC and OTLP/HTTP protobuf bodies are validated by the lean wire walker and forwarded as
//! the bytes that arrived; OTLP/JSON bodies are converted to protobuf once. Backpressure from
//! the pipeline becomes gRPC UNAVAILABLE with RetryInfo or HTTP 503 with Retry-After.
//!
//! Each protocol takes otelcol's `tls` (server certificate, `client_ca_file` for mutual TLS,
//! versions, suites, certificate reload) and `auth: {authenticator: <extension>}`. The TLS
//! handshake runs in the connection's own task with a deadline; authentication runs before
//! anything is decoded, so a refused request (gRPC UNAUTHENTICATED, HTTP 401) counts nowhere.

mod config;
mod grpc;
mod http;
mod ingest;
mod rpc;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use redline_http_server::receive::{security, ServerSecurity};
use redline_pipeline::body_budget::{BodyBudget, DEFAULT_BODY_BUDGET};
use redline_pipeline::component::{build_receiver, BuildResult, FactoryInfo};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ComponentId, ConfigError, ReceiverFactory,
    RunningComponent, ShutdownError, Signal, SignalConsumers,
};
use tokio::net::TcpListener;

pub use config::{
    AuthConfig, Config, ContentEncoding, GrpcConfig, HttpConfig, HttpKeepalive, KeepaliveConfig,
    KeepaliveEnforcementPolicy, KeepaliveServerParameters, Protocols, DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HTTP_ENDPOINT, DEFAULT_LOGS_URL_PATH, DEFAULT_MAX_RECV_MSG_SIZE_MIB,
    DEFAULT_MAX_REQUEST_BODY_SIZE, DEFAULT_METRICS_URL_PATH, DEFAULT_TRACES_URL_PATH,
};
pub use http::CorsConfig;

#[doc(hidden)]
pub use crate::http::json_to_protobuf;

use crate::grpc::{GrpcRoute, GrpcService, GrpcState};
use crate::http::{HttpRoute, HttpState};
use crate::ingest::Ingest;
use redline_grpc_server::GrpcProtocol;
use redline_http_server::{Conn, HttpProtocol, ServerHandle};

/// The `otlp` receiver factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpReceiverFactory;

impl OtlpReceiverFactory {
    /// Starts a receiver from a config already parsed (and checked with [`Config::check`]):
    /// what `build` does after parsing, for tests and embedders that build a [`Config`] in
    /// code.
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

impl FactoryInfo for OtlpReceiverFactory {
    fn type_name(&self) -> &'static str {
        "otlp"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        Config::from_component(config)
            .ok()
            .and_then(|c| c.protocols.http)
            .map(|h| h.timeouts().deprecation_warnings("protocols.http."))
            .unwrap_or_default()
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        let Ok(parsed) = Config::from_component(config) else {
            return Vec::new();
        };
        let grpc = parsed.protocols.grpc.as_ref().and_then(|g| g.auth.as_ref());
        let http = parsed.protocols.http.as_ref().and_then(|h| h.auth.as_ref());
        [("protocols.grpc", grpc), ("protocols.http", http)]
            .into_iter()
            .filter_map(|(prefix, auth)| {
                let id = auth?.id().ok()?;
                Some((format!("{prefix}.auth.authenticator"), id))
            })
            .collect()
    }
}

impl ReceiverFactory for OtlpReceiverFactory {
    fn signals(&self) -> &'static [Signal] {
        &Signal::ALL
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

/// Binds every configured protocol before returning, so a port in use fails the build and
/// `local_addrs` is right as soon as the component exists.
async fn start(
    id: &ComponentId,
    config: &Config,
    ctx: &BuildContext,
    next: SignalConsumers,
) -> Result<Running, BuildError> {
    let ingests: Vec<Arc<Ingest>> = next
        .signals()
        .into_iter()
        .filter_map(|s| Some(Arc::new(Ingest::new(s, next.get(s)?.clone()))))
        .collect();
    let name = id.to_string();
    let mut servers = Vec::new();
    let budget = BodyBudget::new(ctx.body_budget.unwrap_or(DEFAULT_BODY_BUDGET));

    if let Some(g) = &config.protocols.grpc {
        g.note_ineffective_keys(id, "protocols.grpc");
        let ServerSecurity { tls, auth } = security(
            id,
            "protocols.grpc.",
            redline_pipeline::tls::ALPN_H2,
            g.tls.as_ref(),
            g.auth.as_ref(),
            &ctx.extensions,
        )?;
        let listener = bind(id, "grpc", &g.endpoint).await?;
        let routes = ingests
            .iter()
            .map(|ingest| GrpcRoute {
                ingest: ingest.clone(),
                counters: ctx.telemetry.receiver(&name, "grpc", ingest.signal()),
            })
            .collect();
        let state = Arc::new(GrpcState {
            routes,
            unrouted_logged: Once3::default(),
            max_recv_msg_size: g.max_recv_msg_size(),
            max_header_list_size: g.max_header_list_size() as usize,
            budget: budget.clone(),
            auth,
            include_metadata: g.include_metadata,
        });
        let secure = tls.is_some();
        let conn = Conn::new(GrpcProtocol::new(g, GrpcService::new(state)), tls);
        let handle = ServerHandle::spawn("grpc", listener, conn);
        tracing::info!(receiver = %id, addr = %handle.addr, tls = secure, "OTLP/gRPC listening");
        servers.push(("grpc", handle));
    }

    if let Some(h) = &config.protocols.http {
        let security = security(
            id,
            "protocols.http.",
            redline_pipeline::tls::ALPN_HTTP,
            h.tls.as_ref(),
            h.auth.as_ref(),
            &ctx.extensions,
        );
        let ServerSecurity { tls, auth } = match security {
            Ok(s) => s,
            Err(e) => {
                shutdown_all(servers, Instant::now()).await;
                return Err(e);
            }
        };
        let listener = match bind(id, "http", &h.endpoint).await {
            Ok(l) => l,
            Err(e) => {
                // Do not leave the gRPC server running behind a failed build.
                shutdown_all(servers, Instant::now()).await;
                return Err(e);
            }
        };
        let routes = ingests
            .iter()
            .map(|ingest| HttpRoute {
                path: h.path(ingest.signal()),
                ingest: ingest.clone(),
                counters: ctx.telemetry.receiver(&name, "http", ingest.signal()),
            })
            .collect();
        let state = Arc::new(HttpState::new(h, routes, auth, budget.clone()));
        let secure = tls.is_some();
        let conn = Conn::new(HttpProtocol::new(http::router(state), &h.timeouts()), tls);
        let handle = ServerHandle::spawn("http", listener, conn);
        tracing::info!(receiver = %id, addr = %handle.addr, tls = secure, "OTLP/HTTP listening");
        servers.push(("http", handle));
    }

    Ok(Running { id: name, servers })
}

async fn bind(id: &ComponentId, protocol: &str, endpoint: &str) -> Result<TcpListener, BuildError> {
    redline_pipeline::endpoint::listen(endpoint)
        .await
        .map_err(|e| BuildError::new(id, format!("protocols.{protocol}.endpoint: {e}")))
}

/// Shuts every server down concurrently; true when all drained before the deadline.
async fn shutdown_all(servers: Vec<(&'static str, ServerHandle)>, deadline: Instant) -> bool {
    let results =
        futures::future::join_all(servers.into_iter().map(|(_, s)| s.shutdown(deadline))).await;
    results.into_iter().all(|drained| drained)
}

/// A flag per signal that is set once: for messages logged the first time only.
#[derive(Default)]
pub(crate) struct Once3([std::sync::atomic::AtomicBool; 3]);

impl Once3 {
    /// True the first time it is called for `signal`.
    pub(crate) fn first(&self, signal: Signal) -> bool {
        let i = Signal::ALL.iter().position(|s| *s == signal).unwrap_or(0);
        !self.0[i].swap(true, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The running receiver: one accept loop per protocol.
struct Running {
    id: String,
    servers: Vec<(&'static str, ServerHandle)>,
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        self.servers
            .iter()
            .map(|(name, handle)| (*name, handle.addr))
            .collect()
    }

    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Running { id, servers } = *self;
        Box::pin(async move {
            if shutdown_all(servers, deadline).await {
                Ok(())
            } else {
                Err(ShutdownError {
                    component: id,
                    reason: "connections with requests in flight were closed at the shutdown \
                             deadline; their clients will retry"
                        .to_owned(),
                })
            }
        })
    }
}
