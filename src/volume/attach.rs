//! Attach and detach, both ways clients do it.
//!
//! **Legacy actions** (Nova before the attachments API, the SDK):
//! `os-reserve` (available → attaching), `os-initialize_connection` (export, let the
//! connector in, return `connection_info`; recorded as an `attaching` attachment),
//! `os-attach` (attachment attached, volume in-use), `os-begin_detaching` /
//! `os-roll_detaching`, `os-terminate_connection` (the connector's access goes),
//! `os-detach` (the attachment goes), `os-unreserve`, `os-force_detach`.
//!
//! **Attachments API** (3.27+): create (reserve, or connect when a connector is
//! given), update with a connector (connect), `os-complete` (attached), delete.
//!
//! The volume's status follows its attachments as Cinder computes it: any attached →
//! in-use; else attaching, detaching or reserved as the attachments are; none →
//! available. The export exists while some attachment holds a connection, and goes
//! with the last one. A volume that is not multiattach is connected to one host at a
//! time (409 otherwise); a second attachment for the *same* instance is allowed, as
//! Nova needs it for live migration.

use std::sync::{Arc, Mutex};

use crate::store::db::Connection;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::events::{event, Resource as Ev};
use crate::export::{Chap, Connector, ExportTarget};
use crate::ids::{random_token, Id, Timestamp};
use crate::model::{AttachMode, AttachStatus, Attachment, Volume, VolumeStatus};
use crate::policy::rules;
use crate::query::AttachmentQuery;
use crate::store::{attachments as sa, volumes as sv};
use crate::volume::{Caller, Core, PoolRef};

/// Statuses from which a connection may be made.
const CONNECTABLE: &[VolumeStatus] = &[
    VolumeStatus::Available,
    VolumeStatus::Reserved,
    VolumeStatus::Attaching,
    VolumeStatus::InUse,
    VolumeStatus::Detaching,
];

fn attachment_not_found(id: &str) -> Error {
    Error::NotFound(format!("VolumeAttachment {id} could not be found."))
}

fn connector_of(a: &Attachment) -> Option<Connector> {
    a.connector.as_ref().and_then(|c| Connector::from_json(c).ok())
}

/// A new attachment of `v` in `status`, nothing connected yet.
fn new_attachment(
    v: &Volume,
    status: AttachStatus,
    mode: AttachMode,
    instance: Option<String>,
    host: Option<String>,
) -> Attachment {
    let now = Timestamp::now();
    Attachment {
        id: Id::new(),
        volume_id: v.id,
        project_id: v.project_id.clone(),
        instance_uuid: instance,
        attached_host: host,
        mountpoint: None,
        attach_status: status,
        attach_mode: mode,
        connector: None,
        connection_info: None,
        attach_time: None,
        detach_time: None,
        created_at: now,
        updated_at: now,
    }
}

/// Remove attachments from a volume in `tx`: their rows go, and the volume's status
/// (and `attached_mode`) follow what remains.
fn forget_attachments(tx: &Connection, v: &mut Volume, ids: &[Id]) -> Result<()> {
    for id in ids {
        sa::delete(tx, *id)?;
    }
    v.attachments.retain(|a| !ids.contains(&a.id));
    let remaining = v.attachments.clone();
    settle_status(v, &remaining);
    v.updated_at = Timestamp::now();
    sv::save(tx, v)?;
    sv::replace_metadata(tx, v.id, &v.admin_metadata, true)
}

/// Set the volume's status from its (remaining) attachments, as Cinder does.
fn settle_status(v: &mut Volume, attachments: &[Attachment]) {
    let has = |s: AttachStatus| attachments.iter().any(|a| a.attach_status == s);
    let (status, attach) = if has(AttachStatus::Attached) {
        (VolumeStatus::InUse, AttachStatus::Attached)
    } else if has(AttachStatus::Attaching) {
        (VolumeStatus::Attaching, AttachStatus::Attaching)
    } else if has(AttachStatus::Detaching) {
        (VolumeStatus::Detaching, AttachStatus::Detaching)
    } else if has(AttachStatus::Reserved) {
        (VolumeStatus::Reserved, AttachStatus::Reserved)
    } else {
        (VolumeStatus::Available, AttachStatus::Detached)
    };
    v.status = status;
    v.attach_status = attach;
    if status == VolumeStatus::Available {
        v.admin_metadata.remove("attached_mode");
    }
}

