//! [`FaultyBackend`]: a backend with the plan's faults in front of each call.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::{act, hit, random};
use crate::backend::{Backend, Footprint, Outcome, PoolCapacity, VolumeSpec};
use crate::error::Result;
use crate::ids::{Gib, Id};

/// A backend whose calls may fail, hang or answer nonsense (see [`super`]).
pub struct FaultyBackend {
    name: String,
    inner: Arc<dyn Backend>,
}

impl FaultyBackend {
    /// Wrap backend `name`.
    pub fn wrap(name: &str, inner: Arc<dyn Backend>) -> Arc<dyn Backend> {
        Arc::new(FaultyBackend { name: name.to_string(), inner })
    }

    fn act(&self, method: &str) -> Result<()> {
        act(Some(&self.name), &format!("backend.{method}"))
    }

    /// Whether a reporting call answers nonsense (or `Err` for fail and hang).
    fn report(&self, method: &str) -> Result<bool> {
        hit(Some(&self.name), &format!("backend.{method}"))
    }
}

fn made_up_ids() -> Vec<Id> {
    (0..1 + random() % 3).map(|_| Id::new()).collect()
}

impl Backend for FaultyBackend {
    fn driver(&self) -> &'static str {
        self.inner.driver()
    }

    fn pools(&self) -> Vec<String> {
        self.inner.pools()
    }

    fn capacity(&self, pool: &str) -> Result<PoolCapacity> {
        if self.report("capacity")? {
            let mut c = self.inner.capacity(pool)?;
            // More free than there is, and more volumes than exist.
            c.free_bytes = c.total_bytes.saturating_mul(3).max(random());
            c.total_volumes = random() % 1_000_000;
            return Ok(c);
        }
        self.inner.capacity(pool)
    }

    fn volume_footprint(&self, pool: &str, id: Id) -> Result<Option<Footprint>> {
        if self.report("volume_footprint")? {
            return Ok(Some(Footprint { size: random(), allocated: random() }));
        }
        self.inner.volume_footprint(pool, id)
    }

    fn refresh_usage(&self, pool: &str, figures: &mut PoolCapacity) -> Result<()> {
        if self.report("refresh_usage")? {
            figures.allocated_bytes = random();
            return Ok(());
        }
        self.inner.refresh_usage(pool, figures)
    }

    fn create_volume(&self, pool: &str, spec: &VolumeSpec) -> Result<Outcome> {
        self.act("create_volume")?;
        self.inner.create_volume(pool, spec)
    }

    fn delete_volume(&self, pool: &str, id: Id) -> Result<Outcome> {
        self.act("delete_volume")?;
        self.inner.delete_volume(pool, id)
    }

    fn extend_volume(&self, pool: &str, id: Id, size: Gib) -> Result<Outcome> {
        self.act("extend_volume")?;
        self.inner.extend_volume(pool, id, size)
    }

    fn volume_size(&self, pool: &str, id: Id) -> Result<Option<u64>> {
        if self.report("volume_size")? {
            return Ok(Some(random()));
        }
        self.inner.volume_size(pool, id)
    }

    fn list_volumes(&self, pool: &str) -> Result<Vec<Id>> {
        if self.report("list_volumes")? {
            return Ok(made_up_ids());
        }
        self.inner.list_volumes(pool)
    }

    fn remove_partial(&self, pool: &str) -> Result<Vec<String>> {
        self.act("remove_partial")?;
        self.inner.remove_partial(pool)
    }

    fn device_path(&self, pool: &str, id: Id) -> PathBuf {
        self.inner.device_path(pool, id)
    }

    fn snapshot_room(&self, pool: &str, volume_bytes: u64) -> Result<u64> {
        if self.report("snapshot_room")? {
            return Ok(random());
        }
        self.inner.snapshot_room(pool, volume_bytes)
    }

    fn create_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<Outcome> {
        self.act("create_snapshot")?;
        self.inner.create_snapshot(pool, volume, snapshot)
    }

    fn delete_snapshot(&self, pool: &str, snapshot: Id) -> Result<Outcome> {
        self.act("delete_snapshot")?;
        self.inner.delete_snapshot(pool, snapshot)
    }

    fn snapshot_exists(&self, pool: &str, snapshot: Id) -> Result<bool> {
        if self.report("snapshot_exists")? {
            return Ok(random().is_multiple_of(2));
        }
        self.inner.snapshot_exists(pool, snapshot)
    }

    fn list_snapshots(&self, pool: &str) -> Result<Vec<Id>> {
        if self.report("list_snapshots")? {
            return Ok(made_up_ids());
        }
        self.inner.list_snapshots(pool)
    }

    fn create_volume_from_snapshot(&self, pool: &str, snapshot: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.act("create_volume_from_snapshot")?;
        self.inner.create_volume_from_snapshot(pool, snapshot, spec)
    }

    fn clone_volume(&self, pool: &str, source: Id, spec: &VolumeSpec) -> Result<Outcome> {
        self.act("clone_volume")?;
        self.inner.clone_volume(pool, source, spec)
    }

    fn revert_to_snapshot(&self, pool: &str, volume: Id, snapshot: Id) -> Result<()> {
        self.act("revert_to_snapshot")?;
        self.inner.revert_to_snapshot(pool, volume, snapshot)
    }

    fn volume_busy(&self, pool: &str, id: Id) -> Result<bool> {
        if self.report("volume_busy")? {
            return Ok(random().is_multiple_of(2));
        }
        self.inner.volume_busy(pool, id)
    }

    fn snapshot_device(&self, pool: &str, snapshot: Id) -> Result<PathBuf> {
        self.act("snapshot_device")?;
        self.inner.snapshot_device(pool, snapshot)
    }

    fn new_volumes_read_zero(&self, pool: &str) -> bool {
        self.inner.new_volumes_read_zero(pool)
    }

    fn tracks_changes(&self, pool: &str) -> bool {
        self.inner.tracks_changes(pool)
    }

    fn changed_ranges(&self, pool: &str, since: Id, now: Id) -> Result<Option<Vec<Range<u64>>>> {
        if self.report("changed_ranges")? {
            // Ranges that miss changes would make an incremental backup wrong: a
            // nonsense answer here is one that claims nothing is known instead.
            return Ok(None);
        }
        self.inner.changed_ranges(pool, since, now)
    }

    fn check(&self) -> Result<()> {
        self.act("check")?;
        self.inner.check()
    }
}
