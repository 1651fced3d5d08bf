//! Message franking in memory (protocol-06 §5.4.1, §5.9): a device puts its FrankAAD in the
//! Safe AAD, the hub franks, the receiver verifies, the hub checks a report; every tampering
//! is caught by the rule that names it.

use crate::flow::{Member, commit, device, join, room_uri};
use mimi_content::MimiContent;
use mimi_room::client::Event;
use mimi_room::codepoints::CodePoints;
use mimi_room::franking::{FrankCheck, FrankError, check_reported, frank_aad_for, make_frank};
use mimi_room::hub::HubRoom;
use mimi_room::presets::private_group;
use mimi_wire::abuse::AbusiveMessage;
use mimi_wire::codec::Body;
use mimi_wire::common::{CipherSuite, Frank};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::franking::{FrankAad, frank_aad_of};
use mimi_wire::id::{MimiUri, RoomUri, UserUri};
use mimi_wire::mls_kind::private_authenticated_data;
use mimi_wire::submit::{ServerFrankingContext, SubmitMessageRequest};
use openmls::prelude::{BasicCredential, ExternalSender};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;

const HMAC_KEY: [u8; 32] = [0x42; 32];
const TS: u64 = 1_700_000_000_000;

struct Franked {
    hub_key: SignatureKeyPair,
    alice: Member,
    bob: Member,
}

fn alice_and_bob_franked() -> Franked {
    let cp = CodePoints::DRAFT;
    let hub_key = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let sender = ExternalSender::new(
        hub_key.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let alice_dev = device("mimi://a.example/d/alice/1");
    let (room, gi, tree) = alice_dev
        .create_room(&room_uri(), &private_group(&cp), sender, None)
        .unwrap();
    // The hub bootstraps from a GroupInfo carrying safe_aad and franking_agent.
    let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
    let mut alice = Member {
        dev: alice_dev,
        room,
    };
    let bob_dev = device("mimi://b.example/d/bob/1");
    let kp = bob_dev.key_package().unwrap();
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(UserUri::parse("mimi://b.example/u/bob").unwrap(), 2)],
            &[kp],
        )
        .unwrap();
    let welcome = commit(&mut hub, &mut alice, out.bundle, &mut [])
        .unwrap()
        .unwrap();
    let bob = join(bob_dev, &welcome);
    Franked {
        hub_key,
        alice,
        bob,
    }
}

fn content(text: &str, sender: &str, room: &str) -> Vec<u8> {
    mimi_content::build::ContentBuilder::new([7; 16], mimi_content::NestedPart::text(text))
        .sender_and_room(sender, room)
        .build()
        .encode()
        .unwrap()
}

/// What the hub does on submit: reads the FrankAAD from the clear header and franks.
fn hub_frank(hub_key: &SignatureKeyPair, req: &SubmitMessageRequest, ts: u64) -> Frank {
    let aad = private_authenticated_data(&req.app_message)
        .unwrap()
        .unwrap();
    let tag = frank_aad_of(&aad)
        .unwrap()
        .expect("the device sent a frank_aad");
    let context = ServerFrankingContext {
        sender_uri: req.sending_uri.clone(),
        room_uri: room_uri(),
        accepted_timestamp: ts,
    };
    make_frank(&HMAC_KEY, hub_key, &tag, &context).unwrap()
}

