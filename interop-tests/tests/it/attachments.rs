//! Attachments across three providers (issue 15 item 6; `PROTO-5.10-*`, `CONTENT-external-*`):
//! Bob on b.example encrypts a file, uploads the ciphertext to his own provider (the asset
//! server) and sends the external part in a room hosted by a.example. Cathy on c.example
//! downloads it through c.example → the hub a.example (`proxyDownload`) → b.example and gets
//! the same bytes; Alice on the hub downloads directly from b.example. A blob altered on
//! b.example's disk is refused with a hash error; an upload over the provider's limit is 413;
//! someone outside the room gets 403. The hub refuses its own members' uploads that the room's
//! asset policy forbids (`PROTO-5.10-policy`); a follower cannot know the policy. The room's
//! download privacy and upload domains are enforced where the hub can see them
//! (`ROOM-policy-download-privacy`, `PROTO-5.10-policy-host`), and a member's provider may
//! fetch directly from the asset server (`PROTO-5.10-direct`).

use http::StatusCode;
use mimi_content::attachment::AttachmentError;
use mimi_content::attachment::stream::Opener;
use mimi_content::build::ContentBuilder;
use mimi_content::{ExternalPart, MimiContent, NestedPart, PartBody};
use mimi_harness::*;
use mimi_net::client::ClientApi;
use mimi_wire::id::RoomUri;
use mimi_wire::submit::SubmitOutcome;
use mimi_wire::update::UpdateOutcome;

/// The provider limit in these tests (node.toml `[assets] max_bytes`).
const MAX: u64 = 1024 * 1024;

async fn fed_with_assets(postgres: Option<&str>) -> Federation {
    let t = tag();
    let mut plan = Vec::new();
    for d in DOMAINS {
        let db = match postgres {
            Some(url) => pg_database(url, &format!("mimi_att_{}_{t}", &d[..1])).await,
            None => "sqlite".into(),
        };
        plan.push((d, d, db));
    }
    federation_with(&plan, 10_000, &format!("[assets]\nmax_bytes = {MAX}\n")).await
}

/// Uploads `data` (as `application/octet-stream`): the status and the answer.
async fn upload(
    api: &ClientApi,
    room: &RoomUri,
    data: &[u8],
) -> (StatusCode, String, Option<ExternalPart>) {
    upload_attachment(api, room, None, data).await
}

/// Downloads through the home node and opens piece by piece: the plaintext, or the status and
/// reason of a refusal, or the attachment error.
async fn download(
    api: &ClientApi,
    room: &RoomUri,
    part: &ExternalPart,
) -> Result<Vec<u8>, Result<(StatusCode, String), AttachmentError>> {
    download_via(api, room, part, None).await
}

/// [`download`] by a mechanism (`?via=`).
async fn download_via(
    api: &ClientApi,
    room: &RoomUri,
    part: &ExternalPart,
    via: Option<&str>,
) -> Result<Vec<u8>, Result<(StatusCode, String), AttachmentError>> {
    let via = via.map_or(String::new(), |v| format!("&via={v}"));
    let mut d = api
        .download(&format!(
            "download/{}?url={}{via}",
            enc(room.as_str()),
            enc(&part.url)
        ))
        .await
        .unwrap();
    if d.status != StatusCode::OK {
        let st = d.status;
        return Err(Ok((st, d.whole().await.unwrap().text())));
    }
    let mut o = Opener::new(part).unwrap();
    let mut out = Vec::new();
    while let Some(p) = d.next().await.unwrap() {
        out.extend(o.update(&p).map_err(Err)?);
    }
    o.finish().map_err(Err)?;
    Ok(out)
}

