//! Start-up reconcile: make the records and the backends agree before serving.
//!
//! 1. Reservations of the previous process are dropped (its requests are gone).
//! 2. Half-made backend objects (`.partial-volume-*`) are removed.
//! 3. Each volume with recorded work is finished or undone, never guessed:
//!    - `creating`: `available` when its pool holds a complete volume of its size,
//!      else `error` (with the reason, and no host, so it can be deleted at once);
//!    - `deleting`: the delete is resumed;
//!    - `extending`: the extend to the recorded size is resumed (it is idempotent);
//!    - `reverting`: the revert to the recorded snapshot is resumed (it replaces the
//!      volume in one rename, so it is idempotent too).
//! 4. Each snapshot with recorded work likewise: `creating` becomes `available` when
//!    its pool holds it, else `error`; `deleting` is resumed.
//! 5. Exports are rebuilt for every attachment that holds a connection, and what the
//!    exports hold that no attachment explains (a target, a host let in) is removed.
//! 6. Backend objects named like hearth's that no record explains are reported in the
//!    log and left alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use crate::ids::Timestamp;
use crate::model::{Snapshot, SnapshotStatus, Task, Volume, VolumeStatus};
use crate::store::{quotas as q, snapshots as ss, volumes as sv};
use crate::volume::messages::{new_request_id, Origin};
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
    /// Exports rebuilt.
    pub exports: usize,
    /// Exports, or hosts in them, removed because no attachment explains them.
    pub exports_pruned: usize,
    /// Unexplained hearth-named objects.
    pub unexplained: usize,
}

/// Run reconcile; resumed work continues in the background.
pub fn run(core: &Arc<Core>) -> Result<Report> {
    let mut report = Report { reservations: core.store.write(|tx| q::clear_reservations(tx))?, ..Default::default() };
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
    for v in core.store.read(|tx| sv::unsettled(tx))? {
        settle(core, v, &mut report)?;
    }
    for s in core.store.read(|tx| ss::unsettled(tx))? {
        settle_snapshot(core, s)?;
        report.snapshots += 1;
    }
    report.exports = core.restore_exports()?;
    report.exports_pruned = core.prune_exports()?;
    // Objects no record explains.
    for (name, p) in core.pools() {
        let known: BTreeSet<_> = core.store.read(|tx| sv::on_host(tx, name))?.into_iter().collect();
        if let Ok(found) = p.backend.list_volumes(&p.pool) {
            for id in found.into_iter().filter(|id| !known.contains(id)) {
                log::warn!(
                    "reconcile: pool {name} holds {} but no volume record explains it; leaving it alone",
                    crate::names::volume(id)
                );
                report.unexplained += 1;
            }
        }
        let known: BTreeSet<_> = core.store.read(|tx| ss::on_host(tx, name))?.into_iter().collect();
        if let Ok(found) = p.backend.list_snapshots(&p.pool) {
            for id in found.into_iter().filter(|id| !known.contains(id)) {
                log::warn!(
                    "reconcile: pool {name} holds {} but no snapshot record explains it; leaving it alone",
                    crate::names::snapshot(id)
                );
                report.unexplained += 1;
            }
        }
    }
    log::info!("reconcile: {report:?}");
    Ok(report)
}

fn settle(core: &Arc<Core>, mut v: Volume, report: &mut Report) -> Result<()> {
    let task = v.task.clone();
    match (v.status, task) {
        (VolumeStatus::Creating, _) | (_, Some(Task::Scheduling | Task::BackendCreate)) => {
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
            core.store.write(|tx| sv::save(tx, &v))
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
            core.spawn_blocking("resume extend", move |core| core.finish_extend(v, size, &[], &origin));
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
            core.store.write(|tx| ss::save(tx, &s))
        }
    }
}
