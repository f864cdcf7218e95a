//! The `lvm` backend: volumes are logical volumes in one volume group, thick or thin.
//!
//! Changes go through the LVM command line (`lvcreate`, `lvremove`, `lvextend`,
//! `lvrename`, `lvchange`), resolved at start-up and run with argv, `LC_ALL=C` and a
//! timeout ([`crate::cmd`]); reports are read as JSON with `--units b --nosuffix`.
//! Status reads on hot paths (is a volume open?) use device-mapper ioctls
//! ([`super::dm`]) instead of spawning `lvs`.
//!
//! Names (see [`crate::names`]): volumes `volume-<uuid>`, snapshots `_snapshot-<uuid>`
//! (LVM reserves names that start with `snapshot`), copies in progress
//! `_partial-volume-<uuid>` (renamed into place when complete), and the thin pool
//! hearth creates `hearth-thinpool`. Nothing else in the group is touched.
//!
//! Provisioning, as Cinder's LVM driver does it:
//! - thick: `lvcreate -L`; a snapshot is a COW snapshot as large as its origin; a copy
//!   is a new LV filled chunk by chunk (zero chunks with `BLKZEROOUT`, which the kernel
//!   can offload, instead of writes); delete wipes with `BLKZEROOUT` as configured;
//! - thin: `lvcreate -V` in the thin pool (made on first use, leaving room for its
//!   metadata); snapshots and copies are thin snapshots made writable and activated;
//!   delete never wipes (unwritten thin blocks read as zero).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::backend::{Backend, Footprint, Outcome, PoolCapacity, VolumeSpec};
use crate::cmd::{CmdError, Tool};
use crate::config::{BackendConfig, LvmType, OverSubscription, VolumeClear};
use crate::error::{Error, Result};
use crate::ids::{Gib, Id};
use crate::names;

/// Bytes copied or zeroed per step.
const CHUNK: usize = 4 << 20;

/// Attempts of an `lvremove` (udev may hold a just-closed device for a moment).
const REMOVE_ATTEMPTS: u32 = 4;

// BLKZEROOUT: _IO(0x12, 127), argument u64[2] = {start, length} in bytes.
nix::ioctl_write_ptr_bad!(blkzeroout, nix::request_code_none!(0x12, 127), [u64; 2]);
// BLKDISCARD: _IO(0x12, 119), argument u64[2] = {start, length} in bytes.
nix::ioctl_write_ptr_bad!(blkdiscard, nix::request_code_none!(0x12, 119), [u64; 2]);
// BLKGETSIZE64: _IOR(0x12, 114, size_t).
nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);

struct Tools {
    lvcreate: Tool,
    lvremove: Tool,
    lvextend: Tool,
    lvrename: Tool,
    lvchange: Tool,
    lvs: Tool,
    vgs: Tool,
    /// For what changed between two thin LVs (backups); absent: hash comparison.
    thin_delta: Option<Tool>,
    dmsetup: Option<Tool>,
}

/// One LV as `lvs` reports it.
#[derive(Clone, Debug, PartialEq)]
struct Lv {
    name: String,
    size: u64,
    attr: String,
    pool_lv: String,
    origin: String,
    data_percent: Option<f64>,
    metadata_percent: Option<f64>,
}

impl Lv {
    fn is_thin_pool(&self) -> bool {
        self.attr.starts_with('t')
    }

    fn is_active(&self) -> bool {
        self.attr.chars().nth(4) == Some('a')
    }
}

/// The size of a thick snapshot of an origin of `size` bytes: as large as the
/// origin, plus room for the exception store's own metadata, so that rewriting the
/// whole origin cannot overflow it.
pub fn thick_snapshot_bytes(size: u64) -> u64 {
    size + (size / 64).max(8 << 20)
}

/// An LVM volume group as one pool.
pub struct LvmBackend {
    vg: String,
    configured_type: LvmType,
    thin: Mutex<Option<bool>>,
    /// Whether hearth's thin pool is known to exist (checked once, then kept).
    pool_lock: Mutex<bool>,
    volume_clear: VolumeClear,
    volume_clear_size_mib: u64,
    over_subscription: OverSubscription,
    timeout: Duration,
    tools: Tools,
    dev: PathBuf,
    /// A thick group's free space as `vgs` last measured it (see [`FreeBase`]).
    free_base: Mutex<Option<FreeBase>>,
    /// Held while the pool's metadata snapshot is reserved (one at a time per pool).
    metadata_snap: Mutex<()>,
}

/// How long a thick group's free space measured by `vgs` is carried forward by
/// device-mapper arithmetic before `vgs` is asked again.
const FREE_BASE_MAX_AGE: Duration = Duration::from_secs(30);

/// A thick group's size and free space from `vgs`, with the bytes device-mapper then
/// showed mapped by the group's linear and striped segments. Until it is older than
/// [`FREE_BASE_MAX_AGE`], free space is `free - (mapped now - mapped then)`: exact for
/// every change of active LVs (all of hearth's), without running `vgs` — whose VG lock
/// would otherwise make the next `lvcreate` wait after every change. Changes that
/// device-mapper cannot see (inactive LVs of others) are caught at the next `vgs`.
#[derive(Clone, Copy, Debug)]
struct FreeBase {
    at: std::time::Instant,
    size: u64,
    free: u64,
    mapped: u64,
}

