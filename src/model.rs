//! The records hearth keeps: volumes, snapshots, attachments, transfers, backups,
//! volume types, generic volume groups (group types, groups, group snapshots), quotas
//! and services.
//!
//! These are plain data, shared by the store (which persists them), the core (which
//! changes them through state machines) and the API views (which render them). The
//! state machines themselves live in [`crate::volume`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::ids::{Gib, Id, Timestamp};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and storage form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<$name> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::Invalid(format!(
                        "'{}' is not a valid {}.", s, stringify!($name)
                    ))),
                }
            }
        }
    };
}

string_enum! {
    /// A volume's `status`.
    VolumeStatus {
        /// Accepted, being scheduled and made.
        Creating = "creating",
        /// Ready to use.
        Available = "available",
        /// Reserved for an attachment.
        Reserved = "reserved",
        /// Being attached.
        Attaching = "attaching",
        /// Attached.
        InUse = "in-use",
        /// Being detached.
        Detaching = "detaching",
        /// Growing.
        Extending = "extending",
        /// Being deleted.
        Deleting = "deleting",
        /// Being backed up.
        BackingUp = "backing-up",
        /// Being restored from a backup.
        RestoringBackup = "restoring-backup",
        /// Changing type.
        Retyping = "retyping",
        /// Under maintenance.
        Maintenance = "maintenance",
        /// Failed.
        Error = "error",
        /// Failed to delete.
        ErrorDeleting = "error_deleting",
        /// Failed to grow.
        ErrorExtending = "error_extending",
        /// Failed to restore.
        ErrorRestoring = "error_restoring",
        /// Being reverted to a snapshot.
        Reverting = "reverting",
        /// Offered to another project (a [`Transfer`] is open).
        AwaitingTransfer = "awaiting-transfer",
    }
}

string_enum! {
    /// A volume's `attach_status`.
    AttachStatus {
        /// Attached to at least one instance.
        Attached = "attached",
        /// Being attached.
        Attaching = "attaching",
        /// Not attached.
        Detached = "detached",
        /// Reserved by an attachment without a connector.
        Reserved = "reserved",
        /// Being detached.
        Detaching = "detaching",
        /// An attach or detach failed.
        ErrorAttaching = "error_attaching",
        /// A detach failed.
        ErrorDetaching = "error_detaching",
    }
}

string_enum! {
    /// A snapshot's `status`.
    SnapshotStatus {
        /// Being made.
        Creating = "creating",
        /// Ready.
        Available = "available",
        /// Being deleted.
        Deleting = "deleting",
        /// Being backed up.
        BackingUp = "backing-up",
        /// Its volume is being reverted to it.
        Restoring = "restoring",
        /// Failed.
        Error = "error",
        /// Failed to delete.
        ErrorDeleting = "error_deleting",
        /// Unmanaging.
        Unmanaging = "unmanaging",
    }
}

string_enum! {
    /// How an attachment may use the volume.
    AttachMode {
        /// Read and write.
        Rw = "rw",
        /// Read only.
        Ro = "ro",
    }
}

string_enum! {
    /// Who applies a set of QoS specs (Cinder's `consumer`).
    QosConsumer {
        /// The hypervisor: the specs travel to Nova in `connection_info`.
        FrontEnd = "front-end",
        /// The storage backend.
        BackEnd = "back-end",
        /// Both.
        Both = "both",
    }
}

string_enum! {
    /// Where an encrypted type's volumes are encrypted (Cinder's `control_location`).
    ControlLocation {
        /// On the compute host (Nova and os-brick), as hearth's volumes always are.
        FrontEnd = "front-end",
        /// On the storage backend.
        BackEnd = "back-end",
    }
}

/// What a volume's interrupted background work was, recorded *before* the work
/// starts so that start-up can finish or undo it (see [`crate::flow`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// Being placed by the scheduler (no backend object yet), by the node named (its
    /// `host`): the node that accepted the request, and so the one whose start-up
    /// settles it if it stopped meanwhile. Empty when recorded before tasks named
    /// their node (one node then): any node settles it.
    Scheduling(String),
    /// The backend is creating the volume on the pool in `host`.
    BackendCreate,
    /// The backend is deleting the volume.
    BackendDelete,
    /// The backend is growing the volume to the given size.
    BackendExtend(Gib),
    /// The backend is reverting the volume to the given snapshot.
    BackendRevert(Id),
    /// The volume is being overwritten with the given backup's data (a restore): until
    /// it finishes, the volume holds a mix of old and new data.
    BackupRestore(Id),
}

