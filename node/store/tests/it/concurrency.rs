//! Two `Store` instances on one database, as two node processes would have: on PostgreSQL
//! (when `MIMI_TEST_POSTGRES_URL` is set) two `Store::open(url)`, each with its own pool, so
//! only the database's locks keep them apart. On SQLite two `Store::open(file)` on one file:
//! within one process they share the file's connections (`STORE-sqlite-shared`: a second
//! store must not wait for the first inside SQLite, whose busy handler would block the thread
//! the first needs), so here they take turns at the one writer connection; separate processes
//! are kept apart by SQLite's file lock (`BEGIN IMMEDIATE`, WAL, busy timeout 30 s).

use crate::{postgres_url, tag};
use mimi_store::{NewKeyPackage, OutboxRow, Store};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet};

/// Two independent stores on one database, per backend available, with the raw location.
async fn pairs(name: &str) -> (Vec<(Store, Store, String)>, crate::TempDir) {
    let dir = crate::TempDir::new(name);
    let file = dir.join("node.sqlite").to_str().unwrap().to_owned();
    let mut v = vec![(
        Store::open(&file).await.unwrap(),
        Store::open(&file).await.unwrap(),
        format!("sqlite://{file}"),
    )];
    if let Some(url) = postgres_url() {
        v.push((
            Store::open(&url).await.unwrap(),
            Store::open(&url).await.unwrap(),
            url,
        ));
    }
    (v, dir)
}

