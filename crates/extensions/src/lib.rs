//! Extensions: services other components use by id (authentication, storage).

pub mod bearertokenauth;
pub mod file_storage;
