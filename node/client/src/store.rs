//! The device's own state, in one SQLite file per profile (rusqlite, one connection, its
//! statements run on the calling thread): the MLS state of every group
//! it is in (openmls' key-value storage, saved as a diff after each operation, in one
//! transaction), the profile's settings, and the decrypted history of each room.
//!
//! openmls' storage trait is synchronous; the device runs each MLS operation against an
//! in-memory [`MemoryStorage`] loaded from this file and then writes back what changed, so an
//! operation is either saved whole or not at all (a crash between the two loses the operation,
//! never half of it).

use openmls_rust_crypto::MemoryStorage;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

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
    Sqlite(#[from] rusqlite::Error),
    /// The file was closed ([`DeviceStore::close`]).
    #[error("device state file: closed")]
    Closed,
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
///
/// One connection, shared by the clones; its statements run on the calling thread (in WAL
/// mode a commit does not wait for the disk, so a statement costs microseconds), not as round
/// trips to a driver thread (`STORE-sqlite-inline` in mimi-store).
#[derive(Clone)]
pub struct DeviceStore {
    conn: Arc<Mutex<Option<Connection>>>,
}

/// The connection of a [`DeviceStore`] while it is held.
struct Held<'a>(MutexGuard<'a, Option<Connection>>);

impl Held<'_> {
    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.0.as_mut().ok_or(StoreError::Closed)
    }
}

/// A 32-octet message ID from a column (zero if the row held another length).
fn id32(v: &[u8]) -> [u8; 32] {
    let mut fixed = [0u8; 32];
    if v.len() == 32 {
        fixed.copy_from_slice(v);
    }
    fixed
}

