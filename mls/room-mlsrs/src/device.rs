//! A MIMI device on mls-rs: keys, KeyPackages, joining from a Welcome, processing the hub's
//! fanout, sending commits (self-update, adds with the participant-list update, removes, role
//! changes) as mimi-room HandshakeBundles, encrypting and decrypting application messages.

use crate::appdata::{self, APP_DATA_DICTIONARY, APP_DATA_UPDATE, AppDataError, SELF_REMOVE};
use crate::rules::MimiRules;
use crate::storage::Storage;
use mimi_room::codepoints::CodePoints;
use mimi_room::franking::{FrankCheck, frank_aad_for, safe_aad, verify_on_device};
pub use mimi_room::requests::PendingGroupInfo;
use mimi_room::state::RoomState;
use mimi_wire::Mls;
use mimi_wire::codec::Body as _;
use mimi_wire::common::CipherSuite as WireSuite;
use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
use mimi_wire::components::{ParticipantListUpdate, UserIndexRolePair, UserRolePair};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::franking::{FRANKING_AGENT, frank_aad_of};
use mimi_wire::group_info::{GroupInfoResponse, PendingProposal};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::key_material::{KeyMaterialRequest, KeyMaterialRequestTbs};
use mimi_wire::update::HandshakeBundle;
use mls_rs::client_builder::{
    BaseConfig, IntoConfigOutput, WithCryptoProvider, WithGroupStateStorage, WithIdentityProvider,
    WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::crypto::SignatureSecretKey;
use mls_rs::group::{CommitOutput, ExportedTree, ReceivedMessage};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rs_codec::MlsEncode as _;
use mls_rs::{CipherSuite, CipherSuiteProvider, CryptoProvider, ExtensionList, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

/// The cipher suite (0x0001, as mimi-room's `CIPHERSUITE`).
pub const SUITE: CipherSuite = CipherSuite::CURVE25519_AES128;

type Config = IntoConfigOutput<
    WithGroupStateStorage<
        Storage,
        WithKeyPackageRepo<
            Storage,
            WithMlsRules<
                MimiRules,
                WithIdentityProvider<
                    MimiIdentity,
                    WithCryptoProvider<RustCryptoProvider, BaseConfig>,
                >,
            >,
        >,
    >,
>;
/// The mls-rs client type of a device.
pub type Client = mls_rs::Client<Config>;
/// The mls-rs group type of a device.
pub type Group = mls_rs::Group<Config>;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// mls-rs refused.
    #[error("mls-rs {step}: {error}")]
    Mls {
        /// The step.
        step: &'static str,
        /// mls-rs's error.
        error: mls_rs::error::MlsError,
    },
    /// The room state or an AppDataUpdate is not valid.
    #[error(transparent)]
    AppData(#[from] AppDataError),
    /// A body or identifier is malformed.
    #[error(transparent)]
    Wire(#[from] mimi_wire::WireError),
    /// A MIMI request or the hub's answer to one (mimi-room's checks).
    #[error(transparent)]
    Request(#[from] mimi_room::client::ClientError),
    /// Something this device cannot use.
    #[error("{0}")]
    Unusable(String),
}

fn mls<T>(step: &'static str, r: Result<T, mls_rs::error::MlsError>) -> Result<T, DeviceError> {
    r.map_err(|error| DeviceError::Mls { step, error })
}

/// RFC 9420 MLSMessage header: mls10, then the wire format.
const WELCOME_HEADER: [u8; 4] = [0, 1, 0, 3];
/// The same for a GroupInfo.
const GROUP_INFO_HEADER: [u8; 4] = [0, 1, 0, 4];

/// The body of an MLSMessage (what mimi-wire carries bare: Welcome, GroupInfo, KeyPackage).
fn body_of(m: &MlsMessage) -> Result<Vec<u8>, DeviceError> {
    let b = mls("serialize message", m.to_bytes())?;
    Ok(b.get(4..).unwrap_or_default().to_vec())
}

/// One device.
pub struct Device {
    /// The client URI (the BasicCredential's identity, as on openmls devices).
    pub client: ClientUri,
    /// The user.
    pub user: UserUri,
    /// Component IDs.
    pub codepoints: CodePoints,
    mls: Client,
    identity: SigningIdentity,
    secret: SignatureSecretKey,
    storage: Storage,
    identities: MimiIdentity,
}

/// The identity rules of a MIMI device on mls-rs: a BasicCredential whose identity is the
/// client URI (mls-rs' `BasicIdentityProvider`), and a leaf may only be succeeded by the
/// same client (an Update, or the Remove of an external commit: RFC 9420 §12.4.3.2,
/// `ROOM-resync`). The one exception is the device's own [`Device::join_external_replacing`],
/// which builds a commit a correct device never sends, for conformance runners.
#[derive(Clone, Debug, Default)]
pub struct MimiIdentity {
    any_successor: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl mls_rs::IdentityProvider for MimiIdentity {
    type Error = <BasicIdentityProvider as mls_rs::IdentityProvider>::Error;

    fn validate_member(
        &self,
        signing_identity: &SigningIdentity,
        timestamp: Option<mls_rs::time::MlsTime>,
        context: mls_rs_core::identity::MemberValidationContext<'_>,
    ) -> Result<(), Self::Error> {
        BasicIdentityProvider::new().validate_member(signing_identity, timestamp, context)
    }

    fn validate_external_sender(
        &self,
        signing_identity: &SigningIdentity,
        timestamp: Option<mls_rs::time::MlsTime>,
        extensions: Option<&ExtensionList>,
    ) -> Result<(), Self::Error> {
        BasicIdentityProvider::new().validate_external_sender(
            signing_identity,
            timestamp,
            extensions,
        )
    }

    fn identity(
        &self,
        signing_identity: &SigningIdentity,
        extensions: &ExtensionList,
    ) -> Result<Vec<u8>, Self::Error> {
        BasicIdentityProvider::new().identity(signing_identity, extensions)
    }

    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        extensions: &ExtensionList,
    ) -> Result<bool, Self::Error> {
        let same =
            BasicIdentityProvider::new().valid_successor(predecessor, successor, extensions)?;
        Ok(same
            || self
                .any_successor
                .load(std::sync::atomic::Ordering::Relaxed))
    }

    fn supported_types(&self) -> Vec<mls_rs::identity::CredentialType> {
        BasicIdentityProvider::new().supported_types()
    }
}

/// The device's signature key as an openmls `Signer`, for the MIMI requests mimi-wire signs
/// with SignWithLabel (KeyMaterialRequest): mls-rs signs the labelled content with the same
/// Ed25519 key its leaves carry.
struct RsSigner<'a>(&'a SignatureSecretKey);

impl openmls_traits::signatures::Signer for RsSigner<'_> {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, openmls_traits::signatures::SignerError> {
        let crypto = RustCryptoProvider::new();
        let cs = crypto
            .cipher_suite_provider(SUITE)
            .ok_or(openmls_traits::signatures::SignerError::SigningError)?;
        cs.sign(self.0, payload)
            .map_err(|_| openmls_traits::signatures::SignerError::SigningError)
    }

    fn signature_scheme(&self) -> openmls_traits::types::SignatureScheme {
        openmls_traits::types::SignatureScheme::ED25519
    }
}

/// What processing one message did.
// (Like mimi-room's Event: a message is the common case, boxing it buys nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An application message.
    Message {
        /// The sender.
        sender: Option<ClientUri>,
        /// The plaintext.
        content: Vec<u8>,
        /// What the device found about its frank (`PROTO-5.4.1-frank-verify`; a bare
        /// message, without the hub's fanout, has no frank to check).
        frank: FrankCheck,
    },
    /// A commit was applied.
    Commit {
        /// The new epoch.
        epoch: u64,
    },
    /// A proposal was stored.
    Proposal,
    /// This device's own message echoed back, or another kind (ignored).
    Ignored,
}

