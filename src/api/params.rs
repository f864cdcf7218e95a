//! List parameters: `limit`, `marker`, `offset`, `sort` (or `sort_key`/`sort_dir`),
//! `with_count`, `all_tenants`, and the volume filters.
//!
//! From 3.31 a filter the caller may not use is a 400 (non-admins: Cinder's
//! `resource_filters` for volumes); before it, unknown filters are ignored, as Cinder
//! does. `name~` style "like" filters exist from 3.34.

use crate::api::Ctx;
use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::query::{Filter, FilterOp, ListQuery, Scalar, SortDir, SortKey, VolumeField};

/// Parameters that are not filters.
const CONTROL: &[&str] =
    &["limit", "marker", "offset", "sort", "sort_key", "sort_dir", "with_count", "all_tenants", "is_public"];

/// Filters any caller may use on volumes.
const USER_FILTERS: &[&str] =
    &["name", "status", "metadata", "bootable", "availability_zone", "size", "created_at", "updated_at", "group_id"];

/// Filters only admins may use on volumes.
const ADMIN_FILTERS: &[&str] = &[
    "project_id",
    "user_id",
    "host",
    "volume_type",
    "volume_type_id",
    "attach_status",
    "migration_status",
    "id",
    "description",
];

/// Filters that accept the `~` (like) form.
const LIKE_FILTERS: &[&str] = &["name", "description", "status", "availability_zone"];

/// The volume filters a non-admin may use (for `resource_filters`).
pub fn volume_filter_names() -> Vec<&'static str> {
    USER_FILTERS.to_vec()
}

fn sort_key(name: &str) -> Option<SortKey> {
    Some(match name {
        "id" => VolumeField::Id,
        "name" | "display_name" => VolumeField::Name,
        "description" | "display_description" => VolumeField::Description,
        "status" => VolumeField::Status,
        "size" => VolumeField::Size,
        "availability_zone" => VolumeField::AvailabilityZone,
        "bootable" => VolumeField::Bootable,
        "created_at" => VolumeField::CreatedAt,
        "updated_at" => VolumeField::UpdatedAt,
        "project_id" => VolumeField::ProjectId,
        "user_id" => VolumeField::UserId,
        "host" => VolumeField::Host,
        "volume_type_id" => VolumeField::VolumeTypeId,
        "attach_status" => VolumeField::AttachStatus,
        _ => return None,
    })
}

fn sort_dir(s: &str) -> Result<SortDir> {
    match s.trim().to_ascii_lowercase().as_str() {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        _ => Err(Error::Invalid(format!("Unknown sort direction '{s}', must be 'desc' or 'asc'."))),
    }
}

fn int_param(ctx: &Ctx<'_>, key: &str) -> Result<Option<usize>> {
    match ctx.param(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| Error::Invalid(format!("Invalid value for {key}: '{v}' is not a non-negative integer."))),
    }
}

/// The largest `offset` a list takes, as in Cinder (`DB_MAX_INT`).
const MAX_OFFSET: usize = 0x7FFF_FFFF;

/// Paging of a list (`limit`, capped at `osapi_max_limit`, and 0 an empty page as
/// in Cinder; `offset`; `marker`).
pub fn paging_only(ctx: &Ctx<'_>, q: &mut ListQuery) -> Result<()> {
    let max = ctx.core.config.osapi_max_limit;
    q.limit = Some(match int_param(ctx, "limit")? {
        None => max,
        Some(n) => n.min(max),
    });
    q.offset = int_param(ctx, "offset")?.unwrap_or(0);
    // Cinder's bound (its DB_MAX_INT); past i64::MAX SQLite refused the OFFSET, a 500
    // (found by schemathesis).
    if q.offset > MAX_OFFSET {
        return Err(Error::Invalid(format!("Invalid value for offset: {} is more than {MAX_OFFSET}.", q.offset)));
    }
    if let Some(m) = ctx.param("marker") {
        q.marker = Some(Id::parse(m).ok_or_else(|| Error::NotFound(format!("Marker {m} could not be found.")))?);
    }
    Ok(())
}

/// The sort keys asked for, by name, with `sort=k:dir,...` or the older
/// `sort_key`/`sort_dir` (not both).
pub fn sort_pairs(ctx: &Ctx<'_>) -> Result<Vec<(String, SortDir)>> {
    let has_old = ctx.param("sort_key").is_some() || ctx.param("sort_dir").is_some();
    let mut out = Vec::new();
    if let Some(sort) = ctx.param("sort") {
        if has_old {
            return Err(Error::Invalid(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter."
                    .into(),
            ));
        }
        for part in sort.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
            out.push((k.trim().to_string(), sort_dir(d)?));
        }
    } else if has_old {
        let k = ctx.param("sort_key").unwrap_or("created_at");
        out.push((k.to_string(), sort_dir(ctx.param("sort_dir").unwrap_or("desc"))?));
    }
    Ok(out)
}

