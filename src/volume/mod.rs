//! The core: volumes, snapshots, attachments, transfers, backups, volume types (with
//! their QoS specs and encryption), generic volume groups, quotas, pools and services,
//! user messages, and the background work that makes volumes real.
//!
//! [`Core`] is what the API calls. Every state change is a compare-and-set inside one
//! store transaction (load, check the state machine in [`state`], save), so concurrent
//! requests on the same object cannot both win. Work that touches a backend runs in
//! the background on smol, after its intent has been recorded, and start-up
//! [`reconcile`] finishes or undoes whatever a previous process left in flight.

pub mod attach;
mod backup_repository;
pub mod backups;
pub mod capacity;
pub mod encryption;
pub mod fleet;
pub mod group_snapshots;
pub mod group_types;
pub mod groups;
pub mod messages;
pub mod placement;
pub mod qos;
pub mod quotas;
pub mod reconcile;
pub mod services;
pub mod snapshots;
pub mod state;
pub mod transfers;
pub mod types;
pub mod volumes;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{self, Backend};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::export::{self, Export};
use crate::policy::{Credentials, Policy};
use crate::scheduler::{PoolState, Scheduler};
use crate::store::Store;

/// Backend operations that may run at once; more wait their turn.
const BACKEND_SLOTS: usize = 8;

/// How far below the API's the CPU priority of background work is (a nice increment).
/// A create's background work (schedule, make the volume, record it) costs more CPU
/// than its request; at equal priority the two share the CPU and every request waits
/// behind someone's background work. Lowered, requests go first and the background
/// work takes the CPU they leave, which is most of it: requests wait for the disk
/// between bursts of CPU (benches/scale.rs: +16% creates accepted per second, p50
/// −15%, with 8 clients on 2 cores). A background thread that holds the store's
/// writer when requests preempt it gets the CPU back as soon as they wait for it.
const BACKGROUND_NICE: i32 = 19;

/// Lower the calling thread's CPU priority to background once; the blocking pool's
/// threads run only background work, so it stays lowered.
fn lower_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    let tid = nix::unistd::gettid().as_raw() as libc::id_t;
    // SAFETY: setpriority reads its integer arguments only; on Linux PRIO_PROCESS
    // with a thread id sets that one thread's nice value.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, now + BACKGROUND_NICE) };
    if r != 0 {
        log::debug!("lowering a background thread's priority failed: {}", std::io::Error::last_os_error());
    }
}

/// Run `f` on the blocking pool at background priority (see [`BACKGROUND_NICE`]).
pub(crate) async fn unblock<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    smol::unblock(move || {
        lower_priority();
        f()
    })
    .await
}

/// Who is asking: the caller's credentials, and the policy that decides what they
/// may do.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user.
    pub user_id: String,
    /// The project the request acts in.
    pub project_id: String,
    /// Whether the caller is an admin (`context_is_admin`): sees every project.
    pub is_admin: bool,
    /// Everything the identity service said.
    pub creds: Credentials,
    /// The id of the request being served (`req-<uuid>`), which user messages about
    /// work it starts carry.
    pub request_id: String,
    policy: Arc<Policy>,
}

impl Caller {
    /// A caller from authenticated credentials; they must name a project.
    pub fn new(creds: Credentials, policy: Arc<Policy>) -> Result<Caller> {
        let Some(project_id) = creds.project_id.clone() else {
            return Err(Error::Forbidden(
                "hearth serves project-scoped tokens only: ask the identity service for a token scoped to a \
                 project."
                    .into(),
            ));
        };
        let is_admin = policy.is_admin(&creds);
        let request_id = messages::new_request_id();
        Ok(Caller { user_id: creds.user_id.clone(), project_id, is_admin, creds, request_id, policy })
    }

    /// Whether policy lets the caller do `rule` on an object of `target_project`.
    pub fn may(&self, rule: &str, target_project: &str) -> bool {
        self.policy.allows(rule, &self.creds, self.is_admin, target_project)
    }

    /// Refuse (403, Cinder's sentence) unless policy lets the caller do `rule` on an
    /// object of `target_project`.
    pub fn authorize(&self, rule: &str, target_project: &str) -> Result<()> {
        if self.may(rule, target_project) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("Policy doesn't allow {rule} to be performed.")))
        }
    }

    /// Who messages about work this caller starts on an object of `project` are
    /// for, and the request that started it.
    pub fn origin(&self, project: &str) -> messages::Origin {
        messages::Origin { project_id: project.to_string(), request_id: self.request_id.clone() }
    }

    /// [`Caller::authorize`] with the caller's own project as the target (lists,
    /// creations, and the admin APIs).
    pub fn authorize_own(&self, rule: &str) -> Result<()> {
        self.authorize(rule, &self.project_id)
    }
}

