//! The `file` backend: each volume is a sparse file in a directory.
//!
//! This is hearth's embedded default; it needs no root and no kernel support. A
//! volume `volume-<uuid>` is made as `.partial-volume-<uuid>`, sized (and, when thick,
//! allocated), synced, then renamed into place, so a crash never leaves a half-made
//! file under a volume's name. Snapshots (`snapshot-<uuid>`), clones, volumes from
//! snapshots and reverts are copies made the same way.
//!
//! Copies are reflinks (`FICLONE`: shared extents, instant, on XFS, btrfs and the
//! like) where the filesystem supports them, found by a probe at start-up, and sparse
//! copies otherwise (only the written ranges, found with `SEEK_DATA`/`SEEK_HOLE`, are
//! copied, with `copy_file_range`). The pool's `copy_method` capability says which.
//! Only files named by [`crate::names`] are ever touched.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{copy_file_range, fallocate, FallocateFlags};
use nix::sys::statvfs::statvfs;
use nix::unistd::{lseek, Whence};

use crate::backend::{Backend, Footprint, Outcome, PoolCapacity, VolumeSpec};
use crate::config::{BackendConfig, Config, VolumeClear};
use crate::error::{Error, Result};
use crate::ids::{Gib, Id};
use crate::names;

/// How a pool copies data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMethod {
    /// `FICLONE`: the copy shares the source's extents.
    Reflink,
    /// Only written ranges are copied; holes stay holes.
    SparseCopy,
}

impl CopyMethod {
    /// The capability value.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyMethod::Reflink => "reflink",
            CopyMethod::SparseCopy => "sparse-copy",
        }
    }
}

// FICLONE is _IOW(0x94, 9, int): the source descriptor is passed by value.
nix::ioctl_write_int!(ficlone, 0x94, 9);

/// Sparse files in one directory, one pool.
pub struct FileBackend {
    pool: String,
    dir: PathBuf,
    size_gb: Option<u64>,
    volume_clear: VolumeClear,
    volume_clear_size_mib: u64,
    copy_method: CopyMethod,
}

fn io_err(what: impl std::fmt::Display, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("file backend: {what} {}: {e}", path.display()))
}

impl FileBackend {
    /// Free space: what the pool's size leaves after the volumes' blocks, at most what
    /// the file system has.
    fn free(total: u64, allocated: u64, fs_avail: u64) -> u64 {
        total.saturating_sub(allocated).min(fs_avail)
    }

    /// A file backend from its table; the directory is created if missing.
    pub fn new(config: &Config, name: &str, b: &BackendConfig) -> Result<FileBackend> {
        let dir = b.path.clone().unwrap_or_else(|| config.data_dir().join("volumes").join(name));
        fs::create_dir_all(&dir).map_err(|e| io_err("creating directory", &dir, e))?;
        let copy_method = Self::probe_reflink(&dir);
        log::info!("file backend {name}: {} copies in {}", copy_method.as_str(), dir.display());
        Ok(FileBackend {
            pool: config.pool_name(name),
            dir,
            size_gb: b.size_gb,
            volume_clear: b.volume_clear,
            volume_clear_size_mib: b.volume_clear_size,
            copy_method,
        })
    }

    /// Whether the directory's filesystem can reflink: clone a small probe file.
    fn probe_reflink(dir: &Path) -> CopyMethod {
        let (a, b) = (dir.join(".hearth-reflink-probe-a"), dir.join(".hearth-reflink-probe-b"));
        let result = (|| -> io::Result<bool> {
            fs::write(&a, [1u8; 4096])?;
            let src = File::open(&a)?;
            let dst = OpenOptions::new().write(true).create(true).truncate(true).open(&b)?;
            use std::os::fd::AsRawFd;
            // SAFETY: both descriptors are open files owned by this function for the
            // duration of the call; FICLONE reads only the source descriptor number.
            Ok(unsafe { ficlone(dst.as_raw_fd(), src.as_raw_fd() as _) }.is_ok())
        })();
        let _ = fs::remove_file(&a);
        let _ = fs::remove_file(&b);
        match result {
            Ok(true) => CopyMethod::Reflink,
            _ => CopyMethod::SparseCopy,
        }
    }

