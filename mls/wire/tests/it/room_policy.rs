//! The room-policy-03 §6 components clients notice: byte-exact encodings, round-trips and the
//! draft's invariants refused (`ROOM-policy-status`, `ROOM-policy-link-preview`,
//! `ROOM-policy-assets`, `ROOM-policy-upload-domains`, `ROOM-policy-download-privacy`,
//! `ROOM-policy-history`, `ROOM-policy-expiry`).

use mimi_wire::codec::Body;
use mimi_wire::room_policy::url_host;
use mimi_wire::room_policy::{
    AssetPolicy, AssetRefusal, AssetUploadLocation, DownloadPrivacy, DownloadPrivacyType,
    ExpirationDurations, HistoryPolicy, HistorySharing, LinkPreviewPolicy, MediaType,
    MessageExpiration, Optionality, ProviderAssetUploadDomains, StatusNotificationPolicy,
};
use proptest::prelude::*;
use std::fmt::Debug;

fn exact<T: Body + PartialEq + Debug>(v: &T, hex_bytes: &str) {
    let b = v.encode();
    assert_eq!(hex::encode(&b), hex_bytes, "{}", T::NAME);
    assert_eq!(&T::decode(&b).unwrap(), v, "{}", T::NAME);
}

#[test]
fn room_policy_status_encoding_is_byte_exact() {
    exact(
        &StatusNotificationPolicy {
            delivery_notifications: Optionality::Required,
            read_receipts: Optionality::Forbidden,
        },
        "0102",
    );
    // An unknown Optionality value is refused.
    assert!(StatusNotificationPolicy::decode(&[0, 3]).is_err());
    assert!(StatusNotificationPolicy::decode(&[0, 0, 0]).is_err());
}

#[test]
fn room_policy_link_preview_encoding_is_byte_exact() {
    let mut p = LinkPreviewPolicy {
        autodetect_hyperlinks_in_text: Optionality::Optional,
        send_link_previews: Optionality::Required,
        automatic_link_previews: Optionality::Forbidden,
        link_preview_proxy_use: Optionality::Required,
        link_preview_proxy: vec!["https://p".into()],
    };
    // 4 Optionality bytes, then Uri link_preview_proxy<V> = one Uri (opaque<V>).
    exact(&p, "000102010a0968747470733a2f2f70");
    // Forbidden proxy: the select arm is empty.
    p.link_preview_proxy_use = Optionality::Forbidden;
    p.link_preview_proxy.clear();
    exact(&p, "00010202");
    // autodetect MUST NOT be mandatory; a required/optional proxy needs a URI.
    assert!(LinkPreviewPolicy::decode(&[1, 0, 0, 2]).is_err());
    assert!(LinkPreviewPolicy::decode(&[0, 0, 0, 0, 0]).is_err());
}

fn asset_policy() -> AssetPolicy {
    AssetPolicy {
        asset_upload_location: AssetUploadLocation::LocalProvider,
        upload_domains: vec![ProviderAssetUploadDomains {
            provider: "a.x".into(),
            asset_upload_destinations: vec!["up.a.x".into()],
        }],
        download_privacy: DownloadPrivacy {
            allowed_download_types: vec![DownloadPrivacyType::Direct, DownloadPrivacyType::Ohttp],
            forbidden_download_types: vec![DownloadPrivacyType::HubProxy],
            default_download_type: DownloadPrivacyType::Ohttp,
        },
        max_image: 1000,
        max_audio: 2000,
        max_video: 0,
        max_attachment: 500,
        forbidden_media_types: vec![MediaType {
            media_type: "text/html".into(),
            parameters: vec![],
        }],
        permitted_media_types: Some(vec![
            MediaType {
                media_type: "image/png".into(),
                parameters: vec![],
            },
            MediaType {
                media_type: "text/plain".into(),
                parameters: vec![("charset".into(), "utf-8".into())],
            },
            MediaType {
                media_type: "text/html".into(),
                parameters: vec![],
            },
            MediaType {
                media_type: "application/pdf".into(),
                parameters: vec![],
            },
            MediaType {
                media_type: "audio/ogg".into(),
                parameters: vec![],
            },
        ]),
    }
}

