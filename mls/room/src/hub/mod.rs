//! The hub's side of a room, over openmls `PublicGroup` (no keys): bootstrap from the
//! creator's GroupInfo and tree, validate every update (MLS validity, epoch, policy, list and
//! membership consistency, the committer's GroupInfo), merge, and say who gets what.

mod commit;
mod entries;
mod external;
mod snapshot;
pub use entries::{EntryChanges, EntryError, EntryStorage};
pub use snapshot::Persist;
mod view;
mod welcome;

use crate::codepoints::CodePoints;
use crate::mls::client_of;
use crate::policy::{Denied, DeniedCode, authorize_message};
use crate::state::{RoomState, StateError};
use mimi_wire::Mls;
use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
use mimi_wire::group_info::PendingProposal;
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::submit::SubmitMessageRequest;
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use std::collections::BTreeSet;

/// A proposal named in an `invalidProposal` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedProposal {
    /// The proposal type (RFC 9420 / mls-extensions code point).
    pub proposal_type: u16,
    /// Its ProposalRef when it was sent by reference (RFC 9420 §5.2); a proposal carried by
    /// value in a commit has none.
    pub reference: Option<Vec<u8>>,
}

/// Why an update was refused, named after the draft's UpdateRoomResponse codes so that the
/// node maps them 1:1 onto the wire (`UpdateResponseCode`).
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
    /// `invalidProposal`, naming the proposals at fault where the hub can tell them apart.
    #[error("{reason}")]
    InvalidProposal {
        /// What is wrong, for people.
        reason: String,
        /// The proposals at fault (may be empty when the fault is the commit as a whole).
        proposals: Vec<NamedProposal>,
    },
}

impl UpdateRejection {
    /// `invalidProposal` without a particular proposal.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidProposal {
            reason: reason.into(),
            proposals: Vec::new(),
        }
    }

    /// The response to send.
    pub fn response(&self) -> UpdateRoomResponse {
        let outcome = match self {
            Self::WrongEpoch { current_epoch, .. } => UpdateOutcome::WrongEpoch {
                current_epoch: *current_epoch,
            },
            Self::NotAllowed(_) => UpdateOutcome::NotAllowed,
            Self::InvalidProposal { proposals, .. } => UpdateOutcome::InvalidProposal {
                invalid_proposals: proposals
                    .iter()
                    .filter_map(|p| p.reference.clone())
                    .collect(),
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
            DeniedCode::InvalidProposal => Self::invalid(d.reason),
        }
    }
}

impl From<StateError> for UpdateRejection {
    fn from(e: StateError) -> Self {
        Self::invalid(e.to_string())
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
    /// The KeyPackageRef of every KeyPackage the commit adds, with its client; the Welcome's
    /// secrets are exactly these (`ROOM-hub-welcome-complete`).
    pub added_key_packages: Vec<(Vec<u8>, ClientUri)>,
    /// Clients whose removal the hub had proposed in the epoch an external commit ended
    /// without committing it, and who are still in the group: the hub proposes them again
    /// ([`HubRoom::propose_remove`]) and staples the proposals to the commit's fanout
    /// (`ROOM-hub-regenerate`).
    pub invalidated_hub_removals: Vec<ClientUri>,
}

/// A room as its hub keeps it.
pub struct HubRoom {
    /// The room.
    pub room: RoomUri,
    /// Public group state.
    pub group: PublicGroup,
    /// Its openmls storage, as entries the node persists as they change
    /// (`ROOM-hub-entries`).
    pub storage: EntryStorage,
    pub(crate) crypto: RustCrypto,
    pub(crate) codepoints: CodePoints,
    /// The GroupInfo of the current epoch, as the last committer sent it.
    pub(crate) group_info: GroupInfoOption,
    /// The decoded state and member URIs of the current epoch.
    pub(crate) view: view::View,
    /// The proposals accepted in the current epoch, in the order accepted, with the time the
    /// hub accepted each (`PROTO-5.6-pending`: groupInfo hands them to joiners).
    pub(crate) pending: Vec<PendingProposal>,
    /// When the hub first saw each of the room's join links (ms), for their expiration
    /// (`ROOM-join-links`).
    pub(crate) link_times: Vec<(Vec<u8>, u64)>,
    /// Clients that presented a valid joining code at groupInfo, with the link and until when
    /// the grant holds (`PROTO-5.6-joining-code`).
    pub(crate) grants: Vec<JoinGrant>,
    /// Conformance testing only (`[faults] join_link_reuse`): accept a code join that keeps a
    /// single-use link. Never set otherwise; not persisted.
    pub fault_join_link_reuse: bool,
    /// Conformance testing only (`[faults] external_commit_removes_any_leaf`): accept an
    /// external commit whose Remove is of another client than the joiner (breaks
    /// `ROOM-resync`). Never set otherwise; not persisted.
    pub fault_external_commit_removes_any_leaf: bool,
    /// Conformance testing only (`[faults] operational_policy_ignored`): the room's MLS
    /// operational parameters are not enforced (breaks `ROOM-policy-operational-*`). Never set
    /// otherwise; not persisted.
    pub fault_operational_ignored: bool,
}

/// A joining code accepted at groupInfo, waiting for the joiner's external commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinGrant {
    /// The client that asked.
    pub client: ClientUri,
    /// The `requestingSignatureKey` its request was signed with: the external commit's new
    /// leaf must carry it. Empty only in grants restored from a head written before keys
    /// were kept (format 0x0002; such a grant matches any key of the client).
    pub signature_key: Vec<u8>,
    /// The link whose code it presented.
    pub link: Vec<u8>,
    /// Until when (ms) its external commit may use the grant.
    pub until_ms: u64,
}

