//! The data model of `mimi-content.cddl` (content-08 §4).

use crate::cbor::Value;
use std::fmt;

/// Hash algorithm identifier of SHA-256 in the IANA Named Information registry.
pub const HASH_ALG_SHA256: u8 = 0x01;

/// A message ID (content-08 §3.3): one octet naming the hash algorithm, then 31 octets of hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The hash algorithm octet (`0x01` = SHA-256).
    pub fn hash_algorithm(&self) -> u8 {
        self.0[0]
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, MessageIdParseError> {
        let raw = hex::decode(s.trim()).map_err(|_| MessageIdParseError::NotHex)?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| MessageIdParseError::WrongLength(raw.len()))?;
        if bytes[0] != HASH_ALG_SHA256 {
            return Err(MessageIdParseError::UnknownHashAlgorithm(bytes[0]));
        }
        Ok(Self(bytes))
    }
}

/// Why a text message ID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdParseError {
    /// Not hexadecimal.
    #[error("a message ID is 64 hexadecimal digits")]
    NotHex,
    /// Not 32 octets.
    #[error("a message ID is 32 octets, this is {0}")]
    WrongLength(usize),
    /// First octet is not a known hash algorithm.
    #[error("message ID names unknown hash algorithm {0:#04x} (only 0x01, SHA-256, is defined)")]
    UnknownHashAlgorithm(u8),
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// When a message expires (content-08 §4.1): `[relative: bool, time: uint .size 4]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiration {
    /// `true`: `time` is seconds after the message is read; `false`: UNIX seconds.
    pub relative: bool,
    /// Seconds.
    pub time: u32,
}

/// A key of the extensions map (content-08 §4.3): an integer or text of 1..255 octets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExtensionKey {
    /// An integer key (positive: IANA registry; negative: private use).
    Int(i64),
    /// A text key (private use).
    Text(String),
}

impl ExtensionKey {
    /// Registry key 1: the sender's URI.
    pub const SENDER_URI: ExtensionKey = ExtensionKey::Int(1);
    /// Registry key 2: the room's URI.
    pub const ROOM_URI: ExtensionKey = ExtensionKey::Int(2);

    pub(crate) fn to_value(&self) -> Value {
        match self {
            ExtensionKey::Int(i) => Value::integer(*i),
            ExtensionKey::Text(s) => Value::Text(s.clone()),
        }
    }
}

impl fmt::Display for ExtensionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionKey::Int(i) => write!(f, "{i}"),
            ExtensionKey::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// The extensions map. Entries are kept in any order here; the encoder writes them sorted
/// (content-08 §6.1) and refuses duplicates. Two maps are equal when they hold the same
/// entries, whatever their order.
#[derive(Clone, Debug, Default)]
pub struct Extensions {
    /// The entries.
    pub entries: Vec<(ExtensionKey, Value)>,
}

impl PartialEq for Extensions {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self.entries.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Extensions {}

impl Extensions {
    /// The value for `key`, if present.
    pub fn get(&self, key: &ExtensionKey) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, replacing any previous value.
    pub fn set(&mut self, key: ExtensionKey, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The sender URI (key 1), if present and text.
    pub fn sender_uri(&self) -> Option<&str> {
        self.get(&ExtensionKey::SENDER_URI).and_then(Value::as_text)
    }

    /// The room URI (key 2), if present and text.
    pub fn room_uri(&self) -> Option<&str> {
        self.get(&ExtensionKey::ROOM_URI).and_then(Value::as_text)
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A MIMI content message (content-08 §4.1): the 7-element top-level array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MimiContent {
    /// 16 random octets, per message.
    pub salt: [u8; 16],
    /// The first version of the message this one edits or deletes, or the reaction it retracts.
    pub replaces: Option<MessageId>,
    /// Opaque topic; empty = no topic.
    pub topic_id: Vec<u8>,
    /// Expiry, if any.
    pub expires: Option<Expiration>,
    /// The message this replies or reacts to.
    pub in_reply_to: Option<MessageId>,
    /// The extensions map (sender URI, room URI, others).
    pub extensions: Extensions,
    /// The body.
    pub nested_part: NestedPart,
}

/// Content disposition (content-08 §4.4, IANA "MIMI Content Disposition", 0..=255).
/// Unknown values are kept and rendered like `render` (content-08 §4.4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Disposition(pub u8);

impl Disposition {
    /// 0
    pub const UNSPECIFIED: Self = Self(0);
    /// 1
    pub const RENDER: Self = Self(1);
    /// 2
    pub const REACTION: Self = Self(2);
    /// 3
    pub const PROFILE: Self = Self(3);
    /// 4
    pub const INLINE: Self = Self(4);
    /// 5
    pub const ICON: Self = Self(5);
    /// 6
    pub const ATTACHMENT: Self = Self(6);
    /// 7
    pub const SESSION: Self = Self(7);
    /// 8
    pub const PREVIEW: Self = Self(8);

    /// The registered name, if any.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "unspecified",
            1 => "render",
            2 => "reaction",
            3 => "profile",
            4 => "inline",
            5 => "icon",
            6 => "attachment",
            7 => "session",
            8 => "preview",
            _ => return None,
        })
    }

