//! The history view: what a person sees after edits, deletions, reactions and receipts.

use mimi_content::build::ContentBuilder;
use mimi_content::status::{MessageStatus, MessageStatusReport, PerMessageStatus};
use mimi_content::view::{History, HistoryError, Received};
use mimi_content::{MessageId, MimiContent, NestedPart};

const ROOM: &str = "mimi://a.example/r/team";
const ALICE: &str = "mimi://a.example/u/alice";
const BOB: &str = "mimi://b.example/u/bob";
const CATHY: &str = "mimi://c.example/u/cathy";

struct Room {
    history: History,
    clock: u64,
    salt: u8,
}

impl Room {
    fn new() -> Self {
        Self {
            history: History::new(),
            clock: 1_700_000_000_000,
            salt: 0,
        }
    }
    fn salt(&mut self) -> [u8; 16] {
        self.salt += 1;
        [self.salt; 16]
    }
    fn post(&mut self, sender: &str, content: MimiContent) -> (MessageId, MimiContent) {
        let (bytes, id) = content.encode_with_id(Some(sender), Some(ROOM)).unwrap();
        let decoded = MimiContent::decode(&bytes).unwrap();
        self.clock += 1000;
        self.history
            .insert(Received {
                id,
                sender: sender.into(),
                timestamp_ms: self.clock,
                content: decoded.clone(),
            })
            .unwrap();
        (id, decoded)
    }
}

