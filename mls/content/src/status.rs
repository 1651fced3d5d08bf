//! Message status reports (draft-mahy-mimi-message-status-01, media type
//! `application/mimi-message-status`): delivery and read receipts.

use crate::cbor::{Decoder, Encoder};
use crate::codec::decode_message_id;
use crate::error::{DecodeError, DecodeErrorKind as K};
use crate::model::MessageId;
use std::fmt;

/// The media type of a status report.
pub const MEDIA_TYPE: &str = "application/mimi-message-status";

/// Most statuses in one report (local policy; a report is per batch of messages).
pub const MAX_STATUSES: usize = 4096;

/// A message status (`baseStatus / $extStatus / unknownStatus`, 0..=255). Unknown values are
/// kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageStatus(pub u8);

impl MessageStatus {
    /// 0
    pub const UNREAD: Self = Self(0);
    /// 1
    pub const DELIVERED: Self = Self(1);
    /// 2
    pub const READ: Self = Self(2);
    /// 3
    pub const EXPIRED: Self = Self(3);
    /// 4
    pub const DELETED: Self = Self(4);
    /// 5
    pub const HIDDEN: Self = Self(5);
    /// 6
    pub const ERROR: Self = Self(6);

    /// The registered name, if any.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "unread",
            1 => "delivered",
            2 => "read",
            3 => "expired",
            4 => "deleted",
            5 => "hidden",
            6 => "error",
            _ => return None,
        })
    }

    /// The code for a registered name.
    pub fn from_name(name: &str) -> Option<Self> {
        (0..=6u8).map(Self).find(|s| s.name() == Some(name))
    }
}

impl fmt::Debug for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

/// `PerMessageStatus = [messageId, status]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerMessageStatus {
    /// The message.
    pub message_id: MessageId,
    /// Its status for the reporter.
    pub status: MessageStatus,
}

/// `MessageStatusReport = [* PerMessageStatus]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageStatusReport {
    /// The statuses.
    pub statuses: Vec<PerMessageStatus>,
}

impl MessageStatusReport {
    /// Deterministic encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(4 + self.statuses.len() * 37);
        e.array(self.statuses.len());
        for s in &self.statuses {
            e.array(2);
            e.bytes(&s.message_id.0);
            e.uint(u64::from(s.status.0));
        }
        e.into_bytes()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let n = d.array("MessageStatusReport")?;
        if n > MAX_STATUSES as u64 {
            return Err(DecodeError::new(
                K::LimitExceeded {
                    what: "statuses in one report",
                    limit: MAX_STATUSES as u64,
                    found: n,
                },
                0,
                "MessageStatusReport",
            ));
        }
        let mut statuses = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let at = d.position();
            let k = d.array("PerMessageStatus")?;
            if k != 2 {
                return Err(DecodeError::new(
                    K::WrongArrayLength {
                        expected: "PerMessageStatus [messageId, status]",
                        found: k,
                    },
                    at,
                    "PerMessageStatus",
                ));
            }
            let message_id = decode_message_id(&mut d, "messageId")?;
            let status = MessageStatus(d.uint_max(255, "status (0..255)", "status")? as u8);
            statuses.push(PerMessageStatus { message_id, status });
        }
        d.finish("MessageStatusReport")?;
        Ok(Self { statuses })
    }
}
