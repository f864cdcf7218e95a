//! The repository format: the objects' keys and the JSON of the config object and of
//! manifests, version 1 (described for people in `docs/backup-format.md`).
//!
//! A repository holds four kinds of object:
//!
//! - `config`: what the repository is ([`ConfigObject`], plain JSON), written once
//!   when the repository is made;
//! - `chunks/<first two hex digits>/<64 hex digits>`: a chunk of volume data, named
//!   by its [`ChunkName`] (see [`crate::backup::codec`] for the bytes);
//! - `manifests/<backup id>`: one backup ([`Manifest`]), written last;
//! - `locks/<32 hex digits>`: a lock held by a backup, a restore, a verify or a gc
//!   ([`crate::backup::lock`]).
//!
//! Parsing never panics: anything malformed read back is an error that names the
//! object.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The format version this code writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The `format` field of the config object.
pub const FORMAT_NAME: &str = "hearth-backup";

/// The config object's key.
pub const CONFIG_KEY: &str = "config";

/// Where chunks live.
pub const CHUNKS_PREFIX: &str = "chunks/";

/// Where manifests live.
pub const MANIFESTS_PREFIX: &str = "manifests/";

/// Where locks live.
pub const LOCKS_PREFIX: &str = "locks/";

/// The smallest and largest chunk sizes a repository may have.
pub const MIN_CHUNK_SIZE: usize = 64 * 1024;
/// See [`MIN_CHUNK_SIZE`].
pub const MAX_CHUNK_SIZE: usize = 256 * 1024 * 1024;

/// The longest backup id, in bytes.
pub const MAX_BACKUP_ID_LEN: usize = 128;

/// A chunk's name: the SHA-256 of its uncompressed content, or with encryption its
/// HMAC-SHA-256 under the repository's naming key. Written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkName(pub [u8; 32]);

impl ChunkName {
    /// The chunk's object key, `chunks/ab/ab…`.
    pub fn key(&self) -> String {
        let hex = self.to_string();
        format!("{CHUNKS_PREFIX}{}/{hex}", &hex[..2])
    }

    /// The name in a chunk object's key, when the key is one.
    pub fn from_key(key: &str) -> Option<ChunkName> {
        let rest = key.strip_prefix(CHUNKS_PREFIX)?;
        let (dir, hex) = rest.split_once('/')?;
        let name: ChunkName = hex.parse().ok()?;
        (dir == &hex[..2]).then_some(name)
    }
}

impl fmt::Display for ChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for ChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkName({self})")
    }
}

impl FromStr for ChunkName {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<ChunkName, String> {
        let bytes = from_hex(s).filter(|b| b.len() == 32 && s.bytes().all(|c| !c.is_ascii_uppercase()));
        let bytes = bytes.ok_or_else(|| format!("{s:?} is not a chunk name (64 lowercase hex digits)"))?;
        let mut name = [0u8; 32];
        name.copy_from_slice(&bytes);
        Ok(ChunkName(name))
    }
}

impl Serialize for ChunkName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ChunkName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<ChunkName, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lowercase hex digits of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The bytes of hex digits (either case), or None.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    // Digits only: from_str_radix alone would take "+f" as 15 (found by fuzzing).
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok())).collect()
}

/// Check a backup id: 1 to 128 of `[A-Za-z0-9._-]`, not starting with `.` (so that
/// it is one key segment).
pub fn check_backup_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_BACKUP_ID_LEN
        && !id.starts_with('.')
        && id.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the backup id {id:?} is not valid: 1 to {MAX_BACKUP_ID_LEN} letters, digits, `.`, `_` or `-`, \
             not starting with `.`"
        )))
    }
}

/// A manifest's key.
pub fn manifest_key(backup_id: &str) -> String {
    format!("{MANIFESTS_PREFIX}{backup_id}")
}

