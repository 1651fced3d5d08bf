//! Builders for what users do (content-08 §5): text, Markdown, replies, reactions, unlikes,
//! edits, deletions, expiring messages, mentions, attachments, conferencing links, multipart.

use crate::cbor::Value;
use crate::model::{
    Disposition, Expiration, ExtensionKey, Extensions, ExternalPart, MessageId, MimiContent,
    NestedPart, PartBody, PartSemantics,
};

/// `text/plain;charset=utf-8`
pub const TEXT_PLAIN: &str = "text/plain;charset=utf-8";
/// `text/markdown;variant=GFM-MIMI`
pub const TEXT_MARKDOWN: &str = "text/markdown;variant=GFM-MIMI";
/// `text/html;charset=utf-8`
pub const TEXT_HTML: &str = "text/html;charset=utf-8";

/// A fresh random salt (content-08 §4.1: cryptographically random, per message).
pub fn random_salt() -> Result<[u8; 16], getrandom::Error> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)?;
    Ok(salt)
}

impl NestedPart {
    /// A single part.
    pub fn single(
        disposition: Disposition,
        content_type: &str,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::Single {
                content_type: content_type.to_owned(),
                content: content.into(),
            },
        }
    }

    /// Plain text, rendered.
    pub fn text(text: &str) -> Self {
        Self::single(Disposition::RENDER, TEXT_PLAIN, text.as_bytes())
    }

    /// GFM-MIMI Markdown, rendered. HTML tags are neutralised as the variant requires
    /// (`CONTENT-7.1.1-gfm-no-html`): see [`gfm_mimi_escape`].
    pub fn markdown(markdown: &str) -> Self {
        Self::single(
            Disposition::RENDER,
            TEXT_MARKDOWN,
            gfm_mimi_escape(markdown).into_bytes(),
        )
    }

    /// HTML, rendered.
    pub fn html(html: &str) -> Self {
        Self::single(Disposition::RENDER, TEXT_HTML, html.as_bytes())
    }

    /// One reaction: a single emoji (or other short text) with disposition `reaction`.
    pub fn reaction(emoji: &str) -> Self {
        Self::single(Disposition::REACTION, TEXT_PLAIN, emoji.as_bytes())
    }

    /// Several reactions in one message: a `processAll` multipart of reaction parts
    /// (content-08 Appendix B.2; never several emojis in one text part).
    pub fn multi_reaction(emojis: &[&str]) -> Self {
        match emojis {
            [one] => Self::reaction(one),
            _ => Self::multi(
                Disposition::REACTION,
                PartSemantics::ProcessAll,
                emojis.iter().map(|e| Self::reaction(e)).collect(),
            ),
        }
    }

    /// A multipart.
    pub fn multi(
        disposition: Disposition,
        semantics: PartSemantics,
        parts: Vec<NestedPart>,
    ) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::Multi { semantics, parts },
        }
    }

    /// Alternatives of the same content (`chooseOne`), most preferred first.
    pub fn alternatives(parts: Vec<NestedPart>) -> Self {
        Self::multi(Disposition::RENDER, PartSemantics::ChooseOne, parts)
    }

    /// An external part.
    pub fn external(disposition: Disposition, part: ExternalPart) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::External(part),
        }
    }

    /// A conferencing link (content-08 §5.10): an external part with disposition `session`.
    pub fn conference(url: &str, description: &str) -> Self {
        Self::external(
            Disposition::SESSION,
            ExternalPart {
                url: url.to_owned(),
                description: description.to_owned(),
                ..Default::default()
            },
        )
    }

    /// A delivery/read receipt body (draft-mahy-mimi-message-status-01): the report as a
    /// single part of type `application/mimi-message-status`.
    pub fn status_report(report: &crate::status::MessageStatusReport) -> Self {
        Self::single(
            Disposition::UNSPECIFIED,
            crate::status::MEDIA_TYPE,
            report.encode(),
        )
    }

    /// Sets the language ("" or comma-separated RFC 5646 tags).
    pub fn with_language(mut self, language: &str) -> Self {
        self.language = language.to_owned();
        self
    }
}

/// A Markdown mention (content-08 §5.4): a link whose target is the user's URI.
pub fn mention_markdown(display_name: &str, user_uri: &str) -> String {
    let name = display_name.replace(['[', ']'], "");
    format!("[@{name}]({user_uri})")
}

/// Replaces the `<` that opens an HTML tag, comment or declaration with `&lt;`, as GFM-MIMI
/// requires of senders (content-08 §7.1.1, "No HTML"). Other `<` (as in `a < b`) are left alone.
pub fn gfm_mimi_escape(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut chars = markdown.chars().peekable();
    while let Some(c) = chars.next() {
        let opens_tag = c == '<'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'));
        if opens_tag {
            out.push_str("&lt;");
        } else {
            out.push(c);
        }
    }
    out
}

