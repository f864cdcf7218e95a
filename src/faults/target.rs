//! [`FaultyTarget`]: a backup target with the plan's faults in front of each call.

use std::sync::Arc;
use std::time::SystemTime;

use super::{act, hit, random};
use crate::backup::Target;
use crate::error::Result;

/// A backup target whose calls may fail, hang or answer nonsense (see [`super`]):
/// a nonsense `get` returns bytes that are not the object's (a repository must catch
/// them by their hash); nonsense elsewhere is a failure.
pub struct FaultyTarget {
    inner: Arc<dyn Target>,
}

impl FaultyTarget {
    /// Wrap a target.
    pub fn wrap(inner: Arc<dyn Target>) -> Arc<dyn Target> {
        Arc::new(FaultyTarget { inner })
    }
}

impl Target for FaultyTarget {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        act(None, "target.put")?;
        self.inner.put(key, data)
    }

    fn put_new(&self, key: &str, data: &[u8]) -> Result<bool> {
        act(None, "target.put_new")?;
        self.inner.put_new(key, data)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if hit(None, "target.get")? {
            let mut bytes = self.inner.get(key)?;
            if let Some(b) = bytes.as_mut().filter(|b| !b.is_empty()) {
                let at = (random() as usize) % b.len();
                b[at] ^= 0x5a;
            }
            return Ok(bytes);
        }
        self.inner.get(key)
    }

    fn exists(&self, key: &str) -> Result<bool> {
        // A made-up "it exists" would make a backup skip a chunk it must store: no
        // repository can catch that lie, so nonsense here is a failure.
        act(None, "target.exists")?;
        self.inner.exists(key)
    }

    fn delete(&self, key: &str) -> Result<()> {
        act(None, "target.delete")?;
        self.inner.delete(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, SystemTime)>> {
        act(None, "target.list")?;
        self.inner.list(prefix)
    }

    fn flush(&self) -> Result<()> {
        act(None, "target.flush")?;
        self.inner.flush()
    }
}
