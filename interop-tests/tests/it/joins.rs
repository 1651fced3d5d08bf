//! External joins complete (issue 15 item 2) across three providers over QUIC:
//! - an open room (role 0 holds canOpenJoin): Cathy of c.example, which has no member in the
//!   room yet, joins without being listed (`PROTO-5.6-authorised`); c.example's follower takes
//!   its roster from her accepted external commit (`PROTO-follower-membership`) and she gets
//!   the room's messages;
//! - groupInfo hands out the proposals the hub accepted in the epoch (`PROTO-5.6-pending`):
//!   Bob leaves with a SelfRemove, and Erin's external commit includes it by reference, so Bob
//!   leaves the group and the list in Erin's join (`ROOM-client-join-pending`); b.example then
//!   has no member and gets nothing more;
//! - Cathy's device resyncs as the same client (`ROOM-resync`, RFC 9420 §12.4.3.2): the room
//!   keeps one leaf for her, and she gets what is sent after;
//! - a banned user, and a user who is not listed in a private room, are refused with
//!   groupInfo's notAuthorized.

use mimi_harness::*;
use mimi_room::client::Event;
use mimi_room::join_links::JoinLinkPolicy;
use mimi_room::presets::public_room;
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::update::UpdateOutcome;

fn count(clients: &[ClientUri], c: &ClientUri) -> usize {
    clients.iter().filter(|x| *x == c).count()
}

