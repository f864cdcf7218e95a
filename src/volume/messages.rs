//! User messages (3.3): what a user should know about asynchronous work that failed
//! after its request was answered with a 2xx.
//!
//! A message names the resource it is about, what was being done (an [`Action`]) and
//! what went wrong (a [`Detail`]), with Cinder's ids and sentences, so that its
//! `event_id` (`VOLUME_<resource>_<action>_<detail>`) and `user_message`
//! (`"<action>:<detail>"`) read as Cinder's do. It carries the id of the request that
//! started the work (a start-up id for work resumed by reconcile), is kept for
//! `message_ttl` seconds (`guaranteed_until`), and is purged every
//! `message_reap_interval` seconds after that. A message is recorded in the same
//! transaction as the failure it explains, and never says more than the sentence:
//! the cause stays in the log and the object's record.
//!
//! What records one (as Cinder):
//!
//! | failure | resource | action | detail |
//! |---|---|---|---|
//! | no pool can take a new volume | `VOLUME` | 001 schedule allocate volume | 003 no backend (or 001 unknown) |
//! | the backend failed to create a volume | `VOLUME` | 008 create volume from backend storage | 012 driver failed create |
//! | the backend failed to grow a volume | `VOLUME` | 007 extend volume | 010 driver failed extend |
//! | the backend failed to make a snapshot | `VOLUME_SNAPSHOT` | 009 create snapshot | 013 snapshot create error |
//! | the backend failed to delete a snapshot | `VOLUME_SNAPSHOT` | 010 delete snapshot | 016 snapshot delete error |
//! | a backup could not read its source or store its data | `VOLUME_BACKUP` | 013 create backup | 019 backup device error, 020 backup driver error |
//! | a backup's temporary snapshot could not be removed | `VOLUME_BACKUP` | 013 create backup | 023 cleanup error |
//! | the repository could not delete a backup | `VOLUME_BACKUP` | 014 delete backup | 025 backup delete driver error |
//! | a restore failed (a missing or corrupt chunk, the volume) | `VOLUME_BACKUP` | 015 restore backup | 026 backup restore error |

use crate::store::db::Connection;

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::Message;
use crate::policy::rules;
use crate::query::ColumnQuery;
use crate::store::messages as sm;
use crate::volume::{Caller, Core};

/// What a message's resource is (Cinder's `message_field.Resource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// A volume.
    Volume,
    /// A snapshot.
    VolumeSnapshot,
    /// A backup.
    VolumeBackup,
}

impl Resource {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Volume => "VOLUME",
            Resource::VolumeSnapshot => "VOLUME_SNAPSHOT",
            Resource::VolumeBackup => "VOLUME_BACKUP",
        }
    }
}

/// What was being done: Cinder's id and sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action(pub &'static str, pub &'static str);

/// What went wrong: Cinder's id and sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detail(pub &'static str, pub &'static str);

/// Cinder's actions (`message_field.Action`).
pub mod action {
    use super::Action;
    /// 001
    pub const SCHEDULE_ALLOCATE_VOLUME: Action = Action("001", "schedule allocate volume");
    /// 002
    pub const ATTACH_VOLUME: Action = Action("002", "attach volume");
    /// 003
    pub const COPY_VOLUME_TO_IMAGE: Action = Action("003", "copy volume to image");
    /// 004
    pub const UPDATE_ATTACHMENT: Action = Action("004", "update attachment");
    /// 005
    pub const COPY_IMAGE_TO_VOLUME: Action = Action("005", "copy image to volume");
    /// 006
    pub const UNMANAGE_VOLUME: Action = Action("006", "unmanage volume");
    /// 007
    pub const EXTEND_VOLUME: Action = Action("007", "extend volume");
    /// 008
    pub const CREATE_VOLUME_FROM_BACKEND: Action = Action("008", "create volume from backend storage");
    /// 009
    pub const SNAPSHOT_CREATE: Action = Action("009", "create snapshot");
    /// 010
    pub const SNAPSHOT_DELETE: Action = Action("010", "delete snapshot");
    /// 011
    pub const SNAPSHOT_UPDATE: Action = Action("011", "update snapshot");
    /// 012
    pub const SNAPSHOT_METADATA_UPDATE: Action = Action("012", "update snapshot metadata");
    /// 013
    pub const BACKUP_CREATE: Action = Action("013", "create backup");
    /// 014
    pub const BACKUP_DELETE: Action = Action("014", "delete backup");
    /// 015
    pub const BACKUP_RESTORE: Action = Action("015", "restore backup");
    /// 016
    pub const REIMAGE_VOLUME: Action = Action("016", "reimage volume");

