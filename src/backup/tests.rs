//! Tests of the repository as its callers use it: backups, incrementals, restores,
//! verify, delete and gc on a posix target, with the failures they must survive.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::format::{ChunkName, CHUNKS_PREFIX, LOCKS_PREFIX, MANIFESTS_PREFIX};
use super::*;
use crate::error::Error;

const CS: usize = 64 * 1024;

/// A target that can fail or slow down on purpose, over a posix target.
struct Faulty {
    inner: PosixTarget,
    /// `put` of a key starting with this fails.
    fail_put: Mutex<Option<String>>,
    /// `put` of a chunk waits this long first.
    put_delay: Mutex<Duration>,
}

impl Faulty {
    fn new(dir: &Path) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: PosixTarget::new(dir).unwrap(),
            fail_put: Mutex::new(None),
            put_delay: Mutex::new(Duration::ZERO),
        })
    }
}

impl Target for Faulty {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn put(&self, key: &str, data: &[u8]) -> crate::error::Result<()> {
        if key.starts_with(CHUNKS_PREFIX) {
            std::thread::sleep(*self.put_delay.lock().unwrap());
        }
        if self.fail_put.lock().unwrap().as_deref().is_some_and(|p| key.starts_with(p)) {
            return Err(Error::Backend(format!("{}: injected failure writing {key}", self.describe())));
        }
        self.inner.put(key, data)
    }
    fn put_new(&self, key: &str, data: &[u8]) -> crate::error::Result<bool> {
        self.inner.put_new(key, data)
    }
    fn get(&self, key: &str) -> crate::error::Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn exists(&self, key: &str) -> crate::error::Result<bool> {
        self.inner.exists(key)
    }
    fn delete(&self, key: &str) -> crate::error::Result<()> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> crate::error::Result<Vec<(String, SystemTime)>> {
        self.inner.list(prefix)
    }
    fn flush(&self) -> crate::error::Result<()> {
        self.inner.flush()
    }
}

fn fast() -> LockTiming {
    LockTiming {
        refresh: Duration::from_millis(50),
        stale: Duration::from_secs(30),
        wait: Duration::from_secs(20),
        poll: Duration::from_millis(10),
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    target: Arc<Faulty>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let target = Faulty::new(&dir.path().join("repo"));
        Fixture { dir, target }
    }

    fn repo(&self) -> Repository {
        self.repo_with(None, 3)
    }

    fn repo_with(&self, key: Option<[u8; 32]>, parallelism: usize) -> Repository {
        let target: Arc<dyn Target> = self.target.clone();
        let mut repo =
            Repository::open(target, RepoConfig { chunk_size: CS, encryption_key: key, parallelism }).unwrap();
        repo.set_lock_timing(fast());
        repo
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self.target.list(prefix).unwrap().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        keys
    }
}

/// A sparse volume file of `size` bytes: random chunks, compressible chunks, written
/// zero chunks and holes, in a pattern by chunk number.
fn make_volume(path: &Path, size: u64, seed: u64) -> File {
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap();
    f.set_len(size).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = vec![0u8; CS];
    for (i, start) in (0..size).step_by(CS).enumerate() {
        let len = (size - start).min(CS as u64) as usize;
        match i % 5 {
            0 | 1 => rng.fill(&mut buf[..len]),
            2 => buf[..len].iter_mut().enumerate().for_each(|(j, b)| *b = (j % 7) as u8 + i as u8),
            3 => buf[..len].fill(0), // written zeroes
            _ => continue,           // a hole
        }
        f.write_all_at(&buf[..len], start).unwrap();
    }
    f
}

fn read_all(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn no_progress(_: Progress) {}

fn job<'a>(
    id: &'a str,
    source: &'a File,
    parent: Option<&'a str>,
    changed: Option<&'a [Range<u64>]>,
    cancel: &'a AtomicBool,
) -> BackupJob<'a> {
    BackupJob {
        backup_id: id,
        source,
        size: source.metadata().unwrap().len(),
        parent,
        changed,
        metadata: serde_json::json!({"backup": id, "volume_id": "v1"}),
        progress: &no_progress,
        cancel,
    }
}

fn backup(repo: &Repository, id: &str, source: &File, parent: Option<&str>) -> BackupSummary {
    let cancel = AtomicBool::new(false);
    repo.backup(job(id, source, parent, None, &cancel)).unwrap()
}

