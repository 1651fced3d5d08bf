//! The hub's consistency checks end to end, each with its draft code and the proposals it
//! names: an Add for a user not in the list, a removal that leaves a client behind, a commit
//! that omits a queued proposal, a commit whose Welcome does not match its Adds, and Welcome
//! routing by KeyPackageRef.

use crate::flow::{Member, alice_and_bob, assert_agree, commit, device, join, room_uri};
use mimi_room::client::CommitPlan;
use mimi_room::hub::{NamedProposal, UpdateRejection};
use mimi_wire::components::{ParticipantListUpdate, RoomMetaData};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, ProviderId, UserUri};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{KeyPackageIn, ProtocolVersion};
use openmls_rust_crypto::RustCrypto;

const ADD: u16 = 0x0001;
const APP_DATA_UPDATE: u16 = 0x0008;
const SELF_REMOVE: u16 = 0x000a;

fn user(s: &str) -> UserUri {
    UserUri::parse(s).unwrap()
}

fn key_package_ref(kp: &[u8]) -> Vec<u8> {
    let crypto = RustCrypto::default();
    KeyPackageIn::tls_deserialize_exact(kp)
        .unwrap()
        .validate(&crypto, ProtocolVersion::Mls10)
        .unwrap()
        .hash_ref(&crypto)
        .unwrap()
        .as_slice()
        .to_vec()
}

/// ROOM-7.8-add-listed: an Add of a client whose user is not (being) listed is
/// `invalidProposal`, naming that Add.
#[test]
fn room_7_8_add_listed_add_of_unlisted_user_is_invalid_proposal() {
    let (mut hub, mut alice, bob) = alice_and_bob();
    let dan = device("mimi://d.example/d/dan/1");
    let plan = CommitPlan {
        key_packages: vec![dan.key_package().unwrap()],
        ..Default::default()
    };
    let out = alice.room.commit_plan(&alice.dev, plan).unwrap();
    let e = commit(&mut hub, &mut alice, out.bundle, &mut []).unwrap_err();
    let UpdateRejection::InvalidProposal { proposals, reason } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("not an active participant"), "{reason}");
    assert_eq!(
        proposals,
        &vec![NamedProposal {
            proposal_type: ADD,
            reference: None
        }]
    );
    assert!(matches!(
        e.response().outcome,
        UpdateOutcome::InvalidProposal { .. }
    ));
    assert_agree(&hub, &[&alice, &bob]);
}

/// ROOM-7.8-remove-all-clients: removing a user from the list while one of its clients stays
/// is `invalidProposal`, naming the participant-list update; removing every client passes.
#[test]
fn room_7_8_remove_all_clients_removal_leaving_a_client_is_invalid_proposal() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    // Bob adds his second device (canAddOwnClient).
    let bob2_dev = device("mimi://b.example/d/bob/2");
    let out = bob
        .room
        .add_users(&bob.dev, &[], &[bob2_dev.key_package().unwrap()])
        .unwrap();
    let welcome = commit(&mut hub, &mut bob, out.bundle, &mut [&mut alice])
        .unwrap()
        .unwrap();
    let mut bob2 = join(bob2_dev, &welcome);
    assert_agree(&hub, &[&alice, &bob, &bob2]);

    let bob_user = user("mimi://b.example/u/bob");
    let index = hub
        .state()
        .unwrap()
        .participants
        .index_of(&bob_user)
        .unwrap();
    let plan = CommitPlan {
        list_update: Some(ParticipantListUpdate {
            removed_indices: vec![u32::try_from(index).unwrap()],
            ..Default::default()
        }),
        remove_clients: vec![bob.dev.client.clone()],
        ..Default::default()
    };
    let out = alice.room.commit_plan(&alice.dev, plan).unwrap();
    let e = commit(&mut hub, &mut alice, out.bundle, &mut []).unwrap_err();
    let UpdateRejection::InvalidProposal { proposals, reason } = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("bob/2"), "{reason}");
    assert_eq!(
        proposals,
        &vec![NamedProposal {
            proposal_type: APP_DATA_UPDATE,
            reference: None
        }]
    );
    assert_agree(&hub, &[&alice, &bob, &bob2]);

    // Removing the user with all its clients is accepted.
    let out = alice.room.remove_user(&alice.dev, &bob_user).unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob, &mut bob2]).unwrap();
    assert_agree(&hub, &[&alice]);
    assert!(!bob.room.group.is_active() && !bob2.room.group.is_active());
}

