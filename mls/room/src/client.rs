//! A user's device in MIMI rooms, over openmls `MlsGroup` (sans-IO: the caller carries the
//! bytes to and from the hub). Handshakes are PublicMessages so the hub can validate them;
//! application messages are PrivateMessages.

use crate::codepoints::CodePoints;
use crate::franking::{FrankCheck, agent_of, frank_aad_for, room_components, safe_aad};
use crate::mls::{
    CIPHERSUITE, client_of, leaf_capabilities, ops_of, required_capabilities, state_of, updates,
};
use crate::presets::Preset;
use crate::state::{RoomState, StateError};
use mimi_wire::Mls;
use mimi_wire::codec::Body;
use mimi_wire::common::{Frank, GroupInfoOption, RatchetTreeOption};
use mimi_wire::components::{
    ParticipantListData, ParticipantListUpdate, RoomMetaData, UserIndexRolePair, UserRolePair,
};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::franking::{FRANKING_AGENT, FrankAad, FrankingAgentData, frank_aad_of};
use mimi_wire::id::{ClientUri, MimiUri, RoomUri, UserUri};
use mimi_wire::submit::SubmitMessageRequest;
use mimi_wire::update::HandshakeBundle;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider;
use openmls_traits::types::SignatureScheme;

/// How many past epochs a device keeps the message secrets of (`ROOM-late-application`): an
/// application message the hub accepted just before a commit still decrypts on a device
/// that has already moved on (a device that commits merges on the hub's answer, before it
/// reads what the hub sequenced ahead of its commit). RFC 9420 §14 leaves the number to the
/// application; four covers a burst of commits, and older secrets are deleted for forward
/// secrecy.
pub const PAST_EPOCHS: usize = 4;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// openmls refused (message says which step).
    #[error("MLS {step}: {message}")]
    Mls {
        /// The step.
        step: &'static str,
        /// openmls' error.
        message: String,
    },
    /// The room state is not valid.
    #[error(transparent)]
    State(#[from] StateError),
    /// A body or identifier is malformed.
    #[error(transparent)]
    Wire(#[from] mimi_wire::WireError),
    /// The user is not in the room.
    #[error("{0} is not a participant of the room")]
    NotParticipant(String),
    /// Something this device cannot use.
    #[error("{0}")]
    Unusable(String),
    /// A commit the room's policy refuses (`ROOM-policy-active-limits` on the member side);
    /// the code is the one the hub would have answered.
    #[error("the room's policy refuses the commit: {0}")]
    Policy(crate::policy::Denied),
    /// Something the room's policy does not let this client send (`ROOM-policy-status`,
    /// `ROOM-policy-expiry`).
    #[error(transparent)]
    Refused(#[from] crate::room_policy::ClientRefusal),
}

fn mls_err(step: &'static str) -> impl Fn(&dyn std::fmt::Debug) -> ClientError {
    move |e| ClientError::Mls {
        step,
        message: format!("{e:?}"),
    }
}

macro_rules! mls {
    ($step:literal, $e:expr) => {
        $e.map_err(|e| mls_err($step)(&e))
    };
}

/// One device: its client URI, keys and MLS state (in its provider's storage).
pub struct Device {
    /// The client URI (also the MLS credential identity).
    pub client: ClientUri,
    /// The user.
    pub user: UserUri,
    /// Crypto and storage.
    pub provider: OpenMlsRustCrypto,
    /// The signature key.
    pub signer: SignatureKeyPair,
    /// Component IDs.
    pub codepoints: CodePoints,
}

/// What a commit produced: the bundle for the hub, and the Welcome for new members.
pub struct CommitOutput {
    /// The update request (HandshakeBundle) to send to the hub.
    pub bundle: HandshakeBundle,
}

/// A commit as the caller plans it (see [`Room::commit_plan`]).
#[derive(Clone, Debug, Default)]
pub struct CommitPlan {
    /// The participant-list delta, if any.
    pub list_update: Option<ParticipantListUpdate>,
    /// New room metadata, if any.
    pub metadata: Option<RoomMetaData>,
    /// KeyPackages (RFC 9420 struct bytes) to add.
    pub key_packages: Vec<Vec<u8>>,
    /// Clients to remove.
    pub remove_clients: Vec<ClientUri>,
}

fn validated_key_package(dev: &Device, kp: &[u8]) -> Result<KeyPackage, ClientError> {
    let kp_in = mls!(
        "decode key package",
        KeyPackageIn::tls_deserialize_exact(kp)
    )?;
    mls!(
        "validate key package",
        kp_in.validate(dev.provider.crypto(), ProtocolVersion::Mls10)
    )
}

/// A device's view of one room.
pub struct Room {
    /// The room.
    pub room: RoomUri,
    /// The MLS group.
    pub group: MlsGroup,
    /// Messages this device sent, so that their echo from the hub is not processed.
    sent: std::collections::HashSet<Vec<u8>>,
}

/// What processing a fanout item did.
// One Event per processed item, consumed at once: boxing the message's frank would only add
// an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An application message: sender client and the plaintext (MIMI content bytes).
    Message {
        /// The sending client.
        sender: ClientUri,
        /// The content.
        content: Vec<u8>,
        /// What the frank checks found (`PROTO-5.4.1-frank-verify`); an invalid frank flags
        /// the message.
        frank: FrankCheck,
    },
    /// A commit was applied; the room is now at this epoch.
    Commit {
        /// The new epoch.
        epoch: u64,
        /// This device was removed by it.
        removed: bool,
    },
    /// A proposal was stored for a later commit.
    Proposal,
    /// The item was for an epoch or group this device is not in (ignored).
    Ignored,
}

impl Device {
    /// A new device with a fresh signature key.
    pub fn new(client: ClientUri) -> Result<Self, ClientError> {
        let user = client
            .user()
            .ok_or_else(|| ClientError::Unusable(format!("{client} does not name its user")))?;
        let provider = OpenMlsRustCrypto::default();
        let signer = mls!(
            "signature key",
            SignatureKeyPair::new(SignatureScheme::ED25519)
        )?;
        mls!("store signature key", signer.store(provider.storage()))?;
        Ok(Self {
            client,
            user,
            provider,
            signer,
            codepoints: CodePoints::DRAFT,
        })
    }

    fn credential(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.client.as_str().as_bytes().to_vec()).into(),
            signature_key: self.signer.to_public_vec().into(),
        }
    }

    /// A fresh KeyPackage (the RFC 9420 struct's bytes) with the capabilities rooms require,
    /// in suite 0x0001.
    pub fn key_package(&self) -> Result<Vec<u8>, ClientError> {
        self.key_package_for(CIPHERSUITE)
    }

    /// [`Device::key_package`] in `suite` (one of [`crate::mls::SUITES`]: both sign with
    /// Ed25519, so one signature key serves them; `ROOM-suites`).
    pub fn key_package_for(&self, suite: Ciphersuite) -> Result<Vec<u8>, ClientError> {
        if !crate::mls::SUITES.contains(&suite) {
            return Err(ClientError::Unusable(format!(
                "cipher suite {suite:?} is not one this device supports (0x0001, 0x0003)"
            )));
        }
        let kp = mls!(
            "key package",
            KeyPackage::builder()
                .leaf_node_capabilities(leaf_capabilities())
                .build(suite, &self.provider, &self.signer, self.credential())
        )?;
        mls!(
            "serialize key package",
            kp.key_package().tls_serialize_detached()
        )
    }

    /// Creates a room with this device's user as its first participant (`ROOM-client-create`):
    /// group ID = the room's `/g/` URI, the hub in `external_senders`, the preset's policy and
    /// an optional name in the dictionary, AppDataUpdate required. Returns the room and the
    /// GroupInfo and tree the hub bootstraps from.
    pub fn create_room(
        &self,
        room: &RoomUri,
        preset: &Preset,
        hub_sender: ExternalSender,
        name: Option<&str>,
    ) -> Result<(Room, GroupInfoOption, RatchetTreeOption), ClientError> {
        self.create_room_in(room, preset, hub_sender, name, CIPHERSUITE)
    }

    /// [`Device::create_room`] in `suite` (0x0001 or 0x0003, `ROOM-suites`). The room's
    /// franking agent is the hub's ExternalSender key ([`crate::franking::agent_of`]); use
    /// [`Device::create_room_with_agent`] with the hub's own franking key when it has one.
    pub fn create_room_in(
        &self,
        room: &RoomUri,
        preset: &Preset,
        hub_sender: ExternalSender,
        name: Option<&str>,
        suite: Ciphersuite,
    ) -> Result<(Room, GroupInfoOption, RatchetTreeOption), ClientError> {
        let agent = agent_of(&hub_sender).map_err(|e| ClientError::Unusable(e.to_string()))?;
        self.create_room_with_agent(room, preset, hub_sender, agent, name, suite)
    }

    /// [`Device::create_room_in`] naming `agent` as the room's franking agent
    /// (`PROTO-5.4.1-frank-agent`): the key the hub franks the room's messages with, which a
    /// mimi-node hub hands out beside its ExternalSender (`PROTO-5.4.1-frank-agent-key`).
    pub fn create_room_with_agent(
        &self,
        room: &RoomUri,
        preset: &Preset,
        hub_sender: ExternalSender,
        agent: FrankingAgentData,
        name: Option<&str>,
        suite: Ciphersuite,
    ) -> Result<(Room, GroupInfoOption, RatchetTreeOption), ClientError> {
        if !crate::mls::SUITES.contains(&suite) {
            return Err(ClientError::Unusable(format!(
                "cipher suite {suite:?} is not one rooms support (0x0001, 0x0003)"
            )));
        }
        let state = RoomState {
            participants: ParticipantListData {
                participants: vec![UserRolePair {
                    user: self.user.clone(),
                    role_index: preset.creator_role,
                }],
            },
            metadata: name.map(|n| RoomMetaData::named(room.clone(), n)),
            roles: preset.roles.clone(),
            base: preset.base.clone(),
            preauth: None,
            policies: Default::default(),
            join: Default::default(),
        };
        let mut dict = AppDataDictionary::new();
        for (id, bytes) in state.components(&self.codepoints) {
            dict.insert(id, bytes);
        }
        // PROTO-5.4.1-frank-agent: the hub franks every message; receivers verify its franks
        // with the key named here, and every message carries its FrankAAD in a Safe AAD.
        for (id, bytes) in room_components(&agent) {
            dict.insert(id, bytes);
        }
        let exts = mls!(
            "group context extensions",
            Extensions::from_vec(vec![
                Extension::RequiredCapabilities(required_capabilities()),
                Extension::ExternalSenders(vec![hub_sender]),
                Extension::AppDataDictionary(AppDataDictionaryExtension::new(dict)),
            ])
        )?;
        let cfg = MlsGroupCreateConfig::builder()
            .ciphersuite(suite)
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(PAST_EPOCHS)
            .capabilities(leaf_capabilities())
            .with_group_context_extensions(exts)
            .build();
        let group = mls!(
            "create group",
            MlsGroup::new_with_group_id(
                &self.provider,
                &self.signer,
                &cfg,
                GroupId::from_slice(room.group().as_str().as_bytes()),
                self.credential(),
            )
        )?;
        let r = Room {
            room: room.clone(),
            group,
            sent: Default::default(),
        };
        let (gi, tree) = r.group_info_and_tree(self)?;
        Ok((r, gi, tree))
    }

    /// Joins from a Welcome (an MLSMessage) and the tree the hub sent with it.
    pub fn join_from_welcome(
        &self,
        room: &RoomUri,
        welcome: &Mls<MlsMessageIn>,
        tree: &RatchetTreeOption,
    ) -> Result<Room, ClientError> {
        let MlsMessageBodyIn::Welcome(w) = welcome.parse()?.extract() else {
            return Err(ClientError::Unusable("not a Welcome".into()));
        };
        let tree = match tree {
            RatchetTreeOption::Full(t) => Some(t.parse()?),
            _ => None,
        };
        let cfg = MlsGroupJoinConfig::builder()
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(PAST_EPOCHS)
            .build();
        let staged = mls!(
            "stage welcome",
            StagedWelcome::new_from_welcome(&self.provider, &cfg, w, tree)
        )?;
        let group = mls!("join from welcome", staged.into_group(&self.provider))?;
        let mut r = Room {
            room: room.clone(),
            group,
            sent: Default::default(),
        };
        r.apply_operational(self, None)?;
        Ok(r)
    }

    /// Joins by external commit from the hub's GroupInfo and tree (a new device of a listed
    /// user, or an open join that also adds `list_add` to the participant list).
    pub fn join_external(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        list_add: Option<u32>,
    ) -> Result<(Room, CommitOutput), ClientError> {
        self.join_external_with(room, group_info, tree, list_add, &[])
    }

    /// [`Device::join_external`] with the proposals the hub accepted in the current epoch
    /// (groupInfo's `pending_proposals`, protocol-06 §5.6): the SelfRemoves among them are
    /// included by reference (mls-extensions SelfRemove; openmls takes only those), and a
    /// user none of whose clients then remain leaves the participant list in the same commit
    /// (`ROOM-client-join-pending`).
    pub fn join_external_with(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        list_add: Option<u32>,
        pending: &[mimi_wire::group_info::PendingProposal],
    ) -> Result<(Room, CommitOutput), ClientError> {
        self.join_external_by(room, group_info, tree, list_add, pending, None)
    }

    /// [`Device::join_external_with`] for a join with a join link's code: when the room's
    /// links are single-use, the commit removes the link it used (`ROOM-join-links`).
    pub fn join_external_by(
        &self,
        room: &RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
        list_add: Option<u32>,
        pending: &[mimi_wire::group_info::PendingProposal],
        code: Option<&[u8]>,
    ) -> Result<(Room, CommitOutput), ClientError> {
        let GroupInfoOption::Full(gi) = group_info else {
            return Err(ClientError::Unusable(
                "a full GroupInfo is needed to join".into(),
            ));
        };
        let vgi = gi.parse()?;
        let cfg = MlsGroupJoinConfig::builder()
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(PAST_EPOCHS)
            .build();
        let mut builder = MlsGroup::external_commit_builder().with_config(cfg);
        let mut leaving: Vec<u32> = Vec::new();
        let mut proposals = Vec::new();
        for p in pending {
            if let Some(leaf) = crate::roster::self_remove_sender(p.proposal.as_bytes())
                && let Ok(ProtocolMessage::PublicMessage(pm)) =
                    p.proposal.parse()?.try_into_protocol_message()
            {
                leaving.push(leaf);
                proposals.push(*pm);
            }
        }
        builder = builder.with_proposals(proposals);
        let before = state_of(vgi.group_context(), &self.codepoints)?;
        // Users whose every client leaves by the included SelfRemoves leave the list too.
        let mut gone: Vec<u32> = Vec::new();
        if let RatchetTreeOption::Full(t) = tree {
            if !leaving.is_empty() {
                let roster = crate::roster::Roster::from_tree(
                    u16::from(vgi.ciphersuite()),
                    None,
                    t.as_bytes(),
                )
                .map_err(|e| ClientError::Unusable(format!("the hub's tree: {e}")))?;
                let users: Vec<(u32, UserUri)> = roster
                    .leaves()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, l)| {
                        let c = crate::roster::client_of_bytes(l.as_ref()?)?;
                        Some((u32::try_from(i).ok()?, c.user()?))
                    })
                    .collect();
                for (_, u) in &users {
                    if *u == self.user {
                        continue;
                    }
                    let all_leave = users
                        .iter()
                        .filter(|(_, v)| v == u)
                        .all(|(i, _)| leaving.contains(i));
                    if all_leave
                        && let Some(i) = before.participants.index_of(u)
                        && let Ok(i) = u32::try_from(i)
                        && !gone.contains(&i)
                    {
                        gone.push(i);
                    }
                }
                gone.sort_unstable();
            }
            builder = builder.with_ratchet_tree(t.parse()?);
        }
        let mut initial = mls!(
            "external commit",
            builder.build_group(&self.provider, vgi, self.credential())
        )?
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_capabilities(leaf_capabilities())
                .build(),
        );
        if list_add.is_some() || !gone.is_empty() {
            let delta = ParticipantListUpdate {
                added_participants: list_add
                    .map(|role| UserRolePair {
                        user: self.user.clone(),
                        role_index: role,
                    })
                    .into_iter()
                    .collect(),
                removed_indices: gone,
                ..Default::default()
            };
            initial = initial.add_app_data_update_proposal(AppDataUpdateProposal::update(
                self.codepoints.participant_list,
                delta.encode(),
            ));
        }
        if let Some(code) = code
            && !before.join.policy.as_ref().is_some_and(|p| p.multiuser)
            && let Some(i) = before.join.links.index_of(code)
        {
            let u = crate::join_links::JoinLinksUpdate {
                removed_indices: vec![i],
                added_links: Vec::new(),
            };
            initial = initial.add_app_data_update_proposal(AppDataUpdateProposal::update(
                self.codepoints.join_links,
                u.encode(),
            ));
        }
        let mut stage = mls!(
            "external commit",
            initial.load_psks(self.provider.storage())
        )?;
        let ops = ops_of(stage.app_data_update_proposals());
        if !ops.is_empty() {
            let res = before.resolve(&self.codepoints, &ops)?;
            let u = updates(stage.app_data_dictionary_updater(), &res.changes);
            stage.with_app_data_dictionary_updates(u);
        }
        let built = mls!(
            "build external commit",
            stage.build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true
            )
        )?;
        let (group, bundle) = mls!("finalize external commit", built.finalize(&self.provider))?;
        let mut r = Room {
            room: room.clone(),
            group,
            sent: Default::default(),
        };
        r.apply_operational(self, None)?;
        let out = r.bundle_of(self, bundle)?;
        Ok((r, out))
    }
}

