//! The roles list and base room policy components (room-policy-03 §4–5), with their
//! TLS encodings.

use mimi_wire::codec::{Body, Reader, WireError, WireErrorKind, Writer};
use std::collections::BTreeSet;

/// Role 0: not (or no longer) in the participant list.
pub const NO_ROLE: u32 = 0;
/// Role 1: banned (its name must be `banned`).
pub const BANNED: u32 = 1;

/// `SingleSourceRoleChangeTargets`: from one role, the roles a holder may move a user to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChangeTargets {
    /// `from_role_index`.
    pub from: u32,
    /// `target_role_indexes<V>`.
    pub to: Vec<u32>,
}

/// `Role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// `role_index`.
    pub index: u32,
    /// `role_name`.
    pub name: String,
    /// `role_description`.
    pub description: String,
    /// `role_capabilities<V>`.
    pub capabilities: BTreeSet<u16>,
    /// `minimum_participants_constraint` (0 = none).
    pub min_participants: u32,
    /// `optional uint32 maximum_participants_constraint`.
    pub max_participants: Option<u32>,
    /// `minimum_active_participants_constraint`.
    pub min_active: u32,
    /// `optional uint32 maximum_active_participants_constraint` (0 = no clients).
    pub max_active: Option<u32>,
    /// `authorized_role_changes<V>`.
    pub authorized_role_changes: Vec<RoleChangeTargets>,
}

impl Role {
    /// A role with a name, capabilities and allowed changes, no constraints.
    pub fn new(index: u32, name: &str, caps: &[u16], changes: &[(u32, &[u32])]) -> Self {
        Self {
            index,
            name: name.to_owned(),
            description: String::new(),
            capabilities: caps.iter().copied().collect(),
            min_participants: 0,
            max_participants: None,
            min_active: 0,
            max_active: None,
            authorized_role_changes: changes
                .iter()
                .map(|(from, to)| RoleChangeTargets {
                    from: *from,
                    to: to.to_vec(),
                })
                .collect(),
        }
    }

    /// Whether the role holds a capability.
    pub fn can(&self, capability: u16) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Whether a holder of this role may move a user from `from` to `to`.
    pub fn may_change(&self, from: u32, to: u32) -> bool {
        self.authorized_role_changes
            .iter()
            .any(|c| c.from == from && c.to.contains(&to))
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let o = r.limits.max_opaque;
        let index = r.u32("Role.role_index")?;
        let name = r.text(o, "Role.role_name")?;
        let description = r.text(o, "Role.role_description")?;
        let c = "Role.role_capabilities";
        let capabilities: Vec<u16> = r.vector(c, |r| r.u16(c))?;
        let min_participants = r.u32("Role.minimum_participants_constraint")?;
        let max_participants = r.optional("Role.maximum_participants_constraint", |r| {
            r.u32("Role.maximum_participants_constraint")
        })?;
        let min_active = r.u32("Role.minimum_active_participants_constraint")?;
        let max_active = r.optional("Role.maximum_active_participants_constraint", |r| {
            r.u32("Role.maximum_active_participants_constraint")
        })?;
        let a = "Role.authorized_role_changes";
        let authorized_role_changes = r.vector(a, |r| {
            Ok(RoleChangeTargets {
                from: r.u32(a)?,
                to: r.vector(a, |r| r.u32(a))?,
            })
        })?;
        let set: BTreeSet<u16> = capabilities.iter().copied().collect();
        if set.len() != capabilities.len() {
            return Err(r.error(WireErrorKind::BadValue(0), c));
        }
        Ok(Self {
            index,
            name,
            description,
            capabilities: set,
            min_participants,
            max_participants,
            min_active,
            max_active,
            authorized_role_changes,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.u32(self.index);
        w.opaque(self.name.as_bytes());
        w.opaque(self.description.as_bytes());
        let caps: Vec<u16> = self.capabilities.iter().copied().collect();
        w.vector(&caps, |w, c| w.u16(*c));
        w.u32(self.min_participants);
        w.optional(self.max_participants.as_ref(), |w, v| w.u32(*v));
        w.u32(self.min_active);
        w.optional(self.max_active.as_ref(), |w, v| w.u32(*v));
        w.vector(&self.authorized_role_changes, |w, c| {
            w.u32(c.from);
            w.vector(&c.to, |w, t| w.u32(*t));
        });
    }
}

/// `RoleData` (and `RoleUpdate`): the room's roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleData {
    /// `roles<V>`, unique indexes.
    pub roles: Vec<Role>,
}

impl RoleData {
    /// The role with an index.
    pub fn role(&self, index: u32) -> Option<&Role> {
        self.roles.iter().find(|r| r.index == index)
    }
}

impl Body for RoleData {
    const NAME: &'static str = "RoleData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "RoleData.roles";
        let roles = r.vector(f, Role::read)?;
        let mut seen = BTreeSet::new();
        if !roles.iter().all(|x| seen.insert(x.index)) {
            // ROOM-roles-unique
            return Err(r.error(WireErrorKind::BadValue(0), f));
        }
        if let Some(b) = roles.iter().find(|x| x.index == BANNED)
            && b.name != "banned"
        {
            // room-policy-03: role 1 must be named "banned".
            return Err(r.error(WireErrorKind::BadValue(1), f));
        }
        Ok(Self { roles })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.roles, |w, r| r.write(w));
    }
}