/// Restore `id` into a new file and return its bytes.
fn restore(fx: &Fixture, repo: &Repository, id: &str, size: u64) -> Vec<u8> {
    let path = fx.path(&format!("restored-{id}"));
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.set_len(size).unwrap();
    repo.restore(id, &f, true, &no_progress, &AtomicBool::new(false)).unwrap();
    read_all(&path)
}

fn backend_message<T: std::fmt::Debug>(r: crate::error::Result<T>) -> String {
    match r {
        Err(Error::Backend(msg)) => msg,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn a_full_backup_restores_the_same_bytes_and_stores_no_zeroes() {
    for key in [None, Some([42u8; 32])] {
        let fx = Fixture::new();
        let repo = fx.repo_with(key, 3);
        let size = 40 * CS as u64 + 1000; // not a whole number of chunks
        let vol = make_volume(&fx.path("vol"), size, 1);
        let progress = Mutex::new(Vec::new());
        let record = |p: Progress| progress.lock().unwrap().push(p);
        let cancel = AtomicBool::new(false);
        let summary = repo.backup(BackupJob { progress: &record, ..job("b1", &vol, None, None, &cancel) }).unwrap();

        // Chunks 0,1 (mod 5) random, 2 patterned, 3 zeroes, 4 holes; the last (40)
        // is random and short.
        assert_eq!(summary.size, size);
        assert_eq!(summary.chunk_count, 8 + 8 + 8 + 1);
        assert_eq!(summary.new_chunks, 25, "every non-zero chunk differs");
        assert_eq!(summary.bytes_read, size - 8 * CS as u64, "holes are not read");
        assert!(summary.bytes_stored < summary.bytes_read);
        assert_eq!(summary.parent, None);
        assert_eq!(fx.keys(CHUNKS_PREFIX).len(), 25);
        assert!(fx.keys(LOCKS_PREFIX).is_empty(), "the lock is released");

        let progress = progress.into_inner().unwrap();
        assert!(progress.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
        assert_eq!(progress.last(), Some(&Progress { bytes_done: size, bytes_total: size }));

        assert_eq!(restore(&fx, &repo, "b1", size), read_all(&fx.path("vol")));
        let (s, metadata) = repo.manifest("b1").unwrap().unwrap();
        assert_eq!(s, summary);
        assert_eq!(metadata, serde_json::json!({"backup": "b1", "volume_id": "v1"}));
        assert_eq!(repo.manifest("nope").unwrap(), None);

        let report = repo.verify("b1").unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.chunks_checked, 25);
        assert_eq!(report.bytes_checked, summary.bytes_read - 8 * CS as u64);
    }
}

#[test]
fn identical_chunks_are_stored_once_across_backups_and_volumes() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 20 * CS as u64;
    let a = make_volume(&fx.path("a"), size, 7);
    let b = make_volume(&fx.path("b"), size, 7); // the same content
    let first = backup(&repo, "a1", &a, None);
    let second = backup(&repo, "b1", &b, None);
    assert_eq!(second.new_chunks, 0);
    assert_eq!(second.bytes_stored, 0);
    assert_eq!(second.chunk_count, first.chunk_count);
    // The same chunk twice in one volume is stored once.
    let c = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(fx.path("c")).unwrap();
    let block = vec![9u8; CS];
    for i in 0..6 {
        c.write_all_at(&block, i * CS as u64).unwrap();
    }
    let third = backup(&repo, "c1", &c, None);
    assert_eq!((third.chunk_count, third.new_chunks), (6, 1));
    assert_eq!(restore(&fx, &repo, "c1", 6 * CS as u64), read_all(&fx.path("c")));
}

#[test]
fn an_incremental_with_changed_ranges_reads_only_them_and_restores_alone() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 100 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 3);
    let full = backup(&repo, "full", &vol, None);
    let at_full = read_all(&fx.path("vol"));

    // Change two small ranges: one inside chunk 10, one across chunks 54 (a hole) and 55.
    vol.write_all_at(b"changed!", 10 * CS as u64 + 5).unwrap();
    vol.write_all_at(&[0xee; 100], 55 * CS as u64 - 50).unwrap();
    let changed = [55 * CS as u64 - 50..55 * CS as u64 + 50, 10 * CS as u64 + 5..10 * CS as u64 + 13];
    let cancel = AtomicBool::new(false);
    let inc = repo.backup(job("inc", &vol, Some("full"), Some(&changed), &cancel)).unwrap();
    assert_eq!(inc.bytes_read, 3 * CS as u64, "only the three touched chunks are read");
    assert_eq!(inc.new_chunks, 3);
    assert_eq!(inc.parent.as_deref(), Some("full"));
    assert_eq!(inc.chunk_count, full.chunk_count + 1, "chunk 54 was a hole and holds data now");
    let at_inc = read_all(&fx.path("vol"));

    // The parent goes, its chunks are collected: the incremental still restores alone.
    repo.delete("full").unwrap();
    repo.delete("full").unwrap(); // missing is Ok
    let report = repo.gc().unwrap();
    assert_eq!(report.manifests, 1);
    assert_eq!(report.chunks_deleted, 2, "the two chunks only the full backup named");
    assert_eq!(restore(&fx, &repo, "inc", size), at_inc);
    assert_ne!(at_inc, at_full);
    assert!(repo.verify("inc").unwrap().is_intact());
}