impl Room {
    /// A room from a group loaded from the device's storage (a device that keeps its state
    /// between processes), with the messages it sent and has not yet seen echoed back.
    pub fn from_group(
        room: RoomUri,
        group: MlsGroup,
        sent: impl IntoIterator<Item = Vec<u8>>,
    ) -> Self {
        Self {
            room,
            group,
            sent: sent.into_iter().collect(),
        }
    }

    /// Messages this device sent whose echo from the hub has not been processed yet (to keep
    /// with the group state, see [`Room::from_group`]).
    pub fn pending_echoes(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.sent.iter()
    }

    /// The room state at the current epoch.
    pub fn state(&self, dev: &Device) -> Result<RoomState, ClientError> {
        Ok(state_of(
            self.group.public_group().group_context(),
            &dev.codepoints,
        )?)
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// Whether this device is still a member (false once a commit removed it).
    pub fn is_active(&self) -> bool {
        self.group.is_active()
    }

    /// The clients in the group.
    pub fn clients(&self) -> Vec<ClientUri> {
        self.group
            .members()
            .filter_map(|m| client_of(&m.credential))
            .collect()
    }

    /// GroupInfo (without tree) and the tree, for the hub.
    pub fn group_info_and_tree(
        &self,
        dev: &Device,
    ) -> Result<(GroupInfoOption, RatchetTreeOption), ClientError> {
        let gi = mls!(
            "export group info",
            self.group
                .export_group_info(dev.provider.crypto(), &dev.signer, false)
        )?;
        let gi_bytes = mls!("serialize group info", gi.tls_serialize_detached())?;
        let gi = GroupInfoOption::Full(Mls::from_bytes(
            gi_bytes.get(4..).unwrap_or_default().to_vec(),
        )?);
        let tree = mls!(
            "serialize tree",
            self.group.export_ratchet_tree().tls_serialize_detached()
        )?;
        Ok((gi, RatchetTreeOption::Full(Mls::from_bytes(tree)?)))
    }

    fn bundle_of(
        &mut self,
        dev: &Device,
        b: CommitMessageBundle,
    ) -> Result<CommitOutput, ClientError> {
        let (commit, welcome, gi) = b.into_contents();
        let commit: Mls<MlsMessageIn> = Mls::encode_from(&commit)?;
        self.sent.insert(commit.as_bytes().to_vec());
        let welcome = match welcome {
            Some(w) => Some(Mls::from_bytes(mls!(
                "serialize welcome",
                w.tls_serialize_detached()
            )?)?),
            None => None,
        };
        let group_info = match gi {
            Some(gi) => GroupInfoOption::Full(Mls::from_bytes(mls!(
                "serialize group info",
                gi.tls_serialize_detached()
            )?)?),
            None => self.group_info_and_tree(dev)?.0,
        };
        // The tree of the new epoch: the pending commit's (this device has not merged yet).
        let tree = self.pending_tree(dev)?;
        Ok(CommitOutput {
            bundle: HandshakeBundle::Commit {
                commit,
                welcome,
                group_info,
                ratchet_tree: tree,
            },
        })
    }

    fn pending_tree(&self, dev: &Device) -> Result<RatchetTreeOption, ClientError> {
        let tree = match self.group.pending_commit() {
            Some(staged) => mls!(
                "export pending tree",
                staged.export_ratchet_tree(dev.provider.crypto(), self.group.export_ratchet_tree())
            )?,
            None => Some(self.group.export_ratchet_tree()),
        };
        match tree {
            Some(t) => Ok(RatchetTreeOption::Full(Mls::from_bytes(mls!(
                "serialize tree",
                t.tls_serialize_detached()
            )?)?)),
            None => Ok(RatchetTreeOption::DistributionService),
        }
    }

    /// A commit exactly as planned (no consistency help): the building block of the
    /// operations below, public so that a caller (or a test) can build any commit the hub
    /// must judge. Proposals received earlier are always included.
    pub fn commit_plan(
        &mut self,
        dev: &Device,
        plan: CommitPlan,
    ) -> Result<CommitOutput, ClientError> {
        let kps = plan
            .key_packages
            .iter()
            .map(|kp| validated_key_package(dev, kp))
            .collect::<Result<Vec<_>, _>>()?;
        let leaves: Vec<LeafNodeIndex> = self
            .group
            .members()
            .filter(|m| client_of(&m.credential).is_some_and(|c| plan.remove_clients.contains(&c)))
            .map(|m| m.index)
            .collect();
        self.commit(dev, plan.list_update, plan.metadata, kps, leaves)
    }

    /// A commit with list changes and MLS adds/removals, resolved with the shared resolver.
    fn commit(
        &mut self,
        dev: &Device,
        delta: Option<ParticipantListUpdate>,
        metadata: Option<RoomMetaData>,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
    ) -> Result<CommitOutput, ClientError> {
        self.commit_with(dev, delta, metadata, adds, removes, Vec::new())
    }

    /// [`Room::commit`] with more AppDataUpdates (component ID, update payload).
    fn commit_with(
        &mut self,
        dev: &Device,
        delta: Option<ParticipantListUpdate>,
        metadata: Option<RoomMetaData>,
        adds: Vec<KeyPackage>,
        removes: Vec<LeafNodeIndex>,
        extra: Vec<(u16, Vec<u8>)>,
    ) -> Result<CommitOutput, ClientError> {
        let state = self.state(dev)?;
        let mut builder = self.group.commit_builder().consume_proposal_store(true);
        if !adds.is_empty() {
            builder = builder.propose_adds(adds);
        }
        if !removes.is_empty() {
            builder = builder.propose_removals(removes);
        }
        if let Some(d) = delta {
            builder = builder.add_proposal(Proposal::AppDataUpdate(Box::new(
                AppDataUpdateProposal::update(dev.codepoints.participant_list, d.encode()),
            )));
        }
        if let Some(m) = metadata {
            builder = builder.add_proposal(Proposal::AppDataUpdate(Box::new(
                AppDataUpdateProposal::update(dev.codepoints.room_metadata, m.encode()),
            )));
        }
        for (id, bytes) in extra {
            builder = builder.add_proposal(Proposal::AppDataUpdate(Box::new(
                AppDataUpdateProposal::update(id, bytes),
            )));
        }
        let mut stage =
            mls!("load psks", builder.load_psks(dev.provider.storage()))?.create_group_info(true);
        let ops = ops_of(stage.app_data_update_proposals());
        if !ops.is_empty() {
            let res = state.resolve(&dev.codepoints, &ops)?;
            let u = updates(stage.app_data_dictionary_updater(), &res.changes);
            stage.with_app_data_dictionary_updates(u);
        }
        let bundle = mls!(
            "build commit",
            mls!(
                "build commit",
                stage.build(
                    dev.provider.rand(),
                    dev.provider.crypto(),
                    &dev.signer,
                    |_| true
                )
            )?
            .stage_commit(&dev.provider)
        )?;
        self.bundle_of(dev, bundle)
    }

    /// Adds users (each with a role and the KeyPackages claimed for its clients) in one commit:
    /// AppDataUpdate appending them to the list, and their Adds (`ROOM-client-add`).
    pub fn add_users(
        &mut self,
        dev: &Device,
        users: &[(UserUri, u32)],
        key_packages: &[Vec<u8>],
    ) -> Result<CommitOutput, ClientError> {
        let state = self.state(dev)?;
        let added: Vec<UserRolePair> = users
            .iter()
            .filter(|(u, _)| state.participants.index_of(u).is_none())
            .map(|(u, r)| UserRolePair {
                user: u.clone(),
                role_index: *r,
            })
            .collect();
        let kps = key_packages
            .iter()
            .map(|kp| validated_key_package(dev, kp))
            .collect::<Result<Vec<_>, _>>()?;
        let delta = (!added.is_empty()).then(|| ParticipantListUpdate {
            added_participants: added,
            ..Default::default()
        });
        self.commit(dev, delta, None, kps, Vec::new())
    }

    fn leaves_of(&self, user: &UserUri) -> Vec<LeafNodeIndex> {
        self.group
            .members()
            .filter(|m| client_of(&m.credential).and_then(|c| c.user()).as_ref() == Some(user))
            .map(|m| m.index)
            .collect()
    }

    fn index_of(&self, dev: &Device, user: &UserUri) -> Result<u32, ClientError> {
        let state = self.state(dev)?;
        state
            .participants
            .index_of(user)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| ClientError::NotParticipant(user.to_string()))
    }

