//! `/group_types` (3.11): group types and their group specs.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::body::{self, element, MAX_STRING};
use crate::api::params::{self, GroupListSpec};
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::volume::group_types::{GroupTypeUpdate, NewGroupType};

const LIST: GroupListSpec = GroupListSpec {
    sortable: &["id", "name", "description", "is_public", "created_at", "updated_at"],
    user_filters: &[],
    admin_filters: &[],
    control: &["is_public"],
    strict: false,
};

/// `GET /group_types[?is_public=...]`: public types only by default; admins may ask
/// for private ones (`false`) or all (`None`).
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let is_public = match ctx.param("is_public") {
        None => Some(true),
        Some(v) if v.eq_ignore_ascii_case("none") => None,
        Some(v) => Some(
            body::parse_bool("is_public", &Value::String(v.to_string()))
                .map_err(|_| Error::Invalid(format!("Invalid is_public filter [{v}].")))?,
        ),
    };
    let q = params::group_query(ctx, &LIST)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let types = ctx.core.list_group_types(&ctx.caller, q, is_public)?;
    let items: Vec<Value> = types.iter().map(|t| views::group_type(ctx, t)).collect();
    let mut out = json!({ "group_types": items });
    if types.len() == limit {
        if let Some(last) = types.last() {
            out["group_type_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /group_types/default`
pub fn show_default(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let t = ctx.core.default_group_type()?;
    Ok(Reply::json(200, json!({"group_type": views::group_type(ctx, &t)})))
}

/// `GET /group_types/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let t = ctx.core.get_group_type(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"group_type": views::group_type(ctx, &t)})))
}

/// `POST /group_types` (202, as Cinder answers)
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "group_type")?;
    b.only("group_type", &["name", "description", "is_public", "group_specs"])?;
    let new = NewGroupType {
        name: b.req_str("name")?.trim().to_string(),
        description: b.opt_str("description")?,
        is_public: b.opt_bool("is_public")?.unwrap_or(true),
        group_specs: match b.get("group_specs") {
            None => BTreeMap::new(),
            Some(Value::Object(m)) => spec_map(m)?,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute group_specs. Value: {other}. It is not an object."
                )))
            }
        },
    };
    let t = ctx.core.create_group_type(&ctx.caller, new)?;
    Ok(Reply::json(202, json!({"group_type": views::group_type(ctx, &t)})))
}

/// `PUT /group_types/{id}`
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "group_type")?;
    b.only("group_type", &["name", "description", "is_public"])?;
    let name = b.opt_str("name")?;
    if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::Invalid("Group type name can not be empty.".into()));
    }
    let upd = GroupTypeUpdate {
        name: name.map(|n| n.trim().to_string()),
        description: b.opt_str("description")?,
        is_public: b.opt_bool("is_public")?,
    };
    if upd.name.is_none() && upd.description.is_none() && upd.is_public.is_none() {
        return Err(Error::Invalid("Specify group type name, description or a combination thereof.".into()));
    }
    let t = ctx.core.update_group_type(&ctx.caller, id, upd)?;
    Ok(Reply::json(200, json!({"group_type": views::group_type(ctx, &t)})))
}

/// `DELETE /group_types/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_group_type(&ctx.caller, id)?;
    Ok(Reply::empty(202))
}

/// Group specs as Cinder's schema takes them: keys of `[a-zA-Z0-9-_:.]`, 1 to 255
/// characters; string values of at most 255.
fn spec_map(m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    for k in m.keys() {
        let ok = (1..=MAX_STRING).contains(&k.chars().count())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
        if !ok {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute group_specs: key '{k}' must be 1 to {MAX_STRING} characters of \
                 letters, digits, '-', '_', ':' and '.'."
            )));
        }
    }
    body::str_map("group_specs", m)
}

/// `GET /group_types/{id}/group_specs`
pub fn specs_show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let specs = ctx.core.group_specs(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({ "group_specs": specs })))
}

/// `POST /group_types/{id}/group_specs` (202, echoing what was set)
pub fn specs_set(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let specs = match ctx.body.as_ref() {
        Some(Value::Object(m)) => {
            if let Some(extra) = m.keys().find(|k| *k != "group_specs") {
                return Err(Error::Invalid(format!(
                    "Invalid input for group_specs: additional properties are not allowed ({extra} unexpected)."
                )));
            }
            match m.get("group_specs") {
                Some(Value::Object(s)) => spec_map(s)?,
                Some(other) => {
                    return Err(Error::Invalid(format!(
                        "Invalid input for field/attribute group_specs. Value: {other}. It is not an object."
                    )))
                }
                None => return Err(Error::Invalid("Missing required element 'group_specs' in request body.".into())),
            }
        }
        _ => return Err(Error::Invalid("Missing required element 'group_specs' in request body.".into())),
    };
    let set = ctx.core.set_group_specs(&ctx.caller, id, specs, false)?;
    Ok(Reply::json(202, json!({ "group_specs": set })))
}

/// `GET /group_types/{id}/group_specs/{key}`
pub fn spec_show(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    let value = ctx.core.group_spec(&ctx.caller, id, key)?;
    Ok(Reply::json(200, json!({ key: value })))
}

/// `PUT /group_types/{id}/group_specs/{key}`
pub fn spec_set(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    let specs = match ctx.body.as_ref() {
        Some(Value::Object(m)) if m.len() == 1 => spec_map(m)?,
        Some(Value::Object(m)) if m.len() > 1 => {
            return Err(Error::Invalid("Request body contains too many items.".into()))
        }
        _ => return Err(Error::Invalid("The request body must be an object with one group spec.".into())),
    };
    if !specs.contains_key(key) {
        return Err(Error::Invalid("Request body and URI mismatch.".into()));
    }
    let set = ctx.core.set_group_specs(&ctx.caller, id, specs, true)?;
    Ok(Reply::json(200, json!(set)))
}

/// `DELETE /group_types/{id}/group_specs/{key}`
pub fn spec_delete(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    ctx.core.delete_group_spec(&ctx.caller, id, key)?;
    Ok(Reply::empty(202))
}
