//! `basicauth`: HTTP Basic authentication against htpasswd entries, or credentials for
//! exporters (otelcol contrib's basicauthextension, server or client side).
//!
//! ```yaml
//! extensions:
//!   basicauth/grafana_cloud:
//!     client_auth:
//!       username: "123456"
//!       password: ${env:GRAFANA_CLOUD_API_KEY}
//! exporters:
//!   otlphttp:
//!     endpoint: https://otlp-gateway-prod-eu-west-2.grafana.net/otlp
//!     auth:
//!       authenticator: basicauth/grafana_cloud
//! ```
//!
//! With `client_auth` every request of an exporter that names the extension carries
//! `Authorization: Basic base64(username:password)`. One instance is either a client or a
//! server authenticator, as in otelcol.
//!
//! ```yaml
//! extensions:
//!   basicauth/metrics:
//!     htpasswd:
//!       file: /etc/redline/htpasswd          # and/or
//!       inline: |
//!         prometheus:${env:SCRAPE_PASSWORD}
//! exporters:
//!   prometheus:
//!     endpoint: 0.0.0.0:9464
//!     auth:
//!       authenticator: basicauth/metrics
//! ```
//!
//! Entries are `user:password-hash`, one per line; `inline` entries override the file's for
//! the same user, as in otelcol. Hashes: bcrypt (`$2a$`, `$2b$`, `$2y$`, what `htpasswd -B`
//! writes), `{SHA}`, `{SSHA}`, or the plain password. MD5-crypt (`$apr1$`, `$1$`) and
//! SHA-crypt (`$5$`, `$6$`) are refused at start. The file is read once, at start.
//!
//! A bcrypt check costs tens of milliseconds of CPU, which a client guessing passwords could
//! spend on the workers that serve everyone's ingestion. So bcrypt checks run on the blocking
//! pool, at most one per two cores at a time, with a short queue in front (beyond it the
//! client is told to retry: 503 / UNAVAILABLE); the outcome of each recent check, success or
//! failure, is remembered under a SHA-256 of the credentials, so a client pays for its
//! password once (its first burst shares one check) and a repeated wrong one costs nothing;
//! and an unknown user name is checked
//! against a decoy hash of the same cost, so the time taken does not tell which names exist.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use futures::future::{BoxFuture, FutureExt as _, WeakShared};
use http::{HeaderMap, HeaderValue};
use parking_lot::Mutex;
use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::config::Secret;
use redline_pipeline::extension::{
    AuthCheck, AuthError, ClientAuthenticator, ExtensionCapabilities, ServerAuthenticator,
};
use redline_pipeline::{
    BuildContext, BuildError, ClientMetadata, ComponentConfig, ConfigError, ExtensionFactory,
    RunningComponent,
};
use ring::digest;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// `extensions.basicauth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub htpasswd: Option<HtpasswdConfig>,
    /// The client side: the credentials exporters naming this extension send.
    pub client_auth: Option<ClientAuthConfig>,
}

/// `client_auth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientAuthConfig {
    pub username: String,
    pub password: Secret,
}

/// `htpasswd`: where the accepted users come from.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HtpasswdConfig {
    pub file: Option<String>,
    pub inline: Option<Secret>,
}

impl Config {
    pub fn from_component(config: &ComponentConfig) -> Result<Self, ConfigError> {
        crate::bearertokenauth::refuse_scalar_section(config)?;
        let parsed: Config = config.parse()?;
        match (&parsed.htpasswd, &parsed.client_auth) {
            (Some(_), Some(_)) => {
                return Err(config.invalid(
                    "client_auth",
                    "only one of `htpasswd` or `client_auth` can be specified: an instance \
                     authenticates either a server's clients or an exporter's requests",
                ))
            }
            (None, None) => {
                return Err(config.invalid(
                    "",
                    "at least one of `htpasswd` or `client_auth` must be specified",
                ))
            }
            (None, Some(_)) => return Ok(parsed),
            (Some(_), None) => {}
        }
        let usable = parsed
            .htpasswd
            .as_ref()
            .is_some_and(|h| h.file.is_some() || h.inline.as_ref().is_some_and(|i| !i.is_empty()));
        if !usable {
            return Err(config.invalid(
                "htpasswd",
                "no credential source: set htpasswd.file or htpasswd.inline",
            ));
        }
        // The inline entries are known now: `redline validate` reports a bad one.
        if let Some(inline) = parsed.htpasswd.as_ref().and_then(|h| h.inline.as_ref()) {
            parse_htpasswd(inline.expose(), "htpasswd.inline", &mut HashMap::new())
                .map_err(|e| config.invalid("htpasswd.inline", e))?;
        }
        Ok(parsed)
    }
}

