//! The store and its transactions.

use crate::error::StoreError;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Row, Transaction};
use std::path::Path;
use std::time::Duration;

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A node's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A claimed KeyPackage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedKeyPackage {
    /// Its KeyPackageRef.
    pub kp_ref: Vec<u8>,
    /// The KeyPackage bytes.
    pub key_package: Vec<u8>,
    /// It was a last-resort KeyPackage (handed out again, not consumed).
    pub last_resort: bool,
}

/// A room as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    /// The room.
    pub room_uri: String,
    /// Its hub.
    pub hub: String,
    /// The serialized room state (the hub's snapshot).
    pub state: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// The next event sequence number.
    pub next_seq: u64,
    /// The last accepted timestamp.
    pub last_ts_ms: u64,
}

/// One outbox item claimed by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The follower provider.
    pub follower: String,
    /// The room.
    pub room_uri: String,
    /// Its number in the (room, follower) stream.
    pub stream_seq: u64,
    /// The room event it carries.
    pub event_seq: u64,
    /// The FanoutMessage.
    pub body: Vec<u8>,
    /// Attempts so far.
    pub attempts: u32,
}

/// One item of a client's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    /// Its cursor.
    pub seq: u64,
    /// The room.
    pub room_uri: String,
    /// The FanoutMessage.
    pub body: Vec<u8>,
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens a database: `sqlite:<file>` (created if missing), a bare file path, or a
    /// `postgres://` URL; applies the embedded migrations (`STORE-migrate`).
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let (url, backend) =
            if location.starts_with("postgres://") || location.starts_with("postgresql://") {
                (location.to_owned(), Backend::Postgres)
            } else {
                let path = location
                    .strip_prefix("sqlite:")
                    .unwrap_or(location)
                    .trim_start_matches("//");
                if path.is_empty() {
                    return Err(StoreError::Location(
                        "an SQLite location needs a file name".into(),
                    ));
                }
                if let Some(dir) = Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                    && !dir.exists()
                {
                    return Err(StoreError::Location(format!(
                        "the directory {} does not exist",
                        dir.display()
                    )));
                }
                (format!("sqlite://{path}?mode=rwc"), Backend::Sqlite)
            };
        let opts = match backend {
            // One connection: SQLite has one writer anyway, and it makes every transaction
            // exclusive (no SQLITE_BUSY on lock upgrades).
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                }),
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        let pool = opts
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- devices -------------------------------------------------------------------------

    /// Registers a device of a user with the hash of its bearer token (never the token;
    /// `STORE-token-hash`).
    pub async fn register_device(
        &self,
        user: &str,
        client: &str,
        token_hash: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO devices (client_uri, user_uri, token_hash, created_ms) VALUES ($1, $2, $3, $4)")
            .bind(client)
            .bind(user)
            .bind(token_hash)
            .bind(i(now_ms))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("device {client}")))?;
        Ok(())
    }

    /// The `(user, client)` of a token hash.
    pub async fn device_by_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT user_uri, client_uri FROM devices WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    /// The clients of a user.
    pub async fn clients_of(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT client_uri FROM devices WHERE user_uri = $1 ORDER BY client_uri")
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    // ---- key packages --------------------------------------------------------------------

    /// Stores KeyPackages of a client: `(ref, bytes, not_after_s, last_resort)`.
    pub async fn add_key_packages(
        &self,
        client: &str,
        kps: &[(Vec<u8>, Vec<u8>, u64, bool)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (r, kp, not_after, last_resort) in kps {
            sqlx::query("INSERT INTO key_packages (kp_ref, client_uri, key_package, not_after_s, last_resort, claimed_ms) VALUES ($1, $2, $3, $4, $5, NULL)")
                .bind(r.as_slice())
                .bind(client)
                .bind(kp.as_slice())
                .bind(i(*not_after))
                .bind(i64::from(*last_resort))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_insert(e, || "a KeyPackage with this reference".into()))?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims one KeyPackage of a client: never one claimed before, never an expired one, a
    /// last-resort one only when nothing else is left (`STORE-kp-claim-once`).
    pub async fn claim_key_package(
        &self,
        client: &str,
        now_ms: u64,
    ) -> Result<Option<ClaimedKeyPackage>, StoreError> {
        let now_s = i(now_ms / 1000);
        let sql = match self.backend {
            Backend::Postgres => {
                "UPDATE key_packages SET claimed_ms = $1 WHERE kp_ref = (
                    SELECT kp_ref FROM key_packages
                    WHERE client_uri = $2 AND claimed_ms IS NULL AND last_resort = 0 AND not_after_s > $3
                    ORDER BY kp_ref LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING kp_ref, key_package"
            }
            Backend::Sqlite => {
                "UPDATE key_packages SET claimed_ms = $1 WHERE kp_ref = (
                    SELECT kp_ref FROM key_packages
                    WHERE client_uri = $2 AND claimed_ms IS NULL AND last_resort = 0 AND not_after_s > $3
                    ORDER BY kp_ref LIMIT 1)
                 RETURNING kp_ref, key_package"
            }
        };
        let row = sqlx::query(sql)
            .bind(i(now_ms))
            .bind(client)
            .bind(now_s)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(r) = row {
            return Ok(Some(ClaimedKeyPackage {
                kp_ref: r.try_get(0)?,
                key_package: r.try_get(1)?,
                last_resort: false,
            }));
        }
        let row = sqlx::query(
            "SELECT kp_ref, key_package FROM key_packages
             WHERE client_uri = $1 AND last_resort = 1 AND not_after_s > $2 ORDER BY kp_ref LIMIT 1",
        )
        .bind(client)
        .bind(now_s)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(ClaimedKeyPackage {
                kp_ref: r.try_get(0)?,
                key_package: r.try_get(1)?,
                last_resort: true,
            }),
            None => None,
        })
    }

    /// The client a KeyPackageRef belongs to (target side routing of Welcomes).
    pub async fn client_of_key_package(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT client_uri FROM key_packages WHERE kp_ref = $1")
            .bind(kp_ref)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Remembers which provider a KeyPackageRef the hub proxied belongs to (hub side).
    pub async fn record_route(
        &self,
        kp_ref: &[u8],
        provider: &str,
        room: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kp_routes (kp_ref, provider, room_uri, created_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (kp_ref) DO UPDATE SET provider = excluded.provider, room_uri = excluded.room_uri",
        )
        .bind(kp_ref)
        .bind(provider)
        .bind(room)
        .bind(i(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The provider of a KeyPackageRef the hub proxied.
    pub async fn route(&self, kp_ref: &[u8]) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT provider FROM kp_routes WHERE kp_ref = $1")
            .bind(kp_ref)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    // ---- rooms ---------------------------------------------------------------------------

    /// Creates a room (its hub and first state).
    pub async fn create_room(
        &self,
        room: &str,
        hub: &str,
        state: &[u8],
        epoch: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rooms (room_uri, hub, state, epoch, next_seq, last_ts_ms) VALUES ($1, $2, $3, $4, 1, 0)")
            .bind(room)
            .bind(hub)
            .bind(state)
            .bind(i(epoch))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("room {room}")))?;
        Ok(())
    }

    /// Reads a room without locking it.
    pub async fn room(&self, room: &str) -> Result<Option<RoomRow>, StoreError> {
        let row = sqlx::query("SELECT room_uri, hub, state, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| room_row(&r)).transpose()
    }

    /// Starts the serialised transaction of a room (`STORE-room-serial`): on PostgreSQL the
    /// room row is locked until commit or drop.
    pub async fn begin_room(&self, room: &str) -> Result<RoomTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT room_uri, hub, state, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1 FOR UPDATE"
            }
            Backend::Sqlite => {
                "SELECT room_uri, hub, state, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1"
            }
        };
        let row = sqlx::query(sql)
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("room {room}")))?;
        let row = room_row(&row)?;
        Ok(RoomTx { tx, row })
    }

    // ---- outbox --------------------------------------------------------------------------

    /// Claims the due head of a follower's outbox for `lease_ms` (`STORE-outbox-claim`):
    /// rows whose lease expired and whose next attempt is due, oldest first per room stream;
    /// two workers never hold the same row.
    pub async fn claim_outbox(
        &self,
        follower: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT follower, room_uri, stream_seq, event_seq, body, attempts FROM outbox
                 WHERE follower = $1 AND lease_until_ms <= $2 AND next_attempt_ms <= $2
                 ORDER BY room_uri, stream_seq LIMIT $3 FOR UPDATE SKIP LOCKED"
            }
            Backend::Sqlite => {
                "SELECT follower, room_uri, stream_seq, event_seq, body, attempts FROM outbox
                 WHERE follower = $1 AND lease_until_ms <= $2 AND next_attempt_ms <= $2
                 ORDER BY room_uri, stream_seq LIMIT $3"
            }
        };
        let rows = sqlx::query(sql)
            .bind(follower)
            .bind(i(now_ms))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(OutboxRow {
                follower: r.try_get(0)?,
                room_uri: r.try_get(1)?,
                stream_seq: u(r.try_get(2)?),
                event_seq: u(r.try_get(3)?),
                body: r.try_get(4)?,
                attempts: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(u32::MAX),
            });
        }
        for o in &out {
            sqlx::query("UPDATE outbox SET lease_owner = $1, lease_until_ms = $2 WHERE follower = $3 AND room_uri = $4 AND stream_seq = $5")
                .bind(owner)
                .bind(i(now_ms.saturating_add(lease_ms)))
                .bind(&o.follower)
                .bind(&o.room_uri)
                .bind(i(o.stream_seq))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Removes delivered rows (acknowledged by the follower with 201).
    pub async fn complete_outbox(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for o in rows {
            sqlx::query(
                "DELETE FROM outbox WHERE follower = $1 AND room_uri = $2 AND stream_seq = $3",
            )
            .bind(&o.follower)
            .bind(&o.room_uri)
            .bind(i(o.stream_seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Releases rows for another attempt at `next_attempt_ms`.
    pub async fn retry_outbox(
        &self,
        rows: &[OutboxRow],
        next_attempt_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for o in rows {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $1, lease_until_ms = 0, lease_owner = ''
                 WHERE follower = $2 AND room_uri = $3 AND stream_seq = $4",
            )
            .bind(i(next_attempt_ms))
            .bind(&o.follower)
            .bind(&o.room_uri)
            .bind(i(o.stream_seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Outbox depth per follower (metrics).
    pub async fn outbox_depth(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT follower, COUNT(*) FROM outbox GROUP BY follower ORDER BY follower",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, u(r.try_get(1)?))))
            .collect()
    }

    /// Followers with outbox rows.
    pub async fn followers_with_work(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT follower FROM outbox ORDER BY follower")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    // ---- follower side -------------------------------------------------------------------

    /// Records an item hash; `true` if it was new (`STORE-inbox-dedupe`).
    pub async fn inbox_first_seen(
        &self,
        item_hash: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO inbox_seen (item_hash, seen_ms) VALUES ($1, $2) ON CONFLICT (item_hash) DO NOTHING")
            .bind(item_hash)
            .bind(i(now_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds a local client to a room (delivery target).
    pub async fn add_member(&self, room: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO room_members (room_uri, client_uri) VALUES ($1, $2) ON CONFLICT (room_uri, client_uri) DO NOTHING")
            .bind(room)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a local client from a room.
    pub async fn remove_member(&self, room: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM room_members WHERE room_uri = $1 AND client_uri = $2")
            .bind(room)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Local clients of a room.
    pub async fn members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT client_uri FROM room_members WHERE room_uri = $1 ORDER BY client_uri",
        )
        .bind(room)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Appends items to client queues in one transaction (follower delivery).
    pub async fn enqueue(
        &self,
        items: &[(String, String, Vec<u8>)],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (client, room, body) in items {
            enqueue_client(&mut tx, client, room, body, now_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A client's queue after `cursor` (`STORE-queue`); nothing is removed before
    /// [`Store::ack`].
    pub async fn fetch_queue(
        &self,
        client: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let rows = sqlx::query("SELECT seq, room_uri, body FROM client_queue WHERE client_uri = $1 AND seq > $2 ORDER BY seq LIMIT $3")
            .bind(client)
            .bind(i(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(QueueItem {
                    seq: u(r.try_get(0)?),
                    room_uri: r.try_get(1)?,
                    body: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Acknowledges a client's queue up to and including `cursor`.
    pub async fn ack(&self, client: &str, cursor: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM client_queue WHERE client_uri = $1 AND seq <= $2")
            .bind(client)
            .bind(i(cursor))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- consent and abuse ---------------------------------------------------------------

    /// Sets a consent entry (`request`, `grant`, `revoke`, `cancel`); room `""` = any room.
    pub async fn set_consent(
        &self,
        requester: &str,
        target: &str,
        room: &str,
        state: &str,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consent (requester, target, room_uri, state, updated_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (requester, target, room_uri) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
        )
        .bind(requester)
        .bind(target)
        .bind(room)
        .bind(state)
        .bind(i(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The consent state for a room (or any room).
    pub async fn consent(
        &self,
        requester: &str,
        target: &str,
        room: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT state FROM consent WHERE requester = $1 AND target = $2 AND (room_uri = $3 OR room_uri = '')
             ORDER BY room_uri DESC LIMIT 1",
        )
        .bind(requester)
        .bind(target)
        .bind(room)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Stores an abuse report for the hub operator (a repeat is stored once).
    pub async fn add_abuse_report(
        &self,
        room: &str,
        reporter: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(body).to_vec();
        let done = sqlx::query(
            "INSERT INTO abuse_reports (report_hash, room_uri, reporter, body, received_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (report_hash) DO NOTHING",
        )
        .bind(hash)
        .bind(room)
        .bind(reporter)
        .bind(body)
        .bind(i(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn room_row(r: &sqlx::any::AnyRow) -> Result<RoomRow, StoreError> {
    Ok(RoomRow {
        room_uri: r.try_get(0)?,
        hub: r.try_get(1)?,
        state: r.try_get(2)?,
        epoch: u(r.try_get(3)?),
        next_seq: u(r.try_get(4)?),
        last_ts_ms: u(r.try_get(5)?),
    })
}

async fn enqueue_client(
    tx: &mut Transaction<'static, Any>,
    client: &str,
    room: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "INSERT INTO client_cursors (client_uri, next_seq) VALUES ($1, 2)
         ON CONFLICT (client_uri) DO UPDATE SET next_seq = client_cursors.next_seq + 1
         RETURNING next_seq",
    )
    .bind(client)
    .fetch_one(&mut **tx)
    .await?;
    let seq = u(row.try_get::<i64, _>(0)?) - 1;
    sqlx::query("INSERT INTO client_queue (client_uri, seq, room_uri, body, created_ms) VALUES ($1, $2, $3, $4, $5)")
        .bind(client)
        .bind(i(seq))
        .bind(room)
        .bind(body)
        .bind(i(now_ms))
        .execute(&mut **tx)
        .await?;
    Ok(seq)
}

/// The serialised transaction of one room: load, decide, append, commit
/// (persist before acknowledge: `STORE-persist-before-ack`).
pub struct RoomTx {
    tx: Transaction<'static, Any>,
    row: RoomRow,
}

impl RoomTx {
    /// The room as it is now.
    pub fn room(&self) -> &RoomRow {
        &self.row
    }

    /// Appends an accepted event: returns its sequence number (`STORE-room-seq`).
    pub async fn append_event(&mut self, ts_ms: u64, body: &[u8]) -> Result<u64, StoreError> {
        let seq = self.row.next_seq;
        sqlx::query("INSERT INTO room_events (room_uri, seq, ts_ms, body) VALUES ($1, $2, $3, $4)")
            .bind(&self.row.room_uri)
            .bind(i(seq))
            .bind(i(ts_ms))
            .bind(body)
            .execute(&mut *self.tx)
            .await?;
        self.row.next_seq += 1;
        self.row.last_ts_ms = ts_ms;
        Ok(seq)
    }

    /// Queues a FanoutMessage for a follower: returns its number in the (room, follower)
    /// stream (the `mimi-notify-seq` of `mimi_proto::inbox`).
    pub async fn enqueue_outbox(
        &mut self,
        follower: &str,
        event_seq: u64,
        body: &[u8],
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO outbox_streams (follower, room_uri, next_seq) VALUES ($1, $2, 2)
             ON CONFLICT (follower, room_uri) DO UPDATE SET next_seq = outbox_streams.next_seq + 1
             RETURNING next_seq",
        )
        .bind(follower)
        .bind(&self.row.room_uri)
        .fetch_one(&mut *self.tx)
        .await?;
        let stream_seq = u(row.try_get::<i64, _>(0)?) - 1;
        sqlx::query(
            "INSERT INTO outbox (follower, room_uri, stream_seq, event_seq, body, attempts, next_attempt_ms, lease_owner, lease_until_ms)
             VALUES ($1, $2, $3, $4, $5, 0, $6, '', 0)",
        )
        .bind(follower)
        .bind(&self.row.room_uri)
        .bind(i(stream_seq))
        .bind(i(event_seq))
        .bind(body)
        .bind(i(now_ms))
        .execute(&mut *self.tx)
        .await?;
        Ok(stream_seq)
    }

    /// Queues an item for a local client: returns its cursor.
    pub async fn enqueue_client(
        &mut self,
        client: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let room = self.row.room_uri.clone();
        enqueue_client(&mut self.tx, client, &room, body, now_ms).await
    }

    /// Replaces the room's state.
    pub fn set_state(&mut self, state: Vec<u8>, epoch: u64) {
        self.row.state = state;
        self.row.epoch = epoch;
    }

    /// Writes the room row and commits everything at once.
    pub async fn commit(mut self) -> Result<RoomRow, StoreError> {
        sqlx::query("UPDATE rooms SET state = $1, epoch = $2, next_seq = $3, last_ts_ms = $4 WHERE room_uri = $5")
            .bind(self.row.state.as_slice())
            .bind(i(self.row.epoch))
            .bind(i(self.row.next_seq))
            .bind(i(self.row.last_ts_ms))
            .bind(&self.row.room_uri)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(self.row)
    }
}
