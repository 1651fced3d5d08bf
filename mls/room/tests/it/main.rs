//! Tests of mimi-room.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod flow;
mod franking;
mod hub_checks;
mod hub_integrity;
mod operational;
mod passive_client;
mod passive_vectors;
mod policy;
mod policy_vectors;
mod props;
mod state;