#[test]
fn room_policy_assets_encoding_is_byte_exact() {
    let p = AssetPolicy {
        permitted_media_types: Some(vec![MediaType {
            media_type: "image/png".into(),
            parameters: vec![("a".into(), "b".into())],
        }]),
        ..asset_policy()
    };
    exact(
        &p,
        concat!(
            "01", // localProvider
            "0c",
            "03612e78",
            "07",
            "06",
            "75702e612e78", // upload_domains
            "020002",
            "0101",
            "02", // download privacy
            "00000000000003e8",
            "00000000000007d0",
            "0000000000000000",
            "00000000000001f4",
            "0b",
            "09746578742f68746d6c",
            "00", // forbidden: text/html, no parameters
            "01",
            "0f",
            "09696d6167652f706e67",
            "04",
            "01610162", // permitted
        ),
    );
    let mut none = p.clone();
    none.permitted_media_types = None;
    let b = none.encode();
    assert_eq!(
        b.last(),
        Some(&0),
        "absent permitted list is optional<> = 0"
    );
    assert_eq!(AssetPolicy::decode(&b).unwrap(), none);
    // Unknown enum values are refused.
    let mut bad = p.encode();
    bad[0] = 3;
    assert!(AssetPolicy::decode(&bad).is_err());
}

#[test]
fn room_policy_assets_check_sizes_and_media_types() {
    let p = asset_policy();
    assert_eq!(p.check(1000, "image/png"), Ok(()));
    assert_eq!(
        p.check(1001, "image/png"),
        Err(AssetRefusal::TooLarge {
            kind: "image",
            size: 1001,
            max: 1000
        })
    );
    // max 0 accepts no asset of the kind.
    assert!(matches!(
        p.check(1, "video/mp4"),
        Err(AssetRefusal::TooLarge { kind: "video", .. })
    ));
    assert_eq!(p.check(10, "application/pdf"), Ok(()));
    assert!(matches!(
        p.check(501, "application/pdf"),
        Err(AssetRefusal::TooLarge {
            kind: "attachment",
            ..
        })
    ));
    // An entry without parameters matches parameterized variants (case-insensitive).
    assert_eq!(p.check(10, "Audio/OGG; codecs=opus"), Ok(()));
    // An entry with parameters matches only those.
    assert_eq!(p.check(10, "text/plain; charset=\"utf-8\""), Ok(()));
    assert!(matches!(
        p.check(10, "text/plain; charset=latin1"),
        Err(AssetRefusal::NotPermitted(_))
    ));
    // Forbidden wins over permitted.
    assert!(matches!(
        p.check(10, "text/html; charset=utf-8"),
        Err(AssetRefusal::Forbidden(_))
    ));
    assert!(matches!(
        p.check(10, "image/gif"),
        Err(AssetRefusal::NotPermitted(_))
    ));
    assert!(matches!(
        p.check(10, "nonsense"),
        Err(AssetRefusal::BadMediaType(_))
    ));
    let open = AssetPolicy {
        permitted_media_types: None,
        ..asset_policy()
    };
    assert_eq!(open.check(10, "image/gif"), Ok(()));
}

