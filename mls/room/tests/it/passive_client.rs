//! Hub follow-along against the public MLS vectors (`ROOM-hub-follow-vectors`): mlswg
//! `passive-client-handling-commit.json` (copied to `interop-tests/vectors/mls/`, source noted
//! there). A passive member joins from the vector's Welcome; a keyless `PublicGroup`, as the
//! hub keeps it, is bootstrapped from that member's GroupInfo and tree and then driven through
//! the same proposals and commits. At every epoch both must agree on epoch, tree hash and the
//! whole GroupContext, and the member must reach the vector's epoch authenticator.

use mimi_room::roster::{Applied, Roster};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::schedule::psk::PreSharedKeyId;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{MemoryStorage, OpenMlsRustCrypto, RustCrypto};
use openmls_traits::OpenMlsProvider;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::storage::{CURRENT_VERSION, StorageProvider, traits};
use openmls_traits::types::HpkePrivateKey;
use serde::{Deserialize, Serialize};

use crate::passive_vectors::Vector;

/// The storage form of an HPKE key pair for a leaf (openmls keeps its own type crate-private;
/// the storage trait only needs the serde shape).
#[derive(Serialize, Deserialize)]
struct LeafKeyPair {
    public_key: serde_json::Value,
    private_key: serde_json::Value,
}
impl traits::HpkeKeyPair<CURRENT_VERSION> for LeafKeyPair {}
impl openmls_traits::storage::Entity<CURRENT_VERSION> for LeafKeyPair {}

fn mls_message(bytes: &[u8]) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(bytes).unwrap()
}

/// Puts the vector's KeyPackage and private keys into the member's storage, as if the member
/// had generated them.
fn inject_key_package(provider: &OpenMlsRustCrypto, v: &Vector, cs: Ciphersuite) -> KeyPackage {
    let MlsMessageBodyIn::KeyPackage(kp_in) = mls_message(&v.key_package).extract() else {
        panic!("not a KeyPackage")
    };
    let kp = kp_in
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .unwrap();
    // A bundle of the right shape, then the vector's values in it.
    let signer = SignatureKeyPair::new(cs.signature_algorithm()).unwrap();
    let template = KeyPackage::builder()
        .build(
            cs,
            provider,
            &signer,
            CredentialWithKey {
                credential: BasicCredential::new(b"template".to_vec()).into(),
                signature_key: signer.to_public_vec().into(),
            },
        )
        .unwrap();
    let private_encryption_key = serde_json::json!({
        "key": serde_json::to_value(HpkePrivateKey::from(v.encryption_priv.clone())).unwrap()
    });
    let mut bundle = serde_json::to_value(&template).unwrap();
    bundle["key_package"] = serde_json::to_value(&kp).unwrap();
    bundle["private_init_key"] =
        serde_json::to_value(HpkePrivateKey::from(v.init_priv.clone())).unwrap();
    bundle["private_encryption_key"] = private_encryption_key.clone();
    let bundle: KeyPackageBundle = serde_json::from_value(bundle).unwrap();
    let storage = provider.storage();
    storage
        .write_key_package(&kp.hash_ref(provider.crypto()).unwrap(), &bundle)
        .unwrap();
    let public_key = kp.leaf_node().encryption_key();
    let pair = LeafKeyPair {
        public_key: serde_json::to_value(public_key).unwrap(),
        private_key: private_encryption_key,
    };
    storage
        .write_encryption_key_pair(public_key, &pair)
        .unwrap();
    kp
}

fn public_message(bytes: &[u8]) -> ProtocolMessage {
    mls_message(bytes).try_into_protocol_message().unwrap()
}

/// The roster of the hub's tree as it is now.
fn roster_of(hub: &PublicGroup, suite: u16) -> Roster {
    let tree = hub.export_ratchet_tree().tls_serialize_detached().unwrap();
    Roster::from_tree(suite, None, &tree).unwrap()
}

