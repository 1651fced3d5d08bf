//! Opening the database, its backend, and write transactions.

use crate::error::StoreError;
use crate::queue::QueueWaker;
use crate::sql::{lite_err, run_lite};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Transaction};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database behind a store.
#[derive(Clone)]
pub(crate) enum Db {
    /// PostgreSQL through sqlx's pool.
    Pg(AnyPool),
    /// An SQLite file, its connections held by this process (`STORE-sqlite-inline`).
    Lite(Arc<Lite>),
}

/// The connections of one SQLite file in this process: one writer, taken in turn
/// (`STORE-sqlite-writer-turn`: writers queue here in order instead of colliding in SQLite,
/// whose busy handler sleeps and polls), and read-only readers beside it (WAL). Every
/// [`Store`] this process opens on the same file shares them (`STORE-sqlite-shared`), so two
/// stores of one process never wait for each other inside SQLite, which would block a thread.
pub(crate) struct Lite {
    writer: Arc<Mutex<rusqlite::Connection>>,
    readers: Vec<Arc<Mutex<rusqlite::Connection>>>,
    next: AtomicUsize,
    /// The file (device, inode), to find it again.
    id: (u64, u64),
    /// The file as its connections name it (`STORE-sqlite-no-reprepare`'s count).
    path: String,
    /// Dropped with the file's connections: the checkpointer thread then ends
    /// (`STORE-sqlite-checkpoint`).
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// How often the checkpointer looks for new WAL frames (`STORE-sqlite-checkpoint`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// `STORE-sqlite-checkpoint`: WAL checkpoints of a file run on a thread of their own, on a
/// connection of their own, not inside whichever commit crossed SQLite's threshold. SQLite's
/// automatic checkpoint (every 1,000 WAL pages, in the committing call) copies pages into the
/// database file and syncs it and the WAL: milliseconds in which that commit's async worker
/// thread runs nothing else (the message path's p99). The writer connection has
/// `wal_autocheckpoint = 0`; this thread runs a PASSIVE checkpoint (it never waits for, nor
/// blocks, readers or the writer) every [`CHECKPOINT_EVERY`] in which something was committed,
/// and ends when the file's connections are dropped. The last connection to close
/// checkpoints what is left, as before.
fn spawn_checkpointer(
    file: &Path,
    cache_kib: u32,
) -> Result<std::sync::mpsc::Sender<()>, StoreError> {
    let conn = open_conn(file, false, cache_kib)?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let name = file.display().to_string();
    std::thread::Builder::new()
        .name("mimi-store-checkpoint".into())
        .spawn(move || {
            let mut seen: Option<i64> = None;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                // Not through `run_lite` and its statement cache: a cached PRAGMA is compiled
                // again whenever SQLite sees the schema cookie move, which would count
                // against `STORE-sqlite-no-reprepare` (whose subject is the request path),
                // and compiling two pragmas every 250 ms costs nothing.
                // `data_version` changes when another connection committed.
                let version: Option<i64> =
                    conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok();
                if version.is_some() && version == seen {
                    continue;
                }
                seen = version;
                if let Err(e) =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                {
                    tracing::warn!(file = %name, error = %e, "SQLite checkpoint failed");
                }
            }
        })
        .map_err(|e| StoreError::Location(format!("cannot start the checkpointer: {e}")))?;
    Ok(tx)
}

impl Lite {
    /// A reader connection: a free one, else the next in turn once it is free.
    pub(crate) async fn reader(&self) -> OwnedMutexGuard<rusqlite::Connection> {
        let n = self.readers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            if let Ok(g) = self.readers[(start + k) % n].clone().try_lock_owned() {
                return g;
            }
        }
        self.readers[start % n].clone().lock_owned().await
    }

    /// The writer connection, in turn. Waits as long as SQLite's busy timeout at most, then
    /// fails as SQLite would ("database is locked"), so that a writer that waits for itself is
    /// an error, not a hang.
    async fn writer(&self) -> Result<OwnedMutexGuard<rusqlite::Connection>, StoreError> {
        let wait = Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS));
        match tokio::time::timeout(wait, self.writer.clone().lock_owned()).await {
            Ok(g) => Ok(g),
            Err(_) => Err(StoreError::Busy(format!(
                "database is locked: no write turn within {} s",
                wait.as_secs()
            ))),
        }
    }
}

/// A node's database: a cheap handle (clone it freely; all clones share one pool).
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    pub(crate) backend: Backend,
    pub(crate) waker: Arc<QueueWaker>,
    pub(crate) room_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// Set by [`Store::close`]: statements of this handle (and its clones) fail after it.
    closed: Arc<AtomicBool>,
    /// PostgreSQL: the task listening for other processes' wake-ups (`STORE-wake`), ended
    /// when the last clone of this store is dropped or closed.
    listener: Option<Arc<Listener>>,
}

