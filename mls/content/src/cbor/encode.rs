//! Deterministic CBOR encoding (RFC 8949 §4.2.1), as content-08 §6.1 requires
//! (`CONTENT-6.1-deterministic`): shortest heads, definite lengths, map keys sorted by their
//! encoded bytes, shortest float that keeps the value, NaN as `0xf97e00`.

use super::Value;

pub(crate) const MAJOR_UNSIGNED: u8 = 0;
pub(crate) const MAJOR_NEGATIVE: u8 = 1;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_TAG: u8 = 6;

/// The canonical (and only permitted) NaN: half precision quiet NaN.
pub(crate) const CANONICAL_NAN: [u8; 3] = [0xf9, 0x7e, 0x00];

/// Appends deterministic CBOR to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            out: Vec::with_capacity(n),
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Writes an item head in its shortest form.
    pub fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.out.push(m | arg as u8);
        } else if arg <= u64::from(u8::MAX) {
            self.out.push(m | 24);
            self.out.push(arg as u8);
        } else if arg <= u64::from(u16::MAX) {
            self.out.push(m | 25);
            self.out.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= u64::from(u32::MAX) {
            self.out.push(m | 26);
            self.out.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.out.push(m | 27);
            self.out.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer.
    pub fn uint(&mut self, v: u64) {
        self.head(MAJOR_UNSIGNED, v);
    }

    /// A byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.out.extend_from_slice(b);
    }

    /// A text string.
    pub fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    /// The head of an array of `n` items; the caller writes the items.
    pub fn array(&mut self, n: usize) {
        self.head(MAJOR_ARRAY, n as u64);
    }

    /// `null`.
    pub fn null(&mut self) {
        self.out.push(0xf6);
    }

    /// `false` / `true`.
    pub fn bool(&mut self, b: bool) {
        self.out.push(if b { 0xf5 } else { 0xf4 });
    }

    /// Raw, already encoded bytes.
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }

    /// A float, in the shortest form that keeps its value.
    pub fn float(&mut self, x: f64) {
        if x.is_nan() {
            self.out.extend_from_slice(&CANONICAL_NAN);
            return;
        }
        let single = x as f32;
        if f64::from(single).to_bits() == x.to_bits() {
            if let Some(half) = f32_to_f16_exact(single) {
                self.out.push(0xf9);
                self.out.extend_from_slice(&half.to_be_bytes());
            } else {
                self.out.push(0xfa);
                self.out.extend_from_slice(&single.to_bits().to_be_bytes());
            }
        } else {
            self.out.push(0xfb);
            self.out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
    }

    /// Any generic item; maps are written in deterministic key order.
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Unsigned(n) => self.head(MAJOR_UNSIGNED, *n),
            Value::Negative(n) => self.head(MAJOR_NEGATIVE, *n),
            Value::Bytes(b) => self.bytes(b),
            Value::Text(s) => self.text(s),
            Value::Array(items) => {
                self.array(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Map(entries) => self.map(entries),
            Value::Tag(t, inner) => {
                self.head(MAJOR_TAG, *t);
                self.value(inner);
            }
            Value::Bool(b) => self.bool(*b),
            Value::Null => self.null(),
            Value::Undefined => self.out.push(0xf7),
            Value::Simple(n) => {
                if *n < 24 {
                    self.out.push(0xe0 | n);
                } else {
                    self.out.push(0xf8);
                    self.out.push(*n);
                }
            }
            Value::Float(x) => self.float(*x),
        }
    }

    /// A map, with its entries sorted by the bytes of their encoded keys (RFC 8949 §4.2.1).
    pub fn map(&mut self, entries: &[(Value, Value)]) {
        self.head(MAJOR_MAP, entries.len() as u64);
        let mut encoded: Vec<(Vec<u8>, &Value)> = entries
            .iter()
            .map(|(k, v)| {
                let mut e = Encoder::new();
                e.value(k);
                (e.out, v)
            })
            .collect();
        encoded.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in encoded {
            self.out.extend_from_slice(&key);
            self.value(value);
        }
    }
}

