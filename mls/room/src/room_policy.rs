//! The room-policy-03 §6 components that clients and people notice, as room state, and the
//! client-side rules they set: status notifications (`ROOM-policy-status`), link previews
//! (`ROOM-policy-link-preview`, parsed and shown), assets (`ROOM-policy-assets`:
//! [`AssetPolicy::check`]), logging (`ROOM-policy-logging`: [`LoggingPolicy::active`]), chat
//! history (`ROOM-policy-history`, parsed and shown), chat bots (`ROOM-policy-bots`), message
//! expiration (`ROOM-policy-expiry`) and the MLS operational parameters
//! (`ROOM-policy-operational`: [`crate::operational`] has what the hub and clients do with
//! them). The structs and their encodings are in [`mimi_wire::room_policy`] and
//! [`mimi_wire::operational`]; they are re-exported here.
//!
//! Each is optional in the GroupContext (absent = the room takes no position), replaced
//! wholesale by an AppDataUpdate (at most one per component per commit), never removed (set
//! the permissive values instead), and changed only by a holder of canChangeRoomMembershipStyle
//! or canChangeOtherPolicyAttribute (`policy::check_policy_components`).
//!
//! **`AssetPolicy::check(size, media_type)`** is the function the sending client calls before
//! it uploads an attachment and the receiving client calls before it downloads or shows one:
//! `room.state(dev)?.policies.assets.as_ref().map_or(Ok(()), |p| p.check(size, "image/png"))`.
//! It checks the size against `max_image` / `max_audio` / `max_video` (by the media type's
//! top-level type) or `max_attachment` (everything else), then `forbidden_media_types` and
//! `permitted_media_types`. Upload domains and download privacy are carried, not checked.

use crate::codepoints::CodePoints;
use crate::state::StateError;
use mimi_wire::codec::Body;
pub use mimi_wire::operational::OperationalParameters;
pub use mimi_wire::room_policy::{
    AssetPolicy, AssetRefusal, ExpirationDurations, HistoryPolicy, HistorySharing,
    LinkPreviewPolicy, MediaType, MessageExpiration, Optionality, StatusNotificationPolicy,
};
pub use mimi_wire::room_policy::{Bot, BotPolicy, LoggingPolicy};

/// The §6 policy components of a room (each `None` when the GroupContext does not have it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyComponents {
    /// `status_notification_policy`.
    pub status: Option<StatusNotificationPolicy>,
    /// `link_preview_policy`.
    pub link_preview: Option<LinkPreviewPolicy>,
    /// `asset_policy`.
    pub assets: Option<AssetPolicy>,
    /// `logging_policy`.
    pub logging: Option<LoggingPolicy>,
    /// `chat_history_policy`.
    pub history: Option<HistoryPolicy>,
    /// `bot_policy`.
    pub bots: Option<BotPolicy>,
    /// `message_expiration_policy`.
    pub expiration: Option<MessageExpiration>,
    /// `mls_operational_policy`.
    pub operational: Option<OperationalParameters>,
}

fn decode<T: Body>(component: &'static str, b: &[u8]) -> Result<T, StateError> {
    T::decode_with(b, crate::state::STATE_LIMITS)
        .map_err(|error| StateError::Decode { component, error })
}

impl PolicyComponents {
    /// The name of a §6 component this module handles, `None` for other IDs.
    pub fn name(cp: &CodePoints, id: u16) -> Option<&'static str> {
        match id {
            x if x == cp.status_notification_policy => Some("status notification policy"),
            x if x == cp.link_preview_policy => Some("link preview policy"),
            x if x == cp.asset_policy => Some("asset policy"),
            x if x == cp.logging_policy => Some("logging policy"),
            x if x == cp.chat_history_policy => Some("chat history policy"),
            x if x == cp.bot_policy => Some("bot policy"),
            x if x == cp.message_expiration_policy => Some("message expiration policy"),
            x if x == cp.mls_operational_policy => Some("MLS operational parameters"),
            _ => None,
        }
    }

    /// Reads them from the dictionary.
    pub fn from_dictionary<'a>(
        cp: &CodePoints,
        get: impl Fn(u16) -> Option<&'a [u8]>,
    ) -> Result<Self, StateError> {
        let mut p = Self::default();
        for id in [
            cp.status_notification_policy,
            cp.link_preview_policy,
            cp.asset_policy,
            cp.logging_policy,
            cp.chat_history_policy,
            cp.bot_policy,
            cp.message_expiration_policy,
            cp.mls_operational_policy,
        ] {
            if let Some(b) = get(id) {
                p.set(cp, id, b)?;
            }
        }
        Ok(p)
    }

    /// Replaces one component from its `…Data`/`…Update` bytes (`id` must be one of ours).
    pub fn set(&mut self, cp: &CodePoints, id: u16, b: &[u8]) -> Result<(), StateError> {
        let name = Self::name(cp, id).ok_or(StateError::UnknownComponent(id))?;
        match id {
            x if x == cp.status_notification_policy => self.status = Some(decode(name, b)?),
            x if x == cp.link_preview_policy => self.link_preview = Some(decode(name, b)?),
            x if x == cp.asset_policy => self.assets = Some(decode(name, b)?),
            x if x == cp.logging_policy => self.logging = Some(decode(name, b)?),
            x if x == cp.chat_history_policy => self.history = Some(decode(name, b)?),
            x if x == cp.bot_policy => self.bots = Some(decode(name, b)?),
            x if x == cp.mls_operational_policy => self.operational = Some(decode(name, b)?),
            _ => self.expiration = Some(decode(name, b)?),
        }
        Ok(())
    }

    /// The encoded bytes of one component, if present.
    pub fn get(&self, cp: &CodePoints, id: u16) -> Option<Vec<u8>> {
        match id {
            x if x == cp.status_notification_policy => self.status.as_ref().map(Body::encode),
            x if x == cp.link_preview_policy => self.link_preview.as_ref().map(Body::encode),
            x if x == cp.asset_policy => self.assets.as_ref().map(Body::encode),
            x if x == cp.logging_policy => self.logging.as_ref().map(Body::encode),
            x if x == cp.chat_history_policy => self.history.as_ref().map(Body::encode),
            x if x == cp.bot_policy => self.bots.as_ref().map(Body::encode),
            x if x == cp.message_expiration_policy => self.expiration.as_ref().map(Body::encode),
            x if x == cp.mls_operational_policy => self.operational.as_ref().map(Body::encode),
            _ => None,
        }
    }

    /// Every present component as (id, bytes).
    pub fn components(&self, cp: &CodePoints) -> Vec<(u16, Vec<u8>)> {
        [
            cp.status_notification_policy,
            cp.link_preview_policy,
            cp.asset_policy,
            cp.logging_policy,
            cp.chat_history_policy,
            cp.bot_policy,
            cp.message_expiration_policy,
            cp.mls_operational_policy,
        ]
        .into_iter()
        .filter_map(|id| self.get(cp, id).map(|b| (id, b)))
        .collect()
    }
}

