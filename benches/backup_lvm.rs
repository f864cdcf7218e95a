//! Backup benchmark on real LVM, run inside the VM tier's guest: `cargo bench --bench
//! backup_lvm --no-run` on the host, then `vm-tests/run.sh --disk-size 24G --timeout
//! 5400 -- vm-tests/guest/backup-bench.sh target/release/deps/backup_lvm-<hash>` (the
//! script's header shows how to add the S3 part).
//!
//! In volume group `$HEARTH_BENCH_VG` it makes a thick LV, a thin pool named as
//! hearth's (`hearth-thinpool`) with two thin LVs, a thick LV to restore into and an
//! ext4 file system on a thick LV for the posix repository. The volumes are
//! `HEARTH_BENCH_BACKUP_GIB` GiB (default 2) of the content `benches/backup.rs` uses
//! (per 4 MiB chunk in turn unmapped, random, compressible text, written zeroes); the
//! second thin LV is the first but for 5% of its chunks. Then, with hearth's library
//! (`hearth::backup`, 4 MiB chunks, 4 threads, unencrypted) and every cache dropped
//! before each timed read (`sync; echo 3 > /proc/sys/vm/drop_caches`):
//!
//! - the engine's ceiling in the guest: a full backup and a restore of 256 MiB of the
//!   same content from a tmpfs into a repository on a tmpfs (no disk at all);
//! - a raw sequential read (4 MiB `pread`s) of the thick LV and of a thin snapshot of
//!   the thin LV, against a full backup of the same LV to a fresh posix repository
//!   (target ≥ 0.8×);
//! - incrementals of the thin LV with their parent's changed ranges from
//!   `LvmBackend::thin_changed_ranges` (`thin_delta` between the full's thin snapshot
//!   and a new one): after rewriting 1% of the volume as whole 4 MiB chunks (target:
//!   at most 3% of the volume read), against the same incremental without ranges
//!   (read and hash all); and after rewriting 1% of the volume as scattered pool blocks
//!   (the pool's chunk size, 64 KiB), which touches about half the 4 MiB chunks;
//! - the second thin LV backed up alone into the same repository (deduplication);
//! - a restore into a thick LV, and into a new thin LV, against a raw sequential
//!   write (4 MiB `pwrite`s, then `fsync`) of the same kinds of bytes to the same LV;
//! - with `HEARTH_BENCH_S3_ENDPOINT` (and `_ACCESS_KEY`, `_SECRET_KEY`, `_BUCKET`,
//!   `_REGION`) set: a full backup of the thin snapshot to an `S3Target` on a fresh
//!   bucket, against a plain client PUTting the volume's 4 MiB pieces, and the objects
//!   the backup stored, to the same store (see [`Plain`]).
//!
//! Each comparison alternates its two sides for `HEARTH_BENCH_BACKUP_ROUNDS` rounds
//! (default 3) and reports the medians, of the times and of the per-round ratios, and
//! how many of the guest's CPUs were busy meanwhile (all of its work, kernel included:
//! under emulation the CPU is what runs out first). Figures are printed as a Markdown
//! table. Without `HEARTH_BENCH_VG` it says so and does nothing; nothing is asserted.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth::backend::lvm::LvmBackend;
use hearth::backup::{PosixTarget, Progress, RepoConfig, Repository, S3Settings, S3Target, Target};
use rusty_s3::S3Action;

mod support;

use support::volume::{backup, median, read_all, Content, Kind, CHUNK};

const MIB: u64 = 1 << 20;
/// hearth's thin pool (`hearth::names::LVM_THIN_POOL`): `thin_changed_ranges` only
/// compares thin LVs of that pool.
const POOL: &str = hearth::names::LVM_THIN_POOL;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Run a command (argv), panicking with its stderr when it fails; its stdout.
fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Write back every dirty page, then drop the page cache (the guest runs as root).
fn cold() {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").expect("dropping the page cache (needs root)");
}

/// The LVs of the benchmark's volume group.
struct Lvm {
    vg: String,
}

impl Lvm {
    fn dev(&self, lv: &str) -> PathBuf {
        PathBuf::from("/dev").join(&self.vg).join(lv)
    }

    fn full(&self, lv: &str) -> String {
        format!("{}/{lv}", self.vg)
    }

    fn thick(&self, lv: &str, size: u64) {
        sh(&["lvcreate", "--yes", "-Wy", "-L", &format!("{size}b"), "-n", lv, &self.vg]);
    }

