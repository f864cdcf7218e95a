//! The records hearth keeps: volumes, volume types, quotas and services.
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

/// What a volume's interrupted background work was, recorded *before* the work
/// starts so that start-up can finish or undo it (see [`crate::flow`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// Being placed by the scheduler (no backend object yet).
    Scheduling,
    /// The backend is creating the volume on the pool in `host`.
    BackendCreate,
    /// The backend is deleting the volume.
    BackendDelete,
    /// The backend is growing the volume to the given size.
    BackendExtend(Gib),
}

impl Task {
    /// The storage form.
    pub fn to_db(&self) -> String {
        match self {
            Task::Scheduling => "scheduling".into(),
            Task::BackendCreate => "backend_create".into(),
            Task::BackendDelete => "backend_delete".into(),
            Task::BackendExtend(size) => format!("backend_extend:{}", size.get()),
        }
    }

    /// Parse the storage form.
    pub fn from_db(s: &str) -> Option<Task> {
        match s {
            "scheduling" => Some(Task::Scheduling),
            "backend_create" => Some(Task::BackendCreate),
            "backend_delete" => Some(Task::BackendDelete),
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
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

impl VolumeType {
    /// Whether the type asks for multiattach (`multiattach="<is> True"`).
    pub fn multiattach(&self) -> bool {
        self.extra_specs
            .get("multiattach")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("<is> true"))
    }

    /// Whether the type asks for thick provisioning (`provisioning:type=thick`).
    pub fn thick(&self) -> bool {
        self.extra_specs
            .get("provisioning:type")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("thick"))
    }
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
    /// Last heartbeat.
    pub updated_at: Timestamp,
}
