//! hearth's state in SQLite or PostgreSQL: transactional, crash-safe, with migrations.
//!
//! By default the store is one SQLite database file in the data directory, in WAL
//! mode with `synchronous=FULL`, so a committed transaction survives a crash of the
//! process and of the machine. With `[database] connection = "postgresql://..."` it
//! is a PostgreSQL database that several hearthd nodes share ([`Database`]).
//!
//! All of a node's writes go through one connection, each write in its own savepoint
//! of a transaction that concurrent writes share, one commit for all ([`Store::write`],
//! [`writer`]): on SQLite a `BEGIN IMMEDIATE` transaction; on PostgreSQL one that
//! first takes the store's advisory write lock, so that the writes of every node are
//! applied one transaction at a time, as on SQLite, and a check and the change it
//! allows (capacity, quota) are never interleaved with another node's. Reads use a
//! small pool of reader connections ([`Store::read`]) that see the last committed
//! state in one snapshot and never block the writers.
//!
//! The SQL is written once ([`db`]: SQLite's dialect where it is PostgreSQL's too,
//! translated where it is not); the same migrations make the same schema on both.

pub mod attachments;
pub mod backups;
pub mod db;
pub mod encryption;
pub mod groups;
pub mod handed;
pub mod messages;
mod migrations;
pub mod overview;
pub mod pg_target;
pub mod pools;
pub mod qos;
pub mod quotas;
pub mod repositories;
pub mod services;
pub mod snapshots;
pub mod transfers;
pub mod types;
pub mod volumes;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::OpenFlags;

use db::{Connection, DbError, OptionalExtension, PgConn, Value};
use pg_target::PgTarget;

use crate::error::{Error, Result};
use crate::ids::Id;
use crate::query::SortDir;

pub use quotas::{QuotaUsage, Reservation};

/// The database file's name in the data directory.
pub const DB_FILE: &str = "hearth.db";

/// Where the store is.
#[derive(Clone, Debug)]
pub enum Database {
    /// A SQLite file ([`DB_FILE`]) in this directory.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (libpq's URL syntax), and the password from
    /// `[database] password_file` when there is one.
    Postgres(String, Option<String>),
}

impl Database {
    /// The database of `config`: its `[database] connection`, else the data directory.
    pub fn of(config: &crate::config::Config) -> Result<Database> {
        let Some(url) = &config.database.connection else {
            return Ok(Database::Sqlite(config.data_dir()));
        };
        let password = match &config.database.password_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Internal(format!("cannot read database.password_file {}: {e}", path.display()))
                })?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
        };
        Ok(Database::Postgres(url.clone(), password))
    }
}

/// A reader connection.
enum Reader {
    Sqlite(rusqlite::Connection),
    /// PostgreSQL's settings, and the connection, `None` after it was lost (made
    /// again when next used).
    Pg(Box<(PgTarget, Option<PgConn>)>),
}

/// The state store.
pub struct Store {
    writer: writer::Writer,
    readers: Vec<Mutex<Reader>>,
    next_reader: AtomicUsize,
    /// A PostgreSQL store's settings (for [`Store::listener`]).
    pg: Option<pg_target::PgTarget>,
}

/// A stored value that does not parse, as a row error.
pub(crate) fn bad_row(what: &str, value: &str) -> DbError {
    db::conversion(what, value)
}

/// What a status count is taken over ([`count_by_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// Volumes by `status`.
    Volumes,
    /// Snapshots by `status`.
    Snapshots,
    /// Backups by `status`.
    Backups,
    /// Attachments by `attach_status`.
    Attachments,
}

/// How many rows of each status there are (statuses with none are absent).
pub fn count_by_status(conn: &Connection, what: Counted) -> Result<Vec<(String, u64)>> {
    let sql = match what {
        Counted::Volumes => "SELECT status, COUNT(*) FROM volumes GROUP BY status",
        Counted::Snapshots => "SELECT status, COUNT(*) FROM snapshots GROUP BY status",
        Counted::Backups => "SELECT status, COUNT(*) FROM backups GROUP BY status",
        Counted::Attachments => "SELECT attach_status, COUNT(*) FROM attachments GROUP BY attach_status",
    };
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (status, n) = row?;
        out.push((status, u64::try_from(n).unwrap_or(0)));
    }
    Ok(out)
}

