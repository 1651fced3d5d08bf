//! The device's own state, in one SQLite file per profile (sqlx): the MLS state of every group
//! it is in (openmls' key-value storage, saved as a diff after each operation, in one
//! transaction), the profile's settings, and the decrypted history of each room.
//!
//! openmls' storage trait is synchronous; the device runs each MLS operation against an
//! in-memory [`MemoryStorage`] loaded from this file and then writes back what changed, so an
//! operation is either saved whole or not at all (a crash between the two loses the operation,
//! never half of it).

use openmls_rust_crypto::MemoryStorage;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqliteConnection};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

/// What this file's layout is; bumped with every schema change.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS mls_kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS received (
        room TEXT NOT NULL,
        id BLOB NOT NULL,
        position INTEGER NOT NULL,
        sender TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        content BLOB NOT NULL,
        PRIMARY KEY (room, id)
    )",
    "CREATE INDEX IF NOT EXISTS received_order ON received (room, position)",
    // Version 2: the hub's frank of each message and what checking it found
    // (PROTO-5.4.1-frank-verify); the encoded Frank and ServerFrankingContext are kept for
    // reportAbuse.
    "CREATE TABLE IF NOT EXISTS franks (
        room TEXT NOT NULL,
        id BLOB NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        frank BLOB,
        context BLOB,
        PRIMARY KEY (room, id)
    )",
];

/// A failure of the device's state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("device state file: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// The file was written by a newer mimi.
    #[error(
        "device state file has schema version {found}; this mimi understands {SCHEMA_VERSION}: upgrade mimi"
    )]
    NewerSchema {
        /// The file's version.
        found: i64,
    },
}

/// One message of the history, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Message ID.
    pub id: [u8; 32],
    /// Sending user URI.
    pub sender: String,
    /// Hub accepted timestamp.
    pub timestamp_ms: u64,
    /// The MIMI content bytes.
    pub content: Vec<u8>,
}

/// What the device found about a message's frank, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFrank {
    /// `verified`, `unfranked` or `invalid`.
    pub status: String,
    /// Why it is invalid (empty otherwise).
    pub reason: String,
    /// The encoded `Frank`, when the hub sent one.
    pub frank: Option<Vec<u8>>,
    /// The encoded `ServerFrankingContext` it verified over.
    pub context: Option<Vec<u8>>,
}

/// The device's state file.
#[derive(Clone)]
pub struct DeviceStore {
    pool: SqlitePool,
}

