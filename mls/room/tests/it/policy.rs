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
    // Roles: an ordinary user of the private group may not redefine roles (its admin may).
    let res = s
        .resolve(&cp, &[ComponentOp::Update(0x0025, s.roles.encode())])
        .unwrap();
    assert!(authorize_commit(&s, &res, &mls, &u(ALICE)).is_ok());
    assert_eq!(
        authorize_commit(&s, &res, &mls, &u(BOB))
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

// ---- ROOM-policy-active-limits, ROOM-policy-preauth, ROOM-policy-* components ----------

use mimi_room::policy::{check_active_limits, preauthorized_join};
use mimi_room::preauth::{Claim, ClaimId, PreAuthData, PreAuthRoleEntry};
use mimi_room::roles::Role;
use mimi_room::room_policy::{
    ClientRefusal, ExpirationDurations, MessageExpiration, Optionality, Receipt,
    StatusNotificationPolicy, expiry_for, receipt_allowed, send_receipt,
};

/// The base room with role 2 (ordinary) limited to `max` active participants and role 3
/// (admin) needing at least one.
fn limited(max: u32) -> RoomState {
    let mut s = base();
    for r in &mut s.roles.roles {
        match r.index {
            2 => r.max_active = Some(max),
            3 => r.min_active = 1,
            _ => {}
        }
    }
    s
}

fn with_client(v: &[ClientUri], extra: &str) -> Vec<ClientUri> {
    let mut v = v.to_vec();
    v.push(c(extra));
    v
}

#[test]
fn room_policy_active_limits_table() {
    let cp = CodePoints::DRAFT;
    let s = limited(2);
    let before = clients_of(&s); // alice, bob, cathy active
    let dave = "d.example/u/dave";
    let res = s
        .resolve(&cp, &[ComponentOp::Update(0x0022, add(dave, 2).encode())])
        .unwrap();
    // A third active ordinary user: refused with notAllowed.
    let after = with_client(&before, "d.example/d/dave/1");
    let e = check_active_limits(&s, &res.state, &before, &after).unwrap_err();
    assert_eq!(e.code, DeniedCode::NotAllowed, "{e}");
    assert!(e.reason.contains("at most 2 active"), "{e}");
    // Listed but without a client (inactive): allowed.
    assert!(check_active_limits(&s, &res.state, &before, &before).is_ok());
    // A second client of an already active user does not add an active participant.
    let more = with_client(&before, "b.example/d/bob/2");
    assert!(check_active_limits(&s, &s, &before, &more).is_ok());
    // With a higher limit, allowed.
    let roomy = limited(3);
    let res3 = roomy
        .resolve(&cp, &[ComponentOp::Update(0x0022, add(dave, 2).encode())])
        .unwrap();
    assert!(check_active_limits(&roomy, &res3.state, &before, &after).is_ok());
    // Moving an active admin to role 2 when role 2 is full: refused.
    let mut two = limited(2);
    two.participants.participants.push(UserRolePair {
        user: u(dave),
        role_index: 3,
    });
    let b2 = with_client(&before, "d.example/d/dave/1");
    let res = two
        .resolve(
            &cp,
            &[ComponentOp::Update(
                0x0022,
                set_role(&two, dave, 2).encode(),
            )],
        )
        .unwrap();
    assert_eq!(
        check_active_limits(&two, &res.state, &b2, &b2)
            .unwrap_err()
            .code,
        DeniedCode::NotAllowed
    );
    // min_active: removing the only admin's client (kick, list unchanged) is refused.
    let no_admin: Vec<ClientUri> = before
        .iter()
        .filter(|x| x.user() != Some(u(ALICE)))
        .cloned()
        .collect();
    let e = check_active_limits(&s, &s, &before, &no_admin).unwrap_err();
    assert_eq!(e.code, DeniedCode::NotAllowed);
    assert!(e.reason.contains("at least 1 active"), "{e}");
    // A room already past a limit is not frozen: a commit that does not worsen it passes.
    let over = limited(1);
    assert!(check_active_limits(&over, &over, &before, &before).is_ok());
}

fn preauth_entry(claims: Vec<Claim>, role: u32) -> PreAuthRoleEntry {
    PreAuthRoleEntry {
        claimset: claims,
        target_role: Role::new(role, "target", &[], &[]),
    }
}

fn with_preauth(mut s: RoomState, entries: Vec<PreAuthRoleEntry>, own_role_cap: bool) -> RoomState {
    s.preauth = Some(
        PreAuthData {
            preauthorized_entries: entries,
        }
        .encode(),
    );
    if own_role_cap {
        for r in &mut s.roles.roles {
            if r.index == 2 {
                r.capabilities.insert(cap::CAN_CHANGE_OWN_ROLE);
            }
        }
    }
    s
}

#[test]
fn room_policy_preauth_matching_table() {
    let x509 = Claim {
        claim_id: ClaimId {
            credential_type: 2,
            id: vec![0x55, 0x1d, 0x11],
        },
        claim_value: b"b.example".to_vec(),
    };
    let entries = vec![
        // Never matches a basic credential (an X.509 claim).
        preauth_entry(vec![x509], 2),
        // Exactly Bob (user claim) and his provider: role 3.
        preauth_entry(
            vec![
                Claim::basic("user", &format!("mimi://{BOB}")),
                Claim::basic("provider", "b.example"),
            ],
            3,
        ),
        // Anyone at c.example: role 2 (domain claim); later entries lose.
        preauth_entry(vec![Claim::basic("domain", "c.example")], 2),
        preauth_entry(vec![Claim::basic("domain", "c.example")], 3),
    ];
    let p = PreAuthData {
        preauthorized_entries: entries.clone(),
    };
    assert_eq!(PreAuthData::decode(&p.encode()).unwrap(), p);
    assert_eq!(p.first_nonzero_role(&u(BOB)), Some(3));
    assert_eq!(p.first_nonzero_role(&u(CATHY)), Some(2));
    assert_eq!(
        p.first_nonzero_role(&u("b.example/u/other")),
        None,
        "values match exactly"
    );
    assert_eq!(
        p.first_nonzero_role(&u("x.c.example/u/z")),
        None,
        "no suffix match"
    );

    // canChangeOwnRole: Bob (2) may move himself to his preauthorized role 3, not elsewhere.
    let s = with_preauth(base(), entries.clone(), true);
    allowed(
        run(&s, Some(set_role(&s, BOB, 3)), &[], &[], BOB, false),
        "bob to preauth role",
    );
    // Cathy is preauthorized for 2 (her role already): moving to 3 is refused.
    let e = run(&s, Some(set_role(&s, CATHY, 3)), &[], &[], CATHY, false).unwrap_err();
    assert_eq!(
        (e.code, e.capability),
        (DeniedCode::NotAllowed, Some(cap::CAN_CHANGE_OWN_ROLE))
    );
    // Without the capability, refused even when preauthorized.
    let s2 = with_preauth(base(), entries.clone(), false);
    let e = run(&s2, Some(set_role(&s2, BOB, 3)), &[], &[], BOB, false).unwrap_err();
    assert_eq!(e.capability, Some(cap::CAN_CHANGE_OWN_ROLE));
    // Without a preauthorization list, refused.
    let mut s3 = with_preauth(base(), Vec::new(), true);
    s3.preauth = None;
    assert!(run(&s3, Some(set_role(&s3, BOB, 3)), &[], &[], BOB, false).is_err());

    // canJoinIfPreauthorized: an unlisted c.example user may join as role 2 once role 2 holds
    // the capability.
    let mut j = with_preauth(base(), entries, false);
    assert!(!preauthorized_join(&j, "mimi://c.example/u/zoe", 2));
    for r in &mut j.roles.roles {
        if r.index == 2 {
            r.capabilities.insert(cap::CAN_JOIN_IF_PREAUTHORIZED);
        }
    }
    assert!(preauthorized_join(&j, "mimi://c.example/u/zoe", 2));
    assert!(
        !preauthorized_join(&j, "mimi://c.example/u/zoe", 3),
        "first match wins"
    );
    assert!(!preauthorized_join(&j, "mimi://z.example/u/zoe", 2));
    allowed(
        run(
            &j,
            Some(add("c.example/u/zoe", 2)),
            &[],
            &[],
            "c.example/u/zoe",
            true,
        ),
        "preauthorized external join",
    );
    // A preauthorization list that does not decode is refused by the resolver.
    let cp = CodePoints::DRAFT;
    assert!(
        base()
            .resolve(&cp, &[ComponentOp::Update(0x0026, vec![1, 2, 3])])
            .is_err()
    );
}

#[test]
fn room_policy_components_are_resolved_and_authorized() {
    let cp = CodePoints::DRAFT;
    let s = base();
    let status = StatusNotificationPolicy {
        delivery_notifications: Optionality::Forbidden,
        read_receipts: Optionality::Required,
    };
    let expiry = MessageExpiration {
        expiring_messages: Optionality::Optional,
        durations: ExpirationDurations {
            min: 10,
            max: 100,
            default: Some(50),
        },
    };
    let ops = [
        ComponentOp::Update(0x0028, status.encode()),
        ComponentOp::Update(0x0030, expiry.encode()),
    ];
    let res = s.resolve(&cp, &ops).unwrap();
    assert_eq!(res.state.policies.status, Some(status));
    assert_eq!(res.state.policies.expiration, Some(expiry));
    assert_eq!(res.policies_changed, [0x0028, 0x0030]);
    let ids: Vec<u16> = res.changes.iter().map(|c| c.0).collect();
    assert_eq!(ids, [0x0028, 0x0030]);
    // They round-trip through the dictionary.
    let comps = res.state.components(&cp);
    let back = RoomState::from_dictionary(&cp, |id| {
        comps.iter().find(|c| c.0 == id).map(|c| c.1.as_slice())
    })
    .unwrap();
    assert_eq!(back, res.state);
    let mls = MembershipChange {
        remaining: clients_of(&s),
        ..Default::default()
    };
    // The admin (canChangeRoomMembershipStyle) may; an ordinary user may not.
    assert!(authorize_commit(&s, &res, &mls, &u(ALICE)).is_ok());
    let e = authorize_commit(&s, &res, &mls, &u(BOB)).unwrap_err();
    assert_eq!(e.code, DeniedCode::NotAllowed);
    assert_eq!(e.capability, Some(cap::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE));
    // Twice in one commit, removal, or bytes that do not decode: refused by the resolver.
    assert!(s.resolve(&cp, &[ops[0].clone(), ops[0].clone()]).is_err());
    assert!(s.resolve(&cp, &[ComponentOp::Remove(0x0028)]).is_err());
    assert!(
        s.resolve(&cp, &[ComponentOp::Update(0x002C, vec![9])])
            .is_err()
    );
    assert!(
        s.resolve(&cp, &[ComponentOp::Update(0x002E, vec![2, 0])])
            .is_err()
    );
}

#[test]
fn room_policy_status_and_expiry_client_rules() {
    let p = |d, r| StatusNotificationPolicy {
        delivery_notifications: d,
        read_receipts: r,
    };
    use Optionality::*;
    // ROOM-policy-status: forbidden never, required always, optional = local setting.
    for (policy, local, want) in [
        (None, true, true),
        (None, false, false),
        (Some(p(Optional, Optional)), false, false),
        (Some(p(Required, Optional)), false, true),
        (Some(p(Forbidden, Optional)), true, false),
    ] {
        assert_eq!(
            send_receipt(policy.as_ref(), Receipt::Delivery, local),
            want,
            "{policy:?} {local}"
        );
    }
    assert!(receipt_allowed(Some(&p(Optional, Forbidden)), Receipt::Read).is_err());
    assert!(receipt_allowed(Some(&p(Optional, Forbidden)), Receipt::Delivery).is_ok());
    // ROOM-policy-expiry.
    let e = |o, min, max, default| MessageExpiration {
        expiring_messages: o,
        durations: ExpirationDurations { min, max, default },
    };
    assert_eq!(expiry_for(None, Some(5)), Ok(Some(5)));
    assert_eq!(expiry_for(Some(&e(Forbidden, 0, 0, None)), None), Ok(None));
    assert_eq!(
        expiry_for(Some(&e(Forbidden, 0, 0, None)), Some(5)),
        Err(ClientRefusal::ExpiryForbidden)
    );
    assert_eq!(
        expiry_for(Some(&e(Optional, 10, 100, None)), None),
        Ok(None)
    );
    assert_eq!(
        expiry_for(Some(&e(Optional, 10, 100, Some(20))), None),
        Ok(Some(20))
    );
    assert_eq!(
        expiry_for(Some(&e(Required, 10, 100, Some(20))), None),
        Ok(Some(20))
    );
    assert_eq!(
        expiry_for(Some(&e(Required, 10, 100, None)), None),
        Ok(Some(100))
    );
    assert_eq!(
        expiry_for(Some(&e(Required, 10, 100, None)), Some(30)),
        Ok(Some(30))
    );
    assert!(matches!(
        expiry_for(Some(&e(Optional, 10, 100, None)), Some(101)),
        Err(ClientRefusal::ExpiryOutOfBounds { .. })
    ));
}

#[test]
fn room_policy_resolver_cross_checks() {
    use mimi_room::room_policy::{HistoryPolicy, HistorySharing};
    use mimi_room::state::StateError;
    let cp = CodePoints::DRAFT;
    let s = base();
    // ROOM-policy-preauth: a PreAuthUpdate may come with removals only.
    let p = PreAuthData::default().encode();
    let with_add = [
        ComponentOp::Update(0x0022, add("d.example/u/dave", 2).encode()),
        ComponentOp::Update(0x0026, p.clone()),
    ];
    assert_eq!(
        s.resolve(&cp, &with_add),
        Err(StateError::PreauthWithListChange)
    );
    let with_removal = [
        ComponentOp::Update(0x0022, remove(&s, CATHY).encode()),
        ComponentOp::Update(0x0026, p),
    ];
    assert!(s.resolve(&cp, &with_removal).is_ok());
    // ROOM-policy-history: a role with max_active 0 (banned is refused on the wire; here a
    // role 2 that may have no active participants) may not share history.
    let mut s2 = base();
    for r in &mut s2.roles.roles {
        if r.index == 2 {
            r.max_active = Some(0);
        }
    }
    let h = HistoryPolicy {
        history_sharing: Optionality::Optional,
        sharing: HistorySharing {
            roles_that_can_share: vec![3, 2],
            automatically_share: false,
            max_time_period: 60,
        },
    };
    assert_eq!(
        s2.resolve(&cp, &[ComponentOp::Update(0x002E, h.encode())]),
        Err(StateError::HistoryRole(2))
    );
    assert!(
        s.resolve(&cp, &[ComponentOp::Update(0x002E, h.encode())])
            .is_ok()
    );
}
