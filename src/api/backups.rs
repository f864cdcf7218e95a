//! `/backups`: create, list, detail, show, update (3.9), delete, restore,
//! `export_record`, `import_record`, and the actions `os-reset_status`,
//! `os-force_delete` and hearth's `os-verify`.
//!
//! Bodies are checked as Cinder's schemas check them (no unknown keys; `metadata` from
//! 3.43, `availability_zone` from 3.51); views follow the microversion as tempest's
//! strict schemas expect. `?with_progress=true` on show and detail adds hearth's
//! `progress` (`"42%"`: bytes of the source read by a running backup or restore),
//! which Cinder's views do not have.

use serde_json::{json, Value};

use crate::api::body::{element, Obj, MAX_STRING};
use crate::api::{params, views, Ctx, Reply};
use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::BackupStatus;
use crate::query::ColumnQuery;
use crate::volume::backups::{BackupUpdate, NewBackup};

/// Refuse top-level keys other than `key`, as Cinder's schemas do.
fn only_element(ctx: &Ctx<'_>, key: &str) -> Result<()> {
    match ctx.body.as_ref() {
        Some(Value::Object(m)) => Obj::wrap(m).only("the request body", &[key]),
        _ => Ok(()),
    }
}

/// A name or description as Cinder cleans it: `null`, or a string of at most 255
/// characters, stripped of surrounding white space.
fn text(b: &Obj<'_>, key: &str) -> Result<Option<String>> {
    Ok(b.opt_str(key)?.map(|s| s.trim().to_string()))
}

/// An optional UUID field (`null` allowed).
fn uuid(b: &Obj<'_>, key: &str) -> Result<Option<String>> {
    match b.opt_str(key)? {
        None => Ok(None),
        Some(s) if Id::parse(&s).is_some() => Ok(Some(s)),
        Some(s) => {
            Err(Error::Invalid(format!("Invalid input for field/attribute {key}. Value: {s}. It is not a 'uuid'.")))
        }
    }
}

/// `POST /backups`
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    only_element(ctx, "backup")?;
    let b = element(ctx.body.as_ref(), "backup")?;
    let mut allowed = vec!["volume_id", "container", "description", "incremental", "force", "name", "snapshot_id"];
    if ctx.version.at_least(43) {
        allowed.push("metadata");
    }
    if ctx.version.at_least(51) {
        allowed.push("availability_zone");
    }
    b.only("backup", &allowed)?;
    let volume_id = uuid(&b, "volume_id")?
        .ok_or_else(|| Error::Invalid("Invalid input received: 'volume_id' is a required property.".into()))?;
    let req = NewBackup {
        volume_id,
        snapshot_id: uuid(&b, "snapshot_id")?,
        name: text(&b, "name")?,
        description: text(&b, "description")?,
        container: b.opt_str("container")?,
        incremental: b.opt_bool("incremental")?.unwrap_or(false),
        force: b.opt_bool("force")?.unwrap_or(false),
        metadata: b.opt_str_map("metadata")?.unwrap_or_default(),
        availability_zone: b.opt_str("availability_zone")?,
    };
    let backup = ctx.core.create_backup(&ctx.caller, req)?;
    Ok(Reply::json(202, json!({"backup": views::backup_summary(ctx, &backup)})))
}

/// Parameters that are not filters.
const CONTROL: &[&str] =
    &["all_tenants", "limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "with_progress"];

/// The filters any caller may use (Cinder's `resource_filters.json`).
pub const USER_FILTERS: &[&str] = &["name", "status", "volume_id"];

/// Columns of a backup that admins may filter on and anyone may sort on.
fn column(k: &str) -> Option<&'static str> {
    Some(match k {
        "id" => "id",
        "name" | "display_name" => "name",
        "description" | "display_description" => "description",
        "status" => "status",
        "size" => "size",
        "volume_id" => "volume_id",
        "snapshot_id" => "snapshot_id",
        "parent_id" => "parent_id",
        "project_id" => "project_id",
        "user_id" => "user_id",
        "availability_zone" => "availability_zone",
        "container" => "container",
        "object_count" => "object_count",
        "data_timestamp" => "data_timestamp",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        _ => return None,
    })
}

