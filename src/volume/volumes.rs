//! Volume operations: show, list, update, delete, actions and metadata.
//!
//! Creation is the flow in [`crate::flow::create_volume`]. Each change here is one
//! store transaction that loads the record, checks [`state`](super::state) and saves;
//! backend work (delete, extend) is recorded as the volume's task before it is
//! started in the background.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::events::{event, Resource as Ev};
use crate::flow::create_volume::{self, NewVolume};
use crate::ids::{Gib, Id, Timestamp};
use crate::model::{AttachStatus, Task, Volume, VolumeStatus};
use crate::policy::rules;
use crate::query::{ListQuery, Summary};
use crate::scheduler::Request;
use crate::store::{quotas as q, volumes as sv};
use crate::volume::messages::{action, detail, detail_for, Origin, Resource};
use crate::volume::quotas::Need;
use crate::volume::{state, Caller, Core, MetadataWrite};

/// Changes to a volume's name, description or metadata (`PUT /volumes/{id}`).
#[derive(Clone, Debug, Default)]
pub struct VolumeUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New metadata (replaces all).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// An admin's status reset (`os-reset_status`).
#[derive(Clone, Debug, Default)]
pub struct StatusReset {
    /// New status.
    pub status: Option<VolumeStatus>,
    /// New attach status.
    pub attach_status: Option<AttachStatus>,
    /// New migration status.
    pub migration_status: Option<String>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Volume {id} could not be found."))
}

impl Core {
    /// Load a volume the caller may see (another project's is 404: existence never
    /// leaks), and refuse (403) unless policy lets the caller do `rule` on it.
    pub fn volume_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<Volume> {
        let vid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match sv::get(conn, vid)? {
            Some(v) if caller.is_admin || v.project_id == caller.project_id => {
                caller.authorize(rule, &v.project_id)?;
                Ok(v)
            }
            _ => Err(not_found(id)),
        }
    }