/// ROOM-policy-upload-domains (room-policy-03 §6.4): unless the location is unspecified, the
/// host of an ExternalPart's URL must be an upload destination of the sender's provider
/// (localProvider: the entry whose provider is exactly the sender's domain) or of the hub.
#[test]
fn room_policy_upload_domains_checked_by_sender_and_hub() {
    assert_eq!(
        url_host("https://Up.A.x:8443/v1/assets/r/1"),
        Some("up.a.x".into())
    );
    assert_eq!(url_host("https://u@up.a.x/x"), Some("up.a.x".into()));
    assert_eq!(url_host("https://[::1]:4/x"), Some("::1".into()));
    assert_eq!(url_host("https://up.a.x?x"), Some("up.a.x".into()));
    assert_eq!(url_host("up.a.x/x"), None);
    assert_eq!(url_host("https:///x"), None);

    let p = asset_policy();
    let url = "https://up.a.x/v1/assets/r/1";
    assert_eq!(p.check_url(url, "a.x", "hub.x"), Ok(()));
    assert_eq!(p.check_url("https://UP.a.x/z", "a.x", "hub.x"), Ok(()));
    // Another provider's destination, the sender's own domain, a provider with no entry.
    match p.check_url("https://a.x/v1/assets/r/1", "a.x", "hub.x") {
        Err(AssetRefusal::UploadDomain {
            host,
            location,
            allowed,
            ..
        }) => {
            assert_eq!(host, "a.x");
            assert_eq!(location, "localProvider");
            assert_eq!(allowed, vec!["up.a.x".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    match p.check_url(url, "b.x", "hub.x") {
        Err(AssetRefusal::UploadDomain { allowed, whose, .. }) => {
            assert!(allowed.is_empty());
            assert!(whose.contains("b.x"), "{whose}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.check_url("not a url", "a.x", "hub.x"),
        Err(AssetRefusal::BadUrl(_))
    ));
    // hub: only the hub's entry counts, whoever sent it.
    let hub = AssetPolicy {
        asset_upload_location: AssetUploadLocation::Hub,
        upload_domains: vec![ProviderAssetUploadDomains {
            provider: "hub.x".into(),
            asset_upload_destinations: vec!["cdn.hub.x".into()],
        }],
        ..asset_policy()
    };
    assert_eq!(hub.check_url("https://cdn.hub.x/1", "b.x", "hub.x"), Ok(()));
    assert!(hub.check_url(url, "a.x", "hub.x").is_err());
    assert!(hub.lists_host("cdn.hub.x") && !hub.lists_host("up.a.x"));
    // unspecified: anywhere.
    let any = AssetPolicy {
        asset_upload_location: AssetUploadLocation::Unspecified,
        ..asset_policy()
    };
    assert_eq!(
        any.check_url("https://else.where/1", "z.x", "hub.x"),
        Ok(())
    );
    assert_eq!(any.check_url("not a url", "z.x", "hub.x"), Ok(()));
    assert!(any.lists_host("else.where"));
}

/// ROOM-policy-download-privacy: allowed minus forbidden (an empty allowed list restricts
/// nothing); the client takes what it was asked for, else the default, else the first of its
/// own it may use.
#[test]
fn room_policy_download_privacy_chooses_an_allowed_mechanism() {
    use DownloadPrivacyType::{Direct, HubProxy, Ohttp};
    let ours = [HubProxy, Direct];
    let d = asset_policy().download_privacy; // allowed direct, ohttp; forbidden hubProxy
    assert!(d.allows(Direct) && d.allows(Ohttp) && !d.allows(HubProxy));
    // The default (ohttp) is not ours: the first of ours that is allowed.
    assert_eq!(d.choose(&ours, None), Ok(Direct));
    assert!(matches!(
        d.choose(&ours, Some(HubProxy)),
        Err(AssetRefusal::DownloadForbidden { by: "hubProxy", .. })
    ));
    assert!(matches!(
        d.choose(&ours, Some(Ohttp)),
        Err(AssetRefusal::DownloadUnsupported { .. })
    ));
    let only_ohttp = DownloadPrivacy {
        allowed_download_types: vec![Ohttp],
        forbidden_download_types: vec![],
        default_download_type: Ohttp,
    };
    match only_ohttp.choose(&ours, None) {
        Err(e @ AssetRefusal::DownloadUnsupported { .. }) => {
            assert!(e.to_string().contains("ohttp"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let open = DownloadPrivacy {
        allowed_download_types: vec![],
        forbidden_download_types: vec![Direct],
        default_download_type: HubProxy,
    };
    assert!(open.allows(HubProxy) && open.allows(Ohttp) && !open.allows(Direct));
    assert_eq!(open.choose(&ours, None), Ok(HubProxy));
    let direct_default = DownloadPrivacy {
        default_download_type: Direct,
        ..DownloadPrivacy::default()
    };
    assert_eq!(direct_default.choose(&ours, None), Ok(Direct));
    assert_eq!(direct_default.choose(&ours, Some(HubProxy)), Ok(HubProxy));
}

#[test]
fn room_policy_history_encoding_is_byte_exact() {
    let mut p = HistoryPolicy {
        history_sharing: Optionality::Optional,
        sharing: HistorySharing {
            roles_that_can_share: vec![3, 4],
            automatically_share: true,
            max_time_period: 86400,
        },
    };
    exact(&p, "000800000003000000040100015180");
    // Forbidden: the select arm is empty.
    p.history_sharing = Optionality::Forbidden;
    p.sharing = HistorySharing::default();
    exact(&p, "02");
    // Roles 0 and 1 may not share.
    assert!(HistoryPolicy::decode(&hex::decode("00040000000100000000").unwrap()).is_err());
}

#[test]
fn room_policy_expiry_encoding_is_byte_exact() {
    let mut p = MessageExpiration {
        expiring_messages: Optionality::Required,
        durations: ExpirationDurations {
            min: 60,
            max: 604800,
            default: Some(3600),
        },
    };
    exact(&p, "010000003c00093a800100000e10");
    p.durations.default = None;
    exact(&p, "010000003c00093a8000");
    p.expiring_messages = Optionality::Forbidden;
    p.durations = ExpirationDurations::default();
    exact(&p, "02");
    // max < min, and a default outside [min, max], are refused.
    assert!(MessageExpiration::decode(&hex::decode("00000000100000000f00").unwrap()).is_err());
    assert!(
        MessageExpiration::decode(&hex::decode("00000000010000000f0100000010").unwrap()).is_err()
    );
}

fn opt() -> impl Strategy<Value = Optionality> {
    prop_oneof![
        Just(Optionality::Optional),
        Just(Optionality::Required),
        Just(Optionality::Forbidden)
    ]
}

proptest! {
    #[test]
    fn room_policy_components_round_trip(
        a in opt(), b in opt(), min in 0u32..1000, span in 0u32..1000, def in proptest::option::of(0u32..1000),
        roles in proptest::collection::vec(2u32..20, 0..4), auto in any::<bool>(), period in any::<u32>(),
    ) {
        let s = StatusNotificationPolicy { delivery_notifications: a, read_receipts: b };
        prop_assert_eq!(StatusNotificationPolicy::decode(&s.encode()).unwrap(), s);
        let e = MessageExpiration {
            expiring_messages: a,
            durations: if a == Optionality::Forbidden { ExpirationDurations::default() } else {
                ExpirationDurations { min, max: min + span, default: def.map(|d| min + d % (span + 1)) }
            },
        };
        prop_assert_eq!(MessageExpiration::decode(&e.encode()).unwrap(), e);
        let h = HistoryPolicy {
            history_sharing: b,
            sharing: if b == Optionality::Forbidden { HistorySharing::default() } else {
                HistorySharing { roles_that_can_share: roles, automatically_share: auto, max_time_period: period }
            },
        };
        prop_assert_eq!(HistoryPolicy::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn room_policy_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = StatusNotificationPolicy::decode(&bytes);
        let _ = LinkPreviewPolicy::decode(&bytes);
        let _ = AssetPolicy::decode(&bytes);
        let _ = HistoryPolicy::decode(&bytes);
        let _ = MessageExpiration::decode(&bytes);
    }
}
