//! Attachments (protocol-06 §5.10, content-08 external parts; `PROTO-5.10-*` in
//! `spec-notes/node.md`): a device uploads the ciphertext of an attachment to its own provider
//! (the asset server), which keeps it on disk; a member of the room downloads it through its
//! own provider, which fetches it through the room's hub (`proxyDownload`) or, when it is the
//! hub, directly from the asset server. Bodies travel piece by piece (`NET-stream`): no
//! attachment is ever in the node's memory whole.
//!
//! The node sees only ciphertext: the key is in the MLS-encrypted message. Who may fetch the
//! ciphertext is enforced at each hop (`PROTO-5.10-member`):
//! - the downloader's provider: the device is a member of the room (its member records);
//! - the hub: the asset's URL names a room it hosts, the calling provider has clients in that
//!   room, and the URL's host is a peer provider of this node (no open proxy,
//!   `PROTO-5.10-no-open-proxy`);
//! - the asset server: the caller is its own member device, or the hub of the room the asset
//!   was uploaded for.
//!
//! An asset's URL is `https://<asset provider>/v1/assets/<room>/<id>`: the room in the
//! request-path form of identifiers, the id 32 lower-case hex digits (128 random bits).

use crate::client_api::Caller;
use crate::service::{Node, NodeError};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use mimi_net::Response;
use mimi_net::paths::{BASE, percent_decode, percent_encode};
use mimi_net::server::BodyStream;
use mimi_net::stream::{Reply, StreamedResponse, pieces};
use mimi_room::room_policy::AssetRefusal;
use mimi_wire::id::{ProviderId, RoomUri};
use mimi_wire::room_policy::DownloadPrivacyType;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The path segment of the asset server's endpoint (ours; asset upload and storage are out of
/// the draft's scope).
pub const ASSETS: &str = "assets";
/// The draft's `proxyDownload` endpoint (protocol-06 §5.10).
pub const PROXY_DOWNLOAD: &str = "proxyDownload";
/// Pieces of at most this many octets are read from disk.
const PIECE: usize = 64 * 1024;
/// The media type of an upload that names none (`?type=`).
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";

/// Where and how much (node.toml `[assets]`).
#[derive(Clone, Debug)]
pub struct AssetOptions {
    /// The directory blobs are kept in; `None`: this node takes no uploads.
    pub dir: Option<PathBuf>,
    /// The largest upload (stored octets: ciphertext and tag) this provider takes
    /// (`PROTO-5.10-size`).
    pub max_bytes: u64,
    /// The largest asset the OHTTP gateway answers with (`PROTO-5.10-ohttp`: one message,
    /// inside the transport's body limit with room for the framing).
    pub max_ohttp_bytes: usize,
}

/// What OHTTP and Binary HTTP framing may add to an asset inside one message.
pub const OHTTP_FRAMING: usize = 4096;

impl Default for AssetOptions {
    fn default() -> Self {
        Self {
            dir: None,
            max_ohttp_bytes: mimi_net::NetLimits::default().max_body - OHTTP_FRAMING,
            max_bytes: crate::config::DEFAULT_MAX_ASSET_BYTES,
        }
    }
}

/// What is kept beside each blob.
#[derive(Serialize, Deserialize)]
struct Meta {
    room: String,
    uploader: String,
    size: u64,
    created_ms: u64,
}

/// An asset's URL, parsed (`PROTO-5.10-url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetUrl {
    /// The asset server.
    pub provider: ProviderId,
    /// The room it was uploaded for.
    pub room: RoomUri,
    /// Its id (32 lower-case hex digits).
    pub id: String,
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl AssetUrl {
    /// `https://<provider>/v1/assets/<room>/<id>`; anything else is refused with the reason.
    pub fn parse(url: &str) -> Result<Self, NodeError> {
        let bad = |why: &str| {
            NodeError::BadRequest(format!(
                "{url:?} is not an attachment URL of this federation ({why}); expected \
                 https://<provider>/v1/assets/<room>/<id>"
            ))
        };
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("not https"))?;
        let (host, path) = rest.split_once('/').ok_or_else(|| bad("no path"))?;
        let provider = ProviderId::parse(host).map_err(|_| bad("the host is not a provider"))?;
        let path = path
            .strip_prefix(&format!("{}/{ASSETS}/", BASE.trim_start_matches('/')))
            .ok_or_else(|| bad("not under /v1/assets/"))?;
        let (room, id) = path.split_once('/').ok_or_else(|| bad("no id"))?;
        let room = percent_decode(room).map_err(|_| bad("the room is not percent-encoded"))?;
        let room = RoomUri::parse(&room).map_err(|_| bad("the room is not a room URI"))?;
        if !valid_id(id) {
            return Err(bad("the id is not 32 lower-case hex digits"));
        }
        Ok(Self {
            provider,
            room,
            id: id.to_owned(),
        })
    }

    /// The asset server's path of this asset.
    pub fn path(&self) -> String {
        format!(
            "{BASE}/{ASSETS}/{}/{}",
            percent_encode(self.room.as_str()),
            self.id
        )
    }

    /// The URL (what goes in the external part).
    pub fn url(&self) -> String {
        format!("https://{}{}", self.provider, self.path())
    }
}

