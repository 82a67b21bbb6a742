//! `zpages`: HTML pages that show what the running collector is made of (otelcol's `zpages`
//! extension): `/debug/servicez` (build and runtime), `/debug/pipelinez` (each pipeline's
//! components in order), `/debug/extensionz`, `/debug/featurez` (the feature gates as the
//! command line left them) and, with `expvar.enabled`, `/debug/expvarz` (JSON).
//!
//! otelcol also serves `/debug/tracez` when its own spans are recorded; Redline records none
//! (`service.telemetry.traces` has no processors here), so that page is absent in both.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::config::Unsupported;
use redline_pipeline::extension::ExtensionCapabilities;
use redline_pipeline::host::HostInfo;
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExtensionFactory, RunningComponent,
};
use serde::Deserialize;

use crate::server::Server;

pub const DEFAULT_ENDPOINT: &str = "localhost:55679";

with_http_server_keys! {
    /// otelcol's keys: confighttp's server settings and `expvar`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        #[serde(default)]
        pub expvar: Expvar,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expvar {
    #[serde(default)]
    pub enabled: bool,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

fn parse(config: &ComponentConfig) -> Result<Config, ConfigError> {
    let parsed: Config = config.parse()?;
    if parsed.endpoint.trim().is_empty() {
        // otelcol's own rule, in its words.
        return Err(config.invalid(
            "endpoint",
            "\"endpoint\" is required when using the \"zpages\" extension",
        ));
    }
    parsed.listen().check(config)?;
    Ok(parsed)
}

pub struct ZPagesFactory;

impl FactoryInfo for ZPagesFactory {
    fn type_name(&self) -> &'static str {
        "zpages"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        parse(config).map(|_| ())
    }

    fn warnings(&self, config: &ComponentConfig) -> Vec<String> {
        parse(config)
            .map(|c| c.listen().warnings())
            .unwrap_or_default()
    }
}

impl ExtensionFactory for ZPagesFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = parse(config);
        let host = ctx.host.clone();
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            let pages = Arc::new(Pages {
                host,
                // `args()` would panic on an argument that is not UTF-8.
                cmdline: std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            });
            let mut app = axum::Router::new()
                .route("/debug/servicez", axum::routing::any(servicez))
                .route("/debug/pipelinez", axum::routing::any(pipelinez))
                .route("/debug/extensionz", axum::routing::any(extensionz))
                .route("/debug/featurez", axum::routing::any(featurez));
            if parsed.expvar.enabled {
                app = app.route("/debug/expvarz", axum::routing::any(expvarz));
            }
            let server =
                Server::start(&id, "zpages", &parsed.listen(), app.with_state(pages)).await?;
            tracing::info!(extension = %id, addr = %server.addr(), expvar = parsed.expvar.enabled,
                tls = parsed.tls.is_some(), "zpages serving");
            let running: Box<dyn RunningComponent> = Box::new(server);
            Ok((ExtensionCapabilities::default(), running))
        })
    }
}

struct Pages {
    host: Arc<HostInfo>,
    cmdline: Vec<String>,
}

type Shared = State<Arc<Pages>>;

fn html(page: Page) -> Response {
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], page.finish()).into_response()
}

async fn servicez(State(p): Shared) -> Response {
    let build = &p.host.build;
    let mut page = Page::new(&format!("Service {}", build.command));
    page.properties(
        "Build Info",
        &[
            ("Command", build.command.as_str()),
            ("Description", build.description.as_str()),
            ("Version", build.version.as_str()),
        ],
    );
    let started = humantime::format_rfc3339_seconds(p.host.started_at).to_string();
    page.properties(
        "Runtime Info",
        &[
            ("StartTimestamp", started.as_str()),
            ("OS", std::env::consts::OS),
            ("Arch", std::env::consts::ARCH),
        ],
    );
    for (name, href) in [
        ("Pipelines", "pipelinez"),
        ("Extensions", "extensionz"),
        ("Features", "featurez"),
    ] {
        let _ = writeln!(page.0, "<h4><a href=\"{href}\">{name}</a></h4>");
    }
    html(page)
}

/// A query parameter as Go's `url.Values.Get` reads it; bytes that are not UTF-8 are replaced.
fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let value = redline_pipeline::percent::query_value(uri.query()?, name)?;
    Some(String::from_utf8_lossy(&value).into_owned())
}

