//! Volume type rows, their extra specs and project access.

use std::collections::BTreeMap;

use crate::store::db::{params, Connection, OptionalExtension, Row};

use crate::error::Result;
use crate::ids::Id;
use crate::model::VolumeType;

use super::ts_col;

fn type_from_row(row: &Row<'_>) -> crate::store::db::DbResult<VolumeType> {
    let id: String = row.get(0)?;
    Ok(VolumeType {
        id: Id::parse(&id).ok_or_else(|| crate::store::db::conversion("type id", &id))?,
        name: row.get(1)?,
        description: row.get(2)?,
        is_public: row.get(3)?,
        extra_specs: BTreeMap::new(),
        qos_specs_id: row.get::<_, Option<String>>(6)?.as_deref().and_then(Id::parse),
        created_at: ts_col(row, 4)?,
        updated_at: ts_col(row, 5)?,
    })
}

const COLUMNS: &str = "id, name, description, is_public, created_at, updated_at, qos_specs_id";

fn with_specs(conn: &Connection, mut t: VolumeType) -> Result<VolumeType> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM volume_type_extra_specs WHERE type_id = ?1")?;
    let mut rows = stmt.query([t.id.to_string()])?;
    while let Some(r) = rows.next()? {
        t.extra_specs.insert(r.get(0)?, r.get(1)?);
    }
    Ok(t)
}

/// One type by id.
pub fn get(conn: &Connection, id: Id) -> Result<Option<VolumeType>> {
    let t = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM volume_types WHERE id = ?1"))?
        .query_row([id.to_string()], type_from_row)
        .optional()?;
    t.map(|t| with_specs(conn, t)).transpose()
}

/// One type by its unique name.
pub fn get_by_name(conn: &Connection, name: &str) -> Result<Option<VolumeType>> {
    let t = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM volume_types WHERE name = ?1"))?
        .query_row([name], type_from_row)
        .optional()?;
    t.map(|t| with_specs(conn, t)).transpose()
}

/// Every type, by name.
pub fn list(conn: &Connection) -> Result<Vec<VolumeType>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM volume_types ORDER BY name"))?;
    let types = stmt.query_map([], type_from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    types.into_iter().map(|t| with_specs(conn, t)).collect()
}

/// Every type's name (without loading extra specs).
pub fn names(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM volume_types")?;
    let names = stmt.query_map([], |r| r.get(0))?.collect::<crate::store::db::DbResult<Vec<String>>>()?;
    Ok(names)
}

/// Insert a type with its extra specs.
pub fn insert(conn: &Connection, t: &VolumeType) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO volume_types (id, name, description, is_public, created_at, updated_at)
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
    set_specs(conn, t.id, &t.extra_specs)
}

/// Save name, description, visibility and time of change.
pub fn save(conn: &Connection, t: &VolumeType) -> Result<()> {
    conn.prepare_cached(
        "UPDATE volume_types SET name = ?2, description = ?3, is_public = ?4, updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![t.id.to_string(), t.name, t.description, t.is_public, t.updated_at.to_string()])?;
    Ok(())
}

/// Remove a type (its specs and access rows go with it).
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM volume_types WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Add or overwrite extra specs.
pub fn set_specs(conn: &Connection, id: Id, specs: &BTreeMap<String, String>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO volume_type_extra_specs (type_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (type_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in specs {
        stmt.execute(params![id.to_string(), k, v])?;
    }
    Ok(())
}

/// Remove one extra spec; whether it existed.
pub fn delete_spec(conn: &Connection, id: Id, key: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM volume_type_extra_specs WHERE type_id = ?1 AND key = ?2")?
        .execute(params![id.to_string(), key])?;
    Ok(n > 0)
}

/// The projects given access to a private type.
pub fn projects(conn: &Connection, id: Id) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT project_id FROM volume_type_projects WHERE type_id = ?1 ORDER BY project_id")?;
    let out = stmt.query_map([id.to_string()], |r| r.get(0))?.collect::<crate::store::db::DbResult<Vec<String>>>()?;
    Ok(out)
}

/// The private types a project may use.
pub fn accessible_to(conn: &Connection, project: &str) -> Result<Vec<Id>> {
    let mut stmt = conn.prepare_cached("SELECT type_id FROM volume_type_projects WHERE project_id = ?1")?;
    let ids = stmt.query_map([project], |r| r.get::<_, String>(0))?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(ids.iter().filter_map(|s| Id::parse(s)).collect())
}

/// Give a project access; whether it was new.
pub fn add_project(conn: &Connection, id: Id, project: &str) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO volume_type_projects (type_id, project_id) VALUES (?1, ?2)
             ON CONFLICT (type_id, project_id) DO NOTHING",
        )?
        .execute(params![id.to_string(), project])?;
    Ok(n > 0)
}

/// Take a project's access away; whether it had any.
pub fn remove_project(conn: &Connection, id: Id, project: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM volume_type_projects WHERE type_id = ?1 AND project_id = ?2")?
        .execute(params![id.to_string(), project])?;
    Ok(n > 0)
}

/// How many volumes use a type.
pub fn volume_count(conn: &Connection, id: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM volumes WHERE volume_type_id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

/// A project's default type, if it has one.
pub fn project_default(conn: &Connection, project: &str) -> Result<Option<Id>> {
    let s: Option<String> = conn
        .prepare_cached("SELECT volume_type_id FROM default_types WHERE project_id = ?1")?
        .query_row([project], |r| r.get(0))
        .optional()?;
    Ok(s.and_then(|s| Id::parse(&s)))
}

/// Every project default, by project.
pub fn project_defaults(conn: &Connection) -> Result<Vec<(String, Id)>> {
    let mut stmt = conn.prepare_cached("SELECT project_id, volume_type_id FROM default_types ORDER BY project_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for r in rows {
        let (p, t) = r?;
        if let Some(t) = Id::parse(&t) {
            out.push((p, t));
        }
    }
    Ok(out)
}

/// Set a project's default type.
pub fn set_project_default(conn: &Connection, project: &str, type_id: Id) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO default_types (project_id, volume_type_id, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id) DO UPDATE SET volume_type_id = excluded.volume_type_id",
    )?
    .execute(params![project, type_id.to_string(), crate::ids::Timestamp::now().to_string()])?;
    Ok(())
}

/// Drop a project's default type; whether it had one.
pub fn unset_project_default(conn: &Connection, project: &str) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM default_types WHERE project_id = ?1")?.execute([project])? > 0)
}

/// Projects whose default is this type.
pub fn default_for_projects(conn: &Connection, type_id: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM default_types WHERE volume_type_id = ?1")?
        .query_row([type_id.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}
