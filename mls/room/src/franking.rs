//! Message franking (protocol-06 §5.4.1), the room layer's part: the client's `franking_tag`
//! over MIMI content (its salt is the HMAC key), the hub's frank, the receiver's checks and
//! the hub's check of a reported message. The wire parts (FrankAAD, FrankingAgentData, the
//! HMACs, the FrankingIntegrityTBS signature) are mimi-wire's. Requirement IDs
//! (`PROTO-5.4.1-frank-*`, `PROTO-5.9-report-frank`) are listed in `spec-notes/node.md`.

use crate::mls::CIPHERSUITE;
use mimi_content::MimiContent;
use mimi_wire::abuse::AbusiveMessage;
use mimi_wire::codec::{Body, Writer};
use mimi_wire::common::{CipherSuite, Frank};
use mimi_wire::franking::{
    FRANK_AAD, FRANKING_AGENT, FrankAad, FrankingAgentData, franking_tag, server_frank,
};
use mimi_wire::id::{MimiUri, ProviderId, RoomUri, UserUri};
use mimi_wire::sign::{sign_frank, verify_frank};
use mimi_wire::submit::ServerFrankingContext;
use openmls::prelude::BasicCredential;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;

/// The cipher suite of franks: the rooms' own (protocol-06 §5.4.1.3: the franking signature
/// uses the group's suite).
pub const FRANK_SUITE: CipherSuite = CipherSuite(CIPHERSUITE as u16);

/// Why a frank is not good. Each names the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrankError {
    /// The content is not MIMI content (no salt to recompute the tag with).
    #[error("the message content is not MIMI content: {0} (PROTO-5.4.1-frank-tag)")]
    Content(String),
    /// The content does not name its sender or room in extension keys 1 and 2.
    #[error("the message content does not name its {0} (extension key {1}; PROTO-5.4.1-frank-aad)")]
    MissingUri(&'static str, u8),
    /// A URI in the content is malformed.
    #[error("the {0} in the message content is malformed: {1}")]
    BadUri(&'static str, String),
    /// The franking tag recomputed from the content and its salt differs.
    #[error(
        "the franking tag does not match the content and its salt (altered content or tag; PROTO-5.4.1-frank-tag)"
    )]
    TagMismatch,
    /// The content names another sender than the one who sent it.
    #[error("the content names sender {named} but {actual} sent it (PROTO-5.4.1-frank-sender)")]
    SenderMismatch {
        /// In the content.
        named: String,
        /// The sender.
        actual: String,
    },
    /// The content names another room.
    #[error("the content names room {named}, not {room} (PROTO-5.4.1-frank-room)")]
    RoomMismatch {
        /// In the content.
        named: String,
        /// The room.
        room: String,
    },
    /// The frank's suite is not the room's.
    #[error("the frank's cipher suite {0:#06x} is not the room's 0x0001 (PROTO-5.4.1-frank-suite)")]
    Suite(u16),
    /// The signature over FrankingIntegrityTBS does not verify.
    #[error(
        "the frank's integrity signature does not verify over the rebuilt context (PROTO-5.4.1-frank-signature)"
    )]
    Signature,
    /// The server frank is not the hub's HMAC of this tag and context.
    #[error(
        "the server frank is not this hub's for this content, sender, room and time (forged or altered; PROTO-5.9-report-frank)"
    )]
    ServerFrank,
    /// The room's franking agent is missing, malformed or not the hub.
    #[error("franking agent: {0} (PROTO-5.4.1-frank-agent)")]
    Agent(String),
    /// The room franks messages, but this one carries no FrankAAD or no frank.
    #[error("{0} (PROTO-5.4.1-frank-required)")]
    Missing(String),
    /// Signing failed (our side).
    #[error("signing the frank: {0}")]
    Sign(String),
}

/// What a receiver found about a message's frank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrankCheck {
    /// The frank verifies: keep it and its context with the message (for reportAbuse).
    Verified {
        /// The hub's frank.
        frank: Frank,
        /// The context it was made over.
        context: ServerFrankingContext,
    },
    /// The room does not frank (no franking agent) and the message carries no frank.
    Unfranked,
    /// The frank fails a check, or is missing where the room franks: the message is flagged.
    Invalid(String),
}

