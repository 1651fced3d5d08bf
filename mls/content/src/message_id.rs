//! Message IDs (content-08 §3.3).

use crate::error::{DecodeError, EncodeError};
use crate::model::{HASH_ALG_SHA256, MessageId, MimiContent};
use sha2::{Digest, Sha256};

/// Computes a message ID (`CONTENT-3.3-message-id`):
/// `0x01 || SHA-256(len16(sender) || sender || len16(room) || room || content || salt)[0..31]`,
/// where `content` is the whole encoded message and `salt` its 16-octet salt, appended again.
pub fn compute(
    sender_uri: &str,
    room_uri: &str,
    content: &[u8],
    salt: &[u8; 16],
) -> Result<MessageId, EncodeError> {
    let sender_len = uri_len(sender_uri, "sender URI")?;
    let room_len = uri_len(room_uri, "room URI")?;
    let mut h = Sha256::new();
    h.update(sender_len.to_be_bytes());
    h.update(sender_uri.as_bytes());
    h.update(room_len.to_be_bytes());
    h.update(room_uri.as_bytes());
    h.update(content);
    h.update(salt);
    let digest = h.finalize();
    let mut id = [0u8; 32];
    id[0] = HASH_ALG_SHA256;
    id[1..].copy_from_slice(&digest[..31]);
    Ok(MessageId(id))
}

fn uri_len(uri: &str, what: &'static str) -> Result<u16, EncodeError> {
    u16::try_from(uri.len()).map_err(|_| EncodeError::UriTooLong {
        what,
        len: uri.len(),
    })
}

/// Why a message ID could not be computed for received bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdError {
    /// The bytes are not MIMI content.
    #[error("not MIMI content: {0}")]
    Decode(#[from] DecodeError),
    /// Neither the extensions nor the caller name the sender or room.
    #[error("the message carries no {0} (extension key {1}) and none was given")]
    MissingUri(&'static str, u8),
    /// A URI is too long for its uint16 length prefix.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// The ID of a received message, from its exact bytes. The sender and room URIs come from
/// extension keys 1 and 2 when present (as the draft's generator does) and from the caller
/// otherwise (for example the sender's MLS credential and the room of the MLS group).
pub fn of_bytes(
    bytes: &[u8],
    sender_uri: Option<&str>,
    room_uri: Option<&str>,
) -> Result<MessageId, MessageIdError> {
    let content = MimiContent::decode(bytes)?;
    content.message_id_for(bytes, sender_uri, room_uri)
}

impl MimiContent {
    /// The ID of this message given its encoding `bytes` (which must be `self.encode()` or the
    /// bytes it was decoded from). URIs: extension keys 1 and 2 first, then the given ones.
    pub fn message_id_for(
        &self,
        bytes: &[u8],
        sender_uri: Option<&str>,
        room_uri: Option<&str>,
    ) -> Result<MessageId, MessageIdError> {
        let sender = self
            .extensions
            .sender_uri()
            .or(sender_uri)
            .ok_or(MessageIdError::MissingUri("sender URI", 1))?;
        let room = self
            .extensions
            .room_uri()
            .or(room_uri)
            .ok_or(MessageIdError::MissingUri("room URI", 2))?;
        Ok(compute(sender, room, bytes, &self.salt)?)
    }

    /// Encodes and computes the ID in one step: `(bytes, id)`.
    pub fn encode_with_id(
        &self,
        sender_uri: Option<&str>,
        room_uri: Option<&str>,
    ) -> Result<(Vec<u8>, MessageId), MessageIdError> {
        let bytes = self.encode()?;
        let id = self.message_id_for(&bytes, sender_uri, room_uri)?;
        Ok((bytes, id))
    }
}
