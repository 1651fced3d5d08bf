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
    let resp = GroupInfoResponse::signed_success(
        room,
        GroupInfoSuccess {
            cipher_suite: SUITE,
            hub_sender: crate::fixture::mls(&o.external_sender),
            encrypted_groupinfo_and_tree: HpkeCiphertext {
                kem_output: vec![1; 32],
                ciphertext: vec![2; 40],
            },
            signature: vec![],
        },
        &o.alice_signer,
    )
    .unwrap();
    let resp = GroupInfoResponse::decode(&resp.encode()).unwrap();
    resp.verify(&crypto).unwrap();
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
