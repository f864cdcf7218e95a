//! Views: records rendered as the asked microversion shows them.
//!
//! A field newer than the request's microversion is never shown, admin-only fields
//! only to admins, and `os-vol-*` extension fields only in show and list responses.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::Ctx;
use crate::model::{
    AttachStatus, Attachment, Backup, BackupStatus, Group, GroupSnapshot, GroupType, Message, QosSpecs, Snapshot,
    TypeEncryption, Volume, VolumeType,
};
use crate::policy::rules;
use crate::volume::types::spec_visible_to_users;

/// How much of a volume to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeView {
    /// `id`, `name`, `links` (plain `GET /volumes`).
    Brief,
    /// Every field but the `os-vol-*` extensions (create and update responses).
    Plain,
    /// Every field (show and `volumes/detail`).
    Full,
}

/// Admin metadata keys shown in `metadata`, as Cinder shows them.
const VISIBLE_ADMIN_METADATA: &[&str] = &["readonly", "attached_mode"];

/// A link of an object.
#[derive(Serialize)]
pub struct Link {
    href: String,
    rel: &'static str,
}

/// `None`: the field is not shown (too new for the microversion, or admin-only);
/// `Some(None)`: shown as `null`.
type Gated<T> = Option<Option<T>>;

fn gate<T>(shown: bool, value: Option<T>) -> Gated<T> {
    shown.then_some(value)
}

/// A volume as the API shows it, serialized straight to JSON (lists of a thousand
/// volumes are rendered without building an intermediate tree).
#[derive(Serialize)]
pub struct VolumeOut<'a> {
    id: String,
    name: Option<&'a str>,
    links: [Link; 2],
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    body: Option<VolumeBody<'a>>,
}

#[derive(Serialize)]
struct VolumeBody<'a> {
    description: Option<&'a str>,
    size: u64,
    status: &'static str,
    availability_zone: &'a str,
    created_at: String,
    updated_at: String,
    attachments: Vec<VolumeAttachmentOut<'a>>,
    metadata: BTreeMap<&'a str, &'a str>,
    volume_type: &'a str,
    snapshot_id: Option<String>,
    source_volid: Option<String>,
    user_id: &'a str,
    bootable: &'static str,
    encrypted: bool,
    replication_status: &'static str,
    consistencygroup_id: Option<()>,
    multiattach: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_status: Gated<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Gated<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Gated<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_uuid: Gated<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_targets: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_name: Gated<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volume_type_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_key_id: Gated<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumes_quota: Option<bool>,
    #[serde(rename = "os-vol-tenant-attr:tenant_id", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    #[serde(rename = "os-vol-host-attr:host", skip_serializing_if = "Option::is_none")]
    host: Gated<&'a str>,
    #[serde(rename = "os-vol-mig-status-attr:migstat", skip_serializing_if = "Option::is_none")]
    migstat: Gated<&'a str>,
    #[serde(rename = "os-vol-mig-status-attr:name_id", skip_serializing_if = "Option::is_none")]
    name_id: Gated<()>,
}

/// An entry of a volume's `attachments`.
#[derive(Serialize)]
pub struct VolumeAttachmentOut<'a> {
    id: String,
    attachment_id: String,
    volume_id: String,
    server_id: Option<&'a str>,
    host_name: Option<&'a str>,
    device: Option<&'a str>,
    attached_at: Option<String>,
}

