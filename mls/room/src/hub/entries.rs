//! The hub's openmls public storage as entries it writes incrementally (`ROOM-hub-entries`,
//! issue 16): each entity in CBOR (not openmls' JSON), the ratchet tree split into one entry
//! per node, and a record of which entries changed since the node last persisted them, so
//! that a commit writes what it changed, not the whole room.
//!
//! The storage holds one group (a hub room's), so keys do not name the group:
//! - `ctx`, `tag`, `ith`: the GroupContext, the confirmation tag, the interim transcript hash;
//! - `q/<u32 BE>`: the queued proposals in order, each a CBOR array `[ref, proposal]`;
//! - `t`: the tree's skeleton (the TreeSync document with the leaf and parent arrays' elements
//!   taken out; their counts stay in the array headers), `t/l/<u32 BE>` and `t/p/<u32 BE>` the
//!   leaves and parent nodes; `tw`: the whole tree in one entry, used only if openmls' tree
//!   ever serialises in a shape the splitter does not know.
//!
//! A damaged entry is an error when read, never a panic (CBOR decoding checks everything).

use openmls_rust_crypto::MemoryStorage;
use openmls_traits::public_storage::PublicStorageProvider;
use openmls_traits::storage::{CURRENT_VERSION, traits};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// What can go wrong reading or writing an entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// An entity did not encode.
    #[error("cannot encode a storage entity: {0}")]
    Encode(String),
    /// An entry did not decode.
    #[error("a storage entry is damaged: {0}")]
    Decode(String),
}

/// The changes since the last [`EntryStorage::take_changes`]: `(key, Some(value))` to write,
/// `(key, None)` to delete, in key order.
pub type EntryChanges = Vec<(Vec<u8>, Option<Vec<u8>>)>;

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    dirty: BTreeSet<Vec<u8>>,
    /// The next `write_tree` writes a tree equal to the stored one: skip it.
    skip_tree: bool,
}

impl Inner {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if self.entries.get(&key) != Some(&value) {
            self.entries.insert(key.clone(), value);
            self.dirty.insert(key);
        }
    }

    fn delete(&mut self, key: &[u8]) {
        if self.entries.remove(key).is_some() {
            self.dirty.insert(key.to_vec());
        }
    }

    fn delete_prefix(&mut self, prefix: &[u8]) {
        let keys: Vec<Vec<u8>> = self
            .entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.delete(&k);
        }
    }

    fn with_prefix(&self, prefix: &[u8]) -> Vec<&Vec<u8>> {
        self.entries
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .collect()
    }
}

/// The hub room's openmls public storage (see the module documentation).
#[derive(Default)]
pub struct EntryStorage {
    inner: Mutex<Inner>,
    /// A room stored before `ROOM-hub-entries` (openmls' JSON storage): while it is loaded,
    /// what is read from it is written here as entries (all of them new, so all persisted).
    legacy: Option<MemoryStorage>,
}

impl std::fmt::Debug for EntryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryStorage").finish_non_exhaustive()
    }
}

const CTX: &[u8] = b"ctx";
const TAG: &[u8] = b"tag";
const ITH: &[u8] = b"ith";
const QUEUE: &[u8] = b"q/";
const TREE: &[u8] = b"t";
const TREE_WHOLE: &[u8] = b"tw";
const LEAF: &[u8] = b"t/l/";
const PARENT: &[u8] = b"t/p/";

fn indexed(prefix: &[u8], i: usize) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes());
    k
}

fn encode(v: &impl serde::Serialize) -> Result<Vec<u8>, EntryError> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| EntryError::Encode(e.to_string()))?;
    Ok(out)
}

