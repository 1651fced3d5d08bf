//! A follower's view of who is in a room (`ROOM-roster`): the credential at every leaf of the
//! room's MLS tree, kept from the hub's fanout alone, so that a follower delivers a room's
//! traffic to exactly the local clients that are members (`PROTO-follower-membership`).
//!
//! A follower is not an MLS member and keeps no `PublicGroup`: the hub has already validated
//! every handshake it fans out, and a follower needs only the tree's shape. It starts from the
//! ratchet tree of a Welcome (or of a local device's external commit), and then applies, in the
//! hub's order, every proposal and commit of the room, the way RFC 9420 §12.3 and §12.4.2 change
//! the tree's leaves:
//!
//! - a proposal sent on its own is remembered for its epoch by its ProposalRef (RFC 9420 §5.2:
//!   `RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)`), so that a commit naming it
//!   by reference can be applied (the hub's external Removes, SelfRemoves, Adds by reference);
//! - a commit applies its Updates, then its Removes and SelfRemoves (the leaf blanked, trailing
//!   blank leaves truncated), then its Adds in order (each at the leftmost blank leaf, or a new
//!   one at the right), then its path (the committer's leaf, or for an external commit the
//!   joiner's new leaf at the leftmost blank), and moves to the next epoch.
//!
//! The passive-client vectors of the mlswg (suites 1 to 3, 200 random epochs) check that this
//! gives the same leaves as openmls' `PublicGroup` at every epoch.

use crate::mls::client_of;
use mimi_wire::id::ClientUri;
use openmls::prelude::tls_codec::{DeserializeBytes as _, Size as _};
use openmls::prelude::{Ciphersuite, Credential, OpenMlsCrypto as _, ProposalIn, RatchetTreeIn};
use openmls_rust_crypto::RustCrypto;

/// Why the roster could not follow a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The bytes are not the MLS structure expected.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// The structure.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A commit for an epoch after the roster's: something was missed.
    #[error("a commit for epoch {found} while the roster is at epoch {expected}")]
    EpochGap {
        /// The roster's epoch.
        expected: u64,
        /// The commit's.
        found: u64,
    },
    /// A commit names a proposal the roster has not seen in this epoch.
    #[error("a commit names a proposal by reference that was not fanned out in epoch {epoch}")]
    UnknownProposal {
        /// The epoch.
        epoch: u64,
    },
    /// A proposal or commit names a leaf outside the tree or a blank one.
    #[error("leaf {0} is not a member")]
    NoSuchLeaf(u32),
    /// The cipher suite is not one we know.
    #[error("unsupported cipher suite 0x{0:04x}")]
    Suite(u16),
}

fn malformed(what: &'static str, detail: impl Into<String>) -> RosterError {
    RosterError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// What a proposal does to the leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Effect {
    /// A new member with this credential (TLS bytes).
    Add(Vec<u8>),
    /// The leaf's new credential.
    Update(u32, Vec<u8>),
    /// The leaf goes.
    Remove(u32),
    /// Nothing to the leaves (PSK, ReInit, ExternalInit, GroupContextExtensions,
    /// AppDataUpdate, ...).
    None,
}

/// A proposal of the current epoch, remembered for commits that name it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pending {
    reference: Vec<u8>,
    effect: Effect,
}

/// What a commit changed, in credentials (TLS bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The epoch the commit was for (the roster is now at the next).
    pub epoch: u64,
    /// Members that left.
    pub removed: Vec<Vec<u8>>,
    /// Members that joined.
    pub added: Vec<Vec<u8>>,
}

/// What [`Roster::apply`] made of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A commit of the roster's epoch, applied.
    Commit(Change),
    /// A commit of an earlier epoch (already reflected, e.g. the roster was taken from the
    /// tree after it): nothing changed.
    StaleCommit,
    /// A proposal, remembered for this epoch (or of another epoch, ignored).
    Proposal,
    /// Not a handshake (an application message, a Welcome, ...).
    NotHandshake,
}

/// The leaves of a room's tree as a follower follows them (`ROOM-roster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    suite: u16,
    /// `None` until the epoch is known (a tree taken from a Welcome alone).
    epoch: Option<u64>,
    /// The credential (TLS bytes) at every leaf; `None` is a blank leaf.
    leaves: Vec<Option<Vec<u8>>>,
    pending: Vec<Pending>,
}