/// Refuse a second host on a volume that is not multiattach.
fn check_one_host(v: &Volume, this: Option<Id>, instance: Option<&str>, c: &Connector) -> Result<()> {
    if v.multiattach {
        return Ok(());
    }
    for other in v.attachments.iter().filter(|a| Some(a.id) != this && a.connection_info.is_some()) {
        let same_instance = instance.is_some() && other.instance_uuid.as_deref() == instance;
        let same_host = connector_of(other).is_some_and(|oc| oc.same_host(c));
        if !same_instance && !same_host {
            return Err(Error::Conflict(format!(
                "Volume {} is not multiattach and is already connected to host {}.",
                v.id,
                other.attached_host.as_deref().unwrap_or("another host")
            )));
        }
    }
    Ok(())
}

impl Core {
    /// The export target of a volume, making its CHAP credentials when its export
    /// uses them and it has none yet (saved in the caller's transaction).
    fn export_target(&self, tx: &Connection, v: &mut Volume) -> Result<(PoolRef, ExportTarget)> {
        let host = v
            .host
            .clone()
            .ok_or_else(|| Error::InvalidState(format!("Invalid volume: Volume {} is not on any pool.", v.id)))?;
        self.check_acts_here(Some(&host), &format!("volume {}", v.id))?;
        let pool = self.pool(&host)?.clone();
        let mut chap = v.provider_auth.as_deref().and_then(Chap::from_provider_auth);
        if pool.export.uses_chap() && chap.is_none() {
            let made = Chap { username: random_token(20), password: random_token(16) };
            v.provider_auth = Some(made.to_provider_auth());
            sv::save(tx, v)?;
            chap = Some(made);
        }
        let device_path = pool.backend.device_path(&pool.pool, v.id);
        Ok((pool, ExportTarget { volume_id: v.id, device_path, chap }))
    }

    /// Make the export and let `c` in; returns the `connection_info` data, with what
    /// Cinder's volume manager adds to a driver's: `access_mode`, `encrypted` (the
    /// volume has a key id), `qos_specs` (see [`Core::front_end_qos`]) and
    /// `cacheable`. The volume's connection lock must be held.
    fn connect(
        &self,
        pool: &PoolRef,
        t: &ExportTarget,
        c: &Connector,
        mode: AttachMode,
        v: &Volume,
        qos_specs: &Value,
    ) -> Result<Map<String, Value>> {
        pool.export.ensure_export(t)?;
        let mut data = match pool.export.allow(t, c, mode) {
            Ok(data) => data,
            Err(e) => {
                // Leave no export behind that no connection explains.
                if let Err(undo) = self.disconnect_locked(v, None) {
                    log::error!("cannot undo the export of volume {}: {undo}", v.id);
                }
                return Err(e);
            }
        };
        data.insert("volume_id".into(), Value::String(v.id.to_string()));
        data.insert("access_mode".into(), Value::String(mode.as_str().into()));
        data.insert("encrypted".into(), Value::Bool(v.encryption_key_id.is_some()));
        data.insert("qos_specs".into(), qos_specs.clone());
        data.insert("cacheable".into(), Value::Bool(false));
        Ok(data)
    }

