//! Room state: the components of the GroupContext's `app_data_dictionary`, decoded, and the
//! one deterministic resolver of AppDataUpdate proposals that the committer, every member and
//! the hub run on the same input (`ROOM-resolve-deterministic`, DESIGN.md).

use crate::codepoints::CodePoints;
use crate::preauth::PreAuthData;
use crate::roles::{BaseRoomPolicy, RoleData};
use crate::room_policy::PolicyComponents;
use mimi_wire::codec::{Body, WireError};
use mimi_wire::components::{ApplyError, ParticipantListData, ParticipantListUpdate, RoomMetaData};
use mimi_wire::id::UserUri;
use std::collections::BTreeSet;

/// The room's state as the group agrees on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomState {
    /// Participant list (0x0022).
    pub participants: ParticipantListData,
    /// Room metadata (0x0023), if set.
    pub metadata: Option<RoomMetaData>,
    /// Roles (roles_list).
    pub roles: RoleData,
    /// Base policy (base_room_policy).
    pub base: BaseRoomPolicy,
    /// The preauthorization list, kept as the bytes of a valid `PreAuthData` (decoded by
    /// [`RoomState::preauth_data`] where it is consulted, `ROOM-policy-preauth`).
    pub preauth: Option<Vec<u8>>,
    /// The room-policy-03 §6 components clients notice (`ROOM-policy-*`).
    pub policies: PolicyComponents,
    /// Join link policy and links (`ROOM-join-links`).
    pub join: crate::join_links::JoinState,
}

/// Why the dictionary or an update is not valid room state (`invalidProposal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A component is missing.
    #[error("the group has no {0} component")]
    Missing(&'static str),
    /// A component does not decode.
    #[error("the {component} component does not decode: {error}")]
    Decode {
        /// Which.
        component: &'static str,
        /// Why.
        error: WireError,
    },
    /// An update to a component we do not know.
    #[error("AppDataUpdate for unknown component {0:#06x}")]
    UnknownComponent(u16),
    /// A `remove` of a component that must stay.
    #[error("AppDataUpdate removes the {0} component, which a room must keep")]
    RemoveNotAllowed(&'static str),
    /// A participant-list delta that does not apply.
    #[error("participant list update: {0}")]
    Apply(#[from] ApplyError),
    /// A join-links delta that does not apply.
    #[error("join links update: {0}")]
    JoinLinks(#[from] crate::join_links::JoinLinksError),
    /// Two wholesale updates of one component in one commit.
    #[error("more than one update of the {0} component in one commit")]
    TwoUpdates(&'static str),
    /// A roles update together with a participant-list change (room-policy-03 §4).
    #[error("a roles update may not be in the same commit as a participant list change")]
    RolesWithListChange,
    /// A preauthorization update together with a participant-list change other than
    /// removals (room-policy-03 §4, `ROOM-policy-preauth`).
    #[error(
        "a preauthorization list update may not be in the same commit as a participant list change other than removals"
    )]
    PreauthWithListChange,
    /// A history policy naming a role that may not share (room-policy-03 §6.6: roles 0 and 1
    /// and roles with a maximum of 0 active participants; `ROOM-policy-history`).
    #[error("role {0} may not share history (it may have no active participants)")]
    HistoryRole(u32),
    /// A bot of the bot policy acts in a role the room does not define
    /// (`ROOM-policy-bots`).
    #[error("bot {name:?} acts in role {role}, which the room does not define")]
    BotRole {
        /// The bot's name.
        name: String,
        /// Its `bot_role_index`.
        role: u32,
    },
}

/// Limits for room state components (`ROOM-state-limits`): the bytes come out of the
/// GroupContext the MLS layer already accepted (so their size is bounded by it); lists of a
/// room's participants hold as many entries as the room has users, far more than the 1,024
/// items a protocol body may carry.
pub const STATE_LIMITS: mimi_wire::Limits = mimi_wire::Limits {
    max_items: 1 << 20,
    ..mimi_wire::Limits::DEFAULT
};

fn decode<T: Body>(component: &'static str, b: &[u8]) -> Result<T, StateError> {
    T::decode_with(b, STATE_LIMITS).map_err(|error| StateError::Decode { component, error })
}

/// One AppDataUpdate, as openmls hands them over (sorted by component, commit order within).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentOp {
    /// `update` with its payload.
    Update(u16, Vec<u8>),
    /// `remove`.
    Remove(u16),
}

/// The outcome of resolving a commit's AppDataUpdates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The state after the commit.
    pub state: RoomState,
    /// The participant-list deltas, in order.
    pub list_updates: Vec<ParticipantListUpdate>,
    /// Whether metadata, roles or base policy changed.
    pub metadata_changed: bool,
    /// Roles changed.
    pub roles_changed: bool,
    /// Base policy changed.
    pub base_changed: bool,
    /// The join link policy changed.
    pub join_policy_changed: bool,
    /// The join links changed (added and removed links, in order).
    pub join_links_updates: Vec<crate::join_links::JoinLinksUpdate>,
    /// The new bytes of every touched component (what `AppDataDictionaryUpdater::set` gets).
    pub changes: Vec<(u16, Vec<u8>)>,
    /// The §6 policy components (`room_policy`) that changed, by component ID.
    pub policies_changed: Vec<u16>,
}

