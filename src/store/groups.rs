//! Rows of generic volume groups: group types with their specs, groups with the
//! volume types they allow, and group snapshots; filtered, sorted, paged lists.

use std::collections::BTreeMap;

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::ids::Id;
use crate::model::{Group, GroupSnapshot, GroupType};
use crate::query::{GroupQuery, SortDir};

use super::{bad_row, order_after, ts_col};

fn id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Id> {
    let s: String = row.get(i)?;
    Id::parse(&s).ok_or_else(|| bad_row("id", &s))
}

fn opt_id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<Id>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| Id::parse(&s).ok_or_else(|| bad_row("id", &s))).transpose()
}

/// The WHERE clause of a list over table alias `a` (without keyset conditions).
fn where_clause(q: &GroupQuery, args: &mut Vec<Value>) -> String {
    let mut conds = vec!["1 = 1".to_string()];
    if let Some(p) = &q.project {
        args.push(Value::Text(p.clone()));
        conds.push(format!("a.project_id = ?{}", args.len()));
    }
    for (col, v) in &q.exact {
        args.push(Value::Text(v.clone()));
        conds.push(format!("a.{col} = ?{}", args.len()));
    }
    if let Some(l) = &q.name_like {
        let escaped = l.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
        conds.push(format!("COALESCE(a.name, '') LIKE ?{} ESCAPE '\\'", args.len()));
    }
    conds.join(" AND ")
}

fn sort_expr(col: &str) -> String {
    match col {
        "name" | "description" => format!("COALESCE(a.{col}, '')"),
        c => format!("a.{c}"),
    }
}

/// `SELECT {columns} FROM {table} a` with `q`'s filters, order and page.
fn select_page<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    q: &GroupQuery,
    from_row: impl Fn(&Row<'_>) -> crate::store::db::DbResult<T>,
) -> Result<Vec<T>> {
    let mut args = Vec::new();
    let mut cond = where_clause(q, &mut args);
    let keys: Vec<(String, SortDir)> = if q.sort.is_empty() {
        vec![(sort_expr("created_at"), SortDir::Desc)]
    } else {
        q.sort.iter().map(|(c, d)| (sort_expr(c), *d)).collect()
    };
    let (order, after) = order_after(conn, &format!("{table} a"), "a.id", &keys, q.marker, &mut args)?;
    if let Some(after) = after {
        cond = format!("{cond} AND {after}");
    }
    let sql = format!(
        "SELECT {columns} FROM {table} a WHERE {cond} ORDER BY {order} LIMIT {} OFFSET {}",
        q.limit.map(|l| l as i64).unwrap_or(-1),
        q.offset
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let out =
        stmt.query_map(params_from_iter(args.iter()), from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}

fn count_matching(conn: &Connection, table: &str, q: &GroupQuery) -> Result<u64> {
    let mut args = Vec::new();
    let cond = where_clause(q, &mut args);
    let n: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} a WHERE {cond}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

// ---- group types ----

const TYPE_COLUMNS: &str = "a.id, a.name, a.description, a.is_public, a.created_at, a.updated_at";

fn type_from_row(row: &Row<'_>) -> crate::store::db::DbResult<GroupType> {
    Ok(GroupType {
        id: id_col(row, 0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        is_public: row.get(3)?,
        group_specs: BTreeMap::new(),
        created_at: ts_col(row, 4)?,
        updated_at: ts_col(row, 5)?,
    })
}

fn with_specs(conn: &Connection, types: &mut [GroupType]) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM group_type_specs WHERE group_type_id = ?1")?;
    for t in types {
        let mut rows = stmt.query([t.id.to_string()])?;
        while let Some(r) = rows.next()? {
            t.group_specs.insert(r.get(0)?, r.get(1)?);
        }
    }
    Ok(())
}

/// One group type by id.
pub fn get_type(conn: &Connection, id: Id) -> Result<Option<GroupType>> {
    let t = conn
        .prepare_cached(&format!("SELECT {TYPE_COLUMNS} FROM group_types a WHERE a.id = ?1"))?
        .query_row([id.to_string()], type_from_row)
        .optional()?;
    let mut one: Vec<GroupType> = t.into_iter().collect();
    with_specs(conn, &mut one)?;
    Ok(one.pop())
}

/// One group type by its unique name.
pub fn get_type_by_name(conn: &Connection, name: &str) -> Result<Option<GroupType>> {
    let t = conn
        .prepare_cached(&format!("SELECT {TYPE_COLUMNS} FROM group_types a WHERE a.name = ?1"))?
        .query_row([name], type_from_row)
        .optional()?;
    let mut one: Vec<GroupType> = t.into_iter().collect();
    with_specs(conn, &mut one)?;
    Ok(one.pop())
}

/// Group types matching `q` (`exact` may name `is_public` as "0"/"1").
pub fn list_types(conn: &Connection, q: &GroupQuery) -> Result<Vec<GroupType>> {
    let mut out = select_page(conn, "group_types", TYPE_COLUMNS, q, type_from_row)?;
    with_specs(conn, &mut out)?;
    Ok(out)
}

/// Insert a group type with its specs.
pub fn insert_type(conn: &Connection, t: &GroupType) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO group_types (id, name, description, is_public, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        t.id.to_string(),
        t.name,
        t.description,
        t.is_public,
        t.created_at.to_string(),
        t.updated_at.to_string()
    ])?;
    set_specs(conn, t.id, &t.group_specs)
}

