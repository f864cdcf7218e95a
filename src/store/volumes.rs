//! Volume rows: insert, load, save, delete, and filtered, sorted, paged lists.

use std::collections::BTreeMap;

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::error::{Error, Result};
use crate::ids::{Id, Timestamp};
use crate::model::{Task, Volume, VolumeStatus};
use crate::query::{FilterOp, ListQuery, Scalar, SortDir, SortKey, Summary, VolumeField};

use super::{bad_row, order_after, ts_col, Store};

/// The SQL expression; nullable text sorts as the empty string so that keyset
/// pagination can compare it.
fn expr(field: VolumeField) -> &'static str {
    match field {
        VolumeField::Id => "v.id",
        VolumeField::Name => "COALESCE(v.name, '')",
        VolumeField::Description => "COALESCE(v.description, '')",
        VolumeField::Status => "v.status",
        VolumeField::Size => "v.size",
        VolumeField::AvailabilityZone => "v.availability_zone",
        VolumeField::Bootable => "v.bootable",
        VolumeField::CreatedAt => "v.created_at",
        VolumeField::UpdatedAt => "v.updated_at",
        VolumeField::ProjectId => "v.project_id",
        VolumeField::UserId => "v.user_id",
        VolumeField::Host => "COALESCE(v.host, '')",
        VolumeField::VolumeTypeId => "v.volume_type_id",
        VolumeField::AttachStatus => "v.attach_status",
        VolumeField::MigrationStatus => "COALESCE(v.migration_status, '')",
        VolumeField::GroupId => "COALESCE(v.group_id, '')",
    }
}

/// A filter value as SQLite takes it.
fn sql_value(v: &Scalar) -> Value {
    match v {
        Scalar::Null => Value::Null,
        Scalar::Integer(i) => Value::Integer(*i),
        Scalar::Text(t) => Value::Text(t.clone()),
    }
}

const COLUMNS: &str = "v.id, v.project_id, v.user_id, v.name, v.description, v.size, v.status,
     v.attach_status, v.migration_status, v.availability_zone, v.bootable, v.multiattach,
     v.volume_type_id, t.name, v.snapshot_id, v.source_volid, v.host, v.task,
     v.error_reason, v.consumes_quota, v.created_at, v.updated_at, v.provider_auth, v.encryption_key_id,
     v.group_id";

fn id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Id> {
    let s: String = row.get(i)?;
    Id::parse(&s).ok_or_else(|| bad_row("id", &s))
}

fn opt_id_col(row: &Row<'_>, i: usize) -> crate::store::db::DbResult<Option<Id>> {
    let s: Option<String> = row.get(i)?;
    s.map(|s| Id::parse(&s).ok_or_else(|| bad_row("id", &s))).transpose()
}

fn volume_from_row(row: &Row<'_>) -> crate::store::db::DbResult<Volume> {
    let status: String = row.get(6)?;
    let attach: String = row.get(7)?;
    let task: Option<String> = row.get(17)?;
    Ok(Volume {
        id: id_col(row, 0)?,
        project_id: row.get(1)?,
        user_id: row.get(2)?,
        name: row.get(3)?,
        description: row.get(4)?,
        size: row.get::<_, i64>(5)? as u64,
        status: status.parse().map_err(|_| bad_row("status", &status))?,
        attach_status: attach.parse().map_err(|_| bad_row("attach_status", &attach))?,
        migration_status: row.get(8)?,
        availability_zone: row.get(9)?,
        bootable: row.get(10)?,
        multiattach: row.get(11)?,
        volume_type_id: id_col(row, 12)?,
        volume_type_name: row.get(13)?,
        snapshot_id: opt_id_col(row, 14)?,
        source_volid: opt_id_col(row, 15)?,
        group_id: opt_id_col(row, 24)?,
        host: row.get(16)?,
        task: match task {
            None => None,
            Some(t) => Some(Task::from_db(&t).ok_or_else(|| bad_row("task", &t))?),
        },
        error_reason: row.get(18)?,
        consumes_quota: row.get(19)?,
        created_at: ts_col(row, 20)?,
        updated_at: ts_col(row, 21)?,
        metadata: BTreeMap::new(),
        admin_metadata: BTreeMap::new(),
        provider_auth: row.get(22)?,
        encryption_key_id: opt_id_col(row, 23)?,
        attachments: Vec::new(),
    })
}

