//! # mimi-wire
//!
//! The wire formats of the MIMI protocol, draft-ietf-mimi-protocol-06, sans-IO:
//!
//! - [`id`]: `mimi://` identifiers (provider, user, client, room, group) and their request-path form.
//! - [`codec`]: the strict TLS-presentation-language reader and writer every body uses
//!   ([`Body::decode`] refuses trailing bytes, bad lengths and sizes over [`Limits`]).
//! - Every body of §5: [`key_material`], [`update`], [`submit`], [`fanout`], [`group_info`],
//!   [`consent`], [`identifier`], [`abuse`]; the room-state [`components`] (participant list,
//!   room metadata); shared types in [`common`]; what an MLSMessage is
//!   in [`mls_kind`].
//! - [`sign`]: SignWithLabel / VerifyWithLabel / EncryptWithLabel through openmls' provider.
//! - [`directory`]: the `/.well-known/mimi-protocol-directory` document and its templates.
//! - [`json`]: the fields of every body as JSON (the published vectors use it).
//!
//! Requirement IDs (`WIRE-…`) are listed in `spec-notes/protocol.md`.

pub mod abuse;
pub mod codec;
pub mod common;
pub mod components;
pub mod consent;
pub mod directory;
pub mod fanout;
pub mod group_info;
pub mod id;
pub mod identifier;
pub mod json;
pub mod key_material;
pub mod mls_kind;
pub mod sign;
pub mod submit;
pub mod update;

pub use codec::{Body, Limits, Mls, WireError, WireErrorKind};
