//! Start-up reconcile: make the records and the backends agree before serving.
//!
//! Reconcile covers this node's own work only: records on another node's pools (a
//! fleet sharing a PostgreSQL store) are left alone, to be settled by that node when
//! it starts ([`Core::owns`]); a create not yet scheduled is settled by the node that
//! accepted it (its task names it: [`Task::Scheduling`], [`Core::elsewhere`]).
//!
//! 1. Reservations of this node's previous process are dropped (its requests are
//!    gone); other nodes' stay.
//! 2. Half-made backend objects (`.partial-volume-*`) are removed; then backups are
//!    settled ([`super::backups`]): a `creating` backup becomes `available` when its
//!    manifest is in the repository, else `error`, and its volume (or snapshot) comes
//!    back from `backing-up`; a `deleting` one is deleted; a `restoring` one is
//!    `available` again and the volume it was writing into `error_restoring` (a new
//!    volume: `error`); temporary snapshots of in-use volumes are removed. The
//!    repository's chunks that no manifest names are collected in the background.
//! 3. Each volume with recorded work is finished or undone, never guessed:
//!    - `creating`: `available` when its pool holds a complete volume of its size,
//!      else `error` (with the reason, and no host, so it can be deleted at once),
//!      and a user message says so, as when a create fails while hearthd runs;
//!    - `deleting`: the delete is resumed;
//!    - `extending`: the extend to the recorded size is resumed (it is idempotent);
//!    - `reverting`: the revert to the recorded snapshot is resumed (it replaces the
//!      volume in one rename, so it is idempotent too).
//! 4. Each snapshot with recorded work likewise: `creating` becomes `available` when
//!    its pool holds it, else `error` with a user message; `deleting` is resumed.
//!    Volumes of a `deleting` group and snapshots of a `deleting` group snapshot are
//!    left to step 5, which deletes them in the group's order.
//! 5. Generic volume groups and group snapshots, now that their members are settled:
//!    a `creating` group (made from a source) becomes `available` when every volume
//!    is, else `error`; a `creating` group snapshot `available` when every snapshot
//!    is, else `error`; a `deleting` one resumes deleting its members, then itself.
//! 6. Exports are rebuilt for every attachment that holds a connection, and what the
//!    exports hold that no attachment explains (a target, a host let in) is removed.
//! 7. Backend objects named like hearth's that no record explains are reported in the
//!    log and left alone ([`report_unexplained`], in the background once hearth serves).
//!
//! Transfers need nothing here: they are records only, and each of their changes is
//! one transaction (see [`super::transfers`]), so an `awaiting-transfer` volume always
//! has its transfer and stays so across a restart.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use crate::ids::Timestamp;
use crate::model::{GroupSnapshotStatus, GroupStatus};
use crate::model::{Snapshot, SnapshotStatus, Task, Volume, VolumeStatus};
use crate::store::{groups as sg, quotas as q, snapshots as ss, volumes as sv};
use crate::volume::messages::{action, detail, new_request_id, Origin, Resource};
use crate::volume::Core;

/// What reconcile found and did, for the log and for tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Reservations dropped.
    pub reservations: usize,
    /// Partial objects removed.
    pub partials: usize,
    /// Creates finished as available.
    pub finished: usize,
    /// Creates marked error.
    pub failed: usize,
    /// Deletes and extends resumed.
    pub resumed: usize,
    /// Snapshots settled (finished, failed or resumed).
    pub snapshots: usize,
    /// Groups and group snapshots settled (decided or resumed).
    pub groups: usize,
    /// Exports rebuilt.
    pub exports: usize,
    /// Exports, or hosts in them, removed because no attachment explains them.
    pub exports_pruned: usize,
    /// Backups, and volumes or snapshots they held, settled.
    pub backups: usize,
    /// Unfinished records left alone: another node's (on its pools, or accepted by it).
    pub elsewhere: usize,
}

