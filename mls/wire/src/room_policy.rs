//! The room-policy-03 §6 policy components that clients and people notice, with their exact TLS
//! encodings: status notifications (§6.1, `ROOM-policy-status`), link previews (§6.3,
//! `ROOM-policy-link-preview`), assets (§6.4, `ROOM-policy-assets`), chat history (§6.6,
//! `ROOM-policy-history`), logging (§6.5, `ROOM-policy-logging`), chat bots (§6.7,
//! `ROOM-policy-bots`) and message expiration (§6.8, `ROOM-policy-expiry`). Each `…Update`
//! has the same format as its `…Data` and replaces it wholesale. The operational parameters
//! (§7) are in [`crate::operational`].
//!
//! The draft's `select` arms say `mandatory` where its `Optionality` enum says `required(1)`;
//! we read `mandatory` as `required` (spec-notes/decisions.md).

use crate::codec::{Body, Reader, WireError, WireErrorKind, Writer};

/// Suggested component ID of `status_notification_policy` (room-policy-03 §10.1.5).
pub const STATUS_NOTIFICATION_POLICY: u16 = 0x0028;
/// Suggested component ID of `link_preview_policy` (§10.1.8).
pub const LINK_PREVIEW_POLICY: u16 = 0x002B;
/// Suggested component ID of `asset_policy` (§10.1.9).
pub const ASSET_POLICY: u16 = 0x002C;
/// Suggested component ID of `logging_policy` (§10.1.10).
pub const LOGGING_POLICY: u16 = 0x002D;
/// Suggested component ID of `bot_policy` (§10.1.12).
pub const BOT_POLICY: u16 = 0x002F;
/// Suggested component ID of `chat_history_policy` (§10.1.11).
pub const CHAT_HISTORY_POLICY: u16 = 0x002E;
/// Suggested component ID of `message_expiration_policy` (§10.1.13).
pub const MESSAGE_EXPIRATION_POLICY: u16 = 0x0030;

/// `enum { optional(0), required(1), forbidden(2) } Optionality`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Optionality {
    /// `optional(0)`: the client's local configuration decides.
    #[default]
    Optional,
    /// `required(1)` (the `select` arms call it `mandatory`).
    Required,
    /// `forbidden(2)`.
    Forbidden,
}

impl Optionality {
    /// The wire value.
    pub fn value(self) -> u8 {
        match self {
            Self::Optional => 0,
            Self::Required => 1,
            Self::Forbidden => 2,
        }
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
            Self::Forbidden => "forbidden",
        }
    }

    /// From a name (`optional`, `required` or `mandatory`, `forbidden`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "optional" => Some(Self::Optional),
            "required" | "mandatory" => Some(Self::Required),
            "forbidden" => Some(Self::Forbidden),
            _ => None,
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>, f: &'static str) -> Result<Self, WireError> {
        match r.u8(f)? {
            0 => Ok(Self::Optional),
            1 => Ok(Self::Required),
            2 => Ok(Self::Forbidden),
            other => Err(r.error_back(1, WireErrorKind::BadValue(u64::from(other)), f)),
        }
    }

    pub(crate) fn write(self, w: &mut Writer) {
        w.u8(self.value());
    }
}

pub(crate) fn read_bool(r: &mut Reader<'_>, f: &'static str) -> Result<bool, WireError> {
    match r.u8(f)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(r.error_back(1, WireErrorKind::BadValue(u64::from(other)), f)),
    }
}

pub(crate) fn read_uri(r: &mut Reader<'_>, f: &'static str) -> Result<String, WireError> {
    let n = r.limits.max_uri;
    r.text(n, f)
}

/// `StatusNotificationPolicy` (room-policy-03 §6.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusNotificationPolicy {
    /// `delivery_notifications`.
    pub delivery_notifications: Optionality,
    /// `read_receipts`.
    pub read_receipts: Optionality,
}

impl Body for StatusNotificationPolicy {
    const NAME: &'static str = "StatusNotificationPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            delivery_notifications: Optionality::read(
                r,
                "StatusNotificationPolicy.delivery_notifications",
            )?,
            read_receipts: Optionality::read(r, "StatusNotificationPolicy.read_receipts")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.delivery_notifications.write(w);
        self.read_receipts.write(w);
    }
}

