//! The create-volume flow, in Cinder's order.
//!
//! In the request (answered 202 once step 4 is done):
//!
//! 1. **extract**: validate the request, resolve type and zone (no undo);
//!
//! then steps 2–4 in one durable transaction (so one `fsync`, shared with concurrent
//! requests by the store's group commit), which undoes all three if any fails:
//!
//! 2. **reserve quota**: check limits (inside one transaction the check is the
//!    reservation: no other writer runs between it and the record);
//! 3. **create record**: the volume row, `creating`, task `scheduling`;
//! 4. **commit quota**: the record counts in `quota_usage` (its insert's triggers).
//!
//! In the background, retried on up to `scheduler_max_attempts` pools:
//!
//! 5. **schedule**: pick a pool and charge it, then record `host` and task
//!    `backend_create` *before* the backend is touched (undo: uncharge, forget host);
//!    a copy of a snapshot or volume is pinned to its source's pool, as Cinder does;
//! 6. **create on backend**: empty, or a copy of the source (undo: remove whatever
//!    the backend made);
//! 7. **finish**: the volume enters its pool's figures (its footprint, see
//!    [`crate::volume::capacity`]), then `available`, task cleared.
//!
//! While a copy is being made its source cannot be deleted: delete refuses a volume
//! or snapshot that a `creating` volume names as its source.
//!
//! A volume that fails for good goes to `error` with the reason in its record, and
//! its project gets a user message (no pool: "schedule allocate volume"; the backend
//! failed: "create volume from backend storage"), as does each backend failure that
//! is retried elsewhere.
//!
//! A volume made into a generic volume group (`group_id`, 3.13) is pinned to the
//! group's pool and takes the group's zone; its type must be one of the group's. The
//! copies that make a group from a source ([`crate::volume::groups`]) are recorded by
//! that operation and built here by [`build`].
//!
//! A volume made to receive a backup's data (3.47 `backup_id`, or a restore that names
//! no volume, see [`crate::volume::backups`]) is scheduled like any other and made
//! empty; the backup is marked `restoring` in the transaction that records the volume,
//! and step 7 hands the volume over to the restore (task `backup_restore`, status
//! `creating` for 3.47 or `restoring-backup` for a restore) instead of making it
//! `available`: the restore finishes it.
//!
//! A crash anywhere leaves a record whose task says what was in flight; see
//! [`crate::volume::reconcile`].

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::VolumeSpec;
use crate::error::{Error, Result};
use crate::events::{event, Resource as Ev};
use crate::flow::{self, Step};
use crate::ids::{Gib, Id, Timestamp};
use crate::model::{AttachStatus, SnapshotStatus, Task, Volume, VolumeStatus, VolumeType};
use crate::policy::rules;
use crate::scheduler::Request;
use crate::store::volumes as sv;
use crate::volume::messages::{action, detail, detail_for, Action, Detail, Origin, Resource};
use crate::volume::placement::Placement;
use crate::volume::quotas::volume_needs;
use crate::volume::{Caller, Core};

/// A parsed create request.
#[derive(Clone, Debug, Default)]
pub struct NewVolume {
    /// Size in GiB.
    pub size: Option<u64>,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Type name or id; `None`: the default type.
    pub volume_type: Option<String>,
    /// Zone; `None`: the default zone.
    pub availability_zone: Option<String>,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// Make it from this snapshot.
    pub snapshot_id: Option<String>,
    /// Clone this volume.
    pub source_volid: Option<String>,
    /// Make it in this generic volume group.
    pub group_id: Option<String>,
    /// Fill it with this backup's data (3.47).
    pub backup_id: Option<String>,
}

/// A new volume that a backup's data will be restored into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreInto {
    /// The backup.
    pub backup: Id,
    /// Whether the volume shows `restoring-backup` while the data is written (a
    /// restore), or stays `creating` (a volume made from a backup, 3.47).
    pub shows_restoring: bool,
}

/// What a new volume is copied from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A snapshot (on `host`).
    Snapshot {
        /// The snapshot.
        id: Id,
        /// Its pool.
        host: String,
    },
    /// Another volume (on `host`).
    Volume {
        /// The volume.
        id: Id,
        /// Its pool.
        host: String,
    },
}

