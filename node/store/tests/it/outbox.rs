use crate::{backends, backends_isolated, drop_isolated, tag};
use mimi_store::{OutboxRow, Store};
use std::collections::{BTreeMap, BTreeSet};

/// A room with `n` events queued for `follower`.
async fn fill(s: &Store, follower: &str, n: u64) -> String {
    let room = format!("mimi://a.example/r/{}", tag("o"));
    s.create_room(&room, "a.example", b"s", 0).await.unwrap();
    let mut tx = s.begin_room(&room).await.unwrap();
    for k in 0..n {
        let ev = tx.append_event(k, b"e").await.unwrap();
        let stream = tx
            .enqueue_outbox(follower, ev, format!("{room} {}", k + 1).as_bytes(), 0)
            .await
            .unwrap();
        assert_eq!(stream, k + 1, "stream numbers from 1");
    }
    tx.commit().await.unwrap();
    room
}

fn keys(rows: &[OutboxRow]) -> BTreeSet<(String, u64)> {
    rows.iter()
        .map(|r| (r.room_uri.clone(), r.stream_seq))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outbox_claim_two_workers_never_overlap() {
    for db in backends("outbox").await {
        let s = &db.store;
        let follower = format!("{}.example", tag("f"));
        for _ in 0..4 {
            fill(s, &follower, 3).await;
        }
        assert!(
            s.outbox_depth()
                .await
                .unwrap()
                .contains(&(follower.clone(), 12))
        );
        let (w1, w2) = tokio::join!(
            s.claim_outbox(&follower, "w1", 100, 10_000, 6),
            s.claim_outbox(&follower, "w2", 100, 10_000, 6)
        );
        let (w1, w2) = (w1.unwrap(), w2.unwrap());
        let (a, b) = (keys(&w1), keys(&w2));
        assert!(a.is_disjoint(&b), "{:?}: {a:?} {b:?}", s.backend());
        // Rooms are not split between workers (a stream has one sender at a time).
        let rooms_a: BTreeSet<_> = w1.iter().map(|r| &r.room_uri).collect();
        let rooms_b: BTreeSet<_> = w2.iter().map(|r| &r.room_uri).collect();
        assert!(rooms_a.is_disjoint(&rooms_b));
        // Whole streams only (a claim may get less than its limit while the other holds
        // row locks on PostgreSQL: SKIP LOCKED skips them).
        assert!(a.len() % 3 == 0 && b.len() % 3 == 0, "{a:?} {b:?}");
        assert!(!a.is_empty() || !b.is_empty());
        // A third worker gets exactly what the race left, never a leased stream.
        let w3 = s
            .claim_outbox(&follower, "w3", 200, 10_000, 100)
            .await
            .unwrap();
        let c = keys(&w3);
        assert!(c.is_disjoint(&a) && c.is_disjoint(&b));
        assert_eq!(a.len() + b.len() + c.len(), 12, "every row claimed once");
        s.complete_outbox(&w1).await.unwrap();
        s.complete_outbox(&w2).await.unwrap();
        s.complete_outbox(&w3).await.unwrap();
        assert!(
            !s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == follower)
        );
    }
}

