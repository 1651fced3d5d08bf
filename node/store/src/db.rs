//! Opening the database, its backend, and write transactions.

use crate::error::StoreError;
use crate::queue::QueueWaker;
use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A node's database: a cheap handle (clone it freely; all clones share one pool).
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) waker: Arc<QueueWaker>,
    pub(crate) room_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// SQLite's one write lock, taken in this process before SQLite is asked for it
    /// (`STORE-sqlite-writer-turn`): writers queue here in order instead of colliding in
    /// SQLite, whose busy handler sleeps (1, 2, 5, 10 ms …) and polls. `None` on PostgreSQL.
    pub(crate) writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// A write transaction ([`Store::begin_write`]): derefs to the connection, so statements run
/// on `&mut *tx`. On SQLite it holds this process's writer turn until it commits, rolls back
/// or is dropped (the transaction is dropped first, then the turn).
pub(crate) struct WriteTx {
    tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits, then gives the turn back.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back, then gives the turn back.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The SQLite file a node keeps in its data directory.
pub const SQLITE_FILE: &str = "mimi-node.sqlite";

/// How long a SQLite writer waits for the write lock before it fails with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 30_000;
/// Connections to SQLite: one writer at a time (`BEGIN IMMEDIATE`), readers beside it (WAL).
const SQLITE_POOL: u32 = 4;
/// Connections to PostgreSQL per node process.
const POSTGRES_POOL: u32 = 8;

/// A database value (BIGINT) as a count or time; negative values never occur in rows we wrote.
pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A count or time as a database value (BIGINT), saturating.
pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens a database and applies the embedded migrations (`STORE-migrate`).
    ///
    /// `location` is a `postgres://` (or `postgresql://`) URL, `sqlite:<file>`, or a bare
    /// file path; an SQLite file is created if missing, but its directory must exist.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let (url, backend) =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                (location.to_owned(), Backend::Postgres)
            } else {
                (sqlite_url(location)?, Backend::Sqlite)
            };
        let opts = match backend {
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(SQLITE_POOL)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Per connection (`STORE-sqlite-pragmas`): WAL is per file, the rest
                        // per connection.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                        )))
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(POSTGRES_POOL),
        };
        let pool = opts
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            waker: Arc::new(QueueWaker::default()),
            room_bytes: Arc::default(),
            writer: (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(()))),
        })
    }

    /// Opens (creating if needed) the SQLite database [`SQLITE_FILE`] in a node's data
    /// directory, which must exist.
    pub async fn open_in_dir(data_dir: &Path) -> Result<Self, StoreError> {
        let file = data_dir.join(SQLITE_FILE);
        let file = file
            .to_str()
            .ok_or_else(|| StoreError::Location(format!("{} is not UTF-8", file.display())))?;
        Self::open(file).await
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A transaction that will write: `BEGIN IMMEDIATE` on SQLite, so the write lock is taken
    /// at the start and a later upgrade cannot fail with a stale snapshot
    /// (`STORE-room-serial`); a plain `BEGIN` on PostgreSQL, where rows are locked explicitly.
    /// On SQLite the writer turn is taken first (`STORE-sqlite-writer-turn`), before a
    /// connection: writers waiting for their turn hold no connection, so readers go on.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.write_turn().await?;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// The writer turn for a single statement that writes outside a transaction (SQLite;
    /// `None` on PostgreSQL, where rows are locked instead). Hold it while the statement runs.
    /// Waits as long as SQLite's busy timeout at most, then fails as SQLite would ("database
    /// is locked"), so that a writer that waits for itself is an error, not a hang.
    pub(crate) async fn write_turn(
        &self,
    ) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, StoreError> {
        let Some(m) = &self.writer else {
            return Ok(None);
        };
        let wait = Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS));
        match tokio::time::timeout(wait, m.clone().lock_owned()).await {
            Ok(g) => Ok(Some(g)),
            Err(_) => Err(StoreError::Busy(format!(
                "database is locked: no write turn within {} s",
                wait.as_secs()
            ))),
        }
    }

    /// `sql` with ` FOR UPDATE` appended on PostgreSQL (row lock), unchanged on SQLite (the
    /// transaction already holds the database's write lock).
    pub(crate) fn sql_for(&self, sql: &'static str, pg: &'static str) -> &'static str {
        match self.backend {
            Backend::Postgres => pg,
            Backend::Sqlite => sql,
        }
    }
}

/// The `sqlite://` URL sqlx opens for `location` (a bare file path or a `sqlite:` URL), after
/// checking that it can name a database file (`STORE-migrate`: bad locations are clear
/// errors, not driver failures).
fn sqlite_url(location: &str) -> Result<String, StoreError> {
    if let Some((scheme, _)) = location.split_once("://")
        && scheme != "sqlite"
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(StoreError::Location(format!(
            "unsupported database URL scheme {scheme}:// (use postgres://, sqlite: or a file path)"
        )));
    }
    // A `sqlite:` URL is percent-encoded and may carry options (dropped: the store sets its
    // own); a bare path is taken literally, `%`, `?` and `#` included.
    let path = match location.strip_prefix("sqlite:") {
        Some(rest) => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            percent_decode(rest.split('?').next().unwrap_or(""))?
        }
        None => location.to_owned(),
    };
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Location(
            "an SQLite location needs a file name (in-memory databases are not shared between connections)".into(),
        ));
    }
    let file = Path::new(&path);
    if file.is_dir() {
        return Err(StoreError::Location(format!(
            "{path} is a directory, not an SQLite file (open_in_dir takes a data directory)"
        )));
    }
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
    {
        if !dir.exists() {
            return Err(StoreError::Location(format!(
                "the directory {} does not exist",
                dir.display()
            )));
        }
        if !dir.is_dir() {
            return Err(StoreError::Location(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
    }
    // Absolute, so that the URL parser cannot read a relative path's first part as a host;
    // percent-encoded, because sqlx decodes the path (a literal `%41` must stay `%41`).
    let abs =
        std::path::absolute(file).map_err(|e| StoreError::Location(format!("{path}: {e}")))?;
    let abs = abs
        .to_str()
        .ok_or_else(|| StoreError::Location(format!("{} is not UTF-8", abs.display())))?;
    Ok(format!("sqlite://{}?mode=rwc", percent_encode(abs)))
}

/// `%`, `?` and `#` escaped, the characters that would change how a URL path is read.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// A percent-encoded URL path decoded (as sqlx decodes it).
fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        let hex = bytes
            .get(k + 1..k + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[k], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                k += 3;
            }
            (b, _) => {
                out.push(b);
                k += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::Location(format!("sqlite:{s} does not decode to UTF-8")))
}
