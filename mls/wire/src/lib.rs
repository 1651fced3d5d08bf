//! # mimi-wire
//!
//! The wire formats of the MIMI protocol, draft-ietf-mimi-protocol-06, sans-IO:
//!
//! - [`id`]: `mimi://` identifiers (provider, user, client, room, group, pseudonym) and their
//!   request-path form.
//! - [`codec`]: the strict TLS-presentation-language reader and writer every body uses
//!   ([`Body::decode`] refuses trailing bytes, bad lengths and sizes over [`Limits`]).
//! - Every body of §5: [`key_material`], [`update`], [`submit`], [`fanout`], [`group_info`],
//!   [`consent`], [`identifier`], [`abuse`]; franking's components and HMACs in [`franking`];
//!   the room-state [`components`] (participant list, room metadata); shared types in
//!   [`common`]; what an MLSMessage is in [`mls_kind`].
//! - [`sign`]: SignWithLabel / VerifyWithLabel / EncryptWithLabel through openmls' provider,
//!   and the signed and encrypted parts of keyMaterial, groupInfo and franking.
//! - [`directory`]: the `/.well-known/mimi-protocol-directory` document and its templates.
//! - [`json`]: the fields of every body as JSON (the published vectors use it).
//!
//! Requirement IDs (`WIRE-…`) are listed in `spec-notes/protocol.md`.
//!
//! ```
//! use mimi_wire::Body;
//! use mimi_wire::id::{RoomUri, UserUri};
//! use mimi_wire::update::{UpdateOutcome, UpdateRoomResponse};
//!
//! // Identifiers are parsed into their normal form and know their provider.
//! let room = RoomUri::parse("MIMI://A.Example/r/clubhouse")?;
//! assert_eq!(room.as_str(), "mimi://a.example/r/clubhouse");
//! assert_eq!(room.provider().as_str(), "a.example");
//! assert_eq!(room.to_path_segment(), "mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse");
//! assert!(UserUri::parse(room.as_str()).is_err());
//!
//! // Bodies encode exactly and decode strictly.
//! let answer = UpdateRoomResponse {
//!     error_description: String::new(),
//!     outcome: UpdateOutcome::WrongEpoch { current_epoch: 7 },
//! };
//! let bytes = answer.encode();
//! assert_eq!(UpdateRoomResponse::decode(&bytes)?, answer);
//! assert!(UpdateRoomResponse::decode(&[bytes.as_slice(), &[0]].concat()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod abuse;
pub mod codec;
pub mod common;
pub mod components;
pub mod consent;
pub mod directory;
pub mod fanout;
pub mod franking;
pub mod group_info;
pub mod id;
pub mod identifier;
pub mod json;
pub mod key_material;
pub mod mls_kind;
pub mod operational;
pub mod room_policy;
pub mod sign;
pub mod submit;
pub mod update;

pub use codec::{Body, Limits, Mls, WireError, WireErrorKind};