/// A timestamp column.
pub(crate) fn ts_col(row: &db::Row<'_>, i: usize) -> db::DbResult<crate::ids::Timestamp> {
    let s: String = row.get(i)?;
    crate::ids::Timestamp::parse_stored(&s).ok_or_else(|| bad_row("timestamp", &s))
}

/// The `WHERE` condition and `ORDER BY ... LIMIT ... OFFSET ...` tail of a list of
/// `table` (aliased `a`) as `q` asks, its values bound into `args`. The columns in
/// `q` come from the API's fixed lists, never from the request; the default order is
/// newest first.
pub(crate) fn column_query_sql(
    conn: &Connection,
    table: &str,
    q: &crate::query::ColumnQuery,
    args: &mut Vec<Value>,
) -> Result<(String, String)> {
    let mut conds = vec!["1 = 1".to_string()];
    if q.match_nothing {
        conds.push("1 = 0".into());
    }
    if let Some(p) = &q.project {
        args.push(Value::Text(p.clone()));
        conds.push(format!("a.project_id = ?{}", args.len()));
    }
    for (col, v) in &q.exact {
        args.push(Value::Text(v.clone()));
        conds.push(format!("a.{col} = ?{}", args.len()));
    }
    for (col, v) in &q.like {
        let escaped = v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        args.push(Value::Text(format!("%{escaped}%")));
        conds.push(format!("COALESCE(a.{col}, '') LIKE ?{} ESCAPE '\\'", args.len()));
    }
    let keys: Vec<(String, SortDir)> = if q.sort.is_empty() {
        vec![("a.created_at".into(), SortDir::Desc)]
    } else {
        q.sort
            .iter()
            .map(|(c, d)| (if *c == "id" { "a.id".into() } else { format!("COALESCE(a.{c}, '')") }, *d))
            .collect()
    };
    let (order, after) = order_after(conn, &format!("{table} a"), "a.id", &keys, q.marker, args)?;
    conds.extend(after);
    let tail = format!("ORDER BY {order} LIMIT {} OFFSET {}", q.limit.map(|l| l as i64).unwrap_or(-1), q.offset);
    Ok((conds.join(" AND "), tail))
}

/// The order of a paged list and, after a `marker`, the condition for the rows that
/// follow it. `keys` are SQL expressions with their directions; the id (`id_expr`) is
/// the last tie-breaker, appended in the last key's direction when missing. Returns
/// the `ORDER BY` list and the condition, its values bound into `args`.
pub(crate) fn order_after(
    conn: &Connection,
    from: &str,
    id_expr: &str,
    keys: &[(impl AsRef<str>, SortDir)],
    marker: Option<Id>,
    args: &mut Vec<Value>,
) -> Result<(String, Option<String>)> {
    let mut keys: Vec<(&str, SortDir)> = keys.iter().map(|(e, d)| (e.as_ref(), *d)).collect();
    if !keys.iter().any(|(e, _)| *e == id_expr) {
        let dir = keys.last().map(|(_, d)| *d).unwrap_or(SortDir::Desc);
        keys.push((id_expr, dir));
    }
    let order: Vec<String> =
        keys.iter().map(|(e, d)| format!("{e} {}", if *d == SortDir::Asc { "ASC" } else { "DESC" })).collect();
    let after = marker.map(|m| keyset_after(conn, from, id_expr, &keys, m, args)).transpose()?;
    Ok((order.join(", "), after))
}

