//! The scheduler: picks a pool for each new volume.
//!
//! It works as Cinder's filter scheduler does with its default configuration:
//!
//! 1. Candidates are the pools of enabled backends whose last capacity report exists,
//!    minus pools already tried for this request (retries exclude them).
//! 2. Filters: **AvailabilityZone** (the volume's zone, and the type's
//!    `RESKEY:availability_zones` if set), **Capacity** (Cinder's thin/thick arithmetic,
//!    see [`PoolState::virtual_free_gb`]) and **Capabilities** (every unscoped or
//!    `capabilities:` extra spec of the type must match the pool's capability, with
//!    Cinder's operators, see [`specs`]).
//! 3. Weigher: **Capacity**: virtual free space normalised to 0..1 over the candidates,
//!    times `capacity_weight_multiplier`; the highest weight wins.
//! 4. The winner is charged at once ([`PoolState::pending_gb`]) so that concurrent
//!    requests see the space as used while the backend makes the volume.
//!
//! Selection and charge happen under one lock, so concurrent creates never
//! overcommit a pool.
//!
//! A pool's figures are kept without walking the pool: a full measurement (every
//! volume's size, `vgs`) is taken at start-up and by the periodic report, and every
//! change in between adjusts them by what it changed, measured on the one volume it
//! touched ([`Scheduler::settle`]). A change moves its charge into the figures under
//! the same lock, so the pool is never seen fuller or emptier than it is. A full
//! measurement replaces the figures only when no change ran while it was taken
//! (otherwise it could count a change twice or not at all); until then it refreshes
//! what changes cannot know (sizes, usage by writes) and another one is asked for.

pub mod specs;

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::backend::PoolCapacity;
use crate::config::OverSubscription;
use crate::error::{Error, Result};
use crate::ids::Timestamp;
use crate::model::VolumeType;

const GIB: f64 = (1u64 << 30) as f64;

/// What the scheduler knows of one pool.
#[derive(Clone, Debug)]
pub struct PoolState {
    /// Full name `host@backend#pool`.
    pub name: String,
    /// The backend's name (the config table).
    pub backend: String,
    /// The pool's own name.
    pub pool: String,
    /// The name types pin with `volume_backend_name`.
    pub volume_backend_name: String,
    /// The pool's zone.
    pub availability_zone: String,
    /// Per cent kept free.
    pub reserved_percentage: u8,
    /// Over-subscription setting.
    pub max_over_subscription_ratio: OverSubscription,
    /// `file` or `lvm`.
    pub driver: String,
    /// Protocol clients attach with.
    pub storage_protocol: String,
    /// The last capacity report, if any.
    pub capacity: Option<PoolCapacity>,
    /// When that report was taken.
    pub reported_at: Option<Timestamp>,
    /// GiB charged by scheduling and not yet in the figures.
    pub pending_gb: u64,
    /// Changes under way (charged, or running on the backend).
    pub in_flight: u32,
    /// Bumped when a change starts or ends: a measurement taken while it stayed the
    /// same, with nothing in flight, saw no change half-done.
    pub changes: u64,
    /// A measurement was refused because changes ran meanwhile: take another when the
    /// pool is quiet.
    pub stale: bool,
    /// Its first measurement is being taken (start-up): placements wait for it.
    pub awaiting_first: bool,
    /// The backend's service is disabled.
    pub disabled: bool,
    /// The backend's service is frozen.
    pub frozen: bool,
}

/// One placement request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// Size in GiB (for an extend: the growth).
    pub size_gb: u64,
    /// The volume's type.
    pub volume_type: &'a VolumeType,
    /// The volume's zone.
    pub availability_zone: &'a str,
    /// Pools already tried.
    pub exclude: &'a [String],
}

/// A pool as its node publishes it to the fleet's other nodes (see
/// [`PoolState::published`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Published {
    backend: String,
    pool: String,
    volume_backend_name: String,
    availability_zone: String,
    reserved_percentage: u8,
    /// `None`: `auto`.
    max_over_subscription_ratio: Option<f64>,
    driver: String,
    storage_protocol: String,
    capacity: Option<PoolCapacity>,
    reported_at: Option<String>,
    pending_gb: u64,
    disabled: bool,
    frozen: bool,
}

fn gb(bytes: u64) -> f64 {
    ((bytes as f64 / GIB) * 100.0).round() / 100.0
}

impl PoolState {
    fn thin_for(&self, t: &VolumeType) -> bool {
        let cap = self.capacity.as_ref();
        let thin_ok = cap.is_some_and(|c| c.thin_provisioning_support);
        let thick_ok = cap.is_some_and(|c| c.thick_provisioning_support);
        thin_ok && (!t.thick() || !thick_ok)
    }

