//! The inputs of the published vectors: real MLS objects from openmls (a group of Alice, the
//! hub-local user, that adds Bob, with handshakes as PublicMessage as MIMI requires), the
//! signature keys of Alice, Bob and the hub, and the HPKE ciphertext of the GroupInfo response.
//!
//! openmls and HPKE draw their randomness internally, so these are *captured* once
//! ([`capture`], `cargo test -p mimi-wire --test it -- --ignored capture_vector_inputs`) and
//! committed in `interop-tests/vectors/protocol/inputs/mls-inputs.json`. Everything else in the
//! vectors is a function of these inputs and fixed values (Ed25519 signatures are
//! deterministic), so regenerating the vectors gives the same bytes, and a test fails when the
//! committed vectors drift from the code.

use mimi_wire::Mls;
use mimi_wire::common::{CipherSuite, HpkeCiphertext};
use openmls::prelude::tls_codec::Serialize;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_traits::OpenMlsProvider;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::SignatureScheme;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

pub const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
pub const SUITE: CipherSuite = CipherSuite(1);

/// The fixed seed of the joiner's one-time HPKE key (GroupInfoRequest.groupInfoPublicKey):
/// `DeriveKeyPair(ikm)` of the suite's KEM.
pub const GROUP_INFO_HPKE_IKM: [u8; 32] = [0x47; 32];

/// The bytes of every MLS object the bodies carry, and the keys.
pub struct Objects {
    pub key_package: Vec<u8>,
    pub commit: Vec<u8>,
    pub welcome: Vec<u8>,
    pub group_info: Vec<u8>,
    pub ratchet_tree: Vec<u8>,
    pub app_message: Vec<u8>,
    pub proposal: Vec<u8>,
    pub welcome_message: Vec<u8>,
    /// Alice's credential.
    pub credential: Vec<u8>,
    /// Bob's credential.
    pub bob_credential: Vec<u8>,
    pub capabilities: Vec<u8>,
    pub required_capabilities: Vec<u8>,
    /// The hub (a.example) as ExternalSender.
    pub external_sender: Vec<u8>,
    pub alice_signer: SignatureKeyPair,
    pub bob_signer: SignatureKeyPair,
    pub hub_signer: SignatureKeyPair,
    /// `EncryptWithLabel` of the `group-info-tbe` vector to the key of [`GROUP_INFO_HPKE_IKM`].
    pub group_info_ciphertext: HpkeCiphertext,
}

fn cred(id: &str, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(id.as_bytes().to_vec()).into(),
        signature_key: signer.to_public_vec().into(),
    }
}

/// The joiner's one-time HPKE key pair `(private, public)`.
pub fn group_info_hpke_key() -> (Vec<u8>, Vec<u8>) {
    let kp = RustCrypto::default()
        .derive_hpke_keypair(CS.hpke_config(), &GROUP_INFO_HPKE_IKM)
        .unwrap();
    (kp.private.as_ref().to_vec(), kp.public)
}

/// Builds fresh MLS objects and keys (random). The ciphertext is left empty: it depends on the
/// vectors built from these objects.
pub fn capture() -> Objects {
    let alice = OpenMlsRustCrypto::default();
    let bob = OpenMlsRustCrypto::default();
    let alice_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    alice_signer.store(alice.storage()).unwrap();
    let bob_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    bob_signer.store(bob.storage()).unwrap();
    let hub_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let alice_cred = cred("mimi://a.example/d/alice/1", &alice_signer);
    let bob_cred = cred("mimi://b.example/d/bob/1", &bob_signer);

    let kp = KeyPackage::builder()
        .build(CS, &bob, &bob_signer, bob_cred.clone())
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
    let bob_credential = bob_cred.credential.tls_serialize_detached().unwrap();
    let capabilities = Capabilities::new(None, None, None, None, None)
        .tls_serialize_detached()
        .unwrap();
    let required_capabilities = RequiredCapabilitiesExtension::new(&[], &[], &[])
        .tls_serialize_detached()
        .unwrap();
    let external_sender = ExternalSender::new(
        hub_signer.to_public_vec().into(),
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
        bob_credential,
        capabilities,
        required_capabilities,
        external_sender,
        alice_signer,
        bob_signer,
        hub_signer,
        group_info_ciphertext: HpkeCiphertext {
            kem_output: vec![],
            ciphertext: vec![],
        },
    }
}

