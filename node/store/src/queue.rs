//! Client queues: per device, numbered 1, 2, 3, …, fetched after a cursor, removed only when
//! acknowledged (`STORE-queue`).

use crate::db::{Store, i, u};
use crate::error::StoreError;
use sqlx::{Any, Row, Transaction};
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
pub(crate) async fn write_client_items(
    tx: &mut Transaction<'static, Any>,
    items: &mut [PendingItem],
) -> Result<Vec<String>, StoreError> {
    items.sort_by(|a, b| a.client.cmp(&b.client));
    let mut clients: Vec<String> = Vec::new();
    for it in items.iter() {
        let row = sqlx::query(
            "INSERT INTO client_cursors (client_uri, next_seq) VALUES ($1, 2)
             ON CONFLICT (client_uri) DO UPDATE SET next_seq = client_cursors.next_seq + 1
             RETURNING next_seq",
        )
        .bind(&it.client)
        .fetch_one(&mut **tx)
        .await?;
        let seq = u(row.try_get::<i64, _>(0)?).saturating_sub(1);
        sqlx::query("INSERT INTO client_queue (client_uri, seq, room_uri, body, created_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(&it.client)
            .bind(i(seq))
            .bind(&it.room)
            .bind(it.body.as_slice())
            .bind(i(it.now_ms))
            .execute(&mut **tx)
            .await?;
        if clients.last() != Some(&it.client) {
            clients.push(it.client.clone());
        }
    }
    Ok(clients)
}

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
        let done = sqlx::query("DELETE FROM client_queue WHERE client_uri = $1 AND seq <= $2")
            .bind(client)
            .bind(i(cursor))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// How many items wait in a client's queue.
    pub async fn queue_len(&self, client: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM client_queue WHERE client_uri = $1")
            .bind(client)
            .fetch_one(&self.pool)
            .await?;
        Ok(u(row.try_get(0)?))
    }
}
