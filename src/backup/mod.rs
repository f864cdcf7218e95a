//! Backups: a repository of deduplicated chunks and manifests on a [`Target`].

pub mod s3;
pub mod target;

pub use s3::{S3Settings, S3Target, S3Timeouts};
pub use target::Target;
