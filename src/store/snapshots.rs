//! Snapshot rows: insert, load, save, delete, and lists.

use std::collections::BTreeMap;

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{Snapshot, Task};

use super::{order_after, ts_col};
use crate::query::{SnapshotQuery, SortDir};

const COLUMNS: &str = "s.id, s.project_id, s.user_id, s.volume_id, s.name, s.description, s.size, s.status,
     s.progress, s.volume_type_id, s.host, s.task, s.error_reason, s.consumes_quota, s.created_at, s.updated_at,
     s.group_snapshot_id";

fn conversion(what: &str, v: &str) -> crate::store::db::DbError {
    crate::store::db::conversion(what, v)
}

fn id_at(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Id> {
    let s: String = row.get(i)?;
    Id::parse(&s).ok_or_else(|| conversion("id", &s))
}

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Snapshot> {
    let status: String = row.get(7)?;
    let task: Option<String> = row.get(11)?;
    Ok(Snapshot {
        id: id_at(row, 0)?,
        project_id: row.get(1)?,
        user_id: row.get(2)?,
        volume_id: id_at(row, 3)?,
        name: row.get(4)?,
        description: row.get(5)?,
        size: row.get::<_, i64>(6)? as u64,
        status: status.parse().map_err(|_| conversion("status", &status))?,
        progress: row.get(8)?,
        volume_type_id: id_at(row, 9)?,
        group_snapshot_id: {
            let g: Option<String> = row.get(16)?;
            g.map(|g| Id::parse(&g).ok_or_else(|| conversion("id", &g))).transpose()?
        },
        host: row.get(10)?,
        task: task.map(|t| Task::from_db(&t).ok_or_else(|| conversion("task", &t))).transpose()?,
        error_reason: row.get(12)?,
        consumes_quota: row.get(13)?,
        created_at: ts_col(row, 14)?,
        updated_at: ts_col(row, 15)?,
        metadata: BTreeMap::new(),
    })
}

fn load_metadata(conn: &Connection, snaps: &mut [Snapshot]) -> Result<()> {
    if snaps.is_empty() {
        return Ok(());
    }
    let index: BTreeMap<String, usize> = snaps.iter().enumerate().map(|(i, s)| (s.id.to_string(), i)).collect();
    let ids: Vec<&String> = index.keys().collect();
    for chunk in ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql =
            format!("SELECT snapshot_id, key, value FROM snapshot_metadata WHERE snapshot_id IN ({placeholders})");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(chunk.iter()))?;
        while let Some(r) = rows.next()? {
            let sid: String = r.get(0)?;
            if let Some(&i) = index.get(&sid) {
                snaps[i].metadata.insert(r.get(1)?, r.get(2)?);
            }
        }
    }
    Ok(())
}

/// Insert a snapshot with its metadata.
pub fn insert(conn: &Connection, s: &Snapshot) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO snapshots (id, project_id, user_id, volume_id, name, description, size, status,
             progress, volume_type_id, host, task, error_reason, consumes_quota, created_at, updated_at,
             group_snapshot_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        s.id.to_string(),
        s.project_id,
        s.user_id,
        s.volume_id.to_string(),
        s.name,
        s.description,
        s.size as i64,
        s.status.as_str(),
        s.progress,
        s.volume_type_id.to_string(),
        s.host,
        s.task.as_ref().map(Task::to_db),
        s.error_reason,
        s.consumes_quota,
        s.created_at.to_string(),
        s.updated_at.to_string(),
        s.group_snapshot_id.map(|g| g.to_string()),
    ])?;
    replace_metadata(conn, s.id, &s.metadata)
}

/// Save the changeable columns of a snapshot (not its metadata).
pub fn save(conn: &Connection, s: &Snapshot) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE snapshots SET name = ?2, description = ?3, status = ?4, progress = ?5, host = ?6,
                 task = ?7, error_reason = ?8, updated_at = ?9 WHERE id = ?1",
        )?
        .execute(params![
            s.id.to_string(),
            s.name,
            s.description,
            s.status.as_str(),
            s.progress,
            s.host,
            s.task.as_ref().map(Task::to_db),
            s.error_reason,
            s.updated_at.to_string(),
        ])?;
    if n == 0 {
        return Err(Error::NotFound(format!("Snapshot {} could not be found.", s.id)));
    }
    Ok(())
}

