//! Rooms, their serialised transaction, the per-room event log and local members.

use crate::db::{Store, i, u};
use crate::error::StoreError;
use crate::queue::{PendingItem, write_client_items};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// A room as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    /// The room.
    pub room_uri: String,
    /// Its hub (a provider domain).
    pub hub: String,
    /// The serialized room state (the hub's public group state snapshot).
    pub state: Vec<u8>,
    /// The serialized policy (empty if none was stored).
    pub policy: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// The sequence number the next accepted event gets (the first is 1).
    pub next_seq: u64,
    /// The hub timestamp of the last accepted event (0 before the first).
    pub last_ts_ms: u64,
}

/// One accepted event of a room's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEvent {
    /// Its sequence number in the room.
    pub seq: u64,
    /// The hub's timestamp.
    pub ts_ms: u64,
    /// The event (as the hub fans it out).
    pub body: Vec<u8>,
}

const ROOM_COLS: &str = "room_uri, hub, state, policy, epoch, next_seq, last_ts_ms";

fn room_row(r: &AnyRow) -> Result<RoomRow, StoreError> {
    Ok(RoomRow {
        room_uri: r.try_get(0)?,
        hub: r.try_get(1)?,
        state: r.try_get(2)?,
        policy: r.try_get::<Option<Vec<u8>>, _>(3)?.unwrap_or_default(),
        epoch: u(r.try_get(4)?),
        next_seq: u(r.try_get(5)?),
        last_ts_ms: u(r.try_get(6)?),
    })
}

impl Store {
    /// Creates a room (its hub and first state) with no policy blob.
    pub async fn create_room(
        &self,
        room: &str,
        hub: &str,
        state: &[u8],
        epoch: u64,
    ) -> Result<(), StoreError> {
        self.create_room_with_policy(room, hub, state, &[], epoch)
            .await
    }