/// A device's view of one room.
pub struct Room {
    /// The room.
    pub room: RoomUri,
    /// The mls-rs group.
    pub group: Group,
    codepoints: CodePoints,
    sent: std::collections::HashSet<Vec<u8>>,
    own: ClientUri,
}

/// The MLS group ID of a room (as mimi-room's devices and hub use it: the room URI's group
/// part).
pub fn group_id(room: &RoomUri) -> Vec<u8> {
    room.group().as_str().as_bytes().to_vec()
}

fn client_of_identity(id: &SigningIdentity) -> Option<ClientUri> {
    let b = id.credential.as_basic()?;
    ClientUri::parse(std::str::from_utf8(b.identifier()).ok()?).ok()
}

impl Device {
    /// A new device with a fresh Ed25519 key and empty storage. Its leaf capabilities are
    /// the ones MIMI rooms require (mimi-room `leaf_capabilities`): the app_data_dictionary
    /// extension (0x0006) and the AppDataUpdate (0x0008) and SelfRemove (0x000a) proposal
    /// types.
    pub fn new(client: ClientUri) -> Result<Self, DeviceError> {
        let crypto = RustCryptoProvider::new();
        let cs = crypto
            .cipher_suite_provider(SUITE)
            .ok_or_else(|| DeviceError::Unusable("cipher suite 0x0001 unavailable".into()))?;
        let (secret, public) = cs
            .signature_key_generate()
            .map_err(|e| DeviceError::Unusable(format!("signature key: {e:?}")))?;
        Self::build(client, secret, public.to_vec(), Storage::new())
    }

