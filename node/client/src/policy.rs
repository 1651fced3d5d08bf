//! Room policy as a person sets and reads it (`mimi room policy`, `mimi room info`): the
//! room-policy-03 components this client understands, edited field by field and committed as
//! whole `…Update`s (`ROOM-policy-*`, spec-notes/room.md).

use mimi_room::codepoints::CodePoints;
use mimi_room::room_policy::{
    AssetPolicy, ExpirationDurations, HistoryPolicy, HistorySharing, LinkPreviewPolicy, MediaType,
    MessageExpiration, Optionality,
};
use mimi_room::room_policy::{LoggingPolicy, OperationalParameters};
use mimi_room::state::RoomState;
use mimi_wire::codec::Body;
use mimi_wire::id::ProviderId;
use mimi_wire::operational::{MinDefaultMaxTime, PendingProposalPolicy};
use mimi_wire::room_policy::{
    AssetUploadLocation, DownloadPrivacy, DownloadPrivacyType, ProviderAssetUploadDomains,
};
use serde_json::{Value, json};

/// What to change; `None` leaves a field as it is (a component the room does not have yet
/// starts from permissive values: everything optional, no size limits, no expiry bounds).
#[derive(Clone, Debug, Default)]
pub struct PolicyEdit {
    /// Delivery notifications.
    pub delivery_receipts: Option<Optionality>,
    /// Read receipts.
    pub read_receipts: Option<Optionality>,
    /// Expiring messages.
    pub expiry: Option<Optionality>,
    /// Shortest expiry, seconds.
    pub expiry_min: Option<u32>,
    /// Longest expiry, seconds.
    pub expiry_max: Option<u32>,
    /// Default expiry, seconds (0 clears it).
    pub expiry_default: Option<u32>,
    /// Largest image, bytes.
    pub max_image: Option<u64>,
    /// Largest audio, bytes.
    pub max_audio: Option<u64>,
    /// Largest video, bytes.
    pub max_video: Option<u64>,
    /// Largest other attachment, bytes.
    pub max_attachment: Option<u64>,
    /// Media types to forbid (replaces the list when given).
    pub forbid_types: Option<Vec<String>>,
    /// Media types to permit (replaces the list when given; empty = no permitted list).
    pub permit_types: Option<Vec<String>>,
    /// Upload location: unspecified, localProvider, hub.
    pub upload_location: Option<String>,
    /// Upload destinations, `PROVIDER[=HOST,HOST...]` each (replaces the list when given).
    pub upload_domains: Option<Vec<String>>,
    /// Allowed download types (`any` or empty: no list).
    pub download_allow: Option<Vec<String>>,
    /// Forbidden download types (`none` or empty: none).
    pub download_forbid: Option<Vec<String>>,
    /// The default download type.
    pub download_default: Option<String>,
    /// History sharing.
    pub history: Option<Optionality>,
    /// Roles that may share history.
    pub history_roles: Option<Vec<u32>>,
    /// Share automatically.
    pub history_auto: Option<bool>,
    /// Seconds of history shared.
    pub history_period: Option<u32>,
    /// Senders' link previews.
    pub link_previews: Option<Optionality>,
    /// Receivers' automatic link previews.
    pub auto_link_previews: Option<Optionality>,
    /// Hyperlink detection (never required).
    pub autodetect_links: Option<Optionality>,
    /// Link preview proxy use.
    pub link_proxy_use: Option<Optionality>,
    /// Link preview proxy URI.
    pub link_proxy: Option<String>,
    /// A role whose active-participant limits change (`ROOM-policy-active-limits`).
    pub role: Option<u32>,
    /// Its minimum of active participants.
    pub min_active: Option<u32>,
    /// Its maximum of active participants (`None` inside: no maximum).
    pub max_active: Option<Option<u32>>,
    /// Logging (`ROOM-policy-logging`).
    pub logging: Option<Optionality>,
    /// The logging clients (replaces the list when given).
    pub logging_clients: Option<Vec<String>>,
    /// The human-readable logging policy's URI (empty: none).
    pub logging_policy_uri: Option<String>,
    /// The machine-readable logging policy's URI (empty: none).
    pub logging_machine_policy_uri: Option<String>,
    /// A bot to add or replace (by name) in the bot policy (`ROOM-policy-bots`).
    pub add_bot: Option<mimi_room::room_policy::Bot>,
    /// Bots to remove, by name.
    pub remove_bots: Vec<String>,
    /// MLS operational parameters to change (`ROOM-policy-operational`).
    pub operational: OperationalEdit,
}

