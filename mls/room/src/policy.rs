//! The hub's authorization rules (room-policy-03 §8, protocol-06 §7.8): is this commit, by this
//! committer, with these membership changes, allowed by the room's policy, and does it keep the
//! participant list and the MLS membership consistent?

use crate::codepoints::cap;
use crate::roles::{BANNED, NO_ROLE, Role};
use crate::state::{Resolution, RoomState};
use mimi_wire::id::{ClientUri, UserUri};
use std::collections::{BTreeMap, BTreeSet};

/// The draft code a refusal maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeniedCode {
    /// `notAllowed`: the policy does not give the actor this right.
    NotAllowed,
    /// `invalidProposal`: the proposals contradict the room state (a client added for a user
    /// not in the list, a removed user's client left behind, ...).
    InvalidProposal,
}

/// What in a commit a refusal is about, so that the hub can name the proposals
/// (`invalidProposal` lists them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The Add (or the external join) of this client.
    AddedClient(ClientUri),
    /// The AppDataUpdate(s) of this component (a code point from [`crate::codepoints`]).
    Component(Which),
}

/// A room state component, independent of its configured code point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The participant list.
    ParticipantList,
    /// The room metadata.
    RoomMetadata,
}

/// A refusal, with the capability that was missing (if one was) and a reason for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denied {
    /// The code.
    pub code: DeniedCode,
    /// The missing capability.
    pub capability: Option<u16>,
    /// What was refused and why.
    pub reason: String,
    /// The part of the commit at fault, when the refusal is `invalidProposal`.
    pub subject: Option<Subject>,
}

fn not_allowed(capability: u16, reason: String) -> Denied {
    Denied {
        code: DeniedCode::NotAllowed,
        capability: Some(capability),
        reason: format!("{reason} ({} required)", cap::name(capability)),
        subject: None,
    }
}

fn invalid(reason: String) -> Denied {
    Denied {
        code: DeniedCode::InvalidProposal,
        capability: None,
        reason,
        subject: None,
    }
}

fn invalid_about(subject: Subject, reason: String) -> Denied {
    Denied {
        subject: Some(subject),
        ..invalid(reason)
    }
}

fn list_invalid(reason: String) -> Denied {
    invalid_about(Subject::Component(Which::ParticipantList), reason)
}

/// The MLS side of a commit, as the hub sees it in the staged commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Clients added (Add proposals).
    pub added: Vec<ClientUri>,
    /// Clients removed, with whether the client's own user proposed it (Remove of an own
    /// client or SelfRemove).
    pub removed: Vec<(ClientUri, bool)>,
    /// Clients whose removal the hub itself proposed (external Remove): the hub decided
    /// them, so they need no capability of the committer (`ROOM-hub-external-remove`).
    pub removed_by_hub: Vec<ClientUri>,
    /// The committer itself joined (external commit).
    pub external_join: bool,
    /// Every client in the group after the commit.
    pub remaining: Vec<ClientUri>,
    /// The external committer replaces its own old leaf (a resync: the commit's Remove is of
    /// the committer's own client URI, `ROOM-resync`).
    pub resync: Option<ClientUri>,
    /// The external committer presented a valid joining code of the room at groupInfo
    /// (`PROTO-5.6-joining-code`; the node checks the code, the policy the capability).
    pub joined_with_code: bool,
}

fn user_of(c: &ClientUri) -> Result<UserUri, Denied> {
    c.user().ok_or_else(|| {
        invalid(format!(
            "client {c} does not name its user (use /d/<user>/<client>)"
        ))
    })
}

fn role(s: &RoomState, index: u32) -> Result<&Role, Denied> {
    s.roles
        .role(index)
        .ok_or_else(|| invalid(format!("role {index} is not defined in the room")))
}

/// The role `user` joins a room with by external commit (`ROOM-8-join-role`): `None` when it
/// is listed already (a new device or a resync of an active participant), else the first
/// target other than 0 and 1 of role 0's `from 0` entry (room-policy-03 §8 canOpenJoin and
/// canUseJoinCode: "any non-zero target of role 0's from-0 entry"). A banned user may not join.
pub fn join_role(state: &RoomState, user: &UserUri) -> Result<Option<u32>, Denied> {
    match state.role_of(user) {
        BANNED => Err(Denied {
            code: DeniedCode::NotAllowed,
            capability: None,
            reason: format!("{user} is banned from the room"),
            subject: None,
        }),
        NO_ROLE => {
            let r0 = role(state, NO_ROLE)?;
            r0.authorized_role_changes
                .iter()
                .filter(|c| c.from == NO_ROLE)
                .flat_map(|c| c.to.iter().copied())
                .find(|t| *t != NO_ROLE && *t != BANNED)
                .map(Some)
                .ok_or_else(|| {
                    not_allowed(
                        cap::CAN_OPEN_JOIN,
                        format!("role 0 of the room names no role {user} could join as"),
                    )
                })
        }
        _ => Ok(None),
    }
}

