//! The hub's outbox: per follower provider, per room, a numbered stream of bodies to send.
//!
//! Work is leased per (follower, room) stream (`STORE-outbox-claim`): a worker that claims a
//! stream holds it until its lease ends, gives it back on retry, or drains it. A stream is
//! claimable only when its head (lowest number) is due, and the rows are handed out from the
//! head in order, so one stream is never sent by two workers at once nor out of order, and
//! a row waiting for its retry holds back the rows behind it (`STORE-outbox-order`). On
//! PostgreSQL the stream rows are locked with `FOR UPDATE SKIP LOCKED` while the lease is
//! taken, so concurrent workers (also in other processes) pass each other by.

use crate::db::{Store, WriteTx, i, u};
use crate::error::StoreError;
use crate::sql::{AssertSqlSafe, query};

/// One outbox item claimed by a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// The follower provider.
    pub follower: String,
    /// The room.
    pub room_uri: String,
    /// Its number in the (room, follower) stream, from 1.
    pub stream_seq: u64,
    /// The room event it carries.
    pub event_seq: u64,
    /// The body to send.
    pub body: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The worker that holds the lease.
    pub owner: String,
    /// The stream resumes at this number after the hub dropped its undelivered head
    /// (retention, `STORE-retention`); 0 when it never did.
    pub resume_seq: u64,
}

/// Outbox figures of one follower (metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxStats {
    /// The follower provider.
    pub follower: String,
    /// Rows waiting.
    pub depth: u64,
    /// Rows that failed at least once.
    pub retrying: u64,
    /// The most attempts of any row.
    pub max_attempts: u64,
}

/// Appends a row to the (follower, room) stream inside a room transaction; returns its number.
pub(crate) async fn enqueue(
    tx: &mut WriteTx,
    follower: &str,
    room: &str,
    event_seq: u64,
    body: &[u8],
    now_ms: u64,
) -> Result<u64, StoreError> {
    let row = query(
        "INSERT INTO outbox_streams (follower, room_uri, next_seq) VALUES ($1, $2, 2)
         ON CONFLICT (follower, room_uri) DO UPDATE SET next_seq = outbox_streams.next_seq + 1
         RETURNING next_seq",
    )
    .bind(follower)
    .bind(room)
    .fetch_one(&mut *tx)
    .await?;
    let stream_seq = u(row.try_get::<i64, _>(0)?).saturating_sub(1);
    query(
        "INSERT INTO outbox (follower, room_uri, stream_seq, event_seq, body, attempts, next_attempt_ms, lease_owner, lease_until_ms)
         VALUES ($1, $2, $3, $4, $5, 0, $6, '', 0)",
    )
    .bind(follower)
    .bind(room)
    .bind(i(stream_seq))
    .bind(i(event_seq))
    .bind(body)
    .bind(i(now_ms))
    .execute(&mut *tx)
    .await?;
    Ok(stream_seq)
}

/// [`enqueue`] for several followers at once (`STORE-outbox-batch`): one statement advances
/// every follower's stream counter and one copies the body into each follower's next row, so
/// the cost of a wide fanout does not grow by two round trips per follower.
pub(crate) async fn enqueue_many(
    tx: &mut WriteTx,
    followers: &[&str],
    room: &str,
    event_seq: u64,
    body: &[u8],
    now_ms: u64,
) -> Result<(), StoreError> {
    for chunk in followers.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|k| format!("(${}, $1, 2)", k + 2))
            .collect();
        let sql = format!(
            "INSERT INTO outbox_streams (follower, room_uri, next_seq) VALUES {}
             ON CONFLICT (follower, room_uri) DO UPDATE SET next_seq = outbox_streams.next_seq + 1",
            values.join(", ")
        );
        let mut q = query(AssertSqlSafe(sql)).bind(room);
        for f in chunk {
            q = q.bind(*f);
        }
        q.execute(&mut *tx).await?;
        let names: Vec<String> = (0..chunk.len()).map(|k| format!("${}", k + 5)).collect();
        let sql = format!(
            "INSERT INTO outbox (follower, room_uri, stream_seq, event_seq, body, attempts, next_attempt_ms, lease_owner, lease_until_ms)
             SELECT follower, room_uri, next_seq - 1, $1, $2, 0, $3, '', 0 FROM outbox_streams
             WHERE room_uri = $4 AND follower IN ({})",
            names.join(", ")
        );
        let mut q = query(AssertSqlSafe(sql))
            .bind(i(event_seq))
            .bind(body)
            .bind(i(now_ms))
            .bind(room);
        for f in chunk {
            q = q.bind(*f);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The claim's lease statement, with the row lock PostgreSQL takes (`$lock`).
macro_rules! lease_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox_streams SET lease_owner = $3, lease_until_ms = $4
             WHERE (follower, room_uri) IN (
               SELECT s.follower, s.room_uri FROM outbox_streams s
               WHERE ($1 = '' OR s.follower = $1) AND (s.lease_until_ms <= $2 OR s.lease_owner = $3)
                 AND (SELECT o.next_attempt_ms FROM outbox o WHERE o.follower = s.follower AND o.room_uri = s.room_uri
                      ORDER BY o.stream_seq LIMIT 1) <= $2
               ORDER BY s.follower, s.room_uri LIMIT CAST($5 AS BIGINT)",
            $lock,
            ")
             RETURNING follower, room_uri, resume_seq"
        )
    };
}