    /// Removes a user and all its clients (`ROOM-client-remove`).
    pub fn remove_user(
        &mut self,
        dev: &Device,
        user: &UserUri,
    ) -> Result<CommitOutput, ClientError> {
        let i = self.index_of(dev, user)?;
        let delta = ParticipantListUpdate {
            removed_indices: vec![i],
            ..Default::default()
        };
        let leaves = self.leaves_of(user);
        self.commit(dev, Some(delta), None, Vec::new(), leaves)
    }

    /// Bans a user: role 1 and all its clients removed.
    pub fn ban(&mut self, dev: &Device, user: &UserUri) -> Result<CommitOutput, ClientError> {
        self.set_role_and_remove(dev, user, crate::roles::BANNED, true)
    }

    /// Changes a user's role.
    pub fn set_role(
        &mut self,
        dev: &Device,
        user: &UserUri,
        role: u32,
    ) -> Result<CommitOutput, ClientError> {
        self.set_role_and_remove(dev, user, role, false)
    }

    fn set_role_and_remove(
        &mut self,
        dev: &Device,
        user: &UserUri,
        role: u32,
        remove: bool,
    ) -> Result<CommitOutput, ClientError> {
        let i = self.index_of(dev, user)?;
        let delta = ParticipantListUpdate {
            changed_role_participants: vec![UserIndexRolePair {
                user_index: i,
                role_index: role,
            }],
            ..Default::default()
        };
        let leaves = if remove {
            self.leaves_of(user)
        } else {
            Vec::new()
        };
        self.commit(dev, Some(delta), None, Vec::new(), leaves)
    }