impl Task {
    /// The storage form.
    pub fn to_db(&self) -> String {
        match self {
            Task::Scheduling(node) if node.is_empty() => "scheduling".into(),
            Task::Scheduling(node) => format!("scheduling:{node}"),
            Task::BackendCreate => "backend_create".into(),
            Task::BackendDelete => "backend_delete".into(),
            Task::BackendExtend(size) => format!("backend_extend:{}", size.get()),
            Task::BackendRevert(snap) => format!("backend_revert:{snap}"),
            Task::BackupRestore(backup) => format!("backup_restore:{backup}"),
        }
    }

    /// Parse the storage form.
    pub fn from_db(s: &str) -> Option<Task> {
        match s {
            "scheduling" => Some(Task::Scheduling(String::new())),
            _ if s.starts_with("scheduling:") => s.strip_prefix("scheduling:").map(|n| Task::Scheduling(n.into())),
            "backend_create" => Some(Task::BackendCreate),
            "backend_delete" => Some(Task::BackendDelete),
            _ if s.starts_with("backend_revert:") => {
                s.strip_prefix("backend_revert:").and_then(Id::parse).map(Task::BackendRevert)
            }
            _ if s.starts_with("backup_restore:") => {
                s.strip_prefix("backup_restore:").and_then(Id::parse).map(Task::BackupRestore)
            }
            _ => s
                .strip_prefix("backend_extend:")
                .and_then(|n| n.parse().ok())
                .and_then(|n| Gib::new(n).ok())
                .map(Task::BackendExtend),
        }
    }
}

/// A volume record.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Its id.
    pub id: Id,
    /// The owning project.
    pub project_id: String,
    /// The user who created it.
    pub user_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Size in GiB.
    pub size: u64,
    /// Lifecycle status.
    pub status: VolumeStatus,
    /// Attachment status.
    pub attach_status: AttachStatus,
    /// Migration status (hearth does not migrate; kept for resets).
    pub migration_status: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Whether it is bootable.
    pub bootable: bool,
    /// Whether several hosts may attach it (from its type).
    pub multiattach: bool,
    /// Its volume type.
    pub volume_type_id: Id,
    /// Its volume type's name (joined, for views).
    pub volume_type_name: String,
    /// The snapshot it was made from.
    pub snapshot_id: Option<Id>,
    /// The volume it was cloned from.
    pub source_volid: Option<Id>,
    /// The generic volume group it belongs to.
    pub group_id: Option<Id>,
    /// The pool it lives on, `host@backend#pool`; `None` until scheduled.
    pub host: Option<String>,
    /// Background work in progress.
    pub task: Option<Task>,
    /// Why it is in an error state, for operators.
    pub error_reason: Option<String>,
    /// Whether it counts toward quotas.
    pub consumes_quota: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
    /// Admin metadata (`readonly`, `attached_mode`); the visible keys are shown in
    /// `metadata`, as Cinder does.
    pub admin_metadata: BTreeMap<String, String>,
    /// Export credentials (`CHAP <user> <secret>`), made once per volume.
    pub provider_auth: Option<String>,
    /// The key manager's id of its encryption key: set for volumes of an encrypted
    /// type (see [`crate::volume::encryption`]), `None` otherwise.
    pub encryption_key_id: Option<Id>,
    /// Its attachments, in creation order (loaded with the volume).
    pub attachments: Vec<Attachment>,
}

impl Volume {
    /// The status a volume returns to after work that does not change its
    /// attachments: in-use while attached, else available.
    pub fn resting_status(&self) -> VolumeStatus {
        if self.attachments.iter().any(|a| a.attach_status == AttachStatus::Attached) {
            VolumeStatus::InUse
        } else {
            VolumeStatus::Available
        }
    }

