//! A strict CBOR reader: well-formed, deterministic (RFC 8949 §4.2.1) input only.
//!
//! Every length is checked against the bytes that remain before anything is allocated, so a
//! claimed length can never make us allocate more than the input's size.

use super::Value;
use super::encode::{Encoder, f16_to_f64, f32_to_f16_exact};
use crate::error::{DecodeError, DecodeErrorKind as K, major_name};

/// An item head: major type, additional information and its argument.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    pub major: u8,
    pub ai: u8,
    pub arg: u64,
    pub offset: usize,
}

/// Reads CBOR items from a byte slice, strictly.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The current byte offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes `start..end` of the input (both already read).
    pub(crate) fn slice(&self, start: usize, end: usize) -> &'a [u8] {
        &self.buf[start..end]
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn err(&self, kind: K, field: &'static str) -> DecodeError {
        DecodeError::new(kind, self.pos, field)
    }

    /// Fails unless every byte has been read.
    pub fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.err(K::TrailingBytes { count }, field)),
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(K::Truncated, field));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next byte, without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads a head, refusing indefinite lengths, reserved values and non-shortest arguments.
    pub(crate) fn head(&mut self, field: &'static str) -> Result<Head, DecodeError> {
        let offset = self.pos;
        let first = self.take(1, field)?[0];
        let major = first >> 5;
        let ai = first & 0x1f;
        let at = |kind| DecodeError::new(kind, offset, field);
        let arg = match ai {
            0..=23 => u64::from(ai),
            24 => u64::from(self.take(1, field)?[0]),
            25 => u64::from(u16::from_be_bytes(to_array(self.take(2, field)?))),
            26 => u64::from(u32::from_be_bytes(to_array(self.take(4, field)?))),
            27 => u64::from_be_bytes(to_array(self.take(8, field)?)),
            28..=30 => return Err(at(K::Reserved(ai))),
            _ => return Err(at(K::IndefiniteLength)),
        };
        if major == 7 {
            // Simple values and floats have their own shortest-form rules (checked by callers).
            if ai == 24 && arg < 32 {
                return Err(at(K::NotDeterministic(
                    "simple value below 32 in two-byte form",
                )));
            }
        } else {
            let shortest = match ai {
                24 => arg >= 24,
                25 => arg > 0xff,
                26 => arg > 0xffff,
                27 => arg > 0xffff_ffff,
                _ => true,
            };
            if !shortest {
                return Err(at(K::NotDeterministic(
                    "integer or length not in its shortest form",
                )));
            }
        }
        Ok(Head {
            major,
            ai,
            arg,
            offset,
        })
    }

    fn expect(
        &mut self,
        major: u8,
        expected: &'static str,
        field: &'static str,
    ) -> Result<Head, DecodeError> {
        let h = self.head(field)?;
        if h.major != major {
            return Err(DecodeError::new(
                K::UnexpectedType {
                    expected,
                    found: found_name(h),
                },
                h.offset,
                field,
            ));
        }
        Ok(h)
    }

    /// An unsigned integer.
    pub fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(self.expect(0, "unsigned integer", field)?.arg)
    }

    /// An unsigned integer no larger than `max`.
    pub(crate) fn uint_max(
        &mut self,
        max: u64,
        what: &'static str,
        field: &'static str,
    ) -> Result<u64, DecodeError> {
        let offset = self.pos;
        let v = self.uint(field)?;
        if v > max {
            return Err(DecodeError::new(
                K::OutOfRange { what, value: v },
                offset,
                field,
            ));
        }
        Ok(v)
    }

    /// A byte string of at most `max` octets.
    pub fn bytes(&mut self, max: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let h = self.expect(2, "byte string", field)?;
        self.payload(h, max, field)
    }

    /// A byte string of exactly `N` octets.
    pub(crate) fn fixed_bytes<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let h = self.expect(2, "byte string", field)?;
        if h.arg != N as u64 {
            return Err(DecodeError::new(
                K::WrongSize {
                    expected: N,
                    found: h.arg,
                },
                h.offset,
                field,
            ));
        }
        Ok(to_array(self.take(N, field)?))
    }

    /// A text string of at most `max` octets.
    pub fn text(&mut self, max: usize, field: &'static str) -> Result<&'a str, DecodeError> {
        let h = self.expect(3, "text string", field)?;
        let raw = self.payload(h, max, field)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::new(K::InvalidUtf8, h.offset, field))
    }

    fn payload(
        &mut self,
        h: Head,
        max: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        if h.arg > max as u64 {
            return Err(DecodeError::new(
                K::LimitExceeded {
                    what: field,
                    limit: max as u64,
                    found: h.arg,
                },
                h.offset,
                field,
            ));
        }
        // `arg <= max <= usize::MAX` here.
        self.take(h.arg as usize, field)
    }

    /// The head of an array; returns its length, already checked against the remaining input.
    pub fn array(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let h = self.expect(4, "array", field)?;
        self.check_count(h, 1, field)?;
        Ok(h.arg)
    }

    /// The head of a map; returns its number of entries.
    pub fn map(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let h = self.expect(5, "map", field)?;
        self.check_count(h, 2, field)?;
        Ok(h.arg)
    }

    fn check_count(
        &self,
        h: Head,
        min_item_size: u64,
        field: &'static str,
    ) -> Result<(), DecodeError> {
        // Every item is at least one byte, so a count beyond the input is truncation.
        if h.arg.saturating_mul(min_item_size) > self.remaining() as u64 {
            return Err(DecodeError::new(K::Truncated, h.offset, field));
        }
        Ok(())
    }

    /// Consumes `null` if it is next.
    pub fn null(&mut self) -> bool {
        if self.peek() == Some(0xf6) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.take(1, field)?[0] {
            0xf4 => Ok(false),
            0xf5 => Ok(true),
            b => Err(DecodeError::new(
                K::UnexpectedType {
                    expected: "bool",
                    found: major_name(b >> 5),
                },
                offset,
                field,
            )),
        }
    }

    /// Any item, nested at most `max_depth` containers (arrays, maps, tags) deep, where the item
    /// itself, if a container, is at level `level + 1`.
    pub fn value(
        &mut self,
        level: usize,
        max_depth: usize,
        field: &'static str,
    ) -> Result<Value, DecodeError> {
        let h = self.head(field)?;
        let container = matches!(h.major, 4..=6);
        if container && level + 1 > max_depth {
            return Err(DecodeError::new(
                K::TooDeep {
                    what: field,
                    limit: max_depth,
                },
                h.offset,
                field,
            ));
        }
        Ok(match h.major {
            0 => Value::Unsigned(h.arg),
            1 => Value::Negative(h.arg),
            2 => Value::Bytes(self.payload(h, usize::MAX, field)?.to_vec()),
            3 => {
                let raw = self.payload(h, usize::MAX, field)?;
                let s = std::str::from_utf8(raw)
                    .map_err(|_| DecodeError::new(K::InvalidUtf8, h.offset, field))?;
                Value::Text(s.to_owned())
            }
            4 => {
                self.check_count(h, 1, field)?;
                let mut items = Vec::with_capacity(h.arg as usize);
                for _ in 0..h.arg {
                    items.push(self.value(level + 1, max_depth, field)?);
                }
                Value::Array(items)
            }
            5 => {
                self.check_count(h, 2, field)?;
                let mut entries = Vec::with_capacity(h.arg as usize);
                let mut previous: Option<&[u8]> = None;
                for _ in 0..h.arg {
                    let key_start = self.pos;
                    let key = self.value(level + 1, max_depth, field)?;
                    let key_bytes = &self.buf[key_start..self.pos];
                    if let Some(prev) = previous {
                        if key_bytes == prev {
                            return Err(DecodeError::new(
                                K::InvalidKey("duplicate key"),
                                key_start,
                                field,
                            ));
                        }
                        if key_bytes < prev {
                            return Err(DecodeError::new(
                                K::NotDeterministic("map keys not in bytewise order"),
                                key_start,
                                field,
                            ));
                        }
                    }
                    previous = Some(key_bytes);
                    let value = self.value(level + 1, max_depth, field)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            6 => {
                let inner = self.value(level + 1, max_depth, field)?;
                check_bignum(h, &inner, field)?;
                Value::Tag(h.arg, Box::new(inner))
            }
            _ => self.simple(h, field)?,
        })
    }

    fn simple(&self, h: Head, field: &'static str) -> Result<Value, DecodeError> {
        let at = |kind| DecodeError::new(kind, h.offset, field);
        Ok(match h.ai {
            20 => Value::Bool(false),
            21 => Value::Bool(true),
            22 => Value::Null,
            23 => Value::Undefined,
            0..=19 | 24 => Value::Simple(h.arg as u8),
            25 => {
                let x = f16_to_f64(h.arg as u16);
                if x.is_nan() && h.arg != 0x7e00 {
                    return Err(at(K::ForbiddenNaN));
                }
                Value::Float(x)
            }
            26 => {
                let single = f32::from_bits(h.arg as u32);
                if single.is_nan() {
                    return Err(at(K::ForbiddenNaN));
                }
                if f32_to_f16_exact(single).is_some() {
                    return Err(at(K::NotDeterministic("float fits in half precision")));
                }
                Value::Float(f64::from(single))
            }
            _ => {
                let x = f64::from_bits(h.arg);
                if x.is_nan() {
                    return Err(at(K::ForbiddenNaN));
                }
                let mut e = Encoder::new();
                e.float(x);
                if e.into_bytes().len() != 9 {
                    return Err(at(K::NotDeterministic("float fits in a shorter precision")));
                }
                Value::Float(x)
            }
        })
    }
}

/// Bignums (tags 2 and 3) that fit in an integer must be integers, and have no leading zeros.
fn check_bignum(h: Head, inner: &Value, field: &'static str) -> Result<(), DecodeError> {
    if let (2 | 3, Value::Bytes(b)) = (h.arg, inner) {
        if b.len() <= 8 {
            return Err(DecodeError::new(
                K::NotDeterministic("bignum that fits in an integer"),
                h.offset,
                field,
            ));
        }
        if b.first() == Some(&0) {
            return Err(DecodeError::new(
                K::NotDeterministic("bignum with leading zero bytes"),
                h.offset,
                field,
            ));
        }
    }
    Ok(())
}

fn found_name(h: Head) -> &'static str {
    match (h.major, h.ai) {
        (7, 20 | 21) => "bool",
        (7, 22) => "null",
        (7, 23) => "undefined",
        (7, 25..=27) => "float",
        (m, _) => major_name(m),
    }
}

