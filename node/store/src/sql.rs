//! Statements on either backend (`STORE-sqlite-inline`).
//!
//! The store's SQL is one text for both databases (`$N` placeholders, TEXT/BYTEA/BIGINT). On
//! PostgreSQL a [`Query`] runs through sqlx's Any driver; on SQLite it runs on the calling
//! thread through rusqlite, on a connection this process holds, with the statement prepared
//! once per connection and kept. sqlx's SQLite driver runs every connection on a thread of its
//! own and every statement is a channel round trip to it; on the message path those task
//! switches were most of the node's CPU (spec-notes/performance.md). SQLite in WAL mode with
//! `synchronous = NORMAL` does not wait for the disk at commit, so a statement on the caller's
//! thread costs microseconds; the one writer connection is taken in turn by the process's
//! writers (`STORE-sqlite-writer-turn`), readers have connections of their own.
//!
//! Errors are sqlx's on both backends (a unique violation on SQLite is an
//! [`sqlx::error::DatabaseError`] of kind `UniqueViolation`, as sqlx's own driver reports it), so
//! the callers handle one error type.

use crate::db::{Db, ReadTx, Store, Turn, WriteTx};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::Any;
use sqlx::any::AnyRow;
use std::borrow::Cow;
use std::sync::Arc;

/// A value bound to a statement; a NULL keeps its type (PostgreSQL needs it).
#[derive(Debug)]
pub(crate) enum Val<'q> {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<Cow<'q, str>>),
    Blob(Option<Cow<'q, [u8]>>),
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Val::Int(Some(v)) => ValueRef::Integer(*v),
            Val::Bool(Some(b)) => ValueRef::Integer(i64::from(*b)),
            Val::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Val::Blob(Some(b)) => ValueRef::Blob(b),
            Val::Int(None) | Val::Bool(None) | Val::Text(None) | Val::Blob(None) => ValueRef::Null,
        }))
    }
}

/// What can be bound to a statement.
pub(crate) trait Bind<'q> {
    /// The value.
    fn val(self) -> Val<'q>;
    /// A NULL of this type.
    fn null() -> Val<'q>;
}

impl<'q> Bind<'q> for i64 {
    fn val(self) -> Val<'q> {
        Val::Int(Some(self))
    }
    fn null() -> Val<'q> {
        Val::Int(None)
    }
}

impl<'q> Bind<'q> for bool {
    fn val(self) -> Val<'q> {
        Val::Bool(Some(self))
    }
    fn null() -> Val<'q> {
        Val::Bool(None)
    }
}

impl<'q> Bind<'q> for &'q str {
    fn val(self) -> Val<'q> {
        Val::Text(Some(Cow::Borrowed(self)))
    }
    fn null() -> Val<'q> {
        Val::Text(None)
    }
}

impl<'q> Bind<'q> for &'q String {
    fn val(self) -> Val<'q> {
        Val::Text(Some(Cow::Borrowed(self.as_str())))
    }
    fn null() -> Val<'q> {
        Val::Text(None)
    }
}

impl<'q> Bind<'q> for String {
    fn val(self) -> Val<'q> {
        Val::Text(Some(Cow::Owned(self)))
    }
    fn null() -> Val<'q> {
        Val::Text(None)
    }
}

impl<'q> Bind<'q> for &'q [u8] {
    fn val(self) -> Val<'q> {
        Val::Blob(Some(Cow::Borrowed(self)))
    }
    fn null() -> Val<'q> {
        Val::Blob(None)
    }
}

impl<'q> Bind<'q> for &'q Vec<u8> {
    fn val(self) -> Val<'q> {
        Val::Blob(Some(Cow::Borrowed(self.as_slice())))
    }
    fn null() -> Val<'q> {
        Val::Blob(None)
    }
}

impl<'q> Bind<'q> for Vec<u8> {
    fn val(self) -> Val<'q> {
        Val::Blob(Some(Cow::Owned(self)))
    }
    fn null() -> Val<'q> {
        Val::Blob(None)
    }
}

