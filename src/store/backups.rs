//! Backup rows: insert, load, save, delete, lists, and what reconcile and the
//! repository's bookkeeping ask (unsettled backups, records sharing a manifest).
//!
//! `dependents` (how many incremental backups name a backup as their parent) is
//! counted when a row is read, never stored, so it cannot drift.

use std::collections::BTreeMap;

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::Backup;
use crate::query::ColumnQuery;

use super::{bad_row, column_query_sql, ts_col};

const COLUMNS: &str = "a.id, a.project_id, a.user_id, a.volume_id, a.snapshot_id, a.name, a.description, a.status,
     a.size, a.object_count, a.container, a.availability_zone, a.parent_id, a.fail_reason, a.data_timestamp,
     a.service, a.service_metadata, a.restore_volume_id, a.temp_snapshot_id, a.temp_snapshot_host, a.bytes_done,
     a.bytes_total, a.stats, a.source_volume, a.created_at, a.updated_at,
     (SELECT COUNT(*) FROM backups c WHERE c.parent_id = a.id)";

fn id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Id> {
    let s: String = row.get(i)?;
    Id::parse(&s).ok_or_else(|| bad_row("id", &s))
}

fn opt_id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<Id>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| Id::parse(&s).ok_or_else(|| bad_row("id", &s))).transpose()
}

fn json_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<serde_json::Value>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| serde_json::from_str(&s).map_err(|_| bad_row("JSON", &s))).transpose()
}

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Backup> {
    let status: String = row.get(7)?;
    Ok(Backup {
        id: id_col(row, 0)?,
        project_id: row.get(1)?,
        user_id: row.get(2)?,
        volume_id: id_col(row, 3)?,
        snapshot_id: opt_id_col(row, 4)?,
        name: row.get(5)?,
        description: row.get(6)?,
        status: status.parse().map_err(|_| bad_row("backup status", &status))?,
        size: row.get::<_, i64>(8)? as u64,
        object_count: row.get::<_, i64>(9)? as u64,
        container: row.get(10)?,
        availability_zone: row.get(11)?,
        parent_id: opt_id_col(row, 12)?,
        fail_reason: row.get(13)?,
        data_timestamp: ts_col(row, 14)?,
        service: row.get(15)?,
        service_metadata: row.get(16)?,
        restore_volume_id: opt_id_col(row, 17)?,
        temp_snapshot_id: opt_id_col(row, 18)?,
        temp_snapshot_host: row.get(19)?,
        bytes_done: row.get::<_, i64>(20)? as u64,
        bytes_total: row.get::<_, i64>(21)? as u64,
        stats: json_col(row, 22)?,
        source_volume: json_col(row, 23)?.unwrap_or(serde_json::Value::Null),
        created_at: ts_col(row, 24)?,
        updated_at: ts_col(row, 25)?,
        dependents: row.get::<_, i64>(26)? as u64,
        metadata: BTreeMap::new(),
    })
}

fn load_metadata(conn: &Connection, backups: &mut [Backup]) -> Result<()> {
    if backups.is_empty() {
        return Ok(());
    }
    let index: BTreeMap<String, usize> = backups.iter().enumerate().map(|(i, b)| (b.id.to_string(), i)).collect();
    let ids: Vec<&String> = index.keys().collect();
    for chunk in ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql = format!("SELECT backup_id, key, value FROM backup_metadata WHERE backup_id IN ({placeholders})");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(chunk.iter()))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(&i) = index.get(&id) {
                backups[i].metadata.insert(r.get(1)?, r.get(2)?);
            }
        }
    }
    Ok(())
}

fn text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|v| v.to_string())
}

/// Insert a backup with its metadata.
pub fn insert(conn: &Connection, b: &Backup) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO backups (id, project_id, user_id, volume_id, snapshot_id, name, description, status, size,
             object_count, container, availability_zone, parent_id, fail_reason, data_timestamp, service,
             service_metadata, restore_volume_id, temp_snapshot_id, temp_snapshot_host, bytes_done, bytes_total,
             stats, source_volume, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
             ?22, ?23, ?24, ?25, ?26)",
    )?
    .execute(params![
        b.id.to_string(),
        b.project_id,
        b.user_id,
        b.volume_id.to_string(),
        b.snapshot_id.map(|i| i.to_string()),
        b.name,
        b.description,
        b.status.as_str(),
        b.size as i64,
        b.object_count as i64,
        b.container,
        b.availability_zone,
        b.parent_id.map(|i| i.to_string()),
        b.fail_reason,
        b.data_timestamp.to_string(),
        b.service,
        b.service_metadata,
        b.restore_volume_id.map(|i| i.to_string()),
        b.temp_snapshot_id.map(|i| i.to_string()),
        b.temp_snapshot_host,
        b.bytes_done as i64,
        b.bytes_total as i64,
        text(&b.stats),
        b.source_volume.to_string(),
        b.created_at.to_string(),
        b.updated_at.to_string(),
    ])?;
    replace_metadata(conn, b.id, &b.metadata)
}

