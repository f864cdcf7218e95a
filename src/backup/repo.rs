//! The backup repository: volumes stored as deduplicated, compressed (and optionally
//! encrypted) chunks on a [`Target`], one manifest per backup.
//!
//! A [`Repository`] is opened on a target ([`Repository::open`]), which makes the
//! repository when the target is empty. The format is in [`crate::backup::format`] and
//! `docs/backup-format.md`; this module is what runs on it.
//!
//! Making a backup ([`Repository::backup`]):
//!
//! 1. take a shared lock ([`crate::backup::lock`]), so that no gc runs until the
//!    manifest is written;
//! 2. read the parent's manifest, if any: a chunk outside the `changed` ranges is
//!    taken from it without reading the volume;
//! 3. read every other chunk of the volume in order (one reader thread, large
//!    sequential reads; holes found with `SEEK_DATA` are not read) and hand it to
//!    `parallelism` workers, which drop all-zero chunks, name the chunk by its hash,
//!    and store it unless the repository has it already (compressed, and sealed when
//!    encrypted). Buffers are recycled: at most `parallelism + 1` chunks of volume data
//!    are in memory at once, plus one compression buffer per worker;
//! 4. check cancel and the lock, then write the manifest, atomically: every chunk it
//!    names was stored (or found) before, so a crash never leaves a manifest naming a
//!    missing chunk. Chunks of a backup that fails or is cancelled before this step
//!    are garbage for the next gc;
//! 5. release the lock.
//!
//! Restoring ([`Repository::restore`]) and verifying ([`Repository::verify`]) take a
//! shared lock too, read the manifest, and fetch and check every chunk on the workers;
//! a restore writes each at its offset with `pwrite`. [`Repository::gc`] takes the
//! exclusive lock, reads every manifest, and deletes the chunks none names.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::backup::codec::{ChunkProblem, Codec, Decoder, Encoder};
use crate::backup::crypto::Keys;
use crate::backup::format::{
    check_backup_id, check_chunk_size, from_hex, manifest_key, to_hex, ChunkName, ConfigObject, EncryptionObject,
    Manifest, ManifestSummary, AEAD_XCHACHA20_POLY1305, CHUNKS_PREFIX, COMPRESSION_ZSTD, CONFIG_KEY, FORMAT_NAME,
    FORMAT_VERSION, HASH_HMAC_SHA256, HASH_SHA256, KDF_HKDF_SHA256, MANIFESTS_PREFIX,
};
use crate::backup::lock::{LockTiming, RepoLock};
use crate::backup::target::Target;
use crate::error::{Error, Result};

/// The default chunk size: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;

/// The default number of worker threads.
pub const DEFAULT_PARALLELISM: usize = 4;

/// The most worker threads a repository runs.
pub const MAX_PARALLELISM: usize = 64;

/// The text sealed in the config object to check the key.
const KEY_CHECK_TEXT: &[u8] = b"hearth-backup key check";

/// How a repository is opened.
#[derive(Clone)]
pub struct RepoConfig {
    /// Bytes per chunk for a new repository (an existing one keeps its own); default
    /// 4 MiB; a multiple of 4096 from 64 KiB to 256 MiB.
    pub chunk_size: usize,
    /// The key chunks and manifests are sealed with; None: not encrypted. It must be
    /// the key the repository was made with.
    pub encryption_key: Option<[u8; 32]>,
    /// Threads for hashing, compressing and storing (default 4; 1 to 64).
    pub parallelism: usize,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig { chunk_size: DEFAULT_CHUNK_SIZE, encryption_key: None, parallelism: DEFAULT_PARALLELISM }
    }
}

impl std::fmt::Debug for RepoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoConfig")
            .field("chunk_size", &self.chunk_size)
            .field("encryption_key", &self.encryption_key.map(|_| "<secret>"))
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

/// A backup to make.
pub struct BackupJob<'a> {
    /// hearth's backup id (a uuid): the manifest's name.
    pub backup_id: &'a str,
    /// The volume or snapshot, opened read-only.
    pub source: &'a File,
    /// Bytes to back up (the volume's size).
    pub size: u64,
    /// The parent backup's id (incremental).
    pub parent: Option<&'a str>,
    /// Byte ranges that may differ from the parent (thin_delta); None: read all and
    /// compare chunk hashes with the repository's.
    pub changed: Option<&'a [Range<u64>]>,
    /// hearth's record of the backup (for export and restore elsewhere), kept in the
    /// manifest.
    pub metadata: serde_json::Value,
    /// Called as the work advances (at least every 1% or every second, and at the end).
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Set to stop: checked between chunks.
    pub cancel: &'a AtomicBool,
}

/// How far a backup or a restore is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the volume done.
    pub bytes_done: u64,
    /// Bytes of the volume in all.
    pub bytes_total: u64,
}

