//! Backup repository benchmark: `cargo bench --bench backup`.
//!
//! On a sparse volume file (1 GiB; `HEARTH_BENCH_BACKUP_GIB` changes it) of a quarter
//! holes, a quarter random data, a quarter compressible data and a quarter written
//! zeroes, in a directory on this machine's disk (`HEARTH_BENCH_BACKUP_DIR`, default
//! `target/bench-backup`), each with a cold page cache for the files it reads
//! (`posix_fadvise(DONTNEED)` after `fsync`):
//!
//! - a raw sequential read of the volume (4 MiB `pread`s) against a full backup to a
//!   posix repository, unencrypted and encrypted (target ≥ 0.8×);
//! - a second full backup of the same volume (everything deduplicated);
//! - an incremental after changing 1% of the chunks, with the changed ranges given
//!   (bytes read, time) and without them (read and hash everything);
//! - a restore into a new file against a raw sequential write of the same bytes
//!   (4 MiB `pwrite`s, then `fsync`);
//! - a second volume like the first but for 5% of its chunks, backed up alone into the
//!   same repository (deduplication);
//! - a verify of the full backup.
//!
//! Each comparison alternates its two sides for `HEARTH_BENCH_BACKUP_ROUNDS` rounds
//! (5) and reports the medians, as the machine may be shared. Figures are printed as a
//! Markdown table; nothing is asserted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use hearth::backup::{PosixTarget, Progress, RepoConfig, Repository, Target};

mod support;

use support::volume::{median, read_all, Content, Kind, CHUNK};

const MIB: u64 = 1 << 20;

