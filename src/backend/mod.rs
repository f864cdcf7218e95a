//! The seam between hearth and the storage it carves volumes out of.
//!
//! A [`Backend`] owns one or more *pools* and makes, grows and removes volumes in them.
//! The core sees only this trait; the implementation is chosen by the `driver` key of
//! a `[backends.NAME]` table. Every operation is idempotent: creating a volume that is
//! already complete, or deleting one that is already gone, succeeds and says so
//! ([`Outcome`]), which is what makes start-up reconcile and retries safe.
//!
//! Implementations are synchronous; the core runs them off the request threads.

pub mod dm;
pub mod file;
pub mod lvm;
pub mod thin_delta;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{BackendConfig, Config, Driver};
use crate::error::Result;
use crate::ids::{Gib, Id};

/// What an idempotent operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It changed something.
    Done,
    /// It found the work already done and changed nothing.
    AlreadyDone,
}

/// A pool's capacity as the backend measures it, in bytes.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolCapacity {
    /// The pool's size.
    pub total_bytes: u64,
    /// Physically free space.
    pub free_bytes: u64,
    /// Sum of the virtual sizes of hearth's volumes in the pool.
    pub provisioned_bytes: u64,
    /// Space physically used by hearth's volumes.
    pub allocated_bytes: u64,
    /// Number of hearth's volumes in the pool.
    pub total_volumes: u64,
    /// Whether thin (over-subscribed) volumes are possible.
    pub thin_provisioning_support: bool,
    /// Whether thick (fully allocated) volumes are possible.
    pub thick_provisioning_support: bool,
    /// Driver-specific capabilities shown in the pool list.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What one volume takes of its pool, measured on that volume alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Its virtual size.
    pub size: u64,
    /// The space it holds by itself (a thin LV's blocks are the pool's: 0).
    pub allocated: u64,
}

impl PoolCapacity {
    /// Apply one volume's change (`before` → `after`; `None`: no volume) to these
    /// figures, the way a full measurement would see it: provisioned and allocated
    /// move by the difference, free by the allocation's.
    pub fn apply(&mut self, before: Option<Footprint>, after: Option<Footprint>) {
        let (b, a) = (before.unwrap_or_default(), after.unwrap_or_default());
        self.provisioned_bytes = (self.provisioned_bytes + a.size).saturating_sub(b.size);
        self.allocated_bytes = (self.allocated_bytes + a.allocated).saturating_sub(b.allocated);
        self.free_bytes = (self.free_bytes + b.allocated).saturating_sub(a.allocated).min(self.total_bytes);
        self.total_volumes =
            (self.total_volumes + u64::from(after.is_some())).saturating_sub(u64::from(before.is_some()));
    }
}

/// How a new volume is to be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Its id (hence its host-side name, see [`crate::names`]).
    pub id: Id,
    /// Its size.
    pub size: Gib,
    /// Allocate all of it now (`provisioning:type=thick`).
    pub thick: bool,
}

/// A volume storage implementation.
pub trait Backend: Send + Sync {
    /// The driver's name (`file`, `lvm`).
    fn driver(&self) -> &'static str;

    /// The names of the pools this backend serves.
    fn pools(&self) -> Vec<String>;

    /// Measure a pool.
    fn capacity(&self, pool: &str) -> Result<PoolCapacity>;

    /// One volume's footprint (`None`: there is no such volume), at a cost that does
    /// not grow with the number of volumes in the pool (one `stat`, one device-mapper
    /// table read).
    fn volume_footprint(&self, pool: &str, id: Id) -> Result<Option<Footprint>>;

    /// Bring figures adjusted by [`PoolCapacity::apply`] back in line with what the
    /// pool reports of itself, at a constant cost: a thin pool's data usage, a file
    /// system's free space. Nothing by default.
    fn refresh_usage(&self, _pool: &str, _figures: &mut PoolCapacity) -> Result<()> {
        Ok(())
    }

    /// Make a volume; [`Outcome::AlreadyDone`] when a complete volume of at least that
    /// size already exists. A half-made volume is never visible under the final name.
    fn create_volume(&self, pool: &str, spec: &VolumeSpec) -> Result<Outcome>;

    /// Remove a volume, wiping it first as configured; [`Outcome::AlreadyDone`] when
    /// it is already gone.
    fn delete_volume(&self, pool: &str, id: Id) -> Result<Outcome>;