/// Run reconcile; resumed work continues in the background.
pub fn run(core: &Arc<Core>) -> Result<Report> {
    let node = core.host().to_string();
    let mut report =
        Report { reservations: core.store.write(|tx| q::clear_reservations(tx, &node))?, ..Default::default() };
    for (name, p) in core.pools() {
        match p.backend.remove_partial(&p.pool) {
            Ok(removed) => {
                for r in &removed {
                    log::warn!("reconcile: removed half-made object {r} in pool {name}");
                }
                report.partials += removed.len();
            }
            Err(e) => log::error!("reconcile: cannot clean pool {name}: {e}"),
        }
    }
    let (backups, elsewhere) = core.reconcile_backups()?;
    report.backups = backups;
    report.elsewhere += elsewhere;
    // Members of groups and group snapshots being deleted are deleted by step 5.
    let mut groups = core.store.read(sg::unsettled_groups)?;
    let mut group_snapshots = core.store.read(sg::unsettled_snapshots)?;
    let before = groups.len() + group_snapshots.len();
    groups.retain(|g| is_ours(core, "group", g.id, g.host.as_deref()));
    let group_hosts = core.store.read(|tx| {
        group_snapshots
            .iter()
            .map(|gs| Ok(sg::get_group(tx, gs.group_id)?.and_then(|g| g.host)))
            .collect::<Result<Vec<_>>>()
    })?;
    let mut hosts = group_hosts.iter();
    group_snapshots.retain(|gs| is_ours(core, "group snapshot", gs.id, hosts.next().and_then(|h| h.as_deref())));
    report.elsewhere += before - groups.len() - group_snapshots.len();
    let mut group_members = BTreeSet::new();
    let mut group_snapshot_members = BTreeSet::new();
    core.store.read(|tx| {
        for g in groups.iter().filter(|g| g.status == GroupStatus::Deleting) {
            group_members.extend(sv::in_group(tx, g.id)?.into_iter().map(|v| v.id));
        }
        for gs in group_snapshots.iter().filter(|s| s.status == GroupSnapshotStatus::Deleting) {
            group_snapshot_members.extend(ss::of_group_snapshot(tx, gs.id)?.into_iter().map(|s| s.id));
        }
        Ok(())
    })?;
    for v in core.store.read(sv::unsettled)? {
        if let Some(why) = core.elsewhere(&v) {
            log::info!("reconcile: volume {} {why}: left to that node", v.id);
            report.elsewhere += 1;
        } else if !group_members.contains(&v.id) {
            settle(core, v, &mut report)?;
        }
    }
    for s in core.store.read(ss::unsettled)? {
        if !is_ours(core, "snapshot", s.id, s.host.as_deref()) {
            report.elsewhere += 1;
        } else if !group_snapshot_members.contains(&s.id) {
            settle_snapshot(core, s)?;
            report.snapshots += 1;
        }
    }
    for g in groups {
        report.groups += 1;
        if g.status == GroupStatus::Deleting {
            log::info!("reconcile: resuming the delete of group {}", g.id);
            let members = core.store.read(|tx| sv::in_group(tx, g.id))?;
            let doomed: Vec<Volume> = members
                .into_iter()
                .filter(|v| v.status == VolumeStatus::Deleting || v.task == Some(Task::BackendDelete))
                .collect();
            core.spawn_blocking("resume group delete", move |core| core.finish_delete_group(g.id, doomed));
        } else {
            core.conclude_group_create(g.id);
        }
    }
    for gs in group_snapshots {
        report.groups += 1;
        if gs.status == GroupSnapshotStatus::Deleting {
            log::info!("reconcile: resuming the delete of group snapshot {}", gs.id);
            let snaps = core.store.read(|tx| ss::of_group_snapshot(tx, gs.id))?;
            let doomed: Vec<Snapshot> = snaps
                .into_iter()
                .filter(|s| s.status == SnapshotStatus::Deleting || s.task == Some(Task::BackendDelete))
                .collect();
            let origin = Origin { project_id: gs.project_id.clone(), request_id: new_request_id() };
            core.spawn_blocking("resume group snapshot delete", move |core| {
                core.finish_delete_group_snapshot(gs.id, doomed, &origin)
            });
        } else {
            core.conclude_group_snapshot_create(gs.id);
        }
    }
    report.exports = core.restore_exports()?;
    report.exports_pruned = core.prune_exports()?;
    log::info!("reconcile: {report:?}");
    Ok(report)
}

