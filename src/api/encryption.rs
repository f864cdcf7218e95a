//! `/types/{id}/encryption` (admin): a volume type's encryption; and
//! `/volumes/{id}/encryption`: a volume's encryption metadata, which the compute
//! host's encryptor reads.

use serde_json::{json, Map, Value};

use crate::api::body::{self, element, Obj};
use crate::api::{views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::model::ControlLocation;
use crate::volume::encryption::EncryptionSpec;

/// The fields of `{"encryption": {...}}`, checked as Cinder's schema does; other
/// keys are ignored (Cinder's schema allows them and stores nothing of them).
fn spec(b: &Obj<'_>) -> Result<EncryptionSpec> {
    let text = |k: &str, v: &Value| -> Result<String> {
        match v {
            Value::String(s) if s.chars().count() <= body::MAX_STRING => Ok(s.clone()),
            Value::String(_) => Err(Error::Invalid(format!(
                "Invalid input for field/attribute {k}: it must be at most {} characters.",
                body::MAX_STRING
            ))),
            other => Err(Error::Invalid(format!(
                "Invalid input for field/attribute {k}. Value: {other}. It is not a string."
            ))),
        }
    };
    let mut out = EncryptionSpec::default();
    if b.has("provider") {
        let v = b.get("provider").unwrap_or(&Value::Null);
        out.provider = Some(text("provider", v)?);
    }
    if b.has("cipher") {
        out.cipher = Some(b.get("cipher").map(|v| text("cipher", v)).transpose()?);
    }
    if b.has("key_size") {
        let size = match b.get("key_size") {
            None => None,
            Some(v @ (Value::Number(_) | Value::String(_))) => Some(
                body::parse_uint("key_size", v)
                    .map_err(|_| Error::Invalid("Invalid input received: key_size must be an integer.".into()))?,
            ),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute key_size. Value: {other}. It is not an integer."
                )))
            }
        };
        out.key_size = Some(size);
    }
    if b.has("control_location") {
        let v = b.get("control_location").unwrap_or(&Value::Null);
        out.control_location = Some(v.as_str().and_then(|s| s.parse::<ControlLocation>().ok()).ok_or_else(|| {
            Error::Invalid(format!(
                "Invalid input for field/attribute control_location. Value: {v}. It is not one of 'front-end', 'back-end'."
            ))
        })?);
    }
    Ok(out)
}

fn only_encryption(ctx: &Ctx<'_>) -> Result<()> {
    if let Some(Value::Object(m)) = ctx.body.as_ref() {
        if let Some(k) = m.keys().find(|k| *k != "encryption") {
            return Err(Error::Invalid(format!(
                "Invalid input: additional properties are not allowed ('{k}' was unexpected)."
            )));
        }
    }
    Ok(())
}

/// `GET /types/{id}/encryption`: the whole row, or `{}` when the type has none.
pub fn show(ctx: &mut Ctx<'_>, type_id: &str) -> Result<Reply> {
    let e = ctx.core.type_encryption(&ctx.caller, type_id)?;
    Ok(Reply::json(200, Value::Object(e.as_ref().map(views::type_encryption).unwrap_or_default())))
}

/// `GET /types/{id}/encryption/{key}`: one field, `{key: value}`.
pub fn show_key(ctx: &mut Ctx<'_>, type_id: &str, key: &str) -> Result<Reply> {
    let e = ctx.core.type_encryption(&ctx.caller, type_id)?;
    let row = e.as_ref().map(views::type_encryption).unwrap_or_default();
    match row.get(key) {
        Some(v) => Ok(Reply::json(200, json!({ key: v }))),
        None => Err(Error::NotFound(format!("Volume type encryption for type {type_id} does not exist."))),
    }
}

/// `POST /types/{id}/encryption`
pub fn create(ctx: &mut Ctx<'_>, type_id: &str) -> Result<Reply> {
    only_encryption(ctx)?;
    let b = element(ctx.body.as_ref(), "encryption")?;
    let e = ctx.core.create_type_encryption(&ctx.caller, type_id, spec(&b)?)?;
    let mut out = views::type_encryption(&e);
    for k in ["deleted", "created_at", "updated_at", "deleted_at"] {
        out.remove(k);
    }
    Ok(Reply::json(200, json!({ "encryption": out })))
}

/// `PUT /types/{id}/encryption/{encryption_id}`: answers with the fields given.
pub fn update(ctx: &mut Ctx<'_>, type_id: &str) -> Result<Reply> {
    only_encryption(ctx)?;
    let b = element(ctx.body.as_ref(), "encryption")?;
    let given = spec(&b)?;
    let e = ctx.core.update_type_encryption(&ctx.caller, type_id, given.clone())?;
    let row = views::type_encryption(&e);
    let mut out = Map::new();
    for (k, was_given) in [
        ("provider", given.provider.is_some()),
        ("cipher", given.cipher.is_some()),
        ("key_size", given.key_size.is_some()),
        ("control_location", given.control_location.is_some()),
    ] {
        if was_given {
            out.insert(k.into(), row[k].clone());
        }
    }
    Ok(Reply::json(200, json!({ "encryption": out })))
}

/// `DELETE /types/{id}/encryption/{encryption_id}`
pub fn delete(ctx: &mut Ctx<'_>, type_id: &str) -> Result<Reply> {
    ctx.core.delete_type_encryption(&ctx.caller, type_id)?;
    Ok(Reply::empty(202))
}

/// `GET /volumes/{id}/encryption`
pub fn volume_metadata(ctx: &mut Ctx<'_>, volume_id: &str) -> Result<Reply> {
    let m = ctx.core.volume_encryption_metadata(&ctx.caller, volume_id)?;
    Ok(Reply::json(200, Value::Object(m)))
}

/// `GET /volumes/{id}/encryption/{key}`: the bare value, as Cinder answers.
pub fn volume_metadata_key(ctx: &mut Ctx<'_>, volume_id: &str, key: &str) -> Result<Reply> {
    let m = ctx.core.volume_encryption_metadata(&ctx.caller, volume_id)?;
    match m.get(key) {
        Some(v) => Ok(Reply::json(200, v)),
        None => Err(Error::NotFound(format!("Volume {volume_id} has no encryption metadata with key {key}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<EncryptionSpec> {
        spec(&Obj::wrap(v.as_object().unwrap()))
    }

    #[test]
    fn fields_are_checked() {
        let s = parse(json!({"provider": "luks", "key_size": "256", "cipher": null, "control_location": "front-end",
                             "other": 1}))
        .unwrap();
        assert_eq!(s.provider.as_deref(), Some("luks"));
        assert_eq!(s.key_size, Some(Some(256)));
        assert_eq!(s.cipher, Some(None));
        assert_eq!(s.control_location, Some(ControlLocation::FrontEnd));
        assert_eq!(parse(json!({"key_size": null})).unwrap().key_size, Some(None));
        assert!(parse(json!({})).unwrap().provider.is_none());
        for bad in [
            json!({"key_size": "big"}),
            json!({"key_size": -1}),
            json!({"key_size": 1.5}),
            json!({"key_size": true}),
            json!({"provider": null}),
            json!({"provider": 3}),
            json!({"cipher": 3}),
            json!({"control_location": "middle"}),
            json!({"control_location": null}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
