//! Client queues: per device, numbered 1, 2, 3, …, fetched after a cursor, removed only when
//! acknowledged (`STORE-queue`).

use crate::db::{Store, WriteTx, i, u};
use crate::error::StoreError;
use crate::sql::{AssertSqlSafe, query};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// One item of a client's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueItem {
    /// Its cursor (the client acknowledges up to it).
    pub seq: u64,
    /// The room.
    pub room_uri: String,
    /// The body (a FanoutMessage or Welcome, as the node delivers it).
    pub body: Vec<u8>,
}

/// A queue row to be written with a transaction.
#[derive(Clone, Debug)]
pub(crate) struct PendingItem {
    pub(crate) client: String,
    pub(crate) room: String,
    pub(crate) body: Vec<u8>,
    pub(crate) now_ms: u64,
}

/// Writes queue rows in client order (a stable sort keeps each client's own order), so every
/// transaction takes the per-client counter locks in the same order. Returns the clients.
///
/// In multi-row statements (`STORE-queue-batch`): one upsert per chunk of clients advances
/// each counter by that client's number of items and returns the new counters, one insert
/// per chunk of rows writes the items; before, every item cost two statements, each a round
/// trip to the database (to SQLite's worker thread), which a fanout to many local devices
/// or a catch-up of many items paid per item.
pub(crate) async fn write_client_items(
    tx: &mut WriteTx,
    items: &mut [PendingItem],
) -> Result<Vec<String>, StoreError> {
    items.sort_by(|a, b| a.client.cmp(&b.client));
    // (client, how many items), in client order.
    let mut counts: Vec<(String, u64)> = Vec::new();
    for it in items.iter() {
        match counts.last_mut() {
            Some((c, n)) if *c == it.client => *n += 1,
            _ => counts.push((it.client.clone(), 1)),
        }
    }
    // The first number of each client's items.
    let mut first: HashMap<String, u64> = HashMap::with_capacity(counts.len());
    for chunk in counts.chunks(CLIENTS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|k| format!("(${}, ${})", 2 * k + 1, 2 * k + 2))
            .collect();
        // A new counter starts at 1: after n items it is 1 + n. An existing one moves by n
        // (excluded.next_seq - 1).
        let sql = format!(
            "INSERT INTO client_cursors (client_uri, next_seq) VALUES {}
             ON CONFLICT (client_uri) DO UPDATE SET next_seq = client_cursors.next_seq + excluded.next_seq - 1
             RETURNING client_uri, next_seq",
            values.join(", ")
        );
        let mut q = query(AssertSqlSafe(sql));
        for (c, n) in chunk {
            q = q.bind(c.as_str()).bind(i(n + 1));
        }
        let rows = q.fetch_all(&mut *tx).await?;
        for r in &rows {
            let c: String = r.try_get(0)?;
            let next = u(r.try_get::<i64, _>(1)?);
            let n = chunk
                .iter()
                .find(|(k, _)| *k == c)
                .map(|(_, n)| *n)
                .ok_or(StoreError::Backend(sqlx::Error::RowNotFound))?;
            first.insert(c, next.saturating_sub(n));
        }
    }
    let mut numbered: Vec<(u64, &PendingItem)> = Vec::with_capacity(items.len());
    for it in items.iter() {
        let seq = first
            .get_mut(&it.client)
            .ok_or(StoreError::Backend(sqlx::Error::RowNotFound))?;
        numbered.push((*seq, it));
        *seq += 1;
    }
    for chunk in numbered.chunks(ROWS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|k| {
                let b = 5 * k;
                format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO client_queue (client_uri, seq, room_uri, body, created_ms) VALUES {}",
            values.join(", ")
        );
        let mut q = query(AssertSqlSafe(sql));
        for (seq, it) in chunk {
            q = q
                .bind(it.client.as_str())
                .bind(i(*seq))
                .bind(it.room.as_str())
                .bind(it.body.as_slice())
                .bind(i(it.now_ms));
        }
        q.execute(&mut *tx).await?;
    }
    Ok(counts.into_iter().map(|(c, _)| c).collect())
}