/// Whether reconcile settles a record on `pool` here: `true` when this node owns it;
/// otherwise says in the log which node it is left to, and returns `false`.
fn is_ours(core: &Core, what: &str, id: impl std::fmt::Display, pool: Option<&str>) -> bool {
    if core.owns(pool) {
        return true;
    }
    log::info!("reconcile: {what} {id} is on {}, another node's pool: left to that node", pool.unwrap_or_default());
    false
}

/// Step 7: report backend objects named like hearth's that no record explains, and
/// leave them alone. Run in the background after start-up (it lists every pool);
/// returns how many it found.
pub fn report_unexplained(core: &Arc<Core>) -> Result<usize> {
    let mut unexplained = 0;
    for (name, p) in core.pools() {
        let known: BTreeSet<_> = core.store.read(|tx| sv::on_host(tx, name))?.into_iter().collect();
        if let Ok(found) = p.backend.list_volumes(&p.pool) {
            for id in found.into_iter().filter(|id| !known.contains(id)) {
                log::warn!(
                    "reconcile: pool {name} holds {} but no volume record explains it; leaving it alone",
                    crate::names::volume(id)
                );
                unexplained += 1;
            }
        }
        let mut known: BTreeSet<_> = core.store.read(|tx| ss::on_host(tx, name))?.into_iter().collect();
        // Backups' temporary snapshots, and the ones kept for incrementals.
        known.extend(
            core.store
                .read(crate::store::backups::with_temp_snapshot)?
                .into_iter()
                .filter(|b| b.temp_snapshot_host.as_deref() == Some(name.as_str()))
                .filter_map(|b| b.temp_snapshot_id),
        );
        if let Ok(found) = p.backend.list_snapshots(&p.pool) {
            for id in found.into_iter().filter(|id| !known.contains(id)) {
                log::warn!(
                    "reconcile: pool {name} holds {} but no snapshot record explains it; leaving it alone",
                    crate::names::snapshot(id)
                );
                unexplained += 1;
            }
        }
    }
    if unexplained > 0 {
        log::warn!("reconcile: {unexplained} object(s) no record explains, left alone");
    }
    Ok(unexplained)
}

