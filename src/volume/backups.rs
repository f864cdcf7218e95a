//! Backups: copies of volumes (or snapshots) in the backup repository
//! ([`crate::backup`]), which stand alone: the volume, its pool, even this hearth may
//! be gone and a backup still restores (its manifest is complete, an incremental one
//! included).
//!
//! Every change is one store transaction that records the intent before the work:
//!
//! 1. **Create**: the volume must be `available` (or `in-use` with `force`), or the
//!    named snapshot `available`; the quota (`backups`, `backup_gigabytes`) is
//!    checked, an incremental backup's parent chosen (the latest `available` backup of
//!    the volume), and in one transaction the backup is recorded `creating` and the
//!    volume (or snapshot) becomes `backing-up`. In the background, at most
//!    `backup_max_operations` at once, the repository reads the volume (an in-use
//!    volume: a temporary snapshot of it, recorded before it is made and removed
//!    after) and writes chunks, then the manifest, last; one transaction then makes
//!    the backup `available` (or `error`, with the reason and a user message) and the
//!    volume what it was before.
//! 2. **Delete**: `available` or `error` backups without dependent incremental ones
//!    (any status but `restoring` with `os-force_delete`) become `deleting`; the
//!    manifest is removed (unless an imported record shares it), then the record; the
//!    chunks no manifest names are collected afterwards, off the request path, one
//!    collection at a time however many deletes ask for one. Deleting a `creating`
//!    backup cancels it: the running backup stops, writes no manifest, and the
//!    backup is deleted as above.
//! 3. **Restore**: into an existing `available` volume at least as large (it becomes
//!    `restoring-backup`, task `backup_restore`), or into a new volume made like any
//!    other (named `restore_backup_<id>` unless a name is given; see
//!    [`crate::flow::create_volume`]); the backup is `restoring` meanwhile. The
//!    repository checks every chunk it reads; the volume ends `available` (with the
//!    source volume's name when it had none of its own, its metadata and
//!    `src_backup_id`), or `error_restoring` (a volume made by 3.47's `backup_id`:
//!    `error`) with a user message; the backup is `available` again either way.
//! 4. **Export and import**: `export_record` gives the record as base64 JSON;
//!    `import_record` in another hearth records it `creating` and, once the manifest
//!    it names is found in that hearth's own repository, `available`.
//! 5. **Verify** (hearth's `os-verify`, admins): every chunk of the backup is re-read
//!    and checked; a backup with missing or corrupt chunks goes to `error` with the
//!    reason.
//!
//! Progress (bytes of the source read) is kept in memory while a backup or restore
//! runs, written to the record and the log at every tenth, and shown when a client
//! asks (`?with_progress=true`). After a crash, [`Core::reconcile_backups`] finishes
//! or undoes what was in flight.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::db::Connection;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::backup::{
    BackupJob, BackupSummary, Progress, RepoConfig, Repository, S3Settings, S3Target, Target, VerifyReport,
};
use crate::config::{BackupDriver, Config};
use crate::error::{Error, Result};
use crate::events::{event, Resource as Ev};
use crate::flow::create_volume::{self, NewVolume, RestoreInto};
use crate::ids::{Id, Timestamp};
use crate::model::{AttachStatus, Backup, BackupStatus, SnapshotStatus, Task, Volume, VolumeStatus};
use crate::policy::rules;
use crate::query::ColumnQuery;
use crate::store::{backups as sb, quotas as q, snapshots as ss, volumes as sv};
use crate::volume::messages::{action, detail, Action, Detail, Origin, Resource};
use crate::volume::quotas::backup_needs;
use crate::volume::{Caller, Core};

/// The volume id of an imported backup until its record is read (Cinder's).
pub const IMPORT_VOLUME_ID: Id = Id::nil();

/// Bytes of a repository chunk.
const CHUNK_SIZE: usize = 4 << 20;

/// Threads the repository hashes, compresses and stores chunks with, per backup.
const PARALLELISM: usize = 4;

/// A backup to make.
#[derive(Clone, Debug, Default)]
pub struct NewBackup {
    /// The volume.
    pub volume_id: String,
    /// Back up this snapshot of it instead of the volume itself.
    pub snapshot_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// The container the client named (kept and shown).
    pub container: Option<String>,
    /// Make it against the latest available backup of the volume.
    pub incremental: bool,
    /// Back up an in-use volume (from a temporary snapshot).
    pub force: bool,
    /// User metadata (3.43).
    pub metadata: BTreeMap<String, String>,
    /// Availability zone (3.51); `None`: the default zone.
    pub availability_zone: Option<String>,
}

/// Changes to a backup (3.9).
#[derive(Clone, Debug, Default)]
pub struct BackupUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New metadata (replaces all; 3.43).
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A restore accepted: what `POST /backups/{id}/restore` answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Restored {
    /// The backup.
    pub backup_id: Id,
    /// The volume being written.
    pub volume_id: Id,
    /// Its name.
    pub volume_name: Option<String>,
}

/// A backup's record for another hearth (`export_record`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    /// The driver, as Cinder names it.
    pub backup_service: String,
    /// The record: base64 of its JSON.
    pub backup_url: String,
}

/// A backup or restore in progress: its cancel flag and how far it got.
#[derive(Debug, Default)]
pub struct Running {
    cancel: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
    tenth: AtomicU64,
}

impl Running {
    /// Record a report; returns the tenth (1..=10) it crossed, if it crossed one.
    fn report(&self, p: &Progress) -> Option<u64> {
        self.done.store(p.bytes_done, Ordering::Relaxed);
        self.total.store(p.bytes_total, Ordering::Relaxed);
        let tenth = (p.bytes_done.saturating_mul(10)).checked_div(p.bytes_total).unwrap_or(10).min(10);
        let before = self.tenth.fetch_max(tenth, Ordering::Relaxed);
        (tenth > before).then_some(tenth)
    }
}

#[derive(Debug, Default)]
struct GcState {
    running: bool,
    again: bool,
    /// The last collection failed (a backup held the repository): retry when the
    /// next backup or restore ends.
    failed: bool,
}

/// hearth's side of the backup repository: the repository (opened at first use),
/// what runs now, the bound on parallel backups and restores, and the collection of
/// unreferenced chunks.
pub struct BackupService {
    driver: BackupDriver,
    repo: Mutex<Option<Arc<Repository>>>,
    /// Whether this node published its repository for the fleet since it started
    /// ([`super::backup_repository`]).
    pub(super) published: AtomicBool,
    running: Mutex<HashMap<Id, Arc<Running>>>,
    slots: Option<Arc<smol::lock::Semaphore>>,
    gc: Mutex<GcState>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Read `backup_encryption_key_file`: 32 bytes, raw or as 64 hex digits (surrounding
/// white space ignored).
pub fn read_encryption_key(path: &std::path::Path) -> Result<[u8; 32]> {
    let bad = |why: String| Error::Internal(format!("backup_encryption_key_file {}: {why}", path.display()));
    let raw = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(md) = std::fs::metadata(path) {
            if md.permissions().mode() & 0o077 != 0 {
                log::warn!(
                    "backup_encryption_key_file {} can be read by others (mode {:o}): make it 0600",
                    path.display(),
                    md.permissions().mode() & 0o777
                );
            }
        }
    }
    if raw.len() == 32 {
        let mut k = [0u8; 32];
        k.copy_from_slice(&raw);
        return Ok(k);
    }
    let text = std::str::from_utf8(&raw).map(str::trim).unwrap_or_default();
    if text.len() == 64 && text.bytes().all(|c| c.is_ascii_hexdigit()) {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| bad(e.to_string()))?;
        }
        return Ok(k);
    }
    Err(bad(format!("holds {} bytes; it must hold 32 random bytes, raw or as 64 hex digits", raw.len())))
}

/// The S3 settings of the configuration (`backup_s3_*`); the secret key is read from
/// its file when one is named.
pub fn s3_settings(config: &Config) -> Result<S3Settings> {
    let secret = match (&config.backup_s3_store_secret_key, &config.backup_s3_store_secret_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Internal(format!("backup_s3_store_secret_key_file {}: {e}", path.display())))?;
            text.strip_suffix('\n').unwrap_or(&text).to_string()
        }
        (None, None) => String::new(),
    };
    let mut s = S3Settings::new(
        config.backup_s3_endpoint_url.as_deref().unwrap_or_default(),
        config.backup_s3_store_access_key.as_deref().unwrap_or_default(),
        &secret,
        &config.backup_s3_store_bucket,
    );
    s.region = config.backup_s3_region.clone();
    s.object_size = config.backup_s3_object_size;
    s.md5_validation = config.backup_s3_md5_validation;
    s.ca_cert_file = config.backup_s3_ca_cert_file.clone();
    s.verify_ssl = config.backup_s3_verify_ssl;
    Ok(s)
}