impl<'q, T: Bind<'q>> Bind<'q> for Option<T> {
    fn val(self) -> Val<'q> {
        match self {
            Some(v) => v.val(),
            None => T::null(),
        }
    }
    fn null() -> Val<'q> {
        T::null()
    }
}

/// SQL text built at run time from parts the store controls (never from input): the marker
/// that it was looked at, as sqlx's `AssertSqlSafe`.
pub(crate) struct AssertSqlSafe(pub(crate) String);

/// A statement's text.
pub(crate) struct Sql<'q>(Cow<'q, str>);

impl<'q> From<&'q str> for Sql<'q> {
    fn from(s: &'q str) -> Self {
        Self(Cow::Borrowed(s))
    }
}

impl From<AssertSqlSafe> for Sql<'_> {
    fn from(s: AssertSqlSafe) -> Self {
        Self(Cow::Owned(s.0))
    }
}

/// A statement with its values.
pub(crate) struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Val<'q>>,
}

/// A statement (`$1`, `$2` … are bound in order by [`Query::bind`]).
pub(crate) fn query<'q>(sql: impl Into<Sql<'q>>) -> Query<'q> {
    Query {
        sql: sql.into().0,
        args: Vec::new(),
    }
}

/// What a writing statement did.
pub(crate) struct Done(u64);

impl Done {
    /// Rows inserted, updated or deleted.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// Where a statement runs.
pub(crate) enum On<'e> {
    /// Outside any transaction: a read (SQLite: on a reader connection).
    Store(&'e Store),
    /// Inside a write transaction.
    Tx(&'e mut WriteTx),
    /// Inside a read transaction.
    Read(&'e mut ReadTx),
    /// A single writing statement in this process's writer turn.
    Turn(&'e mut Turn),
}

impl<'e> From<&'e Store> for On<'e> {
    fn from(s: &'e Store) -> Self {
        Self::Store(s)
    }
}

impl<'e> From<&'e mut WriteTx> for On<'e> {
    fn from(t: &'e mut WriteTx) -> Self {
        Self::Tx(t)
    }
}

impl<'e> From<&'e mut ReadTx> for On<'e> {
    fn from(t: &'e mut ReadTx) -> Self {
        Self::Read(t)
    }
}

impl<'e> From<&'e mut Turn> for On<'e> {
    fn from(t: &'e mut Turn) -> Self {
        Self::Turn(t)
    }
}

/// A transaction statements can run in, for helpers used in several kinds.
pub(crate) trait Exec {
    /// Where its statements run.
    fn on(&mut self) -> On<'_>;
}

impl Exec for WriteTx {
    fn on(&mut self) -> On<'_> {
        On::Tx(self)
    }
}

impl Exec for ReadTx {
    fn on(&mut self) -> On<'_> {
        On::Read(self)
    }
}

impl<'q> Query<'q> {
    /// Binds the next `$N`.
    pub(crate) fn bind(mut self, v: impl Bind<'q>) -> Self {
        self.args.push(v.val());
        self
    }