/// Clients per counter statement (2 parameters each).
const CLIENTS_PER_STATEMENT: usize = 200;
/// Queue rows per insert (5 parameters each).
const ROWS_PER_STATEMENT: usize = 100;

/// Wakes long-polls when their client's queue grows, and the outbox worker when outbox rows
/// are committed (`STORE-wake`). Commits of this store wake at once, in this process; on
/// PostgreSQL the same commits also announce themselves with `NOTIFY` (delivered when the
/// transaction commits, never for a rolled-back one), and every store listens, so several
/// node processes of one provider sharing a database wake each other's waiters too. A store
/// ignores its own announcements (`origin`): they were delivered in-process already.
pub(crate) struct QueueWaker {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    /// Woken (`notify_one`) when outbox work was committed, here or by another process.
    pub(crate) outbox: Arc<Notify>,
    /// This store's name in its announcements: random, one per opened store.
    pub(crate) origin: String,
}

impl Default for QueueWaker {
    fn default() -> Self {
        let mut r = [0u8; 8];
        // An origin only has to differ from the other stores' on the database; without
        // randomness the process id and time do.
        if getrandom::getrandom(&mut r).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or_default();
            r = (t ^ u64::from(std::process::id())).to_be_bytes();
        }
        Self {
            waiting: Mutex::default(),
            outbox: Arc::new(Notify::new()),
            origin: r.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The PostgreSQL channel of [`QueueWaker`]'s announcements (`STORE-wake`).
pub(crate) const WAKE_CHANNEL: &str = "mimi_wake";

/// Longest announcement payload (PostgreSQL refuses 8,000 bytes or more).
const WAKE_PAYLOAD_MAX: usize = 7_000;

impl QueueWaker {
    fn subscribe(&self, client: &str) -> Arc<Notify> {
        let mut m = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        m.entry(client.to_owned()).or_default().clone()
    }

    fn unsubscribe(&self, client: &str, n: Arc<Notify>) {
        let mut m = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        // Ours and the map's: nobody else waits, so the entry can go.
        if Arc::strong_count(&n) <= 2 {
            m.remove(client);
        }
    }

    pub(crate) fn wake(&self, clients: &[String]) {
        let m = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for c in clients {
            if let Some(n) = m.get(c) {
                n.notify_waiters();
            }
        }
    }

    /// Wakes every waiter and the outbox worker: after the listener lost its connection,
    /// announcements may have been missed (a waiter that finds nothing waits again).
    pub(crate) fn wake_all(&self) {
        let m = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for n in m.values() {
            n.notify_waiters();
        }
        self.outbox.notify_one();
    }

    /// The payloads announcing a commit that wrote to `clients`' queues and, if `outbox`,
    /// outbox rows: `<origin> <o|->` and then one client per line, split so that no payload
    /// is too long for PostgreSQL. None when there is nothing to announce.
    pub(crate) fn announcements(&self, clients: &[String], outbox: bool) -> Vec<String> {
        if clients.is_empty() && !outbox {
            return Vec::new();
        }
        let head = format!("{} {}", self.origin, if outbox { 'o' } else { '-' });
        let mut out = vec![head.clone()];
        for c in clients {
            let last = out.last_mut().map(|p| p.len()).unwrap_or_default();
            if last + 1 + c.len() > WAKE_PAYLOAD_MAX {
                out.push(head.clone());
            }
            if let Some(p) = out.last_mut() {
                p.push('\n');
                p.push_str(c);
            }
        }
        out
    }

    /// Applies an announcement received from the database; its own are ignored.
    pub(crate) fn received(&self, payload: &str) {
        let mut lines = payload.split('\n');
        let Some(head) = lines.next() else { return };
        let Some((origin, flag)) = head.split_once(' ') else {
            return;
        };
        if origin == self.origin {
            return;
        }
        if flag == "o" {
            self.outbox.notify_one();
        }
        let m = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for c in lines {
            if let Some(n) = m.get(c) {
                n.notify_waiters();
            }
        }
    }
}

/// Announces a transaction's wake-ups to the other processes on the database before it
/// commits (`STORE-wake`); nothing on SQLite, whose files are one process's.
pub(crate) async fn announce(
    store: &Store,
    tx: &mut WriteTx,
    clients: &[String],
    outbox: bool,
) -> Result<(), StoreError> {
    if !matches!(tx, WriteTx::Pg(_)) {
        return Ok(());
    }
    for payload in store.waker.announcements(clients, outbox) {
        query("SELECT pg_notify($1, $2)")
            .bind(WAKE_CHANNEL)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Appends items `(client, room, body)` to client queues in one transaction.
    pub async fn enqueue(
        &self,
        items: &[(String, String, Vec<u8>)],
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut pending: Vec<PendingItem> = items
            .iter()
            .map(|(client, room, body)| PendingItem {
                client: client.clone(),
                room: room.clone(),
                body: body.clone(),
                now_ms,
            })
            .collect();
        let mut tx = self.begin_write().await?;
        let woken = write_client_items(&mut tx, &mut pending).await?;
        announce(self, &mut tx, &woken, false).await?;
        tx.commit().await?;
        self.waker.wake(&woken);
        Ok(())
    }

    /// A client's queue after `cursor` (0: from the start), oldest first, at most `limit`.
    /// Nothing is removed before [`Store::ack`] (`STORE-queue`).
    pub async fn fetch_queue(
        &self,
        client: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let rows = query("SELECT seq, room_uri, body FROM client_queue WHERE client_uri = $1 AND seq > $2 ORDER BY seq LIMIT CAST($3 AS BIGINT)")
            .bind(client)
            .bind(i(after))
            .bind(i64::from(limit))
            .fetch_all(self)
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

    /// [`Store::fetch_queue`] that waits up to `wait` for an item when there is none
    /// (long-poll). An item committed by this store wakes it at once; on PostgreSQL so does
    /// one committed by another process sharing the database (`STORE-wake`). A wake-up that
    /// finds nothing (another process's announcement that lost a race, a reconnect) waits
    /// again for what is left of `wait`.
    pub async fn wait_queue(
        &self,
        client: &str,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let until = tokio::time::Instant::now() + wait;
        let n = self.waker.subscribe(client);
        let items = loop {
            let notified = n.notified();
            tokio::pin!(notified);
            // Registered before the fetch, so a commit between the fetch and the wait wakes us.
            notified.as_mut().enable();
            match self.fetch_queue(client, after, limit).await {
                Ok(items) if items.is_empty() && tokio::time::Instant::now() < until => {
                    if tokio::time::timeout_at(until, notified).await.is_err() {
                        break self.fetch_queue(client, after, limit).await;
                    }
                }
                other => break other,
            }
        };
        self.waker.unsubscribe(client, n);
        items
    }

    /// Acknowledges a client's queue up to and including `cursor`: those items are removed.
    /// Returns how many.
    pub async fn ack(&self, client: &str, cursor: u64) -> Result<u64, StoreError> {
        let mut turn = self.write_turn().await?;
        let done = query("DELETE FROM client_queue WHERE client_uri = $1 AND seq <= $2")
            .bind(client)
            .bind(i(cursor))
            .execute(&mut turn)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many items wait in a client's queue.
    pub async fn queue_len(&self, client: &str) -> Result<u64, StoreError> {
        let row = query("SELECT COUNT(*) FROM client_queue WHERE client_uri = $1")
            .bind(client)
            .fetch_one(self)
            .await?;
        Ok(u(row.try_get(0)?))
    }
}