/// ROOM-hub-queued: a commit that omits a proposal the hub accepted for the epoch is
/// `invalidProposal` naming that proposal by its ProposalRef; once included, it passes.
#[test]
fn room_hub_queued_commit_omitting_a_queued_proposal_is_refused_and_pending_kept() {
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let cathy_dev = device("mimi://c.example/d/cathy/1");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(user("mimi://c.example/u/cathy"), 2)],
            &[cathy_dev.key_package().unwrap()],
        )
        .unwrap();
    let welcome = commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob])
        .unwrap()
        .unwrap();
    let mut cathy = join(cathy_dev, &welcome);

    // Bob leaves (SelfRemove); the hub queues it. Only Cathy has received it so far.
    let leave = bob.room.leave(&bob.dev).unwrap();
    commit(&mut hub, &mut bob, leave.clone(), &mut [&mut cathy]).unwrap();
    // PROTO-5.6-pending: the hub keeps it, with its acceptance time, for groupInfo, and a
    // snapshot keeps it too.
    let HandshakeBundle::Proposal { proposal: sent, .. } = &leave else {
        panic!()
    };
    assert_eq!(hub.pending_proposals().len(), 1);
    assert_eq!(hub.pending_proposals()[0].proposal, *sent);
    assert!(hub.pending_proposals()[0].hub_accepted_time > 0);
    let hub2 = mimi_room::hub::HubRoom::restore(&hub.snapshot()).unwrap();
    assert_eq!(hub2.pending_proposals(), hub.pending_proposals());

    // Alice has not seen it: her commit omits it.
    let out = alice
        .room
        .set_metadata(&alice.dev, RoomMetaData::named(room_uri(), "Renamed"))
        .unwrap();
    let e = commit(&mut hub, &mut alice, out.bundle, &mut []).unwrap_err();
    let UpdateRejection::InvalidProposal { proposals, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0].proposal_type, SELF_REMOVE);
    let reference = proposals[0].reference.clone().expect("named by its ref");
    let UpdateOutcome::InvalidProposal { invalid_proposals } = e.response().outcome else {
        panic!()
    };
    assert_eq!(invalid_proposals, vec![reference]);

    // Alice gets the proposal and commits it: Bob is out of the group and the list.
    let HandshakeBundle::Proposal { proposal, .. } = leave else {
        panic!()
    };
    let item = FanoutMessage {
        timestamp: 5,
        message: proposal,
        extra: FanoutExtra::Proposal(vec![]),
    };
    alice.room.process(&alice.dev, &item).unwrap();
    let out = alice.room.commit_pending(&alice.dev).unwrap();
    commit(
        &mut hub,
        &mut alice,
        out.bundle,
        &mut [&mut bob, &mut cathy],
    )
    .unwrap();
    assert_agree(&hub, &[&alice, &cathy]);
    assert!(
        hub.state()
            .unwrap()
            .participants
            .index_of(&user("mimi://b.example/u/bob"))
            .is_none()
    );
    // The queue went with the epoch.
    assert!(hub.pending_proposals().is_empty());
}

