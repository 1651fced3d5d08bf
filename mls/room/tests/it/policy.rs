//! Table-driven allow/deny tests of the authorization rules, for every capability the hub
//! enforces, over the presets (ROOM-8-authorize, ROOM-presets, ROOM-7.8-*, ROOM-8-send; the
//! component IDs come from ROOM-codepoints).

use crate::state::{group_state, u};
use mimi_room::codepoints::{CodePoints, cap};
use mimi_room::policy::{
    Denied, DeniedCode, MembershipChange, authorize_commit, authorize_message,
};
use mimi_room::presets::{direct_message, public_room};
use mimi_room::state::{ComponentOp, RoomState};
use mimi_wire::codec::Body;
use mimi_wire::components::{ParticipantListUpdate, RoomMetaData, UserIndexRolePair, UserRolePair};
use mimi_wire::id::{ClientUri, RoomUri};

fn c(s: &str) -> ClientUri {
    ClientUri::parse(&format!("mimi://{s}")).unwrap()
}

const ALICE: &str = "a.example/u/alice"; // admin (3)
const BOB: &str = "b.example/u/bob"; // ordinary (2)
const CATHY: &str = "c.example/u/cathy"; // ordinary (2)
const EVE: &str = "e.example/u/eve"; // banned (1)

fn base() -> RoomState {
    group_state(&[(ALICE, 3), (BOB, 2), (CATHY, 2), (EVE, 1)])
}

fn clients_of(s: &RoomState) -> Vec<ClientUri> {
    s.participants
        .participants
        .iter()
        .filter(|p| p.role_index >= 2)
        .map(|p| p.user.client("1").unwrap())
        .collect()
}

fn add(user: &str, role: u32) -> ParticipantListUpdate {
    ParticipantListUpdate {
        added_participants: vec![UserRolePair {
            user: u(user),
            role_index: role,
        }],
        ..Default::default()
    }
}

fn idx(s: &RoomState, user: &str) -> u32 {
    s.participants.index_of(&u(user)).unwrap() as u32
}

fn remove(s: &RoomState, user: &str) -> ParticipantListUpdate {
    ParticipantListUpdate {
        removed_indices: vec![idx(s, user)],
        ..Default::default()
    }
}

fn set_role(s: &RoomState, user: &str, role: u32) -> ParticipantListUpdate {
    ParticipantListUpdate {
        changed_role_participants: vec![UserIndexRolePair {
            user_index: idx(s, user),
            role_index: role,
        }],
        ..Default::default()
    }
}

/// Runs one commit: list delta (optional), MLS adds/removals, committer.
fn run(
    s: &RoomState,
    delta: Option<ParticipantListUpdate>,
    added: &[&str],
    removed: &[(&str, bool)],
    committer: &str,
    external_join: bool,
) -> Result<(), Denied> {
    let cp = CodePoints::DRAFT;
    let ops: Vec<ComponentOp> = delta
        .into_iter()
        .map(|d| ComponentOp::Update(0x0022, d.encode()))
        .collect();
    let res = s.resolve(&cp, &ops).map_err(|e| Denied {
        code: DeniedCode::InvalidProposal,
        capability: None,
        reason: e.to_string(),
        subject: None,
    })?;
    let mut remaining: Vec<ClientUri> = clients_of(s);
    let removed_clients: Vec<(ClientUri, bool)> =
        removed.iter().map(|(x, own)| (c(x), *own)).collect();
    remaining.retain(|x| !removed_clients.iter().any(|(r, _)| r == x));
    let added_clients: Vec<ClientUri> = added.iter().map(|x| c(x)).collect();
    remaining.extend(added_clients.iter().cloned());
    let mls = MembershipChange {
        added: added_clients,
        removed: removed_clients,
        external_join,
        remaining,
        removed_by_hub: Vec::new(),
        ..Default::default()
    };
    authorize_commit(s, &res, &mls, &u(committer))
}

fn allowed(r: Result<(), Denied>, case: &str) {
    if let Err(e) = r {
        panic!("{case}: expected allowed, got {e}");
    }
}

fn denied(r: Result<(), Denied>, code: DeniedCode, capability: Option<u16>, case: &str) {
    match r {
        Ok(()) => panic!("{case}: expected denied"),
        Err(e) => {
            assert_eq!(e.code, code, "{case}: {e}");
            assert_eq!(e.capability, capability, "{case}: {e}");
        }
    }
}

