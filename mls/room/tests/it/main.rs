//! Tests of mimi-room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flow;
mod policy;
mod state;
