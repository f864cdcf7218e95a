//! Quota limits per project, usage derived from the records, and reservations.
//!
//! Usage is never stored as a counter: it is counted from the rows themselves
//! (volumes, snapshots, groups, backups), so it cannot drift from what exists, even
//! across crashes. In-flight requests hold *reservations* (rows) between their check
//! and their commit; a node's start-up clears the reservations of its previous
//! process, whose requests are gone (each reservation names its node).

use std::collections::BTreeMap;

use crate::store::db::{params, Connection};

use crate::error::Result;
use crate::ids::{Id, Timestamp};

/// Resources in use and reserved by one project.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaUsage {
    /// In use, by resource name (`volumes`, `gigabytes`, `volumes_<type>`, ...).
    pub in_use: BTreeMap<String, i64>,
    /// Held by in-flight requests, by resource name.
    pub reserved: BTreeMap<String, i64>,
}

/// A reservation of some amount of a resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Reservation {
    /// Its id.
    pub id: Id,
    /// The project.
    pub project_id: String,
    /// The resource.
    pub resource: String,
    /// The amount.
    pub delta: i64,
}

/// A project's limit overrides.
pub fn overrides(conn: &Connection, project: &str) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached("SELECT resource, hard_limit FROM quotas WHERE project_id = ?1")?;
    let rows = stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::store::db::DbResult<_>>()?)
}

/// Set one limit override.
pub fn set_override(conn: &Connection, project: &str, resource: &str, limit: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
    )?
    .execute(params![project, resource, limit])?;
    Ok(())
}

/// The limits a quota class sets (the class `default` overrides the configured
/// defaults of every project).
pub fn class_limits(conn: &Connection, class: &str) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached("SELECT resource, hard_limit FROM quota_classes WHERE class_name = ?1")?;
    let rows = stmt.query_map([class], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::store::db::DbResult<_>>()?)
}

/// Set one limit of a quota class.
pub fn set_class_limit(conn: &Connection, class: &str, resource: &str, limit: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES (?1, ?2, ?3)
         ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit",
    )?
    .execute(params![class, resource, limit])?;
    Ok(())
}

/// Drop every override of a project (back to defaults).
pub fn delete_overrides(conn: &Connection, project: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM quotas WHERE project_id = ?1")?.execute([project])?;
    Ok(())
}

/// What a project uses and has reserved: the counters the store's triggers keep (see
/// the `quota_usage_counters` migration), a few rows whatever the project holds.
pub fn usage(conn: &Connection, project: &str) -> Result<QuotaUsage> {
    let mut u = QuotaUsage::default();
    let mut stmt = conn.prepare_cached(
        "SELECT u.resource, t.name, u.in_use FROM quota_usage u
         LEFT JOIN volume_types t ON t.id = u.volume_type_id
         WHERE u.project_id = ?1",
    )?;
    let mut rows = stmt.query([project])?;
    for key in ["volumes", "snapshots", "gigabytes", "groups", "backups", "backup_gigabytes"] {
        u.in_use.insert(key.into(), 0);
    }
    while let Some(r) = rows.next()? {
        let (resource, name, n): (String, Option<String>, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let name = name.unwrap_or_default();
        let (total, per_type) = match resource.as_str() {
            "volumes" => ("volumes", Some(format!("volumes_{name}"))),
            "volume_gigabytes" | "snapshot_gigabytes" => ("gigabytes", Some(format!("gigabytes_{name}"))),
            "snapshots" => ("snapshots", Some(format!("snapshots_{name}"))),
            other => (other, None),
        };
        *u.in_use.entry(total.into()).or_insert(0) += n;
        if let Some(k) = per_type {
            *u.in_use.entry(k).or_insert(0) += n;
        }
    }
    let mut stmt =
        conn.prepare_cached("SELECT resource, SUM(delta) FROM reservations WHERE project_id = ?1 GROUP BY resource")?;
    let rows = stmt.query_map([project], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (k, v) = row?;
        u.reserved.insert(k, v);
    }
    Ok(u)
}

/// Record reservations, held by a request of node `node` (its host name).
pub fn reserve(conn: &Connection, node: &str, rs: &[Reservation]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO reservations (id, project_id, resource, delta, created_at, node)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let now = Timestamp::now().to_string();
    for r in rs {
        stmt.execute(params![r.id.to_string(), r.project_id, r.resource, r.delta, now, node])?;
    }
    Ok(())
}

/// Drop reservations (on commit, when the records now count, or on rollback).
pub fn release(conn: &Connection, ids: &[Id]) -> Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM reservations WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id.to_string()])?;
    }
    Ok(())
}

/// Drop the reservations of node `node` (its start-up: no request of its previous
/// process is in flight), and those recorded before reservations named their node.
/// Other nodes' stay: their requests may be in flight.
pub fn clear_reservations(conn: &Connection, node: &str) -> Result<usize> {
    Ok(conn.execute("DELETE FROM reservations WHERE node = ?1 OR node = ''", [node])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn reservation(delta: i64) -> Reservation {
        Reservation { id: Id::new(), project_id: "p".into(), resource: "volumes".into(), delta }
    }

    #[test]
    fn a_node_clears_its_own_reservations_and_those_from_before_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        s.write(|tx| {
            reserve(tx, "node-a", &[reservation(1), reservation(2)])?;
            reserve(tx, "node-b", &[reservation(4)])?;
            // A row from before reservations named their node.
            tx.execute(
                "INSERT INTO reservations (id, project_id, resource, delta, created_at)
                 VALUES ('old', 'p', 'volumes', 8, '2026-01-01T00:00:00')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let reserved = || s.read(|tx| usage(tx, "p")).unwrap().reserved.get("volumes").copied();
        assert_eq!(reserved(), Some(15), "every node's reservations count");
        assert_eq!(s.write(|tx| clear_reservations(tx, "node-a")).unwrap(), 3);
        assert_eq!(reserved(), Some(4), "node-b's stays");
        assert_eq!(s.write(|tx| clear_reservations(tx, "node-a")).unwrap(), 0);
        assert_eq!(s.write(|tx| clear_reservations(tx, "node-b")).unwrap(), 1);
        assert_eq!(reserved(), None);
    }
}
