//! The published vectors (`interop-tests/vectors/protocol`, `WIRE-vectors`):
//! - the committed hex decodes to the stated fields and re-encodes byte-exact;
//! - the signatures and the encrypted GroupInfo they carry verify and decrypt (`checks`,
//!   `WIRE-vectors-checks`);
//! - the committed files are exactly what the generator makes from the captured inputs, so a
//!   change of the code that changes a vector fails here (`WIRE-vectors-drift`).
//!
//! Regenerate (same inputs, deterministic):
//! `cargo test -p mimi-wire --test it -- --ignored regenerate_vectors`.
//! New MLS objects and keys (then regenerate):
//! `cargo test -p mimi-wire --test it -- --ignored capture_vector_inputs`.

use crate::bodies::{SERVER_FRANK, decode_any, franking_context, group_info_tbe, samples};
use crate::fixture::{self, SUITE, group_info_hpke_key, objects};
use mimi_wire::codec::Body;
use mimi_wire::common::Frank;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::group_info::{
    GROUP_INFO_ENCRYPTION_LABEL, GROUP_INFO_REQUEST_LABEL, GROUP_INFO_RESPONSE_LABEL,
    GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoResponse,
};
use mimi_wire::id::MimiUri;
use mimi_wire::id::RoomUri;
use mimi_wire::key_material::{KEY_MATERIAL_REQUEST_LABEL, KeyMaterialRequest};
use mimi_wire::sign::verify_frank;
use mimi_wire::sign::{decrypt_with_label, verify_with_label};
use mimi_wire::submit::ServerFrankingContext;
use mimi_wire::submit::{
    FRANKING_INTEGRITY_LABEL, SubmitMessageResponse, SubmitOutcome, franking_integrity_tbs,
};
use mimi_wire::{Limits, abuse::AbuseReport};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop-tests/vectors/protocol")
}

fn frank_check(sender: &str, ts: u64) -> Value {
    let ctx = franking_context(sender, ts);
    json!({
        "label": FRANKING_INTEGRITY_LABEL,
        "signature_scheme": "ed25519",
        "public_key": hex::encode(objects().hub_signer.public()),
        "context": {
            "sender_uri": ctx.sender_uri.as_str(),
            "room_uri": ctx.room_uri.as_str(),
            "accepted_timestamp": ctx.accepted_timestamp,
        },
        "tbs": hex::encode(franking_integrity_tbs(&SERVER_FRANK, SUITE, &ctx)),
    })
}

/// The franking context of the frank a vector carries (the receiver knows it from the
/// decrypted content; the hub from the request).
fn frank_context_of(name: &str) -> Option<(&'static str, u64)> {
    match name {
        "submit-message-response-accepted" | "fanout-application-franked" => {
            Some(("mimi://a.example/u/alice", 1_700_000_000_456))
        }
        "abuse-report" | "abuse-report-anonymous" => {
            Some(("mimi://b.example/u/bob", 1_700_000_000_456))
        }
        _ => None,
    }
}