/// Save a backup's changeable columns (not its metadata).
pub fn save(conn: &Connection, b: &Backup) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE backups SET volume_id = ?2, name = ?3, description = ?4, status = ?5, size = ?6,
                 object_count = ?7, container = ?8, availability_zone = ?9, parent_id = ?10, fail_reason = ?11,
                 data_timestamp = ?12, service = ?13, service_metadata = ?14, restore_volume_id = ?15,
                 temp_snapshot_id = ?16, temp_snapshot_host = ?17, bytes_done = ?18, bytes_total = ?19,
                 stats = ?20, source_volume = ?21, updated_at = ?22
             WHERE id = ?1",
        )?
        .execute(params![
            b.id.to_string(),
            b.volume_id.to_string(),
            b.name,
            b.description,
            b.status.as_str(),
            b.size as i64,
            b.object_count as i64,
            b.container,
            b.availability_zone,
            b.parent_id.map(|i| i.to_string()),
            b.fail_reason,
            b.data_timestamp.to_string(),
            b.service,
            b.service_metadata,
            b.restore_volume_id.map(|i| i.to_string()),
            b.temp_snapshot_id.map(|i| i.to_string()),
            b.temp_snapshot_host,
            b.bytes_done as i64,
            b.bytes_total as i64,
            text(&b.stats),
            b.source_volume.to_string(),
            b.updated_at.to_string(),
        ])?;
    if n == 0 {
        return Err(Error::NotFound(format!("Backup {} could not be found.", b.id)));
    }
    Ok(())
}

/// Record the progress of a backup or restore (bytes of the source read so far).
pub fn set_progress(conn: &Connection, id: Id, done: u64, total: u64) -> Result<()> {
    conn.prepare_cached("UPDATE backups SET bytes_done = ?2, bytes_total = ?3 WHERE id = ?1")?.execute(params![
        id.to_string(),
        done as i64,
        total as i64
    ])?;
    Ok(())
}

/// Replace a backup's metadata.
pub fn replace_metadata(conn: &Connection, id: Id, meta: &BTreeMap<String, String>) -> Result<()> {
    conn.prepare_cached("DELETE FROM backup_metadata WHERE backup_id = ?1")?.execute([id.to_string()])?;
    let mut stmt = conn.prepare_cached("INSERT INTO backup_metadata (backup_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in meta {
        stmt.execute(params![id.to_string(), k, v])?;
    }
    Ok(())
}

/// Remove a backup record (its metadata goes with it).
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM backups WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

fn select(conn: &Connection, tail: &str, args: impl crate::store::db::Params) -> Result<Vec<Backup>> {
    let sql = format!("SELECT {COLUMNS} FROM backups a {tail}");
    let mut out =
        conn.prepare_cached(&sql)?.query_map(args, from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// One backup.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Backup>> {
    let b = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM backups a WHERE a.id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?;
    match b {
        None => Ok(None),
        Some(b) => {
            let mut one = [b];
            load_metadata(conn, &mut one)?;
            let [b] = one;
            Ok(Some(b))
        }
    }
}

/// The backups of a volume in a project, oldest first.
pub fn of_volume(conn: &Connection, volume: Id, project: &str) -> Result<Vec<Backup>> {
    select(
        conn,
        "WHERE a.volume_id = ?1 AND a.project_id = ?2 ORDER BY a.created_at, a.id",
        params![volume.to_string(), project],
    )
}

/// Backups being made, deleted or restored (for reconcile), oldest first.
pub fn unsettled(conn: &Connection) -> Result<Vec<Backup>> {
    select(conn, "WHERE a.status IN ('creating', 'deleting', 'restoring') ORDER BY a.created_at, a.id", [])
}

/// Backups that still name a temporary snapshot.
pub fn with_temp_snapshot(conn: &Connection) -> Result<Vec<Backup>> {
    select(conn, "WHERE a.temp_snapshot_id IS NOT NULL ORDER BY a.created_at, a.id", [])
}

/// Backups of a volume (any project) that still name a temporary or kept snapshot.
pub fn with_temp_snapshot_of(conn: &Connection, volume: Id) -> Result<Vec<Backup>> {
    select(
        conn,
        "WHERE a.temp_snapshot_id IS NOT NULL AND a.volume_id = ?1 ORDER BY a.created_at, a.id",
        params![volume.to_string()],
    )
}

/// Whether a backup of the volume is being made.
pub fn creating_of(conn: &Connection, volume: Id) -> Result<bool> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM backups WHERE volume_id = ?1 AND status = 'creating'")?
        .query_row([volume.to_string()], |r| r.get(0))?;
    Ok(n > 0)
}