/// Streams one claim leases at most.
const STREAMS_PER_CLAIM: u64 = 1024;

impl Store {
    /// Claims due work for a follower: up to `limit` rows from the heads of the streams that
    /// are free (or already leased to `owner`) and whose head is due, each stream in order,
    /// leased to `owner` until `now_ms + lease_ms` (`STORE-outbox-claim`,
    /// `STORE-outbox-order`). Two owners never hold the same stream. An owner is one
    /// sequential worker: it may claim its own streams again (to go on after it completed
    /// a batch) but must not run two claims at once.
    pub async fn claim_outbox(
        &self,
        follower: &str,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim(Some(follower), &[], owner, now_ms, lease_ms, limit)
            .await
    }

    /// [`Store::claim_outbox`] for every follower at once, in one transaction
    /// (`STORE-outbox-claim-batch`): up to `limit` rows per follower, by follower, then room,
    /// then number. One pass of the outbox worker takes the database's write lock once for
    /// its claims, not once per follower.
    pub async fn claim_outbox_all(
        &self,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim(None, &[], owner, now_ms, lease_ms, limit).await
    }

    /// [`Store::complete_outbox`] of `done` and [`Store::claim_outbox_all`] in one write
    /// transaction (`STORE-outbox-complete-claim`): the worker's next pass records what its
    /// last pass delivered and takes the next work with one durable commit, not one per
    /// follower plus one for the claim. The completion comes first, so the claim does not hand
    /// out the rows it removes. If it fails, nothing is completed or claimed.
    pub async fn complete_and_claim_outbox(
        &self,
        done: &[OutboxRow],
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.claim(None, done, owner, now_ms, lease_ms, limit).await
    }

