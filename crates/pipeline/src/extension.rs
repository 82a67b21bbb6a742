//! What extensions offer to other components, as interfaces the pipeline core owns.
//!
//! A receiver that authenticates, or an exporter that keeps its queue on disk, names an
//! extension by id in its config (`auth: {authenticator: bearertokenauth}`,
//! `sending_queue: {storage: file_storage}`), as in otelcol. The component crate looks the id
//! up in [`Extensions`] and gets a trait object; it never depends on the extension's crate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::client::ClientMetadata;
use crate::component::ComponentId;
use crate::config::Unsupported;

/// Why a request was not authenticated. Messages are for logs and the client: they must not
/// contain the credential.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing or wrong credentials: HTTP 401, gRPC UNAUTHENTICATED.
    #[error("{0}")]
    Denied(String),
    /// Too many expensive checks are waiting already; nothing was decided about these
    /// credentials, so the client should retry: HTTP 503, gRPC UNAVAILABLE.
    #[error("too many authentication checks in progress, retry later")]
    Busy,
}

impl AuthError {
    pub fn denied(message: impl Into<String>) -> Self {
        AuthError::Denied(message.into())
    }
}

/// A check that has started. Most answer at once and cost no allocation; one that costs real
/// CPU (a bcrypt hash) runs off the async workers that serve ingestion and is awaited.
pub enum AuthCheck {
    Ready(Result<(), AuthError>),
    Pending(futures::future::BoxFuture<'static, Result<(), AuthError>>),
}

impl AuthCheck {
    pub async fn outcome(self) -> Result<(), AuthError> {
        match self {
            AuthCheck::Ready(result) => result,
            AuthCheck::Pending(check) => check.await,
        }
    }
}

impl From<Result<(), AuthError>> for AuthCheck {
    fn from(result: Result<(), AuthError>) -> Self {
        AuthCheck::Ready(result)
    }
}

/// Authenticates requests arriving at a server (otelcol's `extensionauth.Server`).
pub trait ServerAuthenticator: Send + Sync + 'static {
    /// Checks the request's headers (gRPC metadata are HTTP/2 headers). Must not block: an
    /// expensive check returns [`AuthCheck::Pending`].
    fn authenticate(&self, headers: &http::HeaderMap) -> AuthCheck;
}

/// Adds credentials to the requests a client sends (otelcol's `extensionauth.HTTPClient` and
/// `GRPCClient`): an exporter's `auth: {authenticator: <id>}`.
pub trait ClientAuthenticator: Send + Sync + 'static {
    /// Sets the credential headers on a request about to be sent (gRPC metadata are HTTP/2
    /// headers). Called for every request, so a credential that changes (a rotated token
    /// file) goes out from the next request on. `client` is the metadata of the client whose
    /// data the request carries, when its receiver kept it (`headers_setter` reads it).
    /// Errors must not contain the credential.
    fn add_credentials(
        &self,
        headers: &mut http::HeaderMap,
        client: Option<&ClientMetadata>,
    ) -> Result<(), AuthError>;
}

/// Gives components a place on disk for state that must survive a restart (otelcol's
/// `storage` extensions, e.g. `file_storage`).
pub trait Storage: Send + Sync + 'static {
    /// A directory owned by one component (created if needed), stable across restarts for
    /// the same `kind`, `component` and `name`.
    fn directory(
        &self,
        kind: &str,
        component: &ComponentId,
        name: &str,
    ) -> Result<PathBuf, std::io::Error>;
    /// Whether writes should be fsync'd before they are acknowledged.
    fn fsync(&self) -> bool {
        false
    }
}

/// What one built extension offers; a field is `Some` for each interface it implements.
#[derive(Clone, Default)]
pub struct ExtensionCapabilities {
    pub authenticator: Option<Arc<dyn ServerAuthenticator>>,
    pub client_authenticator: Option<Arc<dyn ClientAuthenticator>>,
    pub storage: Option<Arc<dyn Storage>>,
}

/// The extensions that are running, by id.
#[derive(Clone, Default)]
pub struct Extensions {
    by_id: BTreeMap<ComponentId, ExtensionCapabilities>,
}

impl Extensions {
    pub fn insert(&mut self, id: ComponentId, capabilities: ExtensionCapabilities) {
        self.by_id.insert(id, capabilities);
    }

    /// The authenticator named `id`, or why there is none.
    pub fn authenticator(&self, id: &ComponentId) -> Result<Arc<dyn ServerAuthenticator>, String> {
        let caps = self.get(id)?;
        caps.authenticator
            .clone()
            .ok_or_else(|| format!("extension `{id}` is not an authenticator"))
    }

    /// The client authenticator named `id`, or why there is none.
    pub fn client_authenticator(
        &self,
        id: &ComponentId,
    ) -> Result<Arc<dyn ClientAuthenticator>, String> {
        let caps = self.get(id)?;
        caps.client_authenticator.clone().ok_or_else(|| {
            if caps.authenticator.is_some() {
                format!("extension `{id}` authenticates clients of a server; it adds no credentials to requests (for `basicauth`, set `client_auth`)")
            } else {
                format!("extension `{id}` is not an authenticator")
            }
        })
    }

    /// The storage named `id`, or why there is none.
    pub fn storage(&self, id: &ComponentId) -> Result<Arc<dyn Storage>, String> {
        let caps = self.get(id)?;
        caps.storage
            .clone()
            .ok_or_else(|| format!("extension `{id}` is not a storage extension"))
    }

    fn get(&self, id: &ComponentId) -> Result<&ExtensionCapabilities, String> {
        self.by_id.get(id).ok_or_else(|| {
            format!("extension `{id}` is not running: define it under `extensions` and list it in `service.extensions`")
        })
    }
}

/// A server's `auth` section (otelcol's configauth): which authenticator extension checks
/// each request. Shared by every component that serves clients.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerAuthConfig {
    pub authenticator: String,
    /// Query parameters as credential sources (HTTP): not supported yet.
    #[serde(default)]
    pub request_params: Option<Unsupported>,
}

impl ServerAuthConfig {
    /// The extension id, or why `authenticator` is not one.
    pub fn id(&self) -> Result<ComponentId, String> {
        authenticator_id(&self.authenticator)
    }

    /// The running authenticator this section names, or why there is none (extensions are
    /// built before the servers that use them).
    pub fn resolve(&self, extensions: &Extensions) -> Result<Arc<dyn ServerAuthenticator>, String> {
        extensions.authenticator(&self.id()?)
    }
}

/// A client's `auth` section (otelcol's configauth, client side): which authenticator
/// extension adds credentials to each request. Shared by every exporter.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    pub authenticator: String,
}

impl ClientAuthConfig {
    /// The extension id, or why `authenticator` is not one.
    pub fn id(&self) -> Result<ComponentId, String> {
        authenticator_id(&self.authenticator)
    }
}

fn authenticator_id(authenticator: &str) -> Result<ComponentId, String> {
    if authenticator.trim().is_empty() {
        return Err("is required: the id of an authenticator extension, e.g. \
                    `bearertokenauth` or `basicauth`"
            .to_owned());
    }
    ComponentId::parse(authenticator)
}
