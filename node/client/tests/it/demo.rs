//! Issue 6's proof: `scripts/federation.sh up`, `scripts/demo.sh` and `down` on a fresh
//! directory, as a person would run them; the demo's final check (`mimi room agree`) must pass
//! and `down` must stop exactly the federation's processes.

use std::path::Path;
use std::process::Command;

fn script(root: &Path, name: &str, args: &[&str], port: u16) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(root.join("scripts").join(name))
        .args(args)
        .env("MIMI_FED_PORT", port.to_string());
    // The binaries this test run built (`cargo test --workspace` builds mimi-node's too):
    // rebuilding them with another feature set inside the test would take a minute.
    let bins = Path::new(env!("CARGO_BIN_EXE_mimi")).parent().unwrap();
    if bins.join("mimi-node").exists() {
        c.env("MIMI_BIN_DIR", bins);
    }
    c.output().unwrap()
}

#[test]
fn federation_up_demo_down_on_a_fresh_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::temp_dir().join(format!("mimi-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    // A port range of our own (UDP, loopback), below the ephemeral range (32768+).
    let port = 20_000 + (std::process::id() % 10_000) as u16;
    let up = script(&root, "federation.sh", &["up", d], port);
    let out = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    for dom in ["a.example", "b.example", "c.example"] {
        assert!(out.contains(&format!("{dom}: running")), "{out}");
    }
    let demo = script(&root, "demo.sh", &[d], port);
    let shown = String::from_utf8_lossy(&demo.stdout).into_owned();
    let down = script(&root, "federation.sh", &["down", d], port);
    assert!(
        demo.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(down.status.success());
    // The final views: everyone left agrees, and what each person sees is there.
    assert!(shown.contains("alice, cathy, cathy2 agree on"), "{shown}");
    assert!(
        shown.contains("Welcome to the club house. (edited)"),
        "{shown}"
    );
    assert!(shown.contains("↳ reply to"), "{shown}");
    assert!(shown.contains("👍 1 (cathy)"), "{shown}");
    assert!(shown.contains("(deleted)"), "{shown}");
    assert!(shown.contains("read by"), "{shown}");
    assert!(shown.contains("Hello from my tablet"), "{shown}");
    // Bob left: the room lists Alice and Cathy only.
    assert!(
        shown.contains("participant mimi://c.example/u/cathy"),
        "{shown}"
    );
    assert!(
        !shown.contains("participant mimi://b.example/u/bob"),
        "{shown}"
    );
    // down stopped them all.
    let status = script(&root, "federation.sh", &["status", d], port);
    let s = String::from_utf8_lossy(&status.stdout);
    assert_eq!(s.matches(": stopped").count(), 3, "{s}");
    let _ = std::fs::remove_dir_all(&dir);
}
