//! The node's protocol services over its store (`PROTO-*`): the hub side of update and
//! submitMessage, and the follower side of notify. Each hub request runs in the room's
//! serialised transaction: load the room, decide with mimi-room, then write the accepted event,
//! the outbox rows for every follower provider and the local clients' queue rows, and commit
//! before answering (persist before acknowledge).

use bytes::Bytes;
use http::{HeaderMap, Method};
use mimi_net::client::Connector;
use mimi_net::paths::{self, Endpoint};
use mimi_proto::clock::next_timestamp;
use mimi_proto::inbox::{InboxLimits, InboxState, accept};
use mimi_room::franking::make_frank;
use mimi_room::hub::{HubRoom, SubmitRejection, UpdateRejection};
use mimi_room::roster::{Roster, commit_epoch};
use mimi_store::{RoomRow, RoomTx, Store, StoreError};
use mimi_wire::codec::Body;
use mimi_wire::common::Frank;
use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage, split_notify};
use mimi_wire::franking::{FrankAad, frank_aad_of};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri};
use mimi_wire::mls_kind::private_authenticated_data;
use mimi_wire::submit::ServerFrankingContext;
use mimi_wire::submit::{SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use mimi_wire::{Limits, WireError};
use openmls::prelude::MlsMessageBodyIn;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{BasicCredential, ExternalSender};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::SignatureScheme;
use sha2::Digest as _;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Why a request could not be served (each maps to an HTTP status with a reason).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The body is not the draft's struct (400).
    #[error("malformed body: {0}")]
    Malformed(#[from] WireError),
    /// No such room here (404).
    #[error("no room {0} is hosted here")]
    NoRoom(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The room already exists (409).
    #[error("room {0} exists already")]
    RoomExists(String),
    /// The room's stored state cannot be used (500, our side).
    #[error("room state: {0}")]
    RoomState(String),
    /// Storage failed (503, retry).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No such user or client here (404).
    #[error("{0}")]
    NotFound(String),
    /// The caller is not authenticated (401).
    #[error("{0}")]
    Unauthorized(String),
    /// It exists already (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but unusable (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not now: the caller should retry later (503 with Retry-After).
    #[error("{0}")]
    Busy(String),
    /// Another provider (the hub, the target) could not be reached or answered an error (502).
    #[error("{0}")]
    Upstream(String),
    /// The body is larger than this node takes (413).
    #[error("{0}")]
    TooLarge(String),
    /// The request must say how large its body is (411).
    #[error("{0}")]
    LengthRequired(String),
    /// The body's media type is not taken here (415).
    #[error("{0}")]
    UnsupportedMedia(String),
    /// A mechanism this node does not implement (501).
    #[error("{0}")]
    NotImplemented(String),
}

/// Settings of a node's services.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Anyone may register a new user through the client API (`CAPI-register`; on for local
    /// federations).
    pub open_registration: bool,
    /// Deliberate faults (conformance testing only).
    pub faults: crate::config::Faults,
    /// Attachments (`PROTO-5.10-*`): where blobs are kept, the largest upload.
    pub assets: crate::assets::AssetOptions,
    /// Hosted rooms kept decoded (`[hub] cache_rooms`, `PROTO-hub-cache`).
    pub hub_cache_rooms: usize,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            open_registration: true,
            faults: Default::default(),
            assets: Default::default(),
            hub_cache_rooms: 512,
        }
    }
}

/// One provider's protocol services.
#[derive(Clone)]
pub struct Node {
    /// This provider.
    pub domain: ProviderId,
    /// Its database.
    pub store: Store,
    /// Decoding limits.
    pub limits: Limits,
    /// The hub's MLS signature key (the rooms' ExternalSender, GroupInfo responses), shared
    /// by every process of the provider through the database.
    pub hub_key: Arc<SignatureKeyPair>,
    /// The hub's symmetric franking key (`PROTO-5.4.1-frank-key`: the HMAC key of every
    /// `server_frank`), created once and shared by every process through the database. Never
    /// leaves the node.
    franking_key: Arc<[u8; 32]>,
    /// The hub's franking signature key (`PROTO-5.4.1-frank-agent-key`): signs the
    /// FrankingIntegrityTBS of rooms whose `franking_agent` names it; not the MLS key, so that
    /// the one cannot stand in for the other. Created once, shared through the database.
    franking_signer: Arc<SignatureKeyPair>,
    /// The hub's OHTTP gateway key (`PROTO-5.10-ohttp`), derived from a secret created once
    /// and shared by every process through the database.
    pub(crate) ohttp_key: Arc<mimi_net::ohttp::GatewayKey>,
    /// Connections to other providers (forwarding to hubs and targets); `None`: this node
    /// cannot reach others (502 when it would have to).
    pub peers: Option<Arc<Connector>>,
    /// Settings.
    pub options: NodeOptions,
    /// Woken when outbox work was committed, so that the worker sends it at once: the
    /// store's (`STORE-wake`), which on PostgreSQL other processes of this provider wake too.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// Rooms kept decoded between requests, with the state version they were decoded at
    /// (`PROTO-hub-cache`): a request whose room row still has that version skips reading and
    /// restoring the room. Every write of the state (by this process or another on the same
    /// database) raises the version, so a stale entry is never used.
    hubs: HubCache,
    /// Node events for the admin listener's live view (accepted messages and commits, fanout
    /// outcomes, outbox depth).
    pub events: crate::events::Events,
}

/// Decoded rooms by room URI, with the state version they were decoded at and when they were
/// last given back (a use counter), and the counter.
type HubCache = Arc<std::sync::Mutex<(HashMap<String, (u64, u64, HubRoom)>, u64)>>;