async fn joins(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/open{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;
    let mut erin = Person::register(fed, "a.example", "erin", "1").await;

    alice
        .create_room_with(
            &room,
            &public_room(&mimi_room::codepoints::CodePoints::DRAFT),
        )
        .await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    let e = alice.epoch(&room);
    bob.sync_until("joined", |p| p.epoch(&room) == e).await;

    // Open join by a user of a provider with no member in the room.
    let e = cathy.join(&room, &[]).await.expect("Cathy's open join");
    for p in [&mut alice, &mut bob] {
        p.sync_until("Cathy's join", |p| p.epoch(&room) == e).await;
    }
    let cathy_user = UserUri::parse("mimi://c.example/u/cathy").unwrap();
    let state = alice.rooms[&room].state(&alice.dev).unwrap();
    assert_eq!(
        state.role_of(&cathy_user),
        2,
        "Cathy joined as role 0's target"
    );
    let m = alice.send(&room, "welcome, Cathy").await;
    let m2 = m.clone();
    cathy
        .sync_until("a message after the open join", move |p| p.got(&m2) == 1)
        .await;

    // Bob leaves; the SelfRemove waits at the hub for the next commit, which is Erin's join.
    let bundle = bob.rooms.get_mut(&room).unwrap().leave(&bob.dev).unwrap();
    bob.update(&room, &bundle).await;
    let e = erin.join(&room, &[]).await.expect("Erin's open join");
    for p in [&mut alice, &mut cathy] {
        p.sync_until("Erin's join", |p| p.epoch(&room) == e).await;
    }
    let clients = alice.rooms[&room].clients();
    assert!(
        !clients.iter().any(|c| c.provider().as_str() == "b.example"),
        "Bob's SelfRemove was committed in Erin's join: {clients:?}"
    );
    let state = alice.rooms[&room].state(&alice.dev).unwrap();
    let bob_user = UserUri::parse("mimi://b.example/u/bob").unwrap();
    assert_eq!(state.role_of(&bob_user), 0, "Bob left the list too");
    bob.sync_until("sees its removal", |p| {
        p.seen
            .iter()
            .any(|e| matches!(e, Event::Commit { removed: true, .. }))
    })
    .await;

    // PROTO-5.6-requester (protocol-06 §7.7 step 3): an external commit from a client the hub
    // did not give the GroupInfo to is refused, even in an open room: Grace asks, Frank
    // commits with what Grace got.
    let grace = Person::register(fed, "c.example", "grace", "1").await;
    let mut frank = Person::register(fed, "c.example", "frank", "1").await;
    let pending = grace.dev.group_info_request().unwrap();
    let (st, b) = call(
        &grace.api,
        http::Method::POST,
        &format!("groupInfo/{}", enc(room.as_str())),
        mimi_wire::codec::Body::encode(&pending.request),
    )
    .await;
    assert_eq!(st, http::StatusCode::OK);
    let resp =
        <mimi_wire::group_info::GroupInfoResponse as mimi_wire::codec::Body>::decode(&b).unwrap();
    let (gi, tree) = grace.dev.open_group_info(&room, &pending, &resp).unwrap();
    let (r, out) = frank.dev.join_external(&room, &gi, &tree, Some(2)).unwrap();
    frank.rooms.insert(room.clone(), r);
    let o = frank.update(&room, &out.bundle).await;
    assert!(matches!(o, UpdateOutcome::NotAllowed), "{o:?}");

    // Cathy resyncs as the same client.
    let cathy_client = cathy.dev.client.clone();
    let e = cathy.join(&room, &[]).await.expect("Cathy's resync");
    for p in [&mut alice, &mut erin] {
        p.sync_until("Cathy's resync", |p| p.epoch(&room) == e)
            .await;
    }
    let clients = alice.rooms[&room].clients();
    assert_eq!(count(&clients, &cathy_client), 1, "{clients:?}");
    let m = erin.send(&room, "after the resync").await;
    for p in [&mut alice, &mut cathy] {
        let m = m.clone();
        p.sync_until("a message after the resync", move |p| p.got(&m) == 1)
            .await;
    }
    assert_eq!(bob.got(&m), 0);

    // Refusals: a banned user, and anyone in a private room.
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .ban(&alice.dev, &cathy_user)
        .unwrap();
    alice.update(&room, &out.bundle).await;
    let err = cathy.join(&room, &[]).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");
    let private = RoomUri::parse(&format!("mimi://a.example/r/closed{}", tag())).unwrap();
    alice.create_room(&private).await;
    let err = cathy.join(&private, &[]).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");
}

/// Sets the join link policy and makes/revokes links as `p` (a member that may).
async fn links(
    p: &mut Person,
    room: &RoomUri,
    policy: Option<JoinLinkPolicy>,
    add: Vec<Vec<u8>>,
    revoke: &[Vec<u8>],
) {
    let out = p
        .rooms
        .get_mut(room)
        .unwrap()
        .set_join_links(&p.dev, policy, add, revoke)
        .unwrap();
    let o = p.update(room, &out.bundle).await;
    assert!(matches!(o, UpdateOutcome::Success { .. }), "{o:?}");
}

/// Join links (`ROOM-join-links`, `PROTO-5.6-joining-code`) in a private room, whose role 0
/// holds canUseJoinCode: a single-use link admits one join and is gone with it; a multi-use
/// link admits several until it is revoked; a code the room does not list is refused.
async fn join_links(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/linked{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;
    let mut dave = Person::register(fed, "b.example", "dave", "1").await;
    let mut erin = Person::register(fed, "b.example", "erin", "1").await;
    alice.create_room(&room).await;

    // No link yet: a made-up code is refused, and so is a join without one.
    let forged = format!("{}{}deadbeef", room, mimi_room::join_links::LINK_KEY).into_bytes();
    let err = cathy.join(&room, &forged).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");
    let err = cathy.join(&room, &[]).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");

    // A single-use link: Cathy joins with it, the link goes, Dave cannot use it.
    let single = mimi_room::join_links::new_link(&room).unwrap();
    let policy = JoinLinkPolicy {
        on_request: true,
        join_link: room.to_string(),
        multiuser: false,
        expiration: 3600,
    };
    links(&mut alice, &room, Some(policy), vec![single.clone()], &[]).await;
    let e = cathy
        .join(&room, &single)
        .await
        .expect("Cathy joins with the link");
    alice
        .sync_until("Cathy's join", |p| p.epoch(&room) == e)
        .await;
    let state = alice.rooms[&room].state(&alice.dev).unwrap();
    assert_eq!(
        state.role_of(&UserUri::parse("mimi://c.example/u/cathy").unwrap()),
        2
    );
    assert!(state.join.links.links.is_empty(), "the used link is gone");
    let err = dave.join(&room, &single).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");
    let m = alice.send(&room, "hello, Cathy").await;
    let m2 = m.clone();
    cathy
        .sync_until("a message after the link join", move |p| p.got(&m2) == 1)
        .await;

    // A multi-use link: Dave and Erin (both of b.example) join with it; then it is revoked.
    let multi = mimi_room::join_links::new_link(&room).unwrap();
    let policy = JoinLinkPolicy {
        on_request: true,
        join_link: room.to_string(),
        multiuser: true,
        expiration: 0,
    };
    links(&mut alice, &room, Some(policy), vec![multi.clone()], &[]).await;
    cathy
        .sync_until("the new link", |p| {
            p.rooms[&room]
                .state(&p.dev)
                .is_ok_and(|s| !s.join.links.links.is_empty())
        })
        .await;
    dave.join(&room, &multi).await.expect("Dave joins");
    let e = erin.join(&room, &multi).await.expect("Erin joins");
    alice
        .sync_until("both joins", |p| p.epoch(&room) == e)
        .await;
    assert_eq!(
        alice.rooms[&room]
            .state(&alice.dev)
            .unwrap()
            .join
            .links
            .links,
        vec![multi.clone()]
    );
    links(
        &mut alice,
        &room,
        None,
        Vec::new(),
        std::slice::from_ref(&multi),
    )
    .await;
    let mut frank = Person::register(fed, "c.example", "frank", "1").await;
    let err = frank.join(&room, &multi).await.unwrap_err();
    assert!(err.contains("notAuthorized"), "{err}");
}

#[tokio::test]
async fn room_join_links_single_and_multi_use_sqlite() {
    let fed = federation(None).await;
    join_links(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn room_join_links_single_and_multi_use_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    join_links(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn proto_5_6_external_joins_open_pending_resync_sqlite() {
    let fed = federation(None).await;
    joins(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn proto_5_6_external_joins_open_pending_resync_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    joins(&fed).await;
    fed.shutdown().await;
}

/// keyMaterial as the draft says (`ROOM-suites`, `STORE-kp-suite`,
/// `PROTO-5.2-required-capabilities`): a room in suite 0x0003 claims KeyPackages of that suite
/// and works across providers; a user without one gets `noCompatibleMaterial` with its client
/// `nothingCompatible`; a requirement no leaf supports gets `nothingCompatible` with the
/// client's capabilities, and the KeyPackage is not used up.
async fn suites(fed: &Federation) {
    use mimi_wire::key_material::{ClientMaterial, KeyMaterialUserCode};
    use openmls::prelude::Ciphersuite;
    let chacha = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
    let room = RoomUri::parse(&format!("mimi://a.example/r/chacha{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    bob.publish_in(1, chacha).await;
    let cathy = Person::register(fed, "c.example", "cathy", "1").await;
    alice
        .create_room_in(
            &room,
            &mimi_room::presets::private_group(&mimi_room::codepoints::CodePoints::DRAFT),
            chacha,
        )
        .await;
    let cathy_user = cathy.dev.user.clone();
    let req = alice
        .dev
        .key_material_request_in(&room, &cathy_user, &[chacha])
        .unwrap();
    let (st, b) = call(
        &alice.api,
        http::Method::POST,
        &format!("keyMaterial/{}", enc(cathy_user.as_str())),
        mimi_wire::codec::Body::encode(&req),
    )
    .await;
    assert_eq!(st, http::StatusCode::OK);
    let resp = <mimi_wire::key_material::KeyMaterialResponse as mimi_wire::codec::Body>::decode(&b)
        .unwrap();
    assert_eq!(
        resp.user_status,
        KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL,
        "{resp:?}"
    );
    assert!(matches!(
        resp.clients[0].material,
        ClientMaterial::NothingCompatible(_)
    ));

    alice.add(&room, bob.dev.user.as_str()).await;
    let e = alice.epoch(&room);
    bob.sync_until("the suite-3 Welcome", |p| p.epoch(&room) == e)
        .await;
    assert_eq!(bob.rooms[&room].group.ciphersuite(), chacha);
    let m = bob.send(&room, "over ChaCha20-Poly1305").await;
    let m2 = m.clone();
    alice
        .sync_until("Bob's message", move |p| p.got(&m2) == 1)
        .await;

    // A requirement no leaf supports: nothingCompatible with capabilities; nothing used up.
    let mut req = alice
        .dev
        .key_material_request_in(&room, &cathy_user, &[mimi_room::mls::CIPHERSUITE])
        .unwrap();
    let caps = openmls::prelude::RequiredCapabilitiesExtension::new(
        &[openmls::prelude::ExtensionType::Unknown(0xf0f0)],
        &[],
        &[],
    );
    req.tbs.required_capabilities = mimi_wire::codec::Mls::encode_from(&caps).unwrap();
    let req =
        mimi_wire::key_material::KeyMaterialRequest::sign(req.tbs, &alice.dev.signer).unwrap();
    let (_, b) = call(
        &alice.api,
        http::Method::POST,
        &format!("keyMaterial/{}", enc(cathy_user.as_str())),
        mimi_wire::codec::Body::encode(&req),
    )
    .await;
    let resp = <mimi_wire::key_material::KeyMaterialResponse as mimi_wire::codec::Body>::decode(&b)
        .unwrap();
    assert_eq!(
        resp.user_status,
        KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL,
        "{resp:?}"
    );
    assert!(matches!(
        resp.clients[0].material,
        ClientMaterial::NothingCompatible(Some(_))
    ));
    // Cathy's two KeyPackages are still there: two plain claims get one each.
    for _ in 0..2 {
        let r = alice.claim(&room, &cathy_user).await;
        assert_eq!(r.user_status, KeyMaterialUserCode::SUCCESS, "{r:?}");
    }
}

#[tokio::test]
async fn room_suites_key_material_by_suite_and_capabilities_sqlite() {
    let fed = federation(None).await;
    suites(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn room_suites_key_material_by_suite_and_capabilities_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    suites(&fed).await;
    fed.shutdown().await;
}

/// Consent grants carry KeyPackages (`PROTO-5.7-grant-key-packages`, protocol-06 §5.7 "KeyPackages
/// in a grant let the requester add immediately"): Bob of b.example grants Alice of a.example;
/// his provider claims one KeyPackage per client of his and sends it in updateConsent; Alice's
/// provider keeps it for her, hands it out once (`consent/keyPackages`), and Alice adds Bob with
/// it without a keyMaterial claim. A revocation drops a kept one.
async fn decide(api: &mimi_net::client::ClientApi, requester: &UserUri, op: &str) {
    let body = serde_json::json!({ "requester": requester.as_str() });
    let (st, b) = call(
        api,
        http::Method::POST,
        &format!("consent/{op}"),
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(st, http::StatusCode::OK, "{}", String::from_utf8_lossy(&b));
}

async fn take(api: &mimi_net::client::ClientApi, target: &str, suite: Option<u16>) -> Vec<Vec<u8>> {
    let body = match suite {
        Some(s) => serde_json::json!({ "target": target, "suite": s }),
        None => serde_json::json!({ "target": target }),
    };
    let (st, b) = call(
        api,
        http::Method::POST,
        "consent/keyPackages",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(st, http::StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["key_packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex::decode(h.as_str().unwrap()).unwrap())
        .collect()
}

async fn grant_key_packages(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/granted{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    alice.create_room(&room).await;
    let bob_user = bob.dev.user.to_string();

    // Bob's device publishes KeyPackages of both suites.
    bob.publish_in(
        2,
        openmls::prelude::Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    )
    .await;
    let suite_of = |kps: &[Vec<u8>]| -> Vec<Option<u16>> {
        kps.iter()
            .map(|k| mimi_wire::key_material::key_package_suite(k))
            .collect()
    };

    // A grant, then a revocation: nothing is kept.
    decide(&bob.api, &alice.dev.user, "grant").await;
    decide(&bob.api, &alice.dev.user, "revoke").await;
    assert!(take(&alice.api, &bob_user, None).await.is_empty());

    // A grant: one KeyPackage of Bob's one device per suite; a room of suite 0x0001 takes
    // that one (once), the 0x0003 one stays kept for a room of that suite.
    decide(&bob.api, &alice.dev.user, "grant").await;
    let kps = take(&alice.api, &bob_user, Some(1)).await;
    assert_eq!(suite_of(&kps), vec![Some(1)]);
    assert!(take(&alice.api, &bob_user, Some(1)).await.is_empty());
    let kps3 = take(&alice.api, &bob_user, Some(3)).await;
    assert_eq!(suite_of(&kps3), vec![Some(3)]);
    assert!(take(&alice.api, &bob_user, None).await.is_empty());
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .add_users(&alice.dev, &[(bob.dev.user.clone(), 2)], &kps)
        .unwrap();
    let o = alice.update(&room, &out.bundle).await;
    assert!(matches!(o, UpdateOutcome::Success { .. }), "{o:?}");
    let e = alice.epoch(&room);
    bob.sync_until("the Welcome from a granted KeyPackage", |p| {
        p.epoch(&room) == e
    })
    .await;
    let m = alice
        .send(&room, "added with the KeyPackage of your grant")
        .await;
    let m2 = m.clone();
    bob.sync_until("the message", move |p| p.got(&m2) == 1)
        .await;
}

#[tokio::test]
async fn proto_5_7_grant_key_packages_sqlite() {
    let fed = federation(None).await;
    grant_key_packages(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn proto_5_7_grant_key_packages_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    grant_key_packages(&fed).await;
    fed.shutdown().await;
}
