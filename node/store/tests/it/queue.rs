use crate::{backends, postgres_url, tag};
use mimi_store::{QueueItem, Store};
use std::time::Duration;

/// A long-poll that waits at most this long in a test that expects an item (bounded; the item
/// normally wakes it at once).
const LONG: Duration = Duration::from_secs(20);
/// A long-poll that is expected to time out.
const SHORT: Duration = Duration::from_millis(50);

fn client(name: &str) -> String {
    format!("mimi://b.example/d/{}/1", tag(name))
}

fn item(c: &str, room: &str, body: &str) -> (String, String, Vec<u8>) {
    (c.to_owned(), room.to_owned(), body.as_bytes().to_vec())
}

fn bodies(items: &[QueueItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| String::from_utf8(i.body.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn store_queue_cursor_fetch_ack() {
    for db in backends("queue").await {
        let s = &db.store;
        let c = client("q");
        let room = format!("mimi://a.example/r/{}", tag("r"));
        assert!(s.fetch_queue(&c, 0, 10).await.unwrap().is_empty());
        assert_eq!(s.queue_len(&c).await.unwrap(), 0);
        s.enqueue(&[item(&c, &room, "m1"), item(&c, &room, "m2")], 10)
            .await
            .unwrap();
        s.enqueue(&[item(&c, &room, "m3")], 11).await.unwrap();
        // Numbered 1, 2, 3 in order, fetched after a cursor, at most `limit`.
        let all = s.fetch_queue(&c, 0, 10).await.unwrap();
        assert_eq!(all.iter().map(|i| i.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(bodies(&all), ["m1", "m2", "m3"]);
        assert!(all.iter().all(|i| i.room_uri == room));
        assert_eq!(
            bodies(&s.fetch_queue(&c, 0, 2).await.unwrap()),
            ["m1", "m2"]
        );
        assert_eq!(bodies(&s.fetch_queue(&c, 2, 10).await.unwrap()), ["m3"]);
        assert!(s.fetch_queue(&c, 3, 10).await.unwrap().is_empty());
        // Fetching removes nothing (STORE-queue): the same items again.
        assert_eq!(s.fetch_queue(&c, 0, 10).await.unwrap(), all);
        // STORE-sqlite-no-reprepare: fetches with other limits ran the cached statement as
        // compiled.
        assert_eq!(s.sqlite_reprepares(), (0, None));
        assert_eq!(s.queue_len(&c).await.unwrap(), 3);
        // Ack up to 2 removes 1 and 2 only; acking again removes nothing.
        assert_eq!(s.ack(&c, 2).await.unwrap(), 2);
        assert_eq!(s.ack(&c, 2).await.unwrap(), 0);
        assert_eq!(
            s.fetch_queue(&c, 0, 10).await.unwrap(),
            vec![all[2].clone()]
        );
        assert_eq!(s.queue_len(&c).await.unwrap(), 1);
        // Numbers go on after an ack: a cursor stays valid.
        s.enqueue(&[item(&c, &room, "m4")], 12).await.unwrap();
        let rest = s.fetch_queue(&c, 2, 10).await.unwrap();
        assert_eq!(rest.iter().map(|i| i.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(s.ack(&c, 4).await.unwrap(), 2);
        assert_eq!(s.queue_len(&c).await.unwrap(), 0);
        s.enqueue(&[item(&c, &room, "m5")], 13).await.unwrap();
        assert_eq!(s.fetch_queue(&c, 0, 10).await.unwrap()[0].seq, 5);
        // An empty batch is fine.
        s.enqueue(&[], 14).await.unwrap();
    }
}

#[tokio::test]
async fn store_queue_clients_are_separate_and_nothing_dropped_before_ack() {
    for db in backends("queue-sep").await {
        let s = &db.store;
        let (a, b) = (client("a"), client("b"));
        let room = format!("mimi://a.example/r/{}", tag("r"));
        // One batch for both, interleaved: each client numbers its own queue from 1.
        s.enqueue(
            &[
                item(&a, &room, "a1"),
                item(&b, &room, "b1"),
                item(&a, &room, "a2"),
                item(&b, &room, "b2"),
                item(&b, &room, "b3"),
            ],
            10,
        )
        .await
        .unwrap();
        let qa = s.fetch_queue(&a, 0, 10).await.unwrap();
        let qb = s.fetch_queue(&b, 0, 10).await.unwrap();
        assert_eq!(bodies(&qa), ["a1", "a2"]);
        assert_eq!(bodies(&qb), ["b1", "b2", "b3"]);
        assert_eq!(qa.iter().map(|i| i.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(qb.iter().map(|i| i.seq).collect::<Vec<_>>(), [1, 2, 3]);
        // A's ack (even far beyond its queue) touches nothing of B's.
        assert_eq!(s.ack(&a, 1_000).await.unwrap(), 2);
        assert_eq!(s.fetch_queue(&b, 0, 10).await.unwrap(), qb);
        // A client with a similar name sees nothing.
        assert!(
            s.fetch_queue(&format!("{a}x"), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Many fetches, reopen: nothing is lost before the ack.
        for _ in 0..3 {
            assert_eq!(s.fetch_queue(&b, 0, 10).await.unwrap(), qb);
        }
        if s.backend() == mimi_store::Backend::Sqlite {
            s.close().await;
            let again = Store::open(&db.location).await.unwrap();
            assert_eq!(again.fetch_queue(&b, 0, 10).await.unwrap(), qb);
            assert_eq!(again.ack(&b, 3).await.unwrap(), 3);
        } else {
            assert_eq!(s.ack(&b, 3).await.unwrap(), 3);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_queue_wait_wakes_on_item_from_another_task() {
    for db in backends("queue-wait").await {
        let s = &db.store;
        let c = client("w");
        let room = format!("mimi://a.example/r/{}", tag("r"));
        // Nothing arrives: the long-poll ends empty after its (short) wait.
        assert!(s.wait_queue(&c, 0, 10, SHORT).await.unwrap().is_empty());
        // An item committed by another task while the poll waits (or just before it starts:
        // either way the poll returns it).
        let waiter = {
            let s = s.clone();
            let c = c.clone();
            tokio::spawn(async move { s.wait_queue(&c, 0, 10, LONG).await })
        };
        tokio::task::yield_now().await;
        let writer = {
            let s = s.clone();
            let (c, room) = (c.clone(), room.clone());
            tokio::spawn(async move { s.enqueue(&[item(&c, &room, "hello")], 20).await })
        };
        writer.await.unwrap().unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!(bodies(&got), ["hello"], "{:?}", s.backend());
        // Items already there: returned at once, after the cursor.
        let got = s.wait_queue(&c, 0, 10, LONG).await.unwrap();
        assert_eq!(got.len(), 1);
        assert!(s.wait_queue(&c, 1, 10, SHORT).await.unwrap().is_empty());
        // Several waiters on one client, and one on another client: an item for the first
        // client wakes its waiters; the other's poll ends empty at its timeout.
        let other = client("other");
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let s = s.clone();
            let c = c.clone();
            waiters.push(tokio::spawn(
                async move { s.wait_queue(&c, 1, 10, LONG).await },
            ));
        }
        let lonely = {
            let s = s.clone();
            let other = other.clone();
            tokio::spawn(async move { s.wait_queue(&other, 0, 10, SHORT).await })
        };
        tokio::task::yield_now().await;
        s.enqueue(&[item(&c, &room, "second")], 21).await.unwrap();
        for w in waiters {
            assert_eq!(bodies(&w.await.unwrap().unwrap()), ["second"]);
        }
        assert!(lonely.await.unwrap().unwrap().is_empty());
        // A room transaction's client rows wake a waiter too.
        s.create_room(&room, "a.example", b"s", 0).await.unwrap();
        let waiter = {
            let s = s.clone();
            let c = c.clone();
            tokio::spawn(async move { s.wait_queue(&c, 2, 10, LONG).await })
        };
        tokio::task::yield_now().await;
        let mut tx = s.begin_room(&room).await.unwrap();
        tx.enqueue_client(&c, b"from-room", 22).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(bodies(&waiter.await.unwrap().unwrap()), ["from-room"]);
        // A poll that is cancelled (its request went away) leaves nothing behind that stops
        // the next one from working.
        let cancelled =
            tokio::time::timeout(Duration::from_millis(10), s.wait_queue(&other, 0, 10, LONG))
                .await;
        assert!(cancelled.is_err());
        s.enqueue(&[item(&other, &room, "later")], 23)
            .await
            .unwrap();
        assert_eq!(
            bodies(&s.wait_queue(&other, 0, 10, LONG).await.unwrap()),
            ["later"]
        );
    }
}

#[tokio::test]
async fn store_wake_across_processes_on_postgres() {
    // STORE-wake: two stores on one PostgreSQL database (two node processes of a provider).
    // A long-poll of one is woken by the other's commit, not found at the end of its wait:
    // the wait is ten minutes, the test gives up after LONG (a failure, not a slow pass).
    let Some(url) = postgres_url() else {
        return;
    };
    let (p1, p2) = (
        Store::open(&url).await.unwrap(),
        Store::open(&url).await.unwrap(),
    );
    let c = client("xproc");
    let poller = {
        let (p1, c) = (p1.clone(), c.clone());
        tokio::spawn(async move {
            tokio::time::timeout(LONG, p1.wait_queue(&c, 0, 10, Duration::from_secs(600))).await
        })
    };
    tokio::task::yield_now().await;
    p2.enqueue(&[item(&c, "mimi://a.example/r/x", "across")], 1)
        .await
        .unwrap();
    let got = poller
        .await
        .unwrap()
        .expect("the other process's commit did not wake the long-poll");
    assert_eq!(bodies(&got.unwrap()), ["across"]);

    // Outbox rows committed by one process wake the other's outbox worker.
    let wake = p1.outbox_wake();
    let notified = wake.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let room = format!("mimi://a.example/r/{}", tag("wake"));
    p2.create_room(&room, "a.example", b"s", 0).await.unwrap();
    let mut tx = p2.begin_room(&room).await.unwrap();
    let ev = tx.append_event(1, b"e").await.unwrap();
    tx.enqueue_outbox(&format!("{}.example", tag("f")), ev, b"n", 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(LONG, notified)
        .await
        .expect("the other process's outbox rows did not wake this store's outbox worker");

    p1.close().await;
    p2.close().await;
}
