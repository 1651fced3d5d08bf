//! Message franking (protocol-06 §5.4.1): the `frank_aad` Safe AAD component (0x0020), the
//! `franking_agent` GroupContext component (0x0021), and the two HMACs — the client's
//! `franking_tag` and the hub's `server_frank`. The signature over FrankingIntegrityTBS is in
//! [`crate::sign`].

use crate::codec::{Body, Mls, Reader, WireError, Writer};
use crate::submit::ServerFrankingContext;
use openmls::prelude::Credential;
use sha2::{Digest, Sha256};

/// Component ID of `frank_aad` (protocol-06 §10.1).
pub const FRANK_AAD: u16 = 0x0020;
/// Component ID of `franking_agent` (protocol-06 §10.2, registered as
/// `franking_signature_key`).
pub const FRANKING_AGENT: u16 = 0x0021;

/// `FrankAAD`: the Safe AAD item a client puts in a franked PrivateMessage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrankAad {
    /// `uint8 franking_tag[32]`.
    pub franking_tag: [u8; 32],
}

impl Body for FrankAad {
    const NAME: &'static str = "FrankAAD";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(Self {
            franking_tag: r.array("FrankAAD.franking_tag")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.raw(&self.franking_tag);
    }
}

/// `FrankingAgentData` (and `FrankingAgentUpdate`, the same format): the hub's franking key in
/// the GroupContext, shaped like RFC 9420's ExternalSender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrankingAgentData {
    /// `SignaturePublicKey franking_signature_key` (the group cipher suite's algorithm).
    pub franking_signature_key: Vec<u8>,
    /// `Credential credential`: the hub's.
    pub credential: Mls<Credential>,
}

impl Body for FrankingAgentData {
    const NAME: &'static str = "FrankingAgentData";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let opaque = r.limits.max_opaque;
        Ok(Self {
            franking_signature_key: r.opaque(opaque, "FrankingAgentData.franking_signature_key")?,
            credential: r.mls("FrankingAgentData.credential")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.opaque(&self.franking_signature_key);
        w.raw(self.credential.as_bytes());
    }
}

/// HMAC-SHA256 (RFC 2104), the MAC §5.4.1 names.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.map(|x| x ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `franking_tag = HMAC_SHA256(salt, application_data)` (§5.4.1.1): `salt` is the MIMI content's
/// 16-octet salt, `application_data` the whole application data of the PrivateMessage
/// (including the ApplicationFraming media type when content advertisement is in use).
pub fn franking_tag(salt: &[u8], application_data: &[u8]) -> [u8; 32] {
    hmac_sha256(salt, application_data)
}

/// `server_frank = HMAC_SHA256(hub_key, franking_tag || context)` (§5.4.1.2), with the
/// context's TLS encoding.
pub fn server_frank(
    hub_key: &[u8],
    franking_tag: &[u8; 32],
    context: &ServerFrankingContext,
) -> [u8; 32] {
    let mut m = franking_tag.to_vec();
    m.extend_from_slice(&context.encode());
    hmac_sha256(hub_key, &m)
}

/// Component ID of `safe_aad` (mls-extensions-09): its GroupContext value lists the components
/// whose items a message's `authenticated_data` carries in a SafeAAD prefix.
pub const SAFE_AAD: u16 = 0x0002;

/// `struct { ComponentID component_ids<V>; } ComponentsList;` (mls-extensions-09), the value of
/// the `safe_aad` GroupContext component.
pub fn components_list(ids: &[u16]) -> Vec<u8> {
    let mut w = Writer::new();
    w.vector(ids, |w, id| w.u16(*id));
    w.finish()
}

/// One `SafeAADItem` (mls-extensions-09): `ComponentID component_id; opaque aad_item_data<V>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafeAadItem {
    /// `component_id`.
    pub component_id: u16,
    /// `aad_item_data`.
    pub data: Vec<u8>,
}

/// The SafeAAD prefix of an `authenticated_data` (`struct { SafeAADItem aad_items<V>; }`):
/// its items, and how many octets it took (the rest is the application's own AAD). Items must
/// be sorted by component ID without repeats.
pub fn read_safe_aad(authenticated_data: &[u8]) -> Result<(Vec<SafeAadItem>, usize), WireError> {
    let mut r = Reader::new(authenticated_data, crate::Limits::DEFAULT);
    let opaque = r.limits.max_opaque;
    let mut last: Option<u16> = None;
    let items = r.vector("SafeAAD.aad_items", |r| {
        let component_id = r.u16("SafeAADItem.component_id")?;
        if last.is_some_and(|l| l >= component_id) {
            return Err(r.error_back(
                2,
                crate::codec::WireErrorKind::BadValue(u64::from(component_id)),
                "SafeAADItem.component_id (sorted, unique)",
            ));
        }
        last = Some(component_id);
        Ok(SafeAadItem {
            component_id,
            data: r.opaque(opaque, "SafeAADItem.aad_item_data")?,
        })
    })?;
    let used = authenticated_data.len() - r.remaining();
    Ok((items, used))
}

/// The `FrankAAD` of a message's `authenticated_data`, if its SafeAAD prefix has a `frank_aad`
/// item (`PROTO-5.4.1-frank-aad`). An empty `authenticated_data` has none; a prefix that does
/// not decode, or a `frank_aad` item that is not a FrankAAD, is an error.
pub fn frank_aad_of(authenticated_data: &[u8]) -> Result<Option<FrankAad>, WireError> {
    if authenticated_data.is_empty() {
        return Ok(None);
    }
    let (items, _) = read_safe_aad(authenticated_data)?;
    items
        .iter()
        .find(|i| i.component_id == FRANK_AAD)
        .map(|i| FrankAad::decode(&i.data))
        .transpose()
}