/// The target the configuration names (`backup_driver`).
pub fn open_target(config: &Config) -> Result<Arc<dyn Target>> {
    let target: Arc<dyn Target> = match config.backup_driver {
        BackupDriver::Posix => Arc::new(crate::backup::PosixTarget::new(config.backup_posix_path())?),
        BackupDriver::S3 => Arc::new(S3Target::new(s3_settings(config)?)?),
    };
    Ok(if crate::faults::plan().is_some() { crate::faults::FaultyTarget::wrap(target) } else { target })
}

/// Open (making it when the target is empty) the repository the configuration names.
pub fn open_repository(config: &Config) -> Result<Repository> {
    let encryption_key = config.backup_encryption_key_file.as_deref().map(read_encryption_key).transpose()?;
    let target = open_target(config)?;
    Repository::open(target, RepoConfig { chunk_size: CHUNK_SIZE, encryption_key, parallelism: PARALLELISM })
}

/// Verify a backup outside the daemon (`hearthd backup-verify`): its record, when the
/// store has one, names its data; otherwise `id` is taken as the repository's name of
/// it. Returns whether it is intact, and the report.
pub fn verify_offline(config: &Config, id: &str) -> Result<(bool, Value)> {
    let mut data = id.to_string();
    if let Some(bid) = Id::parse(id) {
        let record = match crate::store::Database::of(config)? {
            crate::store::Database::Sqlite(dir) => {
                let db = dir.join(crate::store::DB_FILE);
                if db.exists() {
                    let conn = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                        .map_err(crate::store::db::DbError::from)?;
                    sb::get(&Connection::sqlite(&conn), bid)?
                } else {
                    None
                }
            }
            crate::store::Database::Postgres(url, password) => {
                let mut conn = crate::store::open_pg_read_only(&url, password.as_deref())?;
                sb::get(&Connection::pg(&mut conn), bid)?
            }
        };
        if let Some(b) = record {
            if b.service_metadata.is_empty() {
                return Err(Error::Invalid(format!(
                    "Backup {id} has no data in the repository (an unfinished import)."
                )));
            }
            data = b.service_metadata;
        }
    }
    let report = open_repository(config)?.verify(&data)?;
    Ok(verify_json(&report))
}

impl BackupService {
    /// The service for a configuration; the repository is opened at first use.
    pub fn new(config: &Config) -> BackupService {
        let slots = match config.backup_max_operations {
            0 => None,
            n => Some(Arc::new(smol::lock::Semaphore::new(n))),
        };
        BackupService {
            driver: config.backup_driver,
            repo: Mutex::new(None),
            published: AtomicBool::new(false),
            running: Mutex::new(HashMap::new()),
            slots,
            gc: Mutex::new(GcState::default()),
        }
    }

    /// The repository, opened now if it was not yet.
    pub fn repo(&self, config: &Config) -> Result<Arc<Repository>> {
        let mut slot = lock(&self.repo);
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = Arc::new(open_repository(config)?);
        *slot = Some(r.clone());
        Ok(r)
    }

    fn register(&self, id: Id) -> Arc<Running> {
        lock(&self.running).entry(id).or_default().clone()
    }

    fn unregister(&self, id: Id) {
        lock(&self.running).remove(&id);
    }

    /// Ask a running backup to stop; whether one was running.
    fn cancel(&self, id: Id) -> bool {
        match lock(&self.running).get(&id) {
            Some(r) => {
                r.cancel.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Bytes done and to do of a backup or restore running now.
    pub fn live_progress(&self, id: Id) -> Option<(u64, u64)> {
        lock(&self.running).get(&id).map(|r| (r.done.load(Ordering::Relaxed), r.total.load(Ordering::Relaxed)))
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Backup {id} could not be found."))
}

fn invalid_backup(why: impl std::fmt::Display) -> Error {
    Error::InvalidState(format!("Invalid backup: {why}"))
}

fn invalid_volume(why: impl std::fmt::Display) -> Error {
    Error::InvalidState(format!("Invalid volume: {why}"))
}

/// What a restore gives back besides the data: the source volume as it was.
fn source_volume(v: &Volume) -> Value {
    json!({
        "name": v.name,
        "description": v.description,
        "metadata": v.metadata,
        "bootable": v.bootable,
        "volume_type": v.volume_type_name,
        "size": v.size,
    })
}

/// A verify report as `os-verify` answers and `hearthd backup-verify` prints it, and
/// whether the backup is intact.
pub fn verify_json(r: &VerifyReport) -> (bool, Value) {
    let bad: Vec<Value> = r
        .bad
        .iter()
        .map(|c| json!({"chunk": c.name, "index": c.index, "offset": c.offset, "problem": c.problem.to_string()}))
        .collect();
    (r.is_intact(), json!({"chunks_checked": r.chunks_checked, "bytes_checked": r.bytes_checked, "bad_chunks": bad}))
}

/// The percentage a progress shows (0 until the total is known).
pub fn percent(done: u64, total: u64) -> u64 {
    (done.saturating_mul(100)).checked_div(total).unwrap_or(0).min(100)
}

/// Cinder's record of a backup, as `export_record` encodes it (its field names), with
/// hearth's additions in `driver_info`.
pub fn export_json(b: &Backup, host: &str) -> Value {
    let id = |i: Option<Id>| i.map(|i| i.to_string());
    json!({
        "id": b.id.to_string(),
        "user_id": b.user_id,
        "project_id": b.project_id,
        "volume_id": b.volume_id.to_string(),
        "host": host,
        "availability_zone": b.availability_zone,
        "container": b.container,
        "parent_id": id(b.parent_id),
        "status": b.status.as_str(),
        "fail_reason": b.fail_reason,
        "size": b.size,
        "display_name": b.name,
        "display_description": b.description,
        "service_metadata": b.service_metadata,
        "service": b.service,
        "object_count": b.object_count,
        "temp_volume_id": null,
        "temp_snapshot_id": null,
        "num_dependent_backups": b.dependents,
        "snapshot_id": id(b.snapshot_id),
        "data_timestamp": b.data_timestamp.to_string(),
        "restore_volume_id": null,
        "metadata": b.metadata,
        "encryption_key_id": null,
        "created_at": b.created_at.to_string(),
        "updated_at": b.updated_at.to_string(),
        "deleted_at": null,
        "deleted": false,
        "driver_info": {"source_volume": b.source_volume},
    })
}

impl Core {
    /// Load a backup the caller may see (another project's is 404), and refuse (403)
    /// unless policy lets the caller do `rule` on it.
    pub fn backup_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<Backup> {
        let bid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match sb::get(conn, bid)? {
            Some(b) if caller.is_admin || b.project_id == caller.project_id => {
                caller.authorize(rule, &b.project_id)?;
                Ok(b)
            }
            _ => Err(not_found(id)),
        }
    }

    /// Run backup or restore work in the background, at most `backup_max_operations`
    /// at once, counted with the other background work.
    fn spawn_backup_work(self: &Arc<Core>, what: &'static str, f: impl FnOnce(&Arc<Core>) + Send + 'static) {
        let core = self.clone();
        core.background.fetch_add(1, Ordering::SeqCst);
        self.spawn(async move {
            let slot = match &core.backups.slots {
                Some(s) => Some(s.acquire_arc().await),
                None => None,
            };
            let c = core.clone();
            super::unblock(move || f(&c)).await;
            drop(slot);
            core.background.fetch_sub(1, Ordering::SeqCst);
            log::trace!("background {what} finished");
        });
    }

    /// Record a user message about a backup in the caller's transaction.
    fn backup_message(&self, tx: &Connection, origin: &Origin, id: Id, act: Action, det: Detail) -> Result<()> {
        self.record_message(tx, origin, Resource::VolumeBackup, id, act, det)
    }

    /// Make a backup (step 1): checked and recorded now, made in the background.
    pub fn create_backup(self: &Arc<Core>, caller: &Caller, req: NewBackup) -> Result<Backup> {
        self.check_fleet_repository()?;
        let b = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, &req.volume_id, rules::VOLUME_GET)?;
            caller.authorize(rules::BACKUP_CREATE, &v.project_id)?;
            let snapshot = match &req.snapshot_id {
                Some(sid) => {
                    let s = self.snapshot_in(tx, caller, sid, rules::SNAPSHOT_GET)?;
                    if s.volume_id != v.id {
                        return Err(invalid_volume(format!(
                            "Volume {} does not match with snapshot.volume_id {}.",
                            v.id, s.volume_id
                        )));
                    }
                    if s.status != SnapshotStatus::Available {
                        return Err(Error::InvalidState(format!(
                            "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \
                             \"{}\".",
                            s.status
                        )));
                    }
                    Some(s)
                }
                None => {
                    if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) {
                        return Err(invalid_volume(format!(
                            "Volume to be backed up must be available or in-use, but the current status is \"{}\".",
                            v.status
                        )));
                    }
                    if v.status == VolumeStatus::InUse && !req.force {
                        return Err(invalid_volume("Backing up an in-use volume must use the force flag."));
                    }
                    None
                }
            };
            if v.host.is_none() {
                return Err(invalid_volume(format!("Volume {} is on no pool: it has no data to back up.", v.id)));
            }
            self.check_acts_here(v.host.as_deref(), &format!("volume {}", v.id))?;
            let reservations = self.reserve_quota(tx, &caller.project_id, &backup_needs(v.size))?;
            let parent = if req.incremental {
                // The latest available backup of the volume (from a snapshot: the
                // latest one whose data is older than the snapshot).
                let before = snapshot.as_ref().map(|s| s.created_at);
                let parent = sb::of_volume(tx, v.id, &caller.project_id)?
                    .into_iter()
                    .filter(|b| b.status == BackupStatus::Available)
                    .filter(|b| before.is_none_or(|t| b.data_timestamp < t))
                    .max_by_key(|b| (b.data_timestamp, b.created_at));
                match parent {
                    Some(p) => Some(p),
                    None => return Err(invalid_backup("No backups available to do an incremental backup.")),
                }
            } else {
                None
            };
            let now = Timestamp::now();
            let id = Id::new();
            let b = Backup {
                id,
                project_id: caller.project_id.clone(),
                user_id: caller.user_id.clone(),
                volume_id: v.id,
                snapshot_id: snapshot.as_ref().map(|s| s.id),
                name: req.name.clone(),
                description: req.description.clone(),
                status: BackupStatus::Creating,
                size: v.size,
                object_count: 0,
                container: req.container.clone(),
                availability_zone: Some(
                    req.availability_zone.clone().unwrap_or_else(|| self.config.storage_availability_zone.clone()),
                ),
                parent_id: parent.as_ref().map(|p| p.id),
                dependents: 0,
                fail_reason: None,
                data_timestamp: snapshot.as_ref().map(|s| s.created_at).unwrap_or(now),
                service: self.backups.driver.cinder_name().into(),
                service_metadata: id.to_string(),
                restore_volume_id: None,
                temp_snapshot_id: None,
                temp_snapshot_host: None,
                bytes_done: 0,
                bytes_total: v.size << 30,
                stats: None,
                source_volume: source_volume(&v),
                metadata: req.metadata.clone(),
                created_at: now,
                updated_at: now,
            };
            sb::insert(tx, &b)?;
            match snapshot {
                Some(mut s) => {
                    s.status = SnapshotStatus::BackingUp;
                    s.updated_at = now;
                    ss::save(tx, &s)?;
                }
                None => {
                    v.status = VolumeStatus::BackingUp;
                    v.updated_at = now;
                    sv::save(tx, &v)?;
                }
            }
            // The record counts from now on.
            q::release(tx, &reservations)?;
            Ok(b)
        })?;
        log::info!(
            "backup {} of volume {}{} recorded{}",
            b.id,
            b.volume_id,
            b.snapshot_id.map(|s| format!(" (snapshot {s})")).unwrap_or_default(),
            b.parent_id.map(|p| format!(", incremental against {p}")).unwrap_or_default()
        );
        let origin = caller.origin(&b.project_id);
        let id = b.id;
        event(Ev::Backup, "create", "start", b.id, &b.project_id)
            .status(b.status)
            .payload(serde_json::json!({"volume_id": b.volume_id.to_string(), "incremental": b.parent_id.is_some()}))
            .emit();
        self.spawn_backup_work("create backup", move |core| core.run_backup(id, &origin));
        Ok(b)
    }