/// Fill in the metadata and attachments of `volumes`.
fn load_metadata(conn: &Connection, volumes: &mut [Volume]) -> Result<()> {
    load_maps(conn, volumes)?;
    super::attachments::load_into(conn, volumes)
}

/// Fill in user and admin metadata with a query per table.
fn load_maps(conn: &Connection, volumes: &mut [Volume]) -> Result<()> {
    if volumes.is_empty() {
        return Ok(());
    }
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in volumes.iter().enumerate() {
        index.insert(v.id.to_string(), i);
    }
    for (table, admin) in [("volume_metadata", false), ("volume_admin_metadata", true)] {
        // Chunks keep the statement under SQLite's parameter limit.
        let ids: Vec<&String> = index.keys().collect();
        for chunk in ids.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT volume_id, key, value FROM {table} WHERE volume_id IN ({placeholders})");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(chunk.iter()))?;
            while let Some(row) = rows.next()? {
                let vid: String = row.get(0)?;
                let Some(&i) = index.get(&vid) else { continue };
                let map = if admin { &mut volumes[i].admin_metadata } else { &mut volumes[i].metadata };
                map.insert(row.get(1)?, row.get(2)?);
            }
        }
    }
    Ok(())
}

/// Insert a new volume with its metadata.
pub fn insert(conn: &Connection, v: &Volume) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO volumes (id, project_id, user_id, name, description, size, status,
             attach_status, migration_status, availability_zone, bootable, multiattach,
             volume_type_id, snapshot_id, source_volid, host, task, error_reason,
             consumes_quota, created_at, updated_at, provider_auth, encryption_key_id, group_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        v.id.to_string(),
        v.project_id,
        v.user_id,
        v.name,
        v.description,
        v.size as i64,
        v.status.as_str(),
        v.attach_status.as_str(),
        v.migration_status,
        v.availability_zone,
        v.bootable,
        v.multiattach,
        v.volume_type_id.to_string(),
        v.snapshot_id.map(|i| i.to_string()),
        v.source_volid.map(|i| i.to_string()),
        v.host,
        v.task.as_ref().map(Task::to_db),
        v.error_reason,
        v.consumes_quota,
        v.created_at.to_string(),
        v.updated_at.to_string(),
        v.provider_auth,
        v.encryption_key_id.map(|i| i.to_string()),
        v.group_id.map(|g| g.to_string()),
    ])?;
    // A new volume has no metadata rows to replace.
    add_metadata(conn, v.id, &v.metadata, false)?;
    add_metadata(conn, v.id, &v.admin_metadata, true)?;
    Ok(())
}

/// Change a volume's type (retype), with its multiattach flag.
pub fn set_type(conn: &Connection, id: Id, type_id: Id, multiattach: bool) -> Result<()> {
    conn.prepare_cached("UPDATE volumes SET volume_type_id = ?2, multiattach = ?3 WHERE id = ?1")?.execute(params![
        id.to_string(),
        type_id.to_string(),
        multiattach
    ])?;
    Ok(())
}

/// Save a volume's changeable fields.
pub fn save(conn: &Connection, v: &Volume) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE volumes SET name = ?2, description = ?3, size = ?4, status = ?5,
                 attach_status = ?6, migration_status = ?7, bootable = ?8, host = ?9,
                 task = ?10, error_reason = ?11, updated_at = ?12, provider_auth = ?13,
                 encryption_key_id = ?14, group_id = ?15
             WHERE id = ?1",
        )?
        .execute(params![
            v.id.to_string(),
            v.name,
            v.description,
            v.size as i64,
            v.status.as_str(),
            v.attach_status.as_str(),
            v.migration_status,
            v.bootable,
            v.host,
            v.task.as_ref().map(Task::to_db),
            v.error_reason,
            v.updated_at.to_string(),
            v.provider_auth,
            v.encryption_key_id.map(|i| i.to_string()),
            v.group_id.map(|g| g.to_string()),
        ])?;
    if n == 0 {
        return Err(Error::NotFound(format!("Volume {} could not be found.", v.id)));
    }
    Ok(())
}