/// Changes to the MLS operational parameters; `None` leaves a field as it is (a room without
/// them starts from [`OperationalParameters::permissive`]).
#[derive(Clone, Debug, Default)]
pub struct OperationalEdit {
    /// `external_commit_allowed`.
    pub external_commits: Option<bool>,
    /// `external_proposal_allowed`.
    pub external_proposals: Option<bool>,
    /// Forbidden proposal types (replaces the list when given).
    pub forbid_proposals: Option<Vec<u16>>,
    /// Forbidden credential types (replaces the list when given).
    pub forbid_credentials: Option<Vec<u16>>,
    /// Mandatory extension types (replaces the list when given).
    pub mandatory_extensions: Option<Vec<u16>>,
    /// Mandatory proposal types (replaces the list when given).
    pub mandatory_proposals: Option<Vec<u16>>,
    /// `max_kp_lifetime`, seconds (0: no position).
    pub max_kp_lifetime: Option<u64>,
    /// `epoch_tolerance`.
    pub epoch_tolerance: Option<u8>,
    /// `pad_to_size`.
    pub pad_to_size: Option<u16>,
    /// `max_generations_skipahead`.
    pub max_skipahead: Option<u32>,
    /// `pending_proposal_policy`: `unspecified`, `immediate` or `random:MIN-MAX` (ms).
    pub pending_proposals: Option<String>,
    /// `LeafNode_update_time`: `MIN,DEFAULT,MAX` seconds.
    pub leaf_update: Option<String>,
}

impl OperationalEdit {
    fn is_empty(&self) -> bool {
        self.external_commits.is_none()
            && self.external_proposals.is_none()
            && self.forbid_proposals.is_none()
            && self.forbid_credentials.is_none()
            && self.mandatory_extensions.is_none()
            && self.mandatory_proposals.is_none()
            && self.max_kp_lifetime.is_none()
            && self.epoch_tolerance.is_none()
            && self.pad_to_size.is_none()
            && self.max_skipahead.is_none()
            && self.pending_proposals.is_none()
            && self.leaf_update.is_none()
    }

    fn apply(&self, v: &mut OperationalParameters) -> Result<(), String> {
        v.external_commit_allowed = self.external_commits.unwrap_or(v.external_commit_allowed);
        v.external_proposal_allowed = self
            .external_proposals
            .unwrap_or(v.external_proposal_allowed);
        if let Some(l) = &self.forbid_proposals {
            v.forbidden_capabilities.proposals = l.clone();
        }
        if let Some(l) = &self.forbid_credentials {
            v.forbidden_capabilities.credentials = l.clone();
        }
        if let Some(l) = &self.mandatory_extensions {
            v.mandatory_capabilities.extensions = l.clone();
        }
        if let Some(l) = &self.mandatory_proposals {
            v.mandatory_capabilities.proposals = l.clone();
        }
        v.max_kp_lifetime = self.max_kp_lifetime.unwrap_or(v.max_kp_lifetime);
        let a = &mut v.app_message_policy;
        a.epoch_tolerance = self.epoch_tolerance.unwrap_or(a.epoch_tolerance);
        a.pad_to_size = self.pad_to_size.unwrap_or(a.pad_to_size);
        a.max_generations_skipahead = self.max_skipahead.unwrap_or(a.max_generations_skipahead);
        if let Some(s) = &self.pending_proposals {
            v.pending_proposal_policy = pending_policy(s)?;
        }
        if let Some(s) = &self.leaf_update {
            let n: Vec<u64> = s
                .split(',')
                .map(|x| x.trim().parse::<u64>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("--leaf-update {s:?}: use MIN,DEFAULT,MAX in seconds"))?;
            let [minimum_time, default_time, maximum_time] = n[..] else {
                return Err(format!(
                    "--leaf-update {s:?}: use MIN,DEFAULT,MAX in seconds"
                ));
            };
            v.leaf_node_update_time = MinDefaultMaxTime {
                minimum_time,
                default_time,
                maximum_time,
            };
        }
        Ok(())
    }
}

