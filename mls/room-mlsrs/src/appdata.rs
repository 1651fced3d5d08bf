//! The draft-ietf-mls-extensions wire structs mls-rs 0.57 does not know, encoded exactly as
//! openmls 0.9.2 (`extensions-draft`) encodes them, and the translation of a commit's
//! AppDataUpdate proposals into the GroupContext extension list openmls computes.
//!
//! ```text
//! struct { uint16 component_id; uint8 op; select(op) { case update: opaque update<V>; case remove: ; } } AppDataUpdate;
//! struct { uint16 component_id; opaque data<V>; } ComponentData;
//! struct { ComponentData component_data<V>; } AppDataDictionary;   // sorted by id, unique
//! ```

use mimi_room::codepoints::CodePoints;
use mimi_room::state::{ComponentOp, Resolution, RoomState, StateError};
use mls_rs::extension::ExtensionType;
use mls_rs::group::proposal::CustomProposal;
use mls_rs::{Extension, ExtensionList};
use std::collections::BTreeMap;

/// openmls `ProposalType::AppDataUpdate` (mls-extensions; a custom type to mls-rs).
pub const APP_DATA_UPDATE: u16 = 0x0008;
/// openmls `ProposalType::SelfRemove` (mls-extensions; mls-rs's own `SELF_REMOVE` is the
/// older 0xF003, so to mls-rs this is an unknown custom type it only advertises).
pub const SELF_REMOVE: u16 = 0x000a;
/// openmls `ExtensionType::AppDataDictionary`.
pub const APP_DATA_DICTIONARY: u16 = 0x0006;

