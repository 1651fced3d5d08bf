//! Reading MIMI content and status reports from files a person hands us, and describing them:
//! every field, the message ID (content-08 §3.3) with where its URIs came from, the text a
//! person would see, and the CBOR diagnostic notation.

use mimi_content::json;
use mimi_content::status::MessageStatusReport;
use mimi_content::{DecodeError, MessageId, MimiContent, NestedPart, PartBody};
use serde_json::{Value as Json, json};
use std::fmt::Write as _;

/// How input bytes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputForm {
    /// Hex text if the input is nothing but hex digits and white space, raw bytes otherwise.
    /// (MIMI content starts with 0x87, which is not a hex digit, so this never misreads it.)
    #[default]
    Auto,
    /// Raw CBOR.
    Binary,
    /// Hex text (white space ignored).
    Hex,
}

/// Input that is not even hex (the person's fault, not the content's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Hex was requested but the text is not hex.
    #[error("the input is not hex: {0}")]
    NotHex(String),
    /// Nothing to read.
    #[error("the input is empty")]
    Empty,
}

/// Turns the input as read from a file or standard input into the bytes to decode.
pub fn read_input(raw: &[u8], form: InputForm) -> Result<Vec<u8>, InputError> {
    if raw.is_empty() {
        return Err(InputError::Empty);
    }
    let looks_hex = raw
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    let hex_text = match form {
        InputForm::Binary => return Ok(raw.to_vec()),
        InputForm::Hex => true,
        InputForm::Auto => looks_hex,
    };
    if !hex_text {
        return Ok(raw.to_vec());
    }
    let digits: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.is_empty() {
        return Err(InputError::Empty);
    }
    hex::decode(&digits).map_err(|e| InputError::NotHex(e.to_string()))
}

/// Where the URIs that feed the message ID came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdInputs {
    /// Both known: the sender and room URI, each marked by its source.
    Known {
        /// The sender URI and whether it came from extension key 1 (else: the caller).
        sender: (String, bool),
        /// The room URI and whether it came from extension key 2 (else: the caller).
        room: (String, bool),
    },
    /// The ID cannot be computed: the message names no sender or room and none was given.
    Missing(String),
}

/// A decoded MIMI content message and what can be said about it.
#[derive(Clone, Debug)]
pub struct ContentInspection {
    /// Size of the encoding.
    pub size: usize,
    /// The message.
    pub content: MimiContent,
    /// Its ID, when the URIs are known.
    pub message_id: Option<MessageId>,
    /// Where the ID's URIs came from.
    pub id_inputs: IdInputs,
}

/// Decodes `bytes` strictly as MIMI content and computes its ID. `sender`/`room` are used when
/// the message does not carry extension keys 1 and 2 (`CONTENT-3.3-message-id`).
pub fn inspect_content(
    bytes: &[u8],
    sender: Option<&str>,
    room: Option<&str>,
) -> Result<ContentInspection, DecodeError> {
    let content = MimiContent::decode(bytes)?;
    let ext_sender = content.extensions.sender_uri().map(str::to_owned);
    let ext_room = content.extensions.room_uri().map(str::to_owned);
    let sender = ext_sender
        .clone()
        .map(|s| (s, true))
        .or_else(|| sender.map(|s| (s.to_owned(), false)));
    let room = ext_room
        .clone()
        .map(|s| (s, true))
        .or_else(|| room.map(|s| (s.to_owned(), false)));
    let (message_id, id_inputs) = match (sender, room) {
        (Some(sender), Some(room)) => {
            match content.message_id_for(bytes, Some(&sender.0), Some(&room.0)) {
                Ok(id) => (Some(id), IdInputs::Known { sender, room }),
                Err(e) => (None, IdInputs::Missing(e.to_string())),
            }
        }
        (s, r) => {
            let mut missing = Vec::new();
            if s.is_none() {
                missing.push("sender URI (extension key 1, or --sender)");
            }
            if r.is_none() {
                missing.push("room URI (extension key 2, or --room)");
            }
            (
                None,
                IdInputs::Missing(format!("no {} to compute it from", missing.join(" and "))),
            )
        }
    };
    Ok(ContentInspection {
        size: bytes.len(),
        content,
        message_id,
        id_inputs,
    })
}