/// How a metadata write treats the keys already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataWrite {
    /// `POST .../metadata`: add or change the given keys.
    Merge,
    /// `PUT .../metadata/{key}`: add or change one key.
    MergeKey,
    /// `PUT .../metadata`: the given keys become all the metadata.
    Replace,
}

/// Where a pool lives: its backend and its name within the backend.
#[derive(Clone)]
pub struct PoolRef {
    /// The backend's config name.
    pub backend_name: String,
    /// The pool's name within the backend.
    pub pool: String,
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// How hosts reach the backend's volumes.
    pub export: Arc<dyn Export>,
}

/// hearth's core service.
pub struct Core {
    /// The configuration in force.
    pub config: Config,
    /// The state store.
    pub store: Store,
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The policy in force.
    pub policy: Arc<Policy>,
    host: String,
    backends: BTreeMap<String, Arc<dyn Backend>>,
    pools: BTreeMap<String, PoolRef>,
    executor: Arc<smol::Executor<'static>>,
    background: AtomicUsize,
    /// Bounds how many backend operations run at once (and so the blocking threads).
    backend_slots: Arc<smol::lock::Semaphore>,
    /// Bounds how many creates placed across a fleet run at once ([`Core::spawn_waiting`]).
    waiting_slots: Arc<smol::lock::Semaphore>,
    /// One lock per volume around "export, then record the connection" and "forget
    /// the connection, then unexport", so the export always matches the records.
    connection_locks: std::sync::Mutex<std::collections::HashMap<crate::ids::Id, Arc<std::sync::Mutex<()>>>>,
    /// The backup repository and the backups and restores running.
    pub backups: backups::BackupService,
    /// Full measurements asked for, taken by one thread.
    measurements: capacity::Measurements,
    /// The requests this node handed over and waits for, woken by their answers.
    replies: fleet::Replies,
}

impl Core {
    /// Build the core from a configuration: open the store, build the backends and
    /// the scheduler's view of their pools. Nothing runs yet; see [`Core::start`].
    pub fn new(config: Config) -> Result<Arc<Core>> {
        let host = config.host();
        let store = Store::open_database(&crate::store::Database::of(&config)?, &host, config.api_threads.clamp(1, 4))?;
        let mut backends = BTreeMap::new();
        let mut pools = BTreeMap::new();
        let mut states = Vec::new();
        for (name, bc) in &config.backends {
            let (mut b, mut ex) = (backend::from_config(&config, name, bc)?, export::from_config(bc));
            if crate::faults::plan().is_some() {
                b = crate::faults::FaultyBackend::wrap(name, b);
                ex = crate::faults::FaultyExport::wrap(name, ex);
            }
            ex.check().map_err(|e| Error::Internal(format!("backend {name}: {e}")))?;
            let service_host = format!("{host}@{name}");
            let zone = bc.backend_availability_zone.clone().unwrap_or_else(|| config.storage_availability_zone.clone());
            store.write(|tx| crate::store::services::heartbeat(tx, &service_host, "cinder-volume", &zone))?;
            let disabled = store
                .read(|tx| crate::store::services::is_disabled(tx, &service_host, "cinder-volume"))?
                .unwrap_or(false);
            let frozen = store
                .read(|tx| crate::store::services::is_frozen(tx, &service_host, "cinder-volume"))?
                .unwrap_or(false);
            for pool in b.pools() {
                let full = format!("{service_host}#{pool}");
                states.push(PoolState {
                    name: full.clone(),
                    backend: name.clone(),
                    pool: pool.clone(),
                    volume_backend_name: bc.volume_backend_name.clone().unwrap_or_else(|| name.clone()),
                    availability_zone: zone.clone(),
                    reserved_percentage: bc.reserved_percentage,
                    max_over_subscription_ratio: bc.max_over_subscription_ratio,
                    driver: b.driver().to_string(),
                    storage_protocol: ex.storage_protocol().into(),
                    capacity: None,
                    reported_at: None,
                    pending_gb: 0,
                    in_flight: 0,
                    changes: 0,
                    stale: false,
                    awaiting_first: false,
                    disabled,
                    frozen,
                });
                pools
                    .insert(full, PoolRef { backend_name: name.clone(), pool, backend: b.clone(), export: ex.clone() });
            }
            backends.insert(name.clone(), b);
        }
        store.write(|tx| {
            crate::store::services::heartbeat(tx, &host, "cinder-scheduler", &config.storage_availability_zone)
        })?;
        let default_type = config.default_volume_type.clone();
        if store.read(|tx| crate::store::types::get_by_name(tx, &default_type))?.is_none() {
            return Err(Error::Internal(format!(
                "the default volume type {default_type:?} (default_volume_type) does not exist"
            )));
        }
        let scheduler = Scheduler::new(states, config.capacity_weight_multiplier);
        let policy = Arc::new(Policy::new(&config.policy).map_err(Error::Internal)?);
        let backups = backups::BackupService::new(&config);
        Ok(Arc::new(Core {
            config,
            store,
            scheduler,
            policy,
            host,
            backends,
            pools,
            executor: Arc::new(smol::Executor::new()),
            background: AtomicUsize::new(0),
            backend_slots: Arc::new(smol::lock::Semaphore::new(BACKEND_SLOTS)),
            waiting_slots: Arc::new(smol::lock::Semaphore::new(BACKEND_SLOTS)),
            connection_locks: Default::default(),
            backups,
            measurements: Default::default(),
            replies: Default::default(),
        }))
    }