/// One stored password.
enum Hash {
    Bcrypt(String),
    Sha1([u8; 20]),
    /// SHA-1 digest, then the salt.
    Ssha([u8; 20], Vec<u8>),
    Plain(Vec<u8>),
}

impl Hash {
    /// `where_` says which line, for errors; the hash itself is never repeated.
    fn parse(hash: &str, where_: &str) -> Result<Self, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if ["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            return Ok(Hash::Bcrypt(hash.to_owned()));
        }
        if let Some(rest) = hash.strip_prefix("{SHA}") {
            let bytes = b64
                .decode(rest)
                .map_err(|_| format!("{where_}: the {{SHA}} hash is not valid base64"))?;
            let digest: [u8; 20] = bytes
                .try_into()
                .map_err(|_| format!("{where_}: the {{SHA}} hash is not 20 bytes"))?;
            return Ok(Hash::Sha1(digest));
        }
        if let Some(rest) = hash.strip_prefix("{SSHA}") {
            let bytes = b64
                .decode(rest)
                .map_err(|_| format!("{where_}: the {{SSHA}} hash is not valid base64"))?;
            if bytes.len() <= 20 {
                return Err(format!("{where_}: the {{SSHA}} hash has no salt"));
            }
            let (d, salt) = bytes.split_at(20);
            let mut digest = [0u8; 20];
            digest.copy_from_slice(d);
            return Ok(Hash::Ssha(digest, salt.to_vec()));
        }
        for (prefix, name) in [
            ("$apr1$", "MD5-crypt ($apr1$)"),
            ("$1$", "MD5-crypt ($1$)"),
            ("$5$", "SHA-256-crypt ($5$)"),
            ("$6$", "SHA-512-crypt ($6$)"),
        ] {
            if hash.starts_with(prefix) {
                return Err(format!(
                    "{where_}: {name} hashes are not supported by Redline yet; use bcrypt \
                     (`htpasswd -B`)"
                ));
            }
        }
        Ok(Hash::Plain(hash.as_bytes().to_vec()))
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::Sha1(d) => {
                let got = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, password);
                bool::from(got.as_ref().ct_eq(d))
            }
            Hash::Ssha(d, salt) => {
                let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
                ctx.update(password);
                ctx.update(salt);
                bool::from(ctx.finish().as_ref().ct_eq(d))
            }
            Hash::Plain(p) => bool::from(p.as_slice().ct_eq(password)),
        }
    }
}

/// Parses htpasswd text into `users` (later entries win). `source` names it in errors.
fn parse_htpasswd(
    text: &str,
    source: &str,
    users: &mut HashMap<String, Hash>,
) -> Result<(), String> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let where_ = format!("{source} line {}", i + 1);
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| format!("{where_}: expected `user:password`"))?;
        if user.is_empty() {
            return Err(format!("{where_}: the user name is empty"));
        }
        users.insert(user.to_owned(), Hash::parse(hash, &where_)?);
    }
    Ok(())
}

/// Outcomes of recent bcrypt checks by SHA-256 of the credentials, in two generations: when
/// the young one is full it becomes the old one, so memory stays bounded and credentials in
/// use keep being found.
#[derive(Default)]
struct RecentChecks {
    young: HashMap<[u8; 32], bool>,
    old: HashMap<[u8; 32], bool>,
}

impl RecentChecks {
    /// Entries per generation: far more distinct live credentials than any deployment has.
    const GENERATION: usize = 4096;

    fn get(&self, key: &[u8; 32]) -> Option<bool> {
        self.young.get(key).or_else(|| self.old.get(key)).copied()
    }

    fn insert(&mut self, key: [u8; 32], ok: bool) {
        if self.young.len() >= Self::GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, ok);
    }
}