impl RoomState {
    /// Reads the state from the dictionary (`get(component_id)`).
    pub fn from_dictionary<'a>(
        cp: &CodePoints,
        get: impl Fn(u16) -> Option<&'a [u8]>,
    ) -> Result<Self, StateError> {
        let participants = decode(
            "participant list",
            get(cp.participant_list).ok_or(StateError::Missing("participant list"))?,
        )?;
        let metadata = match get(cp.room_metadata) {
            Some(b) => Some(decode("room metadata", b)?),
            None => None,
        };
        let roles = decode(
            "roles list",
            get(cp.roles_list).ok_or(StateError::Missing("roles list"))?,
        )?;
        let base = decode(
            "base room policy",
            get(cp.base_room_policy).ok_or(StateError::Missing("base room policy"))?,
        )?;
        let join = crate::join_links::JoinState {
            policy: match get(cp.join_link_policy) {
                Some(b) => Some(decode("join link policy", b)?),
                None => None,
            },
            links: match get(cp.join_links) {
                Some(b) => decode("join links", b)?,
                None => Default::default(),
            },
        };
        Ok(Self {
            participants,
            metadata,
            roles,
            base,
            preauth: get(cp.preauth_list).map(<[u8]>::to_vec),
            policies: PolicyComponents::from_dictionary(cp, &get)?,
            join,
        })
    }

    /// The decoded preauthorization list, if the room has one (`ROOM-policy-preauth`).
    pub fn preauth_data(&self) -> Result<Option<PreAuthData>, StateError> {
        self.preauth
            .as_deref()
            .map(|b| decode("preauthorization list", b))
            .transpose()
    }

    /// The components to put in a new group's dictionary.
    pub fn components(&self, cp: &CodePoints) -> Vec<(u16, Vec<u8>)> {
        let mut v = vec![
            (cp.participant_list, self.participants.encode()),
            (cp.roles_list, self.roles.encode()),
            (cp.base_room_policy, self.base.encode()),
        ];
        if let Some(m) = &self.metadata {
            v.push((cp.room_metadata, m.encode()));
        }
        if let Some(p) = &self.preauth {
            v.push((cp.preauth_list, p.clone()));
        }
        v.extend(self.policies.components(cp));
        if let Some(p) = &self.join.policy {
            v.push((cp.join_link_policy, p.encode()));
            v.push((cp.join_links, self.join.links.encode()));
        }
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// A user's role: 0 when not listed.
    pub fn role_of(&self, user: &UserUri) -> u32 {
        self.participants
            .role_of(user)
            .unwrap_or(crate::roles::NO_ROLE)
    }

    /// Resolves a commit's AppDataUpdates into the next state (`ROOM-resolve-deterministic`):
    /// participant-list deltas apply in order and may touch a user once across all of them
    /// (protocol-06 §7.5); metadata, roles and base policy are replaced wholesale, at most once
    /// each; a roles update may not come with a list change; unknown components and removals
    /// of required components are refused.
    pub fn resolve(&self, cp: &CodePoints, ops: &[ComponentOp]) -> Result<Resolution, StateError> {
        let mut next = self.clone();
        let mut list_updates = Vec::new();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut policies_changed: Vec<u16> = Vec::new();
        let (mut metadata_changed, mut roles_changed, mut base_changed, mut preauth_changed) =
            (false, false, false, false);
        let mut join_policy_changed = false;
        let mut join_links_updates = Vec::new();
        for op in ops {
            match op {
                ComponentOp::Update(id, bytes) if *id == cp.participant_list => {
                    let u: ParticipantListUpdate = decode("participant list update", bytes)?;
                    for user in touched_users(&next.participants, &u) {
                        if !touched.insert(user.clone()) {
                            return Err(ApplyError::TouchedTwice { user }.into());
                        }
                    }
                    next.participants = next.participants.apply(&u)?;
                    list_updates.push(u);
                }
                ComponentOp::Update(id, bytes) if *id == cp.room_metadata => {
                    if metadata_changed {
                        return Err(StateError::TwoUpdates("room metadata"));
                    }
                    next.metadata = Some(decode("room metadata", bytes)?);
                    metadata_changed = true;
                }
                ComponentOp::Update(id, bytes) if *id == cp.roles_list => {
                    if roles_changed {
                        return Err(StateError::TwoUpdates("roles list"));
                    }
                    next.roles = decode("roles list", bytes)?;
                    roles_changed = true;
                }
                ComponentOp::Update(id, bytes) if *id == cp.base_room_policy => {
                    if base_changed {
                        return Err(StateError::TwoUpdates("base room policy"));
                    }
                    next.base = decode("base room policy", bytes)?;
                    base_changed = true;
                }
                ComponentOp::Update(id, bytes) if *id == cp.preauth_list => {
                    if preauth_changed {
                        return Err(StateError::TwoUpdates("preauthorization list"));
                    }
                    // ROOM-policy-preauth: only a valid PreAuthData is kept.
                    decode::<PreAuthData>("preauthorization list", bytes)?;
                    next.preauth = Some(bytes.clone());
                    preauth_changed = true;
                }
                ComponentOp::Update(id, bytes) if *id == cp.join_link_policy => {
                    if join_policy_changed {
                        return Err(StateError::TwoUpdates("join link policy"));
                    }
                    next.join.policy = Some(decode("join link policy", bytes)?);
                    join_policy_changed = true;
                }
                // ROOM-join-links: JoinLinksUpdate is a delta, applied in commit order.
                ComponentOp::Update(id, bytes) if *id == cp.join_links => {
                    let u: crate::join_links::JoinLinksUpdate = decode("join links update", bytes)?;
                    next.join.links = next.join.links.apply(&u)?;
                    join_links_updates.push(u);
                }
                ComponentOp::Remove(id) if *id == cp.join_link_policy || *id == cp.join_links => {
                    return Err(StateError::RemoveNotAllowed(
                        "join link (update it instead: an empty list, or a policy)",
                    ));
                }
                // ROOM-resolve-deterministic: metadata is replaced, never removed (a removal
                // would need `AppDataDictionaryUpdater::remove` on every side; an update
                // with empty fields says the same).
                ComponentOp::Remove(id) if *id == cp.room_metadata => {
                    return Err(StateError::RemoveNotAllowed("room metadata"));
                }
                ComponentOp::Remove(id) if *id == cp.participant_list => {
                    return Err(StateError::RemoveNotAllowed("participant list"));
                }
                ComponentOp::Remove(id) if *id == cp.roles_list => {
                    return Err(StateError::RemoveNotAllowed("roles list"));
                }
                ComponentOp::Remove(id) if *id == cp.base_room_policy => {
                    return Err(StateError::RemoveNotAllowed("base room policy"));
                }
                // ROOM-policy-*: the §6 components are replaced wholesale, at most once each.
                ComponentOp::Update(id, bytes) if PolicyComponents::name(cp, *id).is_some() => {
                    if policies_changed.contains(id) {
                        return Err(StateError::TwoUpdates(
                            PolicyComponents::name(cp, *id).unwrap_or("policy"),
                        ));
                    }
                    next.policies.set(cp, *id, bytes)?;
                    policies_changed.push(*id);
                }
                ComponentOp::Remove(id) if PolicyComponents::name(cp, *id).is_some() => {
                    return Err(StateError::RemoveNotAllowed(
                        PolicyComponents::name(cp, *id).unwrap_or("policy"),
                    ));
                }
                ComponentOp::Update(id, _) | ComponentOp::Remove(id) => {
                    return Err(StateError::UnknownComponent(*id));
                }
            }
        }
        if roles_changed && !list_updates.is_empty() {
            return Err(StateError::RolesWithListChange);
        }
        if preauth_changed
            && list_updates.iter().any(|u| {
                !u.added_participants.is_empty() || !u.changed_role_participants.is_empty()
            })
        {
            return Err(StateError::PreauthWithListChange);
        }
        if (roles_changed || policies_changed.contains(&cp.chat_history_policy))
            && let Some(h) = &next.policies.history
            && let Some(bad) = h.sharing.roles_that_can_share.iter().find(|r| {
                next.roles
                    .role(**r)
                    .is_some_and(|role| role.max_active == Some(0))
            })
        {
            return Err(StateError::HistoryRole(*bad));
        }
        if (roles_changed || policies_changed.contains(&cp.bot_policy))
            && let Some(b) = &next.policies.bots
            && let Some(bad) = b
                .allowed_bots
                .iter()
                .find(|b| next.roles.role(b.bot_role_index).is_none())
        {
            return Err(StateError::BotRole {
                name: bad.name.clone(),
                role: bad.bot_role_index,
            });
        }
        let mut changes = Vec::new();
        if !list_updates.is_empty() {
            changes.push((cp.participant_list, next.participants.encode()));
        }
        if metadata_changed && let Some(m) = &next.metadata {
            changes.push((cp.room_metadata, m.encode()));
        }
        if roles_changed {
            changes.push((cp.roles_list, next.roles.encode()));
        }
        if base_changed {
            changes.push((cp.base_room_policy, next.base.encode()));
        }
        if preauth_changed && let Some(p) = &next.preauth {
            changes.push((cp.preauth_list, p.clone()));
        }
        for id in &policies_changed {
            if let Some(b) = next.policies.get(cp, *id) {
                changes.push((*id, b));
            }
        }
        if join_policy_changed && let Some(p) = &next.join.policy {
            changes.push((cp.join_link_policy, p.encode()));
        }
        if !join_links_updates.is_empty() {
            changes.push((cp.join_links, next.join.links.encode()));
        }
        changes.sort_by_key(|(id, _)| *id);
        Ok(Resolution {
            state: next,
            list_updates,
            metadata_changed,
            roles_changed,
            base_changed,
            join_policy_changed,
            join_links_updates,
            changes,
            policies_changed,
        })
    }
}

/// The users a delta touches (by URI), resolved against the list it applies to.
fn touched_users(list: &ParticipantListData, u: &ParticipantListUpdate) -> Vec<String> {
    let at = |i: u32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| list.participants.get(i))
            .map(|p| p.user.as_str().to_owned())
    };
    let mut v: Vec<String> = Vec::new();
    v.extend(
        u.changed_role_participants
            .iter()
            .filter_map(|c| at(c.user_index)),
    );
    v.extend(u.removed_indices.iter().filter_map(|i| at(*i)));
    v.extend(
        u.added_participants
            .iter()
            .map(|a| a.user.as_str().to_owned()),
    );
    v
}
