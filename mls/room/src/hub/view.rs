//! The hub's decoded view of the current epoch: the room state and every member's client URI,
//! kept beside the `PublicGroup` so that a commit costs openmls' work plus what it changes,
//! not a decode of the whole room (`ROOM-hub-view`). Rebuilt on bootstrap and restore; after a
//! merge the state is the resolver's output and only leaves whose credential changed are
//! parsed again.

use crate::codepoints::CodePoints;
use crate::mls::{client_of, state_of};
use crate::state::{RoomState, StateError};
use mimi_wire::id::{ClientUri, UserUri};
use openmls::prelude::*;
use std::collections::BTreeMap;

/// One leaf: its credential content, and its client and user URIs if it has them.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    content: Vec<u8>,
    client: Option<ClientUri>,
    user: Option<UserUri>,
}

/// Leaf index → leaf.
pub(crate) type Members = BTreeMap<u32, Leaf>;

/// See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) state: RoomState,
    pub(crate) members: Members,
    /// Users with at least one client in the group, with their number of clients.
    pub(crate) users: BTreeMap<UserUri, usize>,
}

impl View {
    pub(crate) fn build(group: &PublicGroup, cp: &CodePoints) -> Result<Self, StateError> {
        let mut v = Self {
            state: state_of(group.group_context(), cp)?,
            members: Members::new(),
            users: BTreeMap::new(),
        };
        v.refresh_members(group);
        Ok(v)
    }

    /// Brings the member map up to date with the group, parsing only changed credentials.
    pub(crate) fn refresh_members(&mut self, group: &PublicGroup) {
        let mut next = Members::new();
        for m in group.members() {
            let content = m.credential.serialized_content();
            let entry = match self.members.remove(&m.index.u32()) {
                Some(old) if old.content.as_slice() == content => old,
                _ => {
                    let client = client_of(&m.credential);
                    Leaf {
                        content: content.to_vec(),
                        user: client.as_ref().and_then(ClientUri::user),
                        client,
                    }
                }
            };
            next.insert(m.index.u32(), entry);
        }
        self.members = next;
        self.users.clear();
        for u in self.members.values().filter_map(|l| l.user.as_ref()) {
            *self.users.entry(u.clone()).or_default() += 1;
        }
    }

    pub(crate) fn client_at(&self, leaf: LeafNodeIndex) -> Option<&ClientUri> {
        self.members
            .get(&leaf.u32())
            .and_then(|l| l.client.as_ref())
    }

    pub(crate) fn clients(&self) -> impl Iterator<Item = &ClientUri> {
        self.members.values().filter_map(|l| l.client.as_ref())
    }
}
