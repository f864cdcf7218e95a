//! Service rows: the scheduler and one volume service per backend.

use rusqlite::{params, Connection, OptionalExtension};

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
        "SELECT host, binary, zone, disabled, disabled_reason, updated_at FROM services ORDER BY binary, host",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Service {
            host: r.get(0)?,
            binary: r.get(1)?,
            zone: r.get(2)?,
            disabled: r.get(3)?,
            disabled_reason: r.get(4)?,
            updated_at: ts_col(r, 5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
