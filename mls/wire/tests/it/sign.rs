use crate::fixture::{SUITE, objects};
use mimi_wire::codec::Body;
use mimi_wire::common::RatchetTreeOption;
use mimi_wire::group_info::{GROUP_INFO_ENCRYPTION_LABEL, GroupInfoRatchetTreeTbe};
use mimi_wire::key_material::{KEY_MATERIAL_REQUEST_LABEL, KeyMaterialRequest};
use mimi_wire::sign::{CryptoError, decrypt_with_label, encrypt_with_label, verify_with_label};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{Ciphersuite, SignatureScheme};

#[test]
fn wire_sign_key_material_request_signature_verifies_and_tampering_fails() {
    let (_, _, _, bytes) = crate::bodies::samples()
        .into_iter()
        .find(|s| s.0 == "key-material-request")
        .unwrap();
    let req = KeyMaterialRequest::decode(&bytes).unwrap();
    let crypto = RustCrypto::default();
    let key = &req.tbs.requester_signature_key;
    verify_with_label(
        &crypto,
        SignatureScheme::ED25519,
        key,
        KEY_MATERIAL_REQUEST_LABEL,
        &req.tbs.encode(),
        &req.signature,
    )
    .unwrap();
    // Another label, or another room, does not verify.
    assert!(matches!(
        verify_with_label(
            &crypto,
            SignatureScheme::ED25519,
            key,
            "GroupInfoRequestTBS",
            &req.tbs.encode(),
            &req.signature
        ),
        Err(CryptoError::BadSignature { .. })
    ));
    let mut other = req.tbs.clone();
    other.room_id = mimi_wire::id::RoomUri::parse("mimi://a.example/r/other").unwrap();
    assert!(
        verify_with_label(
            &crypto,
            SignatureScheme::ED25519,
            key,
            KEY_MATERIAL_REQUEST_LABEL,
            &other.encode(),
            &req.signature
        )
        .is_err()
    );
}

#[test]
fn wire_5_6_encrypt_with_label_round_trips_the_group_info() {
    let o = objects();
    let crypto = RustCrypto::default();
    let cs = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let kp = crypto
        .derive_hpke_keypair(cs.hpke_config(), &[7u8; 32])
        .unwrap();
    let tbe = GroupInfoRatchetTreeTbe {
        group_info: crate::fixture::mls(&o.group_info),
        ratchet_tree: RatchetTreeOption::Full(crate::fixture::mls(&o.ratchet_tree)),
        pending_proposals: vec![],
    };
    let room = b"mimi://a.example/r/clubhouse";
    let ct = encrypt_with_label(
        &crypto,
        SUITE,
        &kp.public,
        GROUP_INFO_ENCRYPTION_LABEL,
        room,
        &tbe.encode(),
    )
    .unwrap();
    let pt = decrypt_with_label(
        &crypto,
        SUITE,
        &kp.private,
        GROUP_INFO_ENCRYPTION_LABEL,
        room,
        &ct,
    )
    .unwrap();
    assert_eq!(GroupInfoRatchetTreeTbe::decode(&pt).unwrap(), tbe);
    // Another room as context does not decrypt.
    assert!(
        decrypt_with_label(
            &crypto,
            SUITE,
            &kp.private,
            GROUP_INFO_ENCRYPTION_LABEL,
            b"mimi://a.example/r/x",
            &ct
        )
        .is_err()
    );
    assert!(matches!(
        encrypt_with_label(
            &crypto,
            mimi_wire::common::CipherSuite(0x7777),
            &kp.public,
            "x",
            b"",
            b""
        ),
        Err(CryptoError::UnsupportedSuite(0x7777))
    ));
}