async fn pipelinez(State(p): Shared, uri: Uri) -> Response {
    let mut page = Page::new("Pipelines");
    let mut pipelines: Vec<_> = p.host.pipelines.iter().collect();
    pipelines.sort_by(|a, b| a.id.cmp(&b.id));
    let rows: Vec<Vec<String>> = pipelines
        .iter()
        .map(|pl| {
            vec![
                pl.id.clone(),
                pl.signal.as_str().to_owned(),
                pl.mutates_data.to_string(),
                pl.receivers.join("\n"),
                pl.processors.join("\n"),
                pl.exporters.join("\n"),
            ]
        })
        .collect();
    page.table(
        &[
            "FullName",
            "InputType",
            "MutatesData",
            "Receivers",
            "Processors",
            "Exporters",
        ],
        &rows,
    );
    // otelcol's parameters for one component of the table.
    let param = |name| query_param(&uri, name).filter(|v| !v.is_empty());
    if let (Some(pipeline), Some(name), Some(kind)) = (
        param("pipelinenamez"),
        param("componentnamez"),
        param("componentkindz"),
    ) {
        // A processor is built per pipeline, so otelcol names it with its pipeline.
        let full = if kind == "processor" {
            format!("{pipeline}/{name}")
        } else {
            name
        };
        let _ = writeln!(page.0, "<h4>{}: {}</h4>", escape(&kind), escape(&full));
    }
    html(page)
}

async fn extensionz(State(p): Shared, uri: Uri) -> Response {
    let mut page = Page::new("Extensions");
    let mut ids = p.host.extensions.clone();
    ids.sort();
    let rows: Vec<Vec<String>> = ids.into_iter().map(|id| vec![id]).collect();
    page.table(&["FullName"], &rows);
    if let Some(name) = query_param(&uri, "zextensionname").filter(|v| !v.is_empty()) {
        let _ = writeln!(page.0, "<h4>{}</h4>", escape(&name));
    }
    html(page)
}

async fn featurez(State(p): Shared) -> Response {
    let mut page = Page::new("Feature Gates");
    let rows: Vec<Vec<String>> = p
        .host
        .feature_gates
        .iter()
        .map(|g| {
            vec![
                g.id.to_owned(),
                g.enabled.to_string(),
                g.stage.to_owned(),
                g.redline.to_owned(),
            ]
        })
        .collect();
    page.table(&["ID", "Enabled", "Stage", "In Redline"], &rows);
    html(page)
}

async fn expvarz(State(p): Shared) -> Response {
    let mut doc = serde_json::json!({ "cmdline": p.cmdline });
    if let Some(process) = process_status() {
        doc["process"] = process;
    }
    (
        [(CONTENT_TYPE, "application/json; charset=utf-8")],
        doc.to_string(),
    )
        .into_response()
}

/// The process's memory and threads from /proc/self/status (Linux only): what Go's
/// `memstats` tells an operator, in the kernel's terms.
fn process_status() -> Option<serde_json::Value> {
    let status = redline_procfs::Status::read()?;
    Some(serde_json::json!({
        "resident_memory_bytes": status.bytes("VmRSS:"),
        "peak_resident_memory_bytes": status.bytes("VmHWM:"),
        "virtual_memory_bytes": status.bytes("VmSize:"),
        "threads": status.number("Threads:"),
    }))
}

/// An HTML page written in one pass; every text from the config or a query is escaped.
struct Page(String);

impl Page {
    fn new(title: &str) -> Self {
        let title = escape(title);
        Page(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{title}</title></head>\n<body>\n<h2>{title}</h2>\n"
        ))
    }

    /// A two-column table of names and values under a bold caption.
    fn properties(&mut self, caption: &str, rows: &[(&str, &str)]) {
        let _ = writeln!(self.0, "<b>{}:</b>\n<table>", escape(caption));
        for (name, value) in rows {
            let _ = writeln!(
                self.0,
                "<tr><td><b>{}</b></td><td>{}</td></tr>",
                escape(name),
                escape(value)
            );
        }
        self.0.push_str("</table>\n");
    }

    /// A table with a header row; a newline inside a cell becomes a line break.
    fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.0.push_str("<table>\n<tr>");
        for h in header {
            let _ = write!(self.0, "<th>{}</th>", escape(h));
        }
        self.0.push_str("</tr>\n");
        for row in rows {
            self.0.push_str("<tr>");
            for cell in row {
                let lines: Vec<String> = cell.split('\n').map(escape).collect();
                let _ = write!(self.0, "<td>{}</td>", lines.join("<br>"));
            }
            self.0.push_str("</tr>\n");
        }
        self.0.push_str("</table>\n");
    }

    fn finish(mut self) -> String {
        self.0.push_str("</body>\n</html>\n");
        self.0
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
