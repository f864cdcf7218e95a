//! Group snapshots (3.14): a snapshot of every volume of a generic volume group, each
//! carrying the group snapshot's id. Its snapshots cannot be deleted one by one; they
//! go with the group snapshot.
//!
//! - **create**: one transaction checks the group and its volumes, reserves the
//!   snapshots' quota and records the group snapshot (`creating`) with a `creating`
//!   snapshot per volume (task `backend_create`); the background takes each snapshot
//!   in turn and the group snapshot becomes `available` when every one was taken,
//!   else `error`. After a crash, reconcile settles the snapshots (taken or `error`)
//!   and then decides the group snapshot the same way.
//! - **delete**: one transaction marks the group snapshot and its snapshots
//!   `deleting` (task `backend_delete`); the background removes the snapshots, then
//!   the record; a snapshot that stays leaves it `error_deleting`. Reconcile resumes a
//!   `deleting` group snapshot the same way.

use std::sync::Arc;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{GroupSnapshot, GroupSnapshotStatus, Snapshot, SnapshotStatus, Task, VolumeStatus};
use crate::policy::rules;
use crate::query::GroupQuery;
use crate::store::{groups as sg, quotas as q, snapshots as ss, volumes as sv};
use crate::volume::messages::Origin;
use crate::volume::quotas::{snapshot_needs, Need};
use crate::volume::{Caller, Core};

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("GroupSnapshot {id} could not be found."))
}

fn invalid(reason: String) -> Error {
    Error::InvalidState(format!("Invalid GroupSnapshot: {reason}"))
}

impl Core {
    /// Load a group snapshot the caller may see (another project's is 404), and
    /// refuse (403) unless policy lets the caller do `rule` on it.
    pub fn group_snapshot_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<GroupSnapshot> {
        let sid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match sg::get_snapshot(conn, sid)? {
            Some(s) if caller.is_admin || s.project_id == caller.project_id => {
                caller.authorize(rule, &s.project_id)?;
                Ok(s)
            }
            _ => Err(not_found(id)),
        }
    }

    /// Snapshot a group: recorded now, taken in the background.
    pub fn create_group_snapshot(
        self: &Arc<Core>,
        caller: &Caller,
        group_id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<GroupSnapshot> {
        let charged = std::cell::RefCell::new(Vec::new());
        // Placements wait for the pools' first measurements at start-up: wait here,
        // not inside the transaction, where every other request's writes would wait too.
        self.scheduler.wait_first_reports();
        let made = self.store.write(|tx| {
            let g = self.group_in(tx, caller, group_id, rules::GROUP_GET)?;
            caller.authorize(rules::GROUP_SNAPSHOT_CREATE, &g.project_id)?;
            if g.status != crate::model::GroupStatus::Available {
                return Err(Error::InvalidState(format!(
                    "Invalid Group: Group {} status must be available to take a group snapshot, but current status \
                     is: {}.",
                    g.id, g.status
                )));
            }
            self.check_can_manage(g.host.as_deref(), &format!("group {}", g.id))?;
            let vols = sv::in_group(tx, g.id)?;
            let mut needs: Vec<Need> = Vec::new();
            for v in &vols {
                if v.host.is_none() {
                    return Err(Error::InvalidState(format!(
                        "Invalid volume: The snapshot cannot be created because volume {} has not been scheduled to \
                         any host.",
                        v.id
                    )));
                }
                if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) || v.task.is_some() {
                    return Err(Error::InvalidState(format!(
                        "Invalid volume: Volume {} status must be available or in-use to take a snapshot, but \
                         current status is: {}.",
                        v.id, v.status
                    )));
                }
                for n in snapshot_needs(v.size, &v.volume_type_name) {
                    match needs.iter_mut().find(|o| o.resource == n.resource) {
                        Some(o) => o.delta += n.delta,
                        None => needs.push(n),
                    }
                }
            }
            let reservations = self.reserve_quota(tx, &g.project_id, &needs)?;
            let now = Timestamp::now();
            let gs = GroupSnapshot {
                id: Id::new(),
                project_id: g.project_id.clone(),
                user_id: caller.user_id.clone(),
                group_id: g.id,
                group_type_id: g.group_type_id,
                name: name.clone(),
                description: description.clone(),
                status: GroupSnapshotStatus::Creating,
                error_reason: None,
                created_at: now,
                updated_at: now,
            };
            sg::insert_snapshot(tx, &gs)?;
            let room = vols.clone();
            let mut snaps = Vec::new();
            for v in vols {
                let s = Snapshot {
                    id: Id::new(),
                    project_id: v.project_id.clone(),
                    user_id: caller.user_id.clone(),
                    volume_id: v.id,
                    name: name.clone(),
                    description: description.clone(),
                    size: v.size,
                    status: SnapshotStatus::Creating,
                    progress: "0%".into(),
                    volume_type_id: v.volume_type_id,
                    group_snapshot_id: Some(gs.id),
                    host: v.host.clone(),
                    task: Some(Task::BackendCreate),
                    error_reason: None,
                    consumes_quota: true,
                    created_at: now,
                    updated_at: now,
                    metadata: Default::default(),
                };
                ss::insert(tx, &s)?;
                snaps.push(s);
            }
            // The records count from now on; the reservation has done its job.
            q::release(tx, &reservations)?;
            // Last, so that nothing after it can fail but the commit: room in a pool
            // that takes it at once (thick LVM), or a refusal now.
            for v in &room {
                let what = format!("a snapshot of volume {} (group snapshot of group {})", v.id, g.id);
                if let Some(c) = self.reserve_snapshot_room(v, &[v.size], &what)? {
                    charged.borrow_mut().push(c);
                }
            }
            Ok((gs, snaps))
        });
        let charges = charged.into_inner();
        let (gs, snaps) = match made {
            Ok(made) => made,
            Err(e) => {
                for c in charges {
                    self.release_room(c, false);
                }
                return Err(e);
            }
        };
        let gsid = gs.id;
        let origin = caller.origin(&gs.project_id);
        self.spawn_blocking("create group snapshot", move |core| {
            let mut made = true;
            for s in snaps {
                made &= core.finish_create_snapshot(s, &origin);
            }
            // Charges are per volume; a failed snapshot leaves its room unused, and
            // the measurement each release asks for corrects the figures.
            for c in charges {
                core.release_room(c, made);
            }
            core.conclude_group_snapshot_create(gsid);
        });
        Ok(gs)
    }

