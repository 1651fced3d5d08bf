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

/// Registers Alice (a.example), Bob (b.example) and Cathy (c.example); Alice creates `club`
/// and adds Bob, who syncs. The room's URI.
fn club_with_bob(home: &std::path::Path, ca: &str, addrs: &[String]) -> String {
    for (user, node, addr) in [
        ("alice", "a.example", &addrs[0]),
        ("bob", "b.example", &addrs[1]),
        ("cathy", "c.example", &addrs[2]),
    ] {
        mimi(
            home,
            user,
            &[
                "register", "--node", node, "--addr", addr, "--ca", ca, "--user", user,
            ],
        );
    }
    let room = mimi(home, "alice", &["room", "create", "club"])["room"]
        .as_str()
        .unwrap()
        .to_owned();
    mimi(
        home,
        "alice",
        &["room", "add", "club", "mimi://b.example/u/bob"],
    );
    mimi(home, "bob", &["sync"]);
    room
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_policy_set_shown_and_obeyed_across_three_providers() {
    let fed = federation(None).await;
    let home = fed.dir.join("clients");
    let ca = fed.dir.join("ca.crt").to_str().unwrap().to_owned();
    let addrs = fed.addrs.clone();
    tokio::task::spawn_blocking(move || {
        let room = club_with_bob(&home, &ca, &addrs);

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

/// ROOM-policy-logging, ROOM-policy-bots, ROOM-policy-operational from the CLI: Alice (the
/// hub's user) sets logging, a bot and MLS operational parameters; Bob on b.example sees them
/// (JSON and the human form); Cathy on c.example cannot join by link while external commits
/// are forbidden (the client says why before trying), and can once they are allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_policy_logging_bots_and_operational_parameters_across_three_providers() {
    let fed = federation(None).await;
    let home = fed.dir.join("clients");
    let ca = fed.dir.join("ca.crt").to_str().unwrap().to_owned();
    let addrs = fed.addrs.clone();
    tokio::task::spawn_blocking(move || {
        let room = club_with_bob(&home, &ca, &addrs);

        // Bad input: clear errors, nothing committed.
        let policy = |extra: &[&str]| {
            let mut a = vec!["room", "policy", "club"];
            a.extend_from_slice(extra);
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let fails = |extra: &[&str], needle: &str| {
            let args = policy(extra);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let e = mimi_fails(&home, "alice", &args);
            assert!(e.contains(needle), "{extra:?}: {e}");
        };
        fails(&["--logging", "required"], "at least one --logging-client");
        fails(
            &[
                "--logging",
                "optional",
                "--logging-client",
                "mimi://a.example/d/log/1",
                "--logging-client",
                "mimi://a.example/d/log/2",
            ],
            "no more than one logging client",
        );
        fails(&["--add-bot", "poker", "--bot-role", "9"], "no role 9");
        fails(
            &["--add-bot", "helper", "--bot-local", "--bot-role", "2"],
            "role 0",
        );
        fails(&["--forbid-proposals", "zz"], "0 to 65535");
        fails(&["--remove-bot", "nobody"], "no bot \"nobody\"");
        fails(&["--pending-proposals", "soon"], "random:MIN-MAX");
        fails(
            &[
                "--mandatory-proposals",
                "0x000a",
                "--forbid-proposals",
                "0x000a",
            ],
            "both mandatory and forbidden",
        );
        let info = mimi(&home, "alice", &["room", "info", "club"]);
        assert!(info["policy"]["operational"].is_null(), "{info}");

        mimi(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "club",
                "--logging",
                "required",
                "--logging-client",
                "mimi://a.example/d/archiver/1",
                "--logging-policy",
                "https://a.example/logging",
                "--add-bot",
                "poker",
                "--bot-role",
                "2",
                "--bot-per-user",
                "--bot-description",
                "deals cards",
                "--external-commits",
                "false",
                "--pad-to-size",
                "32",
                "--epoch-tolerance",
                "3",
                "--pending-proposals",
                "random:10-500",
                "--leaf-update",
                "60,86400,604800",
            ],
        );
        mimi(&home, "bob", &["sync"]);
        let info = mimi(&home, "bob", &["room", "info", &room]);
        let pol = &info["policy"];
        assert_eq!(pol["logging"]["logging"], "required", "{pol}");
        assert_eq!(pol["logging"]["active"], true, "{pol}");
        assert_eq!(
            pol["logging"]["logging_clients"][0],
            "mimi://a.example/d/archiver/1"
        );
        assert_eq!(pol["bots"][0]["name"], "poker", "{pol}");
        assert_eq!(pol["bots"][0]["bot_role_index"], 2, "{pol}");
        assert_eq!(pol["bots"][0]["per_user_content"], true, "{pol}");
        let op = &pol["operational"];
        assert_eq!(op["external_commit_allowed"], false, "{op}");
        assert_eq!(op["external_proposal_allowed"], true, "{op}");
        assert_eq!(op["pad_to_size"], 32, "{op}");
        assert_eq!(op["epoch_tolerance"], 3, "{op}");
        assert_eq!(op["leaf_node_update_time"]["default"], 86400, "{op}");
        let out = Command::new(env!("CARGO_BIN_EXE_mimi"))
            .arg("--home")
            .arg(&home)
            .args(["--profile", "bob", "room", "info", &room])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "logging: required, ACTIVE: messages in this room are logged by mimi://a.example/d/archiver/1",
            "bot \"poker\": role 2, may send each member different content",
            "MLS: external commits forbidden, external proposals allowed, pending proposals random delay 10..500 ms",
            "padded to 32 octets",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }

        // CLIENT-local-rules: Bob's profile may refuse logged rooms and targeting bots.
        let v = mimi(&home, "bob", &["settings"]);
        assert_eq!(v["refuse_logged_rooms"], false, "{v}");
        assert_eq!(v["delivery_receipts"], true, "{v}");
        let e = mimi_fails(&home, "bob", &["settings", "--refuse-logged-rooms", "maybe"]);
        assert!(e.contains("on or off"), "{e}");
        let v = mimi(&home, "bob", &["settings", "--refuse-logged-rooms", "on"]);
        assert_eq!(v["refuse_logged_rooms"], true, "{v}");
        let e = mimi_fails(&home, "bob", &["send", &room, "not into a logged room"]);
        assert!(e.contains("is logged") && e.contains("archiver"), "{e}");
        mimi(
            &home,
            "bob",
            &[
                "settings",
                "--refuse-logged-rooms",
                "off",
                "--refuse-targeting-bots",
                "on",
            ],
        );
        let e = mimi_fails(&home, "bob", &["send", &room, "not with a poker bot"]);
        assert!(e.contains("\"poker\"") && e.contains("different content"), "{e}");
        mimi(&home, "bob", &["settings", "--refuse-targeting-bots", "off"]);
        let h = mimi(&home, "alice", &["history", "club"]);
        assert!(message(&h, "not into a logged room").is_none(), "{h}");

        // Messages still flow (padded now).
        mimi(&home, "bob", &["send", &room, "logged hello"]);
        mimi(&home, "alice", &["sync"]);
        let h = mimi(&home, "alice", &["history", "club"]);
        assert!(message(&h, "logged hello").is_some(), "{h}");

        // ROOM-policy-operational-external-commit: no join by external commit.
        let link = mimi(&home, "alice", &["room", "link", "club"])["link"]
            .as_str()
            .unwrap()
            .to_owned();
        let e = mimi_fails(&home, "cathy", &["join", &link]);
        assert!(e.contains("external_commit_allowed is false"), "{e}");
        mimi(
            &home,
            "alice",
            &["room", "policy", "club", "--external-commits", "true"],
        );
        let v = mimi(&home, "cathy", &["join", &link]);
        assert_eq!(v["room"], room.as_str());
        mimi(&home, "bob", &["sync"]);
        let info = mimi(&home, "bob", &["room", "info", &room]);
        assert_eq!(info["participants"].as_array().unwrap().len(), 3, "{info}");

        // Bots come and go by name.
        mimi(
            &home,
            "alice",
            &["room", "policy", "club", "--remove-bot", "poker"],
        );
        let info = mimi(&home, "alice", &["room", "info", "club"]);
        assert_eq!(info["policy"]["bots"], serde_json::json!([]), "{info}");
    })
    .await
    .unwrap();
    fed.shutdown().await;
}