    /// Whether an admin made the volume read-only.
    pub fn readonly(&self) -> bool {
        self.admin_metadata.get("readonly").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A snapshot record.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Its id.
    pub id: Id,
    /// The owning project.
    pub project_id: String,
    /// The user who made it.
    pub user_id: String,
    /// The volume it is a snapshot of.
    pub volume_id: Id,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Size in GiB (the volume's size when taken).
    pub size: u64,
    /// Lifecycle status.
    pub status: SnapshotStatus,
    /// Progress, as `"0%"` to `"100%"`.
    pub progress: String,
    /// The volume's type when taken.
    pub volume_type_id: Id,
    /// The group snapshot it was taken as part of.
    pub group_snapshot_id: Option<Id>,
    /// The pool it lives on (its volume's).
    pub host: Option<String>,
    /// Background work in progress.
    pub task: Option<Task>,
    /// Why it is in an error state.
    pub error_reason: Option<String>,
    /// Whether it counts toward quotas.
    pub consumes_quota: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// User metadata.
    pub metadata: BTreeMap<String, String>,
}

/// An attachment of a volume to an instance or host.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    /// Its id.
    pub id: Id,
    /// The volume.
    pub volume_id: Id,
    /// The volume's project.
    pub project_id: String,
    /// The instance (server) using it.
    pub instance_uuid: Option<String>,
    /// The host using it (from the connector or `os-attach`).
    pub attached_host: Option<String>,
    /// Where it appears in the instance.
    pub mountpoint: Option<String>,
    /// Its status: reserved, attaching, attached, detaching.
    pub attach_status: AttachStatus,
    /// rw or ro.
    pub attach_mode: AttachMode,
    /// The connector the host gave (raw JSON), once it gave one.
    pub connector: Option<serde_json::Value>,
    /// What the host connects with (the export's `data`), once connected.
    pub connection_info: Option<serde_json::Value>,
    /// When it became attached.
    pub attach_time: Option<Timestamp>,
    /// When it was detached.
    pub detach_time: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// An offer of a volume to another project (Cinder's volume transfer). While it is
/// open the volume is `awaiting-transfer`; a member of any project who has its id and
/// auth key may accept it, and the volume (with its snapshots, unless `no_snapshots`)
/// then belongs to the accepter's project. An accepted or deleted transfer is gone.
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// Its id.
    pub id: Id,
    /// The volume offered.
    pub volume_id: Id,
    /// Display name.
    pub name: Option<String>,
    /// The project that offers the volume (the volume's, while the offer is open).
    pub source_project_id: String,
    /// Whether the volume's snapshots stay behind.
    pub no_snapshots: bool,
    /// What is kept of the auth key.
    pub auth: AuthKeyHash,
    /// Creation time.
    pub created_at: Timestamp,
}

/// What hearth keeps of a transfer's auth key: a random salt and the SHA-256 of the
/// salt followed by the key. The key itself is shown once, in the create response,
/// and is stored and logged nowhere; `Debug` shows neither part.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKeyHash {
    /// The salt.
    pub salt: String,
    /// The digest, 64 lower-case hex digits.
    pub sha256: String,
}

impl AuthKeyHash {
    fn digest(salt: &str, key: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update(key.as_bytes());
        h.finalize().into()
    }

    /// The hash of `key` under `salt`.
    pub fn new(salt: String, key: &str) -> AuthKeyHash {
        let sha256 = Self::digest(&salt, key).iter().map(|b| format!("{b:02x}")).collect();
        AuthKeyHash { salt, sha256 }
    }

