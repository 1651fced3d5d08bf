//! A JSON form of MIMI content for people testing other implementations (`mimi content
//! inspect` / `mimi content encode`), and CBOR diagnostic notation of a whole message.
//!
//! The mapping is lossless: `from_json(to_json(c)) == c` for every message. Field names are the
//! CDDL's. Byte strings are lower-case hex; a single part's content is `{"text": …}` when it is
//! UTF-8 text of a `text/*` type and `{"hex": …}` otherwise. Extension values use JSON where
//! JSON is unambiguous (integers, text, arrays, booleans, null) and tagged objects otherwise:
//! `{"bytes": hex}`, `{"map": [[key, value], …]}`, `{"tag": n, "value": v}`,
//! `{"simple": n}` (23 = undefined), `{"float": x}` (or `"NaN"`, `"Infinity"`, `"-Infinity"`).

use crate::cbor::Value;
use crate::model::{
    Disposition, Expiration, ExtensionKey, Extensions, ExternalPart, MessageId, MimiContent,
    NestedPart, PartBody, PartSemantics,
};
use serde_json::{Map, Value as Json, json};

/// Why a JSON document is not MIMI content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct JsonError {
    /// Where, as a JSON path (`nestedPart.parts[1].content`).
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

fn err(path: &str, problem: impl Into<String>) -> JsonError {
    JsonError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

// ---- to JSON -------------------------------------------------------------------------------

/// The JSON form of a message.
pub fn to_json(c: &MimiContent) -> Json {
    json!({
        "salt": hex::encode(c.salt),
        "replaces": c.replaces.map(|id| id.to_hex()),
        "topicId": hex::encode(&c.topic_id),
        "expires": c.expires.map(|e| json!({"relative": e.relative, "time": e.time})),
        "inReplyTo": c.in_reply_to.map(|id| id.to_hex()),
        "extensions": c.extensions.entries.iter().map(|(k, v)| {
            let key = match k {
                ExtensionKey::Int(i) => json!(i),
                ExtensionKey::Text(s) => json!(s),
            };
            json!({"key": key, "value": value_to_json(v)})
        }).collect::<Vec<_>>(),
        "nestedPart": part_to_json(&c.nested_part),
    })
}

fn part_to_json(p: &NestedPart) -> Json {
    let mut m = Map::new();
    m.insert(
        "disposition".into(),
        p.disposition
            .name()
            .map_or_else(|| json!(p.disposition.0), |n| json!(n)),
    );
    m.insert("language".into(), json!(p.language));
    match &p.body {
        PartBody::Null => {
            m.insert("cardinality".into(), json!("nullpart"));
        }
        PartBody::Single {
            content_type,
            content,
        } => {
            m.insert("cardinality".into(), json!("single"));
            m.insert("contentType".into(), json!(content_type));
            let text = content_type.trim_start().starts_with("text/");
            let body = match std::str::from_utf8(content) {
                Ok(s) if text => json!({ "text": s }),
                _ => json!({ "hex": hex::encode(content) }),
            };
            m.insert("content".into(), body);
        }
        PartBody::External(x) => {
            m.insert("cardinality".into(), json!("external"));
            for (k, v) in [
                ("contentType", json!(x.content_type)),
                ("url", json!(x.url)),
                ("expires", json!(x.expires)),
                ("size", json!(x.size)),
                ("encAlg", json!(x.enc_alg)),
                ("key", json!(hex::encode(&x.key))),
                ("nonce", json!(hex::encode(&x.nonce))),
                ("aad", json!(hex::encode(&x.aad))),
                ("hashAlg", json!(x.hash_alg)),
                ("contentHash", json!(hex::encode(&x.content_hash))),
                ("description", json!(x.description)),
                ("filename", json!(x.filename)),
            ] {
                m.insert(k.into(), v);
            }
        }
        PartBody::Multi { semantics, parts } => {
            m.insert("cardinality".into(), json!("multi"));
            let s = match semantics {
                PartSemantics::ChooseOne => "chooseOne",
                PartSemantics::SingleUnit => "singleUnit",
                PartSemantics::ProcessAll => "processAll",
            };
            m.insert("partSemantics".into(), json!(s));
            m.insert(
                "parts".into(),
                Json::Array(parts.iter().map(part_to_json).collect()),
            );
        }
    }
    Json::Object(m)
}

/// The JSON form of a generic CBOR item.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Unsigned(n) => json!(n),
        Value::Negative(n) => match i64::try_from(*n) {
            Ok(n) => json!(-1 - n),
            // Below i64::MIN: JSON numbers cannot carry it exactly; tag it.
            Err(_) => json!({ "negative": n }),
        },
        Value::Bytes(b) => json!({ "bytes": hex::encode(b) }),
        Value::Text(s) => json!(s),
        Value::Array(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(entries) => json!({
            "map": entries.iter().map(|(k, v)| json!([value_to_json(k), value_to_json(v)])).collect::<Vec<_>>()
        }),
        Value::Tag(t, inner) => json!({ "tag": t, "value": value_to_json(inner) }),
        Value::Bool(b) => json!(b),
        Value::Null => Json::Null,
        Value::Undefined => json!({ "simple": 23 }),
        Value::Simple(n) => json!({ "simple": n }),
        Value::Float(x) if x.is_nan() => json!({ "float": "NaN" }),
        Value::Float(x) if x.is_infinite() => {
            json!({ "float": if *x > 0.0 { "Infinity" } else { "-Infinity" } })
        }
        Value::Float(x) => json!({ "float": x }),
    }
}

