//! A user's device over its home node's client API (`spec-notes/client-api.md`), with all of
//! its state in one SQLite file per profile ([`DeviceStore`]) so that every CLI call can be a
//! new process: the MLS state of every room (openmls' storage, saved after each operation),
//! the signature key, the bearer token, the queue cursor, the messages sent and not yet seen
//! echoed back, and each room's history.

use crate::store::{DeviceStore, StoreError, StoredFrank, StoredMessage};
use bytes::Bytes;
use http::{Method, StatusCode};
use mimi_content::MimiContent;
use mimi_content::view::{History, MessageView, Received};
use mimi_net::client::{CallError, ClientApi};
use mimi_net::pki::load_certs;
use mimi_net::{NetLimits, Response};
use mimi_room::client::{Device, Event, Room};
use mimi_room::codepoints::CodePoints;
use mimi_room::franking::{FrankCheck, frank_aad_for, safe_aad};
use mimi_room::presets::{Preset, direct_message, private_group, public_room};
use mimi_room::room_policy::{
    Receipt, expiry_for, receipt_allowed, receipt_required, send_receipt,
};
use mimi_room_mlsrs::device::{Device as RsDevice, Event as RsEvent, Room as RsRoom};
use mimi_room_mlsrs::storage::Storage as RsStorage;
use mimi_wire::abuse::{AbuseReport, AbusiveMessage};
use mimi_wire::codec::{Body, Writer};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::group_info::GroupInfoResponse;
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::key_material::{ClientMaterial, KeyMaterialResponse};
use mimi_wire::submit::{SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{ExternalSender, GroupId, MlsGroup};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The state file's name in a profile directory.
pub const STATE_FILE: &str = "device.sqlite";

/// What went wrong, said so that a person knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile or a flag is not usable.
    #[error("{0}")]
    Usage(String),
    /// The home node refused (its status and reason).
    #[error("{node} answered {status}: {reason}")]
    Node {
        /// The home node.
        node: String,
        /// The HTTP status.
        status: StatusCode,
        /// Its reason.
        reason: String,
    },
    /// The hub said no (the draft's code).
    #[error("{0}")]
    Refused(String),
    /// The home node could not be reached.
    #[error("cannot reach the home node: {0} (is it running? `scripts/federation.sh status`)")]
    Net(#[from] CallError),
    /// MLS or room logic.
    #[error(transparent)]
    Room(#[from] mimi_room::client::ClientError),
    /// MLS or room logic of an mls-rs device.
    #[error(transparent)]
    MlsRs(#[from] mimi_room_mlsrs::device::DeviceError),
    /// The state file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A body from the node did not decode.
    #[error("the node's answer does not decode: {0}")]
    Wire(#[from] mimi_wire::WireError),
}

/// Where a device's home node is.
#[derive(Clone, Debug)]
pub struct HomeNode {
    /// The provider's domain (`a.example`).
    pub domain: String,
    /// `host:port` of its listener.
    pub addr: String,
    /// The federation CA certificate (PEM) its certificate chains to.
    pub ca: PathBuf,
}

/// What one sync did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Queue items processed.
    pub items: usize,
    /// Rooms joined from a Welcome.
    pub joined: Vec<String>,
    /// Rooms resynced because the home node said this device missed part of them
    /// (`STORE-retention`).
    pub resynced: Vec<String>,
    /// New messages, as `(room, message ID hex)`.
    pub messages: Vec<(String, String)>,
    /// Those of the new messages that carry an attachment (an external part), likewise.
    pub attachments: Vec<(String, String)>,
    /// Commits applied, as `(room, new epoch)`.
    pub commits: Vec<(String, u64)>,
    /// Items that could not be processed (room, reason).
    pub skipped: Vec<(String, String)>,
    /// New messages whose frank is invalid, as `(room, message ID hex, reason)`
    /// (`PROTO-5.4.1-frank-flag`).
    pub flagged: Vec<(String, String, String)>,
    /// Messages received again (already in the history), as `(room, message ID hex)`: a
    /// repeat the home node or the hub should not have delivered.
    pub repeated: Vec<(String, String)>,
    /// Queue items processed, by room.
    pub items_by_room: BTreeMap<String, usize>,
    /// Items of a room this device was not a member of when they arrived (removed, left, or
    /// never joined), other than a Welcome that made it one: by room. A home node that
    /// follows membership (`PROTO-follower-membership`) delivers none.
    pub items_not_member: BTreeMap<String, usize>,
}

/// What [`Client::remove_device`] did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DeviceRemoval {
    /// Rooms hosted by the home node where its hub proposed the removal.
    pub proposed_by_hub: Vec<String>,
    /// Rooms the device is out of now: (room, new epoch).
    pub removed: Vec<(String, u64)>,
    /// Rooms where this device could not commit the removal: (room, why).
    pub failed: Vec<(String, String)>,
}

/// A room as this device sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoomInfo {
    /// The room.
    pub room: String,
    /// Its name, if set.
    pub name: Option<String>,
    /// The MLS epoch.
    pub epoch: u64,
    /// The epoch authenticator (RFC 9420 §8.7), hex: equal on every member that is in the
    /// same epoch of the same group.
    pub epoch_authenticator: String,
    /// The MLS implementation of this device (`openmls` or `mls-rs`).
    pub implementation: &'static str,
    /// Participants and their roles.
    pub participants: Vec<(String, u32)>,
    /// Member devices.
    pub clients: Vec<String>,
    /// Providers with members.
    pub providers: Vec<String>,
    /// The hub.
    pub hub: String,
    /// The room's policy components (`ROOM-policy-*`), as JSON.
    pub policy: serde_json::Value,
    /// The same, as lines for people.
    #[serde(skip)]
    pub policy_text: Vec<String>,
    /// The room's join links (`mimi join <link>`).
    pub join_links: Vec<String>,
    /// The join link policy: whether a link admits several joins, and how long a link
    /// lasts (seconds, 0: for ever); `None` without a policy.
    pub join_link_policy: Option<(bool, u32)>,
}

/// The MLS implementation a device runs (`mimi register --mls`, `INTEROP-cli-mlsrs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlsLibrary {
    /// openmls (mimi-room): every room operation.
    OpenMls,
    /// mls-rs (mimi-room-mlsrs): messages, receipts, franks, self-updates, adding and
    /// removing devices of users already in the room, external joins as a listed user's
    /// device and resyncs; no room-state change (spec-notes/interop.md).
    MlsRs,
}

impl MlsLibrary {
    /// Its name, as `--mls` takes it and `mimi room info` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenMls => "openmls",
            Self::MlsRs => "mls-rs",
        }
    }

    /// The library named `name`.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "openmls" => Ok(Self::OpenMls),
            "mls-rs" | "mlsrs" => Ok(Self::MlsRs),
            other => Err(Error::Usage(format!(
                "no MLS implementation {other:?}: use openmls or mls-rs"
            ))),
        }
    }
}

/// The device's MLS side: one library's device and its rooms, and what of its storage is
/// on disk already.
enum Mls {
    OpenMls {
        dev: Device,
        baseline: HashMap<Vec<u8>, Vec<u8>>,
        rooms: BTreeMap<RoomUri, Room>,
    },
    MlsRs {
        dev: RsDevice,
        baseline: HashMap<Vec<u8>, Vec<u8>>,
        rooms: BTreeMap<RoomUri, RsRoom>,
    },
}

/// What an operation only openmls devices can do says on an mls-rs device.
fn openmls_only(what: &str) -> Error {
    Error::Usage(format!(
        "{what} is not possible on this device: it runs mls-rs, which cannot send or read the \
         AppDataUpdate proposals that carry a MIMI room's state between the two libraries \
         (spec-notes/interop.md); do it from a device registered with --mls openmls"
    ))
}

/// Each room's messages sent and not yet seen back, hex, as the profile keeps them.
fn echoes_of<'a, E: Iterator<Item = &'a Vec<u8>>>(
    rooms: impl Iterator<Item = (&'a RoomUri, E)>,
) -> Vec<(RoomUri, Vec<String>)> {
    rooms
        .map(|(u, e)| (u.clone(), e.map(hex::encode).collect()))
        .collect()
}

fn not_in(room: &RoomUri) -> Error {
    Error::Usage(format!("this device is not in {room}"))
}

/// One room of either library, for what both can do.
enum RoomRef<'a> {
    OpenMls(&'a Device, &'a Room),
    MlsRs(&'a RsRoom),
}

impl RoomRef<'_> {
    fn state(&self) -> Result<mimi_room::state::RoomState, Error> {
        match self {
            Self::OpenMls(dev, r) => Ok(r.state(dev)?),
            Self::MlsRs(r) => r.state().map_err(Error::from),
        }
    }

    fn is_active(&self) -> bool {
        match self {
            Self::OpenMls(_, r) => r.is_active(),
            Self::MlsRs(r) => r.is_active(),
        }
    }

    fn epoch(&self) -> u64 {
        match self {
            Self::OpenMls(_, r) => r.epoch(),
            Self::MlsRs(r) => r.epoch(),
        }
    }

    fn epoch_authenticator(&self) -> Result<Vec<u8>, Error> {
        match self {
            Self::OpenMls(_, r) => Ok(r.group.epoch_authenticator().as_slice().to_vec()),
            Self::MlsRs(r) => r.epoch_authenticator().map_err(Error::from),
        }
    }

    fn clients(&self) -> Vec<ClientUri> {
        match self {
            Self::OpenMls(_, r) => r.clients(),
            Self::MlsRs(r) => r.clients(),
        }
    }

    fn suite(&self) -> u16 {
        match self {
            Self::OpenMls(_, r) => u16::from(r.group.ciphersuite()),
            Self::MlsRs(r) => u16::from(r.group.cipher_suite()),
        }
    }
}

/// A device.
pub struct Client {
    store: DeviceStore,
    mls: Mls,
    client: ClientUri,
    user: UserUri,
    api: ClientApi,
    home: String,
    cursor: u64,
    /// Messages of others received in this sync, to report as delivered.
    delivered: BTreeMap<RoomUri, Vec<mimi_content::MessageId>>,
}