/// What a finished backup is (the manifest's summary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The backup's id.
    pub backup_id: String,
    /// Bytes of volume.
    pub size: u64,
    /// Chunks the manifest lists (not holes).
    pub chunk_count: u64,
    /// Chunks this backup stored (not deduplicated).
    pub new_chunks: u64,
    /// Bytes read from the source (the incremental's measure).
    pub bytes_read: u64,
    /// Compressed bytes written to the target.
    pub bytes_stored: u64,
    /// The parent backup, when incremental.
    pub parent: Option<String>,
}

impl BackupSummary {
    fn of(m: &Manifest) -> BackupSummary {
        BackupSummary {
            backup_id: m.backup_id.clone(),
            size: m.size,
            chunk_count: m.summary.chunk_count,
            new_chunks: m.summary.new_chunks,
            bytes_read: m.summary.bytes_read,
            bytes_stored: m.summary.bytes_stored,
            parent: m.parent.clone(),
        }
    }
}

/// What a gc did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Manifests read.
    pub manifests: u64,
    /// Distinct chunks they name.
    pub chunks_referenced: u64,
    /// Chunk objects found.
    pub chunks_found: u64,
    /// Chunk objects deleted (named by no manifest).
    pub chunks_deleted: u64,
    /// Stale locks deleted.
    pub stale_locks_removed: u64,
}

/// A bad chunk found by [`Repository::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadChunk {
    /// The chunk's name.
    pub name: String,
    /// Its first position in the backup (chunk number).
    pub index: u64,
    /// Its first byte offset in the volume.
    pub offset: u64,
    /// What is wrong.
    pub problem: ChunkProblem,
}

/// What [`Repository::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The backup.
    pub backup_id: String,
    /// Distinct chunks read and checked.
    pub chunks_checked: u64,
    /// Bytes of volume data they hold.
    pub bytes_checked: u64,
    /// The bad or missing chunks, by position; empty when the backup is intact.
    pub bad: Vec<BadChunk>,
}

impl VerifyReport {
    /// Whether every chunk is there and sound.
    pub fn is_intact(&self) -> bool {
        self.bad.is_empty()
    }
}

