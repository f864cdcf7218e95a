//! The repository's keys: how chunks are named and how objects are sealed.
//!
//! Without encryption a chunk's name is the SHA-256 of its content. With encryption,
//! the configured 32-byte key is never used directly; two keys are derived from it
//! with HKDF-SHA-256 (salt: the repository's random salt from its config object):
//!
//! - the naming key (info `hearth-backup v1 chunk names`): a chunk's name is the
//!   HMAC-SHA-256 of its content under it, so that equal chunks still get one name
//!   (deduplication) but nobody without the key can test whether a chunk holds a
//!   given content;
//! - the sealing key (info `hearth-backup v1 objects`): chunks, manifests and the
//!   config's key check are sealed with XChaCha20-Poly1305 under it, with a random
//!   24-byte nonce per object and the object's key as associated data (so an object
//!   moved to another key does not open). A sealed object is
//!   `nonce (24 bytes) || ciphertext || tag (16 bytes)`.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::backup::format::ChunkName;

/// Bytes of nonce before a sealed object's ciphertext.
pub const NONCE_LEN: usize = 24;
/// Bytes of tag after it.
pub const TAG_LEN: usize = 16;

/// HKDF info strings: one derived key per use.
const INFO_NAMES: &[u8] = b"hearth-backup v1 chunk names";
const INFO_SEAL: &[u8] = b"hearth-backup v1 objects";

/// How chunks are named.
#[derive(Clone)]
pub enum Namer {
    /// SHA-256 of the content.
    Sha256,
    /// HMAC-SHA-256 of the content under the naming key.
    Hmac(Hmac<Sha256>),
}

impl Namer {
    /// The name of a chunk holding `data`.
    pub fn name(&self, data: &[u8]) -> ChunkName {
        match self {
            Namer::Sha256 => ChunkName(Sha256::digest(data).into()),
            Namer::Hmac(mac) => {
                let mut mac = mac.clone();
                mac.update(data);
                ChunkName(mac.finalize().into_bytes().into())
            }
        }
    }
}

/// The keys derived from the configured key for one repository.
pub struct Keys {
    namer: Namer,
    aead: XChaCha20Poly1305,
}

/// A sealed object did not open: it was changed, or sealed with another key, or
/// under another object key.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsealed;

impl Keys {
    /// Derive the repository's keys from the configured `key` and the repository's `salt`.
    pub fn derive(key: &[u8; 32], salt: &[u8]) -> Keys {
        let hk = Hkdf::<Sha256>::new(Some(salt), key);
        let (mut naming, mut sealing) = ([0u8; 32], [0u8; 32]);
        hk.expand(INFO_NAMES, &mut naming).expect("32 bytes is a valid HKDF-SHA-256 length");
        hk.expand(INFO_SEAL, &mut sealing).expect("32 bytes is a valid HKDF-SHA-256 length");
        Keys {
            namer: Namer::Hmac(<Hmac<Sha256> as KeyInit>::new_from_slice(&naming).expect("HMAC takes any key length")),
            aead: XChaCha20Poly1305::new(&sealing.into()),
        }
    }

    /// How chunks are named under these keys.
    pub fn namer(&self) -> Namer {
        self.namer.clone()
    }

    /// Seal `buf` in place. On entry `buf` is `[NONCE_LEN bytes of room][plaintext]
    /// [TAG_LEN bytes of room]`; on return it is the sealed object.
    pub fn seal_in_place(&self, aad: &[u8], buf: &mut [u8]) {
        let (nonce, rest) = buf.split_at_mut(NONCE_LEN);
        super::random_fill(nonce);
        let nonce = XNonce::try_from(&*nonce).expect("NONCE_LEN bytes");
        let tag_at = rest.len() - TAG_LEN;
        let (text, tag) = rest.split_at_mut(tag_at);
        let sealed =
            self.aead.encrypt_inout_detached(&nonce, aad, text.into()).expect("objects are far below the limit");
        tag.copy_from_slice(&sealed);
    }

    /// Seal `plain` into a new object.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; NONCE_LEN + plain.len() + TAG_LEN];
        buf[NONCE_LEN..NONCE_LEN + plain.len()].copy_from_slice(plain);
        self.seal_in_place(aad, &mut buf);
        buf
    }

    /// Open a sealed object in place; the plaintext is the returned part of `buf`.
    pub fn open_in_place<'a>(&self, aad: &[u8], buf: &'a mut [u8]) -> Result<&'a [u8], Unsealed> {
        if buf.len() < NONCE_LEN + TAG_LEN {
            return Err(Unsealed);
        }
        let (nonce, rest) = buf.split_at_mut(NONCE_LEN);
        let nonce = XNonce::try_from(&*nonce).map_err(|_| Unsealed)?;
        let tag_at = rest.len() - TAG_LEN;
        let (text, tag) = rest.split_at_mut(tag_at);
        let tag = chacha20poly1305::Tag::try_from(&*tag).map_err(|_| Unsealed)?;
        self.aead.decrypt_inout_detached(&nonce, aad, (&mut *text).into(), &tag).map_err(|_| Unsealed)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_objects_open_only_with_the_same_key_and_aad() {
        let keys = Keys::derive(&[7; 32], b"salt");
        let sealed = keys.seal(b"chunks/ab/x", b"hello");
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(keys.open_in_place(b"chunks/ab/x", &mut sealed.clone()).unwrap(), b"hello");
        assert_eq!(keys.open_in_place(b"chunks/ab/y", &mut sealed.clone()), Err(Unsealed));
        let other = Keys::derive(&[8; 32], b"salt");
        assert_eq!(other.open_in_place(b"chunks/ab/x", &mut sealed.clone()), Err(Unsealed));
        let salted = Keys::derive(&[7; 32], b"pepper");
        assert_eq!(salted.open_in_place(b"chunks/ab/x", &mut sealed.clone()), Err(Unsealed));
        let mut flipped = sealed.clone();
        flipped[NONCE_LEN] ^= 1;
        assert_eq!(keys.open_in_place(b"chunks/ab/x", &mut flipped), Err(Unsealed));
        for len in 0..NONCE_LEN + TAG_LEN {
            assert_eq!(keys.open_in_place(b"k", &mut sealed[..len].to_vec()), Err(Unsealed));
        }
        // A random nonce per object: sealing twice gives two objects.
        assert_ne!(keys.seal(b"k", b"same"), keys.seal(b"k", b"same"));
    }

    #[test]
    fn names_are_sha256_or_keyed() {
        let plain = Namer::Sha256.name(b"abc");
        assert_eq!(plain.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let keyed = Keys::derive(&[1; 32], b"s").namer();
        assert_ne!(keyed.name(b"abc"), plain);
        assert_eq!(keyed.name(b"abc"), keyed.name(b"abc"));
        assert_ne!(Keys::derive(&[2; 32], b"s").namer().name(b"abc"), keyed.name(b"abc"));
    }
}
