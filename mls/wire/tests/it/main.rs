//! Tests of mimi-wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bodies;
mod directory;
mod fixture;
mod ids;
mod operational;
mod props;
mod room_policy;
mod roundtrip;
mod sign;
mod vectors;
