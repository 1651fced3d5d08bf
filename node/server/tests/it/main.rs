//! Tests of the node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod binary;
mod config;
mod federation;
mod metrics;
mod service;