/// ROOM-hub-welcome-complete and ROOM-hub-welcome-routing: a commit that adds a client
/// without a Welcome is refused; the Welcome goes to the provider the hub learned for the
/// KeyPackageRef when it proxied the claim, else to the added client's provider.
#[test]
fn room_hub_welcome_routing_by_key_package_ref() {
    let (mut hub, mut alice, bob) = alice_and_bob();
    let cathy_dev = device("mimi://c.example/d/cathy/1");
    let kp = cathy_dev.key_package().unwrap();
    let kp_ref = key_package_ref(&kp);
    let cathy_user = user("mimi://c.example/u/cathy");

    let out = alice
        .room
        .add_users(&alice.dev, &[(cathy_user, 2)], std::slice::from_ref(&kp))
        .unwrap();
    let HandshakeBundle::Commit {
        commit: c,
        group_info,
        ratchet_tree,
        ..
    } = out.bundle.clone()
    else {
        panic!()
    };
    let stripped = HandshakeBundle::Commit {
        commit: c,
        welcome: None,
        group_info,
        ratchet_tree,
    };
    let e = hub.handle_update(&stripped).unwrap_err();
    assert!(matches!(e, UpdateRejection::InvalidProposal { .. }), "{e}");
    assert!(e.to_string().contains("ROOM-hub-welcome-complete"));
    assert_agree(&hub, &[&alice, &bob]);

    let mut accepted = hub.handle_update(&out.bundle).unwrap();
    assert_eq!(
        accepted.added_key_packages,
        vec![(
            kp_ref.clone(),
            ClientUri::parse("mimi://c.example/d/cathy/1").unwrap()
        )]
    );
    // Without a learned mapping: the client's provider.
    mimi_room::hub::HubRoom::welcome_of(&out.bundle, &mut accepted).unwrap();
    let c_example = ProviderId::parse("c.example").unwrap();
    assert_eq!(
        accepted.welcome.as_ref().unwrap().1,
        [c_example.clone()].into_iter().collect()
    );
    // With the mapping learned at claim time, that provider.
    let proxy = ProviderId::parse("kp-proxy.example").unwrap();
    mimi_room::hub::HubRoom::route_welcome(&out.bundle, &mut accepted, |r| {
        (r == kp_ref.as_slice()).then(|| proxy.clone())
    })
    .unwrap();
    assert_eq!(
        accepted.welcome.as_ref().unwrap().1,
        [proxy].into_iter().collect()
    );
    // The routed Welcome lets Cathy join.
    alice.room.merge(&alice.dev).unwrap();
    let HandshakeBundle::Commit { ratchet_tree, .. } = &out.bundle else {
        panic!()
    };
    let w = FanoutMessage {
        timestamp: 1,
        message: accepted.welcome.unwrap().0,
        extra: FanoutExtra::Welcome(ratchet_tree.clone()),
    };
    let cathy = join(cathy_dev, &w);
    let _: &Member = &cathy;
    assert_eq!(cathy.room.epoch(), hub.epoch());
}

/// ROOM-hub-external-remove and ROOM-8-receive: the hub proposes the removal of a client (it is in
/// external_senders); the proposal is queued, fanned out, and a member without canKick may
/// commit it, because the hub decided it. The same removal proposed by that member itself is
/// `notAllowed`.
#[test]
fn room_hub_external_remove_is_committed_by_a_member() {
    use mimi_room::client::Event;
    use mimi_room::codepoints::CodePoints;
    use mimi_room::hub::HubRoom;
    use mimi_room::presets::private_group;
    use openmls::prelude::{BasicCredential, ExternalSender};
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_traits::types::SignatureScheme;

    let hub_key = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        hub_key.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let alice_dev = device("mimi://a.example/d/alice/1");
    let (room, gi, tree) = alice_dev
        .create_room(
            &room_uri(),
            &private_group(&CodePoints::DRAFT),
            hub_sender,
            None,
        )
        .unwrap();
    let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
    let mut alice = Member {
        dev: alice_dev,
        room,
    };
    let bob1 = device("mimi://b.example/d/bob/1");
    let bob2 = device("mimi://b.example/d/bob/2");
    let cathy = device("mimi://c.example/d/cathy/1");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[
                (user("mimi://b.example/u/bob"), 2),
                (user("mimi://c.example/u/cathy"), 2),
            ],
            &[
                bob1.key_package().unwrap(),
                bob2.key_package().unwrap(),
                cathy.key_package().unwrap(),
            ],
        )
        .unwrap();
    let welcome = commit(&mut hub, &mut alice, out.bundle, &mut [])
        .unwrap()
        .unwrap();
    let (mut bob1, mut bob2, mut cathy) = (
        join(bob1, &welcome),
        join(bob2, &welcome),
        join(cathy, &welcome),
    );
    assert_agree(&hub, &[&alice, &bob1, &bob2, &cathy]);

    // Cathy (ordinary, no canKick) may not remove Bob's second device herself.
    let plan = CommitPlan {
        remove_clients: vec![bob2.dev.client.clone()],
        ..Default::default()
    };
    let out = cathy.room.commit_plan(&cathy.dev, plan).unwrap();
    let e = commit(&mut hub, &mut cathy, out.bundle, &mut []).unwrap_err();
    assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e}");
    assert!(e.to_string().contains("canKick"), "{e}");

    // The hub proposes it; everyone stores it; Cathy commits it.
    let proposal = hub.propose_remove(&bob2.dev.client, &hub_key, 0).unwrap();
    let item = FanoutMessage {
        timestamp: 7,
        message: proposal,
        extra: FanoutExtra::Proposal(vec![]),
    };
    for m in [&mut alice, &mut bob1, &mut bob2, &mut cathy] {
        assert_eq!(m.room.process(&m.dev, &item).unwrap(), Event::Proposal);
    }
    let out = cathy.room.commit_pending(&cathy.dev).unwrap();
    commit(
        &mut hub,
        &mut cathy,
        out.bundle,
        &mut [&mut alice, &mut bob1, &mut bob2],
    )
    .unwrap();
    assert!(!bob2.room.group.is_active());
    assert_agree(&hub, &[&alice, &bob1, &cathy]);
    // Bob stays a participant with his first device.
    assert_eq!(
        hub.state()
            .unwrap()
            .role_of(&user("mimi://b.example/u/bob")),
        2
    );
    assert_eq!(hub.message_providers().len(), 3);
}