/// Why AppData bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppDataError {
    /// Truncated or malformed bytes.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The dictionary is not sorted by component ID or repeats one.
    #[error("the app_data_dictionary is not sorted or repeats a component")]
    Unsorted,
    /// The resolver refused the updates.
    #[error(transparent)]
    State(#[from] StateError),
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    // RFC 9420 §2.1.2 variable-size length (at most 2^30 - 1).
    if n < 0x40 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&((n as u16) | 0x4000).to_be_bytes());
    } else {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AppDataError> {
        if self.0.len() < n {
            return Err(AppDataError::Malformed(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, AppDataError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, AppDataError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn varint(&mut self, what: &'static str) -> Result<usize, AppDataError> {
        let first = self.u8(what)?;
        let (len, mut v) = match first >> 6 {
            0 => (0, usize::from(first & 0x3f)),
            1 => (1, usize::from(first & 0x3f)),
            2 => (3, usize::from(first & 0x3f)),
            _ => return Err(AppDataError::Malformed(what)),
        };
        for b in self.take(len, what)? {
            v = (v << 8) | usize::from(*b);
        }
        // Minimal encoding only (RFC 9420 §2.1.2).
        let minimal = match len {
            0 => true,
            1 => v >= 0x40,
            _ => v >= 0x4000,
        };
        if !minimal {
            return Err(AppDataError::Malformed(what));
        }
        Ok(v)
    }
    fn vl(&mut self, what: &'static str) -> Result<&'a [u8], AppDataError> {
        let n = self.varint(what)?;
        self.take(n, what)
    }
    fn end(&self, what: &'static str) -> Result<(), AppDataError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppDataError::Malformed(what))
        }
    }
}

/// One AppDataUpdate proposal's body, as a resolver op.
pub fn decode_update(body: &[u8]) -> Result<ComponentOp, AppDataError> {
    let what = "AppDataUpdate";
    let mut r = Reader(body);
    let id = r.u16(what)?;
    let op = match r.u8(what)? {
        1 => ComponentOp::Update(id, r.vl(what)?.to_vec()),
        2 => ComponentOp::Remove(id),
        _ => return Err(AppDataError::Malformed(what)),
    };
    r.end(what)?;
    Ok(op)
}

/// The custom proposal mls-rs sends for an AppDataUpdate `update` of `component_id`.
pub fn update_proposal(component_id: u16, data: &[u8]) -> CustomProposal {
    let mut body = component_id.to_be_bytes().to_vec();
    body.push(1);
    put_varint(&mut body, data.len());
    body.extend_from_slice(data);
    CustomProposal::new(APP_DATA_UPDATE.into(), body)
}

/// Decodes an `AppDataDictionary` (extension data).
pub fn decode_dictionary(bytes: &[u8]) -> Result<BTreeMap<u16, Vec<u8>>, AppDataError> {
    let what = "AppDataDictionary";
    let mut outer = Reader(bytes);
    let mut r = Reader(outer.vl(what)?);
    outer.end(what)?;
    let mut out = BTreeMap::new();
    let mut last: Option<u16> = None;
    while !r.0.is_empty() {
        let id = r.u16(what)?;
        if last.is_some_and(|l| l >= id) {
            return Err(AppDataError::Unsorted);
        }
        last = Some(id);
        out.insert(id, r.vl(what)?.to_vec());
    }
    Ok(out)
}

/// Encodes an `AppDataDictionary` (BTreeMap order is the sorted order the draft needs).
pub fn encode_dictionary(dict: &BTreeMap<u16, Vec<u8>>) -> Vec<u8> {
    let mut inner = Vec::new();
    for (id, data) in dict {
        inner.extend_from_slice(&id.to_be_bytes());
        put_varint(&mut inner, data.len());
        inner.extend_from_slice(data);
    }
    let mut out = Vec::new();
    put_varint(&mut out, inner.len());
    out.extend_from_slice(&inner);
    out
}

/// The dictionary in a GroupContext's extensions (empty if there is none).
pub fn dictionary_of(exts: &ExtensionList) -> Result<BTreeMap<u16, Vec<u8>>, AppDataError> {
    match exts.get(ExtensionType::new(APP_DATA_DICTIONARY)) {
        Some(e) => decode_dictionary(&e.extension_data),
        None => Ok(BTreeMap::new()),
    }
}

/// The room state of a GroupContext's extensions.
pub fn state_of(exts: &ExtensionList, cp: &CodePoints) -> Result<RoomState, AppDataError> {
    let dict = dictionary_of(exts)?;
    Ok(RoomState::from_dictionary(cp, |id| {
        dict.get(&id).map(|v| v.as_slice())
    })?)
}

/// The extension list after a commit whose AppDataUpdates are `ops` (in commit order),
/// resolved with mimi-room's resolver, built exactly as openmls 0.9.2 builds it
/// (`PublicGroupDiff::apply_app_data_update_proposals`): the old dictionary with each
/// touched component set, and the dictionary extension **removed and appended at the end**
/// (openmls `Extensions::add_or_replace`), not replaced in place (mls-rs `ExtensionList::set`).
pub fn apply(
    exts: &ExtensionList,
    cp: &CodePoints,
    ops: &[ComponentOp],
) -> Result<(ExtensionList, Resolution), AppDataError> {
    let mut dict = dictionary_of(exts)?;
    let before = RoomState::from_dictionary(cp, |id| dict.get(&id).map(|v| v.as_slice()))?;
    // openmls hands the resolver the proposals sorted by component ID, commit order within
    // one component (`app_data_update_proposals()`); a stable sort gives the same list.
    let mut sorted = ops.to_vec();
    sorted.sort_by_key(|op| match op {
        ComponentOp::Update(id, _) | ComponentOp::Remove(id) => *id,
    });
    let res = before.resolve(cp, &sorted)?;
    for (id, bytes) in &res.changes {
        dict.insert(*id, bytes.clone());
    }
    let mut out: Vec<Extension> = exts
        .iter()
        .filter(|e| e.extension_type != ExtensionType::new(APP_DATA_DICTIONARY))
        .cloned()
        .collect();
    out.push(Extension::new(
        ExtensionType::new(APP_DATA_DICTIONARY),
        encode_dictionary(&dict),
    ));
    Ok((ExtensionList::from(out), res))
}
