//! The codec: how a chunk's or a manifest's bytes become an object and back.
//!
//! An object is the zstd frame of its content; in an encrypted repository, that frame
//! sealed ([`crate::backup::crypto`]) with the object's key as associated data. So in
//! a repository without encryption every chunk is a plain `.zst` file
//! (`zstd -d < chunks/ab/ab… > chunk`).
//!
//! Decoding a chunk checks everything a bad object could get wrong, in order: the
//! seal (with encryption), the zstd frame, the length (the manifest knows it), and the
//! name (the hash of the content). Each failure is a [`ChunkProblem`], never a panic.

use std::fmt;
use std::io::Read;

use crate::backup::crypto::{Keys, Namer, Unsealed, NONCE_LEN, TAG_LEN};
use crate::backup::format::ChunkName;

/// zstd's level for chunks and manifests: its fastest regular level, as backups are
/// bound by the time they take more than by the last few per cent of space.
pub const ZSTD_LEVEL: i32 = 1;

/// The largest manifest a repository accepts back (a 1 PiB volume in 4 MiB chunks
/// lists 268 million chunks: far below).
const MAX_MANIFEST_LEN: u64 = 4 << 30;

/// What is wrong with a chunk read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkProblem {
    /// The object is not there.
    Missing,
    /// It did not open: changed, or sealed with another key.
    Unsealed,
    /// It is not a zstd frame of the right size.
    BadCompression(String),
    /// Its content has another length than the manifest's chunk.
    WrongLength {
        /// Bytes the manifest expects.
        expected: usize,
        /// Bytes it holds.
        found: usize,
    },
    /// Its content has another name: its data changed.
    WrongHash(ChunkName),
}

impl fmt::Display for ChunkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkProblem::Missing => write!(f, "is missing"),
            ChunkProblem::Unsealed => write!(f, "is corrupt: it does not open with the repository's key"),
            ChunkProblem::BadCompression(e) => write!(f, "is corrupt: its zstd frame does not decode ({e})"),
            ChunkProblem::WrongLength { expected, found } => {
                write!(f, "is corrupt: it holds {found} bytes where {expected} belong")
            }
            ChunkProblem::WrongHash(found) => write!(f, "is corrupt: its content hashes to {found}"),
        }
    }
}

/// Per-thread state for encoding chunks: a zstd context and the output buffer.
pub struct Encoder {
    compressor: zstd::bulk::Compressor<'static>,
    out: Vec<u8>,
}

impl Encoder {
    /// An encoder for chunks of up to `chunk_size` bytes.
    pub fn new(chunk_size: usize) -> Encoder {
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd accepts its own levels");
        Encoder { compressor, out: vec![0u8; NONCE_LEN + zstd::compress_bound(chunk_size) + TAG_LEN] }
    }
}

/// Per-thread state for decoding chunks.
pub struct Decoder {
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl Decoder {
    /// A decoder.
    pub fn new() -> Decoder {
        Decoder { decompressor: zstd::bulk::Decompressor::new().expect("a zstd context") }
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// How a repository names, compresses and seals its objects.
pub struct Codec {
    namer: Namer,
    keys: Option<Keys>,
}

impl Codec {
    /// A codec with `keys` when the repository is encrypted.
    pub fn new(keys: Option<Keys>) -> Codec {
        let namer = keys.as_ref().map(Keys::namer).unwrap_or(Namer::Sha256);
        Codec { namer, keys }
    }

    /// Whether objects are sealed.
    pub fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// The name of a chunk holding `data`.
    pub fn name(&self, data: &[u8]) -> ChunkName {
        self.namer.name(data)
    }

    /// The object for a chunk holding `data` under the object key `key`, in the
    /// encoder's buffer.
    pub fn encode_chunk<'e>(&self, enc: &'e mut Encoder, key: &str, data: &[u8]) -> std::io::Result<&'e [u8]> {
        let start = if self.keys.is_some() { NONCE_LEN } else { 0 };
        let room = enc.out.len() - TAG_LEN;
        let n = enc.compressor.compress_to_buffer(data, &mut enc.out[start..room])?;
        match &self.keys {
            Some(keys) => {
                let sealed = &mut enc.out[..NONCE_LEN + n + TAG_LEN];
                keys.seal_in_place(key.as_bytes(), sealed);
                Ok(sealed)
            }
            None => Ok(&enc.out[..n]),
        }
    }

    /// Decode the chunk object `object` (changed in place when sealed) stored under
    /// `name` into `out`, whose length is the chunk's, and check it.
    pub fn decode_chunk(
        &self,
        dec: &mut Decoder,
        name: &ChunkName,
        object: &mut [u8],
        out: &mut [u8],
    ) -> Result<(), ChunkProblem> {
        let frame = self.open(&name.key(), object).map_err(|_| ChunkProblem::Unsealed)?;
        let found = dec
            .decompressor
            .decompress_to_buffer(frame, &mut *out)
            .map_err(|e| ChunkProblem::BadCompression(e.to_string()))?;
        if found != out.len() {
            return Err(ChunkProblem::WrongLength { expected: out.len(), found });
        }
        let hashed = self.namer.name(out);
        if hashed != *name {
            return Err(ChunkProblem::WrongHash(hashed));
        }
        Ok(())
    }

    /// The object for a small whole content (a manifest) under `key`.
    pub fn encode_object(&self, key: &str, plain: &[u8]) -> Vec<u8> {
        let frame = zstd::bulk::compress(plain, ZSTD_LEVEL).expect("compressing into a growing buffer");
        match &self.keys {
            Some(keys) => keys.seal(key.as_bytes(), &frame),
            None => frame,
        }
    }

    /// The content of an object made by [`Codec::encode_object`]; the error says
    /// what is wrong, for a sentence that names the object.
    pub fn decode_object(&self, key: &str, mut object: Vec<u8>) -> Result<Vec<u8>, String> {
        let frame =
            self.open(key, &mut object).map_err(|_| "it does not open with the repository's key".to_string())?;
        let mut plain = Vec::new();
        let decoder = zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| format!("zstd: {e}"))?;
        decoder
            .take(MAX_MANIFEST_LEN + 1)
            .read_to_end(&mut plain)
            .map_err(|e| format!("its zstd frame does not decode ({e})"))?;
        if plain.len() as u64 > MAX_MANIFEST_LEN {
            return Err(format!("it is larger than {MAX_MANIFEST_LEN} bytes"));
        }
        Ok(plain)
    }