impl Source {
    /// The pool the source is on (and so the copy is made on).
    pub fn host(&self) -> &str {
        match self {
            Source::Snapshot { host, .. } | Source::Volume { host, .. } => host,
        }
    }
}

/// The request-side context.
struct ApiCtx<'a> {
    core: &'a Core,
    caller: &'a Caller,
    req: NewVolume,
    vtype: Option<VolumeType>,
    size: u64,
    zone: String,
    source: Option<Source>,
    group: Option<(Id, String)>,
    encryption_key_id: Option<Id>,
    volume: Option<Volume>,
    restore: Option<RestoreInto>,
}

/// Check that a backup is fit to restore into a new volume (visible to the caller,
/// `available`), in a transaction.
fn check_backup(
    core: &Core,
    tx: &crate::store::db::Connection,
    caller: &Caller,
    id: &str,
) -> Result<crate::model::Backup> {
    let b = core.backup_in(tx, caller, id, rules::BACKUP_GET)?;
    if b.status != crate::model::BackupStatus::Available {
        return Err(Error::InvalidState(format!(
            "Invalid backup: Backup {} status must be available, but it is {}.",
            b.id, b.status
        )));
    }
    Ok(b)
}

/// Check that a source is (still) fit to copy from, in a transaction.
fn check_source(
    core: &Core,
    tx: &crate::store::db::Connection,
    caller: &Caller,
    req: &NewVolume,
) -> Result<Option<(Source, u64, Id, String)>> {
    match (&req.snapshot_id, &req.source_volid) {
        (Some(_), Some(_)) => {
            Err(Error::Invalid("Invalid input received: give snapshot_id or source_volid, not both.".into()))
        }
        (Some(sid), None) => {
            let s = core.snapshot_in(tx, caller, sid, rules::SNAPSHOT_GET)?;
            if s.status != SnapshotStatus::Available {
                return Err(Error::InvalidState(format!(
                    "Invalid snapshot: Originating snapshot status must be one of 'available' values, but it is {}.",
                    s.status
                )));
            }
            let v = crate::store::volumes::get(tx, s.volume_id)?
                .ok_or_else(|| Error::NotFound(format!("Volume {} could not be found.", s.volume_id)))?;
            let host = s
                .host
                .clone()
                .ok_or_else(|| Error::InvalidState(format!("Invalid snapshot: Snapshot {} is on no pool.", s.id)))?;
            Ok(Some((Source::Snapshot { id: s.id, host }, s.size, s.volume_type_id, v.availability_zone)))
        }
        (None, Some(vid)) => {
            let v = core.volume_in(tx, caller, vid, rules::VOLUME_GET)?;
            if !matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse) {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Unable to create a volume from an originating source volume when its status is                      not 'available' or 'in-use'; it is {}.",
                    v.status
                )));
            }
            let host = v
                .host
                .clone()
                .ok_or_else(|| Error::InvalidState(format!("Invalid volume: Volume {} is on no pool.", v.id)))?;
            Ok(Some((Source::Volume { id: v.id, host }, v.size, v.volume_type_id, v.availability_zone)))
        }
        (None, None) => Ok(None),
    }
}

/// Check that a group is fit to make a volume in (exists for the caller, `available`,
/// placed on a pool), in a transaction. Cinder also takes a `creating` group, which in
/// Cinder is one the scheduler has not placed yet; hearth places a group as it
/// records it, and its `creating` groups are copies being made, whose outcome a new
/// volume must not change.
fn check_group(
    core: &Core,
    tx: &crate::store::db::Connection,
    caller: &Caller,
    id: &str,
) -> Result<crate::model::Group> {
    let g = core.group_in(tx, caller, id, rules::GROUP_GET)?;
    if g.status != crate::model::GroupStatus::Available {
        return Err(Error::InvalidState(format!(
            "Invalid Group: Group {} status must be available to make a volume in it, but current status is: {}.",
            g.id, g.status
        )));
    }
    if g.host.is_none() {
        return Err(Error::InvalidState(format!(
            "Invalid Group: Group {} is on no pool: no pool could take all its volume types.",
            g.id
        )));
    }
    Ok(g)
}

