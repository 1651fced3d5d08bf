//! Two providers' services over real SQLite files, without the network: the hub persists
//! before it answers, its outbox carries the Welcome and the handshake to the follower, the
//! follower delivers each item once to the right clients, and messages flow both ways.

use mimi_content::MimiContent;
use mimi_node::service::Node;
use mimi_proto::outbox::{OutboxItem, next_batch};
use mimi_room::client::{Device, Event, Room};
use mimi_room::codepoints::CodePoints;
use mimi_room::presets::private_group;
use mimi_store::Store;
use mimi_wire::codec::Body;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::submit::SubmitOutcome;
use mimi_wire::update::UpdateOutcome;
use openmls::prelude::tls_codec::Deserialize;
use openmls::prelude::{BasicCredential, ExternalSender, KeyPackageIn, ProtocolVersion};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;

async fn node(domain: &str) -> crate::TestNode {
    let dir = std::env::temp_dir().join(format!(
        "mimi-node-service-{}-{domain}-{}",
        std::process::id(),
        rand_tag()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let node = Node::open(
        ProviderId::parse(domain).unwrap(),
        Store::open(dir.join("node.sqlite").to_str().unwrap())
            .await
            .unwrap(),
        mimi_node::service::NodeOptions::default(),
        1_700_000_000_000,
    )
    .await
    .unwrap();
    crate::TestNode {
        node,
        _dir: crate::TempDir(dir),
    }
}

fn rand_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn room() -> RoomUri {
    RoomUri::parse("mimi://a.example/r/clubhouse").unwrap()
}

/// Runs the hub's outbox to one follower once (what the outbox worker does over QUIC).
async fn deliver(hub: &Node, follower: &Node) -> usize {
    let rows = hub
        .store
        .claim_outbox(follower.domain.as_str(), "test", 10_000_000, 60_000, 100)
        .await
        .unwrap();
    let queue: Vec<OutboxItem> = rows
        .iter()
        .map(|r| OutboxItem {
            room: r.room_uri.clone(),
            seq: r.stream_seq,
            fanout: r.body.clone(),
        })
        .collect();
    let mut delivered = 0;
    let mut rest = &queue[..];
    while let Some(batch) = next_batch(rest, 64 * 1024) {
        let room = RoomUri::parse(&batch.room).unwrap();
        delivered += follower
            .notify(&hub.domain, &room, &batch.body, Some(batch.first_seq), 10)
            .await
            .unwrap();
        // A repeated body (the hub did not see our 201) is acknowledged and not delivered again.
        assert_eq!(
            follower
                .notify(&hub.domain, &room, &batch.body, Some(batch.first_seq), 11)
                .await
                .unwrap(),
            0
        );
        rest = &rest[batch.count..];
    }
    hub.store.complete_outbox(&rows).await.unwrap();
    delivered
}

async fn drain(node: &Node, client: &ClientUri) -> Vec<FanoutMessage> {
    let items = node
        .store
        .fetch_queue(client.as_str(), 0, 100)
        .await
        .unwrap();
    if let Some(last) = items.last() {
        node.store.ack(client.as_str(), last.seq).await.unwrap();
    }
    items
        .iter()
        .map(|i| FanoutMessage::decode(&i.body).unwrap())
        .collect()
}

#[tokio::test]
async fn proto_hub_and_follower_services_carry_a_room_across_two_providers() {
    let a = node("a.example").await;
    let b = node("b.example").await;

    // Alice creates the room on her hub.
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let (mut alice_room, gi, tree) = alice
        .create_room(
            &room(),
            &private_group(&CodePoints::DRAFT),
            hub_sender,
            Some("Clubhouse"),
        )
        .unwrap();
    a.create_room(&room(), &alice.client, &gi, &tree)
        .await
        .unwrap();
    assert!(
        a.create_room(&room(), &alice.client, &gi, &tree)
            .await
            .is_err(),
        "a room is created once"
    );

    // Bob's KeyPackage is on his provider; the hub's claim gives it to Alice.
    let bob = Device::new(ClientUri::parse("mimi://b.example/d/bob/1").unwrap()).unwrap();
    let kp = bob.key_package().unwrap();
    let kp_ref = KeyPackageIn::tls_deserialize_exact(kp.as_slice())
        .unwrap()
        .validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .unwrap()
        .hash_ref(&RustCrypto::default())
        .unwrap();
    b.store
        .add_key_packages(
            bob.client.as_str(),
            &[mimi_store::NewKeyPackage {
                kp_ref: kp_ref.as_slice().to_vec(),
                key_package: kp.clone(),
                not_after_s: u64::MAX / 4,
                last_resort: false,
                cipher_suite: 1,
            }],
        )
        .await
        .unwrap();
    let claimed = b
        .store
        .claim_key_package(bob.client.as_str(), 1)
        .await
        .unwrap()
        .unwrap();

    // Alice adds Bob: the hub persists and answers success.
    let out = alice_room
        .add_users(
            &alice,
            &[(UserUri::parse("mimi://b.example/u/bob").unwrap(), 2)],
            &[claimed.key_package],
        )
        .unwrap();
    let resp = a
        .hub_update(&room(), &out.bundle.encode(), 1_000)
        .await
        .unwrap();
    assert!(
        matches!(
            resp.outcome,
            UpdateOutcome::Success {
                accepted_timestamp: 1_000
            }
        ),
        "{resp:?}"
    );
    alice_room.merge(&alice).unwrap();
    assert_eq!(
        a.store.room(room().as_str()).await.unwrap().unwrap().epoch,
        1
    );

    // The outbox carries the Welcome to b.example; Bob's provider routes it by KeyPackageRef.
    assert!(deliver(&a, &b).await >= 1);
    let items = drain(&b, &bob.client).await;
    let welcome = items
        .iter()
        .find(|i| matches!(i.extra, FanoutExtra::Welcome(_)))
        .expect("a Welcome for Bob");
    let FanoutExtra::Welcome(t) = &welcome.extra else {
        unreachable!()
    };
    let mut bob_room: Room = bob.join_from_welcome(&room(), &welcome.message, t).unwrap();
    assert_eq!(bob_room.epoch(), 1);

    // Bob sends through his provider to the hub; Alice gets it from her queue.
    let hello = MimiContent::text([1; 16], "hello from b.example");
    let req = bob_room.send(&bob, &hello.encode().unwrap()).unwrap();
    let r = a
        .hub_submit(
            &room(),
            &ProviderId::parse("b.example").unwrap(),
            &req.encode(),
            2_000,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            r.outcome,
            SubmitOutcome::Accepted {
                accepted_timestamp: 2_000,
                ..
            }
        ),
        "{r:?}"
    );
    // PROTO-submit-idempotent: the same bytes again get the first answer, no second fanout.
    let again = a
        .hub_submit(
            &room(),
            &ProviderId::parse("b.example").unwrap(),
            &req.encode(),
            2_500,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            again.outcome,
            SubmitOutcome::Accepted {
                accepted_timestamp: 2_000,
                ..
            }
        ),
        "{again:?}"
    );
    // b.example may not submit for a user of a.example.
    let forged = mimi_wire::submit::SubmitMessageRequest {
        sending_uri: mimi_wire::id::MimiUri::parse("mimi://a.example/u/alice").unwrap(),
        ..req.clone()
    };
    assert!(
        a.hub_submit(
            &room(),
            &ProviderId::parse("b.example").unwrap(),
            &forged.encode(),
            2_001
        )
        .await
        .is_err()
    );
    let got: Vec<Event> = drain(&a, &alice.client)
        .await
        .iter()
        .map(|i| alice_room.process(&alice, i).unwrap())
        .collect();
    assert_eq!(got.iter().filter(|e| matches!(e, Event::Message { content, .. } if MimiContent::decode(content).unwrap() == hello)).count(), 1, "{got:?}");

    // Alice replies; the follower delivers it to Bob once.
    let reply = MimiContent::text([2; 16], "hi Bob");
    let req = alice_room.send(&alice, &reply.encode().unwrap()).unwrap();
    a.hub_submit(&room(), &a.domain, &req.encode(), 3_000)
        .await
        .unwrap();
    deliver(&a, &b).await;
    let got: Vec<Event> = drain(&b, &bob.client)
        .await
        .iter()
        .map(|i| bob_room.process(&bob, i).unwrap())
        .collect();
    // Bob's own message comes back (ignored as his echo) and Alice's reply arrives once.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], Event::Ignored);
    assert!(matches!(&got[1], Event::Message { sender, content, .. }
        if *sender == alice.client && MimiContent::decode(content).unwrap() == reply));

    // A stale commit is refused with wrongEpoch and nothing is written.
    let stale = out.bundle.encode();
    let resp = a.hub_update(&room(), &stale, 4_000).await.unwrap();
    assert!(
        matches!(resp.outcome, UpdateOutcome::WrongEpoch { current_epoch: 1 }),
        "{resp:?}"
    );
    assert_eq!(
        a.store.room(room().as_str()).await.unwrap().unwrap().epoch,
        1
    );
    // Garbage is a malformed body, unknown rooms are not found.
    assert!(matches!(
        a.hub_update(&room(), b"garbage", 1).await,
        Err(mimi_node::service::NodeError::Malformed(_))
    ));
    assert!(matches!(
        a.hub_update(
            &RoomUri::parse("mimi://a.example/r/none").unwrap(),
            &stale,
            1
        )
        .await,
        Err(mimi_node::service::NodeError::NoRoom(_))
    ));

    // PROTO-5.5-order: FanoutMessages that arrive out of order (one per notify body, last
    // first, some twice) reach Bob's queue in hub order, each once.
    let texts: Vec<MimiContent> = (0..5u8)
        .map(|i| MimiContent::text([10 + i; 16], &format!("in order {i}")))
        .collect();
    for (i, t) in texts.iter().enumerate() {
        let req = alice_room.send(&alice, &t.encode().unwrap()).unwrap();
        a.hub_submit(&room(), &a.domain, &req.encode(), 5_000 + i as u64)
            .await
            .unwrap();
    }
    let rows = a
        .store
        .claim_outbox("b.example", "test", 10_000_000, 60_000, 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    let mut order: Vec<usize> = (0..5).rev().collect();
    order.insert(2, 4);
    order.push(0);
    for i in order {
        let r = &rows[i];
        follower_notify(&b, &a, &r.body, r.stream_seq).await;
    }
    a.store.complete_outbox(&rows).await.unwrap();
    let got: Vec<MimiContent> = drain(&b, &bob.client)
        .await
        .iter()
        .filter_map(|i| match bob_room.process(&bob, i).unwrap() {
            Event::Message { content, .. } => Some(MimiContent::decode(&content).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(got, texts);
}

async fn follower_notify(follower: &Node, hub: &Node, body: &[u8], seq: u64) {
    follower
        .notify(&hub.domain, &room(), body, Some(seq), 20)
        .await
        .unwrap();
}

/// PROTO-5.4.1-frank-hub, PROTO-5.4.1-frank-key, PROTO-5.4.1-frank-verify,
/// PROTO-5.9-report-frank: the hub franks an accepted message (in its answer and in the
/// fanout; the same frank for a repeated submit), the receiver verifies it, a report with
/// the frank is accepted and stored — also by another process of the provider, since the
/// franking key is in the database — and reports with an altered frank, content or time are
/// refused with 400 and a reason, storing nothing. Run for a room naming the hub's own
/// franking key (what mimi-node hands out, `PROTO-5.4.1-frank-agent-key`) and for one naming
/// the hub's MLS key (rooms of clients that know only the ExternalSender).
#[tokio::test]
async fn proto_5_4_1_frank_hub_franks_and_reports_are_verified() {
    franks_and_reports(true).await;
    franks_and_reports(false).await;
}

async fn franks_and_reports(own_franking_key: bool) {
    let dir = std::env::temp_dir().join(format!(
        "mimi-node-frank-{}-{}",
        std::process::id(),
        rand_tag()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = crate::TempDir(dir.clone());
    let db = dir.join("node.sqlite");
    let open = || async {
        Node::open(
            ProviderId::parse("a.example").unwrap(),
            Store::open(db.to_str().unwrap()).await.unwrap(),
            mimi_node::service::NodeOptions::default(),
            1_700_000_000_000,
        )
        .await
        .unwrap()
    };
    let a = open().await;
    let b = node("b.example").await;

    // Alice creates the room with the hub's real key as ExternalSender and, as franking
    // agent, the hub's franking key or its MLS key.
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let agent = a.franking_agent().unwrap();
    assert_ne!(
        agent.franking_signature_key,
        a.hub_key.to_public_vec(),
        "the franking key is not the MLS key"
    );
    let (mut alice_room, gi, tree) = if own_franking_key {
        alice.create_room_with_agent(
            &room(),
            &private_group(&CodePoints::DRAFT),
            a.hub_sender(),
            agent.clone(),
            None,
            mimi_room::mls::CIPHERSUITE,
        )
    } else {
        alice.create_room(
            &room(),
            &private_group(&CodePoints::DRAFT),
            a.hub_sender(),
            None,
        )
    }
    .unwrap();
    a.create_room(&room(), &alice.client, &gi, &tree)
        .await
        .unwrap();
    let bob = Device::new(ClientUri::parse("mimi://b.example/d/bob/1").unwrap()).unwrap();
    let out = alice_room
        .add_users(
            &alice,
            &[(UserUri::parse("mimi://b.example/u/bob").unwrap(), 2)],
            &[bob.key_package().unwrap()],
        )
        .unwrap();
    let resp = a
        .hub_update(&room(), &out.bundle.encode(), 1_000)
        .await
        .unwrap();
    assert!(matches!(resp.outcome, UpdateOutcome::Success { .. }));
    alice_room.merge(&alice).unwrap();
    let welcome = out_welcome(&a, &b, &bob).await;
    let mut bob_room = bob
        .join_from_welcome(&room(), &welcome.0, &welcome.1)
        .unwrap();

    // Bob sends franked content naming himself and the room.
    let bob_user = "mimi://b.example/u/bob";
    let hello = mimi_content::build::ContentBuilder::new(
        [9; 16],
        mimi_content::NestedPart::text("you are all idiots"),
    )
    .sender_and_room(bob_user, room().as_str())
    .build()
    .encode()
    .unwrap();
    let req = bob_room.send(&bob, &hello).unwrap();
    let from_b = ProviderId::parse("b.example").unwrap();
    let r = a
        .hub_submit(&room(), &from_b, &req.encode(), 2_000)
        .await
        .unwrap();
    let SubmitOutcome::Accepted {
        accepted_timestamp: 2_000,
        frank: Some(frank),
    } = r.outcome
    else {
        panic!("no frank: {r:?}")
    };
    // A repeated submit gets the same frank.
    let again = a
        .hub_submit(&room(), &from_b, &req.encode(), 2_500)
        .await
        .unwrap();
    assert!(
        matches!(&again.outcome, SubmitOutcome::Accepted { frank: Some(f), .. } if *f == frank)
    );
    // The fanout carries it, and Alice's device verifies it.
    let items = drain(&a, &alice.client).await;
    let item = items
        .iter()
        .find(|i| matches!(i.extra, FanoutExtra::Application(_)))
        .unwrap();
    assert_eq!(item.extra, FanoutExtra::Application(Some(frank.clone())));
    let Event::Message { frank: check, .. } = alice_room.process(&alice, item).unwrap() else {
        panic!("not a message")
    };
    assert!(
        matches!(&check, mimi_room::franking::FrankCheck::Verified { frank: f, context }
            if *f == frank && context.accepted_timestamp == 2_000 && context.sender_uri.as_str() == bob_user),
        "{check:?}"
    );
    // Signed with the key the room names, and only with it.
    let context = mimi_wire::submit::ServerFrankingContext {
        sender_uri: mimi_wire::id::MimiUri::parse(bob_user).unwrap(),
        room_uri: room(),
        accepted_timestamp: 2_000,
    };
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let named = if own_franking_key {
        agent.franking_signature_key.clone()
    } else {
        a.hub_key.to_public_vec()
    };
    let other = if own_franking_key {
        a.hub_key.to_public_vec()
    } else {
        agent.franking_signature_key.clone()
    };
    assert!(mimi_wire::sign::verify_frank(&crypto, &named, &frank, &context).is_ok());
    assert!(mimi_wire::sign::verify_frank(&crypto, &other, &frank, &context).is_err());

    // Alice reports it: accepted and stored.
    let report = |content: Vec<u8>, frank: mimi_wire::common::Frank, ts: u64| {
        mimi_wire::abuse::AbuseReport {
            reporting_user: Some(UserUri::parse("mimi://a.example/u/alice").unwrap()),
            alleged_abuser_uri: UserUri::parse(bob_user).unwrap(),
            reason_code: 0,
            note: "insults".into(),
            messages: vec![mimi_wire::abuse::AbusiveMessage {
                message_content: content,
                frank,
                accepted_timestamp: ts,
            }],
            extensions: Default::default(),
        }
        .encode()
    };
    a.report_abuse(
        &a.domain,
        &room(),
        &report(hello.clone(), frank.clone(), 2_000),
        5_000,
    )
    .await
    .unwrap();
    assert_eq!(a.store.abuse_reports(0, 10).await.unwrap().len(), 1);

    // Another process of the provider (same database) verifies it too.
    let a2 = open().await;
    let mut note_changed =
        mimi_wire::abuse::AbuseReport::decode(&report(hello.clone(), frank.clone(), 2_000))
            .unwrap();
    note_changed.note = "seen by the second process".into();
    a2.report_abuse(&a2.domain, &room(), &note_changed.encode(), 5_001)
        .await
        .unwrap();
    assert_eq!(a.store.abuse_reports(0, 10).await.unwrap().len(), 2);

    // Altered franks, content or time are refused with a reason and nothing is stored.
    let mut altered = frank.clone();
    altered.server_frank[0] ^= 1;
    let mut bad_sig = frank.clone();
    bad_sig.franking_integrity_signature[3] ^= 1;
    let forged_content = mimi_content::build::ContentBuilder::new(
        [9; 16],
        mimi_content::NestedPart::text("you are all lovely"),
    )
    .sender_and_room(bob_user, room().as_str())
    .build()
    .encode()
    .unwrap();
    for (what, body) in [
        ("server frank", report(hello.clone(), altered, 2_000)),
        ("signature", report(hello.clone(), bad_sig, 2_000)),
        ("content", report(forged_content, frank.clone(), 2_000)),
        ("time", report(hello.clone(), frank.clone(), 2_001)),
    ] {
        let e = a
            .report_abuse(&a.domain, &room(), &body, 6_000)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, mimi_node::service::NodeError::BadRequest(why)
                if why.contains("does not verify") && why.contains("PROTO-5")),
            "{what}: {e}"
        );
    }
    assert_eq!(a.store.abuse_reports(0, 10).await.unwrap().len(), 2);
}

/// The Welcome for `bob` (on `b`) after the hub `a` accepted his addition.
async fn out_welcome(
    a: &Node,
    b: &Node,
    bob: &Device,
) -> (
    mimi_wire::Mls<openmls::prelude::MlsMessageIn>,
    mimi_wire::common::RatchetTreeOption,
) {
    // Bob's KeyPackage was not handed out by b.example here, so b cannot route the Welcome
    // by KeyPackageRef: take it from the hub's outbox row directly.
    let rows = a
        .store
        .claim_outbox(b.domain.as_str(), "test", 10_000_000, 60_000, 100)
        .await
        .unwrap();
    let _ = bob;
    for r in &rows {
        for (f, _) in mimi_wire::fanout::split_notify(&r.body, mimi_wire::Limits::DEFAULT).unwrap()
        {
            if let FanoutExtra::Welcome(t) = f.extra {
                a.store.complete_outbox(&rows).await.unwrap();
                return (f.message, t);
            }
        }
    }
    panic!("no Welcome in the outbox")
}

/// PROTO-hub-cache: the decoded-room cache holds at most `[hub] cache_rooms` rooms, dropping
/// the least recently used; a dropped room is read from storage again and goes on.
#[tokio::test]
async fn proto_hub_cache_is_bounded_and_evicted_rooms_reload() {
    let dir = std::env::temp_dir().join(format!(
        "mimi-node-service-cache-{}-{}",
        std::process::id(),
        rand_tag()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = crate::TempDir(dir.clone());
    let a = Node::open(
        ProviderId::parse("a.example").unwrap(),
        Store::open(dir.join("node.sqlite").to_str().unwrap())
            .await
            .unwrap(),
        mimi_node::service::NodeOptions {
            hub_cache_rooms: 2,
            ..Default::default()
        },
        1_700_000_000_000,
    )
    .await
    .unwrap();
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let mut rooms = Vec::new();
    for n in 0..3 {
        let uri = RoomUri::parse(&format!("mimi://a.example/r/cache{n}")).unwrap();
        let (r, gi, tree) = alice
            .create_room(
                &uri,
                &private_group(&CodePoints::DRAFT),
                a.hub_sender(),
                None,
            )
            .unwrap();
        a.create_room(&uri, &alice.client, &gi, &tree)
            .await
            .unwrap();
        rooms.push((uri, r));
    }
    for (uri, _) in &rooms {
        a.warm_room(uri).await.unwrap();
        assert!(a.cached_rooms() <= 2);
    }
    assert_eq!(a.cached_rooms(), 2);
    // Room 0 was dropped first; a commit to it is accepted from storage.
    let (uri, r) = &mut rooms[0];
    let out = r
        .set_metadata(
            &alice,
            mimi_wire::components::RoomMetaData::named(uri.clone(), "Renamed"),
        )
        .unwrap();
    let resp = a
        .hub_update(uri, &out.bundle.encode(), 1_700_000_000_001)
        .await
        .unwrap();
    assert!(
        matches!(resp.outcome, UpdateOutcome::Success { .. }),
        "{resp:?}"
    );
    assert_eq!(a.cached_rooms(), 2);
    assert!(
        a.warm_room(&RoomUri::parse("mimi://a.example/r/none").unwrap())
            .await
            .is_err()
    );
}
