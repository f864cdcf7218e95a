//! `/types`: volume types, their extra specs and project access.

use serde_json::{json, Value};

use crate::api::body::{self, element};
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::policy::rules;
use crate::volume::types::{NewType, TypeUpdate};

/// `GET /types[?is_public=...]`
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    // No parameter: public types only; "None": all; otherwise a boolean.
    let is_public = match ctx.param("is_public") {
        None => Some(true),
        Some(v) if v.eq_ignore_ascii_case("none") => None,
        Some(v) => Some(
            body::parse_bool("is_public", &Value::String(v.to_string()))
                .map_err(|_| Error::Invalid(format!("Invalid is_public filter [{v}].")))?,
        ),
    };
    let name = ctx.param("name").map(str::to_string);
    // 3.52: only types whose extra specs include these pairs.
    let specs = match ctx.param("extra_specs") {
        Some(v) if ctx.version.at_least(52) => crate::api::params::metadata_filter(v)?,
        _ => Vec::new(),
    };
    let types = ctx.core.list_types(&ctx.caller, is_public)?;
    let items: Vec<Value> = types
        .iter()
        .filter(|t| name.as_ref().is_none_or(|n| &t.name == n))
        .filter(|t| specs.iter().all(|(k, v)| t.extra_specs.get(k) == Some(v)))
        .map(|t| views::volume_type(ctx, t))
        .collect();
    Ok(Reply::json(200, json!({ "volume_types": items })))
}

/// `GET /types/default`
pub fn show_default(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let t = ctx.core.default_type(&ctx.caller)?;
    Ok(Reply::json(200, json!({"volume_type": views::volume_type(ctx, &t)})))
}

/// `GET /types/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let t = ctx.core.get_type(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"volume_type": views::volume_type(ctx, &t)})))
}

/// `POST /types`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "volume_type")?;
    b.only("volume_type", &["name", "description", "os-volume-type-access:is_public", "is_public", "extra_specs"])?;
    let new = NewType {
        name: b.req_str("name")?,
        description: b.opt_str("description")?,
        is_public: match b.opt_bool("os-volume-type-access:is_public")? {
            Some(p) => p,
            None => b.opt_bool("is_public")?.unwrap_or(true),
        },
        extra_specs: b.opt_str_map("extra_specs")?.unwrap_or_default(),
    };
    let t = ctx.core.create_type(&ctx.caller, new)?;
    Ok(Reply::json(200, json!({"volume_type": views::volume_type_changed(ctx, &t, true)})))
}

/// `PUT /types/{id}`
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "volume_type")?;
    b.only("volume_type", &["name", "description", "is_public", "os-volume-type-access:is_public"])?;
    let name = b.opt_str("name")?;
    if name.as_ref().is_some_and(|n| n.trim().is_empty()) {
        return Err(Error::Invalid("Invalid input received: name must not be empty.".into()));
    }
    let upd = TypeUpdate {
        name,
        description: b.opt_str("description")?,
        is_public: match b.opt_bool("is_public")? {
            Some(p) => Some(p),
            None => b.opt_bool("os-volume-type-access:is_public")?,
        },
    };
    if upd.name.is_none() && upd.description.is_none() && upd.is_public.is_none() {
        return Err(Error::Invalid(
            "Specify volume type name, description, is_public or a combination thereof.".into(),
        ));
    }
    let t = ctx.core.update_type(&ctx.caller, id, upd)?;
    Ok(Reply::json(200, json!({"volume_type": views::volume_type_changed(ctx, &t, false)})))
}

/// `DELETE /types/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_type(&ctx.caller, id)?;
    Ok(Reply::empty(202))
}

/// `GET /types/{id}/extra_specs`
pub fn specs_show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.caller.authorize_own(rules::EXTRA_SPECS_INDEX)?;
    let t = ctx.core.get_type(&ctx.caller, id)?;
    let shown = views::volume_type(ctx, &t);
    Ok(Reply::json(200, json!({ "extra_specs": shown["extra_specs"] })))
}

fn specs_body(ctx: &Ctx<'_>) -> Result<std::collections::BTreeMap<String, String>> {
    match ctx.body.as_ref() {
        Some(Value::Object(m)) => match m.get("extra_specs") {
            Some(Value::Object(s)) => body::str_map("extra_specs", s),
            Some(other) => {
                Err(Error::Invalid(format!("Invalid input for field/attribute extra_specs: {other} is not an object.")))
            }
            None => Err(Error::Invalid("Missing required element 'extra_specs' in request body.".into())),
        },
        _ => Err(Error::Invalid("Missing required element 'extra_specs' in request body.".into())),
    }
}