/// A volume.
pub fn volume<'a>(ctx: &Ctx<'_>, v: &'a Volume, view: VolumeView) -> VolumeOut<'a> {
    let id = v.id.to_string();
    let [self_link, bookmark] = ctx.link_pair(&format!("volumes/{id}"));
    let links = [Link { href: self_link, rel: "self" }, Link { href: bookmark, rel: "bookmark" }];
    let body = (view != VolumeView::Brief).then(|| {
        let admin = ctx.caller.is_admin;
        let may = |rule: &str| ctx.caller.may(rule, &v.project_id);
        let mv = ctx.version;
        let full = view == VolumeView::Full;
        let mut metadata: BTreeMap<&str, &str> = v.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for k in VISIBLE_ADMIN_METADATA {
            if let Some(val) = v.admin_metadata.get(*k) {
                metadata.insert(k, val);
            }
        }
        VolumeBody {
            description: v.description.as_deref(),
            size: v.size,
            status: v.status.as_str(),
            availability_zone: &v.availability_zone,
            created_at: v.created_at.to_string(),
            updated_at: v.updated_at.to_string(),
            attachments: v
                .attachments
                .iter()
                .filter(|a| a.attach_status == AttachStatus::Attached)
                .map(|a| VolumeAttachmentOut {
                    id: v.id.to_string(),
                    attachment_id: a.id.to_string(),
                    volume_id: v.id.to_string(),
                    server_id: a.instance_uuid.as_deref(),
                    host_name: a.attached_host.as_deref(),
                    device: a.mountpoint.as_deref(),
                    attached_at: a.attach_time.map(|t| t.to_string()),
                })
                .collect(),
            metadata,
            volume_type: &v.volume_type_name,
            snapshot_id: v.snapshot_id.map(|i| i.to_string()),
            source_volid: v.source_volid.map(|i| i.to_string()),
            user_id: &v.user_id,
            bootable: if v.bootable { "true" } else { "false" },
            encrypted: v.encryption_key_id.is_some(),
            replication_status: "disabled",
            consistencygroup_id: None,
            multiattach: v.multiattach,
            migration_status: gate(may(rules::VOLUME_MIG_STATUS_ATTRIBUTE), v.migration_status.as_deref()),
            group_id: gate(mv.at_least(13), v.group_id.map(|g| g.to_string())),
            provider_id: gate(mv.at_least(21) && admin, None),
            service_uuid: gate(mv.at_least(48), None),
            shared_targets: mv.at_least(48).then_some(false),
            cluster_name: gate(mv.at_least(61) && admin, None),
            volume_type_id: mv.at_least(63).then(|| v.volume_type_id.to_string()),
            encryption_key_id: gate(mv.at_least(64), v.encryption_key_id.map(|k| k.to_string())),
            consumes_quota: mv.at_least(65).then_some(v.consumes_quota),
            tenant_id: (full && may(rules::VOLUME_TENANT_ATTRIBUTE)).then_some(v.project_id.as_str()),
            host: gate(full && may(rules::VOLUME_HOST_ATTRIBUTE), v.host.as_deref()),
            migstat: gate(full && may(rules::VOLUME_MIG_STATUS_ATTRIBUTE), v.migration_status.as_deref()),
            name_id: gate(full && admin, None),
        }
    });
    VolumeOut { id, name: v.name.as_deref(), links, body }
}

/// A volume type as show and list give it: extra specs to those policy lets read
/// them (only the user-visible ones without `read_sensitive`), `qos_specs_id` and
/// the access flag likewise.
pub fn volume_type(ctx: &Ctx<'_>, t: &VolumeType) -> Value {
    let c = &ctx.caller;
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id.to_string()));
    m.insert("name".into(), json!(t.name));
    m.insert("description".into(), json!(t.description));
    m.insert("is_public".into(), json!(t.is_public));
    if c.authorize_own(rules::TYPE_ACCESS_EXTRA_SPECS).is_ok() {
        let sensitive = c.authorize_own(rules::EXTRA_SPECS_READ_SENSITIVE).is_ok();
        let specs: Map<String, Value> = t
            .extra_specs
            .iter()
            .filter(|(k, _)| sensitive || spec_visible_to_users(k))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        m.insert("extra_specs".into(), Value::Object(specs));
    }
    if c.authorize_own(rules::TYPE_ACCESS_QOS_SPECS_ID).is_ok() {
        m.insert("qos_specs_id".into(), json!(t.qos_specs_id.map(|q| q.to_string())));
    }
    if c.authorize_own(rules::TYPE_ACCESS).is_ok() {
        m.insert("os-volume-type-access:is_public".into(), json!(t.is_public));
    }
    Value::Object(m)
}

