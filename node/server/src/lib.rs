//! # mimi-node
//!
//! The MIMI federation node: one provider, hub for the rooms it hosts and follower for the
//! others. This crate wires the sans-IO core (`mimi-proto`, `mimi-room`, `mimi-wire`) to
//! storage (`mimi-store`) and transport (`mimi-net`).
//!
//! - [`config`]: the TOML configuration with documented defaults.
//! - [`metrics`]: counters, gauges and histograms in the Prometheus text format.
//! - [`admin`]: the admin listener serving `/metrics` and `/healthz`.

pub mod admin;
pub mod config;
pub mod metrics;
