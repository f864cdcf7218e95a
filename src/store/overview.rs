//! Read-only queries for `hearthd status` ([`crate::status`]): work under way, oldest
//! first, across volumes, snapshots and backups.

use crate::store::db::Connection;

use crate::error::Result;
use crate::ids::Timestamp;

use super::ts_col;

/// Statuses of work under way (transitional states), by table.
const UNDER_WAY: &str = "
    SELECT 'volume', id, status, updated_at FROM volumes
     WHERE status IN ('creating', 'deleting', 'extending', 'attaching', 'detaching', 'backing-up',
                      'restoring-backup', 'retyping', 'maintenance', 'reverting')
    UNION ALL
    SELECT 'snapshot', id, status, updated_at FROM snapshots
     WHERE status IN ('creating', 'deleting', 'backing-up', 'restoring', 'unmanaging')
    UNION ALL
    SELECT 'backup', id, status, updated_at FROM backups
     WHERE status IN ('creating', 'deleting', 'restoring')";

/// An object whose work is under way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnderWay {
    /// `volume`, `snapshot` or `backup`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Its transitional status.
    pub status: String,
    /// When it last changed.
    pub since: Timestamp,
}

/// How many objects have work under way, and the `limit` oldest of them.
pub fn under_way(conn: &Connection, limit: usize) -> Result<(u64, Vec<UnderWay>)> {
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM ({UNDER_WAY}) AS w"), [], |r| r.get(0))?;
    let mut st = conn.prepare(&format!("{UNDER_WAY} ORDER BY 4, 2 LIMIT ?1"))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok(UnderWay { kind: r.get(0)?, id: r.get(1)?, status: r.get(2)?, since: ts_col(r, 3)? })
    })?;
    Ok((u64::try_from(total).unwrap_or(0), rows.collect::<crate::store::db::DbResult<_>>()?))
}
