//! The MLS operational parameters (room-policy-03 §7, `ROOM-policy-operational`) at the hub
//! and at the members: external commits, forbidden proposal types, leaves against mandatory
//! and forbidden capabilities, KeyPackage lifetimes, parameters the room could not live with,
//! and the members' group configuration following `app_message_policy`.

use crate::flow::{Member, alice_and_bob, assert_agree, commit, device, room_uri};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::UpdateRejection;
use mimi_room::room_policy::OperationalParameters;
use mimi_wire::codec::Body;
use mimi_wire::id::UserUri;
use mimi_wire::operational::AppMessagePolicy;

fn set(
    hub: &mut mimi_room::hub::HubRoom,
    alice: &mut Member,
    others: &mut [&mut Member],
    p: &OperationalParameters,
) -> Result<(), UpdateRejection> {
    let cp = CodePoints::DRAFT;
    let out = alice
        .room
        .set_components(&alice.dev, vec![(cp.mls_operational_policy, p.encode())])
        .unwrap();
    commit(hub, alice, out.bundle, others).map(|_| ())
}

/// ROOM-policy-operational-external-commit, -proposals, -app: with external commits
/// forbidden the hub refuses a new device's external commit; a forbidden proposal type is
/// refused sent alone; every member's group follows the app message policy.
#[test]
fn room_policy_operational_hub_refuses_external_commits_and_forbidden_proposals() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let p = OperationalParameters {
        external_commit_allowed: false,
        app_message_policy: AppMessagePolicy {
            epoch_tolerance: 2,
            pad_to_size: 64,
            max_generations_skipahead: 500,
        },
        forbidden_capabilities: mimi_wire::operational::ExtendedCapabilities {
            proposals: vec![0x000a],
            ..Default::default()
        },
        ..OperationalParameters::permissive()
    };
    set(&mut hub, &mut alice, &mut [&mut bob], &p).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    assert_eq!(hub.room_state().policies.operational, Some(p.clone()));
    for m in [&alice, &bob] {
        let cfg = m.room.group.configuration();
        assert_eq!(cfg.padding_size(), 64, "{}", m.dev.client);
        assert_eq!(
            cfg.sender_ratchet_configuration()
                .maximum_forward_distance(),
            500
        );
    }

    // A second device of Bob may not join by external commit.
    let bob2 = device("mimi://b.example/d/bob/2");
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (_, out) = bob2.join_external(&room_uri(), &gi, &tree, None).unwrap();
    let e = hub.handle_update(&out.bundle).unwrap_err();
    let UpdateRejection::NotAllowed(reason) = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("external_commit_allowed"), "{reason}");
    assert_agree(&hub, &[&alice, &bob]);

    // SelfRemove (0x000a) is forbidden: Bob's leave proposal is refused.
    let leave = bob.room.leave(&bob.dev).unwrap();
    let e = hub.handle_update(&leave).unwrap_err();
    assert!(
        matches!(&e, UpdateRejection::NotAllowed(r) if r.contains("0x000a")),
        "{e:?}"
    );

    // Allowing external commits again lets the device join; the configuration goes back to
    // our defaults when the app message policy is cleared.
    let open = OperationalParameters::permissive();
    let mut alice2 = alice;
    set(&mut hub, &mut alice2, &mut [], &open).unwrap();
    assert_eq!(alice2.room.group.configuration().padding_size(), 0);
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (_, out) = bob2.join_external(&room_uri(), &gi, &tree, None).unwrap();
    hub.handle_update(&out.bundle).unwrap();
}

