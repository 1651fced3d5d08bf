//! Real MLS objects from openmls for the bodies: a group of Alice (hub-local) that adds Bob,
//! with handshakes as PublicMessage as MIMI requires.

use mimi_wire::Mls;
use mimi_wire::common::CipherSuite;
use openmls::prelude::tls_codec::Serialize;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider;
use openmls_traits::types::SignatureScheme;
use std::sync::OnceLock;

pub const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
pub const SUITE: CipherSuite = CipherSuite(1);

/// The bytes of every MLS object the bodies carry.
pub struct Objects {
    pub key_package: Vec<u8>,
    pub commit: Vec<u8>,
    pub welcome: Vec<u8>,
    pub group_info: Vec<u8>,
    pub ratchet_tree: Vec<u8>,
    pub app_message: Vec<u8>,
    pub proposal: Vec<u8>,
    pub welcome_message: Vec<u8>,
    pub credential: Vec<u8>,
    pub capabilities: Vec<u8>,
    pub required_capabilities: Vec<u8>,
    pub external_sender: Vec<u8>,
    pub alice_signer: SignatureKeyPair,
}

fn cred(id: &str, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(id.as_bytes().to_vec()).into(),
        signature_key: signer.to_public_vec().into(),
    }
}

fn build() -> Objects {
    let alice = OpenMlsRustCrypto::default();
    let bob = OpenMlsRustCrypto::default();
    let alice_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    alice_signer.store(alice.storage()).unwrap();
    let bob_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    bob_signer.store(bob.storage()).unwrap();
    let alice_cred = cred("mimi://a.example/d/alice/1", &alice_signer);
    let bob_cred = cred("mimi://b.example/d/bob/1", &bob_signer);

    let kp = KeyPackage::builder()
        .build(CS, &bob, &bob_signer, bob_cred)
        .unwrap();
    let key_package = kp.key_package().tls_serialize_detached().unwrap();

    let cfg = MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .build();
    let mut g = MlsGroup::new_with_group_id(
        &alice,
        &alice_signer,
        &cfg,
        GroupId::from_slice(b"mimi://a.example/g/clubhouse"),
        alice_cred.clone(),
    )
    .unwrap();
    let (commit, welcome, _) = g
        .add_members(&alice, &alice_signer, &[kp.key_package().clone()])
        .unwrap();
    g.merge_pending_commit(&alice).unwrap();
    let commit = commit.tls_serialize_detached().unwrap();
    let welcome_message = welcome.tls_serialize_detached().unwrap();
    // The Welcome struct is the MLSMessage without version and wire_format.
    let welcome_struct = welcome_message[4..].to_vec();
    let gi = g
        .export_group_info(alice.crypto(), &alice_signer, false)
        .unwrap()
        .tls_serialize_detached()
        .unwrap();
    let group_info = gi[4..].to_vec();
    let ratchet_tree = g.export_ratchet_tree().tls_serialize_detached().unwrap();
    let app_message = g
        .create_message(&alice, &alice_signer, b"hello")
        .unwrap()
        .tls_serialize_detached()
        .unwrap();
    let (proposal, _) = g
        .propose_self_update(&alice, &alice_signer, LeafNodeParameters::default())
        .unwrap();
    let proposal = proposal.tls_serialize_detached().unwrap();
    let credential = alice_cred.credential.tls_serialize_detached().unwrap();
    let capabilities = Capabilities::new(None, None, None, None, None)
        .tls_serialize_detached()
        .unwrap();
    let required_capabilities = RequiredCapabilitiesExtension::new(&[], &[], &[])
        .tls_serialize_detached()
        .unwrap();
    let external_sender = ExternalSender::new(
        alice_signer.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    )
    .tls_serialize_detached()
    .unwrap();
    Objects {
        key_package,
        commit,
        welcome: welcome_struct,
        group_info,
        ratchet_tree,
        app_message,
        proposal,
        welcome_message,
        credential,
        capabilities,
        required_capabilities,
        external_sender,
        alice_signer,
    }
}

/// Built once per test run.
pub fn objects() -> &'static Objects {
    static O: OnceLock<Objects> = OnceLock::new();
    O.get_or_init(build)
}

pub fn mls<T: openmls::prelude::tls_codec::Deserialize>(b: &[u8]) -> Mls<T> {
    Mls::from_bytes(b.to_vec()).unwrap()
}
