//! Encoding and strict decoding of [`MimiContent`] (content-08 §4, §6).

use crate::cbor::{Decoder, Encoder, Value};
use crate::error::{DecodeError, DecodeErrorKind as K, EncodeError};
use crate::limits::Limits;
use crate::model::{
    Disposition, Expiration, ExtensionKey, Extensions, ExternalPart, HASH_ALG_SHA256, MessageId,
    MimiContent, NestedPart, PartBody, PartSemantics, cardinality,
};

/// Largest integer a map key may hold (content-08 §6.2: representable as a double).
const MAX_SAFE_INT: u64 = (1 << 53) - 1;
/// Longest text extension key (content-08 §4.3).
const MAX_TEXT_KEY: usize = 255;

impl MimiContent {
    /// Encodes deterministically (`CONTENT-6.1-deterministic`), after checking the draft's
    /// limits so that we never send what a conforming receiver must discard.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.encode_with(&Limits::DRAFT)
    }

    /// [`MimiContent::encode`] with other limits.
    pub fn encode_with(&self, limits: &Limits) -> Result<Vec<u8>, EncodeError> {
        self.validate(limits)?;
        let mut e = Encoder::with_capacity(256);
        e.array(7);
        e.bytes(&self.salt);
        opt_message_id(&mut e, self.replaces.as_ref());
        e.bytes(&self.topic_id);
        match self.expires {
            None => e.null(),
            Some(x) => {
                e.array(2);
                e.bool(x.relative);
                e.uint(u64::from(x.time));
            }
        }
        opt_message_id(&mut e, self.in_reply_to.as_ref());
        encode_extensions(&mut e, &self.extensions);
        encode_part(&mut e, &self.nested_part);
        let out = e.into_bytes();
        if out.len() > limits.max_message_size {
            return Err(EncodeError::LimitExceeded {
                what: "message size",
                limit: limits.max_message_size as u64,
                found: out.len() as u64,
            });
        }
        Ok(out)
    }

    /// Checks everything [`MimiContent::decode`] would check, without encoding.
    pub fn validate(&self, limits: &Limits) -> Result<(), EncodeError> {
        if self.topic_id.len() > limits.max_topic_id {
            return Err(EncodeError::LimitExceeded {
                what: "topicId octets",
                limit: limits.max_topic_id as u64,
                found: self.topic_id.len() as u64,
            });
        }
        validate_extensions(&self.extensions, limits)?;
        let mut count = 0;
        validate_part(&self.nested_part, 1, &mut count, limits)
    }

    /// Decodes strictly with the draft's limits: exact structure, deterministic encoding only,
    /// no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with(bytes, &Limits::DRAFT)
    }

    /// [`MimiContent::decode`] with other limits.
    pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_message_size {
            return Err(DecodeError::new(
                K::LimitExceeded {
                    what: "message size",
                    limit: limits.max_message_size as u64,
                    found: bytes.len() as u64,
                },
                0,
                "mimiContent",
            ));
        }
        let mut d = Decoder::new(bytes);
        let n = d.array("mimiContent")?;
        if n != 7 {
            return Err(DecodeError::new(
                K::WrongArrayLength {
                    expected: "the 7-element mimiContent array",
                    found: n,
                },
                0,
                "mimiContent",
            ));
        }
        let salt = d.fixed_bytes::<16>("salt")?;
        let replaces = decode_opt_message_id(&mut d, "replaces")?;
        let topic_id = d.bytes(limits.max_topic_id, "topicId")?.to_vec();
        let expires = decode_expiration(&mut d)?;
        let in_reply_to = decode_opt_message_id(&mut d, "inReplyTo")?;
        let extensions = decode_extensions(&mut d, limits)?;
        let mut count = 0;
        let nested_part = decode_part(&mut d, 1, &mut count, limits)?;
        // CONTENT-4-trailing: exactly one item, nothing after it.
        d.finish("mimiContent")?;
        Ok(Self {
            salt,
            replaces,
            topic_id,
            expires,
            in_reply_to,
            extensions,
            nested_part,
        })
    }
}

fn opt_message_id(e: &mut Encoder, id: Option<&MessageId>) {
    match id {
        None => e.null(),
        Some(id) => e.bytes(&id.0),
    }
}

