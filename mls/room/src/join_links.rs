//! Join links (room-policy-03 JoinLinkPolicy, JoinLinks; protocol-06 §5.6 `joiningCode`):
//! the two GroupContext components and what the hub needs to check a code
//! (`ROOM-join-links`). A link is the text `<room URI>?join=<code>`; the bytes a GroupInfoRequest
//! carries as `joiningCode` are the link's bytes exactly as the room's JoinLinks list them
//! (`PROTO-5.6-joining-code`; the drafts leave the format open, spec-notes/decisions.md).

use crate::roles::read_bool;
use mimi_wire::codec::{Body, Reader, WireError, WireErrorKind, Writer};

/// `JoinLinkPolicy` (room-policy-03): how the room's join links work. `expiration` is in
/// seconds from the hub's acceptance of the commit that added a link (0: links do not
/// expire); `multiuser` false makes every link single-use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinLinkPolicy {
    /// `bool on_request`: links are made when a member asks (our CLI always does).
    pub on_request: bool,
    /// `Uri join_link`: where links are served (for us, the room URI).
    pub join_link: String,
    /// `bool multiuser`: a link admits any number of joins.
    pub multiuser: bool,
    /// `uint32 expiration`, seconds.
    pub expiration: u32,
}

impl Body for JoinLinkPolicy {
    const NAME: &'static str = "JoinLinkPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let uri = r.limits.max_uri;
        Ok(Self {
            on_request: read_bool(r, "JoinLinkPolicy.on_request")?,
            join_link: r.text(uri, "JoinLinkPolicy.join_link")?,
            multiuser: read_bool(r, "JoinLinkPolicy.multiuser")?,
            expiration: r.u32("JoinLinkPolicy.expiration")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(u8::from(self.on_request));
        w.opaque(self.join_link.as_bytes());
        w.u8(u8::from(self.multiuser));
        w.u32(self.expiration);
    }
}

/// `JoinLinksData`: `JoinLink join_links<V>` with `struct { opaque join_link<V>; } JoinLink`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinLinksData {
    /// The links, in order.
    pub links: Vec<Vec<u8>>,
}

fn read_links(r: &mut Reader<'_>, f: &'static str) -> Result<Vec<Vec<u8>>, WireError> {
    let max = r.limits.max_uri;
    r.vector(f, |r| {
        let l = r.opaque(max, f)?;
        if l.is_empty() {
            return Err(r.error(WireErrorKind::BadValue(0), f));
        }
        Ok(l)
    })
}

impl Body for JoinLinksData {
    const NAME: &'static str = "JoinLinksData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            links: read_links(r, "JoinLinksData.join_links")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.links, |w, l| w.opaque(l));
    }
}

/// `JoinLinksUpdate` (a delta): `uint32 removedIndices<V>; JoinLink added_links<V>`; the
/// indices are into the list before the update, the additions are appended after the removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinLinksUpdate {
    /// `removedIndices`.
    pub removed_indices: Vec<u32>,
    /// `added_links`.
    pub added_links: Vec<Vec<u8>>,
}

impl Body for JoinLinksUpdate {
    const NAME: &'static str = "JoinLinksUpdate";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "JoinLinksUpdate.removedIndices";
        Ok(Self {
            removed_indices: r.vector(f, |r| r.u32(f))?,
            added_links: read_links(r, "JoinLinksUpdate.added_links")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.removed_indices, |w, i| w.u32(*i));
        w.vector(&self.added_links, |w, l| w.opaque(l));
    }
}

/// Why a JoinLinksUpdate does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinLinksError {
    /// An index past the end, or named twice.
    #[error("removedIndices names link {0}, which is not in the list (or names it twice)")]
    BadIndex(u32),
    /// A link added that is in the list already.
    #[error("a join link is added that the room lists already")]
    Duplicate,
}

impl JoinLinksData {
    /// The list after `u` (removals by index into this list, then additions appended).
    pub fn apply(&self, u: &JoinLinksUpdate) -> Result<Self, JoinLinksError> {
        let mut gone = std::collections::BTreeSet::new();
        for i in &u.removed_indices {
            if usize::try_from(*i).map_or(true, |i| i >= self.links.len()) || !gone.insert(*i) {
                return Err(JoinLinksError::BadIndex(*i));
            }
        }
        let mut links: Vec<Vec<u8>> = self
            .links
            .iter()
            .enumerate()
            .filter(|(i, _)| !u32::try_from(*i).is_ok_and(|i| gone.contains(&i)))
            .map(|(_, l)| l.clone())
            .collect();
        for l in &u.added_links {
            if links.contains(l) {
                return Err(JoinLinksError::Duplicate);
            }
            links.push(l.clone());
        }
        Ok(Self { links })
    }

    /// The index of a link.
    pub fn index_of(&self, link: &[u8]) -> Option<u32> {
        self.links
            .iter()
            .position(|l| l == link)
            .and_then(|i| u32::try_from(i).ok())
    }
}

/// The query key of a join link: `<room URI>?join=<code>`.
pub const LINK_KEY: &str = "?join=";

/// A fresh join link for `room`: 16 random bytes as lowercase hex after [`LINK_KEY`].
pub fn new_link(room: &mimi_wire::id::RoomUri) -> Result<Vec<u8>, getrandom::Error> {
    let mut code = [0u8; 16];
    getrandom::getrandom(&mut code)?;
    let hex: String = code.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}{LINK_KEY}{hex}", room.as_str()).into_bytes())
}

/// A room's join-link components, decoded (both absent in rooms without join links).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinState {
    /// join_link_policy (0x0029), if set.
    pub policy: Option<JoinLinkPolicy>,
    /// join_links (0x002A); empty when absent.
    pub links: JoinLinksData,
}