    /// Open a sealed object in place (or pass a plain one through).
    fn open<'o>(&self, key: &str, object: &'o mut [u8]) -> Result<&'o [u8], Unsealed> {
        match &self.keys {
            Some(keys) => keys.open_in_place(key.as_bytes(), object),
            None => Ok(object),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codecs() -> [Codec; 2] {
        [Codec::new(None), Codec::new(Some(Keys::derive(&[3; 32], b"salt")))]
    }

    #[test]
    fn chunks_round_trip_and_every_corruption_is_named() {
        for codec in codecs() {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let name = codec.name(&data);
            let mut enc = Encoder::new(data.len());
            let object = codec.encode_chunk(&mut enc, &name.key(), &data).unwrap().to_vec();
            assert!(object.len() < data.len() / 10, "compressed: {}", object.len());
            let mut dec = Decoder::new();
            let mut out = vec![0u8; data.len()];
            codec.decode_chunk(&mut dec, &name, &mut object.clone(), &mut out).unwrap();
            assert_eq!(out, data);

            // A flipped byte: the seal or the frame or the hash says so.
            let mut bad = object.clone();
            let at = bad.len() / 2;
            bad[at] ^= 0x55;
            let problem = codec.decode_chunk(&mut dec, &name, &mut bad, &mut out).unwrap_err();
            if codec.encrypted() {
                assert_eq!(problem, ChunkProblem::Unsealed);
            } else {
                assert!(matches!(problem, ChunkProblem::BadCompression(_) | ChunkProblem::WrongHash(_)), "{problem:?}");
            }
            // Truncated, empty, garbage.
            for junk in [&object[..object.len() - 1], &[][..], &[0xff; 64][..]] {
                let problem = codec.decode_chunk(&mut dec, &name, &mut junk.to_vec(), &mut out).unwrap_err();
                assert!(!matches!(problem, ChunkProblem::Missing), "{problem:?}");
            }
            // Another chunk's object under this name: a different hash (or seal).
            let other = vec![9u8; data.len()];
            let other_name = codec.name(&other);
            let mut moved = codec.encode_chunk(&mut enc, &name.key(), &other).unwrap().to_vec();
            let problem = codec.decode_chunk(&mut dec, &name, &mut moved, &mut out).unwrap_err();
            assert_eq!(problem, ChunkProblem::WrongHash(other_name));
            // A shorter or longer chunk than the manifest says.
            let mut object2 = object.clone();
            let mut short_out = vec![0u8; data.len() - 1];
            let problem = codec.decode_chunk(&mut dec, &name, &mut object2, &mut short_out).unwrap_err();
            assert!(matches!(problem, ChunkProblem::BadCompression(_)), "{problem:?}");
            let mut long_out = vec![0u8; data.len() + 1];
            let problem = codec.decode_chunk(&mut dec, &name, &mut object.clone(), &mut long_out).unwrap_err();
            assert_eq!(problem, ChunkProblem::WrongLength { expected: data.len() + 1, found: data.len() });
        }
    }

    #[test]
    fn encrypted_chunks_do_not_show_their_content() {
        let [_, codec] = codecs();
        let data = vec![b'A'; 65536];
        let name = codec.name(&data);
        let mut enc = Encoder::new(data.len());
        let a = codec.encode_chunk(&mut enc, &name.key(), &data).unwrap().to_vec();
        let b = codec.encode_chunk(&mut enc, &name.key(), &data).unwrap().to_vec();
        assert_ne!(a, b, "a fresh nonce per object");
        assert!(zstd::bulk::decompress(&a, 1 << 20).is_err());
        assert_ne!(name, Codec::new(None).name(&data));
    }

    #[test]
    fn objects_round_trip() {
        for codec in codecs() {
            let json = br#"{"hello": "world"}"#.repeat(100);
            let object = codec.encode_object("manifests/b", &json);
            assert_eq!(codec.decode_object("manifests/b", object.clone()).unwrap(), json);
            if codec.encrypted() {
                assert!(codec.decode_object("manifests/c", object.clone()).unwrap_err().contains("does not open"));
            }
            let mut bad = object.clone();
            bad.truncate(bad.len() - 3);
            assert!(codec.decode_object("manifests/b", bad).is_err());
            assert!(codec.decode_object("manifests/b", Vec::new()).is_err());
        }
    }
}
