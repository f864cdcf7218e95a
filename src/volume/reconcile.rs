//! Start-up reconcile: make the records and the backends agree before serving.
//!
//! 1. Reservations of the previous process are dropped (its requests are gone).
//! 2. Half-made backend objects (`.partial-volume-*`) are removed.
//! 3. Each volume with recorded work is finished or undone, never guessed:
//!    - `creating`: `available` when its pool holds a complete volume of its size,
//!      else `error` (with the reason, and no host, so it can be deleted at once);
//!    - `deleting`: the delete is resumed;
//!    - `extending`: the extend to the recorded size is resumed (it is idempotent).
//! 4. Backend objects named like hearth's that no record explains are reported in the
//!    log and left alone.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::error::Result;
use crate::ids::Timestamp;
use crate::model::{Task, Volume, VolumeStatus};
use crate::store::{quotas as q, volumes as sv};
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
    /// Unexplained hearth-named objects.
    pub unexplained: usize,
}

/// Run reconcile; resumed work continues in the background.
pub fn run(core: &Arc<Core>) -> Result<Report> {
    let mut report = Report {
        reservations: core.store.write(|tx| q::clear_reservations(tx))?,
        ..Default::default()
    };
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
    // Objects no record explains.
    for (name, p) in core.pools() {
        let Ok(found) = p.backend.list_volumes(&p.pool) else {
            continue;
        };
        let known: BTreeSet<_> = core
            .store
            .read(|tx| sv::on_host(tx, name))?
            .into_iter()
            .collect();
        for id in found.into_iter().filter(|id| !known.contains(id)) {
            log::warn!(
                "reconcile: pool {name} holds {} but no volume record explains it; leaving it alone",
                crate::names::volume(id)
            );
            report.unexplained += 1;
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
                    Ok(p) => p
                        .backend
                        .volume_size(&p.pool, v.id)?
                        .is_some_and(|s| s >= v.size << 30),
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
                log::info!(
                    "reconcile: volume {} was complete on its pool; now {}",
                    v.id,
                    v.status
                );
            } else {
                v.status = VolumeStatus::Error;
                v.host = None;
                v.error_reason = Some("hearthd stopped before the volume was created".into());
                report.failed += 1;
                log::warn!(
                    "reconcile: volume {} was not created before hearthd stopped; now error",
                    v.id
                );
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
            log::info!(
                "reconcile: resuming the extend of volume {} to {size}",
                v.id
            );
            core.spawn_blocking("resume extend", move |core| {
                core.finish_extend(v, size, &[])
            });
            Ok(())
        }
        (VolumeStatus::Extending, None) => {
            // Extending without a recorded size: nothing was started; undo the status.
            v.status = VolumeStatus::Available;
            v.updated_at = Timestamp::now();
            core.store.write(|tx| sv::save(tx, &v))
        }
        _ => Ok(()),
    }
}