fn parse_num(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn report_rows(json: &str, section: &str) -> Result<Vec<serde_json::Map<String, Value>>> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| Error::Backend(format!("lvm: unreadable JSON report ({e}): {}", json.trim())))?;
    Ok(v["report"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r[section].as_array().cloned().unwrap_or_default())
        .filter_map(|row| row.as_object().cloned())
        .collect())
}

fn text(row: &serde_json::Map<String, Value>, k: &str) -> String {
    row.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

impl LvmBackend {
    /// An LVM backend from its table; the tools must exist (the VG is checked by
    /// [`Backend::check`] and at first use).
    pub fn new(b: &BackendConfig) -> Result<LvmBackend> {
        let vg = b.volume_group.clone().ok_or_else(|| Error::Internal("lvm backend without volume_group".into()))?;
        let tools = Tools {
            lvcreate: Tool::resolve("lvcreate")?,
            lvremove: Tool::resolve("lvremove")?,
            lvextend: Tool::resolve("lvextend")?,
            lvrename: Tool::resolve("lvrename")?,
            lvchange: Tool::resolve("lvchange")?,
            lvs: Tool::resolve("lvs")?,
            vgs: Tool::resolve("vgs")?,
            thin_delta: Tool::resolve("thin_delta").ok(),
            dmsetup: Tool::resolve("dmsetup").ok(),
        };
        Ok(LvmBackend {
            vg,
            configured_type: b.lvm_type.unwrap_or_default(),
            thin: Mutex::new(None),
            pool_lock: Mutex::new(false),
            volume_clear: b.volume_clear,
            volume_clear_size_mib: b.volume_clear_size,
            over_subscription: b.max_over_subscription_ratio,
            timeout: Duration::from_secs(b.lvm_command_timeout.unwrap_or(120)),
            tools,
            dev: PathBuf::from("/dev"),
            free_base: Mutex::new(None),
            metadata_snap: Mutex::new(()),
        })
    }

    /// The byte ranges (sorted, merged, within `size`) in which thin LV `new` may
    /// differ from thin LV `old`, read from the pool's metadata rather than the data:
    ///
    /// 1. both LVs' thin device ids (`lvs -o thin_id`);
    /// 2. a metadata snapshot of the live pool (`dmsetup message <pool>-tpool 0
    ///    reserve_metadata_snap`; one left reserved by a crash is released first);
    /// 3. `thin_delta -m --snap1 <old> --snap2 <new>` on the pool's metadata device,
    ///    parsed by [`thin_delta::parse`](super::thin_delta::parse);
    /// 4. the snapshot released, whatever happened.
    ///
    /// `None` when it cannot tell: the LVs are not thin LVs of hearth's pool, or the
    /// tools are missing; the caller then compares the data itself.
    pub fn thin_changed_ranges(&self, old: &str, new: &str, size: u64) -> Result<Option<Vec<std::ops::Range<u64>>>> {
        let (Some(thin_delta), Some(dmsetup)) = (&self.tools.thin_delta, &self.tools.dmsetup) else {
            return Ok(None);
        };
        let out = self.run(&self.tools.lvs, &["--reportformat", "json", "-o", "lv_name,pool_lv,thin_id", &self.vg])?;
        let rows = report_rows(&out, "lv")?;
        let id_of = |lv: &str| {
            rows.iter()
                .find(|r| text(r, "lv_name") == lv && text(r, "pool_lv") == names::LVM_THIN_POOL)
                .and_then(|r| text(r, "thin_id").parse::<u64>().ok())
        };
        let (Some(old_id), Some(new_id)) = (id_of(old), id_of(new)) else {
            return Ok(None);
        };
        let pool = super::dm::lv_layer_dm_name(&self.vg, names::LVM_THIN_POOL, "tpool");
        let meta =
            self.dev.join("mapper").join(super::dm::lv_dm_name(&self.vg, &format!("{}_tmeta", names::LVM_THIN_POOL)));
        let _held = self.metadata_snap.lock().unwrap_or_else(|p| p.into_inner());
        let message = |what: &str| self.run(dmsetup, &["message", &pool, "0", what]);
        if let Err(first) = message("reserve_metadata_snap") {
            // A snapshot left reserved by a crash: release it and try once more.
            let _ = message("release_metadata_snap");
            message("reserve_metadata_snap").map_err(|_| first)?;
        }
        let (a, b) = (old_id.to_string(), new_id.to_string());
        let meta_arg = meta.display().to_string();
        let delta = self.run(thin_delta, &["-m", "--snap1", &a, "--snap2", &b, &meta_arg]);
        if let Err(e) = message("release_metadata_snap") {
            log::error!("lvm {}: releasing the thin pool's metadata snapshot failed: {e}", self.vg);
        }
        let parsed = super::thin_delta::parse(&delta?)
            .map_err(|e| Error::Backend(format!("lvm {}: comparing {old} and {new}: {e}", self.vg)))?;
        Ok(Some(parsed.byte_ranges(size)))
    }

    fn run(&self, tool: &Tool, args: &[&str]) -> Result<String> {
        tool.run(args, self.timeout).map_err(Error::from)
    }

    fn check_pool(&self, pool: &str) -> Result<()> {
        if pool == self.vg {
            Ok(())
        } else {
            Err(Error::Backend(format!("lvm backend: no pool named {pool} (the volume group is {})", self.vg)))
        }
    }

    fn lv_path(&self, lv: &str) -> PathBuf {
        self.dev.join(&self.vg).join(lv)
    }

    fn full(&self, lv: &str) -> String {
        format!("{}/{lv}", self.vg)
    }

    /// Every LV of the group.
    fn lvs(&self) -> Result<Vec<Lv>> {
        let out = self.run(
            &self.tools.lvs,
            &[
                "--reportformat",
                "json",
                "--units",
                "b",
                "--nosuffix",
                "-o",
                "lv_name,lv_size,lv_attr,pool_lv,origin,data_percent,metadata_percent",
                &self.vg,
            ],
        )?;
        lvs_of_report(&out)
    }

    fn lv(&self, name: &str) -> Result<Option<Lv>> {
        Ok(self.lvs()?.into_iter().find(|l| l.name == name))
    }

    /// (size, free) of the group in bytes.
    fn vg_size_free(&self) -> Result<(u64, u64)> {
        let out = self.run(
            &self.tools.vgs,
            &["--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_size,vg_free", &self.vg],
        )?;
        vg_size_free_of_report(&out, &self.vg)
    }

    /// Whether this pool provisions thin, deciding `auto` on first use as Cinder does:
    /// thin when hearth's thin pool exists or the group has no LVs.
    fn is_thin(&self) -> Result<bool> {
        let mut t = self.thin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = *t {
            return Ok(v);
        }
        let v = match self.configured_type {
            LvmType::Thick => false,
            LvmType::Thin => true,
            LvmType::Auto => {
                let lvs = self.lvs()?;
                lvs.is_empty() || lvs.iter().any(|l| l.name == names::LVM_THIN_POOL)
            }
        };
        *t = Some(v);
        Ok(v)
    }

    /// Make hearth's thin pool if it is missing: 95% of the group's free space, the
    /// rest left for the pool's metadata and LVM's spare.
    fn ensure_thin_pool(&self) -> Result<()> {
        let mut ready = self.pool_lock.lock().unwrap_or_else(|e| e.into_inner());
        if *ready {
            return Ok(());
        }
        if self.lv(names::LVM_THIN_POOL)?.is_some() {
            *ready = true;
            return Ok(());
        }
        let (_, free) = self.vg_size_free()?;
        let size = (free / 100 * 95) & !((4 << 20) - 1);
        if size == 0 {
            return Err(Error::Backend(format!("lvm: volume group {} has no room for a thin pool", self.vg)));
        }
        log::info!("lvm: creating thin pool {}/{} of {} bytes", self.vg, names::LVM_THIN_POOL, size);
        let made = self.run(
            &self.tools.lvcreate,
            &["--yes", "--type", "thin-pool", "-L", &format!("{size}b"), "-n", names::LVM_THIN_POOL, &self.vg],
        );
        match made {
            Ok(_) => {}
            // Another create made it meanwhile: that is what was wanted.
            Err(_) if self.lv(names::LVM_THIN_POOL)?.is_some() => {}
            Err(e) => return Err(e),
        }
        *ready = true;
        Ok(())
    }

    /// How many openers a volume's device has (device-mapper, no process spawned).
    fn open_count(&self, lv: &str) -> Result<Option<i32>> {
        let dm = super::dm::DmControl::open()?;
        Ok(dm.device_info(&super::dm::lv_dm_name(&self.vg, lv))?.map(|i| i.open_count))
    }

    fn remove_lv(&self, lv: &str) -> Result<Outcome> {
        let mut last: Option<CmdError> = None;
        for attempt in 1..=REMOVE_ATTEMPTS {
            if self.lv(lv)?.is_none() {
                return Ok(if attempt == 1 { Outcome::AlreadyDone } else { Outcome::Done });
            }
            match self.tools.lvremove.run(&["--yes", "-f", &self.full(lv)], self.timeout) {
                Ok(_) => return Ok(Outcome::Done),
                Err(e) => {
                    // "in use" right after a close is udev still probing: wait and retry.
                    log::warn!("lvm: lvremove of {lv} failed (attempt {attempt}/{REMOVE_ATTEMPTS}): {e}");
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
                }
            }
        }
        Err(last.map(Error::from).unwrap_or_else(|| Error::Backend(format!("lvm: could not remove {lv}"))))
    }

    fn activate(&self, lv: &str) -> Result<()> {
        // Thin snapshots are created with "activation skip" set: clear it and activate.
        self.run(&self.tools.lvchange, &["--yes", "--setactivationskip", "n", "-ay", &self.full(lv)])?;
        Ok(())
    }

    fn device_size(file: &File) -> Result<u64> {
        use std::os::fd::AsRawFd;
        let mut size: u64 = 0;
        // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points at a
        // live local; the descriptor is open for the call.
        match unsafe { blkgetsize64(file.as_raw_fd(), &mut size) } {
            Ok(_) => Ok(size),
            Err(_) => file.metadata().map(|m| m.len()).map_err(|e| Error::Backend(format!("lvm: measuring: {e}"))),
        }
    }

    /// Write zeroes over `[start, start+len)` of a block device, offloaded to the
    /// kernel (`BLKZEROOUT`); falls back to writes on devices that refuse it.
    fn zero_out(file: &File, start: u64, len: u64) -> Result<()> {
        use std::os::fd::AsRawFd;
        if len == 0 {
            return Ok(());
        }
        let range = [start, len];
        // SAFETY: BLKZEROOUT reads two u64 (start, length) from the pointer, which
        // points at a live local array; the descriptor is open for writing.
        if unsafe { blkzeroout(file.as_raw_fd(), &range) }.is_ok() {
            return Ok(());
        }
        let zeros = vec![0u8; CHUNK];
        let mut off = start;
        while off < start + len {
            let n = ((start + len - off) as usize).min(CHUNK);
            file.write_all_at(&zeros[..n], off).map_err(|e| Error::Backend(format!("lvm: zeroing: {e}")))?;
            off += n as u64;
        }
        Ok(())
    }

    /// Make `[start, start+len)` of a thin LV read as zeroes by unmapping it: a
    /// thin pool returns zeroes for unmapped blocks, and allocates nothing.
    fn discard(file: &File, start: u64, len: u64) -> Result<()> {
        use std::os::fd::AsRawFd;
        let range = [start, len];
        // SAFETY: BLKDISCARD reads two u64 (start, length) from the pointer, which
        // points at a live local array; the descriptor is open for writing.
        unsafe { blkdiscard(file.as_raw_fd(), &range) }
            .map(|_| ())
            .map_err(|e| Error::Backend(format!("lvm: BLKDISCARD: {e}")))
    }

    /// Copy every chunk of `src` to `dst`, then flush. Zero chunks are not written:
    /// on a thin target they are unmapped (`BLKDISCARD`), on a thick one zeroed by
    /// the kernel (`BLKZEROOUT`).
    ///
    /// With `only_changes`, chunks the target already holds are not written (a
    /// revert rewrites only what changed since the snapshot, so the origin's other
    /// COW snapshots copy only those chunks).
    fn copy_lv(&self, src: &str, dst: &str, only_changes: bool) -> Result<()> {
        let thin_target = self.lv(dst)?.is_some_and(|l| !l.pool_lv.is_empty());
        let from = File::open(self.lv_path(src)).map_err(|e| Error::Backend(format!("lvm: opening {src}: {e}")))?;
        let to = OpenOptions::new()
            .write(true)
            .open(self.lv_path(dst))
            .map_err(|e| Error::Backend(format!("lvm: opening {dst}: {e}")))?;
        let len = Self::device_size(&from)?.min(Self::device_size(&to)?);
        let mut buf = vec![0u8; CHUNK];
        // Slice comparisons are memcmp: fast even in a debug build under emulation.
        let zeros = vec![0u8; CHUNK];
        let mut have = if only_changes { vec![0u8; CHUNK] } else { Vec::new() };
        let reader = if only_changes {
            Some(File::open(self.lv_path(dst)).map_err(|e| Error::Backend(format!("lvm: opening {dst}: {e}")))?)
        } else {
            None
        };
        let mut off = 0u64;
        while off < len {
            let n = ((len - off) as usize).min(CHUNK);
            from.read_exact_at(&mut buf[..n], off).map_err(|e| Error::Backend(format!("lvm: reading {src}: {e}")))?;
            if let Some(r) = &reader {
                r.read_exact_at(&mut have[..n], off).map_err(|e| Error::Backend(format!("lvm: reading {dst}: {e}")))?;
                if have[..n] == buf[..n] {
                    off += n as u64;
                    continue;
                }
            }
            if buf[..n] == zeros[..n] {
                if thin_target {
                    Self::discard(&to, off, n as u64)?;
                } else {
                    Self::zero_out(&to, off, n as u64)?;
                }
            } else {
                to.write_all_at(&buf[..n], off).map_err(|e| Error::Backend(format!("lvm: writing {dst}: {e}")))?;
            }
            off += n as u64;
        }
        to.sync_all().map_err(|e| Error::Backend(format!("lvm: syncing {dst}: {e}")))
    }

    /// Make volume `spec.id` as a copy of LV `source`, through a partial LV that is
    /// renamed into place only when complete.
    fn copy_volume_from(&self, source: &str, spec: &VolumeSpec) -> Result<Outcome> {
        let name = names::volume(spec.id);
        if self.lv(&name)?.is_some_and(|l| l.size >= spec.size.bytes()) {
            return Ok(Outcome::AlreadyDone);
        }
        let partial = names::lv_partial_volume(spec.id);
        self.remove_lv(&partial)?;
        let size = format!("{}b", spec.size.bytes());
        if self.is_thin()? {
            self.run(&self.tools.lvcreate, &["--yes", "-s", "-n", &partial, &self.full(source)])?;
            self.activate(&partial)?;
            if self.lv(&partial)?.is_some_and(|l| l.size < spec.size.bytes()) {
                self.run(&self.tools.lvextend, &["-L", &size, &self.full(&partial)])?;
            }
        } else {
            self.run(&self.tools.lvcreate, &["--yes", "-Wy", "-L", &size, "-n", &partial, &self.vg])?;
            if let Err(e) = self.copy_lv(source, &partial, false) {
                let _ = self.remove_lv(&partial);
                return Err(e);
            }
        }
        self.run(&self.tools.lvrename, &[&self.vg, &partial, &name])?;
        Ok(Outcome::Done)
    }
}

/// Every LV of an `lvs --reportformat json` report.
fn lvs_of_report(json: &str) -> Result<Vec<Lv>> {
    Ok(report_rows(json, "lv")?
        .into_iter()
        .map(|r| Lv {
            name: text(&r, "lv_name"),
            size: r.get("lv_size").and_then(parse_num).unwrap_or(0.0) as u64,
            attr: text(&r, "lv_attr"),
            pool_lv: text(&r, "pool_lv"),
            origin: text(&r, "origin"),
            data_percent: r.get("data_percent").and_then(parse_num),
            metadata_percent: r.get("metadata_percent").and_then(parse_num),
        })
        .collect())
}

/// (size, free) in bytes of the group `vg` from a `vgs --reportformat json` report.
fn vg_size_free_of_report(json: &str, vg: &str) -> Result<(u64, u64)> {
    let row = report_rows(json, "vg")?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Backend(format!("lvm: volume group {vg} not found")))?;
    let n = |k: &str| row.get(k).and_then(parse_num).unwrap_or(0.0) as u64;
    Ok((n("vg_size"), n("vg_free")))
}