#[test]
fn an_incremental_without_ranges_reads_everything_and_stores_only_new_chunks() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 30 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 5);
    let full = backup(&repo, "full", &vol, None);
    vol.write_all_at(&[1u8; 10], 7 * CS as u64).unwrap();
    let inc = backup(&repo, "inc", &vol, Some("full"));
    assert_eq!(inc.bytes_read, full.bytes_read);
    assert_eq!(inc.new_chunks, 1);
    assert_eq!(restore(&fx, &repo, "inc", size), read_all(&fx.path("vol")));
}

#[test]
fn an_incremental_of_a_grown_volume_reads_the_new_end() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 10 * CS as u64 + 100; // the parent's last chunk is short
    let vol = make_volume(&fx.path("vol"), size, 11);
    backup(&repo, "full", &vol, None);
    let grown = 13 * CS as u64;
    vol.set_len(grown).unwrap();
    vol.write_all_at(&[5u8; 64], 12 * CS as u64).unwrap();
    let cancel = AtomicBool::new(false);
    let written = 12 * CS as u64..12 * CS as u64 + 64;
    let changed = std::slice::from_ref(&written);
    let inc = repo.backup(BackupJob { size: grown, ..job("inc", &vol, Some("full"), Some(changed), &cancel) }).unwrap();
    // Chunk 10 (short in the parent, whole now) and 12 are read; 11 is a hole.
    assert_eq!(inc.bytes_read, 2 * CS as u64);
    assert_eq!(restore(&fx, &repo, "inc", grown), read_all(&fx.path("vol")));
    // And shrunk back: every chunk within the parent's size comes from it.
    let inc2 =
        repo.backup(BackupJob { size: 5 * CS as u64, ..job("inc2", &vol, Some("inc"), Some(&[]), &cancel) }).unwrap();
    assert_eq!(inc2.bytes_read, 0);
    assert_eq!(restore(&fx, &repo, "inc2", 5 * CS as u64), read_all(&fx.path("vol"))[..5 * CS].to_vec());
}

#[test]
fn restore_overwrites_a_used_destination_and_refuses_a_small_one() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 25 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 13);
    backup(&repo, "b", &vol, None);
    let dest_path = fx.path("dest");
    let dest = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&dest_path).unwrap();
    let junk = vec![0xabu8; size as usize + 4096];
    dest.write_all_at(&junk, 0).unwrap();
    let progress = Mutex::new(Vec::new());
    let record = |p: Progress| progress.lock().unwrap().push(p);
    repo.restore("b", &dest, false, &record, &AtomicBool::new(false)).unwrap();
    let restored = read_all(&dest_path);
    assert_eq!(&restored[..size as usize], &read_all(&fx.path("vol"))[..]);
    assert_eq!(&restored[size as usize..], &junk[size as usize..], "bytes past the backup are left alone");
    assert_eq!(progress.into_inner().unwrap().last(), Some(&Progress { bytes_done: size, bytes_total: size }));

    dest.set_len(size - 1).unwrap();
    assert!(matches!(repo.restore("b", &dest, false, &no_progress, &AtomicBool::new(false)), Err(Error::Invalid(_))));
    assert!(matches!(
        repo.restore("nope", &dest, false, &no_progress, &AtomicBool::new(false)),
        Err(Error::NotFound(_))
    ));
}

