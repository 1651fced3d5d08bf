use crate::{Db, backends, tag};
use mimi_store::{InboxTx, NewKeyPackage, Store};
use sqlx::Row;
use std::collections::BTreeSet;

fn bodies(items: &[mimi_store::QueueItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| String::from_utf8(i.body.clone()).unwrap())
        .collect()
}

/// How many dedupe records of `hash` are stored (through a raw connection, not the store).
async fn seen_rows(db: &Db, hash: &[u8]) -> i64 {
    let raw = db.raw().await;
    let n = sqlx::query("SELECT COUNT(*) FROM inbox_seen WHERE item_hash = $1")
        .bind(hash)
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    raw.close().await;
    n
}

/// How many queue rows a client has (through a raw connection, not the store).
async fn queue_rows(db: &Db, client: &str) -> i64 {
    let raw = db.raw().await;
    let n = sqlx::query("SELECT COUNT(*) FROM client_queue WHERE client_uri = $1")
        .bind(client)
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    raw.close().await;
    n
}

/// What `mimi_proto::inbox` does with item `seq` of a stream: deliver it and everything held
/// behind it that is now in turn, or hold it if it is early, or drop it if it is old.
async fn arrive(tx: &mut InboxTx, client: &str, seq: u64, body: &str, now_ms: u64) {
    let next = tx.next_seq();
    if seq < next {
        return;
    }
    if seq > next {
        tx.hold(seq, body.as_bytes()).await.unwrap();
        return;
    }
    tx.enqueue_client(client, body.as_bytes(), now_ms)
        .await
        .unwrap();
    let mut next = seq + 1;
    let held: Vec<(u64, Vec<u8>)> = tx.held().to_vec();
    for (h, b) in held {
        if h == next {
            tx.enqueue_client(client, &b, now_ms).await.unwrap();
            tx.release_held(h).await.unwrap();
            next += 1;
        }
    }
    tx.set_next_seq(next);
}

#[tokio::test]
async fn store_inbox_dedupe_first_seen_and_deliver_inbox() {
    for db in backends("inbox-dedupe").await {
        let s = &db.store;
        let t = tag("d");
        let c = format!("mimi://b.example/d/{t}/1");
        let room = format!("mimi://a.example/r/{t}");
        let (h1, h2, h3) = (
            format!("{t}-h1").into_bytes(),
            format!("{t}-h2").into_bytes(),
            format!("{t}-h3").into_bytes(),
        );
        // In a stream transaction: new once, a repeat in the same or a later transaction is
        // reported (STORE-inbox-dedupe).
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert!(tx.first_seen(&h1, 10).await.unwrap());
        assert!(!tx.first_seen(&h1, 10).await.unwrap());
        tx.enqueue_client(&c, b"one", 10).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert!(!tx.first_seen(&h1, 11).await.unwrap());
        tx.rollback().await.unwrap();
        assert!(!s.inbox_first_seen(&h1, 12).await.unwrap());
        // deliver_inbox: the item's queue rows are written once, whatever the repeats.
        let items = vec![(c.clone(), room.clone(), b"two".to_vec())];
        assert!(s.deliver_inbox(&h2, &items, 20).await.unwrap());
        for _ in 0..3 {
            assert!(!s.deliver_inbox(&h2, &items, 21).await.unwrap());
        }
        assert_eq!(
            bodies(&s.fetch_queue(&c, 0, 10).await.unwrap()),
            ["one", "two"]
        );
        // The stand-alone record.
        assert!(s.inbox_first_seen(&h3, 30).await.unwrap());
        assert!(!s.inbox_first_seen(&h3, 31).await.unwrap());
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert!(!tx.first_seen(&h3, 32).await.unwrap());
        tx.rollback().await.unwrap();
        // Pruning forgets old hashes only.
        let old = format!("{t}-old").into_bytes();
        assert!(s.inbox_first_seen(&old, 1).await.unwrap());
        assert!(s.prune_inbox_seen(2).await.unwrap() >= 1);
        assert!(s.inbox_first_seen(&old, 40).await.unwrap(), "forgotten");
        assert!(!s.inbox_first_seen(&h3, 41).await.unwrap(), "kept");
    }
}

