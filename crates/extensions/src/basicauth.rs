//! `basicauth`: HTTP Basic authentication against htpasswd entries (otelcol contrib's
//! basicauthextension, server side).
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
//! SHA-crypt (`$5$`, `$6$`) are refused at start. A bcrypt check costs tens of milliseconds,
//! so a successful one is remembered (as a SHA-256 of the password, per user): a scraper
//! pays it once, not on every scrape. The file is read once, at start.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use http::HeaderMap;
use parking_lot::Mutex;
use redline_pipeline::component::{BuildResult, FactoryInfo, NoopRunning};
use redline_pipeline::config::{Secret, Unsupported};
use redline_pipeline::extension::{AuthError, ExtensionCapabilities, ServerAuthenticator};
use redline_pipeline::{
    BuildContext, BuildError, ComponentConfig, ConfigError, ExtensionFactory, RunningComponent,
};
use ring::digest;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// `extensions.basicauth`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub htpasswd: Option<HtpasswdConfig>,
    /// The client side (credentials for exporters): Redline's exporters take no
    /// authenticator yet.
    pub client_auth: Option<Unsupported>,
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

/// The running authenticator.
pub struct BasicAuth {
    users: HashMap<String, Hash>,
    /// SHA-256 of the last password that passed a bcrypt check, per user.
    verified: Mutex<HashMap<String, [u8; 32]>>,
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

impl BasicAuth {
    /// Reads `file` (if any), then `inline`; errors name the source and line, never a hash.
    pub fn load(config: &HtpasswdConfig) -> Result<Self, String> {
        let mut users = HashMap::new();
        if let Some(file) = &config.file {
            let text = std::fs::read_to_string(file)
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
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    fn check(&self, user: &str, password: &[u8]) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        if !matches!(hash, Hash::Bcrypt(_)) {
            return hash.verify(password);
        }
        let digest = sha256(password);
        if let Some(known) = self.verified.lock().get(user) {
            if bool::from(known.ct_eq(&digest)) {
                return true;
            }
        }
        let ok = hash.verify(password);
        if ok {
            self.verified.lock().insert(user.to_owned(), digest);
        }
        ok
    }
}

impl ServerAuthenticator for BasicAuth {
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(value) = headers
            .get(http::header::AUTHORIZATION)
            .filter(|v| !v.is_empty())
        else {
            return Err(AuthError("no basic auth provided".to_owned()));
        };
        let value = value.as_bytes();
        const PREFIX: &[u8] = b"basic ";
        if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
            return Err(AuthError("invalid authorization scheme prefix".to_owned()));
        }
        let invalid = || AuthError("invalid authorization format".to_owned());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&value[PREFIX.len()..])
            .map_err(|_| invalid())?;
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(invalid)?;
        let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| invalid())?;
        if self.check(user, &decoded[colon + 1..]) {
            Ok(())
        } else {
            Err(AuthError("invalid credentials".to_owned()))
        }
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
            assert!(a.authenticate(&basic(u, p)).is_ok(), "{u}");
            assert!(a.authenticate(&basic(u, "wrong")).is_err(), "{u}");
        }
        // Twice more: the second bcrypt check comes from the cache and must still be exact.
        assert!(a.authenticate(&basic("bc", "b-pass")).is_ok());
        assert!(a.authenticate(&basic("bc", "b-pasS")).is_err());
        assert!(a.authenticate(&basic("nobody", "p-pass")).is_err());
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
        let msg = |h: HeaderMap| a.authenticate(&h).expect_err("refused").0;
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
        assert!(a.authenticate(&h).is_ok(), "the scheme is case-insensitive");
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
        assert!(a.authenticate(&basic("u", "from-inline")).is_ok());
        assert!(a.authenticate(&basic("u", "from-file")).is_err());
        assert!(a.authenticate(&basic("v", "v-pass")).is_ok());

        let e = load("u:$apr1$hidden$xyz").expect_err("md5 refused");
        assert!(
            e.contains("htpasswd.inline line 1") && !e.contains("hidden"),
            "{e}"
        );
        let e = load("no-colon-secret").expect_err("bad line");
        assert!(!e.contains("secret"), "{e}");
        assert!(load("\n# only comments\n").is_err());
    }
}