#[test]
fn a_conversation_as_people_see_it() {
    let mut room = Room::new();
    let s = room.salt();
    let (hello_id, hello) = room.post(ALICE, MimiContent::markdown(s, "Hello from a.example"));
    let s = room.salt();
    let (reply_id, reply) = room.post(
        BOB,
        MimiContent::reply(s, hello_id, NestedPart::text("Hi Alice")),
    );
    let s = room.salt();
    let (heart_id, heart) = room.post(CATHY, MimiContent::reaction(s, hello_id, "\u{2764}"));
    let s = room.salt();
    room.post(BOB, MimiContent::reaction(s, hello_id, "\u{2764}"));
    let s = room.salt();
    room.post(BOB, MimiContent::reaction(s, hello_id, "\u{2764}")); // same user, same reaction: counted once
    let s = room.salt();
    room.post(ALICE, MimiContent::reaction(s, reply_id, "\u{1f44d}"));
    // Bob edits twice; the latest edit wins and `replaces` always names the first version.
    let s = room.salt();
    let (edit1_id, edit1) = room.post(
        BOB,
        MimiContent::edit(s, reply_id, &reply, NestedPart::text("Hi Alice!")),
    );
    assert_eq!(edit1.replaces, Some(reply_id));
    let s = room.salt();
    let (_, edit2) = room.post(
        BOB,
        MimiContent::edit(s, edit1_id, &edit1, NestedPart::text("Hi Alice!!")),
    );
    assert_eq!(edit2.replaces, Some(reply_id));
    // Cathy may not edit Alice's message (CONTENT-5.5-edit-auth).
    let s = room.salt();
    room.post(
        CATHY,
        MimiContent::edit(s, hello_id, &hello, NestedPart::text("hijacked")),
    );
    // Cathy retracts her heart (CONTENT-5.7-unlike).
    let s = room.salt();
    room.post(CATHY, MimiContent::unlike(s, heart_id, &heart));
    // Alice deletes a message.
    let s = room.salt();
    let (oops_id, oops) = room.post(ALICE, MimiContent::text(s, "oops"));
    let s = room.salt();
    room.post(ALICE, MimiContent::delete(s, oops_id, &oops));
    // Receipts: Bob read the greeting; Cathy got it.
    let s = room.salt();
    let report = |id, status| MessageStatusReport {
        statuses: vec![PerMessageStatus {
            message_id: id,
            status,
        }],
    };
    room.post(
        BOB,
        MimiContent {
            nested_part: NestedPart::status_report(&report(hello_id, MessageStatus::READ)),
            ..MimiContent::text(s, "")
        },
    );
    let s = room.salt();
    room.post(
        CATHY,
        MimiContent {
            nested_part: NestedPart::status_report(&report(hello_id, MessageStatus::DELIVERED)),
            ..MimiContent::text(s, "")
        },
    );

    let view = room.history.view(room.clock, Some(ALICE));
    assert_eq!(view.len(), 3, "{view:#?}");
    let (hello_v, reply_v, oops_v) = (&view[0], &view[1], &view[2]);
    assert_eq!(hello_v.text.as_deref(), Some("Hello from a.example"));
    assert_eq!(hello_v.edits, 0);
    assert_eq!(hello_v.reactions.len(), 1);
    assert_eq!(hello_v.reactions[0].reaction, "\u{2764}");
    assert_eq!(hello_v.reactions[0].users, vec![BOB.to_string()]);
    assert_eq!(hello_v.statuses.get(BOB), Some(&MessageStatus::READ));
    assert_eq!(hello_v.statuses.get(CATHY), Some(&MessageStatus::DELIVERED));
    assert_eq!(reply_v.text.as_deref(), Some("Hi Alice!!"));
    assert_eq!(reply_v.edits, 2);
    assert_eq!(reply_v.in_reply_to, Some(hello_id));
    assert_eq!(reply_v.reactions[0].users, vec![ALICE.to_string()]);
    assert!(oops_v.deleted);
    assert_eq!(oops_v.text, None);
    assert_eq!(
        room.history.reply_chain(&reply_id),
        vec![reply_id, hello_id]
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let mut room = Room::new();
    let s = room.salt();
    let (id, c) = room.post(ALICE, MimiContent::text(s, "once"));
    let again = Received {
        id,
        sender: ALICE.into(),
        timestamp_ms: 1,
        content: c,
    };
    assert_eq!(
        room.history.insert(again),
        Err(HistoryError::DuplicateId(id))
    );
}

#[test]
fn order_is_hub_timestamp_then_lowest_id() {
    let mut h = History::new();
    let mut ids = Vec::new();
    for i in 0..4u8 {
        let c = MimiContent::text([i; 16], &format!("m{i}"));
        let (_, id) = c.encode_with_id(Some(ALICE), Some(ROOM)).unwrap();
        ids.push(id);
        h.insert(Received {
            id,
            sender: ALICE.into(),
            timestamp_ms: 5,
            content: c,
        })
        .unwrap();
    }
    ids.sort();
    let seen: Vec<MessageId> = h.view(10, None).iter().map(|v| v.id).collect();
    assert_eq!(seen, ids);
}

#[test]
fn expiry_absolute_and_after_reading() {
    let mut h = History::new();
    let abs = ContentBuilder::new([1; 16], NestedPart::text("abs"))
        .expires_at(100)
        .build();
    let rel = ContentBuilder::new([2; 16], NestedPart::text("rel"))
        .expires_after_read(10)
        .build();
    let (_, abs_id) = abs.encode_with_id(Some(ALICE), Some(ROOM)).unwrap();
    let (_, rel_id) = rel.encode_with_id(Some(ALICE), Some(ROOM)).unwrap();
    h.insert(Received {
        id: abs_id,
        sender: ALICE.into(),
        timestamp_ms: 50_000,
        content: abs,
    })
    .unwrap();
    h.insert(Received {
        id: rel_id,
        sender: ALICE.into(),
        timestamp_ms: 50_000,
        content: rel,
    })
    .unwrap();
    let read = MessageStatusReport {
        statuses: vec![PerMessageStatus {
            message_id: rel_id,
            status: MessageStatus::READ,
        }],
    };
    let receipt = MimiContent {
        nested_part: NestedPart::status_report(&read),
        ..MimiContent::text([3; 16], "")
    };
    let (_, rid) = receipt.encode_with_id(Some(BOB), Some(ROOM)).unwrap();
    h.insert(Received {
        id: rid,
        sender: BOB.into(),
        timestamp_ms: 60_000,
        content: receipt,
    })
    .unwrap();
    let at = |now| {
        h.view(now, Some(BOB))
            .iter()
            .map(|v| v.expired)
            .collect::<Vec<_>>()
    };
    // Ordered by id at equal timestamps; find by text instead.
    let expired = |now: u64, text: &str| {
        h.view(now, Some(BOB))
            .into_iter()
            .find(|v| v.text.as_deref() == Some(text))
            .unwrap()
            .expired
    };
    assert!(!expired(99_000, "abs"));
    assert!(expired(100_000, "abs"));
    assert!(!expired(69_999, "rel"));
    assert!(expired(70_000, "rel"));
    assert!(
        !h.view(1_000_000, Some(CATHY))
            .into_iter()
            .find(|v| v.text.as_deref() == Some("rel"))
            .unwrap()
            .expired,
        "Cathy has not read it"
    );
    assert_eq!(at(0).len(), 2);
}