    /// The method this pool copies with.
    pub fn copy_method(&self) -> CopyMethod {
        self.copy_method
    }

    /// Copy `src` to a new file `dst` (replaced if present) with the pool's method,
    /// then size it to at least `min_len` and sync it.
    fn copy_into(&self, src: &Path, dst: &Path, min_len: u64) -> Result<()> {
        let from = File::open(src).map_err(|e| io_err("opening", src, e))?;
        let len = from.metadata().map_err(|e| io_err("measuring", src, e))?.len();
        let to = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dst)
            .map_err(|e| io_err("creating", dst, e))?;
        match self.copy_method {
            CopyMethod::Reflink => {
                use std::os::fd::AsRawFd;
                // SAFETY: `from` and `to` are open for the whole call; FICLONE makes
                // `to` share `from`'s extents and touches no memory of ours.
                unsafe { ficlone(to.as_raw_fd(), from.as_raw_fd() as _) }
                    .map_err(|e| io_err("reflinking into", dst, e))?;
            }
            CopyMethod::SparseCopy => Self::sparse_copy(&from, src, &to, dst, len)?,
        }
        to.set_len(len.max(min_len)).map_err(|e| io_err("sizing", dst, e))?;
        to.sync_all().map_err(|e| io_err("syncing", dst, e))
    }

    /// Copy the written ranges of `from` into `to` at the same offsets.
    fn sparse_copy(from: &File, src: &Path, to: &File, dst: &Path, len: u64) -> Result<()> {
        let mut pos: u64 = 0;
        while pos < len {
            let data = match lseek(from, pos as i64, Whence::SeekData) {
                Ok(off) => off as u64,
                Err(nix::errno::Errno::ENXIO) => break,
                Err(e) => return Err(io_err("seeking data in", src, e)),
            };
            let hole =
                lseek(from, data as i64, Whence::SeekHole).map_err(|e| io_err("seeking hole in", src, e))? as u64;
            let (mut off_in, mut off_out) = (data as i64, data as i64);
            let mut left = (hole - data) as usize;
            while left > 0 {
                let n = copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), left)
                    .map_err(|e| io_err("copying into", dst, e))?;
                if n == 0 {
                    break;
                }
                left -= n;
            }
            pos = hole;
        }
        Ok(())
    }

    fn snapshot_path(&self, id: Id) -> PathBuf {
        self.dir.join(names::snapshot(id))
    }

    /// Make `final_path` from `source` through a partial file (atomic rename).
    fn copy_to_new(&self, source: &Path, partial: &Path, final_path: &Path, min_len: u64) -> Result<()> {
        if let Err(e) = self.copy_into(source, partial, min_len) {
            let _ = fs::remove_file(partial);
            return Err(e);
        }
        fs::rename(partial, final_path).map_err(|e| io_err("renaming into place", partial, e))?;
        self.sync_dir()
    }

    /// Remove a file, wiping it first as configured; done when it is already gone.
    fn remove_wiped(&self, path: &Path) -> Result<Outcome> {
        let file = match OpenOptions::new().write(true).open(path) {
            Ok(f) => f,
            // No such file, or no such directory to hold it: nothing to delete.
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(Outcome::AlreadyDone)
            }
            Err(e) => return Err(io_err("opening", path, e)),
        };
        if self.volume_clear == VolumeClear::Zero {
            let len = file.metadata().map_err(|e| io_err("measuring", path, e))?.len();
            let limit = match self.volume_clear_size_mib {
                0 => u64::MAX,
                mib => mib << 20,
            };
            Self::wipe(&file, path, len, limit)?;
        }
        drop(file);
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::AlreadyDone),
            Err(e) => return Err(io_err("removing", path, e)),
        }
        self.sync_dir()?;
        Ok(Outcome::Done)
    }

    fn list_named(&self, parse: fn(&str) -> Option<Id>) -> Result<Vec<Id>> {
        let entries = fs::read_dir(&self.dir).map_err(|e| io_err("listing", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("listing", &self.dir, e))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse) {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn check_pool(&self, pool: &str) -> Result<()> {
        if pool == self.pool {
            Ok(())
        } else {
            Err(Error::Backend(format!("file backend: no pool named {pool}")))
        }
    }

    fn path(&self, id: Id) -> PathBuf {
        self.dir.join(names::volume(id))
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io_err("syncing directory", &self.dir, e))
    }

    /// Overwrite the written regions of `file` (up to `limit` bytes from the start)
    /// with zeroes. Holes already read as zero and are skipped.
    fn wipe(file: &File, path: &Path, len: u64, limit: u64) -> Result<()> {
        let end = len.min(limit);
        let zeros = vec![0u8; 1 << 20];
        let mut pos: u64 = 0;
        while pos < end {
            let data = match lseek(file, pos as i64, Whence::SeekData) {
                Ok(off) => off as u64,
                Err(nix::errno::Errno::ENXIO) => break, // no data after pos
                Err(e) => return Err(io_err("seeking data in", path, e)),
            };
            if data >= end {
                break;
            }
            let hole = match lseek(file, data as i64, Whence::SeekHole) {
                Ok(off) => (off as u64).min(end),
                Err(e) => return Err(io_err("seeking hole in", path, e)),
            };
            let mut off = data;
            while off < hole {
                let n = ((hole - off) as usize).min(zeros.len());
                file.write_all_at(&zeros[..n], off).map_err(|e| io_err("wiping", path, e))?;
                off += n as u64;
            }
            pos = hole;
        }
        file.sync_data().map_err(|e| io_err("syncing", path, e))
    }

    fn allocate(file: &File, path: &Path, from: u64, to: u64) -> Result<()> {
        if to > from {
            fallocate(file, FallocateFlags::empty(), from as i64, (to - from) as i64)
                .map_err(|e| io_err("allocating", path, e))?;
        }
        Ok(())
    }
}

