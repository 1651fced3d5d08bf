//! openmls and mls-rs devices in one room, through mimi-room's hub.

use super::harness::*;
use mimi_room::client::CommitPlan;
use mimi_room_mlsrs::device::DeviceError;
use mimi_wire::id::ClientUri;

/// Alice (openmls) creates the room and adds Bob's mls-rs device (Add + participant-list
/// AppDataUpdate in one commit); Bob joins from the Welcome.
fn alice_adds_mlsrs_bob() -> Mixed {
    let mut room = Mixed::new("mimi://a.example/d/alice/1");
    let bob = rs_device("mimi://b.example/d/bob/1");
    let kp = bob.key_package().unwrap();
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r
        .add_users(d, &[(user("mimi://b.example/u/bob"), 2)], &[kp])
        .unwrap();
    let (welcome, tree) = room.commit(0, out.bundle).unwrap().unwrap();
    let bob_room = bob.join_from_welcome(&room_uri(), &welcome, &tree).unwrap();
    room.members.push(Member::Rs(bob, bob_room));
    room
}

/// The spike (issue 18), part that works: openmls accepts the mls-rs KeyPackage (its leaf
/// advertises 0x0006, 0x0008, 0x000a), the hub accepts the Add + AppDataUpdate commit, the
/// mls-rs device joins from the Welcome and the tree, reads the same room state, and the
/// epoch authenticators agree; messages decrypt both ways.
#[test]
fn mlsrs_joins_from_openmls_welcome_and_agrees() {
    let mut room = alice_adds_mlsrs_bob();
    assert_eq!(room.hub.epoch(), 1);
    room.assert_agree();
    assert_eq!(
        room.members[1]
            .state()
            .role_of(&user("mimi://b.example/u/bob")),
        2
    );
    room.everyone_sends("epoch 1");
}

/// The part that does not work: an openmls commit carrying an AppDataUpdate does not even
/// decode in mls-rs 0.57. mls-rs frames the body of every proposal type it does not know as
/// `opaque data<V>` (`group/proposal.rs`, `CustomDecoder::decode_from_bytes` →
/// `mls_rs_codec::byte_vec::mls_decode`); mls-extensions' AppDataUpdate is an inline struct
/// (`uint16 component_id; uint8 op; opaque update<V>`), so mls-rs reads the component ID's
/// first octet (0x00) as a zero length and the rest as the next proposal.
#[test]
fn openmls_app_data_update_commit_does_not_decode_in_mlsrs() {
    let mut room = alice_adds_mlsrs_bob();
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r.set_role(d, &user("mimi://b.example/u/bob"), 3).unwrap();
    let mimi_wire::update::HandshakeBundle::Commit { commit, .. } = &out.bundle else {
        unreachable!()
    };
    let commit = commit.as_bytes().to_vec();
    // The hub (openmls) accepts it.
    room.hub.handle_update(&out.bundle).unwrap();
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    match bob.process(&commit) {
        Err(DeviceError::Mls {
            step: "decode message",
            error: mls_rs::error::MlsError::SerializationError(_),
        }) => {}
        other => panic!("expected a decode error, got {other:?}"),
    }
    assert_eq!(bob.epoch(), 1, "Bob stays at the old epoch");
}

/// And the other direction: an mls-rs commit with an AppDataUpdate (a custom proposal whose
/// body mls-rs length-prefixes) is not an MLSMessage openmls can decode: mimi-wire's check of
/// the commit bytes with openmls' decoder (what the hub runs first) refuses it.
#[test]
fn mlsrs_app_data_update_commit_does_not_decode_in_openmls() {
    let mut room = alice_adds_mlsrs_bob();
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    match bob.set_role(&user("mimi://b.example/u/bob"), 2) {
        Err(DeviceError::Wire(e)) => {
            assert!(e.to_string().contains("MLS object"), "{e}");
        }
        Err(other) => panic!("expected openmls to refuse the bytes, got {other}"),
        Ok(_) => panic!("expected openmls to refuse the bytes, got a bundle"),
    }
    bob.discard();
    // Nothing changed; the room goes on.
    room.assert_agree();
    room.everyone_sends("after");
}