/// Encodes one item on its own.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut e = Encoder::new();
    e.value(v);
    e.into_bytes()
}

/// Half precision bits for `x` if the conversion is exact (finite values, zeros, infinities).
pub(crate) fn f32_to_f16_exact(x: f32) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x007f_ffff;
    if exp == 0xff {
        // Infinity converts exactly; NaN is handled by the caller.
        return (man == 0).then_some(sign | 0x7c00);
    }
    if exp == 0 {
        // Zero converts; single precision subnormals are far below half precision's range.
        return (man == 0).then_some(sign);
    }
    let e = exp - 127;
    if e > 15 {
        None
    } else if e >= -14 {
        // Normal half: the 13 low mantissa bits must be zero.
        (man & 0x1fff == 0).then(|| sign | (((e + 15) as u16) << 10) | (man >> 13) as u16)
    } else if e >= -24 {
        // Subnormal half: value = m * 2^-24.
        let full = man | 0x0080_0000;
        let shift = (13 + (-14 - e)) as u32;
        (full & ((1u32 << shift) - 1) == 0).then(|| sign | (full >> shift) as u16)
    } else {
        None
    }
}

/// The value of half precision bits.
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f64.powi(-24),
        31 if man == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + man / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_heads() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0x00]),
            (23, &[0x17]),
            (24, &[0x18, 0x18]),
            (255, &[0x18, 0xff]),
            (256, &[0x19, 0x01, 0x00]),
            (65535, &[0x19, 0xff, 0xff]),
            (65536, &[0x1a, 0x00, 0x01, 0x00, 0x00]),
            (u64::from(u32::MAX) + 1, &[0x1b, 0, 0, 0, 1, 0, 0, 0, 0]),
        ];
        for (v, want) in cases {
            let mut e = Encoder::new();
            e.uint(*v);
            assert_eq!(e.into_bytes(), *want, "{v}");
        }
    }

    #[test]
    fn floats_take_shortest_exact_form() {
        // RFC 8949 Appendix A examples.
        let cases: &[(f64, &str)] = &[
            (0.0, "f90000"),
            (-0.0, "f98000"),
            (1.0, "f93c00"),
            (1.5, "f93e00"),
            (65504.0, "f97bff"),
            (100000.0, "fa47c35000"),
            (3.4028234663852886e+38, "fa7f7fffff"),
            (1.0e+300, "fb7e37e43c8800759c"),
            (5.960464477539063e-8, "f90001"),
            (0.00006103515625, "f90400"),
            (-4.0, "f9c400"),
            (-4.1, "fbc010666666666666"),
            (f64::INFINITY, "f97c00"),
            (f64::NEG_INFINITY, "f9fc00"),
            (f64::NAN, "f97e00"),
        ];
        for (x, want) in cases {
            let mut e = Encoder::new();
            e.float(*x);
            assert_eq!(hex::encode(e.into_bytes()), *want, "{x}");
        }
    }

    #[test]
    fn half_precision_decodes_back() {
        for h in [
            0x0000u16, 0x8000, 0x3c00, 0x3e00, 0x7bff, 0x0001, 0x0400, 0xc400, 0x7c00,
        ] {
            let x = f16_to_f64(h);
            assert_eq!(f32_to_f16_exact(x as f32), Some(h), "{h:#06x}");
        }
    }

    #[test]
    fn map_keys_are_sorted_bytewise_not_length_first() {
        // RFC 8949 §4.2.1 orders by encoded bytes: 10 (0x0a) < 100 (0x1864) < -1 (0x20) < "z" < "aa".
        let map = Value::Map(vec![
            (Value::Text("aa".into()), Value::Null),
            (Value::integer(-1), Value::Null),
            (Value::Text("z".into()), Value::Null),
            (Value::Unsigned(100), Value::Null),
            (Value::Unsigned(10), Value::Null),
        ]);
        assert_eq!(hex::encode(to_vec(&map)), "a50af61864f620f6617af6626161f6");
    }
}