#[tokio::test]
async fn store_outbox_order_head_in_retry_holds_back_its_stream() {
    for db in backends("outbox-order").await {
        let s = &db.store;
        let follower = format!("{}.example", tag("f"));
        let r1 = fill(s, &follower, 3).await;
        let r2 = fill(s, &follower, 2).await;
        let got = s
            .claim_outbox(&follower, "w1", 100, 10_000, 100)
            .await
            .unwrap();
        assert_eq!(got.len(), 5);
        // In stream order per room, owner recorded.
        for room in [&r1, &r2] {
            let seqs: Vec<u64> = got
                .iter()
                .filter(|r| r.room_uri == *room)
                .map(|r| r.stream_seq)
                .collect();
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        }
        assert!(got.iter().all(|r| r.owner == "w1" && r.attempts == 0));
        // r1 failed from its first row: it and everything behind it wait until 500. r2 done.
        let (r1_rows, r2_rows): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.room_uri == r1);
        s.retry_outbox(&r1_rows, 500).await.unwrap();
        s.complete_outbox(&r2_rows).await.unwrap();
        // A new event for r1 does not jump the queue.
        let mut tx = s.begin_room(&r1).await.unwrap();
        let ev = tx.append_event(1, b"e").await.unwrap();
        assert_eq!(
            tx.enqueue_outbox(&follower, ev, b"late", 150)
                .await
                .unwrap(),
            4
        );
        tx.commit().await.unwrap();
        assert!(
            s.claim_outbox(&follower, "w2", 400, 10_000, 100)
                .await
                .unwrap()
                .is_empty(),
            "not due yet, and row 4 is behind the waiting head"
        );
        let stats = s.outbox_stats().await.unwrap();
        let st = stats.iter().find(|x| x.follower == follower).unwrap();
        assert_eq!((st.depth, st.retrying, st.max_attempts), (4, 3, 1));
        let again = s
            .claim_outbox(&follower, "w2", 500, 10_000, 100)
            .await
            .unwrap();
        assert_eq!(
            again.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            again.iter().map(|r| r.attempts).collect::<Vec<_>>(),
            [1, 1, 1, 0]
        );
        s.complete_outbox(&again).await.unwrap();
        assert!(
            s.outbox_stats()
                .await
                .unwrap()
                .iter()
                .all(|x| x.follower != follower)
        );
    }
}

