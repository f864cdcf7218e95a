//! Pools, services and availability zones, as the admin API shows them.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::ids::Timestamp;
use crate::model::Service;
use crate::policy::rules;
use crate::scheduler::PoolState;
use crate::store::services as ss;
use crate::volume::{Caller, Core};

/// A service with its liveness.
#[derive(Clone, Debug)]
pub struct ServiceStatus {
    /// The row.
    pub service: Service,
    /// Whether its heartbeat is recent.
    pub up: bool,
}

impl Core {
    /// Every zone a volume may be created in.
    pub fn zones(&self) -> BTreeSet<String> {
        let mut z: BTreeSet<String> = self.scheduler.pools().into_iter().map(|p| p.availability_zone).collect();
        z.insert(self.config.storage_availability_zone.clone());
        z
    }

    /// The pools and their capabilities (admin).
    pub fn get_pools(&self, caller: &Caller) -> Result<Vec<PoolState>> {
        caller.authorize_own(rules::GET_POOLS)?;
        Ok(self.scheduler.pools())
    }

    /// The services, with `up` when the heartbeat is younger than 2.5 report intervals.
    pub fn list_services(&self, caller: &Caller) -> Result<Vec<ServiceStatus>> {
        caller.authorize_own(rules::SERVICES_INDEX)?;
        let now = chrono::Utc::now().naive_utc();
        let window = chrono::Duration::seconds((self.config.report_interval as i64 * 5 / 2).max(60));
        let rows = self.store.read(|tx| ss::list(tx))?;
        Ok(rows
            .into_iter()
            .map(|s| {
                let seen = chrono::NaiveDateTime::parse_from_str(&s.updated_at.to_string(), "%Y-%m-%dT%H:%M:%S%.f")
                    .map(|t| now - t < window)
                    .unwrap_or(false);
                ServiceStatus { up: seen, service: s }
            })
            .collect())
    }

    /// Enable or disable a service (admin). Disabling a volume service takes its
    /// pools out of scheduling.
    pub fn set_service_disabled(
        &self,
        caller: &Caller,
        host: &str,
        binary: &str,
        disabled: bool,
        reason: Option<&str>,
    ) -> Result<Service> {
        caller.authorize_own(rules::SERVICES_UPDATE)?;
        let reason = if disabled { reason } else { None };
        self.store
            .write(|tx| ss::set_disabled(tx, host, binary, disabled, reason))?
            .ok_or_else(|| Error::NotFound(format!("Service {binary} on host {host} could not be found.")))?;
        if binary == "cinder-volume" {
            if let Some(backend) = host.split_once('@').map(|(_, b)| b) {
                self.scheduler.set_backend_disabled(backend, disabled);
            }
        }
        let list = self.store.read(|tx| ss::list(tx))?;
        list.into_iter()
            .find(|s| s.host == host && s.binary == binary)
            .ok_or_else(|| Error::NotFound(format!("Service {binary} on host {host} could not be found.")))
    }

    /// The time now, for views that show it.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