fn legacy_err(e: impl std::fmt::Display) -> EntryError {
    EntryError::Decode(format!("the stored openmls state does not load: {e}"))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, EntryError> {
    ciborium::from_reader(bytes).map_err(|e| EntryError::Decode(e.to_string()))
}

impl EntryStorage {
    /// A storage holding `entries` (as the node stored them), with nothing to persist.
    pub fn from_entries(entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: entries.into_iter().collect(),
                dirty: BTreeSet::new(),
                skip_tree: false,
            }),
            legacy: None,
        }
    }

    /// A storage that converts `legacy` (openmls' JSON storage) as it is read; call
    /// [`EntryStorage::end_legacy`] once the group is loaded.
    pub fn converting(legacy: MemoryStorage) -> Self {
        Self {
            inner: Mutex::default(),
            legacy: Some(legacy),
        }
    }

    /// Stops reading from the legacy storage.
    pub fn end_legacy(&mut self) {
        self.legacy = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every entry, in key order (a whole snapshot).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lock()
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every entry is to be written again (after a restore from a snapshot the node keeps in
    /// another layout).
    pub fn mark_all_dirty(&self) {
        let mut g = self.lock();
        let keys: Vec<Vec<u8>> = g.entries.keys().cloned().collect();
        g.dirty.extend(keys);
    }

    /// The entries changed since the last call, and forgets them.
    pub fn take_changes(&self) -> EntryChanges {
        let mut g = self.lock();
        let dirty = std::mem::take(&mut g.dirty);
        dirty
            .into_iter()
            .map(|k| {
                let v = g.entries.get(&k).cloned();
                (k, v)
            })
            .collect()
    }

    /// The caller knows the next tree written equals the stored one (its tree hash, which
    /// covers every node, did not change): `write_tree` then keeps the stored entries without
    /// serialising the tree again. Reset it after the write.
    pub fn skip_next_tree_write(&self, skip: bool) {
        let mut g = self.lock();
        g.skip_tree = skip && (g.entries.contains_key(TREE) || g.entries.contains_key(TREE_WHOLE));
    }

    /// How many entries changed since the last [`EntryStorage::take_changes`].
    pub fn pending_changes(&self) -> usize {
        self.lock().dirty.len()
    }

    fn put(&self, key: &[u8], v: &impl serde::Serialize) -> Result<(), EntryError> {
        let bytes = encode(v)?;
        self.lock().put(key.to_vec(), bytes);
        Ok(())
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, EntryError> {
        let g = self.lock();
        g.entries.get(key).map(|b| decode(b)).transpose()
    }

    fn write_tree_doc(&self, doc: &[u8]) {
        let mut g = self.lock();
        match split_tree(doc) {
            Some(parts) => {
                g.delete(TREE_WHOLE);
                g.put(TREE.to_vec(), parts.skeleton);
                for (prefix, elems) in [(LEAF, &parts.leaves), (PARENT, &parts.parents)] {
                    for (i, e) in elems.iter().enumerate() {
                        g.put(indexed(prefix, i), e.to_vec());
                    }
                    // The tree shrank (truncation): the entries past its end go.
                    let stale: Vec<Vec<u8>> = g
                        .entries
                        .range(indexed(prefix, elems.len())..)
                        .take_while(|(k, _)| k.starts_with(prefix))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in stale {
                        g.delete(&k);
                    }
                }
            }
            None => {
                g.delete(TREE);
                g.delete_prefix(LEAF);
                g.delete_prefix(PARENT);
                g.put(TREE_WHOLE.to_vec(), doc.to_vec());
            }
        }
    }

    fn tree_doc(&self) -> Result<Option<Vec<u8>>, EntryError> {
        let g = self.lock();
        if let Some(w) = g.entries.get(TREE_WHOLE) {
            return Ok(Some(w.clone()));
        }
        let Some(skeleton) = g.entries.get(TREE) else {
            return Ok(None);
        };
        let leaves = g.with_prefix(LEAF);
        let parents = g.with_prefix(PARENT);
        join_tree(skeleton, &leaves, &parents)
            .map(Some)
            .ok_or_else(|| EntryError::Decode("the ratchet tree's entries do not fit".into()))
    }
}

impl PublicStorageProvider<CURRENT_VERSION> for EntryStorage {
    type PublicError = EntryError;

    fn write_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<(), EntryError> {
        if std::mem::take(&mut self.lock().skip_tree) {
            return Ok(());
        }
        let doc = encode(tree)?;
        self.write_tree_doc(&doc);
        Ok(())
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        h: &InterimTranscriptHash,
    ) -> Result<(), EntryError> {
        self.put(ITH, h)
    }

    fn write_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        c: &GroupContext,
    ) -> Result<(), EntryError> {
        self.put(CTX, c)
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        t: &ConfirmationTag,
    ) -> Result<(), EntryError> {
        self.put(TAG, t)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        r: &ProposalRef,
        p: &QueuedProposal,
    ) -> Result<(), EntryError> {
        let bytes = encode(&(r, p))?;
        let mut g = self.lock();
        let next = g
            .entries
            .range(QUEUE.to_vec()..)
            .take_while(|(k, _)| k.starts_with(QUEUE))
            .last()
            .and_then(|(k, _)| k.get(QUEUE.len()..))
            .and_then(|i| <[u8; 4]>::try_from(i).ok())
            .map_or(0, |i| u32::from_be_bytes(i) as usize + 1);
        g.put(indexed(QUEUE, next), bytes);
        Ok(())
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, EntryError> {
        if let Some(m) = &self.legacy {
            let v: Vec<(ProposalRef, QueuedProposal)> =
                m.queued_proposals(_group_id).map_err(legacy_err)?;
            for (r, p) in &v {
                self.queue_proposal(_group_id, r, p)?;
            }
            return Ok(v);
        }
        let g = self.lock();
        g.with_prefix(QUEUE)
            .into_iter()
            .map(|b| decode(b))
            .collect()
    }

    fn tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Option<TreeSync>, EntryError> {
        if let Some(m) = &self.legacy {
            let t: Option<TreeSync> = m.tree(_group_id).map_err(legacy_err)?;
            if let Some(t) = &t {
                self.write_tree(_group_id, t)?;
            }
            return Ok(t);
        }
        self.tree_doc()?.map(|d| decode(&d)).transpose()
    }

    fn group_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Option<GroupContext>, EntryError> {
        if let Some(m) = &self.legacy {
            let v: Option<GroupContext> = m.group_context(_group_id).map_err(legacy_err)?;
            if let Some(v) = &v {
                self.put(CTX, v)?;
            }
            return Ok(v);
        }
        self.get(CTX)
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>, EntryError> {
        if let Some(m) = &self.legacy {
            let v: Option<InterimTranscriptHash> =
                m.interim_transcript_hash(_group_id).map_err(legacy_err)?;
            if let Some(v) = &v {
                self.put(ITH, v)?;
            }
            return Ok(v);
        }
        self.get(ITH)
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>, EntryError> {
        if let Some(m) = &self.legacy {
            let v: Option<ConfirmationTag> = m.confirmation_tag(_group_id).map_err(legacy_err)?;
            if let Some(v) = &v {
                self.put(TAG, v)?;
            }
            return Ok(v);
        }
        self.get(TAG)
    }

    fn delete_tree<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), EntryError> {
        let mut g = self.lock();
        g.delete(TREE);
        g.delete(TREE_WHOLE);
        g.delete_prefix(LEAF);
        g.delete_prefix(PARENT);
        Ok(())
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), EntryError> {
        self.lock().delete(TAG);
        Ok(())
    }

    fn delete_context<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), EntryError> {
        self.lock().delete(CTX);
        Ok(())
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), EntryError> {
        self.lock().delete(ITH);
        Ok(())
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
        r: &ProposalRef,
    ) -> Result<(), EntryError> {
        let want = encode(r)?;
        let mut g = self.lock();
        // Each entry is the CBOR array header of two items (one byte, 0x82), then the ref.
        let hit: Vec<Vec<u8>> = g
            .entries
            .range(QUEUE.to_vec()..)
            .take_while(|(k, _)| k.starts_with(QUEUE))
            .filter(|(_, v)| v.get(1..1 + want.len()) == Some(want.as_slice()))
            .map(|(k, _)| k.clone())
            .collect();
        for k in hit {
            g.delete(&k);
        }
        Ok(())
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        _group_id: &GroupId,
    ) -> Result<(), EntryError> {
        self.lock().delete_prefix(QUEUE);
        Ok(())
    }
}

/// The tree document taken apart: the skeleton and the two arrays' elements.
struct TreeParts<'a> {
    skeleton: Vec<u8>,
    leaves: Vec<&'a [u8]>,
    parents: Vec<&'a [u8]>,
}

/// The arrays split out of openmls' TreeSync: `{tree: {leaf_nodes: [..], parent_nodes: [..],
/// ..}, ..}` (serde's field names of `TreeSync` and `ABinaryTree`).
const SPLIT: [&[u8]; 2] = [b"leaf_nodes", b"parent_nodes"];

/// One CBOR item header: (major type, argument, header length). Indefinite lengths are not
/// written by ciborium for these types and are refused.
fn header(b: &[u8], at: usize) -> Option<(u8, u64, usize)> {
    let first = *b.get(at)?;
    let (major, info) = (first >> 5, first & 0x1f);
    let (arg, len) = match info {
        0..=23 => (u64::from(info), 1),
        24 => (u64::from(*b.get(at + 1)?), 2),
        25 => (
            u64::from(u16::from_be_bytes(b.get(at + 1..at + 3)?.try_into().ok()?)),
            3,
        ),
        26 => (
            u64::from(u32::from_be_bytes(b.get(at + 1..at + 5)?.try_into().ok()?)),
            5,
        ),
        27 => (
            u64::from_be_bytes(b.get(at + 1..at + 9)?.try_into().ok()?),
            9,
        ),
        _ => return None,
    };
    Some((major, arg, len))
}

/// The end of the item starting at `at`.
fn skip(b: &[u8], at: usize, depth: u32) -> Option<usize> {
    if depth > 128 {
        return None;
    }
    let (major, arg, hl) = header(b, at)?;
    let mut p = at + hl;
    match major {
        0 | 1 => Some(p),
        2 | 3 => {
            let end = p.checked_add(usize::try_from(arg).ok()?)?;
            (end <= b.len()).then_some(end)
        }
        4 | 5 => {
            let n = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..n {
                p = skip(b, p, depth + 1)?;
            }
            Some(p)
        }
        6 => skip(b, p, depth + 1),
        // Simple values and floats: the argument was the payload.
        _ => Some(p),
    }
}

/// The text of a text-string item at `at`, and its end.
fn text(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (major, arg, hl) = header(b, at)?;
    if major != 3 {
        return None;
    }
    let start = at + hl;
    let end = start.checked_add(usize::try_from(arg).ok()?)?;
    Some((b.get(start..end)?, end))
}

/// Walks a map item at `at` in `b`, calling `f(key, value_start)` for each entry; `f` returns
/// where the entry's value ends. Returns the end of the map.
fn walk_map(
    b: &[u8],
    at: usize,
    out: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], usize, &mut Vec<u8>) -> Option<usize>,
) -> Option<usize> {
    let (major, n, hl) = header(b, at)?;
    if major != 5 {
        return None;
    }
    out.extend_from_slice(b.get(at..at + hl)?);
    let mut p = at + hl;
    for _ in 0..n {
        let (key, kend) = text(b, p)?;
        out.extend_from_slice(b.get(p..kend)?);
        p = f(key, kend, out)?;
    }
    Some(p)
}

