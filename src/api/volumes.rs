//! `/volumes`: create, list, show, update, delete, actions, metadata, summary.

use serde_json::{json, Value};

use crate::api::body::{element, Obj};
use crate::api::views::{self, VolumeView};
use crate::api::{params, Ctx, Reply};
use crate::error::{Error, Result};
use crate::flow::create_volume::NewVolume;
use crate::model::{AttachMode, AttachStatus, VolumeStatus};
use crate::policy::rules;
use crate::query::ListQuery;
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
    for (key, what) in [("imageRef", "an image"), ("consistencygroup_id", "a consistency group")] {
        if v.get(key).is_some() {
            return Err(Error::Invalid(format!(
                "Invalid input received: creating a volume in or from {what} is not supported by hearth."
            )));
        }
    }
    if v.get("group_id").is_some() && !ctx.version.at_least(13) {
        return Err(Error::Invalid(
            "Invalid input for volume: additional properties are not allowed (group_id needs microversion 3.13)."
                .into(),
        ));
    }
    // A volume from a backup (3.47); before 3.47 the key is ignored, as Cinder does.
    let backup_id = if ctx.version.at_least(47) { v.opt_str("backup_id")? } else { None };
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
        group_id: v.opt_str("group_id")?,
        backup_id,
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
    let next =
        (limit > 0 && vols.len() == limit).then(|| vols.last().map(|v| ctx.next_link(&v.id.to_string()))).flatten();
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

/// Actions Cinder has that hearth does not provide.
const NOT_PROVIDED: &[&str] = &[
    "os-migrate_volume",
    "os-migrate_volume_completion",
    "os-volume_upload_image",
    "os-reimage",
    "os-extend_volume_completion",
];

/// A parameterless action's value must be `null` or an object.
pub fn no_params(name: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null | Value::Object(_) => Ok(()),
        other => Err(Error::Invalid(format!("Invalid value for action {name}: expected null or {{}}, got {other}."))),
    }
}

/// An action's object value.
pub fn action_body<'a>(name: &str, v: &'a Value) -> Result<Obj<'a>> {
    match v {
        Value::Object(m) => Ok(Obj::wrap(m)),
        other => Err(Error::Invalid(format!("Invalid value for action {name}: expected an object, got {other}."))),
    }
}

/// The one action an action body names, with its value.
pub fn single_action(body: Option<&Value>) -> Result<(&str, &Value)> {
    let Some(Value::Object(map)) = body else {
        return Err(Error::Invalid("The action body must be a JSON object naming one action.".into()));
    };
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((name, value)), None) => Ok((name.as_str(), value)),
        _ => Err(Error::Invalid("The action body must name exactly one action.".into())),
    }
}

fn required<T>(v: Option<T>, key: &str, action: &str) -> Result<T> {
    v.ok_or_else(|| Error::Invalid(format!("Invalid input received: '{key}' is a required property of {action}.")))
}

fn connector_arg(name: &str, value: &Value) -> Result<Value> {
    let b = action_body(name, value)?;
    match b.get("connector") {
        Some(c @ Value::Object(_)) => Ok(c.clone()),
        Some(other) => Err(Error::Invalid(format!("Invalid connector {other}: expected an object."))),
        None => Err(Error::Invalid(format!("Invalid input received: 'connector' is a required property of {name}."))),
    }
}

fn mode_arg(b: &Obj<'_>) -> Result<Option<AttachMode>> {
    b.opt_str("mode")?
        .map(|m| {
            m.parse::<AttachMode>().map_err(|_| Error::Invalid(format!("Invalid attach mode '{m}': use rw or ro.")))
        })
        .transpose()
}

/// `POST /volumes/{id}/action`
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = single_action(body.as_ref())?;
    let core = ctx.core;
    let caller = &ctx.caller;
    match name {
        "os-extend" => {
            let b = action_body(name, value)?;
            let new_size = required(b.opt_uint("new_size")?, "new_size", name)?;
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
            caller.authorize_own(rules::VOLUME_ADMIN_FORCE_DELETE)?;
            core.delete_volume(caller, id, false, true)?;
        }
        "os-update_readonly_flag" => {
            let b = action_body(name, value)?;
            core.set_volume_readonly(caller, id, required(b.opt_bool("readonly")?, "readonly", name)?)?;
        }
        "os-set_bootable" => {
            let b = action_body(name, value)?;
            core.set_volume_bootable(caller, id, required(b.opt_bool("bootable")?, "bootable", name)?)?;
            return Ok(Reply::empty(200));
        }
        "os-reserve" => {
            no_params(name, value)?;
            core.reserve(caller, id)?;
        }
        "os-unreserve" => {
            no_params(name, value)?;
            core.unreserve(caller, id)?;
        }
        "os-begin_detaching" => {
            no_params(name, value)?;
            core.begin_detaching(caller, id)?;
        }
        "os-roll_detaching" => {
            no_params(name, value)?;
            core.roll_detaching(caller, id)?;
        }
        "os-initialize_connection" => {
            let connector = connector_arg(name, value)?;
            let info = core.initialize_connection(caller, id, connector)?;
            return Ok(Reply::json(200, json!({ "connection_info": info })));
        }
        "os-terminate_connection" => {
            let connector = connector_arg(name, value)?;
            core.terminate_connection(caller, id, connector)?;
        }
        "os-attach" => {
            let b = action_body(name, value)?;
            let instance = b.opt_str("instance_uuid")?;
            let host = b.opt_str("host_name")?;
            if instance.is_none() && host.is_none() {
                return Err(Error::Invalid(
                    "Invalid request to attach volume to an invalid target: give instance_uuid or host_name.".into(),
                ));
            }
            core.attach(caller, id, instance, host, b.opt_str("mountpoint")?, mode_arg(&b)?)?;
        }
        "os-detach" => {
            let attachment = match value {
                Value::Object(m) => Obj::wrap(m).opt_str("attachment_id")?,
                _ => None,
            };
            core.detach(caller, id, attachment.as_deref())?;
        }
        "os-force_detach" => {
            let (attachment, connector) = match value {
                Value::Object(m) => (Obj::wrap(m).opt_str("attachment_id")?, m.get("connector").cloned()),
                _ => (None, None),
            };
            core.force_detach(caller, id, attachment.as_deref(), connector)?;
        }
        "os-retype" => {
            let b = action_body(name, value)?;
            core.retype_volume(caller, id, &b.req_str("new_type")?, b.opt_str("migration_policy")?.as_deref())?;
        }
        "revert" if ctx.version.at_least(40) => {
            let b = action_body(name, value)?;
            core.revert_volume(caller, id, &b.req_str("snapshot_id")?)?;
        }
        other if NOT_PROVIDED.contains(&other) => {
            // Check the volume exists first, so a wrong id is still a 404.
            core.get_volume(caller, id)?;
            return Err(Error::NotImplemented(format!("The volume action {other} is not provided by hearth.")));
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}
