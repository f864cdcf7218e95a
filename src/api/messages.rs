//! `/messages` (3.3): list, show, delete user messages.
//!
//! From 3.5 lists are paged, sorted and filtered, as Cinder's are; from 3.31 a
//! non-admin may filter only on Cinder's message resource filters, and from 3.34
//! admins may use `key~` (substring) filters. Before 3.5 every parameter is ignored.

use serde_json::{json, Value};

use crate::api::{params, views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::query::ColumnQuery;

/// The filters any caller may use (Cinder's `resource_filters.json`).
pub const USER_FILTERS: &[&str] = &["resource_uuid", "resource_type", "event_id", "request_id", "message_level"];

/// Columns of a message, for admins' filters and everyone's sorts.
fn column(k: &str) -> Option<&'static str> {
    Some(match k {
        "id" => "id",
        "project_id" => "project_id",
        "request_id" => "request_id",
        "resource_type" => "resource_type",
        "resource_uuid" => "resource_uuid",
        "event_id" => "event_id",
        "message_level" => "message_level",
        "action_id" => "action_id",
        "detail_id" => "detail_id",
        "created_at" => "created_at",
        "expires_at" => "expires_at",
        _ => return None,
    })
}

fn query(ctx: &Ctx<'_>) -> Result<ColumnQuery> {
    let mut q = ColumnQuery::default();
    if !ctx.version.at_least(5) {
        return Ok(q);
    }
    let mut vq = crate::query::ListQuery::default();
    params::paging_only(ctx, &mut vq)?;
    (q.limit, q.marker, q.offset) = (vq.limit, vq.marker, vq.offset);
    for (k, d) in params::sort_pairs(ctx)? {
        q.sort.push((column(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?, d));
    }
    let admin = ctx.caller.is_admin;
    let mut invalid = Vec::new();
    for (raw, v) in &ctx.query {
        if matches!(raw.as_str(), "limit" | "marker" | "offset" | "sort" | "sort_key" | "sort_dir") {
            continue;
        }
        if !raw.is_ascii() {
            return Err(Error::Invalid("Filter keys can only contain ASCII characters.".into()));
        }
        let (key, like) = match raw.strip_suffix('~') {
            Some(k) if ctx.version.at_least(34) => (k, true),
            _ => (raw.as_str(), false),
        };
        let user_ok = USER_FILTERS.contains(&raw.as_str());
        if ctx.version.at_least(31) && !admin && !user_ok {
            // cinderclient always sends all_tenants: not held against anyone.
            if raw != "all_tenants" {
                invalid.push(raw.clone());
            }
            continue;
        }
        match column(key) {
            Some(col) if like => q.like.push((col, v.clone())),
            Some(col) => q.exact.push((col, v.clone())),
            None if raw == "all_tenants" => {}
            // A filter on something messages do not have matches nothing (Cinder).
            None => q.match_nothing = true,
        }
    }
    if !invalid.is_empty() {
        return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    Ok(q)
}

/// `GET /messages`
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let q = query(ctx)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let messages = ctx.core.list_messages(&ctx.caller, q)?;
    let items: Vec<Value> = messages.iter().map(|m| views::message(ctx, m)).collect();
    let mut out = json!({ "messages": items });
    if messages.len() == limit {
        if let Some(last) = messages.last() {
            out["messages_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /messages/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let m = ctx.core.get_message(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"message": views::message(ctx, &m)})))
}

/// `DELETE /messages/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_message(&ctx.caller, id)?;
    Ok(Reply::empty(204))
}