fn to_array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

/// Decodes exactly one item from `buf`, at most `max_depth` containers deep.
pub fn from_slice(buf: &[u8], max_depth: usize) -> Result<Value, DecodeError> {
    let mut d = Decoder::new(buf);
    let v = d.value(0, max_depth, "item")?;
    d.finish("item")?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::to_vec;

    fn err(hex_in: &str) -> K {
        from_slice(&hex::decode(hex_in).unwrap(), 16)
            .unwrap_err()
            .kind
    }

    #[test]
    fn rejects_non_shortest_heads() {
        assert!(matches!(err("1817"), K::NotDeterministic(_)));
        assert!(matches!(err("190017"), K::NotDeterministic(_)));
        assert!(matches!(err("5801ff"), K::NotDeterministic(_)));
        assert!(matches!(err("fa3f800000"), K::NotDeterministic(_))); // 1.0 as single
        assert!(matches!(err("f818"), K::NotDeterministic(_)));
    }

    #[test]
    fn rejects_indefinite_reserved_and_trailing() {
        assert_eq!(err("5f41ff"), K::IndefiniteLength);
        assert_eq!(err("1c"), K::Reserved(28));
        assert_eq!(err("0000"), K::TrailingBytes { count: 1 });
        assert_eq!(err("f97e01"), K::ForbiddenNaN);
        assert_eq!(err("62c328"), K::InvalidUtf8);
    }

    #[test]
    fn rejects_unsorted_and_duplicate_map_keys() {
        assert!(matches!(err("a2020001f6"), K::NotDeterministic(_)));
        assert!(matches!(err("a201000100"), K::InvalidKey(_)));
    }

    #[test]
    fn huge_claimed_lengths_are_truncation_not_allocation() {
        assert_eq!(err("5b00ffffffffffffff"), K::Truncated);
        assert_eq!(err("9b00ffffffffffffff"), K::Truncated);
        assert_eq!(err("bb00ffffffffffffff"), K::Truncated);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "81".repeat(20) + "00";
        assert!(matches!(err(&deep), K::TooDeep { .. }));
    }

    #[test]
    fn bignums_must_not_fit_integers() {
        assert!(matches!(err("c24101"), K::NotDeterministic(_)));
        assert!(matches!(
            err("c249000100000000000000"),
            K::NotDeterministic(_)
        ));
        from_slice(&hex::decode("c249010000000000000000").unwrap(), 4).unwrap();
    }

    #[test]
    fn generic_round_trip() {
        let v = Value::Array(vec![
            Value::Tag(32, Box::new(Value::Text("http://example.com".into()))),
            Value::Map(vec![
                (Value::Unsigned(1), Value::Float(1.5)),
                (Value::Bytes(vec![1]), Value::Null),
            ]),
            Value::Simple(16),
            Value::Simple(255),
            Value::Undefined,
            Value::integer(-500),
        ]);
        assert_eq!(from_slice(&to_vec(&v), 8).unwrap(), v);
    }
}