    /// Every action, to translate ids.
    pub const ALL: &[Action] = &[
        SCHEDULE_ALLOCATE_VOLUME,
        ATTACH_VOLUME,
        COPY_VOLUME_TO_IMAGE,
        UPDATE_ATTACHMENT,
        COPY_IMAGE_TO_VOLUME,
        UNMANAGE_VOLUME,
        EXTEND_VOLUME,
        CREATE_VOLUME_FROM_BACKEND,
        SNAPSHOT_CREATE,
        SNAPSHOT_DELETE,
        SNAPSHOT_UPDATE,
        SNAPSHOT_METADATA_UPDATE,
        BACKUP_CREATE,
        BACKUP_DELETE,
        BACKUP_RESTORE,
        REIMAGE_VOLUME,
    ];
}

/// Cinder's details (`message_field.Detail`), those hearth can record.
pub mod detail {
    use super::Detail;
    /// 001
    pub const UNKNOWN_ERROR: Detail = Detail("001", "An unknown error occurred.");
    /// 003
    pub const NO_BACKEND_AVAILABLE: Detail = Detail("003", "Could not find any available weighted backend.");
    /// 006
    pub const QUOTA_EXCEED: Detail = Detail("006", "Not enough quota resource for operation.");
    /// 010
    pub const DRIVER_FAILED_EXTEND: Detail = Detail("010", "Volume Driver failed to extend volume.");
    /// 012
    pub const DRIVER_FAILED_CREATE: Detail = Detail("012", "Driver failed to create the volume.");
    /// 013
    pub const SNAPSHOT_CREATE_ERROR: Detail = Detail("013", "Snapshot failed to create.");
    /// 015
    pub const SNAPSHOT_IS_BUSY: Detail = Detail("015", "Snapshot is busy.");
    /// 016
    pub const SNAPSHOT_DELETE_ERROR: Detail = Detail("016", "Snapshot failed to delete.");
    /// 017
    pub const BACKUP_INVALID_STATE: Detail = Detail("017", "Backup status is invalid.");
    /// 019
    pub const BACKUP_CREATE_DEVICE_ERROR: Detail =
        Detail("019", "Failed to get backup device from the volume service.");
    /// 020
    pub const BACKUP_CREATE_DRIVER_ERROR: Detail = Detail("020", "Backup driver failed to create backup.");
    /// 021
    pub const ATTACH_ERROR: Detail = Detail("021", "Failed to attach volume.");
    /// 022
    pub const DETACH_ERROR: Detail = Detail("022", "Failed to detach volume.");
    /// 023
    pub const BACKUP_CREATE_CLEANUP_ERROR: Detail = Detail("023", "Cleanup of temporary volume/snapshot failed.");
    /// 025
    pub const BACKUP_DELETE_DRIVER_ERROR: Detail = Detail("025", "Backup driver failed to delete backup.");
    /// 026
    pub const BACKUP_RESTORE_ERROR: Detail = Detail("026", "Backup driver failed to restore backup.");
    /// 027
    pub const VOLUME_INVALID_STATE: Detail = Detail("027", "Volume status is invalid.");

    /// Every detail, to translate ids.
    pub const ALL: &[Detail] = &[
        UNKNOWN_ERROR,
        NO_BACKEND_AVAILABLE,
        QUOTA_EXCEED,
        DRIVER_FAILED_EXTEND,
        DRIVER_FAILED_CREATE,
        SNAPSHOT_CREATE_ERROR,
        SNAPSHOT_IS_BUSY,
        SNAPSHOT_DELETE_ERROR,
        BACKUP_INVALID_STATE,
        BACKUP_CREATE_DEVICE_ERROR,
        BACKUP_CREATE_DRIVER_ERROR,
        ATTACH_ERROR,
        DETACH_ERROR,
        BACKUP_CREATE_CLEANUP_ERROR,
        BACKUP_DELETE_DRIVER_ERROR,
        BACKUP_RESTORE_ERROR,
        VOLUME_INVALID_STATE,
    ];
}

/// The detail for a failure: the one an error kind maps to (Cinder's
/// `EXCEPTION_DETAIL_MAPPINGS`: no valid backend, over quota), else `fallback`.
pub fn detail_for(err: &Error, fallback: Detail) -> Detail {
    match err {
        Error::NoValidHost(_) => detail::NO_BACKEND_AVAILABLE,
        Error::OverQuota(_) => detail::QUOTA_EXCEED,
        _ => fallback,
    }
}

