//! What the hub and the clients do with a room's MLS operational parameters (room-policy-03 §7,
//! `ROOM-policy-operational`; the struct is [`mimi_wire::operational::OperationalParameters`]).
//!
//! The hub sees every handshake (they are PublicMessages), so it enforces what it can see:
//! - `ROOM-policy-operational-external-commit`: no external commit (join or resync) when
//!   `external_commit_allowed` is false;
//! - `ROOM-policy-operational-handshake`: a handshake in a wire format `handshake_formats` does
//!   not list is refused, and so is a list this hub cannot follow (without PublicMessage:
//!   SemiPrivateMessage is not implemented);
//! - `ROOM-policy-operational-proposals`: a proposal of a type `forbidden_capabilities` lists,
//!   sent alone or in a commit;
//! - `ROOM-policy-operational-leaves`: every new leaf (an Add's KeyPackage, an external
//!   joiner, an Update, a committer's UpdatePath) supports the mandatory versions, cipher
//!   suites, extensions, proposals and credentials, and neither has a forbidden credential
//!   type nor carries a forbidden extension; when the parameters change, every member's leaf
//!   is checked against the new ones;
//! - `ROOM-policy-operational-kp-lifetime`: an added KeyPackage's lifetime is at most
//!   `max_kp_lifetime` seconds;
//! - the room's own cipher suite and protocol version may not be forbidden.
//!
//! Clients apply the `app_message_policy` to their MLS group (`ROOM-policy-operational-app`:
//! [`join_config`]: past epochs kept, padding, ratchet skip-ahead), from the join on and
//! again whenever a commit changes the parameters.
//!
//! Listed capabilities are what a leaf *supports*; a forbidden capability is one no member may
//! *use*, so a leaf that merely advertises a forbidden extension or proposal type is not
//! refused (spec-notes/decisions.md). RFC 9420 §7.2's default extension types (1–5) and
//! proposal types (1–7) need not be listed in a leaf's capabilities and count as supported.

use mimi_wire::operational::{ExtendedCapabilities, OperationalParameters};
use openmls::prelude::*;
use openmls::treesync::LeafNodeSource;

/// The code points of one leaf the parameters speak about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafView {
    /// Supported protocol versions.
    pub versions: Vec<u16>,
    /// Supported cipher suites.
    pub cipher_suites: Vec<u16>,
    /// Supported extension types.
    pub extensions: Vec<u16>,
    /// Supported proposal types.
    pub proposals: Vec<u16>,
    /// Supported credential types.
    pub credentials: Vec<u16>,
    /// The leaf's credential type.
    pub credential_type: u16,
    /// The extension types the leaf carries.
    pub leaf_extensions: Vec<u16>,
    /// `(not_before, not_after)` when the leaf came in a KeyPackage.
    pub lifetime: Option<(u64, u64)>,
}

fn version(v: ProtocolVersion) -> u16 {
    match v {
        ProtocolVersion::Mls10 => 1,
        ProtocolVersion::Other(x) => x,
    }
}

/// The code points of an openmls leaf.
pub fn leaf_view(leaf: &LeafNode) -> LeafView {
    let c = leaf.capabilities();
    LeafView {
        versions: c.versions().iter().map(|v| version(*v)).collect(),
        cipher_suites: c.ciphersuites().iter().map(|s| s.value()).collect(),
        extensions: c.extensions().iter().map(|e| u16::from(*e)).collect(),
        proposals: c.proposals().iter().map(|p| u16::from(*p)).collect(),
        credentials: c.credentials().iter().map(|t| u16::from(*t)).collect(),
        credential_type: u16::from(leaf.credential().credential_type()),
        leaf_extensions: leaf
            .extensions()
            .iter()
            .map(|e| u16::from(e.extension_type()))
            .collect(),
        lifetime: match leaf.leaf_node_source() {
            LeafNodeSource::KeyPackage(l) => Some((l.not_before(), l.not_after())),
            _ => None,
        },
    }
}

fn missing(required: &[u16], have: &[u16], implied: impl Fn(u16) -> bool) -> Option<u16> {
    required
        .iter()
        .copied()
        .find(|x| !implied(*x) && !have.contains(x))
}

