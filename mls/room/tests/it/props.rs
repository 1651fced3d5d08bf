//! Property tests: the room layer's decoders, its resolver and the hub never panic on random
//! or mutated bytes, and the resolver is deterministic (`ROOM-resolve-deterministic`).

use crate::flow::{alice_and_bob, room_uri};
use crate::state::{group_state, u};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::HubRoom;
use mimi_room::presets::{direct_message, private_group, public_room};
use mimi_room::roles::{BaseRoomPolicy, RoleData};
use mimi_room::state::ComponentOp;
use mimi_wire::codec::Body;
use mimi_wire::components::{ParticipantListUpdate, RoomMetaData, UserRolePair};
use mimi_wire::update::HandshakeBundle;
use proptest::prelude::*;
use std::sync::OnceLock;

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    for (i, b) in edits {
        if !bytes.is_empty() {
            let n = bytes.len();
            if let Some(x) = bytes.get_mut(i % n) {
                *x ^= b;
            }
        }
    }
    bytes.truncate(bytes.len().saturating_sub(cut));
    bytes
}

fn presets() -> Vec<(RoleData, BaseRoomPolicy)> {
    let cp = CodePoints::DRAFT;
    [direct_message(&cp), private_group(&cp), public_room(&cp)]
        .into_iter()
        .map(|p| (p.roles, p.base))
        .collect()
}

#[test]
fn room_components_round_trip_and_refuse_trailing_bytes() {
    for (roles, base) in presets() {
        assert_eq!(RoleData::decode(&roles.encode()).unwrap(), roles);
        assert_eq!(BaseRoomPolicy::decode(&base.encode()).unwrap(), base);
        let mut long = roles.encode();
        long.push(0);
        assert!(RoleData::decode(&long).is_err());
        let mut long = base.encode();
        long.push(0);
        assert!(BaseRoomPolicy::decode(&long).is_err());
    }
}

/// A hub with Alice and Bob, as a snapshot, and Alice's next commit (built once).
fn hub_fixture() -> &'static (Vec<u8>, Vec<u8>) {
    static F: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let (hub, mut alice, _bob) = alice_and_bob();
        let out = alice
            .room
            .set_metadata(&alice.dev, RoomMetaData::named(room_uri(), "Props"))
            .unwrap();
        (hub.snapshot(), out.bundle.encode())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn room_component_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = RoleData::decode(&bytes);
        let _ = BaseRoomPolicy::decode(&bytes);
    }

    #[test]
    fn room_component_decoders_survive_mutation(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
        cut in 0usize..8,
    ) {
        let (roles, base) = presets().swap_remove(which);
        let _ = RoleData::decode(&mutate(roles.encode(), &edits, cut));
        let _ = BaseRoomPolicy::decode(&mutate(base.encode(), &edits, cut));
    }

    #[test]
    fn room_resolve_never_panics_and_is_deterministic(
        ops in proptest::collection::vec(
            (prop::sample::select(vec![0x0022u16, 0x0023, 0x0025, 0x0026, 0x0027, 0x0028, 0x002B, 0x002C, 0x002E, 0x0030, 0x7777]),
             any::<bool>(),
             proptest::collection::vec((any::<usize>(), 1u8..), 0..4)),
            0..4),
    ) {
        let cp = CodePoints::DRAFT;
        let s = group_state(&[("a.example/u/alice", 3), ("b.example/u/bob", 2)]);
        let valid = ParticipantListUpdate {
            added_participants: vec![UserRolePair { user: u("c.example/u/cathy"), role_index: 2 }],
            removed_indices: vec![1],
            ..Default::default()
        }
        .encode();
        let ops: Vec<ComponentOp> = ops
            .into_iter()
            .map(|(id, remove, edits)| {
                if remove {
                    ComponentOp::Remove(id)
                } else {
                    ComponentOp::Update(id, mutate(valid.clone(), &edits, 0))
                }
            })
            .collect();
        prop_assert_eq!(s.resolve(&cp, &ops), s.resolve(&cp, &ops));
    }

    #[test]
    fn room_hub_restore_survives_mutation(
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        cut in 0usize..16,
    ) {
        let (snapshot, _) = hub_fixture();
        let _ = HubRoom::restore(&mutate(snapshot.clone(), &edits, cut));
    }

    #[test]
    fn room_hub_update_survives_mutated_bundles(
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        cut in 0usize..16,
    ) {
        let (snapshot, bundle) = hub_fixture();
        let mut hub = HubRoom::restore(snapshot).unwrap();
        let epoch = hub.epoch();
        if let Ok(b) = HandshakeBundle::decode(&mutate(bundle.clone(), &edits, cut))
            && hub.handle_update(&b).is_err()
        {
            // Refused: nothing changed.
            prop_assert_eq!(hub.epoch(), epoch);
            prop_assert_eq!(&hub.snapshot(), snapshot);
        }
    }
}
