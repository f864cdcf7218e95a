//! `/{volumes,snapshots}/{id}/metadata[/{key}]`: one set of handlers for both owners.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::api::{body, Ctx, Reply};
use crate::error::{Error, Result};
use crate::volume::MetadataWrite;

/// Whose metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A volume's.
    Volume,
    /// A snapshot's.
    Snapshot,
}

fn get(ctx: &Ctx<'_>, owner: Owner, id: &str) -> Result<BTreeMap<String, String>> {
    match owner {
        Owner::Volume => ctx.core.volume_metadata(&ctx.caller, id),
        Owner::Snapshot => ctx.core.snapshot_metadata(&ctx.caller, id),
    }
}

fn set(
    ctx: &Ctx<'_>,
    owner: Owner,
    id: &str,
    m: BTreeMap<String, String>,
    how: MetadataWrite,
) -> Result<BTreeMap<String, String>> {
    match owner {
        Owner::Volume => ctx.core.set_volume_metadata(&ctx.caller, id, m, how),
        Owner::Snapshot => ctx.core.set_snapshot_metadata(&ctx.caller, id, m, how),
    }
}

fn body_map(ctx: &Ctx<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    let missing = || Error::Invalid(format!("Missing required element '{key}' in request body."));
    match ctx.body.as_ref() {
        Some(Value::Object(m)) => match m.get(key) {
            Some(Value::Object(inner)) => body::str_map(key, inner),
            Some(other) => {
                Err(Error::Invalid(format!("Invalid input for field/attribute {key}: {other} is not an object.")))
            }
            None => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// `GET .../metadata`
pub fn show(ctx: &mut Ctx<'_>, owner: Owner, id: &str) -> Result<Reply> {
    Ok(Reply::json(200, json!({ "metadata": get(ctx, owner, id)? })))
}

/// `POST` (merge) and `PUT` (replace) `.../metadata`
pub fn update(ctx: &mut Ctx<'_>, owner: Owner, id: &str, replace: bool) -> Result<Reply> {
    let meta = body_map(ctx, "metadata")?;
    let how = if replace { MetadataWrite::Replace } else { MetadataWrite::Merge };
    Ok(Reply::json(200, json!({ "metadata": set(ctx, owner, id, meta, how)? })))
}

/// `GET .../metadata/{key}`
pub fn key_show(ctx: &mut Ctx<'_>, owner: Owner, id: &str, key: &str) -> Result<Reply> {
    let m = get(ctx, owner, id)?;
    let v = m.get(key).ok_or_else(|| Error::NotFound("Metadata item was not found.".into()))?;
    Ok(Reply::json(200, json!({ "meta": { key: v } })))
}

/// `PUT .../metadata/{key}`
pub fn key_set(ctx: &mut Ctx<'_>, owner: Owner, id: &str, key: &str) -> Result<Reply> {
    let meta = body_map(ctx, "meta")?;
    if meta.len() > 1 {
        return Err(Error::Invalid("Request body contains too many items.".into()));
    }
    if !meta.contains_key(key) {
        return Err(Error::Invalid("Request body and URI mismatch.".into()));
    }
    set(ctx, owner, id, meta.clone(), MetadataWrite::MergeKey)?;
    Ok(Reply::json(200, json!({ "meta": meta })))
}

/// `DELETE .../metadata/{key}`
pub fn key_delete(ctx: &mut Ctx<'_>, owner: Owner, id: &str, key: &str) -> Result<Reply> {
    match owner {
        Owner::Volume => ctx.core.delete_volume_metadata(&ctx.caller, id, key)?,
        Owner::Snapshot => ctx.core.delete_snapshot_metadata(&ctx.caller, id, key)?,
    }
    Ok(Reply::empty(200))
}