struct Extract;
impl Step<ApiCtx<'_>> for Extract {
    fn name(&self) -> &'static str {
        "extract"
    }
    fn execute(&self, c: &mut ApiCtx<'_>) -> Result<()> {
        extract(c)?;
        check_room(c)
    }
}

/// Step 1: validate the request, resolve type, zone, source, group and backup.
fn extract(c: &mut ApiCtx<'_>) -> Result<()> {
    let core = c.core;
    c.caller.authorize_own(rules::VOLUME_CREATE)?;
    let backup_size = match &c.req.backup_id {
        Some(_) if c.req.snapshot_id.is_some() || c.req.source_volid.is_some() => {
            return Err(Error::Invalid(
                "Invalid input received: give only one of snapshot_id, source_volid and backup_id.".into(),
            ))
        }
        Some(bid) => {
            let b = core.store.read(|tx| check_backup(core, tx, c.caller, bid))?;
            c.restore = Some(RestoreInto { backup: b.id, shows_restoring: c.restore.is_some() });
            Some(b.size)
        }
        None => None,
    };
    // Read before the snapshot below: on a fleet the zones come from the store too.
    let zones = core.zones();
    let (vtype, source, key) = core.store.read(|tx| {
        let source = check_source(core, tx, c.caller, &c.req)?;
        let t = match (&c.req.volume_type, &source) {
            (Some(key), None) => core.type_by_name_or_id(tx, c.caller, key)?,
            (None, None) => core.default_type_in(tx, &c.caller.project_id)?,
            (asked, Some((_, _, type_id, _))) => {
                let t = crate::store::types::get(tx, *type_id)?
                    .ok_or_else(|| Error::Internal(format!("volume type {type_id} is missing")))?;
                if let Some(key) = asked {
                    let want = core.type_by_name_or_id(tx, c.caller, key)?;
                    if want.id != t.id {
                        return Err(Error::Invalid(format!(
                            "Invalid volume_type provided: {key} (it must match the source's type {}, or be omitted).",
                            t.name
                        )));
                    }
                }
                t
            }
        };
        let key = crate::volume::encryption::key_for_new_volume(tx, &t)?;
        Ok((t, source, key))
    })?;
    c.encryption_key_id = key;
    if vtype.multiattach() {
        c.caller.authorize_own(rules::VOLUME_MULTIATTACH)?;
    }
    let min = backup_size.or(source.as_ref().map(|(_, min, _, _)| *min));
    let size = match (c.req.size, min) {
            (Some(n), Some(min)) if n < min && backup_size.is_some() => {
                return Err(Error::Invalid(format!(
                    "Invalid input received: Volume size '{n}'GB cannot be smaller than the backup size {min}GB. It \
                     must be >= backup size."
                )))
            }
            (Some(n), Some(min)) if n < min => {
                return Err(Error::Invalid(format!(
                    "Invalid input received: Volume size '{n}'GB cannot be smaller than the source's size {min}GB. They must be >= the original size."
                )))
            }
            (Some(n), _) => n,
            (None, Some(min)) => min,
            (None, None) => {
                return Err(Error::Invalid(
                    "Invalid input received: size is required when no snapshot or source volume is given.".into(),
                ))
            }
        };
    c.size = Gib::new(size)?.get();
    core.store.read(|tx| core.check_per_volume_size(tx, &c.caller.project_id, c.size))?;
    if let Some(gid) = &c.req.group_id {
        let g = core.store.read(|tx| check_group(core, tx, c.caller, gid))?;
        if c.req.volume_type.is_none() && source.is_none() {
            return Err(Error::Invalid(
                "Invalid input received: volume_type must be provided when creating a volume in a group.".into(),
            ));
        }
        if !g.volume_type_ids.contains(&vtype.id) {
            return Err(Error::Invalid(format!(
                "Invalid input received: Invalid volume_type provided: {} (requested type must be supported by \
                     this group).",
                vtype.name
            )));
        }
        let host = g.host.clone().unwrap_or_default();
        if let Some((src, _, _, _)) = &source {
            if src.host() != host {
                return Err(Error::Invalid(format!(
                    "Invalid input received: the source is on pool {} but group {} is on pool {host}; a copy is \
                         made on its source's pool.",
                    src.host(),
                    g.id
                )));
            }
        }
        if c.req.availability_zone.as_ref().is_some_and(|z| *z != g.availability_zone) {
            return Err(Error::Invalid(format!(
                "Invalid input received: the volume must be in its group's availability zone {}.",
                g.availability_zone
            )));
        }
        c.zone = g.availability_zone.clone();
        c.group = Some((g.id, host));
        c.source = source.map(|(src, ..)| src);
        c.vtype = Some(vtype);
        return Ok(());
    }
    if let Some((src, _, _, zone)) = &source {
        if c.req.availability_zone.as_ref().is_some_and(|z| z != zone) {
            return Err(Error::Invalid(format!(
                "Invalid input received: the volume must be in the source's availability zone {zone}."
            )));
        }
        c.zone = zone.clone();
        c.source = Some(src.clone());
        c.vtype = Some(vtype);
        return Ok(());
    }
    c.zone = match &c.req.availability_zone {
        Some(z) if zones.contains(z) => z.clone(),
        Some(z) => return Err(Error::Invalid(format!("Invalid input received: Availability zone '{z}' is invalid."))),
        None => match vtype.extra_specs.get("RESKEY:availability_zones") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .find(|z| zones.contains(*z))
                .unwrap_or(&core.config.storage_availability_zone)
                .to_string(),
            None => core.config.storage_availability_zone.clone(),
        },
    };
    c.vtype = Some(vtype);
    Ok(())
}

