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
