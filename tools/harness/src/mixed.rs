//! Issue 18: one room whose devices run two MLS implementations, across three providers over
//! real QUIC (`INTEROP-mixed-federation`). Alice (a.example) and Cathy's first device
//! (c.example) are openmls devices (mimi-room); Bob (b.example) and Cathy's second device are
//! mls-rs devices (mimi-room-mlsrs), so Cathy is a mixed user. Every device talks only to its
//! home node's client API; the hub is a.example's openmls PublicGroup.
//!
//! What the room does: Alice adds Bob and Cathy (both her devices) in one commit (Add +
//! participant-list AppDataUpdate, which the mls-rs devices join from but could not process
//! as a commit: spec-notes/interop.md); then messages, a reply, reactions, an edit, a delete
//! and a delivery receipt from every device; self-updates by both libraries; a commit race
//! between an openmls and an mls-rs device; Bob (mls-rs) adds his second device (openmls) and
//! removes it again, after which that device gets nothing; and an invalid commit (removing
//! another user's device with no participant-list change) that the hub refuses from an
//! mls-rs device exactly as it refuses it from an openmls device. After every epoch every
//! device has the same epoch, epoch authenticator, room state and member list; every message
//! decrypts everywhere once, and every frank verifies on both libraries.

use crate::mlsrs::RsPerson;
use crate::{Person, call, rand16, tag};
use http::{Method, StatusCode};
use mimi_content::view::{History, Received};
use mimi_content::{MessageId, MimiContent, NestedPart};
use mimi_net::client::ClientApi;
use mimi_room::client::Event;
use mimi_room::franking::FrankCheck;
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::key_material::{ClientMaterial, KeyMaterialUserCode};
use mimi_wire::submit::SubmitOutcome;
use mimi_wire::update::UpdateOutcome;
use std::collections::HashMap;

/// One of the four devices, of either library.
enum Dev<'a> {
    Om(&'a Person),
    Rs(&'a RsPerson),
}

impl Dev<'_> {
    fn library(&self) -> &'static str {
        match self {
            Dev::Om(_) => "openmls",
            Dev::Rs(_) => "mls-rs",
        }
    }

    fn client(&self) -> ClientUri {
        match self {
            Dev::Om(p) => p.dev.client.clone(),
            Dev::Rs(p) => p.dev.client.clone(),
        }
    }

    /// (epoch, epoch authenticator, room state, sorted clients).
    fn view(&self, room: &RoomUri) -> (u64, Vec<u8>, mimi_room::state::RoomState, Vec<ClientUri>) {
        match self {
            Dev::Om(p) => {
                let r = &p.rooms[room];
                let mut c = r.clients();
                c.sort();
                (
                    r.epoch(),
                    r.group.epoch_authenticator().as_slice().to_vec(),
                    r.state(&p.dev).unwrap(),
                    c,
                )
            }
            Dev::Rs(p) => {
                let r = &p.rooms[room];
                let mut c = r.clients();
                c.sort();
                (
                    r.epoch(),
                    r.epoch_authenticator().unwrap(),
                    r.state().unwrap(),
                    c,
                )
            }
        }
    }

    /// What this device received: (sender client, content bytes, frank check).
    fn received(&self) -> Vec<(ClientUri, Vec<u8>, FrankCheck)> {
        match self {
            Dev::Om(p) => p
                .seen
                .iter()
                .filter_map(|e| match e {
                    Event::Message {
                        sender,
                        content,
                        frank,
                    } => Some((sender.clone(), content.clone(), frank.clone())),
                    _ => None,
                })
                .collect(),
            Dev::Rs(p) => p.contents(),
        }
    }
}