/// ROOM-8-authorize (canOpenJoin): in a public room anyone joins by external commit, adding
/// itself to the list as role 2; in a private group the same join is `notAllowed`.
#[test]
fn room_8_open_join_by_external_commit() {
    use mimi_room::codepoints::CodePoints;
    use mimi_room::hub::HubRoom;
    use mimi_room::presets::{private_group, public_room};

    let cp = CodePoints::DRAFT;
    for (preset, allowed) in [(public_room(&cp), true), (private_group(&cp), false)] {
        let alice_dev = device("mimi://a.example/d/alice/1");
        let (room, gi, tree) = alice_dev
            .create_room(&room_uri(), &preset, crate::flow::hub_sender(), None)
            .unwrap();
        let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
        let mut alice = Member {
            dev: alice_dev,
            room,
        };
        let dan_dev = device("mimi://d.example/d/dan/1");
        let (gi, tree) = hub.group_info_for_join().unwrap();
        let (dan_room, out) = dan_dev
            .join_external(&room_uri(), &gi, &tree, Some(2))
            .unwrap();
        let result = hub.handle_update(&out.bundle);
        if !allowed {
            let e = result.unwrap_err();
            assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e}");
            assert!(e.to_string().contains("canOpenJoin"), "{e}");
            assert_agree(&hub, &[&alice]);
            continue;
        }
        result.unwrap();
        let HandshakeBundle::Commit { commit: c, .. } = &out.bundle else {
            panic!()
        };
        let item = FanoutMessage {
            timestamp: 3,
            message: c.clone(),
            extra: FanoutExtra::Commit(vec![]),
        };
        alice.room.process(&alice.dev, &item).unwrap();
        let dan = Member {
            dev: dan_dev,
            room: dan_room,
        };
        assert_agree(&hub, &[&alice, &dan]);
        assert_eq!(hub.room_state().role_of(&user("mimi://d.example/u/dan")), 2);
    }
}