    /// Replaces the room metadata.
    pub fn set_metadata(
        &mut self,
        dev: &Device,
        metadata: RoomMetaData,
    ) -> Result<CommitOutput, ClientError> {
        self.commit(dev, None, Some(metadata), Vec::new(), Vec::new())
    }

    /// Replaces whole state components (roles, base policy, preauthorization list, the §6
    /// policy components: `ROOM-policy-*`) in one commit, each an AppDataUpdate with the
    /// component's `…Update` bytes. The resolver refuses bytes that do not decode.
    pub fn set_components(
        &mut self,
        dev: &Device,
        components: Vec<(u16, Vec<u8>)>,
    ) -> Result<CommitOutput, ClientError> {
        self.commit_with(dev, None, None, Vec::new(), Vec::new(), components)
    }

    /// Sets the join link policy (when `policy` is given), makes the links `add` and revokes
    /// the links `revoke`, in one commit (`ROOM-join-links`). A link to revoke that the room
    /// does not list is an error.
    pub fn set_join_links(
        &mut self,
        dev: &Device,
        policy: Option<crate::join_links::JoinLinkPolicy>,
        add: Vec<Vec<u8>>,
        revoke: &[Vec<u8>],
    ) -> Result<CommitOutput, ClientError> {
        let state = self.state(dev)?;
        let mut removed_indices = Vec::new();
        for l in revoke {
            let i = state.join.links.index_of(l).ok_or_else(|| {
                ClientError::Unusable(format!(
                    "the room has no join link {}",
                    String::from_utf8_lossy(l)
                ))
            })?;
            removed_indices.push(i);
        }
        let mut extra = Vec::new();
        if let Some(p) = policy {
            extra.push((dev.codepoints.join_link_policy, p.encode()));
        }
        if !add.is_empty() || !removed_indices.is_empty() {
            let u = crate::join_links::JoinLinksUpdate {
                removed_indices,
                added_links: add,
            };
            extra.push((dev.codepoints.join_links, u.encode()));
        }
        if extra.is_empty() {
            return Err(ClientError::Unusable("nothing to change".into()));
        }
        self.commit_with(dev, None, None, Vec::new(), Vec::new(), extra)
    }