/// `LinkPreviewPolicy` (room-policy-03 §6.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkPreviewPolicy {
    /// `autodetect_hyperlinks_in_text` (MUST NOT be required).
    pub autodetect_hyperlinks_in_text: Optionality,
    /// `send_link_previews`.
    pub send_link_previews: Optionality,
    /// `automatic_link_previews`.
    pub automatic_link_previews: Optionality,
    /// `link_preview_proxy_use`.
    pub link_preview_proxy_use: Optionality,
    /// `Uri link_preview_proxy<V>`: present on the wire unless the proxy is forbidden (then
    /// it must be empty here); must name a proxy when its use is required or optional.
    pub link_preview_proxy: Vec<String>,
}

impl Body for LinkPreviewPolicy {
    const NAME: &'static str = "LinkPreviewPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let autodetect = Optionality::read(r, "LinkPreviewPolicy.autodetect_hyperlinks_in_text")?;
        if autodetect == Optionality::Required {
            // room-policy-03 §6.3: "MUST NOT be mandatory".
            return Err(r.error_back(
                1,
                WireErrorKind::BadValue(1),
                "LinkPreviewPolicy.autodetect_hyperlinks_in_text",
            ));
        }
        let send = Optionality::read(r, "LinkPreviewPolicy.send_link_previews")?;
        let automatic = Optionality::read(r, "LinkPreviewPolicy.automatic_link_previews")?;
        let proxy_use = Optionality::read(r, "LinkPreviewPolicy.link_preview_proxy_use")?;
        let f = "LinkPreviewPolicy.link_preview_proxy";
        let proxy = if proxy_use == Optionality::Forbidden {
            Vec::new()
        } else {
            let v = r.vector(f, |r| read_uri(r, f))?;
            if v.is_empty() {
                // "MUST include the URI of a link preview proxy if ... mandatory or optional".
                return Err(r.error(WireErrorKind::BadValue(0), f));
            }
            v
        };
        Ok(Self {
            autodetect_hyperlinks_in_text: autodetect,
            send_link_previews: send,
            automatic_link_previews: automatic,
            link_preview_proxy_use: proxy_use,
            link_preview_proxy: proxy,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.autodetect_hyperlinks_in_text.write(w);
        self.send_link_previews.write(w);
        self.automatic_link_previews.write(w);
        self.link_preview_proxy_use.write(w);
        if self.link_preview_proxy_use != Optionality::Forbidden {
            w.vector(&self.link_preview_proxy, |w, u| w.opaque(u.as_bytes()));
        }
    }
}

/// `MediaType` (mls-extensions-09 §6.2.2): a type/subtype and its parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaType {
    /// `opaque media_type<V>`, e.g. `image/png`.
    pub media_type: String,
    /// `Parameter parameters<V>`: (name, value).
    pub parameters: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype; name=value; ...` (names and type lowercased, values unquoted).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(';');
        let ty = parts.next()?.trim().to_ascii_lowercase();
        let (t, sub) = ty.split_once('/')?;
        let token = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        if !token(t) || !token(sub) {
            return None;
        }
        let mut parameters = Vec::new();
        for p in parts {
            let (n, v) = p.split_once('=')?;
            let n = n.trim().to_ascii_lowercase();
            if !token(&n) {
                return None;
            }
            parameters.push((n, v.trim().trim_matches('"').to_owned()));
        }
        Some(Self {
            media_type: ty,
            parameters,
        })
    }

    /// The top-level type (`image` of `image/png`).
    pub fn top_level(&self) -> &str {
        self.media_type
            .split_once('/')
            .map_or(self.media_type.as_str(), |(t, _)| t)
    }

    /// Whether this list entry matches `other` (room-policy-03 §6.4): same type and subtype
    /// (case-insensitive), and an entry without parameters matches every parameterized variant;
    /// an entry with parameters matches exactly those parameters (in any order).
    pub fn matches(&self, other: &MediaType) -> bool {
        if !self.media_type.eq_ignore_ascii_case(&other.media_type) {
            return false;
        }
        if self.parameters.is_empty() {
            return true;
        }
        let norm = |v: &[(String, String)]| {
            let mut v: Vec<(String, String)> = v
                .iter()
                .map(|(n, x)| (n.to_ascii_lowercase(), x.clone()))
                .collect();
            v.sort();
            v
        };
        norm(&self.parameters) == norm(&other.parameters)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let o = r.limits.max_opaque;
        let media_type = r.text(o, "MediaType.media_type")?;
        let f = "MediaType.parameters";
        let parameters = r.vector(f, |r| {
            Ok((
                r.text(o, "Parameter.parameter_name")?,
                r.text(o, "Parameter.parameter_value")?,
            ))
        })?;
        Ok(Self {
            media_type,
            parameters,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.opaque(self.media_type.as_bytes());
        w.vector(&self.parameters, |w, (n, v)| {
            w.opaque(n.as_bytes());
            w.opaque(v.as_bytes());
        });
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.media_type)?;
        for (n, v) in &self.parameters {
            write!(f, ";{n}={v}")?;
        }
        Ok(())
    }
}

/// `enum { unspecified(0), localProvider(1), hub(2), (255) } AssetUploadLocation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssetUploadLocation {
    /// `unspecified(0)`: any location.
    #[default]
    Unspecified,
    /// `localProvider(1)` (RECOMMENDED).
    LocalProvider,
    /// `hub(2)`.
    Hub,
}

impl AssetUploadLocation {
    /// The location of a name (the draft's, or `local`).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "unspecified" => Some(Self::Unspecified),
            "localProvider" | "local" => Some(Self::LocalProvider),
            "hub" => Some(Self::Hub),
            _ => None,
        }
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::LocalProvider => "localProvider",
            Self::Hub => "hub",
        }
    }
}