/// The pool's figures from the group's size and free space and its LVs.
fn capacity_of(vg: &str, thin: bool, vg_size: u64, vg_free: u64, lvs: &[Lv]) -> PoolCapacity {
    let ours: Vec<&Lv> = lvs.iter().filter(|l| names::parse_volume(&l.name).is_some()).collect();
    // Saturating: sizes are read from a report (a sum past u64 overflowed, found by fuzzing).
    let provisioned = ours.iter().fold(0u64, |sum, l| sum.saturating_add(l.size));
    let mut extra = serde_json::Map::new();
    extra.insert("lvm_type".into(), serde_json::json!(if thin { "thin" } else { "thick" }));
    // How snapshots' and volumes' copies are made.
    extra.insert("copy_method".into(), serde_json::json!(if thin { "thin-snapshot" } else { "block-copy" }));
    let pool_lv = lvs.iter().find(|l| l.name == names::LVM_THIN_POOL && l.is_thin_pool());
    let (total, free, allocated) = match (thin, pool_lv) {
        (true, Some(tp)) => {
            let used = (tp.size as f64 * tp.data_percent.unwrap_or(0.0) / 100.0) as u64;
            extra.insert("thin_pool_data_percent".into(), serde_json::json!(tp.data_percent.unwrap_or(0.0)));
            extra.insert("thin_pool_metadata_percent".into(), serde_json::json!(tp.metadata_percent.unwrap_or(0.0)));
            (tp.size, tp.size.saturating_sub(used), used)
        }
        // Thin, but no pool yet: it will take most of the group's free space.
        (true, None) => (vg_free / 100 * 95, vg_free / 100 * 95, 0),
        (false, _) => (vg_size, vg_free, provisioned),
    };
    extra.insert("volume_group".into(), serde_json::json!(vg));
    PoolCapacity {
        total_bytes: total,
        free_bytes: free,
        provisioned_bytes: provisioned,
        allocated_bytes: allocated,
        total_volumes: ours.len() as u64,
        thin_provisioning_support: thin,
        thick_provisioning_support: !thin,
        extra,
    }
}