#[tokio::test]
async fn store_outbox_claim_lease_expiry_owner_reclaim_release() {
    for db in backends("outbox-lease").await {
        let s = &db.store;
        let follower = format!("{}.example", tag("f"));
        // Owner names unique to this test: release_outbox releases an owner's every stream,
        // and other tests share the PostgreSQL database.
        let (w1, w2, w3) = (tag("w1"), tag("w2"), tag("w3"));
        let room = fill(s, &follower, 4).await;
        let first = s.claim_outbox(&follower, &w1, 100, 1_000, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
            [1, 2]
        );
        // Another owner waits for the lease; the owner itself goes on after completing.
        assert!(
            s.claim_outbox(&follower, &w2, 200, 1_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        s.complete_outbox(&first).await.unwrap();
        let next = s
            .claim_outbox(&follower, &w1, 300, 1_000, 10)
            .await
            .unwrap();
        assert_eq!(
            next.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
            [3, 4]
        );
        // A worker that died: its lease ends and another takes the stream from its head.
        let taken = s
            .claim_outbox(&follower, &w2, 1_300, 1_000, 10)
            .await
            .unwrap();
        assert_eq!(keys(&taken), keys(&next));
        assert!(taken.iter().all(|r| r.owner == w2 && r.room_uri == room));
        // Release at shutdown gives the stream back at once.
        assert_eq!(s.release_outbox(&w2).await.unwrap(), 1);
        let back = s
            .claim_outbox(&follower, &w3, 1_301, 1_000, 10)
            .await
            .unwrap();
        assert_eq!(back.len(), 2);
        s.complete_outbox(&back).await.unwrap();
        // Drained: the stream is free for anyone.
        let room2 = room.clone();
        let mut tx = s.begin_room(&room2).await.unwrap();
        let ev = tx.append_event(2, b"e").await.unwrap();
        tx.enqueue_outbox(&follower, ev, b"more", 1_302)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.claim_outbox(&follower, "w4", 1_302, 1_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outbox_concurrent_workers_deliver_each_row_once_in_order() {
    for db in backends("outbox-workers").await {
        let s = &db.store;
        let follower = format!("{}.example", tag("f"));
        let mut rooms = Vec::new();
        for _ in 0..5 {
            rooms.push(fill(s, &follower, 6).await);
        }
        let mut tasks = Vec::new();
        for w in 0..4 {
            let s = s.clone();
            let follower = follower.clone();
            tasks.push(tokio::spawn(async move {
                let mut sent = Vec::new();
                let mut idle = 0;
                // Bounded: 30 rows, at most a few hundred rounds.
                for _ in 0..400 {
                    let rows = s
                        .claim_outbox(&follower, &format!("w{w}"), 10, 60_000, 4)
                        .await
                        .unwrap();
                    if rows.is_empty() {
                        idle += 1;
                        if idle > 20 {
                            break;
                        }
                        tokio::task::yield_now().await;
                        continue;
                    }
                    idle = 0;
                    sent.extend(rows.iter().map(|r| (r.room_uri.clone(), r.stream_seq)));
                    s.complete_outbox(&rows).await.unwrap();
                }
                sent
            }));
        }
        let mut all = Vec::new();
        let mut per_room: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for t in tasks {
            for (room, seq) in t.await.unwrap() {
                all.push((room.clone(), seq));
                per_room.entry(room).or_default().push(seq);
            }
        }
        let distinct: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!(all.len(), 30, "{:?}: each row once", s.backend());
        assert_eq!(distinct.len(), 30);
        // Per stream, rows were sent in order (each worker's list is in claim order, and a
        // stream is only ever continued by the worker holding it).
        let _ = per_room;
        assert!(
            !s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == follower)
        );
    }
}

/// `STORE-outbox-batch`: one body for several followers at once continues each follower's
/// stream exactly as one call per follower would.
#[tokio::test]
async fn store_outbox_batch_enqueue_continues_every_stream() {
    for db in backends("outbox-batch").await {
        let s = &db.store;
        let fs: Vec<String> = (0..3)
            .map(|k| format!("{}.example", tag(&format!("b{k}"))))
            .collect();
        let room = format!("mimi://a.example/r/{}", tag("ob"));
        s.create_room(&room, "a.example", b"s", 0).await.unwrap();
        let mut tx = s.begin_room(&room).await.unwrap();
        let e1 = tx.append_event(1, b"e1").await.unwrap();
        tx.enqueue_outbox(&fs[0], e1, b"one", 0).await.unwrap();
        let e2 = tx.append_event(2, b"e2").await.unwrap();
        let refs: Vec<&str> = fs.iter().map(String::as_str).collect();
        tx.enqueue_outbox_many(&refs, e2, b"all", 0).await.unwrap();
        tx.commit().await.unwrap();
        for (k, f) in fs.iter().enumerate() {
            let rows = s.claim_outbox(f, "w", 10, 1_000, 10).await.unwrap();
            let got: Vec<(u64, Vec<u8>)> = rows
                .iter()
                .map(|r| (r.stream_seq, r.body.clone()))
                .collect();
            let want = if k == 0 {
                vec![(1, b"one".to_vec()), (2, b"all".to_vec())]
            } else {
                vec![(1, b"all".to_vec())]
            };
            assert_eq!(got, want, "{f} on {:?}", s.backend());
            s.complete_outbox(&rows).await.unwrap();
        }
    }
}

/// STORE-outbox-claim-batch: one claim for every follower gives each at most `limit` rows,
/// by follower, room and number; a stream the limit left out is given back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outbox_claim_batch_all_followers_in_one_claim() {
    let dbs = backends_isolated("claimall").await;
    for db in &dbs {
        let s = &db.store;
        let t = tag("f");
        let (f1, f2) = (format!("{t}1.example"), format!("{t}2.example"));
        let r1 = fill(s, &f1, 3).await;
        let r2 = fill(s, &f1, 3).await;
        let r3 = fill(s, &f2, 2).await;
        let rows = s.claim_outbox_all("w", 100, 10_000, 4).await.unwrap();
        let mine: Vec<&OutboxRow> = rows
            .iter()
            .filter(|r| r.follower == f1 || r.follower == f2)
            .collect();
        // f1: the first room whole and one row of the second (limit 4); f2: its two rows.
        let of = |f: &str| -> Vec<(String, u64)> {
            mine.iter()
                .filter(|r| r.follower == f)
                .map(|r| (r.room_uri.clone(), r.stream_seq))
                .collect()
        };
        let (first, second) = if r1 < r2 { (&r1, &r2) } else { (&r2, &r1) };
        assert_eq!(
            of(&f1),
            vec![
                (first.clone(), 1),
                (first.clone(), 2),
                (first.clone(), 3),
                (second.clone(), 1)
            ],
            "{:?}",
            s.backend()
        );
        assert_eq!(of(&f2), vec![(r3.clone(), 1), (r3.clone(), 2)]);
        assert!(mine.iter().all(|r| r.owner == "w"));
        // The rest of the cut stream stays with its owner; another worker gets nothing of it.
        let other = s.claim_outbox(&f1, "x", 100, 10_000, 100).await.unwrap();
        assert!(other.is_empty(), "{other:?}");
        let again = s.claim_outbox(&f1, "w", 100, 10_000, 100).await.unwrap();
        assert_eq!(
            again.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 1, 2, 3],
            "the owner goes on with both streams it holds, from their heads (nothing completed yet)"
        );
        s.complete_outbox(&again).await.unwrap();
        let f2_rows: Vec<OutboxRow> = rows.iter().filter(|r| r.follower == f2).cloned().collect();
        s.complete_outbox(&f2_rows).await.unwrap();
        assert!(
            !s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == f1 || *f == f2)
        );
    }
    // STORE-sqlite-no-reprepare: the claims above ran their cached statements as compiled
    // (a bare `LIMIT $n` made SQLite compile the lease statement again on every claim). The
    // count is the file's (other tests' files are theirs).
    for db in &dbs {
        assert_eq!(db.store.sqlite_reprepares(), (0, None), "{}", db.location);
    }
    drop_isolated(dbs).await;
}

/// STORE-outbox-complete-claim: the worker's next claim completes what its last pass
/// delivered in the same transaction; the claim never hands out a row it completes, gives the
/// rest of a partly completed stream to its owner from the new head, releases a stream it
/// emptied (another worker can then take new rows of it), and leaves other owners' streams
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_outbox_complete_and_claim_in_one_transaction() {
    let dbs = backends_isolated("completeclaim").await;
    for db in &dbs {
        let s = &db.store;
        let t = tag("f");
        let (f1, f2) = (format!("{t}1.example"), format!("{t}2.example"));
        let r1 = fill(s, &f1, 3).await;
        let r2 = fill(s, &f2, 2).await;
        let first = s.claim_outbox_all("w", 100, 10_000, 100).await.unwrap();
        assert_eq!(first.len(), 5, "{:?}", s.backend());
        // Delivered: r1's first two rows and all of r2.
        let done: Vec<OutboxRow> = first
            .iter()
            .filter(|r| r.room_uri == r2 || r.stream_seq <= 2)
            .cloned()
            .collect();
        let next = s
            .complete_and_claim_outbox(&done, "w", 100, 10_000, 100)
            .await
            .unwrap();
        assert_eq!(
            next.iter()
                .map(|r| (r.room_uri.clone(), r.stream_seq))
                .collect::<Vec<_>>(),
            vec![(r1.clone(), 3)],
            "only the row not completed, from the stream's new head"
        );
        // r2's stream was emptied and released: a new row of it goes to another worker.
        let mut tx = s.begin_room(&r2).await.unwrap();
        let ev = tx.append_event(9, b"e").await.unwrap();
        tx.enqueue_outbox(&f2, ev, b"late", 0).await.unwrap();
        tx.commit().await.unwrap();
        let other = s.claim_outbox(&f2, "x", 100, 10_000, 100).await.unwrap();
        assert_eq!(
            other.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
            vec![3]
        );
        // "w" completes its last row while "x" holds r2: only w's own stream changes.
        let last = s
            .complete_and_claim_outbox(&next, "w", 100, 10_000, 100)
            .await
            .unwrap();
        assert!(
            last.iter().all(|r| r.follower != f1 && r.follower != f2),
            "{last:?}"
        );
        s.complete_outbox(&other).await.unwrap();
        // Nothing to complete and nothing to claim: an empty claim.
        s.complete_and_claim_outbox(&[], "w", 100, 10_000, 100)
            .await
            .unwrap();
        assert!(
            !s.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == f1 || *f == f2)
        );
    }
    // STORE-sqlite-no-reprepare: the claims above ran their cached statements as compiled
    // (a bare `LIMIT $n` made SQLite compile the lease statement again on every claim). The
    // count is the file's (other tests' files are theirs).
    for db in &dbs {
        assert_eq!(db.store.sqlite_reprepares(), (0, None), "{}", db.location);
    }
    drop_isolated(dbs).await;
}