/// Keyset pagination: the condition for rows strictly after `marker` in the order
/// `keys` (which end with the id), its values bound into `args`.
fn keyset_after(
    conn: &Connection,
    from: &str,
    id_expr: &str,
    keys: &[(&str, SortDir)],
    marker: Id,
    args: &mut Vec<Value>,
) -> Result<String> {
    let exprs: Vec<&str> = keys.iter().map(|(e, _)| *e).collect();
    let sql = format!("SELECT {} FROM {from} WHERE {id_expr} = ?1", exprs.join(", "));
    let marker_vals: Option<Vec<Value>> = conn
        .prepare_cached(&sql)?
        .query_row([marker.to_string()], |r| (0..exprs.len()).map(|i| r.get::<_, Value>(i)).collect())
        .optional()?;
    let marker_vals = marker_vals.ok_or_else(|| Error::NotFound(format!("Marker {marker} could not be found.")))?;
    if keys.iter().all(|(_, d)| *d == keys[0].1) {
        // One direction: a row-value comparison, which SQLite reads as a range of an
        // index on these keys, so a page deep in the list starts where it begins
        // instead of walking every row before it.
        let mut marks = Vec::new();
        for v in marker_vals {
            args.push(v);
            marks.push(format!("?{}", args.len()));
        }
        let op = if keys[0].1 == SortDir::Asc { ">" } else { "<" };
        return Ok(format!("(({}) {op} ({}))", exprs.join(", "), marks.join(", ")));
    }
    let mut ors = Vec::new();
    for i in 0..keys.len() {
        let mut ands = Vec::new();
        for (j, (e, _)) in keys.iter().enumerate().take(i) {
            args.push(marker_vals[j].clone());
            ands.push(format!("{e} = ?{}", args.len()));
        }
        let (e, dir) = keys[i];
        args.push(marker_vals[i].clone());
        let op = if dir == SortDir::Asc { ">" } else { "<" };
        ands.push(format!("{e} {op} ?{}", args.len()));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    Ok(format!("({})", ors.join(" OR ")))
}

/// Make a file readable and writable by its owner only (0600).
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::internal(format!("making {} private (0600)", path.display()), e))
}

/// Check a store file that exists before anything writes to it (its mode, journal,
/// schema): it must be a sound SQLite database (`PRAGMA quick_check`: every page and
/// index entry readable and consistent; about 45 ms for 60 MB, 100,000 volumes) whose
/// schema this hearthd knows. A store written by a newer hearth, another program's
/// database, or a damaged file refuses start-up with the reason, and nothing is
/// changed; a new store (no file, or an empty one) passes.
/// A read-only connection that changes nothing on disk: without a write-ahead log
/// beside the store (a clean stop), even a read-only open of a WAL database makes its
/// -wal and -shm files, so it is read as immutable instead; with one (running, or a
/// crash), its committed transactions are part of the store: read through it.
fn open_for_reading(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if Path::new(&wal).exists() {
        rusqlite::Connection::open_with_flags(path, flags)
    } else {
        let encoded: String =
            percent_encoding::utf8_percent_encode(&path.to_string_lossy(), percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/");
        rusqlite::Connection::open_with_flags(format!("file:{encoded}?immutable=1"), flags)
    }
}

/// The store in `dir`, read-only (`hearthd status`), after the checks start-up makes
/// (sound, hearth's, not from a newer hearth). Nothing in `dir` is created or changed.
pub fn open_read_only(dir: &Path) -> Result<rusqlite::Connection> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(Error::NotFound(format!(
            "There is no store at {}: hearthd has not run with this data directory.",
            path.display()
        )));
    }
    check_existing(&path)?;
    let conn = open_for_reading(&path).map_err(DbError::from)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(DbError::from)?;
    Ok(conn)
}

/// A connection to the PostgreSQL store at `url` for reading (`hearthd status`),
/// after the checks start-up makes.
pub fn open_pg_read_only(url: &str, password: Option<&str>) -> Result<PgConn> {
    let config = pg_config(url, password)?;
    let mut conn = PgConn::connect(&config)
        .map_err(|e| Error::Internal(format!("the PostgreSQL store at {} cannot be reached ({e})", redact(url))))?;
    check_existing_pg(&mut conn, url)?;
    Ok(conn)
}