    /// The background half of a create: read, store, conclude.
    fn run_backup(self: &Arc<Core>, id: Id, origin: &Origin) {
        let run = self.backups.register(id);
        let outcome = self.make_backup(id, &run);
        self.backups.unregister(id);
        let volume = self.store.read(|tx| sb::get(tx, id)).ok().flatten().map(|b| b.volume_id);
        self.conclude_backup(id, outcome, origin);
        if let Some(v) = volume {
            self.prune_kept_snapshots(v);
        }
        self.retry_backup_gc();
    }

    /// Keep at most one snapshot of a volume for incremental backups to compare
    /// with: the newest `available` backup's, while the volume lives on that pool and
    /// its backend tracks changes. The snapshots other backups of the volume still
    /// name are removed (a newer backup kept its own, the backup failed or is being
    /// deleted, the volume is gone or moved). Nothing is removed while a backup of
    /// the volume is being made: it may be comparing with one of them.
    pub fn prune_kept_snapshots(&self, volume: Id) {
        let found = self.store.read(|tx| {
            if sb::creating_of(tx, volume)? {
                return Ok(None);
            }
            Ok(Some((sv::get(tx, volume)?, sb::with_temp_snapshot_of(tx, volume)?)))
        });
        let (v, backups) = match found {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                log::error!("volume {volume}: reading its backups' snapshots failed: {e}");
                return;
            }
        };
        let tracking_host = v
            .as_ref()
            .filter(|v| v.status != VolumeStatus::Deleting)
            .and_then(|v| v.host.clone())
            .filter(|h| self.pool(h).is_ok_and(|p| p.backend.tracks_changes(&p.pool)));
        let keep = backups
            .iter()
            .filter(|b| matches!(b.status, BackupStatus::Available | BackupStatus::Restoring))
            .filter(|b| tracking_host.is_some() && b.temp_snapshot_host == tracking_host)
            .max_by_key(|b| (b.data_timestamp, b.created_at))
            .map(|b| b.id);
        for b in backups.into_iter().filter(|b| Some(b.id) != keep) {
            let (Some(t), Some(host)) = (b.temp_snapshot_id, b.temp_snapshot_host.clone()) else { continue };
            match self.pool(&host).and_then(|p| p.backend.delete_snapshot(&p.pool, t)) {
                Ok(_) => {
                    let r = self.store.write(|tx| {
                        let Some(mut cur) = sb::get(tx, b.id)? else { return Ok(()) };
                        if cur.temp_snapshot_id == Some(t) {
                            cur.temp_snapshot_id = None;
                            cur.temp_snapshot_host = None;
                            sb::save(tx, &cur)?;
                        }
                        Ok(())
                    });
                    match r {
                        Ok(()) => log::info!("backup {}: removed its snapshot {t} of volume {volume}", b.id),
                        Err(e) => log::error!("backup {}: forgetting snapshot {t} failed: {e}", b.id),
                    }
                }
                Err(e) => log::error!("backup {}: removing its snapshot {t} of volume {volume} failed: {e}", b.id),
            }
        }
    }

    /// Read the source into the repository; the error says which detail a message
    /// gives.
    fn make_backup(self: &Arc<Core>, id: Id, run: &Running) -> Result<BackupSummary, (Error, Detail)> {
        let device = |e: Error| (e, detail::BACKUP_CREATE_DEVICE_ERROR);
        let (b, v, parent) = self
            .store
            .read(|tx| {
                let b = sb::get(tx, id)?.ok_or_else(|| not_found(&id.to_string()))?;
                let v = sv::get(tx, b.volume_id)?
                    .ok_or_else(|| Error::NotFound(format!("Volume {} could not be found.", b.volume_id)))?;
                let parent = b.parent_id.map(|p| sb::get(tx, p)).transpose()?.flatten();
                Ok((b, v, parent))
            })
            .map_err(device)?;
        if b.status != BackupStatus::Creating {
            return Err((
                Error::Internal(format!("backup {id} is {} before it started", b.status)),
                detail::UNKNOWN_ERROR,
            ));
        }
        let host = v.host.clone().ok_or_else(|| device(invalid_volume(format!("Volume {} is on no pool.", v.id))))?;
        let pool = self.pool(&host).map_err(device)?.clone();
        let repo = self.backup_repo().map_err(|e| (e, detail::BACKUP_CREATE_DRIVER_ERROR))?;
        let in_use = v.attachments.iter().any(|a| a.attach_status != AttachStatus::Detached);
        // Where the backend can tell what changed between two snapshots (thin LVM),
        // every backup of a volume reads a snapshot and keeps it for the next
        // incremental one to compare with.
        let track = b.snapshot_id.is_none() && pool.backend.tracks_changes(&pool.pool);
        // An in-use volume is read from a temporary snapshot too. Either is recorded
        // before it is made so that reconcile can remove it after a crash.
        let temp = (b.snapshot_id.is_none() && (in_use || track)).then(Id::new);
        // The snapshot the parent kept, on this pool.
        let base = parent
            .as_ref()
            .filter(|_| track)
            .filter(|p| p.temp_snapshot_host.as_deref() == Some(host.as_str()))
            .and_then(|p| p.temp_snapshot_id);
        if let Some(t) = temp {
            self.store
                .write(|tx| {
                    let mut cur = sb::get(tx, id)?.ok_or_else(|| not_found(&id.to_string()))?;
                    cur.temp_snapshot_id = Some(t);
                    cur.temp_snapshot_host = Some(host.clone());
                    sb::save(tx, &cur)
                })
                .map_err(device)?;
        }
        let path = match (b.snapshot_id, temp) {
            (Some(s), _) => pool.backend.snapshot_device(&pool.pool, s),
            (None, Some(t)) => pool
                .backend
                .create_snapshot(&pool.pool, v.id, t)
                .and_then(|_| pool.backend.snapshot_device(&pool.pool, t)),
            (None, None) => Ok(pool.backend.device_path(&pool.pool, v.id)),
        };
        let changed = match (base, temp) {
            (Some(base), Some(t)) if path.is_ok() => match pool.backend.changed_ranges(&pool.pool, base, t) {
                Ok(Some(ranges)) => {
                    let bytes: u64 = ranges.iter().map(|r| r.end - r.start).sum();
                    log::info!(
                        "backup {id}: the pool reports {bytes} of {} bytes changed since backup {}; reading only those",
                        v.size << 30,
                        b.parent_id.map(|p| p.to_string()).unwrap_or_default()
                    );
                    Some(ranges)
                }
                Ok(None) => None,
                Err(e) => {
                    log::warn!("backup {id}: asking the pool what changed failed ({e}); reading the whole volume");
                    None
                }
            },
            _ => None,
        };
        let result = path.map_err(device).and_then(|path| {
            let source = std::fs::File::open(&path)
                .map_err(|e| device(Error::Backend(format!("backup {id}: opening {}: {e}", path.display()))))?;
            let store = &self.store;
            let progress = |p: Progress| {
                if let Some(tenth) = run.report(&p) {
                    log::info!("backup {id}: {}% ({} of {} bytes read)", tenth * 10, p.bytes_done, p.bytes_total);
                    if let Err(e) = store.write(|tx| sb::set_progress(tx, id, p.bytes_done, p.bytes_total)) {
                        log::warn!("backup {id}: recording progress failed: {e}");
                    }
                }
            };
            let job = BackupJob {
                backup_id: &b.service_metadata,
                source: &source,
                size: v.size << 30,
                parent: parent.as_ref().map(|p| p.service_metadata.as_str()),
                // Without ranges every chunk is read and compared with the parent's.
                changed: changed.as_deref(),
                metadata: export_json(&b, self.host()),
                progress: &progress,
                cancel: &run.cancel,
            };
            let started = std::time::Instant::now();
            let r = repo.backup(job);
            let bytes = r
                .as_ref()
                .map_or([("read", 0), ("stored", 0)], |s| [("read", s.bytes_read), ("stored", s.bytes_stored)]);
            crate::metrics::metrics().backup("backup", r.is_ok(), started.elapsed(), &bytes);
            r.map_err(|e| (e, detail::BACKUP_CREATE_DRIVER_ERROR))
        });
        if let Some(t) = temp.filter(|_| !(track && result.is_ok())) {
            match pool.backend.delete_snapshot(&pool.pool, t) {
                Ok(_) => {
                    let r = self.store.write(|tx| {
                        let Some(mut cur) = sb::get(tx, id)? else { return Ok(()) };
                        cur.temp_snapshot_id = None;
                        cur.temp_snapshot_host = None;
                        sb::save(tx, &cur)
                    });
                    if let Err(e) = r {
                        log::error!("backup {id}: forgetting temporary snapshot {t} failed: {e}");
                    }
                }
                Err(e) => {
                    // The record still names it: reconcile removes it at the next start.
                    log::error!("backup {id}: removing temporary snapshot {t} failed: {e}");
                    if result.is_ok() {
                        return Err((e, detail::BACKUP_CREATE_CLEANUP_ERROR));
                    }
                }
            }
        }
        result
    }

    /// Record the outcome of a backup: the source back to what it was, the backup
    /// `available` or `error`; a backup deleted meanwhile (cancelled) is deleted now.
    fn conclude_backup(self: &Arc<Core>, id: Id, outcome: Result<BackupSummary, (Error, Detail)>, origin: &Origin) {
        let r = self.store.write(|tx| {
            let Some(mut b) = sb::get(tx, id)? else { return Ok(None) };
            let now = Timestamp::now();
            match b.snapshot_id {
                Some(s) => {
                    if let Some(mut s) = ss::get(tx, s)? {
                        if s.status == SnapshotStatus::BackingUp {
                            s.status = SnapshotStatus::Available;
                            s.updated_at = now;
                            ss::save(tx, &s)?;
                        }
                    }
                }
                None => {
                    if let Some(mut v) = sv::get(tx, b.volume_id)? {
                        if v.status == VolumeStatus::BackingUp {
                            v.status = v.resting_status();
                            v.updated_at = now;
                            sv::save(tx, &v)?;
                        }
                    }
                }
            }
            b.updated_at = now;
            match (&outcome, b.status) {
                (_, BackupStatus::Deleting) => return Ok(Some(b)),
                (Ok(sum), status) => {
                    if status == BackupStatus::Creating {
                        b.status = BackupStatus::Available;
                    }
                    b.object_count = sum.chunk_count;
                    b.bytes_done = b.bytes_total;
                    b.stats = Some(json!({
                        "chunk_count": sum.chunk_count,
                        "new_chunks": sum.new_chunks,
                        "bytes_read": sum.bytes_read,
                        "bytes_stored": sum.bytes_stored,
                    }));
                }
                (Err((e, det)), status) => {
                    if status == BackupStatus::Creating {
                        b.status = BackupStatus::Error;
                    }
                    b.fail_reason = Some(e.to_string());
                    self.backup_message(tx, origin, id, action::BACKUP_CREATE, *det)?;
                }
            }
            sb::save(tx, &b)?;
            Ok(None)
        });
        match (r, &outcome) {
            (Err(e), _) => log::error!("backup {id}: recording the outcome failed: {e}"),
            (Ok(Some(b)), _) => {
                log::info!("backup {id} was deleted while it ran: deleting it");
                self.finish_delete_backup(b, origin);
            }
            (Ok(None), Ok(sum)) => {
                log::info!(
                    "backup {id} is available: {} chunks ({} new), {} bytes read, {} bytes stored",
                    sum.chunk_count,
                    sum.new_chunks,
                    sum.bytes_read,
                    sum.bytes_stored
                );
                event(Ev::Backup, "create", "end", id, &origin.project_id)
                    .status(BackupStatus::Available)
                    .payload(serde_json::json!({"bytes_read": sum.bytes_read, "bytes_stored": sum.bytes_stored}))
                    .emit();
            }
            (Ok(None), Err((e, _))) => {
                log::error!("backup {id} failed: {e}");
                event(Ev::Backup, "create", "error", id, &origin.project_id)
                    .status(BackupStatus::Error)
                    .reason(e)
                    .emit();
            }
        }
    }

    /// Show a backup.
    pub fn get_backup(&self, caller: &Caller, id: &str) -> Result<Backup> {
        self.store.read(|tx| self.backup_in(tx, caller, id, rules::BACKUP_GET))
    }

    /// List backups (the caller's project's unless an admin asks for all), and count
    /// every match when `with_count`.
    pub fn list_backups(
        &self,
        caller: &Caller,
        mut query: ColumnQuery,
        all_tenants: bool,
        with_count: bool,
    ) -> Result<(Vec<Backup>, Option<u64>)> {
        caller.authorize_own(rules::BACKUP_GET_ALL)?;
        if !(caller.is_admin && all_tenants) {
            query.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| {
            let list = sb::list(tx, &query)?;
            let count = if with_count { Some(sb::count(tx, &query)?) } else { None };
            Ok((list, count))
        })
    }

    /// Change a backup's name, description or metadata (3.9, 3.43).
    pub fn update_backup(&self, caller: &Caller, id: &str, upd: BackupUpdate) -> Result<Backup> {
        self.store.write(|tx| {
            let mut b = self.backup_in(tx, caller, id, rules::BACKUP_UPDATE)?;
            if let Some(n) = upd.name.clone() {
                b.name = Some(n);
            }
            if let Some(d) = upd.description.clone() {
                b.description = Some(d);
            }
            if let Some(m) = upd.metadata.clone() {
                sb::replace_metadata(tx, b.id, &m)?;
                b.metadata = m;
            }
            b.updated_at = Timestamp::now();
            sb::save(tx, &b)?;
            Ok(b)
        })
    }

    /// Delete a backup (step 2); `force` (admin): whatever its status but
    /// `restoring`.
    pub fn delete_backup(self: &Arc<Core>, caller: &Caller, id: &str, force: bool) -> Result<()> {
        self.check_fleet_repository()?;
        let (b, was) = self.store.write(|tx| {
            let mut b = self.backup_in(tx, caller, id, rules::BACKUP_DELETE)?;
            if force {
                caller.authorize(rules::BACKUP_FORCE_DELETE, &b.project_id)?;
            }
            let was = b.status;
            match was {
                BackupStatus::Available | BackupStatus::Error | BackupStatus::Creating => {}
                BackupStatus::Restoring => {
                    return Err(invalid_backup(format!(
                        "Backup {} is being restored; delete it when the restore is done.",
                        b.id
                    )))
                }
                BackupStatus::Deleting => {
                    return Err(invalid_backup(format!("Backup {} is already being deleted.", b.id)))
                }
                BackupStatus::ErrorDeleting if force => {}
                other => {
                    return Err(invalid_backup(format!(
                        "Backup status must be available or error, but backup {} is {other}.",
                        b.id
                    )))
                }
            }
            if b.dependents > 0 {
                return Err(invalid_backup("Incremental backups exist for this backup."));
            }
            // The snapshot kept for incrementals goes with it, by its pool's node.
            if b.temp_snapshot_id.is_some() {
                self.check_acts_here(b.temp_snapshot_host.as_deref(), &format!("backup {}'s kept snapshot", b.id))?;
            }
            b.status = BackupStatus::Deleting;
            b.updated_at = Timestamp::now();
            sb::save(tx, &b)?;
            Ok((b, was))
        })?;
        let origin = caller.origin(&b.project_id);
        event(Ev::Backup, "delete", "start", b.id, &b.project_id).status(b.status).emit();
        if was == BackupStatus::Creating {
            // The backup's own job deletes it once it stopped (or at its start, when
            // it is still waiting for its turn).
            let running = self.backups.cancel(b.id);
            log::info!("backup {} is being cancelled ({})", b.id, if running { "running" } else { "not started" });
            return Ok(());
        }
        log::info!("backup {} is being deleted", b.id);
        self.spawn_blocking("delete backup", move |core| core.finish_delete_backup(b, &origin));
        Ok(())
    }

    /// The background half of a delete (also resumed by reconcile): the manifest,
    /// unless another record shares it, then the record; a collection of the chunks no
    /// manifest names follows.
    pub fn finish_delete_backup(self: &Arc<Core>, b: Backup, origin: &Origin) {
        // The snapshot the backup kept for incrementals goes first: the record names it
        // until it is gone.
        let snapshot = match (b.temp_snapshot_id, b.temp_snapshot_host.as_deref()) {
            (Some(t), Some(host)) => self.pool(host).and_then(|p| p.backend.delete_snapshot(&p.pool, t)).map(|_| ()),
            _ => Ok(()),
        };
        let result = snapshot.and_then(|()| self.store.read(|tx| sb::sharing(tx, &b.service_metadata))).and_then(|n| {
            if b.service_metadata.is_empty() {
                // An import that never found its data: nothing in the repository is its.
                return Ok(());
            }
            if n > 1 {
                log::info!("backup {}: another record shares its data {}; kept", b.id, b.service_metadata);
                return Ok(());
            }
            self.backup_repo()?.delete(&b.service_metadata)
        });
        let r = self.store.write(|tx| match &result {
            Ok(()) => sb::delete(tx, b.id),
            Err(e) => {
                if let Some(mut cur) = sb::get(tx, b.id)? {
                    cur.status = BackupStatus::ErrorDeleting;
                    cur.fail_reason = Some(format!("delete failed: {e}"));
                    cur.updated_at = Timestamp::now();
                    sb::save(tx, &cur)?;
                    self.backup_message(tx, origin, b.id, action::BACKUP_DELETE, detail::BACKUP_DELETE_DRIVER_ERROR)?;
                }
                Ok(())
            }
        });
        match (result, r) {
            (_, Err(e)) => log::error!("backup {}: recording the delete failed: {e}", b.id),
            (Ok(()), Ok(())) => {
                log::info!("backup {} deleted", b.id);
                event(Ev::Backup, "delete", "end", b.id, &b.project_id).status("deleted").emit();
                self.schedule_backup_gc();
            }
            (Err(e), Ok(())) => {
                log::error!("backup {}: delete failed: {e}", b.id);
                event(Ev::Backup, "delete", "error", b.id, &b.project_id)
                    .status(BackupStatus::ErrorDeleting)
                    .reason(e)
                    .emit();
            }
        }
    }

    /// Collect the repository's unreferenced chunks soon, off the request path: one
    /// collection runs at a time, and asks made while it runs are served by one more.
    pub fn schedule_backup_gc(self: &Arc<Core>) {
        {
            let mut gc = lock(&self.backups.gc);
            if gc.running {
                gc.again = true;
                return;
            }
            gc.running = true;
            gc.again = false;
        }
        let core = self.clone();
        core.background.fetch_add(1, Ordering::SeqCst);
        self.spawn(async move {
            loop {
                let c = core.clone();
                let ok = super::unblock(move || match c.backup_repo().and_then(|r| r.gc()) {
                    Ok(report) => {
                        log::info!("backup repository gc: {report:?}");
                        true
                    }
                    Err(e) => {
                        log::warn!("backup repository gc failed (retried when the next backup or restore ends): {e}");
                        false
                    }
                })
                .await;
                let mut gc = lock(&core.backups.gc);
                gc.failed = !ok;
                if !gc.again {
                    gc.running = false;
                    break;
                }
                gc.again = false;
            }
            core.background.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Collect unreferenced chunks again if the last collection failed (a backup or
    /// restore held the repository then); called as each one ends.
    fn retry_backup_gc(self: &Arc<Core>) {
        let failed = lock(&self.backups.gc).failed;
        if failed {
            self.schedule_backup_gc();
        }
    }

    /// `os-reset_status` on a backup (admin): `available` or `error`.
    pub fn reset_backup_status(&self, caller: &Caller, id: &str, status: BackupStatus) -> Result<()> {
        if !matches!(status, BackupStatus::Available | BackupStatus::Error) {
            return Err(Error::Invalid(format!(
                "Backup status: {status} is invalid, valid statuses are: ['available', 'error']."
            )));
        }
        self.store.write(|tx| {
            let mut b = self.backup_in(tx, caller, id, rules::BACKUP_RESET_STATUS)?;
            log::info!("backup {}: status reset from {} to {status}", b.id, b.status);
            b.status = status;
            b.updated_at = Timestamp::now();
            sb::save(tx, &b)
        })
    }

    /// Restore a backup (step 3): into the volume named, or into a new one.
    pub fn restore_backup(
        self: &Arc<Core>,
        caller: &Caller,
        id: &str,
        volume_id: Option<&str>,
        name: Option<String>,
    ) -> Result<Restored> {
        let b = self.store.read(|tx| self.backup_in(tx, caller, id, rules::BACKUP_RESTORE))?;
        self.check_fleet_repository()?;
        if b.status != BackupStatus::Available {
            return Err(invalid_backup(format!(
                "Backup status must be available, but backup {} is {}.",
                b.id, b.status
            )));
        }
        let Some(vid) = volume_id else {
            let name = name.unwrap_or_else(|| format!("restore_backup_{}", b.id));
            log::info!("creating a volume of {} GB for the restore of backup {}", b.size, b.id);
            let req = NewVolume {
                size: Some(b.size),
                name: Some(name),
                description: Some("auto-created_from_restore_from_backup".into()),
                backup_id: Some(b.id.to_string()),
                ..Default::default()
            };
            let v = create_volume::create_for_restore(self, caller, req)?;
            return Ok(Restored { backup_id: b.id, volume_id: v.id, volume_name: v.name });
        };
        let (b, v) = self.store.write(|tx| {
            let mut b = self.backup_in(tx, caller, id, rules::BACKUP_RESTORE)?;
            if b.status != BackupStatus::Available {
                return Err(invalid_backup(format!(
                    "Backup status must be available, but backup {} is {}.",
                    b.id, b.status
                )));
            }
            let mut v = self.volume_in(tx, caller, vid, rules::VOLUME_GET)?;
            if v.status != VolumeStatus::Available {
                return Err(invalid_volume(format!(
                    "Volume to be restored to must be available, but volume {} is {}.",
                    v.id, v.status
                )));
            }
            if b.size > v.size {
                return Err(invalid_volume(format!(
                    "volume size {} is too small to restore backup of size {}.",
                    v.size, b.size
                )));
            }
            if v.host.is_none() {
                return Err(invalid_volume(format!("Volume {} is on no pool.", v.id)));
            }
            self.check_acts_here(v.host.as_deref(), &format!("volume {}", v.id))?;
            let now = Timestamp::now();
            b.status = BackupStatus::Restoring;
            b.restore_volume_id = Some(v.id);
            b.updated_at = now;
            sb::save(tx, &b)?;
            v.status = VolumeStatus::RestoringBackup;
            v.task = Some(Task::BackupRestore(b.id));
            v.updated_at = now;
            sv::save(tx, &v)?;
            Ok((b, v))
        })?;
        log::info!("overwriting volume {} with a restore of backup {}", v.id, b.id);
        let origin = caller.origin(&b.project_id);
        let (bid, vid) = (b.id, v.id);
        self.spawn_backup_work("restore backup", move |core| core.run_restore(bid, vid, false, &origin));
        Ok(Restored { backup_id: b.id, volume_id: v.id, volume_name: v.name })
    }

    /// A new volume for a restore was made (`made`) or failed: restore into it, or
    /// give the backup back.
    pub fn restore_into_new_volume(self: &Arc<Core>, r: RestoreInto, volume: Id, made: bool, origin: Origin) {
        let handed_over = made
            && self
                .store
                .read(|tx| Ok(sv::get(tx, volume)?.is_some_and(|v| v.task == Some(Task::BackupRestore(r.backup)))))
                .unwrap_or(false);
        if handed_over {
            self.spawn_backup_work("restore backup", move |core| core.run_restore(r.backup, volume, true, &origin));
            return;
        }
        let res = self.store.write(|tx| {
            if let Some(mut b) = sb::get(tx, r.backup)? {
                if b.status == BackupStatus::Restoring && b.restore_volume_id == Some(volume) {
                    b.status = BackupStatus::Available;
                    b.updated_at = Timestamp::now();
                    sb::save(tx, &b)?;
                }
            }
            Ok(())
        });
        if let Err(e) = res {
            log::error!("backup {}: giving it back after volume {volume} failed: {e}", r.backup);
        }
    }

    /// The background half of a restore: the repository writes the backup's data into
    /// the volume (checking each chunk), then one transaction concludes.
    fn run_restore(self: &Arc<Core>, backup: Id, volume: Id, is_new: bool, origin: &Origin) {
        let run = self.backups.register(backup);
        let result = (|| -> Result<Backup> {
            let (b, v) = self.store.read(|tx| {
                let b = sb::get(tx, backup)?.ok_or_else(|| not_found(&backup.to_string()))?;
                let v = sv::get(tx, volume)?
                    .ok_or_else(|| Error::NotFound(format!("Volume {volume} could not be found.")))?;
                Ok((b, v))
            })?;
            let host = v.host.clone().ok_or_else(|| invalid_volume(format!("Volume {} is on no pool.", v.id)))?;
            let pool = self.pool(&host)?.clone();
            let repo = self.backup_repo()?;
            let path = pool.backend.device_path(&pool.pool, v.id);
            let dest = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::Backend(format!("restore of backup {backup}: opening {}: {e}", path.display())))?;
            let zeroed = is_new && pool.backend.new_volumes_read_zero(&pool.pool);
            let store = &self.store;
            let progress = |p: Progress| {
                if let Some(tenth) = run.report(&p) {
                    log::info!(
                        "restore of backup {backup} into volume {volume}: {}% ({} of {} bytes)",
                        tenth * 10,
                        p.bytes_done,
                        p.bytes_total
                    );
                    if let Err(e) = store.write(|tx| sb::set_progress(tx, backup, p.bytes_done, p.bytes_total)) {
                        log::warn!("backup {backup}: recording progress failed: {e}");
                    }
                }
            };
            let started = std::time::Instant::now();
            let r = repo.restore(&b.service_metadata, &dest, zeroed, &progress, &run.cancel);
            let restored = if r.is_ok() { b.size << 30 } else { 0 };
            crate::metrics::metrics().backup("restore", r.is_ok(), started.elapsed(), &[("restored", restored)]);
            r?;
            dest.sync_all()
                .map_err(|e| Error::Backend(format!("restore of backup {backup}: syncing {}: {e}", path.display())))?;
            Ok(b)
        })();
        self.backups.unregister(backup);
        let r = self.store.write(|tx| {
            let now = Timestamp::now();
            if let Some(mut v) = sv::get(tx, volume)? {
                let was_creating = v.status == VolumeStatus::Creating;
                v.task = None;
                v.updated_at = now;
                match &result {
                    Ok(b) => {
                        v.status = VolumeStatus::Available;
                        let src = &b.source_volume;
                        let unnamed =
                            v.name.as_deref().is_none_or(|n| n.is_empty() || n.starts_with("restore_backup_"));
                        if let (true, Some(n)) = (unnamed, src["name"].as_str().filter(|n| !n.is_empty())) {
                            v.name = Some(n.to_string());
                            v.description = src["description"].as_str().map(str::to_string);
                        }
                        if let Some(boot) = src["bootable"].as_bool() {
                            v.bootable = boot;
                        }
                        let mut meta: BTreeMap<String, String> = src["metadata"]
                            .as_object()
                            .map(|m| m.iter().filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string()))).collect())
                            .unwrap_or_default();
                        if b.volume_id != v.id
                            || v.metadata.get("src_backup_id").is_some_and(|s| *s != b.id.to_string())
                        {
                            meta.insert("src_backup_id".into(), b.id.to_string());
                        }
                        sv::replace_metadata(tx, v.id, &meta, false)?;
                        v.metadata = meta;
                    }
                    Err(e) => {
                        v.status = if was_creating { VolumeStatus::Error } else { VolumeStatus::ErrorRestoring };
                        v.error_reason = Some(format!("restore of backup {backup} failed: {e}"));
                        self.backup_message(tx, origin, backup, action::BACKUP_RESTORE, detail::BACKUP_RESTORE_ERROR)?;
                    }
                }
                sv::save(tx, &v)?;
            }
            if let Some(mut b) = sb::get(tx, backup)? {
                if b.status == BackupStatus::Restoring {
                    b.status = BackupStatus::Available;
                }
                b.updated_at = now;
                sb::save(tx, &b)?;
            }
            Ok(())
        });
        match (&result, r) {
            (_, Err(e)) => log::error!("restore of backup {backup} into volume {volume}: recording failed: {e}"),
            (Ok(_), Ok(())) => {
                log::info!("backup {backup} restored into volume {volume}");
                event(Ev::Backup, "restore", "end", backup, &origin.project_id)
                    .status(BackupStatus::Available)
                    .payload(serde_json::json!({"volume_id": volume.to_string()}))
                    .emit();
            }
            (Err(e), Ok(())) => {
                log::error!("restore of backup {backup} into volume {volume} failed: {e}");
                event(Ev::Backup, "restore", "error", backup, &origin.project_id)
                    .reason(e)
                    .payload(serde_json::json!({"volume_id": volume.to_string()}))
                    .emit();
            }
        }
        if let Some(host) = self.store.read(|tx| sv::get(tx, volume)).ok().flatten().and_then(|v| v.host) {
            self.measure_soon(&host);
        }
        self.retry_backup_gc();
    }

    /// `export_record` (step 4): the record for another hearth.
    pub fn export_backup(&self, caller: &Caller, id: &str) -> Result<Exported> {
        let b = self.store.read(|tx| self.backup_in(tx, caller, id, rules::BACKUP_EXPORT))?;
        if b.status != BackupStatus::Available {
            return Err(invalid_backup(format!("Backup status must be available and not {}.", b.status)));
        }
        if b.service != self.backups.driver.cinder_name() {
            return Err(invalid_backup(format!(
                "Export record aborted, the backup service currently configured [{}] is not the backup service \
                 that was used to create this backup [{}].",
                self.backups.driver.cinder_name(),
                b.service
            )));
        }
        let record = export_json(&b, self.host());
        let url = base64::engine::general_purpose::STANDARD.encode(record.to_string());
        log::info!("backup {} exported", b.id);
        Ok(Exported { backup_service: b.service, backup_url: url })
    }

    /// `import_record` (step 4): the record is kept `creating` until its data is found
    /// in this hearth's repository.
    pub fn import_backup(self: &Arc<Core>, caller: &Caller, service: &str, url: &str) -> Result<Backup> {
        caller.authorize_own(rules::BACKUP_IMPORT)?;
        self.check_fleet_repository()?;
        let bad = |why: &str| Error::Invalid(format!("Invalid input received: {why}"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(url.trim())
            .map_err(|_| bad("the backup_url is not base64."))?;
        let record: Value = serde_json::from_slice(&raw).map_err(|_| bad("the backup_url is not a JSON record."))?;
        if !record.is_object() {
            return Err(bad("the backup_url is not a JSON record."));
        }
        let id = match record.get("id").and_then(Value::as_str) {
            None => return Err(bad("Provided backup record is missing an id")),
            Some(s) => Id::parse(s).ok_or_else(|| bad("the backup record's id is not a UUID."))?,
        };
        let size = record
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("Provided backup record is missing size attribute"))?;
        let b = self.store.write(|tx| {
            if sb::get(tx, id)?.is_some() {
                return Err(invalid_backup("Backup already exists in database."));
            }
            let reservations = self.reserve_quota(tx, &caller.project_id, &backup_needs(size))?;
            let now = Timestamp::now();
            let b = Backup {
                id,
                project_id: caller.project_id.clone(),
                user_id: caller.user_id.clone(),
                volume_id: IMPORT_VOLUME_ID,
                snapshot_id: None,
                name: None,
                description: None,
                status: BackupStatus::Creating,
                size,
                object_count: 0,
                container: None,
                availability_zone: Some(self.config.storage_availability_zone.clone()),
                parent_id: None,
                dependents: 0,
                fail_reason: None,
                data_timestamp: now,
                service: service.to_string(),
                // No data in the repository is this record's until the import finds it.
                service_metadata: String::new(),
                restore_volume_id: None,
                temp_snapshot_id: None,
                temp_snapshot_host: None,
                bytes_done: 0,
                bytes_total: size << 30,
                stats: None,
                source_volume: Value::Null,
                metadata: BTreeMap::new(),
                created_at: now,
                updated_at: now,
            };
            sb::insert(tx, &b)?;
            q::release(tx, &reservations)?;
            Ok(b)
        })?;
        log::info!("backup {} imported; looking for its data", b.id);
        let origin = caller.origin(&b.project_id);
        let service = service.to_string();
        self.spawn_blocking("import backup", move |core| core.finish_import(id, &service, record, &origin));
        Ok(b)
    }

    /// The background half of an import: the driver must be this hearth's, the record
    /// complete, and its manifest in the repository.
    fn finish_import(self: &Arc<Core>, id: Id, service: &str, record: Value, origin: &Origin) {
        let outcome = (|| -> Result<Backup> {
            let ours = self.backups.driver.cinder_name();
            if service != ours {
                return Err(invalid_backup(format!(
                    "Import record failed, cannot find backup service to perform the import. Request service \
                     {service}."
                )));
            }
            let required =
                ["display_name", "display_description", "container", "size", "service_metadata", "object_count", "id"];
            let missing: Vec<&str> = required.iter().copied().filter(|k| record.get(*k).is_none()).collect();
            if !missing.is_empty() {
                return Err(invalid_backup(format!(
                    "Driver successfully decoded imported backup data, but there are missing fields ({}).",
                    missing.join(", ")
                )));
            }
            let data = record["service_metadata"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| id.to_string());
            let found = self.backup_repo()?.manifest(&data)?;
            let Some((summary, manifest_meta)) = found else {
                return Err(invalid_backup(format!(
                    "Import record failed: the backup repository holds no backup {data}."
                )));
            };
            let mut b = self.store.read(|tx| sb::get(tx, id))?.ok_or_else(|| not_found(&id.to_string()))?;
            let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_string);
            let ids = |k: &str| text(k).and_then(|s| Id::parse(&s));
            let time = |k: &str| text(k).and_then(|s| Timestamp::parse(&s));
            b.service_metadata = data;
            b.volume_id = ids("volume_id").unwrap_or(IMPORT_VOLUME_ID);
            b.snapshot_id = ids("snapshot_id");
            b.parent_id = ids("parent_id");
            b.name = text("display_name");
            b.description = text("display_description");
            b.container = text("container");
            b.object_count = summary.chunk_count;
            b.size = record["size"].as_u64().unwrap_or(b.size);
            b.bytes_done = summary.size;
            b.bytes_total = summary.size;
            if let Some(t) = time("data_timestamp") {
                b.data_timestamp = t;
            }
            b.metadata = record
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
                .unwrap_or_default();
            b.source_volume = record
                .pointer("/driver_info/source_volume")
                .or_else(|| manifest_meta.pointer("/driver_info/source_volume"))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(b)
        })();
        let r = self.store.write(|tx| {
            let Some(cur) = sb::get(tx, id)? else { return Ok(()) };
            if cur.status != BackupStatus::Creating {
                return Ok(());
            }
            match &outcome {
                Ok(b) => {
                    let mut b = b.clone();
                    b.status = BackupStatus::Available;
                    b.updated_at = Timestamp::now();
                    sb::save(tx, &b)?;
                    sb::replace_metadata(tx, b.id, &b.metadata)
                }
                Err(e) => {
                    let mut b = cur;
                    b.status = BackupStatus::Error;
                    b.fail_reason = Some(e.to_string());
                    b.updated_at = Timestamp::now();
                    sb::save(tx, &b)?;
                    self.backup_message(tx, origin, id, action::BACKUP_CREATE, detail::BACKUP_CREATE_DRIVER_ERROR)
                }
            }
        });
        match (outcome, r) {
            (_, Err(e)) => log::error!("backup {id}: recording the import failed: {e}"),
            (Ok(b), Ok(())) => log::info!("backup {id} imported: its data is {} in the repository", b.service_metadata),
            (Err(e), Ok(())) => log::error!("backup {id}: import failed: {e}"),
        }
    }

    /// `os-verify` (step 5, admins): re-read and check every chunk of the backup; a
    /// backup with bad chunks goes to `error`. Returns the report.
    pub fn verify_backup(&self, caller: &Caller, id: &str) -> Result<Value> {
        let b = self.store.read(|tx| self.backup_in(tx, caller, id, rules::BACKUP_VERIFY))?;
        if !matches!(b.status, BackupStatus::Available | BackupStatus::Error) {
            return Err(invalid_backup(format!(
                "Backup {} must be available or error to verify; it is {}.",
                b.id, b.status
            )));
        }
        let report = self.backup_repo()?.verify(&b.service_metadata)?;
        let (intact, out) = verify_json(&report);
        log::info!("backup {}: verify: {}", b.id, if intact { "intact" } else { "damaged" });
        if !intact {
            let first =
                report.bad.first().map(|c| format!(" (first: chunk {} at byte {}: {})", c.name, c.offset, c.problem));
            let reason = format!(
                "verify found {} missing or corrupt chunk(s) of {}{}",
                report.bad.len(),
                report.chunks_checked,
                first.unwrap_or_default()
            );
            self.store.write(|tx| {
                let Some(mut cur) = sb::get(tx, b.id)? else { return Ok(()) };
                cur.status = BackupStatus::Error;
                cur.fail_reason = Some(reason.clone());
                cur.updated_at = Timestamp::now();
                sb::save(tx, &cur)
            })?;
        }
        Ok(json!({"backup_id": b.id.to_string(), "intact": intact, "report": out}))
    }

    /// Start-up: settle the backups (and the volumes and snapshots they held) that a
    /// previous process left in flight, then collect unreferenced chunks in the
    /// background. Only this node's: a backup whose volume (a restore's: the volume
    /// it writes) is another node's is that node's to settle ([`Core::elsewhere`]).
    /// Returns how many objects it settled and how many it left to other nodes.
    pub fn reconcile_backups(self: &Arc<Core>) -> Result<(usize, usize)> {
        let (mut settled, mut elsewhere) = (0, 0);
        let origin =
            |p: &str| Origin { project_id: p.to_string(), request_id: crate::volume::messages::new_request_id() };
        for b in self.store.read(sb::unsettled)? {
            let writes = if b.status == BackupStatus::Restoring { b.restore_volume_id } else { None };
            let vid = writes.unwrap_or(b.volume_id);
            let volume = self.store.read(|tx| sv::get(tx, vid))?;
            if let Some(why) = volume.as_ref().and_then(|v| self.elsewhere(v)) {
                log::info!("reconcile: backup {} ({}): its volume {vid} {why}: left to that node", b.id, b.status);
                elsewhere += 1;
                continue;
            }
            settled += 1;
            match b.status {
                BackupStatus::Creating => {
                    // The manifest is written last: when it is there, the backup is
                    // complete. An import that was not finished names no data yet.
                    let complete = match b.service_metadata.as_str() {
                        "" => None,
                        data => match self.backup_repo().and_then(|r| r.manifest(data)) {
                            Ok(Some((sum, _))) => Some(sum.chunk_count),
                            Ok(None) => None,
                            Err(e) => {
                                log::error!("reconcile: backup {}: reading the repository failed: {e}", b.id);
                                None
                            }
                        },
                    };
                    self.store.write(|tx| {
                        let mut cur = sb::get(tx, b.id)?.ok_or_else(|| not_found(&b.id.to_string()))?;
                        cur.updated_at = Timestamp::now();
                        match complete {
                            Some(chunks) => {
                                cur.status = BackupStatus::Available;
                                cur.object_count = chunks;
                                cur.bytes_done = cur.bytes_total;
                                log::info!("reconcile: backup {} was complete in the repository; now available", b.id);
                            }
                            None => {
                                cur.status = BackupStatus::Error;
                                cur.fail_reason = Some(if cur.service_metadata.is_empty() {
                                    "incomplete import reset on manager restart".into()
                                } else {
                                    "incomplete backup reset on manager restart".into()
                                });
                                log::warn!(
                                    "reconcile: backup {} was not finished before hearthd stopped; now error",
                                    b.id
                                );
                            }
                        }
                        sb::save(tx, &cur)
                    })?;
                }
                BackupStatus::Deleting => {
                    log::info!("reconcile: resuming the delete of backup {}", b.id);
                    let o = origin(&b.project_id);
                    self.spawn_blocking("resume backup delete", move |core| core.finish_delete_backup(b, &o));
                }
                BackupStatus::Restoring => {
                    self.store.write(|tx| {
                        if let Some(vid) = b.restore_volume_id {
                            if let Some(mut v) = sv::get(tx, vid)? {
                                let writing = v.task == Some(Task::BackupRestore(b.id))
                                    || matches!(v.status, VolumeStatus::RestoringBackup | VolumeStatus::Creating);
                                if writing {
                                    v.status = if v.status == VolumeStatus::Creating {
                                        VolumeStatus::Error
                                    } else {
                                        VolumeStatus::ErrorRestoring
                                    };
                                    v.task = None;
                                    v.error_reason =
                                        Some(format!("hearthd stopped before the restore of backup {} finished", b.id));
                                    v.updated_at = Timestamp::now();
                                    sv::save(tx, &v)?;
                                    // The user reads why, as after a restore that failed while
                                    // hearthd ran.
                                    self.backup_message(
                                        tx,
                                        &origin(&v.project_id),
                                        b.id,
                                        action::BACKUP_RESTORE,
                                        detail::BACKUP_RESTORE_ERROR,
                                    )?;
                                    log::warn!(
                                        "reconcile: volume {} was being restored from backup {}; now {}",
                                        v.id,
                                        b.id,
                                        v.status
                                    );
                                }
                            }
                        }
                        let mut cur = sb::get(tx, b.id)?.ok_or_else(|| not_found(&b.id.to_string()))?;
                        cur.status = BackupStatus::Available;
                        cur.updated_at = Timestamp::now();
                        sb::save(tx, &cur)
                    })?;
                    log::info!("reconcile: backup {} was being restored; available again", b.id);
                }
                _ => {}
            }
        }
        // Whatever a backup still holds `backing-up` goes back to what it was.
        self.store.write(|tx| {
            let now = Timestamp::now();
            for mut v in sv::with_status(tx, VolumeStatus::BackingUp)? {
                if !self.owns(v.host.as_deref()) {
                    continue;
                }
                v.status = v.resting_status();
                v.updated_at = now;
                sv::save(tx, &v)?;
                log::info!("reconcile: volume {} was backing-up; now {}", v.id, v.status);
                settled += 1;
            }
            for mut s in ss::with_status(tx, SnapshotStatus::BackingUp)? {
                if !self.owns(s.host.as_deref()) {
                    continue;
                }
                s.status = SnapshotStatus::Available;
                s.updated_at = now;
                ss::save(tx, &s)?;
                log::info!("reconcile: snapshot {} was backing-up; now available", s.id);
                settled += 1;
            }
            Ok(())
        })?;
        // Snapshots no running backup reads now: those kept for incrementals by
        // available backups are pruned per volume (at most one stays); the rest go.
        let mut kept = std::collections::BTreeSet::new();
        for b in self.store.read(sb::with_temp_snapshot)? {
            if matches!(b.status, BackupStatus::Available | BackupStatus::Restoring) {
                if b.temp_snapshot_host.as_deref().is_some_and(|h| self.owns(Some(h))) {
                    kept.insert(b.volume_id);
                }
                continue;
            }
            let (Some(t), Some(host)) = (b.temp_snapshot_id, b.temp_snapshot_host.clone()) else { continue };
            if !self.owns(Some(&host)) {
                continue;
            }
            let removed = self.pool(&host).and_then(|p| p.backend.delete_snapshot(&p.pool, t));
            match removed {
                Ok(_) => {
                    self.store.write(|tx| {
                        let Some(mut cur) = sb::get(tx, b.id)? else { return Ok(()) };
                        cur.temp_snapshot_id = None;
                        cur.temp_snapshot_host = None;
                        sb::save(tx, &cur)
                    })?;
                    log::info!("reconcile: removed temporary snapshot {t} of backup {}", b.id);
                    settled += 1;
                }
                Err(e) => log::error!("reconcile: removing temporary snapshot {t} of backup {} failed: {e}", b.id),
            }
        }
        for v in kept {
            self.prune_kept_snapshots(v);
        }
        Ok((settled, elsewhere))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reports_each_tenth_once() {
        let r = Running::default();
        let p = |d| Progress { bytes_done: d, bytes_total: 100 };
        assert_eq!(r.report(&p(5)), None);
        assert_eq!(r.report(&p(10)), Some(1));
        assert_eq!(r.report(&p(15)), None);
        assert_eq!(r.report(&p(35)), Some(3));
        assert_eq!(r.report(&p(100)), Some(10));
        assert_eq!(r.report(&p(100)), None);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(0, 0), 0);
    }

    #[test]
    fn encryption_keys_are_raw_or_hex() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(read_encryption_key(&raw).unwrap(), [7u8; 32]);
        let hex = dir.path().join("hex");
        std::fs::write(&hex, format!("{}\n", "0a".repeat(32))).unwrap();
        assert_eq!(read_encryption_key(&hex).unwrap(), [10u8; 32]);
        let short = dir.path().join("short");
        std::fs::write(&short, "abc").unwrap();
        let e = read_encryption_key(&short).unwrap_err().to_string();
        assert!(e.contains("32 random bytes"), "{e}");
        assert!(read_encryption_key(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn export_records_carry_cinders_fields() {
        let now = Timestamp::now();
        let b = Backup {
            id: Id::new(),
            project_id: "p".into(),
            user_id: "u".into(),
            volume_id: Id::new(),
            snapshot_id: None,
            name: Some("n".into()),
            description: None,
            status: BackupStatus::Available,
            size: 2,
            object_count: 7,
            container: None,
            availability_zone: Some("nova".into()),
            parent_id: None,
            dependents: 0,
            fail_reason: None,
            data_timestamp: now,
            service: BackupDriver::Posix.cinder_name().into(),
            service_metadata: "x".into(),
            restore_volume_id: None,
            temp_snapshot_id: None,
            temp_snapshot_host: None,
            bytes_done: 0,
            bytes_total: 0,
            stats: None,
            source_volume: json!({"name": "src"}),
            metadata: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        let j = export_json(&b, "h");
        for k in ["display_name", "display_description", "container", "size", "service_metadata", "object_count", "id"]
        {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["driver_info"]["source_volume"]["name"], "src");
        assert_eq!(j["service"], "cinder.backup.drivers.posix.PosixBackupDriver");
    }
}