    fn begin(&mut self) {
        self.in_flight += 1;
        self.changes += 1;
    }

    /// Total, free and provisioned GiB with pending charges applied.
    fn figures(&self) -> (f64, f64, f64) {
        let Some(c) = &self.capacity else {
            return (0.0, 0.0, 0.0);
        };
        let pending = self.pending_gb as f64;
        (gb(c.total_bytes), gb(c.free_bytes) - pending, gb(c.provisioned_bytes) + pending)
    }

    /// This pool's state as its node publishes it for the fleet's other nodes to
    /// schedule with: its figures and what is charged on it and not yet in them.
    pub fn published(&self) -> String {
        let p = Published {
            backend: self.backend.clone(),
            pool: self.pool.clone(),
            volume_backend_name: self.volume_backend_name.clone(),
            availability_zone: self.availability_zone.clone(),
            reserved_percentage: self.reserved_percentage,
            max_over_subscription_ratio: match self.max_over_subscription_ratio {
                OverSubscription::Ratio(r) => Some(r),
                OverSubscription::Auto => None,
            },
            driver: self.driver.clone(),
            storage_protocol: self.storage_protocol.clone(),
            capacity: self.capacity.clone(),
            reported_at: self.reported_at.map(|t| t.to_string()),
            pending_gb: self.pending_gb,
            disabled: self.disabled,
            frozen: self.frozen,
        };
        serde_json::to_string(&p).unwrap_or_default()
    }

    /// A pool another node published as `state` ([`PoolState::published`]) under
    /// `name`; `None` when the state does not parse (a node of another version).
    pub fn from_published(name: &str, state: &str) -> Option<PoolState> {
        let p: Published = serde_json::from_str(state).ok()?;
        Some(PoolState {
            name: name.to_string(),
            backend: p.backend,
            pool: p.pool,
            volume_backend_name: p.volume_backend_name,
            availability_zone: p.availability_zone,
            reserved_percentage: p.reserved_percentage,
            max_over_subscription_ratio: match p.max_over_subscription_ratio {
                Some(r) => OverSubscription::Ratio(r),
                None => OverSubscription::Auto,
            },
            driver: p.driver,
            storage_protocol: p.storage_protocol,
            capacity: p.capacity,
            reported_at: p.reported_at.as_deref().and_then(Timestamp::parse_stored),
            pending_gb: p.pending_gb,
            in_flight: 0,
            changes: 0,
            stale: false,
            awaiting_first: false,
            disabled: p.disabled,
            frozen: p.frozen,
        })
    }

    /// The ratio in force (`auto` derives it from use, as Cinder does).
    pub fn over_subscription_ratio(&self) -> f64 {
        match self.max_over_subscription_ratio {
            OverSubscription::Ratio(r) => r,
            OverSubscription::Auto => {
                let (total, free, provisioned) = self.figures();
                let used = total - free;
                if used <= 0.0 || provisioned <= 0.0 {
                    20.0
                } else {
                    (1.0 + provisioned / used).max(1.0)
                }
            }
        }
    }

    /// Cinder's virtual free capacity for a volume of this type:
    /// reserved = floor(total × reserved% / 100); thin: (total − reserved) × ratio −
    /// provisioned; thick: min(free, total − reserved − provisioned).
    pub fn virtual_free_gb(&self, t: &VolumeType) -> f64 {
        let (total, free, provisioned) = self.figures();
        let reserved = (total * self.reserved_percentage as f64 / 100.0).floor();
        if self.thin_for(t) {
            (total - reserved) * self.over_subscription_ratio() - provisioned
        } else {
            free.min(total - reserved - provisioned)
        }
    }