    async fn claim(
        &self,
        follower: Option<&str>,
        done: &[OutboxRow],
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.begin_write().await?;
        complete_in(&mut tx, done).await?;
        // One statement leases the streams that are free (or ours) and whose head is due, at
        // most STREAMS_PER_CLAIM of them (`STORE-outbox-claim-batch`: before, three
        // statements per stream and a transaction per follower). On PostgreSQL only the
        // streams this claim takes are locked, and a stream another worker is claiming at
        // this moment is passed by (SKIP LOCKED), so concurrent claims share the free streams
        // instead of one of them finding every stream locked and getting nothing.
        let sql = self.sql_for(lease_sql!(""), lease_sql!(" FOR UPDATE SKIP LOCKED"));
        let until = now_ms.saturating_add(lease_ms);
        let leased = query(sql)
            .bind(follower.unwrap_or(""))
            .bind(i(now_ms))
            .bind(owner)
            .bind(i(until))
            .bind(i(STREAMS_PER_CLAIM))
            .fetch_all(&mut tx)
            .await?;
        let mut streams: Vec<(String, String, u64)> = leased
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<String, _>(1)?,
                    u(r.try_get(2)?),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        streams.sort();
        let mut out: Vec<OutboxRow> = Vec::new();
        if streams.is_empty() {
            tx.commit().await?;
            return Ok(out);
        }
        // Their rows, from each head, `limit` at most per follower, by follower, room and
        // number: a stream cut short stays leased to this owner, which goes on with it at its
        // next claim. The streams just leased are the ones with this owner and lease end.
        // Each stream is read from its head to at most `limit` numbers past it, through the
        // primary key (`STORE-outbox-claim-window`): the window function then numbers at
        // most `limit` rows per stream, not a whole backlog (before, a follower 100,000
        // rows behind had all of them read, body and all, by every claim: catch-up was
        // quadratic). Rows of a stream are a contiguous run (only heads are deleted), so the
        // bound takes exactly the first `limit`; were there a gap, fewer, still in order.
        // CROSS JOIN makes SQLite start from the leased streams (its planner otherwise went
        // through every outbox row, looking its stream up); PostgreSQL plans it as a join.
        let rows = query(
            "SELECT follower, room_uri, stream_seq, event_seq, body, attempts FROM (
               SELECT o.follower, o.room_uri, o.stream_seq, o.event_seq, o.body, o.attempts,
                      ROW_NUMBER() OVER (PARTITION BY o.follower ORDER BY o.room_uri, o.stream_seq) AS rn
               FROM outbox_streams s CROSS JOIN outbox o
               WHERE ($1 = '' OR s.follower = $1) AND s.lease_owner = $2 AND s.lease_until_ms = $3
                 AND o.follower = s.follower AND o.room_uri = s.room_uri
                 AND o.stream_seq < (SELECT MIN(h.stream_seq) FROM outbox h
                                     WHERE h.follower = s.follower AND h.room_uri = s.room_uri) + $4) t
             WHERE rn <= $4 ORDER BY follower, room_uri, stream_seq",
        )
        .bind(follower.unwrap_or(""))
        .bind(owner)
        .bind(i(until))
        .bind(i(u64::from(limit)))
        .fetch_all(&mut tx)
        .await?;
        for r in rows {
            let f: String = r.try_get(0)?;
            let room: String = r.try_get(1)?;
            let Ok(k) = streams.binary_search_by(|(sf, sr, _)| {
                (sf.as_str(), sr.as_str()).cmp(&(f.as_str(), room.as_str()))
            }) else {
                // Leased before with the same lease end, not in this claim: left alone.
                continue;
            };
            out.push(OutboxRow {
                follower: f,
                room_uri: room,
                stream_seq: u(r.try_get(2)?),
                event_seq: u(r.try_get(3)?),
                body: r.try_get(4)?,
                attempts: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(u32::MAX),
                owner: owner.to_owned(),
                resume_seq: streams[k].2,
            });
        }
        // Streams the row limit left out go back at once, for other workers.
        let served: std::collections::HashSet<(&str, &str)> = out
            .iter()
            .map(|o| (o.follower.as_str(), o.room_uri.as_str()))
            .collect();
        for (f, room, _) in streams
            .iter()
            .filter(|(f, r, _)| !served.contains(&(f.as_str(), r.as_str())))
        {
            query(
                "UPDATE outbox_streams SET lease_owner = '', lease_until_ms = 0
                 WHERE follower = $1 AND room_uri = $2 AND lease_owner = $3",
            )
            .bind(f)
            .bind(room)
            .bind(owner)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Retention of the outbox (`STORE-retention`): drops, per (follower, room) stream, the
    /// undelivered rows whose room event is older than `before_ms` (a follower that stayed
    /// away longer than the retention window), and records that the stream resumes after them.
    /// Returns the streams cut, with the number each resumes at.
    pub async fn expire_outbox(
        &self,
        before_ms: u64,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = query(
            "SELECT o.follower, o.room_uri, MAX(o.stream_seq) FROM outbox o
             JOIN room_events e ON e.room_uri = o.room_uri AND e.seq = o.event_seq
             WHERE e.ts_ms < $1 GROUP BY o.follower, o.room_uri",
        )
        .bind(i(before_ms))
        .fetch_all(&mut tx)
        .await?;
        let mut cut = Vec::new();
        for r in &rows {
            let follower: String = r.try_get(0)?;
            let room: String = r.try_get(1)?;
            let last = u(r.try_get(2)?);
            query("DELETE FROM outbox WHERE follower = $1 AND room_uri = $2 AND stream_seq <= $3")
                .bind(&follower)
                .bind(&room)
                .bind(i(last))
                .execute(&mut tx)
                .await?;
            let resume = last.saturating_add(1);
            query(
                "UPDATE outbox_streams SET resume_seq = $1 WHERE follower = $2 AND room_uri = $3 AND resume_seq < $1",
            )
            .bind(i(resume))
            .bind(&follower)
            .bind(&room)
            .execute(&mut tx)
            .await?;
            cut.push((follower, room, resume));
        }
        tx.commit().await?;
        Ok(cut)
    }

    /// Marks rows done (the follower acknowledged them): they are removed. A stream left
    /// empty is released; otherwise its owner keeps the lease and may go on. Pass runs of
    /// claimed rows as [`Store::claim_outbox`] hands them out (consecutive in their stream):
    /// every row of a stream between the lowest and the highest number passed goes.
    pub async fn complete_outbox(&self, rows: &[OutboxRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        complete_in(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Defers rows to `next_attempt_ms` with one more attempt counted, and gives their
    /// streams back. Pass the failed row and every claimed row behind it in its stream.
    pub async fn retry_outbox(
        &self,
        rows: &[OutboxRow],
        next_attempt_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for o in rows {
            query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = $1
                 WHERE follower = $2 AND room_uri = $3 AND stream_seq = $4",
            )
            .bind(i(next_attempt_ms))
            .bind(&o.follower)
            .bind(&o.room_uri)
            .bind(i(o.stream_seq))
            .execute(&mut tx)
            .await?;
        }
        for (follower, room, owner) in streams_of(rows) {
            query(
                "UPDATE outbox_streams SET lease_owner = '', lease_until_ms = 0
                 WHERE follower = $1 AND room_uri = $2 AND lease_owner = $3",
            )
            .bind(follower)
            .bind(room)
            .bind(owner)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives back every stream leased to `owner` (a worker that stops); returns how many.
    pub async fn release_outbox(&self, owner: &str) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = query(
            "UPDATE outbox_streams SET lease_owner = '', lease_until_ms = 0 WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(&mut tx)
        .await?;
        // Another process's worker may take these streams now (`STORE-wake`).
        crate::queue::announce(self, &mut tx, &[], done.rows_affected() > 0).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Outbox depth per follower, by follower (metrics).
    pub async fn outbox_depth(&self) -> Result<Vec<(String, u64)>, StoreError> {
        // STORE-outbox-depth-ends: per stream, its next number less its first queued one
        // (a stream's rows are a contiguous run): one primary-key lookup per stream, whatever
        // the backlog; counting the rows read every queued row, once a second during a
        // catch-up.
        let rows = query(
            "SELECT follower, CAST(SUM(next_seq - head) AS BIGINT) FROM (
                 SELECT s.follower, s.next_seq,
                        (SELECT MIN(o.stream_seq) FROM outbox o
                         WHERE o.follower = s.follower AND o.room_uri = s.room_uri) AS head
                 FROM outbox_streams s) t
             WHERE head IS NOT NULL GROUP BY follower ORDER BY follower",
        )
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, u(r.try_get(1)?))))
            .collect()
    }

    /// How many rows one (follower, room) stream still holds, by its first and last queued
    /// numbers (rows of a stream are a contiguous run): two primary-key lookups, whatever the
    /// backlog, where [`Store::outbox_depth`] counts every row. 0 for an empty stream.
    pub async fn outbox_stream_len(&self, follower: &str, room: &str) -> Result<u64, StoreError> {
        let row = query(
            "SELECT (SELECT MIN(stream_seq) FROM outbox WHERE follower = $1 AND room_uri = $2),
                    (SELECT MAX(stream_seq) FROM outbox WHERE follower = $1 AND room_uri = $2)",
        )
        .bind(follower)
        .bind(room)
        .fetch_one(self)
        .await?;
        let first: Option<i64> = row.try_get(0)?;
        let last: Option<i64> = row.try_get(1)?;
        Ok(match (first, last) {
            (Some(f), Some(l)) if l >= f => u(l - f + 1),
            _ => 0,
        })
    }

    /// Outbox figures per follower, by follower (metrics: depth and retries).
    pub async fn outbox_stats(&self) -> Result<Vec<OutboxStats>, StoreError> {
        let rows = query(
            "SELECT follower, COUNT(*), SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), MAX(attempts)
             FROM outbox GROUP BY follower ORDER BY follower",
        )
        .fetch_all(self)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxStats {
                    follower: r.try_get(0)?,
                    depth: u(r.try_get(1)?),
                    retrying: u(r.try_get(2)?),
                    max_attempts: u(r.try_get(3)?),
                })
            })
            .collect()
    }
}