fn octets() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h
}

fn error_reply(e: &NodeError) -> Reply {
    Reply::Whole(Response::error(crate::http::status_of(e), e.to_string()))
}

impl Node {
    fn asset_dir(&self) -> Result<&Path, NodeError> {
        self.options.assets.dir.as_deref().ok_or_else(|| {
            NodeError::Forbidden("this provider takes no attachments (no [assets] dir)".into())
        })
    }

    /// Whether a device is a member of a room on this node's records.
    async fn member(&self, caller: &Caller, room: &RoomUri) -> Result<(), NodeError> {
        let rooms = self.store.rooms_of_client(caller.client.as_str()).await?;
        if rooms.iter().any(|r| r == room.as_str()) {
            Ok(())
        } else {
            Err(NodeError::Forbidden(format!(
                "{} is not a member of {room}; only members may upload or download its \
                 attachments",
                caller.client
            )))
        }
    }

    /// `PROTO-5.10-policy` (room-policy-03 AssetPolicy, `ROOM-policy-assets` at the node): an
    /// upload for a room this node hosts must fit the room's asset policy, by the stored size
    /// (ciphertext and tag: the external part's `size`, what receiving clients check) and the
    /// media type the uploader names (the node sees only ciphertext, so it takes the name on
    /// trust: this stops a client that does not check, not one that lies). Too large is 413, a
    /// forbidden or unlisted type 415, a type that does not parse 400. A follower has no copy
    /// of the room's GroupContext (its roster keeps the tree's leaves only, and the GroupInfo
    /// in a Welcome is encrypted to the joiner), so for rooms hosted elsewhere only the
    /// clients check.
    async fn check_asset_policy(
        &self,
        room: &RoomUri,
        size: u64,
        media_type: &str,
    ) -> Result<(), NodeError> {
        if room.provider() != self.domain || self.options.faults.asset_policy_ignored {
            return Ok(());
        }
        let Some(row) = self.store.room(room.as_str()).await? else {
            return Err(NodeError::NoRoom(room.to_string()));
        };
        if row.hub != self.domain.as_str() {
            return Ok(());
        }
        let policies = self.room_policies(&row).await?;
        let Some(policy) = policies.assets else {
            return Ok(());
        };
        // ROOM-policy-upload-domains: this node's assets are at its own domain; a room whose
        // policy puts its members' (the hub's users') assets elsewhere gets none here.
        let here = format!("https://{}/", self.domain);
        policy
            .check(size, media_type)
            .and_then(|()| policy.check_url(&here, self.domain.as_str(), self.domain.as_str()))
            .map_err(|e| {
                let why =
                    format!("{room}'s asset policy (room-policy-03) refuses this upload: {e}");
                match e {
                    AssetRefusal::BadMediaType(_) | AssetRefusal::BadUrl(_) => {
                        NodeError::BadRequest(why)
                    }
                    AssetRefusal::TooLarge { .. } => NodeError::TooLarge(why),
                    AssetRefusal::Forbidden(_) | AssetRefusal::NotPermitted(_) => {
                        NodeError::UnsupportedMedia(why)
                    }
                    AssetRefusal::UploadDomain { .. }
                    | AssetRefusal::DownloadForbidden { .. }
                    | AssetRefusal::DownloadUnsupported { .. } => NodeError::Forbidden(why),
                }
            })
    }

    /// `POST /client/v1/assets/{room}[?type=<media type>]`: stores the body (an attachment's ciphertext) for
    /// `room` and answers 201 `{"url", "size"}` (`PROTO-5.10-upload`).
    pub async fn capi_upload(
        &self,
        caller: &Caller,
        room: &RoomUri,
        media_type: Option<&str>,
        mut body: BodyStream,
        now_ms: u64,
    ) -> Reply {
        let r = self
            .upload(caller, room, media_type, &mut body, now_ms)
            .await;
        if r.is_err() {
            body.refuse();
        }
        r.unwrap_or_else(|e| error_reply(&e))
    }