/// Check a chunk size.
pub fn check_chunk_size(chunk_size: usize) -> Result<()> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) && chunk_size.is_multiple_of(4096) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the backup chunk size {chunk_size} is not valid: a multiple of 4096 bytes from {MIN_CHUNK_SIZE} to \
             {MAX_CHUNK_SIZE}"
        )))
    }
}

/// Read the `version` field of an object's JSON first, so that a newer format is
/// refused as such rather than as malformed. `what` names the object.
fn check_version(value: &serde_json::Value, what: &str) -> Result<()> {
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v <= FORMAT_VERSION as u64 => Ok(()),
        Some(v) => Err(Error::Backend(format!(
            "{what} has format version {v}; this hearth reads version {FORMAT_VERSION} at most (upgrade hearth)"
        ))),
        None => Err(Error::Backend(format!("{what} is corrupt: it has no format version"))),
    }
}

/// The config object: what the repository is. Plain JSON, so that it can be read
/// without the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigObject {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// A random id of the repository (32 hex digits).
    pub id: String,
    /// Bytes of volume per chunk.
    pub chunk_size: u64,
    /// How chunks are named: `sha256`, or `hmac-sha256` when encrypted.
    pub chunk_hash: String,
    /// How chunks and manifests are compressed: `zstd`.
    pub compression: String,
    /// The encryption, when there is one.
    pub encryption: Option<EncryptionObject>,
}

/// The encryption part of the config object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionObject {
    /// The AEAD: `xchacha20-poly1305`.
    pub aead: String,
    /// How the keys are derived from the configured key: `hkdf-sha256`.
    pub kdf: String,
    /// The HKDF salt (hex).
    pub salt: String,
    /// A known text sealed with the derived key (hex): opening it proves the key.
    pub key_check: String,
}

/// The names the format fixes for the config object's fields.
pub const HASH_SHA256: &str = "sha256";
/// See [`HASH_SHA256`].
pub const HASH_HMAC_SHA256: &str = "hmac-sha256";
/// See [`HASH_SHA256`].
pub const COMPRESSION_ZSTD: &str = "zstd";
/// See [`HASH_SHA256`].
pub const AEAD_XCHACHA20_POLY1305: &str = "xchacha20-poly1305";
/// See [`HASH_SHA256`].
pub const KDF_HKDF_SHA256: &str = "hkdf-sha256";

impl ConfigObject {
    /// Parse and check the config object read from `target` (named in errors).
    pub fn parse(bytes: &[u8], target: &str) -> Result<ConfigObject> {
        let what = format!("the backup repository config at {target}");
        let corrupt = |e: &dyn fmt::Display| Error::Backend(format!("{what} is corrupt: {e}"));
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| corrupt(&e))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(Error::Backend(format!(
                "{what} is not a hearth backup repository (no `format: {FORMAT_NAME}`)"
            )));
        }
        check_version(&value, &what)?;
        let config: ConfigObject = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
        let chunk_size = usize::try_from(config.chunk_size).map_err(|e| corrupt(&e))?;
        check_chunk_size(chunk_size).map_err(|e| corrupt(&e))?;
        if config.compression != COMPRESSION_ZSTD {
            return Err(corrupt(&format!("unknown compression {:?}", config.compression)));
        }
        let expected_hash = if config.encryption.is_some() { HASH_HMAC_SHA256 } else { HASH_SHA256 };
        if config.chunk_hash != expected_hash {
            return Err(corrupt(&format!("chunk hash {:?} where {expected_hash:?} belongs", config.chunk_hash)));
        }
        if let Some(enc) = &config.encryption {
            if enc.aead != AEAD_XCHACHA20_POLY1305 || enc.kdf != KDF_HKDF_SHA256 {
                return Err(corrupt(&format!("unknown encryption {} with {}", enc.aead, enc.kdf)));
            }
            if from_hex(&enc.salt).is_none() || from_hex(&enc.key_check).is_none() {
                return Err(corrupt(&"the salt or the key check is not hex"));
            }
        }
        Ok(config)
    }
}