/// `enum { direct(0), hubProxy(1), ohttp(2), (255) } DownloadPrivacyType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DownloadPrivacyType {
    /// `direct(0)`.
    #[default]
    Direct,
    /// `hubProxy(1)`.
    HubProxy,
    /// `ohttp(2)`.
    Ohttp,
}

impl DownloadPrivacyType {
    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::HubProxy => "hubProxy",
            Self::Ohttp => "ohttp",
        }
    }

    /// The type of a name (the draft's, or `hub-proxy` / `proxy` for hubProxy).
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "hubProxy" | "hub-proxy" | "proxy" => Some(Self::HubProxy),
            "ohttp" => Some(Self::Ohttp),
            _ => None,
        }
    }

    fn read(r: &mut Reader<'_>, f: &'static str) -> Result<Self, WireError> {
        match r.u8(f)? {
            0 => Ok(Self::Direct),
            1 => Ok(Self::HubProxy),
            2 => Ok(Self::Ohttp),
            other => Err(r.error_back(1, WireErrorKind::BadValue(u64::from(other)), f)),
        }
    }

    fn value(self) -> u8 {
        match self {
            Self::Direct => 0,
            Self::HubProxy => 1,
            Self::Ohttp => 2,
        }
    }
}

/// `ProviderAssetUploadDomains`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderAssetUploadDomains {
    /// `DomainName provider`.
    pub provider: String,
    /// `DomainName asset_upload_destinations<V>`.
    pub asset_upload_destinations: Vec<String>,
}

/// `DownloadPrivacy`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadPrivacy {
    /// `allowed_download_types<V>`.
    pub allowed_download_types: Vec<DownloadPrivacyType>,
    /// `forbidden_download_types<V>`.
    pub forbidden_download_types: Vec<DownloadPrivacyType>,
    /// `default_download_type`.
    pub default_download_type: DownloadPrivacyType,
}

impl DownloadPrivacy {
    /// Whether the room lets a client download by `t` (`ROOM-policy-download-privacy`): `t`
    /// is not in `forbidden_download_types` and, when `allowed_download_types` is not empty,
    /// is in it. An empty allowed list restricts nothing (a decision: the draft does not say;
    /// read as "no list", like an absent `permitted_media_types`; spec-notes/decisions.md).
    pub fn allows(&self, t: DownloadPrivacyType) -> bool {
        !self.forbidden_download_types.contains(&t)
            && (self.allowed_download_types.is_empty() || self.allowed_download_types.contains(&t))
    }

