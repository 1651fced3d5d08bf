//! Integration tests of mimi-client and the `mimi` command line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attach_cli;
mod cli_devices;
mod content_cli;
mod demo;
mod mlsrs_cli;
mod policy_cli;
mod store;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The `mimi` CLI as a process, with `--json`.
pub fn run(home: &Path, profile: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mimi"))
        .arg("--home")
        .arg(home)
        .args(["--profile", profile, "--json"])
        .args(args)
        .output()
        .unwrap()
}

/// A `mimi` call that must succeed: its JSON output.
pub fn mimi(home: &Path, profile: &str, args: &[&str]) -> Value {
    let out = run(home, profile, args);
    assert!(
        out.status.success(),
        "mimi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A `mimi` call that must fail: its error output.
pub fn mimi_fails(home: &Path, profile: &str, args: &[&str]) -> String {
    let out = run(home, profile, args);
    assert!(!out.status.success(), "mimi {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The texts of a `mimi --json history` answer, in order.
pub fn texts(history: &Value) -> Vec<String> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str().map(str::to_owned))
        .collect()
}
