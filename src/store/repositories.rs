//! Rows of `backup_repositories`: the backup repository each node of a fleet uses (its
//! random id and where it is), so that a fleet whose nodes would each keep backups
//! the others cannot see is found before a backup is made (see
//! `crate::volume::backups`). Each node writes only its own row.

use crate::error::Result;
use crate::ids::Timestamp;
use crate::store::db::{params, Connection};

use super::ts_col;

/// The repository one node uses.
#[derive(Clone, Debug, PartialEq)]
pub struct RepositoryRow {
    /// The node (its `host`).
    pub node: String,
    /// The repository's random id.
    pub repository: String,
    /// Where it is, described (`posix:/srv/backups`, `s3:https://.../bucket`).
    pub target: String,
    /// When the node wrote it.
    pub updated_at: Timestamp,
}

/// Record (or replace) the repository `node` uses.
pub fn publish(conn: &Connection, node: &str, repository: &str, target: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO backup_repositories (node, repository, target, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (node) DO UPDATE SET repository = excluded.repository, target = excluded.target,
             updated_at = excluded.updated_at",
    )?
    .execute(params![node, repository, target, Timestamp::now().to_string()])?;
    Ok(())
}

/// Every node's repository, by node.
pub fn list(conn: &Connection) -> Result<Vec<RepositoryRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT node, repository, target, updated_at FROM backup_repositories ORDER BY node")?;
    let rows = stmt.query_map([], |r| {
        Ok(RepositoryRow { node: r.get(0)?, repository: r.get(1)?, target: r.get(2)?, updated_at: ts_col(r, 3)? })
    })?;
    Ok(rows.collect::<crate::store::db::DbResult<_>>()?)
}