/// Commits without AppDataUpdate work both ways, epoch after epoch: an openmls self-update
/// processed by mls-rs; an mls-rs self-update processed by openmls members and the hub; the
/// mls-rs member adding its user's second device (an openmls device: canAddOwnClient, no
/// list change) and removing it again.
#[test]
fn commits_without_app_data_work_both_ways() {
    let mut room = alice_adds_mlsrs_bob();
    room.assert_agree();

    // openmls self-update (empty commit with an UpdatePath).
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r.commit_plan(d, CommitPlan::default()).unwrap();
    room.commit(0, out.bundle).unwrap();
    room.assert_agree();
    room.everyone_sends("epoch 2");

    // mls-rs self-update.
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let bundle = bob.self_update().unwrap();
    room.commit(1, bundle).unwrap();
    room.assert_agree();
    room.everyone_sends("epoch 3");

    // mls-rs adds Bob's second device (openmls).
    let bob2 = om_device("mimi://b.example/d/bob/2");
    let kp = bob2.key_package().unwrap();
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let bundle = bob.add_users(&[], &[kp]).unwrap();
    let (welcome, tree) = room.commit(1, bundle).unwrap().unwrap();
    let bob2_room = bob2
        .join_from_welcome(&room_uri(), &welcome_message(&welcome), &tree)
        .unwrap();
    room.members.push(Member::Om(bob2, bob2_room));
    room.assert_agree();
    room.everyone_sends("epoch 4");

    // openmls self-update again, now with three members.
    let Member::Om(d, r) = &mut room.members[2] else {
        unreachable!()
    };
    let out = r.commit_plan(d, CommitPlan::default()).unwrap();
    room.commit(2, out.bundle).unwrap();
    room.assert_agree();

    // mls-rs removes Bob's second device (Remove only; Bob stays listed).
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let leaf = bob
        .leaf_of(&mimi_wire::id::ClientUri::parse("mimi://b.example/d/bob/2").unwrap())
        .unwrap();
    let bundle = bob.commit(None, &[], &[leaf]).unwrap();
    room.commit(1, bundle).unwrap();
    room.drop_removed();
    room.assert_agree();
    room.everyone_sends("epoch 6");
}

/// The GroupContext extensions mls-rs's rules would compute for an AppDataUpdate commit
/// (`appdata::apply`, the list `MimiRules::filter_proposals` puts in its local GCE) are
/// byte-identical to the ones openmls computes for the same update (a role change).
#[test]
fn rules_extension_list_equals_openmls_group_context() {
    use mls_rs::mls_rs_codec::MlsEncode as _;
    use openmls::prelude::tls_codec::Serialize as _;
    let mut room = alice_adds_mlsrs_bob();
    let Member::Rs(_, bob) = &room.members[1] else {
        unreachable!()
    };
    let before = bob.group.context().extensions.clone();
    let delta = mimi_wire::components::ParticipantListUpdate {
        changed_role_participants: vec![mimi_wire::components::UserIndexRolePair {
            user_index: 1,
            role_index: 3,
        }],
        ..Default::default()
    };
    let ops = vec![mimi_room::state::ComponentOp::Update(
        0x0022,
        mimi_wire::codec::Body::encode(&delta),
    )];
    let (ours, res) =
        mimi_room_mlsrs::appdata::apply(&before, &mimi_room::codepoints::CodePoints::DRAFT, &ops)
            .unwrap();
    assert_eq!(res.state.role_of(&user("mimi://b.example/u/bob")), 3);

    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r.set_role(d, &user("mimi://b.example/u/bob"), 3).unwrap();
    room.hub.handle_update(&out.bundle).unwrap();
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    r.merge(d).unwrap();
    let theirs = r
        .group
        .public_group()
        .group_context()
        .extensions()
        .tls_serialize_detached()
        .unwrap();
    assert_eq!(ours.mls_encode_to_vec().unwrap(), theirs);
    // In our rooms the dictionary is created last (mimi-room `create_room_in`), so the
    // in-place replacement of mls-rs's `ExtensionList::set` would give the same list here;
    // the two differ only once another extension follows the dictionary.
    assert_eq!(
        before.last().map(|e| e.extension_type.raw_value()),
        Some(0x0006)
    );
}

