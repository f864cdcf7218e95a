//! Backups: volumes copied into a repository of deduplicated, compressed and
//! optionally encrypted chunks on a target that outlives the volume group (a directory,
//! local or NFS, or an S3 bucket).
//!
//! - [`Target`] ([`target`]): where a repository's objects live; [`PosixTarget`]
//!   ([`posix`]) is a directory, [`S3Target`] ([`s3`]) an S3 bucket;
//! - [`Repository`] ([`repo`]): backups, restores, verify, delete and gc on a target;
//! - [`format`](mod@format): the objects and their JSON (see `docs/backup-format.md`);
//!   [`codec`]: compression and sealing; [`crypto`]: the keys; [`lock`]: the lock
//!   protocol between backups and gc.

pub mod codec;
pub mod crypto;
pub mod format;
pub mod lock;
pub mod posix;
pub mod repo;
pub mod s3;
pub mod target;

#[cfg(test)]
mod tests;

pub use codec::ChunkProblem;
pub use lock::LockTiming;
pub use posix::PosixTarget;
pub use repo::{
    BackupJob, BackupSummary, BadChunk, GcReport, Progress, RepoConfig, Repository, VerifyReport, DEFAULT_CHUNK_SIZE,
    DEFAULT_PARALLELISM,
};
pub use s3::{S3Settings, S3Target, S3Timeouts};
pub use target::Target;

/// Fill `buf` with random bytes from the kernel.
pub(crate) fn random_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the kernel's random source (getrandom) works");
}

/// `n` random bytes as hex digits.
pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    random_fill(&mut buf);
    format::to_hex(&buf)
}
