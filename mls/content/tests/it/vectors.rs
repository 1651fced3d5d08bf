//! The content draft's own examples (interop-tests/vectors/content, copied from
//! ietf-wg-mimi/draft-ietf-mimi-content@961ea5a): decode, re-encode byte-exact, recompute the
//! message ID the draft states, and rebuild each one with our builders.

use mimi_content::build::{ContentBuilder, TEXT_HTML, TEXT_MARKDOWN};
use mimi_content::implied::{MessageDerivedValues, Timestamp};
use mimi_content::status::{MessageStatus, MessageStatusReport};
use mimi_content::{
    Disposition, ExternalPart, MessageId, MimiContent, NestedPart, PartBody, PartSemantics,
};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop-tests/vectors/content")
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.cbor"))).unwrap()
}

/// The message ID stated in the header of the draft's `.edn` file.
fn stated_id(name: &str) -> MessageId {
    let edn = std::fs::read_to_string(dir().join(format!("{name}.edn"))).unwrap();
    let start = edn.find("message ID = h'").expect("edn states an ID") + "message ID = h'".len();
    let hexdigits: String = edn[start..]
        .chars()
        .take_while(|c| *c != '\'')
        .filter(char::is_ascii_hexdigit)
        .collect();
    MessageId::from_hex(&hexdigits).unwrap()
}

pub const MESSAGES: [&str; 14] = [
    "original",
    "reply",
    "reaction",
    "mention",
    "mention-html",
    "edit",
    "delete",
    "unlike",
    "expiring",
    "attachment",
    "conferencing",
    "multipart-1",
    "multipart-2",
    "multipart-3",
];

