//! `/snapshots`: create, list, detail, show, update, delete, actions.

use serde_json::{json, Value};

use crate::api::body::{element, Obj};
use crate::api::views::{self, SnapshotView};
use crate::api::{params, Ctx, Reply};
use crate::error::{Error, Result};
use crate::model::SnapshotStatus;
use crate::query::SnapshotQuery;
use crate::volume::snapshots::{NewSnapshot, SnapshotUpdate};

/// `POST /snapshots`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "snapshot")?;
    // Cinder's schema allows `"volume_id": null`, which then names no volume: 404.
    if b.has("volume_id") && b.get("volume_id").is_none() {
        return Err(Error::NotFound("Volume could not be found: the snapshot's volume_id is null.".into()));
    }
    let req = NewSnapshot {
        volume_id: b.req_str("volume_id")?,
        name: b.opt_str("name")?.or(b.opt_str("display_name")?),
        description: b.opt_str("description")?.or(b.opt_str("display_description")?),
        force: b.opt_bool("force")?,
        metadata: b.opt_str_map("metadata")?.unwrap_or_default(),
    };
    let s = ctx.core.create_snapshot(&ctx.caller, req, ctx.version.at_least(66))?;
    Ok(Reply::json(202, json!({"snapshot": views::snapshot(ctx, &s, SnapshotView::Plain)})))
}

const CONTROL: &[&str] = &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants"];

fn sort_column(k: &str) -> Option<&'static str> {
    Some(match k {
        "id" => "id",
        "name" | "display_name" => "name",
        "status" => "status",
        "size" => "size",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "volume_id" => "volume_id",
        "project_id" => "project_id",
        _ => return None,
    })
}

fn query(ctx: &Ctx<'_>) -> Result<SnapshotQuery> {
    let mut vq = crate::query::ListQuery::default();
    params::paging_only(ctx, &mut vq)?;
    let mut q = SnapshotQuery { limit: vq.limit, marker: vq.marker, offset: vq.offset, ..Default::default() };
    for (k, d) in params::sort_pairs(ctx)? {
        let col = sort_column(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?;
        q.sort.push((col, d));
    }
    let strict = ctx.version.at_least(31);
    let mut invalid = Vec::new();
    for (k, v) in &ctx.query {
        match k.as_str() {
            k if CONTROL.contains(&k) => {}
            "name" | "display_name" => q.exact.push(("name", v.clone())),
            "name~" if ctx.version.at_least(34) => q.name_like = Some(v.clone()),
            "status" => q.exact.push(("status", v.clone())),
            "volume_id" => q.exact.push(("volume_id", v.clone())),
            "project_id" if ctx.caller.is_admin => q.exact.push(("project_id", v.clone())),
            "metadata" => q.metadata.extend(params::metadata_filter(v)?),
            other => invalid.push(other.to_string()),
        }
    }
    if strict && !invalid.is_empty() {
        return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    Ok(q)
}

/// `GET /snapshots` and `GET /snapshots/detail`
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let q = query(ctx)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let all_tenants = ctx.flag("all_tenants")?;
    let with_count = ctx.version.at_least(45) && ctx.flag("with_count")?;
    let (snaps, count) = ctx.core.list_snapshots(&ctx.caller, q, all_tenants, with_count)?;
    let view = if detail { SnapshotView::Full } else { SnapshotView::Plain };
    let items: Vec<Value> = snaps.iter().map(|s| views::snapshot(ctx, s, view)).collect();
    let mut out = json!({ "snapshots": items });
    if limit > 0 && snaps.len() == limit {
        if let Some(last) = snaps.last() {
            out["snapshots_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    if let Some(n) = count {
        out["count"] = json!(n);
    }
    Ok(Reply::json(200, out))
}

/// `GET /snapshots/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let s = ctx.core.get_snapshot(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"snapshot": views::snapshot(ctx, &s, SnapshotView::Full)})))
}

/// `PUT /snapshots/{id}`
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "snapshot")?;
    b.only("snapshot", &["name", "description", "display_name", "display_description"])?;
    let upd = SnapshotUpdate {
        name: b.opt_str("name")?.or(b.opt_str("display_name")?),
        description: b.opt_str("description")?.or(b.opt_str("display_description")?),
    };
    let s = ctx.core.update_snapshot(&ctx.caller, id, upd)?;
    Ok(Reply::json(200, json!({"snapshot": views::snapshot(ctx, &s, SnapshotView::Plain)})))
}

/// `DELETE /snapshots/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_snapshot(&ctx.caller, id, false)?;
    Ok(Reply::empty(202))
}

fn status_of(b: &Obj<'_>) -> Result<SnapshotStatus> {
    let s = b.req_str("status")?;
    s.parse().map_err(|_| Error::Invalid(format!("Must specify a valid status, not '{s}'.")))
}

/// `POST /snapshots/{id}/action`
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = crate::api::volumes::single_action(body.as_ref())?;
    match name {
        "os-reset_status" => {
            let b = crate::api::volumes::action_body(name, value)?;
            ctx.core.reset_snapshot_status(&ctx.caller, id, status_of(&b)?)?;
        }
        "os-force_delete" => {
            crate::api::volumes::no_params(name, value)?;
            ctx.core.delete_snapshot(&ctx.caller, id, true)?;
        }
        "os-update_snapshot_status" => {
            let b = crate::api::volumes::action_body(name, value)?;
            let progress = b.opt_str("progress")?;
            ctx.core.update_snapshot_status(&ctx.caller, id, status_of(&b)?, progress)?;
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}