pub(crate) fn decode_message_id(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<MessageId, DecodeError> {
    let at = d.position();
    let raw = d.fixed_bytes::<32>(field)?;
    // CONTENT-9.1-hash-alg: an unknown hash algorithm octet marks a malicious message.
    if raw[0] != HASH_ALG_SHA256 {
        return Err(DecodeError::new(K::UnknownHashAlgorithm(raw[0]), at, field));
    }
    Ok(MessageId(raw))
}

fn decode_opt_message_id(
    d: &mut Decoder<'_>,
    field: &'static str,
) -> Result<Option<MessageId>, DecodeError> {
    if d.null() {
        Ok(None)
    } else {
        decode_message_id(d, field).map(Some)
    }
}

fn decode_expiration(d: &mut Decoder<'_>) -> Result<Option<Expiration>, DecodeError> {
    if d.null() {
        return Ok(None);
    }
    let at = d.position();
    let n = d.array("expires")?;
    if n != 2 {
        return Err(DecodeError::new(
            K::WrongArrayLength {
                expected: "Expiration [relative, time]",
                found: n,
            },
            at,
            "expires",
        ));
    }
    let relative = d.bool("expires.relative")?;
    let time = d.uint_max(u64::from(u32::MAX), "uint .size 4", "expires.time")? as u32;
    Ok(Some(Expiration { relative, time }))
}

// ---- extensions ----------------------------------------------------------------------------

fn encode_extensions(e: &mut Encoder, ext: &Extensions) {
    let mut keyed: Vec<(Vec<u8>, &Value)> = ext
        .entries
        .iter()
        .map(|(k, v)| (crate::cbor::to_vec(&k.to_value()), v))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    e.head(crate::cbor::MAJOR_MAP, keyed.len() as u64);
    for (key, value) in keyed {
        e.raw(&key);
        e.value(value);
    }
}

fn validate_extensions(ext: &Extensions, limits: &Limits) -> Result<(), EncodeError> {
    let mut seen: Vec<&ExtensionKey> = Vec::with_capacity(ext.entries.len());
    for (key, value) in &ext.entries {
        if seen.contains(&key) {
            return Err(EncodeError::DuplicateKey(key.to_string()));
        }
        seen.push(key);
        let bad = |reason| EncodeError::InvalidKey {
            key: key.to_string(),
            reason,
        };
        match key {
            ExtensionKey::Int(i) if i.unsigned_abs() > MAX_SAFE_INT => {
                return Err(bad("integer keys must lie within ±(2^53-1)"));
            }
            ExtensionKey::Text(s) if s.is_empty() || s.len() > MAX_TEXT_KEY => {
                return Err(bad("text keys are 1 to 255 octets"));
            }
            _ => {}
        }
        if matches!(key, ExtensionKey::Int(1 | 2)) && !matches!(value, Value::Text(_)) {
            return Err(bad("senderUri (1) and roomUri (2) are text strings"));
        }
        validate_ext_value(value, 1, limits.max_extension_depth)?;
    }
    Ok(())
}

/// Checks an extension value that sits inside a container at `level` (content-08 §6.2, §6.3).
fn validate_ext_value(v: &Value, level: usize, max: usize) -> Result<(), EncodeError> {
    let deeper = || EncodeError::TooDeep {
        what: "extension value",
        limit: max,
    };
    match v {
        Value::Array(items) => {
            if level + 1 > max {
                return Err(deeper());
            }
            items
                .iter()
                .try_for_each(|i| validate_ext_value(i, level + 1, max))
        }
        Value::Map(entries) => {
            if level + 1 > max {
                return Err(deeper());
            }
            for (i, (k, v)) in entries.iter().enumerate() {
                if let Some(reason) = nested_key_problem(k) {
                    return Err(EncodeError::InvalidKey {
                        key: k.to_string(),
                        reason,
                    });
                }
                if entries[..i].iter().any(|(other, _)| other == k) {
                    return Err(EncodeError::DuplicateKey(k.to_string()));
                }
                validate_ext_value(v, level + 1, max)?;
            }
            Ok(())
        }
        Value::Tag(_, inner) => {
            if level + 1 > max {
                return Err(deeper());
            }
            validate_ext_value(inner, level + 1, max)
        }
        _ => Ok(()),
    }
}

/// Keys of maps inside extensions: integers within ±(2^53-1), text or bytes (content-08 §6.2).
fn nested_key_problem(k: &Value) -> Option<&'static str> {
    match k {
        Value::Unsigned(n) if *n > MAX_SAFE_INT => Some("integer keys must lie within ±(2^53-1)"),
        Value::Negative(n) if *n >= MAX_SAFE_INT => Some("integer keys must lie within ±(2^53-1)"),
        Value::Unsigned(_) | Value::Negative(_) | Value::Text(_) | Value::Bytes(_) => None,
        _ => Some("map keys inside extensions are integers, text or byte strings"),
    }
}