    /// The capabilities shown by `scheduler-stats/get_pools` and matched by the
    /// CapabilitiesFilter.
    pub fn capabilities(&self) -> Map<String, Value> {
        let (total, free, provisioned) = self.figures();
        let c = self.capacity.clone().unwrap_or_default();
        let mut m = Map::new();
        m.insert("pool_name".into(), json!(self.pool));
        m.insert("volume_backend_name".into(), json!(self.volume_backend_name));
        m.insert("driver_version".into(), json!(env!("CARGO_PKG_VERSION")));
        m.insert("vendor_name".into(), json!("hearth"));
        m.insert("storage_protocol".into(), json!(self.storage_protocol));
        m.insert("total_capacity_gb".into(), json!(total));
        m.insert("free_capacity_gb".into(), json!(free.max(0.0)));
        m.insert("allocated_capacity_gb".into(), json!(provisioned));
        m.insert("provisioned_capacity_gb".into(), json!(provisioned));
        m.insert("reserved_percentage".into(), json!(self.reserved_percentage));
        m.insert(
            "max_over_subscription_ratio".into(),
            match self.max_over_subscription_ratio {
                OverSubscription::Ratio(r) => json!(r.to_string()),
                OverSubscription::Auto => json!("auto"),
            },
        );
        m.insert("thin_provisioning_support".into(), json!(c.thin_provisioning_support));
        m.insert("thick_provisioning_support".into(), json!(c.thick_provisioning_support));
        m.insert("total_volumes".into(), json!(c.total_volumes));
        m.insert("multiattach".into(), json!(true));
        m.insert("QoS_support".into(), json!(false));
        m.insert("online_extend_support".into(), json!(false));
        m.insert("location_info".into(), json!(format!("{}:{}:{}", self.driver, self.name, self.pool)));
        m.insert("backend_state".into(), json!(if self.capacity.is_some() { "up" } else { "down" }));
        m.insert("filter_function".into(), Value::Null);
        m.insert("goodness_function".into(), Value::Null);
        m.insert("timestamp".into(), self.reported_at.map(|t| json!(t.to_string())).unwrap_or(Value::Null));
        for (k, v) in c.extra {
            m.insert(k, v);
        }
        m
    }

    fn capability_text(caps: &Map<String, Value>, key: &str) -> Option<String> {
        caps.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Null => "None".into(),
            other => other.to_string(),
        })
    }

    /// The first filter this pool fails for a request, as a readable reason.
    pub fn refuse(&self, r: &Request<'_>) -> Option<String> {
        if self.disabled {
            return Some(format!("{}: its volume service is disabled", self.name));
        }
        if self.frozen {
            return Some(format!("{}: its volume service is frozen", self.name));
        }
        if self.capacity.is_none() {
            return Some(format!("{}: no capacity report yet", self.name));
        }
        if r.availability_zone != self.availability_zone {
            return Some(format!(
                "{}: in zone {}, not {} (AvailabilityZoneFilter)",
                self.name, self.availability_zone, r.availability_zone
            ));
        }
        if let Some(zones) = r.volume_type.extra_specs.get("RESKEY:availability_zones") {
            if !zones.split(',').any(|z| z.trim() == self.availability_zone) {
                return Some(format!(
                    "{}: zone {} is not in the type's RESKEY:availability_zones (AvailabilityZoneFilter)",
                    self.name, self.availability_zone
                ));
            }
        }
        let free = self.virtual_free_gb(r.volume_type);
        if free < r.size_gb as f64 {
            return Some(format!(
                "{}: {:.2} GiB of virtual free capacity, {} GiB requested (CapacityFilter)",
                self.name, free, r.size_gb
            ));
        }
        let caps = self.capabilities();
        for (key, req) in &r.volume_type.extra_specs {
            let cap_key = match key.split_once(':') {
                None => key.as_str(),
                Some(("capabilities", rest)) => rest,
                Some(_) => continue,
            };
            let have = Self::capability_text(&caps, cap_key);
            if !specs::matches(have.as_deref(), req) {
                return Some(format!(
                    "{}: capability {cap_key} is {} but the type asks for {req:?} (CapabilitiesFilter)",
                    self.name,
                    have.as_deref().unwrap_or("absent")
                ));
            }
        }
        None
    }
}

/// How long a placement waits for the pools' first measurements at start-up.
const FIRST_REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The scheduler's view of every pool.
pub struct Scheduler {
    pools: Mutex<BTreeMap<String, PoolState>>,
    /// Signalled when a pool's first measurement is in.
    first_reports: std::sync::Condvar,
    /// Until when placements wait for first measurements ([`FIRST_REPORT_WAIT`]
    /// after [`Scheduler::await_first_reports`]).
    first_reports_by: Mutex<std::time::Instant>,
    weight_multiplier: f64,
}

