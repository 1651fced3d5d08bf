//! What an MLSMessage is, read from its clear header (RFC 9420 §6): the draft's selects on
//! `wire_format` and `content_type` (FanoutMessage, HandshakeBundle) need it.

use crate::codec::{Limits, Mls, Reader, WireError, WireErrorKind};
use openmls::prelude::MlsMessageIn;

/// RFC 9420 `WireFormat` of a PublicMessage.
pub const WIRE_FORMAT_PUBLIC: u16 = 1;
/// RFC 9420 `WireFormat` of a PrivateMessage.
pub const WIRE_FORMAT_PRIVATE: u16 = 2;

/// The kind of an MLSMessage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// PublicMessage or PrivateMessage with content_type application.
    Application,
    /// A proposal (PublicMessage, or PrivateMessage which MIMI does not use for handshakes).
    Proposal,
    /// A commit.
    Commit,
    /// A Welcome.
    Welcome,
    /// A GroupInfo.
    GroupInfo,
    /// A KeyPackage.
    KeyPackage,
}

/// Header facts of an MLSMessage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Its kind.
    pub kind: MessageKind,
    /// RFC 9420 wire format (1 public, 2 private, 3 welcome, 4 group info, 5 key package).
    pub wire_format: u16,
    /// Group ID and epoch (Public- and PrivateMessage only).
    pub group: Option<(Vec<u8>, u64)>,
}

/// Reads the clear header of a message openmls has already accepted.
pub fn header(m: &Mls<MlsMessageIn>) -> Result<MessageHeader, WireError> {
    let mut r = Reader::new(m.as_bytes(), Limits::DEFAULT);
    let f = "MLSMessage header";
    let _version = r.u16(f)?;
    let wire_format = r.u16(f)?;
    let content_kind = |ct: u8, r: &Reader<'_>| match ct {
        1 => Ok(MessageKind::Application),
        2 => Ok(MessageKind::Proposal),
        3 => Ok(MessageKind::Commit),
        other => Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
    };
    let limit = r.limits.max_opaque;
    match wire_format {
        1 => {
            let group_id = r.opaque(limit, f)?;
            let epoch = r.u64(f)?;
            match r.u8(f)? {
                1 | 2 => {
                    r.u32(f)?;
                }
                3 | 4 => {}
                other => return Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
            }
            let _aad = r.opaque(r.limits.max_mls, f)?;
            let ct = r.u8(f)?;
            Ok(MessageHeader {
                kind: content_kind(ct, &r)?,
                wire_format,
                group: Some((group_id, epoch)),
            })
        }
        2 => {
            let group_id = r.opaque(limit, f)?;
            let epoch = r.u64(f)?;
            let ct = r.u8(f)?;
            Ok(MessageHeader {
                kind: content_kind(ct, &r)?,
                wire_format,
                group: Some((group_id, epoch)),
            })
        }
        3 => Ok(MessageHeader {
            kind: MessageKind::Welcome,
            wire_format,
            group: None,
        }),
        4 => Ok(MessageHeader {
            kind: MessageKind::GroupInfo,
            wire_format,
            group: None,
        }),
        5 => Ok(MessageHeader {
            kind: MessageKind::KeyPackage,
            wire_format,
            group: None,
        }),
        other => Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
    }
}

/// The clear `authenticated_data` of a PrivateMessage (RFC 9420 §6.3: group_id, epoch,
/// content_type, authenticated_data, ...); `None` for any other wire format. The hub reads the
/// client's `frank_aad` from it (protocol-06 §5.4.1.2).
pub fn private_authenticated_data(m: &Mls<MlsMessageIn>) -> Result<Option<Vec<u8>>, WireError> {
    let mut r = Reader::new(m.as_bytes(), Limits::DEFAULT);
    let f = "PrivateMessage header";
    let _version = r.u16(f)?;
    if r.u16(f)? != WIRE_FORMAT_PRIVATE {
        return Ok(None);
    }
    let limit = r.limits.max_opaque;
    let _group_id = r.opaque(limit, f)?;
    let _epoch = r.u64(f)?;
    let _content_type = r.u8(f)?;
    Ok(Some(r.opaque(
        r.limits.max_mls,
        "PrivateMessage.authenticated_data",
    )?))
}
