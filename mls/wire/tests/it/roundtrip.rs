//! Every body round-trips (`WIRE-roundtrip`): for random values of every field (MLS objects
//! drawn from the captured inputs), `decode(encode(v)) == v` and the bytes re-encode exactly.

use crate::fixture::{Objects, mls, objects};
use mimi_wire::Mls;
use mimi_wire::abuse::{AbuseReport, AbusiveMessage};
use mimi_wire::codec::Body;
use mimi_wire::common::{
    AppDataDictionary, CipherSuite, Frank, GroupInfoOption, HpkeCiphertext, PartialGroupInfo,
    RatchetTreeOption,
};
use mimi_wire::components::{
    ParticipantListData, ParticipantListUpdate, RichDescription, RoomMetaData, UserIndexRolePair,
    UserRolePair,
};
use mimi_wire::consent::{ConsentEntry, ConsentOperation, ConsentScope};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, GroupInfoSuccess, PendingProposal,
};
use mimi_wire::id::{ClientUri, MimiUri, RoomUri, UserUri};
use mimi_wire::identifier::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, ProfileField, QueryElement,
    SearchIdentifierType, UserProfile,
};
use mimi_wire::key_material::{
    ClientKeyMaterial, ClientMaterial, KeyMaterialClientCode, KeyMaterialRequest,
    KeyMaterialRequestTbs, KeyMaterialResponse, KeyMaterialUserCode,
};
use mimi_wire::submit::{
    SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome, SubmitResponseCode,
};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateResponseCode, UpdateRoomResponse};
use openmls::prelude::MlsMessageIn;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use std::fmt::Debug;

fn o() -> &'static Objects {
    objects()
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

/// Text without NUL (`UTF8String`).
fn utf8_string() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,12}"
}

fn domain() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,6}[a-z0-9](\\.[a-z][a-z0-9]{0,5}){0,2}"
}

/// A path segment in normal form: unreserved, other pchars, and `%XX` of reserved octets.
fn segment() -> impl Strategy<Value = String> {
    "([A-Za-z0-9._~!$&'()*+,;=:@-]|%2F|%20|%C3%A9){1,10}"
}

fn user() -> impl Strategy<Value = UserUri> {
    (domain(), segment()).prop_map(|(d, s)| UserUri::parse(&format!("mimi://{d}/u/{s}")).unwrap())
}

fn room() -> impl Strategy<Value = RoomUri> {
    (domain(), segment()).prop_map(|(d, s)| RoomUri::parse(&format!("mimi://{d}/r/{s}")).unwrap())
}

fn client() -> impl Strategy<Value = ClientUri> {
    (domain(), segment(), proptest::option::of(segment())).prop_map(|(d, a, b)| {
        let path = match b {
            Some(b) => format!("{a}/{b}"),
            None => a,
        };
        ClientUri::parse(&format!("mimi://{d}/d/{path}")).unwrap()
    })
}

fn any_uri() -> impl Strategy<Value = MimiUri> {
    (domain(), "[udrgpt]", segment())
        .prop_map(|(d, k, s)| MimiUri::parse(&format!("mimi://{d}/{k}/{s}")).unwrap())
}

fn suite() -> impl Strategy<Value = CipherSuite> {
    any::<u16>().prop_map(CipherSuite)
}

fn dict() -> impl Strategy<Value = AppDataDictionary> {
    btree_map(any::<u16>(), bytes(8), 0..4).prop_map(|m| AppDataDictionary {
        entries: m.into_iter().collect(),
    })
}

fn frank() -> impl Strategy<Value = Frank> {
    (any::<[u8; 32]>(), suite(), bytes(80)).prop_map(|(f, c, s)| Frank {
        server_frank: f,
        franking_signature_ciphersuite: c,
        franking_integrity_signature: s,
    })
}

fn tree() -> impl Strategy<Value = RatchetTreeOption> {
    prop_oneof![
        Just(RatchetTreeOption::Full(mls(&o().ratchet_tree))),
        (text(), bytes(40)).prop_map(|(url, tree_signature)| RatchetTreeOption::HttpsUri {
            url,
            tree_signature
        }),
        bytes(40).prop_map(|tree_signature| RatchetTreeOption::OutOfBand { tree_signature }),
        Just(RatchetTreeOption::DistributionService),
    ]
}

fn proposals() -> impl Strategy<Value = Vec<Mls<MlsMessageIn>>> {
    (0usize..3).prop_map(|n| vec![mls(&o().proposal); n])
}

