//! The outbox worker (`PROTO-5.5-retry-after`): for every follower with work, claim the due
//! head of its queue, send consecutive items of a room as one notify body over the pooled
//! connection, mark them done on 201 and schedule a retry otherwise. Items stay in the
//! database until acknowledged, so a restart resumes where it stopped.

use crate::http::Clock;
use crate::service::Node;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use mimi_net::client::Connector;
use mimi_net::paths::{self, Endpoint};
use mimi_proto::backoff::RetryPolicy;
use mimi_proto::outbox::{OutboxItem, Outcome, next_batch, outcome};
use mimi_store::OutboxRow;

/// Outbox settings.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// This worker's name (lease owner).
    pub owner: String,
    /// How long a claim lasts.
    pub lease_ms: u64,
    /// Largest notify body.
    pub batch_max_bytes: usize,
    /// The retry schedule.
    pub retry: RetryPolicy,
}

/// One pass over every follower with work, its deliveries recorded before it returns;
/// returns how many items were delivered. The due work of every follower is claimed in one
/// transaction (`STORE-outbox-claim-batch`) and what was delivered is completed in one more.
pub async fn run_once(
    node: &Node,
    connector: &Connector,
    cfg: &OutboxConfig,
    clock: &Clock,
) -> usize {
    let mut done = Vec::new();
    let n = run_pass(node, connector, cfg, clock, &mut done).await;
    if let Err(e) = node.store.complete_outbox(&done).await {
        tracing::warn!(error = %e, "outbox: cannot record the deliveries");
    }
    n
}

/// One pass of the outbox worker (`STORE-outbox-complete-claim`): completes `done` (what the
/// previous pass delivered) and claims every follower's due work in one write transaction,
/// sends it, and leaves in `done` the rows this pass delivered, for the next pass (or
/// [`mimi_store::Store::complete_outbox`]) to complete. Returns how many items were
/// delivered. A row delivered but not yet completed is sent again only if this worker stops
/// without completing it and its lease runs out; the follower acknowledges a repeat without
/// delivering it twice (`PROTO-5.5-dedup`). Retries are recorded at once. If the claim
/// fails, `done` is kept for the next pass.
pub async fn run_pass(
    node: &Node,
    connector: &Connector,
    cfg: &OutboxConfig,
    clock: &Clock,
    done: &mut Vec<OutboxRow>,
) -> usize {
    let now = clock();
    let rows = match node
        .store
        .complete_and_claim_outbox(done, &cfg.owner, now, cfg.lease_ms, 256)
        .await
    {
        Ok(r) => {
            done.clear();
            r
        }
        Err(e) => {
            tracing::warn!(error = %e, "outbox: claim failed");
            return 0;
        }
    };
    // By follower (the rows come by follower).
    let mut by_follower: Vec<(String, Vec<OutboxRow>)> = Vec::new();
    for r in rows {
        match by_follower.last_mut() {
            Some((f, v)) if *f == r.follower => v.push(r),
            _ => by_follower.push((r.follower.clone(), vec![r])),
        }
    }
    // Followers are served at once (each on its own connection); a slow or absent follower
    // does not hold back the others.
    let mut delivered = 0;
    for rows in futures_util::future::join_all(
        by_follower
            .into_iter()
            .map(|(f, rows)| deliver_to(node, connector, cfg, now, f, rows)),
    )
    .await
    {
        delivered += rows.len();
        done.extend(rows);
    }
    delivered
}

/// One follower's claimed work, sent as notify bodies in stream order; what fails is
/// scheduled for a retry. Returns the rows delivered (the caller completes them).
async fn deliver_to(
    node: &Node,
    connector: &Connector,
    cfg: &OutboxConfig,
    now: u64,
    follower: String,
    rows: Vec<OutboxRow>,
) -> Vec<OutboxRow> {
    let mut delivered = Vec::new();
    let items: Vec<OutboxItem> = rows
        .iter()
        .map(|r| OutboxItem {
            room: r.room_uri.clone(),
            seq: r.stream_seq,
            fanout: r.body.clone(),
        })
        .collect();
    let mut offset = 0;
    while let Some(batch) = next_batch(&items[offset..], cfg.batch_max_bytes) {
        let part: Vec<OutboxRow> = rows[offset..offset + batch.count].to_vec();
        offset += batch.count;
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&batch.first_seq.to_string()) {
            headers.insert("mimi-notify-seq", v);
        }
        // STORE-retention: the stream lost its undelivered head; the follower resumes here.
        if let Some(r) = part.first().map(|r| r.resume_seq).filter(|r| *r > 0)
            && let Ok(v) = HeaderValue::from_str(&r.to_string())
        {
            headers.insert("mimi-notify-resume", v);
        }
        let path = paths::path(Endpoint::Notify, &batch.room);
        let answer = connector
            .request(
                &follower,
                Method::POST,
                &path,
                headers,
                Bytes::from(batch.body),
            )
            .await;
        let (status, retry_after) = match &answer {
            Ok(r) => (
                Some(r.status.as_u16()),
                r.headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(e) => {
                tracing::info!(%follower, error = %e, "outbox: no answer");
                (None, None)
            }
        };
        let attempts = part.iter().map(|r| r.attempts).max().unwrap_or(0);
        let result = match outcome(
            status,
            retry_after.as_deref(),
            attempts,
            now ^ batch.first_seq,
            &cfg.retry,
            now / 1000,
        ) {
            Outcome::Delivered => {
                node.events.emit(crate::events::NodeEvent::FanoutDelivered {
                    peer: follower.clone(),
                    room: batch.room.to_string(),
                    items: part.len(),
                });
                delivered.extend(part);
                Ok(())
            }
            Outcome::Retry {
                after,
                reason,
                refused,
            } => {
                if refused {
                    tracing::warn!(%follower, %reason, "outbox: follower refused a notify");
                }
                let next = now.saturating_add(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
                // The rest of this follower's claimed rows wait too (order is kept).
                let rest: Vec<OutboxRow> = rows[offset - part.len()..].to_vec();
                offset = rows.len();
                node.events.emit(crate::events::NodeEvent::FanoutFailed {
                    peer: follower.clone(),
                    room: batch.room.to_string(),
                    items: rest.len(),
                    reason: reason.clone(),
                    retry_in_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                });
                node.store.retry_outbox(&rest, next).await
            }
        };
        if let Err(e) = result {
            tracing::warn!(%follower, error = %e, "outbox: cannot record the outcome");
        }
    }
    delivered
}
