//! Tests of mimi-store, on SQLite (temp files) and on PostgreSQL when `MIMI_TEST_POSTGRES_URL`
//! is set (`.ci/run` starts a server and sets it). Names are unique per run so tests can share
//! one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod store;