/// Between two mls-rs devices the rules' AppDataUpdate path works end to end: Bob (mls-rs)
/// adds his second mls-rs device through the hub (no list change), then commits a role change
/// as an AppDataUpdate (sent as a custom proposal, applied through the local GCE); the second
/// device processes it, and both reach the same epoch authenticator and the resolved state.
/// (The hub and openmls members cannot take part: see the tests above.)
#[test]
fn mlsrs_to_mlsrs_app_data_update_agrees() {
    let mut room = alice_adds_mlsrs_bob();
    let bob2 = rs_device("mimi://b.example/d/bob/2");
    let kp = bob2.key_package().unwrap();
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let bundle = bob.add_users(&[], &[kp]).unwrap();
    let (welcome, tree) = room.commit(1, bundle).unwrap().unwrap();
    let bob2_room = bob2
        .join_from_welcome(&room_uri(), &welcome, &tree)
        .unwrap();
    room.members.push(Member::Rs(bob2, bob2_room));
    room.assert_agree();

    let delta = mimi_wire::components::ParticipantListUpdate {
        changed_role_participants: vec![mimi_wire::components::UserIndexRolePair {
            user_index: 1,
            role_index: 3,
        }],
        ..Default::default()
    };
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let out = bob
        .group
        .commit_builder()
        .custom_proposal(mimi_room_mlsrs::appdata::update_proposal(
            0x0022,
            &mimi_wire::codec::Body::encode(&delta),
        ))
        .build()
        .unwrap();
    assert!(
        !out.contains_update_path,
        "AppDataUpdate alone needs no path"
    );
    let commit = out.commit_message.to_bytes().unwrap();
    bob.merge().unwrap();
    let Member::Rs(_, bob2) = &mut room.members[2] else {
        unreachable!()
    };
    assert!(matches!(
        bob2.process(&commit).unwrap(),
        mimi_room_mlsrs::device::Event::Commit { epoch: 3 }
    ));
    let (a, b) = (&room.members[1], &room.members[2]);
    assert_eq!(a.epoch_authenticator(), b.epoch_authenticator());
    assert_eq!(a.state(), b.state());
    assert_eq!(a.state().role_of(&user("mimi://b.example/u/bob")), 3);
    assert_eq!(
        room.hub
            .state()
            .unwrap()
            .role_of(&user("mimi://b.example/u/bob")),
        2
    );
    assert_ne!(
        a.state(),
        room.hub.state().unwrap(),
        "the hub did not see it"
    );
}

/// External joins by mls-rs (`INTEROP-cli-mlsrs`, RFC 9420 §12.4.3.2): Bob's second device,
/// on mls-rs, joins by external commit from the hub's GroupInfo and tree (no list change: Bob
/// is listed); the hub accepts it, the openmls and mls-rs members process it and agree. Then
/// that device loses its state and resyncs as the same client (the external commit removes
/// its old leaf, protocol-06 §3.6); an openmls device joins externally after it. A user the
/// room does not list is refused by the hub exactly as an openmls joiner is.
#[test]
fn mlsrs_external_join_and_resync_agree() {
    let mut room = alice_adds_mlsrs_bob();
    let bob2 = rs_device("mimi://b.example/d/bob/2");
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, bundle) = bob2.join_external(&room_uri(), &gi, &tree, &[]).unwrap();
    room.join_external(Member::Rs(bob2, r), bundle).unwrap();
    assert_eq!(room.hub.epoch(), 2);
    room.assert_agree();
    room.everyone_sends("after the mls-rs external join");

    // The device loses its state (same key, empty storage) and resyncs as itself.
    let Some(Member::Rs(lost, _)) = room.members.pop() else {
        unreachable!()
    };
    let (secret, public) = lost.key_pair();
    let again = mimi_room_mlsrs::device::Device::restore(
        lost.client.clone(),
        secret,
        public,
        mimi_room_mlsrs::storage::Storage::new(),
    )
    .unwrap();
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, bundle) = again.join_external(&room_uri(), &gi, &tree, &[]).unwrap();
    room.join_external(Member::Rs(again, r), bundle).unwrap();
    assert_eq!(room.hub.epoch(), 3);
    assert_eq!(room.hub.clients().len(), 3, "the old leaf is gone");
    room.assert_agree();
    room.everyone_sends("after the mls-rs resync");

    // An openmls device of a listed user joins externally from the tree mls-rs made.
    let bob3 = om_device("mimi://b.example/d/bob/3");
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, out) = bob3.join_external(&room_uri(), &gi, &tree, None).unwrap();
    room.join_external(Member::Om(bob3, r), out.bundle).unwrap();
    room.assert_agree();
    room.everyone_sends("after the openmls external join");

    // Dan is not listed (a private group): refused from either library, nothing changes.
    let epoch = room.hub.epoch();
    let dan = rs_device("mimi://c.example/d/dan/1");
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, bundle) = dan.join_external(&room_uri(), &gi, &tree, &[]).unwrap();
    let rs = room.join_external(Member::Rs(dan, r), bundle).unwrap_err();
    let dan = om_device("mimi://c.example/d/dan/2");
    let (r, out) = dan.join_external(&room_uri(), &gi, &tree, None).unwrap();
    let om = room
        .join_external(Member::Om(dan, r), out.bundle)
        .unwrap_err();
    assert_eq!(
        std::mem::discriminant(&rs),
        std::mem::discriminant(&om),
        "{rs:?} / {om:?}"
    );
    assert_eq!(rs.to_string(), om.to_string());
    assert!(rs.to_string().contains("not an active participant"), "{rs}");
    assert_eq!(room.hub.epoch(), epoch);
    room.assert_agree();
}