    /// Commits the proposals received (for example a member's leave), removing from the list
    /// every user none of whose clients remain.
    pub fn commit_pending(&mut self, dev: &Device) -> Result<CommitOutput, ClientError> {
        let state = self.state(dev)?;
        let leaving: Vec<LeafNodeIndex> = self
            .group
            .pending_proposals()
            .filter_map(|p| match (p.proposal(), p.sender()) {
                (Proposal::Remove(r), _) => Some(r.removed()),
                (Proposal::SelfRemove, Sender::Member(i)) => Some(*i),
                _ => None,
            })
            .collect();
        let mut gone_users = Vec::new();
        for m in self.group.members() {
            if let Some(u) = client_of(&m.credential).and_then(|c| c.user())
                && !gone_users.contains(&u)
                && self.leaves_of(&u).iter().all(|l| leaving.contains(l))
            {
                gone_users.push(u);
            }
        }
        let mut removed: Vec<u32> = gone_users
            .iter()
            .filter_map(|u| {
                state
                    .participants
                    .index_of(u)
                    .and_then(|i| u32::try_from(i).ok())
            })
            .collect();
        removed.sort_unstable();
        let delta = (!removed.is_empty()).then(|| ParticipantListUpdate {
            removed_indices: removed,
            ..Default::default()
        });
        self.commit(dev, delta, None, Vec::new(), Vec::new())
    }

