//! Followers track membership from every commit (`PROTO-follower-membership`, issue 15 item 1):
//! Alice on the hub a.example removes Bob, who has two devices on b.example, while Dave of
//! b.example stays in the room. Bob's devices get the removing commit and nothing after it (not
//! even ciphertext); Dave gets everything; when Dave leaves too, b.example has no member left,
//! drops the room, and the hub stops notifying it.

use http::{Method, StatusCode};
use mimi_harness::*;
use mimi_room::client::Event;
use mimi_wire::codec::Body;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{RoomUri, UserUri};
use mimi_wire::update::{UpdateOutcome, UpdateRoomResponse};

/// Everything in a device's queue now (no waiting), decoded.
async fn queue_now(p: &Person) -> Vec<FanoutMessage> {
    let (st, b) = call(
        &p.api,
        Method::GET,
        &format!("queue?after={}&wait=0", p.cursor),
        Vec::new(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| FanoutMessage::decode(&hex::decode(i["body"].as_str().unwrap()).unwrap()).unwrap())
        .collect()
}

async fn update(p: &mut Person, room: &RoomUri, bundle: &mimi_wire::update::HandshakeBundle) {
    let (st, b) = call(
        &p.api,
        Method::POST,
        &format!("update/{}", enc(room.as_str())),
        bundle.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let r = UpdateRoomResponse::decode(&b).unwrap();
    assert!(matches!(r.outcome, UpdateOutcome::Success { .. }), "{r:?}");
}

/// The committer merges its accepted commit.
fn merge(p: &mut Person, room: &RoomUri) {
    p.rooms.get_mut(room).unwrap().merge(&p.dev).unwrap();
}

async fn removal(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/removal{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob1 = Person::register(fed, "b.example", "bob", "1").await;
    let mut bob2 =
        Person::register_with(fed, "b.example", "bob", "2", Some(&bob1.token.clone())).await;
    let mut dave = Person::register(fed, "b.example", "dave", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;

    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    alice.add(&room, "mimi://b.example/u/dave").await;
    alice.add(&room, "mimi://c.example/u/cathy").await;
    let e = alice.epoch(&room);
    for p in [&mut bob1, &mut bob2, &mut dave, &mut cathy] {
        p.sync_until("joined", |p| p.epoch(&room) == e).await;
    }
    let before = alice.send(&room, "before").await;
    for p in [&mut bob1, &mut bob2, &mut dave] {
        let m = before.clone();
        p.sync_until("the first message", move |p| p.got(&m) == 1)
            .await;
    }

    // Alice removes Bob (both devices).
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .remove_user(
            &alice.dev,
            &UserUri::parse("mimi://b.example/u/bob").unwrap(),
        )
        .unwrap();
    update(&mut alice, &room, &out.bundle).await;
    merge(&mut alice, &room);
    let e = alice.epoch(&room);
    for p in [&mut dave, &mut cathy] {
        p.sync_until("the removal", |p| p.epoch(&room) == e).await;
    }
    let after = alice.send(&room, "after").await;
    let from_cathy = cathy.send(&room, "after, from c").await;
    for p in [&mut dave, &mut cathy] {
        let (a, c) = (after.clone(), from_cathy.clone());
        let me = p.dev.client.provider();
        p.sync_until("the messages after the removal", move |p| {
            p.got(&a) == 1 && (me.as_str() == "c.example" || p.got(&c) == 1)
        })
        .await;
    }
    // Dave has both: b.example's inbox has delivered everything sent so far. Bob's devices
    // have the removing commit (they SHOULD see it) and nothing after it.
    for bob in [&bob1, &bob2] {
        let items = queue_now(bob).await;
        assert_eq!(items.len(), 1, "{}: {items:?}", bob.dev.client);
        assert!(matches!(items[0].extra, FanoutExtra::Commit(_)));
    }
    for bob in [&mut bob1, &mut bob2] {
        bob.sync_until("sees its removal", |p| {
            p.seen
                .iter()
                .any(|e| matches!(e, Event::Commit { removed: true, .. }))
        })
        .await;
    }

    // Dave leaves: b.example has no member left and the hub stops notifying it.
    let bundle = dave.rooms.get_mut(&room).unwrap().leave(&dave.dev).unwrap();
    update(&mut dave, &room, &bundle).await;
    alice
        .sync_until("Dave's proposal", |p| {
            p.seen.iter().any(|e| matches!(e, Event::Proposal))
        })
        .await;
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .commit_pending(&alice.dev)
        .unwrap();
    update(&mut alice, &room, &out.bundle).await;
    merge(&mut alice, &room);
    let e = alice.epoch(&room);
    cathy
        .sync_until("Dave's removal", |p| p.epoch(&room) == e)
        .await;
    let last = alice.send(&room, "only a and c now").await;
    let m = last.clone();
    cathy
        .sync_until("the last message", move |p| p.got(&m) == 1)
        .await;
    // b.example dropped the room: no roster, no members.
    let store = fed.store_of(1).await;
    let mut tx = store.begin_inbox("a.example", room.as_str()).await.unwrap();
    assert_eq!(tx.roster().await.unwrap(), None);
    assert!(tx.members().await.unwrap().is_empty());
    tx.rollback().await.unwrap();
    dave.sync_until("sees its removal", |p| {
        p.seen
            .iter()
            .any(|e| matches!(e, Event::Commit { removed: true, .. }))
    })
    .await;
    for p in [&bob1, &bob2, &dave] {
        assert_eq!(p.got(&last), 0);
        assert!(queue_now(p).await.is_empty(), "{}", p.dev.client);
    }
    assert_eq!(dave.got(&after), 1);
    assert_eq!(bob1.got(&after), 0);
    assert_eq!(bob2.got(&after), 0);
}

#[tokio::test]
async fn proto_follower_membership_removed_devices_get_nothing_sqlite() {
    let fed = federation(None).await;
    removal(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn proto_follower_membership_removed_devices_get_nothing_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    removal(&fed).await;
    fed.shutdown().await;
}

/// `CAPI-device-remove`, `PROTO-hub-removal`, `ROOM-hub-regenerate` (protocol-06 §3, §7.7
/// step 4) across three providers: Alice deletes her second device at a.example, the room's
/// hub, which proposes its removal as the room's external sender and fans the proposal out.
/// Before anyone commits it, Cathy of c.example resyncs by external commit, which voids the
/// proposal (a new epoch); the hub proposes it again for the new epoch and staples it to
/// Cathy's commit. Bob of b.example commits it (the hub's removals need no canKick), and the
/// deleted device is out of the group on every member.
async fn hub_removal(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/hubremoval{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut alice2 =
        Person::register_with(fed, "a.example", "alice", "2", Some(&alice.token.clone())).await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    alice.add(&room, "mimi://c.example/u/cathy").await;
    let e = alice2
        .join(&room, &[])
        .await
        .expect("Alice's second device joins");
    for p in [&mut alice, &mut bob, &mut cathy] {
        p.sync_until("everyone in", |p| p.epoch(&room) == e).await;
    }
    let gone = alice2.dev.client.clone();

    let (st, b) = call(
        &alice.api,
        Method::POST,
        "devices/remove",
        serde_json::json!({ "client": gone.as_str() })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["proposed"], serde_json::json!([room.as_str()]), "{v}");
    // The deleted device's token is gone with it.
    let (st, _) = call(&alice2.api, Method::GET, "queue?after=0&wait=0", Vec::new()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    for p in [&mut bob, &mut cathy] {
        p.sync_until("the hub's proposal", |p| {
            matches!(p.seen.last(), Some(Event::Proposal))
        })
        .await;
    }

    // Cathy resyncs before anyone commits the removal.
    let e = cathy.join(&room, &[]).await.expect("Cathy's resync");
    for p in [&mut alice, &mut bob] {
        p.sync_until("Cathy's resync", |p| p.epoch(&room) == e)
            .await;
    }
    assert!(
        bob.rooms[&room].clients().contains(&gone),
        "the external commit did not remove the device"
    );
    let waiting = bob.rooms[&room].group.pending_proposals().count();
    assert_eq!(
        waiting, 1,
        "the hub's removal was proposed again for the new epoch"
    );

    let out = bob
        .rooms
        .get_mut(&room)
        .unwrap()
        .commit_pending(&bob.dev)
        .unwrap();
    update(&mut bob, &room, &out.bundle).await;
    merge(&mut bob, &room);
    let e = bob.epoch(&room);
    for p in [&mut alice, &mut cathy] {
        p.sync_until("the removal", |p| p.epoch(&room) == e).await;
    }
    for p in [&alice, &bob, &cathy] {
        let clients = p.rooms[&room].clients();
        assert!(!clients.contains(&gone), "{}: {clients:?}", p.dev.client);
        assert_eq!(clients.len(), 3, "{}: {clients:?}", p.dev.client);
    }
    let m = bob.send(&room, "after the device is gone").await;
    for p in [&mut alice, &mut cathy] {
        let m = m.clone();
        p.sync_until("a message after", move |p| p.got(&m) == 1)
            .await;
    }
}

#[tokio::test]
async fn proto_hub_removal_of_a_deleted_device_survives_an_external_commit_sqlite() {
    let fed = federation(None).await;
    hub_removal(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn proto_hub_removal_of_a_deleted_device_survives_an_external_commit_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    hub_removal(&fed).await;
    fed.shutdown().await;
}
