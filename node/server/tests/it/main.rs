//! Tests of the node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod binary;
mod config;
mod federation;
mod metrics;
mod service;

/// A test's temporary directory, removed when dropped (also when the test panics).
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node over a SQLite file in its own temporary directory, which goes with it.
pub struct TestNode {
    pub node: mimi_node::service::Node,
    pub _dir: TempDir,
}

impl std::ops::Deref for TestNode {
    type Target = mimi_node::service::Node;
    fn deref(&self) -> &Self::Target {
        &self.node
    }
}
