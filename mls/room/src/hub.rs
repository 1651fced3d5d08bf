//! The hub's side of a room, over openmls `PublicGroup` (no keys): bootstrap from the
//! creator's GroupInfo and tree, validate every update (MLS validity, epoch, policy, list and
//! membership consistency, the committer's GroupInfo), merge, and say who gets what.

use crate::codepoints::CodePoints;
use crate::mls::{client_of, ops_of, state_of, updates};
use crate::policy::{Denied, DeniedCode, MembershipChange, authorize_commit, authorize_message};
use crate::state::{RoomState, StateError};
use mimi_wire::Mls;
use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::submit::SubmitMessageRequest;
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use std::collections::BTreeSet;

/// Why an update was refused, as the draft's UpdateRoomResponse codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRejection {
    /// `wrongEpoch` with the hub's epoch (`ROOM-hub-epoch`).
    #[error("the room is at epoch {current_epoch}, the handshake is for epoch {sent_epoch}")]
    WrongEpoch {
        /// The hub's epoch.
        current_epoch: u64,
        /// The handshake's epoch.
        sent_epoch: u64,
    },
    /// `notAllowed`.
    #[error("{0}")]
    NotAllowed(String),
    /// `invalidProposal`.
    #[error("{0}")]
    InvalidProposal(String),
}

impl UpdateRejection {
    /// The response to send.
    pub fn response(&self) -> UpdateRoomResponse {
        let outcome = match self {
            Self::WrongEpoch { current_epoch, .. } => UpdateOutcome::WrongEpoch {
                current_epoch: *current_epoch,
            },
            Self::NotAllowed(_) => UpdateOutcome::NotAllowed,
            Self::InvalidProposal(_) => UpdateOutcome::InvalidProposal {
                invalid_proposals: Vec::new(),
            },
        };
        UpdateRoomResponse {
            error_description: self.to_string(),
            outcome,
        }
    }
}

impl From<Denied> for UpdateRejection {
    fn from(d: Denied) -> Self {
        match d.code {
            DeniedCode::NotAllowed => Self::NotAllowed(d.reason),
            DeniedCode::InvalidProposal => Self::InvalidProposal(d.reason),
        }
    }
}

impl From<StateError> for UpdateRejection {
    fn from(e: StateError) -> Self {
        Self::InvalidProposal(e.to_string())
    }
}

/// Why a submitMessage was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRejection {
    /// `epochTooOld` with the hub's epoch.
    #[error("the message is for epoch {sent_epoch}; the room is at {current_epoch}")]
    EpochTooOld {
        /// The hub's epoch.
        current_epoch: u64,
        /// The message's epoch.
        sent_epoch: u64,
    },
    /// `notAllowed`.
    #[error("{0}")]
    NotAllowed(String),
}

/// Why the hub could not set up or use a room (our side or the creator's bytes).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// openmls refused.
    #[error("MLS: {0}")]
    Mls(String),
    /// The room state in the group is not valid.
    #[error(transparent)]
    State(#[from] StateError),
    /// A body is malformed.
    #[error(transparent)]
    Wire(#[from] mimi_wire::WireError),
    /// The creator's group does not fit the room.
    #[error("{0}")]
    Unusable(String),
}

/// What an accepted update means for the fanout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The room's epoch now.
    pub epoch: u64,
    /// Providers that get the handshake: every provider with a client in the group before or
    /// after it (removed clients get the commit that removes them).
    pub providers: BTreeSet<ProviderId>,
    /// The Welcome (as an MLSMessage) and the providers of the clients it adds
    /// (`ROOM-hub-welcome-routing`).
    pub welcome: Option<(Mls<MlsMessageIn>, BTreeSet<ProviderId>)>,
    /// The clients added by the commit.
    pub added: Vec<ClientUri>,
    /// The clients removed by the commit.
    pub removed: Vec<ClientUri>,
}

/// A room as its hub keeps it.
pub struct HubRoom {
    /// The room.
    pub room: RoomUri,
    /// Public group state.
    pub group: PublicGroup,
    /// Its storage (the node persists a snapshot of it).
    pub storage: MemoryStorage,
    crypto: RustCrypto,
    codepoints: CodePoints,
    /// The GroupInfo of the current epoch, as the last committer sent it.
    group_info: GroupInfoOption,
}