fn query(ctx: &Ctx<'_>) -> Result<ColumnQuery> {
    let mut page = crate::query::ListQuery::default();
    params::paging_only(ctx, &mut page)?;
    let mut q = ColumnQuery { limit: page.limit, marker: page.marker, offset: page.offset, ..Default::default() };
    for (k, d) in params::sort_pairs(ctx)? {
        q.sort.push((column(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?, d));
    }
    let admin = ctx.caller.is_admin;
    let strict = ctx.version.at_least(31);
    let mut invalid = Vec::new();
    for (raw, v) in &ctx.query {
        if CONTROL.contains(&raw.as_str()) {
            continue;
        }
        let (key, like) = match raw.strip_suffix('~') {
            Some(k) if ctx.version.at_least(34) => (k, true),
            _ => (raw.as_str(), false),
        };
        let key = match key {
            "display_name" => "name",
            k => k,
        };
        if !admin && !USER_FILTERS.contains(&key) {
            // Cinder drops what a non-admin may not filter on; from 3.31 it refuses.
            invalid.push(raw.clone());
            continue;
        }
        match column(key) {
            Some(col) if like => q.like.push((col, v.clone())),
            Some(col) => q.exact.push((col, v.clone())),
            // A filter on something backups do not have matches nothing (Cinder).
            None => q.match_nothing = true,
        }
    }
    if strict && !invalid.is_empty() {
        return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    Ok(q)
}

/// `GET /backups` and `GET /backups/detail`
pub fn list(ctx: &mut Ctx<'_>, detail: bool) -> Result<Reply> {
    let q = query(ctx)?;
    let limit = q.limit.unwrap_or(usize::MAX);
    let all_tenants = ctx.flag("all_tenants")?;
    let with_count = ctx.version.at_least(45) && ctx.flag("with_count")?;
    let progress = ctx.flag("with_progress")?;
    let (backups, count) = ctx.core.list_backups(&ctx.caller, q, all_tenants, with_count)?;
    let items: Vec<Value> = backups
        .iter()
        .map(|b| if detail { views::backup(ctx, b, progress) } else { views::backup_summary(ctx, b) })
        .collect();
    let mut out = json!({ "backups": items });
    if limit > 0 && backups.len() == limit {
        if let Some(last) = backups.last() {
            out["backups_links"] = ctx.next_link(&last.id.to_string());
        }
    }
    if let Some(n) = count {
        out["count"] = json!(n);
    }
    Ok(Reply::json(200, out))
}

/// `GET /backups/{id}`
pub fn show(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let b = ctx.core.get_backup(&ctx.caller, id)?;
    let progress = ctx.flag("with_progress")?;
    Ok(Reply::json(200, json!({"backup": views::backup(ctx, &b, progress)})))
}

/// `PUT /backups/{id}` (3.9)
pub fn update(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    only_element(ctx, "backup")?;
    let upd = match ctx.body.as_ref().and_then(|b| b.get("backup")) {
        Some(Value::Null) => BackupUpdate::default(),
        _ => {
            let b = element(ctx.body.as_ref(), "backup")?;
            let allowed: &[&str] =
                if ctx.version.at_least(43) { &["name", "description", "metadata"] } else { &["name", "description"] };
            b.only("backup", allowed)?;
            BackupUpdate {
                name: text(&b, "name")?,
                description: text(&b, "description")?,
                metadata: b.opt_str_map("metadata")?,
            }
        }
    };
    let b = ctx.core.update_backup(&ctx.caller, id, upd)?;
    Ok(Reply::json(200, json!({"backup": views::backup_summary(ctx, &b)})))
}

/// `DELETE /backups/{id}`
pub fn delete(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    ctx.core.delete_backup(&ctx.caller, id, false)?;
    Ok(Reply::empty(202))
}

/// `POST /backups/{id}/restore`
pub fn restore(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    only_element(ctx, "restore")?;
    let (volume_id, name) = match ctx.body.as_ref().and_then(|b| b.get("restore")) {
        Some(Value::Null) => (None, None),
        _ => {
            let b = element(ctx.body.as_ref(), "restore")?;
            b.only("restore", &["name", "volume_id"])?;
            (uuid(&b, "volume_id")?, text(&b, "name")?)
        }
    };
    let r = ctx.core.restore_backup(&ctx.caller, id, volume_id.as_deref(), name)?;
    Ok(Reply::json(
        202,
        json!({"restore": {
            "backup_id": r.backup_id.to_string(),
            "volume_id": r.volume_id.to_string(),
            "volume_name": r.volume_name,
        }}),
    ))
}

/// `GET /backups/{id}/export_record`
pub fn export_record(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let e = ctx.core.export_backup(&ctx.caller, id)?;
    Ok(Reply::json(200, json!({"backup-record": {"backup_service": e.backup_service, "backup_url": e.backup_url}})))
}

/// `POST /backups/import_record`
pub fn import_record(ctx: &mut Ctx<'_>) -> Result<Reply> {
    only_element(ctx, "backup-record")?;
    let b = element(ctx.body.as_ref(), "backup-record")?;
    b.only("backup-record", &["backup_service", "backup_url"])?;
    let required =
        |k: &str| Error::Invalid(format!("Invalid input received: '{k}' is a required property of backup-record."));
    let service = match b.get("backup_service") {
        Some(Value::String(s)) if s.chars().count() <= MAX_STRING => s.clone(),
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute backup_service. Value: {other}. It is not a string of at most \
                 {MAX_STRING} characters."
            )))
        }
        None => return Err(required("backup_service")),
    };
    let url = match b.get("backup_url") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute backup_url. Value: {other}. It is not a non-empty base64 string."
            )))
        }
        None => return Err(required("backup_url")),
    };
    let backup = ctx.core.import_backup(&ctx.caller, &service, &url)?;
    Ok(Reply::json(201, json!({"backup": views::backup_summary(ctx, &backup)})))
}

