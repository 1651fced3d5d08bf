//! The hub's integrity checks against a lying or impersonating committer: the GroupInfo
//! cross-check (DESIGN.md) and stable client identities.

use crate::flow::{alice_and_bob, assert_agree, room_uri};
use mimi_room::hub::UpdateRejection;
use mimi_wire::components::RoomMetaData;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::update::HandshakeBundle;

/// ROOM-hub-groupinfo-check: a committer whose GroupInfo describes another new state than its
/// commit (here the GroupInfo of a different commit it built for the same epoch, also signed
/// by it) is refused, and the hub does not move.
#[test]
fn room_hub_groupinfo_check_refuses_a_lying_committer() {
    let (mut hub, mut alice, bob) = alice_and_bob();
    let x = alice
        .room
        .set_metadata(&alice.dev, RoomMetaData::named(room_uri(), "X"))
        .unwrap();
    alice.room.discard(&alice.dev).unwrap();
    let y = alice
        .room
        .set_metadata(&alice.dev, RoomMetaData::named(room_uri(), "Y"))
        .unwrap();
    let (
        HandshakeBundle::Commit {
            group_info: x_gi, ..
        },
        HandshakeBundle::Commit {
            commit,
            welcome,
            ratchet_tree,
            ..
        },
    ) = (x.bundle, y.bundle.clone())
    else {
        panic!()
    };
    let lying = HandshakeBundle::Commit {
        commit,
        welcome,
        group_info: x_gi,
        ratchet_tree,
    };
    let e = hub.handle_update(&lying).unwrap_err();
    assert!(matches!(e, UpdateRejection::InvalidProposal { .. }), "{e}");
    assert!(e.to_string().contains("ROOM-hub-groupinfo-check"), "{e}");
    // The honest bundle of the same commit passes.
    hub.handle_update(&y.bundle).unwrap();
    alice.room.merge(&alice.dev).unwrap();
    assert_eq!(alice.room.epoch(), hub.epoch());
    let _ = bob;
}

/// ROOM-credential-stable: a commit whose UpdatePath turns the committer's leaf into another
/// client (here Bob's leaf claiming to be a device of Alice) is `invalidProposal`.
#[test]
fn room_credential_stable_update_path_may_not_change_the_client_uri() {
    use mimi_wire::Mls;
    use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
    use openmls::prelude::{BasicCredential, CredentialWithKey, LeafNodeParameters};
    use openmls_traits::OpenMlsProvider;

    let (mut hub, mut alice, mut bob) = alice_and_bob();
    let dev = &bob.dev;
    let forged = CredentialWithKey {
        credential: BasicCredential::new(b"mimi://a.example/d/alice/9".to_vec()).into(),
        signature_key: dev.signer.to_public_vec().into(),
    };
    let out = bob
        .room
        .group
        .commit_builder()
        .force_self_update(true)
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_credential_with_key(forged)
                .build(),
        )
        .load_psks(dev.provider.storage())
        .unwrap()
        .create_group_info(true)
        .build(
            dev.provider.rand(),
            dev.provider.crypto(),
            &dev.signer,
            |_| true,
        )
        .unwrap()
        .stage_commit(&dev.provider)
        .unwrap();
    let (commit, _, gi) = out.into_contents();
    let bundle = HandshakeBundle::Commit {
        commit: Mls::encode_from(&commit).unwrap(),
        welcome: None,
        group_info: GroupInfoOption::Full(Mls::encode_from(&gi.unwrap()).unwrap()),
        ratchet_tree: RatchetTreeOption::DistributionService,
    };
    let e = hub.handle_update(&bundle).unwrap_err();
    assert!(matches!(e, UpdateRejection::InvalidProposal { .. }), "{e}");
    assert!(e.to_string().contains("ROOM-credential-stable"), "{e}");
    // A member that gets it anyway (a hub that lets it through) refuses it too.
    let HandshakeBundle::Commit { commit, .. } = &bundle else {
        panic!()
    };
    let item = FanoutMessage {
        timestamp: 9,
        message: commit.clone(),
        extra: FanoutExtra::Commit(vec![]),
    };
    let err = alice.room.process(&alice.dev, &item).unwrap_err();
    assert!(err.to_string().contains("ROOM-credential-stable"), "{err}");
    bob.room.discard(&bob.dev).unwrap();
    assert_agree(&hub, &[&alice, &bob]);
}