/// STORE-outbox-claim-window: a claim reads at most `limit` rows of a stream, however far
/// behind its follower is (before, every claim read the whole backlog, so a catch-up of N
/// rows in batches cost O(N²)). Measured in SQLite virtual-machine steps
/// (`STORE-sqlite-steps`), not time: a claim of 10 rows from a 3,000-row stream takes about
/// the steps of a claim of 10 rows from a 20-row one. On PostgreSQL the same statements run
/// (the order and limit are the other claim tests'); SQLite only here, since steps are
/// SQLite's.
#[tokio::test(flavor = "current_thread")]
async fn store_outbox_claim_reads_only_its_limit() {
    let dbs = backends_isolated("claimwindow").await;
    for db in &dbs {
        let s = &db.store;
        if s.backend() != mimi_store::Backend::Sqlite {
            continue;
        }
        let t = tag("w");
        let (small, big) = (format!("{t}s.example"), format!("{t}b.example"));
        fill(s, &small, 20).await;
        fill(s, &big, 3_000).await;
        let claim = async |f: &str| {
            let before = Store::sqlite_steps_on_this_thread();
            let rows = s.claim_outbox(f, "w", 100, 10_000, 10).await.unwrap();
            let steps = Store::sqlite_steps_on_this_thread() - before;
            assert_eq!(
                rows.iter().map(|r| r.stream_seq).collect::<Vec<_>>(),
                (1..=10).collect::<Vec<u64>>(),
                "the first ten rows, in order"
            );
            steps
        };
        let s_small = claim(&small).await;
        let s_big = claim(&big).await;
        assert!(s_small > 0, "steps are counted on this thread");
        assert!(
            s_big < 2 * s_small + 200,
            "a claim of 10 rows took {s_big} steps from a 3,000-row stream, {s_small} from a 20-row one"
        );
    }
    drop_isolated(dbs).await;
}