/// A volume type as create and update answer (Cinder's older view: every extra spec,
/// no `qos_specs_id`); create adds the access flag, update does not.
pub fn volume_type_changed(ctx: &Ctx<'_>, t: &VolumeType, created: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id.to_string()));
    m.insert("name".into(), json!(t.name));
    m.insert("description".into(), json!(t.description));
    m.insert("is_public".into(), json!(t.is_public));
    m.insert("extra_specs".into(), json!(t.extra_specs));
    if created && ctx.caller.authorize_own(rules::TYPE_ACCESS).is_ok() {
        m.insert("os-volume-type-access:is_public".into(), json!(t.is_public));
    }
    Value::Object(m)
}

/// A set of QoS specs as show, create, list and update give it (Cinder's
/// `qos_specs` view: no times, no associations).
pub fn qos_specs(q: &QosSpecs) -> Value {
    json!({"id": q.id.to_string(), "name": q.name, "consumer": q.consumer.as_str(), "specs": q.specs})
}

/// A type's encryption as `GET /types/{id}/encryption` gives it: Cinder's whole
/// row, its soft-delete columns included.
pub fn type_encryption(e: &TypeEncryption) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("volume_type_id".into(), json!(e.volume_type_id.to_string()));
    m.insert("encryption_id".into(), json!(e.encryption_id.to_string()));
    m.insert("provider".into(), json!(e.provider));
    m.insert("cipher".into(), json!(e.cipher));
    m.insert("key_size".into(), json!(e.key_size));
    m.insert("control_location".into(), json!(e.control_location.as_str()));
    m.insert("deleted".into(), json!(false));
    m.insert("created_at".into(), json!(e.created_at.to_string()));
    m.insert("updated_at".into(), json!(e.updated_at.map(|t| t.to_string())));
    m.insert("deleted_at".into(), Value::Null);
    m
}

/// A user message (3.3); `resource_type` and `resource_uuid` only when it has them.
pub fn message(ctx: &Ctx<'_>, m: &Message) -> Value {
    let id = m.id.to_string();
    let [self_link, bookmark] = ctx.link_pair(&format!("messages/{id}"));
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    out.insert("event_id".into(), json!(m.event_id));
    out.insert("user_message".into(), json!(crate::volume::messages::user_message(m)));
    out.insert("message_level".into(), json!(m.message_level));
    out.insert("created_at".into(), json!(m.created_at.to_string()));
    out.insert("guaranteed_until".into(), json!(m.expires_at.to_string()));
    out.insert("request_id".into(), json!(m.request_id));
    out.insert("links".into(), json!([{"href": self_link, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}]));
    if !m.resource_type.is_empty() {
        out.insert("resource_type".into(), json!(m.resource_type));
    }
    if let Some(r) = m.resource_uuid {
        out.insert("resource_uuid".into(), json!(r.to_string()));
    }
    Value::Object(out)
}

/// How much of a snapshot to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotView {
    /// Create and update responses, and plain lists.
    Plain,
    /// Show and `snapshots/detail`: with the `os-extended-snapshot-attributes`.
    Full,
}

/// A snapshot.
pub fn snapshot(ctx: &Ctx<'_>, s: &Snapshot, view: SnapshotView) -> Value {
    let mv = ctx.version;
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id.to_string()));
    m.insert("name".into(), json!(s.name));
    m.insert("description".into(), json!(s.description));
    m.insert("volume_id".into(), json!(s.volume_id.to_string()));
    m.insert("size".into(), json!(s.size));
    m.insert("status".into(), json!(s.status.as_str()));
    m.insert("metadata".into(), json!(s.metadata));
    m.insert("created_at".into(), json!(s.created_at.to_string()));
    m.insert("updated_at".into(), json!(s.updated_at.to_string()));
    if mv.at_least(14) {
        m.insert("group_snapshot_id".into(), json!(s.group_snapshot_id.map(|g| g.to_string())));
    }
    if mv.at_least(41) {
        m.insert("user_id".into(), json!(s.user_id));
    }
    if mv.at_least(65) {
        m.insert("consumes_quota".into(), json!(s.consumes_quota));
    }
    if view == SnapshotView::Full && ctx.caller.may(rules::SNAPSHOT_EXTENDED_ATTRIBUTES, &s.project_id) {
        m.insert("os-extended-snapshot-attributes:progress".into(), json!(s.progress));
        m.insert("os-extended-snapshot-attributes:project_id".into(), json!(s.project_id));
    }
    Value::Object(m)
}