/// Refuse at once what scheduling would refuse for certain (issue: a copy that
/// cannot fit in its source's pool went to `error`): a copy of a snapshot or volume,
/// or a volume in a group, has one pool to go to; a volume for a backup's data needs
/// one pool that fits it. Nothing is charged: scheduling charges, and may still find
/// the room gone to a concurrent request (then the volume goes to `error` as before).
fn check_room(c: &ApiCtx<'_>) -> Result<()> {
    let vtype = c.vtype.as_ref().expect("extract ran");
    let req = Request { size_gb: c.size, volume_type: vtype, availability_zone: &c.zone, exclude: &[] };
    let pin = c.source.as_ref().map(|s| s.host().to_string()).or(c.group.as_ref().map(|(_, h)| h.clone()));
    if let Some(pool) = pin {
        let what = match &c.source {
            Some(Source::Snapshot { id, .. }) => format!("a copy of snapshot {id}"),
            Some(Source::Volume { id, .. }) => format!("a copy of volume {id}"),
            None => "a volume of its group".to_string(),
        };
        let source = match &c.source {
            Some(Source::Snapshot { id, .. }) => format!("snapshot {id}, the source,"),
            Some(Source::Volume { id, .. }) => format!("volume {id}, the source,"),
            None => "the volume's group".to_string(),
        };
        c.core.check_acts_here(Some(&pool), &source)?;
        if let Some(why) = c.core.scheduler.refuses(&pool, &req) {
            return Err(Error::Invalid(format!(
                "Insufficient free space in pool {pool} for {what} of {} GiB (it can only be made there): {why}.",
                c.size
            )));
        }
    } else if let Some(bid) = &c.req.backup_id {
        c.core.fits_anywhere(&req).map_err(|e| {
            Error::Invalid(format!("No pool can take a volume of {} GiB to restore backup {bid} into: {e}.", c.size))
        })?;
    }
    Ok(())
}

