//! Generic volume groups (3.13): volumes of the group's volume types kept on one pool,
//! so that they can be snapshotted ([`super::group_snapshots`]), copied and deleted
//! together. hearth's groups are Cinder's *generic* groups: no consistency guarantee
//! beyond taking each volume's snapshot in turn.
//!
//! - **create** places the group at once, in its one transaction: the scheduler picks
//!   a pool that every one of its volume types may use (on a shared store, any node's
//!   whose service is up: the group's volumes are then handed to that node); when
//!   none can, the group is recorded in `error` (as Cinder's scheduler leaves it),
//!   never `creating`.
//! - **volumes** join a group when made with `group_id` (pinned to its pool, see
//!   [`crate::flow::create_volume`]) or with `add_volumes`; they leave with
//!   `remove_volumes`. Both are one transaction: no backend work is involved.
//! - **create from a source** (3.14), a group snapshot or another group:
//!   1. one transaction checks the source and quota and records the group
//!      (`creating`, on the source's pool) with a `creating` volume per source
//!      snapshot or volume (task `scheduling`);
//!   2. in the background each volume is copied on the source's pool;
//!   3. the group becomes `available` when every volume did, else `error`.
//!
//!   After a crash, reconcile settles the volumes first (complete copies become
//!   `available`, the rest `error`) and then decides the group the same way.
//! - **delete** (with `delete-volumes`): one transaction checks everything and marks
//!   the group and its volumes `deleting` (task `backend_delete`); the background
//!   removes the volumes, then the group's record; a volume that cannot be removed
//!   leaves the group `error_deleting`. Reconcile resumes a `deleting` group the same
//!   way.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::flow::create_volume::{self, Source};
use crate::ids::{Id, Timestamp};
use crate::model::{
    AttachStatus, Group, GroupSnapshotStatus, GroupStatus, SnapshotStatus, Task, Volume, VolumeStatus, VolumeType,
};
use crate::policy::rules;
use crate::query::GroupQuery;
use crate::store::{groups as sg, quotas as q, snapshots as ss, types as st, volumes as sv};
use crate::volume::quotas::{volume_needs, Need};
use crate::volume::{Caller, Core};

/// A group to create.
#[derive(Clone, Debug, Default)]
pub struct NewGroup {
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Group type, by id or name.
    pub group_type: String,
    /// Volume types, by id or name (at least one, no repeats).
    pub volume_types: Vec<String>,
    /// Zone; `None`: the default zone.
    pub availability_zone: Option<String>,
}

/// What a group is made from (`create-from-src`).
#[derive(Clone, Debug)]
pub enum GroupSource {
    /// A copy of each snapshot of this group snapshot.
    GroupSnapshot(String),
    /// A clone of each volume of this group.
    Group(String),
}

/// Changes to a group (`PUT /groups/{id}`).
#[derive(Clone, Debug, Default)]
pub struct GroupUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Volume ids to add.
    pub add_volumes: Vec<String>,
    /// Volume ids to remove.
    pub remove_volumes: Vec<String>,
}

/// Volume statuses from which a volume may leave a group (Cinder's).
const REMOVABLE: &[VolumeStatus] =
    &[VolumeStatus::Available, VolumeStatus::InUse, VolumeStatus::Error, VolumeStatus::ErrorDeleting];

/// Volume statuses from which a volume may join a group (Cinder's).
const ADDABLE: &[VolumeStatus] = &[VolumeStatus::Available, VolumeStatus::InUse];

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Group {id} could not be found."))
}

fn invalid_group(reason: String) -> Error {
    Error::InvalidState(format!("Invalid Group: {reason}"))
}

fn invalid_volume(reason: String) -> Error {
    Error::InvalidState(format!("Invalid volume: {reason}"))
}

