//! # mimi-store
//!
//! A node's persistence, one schema on SQLite (the embedded default: a file in the data
//! directory, WAL, foreign keys, busy timeout) and PostgreSQL (a `postgres://` URL), with
//! portable SQL (`$N` placeholders, TEXT/BYTEA/BIGINT, no auto-increment): PostgreSQL through
//! sqlx's Any driver, SQLite through rusqlite on the calling thread (`STORE-sqlite-inline`,
//! the `sql` module). Migrations are embedded and applied at open (by sqlx on both). The store never interprets
//! what it keeps: MLS state and protocol bodies are bytes, identifiers are text.
//!
//! Ordering and exactly-once rest on transactions (`STORE-*` IDs in `spec-notes/storage.md`):
//!
//! - a room's accepted event, its sequence number, the outbox rows for every follower and the
//!   local clients' queue rows are written in one [`RoomTx`] (`STORE-persist-before-ack`); the
//!   room row is locked (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so
//!   several node processes can share one PostgreSQL database (`STORE-room-serial`);
//! - outbox work is leased per (follower, room) stream and claimed with `FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL (`STORE-outbox-claim`, `STORE-outbox-order`);
//! - a follower's dedupe record of a notify item is written in the same transaction as the
//!   client-queue rows it produces ([`InboxTx`], [`Store::deliver_inbox`];
//!   `STORE-inbox-dedupe`);
//! - KeyPackages are claimed at most once ([`Store::claim_key_package`];
//!   `STORE-kp-claim-once`).
//!
//! Every method takes the current time as an argument (`now_ms`, Unix milliseconds); the store
//! has no clock of its own.

mod admin;
mod consent;
mod db;
mod error;
mod faults;
mod inbox;
mod key_packages;
mod outbox;
mod queue;
mod rooms;
mod secrets;
mod sql;
mod submitted;
mod users;

pub use consent::{AbuseReport, ConsentEntry};
pub use db::{Backend, SQLITE_FILE, Store, StoreOptions};
pub use error::StoreError;
pub use inbox::InboxTx;
pub use key_packages::{ClaimedKeyPackage, NewKeyPackage};
pub use outbox::{OutboxRow, OutboxStats};
pub use queue::QueueItem;
pub use rooms::{EntryChanges, RoomEvent, RoomRow, RoomTx, StoredState};
pub use users::{ConsentPolicy, UserRow, token_hash};
