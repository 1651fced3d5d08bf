//! What the node persists of a hosted room (`ROOM-hub-snapshot`, `ROOM-hub-entries`).
//!
//! Two parts: the *head* (the room, the current GroupInfo, the pending proposals, the join
//! links' times and grants, ending in a SHA-256 digest of itself) and the openmls storage
//! *entries* ([`EntryStorage`]: CBOR, the tree one entry per node). The node keeps the head in
//! the room's row and the entries in their own rows, and after each change writes the head
//! and only the entries that changed ([`HubRoom::persist`]). [`HubRoom::snapshot`] is both in
//! one blob (the entries embedded in the head), for a room's first row and for tests.
//!
//! A head written before `ROOM-hub-entries` (no format mark; openmls' JSON storage embedded)
//! still restores: its entries are converted as openmls reads them, and all of them are
//! written at the next persist. A damaged head or entry is an error, never a panic.

use super::entries::EntryChanges;
use super::{EntryStorage, HubError, HubRoom};
use crate::codepoints::CodePoints;
use mimi_wire::Mls;
use mimi_wire::common::GroupInfoOption;
use openmls::prelude::*;
use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use sha2::{Digest, Sha256};

const DIGEST_LEN: usize = 32;
/// The head's format mark (a pre-entries head starts with the room's length, never 0).
/// 0x0003 added the grants' signature keys; 0x0002 heads (without them) still restore.
const FORMAT: [u8; 2] = [0x00, 0x03];
const FORMAT_2: [u8; 2] = [0x00, 0x02];

/// What to write after a change: the new head and the entries that changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    /// The head (room row).
    pub head: Vec<u8>,
    /// Entries to write (`Some`) or delete (`None`).
    pub changes: EntryChanges,
}

impl HubRoom {
    /// Everything the hub keeps of the room in one blob: the head with every entry embedded.
    pub fn snapshot(&self) -> Vec<u8> {
        self.head(&self.storage.entries())
    }

    /// The head alone and the entries changed since the last persist (or restore); the node
    /// writes both in the room's transaction. A room whose transaction then fails must not be
    /// used again (the changes are forgotten here): restore it from what is stored.
    pub fn persist(&self) -> Persist {
        Persist {
            head: self.head(&[]),
            changes: self.storage.take_changes(),
        }
    }

    fn head(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut w = mimi_wire::codec::Writer::new();
        let mut bytes = FORMAT.to_vec();
        w.opaque(self.room.as_str().as_bytes());
        self.group_info.write(&mut w);
        w.vector(&self.pending, |w, p| {
            w.opaque(p.proposal.as_bytes());
            w.u64(p.hub_accepted_time);
        });
        // Join links' first-seen times and the open join grants (ROOM-join-links).
        w.vector(&self.link_times, |w, (l, t)| {
            w.opaque(l);
            w.u64(*t);
        });
        w.vector(&self.grants, |w, g| {
            w.opaque(g.client.as_str().as_bytes());
            w.opaque(&g.signature_key);
            w.opaque(&g.link);
            w.u64(g.until_ms);
        });
        w.vector(entries, |w, (k, v)| {
            w.opaque(k);
            w.opaque(v);
        });
        bytes.extend_from_slice(&w.finish());
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        bytes
    }

    /// Restores a room from [`HubRoom::snapshot`] (or a pre-entries snapshot).
    pub fn restore(bytes: &[u8]) -> Result<Self, HubError> {
        Self::restore_from(bytes, Vec::new())
    }