    /// Start background work: run the executor threads, reconcile the store with the
    /// backends, take a first capacity report of every pool, and start the periodic
    /// reports. Returns once hearth is ready to serve.
    pub fn start(self: &Arc<Core>) -> Result<()> {
        for i in 0..2 {
            let ex = self.executor.clone();
            std::thread::Builder::new()
                .name(format!("hearth-bg-{i}"))
                .spawn(move || smol::block_on(ex.run(std::future::pending::<()>())))
                .map_err(|e| Error::internal("starting background threads", e))?;
        }
        self.start_measuring()?;
        reconcile::run(self)?;
        self.forget_old_pools()?;
        self.publish_backup_repository();
        // Chunks of backups a previous process did not finish, and of deletes it did
        // not collect after.
        self.schedule_backup_gc();
        // The first measurement of every pool, and the look for objects no record
        // explains, run while hearth already serves (both walk the whole pool).
        self.scheduler.await_first_reports();
        for pool in self.pools.keys() {
            self.measure_soon(pool);
        }
        self.spawn_blocking("report unexplained objects", |core| {
            if let Err(e) = reconcile::report_unexplained(core) {
                log::error!("reconcile: looking for objects no record explains failed: {e}");
            }
        });
        let core = Arc::downgrade(self);
        let interval = Duration::from_secs(self.config.report_interval);
        self.executor
            .spawn(async move {
                loop {
                    smol::Timer::after(interval).await;
                    let Some(core) = core.upgrade() else { break };
                    let c = core.clone();
                    unblock(move || c.report_all()).await;
                }
            })
            .detach();
        let core = Arc::downgrade(self);
        let reap = Duration::from_secs(self.config.message_reap_interval);
        self.executor
            .spawn(async move {
                loop {
                    let Some(c) = core.upgrade() else { break };
                    if let Err(e) = unblock(move || c.purge_expired_messages()).await {
                        log::error!("purging expired messages failed: {e}");
                    }
                    smol::Timer::after(reap).await;
                }
            })
            .detach();
        Ok(())
    }

    /// This host's name in pool and service names.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the work recorded on a pool (`host@backend#pool`, or `None` when
    /// nothing was scheduled) is this node's to finish: its own pools, and what has
    /// no pool yet. A pool of another node is that node's: this one never touches
    /// its disks or exports, and leaves its unfinished work to it.
    pub fn owns(&self, pool: Option<&str>) -> bool {
        pool.is_none_or(|p| services::host_matches(p, &self.host))
    }

    /// Why a volume's unfinished work is another node's, or `None` when it is this
    /// node's: its pool is another node's ([`Core::owns`]), or it is a create not yet
    /// scheduled that another node accepted (and may still be scheduling).
    pub fn elsewhere(&self, v: &crate::model::Volume) -> Option<String> {
        match (&v.host, &v.task) {
            (Some(pool), _) if !self.owns(Some(pool)) => Some(format!("is on {pool}, another node's pool")),
            (None, Some(crate::model::Task::Scheduling(node))) if !node.is_empty() && *node != self.host => {
                Some(format!("was accepted by node {node} and is not scheduled yet"))
            }
            _ => None,
        }
    }

