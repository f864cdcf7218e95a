//! `/qos-specs` (admin): create, list, show, set keys, delete keys, delete,
//! associate, disassociate, disassociate_all, associations.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::api::body;
use crate::api::{params, views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::model::QosConsumer;
use crate::query::ColumnQuery;
use crate::volume::qos::NewQos;

/// The body's top-level object must hold `key` and nothing else.
fn only_top_level(ctx: &Ctx<'_>, key: &str, also: &[&str]) -> Result<()> {
    if let Some(Value::Object(m)) = ctx.body.as_ref() {
        let extra: Vec<&str> = m.keys().map(String::as_str).filter(|k| *k != key && !also.contains(k)).collect();
        if !extra.is_empty() {
            return Err(Error::Invalid(format!(
                "Invalid input: additional properties are not allowed ({} unexpected).",
                extra.join(", ")
            )));
        }
    }
    Ok(())
}

fn consumer(v: &Value) -> Result<QosConsumer> {
    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
        Error::Invalid(format!(
            "Invalid qos specs: Valid consumer of QoS specs are: back-end, front-end, both; not {v}."
        ))
    })
}

/// A spec's key and value, with Cinder's limits (keys 1 to 255 characters, values
/// strings of at most 255 characters, or null).
fn spec(k: &str, v: &Value, key_pattern: bool) -> Result<Option<String>> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_:. /".contains(c);
    if k.is_empty() || k.chars().count() > body::MAX_STRING || (key_pattern && !k.chars().all(allowed)) {
        return Err(Error::Invalid(format!("Invalid input for field/attribute qos_specs: invalid key {k:?}.")));
    }
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= body::MAX_STRING => Ok(Some(s.clone())),
        Value::String(_) => Err(Error::Invalid(format!(
            "Invalid input for field/attribute qos_specs.{k}: values must be at most {} characters.",
            body::MAX_STRING
        ))),
        other => Err(Error::Invalid(format!(
            "Invalid input for field/attribute qos_specs.{k}. Value: {other}. It is not a string."
        ))),
    }
}

fn specs_object<'a>(ctx: &'a Ctx<'_>) -> Result<&'a Map<String, Value>> {
    match ctx.body.as_ref().and_then(|b| b.get("qos_specs")) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(Error::Invalid(format!(
            "Invalid input for field/attribute qos_specs. Value: {other}. It is not an object."
        ))),
        None => Err(Error::Invalid("Missing required element 'qos_specs' in request body.".into())),
    }
}

/// `POST /qos-specs`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    only_top_level(ctx, "qos_specs", &["type"])?;
    let m = specs_object(ctx)?;
    let name = match m.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.trim().chars().count() <= body::MAX_STRING => {
            n.trim().to_string()
        }
        Some(Value::String(_)) => {
            return Err(Error::Invalid("Invalid input received: The 'name' must be 1 to 255 characters.".into()))
        }
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute name. Value: {other}. It is not a string."
            )))
        }
        None => return Err(Error::Invalid("Invalid input received: 'name' is a required property.".into())),
    };
    let mut new = NewQos { name, ..Default::default() };
    for (k, v) in m.iter().filter(|(k, _)| *k != "name") {
        if k == "consumer" {
            new.consumer = Some(consumer(v)?);
        } else {
            new.specs.insert(k.clone(), spec(k, v, false)?);
        }
    }
    let q = ctx.core.create_qos(&ctx.caller, new)?;
    let [self_link, bookmark] = ctx.link_pair(&format!("qos-specs/{}", q.id));
    Ok(Reply::json(
        200,
        json!({"qos_specs": views::qos_specs(&q), "links": [{"href": self_link, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}]}),
    ))
}

fn sort_column(k: &str) -> Option<&'static str> {
    Some(match k {
        "id" => "id",
        "name" => "name",
        "consumer" => "consumer",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        _ => return None,
    })
}

