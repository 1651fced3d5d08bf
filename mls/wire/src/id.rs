//! MIMI identifiers (protocol-06 §3, mimi-facts §10): `mimi://<provider>[/<type>/<id>...]`.
//!
//! The drafts call the syntax "notional" and give no grammar, normalisation or comparison rule,
//! so ours is written down in `spec-notes/protocol.md` (`WIRE-id-*`):
//!
//! - scheme `mimi` (any case), then `://`, then the provider: a DNS name of letter-digit-hyphen
//!   labels (no port, no user info, no IP literal), lower-cased;
//! - then nothing (a provider), or `/<type>/<segment>[/<segment>]` with type `u` (user),
//!   `d` (client: `/d/<client>` or `/d/<user>/<client>`), `r` (room), `g` (MLS group),
//!   `p` (pseudonym), `t` (team); segments are non-empty RFC 3986 `pchar`s;
//! - no query, no fragment, at most 2048 octets;
//! - normal form: lower-case scheme and provider, `%XX` in upper case, and `%XX` of an
//!   unreserved character decoded. Two identifiers are the same iff their normal forms are
//!   byte-identical.
//!
//! In request paths (`/notify/{roomId}`, ...) an identifier is written as its whole normal form
//! with every octet outside RFC 3986 `unreserved` percent-encoded ([`path_encode`]).

use std::fmt;
use std::str::FromStr;

/// Longest identifier.
pub const MAX_URI: usize = 2048;

/// Why a string is not a MIMI identifier of the wanted kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a {wanted}: {problem}")]
pub struct IdError {
    /// The input (cut to 120 characters).
    pub input: String,
    /// What was wanted ("MIMI user URI", ...).
    pub wanted: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// The type of a MIMI identifier: the first path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `mimi://a.example`
    Provider,
    /// `/u/`
    User,
    /// `/d/`
    Client,
    /// `/r/`
    Room,
    /// `/g/`
    Group,
    /// `/p/`
    Pseudonym,
    /// `/t/`
    Team,
}

impl Kind {
    fn from_letter(s: &str) -> Option<Self> {
        Some(match s {
            "u" => Kind::User,
            "d" => Kind::Client,
            "r" => Kind::Room,
            "g" => Kind::Group,
            "p" => Kind::Pseudonym,
            "t" => Kind::Team,
            _ => return None,
        })
    }

    /// The type letter (`u`, `d`, ...; empty for a provider).
    pub fn letter(self) -> &'static str {
        match self {
            Kind::Provider => "",
            Kind::User => "u",
            Kind::Client => "d",
            Kind::Room => "r",
            Kind::Group => "g",
            Kind::Pseudonym => "p",
            Kind::Team => "t",
        }
    }

    fn wanted(self) -> &'static str {
        match self {
            Kind::Provider => "MIMI provider URI (mimi://<domain>)",
            Kind::User => "MIMI user URI (mimi://<domain>/u/<user>)",
            Kind::Client => "MIMI client URI (mimi://<domain>/d/[<user>/]<client>)",
            Kind::Room => "MIMI room URI (mimi://<domain>/r/<room>)",
            Kind::Group => "MIMI group URI (mimi://<domain>/g/<group>)",
            Kind::Pseudonym => "MIMI pseudonym URI (mimi://<domain>/p/<id>)",
            Kind::Team => "MIMI team URI (mimi://<domain>/t/<id>)",
        }
    }
}

/// A provider's domain, lower case (`WIRE-id-provider`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(String);