    /// Runs a statement for its effect.
    pub(crate) async fn execute<'e>(self, on: impl Into<On<'e>>) -> Result<Done, sqlx::Error> {
        let (n, _) = self.run(on.into(), false).await?;
        Ok(Done(n))
    }

    /// Every row.
    pub(crate) async fn fetch_all<'e>(
        self,
        on: impl Into<On<'e>>,
    ) -> Result<Vec<Row>, sqlx::Error> {
        Ok(self.run(on.into(), true).await?.1)
    }

    /// The first row, which must be there (`RowNotFound` otherwise).
    pub(crate) async fn fetch_one<'e>(self, on: impl Into<On<'e>>) -> Result<Row, sqlx::Error> {
        self.fetch_optional(on)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<'e>(
        self,
        on: impl Into<On<'e>>,
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(self.run(on.into(), true).await?.1.into_iter().next())
    }

    async fn run(self, on: On<'_>, rows: bool) -> Result<(u64, Vec<Row>), sqlx::Error> {
        match on {
            On::Store(s) => match &s.db {
                Db::Pg(pool) => self.pg(pool, rows).await,
                Db::Lite(l) => {
                    s.check_open()?;
                    let mut c = l.reader().await;
                    self.lite(&mut c, rows)
                }
            },
            On::Tx(WriteTx::Lite(t)) => self.lite(t.conn(), rows),
            On::Tx(WriteTx::Pg(t)) => self.pg(&mut **t, rows).await,
            On::Read(ReadTx::Lite(t)) => self.lite(t.conn(), rows),
            On::Read(ReadTx::Pg(t)) => self.pg(&mut **t, rows).await,
            On::Turn(Turn::Lite(c)) => self.lite(c, rows),
            On::Turn(Turn::Pg(pool)) => self.pg(&*pool, rows).await,
        }
    }

    async fn pg<'c, E>(self, e: E, rows: bool) -> Result<(u64, Vec<Row>), sqlx::Error>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        let mut q = sqlx::query::<Any>(sqlx::AssertSqlSafe(self.sql.into_owned()));
        for v in self.args {
            q = match v {
                Val::Int(x) => q.bind(x),
                Val::Bool(x) => q.bind(x),
                Val::Text(x) => q.bind(x.map(Cow::into_owned)),
                Val::Blob(x) => q.bind(x.map(Cow::into_owned)),
            };
        }
        if rows {
            let r = q.fetch_all(e).await?;
            Ok((0, r.into_iter().map(Row::Any).collect()))
        } else {
            Ok((q.execute(e).await?.rows_affected(), Vec::new()))
        }
    }

    /// Runs on an SQLite connection of this process, on this thread.
    fn lite(
        self,
        conn: &mut rusqlite::Connection,
        rows: bool,
    ) -> Result<(u64, Vec<Row>), sqlx::Error> {
        run_lite(conn, &self.sql, &self.args, rows)
    }
}

/// Runs one statement on an SQLite connection: binds `$N` by its number, steps it to the end,
/// copies the rows out when asked for them.
/// Statements SQLite compiled again before running them, by database file, since the
/// process started, with the last such statement (`STORE-sqlite-no-reprepare`). Touched
/// only when it happens.
type Reprepared = (String, u64, String);
static REPREPARES: std::sync::Mutex<Vec<Reprepared>> = std::sync::Mutex::new(Vec::new());

/// How many times a cached statement on the SQLite file `path` (as the store opened it) was
/// compiled again before it ran, in this process, and the last one
/// (`STORE-sqlite-no-reprepare`). SQLite (built with `SQLITE_ENABLE_STAT4`, as
/// libsqlite3-sys bundles it) recompiles a statement whose bound value may change its plan on
/// every run, a bare `LIMIT $n` among them: that cost a parse and a plan per claim of the
/// outbox and per device fetch (5–7% of the message path's CPU). The store's statements give
/// no such place to a bound value (`LIMIT CAST($n AS BIGINT)`), and the count stays 0 unless
/// the file's schema changes under an open store; the store tests check it. Read it through
/// [`crate::Store::sqlite_reprepares`].
pub(crate) fn reprepares_of(path: &str) -> (u64, Option<String>) {
    let m = REPREPARES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    m.iter()
        .find(|(p, _, _)| p == path)
        .map(|(_, n, sql)| (*n, Some(sql.clone())))
        .unwrap_or((0, None))
}

