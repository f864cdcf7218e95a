//! Scheduling across a fleet: every node places new volumes on every node's pools.
//!
//! Each node publishes its pools as its scheduler sees them (figures, what is
//! charged and not yet in them, zone, capabilities) to the store whenever it measures
//! them ([`crate::store::pools`]), the way a Cinder volume service reports to the
//! scheduler. A node scheduling a new volume ([`Core::place`]) runs Cinder's filters
//! and weigher over its own pools and the published pools of the other nodes whose
//! volume service is up, enabled and not frozen (a node whose heartbeat stopped leaves
//! scheduling after the services' down time), and asks the nodes in the order of
//! their best pool:
//!
//! - its own pools: its scheduler charges one at once, as on a single node;
//! - another node's: it hands that node a placement through the fleet's work queue
//!   ([`crate::volume::fleet`]). The owner, the one authority on its pools' capacity,
//!   charges one of its pools under its scheduler's lock, and places the volume with a
//!   conditional write ([`crate::store::volumes::claim_scheduled`]: only a volume
//!   still waiting for a pool, so that one node places it) before it answers; it then
//!   builds the volume as its own, retrying on its pools and, failing those, the
//!   fleet's. A node that refuses (its figures moved since it published them), is
//!   down, or does not take the placement in time, is passed over for the next.
//!
//! A pool is charged only by the node that owns it, in one place, so concurrent
//! creates arriving at different nodes never overcommit a pool, and a volume is
//! refused (`error`, "No valid backend") only after every node that could take it
//! said no. The published figures only order the nodes and skip the full ones.
//!
//! A placement a node took and did not answer within twice `rpc_response_timeout` is
//! left to that node (it may still place it: placing it elsewhere too could make it
//! twice); the volume stays `creating` with this node's scheduling task, which its
//! reconcile settles at the next start if the owner never placed it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fleet::{Answer, Call};
use super::messages::Origin;
use super::Core;
use crate::error::{Error, Result};
use crate::flow::create_volume::{self, RestoreInto};
use crate::ids::{Id, Timestamp};
use crate::model::{Task, Volume, VolumeStatus};
use crate::scheduler::{PoolState, Request};
use crate::store::pools as sp;
use crate::store::volumes as sv;

/// The method of a handed placement (never an HTTP method: it is not routed).
pub const PLACE: &str = "HEARTH-PLACE";

/// Where a volume went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On this pool of this node's, charged.
    Here(String),
    /// To another node, which builds it.
    There {
        /// The node.
        node: String,
    },
}

/// A placement handed to a pool's node.
#[derive(Debug, Serialize, Deserialize)]
struct PlaceCall {
    volume: String,
    exclude: Vec<String>,
    /// The backup to restore into the volume once made, and whether it shows
    /// `restoring-backup` meanwhile.
    restore: Option<(String, bool)>,
    project_id: String,
}

fn node_of(pool: &str) -> &str {
    pool.split(['@', '#']).next().unwrap_or(pool)
}

impl Core {
    /// Publish one of this node's pools for the fleet's other nodes (a shared store
    /// only: on a single node nobody reads it).
    pub fn publish_pool(&self, name: &str) {
        if !self.hands_over() {
            return;
        }
        let Some(state) = self.scheduler.state(name) else { return };
        let published = state.published();
        if let Err(e) = self.store.write(|tx| sp::publish(tx, name, &self.host, &published)) {
            log::warn!("publishing pool {name} to the fleet failed: {e}");
        }
    }

    /// Forget what this node published of pools it no longer has (at start-up).
    pub(super) fn forget_old_pools(&self) -> Result<()> {
        if !self.hands_over() {
            return Ok(());
        }
        let keep: Vec<String> = self.pools.keys().cloned().collect();
        let gone = self.store.write(|tx| sp::forget_others(tx, &self.host, &keep))?;
        if gone > 0 {
            log::info!("{gone} pool(s) this node published before and no longer has are forgotten");
        }
        Ok(())
    }

