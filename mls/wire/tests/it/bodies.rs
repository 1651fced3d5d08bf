//! One sample of every body built from real MLS objects; round trips, and the strictness rules
//! on each.

use crate::fixture::{Objects, SUITE, group_info_hpke_key, mls, objects};
use mimi_wire::abuse::{AbuseReport, AbusiveMessage};
use mimi_wire::codec::{Body, WireError, WireErrorKind};
use mimi_wire::common::{AppDataDictionary, Frank, GroupInfoOption, RatchetTreeOption};
use mimi_wire::components::{
    ApplyError, ParticipantListData, ParticipantListUpdate, RichDescription, RoomMetaData,
    UserIndexRolePair, UserRolePair,
};
use mimi_wire::consent::{ConsentEntry, ConsentOperation, ConsentScope};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage, split_notify};
use mimi_wire::group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse, GroupInfoSuccess, PendingProposal,
};
use mimi_wire::id::{ClientUri, MimiUri, RoomUri, UserUri};
use mimi_wire::identifier::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, ProfileField, QueryElement,
    SearchIdentifierType, UserProfile,
};
use mimi_wire::json::ToJson;
use mimi_wire::key_material::{
    ClientKeyMaterial, ClientMaterial, KEY_MATERIAL_REQUEST_LABEL, KeyMaterialRequest,
    KeyMaterialRequestTbs, KeyMaterialResponse, KeyMaterialUserCode,
};
use mimi_wire::sign::{sign_frank, sign_with_label};
use mimi_wire::submit::{
    ServerFrankingContext, SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome,
};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use mimi_wire::{Limits, Mls};
use serde_json::Value;

fn user(s: &str) -> UserUri {
    UserUri::parse(s).unwrap()
}

fn room() -> RoomUri {
    RoomUri::parse("mimi://a.example/r/clubhouse").unwrap()
}

/// The fixed `server_frank` of the vectors (an HMAC under the hub's private key in real use).
pub const SERVER_FRANK: [u8; 32] = [0x5a; 32];

/// The franking context of a message of `sender` accepted at `ts` in the clubhouse.
pub fn franking_context(sender: &str, ts: u64) -> ServerFrankingContext {
    ServerFrankingContext {
        sender_uri: MimiUri::parse(sender).unwrap(),
        room_uri: room(),
        accepted_timestamp: ts,
    }
}

/// A frank signed by the hub over `franking_context(sender, ts)`.
fn frank(sender: &str, ts: u64) -> Frank {
    let o = objects();
    Frank {
        server_frank: SERVER_FRANK,
        franking_signature_ciphersuite: SUITE,
        franking_integrity_signature: sign_frank(
            &o.hub_signer,
            &SERVER_FRANK,
            SUITE,
            &franking_context(sender, ts),
        )
        .unwrap(),
    }
}

/// The plaintext of the GroupInfo response: GroupInfo, full tree, one pending proposal.
pub fn group_info_tbe(o: &Objects) -> GroupInfoRatchetTreeTbe {
    GroupInfoRatchetTreeTbe {
        group_info: mls(&o.group_info),
        ratchet_tree: RatchetTreeOption::Full(mls(&o.ratchet_tree)),
        pending_proposals: vec![PendingProposal {
            proposal: mls(&o.proposal),
            hub_accepted_time: 1_700_000_000_789,
        }],
    }
}