impl ProviderId {
    /// Parses a bare domain (`a.example`), as in certificates, `From: mimi@<domain>` and
    /// configuration.
    pub fn parse(domain: &str) -> Result<Self, IdError> {
        check_domain(domain)
            .map(|()| Self(domain.to_ascii_lowercase()))
            .map_err(|problem| {
                err(
                    domain,
                    "provider domain (a DNS name such as a.example)",
                    problem,
                )
            })
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `mimi://<domain>`.
    pub fn uri(&self) -> MimiUri {
        MimiUri {
            text: format!("mimi://{}", self.0),
            provider_len: self.0.len(),
            kind: Kind::Provider,
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any MIMI identifier, in normal form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MimiUri {
    text: String,
    provider_len: usize,
    kind: Kind,
}

fn err(input: &str, wanted: &'static str, problem: impl Into<String>) -> IdError {
    IdError {
        input: input.chars().take(120).collect(),
        wanted,
        problem: problem.into(),
    }
}

fn check_domain(d: &str) -> Result<(), String> {
    if d.is_empty() {
        return Err("the provider domain is empty".into());
    }
    if d.len() > 253 {
        return Err("the provider domain is longer than 253 octets".into());
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err("the provider domain has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 octets"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "the label {label:?} has a character other than a letter, digit or hyphen"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with a hyphen"));
        }
    }
    // An all-numeric top-level label is an IPv4 literal, not a DNS name (RFC 3696 §2).
    if d.rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the provider is an IP address; it must be a DNS name".into());
    }
    Ok(())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_pchar_literal(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Normalises one path segment; `Err` says what is wrong.
fn normalise_segment(seg: &str, out: &mut String) -> Result<(), String> {
    if seg.is_empty() {
        return Err("an empty path segment".into());
    }
    let b = seg.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) else {
                return Err("a '%' not followed by two hex digits".into());
            };
            let v = h * 16 + l;
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                out.push_str(&format!("%{v:02X}"));
            }
            i += 3;
        } else if is_pchar_literal(c) {
            out.push(c as char);
            i += 1;
        } else {
            return Err(format!(
                "the character {:?} must be percent-encoded",
                seg[i..].chars().next().unwrap_or('?')
            ));
        }
    }
    Ok(())
}

impl MimiUri {
    /// Parses any MIMI identifier into its normal form.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        Self::parse_as(input, None)
    }