impl FileBackend {
    fn copy_volume_from(&self, source: &Path, spec: &VolumeSpec) -> Result<Outcome> {
        let final_path = self.path(spec.id);
        if let Ok(md) = fs::metadata(&final_path) {
            if md.len() >= spec.size.bytes() {
                return Ok(Outcome::AlreadyDone);
            }
        }
        let partial = self.dir.join(names::partial_volume(spec.id));
        self.copy_to_new(source, &partial, &final_path, spec.size.bytes())?;
        if spec.thick {
            let f = OpenOptions::new().write(true).open(&final_path).map_err(|e| io_err("opening", &final_path, e))?;
            Self::allocate(&f, &final_path, 0, spec.size.bytes())?;
        }
        Ok(Outcome::Done)
    }
}

impl Backend for FileBackend {
    fn driver(&self) -> &'static str {
        "file"
    }

    fn pools(&self) -> Vec<String> {
        vec![self.pool.clone()]
    }

    fn capacity(&self, pool: &str) -> Result<PoolCapacity> {
        self.check_pool(pool)?;
        let vfs = statvfs(&self.dir).map_err(|e| io_err("measuring", &self.dir, e))?;
        let frsize = vfs.fragment_size() as u64;
        let fs_total = vfs.blocks() as u64 * frsize;
        let fs_avail = vfs.blocks_available() as u64 * frsize;
        let (mut provisioned, mut allocated, mut count) = (0u64, 0u64, 0u64);
        for id in self.list_volumes(pool)? {
            if let Ok(md) = fs::metadata(self.path(id)) {
                provisioned += md.len();
                allocated += md.blocks() * 512;
                count += 1;
            }
        }
        let total = self.size_gb.map(|g| g << 30).unwrap_or(fs_total);
        Ok(PoolCapacity {
            total_bytes: total,
            free_bytes: Self::free(total, allocated, fs_avail),
            provisioned_bytes: provisioned,
            allocated_bytes: allocated,
            total_volumes: count,
            thin_provisioning_support: true,
            thick_provisioning_support: true,
            extra: [("copy_method".to_string(), serde_json::json!(self.copy_method.as_str()))].into_iter().collect(),
        })
    }

    fn volume_footprint(&self, pool: &str, id: Id) -> Result<Option<Footprint>> {
        self.check_pool(pool)?;
        let path = self.path(id);
        match fs::metadata(&path) {
            Ok(md) => Ok(Some(Footprint { size: md.len(), allocated: md.blocks() * 512 })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("measuring", &path, e)),
        }
    }

    fn refresh_usage(&self, pool: &str, figures: &mut PoolCapacity) -> Result<()> {
        self.check_pool(pool)?;
        let vfs = statvfs(&self.dir).map_err(|e| io_err("measuring", &self.dir, e))?;
        let fs_avail = vfs.blocks_available() as u64 * vfs.fragment_size() as u64;
        figures.free_bytes = Self::free(figures.total_bytes, figures.allocated_bytes, fs_avail);
        Ok(())
    }

    fn create_volume(&self, pool: &str, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        let final_path = self.path(spec.id);
        if let Ok(md) = fs::metadata(&final_path) {
            if md.len() >= spec.size.bytes() {
                return Ok(Outcome::AlreadyDone);
            }
            return Err(io_err("a smaller volume file already exists at", &final_path, md.len()));
        }
        let partial = self.dir.join(names::partial_volume(spec.id));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)
            .map_err(|e| io_err("creating", &partial, e))?;
        let made = (|| {
            file.set_len(spec.size.bytes()).map_err(|e| io_err("sizing", &partial, e))?;
            if spec.thick {
                Self::allocate(&file, &partial, 0, spec.size.bytes())?;
            }
            file.sync_all().map_err(|e| io_err("syncing", &partial, e))?;
            fs::rename(&partial, &final_path).map_err(|e| io_err("renaming into place", &partial, e))
        })();
        if let Err(e) = made {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        self.sync_dir()?;
        Ok(Outcome::Done)
    }

    fn delete_volume(&self, pool: &str, id: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.remove_wiped(&self.path(id))
    }

    fn extend_volume(&self, pool: &str, id: Id, size: Gib) -> Result<Outcome> {
        self.check_pool(pool)?;
        let path = self.path(id);
        let file = OpenOptions::new().write(true).open(&path).map_err(|e| io_err("opening", &path, e))?;
        let md = file.metadata().map_err(|e| io_err("measuring", &path, e))?;
        let len = md.len();
        if len >= size.bytes() {
            return Ok(Outcome::AlreadyDone);
        }
        // A thick volume (fully allocated) stays thick when it grows.
        let thick = md.blocks() * 512 >= len && len > 0;
        file.set_len(size.bytes()).map_err(|e| io_err("growing", &path, e))?;
        if thick {
            Self::allocate(&file, &path, len, size.bytes())?;
        }
        file.sync_all().map_err(|e| io_err("syncing", &path, e))?;
        Ok(Outcome::Done)
    }

    fn volume_size(&self, pool: &str, id: Id) -> Result<Option<u64>> {
        self.check_pool(pool)?;
        let path = self.path(id);
        match fs::metadata(&path) {
            Ok(md) => Ok(Some(md.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("measuring", &path, e)),
        }
    }

    fn list_volumes(&self, pool: &str) -> Result<Vec<Id>> {
        self.check_pool(pool)?;
        self.list_named(names::parse_volume)
    }

    fn remove_partial(&self, pool: &str) -> Result<Vec<String>> {
        self.check_pool(pool)?;
        let entries = fs::read_dir(&self.dir).map_err(|e| io_err("listing", &self.dir, e))?;
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("listing", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if names::is_partial(name) {
                fs::remove_file(entry.path()).map_err(|e| io_err("removing", &entry.path(), e))?;
                removed.push(name.to_string());
            }
        }
        Ok(removed)
    }

    fn create_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        let final_path = self.snapshot_path(snapshot);
        if final_path.exists() {
            return Ok(Outcome::AlreadyDone);
        }
        let partial = self.dir.join(names::partial_snapshot(snapshot));
        self.copy_to_new(&self.path(volume), &partial, &final_path, 0)?;
        Ok(Outcome::Done)
    }

    fn delete_snapshot(&self, pool: &str, snapshot: Id) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.remove_wiped(&self.snapshot_path(snapshot))
    }

    fn snapshot_exists(&self, pool: &str, snapshot: Id) -> Result<bool> {
        self.check_pool(pool)?;
        Ok(self.snapshot_path(snapshot).exists())
    }

    fn list_snapshots(&self, pool: &str) -> Result<Vec<Id>> {
        self.check_pool(pool)?;
        self.list_named(names::parse_snapshot)
    }

    fn create_volume_from_snapshot(&self, pool: &str, snapshot: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.copy_volume_from(&self.snapshot_path(snapshot), spec)
    }

    fn clone_volume(&self, pool: &str, source: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.check_pool(pool)?;
        self.copy_volume_from(&self.path(source), spec)
    }

    fn revert_to_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<()> {
        self.check_pool(pool)?;
        let target = self.path(volume);
        let len = fs::metadata(&target).map_err(|e| io_err("measuring", &target, e))?.len();
        let partial = self.dir.join(names::partial_volume(volume));
        // The volume is replaced in one rename: it holds either its old data or the
        // snapshot's, never a mix.
        self.copy_to_new(&self.snapshot_path(snapshot), &partial, &target, len)
    }

    fn device_path(&self, _pool: &str, id: Id) -> PathBuf {
        self.path(id)
    }

    fn snapshot_device(&self, pool: &str, snapshot: Id) -> Result<PathBuf> {
        self.check_pool(pool)?;
        let path = self.snapshot_path(snapshot);
        fs::metadata(&path).map_err(|e| io_err("opening", &path, e))?;
        Ok(path)
    }

    fn new_volumes_read_zero(&self, _pool: &str) -> bool {
        // Thick volumes are allocated with fallocate, which reads as zeroes too.
        true
    }

    fn check(&self) -> Result<()> {
        let probe = self.dir.join(".hearth-write-check");
        fs::write(&probe, b"").map_err(|e| io_err("writing in", &self.dir, e))?;
        fs::remove_file(&probe).map_err(|e| io_err("removing", &probe, e))?;
        statvfs(&self.dir).map_err(|e| io_err("measuring", &self.dir, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn backend(dir: &Path, clear: &str) -> FileBackend {
        let text = format!(
            "data_dir = {:?}\n[backends.f]\ndriver = \"file\"\nsize_gb = 10\nvolume_clear = \"{clear}\"\n",
            dir.display().to_string()
        );
        let c = Config::parse(&text, "t").unwrap();
        FileBackend::new(&c, "f", &c.backends["f"]).unwrap()
    }

    #[test]
    fn create_is_sparse_idempotent_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), "zero");
        let id = Id::new();
        let spec = VolumeSpec { id, size: Gib::new(1).unwrap(), thick: false };
        assert_eq!(b.create_volume("f", &spec).unwrap(), Outcome::Done);
        assert_eq!(b.create_volume("f", &spec).unwrap(), Outcome::AlreadyDone);
        let md = fs::metadata(b.device_path("f", id)).unwrap();
        assert_eq!(md.len(), 1 << 30);
        assert!(md.blocks() * 512 < 1 << 20, "not sparse: {} blocks", md.blocks());
        assert_eq!(b.list_volumes("f").unwrap(), vec![id]);
        let cap = b.capacity("f").unwrap();
        assert_eq!(cap.total_bytes, 10 << 30);
        assert_eq!(cap.provisioned_bytes, 1 << 30);
        assert_eq!(cap.total_volumes, 1);
        assert!(b.create_volume("other", &spec).is_err());
    }

    #[test]
    fn thick_volumes_are_allocated_and_stay_thick_when_grown() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), "none");
        let id = Id::new();
        let spec = VolumeSpec { id, size: Gib::new(1).unwrap(), thick: true };
        b.create_volume("f", &spec).unwrap();
        let md = fs::metadata(b.device_path("f", id)).unwrap();
        assert!(md.blocks() * 512 >= 1 << 30);
        assert_eq!(b.extend_volume("f", id, Gib::new(2).unwrap()).unwrap(), Outcome::Done);
        let md = fs::metadata(b.device_path("f", id)).unwrap();
        assert_eq!(md.len(), 2 << 30);
        assert!(md.blocks() * 512 >= 2 << 30);
        assert_eq!(b.extend_volume("f", id, Gib::new(1).unwrap()).unwrap(), Outcome::AlreadyDone);
    }

    #[test]
    fn delete_wipes_written_data_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), "zero");
        let id = Id::new();
        b.create_volume("f", &VolumeSpec { id, size: Gib::new(1).unwrap(), thick: false }).unwrap();
        let path = b.device_path("f", id);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"secret data", 12345).unwrap();
        f.write_all_at(b"more secret", 500 << 20).unwrap();
        // Keep a second link so the wiped inode can be read after the unlink.
        let keep = dir.path().join("keep");
        fs::hard_link(&path, &keep).unwrap();
        assert_eq!(b.delete_volume("f", id).unwrap(), Outcome::Done);
        assert_eq!(b.delete_volume("f", id).unwrap(), Outcome::AlreadyDone);
        let mut buf = Vec::new();
        File::open(&keep).unwrap().read_to_end(&mut buf).unwrap();
        assert!(buf.iter().all(|&c| c == 0), "data survived the wipe");
        assert!(b.list_volumes("f").unwrap().is_empty());
    }

    #[test]
    fn partial_files_are_removed_and_foreign_files_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path(), "zero");
        let vols = dir.path().join("volumes/f");
        let id = Id::new();
        fs::write(vols.join(names::partial_volume(id)), b"half").unwrap();
        fs::write(vols.join("precious.img"), b"not ours").unwrap();
        assert_eq!(b.remove_partial("f").unwrap(), vec![names::partial_volume(id)]);
        assert!(vols.join("precious.img").exists());
        assert!(b.list_volumes("f").unwrap().is_empty());
    }
}

