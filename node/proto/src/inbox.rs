//! A follower's inbox for one room (protocol-06 §5.5, notify): every FanoutMessage delivered
//! to local clients exactly once, in the hub's order.
//!
//! The draft says a follower MUST answer 201 to a byte-identical repeat of a notify body and
//! SHOULD process only the first (`PROTO-5.5-dedup`), and lets the hub send the next body
//! before the previous one is answered, so bodies can arrive out of order. Hashing whole bodies
//! is not enough for us: a hub that retries a batch with one more item in it sends different
//! bytes. So:
//!
//! - A hub that is a mimi-node numbers the FanoutMessages it sends one follower for one room
//!   1, 2, 3, … and puts the number of the first item of a body in the `mimi-notify-seq`
//!   header (our extension, see `spec-notes/decisions.md`). The follower delivers item `n` only
//!   after `n - 1`, holds items that arrive early (up to [`InboxLimits::max_ahead`] of them),
//!   and ignores items it has already delivered (`PROTO-5.5-order`).
//! - A hub that does not send the header gets arrival order, with exact duplicates of each
//!   item (by SHA-256 of its bytes) dropped by the store's insert-if-absent.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// SHA-256 of one FanoutMessage's bytes: its identity for duplicate detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(pub [u8; 32]);

impl ItemId {
    /// The ID of an item.
    pub fn of(item: &[u8]) -> Self {
        Self(Sha256::digest(item).into())
    }
}

/// How much a follower holds for a hub that is ahead of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    /// Items further ahead than this of the next expected one are refused (the hub retries).
    pub max_ahead: u64,
    /// Total bytes of held items.
    pub max_held_bytes: usize,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            max_ahead: 4096,
            max_held_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What a follower remembers of one room's sequenced notify stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxState {
    /// The number of the next item to deliver (the stream starts at 1).
    pub next_seq: u64,
    /// Items that arrived before their turn, by number.
    pub held: BTreeMap<u64, Vec<u8>>,
}

impl Default for InboxState {
    fn default() -> Self {
        Self {
            next_seq: 1,
            held: BTreeMap::new(),
        }
    }
}

/// One item to hand to the room's local clients, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Its number in the hub's stream, when the hub numbers them.
    pub seq: Option<u64>,
    /// Its identity (for the store's duplicate check when there is no number).
    pub id: ItemId,
    /// The FanoutMessage bytes.
    pub item: Vec<u8>,
}

/// The outcome of a notify body that was accepted (answer 201).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Deliver these now, in order. Without a sequence number, the store must still drop an
    /// item whose [`ItemId`] it has seen (insert-if-absent in the same transaction).
    pub deliver: Vec<Delivery>,
    /// Items now held for later.
    pub held: usize,
    /// Items already delivered before (repeats).
    pub repeats: usize,
}

/// A notify body the follower cannot take now (answer 503 with `Retry-After`; the hub retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxRefusal {
    /// The hub is too far ahead: earlier items are missing.
    #[error("item {seq} is more than {max_ahead} ahead of the next expected item {next}")]
    TooFarAhead {
        /// The item's number.
        seq: u64,
        /// The next expected number.
        next: u64,
        /// The limit.
        max_ahead: u64,
    },
    /// Holding the body would exceed the byte limit.
    #[error("holding {bytes} more bytes would exceed the limit of {limit} held bytes")]
    TooMuchHeld {
        /// Bytes that would be held.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// `first_seq + items` overflows.
    #[error("sequence number {first} with {count} items overflows")]
    BadSequence {
        /// The header's number.
        first: u64,
        /// Items in the body.
        count: usize,
    },
}

/// Accepts the items of one notify body (already split into FanoutMessages by the wire layer)
/// into `state`. `first_seq` is the `mimi-notify-seq` header, if the hub sent one. On `Err`,
/// `state` is unchanged.
pub fn accept(
    state: &mut InboxState,
    first_seq: Option<u64>,
    items: Vec<Vec<u8>>,
    limits: &InboxLimits,
) -> Result<Accepted, InboxRefusal> {
    let Some(first) = first_seq else {
        // Arrival order; the store drops repeats by ItemId.
        let deliver = items
            .into_iter()
            .map(|item| Delivery {
                seq: None,
                id: ItemId::of(&item),
                item,
            })
            .collect();
        return Ok(Accepted {
            deliver,
            ..Accepted::default()
        });
    };
    let count = items.len();
    let last = u64::try_from(count)
        .ok()
        .and_then(|c| first.checked_add(c))
        .ok_or(InboxRefusal::BadSequence { first, count })?;
    if first == 0 {
        return Err(InboxRefusal::BadSequence { first, count });
    }
    // Check the limits before touching the state, so a refusal changes nothing.
    let mut new_bytes = 0usize;
    for (seq, item) in (first..last).zip(&items) {
        if seq > state.next_seq && !state.held.contains_key(&seq) {
            if seq - state.next_seq > limits.max_ahead {
                return Err(InboxRefusal::TooFarAhead {
                    seq,
                    next: state.next_seq,
                    max_ahead: limits.max_ahead,
                });
            }
            new_bytes = new_bytes.saturating_add(item.len());
        }
    }
    let held_bytes: usize = state.held.values().map(Vec::len).sum();
    if held_bytes.saturating_add(new_bytes) > limits.max_held_bytes {
        return Err(InboxRefusal::TooMuchHeld {
            bytes: new_bytes,
            limit: limits.max_held_bytes,
        });
    }

    let mut out = Accepted::default();
    for (seq, item) in (first..last).zip(items) {
        if seq < state.next_seq || state.held.contains_key(&seq) {
            out.repeats += 1;
        } else if seq > state.next_seq {
            state.held.insert(seq, item);
            out.held += 1;
        } else {
            out.deliver.push(Delivery {
                seq: Some(seq),
                id: ItemId::of(&item),
                item,
            });
            state.next_seq += 1;
            while let Some(next) = state.held.remove(&state.next_seq) {
                out.held = out.held.saturating_sub(1);
                out.deliver.push(Delivery {
                    seq: Some(state.next_seq),
                    id: ItemId::of(&next),
                    item: next,
                });
                state.next_seq += 1;
            }
        }
    }
    Ok(out)
}