/// A byte cursor over MLS structures (RFC 9420 §2.1.2 varints).
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RosterError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| malformed(self.what, format!("truncated at offset {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, RosterError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, RosterError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, RosterError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, RosterError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn varint(&mut self) -> Result<usize, RosterError> {
        let first = self.u8()?;
        let (len, mut v) = match first >> 6 {
            0 => (1, usize::from(first & 0x3f)),
            1 => (2, usize::from(first & 0x3f)),
            2 => (4, usize::from(first & 0x3f)),
            _ => return Err(malformed(self.what, "bad varint")),
        };
        for _ in 1..len {
            v = (v << 8) | usize::from(self.u8()?);
        }
        Ok(v)
    }
    fn opaque(&mut self) -> Result<&'a [u8], RosterError> {
        let n = self.varint()?;
        self.take(n)
    }
    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    fn skip(&mut self, n: usize) -> Result<(), RosterError> {
        self.take(n).map(|_| ())
    }
}

/// The credential at the start of a LeafNode (RFC 9420 §7.2: encryption_key, signature_key,
/// credential, ...) as TLS bytes; the cursor is left after the credential.
fn leaf_credential(c: &mut Cur<'_>) -> Result<Vec<u8>, RosterError> {
    leaf_key_and_credential(c).map(|(_, cred)| cred)
}

/// A LeafNode's signature key and credential (RFC 9420 §7.2: encryption_key, signature_key,
/// credential, ...); the cursor is left after the credential.
fn leaf_key_and_credential(c: &mut Cur<'_>) -> Result<(Vec<u8>, Vec<u8>), RosterError> {
    c.opaque()?;
    let key = c.opaque()?.to_vec();
    let rest = c.rest();
    let (_, after) = Credential::tls_deserialize_bytes(rest)
        .map_err(|e| malformed("LeafNode.credential", e.to_string()))?;
    let n = rest.len() - after.len();
    let bytes = rest[..n].to_vec();
    c.skip(n)?;
    Ok((key, bytes))
}

/// One proposal (RFC 9420 §12.1) at the cursor: its effect (the sender fills in Update and
/// SelfRemove) and the cursor after it.
enum Raw {
    Add(Vec<u8>),
    Update(Vec<u8>),
    Remove(u32),
    SelfRemove,
    Other,
}

fn proposal(c: &mut Cur<'_>) -> Result<Raw, RosterError> {
    let rest = c.rest();
    let (p, after) = ProposalIn::tls_deserialize_bytes(rest)
        .map_err(|e| malformed("Proposal", e.to_string()))?;
    let n = rest.len() - after.len();
    let mut body = Cur::new(&rest[..n], "Proposal");
    body.u16()?;
    let raw = match p {
        ProposalIn::Add(_) => {
            // KeyPackage: version, cipher_suite, init_key, leaf_node, ...
            body.u16()?;
            body.u16()?;
            body.opaque()?;
            Raw::Add(leaf_credential(&mut body)?)
        }
        ProposalIn::Update(_) => Raw::Update(leaf_credential(&mut body)?),
        ProposalIn::Remove(r) => Raw::Remove(r.removed().u32()),
        ProposalIn::SelfRemove => Raw::SelfRemove,
        _ => Raw::Other,
    };
    c.skip(n)?;
    Ok(raw)
}

/// RFC 9420 §6 Sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sender {
    Member(u32),
    External,
    NewMemberProposal,
    NewMemberCommit,
}

/// An item of a commit's proposal list.
enum Item {
    Value(Raw),
    Reference(Vec<u8>),
}

/// A PublicMessage handshake, as much of it as the roster needs.
enum Handshake {
    Proposal {
        epoch: u64,
        sender: Sender,
        raw: Raw,
        /// The AuthenticatedContent bytes (RFC 9420 §6.1) for its ProposalRef.
        authenticated_content: Vec<u8>,
    },
    Commit {
        epoch: u64,
        sender: Sender,
        items: Vec<Item>,
        /// The credential of the path's leaf.
        path: Option<Vec<u8>>,
        /// The signature key of the path's leaf.
        path_key: Option<Vec<u8>>,
    },
}

