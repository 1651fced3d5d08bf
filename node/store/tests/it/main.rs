//! Tests of mimi-store, on SQLite (a temp file per test) and on PostgreSQL when
//! `MIMI_TEST_POSTGRES_URL` is set (`scripts/pg.sh start <dir>` prints one; `.ci/run` and
//! `scripts/test.sh` set it). Every name is unique per run, so tests share one PostgreSQL
//! database without colliding. Test names carry the `STORE-*` IDs of `spec-notes/storage.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod concurrency;
mod consent;
mod inbox;
mod key_packages;
mod open;
mod outbox;
mod queue;
mod rooms;
mod users;

use mimi_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};

static N: AtomicU64 = AtomicU64::new(0);

/// A unique tag for names in this test.
pub fn tag(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A store and the location it was opened at.
pub struct Db {
    pub store: Store,
    pub location: String,
    /// The SQLite file's directory, removed with the last handle on it (tests clean up).
    pub dir: Option<std::sync::Arc<TempDir>>,
}

/// A test's temporary directory, removed when dropped (also when the test panics).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh, existing directory named after `name`.
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(tag(name));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Db {
    /// A second, raw connection to the same database (to look at what is really stored).
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = if self.location.starts_with("postgres") {
            self.location.clone()
        } else {
            format!("sqlite://{}", self.location)
        };
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap()
    }
}

/// The PostgreSQL URL for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("MIMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// [`backends`] with a PostgreSQL database of the test's own (created here; it goes with
/// the test cluster): for tests whose claims take every follower's streams at once
/// (`claim_outbox_all`), which on a shared database would lease other tests' streams until
/// their fake clocks reach the lease end.
pub async fn backends_isolated(name: &str) -> Vec<Db> {
    let mut v = backends(name).await;
    if let Some(url) = postgres_url() {
        use sqlx::Connection;
        let db = tag(&format!("iso_{name}")).replace(['-', '.'], "_");
        let mut c = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        sqlx::Executor::execute(&mut c, sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .await
            .unwrap();
        let (base, _) = url.rsplit_once('/').unwrap();
        let own = format!("{base}/{db}");
        v.retain(|d| d.dir.is_some());
        v.push(Db {
            store: Store::open(&own).await.unwrap(),
            location: own,
            dir: None,
        });
    }
    v
}

/// Drops the PostgreSQL databases [`backends_isolated`] created (tests clean up).
pub async fn drop_isolated(dbs: Vec<Db>) {
    for db in dbs {
        if db.dir.is_some() {
            continue;
        }
        let Some(url) = postgres_url() else { continue };
        db.store.close().await;
        let name = db.location.rsplit_once('/').unwrap().1.to_owned();
        use sqlx::Connection;
        let mut c = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        sqlx::Executor::execute(
            &mut c,
            sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
        )
        .await
        .unwrap();
    }
}

/// Every backend available: SQLite always, PostgreSQL when configured.
pub async fn backends(name: &str) -> Vec<Db> {
    let dir = std::sync::Arc::new(TempDir::new(name));
    let file = dir.join("node.sqlite").to_str().unwrap().to_owned();
    let mut v = vec![Db {
        store: Store::open(&file).await.unwrap(),
        location: file,
        dir: Some(dir),
    }];
    if let Some(url) = postgres_url() {
        v.push(Db {
            store: Store::open(&url).await.unwrap(),
            location: url,
            dir: None,
        });
    }
    v
}