    fn pool(&self, size: u64) {
        sh(&["lvcreate", "--yes", "--type", "thin-pool", "-L", &format!("{size}b"), "-n", POOL, &self.vg]);
    }

    fn thin(&self, lv: &str, size: u64) {
        sh(&["lvcreate", "--yes", "-Wy", "-V", &format!("{size}b"), "--thinpool", POOL, "-n", lv, &self.vg]);
    }

    /// A thin snapshot, activated (LVM sets "activation skip" on thin snapshots), as
    /// hearth makes them.
    fn snapshot(&self, origin: &str, lv: &str) {
        sh(&["lvcreate", "--yes", "-s", "-n", lv, &self.full(origin)]);
        sh(&["lvchange", "--yes", "--setactivationskip", "n", "-ay", &self.full(lv)]);
    }

    fn remove(&self, lv: &str) {
        // "in use" right after a close is udev still probing: settle and retry.
        for attempt in 1.. {
            let _ = Command::new("udevadm").arg("settle").status();
            let out = Command::new("lvremove").args(["--yes", "-f", &self.full(lv)]).output().unwrap();
            if out.status.success() {
                return;
            }
            assert!(attempt < 5, "lvremove {lv}: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A field of one LV's `lvs` report, in bytes where it is a size.
    fn field(&self, lv: &str, field: &str) -> String {
        let out = sh(&["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", field, &self.full(lv)]);
        out.trim().to_string()
    }
}

fn open_rw(path: &Path) -> File {
    OpenOptions::new().read(true).write(true).open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn open_ro(path: &Path) -> File {
    File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn posix_repo(dir: &Path) -> Repository {
    let target: Arc<dyn Target> = Arc::new(PosixTarget::new(dir).unwrap());
    Repository::open(target, RepoConfig::default()).unwrap()
}

/// Time `f` (seconds).
fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The guest's CPUs during timed steps, system-wide from `/proc/stat`, so that the
/// kernel's work (device-mapper, the file system, virtio) counts as well as the
/// benchmark's threads: how many were busy, and how many idle waiting for I/O.
#[derive(Default)]
struct Busy(RefCell<Vec<(f64, f64)>>);

impl Busy {
    /// Time `f` (seconds), recording the CPUs busy and waiting meanwhile.
    fn time(&self, f: impl FnOnce()) -> f64 {
        let before = cpu_secs();
        let s = secs(f);
        let after = cpu_secs();
        self.0.borrow_mut().push(((after.0 - before.0) / s, (after.1 - before.1) / s));
        s
    }

    /// "CPUs of N: B busy, W waiting for I/O", the medians of the steps timed.
    fn show(&self, ncpu: usize) -> String {
        let steps = self.0.borrow();
        let busy = median(&steps.iter().map(|s| s.0).collect::<Vec<_>>());
        let wait = median(&steps.iter().map(|s| s.1).collect::<Vec<_>>());
        format!("CPUs of {ncpu}: {busy:.1} busy, {wait:.1} waiting for I/O")
    }
}

/// CPU seconds of all CPUs since boot, from the first line of `/proc/stat` (USER_HZ:
/// 100 a second): (busy: user, nice, system, irq, softirq, steal; iowait).
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let f: Vec<u64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|v| v.parse().unwrap()).collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().map(|&i| f[i]).sum();
    (busy as f64 / 100.0, f[4] as f64 / 100.0)
}

fn mibs(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

/// Run two measures `rounds` times, alternating which goes first; their times.
fn alternate(rounds: usize, mut a: impl FnMut(usize) -> f64, mut b: impl FnMut(usize) -> f64) -> (Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        if r % 2 == 0 {
            xs.push(a(r));
            ys.push(b(r));
        } else {
            ys.push(b(r));
            xs.push(a(r));
        }
    }
    (xs, ys)
}

/// The median of the per-round ratios `xs[i] / ys[i]`.
fn ratio(xs: &[f64], ys: &[f64]) -> f64 {
    median(&xs.iter().zip(ys).map(|(x, y)| x / y).collect::<Vec<_>>())
}

fn range_bytes(ranges: &[std::ops::Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// A raw sequential write of the test volume's kinds of bytes into `dest`: per 4 MiB
/// chunk a random, a text or a zero buffer as [`Kind::of`] says (a hole is written as
/// zeroes, as a plain copy would), then `fsync`.
fn raw_write(dest: &File, size: u64, random: &[u8], text: &[u8]) {
    let zeroes = vec![0u8; CHUNK as usize];
    for (i, at) in (0..size).step_by(CHUNK as usize).enumerate() {
        let buf = match Kind::of(i as u64) {
            Kind::Random => random,
            Kind::Text => text,
            Kind::Hole | Kind::Zeroes => &zeroes,
        };
        dest.write_all_at(&buf[..((size - at) as usize).min(buf.len())], at).unwrap();
    }
    dest.sync_all().unwrap();
}

struct Row {
    measure: String,
    result: String,
    target: String,
}

fn main() {
    let Ok(vg) = std::env::var("HEARTH_BENCH_VG") else {
        println!(
            "backup_lvm benchmark not run: HEARTH_BENCH_VG is not set (run it in the VM tier's guest: \
             vm-tests/guest/backup-bench.sh)"
        );
        return;
    };
    let gib = env_num("HEARTH_BENCH_BACKUP_GIB", 2);
    let rounds = env_num("HEARTH_BENCH_BACKUP_ROUNDS", 3) as usize;
    let size = gib << 30;
    let chunks = size / CHUNK;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lvm = Lvm { vg: vg.clone() };
    let mut rows: Vec<Row> = Vec::new();
    let mut row = |measure: String, result: String, target: &str| {
        println!("  {measure}: {result}");
        rows.push(Row { measure, result, target: target.to_string() })
    };
    let started = Instant::now();
    let step = |what: &str| println!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());

    // --- the LVs ------------------------------------------------------------------
    step("making the LVs");
    let _ = Command::new("lvremove").args(["--yes", "-f", &vg]).output();
    lvm.thick("bench-thick", size);
    lvm.thick("bench-restore", size);
    // Three thin volumes' worth (the origin, the second volume, a restore) and the
    // changes kept by the snapshots.
    lvm.pool(3 * size + (1 << 30));
    lvm.thin("bench-thin", size);
    lvm.thin("bench-other", size);
    lvm.thick("bench-repo", (2 * size).max(2 << 30));
    let pool_block: u64 = lvm.field(POOL, "chunk_size").parse().unwrap();
    sh(&[
        "mkfs.ext4",
        "-q",
        "-F",
        // No lazy initialisation: it would write in the background during the runs.
        "-E",
        "lazy_itable_init=0,lazy_journal_init=0",
        &lvm.dev("bench-repo").display().to_string(),
    ]);
    let mnt = tempfile::tempdir().unwrap();
    sh(&["mount", &lvm.dev("bench-repo").display().to_string(), &mnt.path().display().to_string()]);
    let lvm_version = sh(&["lvm", "version"]).lines().next().unwrap_or("").trim().to_string();

    // --- the content, written once to the thick LV and both thin LVs ----------------
    step("writing the volumes");
    let fill = secs(|| {
        let (thick, thin, other) =
            (open_rw(&lvm.dev("bench-thick")), open_rw(&lvm.dev("bench-thin")), open_rw(&lvm.dev("bench-other")));
        let mut content = Content::new();
        let mut buf = vec![0u8; CHUNK as usize];
        for i in 0..chunks {
            let kind = Kind::of(i);
            if kind == Kind::Hole {
                continue;
            }
            content.fill(kind, &mut buf);
            thick.write_all_at(&buf, i * CHUNK).unwrap();
            thin.write_all_at(&buf, i * CHUNK).unwrap();
            // As benches/backup.rs's second volume: 5% of the chunks differ.
            if i % 20 == 1 {
                buf[999..999 + 24].copy_from_slice(b"this volume differs here");
            }
            other.write_all_at(&buf, i * CHUNK).unwrap();
        }
        for f in [thick, thin, other] {
            f.sync_all().unwrap();
        }
    });
    lvm.snapshot("bench-thin", "snap-a");
    println!("{gib} GiB volumes written in {fill:.1} s; {lvm_version}; thin pool block {} KiB", pool_block / 1024);

    // --- the engine's own ceiling in this guest: memory to memory ------------------
    step("backups and restores in memory (tmpfs)");
    let mem = tempfile::tempdir().unwrap();
    sh(&["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", &mem.path().display().to_string()]);
    let sample_size = (256 * MIB).min(size);
    {
        let sample_path = mem.path().join("sample");
        let sample = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&sample_path).unwrap();
        sample.set_len(sample_size).unwrap();
        let mut content = Content::new();
        let mut buf = vec![0u8; CHUNK as usize];
        for i in 0..sample_size / CHUNK {
            if Kind::of(i) != Kind::Hole {
                content.fill(Kind::of(i), &mut buf);
                sample.write_all_at(&buf, i * CHUNK).unwrap();
            }
        }
        let (busy_b, busy_r) = (Busy::default(), Busy::default());
        let (backups, restores) = alternate(
            rounds,
            |_| {
                let repo = posix_repo(&mem.path().join("repo"));
                let s = busy_b.time(|| {
                    backup(&repo, "full", &sample, sample_size, None, None);
                });
                std::fs::remove_dir_all(mem.path().join("repo")).unwrap();
                s
            },
            |_| {
                let repo = posix_repo(&mem.path().join("repo-r"));
                if repo.manifest("full").unwrap().is_none() {
                    backup(&repo, "full", &sample, sample_size, None, None);
                }
                let out = mem.path().join("restored");
                let dest = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&out).unwrap();
                dest.set_len(sample_size).unwrap();
                let s =
                    busy_r.time(|| repo.restore("full", &dest, true, &|_: Progress| {}, &Default::default()).unwrap());
                std::fs::remove_file(&out).unwrap();
                s
            },
        );
        row(
            format!("ceiling: full backup of {} MiB of the same content, from tmpfs to tmpfs", sample_size / MIB),
            format!("{:.0} MiB/s; {}", mibs(sample_size, median(&backups)), busy_b.show(ncpu)),
            "",
        );
        row(
            "ceiling: its restore, from tmpfs to tmpfs".into(),
            format!("{:.0} MiB/s; {}", mibs(sample_size, median(&restores)), busy_r.show(ncpu)),
            "",
        );
    }
    sh(&["umount", &mem.path().display().to_string()]);

    // --- full backups against raw reads -------------------------------------------
    // Each round does both LVs, so that a busier spell of the host meets both.
    step("full backups of the thick LV and of a thin snapshot against raw reads");
    let repo_dir = mnt.path().join("repo");
    struct Side {
        label: &'static str,
        src: File,
        reads: Vec<f64>,
        fulls: Vec<f64>,
        busy_read: Busy,
        busy_full: Busy,
        summary: Option<hearth::backup::BackupSummary>,
    }
    let mut sides: Vec<Side> = [("the thick LV", "bench-thick"), ("a thin snapshot", "snap-a")]
        .into_iter()
        .map(|(label, lv)| Side {
            label,
            src: open_ro(&lvm.dev(lv)),
            reads: Vec::new(),
            fulls: Vec::new(),
            busy_read: Busy::default(),
            busy_full: Busy::default(),
            summary: None,
        })
        .collect();
    let last = sides.len() - 1;
    for r in 0..rounds {
        for (i, side) in sides.iter_mut().enumerate() {
            // The thin snapshot's last full stays: the repository for what follows.
            let keep = i == last && r + 1 == rounds;
            let read = |side: &mut Side| {
                cold();
                let mut s = 0.0;
                side.busy_read.time(|| s = read_all(&side.src, size));
                side.reads.push(s);
            };
            let full = |side: &mut Side| {
                let dir = if keep { repo_dir.clone() } else { mnt.path().join("repo-tmp") };
                let _ = std::fs::remove_dir_all(&dir);
                let repo = posix_repo(&dir);
                cold();
                let mut summary = None;
                let s = side.busy_full.time(|| summary = Some(backup(&repo, "full", &side.src, size, None, None)));
                side.summary = summary;
                side.fulls.push(s);
                if !keep {
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            };
            // Alternate which goes first.
            if r % 2 == 0 {
                read(side);
                full(side);
            } else {
                full(side);
                read(side);
            }
        }
    }
    for side in &sides {
        let summary = side.summary.as_ref().unwrap();
        row(
            format!("raw sequential read of {} (4 MiB reads)", side.label),
            format!("{:.0} MiB/s; {}", mibs(size, median(&side.reads)), side.busy_read.show(ncpu)),
            "",
        );
        let r = ratio(&side.reads, &side.fulls);
        row(
            format!("full backup of {} to posix (ext4 on a thick LV)", side.label),
            format!(
                "{:.0} MiB/s, {:.1} s ({:.2}× the raw read); {} MiB read, {} MiB stored; {}",
                mibs(size, median(&side.fulls)),
                median(&side.fulls),
                r,
                summary.bytes_read / MIB,
                summary.bytes_stored / MIB,
                side.busy_full.show(ncpu)
            ),
            &format!("≥ 0.8× ({})", if r >= 0.8 { "met" } else { "not met" }),
        );
    }
    let thin_side = sides.pop().unwrap();
    let (full_thin, full_secs_thin) = (thin_side.summary, thin_side.fulls);
    let full = full_thin.unwrap();
    let full_secs = median(&full_secs_thin);
    let repo = posix_repo(&repo_dir);

    // --- incrementals on thin LVM --------------------------------------------------
    let config = hearth::config::Config::parse(
        &format!(
            "data_dir = \"/tmp\"\n[backends.lvm]\ndriver = \"lvm\"\nvolume_group = \"{vg}\"\nlvm_type = \"thin\"\n"
        ),
        "backup_lvm",
    )
    .unwrap();
    let backend = LvmBackend::new(config.backends.values().next().unwrap()).unwrap();
    let delta = |old: &str, new: &str| -> (Vec<std::ops::Range<u64>>, f64) {
        let t = Instant::now();
        let ranges = backend.thin_changed_ranges(old, new, size).unwrap().expect("thin LVs of hearth's pool");
        (ranges, t.elapsed().as_secs_f64())
    };
    let origin = open_rw(&lvm.dev("bench-thin"));
    let mut fresh = Content::with_seed(0x2545_f491_4f6c_dd1d);
    let mut newbuf = vec![0u8; CHUNK as usize];

    // 1. 1% of the volume rewritten as whole 4 MiB chunks, spread out, of every kind.
    step("incrementals after rewriting 1% of the volume as whole chunks");
    let n1 = ((chunks + 50) / 100).max(1);
    for k in 0..n1 {
        fresh.random(&mut newbuf);
        origin.write_all_at(&newbuf, (k * chunks / n1 + k % 4) * CHUNK).unwrap();
    }
    origin.sync_all().unwrap();
    lvm.snapshot("bench-thin", "snap-b");
    let snap_b = open_ro(&lvm.dev("snap-b"));
    let mut deltas = Vec::new();
    let (mut with_ranges, mut hashed) = (None, None);
    let mut ranges1 = Vec::new();
    let (incs, hash_incs) = alternate(
        rounds,
        |r| {
            let (ranges, d) = delta("snap-a", "snap-b");
            deltas.push(d);
            let id = format!("inc-ranges-{r}");
            cold();
            let t = Instant::now();
            with_ranges = Some(backup(&repo, &id, &snap_b, size, Some("full"), Some(&ranges)));
            let s = t.elapsed().as_secs_f64();
            repo.delete(&id).unwrap();
            repo.gc().unwrap();
            ranges1 = ranges;
            s
        },
        |r| {
            let id = format!("inc-hash-{r}");
            cold();
            let t = Instant::now();
            hashed = Some(backup(&repo, &id, &snap_b, size, Some("full"), None));
            let s = t.elapsed().as_secs_f64();
            repo.delete(&id).unwrap();
            repo.gc().unwrap();
            s
        },
    );
    let (with_ranges, hashed) = (with_ranges.unwrap(), hashed.unwrap());
    let (inc, d1) = (median(&incs), median(&deltas));
    let read_pct = with_ranges.bytes_read as f64 * 100.0 / size as f64;
    row(
        format!(
            "thin_delta between the full's snapshot and one after rewriting {n1} whole 4 MiB chunks ({:.2}% of the volume)",
            (n1 * CHUNK) as f64 * 100.0 / size as f64
        ),
        format!("{d1:.2} s; {} MiB of changed ranges", range_bytes(&ranges1) / MIB),
        "",
    );
    row(
        "incremental with those ranges".into(),
        format!(
            "{inc:.2} s ({:.3}× the full; {:.3}× with thin_delta), {} MiB read ({read_pct:.2}% of the volume), {} new chunks",
            inc / full_secs,
            (inc + d1) / full_secs,
            with_ranges.bytes_read / MIB,
            with_ranges.new_chunks
        ),
        &format!("≤ 3% read ({})", if read_pct <= 3.0 { "met" } else { "not met" }),
    );
    row(
        "the same incremental without ranges (read and hash all)".into(),
        format!(
            "{:.2} s ({:.2}× the full), {} MiB read, {} new chunks",
            median(&hash_incs),
            median(&hash_incs) / full_secs,
            hashed.bytes_read / MIB,
            hashed.new_chunks
        ),
        "",
    );
    // The parent of the next one.
    backup(&repo, "inc1", &snap_b, size, Some("full"), Some(&ranges1));

    // 2. 1% of the volume rewritten as pool blocks scattered over it.
    step("incrementals after rewriting 1% of the volume as scattered pool blocks");
    let blocks = size / pool_block;
    let n2 = ((blocks + 50) / 100).max(1);
    let mut picked = std::collections::BTreeSet::new();
    while (picked.len() as u64) < n2 {
        picked.insert(fresh.below(blocks));
    }
    let mut touched = std::collections::BTreeSet::new();
    for block in picked {
        let at = block * pool_block;
        fresh.random(&mut newbuf[..pool_block as usize]);
        origin.write_all_at(&newbuf[..pool_block as usize], at).unwrap();
        touched.insert(at / CHUNK);
    }
    origin.sync_all().unwrap();
    drop(origin);
    lvm.snapshot("bench-thin", "snap-c");
    let snap_c = open_ro(&lvm.dev("snap-c"));
    let mut deltas = Vec::new();
    let mut scattered = None;
    let mut ranges2 = Vec::new();
    let incs: Vec<f64> = (0..rounds)
        .map(|r| {
            let (ranges, d) = delta("snap-b", "snap-c");
            deltas.push(d);
            let id = format!("inc2-{r}");
            cold();
            let t = Instant::now();
            scattered = Some(backup(&repo, &id, &snap_c, size, Some("inc1"), Some(&ranges)));
            let s = t.elapsed().as_secs_f64();
            repo.delete(&id).unwrap();
            repo.gc().unwrap();
            ranges2 = ranges;
            s
        })
        .collect();
    let scattered = scattered.unwrap();
    let (inc, d2) = (median(&incs), median(&deltas));
    row(
        format!(
            "thin_delta after rewriting {n2} scattered {} KiB pool blocks (1% of the volume; {} of the {chunks} chunks touched)",
            pool_block / 1024,
            touched.len()
        ),
        format!("{d2:.2} s; {} MiB of changed ranges", range_bytes(&ranges2) / MIB),
        "",
    );
    row(
        "incremental with those ranges".into(),
        format!(
            "{inc:.2} s ({:.3}× the full; {:.3}× with thin_delta), {} MiB read ({:.2}% of the volume), {} new chunks",
            inc / full_secs,
            (inc + d2) / full_secs,
            scattered.bytes_read / MIB,
            scattered.bytes_read as f64 * 100.0 / size as f64,
            scattered.new_chunks
        ),
        "",
    );

    // --- deduplication ------------------------------------------------------------
    step("the second volume into the same repository");
    let other = open_ro(&lvm.dev("bench-other"));
    cold();
    let t = Instant::now();
    let second = backup(&repo, "other", &other, size, None, None);
    let second_secs = t.elapsed().as_secs_f64();
    drop(other);
    let differ = (1..chunks).step_by(20).count();
    row(
        format!("a second thin LV, {differ} of its {chunks} chunks differing from the first's, backed up alone"),
        format!(
            "{second_secs:.1} s, {} new chunks, {} MiB stored ({:.1}% of the first's {} MiB): the two {:.2}× deduplicated",
            second.new_chunks,
            second.bytes_stored / MIB,
            second.bytes_stored as f64 * 100.0 / full.bytes_stored as f64,
            full.bytes_stored / MIB,
            (2 * full.bytes_stored) as f64 / (full.bytes_stored + second.bytes_stored) as f64
        ),
        "",
    );

    // --- restores against raw writes ----------------------------------------------
    let mut random = vec![0u8; CHUNK as usize];
    let mut text = vec![0u8; CHUNK as usize];
    let mut gen = Content::new();
    gen.fill(Kind::Random, &mut random);
    gen.fill(Kind::Text, &mut text);
    // One pair of recorders per destination: raw writes, restores.
    for (label, thin) in [("a thick LV", false), ("a new thin LV", true)] {
        step(&format!("restores into {label} against raw writes"));
        let (busy_write, busy_restore) = (Busy::default(), Busy::default());
        // A new thin LV for each run; the thick one is written over.
        let with_dest = |f: &dyn Fn(&File) -> f64| {
            let lv = if thin { "bench-new" } else { "bench-restore" };
            if thin {
                lvm.thin(lv, size);
            }
            let dest = open_rw(&lvm.dev(lv));
            cold();
            let s = f(&dest);
            drop(dest);
            if thin {
                lvm.remove(lv);
            }
            s
        };
        let (writes, restores) = alternate(
            rounds,
            |_| with_dest(&|d| busy_write.time(|| raw_write(d, size, &random, &text))),
            |_| {
                // A new thin LV reads as zeroes (hearth restores into new volumes so):
                // holes and zero chunks are not written.
                with_dest(&|d| {
                    busy_restore.time(|| repo.restore("full", d, thin, &|_: Progress| {}, &Default::default()).unwrap())
                })
            },
        );
        row(
            format!("raw sequential write into {label} (4 MiB writes, fsync)"),
            format!("{:.0} MiB/s; {}", mibs(size, median(&writes)), busy_write.show(ncpu)),
            "",
        );
        row(
            format!("restore of the full backup into {label}"),
            format!(
                "{:.0} MiB/s ({:.2}× the raw write); {}",
                mibs(size, median(&restores)),
                ratio(&writes, &restores),
                busy_restore.show(ncpu)
            ),
            "",
        );
    }

    // --- S3 -----------------------------------------------------------------------
    match S3Env::from_env() {
        None => println!("S3 part not run: HEARTH_BENCH_S3_ENDPOINT is not set"),
        Some(s3) => {
            step("full backups to S3 against a plain client's PUTs");
            let src = open_ro(&lvm.dev("snap-a"));
            let mut stored = (0u64, 0u64);
            let mut object_secs = Vec::new();
            let (busy_plain, busy_s3, busy_objects) = (Busy::default(), Busy::default(), Busy::default());
            let (plains, s3s) = alternate(
                rounds,
                |r| {
                    // The volume's 4 MiB pieces, read (not timed) and PUT one at a time.
                    let plain = Plain::new(&s3, &s3.round_bucket(r));
                    plain.create_bucket();
                    cold();
                    let mut buf = vec![0u8; CHUNK as usize];
                    (0..chunks)
                        .map(|i| {
                            src.read_exact_at(&mut buf, i * CHUNK).unwrap();
                            busy_plain.time(|| plain.put(&format!("plain/{i}"), &buf))
                        })
                        .sum()
                },
                |r| {
                    let bucket = s3.round_bucket(r);
                    Plain::new(&s3, &bucket).create_bucket();
                    let target = Arc::new(S3Target::new(s3.settings(&bucket)).unwrap());
                    let repo = Repository::open(target.clone(), RepoConfig::default()).unwrap();
                    cold();
                    let s = busy_s3.time(|| {
                        backup(&repo, "full", &src, size, None, None);
                    });
                    // The same objects PUT by the plain client: read from the posix
                    // repository of the same volume (the same bytes: unencrypted chunks
                    // are named and encoded alike), not timed.
                    let keys = target.list("chunks/").unwrap();
                    let mut took = 0.0;
                    let mut bytes = 0;
                    let plain = Plain::new(&s3, &bucket);
                    for (key, _) in &keys {
                        let data = std::fs::read(repo_dir.join(key)).unwrap();
                        bytes += data.len() as u64;
                        took += busy_objects.time(|| plain.put(&format!("plain-objects/{key}"), &data));
                    }
                    stored = (keys.len() as u64, bytes);
                    object_secs.push(took);
                    s
                },
            );
            let r = ratio(&plains, &s3s);
            row(
                "plain client: the volume's 4 MiB pieces PUT one at a time (PUT time only)".into(),
                format!(
                    "{:.1} MiB/s, {:.1} s; {}",
                    mibs(size, median(&plains)),
                    median(&plains),
                    busy_plain.show(ncpu)
                ),
                "",
            );
            row(
                "full backup of the thin snapshot to S3 (S3Target, 4 threads)".into(),
                format!(
                    "{:.1} MiB/s, {:.1} s ({r:.2}× the plain client); {}",
                    mibs(size, median(&s3s)),
                    median(&s3s),
                    busy_s3.show(ncpu)
                ),
                &format!("≥ 0.8× ({})", if r >= 0.8 { "met" } else { "not met" }),
            );
            row(
                format!(
                    "plain client: the {} objects the backup stored ({} MiB) PUT one at a time",
                    stored.0,
                    stored.1 / MIB
                ),
                format!(
                    "{:.1} MiB/s, {:.1} s (the backup took {:.2}× as long); {}",
                    mibs(stored.1, median(&object_secs)),
                    median(&object_secs),
                    ratio(&s3s, &object_secs),
                    busy_objects.show(ncpu)
                ),
                "",
            );
        }
    }

    drop(repo);
    sh(&["umount", &mnt.path().display().to_string()]);
    println!(
        "\nbackup benchmark on LVM: {gib} GiB volumes, 4 MiB chunks, 4 threads, unencrypted, {rounds} rounds \
         (medians), {lvm_version}, thin pool block {} KiB, {:.0} s in all\n",
        pool_block / 1024,
        started.elapsed().as_secs_f64()
    );
    println!("| measure | result | target |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.measure, r.result, r.target);
    }
}

/// Where the S3 part writes: `HEARTH_BENCH_S3_ENDPOINT` (as this machine reaches it),
/// `_ACCESS_KEY`, `_SECRET_KEY`, `_BUCKET` (a prefix, default `hearth-bench-<time>`:
/// each round makes its own bucket, `<prefix>-r<round>`), `_REGION` (default us-east-1).
struct S3Env {
    endpoint: String,
    access: String,
    secret: String,
    bucket: String,
    region: String,
}

impl S3Env {
    fn from_env() -> Option<S3Env> {
        let var = |k: &str| std::env::var(format!("HEARTH_BENCH_S3_{k}")).ok();
        Some(S3Env {
            endpoint: var("ENDPOINT")?,
            access: var("ACCESS_KEY").expect("HEARTH_BENCH_S3_ACCESS_KEY"),
            secret: var("SECRET_KEY").expect("HEARTH_BENCH_S3_SECRET_KEY"),
            // A new name for each run: a store used before may hold an earlier run's.
            bucket: var("BUCKET").unwrap_or_else(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                format!("hearth-bench-{}", now.as_secs())
            }),
            region: var("REGION").unwrap_or_else(|| "us-east-1".into()),
        })
    }

    fn round_bucket(&self, round: usize) -> String {
        format!("{}-r{round}", self.bucket)
    }

    fn settings(&self, bucket: &str) -> S3Settings {
        let mut s = S3Settings::new(&self.endpoint, &self.access, &self.secret, bucket);
        s.region = self.region.clone();
        s
    }
}

/// The plain S3 client the backup is compared with: one `ureq` agent (one keep-alive
/// connection, default settings) sending each object in one PUT, signed by `rusty-s3`
/// (SigV4 presigned URL, unsigned payload: no hash of the body, no `Content-MD5`), one
/// at a time, no retries.
struct Plain {
    agent: ureq::Agent,
    bucket: rusty_s3::Bucket,
    credentials: rusty_s3::Credentials,
}

impl Plain {
    fn new(s3: &S3Env, bucket: &str) -> Plain {
        let url = s3.endpoint.parse().unwrap();
        Plain {
            agent: ureq::Agent::config_builder().proxy(None).build().new_agent(),
            bucket: rusty_s3::Bucket::new(url, rusty_s3::UrlStyle::Path, bucket.to_string(), s3.region.clone())
                .unwrap(),
            credentials: rusty_s3::Credentials::new(s3.access.clone(), s3.secret.clone()),
        }
    }

    /// Make the bucket; one that is ours already will do (409).
    fn create_bucket(&self) {
        let url = rusty_s3::actions::CreateBucket::new(&self.bucket, &self.credentials).sign(Duration::from_secs(3600));
        match self.agent.put(url.as_str()).send_empty() {
            Ok(answer) => {
                answer.into_body().read_to_vec().unwrap();
            }
            Err(ureq::Error::StatusCode(409)) => {}
            Err(e) => panic!("creating bucket {}: {e}", self.bucket.name()),
        }
    }

    /// PUT one object: sign, send, read the answer.
    fn put(&self, key: &str, data: &[u8]) {
        let url = rusty_s3::actions::PutObject::new(&self.bucket, Some(&self.credentials), key)
            .sign(Duration::from_secs(3600));
        let answer = self.agent.put(url.as_str()).header("content-type", "application/octet-stream").send(data);
        answer.unwrap().into_body().read_to_vec().unwrap();
    }
}
