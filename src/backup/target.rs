//! A backup target: the store a backup repository's objects live in.
//!
//! A target holds whole objects under keys, nothing more: a directory
//! ([`crate::backup::PosixTarget`]: a local disk or a mounted NFS export) or an S3 bucket.
//! It knows nothing of chunks, manifests or locks; the repository
//! ([`crate::backup::Repository`]) builds those on top of it.
//!
//! A key is a `/`-separated relative path of `[A-Za-z0-9._-]` segments, for example
//! `chunks/ab/abcd…` or `manifests/<backup id>`. [`check_key`] is the one definition of
//! a valid key, which every target applies before touching its store: no empty, `.` or
//! `..` segment, no segment that starts with `.` (names that start with a dot are the
//! targets' own, such as the posix target's temporary files), no leading or trailing
//! `/`, at most 1024 bytes.

use std::time::SystemTime;

use crate::error::{Error, Result};

/// Where a backup repository's objects live: a directory (posix) or an S3 bucket.
/// Keys are `/`-separated relative paths of [A-Za-z0-9._/-] (e.g. `chunks/ab/abcd...`).
pub trait Target: Send + Sync {
    /// A short description for logs and errors (`posix:/srv/backups`, `s3:bucket@host`).
    fn describe(&self) -> String;
    /// Store an object whole: readers see the old object or the new one, never a part.
    /// The object is durable (survives a crash of the host) once [`Target::flush`]
    /// returns; its content is durable before its name appears.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;
    /// Store an object only if no object has the key; Ok(false) when one exists (its
    /// content is left as it is). Used for lock files. On S3 without conditional
    /// writes: HEAD then PUT, documented as best effort.
    fn put_new(&self, key: &str, data: &[u8]) -> Result<bool>;
    /// The object, or None when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Whether an object exists.
    fn exists(&self, key: &str) -> Result<bool>;
    /// Remove an object; removing a missing object is Ok. Durable once
    /// [`Target::flush`] returns.
    fn delete(&self, key: &str) -> Result<()>;
    /// Every key under `prefix` (which ends with `/` or is empty), with its last
    /// modification time, in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>>;
    /// Make durable every `put` and `delete` done so far through this target, and every
    /// object `exists` found (which another process may have written and not yet made
    /// durable). A target whose writes are durable when they return (S3) keeps this
    /// default; the posix target syncs the directories concerned here, once for many
    /// chunks.
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// The longest key a target accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Check that `key` is a valid object key (see the module doc); `target` names the
/// target in the error.
pub fn check_key(target: &str, key: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("{target}: the object key {key:?} is not valid: {why}")));
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("it is longer than 1024 bytes");
    }
    if let Some(c) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))) {
        return bad(&format!("it holds the character {c:?}"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("it has an empty segment (a leading, trailing or doubled `/`)");
        }
        if segment.starts_with('.') {
            return bad("a segment starts with `.` (`.`, `..` and dot names are reserved)");
        }
    }
    Ok(())
}

/// Check that `prefix` is empty or a valid key followed by `/`.
pub fn check_prefix(target: &str, prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    match prefix.strip_suffix('/') {
        Some(dir) => check_key(target, dir),
        None => Err(Error::Invalid(format!("{target}: the list prefix {prefix:?} does not end with `/`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_pass() {
        for key in ["config", "chunks/ab/abcdef0123", "manifests/3f2c-11_x.y", "locks/a"] {
            check_key("t", key).unwrap();
        }
        check_prefix("t", "").unwrap();
        check_prefix("t", "chunks/").unwrap();
        check_prefix("t", "chunks/ab/").unwrap();
    }

    #[test]
    fn bad_keys_are_refused_with_a_sentence() {
        for key in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".tmp-1",
            "chunks/.hidden",
            "a b",
            "a\\b",
            "é",
            "a\0b",
        ] {
            match check_key("posix:/x", key) {
                Err(Error::Invalid(msg)) => assert!(msg.starts_with("posix:/x: the object key"), "{msg}"),
                other => panic!("{key:?} was accepted: {other:?}"),
            }
        }
        assert!(check_key("t", &"a".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(matches!(check_prefix("t", "chunks"), Err(Error::Invalid(_))));
        assert!(matches!(check_prefix("t", "/"), Err(Error::Invalid(_))));
        assert!(matches!(check_prefix("t", "../"), Err(Error::Invalid(_))));
    }
}