/// An attachment's `connection_info` as the attachments API shows it: the export's
/// data at the top level beside `driver_volume_type`, plus `attachment_id`.
pub fn flat_connection_info(a: &Attachment) -> Value {
    let Some(info) = &a.connection_info else { return json!({}) };
    let mut m = info.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    m.insert("driver_volume_type".into(), info.get("driver_volume_type").cloned().unwrap_or(Value::Null));
    m.insert("attachment_id".into(), json!(a.id.to_string()));
    Value::Object(m)
}

/// An attachment; `detail` adds modes, times and `connection_info`.
pub fn attachment(a: &Attachment, detail: bool) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(a.id.to_string()));
    m.insert("status".into(), json!(a.attach_status.as_str()));
    m.insert("instance".into(), json!(a.instance_uuid));
    m.insert("volume_id".into(), json!(a.volume_id.to_string()));
    if detail {
        m.insert("attach_mode".into(), json!(a.attach_mode.as_str()));
        m.insert("attached_at".into(), json!(a.attach_time.map(|t| t.to_string()).unwrap_or_default()));
        m.insert("detached_at".into(), json!(a.detach_time.map(|t| t.to_string()).unwrap_or_default()));
        m.insert("connection_info".into(), flat_connection_info(a));
    }
    Value::Object(m)
}

/// A group type: `group_specs` only to those policy lets read them.
pub fn group_type(ctx: &Ctx<'_>, t: &GroupType) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(t.id.to_string()));
    m.insert("name".into(), json!(t.name));
    m.insert("description".into(), json!(t.description));
    m.insert("is_public".into(), json!(t.is_public));
    if ctx.caller.authorize_own(rules::GROUP_TYPE_ACCESS_SPECS).is_ok() {
        m.insert("group_specs".into(), json!(t.group_specs));
    }
    Value::Object(m)
}

/// A group as create and plain lists show it: `id`, `name`.
pub fn group_summary(g: &Group) -> Value {
    json!({"id": g.id.to_string(), "name": g.name})
}

/// A group in full (show and `groups/detail`); `volumes` are its volumes' ids when
/// the request asked for them (3.25 `list_volume`).
pub fn group(ctx: &Ctx<'_>, g: &Group, volumes: Option<&[crate::ids::Id]>) -> Value {
    let mv = ctx.version;
    let mut m = Map::new();
    m.insert("id".into(), json!(g.id.to_string()));
    m.insert("status".into(), json!(g.status.as_str()));
    m.insert("availability_zone".into(), json!(g.availability_zone));
    m.insert("created_at".into(), json!(g.created_at.to_string()));
    m.insert("name".into(), json!(g.name));
    m.insert("description".into(), json!(g.description));
    m.insert("group_type".into(), json!(g.group_type_id.to_string()));
    m.insert("volume_types".into(), json!(g.volume_type_ids.iter().map(|t| t.to_string()).collect::<Vec<_>>()));
    if mv.at_least(14) {
        m.insert("group_snapshot_id".into(), json!(g.group_snapshot_id.map(|i| i.to_string())));
        m.insert("source_group_id".into(), json!(g.source_group_id.map(|i| i.to_string())));
    }
    if let (true, Some(vols)) = (mv.at_least(25), volumes) {
        m.insert("volumes".into(), json!(vols.iter().map(|v| v.to_string()).collect::<Vec<_>>()));
    }
    if mv.at_least(38) {
        m.insert("replication_status".into(), json!("disabled"));
    }
    if mv.at_least(58) && ctx.caller.may(rules::GROUP_PROJECT_ATTRIBUTE, &g.project_id) {
        m.insert("project_id".into(), json!(g.project_id));
    }
    Value::Object(m)
}