/// ROOM-join-links, PROTO-5.6-joining-code at the hub: a code is valid while the room lists
/// the link and it has not expired (from the hub's first sight of it); an external joiner
/// with a grant must remove a single-use link in its join, and may not make links itself;
/// the grant and the link times survive a snapshot.
#[test]
fn room_join_links_codes_expire_single_use_and_grants() {
    use mimi_room::hub::HubRoom;
    use mimi_room::join_links::{JoinLinkPolicy, new_link};

    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let link = new_link(&room_uri()).unwrap();
    let policy = JoinLinkPolicy {
        on_request: true,
        join_link: room_uri().to_string(),
        multiuser: false,
        expiration: 60,
    };
    let out = alice
        .room
        .set_join_links(&alice.dev, Some(policy), vec![link.clone()], &[])
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
    let seen = hub.room_state().join.links.links.clone();
    assert_eq!(seen, vec![link.clone()]);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    hub.check_join_code(&link, now).unwrap();
    let e = hub.check_join_code(&link, now + 61_000).unwrap_err();
    assert!(e.contains("expired"), "{e}");
    let e = hub
        .check_join_code(b"mimi://a.example/r/clubhouse?join=00", now)
        .unwrap_err();
    assert!(e.contains("not one of the room's join links"), "{e}");

    // Dan presents the code and joins, but his commit keeps the single-use link: refused.
    let dan_dev = device("mimi://d.example/d/dan/1");
    let dan = ClientUri::parse("mimi://d.example/d/dan/1").unwrap();
    hub.grant_join(&dan, &dan_dev.signer.to_public_vec(), &link, now);
    let mut hub = HubRoom::restore(&hub.snapshot()).unwrap();
    hub.check_join_code(&link, now).unwrap();
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (_, keeps) = dan_dev
        .join_external_with(&room_uri(), &gi, &tree, Some(2), &[])
        .unwrap();
    let e = hub.handle_update_at(&keeps.bundle, now).unwrap_err();
    assert!(e.to_string().contains("single-use"), "{e}");
    // Without a grant the same join is not allowed at all (no canOpenJoin).
    let eve_dev = device("mimi://e.example/d/eve/1");
    let (_, out) = eve_dev
        .join_external_by(&room_uri(), &gi, &tree, Some(2), &[], Some(&link))
        .unwrap();
    let e = hub.handle_update_at(&out.bundle, now).unwrap_err();
    assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e}");
    // PROTO-5.6-requester: the grant is for the key Dan's request was signed with; another
    // device that claims Dan's client URI (its own key) gets none of his grant.
    let impostor = device("mimi://d.example/d/dan/1");
    assert!(hub.has_join_grant(&dan, &dan_dev.signer.to_public_vec(), now));
    assert!(!hub.has_join_grant(&dan, &impostor.signer.to_public_vec(), now));
    let (_, out) = impostor
        .join_external_by(&room_uri(), &gi, &tree, Some(2), &[], Some(&link))
        .unwrap();
    let HandshakeBundle::Commit { commit: c, .. } = &out.bundle else {
        panic!()
    };
    assert_eq!(
        mimi_room::roster::external_committer_key(c.as_bytes()),
        Some((dan.clone(), impostor.signer.to_public_vec()))
    );
    let e = hub.handle_update_at(&out.bundle, now).unwrap_err();
    assert!(matches!(e, UpdateRejection::NotAllowed(_)), "{e}");
    // The grant survives a restore with its key (head format 0x0003).
    let hub2 = HubRoom::restore(&hub.snapshot()).unwrap();
    assert!(hub2.has_join_grant(&dan, &dan_dev.signer.to_public_vec(), now));
    assert!(!hub2.has_join_grant(&dan, &impostor.signer.to_public_vec(), now));
    // Dan's join that consumes the link passes; the link is gone and the grant used.
    let (dan_room, out) = dan_dev
        .join_external_by(&room_uri(), &gi, &tree, Some(2), &[], Some(&link))
        .unwrap();
    let HandshakeBundle::Commit { commit: c, .. } = &out.bundle else {
        panic!()
    };
    hub.handle_update_at(&out.bundle, now).unwrap();
    for m in [&mut alice, &mut bob] {
        let item = FanoutMessage {
            timestamp: 9,
            message: c.clone(),
            extra: FanoutExtra::Commit(vec![]),
        };
        m.room.process(&m.dev, &item).unwrap();
    }
    let dan_m = crate::flow::Member {
        dev: dan_dev,
        room: dan_room,
    };
    assert_agree(&hub, &[&alice, &bob, &dan_m]);
    assert!(hub.room_state().join.links.links.is_empty());
    assert_eq!(hub.room_state().role_of(&user("mimi://d.example/u/dan")), 2);
    let e = hub.check_join_code(&link, now).unwrap_err();
    assert!(e.contains("not one of"), "{e}");
}