/// `INTEROP-mixed-federation`: every device has the same epoch, epoch authenticator, room state
/// and members as the first.
fn assert_agree(room: &RoomUri, devs: &[Dev<'_>], when: &str, say: &mut dyn FnMut(String)) {
    let first = devs[0].view(room);
    for d in &devs[1..] {
        let v = d.view(room);
        assert_eq!(v.0, first.0, "{when}: {} epoch", d.client());
        assert_eq!(v.1, first.1, "{when}: {} epoch authenticator", d.client());
        assert_eq!(v.2, first.2, "{when}: {} room state", d.client());
        assert_eq!(v.3, first.3, "{when}: {} members", d.client());
    }
    let libs: Vec<String> = devs
        .iter()
        .map(|d| format!("{} ({})", d.client(), d.library()))
        .collect();
    say(format!(
        "{when}: epoch {}, epoch authenticator {} on all {} devices: {}",
        first.0,
        hex::encode(&first.1[..8.min(first.1.len())]),
        devs.len(),
        libs.join(", ")
    ));
}

/// Franked content naming its sender and room (`PROTO-5.4.1-frank-aad`).
fn franked(user: &UserUri, room: &RoomUri, c: MimiContent) -> MimiContent {
    let mut b = mimi_content::build::ContentBuilder::new(c.salt, c.nested_part.clone())
        .sender_and_room(user.as_str(), room.as_str());
    if let Some(t) = c.in_reply_to {
        b = b.in_reply_to(t);
    }
    if let Some(t) = c.replaces {
        b = b.replaces(t);
    }
    b.build()
}

fn id_of(c: &MimiContent) -> MessageId {
    c.message_id_for(&c.encode().unwrap(), None, None).unwrap()
}

/// Each device's view of the room's history (its own messages and what it received),
/// reduced to what must be alike everywhere.
fn history_of(
    room: &RoomUri,
    own: &[(UserUri, MimiContent)],
    received: &[(ClientUri, Vec<u8>, FrankCheck)],
) -> Vec<serde_json::Value> {
    let mut h = History::new();
    let mut put = |sender: &str, bytes: &[u8]| {
        let c = MimiContent::decode(bytes).unwrap();
        let id = c
            .message_id_for(bytes, Some(sender), Some(room.as_str()))
            .unwrap();
        h.insert(Received {
            id,
            sender: sender.to_owned(),
            timestamp_ms: 1,
            content: c,
        })
        .unwrap();
    };
    for (u, c) in own {
        put(u.as_str(), &c.encode().unwrap());
    }
    for (s, bytes, _) in received {
        put(s.user().unwrap().as_str(), bytes);
    }
    let mut v: Vec<serde_json::Value> = h
        .view(2, None)
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": hex::encode(m.id.0), "sender": m.sender, "text": m.text,
                "edits": m.edits, "deleted": m.deleted,
                "in_reply_to": m.in_reply_to.map(|i| hex::encode(i.0)),
                "reactions": m.reactions.iter().map(|r| serde_json::json!([r.reaction, r.users])).collect::<Vec<_>>(),
                "statuses": m.statuses.iter().map(|(u, s)| serde_json::json!([u, s.0])).collect::<Vec<_>>(),
            })
        })
        .collect();
    v.sort_by_key(|m| m["id"].as_str().unwrap_or_default().to_owned());
    v
}

