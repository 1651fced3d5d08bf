//! The MLS operational parameters of a room (room-policy-03 §7, component
//! `mls_operational_policy`, `ROOM-policy-operational`): the RFC 9750 §7 choices two MLS
//! implementations must agree on to share a group, with their exact TLS encoding.
//!
//! Where the draft's struct is not well formed we read it as follows (spec-notes/decisions.md):
//! `unit64 max_kp_lifetime` is `uint64`; `WireFormats` is RFC 9420's `WireFormat` (uint16);
//! `ContentType` is RFC 9420's (uint8); `ComponentID` is uint16 as everywhere in this crate;
//! `PendingProposalStrategy`'s `case extension` (a value the enum does not name) is every value
//! from 3 to 255, carrying the `ComponentID` of its parameters. Times and lifetimes are seconds
//! (RFC 9420's `Lifetime` unit), except the `_ms` delays the draft names so; 0 in a maximum or
//! lifetime means the room takes no position.

use crate::codec::{Body, Reader, WireError, WireErrorKind, Writer};
use crate::room_policy::{MediaType, read_bool};

/// Suggested component ID of `mls_operational_policy` (room-policy-03 §10.1, TBD0).
pub const MLS_OPERATIONAL_POLICY: u16 = 0x0024;

/// RFC 9420 `WireFormat` of a PublicMessage.
pub const WIRE_FORMAT_PUBLIC_MESSAGE: u16 = 0x0001;
/// RFC 9420 `WireFormat` of a PrivateMessage.
pub const WIRE_FORMAT_PRIVATE_MESSAGE: u16 = 0x0002;
// SemiPrivateMessage (draft-mahy-mls-semiprivatemessage-07) has no WireFormat value yet
// (TBD), so it has no name here.

/// The name of a wire format, for messages.
pub fn wire_format_name(w: u16) -> String {
    match w {
        WIRE_FORMAT_PUBLIC_MESSAGE => "PublicMessage".into(),
        WIRE_FORMAT_PRIVATE_MESSAGE => "PrivateMessage".into(),
        0x0003 => "Welcome".into(),
        0x0004 => "GroupInfo".into(),
        0x0005 => "KeyPackage".into(),
        other => format!("wire format 0x{other:04x}"),
    }
}

/// `ExtendedCapabilities`: lists of code points (each list empty when the room takes no
/// position on it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedCapabilities {
    /// `ProtocolVersion versions<V>`.
    pub versions: Vec<u16>,
    /// `CipherSuite cipher_suites<V>`.
    pub cipher_suites: Vec<u16>,
    /// `ExtensionType extensions<V>`.
    pub extensions: Vec<u16>,
    /// `ProposalType proposals<V>`.
    pub proposals: Vec<u16>,
    /// `CredentialType credentials<V>`.
    pub credentials: Vec<u16>,
    /// `WireFormats wire_formats<V>`.
    pub wire_formats: Vec<u16>,
    /// `ComponentID component_ids<V>`.
    pub component_ids: Vec<u16>,
    /// `ComponentID safe_aad_types<V>`.
    pub safe_aad_types: Vec<u16>,
    /// `MediaType media_types<V>`.
    pub media_types: Vec<MediaType>,
    /// `ContentType content_types<V>`.
    pub content_types: Vec<u8>,
}