fn decode_extensions(d: &mut Decoder<'_>, limits: &Limits) -> Result<Extensions, DecodeError> {
    let n = d.map("mimiExtensions")?;
    let mut entries = Vec::with_capacity(n as usize);
    let mut previous: Option<(usize, usize)> = None;
    for _ in 0..n {
        let start = d.position();
        let key = decode_ext_key(d)?;
        let end = d.position();
        if let Some((ps, pe)) = previous {
            let (prev, this) = (d.slice(ps, pe), d.slice(start, end));
            if this == prev {
                return Err(DecodeError::new(
                    K::InvalidKey("duplicate extension key"),
                    start,
                    "mimiExtensions",
                ));
            }
            if this < prev {
                return Err(DecodeError::new(
                    K::NotDeterministic("extension keys not in bytewise order"),
                    start,
                    "mimiExtensions",
                ));
            }
        }
        previous = Some((start, end));
        let value_at = d.position();
        // CONTENT-6.3-ext-depth: the extensions map is level 1.
        let value = d.value(1, limits.max_extension_depth, "extension value")?;
        // CONTENT-6.2-keys
        if let Some(reason) = nested_key_problem_deep(&value) {
            return Err(DecodeError::new(
                K::InvalidKey(reason),
                value_at,
                "extension value",
            ));
        }
        // CONTENT-4.3-uri-type
        if matches!(key, ExtensionKey::Int(1 | 2)) && !matches!(value, Value::Text(_)) {
            return Err(DecodeError::new(
                K::UnexpectedType {
                    expected: "text string (senderUri / roomUri)",
                    found: value.type_name(),
                },
                value_at,
                "extension value",
            ));
        }
        entries.push((key, value));
    }
    Ok(Extensions { entries })
}

fn decode_ext_key(d: &mut Decoder<'_>) -> Result<ExtensionKey, DecodeError> {
    let at = d.position();
    let field = "extension key";
    let bad = |reason| DecodeError::new(K::InvalidKey(reason), at, field);
    match d.peek().map(|b| b >> 5) {
        Some(3) => {
            let s = d.text(MAX_TEXT_KEY, field)?;
            if s.is_empty() {
                return Err(bad("text keys are 1 to 255 octets"));
            }
            Ok(ExtensionKey::Text(s.to_owned()))
        }
        Some(0 | 1) => match d.value(0, 0, field)? {
            Value::Unsigned(n) if n <= MAX_SAFE_INT => Ok(ExtensionKey::Int(n as i64)),
            Value::Negative(n) if n < MAX_SAFE_INT => Ok(ExtensionKey::Int(-1 - n as i64)),
            _ => Err(bad("integer keys must lie within ±(2^53-1)")),
        },
        Some(_) => Err(bad("extension keys are integers or text strings")),
        None => Err(DecodeError::new(K::Truncated, at, field)),
    }
}

fn nested_key_problem_deep(v: &Value) -> Option<&'static str> {
    match v {
        Value::Array(items) => items.iter().find_map(nested_key_problem_deep),
        Value::Map(entries) => entries
            .iter()
            .find_map(|(k, v)| nested_key_problem(k).or_else(|| nested_key_problem_deep(v))),
        Value::Tag(_, inner) => nested_key_problem_deep(inner),
        _ => None,
    }
}

// ---- nested parts --------------------------------------------------------------------------

fn encode_part(e: &mut Encoder, p: &NestedPart) {
    let n = match &p.body {
        PartBody::Null => 3,
        PartBody::Single { .. } | PartBody::Multi { .. } => 5,
        PartBody::External(_) => 15,
    };
    e.array(n);
    e.uint(u64::from(p.disposition.0));
    e.text(&p.language);
    match &p.body {
        PartBody::Null => e.uint(cardinality::NULL),
        PartBody::Single {
            content_type,
            content,
        } => {
            e.uint(cardinality::SINGLE);
            e.text(content_type);
            e.bytes(content);
        }
        PartBody::External(x) => {
            e.uint(cardinality::EXTERNAL);
            e.text(&x.content_type);
            e.text(&x.url);
            e.uint(u64::from(x.expires));
            e.uint(x.size);
            e.uint(u64::from(x.enc_alg));
            e.bytes(&x.key);
            e.bytes(&x.nonce);
            e.bytes(&x.aad);
            e.uint(u64::from(x.hash_alg));
            e.bytes(&x.content_hash);
            e.text(&x.description);
            e.text(&x.filename);
        }
        PartBody::Multi { semantics, parts } => {
            e.uint(cardinality::MULTI);
            e.uint(u64::from(semantics.code()));
            e.array(parts.len());
            for part in parts {
                encode_part(e, part);
            }
        }
    }
}

fn validate_part(
    p: &NestedPart,
    depth: usize,
    count: &mut usize,
    limits: &Limits,
) -> Result<(), EncodeError> {
    if depth > limits.max_part_depth {
        return Err(EncodeError::TooDeep {
            what: "NestedPart",
            limit: limits.max_part_depth,
        });
    }
    *count += 1;
    if *count > limits.max_parts {
        return Err(EncodeError::LimitExceeded {
            what: "body parts",
            limit: limits.max_parts as u64,
            found: *count as u64,
        });
    }
    if let PartBody::Multi { parts, .. } = &p.body {
        if parts.len() < 2 {
            return Err(EncodeError::TooFewParts(parts.len()));
        }
        for part in parts {
            validate_part(part, depth + 1, count, limits)?;
        }
    }
    Ok(())
}

