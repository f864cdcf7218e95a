//! What lists ask for: filters, sorts and pages of volumes, snapshots, attachments,
//! group types, groups and group snapshots, as the API parses them and the store
//! answers them.
//!
//! These are plain values: the API builds them from query strings, the core scopes
//! them to the caller's project, and the store turns them into SQL.

use std::collections::BTreeMap;

use crate::ids::Id;

/// A typed filter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// Matches nothing (`IS NULL` never holds for the columns filtered on).
    Null,
    /// A whole number (sizes, flags).
    Integer(i64),
    /// Text (names, states, times).
    Text(String),
}

/// A column a list can filter or sort on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeField {
    /// `id`
    Id,
    /// `name`
    Name,
    /// `description`
    Description,
    /// `status`
    Status,
    /// `size`
    Size,
    /// `availability_zone`
    AvailabilityZone,
    /// `bootable`
    Bootable,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `project_id`
    ProjectId,
    /// `user_id`
    UserId,
    /// `host`
    Host,
    /// `volume_type_id`
    VolumeTypeId,
    /// `attach_status`
    AttachStatus,
    /// `migration_status`
    MigrationStatus,
    /// `group_id`
    GroupId,
}

/// A column to sort on; the same set as filters.
pub type SortKey = VolumeField;

/// How a filter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOp {
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// Substring match (Cinder's `name~`).
    Like,
}

/// One filter of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// The column.
    pub field: VolumeField,
    /// The comparison.
    pub op: FilterOp,
    /// The value, typed as the column is.
    pub value: Scalar,
}

/// Sort direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortDir {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// What a list asks for.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only this project's volumes; `None` for all projects.
    pub project: Option<String>,
    /// Column filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Metadata key/value pairs, all of which must be present.
    pub metadata: Vec<(String, String)>,
    /// Sort keys; `id` is appended as the final tie-breaker.
    pub sort: Vec<(SortKey, SortDir)>,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// Start after this volume (in the sort order).
    pub marker: Option<Id>,
    /// Skip this many rows.
    pub offset: usize,
}

/// Totals of a filtered list (`volumes/summary`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Number of volumes.
    pub total_count: u64,
    /// Sum of their sizes in GiB.
    pub total_size: u64,
    /// Every metadata key with the distinct values it has.
    pub metadata: BTreeMap<String, Vec<String>>,
}

/// What a snapshot list asks for.
#[derive(Clone, Debug, Default)]
pub struct SnapshotQuery {
    /// Only this project's.
    pub project: Option<String>,
    /// Exact column filters: (column, value) with columns from a fixed set.
    pub exact: Vec<(&'static str, String)>,
    /// `name~` substring.
    pub name_like: Option<String>,
    /// Metadata pairs that must all be present.
    pub metadata: Vec<(String, String)>,
    /// Sort keys (column, direction); `id` is appended.
    pub sort: Vec<(&'static str, SortDir)>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Start after this one.
    pub marker: Option<Id>,
    /// Skip this many.
    pub offset: usize,
}

/// What a list of attachments asks for.
#[derive(Clone, Debug, Default)]
pub struct AttachmentQuery {
    /// Only this project's.
    pub project: Option<String>,
    /// Only this volume's.
    pub volume_id: Option<String>,
    /// Only this instance's.
    pub instance_id: Option<String>,
    /// Only in this status.
    pub status: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Skip this many.
    pub offset: usize,
}

/// What a list of QoS specs, user messages or transfers asks for: filters and sorts on
/// a fixed set of columns, named by the store's column names.
#[derive(Clone, Debug, Default)]
pub struct ColumnQuery {
    /// Only this project's (messages; transfers: those the project offers).
    pub project: Option<String>,
    /// Exact filters: (column, value).
    pub exact: Vec<(&'static str, String)>,
    /// Substring filters (Cinder's `key~`): (column, value).
    pub like: Vec<(&'static str, String)>,
    /// A filter named a column the objects do not have: nothing matches, as in
    /// Cinder.
    pub match_nothing: bool,
    /// Sort keys (column, direction); `id` is appended.
    pub sort: Vec<(&'static str, SortDir)>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Start after this one.
    pub marker: Option<Id>,
    /// Skip this many.
    pub offset: usize,
}

/// What a list of group types, groups or group snapshots asks for.
#[derive(Clone, Debug, Default)]
pub struct GroupQuery {
    /// Only this project's (groups and group snapshots).
    pub project: Option<String>,
    /// Exact column filters: (column, value) with columns from a fixed set.
    pub exact: Vec<(&'static str, String)>,
    /// `name~` substring.
    pub name_like: Option<String>,
    /// Sort keys (column, direction); `id` is appended.
    pub sort: Vec<(&'static str, SortDir)>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Start after this one.
    pub marker: Option<Id>,
    /// Skip this many.
    pub offset: usize,
}
