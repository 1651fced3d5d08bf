use mimi_proto::backoff::RetryPolicy;
use mimi_proto::outbox::{OutboxItem, Outcome, next_batch, outcome};
use std::time::Duration;

fn it(room: &str, seq: u64, len: usize) -> OutboxItem {
    OutboxItem {
        room: room.to_owned(),
        seq,
        fanout: vec![seq as u8; len],
    }
}

#[test]
fn batches_are_consecutive_items_of_one_room_within_the_size_limit() {
    assert_eq!(next_batch(&[], 100), None);
    let q = [
        it("r1", 4, 10),
        it("r1", 5, 10),
        it("r1", 7, 10),
        it("r2", 1, 10),
    ];
    let b = next_batch(&q, 100).unwrap();
    assert_eq!((b.room.as_str(), b.first_seq, b.count), ("r1", 4, 2));
    assert_eq!(b.body.len(), 20);
    assert_eq!(&b.body[10..], &[5u8; 10]);
    // A room change ends the batch.
    let b = next_batch(&q[3..], 100).unwrap();
    assert_eq!((b.room.as_str(), b.first_seq, b.count), ("r2", 1, 1));
    // The size limit ends it; an oversized single item still goes alone.
    let q = [it("r", 1, 60), it("r", 2, 60)];
    assert_eq!(next_batch(&q, 100).unwrap().count, 1);
    assert_eq!(next_batch(&q, 10).unwrap().count, 1);
    assert_eq!(next_batch(&q, 120).unwrap().count, 2);
}

#[test]
fn answers_are_classified() {
    let p = RetryPolicy::default();
    assert_eq!(outcome(Some(201), None, 0, 0, &p, 0), Outcome::Delivered);
    match outcome(Some(503), Some("7"), 0, 0, &p, 0) {
        Outcome::Retry { after, refused, .. } => {
            assert_eq!(after, Duration::from_secs(7));
            assert!(!refused);
        }
        o => panic!("{o:?}"),
    }
    assert!(matches!(
        outcome(Some(400), None, 3, 0, &p, 0),
        Outcome::Retry { refused: true, .. }
    ));
    assert!(matches!(
        outcome(Some(429), Some("garbage"), 0, 0, &p, 0),
        Outcome::Retry { refused: false, .. }
    ));
    assert!(matches!(
        outcome(None, None, 0, 0, &p, 0),
        Outcome::Retry { refused: false, .. }
    ));
}
