//! Multi-provider scenarios over real QUIC between in-process nodes: the draft's example flow
//! and the resilience suite (`spec-notes/resilience.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attachments;
mod flow;
mod joins;
mod membership;
mod mixed;
mod resilience;
mod room_policy;