    /// The registered code for a name.
    pub fn from_name(name: &str) -> Option<Self> {
        (0..=8u8).map(Self).find(|d| d.name() == Some(name))
    }

    /// How a receiver treats it: unknown dispositions are rendered (content-08 §4.4).
    pub fn effective(self) -> Self {
        if self.0 > 8 { Self::RENDER } else { self }
    }
}

impl fmt::Debug for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

/// How the parts of a multipart relate (content-08 §4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartSemantics {
    /// 0: alternatives; the receiver picks one.
    ChooseOne,
    /// 1: all or nothing (like multipart/related).
    SingleUnit,
    /// 2: process every part (like multipart/mixed).
    ProcessAll,
}

impl PartSemantics {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            Self::ChooseOne => 0,
            Self::SingleUnit => 1,
            Self::ProcessAll => 2,
        }
    }

    /// From the wire value; unknown values are refused (content-08 §9.1).
    pub fn from_code(c: u64) -> Option<Self> {
        match c {
            0 => Some(Self::ChooseOne),
            1 => Some(Self::SingleUnit),
            2 => Some(Self::ProcessAll),
            _ => None,
        }
    }
}

/// Wire values of `cardinality` (content-08 §4.4).
pub mod cardinality {
    /// `nullpart`
    pub const NULL: u64 = 0;
    /// `single`
    pub const SINGLE: u64 = 1;
    /// `external`
    pub const EXTERNAL: u64 = 2;
    /// `multi`
    pub const MULTI: u64 = 3;
}

/// A body part (content-08 §4.4): disposition, language and one of four bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedPart {
    /// Intended semantics of the part.
    pub disposition: Disposition,
    /// "" or comma-separated RFC 5646 language tags.
    pub language: String,
    /// The part's body.
    pub body: PartBody,
}

/// The four forms of a body (content-08 §4.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartBody {
    /// No content (deletions, unlikes, empty messages).
    Null,
    /// Inline content.
    Single {
        /// Media type, e.g. `text/plain;charset=utf-8`.
        content_type: String,
        /// The content octets.
        content: Vec<u8>,
    },
    /// Content fetched from a URL.
    External(ExternalPart),
    /// Several parts.
    Multi {
        /// How the parts relate.
        semantics: PartSemantics,
        /// At least two parts.
        parts: Vec<NestedPart>,
    },
}

/// An external part (content-08 §4.5): content stored elsewhere, usually encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExternalPart {
    /// Media type of the content (may be "").
    pub content_type: String,
    /// Where to fetch it.
    pub url: String,
    /// UNIX seconds after which the URL stops working; 0 = never.
    pub expires: u32,
    /// Size in octets; 0 = unknown.
    pub size: u64,
    /// IANA AEAD algorithm (1 = AES-128-GCM); 0 = not encrypted.
    pub enc_alg: u16,
    /// AEAD key (empty when not encrypted).
    pub key: Vec<u8>,
    /// AEAD nonce (empty when not encrypted).
    pub nonce: Vec<u8>,
    /// AEAD additional data (usually empty).
    pub aad: Vec<u8>,
    /// IANA Named Information hash algorithm (1 = sha-256); 0 = none.
    pub hash_alg: u8,
    /// Hash of the octets at `url`.
    pub content_hash: Vec<u8>,
    /// Human description (may be "").
    pub description: String,
    /// Suggested file name (may be "").
    pub filename: String,
}

impl NestedPart {
    /// A part with no content.
    pub fn null(disposition: Disposition) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::Null,
        }
    }

    /// Whether this is a NullPart.
    pub fn is_null(&self) -> bool {
        matches!(self.body, PartBody::Null)
    }

    /// The content type of a single or external part.
    pub fn content_type(&self) -> Option<&str> {
        match &self.body {
            PartBody::Single { content_type, .. } => Some(content_type),
            PartBody::External(e) => Some(&e.content_type),
            _ => None,
        }
    }
}