    /// Refuse to act on the disks or exports of `what` on `pool` when the pool is
    /// another node's: only the node that owns a pool touches it. Checked before
    /// anything is recorded, so that the API can hand the whole request to that node
    /// ([`fleet`]); a 409 naming the node otherwise (a pool of an earlier `host`).
    pub fn check_acts_here(&self, pool: Option<&str>, what: &str) -> Result<()> {
        match pool {
            Some(p) if !self.owns(Some(p)) => {
                let node = p.split(['@', '#']).next().unwrap_or(p);
                let mut what = what.chars();
                let what: String = what.next().map(|c| c.to_uppercase().chain(what).collect()).unwrap_or_default();
                Err(Error::Elsewhere {
                    node: node.to_string(),
                    message: format!(
                        "{what} is on pool {p}, which node {node} serves; this node ({}) acts only on its own pools: \
                         send the request to node {node}'s endpoint.",
                        self.host
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// The backends, by config name.
    pub fn backends(&self) -> &BTreeMap<String, Arc<dyn Backend>> {
        &self.backends
    }

    /// A pool by full name.
    pub fn pool(&self, full_name: &str) -> Result<&PoolRef> {
        self.pools
            .get(full_name)
            .ok_or_else(|| Error::Backend(format!("pool {full_name} is not configured on this host")))
    }

    /// Every pool, by full name.
    pub fn pools(&self) -> &BTreeMap<String, PoolRef> {
        &self.pools
    }

    /// Report every pool, record the services' heartbeats, and follow what the store
    /// says of this node's services (another node's API may have disabled or frozen
    /// one: the change takes effect here within a report interval).
    fn report_all(&self) {
        for pool in self.pools.keys() {
            self.refresh_pool_now(pool);
        }
        if let Err(e) = self.heartbeat() {
            log::error!("recording service heartbeats failed: {e}");
        }
        match self.store.read(crate::store::services::list) {
            Ok(services) => services.iter().for_each(|s| self.follow_service(s)),
            Err(e) => log::error!("reading the services failed: {e}"),
        }
    }

    fn heartbeat(&self) -> Result<()> {
        self.store.write(|tx| {
            crate::store::services::heartbeat(
                tx,
                &self.host,
                "cinder-scheduler",
                &self.config.storage_availability_zone,
            )?;
            for (name, bc) in &self.config.backends {
                let zone = bc.backend_availability_zone.as_deref().unwrap_or(&self.config.storage_availability_zone);
                crate::store::services::heartbeat(tx, &format!("{}@{name}", self.host), "cinder-volume", zone)?;
            }
            Ok(())
        })
    }

    /// Run blocking background work (backend calls) off the request threads, in one of
    /// the backend slots, counted so that tests and shutdown can tell when hearth is
    /// idle.
    pub fn spawn_blocking(self: &Arc<Core>, what: &'static str, f: impl FnOnce(&Arc<Core>) + Send + 'static) {
        self.spawn_work(what, self.backend_slots.clone(), f)
    }

    /// [`Core::spawn_blocking`] in a slot of its own kind instead of a backend slot,
    /// for work that first waits on other nodes (a create placed across a fleet, whose
    /// owner may take up to `rpc_response_timeout` to answer): it takes a backend slot
    /// ([`Core::backend_slot`]) only for its own backend calls, so that a slow node
    /// holds none of this node's backend slots. As many run at once as backend work
    /// does (unbounded, they crowded the store: measured 8× slower creates).
    pub fn spawn_waiting(self: &Arc<Core>, what: &'static str, f: impl FnOnce(&Arc<Core>) + Send + 'static) {
        self.spawn_work(what, self.waiting_slots.clone(), f)
    }

    /// A backend slot, waited for; from work started by [`Core::spawn_waiting`] only
    /// (it blocks the thread).
    pub fn backend_slot(&self) -> smol::lock::SemaphoreGuardArc {
        smol::block_on(self.backend_slots.acquire_arc())
    }

    fn spawn_work(
        self: &Arc<Core>,
        what: &'static str,
        slots: Arc<smol::lock::Semaphore>,
        f: impl FnOnce(&Arc<Core>) + Send + 'static,
    ) {
        let core = self.clone();
        core.background.fetch_add(1, Ordering::SeqCst);
        // The work's log lines name the request that started it (if one did).
        let request = crate::logging::current();
        self.spawn(async move {
            let c = core.clone();
            let _in_flight = crate::metrics::metrics().work(what);
            let slot = slots.acquire_arc().await;
            unblock(move || {
                let _scope = crate::logging::RequestScope::enter(request);
                f(&c)
            })
            .await;
            drop(slot);
            core.background.fetch_sub(1, Ordering::SeqCst);
            log::trace!("background {what} finished");
        });
    }

    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.executor.spawn(fut).detach();
    }

    /// How many background operations are running.
    pub fn background_jobs(&self) -> usize {
        self.background.load(Ordering::SeqCst)
    }
}