#[test]
fn wire_5_6_signed_group_info_exchange() {
    use mimi_wire::common::HpkeCiphertext;
    use mimi_wire::group_info::{
        GroupInfoRequest, GroupInfoRequestTbs, GroupInfoResponse, GroupInfoSuccess,
    };
    let o = objects();
    let crypto = RustCrypto::default();
    let req = GroupInfoRequest::sign(
        GroupInfoRequestTbs {
            cipher_suite: SUITE,
            requesting_signature_key: o.alice_signer.to_public_vec(),
            requesting_credential: crate::fixture::mls(&o.credential),
            group_info_public_key: vec![1; 32],
            joining_code: b"code".to_vec(),
        },
        &o.alice_signer,
    )
    .unwrap();
    let req = GroupInfoRequest::decode(&req.encode()).unwrap();
    req.verify(&crypto).unwrap();
    let mut forged = req.clone();
    forged.tbs.joining_code = b"other".to_vec();
    assert!(forged.verify(&crypto).is_err());

    let room = mimi_wire::id::RoomUri::parse("mimi://a.example/r/clubhouse").unwrap();
    let success = GroupInfoSuccess {
        cipher_suite: SUITE,
        hub_sender: crate::fixture::mls(&o.external_sender),
        encrypted_groupinfo_and_tree: HpkeCiphertext {
            kem_output: vec![1; 32],
            ciphertext: vec![2; 40],
        },
        signature: vec![],
    };
    let resp =
        GroupInfoResponse::signed_success(room.clone(), success.clone(), &o.hub_signer).unwrap();
    let resp = GroupInfoResponse::decode(&resp.encode()).unwrap();
    resp.verify(&crypto).unwrap();
    // Signed by a key other than hub_sender's: refused.
    let other = GroupInfoResponse::signed_success(room, success, &o.alice_signer).unwrap();
    assert!(matches!(
        other.verify(&crypto),
        Err(CryptoError::BadSignature { .. })
    ));
    let mut forged = resp.clone();
    forged.room_id = mimi_wire::id::RoomUri::parse("mimi://a.example/r/other").unwrap();
    assert!(forged.verify(&crypto).is_err());
}

#[test]
fn wire_5_4_1_frank_signature() {
    use mimi_wire::common::Frank;
    use mimi_wire::sign::{sign_frank, verify_frank};
    use mimi_wire::submit::ServerFrankingContext;
    let o = objects();
    let crypto = RustCrypto::default();
    let ctx = ServerFrankingContext {
        sender_uri: mimi_wire::id::MimiUri::parse("mimi://b.example/u/bob").unwrap(),
        room_uri: mimi_wire::id::RoomUri::parse("mimi://a.example/r/clubhouse").unwrap(),
        accepted_timestamp: 1_700_000_000_000,
    };
    let server_frank = [9u8; 32];
    let frank = Frank {
        server_frank,
        franking_signature_ciphersuite: SUITE,
        franking_integrity_signature: sign_frank(&o.alice_signer, &server_frank, SUITE, &ctx)
            .unwrap(),
    };
    verify_frank(&crypto, &o.alice_signer.to_public_vec(), &frank, &ctx).unwrap();
    let later = ServerFrankingContext {
        accepted_timestamp: 1,
        ..ctx
    };
    assert!(verify_frank(&crypto, &o.alice_signer.to_public_vec(), &frank, &later).is_err());
}

