//! # mimi-node
//!
//! The MIMI federation node: one provider, hub for the rooms it hosts and follower for the
//! others. This crate wires the sans-IO core (`mimi-proto`, `mimi-room`, `mimi-wire`) to
//! storage (`mimi-store`) and transport (`mimi-net`).
//!
//! - [`config`]: the TOML configuration with documented defaults.
//! - [`metrics`]: counters, gauges and histograms in the Prometheus text format.
//! - [`http`]: the draft's endpoints over HTTP/3 routed to the services; [`outbox`]: the
//!   worker that delivers the hub's fanout to followers.
//! - [`run`]: a node from its configuration (the `mimi-node run` command).
//! - [`service`]: the hub's update and submitMessage and the follower's notify over the store.
//! - [`key_material`], [`group_info`], [`social`]: keyMaterial through the hub, groupInfo for
//!   external joins, consent / identifier query / abuse reports.
//! - [`client_api`]: the provider-internal client API under `/client/v1/`.
//! - [`admin`]: the admin listener (axum): `/metrics`, `/healthz`, the JSON views `/status`
//!   and `/rooms`, and the node's [`events`] as Server-Sent Events.

pub mod admin;
pub mod assets;
pub mod client_api;
pub mod config;
pub mod events;
pub mod group_info;
pub mod http;
pub mod key_material;
pub mod metrics;
pub mod ohttp;
pub mod outbox;
pub mod run;
pub mod service;
pub mod social;