fn check<T: Body + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    let b = v.encode();
    let back = T::decode(&b).map_err(|e| TestCaseError::fail(format!("{e}: {v:?}")))?;
    prop_assert_eq!(&back, v);
    prop_assert_eq!(back.encode(), b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn key_material_request(
        (requesting_user, target_user, room_id) in (user(), user(), room()),
        acceptable_ciphersuites in vec(suite(), 1..4),
        (requester_signature_key, signature) in (bytes(40), bytes(80)),
    ) {
        check(&KeyMaterialRequest {
            tbs: KeyMaterialRequestTbs {
                requesting_user,
                target_user,
                room_id,
                acceptable_ciphersuites,
                required_capabilities: mls(&o().required_capabilities),
                requester_signature_key,
                requester_credential: mls(&o().credential),
            },
            signature,
        })?;
    }

    #[test]
    fn key_material_response(
        code in any::<u8>(),
        user_uri in user(),
        clients in vec((client(), 0u8..5), 0..4),
    ) {
        let user_status = KeyMaterialUserCode(code);
        let may_have = matches!(code, 0 | 1 | 3);
        let clients = if may_have { clients } else { vec![] };
        let clients = clients
            .into_iter()
            .map(|(client_uri, m)| ClientKeyMaterial {
                client_uri,
                material: match m {
                    0 => ClientMaterial::KeyPackage(mls(&o().key_package)),
                    1 => ClientMaterial::Exhausted,
                    2 => ClientMaterial::NothingCompatible(None),
                    3 => ClientMaterial::NothingCompatible(Some(mls(&o().capabilities))),
                    _ => ClientMaterial::Other(KeyMaterialClientCode(3 + m)),
                },
            })
            .collect();
        check(&KeyMaterialResponse { user_status, user_uri, clients })?;
    }

    #[test]
    fn handshake_bundle(
        commit in any::<bool>(),
        welcome in any::<bool>(),
        partial in proptest::option::of((any::<u8>(), bytes(20), bytes(64))),
        ratchet_tree in tree(),
        more_proposals in proposals(),
    ) {
        let v = if commit {
            HandshakeBundle::Commit {
                commit: mls(&o().commit),
                welcome: welcome.then(|| mls(&o().welcome)),
                group_info: match partial {
                    None => GroupInfoOption::Full(mls(&o().group_info)),
                    Some((p, e, s)) => GroupInfoOption::Partial(PartialGroupInfo {
                        ratchet_tree_presence: p,
                        group_info_extensions: e,
                        signature: s,
                    }),
                },
                ratchet_tree,
            }
        } else {
            HandshakeBundle::Proposal { proposal: mls(&o().proposal), more_proposals }
        };
        check(&v)?;
    }

    #[test]
    fn update_room_response(
        error_description in text(),
        which in 0u8..5,
        n in any::<u64>(),
        refs in vec(bytes(64), 0..3),
        other in 4u8..=255,
    ) {
        let outcome = match which {
            0 => UpdateOutcome::Success { accepted_timestamp: n },
            1 => UpdateOutcome::WrongEpoch { current_epoch: n },
            2 => UpdateOutcome::NotAllowed,
            3 => UpdateOutcome::InvalidProposal { invalid_proposals: refs },
            _ => UpdateOutcome::Other(UpdateResponseCode(other)),
        };
        check(&UpdateRoomResponse { error_description, outcome })?;
    }

    #[test]
    fn submit_message(
        sender in prop_oneof![
            user().prop_map(|u| u.as_uri().clone()),
            (domain(), segment()).prop_map(|(d, s)| MimiUri::parse(&format!("mimi://{d}/p/{s}")).unwrap()),
        ],
        which in 0u8..4,
        n in any::<u64>(),
        f in proptest::option::of(frank()),
        other in 3u8..=255,
    ) {
        check(&SubmitMessageRequest { app_message: mls(&o().app_message), sending_uri: sender })?;
        let outcome = match which {
            0 => SubmitOutcome::Accepted { accepted_timestamp: n, frank: f },
            1 => SubmitOutcome::NotAllowed,
            2 => SubmitOutcome::EpochTooOld { current_epoch: n },
            _ => SubmitOutcome::Other(SubmitResponseCode(other)),
        };
        check(&SubmitMessageResponse { outcome })?;
    }

    #[test]
    fn fanout_message(
        timestamp in any::<u64>(),
        which in 0u8..4,
        f in proptest::option::of(frank()),
        t in tree(),
        more in proposals(),
    ) {
        let (message, extra) = match which {
            0 => (&o().app_message, FanoutExtra::Application(f)),
            1 => (&o().welcome_message, FanoutExtra::Welcome(t)),
            2 => (&o().proposal, FanoutExtra::Proposal(more)),
            _ => (&o().commit, FanoutExtra::Commit(more)),
        };
        check(&FanoutMessage { timestamp, message: mls(message), extra })?;
    }

    #[test]
    fn group_info_exchange(
        cipher_suite in suite(),
        (key, pk, code, sig) in (bytes(40), bytes(40), bytes(20), bytes(80)),
        t in tree(),
        times in vec(any::<u64>(), 0..3),
        room_id in room(),
        status in 1u8..=255,
        (kem_output, ciphertext) in (bytes(40), bytes(200)),
    ) {
        check(&GroupInfoRequest {
            tbs: GroupInfoRequestTbs {
                cipher_suite,
                requesting_signature_key: key,
                requesting_credential: mls(&o().credential),
                group_info_public_key: pk,
                joining_code: code,
            },
            signature: sig.clone(),
        })?;
        check(&GroupInfoRatchetTreeTbe {
            group_info: mls(&o().group_info),
            ratchet_tree: t,
            pending_proposals: times
                .into_iter()
                .map(|hub_accepted_time| PendingProposal { proposal: mls(&o().proposal), hub_accepted_time })
                .collect(),
        })?;
        let success = (status == 1).then(|| GroupInfoSuccess {
            cipher_suite,
            hub_sender: mls(&o().external_sender),
            encrypted_groupinfo_and_tree: HpkeCiphertext { kem_output, ciphertext },
            signature: sig,
        });
        check(&GroupInfoResponse { room_id, status: GroupInfoCode(status), success })?;
    }

    #[test]
    fn consent(
        op in 0u8..4,
        (requester_uri, target_uri) in (user(), user()),
        room_id in proptest::option::of(room()),
        kps in 0usize..3,
        consent_extensions in dict(),
    ) {
        let operation = [
            ConsentOperation::Cancel,
            ConsentOperation::Request,
            ConsentOperation::Grant,
            ConsentOperation::Revoke,
        ][usize::from(op)];
        let scope = ConsentScope { requester_uri, target_uri, room_id };
        check(&scope)?;
        let client_key_packages = if operation == ConsentOperation::Grant {
            vec![mls(&o().key_package); kps]
        } else {
            vec![]
        };
        check(&ConsentEntry { operation, scope, client_key_packages, consent_extensions })?;
    }

    #[test]
    fn identifier_query(
        elements in vec((1u8..=255, bytes(10), text()), 0..4),
        extensions in dict(),
        response_code in any::<u8>(),
        uris in vec(any_uri(), 0..3),
        profiles in vec((any_uri(), vec((7u8..=8, text(), bytes(10)), 0..3)), 0..3),
    ) {
        let query_elements = elements
            .into_iter()
            .map(|(t, name, search_value)| QueryElement {
                search_type: SearchIdentifierType(t),
                field_name: if matches!(t, 7 | 8) { name } else { vec![] },
                search_value,
            })
            .collect();
        check(&IdentifierRequest { query_elements, extensions: extensions.clone() })?;
        let found_profiles = profiles
            .into_iter()
            .map(|(stable_uri, fields)| UserProfile {
                stable_uri,
                fields: fields
                    .into_iter()
                    .map(|(field_source, field_name, field_value)| ProfileField {
                        field_source,
                        field_name,
                        field_value,
                    })
                    .collect(),
            })
            .collect();
        check(&IdentifierResponse {
            response_code: IdentifierQueryCode(response_code),
            uris,
            found_profiles,
            extensions,
        })?;
    }

    #[test]
    fn abuse_report(
        reporting_user in proptest::option::of(user()),
        alleged_abuser_uri in user(),
        reason_code in any::<u8>(),
        note in text(),
        messages in vec((bytes(40), frank(), any::<u64>()), 0..3),
        extensions in dict(),
    ) {
        check(&AbuseReport {
            reporting_user,
            alleged_abuser_uri,
            reason_code,
            note,
            messages: messages
                .into_iter()
                .map(|(message_content, frank, accepted_timestamp)| AbusiveMessage {
                    message_content,
                    frank,
                    accepted_timestamp,
                })
                .collect(),
            extensions,
        })?;
    }

    #[test]
    fn franking_components(tag in any::<[u8; 32]>(), key in bytes(40)) {
        check(&mimi_wire::franking::FrankAad { franking_tag: tag })?;
        check(&mimi_wire::franking::FrankingAgentData {
            franking_signature_key: key,
            credential: mls(&o().credential),
        })?;
    }

    #[test]
    fn room_components(
        users in btree_set(user(), 0..5),
        roles in vec(any::<u32>(), 5),
        changed in vec((any::<u32>(), any::<u32>()), 0..3),
        removed in vec(any::<u32>(), 0..3),
        added in vec((user(), any::<u32>()), 0..3),
        room_uri in room(),
        (room_name, room_subject, room_mood) in (utf8_string(), utf8_string(), utf8_string()),
        descriptions in vec((text(), text(), bytes(20)), 0..3),
        avatar in proptest::option::of(segment()),
    ) {
        check(&ParticipantListData {
            participants: users
                .into_iter()
                .zip(roles)
                .map(|(user, role_index)| UserRolePair { user, role_index })
                .collect(),
        })?;
        check(&ParticipantListUpdate {
            changed_role_participants: changed
                .into_iter()
                .map(|(user_index, role_index)| UserIndexRolePair { user_index, role_index })
                .collect(),
            removed_indices: removed,
            added_participants: added
                .into_iter()
                .map(|(user, role_index)| UserRolePair { user, role_index })
                .collect(),
        })?;
        check(&RoomMetaData {
            room_uri,
            room_name,
            room_descriptions: descriptions
                .into_iter()
                .map(|(media_type, language_tag, description_content)| RichDescription {
                    media_type,
                    language_tag,
                    description_content,
                })
                .collect(),
            room_avatar: avatar.map_or_else(String::new, |a| format!("https://a.example/{a}")),
            room_subject,
            room_mood,
        })?;
    }
}
