//! QoS specs rows, their keys, and their association with volume types (the type's
//! `qos_specs_id`).

use std::collections::BTreeMap;

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::Id;
use crate::model::QosSpecs;
use crate::query::ColumnQuery;

use super::{bad_row, column_query_sql, ts_col};

const COLUMNS: &str = "a.id, a.name, a.consumer, a.created_at, a.updated_at";

fn from_row(row: &Row<'_>) -> crate::store::db::DbResult<QosSpecs> {
    let id: String = row.get(0)?;
    let consumer: String = row.get(2)?;
    Ok(QosSpecs {
        id: Id::parse(&id).ok_or_else(|| bad_row("qos specs id", &id))?,
        name: row.get(1)?,
        consumer: consumer.parse().map_err(|_| bad_row("qos consumer", &consumer))?,
        specs: BTreeMap::new(),
        created_at: ts_col(row, 3)?,
        updated_at: ts_col(row, 4)?,
    })
}

fn with_keys(conn: &Connection, mut q: QosSpecs) -> Result<QosSpecs> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM qos_specs_keys WHERE specs_id = ?1")?;
    let mut rows = stmt.query([q.id.to_string()])?;
    while let Some(r) = rows.next()? {
        q.specs.insert(r.get(0)?, r.get(1)?);
    }
    Ok(q)
}

/// One set of specs by id.
pub fn get(conn: &Connection, id: Id) -> Result<Option<QosSpecs>> {
    let q = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM qos_specs a WHERE a.id = ?1"))?
        .query_row([id.to_string()], from_row)
        .optional()?;
    q.map(|q| with_keys(conn, q)).transpose()
}

/// Whether a set of specs has this name.
pub fn name_taken(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM qos_specs WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The sets of specs `q` asks for.
pub fn list(conn: &Connection, q: &ColumnQuery) -> Result<Vec<QosSpecs>> {
    let mut args = Vec::new();
    let (cond, tail) = column_query_sql(conn, "qos_specs", q, &mut args)?;
    let sql = format!("SELECT {COLUMNS} FROM qos_specs a WHERE {cond} {tail}");
    let found = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), from_row)?
        .collect::<crate::store::db::DbResult<Vec<_>>>()?;
    found.into_iter().map(|q| with_keys(conn, q)).collect()
}

/// Insert a set of specs with its keys.
pub fn insert(conn: &Connection, q: &QosSpecs) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO qos_specs (id, name, consumer, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        q.id.to_string(),
        q.name,
        q.consumer.as_str(),
        q.created_at.to_string(),
        q.updated_at.to_string()
    ])?;
    replace_keys(conn, q)
}

/// Write the consumer, the time of change and every key (keys not in `q.specs` go).
pub fn save(conn: &Connection, q: &QosSpecs) -> Result<()> {
    conn.prepare_cached("UPDATE qos_specs SET consumer = ?2, updated_at = ?3 WHERE id = ?1")?.execute(params![
        q.id.to_string(),
        q.consumer.as_str(),
        q.updated_at.to_string()
    ])?;
    replace_keys(conn, q)
}

fn replace_keys(conn: &Connection, q: &QosSpecs) -> Result<()> {
    conn.prepare_cached("DELETE FROM qos_specs_keys WHERE specs_id = ?1")?.execute([q.id.to_string()])?;
    let mut stmt = conn.prepare_cached("INSERT INTO qos_specs_keys (specs_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (k, v) in &q.specs {
        stmt.execute(params![q.id.to_string(), k, v])?;
    }
    Ok(())
}

/// Remove a set of specs (its keys go with it); it must have no associations.
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM qos_specs WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// The volume types associated with a set of specs: (id, name), by name.
pub fn associations(conn: &Connection, id: Id) -> Result<Vec<(Id, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM volume_types WHERE qos_specs_id = ?1 ORDER BY name")?;
    let rows = stmt.query_map([id.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (t, name) = r?;
        out.push((Id::parse(&t).ok_or_else(|| bad_row("volume type id", &t))?, name));
    }
    Ok(out)
}

/// Set (or clear) a volume type's QoS specs.
pub fn set_type_specs(conn: &Connection, type_id: Id, specs: Option<Id>, now: &str) -> Result<()> {
    conn.prepare_cached("UPDATE volume_types SET qos_specs_id = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![type_id.to_string(), specs.map(|s| s.to_string()), now])?;
    Ok(())
}

/// Clear every association of a set of specs; how many types had it.
pub fn disassociate_all(conn: &Connection, id: Id, now: &str) -> Result<usize> {
    Ok(conn
        .prepare_cached("UPDATE volume_types SET qos_specs_id = NULL, updated_at = ?2 WHERE qos_specs_id = ?1")?
        .execute(params![id.to_string(), now])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use crate::model::QosConsumer;
    use crate::store::Store;

    fn specs(name: &str) -> QosSpecs {
        let now = Timestamp::now();
        QosSpecs {
            id: Id::new(),
            name: name.into(),
            consumer: QosConsumer::FrontEnd,
            specs: BTreeMap::from([("read_iops_sec".to_string(), Some("100".to_string())), ("x".into(), None)]),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn insert_list_associate_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let a = specs("a");
        let b = specs("b");
        s.write(|tx| {
            insert(tx, &a)?;
            insert(tx, &b)
        })
        .unwrap();
        assert_eq!(s.read(|tx| get(tx, a.id)).unwrap(), Some(a.clone()));
        assert!(s.read(|tx| name_taken(tx, "b")).unwrap());
        let q = ColumnQuery { exact: vec![("name", "b".into())], ..Default::default() };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap(), vec![b.clone()]);
        let all = s.read(|tx| list(tx, &ColumnQuery::default())).unwrap();
        assert_eq!(all.len(), 2);
        let def: String = s
            .read(|tx| Ok(tx.query_row("SELECT id FROM volume_types WHERE name='__DEFAULT__'", [], |r| r.get(0))?))
            .unwrap();
        let def = Id::parse(&def).unwrap();
        let now = Timestamp::now().to_string();
        s.write(|tx| set_type_specs(tx, def, Some(a.id), &now)).unwrap();
        assert_eq!(s.read(|tx| associations(tx, a.id)).unwrap(), vec![(def, "__DEFAULT__".to_string())]);
        assert_eq!(s.write(|tx| disassociate_all(tx, a.id, &now)).unwrap(), 1);
        assert!(s.read(|tx| associations(tx, a.id)).unwrap().is_empty());
        s.write(|tx| delete(tx, a.id)).unwrap();
        assert_eq!(s.read(|tx| get(tx, a.id)).unwrap(), None);
    }
}
