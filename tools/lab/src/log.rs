//! What happened during a run: one record per event, in the order they were seen, each with
//! its time in milliseconds since the timeline started. Written as JSON lines
//! (`events.jsonl`); the checks and the report are computed from it.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One event.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The hub accepted a message (`submitMessage` answered `accepted`).
    Sent {
        /// When the device submitted it (the event's own time is when the hub answered).
        submitted_ms: f64,
        device: usize,
        room: String,
        id: String,
        kind: crate::scenario::Kind,
        epoch: u64,
    },
    /// A message was not accepted (the reason names the hub's answer or the failure).
    SendFailed {
        device: usize,
        room: String,
        kind: crate::scenario::Kind,
        reason: String,
    },
    /// The traffic generator skipped a message: its sender was still busy.
    SendSkipped { device: usize, room: String },
    /// A device received a message for the first time.
    Delivered {
        device: usize,
        room: String,
        id: String,
    },
    /// A device received a message it already had.
    Repeated {
        device: usize,
        room: String,
        id: String,
    },
    /// A device applied a commit.
    Commit {
        device: usize,
        room: String,
        epoch: u64,
    },
    /// A device is in a room from this epoch on (creation, Welcome, external join).
    Joined {
        device: usize,
        room: String,
        epoch: u64,
        how: String,
    },
    /// A device is out of a room from this epoch on (removed, left).
    Left {
        device: usize,
        room: String,
        epoch: u64,
    },
    /// A device was deleted at its provider (`remove-device`): its queue went with it, so
    /// what it had not fetched by then is not expected of it.
    Deleted { device: usize },
    /// Queue items a device received for a room it had been removed from.
    AfterRemoval {
        device: usize,
        room: String,
        items: usize,
    },
    /// A queue item a device could not process.
    Skipped {
        device: usize,
        room: String,
        reason: String,
    },
    /// A device downloaded a message's attachment through its provider, and its size, hash
    /// and tag checked.
    Downloaded {
        device: usize,
        room: String,
        id: String,
        bytes: u64,
    },
    /// A device could not download or check a message's attachment.
    DownloadFailed {
        device: usize,
        room: String,
        id: String,
        reason: String,
    },
    /// A device's sync failed (its home node unreachable, ...).
    SyncFailed { device: usize, reason: String },
    /// A membership change or fault of the timeline started (or failed: `error`).
    Step {
        action: crate::scenario::Action,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A node's metrics, sampled.
    Sample {
        node: String,
        up: bool,
        outbox_depth: f64,
    },
    /// A checkpoint's result.
    Checkpoint {
        name: String,
        ok: bool,
        failures: Vec<String>,
    },
    /// Free text (setup progress).
    Note { text: String },
}

/// An event at a time.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Milliseconds since the timeline started (negative during setup).
    pub t_ms: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// The shared log.
#[derive(Clone)]
pub struct Log {
    start: Arc<Mutex<Instant>>,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Default for Log {
    fn default() -> Self {
        Self::new()
    }
}

impl Log {
    pub fn new() -> Self {
        Self {
            start: Arc::new(Mutex::new(Instant::now())),
            records: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The timeline starts now (times before are negative).
    pub fn start_timeline(&self) {
        if let Ok(mut s) = self.start.lock() {
            *s = Instant::now();
        }
    }

    /// Milliseconds since the timeline started.
    pub fn now_ms(&self) -> f64 {
        let s = self
            .start
            .lock()
            .map(|s| *s)
            .unwrap_or_else(|_| Instant::now());
        let now = Instant::now();
        if now >= s {
            (now - s).as_secs_f64() * 1000.0
        } else {
            -((s - now).as_secs_f64() * 1000.0)
        }
    }

    pub fn push(&self, event: Event) {
        let t_ms = self.now_ms();
        if let Ok(mut r) = self.records.lock() {
            r.push(Record { t_ms, event });
        }
    }

    /// A copy of every record so far.
    pub fn snapshot(&self) -> Vec<Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}
