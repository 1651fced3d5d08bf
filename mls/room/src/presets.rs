//! Policy presets (`ROOM-presets`, after room-policy-03 Appendix A): a direct message, a
//! private group and a public room. Each has role 0 (`no_role`) and role 1 (`banned`).

use crate::codepoints::{CodePoints, cap::*};
use crate::roles::{BANNED, BaseRoomPolicy, NO_ROLE, Role, RoleData};

/// A preset: its roles, base policy and the role of the room's creator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The roles.
    pub roles: RoleData,
    /// The base policy.
    pub base: BaseRoomPolicy,
    /// The creator's role.
    pub creator_role: u32,
    /// The role given to users added by ordinary members.
    pub member_role: u32,
}

const MESSAGING: [u16; 7] = [
    CAN_SEND_MESSAGE,
    CAN_RECEIVE_MESSAGE,
    CAN_REPORT_ABUSE,
    CAN_REPLY_TO_MESSAGE,
    CAN_REACT_TO_MESSAGE,
    CAN_EDIT_OWN_MESSAGE,
    CAN_DELETE_OWN_MESSAGE,
];

const METADATA: [u16; 5] = [
    CAN_CHANGE_ROOM_NAME,
    CAN_CHANGE_ROOM_DESCRIPTION,
    CAN_CHANGE_ROOM_AVATAR,
    CAN_CHANGE_ROOM_SUBJECT,
    CAN_CHANGE_ROOM_MOOD,
];

/// The disruptive capabilities the room's creator role holds (room-policy-03 §8.6), so that
/// `mimi room policy` can set roles, the base policy, preauthorization and the §6 components.
const POLICY: [u16; 4] = [
    CAN_CHANGE_ROOM_MEMBERSHIP_STYLE,
    CAN_CHANGE_ROLE_DEFINITIONS,
    CAN_CHANGE_PREAUTHORIZED_USER_LIST,
    CAN_CHANGE_OTHER_POLICY_ATTRIBUTE,
];

fn caps(groups: &[&[u16]]) -> Vec<u16> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

fn banned() -> Role {
    let mut r = Role::new(BANNED, "banned", &[], &[]);
    r.max_active = Some(0);
    r
}

fn base(cp: &CodePoints, fixed: bool, discoverable: bool) -> BaseRoomPolicy {
    BaseRoomPolicy {
        fixed_membership: fixed,
        parent_dependant: false,
        parent_room: None,
        multi_device: true,
        max_clients: None,
        max_users: None,
        pseudonyms_allowed: false,
        persistent_room: true,
        discoverable,
        policy_component_ids: vec![cp.roles_list],
    }
}

/// Two people, fixed membership: each may send, manage their own clients, and nobody can add
/// or remove users.
pub fn direct_message(cp: &CodePoints) -> Preset {
    let member = Role::new(
        2,
        "member",
        &caps(&[&MESSAGING, &[CAN_ADD_OWN_CLIENT, CAN_REMOVE_OWN_CLIENT]]),
        &[],
    );
    Preset {
        roles: RoleData {
            roles: vec![Role::new(NO_ROLE, "no_role", &[], &[]), banned(), member],
        },
        base: base(cp, true, false),
        creator_role: 2,
        member_role: 2,
    }
}

/// A private group (room-policy-03's "cooperative" example): ordinary users (2) add and
/// remove ordinary users and may leave; admins (3) also ban, unban, kick and change roles.
pub fn private_group(cp: &CodePoints) -> Preset {
    let ordinary = Role::new(
        2,
        "ordinary_user",
        &caps(&[
            &MESSAGING,
            &METADATA,
            &[
                CAN_ADD_PARTICIPANT,
                CAN_REMOVE_PARTICIPANT,
                CAN_ADD_OWN_CLIENT,
                CAN_REMOVE_OWN_CLIENT,
                CAN_REMOVE_SELF,
            ],
        ]),
        &[(NO_ROLE, &[2]), (2, &[NO_ROLE])],
    );
    let admin = Role::new(
        3,
        "group_admin",
        &caps(&[
            &MESSAGING,
            &METADATA,
            &[
                CAN_ADD_PARTICIPANT,
                CAN_REMOVE_PARTICIPANT,
                CAN_ADD_OWN_CLIENT,
                CAN_REMOVE_OWN_CLIENT,
                CAN_REMOVE_SELF,
                CAN_BAN,
                CAN_UNBAN,
                CAN_KICK,
                CAN_CHANGE_USER_ROLE,
            ],
            &POLICY,
        ]),
        &[
            (NO_ROLE, &[2, 3]),
            (2, &[NO_ROLE, BANNED, 3]),
            (3, &[NO_ROLE, BANNED, 2]),
            (BANNED, &[NO_ROLE, 2]),
        ],
    );
    Preset {
        roles: RoleData {
            roles: vec![
                // ROOM-join-links: role 0 holds canUseJoinCode into role 2 (room-policy-03's
                // "strict" example does the same): a user who is not listed joins only with a
                // join link a member made, and a room has none until someone makes one.
                Role::new(NO_ROLE, "no_role", &[CAN_USE_JOIN_CODE], &[(NO_ROLE, &[2])]),
                banned(),
                ordinary,
                admin,
            ],
        },
        base: base(cp, false, false),
        creator_role: 3,
        member_role: 2,
    }
}

/// A public room: anyone may join (role 0 holds canOpenJoin into role 2, member); moderators
/// (3) remove, kick, ban and unban; the owner (4) also changes roles and metadata.
pub fn public_room(cp: &CodePoints) -> Preset {
    let no_role = Role::new(NO_ROLE, "no_role", &[CAN_OPEN_JOIN], &[(NO_ROLE, &[2])]);
    let member = Role::new(
        2,
        "member",
        &caps(&[
            &MESSAGING,
            &[CAN_ADD_OWN_CLIENT, CAN_REMOVE_OWN_CLIENT, CAN_REMOVE_SELF],
        ]),
        &[(2, &[NO_ROLE])],
    );
    let moderator = Role::new(
        3,
        "moderator",
        &caps(&[
            &MESSAGING,
            &[
                CAN_ADD_OWN_CLIENT,
                CAN_REMOVE_OWN_CLIENT,
                CAN_REMOVE_SELF,
                CAN_REMOVE_PARTICIPANT,
                CAN_KICK,
                CAN_BAN,
                CAN_UNBAN,
            ],
        ]),
        &[
            (2, &[NO_ROLE, BANNED]),
            (BANNED, &[NO_ROLE]),
            (3, &[NO_ROLE]),
        ],
    );
    let owner = Role::new(
        4,
        "owner",
        &caps(&[
            &MESSAGING,
            &METADATA,
            &[
                CAN_ADD_PARTICIPANT,
                CAN_ADD_OWN_CLIENT,
                CAN_REMOVE_OWN_CLIENT,
                CAN_REMOVE_PARTICIPANT,
                CAN_KICK,
                CAN_BAN,
                CAN_UNBAN,
                CAN_CHANGE_USER_ROLE,
            ],
            &POLICY,
        ]),
        &[
            (NO_ROLE, &[2, 3]),
            (2, &[NO_ROLE, BANNED, 3]),
            (3, &[NO_ROLE, BANNED, 2]),
            (BANNED, &[NO_ROLE, 2]),
        ],
    );
    Preset {
        roles: RoleData {
            roles: vec![no_role, banned(), member, moderator, owner],
        },
        base: base(cp, false, true),
        creator_role: 4,
        member_role: 2,
    }
}
