//! Service rows: the scheduler and one volume service per backend.

use crate::store::db::{params, Connection, OptionalExtension};

use crate::error::Result;
use crate::ids::Timestamp;
use crate::model::Service;

use super::ts_col;

/// Make sure a service row exists and record a heartbeat.
pub fn heartbeat(conn: &Connection, host: &str, binary: &str, zone: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO services (host, binary, zone, disabled, disabled_reason, updated_at)
         VALUES (?1, ?2, ?3, 0, NULL, ?4)
         ON CONFLICT (host, binary) DO UPDATE SET zone = excluded.zone, updated_at = excluded.updated_at",
    )?
    .execute(params![host, binary, zone, Timestamp::now().to_string()])?;
    Ok(())
}

/// Every service.
pub fn list(conn: &Connection) -> Result<Vec<Service>> {
    let mut stmt = conn.prepare_cached(
        "SELECT host, binary, zone, disabled, disabled_reason, updated_at, frozen FROM services
         ORDER BY binary, host",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Service {
            host: r.get(0)?,
            binary: r.get(1)?,
            zone: r.get(2)?,
            disabled: r.get(3)?,
            disabled_reason: r.get(4)?,
            updated_at: ts_col(r, 5)?,
            frozen: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<crate::store::db::DbResult<_>>()?)
}

/// Enable or disable a service; `None` when there is no such service.
pub fn set_disabled(
    conn: &Connection,
    host: &str,
    binary: &str,
    disabled: bool,
    reason: Option<&str>,
) -> Result<Option<()>> {
    let n = conn
        .prepare_cached("UPDATE services SET disabled = ?3, disabled_reason = ?4 WHERE host = ?1 AND binary = ?2")?
        .execute(params![host, binary, disabled, reason])?;
    Ok((n > 0).then_some(()))
}

/// Whether a service is disabled (`None`: unknown).
pub fn is_disabled(conn: &Connection, host: &str, binary: &str) -> Result<Option<bool>> {
    Ok(conn
        .prepare_cached("SELECT disabled FROM services WHERE host = ?1 AND binary = ?2")?
        .query_row(params![host, binary], |r| r.get(0))
        .optional()?)
}

/// Freeze or thaw a service; `None` when there is no such service.
pub fn set_frozen(conn: &Connection, host: &str, binary: &str, frozen: bool) -> Result<Option<()>> {
    let n = conn
        .prepare_cached("UPDATE services SET frozen = ?3 WHERE host = ?1 AND binary = ?2")?
        .execute(params![host, binary, frozen])?;
    Ok((n > 0).then_some(()))
}

/// Whether a service is frozen (`None`: unknown).
pub fn is_frozen(conn: &Connection, host: &str, binary: &str) -> Result<Option<bool>> {
    Ok(conn
        .prepare_cached("SELECT frozen FROM services WHERE host = ?1 AND binary = ?2")?
        .query_row(params![host, binary], |r| r.get(0))
        .optional()?)
}

pub use crate::model::HostUsage;

/// Per project, what lives on `host` (`host@backend`, matching its pools
/// `host@backend#pool` too), sorted by project.
pub fn host_usage(conn: &Connection, host: &str) -> Result<Vec<HostUsage>> {
    let mut out: std::collections::BTreeMap<String, HostUsage> = Default::default();
    let pattern = format!("{}#%", host.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    for (table, is_snap) in [("volumes", false), ("snapshots", true)] {
        let sql = format!(
            "SELECT project_id, COUNT(*), COALESCE(SUM(size), 0) FROM {table}
             WHERE host = ?1 OR host LIKE ?2 ESCAPE '\\' GROUP BY project_id"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![host, pattern], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (project, count, gb) = row?;
            let u =
                out.entry(project.clone()).or_insert_with(|| HostUsage { project_id: project, ..Default::default() });
            if is_snap {
                u.snapshot_count = count as u64;
                u.snapshot_gb = gb as u64;
            } else {
                u.volume_count = count as u64;
                u.volume_gb = gb as u64;
            }
        }
    }
    Ok(out.into_values().collect())
}
