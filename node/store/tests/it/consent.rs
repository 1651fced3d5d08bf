use crate::{backends, tag};
use mimi_store::ConsentEntry;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn store_consent_scope_room_entry_before_any_room_entry() {
    for db in backends("consent").await {
        let s = &db.store;
        let t = tag("c");
        let alice = format!("mimi://a.example/u/{t}-alice");
        let bob = format!("mimi://b.example/u/{t}-bob");
        let carol = format!("mimi://c.example/u/{t}-carol");
        let (r1, r2) = (
            format!("mimi://a.example/r/{t}-1"),
            format!("mimi://a.example/r/{t}-2"),
        );
        assert_eq!(s.consent(&alice, &bob, &r1).await.unwrap(), None);
        assert!(s.consent_entries(&bob).await.unwrap().is_empty());
        // Alice asked Bob for room 1; Bob granted any room to Carol.
        s.set_consent(&alice, &bob, &r1, "request", 100)
            .await
            .unwrap();
        s.set_consent(&carol, &bob, "", "grant", 200).await.unwrap();
        assert_eq!(
            s.consent(&alice, &bob, &r1).await.unwrap().as_deref(),
            Some("request")
        );
        assert_eq!(s.consent(&alice, &bob, &r2).await.unwrap(), None);
        // The any-room entry answers for every room (STORE-consent-scope)...
        for room in [&r1, &r2] {
            assert_eq!(
                s.consent(&carol, &bob, room).await.unwrap().as_deref(),
                Some("grant")
            );
        }
        // ...unless the room has its own entry.
        s.set_consent(&carol, &bob, &r2, "revoke", 300)
            .await
            .unwrap();
        assert_eq!(
            s.consent(&carol, &bob, &r2).await.unwrap().as_deref(),
            Some("revoke")
        );
        assert_eq!(
            s.consent(&carol, &bob, &r1).await.unwrap().as_deref(),
            Some("grant")
        );
        // Direction matters: Bob's view of Alice is not Alice's of Bob.
        assert_eq!(s.consent(&bob, &alice, &r1).await.unwrap(), None);
        // Setting again overwrites state and time.
        s.set_consent(&alice, &bob, &r1, "grant", 400)
            .await
            .unwrap();
        assert_eq!(
            s.consent(&alice, &bob, &r1).await.unwrap().as_deref(),
            Some("grant")
        );
        // Every entry about Bob, oldest first, round trip of every field.
        let entries = s.consent_entries(&bob).await.unwrap();
        let entry = |requester: &str, room: &str, state: &str, at: u64| ConsentEntry {
            requester: requester.to_owned(),
            target: bob.clone(),
            room_uri: room.to_owned(),
            state: state.to_owned(),
            updated_ms: at,
        };
        assert_eq!(
            entries,
            vec![
                entry(&carol, "", "grant", 200),
                entry(&carol, &r2, "revoke", 300),
                entry(&alice, &r1, "grant", 400),
            ]
        );
        assert!(s.consent_entries(&alice).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn store_abuse_reports_round_trip_and_repeat_kept_once() {
    for db in backends("abuse").await {
        let s = &db.store;
        let t = tag("abuse");
        let room = format!("mimi://a.example/r/{t}");
        let (b1, b2) = (format!("{t} report one"), format!("{t} report two"));
        // Far in the future, so that other tests' reports do not get in the way.
        let base = 4_000_000_000_000 + (std::process::id() as u64) * 1_000;
        assert!(
            s.add_abuse_report(&room, "b.example", b1.as_bytes(), base)
                .await
                .unwrap()
        );
        // The same body again (also from another reporter) is kept once.
        assert!(
            !s.add_abuse_report(&room, "c.example", b1.as_bytes(), base + 5)
                .await
                .unwrap()
        );
        assert!(
            s.add_abuse_report(&room, "c.example", b2.as_bytes(), base + 10)
                .await
                .unwrap()
        );
        let ours = |v: Vec<mimi_store::AbuseReport>| -> Vec<mimi_store::AbuseReport> {
            v.into_iter().filter(|r| r.room_uri == room).collect()
        };
        let got = ours(s.abuse_reports(base, 100).await.unwrap());
        assert_eq!(got.len(), 2);
        let first = &got[0];
        assert_eq!(
            (
                first.report_hash.as_slice(),
                first.reporter.as_str(),
                first.body.as_slice(),
                first.received_ms
            ),
            (
                Sha256::digest(b1.as_bytes()).as_slice(),
                "b.example",
                b1.as_bytes(),
                base
            )
        );
        assert_eq!(
            (
                got[1].reporter.as_str(),
                got[1].body.as_slice(),
                got[1].received_ms
            ),
            ("c.example", b2.as_bytes(), base + 10)
        );
        // `since` is inclusive; `limit` bounds the answer, oldest first.
        assert_eq!(
            ours(s.abuse_reports(base + 10, 100).await.unwrap()),
            vec![got[1].clone()]
        );
        assert!(ours(s.abuse_reports(base + 11, 100).await.unwrap()).is_empty());
        let one = s.abuse_reports(base, 1).await.unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].received_ms <= base + 10);
    }
}