    /// The device again, from its signature key pair ([`Device::key_pair`]) and its storage
    /// (its groups and KeyPackage keys, [`Storage::from_entries`]).
    pub fn restore(
        client: ClientUri,
        secret: Vec<u8>,
        public: Vec<u8>,
        storage: Storage,
    ) -> Result<Self, DeviceError> {
        Self::build(client, SignatureSecretKey::new(secret), public, storage)
    }

    fn build(
        client: ClientUri,
        secret: SignatureSecretKey,
        public: Vec<u8>,
        storage: Storage,
    ) -> Result<Self, DeviceError> {
        let user = client
            .user()
            .ok_or_else(|| DeviceError::Unusable(format!("{client} does not name its user")))?;
        let identity = SigningIdentity::new(
            BasicCredential::new(client.as_str().as_bytes().to_vec()).into_credential(),
            public.into(),
        );
        let kept = (identity.clone(), secret.clone());
        let codepoints = CodePoints::DRAFT;
        let identities = MimiIdentity::default();
        let mls = mls_rs::Client::builder()
            .crypto_provider(RustCryptoProvider::new())
            .identity_provider(identities.clone())
            .mls_rules(MimiRules { codepoints })
            .key_package_repo(storage.clone())
            .group_state_storage(storage.clone())
            .extension_type(APP_DATA_DICTIONARY.into())
            .custom_proposal_types([APP_DATA_UPDATE.into(), SELF_REMOVE.into()])
            .signing_identity(identity, secret, SUITE)
            .build();
        Ok(Self {
            client,
            user,
            codepoints,
            mls,
            identity: kept.0,
            secret: kept.1,
            storage,
            identities,
        })
    }