/// Which status notification (draft-mahy-mimi-message-status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// `delivered`.
    Delivery,
    /// `read`.
    Read,
}

impl Receipt {
    fn rule(self, p: &StatusNotificationPolicy) -> Optionality {
        match self {
            Self::Delivery => p.delivery_notifications,
            Self::Read => p.read_receipts,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Delivery => "delivery notifications",
            Self::Read => "read receipts",
        }
    }
}

/// A client-side policy refusal (the client does not send what the room forbids).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientRefusal {
    /// The room forbids this kind of receipt (`ROOM-policy-status`).
    #[error("the room forbids {0} (status notification policy)")]
    ReceiptForbidden(&'static str),
    /// The room forbids expiring messages (`ROOM-policy-expiry`).
    #[error("the room forbids expiring messages (message expiration policy)")]
    ExpiryForbidden,
    /// The requested expiry is outside the room's bounds (`ROOM-policy-expiry`).
    #[error("the room allows expiry durations from {min} to {max} seconds; {requested} asked")]
    ExpiryOutOfBounds {
        /// What was asked.
        requested: u32,
        /// Shortest.
        min: u32,
        /// Longest.
        max: u32,
    },
}

/// Whether the client sends a receipt of this kind automatically (`ROOM-policy-status`):
/// never when forbidden, always when required, else as the user configured (`local`).
pub fn send_receipt(policy: Option<&StatusNotificationPolicy>, kind: Receipt, local: bool) -> bool {
    match policy.map(|p| kind.rule(p)) {
        Some(Optionality::Forbidden) => false,
        Some(Optionality::Required) => true,
        Some(Optionality::Optional) | None => local,
    }
}

/// Whether a receipt the user asks for may be sent (`ROOM-policy-status`).
pub fn receipt_allowed(
    policy: Option<&StatusNotificationPolicy>,
    kind: Receipt,
) -> Result<(), ClientRefusal> {
    match policy.map(|p| kind.rule(p)) {
        Some(Optionality::Forbidden) => Err(ClientRefusal::ReceiptForbidden(kind.name())),
        _ => Ok(()),
    }
}

/// Whether receipts of this kind are required (the client sends them without being asked).
pub fn receipt_required(policy: Option<&StatusNotificationPolicy>, kind: Receipt) -> bool {
    policy.is_some_and(|p| kind.rule(p) == Optionality::Required)
}

/// The expiry duration (seconds) a message gets (`ROOM-policy-expiry`), given what the sender
/// asked for (`None`: nothing). Forbidden: no expiry, and asking for one is refused. Optional:
/// what was asked (within the bounds), else the room's default, else none. Required: what was
/// asked (within the bounds), else the default, else the longest allowed duration.
pub fn expiry_for(
    policy: Option<&MessageExpiration>,
    requested: Option<u32>,
) -> Result<Option<u32>, ClientRefusal> {
    let Some(p) = policy else {
        return Ok(requested);
    };
    let d = p.durations;
    match (p.expiring_messages, requested) {
        (Optionality::Forbidden, Some(_)) => Err(ClientRefusal::ExpiryForbidden),
        (Optionality::Forbidden, None) => Ok(None),
        (_, Some(r)) if !(d.min..=d.max).contains(&r) => Err(ClientRefusal::ExpiryOutOfBounds {
            requested: r,
            min: d.min,
            max: d.max,
        }),
        (_, Some(r)) => Ok(Some(r)),
        (Optionality::Optional, None) => Ok(d.default),
        (Optionality::Required, None) => Ok(Some(d.default.unwrap_or(d.max))),
    }
}