/// The chunk object of the first chunk a backup names.
fn first_chunk(fx: &Fixture, repo: &Repository, id: &str) -> (ChunkName, PathBuf) {
    let _ = repo;
    let m = fx.target.get(&format::manifest_key(id)).unwrap().unwrap();
    let m = repo.codec_for_tests().decode_object(&format::manifest_key(id), m).unwrap();
    let m: format::Manifest = serde_json::from_slice(&m).unwrap();
    let name = m.chunks.iter().flatten().next().copied().unwrap();
    (name, fx.path("repo").join(name.key()))
}

#[test]
fn a_corrupt_or_missing_chunk_is_caught_by_verify_and_by_restore() {
    for key in [None, Some([1u8; 32])] {
        let fx = Fixture::new();
        let repo = fx.repo_with(key, 2);
        let size = 10 * CS as u64;
        let vol = make_volume(&fx.path("vol"), size, 17);
        backup(&repo, "b", &vol, None);
        let (name, path) = first_chunk(&fx, &repo, "b");

        let mut object = std::fs::read(&path).unwrap();
        let at = object.len() / 2;
        object[at] ^= 0x01;
        std::fs::write(&path, &object).unwrap();
        let report = repo.verify("b").unwrap();
        assert_eq!(report.bad.len(), 1, "{report:?}");
        assert_eq!(report.bad[0].name, name.to_string());
        assert_eq!((report.bad[0].index, report.bad[0].offset), (0, 0));
        assert!(!matches!(report.bad[0].problem, ChunkProblem::Missing));
        let dest = File::create(fx.path("dest")).unwrap();
        dest.set_len(size).unwrap();
        let msg = backend_message(repo.restore("b", &dest, true, &no_progress, &AtomicBool::new(false)));
        assert!(msg.starts_with(&format!("backup b: chunk {name} (number 0, at byte 0) is corrupt")), "{msg}");

        std::fs::remove_file(&path).unwrap();
        let report = repo.verify("b").unwrap();
        assert_eq!(report.bad[0].problem, ChunkProblem::Missing);
        let msg = backend_message(repo.restore("b", &dest, true, &no_progress, &AtomicBool::new(false)));
        assert_eq!(msg, format!("backup b: chunk {name} (number 0, at byte 0) is missing"));
        assert!(fx.keys(LOCKS_PREFIX).is_empty());
    }
}

#[test]
fn a_chunk_moved_under_another_name_is_corrupt() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let vol = make_volume(&fx.path("vol"), 3 * CS as u64, 19);
    backup(&repo, "b", &vol, None);
    let chunks = fx.keys(CHUNKS_PREFIX);
    let root = fx.path("repo");
    std::fs::copy(root.join(&chunks[1]), root.join(&chunks[0])).unwrap();
    let report = repo.verify("b").unwrap();
    assert_eq!(report.bad.len(), 1);
    assert!(matches!(report.bad[0].problem, ChunkProblem::WrongHash(_)), "{report:?}");
}

#[test]
fn the_encryption_key_is_checked_at_open() {
    let fx = Fixture::new();
    let repo = fx.repo_with(Some([7; 32]), 2);
    assert!(repo.encrypted());
    let vol = make_volume(&fx.path("vol"), 5 * CS as u64, 23);
    backup(&repo, "b", &vol, None);
    let open = |key| {
        let target: Arc<dyn Target> = fx.target.clone();
        Repository::open(target, RepoConfig { chunk_size: CS, encryption_key: key, parallelism: 2 })
    };
    let msg = backend_message(open(Some([8; 32])));
    assert!(msg.contains("is not the key of the backup repository at posix:"), "{msg}");
    assert!(backend_message(open(None)).contains("is encrypted, and no backup encryption key is configured"));
    assert!(open(Some([7; 32])).is_ok());

    // Chunk names are keyed: the plain SHA-256 of a chunk is not in the repository,
    // and no object holds the plaintext.
    let mut chunk = vec![0u8; CS];
    vol.read_exact_at(&mut chunk, 0).unwrap();
    let plain_name = crypto::Namer::Sha256.name(&chunk);
    assert!(!fx.target.exists(&plain_name.key()).unwrap());
    for key in fx.keys("") {
        let object = fx.target.get(&key).unwrap().unwrap();
        assert!(!object.windows(64).any(|w| w == &chunk[..64]), "{key} holds plaintext");
    }
    // A plain repository refuses a key.
    let fx2 = Fixture::new();
    fx2.repo();
    let target: Arc<dyn Target> = fx2.target.clone();
    let msg = backend_message(Repository::open(
        target,
        RepoConfig { chunk_size: CS, encryption_key: Some([1; 32]), parallelism: 1 },
    ));
    assert!(msg.contains("is not encrypted, but a backup encryption key is configured"), "{msg}");
}

