//! The store's one writer, with group commit.
//!
//! Each [`Writer::write`] runs its closure in a savepoint of a `BEGIN IMMEDIATE`
//! transaction on the single write connection. When other writers are waiting by the
//! time it is done, it hands the open transaction on instead of committing; the last
//! writer of such a batch commits it, so one `fsync` makes the whole batch durable.
//! A writer whose closure failed rolled back its own savepoint only and returns at
//! once; the others return when their batch is committed. When the commit fails,
//! nothing of the batch is applied, and each of its closures runs again in a new
//! batch (a few times, then the commit's error is returned): a closure reads what it
//! changes, so it may run more than once. Every closure runs on its caller's thread,
//! so it may borrow what it likes.
//!
//! On PostgreSQL the transaction begins by taking the store's advisory write lock
//! ([`super::migrations::PG_WRITE_LOCK`]), so that the batches of all nodes are
//! applied one at a time. A lost connection (a server restarted, a primary failed
//! over to its replica) fails the batch, which is written again on a new connection
//! (the URL's hosts are tried in turn, and `target_session_attrs=read-write` finds
//! the new primary) for up to [`RECONNECT_FOR`].
//!
//! A connection lost while a batch commits leaves its fate unknown: the server may
//! have applied the commit and lost only its answer. So a PostgreSQL batch records,
//! with its commit, a token (this writer's id and the batch's number) in
//! `write_tokens`; the writer then connects again, waits for the advisory write lock
//! (the lost transaction has ended once it is free) and reads its token: there, the
//! batch was applied and its writers are answered as if the answer had come; not
//! there, nothing of it was, and it is written again. Without that check a write that
//! was applied would run again (a second volume, or an error for the first one's id).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::db::{Connection, DbError, OptionalExtension, PgConn};
use crate::error::{Error, Result};

/// Transactions a batch takes at most, so that its first writer is not kept waiting
/// behind an endless stream.
const MAX_BATCH: usize = 64;

/// How many times a write is tried when its batch's commit fails.
pub const COMMIT_ATTEMPTS: u32 = 3;

/// How long writes are tried again on new connections after a PostgreSQL
/// connection was lost (a failover takes seconds).
pub const RECONNECT_FOR: Duration = Duration::from_secs(60);

/// A commit the fault plan fails (test builds; see [`crate::faults`]): as an I/O
/// error of SQLite's, so the batch is rolled back as a real one would be.
fn injected_commit_fault() -> std::result::Result<(), DbError> {
    crate::faults::act(None, "store.commit").map_err(|e| {
        DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
            Some(e.to_string()),
        ))
    })
}

/// Why a batch's commit failed, for each of its writers.
#[derive(Clone, Debug)]
struct Failed {
    why: String,
    disk_full: bool,
    connection: bool,
    /// The connection was lost while committing and the store could not be asked
    /// since whether the batch was applied: it must not be written again.
    unknown: bool,
}

impl Failed {
    fn of(e: &DbError) -> Failed {
        Failed { why: e.to_string(), disk_full: e.is_disk_full(), connection: e.is_connection(), unknown: false }
    }

    /// Whether the filesystem was full (`SQLITE_FULL`).
    fn is_disk_full(&self) -> bool {
        self.disk_full
    }

    /// The error each writer of the batch returns: a full filesystem stays a store
    /// error that says so (see [`Error::is_disk_full`]).
    fn error(&self) -> Error {
        if self.disk_full {
            return Error::Store(DbError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some(format!("committing: {}", self.why)),
            )));
        }
        if self.unknown {
            return Error::Unavailable(format!(
                "The state store could not be reached while the request was committed ({}): whether it was kept \
                 is unknown. Look before retrying.",
                self.why
            ));
        }
        if self.connection {
            return Error::Unavailable(format!(
                "The state store cannot be reached ({}); nothing of the request was kept. Retry later.",
                self.why
            ));
        }
        Error::Internal(format!("committing to the store failed: {}", self.why))
    }
}

/// The write connection.
pub enum WriteConn {
    /// SQLite's.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL's: its settings, the connection (`None` when lost, made again
    /// before the next batch) and the node's `host` (whose lock it holds).
    Pg(Box<(super::pg_target::PgTarget, Option<PgConn>, String)>),
}

