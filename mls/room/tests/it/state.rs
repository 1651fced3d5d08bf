use mimi_room::codepoints::CodePoints;
use mimi_room::presets::private_group;
use mimi_room::state::{ComponentOp, RoomState, StateError};
use mimi_wire::codec::Body;
use mimi_wire::components::{
    ParticipantListData, ParticipantListUpdate, RoomMetaData, UserRolePair,
};
use mimi_wire::id::{RoomUri, UserUri};

pub fn u(s: &str) -> UserUri {
    UserUri::parse(&format!("mimi://{s}")).unwrap()
}

pub fn group_state(members: &[(&str, u32)]) -> RoomState {
    let cp = CodePoints::DRAFT;
    let p = private_group(&cp);
    RoomState {
        participants: ParticipantListData {
            participants: members
                .iter()
                .map(|(m, r)| UserRolePair {
                    user: u(m),
                    role_index: *r,
                })
                .collect(),
        },
        metadata: Some(RoomMetaData::named(
            RoomUri::parse("mimi://a.example/r/clubhouse").unwrap(),
            "Clubhouse",
        )),
        roles: p.roles,
        base: p.base,
        preauth: None,
        policies: Default::default(),
    }
}

#[test]
fn room_state_round_trips_through_the_dictionary() {
    let cp = CodePoints::DRAFT;
    let s = group_state(&[("a.example/u/alice", 3), ("b.example/u/bob", 2)]);
    let comps = s.components(&cp);
    let ids: Vec<u16> = comps.iter().map(|c| c.0).collect();
    assert_eq!(ids, [0x0022, 0x0023, 0x0025, 0x0027]);
    let back = RoomState::from_dictionary(&cp, |id| {
        comps.iter().find(|c| c.0 == id).map(|c| c.1.as_slice())
    })
    .unwrap();
    assert_eq!(back, s);
    let missing = RoomState::from_dictionary(&cp, |id| {
        comps
            .iter()
            .find(|c| c.0 == id && id != 0x0025)
            .map(|c| c.1.as_slice())
    });
    assert_eq!(missing.unwrap_err(), StateError::Missing("roles list"));
}

#[test]
fn room_resolve_deterministic_deltas_chain_and_touch_once() {
    let cp = CodePoints::DRAFT;
    let s = group_state(&[("a.example/u/alice", 3), ("b.example/u/bob", 2)]);
    let add_cathy = ParticipantListUpdate {
        added_participants: vec![UserRolePair {
            user: u("c.example/u/cathy"),
            role_index: 2,
        }],
        ..Default::default()
    };
    let add_dan = ParticipantListUpdate {
        added_participants: vec![UserRolePair {
            user: u("d.example/u/dan"),
            role_index: 2,
        }],
        ..Default::default()
    };
    let ops = [
        ComponentOp::Update(0x0022, add_cathy.encode()),
        ComponentOp::Update(0x0022, add_dan.encode()),
    ];
    let r1 = s.resolve(&cp, &ops).unwrap();
    let r2 = s.resolve(&cp, &ops).unwrap();
    assert_eq!(r1, r2, "same input, same output");
    assert_eq!(r1.state.participants.participants.len(), 4);
    assert_eq!(r1.changes.len(), 1);
    assert_eq!(r1.changes[0].1, r1.state.participants.encode());
    // Cathy twice across two deltas.
    let twice = [
        ComponentOp::Update(0x0022, add_cathy.encode()),
        ComponentOp::Update(0x0022, add_cathy.encode()),
    ];
    assert!(matches!(s.resolve(&cp, &twice), Err(StateError::Apply(_))));
    // Unknown components, removals of required ones, garbage, roles with a list change.
    assert_eq!(
        s.resolve(&cp, &[ComponentOp::Update(0x7777, vec![])]),
        Err(StateError::UnknownComponent(0x7777))
    );
    assert!(matches!(
        s.resolve(&cp, &[ComponentOp::Remove(0x0022)]),
        Err(StateError::RemoveNotAllowed(_))
    ));
    assert!(matches!(
        s.resolve(&cp, &[ComponentOp::Update(0x0022, vec![0xff])]),
        Err(StateError::Decode { .. })
    ));
    let roles = [
        ComponentOp::Update(0x0022, add_cathy.encode()),
        ComponentOp::Update(0x0025, s.roles.encode()),
    ];
    assert_eq!(s.resolve(&cp, &roles), Err(StateError::RolesWithListChange));
    let meta = RoomMetaData::named(
        RoomUri::parse("mimi://a.example/r/clubhouse").unwrap(),
        "New name",
    );
    let two_meta = [
        ComponentOp::Update(0x0023, meta.encode()),
        ComponentOp::Update(0x0023, meta.encode()),
    ];
    assert!(matches!(
        s.resolve(&cp, &two_meta),
        Err(StateError::TwoUpdates(_))
    ));
}
