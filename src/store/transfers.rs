//! Transfer rows: insert, load, delete, and lists. A row lives while its offer is
//! open; accepting or deleting the transfer removes it, and so does deleting its
//! volume's record (`ON DELETE CASCADE`). The offering project is the `project_id`
//! column.

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::Id;
use crate::model::{AuthKeyHash, Transfer};
use crate::query::ColumnQuery;

use super::{bad_row, column_query_sql, ts_col};

const COLUMNS: &str = "a.id, a.volume_id, a.name, a.project_id, a.no_snapshots, a.salt, a.key_sha256, a.created_at";

fn id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Id> {
    let s: String = row.get(i)?;
    Id::parse(&s).ok_or_else(|| bad_row("id", &s))
}

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Transfer> {
    Ok(Transfer {
        id: id_col(row, 0)?,
        volume_id: id_col(row, 1)?,
        name: row.get(2)?,
        source_project_id: row.get(3)?,
        no_snapshots: row.get(4)?,
        auth: AuthKeyHash { salt: row.get(5)?, sha256: row.get(6)? },
        created_at: ts_col(row, 7)?,
    })
}

/// Record an open transfer.
pub fn insert(conn: &Connection, t: &Transfer) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO transfers (id, volume_id, name, project_id, no_snapshots, salt, key_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.id.to_string(),
        t.volume_id.to_string(),
        t.name,
        t.source_project_id,
        t.no_snapshots,
        t.auth.salt,
        t.auth.sha256,
        t.created_at.to_string(),
    ])?;
    Ok(())
}

/// One transfer.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Transfer>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM transfers a WHERE a.id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?)
}

/// The transfer of a volume, if one is recorded.
pub fn of_volume(conn: &Connection, volume: Id) -> Result<Option<Transfer>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM transfers a WHERE a.volume_id = ?1"))?
        .query_row([volume.to_string()], from_row)
        .optional()?)
}

/// Remove a transfer.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM transfers WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Transfers matching `q`.
pub fn list(conn: &Connection, q: &ColumnQuery) -> Result<Vec<Transfer>> {
    let mut args = Vec::new();
    let (cond, tail) = column_query_sql(conn, "transfers", q, &mut args)?;
    let sql = format!("SELECT {COLUMNS} FROM transfers a WHERE {cond} {tail}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let out =
        stmt.query_map(params_from_iter(args.iter()), from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}
