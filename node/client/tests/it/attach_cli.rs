//! `mimi send --file` and `mimi download` across three providers (`PROTO-5.10-*`,
//! `CONTENT-external-*`): Bob on b.example sends a file to a room hosted by a.example, Cathy on
//! c.example downloads it through her provider and the hub and gets the same bytes; errors name
//! the problem and never leave a file behind.

use crate::{mimi, mimi_fails};
use mimi_harness::federation;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_send_file_and_download_across_three_providers() {
    let fed = federation(None).await;
    let dir = fed.dir.clone();
    let cleanup = dir.clone();
    let home = dir.join("clients");
    let ca = dir.join("ca.crt").to_str().unwrap().to_owned();
    let addrs = fed.addrs.clone();
    let b_assets = fed.configs[1].parent().unwrap().join("assets");
    tokio::task::spawn_blocking(move || {
        for (i, (profile, node)) in [
            ("alice", "a.example"),
            ("bob", "b.example"),
            ("cathy", "c.example"),
        ]
        .into_iter()
        .enumerate()
        {
            mimi(
                &home,
                profile,
                &[
                    "register", "--node", node, "--addr", &addrs[i], "--ca", &ca, "--user", profile,
                ],
            );
        }
        let v = mimi(&home, "alice", &["room", "create", "files"]);
        let room = v["room"].as_str().unwrap().to_owned();
        mimi(
            &home,
            "alice",
            &["room", "add", "files", "mimi://b.example/u/bob"],
        );
        mimi(
            &home,
            "alice",
            &["room", "add", "files", "mimi://c.example/u/cathy"],
        );
        mimi(&home, "bob", &["sync"]);
        mimi(&home, "cathy", &["sync"]);

        // A file of several pieces (64 KiB each), sent with a description.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let file = dir.join("report.pdf");
        std::fs::write(&file, &data).unwrap();
        let v = mimi(
            &home,
            "bob",
            &[
                "send",
                &room,
                "--file",
                file.to_str().unwrap(),
                "the report",
            ],
        );
        let id = v["id"].as_str().unwrap().to_owned();
        assert_eq!(v["filename"], "report.pdf");
        assert_eq!(v["content_type"], "application/pdf");
        assert_eq!(v["size"], data.len() as u64 + 16);

        // Cathy sees it in her history and downloads it through c.example and the hub.
        let hist = mimi(&home, "cathy", &["history", &room]);
        let texts: Vec<&str> = hist["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("report.pdf") && t.contains("the report")),
            "{texts:?}"
        );
        let out = dir.join("cathy-report.pdf");
        let v = mimi(
            &home,
            "cathy",
            &["download", &room, &id[..12], "--out", out.to_str().unwrap()],
        );
        assert_eq!(v["size"], data.len() as u64);
        assert_eq!(std::fs::read(&out).unwrap(), data);

        // An existing file is not overwritten.
        let e = mimi_fails(
            &home,
            "cathy",
            &["download", &room, &id[..12], "--out", out.to_str().unwrap()],
        );
        assert!(e.contains("exists already"), "{e}");

        // CONTENT-external-hash: the blob altered at b.example; nothing is written.
        let blob = std::fs::read_dir(&b_assets)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_none())
            .unwrap();
        let mut stored = std::fs::read(&blob).unwrap();
        stored[5] ^= 0x80;
        std::fs::write(&blob, &stored).unwrap();
        let altered = dir.join("altered.pdf");
        let e = mimi_fails(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &id[..12],
                "--out",
                altered.to_str().unwrap(),
            ],
        );
        assert!(e.contains("does not match its contentHash"), "{e}");
        assert!(!altered.exists());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("mimi-partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Errors name the problem.
        let e = mimi_fails(
            &home,
            "bob",
            &["send", &room, "--file", "/nonexistent/x.bin"],
        );
        assert!(e.contains("cannot read /nonexistent/x.bin"), "{e}");
        let e = mimi_fails(&home, "bob", &["send", &room]);
        assert!(e.contains("--file PATH"), "{e}");
        let first_text = mimi(&home, "alice", &["send", &room, "plain text"]);
        let e = mimi_fails(
            &home,
            "cathy",
            &["download", &room, first_text["id"].as_str().unwrap()],
        );
        assert!(e.contains("has no attachment"), "{e}");

        // ROOM-policy-assets: the room allows attachments of at most 1000 bytes and no
        // video; the sending client refuses what the policy does not allow, naming it.
        mimi(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "files",
                "--max-attachment",
                "1000",
                "--forbid-type",
                "video/mp4",
            ],
        );
        mimi(&home, "bob", &["sync"]);
        let big = dir.join("big.pdf");
        std::fs::write(&big, vec![7u8; 5000]).unwrap();
        let e = mimi_fails(
            &home,
            "bob",
            &["send", &room, "--file", big.to_str().unwrap()],
        );
        assert!(e.contains("asset policy") && e.contains("1000"), "{e}");
        let clip = dir.join("clip.mp4");
        std::fs::write(&clip, vec![7u8; 10]).unwrap();
        let e = mimi_fails(
            &home,
            "bob",
            &["send", &room, "--file", clip.to_str().unwrap()],
        );
        assert!(e.contains("asset policy"), "{e}");
        let small = dir.join("note.pdf");
        std::fs::write(&small, vec![7u8; 100]).unwrap();
        let note = mimi(
            &home,
            "bob",
            &["send", &room, "--file", small.to_str().unwrap()],
        );
        let note = note["id"].as_str().unwrap().to_owned();
        mimi(&home, "cathy", &["sync"]);
        let got = |name: &str| dir.join(name);
        // By the room's default download type (hubProxy, what `mimi room policy` sets).
        let v = mimi(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &note[..12],
                "--out",
                got("n1.pdf").to_str().unwrap(),
            ],
        );
        assert_eq!(v["size"], 100);

        // ROOM-policy-upload-domains: assets at each sender's own provider, and b.example is
        // not listed. Bob's client refuses before uploading; Cathy's refuses Bob's earlier
        // attachment, whose URL is now outside the room's upload destinations.
        mimi(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "files",
                "--upload-location",
                "localProvider",
                "--upload-domain",
                "a.example",
                "--upload-domain",
                "c.example=c.example",
            ],
        );
        mimi(&home, "bob", &["sync"]);
        mimi(&home, "cathy", &["sync"]);
        let e = mimi_fails(
            &home,
            "bob",
            &["send", &room, "--file", small.to_str().unwrap()],
        );
        assert!(
            e.contains("localProvider") && e.contains("b.example"),
            "{e}"
        );
        let e = mimi_fails(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &note[..12],
                "--out",
                got("n2.pdf").to_str().unwrap(),
            ],
        );
        assert!(e.contains("upload destinations"), "{e}");
        assert!(!got("n2.pdf").exists());
        let info = mimi(&home, "alice", &["room", "info", "files"]);
        let domains = &info["policy"]["assets"]["upload_domains"];
        assert_eq!(domains.as_array().map(Vec::len), Some(2), "{info}");

        // ROOM-policy-download-privacy: hubProxy forbidden, direct the default. Cathy's client
        // downloads directly (c.example fetches from b.example, whose roster has Cathy) and
        // refuses to go through the hub when asked to.
        mimi(
            &home,
            "alice",
            &[
                "room",
                "policy",
                "files",
                "--upload-domain",
                "a.example",
                "--upload-domain",
                "b.example",
                "--upload-domain",
                "c.example",
                "--download-forbid",
                "hubProxy",
                "--download-default",
                "direct",
            ],
        );
        mimi(&home, "cathy", &["sync"]);
        let v = mimi(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &note[..12],
                "--out",
                got("n3.pdf").to_str().unwrap(),
            ],
        );
        assert_eq!(v["size"], 100);
        assert_eq!(std::fs::read(got("n3.pdf")).unwrap(), vec![7u8; 100]);
        let e = mimi_fails(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &note[..12],
                "--via",
                "hubProxy",
                "--out",
                got("n4.pdf").to_str().unwrap(),
            ],
        );
        assert!(e.contains("forbids hubProxy"), "{e}");
        // PROTO-5.10-ohttp: Cathy's device encapsulates the request to a.example's gateway,
        // c.example relays it, a.example fetches from b.example; the file is the same.
        let v = mimi(
            &home,
            "cathy",
            &[
                "download",
                &room,
                &note[..12],
                "--via",
                "ohttp",
                "--out",
                got("n5.pdf").to_str().unwrap(),
            ],
        );
        assert_eq!(v["size"], 100, "{v}");
        assert_eq!(std::fs::read(got("n5.pdf")).unwrap(), vec![7u8; 100]);
        // Bob, on b.example (the asset's own provider), through a.example's gateway too.
        mimi(&home, "bob", &["sync"]);
        let v = mimi(
            &home,
            "bob",
            &[
                "download",
                &room,
                &note[..12],
                "--via",
                "ohttp",
                "--out",
                got("n6.pdf").to_str().unwrap(),
            ],
        );
        assert_eq!(v["size"], 100, "{v}");
        let e = mimi_fails(
            &home,
            "cathy",
            &["download", &room, &note[..12], "--via", "pigeon"],
        );
        assert!(e.contains("--via") && e.contains("pigeon"), "{e}");
        // A default the room would not allow is refused by the editing client.
        let e = mimi_fails(
            &home,
            "alice",
            &["room", "policy", "files", "--download-default", "hubProxy"],
        );
        assert!(e.contains("would not be allowed"), "{e}");
        let e = mimi_fails(
            &home,
            "alice",
            &["room", "policy", "files", "--upload-domain", "not a domain"],
        );
        assert!(e.contains("--upload-domain"), "{e}");
    })
    .await
    .unwrap();
    fed.shutdown().await;
    let _ = std::fs::remove_dir_all(&cleanup);
}
