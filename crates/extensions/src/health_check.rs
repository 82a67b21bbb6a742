//! `health_check`: an HTTP endpoint that says whether the pipeline is serving, for
//! Kubernetes probes and load balancers (otelcol's `health_check` extension, v1 keys).

use std::time::{Instant, SystemTime};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::config::Unsupported;
use redline_pipeline::extension::ExtensionCapabilities;
use redline_pipeline::only_bool::OnlyBool;
use redline_pipeline::status::{PipelineStatus, ServiceState};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExtensionFactory, RunningComponent,
};
use serde::Deserialize;

use crate::server::Server;

pub const DEFAULT_ENDPOINT: &str = "localhost:13133";

with_http_server_keys! {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        #[serde(default = "default_path")]
        pub path: String,
        #[serde(default)]
        pub response_body: Option<ResponseBody>,
        #[serde(default)]
        pub check_collector_pipeline: Option<CheckPipeline>,
        // otelcol's second health check (component status), behind `use_v2`.
        /// Only `false`: the first health check's answers.
        pub use_v2: Option<OnlyBool<false>>,
        pub http: Option<Unsupported>,
        pub grpc: Option<Unsupported>,
        pub component_health: Option<Unsupported>,
    }
}

/// Fixed bodies instead of the JSON status document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseBody {
    pub healthy: Option<String>,
    pub unhealthy: Option<String>,
}

/// otelcol's exporter-failure check, which never worked as documented: otelcol removed it
/// and keeps reading the keys so old files still start, ignoring them. So does Redline, with
/// a notice (see [`Config::notices`]).
#[allow(dead_code)] // the fields exist to accept otelcol's keys
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckPipeline {
    #[serde(default)]
    pub enabled: bool,
    /// Any text, as otelcol decodes it (a Go string it never parses).
    pub interval: Option<String>,
    pub exporter_failure_threshold: Option<i64>,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

fn default_path() -> String {
    "/".to_owned()
}

impl Config {
    fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(config.invalid("path", "must start with `/`"));
        }
        self.listen().check(config)
    }

    /// What `validate` and the start print about this config.
    fn notices(&self) -> Vec<String> {
        let mut notices = self.listen().warnings();
        if self
            .check_collector_pipeline
            .as_ref()
            .is_some_and(|c| c.enabled)
        {
            notices.push(
                "check_collector_pipeline has no effect, as in otelcol (which removed the check \
                 and ignores these keys); the health check answers 503 while any component is \
                 not running"
                    .to_owned(),
            );
        }
        notices
    }
}

pub struct HealthCheckFactory;

fn parse(config: &ComponentConfig) -> Result<Config, ConfigError> {
    let parsed: Config = config.parse()?;
    parsed.check(config)?;
    Ok(parsed)
}

impl FactoryInfo for HealthCheckFactory {
    fn type_name(&self) -> &'static str {
        "health_check"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        parse(config).map(|c| c.notices()).unwrap_or_default()
    }
}

impl ExtensionFactory for HealthCheckFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = parse(config);
        let status = ctx.status.clone();
        Box::pin(async move {
            let mut parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            let state = Health {
                status,
                started: Instant::now(),
                started_at: SystemTime::now(),
                body: parsed.response_body.take(),
            };
            let app = axum::Router::new()
                .route(&parsed.path, axum::routing::get(check))
                .with_state(std::sync::Arc::new(state));
            let server = Server::start(&id, "health", &parsed.listen(), app).await?;
            tracing::info!(extension = %id, addr = %server.addr(), path = %parsed.path,
                tls = parsed.tls.is_some(), "health check serving");
            let running: Box<dyn RunningComponent> = Box::new(server);
            Ok((ExtensionCapabilities::default(), running))
        })
    }
}

struct Health {
    status: PipelineStatus,
    started: Instant,
    started_at: SystemTime,
    body: Option<ResponseBody>,
}

async fn check(
    axum::extract::State(h): axum::extract::State<std::sync::Arc<Health>>,
) -> impl IntoResponse {
    let state = h.status.state();
    let healthy = state == ServiceState::Ready;
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let fixed = h.body.as_ref().and_then(|b| {
        if healthy {
            b.healthy.clone()
        } else {
            b.unhealthy.clone()
        }
    });
    if let Some(body) = fixed {
        return (code, body).into_response();
    }
    let up_since = h
        .started_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let doc = serde_json::json!({
        "status": if healthy { "Server available" } else { "Server not available" },
        "state": format!("{state:?}"),
        "failure": h.status.failure(),
        "upSince": up_since,
        "uptime": format!("{:?}", h.started.elapsed()),
    });
    (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}