thread_local! {
    /// SQLite virtual-machine steps of the statements this thread ran (`STORE-sqlite-steps`).
    static VM_STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many virtual-machine steps the SQLite statements run on this thread took, since the
/// thread started (`STORE-sqlite-steps`): a measure of a statement's work that does not
/// depend on the machine's speed, so that a test can tell a statement that reads its
/// `LIMIT` rows from one that reads a whole table, without timing anything. A thread-local
/// add per statement; read it through [`crate::Store::sqlite_steps_on_this_thread`] from a
/// single-threaded runtime.
pub(crate) fn vm_steps() -> u64 {
    VM_STEPS.with(std::cell::Cell::get)
}

fn count_reprepares(conn: &rusqlite::Connection, n: u64, sql: &str) {
    let path = conn.path().unwrap_or_default().to_owned();
    let mut m = REPREPARES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match m.iter_mut().find(|(p, _, _)| *p == path) {
        Some((_, k, last)) => {
            *k += n;
            sql.clone_into(last);
        }
        None => m.push((path, n, sql.to_owned())),
    }
}

/// How many statement texts [`param_map`] keeps the mapping of. The store's texts are a
/// few hundred (multi-row inserts add one per row count); past the bound a mapping is worked
/// out again on every run, as before there was a cache.
const PARAM_MAPS: usize = 4096;

/// For each parameter of a statement (SQLite's index `k` at position `k - 1`), the `N` of its
/// `$N` name, so the `N`th value is bound to it (`STORE-sqlite-param-map`). SQLite numbers
/// named parameters in the order they first appear and finds a parameter's name by walking
/// a list, so asking for every name costs O(n²) in the parameters: 2.5% of a catch-up's
/// profile, where inserts carry hundreds of rows. The mapping depends on the text alone,
/// so it is worked out once per text in the process and kept.
fn param_map(st: &rusqlite::CachedStatement<'_>, sql: &str) -> Result<Arc<[usize]>, sqlx::Error> {
    type Maps = std::collections::HashMap<Box<str>, Arc<[usize]>>;
    static MAPS: std::sync::Mutex<Option<Maps>> = std::sync::Mutex::new(None);
    if let Some(m) = MAPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .and_then(|maps| maps.get(sql))
    {
        return Ok(m.clone());
    }
    let map = (1..=st.parameter_count())
        .map(|k| match st.parameter_name(k) {
            Some(name) => name
                .get(1..)
                .and_then(|d| d.parse::<usize>().ok())
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("parameter {name} is not $N in: {sql}"))
                }),
            None => Ok(k),
        })
        .collect::<Result<Arc<[usize]>, _>>()?;
    let mut maps = MAPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let maps = maps.get_or_insert_with(Maps::new);
    if maps.len() < PARAM_MAPS {
        maps.insert(sql.into(), map.clone());
    }
    Ok(map)
}

pub(crate) fn run_lite(
    conn: &mut rusqlite::Connection,
    sql: &str,
    args: &[Val<'_>],
    rows: bool,
) -> Result<(u64, Vec<Row>), sqlx::Error> {
    let mut st = conn.prepare_cached(sql).map_err(lite_err)?;
    let map = param_map(&st, sql)?;
    for (k, &n) in map.iter().enumerate() {
        let v = n.checked_sub(1).and_then(|i| args.get(i)).ok_or_else(|| {
            sqlx::Error::Protocol(format!(
                "no value bound for ${n} ({} bound) in: {sql}",
                args.len()
            ))
        })?;
        st.raw_bind_parameter(k + 1, v).map_err(lite_err)?;
    }
    let mut out = Vec::new();
    if rows {
        let cols: Arc<[String]> = st.column_names().into_iter().map(str::to_owned).collect();
        let width = cols.len();
        let mut rs = st.raw_query();
        while let Some(r) = rs.next().map_err(lite_err)? {
            let mut vals = Vec::with_capacity(width);
            for c in 0..width {
                vals.push(owned(r.get_ref(c).map_err(lite_err)?));
            }
            out.push(Row::Lite(LiteRow {
                cols: cols.clone(),
                vals,
            }));
        }
    } else {
        let mut rs = st.raw_query();
        while rs.next().map_err(lite_err)?.is_some() {}
    }
    let steps = st.reset_status(rusqlite::StatementStatus::VmStep);
    VM_STEPS.with(|c| c.set(c.get().saturating_add(u64::try_from(steps).unwrap_or(0))));
    let again = st.reset_status(rusqlite::StatementStatus::RePrepare);
    if again > 0 {
        count_reprepares(conn, u64::try_from(again).unwrap_or(0), sql);
        tracing::debug!(
            sql,
            "SQLite compiled a cached statement again (STORE-sqlite-no-reprepare)"
        );
    }
    drop(st);
    Ok((conn.changes(), out))
}

/// A value copied out of SQLite (text that is not UTF-8 stays bytes).
fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_owned()),
            Err(_) => Value::Blob(t.to_vec()),
        },
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// A row of either backend.
pub(crate) enum Row {
    Any(AnyRow),
    Lite(LiteRow),
}