    /// Decide a `creating` group snapshot from its snapshots: `available` when each
    /// was taken, else `error`. Used when the snapshots are done, and by reconcile.
    pub fn conclude_group_snapshot_create(&self, gsid: Id) {
        let r = self.store.write(|tx| {
            let Some(mut gs) = sg::get_snapshot(tx, gsid)? else { return Ok(None) };
            if !matches!(gs.status, GroupSnapshotStatus::Creating | GroupSnapshotStatus::Updating) {
                return Ok(Some(gs.status));
            }
            let bad: Vec<String> = ss::of_group_snapshot(tx, gsid)?
                .iter()
                .filter(|s| s.status != SnapshotStatus::Available)
                .map(|s| format!("{} is {}", s.id, s.status))
                .collect();
            if bad.is_empty() {
                gs.status = GroupSnapshotStatus::Available;
            } else {
                gs.status = GroupSnapshotStatus::Error;
                gs.error_reason = Some(format!("snapshots were not taken: {}", bad.join(", ")));
            }
            gs.updated_at = Timestamp::now();
            sg::save_snapshot(tx, &gs)?;
            Ok(Some(gs.status))
        });
        match r {
            Ok(Some(s)) => log::info!("group snapshot {gsid} is {s}"),
            Ok(None) => log::warn!("group snapshot {gsid} vanished while being taken"),
            Err(e) => log::error!("group snapshot {gsid}: recording the result failed: {e}"),
        }
    }

    /// Show a group snapshot.
    pub fn get_group_snapshot(&self, caller: &Caller, id: &str) -> Result<GroupSnapshot> {
        self.store.read(|tx| self.group_snapshot_in(tx, caller, id, rules::GROUP_SNAPSHOT_GET))
    }

    /// List group snapshots; the caller's project unless an admin asks for all.
    pub fn list_group_snapshots(
        &self,
        caller: &Caller,
        mut query: GroupQuery,
        all_tenants: bool,
        with_count: bool,
    ) -> Result<(Vec<GroupSnapshot>, Option<u64>)> {
        caller.authorize_own(rules::GROUP_SNAPSHOT_GET_ALL)?;
        if !(caller.is_admin && all_tenants) {
            query.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| {
            let list = sg::list_snapshots(tx, &query)?;
            let count = if with_count { Some(sg::count_snapshots(tx, &query)?) } else { None };
            Ok((list, count))
        })
    }