    /// The download mechanism a client that implements `supported` (in its order of
    /// preference) uses (`ROOM-policy-download-privacy`): `requested` if the person asked for
    /// one (it must be allowed and supported), else `default_download_type` if it is allowed
    /// and supported, else the first supported one the room allows.
    pub fn choose(
        &self,
        supported: &[DownloadPrivacyType],
        requested: Option<DownloadPrivacyType>,
    ) -> Result<DownloadPrivacyType, AssetRefusal> {
        let usable = |t: DownloadPrivacyType| self.allows(t) && supported.contains(&t);
        if let Some(t) = requested {
            if !self.allows(t) {
                return Err(AssetRefusal::DownloadForbidden {
                    by: t.name(),
                    allowed: self.allowed_names(),
                });
            }
            if !supported.contains(&t) {
                return Err(AssetRefusal::DownloadUnsupported {
                    allowed: vec![t.name()],
                });
            }
            return Ok(t);
        }
        if usable(self.default_download_type) {
            return Ok(self.default_download_type);
        }
        supported
            .iter()
            .copied()
            .find(|t| usable(*t))
            .ok_or_else(|| AssetRefusal::DownloadUnsupported {
                allowed: self.allowed_names(),
            })
    }

    fn allowed_names(&self) -> Vec<&'static str> {
        [
            DownloadPrivacyType::Direct,
            DownloadPrivacyType::HubProxy,
            DownloadPrivacyType::Ohttp,
        ]
        .into_iter()
        .filter(|t| self.allows(*t))
        .map(DownloadPrivacyType::name)
        .collect()
    }
}

/// The host of an `https://` (or any `scheme://`) URL, lower-cased, without user info or port;
/// `None` when there is none.
pub fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split_once(']').map(|(h, _)| h)?
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `AssetPolicy` (room-policy-03 §6.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetPolicy {
    /// `asset_upload_location`.
    pub asset_upload_location: AssetUploadLocation,
    /// `upload_domains<V>`.
    pub upload_domains: Vec<ProviderAssetUploadDomains>,
    /// `download_privacy`.
    pub download_privacy: DownloadPrivacy,
    /// `uint64 max_image` (bytes).
    pub max_image: u64,
    /// `uint64 max_audio` (bytes).
    pub max_audio: u64,
    /// `uint64 max_video` (bytes).
    pub max_video: u64,
    /// `uint64 max_attachment` (bytes).
    pub max_attachment: u64,
    /// `forbidden_media_types<V>`.
    pub forbidden_media_types: Vec<MediaType>,
    /// `optional<MediaType> permitted_media_types<V>`, read as an optional vector (the draft's
    /// notation is ambiguous; "If present, permitted_media_types is a list").
    pub permitted_media_types: Option<Vec<MediaType>>,
}

/// Why an attachment does not fit a room's asset policy (`ROOM-policy-assets`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssetRefusal {
    /// The media type does not parse.
    #[error("{0:?} is not a media type (type/subtype[; name=value]...)")]
    BadMediaType(String),
    /// Larger than the room allows for its kind.
    #[error("the room accepts {kind} assets of at most {max} bytes; this one has {size}")]
    TooLarge {
        /// `image`, `audio`, `video` or `attachment`.
        kind: &'static str,
        /// The asset's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// In `forbidden_media_types`.
    #[error("the room forbids media type {0}")]
    Forbidden(String),
    /// Not in `permitted_media_types`.
    #[error("the room permits only listed media types, and {0} is not one of them")]
    NotPermitted(String),
    /// The external part's URL has no host.
    #[error("{0:?} is not a URL with a host")]
    BadUrl(String),
    /// The URL's host is not an upload destination the room lists for the sender's provider
    /// (`localProvider`) or the hub (`hub`).
    #[error(
        "the room's assets are uploaded to {location} ({whose}); {host} is not one of its \
         upload destinations {allowed:?}"
    )]
    UploadDomain {
        /// The URL's host.
        host: String,
        /// `localProvider` or `hub`.
        location: &'static str,
        /// Whose entry was consulted: the sender's provider or the hub.
        whose: String,
        /// The destinations listed there (empty when the provider has no entry).
        allowed: Vec<String>,
    },
    /// The room forbids (or does not list) the download mechanism.
    #[error("the room's download privacy forbids {by} downloads; it allows {allowed:?}")]
    DownloadForbidden {
        /// The mechanism asked for.
        by: &'static str,
        /// What the room allows.
        allowed: Vec<&'static str>,
    },
    /// No mechanism the room allows is one this client implements.
    #[error(
        "the room allows downloads only by {allowed:?}, and this client implements direct and \
         hubProxy (not ohttp)"
    )]
    DownloadUnsupported {
        /// What the room allows.
        allowed: Vec<&'static str>,
    },
}

