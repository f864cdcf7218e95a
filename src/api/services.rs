//! Pools (`/scheduler-stats/get_pools`), zones (`/os-availability-zone`), services
//! (`/os-services`) and `/extensions`.

use serde_json::{json, Value};

use crate::api::body::element;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::policy::rules;

/// `GET /scheduler-stats/get_pools[?detail=True]`
pub fn pools(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let detail = ctx.flag("detail")?;
    let name = ctx.param("name").map(str::to_string);
    let pools = ctx.core.get_pools(&ctx.caller)?;
    let items: Vec<Value> =
        pools
            .iter()
            .filter(|p| name.as_ref().is_none_or(|n| &p.name == n))
            .map(|p| {
                if detail {
                    json!({"name": p.name, "capabilities": p.capabilities()})
                } else {
                    json!({"name": p.name})
                }
            })
            .collect();
    Ok(Reply::json(200, json!({ "pools": items })))
}

/// `GET /os-availability-zone`
pub fn zones(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let items: Vec<Value> =
        ctx.core.zones().into_iter().map(|z| json!({"zoneName": z, "zoneState": {"available": true}})).collect();
    Ok(Reply::json(200, json!({ "availabilityZoneInfo": items })))
}

/// `GET /os-services[?host=...&binary=...]`
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let host = ctx.param("host").map(str::to_string);
    let binary = ctx.param("binary").map(str::to_string);
    let services = ctx.core.list_services(&ctx.caller)?;
    let items: Vec<Value> = services
        .iter()
        .filter(|s| host.as_ref().is_none_or(|h| &s.service.host == h))
        .filter(|s| binary.as_ref().is_none_or(|b| &s.service.binary == b))
        .map(|s| {
            let mut v = json!({
                "binary": s.service.binary,
                "host": s.service.host,
                "zone": s.service.zone,
                "status": if s.service.disabled { "disabled" } else { "enabled" },
                "state": if s.up { "up" } else { "down" },
                "updated_at": s.service.updated_at.to_string(),
                "disabled_reason": s.service.disabled_reason,
            });
            if ctx.version.at_least(7) {
                v["cluster"] = Value::Null;
            }
            if s.service.binary == "cinder-volume" {
                v["replication_status"] = json!("disabled");
                v["active_backend_id"] = Value::Null;
                v["frozen"] = json!(false);
                if ctx.version.at_least(49) {
                    v["backend_state"] = json!(if s.up { "up" } else { "down" });
                }
            }
            v
        })
        .collect();
    Ok(Reply::json(200, json!({ "services": items })))
}

/// `PUT /os-services/{enable|disable|disable-log-reason}`
pub fn update(ctx: &mut Ctx<'_>, action: &str) -> Result<Reply> {
    let (disabled, with_reason) = match action {
        "enable" => (false, false),
        "disable" => (true, false),
        "disable-log-reason" => (true, true),
        other => return Err(Error::NotFound(format!("Unknown action {other} on os-services."))),
    };
    let body = match ctx.body.as_ref() {
        Some(b @ Value::Object(_)) => json!({"service": b}),
        _ => return Err(Error::Invalid("The request body must name 'host' and 'binary'.".into())),
    };
    let b = element(Some(&body), "service")?;
    let host = b.req_str("host")?;
    let binary = b.opt_str("binary")?.unwrap_or_else(|| "cinder-volume".into());
    let reason = if with_reason { Some(b.req_str("disabled_reason")?) } else { None };
    let s = ctx.core.set_service_disabled(&ctx.caller, &host, &binary, disabled, reason.as_deref())?;
    let mut out = json!({
        "host": s.host,
        "binary": s.binary,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "disabled": s.disabled,
    });
    if with_reason {
        out["disabled_reason"] = json!(s.disabled_reason);
    }
    Ok(Reply::json(200, out))
}

/// `GET /extensions`
pub fn extensions(_ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ext = |alias: &str, name: &str, desc: &str| json!({"alias": alias, "name": name, "description": desc, "links": [], "updated": "2023-08-31T00:00:00+00:00"});
    Ok(Reply::json(
        200,
        json!({"extensions": [
            ext("os-types-manage", "TypesManage", "Types manage support."),
            ext("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
            ext("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
            ext("os-quota-sets", "Quotas", "Quota management support."),
            ext("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
            ext("os-services", "Services", "Services support."),
            ext("scheduler-stats", "Scheduler_stats", "Scheduler stats support."),
            ext("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
            ext("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
            ext("os-admin-actions", "AdminActions", "Enable admin actions."),
        ]}),
    ))
}

/// `GET /resource_filters` (3.33): the filters each resource's list accepts.
pub fn resource_filters(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let all = [
        ("volume", crate::api::params::volume_filter_names()),
        ("snapshot", vec!["name", "status", "volume_id", "metadata"]),
        ("attachment", vec!["volume_id", "status", "instance_id", "attach_status"]),
        ("pool", vec!["name", "volume_type"]),
        ("volume_type", vec!["is_public", "extra_specs"]),
    ];
    let want = ctx.param("resource").map(str::to_string);
    let items: Vec<Value> = all
        .iter()
        .filter(|(r, _)| want.as_deref().is_none_or(|w| w == *r))
        .map(|(r, f)| json!({"resource": r, "filters": f}))
        .collect();
    Ok(Reply::json(200, json!({ "resource_filters": items })))
}

/// `PUT /os-services/set-log` and `get-log` (3.32): the daemon's log level.
pub fn log_levels(ctx: &mut Ctx<'_>, action: &str) -> Result<Reply> {
    ctx.caller.authorize_own(rules::SERVICES_UPDATE)?;
    if action == "set-log" {
        let level = match ctx.body.as_ref().and_then(|b| b.get("level")).and_then(Value::as_str) {
            Some(l) => l.to_ascii_uppercase(),
            None => return Err(Error::Invalid("Invalid input received: 'level' is a required property.".into())),
        };
        let filter = match level.as_str() {
            "DEBUG" => log::LevelFilter::Debug,
            "INFO" => log::LevelFilter::Info,
            "WARNING" | "WARN" => log::LevelFilter::Warn,
            "ERROR" | "CRITICAL" => log::LevelFilter::Error,
            other => {
                return Err(Error::Invalid(format!("Invalid log level '{other}': use DEBUG, INFO, WARNING or ERROR.")))
            }
        };
        log::set_max_level(filter);
        return Ok(Reply::empty(202));
    }
    let level = match log::max_level() {
        log::LevelFilter::Trace | log::LevelFilter::Debug => "DEBUG",
        log::LevelFilter::Info => "INFO",
        log::LevelFilter::Warn => "WARNING",
        _ => "ERROR",
    };
    Ok(Reply::json(
        200,
        json!({"log_levels": [{"binary": "cinder-volume", "host": ctx.core.host(), "levels": {"hearth": level}}]}),
    ))
}