/// `(vector name, struct name, description, bytes)` for every body.
pub fn samples() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let o = objects();
    let tbs = KeyMaterialRequestTbs {
        requesting_user: user("mimi://a.example/u/alice"),
        target_user: user("mimi://b.example/u/bob"),
        room_id: room(),
        acceptable_ciphersuites: vec![SUITE],
        required_capabilities: mls(&o.required_capabilities),
        requester_signature_key: o.alice_signer.to_public_vec(),
        requester_credential: mls(&o.credential),
    };
    let signature =
        sign_with_label(&o.alice_signer, KEY_MATERIAL_REQUEST_LABEL, &tbs.encode()).unwrap();
    let kmr = KeyMaterialRequest { tbs, signature };
    let kmresp = KeyMaterialResponse {
        user_status: KeyMaterialUserCode::PARTIAL_SUCCESS,
        user_uri: user("mimi://b.example/u/bob"),
        clients: vec![
            ClientKeyMaterial {
                client_uri: ClientUri::parse("mimi://b.example/d/bob/1").unwrap(),
                material: ClientMaterial::KeyPackage(mls(&o.key_package)),
            },
            ClientKeyMaterial {
                client_uri: ClientUri::parse("mimi://b.example/d/bob/2").unwrap(),
                material: ClientMaterial::Exhausted,
            },
            ClientKeyMaterial {
                client_uri: ClientUri::parse("mimi://b.example/d/bob/3").unwrap(),
                material: ClientMaterial::NothingCompatible(Some(mls(&o.capabilities))),
            },
        ],
    };
    let commit_bundle = HandshakeBundle::Commit {
        commit: mls(&o.commit),
        welcome: Some(mls(&o.welcome)),
        group_info: GroupInfoOption::Full(mls(&o.group_info)),
        ratchet_tree: RatchetTreeOption::Full(mls(&o.ratchet_tree)),
    };
    let proposal_bundle = HandshakeBundle::Proposal {
        proposal: mls(&o.proposal),
        more_proposals: vec![],
    };
    let update_ok = UpdateRoomResponse {
        error_description: String::new(),
        outcome: UpdateOutcome::Success {
            accepted_timestamp: 1_700_000_000_123,
        },
    };
    let update_epoch = UpdateRoomResponse {
        error_description: "the room is at epoch 7".into(),
        outcome: UpdateOutcome::WrongEpoch { current_epoch: 7 },
    };
    let update_invalid = UpdateRoomResponse {
        error_description: "remove of an unknown member".into(),
        outcome: UpdateOutcome::InvalidProposal {
            invalid_proposals: vec![vec![0x11; 32]],
        },
    };
    let submit = SubmitMessageRequest {
        app_message: mls(&o.app_message),
        sending_uri: MimiUri::parse("mimi://a.example/u/alice").unwrap(),
    };
    let submit_ok = SubmitMessageResponse {
        outcome: SubmitOutcome::Accepted {
            accepted_timestamp: 1_700_000_000_456,
            frank: Some(frank("mimi://a.example/u/alice", 1_700_000_000_456)),
        },
    };
    let submit_old = SubmitMessageResponse {
        outcome: SubmitOutcome::EpochTooOld { current_epoch: 9 },
    };
    let fan_app = FanoutMessage {
        timestamp: 1_700_000_000_456,
        message: mls(&o.app_message),
        extra: FanoutExtra::Application(None),
    };
    let fan_commit = FanoutMessage {
        timestamp: 1_700_000_000_123,
        message: mls(&o.commit),
        extra: FanoutExtra::Commit(vec![]),
    };
    let fan_welcome = FanoutMessage {
        timestamp: 1_700_000_000_123,
        message: mls(&o.welcome_message),
        extra: FanoutExtra::Welcome(RatchetTreeOption::Full(mls(&o.ratchet_tree))),
    };
    let fan_proposal = FanoutMessage {
        timestamp: 1_700_000_000_789,
        message: mls(&o.proposal),
        extra: FanoutExtra::Proposal(vec![]),
    };
    let gi_req = GroupInfoRequest::sign(
        GroupInfoRequestTbs {
            cipher_suite: SUITE,
            requesting_signature_key: o.bob_signer.to_public_vec(),
            requesting_credential: mls(&o.bob_credential),
            group_info_public_key: group_info_hpke_key().1,
            joining_code: vec![],
        },
        &o.bob_signer,
    )
    .unwrap();
    let gi_tbe = group_info_tbe(o);
    let gi_resp = GroupInfoResponse::signed_success(
        room(),
        GroupInfoSuccess {
            cipher_suite: SUITE,
            hub_sender: mls(&o.external_sender),
            encrypted_groupinfo_and_tree: o.group_info_ciphertext.clone(),
            signature: vec![],
        },
        &o.hub_signer,
    )
    .unwrap();
    let gi_denied = GroupInfoResponse {
        room_id: room(),
        status: GroupInfoCode::NOT_AUTHORIZED,
        success: None,
    };
    let consent_request = ConsentEntry {
        operation: ConsentOperation::Request,
        scope: ConsentScope {
            requester_uri: user("mimi://a.example/u/alice"),
            target_uri: user("mimi://b.example/u/bob"),
            room_id: Some(room()),
        },
        client_key_packages: vec![],
        consent_extensions: AppDataDictionary::default(),
    };
    let consent_grant = ConsentEntry {
        operation: ConsentOperation::Grant,
        scope: ConsentScope {
            requester_uri: user("mimi://a.example/u/alice"),
            target_uri: user("mimi://b.example/u/bob"),
            room_id: None,
        },
        client_key_packages: vec![mls(&o.key_package)],
        consent_extensions: AppDataDictionary {
            entries: vec![(0x8001, b"private".to_vec())],
        },
    };
    let scope = ConsentScope {
        requester_uri: user("mimi://a.example/u/alice"),
        target_uri: user("mimi://b.example/u/bob"),
        room_id: None,
    };
    let id_req = IdentifierRequest {
        query_elements: vec![
            QueryElement {
                search_type: SearchIdentifierType::HANDLE,
                field_name: vec![],
                search_value: "im:bob@b.example".into(),
            },
            QueryElement {
                search_type: SearchIdentifierType::VCARD_FIELD,
                field_name: b"FN".to_vec(),
                search_value: "Bob".into(),
            },
        ],
        extensions: AppDataDictionary::default(),
    };
    let id_resp = IdentifierResponse {
        response_code: IdentifierQueryCode::SUCCESS,
        uris: vec![MimiUri::parse("mimi://b.example/u/bob").unwrap()],
        found_profiles: vec![UserProfile {
            stable_uri: MimiUri::parse("mimi://b.example/u/bob").unwrap(),
            fields: vec![ProfileField {
                field_source: 8,
                field_name: "FN".into(),
                field_value: b"Bob Jones".to_vec(),
            }],
        }],
        extensions: AppDataDictionary::default(),
    };
    let abuse = AbuseReport {
        reporting_user: Some(user("mimi://c.example/u/cathy")),
        alleged_abuser_uri: user("mimi://b.example/u/bob"),
        reason_code: 0,
        note: "spam".into(),
        messages: vec![AbusiveMessage {
            message_content: vec![0x87, 0x50],
            frank: frank("mimi://b.example/u/bob", 1_700_000_000_456),
            accepted_timestamp: 1_700_000_000_456,
        }],
        extensions: AppDataDictionary::default(),
    };
    let consent_cancel = ConsentEntry {
        operation: ConsentOperation::Cancel,
        ..consent_request.clone()
    };
    let consent_revoke = ConsentEntry {
        operation: ConsentOperation::Revoke,
        scope: ConsentScope {
            room_id: None,
            ..consent_request.scope.clone()
        },
        client_key_packages: vec![],
        consent_extensions: AppDataDictionary::default(),
    };
    let id_not_found = IdentifierResponse {
        response_code: IdentifierQueryCode::NOT_FOUND,
        uris: vec![],
        found_profiles: vec![],
        extensions: AppDataDictionary::default(),
    };
    let abuse_anonymous = AbuseReport {
        reporting_user: None,
        note: String::new(),
        ..abuse.clone()
    };
    let list = ParticipantListData {
        participants: vec![
            UserRolePair {
                user: user("mimi://a.example/u/alice"),
                role_index: 5,
            },
            UserRolePair {
                user: user("mimi://b.example/u/bob"),
                role_index: 2,
            },
            UserRolePair {
                user: user("mimi://c.example/u/cathy"),
                role_index: 2,
            },
        ],
    };
    let update = ParticipantListUpdate {
        changed_role_participants: vec![UserIndexRolePair {
            user_index: 2,
            role_index: 1,
        }],
        removed_indices: vec![1],
        added_participants: vec![
            UserRolePair {
                user: user("mimi://d.example/u/diana"),
                role_index: 4,
            },
            UserRolePair {
                user: user("mimi://e.example/u/eric"),
                role_index: 3,
            },
        ],
    };
    let meta = RoomMetaData {
        room_uri: room(),
        room_name: "Clubhouse".into(),
        room_descriptions: vec![RichDescription {
            media_type: String::new(),
            language_tag: "en".into(),
            description_content: b"Where we meet".to_vec(),
        }],
        room_avatar: "https://a.example/avatars/clubhouse.png".into(),
        room_subject: "Friday plans".into(),
        room_mood: String::new(),
    };
    let update_denied = UpdateRoomResponse {
        error_description: "canAddParticipant is not granted to role 2".into(),
        outcome: UpdateOutcome::NotAllowed,
    };
    let submit_denied = SubmitMessageResponse {
        outcome: SubmitOutcome::NotAllowed,
    };
    let kmresp_no_consent = KeyMaterialResponse {
        user_status: KeyMaterialUserCode::NO_CONSENT,
        user_uri: user("mimi://b.example/u/bob"),
        clients: vec![],
    };
    let commit_partial = HandshakeBundle::Commit {
        commit: mls(&o.commit),
        welcome: None,
        group_info: GroupInfoOption::Partial(mimi_wire::common::PartialGroupInfo {
            ratchet_tree_presence: 1,
            group_info_extensions: vec![],
            signature: vec![0xee; 64],
        }),
        ratchet_tree: RatchetTreeOption::DistributionService,
    };
    let fan_app_franked = FanoutMessage {
        timestamp: 1_700_000_000_456,
        message: mls(&o.app_message),
        extra: FanoutExtra::Application(Some(frank("mimi://a.example/u/alice", 1_700_000_000_456))),
    };
    let fan_welcome_https = FanoutMessage {
        timestamp: 1_700_000_000_123,
        message: mls(&o.welcome_message),
        extra: FanoutExtra::Welcome(RatchetTreeOption::HttpsUri {
            url: "https://a.example/trees/clubhouse/1".into(),
            tree_signature: vec![0xab; 64],
        }),
    };
    let gi_req_code = GroupInfoRequest::sign(
        GroupInfoRequestTbs {
            cipher_suite: SUITE,
            requesting_signature_key: o.bob_signer.to_public_vec(),
            requesting_credential: mls(&o.bob_credential),
            group_info_public_key: group_info_hpke_key().1,
            joining_code: b"J0IN-C0DE".to_vec(),
        },
        &o.bob_signer,
    )
    .unwrap();
    vec![
        (
            "participant-list",
            "ParticipantListData",
            "component 0x0022: Alice (role 5), Bob and Cathy (role 2)",
            list.encode(),
        ),
        (
            "participant-list-update",
            "ParticipantListUpdate",
            "protocol-06 §4.3.2's change list: Cathy to role 1 (banned), remove Bob, add Diana (4) and Eric (3)",
            update.encode(),
        ),
        (
            "room-metadata",
            "RoomMetaData",
            "component 0x0023 with a name, a description, an avatar and a subject",
            meta.encode(),
        ),
        (
            "key-material-request",
            "KeyMaterialRequest",
            "Alice (a.example) asks for Bob's KeyPackages for the clubhouse room; signed with label KeyMaterialRequestTBS",
            kmr.encode(),
        ),
        (
            "key-material-response",
            "KeyMaterialResponse",
            "partialSuccess: one KeyPackage, one client exhausted, one with nothing compatible (capabilities given)",
            kmresp.encode(),
        ),
        (
            "update-commit",
            "HandshakeBundle",
            "a commit adding Bob, with Welcome, full GroupInfo and full ratchet tree",
            commit_bundle.encode(),
        ),
        (
            "update-proposal",
            "HandshakeBundle",
            "a self-update proposal without more proposals",
            proposal_bundle.encode(),
        ),
        (
            "update-response-success",
            "UpdateRoomResponse",
            "success with the accepted timestamp",
            update_ok.encode(),
        ),
        (
            "update-response-wrong-epoch",
            "UpdateRoomResponse",
            "wrongEpoch with the hub's epoch",
            update_epoch.encode(),
        ),
        (
            "update-response-invalid-proposal",
            "UpdateRoomResponse",
            "invalidProposal naming one ProposalRef",
            update_invalid.encode(),
        ),
        (
            "submit-message-request",
            "SubmitMessageRequest",
            "Alice's application message (PrivateMessage)",
            submit.encode(),
        ),
        (
            "submit-message-response-accepted",
            "SubmitMessageResponse",
            "accepted with timestamp and a frank (fixed server_frank; integrity signature by the hub over Alice's franking context)",
            submit_ok.encode(),
        ),
        (
            "submit-message-response-epoch-too-old",
            "SubmitMessageResponse",
            "epochTooOld with the hub's epoch",
            submit_old.encode(),
        ),
        (
            "fanout-application",
            "FanoutMessage",
            "an application message without frank",
            fan_app.encode(),
        ),
        (
            "fanout-commit",
            "FanoutMessage",
            "a commit without external proposals",
            fan_commit.encode(),
        ),
        (
            "fanout-welcome",
            "FanoutMessage",
            "a Welcome with the full ratchet tree",
            fan_welcome.encode(),
        ),
        (
            "fanout-proposal",
            "FanoutMessage",
            "a proposal without more proposals",
            fan_proposal.encode(),
        ),
        (
            "group-info-request",
            "GroupInfoRequest",
            "Bob's client asks for the GroupInfo, without joining code; signed with label GroupInfoRequestTBS; groupInfoPublicKey = DeriveKeyPair(0x47 * 32) of suite 1",
            gi_req.encode(),
        ),
        (
            "group-info-tbe",
            "GroupInfoRatchetTreeTBE",
            "GroupInfo, full tree and one pending proposal (the plaintext that is HPKE-encrypted)",
            gi_tbe.encode(),
        ),
        (
            "group-info-response-success",
            "GroupInfoResponse",
            "success: the group-info-tbe vector HPKE-encrypted to the request's groupInfoPublicKey (context: the room URI), signed by the hub with label GroupInfoResponseTBS",
            gi_resp.encode(),
        ),
        (
            "group-info-response-not-authorized",
            "GroupInfoResponse",
            "notAuthorized: nothing follows the status",
            gi_denied.encode(),
        ),
        (
            "consent-request",
            "ConsentEntry",
            "request for one room",
            consent_request.encode(),
        ),
        (
            "consent-grant",
            "ConsentEntry",
            "grant for any room with a KeyPackage and a private-use extension",
            consent_grant.encode(),
        ),
        (
            "consent-scope",
            "ConsentScope",
            "scope without room",
            scope.encode(),
        ),
        (
            "identifier-request",
            "IdentifierRequest",
            "handle AND vCard FN",
            id_req.encode(),
        ),
        (
            "identifier-response",
            "IdentifierResponse",
            "one match with a profile field",
            id_resp.encode(),
        ),
        (
            "abuse-report",
            "AbuseReport",
            "Cathy reports one message of Bob, with its frank",
            abuse.encode(),
        ),
        (
            "consent-cancel",
            "ConsentEntry",
            "cancel of the consent-request vector's request (requestConsent); no KeyPackages on the wire",
            consent_cancel.encode(),
        ),
        (
            "consent-revoke",
            "ConsentEntry",
            "revoke of a grant for any room (updateConsent); no KeyPackages on the wire",
            consent_revoke.encode(),
        ),
        (
            "identifier-response-not-found",
            "IdentifierResponse",
            "notFound: no URIs, no profiles",
            id_not_found.encode(),
        ),
        (
            "abuse-report-anonymous",
            "AbuseReport",
            "the abuse-report vector without reporting user (empty URI, WIRE-5.9-reporting-user) and with an empty note",
            abuse_anonymous.encode(),
        ),
        (
            "update-response-not-allowed",
            "UpdateRoomResponse",
            "notAllowed with a reason; nothing follows the description",
            update_denied.encode(),
        ),
        (
            "submit-message-response-not-allowed",
            "SubmitMessageResponse",
            "notAllowed: nothing follows the code",
            submit_denied.encode(),
        ),
        (
            "key-material-response-no-consent",
            "KeyMaterialResponse",
            "noConsent: the clients list must be empty",
            kmresp_no_consent.encode(),
        ),
        (
            "update-commit-partial",
            "HandshakeBundle",
            "a commit without Welcome, with a PartialGroupInfo (placeholder signature) and the distributionService tree option",
            commit_partial.encode(),
        ),
        (
            "fanout-application-franked",
            "FanoutMessage",
            "an application message with the hub's frank over Alice's franking context",
            fan_app_franked.encode(),
        ),
        (
            "fanout-welcome-https",
            "FanoutMessage",
            "a Welcome with the httpsUri tree option (placeholder tree signature)",
            fan_welcome_https.encode(),
        ),
        (
            "group-info-request-joining-code",
            "GroupInfoRequest",
            "Bob's client asks for the GroupInfo with joining code \"J0IN-C0DE\": the TBS carries it as a present optional",
            gi_req_code.encode(),
        ),
    ]
}