impl ExtendedCapabilities {
    /// Whether every list is empty.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The first code point listed both here and in `other`, as (list name, value), if any.
    pub fn overlap(&self, other: &Self) -> Option<(&'static str, u64)> {
        let lists = |c: &Self| {
            [
                ("versions", c.versions.clone()),
                ("cipher_suites", c.cipher_suites.clone()),
                ("extensions", c.extensions.clone()),
                ("proposals", c.proposals.clone()),
                ("credentials", c.credentials.clone()),
                ("wire_formats", c.wire_formats.clone()),
                ("component_ids", c.component_ids.clone()),
                ("safe_aad_types", c.safe_aad_types.clone()),
                (
                    "content_types",
                    c.content_types.iter().map(|x| u16::from(*x)).collect(),
                ),
            ]
        };
        for ((name, a), (_, b)) in lists(self).into_iter().zip(lists(other)) {
            if let Some(x) = a.iter().find(|x| b.contains(x)) {
                return Some((name, u64::from(*x)));
            }
        }
        None
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let u16s = |r: &mut Reader<'_>, f: &'static str| r.vector(f, |r| r.u16(f));
        Ok(Self {
            versions: u16s(r, "ExtendedCapabilities.versions")?,
            cipher_suites: u16s(r, "ExtendedCapabilities.cipher_suites")?,
            extensions: u16s(r, "ExtendedCapabilities.extensions")?,
            proposals: u16s(r, "ExtendedCapabilities.proposals")?,
            credentials: u16s(r, "ExtendedCapabilities.credentials")?,
            wire_formats: u16s(r, "ExtendedCapabilities.wire_formats")?,
            component_ids: u16s(r, "ExtendedCapabilities.component_ids")?,
            safe_aad_types: u16s(r, "ExtendedCapabilities.safe_aad_types")?,
            media_types: r.vector("ExtendedCapabilities.media_types", MediaType::read)?,
            content_types: r.vector("ExtendedCapabilities.content_types", |r| {
                r.u8("ExtendedCapabilities.content_types")
            })?,
        })
    }

    fn write(&self, w: &mut Writer) {
        for l in [
            &self.versions,
            &self.cipher_suites,
            &self.extensions,
            &self.proposals,
            &self.credentials,
            &self.wire_formats,
            &self.component_ids,
            &self.safe_aad_types,
        ] {
            w.vector(l, |w, x| w.u16(*x));
        }
        w.vector(&self.media_types, |w, m| m.write(w));
        w.vector(&self.content_types, |w, x| w.u8(*x));
    }
}

/// `PendingProposalPolicy`: when members commit pending proposals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PendingProposalPolicy {
    /// `unspecified(0)`.
    #[default]
    Unspecified,
    /// `immediate_commit(1)`.
    ImmediateCommit,
    /// `random_delay(2)`: commit after a delay drawn from `[minimum, maximum]` ms.
    RandomDelay {
        /// `minimum_delay_ms`.
        minimum_delay_ms: u64,
        /// `maximum_delay_ms` (at least the minimum).
        maximum_delay_ms: u64,
    },
    /// `case extension`: a strategy value 3..=255 whose parameters are in a component.
    Extension {
        /// The strategy's value.
        strategy: u8,
        /// `id_of_strategy_params`.
        id_of_strategy_params: u16,
    },
}

impl PendingProposalPolicy {
    /// The strategy's name, for people.
    pub fn describe(&self) -> String {
        match self {
            Self::Unspecified => "unspecified".into(),
            Self::ImmediateCommit => "immediate commit".into(),
            Self::RandomDelay {
                minimum_delay_ms,
                maximum_delay_ms,
            } => format!("random delay {minimum_delay_ms}..{maximum_delay_ms} ms"),
            Self::Extension {
                strategy,
                id_of_strategy_params,
            } => format!(
                "strategy {strategy} (parameters in component 0x{id_of_strategy_params:04x})"
            ),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(
            match r.u8("PendingProposalPolicy.pending_proposal_strategy")? {
                0 => Self::Unspecified,
                1 => Self::ImmediateCommit,
                2 => {
                    let minimum_delay_ms = r.u64("PendingProposalPolicy.minimum_delay_ms")?;
                    let maximum_delay_ms = r.u64("PendingProposalPolicy.maximum_delay_ms")?;
                    if maximum_delay_ms < minimum_delay_ms {
                        return Err(r.error_back(
                            8,
                            WireErrorKind::BadValue(maximum_delay_ms),
                            "PendingProposalPolicy.maximum_delay_ms",
                        ));
                    }
                    Self::RandomDelay {
                        minimum_delay_ms,
                        maximum_delay_ms,
                    }
                }
                strategy => Self::Extension {
                    strategy,
                    id_of_strategy_params: r.u16("PendingProposalPolicy.id_of_strategy_params")?,
                },
            },
        )
    }

    fn write(&self, w: &mut Writer) {
        match self {
            Self::Unspecified => w.u8(0),
            Self::ImmediateCommit => w.u8(1),
            Self::RandomDelay {
                minimum_delay_ms,
                maximum_delay_ms,
            } => {
                w.u8(2);
                w.u64(*minimum_delay_ms);
                w.u64(*maximum_delay_ms);
            }
            Self::Extension {
                strategy,
                id_of_strategy_params,
            } => {
                w.u8(*strategy);
                w.u16(*id_of_strategy_params);
            }
        }
    }
}

/// `MinDefaultMaxTime` (seconds): all zero when the room takes no position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinDefaultMaxTime {
    /// `minimum_time`.
    pub minimum_time: u64,
    /// `default_time`.
    pub default_time: u64,
    /// `maximum_time` (0: no maximum).
    pub maximum_time: u64,
}