/// What a vector lets a reader check beyond the encoding: signatures (key, label and the
/// exact signed bytes) and the HPKE decryption of the GroupInfo response.
fn checks(name: &str, st: &str, bytes: &[u8]) -> Option<Value> {
    let o = objects();
    let sig = |label: &str, key: &[u8], tbs: Vec<u8>| {
        json!({
            "label": label,
            "signature_scheme": "ed25519",
            "public_key": hex::encode(key),
            "tbs": hex::encode(tbs),
        })
    };
    let mut out = serde_json::Map::new();
    match st {
        "KeyMaterialRequest" => {
            let r = KeyMaterialRequest::decode(bytes).unwrap();
            let s = sig(
                KEY_MATERIAL_REQUEST_LABEL,
                &r.tbs.requester_signature_key,
                r.tbs.encode(),
            );
            out.insert("signature".into(), s);
        }
        "GroupInfoRequest" => {
            let r = GroupInfoRequest::decode(bytes).unwrap();
            let s = sig(
                GROUP_INFO_REQUEST_LABEL,
                &r.tbs.requesting_signature_key,
                r.tbs.encode(),
            );
            out.insert("signature".into(), s);
            out.insert(
                "hpke_ikm".into(),
                hex::encode(fixture::GROUP_INFO_HPKE_IKM).into(),
            );
        }
        "GroupInfoResponse" => {
            let r = GroupInfoResponse::decode(bytes).unwrap();
            let s = r.success.as_ref()?;
            let tbs = GroupInfoResponse::tbs(&r.room_id, s);
            out.insert(
                "signature".into(),
                sig(GROUP_INFO_RESPONSE_LABEL, o.hub_signer.public(), tbs),
            );
            out.insert(
                "hpke".into(),
                json!({
                    "label": GROUP_INFO_ENCRYPTION_LABEL,
                    "private_key": hex::encode(group_info_hpke_key().0),
                    "context": hex::encode(r.room_id.as_str()),
                    "plaintext_vector": "group-info-tbe",
                }),
            );
        }
        _ => {}
    }
    if let Some((sender, ts)) = frank_context_of(name) {
        out.insert("frank".into(), frank_check(sender, ts));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// Every vector as the generator makes it, by file name.
fn generated() -> BTreeMap<String, Value> {
    samples()
        .into_iter()
        .map(|(name, st, description, bytes)| {
            let (fields, _) = decode_any(st, &bytes, Limits::DEFAULT).unwrap();
            let mut v = json!({
                "name": name,
                "struct": st,
                "draft": "draft-ietf-mimi-protocol-06",
                "description": description,
                "fields": fields,
                "hex": hex::encode(&bytes),
            });
            if let Some(c) = checks(name, st, &bytes) {
                v["checks"] = c;
            }
            (format!("{name}.json"), v)
        })
        .collect()
}

fn committed() -> BTreeMap<String, Value> {
    std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

#[test]
fn published_vectors_decode_to_their_fields_and_re_encode() {
    let all = committed();
    assert!(all.len() >= 27, "one vector per sample body");
    for (file, v) in &all {
        let st = v["struct"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let (fields, again) =
            decode_any(st, &bytes, Limits::DEFAULT).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(fields, v["fields"], "{file}");
        assert_eq!(again, bytes, "{file}");
    }
}

/// The frank a body carries.
fn frank_in(st: &str, bytes: &[u8]) -> Frank {
    match st {
        "SubmitMessageResponse" => match SubmitMessageResponse::decode(bytes).unwrap().outcome {
            SubmitOutcome::Accepted { frank: Some(f), .. } => f,
            other => panic!("no frank in {other:?}"),
        },
        "FanoutMessage" => match FanoutMessage::decode(bytes).unwrap().extra {
            FanoutExtra::Application(Some(f)) => f,
            other => panic!("no frank in {other:?}"),
        },
        "AbuseReport" => AbuseReport::decode(bytes).unwrap().messages[0]
            .frank
            .clone(),
        other => panic!("no frank in a {other}"),
    }
}

/// Verifies every `checks` entry of the committed vectors from the vector alone (keys, labels,
/// contexts as stated), as another implementation would.
#[test]
fn published_vectors_signatures_verify_and_the_group_info_decrypts() {
    let all = committed();
    let crypto = RustCrypto::default();
    let hexv = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let mut verified = 0;
    for (file, v) in &all {
        let Some(c) = v.get("checks") else { continue };
        let st = v["struct"].as_str().unwrap();
        let bytes = hexv(&v["hex"]);
        if let Some(s) = c.get("signature") {
            // The stated key, label and signed bytes verify the body's signature ...
            let (key, label, tbs) = (
                hexv(&s["public_key"]),
                s["label"].as_str().unwrap(),
                hexv(&s["tbs"]),
            );
            let signature = match st {
                "KeyMaterialRequest" => {
                    let r = KeyMaterialRequest::decode(&bytes).unwrap();
                    r.verify(&crypto, SignatureScheme::ED25519).unwrap();
                    assert_eq!(r.tbs.encode(), tbs, "{file}");
                    r.signature
                }
                "GroupInfoRequest" => {
                    let r = GroupInfoRequest::decode(&bytes).unwrap();
                    r.verify(&crypto).unwrap();
                    assert_eq!(r.tbs.encode(), tbs, "{file}");
                    assert_eq!(
                        r.tbs.group_info_public_key,
                        group_info_hpke_key().1,
                        "{file}: the one-time key is DeriveKeyPair(hpke_ikm)"
                    );
                    r.signature
                }
                "GroupInfoResponse" => {
                    let r = GroupInfoResponse::decode(&bytes).unwrap();
                    r.verify(&crypto).unwrap();
                    let s = r.success.clone().unwrap();
                    assert_eq!(GroupInfoResponse::tbs(&r.room_id, &s), tbs, "{file}");
                    s.signature
                }
                other => panic!("{file}: a signature check on a {other}"),
            };
            // ... with nothing but what the vector states.
            verify_with_label(
                &crypto,
                SignatureScheme::ED25519,
                &key,
                label,
                &tbs,
                &signature,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            verified += 1;
        }
        if let Some(h) = c.get("hpke") {
            let r = GroupInfoResponse::decode(&bytes).unwrap();
            let s = r.success.as_ref().unwrap();
            let pt = decrypt_with_label(
                &crypto,
                SUITE,
                &hexv(&h["private_key"]),
                h["label"].as_str().unwrap(),
                &hexv(&h["context"]),
                &s.encrypted_groupinfo_and_tree,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
            let target = &all[&format!("{}.json", h["plaintext_vector"].as_str().unwrap())];
            assert_eq!(
                pt,
                hexv(&target["hex"]),
                "{file}: decrypts to the TBE vector"
            );
            // The room is the context: another room does not open it.
            assert!(
                GroupInfoRatchetTreeTbe::open(
                    &crypto,
                    SUITE,
                    &hexv(&h["private_key"]),
                    &RoomUri::parse("mimi://a.example/r/other").unwrap(),
                    &s.encrypted_groupinfo_and_tree,
                )
                .is_err()
            );
            verified += 1;
        }
        if let Some(f) = c.get("frank") {
            let ctx = &f["context"];
            let ctx = ServerFrankingContext {
                sender_uri: MimiUri::parse(ctx["sender_uri"].as_str().unwrap()).unwrap(),
                room_uri: RoomUri::parse(ctx["room_uri"].as_str().unwrap()).unwrap(),
                accepted_timestamp: ctx["accepted_timestamp"].as_u64().unwrap(),
            };
            let frank = frank_in(st, &bytes);
            assert_eq!(
                franking_integrity_tbs(
                    &frank.server_frank,
                    frank.franking_signature_ciphersuite,
                    &ctx
                ),
                hexv(&f["tbs"]),
                "{file}"
            );
            verify_frank(&crypto, &hexv(&f["public_key"]), &frank, &ctx)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            verified += 1;
        }
    }
    // 4 signatures (a KeyMaterialRequest, 2 GroupInfoRequests, the GroupInfoResponse), 1
    // decryption, 4 franks.
    assert_eq!(verified, 9);
}

#[test]
fn published_vectors_are_what_the_generator_makes() {
    let (made, have) = (generated(), committed());
    let names = |m: &BTreeMap<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&made), names(&have), "the set of vector files");
    for (file, v) in &made {
        assert_eq!(
            v, &have[file],
            "{file} drifted from the code: regenerate with `cargo test -p mimi-wire --test it -- --ignored regenerate_vectors` and review the diff"
        );
    }
}

#[test]
#[ignore = "writes interop-tests/vectors/protocol/*.json from the captured inputs; run by hand"]
fn regenerate_vectors() {
    for (file, v) in generated() {
        let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
        std::fs::write(dir().join(file), text).unwrap();
    }
}

#[test]
#[ignore = "captures new MLS objects and keys into interop-tests/vectors/protocol/inputs; run by hand, then regenerate_vectors"]
fn capture_vector_inputs() {
    let mut o = fixture::capture();
    let room = RoomUri::parse("mimi://a.example/r/clubhouse").unwrap();
    o.group_info_ciphertext = group_info_tbe(&o)
        .seal(
            &RustCrypto::default(),
            SUITE,
            &group_info_hpke_key().1,
            &room,
        )
        .unwrap();
    let path = fixture::inputs_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = serde_json::to_string_pretty(&fixture::to_json(&o)).unwrap() + "\n";
    std::fs::write(path, text).unwrap();
}
