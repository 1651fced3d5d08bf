//! The draft's example flow (protocol-06 §3) in memory, three providers, no network: Alice on
//! the hub a.example creates the room, adds Bob of b.example; Bob adds Cathy of c.example;
//! Cathy sends; a reply and a reaction; Bob leaves; Cathy adds a second device by external
//! commit. After every step the hub and every member agree on epoch, participant list and
//! roles, and every member decrypts every message.

use mimi_content::MimiContent;
use mimi_room::client::{Device, Event, Room};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::{HubRoom, UpdateRejection};
use mimi_room::presets::private_group;
use mimi_wire::codec::Body;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::update::HandshakeBundle;
use openmls::prelude::{BasicCredential, ExternalSender};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::SignatureScheme;

pub struct Member {
    pub dev: Device,
    pub room: Room,
}

pub fn device(uri: &str) -> Device {
    Device::new(ClientUri::parse(uri).unwrap()).unwrap()
}

pub fn hub_sender() -> ExternalSender {
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    )
}

pub fn room_uri() -> RoomUri {
    RoomUri::parse("mimi://a.example/r/clubhouse").unwrap()
}

/// Everyone and the hub agree (`ROOM-agree`).
pub fn assert_agree(hub: &HubRoom, members: &[&Member]) {
    let hub_state = hub.state().unwrap();
    for m in members {
        assert_eq!(m.room.epoch(), hub.epoch(), "{} epoch", m.dev.client);
        assert_eq!(
            m.room.state(&m.dev).unwrap(),
            hub_state,
            "{} state",
            m.dev.client
        );
        let mut a = m.room.clients();
        let mut b = hub.clients();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{} members", m.dev.client);
    }
}

/// Sends a bundle to the hub; on success delivers the handshake to `others` and merges at
/// the sender (what the node does over the network).
pub fn commit(
    hub: &mut HubRoom,
    sender: &mut Member,
    bundle: HandshakeBundle,
    others: &mut [&mut Member],
) -> Result<Option<FanoutMessage>, UpdateRejection> {
    let bundle = HandshakeBundle::decode(&bundle.encode()).unwrap();
    match hub.handle_update(&bundle) {
        Ok(mut accepted) => {
            HubRoom::welcome_of(&bundle, &mut accepted).unwrap();
            let (message, extra) = match &bundle {
                HandshakeBundle::Commit { commit, .. } => {
                    (commit.clone(), FanoutExtra::Commit(vec![]))
                }
                HandshakeBundle::Proposal { proposal, .. } => {
                    (proposal.clone(), FanoutExtra::Proposal(vec![]))
                }
            };
            let item = FanoutMessage {
                timestamp: 1,
                message,
                extra,
            };
            let item = FanoutMessage::decode(&item.encode()).unwrap();
            for o in others.iter_mut() {
                let ev = o.room.process(&o.dev, &item).unwrap();
                assert_ne!(ev, Event::Ignored, "{} ignored a handshake", o.dev.client);
            }
            if matches!(bundle, HandshakeBundle::Commit { .. }) {
                sender.room.merge(&sender.dev).unwrap();
            }
            // The sender's own echo is recognised and ignored.
            assert_eq!(
                sender.room.process(&sender.dev, &item).unwrap(),
                Event::Ignored
            );
            Ok(accepted.welcome.map(|(w, _)| FanoutMessage {
                timestamp: 1,
                message: w,
                extra: FanoutExtra::Welcome(match &bundle {
                    HandshakeBundle::Commit { ratchet_tree, .. } => ratchet_tree.clone(),
                    HandshakeBundle::Proposal { .. } => unreachable!(),
                }),
            }))
        }
        Err(e) => {
            if matches!(bundle, HandshakeBundle::Commit { .. }) {
                sender.room.discard(&sender.dev).unwrap();
            }
            Err(e)
        }
    }
}

pub fn join(dev: Device, welcome: &FanoutMessage) -> Member {
    let FanoutExtra::Welcome(tree) = &welcome.extra else {
        panic!("not a welcome")
    };
    let room = dev
        .join_from_welcome(&room_uri(), &welcome.message, tree)
        .unwrap();
    Member { dev, room }
}

