//! `mimi room policy` and what the policy does (`ROOM-policy-*`): three providers in this
//! process (mimi-harness), the CLI as a process per call. Alice (a.example, the hub)
//! sets the policy; Bob (b.example) and Cathy (c.example) live on followers.

use crate::{mimi, mimi_fails};
use mimi_harness::federation;
use serde_json::Value;
use std::process::Command;

fn message<'a>(history: &'a Value, text: &str) -> Option<&'a Value> {
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"].as_str() == Some(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_policy_set_shown_and_obeyed_across_three_providers() {
    let fed = federation(None).await;
    let home = fed.dir.join("clients");
    let ca = fed.dir.join("ca.crt").to_str().unwrap().to_owned();
    let addrs = fed.addrs.clone();
    tokio::task::spawn_blocking(move || {
        for (user, node, addr) in [
            ("alice", "a.example", &addrs[0]),
            ("bob", "b.example", &addrs[1]),
            ("cathy", "c.example", &addrs[2]),
        ] {
            mimi(
                &home,
                user,
                &[
                    "register", "--node", node, "--addr", addr, "--ca", &ca, "--user", user,
                ],
            );
        }
        let room = mimi(&home, "alice", &["room", "create", "club"])["room"]
            .as_str()
            .unwrap()
            .to_owned();
        mimi(
            &home,
            "alice",
            &["room", "add", "club", "mimi://b.example/u/bob"],
        );
        mimi(&home, "bob", &["sync"]);

        // Bad input: a clear error, nothing committed.
        let e = mimi_fails(
            &home,
            "alice",
            &["room", "policy", "club", "--read-receipts", "maybe"],
        );
        assert!(e.contains("optional, required or forbidden"), "{e}");
        let e = mimi_fails(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "club",
                "--expiry-min",
                "10",
                "--expiry-max",
                "5",
            ],
        );
        assert!(e.contains("MessageExpiration"), "{e}");
        let e = mimi_fails(&home, "alice", &["room", "policy", "club"]);
        assert!(e.contains("nothing to change"), "{e}");
        // Only a holder of the disruptive capabilities may set the policy (Bob is ordinary).
        let e = mimi_fails(
            &home,
            "bob",
            &["room", "policy", "club", "--history", "forbidden"],
        );
        assert!(e.contains("notAllowed"), "{e}");

        // ROOM-policy-*: Alice (the creator, group_admin) sets every component in one commit.
        mimi(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "club",
                "--role",
                "2",
                "--max-active",
                "1",
                "--delivery-receipts",
                "forbidden",
                "--read-receipts",
                "required",
                "--expiry",
                "optional",
                "--expiry-min",
                "1",
                "--expiry-max",
                "3600",
                "--max-image",
                "1000000",
                "--forbid-type",
                "text/html",
                "--permit-type",
                "image/png",
                "--permit-type",
                "text/plain",
                "--history",
                "optional",
                "--history-roles",
                "3",
                "--history-period",
                "86400",
                "--link-previews",
                "forbidden",
                "--link-proxy-use",
                "forbidden",
            ],
        );
        for p in ["alice", "bob"] {
            let info = mimi(&home, p, &["room", "info", "club"]);
            let pol = &info["policy"];
            let limits = pol["active_limits"].as_array().unwrap();
            let two = limits.iter().find(|l| l["role"] == 2).unwrap();
            assert_eq!(two["max_active"], 1, "{p}: {pol}");
            assert_eq!(pol["status_notifications"]["delivery"], "forbidden", "{p}");
            assert_eq!(pol["status_notifications"]["read"], "required", "{p}");
            assert_eq!(pol["message_expiration"]["max_seconds"], 3600, "{p}");
            assert_eq!(pol["assets"]["max_image"], 1_000_000u64, "{p}");
            assert_eq!(
                pol["assets"]["forbidden_media_types"][0], "text/html",
                "{p}"
            );
            assert_eq!(
                pol["assets"]["permitted_media_types"][1], "text/plain",
                "{p}"
            );
            assert_eq!(pol["history"]["roles_that_can_share"][0], 3, "{p}");
            assert_eq!(
                pol["link_previews"]["send_link_previews"], "forbidden",
                "{p}"
            );
        }
        // The human form shows it too.
        let out = Command::new(env!("CARGO_BIN_EXE_mimi"))
            .arg("--home")
            .arg(&home)
            .args(["--profile", "alice", "room", "info", "club"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("policy: receipts: delivery forbidden, read required"),
            "{text}"
        );
        assert!(text.contains("at most 1"), "{text}");

        // ROOM-policy-status: no delivery receipts (forbidden); read receipts are sent when
        // the history is shown (required); an explicit delivered/read the room forbids is
        // refused.
        mimi(&home, "bob", &["send", &room, "hello"]);
        mimi(&home, "alice", &["sync"]);
        let h = mimi(&home, "alice", &["history", "club"]);
        assert!(message(&h, "hello").unwrap()["expires"].is_null());
        let h = mimi(&home, "bob", &["history", &room]);
        let statuses = &message(&h, "hello").unwrap()["statuses"];
        assert_eq!(statuses["mimi://a.example/u/alice"], "read", "{statuses}");

        // ROOM-policy-expiry: a requested expiry outside the bounds is refused; one inside
        // is set and shown.
        let e = mimi_fails(
            &home,
            "bob",
            &["send", &room, "too long", "--expires", "99999"],
        );
        assert!(e.contains("from 1 to 3600 seconds"), "{e}");
        mimi(
            &home,
            "bob",
            &["send", &room, "ten minutes", "--expires", "600"],
        );
        let h = mimi(&home, "alice", &["history", "club"]);
        let m = message(&h, "ten minutes").unwrap();
        assert_eq!(m["expires"]["relative"], false, "{m}");
        assert!(
            m["expires"]["time"].as_u64().unwrap() > 1_700_000_000,
            "{m}"
        );

        // ROOM-policy-active-limits: role 2 allows one active participant (Bob). Bob, on
        // b.example, adds Cathy of c.example as role 2: the hub refuses with notAllowed and
        // the refusal reaches Bob through his provider; nothing changes.
        mimi(&home, "cathy", &["keys", "publish"]);
        let e = mimi_fails(
            &home,
            "bob",
            &["room", "add", &room, "mimi://c.example/u/cathy"],
        );
        assert!(e.contains("notAllowed"), "{e}");
        assert!(e.contains("at most 1 active"), "{e}");
        let info = mimi(&home, "alice", &["room", "info", "club"]);
        assert_eq!(info["participants"].as_array().unwrap().len(), 2, "{info}");
        // As an admin (role 3, no limit) she may be added.
        mimi(
            &home,
            "alice",
            &[
                "room",
                "add",
                "club",
                "mimi://c.example/u/cathy",
                "--role",
                "3",
            ],
        );
        mimi(&home, "cathy", &["sync"]);

        // ROOM-policy-expiry: with a default of one second, every message expires; each
        // device deletes it from its store once it has (bounded wait, no timing assert).
        mimi(
            &home,
            "alice",
            &["room", "policy", "club", "--expiry-default", "1"],
        );
        mimi(&home, "bob", &["send", &room, "vanishing"]);
        let h = mimi(&home, "bob", &["history", &room]);
        if let Some(m) = message(&h, "vanishing") {
            assert_eq!(m["expires"]["relative"], false, "{m}");
        }
        for p in ["alice", "bob", "cathy"] {
            let mut gone = false;
            for _ in 0..60 {
                let h = mimi(&home, p, &["history", "mimi://a.example/r/club"]);
                if p != "cathy" {
                    assert!(
                        message(&h, "hello").is_some(),
                        "{p}: the unexpiring message stays"
                    );
                }
                if message(&h, "vanishing").is_none() {
                    gone = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            assert!(gone, "{p}: the expired message was not deleted");
        }
        // ROOM-policy-status: a read receipt the room forbids is not sent.
        mimi(
            &home,
            "alice",
            &["room", "policy", "club", "--read-receipts", "forbidden"],
        );
        let e = mimi_fails(&home, "alice", &["read", "club"]);
        assert!(e.contains("forbids read receipts"), "{e}");
    })
    .await
    .unwrap();
    fed.shutdown().await;
}