fn meta_err(what: &str) -> Error {
    Error::Usage(format!(
        "this profile has no {what}; register it first (`mimi register ...`)"
    ))
}

/// A fresh random salt for MIMI content.
pub fn salt() -> [u8; 16] {
    let mut s = [0u8; 16];
    let _ = getrandom::getrandom(&mut s);
    s
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The preset named `name`.
pub fn preset(name: &str) -> Result<Preset, Error> {
    let cp = CodePoints::DRAFT;
    Ok(match name {
        "private" | "private_group" => private_group(&cp),
        "public" | "public_room" => public_room(&cp),
        "dm" | "direct_message" => direct_message(&cp),
        other => {
            return Err(Error::Usage(format!(
                "no room preset {other:?}: use private, public or dm"
            )));
        }
    })
}

/// A connection to `home`'s client API (no token set).
pub fn connect(home: &HomeNode) -> Result<ClientApi, Error> {
    let roots = load_certs(&home.ca)
        .map_err(|e| Error::Usage(format!("the CA certificate {}: {e}", home.ca.display())))?;
    Ok(ClientApi::new(
        &home.domain,
        &home.addr,
        &roots,
        NetLimits::default(),
    )?)
}

impl Client {
    /// Registers a new device (and its user, if new) on `home` and creates its profile in
    /// `dir`. A second device of an existing user passes the token of one of its devices.
    pub async fn register(
        dir: &Path,
        home: HomeNode,
        user: &str,
        device: &str,
        nick: Option<&str>,
        existing_token: Option<&str>,
    ) -> Result<Self, Error> {
        Self::register_with(
            dir,
            home,
            user,
            device,
            nick,
            existing_token,
            MlsLibrary::OpenMls,
        )
        .await
    }

    /// [`Client::register`] with the MLS implementation the device runs.
    pub async fn register_with(
        dir: &Path,
        home: HomeNode,
        user: &str,
        device: &str,
        nick: Option<&str>,
        existing_token: Option<&str>,
        library: MlsLibrary,
    ) -> Result<Self, Error> {
        if dir.join(STATE_FILE).exists() {
            return Err(Error::Usage(format!(
                "the profile {} exists already; use another --profile",
                dir.display()
            )));
        }
        let api = connect(&home)?;
        if let Some(t) = existing_token {
            api.set_token(t);
        }
        let mut body = serde_json::json!({ "user": user, "device": device });
        if let Some(n) = nick {
            body["nick"] = n.into();
        }
        let r = api
            .request(Method::POST, "register", Bytes::from(body.to_string()))
            .await?;
        let v = json_of(&home.domain, StatusCode::CREATED, &r)?;
        let token = v["token"].as_str().unwrap_or_default().to_owned();
        let client = ClientUri::parse(v["client"].as_str().unwrap_or_default())
            .map_err(|e| Error::Usage(format!("the node named a bad client: {e}")))?;
        api.set_token(&token);
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Usage(format!("creating {}: {e}", dir.display())))?;
        let store = DeviceStore::open(&dir.join(STATE_FILE)).await?;
        let user_uri = client.user().ok_or_else(|| {
            Error::Usage(format!("the node named a client without a user: {client}"))
        })?;
        let (mls, signer) = match library {
            MlsLibrary::OpenMls => {
                let dev = Device::new(client.clone())?;
                let signer = dev
                    .signer
                    .tls_serialize_detached()
                    .map_err(|e| Error::Usage(format!("encoding the signature key: {e}")))?;
                let mls = Mls::OpenMls {
                    dev,
                    baseline: HashMap::new(),
                    rooms: BTreeMap::new(),
                };
                (mls, hex::encode(signer))
            }
            MlsLibrary::MlsRs => {
                let dev = RsDevice::new(client.clone())?;
                let (private, public) = dev.key_pair();
                let signer = format!("{}:{}", hex::encode(private), hex::encode(public));
                let mls = Mls::MlsRs {
                    dev,
                    baseline: HashMap::new(),
                    rooms: BTreeMap::new(),
                };
                (mls, signer)
            }
        };
        for (k, v) in [
            ("node", home.domain.as_str()),
            ("addr", home.addr.as_str()),
            ("ca", &home.ca.display().to_string()),
            ("client", client.as_str()),
            ("token", &token),
            ("mls", library.name()),
            ("signer", &signer),
            ("cursor", "0"),
            ("rooms", "[]"),
        ] {
            store.set_meta(k, v).await?;
        }
        let mut c = Self {
            store,
            mls,
            client,
            user: user_uri,
            api,
            home: home.domain,
            cursor: 0,
            delivered: BTreeMap::new(),
        };
        c.save().await?;
        Ok(c)
    }

    /// Opens the profile in `dir`.
    pub async fn open(dir: &Path) -> Result<Self, Error> {
        let file = dir.join(STATE_FILE);
        if !file.exists() {
            return Err(Error::Usage(format!(
                "no profile at {}; create it with `mimi register`",
                dir.display()
            )));
        }
        let store = DeviceStore::open(&file).await?;
        let get = |k: &'static str| {
            let store = &store;
            async move { store.meta(k).await?.ok_or_else(|| meta_err(k)) }
        };
        let home = HomeNode {
            domain: get("node").await?,
            addr: get("addr").await?,
            ca: PathBuf::from(get("ca").await?),
        };
        let client = ClientUri::parse(&get("client").await?)
            .map_err(|e| Error::Usage(format!("the profile's client URI: {e}")))?;
        let user = client
            .user()
            .ok_or_else(|| Error::Usage(format!("{client} does not name its user")))?;
        // (A profile from before `--mls` existed is an openmls one.)
        let library = match store.meta("mls").await? {
            Some(name) => MlsLibrary::from_name(&name)?,
            None => MlsLibrary::OpenMls,
        };
        let signer = get("signer").await?;
        let api = connect(&home)?;
        api.set_token(get("token").await?);
        let cursor = get("cursor").await?.parse().unwrap_or(0);
        let names: Vec<String> = serde_json::from_str(&get("rooms").await?).unwrap_or_default();
        let mut echoes_of = BTreeMap::new();
        for name in names {
            let Ok(room) = RoomUri::parse(&name) else {
                continue;
            };
            let echoes: Vec<String> = match store.meta(&format!("echoes {name}")).await? {
                Some(s) => serde_json::from_str(&s).unwrap_or_default(),
                None => Vec::new(),
            };
            let echoes: Vec<Vec<u8>> = echoes.iter().filter_map(|h| hex::decode(h).ok()).collect();
            echoes_of.insert(room, echoes);
        }
        let key_error =
            |e: &dyn std::fmt::Display| Error::Usage(format!("the profile's signature key: {e}"));
        let mls = match library {
            MlsLibrary::OpenMls => {
                let signer_bytes = hex::decode(signer).map_err(|e| key_error(&e))?;
                let signer = SignatureKeyPair::tls_deserialize_exact(signer_bytes.as_slice())
                    .map_err(|e| key_error(&e))?;
                let provider = OpenMlsRustCrypto::default();
                let baseline = store.load_mls(provider.storage()).await?;
                let dev = Device {
                    client: client.clone(),
                    user: user.clone(),
                    provider,
                    signer,
                    codepoints: CodePoints::DRAFT,
                };
                let mut rooms = BTreeMap::new();
                for (room, echoes) in echoes_of {
                    let gid = GroupId::from_slice(room.group().as_str().as_bytes());
                    let group = MlsGroup::load(dev.provider.storage(), &gid)
                        .map_err(|e| Error::Usage(format!("loading {room}: {e:?}")))?;
                    if let Some(group) = group {
                        rooms.insert(room.clone(), Room::from_group(room, group, echoes));
                    }
                }
                Mls::OpenMls {
                    dev,
                    baseline,
                    rooms,
                }
            }
            MlsLibrary::MlsRs => {
                let (private, public) = signer
                    .split_once(':')
                    .ok_or_else(|| key_error(&"not a key pair"))?;
                let private = hex::decode(private).map_err(|e| key_error(&e))?;
                let public = hex::decode(public).map_err(|e| key_error(&e))?;
                let baseline = store.load_kv().await?;
                let storage = RsStorage::from_entries(baseline.clone());
                let dev = RsDevice::restore(client.clone(), private, public, storage)?;
                let mut rooms = BTreeMap::new();
                for (room, echoes) in echoes_of {
                    if let Some(r) = dev.load_room(&room, echoes)? {
                        rooms.insert(room, r);
                    }
                }
                Mls::MlsRs {
                    dev,
                    baseline,
                    rooms,
                }
            }
        };
        Ok(Self {
            store,
            mls,
            client,
            user,
            api,
            home: home.domain,
            cursor,
            delivered: BTreeMap::new(),
        })
    }

    /// Writes the MLS state and the profile's bookkeeping (after every operation).
    async fn save(&mut self) -> Result<(), Error> {
        let echoes: Vec<(RoomUri, Vec<String>)> = match &mut self.mls {
            Mls::OpenMls {
                dev,
                baseline,
                rooms,
            } => {
                self.store
                    .save_mls(dev.provider.storage(), baseline)
                    .await?;
                echoes_of(rooms.iter().map(|(u, r)| (u, r.pending_echoes())))
            }
            Mls::MlsRs {
                dev,
                baseline,
                rooms,
            } => {
                for r in rooms.values_mut() {
                    r.save()?;
                }
                let current: HashMap<Vec<u8>, Vec<u8>> =
                    dev.storage().entries().into_iter().collect();
                self.store.save_kv(current, baseline).await?;
                echoes_of(rooms.iter().map(|(u, r)| (u, r.pending_echoes())))
            }
        };
        let names: Vec<&str> = echoes.iter().map(|(u, _)| u.as_str()).collect();
        self.store
            .set_meta("rooms", &serde_json::to_string(&names).unwrap_or_default())
            .await?;
        for (uri, echoes) in &echoes {
            self.store
                .set_meta(
                    &format!("echoes {uri}"),
                    &serde_json::to_string(&echoes).unwrap_or_default(),
                )
                .await?;
        }
        self.store
            .set_meta("cursor", &self.cursor.to_string())
            .await?;
        Ok(())
    }

    /// The bearer token (to register another device of this user).
    pub async fn token(&self) -> Result<String, Error> {
        self.store
            .meta("token")
            .await?
            .ok_or_else(|| meta_err("token"))
    }

    /// The home node's connection settings.
    pub async fn home_node(&self) -> Result<HomeNode, Error> {
        Ok(HomeNode {
            domain: self.home.clone(),
            addr: self
                .store
                .meta("addr")
                .await?
                .ok_or_else(|| meta_err("addr"))?,
            ca: PathBuf::from(self.store.meta("ca").await?.ok_or_else(|| meta_err("ca"))?),
        })
    }

    /// The client API of the home node.
    pub(crate) fn api(&self) -> &ClientApi {
        &self.api
    }

    /// This device's user.
    pub fn user(&self) -> &UserUri {
        &self.user
    }

    /// This device's client URI.
    pub fn client(&self) -> &ClientUri {
        &self.client
    }

    /// The MLS implementation this device runs.
    pub fn library(&self) -> MlsLibrary {
        match self.mls {
            Mls::OpenMls { .. } => MlsLibrary::OpenMls,
            Mls::MlsRs { .. } => MlsLibrary::MlsRs,
        }
    }

    /// The rooms this device is in.
    pub fn rooms(&self) -> Vec<RoomUri> {
        match &self.mls {
            Mls::OpenMls { rooms, .. } => rooms.keys().cloned().collect(),
            Mls::MlsRs { rooms, .. } => rooms.keys().cloned().collect(),
        }
    }

    /// A room of this device, whichever library it runs.
    fn room_ref(&self, room: &RoomUri) -> Result<RoomRef<'_>, Error> {
        match &self.mls {
            Mls::OpenMls { dev, rooms, .. } => rooms.get(room).map(|r| RoomRef::OpenMls(dev, r)),
            Mls::MlsRs { rooms, .. } => rooms.get(room).map(RoomRef::MlsRs),
        }
        .ok_or_else(|| not_in(room))
    }

    /// Whether this device is a member of `room` now.
    fn is_member(&self, room: &RoomUri) -> bool {
        self.room_ref(room).is_ok_and(|r| r.is_active())
    }

    /// The openmls device and its rooms, for `what` only openmls devices can do.
    fn openmls_rooms(
        &mut self,
        what: &str,
    ) -> Result<(&Device, &mut BTreeMap<RoomUri, Room>), Error> {
        match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => Ok((&*dev, rooms)),
            Mls::MlsRs { .. } => Err(openmls_only(what)),
        }
    }

    /// The mls-rs device and its rooms (`None` on an openmls device).
    fn mlsrs_rooms(&mut self) -> Option<(&RsDevice, &mut BTreeMap<RoomUri, RsRoom>)> {
        match &mut self.mls {
            Mls::MlsRs { dev, rooms, .. } => Some((&*dev, rooms)),
            Mls::OpenMls { .. } => None,
        }
    }

    /// The openmls device and one of its rooms, for `what` only openmls devices can do.
    fn openmls_room(&mut self, room: &RoomUri, what: &str) -> Result<(&Device, &mut Room), Error> {
        let (dev, rooms) = self.openmls_rooms(what)?;
        Ok((dev, rooms.get_mut(room).ok_or_else(|| not_in(room))?))
    }

    /// A room by its URI, or by the last segment of its URI when that is unique.
    pub fn resolve_room(&self, name: &str) -> Result<RoomUri, Error> {
        if let Ok(r) = RoomUri::parse(name) {
            return Ok(r);
        }
        let hits: Vec<RoomUri> = self
            .rooms()
            .into_iter()
            .filter(|r| r.as_str().rsplit('/').next() == Some(name))
            .collect();
        match hits.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::Usage(format!(
                "no room {name:?} on this device (`mimi rooms` lists them; a room URI looks like mimi://a.example/r/name)"
            ))),
            _ => Err(Error::Usage(format!(
                "{name:?} names several rooms; give the whole URI"
            ))),
        }
    }

    async fn post(&self, rest: &str, body: Vec<u8>) -> Result<Bytes, Error> {
        let r = self
            .api
            .request(Method::POST, rest, Bytes::from(body))
            .await?;
        if r.status != StatusCode::OK && r.status != StatusCode::CREATED {
            return Err(Error::Node {
                node: self.home.clone(),
                status: r.status,
                reason: r.text(),
            });
        }
        Ok(r.body)
    }

    /// Uploads `n` fresh KeyPackages in each supported suite (0x0001 and 0x0003,
    /// `ROOM-suites`): `(stored, available)`.
    pub async fn publish_key_packages(&mut self, n: usize) -> Result<(u64, u64), Error> {
        let mut kps = Vec::new();
        match &self.mls {
            Mls::OpenMls { dev, .. } => {
                for suite in mimi_room::mls::SUITES {
                    for _ in 0..n.clamp(1, 50) {
                        kps.push(hex::encode(dev.key_package_for(suite)?));
                    }
                }
            }
            // The mls-rs device signs with one identity of suite 0x0001: KeyPackages of that
            // suite only (a room of suite 0x0003 gets the draft's code for this device).
            Mls::MlsRs { dev, .. } => {
                for _ in 0..n.clamp(1, 50) {
                    kps.push(hex::encode(dev.key_package()?));
                }
            }
        }
        // The private keys must be on disk before anyone can use the KeyPackages.
        self.save().await?;
        let body = serde_json::json!({ "key_packages": kps });
        let r = self
            .api
            .request(Method::POST, "keyPackages", Bytes::from(body.to_string()))
            .await?;
        let v = json_of(&self.home, StatusCode::OK, &r)?;
        Ok((
            v["stored"].as_u64().unwrap_or(0),
            v["available"].as_u64().unwrap_or(0),
        ))
    }

    /// Creates a room on the home node (which is its hub).
    pub async fn create_room(
        &mut self,
        name: &str,
        title: Option<&str>,
        preset_name: &str,
    ) -> Result<RoomUri, Error> {
        self.create_room_in(name, title, preset_name, 1).await
    }

    /// [`Client::create_room`] in cipher suite `suite` (1 or 3, `ROOM-suites`).
    pub async fn create_room_in(
        &mut self,
        name: &str,
        title: Option<&str>,
        preset_name: &str,
        suite: u16,
    ) -> Result<RoomUri, Error> {
        let suite = mimi_room::mls::SUITES
            .into_iter()
            .find(|s| u16::from(*s) == suite)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "cipher suite {suite} is not supported; use 1 (AES-128-GCM) or 3 (ChaCha20-Poly1305)"
                ))
            })?;
        let room = RoomUri::parse(&format!("mimi://{}/r/{name}", self.home))
            .map_err(|e| Error::Usage(format!("room name {name:?}: {e}")))?;
        let r = self.api.request(Method::GET, "hub", Bytes::new()).await?;
        let v = json_of(&self.home, StatusCode::OK, &r)?;
        let sender = hex::decode(v["external_sender"].as_str().unwrap_or_default())
            .ok()
            .and_then(|b| ExternalSender::tls_deserialize_exact(b.as_slice()).ok())
            .ok_or_else(|| Error::Usage("the node's hub key does not decode".into()))?;
        // PROTO-5.4.1-frank-agent-key: the node's franking key, when it has one of its own;
        // else the room names the hub key (franks are signed with it then).
        let agent = match v["franking_agent"].as_str() {
            Some(h) => hex::decode(h)
                .ok()
                .and_then(|b| mimi_wire::franking::FrankingAgentData::decode(&b).ok())
                .ok_or_else(|| Error::Usage("the node's franking agent does not decode".into()))?,
            None => mimi_room::franking::agent_of(&sender)
                .map_err(|e| Error::Usage(format!("the node's hub key: {e}")))?,
        };
        let Mls::OpenMls { dev, .. } = &self.mls else {
            return Err(openmls_only("creating a room"));
        };
        let (r, gi, tree) =
            dev.create_room_with_agent(&room, &preset(preset_name)?, sender, agent, title, suite)?;
        let mut w = Writer::new();
        gi.write(&mut w);
        let gi = w.finish();
        let mut w = Writer::new();
        tree.write(&mut w);
        let tree = w.finish();
        let body =
            serde_json::json!({ "group_info": hex::encode(gi), "ratchet_tree": hex::encode(tree) });
        self.post(
            &format!("rooms/{}", enc(room.as_str())),
            body.to_string().into_bytes(),
        )
        .await?;
        if let Mls::OpenMls { rooms, .. } = &mut self.mls {
            rooms.insert(room.clone(), r);
        }
        self.save().await?;
        Ok(room)
    }

    /// Sends a commit to the hub: merged on success, discarded otherwise (the error names the
    /// hub's answer).
    async fn commit(&mut self, room: &RoomUri, bundle: HandshakeBundle) -> Result<u64, Error> {
        let answer = self
            .post(&format!("update/{}", enc(room.as_str())), bundle.encode())
            .await;
        let outcome = answer.and_then(|b| Ok(UpdateRoomResponse::decode(&b)?));
        let accepted = matches!(
            outcome,
            Ok(UpdateRoomResponse {
                outcome: UpdateOutcome::Success { .. },
                ..
            })
        );
        let epoch = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                if accepted {
                    r.merge(dev)?;
                } else {
                    r.discard(dev)?;
                }
                r.epoch()
            }
            Mls::MlsRs { rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                if accepted {
                    r.merge()?;
                } else {
                    r.discard();
                }
                r.epoch()
            }
        };
        self.save().await?;
        match outcome {
            Ok(_) if accepted => Ok(epoch),
            Ok(resp) => Err(Error::Refused(format!(
                "the hub refused the change: {} {}",
                outcome_name(&resp.outcome),
                resp.error_description
            ))),
            Err(e) => Err(e),
        }
    }

    /// The room's state as this device has it.
    pub fn room_state(&self, room: &RoomUri) -> Result<mimi_room::state::RoomState, Error> {
        self.room_ref(room)?.state()
    }

    /// Makes a join link for the room (`ROOM-join-links`), setting the room's join link policy
    /// in the same commit when it is not already `multiuser`/`expiration`. Returns the link.
    pub async fn make_join_link(
        &mut self,
        room: &RoomUri,
        multiuser: bool,
        expiration_s: u32,
    ) -> Result<String, Error> {
        let (dev, r) = self.openmls_room(room, "making a join link")?;
        let state = r.state(dev)?;
        let policy = mimi_room::join_links::JoinLinkPolicy {
            on_request: true,
            join_link: room.to_string(),
            multiuser,
            expiration: expiration_s,
        };
        let policy = (state.join.policy.as_ref() != Some(&policy)).then_some(policy);
        let link = mimi_room::join_links::new_link(room)
            .map_err(|e| Error::Usage(format!("no randomness for the link: {e}")))?;
        let out = r.set_join_links(dev, policy, vec![link.clone()], &[])?;
        self.commit(room, out.bundle).await?;
        Ok(String::from_utf8_lossy(&link).into_owned())
    }

    /// Revokes one of the room's join links.
    pub async fn revoke_join_link(&mut self, room: &RoomUri, link: &str) -> Result<u64, Error> {
        let (dev, r) = self.openmls_room(room, "revoking a join link")?;
        let out = r.set_join_links(dev, None, Vec::new(), &[link.as_bytes().to_vec()])?;
        self.commit(room, out.bundle).await
    }

    /// Claims KeyPackages of `users` through the room's hub and adds them with `role`.
    pub async fn add(
        &mut self,
        room: &RoomUri,
        users: &[UserUri],
        role: u32,
    ) -> Result<u64, Error> {
        self.sync(0).await?;
        let mut kps = Vec::new();
        let mut adds = Vec::new();
        let r = self.room_ref(room)?;
        let suite = r.suite();
        // Devices in the room already get no second leaf: adding a new device of a listed
        // user claims KeyPackages of all of that user's devices.
        let members = r.clients();
        if let RoomRef::MlsRs(_) = r {
            // An mls-rs commit can add devices of users the room lists already; listing a
            // new user takes a participant-list AppDataUpdate (spec-notes/interop.md).
            let listed = r.state()?;
            if let Some(u) = users
                .iter()
                .find(|u| listed.participants.index_of(u).is_none())
            {
                return Err(openmls_only(&format!(
                    "adding {u}, who is not a participant yet,"
                )));
            }
            if suite != u16::from(mimi_room_mlsrs::device::SUITE) {
                return Err(Error::Usage(format!(
                    "this mls-rs device asks for KeyPackages of suite 0x0001 only; {room} is of suite {suite:#06x}"
                )));
            }
        }
        for u in users {
            // PROTO-5.7-grant-key-packages: KeyPackages that came with the user's consent grant
            // are used first (one use each), when they are of the room's suite.
            let granted = self
                .post(
                    "consent/keyPackages",
                    serde_json::json!({ "target": u.as_str(), "suite": suite })
                        .to_string()
                        .into_bytes(),
                )
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["key_packages"].as_array().cloned())
                .unwrap_or_default();
            let granted: Vec<Vec<u8>> = granted
                .iter()
                .filter_map(|h| hex::decode(h.as_str()?).ok())
                .filter(|k| mimi_wire::key_material::key_package_suite(k) == Some(suite))
                .collect();
            if !granted.is_empty() {
                kps.extend(granted);
                adds.push((u.clone(), role));
                continue;
            }
            // ROOM-suites: KeyPackages of the room's suite.
            let req = match &self.mls {
                Mls::OpenMls { dev, .. } => {
                    let suite = mimi_room::mls::SUITES
                        .into_iter()
                        .find(|s| u16::from(*s) == suite)
                        .ok_or_else(|| {
                            Error::Usage(format!("{room} is of an unknown suite {suite:#06x}"))
                        })?;
                    dev.key_material_request_in(room, u, &[suite])?
                }
                Mls::MlsRs { dev, .. } => dev.key_material_request(room, u)?,
            };
            let b = self
                .post(&format!("keyMaterial/{}", enc(u.as_str())), req.encode())
                .await?;
            let resp = KeyMaterialResponse::decode(&b)?;
            let got: Vec<Vec<u8>> = resp
                .clients
                .iter()
                .filter(|c| !members.contains(&c.client_uri))
                .filter_map(|c| match &c.material {
                    ClientMaterial::KeyPackage(k) => Some(k.as_bytes().to_vec()),
                    _ => None,
                })
                .collect();
            if got.is_empty() && resp.clients.iter().any(|c| members.contains(&c.client_uri)) {
                return Err(Error::Usage(format!(
                    "every device of {u} that has KeyPackages is in {room} already"
                )));
            }
            if got.is_empty() {
                return Err(Error::Refused(format!(
                    "no KeyPackage for {u}: {} (they may need to run `mimi keys publish`, or to grant you consent)",
                    resp.user_status.name().unwrap_or("unknown code")
                )));
            }
            kps.extend(got);
            adds.push((u.clone(), role));
        }
        let bundle = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                r.add_users(dev, &adds, &kps)?.bundle
            }
            Mls::MlsRs { rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                r.add_users(&adds, &kps)?
            }
        };
        self.commit(room, bundle).await
    }

    /// Removes a user (all their devices).
    pub async fn remove(&mut self, room: &RoomUri, user: &UserUri) -> Result<u64, Error> {
        self.sync(0).await?;
        let (dev, r) = self.openmls_room(room, "removing a user")?;
        let out = r.remove_user(dev, user)?;
        self.commit(room, out.bundle).await
    }

    /// Deletes another device of this user at the home node (`CAPI-device-remove`) and gets
    /// it out of every room: the hub proposes its removal in the rooms the home node hosts
    /// (`PROTO-hub-removal`), and this device commits it (with the hub's proposal, or as its
    /// own removal of its user's client in rooms hosted elsewhere). Returns the rooms and the
    /// epoch each removal reached, and the rooms where it failed with why.
    pub async fn remove_device(&mut self, client: &ClientUri) -> Result<DeviceRemoval, Error> {
        if *client == self.client {
            return Err(Error::Usage(
                "a device does not remove itself: run this from another device of the user".into(),
            ));
        }
        let b = self
            .post(
                "devices/remove",
                serde_json::json!({ "client": client.as_str() })
                    .to_string()
                    .into_bytes(),
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&b)
            .map_err(|e| Error::Usage(format!("devices/remove answer: {e}")))?;
        let mut done = DeviceRemoval::default();
        // The hub's proposals arrive in the queue: take them in before committing.
        self.sync(0).await?;
        for room in self.rooms() {
            let out = match &mut self.mls {
                Mls::OpenMls { dev, rooms, .. } => {
                    let Some(r) = rooms.get_mut(&room) else {
                        continue;
                    };
                    if !r.is_active() || !r.clients().contains(client) {
                        continue;
                    }
                    if r.group.pending_proposals().next().is_some() {
                        // The hub's Remove (and whatever else waits) is in the commit.
                        r.commit_pending(dev)
                    } else {
                        r.commit_plan(
                            dev,
                            mimi_room::client::CommitPlan {
                                remove_clients: vec![client.clone()],
                                ..Default::default()
                            },
                        )
                    }
                    .map(|o| o.bundle)
                    .map_err(Error::from)
                }
                Mls::MlsRs { rooms, .. } => {
                    let Some(r) = rooms.get_mut(&room) else {
                        continue;
                    };
                    let Some(leaf) = r.leaf_of(client).filter(|_| r.is_active()) else {
                        continue;
                    };
                    if r.has_pending_proposals() {
                        // The hub's Remove, by reference (mls-rs commits every proposal
                        // it holds).
                        r.self_update()
                    } else {
                        r.commit(None, &[], &[leaf])
                    }
                    .map_err(Error::from)
                }
            };
            let result = match out {
                Ok(bundle) => self.commit(&room, bundle).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(epoch) => done.removed.push((room.to_string(), epoch)),
                Err(e) => done.failed.push((room.to_string(), e.to_string())),
            }
        }
        done.proposed_by_hub = v["proposed"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(done)
    }

    /// Bans a user.
    pub async fn ban(&mut self, room: &RoomUri, user: &UserUri) -> Result<u64, Error> {
        self.sync(0).await?;
        let (dev, r) = self.openmls_room(room, "banning a user")?;
        let out = r.ban(dev, user)?;
        self.commit(room, out.bundle).await
    }

    /// Gives a user a role.
    pub async fn set_role(
        &mut self,
        room: &RoomUri,
        user: &UserUri,
        role: u32,
    ) -> Result<u64, Error> {
        self.sync(0).await?;
        let (dev, r) = self.openmls_room(room, "changing a role")?;
        let out = r.set_role(dev, user, role)?;
        self.commit(room, out.bundle).await
    }

    /// Leaves: proposes this device's removal (SelfRemove); another member commits it.
    pub async fn leave(&mut self, room: &RoomUri) -> Result<(), Error> {
        self.sync(0).await?;
        // (mls-rs's SelfRemove is its own type 0xF003, not the draft's 0x000a.)
        let (dev, r) = self.openmls_room(room, "leaving with a SelfRemove proposal")?;
        let bundle = r.leave(dev)?;
        self.save().await?;
        let b = self
            .post(&format!("update/{}", enc(room.as_str())), bundle.encode())
            .await?;
        let resp = UpdateRoomResponse::decode(&b)?;
        if !matches!(resp.outcome, UpdateOutcome::Success { .. }) {
            return Err(Error::Refused(format!(
                "the hub refused the leave: {}",
                outcome_name(&resp.outcome)
            )));
        }
        Ok(())
    }

    /// Commits proposals waiting in a room (someone's leave), if any: the new epoch.
    pub async fn commit_pending(&mut self, room: &RoomUri) -> Result<Option<u64>, Error> {
        let bundle = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                if r.group.pending_proposals().next().is_none() {
                    return Ok(None);
                }
                r.commit_pending(dev)?.bundle
            }
            Mls::MlsRs { rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                if !r.has_pending_proposals() {
                    return Ok(None);
                }
                r.self_update()?
            }
        };
        self.commit(room, bundle).await.map(Some)
    }

    /// A self-update (an empty commit with an UpdatePath: fresh keys for this device,
    /// RFC 9420 §12.4), with the proposals waiting in the room: the new epoch.
    pub async fn self_update(&mut self, room: &RoomUri) -> Result<u64, Error> {
        self.sync(0).await?;
        let bundle = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => {
                let r = rooms.get_mut(room).ok_or_else(|| not_in(room))?;
                r.commit_plan(dev, mimi_room::client::CommitPlan::default())?
                    .bundle
            }
            Mls::MlsRs { rooms, .. } => rooms
                .get_mut(room)
                .ok_or_else(|| not_in(room))?
                .self_update()?,
        };
        self.commit(room, bundle).await
    }

    /// Encrypts and submits MIMI content; adds it to this device's history. Returns its
    /// message ID.
    pub async fn send(
        &mut self,
        room: &RoomUri,
        mut content: MimiContent,
    ) -> Result<[u8; 32], Error> {
        // PROTO-5.4.1-frank-aad: franked content names its sender and room (extension keys 1
        // and 2), which the frank's context is rebuilt from.
        content.extensions.set(
            mimi_content::ExtensionKey::SENDER_URI,
            mimi_content::cbor::Value::Text(self.user.to_string()),
        );
        content.extensions.set(
            mimi_content::ExtensionKey::ROOM_URI,
            mimi_content::cbor::Value::Text(room.to_string()),
        );
        self.local_rules(room, &content).await?;
        self.obey_policy(room, &mut content)?;
        let (bytes, id) = content
            .encode_with_id(Some(self.user.as_str()), Some(room.as_str()))
            .map_err(|e| Error::Usage(format!("encoding the message: {e}")))?;
        let req = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => rooms
                .get_mut(room)
                .ok_or_else(|| not_in(room))?
                .send(dev, &bytes)?,
            Mls::MlsRs { rooms, .. } => {
                let m = rooms
                    .get_mut(room)
                    .ok_or_else(|| not_in(room))?
                    .send(&bytes)?;
                SubmitMessageRequest {
                    app_message: mimi_wire::Mls::from_bytes(m)?,
                    sending_uri: mimi_wire::id::MimiUri::parse(self.user.as_str())
                        .map_err(|e| Error::Usage(format!("this device's user URI: {e}")))?,
                }
            }
        };
        self.save().await?;
        let b = self
            .post(
                &format!("submitMessage/{}", enc(room.as_str())),
                req.encode(),
            )
            .await?;
        match SubmitMessageResponse::decode(&b)?.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp,
                frank,
            } => {
                // The sender checks its own frank as any receiver would, and keeps it.
                let check = match &self.mls {
                    Mls::OpenMls { dev, rooms, .. } => rooms.get(room).map(|r| {
                        r.check_frank(
                            dev,
                            &self.client,
                            &bytes,
                            Ok(frank_aad_for(&bytes)),
                            frank.as_ref(),
                            accepted_timestamp,
                        )
                    }),
                    Mls::MlsRs { rooms, .. } => rooms.get(room).map(|r| {
                        let aad = frank_aad_for(&bytes)
                            .map(|a| safe_aad(&a))
                            .unwrap_or_default();
                        r.check_frank(
                            Some(&self.client),
                            &bytes,
                            &aad,
                            frank.as_ref(),
                            accepted_timestamp,
                        )
                    }),
                };
                if let Some(check) = check {
                    self.store
                        .set_frank(room.as_str(), &id.0, &stored_frank(&check, frank.as_ref()))
                        .await?;
                }
                self.store
                    .add_received(
                        room.as_str(),
                        &StoredMessage {
                            id: id.0,
                            sender: self.user.to_string(),
                            timestamp_ms: accepted_timestamp,
                            content: bytes,
                        },
                    )
                    .await?;
                Ok(id.0)
            }
            SubmitOutcome::NotAllowed => Err(Error::Refused(
                "the hub refused the message: notAllowed (are you still in the room?)".into(),
            )),
            SubmitOutcome::EpochTooOld { current_epoch } => Err(Error::Refused(format!(
                "the hub is at epoch {current_epoch}: run `mimi sync` and send again"
            ))),
            SubmitOutcome::Other(code) => {
                Err(Error::Refused(format!("the hub answered code {code:?}")))
            }
        }
    }

    /// Fetches the queue (waiting up to `wait_ms` for a first item), processes everything,
    /// acknowledges it. Repeats until the queue is empty (bounded: 100 rounds).
    pub async fn sync(&mut self, wait_ms: u64) -> Result<SyncReport, Error> {
        let mut report = SyncReport::default();
        let mut wait = wait_ms;
        for _ in 0..100 {
            let r = self
                .api
                .request(
                    Method::GET,
                    &format!("queue?after={}&wait={wait}&limit=200", self.cursor),
                    Bytes::new(),
                )
                .await?;
            let v = json_of(&self.home, StatusCode::OK, &r)?;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                break;
            }
            wait = 0;
            for item in &items {
                let seq = item["seq"].as_u64().unwrap_or(self.cursor);
                let room = item["room"].as_str().unwrap_or_default().to_owned();
                let body =
                    hex::decode(item["body"].as_str().unwrap_or_default()).unwrap_or_default();
                *report.items_by_room.entry(room.clone()).or_default() += 1;
                let member = RoomUri::parse(&room).is_ok_and(|u| self.is_member(&u));
                let joined = report.joined.len();
                if let Err(e) = self.process_item(&room, &body, &mut report).await {
                    report.skipped.push((room.clone(), e.to_string()));
                }
                if !member && report.joined.len() == joined {
                    *report.items_not_member.entry(room).or_default() += 1;
                }
                report.items += 1;
                self.cursor = self.cursor.max(seq);
            }
            // Saved before the acknowledgement: a crash in between re-fetches, and the
            // repeats are ignored (old epochs, known message IDs).
            self.save().await?;
            self.post(
                "queue/ack",
                serde_json::json!({ "upto": self.cursor })
                    .to_string()
                    .into_bytes(),
            )
            .await?;
        }
        // Delivery receipts (message-status `delivered`) for what others sent, one report per
        // room; a failure is noted, not fatal (the messages are in the history either way).
        let local = self.setting(Setting::DeliveryReceipts).await?;
        for (room, ids) in std::mem::take(&mut self.delivered) {
            let Ok(r) = self.room_ref(&room) else {
                continue;
            };
            // ROOM-policy-status: never when forbidden, always when required, else as the
            // profile says (`delivery_receipts` = off turns them off).
            let policy = r.state()?.policies.status;
            if !send_receipt(policy.as_ref(), Receipt::Delivery, local) {
                continue;
            }
            let report_body = mimi_content::status::MessageStatusReport {
                statuses: ids
                    .into_iter()
                    .map(|message_id| mimi_content::status::PerMessageStatus {
                        message_id,
                        status: mimi_content::status::MessageStatus::DELIVERED,
                    })
                    .collect(),
            };
            let content = mimi_content::build::ContentBuilder::new(
                salt(),
                mimi_content::NestedPart::status_report(&report_body),
            )
            .build();
            if let Err(e) = self.send(&room, content).await {
                report
                    .skipped
                    .push((room.to_string(), format!("delivery receipt not sent: {e}")));
            }
        }
        // ROOM-policy-expiry: expired messages leave the store on every sync.
        for room in self.rooms() {
            self.purge_expired(&room).await?;
        }
        Ok(report)
    }

    async fn process_item(
        &mut self,
        room: &str,
        body: &[u8],
        report: &mut SyncReport,
    ) -> Result<(), Error> {
        let room = RoomUri::parse(room).map_err(|e| Error::Usage(format!("queue room: {e}")))?;
        if body.is_empty() {
            // STORE-retention: the home node lost part of this room's traffic for good;
            // rejoin as this same device from the hub's GroupInfo.
            // (Not a room this device was removed from: rejoining it is not up to the device.)
            if self.is_member(&room) {
                self.resync(&room).await?;
                report.resynced.push(room.to_string());
            }
            return Ok(());
        }
        let f = FanoutMessage::decode(body)?;
        if let FanoutExtra::Welcome(tree) = &f.extra {
            if self.is_member(&room) {
                return Ok(());
            }
            // Removed earlier and now added again: the old group is of no more use (its
            // storage would collide with the new one, same group ID).
            match &mut self.mls {
                Mls::OpenMls { dev, rooms, .. } => {
                    if let Some(old) = rooms.remove(&room) {
                        old.delete(dev)?;
                    }
                    let r = dev.join_from_welcome(&room, &f.message, tree)?;
                    rooms.insert(room.clone(), r);
                }
                Mls::MlsRs { dev, rooms, .. } => {
                    if rooms.remove(&room).is_some() {
                        dev.delete_room(&room);
                    }
                    let r = dev.join_from_item(&room, &f)?;
                    rooms.insert(room.clone(), r);
                }
            }
            report.joined.push(room.to_string());
            return Ok(());
        }
        let event = match &mut self.mls {
            Mls::OpenMls { dev, rooms, .. } => {
                let Some(r) = rooms.get_mut(&room) else {
                    return Ok(());
                };
                r.process(dev, &f)?
            }
            Mls::MlsRs { rooms, .. } => {
                let Some(r) = rooms.get_mut(&room) else {
                    return Ok(());
                };
                match r.process_item(&f).map_err(undecodable_on_mlsrs)? {
                    RsEvent::Message {
                        sender,
                        content,
                        frank,
                    } => Event::Message {
                        sender: sender.ok_or_else(|| {
                            Error::Usage("a message whose sender's leaf names no client".into())
                        })?,
                        content,
                        frank,
                    },
                    RsEvent::Commit { epoch } => Event::Commit {
                        epoch,
                        removed: !r.is_active(),
                    },
                    RsEvent::Proposal => Event::Proposal,
                    RsEvent::Ignored => Event::Ignored,
                }
            }
        };
        match event {
            Event::Message {
                sender,
                content,
                frank,
            } => {
                let user = sender.user().map(|u| u.to_string()).unwrap_or_default();
                let c = MimiContent::decode(&content).map_err(|e| {
                    Error::Usage(format!("a message from {sender} does not decode: {e}"))
                })?;
                let id = c
                    .message_id_for(&content, Some(&user), Some(room.as_str()))
                    .map_err(|e| Error::Usage(format!("message ID: {e}")))?;
                let new = self
                    .store
                    .add_received(
                        room.as_str(),
                        &StoredMessage {
                            id: id.0,
                            sender: user,
                            timestamp_ms: f.timestamp,
                            content,
                        },
                    )
                    .await?;
                if new {
                    let fanned = match &f.extra {
                        FanoutExtra::Application(x) => x.as_ref(),
                        _ => None,
                    };
                    // PROTO-5.4.1-frank-flag: kept with the message, flagged when invalid.
                    self.store
                        .set_frank(room.as_str(), &id.0, &stored_frank(&frank, fanned))
                        .await?;
                    if let FrankCheck::Invalid(why) = &frank {
                        report
                            .flagged
                            .push((room.to_string(), hex::encode(id.0), why.clone()));
                    }
                    report.messages.push((room.to_string(), hex::encode(id.0)));
                    if crate::attach::external_part(&c.nested_part).is_some() {
                        report
                            .attachments
                            .push((room.to_string(), hex::encode(id.0)));
                    }
                    let is_status = matches!(&c.nested_part.body,
                        mimi_content::PartBody::Single { content_type, .. }
                            if content_type == mimi_content::status::MEDIA_TYPE);
                    if !is_status && sender.user().as_ref() != Some(&self.user) {
                        self.delivered.entry(room.clone()).or_default().push(id);
                    }
                } else if sender != self.client {
                    // (The sender's own message coming back from the hub is not a repeat.)
                    report.repeated.push((room.to_string(), hex::encode(id.0)));
                }
            }
            Event::Commit { epoch, removed } => {
                report.commits.push((room.to_string(), epoch));
                if removed {
                    report
                        .skipped
                        .push((room.to_string(), "this device was removed".into()));
                }
            }
            Event::Proposal | Event::Ignored => {}
        }
        Ok(())
    }

    /// The last queue position this device processed and acknowledged.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Turns this profile's delivery receipts (message-status `delivered`, sent after a sync
    /// for what others sent) on or off; a room's policy that requires them still wins.
    pub async fn set_delivery_receipts(&self, on: bool) -> Result<(), Error> {
        self.set_setting(Setting::DeliveryReceipts, on).await
    }

    /// Sets one of this profile's local settings (`CLIENT-local-rules`).
    pub async fn set_setting(&self, s: Setting, on: bool) -> Result<(), Error> {
        self.store
            .set_meta(s.key(), if on { "on" } else { "off" })
            .await?;
        Ok(())
    }

    /// This profile's local settings.
    pub async fn settings(&self) -> Result<Vec<(Setting, bool)>, Error> {
        let mut out = Vec::new();
        for s in Setting::ALL {
            out.push((s, self.setting(s).await?));
        }
        Ok(out)
    }

    async fn setting(&self, s: Setting) -> Result<bool, Error> {
        Ok(match self.store.meta(s.key()).await?.as_deref() {
            Some("on") => true,
            Some("off") => false,
            _ => s.default_on(),
        })
    }

    /// `CLIENT-local-rules` (room-policy-03 §6.5, §6.7: "allow clients to make appropriate
    /// local policy decisions"): this profile may refuse to send into a room whose logging is
    /// active, or whose bot policy lets a bot message members one by one or send each
    /// different content. Receipts are not refused (they say nothing a log would add).
    async fn local_rules(&self, room: &RoomUri, content: &MimiContent) -> Result<(), Error> {
        let is_status = matches!(&content.nested_part.body,
            mimi_content::PartBody::Single { content_type, .. }
                if content_type == mimi_content::status::MEDIA_TYPE);
        if is_status {
            return Ok(());
        }
        let logged = self.setting(Setting::RefuseLoggedRooms).await?;
        let bots = self.setting(Setting::RefuseTargetingBots).await?;
        if !logged && !bots {
            return Ok(());
        }
        let p = self.room_state(room)?.policies;
        if logged && let Some(l) = p.logging.as_ref().filter(|l| l.active()) {
            return Err(Error::Refused(format!(
                "{room} is logged (room-policy-03 logging_policy: logging {}{}{}); this \
                 profile refuses to send into logged rooms (`mimi settings \
                 --refuse-logged-rooms off`)",
                l.logging.name(),
                if l.logging_clients.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", l.logging_clients.join(", "))
                },
                if l.human_readable_policy.is_empty() {
                    String::new()
                } else {
                    format!(", policy {}", l.human_readable_policy)
                }
            )));
        }
        if bots
            && let Some(b) = p.bots.as_ref().and_then(|b| {
                b.allowed_bots
                    .iter()
                    .find(|b| b.can_target_message_in_group || b.per_user_content)
            })
        {
            return Err(Error::Refused(format!(
                "{room} allows the bot {:?}, which may {} (room-policy-03 bot_policy); this \
                 profile refuses to send into such rooms (`mimi settings \
                 --refuse-targeting-bots off`)",
                b.name,
                if b.can_target_message_in_group {
                    "message members one by one"
                } else {
                    "send each member different content"
                }
            )));
        }
        Ok(())
    }

    /// A room as this device sees it.
    pub fn info(&self, room: &RoomUri) -> Result<RoomInfo, Error> {
        let r = self.room_ref(room)?;
        let state = r.state()?;
        let clients = r.clients();
        let mut providers: Vec<String> = clients.iter().map(|c| c.provider().to_string()).collect();
        providers.sort();
        providers.dedup();
        Ok(RoomInfo {
            room: room.to_string(),
            name: state
                .metadata
                .as_ref()
                .map(|m| m.room_name.clone())
                .filter(|n| !n.is_empty()),
            epoch: r.epoch(),
            epoch_authenticator: hex::encode(r.epoch_authenticator()?),
            implementation: self.library().name(),
            participants: state
                .participants
                .participants
                .iter()
                .map(|p| (p.user.to_string(), p.role_index))
                .collect(),
            clients: clients.iter().map(ToString::to_string).collect(),
            providers,
            hub: room.provider().to_string(),
            policy: crate::policy::policy_json(&state),
            policy_text: crate::policy::policy_lines(&state),
            join_links: state
                .join
                .links
                .links
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
            join_link_policy: state
                .join
                .policy
                .as_ref()
                .map(|p| (p.multiuser, p.expiration)),
        })
    }

    /// A room's messages as a person sees them (edits applied, deletions shown, reactions
    /// counted, replies threaded, statuses).
    pub async fn history(&self, room: &RoomUri) -> Result<Vec<MessageView>, Error> {
        // ROOM-policy-expiry: expired messages are deleted, not shown.
        self.purge_expired(room).await?;
        Ok(self
            .stored_history(room)
            .await?
            .view(now_ms(), Some(self.user.as_str())))
    }

    /// The room's stored messages as a [`History`] (undecodable ones skipped).
    async fn stored_history(&self, room: &RoomUri) -> Result<History, Error> {
        let mut h = History::new();
        for m in self.store.history(room.as_str()).await? {
            let Ok(content) = MimiContent::decode(&m.content) else {
                continue;
            };
            let _ = h.insert(Received {
                id: mimi_content::MessageId(m.id),
                sender: m.sender,
                timestamp_ms: m.timestamp_ms,
                content,
            });
        }
        Ok(h)
    }

    /// Deletes the messages of a room that have expired (content-08 `expires`; absolute, or
    /// relative to this user's read receipt) from the local store (`ROOM-policy-expiry`).
    /// Returns how many were deleted.
    pub async fn purge_expired(&self, room: &RoomUri) -> Result<u64, Error> {
        let h = self.stored_history(room).await?;
        let expired: Vec<[u8; 32]> = h
            .view(now_ms(), Some(self.user.as_str()))
            .into_iter()
            .filter(|v| v.expired)
            .map(|v| v.id.0)
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        Ok(self.store.delete_received(room.as_str(), &expired).await?)
    }

    /// What the room's policy makes of a message before it is sent: a receipt the room
    /// forbids is refused (`ROOM-policy-status`), and the expiry is set or checked against the
    /// message expiration policy (`ROOM-policy-expiry`; the client sets an absolute expiry).
    fn obey_policy(&self, room: &RoomUri, content: &mut MimiContent) -> Result<(), Error> {
        let state = self.room_state(room)?;
        let is_status = matches!(&content.nested_part.body,
            mimi_content::PartBody::Single { content_type, .. }
                if content_type == mimi_content::status::MEDIA_TYPE);
        if let mimi_content::PartBody::Single {
            content_type,
            content: body,
        } = &content.nested_part.body
            && content_type == mimi_content::status::MEDIA_TYPE
            && let Ok(report) = mimi_content::status::MessageStatusReport::decode(body)
        {
            for s in &report.statuses {
                let kind = match s.status {
                    mimi_content::status::MessageStatus::READ => Receipt::Read,
                    mimi_content::status::MessageStatus::DELIVERED => Receipt::Delivery,
                    _ => continue,
                };
                receipt_allowed(state.policies.status.as_ref(), kind)
                    .map_err(|e| Error::Refused(e.to_string()))?;
            }
        }
        let now_s = u32::try_from(now_ms() / 1000).unwrap_or(u32::MAX);
        let requested = content.expires.map(|e| {
            if e.relative {
                e.time
            } else {
                e.time.saturating_sub(now_s)
            }
        });
        // An absolute expiry computed a moment ago may have lost a second since: accept it
        // when one more second is within the bounds.
        let d = expiry_for(state.policies.expiration.as_ref(), requested)
            .or_else(|e| match content.expires {
                Some(x) if !x.relative => {
                    expiry_for(state.policies.expiration.as_ref(), requested.map(|r| r + 1))
                        .map_err(|_| e)
                }
                _ => Err(e),
            })
            .map_err(|e| Error::Refused(e.to_string()))?;
        // Status reports are not messages people read: they get no default expiry.
        if content.expires.is_none()
            && !is_status
            && let Some(d) = d
        {
            content.expires = Some(mimi_content::Expiration {
                relative: false,
                time: now_s.saturating_add(d),
            });
        }
        Ok(())
    }

    /// Whether the room requires read receipts (`ROOM-policy-status`): then showing the
    /// history sends them (see [`Client::send_required_read_receipts`]).
    pub fn read_receipts_required(&self, room: &RoomUri) -> Result<bool, Error> {
        Ok(receipt_required(
            self.room_state(room)?.policies.status.as_ref(),
            Receipt::Read,
        ))
    }

    /// Sends read receipts for every message of others in `views` this user has not marked
    /// read yet, when the room requires read receipts (`ROOM-policy-status`). Returns how many.
    pub async fn send_required_read_receipts(
        &mut self,
        room: &RoomUri,
        views: &[MessageView],
    ) -> Result<usize, Error> {
        if !self.read_receipts_required(room)? {
            return Ok(0);
        }
        let me = self.user.to_string();
        let unread: Vec<mimi_content::MessageId> = views
            .iter()
            .filter(|m| m.sender != me && !m.deleted)
            .filter(|m| m.statuses.get(&me) != Some(&mimi_content::status::MessageStatus::READ))
            .map(|m| m.id)
            .collect();
        if unread.is_empty() {
            return Ok(0);
        }
        let report = mimi_content::status::MessageStatusReport {
            statuses: unread
                .iter()
                .map(|message_id| mimi_content::status::PerMessageStatus {
                    message_id: *message_id,
                    status: mimi_content::status::MessageStatus::READ,
                })
                .collect(),
        };
        let content = mimi_content::build::ContentBuilder::new(
            salt(),
            mimi_content::NestedPart::status_report(&report),
        )
        .build();
        self.send(room, content).await?;
        Ok(unread.len())
    }

    /// Changes the room's policy (`mimi room policy`): the edited components in one commit
    /// through the hub (`ROOM-policy-*`). Returns the new epoch.
    pub async fn set_policy(
        &mut self,
        room: &RoomUri,
        edit: &crate::policy::PolicyEdit,
    ) -> Result<u64, Error> {
        self.sync(0).await?;
        let (dev, r) = self.openmls_room(room, "changing the room's policy")?;
        let comps = edit
            .components(&r.state(dev)?, &dev.codepoints, &room.provider())
            .map_err(Error::Usage)?;
        let out = r.set_components(dev, comps)?;
        self.commit(room, out.bundle).await
    }

    /// Messages of a room whose frank is invalid, as `(message ID, reason)`
    /// (`PROTO-5.4.1-frank-flag`).
    pub async fn flagged(
        &self,
        room: &RoomUri,
    ) -> Result<Vec<(mimi_content::MessageId, String)>, Error> {
        Ok(self
            .store
            .flagged(room.as_str())
            .await?
            .into_iter()
            .map(|(id, why)| (mimi_content::MessageId(id), why))
            .collect())
    }

    /// Reports a message of this room's history to the hub as abusive (protocol-06 §5.9):
    /// its content, the hub's frank and the accepted time, so that the hub can verify the
    /// frank (`PROTO-5.9-report-frank`); `reason` goes in the note. Only a message whose frank
    /// verified here can be reported. Returns the reported message's ID.
    pub async fn report(
        &self,
        room: &RoomUri,
        id: &str,
        reason: &str,
    ) -> Result<mimi_content::MessageId, Error> {
        let (mid, _) = self.find_message(room, id).await?;
        let m = self
            .store
            .history(room.as_str())
            .await?
            .into_iter()
            .find(|m| m.id == mid.0)
            .ok_or_else(|| Error::Usage(format!("no message {mid} in {room}")))?;
        let f = self.store.frank(room.as_str(), &mid.0).await?;
        let frank = match f.as_ref().and_then(|f| f.frank.as_deref()) {
            Some(b) => {
                let mut r = mimi_wire::codec::Reader::new(b, mimi_wire::Limits::DEFAULT);
                let f = mimi_wire::common::Frank::read(&mut r)?;
                r.finish("Frank")?;
                f
            }
            None => {
                return Err(Error::Usage(format!(
                    "message {mid} has no frank from the hub, so it cannot be reported"
                )));
            }
        };
        let alleged = UserUri::parse(&m.sender)
            .map_err(|e| Error::Usage(format!("the stored sender {:?}: {e}", m.sender)))?;
        let report = AbuseReport {
            reporting_user: Some(self.user.clone()),
            alleged_abuser_uri: alleged,
            reason_code: 0,
            note: reason.to_owned(),
            messages: vec![AbusiveMessage {
                message_content: m.content,
                frank,
                accepted_timestamp: m.timestamp_ms,
            }],
            extensions: Default::default(),
        };
        self.report_raw(room, &report).await?;
        Ok(mid)
    }

    /// Sends an AbuseReport as it is (tests use it to send altered franks).
    pub async fn report_raw(&self, room: &RoomUri, report: &AbuseReport) -> Result<(), Error> {
        let r = self
            .api
            .request(
                Method::POST,
                &format!("reportAbuse/{}", enc(room.as_str())),
                Bytes::from(report.encode()),
            )
            .await?;
        json_of(&self.home, StatusCode::CREATED, &r)?;
        Ok(())
    }

    /// The content of a message in this device's history, by full ID or unique hex prefix.
    pub async fn find_message(
        &self,
        room: &RoomUri,
        id: &str,
    ) -> Result<(mimi_content::MessageId, MimiContent), Error> {
        let (mid, _, content) = self.find_stored(room, id).await?;
        Ok((mid, content))
    }

    /// [`Self::find_message`] with the sending user's provider domain (`None` when the stored
    /// sender is not a MIMI URI).
    pub async fn find_stored(
        &self,
        room: &RoomUri,
        id: &str,
    ) -> Result<(mimi_content::MessageId, Option<String>, MimiContent), Error> {
        let id = id.to_ascii_lowercase();
        let hits: Vec<StoredMessage> = self
            .store
            .history(room.as_str())
            .await?
            .into_iter()
            .filter(|m| hex::encode(m.id).starts_with(&id))
            .collect();
        match hits.as_slice() {
            [m] => Ok((
                mimi_content::MessageId(m.id),
                UserUri::parse(&m.sender)
                    .ok()
                    .map(|u| u.provider().to_string()),
                MimiContent::decode(&m.content)
                    .map_err(|e| Error::Usage(format!("stored message: {e}")))?,
            )),
            [] => Err(Error::Usage(format!(
                "no message {id} in {room} (`mimi history {room}` shows the IDs)"
            ))),
            _ => Err(Error::Usage(format!(
                "{id} is the start of several message IDs; give more of it"
            ))),
        }
    }

    /// This user's latest reaction `emoji` to `target` that is still standing: its ID and
    /// content (to retract it).
    pub async fn own_reaction(
        &self,
        room: &RoomUri,
        target: &mimi_content::MessageId,
        emoji: &str,
    ) -> Result<Option<(mimi_content::MessageId, MimiContent)>, Error> {
        let me = self.user.as_str();
        let mut found = None;
        let mut retracted = std::collections::HashSet::new();
        for m in self.store.history(room.as_str()).await? {
            if m.sender != me {
                continue;
            }
            let Ok(c) = MimiContent::decode(&m.content) else {
                continue;
            };
            if let Some(r) = c.replaces {
                retracted.insert(r.0);
                continue;
            }
            if c.in_reply_to.as_ref() == Some(target)
                && c.nested_part.disposition == mimi_content::Disposition::REACTION
                && c.nested_part.display_text().as_deref() == Some(emoji)
            {
                found = Some((mimi_content::MessageId(m.id), c));
            }
        }
        Ok(found.filter(|(id, _)| !retracted.contains(&id.0)))
    }

    /// Joins a room by external commit from the hub's GroupInfo (a new device of a
    /// participant, or, in a room whose role 0 holds canOpenJoin, a user who is not listed:
    /// it adds itself to the list with role 0's first target role).
    pub async fn join_external(&mut self, room: &RoomUri) -> Result<u64, Error> {
        self.join_by(room, Vec::new(), false).await
    }

    /// Joins a room with the code of one of its join links (`PROTO-5.6-joining-code`,
    /// room-policy-03 canUseJoinCode).
    pub async fn join_with_code(&mut self, room: &RoomUri, code: Vec<u8>) -> Result<u64, Error> {
        self.join_by(room, code, false).await
    }

    /// Resyncs a room whose state this device lost or cannot use any more: an external commit
    /// as the same client that removes its old leaf (protocol-06 §3.6, RFC 9420 §12.4.3.2;
    /// `ROOM-client-resync`). The local state of the room is replaced.
    pub async fn resync(&mut self, room: &RoomUri) -> Result<u64, Error> {
        self.join_by(room, Vec::new(), true).await
    }

    async fn join_by(&mut self, room: &RoomUri, code: Vec<u8>, resync: bool) -> Result<u64, Error> {
        if !resync && self.room_ref(room).is_ok() {
            return Err(Error::Usage(format!(
                "this device is already in {room}; use `mimi resync {room}` if its state is lost"
            )));
        }
        if self.mlsrs_rooms().is_some() {
            return self.join_by_mlsrs(room, code, resync).await;
        }
        let (dev, _) = self.openmls_rooms("joining by external commit")?;
        let pending = dev.group_info_request_with_code(code.clone())?;
        let resp = self.fetch_group_info(room, &pending.request).await?;
        let user = self.user.clone();
        let (dev, rooms) = self.openmls_rooms("joining by external commit")?;
        let (gi, tree, proposals) = match dev.open_group_info_with_pending(room, &pending, &resp) {
            Ok(x) => x,
            Err(mimi_room::client::ClientError::NotParticipant(why)) => {
                return Err(join_refused(&why, !code.is_empty()));
            }
            Err(e) => return Err(e.into()),
        };
        let state = group_info_state(&gi, &dev.codepoints)?;
        external_commits_allowed(&state)?;
        let list_add =
            mimi_room::policy::join_role(&state, &user).map_err(|d| Error::Refused(d.reason))?;
        if resync && let Some(old) = rooms.remove(room) {
            old.delete(dev)?;
        }
        let (mut r, out) = dev.join_external_by(
            room,
            &gi,
            &tree,
            list_add,
            &proposals,
            (!code.is_empty()).then_some(code.as_slice()),
        )?;
        let sent = self.submit_join(room, &out.bundle).await;
        let (dev, rooms) = self.openmls_rooms("joining by external commit")?;
        if let Err(e) = sent {
            r.delete(dev)?;
            self.save().await?;
            return Err(e);
        }
        r.merge(dev)?;
        let epoch = r.epoch();
        rooms.insert(room.clone(), r);
        self.save().await?;
        Ok(epoch)
    }

    /// [`Client::join_by`] on an mls-rs device (`INTEROP-cli-mlsrs`): an external commit
    /// without AppDataUpdate, so only as a new device of a user the room lists, or a resync
    /// as this same client; joining as a new participant or with a code is refused.
    async fn join_by_mlsrs(
        &mut self,
        room: &RoomUri,
        code: Vec<u8>,
        resync: bool,
    ) -> Result<u64, Error> {
        if !code.is_empty() {
            return Err(openmls_only("joining with a join link"));
        }
        let not_mlsrs = || Error::Usage("not an mls-rs device".into());
        let pending = self
            .mlsrs_rooms()
            .ok_or_else(not_mlsrs)?
            .0
            .group_info_request()?;
        let resp = self.fetch_group_info(room, &pending.request).await?;
        let user = self.user.clone();
        let (dev, rooms) = self.mlsrs_rooms().ok_or_else(not_mlsrs)?;
        let (gi, tree, proposals) = match dev.open_group_info(room, &pending, &resp) {
            Ok(x) => x,
            Err(mimi_room_mlsrs::device::DeviceError::Request(
                mimi_room::client::ClientError::NotParticipant(why),
            )) => return Err(join_refused(&why, false)),
            Err(e) => return Err(e.into()),
        };
        let state = group_info_state(&gi, &dev.codepoints)?;
        external_commits_allowed(&state)?;
        if mimi_room::policy::join_role(&state, &user)
            .map_err(|d| Error::Refused(d.reason))?
            .is_some()
        {
            return Err(openmls_only(&format!(
                "joining {room} as a new participant (it adds {user} to the participant list)"
            )));
        }
        if resync && rooms.remove(room).is_some() {
            dev.delete_room(room);
        }
        let (mut r, bundle) = dev.join_external(room, &gi, &tree, &proposals)?;
        if let Err(e) = self.submit_join(room, &bundle).await {
            self.save().await?;
            return Err(e);
        }
        r.save()?;
        let epoch = r.epoch();
        self.mlsrs_rooms()
            .ok_or_else(not_mlsrs)?
            .1
            .insert(room.clone(), r);
        self.save().await?;
        Ok(epoch)
    }

    /// Posts a GroupInfoRequest to the room's hub (protocol-06 §5.6) through this device's
    /// provider; the hub's answer, not yet opened.
    async fn fetch_group_info(
        &mut self,
        room: &RoomUri,
        request: &mimi_wire::group_info::GroupInfoRequest,
    ) -> Result<GroupInfoResponse, Error> {
        let b = self
            .post(
                &format!("groupInfo/{}", enc(room.as_str())),
                request.encode(),
            )
            .await?;
        Ok(GroupInfoResponse::decode(&b)?)
    }

    /// Submits an external commit; a refusal is [`Error::Refused`] with the hub's code.
    async fn submit_join(&mut self, room: &RoomUri, bundle: &HandshakeBundle) -> Result<(), Error> {
        let b = self
            .post(&format!("update/{}", enc(room.as_str())), bundle.encode())
            .await?;
        let resp = UpdateRoomResponse::decode(&b)?;
        if matches!(resp.outcome, UpdateOutcome::Success { .. }) {
            return Ok(());
        }
        Err(Error::Refused(format!(
            "the hub refused the join: {} {}",
            outcome_name(&resp.outcome),
            resp.error_description
        )))
    }
}