/// A row read from SQLite, its values copied out.
pub(crate) struct LiteRow {
    cols: Arc<[String]>,
    vals: Vec<Value>,
}

impl Row {
    /// Column `i` (a position or a name) as a `T`.
    pub(crate) fn try_get<T: Col, I: Idx>(&self, i: I) -> Result<T, sqlx::Error> {
        match self {
            Row::Any(r) => sqlx::Row::try_get(r, i),
            Row::Lite(r) => {
                let k = i.lite(&r.cols)?;
                let v = r.vals.get(k).ok_or(sqlx::Error::ColumnIndexOutOfBounds {
                    index: k,
                    len: r.vals.len(),
                })?;
                T::lite(v).map_err(|e| sqlx::Error::ColumnDecode {
                    index: format!("{i:?}"),
                    source: e.into(),
                })
            }
        }
    }
}

/// A column type both backends decode.
pub(crate) trait Col: Sized + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {
    /// From an SQLite value.
    fn lite(v: &Value) -> Result<Self, String>;
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

impl Col for i64 {
    fn lite(v: &Value) -> Result<Self, String> {
        match v {
            Value::Integer(n) => Ok(*n),
            v => Err(format!("expected an integer, found {}", kind(v))),
        }
    }
}

impl Col for bool {
    fn lite(v: &Value) -> Result<Self, String> {
        match v {
            Value::Integer(n) => Ok(*n != 0),
            v => Err(format!("expected a boolean, found {}", kind(v))),
        }
    }
}

impl Col for String {
    fn lite(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            Value::Blob(b) => {
                String::from_utf8(b.clone()).map_err(|_| "a blob that is not UTF-8".to_owned())
            }
            v => Err(format!("expected text, found {}", kind(v))),
        }
    }
}

impl Col for Vec<u8> {
    fn lite(v: &Value) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            v => Err(format!("expected a blob, found {}", kind(v))),
        }
    }
}

impl<T: Col> Col for Option<T> {
    fn lite(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::lite(v).map(Some),
        }
    }
}

/// A column index: a position or a name.
pub(crate) trait Idx: sqlx::ColumnIndex<AnyRow> + std::fmt::Debug {
    /// Its position in an SQLite row with these columns.
    fn lite(&self, cols: &[String]) -> Result<usize, sqlx::Error>;
}

impl Idx for usize {
    fn lite(&self, cols: &[String]) -> Result<usize, sqlx::Error> {
        if *self < cols.len() {
            Ok(*self)
        } else {
            Err(sqlx::Error::ColumnIndexOutOfBounds {
                index: *self,
                len: cols.len(),
            })
        }
    }
}

impl Idx for &str {
    fn lite(&self, cols: &[String]) -> Result<usize, sqlx::Error> {
        cols.iter()
            .position(|c| c == self)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(self.to_string()))
    }
}

/// An SQLite failure as sqlx reports database errors.
#[derive(Debug)]
pub(crate) struct LiteError {
    message: String,
    extended: i32,
}

impl std::fmt::Display for LiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLite code {})", self.message, self.extended)
    }
}

impl std::error::Error for LiteError {}

impl sqlx::error::DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.extended.to_string()))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        match self.extended {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// A rusqlite error as a sqlx error.
pub(crate) fn lite_err(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => sqlx::Error::Database(Box::new(LiteError {
            message: msg.unwrap_or_else(|| f.to_string()),
            extended: f.extended_code,
        })),
        other => sqlx::Error::Protocol(format!("SQLite: {other}")),
    }
}
