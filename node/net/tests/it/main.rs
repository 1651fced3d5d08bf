//! Tests of mimi-net over real QUIC on loopback (port 0, every wait bounded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod limits;
mod mtls;
mod ohttp;
mod paths;
mod pki;
mod pool;
mod shutdown;