/// Runs one vector; returns the number of epochs the hub followed and whether both refused
/// a commit.
fn follow(v: &Vector) -> (usize, bool) {
    let cs = Ciphersuite::try_from(v.cipher_suite).unwrap();
    let provider = OpenMlsRustCrypto::default();
    for psk in &v.external_psks {
        PreSharedKeyId::external(psk.psk_id.clone(), vec![])
            .store(&provider, &psk.psk)
            .unwrap();
    }
    let kp = inject_key_package(&provider, v, cs);
    let tree = v
        .ratchet_tree
        .as_ref()
        .map(|t| RatchetTreeIn::tls_deserialize_exact(hex::decode(t).unwrap()).unwrap());
    let MlsMessageBodyIn::Welcome(welcome) = mls_message(&v.welcome).extract() else {
        panic!("not a Welcome")
    };
    let cfg = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .number_of_resumption_psks(16)
        .build();
    // The vectors' leaves expired in 2025: lifetimes are not what is tested here.
    let mut join = StagedWelcome::build_from_welcome(&provider, &cfg, welcome)
        .unwrap()
        .skip_lifetime_validation();
    if let Some(t) = tree {
        join = join.with_ratchet_tree(t);
    }
    let mut member = join.build().unwrap().into_group(&provider).unwrap();
    assert_eq!(
        member.epoch_authenticator().as_slice(),
        v.initial_epoch_authenticator
    );

    // The hub: bootstrapped from the member's GroupInfo and tree.
    let signer = SignatureKeyPair::from_raw(
        cs.signature_algorithm(),
        v.signature_priv.clone(),
        kp.leaf_node().signature_key().as_slice().to_vec(),
    );
    let gi = member
        .export_group_info(provider.crypto(), &signer, false)
        .unwrap()
        .tls_serialize_detached()
        .unwrap();
    let MlsMessageBodyIn::GroupInfo(gi) = mls_message(&gi).extract() else {
        panic!("not a GroupInfo")
    };
    let tree = member
        .export_ratchet_tree()
        .tls_serialize_detached()
        .unwrap();
    let tree = RatchetTreeIn::tls_deserialize_exact(tree).unwrap();
    let (hub_crypto, hub_storage) = (RustCrypto::default(), MemoryStorage::default());
    // openmls checks leaf lifetimes when a PublicGroup is built from a GroupInfo, with no way
    // to skip it; where the vector's leaves have expired the hub starts from the member's
    // public state instead (what it would have stored had it followed from the start).
    let mut hub =
        match PublicGroup::from_external(&hub_crypto, &hub_storage, tree, gi, ProposalStore::new())
        {
            Ok((hub, _)) => hub,
            Err(e) => {
                assert!(format!("{e:?}").contains("Lifetime"), "{e:?}");
                PublicGroup::load(provider.storage(), member.group_id())
                    .unwrap()
                    .unwrap()
            }
        };
    assert_eq!(hub.group_context(), member.public_group().group_context());
    // ROOM-roster: a follower's roster, from the same tree, follows the same messages.
    let mut roster = Roster::from_tree(
        v.cipher_suite,
        Some(member.epoch().as_u64()),
        &member
            .export_ratchet_tree()
            .tls_serialize_detached()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(roster.leaves(), roster_of(&hub, v.cipher_suite).leaves());

    let mut followed = 0;
    for epoch in &v.epochs {
        for p in &epoch.proposals {
            let bytes = hex::decode(p).unwrap();
            assert_eq!(roster.apply(&bytes).unwrap(), Applied::Proposal);
            let processed = hub
                .process_message(&hub_crypto, public_message(&bytes))
                .unwrap();
            let ProcessedMessageContent::ProposalMessage(q) = processed.into_content() else {
                panic!("hub: not a proposal")
            };
            hub.add_proposal(&hub_storage, *q).unwrap();
            let processed = member
                .process_message(&provider, public_message(&bytes))
                .unwrap();
            let ProcessedMessageContent::ProposalMessage(q) = processed.into_content() else {
                panic!("member: not a proposal")
            };
            member
                .store_pending_proposal(provider.storage(), *q)
                .unwrap();
        }
        let hub_processed = hub.process_message(&hub_crypto, public_message(&epoch.commit));
        let member_processed = member.process_message(&provider, public_message(&epoch.commit));
        let (hub_processed, processed) = match (hub_processed, member_processed) {
            (Ok(h), Ok(m)) => (h, m),
            (Err(h), Err(m)) => {
                // Both refuse the same way (an expired KeyPackage in an Add): the hub agrees.
                eprintln!("both refuse: {h:?} / {m:?}");
                return (followed, true);
            }
            (h, m) => panic!("hub and member disagree: {h:?} / {m:?}"),
        };
        let ProcessedMessageContent::StagedCommitMessage(sc) = hub_processed.into_content() else {
            panic!("hub: not a commit")
        };
        hub.merge_commit(&hub_storage, *sc).unwrap();
        let applied = roster.apply(&epoch.commit).unwrap();
        assert!(matches!(applied, Applied::Commit(_)), "{applied:?}");
        assert_eq!(roster.epoch(), Some(hub.group_context().epoch().as_u64()));
        assert_eq!(
            roster.leaves(),
            roster_of(&hub, v.cipher_suite).leaves(),
            "roster leaves at epoch {}",
            hub.group_context().epoch().as_u64()
        );
        let ProcessedMessageContent::StagedCommitMessage(sc) = processed.into_content() else {
            panic!("member: not a commit")
        };
        member.merge_staged_commit(&provider, *sc).unwrap();

        assert_eq!(
            member.epoch_authenticator().as_slice(),
            epoch.epoch_authenticator
        );
        let mine = member.public_group().group_context();
        assert_eq!(hub.group_context().epoch(), mine.epoch());
        assert_eq!(hub.group_context().tree_hash(), mine.tree_hash());
        assert_eq!(hub.group_context(), mine);
        assert_eq!(
            hub.export_ratchet_tree(),
            member.export_ratchet_tree(),
            "same tree"
        );
        followed += 1;
    }
    (followed, false)
}

/// Follows every vector of a file with a suite RustCrypto implements; returns (cases, epochs).
fn follow_file(name: &str) -> (usize, usize) {
    let path = format!(
        "{}/../../interop-tests/vectors/mls/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let vectors: Vec<Vector> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let crypto = RustCrypto::default();
    let (mut cases, mut epochs) = (0, 0);
    for v in &vectors {
        let Ok(cs) = Ciphersuite::try_from(v.cipher_suite) else {
            continue;
        };
        if crypto.supports(cs).is_err() {
            continue;
        }
        let (n, refused) = follow(v);
        assert!(!refused, "a commit refused by both");
        epochs += n;
        cases += 1;
    }
    (cases, epochs)
}

#[test]
fn room_hub_follow_vectors_passive_client_handling_commit() {
    // 91 cases, 13 per suite; suites 1, 2 and 3 are those RustCrypto implements; 2 epochs each.
    assert_eq!(follow_file("passive-client-handling-commit.json"), (39, 78));
}

#[test]
fn room_hub_follow_vectors_passive_client_random() {
    // One case of suite 1: 200 epochs, 1,542 proposals.
    assert_eq!(follow_file("passive-client-random.json"), (1, 200));
}
