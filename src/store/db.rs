//! The store's database seam: one connection type over SQLite and PostgreSQL.
//!
//! The store's SQL is written once, in the dialect the two share, with SQLite's
//! numbered placeholders (`?1`). [`Connection`] runs it on either: on SQLite as it
//! is (through rusqlite), on PostgreSQL translated once per statement and cached
//! ([`pg_sql`]: placeholders become `$1`, `INTEGER` becomes `BIGINT` so that both
//! hold 64-bit integers, `LIKE` becomes `ILIKE` as SQLite's is case-insensitive,
//! `LIMIT -1` becomes `LIMIT ALL`, and the column `binary`, a reserved word there, is
//! quoted). Values cross it as [`Value`]s, converted to the column's type the way
//! SQLite's type affinity would, so that the same statement and the same Rust types
//! work on both.
//!
//! The API mirrors the part of rusqlite's that the store uses (`execute`,
//! `query_row`, `prepare_cached`, `query_map`, `query`, `params!`, `optional`), so
//! that code written against one reads the same against the other.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type};

/// A value bound to or read from a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (booleans are 0 and 1).
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// A value read from a row, borrowed where the driver allows.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

/// The store's database errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A query that must return a row returned none.
    #[error("the query returned no rows")]
    NoRows,
    /// A stored value of the wrong type or form.
    #[error("{0}")]
    Conversion(String),
    /// SQLite's error.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Another hearthd with the same `host` uses the PostgreSQL store (see
    /// [`PgConn::take_node_lock`]).
    #[error("{0}")]
    InUse(String),
    /// PostgreSQL's error (or the connection's).
    #[error("{}", pg_error_text(.0))]
    Postgres(#[from] postgres::Error),
}

/// PostgreSQL's error with its server message, code and detail when it has them.
fn pg_error_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        // The driver's own text names the kind only ("error performing TLS
        // handshake"); the causes say what went wrong.
        None => {
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cause = c.source();
            }
            s
        }
    }
}

impl DbError {
    /// Whether the database's filesystem is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }

    /// Whether the connection to the server was lost or refused, or the server is
    /// not (or no longer) the primary: worth a new connection and another try.
    pub fn is_connection(&self) -> bool {
        use postgres::error::SqlState;
        match self {
            DbError::Postgres(e) => {
                e.is_closed()
                    || e.as_db_error().is_none() && e.code().is_none()
                    || e.code().is_some_and(|c| {
                        c.code().starts_with("08")
                            || *c == SqlState::READ_ONLY_SQL_TRANSACTION
                            || *c == SqlState::ADMIN_SHUTDOWN
                            || *c == SqlState::CRASH_SHUTDOWN
                            || *c == SqlState::CANNOT_CONNECT_NOW
                    })
            }
            _ => false,
        }
    }
}

/// The result of database calls.
pub type DbResult<T> = std::result::Result<T, DbError>;

/// A value that parses, as a row error when it does not.
pub fn conversion(what: &str, value: &str) -> DbError {
    DbError::Conversion(format!("invalid {what} in store: {value:?}"))
}

/// A Rust value bound as a parameter.
pub trait ToSql {
    /// The value as the store binds it.
    fn to_value(&self) -> Value;
}

