//! `STORE-queue`: client queues with a cursor, nothing removed before acknowledgement, a
//! client sees only its own queue, long-poll.

use crate::{backends, tag};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_queue_cursor_ack_isolation_and_long_poll() {
    for db in backends("queue").await {
        let s = &db.store;
        let (a, b) = (tag("qa"), tag("qb"));
        let room = "mimi://a.example/r/q".to_owned();
        s.enqueue(
            &[
                (a.clone(), room.clone(), b"1".to_vec()),
                (b.clone(), room.clone(), b"x".to_vec()),
                (a.clone(), room.clone(), b"2".to_vec()),
            ],
            1,
        )
        .await
        .unwrap();
        let items = s.fetch_queue(&a, 0, 10).await.unwrap();
        assert_eq!(
            items.iter().map(|i| i.body.clone()).collect::<Vec<_>>(),
            vec![b"1".to_vec(), b"2".to_vec()]
        );
        assert!(items[0].seq < items[1].seq);
        // Only b's item for b.
        assert_eq!(s.fetch_queue(&b, 0, 10).await.unwrap().len(), 1);
        // After the first: the second; nothing removed before ack.
        let rest = s.fetch_queue(&a, items[0].seq, 10).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(s.queue_len(&a).await.unwrap(), 2);
        assert_eq!(s.ack(&a, items[0].seq).await.unwrap(), 1);
        assert_eq!(s.queue_len(&a).await.unwrap(), 1);
        assert_eq!(
            s.queue_len(&b).await.unwrap(),
            1,
            "another client's ack is not ours"
        );
        assert_eq!(s.ack(&a, items[1].seq).await.unwrap(), 1);
        // Long-poll: empty after its wait; woken by an item committed meanwhile.
        let empty = s
            .wait_queue(&a, items[1].seq, 10, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(empty.is_empty());
        let s2 = s.clone();
        let (a2, r2) = (a.clone(), room.clone());
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s2.enqueue(&[(a2, r2, b"3".to_vec())], 2).await.unwrap();
        });
        let got = s
            .wait_queue(&a, items[1].seq, 10, Duration::from_secs(10))
            .await
            .unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"3");
    }
}