/// Decodes `bytes` as the named struct: its fields as JSON and its re-encoding.
pub fn decode_any(name: &str, bytes: &[u8], limits: Limits) -> Result<(Value, Vec<u8>), WireError> {
    fn go<T: Body + ToJson>(b: &[u8], l: Limits) -> Result<(Value, Vec<u8>), WireError> {
        let v = T::decode_with(b, l)?;
        Ok((v.to_json(), v.encode()))
    }
    match name {
        "KeyMaterialRequest" => go::<KeyMaterialRequest>(bytes, limits),
        "KeyMaterialResponse" => go::<KeyMaterialResponse>(bytes, limits),
        "HandshakeBundle" => go::<HandshakeBundle>(bytes, limits),
        "UpdateRoomResponse" => go::<UpdateRoomResponse>(bytes, limits),
        "SubmitMessageRequest" => go::<SubmitMessageRequest>(bytes, limits),
        "SubmitMessageResponse" => go::<SubmitMessageResponse>(bytes, limits),
        "FanoutMessage" => go::<FanoutMessage>(bytes, limits),
        "GroupInfoRequest" => go::<GroupInfoRequest>(bytes, limits),
        "GroupInfoRatchetTreeTBE" => go::<GroupInfoRatchetTreeTbe>(bytes, limits),
        "GroupInfoResponse" => go::<GroupInfoResponse>(bytes, limits),
        "ConsentEntry" => go::<ConsentEntry>(bytes, limits),
        "ConsentScope" => go::<ConsentScope>(bytes, limits),
        "IdentifierRequest" => go::<IdentifierRequest>(bytes, limits),
        "IdentifierResponse" => go::<IdentifierResponse>(bytes, limits),
        "AbuseReport" => go::<AbuseReport>(bytes, limits),
        "ParticipantListData" => go::<ParticipantListData>(bytes, limits),
        "ParticipantListUpdate" => go::<ParticipantListUpdate>(bytes, limits),
        "RoomMetaData" => go::<RoomMetaData>(bytes, limits),
        "FrankAAD" => go::<mimi_wire::franking::FrankAad>(bytes, limits),
        "FrankingAgentData" => go::<mimi_wire::franking::FrankingAgentData>(bytes, limits),
        other => panic!("unknown struct {other}"),
    }
}

