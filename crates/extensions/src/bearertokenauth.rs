//! `bearertokenauth`: checks that requests carry one of the configured tokens, and adds the
//! first of them to the requests of exporters that name it (otelcol contrib's
//! bearertokenauthextension, server and client side).
//!
//! ```yaml
//! extensions:
//!   bearertokenauth:
//!     token: ${env:OTLP_TOKEN}      # or `tokens: [...]`, or `filename: /run/secrets/token`
//! receivers:
//!   otlp:
//!     protocols:
//!       grpc:
//!         auth:
//!           authenticator: bearertokenauth
//! ```
//!
//! As a client authenticator (`exporters.otlp.auth.authenticator: bearertokenauth`) it sets
//! the header to `<scheme> <token>` with the first token (of `tokens`, else `token`, else the
//! file's first line) on every request, as otelcol does.
//!
//! The header must be exactly `<scheme> <token>` (`Bearer abc`), compared in constant time
//! against every accepted value. A token file holds one token per line (its first word; the
//! rest of the line is a comment, as in otelcol); it is checked for changes every second and
//! re-read when its modification time, size or inode changes, so a rotated Kubernetes secret
//! takes effect without a restart (otelcol watches it with fsnotify). Tokens never appear in errors, logs or `Debug` output.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue};
use parking_lot::RwLock;
use redline_pipeline::component::{BuildResult, FactoryInfo};
use redline_pipeline::config::{NodeValue, Secret, Unsupported};
use redline_pipeline::extension::{
    AuthCheck, AuthError, ClientAuthenticator, ExtensionCapabilities, ServerAuthenticator,
};
use redline_pipeline::only_bool::OnlyBool;
use redline_pipeline::{
    BuildContext, BuildError, ClientMetadata, ComponentConfig, ComponentId, ConfigError,
    ExtensionFactory, RunningComponent, ShutdownError,
};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// How often the token file is checked for changes.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// `extensions.bearertokenauth` (otelcol's keys and defaults).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Prefix of the header value, followed by one space; empty means the bare token.
    pub scheme: String,
    pub token: Option<Secret>,
    #[serde(deserialize_with = "Secret::deserialize_list")]
    pub tokens: Vec<Secret>,
    /// A file with one token per line; when set, `token` and `tokens` are ignored (as in
    /// otelcol, with a warning).
    pub filename: Option<String>,
    /// The request header carrying the credential (case-insensitive).
    pub header: String,
    pub retry_on_failure: Option<Unsupported>,
    /// Only `true`: the token file is read at start, and an unreadable one fails the start,
    /// which is what otelcol does with `true` (and no `retry_on_failure`); with `false` it
    /// would start and keep retrying in the background.
    pub wait_for_token_file: Option<OnlyBool<true>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            scheme: "Bearer".to_owned(),
            token: None,
            tokens: Vec::new(),
            filename: None,
            header: "Authorization".to_owned(),
            retry_on_failure: None,
            wait_for_token_file: None,
        }
    }
}

impl Config {
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        crate::bearertokenauth::refuse_scalar_section(config)?;
        let parsed: Config = config.parse()?;
        parsed.check(config)?;
        Ok(parsed)
    }

    fn check(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        let has_token = self.token.as_ref().is_some_and(|t| !t.is_empty());
        if !has_token && self.tokens.is_empty() && self.filename.is_none() {
            return Err(config.invalid(
                "",
                "no bearer token provided: set `token`, `tokens` or `filename`",
            ));
        }
        if has_token && !self.tokens.is_empty() {
            return Err(config.invalid(
                "tokens",
                "either tokens or token should be provided, not both",
            ));
        }
        if let Some(i) = self.tokens.iter().position(|t| t.is_empty()) {
            return Err(config.invalid(&format!("tokens[{i}]"), "must not be empty"));
        }
        if self
            .filename
            .as_deref()
            .is_some_and(|f| f.trim().is_empty())
        {
            return Err(config.invalid("filename", "must not be empty"));
        }
        if HeaderName::try_from(self.header.as_str()).is_err() {
            return Err(config.invalid(
                "header",
                format!("`{}` is not a valid HTTP header name", self.header),
            ));
        }
        if self.scheme.chars().any(|c| c.is_control() || c == ' ') {
            return Err(config.invalid("scheme", "must not contain spaces or control characters"));
        }
        Ok(())
    }

    /// The header values that authenticate, from `token`/`tokens` (not the file).
    fn inline_values(&self) -> Vec<Vec<u8>> {
        self.tokens
            .iter()
            .chain(self.token.iter())
            .filter(|t| !t.is_empty())
            .map(|t| header_value(&self.scheme, t.expose()))
            .collect()
    }
}