impl AssetPolicy {
    /// The size limit for a media type's kind: `image/*`, `audio/*`, `video/*` have their own;
    /// everything else is an attachment. Returns the kind's name and the limit.
    pub fn limit_for(&self, media_type: &MediaType) -> (&'static str, u64) {
        match media_type.top_level() {
            "image" => ("image", self.max_image),
            "audio" => ("audio", self.max_audio),
            "video" => ("video", self.max_video),
            _ => ("attachment", self.max_attachment),
        }
    }

    /// May an asset of `size` bytes and `media_type` be sent (and accepted) in the room
    /// (`ROOM-policy-assets`)? The sending client calls it before uploading, the receiving client
    /// before downloading or showing. Checks the size against the kind's maximum (room-policy-03
    /// §6.4: `max_image`, `max_audio`, `max_video`, `max_attachment`, in bytes; a maximum of 0
    /// accepts no asset of that kind), then the media type against `forbidden_media_types` and,
    /// when present, `permitted_media_types` (an entry without parameters matches every
    /// parameterized variant). Upload domains are checked by [`Self::check_url`], download
    /// privacy by [`DownloadPrivacy::choose`].
    pub fn check(&self, size: u64, media_type: &str) -> Result<(), AssetRefusal> {
        let mt = MediaType::parse(media_type)
            .ok_or_else(|| AssetRefusal::BadMediaType(media_type.to_owned()))?;
        let (kind, max) = self.limit_for(&mt);
        if size > max {
            return Err(AssetRefusal::TooLarge { kind, size, max });
        }
        if self.forbidden_media_types.iter().any(|f| f.matches(&mt)) {
            return Err(AssetRefusal::Forbidden(mt.to_string()));
        }
        if let Some(p) = &self.permitted_media_types
            && !p.iter().any(|e| e.matches(&mt))
        {
            return Err(AssetRefusal::NotPermitted(mt.to_string()));
        }
        Ok(())
    }
}

impl AssetPolicy {
    /// The upload destinations an asset sent by a user of `sender_domain` may be at, in a room
    /// whose hub is `hub_domain` (`ROOM-policy-upload-domains`, room-policy-03 §6.4): `None`
    /// when the location is `unspecified` (anywhere); for `localProvider` the entry whose
    /// `provider` is exactly the sender's domain, for `hub` the hub's entry (empty when the
    /// policy lists none). Returns whose entry it is and its destinations.
    pub fn upload_destinations(
        &self,
        sender_domain: &str,
        hub_domain: &str,
    ) -> Option<(String, Vec<String>)> {
        let provider = match self.asset_upload_location {
            AssetUploadLocation::Unspecified => return None,
            AssetUploadLocation::LocalProvider => sender_domain,
            AssetUploadLocation::Hub => hub_domain,
        };
        let list = self
            .upload_domains
            .iter()
            .find(|d| d.provider.eq_ignore_ascii_case(provider))
            .map(|d| d.asset_upload_destinations.clone())
            .unwrap_or_default();
        Some((provider.to_owned(), list))
    }

    /// Whether an external part at `url`, sent by a user of `sender_domain` in a room hosted by
    /// `hub_domain`, is where the room's policy says assets are uploaded
    /// (`ROOM-policy-upload-domains`): unless the location is `unspecified`, the URL's host must
    /// be one of [`Self::upload_destinations`] (compared without case). The sending client
    /// checks before it sends, the receiving client before it downloads.
    pub fn check_url(
        &self,
        url: &str,
        sender_domain: &str,
        hub_domain: &str,
    ) -> Result<(), AssetRefusal> {
        let Some((whose, allowed)) = self.upload_destinations(sender_domain, hub_domain) else {
            return Ok(());
        };
        let host = url_host(url).ok_or_else(|| AssetRefusal::BadUrl(url.to_owned()))?;
        if allowed.iter().any(|d| d.eq_ignore_ascii_case(&host)) {
            return Ok(());
        }
        let whose = match self.asset_upload_location {
            AssetUploadLocation::Hub => format!("the hub {whose}"),
            _ => format!("the sender's provider {whose}"),
        };
        Err(AssetRefusal::UploadDomain {
            host,
            location: self.asset_upload_location.name(),
            whose,
            allowed,
        })
    }