#[test]
fn a_newer_format_or_a_corrupt_config_is_refused_at_open() {
    let fx = Fixture::new();
    fx.repo();
    let config: serde_json::Value = serde_json::from_slice(&fx.target.get("config").unwrap().unwrap()).unwrap();
    assert_eq!(config["version"], 1);
    assert_eq!(config["chunk_size"], CS);
    let mut newer = config.clone();
    newer["version"] = 2.into();
    fx.target.put("config", &serde_json::to_vec(&newer).unwrap()).unwrap();
    let target: Arc<dyn Target> = fx.target.clone();
    let msg = backend_message(Repository::open(target.clone(), RepoConfig::default()));
    assert!(msg.contains("has format version 2; this hearth reads version 1 at most"), "{msg}");
    fx.target.put("config", b"\x00garbage").unwrap();
    assert!(backend_message(Repository::open(target.clone(), RepoConfig::default())).contains("is corrupt"));
    // A lost config is not made anew over existing backups.
    fx.target.put("manifests/b", b"x").unwrap();
    fx.target.delete("config").unwrap();
    let msg = backend_message(Repository::open(target, RepoConfig::default()));
    assert!(msg.contains("holds backup manifests but no repository config object"), "{msg}");
    assert!(!fx.target.exists("config").unwrap());
}

#[test]
fn an_existing_repository_keeps_its_chunk_size() {
    let fx = Fixture::new();
    fx.repo();
    let target: Arc<dyn Target> = fx.target.clone();
    let repo = Repository::open(target, RepoConfig::default()).unwrap();
    assert_eq!(repo.chunk_size(), CS);
    let bad = |c: RepoConfig| {
        let target: Arc<dyn Target> = fx.target.clone();
        matches!(Repository::open(target, c), Err(Error::Invalid(_)))
    };
    assert!(bad(RepoConfig { chunk_size: 1000, ..RepoConfig::default() }));
    assert!(bad(RepoConfig { parallelism: 0, ..RepoConfig::default() }));
}

#[test]
fn a_corrupt_or_newer_manifest_is_an_error_not_a_panic() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let vol = make_volume(&fx.path("vol"), 4 * CS as u64, 29);
    backup(&repo, "b", &vol, None);
    let key = format::manifest_key("b");
    let good = fx.target.get(&key).unwrap().unwrap();
    let json = repo.codec_for_tests().decode_object(&key, good.clone()).unwrap();
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    value["version"] = 9.into();
    let newer = repo.codec_for_tests().encode_object(&key, &serde_json::to_vec(&value).unwrap());
    fx.target.put(&key, &newer).unwrap();
    assert!(backend_message(repo.manifest("b")).contains("format version 9"));
    assert!(backend_message(repo.verify("b")).contains("format version 9"));
    assert!(backend_message(repo.gc()).contains("no chunk was deleted"));
    assert_eq!(fx.keys(CHUNKS_PREFIX).len(), 3, "gc deleted nothing");

    for bad in [&good[..good.len() / 2], &b""[..], &b"not zstd at all"[..]] {
        fx.target.put(&key, bad).unwrap();
        let msg = backend_message(repo.manifest("b"));
        assert!(msg.starts_with("the manifest of backup b in posix:") && msg.contains("is corrupt"), "{msg}");
        let dest = File::create(fx.path("d")).unwrap();
        dest.set_len(4 * CS as u64).unwrap();
        backend_message(repo.restore("b", &dest, true, &no_progress, &AtomicBool::new(false)));
    }
}