/// Fuzzing: everything read from `lvs` and `vgs` reports (see `crate::fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_reports(json: &str) {
    if let Ok(lvs) = lvs_of_report(json) {
        for thin in [false, true] {
            let capacity = capacity_of("vg", thin, 1 << 40, 1 << 39, &lvs);
            assert!(capacity.free_bytes <= capacity.total_bytes, "free above total: {capacity:?}");
        }
        for l in &lvs {
            let _ = (l.is_thin_pool(), l.is_active());
        }
    }
    if let Ok((size, free)) = vg_size_free_of_report(json, "vg") {
        let lvs = lvs_of_report(json).unwrap_or_default();
        let _ = capacity_of("vg", false, size, free, &lvs);
    }
}

impl LvmBackend {
    /// The pool measured with `vgs` and `lvs` (two processes).
    pub fn capacity_with_lvs(&self) -> Result<PoolCapacity> {
        let (vg_size, vg_free) = self.vg_size_free()?;
        let lvs = self.lvs()?;
        let thin = self.is_thin()?;
        let _ = self.over_subscription;
        Ok(capacity_of(&self.vg, thin, vg_size, vg_free, &lvs))
    }

    /// The thin pool's size, free and used bytes from its status (one ioctl), with its
    /// data and metadata percentages put in `extra`.
    fn thin_pool_usage(
        &self,
        dm: &super::dm::DmControl,
        extra: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(u64, u64, u64)> {
        let tpool = super::dm::lv_layer_dm_name(&self.vg, names::LVM_THIN_POOL, "tpool");
        let targets = dm.table_status(&tpool)?;
        let target = targets.first().ok_or_else(|| Error::Backend(format!("dm: {tpool} has no table")))?;
        let total = target.length * 512;
        let status = target.thin_pool()?;
        let usage = status.usage().ok_or_else(|| Error::Backend(format!("dm: thin pool {tpool} reports {status}")))?;
        let used = (total as f64 * usage.data_percent() / 100.0) as u64;
        extra
            .insert("thin_pool_data_percent".into(), serde_json::json!((usage.data_percent() * 100.0).round() / 100.0));
        extra.insert(
            "thin_pool_metadata_percent".into(),
            serde_json::json!((usage.metadata_percent() * 100.0).round() / 100.0),
        );
        Ok((total, total.saturating_sub(used), used))
    }

    /// The pool measured with device-mapper ioctls: volume sizes from their tables,
    /// thin pool usage from its status; only a thick pool's free space needs `vgs`.
    pub fn capacity_with_dm(&self) -> Result<PoolCapacity> {
        use super::dm::{lv_dm_name, DmControl};
        let dm = DmControl::open()?;
        let thin = self.is_thin()?;
        let vg_prefix = lv_dm_name(&self.vg, "");
        let prefix = lv_dm_name(&self.vg, names::VOLUME_PREFIX);
        let (mut provisioned, mut count, mut mapped) = (0u64, 0u64, 0u64);
        for dev in dm.list_devices()? {
            // This group's devices: LV names never start with '-', so "vg--2-…" (group
            // "vg-2") is not one of group "vg"'s.
            let Some(rest) = dev.name.strip_prefix(&vg_prefix) else { continue };
            if rest.starts_with('-') {
                continue;
            }
            let volume = dev.name.strip_prefix(&prefix).is_some_and(|rest| {
                let lv = format!("{}{}", names::VOLUME_PREFIX, rest.replace("--", "-"));
                names::parse_volume(&lv).is_some() && lv_dm_name(&self.vg, &lv) == dev.name
            });
            if !volume && thin {
                continue;
            }
            let table = dm.table_status(&dev.name)?;
            if volume {
                provisioned += table.iter().map(|t| t.length).sum::<u64>() * 512;
                count += 1;
            }
            mapped += table
                .iter()
                .filter(|t| t.target_type == "linear" || t.target_type == "striped")
                .map(|t| t.length * 512)
                .sum::<u64>();
        }
        let mut extra = serde_json::Map::new();
        extra.insert("lvm_type".into(), serde_json::json!(if thin { "thin" } else { "thick" }));
        extra.insert("copy_method".into(), serde_json::json!(if thin { "thin-snapshot" } else { "block-copy" }));
        extra.insert("volume_group".into(), serde_json::json!(self.vg));
        let (total, free, allocated) = if thin {
            self.thin_pool_usage(&dm, &mut extra)?
        } else {
            let mut base = self.free_base.lock().unwrap_or_else(|e| e.into_inner());
            let b = match *base {
                Some(b) if b.at.elapsed() < FREE_BASE_MAX_AGE => b,
                _ => {
                    let (size, free) = self.vg_size_free()?;
                    let b = FreeBase { at: std::time::Instant::now(), size, free, mapped };
                    *base = Some(b);
                    b
                }
            };
            let free = (b.free + b.mapped).saturating_sub(mapped).min(b.size);
            (b.size, free, provisioned)
        };
        Ok(PoolCapacity {
            total_bytes: total,
            free_bytes: free,
            provisioned_bytes: provisioned,
            allocated_bytes: allocated,
            total_volumes: count,
            thin_provisioning_support: thin,
            thick_provisioning_support: !thin,
            extra,
        })
    }
}

impl Backend for LvmBackend {
    fn driver(&self) -> &'static str {
        "lvm"
    }