fn pending_policy(s: &str) -> Result<PendingProposalPolicy, String> {
    let bad =
        || format!("--pending-proposals {s:?}: use unspecified, immediate or random:MIN-MAX (ms)");
    match s {
        "unspecified" => Ok(PendingProposalPolicy::Unspecified),
        "immediate" | "immediate_commit" => Ok(PendingProposalPolicy::ImmediateCommit),
        _ => {
            let range = s.strip_prefix("random:").ok_or_else(bad)?;
            let (a, b) = range.split_once('-').ok_or_else(bad)?;
            let minimum_delay_ms = a.trim().parse().map_err(|_| bad())?;
            let maximum_delay_ms = b.trim().parse().map_err(|_| bad())?;
            Ok(PendingProposalPolicy::RandomDelay {
                minimum_delay_ms,
                maximum_delay_ms,
            })
        }
    }
}

fn valid<T: Body>(v: &T) -> Result<Vec<u8>, String> {
    let b = v.encode();
    T::decode(&b).map_err(|e| format!("the {} would not be valid: {e}", T::NAME))?;
    Ok(b)
}

fn media(list: &[String]) -> Result<Vec<MediaType>, String> {
    list.iter()
        .map(|s| MediaType::parse(s).ok_or_else(|| format!("{s:?} is not a media type")))
        .collect()
}