    /// `ROOM-client-leave`: proposes this device's own removal with a SelfRemove proposal (mls-extensions-09;
    /// leaving: another member commits it, removing the user from the list once none of its
    /// clients remain).
    pub fn leave(&mut self, dev: &Device) -> Result<HandshakeBundle, ClientError> {
        let p = mls!(
            "leave",
            self.group
                .leave_group_via_self_remove(&dev.provider, &dev.signer)
        )?;
        let p: Mls<MlsMessageIn> = Mls::encode_from(&p)?;
        self.sent.insert(p.as_bytes().to_vec());
        Ok(HandshakeBundle::Proposal {
            proposal: p,
            more_proposals: Vec::new(),
        })
    }

    /// After the hub accepted this device's commit: merge it.
    pub fn merge(&mut self, dev: &Device) -> Result<(), ClientError> {
        let before = self.operational_bytes(dev);
        mls!(
            "merge pending commit",
            self.group.merge_pending_commit(&dev.provider)
        )?;
        self.apply_operational(dev, before)
    }

    /// The encoded MLS operational parameters of the current epoch (read from the dictionary
    /// without decoding the rest of the room state).
    fn operational_bytes(&self, dev: &Device) -> Option<Vec<u8>> {
        self.group
            .public_group()
            .group_context()
            .extensions()
            .app_data_dictionary()
            .and_then(|d| {
                d.dictionary()
                    .get(&dev.codepoints.mls_operational_policy)
                    .map(<[u8]>::to_vec)
            })
    }