fn check_existing(path: &Path) -> Result<()> {
    let refuse = |why: String| {
        Error::Internal(format!(
            "the store {} {why}; hearthd refuses to start and has changed nothing in it",
            path.display()
        ))
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(format!("cannot be read ({e})"))),
    }
    let conn = open_for_reading(path).map_err(|e| refuse(format!("cannot be opened ({e})")))?;
    let damaged = |e: rusqlite::Error| refuse(format!("is not a sound SQLite database ({e})"));
    let problems: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
        .map_err(damaged)?;
    if problems != ["ok"] {
        return Err(refuse(format!("is damaged (SQLite's quick_check: {})", problems.join("; "))));
    }
    let tables: i64 =
        conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(damaged)?;
    let ours: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", [], |r| {
            r.get(0)
        })
        .map_err(damaged)?;
    if ours == 0 {
        return match tables {
            0 => Ok(()),
            _ => Err(refuse(format!("holds {tables} tables but no schema_migrations: it is not a hearth store"))),
        };
    }
    let version: i64 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(damaged)?;
    let known = migrations::count() as i64;
    if version > known {
        return Err(refuse(format!(
            "has schema version {version}, written by a newer hearth; this hearthd knows versions up to {known}"
        )));
    }
    Ok(())
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection cannot leave a transaction half-applied
    // (rusqlite rolls back on drop), so a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Open (creating if needed) the store in `dir` and bring its schema up to date.
    pub fn open(dir: &Path, readers: usize) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating data directory {}", dir.display()), e))?;
        let path = dir.join(DB_FILE);
        check_existing(&path)?;
        nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).map_err(|e| {
            Error::Internal(format!(
                "the data directory {} is not writable ({e}); hearthd refuses to start and has changed nothing in it",
                dir.display()
            ))
        })?;
        let sqlite = |e: rusqlite::Error| Error::Store(DbError::Sqlite(e));
        let writer = rusqlite::Connection::open(&path).map_err(sqlite)?;
        // The store holds CHAP secrets: owner only (SQLite gives its -wal and -shm
        // files the database file's mode).
        restrict(&path)?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("store {}: journal mode is {mode}, not WAL", path.display());
        }
        configure(&writer).map_err(sqlite)?;
        migrations::migrate(&Connection::sqlite(&writer))?;
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = rusqlite::Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn)?;
                Ok(Mutex::new(Reader::Sqlite(conn)))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sqlite)?;
        Ok(Store {
            writer: writer::Writer::new(writer::WriteConn::Sqlite(writer)),
            readers,
            next_reader: AtomicUsize::new(0),
            pg: None,
        })
    }

    /// Open the PostgreSQL store at `url` (libpq's URL or key=value form) as node
    /// `host` and bring its schema up to date; several nodes may do this at once, one
    /// process per `host` ([`PgConn::take_node_lock`]).
    pub fn open_postgres(url: &str, password: Option<&str>, host: &str, readers: usize) -> Result<Store> {
        let config = pg_config(url, password)?;
        let unreachable = |e: DbError| {
            Error::Internal(format!(
                "the PostgreSQL store at {} cannot be reached ({e}); hearthd refuses to start",
                redact(url)
            ))
        };
        let mut writer = PgConn::connect(&config).map_err(unreachable)?;
        check_existing_pg(&mut writer, url)?;
        migrations::migrate(&Connection::pg(&mut writer))?;
        writer.take_node_lock(host).map_err(|e| {
            Error::Internal(format!("the PostgreSQL store at {}: {e}; hearthd refuses to start", redact(url)))
        })?;
        // The commit tokens of writers gone for a week (each process has its own, and
        // a live one writes at least its heartbeat every report interval).
        let week_ago = (chrono::Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%dT%H:%M:%S").to_string();
        Connection::pg(&mut writer)
            .execute("DELETE FROM write_tokens WHERE updated_at < ?1", db::params![week_ago])
            .map_err(unreachable)?;
        let readers = (0..readers.max(1))
            .map(|_| Ok(Mutex::new(Reader::Pg(Box::new((config.clone(), Some(PgConn::connect(&config)?)))))))
            .collect::<std::result::Result<Vec<_>, DbError>>()
            .map_err(unreachable)?;
        Ok(Store {
            writer: writer::Writer::new(writer::WriteConn::Pg(Box::new((
                config.clone(),
                Some(writer),
                host.to_string(),
            )))),
            readers,
            next_reader: AtomicUsize::new(0),
            pg: Some(config),
        })
    }

    /// Whether the store is PostgreSQL's, which several nodes may share.
    pub fn is_shared(&self) -> bool {
        self.pg.is_some()
    }

    /// A connection of its own listening on PostgreSQL's `channels` (`None` on
    /// SQLite, which has no notifications); see [`PgConn::listen`].
    pub fn listener(&self, channels: &[&str]) -> Option<Result<PgConn>> {
        let config = self.pg.as_ref()?;
        Some((|| {
            let mut c = PgConn::connect(config)?;
            c.listen(channels)?;
            Ok(c)
        })())
    }

    /// Open the store `db` names, as node `host`.
    pub fn open_database(db: &Database, host: &str, readers: usize) -> Result<Store> {
        match db {
            Database::Sqlite(dir) => Store::open(dir, readers),
            Database::Postgres(url, password) => Store::open_postgres(url, password.as_deref(), host, readers),
        }
    }

    /// Run `f` as one atomic write: its changes are durable when this returns `Ok`,
    /// and undone when `f` returns an error. Concurrent writes share a commit, and a
    /// failed commit runs `f` again (see [`writer`]).
    pub fn write<T>(&self, f: impl FnMut(&Connection<'_>) -> Result<T>) -> Result<T> {
        self.writer.write(f)
    }

    /// Run `f` on a reader connection, inside one read transaction so that what it
    /// reads is consistent.
    pub fn read<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T>) -> Result<T> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        // Prefer an idle reader; wait for the chosen one when all are busy.
        let mut reader = (0..n)
            .find_map(|i| self.readers[(start + i) % n].try_lock().ok())
            .unwrap_or_else(|| lock(&self.readers[start % n]));
        match &mut *reader {
            Reader::Sqlite(conn) => {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred).map_err(DbError::from)?;
                let out = f(&Connection::sqlite(&tx))?;
                tx.finish().map_err(DbError::from)?;
                Ok(out)
            }
            Reader::Pg(pg) => {
                let (config, slot) = &mut **pg;
                // A connection lost while idle (a restart, a failover) is made again
                // once before the read begins; one lost during the read is a 503.
                let mut fresh = false;
                loop {
                    if slot.as_ref().is_none_or(|c| c.is_closed()) {
                        *slot = None;
                        *slot = Some(PgConn::connect(config).map_err(unavailable)?);
                        fresh = true;
                    }
                    let conn = slot.as_mut().expect("connected");
                    match conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") {
                        Ok(()) => break,
                        Err(e) if e.is_connection() => {
                            *slot = None;
                            if fresh {
                                return Err(unavailable(e));
                            }
                        }
                        Err(e) => {
                            let _ = conn.batch("ROLLBACK");
                            return Err(e.into());
                        }
                    }
                }
                let conn = slot.as_mut().expect("connected");
                let out = f(&Connection::pg(conn));
                match conn.batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" }) {
                    Ok(()) => out,
                    Err(e) if e.is_connection() => {
                        *slot = None;
                        Err(unavailable(e))
                    }
                    Err(e) => {
                        let _ = conn.batch("ROLLBACK");
                        out.and(Err(e.into()))
                    }
                }
            }
        }
    }
}

