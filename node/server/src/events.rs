//! Node events for the admin listener's live view (`GET /events`, `GET /events/recent`):
//! a message or commit the hub accepted, a fanout delivered to or refused by a peer, an
//! outbox depth that changed.
//!
//! Emitting never waits and never fails: every event goes into a bounded ring buffer (the last
//! [`RING`] events) and to a bounded [`tokio::sync::broadcast`] channel. A listener that falls
//! more than [`CHANNEL`] events behind loses the oldest ones (it is told how many); the node
//! is never held back by a slow listener. Events carry room and user URIs, epochs and
//! timestamps, never message bodies or keys.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

/// Events kept for `GET /events/recent`.
pub const RING: usize = 1024;
/// Events a live listener may fall behind before it loses some.
pub const CHANNEL: usize = 256;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// The hub accepted an application message (submitMessage).
    MessageAccepted {
        /// The room.
        room: String,
        /// The sending user.
        sender: String,
        /// The room's epoch when it was accepted.
        epoch: u64,
        /// The hub's accepted timestamp (ms since the Unix epoch).
        accepted_ms: u64,
    },
    /// The hub accepted a handshake (update): a commit, or proposals.
    CommitAccepted {
        /// The room.
        room: String,
        /// The room's epoch after it.
        epoch: u64,
        /// The hub's accepted timestamp (ms since the Unix epoch).
        accepted_ms: u64,
    },
    /// A notify body was acknowledged by a follower.
    FanoutDelivered {
        /// The follower provider.
        peer: String,
        /// The room.
        room: String,
        /// How many FanoutMessages the body carried.
        items: usize,
    },
    /// A notify body was not acknowledged; it is retried later.
    FanoutFailed {
        /// The follower provider.
        peer: String,
        /// The room.
        room: String,
        /// How many FanoutMessages wait for the retry.
        items: usize,
        /// Why (the follower's status or the transport error).
        reason: String,
        /// Milliseconds until the retry.
        retry_in_ms: u64,
    },
    /// The number of FanoutMessages waiting for a follower changed.
    OutboxDepth {
        /// The follower provider.
        peer: String,
        /// Waiting now.
        depth: u64,
    },
}

impl NodeEvent {
    /// Its type, as in the JSON (`"type"`) and the SSE `event:` field.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeEvent::MessageAccepted { .. } => "message_accepted",
            NodeEvent::CommitAccepted { .. } => "commit_accepted",
            NodeEvent::FanoutDelivered { .. } => "fanout_delivered",
            NodeEvent::FanoutFailed { .. } => "fanout_failed",
            NodeEvent::OutboxDepth { .. } => "outbox_depth",
        }
    }
}

/// An event with its number (1, 2, … in this process) and the wall-clock time it was emitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stamped {
    /// Its number.
    pub id: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: NodeEvent,
}

/// The node's event bus; clones share it.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Arc<Stamped>>,
    ring: Mutex<VecDeque<Arc<Stamped>>>,
    next: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("emitted", &self.inner.next.load(Ordering::Relaxed))
            .finish()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Events {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL);
        Self {
            inner: Arc::new(Inner {
                tx,
                ring: Mutex::new(VecDeque::with_capacity(RING)),
                next: AtomicU64::new(1),
            }),
        }
    }

    /// Records an event and sends it to the live listeners (never waits).
    pub fn emit(&self, event: NodeEvent) {
        let stamped = Arc::new(Stamped {
            id: self.inner.next.fetch_add(1, Ordering::Relaxed),
            at_ms: now_ms(),
            event,
        });
        {
            let mut ring = self
                .inner
                .ring
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if ring.len() >= RING {
                ring.pop_front();
            }
            ring.push_back(stamped.clone());
        }
        // No listener is not an error.
        let _ = self.inner.tx.send(stamped);
    }

    /// The last `n` events (at most [`RING`]), oldest first.
    pub fn recent(&self, n: usize) -> Vec<Arc<Stamped>> {
        let ring = self
            .inner
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let skip = ring.len().saturating_sub(n);
        ring.iter().skip(skip).cloned().collect()
    }

    /// A live listener: the events emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        self.inner.tx.subscribe()
    }

    /// How many live listeners there are.
    pub fn listeners(&self) -> usize {
        self.inner.tx.receiver_count()
    }
}
