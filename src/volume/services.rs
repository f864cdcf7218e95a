//! Pools, services and availability zones, as the admin API shows them.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::ids::Timestamp;
use crate::model::Service;
use crate::policy::rules;
use crate::scheduler::PoolState;
use crate::store::services as ss;
use crate::volume::{Caller, Core};

/// Whether a service's host matches a `host` filter as Cinder matches it: a bare
/// host also matches its backends (`host@b`) and pools (`host#p`), `host@b` also
/// its pools, and `host@b#p` only itself.
pub fn host_matches(service_host: &str, filter: &str) -> bool {
    if service_host == filter {
        return true;
    }
    if filter.contains('#') {
        return false;
    }
    let rest = |sep: char| service_host.strip_prefix(filter).is_some_and(|r| r.starts_with(sep));
    if filter.contains('@') {
        rest('#')
    } else {
        rest('@') || rest('#')
    }
}

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
        // A fleet's other nodes' zones too: a volume may be placed there.
        match self.fleet_pools() {
            Ok(pools) => z.extend(pools.into_iter().map(|p| p.availability_zone)),
            Err(e) => log::warn!("reading the fleet's pools failed: {e}"),
        }
        z
    }

    /// The pools and their capabilities (admin): this node's, and those of a fleet's
    /// other nodes whose volume service is up, as they published them.
    pub fn get_pools(&self, caller: &Caller) -> Result<Vec<PoolState>> {
        caller.authorize_own(rules::GET_POOLS)?;
        let mut pools = self.scheduler.measured_pools();
        pools.extend(self.fleet_pools()?);
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pools)
    }

    /// The services, with `up` when the heartbeat is younger than 2.5 report intervals.
    pub fn list_services(&self, caller: &Caller) -> Result<Vec<ServiceStatus>> {
        caller.authorize_own(rules::SERVICES_INDEX)?;
        self.services_with_liveness()
    }

    pub(super) fn services_with_liveness(&self) -> Result<Vec<ServiceStatus>> {
        let now = chrono::Utc::now().naive_utc();
        let window = chrono::Duration::seconds((self.config.report_interval as i64 * 5 / 2).max(60));
        let rows = self.store.read(ss::list)?;
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
        let list = self.store.read(ss::list)?;
        let service = list
            .into_iter()
            .find(|s| s.host == host && s.binary == binary)
            .ok_or_else(|| Error::NotFound(format!("Service {binary} on host {host} could not be found.")))?;
        self.follow_service(&service);
        Ok(service)
    }

    /// Bring the scheduler's view of one of this node's volume services (`host@backend`)
    /// in line with its row: disabled or frozen, its pools take no new volumes. Rows of
    /// other hosts (a fleet's other nodes, or this node under an earlier `host`) are
    /// theirs and change nothing here.
    pub(crate) fn follow_service(&self, s: &Service) {
        if s.binary != "cinder-volume" {
            return;
        }
        let Some((host, backend)) = s.host.split_once('@') else { return };
        if host != self.host() || !self.backends().contains_key(backend) {
            return;
        }
        self.scheduler.set_backend_disabled(backend, s.disabled);
        self.scheduler.set_backend_frozen(backend, s.frozen);
    }

    /// Freeze (or thaw) the volume services of a host: a frozen backend takes no new
    /// volumes and refuses management operations (delete, extend, snapshots) on its
    /// volumes, as Cinder's `os-services/freeze`. Unknown host or a service already in
    /// that state: 400.
    pub fn freeze_host(&self, caller: &Caller, host: &str, frozen: bool) -> Result<()> {
        caller.authorize_own(if frozen { rules::FREEZE_HOST } else { rules::THAW_HOST })?;
        let what = if frozen { "frozen" } else { "thawed" };
        let changed = self.store.write(|tx| {
            let services: Vec<Service> = ss::list(tx)?
                .into_iter()
                .filter(|s| s.binary == "cinder-volume" && host_matches(&s.host, host))
                .collect();
            if services.is_empty() {
                return Err(Error::Invalid(format!("Invalid input received: no volume service on host {host}.")));
            }
            if let Some(s) = services.iter().find(|s| s.frozen == frozen) {
                return Err(Error::Invalid(format!(
                    "Invalid input received: the volume service on {} is already {what}.",
                    s.host
                )));
            }
            for s in &services {
                ss::set_frozen(tx, &s.host, &s.binary, frozen)?;
            }
            Ok(services)
        })?;
        for mut s in changed {
            s.frozen = frozen;
            self.follow_service(&s);
            log::info!("volume service {} {what}", s.host);
        }
        Ok(())
    }

    /// Refuse an operation that changes the disks or exports of an object on `pool`
    /// (`host@backend#pool`) when this node cannot act there: another node's pool
    /// (409, [`Core::check_acts_here`]), or a frozen backend's (400).
    pub fn check_can_manage(&self, pool: Option<&str>, what: &str) -> Result<()> {
        self.check_acts_here(pool, what)?;
        let Some(pool) = pool else { return Ok(()) };
        if self.scheduler.pools().iter().any(|p| p.name == pool && p.frozen) {
            return Err(Error::InvalidState(format!(
                "Invalid input received: the backend of {what} ({pool}) is frozen; thaw it first."
            )));
        }
        Ok(())
    }

    /// `os-hosts`: every service with its liveness (admin), optionally of one zone.
    pub fn list_hosts(&self, caller: &Caller, zone: Option<&str>) -> Result<Vec<ServiceStatus>> {
        caller.authorize_own(rules::HOSTS)?;
        let all = self.services_with_liveness()?;
        Ok(all.into_iter().filter(|s| zone.is_none_or(|z| s.service.zone == z)).collect())
    }

    /// `os-hosts/{host}`: what each project holds on a volume host (admin). 404 when
    /// no volume service has that host.
    pub fn host_usage(&self, caller: &Caller, host: &str) -> Result<Vec<ss::HostUsage>> {
        caller.authorize_own(rules::HOSTS)?;
        self.store.read(|tx| {
            if !ss::list(tx)?.iter().any(|s| s.binary == "cinder-volume" && s.host == host) {
                return Err(Error::NotFound(format!("Host {host} could not be found.")));
            }
            ss::host_usage(tx, host)
        })
    }

    /// The capabilities of a volume host's (`host@backend`, or a pool of it) first
    /// pool (admin).
    pub fn backend_capabilities(&self, caller: &Caller, host: &str) -> Result<PoolState> {
        caller.authorize_own(rules::CAPABILITIES)?;
        let mut pools: Vec<PoolState> =
            self.scheduler.pools().into_iter().filter(|p| host_matches(&p.name, host)).collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools.into_iter().next().ok_or_else(|| Error::NotFound(format!("Host {host} could not be found.")))
    }

    /// The time now, for views that show it.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn host_filters_match_as_cinders() {
        for (service, filter, want) in [
            ("vm", "vm", true),
            ("vm@file-1", "vm", true),
            ("vm@file-1#p", "vm", true),
            ("vm2@file-1", "vm", false),
            ("vm@file-1", "vm@file-1", true),
            ("vm@file-1#p", "vm@file-1", true),
            ("vm@file-10", "vm@file-1", false),
            ("vm@file-1#p", "vm@file-1#p", true),
            ("vm@file-1#q", "vm@file-1#p", false),
            ("vm@file-1", "vm@file-1#p", false),
        ] {
            assert_eq!(host_matches(service, filter), want, "{service} ~ {filter}");
        }
    }
}
