//! `/limits`: the caller's absolute limits and what it uses of them.

use serde_json::json;

use crate::api::{Ctx, Reply};
use crate::error::Result;
use crate::policy::rules;

/// `GET /limits`
pub fn show(ctx: &mut Ctx<'_>) -> Result<Reply> {
    ctx.caller.authorize_own(rules::USED_LIMITS)?;
    // 3.39: an admin may ask for another project's limits; others get their own.
    let project = match ctx.param("project_id") {
        Some(p) if ctx.version.at_least(39) && ctx.caller.is_admin => p.to_string(),
        _ => ctx.caller.project_id.clone(),
    };
    let (limits, usage) = ctx.core.quota_show(&ctx.caller, &project)?;
    let l = |k: &str| limits.get(k).copied().unwrap_or(-1);
    let u = |k: &str| usage.in_use.get(k).copied().unwrap_or(0);
    Ok(Reply::json(
        200,
        json!({"limits": {"rate": [], "absolute": {
            "maxTotalVolumes": l("volumes"),
            "maxTotalSnapshots": l("snapshots"),
            "maxTotalVolumeGigabytes": l("gigabytes"),
            "maxTotalBackups": l("backups"),
            "maxTotalBackupGigabytes": l("backup_gigabytes"),
            "totalVolumesUsed": u("volumes"),
            "totalSnapshotsUsed": u("snapshots"),
            "totalGigabytesUsed": u("gigabytes"),
            "totalBackupsUsed": u("backups"),
            "totalBackupGigabytesUsed": u("backup_gigabytes"),
        }}}),
    ))
}