    /// Restores a room from its head and its stored entries (those embedded in the head, if
    /// any, count too).
    pub fn restore_from(head: &[u8], entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Self, HubError> {
        let split = head
            .len()
            .checked_sub(DIGEST_LEN)
            .ok_or_else(|| HubError::Unusable("the snapshot is truncated".into()))?;
        let (body, digest) = head.split_at(split);
        if Sha256::digest(body).as_slice() != digest {
            return Err(HubError::Unusable(
                "the snapshot is damaged (digest mismatch)".into(),
            ));
        }
        if let Some(body) = body.strip_prefix(&FORMAT) {
            Self::restore_head(body, entries, true)
        } else if let Some(body) = body.strip_prefix(&FORMAT_2) {
            Self::restore_head(body, entries, false)
        } else {
            Self::restore_legacy(body)
        }
    }

    fn restore_head(
        body: &[u8],
        mut entries: Vec<(Vec<u8>, Vec<u8>)>,
        grant_keys: bool,
    ) -> Result<Self, HubError> {
        let mut r = mimi_wire::codec::Reader::new(body, limits());
        let room = mimi_wire::common::read_room(&mut r, "snapshot.room")?;
        let group_info = GroupInfoOption::read(&mut r)?;
        let pending = read_pending(&mut r)?;
        let link_times = read_link_times(&mut r)?;
        let grants = read_grants(&mut r, grant_keys)?;
        let f = "snapshot.entries";
        let embedded = r.vector(f, |r| {
            Ok((r.opaque(usize::MAX, f)?, r.opaque(usize::MAX, f)?))
        })?;
        r.finish("snapshot")?;
        // Embedded entries move to their own rows at the next persist (which writes the head
        // without them): they are all to be written.
        let moved = !embedded.is_empty();
        let mut all = embedded;
        all.append(&mut entries);
        let storage = EntryStorage::from_entries(all);
        if moved {
            storage.mark_all_dirty();
        }
        Self::load(room, storage, group_info, pending, link_times, grants)
    }

    /// A head from before `ROOM-hub-entries`: openmls' JSON storage embedded, then the same
    /// sections (the later ones optional: older heads end earlier).
    fn restore_legacy(body: &[u8]) -> Result<Self, HubError> {
        let mut r = mimi_wire::codec::Reader::new(body, limits());
        let room = mimi_wire::common::read_room(&mut r, "snapshot.room")?;
        let f = "snapshot.entries";
        let entries = r.vector(f, |r| {
            Ok((r.opaque(usize::MAX, f)?, r.opaque(usize::MAX, f)?))
        })?;
        let group_info = GroupInfoOption::read(&mut r)?;
        let pending = if r.remaining() > 0 {
            read_pending(&mut r)?
        } else {
            Vec::new()
        };
        let link_times = if r.remaining() > 0 {
            read_link_times(&mut r)?
        } else {
            Vec::new()
        };
        let grants = if r.remaining() > 0 {
            read_grants(&mut r, false)?
        } else {
            Vec::new()
        };
        r.finish("snapshot")?;
        let memory = MemoryStorage::default();
        memory
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(entries);
        let storage = EntryStorage::converting(memory);
        let mut hub = Self::load(room, storage, group_info, pending, link_times, grants)?;
        hub.storage.end_legacy();
        hub.storage.mark_all_dirty();
        Ok(hub)
    }

    fn load(
        room: mimi_wire::id::RoomUri,
        storage: EntryStorage,
        group_info: GroupInfoOption,
        pending: Vec<mimi_wire::group_info::PendingProposal>,
        link_times: Vec<(Vec<u8>, u64)>,
        grants: Vec<super::JoinGrant>,
    ) -> Result<Self, HubError> {
        let group_id = GroupId::from_slice(room.group().as_str().as_bytes());
        // A snapshot with a valid digest but entries openmls cannot read (written by another
        // version, say) still must not take the node down.
        let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            PublicGroup::load(&storage, &group_id)
        }))
        .map_err(|_| HubError::Unusable("the snapshot's MLS state does not load".into()))?;
        let group = loaded
            .map_err(|e| HubError::Mls(format!("{e:?}")))?
            .ok_or_else(|| {
                HubError::Unusable(format!("the snapshot holds no group {}", room.group()))
            })?;
        let codepoints = CodePoints::DRAFT;
        let view = super::view::View::build(&group, &codepoints)?;
        Ok(Self {
            room,
            group,
            storage,
            crypto: RustCrypto::default(),
            codepoints,
            group_info,
            view,
            pending,
            link_times,
            grants,
            fault_join_link_reuse: false,
            fault_external_commit_removes_any_leaf: false,
            fault_operational_ignored: false,
        })
    }
}

fn limits() -> mimi_wire::Limits {
    mimi_wire::Limits {
        max_items: usize::MAX,
        max_opaque: 64 * 1024 * 1024,
        ..mimi_wire::Limits::DEFAULT
    }
}

fn read_pending(
    r: &mut mimi_wire::codec::Reader<'_>,
) -> Result<Vec<mimi_wire::group_info::PendingProposal>, HubError> {
    let f = "snapshot.pending";
    Ok(r.vector(f, |r| {
        Ok(mimi_wire::group_info::PendingProposal {
            proposal: Mls::from_bytes(r.opaque(usize::MAX, f)?)?,
            hub_accepted_time: r.u64(f)?,
        })
    })?)
}

fn read_link_times(r: &mut mimi_wire::codec::Reader<'_>) -> Result<Vec<(Vec<u8>, u64)>, HubError> {
    let f = "snapshot.link_times";
    Ok(r.vector(f, |r| Ok((r.opaque(usize::MAX, f)?, r.u64(f)?)))?)
}

fn read_grants(
    r: &mut mimi_wire::codec::Reader<'_>,
    keys: bool,
) -> Result<Vec<super::JoinGrant>, HubError> {
    let f = "snapshot.grants";
    Ok(r.vector(f, |r| {
        let c = r.text(usize::MAX, f)?;
        Ok(super::JoinGrant {
            client: mimi_wire::id::ClientUri::parse(&c)
                .map_err(|_| r.error(mimi_wire::codec::WireErrorKind::BadValue(0), f))?,
            signature_key: if keys {
                r.opaque(usize::MAX, f)?
            } else {
                Vec::new()
            },
            link: r.opaque(usize::MAX, f)?,
            until_ms: r.u64(f)?,
        })
    })?)
}