/// `ROOM-resync`, the refused half: an external commit may remove only the joiner's own old
/// leaf (RFC 9420 §12.4.3.2). openmls cannot build one that removes another leaf; mls-rs can
/// (`join_external_replacing`). Bob's second device joining with a Remove of Bob's first
/// device (another client, even of the same user) is refused and changes nothing; with the
/// conformance fault set, the same commit is accepted and the first device is gone.
#[test]
fn an_external_commit_removing_another_client_is_refused() {
    let mut room = alice_adds_mlsrs_bob();
    let epoch = room.hub.epoch();
    let bob1 = ClientUri::parse("mimi://b.example/d/bob/1").unwrap();
    let bob2 = rs_device("mimi://b.example/d/bob/2");
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, bundle) = bob2
        .join_external_replacing(&room_uri(), &gi, &tree, &[], &bob1)
        .unwrap();
    let e = room
        .join_external(Member::Rs(bob2, r), bundle.clone())
        .unwrap_err();
    assert!(
        matches!(e, mimi_room::hub::UpdateRejection::InvalidProposal { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("ROOM-resync"), "{e}");
    assert_eq!(room.hub.epoch(), epoch);
    assert!(room.hub.clients().contains(&bob1));
    room.assert_agree();

    // A client with no leaf cannot be named.
    let bob3 = rs_device("mimi://b.example/d/bob/3");
    let nobody = ClientUri::parse("mimi://b.example/d/bob/9").unwrap();
    let Err(err) = bob3.join_external_replacing(&room_uri(), &gi, &tree, &[], &nobody) else {
        panic!("a commit removing a client with no leaf")
    };
    assert!(err.to_string().contains("has no leaf"), "{err}");

    // The same commit with `[faults] external_commit_removes_any_leaf`: accepted.
    room.hub.fault_external_commit_removes_any_leaf = true;
    let bob2 = rs_device("mimi://b.example/d/bob/2");
    let (gi, tree) = room.hub.group_info_for_join().unwrap();
    let (r, bundle) = bob2
        .join_external_replacing(&room_uri(), &gi, &tree, &[], &bob1)
        .unwrap();
    room.hub.handle_update(&bundle).unwrap();
    assert_eq!(room.hub.epoch(), epoch + 1);
    assert!(!room.hub.clients().contains(&bob1));
    assert_eq!(r.epoch(), epoch + 1);
}

/// `ROOM-late-application` on mls-rs: a message an openmls member sent in epoch 1 and the hub
/// accepted before a commit still decrypts on the mls-rs device that has already processed
/// that commit (mls-rs' `prior_epoch` store); once the group has been saved to this crate's
/// `Storage` (which keeps `PAST_EPOCHS` = 4 epochs), one of an epoch more than that back is an
/// error ("Epoch not found"), never a silent drop. Unsaved, mls-rs keeps every prior epoch
/// in memory (the CLI saves after every call).
#[test]
fn mlsrs_reads_a_late_message_of_a_past_epoch() {
    let mut room = alice_adds_mlsrs_bob();
    let late = room.members[0].send(b"sent in epoch 1");
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r.commit_plan(d, CommitPlan::default()).unwrap();
    room.commit(0, out.bundle).unwrap();
    assert_eq!(room.members[1].epoch(), 2);
    let (sender, content) = room.members[1].receive(&late);
    assert_eq!(sender, room.members[0].client());
    assert_eq!(content, b"sent in epoch 1");

    let too_late = room.members[0].send(b"sent in epoch 2");
    for _ in 0..5 {
        let Member::Om(d, r) = &mut room.members[0] else {
            unreachable!()
        };
        let out = r.commit_plan(d, CommitPlan::default()).unwrap();
        room.commit(0, out.bundle).unwrap();
        // As the CLI does after every operation: the group goes to the device's storage,
        // which keeps the last PAST_EPOCHS epochs.
        let Member::Rs(_, bob) = &mut room.members[1] else {
            unreachable!()
        };
        bob.save().unwrap();
    }
    room.assert_agree();
    let Member::Rs(_, bob) = &mut room.members[1] else {
        unreachable!()
    };
    let e = bob.process(&too_late).unwrap_err();
    assert!(e.to_string().contains("Epoch not found"), "{e}");
}