impl ContentInspection {
    /// The machine-readable form: the lossless JSON of the message (accepted back by
    /// `mimi content encode`) plus the ID, text and diagnostic notation.
    pub fn to_json(&self) -> Json {
        let (id_sender, id_room) = match &self.id_inputs {
            IdInputs::Known { sender, room } => (
                json!({"uri": sender.0, "from": source(sender.1)}),
                json!({"uri": room.0, "from": source(room.1)}),
            ),
            IdInputs::Missing(_) => (Json::Null, Json::Null),
        };
        json!({
            "size": self.size,
            "messageId": self.message_id.map(|m| m.to_hex()),
            "messageIdInputs": {"sender": id_sender, "room": id_room},
            "text": self.content.nested_part.display_text(),
            "content": json::to_json(&self.content),
            "diagnostic": self.content.to_diagnostic(),
        })
    }

    /// The human-readable form.
    pub fn render(&self) -> String {
        let c = &self.content;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "MIMI content (draft-ietf-mimi-content-08), {} bytes",
            self.size
        );
        match (&self.message_id, &self.id_inputs) {
            (Some(id), IdInputs::Known { sender, room }) => {
                let _ = writeln!(out, "  message ID  {}", id.to_hex());
                let _ = writeln!(out, "    sender    {} ({})", sender.0, source(sender.1));
                let _ = writeln!(out, "    room      {} ({})", room.0, source(room.1));
            }
            (_, IdInputs::Missing(why)) => {
                let _ = writeln!(out, "  message ID  unknown: {why}");
            }
            (None, IdInputs::Known { .. }) => {
                let _ = writeln!(out, "  message ID  unknown");
            }
        }
        let _ = writeln!(out, "  salt        {}", hex::encode(c.salt));
        let opt_id = |m: &Option<MessageId>| m.map_or("-".to_owned(), |m| m.to_hex());
        let _ = writeln!(out, "  replaces    {}", opt_id(&c.replaces));
        let topic = if c.topic_id.is_empty() {
            "-".to_owned()
        } else {
            hex::encode(&c.topic_id)
        };
        let _ = writeln!(out, "  topicId     {topic}");
        let expires = c.expires.map_or("-".to_owned(), |e| {
            if e.relative {
                format!("{} s after the hub accepts it", e.time)
            } else {
                format!("at UNIX time {}", e.time)
            }
        });
        let _ = writeln!(out, "  expires     {expires}");
        let _ = writeln!(out, "  inReplyTo   {}", opt_id(&c.in_reply_to));
        if c.extensions.is_empty() {
            let _ = writeln!(out, "  extensions  -");
        } else {
            let _ = writeln!(out, "  extensions");
            for (k, v) in &c.extensions.entries {
                let key = match k {
                    mimi_content::ExtensionKey::Int(i) => i.to_string(),
                    mimi_content::ExtensionKey::Text(t) => format!("{t:?}"),
                };
                let _ = writeln!(out, "    {key} = {v}");
            }
        }
        let _ = writeln!(out, "  body");
        render_part(&mut out, &c.nested_part, 2);
        if let Some(text) = c.nested_part.display_text() {
            let _ = writeln!(out, "  shown as    {text:?}");
        }
        out
    }
}

fn source(from_extension: bool) -> &'static str {
    if from_extension {
        "from the message's extensions"
    } else {
        "given on the command line"
    }
}