#[test]
fn ids_are_checked_and_a_backup_is_made_once() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let vol = make_volume(&fx.path("vol"), 2 * CS as u64, 31);
    let cancel = AtomicBool::new(false);
    assert!(matches!(repo.backup(job("../x", &vol, None, None, &cancel)), Err(Error::Invalid(_))));
    assert!(matches!(repo.backup(job("a", &vol, Some("a"), None, &cancel)), Err(Error::Invalid(_))));
    assert!(matches!(repo.backup(job("a", &vol, Some("none"), None, &cancel)), Err(Error::NotFound(_))));
    assert!(fx.keys(LOCKS_PREFIX).is_empty());
    backup(&repo, "a", &vol, None);
    assert!(matches!(repo.backup(job("a", &vol, None, None, &cancel)), Err(Error::Conflict(_))));
    assert!(matches!(repo.delete("a/../../x"), Err(Error::Invalid(_))));
    assert!(matches!(repo.verify("nope"), Err(Error::NotFound(_))));
}

#[test]
fn an_empty_volume_backs_up_and_restores() {
    let fx = Fixture::new();
    let repo = fx.repo();
    File::create(fx.path("empty")).unwrap();
    let vol = File::open(fx.path("empty")).unwrap();
    let s = backup(&repo, "e", &vol, None);
    assert_eq!((s.size, s.chunk_count, s.bytes_read), (0, 0, 0));
    assert!(restore(&fx, &repo, "e", 0).is_empty());
}

#[test]
fn cancel_leaves_no_manifest_and_gc_collects_its_chunks() {
    let fx = Fixture::new();
    let repo = fx.repo_with(None, 2);
    let size = 60 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 37);
    let cancel = AtomicBool::new(false);
    let stop_after_some = |p: Progress| {
        if p.bytes_done >= 10 * CS as u64 {
            cancel.store(true, Ordering::Relaxed);
        }
    };
    let r = repo.backup(BackupJob { progress: &stop_after_some, ..job("c", &vol, None, None, &cancel) });
    assert_eq!(backend_message(r), "backup c was cancelled");
    assert_eq!(repo.manifest("c").unwrap(), None);
    assert!(fx.keys(MANIFESTS_PREFIX).is_empty());
    let orphans = fx.keys(CHUNKS_PREFIX).len();
    assert!(orphans > 0 && orphans < 36, "some chunks were stored before the cancel: {orphans}");
    assert!(fx.keys(LOCKS_PREFIX).is_empty());
    let report = repo.gc().unwrap();
    assert_eq!(report.chunks_deleted, orphans as u64);
    assert!(fx.keys(CHUNKS_PREFIX).is_empty());

    // Cancelling a restore.
    backup(&repo, "d", &vol, None);
    let dest = File::create(fx.path("dest")).unwrap();
    dest.set_len(size).unwrap();
    let msg = backend_message(repo.restore("d", &dest, true, &no_progress, &AtomicBool::new(true)));
    assert!(msg.contains("was cancelled"), "{msg}");
}

#[test]
fn a_crash_between_the_chunks_and_the_manifest_leaves_only_garbage() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let size = 20 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 41);
    *fx.target.fail_put.lock().unwrap() = Some(MANIFESTS_PREFIX.to_string());
    let msg = backend_message(repo.backup(job("b", &vol, None, None, &AtomicBool::new(false))));
    assert!(msg.contains("injected failure writing manifests/b"), "{msg}");
    assert_eq!(repo.manifest("b").unwrap(), None);
    let orphans = fx.keys(CHUNKS_PREFIX).len();
    assert_eq!(orphans, 12);

    // The crash also left its lock behind: a process of this machine that is gone.
    let dead_lock = serde_json::json!({
        "kind": "shared", "purpose": "backup b", "host": nix::unistd::gethostname().unwrap().into_string().unwrap(),
        "boot_id": std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim(),
        "pid_ns": std::fs::read_link("/proc/self/ns/pid").unwrap().display().to_string(),
        "pid": std::process::id(), "start_time": 1, "created": 0, "refreshed": 0
    });
    fx.target.put("locks/0123456789abcdef0123456789abcdef", dead_lock.to_string().as_bytes()).unwrap();
    *fx.target.fail_put.lock().unwrap() = None;
    let report = repo.gc().unwrap();
    assert_eq!((report.chunks_deleted, report.stale_locks_removed), (orphans as u64, 1));

    // A backup made after it is whole.
    backup(&repo, "b", &vol, None);
    assert!(repo.verify("b").unwrap().is_intact());
    assert_eq!(restore(&fx, &repo, "b", size), read_all(&fx.path("vol")));
}

