//! `STORE-inbox-dedupe`, `STORE-inbox-order`: a follower's inbox.

use crate::{backends, tag};

#[tokio::test]
async fn store_inbox_dedupe_hold_release_and_atomic_commit() {
    for db in backends("inbox").await {
        let s = &db.store;
        let hub = "a.example";
        let room = format!("mimi://a.example/r/{}", tag("in"));
        let client = tag("c");
        // deliver_inbox: the dedupe record and the queue rows together, once.
        let h = tag("h").into_bytes();
        let rows = vec![(client.clone(), room.clone(), b"one".to_vec())];
        assert!(s.deliver_inbox(&h, &rows, 1).await.unwrap());
        assert!(!s.deliver_inbox(&h, &rows, 2).await.unwrap());
        assert_eq!(s.queue_len(&client).await.unwrap(), 1);

        // The sequenced stream: a new one starts at 1; held items survive to the next tx.
        let mut tx = s.begin_inbox(hub, &room).await.unwrap();
        assert_eq!(tx.next_seq(), 1);
        tx.hold(3, b"third").await.unwrap();
        tx.add_member(&client).await.unwrap();
        assert_eq!(tx.members().await.unwrap(), vec![client.clone()]);
        tx.commit().await.unwrap();
        let mut tx = s.begin_inbox(hub, &room).await.unwrap();
        assert_eq!(tx.held(), &[(3, b"third".to_vec())]);
        tx.release_held(3).await.unwrap();
        tx.set_next_seq(4);
        let h2 = tag("h2").into_bytes();
        assert!(tx.first_seen(&h2, 5).await.unwrap());
        tx.enqueue_client(&client, b"two", 5).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.queue_len(&client).await.unwrap(), 2);

        // A rolled back transaction leaves neither the dedupe record nor the queue rows.
        let mut tx = s.begin_inbox(hub, &room).await.unwrap();
        assert_eq!(tx.next_seq(), 4);
        assert!(tx.held().is_empty());
        let h3 = tag("h3").into_bytes();
        assert!(tx.first_seen(&h3, 6).await.unwrap());
        tx.enqueue_client(&client, b"lost", 6).await.unwrap();
        tx.set_next_seq(9);
        tx.rollback().await.unwrap();
        assert_eq!(s.queue_len(&client).await.unwrap(), 2);
        assert!(
            s.inbox_first_seen(&h3, 7).await.unwrap(),
            "not recorded by the rolled back tx"
        );
        let tx = s.begin_inbox(hub, &room).await.unwrap();
        assert_eq!(tx.next_seq(), 4);
        tx.rollback().await.unwrap();
    }
}
