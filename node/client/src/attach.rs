//! Attachments on the device (content-08 external parts, protocol-06 §5.10): a file is
//! encrypted here under a fresh AES-128-GCM key, uploaded piece by piece to this device's own
//! provider, and sent as a message whose body is an external part (disposition `attachment`)
//! with the URL, key, nonce and SHA-256 hash. A receiver downloads it through its own provider,
//! decrypts it piece by piece into a temporary file beside the output, and keeps the output only
//! if the size, the hash and the tag are right (`CONTENT-external-hash`). Neither side holds the
//! file in memory (`CONTENT-external-stream`).

use crate::device::{Client, Error};
use bytes::Bytes;
use http::StatusCode;
use mimi_content::attachment::AttachmentError;
use mimi_content::attachment::stream::{Opener, Sealed, Sealer};
use mimi_content::build::ContentBuilder;
use mimi_content::{ExternalPart, MessageId, NestedPart, PartBody};
use mimi_net::paths::percent_encode;
use mimi_net::stream::pieces;
use mimi_room::room_policy::AssetRefusal;
use mimi_wire::id::RoomUri;
use mimi_wire::room_policy::DownloadPrivacyType;
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The download mechanisms this client implements, in its order of preference
/// (`ROOM-policy-download-privacy`): through the hub's proxy (RECOMMENDED, protocol-06 §5.10),
/// direct (its provider fetches from the asset server itself), or OHTTP (this device
/// encapsulates the request to the hub's gateway and its provider relays it,
/// `PROTO-5.10-ohttp`; one message, so only assets within the transport's body limit).
pub const SUPPORTED_DOWNLOADS: &[DownloadPrivacyType] = &[
    DownloadPrivacyType::HubProxy,
    DownloadPrivacyType::Direct,
    DownloadPrivacyType::Ohttp,
];

/// Where a download's octets come from.
enum Source {
    /// Streamed by this device's provider.
    Stream(Box<mimi_net::client::Download>),
    /// Whole, out of an OHTTP response (taken once).
    Whole(Option<Vec<u8>>),
}

impl Source {
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        match self {
            Source::Stream(d) => Ok(d.next().await?),
            Source::Whole(b) => Ok(b.take().map(Bytes::from)),
        }
    }
}

/// Plaintext is read and encrypted in pieces of this size.
const PIECE: usize = 64 * 1024;