    /// The lock held around changing a volume's export together with its records.
    fn connection_lock(&self, id: Id) -> Arc<Mutex<()>> {
        let mut locks = self.connection_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id).or_default().clone()
    }

    /// Refuse to forget `gone`, attachments of `v`, when one of them has a
    /// connection that only the node owning `v`'s pool can take away (see
    /// [`Core::check_acts_here`]); forgetting it here would leave the host's access.
    fn check_unexport_here(&self, v: &Volume, gone: &[Attachment]) -> Result<()> {
        if gone.iter().any(|a| a.connection_info.is_some()) {
            self.check_acts_here(v.host.as_deref(), &format!("volume {}", v.id))?;
        }
        Ok(())
    }

    /// Take `c`'s access away, and the export when no connection is left.
    fn disconnect(&self, v: &Volume, c: Option<&Connector>) -> Result<()> {
        let lock = self.connection_lock(v.id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.disconnect_locked(v, c)
    }

    /// [`Core::disconnect`] with the volume's connection lock held: decides on the
    /// connections the store holds now, not on a copy read before the lock.
    /// Nothing is done for a volume on another node's pool: forgetting a connection
    /// there is refused first ([`Core::check_unexport_here`]), so what is forgotten
    /// had no access to take away.
    fn disconnect_locked(&self, v: &Volume, c: Option<&Connector>) -> Result<()> {
        let Some(host) = &v.host else { return Ok(()) };
        if !self.owns(Some(host)) {
            return Ok(());
        }
        let pool = self.pool(host)?;
        let remaining = self.store.read(|tx| sv::get(tx, v.id))?.map(|v| v.attachments).unwrap_or_default();
        let remaining = remaining.as_slice();
        if let Some(c) = c {
            // Another connection of the same host keeps the host's access.
            let host_still_connected = remaining
                .iter()
                .any(|a| a.connection_info.is_some() && connector_of(a).is_some_and(|o| o.same_host(c)));
            if !host_still_connected {
                pool.export.deny(v.id, c)?;
            }
        }
        if !remaining.iter().any(|a| a.connection_info.is_some()) {
            pool.export.remove_export(v.id)?;
        }
        Ok(())
    }

    fn mode_for(v: &Volume, asked: Option<AttachMode>) -> AttachMode {
        if v.readonly() {
            AttachMode::Ro
        } else {
            asked.unwrap_or(AttachMode::Rw)
        }
    }

    // ---- legacy actions -------------------------------------------------------

    /// `os-reserve`: available (or in-use, when multiattach) → attaching.
    pub fn reserve(&self, caller: &Caller, id: &str) -> Result<()> {
        self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_RESERVE)?;
            let ok = v.status == VolumeStatus::Available || (v.multiattach && v.status == VolumeStatus::InUse);
            if !ok {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available{} to reserve, but current status is: {}.",
                    v.id,
                    if v.multiattach { " or in-use" } else { "" },
                    v.status
                )));
            }
            v.status = VolumeStatus::Attaching;
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)
        })
    }

    /// `os-unreserve`: attaching → in-use when attachments remain, else available.
    /// Connections made for the reservation that never attached are undone.
    pub fn unreserve(&self, caller: &Caller, id: &str) -> Result<()> {
        let (v, dropped) = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_UNRESERVE)?;
            if v.status != VolumeStatus::Attaching {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be attaching to unreserve, but current status is: {}.",
                    v.id, v.status
                )));
            }
            let dropped: Vec<Attachment> = v
                .attachments
                .iter()
                .filter(|a| a.attach_status == AttachStatus::Attaching && a.instance_uuid.is_none())
                .cloned()
                .collect();
            self.check_unexport_here(&v, &dropped)?;
            let ids: Vec<Id> = dropped.iter().map(|a| a.id).collect();
            forget_attachments(tx, &mut v, &ids)?;
            Ok((v, dropped))
        })?;
        for a in &dropped {
            self.disconnect(&v, connector_of(a).as_ref())?;
        }
        Ok(())
    }

    /// `os-initialize_connection`: export the volume to the connector's host and
    /// return `connection_info`.
    pub fn initialize_connection(&self, caller: &Caller, id: &str, connector: Value) -> Result<Value> {
        let c = Connector::from_json(&connector)?;
        let (v, pool, target, qos) = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_INITIALIZE_CONNECTION)?;
            if !CONNECTABLE.contains(&v.status) {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available, reserved, attaching, in-use or detaching \
                     to initialize a connection, but current status is: {}.",
                    v.id, v.status
                )));
            }
            check_one_host(&v, None, None, &c)?;
            let (pool, target) = self.export_target(tx, &mut v)?;
            let qos = self.front_end_qos(tx, &v)?;
            Ok((v, pool, target, qos))
        })?;
        let mode = Self::mode_for(&v, None);
        let lock = self.connection_lock(v.id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.connect(&pool, &target, &c, mode, &v, &qos)?;
        // Record the connection as an attaching attachment of this host, so that
        // os-attach completes it and restarts can rebuild the export.
        let now = Timestamp::now();
        let recorded = self.store.write(|tx| {
            let v = self.volume_in(tx, caller, id, rules::VOLUME_INITIALIZE_CONNECTION)?;
            if let Err(e) = check_one_host(&v, None, None, &c) {
                return Ok(Err(e));
            }
            let existing = v.attachments.iter().find(|a| {
                a.attach_status == AttachStatus::Attaching && connector_of(a).is_some_and(|o| o.same_host(&c))
            });
            let mut a = existing
                .cloned()
                .unwrap_or_else(|| new_attachment(&v, AttachStatus::Attaching, mode, None, c.host.clone()));
            a.connector = Some(connector.clone());
            a.connection_info =
                Some(serde_json::json!({"driver_volume_type": pool.export.driver_volume_type(), "data": data.clone()}));
            a.updated_at = now;
            sa::save(tx, &a)?;
            Ok(Ok(()))
        })?;
        if let Err(e) = recorded {
            // Lost a race with another host: undo this host's access.
            let _ = self.disconnect_locked(&v, Some(&c));
            return Err(e);
        }
        Ok(serde_json::json!({"driver_volume_type": pool.export.driver_volume_type(), "data": data}))
    }

    /// `os-attach`: the attachment is attached and the volume in-use.
    pub fn attach(
        &self,
        caller: &Caller,
        id: &str,
        instance_uuid: Option<String>,
        host_name: Option<String>,
        mountpoint: Option<String>,
        mode: Option<AttachMode>,
    ) -> Result<()> {
        self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_ATTACH)?;
            let ok = v.status == VolumeStatus::Attaching || (v.multiattach && v.status == VolumeStatus::InUse);
            if !ok {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be attaching (os-reserve first) to attach, but current status is: {}.",
                    v.id, v.status
                )));
            }
            if v.readonly() && mode == Some(AttachMode::Rw) {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} is read-only; attach it with mode ro.",
                    v.id
                )));
            }
            let mode = Self::mode_for(&v, mode);
            let now = Timestamp::now();
            // Complete this host's pending connection if there is one.
            let pending = v
                .attachments
                .iter()
                .filter(|a| a.attach_status == AttachStatus::Attaching && a.instance_uuid.is_none())
                .find(|a| host_name.is_none() || a.attached_host == host_name)
                .or_else(|| v.attachments.iter().find(|a| a.attach_status == AttachStatus::Attaching && a.instance_uuid.is_none()))
                .cloned();
            let mut a = pending
                .unwrap_or_else(|| new_attachment(&v, AttachStatus::Attaching, mode, None, host_name.clone()));
            a.instance_uuid = instance_uuid.clone();
            if host_name.is_some() {
                a.attached_host = host_name.clone();
            }
            a.mountpoint = mountpoint.clone();
            a.attach_mode = mode;
            a.attach_status = AttachStatus::Attached;
            a.attach_time = Some(now);
            a.updated_at = now;
            sa::save(tx, &a)?;
            v.status = VolumeStatus::InUse;
            v.attach_status = AttachStatus::Attached;
            v.admin_metadata.insert("attached_mode".into(), mode.as_str().into());
            v.updated_at = now;
            sv::save(tx, &v)?;
            sv::replace_metadata(tx, v.id, &v.admin_metadata, true)?;
            Ok((v, a))
        })
        .map(|(v, a)| attached(&v, &a))
    }

    /// `os-begin_detaching`: in-use → detaching.
    pub fn begin_detaching(&self, caller: &Caller, id: &str) -> Result<()> {
        self.flip(
            caller,
            id,
            rules::VOLUME_BEGIN_DETACHING,
            VolumeStatus::InUse,
            VolumeStatus::Detaching,
            "begin detaching",
        )
    }

    /// `os-roll_detaching`: detaching → in-use.
    pub fn roll_detaching(&self, caller: &Caller, id: &str) -> Result<()> {
        self.flip(
            caller,
            id,
            rules::VOLUME_ROLL_DETACHING,
            VolumeStatus::Detaching,
            VolumeStatus::InUse,
            "roll back detaching",
        )
    }

    fn flip(
        &self,
        caller: &Caller,
        id: &str,
        rule: &str,
        from: VolumeStatus,
        to: VolumeStatus,
        what: &str,
    ) -> Result<()> {
        self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rule)?;
            if v.status != from {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be {from} to {what}, but current status is: {}.",
                    v.id, v.status
                )));
            }
            v.status = to;
            v.updated_at = Timestamp::now();
            sv::save(tx, &v)
        })
    }

    /// `os-terminate_connection`: the connector's host loses access; its
    /// connections are forgotten (never-attached ones go entirely).
    pub fn terminate_connection(&self, caller: &Caller, id: &str, connector: Value) -> Result<()> {
        let c = Connector::from_json(&connector)?;
        let v = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_TERMINATE_CONNECTION)?;
            self.check_acts_here(v.host.as_deref(), &format!("volume {}", v.id))?;
            let mut kept = Vec::new();
            for mut a in std::mem::take(&mut v.attachments) {
                if connector_of(&a).is_some_and(|o| o.same_host(&c)) {
                    if a.attach_status == AttachStatus::Attaching && a.instance_uuid.is_none() {
                        sa::delete(tx, a.id)?;
                        continue;
                    }
                    a.connection_info = None;
                    a.updated_at = Timestamp::now();
                    sa::save(tx, &a)?;
                }
                kept.push(a);
            }
            v.attachments = kept;
            Ok(v)
        })?;
        self.disconnect(&v, Some(&c))
    }

    /// `os-detach`: one attachment goes (the only one when none is named).
    pub fn detach(&self, caller: &Caller, id: &str, attachment_id: Option<&str>) -> Result<()> {
        let (v, gone) = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, id, rules::VOLUME_DETACH)?;
            let live: Vec<&Attachment> = v.attachments.iter().collect();
            let target = match attachment_id {
                Some(aid) => live
                    .iter()
                    .find(|a| a.id.to_string() == aid.to_ascii_lowercase())
                    .map(|a| (*a).clone())
                    .ok_or_else(|| attachment_not_found(aid))?,
                None => match live.as_slice() {
                    [only] => (*only).clone(),
                    [] => return Err(Error::InvalidState(format!("Invalid volume: Volume {} is not attached.", v.id))),
                    _ => {
                        return Err(Error::Invalid(
                            "Detach volume failed: more than one attachment, but no attachment_id provided.".into(),
                        ))
                    }
                },
            };
            self.check_unexport_here(&v, std::slice::from_ref(&target))?;
            forget_attachments(tx, &mut v, &[target.id])?;
            Ok((v, target))
        })?;
        self.disconnect(&v, connector_of(&gone).as_ref())?;
        detached(&v, &gone);
        Ok(())
    }

    /// `os-force_detach` (admin): terminate the connector (if given) and detach the
    /// attachment (all of them when none is named).
    pub fn force_detach(
        &self,
        caller: &Caller,
        id: &str,
        attachment_id: Option<&str>,
        connector: Option<Value>,
    ) -> Result<()> {
        caller.authorize_own(rules::VOLUME_FORCE_DETACH)?;
        if let Some(c) = connector.filter(|c| c.as_object().is_some_and(|m| !m.is_empty())) {
            self.terminate_connection(caller, id, c)?;
        }
        match attachment_id {
            Some(aid) => self.detach(caller, id, Some(aid)),
            None => {
                let v = self.get_volume(caller, id)?;
                for a in v.attachments {
                    self.detach(caller, id, Some(&a.id.to_string()))?;
                }
                Ok(())
            }
        }
    }

    // ---- attachments API --------------------------------------------------------

    fn attachment_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<(Attachment, Volume)> {
        let aid = Id::parse(id).ok_or_else(|| attachment_not_found(id))?;
        let a = sa::get(conn, aid)?.ok_or_else(|| attachment_not_found(id))?;
        if !(caller.is_admin || a.project_id == caller.project_id) {
            return Err(attachment_not_found(id));
        }
        caller.authorize(rule, &a.project_id)?;
        let v = sv::get(conn, a.volume_id)?.ok_or_else(|| attachment_not_found(id))?;
        Ok((a, v))
    }

    /// Show an attachment.
    pub fn get_attachment(&self, caller: &Caller, id: &str) -> Result<Attachment> {
        self.store.read(|tx| self.attachment_in(tx, caller, id, rules::VOLUME_GET).map(|(a, _)| a))
    }

    /// List attachments; the caller's project unless an admin asks for all.
    pub fn list_attachments(
        &self,
        caller: &Caller,
        mut q: AttachmentQuery,
        all_tenants: bool,
    ) -> Result<Vec<Attachment>> {
        if !(caller.is_admin && all_tenants) {
            q.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| sa::list(tx, &q))
    }

    /// `POST /attachments`: reserve the volume for an instance; with a connector,
    /// connect at once.
    pub fn attachment_create(
        &self,
        caller: &Caller,
        volume_id: &str,
        instance_uuid: Option<String>,
        connector: Option<Value>,
        mode: Option<AttachMode>,
    ) -> Result<Attachment> {
        let a = self.store.write(|tx| {
            let mut v = self.volume_in(tx, caller, volume_id, rules::ATTACHMENT_CREATE)?;
            if connector.as_ref().is_some_and(|c| c.as_object().is_some_and(|m| !m.is_empty())) {
                self.check_acts_here(v.host.as_deref(), &format!("volume {}", v.id))?;
            }
            if v.status.as_str().contains("error") {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume attachments can not be created if the volume is in an error state. \
                     The Volume {} currently has a status of: {}.",
                    v.id, v.status
                )));
            }
            let reservable = match v.status {
                VolumeStatus::Available => true,
                VolumeStatus::InUse | VolumeStatus::Reserved | VolumeStatus::Attaching => {
                    v.multiattach
                        || (instance_uuid.is_some() && v.attachments.iter().any(|a| a.instance_uuid == instance_uuid))
                }
                _ => false,
            };
            if !reservable {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume {} status must be available{} to reserve, but the current status is {}.",
                    v.id,
                    if v.multiattach { " or in-use" } else { "" },
                    v.status
                )));
            }
            let now = Timestamp::now();
            let a = new_attachment(&v, AttachStatus::Reserved, Self::mode_for(&v, mode), instance_uuid.clone(), None);
            sa::insert(tx, &a)?;
            if v.status == VolumeStatus::Available {
                v.status = VolumeStatus::Reserved;
                v.attach_status = AttachStatus::Reserved;
                v.updated_at = now;
                sv::save(tx, &v)?;
            }
            Ok(a)
        })?;
        event(Ev::Attachment, "create", "end", a.id, &a.project_id)
            .status(a.attach_status.as_str())
            .payload(serde_json::json!({"volume_id": a.volume_id.to_string(), "instance_uuid": a.instance_uuid}))
            .emit();
        match connector {
            Some(c) if c.as_object().is_some_and(|m| !m.is_empty()) => {
                match self.attachment_update(caller, &a.id.to_string(), c) {
                    Ok(a) => Ok(a),
                    Err(e) => {
                        // Undo the reservation: the request failed as a whole.
                        let _ = self.attachment_delete(caller, &a.id.to_string());
                        Err(e)
                    }
                }
            }
            _ => Ok(a),
        }
    }

    /// `PUT /attachments/{id}` with a connector: export and connect.
    pub fn attachment_update(&self, caller: &Caller, id: &str, connector: Value) -> Result<Attachment> {
        let c = Connector::from_json(&connector)?;
        let (a, v, pool, target, qos) = self.store.write(|tx| {
            let (a, mut v) = self.attachment_in(tx, caller, id, rules::ATTACHMENT_UPDATE)?;
            if v.status.as_str().contains("error") || !CONNECTABLE.contains(&v.status) {
                return Err(Error::InvalidState(format!(
                    "Invalid volume: Volume attachments can not be updated while the volume is {}.",
                    v.status
                )));
            }
            check_one_host(&v, Some(a.id), a.instance_uuid.as_deref(), &c)?;
            let (pool, target) = self.export_target(tx, &mut v)?;
            let qos = self.front_end_qos(tx, &v)?;
            Ok((a, v, pool, target, qos))
        })?;
        let lock = self.connection_lock(v.id);
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        let data = self.connect(&pool, &target, &c, a.attach_mode, &v, &qos)?;
        let updated = self.store.write(|tx| {
            let (mut a, mut v) = self.attachment_in(tx, caller, id, rules::ATTACHMENT_UPDATE)?;
            if let Err(e) = check_one_host(&v, Some(a.id), a.instance_uuid.as_deref(), &c) {
                return Ok(Err(e));
            }
            let now = Timestamp::now();
            a.connector = Some(connector.clone());
            a.connection_info =
                Some(serde_json::json!({"driver_volume_type": pool.export.driver_volume_type(), "data": data.clone()}));
            a.attached_host = c.host.clone();
            if let Some(mp) = connector.get("mountpoint").and_then(Value::as_str) {
                a.mountpoint = Some(mp.to_string());
            }
            if a.attach_status != AttachStatus::Attached {
                a.attach_status = AttachStatus::Attaching;
            }
            a.updated_at = now;
            sa::save(tx, &a)?;
            if matches!(v.status, VolumeStatus::Reserved | VolumeStatus::Available) {
                v.status = VolumeStatus::Attaching;
                v.attach_status = AttachStatus::Attaching;
                v.updated_at = now;
                sv::save(tx, &v)?;
            }
            Ok(Ok(a))
        })?;
        match updated {
            Ok(a) => Ok(a),
            Err(e) => {
                let _ = self.disconnect_locked(&v, Some(&c));
                Err(e)
            }
        }
    }

    /// `os-complete` (3.44): the attachment is attached, the volume in-use.
    pub fn attachment_complete(&self, caller: &Caller, id: &str) -> Result<()> {
        self.store
            .write(|tx| {
                let (mut a, mut v) = self.attachment_in(tx, caller, id, rules::ATTACHMENT_COMPLETE)?;
                if a.connection_info.is_none() {
                    return Err(Error::InvalidState(format!(
                        "Invalid volume: Attachment {} has no connection yet; update it with a connector first.",
                        a.id
                    )));
                }
                let now = Timestamp::now();
                a.attach_status = AttachStatus::Attached;
                a.attach_time = Some(now);
                a.updated_at = now;
                sa::save(tx, &a)?;
                v.status = VolumeStatus::InUse;
                v.attach_status = AttachStatus::Attached;
                v.admin_metadata.insert("attached_mode".into(), a.attach_mode.as_str().into());
                v.updated_at = now;
                sv::save(tx, &v)?;
                sv::replace_metadata(tx, v.id, &v.admin_metadata, true)?;
                Ok((v, a))
            })
            .map(|(v, a)| attached(&v, &a))
    }

    /// `DELETE /attachments/{id}`: disconnect and forget it; returns the volume's
    /// remaining attachments.
    pub fn attachment_delete(&self, caller: &Caller, id: &str) -> Result<Vec<Attachment>> {
        let (v, gone) = self.store.write(|tx| {
            let (a, mut v) = self.attachment_in(tx, caller, id, rules::ATTACHMENT_DELETE)?;
            self.check_unexport_here(&v, std::slice::from_ref(&a))?;
            forget_attachments(tx, &mut v, &[a.id])?;
            Ok((v, a))
        })?;
        self.disconnect(&v, connector_of(&gone).as_ref())?;
        event(Ev::Attachment, "delete", "end", gone.id, &v.project_id)
            .status("deleted")
            .payload(serde_json::json!({"volume_id": v.id.to_string(), "instance_uuid": gone.instance_uuid}))
            .emit();
        detached(&v, &gone);
        Ok(v.attachments)
    }

    /// Make sure every volume with a connection is exported again (start-up), and
    /// every connected host let in again: the volumes on this node's pools (another
    /// node's are exported by it).
    pub fn restore_exports(&self) -> Result<usize> {
        let q = AttachmentQuery::default();
        let all = self.store.read(|tx| sa::list(tx, &q))?;
        let mut restored = 0;
        for a in all.iter().filter(|a| a.connection_info.is_some()) {
            let Some(c) = connector_of(a) else { continue };
            let r = self.store.write(|tx| {
                let mut v = sv::get(tx, a.volume_id)?.ok_or_else(|| attachment_not_found(&a.id.to_string()))?;
                if !self.owns(v.host.as_deref()) {
                    // Another node's pool: that node exports it.
                    return Ok(None);
                }
                self.export_target(tx, &mut v).map(|(p, t)| Some((p, t)))
            });
            match r.and_then(|found| {
                let Some((pool, t)) = found else { return Ok(false) };
                pool.export.ensure_export(&t)?;
                pool.export.allow(&t, &c, a.attach_mode)?;
                Ok(true)
            }) {
                Ok(true) => restored += 1,
                Ok(false) => {}
                Err(e) => log::error!("reconcile: cannot restore the export of attachment {}: {e}", a.id),
            }
        }
        Ok(restored)
    }
}