// ---- from JSON -----------------------------------------------------------------------------

/// A message from its JSON form. Optional fields may be left out (`replaces`, `topicId`,
/// `expires`, `inReplyTo`, `extensions`, `language`); `salt` is required.
pub fn from_json(j: &Json) -> Result<MimiContent, JsonError> {
    let o = j
        .as_object()
        .ok_or_else(|| err("$", "expected an object"))?;
    let salt_raw = hex_field(o, "salt", "salt")?.ok_or_else(|| err("salt", "required"))?;
    let salt: [u8; 16] = salt_raw.as_slice().try_into().map_err(|_| {
        err(
            "salt",
            format!("must be 16 octets, found {}", salt_raw.len()),
        )
    })?;
    let expires = match o.get("expires") {
        None | Some(Json::Null) => None,
        Some(e) => {
            let relative = e.get("relative").and_then(Json::as_bool);
            let time = e
                .get("time")
                .and_then(Json::as_u64)
                .and_then(|t| u32::try_from(t).ok());
            match (relative, time) {
                (Some(relative), Some(time)) => Some(Expiration { relative, time }),
                _ => {
                    return Err(err(
                        "expires",
                        "expected {\"relative\": bool, \"time\": 0..=4294967295}",
                    ));
                }
            }
        }
    };
    let mut extensions = Extensions::default();
    if let Some(list) = o.get("extensions") {
        let list = list
            .as_array()
            .ok_or_else(|| err("extensions", "expected an array of {key, value}"))?;
        for (i, entry) in list.iter().enumerate() {
            let path = format!("extensions[{i}]");
            let key = match entry.get("key") {
                Some(Json::String(s)) => ExtensionKey::Text(s.clone()),
                Some(Json::Number(n)) => ExtensionKey::Int(
                    n.as_i64()
                        .ok_or_else(|| err(&path, "integer key out of range"))?,
                ),
                _ => return Err(err(&path, "expected \"key\": integer or text")),
            };
            let value = entry
                .get("value")
                .ok_or_else(|| err(&path, "missing \"value\""))?;
            extensions
                .entries
                .push((key, value_from_json(value, &format!("{path}.value"))?));
        }
    }
    let nested_part = part_from_json(
        o.get("nestedPart")
            .ok_or_else(|| err("nestedPart", "required"))?,
        "nestedPart",
    )?;
    Ok(MimiContent {
        salt,
        replaces: id_field(o, "replaces")?,
        topic_id: hex_field(o, "topicId", "topicId")?.unwrap_or_default(),
        expires,
        in_reply_to: id_field(o, "inReplyTo")?,
        extensions,
        nested_part,
    })
}

fn hex_field(o: &Map<String, Json>, name: &str, path: &str) -> Result<Option<Vec<u8>>, JsonError> {
    match o.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => hex::decode(s)
            .map(Some)
            .map_err(|_| err(path, "expected hex")),
        Some(_) => Err(err(path, "expected a hex string")),
    }
}

fn id_field(o: &Map<String, Json>, name: &str) -> Result<Option<MessageId>, JsonError> {
    match o.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => MessageId::from_hex(s)
            .map(Some)
            .map_err(|e| err(name, e.to_string())),
        Some(_) => Err(err(name, "expected a message ID in hex or null")),
    }
}