fn main() {
    let gib: u64 = std::env::var("HEARTH_BENCH_BACKUP_GIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let dir = std::env::var_os("HEARTH_BENCH_BACKUP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-backup"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let size = gib << 30;
    let vol_path = dir.join("volume");
    let vol = make_volume(&vol_path, size);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mibs = |bytes: u64, secs: f64| bytes as f64 / MIB as f64 / secs;

    // Raw sequential reads and full backups, alternating, so that both meet the same
    // load on a shared machine; the median of the rounds, and of the per-round ratios.
    let rounds: usize = std::env::var("HEARTH_BENCH_BACKUP_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let (mut reads, mut plains, mut encs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        reads.push(raw_read(&vol_path, size));
        for (key, times) in [(None, &mut plains), (Some([9u8; 32]), &mut encs)] {
            let repo_dir = dir.join("repo-tmp");
            let _ = std::fs::remove_dir_all(&repo_dir);
            let repo = open(&repo_dir, key);
            cold(&vol_path);
            let t = Instant::now();
            backup(&repo, "full", &vol, None, None);
            times.push(t.elapsed().as_secs_f64());
            std::fs::remove_dir_all(&repo_dir).unwrap();
        }
    }
    let raw_read = median(&reads);
    rows.push(("raw sequential read of the volume (4 MiB reads)".into(), format!("{:.0} MiB/s", mibs(size, raw_read))));
    let full_plain = median(&plains);
    for (label, times) in [("unencrypted", &plains), ("encrypted", &encs)] {
        let ratios: Vec<f64> = reads.iter().zip(times.iter()).map(|(r, b)| r / b).collect();
        rows.push((
            format!("full backup to posix, {label}"),
            format!("{:.0} MiB/s ({:.2}× the raw read)", mibs(size, median(times)), median(&ratios)),
        ));
    }

    // One repository for the rest.
    let repo_dir = dir.join("repo");
    let repo = open(&repo_dir, None);
    cold(&vol_path);
    let full = backup(&repo, "full", &vol, None, None);
    rows.push((
        "full backup: bytes read / stored, chunks".into(),
        format!("{} MiB / {} MiB, {} chunks", full.bytes_read / MIB, full.bytes_stored / MIB, full.chunk_count),
    ));
    cold(&vol_path);
    let t = Instant::now();
    let again = backup(&repo, "again", &vol, None, None);
    rows.push((
        "second full backup of the same volume (all deduplicated)".into(),
        format!(
            "{:.2} s ({:.0} MiB/s), {} new chunks",
            t.elapsed().as_secs_f64(),
            mibs(size, t.elapsed().as_secs_f64()),
            again.new_chunks
        ),
    ));

    // Change 1% of the chunks (spread out), then incrementals.
    let chunks = size / CHUNK;
    let step = 100;
    let mut changed = Vec::new();
    for i in (1..chunks).step_by(step) {
        let at = i * CHUNK + 12345;
        vol.write_all_at(b"a change of a few bytes", at).unwrap();
        changed.push(at..at + 23);
    }
    vol.sync_all().unwrap();
    cold(&vol_path);
    let t = Instant::now();
    let inc = backup(&repo, "inc", &vol, Some("full"), Some(&changed));
    let inc_secs = t.elapsed().as_secs_f64();
    rows.push((
        format!("incremental after changing 1% of the chunks ({}), ranges given", changed.len()),
        format!(
            "{:.3} s ({:.3}× the full), {} MiB read ({:.2}% of the volume), {} new chunks",
            inc_secs,
            inc_secs / full_plain,
            inc.bytes_read / MIB,
            inc.bytes_read as f64 * 100.0 / size as f64,
            inc.new_chunks
        ),
    ));
    cold(&vol_path);
    let t = Instant::now();
    let inc2 = backup(&repo, "inc-read-all", &vol, Some("full"), None);
    rows.push((
        "the same incremental without ranges (read and hash all)".into(),
        format!(
            "{:.2} s, {} MiB read, {} new chunks",
            t.elapsed().as_secs_f64(),
            inc2.bytes_read / MIB,
            inc2.new_chunks
        ),
    ));

    // Deduplication: a second volume like the first but for 5% of its chunks.
    let other_path = dir.join("other-volume");
    let other = make_volume(&other_path, size);
    let mut differ = 0;
    for i in (1..chunks).step_by(20) {
        other.write_all_at(b"this volume differs here", i * CHUNK + 999).unwrap();
        differ += 1;
    }
    other.sync_all().unwrap();
    cold(&other_path);
    let second = backup(&repo, "other", &other, None, None);
    rows.push((
        format!("a second volume, {differ} of its chunks differing from the first's, backed up alone"),
        format!(
            "{} new chunks, {} MiB stored ({:.1}% of the first's {} MiB; both: {:.2}× deduplicated)",
            second.new_chunks,
            second.bytes_stored / MIB,
            second.bytes_stored as f64 * 100.0 / full.bytes_stored as f64,
            full.bytes_stored / MIB,
            (full.bytes_stored + full.bytes_stored) as f64 / (full.bytes_stored + second.bytes_stored) as f64
        ),
    ));
    drop(other);
    std::fs::remove_file(&other_path).unwrap();

    // Restores against raw sequential writes of the same bytes, alternating.
    let data = std::fs::read(&vol_path).unwrap();
    let (mut writes, mut restores) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let out = dir.join("raw-write");
        let f = OpenOptions::new().write(true).create(true).truncate(true).open(&out).unwrap();
        let t = Instant::now();
        for (i, block) in data.chunks(CHUNK as usize).enumerate() {
            f.write_all_at(block, i as u64 * CHUNK).unwrap();
        }
        f.sync_all().unwrap();
        writes.push(t.elapsed().as_secs_f64());
        std::fs::remove_file(&out).unwrap();

        let out = dir.join("restored");
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&out).unwrap();
        f.set_len(size).unwrap();
        cold_tree(&repo_dir);
        let t = Instant::now();
        repo.restore("inc", &f, true, &|_: Progress| {}, &AtomicBool::new(false)).unwrap();
        restores.push(t.elapsed().as_secs_f64());
        std::fs::remove_file(&out).unwrap();
    }
    drop(data);
    rows.push((
        "raw sequential write of the volume's bytes (4 MiB writes, fsync)".into(),
        format!("{:.0} MiB/s", mibs(size, median(&writes))),
    ));
    let ratios: Vec<f64> = writes.iter().zip(&restores).map(|(w, r)| w / r).collect();
    rows.push((
        "restore of the incremental into a new file".into(),
        format!("{:.0} MiB/s ({:.2}× the raw write)", mibs(size, median(&restores)), median(&ratios)),
    ));
    cold_tree(&repo_dir);
    let t = Instant::now();
    let report = repo.verify("full").unwrap();
    assert!(report.is_intact());
    rows.push((
        "verify of the full backup".into(),
        format!(
            "{:.2} s ({:.0} MiB/s of chunk data)",
            t.elapsed().as_secs_f64(),
            mibs(report.bytes_checked, t.elapsed().as_secs_f64())
        ),
    ));

    println!("\nbackup benchmark: a {gib} GiB sparse volume, 4 MiB chunks, 4 threads, in {}\n", dir.display());
    println!("| measure | result |\n|---|---|");
    for (m, r) in rows {
        println!("| {m} | {r} |");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn open(dir: &Path, key: Option<[u8; 32]>) -> Repository {
    let target: Arc<dyn Target> = Arc::new(PosixTarget::new(dir).unwrap());
    Repository::open(target, RepoConfig { encryption_key: key, ..RepoConfig::default() }).unwrap()
}

fn backup(
    repo: &Repository,
    id: &str,
    vol: &File,
    parent: Option<&str>,
    changed: Option<&[std::ops::Range<u64>]>,
) -> hearth::backup::BackupSummary {
    support::volume::backup(repo, id, vol, vol.metadata().unwrap().len(), parent, changed)
}

/// The volume: per 4 MiB chunk in turn a hole, random bytes, compressible text-like
/// bytes, written zeroes ([`Content`]).
fn make_volume(path: &Path, size: u64) -> File {
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).unwrap();
    f.set_len(size).unwrap();
    let mut content = Content::new();
    let mut buf = vec![0u8; CHUNK as usize];
    for (i, at) in (0..size).step_by(CHUNK as usize).enumerate() {
        let kind = Kind::of(i as u64);
        if kind == Kind::Hole {
            continue;
        }
        content.fill(kind, &mut buf);
        f.write_all_at(&buf, at).unwrap();
    }
    f.sync_all().unwrap();
    f
}

/// Drop a file's pages from the page cache.
fn cold(path: &Path) {
    let f = File::open(path).unwrap();
    f.sync_all().unwrap();
    let _ = nix::fcntl::posix_fadvise(&f, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// Drop every file's pages under `dir`.
fn cold_tree(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            cold_tree(&entry.path());
        } else {
            cold(&entry.path());
        }
    }
}

/// A raw sequential read of the volume with a cold cache (seconds).
fn raw_read(path: &Path, size: u64) -> f64 {
    cold(path);
    read_all(&File::open(path).unwrap(), size)
}