/// Checks one leaf (of `who`) against the parameters (`ROOM-policy-operational-leaves`); with
/// `added_key_package`, also the KeyPackage lifetime (`ROOM-policy-operational-kp-lifetime`).
pub fn check_leaf(
    p: &OperationalParameters,
    who: &str,
    leaf: &LeafView,
    added_key_package: bool,
) -> Result<(), String> {
    let m: &ExtendedCapabilities = &p.mandatory_capabilities;
    let f: &ExtendedCapabilities = &p.forbidden_capabilities;
    let none = |_: u16| false;
    let checks = [
        (
            "protocol version",
            missing(&m.versions, &leaf.versions, none),
        ),
        (
            "cipher suite",
            missing(&m.cipher_suites, &leaf.cipher_suites, none),
        ),
        (
            "extension type",
            missing(&m.extensions, &leaf.extensions, |x| (1..=5).contains(&x)),
        ),
        (
            "proposal type",
            missing(&m.proposals, &leaf.proposals, |x| (1..=7).contains(&x)),
        ),
        (
            "credential type",
            missing(&m.credentials, &leaf.credentials, none),
        ),
    ];
    for (what, gap) in checks {
        if let Some(x) = gap {
            return Err(format!(
                "{who}'s leaf does not support the {what} 0x{x:04x} the room's MLS operational \
                 parameters make mandatory (room-policy-03 §7)"
            ));
        }
    }
    if f.credentials.contains(&leaf.credential_type) {
        return Err(format!(
            "{who}'s credential type 0x{:04x} is forbidden by the room's MLS operational \
             parameters (room-policy-03 §7)",
            leaf.credential_type
        ));
    }
    if let Some(x) = leaf
        .leaf_extensions
        .iter()
        .find(|x| f.extensions.contains(x))
    {
        return Err(format!(
            "{who}'s leaf carries the extension 0x{x:04x}, which the room's MLS operational \
             parameters forbid (room-policy-03 §7)"
        ));
    }
    if added_key_package
        && p.max_kp_lifetime > 0
        && let Some((from, to)) = leaf.lifetime
        && to.saturating_sub(from) > p.max_kp_lifetime
    {
        return Err(format!(
            "{who}'s KeyPackage is valid for {} s; the room's MLS operational parameters allow \
             at most {} s (max_kp_lifetime, room-policy-03 §7)",
            to.saturating_sub(from),
            p.max_kp_lifetime
        ));
    }
    Ok(())
}

/// Whether a proposal of this type may be used (`ROOM-policy-operational-proposals`).
pub fn check_proposal_type(p: &OperationalParameters, proposal_type: u16) -> Result<(), String> {
    if p.forbidden_capabilities.proposals.contains(&proposal_type) {
        return Err(format!(
            "proposals of type 0x{proposal_type:04x} are forbidden by the room's MLS \
             operational parameters (room-policy-03 §7)"
        ));
    }
    Ok(())
}

/// Whether a handshake in this wire format may be sent (`ROOM-policy-operational-handshake`).
pub fn check_handshake_format(p: &OperationalParameters, wire_format: u16) -> Result<(), String> {
    if !p.handshake_formats.is_empty() && !p.handshake_formats.contains(&wire_format) {
        return Err(format!(
            "handshakes as {} are not allowed by the room's MLS operational parameters \
             (handshake_formats, room-policy-03 §7)",
            mimi_wire::operational::wire_format_name(wire_format)
        ));
    }
    Ok(())
}

/// Whether parameters a commit sets are ones this room and this hub can live with: the room's
/// own cipher suite and version not forbidden, and handshakes the hub can follow
/// (PublicMessage; SemiPrivateMessage is not implemented).
pub fn check_settable(
    p: &OperationalParameters,
    cipher_suite: u16,
    protocol_version: u16,
) -> Result<(), String> {
    let f = &p.forbidden_capabilities;
    if f.cipher_suites.contains(&cipher_suite) {
        return Err(format!(
            "the room's MLS operational parameters may not forbid its own cipher suite \
             0x{cipher_suite:04x}"
        ));
    }
    if f.versions.contains(&protocol_version) {
        return Err(format!(
            "the room's MLS operational parameters may not forbid its own protocol version \
             0x{protocol_version:04x}"
        ));
    }
    let public = mimi_wire::operational::WIRE_FORMAT_PUBLIC_MESSAGE;
    if !p.handshake_formats.is_empty() && !p.handshake_formats.contains(&public) {
        return Err(
            "handshake_formats without PublicMessage: this hub follows a room only through \
             PublicMessage handshakes (SemiPrivateMessage is not implemented)"
                .into(),
        );
    }
    Ok(())
}

/// The MLS group configuration a client uses in a room (`ROOM-policy-operational-app`):
/// `epoch_tolerance` past epochs kept for late messages, application messages padded to
/// `pad_to_size`, and a sender's ratchet moved at most `max_generations_skipahead` forward;
/// each 0 (no position), or no parameters, keeps our default.
pub fn join_config(p: Option<&OperationalParameters>) -> MlsGroupJoinConfig {
    let a = p.map(|p| p.app_message_policy).unwrap_or_default();
    let ratchet = SenderRatchetConfiguration::default();
    let mut b = MlsGroupJoinConfig::builder()
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(if a.epoch_tolerance > 0 {
            usize::from(a.epoch_tolerance)
        } else {
            crate::client::PAST_EPOCHS
        });
    if a.pad_to_size > 0 {
        b = b.padding_size(usize::from(a.pad_to_size));
    }
    if a.max_generations_skipahead > 0 {
        b = b.sender_ratchet_configuration(SenderRatchetConfiguration::new(
            ratchet.out_of_order_tolerance(),
            a.max_generations_skipahead,
        ));
    }
    b.build()
}
