//! Tests of the hub and follower state machines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backoff;
mod inbox;
mod outbox;