impl DeviceStore {
    /// Opens (creating if needed) the state file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Answers the mode it is in (a file system without shared memory keeps another).
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        let store = Self {
            conn: Arc::new(Mutex::new(Some(conn))),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn held(&self) -> Held<'_> {
        Held(self.conn.lock().await)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut held = self.held().await;
        let tx = held.conn()?.transaction()?;
        for statement in SCHEMA {
            tx.execute(statement, [])?;
        }
        let found: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE name = ?1",
                ["schema_version"],
                |r| r.get(0),
            )
            .optional()?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::NewerSchema { found: v }),
            Some(v) if v == SCHEMA_VERSION => {}
            _ => set_meta(&tx, "schema_version", &SCHEMA_VERSION.to_string())?,
        }
        tx.commit()?;
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
        let mut held = self.held().await;
        let conn = held.conn()?;
        let mut st = conn.prepare_cached("SELECT key, value FROM mls_kv")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut kv = HashMap::new();
        for row in rows {
            let (k, v) = row?;
            kv.insert(k, v);
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
        let mut held = self.held().await;
        let tx = held.conn()?.transaction()?;
        let mut changed = 0;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO mls_kv (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?;
            for (k, v) in &current {
                if baseline.get(k) != Some(v) {
                    put.execute(params![k, v])?;
                    changed += 1;
                }
            }
            let mut del = tx.prepare_cached("DELETE FROM mls_kv WHERE key = ?1")?;
            for k in baseline.keys() {
                if !current.contains_key(k) {
                    del.execute([k])?;
                    changed += 1;
                }
            }
        }
        tx.commit()?;
        *baseline = current;
        Ok(changed)
    }

    /// A profile setting.
    pub async fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut held = self.held().await;
        Ok(held
            .conn()?
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?)
    }

    /// Sets a profile setting.
    pub async fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut held = self.held().await;
        set_meta(held.conn()?, name, value)
    }

    /// Adds a received message to a room's history; `false` if its ID was there already
    /// (content-08 §9.1: a repeated message ID is logged and discarded).
    pub async fn add_received(&self, room: &str, m: &StoredMessage) -> Result<bool, StoreError> {
        let ts = i64::try_from(m.timestamp_ms).unwrap_or(i64::MAX);
        let mut held = self.held().await;
        let n = held
            .conn()?
            .prepare_cached(
                "INSERT INTO received (room, id, position, sender, timestamp_ms, content)
                 VALUES (?1, ?2,
                         (SELECT COALESCE(MAX(position), 0) + 1 FROM received WHERE room = ?1),
                         ?3, ?4, ?5)
                 ON CONFLICT (room, id) DO NOTHING",
            )?
            .execute(params![room, m.id.as_slice(), m.sender, ts, m.content])?;
        Ok(n == 1)
    }

    /// Keeps the frank of a message (replacing what was there).
    pub async fn set_frank(
        &self,
        room: &str,
        id: &[u8; 32],
        f: &StoredFrank,
    ) -> Result<(), StoreError> {
        let mut held = self.held().await;
        held.conn()?
            .prepare_cached(
                "INSERT INTO franks (room, id, status, reason, frank, context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (room, id) DO UPDATE SET status = excluded.status,
                     reason = excluded.reason, frank = excluded.frank, context = excluded.context",
            )?
            .execute(params![
                room,
                id.as_slice(),
                f.status,
                f.reason,
                f.frank.as_deref(),
                f.context.as_deref()
            ])?;
        Ok(())
    }

    /// The frank kept for a message, if any.
    pub async fn frank(
        &self,
        room: &str,
        id: &[u8; 32],
    ) -> Result<Option<StoredFrank>, StoreError> {
        let mut held = self.held().await;
        Ok(held
            .conn()?
            .prepare_cached(
                "SELECT status, reason, frank, context FROM franks WHERE room = ?1 AND id = ?2",
            )?
            .query_row(params![room, id.as_slice()], |r| {
                Ok(StoredFrank {
                    status: r.get(0)?,
                    reason: r.get(1)?,
                    frank: r.get(2)?,
                    context: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// The messages of a room whose frank is invalid: `(id, reason)`.
    pub async fn flagged(&self, room: &str) -> Result<Vec<([u8; 32], String)>, StoreError> {
        let mut held = self.held().await;
        let conn = held.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT id, reason FROM franks WHERE room = ?1 AND status = 'invalid' ORDER BY id",
        )?;
        let rows = st.query_map([room], |r| {
            Ok((id32(&r.get::<_, Vec<u8>>(0)?), r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A room's history in the order it was received.
    pub async fn history(&self, room: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let mut held = self.held().await;
        let conn = held.conn()?;
        let mut st = conn.prepare_cached(
            "SELECT id, sender, timestamp_ms, content FROM received
             WHERE room = ?1 ORDER BY position",
        )?;
        let rows = st.query_map([room], |r| {
            Ok(StoredMessage {
                id: id32(&r.get::<_, Vec<u8>>(0)?),
                sender: r.get(1)?,
                timestamp_ms: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                content: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deletes messages of a room from the history (and their franks), e.g. expired ones
    /// (`ROOM-policy-expiry`). Returns how many were deleted.
    pub async fn delete_received(&self, room: &str, ids: &[[u8; 32]]) -> Result<u64, StoreError> {
        let mut held = self.held().await;
        let tx = held.conn()?.transaction()?;
        let mut n = 0u64;
        {
            let mut del = tx.prepare_cached("DELETE FROM received WHERE room = ?1 AND id = ?2")?;
            let mut del_frank =
                tx.prepare_cached("DELETE FROM franks WHERE room = ?1 AND id = ?2")?;
            for id in ids {
                n += del.execute(params![room, &id[..]])? as u64;
                del_frank.execute(params![room, &id[..]])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Closes the file for every clone (the last connection's close checkpoints the WAL);
    /// later calls fail with [`StoreError::Closed`].
    pub async fn close(self) {
        let conn = self.conn.lock().await.take();
        drop(conn);
    }
}

fn set_meta(conn: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute([name, value])?;
    Ok(())
}