impl Core {
    /// Remove what the exports hold that no attachment explains (start-up, after
    /// [`Core::restore_exports`]): targets of volumes without a connection, and hosts
    /// let in without one. Only the export's own (hearth-named) objects are listed.
    pub fn prune_exports(&self) -> Result<usize> {
        use std::collections::{BTreeMap, BTreeSet};
        let all = self.store.read(|tx| sa::list(tx, &AttachmentQuery::default()))?;
        let mut wanted: BTreeMap<Id, BTreeSet<String>> = BTreeMap::new();
        for a in all.iter().filter(|a| a.connection_info.is_some()) {
            let hosts = wanted.entry(a.volume_id).or_default();
            if let Some(ini) = connector_of(a).and_then(|c| c.initiator) {
                hosts.insert(ini);
            }
        }
        let mut exports: Vec<Arc<dyn crate::export::Export>> = Vec::new();
        for p in self.pools().values() {
            if !exports.iter().any(|e| Arc::ptr_eq(e, &p.export)) {
                exports.push(p.export.clone());
            }
        }
        let mut pruned = 0;
        for ex in exports {
            for id in ex.list_exports()? {
                let Some(hosts) = wanted.get(&id) else {
                    log::warn!("reconcile: removing the export of volume {id}: no attachment holds a connection");
                    ex.remove_export(id)?;
                    pruned += 1;
                    continue;
                };
                for ini in ex.list_initiators(id)?.into_iter().filter(|i| !hosts.contains(i)) {
                    log::warn!("reconcile: removing host {ini} from the export of volume {id}: no attachment has it");
                    ex.deny(id, &Connector { initiator: Some(ini), ..Connector::default() })?;
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }
}

/// `volume.attach.end`: an attachment is attached.
fn attached(v: &Volume, a: &Attachment) {
    event(Ev::Volume, "attach", "end", v.id, &v.project_id)
        .status(v.status)
        .payload(serde_json::json!({
            "attachment_id": a.id.to_string(),
            "instance_uuid": a.instance_uuid,
            "attached_host": a.attached_host,
            "mode": a.attach_mode.as_str(),
        }))
        .emit();
}

/// `volume.detach.end`: an attachment is gone.
fn detached(v: &Volume, a: &Attachment) {
    event(Ev::Volume, "detach", "end", v.id, &v.project_id)
        .status(v.status)
        .payload(serde_json::json!({"attachment_id": a.id.to_string(), "instance_uuid": a.instance_uuid}))
        .emit();
}