    fn pools(&self) -> Vec<String> {
        vec![self.vg.clone()]
    }

    fn capacity(&self, pool: &str) -> Result<PoolCapacity> {
        self.check_pool(pool)?;
        // Device-mapper first (one vgs at most); the lvs report when it cannot answer.
        match self.capacity_with_dm() {
            Ok(c) => Ok(c),
            Err(e) => {
                log::debug!("lvm: capacity through device-mapper failed ({e}); asking lvs");
                self.capacity_with_lvs()
            }
        }
    }

    fn volume_footprint(&self, pool: &str, id: Id) -> Result<Option<Footprint>> {
        self.check_pool(pool)?;
        let dm = super::dm::DmControl::open()?;
        let name = super::dm::lv_dm_name(&self.vg, &names::volume(id));
        if dm.device_info(&name)?.is_none() {
            return Ok(None);
        }
        let table = dm.table_status(&name)?;
        let size = table.iter().map(|t| t.length).sum::<u64>() * 512;
        let thin = table.iter().any(|t| t.target_type == "thin");
        Ok(Some(Footprint { size, allocated: if thin { 0 } else { size } }))
    }

    fn refresh_usage(&self, pool: &str, figures: &mut PoolCapacity) -> Result<()> {
        self.check_pool(pool)?;
        if self.is_thin()? {
            let dm = super::dm::DmControl::open()?;
            let (total, free, used) = self.thin_pool_usage(&dm, &mut figures.extra)?;
            figures.total_bytes = total;
            figures.free_bytes = free;
            figures.allocated_bytes = used;
        }
        Ok(())
    }