#[test]
fn room_8_authorize_private_group_table() {
    let s = base();
    use DeniedCode::*;
    // canAddParticipant: ordinary and admin may add as role 2; ordinary may not add an admin.
    allowed(
        run(
            &s,
            Some(add("d.example/u/dan", 2)),
            &["d.example/d/dan/1"],
            &[],
            BOB,
            false,
        ),
        "bob adds dan",
    );
    allowed(
        run(
            &s,
            Some(add("d.example/u/dan", 3)),
            &["d.example/d/dan/1"],
            &[],
            ALICE,
            false,
        ),
        "alice adds admin dan",
    );
    denied(
        run(
            &s,
            Some(add("d.example/u/dan", 3)),
            &["d.example/d/dan/1"],
            &[],
            BOB,
            false,
        ),
        NotAllowed,
        Some(cap::CAN_ADD_PARTICIPANT),
        "bob adds admin",
    );
    // ROOM-7.8-add-listed: a client of a user not in the list.
    denied(
        run(&s, None, &["d.example/d/dan/1"], &[], BOB, false),
        InvalidProposal,
        None,
        "add unlisted client",
    );
    // A client of a banned user cannot be added.
    denied(
        run(&s, None, &["e.example/d/eve/1"], &[], ALICE, false),
        InvalidProposal,
        None,
        "add banned client",
    );
    // canRemoveParticipant with all clients.
    allowed(
        run(
            &s,
            Some(remove(&s, CATHY)),
            &[],
            &[("c.example/d/cathy/1", false)],
            BOB,
            false,
        ),
        "bob removes cathy",
    );
    // ROOM-7.8-remove-all-clients: list removal leaving the client behind.
    denied(
        run(&s, Some(remove(&s, CATHY)), &[], &[], BOB, false),
        InvalidProposal,
        None,
        "remove leaves client",
    );
    // Ordinary may not remove an admin (no 3 -> 0 entry).
    denied(
        run(
            &s,
            Some(remove(&s, ALICE)),
            &[],
            &[("a.example/d/alice/1", false)],
            BOB,
            false,
        ),
        NotAllowed,
        Some(cap::CAN_REMOVE_PARTICIPANT),
        "bob removes alice",
    );
    // canRemoveSelf: Bob proposed his own removal, Alice commits.
    allowed(
        run(
            &s,
            Some(remove(&s, BOB)),
            &[],
            &[("b.example/d/bob/1", true)],
            ALICE,
            false,
        ),
        "bob leaves",
    );
    // canBan / canUnban / canChangeUserRole: admin only.
    allowed(
        run(
            &s,
            Some(set_role(&s, CATHY, 1)),
            &[],
            &[("c.example/d/cathy/1", false)],
            ALICE,
            false,
        ),
        "alice bans cathy",
    );
    denied(
        run(
            &s,
            Some(set_role(&s, CATHY, 1)),
            &[],
            &[("c.example/d/cathy/1", false)],
            BOB,
            false,
        ),
        NotAllowed,
        Some(cap::CAN_BAN),
        "bob bans cathy",
    );
    denied(
        run(&s, Some(set_role(&s, CATHY, 1)), &[], &[], ALICE, false),
        InvalidProposal,
        None,
        "ban leaves client",
    );
    allowed(
        run(&s, Some(set_role(&s, EVE, 2)), &[], &[], ALICE, false),
        "alice unbans eve",
    );
    denied(
        run(&s, Some(set_role(&s, EVE, 2)), &[], &[], BOB, false),
        NotAllowed,
        Some(cap::CAN_UNBAN),
        "bob unbans eve",
    );
    allowed(
        run(&s, Some(set_role(&s, CATHY, 3)), &[], &[], ALICE, false),
        "alice promotes cathy",
    );
    denied(
        run(&s, Some(set_role(&s, CATHY, 3)), &[], &[], BOB, false),
        NotAllowed,
        Some(cap::CAN_CHANGE_USER_ROLE),
        "bob promotes cathy",
    );
    denied(
        run(&s, Some(set_role(&s, BOB, 3)), &[], &[], BOB, false),
        NotAllowed,
        Some(cap::CAN_CHANGE_OWN_ROLE),
        "bob promotes himself",
    );
    // canKick: admin removes a client without touching the list.
    allowed(
        run(
            &s,
            None,
            &[],
            &[("c.example/d/cathy/1", false)],
            ALICE,
            false,
        ),
        "alice kicks cathy's client",
    );
    denied(
        run(&s, None, &[], &[("c.example/d/cathy/1", false)], BOB, false),
        NotAllowed,
        Some(cap::CAN_KICK),
        "bob kicks cathy's client",
    );
    // canAddOwnClient / canRemoveOwnClient.
    allowed(
        run(&s, None, &["b.example/d/bob/2"], &[], BOB, false),
        "bob adds own client",
    );
    allowed(
        run(&s, None, &["b.example/d/bob/2"], &[], BOB, true),
        "bob joins with a new device",
    );
    allowed(
        run(&s, None, &[], &[("b.example/d/bob/1", true)], ALICE, false),
        "bob removes own client",
    );
    // A banned user may not commit anything.
    denied(
        run(&s, None, &[], &[], EVE, false),
        NotAllowed,
        None,
        "banned commits",
    );
    denied(
        run(&s, None, &[], &[], "z.example/u/zed", false),
        NotAllowed,
        None,
        "stranger commits",
    );
    // Open join is not in a private group.
    denied(
        run(
            &s,
            Some(add("z.example/u/zed", 2)),
            &["z.example/d/zed/1"],
            &[],
            "z.example/u/zed",
            true,
        ),
        NotAllowed,
        Some(cap::CAN_OPEN_JOIN),
        "zed joins",
    );
}

