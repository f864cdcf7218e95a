//! Rows of the fleet's work queue (`handed_requests`): requests one node hands to the
//! node that owns the pool they need, taken by that node in order, answered, and
//! read back by the node that waits (see `crate::volume::fleet`).

use crate::error::Result;
use crate::ids::{Id, Timestamp};
use crate::model::{Handed, HandedState};
use crate::store::db::{params, Connection, OptionalExtension, Row};

use super::{bad_row, ts_col};

const COLUMNS: &str = "id, node, from_node, state, request, reply, created_at, updated_at";

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Handed> {
    let id: String = row.get(0)?;
    let state: String = row.get(3)?;
    Ok(Handed {
        id: Id::parse(&id).ok_or_else(|| bad_row("handed request id", &id))?,
        node: row.get(1)?,
        from_node: row.get(2)?,
        state: HandedState::parse(&state).ok_or_else(|| bad_row("handed request state", &state))?,
        request: row.get(4)?,
        reply: row.get(5)?,
        created_at: ts_col(row, 6)?,
        updated_at: ts_col(row, 7)?,
    })
}

/// Record a request handed over.
pub fn insert(conn: &Connection, h: &Handed) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO handed_requests (id, node, from_node, state, request, reply, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        h.id.to_string(),
        h.node,
        h.from_node,
        h.state.as_str(),
        h.request,
        h.reply,
        h.created_at.to_string(),
        h.updated_at.to_string(),
    ])?;
    Ok(())
}

/// One request by id.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Handed>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM handed_requests WHERE id = ?1"))?
        .query_row(params![id.to_string()], from_row)
        .optional()?)
}

/// Whether node `node` has requests queued since `since` (a read, before taking them
/// in a write).
pub fn any_queued(conn: &Connection, node: &str, since: Timestamp) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM handed_requests WHERE node = ?1 AND state = 'queued' AND created_at >= ?2 LIMIT 1",
        )?
        .query_row(params![node, since.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Take node `node`'s queued requests handed over since `since` (oldest first, at
/// most `limit`): they are `running` from now on.
pub fn claim(conn: &Connection, node: &str, since: Timestamp, limit: u32) -> Result<Vec<Handed>> {
    let now = Timestamp::now();
    let mut taken: Vec<Handed> = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM handed_requests WHERE node = ?1 AND state = 'queued' AND created_at >= ?2
              ORDER BY created_at LIMIT ?3"
        ))?
        .query_map(params![node, since.to_string(), i64::from(limit)], from_row)?
        .collect::<crate::store::db::DbResult<_>>()?;
    for h in &mut taken {
        conn.execute(
            "UPDATE handed_requests SET state = 'running', updated_at = ?2 WHERE id = ?1",
            params![h.id.to_string(), now.to_string()],
        )?;
        h.state = HandedState::Running;
        h.updated_at = now;
    }
    Ok(taken)
}

/// Move request `id` from `from` to `to` (with `reply` when given); whether it was
/// in `from`.
pub fn transition(conn: &Connection, id: Id, from: HandedState, to: HandedState, reply: Option<&str>) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE handed_requests SET state = ?3, reply = COALESCE(?4, reply), updated_at = ?5
          WHERE id = ?1 AND state = ?2",
        params![id.to_string(), from.as_str(), to.as_str(), reply, Timestamp::now().to_string()],
    )? == 1)
}

/// Node `node`'s requests that it was running when it stopped: `lost` from now on.
pub fn abandon_running(conn: &Connection, node: &str) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE handed_requests SET state = 'lost', updated_at = ?2 WHERE node = ?1 AND state = 'running'",
        params![node, Timestamp::now().to_string()],
    )?)
}

/// Forget a request.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.execute("DELETE FROM handed_requests WHERE id = ?1", params![id.to_string()])?;
    Ok(())
}

/// Forget the requests last changed before `before` that nobody waits for any more
/// (the node that handed them over answers or gives up long before).
pub fn purge(conn: &Connection, before: Timestamp) -> Result<usize> {
    Ok(conn.execute("DELETE FROM handed_requests WHERE updated_at < ?1", params![before.to_string()])?)
}
