//! # mimi-store
//!
//! A node's persistence, one schema on SQLite (the embedded default: a file in the data
//! directory, WAL) and PostgreSQL (a `postgres://` URL), through sqlx's Any driver with
//! portable SQL (`$N` placeholders, TEXT/BYTEA/BIGINT). Migrations are embedded and applied
//! at open.
//!
//! Ordering and exactly-once rest on transactions (`STORE-*` IDs in `spec-notes/storage.md`):
//! a room's accepted event, its sequence number, the outbox rows for every follower and the
//! local clients' queue rows are written in one [`RoomTx`]; on PostgreSQL the room row is
//! locked (`SELECT … FOR UPDATE`) so several node processes can share one database, and outbox
//! work is claimed with `FOR UPDATE SKIP LOCKED`; on SQLite the single connection serialises
//! writers.

mod error;
mod store;

pub use error::StoreError;
pub use store::{Backend, ClaimedKeyPackage, OutboxRow, QueueItem, RoomRow, RoomTx, Store};