/// Sends a message through the hub's check to every other member, who must decrypt it.
pub fn send(hub: &HubRoom, sender: &mut Member, others: &mut [&mut Member], content: &MimiContent) {
    let bytes = content.encode().unwrap();
    let req = sender.room.send(&sender.dev, &bytes).unwrap();
    let req = mimi_wire::submit::SubmitMessageRequest::decode(&req.encode()).unwrap();
    hub.check_submit(&req).unwrap();
    let item = FanoutMessage {
        timestamp: 2,
        message: req.app_message.clone(),
        extra: FanoutExtra::Application(None),
    };
    for o in others.iter_mut() {
        match o.room.process(&o.dev, &item).unwrap() {
            Event::Message {
                sender: from,
                content: got,
                ..
            } => {
                assert_eq!(from, sender.dev.client);
                assert_eq!(MimiContent::decode(&got).unwrap(), *content);
            }
            other => panic!("{}: {other:?}", o.dev.client),
        }
    }
    assert_eq!(
        sender.room.process(&sender.dev, &item).unwrap(),
        Event::Ignored
    );
}

/// Alice (admin) and Bob (ordinary) in a room hosted by the hub.
pub fn alice_and_bob() -> (HubRoom, Member, Member) {
    let cp = CodePoints::DRAFT;
    let alice_dev = device("mimi://a.example/d/alice/1");
    let (room, gi, tree) = alice_dev
        .create_room(
            &room_uri(),
            &private_group(&cp),
            hub_sender(),
            Some("Clubhouse"),
        )
        .unwrap();
    let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
    let mut alice = Member {
        dev: alice_dev,
        room,
    };
    assert_agree(&hub, &[&alice]);

    let bob_dev = device("mimi://b.example/d/bob/1");
    let kp = bob_dev.key_package().unwrap();
    let bob_user = UserUri::parse("mimi://b.example/u/bob").unwrap();
    let out = alice
        .room
        .add_users(&alice.dev, &[(bob_user, 2)], &[kp])
        .unwrap();
    let welcome = commit(&mut hub, &mut alice, out.bundle, &mut [])
        .unwrap()
        .unwrap();
    let bob = join(bob_dev, &welcome);
    assert_agree(&hub, &[&alice, &bob]);
    (hub, alice, bob)
}

/// ROOM-client-create, ROOM-client-add, ROOM-client-leave, ROOM-client-process,
/// ROOM-hub-bootstrap, ROOM-hub-update, ROOM-hub-fanout, ROOM-mls-capabilities, ROOM-agree.
#[test]
fn room_example_flow_three_providers() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    assert_eq!(hub.providers().len(), 2);

    // Bob (follower b.example) adds Cathy of c.example through the hub.
    let cathy_dev = device("mimi://c.example/d/cathy/1");
    let kp = cathy_dev.key_package().unwrap();
    let out = bob
        .room
        .add_users(
            &bob.dev,
            &[(UserUri::parse("mimi://c.example/u/cathy").unwrap(), 2)],
            &[kp],
        )
        .unwrap();
    let welcome = commit(&mut hub, &mut bob, out.bundle, &mut [&mut alice])
        .unwrap()
        .unwrap();
    let mut cathy = join(cathy_dev, &welcome);
    assert_agree(&hub, &[&alice, &bob, &cathy]);
    assert_eq!(hub.providers().len(), 3);

    // Cathy sends; Alice replies; Bob reacts.
    let hello = MimiContent::text([1; 16], "Hi everyone");
    send(&hub, &mut cathy, &mut [&mut alice, &mut bob], &hello);
    let hello_id = hello
        .message_id_for(
            &hello.encode().unwrap(),
            Some("mimi://c.example/u/cathy"),
            Some(room_uri().as_str()),
        )
        .unwrap();
    let reply = MimiContent::reply(
        [2; 16],
        hello_id,
        mimi_content::NestedPart::text("Welcome, Cathy!"),
    );
    send(&hub, &mut alice, &mut [&mut bob, &mut cathy], &reply);
    let reaction = MimiContent::reaction([3; 16], hello_id, "👍");
    send(&hub, &mut bob, &mut [&mut alice, &mut cathy], &reaction);

    // Bob leaves: his proposal through the hub, Alice commits it with the list removal.
    let leave = bob.room.leave(&bob.dev).unwrap();
    commit(&mut hub, &mut bob, leave, &mut [&mut alice, &mut cathy]).unwrap();
    let out = alice.room.commit_pending(&alice.dev).unwrap();
    commit(
        &mut hub,
        &mut alice,
        out.bundle,
        &mut [&mut cathy, &mut bob],
    )
    .unwrap();
    assert!(!bob.room.group.is_active(), "Bob is out");
    assert_agree(&hub, &[&alice, &cathy]);
    assert!(
        hub.state()
            .unwrap()
            .participants
            .index_of(&UserUri::parse("mimi://b.example/u/bob").unwrap())
            .is_none()
    );
    assert_eq!(hub.providers().len(), 2);

    // Cathy adds a second device by external commit from the hub's GroupInfo.
    let cathy2_dev = device("mimi://c.example/d/cathy/2");
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (room2, out) = cathy2_dev
        .join_external(&room_uri(), &gi, &tree, None)
        .unwrap();
    let mut cathy2 = Member {
        dev: cathy2_dev,
        room: room2,
    };
    let bundle = HandshakeBundle::decode(&out.bundle.encode()).unwrap();
    let accepted = hub.handle_update(&bundle).unwrap();
    assert_eq!(accepted.epoch, cathy2.room.epoch());
    let HandshakeBundle::Commit { commit: c, .. } = &bundle else {
        panic!()
    };
    let item = FanoutMessage {
        timestamp: 3,
        message: c.clone(),
        extra: FanoutExtra::Commit(vec![]),
    };
    for m in [&mut alice, &mut cathy] {
        assert!(matches!(
            m.room.process(&m.dev, &item).unwrap(),
            Event::Commit { .. }
        ));
    }
    assert_agree(&hub, &[&alice, &cathy, &cathy2]);
    send(
        &hub,
        &mut cathy2,
        &mut [&mut alice, &mut cathy],
        &MimiContent::text([4; 16], "from my laptop"),
    );
}

