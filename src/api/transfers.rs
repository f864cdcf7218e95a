//! `/os-volume-transfer` (every microversion) and `/volume-transfers` (3.55): offer a
//! volume to another project, list, detail, show and delete offers, and accept one.
//!
//! Both routes serve the same records, as Cinder's two controllers do: only
//! `/volume-transfers` takes `no_snapshots`, and from 3.59 sorts as asked (newest
//! first by default; otherwise oldest first). The views follow the microversion on
//! either route: `no_snapshots` from 3.55, `source_project_id`,
//! `destination_project_id` and `accepted` from 3.57. An accepted transfer is gone, so
//! every transfer shown is unaccepted, with no destination yet.

use serde_json::{json, Value};

use crate::api::body::{element, Obj, MAX_STRING};
use crate::api::{params, Ctx, Reply};
use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::Transfer;
use crate::query::{ColumnQuery, ListQuery, SortDir};
use crate::volume::transfers::NewTransfer;

/// Which of the two routes a request came by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/os-volume-transfer`, Cinder's original extension.
    Extension,
    /// `/volume-transfers` (3.55).
    Versioned,
}

impl Route {
    /// The route of a path's first segment.
    pub fn of(segment: &str) -> Route {
        if segment == "volume-transfers" {
            Route::Versioned
        } else {
            Route::Extension
        }
    }
}

/// Refuse top-level keys other than `key`, as Cinder's schemas do.
fn only_element(ctx: &Ctx<'_>, key: &str) -> Result<()> {
    match ctx.body.as_ref() {
        Some(Value::Object(m)) => Obj::wrap(m).only("the request body", &[key]),
        _ => Ok(()),
    }
}

/// A transfer's name as Cinder takes it: `null`, or a string that is not empty once
/// stripped of surrounding spaces (and is stored stripped).
fn name_of(b: &Obj<'_>) -> Result<Option<String>> {
    match b.get("name") {
        None => Ok(None),
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                return Err(Error::Invalid(
                    "Invalid input for field/attribute name. The 'name' can not be empty.".into(),
                ));
            }
            if t.chars().count() > MAX_STRING {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute name. The 'name' can not be longer than {MAX_STRING} \
                     characters."
                )));
            }
            Ok(Some(t.to_string()))
        }
        Some(other) => Err(Error::Invalid(format!(
            "Invalid input for field/attribute name. Value: {other}. It is not of type 'string'."
        ))),
    }
}

/// `POST /os-volume-transfer`, `POST /volume-transfers`
pub fn create(ctx: &mut Ctx<'_>, route: Route) -> Result<Reply> {
    only_element(ctx, "transfer")?;
    let b = element(ctx.body.as_ref(), "transfer")?;
    let allowed: &[&str] = match route {
        Route::Versioned => &["volume_id", "name", "no_snapshots"],
        Route::Extension => &["volume_id", "name"],
    };
    b.only("transfer", allowed)?;
    let volume_id = b.req_str("volume_id")?;
    if Id::parse(&volume_id).is_none() {
        return Err(Error::Invalid(format!(
            "Invalid input for field/attribute volume_id. Value: {volume_id}. It is not a 'uuid'."
        )));
    }
    let req = NewTransfer { volume_id, name: name_of(&b)?, no_snapshots: b.opt_bool("no_snapshots")?.unwrap_or(false) };
    let offered = ctx.core.create_transfer(&ctx.caller, req)?;
    Ok(Reply::json(202, json!({"transfer": detail(ctx, &offered.transfer, Some(&offered.auth_key))})))
}

/// Parameters that are not filters.
const CONTROL: &[&str] = &["all_tenants", "limit", "marker", "offset", "sort", "sort_key", "sort_dir"];

fn sort_column(k: &str) -> Option<&'static str> {
    Some(match k {
        "id" => "id",
        "name" | "display_name" => "name",
        "volume_id" => "volume_id",
        "created_at" => "created_at",
        _ => return None,
    })
}

