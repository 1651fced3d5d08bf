//! The TLS presentation language as MLS uses it (RFC 9420 §2.1), strictly.
//!
//! Our own small reader and writer instead of tls_codec's derive for the MIMI structs, because a
//! reference decoder must: refuse trailing bytes, refuse non-minimal varint lengths, keep every
//! vector's elements inside its declared length, bound every length before allocating
//! ([`Limits`]), and say which field was wrong (`WIRE-strict`). MLS objects inside MIMI
//! structs (MLSMessage, KeyPackage, GroupInfo, ...) are decoded by openmls, which reads them
//! through `std::io::Read` with bounded allocation; we keep their exact bytes ([`Mls`]) so that
//! re-encoding is byte-exact.

use std::fmt;
use std::marker::PhantomData;
use tls_codec::{Deserialize, Serialize};

/// Size limits checked before allocating (`WIRE-limits`). A body is also bounded by the
/// transport's body limit; these bound the parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest URI (`IdentifierUri`, `Uri`).
    pub max_uri: usize,
    /// Longest other opaque field (signatures, keys, notes, codes).
    pub max_opaque: usize,
    /// Most elements in one vector (clients of a user, proposals, query elements, ...).
    pub max_items: usize,
    /// Longest MLS object.
    pub max_mls: usize,
}