fn decode_part(
    d: &mut Decoder<'_>,
    depth: usize,
    count: &mut usize,
    limits: &Limits,
) -> Result<NestedPart, DecodeError> {
    let at = d.position();
    // CONTENT-6.3-part-depth
    if depth > limits.max_part_depth {
        return Err(DecodeError::new(
            K::TooDeep {
                what: "NestedPart",
                limit: limits.max_part_depth,
            },
            at,
            "NestedPart",
        ));
    }
    // CONTENT-9.1-parts
    *count += 1;
    if *count > limits.max_parts {
        return Err(DecodeError::new(
            K::LimitExceeded {
                what: "body parts",
                limit: limits.max_parts as u64,
                found: *count as u64,
            },
            at,
            "NestedPart",
        ));
    }
    let n = d.array("NestedPart")?;
    if n < 3 {
        return Err(DecodeError::new(
            K::WrongArrayLength {
                expected: "a NestedPart of 3, 5 or 15 elements",
                found: n,
            },
            at,
            "NestedPart",
        ));
    }
    let disposition = Disposition(d.uint_max(255, "disposition (0..255)", "disposition")? as u8);
    let language = d.text(usize::MAX, "language")?.to_owned();
    // CONTENT-4.4-cardinality: the cardinality fixes the array's length.
    let card_at = d.position();
    let card = d.uint("cardinality")?;
    let (want, body) = match card {
        cardinality::NULL => (3, None),
        cardinality::SINGLE | cardinality::MULTI => (5, Some(card)),
        cardinality::EXTERNAL => (15, Some(card)),
        other => {
            return Err(DecodeError::new(
                K::Unknown {
                    what: "cardinality",
                    value: other,
                },
                card_at,
                "cardinality",
            ));
        }
    };
    if n != want {
        let expected = match want {
            3 => "3 elements for a NullPart",
            5 => "5 elements for a SinglePart or MultiPart",
            _ => "15 elements for an ExternalPart",
        };
        return Err(DecodeError::new(
            K::WrongArrayLength { expected, found: n },
            at,
            "NestedPart",
        ));
    }
    let body = match body {
        None => PartBody::Null,
        Some(cardinality::SINGLE) => PartBody::Single {
            content_type: d.text(usize::MAX, "contentType")?.to_owned(),
            content: d.bytes(usize::MAX, "content")?.to_vec(),
        },
        Some(cardinality::EXTERNAL) => PartBody::External(decode_external(d)?),
        Some(_) => {
            let sem_at = d.position();
            let code = d.uint("partSemantics")?;
            // CONTENT-9.1-semantics: an unknown PartSemantics marks a malicious message.
            let semantics = PartSemantics::from_code(code).ok_or_else(|| {
                DecodeError::new(
                    K::Unknown {
                        what: "partSemantics",
                        value: code,
                    },
                    sem_at,
                    "partSemantics",
                )
            })?;
            let parts_at = d.position();
            let k = d.array("parts")?;
            if k < 2 {
                return Err(DecodeError::new(
                    K::WrongArrayLength {
                        expected: "at least 2 parts ([2* NestedPart])",
                        found: k,
                    },
                    parts_at,
                    "parts",
                ));
            }
            let mut parts = Vec::with_capacity(k as usize);
            for _ in 0..k {
                parts.push(decode_part(d, depth + 1, count, limits)?);
            }
            PartBody::Multi { semantics, parts }
        }
    };
    Ok(NestedPart {
        disposition,
        language,
        body,
    })
}

fn decode_external(d: &mut Decoder<'_>) -> Result<ExternalPart, DecodeError> {
    Ok(ExternalPart {
        content_type: d.text(usize::MAX, "contentType")?.to_owned(),
        url: d.text(usize::MAX, "url")?.to_owned(),
        expires: d.uint_max(u64::from(u32::MAX), "uint .size 4", "expires")? as u32,
        size: d.uint("size")?,
        enc_alg: d.uint_max(u64::from(u16::MAX), "uint .size 2", "encAlg")? as u16,
        key: d.bytes(usize::MAX, "key")?.to_vec(),
        nonce: d.bytes(usize::MAX, "nonce")?.to_vec(),
        aad: d.bytes(usize::MAX, "aad")?.to_vec(),
        hash_alg: d.uint_max(u64::from(u8::MAX), "uint .size 1", "hashAlg")? as u8,
        content_hash: d.bytes(usize::MAX, "contentHash")?.to_vec(),
        description: d.text(usize::MAX, "description")?.to_owned(),
        filename: d.text(usize::MAX, "filename")?.to_owned(),
    })
}
