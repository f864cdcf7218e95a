//! What the backup benchmarks share: the test volume's content, chunk by chunk
//! ([`Kind`], [`Content`]), a sequential read of a volume ([`read_all`]), a backup
//! with default progress and cancel ([`backup`]) and the [`median`] of some figures.
//!
//! The content is the same in `benches/backup.rs` (a file) and `benches/backup_lvm.rs`
//! (LVs), so their figures are of the same bytes: per 4 MiB chunk in turn a hole,
//! random bytes, compressible text-like bytes and written zeroes.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hearth::backup::{BackupJob, BackupSummary, Progress, Repository};

/// The content's unit, and the repositories' chunk size: 4 MiB.
pub const CHUNK: u64 = 4 << 20;

/// What a 4 MiB chunk of the test volume holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Never written (a hole in a file, unmapped blocks of a thin LV).
    Hole,
    /// Random bytes: incompressible, all different.
    Random,
    /// Words from a small vocabulary: compressible.
    Text,
    /// Zeroes, written.
    Zeroes,
}

impl Kind {
    /// The kind of chunk number `index`.
    pub fn of(index: u64) -> Kind {
        match index % 4 {
            0 => Kind::Hole,
            1 => Kind::Random,
            2 => Kind::Text,
            _ => Kind::Zeroes,
        }
    }
}

/// The generator of the volume's bytes (xorshift64): chunks are made in order, from
/// the same seed, so that two volumes made alike are byte for byte the same.
pub struct Content {
    state: u64,
}

impl Default for Content {
    fn default() -> Self {
        Content::new()
    }
}

impl Content {
    /// A generator at the start of the volume.
    pub fn new() -> Content {
        Content::with_seed(0x9e37_79b9_7f4a_7c15)
    }

    /// A generator of other bytes (a nonzero seed other than the volume's): for
    /// changes that must not repeat the volume's own chunks.
    pub fn with_seed(seed: u64) -> Content {
        Content { state: seed }
    }

    /// A random number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Fill `buf` with chunk `kind`'s bytes (a hole: zeroes, and no random numbers
    /// drawn).
    pub fn fill(&mut self, kind: Kind, buf: &mut [u8]) {
        match kind {
            Kind::Hole | Kind::Zeroes => buf.fill(0),
            Kind::Random => self.random(buf),
            Kind::Text => {
                let words = [&b"volume "[..], b"block ", b"storage ", b"hearth ", b"backup ", b"0123 ", b"\n"];
                let mut j = 0;
                while j < buf.len() {
                    let w = words[(self.next() % words.len() as u64) as usize];
                    let n = w.len().min(buf.len() - j);
                    buf[j..j + n].copy_from_slice(&w[..n]);
                    j += n;
                }
            }
        }
    }

    /// Fill `buf` with random bytes (its length a multiple of 8).
    pub fn random(&mut self, buf: &mut [u8]) {
        buf.chunks_mut(8).for_each(|b| b.copy_from_slice(&self.next().to_le_bytes()));
    }
}

/// Read `size` bytes of `f` in 4 MiB `pread`s, in order; the seconds it took.
pub fn read_all(f: &File, size: u64) -> f64 {
    let t = Instant::now();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut at = 0;
    while at < size {
        let want = ((size - at) as usize).min(buf.len());
        let n = f.read_at(&mut buf[..want], at).unwrap();
        assert!(n > 0, "short read at {at}");
        at += n as u64;
    }
    t.elapsed().as_secs_f64()
}

/// Back up `size` bytes of `vol` as `id` (no progress, no cancel).
pub fn backup(
    repo: &Repository,
    id: &str,
    vol: &File,
    size: u64,
    parent: Option<&str>,
    changed: Option<&[Range<u64>]>,
) -> BackupSummary {
    repo.backup(BackupJob {
        backup_id: id,
        source: vol,
        size,
        parent,
        changed,
        metadata: serde_json::json!({}),
        progress: &|_: Progress| {},
        cancel: &AtomicBool::new(false),
    })
    .unwrap()
}

/// The median of some figures (the upper one of an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut xs = xs.to_vec();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}