const TASKS_PER_STORE: u64 = 4;
const EVENTS_PER_TASK: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_room_serial_two_processes_append_without_gaps_and_claim_without_overlap() {
    let (ps, _dir) = pairs("multi-room").await;
    for (p1, p2, location) in ps {
        let room = format!("mimi://a.example/r/{}", tag("r"));
        let follower = format!("{}.example", tag("f"));
        p1.create_room(&room, "a.example", b"s0", 0).await.unwrap();
        // Several tasks per process, each committing events one at a time: begin_room →
        // append_event → enqueue_outbox → commit (STORE-room-serial, STORE-room-seq,
        // STORE-persist-before-ack).
        let mut tasks = Vec::new();
        for (p, store) in [&p1, &p2].into_iter().enumerate() {
            for k in 0..TASKS_PER_STORE {
                let s = store.clone();
                let (room, follower) = (room.clone(), follower.clone());
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    for n in 0..EVENTS_PER_TASK {
                        let body = format!("p{p} t{k} n{n}");
                        let mut tx = s.begin_room(&room).await.unwrap();
                        let epoch = tx.room().epoch;
                        let seq = tx.append_event(n, body.as_bytes()).await.unwrap();
                        let stream = tx
                            .enqueue_outbox(&follower, seq, body.as_bytes(), n)
                            .await
                            .unwrap();
                        tokio::task::yield_now().await;
                        tx.set_state(body.clone().into_bytes(), epoch + 1);
                        tx.commit().await.unwrap();
                        mine.push((seq, stream, epoch, body));
                    }
                    mine
                }));
            }
        }
        let mut got = Vec::new();
        for t in tasks {
            got.extend(t.await.unwrap());
        }
        let total = 2 * TASKS_PER_STORE * EVENTS_PER_TASK;
        got.sort();
        let seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "{location}");
        // The outbox stream numbers follow the events one to one, and each event was
        // appended on top of the state the previous one committed.
        assert!(
            got.iter()
                .all(|(seq, stream, epoch, _)| stream == seq && *epoch == seq - 1)
        );
        let r = p2.room(&room).await.unwrap().unwrap();
        assert_eq!((r.next_seq, r.epoch), (total + 1, total));
        let log = p1.events_after(&room, 0, 1_000).await.unwrap();
        assert_eq!(
            log.iter()
                .map(|e| (e.seq, e.body.clone()))
                .collect::<Vec<_>>(),
            got.iter()
                .map(|g| (g.0, g.3.clone().into_bytes()))
                .collect::<Vec<_>>()
        );
        // Every outbox row exists once, carrying its event.
        let raw = crate::Db {
            store: p1.clone(),
            location: location.trim_start_matches("sqlite://").to_owned(),
            dir: None,
        }
        .raw()
        .await;
        let rows = sqlx::query(
            "SELECT stream_seq, event_seq, body FROM outbox WHERE follower = $1 AND room_uri = $2 ORDER BY stream_seq",
        )
        .bind(&follower)
        .bind(&room)
        .fetch_all(&raw)
        .await
        .unwrap();
        raw.close().await;
        let rows: Vec<(i64, i64, Vec<u8>)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get(0).unwrap(),
                    r.try_get(1).unwrap(),
                    r.try_get(2).unwrap(),
                )
            })
            .collect();
        assert_eq!(rows.len() as u64, total);
        for (k, (stream, event, body)) in rows.iter().enumerate() {
            let n = k as i64 + 1;
            assert_eq!((*stream, *event), (n, n));
            assert_eq!(body.as_slice(), got[k].3.as_bytes());
        }

        // More streams of the same follower, then workers of both processes drain the
        // outbox concurrently (STORE-outbox-claim): no row is handed to two workers, every
        // row is sent once, each stream by one worker in order.
        let mut expected: BTreeSet<(String, u64)> =
            (1..=total).map(|n| (room.clone(), n)).collect();
        for k in 0..5u64 {
            let r = format!("{room}-{k}");
            p1.create_room(&r, "a.example", b"s", 0).await.unwrap();
            let mut tx = p2.begin_room(&r).await.unwrap();
            for n in 1..=3 + k {
                let ev = tx.append_event(n, b"e").await.unwrap();
                tx.enqueue_outbox(&follower, ev, b"e", 0).await.unwrap();
                expected.insert((r.clone(), n));
            }
            tx.commit().await.unwrap();
        }
        let mut workers = Vec::new();
        for (p, store) in [&p1, &p2].into_iter().enumerate() {
            for w in 0..3 {
                let s = store.clone();
                let follower = follower.clone();
                let owner = format!("p{p}-w{w}");
                workers.push(tokio::spawn(async move {
                    let mut sent: Vec<OutboxRow> = Vec::new();
                    let mut idle = 0;
                    // Bounded: 105 rows; a worker stops after 30 empty claims in a row.
                    for _ in 0..2_000 {
                        let rows = s
                            .claim_outbox(&follower, &owner, 10, 60_000, 4)
                            .await
                            .unwrap();
                        if rows.is_empty() {
                            idle += 1;
                            if idle > 30 {
                                break;
                            }
                            tokio::task::yield_now().await;
                            continue;
                        }
                        idle = 0;
                        assert!(rows.iter().all(|r| r.owner == owner));
                        s.complete_outbox(&rows).await.unwrap();
                        sent.extend(rows);
                    }
                    sent
                }));
            }
        }
        let mut all: Vec<(String, u64)> = Vec::new();
        let mut by_stream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for w in workers {
            let sent = w.await.unwrap();
            for stream in sent
                .iter()
                .map(|r| r.room_uri.clone())
                .collect::<BTreeSet<_>>()
            {
                let seqs: Vec<u64> = sent
                    .iter()
                    .filter(|r| r.room_uri == stream)
                    .map(|r| r.stream_seq)
                    .collect();
                assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
            }
            for r in sent {
                by_stream
                    .entry(r.room_uri.clone())
                    .or_default()
                    .insert(r.owner.clone());
                all.push((r.room_uri, r.stream_seq));
            }
        }
        let distinct: BTreeSet<(String, u64)> = all.iter().cloned().collect();
        assert_eq!(all.len(), distinct.len(), "{location}: a row claimed twice");
        assert_eq!(distinct, expected, "{location}: every row sent");
        // Nothing re-enqueued and the leases never ran out: a stream had one sender.
        assert!(
            by_stream.values().all(|owners| owners.len() == 1),
            "{by_stream:?}"
        );
        assert!(
            !p1.outbox_depth()
                .await
                .unwrap()
                .iter()
                .any(|(f, _)| *f == follower)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_kp_claim_once_across_two_processes() {
    let (ps, _dir) = pairs("multi-kp").await;
    for (p1, p2, location) in ps {
        let t = tag("kp");
        let client = format!("mimi://b.example/d/{t}/1");
        let kps: Vec<NewKeyPackage> = (0..30)
            .map(|k| NewKeyPackage {
                kp_ref: format!("{t}-{k:02}").into_bytes(),
                key_package: format!("kp {k}").into_bytes(),
                not_after_s: 4_000_000_000,
                last_resort: false,
                cipher_suite: 1,
            })
            .chain(std::iter::once(NewKeyPackage {
                kp_ref: format!("{t}-last").into_bytes(),
                key_package: b"last".to_vec(),
                not_after_s: 4_000_000_000,
                last_resort: true,
                cipher_suite: 1,
            }))
            .collect();
        p1.add_key_packages(&client, &kps).await.unwrap();
        // 2 processes x 8 claimers x 5 claims = 80 claims for 30 KeyPackages.
        let mut tasks = Vec::new();
        for store in [&p1, &p2] {
            for _ in 0..8 {
                let s = store.clone();
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..5 {
                        got.push(s.claim_key_package(&client, 1_000_000).await.unwrap());
                    }
                    got
                }));
            }
        }
        let mut once = Vec::new();
        let mut last = 0;
        for t in tasks {
            for kp in t.await.unwrap() {
                let kp = kp.expect("the last-resort KeyPackage is always there");
                if kp.last_resort {
                    assert_eq!(kp.key_package, b"last");
                    last += 1;
                } else {
                    once.push(kp.kp_ref);
                }
            }
        }
        let distinct: BTreeSet<Vec<u8>> = once.iter().cloned().collect();
        assert_eq!(
            once.len(),
            distinct.len(),
            "{location}: a KeyPackage handed out twice"
        );
        assert_eq!(distinct.len(), 30, "{location}: all consumed");
        assert_eq!(last, 50);
        assert_eq!(p2.key_packages_left(&client, 1_000_000).await.unwrap(), 0);
    }
}
