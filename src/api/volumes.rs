//! `/volumes`: create, list, show, update, delete, actions, metadata, summary.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::api::body::{self, element, Obj};
use crate::api::views::{self, VolumeView};
use crate::api::{params, Ctx, Reply};
use crate::error::{Error, Result};
use crate::flow::create_volume::NewVolume;
use crate::model::{AttachStatus, VolumeStatus};
use crate::store::ListQuery;
use crate::volume::volumes::{StatusReset, VolumeUpdate};

/// Name and description, with Cinder's `display_*` aliases.
fn name_and_description(v: &Obj<'_>) -> Result<(Option<String>, Option<String>)> {
    let name = match v.opt_str("name")? {
        Some(n) => Some(n),
        None => v.opt_str("display_name")?,
    };
    let description = match v.opt_str("description")? {
        Some(d) => Some(d),
        None => v.opt_str("display_description")?,
    };
    Ok((name, description))
}

/// `POST /volumes`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let v = element(ctx.body.as_ref(), "volume")?;
    if v.opt_bool("multiattach")? == Some(true) {
        return Err(Error::Invalid(
            "Invalid input received: multiattach cannot be requested in the volume body; \
             use a volume type with multiattach=\"<is> True\"."
                .into(),
        ));
    }
    for (key, what) in
        [("imageRef", "an image"), ("consistencygroup_id", "a consistency group"), ("group_id", "a group")]
    {
        if v.get(key).is_some() {
            return Err(Error::Invalid(format!(
                "Invalid input received: creating a volume in or from {what} is not supported by hearth."
            )));
        }
    }
    if ctx.version.at_least(47) && v.get("backup_id").is_some() {
        return Err(Error::Invalid(
            "Invalid input received: creating a volume from a backup is not supported by hearth.".into(),
        ));
    }
    let (name, description) = name_and_description(&v)?;
    let req = NewVolume {
        size: v.opt_uint("size")?,
        name,
        description,
        volume_type: v.opt_str("volume_type")?,
        availability_zone: v.opt_str("availability_zone")?,
        metadata: v.opt_str_map("metadata")?.unwrap_or_default(),
        snapshot_id: v.opt_str("snapshot_id")?,
        source_volid: v.opt_str("source_volid")?,
    };
    if req.size == Some(0) {
        return Err(Error::Invalid("Invalid input received: size must be an integer greater than 0.".into()));
    }
    let vol = ctx.core.create_volume(&ctx.caller, req)?;
    Ok(Reply::json(202, json!({"volume": views::volume(ctx, &vol, VolumeView::Plain)})))
}

/// `GET /volumes` and `GET /volumes/detail`
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let mut q = ListQuery::default();
    params::paging(ctx, &mut q)?;
    params::volume_filters(ctx, &mut q)?;
    let all_tenants = ctx.flag("all_tenants")?;
    let with_count = ctx.version.at_least(45) && ctx.flag("with_count")?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let (vols, count) = ctx.core.list_volumes(&ctx.caller, q, all_tenants, with_count)?;
    let view = if detail { VolumeView::Full } else { VolumeView::Brief };
    #[derive(serde::Serialize)]
    struct Out<'a> {
        volumes: Vec<views::VolumeOut<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        volumes_links: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    }
    let next = (vols.len() == limit).then(|| vols.last().map(|v| ctx.next_link(&v.id.to_string()))).flatten();
    let out = Out { volumes: vols.iter().map(|v| views::volume(ctx, v, view)).collect(), volumes_links: next, count };
    Ok(Reply::json(200, out))
}

/// `GET /volumes/summary` (3.12)
pub fn summary(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let all_tenants = ctx.flag("all_tenants")?;
    let s = ctx.core.volume_summary(&ctx.caller, ListQuery::default(), all_tenants)?;
    let mut out = json!({"total_size": s.total_size, "total_count": s.total_count});
    if ctx.version.at_least(36) {
        out["metadata"] = json!(s.metadata);
    }
    Ok(Reply::json(200, json!({ "volume-summary": out })))
}

/// `GET /volumes/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let v = ctx.core.get_volume(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"volume": views::volume(ctx, &v, VolumeView::Full)})))
}

/// `PUT /volumes/{id}`
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let v = element(ctx.body.as_ref(), "volume")?;
    v.only("volume", &["name", "description", "display_name", "display_description", "metadata"])?;
    let (name, description) = name_and_description(&v)?;
    let upd = VolumeUpdate { name, description, metadata: v.opt_str_map("metadata")? };
    let vol = ctx.core.update_volume(&ctx.caller, id, upd)?;
    Ok(Reply::json(200, json!({"volume": views::volume(ctx, &vol, VolumeView::Plain)})))
}

/// `DELETE /volumes/{id}[?cascade=true][&force=true]`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let cascade = ctx.flag("cascade")?;
    let force = ctx.version.at_least(23) && ctx.flag("force")?;
    ctx.core.delete_volume(&ctx.caller, id, cascade, force)?;
    Ok(Reply::empty(202))
}

/// Actions Cinder has that hearth does not provide yet.
const NOT_YET: &[&str] = &[
    "os-reserve",
    "os-unreserve",
    "os-initialize_connection",
    "os-terminate_connection",
    "os-attach",
    "os-detach",
    "os-begin_detaching",
    "os-roll_detaching",
    "os-force_detach",
    "os-retype",
    "os-migrate_volume",
    "os-migrate_volume_completion",
    "os-volume_upload_image",
    "os-reimage",
    "revert",
];