#[test]
fn every_body_round_trips_byte_exact() {
    for (name, st, _, bytes) in samples() {
        let (_, again) =
            decode_any(st, &bytes, Limits::DEFAULT).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(again, bytes, "{name}");
    }
}

#[test]
fn wire_strict_trailing_and_truncation_are_errors_everywhere() {
    for (name, st, _, bytes) in samples() {
        let mut longer = bytes.clone();
        longer.push(0);
        let e = decode_any(st, &longer, Limits::DEFAULT).unwrap_err();
        assert_eq!(e.kind, WireErrorKind::TrailingBytes(1), "{name}");
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_any(st, &bytes[..cut], Limits::DEFAULT).is_err(),
                "{name} cut at {cut}"
            );
        }
    }
}

#[test]
fn wire_limits_are_enforced_before_allocation() {
    let tight = Limits {
        max_uri: 10,
        ..Limits::DEFAULT
    };
    let (_, _, _, bytes) = samples()
        .into_iter()
        .find(|s| s.0 == "consent-scope")
        .unwrap();
    let e = decode_any("ConsentScope", &bytes, tight).unwrap_err();
    assert!(
        matches!(e.kind, WireErrorKind::TooLong { limit: 10, .. }),
        "{e}"
    );
    assert_eq!(e.field, "ConsentEntry.requesterUri");
    let few = Limits {
        max_items: 2,
        ..Limits::DEFAULT
    };
    let (_, _, _, bytes) = samples()
        .into_iter()
        .find(|s| s.0 == "key-material-response")
        .unwrap();
    let e = decode_any("KeyMaterialResponse", &bytes, few).unwrap_err();
    assert!(
        matches!(e.kind, WireErrorKind::TooLong { limit: 2, .. }),
        "{e}"
    );
    // An MLS object longer than max_mls: openmls never sees more than the limit.
    let small = Limits {
        max_mls: 200,
        ..Limits::DEFAULT
    };
    let (_, _, _, bytes) = samples()
        .into_iter()
        .find(|s| s.0 == "update-commit")
        .unwrap();
    assert!(objects().commit.len() > 200);
    let e = decode_any("HandshakeBundle", &bytes, small).unwrap_err();
    assert!(
        matches!(e.kind, WireErrorKind::TooLong { limit: 200, .. }),
        "{e}"
    );
    assert_eq!((e.field, e.offset), ("HandshakeBundle.proposalOrCommit", 0));
    assert!(decode_any("HandshakeBundle", &bytes, Limits::DEFAULT).is_ok());
}

