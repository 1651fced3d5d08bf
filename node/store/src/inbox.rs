//! A follower's inbox: dedupe of notify items and the sequenced stream per (hub, room).
//!
//! The record that an item was seen and the client-queue rows it produces are written in one
//! transaction (`STORE-inbox-dedupe`): a crash between the two can neither lose the item (seen
//! but never queued) nor deliver it twice (queued but not seen).

use crate::db::{Store, WriteTx, i, u};
use crate::error::StoreError;
use crate::queue::{PendingItem, announce, write_client_items};
use crate::sql::query;

const SEEN: &str = "INSERT INTO inbox_seen (item_hash, seen_ms) VALUES ($1, $2) ON CONFLICT (item_hash) DO NOTHING";

impl Store {
    /// Delivers one notify item exactly once (`STORE-inbox-dedupe`): records `item_hash`
    /// (e.g. SHA-256 of the item) and, only if it was not seen before, appends `items`
    /// `(client, room, body)` to the client queues, all in one transaction. Returns whether
    /// the item was new.
    pub async fn deliver_inbox(
        &self,
        item_hash: &[u8],
        items: &[(String, String, Vec<u8>)],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = query(SEEN)
            .bind(item_hash)
            .bind(i(now_ms))
            .execute(&mut tx)
            .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut pending: Vec<PendingItem> = items
            .iter()
            .map(|(client, room, body)| PendingItem {
                client: client.clone(),
                room: room.clone(),
                body: body.clone(),
                now_ms,
            })
            .collect();
        let woken = write_client_items(&mut tx, &mut pending).await?;
        announce(self, &mut tx, &woken, false).await?;
        tx.commit().await?;
        self.waker.wake(&woken);
        Ok(true)
    }