    /// Grow a volume to `size` (never shrinks; growing to the current size is done).
    fn extend_volume(&self, pool: &str, id: Id, size: Gib) -> Result<Outcome>;

    /// The size in bytes of a complete volume, or `None` when there is none.
    fn volume_size(&self, pool: &str, id: Id) -> Result<Option<u64>>;

    /// The ids of every complete hearth volume in a pool.
    fn list_volumes(&self, pool: &str) -> Result<Vec<Id>>;

    /// Remove objects left half-made by an interrupted create; returns their names.
    fn remove_partial(&self, pool: &str) -> Result<Vec<String>>;

    /// Where a volume's data can be opened on this host.
    fn device_path(&self, pool: &str, id: Id) -> PathBuf;

    /// Bytes of the pool's free space that a snapshot of a volume of `volume_bytes`
    /// takes at once when it is made (a thick LVM snapshot's exception store); 0 when
    /// a snapshot shares its origin's blocks or takes only what is written later, so
    /// that nothing can be known, or refused, up front.
    fn snapshot_room(&self, _pool: &str, _volume_bytes: u64) -> Result<u64> {
        Ok(0)
    }

    /// Take a snapshot of a volume; [`Outcome::AlreadyDone`] when it exists.
    fn create_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<Outcome>;

    /// Remove a snapshot (wiped as volumes are); done when already gone.
    fn delete_snapshot(&self, pool: &str, snapshot: Id) -> Result<Outcome>;

    /// Whether a complete snapshot exists.
    fn snapshot_exists(&self, pool: &str, snapshot: Id) -> Result<bool>;

    /// The ids of every complete hearth snapshot in a pool.
    fn list_snapshots(&self, pool: &str) -> Result<Vec<Id>>;

    /// Make a volume holding a snapshot's data, grown to `spec.size`. Like
    /// [`Backend::create_volume`], never visible under its name until complete.
    fn create_volume_from_snapshot(&self, pool: &str, snapshot: Id, spec: &VolumeSpec) -> Result<Outcome>;

    /// Make a volume holding another volume's data, grown to `spec.size`.
    fn clone_volume(&self, pool: &str, source: Id, spec: &VolumeSpec) -> Result<Outcome>;

    /// Put a snapshot's data back into its volume (which keeps its current size).
    fn revert_to_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<()>;

    /// Whether something on this host holds the volume open (it must not be deleted).
    fn volume_busy(&self, _pool: &str, _id: Id) -> Result<bool> {
        Ok(false)
    }

    /// Where a snapshot's data can be read on this host (a backup reads it), made
    /// readable first when it needs to be (a thin LV snapshot is activated).
    fn snapshot_device(&self, pool: &str, snapshot: Id) -> Result<PathBuf>;

    /// Whether a volume just made by [`Backend::create_volume`] reads as zeroes
    /// everywhere (a sparse file, a thin LV), so that a restore into it may skip
    /// writing zeroes. `false` is always safe.
    fn new_volumes_read_zero(&self, _pool: &str) -> bool {
        false
    }

    /// Whether [`Backend::changed_ranges`] can tell what changed between two snapshots
    /// of a volume in this pool without reading them (thin LVM). A backup then keeps
    /// the snapshot it read, for the next incremental backup to compare with.
    fn tracks_changes(&self, _pool: &str) -> bool {
        false
    }

    /// The byte ranges of snapshot `now` that may differ from snapshot `since` (both
    /// of the same volume), when the backend can tell without reading them; `None`:
    /// it cannot, and an incremental backup reads everything and compares chunk
    /// hashes with its parent's.
    ///
    /// Thin LVM asks the pool's metadata (`thin_delta` on a metadata snapshot): two
    /// blocks are reported the same only when both snapshots map the same data block
    /// (or neither maps it), so a range left out never differs.
    fn changed_ranges(&self, _pool: &str, _since: Id, _now: Id) -> Result<Option<Vec<Range<u64>>>> {
        Ok(None)
    }

    /// Verify that the backend can work (directories, tools, volume groups).
    fn check(&self) -> Result<()>;
}

/// Build the backend a configuration table describes.
pub fn from_config(config: &Config, name: &str, b: &BackendConfig) -> Result<Arc<dyn Backend>> {
    match b.driver {
        Driver::File => Ok(Arc::new(file::FileBackend::new(config, name, b)?)),
        Driver::Lvm => Ok(Arc::new(lvm::LvmBackend::new(b)?)),
    }
}