/// The hub refused the GroupInfo: say why, citing the draft.
fn join_refused(why: &str, with_code: bool) -> Error {
    Error::Refused(format!(
        "{why} (protocol-06 §5.6: the room's policy does not let this user join{})",
        if with_code {
            " with this code: it may be unknown, expired or used"
        } else {
            "; a join link's code may"
        }
    ))
}

/// `ROOM-policy-operational-external-commit` on the joiner's side: a room whose MLS
/// operational parameters forbid external commits is not joined (or resynced) by one; the
/// hub would refuse it.
fn external_commits_allowed(state: &mimi_room::state::RoomState) -> Result<(), Error> {
    if state
        .policies
        .operational
        .as_ref()
        .is_some_and(|p| !p.external_commit_allowed)
    {
        return Err(Error::Refused(
            "the room's MLS operational parameters do not allow external commits              (external_commit_allowed is false, room-policy-03 §7): a member has to add this              device or user"
                .into(),
        ));
    }
    Ok(())
}

/// The room state a GroupInfo's GroupContext carries.
fn group_info_state(
    gi: &mimi_wire::common::GroupInfoOption,
    codepoints: &mimi_room::codepoints::CodePoints,
) -> Result<mimi_room::state::RoomState, Error> {
    match gi {
        mimi_wire::common::GroupInfoOption::Full(g) => {
            mimi_room::mls::state_of(g.parse()?.group_context(), codepoints)
                .map_err(|e| Error::Refused(format!("the room state in the GroupInfo: {e}")))
        }
        _ => Err(Error::Refused("the hub sent a partial GroupInfo".into())),
    }
}

