//! Extensions: services other components use by id (authentication, storage).

pub mod basicauth;
pub mod bearertokenauth;
pub mod file_storage;
pub mod health_check;

pub use basicauth::BasicAuthFactory;
pub use bearertokenauth::BearerTokenAuthFactory;
pub use file_storage::FileStorageFactory;
pub use health_check::HealthCheckFactory;
