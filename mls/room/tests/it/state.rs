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
        join: Default::default(),
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

/// ROOM-join-links: JoinLinkPolicy, JoinLinksData and JoinLinksUpdate encode as
/// room-policy-03 writes them, the delta applies (removals by index into the old list, then
/// additions), bad deltas are refused, and the resolver applies it.
#[test]
fn room_join_links_wire_and_delta() {
    use mimi_room::join_links::{JoinLinkPolicy, JoinLinksData, JoinLinksError, JoinLinksUpdate};
    use mimi_wire::codec::Body;

    let p = JoinLinkPolicy {
        on_request: true,
        join_link: "mimi://x".into(),
        multiuser: false,
        expiration: 60,
    };
    let mut want = vec![1u8, 8];
    want.extend_from_slice(b"mimi://x");
    want.extend_from_slice(&[0, 0, 0, 0, 60]);
    assert_eq!(p.encode(), want);
    assert_eq!(JoinLinkPolicy::decode(&want).unwrap(), p);
    let mut bad = want.clone();
    bad[0] = 2;
    assert!(JoinLinkPolicy::decode(&bad).is_err(), "a bool is 0 or 1");

    let data = JoinLinksData {
        links: vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
    };
    assert_eq!(data.encode(), vec![6, 1, b'a', 1, b'b', 1, b'c']);
    let u = JoinLinksUpdate {
        removed_indices: vec![0, 2],
        added_links: vec![b"d".to_vec()],
    };
    assert_eq!(u.encode(), vec![8, 0, 0, 0, 0, 0, 0, 0, 2, 2, 1, b'd']);
    assert_eq!(
        data.apply(&u).unwrap().links,
        vec![b"b".to_vec(), b"d".to_vec()]
    );
    let twice = JoinLinksUpdate {
        removed_indices: vec![1, 1],
        added_links: vec![],
    };
    assert_eq!(data.apply(&twice), Err(JoinLinksError::BadIndex(1)));
    let past = JoinLinksUpdate {
        removed_indices: vec![3],
        added_links: vec![],
    };
    assert_eq!(data.apply(&past), Err(JoinLinksError::BadIndex(3)));
    let dup = JoinLinksUpdate {
        removed_indices: vec![],
        added_links: vec![b"a".to_vec()],
    };
    assert_eq!(data.apply(&dup), Err(JoinLinksError::Duplicate));
    assert!(JoinLinksData::decode(&[1, 0]).is_err(), "an empty link");

    // Through the resolver: the policy wholesale, the links as deltas in order.
    let cp = CodePoints::DRAFT;
    let s = group_state(&[("a.example/u/alice", 3)]);
    let add = JoinLinksUpdate {
        removed_indices: vec![],
        added_links: vec![b"x".to_vec()],
    };
    let res = s
        .resolve(
            &cp,
            &[
                mimi_room::state::ComponentOp::Update(cp.join_link_policy, p.encode()),
                mimi_room::state::ComponentOp::Update(cp.join_links, add.encode()),
                mimi_room::state::ComponentOp::Update(cp.join_links, u32_remove(0)),
            ],
        )
        .unwrap();
    assert!(res.join_policy_changed);
    assert_eq!(res.join_links_updates.len(), 2);
    assert!(res.state.join.links.links.is_empty());
    assert_eq!(res.state.join.policy, Some(p));
    assert!(
        s.resolve(&cp, &[mimi_room::state::ComponentOp::Remove(cp.join_links)])
            .is_err()
    );
}

fn u32_remove(i: u32) -> Vec<u8> {
    use mimi_wire::codec::Body;
    mimi_room::join_links::JoinLinksUpdate {
        removed_indices: vec![i],
        added_links: vec![],
    }
    .encode()
}