fn decode(name: &str) -> (Vec<u8>, MimiContent, MessageId) {
    let b = bytes(name);
    let c = MimiContent::decode(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
    let id = c.message_id_for(&b, None, None).unwrap();
    (b, c, id)
}

/// CONTENT-6.1-deterministic, CONTENT-3.3-message-id
#[test]
fn every_draft_example_round_trips_and_has_the_stated_id() {
    for name in MESSAGES {
        let (b, c, id) = decode(name);
        assert_eq!(c.encode().unwrap(), b, "{name}: re-encoding differs");
        assert_eq!(id, stated_id(name), "{name}: message ID");
        assert_eq!(
            mimi_content::message_id::of_bytes(&b, None, None).unwrap(),
            id
        );
    }
}

#[test]
fn examples_reference_each_other_as_the_draft_says() {
    let original = decode("original").2;
    let reply = decode("reply");
    let reaction = decode("reaction");
    assert_eq!(reply.1.in_reply_to, Some(original));
    assert_eq!(reaction.1.in_reply_to, Some(original));
    assert_eq!(
        reaction.1.nested_part.reactions(),
        vec!["\u{2764}".to_string()]
    );
    assert_eq!(decode("edit").1.replaces, Some(reply.2));
    assert_eq!(decode("delete").1.replaces, Some(reply.2));
    assert_eq!(decode("unlike").1.replaces, Some(reaction.2));
    assert_eq!(
        decode("mention").1.nested_part.mentions(),
        vec!["mimi://example.com/u/alice-smith"]
    );
    assert_eq!(
        decode("mention-html").1.nested_part.mentions(),
        vec!["mimi://example.com/u/alice-smith"]
    );
}

/// Appendix B.3: the part index table of the nested example.
#[test]
fn nested_example_part_indexes() {
    let c = decode("multipart-3").1;
    let parts = c.nested_part.indexed();
    assert_eq!(parts.len(), 11);
    assert_eq!(parts[5].content_type(), Some("image/gif"));
    assert_eq!(parts[10].content_type(), Some("image/png"));
    for i in [3, 8] {
        assert_eq!(parts[i].language, "en");
    }
    for i in [4, 9] {
        assert_eq!(parts[i].language, "fr");
    }
    assert!(parts[3].as_text().unwrap().contains("cid:5@local.invalid"));
    assert!(parts[8].as_text().unwrap().contains("cid:10@local.invalid"));
    assert!(matches!(
        parts[0].body,
        PartBody::Multi {
            semantics: PartSemantics::ChooseOne,
            ..
        }
    ));
}

fn salt_of(name: &str) -> [u8; 16] {
    decode(name).1.salt
}

const ALICE: &str = "mimi://example.com/u/alice-smith";
const BOB: &str = "mimi://example.com/u/bob-jones";
const CATHY: &str = "mimi://example.com/u/cathy-washington";
const ROOM: &str = "mimi://example.com/r/engineering_team";

fn encoded_id(c: &MimiContent) -> (Vec<u8>, MessageId) {
    c.encode_with_id(None, None).unwrap()
}

/// The builders produce the draft's bytes exactly when given the draft's salts.
#[test]
fn builders_reproduce_the_examples() {
    let original = MimiContent::markdown(
        salt_of("original"),
        "Hi everyone, we just shipped release 2.0. __Good  work__!",
    );
    let original = ContentBuilder::new(original.salt, original.nested_part)
        .sender_and_room(ALICE, ROOM)
        .build();
    let (b, original_id) = encoded_id(&original);
    assert_eq!(b, bytes("original"));

    let reply = ContentBuilder::new(
        salt_of("reply"),
        NestedPart::markdown("Right on! _Congratulations_ 'all!"),
    )
    .in_reply_to(original_id)
    .sender_and_room(BOB, ROOM)
    .build();
    let (b, reply_id) = encoded_id(&reply);
    assert_eq!(b, bytes("reply"));

    let reaction = ContentBuilder::new(salt_of("reaction"), NestedPart::reaction("\u{2764}"))
        .in_reply_to(original_id)
        .sender_and_room(CATHY, ROOM)
        .build();
    let (b, reaction_id) = encoded_id(&reaction);
    assert_eq!(b, bytes("reaction"));

    let mention_text = format!(
        "Kudos to {} for making the release happen!",
        mimi_content::build::mention_markdown("Alice Smith", ALICE)
    );
    let mention = ContentBuilder::new(salt_of("mention"), NestedPart::markdown(&mention_text))
        .in_reply_to(original_id)
        .sender_and_room(CATHY, ROOM)
        .build();
    assert_eq!(encoded_id(&mention).0, bytes("mention"));

    let edit = MimiContent::edit(
        salt_of("edit"),
        reply_id,
        &reply,
        NestedPart::markdown("Right on! _Congratulations_ y'all!"),
    );
    assert_eq!(encoded_id(&edit).0, bytes("edit"));
    assert_eq!(
        encoded_id(&MimiContent::delete(salt_of("delete"), reply_id, &reply)).0,
        bytes("delete")
    );
    assert_eq!(
        encoded_id(&MimiContent::unlike(
            salt_of("unlike"),
            reaction_id,
            &reaction
        ))
        .0,
        bytes("unlike")
    );

    let expiring = ContentBuilder::new(
        salt_of("expiring"),
        NestedPart::markdown(
            "__*VPN GOING DOWN*__ I'm rebooting the VPN in ten minutes unless anyone objects.",
        ),
    )
    .expires_at(1644390004)
    .sender_and_room(ALICE, ROOM)
    .build();
    assert_eq!(encoded_id(&expiring).0, bytes("expiring"));

    let attachment = ExternalPart {
        content_type: "video/mp4".into(),
        url: "https://example.com/storage/8ksB4bSrrRE.mp4".into(),
        expires: 0,
        size: 708234961,
        enc_alg: 1,
        key: hex::decode("21399320958a6f4c745dde670d95e0d8").unwrap(),
        nonce: hex::decode("c86cf2c33f21527d1dd76f5b").unwrap(),
        aad: vec![],
        hash_alg: 1,
        content_hash: hex::decode(
            "9ab17a8cf0890baaae7ee016c7312fcc080ba46498389458ee44f0276e783163",
        )
        .unwrap(),
        description: "2 hours of key signing video".into(),
        filename: "bigfile.mp4".into(),
    };
    let attachment = ContentBuilder::new(
        salt_of("attachment"),
        NestedPart::attachment(attachment).with_language("en"),
    )
    .sender_and_room(BOB, ROOM)
    .build();
    assert_eq!(encoded_id(&attachment).0, bytes("attachment"));

    let conferencing = ContentBuilder::new(
        salt_of("conferencing"),
        NestedPart::conference(
            "https://example.com/join/12345",
            "Join the Foo 118 conference",
        ),
    )
    .topic(b"Foo 118".to_vec())
    .sender_and_room(ALICE, ROOM)
    .build();
    assert_eq!(encoded_id(&conferencing).0, bytes("conferencing"));

    let multipart1 = ContentBuilder::new(
        salt_of("multipart-1"),
        NestedPart::alternatives(vec![
            NestedPart::markdown("# Welcome!"),
            NestedPart::single(
                Disposition::RENDER,
                "application/vnd.examplevendor-fancy-im-message",
                hex::decode("dc861ebaa718fd7c3ca159f71a2001").unwrap(),
            ),
        ]),
    )
    .sender_and_room(ALICE, ROOM)
    .build();
    assert_eq!(encoded_id(&multipart1).0, bytes("multipart-1"));

    let multipart2 = ContentBuilder::new(
        salt_of("multipart-2"),
        NestedPart::multi_reaction(&["\u{2764}", "\u{1f973}", "\u{1f91e}"]),
    )
    .sender_and_room(ALICE, ROOM)
    .build();
    assert_eq!(encoded_id(&multipart2).0, bytes("multipart-2"));

    let html = |lang: &str, title: &str, cid: usize, alt: &str| {
        NestedPart::single(
            Disposition::RENDER,
            TEXT_HTML,
            format!(
                "<html><body><h1>{title}</h1>\n<img src=\"cid:{cid}@local.invalid\" alt=\"{alt}\"/>\n</body></html>"
            ),
        )
        .with_language(lang)
    };
    let branch = |cid: usize, image_type: &str, image: &str| {
        NestedPart::multi(
            Disposition::RENDER,
            PartSemantics::ProcessAll,
            vec![
                NestedPart::alternatives(vec![
                    html("en", "Welcome!", cid, "Welcome image"),
                    html("fr", "Bienvenue!", cid, "Image bienvenue"),
                ]),
                NestedPart::single(Disposition::INLINE, image_type, hex::decode(image).unwrap()),
            ],
        )
    };
    let multipart3 = ContentBuilder::new(
        salt_of("multipart-3"),
        NestedPart::alternatives(vec![
            branch(5, "image/gif", "dc861ebaa718fd7c3ca159f71a2001a7"),
            branch(10, "image/png", "fa444237451a05a72bb0f67037cc1669"),
        ]),
    )
    .sender_and_room(ALICE, ROOM)
    .build();
    assert_eq!(encoded_id(&multipart3).0, bytes("multipart-3"));
    assert_eq!(
        decode("mention-html").1.nested_part.content_type(),
        Some(TEXT_HTML)
    );
    assert_eq!(
        decode("original").1.nested_part.content_type(),
        Some(TEXT_MARKDOWN)
    );
}

/// implied-original.cbor carries the stale -07 message ID (fact sheet, appendix header):
/// it round-trips byte-exact, and its only difference from the corrected value is that ID.
#[test]
fn implied_original_round_trips_and_its_stale_id_is_known() {
    let b = bytes("implied-original");
    let v = MessageDerivedValues::decode(&b).unwrap();
    assert_eq!(v.encode(), b);
    assert_eq!(
        v.message_id.to_hex(),
        "01b0084467273cc43d6f0ebeac13eb84229c4fffe8f6c3594c905f47779e5a79",
        "the draft's file still holds the -07 ID"
    );
    assert_eq!(v.hub_accepted_timestamp, Timestamp::Msecs(1644387225019));
    assert_eq!(v.sender_leaf_index, 4);
    assert_eq!(v.sender_user_url, ALICE);
    assert_eq!(v.room_url, ROOM);
    let corrected = MessageDerivedValues {
        message_id: stated_id("original"),
        ..v
    };
    let fixed = corrected.encode();
    assert_eq!(fixed.len(), b.len());
    let differing: Vec<usize> = (0..b.len()).filter(|&i| b[i] != fixed[i]).collect();
    assert!(
        differing.iter().all(|&i| (3..35).contains(&i)),
        "only the messageId differs"
    );
    // The corrected bytes of the fact sheet, A.15.
    assert_eq!(
        hex::encode(&fixed),
        concat!(
            "875820017ce54837404c3696e0c747b985cb172716d0ed0a3d249ca63ace7d82",
            "a096f41b0000017edd1dcdbb5820eeee0d12a7b5b5b78115ad1a1ddb13811c83",
            "fd7387c43e66799a594beeda26bf04783e6d696d693a2f2f6578616d706c652e",
            "636f6d2f642f33623532323439642d363866392d343563652d386266352d6337",
            "393966336361643765632f3030303378206d696d693a2f2f6578616d706c652e",
            "636f6d2f752f616c6963652d736d69746878256d696d693a2f2f6578616d706c",
            "652e636f6d2f722f656e67696e656572696e675f7465616d",
        )
    );
}

/// draft-mahy-mimi-message-status-01 §5 example (status.cbor from rohanmahy/mimi-message-status@03e41d6).
#[test]
fn status_report_example() {
    let b = bytes("status");
    let r = MessageStatusReport::decode(&b).unwrap();
    assert_eq!(r.encode(), b);
    let got: Vec<(MessageId, MessageStatus)> = r
        .statuses
        .iter()
        .map(|s| (s.message_id, s.status))
        .collect();
    assert_eq!(
        got,
        vec![
            (stated_id("original"), MessageStatus::READ),
            (stated_id("reply"), MessageStatus::READ),
            (stated_id("mention"), MessageStatus::UNREAD),
            (stated_id("expiring"), MessageStatus::EXPIRED),
        ]
    );
}