    /// Records an item hash on its own; `true` if it was new. Prefer
    /// [`Store::deliver_inbox`] or [`InboxTx::first_seen`]: used alone, an item whose queue
    /// rows are written afterwards is lost if the process stops in between.
    pub async fn inbox_first_seen(
        &self,
        item_hash: &[u8],
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query(SEEN)
            .bind(item_hash)
            .bind(i(now_ms))
            .execute(&mut turn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets item hashes seen before `before_ms` (a hub repeats a body within hours, not
    /// weeks). Returns how many.
    pub async fn prune_inbox_seen(&self, before_ms: u64) -> Result<u64, StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("DELETE FROM inbox_seen WHERE seen_ms < $1")
            .bind(i(before_ms))
            .execute(&mut turn)
            .await?;
        Ok(done.rows_affected())
    }

    /// Starts the serialised transaction of a follower's inbox stream for one (hub, room)
    /// (`STORE-inbox-order`): the stream row is created if new (next item 1) and locked
    /// (`FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite); the items held because they
    /// arrived early are loaded.
    pub async fn begin_inbox(&self, hub: &str, room: &str) -> Result<InboxTx, StoreError> {
        let mut tx = self.begin_write().await?;
        query(
            "INSERT INTO inbox_streams (hub, room_uri, next_seq) VALUES ($1, $2, 1)
             ON CONFLICT (hub, room_uri) DO NOTHING",
        )
        .bind(hub)
        .bind(room)
        .execute(&mut tx)
        .await?;
        let sql = self.sql_for(
            "SELECT next_seq FROM inbox_streams WHERE hub = $1 AND room_uri = $2",
            "SELECT next_seq FROM inbox_streams WHERE hub = $1 AND room_uri = $2 FOR UPDATE",
        );
        let row = query(sql).bind(hub).bind(room).fetch_one(&mut tx).await?;
        let next_seq = u(row.try_get(0)?);
        let held =
            query("SELECT seq, body FROM inbox_held WHERE hub = $1 AND room_uri = $2 ORDER BY seq")
                .bind(hub)
                .bind(room)
                .fetch_all(&mut tx)
                .await?
                .iter()
                .map(|r| Ok((u(r.try_get(0)?), r.try_get(1)?)))
                .collect::<Result<Vec<(u64, Vec<u8>)>, StoreError>>()?;
        Ok(InboxTx {
            store: self.clone(),
            tx,
            hub: hub.to_owned(),
            room: room.to_owned(),
            next_seq,
            held,
            clients: Vec::new(),
            members: None,
        })
    }
}

/// The serialised transaction of a follower's inbox stream for one (hub, room): what
/// `mimi_proto::inbox` decides is written here and committed at once.
pub struct InboxTx {
    store: Store,
    tx: WriteTx,
    hub: String,
    room: String,
    next_seq: u64,
    held: Vec<(u64, Vec<u8>)>,
    clients: Vec<PendingItem>,
    /// The room's local members as read in this transaction (and changed by it): read once
    /// per notify body, not once per item.
    members: Option<Vec<String>>,
}

impl std::fmt::Debug for InboxTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxTx")
            .field("hub", &self.hub)
            .field("room", &self.room)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl InboxTx {
    /// The number of the next item to deliver (the stream starts at 1).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The items held because they arrived before their turn, by number (as loaded).
    pub fn held(&self) -> &[(u64, Vec<u8>)] {
        &self.held
    }

    /// Sets the number of the next item to deliver (written at commit).
    pub fn set_next_seq(&mut self, next_seq: u64) {
        self.next_seq = next_seq;
    }

    /// Records an item hash with this transaction; `true` if it was new
    /// (`STORE-inbox-dedupe`).
    pub async fn first_seen(&mut self, item_hash: &[u8], now_ms: u64) -> Result<bool, StoreError> {
        let done = query(SEEN)
            .bind(item_hash)
            .bind(i(now_ms))
            .execute(&mut self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Holds an item that arrived early (holding the same number again keeps the first).
    pub async fn hold(&mut self, seq: u64, body: &[u8]) -> Result<(), StoreError> {
        query(
            "INSERT INTO inbox_held (hub, room_uri, seq, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (hub, room_uri, seq) DO NOTHING",
        )
        .bind(&self.hub)
        .bind(&self.room)
        .bind(i(seq))
        .bind(body)
        .execute(&mut self.tx)
        .await?;
        Ok(())
    }

    /// Drops a held item (it was delivered or is obsolete).
    pub async fn release_held(&mut self, seq: u64) -> Result<(), StoreError> {
        query("DELETE FROM inbox_held WHERE hub = $1 AND room_uri = $2 AND seq = $3")
            .bind(&self.hub)
            .bind(&self.room)
            .bind(i(seq))
            .execute(&mut self.tx)
            .await?;
        Ok(())
    }

    /// Queues a body for a local client (written at commit, in client order).
    pub async fn enqueue_client(
        &mut self,
        client: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.clients.push(PendingItem {
            client: client.to_owned(),
            room: self.room.clone(),
            body: body.to_vec(),
            now_ms,
        });
        Ok(())
    }

    /// The room's local clients as this transaction sees them.
    pub async fn members(&mut self) -> Result<Vec<String>, StoreError> {
        if let Some(m) = &self.members {
            return Ok(m.clone());
        }
        let rows =
            query("SELECT client_uri FROM room_members WHERE room_uri = $1 ORDER BY client_uri")
                .bind(&self.room)
                .fetch_all(&mut self.tx)
                .await?;
        let m = rows
            .iter()
            .map(|r| r.try_get(0).map_err(StoreError::from))
            .collect::<Result<Vec<String>, _>>()?;
        self.members = Some(m.clone());
        Ok(m)
    }

    /// Adds a local client to the room, with the transaction (a Welcome delivered to it).
    pub async fn add_member(&mut self, client: &str) -> Result<(), StoreError> {
        query("INSERT INTO room_members (room_uri, client_uri) VALUES ($1, $2) ON CONFLICT (room_uri, client_uri) DO NOTHING")
            .bind(&self.room)
            .bind(client)
            .execute(&mut self.tx)
            .await?;
        if let Some(m) = self.members.as_mut()
            && !m.iter().any(|c| c == client)
        {
            m.push(client.to_owned());
            m.sort();
        }
        Ok(())
    }

    /// Removes a local client from the room, with the transaction.
    pub async fn remove_member(&mut self, client: &str) -> Result<(), StoreError> {
        query("DELETE FROM room_members WHERE room_uri = $1 AND client_uri = $2")
            .bind(&self.room)
            .bind(client)
            .execute(&mut self.tx)
            .await?;
        if let Some(m) = self.members.as_mut() {
            m.retain(|c| c != client);
        }
        Ok(())
    }

    /// The room's stored roster (`STORE-roster`), read with the transaction.
    pub async fn roster(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let row = query("SELECT roster FROM follower_rosters WHERE room_uri = $1")
            .bind(&self.room)
            .fetch_optional(&mut self.tx)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Replaces the room's roster (`None`: the follower drops it), with the transaction.
    pub async fn set_roster(&mut self, roster: Option<&[u8]>) -> Result<(), StoreError> {
        query("DELETE FROM follower_rosters WHERE room_uri = $1")
            .bind(&self.room)
            .execute(&mut self.tx)
            .await?;
        if let Some(r) = roster {
            query("INSERT INTO follower_rosters (room_uri, roster) VALUES ($1, $2)")
                .bind(&self.room)
                .bind(r)
                .execute(&mut self.tx)
                .await?;
        }
        Ok(())
    }

    /// The local client a KeyPackageRef belongs to (routing a Welcome), read with the
    /// transaction.
    pub async fn client_of_key_package(
        &mut self,
        kp_ref: &[u8],
    ) -> Result<Option<String>, StoreError> {
        let row = query("SELECT client_uri FROM key_packages WHERE kp_ref = $1")
            .bind(kp_ref)
            .fetch_optional(&mut self.tx)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        })
    }

    /// Writes the stream position and the client-queue rows and commits everything at once;
    /// wakes the clients waiting on their queues.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        query("UPDATE inbox_streams SET next_seq = $1 WHERE hub = $2 AND room_uri = $3")
            .bind(i(self.next_seq))
            .bind(&self.hub)
            .bind(&self.room)
            .execute(&mut self.tx)
            .await?;
        let woken = write_client_items(&mut self.tx, &mut self.clients).await?;
        announce(&self.store, &mut self.tx, &woken, false).await?;
        self.tx.commit().await?;
        self.store.waker.wake(&woken);
        Ok(())
    }

    /// Gives up: nothing written through this transaction remains (dropping it does the same).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