fn mls_err(e: impl std::fmt::Debug) -> HubError {
    HubError::Mls(format!("{e:?}"))
}

impl HubRoom {
    /// Starts hosting a room from its creator's GroupInfo and tree (`ROOM-hub-bootstrap`).
    pub fn bootstrap(
        room: RoomUri,
        group_info: &GroupInfoOption,
        tree: &RatchetTreeOption,
    ) -> Result<Self, HubError> {
        let GroupInfoOption::Full(gi) = group_info else {
            return Err(HubError::Unusable(
                "a full GroupInfo is needed to host a room".into(),
            ));
        };
        let RatchetTreeOption::Full(t) = tree else {
            return Err(HubError::Unusable(
                "the full ratchet tree is needed to host a room".into(),
            ));
        };
        let storage = MemoryStorage::default();
        let crypto = RustCrypto::default();
        let (group, _) = PublicGroup::from_external(
            &crypto,
            &storage,
            t.parse()?,
            gi.parse()?,
            ProposalStore::new(),
        )
        .map_err(mls_err)?;
        if group.group_id().as_slice() != room.group().as_str().as_bytes() {
            return Err(HubError::Unusable(format!(
                "the group ID is not {} (the room's group URI)",
                room.group()
            )));
        }
        let codepoints = CodePoints::DRAFT;
        state_of(group.group_context(), &codepoints)?;
        Ok(Self {
            room,
            group,
            storage,
            crypto,
            codepoints,
            group_info: group_info.clone(),
        })
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// Everything the hub keeps of the room, as bytes the node stores (`ROOM-hub-snapshot`):
    /// the openmls public storage entries and the current GroupInfo.
    pub fn snapshot(&self) -> Vec<u8> {
        let values = self
            .storage
            .values
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut entries: Vec<(&Vec<u8>, &Vec<u8>)> = values.iter().collect();
        entries.sort();
        let mut w = mimi_wire::codec::Writer::new();
        w.opaque(self.room.as_str().as_bytes());
        w.vector(&entries, |w, (k, v)| {
            w.opaque(k);
            w.opaque(v);
        });
        self.group_info.write(&mut w);
        w.finish()
    }

    /// Restores a room from [`HubRoom::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Self, HubError> {
        let limits = mimi_wire::Limits {
            max_items: usize::MAX,
            max_opaque: 64 * 1024 * 1024,
            ..mimi_wire::Limits::DEFAULT
        };
        let mut r = mimi_wire::codec::Reader::new(bytes, limits);
        let room = mimi_wire::common::read_room(&mut r, "snapshot.room")?;
        let f = "snapshot.entries";
        let entries = r.vector(f, |r| {
            Ok((r.opaque(usize::MAX, f)?, r.opaque(usize::MAX, f)?))
        })?;
        let group_info = GroupInfoOption::read(&mut r)?;
        r.finish("snapshot")?;
        let storage = MemoryStorage::default();
        storage
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(entries);
        let group_id = GroupId::from_slice(room.group().as_str().as_bytes());
        let group = PublicGroup::load(&storage, &group_id)
            .map_err(mls_err)?
            .ok_or_else(|| {
                HubError::Unusable(format!("the snapshot holds no group {}", room.group()))
            })?;
        Ok(Self {
            room,
            group,
            storage,
            crypto: RustCrypto::default(),
            codepoints: CodePoints::DRAFT,
            group_info,
        })
    }

    /// The room state.
    pub fn state(&self) -> Result<RoomState, StateError> {
        state_of(self.group.group_context(), &self.codepoints)
    }

    /// The clients in the group.
    pub fn clients(&self) -> Vec<ClientUri> {
        self.group
            .members()
            .filter_map(|m| client_of(&m.credential))
            .collect()
    }

    /// Providers with a client in the group (`ROOM-hub-fanout`).
    pub fn providers(&self) -> BTreeSet<ProviderId> {
        self.clients().iter().map(ClientUri::provider).collect()
    }