struct CreateRecord;
impl Step<ApiCtx<'_>> for CreateRecord {
    fn name(&self) -> &'static str {
        "create record"
    }
    fn execute(&self, c: &mut ApiCtx<'_>) -> Result<()> {
        let t = c.vtype.as_ref().expect("extract ran");
        let now = Timestamp::now();
        let v = Volume {
            id: Id::new(),
            project_id: c.caller.project_id.clone(),
            user_id: c.caller.user_id.clone(),
            name: c.req.name.clone(),
            description: c.req.description.clone(),
            size: c.size,
            status: VolumeStatus::Creating,
            attach_status: AttachStatus::Detached,
            migration_status: None,
            availability_zone: c.zone.clone(),
            bootable: false,
            multiattach: t.multiattach(),
            volume_type_id: t.id,
            volume_type_name: t.name.clone(),
            snapshot_id: match &c.source {
                Some(Source::Snapshot { id, .. }) => Some(*id),
                _ => None,
            },
            source_volid: match &c.source {
                Some(Source::Volume { id, .. }) => Some(*id),
                _ => None,
            },
            group_id: c.group.as_ref().map(|(g, _)| *g),
            encryption_key_id: c.encryption_key_id,
            host: None,
            task: Some(Task::Scheduling(c.core.host().to_string())),
            error_reason: None,
            consumes_quota: true,
            created_at: now,
            updated_at: now,
            metadata: std::mem::take(&mut c.req.metadata),
            admin_metadata: BTreeMap::new(),
            provider_auth: None,
            attachments: Vec::new(),
        };
        let (core, caller, req) = (c.core, c.caller, &c.req);
        let needs = volume_needs(c.size, &t.name, 1);
        c.core.store.write(|tx| {
            // Cinder's reserve, record and commit, as one durable transaction: if any
            // of them fails, none of them happened. Inside one transaction the
            // reservation is the check itself: the record's insert counts in
            // `quota_usage` at once, and no other writer sees between the two.
            core.check_quota(tx, &caller.project_id, &needs)?;
            // The source and the group may have changed since extract; the checks and
            // the record are one transaction, so a delete of either sees this volume or
            // happened before it.
            check_source(core, tx, caller, req)?;
            if let Some(gid) = &req.group_id {
                check_group(core, tx, caller, gid)?;
            }
            sv::insert(tx, &v)?;
            if let Some(bid) = &req.backup_id {
                // From now on the backup cannot be deleted: it is being restored.
                let mut b = check_backup(core, tx, caller, bid)?;
                b.status = crate::model::BackupStatus::Restoring;
                b.restore_volume_id = Some(v.id);
                b.updated_at = now;
                crate::store::backups::save(tx, &b)?;
            }
            Ok(())
        })?;
        c.volume = Some(v);
        Ok(())
    }
}

/// Steps 1–4, then steps 5–7 in the background. Returns the `creating` record.
pub fn create(core: &Arc<Core>, caller: &Caller, req: NewVolume) -> Result<Volume> {
    create_with(core, caller, req, false)
}

/// [`create`] for a restore of `req.backup_id` that names no volume: the volume shows
/// `restoring-backup` while the data is written.
pub fn create_for_restore(core: &Arc<Core>, caller: &Caller, req: NewVolume) -> Result<Volume> {
    create_with(core, caller, req, true)
}

fn create_with(core: &Arc<Core>, caller: &Caller, req: NewVolume, shows_restoring: bool) -> Result<Volume> {
    // Extract turns this marker into the backup to restore, when one is named.
    let marker = shows_restoring.then_some(RestoreInto { backup: Id::nil(), shows_restoring });
    let mut ctx = ApiCtx {
        core,
        caller,
        req,
        vtype: None,
        size: 0,
        zone: String::new(),
        source: None,
        group: None,
        encryption_key_id: None,
        volume: None,
        restore: marker,
    };
    flow::run("volume_create_api", &[&Extract, &CreateRecord], &mut ctx).map_err(|e| e.error)?;
    let volume = ctx.volume.expect("create record ran");
    let vtype = ctx.vtype.expect("extract ran");
    let source = ctx.source;
    let pin = ctx.group.map(|(_, host)| host);
    let restore = ctx.restore.filter(|r| r.backup != Id::nil());
    let v = volume.clone();
    let origin = caller.origin(&volume.project_id);
    event(Ev::Volume, "create", "start", volume.id, &volume.project_id)
        .status(volume.status)
        .payload(serde_json::json!({"size": volume.size, "volume_type": volume.volume_type_name}))
        .emit();
    let waits = placed_across_fleet(core, source.is_some() || pin.is_some(), false);
    let job = move |core: &Arc<Core>| {
        let vid = v.id;
        let built = build_with(core, v, vtype, source, pin, origin.clone(), restore, None);
        // A volume another node took is that node's to build and restore into.
        if let (Some(r), Some(made)) = (restore, built) {
            let _slot = waits.then(|| core.backend_slot());
            core.restore_into_new_volume(r, vid, made, origin);
        }
    };
    if waits {
        core.spawn_waiting("create volume", job);
    } else {
        core.spawn_blocking("create volume", job);
    }
    Ok(volume)
}