/// A media type for a file name (a few common ones; otherwise `application/octet-stream`).
pub fn content_type_for(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain;charset=utf-8",
        "md" => "text/markdown;charset=utf-8",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "zip" => "application/zip",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The first external part of a message body (depth-first), if any.
pub fn external_part(body: &NestedPart) -> Option<&ExternalPart> {
    body.indexed().into_iter().find_map(|p| match &p.body {
        PartBody::External(x) => Some(x),
        _ => None,
    })
}

/// A safe file name from a sender's suggestion: its last path component, no `..`, no
/// control characters; `None` if nothing usable is left.
pub fn safe_file_name(suggested: &str) -> Option<String> {
    let last = suggested.rsplit(['/', '\\']).next()?.trim();
    let ok = !last.is_empty()
        && last != "."
        && last != ".."
        && !last.starts_with('.')
        && !last.chars().any(char::is_control);
    ok.then(|| last.to_owned())
}

fn attachment_error(e: AttachmentError, out: &Path) -> Error {
    match e {
        AttachmentError::HashMismatch => Error::Usage(format!(
            "the downloaded attachment does not match its contentHash (it was altered at the \
             server or on the way); nothing was written to {}",
            out.display()
        )),
        other => Error::Usage(format!(
            "the attachment cannot be opened: {other}; nothing was written to {}",
            out.display()
        )),
    }
}

impl Client {
    /// Encrypts `file` under a fresh key, uploads the ciphertext to this device's provider and
    /// sends the external part that describes it to `room`. Returns the message ID and the
    /// part sent.
    pub async fn send_file(
        &mut self,
        room: &RoomUri,
        file: &Path,
        description: &str,
    ) -> Result<([u8; 32], ExternalPart), Error> {
        if !self.rooms().contains(room) {
            return Err(Error::Usage(format!("this device is not in {room}")));
        }
        let cant = |e: std::io::Error| Error::Usage(format!("cannot read {}: {e}", file.display()));
        let meta = std::fs::metadata(file).map_err(cant)?;
        if !meta.is_file() {
            return Err(Error::Usage(format!("{} is not a file", file.display())));
        }
        let filename = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(safe_file_name)
            .unwrap_or_else(|| "attachment".to_owned());
        // ROOM-policy-assets: the sending client checks the room's asset policy (size by
        // kind, media types) before anything is uploaded, by the size the external part
        // states (ciphertext and tag), as the hub and the receivers do.
        let stored = meta.len() + 16;
        let state = self.room_state(room)?;
        let policy = state.policies.assets.clone();
        let refused = |e: AssetRefusal| {
            Error::Refused(format!(
                "{} is refused by the room's asset policy (room-policy-03): {e}",
                file.display()
            ))
        };
        let home = self.user().provider();
        let hub = room.provider();
        if let Some(policy) = &policy {
            policy
                .check(stored, content_type_for(file))
                .map_err(refused)?;
            // ROOM-policy-upload-domains: this client uploads to its own provider, whose
            // asset URLs have the provider's domain as host; a room that wants its assets
            // elsewhere is told so before anything is uploaded.
            if let Some((whose, allowed)) = policy.upload_destinations(home.as_str(), hub.as_str())
                && !allowed
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(home.as_str()))
            {
                return Err(Error::Refused(format!(
                    "{} is not sent: the room's asset policy (room-policy-03) has assets \
                     uploaded to {} ({}) at {allowed:?}, and this client uploads to its own \
                     provider {home}",
                    file.display(),
                    policy.asset_upload_location.name(),
                    whose
                )));
            }
        }
        let mut f = std::fs::File::open(file).map_err(cant)?;
        let mut sealer = Sealer::new().map_err(|e| Error::Usage(e.to_string()))?;
        let (tx, rx) = pieces();
        let name = file.display().to_string();
        // Read and encrypt on a blocking thread; the channel's bound keeps memory flat.
        let producer = tokio::task::spawn_blocking(move || -> Result<Sealed, String> {
            let mut buf = vec![0u8; PIECE];
            loop {
                let n = match f.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        let why = format!("reading {name}: {e}");
                        let _ = tx.blocking_send(Err(why.clone()));
                        return Err(why);
                    }
                };
                if n == 0 {
                    break;
                }
                let piece = &mut buf[..n];
                if let Err(e) = sealer.seal(piece) {
                    let _ = tx.blocking_send(Err(e.to_string()));
                    return Err(e.to_string());
                }
                if tx.blocking_send(Ok(Bytes::copy_from_slice(piece))).is_err() {
                    return Err("the upload stopped".into());
                }
            }
            let sealed = sealer.finish();
            let _ = tx.blocking_send(Ok(Bytes::copy_from_slice(&sealed.tag)));
            Ok(sealed)
        });
        let r = self
            .api()
            .upload(
                // The media type goes with the upload, so that the hub can check its room's
                // asset policy too (PROTO-5.10-policy).
                &format!(
                    "assets/{}?type={}",
                    percent_encode(room.as_str()),
                    percent_encode(content_type_for(file))
                ),
                stored,
                rx,
            )
            .await;
        let sealed = producer
            .await
            .map_err(|e| Error::Usage(format!("encrypting {}: {e}", file.display())))?;
        let r = r?;
        if r.status != StatusCode::CREATED {
            return Err(Error::Node {
                node: self.api().home().to_owned(),
                status: r.status,
                reason: r.text(),
            });
        }
        let sealed = sealed.map_err(Error::Usage)?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| Error::Usage(format!("the node's upload answer is not JSON: {e}")))?;
        let url = v["url"]
            .as_str()
            .ok_or_else(|| Error::Usage("the node's upload answer has no url".into()))?;
        // ROOM-policy-upload-domains: the URL the provider gave, before it is sent.
        if let Some(policy) = &policy {
            policy
                .check_url(url, home.as_str(), hub.as_str())
                .map_err(refused)?;
        }
        if sealed.size != stored {
            return Err(Error::Usage(format!(
                "{} changed while it was being sent",
                file.display()
            )));
        }
        let part = sealed.part(content_type_for(file), url, &filename, description);
        let content =
            ContentBuilder::new(crate::device::salt(), NestedPart::attachment(part.clone()))
                .build();
        let id = self.send(room, content).await?;
        Ok((id, part))
    }

    /// Downloads the attachment of message `id` (full ID or unique prefix) through this
    /// device's provider, checks and decrypts it to `out` (default: the sender's file name in
    /// the current directory). An existing file is never overwritten; a download that does not
    /// match the part's size, hash or tag leaves nothing behind. Returns the path written.
    pub async fn download(
        &self,
        room: &RoomUri,
        id: &str,
        out: Option<&Path>,
        via: Option<DownloadPrivacyType>,
    ) -> Result<PathBuf, Error> {
        let (mid, sender, content) = self.find_stored(room, id).await?;
        let part = external_part(&content.nested_part)
            .ok_or_else(|| Error::Usage(format!("message {mid} has no attachment")))?
            .clone();
        let out = match out {
            Some(p) => p.to_owned(),
            None => {
                PathBuf::from(safe_file_name(&part.filename).unwrap_or_else(|| default_name(&mid)))
            }
        };
        if out.exists() {
            return Err(Error::Usage(format!(
                "{} exists already; choose another file with --out",
                out.display()
            )));
        }
        // ROOM-policy-assets: the receiving client checks it too (a sender may not have).
        let refused = |e: AssetRefusal| {
            Error::Refused(format!(
                "the attachment of {mid} is refused by the room's asset policy (room-policy-03): {e}"
            ))
        };
        let policy = self.room_state(room)?.policies.assets.clone();
        let via = match &policy {
            Some(policy) => {
                policy
                    .check(part.size, &part.content_type)
                    .map_err(refused)?;
                // ROOM-policy-upload-domains: the URL is where the room's policy says the
                // sender's assets are uploaded.
                let from = sender.as_deref().unwrap_or("");
                policy
                    .check_url(&part.url, from, room.provider().as_str())
                    .map_err(refused)?;
                // ROOM-policy-download-privacy.
                policy
                    .download_privacy
                    .choose(SUPPORTED_DOWNLOADS, via)
                    .map_err(refused)?
            }
            None => via.unwrap_or(DownloadPrivacyType::HubProxy),
        };
        let mut opener = Opener::new(&part).map_err(|e| attachment_error(e, &out))?;
        let mut d = if via == DownloadPrivacyType::Ohttp {
            Source::Whole(Some(self.ohttp_fetch(room, &part.url).await?))
        } else {
            let d = self
                .api()
                .download(&format!(
                    "download/{}?url={}&via={}",
                    percent_encode(room.as_str()),
                    percent_encode(&part.url),
                    via.name()
                ))
                .await?;
            if d.status != StatusCode::OK {
                let status = d.status;
                let r = d.whole().await?;
                return Err(Error::Node {
                    node: self.api().home().to_owned(),
                    status,
                    reason: r.text(),
                });
            }
            Source::Stream(Box::new(d))
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        let partial = out.with_file_name(format!(".{name}.mimi-partial"));
        let cant = |e: std::io::Error| Error::Usage(format!("writing {}: {e}", partial.display()));
        let result = async {
            let mut f = tokio::fs::File::create(&partial).await.map_err(cant)?;
            while let Some(piece) = d.next().await? {
                let plain = opener
                    .update(&piece)
                    .map_err(|e| attachment_error(e, &out))?;
                f.write_all(&plain).await.map_err(cant)?;
            }
            f.sync_all().await.map_err(cant)?;
            drop(f);
            opener.finish().map_err(|e| attachment_error(e, &out))?;
            tokio::fs::rename(&partial, &out).await.map_err(cant)
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
        Ok(out)
    }
}

impl Client {
    /// `PROTO-5.10-ohttp` on the device: the hub's key configuration through this device's
    /// provider, `GET <url>` encapsulated here, relayed by the provider to the hub's gateway,
    /// the answer opened here. The provider learns that this device downloads from the hub,
    /// not what; the hub learns what, not who.
    async fn ohttp_fetch(&self, room: &RoomUri, url: &str) -> Result<Vec<u8>, Error> {
        let hub = room.provider();
        let refused = |what: &str, e: mimi_net::ohttp::OhttpError| {
            Error::Refused(format!("OHTTP download from {hub}: {what}: {e}"))
        };
        let node_error = |status, reason| Error::Node {
            node: self.api().home().to_owned(),
            status,
            reason,
        };
        let r = self
            .api()
            .request(http::Method::GET, &format!("ohttpKeys/{hub}"), Bytes::new())
            .await?;
        if r.status != StatusCode::OK {
            return Err(node_error(r.status, r.text()));
        }
        let (enc, keys) = mimi_net::ohttp::encapsulate_get(&r.body, url)
            .map_err(|e| refused("encapsulating GET of the asset to the gateway's keys", e))?;
        let r = self
            .api()
            .request(
                http::Method::POST,
                &format!("ohttpRelay/{hub}"),
                Bytes::from(enc),
            )
            .await?;
        if r.status != StatusCode::OK {
            return Err(node_error(r.status, r.text()));
        }
        let resp = keys
            .open_response(&r.body)
            .map_err(|e| refused("the gateway's answer", e))?;
        if resp.status != 200 {
            return Err(Error::Node {
                node: hub.to_string(),
                status: StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY),
                reason: String::from_utf8_lossy(&resp.content).into_owned(),
            });
        }
        Ok(resp.content)
    }
}

fn default_name(id: &MessageId) -> String {
    format!("attachment-{}", &id.to_hex()[..12])
}
