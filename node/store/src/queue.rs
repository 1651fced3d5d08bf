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

/// Wakes long-polls of this process when their client's queue grows. (Other processes
/// sharing a PostgreSQL database are not seen: their waiters find new rows at their timeout.)
#[derive(Default)]
pub(crate) struct QueueWaker {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

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
    /// (long-poll). An item committed by this process wakes it at once; one committed by
    /// another process sharing the database is found when the wait ends.
    pub async fn wait_queue(
        &self,
        client: &str,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<Vec<QueueItem>, StoreError> {
        let n = self.waker.subscribe(client);
        let items = {
            let notified = n.notified();
            tokio::pin!(notified);
            // Registered before the fetch, so a commit between the fetch and the wait wakes us.
            notified.as_mut().enable();
            let items = self.fetch_queue(client, after, limit).await?;
            if items.is_empty() {
                let _ = tokio::time::timeout(wait, notified).await;
                self.fetch_queue(client, after, limit).await
            } else {
                Ok(items)
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