/// `POST /types/{id}/extra_specs`
pub fn specs_set(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let specs = specs_body(ctx)?;
    let set = ctx.core.set_extra_specs(&ctx.caller, id, specs, false)?;
    Ok(Reply::json(200, json!({ "extra_specs": set })))
}

/// `GET /types/{id}/extra_specs/{key}`
pub fn spec_show(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    ctx.caller.authorize_own(rules::EXTRA_SPECS_SHOW)?;
    let t = ctx.core.get_type(&ctx.caller, id)?;
    let shown = views::volume_type(ctx, &t);
    match shown["extra_specs"].get(key) {
        Some(v) => Ok(Reply::json(200, json!({ key: v }))),
        None => Err(Error::NotFound(format!("Volume Type {id} has no extra specs with key {key}."))),
    }
}

/// `PUT /types/{id}/extra_specs/{key}`
pub fn spec_set(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    let specs = match ctx.body.as_ref() {
        Some(Value::Object(m)) => body::str_map("extra_specs", m)?,
        _ => return Err(Error::Invalid("The request body must be an object with one extra spec.".into())),
    };
    if specs.len() > 1 {
        return Err(Error::Invalid("Request body contains too many items.".into()));
    }
    if !specs.contains_key(key) {
        return Err(Error::Invalid("Request body and URI mismatch.".into()));
    }
    let set = ctx.core.set_extra_specs(&ctx.caller, id, specs, true)?;
    Ok(Reply::json(200, json!(set)))
}

/// `DELETE /types/{id}/extra_specs/{key}`
pub fn spec_delete(ctx: &mut Ctx<'_>, id: &str, key: &str) -> Result<Reply> {
    ctx.core.delete_extra_spec(&ctx.caller, id, key)?;
    Ok(Reply::empty(202))
}

/// `POST /types/{id}/action`: `addProjectAccess` / `removeProjectAccess`
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let (grant, key) = match ctx.body.as_ref() {
        Some(Value::Object(m)) if m.contains_key("addProjectAccess") => (true, "addProjectAccess"),
        Some(Value::Object(m)) if m.contains_key("removeProjectAccess") => (false, "removeProjectAccess"),
        _ => {
            return Err(Error::Invalid("Expected addProjectAccess or removeProjectAccess in the request body.".into()))
        }
    };
    let b = element(ctx.body.as_ref(), key)?;
    let project = b.req_str("project")?;
    ctx.core.set_type_access(&ctx.caller, id, &project, grant)?;
    Ok(Reply::empty(202))
}

/// `GET /types/{id}/os-volume-type-access`
pub fn access_list(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let (t, projects) = ctx.core.type_access(&ctx.caller, id)?;
    let items: Vec<Value> =
        projects.iter().map(|p| json!({"volume_type_id": t.id.to_string(), "project_id": p})).collect();
    Ok(Reply::json(200, json!({ "volume_type_access": items })))
}

/// `PUT /default-types/{project}` (3.62)
pub fn default_set(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    let b = element(ctx.body.as_ref(), "default_type")?;
    let t = ctx.core.set_project_default_type(&ctx.caller, project, &b.req_str("volume_type")?)?;
    Ok(Reply::json(200, json!({"default_type": {"project_id": project, "volume_type_id": t.id.to_string()}})))
}

/// `GET /default-types/{project}` (3.62)
pub fn default_show(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    let id = ctx.core.project_default_type(&ctx.caller, project)?;
    Ok(Reply::json(200, json!({"default_type": {"project_id": project, "volume_type_id": id.to_string()}})))
}

/// `GET /default-types` (3.62)
pub fn default_list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let all = ctx.core.project_default_types(&ctx.caller)?;
    let items: Vec<Value> =
        all.iter().map(|(p, t)| json!({"project_id": p, "volume_type_id": t.to_string()})).collect();
    Ok(Reply::json(200, json!({ "default_types": items })))
}

/// `DELETE /default-types/{project}` (3.62)
pub fn default_unset(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    ctx.core.unset_project_default_type(&ctx.caller, project)?;
    Ok(Reply::empty(204))
}