fn status_list(list: &[VolumeStatus]) -> String {
    list.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// The `host@backend` part of a pool's name: a volume may join a group on the same
/// backend (Cinder compares at this level).
fn backend_of(host: &str) -> &str {
    host.split('#').next().unwrap_or(host)
}

impl Core {
    /// Load a group the caller may see (another project's is 404), and refuse (403)
    /// unless policy lets the caller do `rule` on it.
    pub fn group_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<Group> {
        let gid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match sg::get_group(conn, gid)? {
            Some(g) if caller.is_admin || g.project_id == caller.project_id => {
                caller.authorize(rule, &g.project_id)?;
                Ok(g)
            }
            _ => Err(not_found(id)),
        }
    }

    /// A volume type by id or name whoever asks (as Cinder resolves a group's types
    /// with an elevated context).
    fn any_volume_type(conn: &Connection, key: &str) -> Result<VolumeType> {
        let t = match Id::parse(key) {
            Some(id) => st::get(conn, id)?,
            None => None,
        };
        match t {
            Some(t) => Ok(t),
            None => st::get_by_name(conn, key)?.ok_or_else(|| {
                if Id::parse(key).is_some() {
                    Error::NotFound(format!("Volume type {key} could not be found."))
                } else {
                    Error::NotFound(format!("Volume type with name {key} could not be found."))
                }
            }),
        }
    }

    /// Create a group (202): placed on a pool now, `available`; `error` when no pool
    /// can take all its volume types.
    pub fn create_group(&self, caller: &Caller, req: NewGroup) -> Result<Group> {
        caller.authorize_own(rules::GROUP_CREATE)?;
        let (gtype, vtypes) = self.store.read(|tx| {
            let gtype = self.group_type_by_name_or_id(tx, caller, &req.group_type)?;
            let vtypes =
                req.volume_types.iter().map(|k| Self::any_volume_type(tx, k)).collect::<Result<Vec<VolumeType>>>()?;
            Ok((gtype, vtypes))
        })?;
        let mut seen = BTreeSet::new();
        if let Some(dup) = vtypes.iter().find(|t| !seen.insert(t.id)) {
            return Err(Error::Invalid(format!(
                "Invalid input received: volume type {} is given more than once in volume_types.",
                dup.name
            )));
        }
        let zone = match req.availability_zone {
            Some(z) if self.zones().contains(&z) => z,
            Some(z) => {
                return Err(Error::Invalid(format!("Invalid input received: Availability zone '{z}' is invalid.")))
            }
            None => self.config.storage_availability_zone.clone(),
        };
        // On a shared store, the fleet's pools too: the group is only a record, and
        // its volumes go to the node that owns its pool (handed there).
        let others = self.fleet_pools().unwrap_or_else(|e| {
            log::warn!("group {:?}: the fleet's pools could not be read ({e}); this node's pools only", req.name);
            Vec::new()
        });
        let (status, host, error_reason) = match self.scheduler.select_group(&vtypes, &zone, &others) {
            Ok(pool) => (GroupStatus::Available, Some(pool), None),
            Err(e) => {
                log::warn!("group {:?}: no pool takes all its volume types: {e}", req.name);
                (GroupStatus::Error, None, Some(format!("no pool takes all its volume types: {e}")))
            }
        };
        let now = Timestamp::now();
        let g = Group {
            id: Id::new(),
            project_id: caller.project_id.clone(),
            user_id: caller.user_id.clone(),
            name: req.name,
            description: req.description,
            status,
            availability_zone: zone,
            group_type_id: gtype.id,
            volume_type_ids: vtypes.iter().map(|t| t.id).collect(),
            host,
            group_snapshot_id: None,
            source_group_id: None,
            error_reason,
            created_at: now,
            updated_at: now,
        };
        self.store.write(|tx| {
            // The types may have gone since they were read.
            for t in &vtypes {
                st::get(tx, t.id)?
                    .ok_or_else(|| Error::NotFound(format!("Volume type {} could not be found.", t.id)))?;
            }
            sg::get_type(tx, gtype.id)?
                .ok_or_else(|| Error::NotFound(format!("Group type {} could not be found.", gtype.id)))?;
            let reservations =
                self.reserve_quota(tx, &g.project_id, &[Need { resource: "groups".into(), delta: 1 }])?;
            sg::insert_group(tx, &g)?;
            q::release(tx, &reservations)
        })?;
        log::info!("group {} is {} on {}", g.id, g.status, g.host.as_deref().unwrap_or("no pool"));
        Ok(g)
    }

    /// Show a group.
    pub fn get_group(&self, caller: &Caller, id: &str) -> Result<Group> {
        self.store.read(|tx| self.group_in(tx, caller, id, rules::GROUP_GET))
    }

    /// List groups; the caller's project unless an admin asks for all.
    pub fn list_groups(
        &self,
        caller: &Caller,
        mut query: GroupQuery,
        all_tenants: bool,
        with_count: bool,
    ) -> Result<(Vec<Group>, Option<u64>)> {
        caller.authorize_own(rules::GROUP_GET_ALL)?;
        if !(caller.is_admin && all_tenants) {
            query.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| {
            let list = sg::list_groups(tx, &query)?;
            let count = if with_count { Some(sg::count_groups(tx, &query)?) } else { None };
            Ok((list, count))
        })
    }

    /// The ids of each group's volumes (3.25 `list_volume`).
    pub fn group_volume_ids(&self, groups: &[Group]) -> Result<Vec<Vec<Id>>> {
        self.store
            .read(|tx| groups.iter().map(|g| Ok(sv::in_group(tx, g.id)?.into_iter().map(|v| v.id).collect())).collect())
    }

    /// Change a group's name or description, add volumes to it or remove some, all
    /// in one transaction (Cinder's checks, in Cinder's order).
    pub fn update_group(&self, caller: &Caller, id: &str, upd: GroupUpdate) -> Result<()> {
        self.store.write(|tx| {
            let mut g = self.group_in(tx, caller, id, rules::GROUP_UPDATE)?;
            let name = upd.name.clone().filter(|n| Some(n) != g.name.as_ref());
            let description = upd.description.clone().filter(|d| Some(d) != g.description.as_ref());
            let both: Vec<&String> = upd.add_volumes.iter().filter(|a| upd.remove_volumes.contains(a)).collect();
            if !both.is_empty() {
                return Err(invalid_volume(format!(
                    "UUIDs {} are in both add and remove volume list.",
                    both.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let members = sv::in_group(tx, g.id)?;
            let mut to_remove = Vec::new();
            for rid in &upd.remove_volumes {
                let Some(v) = members.iter().find(|v| v.id.to_string() == *rid) else {
                    return Err(invalid_volume(format!(
                        "Cannot remove volume {rid} from group {} because it is not in the group.",
                        g.id
                    )));
                };
                if !REMOVABLE.contains(&v.status) {
                    return Err(invalid_volume(format!(
                        "Cannot remove volume {} from group {} because volume is in an invalid state: {}. Valid \
                         states are: {}.",
                        v.id,
                        g.id,
                        v.status,
                        status_list(REMOVABLE)
                    )));
                }
                to_remove.push(v.clone());
            }
            let mut to_add = Vec::new();
            for aid in upd.add_volumes.iter().filter(|a| !members.iter().any(|v| v.id.to_string() == **a)) {
                let v = Id::parse(aid)
                    .map(|i| sv::get(tx, i))
                    .transpose()?
                    .flatten()
                    .filter(|v| caller.is_admin || v.project_id == caller.project_id)
                    .ok_or_else(|| {
                        invalid_volume(format!(
                            "Cannot add volume {aid} to group {} because volume cannot be found.",
                            g.id
                        ))
                    })?;
                if let Some(other) = v.group_id {
                    return Err(invalid_volume(format!(
                        "Cannot add volume {} to group {} because it is already in group {other}.",
                        v.id, g.id
                    )));
                }
                if v.project_id != g.project_id {
                    return Err(invalid_volume(format!(
                        "Cannot add volume {} to group {} as they belong to different projects.",
                        v.id, g.id
                    )));
                }
                if !g.volume_type_ids.contains(&v.volume_type_id) {
                    return Err(invalid_volume(format!(
                        "Cannot add volume {} to group {} because volume type {} is not supported by the group.",
                        v.id, g.id, v.volume_type_id
                    )));
                }
                if !ADDABLE.contains(&v.status) {
                    return Err(invalid_volume(format!(
                        "Cannot add volume {} to group {} because volume is in an invalid state: {}. Valid states \
                         are: {}.",
                        v.id,
                        g.id,
                        v.status,
                        status_list(ADDABLE)
                    )));
                }
                let local = match (&v.host, &g.host) {
                    (Some(vh), Some(gh)) => backend_of(vh) == backend_of(gh),
                    _ => false,
                };
                if !local {
                    return Err(invalid_volume(format!(
                        "Volume {} is not local to this node: it is not on the backend of group {}.",
                        v.id, g.id
                    )));
                }
                to_add.push(v);
            }
            if name.is_none() && description.is_none() && to_add.is_empty() && to_remove.is_empty() {
                return Err(invalid_group(format!(
                    "Cannot update group {} because no valid name, description, add_volumes, or remove_volumes \
                     were provided.",
                    g.id
                )));
            }
            if (!to_add.is_empty() || !to_remove.is_empty()) && g.status != GroupStatus::Available {
                return Err(invalid_group(format!(
                    "Group status must be available to add or remove volumes, but current status is: {}.",
                    g.status
                )));
            }
            let now = Timestamp::now();
            for (mut v, group) in
                to_add.into_iter().map(|v| (v, Some(g.id))).chain(to_remove.into_iter().map(|v| (v, None)))
            {
                v.group_id = group;
                v.updated_at = now;
                sv::save(tx, &v)?;
            }
            if let Some(n) = name {
                g.name = Some(n);
            }
            if let Some(d) = description {
                g.description = Some(d);
            }
            g.updated_at = now;
            sg::save_group(tx, &g)
        })
    }

    /// `reset_status` on a group (admin, 3.20).
    pub fn reset_group_status(&self, caller: &Caller, id: &str, status: GroupStatus) -> Result<()> {
        self.store.write(|tx| {
            let mut g = self.group_in(tx, caller, id, rules::GROUP_GET)?;
            caller.authorize(rules::GROUP_RESET_STATUS, &g.project_id)?;
            g.status = status;
            g.updated_at = Timestamp::now();
            sg::save_group(tx, &g)
        })
    }

    /// Delete a group (`delete-volumes`: with its volumes). Checked and marked now,
    /// removed in the background; a group on no pool with nothing in it goes at once.
    pub fn delete_group(self: &Arc<Core>, caller: &Caller, id: &str, delete_volumes: bool) -> Result<()> {
        // Something on the storage host holding a volume open: refuse now rather than
        // fail in the background.
        let (g, members) = self.store.read(|tx| {
            let g = self.group_in(tx, caller, id, rules::GROUP_DELETE)?;
            let members = sv::in_group(tx, g.id)?;
            Ok((g, members))
        })?;
        if delete_volumes {
            for v in &members {
                if let Some(pool) = v.host.as_deref().and_then(|h| self.pool(h).ok()) {
                    if pool.backend.volume_busy(&pool.pool, v.id)? {
                        return Err(invalid_group(format!(
                            "Volume {} in group {} is busy: it is open on the storage host.",
                            v.id, g.id
                        )));
                    }
                }
            }
        }
        let work = self.store.write(|tx| {
            let mut g = self.group_in(tx, caller, id, rules::GROUP_DELETE)?;
            let members = sv::in_group(tx, g.id)?;
            if sg::snapshots_of_group(tx, g.id)? > 0 {
                return Err(invalid_group("Group has existing snapshots.".into()));
            }
            if g.host.is_none() && members.is_empty() {
                sg::delete_group(tx, g.id)?;
                return Ok(None);
            }
            self.check_can_manage(g.host.as_deref(), &format!("group {}", g.id))?;
            if !delete_volumes && !matches!(g.status, GroupStatus::Available | GroupStatus::Error) {
                return Err(invalid_group(format!(
                    "Group status must be available or error, but current status is: {}.",
                    g.status
                )));
            }
            if !members.is_empty() && !delete_volumes {
                return Err(invalid_group(format!(
                    "Group {} still contains volumes. The delete-volumes flag is required to delete it.",
                    g.id
                )));
            }
            if sg::creating_from(tx, g.id)? > 0 {
                return Err(invalid_group(format!(
                    "Cannot delete group {}: it is the source for an ongoing group creation.",
                    g.id
                )));
            }
            for v in &members {
                if v.attach_status == AttachStatus::Attached || !v.attachments.is_empty() {
                    return Err(invalid_group(format!("Volume in group {} is attached. Need to detach first.", g.id)));
                }
                if !ss::of_volume(tx, v.id)?.is_empty() {
                    return Err(invalid_group("Volume in group still has dependent snapshots.".into()));
                }
                if sv::being_copied_from(tx, v.id)? > 0 {
                    return Err(invalid_group(format!(
                        "Volume {} in group {} is being copied into a new volume; delete the group when that is done.",
                        v.id, g.id
                    )));
                }
                let busy = v.task.is_some()
                    || matches!(v.status, VolumeStatus::Creating | VolumeStatus::Extending | VolumeStatus::Reverting);
                if busy {
                    return Err(invalid_group(format!(
                        "Volume {} in group {} is {}; delete the group when it has settled.",
                        v.id, g.id, v.status
                    )));
                }
            }
            let now = Timestamp::now();
            let mut doomed = Vec::new();
            for mut v in members {
                v.status = VolumeStatus::Deleting;
                v.task = Some(Task::BackendDelete);
                v.updated_at = now;
                sv::save(tx, &v)?;
                doomed.push(v);
            }
            g.status = GroupStatus::Deleting;
            g.updated_at = now;
            sg::save_group(tx, &g)?;
            Ok(Some((g.id, doomed)))
        })?;
        match work {
            None => log::info!("group {} (on no pool) deleted", g.id),
            Some((gid, doomed)) => {
                self.spawn_blocking("delete group", move |core| core.finish_delete_group(gid, doomed));
            }
        }
        Ok(())
    }

    /// Remove one volume of a group being deleted; whether its record is gone.
    fn delete_group_volume(&self, v: Volume) -> bool {
        let id = v.id;
        if v.host.is_none() {
            if let Err(e) = self.store.write(|tx| sv::delete(tx, id)) {
                log::error!("volume {id}: removing the record failed: {e}");
            }
        } else {
            self.finish_delete(v);
        }
        matches!(self.store.read(|tx| sv::get(tx, id)), Ok(None))
    }

    /// The background half of a group delete (also resumed by reconcile): remove its
    /// volumes, then its record; `error_deleting` when a volume stays.
    pub fn finish_delete_group(&self, gid: Id, volumes: Vec<Volume>) {
        let mut failed = 0;
        for v in volumes {
            if !self.delete_group_volume(v) {
                failed += 1;
            }
        }
        let r = self.store.write(|tx| {
            let Some(mut g) = sg::get_group(tx, gid)? else { return Ok(false) };
            if sv::in_group(tx, gid)?.is_empty() {
                sg::delete_group(tx, gid)?;
                return Ok(true);
            }
            g.status = GroupStatus::ErrorDeleting;
            g.error_reason = Some(format!("delete failed: {failed} of its volumes could not be deleted"));
            g.updated_at = Timestamp::now();
            sg::save_group(tx, &g)?;
            Ok(false)
        });
        match r {
            Ok(true) => log::info!("group {gid} deleted"),
            Ok(false) => log::error!("group {gid}: delete failed: {failed} volume(s) could not be deleted"),
            Err(e) => log::error!("group {gid}: recording the delete failed: {e}"),
        }
    }

    /// Make a group from a group snapshot or another group (3.14): recorded now with a
    /// `creating` volume per source object, copied in the background.
    pub fn create_group_from_source(
        self: &Arc<Core>,
        caller: &Caller,
        name: Option<String>,
        description: Option<String>,
        source: GroupSource,
    ) -> Result<Group> {
        caller.authorize_own(rules::GROUP_CREATE)?;
        let (g, builds) = self.store.write(|tx| {
            // (copy source, size, volume type) of each new volume, and the group it
            // comes from.
            let (src_group, copies, group_snapshot_id) = match &source {
                GroupSource::GroupSnapshot(gsid) => {
                    let gs = self.group_snapshot_in(tx, caller, gsid, rules::GROUP_SNAPSHOT_GET)?;
                    if gs.status != GroupSnapshotStatus::Available {
                        return Err(invalid_group(format!(
                            "Group snapshot {} status must be available to create a group from it, but current \
                             status is: {}.",
                            gs.id, gs.status
                        )));
                    }
                    let snaps = ss::of_group_snapshot(tx, gs.id)?;
                    if snaps.is_empty() {
                        return Err(invalid_group("Group snapshot is empty. No group will be created.".into()));
                    }
                    let mut copies = Vec::new();
                    for s in snaps {
                        if s.status != SnapshotStatus::Available {
                            return Err(invalid_group(format!(
                                "Snapshot {} of group snapshot {} status must be available, but current status is: \
                                 {}.",
                                s.id, gs.id, s.status
                            )));
                        }
                        let host = s.host.clone().ok_or_else(|| {
                            invalid_group(format!("Snapshot {} of group snapshot {} is on no pool.", s.id, gs.id))
                        })?;
                        copies.push((Source::Snapshot { id: s.id, host }, s.size, s.volume_type_id));
                    }
                    let src_group =
                        sg::get_group(tx, gs.group_id)?.ok_or_else(|| not_found(&gs.group_id.to_string()))?;
                    (src_group, copies, Some(gs.id))
                }
                GroupSource::Group(gid) => {
                    let src = self.group_in(tx, caller, gid, rules::GROUP_GET)?;
                    if src.status != GroupStatus::Available {
                        return Err(invalid_group(format!(
                            "Source group {} status must be available to copy it, but current status is: {}.",
                            src.id, src.status
                        )));
                    }
                    let vols = sv::in_group(tx, src.id)?;
                    if vols.is_empty() {
                        return Err(invalid_group("Source Group is empty. No group will be created.".into()));
                    }
                    let mut copies = Vec::new();
                    for v in vols {
                        if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) {
                            return Err(invalid_group(format!(
                                "Volume {} of source group {} status must be available or in-use, but current \
                                 status is: {}.",
                                v.id, src.id, v.status
                            )));
                        }
                        let host = v.host.clone().ok_or_else(|| {
                            invalid_group(format!("Volume {} of source group {} is on no pool.", v.id, src.id))
                        })?;
                        copies.push((Source::Volume { id: v.id, host }, v.size, v.volume_type_id));
                    }
                    (src, copies, None)
                }
            };
            self.check_can_manage(src_group.host.as_deref(), &format!("group {}", src_group.id))?;
            let mut needs = vec![Need { resource: "groups".into(), delta: 1 }];
            let mut types = Vec::new();
            for (_, size, type_id) in &copies {
                let t = st::get(tx, *type_id)?
                    .ok_or_else(|| Error::Internal(format!("volume type {type_id} of a group's volume is missing")))?;
                needs.extend(volume_needs(*size, &t.name, 1));
                types.push(t);
            }
            let reservations = self.reserve_quota(tx, &caller.project_id, &merge_needs(needs))?;
            let now = Timestamp::now();
            let g = Group {
                id: Id::new(),
                project_id: caller.project_id.clone(),
                user_id: caller.user_id.clone(),
                name: name.clone(),
                description: description.clone(),
                status: GroupStatus::Creating,
                availability_zone: src_group.availability_zone.clone(),
                group_type_id: src_group.group_type_id,
                volume_type_ids: src_group.volume_type_ids.clone(),
                host: src_group.host.clone(),
                group_snapshot_id,
                source_group_id: match &source {
                    GroupSource::Group(_) => Some(src_group.id),
                    GroupSource::GroupSnapshot(_) => None,
                },
                error_reason: None,
                created_at: now,
                updated_at: now,
            };
            sg::insert_group(tx, &g)?;
            let mut builds = Vec::new();
            for ((src, size, _), t) in copies.into_iter().zip(types) {
                let v = Volume {
                    id: Id::new(),
                    project_id: g.project_id.clone(),
                    user_id: g.user_id.clone(),
                    name: None,
                    description: None,
                    size,
                    status: VolumeStatus::Creating,
                    attach_status: AttachStatus::Detached,
                    migration_status: None,
                    availability_zone: g.availability_zone.clone(),
                    bootable: false,
                    multiattach: t.multiattach(),
                    volume_type_id: t.id,
                    volume_type_name: t.name.clone(),
                    snapshot_id: match &src {
                        Source::Snapshot { id, .. } => Some(*id),
                        Source::Volume { .. } => None,
                    },
                    source_volid: match &src {
                        Source::Volume { id, .. } => Some(*id),
                        Source::Snapshot { .. } => None,
                    },
                    group_id: Some(g.id),
                    host: None,
                    task: Some(Task::Scheduling(self.host().to_string())),
                    error_reason: None,
                    consumes_quota: true,
                    created_at: now,
                    updated_at: now,
                    metadata: Default::default(),
                    admin_metadata: Default::default(),
                    provider_auth: None,
                    encryption_key_id: crate::volume::encryption::key_for_new_volume(tx, &t)?,
                    attachments: Vec::new(),
                };
                sv::insert(tx, &v)?;
                builds.push((v, t, src));
            }
            // The records count from now on; the reservation has done its job.
            q::release(tx, &reservations)?;
            Ok((g, builds))
        })?;
        let gid = g.id;
        let origin = caller.origin(&g.project_id);
        self.spawn_blocking("create group from source", move |core| {
            for (v, t, src) in builds {
                create_volume::build(core, v, t, Some(src), None, origin.clone());
            }
            core.conclude_group_create(gid);
        });
        Ok(g)
    }

    /// Decide a `creating` (or `updating`) group from its volumes: `available` when
    /// each is available or in use, else `error`. Used when its copies are done, and
    /// by reconcile.
    pub fn conclude_group_create(&self, gid: Id) {
        let r = self.store.write(|tx| {
            let Some(mut g) = sg::get_group(tx, gid)? else { return Ok(None) };
            if !matches!(g.status, GroupStatus::Creating | GroupStatus::Updating) {
                return Ok(Some(g.status));
            }
            let vols = sv::in_group(tx, gid)?;
            let bad: Vec<String> = vols
                .iter()
                .filter(|v| !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse))
                .map(|v| format!("{} is {}", v.id, v.status))
                .collect();
            if bad.is_empty() {
                g.status = GroupStatus::Available;
            } else {
                g.status = GroupStatus::Error;
                g.error_reason = Some(format!("volumes of the group were not made: {}", bad.join(", ")));
            }
            g.updated_at = Timestamp::now();
            sg::save_group(tx, &g)?;
            Ok(Some(g.status))
        });
        match r {
            Ok(Some(s)) => log::info!("group {gid} is {s}"),
            Ok(None) => log::warn!("group {gid} vanished while being made"),
            Err(e) => log::error!("group {gid}: recording the result failed: {e}"),
        }
    }
}

/// Sum needs of the same resource (a group's volumes of one type share quotas).
fn merge_needs(needs: Vec<Need>) -> Vec<Need> {
    let mut out: Vec<Need> = Vec::new();
    for n in needs {
        match out.iter_mut().find(|o| o.resource == n.resource) {
            Some(o) => o.delta += n.delta,
            None => out.push(n),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_of_one_resource_are_summed() {
        let mut needs = vec![Need { resource: "groups".into(), delta: 1 }];
        needs.extend(volume_needs(2, "t", 1));
        needs.extend(volume_needs(3, "t", 1));
        let m = merge_needs(needs);
        assert_eq!(m.iter().find(|n| n.resource == "gigabytes").unwrap().delta, 5);
        assert_eq!(m.iter().find(|n| n.resource == "volumes_t").unwrap().delta, 2);
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn backends_compare_without_the_pool() {
        assert_eq!(backend_of("h@b#p"), "h@b");
        assert_eq!(backend_of("h@b"), "h@b");
    }
}