    /// `ROOM-policy-operational-app`: the group's configuration follows the room's
    /// `app_message_policy`; `before` is the component as it was (`None` after a join, where
    /// it is applied whenever present).
    fn apply_operational(
        &mut self,
        dev: &Device,
        before: Option<Vec<u8>>,
    ) -> Result<(), ClientError> {
        let now = self.operational_bytes(dev);
        if now == before {
            return Ok(());
        }
        let params = match &now {
            Some(b) => Some(
                <crate::room_policy::OperationalParameters as mimi_wire::codec::Body>::decode(b)
                    .map_err(|e| {
                        ClientError::Unusable(format!("MLS operational parameters: {e}"))
                    })?,
            ),
            None => None,
        };
        let cfg = crate::operational::join_config(params.as_ref());
        mls!(
            "set group configuration",
            self.group.set_configuration(dev.provider.storage(), &cfg)
        )
    }

    /// After the hub refused this device's commit: drop it.
    /// Deletes the room's MLS state from the device's storage (a resync replaces it, a
    /// refused join leaves nothing behind).
    pub fn delete(mut self, dev: &Device) -> Result<(), ClientError> {
        mls!("delete group", self.group.delete(dev.provider.storage()))
    }

    pub fn discard(&mut self, dev: &Device) -> Result<(), ClientError> {
        mls!(
            "clear pending commit",
            self.group.clear_pending_commit(dev.provider.storage())
        )
    }

    /// Encrypts MIMI content into a submitMessage request (`ROOM-client-send`). MIMI content
    /// is franked (`PROTO-5.4.1-frank-aad`): its FrankAAD goes into the message's
    /// `authenticated_data` as a SafeAAD struct (set by us, not by openmls: see
    /// `spec-notes/decisions.md`, "Franking").
    pub fn send(
        &mut self,
        dev: &Device,
        content: &[u8],
    ) -> Result<SubmitMessageRequest, ClientError> {
        if let Some(aad) = frank_aad_for(content) {
            self.group.set_aad(safe_aad(&aad));
        }
        let m = mls!(
            "create message",
            self.group
                .create_message(&dev.provider, &dev.signer, content)
        )?;
        let m: Mls<MlsMessageIn> = Mls::encode_from(&m)?;
        self.sent.insert(m.as_bytes().to_vec());
        Ok(SubmitMessageRequest {
            app_message: m,
            sending_uri: MimiUri::parse(dev.user.as_str())
                .map_err(|e| ClientError::Unusable(e.to_string()))?,
        })
    }

    /// Processes one item the hub fanned out (`ROOM-client-process`). Commits whose
    /// AppDataUpdates are resolved with the shared resolver; this device's own commit echoed
    /// back is ignored (it merges on the hub's answer).
    ///
    /// The extras travel with it: a proposal's `moreProposals` are stored after it, and the
    /// hub's `externalProposals` stapled to a commit are stored after the commit (they are
    /// for the new epoch). The returned event is the main message's.
    pub fn process(&mut self, dev: &Device, item: &FanoutMessage) -> Result<Event, ClientError> {
        let (extras, frank) = match &item.extra {
            FanoutExtra::Welcome(_) => return Ok(Event::Ignored),
            FanoutExtra::Application(f) => (&[][..], f.as_ref()),
            FanoutExtra::Proposal(more) | FanoutExtra::Commit(more) => (more.as_slice(), None),
        };
        let event = self.process_message(dev, &item.message, frank, item.timestamp)?;
        for m in extras {
            self.process_message(dev, m, None, item.timestamp)?;
        }
        Ok(event)
    }

    /// The receiver's frank checks of one application message (`PROTO-5.4.1-frank-verify`).
    /// Also used by the sender on the frank of its own message's submit answer.
    pub fn check_frank(
        &self,
        dev: &Device,
        sender: &ClientUri,
        content: &[u8],
        aad: Result<Option<FrankAad>, mimi_wire::WireError>,
        frank: Option<&Frank>,
        accepted_timestamp: u64,
    ) -> FrankCheck {
        let agent = self
            .group
            .public_group()
            .group_context()
            .extensions()
            .app_data_dictionary()
            .and_then(|d| d.dictionary().get(&FRANKING_AGENT));
        crate::franking::verify_on_device(
            dev.provider.crypto(),
            &self.room,
            sender,
            content,
            aad,
            frank,
            accepted_timestamp,
            agent,
        )
    }

    /// `ROOM-policy-active-limits` on the member side: the same check the hub runs, on the
    /// membership the staged commit leads to. A commit the hub should have refused is not
    /// merged.
    fn check_active_limits(
        &self,
        sc: &StagedCommit,
        before: &RoomState,
        after: &RoomState,
        committer: Option<&ClientUri>,
        external: bool,
    ) -> Result<(), ClientError> {
        let removed: Vec<LeafNodeIndex> = sc
            .queued_proposals()
            .filter_map(|q| match (q.proposal(), q.sender()) {
                (Proposal::Remove(r), _) => Some(r.removed()),
                (Proposal::SelfRemove, Sender::Member(i)) => Some(*i),
                _ => None,
            })
            .collect();
        let added: Vec<ClientUri> = sc
            .add_proposals()
            .filter_map(|a| client_of(a.add_proposal().key_package().leaf_node().credential()))
            .collect();
        let list_changed = before.participants != after.participants;
        if removed.is_empty() && added.is_empty() && !external && !list_changed {
            return Ok(());
        }
        let before_clients = self.clients();
        let mut after_clients: Vec<ClientUri> = self
            .group
            .members()
            .filter(|m| !removed.contains(&m.index))
            .filter_map(|m| client_of(&m.credential))
            .collect();
        after_clients.extend(added);
        if external && let Some(c) = committer {
            after_clients.push(c.clone());
        }
        crate::policy::check_active_limits(before, after, &before_clients, &after_clients)
            .map_err(ClientError::Policy)
    }