    /// The signature key pair (private, public), to keep with the storage.
    pub fn key_pair(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.secret.as_bytes().to_vec(),
            self.identity.signature_key.to_vec(),
        )
    }

    /// The device's storage (shared: what the device's groups write lands here).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// A room this device is in, from its storage (as [`Room::save`] left it), with the
    /// messages it sent and has not seen come back yet; `None` if the storage has no such
    /// group.
    pub fn load_room(
        &self,
        room: &RoomUri,
        sent: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Option<Room>, DeviceError> {
        match self.mls.load_group(&group_id(room)) {
            Ok(group) => Ok(Some(Room {
                room: room.clone(),
                group,
                codepoints: self.codepoints,
                sent: sent.into_iter().collect(),
                own: self.client.clone(),
            })),
            Err(mls_rs::error::MlsError::GroupNotFound) => Ok(None),
            Err(error) => Err(DeviceError::Mls {
                step: "load group",
                error,
            }),
        }
    }

    /// Forgets a room: its group and past epochs leave the storage.
    pub fn delete_room(&self, room: &RoomUri) {
        self.storage.delete_group(&group_id(room));
    }

    /// A signed KeyMaterialRequest for `target`'s KeyPackages of suite 0x0001, to add them to
    /// `room` (protocol-06 §5.2, as mimi-room's `Device::key_material_request_in`): signed with
    /// this device's key, naming its credential.
    pub fn key_material_request(
        &self,
        room: &RoomUri,
        target: &UserUri,
    ) -> Result<KeyMaterialRequest, DeviceError> {
        let caps = mimi_room::mls::required_capabilities();
        let caps = openmls::prelude::tls_codec::Serialize::tls_serialize_detached(&caps)
            .map_err(|e| DeviceError::Unusable(format!("encoding capabilities: {e}")))?;
        let credential = self.credential_bytes()?;
        let tbs = KeyMaterialRequestTbs {
            requesting_user: self.user.clone(),
            target_user: target.clone(),
            room_id: room.clone(),
            acceptable_ciphersuites: vec![WireSuite(u16::from(SUITE))],
            required_capabilities: Mls::from_bytes(caps)?,
            requester_signature_key: self.identity.signature_key.to_vec(),
            requester_credential: Mls::from_bytes(credential)?,
        };
        KeyMaterialRequest::sign(tbs, &RsSigner(&self.secret))
            .map_err(|e| DeviceError::Unusable(format!("signing the KeyMaterialRequest: {e}")))
    }

    fn credential_bytes(&self) -> Result<Vec<u8>, DeviceError> {
        self.identity
            .credential
            .mls_encode_to_vec()
            .map_err(|e| DeviceError::Unusable(format!("encoding the credential: {e}")))
    }

    /// A signed GroupInfoRequest for an external join (protocol-06 §5.6,
    /// `ROOM-client-group-info`): mimi-room's request, signed with this device's mls-rs key.
    pub fn group_info_request(&self) -> Result<PendingGroupInfo, DeviceError> {
        Ok(mimi_room::requests::group_info_request_by(
            &openmls_rust_crypto::RustCrypto::default(),
            &RsSigner(&self.secret),
            self.identity.signature_key.to_vec(),
            Mls::from_bytes(self.credential_bytes()?)?,
            Vec::new(),
        )?)
    }

    /// Opens the hub's answer to [`Device::group_info_request`]: the GroupInfo, the tree and
    /// the proposals the hub accepted in the current epoch (mimi-room's checks).
    pub fn open_group_info(
        &self,
        room: &RoomUri,
        pending: &PendingGroupInfo,
        response: &GroupInfoResponse,
    ) -> Result<mimi_room::requests::OpenedGroupInfo, DeviceError> {
        Ok(mimi_room::requests::open_group_info_response(
            &openmls_rust_crypto::RustCrypto::default(),
            room,
            pending,
            response,
        )?)
    }

    /// Joins by external commit (RFC 9420 §12.4.3.2) from the hub's GroupInfo and tree, as
    /// a new device of a user the room lists (no participant-list change: mls-rs cannot send
    /// an AppDataUpdate openmls reads, spec-notes/interop.md). If this client already has a
    /// leaf in the tree (its state was lost), the commit removes it: a resync as the same
    /// client (protocol-06 §3.6, `ROOM-client-resync`). `pending` (groupInfo's
    /// `pending_proposals`): a SelfRemove among them would have to be included, which mls-rs
    /// cannot apply (its SelfRemove is 0xF003), so the join is refused until the next commit.
    /// The returned room is at the new epoch; if the hub refuses the commit, drop it with
    /// [`Device::delete_room`].
    pub fn join_external(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        pending: &[PendingProposal],
    ) -> Result<(Room, HandshakeBundle), DeviceError> {
        self.external_commit(room, group_info, tree, pending, &self.client)
    }

    /// An external commit like [`Device::join_external`] whose Remove is of `replaced`'s
    /// leaf, whoever that is. A correct device removes only its own old leaf, and a hub must
    /// refuse this commit when `replaced` is another client (RFC 9420 §12.4.3.2,
    /// `ROOM-resync`): this is for conformance runners, which send it to check that the hub
    /// does. `replaced` must have a leaf in the tree.
    pub fn join_external_replacing(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        pending: &[PendingProposal],
        replaced: &ClientUri,
    ) -> Result<(Room, HandshakeBundle), DeviceError> {
        use std::sync::atomic::Ordering;
        self.identities.any_successor.store(true, Ordering::Relaxed);
        let out = self.external_commit(room, group_info, tree, pending, replaced);
        self.identities
            .any_successor
            .store(false, Ordering::Relaxed);
        out
    }

    fn external_commit(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        pending: &[PendingProposal],
        replaced: &ClientUri,
    ) -> Result<(Room, HandshakeBundle), DeviceError> {
        let GroupInfoOption::Full(gi) = group_info else {
            return Err(DeviceError::Unusable(
                "a full GroupInfo is needed to join".into(),
            ));
        };
        let RatchetTreeOption::Full(t) = tree else {
            return Err(DeviceError::Unusable(
                "the hub sent no ratchet tree with the GroupInfo".into(),
            ));
        };
        if pending
            .iter()
            .any(|p| mimi_room::roster::self_remove_sender(p.proposal.as_bytes()).is_some())
        {
            return Err(DeviceError::Unusable(
                "a member's SelfRemove waits for the next commit, and an external commit must \
                 include it, which mls-rs cannot (its SelfRemove is 0xF003, not 0x000a; \
                 spec-notes/interop.md); try again after the room's next commit"
                    .into(),
            ));
        }
        let tree = mls("decode tree", ExportedTree::from_bytes(t.as_bytes()))?;
        let old = tree
            .roster()
            .members()
            .iter()
            .find(|m| client_of_identity(&m.signing_identity).as_ref() == Some(replaced))
            .map(|m| m.index);
        if old.is_none() && *replaced != self.client {
            return Err(DeviceError::Unusable(format!(
                "{replaced} has no leaf in the room's tree"
            )));
        }
        let mut b =
            mls("external commit", self.mls.external_commit_builder())?.with_tree_data(tree);
        if let Some(old) = old {
            b = b.with_removal(old);
        }
        let mut bytes = GROUP_INFO_HEADER.to_vec();
        bytes.extend_from_slice(gi.as_bytes());
        let gi = mls("decode group info", MlsMessage::from_bytes(&bytes))?;
        let (group, commit) = mls("external commit", b.build(gi))?;
        let commit = mls("serialize commit", commit.to_bytes())?;
        let info = mls(
            "group info",
            group.group_info_message_allowing_ext_commit(false),
        )?;
        let tree = mls("serialize tree", group.export_tree().to_bytes())?;
        let mut r = Room {
            room: room.clone(),
            group,
            codepoints: self.codepoints,
            sent: Default::default(),
            own: self.client.clone(),
        };
        r.sent.insert(commit.clone());
        let bundle = HandshakeBundle::Commit {
            commit: Mls::from_bytes(commit)?,
            welcome: None,
            group_info: GroupInfoOption::Full(Mls::from_bytes(body_of(&info)?)?),
            ratchet_tree: RatchetTreeOption::Full(Mls::from_bytes(tree)?),
        };
        Ok((r, bundle))
    }

    /// A fresh KeyPackage: the RFC 9420 struct's bytes (as mimi-room's `Device::key_package`).
    pub fn key_package(&self) -> Result<Vec<u8>, DeviceError> {
        let m = mls(
            "key package",
            self.mls
                .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None),
        )?;
        body_of(&m)
    }

    /// Joins from a Welcome (bare, as in a HandshakeBundle) and the tree sent with it.
    pub fn join_from_welcome(
        &self,
        room: &RoomUri,
        welcome: &Mls<openmls::prelude::Welcome>,
        tree: &RatchetTreeOption,
    ) -> Result<Room, DeviceError> {
        let mut bytes = WELCOME_HEADER.to_vec();
        bytes.extend_from_slice(welcome.as_bytes());
        self.join_from_welcome_message(room, &bytes, tree)
    }

    /// Joins from a Welcome the hub fanned out (the item's message is an MLSMessage; its
    /// extra, the tree sent with it).
    pub fn join_from_item(
        &self,
        room: &RoomUri,
        item: &FanoutMessage,
    ) -> Result<Room, DeviceError> {
        let FanoutExtra::Welcome(tree) = &item.extra else {
            return Err(DeviceError::Unusable("the item is not a Welcome".into()));
        };
        self.join_from_welcome_message(room, item.message.as_bytes(), tree)
    }

    fn join_from_welcome_message(
        &self,
        room: &RoomUri,
        bytes: &[u8],
        tree: &RatchetTreeOption,
    ) -> Result<Room, DeviceError> {
        let msg = mls("decode welcome", MlsMessage::from_bytes(bytes))?;
        let tree = match tree {
            RatchetTreeOption::Full(t) => {
                Some(mls("decode tree", ExportedTree::from_bytes(t.as_bytes()))?)
            }
            _ => None,
        };
        let (group, _) = mls("join from welcome", self.mls.join_group(tree, &msg, None))?;
        Ok(Room {
            room: room.clone(),
            group,
            codepoints: self.codepoints,
            sent: Default::default(),
            own: self.client.clone(),
        })
    }
}