/// ROOM-8-authorize (unauthorised add), ROOM-hub-epoch (two commits for one epoch),
/// ROOM-hub-submit (stale message), ROOM-client-remove and ROOM-7.8-banned-silent (ban).
#[test]
fn room_negative_cases_have_the_drafts_codes() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    // Unauthorised add: Bob (ordinary) adds Dan as an admin.
    let dan = device("mimi://d.example/d/dan/1");
    let out = bob
        .room
        .add_users(
            &bob.dev,
            &[(UserUri::parse("mimi://d.example/u/dan").unwrap(), 3)],
            &[dan.key_package().unwrap()],
        )
        .unwrap();
    let e = commit(&mut hub, &mut bob, out.bundle, &mut []).unwrap_err();
    assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e}");
    assert_agree(&hub, &[&alice, &bob]);

    // Two commits for one epoch: the first wins, the second gets wrongEpoch; no fork.
    let first = alice
        .room
        .set_metadata(
            &alice.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "First"),
        )
        .unwrap();
    let second = bob
        .room
        .set_metadata(
            &bob.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "Second"),
        )
        .unwrap();
    commit(&mut hub, &mut alice, first.bundle.clone(), &mut []).unwrap();
    let e = hub.handle_update(&second.bundle).unwrap_err();
    assert!(
        matches!(e, UpdateRejection::WrongEpoch { current_epoch, .. } if current_epoch == hub.epoch()),
        "{e}"
    );
    bob.room.discard(&bob.dev).unwrap();
    // Bob catches up with the winning commit and the group stays one.
    let HandshakeBundle::Commit { commit: c, .. } = &first.bundle else {
        panic!()
    };
    let item = FanoutMessage {
        timestamp: 1,
        message: c.clone(),
        extra: FanoutExtra::Commit(vec![]),
    };
    bob.room.process(&bob.dev, &item).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    assert_eq!(hub.state().unwrap().metadata.unwrap().room_name, "First");

    // A stale message gets epochTooOld.
    let stale = alice.room.send(&alice.dev, b"x").unwrap();
    let rename = alice
        .room
        .set_metadata(
            &alice.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "Again"),
        )
        .unwrap();
    commit(&mut hub, &mut alice, rename.bundle, &mut [&mut bob]).unwrap();
    assert!(matches!(
        hub.check_submit(&stale),
        Err(mimi_room::hub::SubmitRejection::EpochTooOld { .. })
    ));

    // Alice bans Bob; Bob's client may not send any more.
    let bob_req = bob.room.send(&bob.dev, b"still here?").unwrap();
    let ban = alice
        .room
        .ban(
            &alice.dev,
            &UserUri::parse("mimi://b.example/u/bob").unwrap(),
        )
        .unwrap();
    commit(&mut hub, &mut alice, ban.bundle, &mut [&mut bob]).unwrap();
    assert_eq!(
        hub.state()
            .unwrap()
            .role_of(&UserUri::parse("mimi://b.example/u/bob").unwrap()),
        1
    );
    assert!(hub.check_submit(&bob_req).is_err());
}