#[test]
fn a_failed_chunk_write_fails_the_backup() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let vol = make_volume(&fx.path("vol"), 20 * CS as u64, 43);
    *fx.target.fail_put.lock().unwrap() = Some(CHUNKS_PREFIX.to_string());
    let msg = backend_message(repo.backup(job("b", &vol, None, None, &AtomicBool::new(false))));
    assert!(msg.contains("injected failure writing chunks/"), "{msg}");
    assert!(fx.keys(MANIFESTS_PREFIX).is_empty());
    assert!(fx.keys(LOCKS_PREFIX).is_empty());
}

#[test]
fn gc_is_refused_while_a_backup_of_another_repository_runs() {
    let fx = Fixture::new();
    let backing_up = fx.repo();
    let collector = fx.repo(); // another Repository on the same target
    let size = 30 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 47);
    backup(&backing_up, "old", &vol, None);
    backing_up.delete("old").unwrap(); // its chunks are garbage now, but a backup may reuse them
    *fx.target.put_delay.lock().unwrap() = Duration::from_millis(30);
    let vol2 = make_volume(&fx.path("vol2"), size, 48);
    let started = AtomicBool::new(false);
    let refused = AtomicU64::new(0);
    std::thread::scope(|s| {
        let b = s.spawn(|| {
            let mark = |_: Progress| started.store(true, Ordering::Relaxed);
            let cancel = AtomicBool::new(false);
            backing_up.backup(BackupJob { progress: &mark, ..job("new", &vol2, None, None, &cancel) }).unwrap();
            // A backup of the old content, reusing the old chunks found in the repository.
            backing_up.backup(job("again", &vol, None, None, &cancel)).unwrap()
        });
        while !b.is_finished() {
            match collector.gc() {
                Err(Error::Conflict(msg)) => {
                    assert!(msg.contains("in use by a shared lock of backup"), "{msg}");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        b.join().unwrap();
    });
    assert!(refused.load(Ordering::Relaxed) > 0, "the gc met the running backup");
    *fx.target.put_delay.lock().unwrap() = Duration::ZERO;
    collector.gc().unwrap();
    for id in ["new", "again"] {
        assert!(collector.verify(id).unwrap().is_intact(), "{id}");
    }
    assert_eq!(restore(&fx, &collector, "again", size), read_all(&fx.path("vol")));
}

#[test]
fn backups_deletes_and_gcs_in_many_threads_leave_every_manifest_whole() {
    let fx = Fixture::new();
    let size = 12 * CS as u64;
    // A few volumes sharing content, so that backups reuse chunks gc wants to delete.
    let vols: Vec<File> = (0..3).map(|i| make_volume(&fx.path(&format!("v{i}")), size, 100 + i % 2)).collect();
    let repos: Vec<Repository> = (0..3).map(|_| fx.repo_with(None, 2)).collect();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for (t, (repo, vol)) in repos.iter().zip(&vols).enumerate() {
            let stop = &stop;
            s.spawn(move || {
                let cancel = AtomicBool::new(false);
                for round in 0..6 {
                    let id = format!("t{t}-r{round}");
                    // Change one chunk a round, so each round has new and reused chunks.
                    vol.write_all_at(&[round as u8 + 1; 16], (round % 12) as u64 * CS as u64).unwrap();
                    let parent = (round > 0).then(|| format!("t{t}-r{}", round - 1));
                    repo.backup(job(&id, vol, parent.as_deref(), None, &cancel)).unwrap();
                    if round > 0 && round % 2 == 0 {
                        repo.delete(parent.as_deref().unwrap()).unwrap();
                    }
                }
                stop.store(true, Ordering::Relaxed);
            });
        }
        let collector = fx.repo();
        let stop = &stop;
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = collector.gc();
                std::thread::sleep(Duration::from_millis(3));
            }
        });
    });
    let repo = fx.repo();
    repo.gc().unwrap();
    let manifests = fx.keys(MANIFESTS_PREFIX);
    assert_eq!(manifests.len(), 3 * 4);
    for key in manifests {
        let id = &key[MANIFESTS_PREFIX.len()..];
        let report = repo.verify(id).unwrap();
        assert!(report.is_intact(), "{id}: {report:?}");
    }
    for t in 0..3 {
        assert_eq!(restore(&fx, &repo, &format!("t{t}-r5"), size), read_all(&fx.path(&format!("v{t}"))));
    }
}