impl MinDefaultMaxTime {
    /// Whether the room takes no position.
    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    /// `min..default..max` for people.
    pub fn describe(&self) -> String {
        if self.is_unset() {
            return "no position".into();
        }
        let max = if self.maximum_time == 0 {
            "unlimited".to_owned()
        } else {
            format!("{} s", self.maximum_time)
        };
        format!(
            "at least {} s, default {} s, at most {max}",
            self.minimum_time, self.default_time
        )
    }

    fn read(r: &mut Reader<'_>, f: &'static str) -> Result<Self, WireError> {
        let t = Self {
            minimum_time: r.u64(f)?,
            default_time: r.u64(f)?,
            maximum_time: r.u64(f)?,
        };
        let upper = if t.maximum_time == 0 {
            u64::MAX
        } else {
            t.maximum_time
        };
        if t.default_time < t.minimum_time || t.default_time > upper {
            // minimum <= default <= maximum (0: no maximum).
            return Err(r.error_back(16, WireErrorKind::BadValue(t.default_time), f));
        }
        Ok(t)
    }

    fn write(&self, w: &mut Writer) {
        w.u64(self.minimum_time);
        w.u64(self.default_time);
        w.u64(self.maximum_time);
    }
}

/// `AppMessagePolicy`: how receivers treat application messages (0: no position).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppMessagePolicy {
    /// `epoch_tolerance`: past epochs whose messages are still decrypted.
    pub epoch_tolerance: u8,
    /// `pad_to_size`: application messages are padded to a multiple of this many octets.
    pub pad_to_size: u16,
    /// `max_generations_skipahead`: how far a sender's ratchet may move forward for one
    /// message.
    pub max_generations_skipahead: u32,
}

/// `OperationalParameters` (room-policy-03 §7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationalParameters {
    /// `mandatory_capabilities`: every member's leaf must support these.
    pub mandatory_capabilities: ExtendedCapabilities,
    /// `default_capabilities`: what clients use unless told otherwise.
    pub default_capabilities: ExtendedCapabilities,
    /// `forbidden_capabilities`: no member may use these (disjoint from the mandatory ones).
    pub forbidden_capabilities: ExtendedCapabilities,
    /// `WireFormats handshake_formats<V>`: the formats of proposals and commits (empty: no
    /// position; never PrivateMessage, which the hub could not follow).
    pub handshake_formats: Vec<u16>,
    /// `external_proposal_allowed`.
    pub external_proposal_allowed: bool,
    /// `external_commit_allowed`: whether clients may join (or resync) by external commit.
    pub external_commit_allowed: bool,
    /// `pending_proposal_policy`.
    pub pending_proposal_policy: PendingProposalPolicy,
    /// `LeafNode_update_time`: how often members update their leaf.
    pub leaf_node_update_time: MinDefaultMaxTime,
    /// `app_message_policy`.
    pub app_message_policy: AppMessagePolicy,
    /// `max_kp_lifetime` (seconds; 0: no position): the longest lifetime of a KeyPackage
    /// that may be added.
    pub max_kp_lifetime: u64,
    /// `max_credential_lifetime` (seconds; 0: no position).
    pub max_credential_lifetime: u64,
    /// `resumption_psk_lifetime` (seconds; 0: no position).
    pub resumption_psk_lifetime: u64,
    /// `sender_nonce_keypair_lifetime`.
    pub sender_nonce_keypair_lifetime: MinDefaultMaxTime,
    /// `max_keypairs` (0: no position).
    pub max_keypairs: u32,
    /// `buffer_incoming_message_time`.
    pub buffer_incoming_message_time: MinDefaultMaxTime,
    /// `max_buffered_messages` (0: no position).
    pub max_buffered_messages: u32,
}

