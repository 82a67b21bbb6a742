//! The `zipkin` receiver: Zipkin v2 spans over HTTP (JSON or protobuf, on any path, port 9411
//! by default), translated to OTLP as otelcol-contrib's `zipkinreceiver` translates them, for
//! applications instrumented with Zipkin libraries (Brave, zipkin-go, OpenTelemetry SDKs'
//! Zipkin exporters) in front of Tempo.
//!
//! Zipkin is JSON or its own protobuf, never OTLP, so this receiver decodes every request and
//! encodes the OTLP request once; from there the pipeline carries raw OTLP bytes as for every
//! other receiver.

mod config;
mod json;
mod model;
mod server;
mod translate;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
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

pub use config::{Config, DEFAULT_ENDPOINT, DEFAULT_MAX_REQUEST_BODY_SIZE};

use crate::server::{ZipkinState, TRANSPORT_V2_JSON, TRANSPORT_V2_PROTO};

/// A Zipkin v2 body (JSON, or protobuf with `protobuf`) translated to an encoded OTLP traces
/// request and its span count, as the receiver does it: for benches and fuzzing.
#[doc(hidden)]
pub fn translate(
    body: &[u8],
    protobuf: bool,
    parse_string_tags: bool,
) -> Result<(Vec<u8>, usize), String> {
    let spans = if protobuf {
        model::from_protobuf(body)
    } else {
        json::from_json(body)
    }
    .map_err(|e| e.0)?;
    translate::to_otlp(spans, parse_string_tags)
        .map(|encoded| (encoded.bytes, encoded.spans))
        .map_err(|e| e.0)
}

/// The `zipkin` receiver factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZipkinReceiverFactory;

impl ZipkinReceiverFactory {
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

impl FactoryInfo for ZipkinReceiverFactory {
    fn type_name(&self) -> &'static str {
        "zipkin"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        Config::from_component(config)
            .map(|c| c.timeouts().deprecation_warnings(""))
            .unwrap_or_default()
    }

    fn extension_refs(&self, config: &ComponentConfig) -> Vec<(String, ComponentId)> {
        Config::from_component(config)
            .ok()
            .and_then(|c| c.auth?.id().ok())
            .map(|id| vec![("auth.authenticator".to_owned(), id)])
            .unwrap_or_default()
    }
}

impl ReceiverFactory for ZipkinReceiverFactory {
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

/// Binds before returning, so a port in use fails the build.
async fn start(
    id: &ComponentId,
    config: &Config,
    ctx: &BuildContext,
    next: SignalConsumers,
) -> Result<Running, BuildError> {
    let traces = next.only(Signal::Traces, id, "zipkin")?;
    let name = id.to_string();
    let ServerSecurity { tls, auth } = security(
        id,
        "",
        redline_pipeline::tls::ALPN_HTTP,
        config.tls.as_ref(),
        config.auth.as_ref(),
        &ctx.extensions,
    )?;
    let listener = redline_pipeline::endpoint::listen(&config.endpoint)
        .await
        .map_err(|e| BuildError::new(id, format!("endpoint: {e}")))?;
    let state = Arc::new(ZipkinState {
        next: traces,
        json_counters: ctx
            .telemetry
            .receiver(&name, TRANSPORT_V2_JSON, Signal::Traces),
        proto_counters: ctx
            .telemetry
            .receiver(&name, TRANSPORT_V2_PROTO, Signal::Traces),
        parse_string_tags: config.parse_string_tags,
        limits: BodyLimits {
            max: config.max_request_body_size(),
            encodings: config.encodings(),
            budget: BodyBudget::new(ctx.body_budget.unwrap_or(DEFAULT_BODY_BUDGET)),
        },
        // Config::check refused invalid headers.
        response_headers: redline_http_server::response_headers(&config.response_headers)
            .unwrap_or_default(),
        auth,
        v1_logged: AtomicBool::new(false),
        include_metadata: config.include_metadata,
    });
    let secure = tls.is_some();
    let conn = Conn::new(
        HttpProtocol::new(server::router(state), &config.timeouts()),
        tls,
    );
    let handle = ServerHandle::spawn("http", listener, conn);
    tracing::info!(receiver = %id, addr = %handle.addr, tls = secure, "Zipkin listening");
    Ok(Running { id: name, handle })
}

struct Running {
    id: String,
    handle: ServerHandle,
}

impl RunningComponent for Running {
    fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        vec![("http", self.handle.addr)]
    }

    fn shutdown(
        self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        let Running { id, handle } = *self;
        Box::pin(async move {
            if handle.shutdown(deadline).await {
                Ok(())
            } else {
                Err(ShutdownError {
                    component: id,
                    reason: "connections with requests in flight were closed at the shutdown \
                             deadline"
                        .to_owned(),
                })
            }
        })
    }
}