impl ToSql for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl ToSql for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToSql for bool {
    fn to_value(&self) -> Value {
        Value::Integer(i64::from(*self))
    }
}
impl ToSql for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
macro_rules! int_to_sql {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value {
                // Values past i64::MAX are stored as its largest (a size in bytes of
                // a u64 never reaches it).
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_sql!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

/// A Rust value read from a column.
pub trait FromSql: Sized {
    /// The value of a column, or why it is not one of these.
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self>;
}

fn wrong_type(want: &str, v: ValueRef<'_>) -> DbError {
    DbError::Conversion(format!("a stored value is not {want}: {v:?}"))
}

impl FromSql for Value {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(t.to_string()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}
impl FromSql for String {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        match v {
            ValueRef::Text(t) => Ok(t.to_string()),
            _ => Err(wrong_type("text", v)),
        }
    }
}
impl FromSql for i64 {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        match v {
            ValueRef::Integer(i) => Ok(i),
            _ => Err(wrong_type("an integer", v)),
        }
    }
}
macro_rules! int_from_sql {
    ($($t:ty),*) => {$(
        impl FromSql for $t {
            fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
                let i = <i64 as FromSql>::from_sql(v)?;
                <$t>::try_from(i).map_err(|_| DbError::Conversion(format!("a stored integer is out of range: {i}")))
            }
        }
    )*};
}
int_from_sql!(i32, u32, u64, usize);
impl FromSql for bool {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        Ok(<i64 as FromSql>::from_sql(v)? != 0)
    }
}
impl FromSql for f64 {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        match v {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            _ => Err(wrong_type("a number", v)),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        match v {
            ValueRef::Blob(b) => Ok(b.to_vec()),
            ValueRef::Text(t) => Ok(t.as_bytes().to_vec()),
            _ => Err(wrong_type("bytes", v)),
        }
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(v: ValueRef<'_>) -> DbResult<Self> {
        match v {
            ValueRef::Null => Ok(None),
            v => T::from_sql(v).map(Some),
        }
    }
}

/// Parameters of a statement.
pub trait Params {
    /// The values, in placeholder order.
    fn values(self) -> Vec<Value>;
}

impl Params for [&dyn ToSql; 0] {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}
impl Params for &[&dyn ToSql] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl Params for Vec<Value> {
    fn values(self) -> Vec<Value> {
        self
    }
}
macro_rules! array_params {
    ($($n:literal),*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
        impl<T: ToSql> Params for &[T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
array_params!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);

/// Parameters from an iterator ([`params_from_iter`]).
pub struct ParamsFromIter<I>(I);

impl<I> Params for ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    fn values(self) -> Vec<Value> {
        self.0.into_iter().map(|v| v.to_value()).collect()
    }
}

/// The values of an iterator as a statement's parameters.
pub fn params_from_iter<I>(iter: I) -> ParamsFromIter<I>
where
    I: IntoIterator,
    I::Item: ToSql,
{
    ParamsFromIter(iter)
}

/// A statement's parameters of several types: `params![a, b, c]`.
#[macro_export]
macro_rules! db_params {
    () => { &[] as &[&dyn $crate::store::db::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql] };
}
pub use crate::db_params as params;

/// `optional()` on a single-row result: no row is `None`.
pub trait OptionalExtension<T> {
    /// The row's value, `None` when there was no row.
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> OptionalExtension<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A column index.
pub trait RowIndex {
    /// The index.
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result.
pub enum Row<'a> {
    /// SQLite's row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// PostgreSQL's row.
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// The value of column `i`.
    pub fn get<I: RowIndex, T: FromSql>(&self, i: I) -> DbResult<T> {
        let i = i.index();
        match self {
            Row::Sqlite(r) => {
                let v = r.get_ref(i)?;
                T::from_sql(match v {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(i) => ValueRef::Integer(i),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(t) => ValueRef::Text(
                        std::str::from_utf8(t).map_err(|e| DbError::Conversion(format!("stored text: {e}")))?,
                    ),
                    rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
                })
            }
            Row::Pg(r) => {
                let v: PgValue = r.try_get(i)?;
                T::from_sql(v.as_ref())
            }
        }
    }
}

/// A PostgreSQL column read as what SQLite would hold.
struct PgValue(Value);

impl PgValue {
    fn as_ref(&self) -> ValueRef<'_> {
        match &self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl<'a> PgFromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(PgValue(match *ty {
            Type::INT8 => Value::Integer(<i64 as PgFromSql>::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(<i32 as PgFromSql>::from_sql(ty, raw)?.into()),
            Type::INT2 => Value::Integer(<i16 as PgFromSql>::from_sql(ty, raw)?.into()),
            Type::BOOL => Value::Integer(<bool as PgFromSql>::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(<f64 as PgFromSql>::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(<f32 as PgFromSql>::from_sql(ty, raw)?.into()),
            Type::NUMERIC => numeric(raw)?,
            Type::BYTEA => Value::Blob(raw.to_vec()),
            _ => Value::Text(<&str as PgFromSql>::from_sql(&Type::TEXT, raw)?.to_string()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `NUMERIC` (what PostgreSQL's `SUM` of integers gives) as an integer when it is
/// one, else a double. Its binary form: digit count, weight, sign, scale (i16 each),
/// then base-10000 digits.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        raw.get(i * 2..i * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "short NUMERIC".into())
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    let mut int: Option<i128> = Some(0);
    for k in 0..ndigits.max(0) as usize {
        let d = word(4 + k)?;
        let power = i32::from(weight) - k as i32;
        value += f64::from(d) * 10000f64.powi(power);
        int = match (int, power >= 0) {
            (Some(acc), true) => 10000i128
                .checked_pow(power as u32)
                .and_then(|p| i128::from(d).checked_mul(p))
                .and_then(|v| acc.checked_add(v)),
            (acc, false) if d == 0 => acc,
            _ => None,
        };
    }
    let negative = sign == 0x4000;
    Ok(match int.and_then(|i| i64::try_from(if negative { -i } else { i }).ok()) {
        Some(i) => Value::Integer(i),
        None => Value::Real(if negative { -value } else { value }),
    })
}

impl PgToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let text = |s: &str, out: &mut bytes::BytesMut| -> Result<IsNull, BoxError> {
            match *ty {
                Type::INT8 => s.trim().parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => s.trim().parse::<i32>()?.to_sql(ty, out),
                Type::INT2 => s.trim().parse::<i16>()?.to_sql(ty, out),
                Type::FLOAT8 => s.trim().parse::<f64>()?.to_sql(ty, out),
                Type::BOOL => (s != "0" && !s.is_empty()).to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => s.to_sql(&Type::TEXT, out),
            }
        };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::NUMERIC => text(&i.to_string(), out),
                _ => text(&i.to_string(), out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => text(&f.to_string(), out),
            },
            Value::Text(s) => text(s, out),
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => text(std::str::from_utf8(b)?, out),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef as R};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => R::Null,
            Value::Integer(i) => R::Integer(*i),
            Value::Real(f) => R::Real(*f),
            Value::Text(t) => R::Text(t.as_bytes()),
            Value::Blob(b) => R::Blob(b),
        }))
    }
}

/// The first key of the advisory lock each node holds on its PostgreSQL store, the
/// second being its `host` hashed ([`PgConn::take_node_lock`]).
pub const NODE_LOCK_SPACE: i32 = 0x6865_6172;

/// A PostgreSQL connection with its prepared statements.
pub struct PgConn {
    client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    /// Connect to `target`.
    pub fn connect(target: &super::pg_target::PgTarget) -> DbResult<PgConn> {
        let mut client = target.connect()?;
        // Notices (a table that exists already) are not worth a log line.
        client.batch_execute("SET client_min_messages = warning")?;
        Ok(PgConn { client, statements: HashMap::new() })
    }

    /// Take node `host`'s lock on the store (a session lock, let go when the
    /// connection ends): the nodes of a fleet share one database, each under its own
    /// `host` and acting only on its own pools (`host@backend#pool`), so two processes
    /// with the same `host` would both reconcile, export and delete on the same disks.
    /// The second one is refused.
    pub fn take_node_lock(&mut self, host: &str) -> DbResult<()> {
        const HOLDERS: &str = "SELECT a.pid, COALESCE(a.application_name, ''),
                    COALESCE(host(a.client_addr), 'local') || ' (pid ' || a.pid || ')'
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                    SELECT oid FROM pg_database WHERE datname = current_database())
                AND l.objsubid = 2 AND l.classid = $1::int::oid AND l.objid = hashtext($2)::oid";
        for attempt in 0..2 {
            let got: bool = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1::int, hashtext($2))", &[&NODE_LOCK_SPACE, &host])?
                .get(0);
            if got {
                return Ok(());
            }
            let me: String = self.client.query_one("SELECT current_setting('application_name')", &[])?.get(0);
            let holders: Vec<(i32, String, String)> = self
                .client
                .query(HOLDERS, &[&NODE_LOCK_SPACE, &host])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            // A session of this very process that it lost (a network blip) may still
            // hold it: that one is ended, and the lock taken again.
            let own: Vec<i32> = holders.iter().filter(|(_, app, _)| *app == me).map(|(pid, _, _)| *pid).collect();
            if attempt == 0 && !own.is_empty() {
                for pid in own {
                    log::warn!(
                        "store: ending a lost session of this hearthd (server pid {pid}) that holds the node lock"
                    );
                    self.client.execute("SELECT pg_terminate_backend($1)", &[&pid])?;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            let others: Vec<String> = holders.into_iter().map(|(_, _, who)| who).collect();
            return Err(DbError::InUse(format!(
                "another hearthd with host {host:?} uses this PostgreSQL store (its connection from {}): \
                 each node of a fleet needs its own `host`",
                if others.is_empty() { "an unknown client".to_string() } else { others.join(", ") }
            )));
        }
        Err(DbError::InUse("the node lock stayed held by a lost session of this hearthd".into()))
    }

    /// Listen on `channels` (names of letters and `_`): [`PgConn::notifications`]
    /// then returns what `pg_notify` sends there ([`Connection::notify`]).
    pub fn listen(&mut self, channels: &[&str]) -> DbResult<()> {
        for c in channels {
            debug_assert!(c.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            self.client.batch_execute(&format!("LISTEN {c}"))?;
        }
        Ok(())
    }

    /// The notifications that arrive within `wait` (those already received at once):
    /// each one's channel and payload.
    pub fn notifications(&mut self, wait: std::time::Duration) -> DbResult<Vec<(String, String)>> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut n = self.client.notifications();
        let Some(first) = n.timeout_iter(wait).next()? else { return Ok(Vec::new()) };
        let mut got = vec![first];
        got.extend(n.iter().collect::<Vec<_>>()?);
        Ok(got.iter().map(|m| (m.channel().to_string(), m.payload().to_string())).collect())
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn prepare(&mut self, sql: &str) -> DbResult<postgres::Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&pg_sql(sql))?;
        if self.statements.len() >= 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Run statements without parameters (translated).
    pub fn batch(&mut self, sql: &str) -> DbResult<()> {
        Ok(self.client.batch_execute(&pg_sql(sql))?)
    }
}

/// A connection to the store's database, inside a transaction the store opened.
pub enum Connection<'c> {
    /// SQLite.
    Sqlite(&'c rusqlite::Connection),
    /// PostgreSQL.
    Pg(RefCell<&'c mut PgConn>),
}

/// The values of `params` as PostgreSQL parameters.
fn pg_args(values: &[Value]) -> Vec<&(dyn PgToSql + Sync)> {
    values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect()
}

impl<'c> Connection<'c> {
    /// A SQLite connection.
    pub fn sqlite(conn: &'c rusqlite::Connection) -> Connection<'c> {
        Connection::Sqlite(conn)
    }

    /// A PostgreSQL connection.
    pub fn pg(conn: &'c mut PgConn) -> Connection<'c> {
        Connection::Pg(RefCell::new(conn))
    }

    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Connection::Pg(_))
    }

    /// Send `payload` to PostgreSQL's listeners on `channel` when the transaction
    /// commits ([`PgConn::listen`]); nothing on SQLite, which has one node.
    pub fn notify(&self, channel: &str, payload: &str) -> DbResult<()> {
        if self.is_postgres() {
            self.query_row("SELECT pg_notify(?1, ?2)", params![channel, payload], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Run one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> DbResult<usize> {
        let values = params.values();
        match self {
            Connection::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(values.iter()))?),
            Connection::Pg(c) => {
                let mut c = c.borrow_mut();
                let st = c.prepare(sql)?;
                Ok(c.client.execute(&st, &pg_args(&values))? as usize)
            }
        }
    }

    /// Run statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> DbResult<()> {
        match self {
            Connection::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Connection::Pg(c) => c.borrow_mut().batch(sql),
        }
    }

    /// The first row of a query, through `f`; [`DbError::NoRows`] when there is none.
    pub fn query_row<T>(&self, sql: &str, params: impl Params, f: impl FnOnce(&Row<'_>) -> DbResult<T>) -> DbResult<T> {
        let values = params.values();
        match self {
            Connection::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(DbError::NoRows),
                }
            }
            Connection::Pg(c) => {
                let rows = {
                    let mut c = c.borrow_mut();
                    let st = c.prepare(sql)?;
                    c.client.query(&st, &pg_args(&values))?
                };
                match rows.first() {
                    Some(r) => f(&Row::Pg(r)),
                    None => Err(DbError::NoRows),
                }
            }
        }
    }

    /// A statement to run (prepared once per connection and kept).
    pub fn prepare_cached(&self, sql: &str) -> DbResult<Statement<'_, 'c>> {
        match self {
            Connection::Sqlite(c) => Ok(Statement::Sqlite(c.prepare_cached(sql)?)),
            Connection::Pg(_) => Ok(Statement::Pg { conn: self, sql: sql.to_string() }),
        }
    }

    /// A statement to run; as [`Connection::prepare_cached`].
    pub fn prepare(&self, sql: &str) -> DbResult<Statement<'_, 'c>> {
        self.prepare_cached(sql)
    }

    fn pg_query(&self, sql: &str, values: &[Value]) -> DbResult<Vec<postgres::Row>> {
        match self {
            Connection::Pg(c) => {
                let mut c = c.borrow_mut();
                let st = c.prepare(sql)?;
                Ok(c.client.query(&st, &pg_args(values))?)
            }
            Connection::Sqlite(_) => unreachable!("pg_query on SQLite"),
        }
    }
}

/// A prepared statement.
pub enum Statement<'a, 'c> {
    /// SQLite's cached statement.
    Sqlite(rusqlite::CachedStatement<'a>),
    /// A PostgreSQL statement: prepared (and cached) by its connection when run.
    Pg {
        /// The connection.
        conn: &'a Connection<'c>,
        /// The statement as written.
        sql: String,
    },
}

impl Statement<'_, '_> {
    /// Run it; the number of rows changed.
    pub fn execute(&mut self, params: impl Params) -> DbResult<usize> {
        match self {
            Statement::Sqlite(st) => Ok(st.execute(rusqlite::params_from_iter(params.values().iter()))?),
            Statement::Pg { conn, sql } => conn.execute(sql, params),
        }
    }

    /// Every row, each through `f`.
    pub fn query_map<T, F>(&mut self, params: impl Params, mut f: F) -> DbResult<std::vec::IntoIter<DbResult<T>>>
    where
        F: FnMut(&Row<'_>) -> DbResult<T>,
    {
        let values = params.values();
        let out: Vec<DbResult<T>> = match self {
            Statement::Sqlite(st) => {
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r)));
                }
                out
            }
            Statement::Pg { conn, sql } => conn.pg_query(sql, &values)?.iter().map(|r| f(&Row::Pg(r))).collect(),
        };
        Ok(out.into_iter())
    }