    fn create_volume(&self, pool: &str, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        let name = names::volume(spec.id);
        let size = format!("{}b", spec.size.bytes());
        // One LVM command on the common path; the report only when it fails.
        let made = if self.is_thin()? {
            self.ensure_thin_pool()?;
            self.run(
                &self.tools.lvcreate,
                &["--yes", "-Wy", "-V", &size, "--thinpool", names::LVM_THIN_POOL, "-n", &name, &self.vg],
            )
        } else {
            self.run(&self.tools.lvcreate, &["--yes", "-Wy", "-L", &size, "-n", &name, &self.vg])
        };
        match made {
            Ok(_) => Ok(Outcome::Done),
            Err(e) => match self.lv(&name)? {
                // Made before (a retry, or a reconcile): done if it is big enough.
                Some(lv) if lv.size >= spec.size.bytes() => Ok(Outcome::AlreadyDone),
                Some(_) => Err(Error::Backend(format!("lvm: a smaller LV {name} already exists"))),
                None => Err(e),
            },
        }
    }

    fn delete_volume(&self, pool: &str, id: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        let name = names::volume(id);
        let Some(lv) = self.lv(&name)? else { return Ok(Outcome::AlreadyDone) };
        if self.volume_busy(pool, id)? {
            return Err(Error::Backend(format!("lvm: {name} is open by another process; not deleting it")));
        }
        // Thin LVs are never wiped: their unwritten blocks read as zero and their
        // freed blocks are zeroed by the pool before reuse.
        if self.volume_clear == VolumeClear::Zero && lv.pool_lv.is_empty() && lv.is_active() {
            let f = OpenOptions::new()
                .write(true)
                .open(self.lv_path(&name))
                .map_err(|e| Error::Backend(format!("lvm: opening {name} to wipe it: {e}")))?;
            let len = match self.volume_clear_size_mib {
                0 => lv.size,
                mib => (mib << 20).min(lv.size),
            };
            Self::zero_out(&f, 0, len)?;
            f.sync_all().map_err(|e| Error::Backend(format!("lvm: syncing {name}: {e}")))?;
        }
        self.remove_lv(&name)
    }