    /// Whether `host` is an upload destination of any provider the policy lists (what a hub
    /// that does not know the sender can check, `PROTO-5.10-policy-host`); `true` when the
    /// location is `unspecified`.
    pub fn lists_host(&self, host: &str) -> bool {
        self.asset_upload_location == AssetUploadLocation::Unspecified
            || self.upload_domains.iter().any(|d| {
                d.asset_upload_destinations
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(host))
            })
    }
}

impl Body for AssetPolicy {
    const NAME: &'static str = "AssetPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "AssetPolicy.asset_upload_location";
        let asset_upload_location = match r.u8(f)? {
            0 => AssetUploadLocation::Unspecified,
            1 => AssetUploadLocation::LocalProvider,
            2 => AssetUploadLocation::Hub,
            other => return Err(r.error_back(1, WireErrorKind::BadValue(u64::from(other)), f)),
        };
        let o = r.limits.max_opaque;
        let d = "AssetPolicy.upload_domains";
        let upload_domains = r.vector(d, |r| {
            Ok(ProviderAssetUploadDomains {
                provider: r.text(o, "ProviderAssetUploadDomains.provider")?,
                asset_upload_destinations: r.vector(
                    "ProviderAssetUploadDomains.asset_upload_destinations",
                    |r| r.text(o, "DomainName.domain"),
                )?,
            })
        })?;
        let a = "DownloadPrivacy.allowed_download_types";
        let allowed_download_types = r.vector(a, |r| DownloadPrivacyType::read(r, a))?;
        let b = "DownloadPrivacy.forbidden_download_types";
        let forbidden_download_types = r.vector(b, |r| DownloadPrivacyType::read(r, b))?;
        let default_download_type =
            DownloadPrivacyType::read(r, "DownloadPrivacy.default_download_type")?;
        let max_image = r.u64("AssetPolicy.max_image")?;
        let max_audio = r.u64("AssetPolicy.max_audio")?;
        let max_video = r.u64("AssetPolicy.max_video")?;
        let max_attachment = r.u64("AssetPolicy.max_attachment")?;
        let forbidden_media_types =
            r.vector("AssetPolicy.forbidden_media_types", MediaType::read)?;
        let permitted_media_types = r.optional("AssetPolicy.permitted_media_types", |r| {
            r.vector("AssetPolicy.permitted_media_types", MediaType::read)
        })?;
        Ok(Self {
            asset_upload_location,
            upload_domains,
            download_privacy: DownloadPrivacy {
                allowed_download_types,
                forbidden_download_types,
                default_download_type,
            },
            max_image,
            max_audio,
            max_video,
            max_attachment,
            forbidden_media_types,
            permitted_media_types,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(match self.asset_upload_location {
            AssetUploadLocation::Unspecified => 0,
            AssetUploadLocation::LocalProvider => 1,
            AssetUploadLocation::Hub => 2,
        });
        w.vector(&self.upload_domains, |w, d| {
            w.opaque(d.provider.as_bytes());
            w.vector(&d.asset_upload_destinations, |w, x| w.opaque(x.as_bytes()));
        });
        let p = &self.download_privacy;
        w.vector(&p.allowed_download_types, |w, t| w.u8(t.value()));
        w.vector(&p.forbidden_download_types, |w, t| w.u8(t.value()));
        w.u8(p.default_download_type.value());
        w.u64(self.max_image);
        w.u64(self.max_audio);
        w.u64(self.max_video);
        w.u64(self.max_attachment);
        w.vector(&self.forbidden_media_types, |w, m| m.write(w));
        w.optional(self.permitted_media_types.as_ref(), |w, v| {
            w.vector(v, |w, m| m.write(w));
        });
    }
}

/// What history may be shared when it is not forbidden.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistorySharing {
    /// `uint32 roles_that_can_share<V>` (not 0, 1, or a role whose max_active is 0).
    pub roles_that_can_share: Vec<u32>,
    /// `bool automatically_share`.
    pub automatically_share: bool,
    /// `uint32 max_time_period` (seconds of history).
    pub max_time_period: u32,
}