/// How many records name the repository data `service_metadata` (an imported record
/// may share its data with the record it was exported from).
pub fn sharing(conn: &Connection, service_metadata: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM backups WHERE service_metadata = ?1")?
        .query_row([service_metadata], |r| r.get(0))?;
    Ok(n as u64)
}

/// Backups matching `q`.
pub fn list(conn: &Connection, q: &ColumnQuery) -> Result<Vec<Backup>> {
    let mut args = Vec::new();
    let (cond, tail) = column_query_sql(conn, "backups", q, &mut args)?;
    select(conn, &format!("WHERE {cond} {tail}"), params_from_iter(args.iter()))
}

/// How many backups match `q`'s filters (paging aside).
pub fn count(conn: &Connection, q: &ColumnQuery) -> Result<u64> {
    let q = ColumnQuery { marker: None, limit: None, offset: 0, sort: Vec::new(), ..q.clone() };
    let mut args = Vec::new();
    let (cond, _) = column_query_sql(conn, "backups", &q, &mut args)?;
    let n: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM backups a WHERE {cond}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use crate::model::BackupStatus;
    use crate::store::Store;

    fn backup(volume: Id, parent: Option<Id>) -> Backup {
        let now = Timestamp::now();
        Backup {
            id: Id::new(),
            project_id: "p".into(),
            user_id: "u".into(),
            volume_id: volume,
            snapshot_id: None,
            name: Some("b".into()),
            description: None,
            status: BackupStatus::Creating,
            size: 1,
            object_count: 0,
            container: None,
            availability_zone: Some("nova".into()),
            parent_id: parent,
            dependents: 0,
            fail_reason: None,
            data_timestamp: now,
            service: "cinder.backup.drivers.posix.PosixBackupDriver".into(),
            service_metadata: String::new(),
            restore_volume_id: None,
            temp_snapshot_id: None,
            temp_snapshot_host: None,
            bytes_done: 0,
            bytes_total: 0,
            stats: None,
            source_volume: serde_json::json!({"name": "v"}),
            metadata: [("k".to_string(), "v".to_string())].into_iter().collect(),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn rows_round_trip_and_count_dependents() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let vol = Id::new();
        let mut full = backup(vol, None);
        full.service_metadata = full.id.to_string();
        let mut child = backup(vol, Some(full.id));
        child.service_metadata = full.id.to_string();
        s.write(|tx| {
            insert(tx, &full)?;
            insert(tx, &child)
        })
        .unwrap();
        let got = s.read(|tx| get(tx, full.id)).unwrap().unwrap();
        assert_eq!(got.dependents, 1);
        assert_eq!(got.metadata["k"], "v");
        assert_eq!(got.source_volume["name"], "v");
        assert_eq!(s.read(|tx| sharing(tx, &full.id.to_string())).unwrap(), 2);
        assert_eq!(s.read(unsettled).unwrap().len(), 2);
        let mut done = got.clone();
        done.status = BackupStatus::Available;
        done.stats = Some(serde_json::json!({"bytes_read": 5}));
        s.write(|tx| save(tx, &done)).unwrap();
        assert_eq!(s.read(|tx| get(tx, full.id)).unwrap().unwrap().stats.unwrap()["bytes_read"], 5);
        assert_eq!(s.read(|tx| of_volume(tx, vol, "p")).unwrap().len(), 2);
        let q = ColumnQuery { exact: vec![("status", "creating".into())], ..Default::default() };
        assert_eq!(s.read(|tx| count(tx, &q)).unwrap(), 1);
        s.write(|tx| delete(tx, child.id)).unwrap();
        assert_eq!(s.read(|tx| get(tx, full.id)).unwrap().unwrap().dependents, 0);
    }
}
