//! Pools (`/scheduler-stats/get_pools`), zones (`/os-availability-zone`), services
//! (`/os-services`, with freeze and thaw), hosts (`/os-hosts`), backend capabilities
//! (`/capabilities/{host}`) and `/extensions`.

use serde_json::{json, Value};

use crate::api::body::element;
use crate::api::{Ctx, Reply};
use crate::error::{Error, Result};
use crate::policy::rules;
use crate::volume::services::host_matches;

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
        .filter(|s| host.as_ref().is_none_or(|h| host_matches(&s.service.host, h)))
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
                v["frozen"] = json!(s.service.frozen);
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
        "freeze" | "thaw" => {
            let host = ctx.body.as_ref().and_then(|b| b.get("host")).and_then(Value::as_str).ok_or_else(|| {
                Error::Invalid(format!("Invalid input received: {action} needs the 'host' of a volume service."))
            })?;
            ctx.core.freeze_host(&ctx.caller, host, action == "freeze")?;
            return Ok(Reply::empty(200));
        }
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
            ext("os-hosts", "Hosts", "Admin-only host administration."),
            ext("os-quota-class-sets", "QuotaClasses", "Quota classes management support."),
            ext("capabilities", "Capabilities", "Capabilities support."),
            ext("qos-specs", "Qos_specs_manage", "QoS specs support."),
            ext("encryption", "VolumeTypeEncryption", "Encryption support for volume types."),
            ext("os-volume-encryption-metadata", "VolumeEncryptionMetadata", "Volume encryption metadata retrieval support."),
            ext("os-volume-transfer", "VolumeTransfer", "Volume transfer management support."),
            ext("backups", "Backups", "Backups support."),
        ]}),
    ))
}

/// `GET /resource_filters` (3.33): the filters each resource's list accepts.
pub fn resource_filters(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let all = [
        ("volume", crate::api::params::volume_filter_names()),
        ("snapshot", vec!["name", "status", "volume_id", "metadata"]),
        ("backup", crate::api::backups::USER_FILTERS.to_vec()),
        ("group", vec!["name"]),
        ("group_snapshot", vec!["name", "status", "group_id"]),
        ("attachment", vec!["volume_id", "status", "instance_id", "attach_status"]),
        ("pool", vec!["name", "volume_type"]),
        ("volume_type", vec!["is_public", "extra_specs"]),
        ("message", crate::api::messages::USER_FILTERS.to_vec()),
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

/// A service's last heartbeat, as `os-hosts` shows it.
fn service_row(s: &crate::volume::services::ServiceStatus) -> Value {
    json!({
        "service-status": if s.up { "available" } else { "unavailable" },
        "service": s.service.binary,
        "zone": s.service.zone,
        "service-state": if s.service.disabled { "disabled" } else { "enabled" },
        "host_name": s.service.host,
        "last-update": s.service.updated_at.to_string(),
    })
}

/// `GET /os-hosts[?zone=...]`
pub fn hosts(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let zone = ctx.param("zone").map(str::to_string);
    let hosts = ctx.core.list_hosts(&ctx.caller, zone.as_deref())?;
    Ok(Reply::json(200, json!({"hosts": hosts.iter().map(service_row).collect::<Vec<_>>()})))
}

/// `GET /os-hosts/{host}`: per project, the volumes and snapshots on a volume host,
/// after a `(total)` row (counts as strings, as Cinder shows them).
pub fn host_show(ctx: &mut Ctx<'_>, host: &str) -> Result<Reply> {
    let usage = ctx.core.host_usage(&ctx.caller, host)?;
    let row = |project: &str, vc: u64, vg: u64, sc: u64, sg: u64| {
        json!({"resource": {
            "host": host, "project": project,
            "volume_count": vc.to_string(), "total_volume_gb": vg.to_string(),
            "snapshot_count": sc.to_string(), "total_snapshot_gb": sg.to_string(),
        }})
    };
    let sum = |f: fn(&crate::model::HostUsage) -> u64| usage.iter().map(f).sum::<u64>();
    let mut rows = vec![row(
        "(total)",
        sum(|u| u.volume_count),
        sum(|u| u.volume_gb),
        sum(|u| u.snapshot_count),
        sum(|u| u.snapshot_gb),
    )];
    rows.extend(usage.iter().map(|u| row(&u.project_id, u.volume_count, u.volume_gb, u.snapshot_count, u.snapshot_gb)));
    Ok(Reply::json(200, json!({ "host": rows })))
}

/// `PUT /os-hosts/{host}` `{"status": "enable"|"disable"}`: enables or disables the
/// host's volume service; `maintenance_mode` is not provided (501, as Cinder).
pub fn host_update(ctx: &mut Ctx<'_>, host: &str) -> Result<Reply> {
    let body = ctx
        .body
        .as_ref()
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Invalid("The request body must be an object with 'status'.".into()))?;
    if body.contains_key("maintenance_mode") {
        return Err(Error::NotImplemented("Host maintenance mode is not provided by hearth.".into()));
    }
    let disabled = match body.get("status").and_then(Value::as_str) {
        Some("enable") => false,
        Some("disable") => true,
        _ => return Err(Error::Invalid("Invalid status: use \"enable\" or \"disable\".".into())),
    };
    ctx.caller.authorize_own(rules::HOSTS)?;
    let s = ctx.core.set_service_disabled(&ctx.caller, host, "cinder-volume", disabled, None)?;
    Ok(Reply::json(200, json!({"host": s.host, "status": if s.disabled { "disabled" } else { "enabled" }})))
}

/// `GET /capabilities/{host}`: what a volume backend reports of itself.
pub fn capabilities(ctx: &mut Ctx<'_>, host: &str) -> Result<Reply> {
    let p = ctx.core.backend_capabilities(&ctx.caller, host)?;
    let caps = p.capabilities();
    let text = |k: &str| caps.get(k).cloned().unwrap_or(Value::Null);
    let prop = |title: &str, description: &str| json!({"title": title, "description": description, "type": "boolean"});
    Ok(Reply::json(
        200,
        json!({
            "namespace": format!("OS::Storage::Capabilities::{}", p.name.split('#').next().unwrap_or(&p.name)),
            "vendor_name": text("vendor_name"),
            "volume_backend_name": text("volume_backend_name"),
            "pool_name": text("pool_name"),
            "driver_version": text("driver_version"),
            "storage_protocol": text("storage_protocol"),
            "display_name": Value::Null,
            "description": Value::Null,
            "visibility": Value::Null,
            "replication_targets": [],
            "properties": {
                "thin_provisioning": prop("Thin Provisioning", "Sets thin provisioning."),
                "multiattach": prop("Multi-attach", "Allows a volume to be attached to several hosts."),
            },
        }),
    ))
}