impl PolicyEdit {
    /// The components to commit (id, `…Update` bytes), or why the edit is not valid.
    pub fn components(
        &self,
        s: &RoomState,
        cp: &CodePoints,
        hub: &ProviderId,
    ) -> Result<Vec<(u16, Vec<u8>)>, String> {
        let mut out = Vec::new();
        let p = &s.policies;
        if self.delivery_receipts.is_some() || self.read_receipts.is_some() {
            let mut v = p.status.unwrap_or_default();
            v.delivery_notifications = self.delivery_receipts.unwrap_or(v.delivery_notifications);
            v.read_receipts = self.read_receipts.unwrap_or(v.read_receipts);
            out.push((cp.status_notification_policy, valid(&v)?));
        }
        if self.expiry.is_some()
            || self.expiry_min.is_some()
            || self.expiry_max.is_some()
            || self.expiry_default.is_some()
        {
            let mut v = p.expiration.unwrap_or(MessageExpiration {
                expiring_messages: Optionality::Optional,
                durations: ExpirationDurations {
                    min: 0,
                    max: u32::MAX,
                    default: None,
                },
            });
            v.expiring_messages = self.expiry.unwrap_or(v.expiring_messages);
            if v.expiring_messages == Optionality::Forbidden {
                v.durations = ExpirationDurations::default();
            } else {
                let d = &mut v.durations;
                d.min = self.expiry_min.unwrap_or(d.min);
                d.max = self.expiry_max.unwrap_or(d.max);
                if let Some(x) = self.expiry_default {
                    d.default = (x != 0).then_some(x);
                }
            }
            out.push((cp.message_expiration_policy, valid(&v)?));
        }
        if self.max_image.is_some()
            || self.max_audio.is_some()
            || self.max_video.is_some()
            || self.max_attachment.is_some()
            || self.forbid_types.is_some()
            || self.permit_types.is_some()
            || self.upload_location.is_some()
            || self.upload_domains.is_some()
            || self.download_allow.is_some()
            || self.download_forbid.is_some()
            || self.download_default.is_some()
        {
            let mut v = p.assets.clone().unwrap_or(AssetPolicy {
                max_image: u64::MAX,
                max_audio: u64::MAX,
                max_video: u64::MAX,
                max_attachment: u64::MAX,
                download_privacy: DownloadPrivacy {
                    default_download_type: DownloadPrivacyType::HubProxy,
                    ..Default::default()
                },
                ..Default::default()
            });
            v.max_image = self.max_image.unwrap_or(v.max_image);
            v.max_audio = self.max_audio.unwrap_or(v.max_audio);
            v.max_video = self.max_video.unwrap_or(v.max_video);
            v.max_attachment = self.max_attachment.unwrap_or(v.max_attachment);
            if let Some(f) = &self.forbid_types {
                v.forbidden_media_types = media(f)?;
            }
            if let Some(f) = &self.permit_types {
                v.permitted_media_types = (!f.is_empty()).then(|| media(f)).transpose()?;
            }
            if let Some(l) = &self.upload_location {
                v.asset_upload_location = AssetUploadLocation::from_name(l).ok_or_else(|| {
                    format!("upload location {l:?}: use unspecified, localProvider or hub")
                })?;
            }
            if let Some(list) = &self.upload_domains {
                v.upload_domains = list
                    .iter()
                    .map(|d| upload_domain(d))
                    .collect::<Result<_, _>>()?;
            } else if self.upload_location.is_some() && v.upload_domains.is_empty() {
                // ROOM-policy-upload-domains: a location with no destinations would refuse
                // every attachment; list what this federation's nodes use (each provider
                // keeps its assets at its own domain): the members' providers for
                // localProvider, the hub for hub.
                v.upload_domains = default_upload_domains(s, hub, v.asset_upload_location);
            }
            let hub_only = v.asset_upload_location == AssetUploadLocation::Hub;
            if hub_only && v.upload_domains.len() > 1 {
                return Err(
                    "with upload location hub only the hub's provider is listed (room-policy-03 \
                     §6.4); give one --upload-domain"
                        .into(),
                );
            }
            let d = &mut v.download_privacy;
            if let Some(l) = &self.download_allow {
                d.allowed_download_types = download_types(l, "any")?;
            }
            if let Some(l) = &self.download_forbid {
                d.forbidden_download_types = download_types(l, "none")?;
            }
            if let Some(t) = &self.download_default {
                d.default_download_type = download_type(t)?;
            }
            if !d.allows(d.default_download_type) {
                return Err(format!(
                    "the default download type {} would not be allowed; change \
                     --download-default, --download-allow or --download-forbid",
                    d.default_download_type.name()
                ));
            }
            out.push((cp.asset_policy, valid(&v)?));
        }
        if self.history.is_some()
            || self.history_roles.is_some()
            || self.history_auto.is_some()
            || self.history_period.is_some()
        {
            let mut v = p.history.clone().unwrap_or_default();
            v.history_sharing = self.history.unwrap_or(v.history_sharing);
            if v.history_sharing == Optionality::Forbidden {
                v.sharing = HistorySharing::default();
            } else {
                let h = &mut v.sharing;
                if let Some(r) = &self.history_roles {
                    h.roles_that_can_share = r.clone();
                }
                h.automatically_share = self.history_auto.unwrap_or(h.automatically_share);
                h.max_time_period = self.history_period.unwrap_or(h.max_time_period);
            }
            out.push((cp.chat_history_policy, valid::<HistoryPolicy>(&v)?));
        }
        if self.link_previews.is_some()
            || self.auto_link_previews.is_some()
            || self.autodetect_links.is_some()
            || self.link_proxy_use.is_some()
            || self.link_proxy.is_some()
        {
            let mut v = p.link_preview.clone().unwrap_or(LinkPreviewPolicy {
                link_preview_proxy_use: Optionality::Forbidden,
                ..Default::default()
            });
            v.send_link_previews = self.link_previews.unwrap_or(v.send_link_previews);
            v.automatic_link_previews =
                self.auto_link_previews.unwrap_or(v.automatic_link_previews);
            v.autodetect_hyperlinks_in_text = self
                .autodetect_links
                .unwrap_or(v.autodetect_hyperlinks_in_text);
            if let Some(u) = &self.link_proxy {
                v.link_preview_proxy = vec![u.clone()];
                if self.link_proxy_use.is_none()
                    && v.link_preview_proxy_use == Optionality::Forbidden
                {
                    v.link_preview_proxy_use = Optionality::Optional;
                }
            }
            v.link_preview_proxy_use = self.link_proxy_use.unwrap_or(v.link_preview_proxy_use);
            if v.link_preview_proxy_use == Optionality::Forbidden {
                v.link_preview_proxy.clear();
            }
            out.push((cp.link_preview_policy, valid(&v)?));
        }
        if self.min_active.is_some() || self.max_active.is_some() {
            let index = self
                .role
                .ok_or("--min-active and --max-active need --role <index>")?;
            let mut roles = s.roles.clone();
            let r = roles
                .roles
                .iter_mut()
                .find(|r| r.index == index)
                .ok_or_else(|| format!("the room has no role {index}"))?;
            r.min_active = self.min_active.unwrap_or(r.min_active);
            if let Some(m) = self.max_active {
                r.max_active = m;
            }
            out.push((cp.roles_list, valid(&roles)?));
        }
        if self.logging.is_some()
            || self.logging_clients.is_some()
            || self.logging_policy_uri.is_some()
            || self.logging_machine_policy_uri.is_some()
        {
            let mut v = p.logging.clone().unwrap_or_default();
            v.logging = self.logging.unwrap_or(v.logging);
            if let Some(l) = &self.logging_clients {
                v.logging_clients = l.clone();
            }
            if let Some(u) = &self.logging_policy_uri {
                v.human_readable_policy = u.clone();
            }
            if let Some(u) = &self.logging_machine_policy_uri {
                v.machine_readable_policy = u.clone();
            }
            if v.logging == Optionality::Forbidden {
                v = LoggingPolicy {
                    logging: Optionality::Forbidden,
                    ..LoggingPolicy::default()
                };
            } else if v.logging == Optionality::Required && v.logging_clients.is_empty() {
                return Err(
                    "required logging needs at least one --logging-client (room-policy-03 §6.5)"
                        .into(),
                );
            }
            for c in &v.logging_clients {
                if mimi_wire::room_policy::url_host(c).is_none() {
                    return Err(format!("logging client {c:?} is not a URI with a host"));
                }
            }
            if let Some(c) = v.second_client_of_a_provider() {
                return Err(format!(
                    "{c}: each provider should have no more than one logging client in a room                      (room-policy-03 §6.5)"
                ));
            }
            out.push((cp.logging_policy, valid(&v)?));
        }
        if self.add_bot.is_some() || !self.remove_bots.is_empty() {
            let mut v = p.bots.clone().unwrap_or_default();
            for name in &self.remove_bots {
                let n = v.allowed_bots.len();
                v.allowed_bots.retain(|b| b.name != *name);
                if v.allowed_bots.len() == n {
                    return Err(format!("the room's bot policy has no bot {name:?}"));
                }
            }
            if let Some(b) = &self.add_bot {
                if b.name.is_empty() {
                    return Err("a bot needs a name".into());
                }
                if b.local_client_bot && b.bot_role_index != 0 {
                    return Err(
                        "a local client bot acts in role 0 (room-policy-03 §6.7); drop --bot-role"
                            .into(),
                    );
                }
                if s.roles.role(b.bot_role_index).is_none() {
                    return Err(format!(
                        "the room has no role {} for bot {:?}",
                        b.bot_role_index, b.name
                    ));
                }
                match v.allowed_bots.iter_mut().find(|x| x.name == b.name) {
                    Some(x) => *x = b.clone(),
                    None => v.allowed_bots.push(b.clone()),
                }
            }
            out.push((cp.bot_policy, valid(&v)?));
        }
        if !self.operational.is_empty() {
            let mut v = p
                .operational
                .clone()
                .unwrap_or_else(OperationalParameters::permissive);
            self.operational.apply(&mut v)?;
            if let Some((list, x)) = v.mandatory_capabilities.overlap(&v.forbidden_capabilities) {
                return Err(format!(
                    "0x{x:04x} would be both mandatory and forbidden ({list})"
                ));
            }
            out.push((cp.mls_operational_policy, valid(&v)?));
        }
        if out.is_empty() {
            return Err("nothing to change: give at least one policy option (see --help)".into());
        }
        Ok(out)
    }
}