/// Whether a create's build places the volume across the fleet first (a shared store,
/// no pool pinned or chosen). It may then wait on other nodes, so it runs in a waiting
/// slot and takes a backend slot only for its backend work ([`Core::spawn_waiting`]).
fn placed_across_fleet(core: &Core, pinned: bool, chosen: bool) -> bool {
    !pinned && !chosen && core.hands_over()
}

/// Steps 6–7 (and retries from step 5) of a volume another node scheduled and this
/// one placed on its `pool` (charged, recorded: see [`crate::volume::placement`]), in
/// the background; then the restore it was made for, if any.
pub fn build_placed(
    core: &Arc<Core>,
    volume: Volume,
    vtype: VolumeType,
    pool: String,
    origin: Origin,
    restore: Option<RestoreInto>,
) {
    core.spawn_blocking("create volume", move |core| {
        let vid = volume.id;
        let built = build_with(core, volume, vtype, None, None, origin.clone(), restore, Some(pool));
        if let (Some(r), Some(made)) = (restore, built) {
            core.restore_into_new_volume(r, vid, made, origin);
        }
    });
}

/// The background context.
struct MgrCtx<'a> {
    core: &'a Arc<Core>,
    origin: Origin,
    volume: Volume,
    vtype: VolumeType,
    source: Option<Source>,
    pin: Option<String>,
    pool: Option<String>,
    exclude: Vec<String>,
    restore: Option<RestoreInto>,
    /// A pool chosen and charged before the schedule step (by the fleet's placement).
    chosen: Option<String>,
}

impl MgrCtx<'_> {
    fn save(&self) -> Result<()> {
        self.core.store.write(|tx| sv::save(tx, &self.volume))
    }
}

struct Schedule;
impl Step<MgrCtx<'_>> for Schedule {
    fn name(&self) -> &'static str {
        "schedule"
    }
    fn execute(&self, c: &mut MgrCtx<'_>) -> Result<()> {
        let req = Request {
            size_gb: c.volume.size,
            volume_type: &c.vtype,
            availability_zone: &c.volume.availability_zone,
            exclude: &c.exclude,
        };
        let pool = match &c.pin {
            // A copy is made where its source is, a group's volume on its group's pool.
            Some(pin) => {
                c.core.scheduler.reserve_on(pin, &req)?;
                pin.clone()
            }
            None => match c.chosen.take() {
                Some(pool) => pool,
                None => c.core.scheduler.select(&req)?,
            },
        };
        c.pool = Some(pool.clone());
        c.volume.host = Some(pool);
        c.volume.task = Some(Task::BackendCreate);
        c.volume.updated_at = Timestamp::now();
        c.save()
    }
    fn revert(&self, c: &mut MgrCtx<'_>) -> Result<()> {
        if let Some(pool) = &c.pool {
            c.core.release_charge(pool, c.volume.size);
            c.exclude.push(pool.clone());
        }
        c.volume.host = None;
        c.volume.task = Some(Task::Scheduling(c.core.host().to_string()));
        c.save()
    }
}

struct CreateOnBackend;
impl Step<MgrCtx<'_>> for CreateOnBackend {
    fn name(&self) -> &'static str {
        "create on backend"
    }
    fn execute(&self, c: &mut MgrCtx<'_>) -> Result<()> {
        let pool = c.core.pool(c.pool.as_deref().expect("scheduled"))?;
        let spec = VolumeSpec { id: c.volume.id, size: Gib::new(c.volume.size)?, thick: c.vtype.thick() };
        match &c.source {
            None => pool.backend.create_volume(&pool.pool, &spec)?,
            Some(Source::Snapshot { id, .. }) => pool.backend.create_volume_from_snapshot(&pool.pool, *id, &spec)?,
            Some(Source::Volume { id, .. }) => pool.backend.clone_volume(&pool.pool, *id, &spec)?,
        };
        Ok(())
    }
    fn revert(&self, c: &mut MgrCtx<'_>) -> Result<()> {
        let pool = c.core.pool(c.pool.as_deref().expect("scheduled"))?;
        pool.backend.delete_volume(&pool.pool, c.volume.id)?;
        Ok(())
    }
}