/// A section written as a scalar (`bearertokenauth: <token>`) would be quoted in serde's
/// "invalid type" error; for sections that hold secrets, say what is wrong without it.
pub(crate) fn refuse_scalar_section(config: &ComponentConfig) -> Result<(), ConfigError> {
    match &config.node().value {
        NodeValue::Scalar { text, .. } if !text.is_empty() => Err(config.invalid(
            "",
            "expected a map of settings (the value is not shown: it may be a secret)",
        )),
        _ => Ok(()),
    }
}

fn header_value(scheme: &str, token: &str) -> Vec<u8> {
    if scheme.is_empty() {
        token.as_bytes().to_vec()
    } else {
        format!("{scheme} {token}").into_bytes()
    }
}

/// The tokens of a token file, as otelcol reads it: the first whitespace-separated word of
/// each line (the rest of the line is a comment), empty lines ignored.
pub fn parse_token_file(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

/// The running authenticator.
pub struct BearerTokenAuth {
    header: HeaderName,
    /// Every accepted header value; swapped whole when the token file changes.
    accepted: RwLock<Arc<[Vec<u8>]>>,
}

impl std::fmt::Debug for BearerTokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerTokenAuth")
            .field("header", &self.header)
            .field("tokens", &self.accepted.read().len())
            .finish()
    }
}

impl BearerTokenAuth {
    fn new(header: HeaderName, values: Vec<Vec<u8>>) -> Self {
        Self {
            header,
            accepted: RwLock::new(values.into()),
        }
    }

    fn replace(&self, values: Vec<Vec<u8>>) {
        *self.accepted.write() = values.into();
    }
}

impl ServerAuthenticator for BearerTokenAuth {
    fn authenticate(&self, headers: &HeaderMap) -> AuthCheck {
        self.check(headers).into()
    }
}

impl BearerTokenAuth {
    /// A comparison of a few bytes: answered at once, on the caller's worker.
    fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let given = match headers.get(&self.header) {
            Some(v) if !v.is_empty() => v.as_bytes(),
            _ => {
                return Err(AuthError::Denied(format!(
                    "missing or empty authorization header: {}",
                    self.header
                )))
            }
        };
        let accepted = self.accepted.read();
        // Every value is compared, so the time taken does not tell which one came close.
        let mut matched = subtle::Choice::from(0);
        for value in accepted.iter() {
            matched |= value.as_slice().ct_eq(given);
        }
        drop(accepted);
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::denied("scheme or token does not match"))
        }
    }
}

impl ClientAuthenticator for BearerTokenAuth {
    fn add_credentials(
        &self,
        headers: &mut HeaderMap,
        _: Option<&ClientMetadata>,
    ) -> Result<(), AuthError> {
        let accepted = self.accepted.read();
        let first = accepted
            .first()
            .ok_or_else(|| AuthError::denied("no token to send"))?;
        let mut value = HeaderValue::from_bytes(first).map_err(|_| {
            AuthError::denied("the token cannot be sent: it is not a valid header value")
        })?;
        drop(accepted);
        // Kept out of HPACK's dynamic table and out of debug output.
        value.set_sensitive(true);
        headers.insert(self.header.clone(), value);
        Ok(())
    }
}

/// The `bearertokenauth` extension factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct BearerTokenAuthFactory;

impl FactoryInfo for BearerTokenAuthFactory {
    fn type_name(&self) -> &'static str {
        "bearertokenauth"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }
}

impl ExtensionFactory for BearerTokenAuthFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = Config::from_component(config);
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            let (auth, running) = start(&id, &parsed)?;
            let caps = ExtensionCapabilities {
                authenticator: Some(auth.clone()),
                client_authenticator: Some(auth),
                ..ExtensionCapabilities::default()
            };
            Ok((caps, running))
        })
    }
}

/// Starts the authenticator (and, with `filename`, the task watching the file). Must run
/// inside a tokio runtime when `filename` is set.
pub fn start(
    id: &ComponentId,
    config: &Config,
) -> Result<(Arc<BearerTokenAuth>, Box<dyn RunningComponent>), BuildError> {
    let header = HeaderName::try_from(config.header.as_str())
        .map_err(|_| BuildError::new(id, "header: not a valid HTTP header name"))?;
    let Some(filename) = config.filename.clone() else {
        let auth = Arc::new(BearerTokenAuth::new(header, config.inline_values()));
        return Ok((auth, Box::new(redline_pipeline::component::NoopRunning)));
    };
    if config.token.is_some() || !config.tokens.is_empty() {
        tracing::warn!(extension = %id, "a filename is specified: the configured token(s) are ignored");
    }
    let file = TokenFile {
        path: filename,
        scheme: config.scheme.clone(),
    };
    let (values, seen) = file
        .read()
        .map_err(|reason| BuildError::new(id, format!("filename: {reason}")))?;
    tracing::info!(extension = %id, filename = %file.path, tokens = values.len(), "bearer tokens loaded");
    let auth = Arc::new(BearerTokenAuth::new(header, values));
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(watch(id.to_string(), file, seen, auth.clone(), stopped));
    Ok((
        auth,
        Box::new(Watching {
            stop: Some(stop),
            task,
        }),
    ))
}