impl FrankCheck {
    /// A short name for displays and storage: `verified`, `unfranked`, `invalid`.
    pub fn name(&self) -> &'static str {
        match self {
            FrankCheck::Verified { .. } => "verified",
            FrankCheck::Unfranked => "unfranked",
            FrankCheck::Invalid(_) => "invalid",
        }
    }
}

/// The `frank_aad` for MIMI content bytes (`PROTO-5.4.1-frank-aad`): `franking_tag =
/// HMAC_SHA256(salt, content)` with the content's own 16-octet salt. `None` when the bytes are
/// not MIMI content (there is no salt to key the HMAC with).
pub fn frank_aad_for(content: &[u8]) -> Option<FrankAad> {
    let c = MimiContent::decode(content).ok()?;
    Some(FrankAad {
        franking_tag: franking_tag(&c.salt, content),
    })
}

/// The GroupContext component of a franked room (`PROTO-5.4.1-frank-agent`):
/// `franking_agent` (0x0021) naming the hub's franking key. Not `safe_aad` (0x0002): with it
/// openmls 0.9.2 refuses every message without a SafeAAD prefix, and its external proposals
/// (the hub's Removes) cannot have one (`spec-notes/decisions.md`, "Franking").
pub fn room_components(agent: &FrankingAgentData) -> [(u16, Vec<u8>); 1] {
    [(FRANKING_AGENT, agent.encode())]
}

/// The franking signature key a room's `franking_agent` component names, if it has one
/// that decodes (the hub picks the key it franks that room's messages with).
pub fn agent_key(dictionary_entry: Option<&[u8]>) -> Option<Vec<u8>> {
    let agent = FrankingAgentData::decode(dictionary_entry?).ok()?;
    Some(agent.franking_signature_key)
}

/// The `authenticated_data` of a franked message: a SafeAAD struct with the one `frank_aad`
/// item (mls-extensions-09's encoding).
pub fn safe_aad(aad: &FrankAad) -> Vec<u8> {
    let mut w = Writer::new();
    w.vector(&[aad], |w, a| {
        w.u16(FRANK_AAD);
        w.opaque(&a.encode());
    });
    w.finish()
}

/// A franking agent named by the hub's ExternalSender (its MLS signature key and credential).
/// FrankingAgentData is shaped like RFC 9420's ExternalSender, so the one's encoding is the
/// other's. mimi-node hubs have a franking key of their own (`PROTO-5.4.1-frank-agent-key`,
/// `spec-notes/decisions.md`) and hand it out; this is the fallback of
/// [`crate::client::Device::create_room_in`] for callers that have only the ExternalSender.
pub fn agent_of(
    sender: &openmls::prelude::ExternalSender,
) -> Result<FrankingAgentData, FrankError> {
    let bytes = sender
        .tls_serialize_detached()
        .map_err(|e| FrankError::Agent(e.to_string()))?;
    FrankingAgentData::decode(&bytes).map_err(|e| FrankError::Agent(e.to_string()))
}

/// The hub's frank of a message (`PROTO-5.4.1-frank-hub`): `server_frank =
/// HMAC_SHA256(hub_key, franking_tag || context)` and the FrankingIntegrityTBS signature.
pub fn make_frank(
    hub_key: &[u8],
    signer: &impl Signer,
    tag: &FrankAad,
    context: &ServerFrankingContext,
) -> Result<Frank, FrankError> {
    let sf = server_frank(hub_key, &tag.franking_tag, context);
    let sig = sign_frank(signer, &sf, FRANK_SUITE, context)
        .map_err(|e| FrankError::Sign(e.to_string()))?;
    Ok(Frank {
        server_frank: sf,
        franking_signature_ciphersuite: FRANK_SUITE,
        franking_integrity_signature: sig,
    })
}

