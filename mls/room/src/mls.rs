//! The MLS settings every MIMI room uses, and the bridge between openmls' AppDataUpdate API and
//! our resolver.

use crate::codepoints::CodePoints;
use crate::state::{ComponentOp, RoomState, StateError};
use mimi_wire::id::ClientUri;
use openmls::component::ComponentData;
use openmls::prelude::*;

/// The cipher suite of our rooms.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The suites devices publish KeyPackages for and rooms may use (`ROOM-suites`): 0x0001 and
/// 0x0003, both X25519 + Ed25519 (so a device's one signature key serves both).
pub const SUITES: [Ciphersuite; 2] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
];

/// Leaf capabilities every client of a MIMI room must have: the app_data_dictionary extension,
/// AppDataUpdate and SelfRemove proposals (mls-extensions-09; `ROOM-mls-capabilities`).
pub fn leaf_capabilities() -> Capabilities {
    Capabilities::new(
        None,
        None,
        Some(&[ExtensionType::AppDataDictionary]),
        Some(&[ProposalType::AppDataUpdate, ProposalType::SelfRemove]),
        None,
    )
}

/// The required capabilities of the GroupContext.
pub fn required_capabilities() -> RequiredCapabilitiesExtension {
    RequiredCapabilitiesExtension::new(
        &[ExtensionType::AppDataDictionary],
        &[ProposalType::AppDataUpdate, ProposalType::SelfRemove],
        &[],
    )
}

/// The room state in a GroupContext.
pub fn state_of(gc: &GroupContext, cp: &CodePoints) -> Result<RoomState, StateError> {
    let dict = gc
        .extensions()
        .app_data_dictionary()
        .map(|e| e.dictionary());
    RoomState::from_dictionary(cp, |id| dict.and_then(|d| d.get(&id)))
}

/// openmls' AppDataUpdate proposals as resolver input.
pub fn ops_of<'a>(props: impl Iterator<Item = &'a AppDataUpdateProposal>) -> Vec<ComponentOp> {
    props
        .map(|p| match p.operation() {
            AppDataUpdateOperation::Update(bytes) => {
                ComponentOp::Update(p.component_id(), bytes.as_slice().to_vec())
            }
            AppDataUpdateOperation::Remove => ComponentOp::Remove(p.component_id()),
        })
        .collect()
}

/// Writes resolved component values into an updater and returns openmls' change set.
pub fn updates(
    mut updater: AppDataDictionaryUpdater<'_>,
    changes: &[(u16, Vec<u8>)],
) -> Option<AppDataUpdates> {
    for (id, bytes) in changes {
        updater.set(ComponentData::from_parts(*id, bytes.clone().into()));
    }
    updater.changes()
}

/// The client URI in a credential (a BasicCredential whose identity is the URI;
/// `ROOM-credential-uri`).
pub fn client_of(credential: &Credential) -> Option<ClientUri> {
    let basic = BasicCredential::try_from(credential.clone()).ok()?;
    let text = std::str::from_utf8(basic.identity()).ok()?;
    ClientUri::parse(text).ok()
}
