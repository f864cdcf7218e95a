//! `/os-quota-sets/{project}`: show (with `?usage=True`), defaults, update, delete;
//! `/os-quota-class-sets/{class}`: show and update (the class `default` is every
//! project's defaults).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::body::{element, parse_uint};
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};

/// `GET /os-quota-sets/{project}[?usage=True]`
pub fn show(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    let usage = ctx.flag("usage")?;
    let (limits, used) = ctx.core.quota_show(&ctx.caller, project)?;
    let mut set = Map::new();
    set.insert("id".into(), json!(project));
    for (k, limit) in limits {
        let v = if usage {
            json!({
                "limit": limit,
                "in_use": used.in_use.get(&k).copied().unwrap_or(0),
                "reserved": used.reserved.get(&k).copied().unwrap_or(0),
                "allocated": 0,
            })
        } else {
            json!(limit)
        };
        set.insert(k, v);
    }
    Ok(Reply::json(200, json!({ "quota_set": set })))
}

/// `GET /os-quota-sets/{project}/defaults`
pub fn defaults(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    let d = ctx.core.quota_defaults(&ctx.caller, project)?;
    let mut set: Map<String, Value> = d.into_iter().map(|(k, v)| (k, json!(v))).collect();
    set.insert("id".into(), json!(project));
    Ok(Reply::json(200, json!({ "quota_set": set })))
}

/// The limits of a quota set or quota class set body (`-1`: unlimited).
fn limits_body(ctx: &Ctx<'_>, element_name: &str) -> Result<BTreeMap<String, i64>> {
    let b = element(ctx.body.as_ref(), element_name)?;
    let mut updates = BTreeMap::new();
    for key in b.keys() {
        if key == "tenant_id" || key == "id" {
            continue;
        }
        let Some(v) = b.get(key) else { continue };
        let limit = match v {
            Value::Number(n) if n.as_i64() == Some(-1) => -1,
            Value::String(s) if s.trim() == "-1" => -1,
            other => i64::try_from(parse_uint(key, other).map_err(|_| {
                Error::Invalid(format!("Quota limit for {key} must be an integer of -1 or more, not {other}."))
            })?)
            .map_err(|_| Error::Invalid(format!("Quota limit for {key} is too large.")))?,
        };
        if limit > i64::from(i32::MAX) {
            return Err(Error::Invalid(format!("Quota limit for {key} must be at most {}.", i32::MAX)));
        }
        updates.insert(key.clone(), limit);
    }
    Ok(updates)
}

/// `PUT /os-quota-sets/{project}`
pub fn update(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    let updates = limits_body(ctx, "quota_set")?;
    // Cinder validates against usage only when asked not to skip it.
    let validate = match ctx.param("skip_validation") {
        None => false,
        Some(_) => !ctx.flag("skip_validation")?,
    };
    let limits = ctx.core.quota_update(&ctx.caller, project, &updates, validate)?;
    let set: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(Reply::json(200, json!({ "quota_set": set })))
}

/// `DELETE /os-quota-sets/{project}`
pub fn delete(ctx: &mut Ctx<'_>, project: &str) -> Result<Reply> {
    ctx.core.quota_delete(&ctx.caller, project)?;
    Ok(Reply::empty(200))
}

/// `GET /os-quota-class-sets/{class}`
pub fn class_show(ctx: &mut Ctx<'_>, class: &str) -> Result<Reply> {
    let limits = ctx.core.quota_class_show(&ctx.caller, class)?;
    let mut set: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, json!(v))).collect();
    set.insert("id".into(), json!(class));
    Ok(Reply::json(200, json!({ "quota_class_set": set })))
}

/// `PUT /os-quota-class-sets/{class}`
pub fn class_update(ctx: &mut Ctx<'_>, class: &str) -> Result<Reply> {
    let updates = limits_body(ctx, "quota_class_set")?;
    let limits = ctx.core.quota_class_update(&ctx.caller, class, &updates)?;
    let set: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(Reply::json(200, json!({ "quota_class_set": set })))
}