impl OperationalParameters {
    /// The parameters of a room that takes no position: everything empty or zero, external
    /// proposals and commits allowed.
    pub fn permissive() -> Self {
        Self {
            external_proposal_allowed: true,
            external_commit_allowed: true,
            ..Self::default()
        }
    }
}

impl Body for OperationalParameters {
    const NAME: &'static str = "OperationalParameters";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mandatory_capabilities = ExtendedCapabilities::read(r)?;
        let default_capabilities = ExtendedCapabilities::read(r)?;
        let forbidden_capabilities = ExtendedCapabilities::read(r)?;
        if let Some((_, x)) = mandatory_capabilities.overlap(&forbidden_capabilities) {
            // A code point both mandatory and forbidden leaves no valid member.
            return Err(r.error(
                WireErrorKind::BadValue(x),
                "OperationalParameters.forbidden_capabilities (also mandatory)",
            ));
        }
        let f = "OperationalParameters.handshake_formats";
        let handshake_formats = r.vector(f, |r| r.u16(f))?;
        if handshake_formats.contains(&WIRE_FORMAT_PRIVATE_MESSAGE) {
            // room-policy-03 §7: handshakes are PublicMessage or SemiPrivateMessage, so that
            // the hub can follow the group.
            return Err(r.error(
                WireErrorKind::BadValue(u64::from(WIRE_FORMAT_PRIVATE_MESSAGE)),
                f,
            ));
        }
        Ok(Self {
            mandatory_capabilities,
            default_capabilities,
            forbidden_capabilities,
            handshake_formats,
            external_proposal_allowed: read_bool(
                r,
                "OperationalParameters.external_proposal_allowed",
            )?,
            external_commit_allowed: read_bool(r, "OperationalParameters.external_commit_allowed")?,
            pending_proposal_policy: PendingProposalPolicy::read(r)?,
            leaf_node_update_time: MinDefaultMaxTime::read(
                r,
                "OperationalParameters.LeafNode_update_time",
            )?,
            app_message_policy: AppMessagePolicy {
                epoch_tolerance: r.u8("AppMessagePolicy.epoch_tolerance")?,
                pad_to_size: r.u16("AppMessagePolicy.pad_to_size")?,
                max_generations_skipahead: r.u32("AppMessagePolicy.max_generations_skipahead")?,
            },
            max_kp_lifetime: r.u64("OperationalParameters.max_kp_lifetime")?,
            max_credential_lifetime: r.u64("OperationalParameters.max_credential_lifetime")?,
            resumption_psk_lifetime: r.u64("OperationalParameters.resumption_psk_lifetime")?,
            sender_nonce_keypair_lifetime: MinDefaultMaxTime::read(
                r,
                "OperationalParameters.sender_nonce_keypair_lifetime",
            )?,
            max_keypairs: r.u32("OperationalParameters.max_keypairs")?,
            buffer_incoming_message_time: MinDefaultMaxTime::read(
                r,
                "OperationalParameters.buffer_incoming_message_time",
            )?,
            max_buffered_messages: r.u32("OperationalParameters.max_buffered_messages")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.mandatory_capabilities.write(w);
        self.default_capabilities.write(w);
        self.forbidden_capabilities.write(w);
        w.vector(&self.handshake_formats, |w, x| w.u16(*x));
        w.u8(u8::from(self.external_proposal_allowed));
        w.u8(u8::from(self.external_commit_allowed));
        self.pending_proposal_policy.write(w);
        self.leaf_node_update_time.write(w);
        let a = &self.app_message_policy;
        w.u8(a.epoch_tolerance);
        w.u16(a.pad_to_size);
        w.u32(a.max_generations_skipahead);
        w.u64(self.max_kp_lifetime);
        w.u64(self.max_credential_lifetime);
        w.u64(self.resumption_psk_lifetime);
        self.sender_nonce_keypair_lifetime.write(w);
        w.u32(self.max_keypairs);
        self.buffer_incoming_message_time.write(w);
        w.u32(self.max_buffered_messages);
    }
}