/// Parses an MLSMessage; `None` for anything but a PublicMessage proposal or commit.
fn handshake(message: &[u8]) -> Result<Option<Handshake>, RosterError> {
    let mut c = Cur::new(message, "MLSMessage");
    let _version = c.u16()?;
    let wire_format = c.u16()?;
    if wire_format != 1 {
        return Ok(None);
    }
    // FramedContent (RFC 9420 §6).
    c.opaque()?; // group_id
    let epoch = c.u64()?;
    let sender = match c.u8()? {
        1 => Sender::Member(c.u32()?),
        2 => {
            c.u32()?;
            Sender::External
        }
        3 => Sender::NewMemberProposal,
        4 => Sender::NewMemberCommit,
        t => return Err(malformed("Sender", format!("sender type {t}"))),
    };
    c.opaque()?; // authenticated_data
    match c.u8()? {
        2 => {
            let raw = proposal(&mut c)?;
            c.opaque()?; // FramedContentAuthData.signature
            let authenticated_content = message[2..c.pos].to_vec();
            Ok(Some(Handshake::Proposal {
                epoch,
                sender,
                raw,
                authenticated_content,
            }))
        }
        3 => {
            let n = c.varint()?;
            let list = c.take(n)?;
            let mut l = Cur::new(list, "Commit.proposals");
            let mut items = Vec::new();
            while l.pos < list.len() {
                items.push(match l.u8()? {
                    1 => Item::Value(proposal(&mut l)?),
                    2 => Item::Reference(l.opaque()?.to_vec()),
                    t => return Err(malformed("ProposalOrRef", format!("type {t}"))),
                });
            }
            let (path, path_key) = match c.u8()? {
                0 => (None, None),
                1 => {
                    let (k, cred) = leaf_key_and_credential(&mut c)?;
                    (Some(cred), Some(k))
                }
                t => return Err(malformed("Commit.path", format!("optional tag {t}"))),
            };
            Ok(Some(Handshake::Commit {
                epoch,
                sender,
                items,
                path,
                path_key,
            }))
        }
        _ => Ok(None),
    }
}

/// RFC 9420 §5.2 RefHash with the suite's hash.
fn ref_hash(suite: u16, label: &[u8], value: &[u8]) -> Result<Vec<u8>, RosterError> {
    let cs = Ciphersuite::try_from(suite).map_err(|_| RosterError::Suite(suite))?;
    let mut w = mimi_wire::codec::Writer::new();
    w.opaque(label);
    w.opaque(value);
    RustCrypto::default()
        .hash(cs.hash_algorithm(), &w.finish())
        .map_err(|_| RosterError::Suite(suite))
}

impl Roster {
    /// The roster of a tree (`optional<Node> ratchet_tree<V>`, TLS bytes) of cipher suite
    /// `suite` at `epoch` (`None`: learnt from the next commit).
    pub fn from_tree(suite: u16, epoch: Option<u64>, tree: &[u8]) -> Result<Self, RosterError> {
        Ciphersuite::try_from(suite).map_err(|_| RosterError::Suite(suite))?;
        let parsed = RatchetTreeIn::tls_deserialize_exact_bytes(tree)
            .map_err(|e| malformed("ratchet_tree", e.to_string()))?;
        let mut nodes = parsed.nodes();
        let mut c = Cur::new(tree, "ratchet_tree");
        let n = c.varint()?;
        let end = c.pos + n;
        let mut leaves = Vec::new();
        let mut index = 0usize;
        while c.pos < end {
            let present = c.u8()?;
            let entry = if present == 1 {
                let node = nodes
                    .next()
                    .ok_or_else(|| malformed("ratchet_tree", "fewer nodes than entries"))?;
                let len = node.tls_serialized_len();
                let bytes = c.take(len)?;
                let mut nc = Cur::new(bytes, "Node");
                match nc.u8()? {
                    1 => Some(leaf_credential(&mut nc)?),
                    _ => None,
                }
            } else {
                None
            };
            if index.is_multiple_of(2) {
                leaves.push(entry);
            }
            index += 1;
        }
        truncate(&mut leaves);
        Ok(Self {
            suite,
            epoch,
            leaves,
            pending: Vec::new(),
        })
    }

    /// The cipher suite.
    pub fn suite(&self) -> u16 {
        self.suite
    }

    /// The epoch the roster is at, when known.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The credential (TLS bytes) at every leaf, by leaf index (`None`: blank).
    pub fn leaves(&self) -> &[Option<Vec<u8>>] {
        &self.leaves
    }

    /// The MIMI clients that are members (credentials that are not client URIs are left out).
    pub fn clients(&self) -> Vec<ClientUri> {
        self.leaves
            .iter()
            .flatten()
            .filter_map(|c| client_of_bytes(c))
            .collect()
    }