/// `HistoryPolicy` (room-policy-03 §6.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// `history_sharing`.
    pub history_sharing: Optionality,
    /// The `select` arm for required/optional; ignored (not encoded) when forbidden.
    pub sharing: HistorySharing,
}

impl Body for HistoryPolicy {
    const NAME: &'static str = "HistoryPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let history_sharing = Optionality::read(r, "HistoryPolicy.history_sharing")?;
        let sharing = if history_sharing == Optionality::Forbidden {
            HistorySharing::default()
        } else {
            let f = "HistoryPolicy.roles_that_can_share";
            let roles_that_can_share = r.vector(f, |r| r.u32(f))?;
            if let Some(bad) = roles_that_can_share.iter().find(|x| **x <= 1) {
                // "The role index zero ... and one ... cannot be used".
                return Err(r.error(WireErrorKind::BadValue(u64::from(*bad)), f));
            }
            HistorySharing {
                roles_that_can_share,
                automatically_share: read_bool(r, "HistoryPolicy.automatically_share")?,
                max_time_period: r.u32("HistoryPolicy.max_time_period")?,
            }
        };
        Ok(Self {
            history_sharing,
            sharing,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.history_sharing.write(w);
        if self.history_sharing != Optionality::Forbidden {
            let s = &self.sharing;
            w.vector(&s.roles_that_can_share, |w, x| w.u32(*x));
            w.u8(u8::from(s.automatically_share));
            w.u32(s.max_time_period);
        }
    }
}

/// The durations of expiring messages when they are not forbidden (seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpirationDurations {
    /// `min_expiration_duration`.
    pub min: u32,
    /// `max_expiration_duration`.
    pub max: u32,
    /// `optional uint32 default_expiration_duration`.
    pub default: Option<u32>,
}

/// `MessageExpiration` (room-policy-03 §6.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageExpiration {
    /// `expiring_messages`.
    pub expiring_messages: Optionality,
    /// The `select` arm for required/optional; ignored (not encoded) when forbidden.
    pub durations: ExpirationDurations,
}

impl Body for MessageExpiration {
    const NAME: &'static str = "MessageExpiration";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let expiring_messages = Optionality::read(r, "MessageExpiration.expiring_messages")?;
        let durations = if expiring_messages == Optionality::Forbidden {
            ExpirationDurations::default()
        } else {
            let min = r.u32("MessageExpiration.min_expiration_duration")?;
            let max = r.u32("MessageExpiration.max_expiration_duration")?;
            if max < min {
                return Err(r.error_back(
                    4,
                    WireErrorKind::BadValue(u64::from(max)),
                    "MessageExpiration.max_expiration_duration",
                ));
            }
            let f = "MessageExpiration.default_expiration_duration";
            let default = r.optional(f, |r| r.u32(f))?;
            if let Some(d) = default
                && !(min..=max).contains(&d)
            {
                return Err(r.error_back(4, WireErrorKind::BadValue(u64::from(d)), f));
            }
            ExpirationDurations { min, max, default }
        };
        Ok(Self {
            expiring_messages,
            durations,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.expiring_messages.write(w);
        if self.expiring_messages != Optionality::Forbidden {
            let d = &self.durations;
            w.u32(d.min);
            w.u32(d.max);
            w.optional(d.default.as_ref(), |w, v| w.u32(*v));
        }
    }
}

/// `LoggingPolicy` (room-policy-03 §6.5, `ROOM-policy-logging`): whether messages of the room
/// are logged (by law or by the owning provider's rules), by which clients, under which
/// published policies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoggingPolicy {
    /// `logging`.
    pub logging: Optionality,
    /// `Uri logging_clients<V>`: the logging clients (at least one when logging is required;
    /// empty, and not encoded, when it is forbidden). "Each provider should have no more than
    /// one logging client at a time in a room": [`LoggingPolicy::second_client_of_a_provider`].
    pub logging_clients: Vec<String>,
    /// `Uri machine_readable_policy` (empty: none given).
    pub machine_readable_policy: String,
    /// `Uri human_readable_policy` (empty: none given).
    pub human_readable_policy: String,
}

impl LoggingPolicy {
    /// Whether the room is logged: logging required, or optional with a logging client
    /// ("If logging is optional and there is at least one `logging_client` then logging is
    /// active for the room").
    pub fn active(&self) -> bool {
        match self.logging {
            Optionality::Required => true,
            Optionality::Optional => !self.logging_clients.is_empty(),
            Optionality::Forbidden => false,
        }
    }