/// A group snapshot as create shows it: `id`, `name`, `group_type_id`.
pub fn group_snapshot_summary(s: &GroupSnapshot) -> Value {
    json!({"id": s.id.to_string(), "name": s.name, "group_type_id": s.group_type_id.to_string()})
}

/// A group snapshot in full (show and `group_snapshots/detail`).
pub fn group_snapshot(ctx: &Ctx<'_>, s: &GroupSnapshot) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id.to_string()));
    m.insert("group_id".into(), json!(s.group_id.to_string()));
    m.insert("group_type_id".into(), json!(s.group_type_id.to_string()));
    m.insert("status".into(), json!(s.status.as_str()));
    m.insert("created_at".into(), json!(s.created_at.to_string()));
    m.insert("name".into(), json!(s.name));
    m.insert("description".into(), json!(s.description));
    if ctx.version.at_least(58) && ctx.caller.may(rules::GROUP_SNAPSHOT_PROJECT_ATTRIBUTE, &s.project_id) {
        m.insert("project_id".into(), json!(s.project_id));
    }
    Value::Object(m)
}

/// A backup as create, update, import and plain lists show it: `id`, `name`, `links`.
pub fn backup_summary(ctx: &Ctx<'_>, b: &Backup) -> Value {
    let id = b.id.to_string();
    let [self_link, bookmark] = ctx.link_pair(&format!("backups/{id}"));
    json!({
        "id": id,
        "name": b.name,
        "links": [{"href": self_link, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}],
    })
}

/// A backup in full (show and `backups/detail`): `metadata` from 3.43, the project
/// (3.18) and user (3.56) to those policy lets see them; with `progress` hearth's
/// `progress` (`"42%"` of the source read by a running backup or restore), which
/// Cinder's views do not have.
pub fn backup(ctx: &Ctx<'_>, b: &Backup, progress: bool) -> Value {
    let Value::Object(mut m) = backup_summary(ctx, b) else { unreachable!("a summary is an object") };
    let mv = ctx.version;
    m.insert("status".into(), json!(b.status.as_str()));
    m.insert("size".into(), json!(b.size));
    m.insert("object_count".into(), json!(b.object_count));
    m.insert("availability_zone".into(), json!(b.availability_zone));
    m.insert("container".into(), json!(b.container));
    m.insert("created_at".into(), json!(b.created_at.to_string()));
    m.insert("updated_at".into(), json!(b.updated_at.to_string()));
    m.insert("description".into(), json!(b.description));
    m.insert("fail_reason".into(), json!(b.fail_reason));
    m.insert("volume_id".into(), json!(b.volume_id.to_string()));
    m.insert("is_incremental".into(), json!(b.is_incremental()));
    m.insert("has_dependent_backups".into(), json!(b.has_dependent_backups()));
    m.insert("snapshot_id".into(), json!(b.snapshot_id.map(|s| s.to_string())));
    m.insert("data_timestamp".into(), json!(b.data_timestamp.to_string()));
    if mv.at_least(43) {
        m.insert("metadata".into(), json!(b.metadata));
    }
    let attributes = ctx.caller.may(rules::BACKUP_PROJECT_ATTRIBUTE, &b.project_id);
    if mv.at_least(18) && attributes {
        m.insert("os-backup-project-attr:project_id".into(), json!(b.project_id));
    }
    if mv.at_least(56) && attributes {
        m.insert("user_id".into(), json!(b.user_id));
    }
    if progress {
        let pct = match (ctx.core.backups.live_progress(b.id), b.status) {
            (Some((done, total)), _) => crate::volume::backups::percent(done, total),
            (None, BackupStatus::Available) => 100,
            (None, _) => crate::volume::backups::percent(b.bytes_done, b.bytes_total),
        };
        m.insert("progress".into(), json!(format!("{pct}%")));
    }
    Value::Object(m)
}
