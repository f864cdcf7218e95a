//! `/group_snapshots` (3.14): create, list, detail, show, delete, and the
//! `reset_status` action (3.19).

use serde_json::{json, Value};

use crate::api::body::element;
use crate::api::params::{self, GroupListSpec};
use crate::api::volumes::{action_body, single_action};
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::GroupSnapshotStatus;
use crate::query::GroupQuery;

const LIST: GroupListSpec = GroupListSpec {
    sortable: &["id", "name", "description", "status", "group_id", "group_type_id", "created_at", "updated_at"],
    user_filters: &["name", "status", "group_id"],
    admin_filters: &["group_type_id", "project_id", "user_id", "id", "description"],
    control: &[],
    strict: true,
};

/// `POST /group_snapshots`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "group_snapshot")?;
    b.only("group_snapshot", &["group_id", "name", "description"])?;
    let group_id = b.req_str("group_id")?;
    if Id::parse(&group_id).is_none() {
        return Err(Error::Invalid(format!(
            "Invalid input for field/attribute group_id. Value: {group_id}. It is not a UUID."
        )));
    }
    let name = b.opt_str("name")?.map(|s| s.trim().to_string());
    let description = b.opt_str("description")?.map(|s| s.trim().to_string());
    let gs = ctx.core.create_group_snapshot(&ctx.caller, &group_id, name, description)?;
    Ok(Reply::json(202, json!({"group_snapshot": views::group_snapshot_summary(&gs)})))
}

/// `GET /group_snapshots` and `GET /group_snapshots/detail`; paging, sorting and
/// filters from 3.29, as Cinder.
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let q = if ctx.version.at_least(29) { params::group_query(ctx, &LIST)? } else { GroupQuery::default() };
    let limit = q.limit.unwrap_or(usize::MAX);
    let all_tenants = ctx.version.at_least(29) && ctx.flag("all_tenants")?;
    let (snaps, _) = ctx.core.list_group_snapshots(&ctx.caller, q, all_tenants, false)?;
    let items: Vec<Value> = snaps
        .iter()
        .map(|s| if detail { views::group_snapshot(ctx, s) } else { json!({"id": s.id.to_string(), "name": s.name}) })
        .collect();
    let mut out = json!({ "group_snapshots": items });
    if snaps.len() == limit {
        if let Some(last) = snaps.last() {
            out["group_snapshot_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /group_snapshots/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let gs = ctx.core.get_group_snapshot(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"group_snapshot": views::group_snapshot(ctx, &gs)})))
}

/// `DELETE /group_snapshots/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_group_snapshot(&ctx.caller, id)?;
    Ok(Reply::empty(202))
}

/// `POST /group_snapshots/{id}/action`: `reset_status` (3.19).
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = single_action(body.as_ref())?;
    match name {
        "reset_status" if ctx.version.at_least(19) => {
            let b = action_body(name, value)?;
            b.only("reset_status", &["status"])?;
            let s = b
                .req_str("status")
                .map_err(|_| Error::Invalid("Invalid GroupSnapshot Status: The 'status' can not be empty.".into()))?;
            let status: GroupSnapshotStatus = s.trim().to_ascii_lowercase().parse().map_err(|_| {
                let valid: Vec<&str> = GroupSnapshotStatus::ALL.iter().map(|s| s.as_str()).collect();
                Error::Invalid(format!(
                    "Invalid GroupSnapshot Status: Group snapshot status: {s} is invalid, valid statuses are: {}.",
                    valid.join(", ")
                ))
            })?;
            ctx.core.reset_group_snapshot_status(&ctx.caller, id, status)?;
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}