    /// The pools the fleet's other nodes published whose volume service is up, with
    /// the service's disabled and frozen flags; none on a single node.
    pub fn fleet_pools(&self) -> Result<Vec<PoolState>> {
        if !self.hands_over() {
            return Ok(Vec::new());
        }
        let services: BTreeMap<String, super::services::ServiceStatus> = self
            .services_with_liveness()?
            .into_iter()
            .filter(|s| s.service.binary == "cinder-volume")
            .map(|s| (s.service.host.clone(), s))
            .collect();
        let rows = self.store.read(sp::list)?;
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.node != self.host) {
            let service = row.name.split('#').next().unwrap_or(&row.name);
            let Some(s) = services.get(service).filter(|s| s.up) else { continue };
            match PoolState::from_published(&row.name, &row.state) {
                Some(mut p) => {
                    p.disabled |= s.service.disabled;
                    p.frozen |= s.service.frozen;
                    out.push(p);
                }
                None => log::warn!("pool {} published by node {} does not parse; it is left out", row.name, row.node),
            }
        }
        Ok(out)
    }

    /// Whether some pool of this node's or, on a shared store, of the fleet's could
    /// take `r` now (nothing is charged); `NoValidHost` with every pool's reason
    /// otherwise.
    pub fn fits_anywhere(&self, r: &Request<'_>) -> Result<()> {
        if !self.hands_over() {
            return self.scheduler.fits(r);
        }
        let (ranked, reasons) = self.scheduler.rank(r, &self.fleet_pools()?);
        if ranked.is_empty() {
            let why = if reasons.is_empty() { "no pools are configured".to_string() } else { reasons.join("; ") };
            return Err(Error::NoValidHost(why));
        }
        Ok(())
    }

    /// Choose where volume `v` (recorded, `creating`, scheduled by this node) is made:
    /// one of this node's pools, charged, or another node that took it (see the
    /// module's doc). `NoValidHost` with every node's reasons when none can.
    pub fn place(
        &self,
        r: &Request<'_>,
        v: &Volume,
        restore: Option<RestoreInto>,
        origin: &Origin,
    ) -> Result<Placement> {
        let others = self.fleet_pools().unwrap_or_else(|e| {
            // The store may be failing over: this node's pools still take volumes.
            log::warn!("volume {}: the fleet's pools cannot be read ({e}); placing it on this node's", v.id);
            Vec::new()
        });
        let (ranked, mut reasons) = self.scheduler.rank(r, &others);
        let mut asked = BTreeSet::new();
        for pool in &ranked {
            let node = node_of(pool);
            if !asked.insert(node) {
                continue;
            }
            if node == self.host {
                match self.scheduler.select(r) {
                    Ok(pool) => return Ok(Placement::Here(pool)),
                    Err(Error::NoValidHost(why)) => reasons.push(why),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let body = PlaceCall {
                volume: v.id.to_string(),
                exclude: r.exclude.to_vec(),
                restore: restore.map(|x| (x.backup.to_string(), x.shows_restoring)),
                project_id: origin.project_id.clone(),
            };
            let call = Call {
                request_id: origin.request_id.clone(),
                method: PLACE.to_string(),
                uri: format!("/volumes/{}", v.id),
                headers: Vec::new(),
                body: serde_json::to_string(&body).map_err(|e| Error::Internal(format!("a placement: {e}")))?,
                tls: false,
            };
            match self.hand_to(node, &call) {
                Ok(a) if a.status == 202 => {
                    log::info!("volume {} is placed by node {node}, which builds it", v.id);
                    return Ok(Placement::There { node: node.to_string() });
                }
                Ok(a) => {
                    let why = a
                        .body
                        .as_deref()
                        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
                        .and_then(|b| b["reason"].as_str().map(str::to_string))
                        .unwrap_or_else(|| format!("node {node} refused it ({})", a.status));
                    reasons.push(why);
                }
                Err(e) => {
                    // It may have placed the volume before its answer was lost.
                    let now = self.read_retrying(|tx| sv::get(tx, v.id))?;
                    let waiting = now
                        .as_ref()
                        .is_some_and(|n| n.host.is_none() && n.task == Some(Task::Scheduling(self.host.clone())));
                    if !waiting {
                        log::info!("volume {}: node {node} placed it, or it is no longer waiting ({e})", v.id);
                        return Ok(Placement::There { node: node.to_string() });
                    }
                    if matches!(e, Error::NoAnswer(_)) {
                        log::warn!(
                            "volume {}: node {node} took its placement and did not answer; it is left to that node \
                             (this node settles it at its next start if it never places it)",
                            v.id
                        );
                        return Ok(Placement::There { node: node.to_string() });
                    }
                    reasons.push(format!("node {node}: {e}"));
                }
            }
        }
        Err(Error::NoValidHost(if reasons.is_empty() { "no pools are configured".into() } else { reasons.join("; ") }))
    }

    /// A read, tried again for up to ten seconds while the store fails (a failover).
    fn read_retrying<T>(&self, f: impl Fn(&crate::store::db::Connection<'_>) -> Result<T>) -> Result<T> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match self.store.read(&f) {
                Err(e) if std::time::Instant::now() < deadline => {
                    log::warn!("reading the store failed ({e}); trying again");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                other => return other,
            }
        }
    }

    /// Take a placement another node handed to this one: charge one of this node's
    /// pools, place the volume on it if it still waits, answer 202 with the pool, and
    /// build it in the background. 409 with the reason when this node cannot.
    pub(super) fn run_placement(self: &Arc<Core>, from_node: &str, call: &Call) -> Answer {
        let refuse = |reason: String| Answer {
            status: 409,
            headers: Vec::new(),
            body: Some(json!({ "reason": format!("node {}: {reason}", self.host) }).to_string()),
        };
        let p: PlaceCall = match serde_json::from_str(&call.body) {
            Ok(p) => p,
            Err(e) => return refuse(format!("the placement does not parse: {e}")),
        };
        let Some(id) = Id::parse(&p.volume) else { return refuse(format!("no volume id in {:?}", p.volume)) };
        let from = Task::Scheduling(from_node.to_string());
        let found = self.store.read(|tx| {
            let Some(v) = sv::get(tx, id)? else { return Ok(None) };
            let t = crate::store::types::get(tx, v.volume_type_id)?;
            Ok(Some((v, t)))
        });
        let (mut v, vtype) = match found {
            Ok(Some((v, Some(t)))) => (v, t),
            Ok(Some((_, None))) => return refuse(format!("volume {id}'s type is gone")),
            Ok(None) => return refuse(format!("volume {id} is gone")),
            Err(e) => return refuse(format!("reading volume {id} failed: {e}")),
        };
        if v.status != VolumeStatus::Creating || v.host.is_some() || v.task.as_ref() != Some(&from) {
            return refuse(format!("volume {id} no longer waits for a pool"));
        }
        let req = Request {
            size_gb: v.size,
            volume_type: &vtype,
            availability_zone: &v.availability_zone,
            exclude: &p.exclude,
        };
        let pool = match self.scheduler.select(&req) {
            Ok(pool) => pool,
            Err(Error::NoValidHost(why)) => {
                return Answer { status: 409, headers: Vec::new(), body: Some(json!({ "reason": why }).to_string()) }
            }
            Err(e) => return refuse(e.to_string()),
        };
        let now = Timestamp::now();
        match self.store.write(|tx| sv::claim_scheduled(tx, id, &from, &pool, now)) {
            Ok(true) => {}
            Ok(false) => {
                self.release_charge(&pool, v.size);
                return refuse(format!("volume {id} no longer waits for a pool"));
            }
            Err(e) => {
                self.release_charge(&pool, v.size);
                return refuse(format!("placing volume {id} failed: {e}"));
            }
        }
        log::info!("volume {id}, scheduled by node {from_node}, is placed on {pool}");
        v.host = Some(pool.clone());
        v.task = Some(Task::BackendCreate);
        v.updated_at = now;
        let restore = p
            .restore
            .and_then(|(b, shows_restoring)| Id::parse(&b).map(|backup| RestoreInto { backup, shows_restoring }));
        let origin = Origin { project_id: p.project_id, request_id: call.request_id.clone() };
        create_volume::build_placed(self, v, vtype, pool.clone(), origin, restore);
        Answer { status: 202, headers: Vec::new(), body: Some(json!({ "pool": pool }).to_string()) }
    }
}
