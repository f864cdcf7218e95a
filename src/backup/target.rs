//! A backup target: where a backup repository's objects live (a directory or an S3
//! bucket), seen as a flat map from keys to whole objects.

use crate::error::Result;

/// Where a backup repository's objects live: a directory (posix) or an S3 bucket.
/// Keys are `/`-separated relative paths of [A-Za-z0-9._/-] (e.g. `chunks/ab/abcd...`).
pub trait Target: Send + Sync {
    /// A short description for logs and errors (`posix:/srv/backups`, `s3:bucket@host`).
    fn describe(&self) -> String;
    /// Store an object whole: readers see the old object or the new one, never a part.
    fn put(&self, key: &str, data: &[u8]) -> Result<()>;
    /// Store an object only if no object has the key; Ok(false) when one exists (its
    /// content is left as it is). Used for lock files. On S3 without conditional
    /// writes: HEAD then PUT, documented as best effort.
    fn put_new(&self, key: &str, data: &[u8]) -> Result<bool>;
    /// The object, or None when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Whether an object exists.
    fn exists(&self, key: &str) -> Result<bool>;
    /// Remove an object; removing a missing object is Ok.
    fn delete(&self, key: &str) -> Result<()>;
    /// Every key under `prefix` (which ends with `/` or is empty), with its last
    /// modification time, in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<(String, std::time::SystemTime)>>;
}
