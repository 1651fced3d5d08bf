//! Published byte vectors of the room-policy-03 components (`interop-tests/vectors/room-policy`,
//! `ROOM-policy-vectors`): one JSON file per sample with the component ID, the struct's name
//! and its exact bytes. The test checks that every committed file decodes with its struct,
//! re-encodes byte-exact, and is exactly what the samples below give (a change of an encoding
//! fails here). Regenerate: `cargo test -p mimi-room --test it -- --ignored regenerate_policy_vectors`.

use mimi_room::codepoints::CodePoints;
use mimi_room::join_links::{JoinLinkPolicy, JoinLinksData, JoinLinksUpdate};
use mimi_room::presets::{private_group, public_room};
use mimi_room::roles::{BaseRoomPolicy, RoleData};
use mimi_wire::codec::Body;
use mimi_wire::operational::{
    AppMessagePolicy, ExtendedCapabilities, MinDefaultMaxTime, OperationalParameters,
    PendingProposalPolicy,
};
use mimi_wire::room_policy::{
    AssetPolicy, AssetUploadLocation, DownloadPrivacy, DownloadPrivacyType, ExpirationDurations,
    HistoryPolicy, HistorySharing, LinkPreviewPolicy, MediaType, MessageExpiration, Optionality,
    ProviderAssetUploadDomains, StatusNotificationPolicy,
};
use mimi_wire::room_policy::{Bot, BotPolicy, LoggingPolicy};
use serde_json::{Value, json};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop-tests/vectors/room-policy")
}

struct Sample {
    name: &'static str,
    strukt: &'static str,
    component: u16,
    description: &'static str,
    bytes: Vec<u8>,
}

fn media(t: &str) -> MediaType {
    MediaType {
        media_type: t.into(),
        parameters: vec![],
    }
}