/// Paging and sorting of a volume list.
pub fn paging(ctx: &Ctx<'_>, q: &mut ListQuery) -> Result<()> {
    paging_only(ctx, q)?;
    for (k, d) in sort_pairs(ctx)? {
        let key = sort_key(&k).ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?;
        q.sort.push((key, d));
    }
    Ok(())
}

/// Parse a Cinder metadata filter: JSON or a Python dict literal (`{'k': 'v'}`).
pub fn metadata_filter(v: &str) -> Result<Vec<(String, String)>> {
    let parsed: serde_json::Value =
        serde_json::from_str(v)
            .or_else(|_| serde_json::from_str(&v.replace('\'', "\"")))
            .map_err(|_| Error::Invalid(format!("Invalid metadata filter '{v}': expected a JSON object.")))?;
    let obj = parsed
        .as_object()
        .ok_or_else(|| Error::Invalid(format!("Invalid metadata filter '{v}': expected a JSON object.")))?;
    obj.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            other => Ok((k.clone(), other.to_string())),
        })
        .collect()
}

fn time_filter(field: VolumeField, v: &str) -> Result<Filter> {
    let (op, t) = match v.split_once(':') {
        Some((op @ ("gt" | "gte" | "lt" | "lte" | "eq" | "neq"), rest)) => (op, rest),
        _ => ("eq", v),
    };
    let ts = Timestamp::parse(t).ok_or_else(|| Error::Invalid(format!("Invalid time filter value '{v}'.")))?;
    let op = match op {
        "gt" => FilterOp::Gt,
        "gte" => FilterOp::Ge,
        "lt" => FilterOp::Lt,
        "lte" => FilterOp::Le,
        "neq" => FilterOp::Ne,
        _ => FilterOp::Eq,
    };
    Ok(Filter { field, op, value: Scalar::Text(ts.to_string()) })
}

/// The volume filters of a list request.
pub fn volume_filters(ctx: &Ctx<'_>, q: &mut ListQuery) -> Result<()> {
    let strict = ctx.version.at_least(31);
    let like_ok = ctx.version.at_least(34);
    let mut invalid = Vec::new();
    for (raw_key, v) in &ctx.query {
        if CONTROL.contains(&raw_key.as_str()) {
            continue;
        }
        let (key, like) = match raw_key.strip_suffix('~') {
            Some(k) if like_ok && LIKE_FILTERS.contains(&k) => (k, true),
            Some(_) => {
                invalid.push(raw_key.clone());
                continue;
            }
            None => (raw_key.as_str(), false),
        };
        let key = match key {
            "display_name" => "name",
            "display_description" => "description",
            k => k,
        };
        let allowed = USER_FILTERS.contains(&key) || (ctx.caller.is_admin && ADMIN_FILTERS.contains(&key));
        if !allowed {
            invalid.push(raw_key.clone());
            continue;
        }
        let text = |field| Filter {
            field,
            op: if like { FilterOp::Like } else { FilterOp::Eq },
            value: Scalar::Text(v.clone()),
        };
        match key {
            "name" => q.filters.push(text(VolumeField::Name)),
            "description" => q.filters.push(text(VolumeField::Description)),
            // An unknown status matches nothing, as in Cinder: an empty list, not a 400.
            "status" => q.filters.push(text(VolumeField::Status)),
            "availability_zone" => q.filters.push(text(VolumeField::AvailabilityZone)),
            "project_id" => q.filters.push(text(VolumeField::ProjectId)),
            "user_id" => q.filters.push(text(VolumeField::UserId)),
            "host" => q.filters.push(text(VolumeField::Host)),
            "migration_status" => q.filters.push(text(VolumeField::MigrationStatus)),
            "id" => q.filters.push(text(VolumeField::Id)),
            "volume_type" | "volume_type_id" => q.filters.push(text(VolumeField::VolumeTypeId)),
            "attach_status" => q.filters.push(text(VolumeField::AttachStatus)),
            "size" => {
                let n: i64 = v.parse().map_err(|_| Error::Invalid(format!("Invalid size filter '{v}'.")))?;
                q.filters.push(Filter { field: VolumeField::Size, op: FilterOp::Eq, value: Scalar::Integer(n) });
            }
            "bootable" => {
                let b = crate::api::body::parse_bool("bootable", &serde_json::Value::String(v.clone()))?;
                q.filters.push(Filter {
                    field: VolumeField::Bootable,
                    op: FilterOp::Eq,
                    value: Scalar::Integer(b as i64),
                });
            }
            "created_at" => q.filters.push(time_filter(VolumeField::CreatedAt, v)?),
            "updated_at" => q.filters.push(time_filter(VolumeField::UpdatedAt, v)?),
            "metadata" => q.metadata.extend(metadata_filter(v)?),
            // Cinder ignores the filter before 3.10.
            "group_id" if ctx.version.at_least(10) => q.filters.push(text(VolumeField::GroupId)),
            "group_id" => {}
            _ => invalid.push(raw_key.clone()),
        }
    }
    if strict && !invalid.is_empty() {
        return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
    }
    Ok(())
}

