//! Rooms, their serialised transaction, the per-room event log and local members.

use crate::db::{Store, WriteTx, i, u};
use crate::error::StoreError;
use crate::queue::{PendingItem, announce, write_client_items};
use crate::sql::{AssertSqlSafe, Exec, Row, query};

/// A room as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRow {
    /// The room.
    pub room_uri: String,
    /// Its hub (a provider domain).
    pub hub: String,
    /// How many times the room's state was written (`STORE-room-entries`): a decoded copy of
    /// the state made at this version is current. The state itself is read apart
    /// ([`Store::room_state`], [`RoomTx::state`]): a message does not read it.
    pub state_version: u64,
    /// The serialized policy (empty if none was stored).
    pub policy: Vec<u8>,
    /// Its epoch.
    pub epoch: u64,
    /// The sequence number the next accepted event gets (the first is 1).
    pub next_seq: u64,
    /// The hub timestamp of the last accepted event (0 before the first).
    pub last_ts_ms: u64,
}

/// A hosted room's stored state (`STORE-room-entries`): the head (the room row) and the
/// entries (their own rows, in key order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The head.
    pub head: Vec<u8>,
    /// The entries, by key.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The state version this is ([`RoomRow::state_version`]).
    pub version: u64,
}

/// Entry changes of a room's state: `(key, Some(value))` writes, `(key, None)` deletes.
pub type EntryChanges = Vec<(Vec<u8>, Option<Vec<u8>>)>;

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

pub(crate) const ROOM_COLS: &str =
    "room_uri, hub, state_version, policy, epoch, next_seq, last_ts_ms";

pub(crate) fn room_row(r: &Row) -> Result<RoomRow, StoreError> {
    Ok(RoomRow {
        room_uri: r.try_get(0)?,
        hub: r.try_get(1)?,
        state_version: u(r.try_get(2)?),
        policy: r.try_get::<Option<Vec<u8>>, _>(3)?.unwrap_or_default(),
        epoch: u(r.try_get(4)?),
        next_seq: u(r.try_get(5)?),
        last_ts_ms: u(r.try_get(6)?),
    })
}

const ENTRIES: &str = "SELECT k, v FROM room_state_entries WHERE room_uri = $1 ORDER BY k";

