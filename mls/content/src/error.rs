//! Errors, split by who is at fault: [`DecodeError`] for bytes from a peer, [`EncodeError`] for a
//! value our caller built that the format cannot carry.

/// Bytes that are not a valid MIMI content item (the sender's fault).
///
/// `offset` is the byte at which the problem was found and `field` names the draft field being
/// read, so that a person testing another implementation can find the fault in a hex dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {offset}, in {field})")]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset into the input.
    pub offset: usize,
    /// The field of the draft's CDDL being read.
    pub field: &'static str,
}

/// What is wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ends inside an item.
    #[error("input ends early")]
    Truncated,
    /// Bytes follow the end of the item.
    #[error("{count} unexpected byte(s) after the end of the item")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The CBOR type is not the one the CDDL requires.
    #[error("expected {expected}, found {found}")]
    UnexpectedType {
        /// What the CDDL requires.
        expected: &'static str,
        /// What was there.
        found: &'static str,
    },
    /// An array has the wrong number of elements.
    #[error("expected {expected}, found an array of {found} element(s)")]
    WrongArrayLength {
        /// What the CDDL requires.
        expected: &'static str,
        /// What was there.
        found: u64,
    },
    /// A byte string has the wrong fixed size.
    #[error("expected exactly {expected} octets, found {found}")]
    WrongSize {
        /// What the CDDL requires.
        expected: usize,
        /// What was there.
        found: u64,
    },
    /// A documented limit (see [`crate::Limits`]) was exceeded.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What was found.
        found: u64,
    },
    /// Nesting deeper than allowed (content-08 §6.3).
    #[error("{what} nested more than {limit} levels deep (content-08 §6.3)")]
    TooDeep {
        /// Which structure.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Valid CBOR, but not in deterministic form (content-08 §6.1, RFC 8949 §4.2.1).
    #[error("not deterministic CBOR (content-08 §6.1, RFC 8949 §4.2.1): {0}")]
    NotDeterministic(&'static str),
    /// Indefinite-length items are forbidden by deterministic encoding.
    #[error("indefinite-length item (forbidden by content-08 §6.1)")]
    IndefiniteLength,
    /// Additional information 28..30 is not well-formed CBOR.
    #[error("reserved additional information value {0} (not well-formed CBOR)")]
    Reserved(u8),
    /// A text string is not UTF-8 (content-08 §6.2).
    #[error("text string is not valid UTF-8 (content-08 §6.2)")]
    InvalidUtf8,
    /// An integer does not fit the size the CDDL gives it.
    #[error("{value} is out of range for {what}")]
    OutOfRange {
        /// The field's range.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A code point with no meaning where the draft does not allow extension.
    #[error("unknown {what} value {value}")]
    Unknown {
        /// Which registry.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A map key that content-08 §6.2 forbids.
    #[error("invalid map key: {0} (content-08 §6.2)")]
    InvalidKey(&'static str),
    /// A NaN other than the half-precision quiet NaN (content-08 §6.2).
    #[error("NaN other than 0xf97e00 (content-08 §6.2)")]
    ForbiddenNaN,
    /// A message ID whose first octet is not a known hash algorithm (content-08 §9.1).
    #[error("message ID names unknown hash algorithm {0:#04x} (content-08 §3.3, §9.1)")]
    UnknownHashAlgorithm(u8),
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, offset: usize, field: &'static str) -> Self {
        Self {
            kind,
            offset,
            field,
        }
    }
}

/// A value that cannot be encoded as MIMI content (the caller's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A limit of the format or of [`crate::Limits`] is exceeded.
    #[error("{what}: {found} exceeds the limit of {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// What was found.
        found: u64,
    },
    /// Nesting deeper than content-08 §6.3 allows.
    #[error("{what} nested more than {limit} levels deep (content-08 §6.3)")]
    TooDeep {
        /// Which structure.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A map key that content-08 §6.2 forbids.
    #[error("invalid map key {key}: {reason} (content-08 §6.2)")]
    InvalidKey {
        /// The key, in diagnostic notation.
        key: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Two map entries with the same key.
    #[error("duplicate map key {0} (content-08 §6.2)")]
    DuplicateKey(String),
    /// A multipart with fewer than two parts (`parts: [2* NestedPart]`).
    #[error("a multipart needs at least 2 parts, found {0} (content-08 §4.4)")]
    TooFewParts(usize),
    /// A URI longer than the uint16 length prefix of the message ID input (content-08 §3.3).
    #[error("{what} is {len} octets, longer than 65535 (content-08 §3.3)")]
    UriTooLong {
        /// Which URI.
        what: &'static str,
        /// Its length.
        len: usize,
    },
}

/// Names a CBOR major type for error messages.
pub(crate) fn major_name(major: u8) -> &'static str {
    match major {
        0 => "unsigned integer",
        1 => "negative integer",
        2 => "byte string",
        3 => "text string",
        4 => "array",
        5 => "map",
        6 => "tag",
        _ => "simple value or float",
    }
}