/// Save name, description, visibility and time of change.
pub fn save_type(conn: &Connection, t: &GroupType) -> Result<()> {
    conn.prepare_cached(
        "UPDATE group_types SET name = ?2, description = ?3, is_public = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![t.id.to_string(), t.name, t.description, t.is_public, t.updated_at.to_string()])?;
    Ok(())
}

/// Remove a group type (its specs go with it).
pub fn delete_type(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM group_types WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Add or overwrite group specs.
pub fn set_specs(conn: &Connection, id: Id, specs: &BTreeMap<String, String>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO group_type_specs (group_type_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_type_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in specs {
        stmt.execute(params![id.to_string(), k, v])?;
    }
    Ok(())
}

/// Remove one group spec; whether it existed.
pub fn delete_spec(conn: &Connection, id: Id, key: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM group_type_specs WHERE group_type_id = ?1 AND key = ?2")?
        .execute(params![id.to_string(), key])?;
    Ok(n > 0)
}

/// How many groups have this group type.
pub fn groups_of_type(conn: &Connection, id: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM groups WHERE group_type_id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

/// How many groups allow this volume type.
pub fn groups_allowing_volume_type(conn: &Connection, volume_type: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM group_volume_types WHERE volume_type_id = ?1")?
        .query_row([volume_type.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

// ---- groups ----

const GROUP_COLUMNS: &str = "a.id, a.project_id, a.user_id, a.name, a.description, a.status,
     a.availability_zone, a.group_type_id, a.host, a.group_snapshot_id, a.source_group_id,
     a.error_reason, a.created_at, a.updated_at";

fn group_from_row(row: &Row<'_>) -> crate::store::db::DbResult<Group> {
    let status: String = row.get(5)?;
    Ok(Group {
        id: id_col(row, 0)?,
        project_id: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        status: status.parse().map_err(|_| bad_row("group status", &status))?,
        availability_zone: row.get(6)?,
        group_type_id: id_col(row, 7)?,
        volume_type_ids: Vec::new(),
        host: row.get(8)?,
        group_snapshot_id: opt_id_col(row, 9)?,
        source_group_id: opt_id_col(row, 10)?,
        error_reason: row.get(11)?,
        created_at: ts_col(row, 12)?,
        updated_at: ts_col(row, 13)?,
    })
}

fn with_volume_types(conn: &Connection, groups: &mut [Group]) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("SELECT volume_type_id FROM group_volume_types WHERE group_id = ?1 ORDER BY position")?;
    for g in groups {
        g.volume_type_ids =
            stmt.query_map([g.id.to_string()], |r| id_col(r, 0))?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    }
    Ok(())
}

/// Insert a group with the volume types it allows.
pub fn insert_group(conn: &Connection, g: &Group) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO groups (id, project_id, user_id, name, description, status, availability_zone,
             group_type_id, host, group_snapshot_id, source_group_id, error_reason, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        g.id.to_string(),
        g.project_id,
        g.user_id,
        g.name,
        g.description,
        g.status.as_str(),
        g.availability_zone,
        g.group_type_id.to_string(),
        g.host,
        g.group_snapshot_id.map(|i| i.to_string()),
        g.source_group_id.map(|i| i.to_string()),
        g.error_reason,
        g.created_at.to_string(),
        g.updated_at.to_string(),
    ])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO group_volume_types (group_id, volume_type_id, position) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, volume_type_id) DO NOTHING",
    )?;
    for (i, t) in g.volume_type_ids.iter().enumerate() {
        stmt.execute(params![g.id.to_string(), t.to_string(), i as i64])?;
    }
    Ok(())
}

/// Save the changeable columns of a group.
pub fn save_group(conn: &Connection, g: &Group) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE groups SET name = ?2, description = ?3, status = ?4, host = ?5, error_reason = ?6,
                 updated_at = ?7 WHERE id = ?1",
        )?
        .execute(params![
            g.id.to_string(),
            g.name,
            g.description,
            g.status.as_str(),
            g.host,
            g.error_reason,
            g.updated_at.to_string(),
        ])?;
    if n == 0 {
        return Err(Error::NotFound(format!("Group {} could not be found.", g.id)));
    }
    Ok(())
}

