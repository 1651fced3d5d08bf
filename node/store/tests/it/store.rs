use mimi_store::{Backend, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

static N: AtomicU64 = AtomicU64::new(0);

/// A unique tag for names in this test.
fn tag(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Every backend available: SQLite always, PostgreSQL when configured.
async fn backends(name: &str) -> Vec<Store> {
    let dir = std::env::temp_dir().join(tag(name));
    std::fs::create_dir_all(&dir).unwrap();
    let mut v = vec![
        Store::open(dir.join("node.sqlite").to_str().unwrap())
            .await
            .unwrap(),
    ];
    if let Ok(url) = std::env::var("MIMI_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        v.push(Store::open(&url).await.unwrap());
    }
    v
}

#[tokio::test]
async fn store_token_hash_devices() {
    for s in backends("devices").await {
        let t = tag("d");
        let user = format!("mimi://a.example/u/{t}");
        let client = format!("mimi://a.example/d/{t}/1");
        s.register_device(&user, &client, t.as_bytes(), 1)
            .await
            .unwrap();
        assert_eq!(
            s.device_by_token(t.as_bytes()).await.unwrap(),
            Some((user.clone(), client.clone()))
        );
        assert_eq!(s.device_by_token(b"other").await.unwrap(), None);
        assert!(
            matches!(
                s.register_device(&user, &client, b"x", 1).await,
                Err(StoreError::Conflict(_))
            ),
            "{:?}",
            s.backend()
        );
        assert_eq!(s.clients_of(&user).await.unwrap(), [client]);
    }
}

#[tokio::test]
async fn store_kp_claim_once_never_expired_last_resort_last() {
    for s in backends("kp").await {
        let t = tag("kp");
        let client = format!("mimi://b.example/d/{t}/1");
        let now_ms = 1_000_000_000;
        let kps = vec![
            (
                format!("{t}-a").into_bytes(),
                b"kp-a".to_vec(),
                2_000_000,
                false,
            ),
            (
                format!("{t}-b").into_bytes(),
                b"kp-b".to_vec(),
                2_000_000,
                false,
            ),
            (
                format!("{t}-old").into_bytes(),
                b"kp-old".to_vec(),
                10,
                false,
            ),
            (
                format!("{t}-z").into_bytes(),
                b"kp-last".to_vec(),
                2_000_000,
                true,
            ),
        ];
        s.add_key_packages(&client, &kps).await.unwrap();
        let a = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        let b = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        assert_ne!(a.kp_ref, b.kp_ref);
        assert!(!a.last_resort && !b.last_resort);
        // The expired one is never handed out; then the last-resort one, again and again.
        let l1 = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        let l2 = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        assert!(l1.last_resort && l2.last_resort);
        assert_eq!(l1.key_package, b"kp-last");
        assert_eq!(
            s.claim_key_package("mimi://b.example/d/nobody/1", now_ms)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.client_of_key_package(&a.kp_ref).await.unwrap().as_deref(),
            Some(client.as_str())
        );
        assert!(matches!(
            s.add_key_packages(&client, &kps[..1]).await,
            Err(StoreError::Conflict(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_kp_claim_once_under_concurrency() {
    for s in backends("kp-concurrent").await {
        let t = tag("kpc");
        let client = format!("mimi://b.example/d/{t}/1");
        let kps: Vec<_> = (0..10)
            .map(|n| {
                (
                    format!("{t}-{n:02}").into_bytes(),
                    vec![n as u8],
                    u64::MAX / 4,
                    false,
                )
            })
            .collect();
        s.add_key_packages(&client, &kps).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = s.clone();
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                s.claim_key_package(&client, 1).await.unwrap()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            if let Some(k) = t.await.unwrap() {
                got.push(k.kp_ref);
            }
        }
        let distinct: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(
            got.len(),
            10,
            "{:?}: exactly the ten KeyPackages were handed out",
            s.backend()
        );
        assert_eq!(distinct.len(), 10, "{:?}: never one twice", s.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_room_seq_consecutive_under_concurrency_and_rollback_leaves_nothing() {
    for s in backends("room").await {
        let room = format!("mimi://a.example/r/{}", tag("r"));
        s.create_room(&room, "a.example", b"state0", 0)
            .await
            .unwrap();
        assert!(matches!(
            s.create_room(&room, "a.example", b"x", 0).await,
            Err(StoreError::Conflict(_))
        ));
        // A transaction dropped without commit leaves nothing behind.
        {
            let mut tx = s.begin_room(&room).await.unwrap();
            tx.append_event(5, b"lost").await.unwrap();
            tx.enqueue_outbox("b.example", 1, b"lost", 5).await.unwrap();
        }
        assert_eq!(s.room(&room).await.unwrap().unwrap().next_seq, 1);
        assert!(
            s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .all(|(f, _)| f != "never")
        );
        // Concurrent appends get consecutive numbers.
        let mut tasks = Vec::new();
        for n in 0..16u64 {
            let s = s.clone();
            let room = room.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin_room(&room).await.unwrap();
                let seq = tx
                    .append_event(n, format!("event {n}").as_bytes())
                    .await
                    .unwrap();
                let epoch = tx.room().epoch + 1;
                tx.set_state(format!("state {seq}").into_bytes(), epoch);
                tx.commit().await.unwrap();
                seq
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=16).collect::<Vec<_>>(), "{:?}", s.backend());
        let r = s.room(&room).await.unwrap().unwrap();
        assert_eq!((r.next_seq, r.epoch), (17, 16));
        assert!(matches!(
            s.begin_room("mimi://a.example/r/none").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outbox_claim_never_overlaps_and_keeps_order() {
    for s in backends("outbox").await {
        let room = format!("mimi://a.example/r/{}", tag("o"));
        let follower = format!("{}.example", tag("f"));
        s.create_room(&room, "a.example", b"s", 0).await.unwrap();
        let mut tx = s.begin_room(&room).await.unwrap();
        for n in 0..6u64 {
            let ev = tx.append_event(n, b"e").await.unwrap();
            let stream = tx
                .enqueue_outbox(&follower, ev, format!("item {n}").as_bytes(), 0)
                .await
                .unwrap();
            assert_eq!(stream, n + 1, "stream numbers from 1");
        }
        let member = format!("mimi://a.example/d/{}/1", tag("m"));
        tx.enqueue_client(&member, b"local", 0).await.unwrap();
        tx.commit().await.unwrap();
        assert!(
            s.outbox_depth()
                .await
                .unwrap()
                .contains(&(follower.clone(), 6))
        );

        let (w1, w2) = tokio::join!(
            s.claim_outbox(&follower, "w1", 100, 10_000, 4),
            s.claim_outbox(&follower, "w2", 100, 10_000, 4)
        );
        let (w1, w2) = (w1.unwrap(), w2.unwrap());
        let a: BTreeSet<u64> = w1.iter().map(|r| r.stream_seq).collect();
        let b: BTreeSet<u64> = w2.iter().map(|r| r.stream_seq).collect();
        assert!(a.is_disjoint(&b), "{:?}: {a:?} {b:?}", s.backend());
        assert_eq!(a.len() + b.len(), 6);
        // Leased rows are not claimed again; a retry releases them for later.
        assert!(
            s.claim_outbox(&follower, "w3", 200, 10_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        s.retry_outbox(&w1, 500).await.unwrap();
        assert!(
            s.claim_outbox(&follower, "w3", 400, 10_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        let again = s
            .claim_outbox(&follower, "w3", 500, 10_000, 10)
            .await
            .unwrap();
        assert_eq!(again.len(), w1.len());
        assert!(again.iter().all(|r| r.attempts == 1));
        s.complete_outbox(&again).await.unwrap();
        s.complete_outbox(&w2).await.unwrap();
        assert!(
            !s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == follower)
        );
        // The local client got its item.
        assert_eq!(s.fetch_queue(&member, 0, 10).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn store_queue_inbox_consent_abuse() {
    for s in backends("queue").await {
        let client = format!("mimi://b.example/d/{}/1", tag("q"));
        let room = "mimi://a.example/r/x".to_owned();
        s.enqueue(
            &[
                (client.clone(), room.clone(), b"one".to_vec()),
                (client.clone(), room.clone(), b"two".to_vec()),
            ],
            1,
        )
        .await
        .unwrap();
        let q = s.fetch_queue(&client, 0, 10).await.unwrap();
        assert_eq!(
            q.iter().map(|i| i.body.clone()).collect::<Vec<_>>(),
            [b"one".to_vec(), b"two".to_vec()]
        );
        // Nothing is removed before it is acknowledged.
        assert_eq!(s.fetch_queue(&client, 0, 10).await.unwrap().len(), 2);
        assert_eq!(s.fetch_queue(&client, q[0].seq, 10).await.unwrap().len(), 1);
        assert_eq!(s.ack(&client, q[0].seq).await.unwrap(), 1);
        assert_eq!(s.fetch_queue(&client, 0, 10).await.unwrap().len(), 1);

        let h = tag("h").into_bytes();
        assert!(s.inbox_first_seen(&h, 1).await.unwrap());
        assert!(!s.inbox_first_seen(&h, 2).await.unwrap());

        s.add_member(&room, &client).await.unwrap();
        s.add_member(&room, &client).await.unwrap();
        assert!(s.members(&room).await.unwrap().contains(&client));
        s.remove_member(&room, &client).await.unwrap();
        assert!(!s.members(&room).await.unwrap().contains(&client));

        let (req, tgt) = (
            format!("mimi://a.example/u/{}", tag("a")),
            "mimi://b.example/u/bob",
        );
        assert_eq!(s.consent(&req, tgt, &room).await.unwrap(), None);
        s.set_consent(&req, tgt, "", "grant", 1).await.unwrap();
        assert_eq!(
            s.consent(&req, tgt, &room).await.unwrap().as_deref(),
            Some("grant")
        );
        s.set_consent(&req, tgt, &room, "revoke", 2).await.unwrap();
        assert_eq!(
            s.consent(&req, tgt, &room).await.unwrap().as_deref(),
            Some("revoke")
        );

        let body = tag("report").into_bytes();
        assert!(
            s.add_abuse_report(&room, "c.example", &body, 1)
                .await
                .unwrap()
        );
        assert!(
            !s.add_abuse_report(&room, "c.example", &body, 2)
                .await
                .unwrap()
        );
        assert!(matches!(s.backend(), Backend::Sqlite | Backend::Postgres));
    }
}

#[tokio::test]
async fn store_open_errors_name_the_problem() {
    let e = Store::open("/nonexistent-dir-for-mimi/x/node.sqlite")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not exist"), "{e}");
    let e = Store::open("sqlite:").await.err().unwrap();
    assert!(e.to_string().contains("file name"), "{e}");
}
