//! The device's state file: MLS state survives a reopen and later operations are saved as
//! diffs; history and settings persist.

use mimi_client::store::{DeviceStore, StoreError, StoredMessage};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider;
use openmls_traits::types::SignatureScheme;
use std::path::PathBuf;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// A test's directory, removed when dropped (also when the test panics).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_file(name: &str) -> (PathBuf, Cleanup) {
    let dir = std::env::temp_dir().join(format!("mimi-client-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    (dir.join("device.sqlite"), Cleanup(dir))
}

#[tokio::test]
async fn mls_state_survives_reopen_and_diffs_are_saved() {
    let (path, _cleanup) = temp_file("mls");
    let group_id;
    let signer_public;
    {
        let store = DeviceStore::open(&path).await.unwrap();
        let provider = OpenMlsRustCrypto::default();
        let mut baseline = store.load_mls(provider.storage()).await.unwrap();
        assert!(baseline.is_empty());
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
        signer.store(provider.storage()).unwrap();
        signer_public = signer.to_public_vec();
        let cred = CredentialWithKey {
            credential: BasicCredential::new(b"mimi://a.example/d/alice/1".to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        let cfg = MlsGroupCreateConfig::builder().ciphersuite(CS).build();
        let group = MlsGroup::new(&provider, &signer, &cfg, cred).unwrap();
        group_id = group.group_id().clone();
        let written = store
            .save_mls(provider.storage(), &mut baseline)
            .await
            .unwrap();
        assert!(written > 0);
        // Nothing changed: nothing written.
        assert_eq!(
            store
                .save_mls(provider.storage(), &mut baseline)
                .await
                .unwrap(),
            0
        );
        store.close().await;
    }
    {
        let store = DeviceStore::open(&path).await.unwrap();
        let provider = OpenMlsRustCrypto::default();
        let mut baseline = store.load_mls(provider.storage()).await.unwrap();
        let mut group = MlsGroup::load(provider.storage(), &group_id)
            .unwrap()
            .unwrap();
        assert_eq!(group.epoch().as_u64(), 0);
        let signer =
            SignatureKeyPair::read(provider.storage(), &signer_public, SignatureScheme::ED25519)
                .unwrap();
        group
            .self_update(&provider, &signer, LeafNodeParameters::default())
            .unwrap();
        group.merge_pending_commit(&provider).unwrap();
        let written = store
            .save_mls(provider.storage(), &mut baseline)
            .await
            .unwrap();
        assert!(written > 0);
        store.close().await;
    }
    let store = DeviceStore::open(&path).await.unwrap();
    let provider = OpenMlsRustCrypto::default();
    store.load_mls(provider.storage()).await.unwrap();
    let group = MlsGroup::load(provider.storage(), &group_id)
        .unwrap()
        .unwrap();
    assert_eq!(group.epoch().as_u64(), 1, "the second operation was saved");
}

#[tokio::test]
async fn history_keeps_order_and_drops_repeated_ids_and_meta_persists() {
    let (path, _cleanup) = temp_file("history");
    let store = DeviceStore::open(&path).await.unwrap();
    let m = |n: u8| StoredMessage {
        id: [n; 32],
        sender: format!("mimi://b.example/u/{n}"),
        timestamp_ms: 1000 + u64::from(n),
        content: vec![n],
    };
    assert!(store.add_received("room1", &m(3)).await.unwrap());
    assert!(store.add_received("room1", &m(1)).await.unwrap());
    assert!(
        !store.add_received("room1", &m(3)).await.unwrap(),
        "repeated ID discarded"
    );
    assert!(
        store.add_received("room2", &m(3)).await.unwrap(),
        "IDs are per room"
    );
    let h = store.history("room1").await.unwrap();
    assert_eq!(h, [m(3), m(1)]);
    store.set_meta("home", "127.0.0.1:4433").await.unwrap();
    store.set_meta("home", "127.0.0.1:4434").await.unwrap();
    store.close().await;
    let store = DeviceStore::open(&path).await.unwrap();
    assert_eq!(
        store.meta("home").await.unwrap().as_deref(),
        Some("127.0.0.1:4434")
    );
    assert_eq!(store.meta("nothing").await.unwrap(), None);
    assert_eq!(store.history("room1").await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_file_from_a_newer_mimi_is_refused() {
    let (path, _cleanup) = temp_file("newer");
    let store = DeviceStore::open(&path).await.unwrap();
    store.set_meta("schema_version", "99").await.unwrap();
    store.close().await;
    match DeviceStore::open(&path).await {
        Err(e @ StoreError::NewerSchema { found: 99 }) => {
            assert!(e.to_string().contains("upgrade mimi"));
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("opened a newer file"),
    }
}
