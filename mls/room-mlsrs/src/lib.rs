//! # mimi-room-mlsrs
//!
//! A MIMI room device on **mls-rs** 0.57 (pure-Rust crypto, `mls-rs-crypto-rustcrypto`), in
//! the same rooms as mimi-room's openmls devices and hub. mls-rs has no AppDataUpdate
//! proposal: [`rules::MimiRules`] treats it as a custom proposal and turns each commit's
//! AppDataUpdates into a local GroupContextExtensions proposal computed with mimi-room's
//! resolver, so both libraries derive the same GroupContext ([`appdata`] has the wire
//! structs and openmls' exact extension-list construction). See `spec-notes/interop.md`.

pub mod appdata;
pub mod device;
pub mod rules;
pub mod storage;