/// The target of `url`, with `password` when given.
fn pg_config(url: &str, password: Option<&str>) -> Result<PgTarget> {
    PgTarget::new(url, password).map_err(|e| Error::Invalid(format!("[database] connection: {e}")))
}

/// A lost PostgreSQL connection, as a 503 the client may retry.
fn unavailable(e: DbError) -> Error {
    Error::Unavailable(format!("The state store cannot be reached ({e}). Retry later."))
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the configured database".to_string(),
    }
}

/// The checks of [`check_existing`] for a PostgreSQL store: hearth's (or empty), not
/// from a newer hearth.
fn check_existing_pg(conn: &mut PgConn, url: &str) -> Result<()> {
    let c = Connection::pg(conn);
    let refuse = |why: String| {
        Error::Internal(format!(
            "the PostgreSQL store at {} {why}; hearthd refuses to start and has changed nothing in it",
            redact(url)
        ))
    };
    let count = |sql: &str| -> Result<i64> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
    let tables = count("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")?;
    let ours = count(
        "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'",
    )?;
    if ours == 0 {
        return match tables {
            0 => Ok(()),
            _ => Err(refuse(format!("holds {tables} tables but no schema_migrations: it is not a hearth store"))),
        };
    }
    let version = count("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?;
    let known = migrations::count() as i64;
    if version > known {
        return Err(refuse(format!(
            "has schema version {version}, written by a newer hearth; this hearthd knows versions up to {known}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a refused open must leave as it was: each file of the store directory,
    /// its bytes, mode and modification time.
    fn snapshot_dir(dir: &Path) -> Vec<(String, Vec<u8>, u32, std::time::SystemTime)> {
        use std::os::unix::fs::PermissionsExt;
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap(), m.permissions().mode(), m.modified().unwrap())
            })
            .collect();
        out.sort();
        out
    }

    fn refused(dir: &Path) -> String {
        let before = snapshot_dir(dir);
        let err = match Store::open(dir, 1) {
            Ok(_) => panic!("the store in {} was opened", dir.display()),
            Err(e) => e.to_string(),
        };
        let after = snapshot_dir(dir);
        let names = |v: &[(String, Vec<u8>, u32, std::time::SystemTime)]| {
            v.iter().map(|(n, b, m, t)| format!("{n} {} bytes mode {m:o} {t:?}", b.len())).collect::<Vec<_>>()
        };
        assert_eq!(names(&after), names(&before), "a refused store is left as it was");
        assert!(after == before, "a refused store's bytes are left as they were");
        assert!(err.contains("refuses to start and has changed nothing"), "{err}");
        err
    }

    #[test]
    fn a_store_from_a_newer_hearth_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), 1).unwrap());
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let next = migrations::count() as i64 + 1;
        conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'later')", [next]).unwrap();
        drop(conn);
        let err = refused(dir.path());
        assert!(err.contains(&format!("schema version {next}")) && err.contains("newer hearth"), "{err}");
    }

    #[test]
    fn a_damaged_or_foreign_store_is_refused_untouched() {
        // not a database at all
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        let err = refused(dir.path());
        assert!(err.contains("not a sound SQLite database"), "{err}");
        // another program's database
        let dir = tempfile::tempdir().unwrap();
        rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
        let err = refused(dir.path());
        assert!(err.contains("not a hearth store"), "{err}");
        // a hearth store with a page overwritten (an index's, past the header)
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        drop(s);
        let path = dir.path().join(DB_FILE);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
        let (page_size, pages): (i64, i64) = (
            conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap(),
            conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap(),
        );
        drop(conn);
        assert!(pages > 4, "{pages} pages");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = (page_size * (pages / 2)) as usize;
        let page_size = page_size as u64;
        bytes[at..at + page_size as usize].fill(0xa5);
        std::fs::write(&path, &bytes).unwrap();
        let err = refused(dir.path());
        assert!(err.contains("damaged") || err.contains("not a sound"), "{err}");
    }

    #[test]
    fn an_empty_file_is_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), b"").unwrap();
        Store::open(dir.path(), 1).unwrap();
    }

    #[test]
    fn reopen_keeps_state_and_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 2).unwrap();
            s.write(|tx| {
                tx.execute("INSERT INTO quotas (project_id, resource, hard_limit) VALUES ('p', 'volumes', 3)", [])?;
                Ok(())
            })
            .unwrap();
        }
        let s = Store::open(dir.path(), 2).unwrap();
        let n: i64 = s
            .read(|tx| Ok(tx.query_row("SELECT hard_limit FROM quotas WHERE project_id='p'", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 3);
        let v: i64 =
            s.read(|tx| Ok(tx.query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))?)).unwrap();
        assert_eq!(v as usize, migrations::count());
    }

    #[test]
    fn failed_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 1).unwrap();
        let r: Result<()> = s.write(|tx| {
            tx.execute("INSERT INTO quotas (project_id, resource, hard_limit) VALUES ('p', 'volumes', 3)", [])?;
            Err(Error::Invalid("no".into()))
        });
        assert!(matches!(r, Err(Error::Invalid(_))));
        let n: i64 = s.read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM quotas", [], |r| r.get(0))?)).unwrap();
        assert_eq!(n, 0);
    }
}