async fn read_state(
    conn: &mut impl Exec,
    room: &str,
    head_sql: &'static str,
) -> Result<Option<StoredState>, StoreError> {
    let Some(row) = query(head_sql).bind(room).fetch_optional(conn.on()).await? else {
        return Ok(None);
    };
    let head: Vec<u8> = row.try_get(0)?;
    let version = u(row.try_get(1)?);
    let rows = query(ENTRIES).bind(room).fetch_all(conn.on()).await?;
    let entries = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(StoredState {
        head,
        entries,
        version,
    }))
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
        let mut turn = self.write_turn().await?;
        query("INSERT INTO rooms (room_uri, hub, state, policy, epoch, next_seq, last_ts_ms) VALUES ($1, $2, $3, $4, $5, 1, 0)")
            .bind(room)
            .bind(hub)
            .bind(state)
            .bind(policy)
            .bind(i(epoch))
            .execute(&mut turn)
            .await
            .map_err(|e| StoreError::from_insert(e, || format!("room {room}")))?;
        Ok(())
    }

    /// Reads a room without locking it.
    pub async fn room(&self, room: &str) -> Result<Option<RoomRow>, StoreError> {
        let sql = AssertSqlSafe(format!("SELECT {ROOM_COLS} FROM rooms WHERE room_uri = $1"));
        let row = query(sql).bind(room).fetch_optional(self).await?;
        row.as_ref().map(room_row).transpose()
    }

    /// A room's stored state, head and entries as of one moment (read in one transaction; on
    /// PostgreSQL the room row is share-locked so that no room transaction commits between
    /// the two reads).
    pub async fn room_state(&self, room: &str) -> Result<Option<StoredState>, StoreError> {
        let mut tx = self.begin_read().await?;
        let sql = self.sql_for(
            "SELECT state, state_version FROM rooms WHERE room_uri = $1",
            "SELECT state, state_version FROM rooms WHERE room_uri = $1 FOR SHARE",
        );
        let s = read_state(&mut tx, room, sql).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Bytes of row values the room transactions of this store handle wrote so far (events,
    /// state head and entries, outbox and client-queue bodies): what a commit costs in
    /// storage (mimi-bench).
    pub fn room_bytes_written(&self) -> u64 {
        self.room_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many rooms (metrics).
    pub async fn room_count(&self) -> Result<u64, StoreError> {
        let row = query("SELECT COUNT(*) FROM rooms").fetch_one(self).await?;
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
            "SELECT room_uri, hub, state_version, policy, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1",
            "SELECT room_uri, hub, state_version, policy, epoch, next_seq, last_ts_ms FROM rooms WHERE room_uri = $1 FOR UPDATE",
        );
        let row = query(sql)
            .bind(room)
            .fetch_optional(&mut tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("room {room}")))?;
        let row = room_row(&row)?;
        Ok(RoomTx {
            store: self.clone(),
            tx,
            row,
            clients: Vec::new(),
            state: None,
            policy_changed: false,
            outbox_written: false,
            written: 0,
        })
    }

    /// Retention of the hub's event log (`STORE-retention`): deletes events older than
    /// `before_ms`. Returns how many went. (Expire the outbox first: it finds the age of its
    /// rows through their events.)
    pub async fn prune_room_events(&self, before_ms: u64) -> Result<u64, StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("DELETE FROM room_events WHERE ts_ms < $1")
            .bind(i(before_ms))
            .execute(&mut turn)
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
        let rows = query(
            "SELECT seq, ts_ms, body FROM room_events WHERE room_uri = $1 AND seq > $2 ORDER BY seq LIMIT CAST($3 AS BIGINT)",
        )
        .bind(room)
        .bind(i(after))
        .bind(i64::from(limit))
        .fetch_all(self)
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
        let mut turn = self.write_turn().await?;
        query(ADD_MEMBER)
            .bind(room)
            .bind(client)
            .execute(&mut turn)
            .await?;
        Ok(())
    }

    /// Removes a local client from a room.
    pub async fn remove_member(&self, room: &str, client: &str) -> Result<(), StoreError> {
        let mut turn = self.write_turn().await?;
        query(REMOVE_MEMBER)
            .bind(room)
            .bind(client)
            .execute(&mut turn)
            .await?;
        Ok(())
    }

    /// The local clients of a room, by URI.
    pub async fn members(&self, room: &str) -> Result<Vec<String>, StoreError> {
        let rows = query(MEMBERS).bind(room).fetch_all(self).await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// A followed room's roster (`STORE-roster`: the leaves of its tree as this follower
    /// tracks them), `None` when it keeps none.
    pub async fn follower_roster(&self, room: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = query("SELECT roster FROM follower_rosters WHERE room_uri = $1")
            .bind(room)
            .fetch_optional(self)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// The rooms a local client is in, by URI.
    pub async fn rooms_of_client(&self, client: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            query("SELECT room_uri FROM room_members WHERE client_uri = $1 ORDER BY room_uri")
                .bind(client)
                .fetch_all(self)
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
    pub(crate) tx: WriteTx,
    pub(crate) row: RoomRow,
    clients: Vec<PendingItem>,
    /// The new head and the entry changes, written at commit.
    state: Option<(Vec<u8>, EntryChanges)>,
    policy_changed: bool,
    /// Whether outbox rows were written (the commit wakes the outbox workers, `STORE-wake`).
    outbox_written: bool,
    /// Bytes of row values written through this transaction.
    written: u64,
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
        self.written += body.len() as u64;
        query("INSERT INTO room_events (room_uri, seq, ts_ms, body) VALUES ($1, $2, $3, $4)")
            .bind(&self.row.room_uri)
            .bind(i(seq))
            .bind(i(ts_ms))
            .bind(body)
            .execute(&mut self.tx)
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
        self.written += body.len() as u64;
        self.outbox_written = true;
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
        self.written += (body.len() * followers.len()) as u64;
        self.outbox_written |= !followers.is_empty();
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
        self.written += body.len() as u64;
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
        query(ADD_MEMBER)
            .bind(&self.row.room_uri)
            .bind(client)
            .execute(&mut self.tx)
            .await?;
        Ok(())
    }

    /// Removes a local client from this room, with the transaction.
    pub async fn remove_member(&mut self, client: &str) -> Result<(), StoreError> {
        query(REMOVE_MEMBER)
            .bind(&self.row.room_uri)
            .bind(client)
            .execute(&mut self.tx)
            .await?;
        Ok(())
    }

    /// The local clients of this room as this transaction sees them.
    pub async fn members(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = query(MEMBERS)
            .bind(&self.row.room_uri)
            .fetch_all(&mut self.tx)
            .await?;
        rows.iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect()
    }

    /// The room's stored state, read through this transaction (the room is locked).
    pub async fn state(&mut self) -> Result<StoredState, StoreError> {
        read_state(
            &mut self.tx,
            &self.row.room_uri,
            "SELECT state, state_version FROM rooms WHERE room_uri = $1",
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("room {}", self.row.room_uri)))
    }

    /// Replaces the room's whole state by one head without entries (they are deleted) and sets
    /// its epoch (written at commit).
    pub fn set_state(&mut self, state: Vec<u8>, epoch: u64) {
        self.state = Some((state, vec![(Vec::new(), None)]));
        self.row.epoch = epoch;
    }

    /// Writes the room's new head and the entries that changed (`Some`: write, `None`:
    /// delete) and sets its epoch, at commit (`STORE-room-entries`). The state version goes
    /// up by one.
    pub fn persist_state(&mut self, head: Vec<u8>, changes: EntryChanges, epoch: u64) {
        self.state = Some((head, changes));
        self.row.epoch = epoch;
    }

    /// Replaces the room's policy blob (written at commit).
    pub fn set_policy(&mut self, policy: Vec<u8>) {
        self.row.policy = policy;
        self.policy_changed = true;
    }

    /// Writes the room row and the client-queue rows and commits everything at once; wakes
    /// the clients waiting on their queues. Returns the room as committed.
    pub async fn commit(mut self) -> Result<RoomRow, StoreError> {
        // Only what changed is written: a message leaves the state and the policy alone.
        if let Some((head, changes)) = self.state.take() {
            self.row.state_version += 1;
            self.written += head.len() as u64;
            query(
                "UPDATE rooms SET state = $1, state_version = $2, epoch = $3 WHERE room_uri = $4",
            )
            .bind(head.as_slice())
            .bind(i(self.row.state_version))
            .bind(i(self.row.epoch))
            .bind(&self.row.room_uri)
            .execute(&mut self.tx)
            .await?;
            self.write_entries(&changes).await?;
        }
        if self.policy_changed {
            self.written += self.row.policy.len() as u64;
            query("UPDATE rooms SET policy = $1 WHERE room_uri = $2")
                .bind(self.row.policy.as_slice())
                .bind(&self.row.room_uri)
                .execute(&mut self.tx)
                .await?;
        }
        query("UPDATE rooms SET next_seq = $1, last_ts_ms = $2 WHERE room_uri = $3")
            .bind(i(self.row.next_seq))
            .bind(i(self.row.last_ts_ms))
            .bind(&self.row.room_uri)
            .execute(&mut self.tx)
            .await?;
        let woken = write_client_items(&mut self.tx, &mut self.clients).await?;
        announce(&self.store, &mut self.tx, &woken, self.outbox_written).await?;
        self.tx.commit().await?;
        self.store
            .room_bytes
            .fetch_add(self.written, std::sync::atomic::Ordering::Relaxed);
        self.store.waker.wake(&woken);
        Ok(self.row)
    }

    /// Entry changes; an empty key with `None` deletes every entry of the room. Upserts go
    /// in multi-row statements (a commit's changed tree nodes are one statement, not one per
    /// node).
    async fn write_entries(
        &mut self,
        changes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        let room = self.row.room_uri.clone();
        let mut upserts: Vec<(&[u8], &[u8])> = Vec::new();
        for (k, v) in changes {
            match v {
                None if k.is_empty() => {
                    query("DELETE FROM room_state_entries WHERE room_uri = $1")
                        .bind(&room)
                        .execute(&mut self.tx)
                        .await?;
                }
                None => {
                    query("DELETE FROM room_state_entries WHERE room_uri = $1 AND k = $2")
                        .bind(&room)
                        .bind(k.as_slice())
                        .execute(&mut self.tx)
                        .await?;
                }
                Some(v) => {
                    self.written += (k.len() + v.len()) as u64;
                    upserts.push((k, v));
                }
            }
        }
        // At most 300 rows (600 parameters and the room) per statement.
        for chunk in upserts.chunks(300) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| format!("($1, ${}, ${})", 2 * n + 2, 2 * n + 3))
                .collect();
            let sql = format!(
                "INSERT INTO room_state_entries (room_uri, k, v) VALUES {} ON CONFLICT (room_uri, k) DO UPDATE SET v = excluded.v",
                values.join(", ")
            );
            let mut q = query(AssertSqlSafe(sql)).bind(&room);
            for (k, v) in chunk {
                q = q.bind(*k).bind(*v);
            }
            q.execute(&mut self.tx).await?;
        }
        Ok(())
    }

    /// Gives up: nothing written through this transaction remains (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