    /// Load (for `rule`), change and save a volume in one write transaction.
    fn change_volume<T>(
        &self,
        caller: &Caller,
        id: &str,
        rule: &str,
        mut f: impl FnMut(&Connection, &mut Volume) -> Result<T>,
    ) -> Result<(Volume, T)> {
        self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rule)?;
            let out = f(tx, &mut v)?;
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)?;
            Ok((v, out))
        })
    }

    /// Create a volume (202: the record is `creating`).
    pub fn create_volume(self: &Arc<Core>, caller: &Caller, req: NewVolume) -> Result<Volume> {
        create_volume::create(self, caller, req)
    }

    /// Show a volume.
    pub fn get_volume(&self, caller: &Caller, id: &str) -> Result<Volume> {
        self.store.read(|tx| self.volume_in(tx, caller, id, rules::VOLUME_GET))
    }

    /// Scope a list to what the caller may see: its own project unless an admin asks
    /// for all projects.
    fn scope(&self, caller: &Caller, q: &mut ListQuery, all_tenants: bool) {
        if !(caller.is_admin && all_tenants) {
            q.project = Some(caller.project_id.clone());
        }
    }

    /// List volumes, and count all matches when `with_count`.
    pub fn list_volumes(
        &self,
        caller: &Caller,
        mut q: ListQuery,
        all_tenants: bool,
        with_count: bool,
    ) -> Result<(Vec<Volume>, Option<u64>)> {
        caller.authorize_own(rules::VOLUME_GET_ALL)?;
        self.scope(caller, &mut q, all_tenants);
        self.store.read(|tx| {
            let list = sv::list(tx, &q)?;
            let count = if with_count { Some(sv::count(tx, &q)?) } else { None };
            Ok((list, count))
        })
    }

    /// Totals of the caller's volumes.
    pub fn volume_summary(&self, caller: &Caller, mut q: ListQuery, all_tenants: bool) -> Result<Summary> {
        caller.authorize_own(rules::VOLUME_GET_ALL)?;
        self.scope(caller, &mut q, all_tenants);
        self.store.read(|tx| sv::summary(tx, &q))
    }

    /// Change name, description or metadata.
    pub fn update_volume(&self, caller: &Caller, id: &str, upd: VolumeUpdate) -> Result<Volume> {
        let (v, ()) = self.change_volume(caller, id, rules::VOLUME_UPDATE, |tx, v| {
            if let Some(n) = upd.name.clone() {
                v.name = Some(n);
            }
            if let Some(d) = upd.description.clone() {
                v.description = Some(d);
            }
            if let Some(m) = upd.metadata.clone() {
                state::check_metadata_update(v)?;
                sv::replace_metadata(tx, v.id, &m, false)?;
                v.metadata = m;
            }
            Ok(())
        })?;
        Ok(v)
    }

    /// Delete a volume: checked and marked `deleting` now, removed in the background.
    /// A volume with snapshots needs `cascade` (its snapshots go first); one being
    /// copied into a new volume waits; one never placed on a pool goes at once.
    pub fn delete_volume(self: &Arc<Core>, caller: &Caller, id: &str, cascade: bool, force: bool) -> Result<()> {
        let rule = if force { rules::VOLUME_FORCE_DELETE } else { rules::VOLUME_DELETE };
        // Something on the storage host holding the volume open: refuse now rather
        // than fail in the background.
        let current = self.store.read(|tx| self.volume_in(tx, caller, id, rule))?;
        self.check_can_manage(current.host.as_deref(), &format!("volume {}", current.id))?;
        if let Some(pool) = current.host.as_deref().and_then(|h| self.pool(h).ok()) {
            if pool.backend.volume_busy(&pool.pool, current.id)? {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} is busy: it is open on the storage host.",
                    current.id
                )));
            }
        }
        let gone = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rule)?;
            if let Some(g) = v.group_id {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} must not belong to a group: remove it from group {g} first, or \
                     delete the group with delete-volumes.",
                    v.id
                )));
            }
            state::check_delete(&v, force)?;
            if !v.attachments.is_empty() {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} has {} attachment(s); delete them first.",
                    v.id,
                    v.attachments.len()
                )));
            }
            if sv::being_copied_from(tx, v.id)? > 0 {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} is being copied into a new volume; delete it when that is done.",
                    v.id
                )));
            }
            let snapshots = crate::store::snapshots::of_volume(tx, v.id)?;
            if !snapshots.is_empty() && !cascade {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} still has {} dependent snapshots.",
                    v.id,
                    snapshots.len()
                )));
            }
            let snapshots = if cascade { self.mark_snapshots_deleting(tx, &v)? } else { Vec::new() };
            if v.host.is_none() && v.task.is_none() {
                sv::delete(tx, v.id)?;
                return Ok(Err(v));
            }
            if v.host.is_none() {
                // Still being scheduled: let the create flow finish first.
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} is still being created; try again when it is available or in error.",
                    v.id
                )));
            }
            v.status = VolumeStatus::Deleting;
            v.task = Some(Task::BackendDelete);
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)?;
            Ok(Ok((v, snapshots)))
        })?;
        // A volume on no pool is gone with its record.
        let gone = gone.map_err(|v| {
            event(Ev::Volume, "delete", "start", v.id, &v.project_id).status(VolumeStatus::Deleting).emit();
            event(Ev::Volume, "delete", "end", v.id, &v.project_id).status("deleted").emit();
        });
        if let Ok((v, snapshots)) = gone {
            let origin = caller.origin(&v.project_id);
            event(Ev::Volume, "delete", "start", v.id, &v.project_id).status(v.status).emit();
            self.spawn_blocking("delete volume", move |core| {
                // Snapshots first (cascade); the volume only when they are all gone.
                if snapshots.iter().all(|s| core.finish_delete_snapshot(s, &origin)) {
                    core.finish_delete(v);
                } else {
                    core.fail_delete(&v, "a snapshot of the volume could not be deleted".into());
                }
            });
        }
        Ok(())
    }

    fn fail_delete(&self, v: &Volume, why: String) {
        log::error!("volume {}: delete failed: {why}", v.id);
        event(Ev::Volume, "delete", "error", v.id, &v.project_id)
            .status(VolumeStatus::ErrorDeleting)
            .reason(&why)
            .emit();
        let r = self.store.write(|tx| {
            if let Some(mut cur) = sv::get(tx, v.id)? {
                cur.status = VolumeStatus::ErrorDeleting;
                cur.task = None;
                cur.error_reason = Some(format!("delete failed: {why}"));
                cur.updated_at = Timestamp::now();
                sv::save(tx, &cur)?;
            }
            Ok(())
        });
        if let Err(e) = r {
            log::error!("volume {}: recording the failed delete failed: {e}", v.id);
        }
    }

    /// The background half of a delete (also resumed by reconcile).
    pub fn finish_delete(&self, v: Volume) {
        let host = v.host.clone().unwrap_or_default();
        let before = self.footprint(&host, v.id);
        self.scheduler.begin(&host);
        let result = self.pool(&host).and_then(|p| p.backend.delete_volume(&p.pool, v.id));
        self.settle_volume(&host, 0, v.id, before);
        match result {
            Ok(outcome) => {
                if let Err(e) = self.store.write(|tx| sv::delete(tx, v.id)) {
                    log::error!("volume {}: removing the record failed: {e}", v.id);
                    return;
                }
                log::info!("volume {} deleted from {host} ({outcome:?})", v.id);
                event(Ev::Volume, "delete", "end", v.id, &v.project_id)
                    .status("deleted")
                    .payload(serde_json::json!({"size": v.size, "host": host}))
                    .emit();
                // Snapshots its backups kept for incrementals have nothing to compare with.
                self.prune_kept_snapshots(v.id);
            }
            Err(e) => self.fail_delete(&v, format!("on {host}: {e}")),
        }
    }

    /// Grow a volume (`os-extend`): checks, quota and pool capacity now, the backend
    /// in the background.
    pub fn extend_volume(self: &Arc<Core>, caller: &Caller, id: &str, new_size: u64, in_use_ok: bool) -> Result<()> {
        let size = Gib::new(new_size)?;
        // Placements wait for the pools' first measurements at start-up: wait here,
        // not inside the transaction, where every other request's writes would wait too.
        self.scheduler.wait_first_reports();
        let (v, (reservations, pool, delta)) = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_EXTEND)?;
            if v.status == VolumeStatus::InUse {
                caller.authorize(rules::VOLUME_EXTEND_ATTACHED, &v.project_id)?;
            }
            self.check_can_manage(v.host.as_deref(), &format!("volume {}", v.id))?;
            state::check_extend(&v, new_size, in_use_ok)?;
            let delta = new_size - v.size;
            self.check_per_volume_size(tx, &v.project_id, new_size)?;
            let needs = [
                Need { resource: "gigabytes".into(), delta: delta as i64 },
                Need { resource: format!("gigabytes_{}", v.volume_type_name), delta: delta as i64 },
            ];
            let reservations = self.reserve_quota(tx, &v.project_id, &needs)?;
            let pool = v.host.clone().ok_or_else(|| {
                Error::InvalidState(format!("Invalid volume: Volume {} has no pool to grow on.", v.id))
            })?;
            let vtype = crate::store::types::get(tx, v.volume_type_id)?
                .ok_or_else(|| Error::Internal(format!("volume {} has no type", v.id)))?;
            self.scheduler
                .reserve_on(
                    &pool,
                    &Request {
                        size_gb: delta,
                        volume_type: &vtype,
                        availability_zone: &v.availability_zone,
                        exclude: &[],
                    },
                )
                .map_err(|e| {
                    Error::Invalid(format!("Insufficient free space in pool {pool} to extend volume {}: {e}", v.id))
                })?;
            v.status = VolumeStatus::Extending;
            v.task = Some(Task::BackendExtend(size));
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)?;
            Ok((v, (reservations, pool, delta)))
        })?;
        let origin = caller.origin(&v.project_id);
        self.spawn_blocking("extend volume", move |core| {
            core.finish_extend(v, size, &reservations, &origin, Some((&pool, delta)));
        });
        Ok(())
    }

    /// The background half of an extend (also resumed by reconcile); a failure is a
    /// user message for `origin`. `charge`: the pool and GiB the request charged (a
    /// resumed extend was not).
    pub fn finish_extend(
        &self,
        v: Volume,
        size: Gib,
        reservations: &[Id],
        origin: &Origin,
        charge: Option<(&str, u64)>,
    ) {
        let host = v.host.clone().unwrap_or_default();
        let before = self.footprint(&host, v.id);
        if charge.is_none() {
            self.scheduler.begin(&host);
        }
        let result = self.pool(&host).and_then(|p| p.backend.extend_volume(&p.pool, v.id, size));
        self.settle_volume(
            charge.map_or(host.as_str(), |(pool, _)| pool),
            charge.map_or(0, |(_, gb)| gb),
            v.id,
            before,
        );
        let r = self.store.write(|tx| {
            q::release(tx, reservations)?;
            let Some(mut cur) = sv::get(tx, v.id)? else {
                return Ok(());
            };
            cur.task = None;
            cur.updated_at = Timestamp::now();
            match &result {
                Ok(_) => {
                    cur.size = size.get();
                    if cur.status == VolumeStatus::Extending {
                        cur.status = cur.resting_status();
                    }
                }
                Err(e) => {
                    cur.status = VolumeStatus::ErrorExtending;
                    cur.error_reason = Some(format!("extend to {size} failed: {e}"));
                    let detail = detail_for(e, detail::DRIVER_FAILED_EXTEND);
                    self.record_message(tx, origin, Resource::Volume, v.id, action::EXTEND_VOLUME, detail)?;
                }
            }
            sv::save(tx, &cur)
        });
        match (&result, r) {
            (_, Err(e)) => log::error!("volume {}: recording the extend failed: {e}", v.id),
            (Ok(_), Ok(())) => {
                log::info!("volume {} extended to {size}", v.id);
                event(Ev::Volume, "resize", "end", v.id, &v.project_id)
                    .status(v.resting_status())
                    .payload(serde_json::json!({"size": size.get()}))
                    .emit();
            }
            (Err(e), Ok(())) => {
                log::error!("volume {}: extend failed: {e}", v.id);
                event(Ev::Volume, "resize", "error", v.id, &v.project_id)
                    .status(VolumeStatus::ErrorExtending)
                    .reason(e)
                    .emit();
            }
        }
    }

    /// `os-retype`: give a volume another type. hearth retypes in place, when the
    /// volume's pool suits the new type (the scheduler's filters) with the same
    /// provisioning; a retype that would need the volume moved to another pool is
    /// refused (400) whatever `migration_policy` says, since hearth does not migrate
    /// volumes. The new type's quotas are checked; usage follows the record.
    pub fn retype_volume(
        &self,
        caller: &Caller,
        id: &str,
        new_type: &str,
        migration_policy: Option<&str>,
    ) -> Result<()> {
        if !matches!(migration_policy, None | Some("never") | Some("on-demand")) {
            return Err(Error::Invalid(format!(
                "Invalid input received: migration_policy must be 'never' or 'on-demand', not '{}'.",
                migration_policy.unwrap_or_default()
            )));
        }
        // Placements wait for the pools' first measurements at start-up: wait here,
        // not inside the transaction, where every other request's writes would wait too.
        self.scheduler.wait_first_reports();
        self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_RETYPE)?;
            if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available or in-use to retype, but current status is: {}.",
                    v.id, v.status
                )));
            }
            self.check_can_manage(v.host.as_deref(), &format!("volume {}", v.id))?;
            if let Some(g) = v.group_id {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} must not be part of a group to be retyped; it is in group {g}.",
                    v.id
                )));
            }
            let new = self.type_by_name_or_id(tx, caller, new_type)?;
            if new.id == v.volume_type_id {
                return Err(Error::Invalid(format!(
                    "Invalid input received: New volume_type same as original: {}.",
                    new.name
                )));
            }
            let old = crate::store::types::get(tx, v.volume_type_id)?
                .ok_or_else(|| Error::Internal(format!("volume {} has no type", v.id)))?;
            if v.status == VolumeStatus::InUse && new.multiattach() != v.multiattach {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} is in use: its multiattach setting cannot change by retype.",
                    v.id
                )));
            }
            crate::volume::encryption::check_retype(tx, &old, &new)?;
            crate::volume::qos::check_retype(tx, v.status, &old, &new)?;
            let pool = v.host.clone().ok_or_else(|| {
                Error::InvalidState(format!("Invalid volume: Volume {} is not on any pool.", v.id))
            })?;
            let provisioning = |t: &crate::model::VolumeType| t.extra_specs.get("provisioning:type").cloned();
            let why = self
                .scheduler
                .refuses(&pool, &Request { size_gb: 0, volume_type: &new, availability_zone: &v.availability_zone, exclude: &[] })
                .or_else(|| {
                    (provisioning(&old) != provisioning(&new))
                        .then(|| "the new type asks for other provisioning (thin or thick)".to_string())
                });
            if let Some(why) = why {
                return Err(Error::Invalid(format!(
                    "Invalid input received: retyping volume {} to {} would need it moved to another pool ({why}); \
                     hearth does not migrate volumes.",
                    v.id, new.name
                )));
            }
            let needs = [
                Need { resource: format!("volumes_{}", new.name), delta: 1 },
                Need { resource: format!("gigabytes_{}", new.name), delta: v.size as i64 },
            ];
            let reservations = self.reserve_quota(tx, &v.project_id, &needs)?;
            sv::set_type(tx, v.id, new.id, new.multiattach())?;
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)?;
            // The record counts from now on.
            q::release(tx, &reservations)?;
            log::info!("volume {} retyped from {} to {}", v.id, old.name, new.name);
            Ok(())
        })
    }

    /// `os-reset_status` (admin).
    pub fn reset_volume_status(&self, caller: &Caller, id: &str, reset: StatusReset) -> Result<()> {
        self.change_volume(caller, id, rules::VOLUME_RESET_STATUS, |_, v| {
            if let Some(s) = reset.status {
                v.status = s;
            }
            if let Some(a) = reset.attach_status {
                v.attach_status = a;
            }
            if let Some(m) = reset.migration_status.clone() {
                v.migration_status = if m == "none" { None } else { Some(m) };
            }
            Ok(())
        })?;
        Ok(())
    }

    /// `os-update_readonly_flag`.
    pub fn set_volume_readonly(&self, caller: &Caller, id: &str, readonly: bool) -> Result<()> {
        self.change_volume(caller, id, rules::VOLUME_UPDATE_READONLY, |tx, v| {
            state::check_readonly_update(v)?;
            v.admin_metadata.insert("readonly".into(), if readonly { "True" } else { "False" }.into());
            sv::replace_metadata(tx, v.id, &v.admin_metadata, true)
        })?;
        Ok(())
    }

    /// `os-set_bootable`.
    pub fn set_volume_bootable(&self, caller: &Caller, id: &str, bootable: bool) -> Result<()> {
        self.change_volume(caller, id, rules::VOLUME_UPDATE, |_, v| {
            v.bootable = bootable;
            Ok(())
        })?;
        Ok(())
    }

    /// A volume's user metadata.
    pub fn volume_metadata(&self, caller: &Caller, id: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.store.read(|tx| self.volume_in(tx, caller, id, rules::VOLUME_GET_METADATA))?.metadata)
    }

    /// Merge or replace metadata; returns all of it.
    pub fn set_volume_metadata(
        &self,
        caller: &Caller,
        id: &str,
        meta: BTreeMap<String, String>,
        how: MetadataWrite,
    ) -> Result<BTreeMap<String, String>> {
        let rule = match how {
            MetadataWrite::Merge => rules::VOLUME_CREATE_METADATA,
            MetadataWrite::MergeKey | MetadataWrite::Replace => rules::VOLUME_UPDATE_METADATA,
        };
        let (v, ()) = self.change_volume(caller, id, rule, |tx, v| {
            state::check_metadata_update(v)?;
            if how == MetadataWrite::Replace {
                v.metadata = meta.clone();
            } else {
                v.metadata.extend(meta.clone());
            }
            sv::replace_metadata(tx, v.id, &v.metadata, false)
        })?;
        Ok(v.metadata)
    }

    /// Remove one metadata key.
    pub fn delete_volume_metadata(&self, caller: &Caller, id: &str, key: &str) -> Result<()> {
        self.change_volume(caller, id, rules::VOLUME_DELETE_METADATA, |tx, v| {
            state::check_metadata_update(v)?;
            if v.metadata.remove(key).is_none() {
                return Err(Error::NotFound("Metadata item was not found.".into()));
            }
            sv::replace_metadata(tx, v.id, &v.metadata, false)
        })?;
        Ok(())
    }
}
