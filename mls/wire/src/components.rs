//! Room state components kept in the MLS GroupContext's `app_data_dictionary`
//! (protocol-06 §7.5–7.6): the participant list (0x0022) with its delta update, and the room
//! metadata (0x0023). The policy components of room-policy-03 live with the policy engine.

use crate::codec::{Body, Reader, WireError, WireErrorKind, Writer};
use crate::common::read_room;
use crate::id::{RoomUri, UserUri};
use std::collections::BTreeSet;

/// Component ID of the participant list (protocol-06 §10.3).
pub const PARTICIPANT_LIST: u16 = 0x0022;
/// Component ID of the room metadata (protocol-06 §10.4).
pub const ROOM_METADATA: u16 = 0x0023;

/// `UserRolePair`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRolePair {
    /// `opaque user<V>`: the user's URI.
    pub user: UserUri,
    /// `uint32 role_index`.
    pub role_index: u32,
}

fn read_pair(r: &mut Reader<'_>) -> Result<UserRolePair, WireError> {
    Ok(UserRolePair {
        user: crate::common::read_user(r, "UserRolePair.user")?,
        role_index: r.u32("UserRolePair.role_index")?,
    })
}

fn write_pair(w: &mut Writer, p: &UserRolePair) {
    w.opaque(p.user.as_str().as_bytes());
    w.u32(p.role_index);
}

/// `ParticipantListData`: the list in the GroupContext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParticipantListData {
    /// `UserRolePair participants<V>`; a user appears at most once (`WIRE-7.5-unique-user`).
    pub participants: Vec<UserRolePair>,
}

/// `UserindexRolePair`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserIndexRolePair {
    /// `uint32 user_index`: an index into the list before the update.
    pub user_index: u32,
    /// `uint32 role_index`: the new role.
    pub role_index: u32,
}

/// `ParticipantListUpdate`: the AppDataUpdate payload for the participant list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParticipantListUpdate {
    /// `changedRoleParticipants<V>`.
    pub changed_role_participants: Vec<UserIndexRolePair>,
    /// `uint32 removedIndices<V>`.
    pub removed_indices: Vec<u32>,
    /// `addedParticipants<V>`.
    pub added_participants: Vec<UserRolePair>,
}

/// Why an update cannot apply to a list (the committer's fault: `invalidProposal`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// An index beyond the list.
    #[error("index {index} is beyond the participant list of {len}")]
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// The list's length.
        len: usize,
    },
    /// One user touched twice by the update (`WIRE-7.5-touch-once`).
    #[error("{user} is changed more than once in one update")]
    TouchedTwice {
        /// The user.
        user: String,
    },
    /// A user added who is in the list already.
    #[error("{user} is already a participant")]
    AlreadyPresent {
        /// The user.
        user: String,
    },
}

impl ParticipantListData {
    /// The index of a user.
    pub fn index_of(&self, user: &UserUri) -> Option<usize> {
        self.participants.iter().position(|p| &p.user == user)
    }

    /// The role of a user.
    pub fn role_of(&self, user: &UserUri) -> Option<u32> {
        self.participants
            .iter()
            .find(|p| &p.user == user)
            .map(|p| p.role_index)
    }

    /// Applies an update as protocol-06 §7.5 orders it (`WIRE-7.5-apply`): role changes, then
    /// removals, then appends; every index refers to the list before the update; removal
    /// compacts the list keeping order (the draft does not say; see spec-notes); a user may be
    /// touched at most once per update.
    pub fn apply(&self, u: &ParticipantListUpdate) -> Result<Self, ApplyError> {
        let len = self.participants.len();
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        let mut out = self.participants.clone();
        let get = |i: u32| {
            usize::try_from(i)
                .ok()
                .filter(|i| *i < len)
                .ok_or(ApplyError::IndexOutOfRange { index: i, len })
        };
        for c in &u.changed_role_participants {
            let i = get(c.user_index)?;
            let user = self.participants[i].user.as_str();
            if !touched.insert(user) {
                return Err(ApplyError::TouchedTwice {
                    user: user.to_owned(),
                });
            }
            out[i].role_index = c.role_index;
        }
        let mut removed = vec![false; len];
        for &r in &u.removed_indices {
            let i = get(r)?;
            let user = self.participants[i].user.as_str();
            if !touched.insert(user) {
                return Err(ApplyError::TouchedTwice {
                    user: user.to_owned(),
                });
            }
            removed[i] = true;
        }
        let mut kept: Vec<UserRolePair> = out
            .into_iter()
            .zip(removed)
            .filter(|(_, gone)| !gone)
            .map(|(p, _)| p)
            .collect();
        for a in &u.added_participants {
            if !touched.insert(a.user.as_str()) {
                return Err(ApplyError::TouchedTwice {
                    user: a.user.as_str().to_owned(),
                });
            }
            if kept.iter().any(|p| p.user == a.user) {
                return Err(ApplyError::AlreadyPresent {
                    user: a.user.as_str().to_owned(),
                });
            }
            kept.push(a.clone());
        }
        Ok(Self { participants: kept })
    }
}