struct Finish;
impl Step<MgrCtx<'_>> for Finish {
    fn name(&self) -> &'static str {
        "finish"
    }
    fn execute(&self, c: &mut MgrCtx<'_>) -> Result<()> {
        let pool = c.pool.clone().expect("scheduled");
        // The pool's figures take the volume (and drop its charge) before it shows as
        // made, so that no one sees it made and not counted.
        let counted = c.core.settle_volume(&pool, c.volume.size, c.volume.id, Ok(None));
        // Only a volume still `creating` finishes (an admin may have reset it
        // meanwhile); one made for a restore is handed to it (see
        // `crate::volume::backups`), which finishes it.
        let (made, task) = match c.restore {
            Some(r) if r.shows_restoring => (VolumeStatus::RestoringBackup, Some(Task::BackupRestore(r.backup))),
            Some(r) => (VolumeStatus::Creating, Some(Task::BackupRestore(r.backup))),
            None => (VolumeStatus::Available, None),
        };
        let now = Timestamp::now();
        let recorded = c.core.store.write(|tx| sv::finish_build(tx, c.volume.id, made, task.as_ref(), now));
        let recorded = recorded.map(|(status, task)| {
            c.volume.status = status;
            c.volume.task = task;
            c.volume.updated_at = now;
        });
        if recorded.is_err() {
            // The flow undoes the create: charged again, as before this step.
            c.core.unsettle_volume(&pool, c.volume.size, counted);
        }
        recorded
    }
}

/// Steps 5–7 of a recorded `creating` volume, with retries; on final failure the
/// volume goes to `error` with the reason recorded. `pin` places it on that pool (a
/// group's); a copy is always made on its source's pool. Each backend failure, and a
/// final failure to schedule, is a user message for `origin` (as Cinder's volume
/// manager and scheduler record them). Returns whether the volume was made.
pub fn build(
    core: &Arc<Core>,
    volume: Volume,
    vtype: VolumeType,
    source: Option<Source>,
    pin: Option<String>,
    origin: Origin,
) -> bool {
    // A pinned volume is built here: it is never handed to another node (and so runs
    // in the backend slot it was started in).
    debug_assert!(source.is_some() || pin.is_some(), "build is for pinned volumes");
    build_with(core, volume, vtype, source, pin, origin, None, None).unwrap_or(false)
}

