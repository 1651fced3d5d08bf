//! Tests of mimi-room-mlsrs: openmls and mls-rs devices in one MIMI room, with mimi-room's
//! hub (openmls PublicGroup) in the middle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod appdata;
mod harness;
mod mixed;
mod passive_client;
mod random_commits;