impl Room {
    /// Writes the group's state to the device's storage (after each operation that changed
    /// it; a pending commit is not part of it).
    pub fn save(&mut self) -> Result<(), DeviceError> {
        mls("write group state", self.group.write_to_storage())
    }

    /// The messages this device sent and has not seen come back yet (to keep with the
    /// storage, for [`Device::load_room`]).
    pub fn pending_echoes(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.sent.iter()
    }

    /// Whether this device is still a member.
    pub fn is_active(&self) -> bool {
        self.leaf_of(&self.own).is_some()
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.group.current_epoch()
    }

    /// The epoch authenticator (RFC 9420 §8.7).
    pub fn epoch_authenticator(&self) -> Result<Vec<u8>, DeviceError> {
        Ok(mls("epoch authenticator", self.group.epoch_authenticator())?.to_vec())
    }

    /// The room state in the GroupContext.
    pub fn state(&self) -> Result<RoomState, DeviceError> {
        Ok(appdata::state_of(
            &self.group.context().extensions,
            &self.codepoints,
        )?)
    }

    /// The clients in the group.
    pub fn clients(&self) -> Vec<ClientUri> {
        self.group
            .roster()
            .members()
            .iter()
            .filter_map(|m| client_of_identity(&m.signing_identity))
            .collect()
    }