/// PROTO-5.4.1-frank-aad, PROTO-5.4.1-frank-hub, PROTO-5.4.1-frank-verify (all its checks),
/// PROTO-5.9-report-frank: a frank made and verified end to end in memory, and every altered
/// part of it refused by the check that names it.
#[test]
fn proto_5_4_1_frank_created_verified_and_tampering_refused() {
    let Franked {
        hub_key,
        mut alice,
        mut bob,
    } = alice_and_bob_franked();
    let alice_user = "mimi://a.example/u/alice";
    let bytes = content("you will regret this", alice_user, room_uri().as_str());
    let req = alice.room.send(&alice.dev, &bytes).unwrap();
    let req = SubmitMessageRequest::decode(&req.encode()).unwrap();

    // PROTO-5.4.1-frank-aad: the tag in the clear Safe AAD is HMAC(salt, content).
    let aad = private_authenticated_data(&req.app_message)
        .unwrap()
        .unwrap();
    let tag = frank_aad_of(&aad).unwrap().unwrap();
    assert_eq!(Some(tag.clone()), frank_aad_for(&bytes));
    assert_eq!(
        tag.franking_tag,
        mimi_wire::franking::franking_tag(&[7; 16], &bytes)
    );

    let frank = hub_frank(&hub_key, &req, TS);
    let item = FanoutMessage {
        timestamp: TS,
        message: req.app_message.clone(),
        extra: FanoutExtra::Application(Some(frank.clone())),
    };
    let item = FanoutMessage::decode(&item.encode()).unwrap();
    let Event::Message {
        sender,
        content: got,
        frank: check,
    } = bob.room.process(&bob.dev, &item).unwrap()
    else {
        panic!("not a message")
    };
    assert_eq!(got, bytes);
    let context = ServerFrankingContext {
        sender_uri: MimiUri::parse(alice_user).unwrap(),
        room_uri: room_uri(),
        accepted_timestamp: TS,
    };
    assert_eq!(
        check,
        FrankCheck::Verified {
            frank: frank.clone(),
            context: context.clone()
        }
    );
    // The sender checks its own frank (from the submit answer) the same way.
    assert_eq!(
        alice.room.check_frank(
            &alice.dev,
            &alice.dev.client,
            &bytes,
            Ok(Some(tag.clone())),
            Some(&frank),
            TS
        ),
        check
    );

    // Receiver-side tampering, each caught by its rule.
    let bob_check = |content: &[u8], aad: Option<FrankAad>, f: Option<&Frank>, ts: u64| {
        bob.room
            .check_frank(&bob.dev, &sender, content, Ok(aad), f, ts)
    };
    let invalid = |c: FrankCheck, rule: &str| match c {
        FrankCheck::Invalid(why) => assert!(why.contains(rule), "{why} should name {rule}"),
        other => panic!("{other:?} should be invalid by {rule}"),
    };
    let mut altered = frank.clone();
    altered.server_frank[0] ^= 1;
    invalid(
        bob_check(&bytes, Some(tag.clone()), Some(&altered), TS),
        "PROTO-5.4.1-frank-signature",
    );
    let mut altered = frank.clone();
    altered.franking_integrity_signature[5] ^= 1;
    invalid(
        bob_check(&bytes, Some(tag.clone()), Some(&altered), TS),
        "PROTO-5.4.1-frank-signature",
    );
    // The hub's time is part of the signed context.
    invalid(
        bob_check(&bytes, Some(tag.clone()), Some(&frank), TS + 1),
        "PROTO-5.4.1-frank-signature",
    );
    // A frank signed by another key.
    let other = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    invalid(
        bob_check(
            &bytes,
            Some(tag.clone()),
            Some(&hub_frank(&other, &req, TS)),
            TS,
        ),
        "PROTO-5.4.1-frank-signature",
    );
    let mut altered = frank.clone();
    altered.franking_signature_ciphersuite = CipherSuite(2);
    invalid(
        bob_check(&bytes, Some(tag.clone()), Some(&altered), TS),
        "PROTO-5.4.1-frank-suite",
    );
    // Content other than what the tag was made over.
    let forged = content("I love you all", alice_user, room_uri().as_str());
    invalid(
        bob_check(&forged, Some(tag.clone()), Some(&frank), TS),
        "PROTO-5.4.1-frank-tag",
    );
    // Content naming another sender or room.
    let as_bob = content("x", "mimi://b.example/u/bob", room_uri().as_str());
    invalid(
        bob_check(&as_bob, frank_aad_for(&as_bob), Some(&frank), TS),
        "PROTO-5.4.1-frank-sender",
    );
    let elsewhere = content("x", alice_user, "mimi://a.example/r/elsewhere");
    invalid(
        bob_check(&elsewhere, frank_aad_for(&elsewhere), Some(&frank), TS),
        "PROTO-5.4.1-frank-room",
    );
    // In a franked room a missing frank or FrankAAD is flagged too.
    invalid(
        bob_check(&bytes, Some(tag.clone()), None, TS),
        "PROTO-5.4.1-frank-required",
    );
    invalid(
        bob_check(&bytes, None, Some(&frank), TS),
        "PROTO-5.4.1-frank-required",
    );

    // PROTO-5.9-report-frank: the hub accepts Bob's report of the real message...
    let crypto = RustCrypto::default();
    let public = hub_key.to_public_vec();
    let alice_uri = UserUri::parse(alice_user).unwrap();
    let reported = AbusiveMessage {
        message_content: bytes.clone(),
        frank: frank.clone(),
        accepted_timestamp: TS,
    };
    let check = |m: &AbusiveMessage, key: &[u8], room: &RoomUri, abuser: &UserUri| {
        check_reported(&crypto, key, &[&public], room, abuser, m)
    };
    assert_eq!(
        check(&reported, &HMAC_KEY, &room_uri(), &alice_uri).unwrap(),
        context
    );
    // ...and refuses altered content, time, frank, key, room or abuser.
    let mut m = reported.clone();
    m.message_content = forged.clone();
    assert_eq!(
        check(&m, &HMAC_KEY, &room_uri(), &alice_uri),
        Err(FrankError::ServerFrank)
    );
    let mut m = reported.clone();
    m.accepted_timestamp += 1;
    assert_eq!(
        check(&m, &HMAC_KEY, &room_uri(), &alice_uri),
        Err(FrankError::ServerFrank)
    );
    let mut m = reported.clone();
    m.frank.server_frank[31] ^= 0x80;
    assert_eq!(
        check(&m, &HMAC_KEY, &room_uri(), &alice_uri),
        Err(FrankError::ServerFrank)
    );
    let mut m = reported.clone();
    m.frank.franking_integrity_signature[0] ^= 1;
    assert_eq!(
        check(&m, &HMAC_KEY, &room_uri(), &alice_uri),
        Err(FrankError::Signature)
    );
    assert_eq!(
        check(&reported, &[0x43; 32], &room_uri(), &alice_uri),
        Err(FrankError::ServerFrank)
    );
    assert!(matches!(
        check(
            &reported,
            &HMAC_KEY,
            &RoomUri::parse("mimi://a.example/r/other").unwrap(),
            &alice_uri
        ),
        Err(FrankError::RoomMismatch { .. })
    ));
    assert!(matches!(
        check(
            &reported,
            &HMAC_KEY,
            &room_uri(),
            &UserUri::parse("mimi://b.example/u/bob").unwrap()
        ),
        Err(FrankError::SenderMismatch { .. })
    ));
}