impl Scheduler {
    /// A scheduler over the given pools.
    pub fn new(pools: Vec<PoolState>, weight_multiplier: f64) -> Scheduler {
        Scheduler {
            pools: Mutex::new(pools.into_iter().map(|p| (p.name.clone(), p)).collect()),
            first_reports: std::sync::Condvar::new(),
            first_reports_by: Mutex::new(std::time::Instant::now()),
            weight_multiplier,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PoolState>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock, once every pool's first measurement is in (or [`FIRST_REPORT_WAIT`]
    /// after start-up asked for them): hearth serves while it measures its pools at
    /// start-up, and a placement asked for meanwhile waits for the figures instead of
    /// failing. The time limit is one for all, so that a caller that waited (see
    /// [`Scheduler::wait_first_reports`]) never waits again.
    fn lock_measured(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PoolState>> {
        let deadline = *self.first_reports_by.lock().unwrap_or_else(|e| e.into_inner());
        let mut pools = self.lock();
        while pools.values().any(|p| p.awaiting_first) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            pools = self.first_reports.wait_timeout(pools, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        pools
    }

    /// Mark every pool as being measured for the first time (see
    /// [`Scheduler::lock_measured`]).
    pub fn await_first_reports(&self) {
        *self.first_reports_by.lock().unwrap_or_else(|e| e.into_inner()) =
            std::time::Instant::now() + FIRST_REPORT_WAIT;
        for p in self.lock().values_mut() {
            p.awaiting_first = true;
        }
    }

    /// Wait as a placement would for the pools' first measurements at start-up. For
    /// callers that charge a pool inside a store transaction: they wait before it
    /// begins, so that the store's writer (every other request's writes) is not held
    /// meanwhile.
    pub fn wait_first_reports(&self) {
        drop(self.lock_measured());
    }

    fn first_report_in(&self, p: &mut PoolState) {
        if std::mem::take(&mut p.awaiting_first) {
            self.first_reports.notify_all();
        }
    }

    /// Whether some pool could take `r` now (nothing is charged); `NoValidHost` with
    /// every pool's reason otherwise.
    pub fn fits(&self, r: &Request<'_>) -> Result<()> {
        let pools = self.lock_measured();
        let mut reasons = Vec::new();
        for p in pools.values() {
            match p.refuse(r) {
                Some(why) => reasons.push(why),
                None => return Ok(()),
            }
        }
        let why = if reasons.is_empty() { "no pools are configured".to_string() } else { reasons.join("; ") };
        Err(Error::NoValidHost(why))
    }

    /// Choose a pool and charge it; `NoValidHost` with every pool's reason otherwise.
    pub fn select(&self, r: &Request<'_>) -> Result<String> {
        let mut pools = self.lock_measured();
        let mut reasons = Vec::new();
        let mut passing: Vec<(&String, f64)> = Vec::new();
        for (name, p) in pools.iter() {
            if r.exclude.contains(name) {
                reasons.push(format!("{name}: already tried"));
                continue;
            }
            match p.refuse(r) {
                Some(why) => reasons.push(why),
                None => passing.push((name, p.virtual_free_gb(r.volume_type))),
            }
        }
        if passing.is_empty() {
            let why = if reasons.is_empty() { "no pools are configured".to_string() } else { reasons.join("; ") };
            return Err(Error::NoValidHost(why));
        }
        let (min, max) =
            passing.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, w)| (lo.min(*w), hi.max(*w)));
        let weight = |w: f64| {
            if max > min {
                (w - min) / (max - min) * self.weight_multiplier
            } else {
                0.0
            }
        };
        let mut best: Option<(&String, f64)> = None;
        for (name, w) in &passing {
            let w = weight(*w);
            if best.is_none_or(|(_, bw)| w > bw) {
                best = Some((name, w));
            }
        }
        let chosen = best.map(|(n, _)| n.clone()).expect("passing is not empty");
        if let Some(p) = pools.get_mut(&chosen) {
            p.pending_gb += r.size_gb;
            p.begin();
        }
        Ok(chosen)
    }

    /// This node's pools and `others` (the pools a fleet's other nodes published)
    /// that pass the filters for `r`, best first by the weigher over all of them, and
    /// the reasons of those that do not. Nothing is charged: the node that owns the
    /// chosen pool charges it ([`Scheduler::select`]), the one authority on its pools.
    pub fn rank(&self, r: &Request<'_>, others: &[PoolState]) -> (Vec<String>, Vec<String>) {
        let pools = self.lock_measured();
        let mut reasons = Vec::new();
        let mut passing: Vec<(String, f64)> = Vec::new();
        for p in pools.values().chain(others) {
            if r.exclude.contains(&p.name) {
                reasons.push(format!("{}: already tried", p.name));
                continue;
            }
            match p.refuse(r) {
                Some(why) => reasons.push(why),
                None => passing.push((p.name.clone(), p.virtual_free_gb(r.volume_type) * self.weight_multiplier)),
            }
        }
        // The weigher normalises over the candidates, which keeps their order.
        passing.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        (passing.into_iter().map(|(name, _)| name).collect(), reasons)
    }

    /// Why a pool would not take `r`, if it would not (nothing is charged).
    pub fn refuses(&self, pool: &str, r: &Request<'_>) -> Option<String> {
        match self.lock_measured().get(pool) {
            Some(p) => p.refuse(r),
            None => Some(format!("{pool}: pool is not configured")),
        }
    }

    /// Choose the pool of a generic volume group among this node's pools and
    /// `others` (the fleet's, as published): one that every volume type of the group
    /// may be placed on (each passes the filters with no size), the roomiest by the
    /// weigher. Nothing is charged: the group's volumes are, as they are made, by the
    /// node that owns the pool.
    pub fn select_group(
        &self,
        types: &[crate::model::VolumeType],
        availability_zone: &str,
        others: &[PoolState],
    ) -> Result<String> {
        let pools = self.lock_measured();
        let mut reasons = Vec::new();
        let mut best: Option<(&String, f64)> = None;
        for p in pools.values().chain(others) {
            let name = &p.name;
            let refused = types.iter().find_map(|t| {
                p.refuse(&Request { size_gb: 0, volume_type: t, availability_zone, exclude: &[] })
                    .map(|why| format!("{why} (volume type {})", t.name))
            });
            if let Some(why) = refused {
                reasons.push(why);
                continue;
            }
            let free = types.iter().map(|t| p.virtual_free_gb(t)).fold(f64::INFINITY, f64::min);
            let w = free * self.weight_multiplier;
            if best.is_none_or(|(_, bw)| w > bw) {
                best = Some((name, w));
            }
        }
        match best {
            Some((name, _)) => Ok(name.clone()),
            None if reasons.is_empty() => Err(Error::NoValidHost("no pools are configured".into())),
            None => Err(Error::NoValidHost(reasons.join("; "))),
        }
    }

    /// Whether a pool can take `r` (extend: the growth) now, charging it if so.
    pub fn reserve_on(&self, pool: &str, r: &Request<'_>) -> Result<()> {
        let mut pools = self.lock_measured();
        let p = pools.get_mut(pool).ok_or_else(|| Error::NoValidHost(format!("{pool}: pool is not configured")))?;
        if let Some(why) = p.refuse(r) {
            return Err(Error::NoValidHost(why));
        }
        p.pending_gb += r.size_gb;
        p.begin();
        Ok(())
    }

    /// Whether a pool has `bytes` of physical free space for something that is not a
    /// volume (a thick snapshot's exception store), after what is already charged,
    /// charging it if so. Returns the charge in whole GiB, to hand to
    /// [`Scheduler::release`] when the change is done. A pool not measured yet is
    /// charged without a check (its figures are not known to refuse with).
    pub fn reserve_room(&self, pool: &str, bytes: u64) -> Result<u64> {
        let mut pools = self.lock_measured();
        let p = pools.get_mut(pool).ok_or_else(|| Error::NoValidHost(format!("{pool}: pool is not configured")))?;
        if let Some(c) = &p.capacity {
            let free = c.free_bytes.saturating_sub(p.pending_gb << 30);
            if free < bytes {
                return Err(Error::NoValidHost(format!(
                    "{pool}: {:.2} GiB physically free, {:.2} GiB needed",
                    gb(free),
                    bytes as f64 / GIB
                )));
            }
        }
        let charged = bytes.div_ceil(1 << 30);
        p.pending_gb += charged;
        p.begin();
        Ok(charged)
    }

    /// Drop a charge whose change did not happen (the backend failed, or the request
    /// went elsewhere). Returns whether the pool wants a full measurement now.
    pub fn release(&self, pool: &str, size_gb: u64) -> bool {
        self.settle(pool, size_gb, |_| Ok(()))
    }

    /// Note that a change not charged by scheduling (a delete, a resumed extend)
    /// starts on a pool; [`Scheduler::settle`] ends it.
    pub fn begin(&self, pool: &str) {
        if let Some(p) = self.lock().get_mut(pool) {
            p.begin();
        }
    }

    /// End a change: drop its charge of `charged_gb` and apply what it did to the
    /// figures with `apply` (see [`PoolCapacity::apply`]), both under the lock so that
    /// no one sees the change counted twice or not at all. When `apply` fails the
    /// figures are stale and a full measurement is asked for. Returns whether the
    /// pool wants a full measurement now (it is quiet and a measurement was refused).
    pub fn settle(&self, pool: &str, charged_gb: u64, apply: impl FnOnce(&mut PoolCapacity) -> Result<()>) -> bool {
        let mut pools = self.lock();
        let Some(p) = pools.get_mut(pool) else { return false };
        p.pending_gb = p.pending_gb.saturating_sub(charged_gb);
        p.in_flight = p.in_flight.saturating_sub(1);
        p.changes += 1;
        if let Some(c) = &mut p.capacity {
            if let Err(e) = apply(c) {
                log::warn!("pool {pool}: adjusting its figures failed ({e}); measuring it again");
                p.stale = true;
            }
        }
        p.stale && p.in_flight == 0
    }

    /// Take back a [`Scheduler::settle`]: the change is under way again, charged
    /// `charged_gb`, and `undo` takes it out of the figures.
    pub fn unsettle(&self, pool: &str, charged_gb: u64, undo: impl FnOnce(&mut PoolCapacity)) {
        if let Some(p) = self.lock().get_mut(pool) {
            p.pending_gb += charged_gb;
            p.begin();
            if let Some(c) = &mut p.capacity {
                undo(c);
            }
        }
    }

    /// Start a full measurement of a pool: the token to hand to
    /// [`Scheduler::report`] with its result.
    pub fn measuring(&self, pool: &str) -> Option<u64> {
        let pools = self.lock();
        pools.get(pool).filter(|p| p.in_flight == 0).map(|p| p.changes)
    }

    /// Record a full measurement taken since `token` (see [`Scheduler::measuring`]).
    /// It replaces the figures when no change ran meanwhile or there are none yet;
    /// otherwise it refreshes only what changes do not track (the pool's size and
    /// driver details) and the pool is marked for another measurement. Returns
    /// whether the figures were replaced.
    pub fn report(&self, pool: &str, token: Option<u64>, capacity: PoolCapacity) -> bool {
        let mut pools = self.lock();
        let Some(p) = pools.get_mut(pool) else { return false };
        p.reported_at = Some(Timestamp::now());
        self.first_report_in(p);
        let quiet = p.in_flight == 0 && token == Some(p.changes);
        match &mut p.capacity {
            Some(figures) if !quiet => {
                figures.total_bytes = capacity.total_bytes;
                figures.free_bytes = figures.free_bytes.min(capacity.total_bytes);
                figures.extra = capacity.extra;
                p.stale = true;
                false
            }
            _ => {
                if p.capacity.is_some() && p.capacity.as_ref() != Some(&capacity) {
                    log::debug!("pool {pool}: measured {capacity:?}, figures were {:?}", p.capacity);
                }
                p.capacity = Some(capacity);
                p.stale = !quiet;
                true
            }
        }
    }

    /// Mark a pool's backend as unable to report.
    pub fn report_failed(&self, pool: &str) {
        if let Some(p) = self.lock().get_mut(pool) {
            p.capacity = None;
            self.first_report_in(p);
        }
    }

    /// Enable or disable every pool of a backend.
    pub fn set_backend_disabled(&self, backend: &str, disabled: bool) {
        for p in self.lock().values_mut().filter(|p| p.backend == backend) {
            p.disabled = disabled;
        }
    }

    /// Freeze or thaw every pool of a backend.
    pub fn set_backend_frozen(&self, backend: &str, frozen: bool) {
        for p in self.lock().values_mut().filter(|p| p.backend == backend) {
            p.frozen = frozen;
        }
    }

    /// A copy of one pool's state.
    pub fn state(&self, name: &str) -> Option<PoolState> {
        self.lock().get(name).cloned()
    }

    /// A copy of every pool's state.
    pub fn pools(&self) -> Vec<PoolState> {
        self.lock().values().cloned().collect()
    }

    /// A copy of every pool's state once their first measurements are in (see
    /// [`Scheduler::lock_measured`]): what `get_pools` shows.
    pub fn measured_pools(&self) -> Vec<PoolState> {
        self.lock_measured().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Id;

    fn vtype(specs: &[(&str, &str)]) -> VolumeType {
        VolumeType {
            id: Id::new(),
            name: "t".into(),
            description: None,
            is_public: true,
            extra_specs: specs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            qos_specs_id: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn pool(name: &str, total_gb: u64, free_gb: u64, prov_gb: u64, thin: bool) -> PoolState {
        PoolState {
            name: format!("h@{name}#{name}"),
            backend: name.into(),
            pool: name.into(),
            volume_backend_name: name.into(),
            availability_zone: "nova".into(),
            reserved_percentage: 0,
            max_over_subscription_ratio: OverSubscription::Ratio(2.0),
            driver: "file".into(),
            storage_protocol: "local".into(),
            capacity: Some(PoolCapacity {
                total_bytes: total_gb << 30,
                free_bytes: free_gb << 30,
                provisioned_bytes: prov_gb << 30,
                thin_provisioning_support: thin,
                thick_provisioning_support: true,
                ..Default::default()
            }),
            reported_at: None,
            pending_gb: 0,
            in_flight: 0,
            changes: 0,
            stale: false,
            awaiting_first: false,
            disabled: false,
            frozen: false,
        }
    }

    fn req<'a>(size: u64, t: &'a VolumeType, exclude: &'a [String]) -> Request<'a> {
        Request { size_gb: size, volume_type: t, availability_zone: "nova", exclude }
    }

    /// Cinder's arithmetic, case by case.
    #[test]
    fn virtual_free_follows_cinder() {
        let thin = vtype(&[]);
        let thick = vtype(&[("provisioning:type", "thick")]);
        let table: &[(PoolState, u8, &VolumeType, f64)] = &[
            // thin: (100 - 0) * 2 - 30
            (pool("a", 100, 80, 30, true), 0, &thin, 170.0),
            // thin with 10% reserved: (100 - 10) * 2 - 30
            (pool("a", 100, 80, 30, true), 10, &thin, 150.0),
            // thick: min(80, 100 - 0 - 30)
            (pool("a", 100, 80, 30, true), 0, &thick, 70.0),
            // thick with reserve: min(50, 100 - 25 - 30)
            (pool("a", 100, 50, 30, true), 25, &thick, 45.0),
            // a pool without thin support treats every request as thick
            (pool("a", 100, 80, 30, false), 0, &thin, 70.0),
        ];
        for (p, reserved, t, want) in table {
            let mut p = p.clone();
            p.reserved_percentage = *reserved;
            assert_eq!(p.virtual_free_gb(t), *want, "{reserved}% {:?}", t.extra_specs);
        }
    }

    #[test]
    fn filters_refuse_with_reasons() {
        let t = vtype(&[("volume_backend_name", "b")]);
        let s = Scheduler::new(vec![pool("a", 100, 100, 0, true), pool("b", 10, 10, 0, false)], 1.0);
        assert_eq!(s.select(&req(5, &t, &[])).unwrap(), "h@b#b");
        // b has 10 - 5 (charged) = 5 GiB left for thick, so 6 GiB does not fit.
        let err = s.select(&req(6, &t, &[])).unwrap_err().to_string();
        assert!(err.contains("CapacityFilter") && err.contains("CapabilitiesFilter"), "{err}");
        // After release, it fits again.
        s.release("h@b#b", 5);
        assert_eq!(s.select(&req(6, &t, &[])).unwrap(), "h@b#b");
        let az = vtype(&[("RESKEY:availability_zones", "elsewhere")]);
        let err = s.select(&req(1, &az, &[])).unwrap_err().to_string();
        assert!(err.contains("AvailabilityZoneFilter"), "{err}");
        let multi = vtype(&[("multiattach", "<is> True")]);
        assert!(s.select(&req(1, &multi, &[])).is_ok());
    }

    #[test]
    fn weigher_spreads_and_retries_exclude() {
        let t = vtype(&[]);
        let s = Scheduler::new(vec![pool("a", 100, 100, 0, true), pool("b", 50, 50, 0, true)], 1.0);
        assert_eq!(s.select(&req(1, &t, &[])).unwrap(), "h@a#a");
        let tried = vec!["h@a#a".to_string()];
        assert_eq!(s.select(&req(1, &t, &tried)).unwrap(), "h@b#b");
        let both = vec!["h@a#a".to_string(), "h@b#b".to_string()];
        assert!(matches!(s.select(&req(1, &t, &both)), Err(Error::NoValidHost(_))));
        // A negative multiplier stacks onto the fullest pool.
        let s = Scheduler::new(vec![pool("a", 100, 100, 0, true), pool("b", 50, 50, 0, true)], -1.0);
        assert_eq!(s.select(&req(1, &t, &[])).unwrap(), "h@b#b");
    }

    /// Concurrent selections never place more than a pool holds.
    #[test]
    fn concurrent_selects_do_not_overcommit() {
        let t = vtype(&[("provisioning:type", "thick")]);
        let s = std::sync::Arc::new(Scheduler::new(vec![pool("a", 10, 10, 0, true)], 1.0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let s = s.clone();
                let t = t.clone();
                std::thread::spawn(move || s.select(&req(1, &t, &[])).is_ok())
            })
            .collect();
        let ok = handles.into_iter().map(|h| h.join().unwrap()).filter(|x| *x).count();
        assert_eq!(ok, 10);
    }

    #[test]
    fn a_group_goes_where_all_its_types_fit() {
        let (a, b) = (vtype(&[("volume_backend_name", "a")]), vtype(&[("volume_backend_name", "b")]));
        let any = vtype(&[]);
        let s = Scheduler::new(vec![pool("a", 100, 100, 0, true), pool("b", 50, 50, 0, true)], 1.0);
        assert_eq!(s.select_group(&[a.clone(), any.clone()], "nova", &[]).unwrap(), "h@a#a");
        assert_eq!(s.select_group(&[any.clone(), b.clone()], "nova", &[]).unwrap(), "h@b#b");
        assert_eq!(s.select_group(std::slice::from_ref(&any), "nova", &[]).unwrap(), "h@a#a");
        let err = s.select_group(&[a, b], "nova", &[]).unwrap_err().to_string();
        assert!(err.contains("CapabilitiesFilter"), "{err}");
        assert!(matches!(s.select_group(std::slice::from_ref(&any), "elsewhere", &[]), Err(Error::NoValidHost(_))));
        // In a fleet, another node's pool: the only one of its backend, or the roomiest.
        let mut c = pool("c", 200, 200, 0, true);
        c.name = "other@c#c".into();
        let only_c = vtype(&[("volume_backend_name", "c")]);
        assert_eq!(s.select_group(&[only_c, any.clone()], "nova", std::slice::from_ref(&c)).unwrap(), "other@c#c");
        assert_eq!(s.select_group(&[any], "nova", &[c]).unwrap(), "other@c#c");
        // Nothing is charged.
        assert!(s.pools().iter().all(|p| p.pending_gb == 0));
    }

    /// A measurement that a change overlapped never replaces the figures: it might
    /// count the change twice (with its charge) or not at all.
    #[test]
    fn measurements_amid_changes_leave_the_figures_to_the_changes() {
        let t = vtype(&[]);
        let s = Scheduler::new(vec![pool("a", 100, 100, 0, true)], 1.0);
        let a = "h@a#a";
        let provisioned = |s: &Scheduler| s.pools()[0].figures().2;
        let token = s.measuring(a);
        assert_eq!(s.select(&req(5, &t, &[])).unwrap(), a);
        assert_eq!(s.measuring(a), None, "a change is in flight");
        // The backend made the volume before the measurement looked.
        let seen =
            PoolCapacity { provisioned_bytes: 5 << 30, total_volumes: 1, ..s.pools()[0].capacity.clone().unwrap() };
        assert!(!s.report(a, token, seen.clone()));
        assert_eq!(provisioned(&s), 5.0, "charged once");
        let quiet = s.settle(a, 5, |c| {
            c.apply(None, Some(crate::backend::Footprint { size: 5 << 30, allocated: 0 }));
            Ok(())
        });
        assert!(quiet, "the refused measurement is asked for again once the pool is quiet");
        assert_eq!(provisioned(&s), 5.0, "counted once");
        let token = s.measuring(a);
        assert!(s.report(a, token, seen));
        assert_eq!(provisioned(&s), 5.0);
        assert!(!s.pools()[0].stale);
    }

    #[test]
    fn disabled_and_unreported_pools_are_skipped() {
        let t = vtype(&[]);
        let mut p = pool("a", 100, 100, 0, true);
        p.disabled = true;
        let mut q = pool("b", 100, 100, 0, true);
        q.capacity = None;
        let s = Scheduler::new(vec![p, q], 1.0);
        let err = s.select(&req(1, &t, &[])).unwrap_err().to_string();
        assert!(err.contains("disabled") && err.contains("no capacity report"), "{err}");
    }

    #[test]
    fn a_published_pool_reads_back_as_its_node_saw_it() {
        let mut p = pool("a", 100, 60, 40, true);
        p.pending_gb = 7;
        p.frozen = true;
        p.max_over_subscription_ratio = OverSubscription::Auto;
        p.reported_at = Some(Timestamp::now());
        let back = PoolState::from_published(&p.name, &p.published()).unwrap();
        let t = vtype(&[]);
        assert_eq!(back.capabilities(), p.capabilities());
        assert_eq!(back.virtual_free_gb(&t), p.virtual_free_gb(&t));
        assert_eq!((back.pending_gb, back.frozen), (7, true));
        assert!(PoolState::from_published(&p.name, "{\"pool\": 1}").is_none());
    }

    #[test]
    fn the_fleet_is_ranked_by_one_weigher_and_nothing_is_charged() {
        let s = Scheduler::new(vec![pool("a", 100, 50, 50, false)], 1.0);
        let mut roomy = pool("b", 100, 90, 10, false);
        roomy.name = "other@b#b".into();
        let mut full = pool("c", 100, 0, 100, false);
        full.name = "other@c#c".into();
        let t = vtype(&[]);
        let (ranked, reasons) = s.rank(&req(5, &t, &[]), &[roomy.clone(), full]);
        assert_eq!(ranked, ["other@b#b", "h@a#a"]);
        assert!(reasons[0].starts_with("other@c#c:") && reasons[0].contains("CapacityFilter"), "{reasons:?}");
        assert_eq!(s.state("h@a#a").unwrap().pending_gb, 0);
        // Spread or stack: a negative multiplier ranks the fullest first.
        let stack = Scheduler::new(vec![pool("a", 100, 50, 50, false)], -1.0);
        assert_eq!(stack.rank(&req(5, &t, &[]), &[roomy]).0, ["h@a#a", "other@b#b"]);
    }
}