/// Begin a transaction on the PostgreSQL write connection, holding the store's
/// advisory write lock; the connection is made again first when it was lost (taking
/// node `host`'s lock again). A failed begin leaves no transaction open.
fn pg_begin<'c>(
    config: &super::pg_target::PgTarget,
    conn: &'c mut Option<PgConn>,
    host: &str,
) -> std::result::Result<&'c mut PgConn, DbError> {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        *conn = None;
        let mut fresh = PgConn::connect(config)?;
        fresh.take_node_lock(host)?;
        *conn = Some(fresh);
    }
    let c = conn.as_mut().expect("connected");
    match c.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({})", super::migrations::PG_WRITE_LOCK)) {
        Ok(()) => Ok(c),
        Err(e) => {
            let _ = c.batch("ROLLBACK");
            Err(e)
        }
    }
}

impl WriteConn {
    /// Begin a batch's transaction.
    fn begin(&mut self) -> std::result::Result<(), DbError> {
        match self {
            WriteConn::Sqlite(c) => Ok(c.execute_batch("BEGIN IMMEDIATE")?),
            WriteConn::Pg(pg) => {
                let (config, conn, host) = &mut **pg;
                pg_begin(config, conn, host).map(drop)
            }
        }
    }

    /// The connection as the store's closures use it.
    fn db(&mut self) -> Connection<'_> {
        match self {
            WriteConn::Sqlite(c) => Connection::sqlite(c),
            WriteConn::Pg(pg) => Connection::pg(pg.1.as_mut().expect("a batch's connection is open")),
        }
    }

    /// The statement that ends a batch: on PostgreSQL, the batch's token is recorded
    /// with it (see the module's doc).
    fn commit_sql(&self, writer: &str, batch: u64) -> String {
        match self {
            WriteConn::Sqlite(_) => "COMMIT".into(),
            WriteConn::Pg(_) => format!(
                "INSERT INTO write_tokens (writer, token, updated_at) VALUES ('{writer}', '{batch}', '{now}')
                 ON CONFLICT (writer) DO UPDATE SET token = excluded.token, updated_at = excluded.updated_at;
                 COMMIT",
                now = crate::ids::Timestamp::now()
            ),
        }
    }

    /// After the connection was lost while batch `batch` committed: whether it was
    /// applied. Connects again (for up to [`RECONNECT_FOR`]), waits for the write lock
    /// (held by the lost transaction until it ended) and reads this writer's token.
    fn was_applied(&mut self, writer: &str, batch: u64) -> std::result::Result<bool, DbError> {
        let WriteConn::Pg(pg) = self else { return Ok(false) };
        let (config, conn, host) = &mut **pg;
        let deadline = Instant::now() + RECONNECT_FOR;
        let mut attempt: u64 = 0;
        loop {
            let asked = (|| -> std::result::Result<bool, DbError> {
                let c = pg_begin(config, conn, host)?;
                let token: Option<String> = Connection::pg(c)
                    .query_row("SELECT token FROM write_tokens WHERE writer = ?1", super::db::params![writer], |r| {
                        r.get(0)
                    })
                    .optional()?;
                c.batch("ROLLBACK")?;
                Ok(token.as_deref() == Some(batch.to_string().as_str()))
            })();
            match asked {
                Ok(applied) => return Ok(applied),
                Err(e) => {
                    if let Some(c) = conn.as_mut() {
                        let _ = c.batch("ROLLBACK");
                    }
                    if e.is_connection() || conn.as_ref().is_some_and(|c| c.is_closed()) {
                        *conn = None;
                    }
                    if !e.is_connection() || Instant::now() >= deadline {
                        return Err(e);
                    }
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(250 * attempt.min(8)));
                }
            }
        }
    }

    /// Forget a PostgreSQL connection that failed (made again for the next batch).
    fn drop_if_lost(&mut self, e: &DbError) {
        if let WriteConn::Pg(pg) = self {
            let c = &mut pg.1;
            if e.is_connection() || c.as_ref().is_some_and(|c| c.is_closed()) {
                *c = None;
            }
        }
    }
}

/// Who holds the connection, and how the batches went.
#[derive(Default)]
struct State {
    /// A writer is using the connection.
    busy: bool,
    /// Writers waiting for their turn.
    waiting: usize,
    /// The batch whose transaction is open, and how many closures it holds.
    open: Option<(u64, usize)>,
    /// The next batch's number.
    next: u64,
    /// Every batch up to this one is finished.
    finished: u64,
    /// Batches whose commit failed, with the reason (recent ones only).
    failed: BTreeMap<u64, Failed>,
}