/// Builds a [`MimiContent`]. The salt is required: use [`random_salt`] for real messages, a
/// fixed one for test vectors.
#[derive(Clone, Debug)]
pub struct ContentBuilder {
    content: MimiContent,
}

impl ContentBuilder {
    /// A message with this salt and body, and nothing else.
    pub fn new(salt: [u8; 16], body: NestedPart) -> Self {
        Self {
            content: MimiContent {
                salt,
                replaces: None,
                topic_id: Vec::new(),
                expires: None,
                in_reply_to: None,
                extensions: Extensions::default(),
                nested_part: body,
            },
        }
    }

    /// Names the sender and room in extension keys 1 and 2 (used for the message ID).
    pub fn sender_and_room(mut self, sender_uri: &str, room_uri: &str) -> Self {
        self.content
            .extensions
            .set(ExtensionKey::SENDER_URI, Value::Text(sender_uri.to_owned()));
        self.content
            .extensions
            .set(ExtensionKey::ROOM_URI, Value::Text(room_uri.to_owned()));
        self
    }

    /// A reply to (or reaction to) `target` (content-08 §5.2, §5.3).
    pub fn in_reply_to(mut self, target: MessageId) -> Self {
        self.content.in_reply_to = Some(target);
        self
    }

    /// Replaces the first version of a message (edit, delete, unlike; content-08 §5.5–5.7).
    pub fn replaces(mut self, target: MessageId) -> Self {
        self.content.replaces = Some(target);
        self
    }

    /// A topic.
    pub fn topic(mut self, topic_id: impl Into<Vec<u8>>) -> Self {
        self.content.topic_id = topic_id.into();
        self
    }

    /// Expires at an absolute UNIX time in seconds.
    pub fn expires_at(mut self, unix_seconds: u32) -> Self {
        self.content.expires = Some(Expiration {
            relative: false,
            time: unix_seconds,
        });
        self
    }

    /// Expires this many seconds after being read.
    pub fn expires_after_read(mut self, seconds: u32) -> Self {
        self.content.expires = Some(Expiration {
            relative: true,
            time: seconds,
        });
        self
    }

    /// Sets any extension.
    pub fn extension(mut self, key: ExtensionKey, value: Value) -> Self {
        self.content.extensions.set(key, value);
        self
    }

    /// The message.
    pub fn build(self) -> MimiContent {
        self.content
    }
}

impl MimiContent {
    /// A plain-text message.
    pub fn text(salt: [u8; 16], text: &str) -> Self {
        ContentBuilder::new(salt, NestedPart::text(text)).build()
    }

    /// A GFM-MIMI Markdown message.
    pub fn markdown(salt: [u8; 16], markdown: &str) -> Self {
        ContentBuilder::new(salt, NestedPart::markdown(markdown)).build()
    }

    /// A reply to `target`.
    pub fn reply(salt: [u8; 16], target: MessageId, body: NestedPart) -> Self {
        ContentBuilder::new(salt, body).in_reply_to(target).build()
    }

    /// A reaction to `target` (content-08 §5.3).
    pub fn reaction(salt: [u8; 16], target: MessageId, emoji: &str) -> Self {
        ContentBuilder::new(salt, NestedPart::reaction(emoji))
            .in_reply_to(target)
            .build()
    }

    /// Retracts one's own reaction (content-08 §5.7): a deletion of the reaction message, so
    /// the NullPart keeps the disposition `reaction` and `inReplyTo` keeps the reacted-to message.
    pub fn unlike(salt: [u8; 16], reaction_id: MessageId, reaction: &MimiContent) -> Self {
        Self::delete(salt, reaction_id, reaction)
    }

    /// Edits one's own message (content-08 §5.5). `target` is the message being edited and
    /// `target_id` its ID; `replaces` names the *first* version (the target's own `replaces`
    /// when the target is itself an edit), and `inReplyTo`, `topicId` and the extensions stay
    /// as in the target: only the body changes.
    pub fn edit(
        salt: [u8; 16],
        target_id: MessageId,
        target: &MimiContent,
        body: NestedPart,
    ) -> Self {
        MimiContent {
            salt,
            replaces: Some(target.replaces.unwrap_or(target_id)),
            topic_id: target.topic_id.clone(),
            expires: target.expires,
            in_reply_to: target.in_reply_to,
            extensions: target.extensions.clone(),
            nested_part: body,
        }
    }

    /// Deletes one's own message (content-08 §5.6): an edit whose body is a NullPart.
    pub fn delete(salt: [u8; 16], target_id: MessageId, target: &MimiContent) -> Self {
        Self::edit(
            salt,
            target_id,
            target,
            NestedPart::null(target.nested_part.disposition),
        )
    }
}
