use crate::{backends, tag};
use mimi_store::{ConsentPolicy, StoreError, token_hash};
use sqlx::Row;

#[tokio::test]
async fn store_token_hash_only_the_hash_is_stored() {
    for db in backends("token").await {
        let s = &db.store;
        let t = tag("d");
        let user = format!("mimi://a.example/u/{t}");
        let client = format!("mimi://a.example/d/{t}/1");
        let token = format!("secret-token-{t}");
        s.register_device(&user, &client, token.as_bytes(), 1)
            .await
            .unwrap();
        assert_eq!(
            s.device_by_token(token.as_bytes()).await.unwrap(),
            Some((user.clone(), client.clone()))
        );
        assert_eq!(s.device_by_token(b"other").await.unwrap(), None);
        // What is in the table is the hash, not the token (STORE-token-hash).
        let raw = db.raw().await;
        let row = sqlx::query("SELECT token_hash FROM devices WHERE client_uri = $1")
            .bind(&client)
            .fetch_one(&raw)
            .await
            .unwrap();
        let stored: Vec<u8> = row.try_get(0).unwrap();
        assert_eq!(stored, token_hash(token.as_bytes()));
        assert_ne!(stored, token.as_bytes());
        assert_eq!(
            s.device_by_token(&stored).await.unwrap(),
            None,
            "the stored hash is not a token"
        );
        raw.close().await;
    }
}

#[tokio::test]
async fn store_devices_conflicts_rotation_removal() {
    for db in backends("devices").await {
        let s = &db.store;
        let t = tag("d");
        let user = format!("mimi://a.example/u/{t}");
        let c1 = format!("mimi://a.example/d/{t}/1");
        let c2 = format!("mimi://a.example/d/{t}/2");
        s.register_device(&user, &c1, format!("{t}-1").as_bytes(), 1)
            .await
            .unwrap();
        s.register_device(&user, &c2, format!("{t}-2").as_bytes(), 1)
            .await
            .unwrap();
        // The user was created with the first device.
        let u = s.user(&user).await.unwrap().unwrap();
        assert_eq!(u.consent_policy, ConsentPolicy::Open);
        assert_eq!(s.clients_of(&user).await.unwrap(), [c1.clone(), c2.clone()]);
        assert_eq!(
            s.user_of_client(&c2).await.unwrap().as_deref(),
            Some(user.as_str())
        );
        // The same client twice, or a token in use: conflict.
        assert!(matches!(
            s.register_device(&user, &c1, b"fresh", 1).await,
            Err(StoreError::Conflict(_))
        ));
        let c3 = format!("mimi://a.example/d/{t}/3");
        assert!(
            s.register_device(&user, &c3, format!("{t}-1").as_bytes(), 1)
                .await
                .unwrap_err()
                .is_conflict()
        );
        // Rotation: the old token stops working.
        s.rotate_token(&c1, format!("{t}-1b").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s.device_by_token(format!("{t}-1").as_bytes())
                .await
                .unwrap(),
            None
        );
        assert!(
            s.device_by_token(format!("{t}-1b").as_bytes())
                .await
                .unwrap()
                .is_some()
        );
        assert!(s.rotate_token(&c3, b"x").await.unwrap_err().is_not_found());
        // Removal takes the device's queue and memberships along.
        s.enqueue(
            &[(c2.clone(), "mimi://a.example/r/x".into(), b"q".to_vec())],
            1,
        )
        .await
        .unwrap();
        s.add_member("mimi://a.example/r/x", &c2).await.unwrap();
        s.remove_device(&c2).await.unwrap();
        assert_eq!(s.clients_of(&user).await.unwrap(), vec![c1.clone()]);
        assert!(s.fetch_queue(&c2, 0, 10).await.unwrap().is_empty());
        assert!(s.rooms_of_client(&c2).await.unwrap().is_empty());
        assert!(
            s.device_by_token(format!("{t}-2").as_bytes())
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.remove_device(&c2).await.unwrap_err().is_not_found());
    }
}

#[tokio::test]
async fn store_tx_atomic_failed_registration_leaves_no_user() {
    for db in backends("failed-reg").await {
        let s = &db.store;
        let t = tag("f");
        let first = format!("mimi://a.example/u/{t}-first");
        s.register_device(
            &first,
            &format!("mimi://a.example/d/{t}/1"),
            t.as_bytes(),
            1,
        )
        .await
        .unwrap();
        // The second registration fails on the token after its user row was written: the
        // transaction leaves nothing behind (STORE-tx-atomic).
        let second = format!("mimi://a.example/u/{t}-second");
        assert!(
            s.register_device(
                &second,
                &format!("mimi://a.example/d/{t}/2"),
                t.as_bytes(),
                1
            )
            .await
            .unwrap_err()
            .is_conflict()
        );
        assert_eq!(s.user(&second).await.unwrap(), None);
    }
}

#[tokio::test]
async fn store_users_identifier_query_and_consent_policy() {
    for db in backends("users").await {
        let s = &db.store;
        let t = tag("u");
        let alice = format!("mimi://a.example/u/{t}-alice");
        let alice2 = format!("mimi://a.example/u/{t}-alice2");
        let handle = format!("@{t}-alice");
        let nick = format!("Alice {t}");
        s.create_user(&alice, Some(&handle), Some(&nick), 5)
            .await
            .unwrap();
        s.create_user(&alice2, None, Some(&nick), 6).await.unwrap();
        assert!(
            s.create_user(&alice, None, None, 7)
                .await
                .unwrap_err()
                .is_conflict()
        );
        assert!(
            s.create_user(&format!("{alice}-x"), Some(&handle), None, 7)
                .await
                .unwrap_err()
                .is_conflict(),
            "handles are unique"
        );
        let found = s.user_by_handle(&handle).await.unwrap().unwrap();
        assert_eq!(
            (found.user_uri.as_str(), found.created_ms),
            (alice.as_str(), 5)
        );
        assert_eq!(found.nick.as_deref(), Some(nick.as_str()));
        assert_eq!(
            s.user_by_handle(&handle.to_uppercase()).await.unwrap(),
            None,
            "exact only"
        );
        let by_nick: Vec<_> = s
            .users_by_nick(&nick)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.user_uri)
            .collect();
        assert_eq!(by_nick, [alice.clone(), alice2.clone()]);
        s.set_consent_policy(&alice, ConsentPolicy::ContactsOnly)
            .await
            .unwrap();
        assert_eq!(
            s.user(&alice).await.unwrap().unwrap().consent_policy,
            ConsentPolicy::ContactsOnly
        );
        assert!(
            s.set_consent_policy(&format!("{alice}-nobody"), ConsentPolicy::Open)
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
}