    fn extend_volume(&self, pool: &str, id: Id, size: Gib) -> Result<Outcome> {
        self.check_pool(pool)?;
        let name = names::volume(id);
        let lv = self.lv(&name)?.ok_or_else(|| Error::Backend(format!("lvm: {name} does not exist")))?;
        if lv.size >= size.bytes() {
            return Ok(Outcome::AlreadyDone);
        }
        // A thick origin with snapshots can only grow while inactive.
        let thick_origin =
            lv.pool_lv.is_empty() && self.lvs()?.iter().any(|l| l.origin == name && l.pool_lv.is_empty());
        if thick_origin {
            if self.volume_busy(pool, id)? {
                return Err(Error::Backend(format!(
                    "lvm: {name} has snapshots and is open; LVM can grow it only while inactive"
                )));
            }
            self.run(&self.tools.lvchange, &["-an", &self.full(&name)])?;
        }
        let grown = self.run(&self.tools.lvextend, &["-L", &format!("{}b", size.bytes()), &self.full(&name)]);
        if thick_origin {
            self.run(&self.tools.lvchange, &["-ay", &self.full(&name)])?;
        }
        grown?;
        Ok(Outcome::Done)
    }

    fn volume_size(&self, pool: &str, id: Id) -> Result<Option<u64>> {
        self.check_pool(pool)?;
        Ok(self.lv(&names::volume(id))?.map(|l| l.size))
    }

    fn list_volumes(&self, pool: &str) -> Result<Vec<Id>> {
        self.check_pool(pool)?;
        Ok(self.lvs()?.iter().filter_map(|l| names::parse_volume(&l.name)).collect())
    }

    fn remove_partial(&self, pool: &str) -> Result<Vec<String>> {
        self.check_pool(pool)?;
        let mut removed = Vec::new();
        for lv in self.lvs()? {
            if names::parse_lv_partial_volume(&lv.name).is_some() {
                self.remove_lv(&lv.name)?;
                removed.push(lv.name);
            }
        }
        Ok(removed)
    }

    fn snapshot_room(&self, pool: &str, volume_bytes: u64) -> Result<u64> {
        self.check_pool(pool)?;
        Ok(if self.is_thin()? { 0 } else { thick_snapshot_bytes(volume_bytes) })
    }