/// A list's query. A filter on anything else than what a transfer has matches nothing
/// (Cinder's answer is then an empty list, not an error).
fn query(ctx: &Ctx<'_>, route: Route) -> Result<ColumnQuery> {
    let mut paging = ListQuery::default();
    params::paging_only(ctx, &mut paging)?;
    let mut q = ColumnQuery { limit: paging.limit, marker: paging.marker, offset: paging.offset, ..Default::default() };
    if route == Route::Versioned && ctx.version.at_least(59) {
        for (k, d) in params::sort_pairs(ctx)? {
            let col = sort_column(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?;
            q.sort.push((col, d));
        }
    } else {
        q.sort = vec![("created_at", SortDir::Asc), ("id", SortDir::Asc)];
    }
    let flag = |k: &str, v: &str| crate::api::body::parse_bool(k, &Value::String(v.to_string()));
    for (k, v) in &ctx.query {
        match k.as_str() {
            k if CONTROL.contains(&k) => {}
            "name" | "display_name" => q.exact.push(("name", v.clone())),
            "id" => q.exact.push(("id", v.clone())),
            "volume_id" => q.exact.push(("volume_id", v.clone())),
            // The offering project is the store's project_id.
            "source_project_id" => q.exact.push(("project_id", v.clone())),
            // Narrows an admin's all_tenants list; a project's own list is its own.
            "project_id" => q.project = Some(v.clone()),
            "no_snapshots" => q.exact.push(("no_snapshots", (flag(k, v)? as i64).to_string())),
            // Every open transfer is unaccepted.
            "accepted" => q.match_nothing |= flag(k, v)?,
            _ => q.match_nothing = true,
        }
    }
    Ok(q)
}

/// `GET /os-volume-transfer[/detail]`, `GET /volume-transfers[/detail]`
pub fn list(ctx: &mut Ctx<'_>, route: Route, detailed: bool) -> Result<Reply> {
    let q = query(ctx, route)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let all_tenants = ctx.flag("all_tenants")?;
    let transfers = ctx.core.list_transfers(&ctx.caller, q, all_tenants)?;
    let items: Vec<Value> =
        transfers.iter().map(|t| if detailed { detail(ctx, t, None) } else { summary(ctx, t) }).collect();
    let mut out = json!({ "transfers": items });
    if transfers.len() == limit {
        if let Some(last) = transfers.last() {
            out["transfers_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /os-volume-transfer/{id}`, `GET /volume-transfers/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let t = ctx.core.get_transfer(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"transfer": detail(ctx, &t, None)})))
}

/// `DELETE /os-volume-transfer/{id}`, `DELETE /volume-transfers/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_transfer(&ctx.caller, id)?;
    Ok(Reply::empty(202))
}

/// `POST /os-volume-transfer/{id}/accept`, `POST /volume-transfers/{id}/accept`
pub fn accept(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    only_element(ctx, "accept")?;
    let b = element(ctx.body.as_ref(), "accept")?;
    b.only("accept", &["auth_key"])?;
    let key = match b.get("auth_key") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute auth_key. Value: {other}. It is not of type 'string' or 'integer'."
            )))
        }
        None => return Err(Error::Invalid("Invalid input received: 'auth_key' is a required property.".into())),
    };
    let t = ctx.core.accept_transfer(&ctx.caller, id, &key)?;
    Ok(Reply::json(202, json!({"transfer": summary(ctx, &t)})))
}

/// `id`, `volume_id`, `name`, `links`: lists and the accept response.
fn summary(ctx: &Ctx<'_>, t: &Transfer) -> Value {
    // Cinder links transfers under os-volume-transfer whichever route was asked.
    let [self_link, bookmark] = ctx.link_pair(&format!("os-volume-transfer/{}", t.id));
    json!({
        "id": t.id.to_string(),
        "volume_id": t.volume_id.to_string(),
        "name": t.name,
        "links": [{"href": self_link, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}],
    })
}

/// The full view (show, detail, and with the key, create), as the microversion has it.
fn detail(ctx: &Ctx<'_>, t: &Transfer, auth_key: Option<&str>) -> Value {
    let Value::Object(mut m) = summary(ctx, t) else { unreachable!("a summary is an object") };
    m.insert("created_at".into(), json!(t.created_at.to_string()));
    if let Some(k) = auth_key {
        m.insert("auth_key".into(), json!(k));
    }
    if ctx.version.at_least(55) {
        m.insert("no_snapshots".into(), json!(t.no_snapshots));
    }
    if ctx.version.at_least(57) {
        m.insert("source_project_id".into(), json!(t.source_project_id));
        m.insert("destination_project_id".into(), Value::Null);
        m.insert("accepted".into(), json!(false));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(v: Value) -> Result<Option<String>> {
        let body = json!({ "name": v });
        name_of(&Obj::wrap(body.as_object().unwrap()))
    }

    #[test]
    fn names_are_stripped_and_bounded() {
        assert_eq!(name(json!(null)).unwrap(), None);
        assert_eq!(name(json!("  t1 ")).unwrap().as_deref(), Some("t1"));
        assert_eq!(name(json!(format!(" {} ", "x".repeat(255)))).unwrap().map(|n| n.len()), Some(255));
        for bad in [json!(""), json!("   "), json!("x".repeat(256)), json!(3), json!(["a"])] {
            assert!(matches!(name(bad.clone()), Err(Error::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn routes() {
        assert_eq!(Route::of("volume-transfers"), Route::Versioned);
        assert_eq!(Route::of("os-volume-transfer"), Route::Extension);
    }
}