    async fn upload(
        &self,
        caller: &Caller,
        room: &RoomUri,
        media_type: Option<&str>,
        body: &mut BodyStream,
        now_ms: u64,
    ) -> Result<Reply, NodeError> {
        let dir = self.asset_dir()?.to_owned();
        // PROTO-5.10-member: only a member uploads for a room.
        self.member(caller, room).await?;
        let max = self.options.assets.max_bytes;
        // PROTO-5.10-size: the provider's limit, known before anything is read.
        let size = match body.declared() {
            None => {
                return Err(NodeError::LengthRequired(
                    "an upload needs content-length (the size of the attachment)".into(),
                ));
            }
            Some(n) if n > max => {
                return Err(NodeError::TooLarge(format!(
                    "the attachment has {n} octets; this provider takes at most {max} \
                     (node.toml [assets] max_bytes)"
                )));
            }
            Some(0) => return Err(NodeError::BadRequest("the attachment is empty".into())),
            Some(n) => n,
        };
        // PROTO-5.10-policy: the room's asset policy, where this node knows it.
        self.check_asset_policy(room, size, media_type.unwrap_or(DEFAULT_MEDIA_TYPE))
            .await?;
        let mut raw = [0u8; 16];
        getrandom::getrandom(&mut raw)
            .map_err(|e| NodeError::RoomState(format!("no randomness for an asset id: {e}")))?;
        let url = AssetUrl {
            provider: self.domain.clone(),
            room: room.clone(),
            id: hex::encode(raw),
        };
        let io = |what: &str, e: std::io::Error| NodeError::Busy(format!("{what}: {e}"));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io("creating the asset directory", e))?;
        let part = dir.join(format!("{}.part", url.id));
        let written = async {
            let mut f = tokio::fs::File::create(&part)
                .await
                .map_err(|e| io("creating the asset file", e))?;
            while let Some(piece) = body
                .next()
                .await
                .map_err(|e| NodeError::BadRequest(e.to_string()))?
            {
                f.write_all(&piece)
                    .await
                    .map_err(|e| io("writing the asset", e))?;
            }
            f.sync_all().await.map_err(|e| io("writing the asset", e))?;
            let meta = Meta {
                room: room.to_string(),
                uploader: caller.client.to_string(),
                size,
                created_ms: now_ms,
            };
            let meta =
                serde_json::to_vec(&meta).map_err(|e| NodeError::RoomState(e.to_string()))?;
            tokio::fs::write(dir.join(format!("{}.json", url.id)), meta)
                .await
                .map_err(|e| io("writing the asset's record", e))?;
            tokio::fs::rename(&part, dir.join(&url.id))
                .await
                .map_err(|e| io("keeping the asset", e))
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        tracing::info!(room = %room, id = %url.id, size, "attachment stored");
        let mut r = Response::new(
            StatusCode::CREATED,
            serde_json::to_vec(&serde_json::json!({ "url": url.url(), "size": size }))
                .unwrap_or_default(),
        );
        r.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(Reply::Whole(r))
    }