    /// Follows one fanned-out MLSMessage (TLS bytes) in the hub's order.
    pub fn apply(&mut self, message: &[u8]) -> Result<Applied, RosterError> {
        let Some(h) = handshake(message)? else {
            return Ok(Applied::NotHandshake);
        };
        match h {
            Handshake::Proposal {
                epoch,
                sender,
                raw,
                authenticated_content,
            } => {
                if self.epoch.is_some_and(|e| e != epoch) {
                    return Ok(Applied::Proposal);
                }
                let effect = self.effect(raw, sender)?;
                let reference = ref_hash(
                    self.suite,
                    b"MLS 1.0 Proposal Reference",
                    &authenticated_content,
                )?;
                self.pending.push(Pending { reference, effect });
                Ok(Applied::Proposal)
            }
            Handshake::Commit {
                epoch,
                sender,
                items,
                path,
                ..
            } => {
                match self.epoch {
                    Some(e) if epoch < e => return Ok(Applied::StaleCommit),
                    Some(e) if epoch > e => {
                        return Err(RosterError::EpochGap {
                            expected: e,
                            found: epoch,
                        });
                    }
                    _ => {}
                }
                let mut effects = Vec::new();
                for item in items {
                    effects.push(match item {
                        Item::Value(raw) => self.effect(raw, sender)?,
                        Item::Reference(r) => self
                            .pending
                            .iter()
                            .find(|p| p.reference == r)
                            .map(|p| p.effect.clone())
                            .ok_or(RosterError::UnknownProposal { epoch })?,
                    });
                }
                let change = self.commit(epoch, sender, &effects, path)?;
                Ok(Applied::Commit(change))
            }
        }
    }

    fn effect(&self, raw: Raw, sender: Sender) -> Result<Effect, RosterError> {
        Ok(match (raw, sender) {
            (Raw::Add(c), _) => Effect::Add(c),
            (Raw::Update(c), Sender::Member(l)) => Effect::Update(l, c),
            (Raw::Remove(l), _) => Effect::Remove(l),
            (Raw::SelfRemove, Sender::Member(l)) => Effect::Remove(l),
            (Raw::Update(_) | Raw::SelfRemove, _) => {
                return Err(malformed(
                    "Proposal",
                    "Update or SelfRemove from a non-member",
                ));
            }
            (Raw::Other, _) => Effect::None,
        })
    }

    fn commit(
        &mut self,
        epoch: u64,
        sender: Sender,
        effects: &[Effect],
        path: Option<Vec<u8>>,
    ) -> Result<Change, RosterError> {
        let mut leaves = self.leaves.clone();
        let mut change = Change {
            epoch,
            ..Change::default()
        };
        for e in effects {
            if let Effect::Update(l, c) = e {
                *slot(&mut leaves, *l)? = Some(c.clone());
            }
        }
        for e in effects {
            if let Effect::Remove(l) = e {
                let s = slot(&mut leaves, *l)?;
                if let Some(c) = s.take() {
                    change.removed.push(c);
                }
            }
        }
        truncate(&mut leaves);
        for e in effects {
            if let Effect::Add(c) = e {
                insert(&mut leaves, c.clone());
                change.added.push(c.clone());
            }
        }
        match (sender, path) {
            (Sender::Member(l), Some(c)) => *slot(&mut leaves, l)? = Some(c),
            (Sender::NewMemberCommit, Some(c)) => {
                insert(&mut leaves, c.clone());
                change.added.push(c);
            }
            (Sender::NewMemberCommit, None) => {
                return Err(malformed("Commit", "an external commit without a path"));
            }
            _ => {}
        }
        self.leaves = leaves;
        self.epoch = Some(epoch + 1);
        self.pending.clear();
        Ok(change)
    }