/// What identifies one version of the file: a rewrite or a swapped symlink changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &str) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

struct TokenFile {
    path: String,
    scheme: String,
}

impl TokenFile {
    /// The accepted header values and the stamp of the version read. Errors name the file,
    /// never its content.
    fn read(&self) -> Result<(Vec<Vec<u8>>, Stamp), String> {
        let before = stamp(&self.path).map_err(|e| format!("cannot read `{}`: {e}", self.path))?;
        let text = redline_pipeline::user_file::read_text(&self.path)
            .map_err(|e| format!("cannot read `{}`: {e}", self.path))?;
        let values: Vec<Vec<u8>> = parse_token_file(&text)
            .into_iter()
            .map(|t| header_value(&self.scheme, t))
            .collect();
        if values.is_empty() {
            return Err(format!("`{}` holds no token", self.path));
        }
        Ok((values, before))
    }
}

async fn watch(
    id: String,
    file: TokenFile,
    mut seen: Stamp,
    auth: Arc<BearerTokenAuth>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(FILE_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once per failing version of the file, not every second.
    let mut warned: Option<Result<Stamp, String>> = None;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let now = stamp(&file.path).map_err(|e| e.to_string());
        if now.as_ref().ok() == Some(&seen) || warned.as_ref() == Some(&now) {
            continue;
        }
        match file.read() {
            Ok((values, stamp)) => {
                let count = values.len();
                auth.replace(values);
                seen = stamp;
                warned = None;
                tracing::info!(extension = %id, filename = %file.path, tokens = count, "bearer token file changed, tokens reloaded");
            }
            Err(reason) => {
                tracing::warn!(extension = %id, %reason, "bearer token file unusable, keeping the previous tokens");
                warned = Some(now);
            }
        }
    }
}

/// The file-watching task of a running extension.
struct Watching {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningComponent for Watching {
    fn shutdown(
        mut self: Box<Self>,
        deadline: Instant,
    ) -> BoxFuture<'static, Result<(), ShutdownError>> {
        Box::pin(async move {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            let deadline = tokio::time::Instant::from_std(deadline);
            if tokio::time::timeout_at(deadline, &mut self.task)
                .await
                .is_err()
            {
                self.task.abort();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::try_from(name).expect("name"),
            value.parse().expect("value"),
        );
        h
    }

    fn auth(scheme: &str, tokens: &[&str]) -> BearerTokenAuth {
        BearerTokenAuth::new(
            HeaderName::from_static("authorization"),
            tokens.iter().map(|t| header_value(scheme, t)).collect(),
        )
    }

    #[test]
    fn accepts_exactly_scheme_space_token() {
        let a = auth("Bearer", &["t0k3n", "other"]);
        assert!(a.check(&headers("Authorization", "Bearer t0k3n")).is_ok());
        assert!(a.check(&headers("authorization", "Bearer other")).is_ok());
        for bad in [
            "Bearer t0k3",
            "bearer t0k3n",
            "t0k3n",
            "Bearer t0k3n ",
            "Basic t0k3n",
        ] {
            let e = a.check(&headers("authorization", bad)).expect_err(bad);
            assert!(
                !e.to_string().contains("t0k3"),
                "the error must not echo the token: {e}"
            );
        }
        let e = a.check(&HeaderMap::new()).expect_err("no header");
        assert_eq!(
            e.to_string(),
            "missing or empty authorization header: authorization"
        );
    }

    #[test]
    fn empty_scheme_and_custom_header() {
        let a = BearerTokenAuth::new(
            HeaderName::from_static("x-api-key"),
            vec![header_value("", "k")],
        );
        assert!(a.check(&headers("X-Api-Key", "k")).is_ok());
        assert!(a.check(&headers("authorization", "k")).is_err());
    }

    #[test]
    fn token_file_lines() {
        assert_eq!(parse_token_file(" a \n\nb\r\n  \n"), vec!["a", "b"]);
        assert_eq!(
            parse_token_file("t0ken-1   # rotated 2026-12-01\nt0ken-2\told\n"),
            vec!["t0ken-1", "t0ken-2"]
        );
        assert!(parse_token_file("\n \n").is_empty());
    }

    #[test]
    fn debug_does_not_show_tokens() {
        let a = auth("Bearer", &["sekrit"]);
        assert!(!format!("{a:?}").contains("sekrit"));
        let c = Config {
            token: Some(Secret::from("sekrit")),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("sekrit"));
    }
}
