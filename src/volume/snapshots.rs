//! Snapshots: create, show, list, update, delete, metadata and status actions, and
//! reverting a volume to its latest snapshot.
//!
//! A snapshot lives on its volume's pool. Its sizes count toward the `gigabytes` and
//! `snapshots` quotas. As with volumes, backend work is recorded as the snapshot's
//! task before it starts and finished (or undone) by reconcile after a crash.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::events::{event, Resource as Ev};
use crate::ids::{Id, Timestamp};
use crate::model::{Snapshot, SnapshotStatus, Task, Volume, VolumeStatus};
use crate::policy::rules;
use crate::query::SnapshotQuery;
use crate::store::{quotas as q, snapshots as ss, volumes as sv};
use crate::volume::messages::{action, detail, detail_for, Origin, Resource};
use crate::volume::quotas::snapshot_needs;
use crate::volume::{Caller, Core, MetadataWrite};

/// A snapshot to take.
#[derive(Clone, Debug, Default)]
pub struct NewSnapshot {
    /// The volume.
    pub volume_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// `force`, as given (`None`: not given).
    pub force: Option<bool>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Changes to a snapshot.
#[derive(Clone, Debug, Default)]
pub struct SnapshotUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
}

/// A pool's charge for snapshots being taken (see [`Core::reserve_snapshot_room`]).
#[derive(Debug)]
pub(crate) struct RoomCharge {
    pool: String,
    gb: u64,
    bytes: u64,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Snapshot {id} could not be found."))
}

impl Core {
    /// Load a snapshot the caller may see (another project's is 404), and refuse
    /// (403) unless policy lets the caller do `rule` on it.
    pub fn snapshot_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<Snapshot> {
        let sid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match ss::get(conn, sid)? {
            Some(s) if caller.is_admin || s.project_id == caller.project_id => {
                caller.authorize(rule, &s.project_id)?;
                Ok(s)
            }
            _ => Err(not_found(id)),
        }
    }

    fn change_snapshot<T>(
        &self,
        caller: &Caller,
        id: &str,
        rule: &str,
        mut f: impl FnMut(&Connection, &mut Snapshot) -> Result<T>,
    ) -> Result<(Snapshot, T)> {
        self.store.write(|tx| {
            let mut s = self.snapshot_in(tx, caller, id, rule)?;
            let out = f(tx, &mut s)?;
            s.updated_at = Timestamp::now();
            ss::save(tx, &s)?;
            Ok((s, out))
        })
    }