/// ROOM-hub-snapshot.
#[test]
fn room_hub_snapshot_restores_and_continues() {
    let (hub, mut alice, mut bob) = alice_and_bob();
    let snap = hub.snapshot();
    drop(hub);
    let mut hub = HubRoom::restore(&snap).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    assert_eq!(
        hub.snapshot(),
        snap,
        "restore then snapshot gives the same bytes"
    );
    // The restored hub accepts the next commit and serves an external join.
    let out = alice
        .room
        .set_metadata(
            &alice.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "After restart"),
        )
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    assert!(hub.group_info_for_join().is_ok());
    // Garbage is an error, not a panic.
    assert!(HubRoom::restore(&snap[..snap.len() / 2]).is_err());
    assert!(HubRoom::restore(b"").is_err());
}

/// ROOM-late-application: Bob's message accepted by the hub just before Alice's commit still
/// reaches Alice, who merged her commit first (as a device does on the hub's answer); once
/// more than `PAST_EPOCHS` epochs have passed, such a message is an error (never silently
/// dropped), and a handshake of a past epoch is ignored at once.
#[test]
fn room_late_application_message_of_a_past_epoch_is_read() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let hello = MimiContent::text([7; 16], "sent in the old epoch");
    let req = bob.room.send(&bob.dev, &hello.encode().unwrap()).unwrap();
    hub.check_submit(&req).unwrap();
    let late = FanoutMessage {
        timestamp: 2,
        message: req.app_message.clone(),
        extra: FanoutExtra::Application(None),
    };
    // A stale proposal of the same epoch, to show handshakes are not read late.
    let stale = bob
        .room
        .set_metadata(
            &bob.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "Stale"),
        )
        .unwrap();
    bob.room.discard(&bob.dev).unwrap();
    let HandshakeBundle::Commit { commit: stale, .. } = stale.bundle else {
        panic!("a commit")
    };
    let out = alice
        .room
        .set_metadata(
            &alice.dev,
            mimi_wire::components::RoomMetaData::named(room_uri(), "New"),
        )
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_eq!(alice.room.epoch(), 2);
    match alice.room.process(&alice.dev, &late).unwrap() {
        Event::Message {
            sender, content, ..
        } => {
            assert_eq!(sender, bob.dev.client);
            assert_eq!(MimiContent::decode(&content).unwrap(), hello);
        }
        other => panic!("the late message was not read: {other:?}"),
    }
    let stale = FanoutMessage {
        timestamp: 3,
        message: stale,
        extra: FanoutExtra::Commit(vec![]),
    };
    assert_eq!(
        alice.room.process(&alice.dev, &stale).unwrap(),
        Event::Ignored
    );

    // Beyond the window: a message of epoch 2 after PAST_EPOCHS + 1 more commits.
    let again = MimiContent::text([8; 16], "far too late");
    let req = bob.room.send(&bob.dev, &again.encode().unwrap()).unwrap();
    hub.check_submit(&req).unwrap();
    let too_late = FanoutMessage {
        timestamp: 4,
        message: req.app_message.clone(),
        extra: FanoutExtra::Application(None),
    };
    for i in 0..=mimi_room::client::PAST_EPOCHS {
        let out = alice
            .room
            .set_metadata(
                &alice.dev,
                mimi_wire::components::RoomMetaData::named(room_uri(), &format!("N{i}")),
            )
            .unwrap();
        commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    }
    let e = alice.room.process(&alice.dev, &too_late).unwrap_err();
    assert!(e.to_string().contains("its secrets are deleted"), "{e}");
    assert_agree(&hub, &[&alice, &bob]);
}