/// The running authenticator.
pub struct BasicAuth {
    users: HashMap<String, Hash>,
    /// Checked instead when the user is unknown (always fails): the most expensive bcrypt
    /// cost among the users, or `None` when no user has a bcrypt hash.
    decoy: Option<Hash>,
    bcrypt: Arc<BcryptGate>,
}

/// Bounds the bcrypt work in progress and remembers its outcomes.
struct BcryptGate {
    recent: Mutex<RecentChecks>,
    /// Checks under way, by the same key as `recent`.
    in_flight: Mutex<HashMap<[u8; 32], WeakShared<BoxFuture<'static, bool>>>>,
    running: Arc<Semaphore>,
    /// Checks waiting for or holding a permit.
    admitted: AtomicUsize,
    max_admitted: usize,
}

impl BcryptGate {
    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let permits = (cores / 2).max(1);
        Self {
            recent: Mutex::new(RecentChecks::default()),
            in_flight: Mutex::new(HashMap::new()),
            running: Arc::new(Semaphore::new(permits)),
            admitted: AtomicUsize::new(0),
            // A few checks' worth of queue: a new client waits well under a second behind a
            // flood instead of behind every attempt of it.
            max_admitted: permits * 8,
        }
    }

    /// Verifies `password` against `hash` off the async workers, or says the queue is full.
    /// Requests with the same credentials arriving while they are checked wait for that one
    /// check: a client's first burst costs one bcrypt and one place in the queue.
    fn check(self: &Arc<Self>, key: [u8; 32], hash: String, password: Vec<u8>) -> AuthCheck {
        if let Some(ok) = self.recent.lock().get(&key) {
            return AuthCheck::Ready(verdict(ok));
        }
        let mut in_flight = self.in_flight.lock();
        if let Some(check) = in_flight.get(&key).and_then(WeakShared::upgrade) {
            return AuthCheck::Pending(Box::pin(async move { verdict(check.await) }));
        }
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return AuthCheck::Ready(Err(AuthError::Busy));
        }
        let admission = Admission(self.clone());
        let check = async move {
            let gate = &admission.0;
            let ok = match gate.running.clone().acquire_owned().await {
                // The permit goes with the hash: a client that hangs up mid-check cannot free
                // its place while the CPU is still spent on it.
                Ok(permit) => tokio::task::spawn_blocking(move || {
                    let _running = permit;
                    bcrypt::verify(&password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false),
                // The semaphore is never closed; refusing is the safe answer if it were.
                Err(_) => false,
            };
            gate.recent.lock().insert(key, ok);
            gate.in_flight.lock().remove(&key);
            ok
        }
        .boxed()
        .shared();
        // Only a weak handle stays here: when every request waiting for the check has gone,
        // the check is dropped and its place in the queue given back.
        if let Some(weak) = check.downgrade() {
            if in_flight.len() >= self.max_admitted * 4 {
                in_flight.retain(|_, w| w.upgrade().is_some());
            }
            in_flight.insert(key, weak);
        }
        drop(in_flight);
        AuthCheck::Pending(Box::pin(async move { verdict(check.await) }))
    }
}