impl JoinGrant {
    /// Whether an external commit by `client` with a leaf of `signature_key` at `now_ms` may
    /// use this grant.
    pub fn matches(&self, client: &ClientUri, signature_key: &[u8], now_ms: u64) -> bool {
        self.client == *client
            && self.until_ms > now_ms
            && (self.signature_key.is_empty() || self.signature_key == signature_key)
    }
}

/// How long a joiner has from groupInfo to its external commit (ms).
pub const GRANT_TTL_MS: u64 = 10 * 60 * 1000;

/// Milliseconds since the Unix epoch, for callers that do not pass a clock.
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
        let storage = EntryStorage::default();
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
        let view = view::View::build(&group, &codepoints)?;
        Ok(Self {
            room,
            group,
            storage,
            crypto,
            codepoints,
            group_info: group_info.clone(),
            link_times: Vec::new(),
            grants: Vec::new(),
            fault_join_link_reuse: false,
            fault_external_commit_removes_any_leaf: false,
            fault_operational_ignored: false,
            view,
            pending: Vec::new(),
        }
        .with_link_times(wall_ms()))
    }

    /// The proposals the hub accepted in the current epoch, with their acceptance times
    /// (`PROTO-5.6-pending`): a member's commit must include them (`ROOM-hub-queued`), and a
    /// joiner gets them with the GroupInfo so that its external commit can include the
    /// SelfRemoves among them.
    pub fn pending_proposals(&self) -> &[PendingProposal] {
        &self.pending
    }

    fn with_link_times(mut self, now_ms: u64) -> Self {
        self.refresh_link_times(now_ms);
        self
    }

    /// Keeps the first-seen time of every link still listed; new links are seen `now_ms`.
    pub(crate) fn refresh_link_times(&mut self, now_ms: u64) {
        let links = &self.view.state.join.links.links;
        self.link_times.retain(|(l, _)| links.contains(l));
        for l in links {
            if !self.link_times.iter().any(|(k, _)| k == l) {
                self.link_times.push((l.clone(), now_ms));
            }
        }
    }

    /// Whether `code` is a join link of the room that admits a join now
    /// (`PROTO-5.6-joining-code`, room-policy-03 canUseJoinCode): the room has a join link
    /// policy, lists the link, the link has not expired, and role 0 holds canUseJoinCode.
    pub fn check_join_code(&self, code: &[u8], now_ms: u64) -> Result<(), String> {
        let state = &self.view.state;
        let policy = state
            .join
            .policy
            .as_ref()
            .ok_or("the room has no join link policy")?;
        if state.join.links.index_of(code).is_none() {
            return Err("the code is not one of the room's join links (revoked or used?)".into());
        }
        if policy.expiration > 0 {
            let since = self
                .link_times
                .iter()
                .find(|(l, _)| l == code)
                .map_or(0, |(_, t)| *t);
            let until = since.saturating_add(u64::from(policy.expiration) * 1000);
            if now_ms >= until {
                return Err(format!(
                    "the join link expired (links last {} s)",
                    policy.expiration
                ));
            }
        }
        let r0 = state
            .roles
            .role(crate::roles::NO_ROLE)
            .ok_or("the room defines no role 0")?;
        if !r0.can(crate::codepoints::cap::CAN_USE_JOIN_CODE) {
            return Err("role 0 does not hold canUseJoinCode".into());
        }
        Ok(())
    }

    /// Records that `client` was given the GroupInfo, with the valid joining `code` it
    /// presented (checked with [`HubRoom::check_join_code`]; empty for none): its external
    /// commit within [`GRANT_TTL_MS`] is accepted as that requester's, and joins with the
    /// code's authority.
    pub fn grant_join(
        &mut self,
        client: &ClientUri,
        signature_key: &[u8],
        code: &[u8],
        now_ms: u64,
    ) {
        self.grants
            .retain(|g| g.until_ms > now_ms && g.client != *client);
        self.grants.push(JoinGrant {
            client: client.clone(),
            signature_key: signature_key.to_vec(),
            link: code.to_vec(),
            until_ms: now_ms.saturating_add(GRANT_TTL_MS),
        });
    }

    /// Whether `client` asked for the GroupInfo (and was authorised) within the last
    /// [`GRANT_TTL_MS`]: an external commit must come from such a requester (protocol-06
    /// §7.7 step 3, `PROTO-5.6-requester`).
    /// The grant must be for the same signature key as the commit's new leaf: a client URI
    /// alone could be claimed by any device of the provider that built the commit from a
    /// GroupInfo another device asked for.
    pub fn has_join_grant(&self, client: &ClientUri, signature_key: &[u8], now_ms: u64) -> bool {
        self.grants
            .iter()
            .any(|g| g.matches(client, signature_key, now_ms))
    }

    /// [`HubRoom::has_join_grant`] by client URI only (for the node's deliberate fault
    /// `external_commit_any_key`, never otherwise).
    pub fn has_join_grant_any_key(&self, client: &ClientUri, now_ms: u64) -> bool {
        self.grants
            .iter()
            .any(|g| g.client == *client && g.until_ms > now_ms)
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The room state (of the current epoch; the `Result` is kept for callers that decoded
    /// it from the group before the view existed).
    pub fn state(&self) -> Result<RoomState, StateError> {
        Ok(self.view.state.clone())
    }

    /// The franking signature key the room's `franking_agent` component names, if any
    /// (`PROTO-5.4.1-frank-agent-key`: the hub franks with the key the room names).
    pub fn franking_agent_key(&self) -> Option<Vec<u8>> {
        crate::franking::agent_key(
            self.group
                .group_context()
                .extensions()
                .app_data_dictionary()
                .and_then(|d| d.dictionary().get(&mimi_wire::franking::FRANKING_AGENT)),
        )
    }

    /// The room state, borrowed.
    pub fn room_state(&self) -> &RoomState {
        &self.view.state
    }

    /// The clients in the group (in leaf order).
    pub fn clients(&self) -> Vec<ClientUri> {
        self.view.clients().cloned().collect()
    }

    /// Providers with a client in the group (`ROOM-hub-fanout`).
    pub fn providers(&self) -> BTreeSet<ProviderId> {
        self.view.clients().map(ClientUri::provider).collect()
    }

    /// Providers that get an application message (`ROOM-8-receive`): those with a client
    /// whose user holds canReceiveMessage (room-policy-03 §8: the hub withholds fanout from
    /// the others).
    pub fn message_providers(&self) -> BTreeSet<ProviderId> {
        let state = &self.view.state;
        self.view
            .clients()
            .filter(|c| {
                c.user().is_some_and(|u| {
                    state
                        .roles
                        .role(state.role_of(&u))
                        .is_some_and(|r| r.can(crate::codepoints::cap::CAN_RECEIVE_MESSAGE))
                })
            })
            .map(ClientUri::provider)
            .collect()
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

    pub(crate) fn client_at(&self, leaf: LeafNodeIndex) -> Option<ClientUri> {
        self.view.client_at(leaf).cloned()
    }

    /// Validates and applies an update (`ROOM-hub-update`) at the wall clock. On `Err`
    /// nothing changed.
    pub fn handle_update(&mut self, bundle: &HandshakeBundle) -> Result<Accepted, UpdateRejection> {
        self.handle_update_at(bundle, wall_ms())
    }

    /// Validates and applies an update (`ROOM-hub-update`); `now_ms` is recorded as the
    /// acceptance time of the proposals it carries. On `Err` nothing changed.
    pub fn handle_update_at(
        &mut self,
        bundle: &HandshakeBundle,
        now_ms: u64,
    ) -> Result<Accepted, UpdateRejection> {
        match bundle {
            HandshakeBundle::Commit {
                commit,
                group_info,
                welcome,
                ..
            } => self.handle_commit(commit, group_info, welcome.as_ref(), now_ms),
            HandshakeBundle::Proposal {
                proposal,
                more_proposals,
            } => {
                // Check every proposal before storing any.
                let all: Vec<&Mls<MlsMessageIn>> =
                    std::iter::once(proposal).chain(more_proposals).collect();
                let mut processed = Vec::new();
                for p in &all {
                    processed.push(self.check_proposal(p)?);
                }
                for p in processed {
                    self.group
                        .add_proposal(&self.storage, p)
                        .map_err(|e| UpdateRejection::invalid(format!("{e:?}")))?;
                }
                self.pending
                    .extend(all.into_iter().map(|p| PendingProposal {
                        proposal: p.clone(),
                        hub_accepted_time: now_ms,
                    }));
                Ok(Accepted {
                    epoch: self.epoch(),
                    providers: self.providers(),
                    ..Default::default()
                })
            }
        }
    }

    pub(crate) fn protocol_message(
        &self,
        m: &Mls<MlsMessageIn>,
    ) -> Result<ProtocolMessage, UpdateRejection> {
        let msg = m
            .parse()
            .map_err(|e| UpdateRejection::invalid(e.to_string()))?;
        let pm = msg
            .try_into_protocol_message()
            .map_err(|e| UpdateRejection::invalid(format!("not a handshake: {e:?}")))?;
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
        // ROOM-policy-operational-handshake
        if let Some(p) = &self.view.state.policies.operational
            && !self.fault_operational_ignored
        {
            crate::operational::check_handshake_format(
                p,
                mimi_wire::operational::WIRE_FORMAT_PUBLIC_MESSAGE,
            )
            .map_err(UpdateRejection::NotAllowed)?;
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
            return Err(UpdateRejection::invalid("not a proposal"));
        };
        let state = &self.view.state;
        if let Some(p) = &state.policies.operational
            && !self.fault_operational_ignored
        {
            // ROOM-policy-operational-proposals, -leaves
            crate::operational::check_proposal_type(p, u16::from(q.proposal().proposal_type()))
                .map_err(UpdateRejection::NotAllowed)?;
            if let Proposal::Update(u) = q.proposal() {
                let v = crate::operational::leaf_view(u.leaf_node());
                crate::operational::check_leaf(p, proposer.as_str(), &v, false)
                    .map_err(UpdateRejection::NotAllowed)?;
            }
        }
        let proposer_user = proposer.user().ok_or_else(|| {
            UpdateRejection::invalid(format!("{proposer} does not name its user"))
        })?;
        match q.proposal() {
            // Leaving (SelfRemove) is open to every member, even a banned one
            // (ROOM-7.8-banned-silent, mls-extensions SelfRemove).
            Proposal::SelfRemove => {}
            // Removing an own client is open to every member, even a banned one
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
            Proposal::Update(u) => {
                // ROOM-credential-stable
                if client_of(u.leaf_node().credential()).as_ref() != Some(&proposer) {
                    return Err(UpdateRejection::invalid(
                        "an Update may not change its sender's client URI (ROOM-credential-stable)",
                    ));
                }
                let r = state.role_of(&proposer_user);
                if r == crate::roles::NO_ROLE || r == crate::roles::BANNED {
                    return Err(UpdateRejection::NotAllowed(format!(
                        "{proposer_user} is not an active participant"
                    )));
                }
            }
            other => {
                return Err(UpdateRejection::NotAllowed(format!(
                    "the hub accepts only Remove, SelfRemove and Update proposals sent alone, not {:?}",
                    other.proposal_type()
                )));
            }
        }
        Ok(*q)
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
        // ROOM-hub-submit-sender-first: who sends is checked before the epoch, so that a
        // non-participant learns nothing about the room (not even its epoch) and a banned user
        // gets notAllowed, not epochTooOld.
        let user = UserUri::parse(req.sending_uri.as_str())
            .map_err(|e| SubmitRejection::NotAllowed(e.to_string()))?;
        authorize_message(&self.view.state, &user)
            .map_err(|d| SubmitRejection::NotAllowed(d.reason))?;
        if !self.view.users.contains_key(&user) {
            return Err(SubmitRejection::NotAllowed(format!(
                "{user} has no client in the group"
            )));
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
        Ok(())
    }
}