/// RFC 9420 crypto-basics vectors (mlswg/mls-implementations, copied into `data/`): our
/// labelled constructions give the same bytes as every other MLS implementation
/// (`WIRE-sign-kat`).
#[test]
fn wire_sign_kat_rfc9420_sign_and_encrypt_with_label() {
    use openmls_basic_credential::SignatureKeyPair;
    let text = include_str!("data/crypto-basics.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let crypto = RustCrypto::default();
    // priv/pub are TLS `opaque<V>`: drop the varint length.
    let opaque = |v: &serde_json::Value| {
        let b = hex::decode(v.as_str().unwrap()).unwrap();
        let skip = if b[0] & 0xc0 == 0x40 { 2 } else { 1 };
        b[skip..].to_vec()
    };
    let bytes = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let suite_id = v["cipher_suite"].as_u64().unwrap() as u16;
        let cs = mimi_wire::common::CipherSuite(suite_id);
        let scheme = mimi_wire::sign::suite(cs).unwrap().signature_algorithm();

        let s = &v["sign_with_label"];
        let (label, content, sig) = (
            s["label"].as_str().unwrap(),
            bytes(&s["content"]),
            bytes(&s["signature"]),
        );
        verify_with_label(&crypto, scheme, &opaque(&s["pub"]), label, &content, &sig)
            .unwrap_or_else(|e| panic!("suite {suite_id}: {e}"));
        let mut other = content.clone();
        other[0] ^= 1;
        assert!(
            verify_with_label(&crypto, scheme, &opaque(&s["pub"]), label, &other, &sig).is_err()
        );
        if scheme == SignatureScheme::ED25519 {
            // Ed25519 is deterministic: our SignWithLabel yields the published signature.
            let signer = SignatureKeyPair::from_raw(scheme, opaque(&s["priv"]), opaque(&s["pub"]));
            let ours = mimi_wire::sign::sign_with_label(&signer, label, &content).unwrap();
            assert_eq!(ours, sig, "suite {suite_id}");
        }

        let e = &v["encrypt_with_label"];
        let ct = mimi_wire::common::HpkeCiphertext {
            kem_output: bytes(&e["kem_output"]),
            ciphertext: bytes(&e["ciphertext"]),
        };
        let label = e["label"].as_str().unwrap();
        let pt = decrypt_with_label(
            &crypto,
            cs,
            &opaque(&e["priv"]),
            label,
            &bytes(&e["context"]),
            &ct,
        )
        .unwrap_or_else(|e| panic!("suite {suite_id}: {e}"));
        assert_eq!(pt, bytes(&e["plaintext"]), "suite {suite_id}");
        // And what we encrypt to the published key, the published private key opens.
        let again = encrypt_with_label(
            &crypto,
            cs,
            &opaque(&e["pub"]),
            label,
            &bytes(&e["context"]),
            &pt,
        )
        .unwrap();
        let back = decrypt_with_label(
            &crypto,
            cs,
            &opaque(&e["priv"]),
            label,
            &bytes(&e["context"]),
            &again,
        )
        .unwrap();
        assert_eq!(back, pt);
    }
}

/// The signed bytes of the GroupInfo exchange follow the draft's TBS structs
/// (`WIRE-5.6-joining-code`, `WIRE-5.6-response-tbs`).
#[test]
fn wire_5_6_tbs_layouts() {
    use mimi_wire::codec::Body;
    use mimi_wire::group_info::{GroupInfoRequestTbs, GroupInfoResponse, GroupInfoSuccess};
    let o = objects();
    let mut tbs = GroupInfoRequestTbs {
        cipher_suite: SUITE,
        requesting_signature_key: vec![0xaa; 32],
        requesting_credential: crate::fixture::mls(&o.credential),
        group_info_public_key: vec![0xbb; 32],
        joining_code: vec![],
    };
    let mut prefix = vec![1u8, 0, 1, 32];
    prefix.extend([0xaa; 32]);
    prefix.extend(&o.credential);
    prefix.push(32);
    prefix.extend([0xbb; 32]);
    // No joining code: `optional` absent in the TBS, an empty vector in the message.
    assert_eq!(tbs.encode(), [prefix.clone(), vec![0]].concat());
    tbs.joining_code = b"abc".to_vec();
    assert_eq!(
        tbs.encode(),
        [prefix.clone(), vec![1, 3, b'a', b'b', b'c']].concat()
    );
    let req = mimi_wire::group_info::GroupInfoRequest {
        tbs,
        signature: vec![0xcc],
    };
    assert_eq!(
        req.encode(),
        [prefix, vec![3, b'a', b'b', b'c', 1, 0xcc]].concat()
    );

    let room = mimi_wire::id::RoomUri::parse("mimi://a.example/r/x").unwrap();
    let s = GroupInfoSuccess {
        cipher_suite: SUITE,
        hub_sender: crate::fixture::mls(&o.external_sender),
        encrypted_groupinfo_and_tree: mimi_wire::common::HpkeCiphertext {
            kem_output: vec![0xdd],
            ciphertext: vec![0xee],
        },
        signature: vec![0xff],
    };
    let mut expected = vec![1u8, 20];
    expected.extend(b"mimi://a.example/r/x");
    expected.extend([1, 0, 1]); // status success, cipher suite 1
    expected.extend(&o.external_sender);
    expected.extend([1, 0xdd, 1, 0xee]);
    assert_eq!(GroupInfoResponse::tbs(&room, &s), expected);
}

