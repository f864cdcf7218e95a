//! Views: records rendered as the asked microversion shows them.
//!
//! A field newer than the request's microversion is never shown, admin-only fields
//! only to admins, and `os-vol-*` extension fields only in show and list responses.

use serde_json::{json, Map, Value};

use crate::api::Ctx;
use crate::model::{Volume, VolumeType};
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

/// A volume.
pub fn volume(ctx: &Ctx<'_>, v: &Volume, view: VolumeView) -> Value {
    let id = v.id.to_string();
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    m.insert("name".into(), json!(v.name));
    m.insert("links".into(), ctx.links(&format!("volumes/{id}")));
    if view == VolumeView::Brief {
        return Value::Object(m);
    }
    let admin = ctx.caller.is_admin;
    let mv = ctx.version;
    let mut metadata = v.metadata.clone();
    for k in VISIBLE_ADMIN_METADATA {
        if let Some(val) = v.admin_metadata.get(*k) {
            metadata.insert(k.to_string(), val.clone());
        }
    }
    m.insert("description".into(), json!(v.description));
    m.insert("size".into(), json!(v.size));
    m.insert("status".into(), json!(v.status.as_str()));
    m.insert("availability_zone".into(), json!(v.availability_zone));
    m.insert("created_at".into(), json!(v.created_at.to_string()));
    m.insert("updated_at".into(), json!(v.updated_at.to_string()));
    m.insert("attachments".into(), json!([]));
    m.insert("metadata".into(), json!(metadata));
    m.insert("volume_type".into(), json!(v.volume_type_name));
    m.insert(
        "snapshot_id".into(),
        json!(v.snapshot_id.map(|i| i.to_string())),
    );
    m.insert(
        "source_volid".into(),
        json!(v.source_volid.map(|i| i.to_string())),
    );
    m.insert("user_id".into(), json!(v.user_id));
    m.insert(
        "bootable".into(),
        json!(if v.bootable { "true" } else { "false" }),
    );
    m.insert("encrypted".into(), json!(false));
    m.insert("replication_status".into(), json!("disabled"));
    m.insert("consistencygroup_id".into(), Value::Null);
    m.insert("multiattach".into(), json!(v.multiattach));
    if admin {
        m.insert("migration_status".into(), json!(v.migration_status));
    }
    if mv.at_least(13) {
        m.insert("group_id".into(), Value::Null);
    }
    if mv.at_least(21) && admin {
        m.insert("provider_id".into(), Value::Null);
    }
    if mv.at_least(48) {
        m.insert("service_uuid".into(), Value::Null);
        m.insert("shared_targets".into(), json!(false));
    }
    if mv.at_least(61) && admin {
        m.insert("cluster_name".into(), Value::Null);
    }
    if mv.at_least(63) {
        m.insert("volume_type_id".into(), json!(v.volume_type_id.to_string()));
    }
    if mv.at_least(64) {
        m.insert("encryption_key_id".into(), Value::Null);
    }
    if mv.at_least(65) {
        m.insert("consumes_quota".into(), json!(v.consumes_quota));
    }
    if view == VolumeView::Full {
        m.insert("os-vol-tenant-attr:tenant_id".into(), json!(v.project_id));
        if admin {
            m.insert("os-vol-host-attr:host".into(), json!(v.host));
            m.insert(
                "os-vol-mig-status-attr:migstat".into(),
                json!(v.migration_status),
            );
            m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
        }
    }
    Value::Object(m)
}

/// A volume type; non-admins see only the user-visible extra specs.
pub fn volume_type(ctx: &Ctx<'_>, t: &VolumeType) -> Value {
    let specs: Map<String, Value> = t
        .extra_specs
        .iter()
        .filter(|(k, _)| ctx.caller.is_admin || spec_visible_to_users(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": specs,
        "qos_specs_id": null,
    })
}