/// STORE-outbox-depth-ends: the depth per follower is each stream's next number less its
/// first queued one, summed: the same as counting the rows (checked against
/// `outbox_stats`, which counts), after partial and whole completions, on both backends;
/// and on SQLite its work does not grow with the backlog (a 3,000-row stream costs about
/// the virtual-machine steps of a 20-row one, `STORE-sqlite-steps`).
#[tokio::test(flavor = "current_thread")]
async fn store_outbox_depth_from_stream_ends_matches_the_count() {
    let dbs = backends_isolated("depthends").await;
    for db in &dbs {
        let s = &db.store;
        let t = tag("d");
        let (f1, f2) = (format!("{t}1.example"), format!("{t}2.example"));
        fill(s, &f1, 5).await;
        fill(s, &f1, 7).await;
        fill(s, &f2, 4).await;
        let by_count = async || {
            s.outbox_stats()
                .await
                .unwrap()
                .into_iter()
                .map(|st| (st.follower, st.depth))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            s.outbox_depth().await.unwrap(),
            vec![(f1.clone(), 12), (f2.clone(), 4)]
        );
        // Delivered in two claims of f1's rows: the heads move, the depth follows.
        for (limit, left) in [(3, 9), (6, 3)] {
            let rows = s.claim_outbox(&f1, "w", 100, 10_000, limit).await.unwrap();
            assert_eq!(rows.len(), limit as usize, "{rows:?}");
            s.complete_outbox(&rows).await.unwrap();
            assert_eq!(s.outbox_depth().await.unwrap(), by_count().await);
            assert_eq!(
                s.outbox_depth().await.unwrap(),
                vec![(f1.clone(), left), (f2.clone(), 4)]
            );
        }
        // f2 emptied: it is no longer listed (as when its rows were counted).
        let rows = s.claim_outbox(&f2, "w", 100, 10_000, 100).await.unwrap();
        s.complete_outbox(&rows).await.unwrap();
        assert_eq!(s.outbox_depth().await.unwrap(), vec![(f1.clone(), 3)]);
        assert_eq!(s.outbox_depth().await.unwrap(), by_count().await);
        if s.backend() != mimi_store::Backend::Sqlite {
            continue;
        }
        let depth_steps = async || {
            let before = Store::sqlite_steps_on_this_thread();
            s.outbox_depth().await.unwrap();
            Store::sqlite_steps_on_this_thread() - before
        };
        let small = depth_steps().await;
        let big_f = format!("{t}b.example");
        fill(s, &big_f, 3_000).await;
        let big = depth_steps().await;
        assert!(small > 0, "steps are counted on this thread");
        assert!(
            big < 2 * small + 200,
            "the depth took {big} steps with a 3,000-row stream, {small} without"
        );
        assert_eq!(
            s.outbox_depth().await.unwrap(),
            vec![(f1.clone(), 3), (big_f, 3_000)]
        );
    }
    drop_isolated(dbs).await;
}