/// The franking tag and context rebuilt from decrypted content: the tag from its salt, the
/// sender and room from extension keys 1 and 2, the time from the hub.
pub fn rebuild(
    content: &[u8],
    accepted_timestamp: u64,
) -> Result<(FrankAad, ServerFrankingContext), FrankError> {
    let c = MimiContent::decode(content).map_err(|e| FrankError::Content(e.to_string()))?;
    let sender = c
        .extensions
        .sender_uri()
        .ok_or(FrankError::MissingUri("sender URI", 1))?;
    let room = c
        .extensions
        .room_uri()
        .ok_or(FrankError::MissingUri("room URI", 2))?;
    let context = ServerFrankingContext {
        sender_uri: MimiUri::parse(sender)
            .map_err(|e| FrankError::BadUri("sender URI", e.to_string()))?,
        room_uri: RoomUri::parse(room)
            .map_err(|e| FrankError::BadUri("room URI", e.to_string()))?,
        accepted_timestamp,
    };
    Ok((
        FrankAad {
            franking_tag: franking_tag(&c.salt, content),
        },
        context,
    ))
}

/// What a receiver has of one application message.
pub struct Received<'a> {
    /// The room.
    pub room: &'a RoomUri,
    /// The sending user (from its leaf credential).
    pub sender: &'a UserUri,
    /// The decrypted content.
    pub content: &'a [u8],
    /// The FrankAAD of its Safe AAD, if any.
    pub aad: Option<&'a FrankAad>,
    /// The hub's frank, if any.
    pub frank: Option<&'a Frank>,
    /// The hub's accepted timestamp.
    pub accepted_timestamp: u64,
    /// The room's `franking_agent` component, if any (undecoded).
    pub agent: Option<&'a [u8]>,
}

/// [`verify_received`] from what a device has after decrypting, whatever its MLS library: the
/// sender's client (its user is the context's sender), the message's `frank_aad` as decoded
/// from its SafeAAD (or why it did not decode), the hub's frank and the room's
/// `franking_agent` component.
#[allow(clippy::too_many_arguments)]
pub fn verify_on_device(
    crypto: &impl OpenMlsCrypto,
    room: &RoomUri,
    sender: &mimi_wire::id::ClientUri,
    content: &[u8],
    aad: Result<Option<FrankAad>, mimi_wire::WireError>,
    frank: Option<&Frank>,
    accepted_timestamp: u64,
    agent: Option<&[u8]>,
) -> FrankCheck {
    let aad = match aad {
        Ok(a) => a,
        Err(e) => return FrankCheck::Invalid(format!("the frank_aad does not decode: {e}")),
    };
    let Some(user) = sender.user() else {
        return FrankCheck::Invalid(format!("{sender} does not name its user"));
    };
    verify_received(
        crypto,
        &Received {
            room,
            sender: &user,
            content,
            aad: aad.as_ref(),
            frank,
            accepted_timestamp,
            agent,
        },
    )
}

/// The receiver's checks (`PROTO-5.4.1-frank-verify`, protocol-06 §5.4.1.3).
pub fn verify_received(crypto: &impl OpenMlsCrypto, r: &Received<'_>) -> FrankCheck {
    match check_received(crypto, r) {
        Ok(Some((frank, context))) => FrankCheck::Verified { frank, context },
        Ok(None) => FrankCheck::Unfranked,
        Err(e) => FrankCheck::Invalid(e.to_string()),
    }
}