fn str_field(o: &Map<String, Json>, name: &str, path: &str) -> Result<String, JsonError> {
    match o.get(name) {
        None => Ok(String::new()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(err(&format!("{path}.{name}"), "expected text")),
    }
}

fn uint_field<T: TryFrom<u64>>(
    o: &Map<String, Json>,
    name: &str,
    path: &str,
) -> Result<T, JsonError> {
    let p = format!("{path}.{name}");
    match o.get(name) {
        None => T::try_from(0).map_err(|_| err(&p, "out of range")),
        Some(v) => v
            .as_u64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| err(&p, "expected an unsigned integer in range")),
    }
}

fn part_from_json(j: &Json, path: &str) -> Result<NestedPart, JsonError> {
    let o = j
        .as_object()
        .ok_or_else(|| err(path, "expected an object"))?;
    let disposition =
        match o.get("disposition") {
            None => Disposition::RENDER,
            Some(Json::String(s)) => Disposition::from_name(s).ok_or_else(|| {
                err(
                    &format!("{path}.disposition"),
                    format!("unknown name {s:?}"),
                )
            })?,
            Some(v) => Disposition(v.as_u64().and_then(|n| u8::try_from(n).ok()).ok_or_else(
                || err(&format!("{path}.disposition"), "expected a name or 0..=255"),
            )?),
        };
    let language = str_field(o, "language", path)?;
    let card = o.get("cardinality").and_then(Json::as_str).unwrap_or("");
    let body = match card {
        "nullpart" => PartBody::Null,
        "single" => {
            let content_type = str_field(o, "contentType", path)?;
            let cpath = format!("{path}.content");
            let content = match o.get("content") {
                Some(Json::Object(c)) if c.contains_key("text") => c["text"]
                    .as_str()
                    .ok_or_else(|| err(&cpath, "text must be a string"))?
                    .as_bytes()
                    .to_vec(),
                Some(Json::Object(c)) if c.contains_key("hex") => hex_field(c, "hex", &cpath)?
                    .ok_or_else(|| err(&cpath, "hex must be a string"))?,
                Some(Json::String(s)) => s.as_bytes().to_vec(),
                _ => return Err(err(&cpath, "expected {\"text\": …} or {\"hex\": …}")),
            };
            PartBody::Single {
                content_type,
                content,
            }
        }
        "external" => {
            let hexf = |name: &str| -> Result<Vec<u8>, JsonError> {
                Ok(hex_field(o, name, &format!("{path}.{name}"))?.unwrap_or_default())
            };
            PartBody::External(ExternalPart {
                content_type: str_field(o, "contentType", path)?,
                url: str_field(o, "url", path)?,
                expires: uint_field(o, "expires", path)?,
                size: uint_field(o, "size", path)?,
                enc_alg: uint_field(o, "encAlg", path)?,
                key: hexf("key")?,
                nonce: hexf("nonce")?,
                aad: hexf("aad")?,
                hash_alg: uint_field(o, "hashAlg", path)?,
                content_hash: hexf("contentHash")?,
                description: str_field(o, "description", path)?,
                filename: str_field(o, "filename", path)?,
            })
        }
        "multi" => {
            let semantics = match o.get("partSemantics").and_then(Json::as_str) {
                Some("chooseOne") => PartSemantics::ChooseOne,
                Some("singleUnit") => PartSemantics::SingleUnit,
                Some("processAll") => PartSemantics::ProcessAll,
                _ => {
                    return Err(err(
                        &format!("{path}.partSemantics"),
                        "expected chooseOne, singleUnit or processAll",
                    ));
                }
            };
            let list = o
                .get("parts")
                .and_then(Json::as_array)
                .ok_or_else(|| err(&format!("{path}.parts"), "expected an array of parts"))?;
            let parts = list
                .iter()
                .enumerate()
                .map(|(i, p)| part_from_json(p, &format!("{path}.parts[{i}]")))
                .collect::<Result<_, _>>()?;
            PartBody::Multi { semantics, parts }
        }
        other => {
            return Err(err(
                &format!("{path}.cardinality"),
                format!("expected nullpart, single, external or multi, found {other:?}"),
            ));
        }
    };
    Ok(NestedPart {
        disposition,
        language,
        body,
    })
}