    /// Delete a group snapshot with its snapshots: marked now, removed in the
    /// background.
    pub fn delete_group_snapshot(self: &Arc<Core>, caller: &Caller, id: &str) -> Result<()> {
        let (gsid, snaps) = self.store.write(|tx| {
            let mut gs = self.group_snapshot_in(tx, caller, id, rules::GROUP_SNAPSHOT_DELETE)?;
            let deletable = matches!(gs.status, GroupSnapshotStatus::Available | GroupSnapshotStatus::Error);
            if !deletable || sg::creating_from(tx, gs.id)? > 0 {
                return Err(invalid(format!(
                    "GroupSnapshot status must be available or error, and no Group can be currently using it as \
                     source for its creation; {} is {}.",
                    gs.id, gs.status
                )));
            }
            let mut snaps = ss::of_group_snapshot(tx, gs.id)?;
            for s in &snaps {
                self.check_can_manage(s.host.as_deref(), &format!("snapshot {}", s.id))?;
                if s.task.is_some() {
                    return Err(invalid(format!(
                        "Snapshot {} of group snapshot {} is still {}; delete it when it has settled.",
                        s.id, gs.id, s.status
                    )));
                }
                if sv::being_copied_from(tx, s.id)? > 0 {
                    return Err(invalid(format!(
                        "Snapshot {} of group snapshot {} is being copied into a new volume; delete it when that is \
                         done.",
                        s.id, gs.id
                    )));
                }
            }
            let now = Timestamp::now();
            for s in &mut snaps {
                s.status = SnapshotStatus::Deleting;
                s.task = Some(Task::BackendDelete);
                s.updated_at = now;
                ss::save(tx, s)?;
            }
            gs.status = GroupSnapshotStatus::Deleting;
            gs.updated_at = now;
            sg::save_snapshot(tx, &gs)?;
            Ok((gs.id, snaps))
        })?;
        let origin = caller.origin(snaps.first().map_or(caller.project_id.as_str(), |s| s.project_id.as_str()));
        self.spawn_blocking("delete group snapshot", move |core| {
            core.finish_delete_group_snapshot(gsid, snaps, &origin)
        });
        Ok(())
    }

    /// The background half of a group snapshot delete (also resumed by reconcile); a
    /// snapshot that fails to go is a user message for `origin`.
    pub fn finish_delete_group_snapshot(&self, gsid: Id, snaps: Vec<Snapshot>, origin: &Origin) {
        let failed = snaps.iter().filter(|s| !self.finish_delete_snapshot(s, origin)).count();
        let r = self.store.write(|tx| {
            let Some(mut gs) = sg::get_snapshot(tx, gsid)? else { return Ok(false) };
            if ss::of_group_snapshot(tx, gsid)?.is_empty() {
                sg::delete_snapshot(tx, gsid)?;
                return Ok(true);
            }
            gs.status = GroupSnapshotStatus::ErrorDeleting;
            gs.error_reason = Some(format!("delete failed: {failed} of its snapshots could not be deleted"));
            gs.updated_at = Timestamp::now();
            sg::save_snapshot(tx, &gs)?;
            Ok(false)
        });
        match r {
            Ok(true) => log::info!("group snapshot {gsid} deleted"),
            Ok(false) => log::error!("group snapshot {gsid}: delete failed: {failed} snapshot(s) stayed"),
            Err(e) => log::error!("group snapshot {gsid}: recording the delete failed: {e}"),
        }
    }

    /// `reset_status` on a group snapshot (admin, 3.19).
    pub fn reset_group_snapshot_status(&self, caller: &Caller, id: &str, status: GroupSnapshotStatus) -> Result<()> {
        self.store.write(|tx| {
            let mut gs = self.group_snapshot_in(tx, caller, id, rules::GROUP_SNAPSHOT_GET)?;
            caller.authorize(rules::GROUP_SNAPSHOT_RESET_STATUS, &gs.project_id)?;
            gs.status = status;
            gs.updated_at = Timestamp::now();
            sg::save_snapshot(tx, &gs)
        })
    }
}
