//! A generic CBOR data item, used for extension values (`value = any` in the CDDL).

use std::fmt;

/// One CBOR data item (RFC 8949 §3).
///
/// Maps keep their entries in the order given; the encoder always writes them in deterministic
/// order (RFC 8949 §4.2.1: sorted by the bytes of the encoded key), and the strict decoder only
/// accepts them in that order, so a decoded map is always sorted.
#[derive(Clone, Debug)]
pub enum Value {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    /// Major type 2.
    Bytes(Vec<u8>),
    /// Major type 3 (always valid UTF-8).
    Text(String),
    /// Major type 4.
    Array(Vec<Value>),
    /// Major type 5.
    Map(Vec<(Value, Value)>),
    /// Major type 6.
    Tag(u64, Box<Value>),
    /// `false` / `true`.
    Bool(bool),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Any other simple value (0..=19 or 32..=255).
    Simple(u8),
    /// A floating point number; encoded in the shortest of half, single and double precision
    /// that keeps its value. NaN is always encoded as `0xf97e00`.
    Float(f64),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Unsigned(a), Unsigned(b)) | (Negative(a), Negative(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Text(a), Text(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Tag(ta, a), Tag(tb, b)) => ta == tb && a == b,
            (Bool(a), Bool(b)) => a == b,
            (Null, Null) | (Undefined, Undefined) => true,
            (Simple(a), Simple(b)) => a == b,
            // Bitwise: -0.0 and 0.0 are different items; every NaN is the one canonical NaN.
            (Float(a), Float(b)) => (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Value {
    /// A signed integer as a CBOR item (major type 0 or 1).
    pub fn integer(v: i64) -> Value {
        if v >= 0 {
            Value::Unsigned(v.unsigned_abs())
        } else {
            // -1 - n = v  =>  n = -1 - v = !v (two's complement), never overflows.
            Value::Negative(!v as u64)
        }
    }

    /// The value as an `i128` if it is an integer (major type 0 or 1).
    pub fn as_integer(&self) -> Option<i128> {
        match self {
            Value::Unsigned(n) => Some(i128::from(*n)),
            Value::Negative(n) => Some(-1 - i128::from(*n)),
            _ => None,
        }
    }

    /// The value as text, if it is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the CBOR type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Unsigned(_) => "unsigned integer",
            Value::Negative(_) => "negative integer",
            Value::Bytes(_) => "byte string",
            Value::Text(_) => "text string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Tag(..) => "tag",
            Value::Bool(_) => "bool",
            Value::Null => "null",
            Value::Undefined => "undefined",
            Value::Simple(_) => "simple value",
            Value::Float(_) => "float",
        }
    }
}

/// CBOR extended diagnostic notation (RFC 8949 §8), as the drafts print their examples.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unsigned(n) => write!(f, "{n}"),
            Value::Negative(n) => write!(f, "{}", -1 - i128::from(*n)),
            Value::Bytes(b) => write!(f, "h'{}'", hex::encode(b)),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Value::Tag(t, v) => write!(f, "{t}({v})"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
            Value::Undefined => f.write_str("undefined"),
            Value::Simple(n) => write!(f, "simple({n})"),
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "Infinity" } else { "-Infinity" })
            }
            Value::Float(x) => write!(f, "{x:?}"),
        }
    }
}
