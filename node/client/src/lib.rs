//! # mimi-client
//!
//! A MIMI user's device. Today: the device's state file ([`store`]) and the content tools behind `mimi content inspect` and
//! `mimi content encode` ([`inspect`]), for people testing other implementations of
//! draft-ietf-mimi-content-08. The device itself (registration, rooms, messages over a home
//! node) arrives with the node's client API.

pub mod attach;
pub mod device;
pub mod inspect;
pub mod policy;
pub mod store;