/// The figures of a backup, kept in its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSummary {
    /// Chunks the manifest lists (not holes or zero chunks).
    pub chunk_count: u64,
    /// Chunks this backup stored (not found in the repository already).
    pub new_chunks: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes written to the target for chunks (compressed, sealed).
    pub bytes_stored: u64,
}

/// One backup: the ordered list of its chunks and what hearth knows of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The backup's id, which is also the manifest's name.
    pub backup_id: String,
    /// The backup it is an incremental of, if any (for the record: the manifest is
    /// complete without it).
    pub parent: Option<String>,
    /// When the backup was made (RFC 3339, UTC).
    pub created: String,
    /// Bytes of volume.
    pub size: u64,
    /// Bytes per chunk; the last chunk may be shorter.
    pub chunk_size: u64,
    /// One entry per chunk of the volume, in order: the chunk's name, or null for a
    /// chunk that is all zeroes (or a hole).
    pub chunks: Vec<Option<ChunkName>>,
    /// hearth's record of the backup.
    pub metadata: serde_json::Value,
    /// The backup's figures.
    pub summary: ManifestSummary,
}

impl Manifest {
    /// Parse and check a manifest's JSON; `what` names it in errors.
    pub fn parse(json: &[u8], backup_id: &str, what: &str) -> Result<Manifest> {
        let corrupt = |e: &dyn fmt::Display| Error::Backend(format!("{what} is corrupt: {e}"));
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| corrupt(&e))?;
        check_version(&value, what)?;
        let m: Manifest = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
        if m.backup_id != backup_id {
            return Err(corrupt(&format!("it names the backup {:?}", m.backup_id)));
        }
        let chunk_size = usize::try_from(m.chunk_size).map_err(|e| corrupt(&e))?;
        check_chunk_size(chunk_size).map_err(|e| corrupt(&e))?;
        if m.chunks.len() as u64 != m.size.div_ceil(m.chunk_size) {
            return Err(corrupt(&format!(
                "it lists {} chunks for {} bytes in chunks of {}",
                m.chunks.len(),
                m.size,
                m.chunk_size
            )));
        }
        Ok(m)
    }

    /// The byte range of chunk `index`.
    pub fn chunk_range(&self, index: usize) -> std::ops::Range<u64> {
        let start = index as u64 * self.chunk_size;
        start..(start + self.chunk_size).min(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(b: u8) -> ChunkName {
        ChunkName([b; 32])
    }

    #[test]
    fn hex_is_digits_only() {
        assert_eq!(from_hex("0aFf"), Some(vec![0x0a, 0xff]));
        for bad in ["+2aa", "-1", "0", "é0", "0x"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
        let signed = format!("+{}", "a".repeat(63));
        assert!(signed.parse::<ChunkName>().is_err());
    }

    #[test]
    fn chunk_names_round_trip_through_text_and_keys() {
        let n = ChunkName([0xab; 32]);
        assert_eq!(n.to_string(), "ab".repeat(32));
        assert_eq!(n.key(), format!("chunks/ab/{}", "ab".repeat(32)));
        assert_eq!(ChunkName::from_key(&n.key()), Some(n));
        assert_eq!(n.to_string().parse::<ChunkName>().unwrap(), n);
        for bad in ["", "ab", &"AB".repeat(32), &"zz".repeat(32), &"a".repeat(63), "é"] {
            assert!(bad.parse::<ChunkName>().is_err(), "{bad}");
        }
        assert_eq!(ChunkName::from_key(&format!("chunks/cd/{}", "ab".repeat(32))), None);
        assert_eq!(ChunkName::from_key("chunks/ab/ab"), None);
        assert_eq!(ChunkName::from_key("manifests/x"), None);
        assert!(crate::backup::target::check_key("t", &n.key()).is_ok());
    }

    #[test]
    fn backup_ids_are_one_key_segment() {
        check_backup_id("0b6f3d5e-1c2a-4c8e-9f3a-2d1b0c9e8f7a").unwrap();
        for bad in ["", ".", "..", ".x", "a/b", "a b", &"a".repeat(129)] {
            assert!(matches!(check_backup_id(bad), Err(Error::Invalid(_))), "{bad}");
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            version: FORMAT_VERSION,
            backup_id: "b1".into(),
            parent: None,
            created: "2026-12-02T00:00:00Z".into(),
            size: 3 * 65536 + 1,
            chunk_size: 65536,
            chunks: vec![Some(name(1)), None, Some(name(2)), Some(name(1))],
            metadata: serde_json::json!({"volume_id": "v"}),
            summary: ManifestSummary { chunk_count: 3, new_chunks: 2, bytes_read: 4, bytes_stored: 5 },
        }
    }

    #[test]
    fn manifests_round_trip_and_are_checked() {
        let m = manifest();
        let json = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse(&json, "b1", "m").unwrap(), m);
        assert_eq!(m.chunk_range(3), 3 * 65536..3 * 65536 + 1);

        let err = |json: &[u8], id: &str| match Manifest::parse(json, id, "the manifest of b1") {
            Err(Error::Backend(msg)) => msg,
            other => panic!("{other:?}"),
        };
        assert!(err(&json, "b2").contains("is corrupt: it names the backup \"b1\""));
        assert!(err(b"{not json", "b1").starts_with("the manifest of b1 is corrupt"));
        assert!(err(&json[..json.len() / 2], "b1").contains("corrupt"));
        let mut short = m.clone();
        short.chunks.pop();
        assert!(err(&serde_json::to_vec(&short).unwrap(), "b1").contains("lists 3 chunks"));
        let mut newer = serde_json::to_value(&m).unwrap();
        newer["version"] = 2.into();
        newer["chunks"] = "a new layout".into();
        let msg = err(&serde_json::to_vec(&newer).unwrap(), "b1");
        assert!(msg.contains("format version 2; this hearth reads version 1 at most"), "{msg}");
        let mut bad_name = serde_json::to_value(&m).unwrap();
        bad_name["chunks"][0] = "xyz".into();
        assert!(err(&serde_json::to_vec(&bad_name).unwrap(), "b1").contains("not a chunk name"));
        let mut zero_chunk = serde_json::to_value(&m).unwrap();
        zero_chunk["chunk_size"] = 0.into();
        assert!(err(&serde_json::to_vec(&zero_chunk).unwrap(), "b1").contains("chunk size 0"));
    }

    #[test]
    fn config_objects_are_checked() {
        let c = ConfigObject {
            format: FORMAT_NAME.into(),
            version: 1,
            id: "00".repeat(16),
            chunk_size: 4 << 20,
            chunk_hash: HASH_SHA256.into(),
            compression: COMPRESSION_ZSTD.into(),
            encryption: None,
        };
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(ConfigObject::parse(&json, "posix:/x").unwrap(), c);
        let err = |v: serde_json::Value| match ConfigObject::parse(&serde_json::to_vec(&v).unwrap(), "posix:/x") {
            Err(Error::Backend(msg)) => msg,
            other => panic!("{other:?}"),
        };
        let mut v = serde_json::to_value(&c).unwrap();
        v["version"] = 7.into();
        assert!(err(v).contains("at posix:/x has format version 7"));
        let mut v = serde_json::to_value(&c).unwrap();
        v["format"] = "restic".into();
        assert!(err(v).contains("is not a hearth backup repository"));
        let mut v = serde_json::to_value(&c).unwrap();
        v["compression"] = "lz4".into();
        assert!(err(v).contains("unknown compression"));
        let mut v = serde_json::to_value(&c).unwrap();
        v["chunk_hash"] = HASH_HMAC_SHA256.into();
        assert!(err(v).contains("chunk hash"));
        assert!(matches!(ConfigObject::parse(b"", "p"), Err(Error::Backend(_))));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(to_hex(&[0, 1, 0xfe]), "0001fe");
        assert_eq!(from_hex("0001FE"), Some(vec![0, 1, 0xfe]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é0"), None);
    }
}