/// [`build`], handing the volume over to a restore when `restore` says so, starting
/// on `chosen` (charged) if given. On a shared store each attempt places the volume
/// across the fleet ([`Core::place`]); `None` when another node took it.
#[allow(clippy::too_many_arguments)]
fn build_with(
    core: &Arc<Core>,
    volume: Volume,
    vtype: VolumeType,
    source: Option<Source>,
    pin: Option<String>,
    origin: Origin,
    restore: Option<RestoreInto>,
    chosen: Option<String>,
) -> Option<bool> {
    let pin = source.as_ref().map(|s| s.host().to_string()).or(pin);
    // Started in a waiting slot (placed across the fleet): a backend slot is taken for
    // each attempt's backend work, never while waiting on another node.
    let lazy_slot = placed_across_fleet(core, pin.is_some(), chosen.is_some());
    let mut slot = None;
    // A pinned volume can only be made on that pool: one attempt.
    let attempts = if pin.is_some() { 1 } else { core.config.scheduler_max_attempts };
    let mut ctx = MgrCtx { core, origin, volume, vtype, source, pin, pool: None, exclude: Vec::new(), restore, chosen };
    let mut reasons = Vec::new();
    for attempt in 1..=attempts {
        ctx.pool = None;
        if lazy_slot {
            slot = None;
        }
        if ctx.pin.is_none() && ctx.chosen.is_none() && core.hands_over() {
            let req = Request {
                size_gb: ctx.volume.size,
                volume_type: &ctx.vtype,
                availability_zone: &ctx.volume.availability_zone,
                exclude: &ctx.exclude,
            };
            match core.place(&req, &ctx.volume, ctx.restore, &ctx.origin) {
                Ok(Placement::Here(pool)) => ctx.chosen = Some(pool),
                Ok(Placement::There { .. }) => return None,
                Err(e) => {
                    log::warn!("volume {}: attempt {attempt}/{attempts}: {e}", ctx.volume.id);
                    reasons.push(format!("attempt {attempt}: {e}"));
                    let message = (action::SCHEDULE_ALLOCATE_VOLUME, detail_for(&e, detail::UNKNOWN_ERROR));
                    fail(&mut ctx, reasons.join("; "), false, message);
                    return Some(false);
                }
            }
        }
        if lazy_slot && slot.is_none() {
            slot = Some(core.backend_slot());
        }
        match flow::run("volume_create_manager", &[&Schedule, &CreateOnBackend, &Finish], &mut ctx) {
            Ok(()) => {
                let host = ctx.volume.host.as_deref().unwrap_or("?");
                match ctx.restore {
                    Some(r) => log::info!(
                        "volume {} is made on {host}; backup {} is restored into it",
                        ctx.volume.id,
                        r.backup
                    ),
                    None => log::info!("volume {} is available on {host}", ctx.volume.id),
                }
                let v = &ctx.volume;
                event(Ev::Volume, "create", "end", v.id, &v.project_id)
                    .status(v.status)
                    .payload(serde_json::json!({"size": v.size, "host": v.host, "volume_type": v.volume_type_name}))
                    .emit();
                return Some(true);
            }
            Err(e) => {
                log::warn!("volume {}: attempt {attempt}/{attempts}: {e}", ctx.volume.id);
                reasons.push(format!("attempt {attempt}: {e}"));
                let on_backend = e.step == "create on backend";
                let retry = on_backend && e.clean();
                let last = !retry || attempt == attempts;
                let (action, detail) = match e.step {
                    "schedule" => (action::SCHEDULE_ALLOCATE_VOLUME, detail_for(&e.error, detail::UNKNOWN_ERROR)),
                    "create on backend" => {
                        (action::CREATE_VOLUME_FROM_BACKEND, detail_for(&e.error, detail::DRIVER_FAILED_CREATE))
                    }
                    _ => (action::CREATE_VOLUME_FROM_BACKEND, detail::UNKNOWN_ERROR),
                };
                if !last {
                    let r = ctx.core.store.write(|tx| {
                        ctx.core.record_message(tx, &ctx.origin, Resource::Volume, ctx.volume.id, action, detail)
                    });
                    if let Err(m) = r {
                        log::error!("volume {}: recording a message failed: {m}", ctx.volume.id);
                    }
                    continue;
                }
                let degraded = !e.clean();
                fail(&mut ctx, reasons.join("; "), degraded, (action, detail));
                return Some(false);
            }
        }
    }
    Some(false)
}

/// The volume goes to `error` with the reason, and the user gets `message`, in one
/// transaction.
fn fail(c: &mut MgrCtx<'_>, reason: String, degraded: bool, message: (Action, Detail)) {
    log::error!("volume {} failed: {reason}", c.volume.id);
    event(Ev::Volume, "create", "error", c.volume.id, &c.volume.project_id)
        .status(VolumeStatus::Error)
        .reason(&reason)
        .payload(serde_json::json!({"size": c.volume.size}))
        .emit();
    c.volume.status = VolumeStatus::Error;
    c.volume.task = None;
    c.volume.error_reason = Some(reason);
    if !degraded {
        c.volume.host = None;
    }
    c.volume.updated_at = Timestamp::now();
    let (core, v, origin) = (c.core, &c.volume, &c.origin);
    let r = core.store.write(|tx| {
        sv::save(tx, v)?;
        core.record_message(tx, origin, Resource::Volume, v.id, message.0, message.1)
    });
    if let Err(e) = r {
        log::error!("volume {}: recording the failure failed: {e}", c.volume.id);
    }
}
