//! Integration tests of mimi-client and the `mimi` command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attach_cli;
mod cli_devices;
mod content_cli;
mod demo;
mod policy_cli;
mod store;