/// Holds one of the gate's admissions until the check ends or its request goes away.
struct Admission(Arc<BcryptGate>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

fn verdict(ok: bool) -> Result<(), AuthError> {
    if ok {
        Ok(())
    } else {
        Err(AuthError::denied("invalid credentials"))
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// A bcrypt hash of a random password at the highest cost the users' hashes have.
fn decoy(users: &HashMap<String, Hash>) -> Result<Option<Hash>, String> {
    let cost = users
        .values()
        .filter_map(|h| match h {
            Hash::Bcrypt(h) => h.get(4..6).and_then(|c| c.parse::<u32>().ok()),
            _ => None,
        })
        .max();
    let Some(cost) = cost else {
        return Ok(None);
    };
    let mut password = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut password)
        .map_err(|_| "htpasswd: no randomness for the decoy hash".to_owned())?;
    // bcrypt's own bounds; a hash outside them fails every check anyway.
    let cost = cost.clamp(4, 31);
    bcrypt::hash(password, cost)
        .map(|h| Some(Hash::Bcrypt(h)))
        .map_err(|e| format!("htpasswd: cannot make the decoy hash: {e}"))
}

impl BasicAuth {
    /// Reads `file` (if any), then `inline`; errors name the source and line, never a hash.
    pub fn load(config: &HtpasswdConfig) -> Result<Self, String> {
        let mut users = HashMap::new();
        if let Some(file) = &config.file {
            let text = redline_pipeline::user_file::read_text(file)
                .map_err(|e| format!("htpasswd.file: cannot read `{file}`: {e}"))?;
            parse_htpasswd(&text, &format!("htpasswd.file `{file}`"), &mut users)?;
        }
        if let Some(inline) = &config.inline {
            parse_htpasswd(inline.expose(), "htpasswd.inline", &mut users)?;
        }
        if users.is_empty() {
            return Err("htpasswd: no user defined".to_owned());
        }
        Ok(Self {
            decoy: decoy(&users)?,
            users,
            bcrypt: Arc::new(BcryptGate::new()),
        })
    }

    fn check(&self, credentials: &[u8], user: &str, password: &[u8]) -> AuthCheck {
        let hash = match self.users.get(user).or(self.decoy.as_ref()) {
            Some(Hash::Bcrypt(h)) => h,
            // Only a known user's hash can be cheap: the decoy is bcrypt.
            Some(cheap) => return AuthCheck::Ready(verdict(cheap.verify(password))),
            None => return AuthCheck::Ready(verdict(false)),
        };
        if !self.users.contains_key(user) {
            // The decoy: the same work as a wrong password, and never a success.
            let decoy = hash.clone();
            let refused = self
                .bcrypt
                .check(sha256(credentials), decoy, password.to_vec());
            return match refused {
                AuthCheck::Ready(_) => AuthCheck::Ready(verdict(false)),
                AuthCheck::Pending(check) => {
                    AuthCheck::Pending(Box::pin(async move { check.await.and(verdict(false)) }))
                }
            };
        }
        self.bcrypt
            .check(sha256(credentials), hash.clone(), password.to_vec())
    }
}

impl ServerAuthenticator for BasicAuth {
    fn authenticate(&self, headers: &HeaderMap) -> AuthCheck {
        let Some(value) = headers
            .get(http::header::AUTHORIZATION)
            .filter(|v| !v.is_empty())
        else {
            return Err(AuthError::denied("no basic auth provided")).into();
        };
        let value = value.as_bytes();
        const PREFIX: &[u8] = b"basic ";
        if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
            return Err(AuthError::denied("invalid authorization scheme prefix")).into();
        }
        let invalid = || AuthError::denied("invalid authorization format");
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&value[PREFIX.len()..])
        else {
            return Err(invalid()).into();
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Err(invalid()).into();
        };
        let Ok(user) = std::str::from_utf8(&decoded[..colon]) else {
            return Err(invalid()).into();
        };
        self.check(&decoded, user, &decoded[colon + 1..])
    }
}

/// The client side: the one header value every request gets.
pub struct BasicClientAuth {
    value: HeaderValue,
}

impl BasicClientAuth {
    pub fn new(config: &ClientAuthConfig) -> Result<Self, String> {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            config.username,
            config.password.expose()
        ));
        let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| "client_auth: the credentials do not make a header value".to_owned())?;
        value.set_sensitive(true);
        Ok(Self { value })
    }
}

impl std::fmt::Debug for BasicClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicClientAuth").finish_non_exhaustive()
    }
}

impl ClientAuthenticator for BasicClientAuth {
    fn add_credentials(
        &self,
        headers: &mut HeaderMap,
        _: Option<&ClientMetadata>,
    ) -> Result<(), AuthError> {
        headers.insert(http::header::AUTHORIZATION, self.value.clone());
        Ok(())
    }
}

/// The `basicauth` extension factory.
#[derive(Clone, Copy, Debug, Default)]
pub struct BasicAuthFactory;

impl FactoryInfo for BasicAuthFactory {
    fn type_name(&self) -> &'static str {
        "basicauth"
    }

    fn validate(&self, config: &ComponentConfig) -> Result<(), ConfigError> {
        Config::from_component(config).map(|_| ())
    }
}