fn split_tree(doc: &[u8]) -> Option<TreeParts<'_>> {
    let mut parts = TreeParts {
        skeleton: Vec::with_capacity(256),
        leaves: Vec::new(),
        parents: Vec::new(),
    };
    let mut found = 0;
    let mut skeleton = Vec::with_capacity(256);
    let end = walk_map(doc, 0, &mut skeleton, |key, at, out| {
        if key != b"tree" {
            let end = skip(doc, at, 0)?;
            out.extend_from_slice(doc.get(at..end)?);
            return Some(end);
        }
        walk_map(doc, at, out, |key, at, out| {
            let Some(which) = SPLIT.iter().position(|s| *s == key) else {
                let end = skip(doc, at, 0)?;
                out.extend_from_slice(doc.get(at..end)?);
                return Some(end);
            };
            let (major, n, hl) = header(doc, at)?;
            if major != 4 {
                return None;
            }
            out.extend_from_slice(doc.get(at..at + hl)?);
            let mut p = at + hl;
            for _ in 0..n {
                let e = skip(doc, p, 0)?;
                let list = if which == 0 {
                    &mut parts.leaves
                } else {
                    &mut parts.parents
                };
                list.push(doc.get(p..e)?);
                p = e;
            }
            found += 1;
            Some(p)
        })
    })?;
    (end == doc.len() && found == 2).then(|| {
        parts.skeleton = skeleton;
        parts
    })
}