fn samples() -> Vec<Sample> {
    let cp = CodePoints::DRAFT;
    let room = "mimi://a.example/r/clubhouse";
    let s = |name, strukt, component, description, bytes| Sample {
        name,
        strukt,
        component,
        description,
        bytes,
    };
    vec![
        s(
            "roles-private-group",
            "RoleData",
            cp.roles_list,
            "the roles of mimi-node's private-group preset (room-policy-03 \"cooperative\" with role 0 holding canUseJoinCode)",
            private_group(&cp).roles.encode(),
        ),
        s(
            "roles-public-room",
            "RoleData",
            cp.roles_list,
            "the roles of mimi-node's public-room preset (role 0 holds canOpenJoin into role 2)",
            public_room(&cp).roles.encode(),
        ),
        s(
            "base-policy-private-group",
            "BaseRoomPolicy",
            cp.base_room_policy,
            "the base policy of the private-group preset",
            private_group(&cp).base.encode(),
        ),
        s(
            "join-link-policy",
            "JoinLinkPolicy",
            cp.join_link_policy,
            "single-use links made on request, lasting an hour",
            JoinLinkPolicy {
                on_request: true,
                join_link: room.into(),
                multiuser: false,
                expiration: 3600,
            }
            .encode(),
        ),
        s(
            "join-links",
            "JoinLinksData",
            cp.join_links,
            "two links (the joiningCode of a GroupInfoRequest is a link's bytes)",
            JoinLinksData {
                links: vec![
                    format!("{room}?join=00112233445566778899aabbccddeeff").into_bytes(),
                    format!("{room}?join=ffeeddccbbaa99887766554433221100").into_bytes(),
                ],
            }
            .encode(),
        ),
        s(
            "join-links-update",
            "JoinLinksUpdate",
            cp.join_links,
            "removes link 0 (a single-use link its joiner used) and adds one",
            JoinLinksUpdate {
                removed_indices: vec![0],
                added_links: vec![
                    format!("{room}?join=0123456789abcdef0123456789abcdef").into_bytes(),
                ],
            }
            .encode(),
        ),
        s(
            "status-notification-policy",
            "StatusNotificationPolicy",
            mimi_wire::room_policy::STATUS_NOTIFICATION_POLICY,
            "delivery notifications optional, read receipts required",
            StatusNotificationPolicy {
                delivery_notifications: Optionality::Optional,
                read_receipts: Optionality::Required,
            }
            .encode(),
        ),
        s(
            "link-preview-policy",
            "LinkPreviewPolicy",
            mimi_wire::room_policy::LINK_PREVIEW_POLICY,
            "previews optional through a required proxy",
            LinkPreviewPolicy {
                autodetect_hyperlinks_in_text: Optionality::Optional,
                send_link_previews: Optionality::Optional,
                automatic_link_previews: Optionality::Forbidden,
                link_preview_proxy_use: Optionality::Required,
                link_preview_proxy: vec!["https://preview.a.example/".into()],
            }
            .encode(),
        ),
        s(
            "asset-policy",
            "AssetPolicy",
            mimi_wire::room_policy::ASSET_POLICY,
            "uploads to the sender's provider, hub-proxied downloads, 10 MB images, 1 MB attachments, no HTML",
            AssetPolicy {
                asset_upload_location: AssetUploadLocation::LocalProvider,
                upload_domains: vec![ProviderAssetUploadDomains {
                    provider: "a.example".into(),
                    asset_upload_destinations: vec!["a.example".into()],
                }],
                download_privacy: DownloadPrivacy {
                    allowed_download_types: vec![DownloadPrivacyType::HubProxy],
                    forbidden_download_types: vec![DownloadPrivacyType::Direct],
                    default_download_type: DownloadPrivacyType::HubProxy,
                },
                max_image: 10_000_000,
                max_audio: 5_000_000,
                max_video: 0,
                max_attachment: 1_000_000,
                forbidden_media_types: vec![media("text/html")],
                permitted_media_types: None,
            }
            .encode(),
        ),
        s(
            "chat-history-policy",
            "HistoryPolicy",
            mimi_wire::room_policy::CHAT_HISTORY_POLICY,
            "roles 2 and 3 may share up to a week of history",
            HistoryPolicy {
                history_sharing: Optionality::Optional,
                sharing: HistorySharing {
                    roles_that_can_share: vec![2, 3],
                    automatically_share: false,
                    max_time_period: 7 * 86_400,
                },
            }
            .encode(),
        ),
        s(
            "message-expiration-policy",
            "MessageExpiration",
            mimi_wire::room_policy::MESSAGE_EXPIRATION_POLICY,
            "expiring messages optional, 1 min to 1 day, default 1 hour",
            MessageExpiration {
                expiring_messages: Optionality::Optional,
                durations: ExpirationDurations {
                    min: 60,
                    max: 86_400,
                    default: Some(3600),
                },
            }
            .encode(),
        ),
        s(
            "logging-policy",
            "LoggingPolicy",
            mimi_wire::room_policy::LOGGING_POLICY,
            "logging required, by one archiver of a.example, with a human-readable policy",
            LoggingPolicy {
                logging: Optionality::Required,
                logging_clients: vec!["mimi://a.example/d/archiver/1".into()],
                machine_readable_policy: String::new(),
                human_readable_policy: "https://a.example/logging".into(),
            }
            .encode(),
        ),
        s(
            "bot-policy",
            "BotPolicy",
            mimi_wire::room_policy::BOT_POLICY,
            "one bot in role 2 that may send each member different content",
            BotPolicy {
                allowed_bots: vec![Bot {
                    name: "poker".into(),
                    description: "deals cards".into(),
                    homepage: "https://bots.example/poker".into(),
                    local_client_bot: false,
                    bot_role_index: 2,
                    can_target_message_in_group: true,
                    per_user_content: true,
                }],
            }
            .encode(),
        ),
        s(
            "operational-parameters",
            "OperationalParameters",
            mimi_wire::operational::MLS_OPERATIONAL_POLICY,
            "no external commits, SelfRemove forbidden, AppDataDictionary mandatory, PublicMessage handshakes, random commit delay 10-500 ms, padding to 32, KeyPackages valid at most 90 days",
            OperationalParameters {
                mandatory_capabilities: ExtendedCapabilities {
                    extensions: vec![0x0006],
                    ..Default::default()
                },
                forbidden_capabilities: ExtendedCapabilities {
                    proposals: vec![0x000a],
                    ..Default::default()
                },
                handshake_formats: vec![0x0001],
                external_commit_allowed: false,
                pending_proposal_policy: PendingProposalPolicy::RandomDelay {
                    minimum_delay_ms: 10,
                    maximum_delay_ms: 500,
                },
                leaf_node_update_time: MinDefaultMaxTime {
                    minimum_time: 60,
                    default_time: 86_400,
                    maximum_time: 604_800,
                },
                app_message_policy: AppMessagePolicy {
                    epoch_tolerance: 4,
                    pad_to_size: 32,
                    max_generations_skipahead: 1000,
                },
                max_kp_lifetime: 90 * 86_400,
                ..OperationalParameters::permissive()
            }
            .encode(),
        ),
    ]
}