#[test]
fn wire_strict_non_minimal_varints_are_refused() {
    // UpdateRoomResponse notAllowed with an empty description written as 0x40 0x00.
    let good = [2u8, 0x00];
    assert!(UpdateRoomResponse::decode(&good).is_ok());
    let e = UpdateRoomResponse::decode(&[2u8, 0x40, 0x00]).unwrap_err();
    assert_eq!(e.kind, WireErrorKind::BadVarint);
    let e = UpdateRoomResponse::decode(&[2u8, 0xc0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(e.kind, WireErrorKind::BadVarint);
}

#[test]
fn wire_5_protocol_must_be_mls10() {
    let (_, _, _, mut bytes) = samples()
        .into_iter()
        .find(|s| s.0 == "submit-message-request")
        .unwrap();
    bytes[0] = 2;
    let e = SubmitMessageRequest::decode(&bytes).unwrap_err();
    assert_eq!((e.kind, e.offset), (WireErrorKind::BadValue(2), 0));
}

#[test]
fn wire_5_4_private_submit_refuses_handshakes() {
    let o = objects();
    let mut body = vec![1u8];
    body.extend_from_slice(&o.commit);
    body.push(24);
    body.extend_from_slice(b"mimi://a.example/u/alice");
    let e = SubmitMessageRequest::decode(&body).unwrap_err();
    assert_eq!(e.field, "SubmitMessageRequest.appMessage");
}

#[test]
fn wire_5_3_bundle_select_follows_the_content_type() {
    let o = objects();
    // An application message cannot start a HandshakeBundle.
    let e = HandshakeBundle::decode(&o.app_message).unwrap_err();
    assert_eq!(e.field, "HandshakeBundle.proposalOrCommit");
    // A proposal with an empty moreProposals vector is a whole bundle.
    let mut p = o.proposal.clone();
    p.push(0);
    assert!(matches!(
        HandshakeBundle::decode(&p).unwrap(),
        HandshakeBundle::Proposal { .. }
    ));
}

#[test]
fn wire_5_2_clients_empty_unless_success() {
    let r = KeyMaterialResponse {
        user_status: KeyMaterialUserCode::USER_UNKNOWN,
        user_uri: user("mimi://b.example/u/nobody"),
        clients: vec![],
    };
    assert!(KeyMaterialResponse::decode(&r.encode()).is_ok());
    let (_, _, _, bytes) = samples()
        .into_iter()
        .find(|s| s.0 == "key-material-response")
        .unwrap();
    let mut bad = bytes.clone();
    bad[1] = KeyMaterialUserCode::NO_CONSENT.0;
    let e = KeyMaterialResponse::decode(&bad).unwrap_err();
    assert_eq!(e.field, "KeyMaterialResponse.clients");
}

#[test]
fn wire_5_5_concat_notify_bodies_split_into_messages() {
    let s = samples();
    let fan: Vec<Vec<u8>> = s
        .iter()
        .filter(|x| x.1 == "FanoutMessage")
        .map(|x| x.3.clone())
        .collect();
    let body: Vec<u8> = fan.concat();
    let parts = split_notify(&body, Limits::DEFAULT).unwrap();
    assert_eq!(parts.len(), fan.len());
    for ((_, bytes), original) in parts.iter().zip(&fan) {
        assert_eq!(bytes, original);
    }
    assert!(split_notify(&[], Limits::DEFAULT).is_err());
    assert!(split_notify(&body[..body.len() - 1], Limits::DEFAULT).is_err());
    let messages: Vec<FanoutMessage> = parts.into_iter().map(|(m, _)| m).collect();
    assert_eq!(mimi_wire::fanout::join_notify(&messages), body);
}

#[test]
fn unknown_response_codes_survive_when_nothing_follows() {
    let r = UpdateRoomResponse::decode(&[9u8, 0]).unwrap();
    assert_eq!(r.code().0, 9);
    assert_eq!(r.encode(), [9u8, 0]);
    let r = SubmitMessageResponse::decode(&[1u8, 7]).unwrap();
    assert_eq!(r.code().0, 7);
    assert_eq!(r.encode(), [1u8, 7]);
    // Unknown user and client codes of keyMaterial, and an unknown GroupInfoCode.
    let resp = KeyMaterialResponse {
        user_status: KeyMaterialUserCode(0),
        user_uri: user("mimi://b.example/u/bob"),
        clients: vec![ClientKeyMaterial {
            client_uri: ClientUri::parse("mimi://b.example/d/bob/1").unwrap(),
            material: ClientMaterial::Other(mimi_wire::key_material::KeyMaterialClientCode(9)),
        }],
    };
    let back = KeyMaterialResponse::decode(&resp.encode()).unwrap();
    assert_eq!(back, resp);
    let unknown_user = KeyMaterialResponse {
        user_status: KeyMaterialUserCode(200),
        clients: vec![],
        ..resp
    };
    assert_eq!(
        KeyMaterialResponse::decode(&unknown_user.encode()).unwrap(),
        unknown_user
    );
    let gi = GroupInfoResponse {
        room_id: room(),
        status: GroupInfoCode(77),
        success: None,
    };
    assert_eq!(GroupInfoResponse::decode(&gi.encode()).unwrap(), gi);
}

#[test]
fn ext_dictionary_must_be_sorted_and_unique() {
    let mut w = mimi_wire::codec::Writer::new();
    AppDataDictionary {
        entries: vec![(5, vec![]), (3, vec![])],
    }
    .write(&mut w);
    let bytes = w.finish();
    let mut r = mimi_wire::codec::Reader::new(&bytes, Limits::DEFAULT);
    assert!(AppDataDictionary::read(&mut r, "d").is_err());
}

#[test]
fn mls_objects_are_checked_by_openmls() {
    let o = objects();
    assert!(Mls::<openmls::prelude::KeyPackageIn>::from_bytes(o.key_package.clone()).is_ok());
    let mut broken = o.key_package.clone();
    broken.truncate(broken.len() - 5);
    assert!(Mls::<openmls::prelude::KeyPackageIn>::from_bytes(broken).is_err());
    assert!(Mls::<openmls::prelude::KeyPackageIn>::from_bytes(o.credential.clone()).is_err());
}

#[test]
fn wire_7_5_apply_orders_roles_removals_appends() {
    let all = samples();
    let list =
        ParticipantListData::decode(&all.iter().find(|s| s.0 == "participant-list").unwrap().3)
            .unwrap();
    let update = ParticipantListUpdate::decode(
        &all.iter()
            .find(|s| s.0 == "participant-list-update")
            .unwrap()
            .3,
    )
    .unwrap();
    let next = list.apply(&update).unwrap();
    let got: Vec<(&str, u32)> = next
        .participants
        .iter()
        .map(|p| (p.user.as_str(), p.role_index))
        .collect();
    assert_eq!(
        got,
        [
            ("mimi://a.example/u/alice", 5),
            ("mimi://c.example/u/cathy", 1),
            ("mimi://d.example/u/diana", 4),
            ("mimi://e.example/u/eric", 3),
        ]
    );
    // WIRE-7.5-touch-once: the same user twice.
    let twice = ParticipantListUpdate {
        changed_role_participants: vec![UserIndexRolePair {
            user_index: 1,
            role_index: 3,
        }],
        removed_indices: vec![1],
        added_participants: vec![],
    };
    assert!(matches!(
        list.apply(&twice),
        Err(ApplyError::TouchedTwice { .. })
    ));
    let out_of_range = ParticipantListUpdate {
        removed_indices: vec![3],
        ..Default::default()
    };
    assert_eq!(
        list.apply(&out_of_range),
        Err(ApplyError::IndexOutOfRange { index: 3, len: 3 })
    );
    let again = ParticipantListUpdate {
        added_participants: vec![UserRolePair {
            user: user("mimi://b.example/u/bob"),
            role_index: 2,
        }],
        ..Default::default()
    };
    assert!(matches!(
        list.apply(&again),
        Err(ApplyError::AlreadyPresent { .. })
    ));
    // Removing and re-adding the same user in one update touches it twice.
    let readd = ParticipantListUpdate {
        removed_indices: vec![1],
        added_participants: vec![UserRolePair {
            user: user("mimi://b.example/u/bob"),
            role_index: 3,
        }],
        ..Default::default()
    };
    assert!(matches!(
        list.apply(&readd),
        Err(ApplyError::TouchedTwice { .. })
    ));
}

#[test]
fn wire_7_5_unique_user_in_the_list() {
    let dup = ParticipantListData {
        participants: vec![
            UserRolePair {
                user: user("mimi://a.example/u/alice"),
                role_index: 1,
            },
            UserRolePair {
                user: user("mimi://a.example/u/alice"),
                role_index: 2,
            },
        ],
    };
    assert!(ParticipantListData::decode(&dup.encode()).is_err());
}

/// A proposal and a commit sent as PrivateMessage (a group with the pure-ciphertext policy).
fn private_handshakes() -> (Vec<u8>, Vec<u8>) {
    use openmls::prelude::tls_codec::Serialize;
    use openmls::prelude::*;
    use openmls_basic_credential::SignatureKeyPair;
    use openmls_rust_crypto::OpenMlsRustCrypto;
    use openmls_traits::types::SignatureScheme;
    let p = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let cred = CredentialWithKey {
        credential: BasicCredential::new(b"mimi://a.example/d/alice/1".to_vec()).into(),
        signature_key: signer.to_public_vec().into(),
    };
    let cfg = MlsGroupCreateConfig::builder()
        .ciphersuite(crate::fixture::CS)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build();
    let mut g = MlsGroup::new(&p, &signer, &cfg, cred).unwrap();
    let (proposal, _) = g
        .propose_self_update(&p, &signer, LeafNodeParameters::default())
        .unwrap();
    let (commit, _, _) = g.commit_to_pending_proposals(&p, &signer).unwrap();
    (
        proposal.tls_serialize_detached().unwrap(),
        commit.tls_serialize_detached().unwrap(),
    )
}

#[test]
fn wire_5_3_handshakes_are_never_private_messages() {
    let (proposal, commit) = private_handshakes();
    assert_eq!(
        mimi_wire::mls_kind::header(&mls(&proposal))
            .unwrap()
            .wire_format,
        2
    );
    // HandshakeBundle: the proposal itself, and in moreProposals.
    let mut body = proposal.clone();
    body.push(0);
    let e = HandshakeBundle::decode(&body).unwrap_err();
    assert_eq!((e.field, e.offset), ("HandshakeBundle.proposalOrCommit", 0));
    assert_eq!(e.kind, WireErrorKind::BadValue(2));
    let good = HandshakeBundle::Proposal {
        proposal: mls(&objects().proposal),
        more_proposals: vec![mls(&proposal)],
    };
    let e = HandshakeBundle::decode(&good.encode()).unwrap_err();
    assert_eq!(e.field, "HandshakeBundle.moreProposals");
    // FanoutMessage (WIRE-5.5-wire-formats): a private commit, and a private stapled proposal.
    let fan = FanoutMessage {
        timestamp: 1,
        message: mls(&commit),
        extra: FanoutExtra::Commit(vec![]),
    };
    let e = FanoutMessage::decode(&fan.encode()).unwrap_err();
    assert_eq!((e.field, e.offset), ("FanoutMessage.message", 8));
    let fan = FanoutMessage {
        timestamp: 1,
        message: mls(&objects().commit),
        extra: FanoutExtra::Commit(vec![mls(&proposal)]),
    };
    let e = FanoutMessage::decode(&fan.encode()).unwrap_err();
    assert_eq!(e.field, "FanoutMessage.externalProposals");
    // A commit is not a proposal in moreProposals either.
    let fan = FanoutMessage {
        timestamp: 1,
        message: mls(&objects().proposal),
        extra: FanoutExtra::Proposal(vec![mls(&objects().commit)]),
    };
    assert!(FanoutMessage::decode(&fan.encode()).is_err());
}

#[test]
fn wire_7_6_utf8string_refuses_nul() {
    let mut meta = RoomMetaData::named(room(), "ok");
    assert!(RoomMetaData::decode(&meta.encode()).is_ok());
    meta.room_subject = "a\0b".into();
    let e = RoomMetaData::decode(&meta.encode()).unwrap_err();
    assert_eq!(
        (e.kind, e.field),
        (WireErrorKind::NulInText, "RoomMetaData.room_subject")
    );
}