/// A backup repository on a target.
pub struct Repository {
    target: Arc<dyn Target>,
    /// The random id in its config object.
    id: String,
    codec: Codec,
    chunk_size: usize,
    parallelism: usize,
    timing: LockTiming,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("target", &self.target.describe())
            .field("chunk_size", &self.chunk_size)
            .field("encrypted", &self.codec.encrypted())
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

impl Repository {
    /// Open the repository on `target`, making it when the target is empty; refuse a
    /// repository of a newer format version, or one whose encryption key is not this one,
    /// with a sentence that says so.
    pub fn open(target: Arc<dyn Target>, config: RepoConfig) -> Result<Repository> {
        check_chunk_size(config.chunk_size)?;
        if !(1..=MAX_PARALLELISM).contains(&config.parallelism) {
            return Err(Error::Invalid(format!(
                "the backup parallelism {} is not valid: 1 to {MAX_PARALLELISM} threads",
                config.parallelism
            )));
        }
        let here = target.describe();
        let object = match target.get(CONFIG_KEY)? {
            Some(bytes) => ConfigObject::parse(&bytes, &here)?,
            None => {
                // A repository whose config was lost is not made anew over its backups:
                // a new salt would orphan every encrypted chunk.
                if !target.list(MANIFESTS_PREFIX)?.is_empty() {
                    return Err(Error::Backend(format!(
                        "{here} holds backup manifests but no repository config object; put the config back \
                         (or move the manifests away) before using it"
                    )));
                }
                let made = new_config_object(&config);
                let json = serde_json::to_vec_pretty(&made).expect("a config serializes");
                if target.put_new(CONFIG_KEY, &json)? {
                    log::info!(
                        "made a backup repository at {here} ({} byte chunks, {})",
                        made.chunk_size,
                        if made.encryption.is_some() { "encrypted" } else { "not encrypted" }
                    );
                    made
                } else {
                    // Made by another process at the same moment: use its.
                    let bytes = target.get(CONFIG_KEY)?.ok_or_else(|| {
                        Error::Backend(format!("{here}: the repository config appeared and vanished again"))
                    })?;
                    ConfigObject::parse(&bytes, &here)?
                }
            }
        };
        let keys = match (&object.encryption, &config.encryption_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::Backend(format!(
                    "the backup repository at {here} is encrypted, and no backup encryption key is configured"
                )))
            }
            (None, Some(_)) => {
                return Err(Error::Backend(format!(
                    "the backup repository at {here} is not encrypted, but a backup encryption key is configured; \
                     use another target for encrypted backups"
                )))
            }
            (Some(enc), Some(key)) => Some(open_keys(enc, key, &here)?),
        };
        let chunk_size = object.chunk_size as usize;
        if chunk_size != config.chunk_size {
            log::info!(
                "the backup repository at {here} keeps its {chunk_size} byte chunks (configured: {})",
                config.chunk_size
            );
        }
        Ok(Repository {
            target,
            id: object.id.clone(),
            codec: Codec::new(keys),
            chunk_size,
            parallelism: config.parallelism,
            timing: LockTiming::default(),
        })
    }

    /// The repository's random id (its config object's, 32 hex digits): two targets
    /// that look alike (the same path on two machines) are one repository only when
    /// their ids are equal.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The target, described (`posix:/srv/backups`).
    pub fn describe(&self) -> String {
        self.target.describe()
    }

    /// Bytes per chunk in this repository.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Whether chunks and manifests are encrypted.
    pub fn encrypted(&self) -> bool {
        self.codec.encrypted()
    }

    /// The codec, for tests that build or break objects by hand.
    #[cfg(test)]
    pub(crate) fn codec_for_tests(&self) -> &Codec {
        &self.codec
    }

    /// Change the lock protocol's timings (tests; the defaults suit production).
    pub fn set_lock_timing(&mut self, timing: LockTiming) {
        self.timing = timing;
    }

    /// Make a backup: chunks first, the manifest last and atomically. Cancel -> Err, and
    /// no manifest. Streaming, parallel, bounded memory (about parallelism x chunk_size).
    ///
    /// Errors: `Invalid` for a bad id, `Conflict` when the backup exists already or a
    /// gc holds the repository for longer than the lock wait, `NotFound` when the
    /// parent has no manifest, `Backend` for a failed read or write, a lost lock, or
    /// cancel (`backup X was cancelled`).
    pub fn backup(&self, job: BackupJob<'_>) -> Result<BackupSummary> {
        let id = job.backup_id;
        check_backup_id(id)?;
        if let Some(parent) = job.parent {
            check_backup_id(parent)?;
            if parent == id {
                return Err(Error::Invalid(format!("backup {id} cannot be its own parent")));
            }
        }
        let key = manifest_key(id);
        if self.target.exists(&key)? {
            return Err(Error::Conflict(format!("backup {id} exists already in {}", self.describe())));
        }
        let started = Instant::now();
        let lock = RepoLock::shared(&self.target, self.timing, &format!("backup {id}"), Some(job.cancel))?;
        let parent = match job.parent {
            Some(p) => Some(self.load_manifest(p)?.ok_or_else(|| {
                Error::NotFound(format!("the parent backup {p} of backup {id} has no manifest in {}", self.describe()))
            })?),
            None => None,
        };
        let plan = Plan::new(self.chunk_size as u64, job.size, parent.as_ref(), job.changed);
        let outcome = self.run_backup(&job, &plan, parent.as_ref())?;

        if job.cancel.load(Ordering::Relaxed) {
            return Err(cancelled(id));
        }
        let summary = ManifestSummary {
            chunk_count: outcome.chunks.iter().flatten().count() as u64,
            new_chunks: outcome.new_chunks,
            bytes_read: outcome.bytes_read,
            bytes_stored: outcome.bytes_stored,
        };
        let manifest = Manifest {
            version: FORMAT_VERSION,
            backup_id: id.to_string(),
            parent: job.parent.map(str::to_string),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            size: job.size,
            chunk_size: self.chunk_size as u64,
            chunks: outcome.chunks,
            metadata: job.metadata,
            summary,
        };
        let json = serde_json::to_vec(&manifest).expect("a manifest serializes");
        let object = self.codec.encode_object(&key, &json);
        // The chunks' names are durable before the manifest's, and the manifest
        // before Ok.
        self.target.flush()?;
        lock.check()?;
        self.target.put(&key, &object)?;
        self.target.flush()?;
        if let Err(e) = lock.release() {
            log::warn!("backup {id}: {e}");
        }
        let secs = started.elapsed().as_secs_f64();
        log::info!(
            "backup {id}: {} bytes in {secs:.1} s ({:.0} MiB/s), {} read, {} new chunks, {} bytes stored in {}",
            manifest.size,
            manifest.size as f64 / secs.max(1e-9) / (1 << 20) as f64,
            manifest.summary.bytes_read,
            manifest.summary.new_chunks,
            manifest.summary.bytes_stored,
            self.describe()
        );
        Ok(BackupSummary::of(&manifest))
    }

    /// Steps 2–3 of a backup: every chunk's name, read and stored as needed.
    fn run_backup(&self, job: &BackupJob<'_>, plan: &Plan, parent: Option<&Manifest>) -> Result<BackupOutcome> {
        let id = job.backup_id;
        let cs = self.chunk_size;
        let run = Run::new(job.cancel);
        // Chunks known to be in the repository: the parent's (present while our lock
        // is held) and those found or stored by this backup.
        let known: Mutex<HashSet<ChunkName>> =
            Mutex::new(parent.map(|p| p.chunks.iter().flatten().copied().collect()).unwrap_or_default());
        advise_sequential(job.source);
        let mut outcome = BackupOutcome { chunks: vec![None; plan.count], ..Default::default() };
        let mut reporter = Reporter::new(job.progress, job.size);

        std::thread::scope(|s| {
            let (work_tx, work_rx) = bounded::<ReadChunk>(self.parallelism);
            let (done_tx, done_rx) = unbounded::<Done>();
            let (pool_tx, pool_rx) = bounded::<Vec<u8>>(self.parallelism + 1);
            for _ in 0..self.parallelism {
                let (work_rx, done_tx, pool_tx) = (work_rx.clone(), done_tx.clone(), pool_tx.clone());
                let (run, known) = (&run, &known);
                s.spawn(move || {
                    let mut enc = Encoder::new(cs);
                    for work in work_rx {
                        if !run.stopped() {
                            match self.store_chunk(run, known, &mut enc, &work.buf[..work.len]) {
                                Ok((name, stored)) => {
                                    let _ = done_tx.send(Done { index: work.index, name, stored, read: work.read });
                                }
                                Err(e) => run.fail(e),
                            }
                        }
                        let _ = pool_tx.send(work.buf);
                    }
                });
            }
            drop((work_rx, pool_tx));
            let reader_done = done_tx.clone();
            let run = &run;
            s.spawn(move || {
                if let Err(e) = self.read_chunks(job, plan, run, &work_tx, &reader_done, &pool_rx) {
                    run.fail(e);
                }
            });
            drop(done_tx);
            for done in done_rx {
                let range = plan.range(done.index);
                outcome.chunks[done.index] = done.name;
                outcome.bytes_read += done.read;
                if let Some(stored) = done.stored {
                    outcome.new_chunks += 1;
                    outcome.bytes_stored += stored;
                }
                reporter.add(range.end - range.start);
            }
        });
        run.result(id)?;
        reporter.finish();
        Ok(outcome)
    }

    /// The reader: walk the plan, read the chunks that need it into recycled buffers
    /// and queue them for the workers; settle the others at once.
    fn read_chunks(
        &self,
        job: &BackupJob<'_>,
        plan: &Plan,
        run: &Run,
        work: &Sender<ReadChunk>,
        done: &Sender<Done>,
        pool: &Receiver<Vec<u8>>,
    ) -> Result<()> {
        let mut holes = Holes::new(job.source);
        let mut buffers = 0;
        for index in 0..plan.count {
            if job.cancel.load(Ordering::Relaxed) {
                return Err(cancelled(job.backup_id));
            }
            if run.stopped() {
                return Ok(());
            }
            let range = plan.range(index);
            if let Some(name) = plan.reused(index) {
                let _ = done.send(Done { index, name, stored: None, read: 0 });
                continue;
            }
            if holes.is_hole(&range) {
                let _ = done.send(Done { index, name: None, stored: None, read: 0 });
                continue;
            }
            let mut buf = match pool.try_recv() {
                Ok(buf) => buf,
                Err(_) if buffers <= self.parallelism => {
                    buffers += 1;
                    vec![0u8; self.chunk_size]
                }
                Err(_) => match pool.recv() {
                    Ok(buf) => buf,
                    Err(_) => return Ok(()), // the workers are gone: they failed
                },
            };
            let len = (range.end - range.start) as usize;
            read_full(job.source, &mut buf[..len], range.start).map_err(|e| {
                Error::Backend(format!(
                    "backup {}: could not read the volume at byte {}: {e}",
                    job.backup_id, range.start
                ))
            })?;
            if work.send(ReadChunk { index, buf, len, read: len as u64 }).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A worker's step 3 for one chunk: its name, and the bytes stored when it was new.
    fn store_chunk(
        &self,
        run: &Run,
        known: &Mutex<HashSet<ChunkName>>,
        enc: &mut Encoder,
        data: &[u8],
    ) -> Result<(Option<ChunkName>, Option<u64>)> {
        if is_zero(data) {
            return Ok((None, None));
        }
        let name = self.codec.name(data);
        if known.lock().expect("known chunks").contains(&name) {
            return Ok((Some(name), None));
        }
        let key = name.key();
        let present = self.target.exists(&key)?;
        // Claim it, so that the same chunk in flight on another worker is stored once.
        if !known.lock().expect("known chunks").insert(name) || present {
            return Ok((Some(name), None));
        }
        if run.stopped() {
            return Err(Error::Backend("stopped".into())); // never the first error
        }
        let object = self
            .codec
            .encode_chunk(enc, &key, data)
            .map_err(|e| Error::internal(format!("compressing chunk {name}"), e))?;
        self.target.put(&key, object)?;
        Ok((Some(name), Some(object.len() as u64)))
    }

    /// Write a backup's data into `dest` (a volume opened read-write, at least `size`
    /// bytes), checking every chunk's hash; holes and zero chunks are written as zeroes
    /// (or skipped when `dest` is known to be zeroed: `dest_is_zeroed`).
    ///
    /// Errors: `NotFound` when there is no such backup, `Invalid` when `dest` is
    /// smaller than the backup, `Backend` naming the chunk when one is missing or
    /// corrupt (`backup X: chunk Y (number N, at byte B) is missing`), for a failed
    /// read or write, or cancel. `dest` is synced before Ok.
    pub fn restore(
        &self,
        backup_id: &str,
        dest: &File,
        dest_is_zeroed: bool,
        progress: &(dyn Fn(Progress) + Sync),
        cancel: &AtomicBool,
    ) -> Result<()> {
        check_backup_id(backup_id)?;
        let started = Instant::now();
        let lock =
            RepoLock::shared(&self.target, self.timing, &format!("restore of backup {backup_id}"), Some(cancel))?;
        let m = self.require_manifest(backup_id)?;
        let dest_len = file_len(dest).map_err(|e| {
            Error::Backend(format!("restore of backup {backup_id}: could not find the destination's size: {e}"))
        })?;
        if dest_len < m.size {
            return Err(Error::Invalid(format!(
                "the destination of the restore of backup {backup_id} has {dest_len} bytes, fewer than the backup's {}",
                m.size
            )));
        }
        let run = Run::new(cancel);
        let mut reporter = Reporter::new(progress, m.size);
        let mc = &m;
        std::thread::scope(|s| {
            let (work_tx, work_rx) = bounded::<usize>(self.parallelism);
            let (done_tx, done_rx) = unbounded::<u64>();
            for _ in 0..self.parallelism {
                let (work_rx, done_tx, run) = (work_rx.clone(), done_tx.clone(), &run);
                s.spawn(move || {
                    let mut dec = Decoder::new();
                    let mut buf = vec![0u8; mc.chunk_size as usize];
                    for index in work_rx {
                        if run.stopped() {
                            continue;
                        }
                        let range = mc.chunk_range(index);
                        let out = &mut buf[..(range.end - range.start) as usize];
                        let name = mc.chunks[index].expect("only named chunks are queued");
                        let written =
                            self.fetch_chunk(&mut dec, &name, out).map_err(|p| chunk_error(mc, index, &name, p));
                        let written = written.and_then(|res| res).and_then(|()| {
                            dest.write_all_at(out, range.start).map_err(|e| {
                                Error::Backend(format!(
                                    "restore of backup {backup_id}: could not write at byte {}: {e}",
                                    range.start
                                ))
                            })
                        });
                        match written {
                            Ok(()) => {
                                let _ = done_tx.send(range.end - range.start);
                            }
                            Err(e) => run.fail(e),
                        }
                    }
                });
            }
            drop(work_rx);
            let run = &run;
            s.spawn(move || {
                let zeros = if dest_is_zeroed { Vec::new() } else { vec![0u8; mc.chunk_size as usize] };
                for (index, entry) in mc.chunks.iter().enumerate() {
                    if cancel.load(Ordering::Relaxed) {
                        return run.fail(Error::Backend(format!("the restore of backup {backup_id} was cancelled")));
                    }
                    if run.stopped() {
                        return;
                    }
                    let range = mc.chunk_range(index);
                    if entry.is_some() {
                        if work_tx.send(index).is_err() {
                            return;
                        }
                        continue;
                    }
                    if !dest_is_zeroed {
                        if let Err(e) = zero_range(dest, range.clone(), &zeros) {
                            return run.fail(Error::Backend(format!(
                                "restore of backup {backup_id}: could not zero bytes {}..{}: {e}",
                                range.start, range.end
                            )));
                        }
                    }
                    let _ = done_tx.send(range.end - range.start);
                }
            });
            for n in done_rx {
                reporter.add(n);
            }
        });
        match run.error() {
            Some(e) => return Err(e),
            None if cancel.load(Ordering::Relaxed) => {
                return Err(Error::Backend(format!("the restore of backup {backup_id} was cancelled")))
            }
            None => {}
        }
        dest.sync_data().map_err(|e| {
            Error::Backend(format!("restore of backup {backup_id}: could not sync the destination: {e}"))
        })?;
        reporter.finish();
        drop(lock);
        let secs = started.elapsed().as_secs_f64();
        log::info!(
            "restored backup {backup_id}: {} bytes in {secs:.1} s ({:.0} MiB/s) from {}",
            m.size,
            m.size as f64 / secs.max(1e-9) / (1 << 20) as f64,
            self.describe()
        );
        Ok(())
    }

    /// Read and check a chunk into `out` (its exact length). The outer Err is what is
    /// wrong with the chunk; the inner one a failure to read it at all.
    fn fetch_chunk(
        &self,
        dec: &mut Decoder,
        name: &ChunkName,
        out: &mut [u8],
    ) -> std::result::Result<Result<()>, ChunkProblem> {
        let mut object = match self.target.get(&name.key()) {
            Ok(Some(object)) => object,
            Ok(None) => return Err(ChunkProblem::Missing),
            Err(e) => return Ok(Err(e)),
        };
        self.codec.decode_chunk(dec, name, &mut object, out)?;
        Ok(Ok(()))
    }

    /// A backup's summary and metadata, or None when there is no such manifest.
    pub fn manifest(&self, backup_id: &str) -> Result<Option<(BackupSummary, serde_json::Value)>> {
        Ok(self.load_manifest(backup_id)?.map(|m| (BackupSummary::of(&m), m.metadata)))
    }

    /// Remove a backup's manifest (its chunks go at the next gc). Missing is Ok.
    pub fn delete(&self, backup_id: &str) -> Result<()> {
        check_backup_id(backup_id)?;
        self.target.delete(&manifest_key(backup_id))?;
        // Durable before any gc deletes the chunks it named.
        self.target.flush()
    }

    /// Remove the chunks no manifest references, safely against backups running at the
    /// same time in this or another process (repository locks, as restic's).
    ///
    /// Errors: `Conflict` when a backup, restore or verify holds the repository (try
    /// later); `Backend` when a manifest cannot be read (then nothing is deleted: a
    /// chunk is removed only when every manifest is known) or a deletion fails.
    pub fn gc(&self) -> Result<GcReport> {
        let (lock, stale_locks_removed) = RepoLock::exclusive(&self.target, self.timing, "gc")?;
        let mut report = GcReport { stale_locks_removed, ..Default::default() };
        let mut referenced = HashSet::new();
        for (key, _) in self.target.list(MANIFESTS_PREFIX)? {
            let id = &key[MANIFESTS_PREFIX.len()..];
            if check_backup_id(id).is_err() {
                return Err(Error::Backend(format!(
                    "gc of {}: the object {key} is not a manifest; no chunk was deleted (move it away)",
                    self.describe()
                )));
            }
            let m = self.load_manifest(id).map_err(|e| Error::Backend(format!("gc: {e}; no chunk was deleted")))?;
            let Some(m) = m else { continue }; // deleted meanwhile
            referenced.extend(m.chunks.iter().flatten().copied());
            report.manifests += 1;
        }
        report.chunks_referenced = referenced.len() as u64;
        let mut garbage = Vec::new();
        for (key, _) in self.target.list(CHUNKS_PREFIX)? {
            if let Some(name) = ChunkName::from_key(&key) {
                report.chunks_found += 1;
                if !referenced.contains(&name) {
                    garbage.push(key);
                }
            }
        }
        let deleted = std::sync::atomic::AtomicU64::new(0);
        let run = Run::new(&NEVER);
        let per_thread = garbage.len().div_ceil(self.parallelism).max(1);
        std::thread::scope(|s| {
            for share in garbage.chunks(per_thread) {
                let (lock, run, deleted) = (&lock, &run, &deleted);
                s.spawn(move || {
                    for batch in share.chunks(256) {
                        if run.stopped() {
                            return;
                        }
                        if let Err(e) = lock.check() {
                            return run.fail(e);
                        }
                        for key in batch {
                            if let Err(e) = self.target.delete(key) {
                                return run.fail(e);
                            }
                            deleted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        report.chunks_deleted = deleted.load(Ordering::Relaxed);
        if let Some(e) = run.error() {
            return Err(e);
        }
        lock.release()?;
        log::info!(
            "gc of {}: {} manifests name {} chunks; deleted {} of {} chunks",
            self.describe(),
            report.manifests,
            report.chunks_referenced,
            report.chunks_deleted,
            report.chunks_found
        );
        Ok(report)
    }

    /// Re-read every chunk of a backup and check its hash: Ok(report) lists the bad or
    /// missing chunks (empty when the backup is intact).
    ///
    /// Errors: `NotFound` when there is no such backup; `Backend` when the manifest
    /// is corrupt or the target fails.
    pub fn verify(&self, backup_id: &str) -> Result<VerifyReport> {
        check_backup_id(backup_id)?;
        let never = AtomicBool::new(false);
        let lock = RepoLock::shared(&self.target, self.timing, &format!("verify of backup {backup_id}"), Some(&never))?;
        let m = self.require_manifest(backup_id)?;
        let mut seen = HashSet::new();
        let distinct: Vec<usize> =
            (0..m.chunks.len()).filter(|&i| m.chunks[i].is_some_and(|name| seen.insert(name))).collect();
        let run = Run::new(&never);
        let bad = Mutex::new(Vec::new());
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let (work_tx, work_rx) = bounded::<usize>(self.parallelism);
        std::thread::scope(|s| {
            for _ in 0..self.parallelism {
                let (work_rx, run, bad, bytes, m) = (work_rx.clone(), &run, &bad, &bytes, &m);
                s.spawn(move || {
                    let mut dec = Decoder::new();
                    let mut buf = vec![0u8; m.chunk_size as usize];
                    for index in work_rx {
                        if run.stopped() {
                            continue;
                        }
                        let range = m.chunk_range(index);
                        let name = m.chunks[index].expect("only named chunks are checked");
                        match self.fetch_chunk(&mut dec, &name, &mut buf[..(range.end - range.start) as usize]) {
                            Ok(Ok(())) => {
                                bytes.fetch_add(range.end - range.start, Ordering::Relaxed);
                            }
                            Ok(Err(e)) => run.fail(e),
                            Err(problem) => bad.lock().expect("bad chunks").push(BadChunk {
                                name: name.to_string(),
                                index: index as u64,
                                offset: range.start,
                                problem,
                            }),
                        }
                    }
                });
            }
            drop(work_rx);
            for &index in &distinct {
                if run.stopped() || work_tx.send(index).is_err() {
                    break;
                }
            }
            drop(work_tx);
        });
        if let Some(e) = run.error() {
            return Err(e);
        }
        drop(lock);
        let mut bad = bad.into_inner().expect("bad chunks");
        bad.sort_by_key(|b| b.index);
        for b in &bad {
            log::warn!(
                "verify of backup {backup_id}: {}",
                chunk_error(&m, b.index as usize, &b.name, b.problem.clone())
            );
        }
        Ok(VerifyReport {
            backup_id: backup_id.to_string(),
            chunks_checked: distinct.len() as u64,
            bytes_checked: bytes.into_inner(),
            bad,
        })
    }

    /// The manifest of `backup_id`, or None.
    fn load_manifest(&self, backup_id: &str) -> Result<Option<Manifest>> {
        check_backup_id(backup_id)?;
        let key = manifest_key(backup_id);
        let Some(object) = self.target.get(&key)? else { return Ok(None) };
        let what = format!("the manifest of backup {backup_id} in {}", self.describe());
        let json =
            self.codec.decode_object(&key, object).map_err(|e| Error::Backend(format!("{what} is corrupt: {e}")))?;
        Manifest::parse(&json, backup_id, &what).map(Some)
    }

    fn require_manifest(&self, backup_id: &str) -> Result<Manifest> {
        self.load_manifest(backup_id)?
            .ok_or_else(|| Error::NotFound(format!("backup {backup_id} has no manifest in {}", self.describe())))
    }
}

static NEVER: AtomicBool = AtomicBool::new(false);

/// A new repository's config object.
fn new_config_object(config: &RepoConfig) -> ConfigObject {
    let mut id = [0u8; 16];
    super::random_fill(&mut id);
    let encryption = config.encryption_key.map(|key| {
        let mut salt = [0u8; 32];
        super::random_fill(&mut salt);
        let keys = Keys::derive(&key, &salt);
        EncryptionObject {
            aead: AEAD_XCHACHA20_POLY1305.into(),
            kdf: KDF_HKDF_SHA256.into(),
            salt: to_hex(&salt),
            key_check: to_hex(&keys.seal(CONFIG_KEY.as_bytes(), KEY_CHECK_TEXT)),
        }
    });
    ConfigObject {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        id: to_hex(&id),
        chunk_size: config.chunk_size as u64,
        chunk_hash: if encryption.is_some() { HASH_HMAC_SHA256 } else { HASH_SHA256 }.into(),
        compression: COMPRESSION_ZSTD.into(),
        encryption,
    }
}

/// The keys of an encrypted repository, after checking that `key` is its key.
fn open_keys(enc: &EncryptionObject, key: &[u8; 32], here: &str) -> Result<Keys> {
    let salt = from_hex(&enc.salt).unwrap_or_default();
    let keys = Keys::derive(key, &salt);
    let mut check = from_hex(&enc.key_check).unwrap_or_default();
    match keys.open_in_place(CONFIG_KEY.as_bytes(), &mut check) {
        Ok(text) if text == KEY_CHECK_TEXT => Ok(keys),
        _ => Err(Error::Backend(format!(
            "the backup encryption key is not the key of the backup repository at {here} (wrong key)"
        ))),
    }
}

fn cancelled(backup_id: &str) -> Error {
    Error::Backend(format!("backup {backup_id} was cancelled"))
}

/// The error for a bad chunk met while restoring.
fn chunk_error(m: &Manifest, index: usize, name: &dyn std::fmt::Display, problem: ChunkProblem) -> Error {
    Error::Backend(format!(
        "backup {}: chunk {name} (number {index}, at byte {}) {problem}",
        m.backup_id,
        m.chunk_range(index).start
    ))
}

/// Which chunks of a backup are read and which come from the parent.
struct Plan {
    chunk_size: u64,
    size: u64,
    count: usize,
    /// Per chunk: Some(entry) when it is taken from the parent unread.
    reuse: Vec<Option<Option<ChunkName>>>,
}

impl Plan {
    fn new(chunk_size: u64, size: u64, parent: Option<&Manifest>, changed: Option<&[Range<u64>]>) -> Plan {
        let count = size.div_ceil(chunk_size) as usize;
        let mut reuse = Vec::new();
        if let (Some(parent), Some(changed)) = (parent, changed) {
            if parent.chunk_size == chunk_size {
                let changed = merge(changed);
                let mut next = 0;
                reuse = (0..count)
                    .map(|i| {
                        let start = i as u64 * chunk_size;
                        let end = (start + chunk_size).min(size);
                        while next < changed.len() && changed[next].end <= start {
                            next += 1;
                        }
                        let touched = next < changed.len() && changed[next].start < end;
                        // Same bytes in both: the parent's chunk covers exactly this range.
                        let same_range = i < parent.chunks.len() && parent.chunk_range(i) == (start..end);
                        (!touched && same_range).then(|| parent.chunks[i])
                    })
                    .collect();
            }
        }
        Plan { chunk_size, size, count, reuse }
    }

    fn range(&self, index: usize) -> Range<u64> {
        let start = index as u64 * self.chunk_size;
        start..(start + self.chunk_size).min(self.size)
    }

    fn reused(&self, index: usize) -> Option<Option<ChunkName>> {
        self.reuse.get(index).copied().flatten()
    }
}

/// Sorted, merged, non-empty ranges.
fn merge(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[derive(Default)]
struct BackupOutcome {
    chunks: Vec<Option<ChunkName>>,
    new_chunks: u64,
    bytes_read: u64,
    bytes_stored: u64,
}

/// A chunk read from the volume, on its way to a worker.
struct ReadChunk {
    index: usize,
    buf: Vec<u8>,
    len: usize,
    read: u64,
}

/// A chunk settled.
struct Done {
    index: usize,
    name: Option<ChunkName>,
    /// Bytes stored, when this backup stored it.
    stored: Option<u64>,
    /// Bytes read from the volume for it.
    read: u64,
}

/// The shared state of a parallel run: the first error stops everything.
struct Run<'a> {
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    cancel: &'a AtomicBool,
}

impl<'a> Run<'a> {
    fn new(cancel: &'a AtomicBool) -> Run<'a> {
        Run { failed: AtomicBool::new(false), error: Mutex::new(None), cancel }
    }

    fn fail(&self, e: Error) {
        let mut error = self.error.lock().expect("run error");
        if error.is_none() {
            *error = Some(e);
        }
        self.failed.store(true, Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed)
    }

    fn error(&self) -> Option<Error> {
        self.error.lock().expect("run error").take()
    }

    /// Err when it failed or was cancelled.
    fn result(&self, backup_id: &str) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(cancelled(backup_id));
        }
        self.error().map_or(Ok(()), Err)
    }
}

/// Calls the progress callback at least every 1% or every second, and at the end.
struct Reporter<'a> {
    callback: &'a (dyn Fn(Progress) + Sync),
    total: u64,
    done: u64,
    reported: Option<u64>,
    at: Instant,
}

impl<'a> Reporter<'a> {
    fn new(callback: &'a (dyn Fn(Progress) + Sync), total: u64) -> Reporter<'a> {
        Reporter { callback, total, done: 0, reported: None, at: Instant::now() }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        let since = self.done - self.reported.unwrap_or(0);
        if since >= self.total / 100 || self.at.elapsed() >= Duration::from_secs(1) {
            self.report();
        }
    }

    fn report(&mut self) {
        (self.callback)(Progress { bytes_done: self.done, bytes_total: self.total });
        self.reported = Some(self.done);
        self.at = Instant::now();
    }

    fn finish(&mut self) {
        if self.reported != Some(self.done) {
            self.report();
        }
    }
}

/// Finds holes in the source with `SEEK_DATA`, so that they are not read.
struct Holes<'f> {
    file: &'f File,
    /// The first data at or after the last offset asked (u64::MAX: none).
    next_data: Option<u64>,
    works: bool,
}

impl<'f> Holes<'f> {
    fn new(file: &'f File) -> Holes<'f> {
        Holes { file, next_data: None, works: true }
    }

    /// Whether `range` is all hole. Ranges must be asked in increasing order.
    fn is_hole(&mut self, range: &Range<u64>) -> bool {
        if !self.works {
            return false;
        }
        if self.next_data.is_none_or(|d| d < range.start) {
            self.next_data = match nix::unistd::lseek(self.file, range.start as i64, nix::unistd::Whence::SeekData) {
                Ok(offset) => Some(offset as u64),
                Err(nix::errno::Errno::ENXIO) => Some(u64::MAX),
                Err(_) => {
                    self.works = false;
                    return false;
                }
            };
        }
        self.next_data.is_some_and(|d| d >= range.end)
    }
}

/// Read `buf.len()` bytes at `offset`; past the end of the file reads as zeroes.
fn read_full(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset) {
            Ok(0) => {
                buf[filled..].fill(0);
                break;
            }
            Ok(n) => {
                filled += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `data` is all zeroes: slice equality is `memcmp` (vectorised by libc),
/// fast in debug builds too, where a byte loop would dominate a backup's time.
fn is_zero(data: &[u8]) -> bool {
    static ZEROS: [u8; 4096] = [0; 4096];
    data.chunks(4096).all(|block| block == &ZEROS[..block.len()])
}

fn advise_sequential(file: &File) {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    let _ = posix_fadvise(file, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
}

/// A file's or a block device's size.
fn file_len(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let end = nix::unistd::lseek(file, 0, nix::unistd::Whence::SeekEnd).map_err(io::Error::from)?;
    Ok(end as u64)
}

/// Make `range` of `dest` read as zeroes: punch it out (files: a hole; block devices:
/// a discard that zeroes), else write `zeros` over it.
fn zero_range(dest: &File, range: Range<u64>, zeros: &[u8]) -> io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    if fallocate(dest, flags, range.start as i64, (range.end - range.start) as i64).is_ok() {
        return Ok(());
    }
    let mut at = range.start;
    while at < range.end {
        let n = ((range.end - at) as usize).min(zeros.len());
        dest.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}
