//! User message rows: insert, load, list, delete, and the purge of expired ones.

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::{Id, Timestamp};
use crate::model::Message;
use crate::query::ColumnQuery;

use super::{bad_row, column_query_sql, ts_col};

const COLUMNS: &str = "a.id, a.project_id, a.request_id, a.resource_type, a.resource_uuid, a.action_id, \
                       a.detail_id, a.event_id, a.message_level, a.created_at, a.expires_at";

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<Message> {
    let id: String = row.get(0)?;
    let resource: Option<String> = row.get(4)?;
    Ok(Message {
        id: Id::parse(&id).ok_or_else(|| bad_row("message id", &id))?,
        project_id: row.get(1)?,
        request_id: row.get(2)?,
        resource_type: row.get(3)?,
        resource_uuid: match resource {
            Some(r) => Some(Id::parse(&r).ok_or_else(|| bad_row("resource_uuid", &r))?),
            None => None,
        },
        action_id: row.get(5)?,
        detail_id: row.get(6)?,
        event_id: row.get(7)?,
        message_level: row.get(8)?,
        created_at: ts_col(row, 9)?,
        expires_at: ts_col(row, 10)?,
    })
}

/// Record a message.
pub fn insert(conn: &Connection, m: &Message) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO messages (id, project_id, request_id, resource_type, resource_uuid, action_id, detail_id,
             event_id, message_level, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        m.id.to_string(),
        m.project_id,
        m.request_id,
        m.resource_type,
        m.resource_uuid.map(|i| i.to_string()),
        m.action_id,
        m.detail_id,
        m.event_id,
        m.message_level,
        m.created_at.to_string(),
        m.expires_at.to_string(),
    ])?;
    Ok(())
}

/// One message by id.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Message>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM messages a WHERE a.id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?)
}

/// The messages `q` asks for.
pub fn list(conn: &Connection, q: &ColumnQuery) -> Result<Vec<Message>> {
    let mut args = Vec::new();
    let (cond, tail) = column_query_sql(conn, "messages", q, &mut args)?;
    let sql = format!("SELECT {COLUMNS} FROM messages a WHERE {cond} {tail}");
    let out = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), from_row)?
        .collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}

/// Remove a message.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Remove the messages that expired before `now`; how many went.
pub fn delete_expired(conn: &Connection, now: Timestamp) -> Result<usize> {
    Ok(conn.prepare_cached("DELETE FROM messages WHERE expires_at < ?1")?.execute([now.to_string()])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::SortDir;
    use crate::store::Store;

    fn msg(project: &str, created: Timestamp, ttl: u64) -> Message {
        Message {
            id: Id::new(),
            project_id: project.into(),
            request_id: "req-1".into(),
            resource_type: "VOLUME".into(),
            resource_uuid: Some(Id::new()),
            action_id: "001".into(),
            detail_id: "003".into(),
            event_id: "VOLUME_VOLUME_001_003".into(),
            message_level: "ERROR".into(),
            created_at: created,
            expires_at: created.plus_seconds(ttl),
        }
    }

    #[test]
    fn list_page_and_purge() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let t0 = Timestamp::parse("2024-01-01T00:00:00").unwrap();
        let old = msg("p", t0, 10);
        let a = msg("p", t0.plus_seconds(100), 1000);
        let b = msg("q", t0.plus_seconds(200), 1000);
        s.write(|tx| {
            for m in [&old, &a, &b] {
                insert(tx, m)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(s.read(|tx| get(tx, a.id)).unwrap(), Some(a.clone()));
        // newest first; scoped; paged by marker
        let all = s.read(|tx| list(tx, &ColumnQuery::default())).unwrap();
        assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![b.id, a.id, old.id]);
        let q = ColumnQuery { project: Some("p".into()), marker: Some(a.id), ..Default::default() };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap(), vec![old.clone()]);
        let q = ColumnQuery { sort: vec![("created_at", SortDir::Asc)], limit: Some(1), ..Default::default() };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap(), vec![old.clone()]);
        let q = ColumnQuery { match_nothing: true, ..Default::default() };
        assert!(s.read(|tx| list(tx, &q)).unwrap().is_empty());
        let q = ColumnQuery { like: vec![("event_id", "001_0".into())], ..Default::default() };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap().len(), 3);
        // the first expired at t0+10s
        assert_eq!(s.write(|tx| delete_expired(tx, t0.plus_seconds(11))).unwrap(), 1);
        assert_eq!(s.read(|tx| get(tx, old.id)).unwrap(), None);
        s.write(|tx| delete(tx, a.id)).unwrap();
        assert_eq!(s.read(|tx| list(tx, &ColumnQuery::default())).unwrap(), vec![b]);
    }
}