/// Authorizes a commit (`ROOM-8-authorize`). `before` is the state of the current epoch,
/// `res` the resolved AppDataUpdates, `committer` the committing client's user.
pub fn authorize_commit(
    before: &RoomState,
    res: &Resolution,
    mls: &MembershipChange,
    committer: &UserUri,
) -> Result<(), Denied> {
    let after = &res.state;
    let committer_role_index = before.role_of(committer);
    let committer_role = role(before, committer_role_index)?;
    let self_join = mls.external_join;

    // A user who is not (or no longer) a participant, or is banned, may not commit, except to
    // join by external commit (ROOM-7.8-banned-silent).
    if !self_join && (committer_role_index == NO_ROLE || committer_role_index == BANNED) {
        return Err(Denied {
            code: DeniedCode::NotAllowed,
            capability: None,
            reason: format!("{committer} is not an active participant of the room"),
            subject: None,
        });
    }

    // Policy components.
    if res.roles_changed && !committer_role.can(cap::CAN_CHANGE_ROLE_DEFINITIONS) {
        return Err(not_allowed(
            cap::CAN_CHANGE_ROLE_DEFINITIONS,
            format!("{committer} may not change the roles"),
        ));
    }
    if res.base_changed && !committer_role.can(cap::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE) {
        return Err(not_allowed(
            cap::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE,
            format!("{committer} may not change the base policy"),
        ));
    }
    if before.preauth != after.preauth
        && !committer_role.can(cap::CAN_CHANGE_PREAUTHORIZED_USER_LIST)
    {
        return Err(not_allowed(
            cap::CAN_CHANGE_PREAUTHORIZED_USER_LIST,
            format!("{committer} may not change the preauthorization list"),
        ));
    }
    if res.metadata_changed {
        check_metadata(before, after, committer_role, committer)?;
    }
    check_policy_components(res, committer_role, committer)?;
    // ROOM-join-links: a link is a standing invitation, so making or revoking one, and
    // setting how links work (the join link policy), needs canAddParticipant (the drafts
    // name no capability for it: canCreateJoinCode is reserved; spec-notes/decisions.md).
    // The one exception is the joiner removing the single-use link it joined with (the hub
    // checked its code).
    if res.join_policy_changed && !committer_role.can(cap::CAN_ADD_PARTICIPANT) {
        return Err(not_allowed(
            cap::CAN_ADD_PARTICIPANT,
            format!("{committer} may not change the join link policy"),
        ));
    }
    if !res.join_links_updates.is_empty() {
        let consumes_own = self_join
            && mls.joined_with_code
            && res
                .join_links_updates
                .iter()
                .all(|u| u.added_links.is_empty())
            && res
                .join_links_updates
                .iter()
                .map(|u| u.removed_indices.len())
                .sum::<usize>()
                <= 1;
        if !consumes_own && !committer_role.can(cap::CAN_ADD_PARTICIPANT) {
            return Err(not_allowed(
                cap::CAN_ADD_PARTICIPANT,
                format!("{committer} may not make or revoke join links"),
            ));
        }
    }

    // Nothing about participants or membership changed: the list/membership invariants held
    // before the commit, so they still hold (and the O(n) checks below are skipped).
    let list_changed = !res.list_updates.is_empty();
    if !list_changed
        && !res.base_changed
        && !self_join
        && mls.added.is_empty()
        && mls.removed.is_empty()
    {
        return Ok(());
    }

    // Participant list: every user whose entry changed.
    let old: BTreeMap<&str, u32> = before
        .participants
        .participants
        .iter()
        .map(|p| (p.user.as_str(), p.role_index))
        .collect();
    let new: BTreeMap<&str, u32> = after
        .participants
        .participants
        .iter()
        .map(|p| (p.user.as_str(), p.role_index))
        .collect();
    if list_changed {
        check_list_changes(before, after, &old, &new, mls, committer, committer_role)?;
    }

    // MLS membership against the list (protocol-06 §7.8).
    let role_in = |m: &BTreeMap<&str, u32>, u: &UserUri| m.get(u.as_str()).copied();
    let listed_active =
        |u: &UserUri| matches!(role_in(&new, u), Some(r) if r != NO_ROLE && r != BANNED);
    for c in &mls.added {
        let u = user_of(c)?;
        if !listed_active(&u) {
            // ROOM-7.8-add-listed
            return Err(invalid_about(
                Subject::AddedClient(c.clone()),
                format!("{c} is added but its user {u} is not an active participant"),
            ));
        }
        let newly_listed = !matches!(role_in(&old, &u), Some(r) if r != NO_ROLE && r != BANNED);
        if !newly_listed {
            if u == *committer {
                if !committer_role.can(cap::CAN_ADD_OWN_CLIENT) {
                    return Err(not_allowed(
                        cap::CAN_ADD_OWN_CLIENT,
                        format!("{committer} may not add own clients"),
                    ));
                }
            } else if !committer_role.can(cap::CAN_ADD_PARTICIPANT) {
                return Err(not_allowed(
                    cap::CAN_ADD_PARTICIPANT,
                    format!("{committer} may not add clients of {u}"),
                ));
            }
        }
    }
    if self_join {
        let own_role = before.role_of(committer);
        let joined_now = own_role == NO_ROLE;
        if !joined_now
            && mls.resync.is_none()
            && !role(before, own_role)?.can(cap::CAN_ADD_OWN_CLIENT)
        {
            return Err(not_allowed(
                cap::CAN_ADD_OWN_CLIENT,
                format!("{committer} may not add own clients"),
            ));
        }
        if !listed_active(committer) {
            return Err(invalid(format!(
                "{committer} joins but is not an active participant"
            )));
        }
    }
    for (c, own) in &mls.removed {
        let u = user_of(c)?;
        if mls.resync.as_ref() == Some(c) {
            // ROOM-resync: the same client comes back; nothing is removed from the room.
            continue;
        }
        if listed_active(&u) && !mls.removed_by_hub.contains(c) {
            // The user stays: removing one of its clients.
            if *own || u == *committer {
                let r = role(before, before.role_of(&u))?;
                if !r.can(cap::CAN_REMOVE_OWN_CLIENT) {
                    return Err(not_allowed(
                        cap::CAN_REMOVE_OWN_CLIENT,
                        format!("{u} may not remove own clients"),
                    ));
                }
            } else if !committer_role.can(cap::CAN_KICK) {
                return Err(not_allowed(
                    cap::CAN_KICK,
                    format!("{committer} may not remove clients of {u}"),
                ));
            }
        }
    }
    let mut per_user: BTreeMap<UserUri, u32> = BTreeMap::new();
    for c in &mls.remaining {
        let u = user_of(c)?;
        if !listed_active(&u) {
            // ROOM-7.8-remove-all-clients
            return Err(list_invalid(format!(
                "{c} stays in the group but its user {u} is no longer an active participant"
            )));
        }
        *per_user.entry(u).or_default() += 1;
    }
    if !after.base.multi_device
        && let Some((u, _)) = per_user.iter().find(|(_, n)| **n > 1)
    {
        return Err(invalid(format!(
            "{u} has more than one client in a single-device room"
        )));
    }
    if let Some(max) = after.base.max_clients
        && mls.remaining.len() > max as usize
    {
        return Err(invalid(format!("the room allows at most {max} clients")));
    }
    Ok(())
}

