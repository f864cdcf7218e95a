//! Metrics in the Prometheus (OpenMetrics) text format, for `GET /metrics`.
//!
//! Two kinds:
//!
//! - **Counted as things happen**, process-wide ([`metrics`]): API requests by route
//!   and code with latency histograms, background work by kind (durations, in
//!   flight), flows by outcome and their failed steps, external commands by program
//!   (durations, failures by reason), backup and restore bytes and durations (the
//!   throughput is `rate()` of the bytes), lifecycle events by type.
//! - **Read when scraped** from the core ([`render`]): volumes, snapshots, backups and
//!   attachments by status (one `GROUP BY` each on the store's read side), each pool's
//!   capacity as last measured, what is charged to it and in flight, and whether it
//!   takes new volumes.
//!
//! Routes are templates (`/volumes/{id}/action`), never raw paths, so label values
//! stay few whatever clients send ([`crate::api::route_label`]).

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::error::{Error, Result};
use crate::store::{count_by_status, Counted};
use crate::volume::Core;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Work {
    work: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowOutcome {
    flow: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowStep {
    flow: String,
    step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Program {
    program: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProgramFailure {
    program: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Bytes {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventType {
    event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Pool {
    pool: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Request latencies: 0.5 ms to ~33 s.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Work, flows, commands and backups: 1 ms to ~9 h.
fn work_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 4.0, 13))
}

/// What is counted as it happens (see the module doc).
pub struct Metrics {
    requests: Family<Request, Counter>,
    request_seconds: Histograms<Route>,
    work_seconds: Histograms<Work>,
    work_in_flight: Family<Work, Gauge>,
    flow_seconds: Histograms<FlowOutcome>,
    flow_step_failures: Family<FlowStep, Counter>,
    command_seconds: Histograms<Program>,
    command_failures: Family<ProgramFailure, Counter>,
    backup_bytes: Family<Bytes, Counter>,
    backup_seconds: Histograms<Operation>,
    events: Family<EventType, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    requests: Family::default(),
    request_seconds: Family::new_with_constructor(request_buckets),
    work_seconds: Family::new_with_constructor(work_buckets),
    work_in_flight: Family::default(),
    flow_seconds: Family::new_with_constructor(work_buckets),
    flow_step_failures: Family::default(),
    command_seconds: Family::new_with_constructor(work_buckets),
    command_failures: Family::default(),
    backup_bytes: Family::default(),
    backup_seconds: Family::new_with_constructor(work_buckets),
    events: Family::default(),
});

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Background work in flight; it counts as done when dropped.
#[must_use = "the work is in flight while this lives"]
pub struct InFlight {
    work: &'static str,
    started: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let m = metrics();
        let w = Work { work: self.work };
        m.work_in_flight.get_or_create(&w).dec();
        m.work_seconds.get_or_create(&w).observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// An API request answered.
    pub fn request(&self, method: &str, route: &str, code: u16, took: Duration) {
        let route = route.to_string();
        self.requests.get_or_create(&Request { method: method.to_string(), route: route.clone(), code }).inc();
        self.request_seconds.get_or_create(&Route { method: method.to_string(), route }).observe(took.as_secs_f64());
    }

    /// Background work of kind `work` starts (`create volume`, `delete snapshot`, ...).
    pub fn work(&self, work: &'static str) -> InFlight {
        self.work_in_flight.get_or_create(&Work { work }).inc();
        InFlight { work, started: Instant::now() }
    }

    /// A flow ended: `failed_step` is the step that failed, if one did.
    pub fn flow(&self, flow: &str, failed_step: Option<&'static str>, took: Duration) {
        let outcome = if failed_step.is_some() { "failed" } else { "done" };
        self.flow_seconds.get_or_create(&FlowOutcome { flow: flow.to_string(), outcome }).observe(took.as_secs_f64());
        if let Some(step) = failed_step {
            self.flow_step_failures.get_or_create(&FlowStep { flow: flow.to_string(), step }).inc();
        }
    }

    /// An external command ended; `failure` is `exit`, `signal`, `timeout` or `spawn`
    /// when it failed.
    pub fn command(&self, program: &str, failure: Option<&'static str>, took: Duration) {
        self.command_seconds.get_or_create(&Program { program: program.to_string() }).observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.command_failures.get_or_create(&ProgramFailure { program: program.to_string(), reason }).inc();
        }
    }

    /// A backup or restore ended: `operation` is `backup` or `restore`; `bytes` are
    /// (direction, count) pairs: `read` and `stored` for a backup, `restored` for a
    /// restore.
    pub fn backup(&self, operation: &'static str, ok: bool, took: Duration, bytes: &[(&'static str, u64)]) {
        let outcome = if ok { "done" } else { "failed" };
        self.backup_seconds.get_or_create(&Operation { operation, outcome }).observe(took.as_secs_f64());
        for &(direction, n) in bytes {
            self.backup_bytes.get_or_create(&Bytes { direction }).inc_by(n);
        }
    }

    /// A lifecycle event was emitted ([`crate::events`]).
    pub fn event(&self, event_type: &str) {
        self.events.get_or_create(&EventType { event_type: event_type.to_string() }).inc();
    }

    fn register(&self, r: &mut Registry) {
        r.register("hearth_api_requests", "API requests answered, by route and status code", self.requests.clone());
        r.register_with_unit(
            "hearth_api_request_duration",
            "Time to answer an API request",
            Unit::Seconds,
            self.request_seconds.clone(),
        );
        r.register_with_unit(
            "hearth_work_duration",
            "Background work (backend calls and their records), by kind",
            Unit::Seconds,
            self.work_seconds.clone(),
        );
        r.register(
            "hearth_work_in_flight",
            "Background work started and not finished (running, or waiting for a backend slot), by kind",
            self.work_in_flight.clone(),
        );
        r.register_with_unit(
            "hearth_flow_duration",
            "Flows (multi-step operations with undo), by outcome",
            Unit::Seconds,
            self.flow_seconds.clone(),
        );
        r.register(
            "hearth_flow_step_failures",
            "Flow steps that failed (the flow was undone)",
            self.flow_step_failures.clone(),
        );
        r.register_with_unit(
            "hearth_command_duration",
            "External commands run, by program",
            Unit::Seconds,
            self.command_seconds.clone(),
        );
        r.register(
            "hearth_command_failures",
            "External commands that failed, by program and reason (exit, signal, timeout, spawn)",
            self.command_failures.clone(),
        );
        r.register_with_unit(
            "hearth_backup",
            "Bytes backups read from volumes (read), wrote compressed to the target (stored), and restores wrote \
             into volumes (restored)",
            Unit::Bytes,
            self.backup_bytes.clone(),
        );
        r.register_with_unit(
            "hearth_backup_duration",
            "Backups and restores, by outcome",
            Unit::Seconds,
            self.backup_seconds.clone(),
        );
        r.register("hearth_events", "Lifecycle events emitted, by type", self.events.clone());
    }
}

/// What is counted as it happens, alone, as text (for tests of the modules counting).
#[cfg(test)]
pub(crate) fn counted_text() -> String {
    let mut r = Registry::default();
    metrics().register(&mut r);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r).expect("encoding to a String");
    text
}