impl Limits {
    /// The limits this implementation documents (`spec-notes/protocol.md`).
    pub const DEFAULT: Limits = Limits {
        max_uri: 2048,
        max_opaque: 64 * 1024,
        max_items: 1024,
        max_mls: 16 * 1024 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why bytes are not a valid MIMI protocol body (the sender's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {offset}, in {field})")]
pub struct WireError {
    /// What is wrong.
    pub kind: WireErrorKind,
    /// Byte offset into the body.
    pub offset: usize,
    /// The draft's field being read.
    pub field: &'static str,
}

/// What is wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireErrorKind {
    /// The input ends inside a field.
    #[error("input ends early")]
    Truncated,
    /// Bytes follow the end of the body.
    #[error("{0} unexpected byte(s) after the end of the body")]
    TrailingBytes(usize),
    /// A vector's elements do not end exactly at its declared length.
    #[error("vector elements overrun or underrun the declared length")]
    VectorLength,
    /// A varint length is not in its shortest form (RFC 9420 §2.1.2) or uses the reserved prefix.
    #[error("variable-length integer is not minimal or uses the reserved 8-byte form")]
    BadVarint,
    /// A length over a documented limit.
    #[error("{found} exceeds the limit of {limit}")]
    TooLong {
        /// The length found (for an MLS object that does not parse within the limit: the
        /// octets that were left in the body).
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// A code point or enum value this draft does not allow here.
    #[error("value {0} is not allowed here")]
    BadValue(u64),
    /// An `optional<T>` presence octet other than 0 or 1.
    #[error("optional presence octet {0} is neither 0 nor 1")]
    BadOptional(u8),
    /// Text that must be UTF-8 is not.
    #[error("not UTF-8")]
    NotUtf8,
    /// A `UTF8String` contains a NUL character.
    #[error("a UTF8String must not contain NUL")]
    NulInText,
    /// An identifier that is not a valid MIMI URI.
    #[error("{0}")]
    BadUri(String),
    /// openmls could not decode an MLS object.
    #[error("invalid MLS object: {0}")]
    Mls(String),
}

/// A decoding position in a body.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the whole body (for error offsets of nested readers).
    base: usize,
    /// The limits.
    pub limits: Limits,
}

impl<'a> Reader<'a> {
    /// A reader over a whole body.
    pub fn new(buf: &'a [u8], limits: Limits) -> Self {
        Self {
            buf,
            pos: 0,
            base: 0,
            limits,
        }
    }

    /// An error at the current position.
    pub fn error(&self, kind: WireErrorKind, field: &'static str) -> WireError {
        WireError {
            kind,
            offset: self.base + self.pos,
            field,
        }
    }

    /// An error about the `n` bytes just read.
    pub fn error_back(&self, n: usize, kind: WireErrorKind, field: &'static str) -> WireError {
        WireError {
            kind,
            offset: (self.base + self.pos).saturating_sub(n),
            field,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless everything was read (`WIRE-strict`).
    pub fn finish(&self, field: &'static str) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(self.error(WireErrorKind::TrailingBytes(n), field)),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.error(WireErrorKind::Truncated, field))?;
        let out = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(out)
    }

    /// `uint8`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, field)?.first().copied().unwrap_or_default())
    }

    /// `uint16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// `uint32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, field)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// `uint64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A fixed-size array `uint8 x[N]`.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let b = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// A `<V>` length: QUIC-style varint, minimal, at most 2^30 - 1 (RFC 9420 §2.1.2;
    /// `WIRE-strict-varint`).
    pub fn varint(&mut self, field: &'static str) -> Result<usize, WireError> {
        let start = self.pos;
        let first = self.u8(field)?;
        let (len, mut v) = match first >> 6 {
            0 => (1, u64::from(first & 0x3f)),
            1 => (2, u64::from(first & 0x3f)),
            2 => (4, u64::from(first & 0x3f)),
            _ => {
                self.pos = start;
                return Err(self.error(WireErrorKind::BadVarint, field));
            }
        };
        for _ in 1..len {
            v = (v << 8) | u64::from(self.u8(field)?);
        }
        let minimal = match len {
            1 => true,
            2 => v >= 0x40,
            _ => v >= 0x4000,
        };
        if !minimal {
            self.pos = start;
            return Err(self.error(WireErrorKind::BadVarint, field));
        }
        usize::try_from(v).map_err(|_| self.error(WireErrorKind::BadVarint, field))
    }

    /// `opaque x<V>` with a limit.
    pub fn opaque(&mut self, limit: usize, field: &'static str) -> Result<Vec<u8>, WireError> {
        let n = self.varint(field)?;
        if n > limit {
            return Err(self.error(WireErrorKind::TooLong { found: n, limit }, field));
        }
        Ok(self.take(n, field)?.to_vec())
    }

    /// `opaque x<V>` holding UTF-8 text.
    pub fn text(&mut self, limit: usize, field: &'static str) -> Result<String, WireError> {
        let at = self.pos;
        let bytes = self.opaque(limit, field)?;
        String::from_utf8(bytes).map_err(|_| WireError {
            kind: WireErrorKind::NotUtf8,
            offset: self.base + at,
            field,
        })
    }

    /// `UTF8String` (protocol-06 §7.6): "a sequence of valid UTF8 without nulls"
    /// (`WIRE-7.6-utf8string`).
    pub fn utf8_string(&mut self, limit: usize, field: &'static str) -> Result<String, WireError> {
        let at = self.pos;
        let s = self.text(limit, field)?;
        if let Some(i) = s.find('\0') {
            return Err(WireError {
                kind: WireErrorKind::NulInText,
                offset: self.base + at + i,
                field,
            });
        }
        Ok(s)
    }

    /// `T x<V>`: elements decoded by `item` must end exactly at the declared length, and there
    /// may be at most `limits.max_items` of them.
    pub fn vector<T>(
        &mut self,
        field: &'static str,
        mut item: impl FnMut(&mut Reader<'a>) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let n = self.varint(field)?;
        let start = self.pos;
        let body = self.take(n, field)?;
        let mut inner = Reader {
            buf: body,
            pos: 0,
            base: self.base + start,
            limits: self.limits,
        };
        let mut out = Vec::new();
        while inner.remaining() > 0 {
            if out.len() >= self.limits.max_items {
                return Err(inner.error(
                    WireErrorKind::TooLong {
                        found: out.len() + 1,
                        limit: self.limits.max_items,
                    },
                    field,
                ));
            }
            out.push(item(&mut inner).map_err(|mut e| {
                if e.kind == WireErrorKind::Truncated {
                    e.kind = WireErrorKind::VectorLength;
                }
                e
            })?);
        }
        Ok(out)
    }

    /// `optional<T>`.
    pub fn optional<T>(
        &mut self,
        field: &'static str,
        item: impl FnOnce(&mut Reader<'a>) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => item(self).map(Some),
            other => {
                self.pos -= 1;
                Err(self.error(WireErrorKind::BadOptional(other), field))
            }
        }
    }

    /// An MLS object decoded by openmls; its exact bytes are kept. openmls sees at most
    /// `limits.max_mls` octets, so an object that does not fit is refused before it is read
    /// further (`WIRE-limits`).
    pub fn mls<T: Deserialize>(&mut self, field: &'static str) -> Result<Mls<T>, WireError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let limit = self.limits.max_mls;
        let window = rest.get(..limit).unwrap_or(rest);
        let mut cursor: &[u8] = window;
        if let Err(e) = T::tls_deserialize(&mut cursor) {
            let kind = if window.len() < rest.len() {
                // It may be valid but longer than the limit: say so.
                WireErrorKind::TooLong {
                    found: rest.len(),
                    limit,
                }
            } else {
                WireErrorKind::Mls(e.to_string())
            };
            return Err(self.error(kind, field));
        }
        let used = window.len() - cursor.len();
        let bytes = self.take(used, field)?.to_vec();
        Ok(Mls {
            bytes,
            _t: PhantomData,
        })
    }
}

/// Encoding of a body.
#[derive(Default)]
pub struct Writer {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// `uint8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// `uint16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// `uint32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// `uint64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// Raw bytes (fixed arrays, MLS objects).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// A `<V>` length. Lengths over 2^30 - 1 cannot be written; our limits keep far below.
    pub fn varint(&mut self, n: usize) {
        if n < 0x40 {
            self.buf.push(n as u8);
        } else if n < 0x4000 {
            self.buf
                .extend_from_slice(&((n as u16) | 0x4000).to_be_bytes());
        } else {
            let n = (n as u32).min(0x3fff_ffff);
            self.buf.extend_from_slice(&(n | 0x8000_0000).to_be_bytes());
        }
    }

    /// `opaque x<V>`.
    pub fn opaque(&mut self, b: &[u8]) {
        self.varint(b.len());
        self.raw(b);
    }

    /// `T x<V>`.
    pub fn vector<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Writer, &T)) {
        let mut inner = Writer::new();
        for i in items {
            item(&mut inner, i);
        }
        self.opaque(&inner.buf);
    }

    /// `optional<T>`.
    pub fn optional<T>(&mut self, v: Option<&T>, item: impl FnOnce(&mut Writer, &T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                item(self, v);
            }
        }
    }

    /// The bytes.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// An MLS object (RFC 9420 struct) carried inside a MIMI body, kept as its exact bytes and
/// checked to decode as `T` by openmls.
pub struct Mls<T> {
    bytes: Vec<u8>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Mls<T> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for Mls<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Mls<T> {}

impl<T> fmt::Debug for Mls<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mls<{}>({})",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("?"),
            hex::encode(&self.bytes)
        )
    }
}