    fn create_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        let name = names::lv_snapshot(snapshot);
        if self.lv(&name)?.is_some() {
            return Ok(Outcome::AlreadyDone);
        }
        let origin = names::volume(volume);
        if self.is_thin()? {
            self.run(&self.tools.lvcreate, &["--yes", "-s", "-n", &name, &self.full(&origin)])?;
        } else {
            let size = self.lv(&origin)?.ok_or_else(|| Error::Backend(format!("lvm: {origin} does not exist")))?.size;
            let cow = thick_snapshot_bytes(size);
            self.run(
                &self.tools.lvcreate,
                &["--yes", "-s", "-L", &format!("{cow}b"), "-n", &name, &self.full(&origin)],
            )?;
        }
        Ok(Outcome::Done)
    }

    fn delete_snapshot(&self, pool: &str, snapshot: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.remove_lv(&names::lv_snapshot(snapshot))
    }

    fn snapshot_exists(&self, pool: &str, snapshot: Id) -> Result<bool> {
        self.check_pool(pool)?;
        Ok(self.lv(&names::lv_snapshot(snapshot))?.is_some())
    }

    fn list_snapshots(&self, pool: &str) -> Result<Vec<Id>> {
        self.check_pool(pool)?;
        Ok(self.lvs()?.iter().filter_map(|l| names::parse_lv_snapshot(&l.name)).collect())
    }

    fn create_volume_from_snapshot(&self, pool: &str, snapshot: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        let snap = names::lv_snapshot(snapshot);
        // Thick snapshots are active; thin ones are read through their own thin
        // snapshot, which needs no activation of the source.
        self.copy_volume_from(&snap, spec)
    }

    fn clone_volume(&self, pool: &str, source: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.copy_volume_from(&names::volume(source), spec)
    }

    fn revert_to_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<()> {
        self.check_pool(pool)?;
        let snap = names::lv_snapshot(snapshot);
        // Thin snapshots are not active by default; the copy reads the device.
        if self.lv(&snap)?.is_some_and(|l| !l.is_active()) {
            self.activate(&snap)?;
        }
        self.copy_lv(&snap, &names::volume(volume), true)
    }

    /// Open now and still open two seconds later: udev opens a device briefly to
    /// probe it after every change, which is not "busy".
    fn volume_busy(&self, pool: &str, id: Id) -> Result<bool> {
        self.check_pool(pool)?;
        let lv = names::volume(id);
        for _ in 0..20 {
            if self.open_count(&lv)?.unwrap_or(0) == 0 {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(true)
    }

    fn device_path(&self, _pool: &str, id: Id) -> PathBuf {
        self.lv_path(&names::volume(id))
    }

    fn snapshot_device(&self, pool: &str, snapshot: Id) -> Result<PathBuf> {
        self.check_pool(pool)?;
        let name = names::lv_snapshot(snapshot);
        match self.lv(&name)? {
            None => return Err(Error::Backend(format!("lvm: snapshot {name} does not exist"))),
            // Thin snapshots are made with "activation skip": activate to read.
            Some(lv) if !lv.is_active() => self.activate(&name)?,
            Some(_) => {}
        }
        Ok(self.lv_path(&name))
    }

    fn tracks_changes(&self, _pool: &str) -> bool {
        // Thick snapshots are copy-on-write stores as large as their origin: keeping
        // one per volume would halve the group. Thin ones cost only what changes.
        self.is_thin().unwrap_or(false)
    }

    fn changed_ranges(&self, pool: &str, since: Id, now: Id) -> Result<Option<Vec<std::ops::Range<u64>>>> {
        self.check_pool(pool)?;
        if !self.is_thin()? {
            return Ok(None);
        }
        let now = names::lv_snapshot(now);
        let size = self.lv(&now)?.ok_or_else(|| Error::Backend(format!("lvm: snapshot {now} does not exist")))?.size;
        self.thin_changed_ranges(&names::lv_snapshot(since), &now, size)
    }

    fn new_volumes_read_zero(&self, _pool: &str) -> bool {
        // A new thin LV maps no blocks and reads as zeroes; a thick one holds
        // whatever the disk held.
        self.is_thin().unwrap_or(false)
    }

    fn check(&self) -> Result<()> {
        let (size, free) = self.vg_size_free()?;
        log::info!("lvm: volume group {}: {size} bytes, {free} free", self.vg);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        let json = r#"{"report":[{"lv":[
            {"lv_name":"hearth-thinpool","lv_size":"1073741824","lv_attr":"twi-aotz--","pool_lv":"","origin":"","data_percent":"12.50","metadata_percent":"1.02"},
            {"lv_name":"volume-1","lv_size":"2147483648","lv_attr":"Vwi-a-tz--","pool_lv":"hearth-thinpool","origin":"","data_percent":"0.00","metadata_percent":""}
        ]}]}"#;
        let rows = report_rows(json, "lv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("data_percent").and_then(parse_num), Some(12.5));
        assert_eq!(rows[1].get("metadata_percent").and_then(parse_num), None);
        let lv = Lv {
            name: text(&rows[0], "lv_name"),
            size: 1 << 30,
            attr: text(&rows[0], "lv_attr"),
            pool_lv: String::new(),
            origin: String::new(),
            data_percent: None,
            metadata_percent: None,
        };
        assert!(lv.is_thin_pool() && lv.is_active());
        assert!(report_rows("not json", "lv").is_err());
    }

    #[test]
    fn capacity_of_a_thick_group_sums_its_volumes_without_overflow() {
        let json = r#"{"report":[{"lv":[
            {"lv_name":"volume-00000000-0000-0000-0000-000000000001","lv_size":"2147483648","lv_attr":"-wi-a-----"},
            {"lv_name":"volume-00000000-0000-0000-0000-000000000002","lv_size":"1073741824","lv_attr":"-wi-a-----"},
            {"lv_name":"someone-elses","lv_size":"4096","lv_attr":"-wi-a-----"}
        ]}]}"#;
        let lvs = lvs_of_report(json).unwrap();
        let c = capacity_of("vg", false, 10 << 30, 7 << 30, &lvs);
        assert_eq!(
            (c.total_bytes, c.free_bytes, c.provisioned_bytes, c.total_volumes),
            (10 << 30, 7 << 30, 3 << 30, 2)
        );
        // Nonsense sizes (found by fuzzing: the sum overflowed) saturate.
        let huge = json.replace("2147483648", "1e19").replace("1073741824", "1e19");
        let c = capacity_of("vg", false, 10 << 30, 7 << 30, &lvs_of_report(&huge).unwrap());
        assert_eq!(c.provisioned_bytes, u64::MAX);
        assert_eq!(
            vg_size_free_of_report(r#"{"report":[{"vg":[]}]}"#, "vg").unwrap_err().to_string(),
            "lvm: volume group vg not found"
        );
    }
}