/// A generic CBOR item from its JSON form.
pub fn value_from_json(j: &Json, path: &str) -> Result<Value, JsonError> {
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                Value::integer(i)
            } else {
                Value::Float(n.as_f64().ok_or_else(|| err(path, "number out of range"))?)
            }
        }
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| value_from_json(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(o) => {
            let only = |k: &str| o.len() == 1 && o.contains_key(k);
            if only("bytes") {
                Value::Bytes(hex_field(o, "bytes", path)?.unwrap_or_default())
            } else if only("negative") {
                Value::Negative(
                    o["negative"]
                        .as_u64()
                        .ok_or_else(|| err(path, "negative: expected u64"))?,
                )
            } else if only("simple") {
                match o["simple"].as_u64().and_then(|n| u8::try_from(n).ok()) {
                    Some(20) => Value::Bool(false),
                    Some(21) => Value::Bool(true),
                    Some(22) => Value::Null,
                    Some(23) => Value::Undefined,
                    Some(n) if !(24..32).contains(&n) => Value::Simple(n),
                    _ => return Err(err(path, "simple: expected 0..=23 or 32..=255")),
                }
            } else if only("float") {
                Value::Float(match &o["float"] {
                    Json::String(s) if s == "NaN" => f64::NAN,
                    Json::String(s) if s == "Infinity" => f64::INFINITY,
                    Json::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
                    v => v
                        .as_f64()
                        .ok_or_else(|| err(path, "float: expected a number"))?,
                })
            } else if only("map") {
                let entries = o["map"]
                    .as_array()
                    .ok_or_else(|| err(path, "map: expected [[k, v], …]"))?;
                let mut out = Vec::with_capacity(entries.len());
                for (i, e) in entries.iter().enumerate() {
                    let p = format!("{path}.map[{i}]");
                    match e.as_array().map(Vec::as_slice) {
                        Some([k, v]) => {
                            out.push((value_from_json(k, &p)?, value_from_json(v, &p)?))
                        }
                        _ => return Err(err(&p, "expected [key, value]")),
                    }
                }
                Value::Map(out)
            } else if o.len() == 2 && o.contains_key("tag") && o.contains_key("value") {
                let t = o["tag"]
                    .as_u64()
                    .ok_or_else(|| err(path, "tag: expected u64"))?;
                Value::Tag(
                    t,
                    Box::new(value_from_json(&o["value"], &format!("{path}.value"))?),
                )
            } else {
                return Err(err(
                    path,
                    "objects are {bytes}, {map}, {tag, value}, {simple}, {float} or {negative}",
                ));
            }
        }
    })
}

// ---- diagnostic notation -------------------------------------------------------------------

impl MimiContent {
    /// The message as a generic CBOR item (its encoding equals [`MimiContent::encode`]).
    pub fn to_value(&self) -> Value {
        let id = |m: Option<MessageId>| m.map_or(Value::Null, |m| Value::Bytes(m.0.to_vec()));
        Value::Array(vec![
            Value::Bytes(self.salt.to_vec()),
            id(self.replaces),
            Value::Bytes(self.topic_id.clone()),
            self.expires.map_or(Value::Null, |e| {
                Value::Array(vec![
                    Value::Bool(e.relative),
                    Value::Unsigned(u64::from(e.time)),
                ])
            }),
            id(self.in_reply_to),
            Value::Map(
                self.extensions
                    .entries
                    .iter()
                    .map(|(k, v)| (k.to_value(), v.clone()))
                    .collect(),
            ),
            part_to_value(&self.nested_part),
        ])
    }

    /// CBOR diagnostic notation (RFC 8949 §8), as the draft prints its examples.
    pub fn to_diagnostic(&self) -> String {
        self.to_value().to_string()
    }
}

fn part_to_value(p: &NestedPart) -> Value {
    let text = |s: &str| Value::Text(s.to_owned());
    let uint = Value::Unsigned;
    let bytes = |b: &[u8]| Value::Bytes(b.to_vec());
    let mut items = vec![uint(u64::from(p.disposition.0)), text(&p.language)];
    match &p.body {
        PartBody::Null => items.push(uint(0)),
        PartBody::Single {
            content_type,
            content,
        } => {
            items.extend([uint(1), text(content_type), bytes(content)]);
        }
        PartBody::External(x) => items.extend([
            uint(2),
            text(&x.content_type),
            text(&x.url),
            uint(u64::from(x.expires)),
            uint(x.size),
            uint(u64::from(x.enc_alg)),
            bytes(&x.key),
            bytes(&x.nonce),
            bytes(&x.aad),
            uint(u64::from(x.hash_alg)),
            bytes(&x.content_hash),
            text(&x.description),
            text(&x.filename),
        ]),
        PartBody::Multi { semantics, parts } => items.extend([
            uint(3),
            uint(u64::from(semantics.code())),
            Value::Array(parts.iter().map(part_to_value).collect()),
        ]),
    }
    Value::Array(items)
}
