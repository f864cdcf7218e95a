//! Keeping the scheduler's pool figures true without walking the pools.
//!
//! A full measurement ([`Backend::capacity`]: every volume's size, `vgs`) runs at
//! start-up, on the periodic report and when a change cannot be accounted for by
//! itself (snapshots, restores); such requests are coalesced on one measuring thread,
//! off the request and flow paths. Creates, extends and deletes instead settle their
//! change with the one volume's footprint before and after
//! ([`Backend::volume_footprint`]: one `stat`, one device-mapper table read), so their
//! cost does not grow with the number of volumes. See [`crate::scheduler`] for how the
//! two are kept from counting a change twice.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};

use crate::backend::Footprint;
use crate::error::{Error, Result};
use crate::ids::Id;

use super::Core;

/// The measuring thread's queue: pool names asking for a full measurement.
pub struct Measurements {
    tx: Mutex<Sender<String>>,
    rx: Mutex<Option<Receiver<String>>>,
}

impl Default for Measurements {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        Measurements { tx: Mutex::new(tx), rx: Mutex::new(Some(rx)) }
    }
}

impl Core {
    /// Start the thread that takes the full measurements asked for with
    /// [`Core::measure_soon`]; several asks for a pool while one runs make one more.
    pub(super) fn start_measuring(self: &Arc<Core>) -> Result<()> {
        let Some(rx) = self.measurements.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        let core: Weak<Core> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("hearth-measure".into())
            .spawn(move || {
                super::lower_priority();
                while let Ok(first) = rx.recv() {
                    let pools: BTreeSet<String> = std::iter::once(first).chain(rx.try_iter()).collect();
                    let Some(core) = core.upgrade() else { break };
                    for pool in pools {
                        core.refresh_pool_now(&pool);
                    }
                }
            })
            .map(drop)
            .map_err(|e| Error::internal("starting the measuring thread", e))
    }

    /// Ask for a full measurement of a pool, in the background.
    pub fn measure_soon(&self, pool: &str) {
        let tx = self.measurements.tx.lock().unwrap_or_else(|e| e.into_inner());
        // Sending fails only when the thread is gone (shutting down).
        let _ = tx.send(pool.to_string());
    }

    /// Measure one pool now and give the result to the scheduler (which keeps its
    /// own figures if changes ran meanwhile, and asks for another measurement).
    pub fn refresh_pool_now(&self, full_name: &str) {
        let Ok(p) = self.pool(full_name) else { return };
        let token = self.scheduler.measuring(full_name);
        match p.backend.capacity(&p.pool) {
            Ok(cap) => {
                if !self.scheduler.report(full_name, token, cap) {
                    log::debug!("pool {full_name}: changes ran while it was measured; its figures stay");
                }
                self.publish_pool(full_name);
            }
            Err(e) => {
                log::error!("capacity report of pool {full_name} failed: {e}");
                self.scheduler.report_failed(full_name);
            }
        }
    }

    /// One volume's footprint on its pool (see [`crate::backend::Backend::volume_footprint`]).
    pub fn footprint(&self, pool: &str, id: Id) -> Result<Option<Footprint>> {
        let p = self.pool(pool)?;
        p.backend.volume_footprint(&p.pool, id)
    }

    /// End a change to volume `id` on `pool` that had `before` as its footprint
    /// (`Ok(None)`: the volume did not exist) and was charged `charged_gb` when it
    /// began: the figures move by what it changed, measured now. Returns the
    /// footprint it found after.
    pub fn settle_volume(
        &self,
        pool: &str,
        charged_gb: u64,
        id: Id,
        before: Result<Option<Footprint>>,
    ) -> Option<Footprint> {
        let p = self.pool(pool).ok()?;
        let dm_before = crate::backend::dm::requests_on_this_thread();
        let after = p.backend.volume_footprint(&p.pool, id);
        let found = after.as_ref().ok().copied().flatten();
        let quiet = self.scheduler.settle(pool, charged_gb, |figures| {
            figures.apply(before?, after?);
            p.backend.refresh_usage(&p.pool, figures)
        });
        log::debug!(
            "pool {pool}: volume {id} settled in its figures with {} device-mapper request(s)",
            crate::backend::dm::requests_on_this_thread() - dm_before
        );
        if quiet {
            self.measure_soon(pool);
        }
        self.publish_pool(pool);
        found
    }

    /// Undo [`Core::settle_volume`] of a create that is being undone: the volume
    /// (`counted`) leaves the figures and its charge of `charged_gb` is back, until the
    /// undo releases it.
    pub fn unsettle_volume(&self, pool: &str, charged_gb: u64, counted: Option<Footprint>) {
        self.scheduler.unsettle(pool, charged_gb, |figures| figures.apply(counted, None));
    }

    /// Drop a charge whose change did not happen.
    pub fn release_charge(&self, pool: &str, charged_gb: u64) {
        if self.scheduler.release(pool, charged_gb) {
            self.measure_soon(pool);
        }
        self.publish_pool(pool);
    }
}