#[cfg(test)]
mod copy_tests {
    use super::*;

    #[test]
    fn copies_hold_the_source_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("data_dir = {:?}\n[backends.f]\ndriver = \"file\"\n", dir.path().display().to_string());
        let c = Config::parse(&text, "t").unwrap();
        let b = FileBackend::new(&c, "f", &c.backends["f"]).unwrap();
        let src = Id::new();
        b.create_volume("f", &VolumeSpec { id: src, size: Gib::new(1).unwrap(), thick: false }).unwrap();
        let f = OpenOptions::new().write(true).open(b.device_path("f", src)).unwrap();
        f.write_all_at(&[7u8; 1 << 20], 0).unwrap();
        f.write_all_at(b"end", (1 << 30) - 3).unwrap();
        f.sync_all().unwrap();
        let snap = Id::new();
        b.create_snapshot("f", src, snap).unwrap();
        let clone = Id::new();
        b.clone_volume("f", src, &VolumeSpec { id: clone, size: Gib::new(2).unwrap(), thick: false }).unwrap();
        for path in [b.snapshot_path(snap), b.device_path("f", clone)] {
            let f = File::open(&path).unwrap();
            let mut head = vec![0u8; 1 << 20];
            f.read_exact_at(&mut head, 0).unwrap();
            assert!(head.iter().all(|&x| x == 7), "{} via {:?}", path.display(), b.copy_method());
            let mut tail = [0u8; 3];
            f.read_exact_at(&mut tail, (1 << 30) - 3).unwrap();
            assert_eq!(&tail, b"end");
        }
        assert_eq!(fs::metadata(b.device_path("f", clone)).unwrap().len(), 2 << 30);
    }
}