    /// Creates a room with its hub, first state and policy; a second one is a conflict.
    pub async fn create_room_with_policy(
        &self,
        room: &str,
        hub: &str,
        state: &[u8],
        policy: &[u8],
        epoch: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO rooms (room_uri, hub, state, policy, epoch, next_seq, last_ts_ms) VALUES ($1, $2, $3, $4, $5, 1, 0)")
            .bind(room)
            .bind(hub)
            .bind(state)
            .bind(policy)
            .bind(i(epoch))
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("room {room}")))?;
        Ok(())
    }

    /// Reads a room without locking it.
    pub async fn room(&self, room: &str) -> Result<Option<RoomRow>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms WHERE room_uri = $1"));
        let row = sqlx::query(sql)
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_row).transpose()
    }

    /// How many rooms (metrics).
    pub async fn room_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM rooms")
            .fetch_one(&self.pool)
            .await?;
        Ok(u(row.try_get(0)?))
    }

    /// Starts the serialised transaction of a room (`STORE-room-serial`): on PostgreSQL the
    /// room row is locked (`SELECT … FOR UPDATE`) until commit or drop, so several node
    /// processes can share one database; on SQLite the transaction starts with `BEGIN
    /// IMMEDIATE` and holds the database's write lock. Keep it short, and read what it needs
    /// through the transaction ([`RoomTx::members`]) rather than through the [`Store`].
    pub async fn begin_room(&self, room: &str) -> Result<RoomTx, StoreError> {
        let mut tx = self.begin_write().await?;
        let sql = self.sql_for(
            "SELECT room_uri, hub, state, policy, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1",
            "SELECT room_uri, hub, state, policy, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1 FOR UPDATE",
        );
        let row = sqlx::query(sql)
            .bind(room)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("room {room}")))?;
        let row = room_row(&row)?;
        Ok(RoomTx {
            store: self.clone(),
            tx,
            row,
            clients: Vec::new(),
        })
    }

    /// Retention of the hub's event log (`STORE-retention`): deletes events older than
    /// `before_ms`. Returns how many went. (Expire the outbox first: it finds the age of its
    /// rows through their events.)
    pub async fn prune_room_events(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM room_events WHERE ts_ms < $1")
            .bind(i(before_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The room's accepted events after sequence number `after`, oldest first, at most
    /// `limit` (catch-up and audit).
    pub async fn events_after(
        &self,
        room: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, ts_ms, body FROM room_events WHERE room_uri = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(room)
        .bind(i(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RoomEvent {
                    seq: u(r.try_get(0)?),
                    ts_ms: u(r.try_get(1)?),
                    body: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Adds a local client to a room (a delivery target); adding it again changes nothing.
    pub async fn add_member(&self, room: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query(ADD_MEMBER)
            .bind(room)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a local client from a room.
    pub async fn remove_member(&self, room: &str, client: &str) -> Result<(), StoreError> {
        sqlx::query(REMOVE_MEMBER)
            .bind(room)
            .bind(client)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The local clients of a room, by URI.
    pub async fn members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(MEMBERS)
            .bind(room)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// The rooms a local client is in, by URI.
    pub async fn rooms_of_client(&self, client: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT room_uri FROM room_members WHERE client_uri = $1 ORDER BY room_uri",
        )
        .bind(client)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }
}

const ADD_MEMBER: &str = "INSERT INTO room_members (room_uri, client_uri) VALUES ($1, $2) ON CONFLICT (room_uri, client_uri) DO NOTHING";
const REMOVE_MEMBER: &str = "DELETE FROM room_members WHERE room_uri = $1 AND client_uri = $2";
const MEMBERS: &str = "SELECT client_uri FROM room_members WHERE room_uri = $1 ORDER BY client_uri";

/// The serialised transaction of one room: load, decide, append, commit. Everything written
/// through it (event, room state, outbox rows, client-queue rows, membership) becomes
/// visible at once on [`RoomTx::commit`], or not at all if it is dropped or fails
/// (`STORE-persist-before-ack`, `STORE-tx-atomic`).
pub struct RoomTx {
    store: Store,
    pub(crate) tx: Transaction<'static, Any>,
    pub(crate) row: RoomRow,
    clients: Vec<PendingItem>,
}

impl std::fmt::Debug for RoomTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomTx")
            .field("room", &self.row.room_uri)
            .field("next_seq", &self.row.next_seq)
            .finish_non_exhaustive()
    }
}

impl RoomTx {
    /// The room as it is now (with this transaction's changes).
    pub fn room(&self) -> &RoomRow {
        &self.row
    }

    /// Appends an accepted event with the hub's timestamp; returns its sequence number, one
    /// more than the previous event's (`STORE-room-seq`).
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

    /// Queues a body for a follower provider; returns its number in the (room, follower)
    /// stream, 1, 2, 3, … (the `mimi-notify-seq` of `mimi_proto::inbox`).
    pub async fn enqueue_outbox(
        &mut self,
        follower: &str,
        event_seq: u64,
        body: &[u8],
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        crate::outbox::enqueue(
            &mut self.tx,
            follower,
            &self.row.room_uri,
            event_seq,
            body,
            now_ms,
        )
        .await
    }

    /// Queues one body for several follower providers (each in its own stream), in two
    /// statements whatever their number. Followers must be distinct.
    pub async fn enqueue_outbox_many(
        &mut self,
        followers: &[&str],
        event_seq: u64,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        crate::outbox::enqueue_many(
            &mut self.tx,
            followers,
            &self.row.room_uri,
            event_seq,
            body,
            now_ms,
        )
        .await
    }

    /// Queues a body for a local client of this room. The queue row is written at commit,
    /// with those of the other clients in client order (a fixed lock order, so two rooms'
    /// transactions cannot deadlock on PostgreSQL).
    pub async fn enqueue_client(
        &mut self,
        client: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.clients.push(PendingItem {
            client: client.to_owned(),
            room: self.row.room_uri.clone(),
            body: body.to_vec(),
            now_ms,
        });
        Ok(())
    }

    /// Adds a local client to this room, with the transaction.
    pub async fn add_member(&mut self, client: &str) -> Result<(), StoreError> {
        sqlx::query(ADD_MEMBER)
            .bind(&self.row.room_uri)
            .bind(client)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Removes a local client from this room, with the transaction.
    pub async fn remove_member(&mut self, client: &str) -> Result<(), StoreError> {
        sqlx::query(REMOVE_MEMBER)
            .bind(&self.row.room_uri)
            .bind(client)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The local clients of this room as this transaction sees them.
    pub async fn members(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(MEMBERS)
            .bind(&self.row.room_uri)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// Replaces the room's state and epoch (written at commit).
    pub fn set_state(&mut self, state: Vec<u8>, epoch: u64) {
        self.row.state = state;
        self.row.epoch = epoch;
    }

    /// Replaces the room's policy blob (written at commit).
    pub fn set_policy(&mut self, policy: Vec<u8>) {
        self.row.policy = policy;
    }

    /// Writes the room row and the client-queue rows and commits everything at once; wakes
    /// the clients waiting on their queues. Returns the room as committed.
    pub async fn commit(mut self) -> Result<RoomRow, StoreError> {
        sqlx::query("UPDATE rooms SET state = $1, policy = $2, epoch = $3, next_seq = $4, last_ts_ms = $5 WHERE room_uri = $6")
            .bind(self.row.state.as_slice())
            .bind(self.row.policy.as_slice())
            .bind(i(self.row.epoch))
            .bind(i(self.row.next_seq))
            .bind(i(self.row.last_ts_ms))
            .bind(&self.row.room_uri)
            .execute(&mut *self.tx)
            .await?;
        let woken = write_client_items(&mut self.tx, &mut self.clients).await?;
        self.tx.commit().await?;
        self.store.waker.wake(&woken);
        Ok(self.row)
    }

    /// Gives up: nothing written through this transaction remains (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