/// Remove a group record (its volume type list goes with it).
pub fn delete_group(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM groups WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// One group.
pub fn get_group(conn: &Connection, id: Id) -> Result<Option<Group>> {
    let g = conn
        .prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM groups a WHERE a.id = ?1"))?
        .query_row([id.to_string()], group_from_row)
        .optional()?;
    let mut one: Vec<Group> = g.into_iter().collect();
    with_volume_types(conn, &mut one)?;
    Ok(one.pop())
}

/// Groups matching `q`.
pub fn list_groups(conn: &Connection, q: &GroupQuery) -> Result<Vec<Group>> {
    let mut out = select_page(conn, "groups", GROUP_COLUMNS, q, group_from_row)?;
    with_volume_types(conn, &mut out)?;
    Ok(out)
}

/// How many groups match `q`'s filters.
pub fn count_groups(conn: &Connection, q: &GroupQuery) -> Result<u64> {
    count_matching(conn, "groups", q)
}

/// Groups in a transitional status (for start-up reconcile).
pub fn unsettled_groups(conn: &Connection) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {GROUP_COLUMNS} FROM groups a WHERE a.status IN ('creating', 'deleting', 'updating')
         ORDER BY a.created_at"
    ))?;
    let mut out = stmt.query_map([], group_from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    with_volume_types(conn, &mut out)?;
    Ok(out)
}

/// How many groups are being made from this group (`source_group_id`) or group
/// snapshot (`group_snapshot_id`) right now.
pub fn creating_from(conn: &Connection, source: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM groups WHERE status = 'creating'
             AND (source_group_id = ?1 OR group_snapshot_id = ?1)",
        )?
        .query_row([source.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

// ---- group snapshots ----

const SNAP_COLUMNS: &str = "a.id, a.project_id, a.user_id, a.group_id, a.group_type_id, a.name, a.description,
     a.status, a.error_reason, a.created_at, a.updated_at";

fn snap_from_row(row: &Row<'_>) -> crate::store::db::DbResult<GroupSnapshot> {
    let status: String = row.get(7)?;
    Ok(GroupSnapshot {
        id: id_col(row, 0)?,
        project_id: row.get(1)?,
        user_id: row.get(2)?,
        group_id: id_col(row, 3)?,
        group_type_id: id_col(row, 4)?,
        name: row.get(5)?,
        description: row.get(6)?,
        status: status.parse().map_err(|_| bad_row("group snapshot status", &status))?,
        error_reason: row.get(8)?,
        created_at: ts_col(row, 9)?,
        updated_at: ts_col(row, 10)?,
    })
}

/// Insert a group snapshot.
pub fn insert_snapshot(conn: &Connection, s: &GroupSnapshot) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO group_snapshots (id, project_id, user_id, group_id, group_type_id, name, description,
             status, error_reason, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        s.id.to_string(),
        s.project_id,
        s.user_id,
        s.group_id.to_string(),
        s.group_type_id.to_string(),
        s.name,
        s.description,
        s.status.as_str(),
        s.error_reason,
        s.created_at.to_string(),
        s.updated_at.to_string(),
    ])?;
    Ok(())
}

/// Save the changeable columns of a group snapshot.
pub fn save_snapshot(conn: &Connection, s: &GroupSnapshot) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE group_snapshots SET name = ?2, description = ?3, status = ?4, error_reason = ?5,
                 updated_at = ?6 WHERE id = ?1",
        )?
        .execute(params![
            s.id.to_string(),
            s.name,
            s.description,
            s.status.as_str(),
            s.error_reason,
            s.updated_at.to_string(),
        ])?;
    if n == 0 {
        return Err(Error::NotFound(format!("GroupSnapshot {} could not be found.", s.id)));
    }
    Ok(())
}

/// Remove a group snapshot record.
pub fn delete_snapshot(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM group_snapshots WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// One group snapshot.
pub fn get_snapshot(conn: &Connection, id: Id) -> Result<Option<GroupSnapshot>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {SNAP_COLUMNS} FROM group_snapshots a WHERE a.id = ?1"))?
        .query_row([id.to_string()], snap_from_row)
        .optional()?)
}

/// Group snapshots matching `q`.
pub fn list_snapshots(conn: &Connection, q: &GroupQuery) -> Result<Vec<GroupSnapshot>> {
    select_page(conn, "group_snapshots", SNAP_COLUMNS, q, snap_from_row)
}

/// How many group snapshots match `q`'s filters.
pub fn count_snapshots(conn: &Connection, q: &GroupQuery) -> Result<u64> {
    count_matching(conn, "group_snapshots", q)
}

/// How many group snapshots a group has.
pub fn snapshots_of_group(conn: &Connection, group: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM group_snapshots WHERE group_id = ?1")?
        .query_row([group.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

/// Group snapshots in a transitional status (for start-up reconcile).
pub fn unsettled_snapshots(conn: &Connection) -> Result<Vec<GroupSnapshot>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {SNAP_COLUMNS} FROM group_snapshots a WHERE a.status IN ('creating', 'deleting', 'updating')
         ORDER BY a.created_at"
    ))?;
    let out = stmt.query_map([], snap_from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(out)
}