/// `GET /qos-specs`: paged and sorted; filters `id`, `name`, `consumer` (any other
/// filter matches nothing, as in Cinder).
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let mut vq = crate::query::ListQuery::default();
    params::paging_only(ctx, &mut vq)?;
    let mut q = ColumnQuery { limit: vq.limit, marker: vq.marker, offset: vq.offset, ..Default::default() };
    for (k, d) in params::sort_pairs(ctx)? {
        q.sort.push((sort_column(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?, d));
    }
    for (k, v) in &ctx.query {
        match k.as_str() {
            "limit" | "marker" | "offset" | "sort" | "sort_key" | "sort_dir" => {}
            "id" => q.exact.push(("id", v.clone())),
            "name" => q.exact.push(("name", v.clone())),
            "consumer" => q.exact.push(("consumer", v.clone())),
            _ => q.match_nothing = true,
        }
    }
    let limit = q.limit.unwrap_or(usize::MAX);
    let specs = ctx.core.list_qos(&ctx.caller, q)?;
    let mut out = json!({"qos_specs": specs.iter().map(views::qos_specs).collect::<Vec<_>>()});
    if specs.len() == limit {
        if let Some(last) = specs.last() {
            out["qos_specs_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /qos-specs/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let q = ctx.core.get_qos(&ctx.caller, id)?;
    let [self_link, bookmark] = ctx.link_pair(&format!("qos-specs/{}", q.id));
    Ok(Reply::json(
        200,
        json!({"qos_specs": views::qos_specs(&q), "links": [{"href": self_link, "rel": "self"}, {"href": bookmark, "rel": "bookmark"}]}),
    ))
}

/// `PUT /qos-specs/{id}`: add or change keys (and `consumer`); answers with the
/// keys given, as Cinder does.
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    only_top_level(ctx, "qos_specs", &[])?;
    let m = specs_object(ctx)?;
    let mut specs = BTreeMap::new();
    let mut new_consumer = None;
    for (k, v) in m {
        if k == "consumer" {
            new_consumer = Some(consumer(v)?);
        } else {
            specs.insert(k.clone(), spec(k, v, true)?);
        }
    }
    let echo = Value::Object(m.clone());
    ctx.core.update_qos(&ctx.caller, id, new_consumer, specs)?;
    Ok(Reply::json(200, json!({ "qos_specs": echo })))
}

/// `PUT /qos-specs/{id}/delete_keys` `{"keys": [...]}`
pub fn delete_keys(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    only_top_level(ctx, "keys", &[])?;
    let keys = match ctx.body.as_ref().and_then(|b| b.get("keys")) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|k| match k.as_str() {
                Some(s) if !s.is_empty() && s.chars().count() <= body::MAX_STRING => Ok(s.to_string()),
                _ => Err(Error::Invalid(format!("Invalid input for field/attribute keys: {k} is not a key."))),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute keys. Value: {other}. It is not an array."
            )))
        }
        None => return Err(Error::Invalid("Invalid input received: 'keys' is a required property.".into())),
    };
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = keys.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(Error::Invalid(format!("Invalid input for field/attribute keys: {dup:?} is given twice.")));
    }
    ctx.core.delete_qos_keys(&ctx.caller, id, &keys)?;
    Ok(Reply::empty(202))
}

/// `DELETE /qos-specs/{id}[?force=true]`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let force = ctx.flag("force")?;
    ctx.core.delete_qos(&ctx.caller, id, force)?;
    Ok(Reply::empty(202))
}

/// `GET /qos-specs/{id}/associations`
pub fn associations(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let types = ctx.core.qos_associations(&ctx.caller, id)?;
    let items: Vec<Value> = types
        .iter()
        .map(|(t, name)| json!({"association_type": "volume_type", "name": name, "id": t.to_string()}))
        .collect();
    Ok(Reply::json(200, json!({ "qos_associations": items })))
}

fn vol_type_id(ctx: &Ctx<'_>) -> Result<String> {
    match ctx.param("vol_type_id") {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => Err(Error::Invalid("Volume Type id must not be None.".into())),
    }
}

/// `GET /qos-specs/{id}/associate?vol_type_id=`
pub fn associate(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let t = vol_type_id(ctx)?;
    ctx.core.associate_qos(&ctx.caller, id, &t)?;
    Ok(Reply::empty(202))
}

/// `GET /qos-specs/{id}/disassociate?vol_type_id=`
pub fn disassociate(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let t = vol_type_id(ctx)?;
    ctx.core.disassociate_qos(&ctx.caller, id, &t)?;
    Ok(Reply::empty(202))
}

/// `GET /qos-specs/{id}/disassociate_all`
pub fn disassociate_all(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.disassociate_all_qos(&ctx.caller, id)?;
    Ok(Reply::empty(202))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_consumers_are_checked() {
        assert_eq!(consumer(&json!("both")).unwrap(), QosConsumer::Both);
        for bad in [json!("middle"), json!(null), json!(3), json!("")] {
            assert!(consumer(&bad).is_err(), "{bad}");
        }
        assert_eq!(spec("read_iops_sec", &json!("10"), true).unwrap(), Some("10".into()));
        assert_eq!(spec("k", &json!(null), true).unwrap(), None);
        assert!(spec("k", &json!(10), true).is_err());
        assert!(spec("", &json!("1"), false).is_err());
        assert!(spec("k!", &json!("1"), true).is_err());
        assert!(spec("k!", &json!("1"), false).is_ok());
        assert!(spec("k", &json!("x".repeat(256)), false).is_err());
    }
}