fn join_tree(skeleton: &[u8], leaves: &[&Vec<u8>], parents: &[&Vec<u8>]) -> Option<Vec<u8>> {
    let total: usize = leaves.iter().chain(parents).map(|e| e.len()).sum();
    let mut out = Vec::with_capacity(skeleton.len() + total);
    let end = walk_map(skeleton, 0, &mut out, |key, at, out| {
        if key != b"tree" {
            let end = skip(skeleton, at, 0)?;
            out.extend_from_slice(skeleton.get(at..end)?);
            return Some(end);
        }
        walk_map(skeleton, at, out, |key, at, out| {
            let Some(which) = SPLIT.iter().position(|s| *s == key) else {
                let end = skip(skeleton, at, 0)?;
                out.extend_from_slice(skeleton.get(at..end)?);
                return Some(end);
            };
            let (major, n, hl) = header(skeleton, at)?;
            let elems = if which == 0 { leaves } else { parents };
            if major != 4 || usize::try_from(n).ok()? != elems.len() {
                return None;
            }
            out.extend_from_slice(skeleton.get(at..at + hl)?);
            for e in elems {
                out.extend_from_slice(e);
            }
            Some(at + hl)
        })
    })?;
    (end == skeleton.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone, Default)]
    struct Tree {
        leaf_nodes: Vec<Option<Vec<u8>>>,
        parent_nodes: Vec<Option<(u8, String)>>,
        default_leaf: Option<Vec<u8>>,
        default_parent: Option<(u8, String)>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone, Default)]
    struct Sync {
        tree: Tree,
        tree_hash: Vec<u8>,
    }

    #[test]
    fn tree_split_and_join_round_trip() {
        let t = Sync {
            tree: Tree {
                leaf_nodes: vec![Some(vec![1, 2, 3]), None, Some(vec![200; 40])],
                parent_nodes: vec![Some((7, "p".into())), None],
                default_leaf: None,
                default_parent: None,
            },
            tree_hash: vec![9; 32],
        };
        let doc = encode(&t).unwrap();
        let parts = split_tree(&doc).expect("split");
        assert_eq!((parts.leaves.len(), parts.parents.len()), (3, 2));
        let leaves: Vec<Vec<u8>> = parts.leaves.iter().map(|e| e.to_vec()).collect();
        let parents: Vec<Vec<u8>> = parts.parents.iter().map(|e| e.to_vec()).collect();
        let joined = join_tree(
            &parts.skeleton,
            &leaves.iter().collect::<Vec<_>>(),
            &parents.iter().collect::<Vec<_>>(),
        )
        .expect("join");
        assert_eq!(joined, doc);
        // One element short does not fit.
        assert!(
            join_tree(
                &parts.skeleton,
                &leaves.iter().take(2).collect::<Vec<_>>(),
                &[]
            )
            .is_none()
        );
    }

    #[test]
    fn only_changed_nodes_are_dirty_and_shrinking_deletes() {
        let s = EntryStorage::default();
        let mut t = Sync {
            tree: Tree {
                leaf_nodes: (0..8).map(|i| Some(vec![i; 10])).collect(),
                parent_nodes: (0..7).map(|i| Some((i, "x".into()))).collect(),
                ..Tree::default()
            },
            tree_hash: vec![1; 32],
        };
        s.write_tree_doc(&encode(&t).unwrap());
        assert_eq!(s.take_changes().len(), 1 + 8 + 7);
        t.tree.leaf_nodes[5] = Some(vec![99; 10]);
        t.tree_hash = vec![2; 32];
        s.write_tree_doc(&encode(&t).unwrap());
        let ch = s.take_changes();
        let keys: Vec<Vec<u8>> = ch.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![TREE.to_vec(), indexed(LEAF, 5)]);
        t.tree.leaf_nodes.truncate(4);
        t.tree.parent_nodes.truncate(3);
        s.write_tree_doc(&encode(&t).unwrap());
        let ch = s.take_changes();
        assert_eq!(ch.iter().filter(|(_, v)| v.is_none()).count(), 4 + 4);
        let back: Sync = decode(&s.tree_doc().unwrap().unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn unknown_shapes_are_kept_whole_and_damage_is_an_error() {
        let s = EntryStorage::default();
        let doc = encode(&vec![1u8, 2, 3]).unwrap();
        s.write_tree_doc(&doc);
        assert_eq!(s.tree_doc().unwrap().unwrap(), doc);
        let bad = EntryStorage::from_entries([(CTX.to_vec(), vec![0xff, 0x00])]);
        assert!(bad.get::<Vec<u8>>(CTX).is_err());
        let bad = EntryStorage::from_entries([(TREE.to_vec(), vec![0xa1])]);
        assert!(bad.tree_doc().is_err());
    }
}