/// A join link's query key: a link is `<room URI>?join=<code>` (`PROTO-5.6-joining-code`).
pub const JOIN_LINK_KEY: &str = mimi_room::join_links::LINK_KEY;

/// Splits `mimi join`'s argument into the room and, for a join link, the joining code (the
/// link's bytes, as the room's JoinLinks list them).
pub fn parse_join_target(target: &str) -> Result<(RoomUri, Option<Vec<u8>>), Error> {
    let (room, code) = match target.split_once(JOIN_LINK_KEY) {
        Some((room, c)) if !c.is_empty() => (room, Some(target.as_bytes().to_vec())),
        Some(_) => {
            return Err(Error::Usage(format!(
                "{target:?}: the join link has no code after {JOIN_LINK_KEY}"
            )));
        }
        None => (target, None),
    };
    let room = RoomUri::parse(room).map_err(|e| {
        Error::Usage(format!(
            "{target:?} is neither a room URI nor a join link (mimi://a.example/r/name{JOIN_LINK_KEY}<code>): {e}"
        ))
    })?;
    Ok((room, code))
}

/// The draft's name of an update outcome.
pub fn outcome_name(o: &UpdateOutcome) -> String {
    match o {
        UpdateOutcome::Success { .. } => "success".into(),
        UpdateOutcome::WrongEpoch { current_epoch } => {
            format!("wrongEpoch (the hub is at epoch {current_epoch}; run `mimi sync` and retry)")
        }
        UpdateOutcome::NotAllowed => "notAllowed (the room's policy does not let you)".into(),
        UpdateOutcome::InvalidProposal { .. } => "invalidProposal".into(),
        other => format!("{other:?}"),
    }
}

