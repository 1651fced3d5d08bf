//! The hub's outbox to one follower (protocol-06 §5.5): which FanoutMessages go in the next
//! notify body, and what to do with the answer.
//!
//! Items are queued per follower in the transaction that accepted them (persist before
//! acknowledge), each with its number in the (room, follower) stream (see [`crate::inbox`]).
//! A worker takes the oldest items, packs consecutive items of one room into one body (the
//! draft allows several concatenated FanoutMessages per body), sends it with the
//! `mimi-notify-seq` header, and on 201 marks them done; on anything else it retries the same
//! items later ([`crate::backoff`]). Nothing is skipped: a follower that refuses a body for
//! good stalls its own stream (visible in the outbox-depth metric) rather than losing events.

use crate::backoff::{RetryPolicy, parse_retry_after};
use std::time::Duration;

/// One queued FanoutMessage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// The room (its URI).
    pub room: String,
    /// Its number in this room's stream to this follower (from 1).
    pub seq: u64,
    /// The encoded FanoutMessage.
    pub fanout: Vec<u8>,
}

/// One notify request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The room of every item in it (`POST /notify/{roomId}`).
    pub room: String,
    /// The number of its first item (`mimi-notify-seq`).
    pub first_seq: u64,
    /// How many items.
    pub count: usize,
    /// The concatenated FanoutMessages.
    pub body: Vec<u8>,
}

/// Packs the first items of `queue` (oldest first) into the next body: consecutive items of
/// the same room with consecutive numbers, up to `max_body` bytes (a single item larger than
/// that still goes alone, so nothing is stuck). `None` when the queue is empty.
pub fn next_batch(queue: &[OutboxItem], max_body: usize) -> Option<Batch> {
    let first = queue.first()?;
    let mut batch = Batch {
        room: first.room.clone(),
        first_seq: first.seq,
        count: 1,
        body: first.fanout.clone(),
    };
    for (prev, item) in queue.iter().zip(queue.iter().skip(1)) {
        let consecutive = item.room == batch.room && Some(item.seq) == prev.seq.checked_add(1);
        if !consecutive || batch.body.len().saturating_add(item.fanout.len()) > max_body {
            break;
        }
        batch.body.extend_from_slice(&item.fanout);
        batch.count += 1;
    }
    Some(batch)
}

/// What to do after a notify attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 201 (or another 2xx): the items are done.
    Delivered,
    /// Try the same items again after `after`.
    Retry {
        /// How long to wait.
        after: Duration,
        /// Why, for the log.
        reason: String,
        /// The follower refused the body itself (4xx other than 408/429): retrying is unlikely
        /// to help, and an operator should look (logged as a warning, counted in metrics).
        refused: bool,
    },
}

/// Classifies the answer to attempt number `attempt` (0 = first) of a batch. `status` is
/// `None` when there was no answer (connection failure, timeout); `retry_after` is the header.
pub fn outcome(
    status: Option<u16>,
    retry_after: Option<&str>,
    attempt: u32,
    random: u64,
    policy: &RetryPolicy,
    now_unix_s: u64,
) -> Outcome {
    let asked = retry_after.and_then(|v| parse_retry_after(v, now_unix_s).ok());
    let retry = |reason: String, refused: bool| Outcome::Retry {
        after: policy.delay(attempt, random, asked),
        reason,
        refused,
    };
    match status {
        Some(s) if (200..300).contains(&s) => Outcome::Delivered,
        Some(s @ (408 | 429)) => retry(format!("follower answered {s}"), false),
        Some(s) if (400..500).contains(&s) => retry(format!("follower refused with {s}"), true),
        Some(s) => retry(format!("follower answered {s}"), false),
        None => retry("no answer".to_owned(), false),
    }
}