    /// An asset of this provider, streamed from disk, if it was uploaded for `room`.
    async fn local_asset(&self, url: &AssetUrl) -> Result<Reply, NodeError> {
        let dir = self.asset_dir()?;
        let gone = || NodeError::NotFound(format!("no attachment {} here", url.url()));
        let meta = tokio::fs::read(dir.join(format!("{}.json", url.id)))
            .await
            .map_err(|_| gone())?;
        let meta: Meta = serde_json::from_slice(&meta)
            .map_err(|e| NodeError::RoomState(format!("the asset's record: {e}")))?;
        if meta.room != url.room.as_str() {
            return Err(gone());
        }
        let mut f = tokio::fs::File::open(dir.join(&url.id))
            .await
            .map_err(|_| gone())?;
        let (tx, rx) = pieces();
        tokio::spawn(async move {
            let mut buf = vec![0u8; PIECE];
            loop {
                match f.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx
                            .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("reading the asset: {e}"))).await;
                        return;
                    }
                }
            }
        });
        Ok(Reply::Stream(StreamedResponse {
            status: StatusCode::OK,
            headers: octets(),
            length: Some(meta.size),
            body: rx,
        }))
    }

    /// `GET` from another provider, the answer relayed piece by piece; its refusals 403, 404
    /// and 413 are passed on with their reason, anything else is 502.
    async fn fetch(&self, to: &ProviderId, path: &str) -> Result<Reply, NodeError> {
        let Some(peers) = &self.peers else {
            return Err(NodeError::Upstream(format!(
                "this node has no connections to other providers; cannot reach {to}"
            )));
        };
        let d = peers
            .download(to.as_str(), Method::GET, path, HeaderMap::new())
            .await
            .map_err(|e| NodeError::Upstream(format!("{to}: {e}")))?;
        if d.status == StatusCode::OK {
            let length = d.length();
            return Ok(Reply::Stream(StreamedResponse {
                status: StatusCode::OK,
                headers: octets(),
                length,
                body: d.into_pieces(),
            }));
        }
        let status = d.status;
        let r = d
            .whole()
            .await
            .map_err(|e| NodeError::Upstream(format!("{to}: {e}")))?;
        let reason = format!("{to} answered {status}: {}", r.text());
        Err(match status.as_u16() {
            403 => NodeError::Forbidden(reason),
            404 => NodeError::NotFound(reason),
            _ => NodeError::Upstream(reason),
        })
    }

    /// `GET /client/v1/download/{room}?url=<asset URL>`: a member's download
    /// (`PROTO-5.10-download`).
    pub async fn capi_download(
        &self,
        caller: &Caller,
        room: &RoomUri,
        url: &str,
        via: DownloadPrivacyType,
    ) -> Reply {
        self.download(caller, room, url, via)
            .await
            .unwrap_or_else(|e| error_reply(&e))
    }

    async fn download(
        &self,
        caller: &Caller,
        room: &RoomUri,
        url: &str,
        via: DownloadPrivacyType,
    ) -> Result<Reply, NodeError> {
        // PROTO-5.10-member (downloader's provider).
        self.member(caller, room).await?;
        let asset = AssetUrl::parse(url)?;
        if asset.room != *room {
            return Err(NodeError::Forbidden(format!(
                "the attachment {url} belongs to {}, not to {room}",
                asset.room
            )));
        }
        if via == DownloadPrivacyType::Ohttp {
            // PROTO-5.10-ohttp: the device encapsulates the request itself, so that this
            // provider (its relay) never sees the URL.
            return Err(NodeError::BadRequest(
                "an ohttp download is encapsulated by the device: POST the Encapsulated Request \
                 to ohttpRelay/{hub} (keys at ohttpKeys/{hub}); spec-notes/client-api.md"
                    .into(),
            ));
        }
        if room.provider() == self.domain {
            // ROOM-policy-download-privacy at the hub, which knows the room's policy: a
            // download of its own member goes by the mechanism the member asked for.
            self.check_download_privacy(room, &asset, via).await?;
        }
        if asset.provider == self.domain {
            // Our own asset: no provider in between.
            self.local_asset(&asset).await
        } else if room.provider() == self.domain {
            // We are the hub: the hub fetches from the asset server itself (§5.10).
            self.hub_fetch(&asset).await
        } else if via == DownloadPrivacyType::Direct {
            // PROTO-5.10-direct: from the asset server itself, not through the hub (the room's
            // policy allows it; the asset server checks that this provider has members).
            self.fetch(&asset.provider, &asset.path()).await
        } else {
            // PROTO-5.10-proxy: through the room's hub (hubProxy).
            self.fetch(
                &room.provider(),
                &format!("{BASE}/{PROXY_DOWNLOAD}/{}", percent_encode(&asset.url())),
            )
            .await
        }
    }

    /// `ROOM-policy-download-privacy` and `PROTO-5.10-policy-host` at the hub of `room`: the
    /// room's asset policy allows downloads `via` that mechanism, and lists the asset's host
    /// as an upload destination (unless its location is unspecified). The hub does not know
    /// which message (and so which sender) the URL came from, so it checks the host against
    /// every provider's destinations; the receiving client checks the sender's own.
    async fn check_download_privacy(
        &self,
        room: &RoomUri,
        asset: &AssetUrl,
        via: DownloadPrivacyType,
    ) -> Result<(), NodeError> {
        if self.options.faults.asset_policy_ignored {
            return Ok(());
        }
        let Some(row) = self.store.room(room.as_str()).await? else {
            return Err(NodeError::NoRoom(room.to_string()));
        };
        if row.hub != self.domain.as_str() {
            return Ok(());
        }
        let Some(policy) = self.room_policies(&row).await?.assets else {
            return Ok(());
        };
        if !policy.download_privacy.allows(via) {
            return Err(NodeError::Forbidden(format!(
                "{room}'s asset policy (room-policy-03 download_privacy) forbids {} downloads",
                via.name()
            )));
        }
        if !policy.lists_host(asset.provider.as_str()) {
            return Err(NodeError::Forbidden(format!(
                "{room}'s asset policy (room-policy-03 upload_domains) lists no upload \
                 destination {}; the hub fetches only from the room's asset locations",
                asset.provider
            )));
        }
        Ok(())
    }

    /// The hub's fetch from an asset server, which must be a peer provider
    /// (`PROTO-5.10-no-open-proxy`).
    async fn hub_fetch(&self, asset: &AssetUrl) -> Result<Reply, NodeError> {
        if asset.provider == self.domain {
            return self.local_asset(asset).await;
        }
        let known = self
            .peers
            .as_ref()
            .is_some_and(|p| p.knows(asset.provider.as_str()));
        if !known {
            return Err(NodeError::Forbidden(format!(
                "{} is not a peer provider of this hub; proxyDownload fetches only from peers' \
                 asset servers",
                asset.provider
            )));
        }
        self.fetch(&asset.provider, &asset.path()).await
    }

    /// `GET /v1/proxyDownload/{downloadUrl}` (protocol-06 §5.10), at the hub.
    pub async fn proxy_download(&self, from: &ProviderId, url: &str) -> Reply {
        self.proxy(from, url)
            .await
            .unwrap_or_else(|e| error_reply(&e))
    }

    async fn proxy(&self, from: &ProviderId, url: &str) -> Result<Reply, NodeError> {
        self.proxy_via(from, url, DownloadPrivacyType::HubProxy)
            .await
    }

    /// The hub's fetch of an asset for provider `from` (proxyDownload, or the OHTTP gateway's
    /// target request): `from` has clients in the asset's room, the room allows downloads
    /// `via` that mechanism from that host, and the asset server is a peer.
    pub(crate) async fn proxy_via(
        &self,
        from: &ProviderId,
        url: &str,
        via: DownloadPrivacyType,
    ) -> Result<Reply, NodeError> {
        let asset = AssetUrl::parse(url)?;
        self.has_clients(&asset.room, from).await?;
        self.check_download_privacy(&asset.room, &asset, via)
            .await?;
        self.hub_fetch(&asset).await
    }

    /// `PROTO-5.10-member` at the hub: `room` is hosted here and `provider` has clients in it.
    async fn has_clients(&self, room: &RoomUri, provider: &ProviderId) -> Result<(), NodeError> {
        let Some(row) = self.store.room(room.as_str()).await? else {
            return Err(NodeError::NoRoom(room.to_string()));
        };
        if row.hub != self.domain.as_str() {
            return Err(NodeError::NoRoom(room.to_string()));
        }
        let providers = self.room_providers(&row).await?;
        if !providers.contains(provider) && !self.options.faults.proxy_download_any_provider {
            return Err(NodeError::Forbidden(format!(
                "{provider} has no clients in {room}; only providers with members may download \
                 its attachments"
            )));
        }
        Ok(())
    }

    /// `GET /v1/assets/{room}/{id}` at the asset server: for the room's hub only.
    pub async fn serve_asset(&self, from: &ProviderId, rest: &str) -> Reply {
        self.asset_for_peer(from, rest)
            .await
            .unwrap_or_else(|e| error_reply(&e))
    }

    async fn asset_for_peer(&self, from: &ProviderId, rest: &str) -> Result<Reply, NodeError> {
        let asset = AssetUrl::parse(&format!("https://{}{BASE}/{ASSETS}/{rest}", self.domain))?;
        // PROTO-5.10-member (asset server): the hub of the asset's room asks for its members,
        // or (PROTO-5.10-direct) a provider with clients in the room fetches directly.
        if asset.room.provider() != *from {
            if asset.room.provider() == self.domain {
                // The asset server is the hub: it knows the room and its policy.
                self.has_clients(&asset.room, from).await?;
                self.check_download_privacy(&asset.room, &asset, DownloadPrivacyType::Direct)
                    .await?;
            } else if !self.roster_has_provider(&asset.room, from).await? {
                return Err(NodeError::Forbidden(format!(
                    "{from} has no clients in {} as this provider's roster of the room knows \
                     it; only the room's hub ({}) or a provider with members may fetch its \
                     attachments from here",
                    asset.room,
                    asset.room.provider()
                )));
            }
        }
        self.local_asset(&asset).await
    }

    /// Whether this follower's roster of `room` (`STORE-roster`) has a client of `provider`.
    /// A follower that keeps no roster of the room cannot tell, and says no.
    async fn roster_has_provider(
        &self,
        room: &RoomUri,
        provider: &ProviderId,
    ) -> Result<bool, NodeError> {
        let Some(bytes) = self.store.follower_roster(room.as_str()).await? else {
            return Ok(false);
        };
        let roster = mimi_room::roster::Roster::decode(&bytes)
            .map_err(|e| NodeError::RoomState(format!("the stored roster of {room}: {e}")))?;
        Ok(roster.clients().iter().any(|c| c.provider() == *provider))
    }
}
