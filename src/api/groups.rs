//! `/groups` (3.13): generic volume groups: create, create from a source (3.14),
//! list, detail, show, update, and the `delete` and `reset_status` (3.20) actions.

use serde_json::{json, Value};

use crate::api::body::{element, Obj, MAX_STRING};
use crate::api::params::{self, GroupListSpec};
use crate::api::volumes::{action_body, single_action};
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::{Group, GroupStatus};
use crate::volume::groups::{GroupSource, GroupUpdate, NewGroup};

const LIST: GroupListSpec = GroupListSpec {
    sortable: &[
        "id",
        "name",
        "description",
        "status",
        "availability_zone",
        "group_type_id",
        "created_at",
        "updated_at",
    ],
    user_filters: &["name"],
    admin_filters: &["status", "availability_zone", "group_type_id", "project_id", "user_id", "id", "description"],
    control: &["list_volume"],
    strict: true,
};

/// A name or description as Cinder keeps them: trimmed.
fn trimmed(b: &Obj<'_>, key: &str) -> Result<Option<String>> {
    Ok(b.opt_str(key)?.map(|s| s.trim().to_string()))
}

/// Whether the request asks for each group's volumes (3.25 `list_volume`).
fn with_volumes(ctx: &Ctx<'_>) -> Result<bool> {
    Ok(ctx.version.at_least(25) && ctx.flag("list_volume")?)
}

fn render(ctx: &Ctx<'_>, groups: &[Group]) -> Result<Vec<Value>> {
    let vols = if with_volumes(ctx)? { Some(ctx.core.group_volume_ids(groups)?) } else { None };
    Ok(groups.iter().enumerate().map(|(i, g)| views::group(ctx, g, vols.as_ref().map(|v| v[i].as_slice()))).collect())
}

/// `POST /groups`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "group")?;
    b.only("group", &["name", "description", "group_type", "volume_types", "availability_zone"])?;
    let volume_types = match b.get("volume_types") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) if s.chars().count() <= MAX_STRING => Ok(s.clone()),
                other => Err(Error::Invalid(format!(
                    "Invalid input for field/attribute volume_types. Value: {other}. It is not a volume type name \
                     or id."
                ))),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute volume_types. Value: {other}. It must be a non-empty list of \
                 volume types."
            )))
        }
        None => return Err(Error::Invalid("Invalid input received: 'volume_types' is a required property.".into())),
    };
    let req = NewGroup {
        name: trimmed(&b, "name")?,
        description: trimmed(&b, "description")?,
        group_type: b.req_str("group_type")?,
        volume_types,
        availability_zone: b.opt_str("availability_zone")?,
    };
    let g = ctx.core.create_group(&ctx.caller, req)?;
    Ok(Reply::json(202, json!({"group": views::group_summary(&g)})))
}

/// `POST /groups/action`: `create-from-src` (3.14).
pub fn collection_action(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = single_action(body.as_ref())?;
    if name != "create-from-src" || !ctx.version.at_least(14) {
        return Err(Error::Invalid(format!("There is no such action: {name}.")));
    }
    let b = action_body(name, value)?;
    b.only("create-from-src", &["name", "description", "group_snapshot_id", "source_group_id"])?;
    let uuid = |key: &str| -> Result<Option<String>> {
        match b.opt_str(key)? {
            Some(s) if Id::parse(&s).is_none() => {
                Err(Error::Invalid(format!("Invalid input for field/attribute {key}. Value: {s}. It is not a UUID.")))
            }
            other => Ok(other),
        }
    };
    let source = match (uuid("group_snapshot_id")?, uuid("source_group_id")?) {
        (Some(s), None) => GroupSource::GroupSnapshot(s),
        (None, Some(g)) => GroupSource::Group(g),
        _ => {
            return Err(Error::Invalid(
                "Invalid input for create-from-src: give exactly one of group_snapshot_id and source_group_id.".into(),
            ))
        }
    };
    let g =
        ctx.core.create_group_from_source(&ctx.caller, trimmed(&b, "name")?, trimmed(&b, "description")?, source)?;
    Ok(Reply::json(202, json!({"group": views::group_summary(&g)})))
}

/// `GET /groups` and `GET /groups/detail`
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let q = params::group_query(ctx, &LIST)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let all_tenants = ctx.flag("all_tenants")?;
    let (groups, _) = ctx.core.list_groups(&ctx.caller, q, all_tenants, false)?;
    let items = if detail { render(ctx, &groups)? } else { groups.iter().map(views::group_summary).collect() };
    let mut out = json!({ "groups": items });
    if groups.len() == limit {
        if let Some(last) = groups.last() {
            out["group_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /groups/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let g = ctx.core.get_group(&ctx.caller, id)?;
    let mut shown = render(ctx, std::slice::from_ref(&g))?;
    Ok(Reply::json(200, json!({"group": shown.pop()})))
}

/// A comma-separated list of volume ids, as Cinder splits it.
fn id_list(v: Option<String>) -> Vec<String> {
    match v {
        Some(s) if !s.trim_matches(',').is_empty() => s.trim_matches(',').split(',').map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// `PUT /groups/{id}` (202)
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "group")?;
    const KEYS: &[&str] = &["name", "description", "add_volumes", "remove_volumes"];
    b.only("group", KEYS)?;
    if !KEYS.iter().any(|k| b.has(k)) {
        return Err(Error::Invalid(
            "Invalid input for group: give name, description, add_volumes or remove_volumes.".into(),
        ));
    }
    let upd = GroupUpdate {
        name: trimmed(&b, "name")?,
        description: trimmed(&b, "description")?,
        add_volumes: id_list(b.opt_str("add_volumes")?),
        remove_volumes: id_list(b.opt_str("remove_volumes")?),
    };
    ctx.core.update_group(&ctx.caller, id, upd)?;
    Ok(Reply::empty(202))
}

/// The status a `reset_status` asks for.
fn reset_status_of(name: &str, value: &Value) -> Result<GroupStatus> {
    let b = action_body(name, value)?;
    b.only("reset_status", &["status"])?;
    let s = b
        .req_str("status")
        .map_err(|_| Error::Invalid("Invalid Group Status: The 'status' can not be empty.".into()))?;
    s.trim().to_ascii_lowercase().parse().map_err(|_| {
        let valid: Vec<&str> = GroupStatus::ALL.iter().map(|s| s.as_str()).collect();
        Error::Invalid(format!(
            "Invalid Group Status: Group status: {s} is invalid, valid status are: {}.",
            valid.join(", ")
        ))
    })
}

/// `POST /groups/{id}/action`: `delete`, `reset_status` (3.20).
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = single_action(body.as_ref())?;
    match name {
        "delete" => {
            let delete_volumes = match value {
                Value::Null => false,
                v => {
                    let b = action_body(name, v)?;
                    b.only("delete", &["delete-volumes"])?;
                    b.opt_bool("delete-volumes")?.unwrap_or(false)
                }
            };
            ctx.core.delete_group(&ctx.caller, id, delete_volumes)?;
        }
        "reset_status" if ctx.version.at_least(20) => {
            let status = reset_status_of(name, value)?;
            ctx.core.reset_group_status(&ctx.caller, id, status)?;
        }
        "enable_replication" | "disable_replication" | "failover_replication" | "list_replication_targets"
            if ctx.version.at_least(38) =>
        {
            // Check the group exists first, so a wrong id is still a 404.
            ctx.core.get_group(&ctx.caller, id)?;
            return Err(Error::NotImplemented(format!("The group action {name} is not provided by hearth.")));
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}