/// The name of the hub key in the store's secrets.
const HUB_KEY: &str = "hub-signature-key-ed25519";
/// The name of the hub's franking HMAC key in the store's secrets.
const FRANKING_KEY: &str = "hub-franking-key-hmac-sha256";
/// The name of the secret the OHTTP gateway key is derived from.
const OHTTP_SEED: &str = "hub-ohttp-gateway-seed";
/// The name of the hub's franking signature key in the store's secrets.
const FRANKING_SIGNER: &str = "hub-franking-signature-key-ed25519";

/// An Ed25519 key pair kept in the store's secrets under `name`, created on first use (the
/// same key for every process of the provider).
async fn stored_key_pair(
    store: &Store,
    name: &str,
    what: &str,
    now_ms: u64,
) -> Result<SignatureKeyPair, NodeError> {
    let fresh = SignatureKeyPair::new(SignatureScheme::ED25519)
        .map_err(|e| NodeError::RoomState(format!("creating the {what}: {e:?}")))?
        .tls_serialize_detached()
        .map_err(|e| NodeError::RoomState(format!("encoding the {what}: {e}")))?;
    let stored = store.secret_or_insert(name, &fresh, now_ms).await?;
    SignatureKeyPair::tls_deserialize_exact(stored.as_slice())
        .map_err(|e| NodeError::RoomState(format!("the stored {what} does not decode: {e}")))
}