    /// Storage form (ours; versioned).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = mimi_wire::codec::Writer::new();
        w.u8(1);
        w.u16(self.suite);
        match self.epoch {
            Some(e) => {
                w.u8(1);
                w.u64(e);
            }
            None => w.u8(0),
        }
        w.u32(self.leaves.len() as u32);
        for l in &self.leaves {
            match l {
                Some(c) => {
                    w.u8(1);
                    w.u32(c.len() as u32);
                    w.raw(c);
                }
                None => w.u8(0),
            }
        }
        w.u32(self.pending.len() as u32);
        for p in &self.pending {
            w.u32(p.reference.len() as u32);
            w.raw(&p.reference);
            match &p.effect {
                Effect::Add(c) => {
                    w.u8(1);
                    w.u32(c.len() as u32);
                    w.raw(c);
                }
                Effect::Update(l, c) => {
                    w.u8(2);
                    w.u32(*l);
                    w.u32(c.len() as u32);
                    w.raw(c);
                }
                Effect::Remove(l) => {
                    w.u8(3);
                    w.u32(*l);
                }
                Effect::None => w.u8(0),
            }
        }
        w.finish()
    }

    /// Reads [`Roster::encode`]'s form.
    pub fn decode(bytes: &[u8]) -> Result<Self, RosterError> {
        let mut c = Cur::new(bytes, "stored roster");
        if c.u8()? != 1 {
            return Err(malformed("stored roster", "unknown version"));
        }
        let suite = c.u16()?;
        let epoch = match c.u8()? {
            0 => None,
            _ => Some(c.u64()?),
        };
        let n = c.u32()? as usize;
        let mut leaves = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            leaves.push(match c.u8()? {
                0 => None,
                _ => {
                    let len = c.u32()? as usize;
                    Some(c.take(len)?.to_vec())
                }
            });
        }
        let n = c.u32()? as usize;
        let mut pending = Vec::with_capacity(n.min(1 << 12));
        for _ in 0..n {
            let len = c.u32()? as usize;
            let reference = c.take(len)?.to_vec();
            let effect = match c.u8()? {
                1 => {
                    let len = c.u32()? as usize;
                    Effect::Add(c.take(len)?.to_vec())
                }
                2 => {
                    let l = c.u32()?;
                    let len = c.u32()? as usize;
                    Effect::Update(l, c.take(len)?.to_vec())
                }
                3 => Effect::Remove(c.u32()?),
                _ => Effect::None,
            };
            pending.push(Pending { reference, effect });
        }
        if c.pos != bytes.len() {
            return Err(malformed("stored roster", "trailing bytes"));
        }
        Ok(Self {
            suite,
            epoch,
            leaves,
            pending,
        })
    }
}

/// The client URI of a credential in TLS bytes.
pub fn client_of_bytes(credential: &[u8]) -> Option<ClientUri> {
    let (c, rest) = Credential::tls_deserialize_bytes(credential).ok()?;
    if !rest.is_empty() {
        return None;
    }
    client_of(&c)
}

/// The epoch of a PublicMessage commit (`None` for anything else).
pub fn commit_epoch(message: &[u8]) -> Option<u64> {
    match handshake(message) {
        Ok(Some(Handshake::Commit { epoch, .. })) => Some(epoch),
        _ => None,
    }
}

fn slot(leaves: &mut [Option<Vec<u8>>], leaf: u32) -> Result<&mut Option<Vec<u8>>, RosterError> {
    leaves
        .get_mut(leaf as usize)
        .ok_or(RosterError::NoSuchLeaf(leaf))
}

fn truncate(leaves: &mut Vec<Option<Vec<u8>>>) {
    while leaves.last().is_some_and(Option::is_none) {
        leaves.pop();
    }
}

fn insert(leaves: &mut Vec<Option<Vec<u8>>>, credential: Vec<u8>) {
    match leaves.iter_mut().find(|l| l.is_none()) {
        Some(s) => *s = Some(credential),
        None => leaves.push(Some(credential)),
    }
}

/// The leaf of the member that sent `message` if it is a SelfRemove proposal (a
/// PublicMessage), else `None`: what an external joiner needs to know of the pending
/// proposals it includes (`ROOM-client-join-pending`).
pub fn self_remove_sender(message: &[u8]) -> Option<u32> {
    match handshake(message) {
        Ok(Some(Handshake::Proposal {
            sender: Sender::Member(leaf),
            raw: Raw::SelfRemove,
            ..
        })) => Some(leaf),
        _ => None,
    }
}

/// The client URI of the joiner of an external commit (a PublicMessage commit from a
/// `new_member_commit` sender, named by its path's leaf credential), else `None`: what the
/// hub's node checks against the GroupInfo requesters (protocol-06 §7.7 step 3).
pub fn external_committer(message: &[u8]) -> Option<ClientUri> {
    external_committer_key(message).map(|(c, _)| c)
}

/// [`external_committer`] with the signature key of the joiner's new leaf: the hub ties the
/// commit to the groupInfo request signed with that key (`requestingSignatureKey`,
/// protocol-06 §5.6 and §7.7 step 3; `PROTO-5.6-requester`).
pub fn external_committer_key(message: &[u8]) -> Option<(ClientUri, Vec<u8>)> {
    match handshake(message) {
        Ok(Some(Handshake::Commit {
            sender: Sender::NewMemberCommit,
            path: Some(credential),
            path_key: Some(key),
            ..
        })) => client_of_bytes(&credential).map(|c| (c, key)),
        _ => None,
    }
}