impl ExtensionFactory for BasicAuthFactory {
    fn build(
        &self,
        config: &ComponentConfig,
        _ctx: &BuildContext,
    ) -> BuildResult<(ExtensionCapabilities, Box<dyn RunningComponent>)> {
        let id = config.id().clone();
        let parsed = Config::from_component(config);
        Box::pin(async move {
            let parsed = parsed.map_err(|e| BuildError::new(&id, e))?;
            if let Some(client) = &parsed.client_auth {
                let auth = BasicClientAuth::new(client).map_err(|e| BuildError::new(&id, e))?;
                let caps = ExtensionCapabilities {
                    client_authenticator: Some(Arc::new(auth)),
                    ..ExtensionCapabilities::default()
                };
                return Ok((caps, Box::new(NoopRunning) as Box<dyn RunningComponent>));
            }
            let htpasswd = parsed.htpasswd.unwrap_or_default();
            let auth = BasicAuth::load(&htpasswd).map_err(|e| BuildError::new(&id, e))?;
            tracing::info!(extension = %id, users = auth.users.len(), "basic auth users loaded");
            let caps = ExtensionCapabilities {
                authenticator: Some(Arc::new(auth)),
                ..ExtensionCapabilities::default()
            };
            Ok((caps, Box::new(NoopRunning) as Box<dyn RunningComponent>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {v}").parse().expect("header"),
        );
        h
    }

    fn outcome(a: &BasicAuth, h: &HeaderMap) -> Result<(), AuthError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(a.authenticate(h).outcome())
    }

    fn load(inline: &str) -> Result<BasicAuth, String> {
        BasicAuth::load(&HtpasswdConfig {
            file: None,
            inline: Some(Secret::from(inline)),
        })
    }

    #[test]
    fn plain_sha_ssha_and_bcrypt() {
        let bcrypt_hash = bcrypt::hash("b-pass", 4).expect("hash");
        let sha = base64::engine::general_purpose::STANDARD.encode(sha256_1(b"s-pass"));
        let mut ssha_bytes = sha1_salted(b"ss-pass", b"salt").to_vec();
        ssha_bytes.extend_from_slice(b"salt");
        let ssha = base64::engine::general_purpose::STANDARD.encode(ssha_bytes);
        let a = load(&format!(
            "# users\nplain:p-pass\nbc:{bcrypt_hash}\nsha:{{SHA}}{sha}\nssha:{{SSHA}}{ssha}\n"
        ))
        .expect("loads");
        for (u, p) in [
            ("plain", "p-pass"),
            ("bc", "b-pass"),
            ("sha", "s-pass"),
            ("ssha", "ss-pass"),
        ] {
            assert!(outcome(&a, &basic(u, p)).is_ok(), "{u}");
            assert!(outcome(&a, &basic(u, "wrong")).is_err(), "{u}");
        }
        // Twice more: the second bcrypt check comes from the cache and must still be exact.
        assert!(outcome(&a, &basic("bc", "b-pass")).is_ok());
        assert!(outcome(&a, &basic("bc", "b-pasS")).is_err());
        assert!(outcome(&a, &basic("nobody", "p-pass")).is_err());
    }

    fn sha256_1(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, data)
            .as_ref()
            .to_vec()
    }

    fn sha1_salted(data: &[u8], salt: &[u8]) -> Vec<u8> {
        let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(data);
        ctx.update(salt);
        ctx.finish().as_ref().to_vec()
    }

    #[test]
    fn header_errors_follow_otelcol() {
        let a = load("u:p").expect("loads");
        let msg = |h: HeaderMap| outcome(&a, &h).expect_err("refused").to_string();
        assert_eq!(msg(HeaderMap::new()), "no basic auth provided");
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "Bearer x".parse().expect("v"));
        assert_eq!(msg(h), "invalid authorization scheme prefix");
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "basic !!!".parse().expect("v"));
        assert_eq!(msg(h), "invalid authorization format");
        assert_eq!(msg(basic("u", "nope")), "invalid credentials");
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("u:p");
        h.insert(
            http::header::AUTHORIZATION,
            format!("BASIC {v}").parse().expect("v"),
        );
        assert!(outcome(&a, &h).is_ok(), "the scheme is case-insensitive");
    }

    #[test]
    fn inline_overrides_file_and_errors_do_not_echo() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, "u:from-file\nv:v-pass\n").expect("write");
        let a = BasicAuth::load(&HtpasswdConfig {
            file: Some(file.display().to_string()),
            inline: Some(Secret::from("u:from-inline")),
        })
        .expect("loads");
        assert!(outcome(&a, &basic("u", "from-inline")).is_ok());
        assert!(outcome(&a, &basic("u", "from-file")).is_err());
        assert!(outcome(&a, &basic("v", "v-pass")).is_ok());

        let e = load("u:$apr1$hidden$xyz").expect_err("md5 refused");
        assert!(
            e.contains("htpasswd.inline line 1") && !e.contains("hidden"),
            "{e}"
        );
        let e = load("no-colon-secret").expect_err("bad line");
        assert!(!e.contains("secret"), "{e}");
        assert!(load("\n# only comments\n").is_err());
    }

    #[test]
    fn unknown_users_cost_a_check_and_outcomes_are_remembered() {
        let hash = bcrypt::hash("right", 4).expect("hash");
        let a = load(&format!("bc:{hash}\nplain:p")).expect("loads");
        let pending = |h: &HeaderMap| matches!(a.authenticate(h), AuthCheck::Pending(_));
        for creds in [
            basic("nobody", "x"),
            basic("bc", "wrong"),
            basic("bc", "right"),
        ] {
            assert!(
                pending(&creds),
                "the first check of credentials runs bcrypt"
            );
            let first = outcome(&a, &creds);
            assert!(!pending(&creds), "the outcome is remembered");
            assert_eq!(first.is_ok(), outcome(&a, &creds).is_ok());
        }
        assert!(outcome(&a, &basic("bc", "right")).is_ok());
        assert!(outcome(&a, &basic("nobody", "x")).is_err());
        assert!(outcome(&a, &basic("bc", "wrong")).is_err());
        // A cheap hash never queues.
        assert!(matches!(
            a.authenticate(&basic("plain", "p")),
            AuthCheck::Ready(Ok(()))
        ));
    }

    #[test]
    fn a_burst_with_the_same_credentials_shares_one_check() {
        let hash = bcrypt::hash("right", 4).expect("hash");
        let a = load(&format!("bc:{hash}")).expect("loads");
        let burst: Vec<AuthCheck> = (0..a.bcrypt.max_admitted * 3)
            .map(|_| a.authenticate(&basic("bc", "right")))
            .collect();
        assert!(burst.iter().all(|c| matches!(c, AuthCheck::Pending(_))));
        assert_eq!(
            a.bcrypt.admitted.load(Ordering::Acquire),
            1,
            "one place taken"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for check in burst {
            assert!(runtime.block_on(check.outcome()).is_ok());
        }
        assert_eq!(a.bcrypt.admitted.load(Ordering::Acquire), 0);
        assert!(a.bcrypt.in_flight.lock().is_empty());
    }

    #[test]
    fn a_full_queue_answers_busy_until_checks_finish() {
        let hash = bcrypt::hash("right", 4).expect("hash");
        let a = load(&format!("bc:{hash}")).expect("loads");
        let max = a.bcrypt.max_admitted;
        let held: Vec<AuthCheck> = (0..max)
            .map(|i| a.authenticate(&basic("bc", &format!("guess-{i}"))))
            .collect();
        assert!(held.iter().all(|c| matches!(c, AuthCheck::Pending(_))));
        assert!(matches!(
            a.authenticate(&basic("bc", "right")),
            AuthCheck::Ready(Err(AuthError::Busy))
        ));
        // A request that goes away gives its place back.
        drop(held);
        assert!(outcome(&a, &basic("bc", "right")).is_ok());
    }

    #[test]
    fn a_client_hanging_up_mid_check_does_not_free_its_place_early() {
        // Cost 10: hundreds of milliseconds in a debug build, still running when dropped.
        let hash = bcrypt::hash("right", 10).expect("hash");
        let a = load(&format!("bc:{hash}")).expect("loads");
        let permits = a.bcrypt.running.available_permits();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let check = a.authenticate(&basic("bc", "guess")).outcome();
            // The client goes away once the check has started.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(20), check).await;
            assert_eq!(
                a.bcrypt.running.available_permits(),
                permits - 1,
                "the hash still being computed keeps its permit"
            );
            let freed = async {
                while a.bcrypt.running.available_permits() < permits {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(30), freed)
                .await
                .expect("given back when the hash is done");
        });
    }
}