/// The single write connection, shared by group commit.
pub struct Writer {
    conn: Mutex<WriteConn>,
    state: Mutex<State>,
    /// Signalled when the connection is free.
    turn: Condvar,
    /// Signalled when a batch is finished.
    committed: Condvar,
    /// This writer's name in `write_tokens` (one per process).
    id: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A closure's panic is caught before the locks are given back, and rusqlite
    // keeps no half-done state in the connection: a poisoned lock is safe to reuse.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// A writer over `conn` (schema already migrated).
    pub fn new(conn: WriteConn) -> Writer {
        Writer {
            conn: Mutex::new(conn),
            state: Mutex::new(State { next: 1, ..State::default() }),
            turn: Condvar::new(),
            committed: Condvar::new(),
            id: crate::ids::Id::new().to_string(),
        }
    }

    /// Run `f` in its own savepoint of the current batch; returns its value once the
    /// batch is durably committed, or its error (its changes undone, the batch's
    /// others untouched).
    ///
    /// When the batch's commit fails (an I/O error, say), the whole batch was rolled
    /// back and `f` runs again in a new one, up to [`COMMIT_ATTEMPTS`] times: it reads
    /// what is there again, so the retry is as if it came later. Work that already
    /// happened outside the store (a volume made) is not left without its record by
    /// one failed commit. A full filesystem is not retried: it says so at once (see
    /// [`Error::is_disk_full`]).
    pub fn write<T>(&self, mut f: impl FnMut(&Connection<'_>) -> Result<T>) -> Result<T> {
        let mut attempt = 1;
        let started = Instant::now();
        loop {
            match self.write_once(&mut f) {
                Ok(out) => return out,
                Err(failed) if failed.unknown => return Err(failed.error()),
                Err(failed) if failed.connection && started.elapsed() < RECONNECT_FOR => {
                    log::warn!("store: the connection to the store was lost, writing again: {}", failed.why);
                    std::thread::sleep(Duration::from_millis(250 * u64::from(attempt.min(8))));
                    attempt += 1;
                }
                Err(failed) if !failed.is_disk_full() && attempt < COMMIT_ATTEMPTS => {
                    log::warn!(
                        "store: a commit failed (attempt {attempt} of {COMMIT_ATTEMPTS}), writing again: {}",
                        failed.why
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
                    attempt += 1;
                }
                Err(failed) => return Err(failed.error()),
            }
        }
    }

    /// One attempt of [`Writer::write`]: `Err` when the batch's commit failed.
    fn write_once<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T>) -> std::result::Result<Result<T>, Failed> {
        let started = Instant::now();
        let (batch, begin) = {
            let mut st = lock(&self.state);
            st.waiting += 1;
            while st.busy {
                st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            st.waiting -= 1;
            st.busy = true;
            match st.open {
                Some((b, _)) => (b, false),
                None => {
                    let b = st.next;
                    st.next += 1;
                    st.open = Some((b, 0));
                    (b, true)
                }
            }
        };
        let mut guard = lock(&self.conn);
        if begin {
            if let Err(e) = guard.begin() {
                guard.drop_if_lost(&e);
                drop(guard);
                let failed = Failed::of(&e);
                self.finish(batch, Some(failed.clone()));
                if failed.connection {
                    return Err(failed);
                }
                return Ok(Err(e.into()));
            }
        }
        let conn = guard.db();
        let out = match conn.execute_batch("SAVEPOINT hearth_write") {
            Ok(()) => catch_unwind(AssertUnwindSafe(|| f(&conn))),
            Err(e) => Ok(Err(e.into())),
        };
        let kept = matches!(out, Ok(Ok(_)));
        let undo = if kept {
            conn.execute_batch("RELEASE hearth_write")
        } else {
            conn.execute_batch("ROLLBACK TO hearth_write; RELEASE hearth_write")
        };
        let mut st = lock(&self.state);
        let held = st.open.map_or(0, |(_, n)| n) + usize::from(kept);
        st.open = Some((batch, held));
        if undo.is_ok() && st.waiting > 0 && held < MAX_BATCH {
            // Hand the open transaction to the next writer; the batch's last commits.
            st.busy = false;
            drop(guard);
            self.turn.notify_one();
            if !kept {
                drop(st);
                return Ok(Self::unwrap(out));
            }
            while st.finished < batch {
                st = self.committed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(f) = st.failed.get(&batch) {
                return Err(f.clone());
            }
            drop(st);
            return Ok(Self::unwrap(out));
        }
        drop(st);
        let commit_sql = guard.commit_sql(&self.id, batch);
        let conn = guard.db();
        let commit = undo.and_then(|()| injected_commit_fault()).and_then(|()| conn.execute_batch(&commit_sql));
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let failed = match &commit {
            Ok(()) => None,
            Err(e) => {
                guard.drop_if_lost(e);
                match e.is_connection().then(|| guard.was_applied(&self.id, batch)) {
                    None | Some(Ok(false)) => Some(Failed::of(e)),
                    Some(Ok(true)) => {
                        log::warn!(
                            "store: the connection was lost while batch {batch} committed ({e}); it was applied"
                        );
                        None
                    }
                    Some(Err(asking)) => Some(Failed {
                        why: format!("{e}; then, asking whether it was applied: {asking}"),
                        unknown: true,
                        ..Failed::of(e)
                    }),
                }
            }
        };
        drop(guard);
        self.finish(batch, failed.clone());
        log::trace!(
            "store: batch {batch} of {held} write(s) committed in {:.2} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        match failed {
            None => Ok(Self::unwrap(out)),
            Some(f) => Err(f),
        }
    }

    /// Close a batch (committed, or failed with a reason) and free the connection.
    fn finish(&self, batch: u64, failed: Option<Failed>) {
        let mut st = lock(&self.state);
        if let Some(why) = failed {
            st.failed.insert(batch, why);
        }
        // Writers of older batches have long seen their result.
        while st.failed.len() > 64 {
            st.failed.pop_first();
        }
        st.open = None;
        st.finished = batch;
        st.busy = false;
        drop(st);
        self.turn.notify_one();
        self.committed.notify_all();
    }

    /// A closure's result, or its panic carried on.
    fn unwrap<T>(out: std::thread::Result<Result<T>>) -> Result<T> {
        match out {
            Ok(r) => r,
            Err(panic) => resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn writer() -> (tempfile::TempDir, Arc<Writer>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").unwrap();
        (dir, Arc::new(Writer::new(WriteConn::Sqlite(conn))))
    }

    fn count(w: &Writer) -> i64 {
        w.write(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)).unwrap()
    }

    /// Concurrent writers share commits; a failing one undoes only itself; a
    /// panicking one neither blocks the others nor leaves its changes.
    #[test]
    fn batches_keep_each_writers_outcome() {
        let (dir, w) = writer();
        let handles: Vec<_> = (0..400i64)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    w.write(|c| {
                        c.execute("INSERT INTO t (n) VALUES (?1)", [i])?;
                        match i % 10 {
                            3 => Err(Error::Invalid("refused".into())),
                            7 => panic!("writer {i} panics"),
                            _ => Ok(i),
                        }
                    })
                })
            })
            .collect();
        let mut ok = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match (i % 10, h.join()) {
                (3, Ok(Err(Error::Invalid(_)))) | (7, Err(_)) => {}
                (_, Ok(Ok(n))) if n == i as i64 => ok += 1,
                (_, other) => panic!("writer {i}: {other:?}"),
            }
        }
        assert_eq!(ok, 320);
        assert_eq!(count(&w), 320);
        // What was committed is on disk, seen by another connection.
        let other = rusqlite::Connection::open(dir.path().join("w.db")).unwrap();
        let n: i64 = other.query_row("SELECT count(*) FROM t WHERE n % 10 IN (3, 7)", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    /// Writers that queue behind a slow one are committed together.
    #[test]
    fn queued_writers_share_a_commit() {
        let (_dir, w) = writer();
        let slow = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.write(|c| {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(c.execute("INSERT INTO t (n) VALUES (-1)", [])?)
                })
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let queued: Vec<_> = (0..20i64)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || w.write(|c| Ok(c.execute("INSERT INTO t (n) VALUES (?1)", [i])?)))
            })
            .collect();
        slow.join().unwrap().unwrap();
        for h in queued {
            h.join().unwrap().unwrap();
        }
        let batches = lock(&w.state).next - 1;
        assert!(batches < 10, "21 writes took {batches} commits");
        assert_eq!(count(&w), 21);
    }
}
