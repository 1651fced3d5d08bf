//! The `mimi-node` binary: `ca new`, `init` and `run` as a person would use them; the running
//! node answers the directory over QUIC and stops on SIGTERM.

use http::{HeaderMap, Method, StatusCode};
use mimi_net::NetLimits;
use mimi_net::client::Connector;
use mimi_net::pki::load_certs;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mimi-node"))
}

#[tokio::test]
async fn mimi_node_ca_init_run_serves_and_stops() {
    let dir = std::env::temp_dir().join(format!("mimi-node-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ok = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    ok(bin().args(["ca", "new", "--dir"]).arg(dir.join("ca")));
    // A second CA over the first is refused.
    let again = bin()
        .args(["ca", "new", "--dir"])
        .arg(dir.join("ca"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a CA"));
    ok(bin()
        .args([
            "init",
            "--domain",
            "a.example",
            "--listen",
            "127.0.0.1:0",
            "--peer",
            "b.example=127.0.0.1:9",
            "--ca",
        ])
        .arg(dir.join("ca"))
        .arg("--dir")
        .arg(dir.join("a")));
    let bad = bin()
        .args(["init", "--domain", "not a domain", "--ca"])
        .arg(dir.join("ca"))
        .arg("--dir")
        .arg(dir.join("x"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a provider domain"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let mut child = bin()
        .args(["run", "--config"])
        .arg(dir.join("a/node.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut l = String::new();
        BufReader::new(stdout).read_line(&mut l).unwrap();
        l
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .unwrap()
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit_once(" on ")
        .unwrap()
        .1
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let roots = load_certs(&dir.join("ca/ca.crt")).unwrap();
    let c = Connector::anonymous(
        &roots,
        HashMap::from([("a.example".to_owned(), addr.to_string())]),
        NetLimits::default(),
    )
    .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        c.request(
            "a.example",
            Method::GET,
            mimi_net::paths::DIRECTORY_PATH,
            HeaderMap::new(),
            Default::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("\"notify\""), "{}", r.text());
    // SIGTERM: a graceful stop.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut stopped = false;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !stopped {
        let _ = child.kill();
        panic!("mimi-node did not stop on SIGTERM");
    }
    assert!(
        dir.join("a/node.sqlite").exists(),
        "the SQLite database is in the data directory"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
