//! # mimi-net
//!
//! HTTP/3 over QUIC between MIMI providers, with mutual TLS (quinn + h3 + rustls with ring).
//! A generic transport: it knows the draft's endpoint paths and headers, not the bodies.
//!
//! - [`pki`]: a federation CA and provider certificates (ECDSA P-256, DNS name = domain),
//!   PEM files, trusted roots.
//! - [`tls`]: rustls configurations (TLS 1.3, ALPN h3, the ring provider passed explicitly).
//! - [`server`]: the node's listener; every provider request is authenticated (client
//!   certificate valid for the `From` domain, `:authority` = this provider) before the
//!   application's [`server::Handler`] sees it; limits on body size, headers, streams and
//!   time; [`server::Handler::observe`] sees every outcome (refusals included) for metrics.
//! - [`client`]: one long-lived connection per peer provider, a stream per request
//!   ([`client::Connector`]); a device's client of the client API ([`client::ClientApi`]).
//! - [`paths`]: the draft's endpoint paths under `/v1`, the directory and the client API prefix.
//!
//! Requirement IDs (`NET-…`) are listed in `spec-notes/transport.md`.

pub mod client;
pub mod limits;
pub mod message;
pub mod ohttp;
pub mod paths;
pub mod pki;
pub mod server;
pub mod stream;
pub mod tls;

pub use limits::NetLimits;
pub use message::{Peer, Request, Response};