    /// A logging client whose provider (the URI's host) already has one earlier in the
    /// list, if any (the draft's "should have no more than one" per provider).
    pub fn second_client_of_a_provider(&self) -> Option<&str> {
        let mut seen = Vec::new();
        for c in &self.logging_clients {
            let host = url_host(c).unwrap_or_default();
            if seen.contains(&host) {
                return Some(c);
            }
            seen.push(host);
        }
        None
    }
}

impl Body for LoggingPolicy {
    const NAME: &'static str = "LoggingPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let logging = Optionality::read(r, "LoggingPolicy.logging")?;
        if logging == Optionality::Forbidden {
            return Ok(Self {
                logging,
                ..Self::default()
            });
        }
        let f = "LoggingPolicy.logging_clients";
        let logging_clients = r.vector(f, |r| read_uri(r, f))?;
        if logging == Optionality::Required && logging_clients.is_empty() {
            // "If logging is required, the list of logging_clients needs to contain at least
            // one logging URI."
            return Err(r.error(WireErrorKind::BadValue(0), f));
        }
        Ok(Self {
            logging,
            logging_clients,
            machine_readable_policy: read_uri(r, "LoggingPolicy.machine_readable_policy")?,
            human_readable_policy: read_uri(r, "LoggingPolicy.human_readable_policy")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.logging.write(w);
        if self.logging != Optionality::Forbidden {
            w.vector(&self.logging_clients, |w, u| w.opaque(u.as_bytes()));
            w.opaque(self.machine_readable_policy.as_bytes());
            w.opaque(self.human_readable_policy.as_bytes());
        }
    }
}

/// One `Bot` of a `BotPolicy` (room-policy-03 §6.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bot {
    /// `opaque name<V>` (descriptive; read as UTF-8, spec-notes/decisions.md).
    pub name: String,
    /// `opaque description<V>` (descriptive).
    pub description: String,
    /// `Uri homepage` (descriptive; may be empty).
    pub homepage: String,
    /// `bool local_client_bot`: the bot sees the room only through a person's client and is
    /// not a participant (its role index is then 0).
    pub local_client_bot: bool,
    /// `uint32 bot_role_index`: the role the bot acts in (0: not an active participant).
    pub bot_role_index: u32,
    /// `bool can_target_message_in_group`: may send a message to specific members only.
    pub can_target_message_in_group: bool,
    /// `bool per_user_content`: may send different content to each member.
    pub per_user_content: bool,
}

impl Bot {
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let o = r.limits.max_opaque;
        let name = r.text(o, "Bot.name")?;
        let description = r.text(o, "Bot.description")?;
        let homepage = read_uri(r, "Bot.homepage")?;
        let local_client_bot = read_bool(r, "Bot.local_client_bot")?;
        let bot_role_index = r.u32("Bot.bot_role_index")?;
        if local_client_bot && bot_role_index != 0 {
            // "A bot with local_client_bot set to true has a bot_role_index of 0."
            return Err(r.error_back(
                4,
                WireErrorKind::BadValue(u64::from(bot_role_index)),
                "Bot.bot_role_index",
            ));
        }
        Ok(Self {
            name,
            description,
            homepage,
            local_client_bot,
            bot_role_index,
            can_target_message_in_group: read_bool(r, "Bot.can_target_message_in_group")?,
            per_user_content: read_bool(r, "Bot.per_user_content")?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.opaque(self.name.as_bytes());
        w.opaque(self.description.as_bytes());
        w.opaque(self.homepage.as_bytes());
        w.u8(u8::from(self.local_client_bot));
        w.u32(self.bot_role_index);
        w.u8(u8::from(self.can_target_message_in_group));
        w.u8(u8::from(self.per_user_content));
    }
}

/// `BotPolicy` (room-policy-03 §6.7, `ROOM-policy-bots`): the bots allowed in the room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotPolicy {
    /// `Bot allowed_bots<V>`.
    pub allowed_bots: Vec<Bot>,
}

impl Body for BotPolicy {
    const NAME: &'static str = "BotPolicy";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            allowed_bots: r.vector("BotPolicy.allowed_bots", Bot::read)?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.vector(&self.allowed_bots, |w, b| b.write(w));
    }
}
