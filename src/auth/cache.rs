//! A bounded cache of verified credentials, keyed by a hash of the secret.
//!
//! Keystone tokens and HTTP basic passwords are verified once and remembered until
//! the earlier of their own expiry and the configured time; the cache holds at most
//! a fixed number of entries and forgets the least recently used first. Only a
//! SHA-256 of the secret is kept as the key, never the secret.

use std::sync::Mutex;
use std::time::Instant;

use lru::LruCache;
use sha2::{Digest, Sha256};

/// The key of a secret: its SHA-256.
pub type Key = [u8; 32];

/// The key of `parts` (joined with a separator no part can hold).
pub fn key(parts: &[&[u8]]) -> Key {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Verified values, each valid until its deadline.
pub struct Cache<V: Clone> {
    inner: Option<Mutex<LruCache<Key, (V, Instant)>>>,
}

impl<V: Clone> Cache<V> {
    /// A cache of at most `size` entries; `enabled = false` caches nothing.
    pub fn new(size: usize, enabled: bool) -> Cache<V> {
        let inner = match std::num::NonZeroUsize::new(size) {
            Some(n) if enabled => Some(Mutex::new(LruCache::new(n))),
            _ => None,
        };
        Cache { inner }
    }

    /// The value, if cached and not past its deadline.
    pub fn get(&self, k: &Key) -> Option<V> {
        let mut c = self.inner.as_ref()?.lock().unwrap_or_else(|e| e.into_inner());
        match c.get(k) {
            Some((v, until)) if Instant::now() < *until => Some(v.clone()),
            Some(_) => {
                c.pop(k);
                None
            }
            None => None,
        }
    }

    /// Remember a value until `until`.
    pub fn put(&self, k: Key, v: V, until: Instant) {
        if let Some(c) = &self.inner {
            if until > Instant::now() {
                c.lock().unwrap_or_else(|e| e.into_inner()).put(k, (v, until));
            }
        }
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |c| c.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_expire_and_the_size_is_bounded() {
        let c: Cache<u32> = Cache::new(2, true);
        let later = Instant::now() + Duration::from_secs(60);
        c.put(key(&[b"a"]), 1, later);
        c.put(key(&[b"b"]), 2, later);
        c.put(key(&[b"c"]), 3, later);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&key(&[b"a"])), None, "the least recently used went first");
        assert_eq!(c.get(&key(&[b"c"])), Some(3));
        c.put(key(&[b"d"]), 4, Instant::now() + Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.get(&key(&[b"d"])), None, "past its deadline");
        let off: Cache<u32> = Cache::new(2, false);
        off.put(key(&[b"a"]), 1, later);
        assert_eq!(off.get(&key(&[b"a"])), None);
    }

    #[test]
    fn keys_do_not_collide_on_joins() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
    }
}
