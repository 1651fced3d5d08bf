//! # mimi-proto
//!
//! The hub and follower state machines of a MIMI node, sans-IO: they take bytes, state and the
//! current time, and return decisions and effects (persist this, send that, answer with this
//! body). The node binary drives them with real storage and transport; tests drive them in
//! memory.
//!
//! - [`backoff`]: when the hub's outbox retries a notify to a follower (protocol-06 §5.5: retry
//!   on anything but 201, honour `Retry-After`).
//! - [`inbox`]: how a follower accepts notify bodies: exactly once per item, in hub order.
//! - [`outbox`]: what the hub sends a follower next and what it does with the answer.
//! - [`clock`]: hub timestamps that never go backwards within a room.

pub mod backoff;
pub mod clock;
pub mod inbox;
pub mod outbox;