/// Place a volume another node accepted and is scheduling (`task` is
/// `scheduling:<from>`, no pool yet) on `pool`: its task becomes `backend_create`.
/// False when it is no longer waiting for a pool (placed elsewhere, reset, gone), so
/// that a volume is placed by one node only.
pub fn claim_scheduled(conn: &Connection, id: Id, from: &Task, pool: &str, now: Timestamp) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE volumes SET host = ?3, task = ?4, updated_at = ?5
             WHERE id = ?1 AND status = 'creating' AND host IS NULL AND task = ?2",
        )?
        .execute(params![id.to_string(), from.to_db(), pool, Task::BackendCreate.to_db(), now.to_string()])?;
    Ok(n == 1)
}

/// The end of a volume's build, as one statement: task cleared and `status` set to
/// `made` with `task` — but only if it is still `creating` (an admin may have reset
/// it meanwhile). Returns the status and task it has now.
pub fn finish_build(
    conn: &Connection,
    id: Id,
    made: VolumeStatus,
    task: Option<&Task>,
    now: Timestamp,
) -> Result<(VolumeStatus, Option<Task>)> {
    // Every expression of an UPDATE sees the row as it was: both CASEs test the old
    // status.
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached(
            "UPDATE volumes SET
                 task = CASE WHEN status = 'creating' THEN ?2 ELSE NULL END,
                 status = CASE WHEN status = 'creating' THEN ?3 ELSE status END,
                 updated_at = ?4
             WHERE id = ?1 RETURNING status, task",
        )?
        .query_row(params![id.to_string(), task.map(Task::to_db), made.as_str(), now.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((status, task)) = row else {
        return Err(Error::NotFound(format!("Volume {id} could not be found.")));
    };
    Ok((status.parse()?, task.as_deref().and_then(Task::from_db)))
}

/// Give a volume to another project and user (a transfer's acceptance).
pub fn set_owner(conn: &Connection, id: Id, project: &str, user: &str) -> Result<()> {
    conn.prepare_cached("UPDATE volumes SET project_id = ?2, user_id = ?3 WHERE id = ?1")?.execute(params![
        id.to_string(),
        project,
        user
    ])?;
    Ok(())
}

/// Replace a volume's user (`admin = false`) or admin metadata.
pub fn replace_metadata(conn: &Connection, id: Id, meta: &BTreeMap<String, String>, admin: bool) -> Result<()> {
    let table = if admin { "volume_admin_metadata" } else { "volume_metadata" };
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE volume_id = ?1"))?.execute([id.to_string()])?;
    add_metadata(conn, id, meta, admin)
}

/// Add metadata rows to a volume that has none with these keys.
fn add_metadata(conn: &Connection, id: Id, meta: &BTreeMap<String, String>, admin: bool) -> Result<()> {
    if meta.is_empty() {
        return Ok(());
    }
    let table = if admin { "volume_admin_metadata" } else { "volume_metadata" };
    let mut stmt = conn.prepare_cached(&format!("INSERT INTO {table} (volume_id, key, value) VALUES (?1, ?2, ?3)"))?;
    for (k, val) in meta {
        stmt.execute(params![id.to_string(), k, val])?;
    }
    Ok(())
}

/// Remove a volume's record (metadata goes with it).
pub fn delete(conn: &Connection, id: Id) -> Result<()> {
    conn.prepare_cached("DELETE FROM volumes WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Load one volume.
pub fn get(conn: &Connection, id: Id) -> Result<Option<Volume>> {
    let sql = format!("SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id WHERE v.id = ?1");
    let v = conn.prepare_cached(&sql)?.query_row([id.to_string()], volume_from_row).optional()?;
    match v {
        None => Ok(None),
        Some(v) => {
            let mut one = [v];
            load_metadata(conn, &mut one)?;
            let [v] = one;
            Ok(Some(v))
        }
    }
}

/// Every volume with background work recorded or in a transitional status (for
/// start-up reconcile).
pub fn unsettled(conn: &Connection) -> Result<Vec<Volume>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id
         WHERE v.task IS NOT NULL OR v.status IN ('creating', 'deleting', 'extending', 'reverting')
         ORDER BY v.created_at"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut out = stmt.query_map([], volume_from_row)?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// Every volume in `status` (reconcile: those a backup or restore left behind).
pub fn with_status(conn: &Connection, status: crate::model::VolumeStatus) -> Result<Vec<Volume>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id
         WHERE v.status = ?1 ORDER BY v.created_at, v.id"
    );
    let mut out = conn
        .prepare_cached(&sql)?
        .query_map([status.as_str()], volume_from_row)?
        .collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// Volumes being made from `source` (a volume or a snapshot id) right now.
pub fn being_copied_from(conn: &Connection, source: Id) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM volumes WHERE status = 'creating'
             AND (source_volid = ?1 OR snapshot_id = ?1)",
        )?
        .query_row([source.to_string()], |r| r.get(0))?;
    Ok(n as u64)
}

/// The volumes of a group, oldest first.
pub fn in_group(conn: &Connection, group: Id) -> Result<Vec<Volume>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id
         WHERE v.group_id = ?1 ORDER BY v.created_at, v.id"
    );
    let mut out = conn
        .prepare_cached(&sql)?
        .query_map([group.to_string()], volume_from_row)?
        .collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// Every volume placed on `host` (a pool's full name).