/// Give a snapshot to another project and user (with its volume, by a transfer).
pub fn set_owner(conn: &Connection, id: Id, project: &str, user: &str, updated_at: Timestamp) -> Result<()> {
    conn.prepare_cached("UPDATE snapshots SET project_id = ?2, user_id = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![id.to_string(), project, user, updated_at.to_string()])?;
    Ok(())
}

/// Replace a snapshot's metadata.
pub fn replace_metadata(conn: &Connection, id: Id, meta: &BTreeMap<String, String>) -> Result<()> {
    conn.prepare_cached("DELETE FROM snapshot_metadata WHERE snapshot_id = ?1")?.execute([id.to_string()])?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO snapshot_metadata (snapshot_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in meta {
        stmt.execute(params![id.to_string(), k, v])?;
    }
    Ok(())
}

/// Remove a snapshot record.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM snapshots WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// One snapshot.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Snapshot>> {
    let s = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM snapshots s WHERE s.id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?;
    match s {
        None => Ok(None),
        Some(s) => {
            let mut one = [s];
            load_metadata(conn, &mut one)?;
            let [s] = one;
            Ok(Some(s))
        }
    }
}

/// The snapshots of a volume, oldest first.
pub fn of_volume(conn: &Connection, volume: Id) -> Result<Vec<Snapshot>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshots s WHERE s.volume_id = ?1 ORDER BY s.created_at, s.id"
    ))?;
    let mut out = stmt.query_map([volume.to_string()], from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// The snapshots taken as part of a group snapshot, oldest first.
pub fn of_group_snapshot(conn: &Connection, group_snapshot: Id) -> Result<Vec<Snapshot>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshots s WHERE s.group_snapshot_id = ?1 ORDER BY s.created_at, s.id"
    ))?;
    let mut out =
        stmt.query_map([group_snapshot.to_string()], from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// Snapshots with recorded work or in a transitional status (for reconcile).
pub fn unsettled(conn: &Connection) -> Result<Vec<Snapshot>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM snapshots s WHERE s.task IS NOT NULL OR s.status IN ('creating', 'deleting')"
    ))?;
    let out = stmt.query_map([], from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}

/// Every snapshot in `status` (reconcile: those a backup left `backing-up`).
pub fn with_status(conn: &Connection, status: crate::model::SnapshotStatus) -> Result<Vec<Snapshot>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM snapshots s WHERE s.status = ?1 ORDER BY s.created_at, s.id"
    ))?;
    let mut out = stmt.query_map([status.as_str()], from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// Every snapshot on a pool.
pub fn on_host(conn: &Connection, host: &str) -> Result<Vec<Id>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM snapshots WHERE host = ?1")?;
    let ids = stmt.query_map([host], |r| id_at(r, 0))?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(ids)
}

fn where_clause(q: &SnapshotQuery, args: &mut Vec<Value>) -> String {
    let mut conds = vec!["1 = 1".to_string()];
    if let Some(p) = &q.project {
        args.push(Value::Text(p.clone()));
        conds.push(format!("s.project_id = ?{}", args.len()));
    }
    for (col, v) in &q.exact {
        args.push(Value::Text(v.clone()));
        conds.push(format!("s.{col} = ?{}", args.len()));
    }
    if let Some(l) = &q.name_like {
        let escaped = l.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
        conds.push(format!("COALESCE(s.name, '') LIKE ?{} ESCAPE '\\'", args.len()));
    }
    for (k, v) in &q.metadata {
        args.push(Value::Text(k.clone()));
        args.push(Value::Text(v.clone()));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM snapshot_metadata m WHERE m.snapshot_id = s.id AND m.key = ?{} AND m.value = ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    conds.join(" AND ")
}

fn sort_expr(col: &str) -> String {
    match col {
        "name" | "description" => format!("COALESCE(s.{col}, '')"),
        c => format!("s.{c}"),
    }
}

/// Snapshots matching `q`.
pub fn list(conn: &Connection, q: &SnapshotQuery) -> Result<Vec<Snapshot>> {
    let mut args = Vec::new();
    let mut cond = where_clause(q, &mut args);
    let keys: Vec<(String, SortDir)> = if q.sort.is_empty() {
        vec![(sort_expr("created_at"), SortDir::Desc)]
    } else {
        q.sort.iter().map(|(c, d)| (sort_expr(c), *d)).collect()
    };
    let (order, after) = order_after(conn, "snapshots s", "s.id", &keys, q.marker, &mut args)?;
    if let Some(after) = after {
        cond = format!("{cond} AND {after}");
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM snapshots s WHERE {cond} ORDER BY {order} LIMIT {} OFFSET {}",
        q.limit.map(|l| l as i64).unwrap_or(-1),
        q.offset
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out =
        stmt.query_map(params_from_iter(args.iter()), from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// How many snapshots match `q`'s filters.
pub fn count(conn: &Connection, q: &SnapshotQuery) -> Result<u64> {
    let mut args = Vec::new();
    let cond = where_clause(q, &mut args);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM snapshots s WHERE {cond}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(n as u64)
}
