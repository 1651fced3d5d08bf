//! The `mimi` CLI with `--json`, as a script drives it, for a user with two devices: nodes in
//! this process (mimi-harness), the CLI as a process per call.

use crate::{mimi, mimi_fails, texts};
use mimi_harness::federation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_cli_for_a_user_with_two_devices() {
    let fed = federation(None).await;
    let home = fed.dir.join("clients");
    let ca = fed.dir.join("ca.crt");
    let ca = ca.to_str().unwrap();
    let h = home.clone();
    let (a, b, c) = (
        fed.addrs[0].clone(),
        fed.addrs[1].clone(),
        fed.addrs[2].clone(),
    );
    let ca2 = ca.to_owned();
    tokio::task::spawn_blocking(move || {
        let home = h;
        let ca = ca2.as_str();
        let v = mimi(
            &home,
            "alice",
            &[
                "register",
                "--node",
                "a.example",
                "--addr",
                &a,
                "--ca",
                ca,
                "--user",
                "alice",
            ],
        );
        assert_eq!(v["client"], "mimi://a.example/d/alice/1");
        assert!(v["key_packages"].as_u64().unwrap() >= 5);
        mimi(
            &home,
            "bob",
            &[
                "register",
                "--node",
                "b.example",
                "--addr",
                &b,
                "--ca",
                ca,
                "--user",
                "bob",
            ],
        );
        let v = mimi(&home, "alice", &["room", "create", "lab", "--title", "Lab"]);
        let room = v["room"].as_str().unwrap().to_owned();
        assert_eq!(room, "mimi://a.example/r/lab");
        mimi(
            &home,
            "alice",
            &["room", "add", "lab", "mimi://b.example/u/bob"],
        );
        let v = mimi(&home, "bob", &["sync"]);
        assert_eq!(v["joined"][0], room);

        // Alice's second device joins by external commit and sees what comes next.
        let v = mimi(
            &home,
            "alice-laptop",
            &["device", "add", "--from", "alice", "--device", "laptop"],
        );
        assert_eq!(v["client"], "mimi://a.example/d/alice/laptop");
        assert_eq!(v["joined"][0]["room"], room);
        let m = mimi(&home, "bob", &["send", &room, "hello both devices"]);
        assert_eq!(m["id"].as_str().unwrap().len(), 64);
        let v = mimi(&home, "alice-laptop", &["send", "lab", "from the laptop"]);
        let laptop_msg = v["id"].as_str().unwrap().to_owned();
        for p in ["alice", "alice-laptop", "bob"] {
            let hist = mimi(&home, p, &["history", &room]);
            let t = texts(&hist);
            assert!(t.contains(&"hello both devices".to_owned()), "{p}: {t:?}");
            assert!(t.contains(&"from the laptop".to_owned()), "{p}: {t:?}");
            assert_eq!(hist["info"]["clients"].as_array().unwrap().len(), 3, "{p}");
        }
        // The other device of the same user may edit nothing of another's, but the sender may.
        mimi(
            &home,
            "alice-laptop",
            &["edit", "lab", &laptop_msg[..10], "from the laptop, edited"],
        );
        let hist = mimi(&home, "bob", &["history", &room]);
        assert!(texts(&hist).contains(&"from the laptop, edited".to_owned()));
        let v = mimi(
            &home,
            "bob",
            &[
                "room",
                "agree",
                &room,
                "--with",
                "alice",
                "--with",
                "alice-laptop",
            ],
        );
        assert_eq!(v["agree"], true, "{v}");

        // PROTO-5.4.1-frank-verify: every device verified every frank (nothing flagged).
        for p in ["alice", "alice-laptop", "bob"] {
            let hist = mimi(&home, p, &["history", &room]);
            assert_eq!(hist["flagged"], serde_json::json!([]), "{p}");
        }
        // PROTO-5.9-report-frank: Bob reports the laptop's first message through b.example
        // to the hub, Alice reports Bob's at her own hub; both franks verify there.
        let v = mimi(
            &home,
            "bob",
            &["report", &room, &laptop_msg[..12], "--reason", "spam"],
        );
        assert_eq!(v["reported"].as_str(), Some(laptop_msg.as_str()));
        let bob_msg = m["id"].as_str().unwrap();
        let v = mimi(&home, "alice", &["report", "lab", bob_msg]);
        assert_eq!(v["reported"].as_str(), Some(bob_msg));
        let e = mimi_fails(&home, "alice", &["report", "lab", "01ffff"]);
        assert!(e.contains("no message"), "{e}");

        // Join links (ROOM-join-links): Cathy of c.example joins with a single-use link Alice
        // made; the link is gone after; Cathy's device resyncs and keeps receiving.
        mimi(
            &home,
            "cathy",
            &[
                "register",
                "--node",
                "c.example",
                "--addr",
                &c,
                "--ca",
                ca,
                "--user",
                "cathy",
            ],
        );
        let e = mimi_fails(&home, "cathy", &["join", &room]);
        assert!(e.contains("notAuthorized"), "{e}");
        let v = mimi(
            &home,
            "alice",
            &["room", "link", "lab", "--expires", "3600"],
        );
        let link = v["link"].as_str().unwrap().to_owned();
        assert!(link.starts_with("mimi://a.example/r/lab?join="), "{link}");
        let v = mimi(&home, "alice", &["room", "info", "lab"]);
        assert_eq!(v["join_links"][0], link);
        assert_eq!(v["join_link_policy"], serde_json::json!([false, 3600]));
        let v = mimi(&home, "cathy", &["join", &link]);
        assert_eq!(v["room"], room);
        let e = mimi_fails(&home, "dave", &["join", &link]);
        assert!(e.contains("no profile"), "{e}");
        let e = mimi_fails(&home, "cathy", &["join", "mimi://a.example/r/lab?join="]);
        assert!(e.contains("no code"), "{e}");
        let e = mimi_fails(&home, "cathy", &["join", &link]);
        assert!(e.contains("already in"), "{e}");
        let v = mimi(&home, "alice", &["room", "info", "lab"]);
        assert_eq!(v["join_links"], serde_json::json!([]));
        let v = mimi(&home, "cathy", &["resync", "lab"]);
        assert_eq!(v["resynced"], true);
        let m = mimi(&home, "alice", &["send", "lab", "after Cathy's resync"]);
        let hist = mimi(&home, "cathy", &["history", &room]);
        assert!(
            texts(&hist).contains(&"after Cathy's resync".to_owned()),
            "{hist} {m}"
        );

        // Removed, then added again (found by mimi-lab's big-room-churn): the removed device
        // gets nothing in between, and the second Welcome replaces its dead group.
        mimi(
            &home,
            "alice",
            &["room", "remove", "lab", "mimi://c.example/u/cathy"],
        );
        mimi(&home, "cathy", &["sync"]);
        mimi(&home, "alice", &["send", "lab", "while Cathy is out"]);
        let v = mimi(&home, "cathy", &["sync"]);
        assert_eq!(v["items_not_member"], serde_json::json!({}), "{v}");
        mimi(
            &home,
            "alice",
            &["room", "add", "lab", "mimi://c.example/u/cathy"],
        );
        let v = mimi(&home, "cathy", &["sync"]);
        assert_eq!(v["joined"][0], room, "{v}");
        assert_eq!(v["items_not_member"], serde_json::json!({}), "{v}");
        mimi(&home, "alice", &["send", "lab", "Cathy is back"]);
        let hist = mimi(&home, "cathy", &["history", &room]);
        let t = texts(&hist);
        assert!(t.contains(&"Cathy is back".to_owned()), "{t:?}");
        assert!(!t.contains(&"while Cathy is out".to_owned()), "{t:?}");

        // CAPI-device-remove, PROTO-hub-removal: Alice deletes her laptop; a.example hosts the
        // room, so its hub proposes the removal and Alice's phone commits it. The laptop's
        // token is gone with it.
        let v = mimi(&home, "alice", &["device", "remove", "laptop"]);
        assert_eq!(v["removed"], "mimi://a.example/d/alice/laptop", "{v}");
        assert_eq!(v["proposed_by_hub"], serde_json::json!([room]), "{v}");
        assert_eq!(v["rooms"][0]["room"], room, "{v}");
        let v = mimi(&home, "bob", &["room", "info", "lab"]);
        let clients = v["clients"].as_array().unwrap();
        assert!(
            !clients
                .iter()
                .any(|c| c == "mimi://a.example/d/alice/laptop"),
            "{v}"
        );
        let e = mimi_fails(&home, "alice-laptop", &["sync"]);
        assert!(
            e.contains("401") || e.to_lowercase().contains("token"),
            "{e}"
        );
        let e = mimi_fails(&home, "alice", &["device", "remove", "laptop"]);
        assert!(e.contains("no device"), "{e}");
        let e = mimi_fails(
            &home,
            "alice",
            &["device", "remove", "mimi://b.example/d/bob/1"],
        );
        assert!(e.contains("not a device of"), "{e}");

        // Errors name the problem.
        let e = mimi_fails(&home, "nobody", &["rooms"]);
        assert!(e.contains("mimi register"), "{e}");
        let e = mimi_fails(&home, "bob", &["send", "nowhere", "x"]);
        assert!(e.contains("no room \"nowhere\""), "{e}");
        let e = mimi_fails(&home, "bob", &["room", "add", "lab", "bob"]);
        assert!(e.contains("not a user URI"), "{e}");
    })
    .await
    .unwrap();
    fed.shutdown().await;
}