/// `PROTO-5.10-ohttp` as a device does it: the hub's keys through its own provider, `GET
/// <url>` encapsulated here, relayed by its provider, the answer opened and decrypted here.
/// `Err` is the outer or inner status with its reason.
async fn download_ohttp(
    api: &ClientApi,
    room: &RoomUri,
    part: &ExternalPart,
) -> Result<Vec<u8>, (StatusCode, String)> {
    let hub = room.provider();
    let r = api
        .request(
            http::Method::GET,
            &format!("ohttpKeys/{hub}"),
            Default::default(),
        )
        .await
        .unwrap();
    if r.status != StatusCode::OK {
        return Err((r.status, r.text()));
    }
    let (enc, keys) = mimi_net::ohttp::encapsulate_get(&r.body, &part.url).unwrap();
    let r = api
        .request(http::Method::POST, &format!("ohttpRelay/{hub}"), enc.into())
        .await
        .unwrap();
    if r.status != StatusCode::OK {
        return Err((r.status, r.text()));
    }
    let inner = keys.open_response(&r.body).unwrap();
    if inner.status != 200 {
        return Err((
            StatusCode::from_u16(inner.status).unwrap(),
            String::from_utf8_lossy(&inner.content).into_owned(),
        ));
    }
    let mut o = Opener::new(part).unwrap();
    let out = o.update(&inner.content).unwrap();
    o.finish().unwrap();
    Ok(out)
}

fn attachment_of(c: &MimiContent) -> Option<ExternalPart> {
    match &c.nested_part.body {
        PartBody::External(x) => Some(x.clone()),
        _ => None,
    }
}