/// What is kept of a frank check.
fn stored_frank(check: &FrankCheck, frank: Option<&mimi_wire::common::Frank>) -> StoredFrank {
    let encoded = |f: &mimi_wire::common::Frank| {
        let mut w = Writer::new();
        f.write(&mut w);
        w.finish()
    };
    match check {
        FrankCheck::Verified { frank, context } => StoredFrank {
            status: check.name().into(),
            reason: String::new(),
            frank: Some(encoded(frank)),
            context: Some(context.encode()),
        },
        FrankCheck::Unfranked => StoredFrank {
            status: check.name().into(),
            reason: String::new(),
            frank: None,
            context: None,
        },
        FrankCheck::Invalid(why) => StoredFrank {
            status: check.name().into(),
            reason: why.clone(),
            frank: frank.map(encoded),
            context: None,
        },
    }
}

fn json_of(node: &str, want: StatusCode, r: &Response) -> Result<serde_json::Value, Error> {
    if r.status != want {
        return Err(Error::Node {
            node: node.to_owned(),
            status: r.status,
            reason: r.text(),
        });
    }
    serde_json::from_slice(&r.body).map_err(|e| Error::Node {
        node: node.to_owned(),
        status: r.status,
        reason: format!("the answer is not JSON: {e}"),
    })
}