/// The distinct (follower, room, owner) streams of some rows, in first-seen order.
fn streams_of(rows: &[OutboxRow]) -> Vec<(&str, &str, &str)> {
    let mut v: Vec<(&str, &str, &str)> = Vec::new();
    for o in rows {
        let k = (o.follower.as_str(), o.room_uri.as_str(), o.owner.as_str());
        if !v.contains(&k) {
            v.push(k);
        }
    }
    v
}

/// The statements of [`Store::complete_outbox`] inside `tx`: each stream's run of rows goes,
/// and a stream left empty is released.
async fn complete_in(tx: &mut WriteTx, rows: &[OutboxRow]) -> Result<(), StoreError> {
    for (follower, room, owner) in streams_of(rows) {
        // A stream's claimed rows are consecutive from its head: one range per stream.
        let seqs = rows
            .iter()
            .filter(|o| o.follower == follower && o.room_uri == room)
            .map(|o| o.stream_seq);
        let (lo, hi) = seqs.fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s), hi.max(s)));
        query(
                "DELETE FROM outbox WHERE follower = $1 AND room_uri = $2 AND stream_seq >= $3 AND stream_seq <= $4",
            )
            .bind(follower)
            .bind(room)
            .bind(i(lo))
            .bind(i(hi))
            .execute(&mut *tx)
            .await?;
        query(
                "UPDATE outbox_streams SET lease_owner = '', lease_until_ms = 0
                 WHERE follower = $1 AND room_uri = $2 AND lease_owner = $3
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.follower = $1 AND o.room_uri = $2)",
            )
            .bind(follower)
            .bind(room)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
