//! Reading bodies: part indexes (content-08 §4.4), the text a person sees, mentions.

use crate::build::{TEXT_HTML, TEXT_MARKDOWN, TEXT_PLAIN};
use crate::model::{Disposition, NestedPart, PartBody, PartSemantics};

impl NestedPart {
    /// Every part in depth-first order; the position in the list is its `partIndex`
    /// (content-08 §4.4: zero-based, the root is 0).
    pub fn indexed(&self) -> Vec<&NestedPart> {
        let mut out = Vec::new();
        fn walk<'a>(p: &'a NestedPart, out: &mut Vec<&'a NestedPart>) {
            out.push(p);
            if let PartBody::Multi { parts, .. } = &p.body {
                parts.iter().for_each(|c| walk(c, out));
            }
        }
        walk(self, &mut out);
        out
    }

    /// The part with `partIndex` `index` (as referenced by `cid:<index>@local.invalid`).
    pub fn part(&self, index: usize) -> Option<&NestedPart> {
        self.indexed().get(index).copied()
    }

    /// The text of a single text part (`text/*` with UTF-8 content).
    pub fn as_text(&self) -> Option<&str> {
        match &self.body {
            PartBody::Single {
                content_type,
                content,
            } if is_text(content_type) => std::str::from_utf8(content).ok(),
            _ => None,
        }
    }

    /// What a person sees, as text: for `chooseOne` the first alternative we can show
    /// (Markdown, then plain text, then HTML as text, then anything), for the others every
    /// part in order; external parts as a one-line description. `None` for a NullPart.
    pub fn display_text(&self) -> Option<String> {
        match &self.body {
            PartBody::Null => None,
            PartBody::Single {
                content_type,
                content,
            } => Some(match std::str::from_utf8(content) {
                Ok(t) if is_text(content_type) => t.to_owned(),
                _ => format!("[{content_type}, {} octets]", content.len()),
            }),
            PartBody::External(x) => {
                let name = if x.filename.is_empty() {
                    &x.url
                } else {
                    &x.filename
                };
                let kind = if self.disposition == Disposition::SESSION {
                    "session"
                } else {
                    "attachment"
                };
                let mut s = format!("[{kind}: {name}");
                if !x.description.is_empty() {
                    s.push_str(&format!(" \u{2014} {}", x.description));
                }
                if x.size > 0 {
                    s.push_str(&format!(", {} octets", x.size));
                }
                s.push(']');
                Some(s)
            }
            PartBody::Multi {
                semantics: PartSemantics::ChooseOne,
                parts,
            } => {
                let rank = |p: &NestedPart| match p.content_type().map(base_type) {
                    Some(t) if t == base_type(TEXT_MARKDOWN) => 0,
                    Some(t) if t == base_type(TEXT_PLAIN) => 1,
                    Some(t) if t == base_type(TEXT_HTML) => 2,
                    None => 3,
                    Some(_) => 4,
                };
                parts
                    .iter()
                    .min_by_key(|p| rank(p))
                    .and_then(NestedPart::display_text)
            }
            PartBody::Multi { parts, .. } => {
                let texts: Vec<String> =
                    parts.iter().filter_map(NestedPart::display_text).collect();
                (!texts.is_empty()).then(|| {
                    texts.join(if self.disposition == Disposition::REACTION {
                        ""
                    } else {
                        "\n"
                    })
                })
            }
        }
    }

    /// The reactions this body carries: one per reaction part (a single reaction part, or a
    /// `processAll` multipart of them; content-08 §5.3, Appendix B.2).
    pub fn reactions(&self) -> Vec<String> {
        if self.disposition != Disposition::REACTION {
            return Vec::new();
        }
        match &self.body {
            PartBody::Single { .. } => self.display_text().into_iter().collect(),
            PartBody::Multi { parts, .. } => parts.iter().flat_map(NestedPart::reactions).collect(),
            _ => Vec::new(),
        }
    }

    /// User URIs mentioned in text parts: Markdown links `[..](mimi://…/u/…)` and HTML
    /// `href="mimi://…"` (content-08 §5.4).
    pub fn mentions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.indexed() {
            if let Some(text) = p.as_text() {
                for uri in link_targets(text) {
                    if uri.starts_with("mimi://") && !out.contains(&uri) {
                        out.push(uri);
                    }
                }
            }
        }
        out
    }
}

fn base_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or(ct).trim()
}

fn is_text(content_type: &str) -> bool {
    base_type(content_type).starts_with("text/")
}

/// Targets of Markdown links `](target)` and HTML `href="target"`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [("](", ')'), ("href=\"", '"')] {
        let mut rest = text;
        while let Some(i) = rest.find(open) {
            rest = &rest[i + open.len()..];
            if let Some(j) = rest.find(close) {
                out.push(rest[..j].to_owned());
                rest = &rest[j..];
            }
        }
    }
    out
}
