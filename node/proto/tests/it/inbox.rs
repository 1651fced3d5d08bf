use mimi_proto::inbox::{InboxLimits, InboxRefusal, InboxState, ItemId, accept};
use proptest::prelude::*;

fn item(n: u64) -> Vec<u8> {
    format!("fanout message {n}").into_bytes()
}

fn seqs(a: &mimi_proto::inbox::Accepted) -> Vec<u64> {
    a.deliver.iter().map(|d| d.seq.unwrap()).collect()
}

#[test]
fn proto_5_5_order_items_are_delivered_in_hub_order() {
    let mut s = InboxState::default();
    let l = InboxLimits::default();
    // 3 and 4 arrive first: held.
    let a = accept(&mut s, Some(3), vec![item(3), item(4)], &l).unwrap();
    assert!(a.deliver.is_empty());
    assert_eq!(a.held, 2);
    // 1 arrives: delivered alone (2 is missing).
    let a = accept(&mut s, Some(1), vec![item(1)], &l).unwrap();
    assert_eq!(seqs(&a), [1]);
    // 2 arrives: 2, 3, 4 delivered in order.
    let a = accept(&mut s, Some(2), vec![item(2)], &l).unwrap();
    assert_eq!(seqs(&a), [2, 3, 4]);
    assert_eq!(a.deliver[1].item, item(3));
    assert_eq!(a.deliver[2].id, ItemId::of(&item(4)));
    assert!(s.held.is_empty());
    assert_eq!(s.next_seq, 5);
}

#[test]
fn proto_5_5_dedup_repeated_bodies_and_overlapping_batches_deliver_once() {
    let mut s = InboxState::default();
    let l = InboxLimits::default();
    let body = vec![item(1), item(2)];
    assert_eq!(
        seqs(&accept(&mut s, Some(1), body.clone(), &l).unwrap()),
        [1, 2]
    );
    // The same body again (the hub did not see our 201): accepted, nothing delivered.
    let again = accept(&mut s, Some(1), body, &l).unwrap();
    assert!(again.deliver.is_empty());
    assert_eq!(again.repeats, 2);
    // A retried batch with more in it: only the new item.
    let grown = accept(&mut s, Some(1), vec![item(1), item(2), item(3)], &l).unwrap();
    assert_eq!(seqs(&grown), [3]);
    assert_eq!(grown.repeats, 2);
    // A held item sent twice is held once.
    accept(&mut s, Some(6), vec![item(6)], &l).unwrap();
    let twice = accept(&mut s, Some(6), vec![item(6)], &l).unwrap();
    assert_eq!((twice.held, twice.repeats), (0, 1));
}

#[test]
fn without_a_sequence_number_arrival_order_with_item_ids() {
    let mut s = InboxState::default();
    let a = accept(
        &mut s,
        None,
        vec![item(9), item(8)],
        &InboxLimits::default(),
    )
    .unwrap();
    let ids: Vec<_> = a.deliver.iter().map(|d| d.id).collect();
    assert_eq!(ids, [ItemId::of(&item(9)), ItemId::of(&item(8))]);
    assert!(a.deliver.iter().all(|d| d.seq.is_none()));
    assert_eq!(
        s,
        InboxState::default(),
        "unsequenced items leave the state alone"
    );
}

#[test]
fn limits_refuse_without_changing_state() {
    let l = InboxLimits {
        max_ahead: 10,
        max_held_bytes: 40,
    };
    let mut s = InboxState::default();
    let before = s.clone();
    assert!(matches!(
        accept(&mut s, Some(12), vec![item(12)], &l),
        Err(InboxRefusal::TooFarAhead {
            seq: 12,
            next: 1,
            ..
        })
    ));
    assert_eq!(s, before);
    // 16 bytes each: two fit, three do not.
    accept(&mut s, Some(3), vec![item(3), item(4)], &l).unwrap();
    let before = s.clone();
    assert!(matches!(
        accept(&mut s, Some(5), vec![item(5)], &l),
        Err(InboxRefusal::TooMuchHeld { .. })
    ));
    assert_eq!(s, before);
    assert!(matches!(
        accept(&mut s, Some(0), vec![item(0)], &l),
        Err(InboxRefusal::BadSequence { .. })
    ));
    assert!(matches!(
        accept(&mut s, Some(u64::MAX), vec![item(0)], &l),
        Err(InboxRefusal::BadSequence { .. })
    ));
}

proptest! {
    /// Any arrival order of any overlapping batches, each possibly repeated: every item is
    /// delivered exactly once, in order.
    #[test]
    fn any_arrival_order_delivers_each_item_once_in_order(
        batches in proptest::collection::vec((1u64..40, 1usize..6, 1usize..3), 1..30),
        shuffle in proptest::collection::vec(proptest::num::usize::ANY, 0..60),
    ) {
        let mut bodies: Vec<(u64, usize)> = Vec::new();
        for (first, len, copies) in &batches {
            for _ in 0..*copies { bodies.push((*first, *len)); }
        }
        // Make sure every item 1..=max is sent at least once, in some batch.
        let max = bodies.iter().map(|(f, l)| f + *l as u64 - 1).max().unwrap();
        for n in 1..=max { bodies.push((n, 1)); }
        for (i, r) in shuffle.iter().enumerate() {
            let n = bodies.len();
            bodies.swap(i % n, r % n);
        }
        let mut s = InboxState::default();
        let l = InboxLimits::default();
        let mut delivered = Vec::new();
        for (first, len) in bodies {
            let items = (first..first + len as u64).map(item).collect();
            let a = accept(&mut s, Some(first), items, &l).unwrap();
            for d in a.deliver {
                prop_assert_eq!(&d.item, &item(d.seq.unwrap()));
                delivered.push(d.seq.unwrap());
            }
        }
        prop_assert_eq!(delivered, (1..=max).collect::<Vec<_>>());
        prop_assert!(s.held.is_empty());
    }
}