/// The sentence a message shows: `"<action>:<detail>"`, as Cinder builds it.
pub fn user_message(m: &Message) -> String {
    let act = action::ALL.iter().find(|a| a.0 == m.action_id).map(|a| a.1).unwrap_or("unknown action");
    let det = detail::ALL.iter().find(|d| d.0 == m.detail_id).map(|d| d.1).unwrap_or(detail::UNKNOWN_ERROR.1);
    format!("{act}:{det}")
}

/// A request id for work no request started (reconcile at start-up).
pub fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

/// Who a message is for and what started the work.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The project of the resource.
    pub project_id: String,
    /// The request that started the work.
    pub request_id: String,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Message {id} could not be found."))
}

impl Core {
    /// Record a message in the caller's transaction: `ERROR` level, kept for
    /// `message_ttl` seconds.
    pub fn record_message(
        &self,
        tx: &Connection,
        origin: &Origin,
        resource: Resource,
        resource_uuid: Id,
        action: Action,
        detail: Detail,
    ) -> Result<()> {
        let now = Timestamp::now();
        let m = Message {
            id: Id::new(),
            project_id: origin.project_id.clone(),
            request_id: origin.request_id.clone(),
            resource_type: resource.as_str().into(),
            resource_uuid: Some(resource_uuid),
            action_id: action.0.into(),
            detail_id: detail.0.into(),
            event_id: format!("VOLUME_{}_{}_{}", resource.as_str(), action.0, detail.0),
            message_level: "ERROR".into(),
            created_at: now,
            expires_at: now.plus_seconds(self.config.message_ttl),
        };
        log::info!(
            "message {} for {} {resource_uuid} ({}; request {})",
            m.id,
            m.resource_type,
            m.event_id,
            m.request_id
        );
        sm::insert(tx, &m)
    }

    fn message_in(&self, conn: &Connection, caller: &Caller, id: &str, rule: &str) -> Result<Message> {
        let mid = Id::parse(id).ok_or_else(|| not_found(id))?;
        match sm::get(conn, mid)? {
            Some(m) if caller.is_admin || m.project_id == caller.project_id => {
                caller.authorize(rule, &m.project_id)?;
                Ok(m)
            }
            _ => Err(not_found(id)),
        }
    }

    /// List messages: the caller's project's; an admin's lists every project's, as
    /// Cinder's do.
    pub fn list_messages(&self, caller: &Caller, mut q: ColumnQuery) -> Result<Vec<Message>> {
        caller.authorize_own(rules::MESSAGE_GET_ALL)?;
        if !caller.is_admin {
            q.project = Some(caller.project_id.clone());
        }
        self.store.read(|tx| sm::list(tx, &q))
    }

    /// Show a message.
    pub fn get_message(&self, caller: &Caller, id: &str) -> Result<Message> {
        self.store.read(|tx| self.message_in(tx, caller, id, rules::MESSAGE_GET))
    }

    /// Delete a message.
    pub fn delete_message(&self, caller: &Caller, id: &str) -> Result<()> {
        self.store.write(|tx| {
            let m = self.message_in(tx, caller, id, rules::MESSAGE_DELETE)?;
            sm::delete(tx, m.id)
        })
    }

    /// Remove the messages past their `guaranteed_until`; how many went.
    pub fn purge_expired_messages(&self) -> Result<usize> {
        let n = self.store.write(|tx| sm::delete_expired(tx, Timestamp::now()))?;
        if n > 0 {
            log::info!("deleted {n} expired messages");
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_cinders() {
        let now = Timestamp::now();
        let mut m = Message {
            id: Id::new(),
            project_id: "p".into(),
            request_id: new_request_id(),
            resource_type: "VOLUME".into(),
            resource_uuid: None,
            action_id: "001".into(),
            detail_id: "003".into(),
            event_id: "VOLUME_VOLUME_001_003".into(),
            message_level: "ERROR".into(),
            created_at: now,
            expires_at: now,
        };
        assert_eq!(user_message(&m), "schedule allocate volume:Could not find any available weighted backend.");
        m.action_id = "999".into();
        m.detail_id = "999".into();
        assert_eq!(user_message(&m), "unknown action:An unknown error occurred.");
        assert!(m.request_id.starts_with("req-") && m.request_id.len() == 40);
        assert_eq!(detail_for(&Error::NoValidHost("x".into()), detail::UNKNOWN_ERROR), detail::NO_BACKEND_AVAILABLE);
        assert_eq!(detail_for(&Error::Backend("x".into()), detail::DRIVER_FAILED_CREATE), detail::DRIVER_FAILED_CREATE);
    }
}