    /// Whether `key` is the key this hash was made of (compared in constant time).
    pub fn matches(&self, key: &str) -> bool {
        let given = AuthKeyHash::new(self.salt.clone(), key);
        let (a, b) = (given.sha256.as_bytes(), self.sha256.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AuthKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKeyHash(..)")
    }
}

string_enum! {
    /// A backup's `status` (Cinder's `BackupStatus`).
    BackupStatus {
        /// Being made (its data is being read and stored).
        Creating = "creating",
        /// Complete: it can be restored, exported and deleted.
        Available = "available",
        /// Being deleted (a `creating` one: being cancelled).
        Deleting = "deleting",
        /// Its data is being written into a volume.
        Restoring = "restoring",
        /// Failed (`fail_reason` says why).
        Error = "error",
        /// Failed to delete.
        ErrorDeleting = "error_deleting",
    }
}

/// A backup: a copy of a volume's data (or a snapshot's) in the backup repository,
/// standing alone: the volume, its pool, even this hearth may be gone and the backup
/// still restores (see [`crate::volume::backups`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Backup {
    /// Its id.
    pub id: Id,
    /// The owning project.
    pub project_id: String,
    /// The user who made (or imported) it.
    pub user_id: String,
    /// The volume it is a backup of (the volume may be gone since).
    pub volume_id: Id,
    /// The snapshot it was made from, when it was made from one.
    pub snapshot_id: Option<Id>,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: BackupStatus,
    /// The volume's size in GiB (what a restore needs).
    pub size: u64,
    /// Chunks its manifest lists (Cinder's `object_count`).
    pub object_count: u64,
    /// The container the client named, kept and shown (the repository decides where
    /// the data goes).
    pub container: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// The backup this incremental one was made against.
    pub parent_id: Option<Id>,
    /// Backups made against this one (computed, never stored).
    pub dependents: u64,
    /// Why it is in an error state.
    pub fail_reason: Option<String>,
    /// When the data it holds was current: its creation, or its snapshot's.
    pub data_timestamp: Timestamp,
    /// The backup driver that made it, as Cinder names drivers
    /// (`cinder.backup.drivers.posix.PosixBackupDriver`).
    pub service: String,
    /// The repository's name of its data (the manifest), which an imported record
    /// with another id still points at.
    pub service_metadata: String,
    /// The volume a restore is writing into.
    pub restore_volume_id: Option<Id>,
    /// The temporary snapshot an in-use volume is read from, while it exists.
    pub temp_snapshot_id: Option<Id>,
    /// The pool of that snapshot (`host@backend#pool`).
    pub temp_snapshot_host: Option<String>,
    /// Bytes of the source read so far (progress of a backup or restore).
    pub bytes_done: u64,
    /// Bytes to read in all.
    pub bytes_total: u64,
    /// What the repository reported when the backup finished (bytes read and stored,
    /// new chunks), for operators.
    pub stats: Option<serde_json::Value>,
    /// What a restore gives back besides the data: the source volume's name,
    /// description, metadata and bootable flag when it was backed up.
    pub source_volume: serde_json::Value,
    /// User metadata (3.43).
    pub metadata: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl Backup {
    /// Whether it was made against a parent (Cinder's `is_incremental`).
    pub fn is_incremental(&self) -> bool {
        self.parent_id.is_some()
    }

    /// Whether incremental backups were made against it.
    pub fn has_dependent_backups(&self) -> bool {
        self.dependents > 0
    }
}

/// A volume type.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeType {
    /// Its id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Visible to every project.
    pub is_public: bool,
    /// Extra specs.
    pub extra_specs: BTreeMap<String, String>,
    /// The QoS specs associated with it.
    pub qos_specs_id: Option<Id>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl VolumeType {
    /// Whether the type asks for multiattach (`multiattach="<is> True"`).
    pub fn multiattach(&self) -> bool {
        self.extra_specs.get("multiattach").is_some_and(|v| v.trim().eq_ignore_ascii_case("<is> true"))
    }

    /// Whether the type asks for thick provisioning (`provisioning:type=thick`).
    pub fn thick(&self) -> bool {
        self.extra_specs.get("provisioning:type").is_some_and(|v| v.trim().eq_ignore_ascii_case("thick"))
    }
}

string_enum! {
    /// A generic volume group's `status` (Cinder's `GroupStatus`).
    GroupStatus {
        /// Being made (from a source: its volumes are being copied).
        Creating = "creating",
        /// Ready.
        Available = "available",
        /// Volumes being added or removed.
        Updating = "updating",
        /// In use.
        InUse = "in-use",
        /// Being deleted (with its volumes).
        Deleting = "deleting",
        /// Deleted.
        Deleted = "deleted",
        /// Failed.
        Error = "error",
        /// Failed to delete.
        ErrorDeleting = "error_deleting",
    }
}

string_enum! {
    /// A group snapshot's `status` (Cinder's `GroupSnapshotStatus`).
    GroupSnapshotStatus {
        /// Its snapshots are being taken.
        Creating = "creating",
        /// Ready.
        Available = "available",
        /// Being changed.
        Updating = "updating",
        /// Being deleted (with its snapshots).
        Deleting = "deleting",
        /// Deleted.
        Deleted = "deleted",
        /// Failed.
        Error = "error",
        /// Failed to delete.
        ErrorDeleting = "error_deleting",
    }
}

/// A group type: what kind of group a group is (Cinder's generic volume group
/// types, 3.11). Its group specs are for drivers; hearth's generic groups need none.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupType {
    /// Its id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Visible to every project (private ones: to admins only).
    pub is_public: bool,
    /// Group specs.
    pub group_specs: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A generic volume group (3.13): volumes of some volume types, on one pool, that
/// can be snapshotted, copied and deleted together.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Its id.
    pub id: Id,
    /// The owning project.
    pub project_id: String,
    /// The user who made it.
    pub user_id: String,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: GroupStatus,
    /// Availability zone (its volumes').
    pub availability_zone: String,
    /// Its group type.
    pub group_type_id: Id,
    /// The volume types its volumes may have, in the order given.
    pub volume_type_ids: Vec<Id>,
    /// The pool its volumes live on, `host@backend#pool`; `None` when none could
    /// take all its volume types.
    pub host: Option<String>,
    /// The group snapshot it was made from.
    pub group_snapshot_id: Option<Id>,
    /// The group it was copied from.
    pub source_group_id: Option<Id>,
    /// Why it is in an error state, for operators.
    pub error_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A snapshot of every volume of a group, taken together (3.14).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSnapshot {
    /// Its id.
    pub id: Id,
    /// The owning project.
    pub project_id: String,
    /// The user who made it.
    pub user_id: String,
    /// The group.
    pub group_id: Id,
    /// The group's type.
    pub group_type_id: Id,
    /// Display name.
    pub name: Option<String>,
    /// Display description.
    pub description: Option<String>,
    /// Lifecycle status.
    pub status: GroupSnapshotStatus,
    /// Why it is in an error state, for operators.
    pub error_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A service row (`cinder-scheduler`, `cinder-volume` per backend).
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// `host` or `host@backend`.
    pub host: String,
    /// `cinder-scheduler` or `cinder-volume`.
    pub binary: String,
    /// Its availability zone.
    pub zone: String,
    /// Disabled by an admin.
    pub disabled: bool,
    /// The admin's reason.
    pub disabled_reason: Option<String>,
    /// Frozen by an admin (`os-services/freeze`): no management operations.
    pub frozen: bool,
    /// Last heartbeat.
    pub updated_at: Timestamp,
}

/// A named set of QoS specs, associated with volume types (Cinder's
/// `QualityOfServiceSpecs`).
#[derive(Clone, Debug, PartialEq)]
pub struct QosSpecs {
    /// Its id.
    pub id: Id,
    /// Unique name.
    pub name: String,
    /// Who applies the specs.
    pub consumer: QosConsumer,
    /// The specs (`read_iops_sec`, `total_bytes_sec`, ...); a value may be null, as
    /// Cinder allows.
    pub specs: BTreeMap<String, Option<String>>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// The encryption of a volume type: what the compute host's encryptor is told to
/// use for the type's volumes.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeEncryption {
    /// The type.
    pub volume_type_id: Id,
    /// Its own id.
    pub encryption_id: Id,
    /// The encryptor (`luks`, `plain`, or a class name), as given.
    pub provider: String,
    /// The cipher (`aes-xts-plain64`), if given.
    pub cipher: Option<String>,
    /// The key size in bits, if given.
    pub key_size: Option<u64>,
    /// Where the encryption happens.
    pub control_location: ControlLocation,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change, if any.
    pub updated_at: Option<Timestamp>,
}

/// A user message: the outcome of asynchronous work that failed for a reason the
/// user should know (Cinder's `Message`).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Its id.
    pub id: Id,
    /// The project it is for.
    pub project_id: String,
    /// The request that started the work.
    pub request_id: String,
    /// `VOLUME`, `VOLUME_SNAPSHOT`, ...
    pub resource_type: String,
    /// The object it is about.
    pub resource_uuid: Option<Id>,
    /// What was being done (Cinder's action id, `001`...).
    pub action_id: String,
    /// What happened (Cinder's detail id, `001`...).
    pub detail_id: String,
    /// `VOLUME_<resource type>_<action id>_<detail id>`.
    pub event_id: String,
    /// `ERROR`, `WARNING` or `INFO`.
    pub message_level: String,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// Until when it is kept (`created_at` + `message_ttl`).
    pub expires_at: Timestamp,
}