#[tokio::test]
async fn store_inbox_dedupe_rolled_back_or_dropped_tx_leaves_neither_record_nor_rows() {
    for db in backends("inbox-atomic").await {
        let s = &db.store;
        let t = tag("a");
        let c = format!("mimi://b.example/d/{t}/1");
        let room = format!("mimi://a.example/r/{t}");
        let h = format!("{t}-h").into_bytes();
        for rollback in [true, false] {
            let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
            assert_eq!(tx.next_seq(), 1);
            assert!(tx.first_seen(&h, 10).await.unwrap());
            tx.enqueue_client(&c, b"lost", 10).await.unwrap();
            tx.add_member(&c).await.unwrap();
            tx.hold(5, b"held-lost").await.unwrap();
            tx.set_next_seq(2);
            if rollback {
                tx.rollback().await.unwrap();
            } else {
                drop(tx);
            }
            // Neither the dedupe record nor the queue rows nor anything else remain.
            assert_eq!(seen_rows(&db, &h).await, 0);
            assert_eq!(queue_rows(&db, &c).await, 0);
            assert!(s.fetch_queue(&c, 0, 10).await.unwrap().is_empty());
            assert!(s.members(&room).await.unwrap().is_empty());
            let tx = s.begin_inbox("a.example", &room).await.unwrap();
            assert_eq!(tx.next_seq(), 1);
            assert!(tx.held().is_empty());
            tx.rollback().await.unwrap();
        }
        // Committed: both are there, together.
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert!(tx.first_seen(&h, 11).await.unwrap());
        tx.enqueue_client(&c, b"kept", 11).await.unwrap();
        tx.set_next_seq(2);
        tx.commit().await.unwrap();
        assert_eq!(seen_rows(&db, &h).await, 1);
        assert_eq!(bodies(&s.fetch_queue(&c, 0, 10).await.unwrap()), ["kept"]);
        // A deliver_inbox that fails half-way leaves no record either: its second queue
        // row collides with a row already there.
        let c2 = format!("mimi://b.example/d/{t}/2");
        let h2 = format!("{t}-h2").into_bytes();
        let raw = db.raw().await;
        sqlx::query("INSERT INTO client_queue (client_uri, seq, room_uri, body, created_ms) VALUES ($1, 1, $2, $3, 0)")
            .bind(&c2)
            .bind(&room)
            .bind(&b"squatter"[..])
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
        let items = vec![
            (c.clone(), room.clone(), b"x".to_vec()),
            (c2.clone(), room.clone(), b"y".to_vec()),
        ];
        assert!(s.deliver_inbox(&h2, &items, 12).await.is_err());
        assert_eq!(seen_rows(&db, &h2).await, 0);
        assert_eq!(bodies(&s.fetch_queue(&c, 0, 10).await.unwrap()), ["kept"]);
    }
}

