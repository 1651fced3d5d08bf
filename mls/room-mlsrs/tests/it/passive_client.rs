//! The mlswg passive-client vectors (`interop-tests/vectors/mls/`, source noted there) through
//! mls-rs 0.57 as a passive client, with this crate's crypto provider
//! (`mls-rs-crypto-rustcrypto`), identity provider and MLS rules (`MimiRules`): join from the
//! vector's Welcome with the vector's KeyPackage and private keys, then per epoch the
//! by-reference proposals and the commit; the epoch authenticator must be the vector's after
//! the join and after every commit. (mimi-room runs the same files through openmls:
//! `mls/room/tests/it/passive_client.rs`.)

use mimi_room::codepoints::CodePoints;
use mimi_room_mlsrs::rules::MimiRules;
use mls_rs::error::MlsError;
use mls_rs::group::{ExportedTree, ReceivedMessage};
use mls_rs::identity::basic::BasicIdentityProvider;
use mls_rs::psk::ExternalPskId;
use mls_rs::storage_provider::KeyPackageData;
use mls_rs::time::MlsTime;
use mls_rs::{CipherSuite, CryptoProvider, KeyPackageStorage, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

#[path = "../../../room/tests/it/passive_vectors.rs"]
mod passive_vectors;
use passive_vectors::Vector;

/// The one KeyPackage of a vector, as if this client had generated it: mls-rs looks the
/// Welcome's `new_member` reference up here and takes the init and leaf HPKE private keys.
#[derive(Clone)]
struct VectorKeyPackage {
    reference: Vec<u8>,
    data: KeyPackageData,
}

impl KeyPackageStorage for VectorKeyPackage {
    type Error = std::convert::Infallible;

    fn delete(&mut self, _id: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn insert(&mut self, _id: Vec<u8>, _pkg: KeyPackageData) -> Result<(), Self::Error> {
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Self::Error> {
        Ok((id == self.reference.as_slice()).then(|| self.data.clone()))
    }
}

/// The passive client of a vector, joined from its Welcome at `time` (see [`follow`]).
fn join(
    v: &Vector,
    time: Option<MlsTime>,
) -> Result<mls_rs::Group<impl mls_rs::client_builder::MlsConfig>, MlsError> {
    let crypto = RustCryptoProvider::new();
    let suite = CipherSuite::from(v.cipher_suite);
    let cs = crypto.cipher_suite_provider(suite).unwrap();
    let key_package = MlsMessage::from_bytes(&v.key_package)
        .unwrap()
        .into_key_package()
        .expect("a KeyPackage");
    let reference = key_package.to_reference(&cs).unwrap().to_vec();
    let store = VectorKeyPackage {
        reference,
        data: KeyPackageData::new(
            // What mls-rs stores for its own KeyPackages: the KeyPackage struct's encoding.
            mls_rs::mls_rs_codec::MlsEncode::mls_encode_to_vec(&key_package).unwrap(),
            v.init_priv.clone().into(),
            v.encryption_priv.clone().into(),
            key_package.expiration().unwrap().seconds_since_epoch(),
        ),
    };
    let identity = key_package.signing_identity().clone();
    let mut builder = mls_rs::Client::builder()
        .crypto_provider(crypto)
        .identity_provider(BasicIdentityProvider::new())
        .mls_rules(MimiRules {
            codepoints: CodePoints::DRAFT,
        })
        .key_package_repo(store);
    for psk in &v.external_psks {
        builder = builder.psk(
            ExternalPskId::new(psk.psk_id.clone()),
            psk.psk.clone().into(),
        );
    }
    let client = builder
        .signing_identity(identity, v.signature_priv.clone().into(), suite)
        .build();
    let tree = v
        .ratchet_tree
        .as_ref()
        .map(|t| hex::decode(t).unwrap())
        .map(|t| ExportedTree::from_bytes(&t).unwrap().into_owned());
    let welcome = MlsMessage::from_bytes(&v.welcome).unwrap();
    client.join_group(tree, &welcome, time).map(|(g, _)| g)
}

/// Runs one vector; returns the number of epochs followed.
fn follow(v: &Vector) -> usize {
    // No time given (`None` here, and `process_incoming_message` rather than
    // `process_incoming_message_with_time` below): mls-rs then checks no leaf lifetime
    // (`ValidationContext::Add(None)`, `tree_kem/leaf_node_validator.rs`); the vectors' leaves
    // expired in 2025 (test `mlsrs_checks_vector_lifetimes_only_when_given_a_time`).
    let mut group = join(v, None).unwrap();
    assert_eq!(
        group.epoch_authenticator().unwrap().to_vec(),
        v.initial_epoch_authenticator,
        "suite {}: epoch authenticator after the join",
        v.cipher_suite
    );
    let mut followed = 0;
    for epoch in &v.epochs {
        for p in &epoch.proposals {
            let m = MlsMessage::from_bytes(&hex::decode(p).unwrap()).unwrap();
            let got = group.process_incoming_message(m).unwrap();
            assert!(matches!(got, ReceivedMessage::Proposal(_)), "{got:?}");
        }
        let m = MlsMessage::from_bytes(&epoch.commit).unwrap();
        let got = group.process_incoming_message(m).unwrap();
        assert!(matches!(got, ReceivedMessage::Commit(_)), "{got:?}");
        assert_eq!(
            group.epoch_authenticator().unwrap().to_vec(),
            epoch.epoch_authenticator,
            "suite {}: epoch authenticator at epoch {}",
            v.cipher_suite,
            group.current_epoch()
        );
        followed += 1;
    }
    followed
}

fn load(name: &str) -> Vec<Vector> {
    let path = format!(
        "{}/../../interop-tests/vectors/mls/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Follows every vector of a file whose suite the provider implements; returns the suites
/// followed, the cases and the epochs.
fn follow_file(name: &str) -> (Vec<u16>, usize, usize) {
    let vectors = load(name);
    let supported = RustCryptoProvider::new().supported_cipher_suites();
    let (mut suites, mut cases, mut epochs) = (Vec::new(), 0, 0);
    for v in &vectors {
        if !supported.contains(&CipherSuite::from(v.cipher_suite)) {
            continue;
        }
        epochs += follow(v);
        cases += 1;
        if !suites.contains(&v.cipher_suite) {
            suites.push(v.cipher_suite);
        }
    }
    suites.sort_unstable();
    (suites, cases, epochs)
}

#[test]
fn mlsrs_passive_client_handling_commit_vectors() {
    // 91 cases, 13 per suite 1–7; mls-rs-crypto-rustcrypto 0.23 implements suites 1, 2, 3
    // and 7 (not 4, 5, 6: X448 and P-521); 2 epochs each.
    assert_eq!(
        follow_file("passive-client-handling-commit.json"),
        (vec![1, 2, 3, 7], 52, 104)
    );
}

#[test]
fn mlsrs_passive_client_random_vectors() {
    // One case of suite 1: 200 epochs, 1,542 proposals.
    assert_eq!(follow_file("passive-client-random.json"), (vec![1], 1, 200));
}

/// The reason for joining without a time: given one (2026-01-01 00:00 UTC, fixed), mls-rs
/// checks the lifetimes of the Welcome's tree and refuses the vectors' expired leaves.
#[test]
fn mlsrs_checks_vector_lifetimes_only_when_given_a_time() {
    let vectors = load("passive-client-handling-commit.json");
    let v = vectors.iter().find(|v| v.cipher_suite == 1).unwrap();
    match join(v, Some(MlsTime::from(1_767_225_600))) {
        Err(MlsError::InvalidLifetime { not_after, .. }) => {
            assert!(not_after.seconds_since_epoch() < 1_767_225_600);
        }
        Err(e) => panic!("expected InvalidLifetime, got {e:?}"),
        Ok(_) => panic!("expected InvalidLifetime, the join succeeded"),
    }
    assert!(join(v, None).is_ok());
}
