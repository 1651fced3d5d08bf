//! Values derived from a message and its delivery, not carried in it (content-08 §5.1,
//! `implied.cddl`): the receiver reconstructs them; the draft encodes them for its examples.

use crate::cbor::{Decoder, Encoder, Value};
use crate::codec::decode_message_id;
use crate::error::{DecodeError, DecodeErrorKind as K};
use crate::model::MessageId;

/// Tag of RFC 9581 extended time.
pub const TAG_EXTENDED_TIME: u64 = 1001;

/// `Timestamp = MsecsSinceEpoch / ExtendedTime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timestamp {
    /// Milliseconds since the UNIX epoch.
    Msecs(u64),
    /// `#6.1001({* name => value})` (RFC 9581), kept as its map.
    Extended(Vec<(Value, Value)>),
}

/// `MessageDerivedValues` of `implied.cddl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageDerivedValues {
    /// The message's ID.
    pub message_id: MessageId,
    /// When the hub accepted it.
    pub hub_accepted_timestamp: Timestamp,
    /// The MLS group ID.
    pub mls_group_id: Vec<u8>,
    /// The sender's leaf index.
    pub sender_leaf_index: u32,
    /// The sending client's URI.
    pub sender_client_url: String,
    /// The sending user's URI ("From").
    pub sender_user_url: String,
    /// The room's URI ("To").
    pub room_url: String,
}

/// Depth limit of the extended-time map (same rule as extensions, content-08 §6.3).
const EXTENDED_TIME_DEPTH: usize = 4;

impl MessageDerivedValues {
    /// Deterministic encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::with_capacity(224);
        e.array(7);
        e.bytes(&self.message_id.0);
        match &self.hub_accepted_timestamp {
            Timestamp::Msecs(ms) => e.uint(*ms),
            Timestamp::Extended(map) => {
                e.head(crate::cbor::MAJOR_TAG, TAG_EXTENDED_TIME);
                e.map(map);
            }
        }
        e.bytes(&self.mls_group_id);
        e.uint(u64::from(self.sender_leaf_index));
        e.text(&self.sender_client_url);
        e.text(&self.sender_user_url);
        e.text(&self.room_url);
        e.into_bytes()
    }

    /// Strict decoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(bytes);
        let n = d.array("MessageDerivedValues")?;
        if n != 7 {
            return Err(DecodeError::new(
                K::WrongArrayLength {
                    expected: "the 7-element MessageDerivedValues array",
                    found: n,
                },
                0,
                "MessageDerivedValues",
            ));
        }
        let message_id = decode_message_id(&mut d, "messageId")?;
        let ts_at = d.position();
        let hub_accepted_timestamp =
            match d.value(0, EXTENDED_TIME_DEPTH, "hubAcceptedTimestamp")? {
                Value::Unsigned(ms) => Timestamp::Msecs(ms),
                Value::Tag(TAG_EXTENDED_TIME, inner) => match *inner {
                    Value::Map(m) => Timestamp::Extended(m),
                    other => {
                        return Err(DecodeError::new(
                            K::UnexpectedType {
                                expected: "map inside tag 1001",
                                found: other.type_name(),
                            },
                            ts_at,
                            "hubAcceptedTimestamp",
                        ));
                    }
                },
                other => {
                    return Err(DecodeError::new(
                        K::UnexpectedType {
                            expected: "uint or tag 1001",
                            found: other.type_name(),
                        },
                        ts_at,
                        "hubAcceptedTimestamp",
                    ));
                }
            };
        let mls_group_id = d.bytes(usize::MAX, "mlsGroupId")?.to_vec();
        let sender_leaf_index =
            d.uint_max(u64::from(u32::MAX), "uint .size 4", "senderLeafIndex")? as u32;
        let sender_client_url = d.text(usize::MAX, "senderClientUrl")?.to_owned();
        let sender_user_url = d.text(usize::MAX, "senderUserUrl")?.to_owned();
        let room_url = d.text(usize::MAX, "roomUrl")?.to_owned();
        d.finish("MessageDerivedValues")?;
        Ok(Self {
            message_id,
            hub_accepted_timestamp,
            mls_group_id,
            sender_leaf_index,
            sender_client_url,
            sender_user_url,
            room_url,
        })
    }
}