/// Where the captured inputs are committed.
pub fn inputs_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop-tests/vectors/protocol/inputs/mls-inputs.json")
}

/// The private key (openmls_basic_credential exposes it only through its serialisation:
/// `private<V>`, `public<V>`, `signature_scheme`).
fn private_key(k: &SignatureKeyPair) -> Vec<u8> {
    let bytes = k.tls_serialize_detached().unwrap();
    let mut r = mimi_wire::codec::Reader::new(&bytes, mimi_wire::Limits::DEFAULT);
    r.opaque(1024, "private").unwrap()
}

fn key_json(k: &SignatureKeyPair) -> Value {
    json!({
        "signature_scheme": "ed25519",
        "private_key": hex::encode(private_key(k)),
        "public_key": hex::encode(k.public()),
    })
}

/// The inputs as the committed JSON.
pub fn to_json(o: &Objects) -> Value {
    let h = hex::encode;
    json!({
        "description": "Captured inputs of the MIMI protocol vectors: MLS objects made by openmls 0.9.2 (cipher suite 1; Alice of a.example creates mimi://a.example/g/clubhouse and adds Bob of b.example, handshakes as PublicMessage), the Ed25519 keys of Alice, Bob and the hub, and the HPKE ciphertext of the GroupInfo response. Test keys only.",
        "keys": {
            "alice": key_json(&o.alice_signer),
            "bob": key_json(&o.bob_signer),
            "hub": key_json(&o.hub_signer),
        },
        "mls": {
            "key_package": h(&o.key_package),
            "commit": h(&o.commit),
            "welcome": h(&o.welcome),
            "group_info": h(&o.group_info),
            "ratchet_tree": h(&o.ratchet_tree),
            "app_message": h(&o.app_message),
            "proposal": h(&o.proposal),
            "welcome_message": h(&o.welcome_message),
            "credential": h(&o.credential),
            "bob_credential": h(&o.bob_credential),
            "capabilities": h(&o.capabilities),
            "required_capabilities": h(&o.required_capabilities),
            "external_sender": h(&o.external_sender),
        },
        "group_info_ciphertext": {
            "kem_output": h(&o.group_info_ciphertext.kem_output),
            "ciphertext": h(&o.group_info_ciphertext.ciphertext),
        },
    })
}

fn from_json(v: &Value) -> Objects {
    let b = |x: &Value| hex::decode(x.as_str().unwrap()).unwrap();
    let key = |who: &str| {
        let k = &v["keys"][who];
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            b(&k["private_key"]),
            b(&k["public_key"]),
        )
    };
    let m = &v["mls"];
    Objects {
        key_package: b(&m["key_package"]),
        commit: b(&m["commit"]),
        welcome: b(&m["welcome"]),
        group_info: b(&m["group_info"]),
        ratchet_tree: b(&m["ratchet_tree"]),
        app_message: b(&m["app_message"]),
        proposal: b(&m["proposal"]),
        welcome_message: b(&m["welcome_message"]),
        credential: b(&m["credential"]),
        bob_credential: b(&m["bob_credential"]),
        capabilities: b(&m["capabilities"]),
        required_capabilities: b(&m["required_capabilities"]),
        external_sender: b(&m["external_sender"]),
        alice_signer: key("alice"),
        bob_signer: key("bob"),
        hub_signer: key("hub"),
        group_info_ciphertext: HpkeCiphertext {
            kem_output: b(&v["group_info_ciphertext"]["kem_output"]),
            ciphertext: b(&v["group_info_ciphertext"]["ciphertext"]),
        },
    }
}

/// The committed inputs, read once per test run.
pub fn objects() -> &'static Objects {
    static O: OnceLock<Objects> = OnceLock::new();
    O.get_or_init(|| {
        let text = std::fs::read_to_string(inputs_path()).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run the ignored test capture_vector_inputs",
                inputs_path().display()
            )
        });
        from_json(&serde_json::from_str(&text).unwrap())
    })
}

pub fn mls<T: openmls::prelude::tls_codec::Deserialize>(b: &[u8]) -> Mls<T> {
    Mls::from_bytes(b.to_vec()).unwrap()
}