/// Authorizes every participant-list entry that changed (`ROOM-8-authorize`).
fn check_list_changes(
    before: &RoomState,
    after: &RoomState,
    old: &BTreeMap<&str, u32>,
    new: &BTreeMap<&str, u32>,
    mls: &MembershipChange,
    committer: &UserUri,
    committer_role: &Role,
) -> Result<(), Denied> {
    let users: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    let mut counts_changed = false;
    for user in users {
        let from = old.get(user).copied().unwrap_or(NO_ROLE);
        let to = new.get(user).copied().unwrap_or(NO_ROLE);
        if from == to {
            continue;
        }
        counts_changed = true;
        let is_self = user == committer.as_str();
        let proposed_own_removal = mls
            .removed
            .iter()
            .any(|(c, own)| *own && c.user().is_some_and(|u| u.as_str() == user));
        role(after, to).map_err(|d| list_invalid(d.reason))?;
        check_list_change(
            before,
            committer_role,
            committer,
            user,
            from,
            to,
            is_self,
            mls.external_join,
            proposed_own_removal,
            mls.joined_with_code,
        )?;
    }
    if counts_changed {
        check_constraints(after).map_err(|d| list_invalid(d.reason))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_list_change(
    before: &RoomState,
    committer_role: &Role,
    committer: &UserUri,
    user: &str,
    from: u32,
    to: u32,
    is_self: bool,
    self_join: bool,
    proposed_own_removal: bool,
    with_code: bool,
) -> Result<(), Denied> {
    let fixed = before.base.fixed_membership;
    if from == NO_ROLE {
        // Added.
        if fixed {
            return Err(not_allowed(
                cap::CAN_ADD_PARTICIPANT,
                "the room has fixed membership".into(),
            ));
        }
        if is_self && self_join {
            // canOpenJoin, or canUseJoinCode with a valid code (room-policy-03 §8), both on
            // role 0 with a `0 -> to` pair.
            let r0 = role(before, NO_ROLE)?;
            if preauthorized_join(before, user, to) {
                return Ok(());
            }
            let open = r0.can(cap::CAN_OPEN_JOIN);
            let code = with_code && r0.can(cap::CAN_USE_JOIN_CODE);
            if !((open || code) && r0.may_change(NO_ROLE, to)) {
                return Err(not_allowed(
                    if with_code {
                        cap::CAN_USE_JOIN_CODE
                    } else {
                        cap::CAN_OPEN_JOIN
                    },
                    format!("{user} may not join this room as role {to}"),
                ));
            }
            return Ok(());
        }
        if to == BANNED {
            if !(committer_role.can(cap::CAN_BAN) && committer_role.may_change(NO_ROLE, BANNED)) {
                return Err(not_allowed(
                    cap::CAN_BAN,
                    format!("{committer} may not ban {user}"),
                ));
            }
            return Ok(());
        }
        if !(committer_role.can(cap::CAN_ADD_PARTICIPANT) && committer_role.may_change(NO_ROLE, to))
        {
            return Err(not_allowed(
                cap::CAN_ADD_PARTICIPANT,
                format!("{committer} may not add {user} as role {to}"),
            ));
        }
        return Ok(());
    }
    if to == NO_ROLE {
        // Removed.
        if fixed {
            return Err(not_allowed(
                cap::CAN_REMOVE_PARTICIPANT,
                "the room has fixed membership".into(),
            ));
        }
        if is_self || proposed_own_removal {
            let own = role(before, from)?;
            if !(own.can(cap::CAN_REMOVE_SELF) && own.may_change(from, NO_ROLE)) {
                return Err(not_allowed(
                    cap::CAN_REMOVE_SELF,
                    format!("{user} may not leave this room"),
                ));
            }
            return Ok(());
        }
        if !(committer_role.can(cap::CAN_REMOVE_PARTICIPANT)
            && committer_role.may_change(from, NO_ROLE))
        {
            return Err(not_allowed(
                cap::CAN_REMOVE_PARTICIPANT,
                format!("{committer} may not remove {user}"),
            ));
        }
        return Ok(());
    }
    if to == BANNED {
        if !(committer_role.can(cap::CAN_BAN) && committer_role.may_change(from, BANNED)) {
            return Err(not_allowed(
                cap::CAN_BAN,
                format!("{committer} may not ban {user}"),
            ));
        }
        return Ok(());
    }
    if from == BANNED {
        if !(committer_role.can(cap::CAN_UNBAN) && committer_role.may_change(BANNED, to)) {
            return Err(not_allowed(
                cap::CAN_UNBAN,
                format!("{committer} may not lift the ban of {user}"),
            ));
        }
        return Ok(());
    }
    if is_self {
        // ROOM-policy-preauth: canChangeOwnRole, to the first non-zero preauthorized role.
        return check_own_role_change(before, committer_role, user, to);
    }
    if !(committer_role.can(cap::CAN_CHANGE_USER_ROLE) && committer_role.may_change(from, to)) {
        return Err(not_allowed(
            cap::CAN_CHANGE_USER_ROLE,
            format!("{committer} may not move {user} from role {from} to {to}"),
        ));
    }
    Ok(())
}

fn check_constraints(after: &RoomState) -> Result<(), Denied> {
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    for p in &after.participants.participants {
        *counts.entry(p.role_index).or_default() += 1;
    }
    for r in &after.roles.roles {
        if r.index == NO_ROLE {
            continue;
        }
        let n = counts.get(&r.index).copied().unwrap_or(0);
        if n < r.min_participants {
            return Err(invalid(format!(
                "role {} ({}) needs at least {} participants",
                r.index, r.name, r.min_participants
            )));
        }
        if let Some(max) = r.max_participants
            && n > max
        {
            return Err(invalid(format!(
                "role {} ({}) allows at most {max} participants",
                r.index, r.name
            )));
        }
    }
    if let Some(max) = after.base.max_users {
        let active = after
            .participants
            .participants
            .iter()
            .filter(|p| p.role_index != BANNED)
            .count();
        if active > max as usize {
            return Err(invalid(format!("the room allows at most {max} users")));
        }
    }
    Ok(())
}

fn check_metadata(
    before: &RoomState,
    after: &RoomState,
    r: &Role,
    committer: &UserUri,
) -> Result<(), Denied> {
    let (a, b) = (before.metadata.as_ref(), after.metadata.as_ref());
    let field = |f: fn(&mimi_wire::components::RoomMetaData) -> Vec<u8>| a.map(f) != b.map(f);
    let checks: [(bool, u16, &str); 5] = [
        (
            field(|m| m.room_name.as_bytes().to_vec()),
            cap::CAN_CHANGE_ROOM_NAME,
            "name",
        ),
        (
            field(|m| format!("{:?}", m.room_descriptions).into_bytes()),
            cap::CAN_CHANGE_ROOM_DESCRIPTION,
            "description",
        ),
        (
            field(|m| m.room_avatar.as_bytes().to_vec()),
            cap::CAN_CHANGE_ROOM_AVATAR,
            "avatar",
        ),
        (
            field(|m| m.room_subject.as_bytes().to_vec()),
            cap::CAN_CHANGE_ROOM_SUBJECT,
            "subject",
        ),
        (
            field(|m| m.room_mood.as_bytes().to_vec()),
            cap::CAN_CHANGE_ROOM_MOOD,
            "mood",
        ),
    ];
    for (changed, capability, what) in checks {
        if changed && !r.can(capability) {
            return Err(not_allowed(
                capability,
                format!("{committer} may not change the room {what}"),
            ));
        }
    }
    if let (Some(a), Some(b)) = (a, b)
        && a.room_uri != b.room_uri
    {
        return Err(invalid_about(
            Subject::Component(Which::RoomMetadata),
            "the room URI in the metadata cannot change".into(),
        ));
    }
    Ok(())
}

/// May `sender` send an application message (`ROOM-8-send`)? The hub can enforce only
/// canSendMessage; other message capabilities are for clients.
pub fn authorize_message(state: &RoomState, sender: &UserUri) -> Result<(), Denied> {
    let r = state.role_of(sender);
    if r == NO_ROLE || r == BANNED {
        return Err(Denied {
            code: DeniedCode::NotAllowed,
            capability: Some(cap::CAN_SEND_MESSAGE),
            reason: format!("{sender} is not an active participant of the room"),
            subject: None,
        });
    }
    if !role(state, r)?.can(cap::CAN_SEND_MESSAGE) {
        return Err(not_allowed(
            cap::CAN_SEND_MESSAGE,
            format!("{sender} may not send messages"),
        ));
    }
    Ok(())
}

// ---- Policy components, preauthorization and active-participant limits -------------------
// (ROOM-policy-status, -link-preview, -assets, -history, -expiry, ROOM-policy-preauth,
// ROOM-policy-active-limits; additive to the rules above.)

/// The room-policy-03 §6 components (status notifications, link previews, assets, history,
/// message expiration) change only with canChangeRoomMembershipStyle (the capability that
/// governs the base policy listing them) or canChangeOtherPolicyAttribute (reserved in the
/// draft, named for exactly this); spec-notes/decisions.md.
pub fn check_policy_components(
    res: &Resolution,
    committer_role: &Role,
    committer: &UserUri,
) -> Result<(), Denied> {
    if res.policies_changed.is_empty()
        || committer_role.can(cap::CAN_CHANGE_ROOM_MEMBERSHIP_STYLE)
        || committer_role.can(cap::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE)
    {
        return Ok(());
    }
    Err(Denied {
        code: DeniedCode::NotAllowed,
        capability: Some(cap::CAN_CHANGE_OTHER_POLICY_ATTRIBUTE),
        reason: format!(
            "{committer} may not change the room's policy components \
             (canChangeRoomMembershipStyle or canChangeOtherPolicyAttribute required)"
        ),
        subject: None,
    })
}

/// canChangeOwnRole (room-policy-03 §8.1.3, `ROOM-policy-preauth`): the holder may move itself
/// to the first non-zero role its credential matches in the preauthorization list;
/// `authorized_role_changes` is not consulted (the constraints are checked with every list
/// change).
fn check_own_role_change(
    before: &RoomState,
    own: &Role,
    user: &str,
    to: u32,
) -> Result<(), Denied> {
    if !own.can(cap::CAN_CHANGE_OWN_ROLE) {
        return Err(not_allowed(
            cap::CAN_CHANGE_OWN_ROLE,
            format!("{user} may not change own role"),
        ));
    }
    let uri = UserUri::parse(user).map_err(|e| invalid(format!("{user}: {e}")))?;
    let preauth = before
        .preauth_data()
        .map_err(|e| invalid(e.to_string()))?
        .unwrap_or_default();
    match preauth.first_nonzero_role(&uri) {
        Some(r) if r == to => Ok(()),
        Some(r) => Err(not_allowed(
            cap::CAN_CHANGE_OWN_ROLE,
            format!("{user} is preauthorized for role {r}, not role {to}"),
        )),
        None => Err(not_allowed(
            cap::CAN_CHANGE_OWN_ROLE,
            format!("{user} matches no preauthorization entry for a non-zero role"),
        )),
    }
}

/// canJoinIfPreauthorized (room-policy-03 §8.1.1, `ROOM-policy-preauth`): an unlisted user may
/// join by external commit as role `to` when its first matching preauthorization entry is `to`
/// and that role (in the room's roles) holds canJoinIfPreauthorized. The max constraints are
/// checked with every list change.
pub fn preauthorized_join(before: &RoomState, user: &str, to: u32) -> bool {
    let (Ok(uri), Ok(Some(preauth))) = (UserUri::parse(user), before.preauth_data()) else {
        return false;
    };
    preauth
        .first_match(&uri)
        .is_some_and(|e| e.target_role.index == to && to != NO_ROLE && to != BANNED)
        && before
            .roles
            .role(to)
            .is_some_and(|r| r.can(cap::CAN_JOIN_IF_PREAUTHORIZED))
}

/// Active participants per role: listed users with at least one client in `clients`.
pub fn active_counts(state: &RoomState, clients: &[ClientUri]) -> BTreeMap<u32, u32> {
    let active: BTreeSet<UserUri> = clients.iter().filter_map(ClientUri::user).collect();
    let mut counts = BTreeMap::new();
    for p in &state.participants.participants {
        if active.contains(&p.user) {
            *counts.entry(p.role_index).or_default() += 1;
        }
    }
    counts
}

/// Active-participant limits (room-policy-03 §3 and §8.1, `ROOM-policy-active-limits`): after
/// the commit, no role may have more active participants (users with a client in the group)
/// than its `maximum_active_participants_constraint` nor fewer than its
/// `minimum_active_participants_constraint`. A commit is refused only when it moves a role's
/// count further past a limit (a room created below a minimum is not frozen). The code is
/// `notAllowed`: the draft says the action "is only authorized if" it respects the
/// constraints. Run by the hub and by every member on the same inputs.
pub fn check_active_limits(
    before: &RoomState,
    after: &RoomState,
    before_clients: &[ClientUri],
    after_clients: &[ClientUri],
) -> Result<(), Denied> {
    let old = active_counts(before, before_clients);
    let new = active_counts(after, after_clients);
    for r in &after.roles.roles {
        if r.index == NO_ROLE {
            continue;
        }
        let a = new.get(&r.index).copied().unwrap_or(0);
        let b = old.get(&r.index).copied().unwrap_or(0);
        if let Some(max) = r.max_active
            && a > max
            && a > b
        {
            return Err(Denied {
                code: DeniedCode::NotAllowed,
                capability: None,
                reason: format!(
                    "role {} ({}) allows at most {max} active participants; the commit makes {a} (ROOM-policy-active-limits)",
                    r.index, r.name
                ),
                subject: Some(Subject::Component(Which::ParticipantList)),
            });
        }
        if a < r.min_active && a < b {
            return Err(Denied {
                code: DeniedCode::NotAllowed,
                capability: None,
                reason: format!(
                    "role {} ({}) needs at least {} active participants; the commit leaves {a} (ROOM-policy-active-limits)",
                    r.index, r.name, r.min_active
                ),
                subject: Some(Subject::Component(Which::ParticipantList)),
            });
        }
    }
    Ok(())
}