/// ROOM-hub-regenerate (protocol-06 §7.7 step 4): an external commit cannot include the
/// hub's own Remove, so the hub names it in `invalidated_hub_removals`, proposes it again for
/// the new epoch, and the members that get it stapled to the commit commit it next.
#[test]
fn room_hub_regenerate_external_commit_invalidates_a_hub_removal() {
    use mimi_room::codepoints::CodePoints;
    use mimi_room::hub::HubRoom;
    use mimi_room::presets::public_room;
    use openmls::prelude::{BasicCredential, ExternalSender};
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_traits::types::SignatureScheme;

    let hub_key = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        hub_key.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let alice_dev = device("mimi://a.example/d/alice/1");
    let (room, gi, tree) = alice_dev
        .create_room(
            &room_uri(),
            &public_room(&CodePoints::DRAFT),
            hub_sender,
            None,
        )
        .unwrap();
    let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
    let mut alice = Member {
        dev: alice_dev,
        room,
    };
    let bob_dev = device("mimi://b.example/d/bob/1");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(user("mimi://b.example/u/bob"), 2)],
            &[bob_dev.key_package().unwrap()],
        )
        .unwrap();
    let welcome = commit(&mut hub, &mut alice, out.bundle, &mut [])
        .unwrap()
        .unwrap();
    let mut bob = join(bob_dev, &welcome);

    // The hub proposes Bob's removal; before anyone commits it, Dan joins by external commit.
    let first = hub.propose_remove(&bob.dev.client, &hub_key, 0).unwrap();
    assert_eq!(hub.pending_proposals().len(), 1);
    let dan_dev = device("mimi://d.example/d/dan/1");
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (dan_room, out) = dan_dev
        .join_external(&room_uri(), &gi, &tree, Some(2))
        .unwrap();
    let accepted = hub.handle_update(&out.bundle).unwrap();
    assert_eq!(
        accepted.invalidated_hub_removals,
        vec![bob.dev.client.clone()]
    );
    let again = hub.propose_remove(&bob.dev.client, &hub_key, 0).unwrap();
    assert_ne!(again, first, "a proposal of the new epoch");
    let HandshakeBundle::Commit { commit: c, .. } = &out.bundle else {
        panic!()
    };
    let item = FanoutMessage {
        timestamp: 8,
        message: c.clone(),
        extra: FanoutExtra::Commit(vec![again]),
    };
    let mut dan = Member {
        dev: dan_dev,
        room: dan_room,
    };
    dan.room.merge(&dan.dev).unwrap();
    for m in [&mut alice, &mut bob, &mut dan] {
        m.room.process(&m.dev, &item).unwrap();
    }
    assert!(
        alice.room.group.pending_proposals().next().is_some(),
        "the stapled proposal is stored"
    );
    let out = alice.room.commit_pending(&alice.dev).unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob, &mut dan]).unwrap();
    assert!(!bob.room.group.is_active(), "Bob is out");
    assert_agree(&hub, &[&alice, &dan]);
    assert!(!hub.clients().contains(&bob.dev.client));
}

/// ROOM-policy-active-limits end to end: with role 2 limited to one active participant (Bob),
/// Alice's commit adding Cathy as role 2 is refused by the hub with `notAllowed`; a member
/// handed the same commit (as a faulty hub would fan it out) refuses it too and stays at its
/// epoch; adding her as an admin (role 3, unlimited) passes.
#[test]
fn room_policy_active_limits_hub_and_member_refuse_with_not_allowed() {
    use mimi_room::client::ClientError;
    use mimi_room::policy::DeniedCode;
    use mimi_wire::codec::Body;
    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let cp = mimi_room::codepoints::CodePoints::DRAFT;
    let mut roles = hub.state().unwrap().roles.clone();
    for r in &mut roles.roles {
        if r.index == 2 {
            r.max_active = Some(1);
        }
    }
    let out = alice
        .room
        .set_components(&alice.dev, vec![(cp.roles_list, roles.encode())])
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_agree(&hub, &[&alice, &bob]);

    let cathy = device("mimi://c.example/d/cathy/1");
    let cathy_user = user("mimi://c.example/u/cathy");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(cathy_user.clone(), 2)],
            &[cathy.key_package().unwrap()],
        )
        .unwrap();
    let HandshakeBundle::Commit { commit: bytes, .. } = &out.bundle else {
        panic!("not a commit")
    };
    let item = FanoutMessage {
        timestamp: 1,
        message: bytes.clone(),
        extra: FanoutExtra::Commit(vec![]),
    };
    let e = commit(&mut hub, &mut alice, out.bundle.clone(), &mut []).unwrap_err();
    let UpdateRejection::NotAllowed(reason) = &e else {
        panic!("{e:?}")
    };
    assert!(reason.contains("at most 1 active"), "{reason}");
    assert!(matches!(e.response().outcome, UpdateOutcome::NotAllowed));
    // The member side.
    let epoch = bob.room.epoch();
    match bob.room.process(&bob.dev, &item) {
        Err(ClientError::Policy(d)) => assert_eq!(d.code, DeniedCode::NotAllowed, "{d}"),
        other => panic!("the member accepted a commit breaking max_active: {other:?}"),
    }
    assert_eq!(bob.room.epoch(), epoch);
    assert_agree(&hub, &[&alice, &bob]);

    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(cathy_user, 3)],
            &[cathy.key_package().unwrap()],
        )
        .unwrap();
    commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
}