/// `BaseRoomPolicy` (room-policy-03 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseRoomPolicy {
    /// The list is fixed at creation (direct messages).
    pub fixed_membership: bool,
    /// Participants must be in the parent room.
    pub parent_dependant: bool,
    /// The parent room (iff parent_dependant).
    pub parent_room: Option<String>,
    /// Users may have several clients.
    pub multi_device: bool,
    /// Cap on MLS group size.
    pub max_clients: Option<u32>,
    /// Cap on non-banned listed users.
    pub max_users: Option<u32>,
    /// Pseudonymous credentials allowed.
    pub pseudonyms_allowed: bool,
    /// The room outlives its MLS group.
    pub persistent_room: bool,
    /// Searchable.
    pub discoverable: bool,
    /// The other policy components in force.
    pub policy_component_ids: Vec<u16>,
}

pub(crate) fn read_bool(r: &mut Reader<'_>, f: &'static str) -> Result<bool, WireError> {
    match r.u8(f)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(r.error_back(1, WireErrorKind::BadValue(u64::from(other)), f)),
    }
}

impl Body for BaseRoomPolicy {
    const NAME: &'static str = "BaseRoomPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let fixed_membership = read_bool(r, "BaseRoomPolicy.fixed_membership")?;
        let parent_dependant = read_bool(r, "BaseRoomPolicy.parent_dependant")?;
        let p = "BaseRoomPolicy.parent_room";
        let uri = r.limits.max_uri;
        let mut parents = r.vector(p, |r| r.text(uri, p))?;
        if parents.len() > 1 || parents.is_empty() == parent_dependant {
            return Err(r.error(WireErrorKind::BadValue(parents.len() as u64), p));
        }
        let parent_room = parents.pop();
        let multi_device = read_bool(r, "BaseRoomPolicy.multi_device")?;
        let max_clients = r.optional("BaseRoomPolicy.max_clients", |r| {
            r.u32("BaseRoomPolicy.max_clients")
        })?;
        let max_users = r.optional("BaseRoomPolicy.max_users", |r| {
            r.u32("BaseRoomPolicy.max_users")
        })?;
        let pseudonyms_allowed = read_bool(r, "BaseRoomPolicy.pseudonyms_allowed")?;
        let persistent_room = read_bool(r, "BaseRoomPolicy.persistent_room")?;
        let discoverable = read_bool(r, "BaseRoomPolicy.discoverable")?;
        let c = "BaseRoomPolicy.policy_component_ids";
        let policy_component_ids = r.vector(c, |r| r.u16(c))?;
        Ok(Self {
            fixed_membership,
            parent_dependant,
            parent_room,
            multi_device,
            max_clients,
            max_users,
            pseudonyms_allowed,
            persistent_room,
            discoverable,
            policy_component_ids,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(u8::from(self.fixed_membership));
        w.u8(u8::from(self.parent_dependant));
        let parents: Vec<&String> = self.parent_room.iter().collect();
        w.vector(&parents, |w, p| w.opaque(p.as_bytes()));
        w.u8(u8::from(self.multi_device));
        w.optional(self.max_clients.as_ref(), |w, v| w.u32(*v));
        w.optional(self.max_users.as_ref(), |w, v| w.u32(*v));
        w.u8(u8::from(self.pseudonyms_allowed));
        w.u8(u8::from(self.persistent_room));
        w.u8(u8::from(self.discoverable));
        w.vector(&self.policy_component_ids, |w, c| w.u16(*c));
    }
}
