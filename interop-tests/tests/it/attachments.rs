//! Attachments across three providers (issue 15 item 6; `PROTO-5.10-*`, `CONTENT-external-*`):
//! Bob on b.example encrypts a file, uploads the ciphertext to his own provider (the asset
//! server) and sends the external part in a room hosted by a.example. Cathy on c.example
//! downloads it through c.example → the hub a.example (`proxyDownload`) → b.example and gets
//! the same bytes; Alice on the hub downloads directly from b.example. A blob altered on
//! b.example's disk is refused with a hash error; an upload over the provider's limit is 413;
//! someone outside the room gets 403.

use bytes::Bytes;
use http::StatusCode;
use mimi_content::attachment::AttachmentError;
use mimi_content::attachment::stream::{Opener, Sealer};
use mimi_content::build::ContentBuilder;
use mimi_content::{ExternalPart, MimiContent, NestedPart, PartBody};
use mimi_interop::*;
use mimi_net::client::ClientApi;
use mimi_net::stream::pieces;
use mimi_wire::id::RoomUri;
use mimi_wire::submit::SubmitOutcome;

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

/// Encrypts `data` piece by piece and uploads the ciphertext: the status and the answer.
async fn upload(
    api: &ClientApi,
    room: &RoomUri,
    data: &[u8],
) -> (StatusCode, String, Option<ExternalPart>) {
    let mut sealer = Sealer::new().unwrap();
    let (tx, rx) = pieces();
    let plain = data.to_vec();
    let producer = tokio::spawn(async move {
        for c in plain.chunks(50_000) {
            let mut c = c.to_vec();
            sealer.seal(&mut c).unwrap();
            if tx.send(Ok(Bytes::from(c))).await.is_err() {
                return None;
            }
        }
        let sealed = sealer.finish();
        tx.send(Ok(Bytes::copy_from_slice(&sealed.tag)))
            .await
            .ok()?;
        Some(sealed)
    });
    let r = api
        .upload(
            &format!("assets/{}", enc(room.as_str())),
            data.len() as u64 + 16,
            rx,
        )
        .await
        .unwrap();
    let sealed = producer.await.unwrap();
    if r.status != StatusCode::CREATED {
        return (r.status, r.text(), None);
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let url = v["url"].as_str().unwrap();
    let part = sealed
        .unwrap()
        .part("application/octet-stream", url, "data.bin", "test data");
    (r.status, r.text(), Some(part))
}

/// Downloads through the home node and opens piece by piece: the plaintext, or the status and
/// reason of a refusal, or the attachment error.
async fn download(
    api: &ClientApi,
    room: &RoomUri,
    part: &ExternalPart,
) -> Result<Vec<u8>, Result<(StatusCode, String), AttachmentError>> {
    let mut d = api
        .download(&format!(
            "download/{}?url={}",
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
    // The asset server gives the ciphertext only to the room's hub.
    let path = part.url.strip_prefix("https://b.example").unwrap();
    let (st, why) = provider_get(fed, "c.example", "b.example", path).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{why}");
    assert!(why.contains("only the hub"), "{why}");
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
    let Ok(url) = std::env::var("MIMI_TEST_POSTGRES_URL") else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = fed_with_assets(Some(&url)).await;
    let dir = fed.dir.clone();
    attachments(&fed).await;
    fed.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