    /// Processes one MLSMessage (a fanout item's message). This device's own echo is ignored
    /// (it merges its commit on the hub's answer, [`Room::merge`]).
    pub fn process(&mut self, message: &[u8]) -> Result<Event, DeviceError> {
        self.process_with(message, None, 0)
    }

    /// Processes one item the hub fanned out: a Welcome is ignored (see
    /// [`Device::join_from_welcome`]); an application message's frank, which the hub sends
    /// with it, is checked as mimi-room's devices check it (`PROTO-5.4.1-frank-verify`).
    pub fn process_item(&mut self, item: &FanoutMessage) -> Result<Event, DeviceError> {
        let frank = match &item.extra {
            FanoutExtra::Welcome(_) => return Ok(Event::Ignored),
            FanoutExtra::Application(f) => f.as_ref(),
            _ => None,
        };
        self.process_with(item.message.as_bytes(), Some(frank), item.timestamp)
    }

    fn process_with(
        &mut self,
        message: &[u8],
        frank: Option<Option<&mimi_wire::common::Frank>>,
        accepted_timestamp: u64,
    ) -> Result<Event, DeviceError> {
        if self.sent.remove(message) {
            return Ok(Event::Ignored);
        }
        let msg = mls("decode message", MlsMessage::from_bytes(message))?;
        match mls("process message", self.group.process_incoming_message(msg))? {
            ReceivedMessage::ApplicationMessage(a) => {
                let sender = self
                    .group
                    .member_at_index(a.sender_index)
                    .and_then(|m| client_of_identity(&m.signing_identity));
                let content = a.data().to_vec();
                let frank = match frank {
                    None => FrankCheck::Unfranked,
                    Some(f) => self.check_frank(
                        sender.as_ref(),
                        &content,
                        &a.authenticated_data,
                        f,
                        accepted_timestamp,
                    ),
                };
                Ok(Event::Message {
                    sender,
                    content,
                    frank,
                })
            }
            ReceivedMessage::Commit(_) => Ok(Event::Commit {
                epoch: self.epoch(),
            }),
            ReceivedMessage::Proposal(_) => Ok(Event::Proposal),
            _ => Ok(Event::Ignored),
        }
    }