    /// GroupInfo and tree for an external join (`ROOM-hub-group-info`).
    pub fn group_info_for_join(&self) -> Result<(GroupInfoOption, RatchetTreeOption), HubError> {
        let tree = self
            .group
            .export_ratchet_tree()
            .tls_serialize_detached()
            .map_err(mls_err)?;
        Ok((
            self.group_info.clone(),
            RatchetTreeOption::Full(Mls::from_bytes(tree)?),
        ))
    }

    fn client_at(&self, leaf: LeafNodeIndex) -> Option<ClientUri> {
        self.group
            .leaf(leaf)
            .and_then(|l| client_of(l.credential()))
    }

    /// Validates and applies an update (`ROOM-hub-update`). On `Err` nothing changed.
    pub fn handle_update(&mut self, bundle: &HandshakeBundle) -> Result<Accepted, UpdateRejection> {
        match bundle {
            HandshakeBundle::Commit {
                commit, group_info, ..
            } => self.handle_commit(commit, group_info),
            HandshakeBundle::Proposal {
                proposal,
                more_proposals,
            } => {
                // Check every proposal before storing any.
                let all: Vec<&Mls<MlsMessageIn>> =
                    std::iter::once(proposal).chain(more_proposals).collect();
                let mut processed = Vec::new();
                for p in all {
                    processed.push(self.check_proposal(p)?);
                }
                for p in processed {
                    self.group
                        .add_proposal(&self.storage, p)
                        .map_err(|e| UpdateRejection::InvalidProposal(format!("{e:?}")))?;
                }
                Ok(Accepted {
                    epoch: self.epoch(),
                    providers: self.providers(),
                    ..Default::default()
                })
            }
        }
    }

    fn protocol_message(&self, m: &Mls<MlsMessageIn>) -> Result<ProtocolMessage, UpdateRejection> {
        let msg = m
            .parse()
            .map_err(|e| UpdateRejection::InvalidProposal(e.to_string()))?;
        let pm = msg
            .try_into_protocol_message()
            .map_err(|e| UpdateRejection::InvalidProposal(format!("not a handshake: {e:?}")))?;
        if pm.group_id().as_slice() != self.group.group_id().as_slice() {
            return Err(UpdateRejection::NotAllowed(
                "the handshake is for another group".into(),
            ));
        }
        let sent_epoch = pm.epoch().as_u64();
        if sent_epoch != self.epoch() {
            // ROOM-hub-epoch
            return Err(UpdateRejection::WrongEpoch {
                current_epoch: self.epoch(),
                sent_epoch,
            });
        }
        if !matches!(pm, ProtocolMessage::PublicMessage(_)) {
            return Err(UpdateRejection::NotAllowed(
                "handshakes must be PublicMessages so the hub can check them".into(),
            ));
        }
        Ok(pm)
    }

    fn check_proposal(&self, p: &Mls<MlsMessageIn>) -> Result<QueuedProposal, UpdateRejection> {
        let pm = self.protocol_message(p)?;
        let processed = self
            .group
            .process_message(&self.crypto, pm)
            .map_err(|e| UpdateRejection::NotAllowed(format!("invalid proposal: {e:?}")))?;
        let proposer = match processed.sender() {
            Sender::Member(i) => self.client_at(*i),
            _ => None,
        }
        .ok_or_else(|| {
            UpdateRejection::NotAllowed("only members may send proposals to the hub".into())
        })?;
        let ProcessedMessageContent::ProposalMessage(q) = processed.into_content() else {
            return Err(UpdateRejection::InvalidProposal("not a proposal".into()));
        };
        let state = self.state()?;
        let proposer_user = proposer.user().ok_or_else(|| {
            UpdateRejection::InvalidProposal(format!("{proposer} does not name its user"))
        })?;
        match q.proposal() {
            // Leaving or removing an own client is open to every member, even a banned one
            // (ROOM-7.8-banned-silent).
            Proposal::Remove(r) => {
                let target = self.client_at(r.removed()).and_then(|c| c.user());
                if target.as_ref() != Some(&proposer_user) {
                    let role = state.roles.role(state.role_of(&proposer_user));
                    if !role.is_some_and(|r| r.can(crate::codepoints::cap::CAN_KICK)) {
                        return Err(UpdateRejection::NotAllowed(format!(
                            "{proposer_user} may not propose removing another user's client (canKick required)"
                        )));
                    }
                }
            }
            Proposal::Update(_) => {
                let r = state.role_of(&proposer_user);
                if r == crate::roles::NO_ROLE || r == crate::roles::BANNED {
                    return Err(UpdateRejection::NotAllowed(format!(
                        "{proposer_user} is not an active participant"
                    )));
                }
            }
            other => {
                return Err(UpdateRejection::NotAllowed(format!(
                    "the hub accepts only Remove and Update proposals sent alone, not {:?}",
                    other.proposal_type()
                )));
            }
        }
        Ok(*q)
    }

