//! Tests of mimi-net over real QUIC on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport;