/// Counts by status, from the store.
fn by_status(core: &Core, what: Counted) -> Result<Family<Status, Gauge>> {
    let rows = core.store.read(|tx| count_by_status(tx, what))?;
    let family = Family::<Status, Gauge>::default();
    for (status, n) in rows {
        family.get_or_create(&Status { status }).set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    Ok(family)
}

/// Everything, as the text `GET /metrics` answers.
pub fn render(core: &Core) -> Result<String> {
    let mut r = Registry::default();
    metrics().register(&mut r);

    r.register("hearth_volumes", "Volumes, by status", by_status(core, Counted::Volumes)?);
    r.register("hearth_snapshots", "Snapshots, by status", by_status(core, Counted::Snapshots)?);
    r.register("hearth_backups", "Backups, by status", by_status(core, Counted::Backups)?);
    r.register("hearth_attachments", "Attachments, by attach status", by_status(core, Counted::Attachments)?);

    let total = Family::<Pool, Gauge>::default();
    let free = Family::<Pool, Gauge>::default();
    let provisioned = Family::<Pool, Gauge>::default();
    let allocated = Family::<Pool, Gauge>::default();
    let volumes = Family::<Pool, Gauge>::default();
    let pending = Family::<Pool, Gauge>::default();
    let in_flight = Family::<Pool, Gauge>::default();
    let up = Family::<Pool, Gauge>::default();
    for p in core.scheduler.pools() {
        let l = Pool { pool: p.name.clone() };
        if let Some(c) = &p.capacity {
            total.get_or_create(&l).set(i64::try_from(c.total_bytes).unwrap_or(i64::MAX));
            free.get_or_create(&l).set(i64::try_from(c.free_bytes).unwrap_or(i64::MAX));
            provisioned.get_or_create(&l).set(i64::try_from(c.provisioned_bytes).unwrap_or(i64::MAX));
            allocated.get_or_create(&l).set(i64::try_from(c.allocated_bytes).unwrap_or(i64::MAX));
            volumes.get_or_create(&l).set(i64::try_from(c.total_volumes).unwrap_or(i64::MAX));
        }
        pending.get_or_create(&l).set(i64::try_from(p.pending_gb << 30).unwrap_or(i64::MAX));
        in_flight.get_or_create(&l).set(i64::from(p.in_flight));
        up.get_or_create(&l).set(i64::from(p.capacity.is_some() && !p.disabled && !p.frozen));
    }
    let pool_metrics = [
        ("hearth_pool_capacity", "The pool's size, as last measured", total),
        ("hearth_pool_free", "The pool's physically free space, as last measured", free),
        ("hearth_pool_provisioned", "Virtual sizes of hearth's volumes in the pool", provisioned),
        ("hearth_pool_allocated", "Space physically used by hearth's volumes in the pool", allocated),
        ("hearth_pool_pending", "Space charged by scheduling, not yet in the measurement", pending),
    ];
    for (name, help, family) in pool_metrics {
        r.register_with_unit(name, help, Unit::Bytes, family);
    }
    r.register("hearth_pool_volumes", "hearth's volumes in the pool, as last measured", volumes);
    r.register("hearth_pool_changes_in_flight", "Changes to the pool under way", in_flight);
    r.register("hearth_pool_up", "1 when the pool is measured and its service neither disabled nor frozen", up);

    let jobs = Gauge::<i64>::default();
    jobs.set(i64::try_from(core.background_jobs()).unwrap_or(i64::MAX));
    r.register("hearth_background_jobs", "Background operations running or waiting for a slot", jobs);
    let dropped = Counter::<u64>::default();
    dropped.inc_by(crate::events::dropped());
    r.register("hearth_events_dropped", "Lifecycle events that did not fit the webhook's queue", dropped);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &r)
        .map_err(|e| Error::Internal(format!("encoding the metrics failed: {e}")))?;
    Ok(text)
}