fn settle(core: &Arc<Core>, mut v: Volume, report: &mut Report) -> Result<()> {
    let task = v.task.clone();
    match (v.status, task) {
        (status, Some(Task::BackupRestore(backup))) => {
            // Half restored: neither the old data nor the backup's.
            v.status =
                if status == VolumeStatus::Creating { VolumeStatus::Error } else { VolumeStatus::ErrorRestoring };
            v.task = None;
            v.error_reason = Some(format!("hearthd stopped before the restore of backup {backup} finished"));
            v.updated_at = Timestamp::now();
            report.failed += 1;
            log::warn!("reconcile: volume {} was being restored from backup {backup}; now {}", v.id, v.status);
            // The user reads why, as after a restore that failed while hearthd ran.
            let origin = Origin { project_id: v.project_id.clone(), request_id: new_request_id() };
            core.store.write(|tx| {
                sv::save(tx, &v)?;
                core.record_message(
                    tx,
                    &origin,
                    Resource::VolumeBackup,
                    backup,
                    action::BACKUP_RESTORE,
                    detail::BACKUP_RESTORE_ERROR,
                )
            })
        }
        (VolumeStatus::Creating, _) | (_, Some(Task::Scheduling(_) | Task::BackendCreate)) => {
            let scheduled = v.host.is_some();
            let complete = match &v.host {
                Some(host) => match core.pool(host) {
                    Ok(p) => p.backend.volume_size(&p.pool, v.id)?.is_some_and(|s| s >= v.size << 30),
                    Err(_) => false,
                },
                None => false,
            };
            v.task = None;
            v.updated_at = Timestamp::now();
            if complete {
                if v.status == VolumeStatus::Creating {
                    v.status = VolumeStatus::Available;
                }
                report.finished += 1;
                log::info!("reconcile: volume {} was complete on its pool; now {}", v.id, v.status);
            } else {
                v.status = VolumeStatus::Error;
                v.host = None;
                v.error_reason = Some("hearthd stopped before the volume was created".into());
                report.failed += 1;
                log::warn!("reconcile: volume {} was not created before hearthd stopped; now error", v.id);
            }
            let origin = Origin { project_id: v.project_id.clone(), request_id: new_request_id() };
            core.store.write(|tx| {
                sv::save(tx, &v)?;
                if v.status != VolumeStatus::Error {
                    return Ok(());
                }
                // The user reads why, as after a create that failed while hearthd ran.
                let (act, det) = if scheduled {
                    (action::CREATE_VOLUME_FROM_BACKEND, detail::DRIVER_FAILED_CREATE)
                } else {
                    (action::SCHEDULE_ALLOCATE_VOLUME, detail::UNKNOWN_ERROR)
                };
                core.record_message(tx, &origin, Resource::Volume, v.id, act, det)
            })
        }
        (_, Some(Task::BackendDelete)) | (VolumeStatus::Deleting, None) => {
            report.resumed += 1;
            log::info!("reconcile: resuming the delete of volume {}", v.id);
            if v.host.is_none() {
                return core.store.write(|tx| sv::delete(tx, v.id));
            }
            core.spawn_blocking("resume delete", move |core| core.finish_delete(v));
            Ok(())
        }
        (_, Some(Task::BackendExtend(size))) => {
            report.resumed += 1;
            log::info!("reconcile: resuming the extend of volume {} to {size}", v.id);
            let origin = Origin { project_id: v.project_id.clone(), request_id: new_request_id() };
            core.spawn_blocking("resume extend", move |core| core.finish_extend(v, size, &[], &origin, None));
            Ok(())
        }
        (_, Some(Task::BackendRevert(snapshot))) => {
            report.resumed += 1;
            log::info!("reconcile: resuming the revert of volume {} to snapshot {snapshot}", v.id);
            core.spawn_blocking("resume revert", move |core| core.finish_revert(&v, snapshot));
            Ok(())
        }
        (VolumeStatus::Extending, None) => {
            // Extending without a recorded size: nothing was started; undo the status.
            v.status = v.resting_status();
            v.updated_at = Timestamp::now();
            core.store.write(|tx| sv::save(tx, &v))
        }
        _ => Ok(()),
    }
}

fn settle_snapshot(core: &Arc<Core>, mut s: Snapshot) -> Result<()> {
    match (s.status, s.task.clone()) {
        (_, Some(Task::BackendDelete)) | (SnapshotStatus::Deleting, None) => {
            log::info!("reconcile: resuming the delete of snapshot {}", s.id);
            let origin = Origin { project_id: s.project_id.clone(), request_id: new_request_id() };
            core.spawn_blocking("resume snapshot delete", move |core| {
                core.finish_delete_snapshot(&s, &origin);
            });
            Ok(())
        }
        _ => {
            let done = match &s.host {
                Some(host) => match core.pool(host) {
                    Ok(p) => p.backend.snapshot_exists(&p.pool, s.id)?,
                    Err(_) => false,
                },
                None => false,
            };
            s.task = None;
            s.updated_at = Timestamp::now();
            if done {
                s.status = SnapshotStatus::Available;
                s.progress = "100%".into();
                log::info!("reconcile: snapshot {} was complete on its pool; now available", s.id);
            } else {
                s.status = SnapshotStatus::Error;
                s.error_reason = Some("hearthd stopped before the snapshot was made".into());
                log::warn!("reconcile: snapshot {} was not made before hearthd stopped; now error", s.id);
            }
            let origin = Origin { project_id: s.project_id.clone(), request_id: new_request_id() };
            core.store.write(|tx| {
                ss::save(tx, &s)?;
                if s.status != SnapshotStatus::Error {
                    return Ok(());
                }
                core.record_message(
                    tx,
                    &origin,
                    Resource::VolumeSnapshot,
                    s.id,
                    action::SNAPSHOT_CREATE,
                    detail::SNAPSHOT_CREATE_ERROR,
                )
            })
        }
    }
}