    /// Take a snapshot: checked, quota reserved and recorded now; made in the
    /// background. In-use volumes need `force` before 3.66; from 3.66 `force=false`
    /// is refused and `force=true` ignored, as Cinder does.
    pub fn create_snapshot(self: &Arc<Core>, caller: &Caller, req: NewSnapshot, v366: bool) -> Result<Snapshot> {
        if v366 && req.force == Some(false) {
            return Err(Error::Invalid(
                "Invalid input received: the 'force' flag is not valid for snapshots from microversion 3.66.".into(),
            ));
        }
        let charged = std::cell::RefCell::new(None);
        // Placements wait for the pools' first measurements at start-up: wait here,
        // not inside the transaction, where every other request's writes would wait too.
        self.scheduler.wait_first_reports();
        let made = self.store.write(|tx| {
            let v = self.volume_in(tx, caller, &req.volume_id, rules::SNAPSHOT_CREATE)?;
            self.check_can_manage(v.host.as_deref(), &format!("volume {}", v.id))?;
            let in_use_ok = v366 || req.force == Some(true);
            let ok = v.status == VolumeStatus::Available || (v.status == VolumeStatus::InUse && in_use_ok);
            if !ok {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available{} to take a snapshot, but current status is: {}.",
                    v.id,
                    if in_use_ok { " or in-use" } else { " (or in-use with force)" },
                    v.status
                )));
            }
            let host = v.host.clone().ok_or_else(|| {
                Error::InvalidState(format!("Invalid volume: Volume {} is not on any pool.", v.id))
            })?;
            let reservations = self.reserve_quota(tx, &v.project_id, &snapshot_needs(v.size, &v.volume_type_name))?;
            let now = Timestamp::now();
            let s = Snapshot {
                id: Id::new(),
                project_id: v.project_id.clone(),
                user_id: caller.user_id.clone(),
                volume_id: v.id,
                name: req.name.clone(),
                description: req.description.clone(),
                size: v.size,
                status: SnapshotStatus::Creating,
                progress: "0%".into(),
                volume_type_id: v.volume_type_id,
                group_snapshot_id: None,
                host: Some(host),
                task: Some(Task::BackendCreate),
                error_reason: None,
                consumes_quota: true,
                created_at: now,
                updated_at: now,
                metadata: req.metadata.clone(),
            };
            ss::insert(tx, &s)?;
            // The record counts from now on; the reservation has done its job.
            q::release(tx, &reservations)?;
            // Last, so that nothing after it can fail but the commit.
            *charged.borrow_mut() = self.reserve_snapshot_room(&v, &[v.size], &format!("a snapshot of volume {}", v.id))?;
            Ok(s)
        });
        let charge = charged.into_inner();
        let snap = match made {
            Ok(s) => s,
            Err(e) => {
                if let Some(c) = charge {
                    self.release_room(c, false);
                }
                return Err(e);
            }
        };
        let s = snap.clone();
        let origin = caller.origin(&snap.project_id);
        event(Ev::Snapshot, "create", "start", snap.id, &snap.project_id)
            .status(snap.status)
            .payload(serde_json::json!({"volume_id": snap.volume_id.to_string(), "size": snap.size}))
            .emit();
        self.spawn_blocking("create snapshot", move |core| {
            let made = core.finish_create_snapshot(s, &origin);
            if let Some(c) = charge {
                core.release_room(c, made);
            }
        });
        Ok(snap)
    }

    /// Charge a volume's pool for snapshots of volumes of these sizes (GiB) when its
    /// backend takes their room at once (a thick LVM pool), refusing (400) when they
    /// cannot fit, as an extend is refused, rather than letting them go to `error`.
    /// The charge is dropped by [`Core::release_room`] once they are made or failed.
    pub(crate) fn reserve_snapshot_room(&self, v: &Volume, sizes: &[u64], what: &str) -> Result<Option<RoomCharge>> {
        let Some(host) = v.host.as_deref() else { return Ok(None) };
        let p = self.pool(host)?;
        let mut bytes = 0u64;
        for size in sizes {
            bytes += p.backend.snapshot_room(&p.pool, size << 30)?;
        }
        if bytes == 0 {
            return Ok(None);
        }
        let gb = self.scheduler.reserve_room(host, bytes).map_err(|e| {
            let why = match e {
                Error::NoValidHost(why) => why,
                other => other.to_string(),
            };
            Error::Invalid(format!("Insufficient free space in pool {host} for {what}: {why}."))
        })?;
        Ok(Some(RoomCharge { pool: host.to_string(), gb, bytes }))
    }

    /// Drop a charge of [`Core::reserve_snapshot_room`], taking the room out of the
    /// pool's free space when the snapshots were `made` (until the measurement that
    /// this asks for replaces the figures).
    pub(crate) fn release_room(&self, c: RoomCharge, made: bool) {
        self.scheduler.settle(&c.pool, c.gb, |cap| {
            if made {
                cap.free_bytes = cap.free_bytes.saturating_sub(c.bytes);
            }
            Ok(())
        });
        self.measure_soon(&c.pool);
    }

    /// The background half of a snapshot create; a failure is a user message for
    /// `origin`. The pool is measured again after it (a snapshot is not one of the
    /// volume footprints its figures track).
    /// Returns whether the snapshot was made.
    pub fn finish_create_snapshot(&self, s: Snapshot, origin: &Origin) -> bool {
        let host = s.host.clone().unwrap_or_default();
        let result = self.pool(&host).and_then(|p| p.backend.create_snapshot(&p.pool, s.volume_id, s.id));
        let r = self.store.write(|tx| {
            let Some(mut cur) = ss::get(tx, s.id)? else { return Ok(()) };
            cur.task = None;
            cur.updated_at = Timestamp::now();
            match &result {
                Ok(_) => {
                    if cur.status == SnapshotStatus::Creating {
                        cur.status = SnapshotStatus::Available;
                    }
                    cur.progress = "100%".into();
                }
                Err(e) => {
                    cur.status = SnapshotStatus::Error;
                    cur.error_reason = Some(format!("snapshot failed: {e}"));
                    let detail = detail_for(e, detail::SNAPSHOT_CREATE_ERROR);
                    self.record_message(tx, origin, Resource::VolumeSnapshot, s.id, action::SNAPSHOT_CREATE, detail)?;
                }
            }
            ss::save(tx, &cur)
        });
        match (&result, r) {
            (_, Err(e)) => log::error!("snapshot {}: recording the result failed: {e}", s.id),
            (Ok(_), Ok(())) => log::info!("snapshot {} of volume {} is available", s.id, s.volume_id),
            (Err(e), Ok(())) => log::error!("snapshot {} failed: {e}", s.id),
        }
        let payload = serde_json::json!({"volume_id": s.volume_id.to_string(), "size": s.size, "host": host});
        match &result {
            Ok(_) => event(Ev::Snapshot, "create", "end", s.id, &s.project_id)
                .status(SnapshotStatus::Available)
                .payload(payload)
                .emit(),
            Err(e) => event(Ev::Snapshot, "create", "error", s.id, &s.project_id)
                .status(SnapshotStatus::Error)
                .reason(e)
                .payload(payload)
                .emit(),
        }
        self.measure_soon(&host);
        result.is_ok()
    }

    /// Show a snapshot.
    pub fn get_snapshot(&self, caller: &Caller, id: &str) -> Result<Snapshot> {
        self.store.read(|tx| self.snapshot_in(tx, caller, id, rules::SNAPSHOT_GET))
    }

    /// List snapshots; the caller's project unless an admin asks for all.
    pub fn list_snapshots(
        &self,
        caller: &Caller,
        mut query: SnapshotQuery,
        all_tenants: bool,
        with_count: bool,
    ) -> Result<(Vec<Snapshot>, Option<u64>)> {
        caller.authorize_own(rules::SNAPSHOT_GET_ALL)?;
        if !(caller.is_admin && all_tenants) {
            query.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| {
            let list = ss::list(tx, &query)?;
            let count = if with_count { Some(ss::count(tx, &query)?) } else { None };
            Ok((list, count))
        })
    }

    /// Change a snapshot's name or description.
    pub fn update_snapshot(&self, caller: &Caller, id: &str, upd: SnapshotUpdate) -> Result<Snapshot> {
        let (s, ()) = self.change_snapshot(caller, id, rules::SNAPSHOT_UPDATE, |_, s| {
            if let Some(n) = upd.name.clone() {
                s.name = Some(n);
            }
            if let Some(d) = upd.description.clone() {
                s.description = Some(d);
            }
            Ok(())
        })?;
        Ok(s)
    }

    /// Mark a snapshot for deletion in an open transaction (checks included).
    fn mark_snapshot_deleting(&self, tx: &Connection, s: &mut Snapshot, force: bool) -> Result<()> {
        if let Some(gs) = s.group_snapshot_id {
            return Err(Error::InvalidState(format!(
                "Invalid snapshot: Snapshot {} must not be part of a group: it goes with group snapshot {gs}.",
                s.id
            )));
        }
        let deletable = matches!(s.status, SnapshotStatus::Available | SnapshotStatus::Error);
        if !force && !deletable {
            return Err(Error::InvalidState(format!(
                "Invalid snapshot: Snapshot {} status must be available or error to delete, but current status is: {}.",
                s.id, s.status
            )));
        }
        if s.status == SnapshotStatus::Deleting && s.task.is_some() {
            return Err(Error::InvalidState(format!("Invalid snapshot: Snapshot {} is already being deleted.", s.id)));
        }
        if sv::being_copied_from(tx, s.id)? > 0 {
            return Err(Error::InvalidState(format!(
                "Invalid snapshot: Snapshot {} is being copied into a new volume; delete it when that is done.",
                s.id
            )));
        }
        s.status = SnapshotStatus::Deleting;
        s.task = Some(Task::BackendDelete);
        s.updated_at = Timestamp::now();
        ss::save(tx, s)
    }

    /// Delete a snapshot (`force`: admin, any status).
    pub fn delete_snapshot(self: &Arc<Core>, caller: &Caller, id: &str, force: bool) -> Result<()> {
        if force {
            caller.authorize_own(rules::SNAPSHOT_FORCE_DELETE)?;
        }
        let s = self.store.write(|tx| {
            let mut s = self.snapshot_in(tx, caller, id, rules::SNAPSHOT_DELETE)?;
            self.check_can_manage(s.host.as_deref(), &format!("snapshot {}", s.id))?;
            self.mark_snapshot_deleting(tx, &mut s, force)?;
            Ok(s)
        })?;
        let origin = caller.origin(&s.project_id);
        event(Ev::Snapshot, "delete", "start", s.id, &s.project_id).status(s.status).emit();
        self.spawn_blocking("delete snapshot", move |core| {
            core.finish_delete_snapshot(&s, &origin);
        });
        Ok(())
    }

    /// The background half of a snapshot delete (also resumed by reconcile); whether
    /// it succeeded. A failure is a user message for `origin`.
    pub fn finish_delete_snapshot(&self, s: &Snapshot, origin: &Origin) -> bool {
        let host = s.host.clone().unwrap_or_default();
        let result = match self.pool(&host) {
            Ok(p) => p.backend.delete_snapshot(&p.pool, s.id),
            // A snapshot that never reached a pool has nothing to remove.
            Err(_) if s.host.is_none() => Ok(crate::backend::Outcome::AlreadyDone),
            Err(e) => Err(e),
        };
        let r = self.store.write(|tx| match &result {
            Ok(_) => ss::delete(tx, s.id),
            Err(e) => {
                if let Some(mut cur) = ss::get(tx, s.id)? {
                    cur.status = SnapshotStatus::ErrorDeleting;
                    cur.task = None;
                    cur.error_reason = Some(format!("delete failed: {e}"));
                    cur.updated_at = Timestamp::now();
                    ss::save(tx, &cur)?;
                    let detail = detail_for(e, detail::SNAPSHOT_DELETE_ERROR);
                    self.record_message(tx, origin, Resource::VolumeSnapshot, s.id, action::SNAPSHOT_DELETE, detail)?;
                }
                Ok(())
            }
        });
        if let Err(e) = &r {
            log::error!("snapshot {}: recording the delete failed: {e}", s.id);
        }
        match result {
            Ok(_) => {
                log::info!("snapshot {} deleted", s.id);
                event(Ev::Snapshot, "delete", "end", s.id, &s.project_id)
                    .status("deleted")
                    .payload(serde_json::json!({"volume_id": s.volume_id.to_string()}))
                    .emit();
                self.measure_soon(&host);
                r.is_ok()
            }
            Err(e) => {
                log::error!("snapshot {}: delete failed: {e}", s.id);
                event(Ev::Snapshot, "delete", "error", s.id, &s.project_id)
                    .status(SnapshotStatus::ErrorDeleting)
                    .reason(&e)
                    .emit();
                false
            }
        }
    }

    /// Mark every snapshot of a volume for deletion (cascade), in the caller's
    /// transaction; all must be available or error.
    pub fn mark_snapshots_deleting(&self, tx: &Connection, v: &Volume) -> Result<Vec<Snapshot>> {
        let mut snaps = ss::of_volume(tx, v.id)?;
        for s in &mut snaps {
            self.mark_snapshot_deleting(tx, s, false)?;
        }
        Ok(snaps)
    }

    /// `os-reset_status` on a snapshot (admin).
    pub fn reset_snapshot_status(&self, caller: &Caller, id: &str, status: SnapshotStatus) -> Result<()> {
        self.change_snapshot(caller, id, rules::SNAPSHOT_RESET_STATUS, |_, s| {
            s.status = status;
            Ok(())
        })?;
        Ok(())
    }

    /// `os-update_snapshot_status`: a driver's report of progress (creating →
    /// available or error, deleting → error_deleting).
    pub fn update_snapshot_status(
        &self,
        caller: &Caller,
        id: &str,
        status: SnapshotStatus,
        progress: Option<String>,
    ) -> Result<()> {
        self.change_snapshot(caller, id, rules::SNAPSHOT_UPDATE_STATUS, |_, s| {
            use SnapshotStatus as S;
            let allowed = matches!(
                (s.status, status),
                (S::Creating, S::Available | S::Error | S::Creating) | (S::Deleting, S::ErrorDeleting | S::Deleting)
            );
            if !allowed {
                return Err(Error::InvalidState(format!(
                    "Invalid snapshot: Provided snapshot status {status} not allowed for snapshot with status {}.",
                    s.status
                )));
            }
            s.status = status;
            if let Some(p) = progress.clone() {
                s.progress = p;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// A snapshot's metadata.
    pub fn snapshot_metadata(&self, caller: &Caller, id: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.store.read(|tx| self.snapshot_in(tx, caller, id, rules::SNAPSHOT_GET_METADATA))?.metadata)
    }

    /// Merge or replace a snapshot's metadata; returns all of it.
    pub fn set_snapshot_metadata(
        &self,
        caller: &Caller,
        id: &str,
        meta: BTreeMap<String, String>,
        how: MetadataWrite,
    ) -> Result<BTreeMap<String, String>> {
        let (s, ()) = self.change_snapshot(caller, id, rules::SNAPSHOT_UPDATE_METADATA, |tx, s| {
            if how == MetadataWrite::Replace {
                s.metadata = meta.clone();
            } else {
                s.metadata.extend(meta.clone());
            }
            ss::replace_metadata(tx, s.id, &s.metadata)
        })?;
        Ok(s.metadata)
    }

    /// Remove one metadata key of a snapshot.
    pub fn delete_snapshot_metadata(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        self.change_snapshot(caller, id, rules::SNAPSHOT_DELETE_METADATA, |tx, s| {
            if s.metadata.remove(key).is_none() {
                return Err(Error::NotFound("Metadata item was not found.".into()));
            }
            ss::replace_metadata(tx, s.id, &s.metadata)
        })?;
        Ok(())
    }

    /// Revert a volume to its latest snapshot (3.40): both must be available.
    pub fn revert_volume(self: &Arc<Core>, caller: &Caller, id: &str, snapshot_id: &str) -> Result<()> {
        let (v, s) = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_REVERT)?;
            self.check_can_manage(v.host.as_deref(), &format!("volume {}", v.id))?;
            let mut s = self.snapshot_in(tx, caller, snapshot_id, rules::SNAPSHOT_GET)?;
            if s.volume_id != v.id {
                return Err(Error::Invalid(format!(
                    "Invalid input received: Snapshot {} is not a snapshot of volume {}.",
                    s.id, v.id
                )));
            }
            if v.status != VolumeStatus::Available {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available to revert, but current status is: {}.",
                    v.id, v.status
                )));
            }
            if s.status != SnapshotStatus::Available {
                return Err(Error::InvalidState(format!(
                    "Invalid snapshot: Snapshot {} status must be available to revert to, but current status is: {}.",
                    s.id, s.status
                )));
            }
            if v.size != s.size {
                return Err(Error::Invalid(format!(
                    "Invalid input received: Can't revert volume {} to its latest snapshot {}. The volume size \
                     must be equal to the snapshot size.",
                    v.id, s.id
                )));
            }
            let latest = ss::of_volume(tx, v.id)?.into_iter().next_back();
            if latest.as_ref().map(|l| l.id) != Some(s.id) {
                return Err(Error::InvalidState(format!(
                    "Invalid snapshot: Volume {} can only be reverted to its latest snapshot.",
                    v.id
                )));
            }
            let now = Timestamp::now();
            v.status = VolumeStatus::Reverting;
            v.task = Some(Task::BackendRevert(s.id));
            v.updated_at = now;
            sv::save(tx, &v)?;
            s.status = SnapshotStatus::Restoring;
            s.updated_at = now;
            ss::save(tx, &s)?;
            Ok((v, s))
        })?;
        self.spawn_blocking("revert volume", move |core| core.finish_revert(&v, s.id));
        Ok(())
    }

    /// The background half of a revert (also resumed by reconcile).
    pub fn finish_revert(&self, v: &Volume, snapshot: Id) {
        let host = v.host.clone().unwrap_or_default();
        let result = self.pool(&host).and_then(|p| p.backend.revert_to_snapshot(&p.pool, v.id, snapshot));
        let r = self.store.write(|tx| {
            if let Some(mut cur) = sv::get(tx, v.id)? {
                cur.task = None;
                cur.updated_at = Timestamp::now();
                match &result {
                    Ok(()) => cur.status = VolumeStatus::Available,
                    Err(e) => {
                        cur.status = VolumeStatus::Error;
                        cur.error_reason = Some(format!("revert to snapshot {snapshot} failed: {e}"));
                    }
                }
                sv::save(tx, &cur)?;
            }
            if let Some(mut s) = ss::get(tx, snapshot)? {
                if s.status == SnapshotStatus::Restoring {
                    s.status = SnapshotStatus::Available;
                    s.updated_at = Timestamp::now();
                    ss::save(tx, &s)?;
                }
            }
            Ok(())
        });
        match (result, r) {
            (_, Err(e)) => log::error!("volume {}: recording the revert failed: {e}", v.id),
            (Ok(()), Ok(())) => log::info!("volume {} reverted to snapshot {snapshot}", v.id),
            (Err(e), Ok(())) => log::error!("volume {}: revert failed: {e}", v.id),
        }
        // A revert rewrites the volume's blocks: its allocation may change.
        self.measure_soon(&host);
    }
}
