//! Rows of `published_pools`: each node's pools as its scheduler last saw them, so
//! that every node of a fleet schedules across every node's pools (see
//! `crate::volume::placement`). Only the node that owns a pool writes its row.

use crate::error::Result;
use crate::ids::Timestamp;
use crate::store::db::{params, Connection};

use super::ts_col;

/// One published pool.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedRow {
    /// The pool's full name, `host@backend#pool`.
    pub name: String,
    /// The node that owns it (its `host`).
    pub node: String,
    /// Its state, as the owner's scheduler serialised it.
    pub state: String,
    /// When the owner wrote it.
    pub updated_at: Timestamp,
}

/// Record (or replace) a pool's published state.
pub fn publish(conn: &Connection, name: &str, node: &str, state: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO published_pools (name, node, state, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET node = excluded.node, state = excluded.state,
             updated_at = excluded.updated_at",
    )?
    .execute(params![name, node, state, Timestamp::now().to_string()])?;
    Ok(())
}

/// Forget the pools of `node` that it no longer has (its config dropped them).
pub fn forget_others(conn: &Connection, node: &str, keep: &[String]) -> Result<usize> {
    let mut gone = 0;
    let names: Vec<String> = {
        let mut stmt = conn.prepare_cached("SELECT name FROM published_pools WHERE node = ?1")?;
        let rows = stmt.query_map(params![node], |r| r.get::<_, String>(0))?;
        rows.collect::<crate::store::db::DbResult<_>>()?
    };
    for name in names.iter().filter(|n| !keep.contains(n)) {
        gone += conn.prepare_cached("DELETE FROM published_pools WHERE name = ?1")?.execute(params![name])?;
    }
    Ok(gone)
}

/// Every published pool, by name.
pub fn list(conn: &Connection) -> Result<Vec<PublishedRow>> {
    let mut stmt = conn.prepare_cached("SELECT name, node, state, updated_at FROM published_pools ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(PublishedRow { name: r.get(0)?, node: r.get(1)?, state: r.get(2)?, updated_at: ts_col(r, 3)? })
    })?;
    Ok(rows.collect::<crate::store::db::DbResult<_>>()?)
}