/// PROTO-5.4.1-frank-required: a message the hub fanned out without a frank is flagged in a
/// franked room, not silently accepted; bytes that are not MIMI content carry no FrankAAD.
#[test]
fn proto_5_4_1_frank_missing_frank_is_flagged() {
    let Franked {
        mut alice, mut bob, ..
    } = alice_and_bob_franked();
    let bytes = content("hello", "mimi://a.example/u/alice", room_uri().as_str());
    let req = alice.room.send(&alice.dev, &bytes).unwrap();
    let item = FanoutMessage {
        timestamp: TS,
        message: req.app_message.clone(),
        extra: FanoutExtra::Application(None),
    };
    match bob.room.process(&bob.dev, &item).unwrap() {
        Event::Message {
            frank: FrankCheck::Invalid(why),
            ..
        } => assert!(why.contains("PROTO-5.4.1-frank-required"), "{why}"),
        other => panic!("{other:?}"),
    }
    let req = alice.room.send(&alice.dev, b"not MIMI content").unwrap();
    let aad = private_authenticated_data(&req.app_message)
        .unwrap()
        .unwrap();
    assert_eq!(frank_aad_of(&aad).unwrap(), None);
    assert_eq!(frank_aad_for(b"not MIMI content"), None);
    let _ = MimiContent::decode(&bytes).unwrap();
}