fn enc(s: &str) -> String {
    mimi_net::paths::percent_encode(s)
}

/// The bundle type is re-exported for callers that build their own commits.
pub type Bundle = HandshakeBundle;

/// The hub (openmls) accepted every item it fans out, so an MLSMessage mls-rs cannot even
/// decode is, in our rooms, a commit with an AppDataUpdate (INTEROP-cli-mlsrs): say so.
fn undecodable_on_mlsrs(e: mimi_room_mlsrs::device::DeviceError) -> Error {
    match e {
        mimi_room_mlsrs::device::DeviceError::Mls {
            step: "decode message",
            error,
        } => Error::Usage(format!(
            "this mls-rs device cannot decode a commit the hub accepted ({error}): mls-rs 0.57 \
             frames AppDataUpdate proposals (users added or removed, roles, policy) differently \
             from openmls, so this device stays at its epoch; see spec-notes/interop.md"
        )),
        e => e.into(),
    }
}

/// A profile's local settings (`CLIENT-local-rules`), kept in the device store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Send delivery receipts after a sync (on unless turned off; a room may require or
    /// forbid them).
    DeliveryReceipts,
    /// Refuse to send into a room whose logging is active (off unless turned on).
    RefuseLoggedRooms,
    /// Refuse to send into a room whose bot policy lets a bot message members one by one or
    /// send each different content (off unless turned on).
    RefuseTargetingBots,
}

impl Setting {
    /// Every setting.
    pub const ALL: [Setting; 3] = [
        Setting::DeliveryReceipts,
        Setting::RefuseLoggedRooms,
        Setting::RefuseTargetingBots,
    ];

    /// Its name in the store and in `mimi settings`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::DeliveryReceipts => "delivery_receipts",
            Setting::RefuseLoggedRooms => "refuse_logged_rooms",
            Setting::RefuseTargetingBots => "refuse_targeting_bots",
        }
    }

    fn default_on(self) -> bool {
        self == Setting::DeliveryReceipts
    }
}