    /// The frank checks of mimi-room (`mimi_room::franking::verify_received`) on what mls-rs
    /// decrypted: the SafeAAD's `frank_aad`, the hub's frank, the room's franking agent from
    /// the GroupContext dictionary. (The hub's signature is checked with openmls' RustCrypto
    /// there: the frank is not MLS state.)
    pub fn check_frank(
        &self,
        sender: Option<&ClientUri>,
        content: &[u8],
        aad: &[u8],
        frank: Option<&mimi_wire::common::Frank>,
        accepted_timestamp: u64,
    ) -> FrankCheck {
        let Some(sender) = sender else {
            return FrankCheck::Invalid("the sender's leaf has no client URI".into());
        };
        let dict = appdata::dictionary_of(&self.group.context().extensions).unwrap_or_default();
        verify_on_device(
            &openmls_rust_crypto::RustCrypto::default(),
            &self.room,
            sender,
            content,
            frank_aad_of(aad),
            frank,
            accepted_timestamp,
            dict.get(&FRANKING_AGENT).map(Vec::as_slice),
        )
    }

    /// Encrypts an application message (PrivateMessage bytes). MIMI content is franked as
    /// mimi-room's devices frank it: the SafeAAD with its `frank_aad` is the message's
    /// authenticated data (`PROTO-5.4.1-frank-aad`).
    pub fn send(&mut self, content: &[u8]) -> Result<Vec<u8>, DeviceError> {
        let aad = frank_aad_for(content)
            .map(|a| safe_aad(&a))
            .unwrap_or_default();
        let m = mls(
            "encrypt",
            self.group.encrypt_application_message(content, aad),
        )?;
        let b = mls("serialize message", m.to_bytes())?;
        self.sent.insert(b.clone());
        Ok(b)
    }

    /// The leaf index of a client in the group, if it is a member.
    pub fn leaf_of(&self, client: &ClientUri) -> Option<u32> {
        self.group
            .roster()
            .members()
            .iter()
            .find(|m| client_of_identity(&m.signing_identity).as_ref() == Some(client))
            .map(|m| m.index)
    }

    fn leaves_of(&self, user: &UserUri) -> Vec<u32> {
        self.group
            .roster()
            .members()
            .iter()
            .filter(|m| {
                client_of_identity(&m.signing_identity)
                    .and_then(|c| c.user())
                    .as_ref()
                    == Some(user)
            })
            .map(|m| m.index)
            .collect()
    }