#[test]
fn room_8_authorize_metadata_and_messages() {
    let cp = CodePoints::DRAFT;
    let s = base();
    let mut m = RoomMetaData::named(
        RoomUri::parse("mimi://a.example/r/clubhouse").unwrap(),
        "Renamed",
    );
    let res = s
        .resolve(&cp, &[ComponentOp::Update(0x0023, m.encode())])
        .unwrap();
    let mls = MembershipChange {
        remaining: clients_of(&s),
        ..Default::default()
    };
    assert!(authorize_commit(&s, &res, &mls, &u(BOB)).is_ok());
    m.room_uri = RoomUri::parse("mimi://a.example/r/other").unwrap();
    let res = s
        .resolve(&cp, &[ComponentOp::Update(0x0023, m.encode())])
        .unwrap();
    assert_eq!(
        authorize_commit(&s, &res, &mls, &u(BOB)).unwrap_err().code,
        DeniedCode::InvalidProposal
    );
    // Roles: nobody in the private group may redefine roles.
    let res = s
        .resolve(&cp, &[ComponentOp::Update(0x0025, s.roles.encode())])
        .unwrap();
    assert_eq!(
        authorize_commit(&s, &res, &mls, &u(ALICE))
            .unwrap_err()
            .capability,
        Some(cap::CAN_CHANGE_ROLE_DEFINITIONS)
    );
    // ROOM-8-send.
    assert!(authorize_message(&s, &u(BOB)).is_ok());
    assert_eq!(
        authorize_message(&s, &u(EVE)).unwrap_err().capability,
        Some(cap::CAN_SEND_MESSAGE)
    );
    assert!(authorize_message(&s, &u("z.example/u/zed")).is_err());
}

#[test]
fn room_8_authorize_direct_message_and_public_room() {
    let cp = CodePoints::DRAFT;
    let dm = {
        let p = direct_message(&cp);
        let mut s = group_state(&[(ALICE, 2), (BOB, 2)]);
        s.roles = p.roles;
        s.base = p.base;
        s
    };
    denied(
        run(
            &dm,
            Some(add("d.example/u/dan", 2)),
            &["d.example/d/dan/1"],
            &[],
            ALICE,
            false,
        ),
        DeniedCode::NotAllowed,
        Some(cap::CAN_ADD_PARTICIPANT),
        "dm add",
    );
    denied(
        run(
            &dm,
            Some(remove(&dm, BOB)),
            &[],
            &[("b.example/d/bob/1", true)],
            ALICE,
            false,
        ),
        DeniedCode::NotAllowed,
        Some(cap::CAN_REMOVE_PARTICIPANT),
        "dm leave",
    );
    allowed(
        run(&dm, None, &["a.example/d/alice/2"], &[], ALICE, true),
        "dm own device",
    );

    let public = {
        let p = public_room(&cp);
        let mut s = group_state(&[(ALICE, 4), (BOB, 2)]);
        s.roles = p.roles;
        s.base = p.base;
        s
    };
    allowed(
        run(
            &public,
            Some(add("z.example/u/zed", 2)),
            &[],
            &[],
            "z.example/u/zed",
            true,
        ),
        "open join",
    );
    denied(
        run(
            &public,
            Some(add("z.example/u/zed", 4)),
            &[],
            &[],
            "z.example/u/zed",
            true,
        ),
        DeniedCode::NotAllowed,
        Some(cap::CAN_OPEN_JOIN),
        "open join as owner",
    );
    denied(
        run(
            &public,
            Some(add("d.example/u/dan", 2)),
            &["d.example/d/dan/1"],
            &[],
            BOB,
            false,
        ),
        DeniedCode::NotAllowed,
        Some(cap::CAN_ADD_PARTICIPANT),
        "member adds",
    );
    allowed(
        run(
            &public,
            Some(remove(&public, BOB)),
            &[],
            &[("b.example/d/bob/1", true)],
            ALICE,
            false,
        ),
        "member leaves",
    );
}