/// The task behind [`Store`]'s `listener`, aborted when dropped.
pub(crate) struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `STORE-wake`: listens on PostgreSQL for the announcements of the other stores on the
/// database and applies them to `waker`. Connected before the store is returned, so no
/// commit after [`Store::open`] goes unseen. When the connection drops, sqlx's listener
/// reconnects and every waiter is woken (announcements in between are lost; a waiter that
/// finds nothing waits again).
async fn spawn_listener(location: &str, waker: &Arc<QueueWaker>) -> Result<Listener, StoreError> {
    let mut l = sqlx::postgres::PgListener::connect(location).await?;
    l.listen(crate::queue::WAKE_CHANNEL).await?;
    let waker = Arc::downgrade(waker);
    Ok(Listener(tokio::spawn(async move {
        loop {
            let got = l.try_recv().await;
            let Some(w) = waker.upgrade() else { return };
            match got {
                Ok(Some(n)) => w.received(n.payload()),
                Ok(None) => {
                    tracing::warn!("wake-up listener reconnected to PostgreSQL");
                    w.wake_all();
                }
                Err(e) => {
                    drop(w);
                    tracing::warn!(error = %e, "wake-up listener: PostgreSQL error, retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })))
}

/// An SQLite transaction on a connection this process holds: rolled back when dropped open.
pub(crate) struct LiteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
    open: bool,
}

impl LiteTx {
    fn begin(conn: OwnedMutexGuard<rusqlite::Connection>, sql: &str) -> Result<Self, sqlx::Error> {
        let mut t = Self { conn, open: false };
        run_lite(&mut t.conn, sql, &[], false)?;
        t.open = true;
        Ok(t)
    }

    /// The connection.
    pub(crate) fn conn(&mut self) -> &mut rusqlite::Connection {
        &mut self.conn
    }

    /// `COMMIT` or `ROLLBACK`; a failed `COMMIT` rolls back.
    fn finish(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        self.open = false;
        let r = run_lite(&mut self.conn, sql, &[], false).map(|_| ());
        if r.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        r
    }
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A write transaction ([`Store::begin_write`]); statements run on `&mut tx`. On SQLite it
/// holds this process's writer connection (its turn) until it commits, rolls back or is
/// dropped (which rolls back).
pub(crate) enum WriteTx {
    Pg(Transaction<'static, Any>),
    Lite(LiteTx),
}

impl WriteTx {
    /// Commits, then gives the turn back.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Pg(t) => t.commit().await,
            Self::Lite(mut t) => t.finish("COMMIT"),
        }
    }

    /// Rolls back, then gives the turn back.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Pg(t) => t.rollback().await,
            Self::Lite(mut t) => t.finish("ROLLBACK"),
        }
    }
}

/// A read transaction ([`Store::begin_read`]): one snapshot for several reads.
pub(crate) enum ReadTx {
    Pg(Transaction<'static, Any>),
    Lite(LiteTx),
}

impl ReadTx {
    /// Ends it.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Pg(t) => t.commit().await,
            Self::Lite(mut t) => t.finish("COMMIT"),
        }
    }
}

/// This process's turn to write a single statement outside a transaction
/// ([`Store::write_turn`]); the statement runs on `&mut turn`.
pub(crate) enum Turn {
    /// PostgreSQL: no turn (rows are locked instead); the statement runs on the pool.
    Pg(AnyPool),
    /// SQLite: the writer connection.
    Lite(OwnedMutexGuard<rusqlite::Connection>),
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
/// Reader connections to one SQLite file per process (statements run on the caller's thread,
/// so more readers than threads that read at once would sit idle).
const SQLITE_READERS: usize = 4;
/// Prepared statements kept per SQLite connection.
const SQLITE_STATEMENTS: usize = 256;
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

/// The SQLite files this process has open (`STORE-sqlite-shared`).
type OpenFiles = Mutex<Vec<Weak<Lite>>>;
static OPEN_FILES: OnceLock<OpenFiles> = OnceLock::new();

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Opens a connection to an SQLite file that exists (`STORE-sqlite-pragmas`: foreign keys,
/// `synchronous = NORMAL`, the busy timeout, a page cache of `cache_kib` KiB
/// (`STORE-sqlite-cache`); WAL is the file's, set when it was migrated).
fn open_conn(
    path: &Path,
    read_only: bool,
    cache_kib: u32,
) -> Result<rusqlite::Connection, sqlx::Error> {
    use rusqlite::OpenFlags;
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let mut c = rusqlite::Connection::open_with_flags(path, flags).map_err(lite_err)?;
    c.busy_timeout(Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS)))
        .map_err(lite_err)?;
    c.set_prepared_statement_cache_capacity(SQLITE_STATEMENTS);
    for pragma in ["PRAGMA foreign_keys = ON", "PRAGMA synchronous = NORMAL"] {
        run_lite(&mut c, pragma, &[], true)?;
    }
    // Negative: a size in KiB, not in pages. Not cached: it is run once per connection.
    c.execute_batch(&format!("PRAGMA cache_size = -{cache_kib}"))
        .map_err(lite_err)?;
    Ok(c)
}

/// This process's connections to the SQLite file at `url` (`file`), opened and migrated if
/// no store of this process has it open.
async fn open_lite(url: &str, file: &Path, cache_kib: u32) -> Result<Arc<Lite>, StoreError> {
    let mut files = OPEN_FILES.get_or_init(OpenFiles::default).lock().await;
    files.retain(|w| w.strong_count() > 0);
    if let Some(id) = file_id(file)
        && let Some(l) = files.iter().filter_map(Weak::upgrade).find(|l| l.id == id)
    {
        return Ok(l);
    }
    // Created and migrated through sqlx (`STORE-migrate`), then left to our connections.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON"] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await?;
    let migrated = sqlx::migrate!("./migrations").run(&pool).await;
    pool.close().await;
    migrated?;
    let id = file_id(file)
        .ok_or_else(|| StoreError::Location(format!("{} vanished", file.display())))?;
    // STORE-sqlite-checkpoint: this connection's commits never checkpoint.
    let mut writer = open_conn(file, false, cache_kib)?;
    run_lite(&mut writer, "PRAGMA wal_autocheckpoint = 0", &[], true)?;
    let path = writer.path().unwrap_or_default().to_owned();
    let writer = Arc::new(Mutex::new(writer));
    let readers = (0..SQLITE_READERS)
        .map(|_| open_conn(file, true, cache_kib).map(|c| Arc::new(Mutex::new(c))))
        .collect::<Result<Vec<_>, _>>()?;
    let lite = Arc::new(Lite {
        writer,
        readers,
        next: AtomicUsize::new(0),
        id,
        path,
        _checkpointer: spawn_checkpointer(file, cache_kib)?,
    });
    files.push(Arc::downgrade(&lite));
    Ok(lite)
}

/// How a store is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// SQLite: the page cache of each of the file's connections, in KiB
    /// (`STORE-sqlite-cache`). SQLite's own default is 2,000 KiB; ours is
    /// [`StoreOptions::DEFAULT_SQLITE_CACHE_KIB`]: the pages the node reads again are few and
    /// hot, the operating system's page cache holds the rest, and six connections' caches
    /// filled to SQLite's default were most of a catch-up's memory growth
    /// (spec-notes/performance.md).
    pub sqlite_cache_kib: u32,
}

impl StoreOptions {
    /// The default SQLite page cache per connection, in KiB.
    pub const DEFAULT_SQLITE_CACHE_KIB: u32 = 256;
    /// The largest SQLite page cache per connection accepted, in KiB (1 GiB).
    pub const MAX_SQLITE_CACHE_KIB: u32 = 1024 * 1024;
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_cache_kib: Self::DEFAULT_SQLITE_CACHE_KIB,
        }
    }
}

impl Store {
    /// Opens a database and applies the embedded migrations (`STORE-migrate`).
    ///
    /// `location` is a `postgres://` (or `postgresql://`) URL, `sqlite:<file>`, or a bare
    /// file path; an SQLite file is created if missing, but its directory must exist.
    /// SQLite connections get the default [`StoreOptions`].
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        Self::open_with(location, &StoreOptions::default()).await
    }

    /// [`Store::open`] with options. An SQLite file this process already has open keeps the
    /// connections (and options) of the store that opened it first (`STORE-sqlite-shared`).
    pub async fn open_with(location: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        if !(1..=StoreOptions::MAX_SQLITE_CACHE_KIB).contains(&options.sqlite_cache_kib) {
            return Err(StoreError::Location(format!(
                "an SQLite page cache of {} KiB: expected 1 to {} KiB",
                options.sqlite_cache_kib,
                StoreOptions::MAX_SQLITE_CACHE_KIB
            )));
        }
        install_default_drivers();
        let (db, backend) =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                let pool = AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(location)
                    .await?;
                sqlx::migrate!("./migrations").run(&pool).await?;
                (Db::Pg(pool), Backend::Postgres)
            } else {
                let (url, file) = sqlite_url(location)?;
                (
                    Db::Lite(open_lite(&url, &file, options.sqlite_cache_kib).await?),
                    Backend::Sqlite,
                )
            };
        let waker = Arc::new(QueueWaker::default());
        let listener = match backend {
            Backend::Postgres => Some(Arc::new(spawn_listener(location, &waker).await?)),
            Backend::Sqlite => None,
        };
        Ok(Self {
            db,
            backend,
            waker,
            room_bytes: Arc::default(),
            closed: Arc::default(),
            listener,
        })
    }

    /// Woken (`notify_one`) when outbox rows were committed by this store, or, on
    /// PostgreSQL, by another process on the same database, and when another process's
    /// worker gave its streams back (`STORE-wake`): what an outbox worker sleeps on.
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.waker.outbox.clone()
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

    /// SQLite: how many times a cached statement on this store's file was compiled again
    /// before it ran, in this process, and the last such statement
    /// (`STORE-sqlite-no-reprepare`); none on PostgreSQL.
    pub fn sqlite_reprepares(&self) -> (u64, Option<String>) {
        match &self.db {
            Db::Lite(l) => crate::sql::reprepares_of(&l.path),
            Db::Pg(_) => (0, None),
        }
    }

    /// SQLite: the page cache of the file's connections in KiB, as a reader connection
    /// reports it (`PRAGMA cache_size`, `STORE-sqlite-cache`); `None` on PostgreSQL.
    pub async fn sqlite_cache_kib(&self) -> Result<Option<u64>, StoreError> {
        let Db::Lite(l) = &self.db else {
            return Ok(None);
        };
        let conn = l.reader().await;
        let size: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .map_err(lite_err)?;
        // Negative: KiB; positive: pages of the file's page size.
        Ok(Some(if size < 0 {
            size.unsigned_abs()
        } else {
            let page: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(lite_err)?;
            size.unsigned_abs() * page.unsigned_abs() / 1024
        }))
    }

    /// SQLite: the virtual-machine steps of every statement this thread has run, on any
    /// store (`STORE-sqlite-steps`); tests compare two readings around a call on a
    /// single-threaded runtime. Always 0 when only PostgreSQL was used.
    pub fn sqlite_steps_on_this_thread() -> u64 {
        crate::sql::vm_steps()
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes this handle and its clones: PostgreSQL's pool waits for connections in use to
    /// come back; on SQLite a write in progress finishes first, and the connections close
    /// when the last store of this process on the file is dropped.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(l) = &self.listener {
            l.0.abort();
        }
        match &self.db {
            Db::Pg(pool) => pool.close().await,
            Db::Lite(l) => drop(l.writer().await),
        }
    }

    /// Fails once the store is closed (as sqlx's closed pool does).
    pub(crate) fn check_open(&self) -> Result<(), sqlx::Error> {
        if self.closed.load(Ordering::SeqCst) {
            Err(sqlx::Error::PoolClosed)
        } else {
            Ok(())
        }
    }

    /// A transaction that will write: `BEGIN IMMEDIATE` on SQLite, so the write lock is taken
    /// at the start and a later upgrade cannot fail with a stale snapshot
    /// (`STORE-room-serial`); a plain `BEGIN` on PostgreSQL, where rows are locked explicitly.
    /// On SQLite the writer turn is taken first (`STORE-sqlite-writer-turn`): writers waiting
    /// for their turn hold no connection, so readers go on.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        match &self.db {
            Db::Pg(pool) => Ok(WriteTx::Pg(pool.begin().await?)),
            Db::Lite(l) => {
                self.check_open()?;
                let conn = l.writer().await?;
                Ok(WriteTx::Lite(LiteTx::begin(conn, "BEGIN IMMEDIATE")?))
            }
        }
    }

    /// A read-only transaction: one snapshot for several reads (a reader connection on
    /// SQLite).
    pub(crate) async fn begin_read(&self) -> Result<ReadTx, StoreError> {
        match &self.db {
            Db::Pg(pool) => Ok(ReadTx::Pg(pool.begin().await?)),
            Db::Lite(l) => {
                self.check_open()?;
                let conn = l.reader().await;
                Ok(ReadTx::Lite(LiteTx::begin(conn, "BEGIN")?))
            }
        }
    }

    /// The writer turn for a single statement that writes outside a transaction (on
    /// PostgreSQL there is none: rows are locked instead). The statement runs on it.
    pub(crate) async fn write_turn(&self) -> Result<Turn, StoreError> {
        match &self.db {
            Db::Pg(pool) => Ok(Turn::Pg(pool.clone())),
            Db::Lite(l) => {
                self.check_open()?;
                Ok(Turn::Lite(l.writer().await?))
            }
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
fn sqlite_url(location: &str) -> Result<(String, PathBuf), StoreError> {
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
    Ok((
        format!("sqlite://{}?mode=rwc", percent_encode(abs)),
        PathBuf::from(abs),
    ))
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
