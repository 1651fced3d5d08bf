//! What the node persists of a hosted room (`ROOM-hub-snapshot`): the openmls public storage
//! entries and the current GroupInfo, followed by a SHA-256 digest of everything before it.
//! openmls' memory storage panics on entries it cannot parse, so a snapshot is checked whole
//! before any entry reaches it: a damaged snapshot is an error, never a panic.

use super::{HubError, HubRoom};
use crate::codepoints::CodePoints;
use mimi_wire::Mls;
use mimi_wire::common::GroupInfoOption;
use openmls::prelude::*;
use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use sha2::{Digest, Sha256};

const DIGEST_LEN: usize = 32;

impl HubRoom {
    /// Everything the hub keeps of the room, as bytes the node stores: the openmls public
    /// storage entries (sorted, so equal state gives equal bytes), the current GroupInfo and
    /// a SHA-256 digest of both.
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
        // The pending proposals (a trailing section: a snapshot written before it existed
        // restores with none).
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
            w.opaque(&g.link);
            w.u64(g.until_ms);
        });
        let mut bytes = w.finish();
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        bytes
    }

    /// Restores a room from [`HubRoom::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Self, HubError> {
        let split = bytes
            .len()
            .checked_sub(DIGEST_LEN)
            .ok_or_else(|| HubError::Unusable("the snapshot is truncated".into()))?;
        let (body, digest) = bytes.split_at(split);
        if Sha256::digest(body).as_slice() != digest {
            return Err(HubError::Unusable(
                "the snapshot is damaged (digest mismatch)".into(),
            ));
        }
        let limits = mimi_wire::Limits {
            max_items: usize::MAX,
            max_opaque: 64 * 1024 * 1024,
            ..mimi_wire::Limits::DEFAULT
        };
        let mut r = mimi_wire::codec::Reader::new(body, limits);
        let room = mimi_wire::common::read_room(&mut r, "snapshot.room")?;
        let f = "snapshot.entries";
        let entries = r.vector(f, |r| {
            Ok((r.opaque(usize::MAX, f)?, r.opaque(usize::MAX, f)?))
        })?;
        let group_info = GroupInfoOption::read(&mut r)?;
        let pending = if r.remaining() > 0 {
            let f = "snapshot.pending";
            r.vector(f, |r| {
                Ok(mimi_wire::group_info::PendingProposal {
                    proposal: Mls::from_bytes(r.opaque(usize::MAX, f)?)?,
                    hub_accepted_time: r.u64(f)?,
                })
            })?
        } else {
            Vec::new()
        };
        let link_times = if r.remaining() > 0 {
            let f = "snapshot.link_times";
            r.vector(f, |r| Ok((r.opaque(usize::MAX, f)?, r.u64(f)?)))?
        } else {
            Vec::new()
        };
        let grants = if r.remaining() > 0 {
            let f = "snapshot.grants";
            r.vector(f, |r| {
                let c = r.text(usize::MAX, f)?;
                Ok(super::JoinGrant {
                    client: mimi_wire::id::ClientUri::parse(&c)
                        .map_err(|_| r.error(mimi_wire::codec::WireErrorKind::BadValue(0), f))?,
                    link: r.opaque(usize::MAX, f)?,
                    until_ms: r.u64(f)?,
                })
            })?
        } else {
            Vec::new()
        };
        r.finish("snapshot")?;
        let storage = MemoryStorage::default();
        storage
            .values
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(entries);
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
        })
    }
}
