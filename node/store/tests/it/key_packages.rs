use crate::{backends, tag};
use mimi_store::{NewKeyPackage, StoreError};
use std::collections::BTreeSet;

fn kp(r: String, body: &[u8], not_after_s: u64, last_resort: bool) -> NewKeyPackage {
    NewKeyPackage {
        kp_ref: r.into_bytes(),
        key_package: body.to_vec(),
        not_after_s,
        last_resort,
        cipher_suite: 1,
    }
}

#[tokio::test]
async fn store_kp_claim_once_not_expired_last_resort_reused() {
    for db in backends("kp").await {
        let s = &db.store;
        let t = tag("kp");
        let client = format!("mimi://b.example/d/{t}/1");
        let now_ms = 1_000_000_000;
        let kps = vec![
            kp(format!("{t}-a"), b"kp-a", 2_000_000, false),
            kp(format!("{t}-b"), b"kp-b", 2_000_000, false),
            kp(format!("{t}-old"), b"kp-old", 10, false),
            kp(format!("{t}-z"), b"kp-last", 2_000_000, true),
        ];
        s.add_key_packages(&client, &kps).await.unwrap();
        assert_eq!(s.key_packages_left(&client, now_ms).await.unwrap(), 2);
        let a = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        let b = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
        assert_ne!(a.kp_ref, b.kp_ref);
        assert!(!a.last_resort && !b.last_resort);
        assert_eq!(s.key_packages_left(&client, now_ms).await.unwrap(), 0);
        // The expired one is never handed out (STORE-kp-not-expired); then the last-resort
        // one, again and again (STORE-kp-last-resort).
        for _ in 0..3 {
            let l = s.claim_key_package(&client, now_ms).await.unwrap().unwrap();
            assert!(l.last_resort);
            assert_eq!(l.key_package, b"kp-last");
        }
        // Once the last-resort one expired too, there is nothing.
        assert_eq!(
            s.claim_key_package(&client, 2_000_000 * 1000)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            s.claim_key_package("mimi://b.example/d/nobody/1", now_ms)
                .await
                .unwrap(),
            None
        );
        // A reference stored twice is a conflict, and the failed batch leaves nothing
        // (STORE-tx-atomic).
        let fresh = kp(format!("{t}-fresh"), b"kp-fresh", 2_000_000, false);
        assert!(matches!(
            s.add_key_packages(&client, &[fresh.clone(), kps[0].clone()])
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.client_of_key_package(&fresh.kp_ref).await.unwrap(), None);
        // Purge: what ended before now (less grace) goes, claimed or not.
        // (At least ours: a shared PostgreSQL database may hold others' expired ones.)
        assert!(s.purge_expired_key_packages(now_ms, 0).await.unwrap() >= 1);
        assert!(
            s.client_of_key_package(&kps[0].kp_ref)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            s.client_of_key_package(format!("{t}-old").as_bytes())
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_kp_claim_once_under_concurrency() {
    for db in backends("kp-concurrent").await {
        let s = &db.store;
        let t = tag("kpc");
        let client = format!("mimi://b.example/d/{t}/1");
        let kps: Vec<_> = (0..10)
            .map(|n| kp(format!("{t}-{n:02}"), &[n as u8], u64::MAX / 4, false))
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
            "{:?}: exactly the ten were handed out",
            s.backend()
        );
        assert_eq!(distinct.len(), 10, "{:?}: never one twice", s.backend());
    }
}

#[tokio::test]
async fn store_kp_claim_for_every_client_of_a_user() {
    for db in backends("kp-user").await {
        let s = &db.store;
        let t = tag("kpu");
        let user = format!("mimi://b.example/u/{t}");
        let (c1, c2) = (
            format!("mimi://b.example/d/{t}/1"),
            format!("mimi://b.example/d/{t}/2"),
        );
        s.register_device(&user, &c1, format!("{t}1").as_bytes(), 1)
            .await
            .unwrap();
        s.register_device(&user, &c2, format!("{t}2").as_bytes(), 1)
            .await
            .unwrap();
        s.add_key_packages(&c1, &[kp(format!("{t}-1"), b"one", u64::MAX / 4, false)])
            .await
            .unwrap();
        let got = s.claim_key_packages_of_user(&user, 1).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, c1);
        assert_eq!(got[0].1.as_ref().unwrap().key_package, b"one");
        assert_eq!((got[1].0.as_str(), got[1].1.is_none()), (c2.as_str(), true));
    }
}

#[tokio::test]
async fn store_kp_route_target_and_hub() {
    for db in backends("kp-route").await {
        let s = &db.store;
        let t = tag("r");
        let client = format!("mimi://b.example/d/{t}/1");
        let r = format!("{t}-ref").into_bytes();
        s.add_key_packages(
            &client,
            &[kp(format!("{t}-ref"), b"x", u64::MAX / 4, false)],
        )
        .await
        .unwrap();
        // Target side: a claimed KeyPackage still routes its Welcome (STORE-kp-route-target).
        s.claim_key_package(&client, 1).await.unwrap().unwrap();
        assert_eq!(
            s.client_of_key_package(&r).await.unwrap().as_deref(),
            Some(client.as_str())
        );
        // Hub side: ref → provider (STORE-kp-route-hub); recording again overwrites.
        assert_eq!(s.route(&r).await.unwrap(), None);
        s.record_route(&r, "b.example", "mimi://a.example/r/x", 1)
            .await
            .unwrap();
        assert_eq!(s.route(&r).await.unwrap().as_deref(), Some("b.example"));
        s.record_route(&r, "c.example", "mimi://a.example/r/x", 2)
            .await
            .unwrap();
        assert_eq!(s.route(&r).await.unwrap().as_deref(), Some("c.example"));
    }
}