/// `POST /backups/{id}/action`
pub fn action(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply> {
    let body = ctx.body.take();
    let (name, value) = crate::api::volumes::single_action(body.as_ref())?;
    match name {
        "os-reset_status" => {
            let b = crate::api::volumes::action_body(name, value)?;
            b.only(name, &["status"])?;
            let s = b.req_str("status")?;
            let status: BackupStatus = s.to_ascii_lowercase().parse().map_err(|_| {
                Error::Invalid(format!("Backup status: {s} is invalid, valid statuses are: ['available', 'error']."))
            })?;
            ctx.core.reset_backup_status(&ctx.caller, id, status)?;
        }
        "os-force_delete" => {
            crate::api::volumes::no_params(name, value)?;
            ctx.core.delete_backup(&ctx.caller, id, true)?;
        }
        "os-verify" => {
            crate::api::volumes::no_params(name, value)?;
            let report = ctx.core.verify_backup(&ctx.caller, id)?;
            return Ok(Reply::json(200, json!({ "verify": report })));
        }
        other => return Err(Error::Invalid(format!("There is no such action: {other}."))),
    }
    Ok(Reply::empty(202))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_as_cinders_schema() {
        let body = json!({"volume_id": "nope", "snapshot_id": null, "name": "  b1 "});
        let o = Obj::wrap(body.as_object().unwrap());
        assert!(matches!(uuid(&o, "volume_id"), Err(Error::Invalid(_))));
        assert_eq!(uuid(&o, "snapshot_id").unwrap(), None);
        assert_eq!(text(&o, "name").unwrap().as_deref(), Some("b1"));
        assert_eq!(column("display_name"), Some("name"));
        assert_eq!(column("bogus"), None);
    }
}