async fn attachments(fed: &Federation) {
    let room = RoomUri::parse(&format!("mimi://a.example/r/files{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;
    let dave = Person::register(fed, "c.example", "dave", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    alice.add(&room, "mimi://c.example/u/cathy").await;
    let e = alice.epoch(&room);
    for p in [&mut bob, &mut cathy] {
        p.sync_until("joined", |p| p.epoch(&room) == e).await;
    }

    // PROTO-5.10-upload: several pieces (more than one 64 KiB read at the node).
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (st, why, part) = upload(&bob.api, &room, &data).await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
    let part = part.unwrap();
    assert!(
        part.url.starts_with("https://b.example/v1/assets/"),
        "{}",
        part.url
    );
    assert_eq!(part.size, data.len() as u64 + 16);
    let content = ContentBuilder::new(rand16(), NestedPart::attachment(part.clone()))
        .sender_and_room(bob.dev.user.as_str(), room.as_str())
        .build();
    assert!(matches!(
        bob.try_send(&room, &content).await,
        SubmitOutcome::Accepted { .. }
    ));
    let c = content.clone();
    cathy
        .sync_until("the attachment message", move |p| p.got(&c) == 1)
        .await;
    // CONTENT-external-*: every field of the external part arrives as sent.
    let got = cathy
        .messages()
        .iter()
        .find_map(attachment_of)
        .expect("an external part");
    assert_eq!(got, part);

    // PROTO-5.10-proxy: c.example → hub a.example (proxyDownload) → b.example.
    assert_eq!(download(&cathy.api, &room, &got).await.unwrap(), data);
    // The hub's own member: a.example fetches from b.example directly.
    assert_eq!(download(&alice.api, &room, &got).await.unwrap(), data);
    // The sender's provider serves its own member locally.
    assert_eq!(download(&bob.api, &room, &got).await.unwrap(), data);

    // PROTO-5.10-member: not in the room, no download and no upload.
    let e = download(&dave.api, &room, &got).await.unwrap_err().unwrap();
    assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
    assert!(e.1.contains("not a member"), "{}", e.1);
    let (st, why, _) = upload(&dave.api, &room, b"x").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    // An attachment URL of another room is refused for this one.
    let mut other = got.clone();
    other.url = other.url.replace("files", "elsewhere");
    let e = download(&cathy.api, &room, &other)
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
    // A URL that is not an attachment URL of this federation.
    let mut bad = got.clone();
    bad.url = "https://evil.example/x".into();
    let e = download(&cathy.api, &room, &bad)
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::BAD_REQUEST, "{}", e.1);
    // An unknown id at the asset server: 404, passed on by the hub and c.example.
    let mut missing = got.clone();
    let id = missing.url.rsplit('/').next().unwrap().to_owned();
    missing.url = missing.url.replace(&id, &"0".repeat(32));
    let e = download(&cathy.api, &room, &missing)
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::NOT_FOUND, "{}", e.1);

    // The hub's and the asset server's own checks, called as provider c.example directly.
    provider_checks(fed, &room, &got).await;
    download_privacy(&room, &mut alice, &cathy, &got, &data).await;

    // CONTENT-external-hash: one octet altered on the asset server's disk.
    let blob = fed.configs[1].parent().unwrap().join("assets").join(&id);
    let mut stored = std::fs::read(&blob).unwrap();
    assert_eq!(stored.len() as u64, part.size);
    stored[1000] ^= 0x01;
    std::fs::write(&blob, &stored).unwrap();
    let e = download(&cathy.api, &room, &got).await.unwrap_err();
    assert_eq!(e.unwrap_err(), AttachmentError::HashMismatch);

    // PROTO-5.10-size: over node.toml's max_bytes is 413 with the limit in the reason, and
    // nothing is kept.
    let big = vec![0u8; MAX as usize];
    let (st, why, _) = upload(&bob.api, &room, &big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{why}");
    assert!(why.contains("max_bytes"), "{why}");
    let kept = std::fs::read_dir(blob.parent().unwrap()).unwrap().count();
    assert_eq!(kept, 2, "one blob and its record");

    asset_policy_at_the_hub(fed, &room, &mut alice, &bob).await;
}

/// PROTO-5.10-policy: the hub a.example refuses its own members' uploads that the room's
/// asset policy forbids (413 too large for the kind, 415 forbidden or unlisted media type, 400
/// a media type that does not parse); a follower (b.example) cannot know the policy and takes
/// them (its clients check).
async fn asset_policy_at_the_hub(
    fed: &Federation,
    room: &RoomUri,
    alice: &mut Person,
    bob: &Person,
) {
    use mimi_room::room_policy::{AssetPolicy, MediaType};
    let policy = AssetPolicy {
        max_image: 1000,
        max_audio: 1000,
        max_video: 1000,
        max_attachment: 1000,
        forbidden_media_types: vec![MediaType::parse("video/mp4").unwrap()],
        ..AssetPolicy::default()
    };
    let outcome = alice.set_asset_policy(room, &policy).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let a_assets = fed.configs[0].parent().unwrap().join("assets");
    let blobs = || std::fs::read_dir(&a_assets).map_or(0, |d| d.count());
    let before = blobs();
    let (st, why, _) =
        upload_attachment(&alice.api, room, Some("application/pdf"), &[1; 2000]).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{why}");
    assert!(
        why.contains("asset policy") && why.contains("1000"),
        "{why}"
    );
    let (st, why, _) = upload_attachment(&alice.api, room, Some("video/mp4"), &[1; 10]).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{why}");
    assert!(why.contains("video/mp4"), "{why}");
    let (st, why, _) = upload_attachment(&alice.api, room, Some("not a type"), &[1; 10]).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{why}");
    // No type: application/octet-stream, an attachment within the limit.
    let (st, why, _) = upload_attachment(&alice.api, room, None, &[1; 10]).await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
    let (st, why, _) = upload_attachment(&alice.api, room, Some("image/png"), &[1; 100]).await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
    assert_eq!(
        blobs(),
        before + 4,
        "two blobs and their records; nothing of the refused"
    );
    // Only permitted types, when the room lists them.
    let only_png = AssetPolicy {
        permitted_media_types: Some(vec![MediaType::parse("image/png").unwrap()]),
        ..policy
    };
    let outcome = alice.set_asset_policy(room, &only_png).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let (st, why, _) = upload_attachment(&alice.api, room, Some("text/plain"), &[1; 10]).await;
    assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{why}");
    // A follower's upload for a room hosted elsewhere: b.example has no copy of the policy.
    let (st, why, _) = upload_attachment(&bob.api, room, Some("video/mp4"), &[1; 10]).await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
}

/// A provider's status and reason for `GET path` at `to`, calling as `from`.
async fn provider_get(fed: &Federation, from: &str, to: &str, path: &str) -> (StatusCode, String) {
    use mimi_net::client::Connector;
    use mimi_net::pki::{certs_from_pem, key_from_pem};
    let issued = fed.ca.issue(from).unwrap();
    let addrs: std::collections::HashMap<String, String> = fed
        .domains
        .iter()
        .cloned()
        .zip(fed.addrs.iter().cloned())
        .collect();
    let c = Connector::provider(
        from,
        &certs_from_pem(&issued.cert_pem, "cert").unwrap(),
        &key_from_pem(&issued.key_pem, "key").unwrap(),
        &fed.roots,
        addrs,
        mimi_net::NetLimits::default(),
    )
    .unwrap();
    let d = c
        .download(to, http::Method::GET, path, http::HeaderMap::new())
        .await
        .unwrap();
    let st = d.status;
    let r = d.whole().await.unwrap();
    c.close();
    (st, r.text())
}

/// PROTO-5.10-member at the hub and the asset server, PROTO-5.10-no-open-proxy.
async fn provider_checks(fed: &Federation, room: &RoomUri, part: &ExternalPart) {
    let proxy = |url: &str| format!("/v1/proxyDownload/{}", enc(url));
    // c.example has a member (Cathy): the hub relays.
    let (st, why) = provider_get(fed, "c.example", "a.example", &proxy(&part.url)).await;
    assert_eq!(st, StatusCode::OK, "{why}");
    // No open proxy: an asset server that is not a peer of the hub.
    let elsewhere = part.url.replace("https://b.example/", "https://d.example/");
    let (st, why) = provider_get(fed, "c.example", "a.example", &proxy(&elsewhere)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("not a peer provider"), "{why}");
    // A room with no client of the calling provider: Alice and Bob only.
    let private = RoomUri::parse(&format!("mimi://a.example/r/private{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice2", "1").await;
    alice.create_room(&private).await;
    let other = part
        .url
        .replace(&enc(room.as_str()), &enc(private.as_str()));
    let (st, why) = provider_get(fed, "c.example", "a.example", &proxy(&other)).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("has no clients in"), "{why}");
    // PROTO-5.10-direct: the asset server (a follower) gives the ciphertext to the room's
    // hub and to a provider that its roster of the room has clients of (c.example: Cathy),
    // nobody else (c.example has none in the private room, which b.example does not follow).
    let path = part.url.strip_prefix("https://b.example").unwrap();
    let (st, why) = provider_get(fed, "c.example", "b.example", path).await;
    assert_eq!(st, StatusCode::OK, "{why}");
    let path = other.strip_prefix("https://b.example").unwrap();
    let (st, why) = provider_get(fed, "c.example", "b.example", path).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("has no clients"), "{why}");
}

/// ROOM-policy-download-privacy and PROTO-5.10-policy-host at the hub; PROTO-5.10-direct and
/// the `via` of the client API.
async fn download_privacy(
    room: &RoomUri,
    alice: &mut Person,
    cathy: &Person,
    part: &ExternalPart,
    data: &[u8],
) {
    use mimi_room::room_policy::AssetPolicy;
    use mimi_wire::room_policy::{
        AssetUploadLocation, DownloadPrivacy, DownloadPrivacyType, ProviderAssetUploadDomains,
    };
    let open = AssetPolicy {
        max_image: u64::MAX,
        max_audio: u64::MAX,
        max_video: u64::MAX,
        max_attachment: u64::MAX,
        ..AssetPolicy::default()
    };
    let no_proxy = AssetPolicy {
        download_privacy: DownloadPrivacy {
            allowed_download_types: vec![],
            forbidden_download_types: vec![DownloadPrivacyType::HubProxy],
            default_download_type: DownloadPrivacyType::Direct,
        },
        ..open.clone()
    };
    let outcome = alice.set_asset_policy(room, &no_proxy).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    // Through the hub's proxy: the hub refuses (c.example passes its 403 on).
    let e = download_via(&cathy.api, room, part, Some("hubProxy"))
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
    assert!(e.1.contains("download_privacy"), "{}", e.1);
    // Direct: c.example fetches from b.example itself.
    assert_eq!(
        download_via(&cathy.api, room, part, Some("direct"))
            .await
            .unwrap(),
        data
    );
    // The hub's own member asked for hubProxy: refused at the hub too; direct is fine.
    let e = download_via(&alice.api, room, part, Some("hubProxy"))
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
    assert_eq!(
        download_via(&alice.api, room, part, Some("direct"))
            .await
            .unwrap(),
        data
    );
    // PROTO-5.10-ohttp: an ohttp download is the device's to encapsulate (the download
    // endpoint says where); through c.example's relay and a.example's gateway it is allowed
    // here; an unknown mechanism is 400.
    let e = download_via(&cathy.api, room, part, Some("ohttp"))
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::BAD_REQUEST, "{}", e.1);
    assert!(e.1.contains("ohttpRelay"), "{}", e.1);
    assert_eq!(download_ohttp(&cathy.api, room, part).await.unwrap(), data);
    let e = download_via(&cathy.api, room, part, Some("pigeon"))
        .await
        .unwrap_err()
        .unwrap();
    assert_eq!(e.0, StatusCode::BAD_REQUEST, "{}", e.1);
    // A room that forbids ohttp: the gateway's target refuses inside the answer.
    let no_ohttp = AssetPolicy {
        download_privacy: DownloadPrivacy {
            allowed_download_types: vec![],
            forbidden_download_types: vec![DownloadPrivacyType::Ohttp],
            default_download_type: DownloadPrivacyType::HubProxy,
        },
        ..open.clone()
    };
    let outcome = alice.set_asset_policy(room, &no_ohttp).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = download_ohttp(&cathy.api, room, part).await.unwrap_err();
    assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
    assert!(e.1.contains("forbids ohttp"), "{}", e.1);

    // PROTO-5.10-policy-host: assets at each sender's provider, b.example not listed. The
    // hub fetches nothing from b.example for its member or by proxy, and takes no upload of
    // its own members when its own domain is not listed.
    let listed = |ps: &[&str]| {
        ps.iter()
            .map(|p| ProviderAssetUploadDomains {
                provider: (*p).into(),
                asset_upload_destinations: vec![(*p).into()],
            })
            .collect::<Vec<_>>()
    };
    let not_b = AssetPolicy {
        asset_upload_location: AssetUploadLocation::LocalProvider,
        upload_domains: listed(&["a.example", "c.example"]),
        ..open.clone()
    };
    let outcome = alice.set_asset_policy(room, &not_b).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    for who in [&alice.api, &cathy.api] {
        let e = download(who, room, part).await.unwrap_err().unwrap();
        assert_eq!(e.0, StatusCode::FORBIDDEN, "{}", e.1);
        assert!(e.1.contains("upload_domains"), "{}", e.1);
    }
    let (st, why, _) = upload(&alice.api, room, b"fine").await;
    assert_eq!(st, StatusCode::CREATED, "{why}");
    let only_b = AssetPolicy {
        upload_domains: listed(&["b.example"]),
        ..not_b
    };
    let outcome = alice.set_asset_policy(room, &only_b).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let (st, why, _) = upload(&alice.api, room, b"nope").await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("upload destinations"), "{why}");
    assert_eq!(download(&cathy.api, room, part).await.unwrap(), data);

    let outcome = alice.set_asset_policy(room, &open).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn proto_5_10_attachments_across_three_providers_sqlite() {
    let fed = fed_with_assets(None).await;
    let dir = fed.dir.clone();
    attachments(&fed).await;
    fed.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn proto_5_10_attachments_across_three_providers_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = fed_with_assets(Some(&url)).await;
    let dir = fed.dir.clone();
    attachments(&fed).await;
    fed.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
