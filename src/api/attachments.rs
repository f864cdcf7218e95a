//! `/attachments` (3.27+): create, update with a connector, complete (3.44),
//! delete, list, detail, show.

use serde_json::{json, Value};

use crate::api::body::element;
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::model::{AttachMode, AttachStatus};
use crate::query::AttachmentQuery;

/// `POST /attachments`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "attachment")?;
    let volume = b.req_str("volume_uuid")?;
    let connector = match b.get("connector") {
        None => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(other) => return Err(Error::Invalid(format!("Invalid connector {other}: expected an object."))),
    };
    let mode = match b.opt_str("mode")? {
        Some(_) if !ctx.version.at_least(54) => {
            return Err(Error::Invalid("Invalid input received: 'mode' needs microversion 3.54 or later.".into()))
        }
        Some(m) => Some(
            m.parse::<AttachMode>().map_err(|_| Error::Invalid(format!("Invalid attach mode '{m}': use rw or ro.")))?,
        ),
        None => None,
    };
    let a = ctx.core.attachment_create(&ctx.caller, &volume, b.opt_str("instance_uuid")?, connector, mode)?;
    Ok(Reply::json(200, json!({"attachment": views::attachment(&a, true)})))
}

/// `PUT /attachments/{id}`
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "attachment")?;
    let connector = match b.get("connector") {
        Some(c @ Value::Object(_)) => c.clone(),
        Some(other) => return Err(Error::Invalid(format!("Invalid connector {other}: expected an object."))),
        None => return Err(Error::Invalid("Invalid input received: 'connector' is a required property.".into())),
    };
    let a = ctx.core.attachment_update(&ctx.caller, id, connector)?;
    Ok(Reply::json(200, json!({"attachment": views::attachment(&a, true)})))
}

/// `POST /attachments/{id}/action`: `os-complete` (3.44).
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, _value) = crate::api::volumes::single_action(body.as_ref())?;
    match name {
        // cinderclient sends null, the SDK the attachment id: both are fine.
        "os-complete" if ctx.version.at_least(44) => {
            ctx.core.attachment_complete(&ctx.caller, id)?;
            Ok(Reply::empty(204))
        }
        other => Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
}

/// `DELETE /attachments/{id}`: 200 with the volume's remaining attachments.
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let remaining = ctx.core.attachment_delete(&ctx.caller, id)?;
    let items: Vec<Value> = remaining.iter().map(|a| views::attachment(a, false)).collect();
    Ok(Reply::json(200, json!({ "attachments": items })))
}

/// `GET /attachments/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let a = ctx.core.get_attachment(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"attachment": views::attachment(&a, true)})))
}

const CONTROL: &[&str] = &["limit", "offset", "marker", "sort", "sort_key", "sort_dir", "all_tenants", "with_count"];

/// `GET /attachments` and `GET /attachments/detail`
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let mut q = AttachmentQuery::default();
    let mut invalid = Vec::new();
    for (k, v) in &ctx.query {
        match k.as_str() {
            k if CONTROL.contains(&k) => {}
            "volume_id" => q.volume_id = Some(v.clone()),
            "instance_id" | "instance_uuid" => q.instance_id = Some(v.clone()),
            "status" | "attach_status" => {
                v.parse::<AttachStatus>().map_err(|_| Error::Invalid(format!("Invalid status filter '{v}'.")))?;
                q.status = Some(v.clone());
            }
            "project_id" if ctx.caller.is_admin => q.project = Some(v.clone()),
            other => invalid.push(other.to_string()),
        }
    }
    if ctx.version.at_least(31) && !invalid.is_empty() {
        return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    let mut page = crate::query::ListQuery::default();
    crate::api::params::paging_only(ctx, &mut page)?;
    q.limit = page.limit;
    q.offset = page.offset;
    let all_tenants = ctx.flag("all_tenants")? || q.project.is_some();
    let explicit_project = q.project.take();
    let mut list = ctx.core.list_attachments(&ctx.caller, q, all_tenants)?;
    if let Some(p) = explicit_project {
        list.retain(|a| a.project_id == p);
    }
    let items: Vec<Value> = list.iter().map(|a| views::attachment(a, detail)).collect();
    Ok(Reply::json(200, json!({ "attachments": items })))
}