impl DeviceStore {
    /// Opens (creating if needed) the state file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        let found: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE name = ?1")
            .bind("schema_version")
            .fetch_optional(&mut *tx)
            .await?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema { found: v }),
            Some(v) if v == SCHEMA_VERSION => {}
            _ => {
                set_meta(&mut tx, "schema_version", &SCHEMA_VERSION.to_string()).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Loads the openmls key-value storage from the file into `storage`; returns what was
    /// loaded (the baseline for [`DeviceStore::save_mls`]).
    pub async fn load_mls(
        &self,
        storage: &MemoryStorage,
    ) -> Result<HashMap<Vec<u8>, Vec<u8>>, StoreError> {
        let baseline = self.load_kv().await?;
        let mut values = storage
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        values.clone_from(&baseline);
        Ok(baseline)
    }

    /// Writes what changed in `storage` since `baseline` in one transaction, then moves the
    /// baseline forward. Returns the number of rows written and deleted.
    pub async fn save_mls(
        &self,
        storage: &MemoryStorage,
        baseline: &mut HashMap<Vec<u8>, Vec<u8>>,
    ) -> Result<usize, StoreError> {
        let current = storage
            .values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.save_kv(current, baseline).await
    }

    /// The MLS key-value entries of the file (openmls' storage, or an mls-rs device's
    /// `mimi_room_mlsrs::storage::Storage`: a profile holds one library's).
    pub async fn load_kv(&self) -> Result<HashMap<Vec<u8>, Vec<u8>>, StoreError> {
        let rows = sqlx::query("SELECT key, value FROM mls_kv")
            .fetch_all(&self.pool)
            .await?;
        let mut kv = HashMap::with_capacity(rows.len());
        for row in rows {
            kv.insert(row.try_get::<Vec<u8>, _>(0)?, row.try_get::<Vec<u8>, _>(1)?);
        }
        Ok(kv)
    }

    /// Writes what differs between `current` and `baseline` in one transaction, then makes
    /// `current` the baseline. Returns the number of rows written and deleted.
    pub async fn save_kv(
        &self,
        current: HashMap<Vec<u8>, Vec<u8>>,
        baseline: &mut HashMap<Vec<u8>, Vec<u8>>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for (k, v) in &current {
            if baseline.get(k) != Some(v) {
                sqlx::query(
                    "INSERT INTO mls_kv (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(k)
                .bind(v)
                .execute(&mut *tx)
                .await?;
                changed += 1;
            }
        }
        for k in baseline.keys() {
            if !current.contains_key(k) {
                sqlx::query("DELETE FROM mls_kv WHERE key = ?1")
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
                changed += 1;
            }
        }
        tx.commit().await?;
        *baseline = current;
        Ok(changed)
    }

    /// A profile setting.
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE name = ?1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sets a profile setting.
    pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        set_meta(&mut conn, name, value).await
    }

    /// Adds a received message to a room's history; `false` if its ID was there already
    /// (content-08 §9.1: a repeated message ID is logged and discarded).
    pub async fn add_received(&self, room: &str, m: &StoredMessage) -> Result<bool, StoreError> {
        let ts = i64::try_from(m.timestamp_ms).unwrap_or(i64::MAX);
        let done = sqlx::query(
            "INSERT INTO received (room, id, position, sender, timestamp_ms, content)
             VALUES (?1, ?2,
                     (SELECT COALESCE(MAX(position), 0) + 1 FROM received WHERE room = ?1),
                     ?3, ?4, ?5)
             ON CONFLICT (room, id) DO NOTHING",
        )
        .bind(room)
        .bind(m.id.as_slice())
        .bind(&m.sender)
        .bind(ts)
        .bind(&m.content)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Keeps the frank of a message (replacing what was there).
    pub async fn set_frank(
        &self,
        room: &str,
        id: &[u8; 32],
        f: &StoredFrank,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO franks (room, id, status, reason, frank, context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (room, id) DO UPDATE SET status = excluded.status,
                 reason = excluded.reason, frank = excluded.frank, context = excluded.context",
        )
        .bind(room)
        .bind(id.as_slice())
        .bind(&f.status)
        .bind(&f.reason)
        .bind(f.frank.as_deref())
        .bind(f.context.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The frank kept for a message, if any.
    pub async fn frank(
        &self,
        room: &str,
        id: &[u8; 32],
    ) -> Result<Option<StoredFrank>, StoreError> {
        let row = sqlx::query(
            "SELECT status, reason, frank, context FROM franks WHERE room = ?1 AND id = ?2",
        )
        .bind(room)
        .bind(id.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredFrank {
                status: r.try_get(0)?,
                reason: r.try_get(1)?,
                frank: r.try_get(2)?,
                context: r.try_get(3)?,
            })
        })
        .transpose()
    }

    /// The messages of a room whose frank is invalid: `(id, reason)`.
    pub async fn flagged(&self, room: &str) -> Result<Vec<([u8; 32], String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, reason FROM franks WHERE room = ?1 AND status = 'invalid' ORDER BY id",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Vec<u8> = row.try_get(0)?;
            let mut fixed = [0u8; 32];
            if id.len() == 32 {
                fixed.copy_from_slice(&id);
            }
            out.push((fixed, row.try_get(1)?));
        }
        Ok(out)
    }

    /// A room's history in the order it was received.
    pub async fn history(&self, room: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, sender, timestamp_ms, content FROM received
             WHERE room = ?1 ORDER BY position",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Vec<u8> = row.try_get(0)?;
            let mut fixed = [0u8; 32];
            if id.len() == 32 {
                fixed.copy_from_slice(&id);
            }
            out.push(StoredMessage {
                id: fixed,
                sender: row.try_get(1)?,
                timestamp_ms: u64::try_from(row.try_get::<i64, _>(2)?).unwrap_or(0),
                content: row.try_get(3)?,
            });
        }
        Ok(out)
    }

    /// Deletes messages of a room from the history (and their franks), e.g. expired ones
    /// (`ROOM-policy-expiry`). Returns how many were deleted.
    pub async fn delete_received(&self, room: &str, ids: &[[u8; 32]]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM received WHERE room = ?1 AND id = ?2")
                .bind(room)
                .bind(&id[..])
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM franks WHERE room = ?1 AND id = ?2")
                .bind(room)
                .bind(&id[..])
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Closes the file (flushing the WAL).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

async fn set_meta(conn: &mut SqliteConnection, name: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