impl Node {
    /// A node's services over `store`: loads the hub key (creating it on first use).
    pub async fn open(
        domain: ProviderId,
        store: Store,
        options: NodeOptions,
        now_ms: u64,
    ) -> Result<Self, NodeError> {
        let hub_key = stored_key_pair(&store, HUB_KEY, "hub key", now_ms).await?;
        let franking_signer =
            stored_key_pair(&store, FRANKING_SIGNER, "franking signature key", now_ms).await?;
        // PROTO-5.4.1-frank-key: created once, like the hub key, so that a report to any
        // process of this provider verifies franks made by another.
        let mut fresh = [0u8; 32];
        getrandom::getrandom(&mut fresh)
            .map_err(|e| NodeError::RoomState(format!("creating the franking key: {e}")))?;
        let stored = store.secret_or_insert(FRANKING_KEY, &fresh, now_ms).await?;
        let franking_key: [u8; 32] = stored.as_slice().try_into().map_err(|_| {
            NodeError::RoomState(format!(
                "the stored franking key has {} octets, not 32",
                stored.len()
            ))
        })?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| NodeError::RoomState(format!("creating the OHTTP key: {e}")))?;
        let seed = store.secret_or_insert(OHTTP_SEED, &seed, now_ms).await?;
        let ohttp_key = mimi_net::ohttp::GatewayKey::derive(1, &seed)
            .map_err(|e| NodeError::RoomState(format!("the OHTTP gateway key: {e}")))?;
        let outbox_wake = store.outbox_wake();
        Ok(Self {
            domain,
            store,
            limits: Limits::DEFAULT,
            hub_key: Arc::new(hub_key),
            franking_key: Arc::new(franking_key),
            franking_signer: Arc::new(franking_signer),
            ohttp_key: Arc::new(ohttp_key),
            peers: None,
            options,
            outbox_wake,
            hubs: Arc::default(),
            events: crate::events::Events::new(),
        })
    }

    /// The decoded room at `version` from the cache, if it holds that version.
    fn cached_hub(&self, room: &str, version: u64) -> Option<HubRoom> {
        let mut c = self.hubs.lock().ok()?;
        match c.0.remove(room) {
            Some((v, _, hub)) if v == version => Some(hub),
            _ => None,
        }
    }

    /// The hosted room of a room transaction: from the cache when it holds the stored
    /// version, else read through the transaction and restored.
    pub(crate) async fn hub_in_tx(&self, tx: &mut RoomTx) -> Result<HubRoom, NodeError> {
        let room = tx.room().room_uri.clone();
        if let Some(hub) = self.cached_hub(&room, tx.room().state_version) {
            return Ok(hub);
        }
        let s = tx.state().await?;
        HubRoom::restore_from(&s.head, s.entries).map_err(|e| NodeError::RoomState(e.to_string()))
    }

    /// A hosted room for reading, given its row (not locked), with the state version it is
    /// at: from the cache, else read and restored. Give it back with [`Node::put_hub`].
    pub(crate) async fn hub_of_row(&self, row: &RoomRow) -> Result<(u64, HubRoom), NodeError> {
        if let Some(hub) = self.cached_hub(&row.room_uri, row.state_version) {
            return Ok((row.state_version, hub));
        }
        // Head and entries are read together, with the version they are at (it may be newer
        // than the row's).
        let s = self
            .store
            .room_state(&row.room_uri)
            .await?
            .ok_or_else(|| NodeError::NoRoom(row.room_uri.clone()))?;
        let hub = HubRoom::restore_from(&s.head, s.entries)
            .map_err(|e| NodeError::RoomState(e.to_string()))?;
        Ok((s.version, hub))
    }

    /// Reads and decodes a hosted room into this node's cache (a node that has just started
    /// does this at the first request to the room; an operator or a benchmark may do it
    /// ahead).
    pub async fn warm_room(&self, room: &RoomUri) -> Result<(), NodeError> {
        let row = self
            .store
            .room(room.as_str())
            .await?
            .filter(|r| r.hub == self.domain.as_str())
            .ok_or_else(|| NodeError::NoRoom(room.to_string()))?;
        let (version, hub) = self.hub_of_row(&row).await?;
        self.put_hub(room.as_str(), version, hub);
        Ok(())
    }

    /// Keeps a decoded room for the next request, as of the stored state `version`.
    /// At most `[hub] cache_rooms` rooms are kept: the least recently given back goes.
    pub(crate) fn put_hub(&self, room: &str, version: u64, hub: HubRoom) {
        if let Ok(mut g) = self.hubs.lock() {
            let (c, clock) = &mut *g;
            *clock += 1;
            let now = *clock;
            let cap = self.options.hub_cache_rooms.max(1);
            while c.len() >= cap && !c.contains_key(room) {
                let Some(oldest) = c
                    .iter()
                    .min_by_key(|(_, (_, used, _))| *used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                c.remove(&oldest);
            }
            c.insert(room.to_owned(), (version, now, hub));
        }
    }

    /// How many hosted rooms this node keeps decoded now (`[hub] cache_rooms` at most).
    pub fn cached_rooms(&self) -> usize {
        self.hubs.lock().map_or(0, |g| g.0.len())
    }

    /// The providers with clients in a hosted room, from its stored state (through the cache).
    pub(crate) async fn room_providers(
        &self,
        row: &RoomRow,
    ) -> Result<BTreeSet<ProviderId>, NodeError> {
        let (version, hub) = self.hub_of_row(row).await?;
        let providers = hub.providers();
        self.put_hub(&row.room_uri, version, hub);
        Ok(providers)
    }

    /// The §6 policy components of a hosted room, from its stored state (through the cache).
    pub(crate) async fn room_policies(
        &self,
        row: &RoomRow,
    ) -> Result<mimi_room::room_policy::PolicyComponents, NodeError> {
        let (version, hub) = self.hub_of_row(row).await?;
        let policies = hub.room_state().policies.clone();
        self.put_hub(&row.room_uri, version, hub);
        Ok(policies)
    }

    /// The same node, able to call other providers through `peers`.
    pub fn with_peers(mut self, peers: Arc<Connector>) -> Self {
        self.peers = Some(peers);
        self
    }

    /// The hub's ExternalSender (signature key and credential `mimi://<domain>`), which a room
    /// created here must list (DESIGN.md: the hub sends external proposals).
    pub fn hub_sender(&self) -> ExternalSender {
        ExternalSender::new(
            self.hub_key.to_public_vec().into(),
            BasicCredential::new(format!("mimi://{}", self.domain).into_bytes()).into(),
        )
    }

    /// The franking agent a room created here names (`PROTO-5.4.1-frank-agent-key`): the
    /// hub's franking signature key with the hub's credential `mimi://<domain>`.
    pub fn franking_agent(&self) -> Result<mimi_wire::franking::FrankingAgentData, NodeError> {
        mimi_room::franking::agent_of(&ExternalSender::new(
            self.franking_signer.to_public_vec().into(),
            BasicCredential::new(format!("mimi://{}", self.domain).into_bytes()).into(),
        ))
        .map_err(|e| NodeError::RoomState(e.to_string()))
    }

    /// POSTs `body` to `endpoint/{id}` of provider `to` and returns its answer, whatever its
    /// status; a provider that cannot be reached is [`NodeError::Upstream`].
    async fn post(
        &self,
        to: &ProviderId,
        endpoint: Endpoint,
        id: &str,
        body: Vec<u8>,
    ) -> Result<mimi_net::Response, NodeError> {
        let Some(peers) = &self.peers else {
            return Err(NodeError::Upstream(format!(
                "this node has no connections to other providers; cannot reach {to}"
            )));
        };
        peers
            .request(
                to.as_str(),
                Method::POST,
                &paths::path(endpoint, id),
                HeaderMap::new(),
                Bytes::from(body),
            )
            .await
            .map_err(|e| NodeError::Upstream(format!("{to} {}: {e}", endpoint.name())))
    }

    /// [`Node::call`] for a request relayed for a local client: the peer's refusals 400, 403
    /// and 404 are passed on as the same statuses with the peer's reason (so a device learns
    /// why the hub said no); other failures are 502 as in [`Node::call`].
    pub async fn relay(
        &self,
        to: &ProviderId,
        endpoint: Endpoint,
        id: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, NodeError> {
        let resp = self.post(to, endpoint, id, body).await?;
        let reason = || format!("{to} refused {}: {}", endpoint.name(), resp.text());
        match resp.status.as_u16() {
            200..=299 => Ok(resp.body.clone()),
            400 => Err(NodeError::BadRequest(reason())),
            403 => Err(NodeError::Forbidden(reason())),
            404 => Err(NodeError::NotFound(reason())),
            _ => Err(NodeError::Upstream(format!(
                "{to} answered {} {}: {}",
                endpoint.name(),
                resp.status,
                resp.text()
            ))),
        }
    }

    /// The hub's frank of an accepted application message (`PROTO-5.4.1-frank-hub`), or
    /// `None` when the message carries no `frank_aad` (franking is optional; our devices always
    /// send one). Deterministic (HMAC, Ed25519), so a repeated submit gets the same frank.
    fn frank(
        &self,
        req: &SubmitMessageRequest,
        room: &RoomUri,
        agent_key: Option<Vec<u8>>,
        accepted_timestamp: u64,
    ) -> Result<Option<Frank>, NodeError> {
        let Some(aad) = frank_aad_in(req)? else {
            return Ok(None);
        };
        let context = ServerFrankingContext {
            sender_uri: req.sending_uri.clone(),
            room_uri: room.clone(),
            accepted_timestamp,
        };
        if self.options.faults.frank_wrong_key {
            let other = SignatureKeyPair::new(SignatureScheme::ED25519)
                .map_err(|e| NodeError::RoomState(format!("{e:?}")))?;
            return make_frank(&self.franking_key[..], &other, &aad, &context)
                .map(Some)
                .map_err(|e| NodeError::RoomState(e.to_string()));
        }
        // PROTO-5.4.1-frank-agent-key: sign with the key the room names. Rooms created
        // before the hub had a franking key of its own (or by clients that only know the
        // ExternalSender) name the hub's MLS key.
        let hub_public = self.hub_key.to_public_vec();
        let signer: &SignatureKeyPair = if agent_key.as_deref() == Some(hub_public.as_slice()) {
            &self.hub_key
        } else {
            &self.franking_signer
        };
        make_frank(&self.franking_key[..], signer, &aad, &context)
            .map(Some)
            .map_err(|e| NodeError::RoomState(e.to_string()))
    }

    /// The hub's check of reported messages (`PROTO-5.9-report-frank`).
    pub(crate) fn check_reported(
        &self,
        room: &RoomUri,
        alleged_abuser: &mimi_wire::id::UserUri,
        m: &mimi_wire::abuse::AbusiveMessage,
    ) -> Result<ServerFrankingContext, mimi_room::franking::FrankError> {
        mimi_room::franking::check_reported(
            &openmls_rust_crypto::RustCrypto::default(),
            &self.franking_key[..],
            &[
                &self.franking_signer.to_public_vec(),
                &self.hub_key.to_public_vec(),
            ],
            room,
            alleged_abuser,
            m,
        )
    }

    /// Calls `endpoint/{id}` on provider `to` with `body` and returns its answer when it is a
    /// success; anything else is [`NodeError::Upstream`] naming the provider and its status.
    pub async fn call(
        &self,
        to: &ProviderId,
        endpoint: Endpoint,
        id: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, NodeError> {
        let resp = self.post(to, endpoint, id, body).await?;
        if !resp.status.is_success() {
            return Err(NodeError::Upstream(format!(
                "{to} answered {} {}: {}",
                endpoint.name(),
                resp.status,
                resp.text()
            )));
        }
        Ok(resp.body)
    }
}

/// The FrankAAD in a submitted PrivateMessage's Safe AAD, if any.
fn frank_aad_in(req: &SubmitMessageRequest) -> Result<Option<FrankAad>, NodeError> {
    let aad = private_authenticated_data(&req.app_message)?.unwrap_or_default();
    Ok(frank_aad_of(&aad)?)
}

/// What [`Node::prune`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Follower streams whose undelivered head was dropped: (follower, room, the number the
    /// stream resumes at). A row in flight to a follower that is up may be among them; the
    /// follower, already past it, ignores the resume.
    pub streams_cut: Vec<(String, String, u64)>,
    /// Room events deleted.
    pub events: u64,
    /// Notify item hashes forgotten.
    pub seen: u64,
}

/// What the hub answers an update with.
pub struct UpdateAnswer {
    /// The draft's response.
    pub response: UpdateRoomResponse,
}

/// Whether an MLSMessage is a PublicMessage from an external sender (RFC 9420 §6: sender type
/// `external` = 2), for the fault `follower_drops_hub_proposals`.
fn is_external_proposal(message: &[u8]) -> bool {
    let mut r = mimi_wire::codec::Reader::new(message, mimi_wire::Limits::DEFAULT);
    let f = "MLSMessage";
    (|| -> Result<bool, mimi_wire::WireError> {
        let _version = r.u16(f)?;
        if r.u16(f)? != 1 {
            return Ok(false);
        }
        let _group = r.opaque(usize::MAX, f)?;
        let _epoch = r.u64(f)?;
        Ok(r.u8(f)? == 2)
    })()
    .unwrap_or(false)
}

fn fanout_of(bundle: &HandshakeBundle, ts: u64) -> FanoutMessage {
    match bundle {
        HandshakeBundle::Commit { commit, .. } => FanoutMessage {
            timestamp: ts,
            message: commit.clone(),
            extra: FanoutExtra::Commit(Vec::new()),
        },
        HandshakeBundle::Proposal {
            proposal,
            more_proposals,
        } => FanoutMessage {
            timestamp: ts,
            message: proposal.clone(),
            extra: FanoutExtra::Proposal(more_proposals.clone()),
        },
    }
}

impl Node {
    /// Hosts a new room from its creator's GroupInfo and tree (client API; the creator is a
    /// local client).
    pub async fn create_room(
        &self,
        room: &RoomUri,
        creator: &ClientUri,
        gi: &GroupInfoOption,
        tree: &RatchetTreeOption,
    ) -> Result<u64, NodeError> {
        if room.provider() != self.domain {
            return Err(NodeError::Forbidden(format!(
                "{room} is not a room of {}",
                self.domain
            )));
        }
        if creator.provider() != self.domain {
            return Err(NodeError::Forbidden(format!(
                "{creator} is not a client of {}",
                self.domain
            )));
        }
        let hub = HubRoom::bootstrap(room.clone(), gi, tree)
            .map_err(|e| NodeError::Forbidden(format!("cannot host this group: {e}")))?;
        if !hub.clients().contains(creator) {
            return Err(NodeError::Forbidden(format!(
                "{creator} is not in the group it asks to host"
            )));
        }
        match self
            .store
            .create_room(
                room.as_str(),
                self.domain.as_str(),
                &hub.snapshot(),
                hub.epoch(),
            )
            .await
        {
            Err(StoreError::Conflict(_)) => return Err(NodeError::RoomExists(room.to_string())),
            r => r?,
        }
        self.store
            .add_member(room.as_str(), creator.as_str())
            .await?;
        Ok(hub.epoch())
    }

    /// The hub's update endpoint (protocol-06 §5.3). `now_ms` is the wall clock.
    pub async fn hub_update(
        &self,
        room: &RoomUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<UpdateRoomResponse, NodeError> {
        let bundle = HandshakeBundle::decode_with(body, self.limits)?;
        let mut tx = match self.store.begin_room(room.as_str()).await {
            Err(StoreError::NotFound(_)) => return Err(NodeError::NoRoom(room.to_string())),
            r => r?,
        };
        if tx.room().hub != self.domain.as_str() {
            return Err(NodeError::NoRoom(room.to_string()));
        }
        let old_version = tx.room().state_version;
        let mut hub = self.hub_in_tx(&mut tx).await?;
        hub.fault_join_link_reuse = self.options.faults.join_link_reuse;
        hub.fault_external_commit_removes_any_leaf =
            self.options.faults.external_commit_removes_any_leaf;
        hub.fault_operational_ignored = self.options.faults.operational_policy_ignored;
        // PROTO-5.6-requester (protocol-06 §7.7 step 3): an external commit comes from a
        // client the hub gave the GroupInfo to.
        if let HandshakeBundle::Commit { commit, .. } = &bundle
            && let Some((joiner, key)) =
                mimi_room::roster::external_committer_key(commit.as_bytes())
            && !hub.has_join_grant(&joiner, &key, now_ms)
            && !(self.options.faults.external_commit_any_key
                && hub.has_join_grant_any_key(&joiner, now_ms))
            && !self.options.faults.external_commit_any_requester
        {
            self.put_hub(room.as_str(), old_version, hub);
            return Ok(UpdateRejection::NotAllowed(format!(
                "{joiner} did not ask this hub for the GroupInfo with the signature key of its new leaf (or asked more than 10 minutes ago): an external commit follows the joiner's groupInfo request, signed with that key (draft-ietf-mimi-protocol-06 §5.6, §7.7)"
            ))
            .response());
        }
        if self.options.faults.resync_refused
            && let HandshakeBundle::Commit { commit, .. } = &bundle
            && let Some(joiner) = mimi_room::roster::external_committer(commit.as_bytes())
            && hub.clients().contains(&joiner)
        {
            self.put_hub(room.as_str(), old_version, hub);
            return Ok(UpdateRejection::NotAllowed(
                "fault injected: a resync is refused ([faults] resync_refused)".into(),
            )
            .response());
        }
        let providers_before: BTreeSet<ProviderId> = hub.providers();
        let mut accepted = match hub.handle_update_at(&bundle, now_ms) {
            Ok(a) => a,
            // Refused: nothing is written (the transaction is dropped); the room is unchanged.
            Err(rejection) => {
                self.put_hub(room.as_str(), old_version, hub);
                return Ok(rejection.response());
            }
        };
        HubRoom::welcome_of(&bundle, &mut accepted)
            .map_err(|e| NodeError::RoomState(e.to_string()))?;
        let ts = next_timestamp(Some(tx.room().last_ts_ms).filter(|t| *t > 0), now_ms);
        let mut fanout = fanout_of(&bundle, ts);
        // ROOM-hub-regenerate: hub removals the external commit invalidated are proposed
        // again for the new epoch and stapled to the commit (protocol-06 §7.7 step 4).
        if let FanoutExtra::Commit(stapled) = &mut fanout.extra {
            for c in &accepted.invalidated_hub_removals {
                match hub.propose_remove(c, &*self.hub_key, 0) {
                    Ok(p) => stapled.push(p),
                    Err(e) => {
                        tracing::warn!(%room, client = %c, error = %e, "cannot propose the removal again")
                    }
                }
            }
        }
        let item = fanout.encode();
        let seq = tx.append_event(ts, &item).await?;
        // PROTO-fanout: every other provider with clients before or after the handshake.
        let mut providers: BTreeSet<ProviderId> = accepted.providers.clone();
        providers.extend(providers_before);
        let followers: Vec<&str> = providers
            .iter()
            .filter(|p| **p != self.domain)
            .map(ProviderId::as_str)
            .collect();
        tx.enqueue_outbox_many(&followers, seq, &item, now_ms)
            .await?;
        // Local clients of the room get it in their queues.
        for c in self.store_members_local(&hub, &accepted.added) {
            tx.enqueue_client(c.as_str(), &item, now_ms).await?;
        }
        // The Welcome: to the providers of the added clients; local ones straight to their queues.
        if let (Some((welcome, targets)), HandshakeBundle::Commit { ratchet_tree, .. }) =
            (&accepted.welcome, &bundle)
        {
            let w = FanoutMessage {
                timestamp: ts,
                message: welcome.clone(),
                extra: FanoutExtra::Welcome(ratchet_tree.clone()),
            }
            .encode();
            for p in targets {
                if *p != self.domain {
                    tx.enqueue_outbox(p.as_str(), seq, &w, now_ms).await?;
                }
            }
            for c in accepted
                .added
                .iter()
                .filter(|c| c.provider() == self.domain)
            {
                tx.enqueue_client(c.as_str(), &w, now_ms).await?;
            }
        }
        // ROOM-hub-entries: the head and only the entries the commit changed.
        let persist = hub.persist();
        tx.persist_state(persist.head, persist.changes, hub.epoch());
        let row = tx.commit().await?;
        self.put_hub(room.as_str(), row.state_version, hub);
        self.outbox_wake.notify_one();
        if matches!(bundle, HandshakeBundle::Commit { .. }) {
            self.events.emit(crate::events::NodeEvent::CommitAccepted {
                room: room.to_string(),
                epoch: row.epoch,
                accepted_ms: ts,
            });
        }
        for c in accepted
            .added
            .iter()
            .filter(|c| c.provider() == self.domain)
        {
            self.store.add_member(room.as_str(), c.as_str()).await?;
        }
        // A local device that joined by external commit is a member on this node's records
        // too (`GET rooms`, `devices/remove`).
        if let HandshakeBundle::Commit { commit, .. } = &bundle
            && let Some(joiner) = mimi_room::roster::external_committer(commit.as_bytes())
            && joiner.provider() == self.domain
        {
            self.store
                .add_member(room.as_str(), joiner.as_str())
                .await?;
        }
        for c in accepted
            .removed
            .iter()
            .filter(|c| c.provider() == self.domain)
        {
            self.store.remove_member(room.as_str(), c.as_str()).await?;
        }
        Ok(UpdateRoomResponse {
            error_description: String::new(),
            outcome: UpdateOutcome::Success {
                accepted_timestamp: ts,
            },
        })
    }

    /// `PROTO-hub-removal`: the hub proposes the removal of `client` from `room` as the
    /// room's external sender (protocol-06 §3: the hub may send external proposals; a member
    /// commits them: the queued proposal must be in the next commit, `ROOM-hub-queued`) and
    /// fans the proposal out like a member's. For a device its provider deleted (this node
    /// hosts the room).
    pub async fn hub_propose_removal(
        &self,
        room: &RoomUri,
        client: &ClientUri,
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let mut tx = match self.store.begin_room(room.as_str()).await {
            Err(StoreError::NotFound(_)) => return Err(NodeError::NoRoom(room.to_string())),
            r => r?,
        };
        if tx.room().hub != self.domain.as_str() {
            return Err(NodeError::NoRoom(room.to_string()));
        }
        let old_version = tx.room().state_version;
        let mut hub = self.hub_in_tx(&mut tx).await?;
        if !hub.clients().contains(client) {
            self.put_hub(room.as_str(), old_version, hub);
            return Err(NodeError::NotFound(format!("{client} is not in {room}")));
        }
        let proposal = match hub.propose_remove(client, &*self.hub_key, 0) {
            Ok(p) => p,
            Err(e) => {
                // The cached room may hold the half-made proposal: drop it, restore later.
                return Err(NodeError::RoomState(format!(
                    "cannot propose the removal of {client}: {e}"
                )));
            }
        };
        let ts = next_timestamp(Some(tx.room().last_ts_ms).filter(|t| *t > 0), now_ms);
        let item = FanoutMessage {
            timestamp: ts,
            message: proposal,
            extra: FanoutExtra::Proposal(Vec::new()),
        }
        .encode();
        let seq = tx.append_event(ts, &item).await?;
        let providers = hub.providers();
        let followers: Vec<&str> = providers
            .iter()
            .filter(|p| **p != self.domain)
            .map(ProviderId::as_str)
            .collect();
        tx.enqueue_outbox_many(&followers, seq, &item, now_ms)
            .await?;
        for c in self.store_members_local(&hub, &[]) {
            if c != *client {
                tx.enqueue_client(c.as_str(), &item, now_ms).await?;
            }
        }
        let persist = hub.persist();
        tx.persist_state(persist.head, persist.changes, hub.epoch());
        let row = tx.commit().await?;
        self.put_hub(room.as_str(), row.state_version, hub);
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Retention (`STORE-retention`, node.toml `[retention]`): drops the undelivered notifies of
    /// followers that stayed away longer than `outbox_s` (their streams resume after them, and
    /// the next notify tells the follower so), then the event log older than `room_events_s`
    /// and the notify item hashes older than `inbox_seen_s`. Returns what went.
    pub async fn prune(
        &self,
        now_ms: u64,
        r: &crate::config::Retention,
    ) -> Result<PruneReport, NodeError> {
        let ago = |s: u64| now_ms.saturating_sub(s.saturating_mul(1000));
        let cut = self.store.expire_outbox(ago(r.outbox_s)).await?;
        for (follower, room, resume) in &cut {
            tracing::warn!(%follower, %room, resume, "outbox retention: the follower missed notifies; it resumes at {resume} and its devices resync");
        }
        let events = self.store.prune_room_events(ago(r.room_events_s)).await?;
        let seen = self.store.prune_inbox_seen(ago(r.inbox_seen_s)).await?;
        Ok(PruneReport {
            streams_cut: cut,
            events,
            seen,
        })
    }

    /// Local clients in the group now, except those just added (they get the Welcome).
    fn store_members_local(&self, hub: &HubRoom, added: &[ClientUri]) -> Vec<ClientUri> {
        hub.clients()
            .into_iter()
            .filter(|c| c.provider() == self.domain && !added.contains(c))
            .collect()
    }

    /// The hub's submitMessage endpoint (protocol-06 §5.4). `from` is the calling provider
    /// (or this one for local clients): the sender must be one of its users.
    pub async fn hub_submit(
        &self,
        room: &RoomUri,
        from: &ProviderId,
        body: &[u8],
        now_ms: u64,
    ) -> Result<SubmitMessageResponse, NodeError> {
        let req = SubmitMessageRequest::decode_with(body, self.limits)?;
        if req.sending_uri.provider() != *from {
            return Err(NodeError::Forbidden(format!(
                "{from} may not submit for {}",
                req.sending_uri
            )));
        }
        let mut tx = match self.store.begin_room(room.as_str()).await {
            Err(StoreError::NotFound(_)) => return Err(NodeError::NoRoom(room.to_string())),
            r => r?,
        };
        // PROTO-submit-idempotent: a message accepted before (the client lost our answer and
        // sends the same bytes again) gets its first answer and is not fanned out twice.
        let msg_hash = sha2::Sha256::digest(req.app_message.as_bytes()).to_vec();
        if let Some(ts) = tx.submitted(&msg_hash).await? {
            // The same frank as the first answer (deterministic, with the same key).
            let version = tx.room().state_version;
            let hub = self.hub_in_tx(&mut tx).await?;
            let agent_key = hub.franking_agent_key();
            self.put_hub(room.as_str(), version, hub);
            return Ok(SubmitMessageResponse {
                outcome: SubmitOutcome::Accepted {
                    accepted_timestamp: ts,
                    frank: self.frank(&req, room, agent_key, ts)?,
                },
            });
        }
        let version = tx.room().state_version;
        let hub = self.hub_in_tx(&mut tx).await?;
        // PROTO-5.4.1-frank-aad: a frank_aad that is there but does not decode is refused
        // (a frank could not be made for it); no frank_aad at all is accepted unfranked.
        let checked = hub.check_submit(&req).and_then(|()| {
            frank_aad_in(&req)
                .map(|_| ())
                .map_err(|e| SubmitRejection::NotAllowed(e.to_string()))
        });
        let providers = hub.providers();
        let local = self.store_members_local(&hub, &[]);
        let epoch = hub.epoch();
        let agent_key = hub.franking_agent_key();
        self.put_hub(room.as_str(), version, hub);
        let outcome = match checked {
            Ok(()) => None,
            Err(SubmitRejection::EpochTooOld { current_epoch, .. }) => {
                Some(SubmitOutcome::EpochTooOld { current_epoch })
            }
            Err(SubmitRejection::NotAllowed(_)) => Some(SubmitOutcome::NotAllowed),
        };
        if let Some(outcome) = outcome {
            return Ok(SubmitMessageResponse { outcome });
        }
        let ts = next_timestamp(Some(tx.room().last_ts_ms).filter(|t| *t > 0), now_ms);
        let frank = self.frank(&req, room, agent_key, ts)?;
        let item = FanoutMessage {
            timestamp: ts,
            message: req.app_message.clone(),
            extra: FanoutExtra::Application(frank.clone()),
        }
        .encode();
        let seq = tx.append_event(ts, &item).await?;
        tx.record_submitted(&msg_hash, ts).await?;
        let followers: Vec<&str> = providers
            .iter()
            .filter(|p| **p != self.domain)
            .map(ProviderId::as_str)
            .collect();
        tx.enqueue_outbox_many(&followers, seq, &item, now_ms)
            .await?;
        for c in local {
            tx.enqueue_client(c.as_str(), &item, now_ms).await?;
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        self.events.emit(crate::events::NodeEvent::MessageAccepted {
            room: room.to_string(),
            sender: req.sending_uri.to_string(),
            epoch,
            accepted_ms: ts,
        });
        Ok(SubmitMessageResponse {
            outcome: SubmitOutcome::Accepted {
                accepted_timestamp: ts,
                frank,
            },
        })
    }

    /// The follower's notify endpoint (protocol-06 §5.5): every FanoutMessage delivered once
    /// to the room's local clients (`PROTO-5.5-dedup`), in the hub's order when the hub numbers
    /// its stream with `mimi-notify-seq` (`PROTO-5.5-order`: early items are held, repeats
    /// dropped), Welcomes to the clients whose KeyPackages they name. The dedupe record, the
    /// stream position and the client-queue rows commit together. Returns how many items were
    /// delivered now.
    pub async fn notify(
        &self,
        hub: &ProviderId,
        room: &RoomUri,
        body: &[u8],
        first_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<usize, NodeError> {
        self.notify_resuming(hub, room, body, first_seq, None, now_ms)
            .await
    }

    /// [`Node::notify`] with the hub's `mimi-notify-resume` (`STORE-retention`): the hub dropped
    /// the stream's items before `resume` (this follower stayed away longer than its
    /// retention). The follower stops waiting for them, drops what it holds from before, lets
    /// the room's roster go (it missed commits), and tells each local member to resync (an
    /// empty queue item; `mimi sync` resyncs the room by external commit).
    pub async fn notify_resuming(
        &self,
        hub: &ProviderId,
        room: &RoomUri,
        body: &[u8],
        first_seq: Option<u64>,
        resume: Option<u64>,
        now_ms: u64,
    ) -> Result<usize, NodeError> {
        if room.provider() != *hub {
            return Err(NodeError::Forbidden(format!(
                "{hub} is not the hub of {room}"
            )));
        }
        if room.provider() == self.domain {
            return Err(NodeError::Forbidden(format!(
                "{room} is hosted here; this node does not take notify for it"
            )));
        }
        let items = split_notify(body, self.limits)?;
        let mut tx = self.store.begin_inbox(hub.as_str(), room.as_str()).await?;
        let mut state = InboxState {
            next_seq: tx.next_seq(),
            held: tx.held().iter().cloned().collect(),
        };
        if let Some(r) = resume
            && state.next_seq < r
        {
            tracing::warn!(%room, from = state.next_seq, to = r, "the hub dropped notifies this follower missed; its devices resync");
            for seq in state
                .held
                .keys()
                .copied()
                .filter(|s| *s < r)
                .collect::<Vec<_>>()
            {
                state.held.remove(&seq);
                tx.release_held(seq).await?;
            }
            state.next_seq = r;
            for c in tx.members().await? {
                tx.enqueue_client(&c, &[], now_ms).await?;
            }
            tx.set_roster(None).await?;
        }
        let held_before: BTreeSet<u64> = state.held.keys().copied().collect();
        let accepted = accept(
            &mut state,
            first_seq,
            items.into_iter().map(|(_, bytes)| bytes).collect(),
            &InboxLimits::default(),
        )
        .map_err(|e| NodeError::Busy(format!("notify for {room}: {e}")))?;
        for (seq, item) in &state.held {
            if !held_before.contains(seq) {
                tx.hold(*seq, item).await?;
            }
        }
        // PROTO-follower-membership: the room's roster (the leaves of its tree), followed
        // item by item in the hub's order, decides which local clients are members.
        // Application messages alone leave it as it is: it is read only for handshakes.
        let handshakes = accepted.deliver.iter().any(|d| {
            !matches!(
                FanoutMessage::decode_with(&d.item, self.limits).map(|f| f.extra),
                Ok(FanoutExtra::Application(_))
            )
        });
        let stored = if handshakes { tx.roster().await? } else { None };
        let mut roster = match stored {
            Some(b) => match Roster::decode(&b) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "stored roster unreadable; dropped");
                    None
                }
            },
            None => None,
        };
        let roster_before = roster.clone();
        let mut last_commit_epoch: Option<u64> = None;
        let mut new = 0;
        for d in &accepted.deliver {
            if let Some(seq) = d.seq
                && held_before.contains(&seq)
            {
                tx.release_held(seq).await?;
            }
            // Arrival order without numbers: exact repeats are dropped here.
            if !tx.first_seen(&d.id.0, now_ms).await? {
                continue;
            }
            new += 1;
            let item = FanoutMessage::decode_with(&d.item, self.limits)?;
            let mut targets: Vec<String> = Vec::new();
            match &item.extra {
                FanoutExtra::Welcome(tree) => {
                    // Route by KeyPackageRef (target side): the clients whose KeyPackages we
                    // gave out.
                    if let Ok(MlsMessageBodyIn::Welcome(w)) =
                        item.message.parse().map(|m| m.extract())
                    {
                        for s in w.secrets() {
                            if let Some(c) =
                                tx.client_of_key_package(s.new_member().as_slice()).await?
                            {
                                tx.add_member(&c).await?;
                                targets.push(c);
                            }
                        }
                        if roster.is_none()
                            && !targets.is_empty()
                            && let RatchetTreeOption::Full(t) = tree
                        {
                            match Roster::from_tree(
                                u16::from(w.ciphersuite()),
                                last_commit_epoch.map(|e| e + 1),
                                t.as_bytes(),
                            ) {
                                Ok(r) => roster = Some(r),
                                Err(e) => {
                                    tracing::warn!(room = %room, error = %e, "Welcome tree unreadable")
                                }
                            }
                        }
                    }
                }
                FanoutExtra::Proposal(_)
                    if self.options.faults.follower_drops_hub_proposals
                        && is_external_proposal(item.message.as_bytes()) =>
                {
                    // Fault: the hub's own proposals are not delivered.
                }
                FanoutExtra::Commit(_) | FanoutExtra::Proposal(_) => {
                    // The removing commit still goes to the removed (protocol-06 §5.5: they
                    // SHOULD see it); nothing after it does.
                    targets = tx.members().await?;
                    match roster.as_mut() {
                        Some(r) => {
                            if !self.follow(room, r, &item).await {
                                roster = None;
                            } else if self.options.faults.follower_keeps_removed_members {
                                // Fault: members stay as they were.
                            } else if r.clients().iter().all(|c| c.provider() != self.domain) {
                                // No member left here: the follower drops the room.
                                roster = None;
                                for m in &targets {
                                    tx.remove_member(m).await?;
                                }
                            } else {
                                self.sync_members(&mut tx, r, &targets).await?;
                            }
                        }
                        None => {
                            if let Some(e) = commit_epoch(item.message.as_bytes()) {
                                last_commit_epoch = Some(e);
                            }
                        }
                    }
                }
                FanoutExtra::Application(_) => targets = tx.members().await?,
            }
            for c in targets {
                tx.enqueue_client(&c, &d.item, now_ms).await?;
            }
        }
        if handshakes && roster != roster_before {
            tx.set_roster(roster.as_ref().map(Roster::encode).as_deref())
                .await?;
        }
        tx.set_next_seq(state.next_seq);
        tx.commit().await?;
        Ok(new)
    }

    /// Applies one handshake item (and the proposals that travel with it) to a roster;
    /// `false` when the roster lost track (logged; the follower falls back to the members it
    /// knew until a Welcome gives it a tree again).
    async fn follow(&self, room: &RoomUri, r: &mut Roster, item: &FanoutMessage) -> bool {
        let mut messages = vec![item.message.as_bytes()];
        match &item.extra {
            FanoutExtra::Proposal(more) | FanoutExtra::Commit(more) => {
                messages.extend(more.iter().map(|m| m.as_bytes()));
            }
            _ => {}
        }
        for m in messages {
            if let Err(e) = r.apply(m) {
                tracing::warn!(room = %room, error = %e, "roster lost track of the room");
                return false;
            }
        }
        true
    }

    /// A local device's external commit was accepted by the hub of `room`: when this
    /// follower has no roster of the room yet (no Welcome ever came: the provider had no
    /// member), it takes the one of the commit's tree, at the epoch after the commit
    /// (`PROTO-follower-membership`). The commit's own fanout, when it arrives, is then stale.
    /// `true` when the follower had a roster already (the commit's fanout will make the
    /// device a member).
    pub async fn roster_from_external_join(
        &self,
        room: &RoomUri,
        bundle: &HandshakeBundle,
    ) -> Result<bool, NodeError> {
        let HandshakeBundle::Commit {
            commit,
            group_info: GroupInfoOption::Full(gi),
            ratchet_tree: RatchetTreeOption::Full(tree),
            ..
        } = bundle
        else {
            return Ok(false);
        };
        let (Some(epoch), Ok(gi)) = (commit_epoch(commit.as_bytes()), gi.parse()) else {
            return Ok(false);
        };
        let mut tx = self
            .store
            .begin_inbox(room.provider().as_str(), room.as_str())
            .await?;
        if tx.roster().await?.is_some() {
            tx.rollback().await?;
            return Ok(true);
        }
        match Roster::from_tree(
            u16::from(gi.ciphersuite()),
            Some(epoch + 1),
            tree.as_bytes(),
        ) {
            Ok(r) => {
                tx.set_roster(Some(&r.encode())).await?;
                tx.commit().await?;
            }
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "external commit tree unreadable");
                tx.rollback().await?;
            }
        }
        Ok(false)
    }

    /// Makes the stored local members of a room those of its roster.
    async fn sync_members(
        &self,
        tx: &mut mimi_store::InboxTx,
        r: &Roster,
        before: &[String],
    ) -> Result<(), NodeError> {
        let now: BTreeSet<String> = r
            .clients()
            .into_iter()
            .filter(|c| c.provider() == self.domain)
            .map(|c| c.to_string())
            .collect();
        for m in before.iter().filter(|m| !now.contains(*m)) {
            tx.remove_member(m).await?;
        }
        for c in now.iter().filter(|c| !before.contains(c)) {
            tx.add_member(c).await?;
        }
        Ok(())
    }
}
