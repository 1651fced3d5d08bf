//! The CBOR core: a generic [`Value`], a deterministic [`Encoder`] and a strict [`Decoder`].
//!
//! Written for MIMI content rather than taken from a general CBOR crate because the format
//! needs what those do not give: refusal of every non-deterministic encoding on input,
//! bytewise-sorted map keys on output, byte-exact reproduction of the draft's examples, and
//! limits checked before allocation (see `spec-notes/decisions.md`).

mod decode;
mod encode;
mod value;

pub use decode::{Decoder, from_slice};
pub use encode::{Encoder, to_vec};
pub(crate) use encode::{MAJOR_MAP, MAJOR_TAG};
pub use value::Value;