/// The mixed room of issue 18 (`INTEROP-mixed-federation`, see the module documentation)
/// through the client APIs `api` gives for a.example, b.example and c.example; user names end
/// in `suffix` (a federation that has the plain names already); `say` hears each step, with
/// the epoch authenticator every device agreed on. Panics on the first disagreement.
pub async fn mixed_flow(
    api: &dyn Fn(&str) -> ClientApi,
    suffix: &str,
    say: &mut dyn FnMut(String),
) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/mixed{}", tag())).unwrap();
    let mut alice =
        Person::register_via(api("a.example"), &format!("alice{suffix}"), "1", None).await;
    let mut cathy =
        Person::register_via(api("c.example"), &format!("cathy{suffix}"), "1", None).await;
    let mut bob =
        RsPerson::register_via(api("b.example"), &format!("bob{suffix}"), "1", None).await;
    let mut cathy2 = RsPerson::register_via(
        api("c.example"),
        &format!("cathy{suffix}"),
        "2",
        Some(&cathy.token),
    )
    .await;
    let bob_user = bob.dev.user.clone();
    let cathy_user = cathy.dev.user.clone();

    // Alice adds Bob and both of Cathy's devices in one commit (keyMaterial hands out the
    // mls-rs KeyPackages through the hub like any other).
    alice.create_room(&room).await;
    let mut kps = Vec::new();
    for target in [&bob_user, &cathy_user] {
        let resp = alice.claim(&room, target).await;
        assert_eq!(resp.user_status, KeyMaterialUserCode::SUCCESS, "{resp:?}");
        for c in &resp.clients {
            match &c.material {
                ClientMaterial::KeyPackage(k) => kps.push(k.as_bytes().to_vec()),
                other => panic!("{}: {other:?}", c.client_uri),
            }
        }
    }
    assert_eq!(kps.len(), 3);
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .add_users(
            &alice.dev,
            &[(bob_user.clone(), 2), (cathy_user.clone(), 2)],
            &kps,
        )
        .unwrap();
    let outcome = alice.update(&room, &out.bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = alice.epoch(&room);
    bob.sync_until("Bob joins", |p| p.epoch(&room) == e).await;
    cathy2
        .sync_until("Cathy's mls-rs device joins", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy's openmls device joins", |p| p.epoch(&room) == e)
        .await;
    macro_rules! agree {
        ($when:expr) => {
            assert_agree(
                &room,
                &[
                    Dev::Om(&alice),
                    Dev::Rs(&bob),
                    Dev::Om(&cathy),
                    Dev::Rs(&cathy2),
                ],
                $when,
                say,
            )
        };
    }
    agree!("after the add");

    // Messages of every kind from both libraries.
    let mut own: HashMap<ClientUri, Vec<(UserUri, MimiContent)>> = HashMap::new();
    let a1 = franked(
        &alice.dev.user,
        &room,
        MimiContent::text(rand16(), "Hi all"),
    );
    send_om(&mut alice, &room, &a1).await;
    own.entry(alice.dev.client.clone())
        .or_default()
        .push((alice.dev.user.clone(), a1.clone()));
    let b1 = franked(
        &bob_user,
        &room,
        MimiContent::text(rand16(), "Hi from mls-rs"),
    );
    bob.send(&room, &b1).await;
    let c1 = franked(
        &cathy_user,
        &room,
        MimiContent::reply(rand16(), id_of(&b1), NestedPart::text("Welcome, Bob")),
    );
    send_om(&mut cathy, &room, &c1).await;
    let c2 = franked(
        &cathy_user,
        &room,
        MimiContent::reaction(rand16(), id_of(&a1), "👍"),
    );
    cathy2.send(&room, &c2).await;
    let b2 = franked(
        &bob_user,
        &room,
        MimiContent::edit(
            rand16(),
            id_of(&b1),
            &b1,
            NestedPart::text("Hi from mls-rs!"),
        ),
    );
    bob.send(&room, &b2).await;
    let b3 = franked(
        &bob_user,
        &room,
        MimiContent::reaction(rand16(), id_of(&c1), "🎉"),
    );
    bob.send(&room, &b3).await;
    let a2 = franked(&alice.dev.user, &room, MimiContent::text(rand16(), "oops"));
    send_om(&mut alice, &room, &a2).await;
    let a3 = franked(
        &alice.dev.user,
        &room,
        MimiContent::delete(rand16(), id_of(&a2), &a2),
    );
    send_om(&mut alice, &room, &a3).await;
    // A delivery receipt (message-status) from an mls-rs device.
    let report = mimi_content::status::MessageStatusReport {
        statuses: vec![mimi_content::status::PerMessageStatus {
            message_id: id_of(&a1),
            status: mimi_content::status::MessageStatus::DELIVERED,
        }],
    };
    let c3 = mimi_content::build::ContentBuilder::new(rand16(), NestedPart::status_report(&report))
        .sender_and_room(cathy_user.as_str(), room.as_str())
        .build();
    cathy2.send(&room, &c3).await;
    for (who, c) in [
        (&bob.dev.client, &b1),
        (&bob.dev.client, &b2),
        (&bob.dev.client, &b3),
        (&cathy.dev.client, &c1),
        (&cathy2.dev.client, &c2),
        (&cathy2.dev.client, &c3),
        (&alice.dev.client, &a2),
        (&alice.dev.client, &a3),
    ] {
        let user = who.user().unwrap();
        own.entry(who.clone()).or_default().push((user, c.clone()));
    }
    let all = [&a1, &a2, &a3, &b1, &b2, &b3, &c1, &c2, &c3];
    let total = all.len();
    let n_own = |c: &ClientUri| own.get(c).map_or(0, Vec::len);
    let want = total - n_own(&alice.dev.client);
    alice
        .sync_until("Alice has every message", |p| p.messages().len() == want)
        .await;
    let want = total - n_own(&cathy.dev.client);
    cathy
        .sync_until("Cathy has every message", |p| p.messages().len() == want)
        .await;
    let want = total - n_own(&bob.dev.client);
    bob.sync_until("Bob has every message", |p| p.contents().len() == want)
        .await;
    let want = total - n_own(&cathy2.dev.client);
    cathy2
        .sync_until("Cathy's mls-rs device has every message", |p| {
            p.contents().len() == want
        })
        .await;

    // Every message decrypted everywhere exactly once, every frank verified on both
    // libraries (PROTO-5.4.1-frank-verify), and the histories agree.
    let devs = [
        Dev::Om(&alice),
        Dev::Rs(&bob),
        Dev::Om(&cathy),
        Dev::Rs(&cathy2),
    ];
    let mut histories = Vec::new();
    for d in &devs {
        let got = d.received();
        for (sender, bytes, frank) in &got {
            assert!(
                matches!(frank, FrankCheck::Verified { .. }),
                "{}: the frank of {sender}'s message: {frank:?}",
                d.client()
            );
            assert_eq!(
                got.iter().filter(|(_, b, _)| b == bytes).count(),
                1,
                "{}: a message twice",
                d.client()
            );
        }
        histories.push(history_of(
            &room,
            own.get(&d.client()).map_or(&[][..], Vec::as_slice),
            &got,
        ));
    }
    for (d, h) in devs.iter().zip(&histories).skip(1) {
        assert_eq!(h, &histories[0], "{}: history", d.client());
    }
    say(format!(
        "{total} messages (text, reply, reactions, an edit, a delete, a delivery receipt) decrypted once on every device; every frank verified on both libraries; the four histories agree"
    ));
    let view = &histories[0];
    let b1_view = view
        .iter()
        .find(|m| m["id"] == hex::encode(id_of(&b1).0))
        .unwrap();
    assert_eq!(b1_view["text"], "Hi from mls-rs!", "{b1_view}");
    assert_eq!(b1_view["edits"], 1, "{b1_view}");
    let a2_view = view
        .iter()
        .find(|m| m["id"] == hex::encode(id_of(&a2).0))
        .unwrap();
    assert_eq!(a2_view["deleted"], true, "{a2_view}");
    let a1_view = view
        .iter()
        .find(|m| m["id"] == hex::encode(id_of(&a1).0))
        .unwrap();
    assert_eq!(a1_view["reactions"][0][0], "👍", "{a1_view}");
    assert!(
        a1_view["statuses"].to_string().contains("cathy"),
        "{a1_view}"
    );

    // Self-updates by both libraries, each processed by the others.
    let bundle = bob.room(&room).self_update().unwrap();
    let outcome = bob.update(&room, &bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let bundle = {
        let r = alice.rooms.get_mut(&room).unwrap();
        r.commit_plan(&alice.dev, Default::default())
            .unwrap()
            .bundle
    };
    let e0 = bob.epoch(&room);
    alice
        .sync_until("Alice has Bob's update", |p| p.epoch(&room) == e0)
        .await;
    let bundle = if alice.epoch(&room) == e0 {
        // Built before Bob's update reached Alice: the hub refuses it (wrongEpoch).
        let outcome = alice.update(&room, &bundle).await;
        assert!(
            matches!(outcome, UpdateOutcome::WrongEpoch { .. }),
            "{outcome:?}"
        );
        let r = alice.rooms.get_mut(&room).unwrap();
        r.commit_plan(&alice.dev, Default::default())
            .unwrap()
            .bundle
    } else {
        bundle
    };
    let outcome = alice.update(&room, &bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = alice.epoch(&room);
    bob.sync_until("Bob has Alice's update", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy at the epoch", |p| p.epoch(&room) == e)
        .await;
    cathy2
        .sync_until("Cathy's mls-rs device at the epoch", |p| {
            p.epoch(&room) == e
        })
        .await;
    agree!("after both self-updates");

    // A commit race for one epoch, openmls against mls-rs: exactly one wins.
    let from_alice = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .commit_plan(&alice.dev, Default::default())
        .unwrap()
        .bundle;
    let from_cathy2 = cathy2.room(&room).self_update().unwrap();
    let (oa, oc) = tokio::join!(
        alice.update(&room, &from_alice),
        cathy2.update(&room, &from_cathy2)
    );
    let won = [&oa, &oc]
        .iter()
        .filter(|o| matches!(o, UpdateOutcome::Success { .. }))
        .count();
    assert_eq!(won, 1, "{oa:?} {oc:?}");
    say(format!(
        "a commit race for one epoch: openmls (Alice) {oa:?}, mls-rs (Cathy's second device) {oc:?}"
    ));
    for o in [&oa, &oc] {
        assert!(
            matches!(
                o,
                UpdateOutcome::Success { .. } | UpdateOutcome::WrongEpoch { .. }
            ),
            "{o:?}"
        );
    }
    let e = e + 1;
    alice
        .sync_until("Alice after the race", |p| p.epoch(&room) == e)
        .await;
    bob.sync_until("Bob after the race", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy after the race", |p| p.epoch(&room) == e)
        .await;
    cathy2
        .sync_until("Cathy's mls-rs device after the race", |p| {
            p.epoch(&room) == e
        })
        .await;
    agree!("after the commit race");

    // The hub refuses the same invalid commit from either library: removing a device of
    // another user with no participant-list change (ROOM-8-authorize).
    let leaf = bob.room(&room).leaf_of(&cathy.dev.client).unwrap();
    let bad = bob.room(&room).commit(None, &[], &[leaf]).unwrap();
    let from_rs = bob.update(&room, &bad).await;
    let bad = cathy
        .rooms
        .get_mut(&room)
        .unwrap()
        .commit_plan(
            &cathy.dev,
            mimi_room::client::CommitPlan {
                remove_clients: vec![bob.dev.client.clone()],
                ..Default::default()
            },
        )
        .unwrap()
        .bundle;
    let from_om = cathy.update(&room, &bad).await;
    assert!(
        !matches!(from_rs, UpdateOutcome::Success { .. }),
        "{from_rs:?}"
    );
    assert_eq!(
        std::mem::discriminant(&from_rs),
        std::mem::discriminant(&from_om),
        "mls-rs: {from_rs:?}, openmls: {from_om:?}"
    );
    say(format!(
        "removing another user's device without a participant-list change: the hub answers mls-rs {from_rs:?}, openmls {from_om:?}"
    ));
    agree!("after the refused commits");

    // Bob (mls-rs) adds his second device, an openmls one, with no list change; then
    // removes it again. Afterwards it receives nothing of the room.
    let mut bob2 = Person::register_via(
        api("b.example"),
        &format!("bob{suffix}"),
        "2",
        Some(&bob.token),
    )
    .await;
    let resp = bob.claim(&room, &bob_user).await;
    let kp: Vec<Vec<u8>> = resp
        .clients
        .iter()
        .filter(|c| c.client_uri == bob2.dev.client)
        .filter_map(|c| match &c.material {
            ClientMaterial::KeyPackage(k) => Some(k.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(kp.len(), 1, "{resp:?}");
    let add = bob.room(&room).commit(None, &kp, &[]).unwrap();
    let outcome = bob.update(&room, &add).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = bob.epoch(&room);
    bob2.sync_until("Bob's openmls device joins from mls-rs' Welcome", |p| {
        p.epoch(&room) == e
    })
    .await;
    alice
        .sync_until("Alice has Bob's add", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy has Bob's add", |p| p.epoch(&room) == e)
        .await;
    cathy2
        .sync_until("Cathy's mls-rs device has Bob's add", |p| {
            p.epoch(&room) == e
        })
        .await;
    assert_agree(
        &room,
        &[
            Dev::Om(&alice),
            Dev::Rs(&bob),
            Dev::Om(&bob2),
            Dev::Om(&cathy),
            Dev::Rs(&cathy2),
        ],
        "after Bob's own add",
        say,
    );
    let hello = franked(&bob_user, &room, MimiContent::text(rand16(), "two devices"));
    send_om(&mut bob2, &room, &hello).await;
    bob.sync_until("Bob has his other device's message", |p| {
        p.contents()
            .iter()
            .any(|(_, b, _)| MimiContent::decode(b).ok().as_ref() == Some(&hello))
    })
    .await;

    let leaf = bob.room(&room).leaf_of(&bob2.dev.client).unwrap();
    let remove = bob.room(&room).commit(None, &[], &[leaf]).unwrap();
    let outcome = bob.update(&room, &remove).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    bob2.sync_until("Bob's second device is removed", |p| {
        p.seen
            .iter()
            .any(|e| matches!(e, Event::Commit { removed: true, .. }))
    })
    .await;
    let e = bob.epoch(&room);
    alice
        .sync_until("Alice has the removal", |p| p.epoch(&room) == e)
        .await;
    cathy
        .sync_until("Cathy has the removal", |p| p.epoch(&room) == e)
        .await;
    cathy2
        .sync_until("Cathy's mls-rs device has the removal", |p| {
            p.epoch(&room) == e
        })
        .await;
    agree!("after Bob's own removal");
    let after = franked(
        &bob_user,
        &room,
        MimiContent::text(rand16(), "one device again"),
    );
    bob.send(&room, &after).await;
    alice
        .sync_until("Alice has Bob's message after the removal", |p| {
            p.got(&after) == 1
        })
        .await;
    // PROTO-follower-membership: the removed device's provider fans out nothing more to it.
    let (st, b) = call(
        &bob2.api,
        Method::GET,
        &format!("queue?after={}&wait=300", bob2.cursor),
        Vec::new(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(bob.after_removal + cathy2.after_removal, 0);
    say("Bob's removed openmls device: its provider sent it nothing after the removal".into());
}

/// Submits prepared content (already naming sender and room) from an openmls device.
async fn send_om(p: &mut Person, room: &RoomUri, c: &MimiContent) {
    let outcome = p.try_send(room, c).await;
    assert!(
        matches!(outcome, SubmitOutcome::Accepted { .. }),
        "{}: {outcome:?}",
        p.dev.client
    );
}