/// How a list of group types, groups or group snapshots may be filtered and sorted.
pub struct GroupListSpec {
    /// Columns a list may be sorted on (`name`, `created_at`, ...).
    pub sortable: &'static [&'static str],
    /// Filters (columns) any caller may use.
    pub user_filters: &'static [&'static str],
    /// Filters (columns) only admins may use.
    pub admin_filters: &'static [&'static str],
    /// Parameters that are not filters.
    pub control: &'static [&'static str],
    /// Whether parameters that are not filters the caller may use count (else they
    /// are ignored, as Cinder's group type list ignores them).
    pub strict: bool,
}

/// The paging, sorting and filters of a list of group types, groups or group
/// snapshots. From 3.31 a filter the caller may not use is a 400 (Cinder's
/// `resource_filters`); before, Cinder matches nothing for a column that does not
/// exist, and so does this.
pub fn group_query(ctx: &Ctx<'_>, spec: &GroupListSpec) -> Result<crate::query::GroupQuery> {
    let mut page = ListQuery::default();
    paging_only(ctx, &mut page)?;
    let mut q =
        crate::query::GroupQuery { limit: page.limit, marker: page.marker, offset: page.offset, ..Default::default() };
    for (k, d) in sort_pairs(ctx)? {
        let key = if k == "display_name" { "name" } else { k.as_str() };
        let col = spec
            .sortable
            .iter()
            .find(|c| **c == key)
            .ok_or_else(|| Error::Invalid(format!("Invalid sort key '{k}'.")))?;
        q.sort.push((col, d));
    }
    let mut invalid = Vec::new();
    for (k, v) in &ctx.query {
        if CONTROL.contains(&k.as_str()) || spec.control.contains(&k.as_str()) {
            continue;
        }
        let allowed = |name: &str| {
            spec.user_filters.contains(&name) || (ctx.caller.is_admin && spec.admin_filters.contains(&name))
        };
        match k.strip_suffix('~') {
            Some(base) if base == "name" && ctx.version.at_least(34) && allowed("name") => {
                q.name_like = Some(v.clone());
            }
            _ => match spec.user_filters.iter().chain(spec.admin_filters).find(|c| **c == k.as_str()) {
                Some(col) if allowed(col) => q.exact.push((col, v.clone())),
                _ => invalid.push(k.clone()),
            },
        }
    }
    if !invalid.is_empty() && spec.strict {
        if ctx.version.at_least(31) && !ctx.caller.is_admin {
            return Err(Error::Invalid(format!("Invalid filters {} are found in query options.", invalid.join(","))));
        }
        // A filter on something the records do not have matches nothing.
        q.exact.push(("id", String::new()));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_filters_accept_json_and_python_dicts() {
        assert_eq!(metadata_filter(r#"{"a":"b"}"#).unwrap(), vec![("a".to_string(), "b".to_string())]);
        assert_eq!(metadata_filter("{'a': 'b'}").unwrap(), vec![("a".to_string(), "b".to_string())]);
        assert!(metadata_filter("a=b").is_err());
    }

    #[test]
    fn time_filters() {
        let f = time_filter(VolumeField::CreatedAt, "gt:2024-01-01T00:00:00").unwrap();
        assert_eq!(f.op, FilterOp::Gt);
        assert_eq!(f.value, Scalar::Text("2024-01-01T00:00:00.000000".into()));
        assert!(time_filter(VolumeField::CreatedAt, "gt:soon").is_err());
    }

    #[test]
    fn sort_keys_and_dirs() {
        assert_eq!(sort_key("display_name"), Some(VolumeField::Name));
        assert_eq!(sort_key("bogus"), None);
        assert!(sort_dir("ASC").is_ok());
        assert!(sort_dir("sideways").is_err());
    }
}