fn check_received(
    crypto: &impl OpenMlsCrypto,
    r: &Received<'_>,
) -> Result<Option<(Frank, ServerFrankingContext)>, FrankError> {
    let Some(agent) = r.agent else {
        // A room without a franking agent: nothing to verify a frank with.
        return match r.frank {
            None => Ok(None),
            Some(_) => Err(FrankError::Agent(
                "the message has a frank but the room names no franking agent".into(),
            )),
        };
    };
    // PROTO-5.4.1-frank-required: in a franked room every message carries both.
    let aad = r.aad.ok_or_else(|| {
        FrankError::Missing("the room franks messages but this one has no frank_aad".into())
    })?;
    let frank = r.frank.ok_or_else(|| {
        FrankError::Missing("the room franks messages but the hub sent no frank".into())
    })?;
    // PROTO-5.4.1-frank-agent: the agent decodes and is the room's hub.
    let agent = FrankingAgentData::decode(agent).map_err(|e| FrankError::Agent(e.to_string()))?;
    check_agent(&agent, &r.room.provider())?;
    // PROTO-5.4.1-frank-suite
    if frank.franking_signature_ciphersuite != FRANK_SUITE {
        return Err(FrankError::Suite(frank.franking_signature_ciphersuite.0));
    }
    let (tag, context) = rebuild(r.content, r.accepted_timestamp)?;
    // PROTO-5.4.1-frank-tag: the tag in the AAD is the one of this content and salt.
    if !ct_eq(&tag.franking_tag, &aad.franking_tag) {
        return Err(FrankError::TagMismatch);
    }
    // PROTO-5.4.1-frank-sender
    if context.sender_uri.as_str() != r.sender.as_str() {
        return Err(FrankError::SenderMismatch {
            named: context.sender_uri.to_string(),
            actual: r.sender.to_string(),
        });
    }
    // PROTO-5.4.1-frank-room
    if context.room_uri != *r.room {
        return Err(FrankError::RoomMismatch {
            named: context.room_uri.to_string(),
            room: r.room.to_string(),
        });
    }
    // PROTO-5.4.1-frank-signature
    verify_frank(crypto, &agent.franking_signature_key, frank, &context)
        .map_err(|_| FrankError::Signature)?;
    Ok(Some((frank.clone(), context)))
}

/// `PROTO-5.4.1-frank-agent`: the agent's credential is a BasicCredential `mimi://<hub>`.
fn check_agent(agent: &FrankingAgentData, hub: &ProviderId) -> Result<(), FrankError> {
    let cred = agent
        .credential
        .parse()
        .map_err(|e| FrankError::Agent(e.to_string()))?;
    let basic = BasicCredential::try_from(cred)
        .map_err(|_| FrankError::Agent("the credential is not a basic credential".into()))?;
    let want = format!("mimi://{hub}");
    if basic.identity() != want.as_bytes() {
        return Err(FrankError::Agent(format!(
            "the credential names {:?}, not the room's hub {want}",
            String::from_utf8_lossy(basic.identity())
        )));
    }
    Ok(())
}

/// The hub's check of a reported message (`PROTO-5.9-report-frank`, protocol-06 §5.9): the
/// tag and context rebuilt from the reported content (its salt, sender and room) and the
/// reported time, the server frank recomputed with the hub's key, the signature checked with
/// the hub's franking keys (one of them must verify it: a mimi-node hub franks each room with
/// the key the room names, its franking key or its MLS key, `PROTO-5.4.1-frank-agent-key`);
/// the content must name this room and the alleged abuser. Returns the context on success.
pub fn check_reported(
    crypto: &impl OpenMlsCrypto,
    hub_key: &[u8],
    franking_public_keys: &[&[u8]],
    room: &RoomUri,
    alleged_abuser: &UserUri,
    m: &AbusiveMessage,
) -> Result<ServerFrankingContext, FrankError> {
    if m.frank.franking_signature_ciphersuite != FRANK_SUITE {
        return Err(FrankError::Suite(m.frank.franking_signature_ciphersuite.0));
    }
    let (tag, context) = rebuild(&m.message_content, m.accepted_timestamp)?;
    if context.room_uri != *room {
        return Err(FrankError::RoomMismatch {
            named: context.room_uri.to_string(),
            room: room.to_string(),
        });
    }
    if context.sender_uri.as_str() != alleged_abuser.as_str() {
        return Err(FrankError::SenderMismatch {
            named: context.sender_uri.to_string(),
            actual: alleged_abuser.to_string(),
        });
    }
    let expected = server_frank(hub_key, &tag.franking_tag, &context);
    if !ct_eq(&expected, &m.frank.server_frank) {
        return Err(FrankError::ServerFrank);
    }
    if !franking_public_keys
        .iter()
        .any(|k| verify_frank(crypto, k, &m.frank, &context).is_ok())
    {
        return Err(FrankError::Signature);
    }
    Ok(context)
}

/// Equality of two MACs without an early exit.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