/// What one project holds on a host: volumes and snapshots, counted and summed in GiB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostUsage {
    /// The project.
    pub project_id: String,
    /// Its volumes on the host.
    pub volume_count: u64,
    /// Their sizes, GiB.
    pub volume_gb: u64,
    /// Its snapshots on the host.
    pub snapshot_count: u64,
    /// Their sizes, GiB.
    pub snapshot_gb: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_round_trip_through_their_storage_form() {
        let tasks = [
            Task::Scheduling("node-a".into()),
            Task::Scheduling("appliance-1.example:2".into()),
            Task::Scheduling(String::new()),
            Task::BackendCreate,
            Task::BackendDelete,
            Task::BackendExtend(Gib::new(7).unwrap()),
            Task::BackendRevert(Id::new()),
            Task::BackupRestore(Id::new()),
        ];
        for t in tasks {
            assert_eq!(Task::from_db(&t.to_db()), Some(t.clone()), "{}", t.to_db());
        }
        // Recorded before tasks named their node.
        assert_eq!(Task::from_db("scheduling"), Some(Task::Scheduling(String::new())));
        assert_eq!(Task::from_db("scheduling:"), Some(Task::Scheduling(String::new())));
        assert_eq!(Task::from_db("backend_extend:x"), None);
    }

    #[test]
    fn auth_key_hashes_are_salted_and_never_shown() {
        let h = AuthKeyHash::new("salt-1".into(), "key");
        assert_eq!(h.sha256.len(), 64);
        assert!(h.matches("key"));
        for wrong in ["", "ke", "key ", "KEY", "salt-1key"] {
            assert!(!h.matches(wrong), "{wrong:?}");
        }
        assert_ne!(AuthKeyHash::new("salt-2".into(), "key").sha256, h.sha256, "the salt counts");
        let shown = format!(
            "{:?}",
            Transfer {
                id: Id::new(),
                volume_id: Id::new(),
                name: None,
                source_project_id: "p".into(),
                no_snapshots: false,
                auth: h.clone(),
                created_at: Timestamp::now(),
            }
        );
        assert!(!shown.contains(&h.sha256) && !shown.contains("salt-1"), "{shown}");
    }
}

