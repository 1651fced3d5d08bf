use crate::{backends, tag};
use mimi_store::StoreError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_room_seq_consecutive_under_concurrency() {
    for db in backends("room").await {
        let s = &db.store;
        let room = format!("mimi://a.example/r/{}", tag("r"));
        s.create_room(&room, "a.example", b"state0", 0)
            .await
            .unwrap();
        assert!(matches!(
            s.create_room(&room, "a.example", b"x", 0).await,
            Err(StoreError::Conflict(_))
        ));
        // Concurrent appends (STORE-room-serial) get consecutive numbers (STORE-room-seq),
        // and each sees the state the previous one committed.
        let mut tasks = Vec::new();
        for n in 0..16u64 {
            let s = s.clone();
            let room = room.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = s.begin_room(&room).await.unwrap();
                let before = tx.room().epoch;
                let seq = tx
                    .append_event(100 + n, format!("event {n}").as_bytes())
                    .await
                    .unwrap();
                // Yield while holding the room: another writer must wait, not interleave.
                tokio::task::yield_now().await;
                tx.set_state(format!("state {seq}").into_bytes(), before + 1);
                let after = tx.commit().await.unwrap();
                assert_eq!(after.next_seq, seq + 1);
                (seq, before)
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort_unstable();
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (1..=16).collect::<Vec<_>>(), "{:?}", s.backend());
        // Event n was appended on top of epoch n - 1: no lost update.
        assert!(
            got.iter().all(|(seq, before)| *before == seq - 1),
            "{got:?}"
        );
        let r = s.room(&room).await.unwrap().unwrap();
        assert_eq!((r.next_seq, r.epoch), (17, 16));
        assert_eq!(
            s.room_state(&room).await.unwrap().unwrap().head,
            b"state 16"
        );
        assert_eq!(
            r.state_version, 16,
            "each write of the state raises its version"
        );
        let log = s.events_after(&room, 0, 100).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=16).collect::<Vec<_>>()
        );
        assert!(matches!(
            s.begin_room(&format!("{room}-none")).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn store_tx_atomic_dropped_or_rolled_back_room_tx_leaves_nothing() {
    for db in backends("room-rollback").await {
        let s = &db.store;
        let room = format!("mimi://a.example/r/{}", tag("rb"));
        let follower = format!("{}.example", tag("f"));
        let client = format!("mimi://a.example/d/{}/1", tag("c"));
        s.create_room(&room, "a.example", b"s0", 0).await.unwrap();
        for rollback in [false, true] {
            let mut tx = s.begin_room(&room).await.unwrap();
            let seq = tx.append_event(5, b"lost").await.unwrap();
            tx.enqueue_outbox(&follower, seq, b"lost", 5).await.unwrap();
            tx.enqueue_client(&client, b"lost", 5).await.unwrap();
            tx.add_member(&client).await.unwrap();
            tx.set_state(b"lost".to_vec(), 9);
            if rollback {
                tx.rollback().await.unwrap();
            } else {
                drop(tx);
            }
            let r = s.room(&room).await.unwrap().unwrap();
            let st = s.room_state(&room).await.unwrap().unwrap();
            assert_eq!(
                (r.next_seq, r.epoch, st.head.as_slice(), st.version),
                (1, 0, &b"s0"[..], 0)
            );
            assert!(s.events_after(&room, 0, 10).await.unwrap().is_empty());
            assert!(
                !s.outbox_depth()
                    .await
                    .unwrap()
                    .iter()
                    .any(|(f, _)| *f == follower)
            );
            assert!(s.fetch_queue(&client, 0, 10).await.unwrap().is_empty());
            assert!(s.members(&room).await.unwrap().is_empty());
        }
        // The next transaction numbers from where the committed ones left off.
        let mut tx = s.begin_room(&room).await.unwrap();
        assert_eq!(tx.append_event(6, b"kept").await.unwrap(), 1);
        assert_eq!(
            tx.enqueue_outbox(&follower, 1, b"kept", 6).await.unwrap(),
            1
        );
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn store_persist_before_ack_one_commit_writes_everything() {
    for db in backends("room-commit").await {
        let s = &db.store;
        let room = format!("mimi://a.example/r/{}", tag("c"));
        let (f1, f2) = (
            format!("{}.example", tag("f1")),
            format!("{}.example", tag("f2")),
        );
        let (c1, c2) = (
            format!("mimi://a.example/d/{}/1", tag("c1")),
            format!("mimi://a.example/d/{}/1", tag("c2")),
        );
        s.create_room_with_policy(&room, "a.example", b"s0", b"policy0", 3)
            .await
            .unwrap();
        let r = s.room(&room).await.unwrap().unwrap();
        assert_eq!(
            (r.policy.as_slice(), r.epoch, r.next_seq, r.last_ts_ms),
            (&b"policy0"[..], 3, 1, 0)
        );
        let mut tx = s.begin_room(&room).await.unwrap();
        tx.add_member(&c1).await.unwrap();
        tx.add_member(&c2).await.unwrap();
        assert_eq!(tx.members().await.unwrap().len(), 2);
        let seq = tx.append_event(1_700, b"commit").await.unwrap();
        for f in [&f1, &f2] {
            tx.enqueue_outbox(f, seq, b"commit", 1_700).await.unwrap();
        }
        for c in tx.members().await.unwrap() {
            tx.enqueue_client(&c, b"commit", 1_700).await.unwrap();
        }
        tx.set_state(b"s1".to_vec(), 4);
        tx.set_policy(b"policy1".to_vec());
        let committed = tx.commit().await.unwrap();
        assert_eq!(committed.last_ts_ms, 1_700);
        // All of it is there after the one commit (STORE-persist-before-ack).
        let r = s.room(&room).await.unwrap().unwrap();
        assert_eq!(r, committed);
        let st = s.room_state(&room).await.unwrap().unwrap();
        assert_eq!(
            (st.head.as_slice(), r.policy.as_slice(), r.epoch),
            (&b"s1"[..], &b"policy1"[..], 4)
        );
        let ev = s.events_after(&room, 0, 10).await.unwrap();
        assert_eq!(
            (ev.len(), ev[0].seq, ev[0].ts_ms, ev[0].body.as_slice()),
            (1, 1, 1_700, &b"commit"[..])
        );
        let depth = s.outbox_depth().await.unwrap();
        assert!(depth.contains(&(f1.clone(), 1)) && depth.contains(&(f2.clone(), 1)));
        for c in [&c1, &c2] {
            assert_eq!(s.fetch_queue(c, 0, 10).await.unwrap()[0].body, b"commit");
            assert_eq!(s.rooms_of_client(c).await.unwrap(), vec![room.clone()]);
        }
        s.remove_member(&room, &c1).await.unwrap();
        assert_eq!(s.members(&room).await.unwrap(), vec![c2.clone()]);
        assert!(s.room_count().await.unwrap() >= 1);
    }
}

/// STORE-room-entries: a room's state is a head plus entries; a transaction writes the head
/// and only the entries given (upserts and deletes), raises the version once, and a dropped
/// transaction leaves head, entries and version as they were. A message's transaction (no
/// state given) writes no state at all.
#[tokio::test]
async fn store_room_entries_written_as_changed() {
    for db in backends("room-entries").await {
        let s = &db.store;
        let room = format!("mimi://a.example/r/{}", tag("e"));
        s.create_room(&room, "a.example", b"h0", 0).await.unwrap();
        let e = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
        let mut tx = s.begin_room(&room).await.unwrap();
        let many: Vec<_> = (0..700)
            .map(|n| e(&format!("t/l/{n:04}"), "leaf"))
            .collect();
        tx.persist_state(b"h1".to_vec(), many, 1);
        let before = s.room_bytes_written();
        tx.commit().await.unwrap();
        assert!(s.room_bytes_written() - before >= 700 * 12);
        let st = s.room_state(&room).await.unwrap().unwrap();
        assert_eq!(
            (st.head.as_slice(), st.entries.len(), st.version),
            (&b"h1"[..], 700, 1)
        );

        let mut tx = s.begin_room(&room).await.unwrap();
        assert_eq!(
            tx.state().await.unwrap(),
            st,
            "the same through the transaction"
        );
        tx.persist_state(
            b"h2".to_vec(),
            vec![
                e("t/l/0001", "changed"),
                (b"t/l/0002".to_vec(), None),
                e("z", "new"),
            ],
            2,
        );
        tx.commit().await.unwrap();
        let st = s.room_state(&room).await.unwrap().unwrap();
        assert_eq!(
            (st.head.as_slice(), st.entries.len(), st.version),
            (&b"h2"[..], 700, 2)
        );
        assert!(
            st.entries
                .contains(&(b"t/l/0001".to_vec(), b"changed".to_vec()))
        );
        assert!(!st.entries.iter().any(|(k, _)| k == b"t/l/0002"));

        // Dropped: nothing changes.
        let mut tx = s.begin_room(&room).await.unwrap();
        tx.persist_state(b"lost".to_vec(), vec![(b"z".to_vec(), None)], 3);
        drop(tx);
        assert_eq!(s.room_state(&room).await.unwrap().unwrap(), st);

        // A message: the state and its version stay.
        let mut tx = s.begin_room(&room).await.unwrap();
        tx.append_event(5, b"message").await.unwrap();
        let r = tx.commit().await.unwrap();
        assert_eq!((r.state_version, r.epoch), (2, 2));
        assert_eq!(s.room_state(&room).await.unwrap().unwrap(), st);

        // set_state replaces everything by one head.
        let mut tx = s.begin_room(&room).await.unwrap();
        tx.set_state(b"whole".to_vec(), 3);
        tx.commit().await.unwrap();
        let st = s.room_state(&room).await.unwrap().unwrap();
        assert_eq!(
            (st.head.as_slice(), st.entries.len(), st.version),
            (&b"whole"[..], 0, 3)
        );
    }
}