#[tokio::test]
async fn store_inbox_order_hold_early_items_release_in_order() {
    for db in backends("inbox-order").await {
        let s = &db.store;
        let t = tag("o");
        let c = format!("mimi://b.example/d/{t}/1");
        let room = format!("mimi://a.example/r/{t}");
        // Items of the stream arrive as 3, 2, 5, 2 (repeat), 1, 4; one transaction each.
        for (k, seq) in [3u64, 2, 5, 2, 1, 4].into_iter().enumerate() {
            let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
            arrive(&mut tx, &c, seq, &format!("item {seq}"), k as u64).await;
            let after_next = tx.next_seq();
            tx.commit().await.unwrap();
            match seq {
                3 | 2 | 5 => assert_eq!(after_next, 1, "held, nothing delivered"),
                1 => assert_eq!(after_next, 4, "1 delivered, 2 and 3 released"),
                _ => assert_eq!(after_next, 6, "4 delivered, 5 released"),
            }
            if seq == 5 {
                // What is held, by number, as a new transaction loads it; a repeat of an
                // early item keeps the first body.
                let tx = s.begin_inbox("a.example", &room).await.unwrap();
                assert_eq!(
                    tx.held().iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                    [2, 3, 5]
                );
                tx.rollback().await.unwrap();
            }
        }
        let q = s.fetch_queue(&c, 0, 10).await.unwrap();
        assert_eq!(
            bodies(&q),
            ["item 1", "item 2", "item 3", "item 4", "item 5"]
        );
        let tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert_eq!(tx.next_seq(), 6);
        assert!(tx.held().is_empty(), "released items are gone");
        tx.rollback().await.unwrap();
        // An old item (already delivered) changes nothing.
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        arrive(&mut tx, &c, 2, "item 2 again", 9).await;
        tx.commit().await.unwrap();
        assert_eq!(s.fetch_queue(&c, 0, 10).await.unwrap(), q);
        // Streams are per (hub, room): another hub's stream of the same room, and another
        // room of the same hub, start at 1 with nothing held.
        for (hub, r) in [
            ("z.example", room.clone()),
            ("a.example", format!("{room}-other")),
        ] {
            let tx = s.begin_inbox(hub, &r).await.unwrap();
            assert_eq!((tx.next_seq(), tx.held().len()), (1, 0));
            tx.rollback().await.unwrap();
        }
        // Holding the same number twice in one transaction keeps the first.
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        tx.hold(8, b"first").await.unwrap();
        tx.hold(8, b"second").await.unwrap();
        tx.commit().await.unwrap();
        let tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert_eq!(tx.held().to_vec(), vec![(8, b"first".to_vec())]);
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn store_inbox_tx_membership_and_welcome_routing() {
    for db in backends("inbox-members").await {
        let s = &db.store;
        let t = tag("m");
        let room = format!("mimi://a.example/r/{t}");
        let (c1, c2) = (
            format!("mimi://b.example/d/{t}/1"),
            format!("mimi://b.example/d/{t}/2"),
        );
        let kp_ref = format!("{t}-kp").into_bytes();
        s.add_key_packages(
            &c2,
            &[NewKeyPackage {
                kp_ref: kp_ref.clone(),
                key_package: b"kp".to_vec(),
                not_after_s: 4_000_000_000,
                last_resort: false,
                cipher_suite: 1,
            }],
        )
        .await
        .unwrap();
        s.add_member(&room, &c1).await.unwrap();
        // A Welcome for c2 (found by its KeyPackageRef) and a removal of c1, in one
        // transaction with the queue rows.
        let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
        assert_eq!(tx.members().await.unwrap(), vec![c1.clone()]);
        let to = tx.client_of_key_package(&kp_ref).await.unwrap().unwrap();
        assert_eq!(to, c2);
        assert_eq!(tx.client_of_key_package(b"nobody's").await.unwrap(), None);
        tx.add_member(&to).await.unwrap();
        tx.add_member(&to).await.unwrap();
        tx.enqueue_client(&to, b"welcome", 5).await.unwrap();
        tx.remove_member(&c1).await.unwrap();
        assert_eq!(tx.members().await.unwrap(), vec![c2.clone()]);
        // Not visible outside before the commit: other readers see the committed state.
        assert_eq!(s.members(&room).await.unwrap(), vec![c1.clone()]);
        assert!(s.fetch_queue(&c2, 0, 10).await.unwrap().is_empty());
        tx.set_next_seq(2);
        tx.commit().await.unwrap();
        assert_eq!(s.members(&room).await.unwrap(), vec![c2.clone()]);
        assert_eq!(
            bodies(&s.fetch_queue(&c2, 0, 10).await.unwrap()),
            ["welcome"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_inbox_order_concurrent_stream_transactions_are_serialised() {
    for db in backends("inbox-serial").await {
        let s = &db.store;
        let t = tag("s");
        let c = format!("mimi://b.example/d/{t}/1");
        let room = format!("mimi://a.example/r/{t}");
        // 12 tasks each deliver "the next item" of one new stream: serialised, every task
        // sees the position the previous one committed (no lost update, no repeat).
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let s: Store = s.clone();
            let (c, room) = (c.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin_inbox("a.example", &room).await.unwrap();
                let n = tx.next_seq();
                tx.enqueue_client(&c, format!("{n}").as_bytes(), n)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
                tx.set_next_seq(n + 1);
                tx.commit().await.unwrap();
                n
            }));
        }
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, (1..=12).collect::<Vec<_>>(), "{:?}", s.backend());
        let q = s.fetch_queue(&c, 0, 100).await.unwrap();
        let want: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
        assert_eq!(bodies(&q), want, "queued in stream order");
        // The same item delivered concurrently (a hub retry racing the first attempt):
        // exactly one delivery is new, one queue row.
        let c2 = format!("mimi://b.example/d/{t}/2");
        let h = format!("{t}-race").into_bytes();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            let items = vec![(c2.clone(), room.clone(), b"once".to_vec())];
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                s.deliver_inbox(&h, &items, 100).await.unwrap()
            }));
        }
        let mut new = 0;
        for task in tasks {
            new += usize::from(task.await.unwrap());
        }
        assert_eq!(new, 1);
        assert_eq!(s.queue_len(&c2).await.unwrap(), 1);
        let seen: BTreeSet<u64> = q.iter().map(|i| i.seq).collect();
        assert_eq!(seen.len(), 12);
    }
}
