//! The hub's integrity checks against a lying or impersonating committer: the GroupInfo
//! cross-check (DESIGN.md) and stable client identities.

use crate::flow::{alice_and_bob, assert_agree, room_uri};
use mimi_room::hub::{HubRoom, UpdateRejection};
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

/// ROOM-hub-entries: the hub's openmls state is kept as entries, the ratchet tree one per
/// node; after a commit only what it changed is to be written (not the other member's leaf),
/// and the head plus the stored entries restore the same room.
#[test]
fn room_hub_entries_commit_writes_only_what_changed_and_restores() {
    use mimi_wire::components::RoomMetaData;
    let (mut hub, mut alice, mut bob) = crate::flow::alice_and_bob();
    let leaf = |i: u32| {
        let mut k = b"t/l/".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        k
    };
    // The tree is split (openmls' TreeSync shape is the one the splitter knows).
    let keys: Vec<Vec<u8>> = hub.storage.entries().into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.contains(&leaf(0)) && keys.contains(&leaf(1)),
        "{keys:?}"
    );
    assert!(!keys.contains(&b"tw".to_vec()));
    // What the node stored so far.
    let mut stored: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
        hub.storage.entries().into_iter().collect();
    let _ = hub.persist();

    let out = alice
        .room
        .set_metadata(
            &alice.dev,
            RoomMetaData::named(crate::flow::room_uri(), "Renamed"),
        )
        .unwrap();
    crate::flow::commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    // A metadata change (no path) leaves the tree as it was: no tree entry is written.
    let p = hub.persist();
    let changed: Vec<&Vec<u8>> = p.changes.iter().map(|(k, _)| k).collect();
    assert!(
        changed
            .iter()
            .all(|k| !k.starts_with(b"t/") && k.as_slice() != b"t"),
        "{changed:?}"
    );
    assert!(changed.contains(&&b"ctx".to_vec()));
    for (k, v) in p.changes {
        match v {
            Some(v) => stored.insert(k, v),
            None => stored.remove(&k),
        };
    }
    // An Add writes the new leaf and what changed above it, not Bob's leaf.
    let cathy = crate::flow::device("mimi://c.example/d/cathy/1");
    let out = alice
        .room
        .add_users(
            &alice.dev,
            &[(
                mimi_wire::id::UserUri::parse("mimi://c.example/u/cathy").unwrap(),
                2,
            )],
            &[cathy.key_package().unwrap()],
        )
        .unwrap();
    crate::flow::commit(&mut hub, &mut alice, out.bundle, &mut [&mut bob]).unwrap();
    let p = hub.persist();
    let changed: Vec<&Vec<u8>> = p.changes.iter().map(|(k, _)| k).collect();
    assert!(changed.contains(&&leaf(2)), "the new leaf: {changed:?}");
    assert!(
        !changed.contains(&&leaf(1)),
        "Bob's leaf did not change: {changed:?}"
    );
    for (k, v) in p.changes {
        match v {
            Some(v) => stored.insert(k, v),
            None => stored.remove(&k),
        };
    }
    // A second persist has nothing new.
    assert!(hub.persist().changes.is_empty());
    let back = HubRoom::restore_from(&p.head, stored.into_iter().collect()).unwrap();
    assert_eq!(back.epoch(), hub.epoch());
    assert_eq!(back.group.group_context(), hub.group.group_context());
    assert_eq!(
        back.group.export_ratchet_tree(),
        hub.group.export_ratchet_tree()
    );
    assert_eq!(back.room_state(), hub.room_state());
    // A damaged entry is an error, not a panic.
    let mut bad: Vec<(Vec<u8>, Vec<u8>)> = hub.storage.entries();
    for (k, v) in &mut bad {
        if *k == leaf(1) {
            v.truncate(3);
        }
    }
    assert!(HubRoom::restore_from(&p.head, bad).is_err());
}

/// ROOM-hub-entries: a room stored before the entries layout (openmls' JSON storage in one
/// snapshot) still restores, and all of it is written again in the new layout.
#[test]
fn room_hub_entries_legacy_snapshot_restores_and_converts() {
    use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
    use openmls::prelude::{ProposalStore, PublicGroup};
    use sha2::Digest as _;
    let (hub, _alice, _bob) = crate::flow::alice_and_bob();
    let (gi, tree) = hub.group_info_for_join().unwrap();
    let (GroupInfoOption::Full(g), RatchetTreeOption::Full(t)) = (&gi, &tree) else {
        panic!("full GroupInfo and tree")
    };
    let memory = openmls_rust_crypto::MemoryStorage::default();
    PublicGroup::from_external(
        &openmls_rust_crypto::RustCrypto::default(),
        &memory,
        t.parse().unwrap(),
        g.parse().unwrap(),
        ProposalStore::new(),
    )
    .unwrap();
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = memory
        .values
        .read()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.sort();
    // The pre-entries layout: room, openmls' entries, GroupInfo, pending, links, grants, digest.
    let mut w = mimi_wire::codec::Writer::new();
    w.opaque(hub.room.as_str().as_bytes());
    w.vector(&entries, |w, (k, v)| {
        w.opaque(k);
        w.opaque(v);
    });
    gi.write(&mut w);
    for _ in 0..3 {
        w.vector(&[] as &[u8], |_, _| {});
    }
    let mut bytes = w.finish();
    let d = sha2::Sha256::digest(&bytes);
    bytes.extend_from_slice(&d);
    let back = HubRoom::restore(&bytes).unwrap();
    assert_eq!(back.epoch(), hub.epoch());
    assert_eq!(back.room_state(), hub.room_state());
    let p = back.persist();
    assert_eq!(
        p.changes.len(),
        hub.storage.entries().len(),
        "all entries are written"
    );
    let again = HubRoom::restore_from(
        &p.head,
        p.changes
            .into_iter()
            .map(|(k, v)| (k, v.unwrap()))
            .collect(),
    )
    .unwrap();
    assert_eq!(
        again.group.export_ratchet_tree(),
        hub.group.export_ratchet_tree()
    );
}