fn download_type(s: &str) -> Result<DownloadPrivacyType, String> {
    DownloadPrivacyType::from_name(s)
        .ok_or_else(|| format!("download type {s:?}: use direct, hubProxy or ohttp"))
}

fn download_types(list: &[String], empty: &str) -> Result<Vec<DownloadPrivacyType>, String> {
    if list.iter().all(|s| s.is_empty() || s == empty) {
        return Ok(Vec::new());
    }
    let mut out: Vec<DownloadPrivacyType> = Vec::new();
    for s in list {
        let t = download_type(s)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `PROVIDER[=HOST,HOST...]`.
fn upload_domain(s: &str) -> Result<ProviderAssetUploadDomains, String> {
    let (provider, hosts) = s.split_once('=').unwrap_or((s, ""));
    let ok = |d: &str| ProviderId::parse(d).map(|p| p.to_string());
    let provider = ok(provider.trim())
        .map_err(|e| format!("--upload-domain {s:?}: {provider:?} is not a domain: {e}"))?;
    let hosts: Vec<String> = if hosts.trim().is_empty() {
        vec![provider.clone()]
    } else {
        hosts
            .split(',')
            .map(|h| {
                ok(h.trim())
                    .map_err(|e| format!("--upload-domain {s:?}: {h:?} is not a domain: {e}"))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(ProviderAssetUploadDomains {
        provider,
        asset_upload_destinations: hosts,
    })
}

/// Each member's provider (and the hub) at its own domain, or the hub alone.
fn default_upload_domains(
    s: &RoomState,
    hub: &ProviderId,
    location: AssetUploadLocation,
) -> Vec<ProviderAssetUploadDomains> {
    let mut providers = vec![hub.to_string()];
    if location == AssetUploadLocation::LocalProvider {
        for p in &s.participants.participants {
            let d = p.user.provider().to_string();
            if !providers.contains(&d) {
                providers.push(d);
            }
        }
    }
    providers
        .into_iter()
        .map(|p| ProviderAssetUploadDomains {
            provider: p.clone(),
            asset_upload_destinations: vec![p],
        })
        .collect()
}

fn opt(o: Optionality) -> &'static str {
    o.name()
}

/// The policy components as JSON (for `mimi --json room info`).
pub fn policy_json(s: &RoomState) -> Value {
    let p = &s.policies;
    let limits: Vec<Value> = s
        .roles
        .roles
        .iter()
        .filter(|r| r.min_active > 0 || r.max_active.is_some())
        .map(|r| json!({ "role": r.index, "name": r.name, "min_active": r.min_active, "max_active": r.max_active }))
        .collect();
    json!({
        "active_limits": limits,
        "status_notifications": p.status.map(|v| json!({
            "delivery": opt(v.delivery_notifications), "read": opt(v.read_receipts) })),
        "message_expiration": p.expiration.map(|v| json!({
            "expiring_messages": opt(v.expiring_messages),
            "min_seconds": v.durations.min, "max_seconds": v.durations.max,
            "default_seconds": v.durations.default })),
        "assets": p.assets.as_ref().map(|v| json!({
            "upload_location": v.asset_upload_location.name(),
            "max_image": v.max_image, "max_audio": v.max_audio, "max_video": v.max_video,
            "max_attachment": v.max_attachment,
            "forbidden_media_types": v.forbidden_media_types.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "permitted_media_types": v.permitted_media_types.as_ref().map(|l| l.iter().map(ToString::to_string).collect::<Vec<_>>()),
            "upload_domains": v.upload_domains.iter().map(|d| json!({"provider": d.provider, "destinations": d.asset_upload_destinations})).collect::<Vec<_>>(),
            "download_default": v.download_privacy.default_download_type.name(),
            "download_allowed": v.download_privacy.allowed_download_types.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "download_forbidden": v.download_privacy.forbidden_download_types.iter().map(|t| t.name()).collect::<Vec<_>>() })),
        "history": p.history.as_ref().map(|v| json!({
            "history_sharing": opt(v.history_sharing),
            "roles_that_can_share": v.sharing.roles_that_can_share,
            "automatically_share": v.sharing.automatically_share,
            "max_time_period_seconds": v.sharing.max_time_period })),
        "link_previews": p.link_preview.as_ref().map(|v| json!({
            "autodetect_hyperlinks_in_text": opt(v.autodetect_hyperlinks_in_text),
            "send_link_previews": opt(v.send_link_previews),
            "automatic_link_previews": opt(v.automatic_link_previews),
            "link_preview_proxy_use": opt(v.link_preview_proxy_use),
            "link_preview_proxy": v.link_preview_proxy })),
        "logging": p.logging.as_ref().map(|v| json!({
            "logging": opt(v.logging), "active": v.active(),
            "logging_clients": v.logging_clients,
            "human_readable_policy": v.human_readable_policy,
            "machine_readable_policy": v.machine_readable_policy })),
        "bots": p.bots.as_ref().map(|v| v.allowed_bots.iter().map(|b| json!({
            "name": b.name, "description": b.description, "homepage": b.homepage,
            "local_client_bot": b.local_client_bot, "bot_role_index": b.bot_role_index,
            "can_target_message_in_group": b.can_target_message_in_group,
            "per_user_content": b.per_user_content })).collect::<Vec<_>>()),
        "operational": p.operational.as_ref().map(operational_json),
        "preauthorization": s.preauth.is_some(),
    })
}

fn size(n: u64) -> String {
    if n == u64::MAX {
        "no limit".into()
    } else {
        format!("{n} bytes")
    }
}

/// The policy components as lines for people (`mimi room info`).
pub fn policy_lines(s: &RoomState) -> Vec<String> {
    let p = &s.policies;
    let mut out = Vec::new();
    for r in &s.roles.roles {
        if r.min_active > 0 || r.max_active.is_some() {
            out.push(format!(
                "active participants of role {} ({}): at least {}, at most {}",
                r.index,
                r.name,
                r.min_active,
                r.max_active.map_or("unlimited".into(), |m| m.to_string())
            ));
        }
    }
    if let Some(v) = p.status {
        out.push(format!(
            "receipts: delivery {}, read {}",
            opt(v.delivery_notifications),
            opt(v.read_receipts)
        ));
    }
    if let Some(v) = p.expiration {
        if v.expiring_messages == Optionality::Forbidden {
            out.push("expiring messages: forbidden".into());
        } else {
            out.push(format!(
                "expiring messages: {}, {}..{} s, default {}",
                opt(v.expiring_messages),
                v.durations.min,
                v.durations.max,
                v.durations
                    .default
                    .map_or("none".into(), |d| format!("{d} s"))
            ));
        }
    }
    if let Some(v) = &p.assets {
        out.push(format!(
            "assets: upload {}, image {}, audio {}, video {}, attachment {}",
            v.asset_upload_location.name(),
            size(v.max_image),
            size(v.max_audio),
            size(v.max_video),
            size(v.max_attachment)
        ));
        if !v.forbidden_media_types.is_empty() {
            let l: Vec<String> = v
                .forbidden_media_types
                .iter()
                .map(ToString::to_string)
                .collect();
            out.push(format!("assets: forbidden types {}", l.join(", ")));
        }
        if let Some(l) = &v.permitted_media_types {
            let l: Vec<String> = l.iter().map(ToString::to_string).collect();
            out.push(format!("assets: permitted types {}", l.join(", ")));
        }
        for d in &v.upload_domains {
            out.push(format!(
                "assets: {} uploads to {}",
                d.provider,
                d.asset_upload_destinations.join(", ")
            ));
        }
        let d = &v.download_privacy;
        let names =
            |l: &[DownloadPrivacyType]| l.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ");
        out.push(format!(
            "assets: download by {} (default), allowed {}, forbidden {}",
            d.default_download_type.name(),
            if d.allowed_download_types.is_empty() {
                "any".to_owned()
            } else {
                names(&d.allowed_download_types)
            },
            if d.forbidden_download_types.is_empty() {
                "none".to_owned()
            } else {
                names(&d.forbidden_download_types)
            }
        ));
    }
    if let Some(v) = &p.history {
        if v.history_sharing == Optionality::Forbidden {
            out.push("history sharing: forbidden".into());
        } else {
            out.push(format!(
                "history sharing: {}, by roles {:?}, automatic {}, up to {} s",
                opt(v.history_sharing),
                v.sharing.roles_that_can_share,
                v.sharing.automatically_share,
                v.sharing.max_time_period
            ));
        }
    }
    if let Some(v) = &p.link_preview {
        out.push(format!(
            "link previews: send {}, automatic {}, autodetect {}, proxy {}{}",
            opt(v.send_link_previews),
            opt(v.automatic_link_previews),
            opt(v.autodetect_hyperlinks_in_text),
            opt(v.link_preview_proxy_use),
            v.link_preview_proxy
                .first()
                .map_or(String::new(), |u| format!(" ({u})"))
        ));
    }
    if let Some(v) = &p.logging {
        let clients = if v.logging_clients.is_empty() {
            String::new()
        } else {
            format!(" by {}", v.logging_clients.join(", "))
        };
        let policy = if v.human_readable_policy.is_empty() {
            String::new()
        } else {
            format!("; policy {}", v.human_readable_policy)
        };
        out.push(format!(
            "logging: {}{}{clients}{policy}",
            opt(v.logging),
            if v.active() {
                ", ACTIVE: messages in this room are logged"
            } else {
                ", not active"
            }
        ));
    }
    if let Some(v) = &p.bots {
        if v.allowed_bots.is_empty() {
            out.push("bots: none allowed".into());
        }
        for b in &v.allowed_bots {
            let mut rights = Vec::new();
            if b.local_client_bot {
                rights.push("local to a person's client".to_owned());
            } else {
                rights.push(format!("role {}", b.bot_role_index));
            }
            if b.can_target_message_in_group {
                rights.push("may message members individually".into());
            }
            if b.per_user_content {
                rights.push("may send each member different content".into());
            }
            out.push(format!("bot {:?}: {}", b.name, rights.join(", ")));
        }
    }
    if let Some(v) = &p.operational {
        out.extend(operational_lines(v));
    }
    if s.preauth.is_some() {
        out.push("preauthorization list: present".into());
    }
    out
}

fn hexes(l: &[u16]) -> String {
    l.iter()
        .map(|x| format!("0x{x:04x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn operational_json(v: &OperationalParameters) -> Value {
    let caps = |c: &mimi_wire::operational::ExtendedCapabilities| {
        json!({
            "versions": c.versions, "cipher_suites": c.cipher_suites,
            "extensions": c.extensions, "proposals": c.proposals,
            "credentials": c.credentials, "wire_formats": c.wire_formats,
            "component_ids": c.component_ids, "safe_aad_types": c.safe_aad_types,
            "media_types": c.media_types.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "content_types": c.content_types,
        })
    };
    let t = |m: &MinDefaultMaxTime| json!({"minimum": m.minimum_time, "default": m.default_time, "maximum": m.maximum_time});
    json!({
        "mandatory_capabilities": caps(&v.mandatory_capabilities),
        "default_capabilities": caps(&v.default_capabilities),
        "forbidden_capabilities": caps(&v.forbidden_capabilities),
        "handshake_formats": v.handshake_formats,
        "external_proposal_allowed": v.external_proposal_allowed,
        "external_commit_allowed": v.external_commit_allowed,
        "pending_proposal_policy": v.pending_proposal_policy.describe(),
        "leaf_node_update_time": t(&v.leaf_node_update_time),
        "epoch_tolerance": v.app_message_policy.epoch_tolerance,
        "pad_to_size": v.app_message_policy.pad_to_size,
        "max_generations_skipahead": v.app_message_policy.max_generations_skipahead,
        "max_kp_lifetime": v.max_kp_lifetime,
        "max_credential_lifetime": v.max_credential_lifetime,
        "resumption_psk_lifetime": v.resumption_psk_lifetime,
        "sender_nonce_keypair_lifetime": t(&v.sender_nonce_keypair_lifetime),
        "max_keypairs": v.max_keypairs,
        "buffer_incoming_message_time": t(&v.buffer_incoming_message_time),
        "max_buffered_messages": v.max_buffered_messages,
    })
}

fn operational_lines(v: &OperationalParameters) -> Vec<String> {
    let yes = |b: bool| if b { "allowed" } else { "forbidden" };
    let mut out = vec![format!(
        "MLS: external commits {}, external proposals {}, pending proposals {}",
        yes(v.external_commit_allowed),
        yes(v.external_proposal_allowed),
        v.pending_proposal_policy.describe()
    )];
    let m = &v.mandatory_capabilities;
    let f = &v.forbidden_capabilities;
    for (what, l) in [
        ("mandatory cipher suites", &m.cipher_suites),
        ("mandatory extensions", &m.extensions),
        ("mandatory proposals", &m.proposals),
        ("mandatory credentials", &m.credentials),
        ("forbidden cipher suites", &f.cipher_suites),
        ("forbidden extensions", &f.extensions),
        ("forbidden proposals", &f.proposals),
        ("forbidden credentials", &f.credentials),
    ] {
        if !l.is_empty() {
            out.push(format!("MLS: {what} {}", hexes(l)));
        }
    }
    if !v.handshake_formats.is_empty() {
        let l: Vec<String> = v
            .handshake_formats
            .iter()
            .map(|w| mimi_wire::operational::wire_format_name(*w))
            .collect();
        out.push(format!("MLS: handshakes as {}", l.join(", ")));
    }
    let a = &v.app_message_policy;
    if *a != Default::default() {
        out.push(format!(
            "MLS: application messages from {} past epochs, padded to {} octets, ratchet              skip-ahead at most {}",
            a.epoch_tolerance, a.pad_to_size, a.max_generations_skipahead
        ));
    }
    if !v.leaf_node_update_time.is_unset() {
        out.push(format!(
            "MLS: leaf updates {}",
            v.leaf_node_update_time.describe()
        ));
    }
    if v.max_kp_lifetime > 0 {
        out.push(format!(
            "MLS: KeyPackages valid for at most {} s",
            v.max_kp_lifetime
        ));
    }
    out
}