pub fn on_host(conn: &Connection, host: &str) -> Result<Vec<Id>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM volumes WHERE host = ?1")?;
    let ids = stmt.query_map([host], |r| id_col(r, 0))?.collect::<crate::store::db::DbResult<Vec<_>>>()?;
    Ok(ids)
}

/// Build the WHERE clause of a list (without keyset conditions).
fn where_clause(q: &ListQuery, args: &mut Vec<Value>) -> String {
    let mut conds: Vec<String> = Vec::new();
    if let Some(p) = &q.project {
        args.push(Value::Text(p.clone()));
        conds.push(format!("v.project_id = ?{}", args.len()));
    }
    for f in &q.filters {
        if f.op == FilterOp::Like {
            let Scalar::Text(t) = &f.value else { continue };
            let escaped = t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            args.push(Value::Text(format!("%{escaped}%")));
            conds.push(format!("{} LIKE ?{} ESCAPE '\\'", expr(f.field), args.len()));
            continue;
        }
        let op = match f.op {
            FilterOp::Eq => "=",
            FilterOp::Ne => "<>",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Like => unreachable!("handled above"),
        };
        args.push(sql_value(&f.value));
        conds.push(format!("{} {op} ?{}", expr(f.field), args.len()));
    }
    for (k, val) in &q.metadata {
        args.push(Value::Text(k.clone()));
        args.push(Value::Text(val.clone()));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM volume_metadata m WHERE m.volume_id = v.id AND m.key = ?{} AND m.value = ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    if conds.is_empty() {
        "1 = 1".into()
    } else {
        conds.join(" AND ")
    }
}

fn sort_keys(q: &ListQuery) -> Vec<(SortKey, SortDir)> {
    if q.sort.is_empty() {
        vec![(VolumeField::CreatedAt, SortDir::Desc)]
    } else {
        q.sort.clone()
    }
}

/// The query that lists volumes as `q` asks, and its arguments.
fn list_sql(conn: &Connection, q: &ListQuery) -> Result<(String, Vec<Value>)> {
    let mut args = Vec::new();
    let mut cond = where_clause(q, &mut args);
    let keys: Vec<(&str, SortDir)> = sort_keys(q).iter().map(|(k, d)| (expr(*k), *d)).collect();
    let (order, after) = order_after(conn, "volumes v", "v.id", &keys, q.marker, &mut args)?;
    if let Some(after) = after {
        cond = format!("{cond} AND {after}");
    }
    let limit = q.limit.map(|l| l as i64).unwrap_or(-1);
    let sql = format!(
        "SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id
         WHERE {cond} ORDER BY {order} LIMIT {limit} OFFSET {}",
        q.offset
    );
    Ok((sql, args))
}

/// List volumes as `q` asks, metadata included.
pub fn list(conn: &Connection, q: &ListQuery) -> Result<Vec<Volume>> {
    let (sql, args) = list_sql(conn, q)?;
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = stmt
        .query_map(params_from_iter(args.iter()), volume_from_row)?
        .collect::<crate::store::db::DbResult<Vec<_>>>()?;
    load_metadata(conn, &mut out)?;
    Ok(out)
}

/// How many volumes match `q`'s filters (ignoring paging).
pub fn count(conn: &Connection, q: &ListQuery) -> Result<u64> {
    let mut args = Vec::new();
    let cond = where_clause(q, &mut args);
    let sql = format!("SELECT COUNT(*) FROM volumes v WHERE {cond}");
    let n: i64 = conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    Ok(n as u64)
}

/// The query that adds up the volumes matching `q`'s filters.
fn totals_sql(q: &ListQuery, args: &mut Vec<Value>) -> (String, String) {
    let cond = where_clause(q, args);
    (format!("SELECT COUNT(*), COALESCE(SUM(v.size), 0) FROM volumes v WHERE {cond}"), cond)
}

/// Totals of the volumes matching `q`'s filters.
pub fn summary(conn: &Connection, q: &ListQuery) -> Result<Summary> {
    let mut args = Vec::new();
    let (sql, cond) = totals_sql(q, &mut args);
    let (count, size): (i64, i64) =
        conn.prepare_cached(&sql)?.query_row(params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?;
    let sql = format!(
        "SELECT DISTINCT m.key, m.value FROM volume_metadata m JOIN volumes v ON v.id = m.volume_id
         WHERE {cond} ORDER BY m.key, m.value"
    );
    let mut metadata: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    while let Some(row) = rows.next()? {
        metadata.entry(row.get(0)?).or_default().push(row.get(1)?);
    }
    Ok(Summary { total_count: count as u64, total_size: size as u64, metadata })
}

impl Store {
    /// Load one volume from a reader.
    pub fn volume(&self, id: Id) -> Result<Option<Volume>> {
        self.read(|tx| get(tx, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use crate::model::{AttachStatus, VolumeStatus};
    use crate::query::Filter;
    use crate::store::Store;

    fn default_type(s: &Store) -> Id {
        s.read(|tx| {
            let t: String = tx.query_row("SELECT id FROM volume_types WHERE name='__DEFAULT__'", [], |r| r.get(0))?;
            Ok(Id::parse(&t).unwrap())
        })
        .unwrap()
    }

    fn vol(type_id: Id, project: &str, name: &str, size: u64) -> Volume {
        let now = Timestamp::now();
        Volume {
            id: Id::new(),
            project_id: project.into(),
            user_id: "u".into(),
            name: Some(name.into()),
            description: None,
            size,
            status: VolumeStatus::Available,
            attach_status: AttachStatus::Detached,
            migration_status: None,
            availability_zone: "nova".into(),
            bootable: false,
            multiattach: false,
            volume_type_id: type_id,
            volume_type_name: "__DEFAULT__".into(),
            snapshot_id: None,
            source_volid: None,
            group_id: None,
            host: None,
            task: None,
            error_reason: None,
            consumes_quota: true,
            created_at: now,
            updated_at: now,
            metadata: BTreeMap::from([("k".to_string(), name.to_string())]),
            admin_metadata: BTreeMap::new(),
            provider_auth: None,
            encryption_key_id: None,
            attachments: Vec::new(),
        }
    }

    #[test]
    fn insert_get_save_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let t = default_type(&s);
        let mut v = vol(t, "p", "a", 1);
        s.write(|tx| insert(tx, &v)).unwrap();
        assert_eq!(s.volume(v.id).unwrap().as_ref(), Some(&v));
        v.status = VolumeStatus::Deleting;
        v.task = Some(Task::BackendDelete);
        s.write(|tx| save(tx, &v)).unwrap();
        assert_eq!(s.volume(v.id).unwrap().unwrap().task, Some(Task::BackendDelete));
        assert_eq!(s.read(unsettled).unwrap().len(), 1);
        s.write(|tx| delete(tx, v.id)).unwrap();
        assert_eq!(s.volume(v.id).unwrap(), None);
    }

    /// The usage counters the triggers keep equal what the volume records add up to,
    /// through inserts, resizes, retypes, transfers, quota-free volumes and deletes.
    #[test]
    fn quota_usage_counters_follow_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let t = default_type(&s);
        let t2 = Id::new();
        s.write(|tx| {
            tx.execute(
                "INSERT INTO volume_types (id, name, is_public, created_at, updated_at) VALUES (?1, 'gold', 1, 'x', 'x')",
                [t2.to_string()],
            )?;
            Ok(())
        })
        .unwrap();
        let scan = |project: &str| -> (i64, i64) {
            s.read(|tx| {
                Ok(tx.query_row(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM volumes WHERE project_id = ?1 AND consumes_quota = 1",
                    [project],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .unwrap()
        };
        let counted = |project: &str| -> (i64, i64) {
            let u = s.read(|tx| crate::store::quotas::usage(tx, project)).unwrap();
            (u.in_use["volumes"], u.in_use["gigabytes"])
        };
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut vols: Vec<Volume> = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pick = (x >> 8) as usize % vols.len().max(1);
            match x % 6 {
                0 | 1 => {
                    let mut v = vol(
                        if x.is_multiple_of(4) { t2 } else { t },
                        ["p", "q"][(x >> 3) as usize % 2],
                        "v",
                        x % 5 + 1,
                    );
                    v.consumes_quota = !x.is_multiple_of(7);
                    s.write(|tx| insert(tx, &v)).unwrap();
                    vols.push(v);
                }
                2 if !vols.is_empty() => {
                    vols[pick].size += 1;
                    s.write(|tx| save(tx, &vols[pick])).unwrap();
                }
                3 if !vols.is_empty() => {
                    let to = if vols[pick].volume_type_id == t { t2 } else { t };
                    vols[pick].volume_type_id = to;
                    s.write(|tx| set_type(tx, vols[pick].id, to, false)).unwrap();
                }
                4 if !vols.is_empty() => {
                    let to = if vols[pick].project_id == "p" { "q" } else { "p" };
                    vols[pick].project_id = to.into();
                    s.write(|tx| set_owner(tx, vols[pick].id, to, "u")).unwrap();
                }
                5 if !vols.is_empty() => {
                    let v = vols.swap_remove(pick);
                    s.write(|tx| delete(tx, v.id)).unwrap();
                }
                _ => {}
            }
            for project in ["p", "q"] {
                assert_eq!(counted(project), scan(project), "project {project}");
            }
        }
        let per_type = s.read(|tx| crate::store::quotas::usage(tx, "p")).unwrap();
        let gold: i64 =
            vols.iter().filter(|v| v.project_id == "p" && v.consumes_quota && v.volume_type_id == t2).count() as i64;
        assert_eq!(per_type.in_use.get("volumes_gold").copied().unwrap_or(0), gold);
    }

    /// The plan SQLite makes for `sql`: one line per step.
    fn plan(conn: &Connection, sql: &str, args: &[Value]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(3)).unwrap();
        steps.collect::<crate::store::db::DbResult<Vec<_>>>().unwrap().join("\n")
    }

    /// The lists clients ask for most are served in order from an index, reading
    /// only the rows of the page: no scan of every volume, no sort of the result.
    #[test]
    fn common_lists_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let t = default_type(&s);
        let marker = vol(t, "p", "m", 1);
        s.write(|tx| insert(tx, &marker)).unwrap();
        let project = |filters: Vec<Filter>, marker: Option<Id>| ListQuery {
            project: Some("p".into()),
            filters,
            limit: Some(1000),
            marker,
            ..Default::default()
        };
        let status =
            || Filter { field: VolumeField::Status, op: FilterOp::Eq, value: Scalar::Text("available".into()) };
        let cases = [
            ("a project's detail", project(vec![], None), "SEARCH v USING INDEX volumes_project_created"),
            (
                "its next page",
                project(vec![], Some(marker.id)),
                "SEARCH v USING INDEX volumes_project_created (project_id=? AND (created_at,id)<(?,?))",
            ),
            ("filtered by status", project(vec![status()], None), "SEARCH v USING INDEX volumes_project_created"),
            (
                "all projects (admin)",
                ListQuery { limit: Some(1000), ..Default::default() },
                "SCAN v USING INDEX volumes_created",
            ),
        ];
        s.read(|tx| {
            for (what, q, want) in &cases {
                let (sql, args) = list_sql(tx, q)?;
                let p = plan(tx, &sql, &args);
                assert!(p.contains(want), "{what}: {p}");
                assert!(!p.contains("TEMP B-TREE"), "{what} is sorted after reading: {p}");
                assert!(!p.lines().any(|l| l == "SCAN v"), "{what} reads every volume: {p}");
            }
            let mut args = Vec::new();
            let (sql, _) = totals_sql(&project(vec![], None), &mut args);
            let p = plan(tx, &sql, &args);
            assert!(p.contains("SEARCH v USING INDEX volumes_project_created"), "a project's summary: {p}");
            let p = plan(
                tx,
                &format!(
                    "SELECT {COLUMNS} FROM volumes v JOIN volume_types t ON t.id = v.volume_type_id WHERE v.id = ?1"
                ),
                &[Value::Text(marker.id.to_string())],
            );
            assert!(p.contains("SEARCH v USING INDEX sqlite_autoindex_volumes_1 (id=?)"), "a show: {p}");
            let p = plan(
                tx,
                "SELECT u.resource, t.name, u.in_use FROM quota_usage u
                 LEFT JOIN volume_types t ON t.id = u.volume_type_id WHERE u.project_id = ?1",
                &[Value::Text("p".into())],
            );
            assert!(
                p.contains("SEARCH u USING INDEX sqlite_autoindex_quota_usage_1 (project_id=?)"),
                "quota usage: {p}"
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn lists_filter_sort_and_page() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let t = default_type(&s);
        let mut all = Vec::new();
        for i in 0..25u64 {
            let v = vol(t, if i % 5 == 0 { "other" } else { "p" }, &format!("vol-{i:02}"), i % 3 + 1);
            s.write(|tx| insert(tx, &v)).unwrap();
            all.push(v);
        }
        let mut q = ListQuery { project: Some("p".into()), ..Default::default() };
        assert_eq!(s.read(|tx| count(tx, &q)).unwrap(), 20);
        // Paging by marker walks the whole set exactly once in order.
        q.sort = vec![(VolumeField::Name, SortDir::Asc)];
        q.limit = Some(7);
        let mut seen = Vec::new();
        loop {
            let page = s.read(|tx| list(tx, &q)).unwrap();
            seen.extend(page.iter().map(|v| v.name.clone().unwrap()));
            if page.len() < 7 {
                break;
            }
            q.marker = Some(page.last().unwrap().id);
        }
        let mut expected: Vec<String> =
            all.iter().filter(|v| v.project_id == "p").map(|v| v.name.clone().unwrap()).collect();
        expected.sort();
        assert_eq!(seen, expected);
        // Filters: exact, like, metadata, comparison.
        let q = ListQuery {
            project: Some("p".into()),
            filters: vec![
                Filter { field: VolumeField::Size, op: FilterOp::Eq, value: Scalar::Integer(2) },
                Filter { field: VolumeField::Name, op: FilterOp::Like, value: Scalar::Text("ol-1".into()) },
            ],
            ..Default::default()
        };
        let names: Vec<String> = s.read(|tx| list(tx, &q)).unwrap().into_iter().map(|v| v.name.unwrap()).collect();
        assert_eq!(names, vec!["vol-19", "vol-16", "vol-13"]);
        let q = ListQuery { metadata: vec![("k".into(), "vol-03".into())], ..Default::default() };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap().len(), 1);
        let sum = s.read(|tx| summary(tx, &ListQuery { project: Some("other".into()), ..Default::default() })).unwrap();
        assert_eq!(sum.total_count, 5);
        assert_eq!(sum.metadata["k"].len(), 5);
        // A like filter's wildcards are literal.
        let q = ListQuery {
            filters: vec![Filter { field: VolumeField::Name, op: FilterOp::Like, value: Scalar::Text("%".into()) }],
            ..Default::default()
        };
        assert_eq!(s.read(|tx| list(tx, &q)).unwrap().len(), 0);
        // A marker that does not exist is NotFound.
        let q = ListQuery { marker: Some(Id::new()), ..Default::default() };
        assert!(matches!(s.read(|tx| list(tx, &q)), Err(Error::NotFound(_))));
    }
}