    fn handle_commit(
        &mut self,
        commit: &Mls<MlsMessageIn>,
        group_info: &GroupInfoOption,
    ) -> Result<Accepted, UpdateRejection> {
        let pm = self.protocol_message(commit)?;
        let processed = self
            .group
            .process_message(&self.crypto, pm)
            .map_err(|e| UpdateRejection::NotAllowed(format!("invalid commit: {e:?}")))?;
        let (committer, external_join) = match processed.sender() {
            Sender::Member(i) => (self.client_at(*i), false),
            Sender::NewMemberCommit => (client_of(processed.credential()), true),
            _ => (None, false),
        };
        let committer = committer.ok_or_else(|| {
            UpdateRejection::NotAllowed("the committer has no MIMI client URI".into())
        })?;
        let committer_user: UserUri = committer.user().ok_or_else(|| {
            UpdateRejection::InvalidProposal(format!("{committer} does not name its user"))
        })?;
        let before = self.state()?;
        let (staged, res) = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                (*sc, before.resolve(&self.codepoints, &[])?)
            }
            ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
                let ops = ops_of(u.app_data_update_proposals());
                let res = before.resolve(&self.codepoints, &ops)?;
                let changes = updates(self.group.app_data_dictionary_updater(), &res.changes);
                let sc = self
                    .group
                    .stage_app_data_commit(&self.crypto, *u, changes)
                    .map_err(|e| UpdateRejection::InvalidProposal(format!("{e:?}")))?;
                (sc, res)
            }
            _ => return Err(UpdateRejection::InvalidProposal("not a commit".into())),
        };

        // MLS membership changes.
        let mut added = Vec::new();
        for a in staged.add_proposals() {
            let c = client_of(a.add_proposal().key_package().leaf_node().credential()).ok_or_else(
                || {
                    UpdateRejection::InvalidProposal(
                        "an added client has no MIMI client URI".into(),
                    )
                },
            )?;
            added.push(c);
        }
        let mut removed = Vec::new();
        for r in staged.remove_proposals() {
            let c = self
                .client_at(r.remove_proposal().removed())
                .ok_or_else(|| {
                    UpdateRejection::InvalidProposal("a removed leaf has no MIMI client URI".into())
                })?;
            let own = match r.sender() {
                Sender::Member(i) => self.client_at(*i).and_then(|p| p.user()) == c.user(),
                _ => false,
            };
            removed.push((c, own));
        }
        let mut remaining: Vec<ClientUri> = self
            .clients()
            .into_iter()
            .filter(|c| !removed.iter().any(|(r, _)| r == c))
            .collect();
        remaining.extend(added.iter().cloned());
        if external_join {
            remaining.push(committer.clone());
        }
        let change = MembershipChange {
            added: added.clone(),
            removed: removed.clone(),
            external_join,
            remaining,
        };
        authorize_commit(&before, &res, &change, &committer_user)?;

        // The committer's GroupInfo must describe exactly the staged epoch (DESIGN.md).
        let gi = match group_info {
            GroupInfoOption::Full(gi) => gi,
            GroupInfoOption::Partial(_) => {
                return Err(UpdateRejection::NotAllowed(
                    "a partial GroupInfo cannot be checked; send the full GroupInfo".into(),
                ));
            }
        };
        let key = match (
            staged.update_path_leaf_node(),
            processed_sender_leaf(&self.group, &committer),
        ) {
            (Some(leaf), _) => leaf.signature_key().clone(),
            (None, Some(key)) => key,
            (None, None) => {
                return Err(UpdateRejection::InvalidProposal(
                    "no signature key for the committer".into(),
                ));
            }
        };
        let vgi = gi
            .parse()
            .map_err(|e| UpdateRejection::InvalidProposal(e.to_string()))?;
        let pk = OpenMlsSignaturePublicKey::from_signature_key(
            key,
            self.group.ciphersuite().signature_algorithm(),
        );
        let verified: openmls::messages::group_info::GroupInfo =
            vgi.verify(&self.crypto, &pk).map_err(|_| {
                UpdateRejection::InvalidProposal(
                    "the GroupInfo is not signed by the committer (ROOM-hub-groupinfo-check)"
                        .into(),
                )
            })?;
        if verified.group_context() != staged.group_context() {
            // ROOM-hub-groupinfo-check
            return Err(UpdateRejection::InvalidProposal(
                "the GroupInfo does not match the commit's new GroupContext (ROOM-hub-groupinfo-check)".into(),
            ));
        }

        let mut providers: BTreeSet<ProviderId> = self.providers();
        self.group
            .merge_commit(&self.storage, staged)
            .map_err(|e| UpdateRejection::InvalidProposal(format!("{e:?}")))?;
        self.group_info = group_info.clone();
        for c in &added {
            providers.remove(&c.provider());
        }
        for c in self.clients() {
            if !added.contains(&c) {
                providers.insert(c.provider());
            }
        }
        Ok(Accepted {
            epoch: self.epoch(),
            providers,
            welcome: None,
            added,
            removed: removed.into_iter().map(|(c, _)| c).collect(),
        })
    }

    /// Attaches the Welcome of an accepted commit bundle to its fanout plan.
    pub fn welcome_of(bundle: &HandshakeBundle, accepted: &mut Accepted) -> Result<(), HubError> {
        if let HandshakeBundle::Commit {
            welcome: Some(w), ..
        } = bundle
        {
            // An MLSMessage is version (1) and wire format (3 = welcome) before the struct.
            let mut bytes = vec![0, 1, 0, 3];
            bytes.extend_from_slice(w.as_bytes());
            let providers = accepted.added.iter().map(ClientUri::provider).collect();
            accepted.welcome = Some((Mls::from_bytes(bytes)?, providers));
        }
        Ok(())
    }

    /// Checks a submitMessage (`ROOM-hub-submit`): the room's epoch (older: epochTooOld; newer:
    /// notAllowed), a sender that is an active participant with a client in the group and
    /// canSendMessage.
    pub fn check_submit(&self, req: &SubmitMessageRequest) -> Result<(), SubmitRejection> {
        let h = mimi_wire::mls_kind::header(&req.app_message)
            .map_err(|e| SubmitRejection::NotAllowed(e.to_string()))?;
        let Some((group_id, epoch)) = h.group else {
            return Err(SubmitRejection::NotAllowed("not a group message".into()));
        };
        if group_id != self.group.group_id().as_slice() {
            return Err(SubmitRejection::NotAllowed(
                "the message is for another group".into(),
            ));
        }
        let current = self.epoch();
        if epoch < current {
            return Err(SubmitRejection::EpochTooOld {
                current_epoch: current,
                sent_epoch: epoch,
            });
        }
        if epoch > current {
            return Err(SubmitRejection::NotAllowed(format!(
                "epoch {epoch} is ahead of the room ({current})"
            )));
        }
        let user = UserUri::parse(req.sending_uri.as_str())
            .map_err(|e| SubmitRejection::NotAllowed(e.to_string()))?;
        let state = self
            .state()
            .map_err(|e| SubmitRejection::NotAllowed(e.to_string()))?;
        authorize_message(&state, &user).map_err(|d| SubmitRejection::NotAllowed(d.reason))?;
        if !self
            .clients()
            .iter()
            .any(|c| c.user().as_ref() == Some(&user))
        {
            return Err(SubmitRejection::NotAllowed(format!(
                "{user} has no client in the group"
            )));
        }
        Ok(())
    }
}

fn processed_sender_leaf(group: &PublicGroup, committer: &ClientUri) -> Option<SignaturePublicKey> {
    group
        .members()
        .find(|m| client_of(&m.credential).as_ref() == Some(committer))
        .map(|m| m.signature_key.into())
}