    fn index_of(&self, user: &UserUri) -> Result<u32, DeviceError> {
        self.state()?
            .participants
            .index_of(user)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| DeviceError::Unusable(format!("{user} is not a participant")))
    }

    /// A commit with an optional participant-list update, Adds and Removes (with nothing, a
    /// self-update: mls-rs gives an empty commit an UpdatePath, RFC 9420 §12.4).
    pub fn commit(
        &mut self,
        delta: Option<ParticipantListUpdate>,
        key_packages: &[Vec<u8>],
        removes: &[u32],
    ) -> Result<HandshakeBundle, DeviceError> {
        let mut b = self.group.commit_builder();
        for kp in key_packages {
            // mimi-wire carries the bare KeyPackage; mls-rs takes an MLSMessage (wire format 5).
            let mut bytes = vec![0, 1, 0, 5];
            bytes.extend_from_slice(kp);
            let m = mls("decode key package", MlsMessage::from_bytes(&bytes))?;
            b = mls("add member", b.add_member(m))?;
        }
        for r in removes {
            b = mls("remove member", b.remove_member(*r))?;
        }
        if let Some(d) = delta {
            b = b.custom_proposal(appdata::update_proposal(
                self.codepoints.participant_list,
                &d.encode(),
            ));
        }
        let out = mls("build commit", b.build())?;
        self.bundle_of(out)
    }

    fn bundle_of(&mut self, out: CommitOutput) -> Result<HandshakeBundle, DeviceError> {
        let commit = mls("serialize commit", out.commit_message.to_bytes())?;
        self.sent.insert(commit.clone());
        let welcome = match out.welcome_messages.first() {
            Some(w) => Some(Mls::from_bytes(body_of(w)?)?),
            None => None,
        };
        let gi = out.external_commit_group_info.as_ref().ok_or_else(|| {
            DeviceError::Unusable("mls-rs produced no GroupInfo for the commit".into())
        })?;
        let tree = out
            .ratchet_tree
            .as_ref()
            .ok_or_else(|| DeviceError::Unusable("mls-rs produced no tree".into()))?;
        Ok(HandshakeBundle::Commit {
            commit: Mls::from_bytes(commit)?,
            welcome,
            group_info: GroupInfoOption::Full(Mls::from_bytes(body_of(gi)?)?),
            ratchet_tree: RatchetTreeOption::Full(Mls::from_bytes(mls(
                "serialize tree",
                tree.to_bytes(),
            )?)?),
        })
    }

    /// A self-update (empty commit with an UpdatePath).
    pub fn self_update(&mut self) -> Result<HandshakeBundle, DeviceError> {
        self.commit(None, &[], &[])
    }

    /// Adds users (with roles) and their clients' KeyPackages in one commit, with the
    /// participant-list AppDataUpdate (as mimi-room's `Room::add_users`).
    pub fn add_users(
        &mut self,
        users: &[(UserUri, u32)],
        key_packages: &[Vec<u8>],
    ) -> Result<HandshakeBundle, DeviceError> {
        let state = self.state()?;
        let added: Vec<UserRolePair> = users
            .iter()
            .filter(|(u, _)| state.participants.index_of(u).is_none())
            .map(|(u, r)| UserRolePair {
                user: u.clone(),
                role_index: *r,
            })
            .collect();
        let delta = (!added.is_empty()).then(|| ParticipantListUpdate {
            added_participants: added,
            ..Default::default()
        });
        self.commit(delta, key_packages, &[])
    }

    /// Removes a user and all its clients.
    pub fn remove_user(&mut self, user: &UserUri) -> Result<HandshakeBundle, DeviceError> {
        let i = self.index_of(user)?;
        let leaves = self.leaves_of(user);
        let delta = ParticipantListUpdate {
            removed_indices: vec![i],
            ..Default::default()
        };
        self.commit(Some(delta), &[], &leaves)
    }

    /// Changes a user's role (an AppDataUpdate-only commit).
    pub fn set_role(&mut self, user: &UserUri, role: u32) -> Result<HandshakeBundle, DeviceError> {
        let i = self.index_of(user)?;
        let delta = ParticipantListUpdate {
            changed_role_participants: vec![UserIndexRolePair {
                user_index: i,
                role_index: role,
            }],
            ..Default::default()
        };
        self.commit(Some(delta), &[], &[])
    }

    /// After the hub accepted this device's commit: apply it.
    pub fn merge(&mut self) -> Result<(), DeviceError> {
        mls("apply pending commit", self.group.apply_pending_commit()).map(|_| ())
    }

    /// Whether proposals (the hub's Remove of a device, say) wait for a commit: mls-rs puts
    /// every proposal it holds into this device's next commit.
    pub fn has_pending_proposals(&self) -> bool {
        self.group.commit_required()
    }

    /// After the hub refused this device's commit: drop it.
    pub fn discard(&mut self) {
        self.group.clear_pending_commit();
    }
}
