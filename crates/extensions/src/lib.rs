//! Extensions: services other components use by id (authentication, storage), and the
//! HTTP endpoints that show the collector's state to people (health, zpages).

// First, for its `with_http_server_keys!`.
#[macro_use]
mod server;

pub mod basicauth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod headers_setter;
pub mod health_check;
#[cfg(test)]
mod test_config;
pub mod zpages;

pub use basicauth::BasicAuthFactory;
pub use bearertokenauth::BearerTokenAuthFactory;
pub use file_storage::FileStorageFactory;
pub use headers_setter::HeadersSetterFactory;
pub use health_check::HealthCheckFactory;
pub use zpages::ZPagesFactory;
