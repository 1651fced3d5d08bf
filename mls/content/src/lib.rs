//! # mimi-content
//!
//! The MIMI content format, draft-ietf-mimi-content-08: the CBOR container every MIMI
//! application message carries inside MLS.
//!
//! - [`MimiContent`] and its parts: the whole CDDL data model, encoded deterministically
//!   ([`MimiContent::encode`]) and decoded strictly ([`MimiContent::decode`]): wrong types,
//!   unknown required structure, non-deterministic encodings, trailing bytes, nesting and sizes
//!   beyond [`Limits`] are typed [`DecodeError`]s, never panics.
//! - [`message_id`]: the message ID of §3.3.
//! - [`build`]: what users do (text, Markdown, reply, reaction, unlike, edit, delete, expiring,
//!   mention, attachment, conferencing link, multipart).
//! - [`view`]: a message history resolved into what a person sees.
//! - [`status`]: delivery and read receipts (draft-mahy-mimi-message-status-01).
//! - [`implied`]: the derived values of `implied.cddl`.
//! - [`json`]: a lossless JSON form and diagnostic notation, for inspecting and writing content.
//!
//! Requirement IDs (`CONTENT-…`) are listed in `spec-notes/content.md`.

pub mod attachment;
pub mod build;
pub mod cbor;
pub mod checks;
mod codec;
mod error;
pub mod implied;
pub mod json;
mod limits;
pub mod message_id;
mod model;
mod parts;
pub mod status;
pub mod view;

pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use limits::Limits;
pub use message_id::MessageIdError;
pub use model::{
    Disposition, Expiration, ExtensionKey, Extensions, ExternalPart, HASH_ALG_SHA256, MessageId,
    MessageIdParseError, MimiContent, NestedPart, PartBody, PartSemantics, cardinality,
};