/// Where a request handed to another node stands ([`Handed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandedState {
    /// Waiting for its node to take it.
    Queued,
    /// Its node took it and runs it.
    Running,
    /// Its node answered (the reply is kept).
    Done,
    /// The node that handed it gave up waiting before its node took it: never run.
    Cancelled,
    /// Its node stopped while running it: the request's own records say how far
    /// it got.
    Lost,
}

impl HandedState {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            HandedState::Queued => "queued",
            HandedState::Running => "running",
            HandedState::Done => "done",
            HandedState::Cancelled => "cancelled",
            HandedState::Lost => "lost",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<HandedState> {
        [HandedState::Queued, HandedState::Running, HandedState::Done, HandedState::Cancelled, HandedState::Lost]
            .into_iter()
            .find(|h| h.as_str() == s)
    }
}

/// A request one node of a fleet handed to the node that owns the pool it needs
/// (see `crate::volume::fleet`): the work queue's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Handed {
    /// Its id.
    pub id: Id,
    /// The node (`host`) that runs it.
    pub node: String,
    /// The node that handed it over and waits for the reply.
    pub from_node: String,
    /// Where it stands.
    pub state: HandedState,
    /// The request (JSON, as the handing node wrote it).
    pub request: String,
    /// The reply (JSON), once done.
    pub reply: Option<String>,
    /// When it was handed over.
    pub created_at: Timestamp,
    /// When its state last changed.
    pub updated_at: Timestamp,
}