/// A parameterless action's value must be `null` or an object.
fn no_params(name: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null | Value::Object(_) => Ok(()),
        other => Err(Error::Invalid(format!("Invalid value for action {name}: expected null or {{}}, got {other}."))),
    }
}

fn action_body<'a>(name: &str, v: &'a Value) -> Result<Obj<'a>> {
    match v {
        Value::Object(m) => Ok(Obj::wrap(m)),
        other => Err(Error::Invalid(format!("Invalid value for action {name}: expected an object, got {other}."))),
    }
}

/// `POST /volumes/{id}/action`
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let Some(Value::Object(map)) = body.as_ref() else {
        return Err(Error::Invalid("The action body must be a JSON object naming one action.".into()));
    };
    let mut entries = map.iter();
    let (Some((name, value)), None) = (entries.next(), entries.next()) else {
        return Err(Error::Invalid("The action body must name exactly one action.".into()));
    };
    let core = ctx.core;
    let caller = &ctx.caller;
    match name.as_str() {
        "os-extend" => {
            let b = action_body(name, value)?;
            let new_size = b.opt_uint("new_size")?.ok_or_else(|| {
                Error::Invalid("Invalid input received: 'new_size' is a required property of os-extend.".into())
            })?;
            core.extend_volume(caller, id, new_size, ctx.version.at_least(42))?;
        }
        "os-reset_status" => {
            let b = action_body(name, value)?;
            let reset = StatusReset {
                status: b
                    .opt_str("status")?
                    .map(|s| {
                        s.parse::<VolumeStatus>()
                            .map_err(|_| Error::Invalid(format!("Must specify a valid status, not '{s}'.")))
                    })
                    .transpose()?,
                attach_status: b
                    .opt_str("attach_status")?
                    .map(|s| {
                        s.parse::<AttachStatus>()
                            .map_err(|_| Error::Invalid(format!("Must specify a valid attach status, not '{s}'.")))
                    })
                    .transpose()?,
                migration_status: b.opt_str("migration_status")?,
            };
            if reset.status.is_none() && reset.attach_status.is_none() && reset.migration_status.is_none() {
                return Err(Error::Invalid(
                    "Must specify 'status', 'attach_status' or 'migration_status' for update.".into(),
                ));
            }
            core.reset_volume_status(caller, id, reset)?;
        }
        "os-force_delete" => {
            no_params(name, value)?;
            caller.require_admin("volume_extension:volume_admin_actions:force_delete")?;
            core.delete_volume(caller, id, false, true)?;
        }
        "os-update_readonly_flag" => {
            let b = action_body(name, value)?;
            let ro = b.opt_bool("readonly")?.ok_or_else(|| {
                Error::Invalid(
                    "Invalid input received: 'readonly' is a required property of os-update_readonly_flag.".into(),
                )
            })?;
            core.set_volume_readonly(caller, id, ro)?;
        }
        "os-set_bootable" => {
            let b = action_body(name, value)?;
            let bootable = b.opt_bool("bootable")?.ok_or_else(|| {
                Error::Invalid("Invalid input received: 'bootable' is a required property of os-set_bootable.".into())
            })?;
            core.set_volume_bootable(caller, id, bootable)?;
            return Ok(Reply::empty(200));
        }
        other if NOT_YET.contains(&other) => {
            // Check the volume exists first, so a wrong id is still a 404.
            core.get_volume(caller, id)?;
            return Err(Error::NotImplemented(format!(
                "The volume action {other} is not implemented by this hearth version."
            )));
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}

/// `GET /volumes/{id}/metadata`
pub fn metadata_show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let m = ctx.core.volume_metadata(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({ "metadata": m })))
}

fn metadata_body(ctx: &Ctx<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    match ctx.body.as_ref() {
        Some(Value::Object(m)) => match m.get(key) {
            Some(Value::Object(inner)) => body::str_map(key, inner),
            Some(other) => {
                Err(Error::Invalid(format!("Invalid input for field/attribute {key}: {other} is not an object.")))
            }
            None => Err(Error::Invalid(format!("Missing required element '{key}' in request body."))),
        },
        _ => Err(Error::Invalid(format!("Missing required element '{key}' in request body."))),
    }
}

/// `POST` (merge) and `PUT` (replace) `/volumes/{id}/metadata`
pub fn metadata_set(ctx: &mut Ctx<'_>, id: &str, replace: bool) -> Result<Reply> {
    let meta = metadata_body(ctx, "metadata")?;
    let all = ctx.core.set_volume_metadata(&ctx.caller, id, meta, replace)?;
    Ok(Reply::json(200, json!({ "metadata": all })))
}

/// `GET /volumes/{id}/metadata/{key}`
pub fn metadata_key_show(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    let m = ctx.core.volume_metadata(&ctx.caller, id)?;
    let v = m.get(key).ok_or_else(|| Error::NotFound("Metadata item was not found.".into()))?;
    Ok(Reply::json(200, json!({ "meta": { key: v } })))
}

/// `PUT /volumes/{id}/metadata/{key}`
pub fn metadata_key_set(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    let meta = metadata_body(ctx, "meta")?;
    if meta.len() > 1 {
        return Err(Error::Invalid("Request body contains too many items.".into()));
    }
    if !meta.contains_key(key) {
        return Err(Error::Invalid("Request body and URI mismatch.".into()));
    }
    ctx.core.set_volume_metadata(&ctx.caller, id, meta.clone(), false)?;
    Ok(Reply::json(200, json!({ "meta": meta })))
}

/// `DELETE /volumes/{id}/metadata/{key}`
pub fn metadata_key_delete(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    ctx.core.delete_volume_metadata(&ctx.caller, id, key)?;
    Ok(Reply::empty(200))
}
