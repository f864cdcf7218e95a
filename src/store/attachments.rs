//! Attachment rows.

use std::collections::BTreeMap;

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::{Id, Timestamp};
use crate::model::{Attachment, Volume};

use super::ts_col;
use crate::query::AttachmentQuery;

const COLUMNS: &str = "id, volume_id, project_id, instance_uuid, attached_host, mountpoint, attach_status,
     attach_mode, connector, connection_info, attach_time, detach_time, created_at, updated_at";

fn conversion(what: &str, v: &str) -> crate::store::db::DbError {
    crate::store::db::conversion(what, v)
}

fn json_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<serde_json::Value>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| serde_json::from_str(&s).map_err(|_| conversion("JSON", &s))).transpose()
}

fn opt_ts(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<Timestamp>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| Timestamp::parse_stored(&s).ok_or_else(|| conversion("timestamp", &s))).transpose()
}

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Attachment> {
    let id: String = row.get(0)?;
    let vid: String = row.get(1)?;
    let status: String = row.get(6)?;
    let mode: String = row.get(7)?;
    Ok(Attachment {
        id: Id::parse(&id).ok_or_else(|| conversion("id", &id))?,
        volume_id: Id::parse(&vid).ok_or_else(|| conversion("id", &vid))?,
        project_id: row.get(2)?,
        instance_uuid: row.get(3)?,
        attached_host: row.get(4)?,
        mountpoint: row.get(5)?,
        attach_status: status.parse().map_err(|_| conversion("attach_status", &status))?,
        attach_mode: mode.parse().map_err(|_| conversion("attach_mode", &mode))?,
        connector: json_col(row, 8)?,
        connection_info: json_col(row, 9)?,
        attach_time: opt_ts(row, 10)?,
        detach_time: opt_ts(row, 11)?,
        created_at: ts_col(row, 12)?,
        updated_at: ts_col(row, 13)?,
    })
}

/// Insert an attachment.
pub fn insert(conn: &Connection, a: &Attachment) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO attachments ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params![
        a.id.to_string(),
        a.volume_id.to_string(),
        a.project_id,
        a.instance_uuid,
        a.attached_host,
        a.mountpoint,
        a.attach_status.as_str(),
        a.attach_mode.as_str(),
        a.connector.as_ref().map(|c| c.to_string()),
        a.connection_info.as_ref().map(|c| c.to_string()),
        a.attach_time.map(|t| t.to_string()),
        a.detach_time.map(|t| t.to_string()),
        a.created_at.to_string(),
        a.updated_at.to_string(),
    ])?;
    Ok(())
}

/// Save every column of an attachment.
pub fn save(conn: &Connection, a: &Attachment) -> Result<()> {
    conn.prepare_cached("DELETE FROM attachments WHERE id = ?1")?.execute([a.id.to_string()])?;
    insert(conn, a)
}

/// Remove an attachment.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM attachments WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// One attachment.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Attachment>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?)
}

/// Attachments matching `q`, newest first.
pub fn list(conn: &Connection, q: &AttachmentQuery) -> Result<Vec<Attachment>> {
    let mut conds = vec!["1 = 1".to_string()];
    let mut args: Vec<String> = Vec::new();
    for (col, v) in [
        ("project_id", &q.project),
        ("volume_id", &q.volume_id),
        ("instance_uuid", &q.instance_id),
        ("attach_status", &q.status),
    ] {
        if let Some(v) = v {
            args.push(v.clone());
            conds.push(format!("{col} = ?{}", args.len()));
        }
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM attachments WHERE {} ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
        conds.join(" AND "),
        q.limit.map(|l| l as i64).unwrap_or(-1),
        q.offset
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let out =
        stmt.query_map(params_from_iter(args.iter()), from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}

/// Fill in the attachments of `volumes`, oldest first.
pub fn load_into(conn: &Connection, volumes: &mut [Volume]) -> Result<()> {
    if volumes.is_empty() {
        return Ok(());
    }
    let index: BTreeMap<String, usize> = volumes.iter().enumerate().map(|(i, v)| (v.id.to_string(), i)).collect();
    let ids: Vec<&String> = index.keys().collect();
    for chunk in ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(",");
        let sql =
            format!("SELECT {COLUMNS} FROM attachments WHERE volume_id IN ({placeholders}) ORDER BY created_at, id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(chunk.iter()), from_row)?;
        for a in rows {
            let a = a?;
            if let Some(&i) = index.get(&a.volume_id.to_string()) {
                volumes[i].attachments.push(a);
            }
        }
    }
    Ok(())
}
