//! The draft's example flow (protocol-06 §3) end to end with three nodes started from their
//! configuration (`run::start`): real QUIC with mutual TLS between them on loopback, real
//! SQLite files (and PostgreSQL databases when `MIMI_TEST_POSTGRES_URL` is set), driven by
//! test devices (mimi-room) that talk only to their home node's client API over HTTP/3.
//!
//! Alice (a.example) creates a room on her node, the hub; she claims Bob's KeyPackage through
//! the hub from b.example and adds him; Bob, through his own node, claims Cathy's (c.example)
//! through the hub and adds her; everybody messages; Bob leaves; Cathy adds a second device by
//! external commit from the hub's GroupInfo. Everyone ends in the same epoch with the same
//! participants, and each saw every message once.

use bytes::Bytes;
use http::{Method, StatusCode};
use mimi_content::MimiContent;
use mimi_harness::*;
use mimi_net::NetLimits;
use mimi_room::client::Event;
use mimi_wire::codec::Body;
use mimi_wire::group_info::GroupInfoResponse;
use mimi_wire::id::RoomUri;
use mimi_wire::update::{UpdateOutcome, UpdateRoomResponse};
use std::collections::HashMap;

async fn example_flow(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/clubhouse{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;

    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    bob.sync_until("Bob joins", |p| p.rooms.contains_key(&room))
        .await;
    assert_eq!(bob.epoch(&room), alice.epoch(&room));

    // Bob, through b.example, claims Cathy's KeyPackage via the hub and adds her.
    bob.add(&room, "mimi://c.example/u/cathy").await;
    cathy
        .sync_until("Cathy joins", |p| p.rooms.contains_key(&room))
        .await;
    let e = bob.epoch(&room);
    alice
        .sync_until("Alice sees Cathy's add", |p| p.epoch(&room) == e)
        .await;

    // Messages from each provider reach the two others exactly once.
    let m1 = alice.send(&room, "Hi all").await;
    let m2 = bob.send(&room, "Hi from b").await;
    let m3 = cathy.send(&room, "Hi from c").await;
    for p in [&mut alice, &mut bob, &mut cathy] {
        let (a, b, c) = (m1.clone(), m2.clone(), m3.clone());
        let me = p.dev.client.clone();
        p.sync_until("all three messages", move |p| {
            [&a, &b, &c]
                .iter()
                .enumerate()
                .all(|(i, m)| p.got(m) == 1 || (me.provider().as_str() == DOMAINS[i]))
        })
        .await;
    }

    // PROTO-5.4.1-frank-verify: every device verified every frank of the others.
    for p in [&alice, &bob, &cathy] {
        assert_eq!(p.flagged(), Vec::<String>::new(), "{}", p.dev.client);
    }
    // PROTO-5.9-report-frank: Cathy reports Bob's message through c.example to the hub;
    // accepted. The same report with an altered frank, or altered content, is refused with
    // 400 and the reason, passed on by c.example.
    let franked = cathy
        .verified_frank(&m2)
        .expect("Cathy verified Bob's frank");
    let (st, why) = cathy
        .report(&room, "mimi://b.example/u/bob", franked.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
    let mut altered = franked.clone();
    altered.1.server_frank[7] ^= 0x10;
    let (st, why) = cathy.report(&room, "mimi://b.example/u/bob", altered).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{why}");
    assert!(why.contains("PROTO-5.9-report-frank"), "{why}");
    let mut altered = franked.clone();
    altered.0 = MimiContent::decode(&altered.0)
        .map(|mut c| {
            c.nested_part = mimi_content::NestedPart::text("Hi from b, nicely");
            c.encode().unwrap()
        })
        .unwrap();
    let (st, why) = cathy.report(&room, "mimi://b.example/u/bob", altered).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{why}");
    // Alice, at the hub itself, may not name Bob as the sender of Cathy's message.
    let cathys = alice
        .verified_frank(&m3)
        .expect("Alice verified Cathy's frank");
    let (st, why) = alice.report(&room, "mimi://b.example/u/bob", cathys).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{why}");
    assert!(why.contains("PROTO-5.4.1-frank-sender"), "{why}");

    // A wrong token is refused; Bob may not submit as Alice.
    let stranger = fed.api("a.example");
    stranger.set_token("not-a-token");
    let (st, _) = call(&stranger, Method::GET, "queue", Vec::new()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let forged = {
        let r = bob.rooms.get_mut(&room).unwrap();
        let mut req = r
            .send(
                &bob.dev,
                &MimiContent::text(rand16(), "forged").encode().unwrap(),
            )
            .unwrap();
        req.sending_uri = mimi_wire::id::MimiUri::parse("mimi://a.example/u/alice").unwrap();
        req
    };
    let (st, _) = call(
        &bob.api,
        Method::POST,
        &format!("submitMessage/{}", enc(room.as_str())),
        forged.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Bob leaves (SelfRemove through b.example), Alice commits it.
    let bundle = bob.rooms.get_mut(&room).unwrap().leave(&bob.dev).unwrap();
    let (st, b) = call(
        &bob.api,
        Method::POST,
        &format!("update/{}", enc(room.as_str())),
        bundle.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    alice
        .sync_until("Alice has Bob's proposal", |p| {
            p.seen.iter().any(|e| matches!(e, Event::Proposal))
        })
        .await;
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .commit_pending(&alice.dev)
        .unwrap();
    let (st, b) = call(
        &alice.api,
        Method::POST,
        &format!("update/{}", enc(room.as_str())),
        out.bundle.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(matches!(
        UpdateRoomResponse::decode(&b).unwrap().outcome,
        UpdateOutcome::Success { .. }
    ));
    alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .merge(&alice.dev)
        .unwrap();
    let e = alice.epoch(&room);
    cathy
        .sync_until("Cathy sees Bob leave", |p| p.epoch(&room) == e)
        .await;
    bob.sync_until("Bob sees his removal", |p| {
        p.seen
            .iter()
            .any(|e| matches!(e, Event::Commit { removed: true, .. }))
    })
    .await;

    // Cathy adds a second device by external commit from the hub's GroupInfo.
    let mut cathy2 =
        Person::register_with(fed, "c.example", "cathy", "2", Some(&cathy.token)).await;
    let pending = cathy2.dev.group_info_request().unwrap();
    let (st, b) = call(
        &cathy2.api,
        Method::POST,
        &format!("groupInfo/{}", enc(room.as_str())),
        pending.request.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let resp = GroupInfoResponse::decode(&b).unwrap();
    let (gi, tree) = cathy2.dev.open_group_info(&room, &pending, &resp).unwrap();
    let (r, out) = cathy2.dev.join_external(&room, &gi, &tree, None).unwrap();
    let (st, b) = call(
        &cathy2.api,
        Method::POST,
        &format!("update/{}", enc(room.as_str())),
        out.bundle.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let resp = UpdateRoomResponse::decode(&b).unwrap();
    assert!(
        matches!(resp.outcome, UpdateOutcome::Success { .. }),
        "{resp:?}"
    );
    cathy2.rooms.insert(room.clone(), r);
    cathy2
        .rooms
        .get_mut(&room)
        .unwrap()
        .merge(&cathy2.dev)
        .unwrap();
    let e = cathy2.epoch(&room);
    alice
        .sync_until("Alice sees Cathy's device", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy sees her device", |p| p.epoch(&room) == e)
        .await;

    // Everyone left agrees, and a last message reaches every remaining device once.
    let m4 = cathy2.send(&room, "from my second device").await;
    for p in [&mut alice, &mut cathy] {
        let m = m4.clone();
        p.sync_until("the last message", move |p| p.got(&m) == 1)
            .await;
    }
    let clients = alice.rooms[&room].clients();
    assert_eq!(clients, cathy.rooms[&room].clients());
    assert_eq!(clients, cathy2.rooms[&room].clients());
    assert_eq!(clients.len(), 3, "{clients:?}");
    let state = |p: &Person| p.rooms[&room].state(&p.dev).unwrap();
    assert_eq!(state(&alice), state(&cathy));
    assert_eq!(state(&alice), state(&cathy2));
}

#[tokio::test]
async fn three_nodes_example_flow_sqlite() {
    let fed = federation(None).await;
    example_flow(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn three_nodes_example_flow_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    example_flow(&fed).await;
    fed.shutdown().await;
}

/// Issue 5's negative cases against a running node: no client certificate, a certificate for
/// c.example claiming to be b.example, an oversized body, a malformed body. Each gets a clear
/// status, nothing is stored, and the node keeps serving.
#[tokio::test]
async fn refusals_store_nothing_and_the_node_keeps_serving() {
    use http::HeaderMap;
    use mimi_net::client::Connector;
    use mimi_net::paths::{Endpoint, path};
    use mimi_net::pki::{load_certs, load_key};

    let fed = federation(None).await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/guarded{}", tag())).unwrap();
    let mut alice = Person::register(&fed, "a.example", "alice", "1").await;
    alice.create_room(&room).await;
    let db = fed.sqlite(0);
    let store = mimi_store::Store::open(db.to_str().unwrap()).await.unwrap();
    let events = || async {
        store
            .events_after(room.as_str(), 0, 1000)
            .await
            .unwrap()
            .len()
    };
    let before = events().await;
    let a_addr = fed.addrs[0].clone();
    let peers = HashMap::from([("a.example".to_owned(), a_addr)]);
    let update = path(Endpoint::Update, room.as_str());
    let body = Bytes::from_static(b"\x00\x01garbage");

    // No client certificate: refused before any service runs.
    let anon = Connector::anonymous(&fed.roots, peers.clone(), NetLimits::default()).unwrap();
    let r = anon
        .request(
            "a.example",
            Method::POST,
            &update,
            HeaderMap::new(),
            body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // c.example's certificate, claiming to be b.example.
    let c = fed.dir.join("c.example");
    let liar = Connector::provider(
        "b.example",
        &load_certs(&c.join("node.crt")).unwrap(),
        &load_key(&c.join("node.key")).unwrap(),
        &fed.roots,
        peers.clone(),
        NetLimits::default(),
    )
    .unwrap();
    let r = liar
        .request(
            "a.example",
            Method::POST,
            &update,
            HeaderMap::new(),
            body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("b.example"), "{}", r.text());

    // A real provider (c.example as itself): oversized and malformed bodies.
    let cc = Connector::provider(
        "c.example",
        &load_certs(&c.join("node.crt")).unwrap(),
        &load_key(&c.join("node.key")).unwrap(),
        &fed.roots,
        peers,
        NetLimits::default(),
    )
    .unwrap();
    let big = Bytes::from(vec![0u8; 2 * 1024 * 1024]);
    let r = cc
        .request("a.example", Method::POST, &update, HeaderMap::new(), big)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let r = cc
        .request("a.example", Method::POST, &update, HeaderMap::new(), body)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(!r.text().is_empty());

    // Nothing was stored, and the node still serves: Alice's message is accepted.
    assert_eq!(events().await, before);
    alice.send(&room, "still here").await;
    assert_eq!(events().await, before + 1);
    fed.shutdown().await;
}

/// Two `mimi-node` processes of a.example share one PostgreSQL database (issue 5, issue 7
/// case 8): devices on both submit to the same room at once; the room row lock orders them,
/// the log has no gap or duplicate, and every device sees every other device's message once,
/// each sender's in its order, on both providers.
#[tokio::test]
async fn two_processes_of_one_provider_share_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the two-process run is skipped");
        return;
    };
    let t = tag();
    let a_db = pg_database(&url, &format!("mimi_shared_a_{t}")).await;
    let fed = federation_of(&[
        ("a.example", "a1", a_db.clone()),
        ("a.example", "a2", a_db.clone()),
        ("b.example", "b", "sqlite".into()),
    ])
    .await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/shared{t}")).unwrap();
    let mut alice = Person::register_via(fed.api_at(0), "alice", "1", None).await;
    let mut dave = Person::register_via(fed.api_at(1), "dave", "1", None).await;
    let mut bob = Person::register_via(fed.api_at(2), "bob", "1", None).await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://a.example/u/dave").await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    dave.sync_until("Dave joins", |p| p.rooms.contains_key(&room))
        .await;
    let e = alice.epoch(&room);
    dave.sync_until("Dave at the epoch", |p| p.epoch(&room) == e)
        .await;
    bob.sync_until("Bob joins", |p| p.rooms.contains_key(&room))
        .await;

    const N: usize = 20;
    let (a_sent, d_sent) = tokio::join!(
        async {
            let mut v = Vec::new();
            for i in 0..N {
                v.push(alice.send(&room, &format!("alice {i}")).await);
            }
            v
        },
        async {
            let mut v = Vec::new();
            for i in 0..N {
                v.push(dave.send(&room, &format!("dave {i}")).await);
            }
            v
        }
    );
    let all: Vec<MimiContent> = a_sent.iter().chain(&d_sent).cloned().collect();
    {
        let all = all.clone();
        bob.sync_until("Bob has all", move |p| all.iter().all(|m| p.got(m) >= 1))
            .await;
    }
    {
        let d = d_sent.clone();
        alice
            .sync_until("Alice has Dave's", move |p| d.iter().all(|m| p.got(m) >= 1))
            .await;
    }
    {
        let a = a_sent.clone();
        dave.sync_until("Dave has Alice's", move |p| a.iter().all(|m| p.got(m) >= 1))
            .await;
    }
    for m in &all {
        assert_eq!(bob.got(m), 1, "Bob saw {m:?} once");
    }
    for m in &d_sent {
        assert_eq!(alice.got(m), 1);
    }
    for m in &a_sent {
        assert_eq!(dave.got(m), 1);
    }
    // Each sender's messages reach Bob in the order they were sent.
    let order: Vec<MimiContent> = bob
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::Message { content, .. } => MimiContent::decode(content).ok(),
            _ => None,
        })
        .collect();
    for sent in [&a_sent, &d_sent] {
        let mine: Vec<&MimiContent> = order.iter().filter(|m| sent.contains(m)).collect();
        assert_eq!(mine, sent.iter().collect::<Vec<_>>());
    }
    // The hub's log: 1..=k without a gap or a repeat (3 commits, 2N messages).
    let store = mimi_store::Store::open(&a_db).await.unwrap();
    let events = store.events_after(room.as_str(), 0, 10_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=(2 + 2 * N) as u64).collect::<Vec<_>>());
    fed.shutdown().await;
}

/// identifierQuery through the client API (forwarded to the target provider) and reportAbuse
/// from a provider to the hub (`PROTO-5.8-query`, `PROTO-5.9-report`).
#[tokio::test]
async fn identifier_query_and_abuse_reports() {
    use http::HeaderMap;
    use mimi_net::client::Connector;
    use mimi_net::paths::{Endpoint, path};
    use mimi_net::pki::{load_certs, load_key};
    use mimi_wire::abuse::AbuseReport;
    use mimi_wire::id::UserUri;
    use mimi_wire::identifier::{
        IdentifierQueryCode, IdentifierRequest, IdentifierResponse, QueryElement,
        SearchIdentifierType,
    };

    let fed = federation(None).await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/reports{}", tag())).unwrap();
    let mut alice = Person::register(&fed, "a.example", "alice", "1").await;
    let _bob = Person::register(&fed, "b.example", "bob", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;

    let query = |t: SearchIdentifierType, v: &str| IdentifierRequest {
        query_elements: vec![QueryElement {
            search_type: t,
            field_name: Vec::new(),
            search_value: v.to_owned(),
        }],
        extensions: Default::default(),
    };
    let ask = |q: IdentifierRequest| {
        let api = &alice.api;
        async move {
            let (st, b) = call(api, Method::POST, "identifierQuery/b.example", q.encode()).await;
            assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
            IdentifierResponse::decode(&b).unwrap()
        }
    };
    let r = ask(query(SearchIdentifierType::NICK, "bob")).await;
    assert_eq!(r.response_code, IdentifierQueryCode::SUCCESS);
    assert_eq!(r.uris.len(), 1);
    assert_eq!(r.uris[0].to_string(), "mimi://b.example/u/bob");
    let r = ask(query(SearchIdentifierType::NICK, "zed")).await;
    assert_eq!(r.response_code, IdentifierQueryCode::NOT_FOUND);
    assert!(r.uris.is_empty());
    let r = ask(query(SearchIdentifierType::EMAIL, "bob@b.example")).await;
    assert_eq!(r.response_code, IdentifierQueryCode::UNSUPPORTED_FIELD);

    // b.example reports Alice's message to the hub; c.example may not report for b's user.
    let report = AbuseReport {
        reporting_user: Some(UserUri::parse("mimi://b.example/u/bob").unwrap()),
        alleged_abuser_uri: UserUri::parse("mimi://a.example/u/alice").unwrap(),
        reason_code: 0,
        note: "unwanted".into(),
        messages: Vec::new(),
        extensions: Default::default(),
    };
    let connector = |d: &str| {
        let dir = fed.dir.join(d);
        Connector::provider(
            d,
            &load_certs(&dir.join("node.crt")).unwrap(),
            &load_key(&dir.join("node.key")).unwrap(),
            &fed.roots,
            HashMap::from([("a.example".to_owned(), fed.addrs[0].clone())]),
            NetLimits::default(),
        )
        .unwrap()
    };
    let p = path(Endpoint::ReportAbuse, room.as_str());
    let r = connector("b.example")
        .request(
            "a.example",
            Method::POST,
            &p,
            HeaderMap::new(),
            report.encode().into(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = connector("c.example")
        .request(
            "a.example",
            Method::POST,
            &p,
            HeaderMap::new(),
            report.encode().into(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let store = mimi_store::Store::open(fed.sqlite(0).to_str().unwrap())
        .await
        .unwrap();
    let kept = store.abuse_reports(0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reporter, "b.example");
    assert_eq!(kept[0].room_uri, room.as_str());
    fed.shutdown().await;
}