    /// The first row through `f`; [`DbError::NoRows`] when there is none.
    pub fn query_row<T>(&mut self, params: impl Params, f: impl FnOnce(&Row<'_>) -> DbResult<T>) -> DbResult<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(DbError::NoRows),
        }
    }

    /// The rows, to step through with [`Rows::next`].
    pub fn query(&mut self, params: impl Params) -> DbResult<Rows<'_>> {
        let values = params.values();
        match self {
            Statement::Sqlite(st) => Ok(Rows::Sqlite(st.query(rusqlite::params_from_iter(values.iter()))?)),
            Statement::Pg { conn, sql } => Ok(Rows::Pg(conn.pg_query(sql, &values)?, 0)),
        }
    }
}

/// The rows of a query.
pub enum Rows<'a> {
    /// SQLite's, read as stepped.
    Sqlite(rusqlite::Rows<'a>),
    /// PostgreSQL's, all read, and the next one's index.
    Pg(Vec<postgres::Row>, usize),
}

impl Rows<'_> {
    /// The next row, `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> DbResult<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Rows::Pg(rows, i) => {
                *i += 1;
                Ok(rows.get(*i - 1).map(Row::Pg))
            }
        }
    }
}

/// `sql`, written for SQLite, as PostgreSQL takes it (see the module's doc).
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut bare = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                // A literal or quoted name, copied as it is ('' and "" escape).
                out.push(c);
                i += 1;
                while i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                    if chars[i - 1] == c {
                        if chars.get(i) == Some(&c) {
                            out.push(c);
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            '?' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                out.push('$');
                if i == start {
                    bare += 1;
                    out.push_str(&bare.to_string());
                } else {
                    out.extend(&chars[start..i]);
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let prev = if start > 0 { chars[start - 1] } else { ' ' };
                if prev == '.' || prev == '$' {
                    // a qualified column name: only `binary` needs quoting
                    if word.eq_ignore_ascii_case("binary") {
                        out.push_str("\"binary\"");
                    } else {
                        out.push_str(&word);
                    }
                    continue;
                }
                match word.to_ascii_uppercase().as_str() {
                    "INTEGER" => out.push_str("BIGINT"),
                    "BLOB" => out.push_str("BYTEA"),
                    "REAL" => out.push_str("DOUBLE PRECISION"),
                    "LIKE" => out.push_str("ILIKE"),
                    "BINARY" => out.push_str("\"binary\""),
                    "LIMIT" => {
                        out.push_str(&word);
                        let mut j = i;
                        while j < chars.len() && chars[j].is_whitespace() {
                            j += 1;
                        }
                        if chars.get(j) == Some(&'-') && chars.get(j + 1) == Some(&'1') {
                            let end = j + 2;
                            if !chars.get(end).is_some_and(|c| c.is_ascii_digit()) {
                                out.push_str(" ALL");
                                i = end;
                            }
                        }
                    }
                    _ => out.push_str(&word),
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_translated_for_postgres() {
        assert_eq!(
            pg_sql("SELECT a.binary, x FROM t WHERE n LIKE ?1 ESCAPE '\\' AND m = ?12 LIMIT -1 OFFSET 0"),
            "SELECT a.\"binary\", x FROM t WHERE n ILIKE $1 ESCAPE '\\' AND m = $12 LIMIT ALL OFFSET 0"
        );
        assert_eq!(
            pg_sql("CREATE TABLE t (n INTEGER, b BLOB, binary TEXT)"),
            "CREATE TABLE t (n BIGINT, b BYTEA, \"binary\" TEXT)"
        );
        assert_eq!(pg_sql("SELECT 'it''s ?1 LIKE', ? , ?"), "SELECT 'it''s ?1 LIKE', $1 , $2");
        assert_eq!(pg_sql("SELECT x LIMIT -10"), "SELECT x LIMIT -10");
        assert_eq!(pg_sql("SELECT integer_col, likes FROM t"), "SELECT integer_col, likes FROM t");
    }

    #[test]
    fn numerics_decode() {
        let enc = |words: &[i16]| words.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
        // 123456789 = 1 2345 6789 (weight 2)
        assert_eq!(numeric(&enc(&[3, 2, 0, 0, 1, 2345, 6789])).unwrap(), Value::Integer(123_456_789));
        assert_eq!(numeric(&enc(&[1, 0, 0x4000u16 as i16, 0, 42])).unwrap(), Value::Integer(-42));
        assert_eq!(numeric(&enc(&[0, 0, 0, 0])).unwrap(), Value::Integer(0));
        assert_eq!(numeric(&enc(&[2, 0, 0, 1, 1, 5000])).unwrap(), Value::Real(1.5));
        assert!(numeric(&[0, 1]).is_err());
    }
}