    fn parse_as(input: &str, want: Option<Kind>) -> Result<Self, IdError> {
        let wanted = want.map_or("MIMI URI (mimi://<domain>[/<type>/<id>])", Kind::wanted);
        let e = |p: String| err(input, wanted, p);
        if input.len() > MAX_URI {
            return Err(e(format!("longer than {MAX_URI} octets")));
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(e("no \"mimi://\" at the start".into()));
        };
        if !scheme.eq_ignore_ascii_case("mimi") {
            return Err(e(format!("the scheme is {scheme:?}, not \"mimi\"")));
        }
        if rest.contains(['?', '#']) {
            return Err(e("MIMI identifiers have no query or fragment".into()));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(e(
                "the authority has user info; it must be only the provider domain".into(),
            ));
        }
        if authority.contains(':') {
            return Err(e(
                "the authority has a port; it must be only the provider domain".into(),
            ));
        }
        check_domain(authority).map_err(e)?;
        let provider = authority.to_ascii_lowercase();
        let mut text = format!("mimi://{provider}");
        let kind = if path.is_empty() || path == "/" {
            Kind::Provider
        } else {
            let mut segs = path[1..].split('/');
            let letter = segs.next().unwrap_or_default();
            let kind = Kind::from_letter(letter).ok_or_else(|| {
                e(format!(
                    "the type {letter:?} is none of u (user), d (client), r (room), g (group), p (pseudonym), t (team)"
                ))
            })?;
            let segs: Vec<&str> = segs.collect();
            let allowed = if kind == Kind::Client { 1..=2 } else { 1..=1 };
            if !allowed.contains(&segs.len()) {
                return Err(e(format!(
                    "a /{letter}/ identifier has {} path segment(s) after the type, expected {}",
                    segs.len(),
                    if kind == Kind::Client { "1 or 2" } else { "1" }
                )));
            }
            text.push('/');
            text.push_str(letter);
            for s in segs {
                text.push('/');
                normalise_segment(s, &mut text).map_err(e)?;
            }
            kind
        };
        if let Some(w) = want
            && w != kind
        {
            return Err(e(format!("it is a {}", kind_name(kind))));
        }
        Ok(Self {
            provider_len: provider.len(),
            text,
            kind,
        })
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The provider's domain (`WIRE-id-provider`).
    pub fn provider(&self) -> ProviderId {
        ProviderId(self.text[7..7 + self.provider_len].to_owned())
    }

    /// The path segments after the type letter (still percent-encoded).
    pub fn segments(&self) -> Vec<&str> {
        let path = &self.text[7 + self.provider_len..];
        path.split('/').skip(2).collect()
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Provider => "provider URI",
        Kind::User => "user URI",
        Kind::Client => "client URI",
        Kind::Room => "room URI",
        Kind::Group => "group URI",
        Kind::Pseudonym => "pseudonym URI",
        Kind::Team => "team URI",
    }
}

impl fmt::Display for MimiUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for MimiUri {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

/// Serde as the normal-form string; deserialising parses and normalises (so configuration and
/// JSON can hold identifiers).
macro_rules! serde_as_str {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_str!(MimiUri);
serde_as_str!(ProviderId);

impl MimiUri {
    /// This identifier as one request-path segment (`WIRE-id-path`, [`path_encode`]).
    pub fn to_path_segment(&self) -> String {
        path_encode(self.as_str())
    }
}

macro_rules! typed_uri {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(MimiUri);

        impl $name {
            /// Parses and normalises; refuses identifiers of another kind.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                MimiUri::parse_as(input, Some($kind)).map(Self)
            }
            /// The normal form.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
            /// The provider's domain.
            pub fn provider(&self) -> ProviderId {
                self.0.provider()
            }
            /// The untyped identifier.
            pub fn as_uri(&self) -> &MimiUri {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        serde_as_str!($name);

        impl $name {
            /// This identifier as one request-path segment (`WIRE-id-path`).
            pub fn to_path_segment(&self) -> String {
                path_encode(self.as_str())
            }

            /// Reads a request-path segment made by [`path_encode`] (any percent-encoding
            /// accepted) as this kind of identifier; the result is in normal form.
            pub fn from_path_segment(segment: &str) -> Result<Self, IdError> {
                Self::parse(&path_decode(segment)?)
            }
        }

        impl From<$name> for MimiUri {
            fn from(u: $name) -> MimiUri {
                u.0
            }
        }

        impl TryFrom<MimiUri> for $name {
            type Error = IdError;
            fn try_from(u: MimiUri) -> Result<Self, IdError> {
                if u.kind == $kind {
                    Ok(Self(u))
                } else {
                    Err(err(u.as_str(), $kind.wanted(), format!("it is a {}", kind_name(u.kind))))
                }
            }
        }
    };
}

typed_uri!(
    /// A user: `mimi://a.example/u/alice`.
    UserUri,
    Kind::User
);
typed_uri!(
    /// A client (device): `mimi://a.example/d/alice/phone` or `mimi://a.example/d/ClientA1`.
    ClientUri,
    Kind::Client
);
typed_uri!(
    /// A room: `mimi://a.example/r/clubhouse`.
    RoomUri,
    Kind::Room
);
typed_uri!(
    /// An MLS group: `mimi://a.example/g/clubhouse`.
    GroupUri,
    Kind::Group
);
typed_uri!(
    /// A pseudonym (protocol-06 §6, minimal-metadata rooms): `mimi://a.example/p/<uuid>`.
    PseudonymUri,
    Kind::Pseudonym
);

impl UserUri {
    /// The client URI `/d/<user>/<client>` of one of this user's devices.
    pub fn client(&self, client: &str) -> Result<ClientUri, IdError> {
        let user = self.0.segments().first().copied().unwrap_or_default();
        ClientUri::parse(&format!("mimi://{}/d/{user}/{client}", self.provider()))
    }
}

impl ClientUri {
    /// The user of a `/d/<user>/<client>` identifier (`WIRE-id-client-user`); `None` for the
    /// one-segment form, whose user only the provider knows.
    pub fn user(&self) -> Option<UserUri> {
        match self.0.segments().as_slice() {
            [user, _client] => UserUri::parse(&format!("mimi://{}/u/{user}", self.provider())).ok(),
            _ => None,
        }
    }
}

impl RoomUri {
    /// The MLS group URI this implementation uses for a room: same provider and id under `/g/`
    /// (as in the draft's example, `…/r/clubhouse` ↔ `…/g/clubhouse`).
    pub fn group(&self) -> GroupUri {
        let id = self.0.segments().first().copied().unwrap_or_default();
        GroupUri(MimiUri {
            text: format!("mimi://{}/g/{id}", self.provider()),
            provider_len: self.0.provider_len,
            kind: Kind::Group,
        })
    }
}

/// An identifier as a request-path segment (`WIRE-id-path`): the normal form with every octet
/// outside RFC 3986 `unreserved` percent-encoded in upper case.
pub fn path_encode(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len() * 3 / 2);
    for b in uri.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a request-path segment back (any percent-encoding accepted); the caller then parses
/// the result with the wanted identifier type.
pub fn path_decode(segment: &str) -> Result<String, IdError> {
    let e = |p: &str| err(segment, "percent-encoded MIMI URI", p);
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) else {
                return Err(e("a '%' not followed by two hex digits"));
            };
            out.push(h * 16 + l);
            i += 3;
        } else if c == b'/' {
            return Err(e("a '/' inside the segment (it must be %2F)"));
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| e("not UTF-8 once decoded"))
}