impl<T: Deserialize> Mls<T> {
    /// Checks that `bytes` are exactly one `T`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, WireError> {
        let mut r = Reader::new(&bytes, Limits::DEFAULT);
        let m = r.mls::<T>("MLS object")?;
        r.finish("MLS object")?;
        Ok(m)
    }

    /// Decodes it (again) with openmls.
    pub fn parse(&self) -> Result<T, WireError> {
        let mut cursor: &[u8] = &self.bytes;
        T::tls_deserialize(&mut cursor).map_err(|e| WireError {
            kind: WireErrorKind::Mls(e.to_string()),
            offset: 0,
            field: "MLS object",
        })
    }
}

impl<T> Mls<T> {
    /// Wraps the encoding of an outgoing openmls object (`MlsMessageOut`, `KeyPackage`, ...)
    /// that decodes as `T`.
    pub fn encode_from(value: &impl Serialize) -> Result<Self, WireError>
    where
        T: Deserialize,
    {
        let bytes = value.tls_serialize_detached().map_err(|e| WireError {
            kind: WireErrorKind::Mls(e.to_string()),
            offset: 0,
            field: "MLS object",
        })?;
        Self::from_bytes(bytes)
    }

    /// The exact bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A body of the protocol: strict decoding, exact encoding.
pub trait Body: Sized {
    /// The draft's name of the struct (for errors).
    const NAME: &'static str;
    /// Reads one value.
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError>;
    /// Writes it.
    fn write(&self, w: &mut Writer);

    /// Decodes a whole body: exactly one value, no trailing bytes.
    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, Limits::DEFAULT)
    }

    /// Decodes with other limits.
    fn decode_with(bytes: &[u8], limits: Limits) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, limits);
        let v = Self::read(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(v)
    }

    /// Encodes it.
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.finish()
    }
}