#[test]
fn a_backup_waits_for_a_running_gc() {
    let fx = Fixture::new();
    let repo = fx.repo();
    let vol = make_volume(&fx.path("vol"), 4 * CS as u64, 53);
    // A gc holds the exclusive lock (taken directly, as a gc in another process would).
    let target: Arc<dyn Target> = fx.target.clone();
    let (gc, _) = lock::RepoLock::exclusive(&target, fast(), "gc").unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let b = s.spawn(|| {
            let r = backup(&repo, "b", &vol, None);
            done.store(true, Ordering::Relaxed);
            r
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!done.load(Ordering::Relaxed), "the backup waits for the gc");
        assert!(fx.keys(CHUNKS_PREFIX).is_empty());
        gc.release().unwrap();
        b.join().unwrap();
    });
    assert!(repo.verify("b").unwrap().is_intact());
}

#[test]
fn parallelism_one_works_and_objects_are_plain_zstd_without_encryption() {
    let fx = Fixture::new();
    let repo = fx.repo_with(None, 1);
    let size = 7 * CS as u64;
    let vol = make_volume(&fx.path("vol"), size, 59);
    backup(&repo, "b", &vol, None);
    assert_eq!(restore(&fx, &repo, "b", size), read_all(&fx.path("vol")));
    // By hand: the manifest and chunks are zstd frames; the chunk's SHA-256 is its name.
    let manifest = zstd::decode_all(&fx.target.get("manifests/b").unwrap().unwrap()[..]).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let first = manifest["chunks"][0].as_str().unwrap();
    let chunk =
        zstd::decode_all(&fx.target.get(&format!("chunks/{}/{first}", &first[..2])).unwrap().unwrap()[..]).unwrap();
    use sha2::Digest;
    assert_eq!(format::to_hex(&sha2::Sha256::digest(&chunk)), first);
    assert_eq!(&chunk[..], &read_all(&fx.path("vol"))[..CS]);
}

#[test]
fn a_repository_is_shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Repository>();
    send_sync::<PosixTarget>();
    send_sync::<Arc<dyn Target>>();
}

/// The child of [`a_killed_backup_leaves_only_garbage`]: a slow backup, killed midway.
#[test]
#[ignore = "run in a child process by a_killed_backup_leaves_only_garbage"]
fn child_backup_to_be_killed() {
    let Some(dir) = std::env::var_os("HEARTH_TEST_KILL_DIR") else { return };
    let dir = PathBuf::from(dir);
    let target = Faulty::new(&dir.join("repo"));
    *target.put_delay.lock().unwrap() = Duration::from_millis(50);
    let target: Arc<dyn Target> = target;
    let repo = Repository::open(target, RepoConfig { chunk_size: CS, encryption_key: None, parallelism: 2 }).unwrap();
    let vol = File::open(dir.join("vol")).unwrap();
    backup(&repo, "killed", &vol, None);
    panic!("the backup was to be killed before it finished");
}

#[test]
fn a_killed_backup_leaves_only_garbage() {
    let fx = Fixture::new();
    let size = 60 * CS as u64;
    make_volume(&fx.path("vol"), size, 61);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "backup::tests::child_backup_to_be_killed", "--ignored", "--test-threads=1"])
        .env("HEARTH_TEST_KILL_DIR", fx.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let chunks = || fx.target.list(CHUNKS_PREFIX).map(|l| l.len()).unwrap_or(0);
    while chunks() < 5 {
        assert!(std::time::Instant::now() < deadline, "the child stored no chunks");
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let orphans = chunks();
    assert!((5..36).contains(&orphans), "{orphans}");
    assert!(fx.keys(MANIFESTS_PREFIX).is_empty(), "no manifest after a kill");
    assert_eq!(fx.keys(LOCKS_PREFIX).len(), 1, "the dead backup's lock is left");
    let repo = fx.repo();
    assert_eq!(repo.manifest("killed").unwrap(), None);
    // Its holder is gone (same machine, no such process): stale at once.
    let report = repo.gc().unwrap();
    assert_eq!((report.chunks_deleted, report.stale_locks_removed), (orphans as u64, 1));
    assert!(fx.keys(LOCKS_PREFIX).is_empty());
    let vol = File::open(fx.path("vol")).unwrap();
    backup(&repo, "killed", &vol, None);
    assert!(repo.verify("killed").unwrap().is_intact());
    assert_eq!(restore(&fx, &repo, "killed", size), read_all(&fx.path("vol")));
}