impl Body for ParticipantListData {
    const NAME: &'static str = "ParticipantListData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "ParticipantListData.participants";
        let participants = r.vector(f, read_pair)?;
        let mut seen = BTreeSet::new();
        if !participants.iter().all(|p| seen.insert(p.user.as_str())) {
            // WIRE-7.5-unique-user
            return Err(r.error(WireErrorKind::BadValue(0), f));
        }
        Ok(Self { participants })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.participants, write_pair);
    }
}

impl Body for ParticipantListUpdate {
    const NAME: &'static str = "ParticipantListUpdate";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let c = "ParticipantListUpdate.changedRoleParticipants";
        let changed_role_participants = r.vector(c, |r| {
            Ok(UserIndexRolePair {
                user_index: r.u32(c)?,
                role_index: r.u32(c)?,
            })
        })?;
        let d = "ParticipantListUpdate.removedIndices";
        let removed_indices = r.vector(d, |r| r.u32(d))?;
        let added_participants = r.vector("ParticipantListUpdate.addedParticipants", read_pair)?;
        Ok(Self {
            changed_role_participants,
            removed_indices,
            added_participants,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.changed_role_participants, |w, c| {
            w.u32(c.user_index);
            w.u32(c.role_index);
        });
        w.vector(&self.removed_indices, |w, i| w.u32(*i));
        w.vector(&self.added_participants, write_pair);
    }
}

/// `RichDescription`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RichDescription {
    /// `media_type` (empty = `text/plain;charset=utf-8`).
    pub media_type: String,
    /// `language_tag`.
    pub language_tag: String,
    /// `description_content`.
    pub description_content: Vec<u8>,
}

/// `RoomMetaData` (and `RoomMetaUpdate`, which has the same format and replaces it wholesale).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomMetaData {
    /// `Uri room_uri`.
    pub room_uri: RoomUri,
    /// `UTF8String room_name`.
    pub room_name: String,
    /// `RichDescription room_descriptions<V>`.
    pub room_descriptions: Vec<RichDescription>,
    /// `Uri room_avatar` (an https URI of an image; empty when none).
    pub room_avatar: String,
    /// `UTF8String room_subject`.
    pub room_subject: String,
    /// `UTF8String room_mood`.
    pub room_mood: String,
}

impl RoomMetaData {
    /// Metadata with only the room URI and a name.
    pub fn named(room_uri: RoomUri, name: &str) -> Self {
        Self {
            room_uri,
            room_name: name.to_owned(),
            room_descriptions: Vec::new(),
            room_avatar: String::new(),
            room_subject: String::new(),
            room_mood: String::new(),
        }
    }
}

impl Body for RoomMetaData {
    const NAME: &'static str = "RoomMetaData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let (uri, opaque) = (r.limits.max_uri, r.limits.max_opaque);
        let room_uri = read_room(r, "RoomMetaData.room_uri")?;
        let room_name = r.utf8_string(opaque, "RoomMetaData.room_name")?;
        let d = "RoomMetaData.room_descriptions";
        let room_descriptions = r.vector(d, |r| {
            Ok(RichDescription {
                media_type: r.text(opaque, "RichDescription.media_type")?,
                language_tag: r.text(opaque, "RichDescription.language_tag")?,
                description_content: r.opaque(opaque, "RichDescription.description_content")?,
            })
        })?;
        let room_avatar = r.text(uri, "RoomMetaData.room_avatar")?;
        if !room_avatar.is_empty() && !room_avatar.starts_with("https://") {
            return Err(r.error(
                WireErrorKind::BadUri("room_avatar must be an https URI".into()),
                "RoomMetaData.room_avatar",
            ));
        }
        Ok(Self {
            room_uri,
            room_name,
            room_descriptions,
            room_avatar,
            room_subject: r.utf8_string(opaque, "RoomMetaData.room_subject")?,
            room_mood: r.utf8_string(opaque, "RoomMetaData.room_mood")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.opaque(self.room_uri.as_str().as_bytes());
        w.opaque(self.room_name.as_bytes());
        w.vector(&self.room_descriptions, |w, d| {
            w.opaque(d.media_type.as_bytes());
            w.opaque(d.language_tag.as_bytes());
            w.opaque(&d.description_content);
        });
        w.opaque(self.room_avatar.as_bytes());
        w.opaque(self.room_subject.as_bytes());
        w.opaque(self.room_mood.as_bytes());
    }
}