/// Decodes `bytes` as `strukt` and encodes it again.
fn round_trip(strukt: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    fn rt<T: Body>(b: &[u8]) -> Result<Vec<u8>, String> {
        T::decode(b).map(|v| v.encode()).map_err(|e| e.to_string())
    }
    match strukt {
        "RoleData" => rt::<RoleData>(bytes),
        "BaseRoomPolicy" => rt::<BaseRoomPolicy>(bytes),
        "JoinLinkPolicy" => rt::<JoinLinkPolicy>(bytes),
        "JoinLinksData" => rt::<JoinLinksData>(bytes),
        "JoinLinksUpdate" => rt::<JoinLinksUpdate>(bytes),
        "StatusNotificationPolicy" => rt::<StatusNotificationPolicy>(bytes),
        "LinkPreviewPolicy" => rt::<LinkPreviewPolicy>(bytes),
        "AssetPolicy" => rt::<AssetPolicy>(bytes),
        "HistoryPolicy" => rt::<HistoryPolicy>(bytes),
        "MessageExpiration" => rt::<MessageExpiration>(bytes),
        "LoggingPolicy" => rt::<LoggingPolicy>(bytes),
        "BotPolicy" => rt::<BotPolicy>(bytes),
        "OperationalParameters" => rt::<OperationalParameters>(bytes),
        other => Err(format!("no decoder for {other}")),
    }
}

fn file_of(s: &Sample) -> Value {
    json!({
        "name": s.name,
        "struct": s.strukt,
        "draft": "draft-ietf-mimi-room-policy-03",
        "component_id": format!("{:#06x}", s.component),
        "description": s.description,
        "hex": hex::encode(&s.bytes),
    })
}

fn text_of(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
#[ignore = "writes interop-tests/vectors/room-policy"]
fn regenerate_policy_vectors() {
    std::fs::create_dir_all(dir()).unwrap();
    for s in samples() {
        std::fs::write(
            dir().join(format!("{}.json", s.name)),
            text_of(&file_of(&s)),
        )
        .unwrap();
    }
}

/// ROOM-policy-vectors: the committed vectors are what the samples give, and each decodes and
/// re-encodes byte-exact.
#[test]
fn room_policy_vectors_decode_re_encode_and_do_not_drift() {
    let samples = samples();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), samples.len(), "{files:?}");
    for s in &samples {
        let path = dir().join(format!("{}.json", s.name));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, text_of(&file_of(s)), "{} drifted", s.name);
        let v: Value = serde_json::from_str(&text).unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let again = round_trip(v["struct"].as_str().unwrap(), &bytes).unwrap();
        assert_eq!(again, bytes, "{}", s.name);
    }
}