fn render_part(out: &mut String, p: &NestedPart, indent: usize) {
    let pad = " ".repeat(indent * 2);
    let disposition = p
        .disposition
        .name()
        .map_or_else(|| format!("disposition {}", p.disposition.0), str::to_owned);
    let language = if p.language.is_empty() {
        String::new()
    } else {
        format!(", language {}", p.language)
    };
    match &p.body {
        PartBody::Null => {
            let _ = writeln!(out, "{pad}null part ({disposition}{language})");
        }
        PartBody::Single {
            content_type,
            content,
        } => {
            let _ = writeln!(
                out,
                "{pad}single part {content_type} ({disposition}{language}), {} bytes",
                content.len()
            );
            match std::str::from_utf8(content) {
                Ok(s) if content_type.starts_with("text/") => {
                    let _ = writeln!(out, "{pad}  {s:?}");
                }
                _ => {
                    let _ = writeln!(out, "{pad}  {}", hex::encode(content));
                }
            }
        }
        PartBody::External(e) => {
            let _ = writeln!(
                out,
                "{pad}external part {} ({disposition}{language})",
                if e.content_type.is_empty() {
                    "(no type)"
                } else {
                    &e.content_type
                }
            );
            let _ = writeln!(out, "{pad}  url         {}", e.url);
            let size = if e.size == 0 {
                "unknown".to_owned()
            } else {
                e.size.to_string()
            };
            let _ = writeln!(out, "{pad}  size        {size}");
            let expires = if e.expires == 0 {
                "never".to_owned()
            } else {
                format!("at UNIX time {}", e.expires)
            };
            let _ = writeln!(out, "{pad}  expires     {expires}");
            if e.enc_alg == 0 {
                let _ = writeln!(out, "{pad}  encryption  none");
            } else {
                let _ = writeln!(
                    out,
                    "{pad}  encryption  AEAD {} key {} nonce {}{}",
                    e.enc_alg,
                    hex::encode(&e.key),
                    hex::encode(&e.nonce),
                    if e.aad.is_empty() {
                        String::new()
                    } else {
                        format!(" aad {}", hex::encode(&e.aad))
                    }
                );
            }
            if e.hash_alg != 0 {
                let _ = writeln!(
                    out,
                    "{pad}  hash        alg {} {}",
                    e.hash_alg,
                    hex::encode(&e.content_hash)
                );
            }
            if !e.description.is_empty() {
                let _ = writeln!(out, "{pad}  description {:?}", e.description);
            }
            if !e.filename.is_empty() {
                let _ = writeln!(out, "{pad}  filename    {:?}", e.filename);
            }
        }
        PartBody::Multi { semantics, parts } => {
            let _ = writeln!(
                out,
                "{pad}multipart {semantics:?} ({disposition}{language}), {} parts",
                parts.len()
            );
            for part in parts {
                render_part(out, part, indent + 1);
            }
        }
    }
}

/// A decoded message status report (draft-mahy-mimi-message-status-01).
pub fn inspect_status(bytes: &[u8]) -> Result<MessageStatusReport, DecodeError> {
    MessageStatusReport::decode(bytes)
}

/// JSON form of a status report.
pub fn status_to_json(r: &MessageStatusReport) -> Json {
    Json::Array(
        r.statuses
            .iter()
            .map(|s| {
                json!({
                    "messageId": s.message_id.to_hex(),
                    "status": s.status.name().map_or(Json::from(s.status.0), Json::from),
                })
            })
            .collect(),
    )
}

/// Human form of a status report.
pub fn render_status(r: &MessageStatusReport) -> String {
    let mut out = format!(
        "MIMI message status report (draft-mahy-mimi-message-status-01), {} entries\n",
        r.statuses.len()
    );
    for s in &r.statuses {
        let _ = writeln!(out, "  {}  {:?}", s.message_id.to_hex(), s.status);
    }
    out
}

/// Encodes the JSON form (as `to_json` writes it) into CBOR, validating it on the way.
pub fn encode_json(text: &str) -> Result<Vec<u8>, EncodeJsonError> {
    let j: Json =
        serde_json::from_str(text).map_err(|e| EncodeJsonError::NotJson(e.to_string()))?;
    // Accept both the bare content object and the whole output of `inspect --json`.
    let content_json = match j.get("content") {
        Some(inner) if j.get("salt").is_none() => inner,
        _ => &j,
    };
    let content = json::from_json(content_json)?;
    Ok(content.encode()?)
}

/// Why JSON could not be encoded as MIMI content.
#[derive(Debug, thiserror::Error)]
pub enum EncodeJsonError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not the MIMI content JSON form.
    #[error("not MIMI content JSON: {0}")]
    NotContent(#[from] json::JsonError),
    /// A valid form whose value the format cannot carry (a limit, a rule of the draft).
    #[error("cannot be encoded: {0}")]
    Encode(#[from] mimi_content::EncodeError),
}
