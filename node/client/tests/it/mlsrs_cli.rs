//! `mimi register --mls mls-rs` (`INTEROP-cli-mlsrs`): a device on mls-rs in the `mimi` CLI,
//! each call a new process (its groups and KeyPackage keys saved in the profile's state file
//! and loaded again), in a room an openmls device created, across three providers.

use crate::{mimi, mimi_fails, texts};
use mimi_harness::federation;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mlsrs_device_in_an_openmls_room() {
    let fed = federation(None).await;
    let home = fed.dir.join("clients");
    let ca = fed.dir.join("ca.crt").to_str().unwrap().to_owned();
    let addrs = fed.addrs.clone();
    tokio::task::spawn_blocking(move || {
        let register = |profile: &str, node: &str, addr: &str, mls: &str| {
            mimi(
                &home,
                profile,
                &[
                    "register", "--node", node, "--addr", addr, "--ca", &ca, "--user", profile,
                    "--mls", mls,
                ],
            )
        };
        let v = register("alice", "a.example", &addrs[0], "openmls");
        assert_eq!(v["mls"], "openmls", "{v}");
        let v = register("bob", "b.example", &addrs[1], "mls-rs");
        assert_eq!(v["mls"], "mls-rs", "{v}");
        assert!(v["key_packages"].as_u64().unwrap() >= 5, "{v}");
        register("cathy", "c.example", &addrs[2], "openmls");
        let e = mimi_fails(
            &home,
            "dave",
            &[
                "register",
                "--node",
                "a.example",
                "--addr",
                &addrs[0],
                "--ca",
                &ca,
                "--user",
                "dave",
                "--mls",
                "gnutls",
            ],
        );
        assert!(e.contains("openmls or mls-rs"), "{e}");

        // Alice (openmls) creates the room and adds Bob (mls-rs) and Cathy in one commit
        // with the participant-list AppDataUpdate; Bob joins from its Welcome.
        let room = mimi(&home, "alice", &["room", "create", "lab"])["room"]
            .as_str()
            .unwrap()
            .to_owned();
        mimi(
            &home,
            "alice",
            &[
                "room",
                "add",
                "lab",
                "mimi://b.example/u/bob",
                "mimi://c.example/u/cathy",
            ],
        );
        let v = mimi(&home, "bob", &["sync"]);
        assert_eq!(v["joined"][0], room, "{v}");
        mimi(&home, "cathy", &["sync"]);
        let agree = |what: &str| {
            let infos: Vec<Value> = ["alice", "bob", "cathy"]
                .iter()
                .map(|p| mimi(&home, p, &["room", "info", &room]))
                .collect();
            for i in &infos[1..] {
                assert_eq!(i["epoch"], infos[0]["epoch"], "{what}: {i} {}", infos[0]);
                assert_eq!(
                    i["epoch_authenticator"], infos[0]["epoch_authenticator"],
                    "{what}: {i} {}",
                    infos[0]
                );
                assert_eq!(i["participants"], infos[0]["participants"], "{what}");
                assert_eq!(i["clients"], infos[0]["clients"], "{what}");
            }
            infos
        };
        let infos = agree("after the join");
        assert_eq!(infos[0]["implementation"], "openmls");
        assert_eq!(infos[1]["implementation"], "mls-rs");

        // Messages both ways: text, a reply, a reaction, an edit; franks verify on mls-rs.
        let b1 = mimi(&home, "bob", &["send", "lab", "hello from mls-rs"])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a1 = mimi(&home, "alice", &["send", "lab", "hello from openmls"])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        mimi(&home, "cathy", &["reply", &room, &b1[..12], "hi Bob"]);
        mimi(&home, "bob", &["react", "lab", &a1[..12], "👍"]);
        mimi(
            &home,
            "bob",
            &["edit", "lab", &b1[..12], "hello from mls-rs, edited"],
        );
        let hist = mimi(&home, "bob", &["history", &room]);
        let t = texts(&hist);
        for want in ["hello from mls-rs, edited", "hello from openmls", "hi Bob"] {
            assert!(t.contains(&want.to_owned()), "bob: {t:?}");
        }
        assert_eq!(hist["flagged"], serde_json::json!([]), "{hist}");
        let v = mimi(
            &home,
            "alice",
            &["room", "agree", &room, "--with", "bob", "--with", "cathy"],
        );
        assert_eq!(v["agree"], true, "{v}");

        // Self-updates by both libraries.
        let v = mimi(&home, "bob", &["room", "update", "lab"]);
        let e1 = v["epoch"].as_u64().unwrap();
        mimi(&home, "alice", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let infos = agree("after Bob's (mls-rs) self-update");
        assert_eq!(infos[0]["epoch"], e1);
        let v = mimi(&home, "alice", &["room", "update", "lab"]);
        assert_eq!(v["epoch"].as_u64().unwrap(), e1 + 1);
        mimi(&home, "bob", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        agree("after Alice's (openmls) self-update");

        // Bob's second device, also mls-rs: it joins by an mls-rs external commit (a listed
        // user's new device, no list change) and talks.
        let v = mimi(
            &home,
            "bob-tablet",
            &[
                "device", "add", "--from", "bob", "--device", "tablet", "--mls", "mls-rs",
            ],
        );
        assert_eq!(v["client"], "mimi://b.example/d/bob/tablet", "{v}");
        assert_eq!(v["joined"][0]["room"], room, "{v}");
        mimi(&home, "alice", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let infos = agree("after Bob's tablet joined");
        let tablet = mimi(&home, "bob-tablet", &["room", "info", &room]);
        assert_eq!(tablet["implementation"], "mls-rs");
        assert_eq!(
            tablet["epoch_authenticator"],
            infos[0]["epoch_authenticator"]
        );
        assert_eq!(
            infos[0]["clients"].as_array().unwrap().len(),
            4,
            "{}",
            infos[0]
        );
        mimi(&home, "bob-tablet", &["send", "lab", "from the tablet"]);
        for p in ["alice", "bob", "cathy"] {
            let t = texts(&mimi(&home, p, &["history", &room]));
            assert!(t.contains(&"from the tablet".to_owned()), "{p}: {t:?}");
        }

        // Bob deletes the tablet; his mls-rs device commits its removal (b.example hosts no
        // room, so no hub proposes it). Nothing of the room reaches the tablet afterwards.
        let v = mimi(&home, "bob", &["device", "remove", "tablet"]);
        assert_eq!(v["rooms"][0]["room"], room, "{v}");
        mimi(&home, "alice", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let infos = agree("after the tablet's removal");
        assert_eq!(
            infos[0]["clients"].as_array().unwrap().len(),
            3,
            "{}",
            infos[0]
        );
        let e = mimi_fails(&home, "bob-tablet", &["sync"]);
        assert!(
            e.contains("401") || e.to_lowercase().contains("token"),
            "{e}"
        );
        mimi(&home, "alice", &["send", "lab", "after the tablet left"]);
        let t = texts(&mimi(&home, "bob", &["history", &room]));
        assert!(t.contains(&"after the tablet left".to_owned()), "{t:?}");

        // What an mls-rs device cannot do says why, and changes nothing.
        let e = mimi_fails(&home, "bob", &["room", "create", "own"]);
        assert!(e.contains("mls-rs") && e.contains("interop.md"), "{e}");
        let e = mimi_fails(
            &home,
            "bob",
            &["room", "remove", "lab", "mimi://c.example/u/cathy"],
        );
        assert!(e.contains("mls-rs"), "{e}");
        let e = mimi_fails(
            &home,
            "bob",
            &["room", "add", "lab", "mimi://a.example/u/dave"],
        );
        assert!(e.contains("not a participant yet"), "{e}");
        let e = mimi_fails(
            &home,
            "bob",
            &["room", "policy", "lab", "--read-receipts", "required"],
        );
        assert!(e.contains("mls-rs"), "{e}");
        let infos = agree("after the refusals");
        // A resync works on mls-rs: an external commit as the same client, removing its old
        // leaf (protocol-06 §3.6); everyone follows it.
        let v = mimi(&home, "bob", &["resync", "lab"]);
        assert_eq!(
            v["epoch"].as_u64(),
            Some(infos[0]["epoch"].as_u64().unwrap() + 1),
            "{v}"
        );
        mimi(&home, "alice", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let infos = agree("after Bob's resync");
        assert_eq!(infos[1]["clients"], infos[0]["clients"]);
        mimi(&home, "bob", &["send", "lab", "after the resync"]);
        let t = texts(&mimi(&home, "alice", &["history", &room]));
        assert!(t.contains(&"after the resync".to_owned()), "{t:?}");
        assert_eq!(infos[1]["implementation"], "mls-rs");
        let v = mimi(
            &home,
            "alice",
            &["room", "agree", &room, "--with", "bob", "--with", "cathy"],
        );
        assert_eq!(v["agree"], true, "{v}");

        // An openmls member adds a user (Add + participant-list AppDataUpdate): the mls-rs
        // device cannot decode that commit, and its sync says so instead of failing silently.
        register("dave", "a.example", &addrs[0], "openmls");
        let before = mimi(&home, "bob", &["room", "info", &room])["epoch"].clone();
        mimi(
            &home,
            "alice",
            &["room", "add", "lab", "mimi://a.example/u/dave"],
        );
        let v = mimi(&home, "bob", &["sync"]);
        let notes = v["skipped"].to_string();
        assert!(
            notes.contains("cannot decode") && notes.contains("interop.md"),
            "{v}"
        );
        let after = mimi(&home, "bob", &["room", "info", &room]);
        assert_eq!(after["epoch"], before, "{after}");
        // The way back: a resync. The hub's GroupInfo carries the new room state as a
        // GroupContext extension (which mls-rs reads), and the external commit needs no
        // AppDataUpdate; Bob is at the room's epoch again, sees Dave, and reads what follows.
        mimi(&home, "bob", &["resync", "lab"]);
        mimi(&home, "alice", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let infos = agree("after Bob's resync past the AppDataUpdate");
        assert!(
            infos[1]["participants"]
                .to_string()
                .contains("a.example/u/dave"),
            "{}",
            infos[1]
        );
        mimi(&home, "alice", &["send", "lab", "welcome Dave"]);
        let t = texts(&mimi(&home, "bob", &["history", &room]));
        assert!(t.contains(&"welcome Dave".to_owned()), "{t:?}");
    })
    .await
    .unwrap();
    fed.shutdown().await;
}