/// ROOM-policy-operational-leaves, -kp-lifetime and the settable check: parameters that a
/// member's leaf does not meet, that forbid the room's own cipher suite, or whose handshakes
/// the hub cannot follow are refused; an added KeyPackage valid for longer than
/// max_kp_lifetime is refused.
#[test]
fn room_policy_operational_leaves_lifetimes_and_unlivable_parameters() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let refused = |hub: &mut _, alice: &mut Member, p: OperationalParameters, needle: &str| {
        let e = set(hub, alice, &mut [], &p).unwrap_err();
        assert!(
            matches!(&e, UpdateRejection::InvalidProposal { reason, .. } if reason.contains(needle)),
            "{needle}: {e:?}"
        );
    };
    let mut p = OperationalParameters::permissive();
    p.mandatory_capabilities.extensions = vec![0xff00];
    refused(
        &mut hub,
        &mut alice,
        p,
        "does not support the extension type 0xff00",
    );
    let mut p = OperationalParameters::permissive();
    p.forbidden_capabilities.credentials = vec![0x0001];
    refused(
        &mut hub,
        &mut alice,
        p,
        "credential type 0x0001 is forbidden",
    );
    let mut p = OperationalParameters::permissive();
    p.forbidden_capabilities.cipher_suites = vec![0x0001];
    refused(&mut hub, &mut alice, p, "its own cipher suite");
    let mut p = OperationalParameters::permissive();
    p.handshake_formats = vec![0x0007];
    refused(&mut hub, &mut alice, p, "PublicMessage");
    assert_agree(&hub, &[&alice, &bob]);
    assert_eq!(hub.room_state().policies.operational, None);

    // Every leaf here supports AppDataDictionary (0x0006): making it mandatory passes.
    let mut p = OperationalParameters::permissive();
    p.mandatory_capabilities.extensions = vec![0x0006];
    p.handshake_formats = vec![0x0001];
    p.max_kp_lifetime = 3600;
    set(&mut hub, &mut alice, &mut [&mut bob], &p).unwrap();
    assert_agree(&hub, &[&alice, &bob]);

    // Cathy's KeyPackage is valid for months: refused under max_kp_lifetime of an hour.
    let cathy = device("mimi://c.example/d/cathy/1");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(UserUri::parse("mimi://c.example/u/cathy").unwrap(), 2)],
            &[cathy.key_package().unwrap()],
        )
        .unwrap();
    let e = commit(&mut hub, &mut alice, out.bundle, &mut []).unwrap_err();
    assert!(
        matches!(&e, UpdateRejection::NotAllowed(r) if r.contains("max_kp_lifetime")),
        "{e:?}"
    );
    assert_agree(&hub, &[&alice, &bob]);

    // Lifting the limit lets her in.
    p.max_kp_lifetime = 0;
    set(&mut hub, &mut alice, &mut [&mut bob], &p).unwrap();
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(UserUri::parse("mimi://c.example/u/cathy").unwrap(), 2)],
            &[cathy.key_package().unwrap()],
        )
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
}

/// ROOM-policy-bots, ROOM-policy-logging in the resolver: a bot must act in a role the room
/// defines (also when the roles change under it); logging and bots round-trip through the
/// GroupContext to every member.
#[test]
fn room_policy_bots_and_logging_through_the_resolver() {
    use mimi_room::room_policy::{Bot, BotPolicy, LoggingPolicy, Optionality};
    use mimi_room::state::{ComponentOp, StateError};
    let cp = CodePoints::DRAFT;
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let s = hub.room_state().clone();
    let bot = |role| BotPolicy {
        allowed_bots: vec![Bot {
            name: "poker".into(),
            bot_role_index: role,
            per_user_content: true,
            ..Bot::default()
        }],
    };
    let e = s
        .resolve(&cp, &[ComponentOp::Update(cp.bot_policy, bot(77).encode())])
        .unwrap_err();
    assert!(matches!(e, StateError::BotRole { role: 77, .. }), "{e}");
    let logging = LoggingPolicy {
        logging: Optionality::Required,
        logging_clients: vec!["mimi://a.example/d/archiver/1".into()],
        machine_readable_policy: String::new(),
        human_readable_policy: "https://a.example/logging".into(),
    };
    let out = alice
        .room
        .set_components(
            &alice.dev,
            vec![
                (cp.logging_policy, logging.encode()),
                (cp.bot_policy, bot(2).encode()),
            ],
        )
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    let p = bob.room.state(&bob.dev).unwrap().policies;
    assert!(p.logging.as_ref().is_some_and(LoggingPolicy::active));
    assert_eq!(p.bots, Some(bot(2)));
    // Removing role 2 from the roles while the bot acts in it is refused.
    let mut roles = hub.room_state().roles.clone();
    roles.roles.retain(|r| r.index != 2);
    let e = hub
        .room_state()
        .resolve(&cp, &[ComponentOp::Update(cp.roles_list, roles.encode())])
        .unwrap_err();
    assert!(matches!(e, StateError::BotRole { role: 2, .. }), "{e}");
    // Bob (role 2) may not change the policy components.
    let out = bob
        .room
        .set_components(&bob.dev, vec![(cp.bot_policy, bot(0).encode())])
        .unwrap();
    let e = commit(&mut hub, &mut bob, out.bundle, &mut []).unwrap_err();
    assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e:?}");
}