/// HMAC-SHA256 against RFC 4231 (test cases 1, 2 and 6), and the franking HMACs of §5.4.1
/// built on it (`WIRE-5.4.1-hmac`).
#[test]
fn wire_5_4_1_franking_hmacs() {
    use mimi_wire::franking::{FrankAad, franking_tag, hmac_sha256, server_frank};
    let cases: [(&[u8], &[u8], &str); 3] = [
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ];
    for (key, data, mac) in cases {
        assert_eq!(hex::encode(hmac_sha256(key, data)), mac);
    }
    let salt = [7u8; 16];
    let tag = franking_tag(&salt, b"application data");
    assert_eq!(tag, hmac_sha256(&salt, b"application data"));
    let ctx = crate::bodies::franking_context("mimi://b.example/u/alice", 1_700_000_000_456);
    let frank = server_frank(b"hub key", &tag, &ctx);
    assert_eq!(
        frank,
        hmac_sha256(b"hub key", &[tag.as_slice(), &ctx.encode()].concat())
    );
    let aad = FrankAad { franking_tag: tag };
    use mimi_wire::codec::Body;
    assert_eq!(aad.encode(), tag);
    assert_eq!(FrankAad::decode(&tag).unwrap(), aad);
    assert!(FrankAad::decode(&tag[..31]).is_err());
}

/// WIRE-5.4.1-safe-aad: the SafeAAD prefix of `authenticated_data` and the FrankAAD in it.
#[test]
fn wire_5_4_1_safe_aad_and_frank_aad() {
    use mimi_wire::franking::{
        FRANK_AAD, FrankAad, SafeAadItem, components_list, frank_aad_of, read_safe_aad,
    };
    let tag = [0x5au8; 32];
    // aad_items<V> = [ {0x0020, opaque<V> 32 octets} ] (35 octets), then the app's own AAD.
    let mut aad = vec![35, 0x00, 0x20, 32];
    aad.extend_from_slice(&tag);
    aad.extend_from_slice(b"tail");
    let (items, used) = read_safe_aad(&aad).unwrap();
    assert_eq!(used, 36);
    assert_eq!(
        items,
        vec![SafeAadItem {
            component_id: FRANK_AAD,
            data: tag.to_vec()
        }]
    );
    assert_eq!(
        frank_aad_of(&aad).unwrap(),
        Some(FrankAad { franking_tag: tag })
    );
    // No AAD, or only other items: no FrankAAD.
    assert_eq!(frank_aad_of(&[]).unwrap(), None);
    assert_eq!(frank_aad_of(&[4, 0x00, 0x30, 1, 9]).unwrap(), None);
    // Unsorted or repeated items, truncation, a FrankAAD of the wrong size: errors.
    assert!(read_safe_aad(&[8, 0x00, 0x30, 1, 9, 0x00, 0x20, 1, 9]).is_err());
    assert!(read_safe_aad(&[8, 0x00, 0x20, 1, 9, 0x00, 0x20, 1, 9]).is_err());
    assert!(read_safe_aad(&aad[..20]).is_err());
    assert!(frank_aad_of(&[4, 0x00, 0x20, 1, 9]).is_err());
    // ComponentsList (the value of the safe_aad component).
    assert_eq!(components_list(&[FRANK_AAD]), vec![2, 0x00, 0x20]);
}