    /// Processes one MLSMessage of a fanout item.
    fn process_message(
        &mut self,
        dev: &Device,
        message: &Mls<MlsMessageIn>,
        frank: Option<&Frank>,
        accepted_timestamp: u64,
    ) -> Result<Event, ClientError> {
        if self.sent.remove(message.as_bytes()) {
            return Ok(Event::Ignored);
        }
        let msg = message.parse()?;
        let pm = mls!("protocol message", msg.try_into_protocol_message())?;
        // ROOM-late-application: an application message of one of the last PAST_EPOCHS
        // epochs is still read (the hub accepted it before the commit that moved this device
        // on, e.g. this device's own commit); handshakes of another epoch are ignored.
        let (epoch, current) = (pm.epoch().as_u64(), self.group.epoch().as_u64());
        let late_application = pm.content_type() == ContentType::Application
            && epoch < current
            && current - epoch <= PAST_EPOCHS as u64;
        if pm.group_id().as_slice() != self.group.group_id().as_slice()
            || (epoch != current && !late_application)
        {
            // Not silently: a message too old to read is a message this device lost.
            if pm.content_type() == ContentType::Application && epoch < current {
                return Err(ClientError::Unusable(format!(
                    "an application message of epoch {epoch} arrived at epoch {current}: \
                     more than {PAST_EPOCHS} epochs old, its secrets are deleted"
                )));
            }
            return Ok(Event::Ignored);
        }
        let processed = mls!(
            "process message",
            self.group.process_message(&dev.provider, pm)
        )?;
        let sender = client_of(processed.credential());
        let external = matches!(processed.sender(), Sender::NewMemberCommit);
        // PROTO-5.4.1-frank-aad (receive side): a frank_aad item that does not decode is an
        // invalid frank, not a reason to drop the message.
        let aad = frank_aad_of(processed.aad());
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(a) => {
                let sender = sender
                    .ok_or_else(|| ClientError::Unusable("sender without a client URI".into()))?;
                let content = a.into_bytes();
                let frank =
                    self.check_frank(dev, &sender, &content, aad, frank, accepted_timestamp);
                Ok(Event::Message {
                    sender,
                    content,
                    frank,
                })
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                mls!(
                    "store proposal",
                    self.group
                        .store_pending_proposal(dev.provider.storage(), *p)
                )?;
                Ok(Event::Proposal)
            }
            ProcessedMessageContent::ExternalJoinProposalMessage(p) => {
                mls!(
                    "store proposal",
                    self.group
                        .store_pending_proposal(dev.provider.storage(), *p)
                )?;
                Ok(Event::Proposal)
            }
            ProcessedMessageContent::OwnPendingCommit
            | ProcessedMessageContent::OwnPrivateMessage => Ok(Event::Ignored),
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                identity_kept(&self.group, &sc, sender.as_ref())?;
                let state = self.state(dev)?;
                self.check_active_limits(&sc, &state, &state, sender.as_ref(), external)?;
                let removed = sc.self_removed();
                let before = self.operational_bytes(dev);
                mls!(
                    "merge commit",
                    self.group.merge_staged_commit(&dev.provider, *sc)
                )?;
                self.apply_operational(dev, before)?;
                Ok(Event::Commit {
                    epoch: self.epoch(),
                    removed,
                })
            }
            ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
                let state = self.state(dev)?;
                let ops = ops_of(u.app_data_update_proposals());
                let res = state.resolve(&dev.codepoints, &ops)?;
                let changes = updates(self.group.app_data_dictionary_updater(), &res.changes);
                let sc = mls!(
                    "stage app data commit",
                    self.group.stage_app_data_commit(&dev.provider, *u, changes)
                )?;
                identity_kept(&self.group, &sc, sender.as_ref())?;
                self.check_active_limits(&sc, &state, &res.state, sender.as_ref(), external)?;
                let removed = sc.self_removed();
                let before = self.operational_bytes(dev);
                mls!(
                    "merge commit",
                    self.group.merge_staged_commit(&dev.provider, sc)
                )?;
                self.apply_operational(dev, before)?;
                Ok(Event::Commit {
                    epoch: self.epoch(),
                    removed,
                })
            }
        }
    }
}

/// `ROOM-credential-stable` on the member side (the hub checks it too): a commit's UpdatePath
/// may not give the committer's leaf another client URI, and an Update proposal may not give
/// its sender's leaf another one. `group` is still at the epoch before the commit.
fn identity_kept(
    group: &MlsGroup,
    sc: &StagedCommit,
    committer: Option<&ClientUri>,
) -> Result<(), ClientError> {
    let changed = |leaf: &LeafNode, before: Option<&ClientUri>| {
        before.is_some() && client_of(leaf.credential()).as_ref() != before
    };
    if let Some(leaf) = sc.update_path_leaf_node()
        && changed(leaf, committer)
    {
        return Err(ClientError::Unusable(
            "the commit changes the committer's client URI (ROOM-credential-stable)".into(),
        ));
    }
    for u in sc.update_proposals() {
        if let Sender::Member(i) = u.sender() {
            let before = group
                .public_group()
                .leaf(*i)
                .and_then(|l| client_of(l.credential()));
            if changed(u.update_proposal().leaf_node(), before.as_ref()) {
                return Err(ClientError::Unusable(
                    "an Update changes its sender's client URI (ROOM-credential-stable)".into(),
                ));
            }
        }
    }
    Ok(())
}
