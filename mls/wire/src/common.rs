//! Types shared by several bodies (protocol-06 §5.2, RFC 9420, mls-extensions-09,
//! ratchet-tree-options-03).

use crate::codec::{Mls, Reader, WireError, WireErrorKind, Writer};
use crate::id::{IdError, MimiUri, RoomUri, UserUri};
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::RatchetTreeIn;

/// `enum { reserved(0), mls10(1), (255) } Protocol;` (open: unknown values survive decoding
/// where the draft's select allows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    /// MLS 1.0, the only protocol the draft defines.
    pub const MLS10: Protocol = Protocol(1);

    /// Reads the protocol octet; only `mls10` is followed by anything we can read
    /// (`WIRE-5-protocol`).
    pub fn read_mls10(r: &mut Reader<'_>, field: &'static str) -> Result<Protocol, WireError> {
        let p = Protocol(r.u8(field)?);
        if p != Protocol::MLS10 {
            return Err(r.error_back(1, WireErrorKind::BadValue(u64::from(p.0)), field));
        }
        Ok(p)
    }
}

/// An MLS cipher suite code point (RFC 9420 §17.1), open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    pub const MLS_128_X25519_AES128GCM_SHA256_ED25519: CipherSuite = CipherSuite(1);
}

/// Reads an `IdentifierUri` (`struct { opaque uri<V>; }`) and parses it as the wanted kind.
pub fn read_uri<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    parse: impl FnOnce(&str) -> Result<T, IdError>,
) -> Result<T, WireError> {
    let limit = r.limits.max_uri;
    let at = r.remaining();
    let text = r.text(limit, field)?;
    let bad = |r: &Reader<'_>, msg: String| {
        let mut e = r.error(WireErrorKind::BadUri(msg), field);
        e.offset = e.offset.saturating_sub(at - r.remaining());
        e
    };
    // WIRE-id-normal-on-wire: identifiers travel in normal form, so that what is signed
    // (KeyMaterialRequestTBS, ...) and what we re-encode are the same bytes.
    if !text.is_empty()
        && let Ok(u) = MimiUri::parse(&text)
        && u.as_str() != text
    {
        return Err(bad(
            r,
            format!("{text:?} is not in normal form; send {:?}", u.as_str()),
        ));
    }
    parse(&text).map_err(|e| bad(r, e.to_string()))
}

/// Reads a user URI.
pub fn read_user(r: &mut Reader<'_>, field: &'static str) -> Result<UserUri, WireError> {
    read_uri(r, field, UserUri::parse)
}

/// Reads a room URI.
pub fn read_room(r: &mut Reader<'_>, field: &'static str) -> Result<RoomUri, WireError> {
    read_uri(r, field, RoomUri::parse)
}

/// Reads any MIMI URI.
pub fn read_any_uri(r: &mut Reader<'_>, field: &'static str) -> Result<MimiUri, WireError> {
    read_uri(r, field, MimiUri::parse)
}

/// `AppDataDictionary` (mls-extensions-09): `ComponentData component_data<V>`, sorted by
/// component ID with at most one entry each (`WIRE-ext-dictionary-order`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppDataDictionary {
    /// `(component_id, data)` in ascending order of ID.
    pub entries: Vec<(u16, Vec<u8>)>,
}

impl AppDataDictionary {
    /// Reads one, refusing unsorted or repeated component IDs.
    pub fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, WireError> {
        let limit = r.limits.max_opaque;
        let entries = r.vector(field, |r| Ok((r.u16(field)?, r.opaque(limit, field)?)))?;
        if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(r.error(WireErrorKind::BadValue(0), field));
        }
        Ok(Self { entries })
    }

    /// Writes it.
    pub fn write(&self, w: &mut Writer) {
        w.vector(&self.entries, |w, (id, data)| {
            w.u16(*id);
            w.opaque(data);
        });
    }
}

/// `Frank` (protocol-06 §5.4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frank {
    /// `uint8 server_frank[32]`.
    pub server_frank: [u8; 32],
    /// `franking_signature_ciphersuite`.
    pub franking_signature_ciphersuite: CipherSuite,
    /// `opaque franking_integrity_signature<V>`.
    pub franking_integrity_signature: Vec<u8>,
}

impl Frank {
    /// Reads one.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let limit = r.limits.max_opaque;
        Ok(Self {
            server_frank: r.array("Frank.server_frank")?,
            franking_signature_ciphersuite: CipherSuite(
                r.u16("Frank.franking_signature_ciphersuite")?,
            ),
            franking_integrity_signature: r.opaque(limit, "Frank.franking_integrity_signature")?,
        })
    }

    /// Writes it.
    pub fn write(&self, w: &mut Writer) {
        w.raw(&self.server_frank);
        w.u16(self.franking_signature_ciphersuite.0);
        w.opaque(&self.franking_integrity_signature);
    }
}

/// `RatchetTreeOption` (ratchet-tree-options-03).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RatchetTreeOption {
    /// `full(1)`: the tree itself (`optional<Node> ratchet_tree<V>` as in RFC 9420's
    /// ratchet_tree extension; see spec-notes).
    Full(Mls<RatchetTreeIn>),
    /// `httpsUri(2)`.
    HttpsUri {
        /// Where to fetch it.
        url: String,
        /// Its signature.
        tree_signature: Vec<u8>,
    },
    /// `outOfBand(3)`.
    OutOfBand {
        /// Its signature.
        tree_signature: Vec<u8>,
    },
    /// `distributionService(4)`: the hub rebuilds the tree.
    DistributionService,
}

impl RatchetTreeOption {
    /// Reads one.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "RatchetTreeOption";
        let (uri, opaque) = (r.limits.max_uri, r.limits.max_opaque);
        Ok(match r.u8(f)? {
            1 => Self::Full(r.mls("RatchetTreeOption.ratchet_tree")?),
            2 => Self::HttpsUri {
                url: r.text(uri, "RatchetTreeOption.ratchet_tree_url")?,
                tree_signature: r.opaque(opaque, "RatchetTreeOption.tree_signature")?,
            },
            3 => Self::OutOfBand {
                tree_signature: r.opaque(opaque, "RatchetTreeOption.tree_signature")?,
            },
            4 => Self::DistributionService,
            other => return Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
        })
    }

    /// Writes it.
    pub fn write(&self, w: &mut Writer) {
        match self {
            Self::Full(t) => {
                w.u8(1);
                w.raw(t.as_bytes());
            }
            Self::HttpsUri {
                url,
                tree_signature,
            } => {
                w.u8(2);
                w.opaque(url.as_bytes());
                w.opaque(tree_signature);
            }
            Self::OutOfBand { tree_signature } => {
                w.u8(3);
                w.opaque(tree_signature);
            }
            Self::DistributionService => w.u8(4),
        }
    }
}

/// `PartialGroupInfo` (ratchet-tree-options-03), kept as read: openmls cannot use it, so the
/// hub answers a commit that carries one with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialGroupInfo {
    /// `RatchetTreePresence ratchet_tree_presence`.
    pub ratchet_tree_presence: u8,
    /// The content of `Extension group_info_extensions<V>`, undecoded.
    pub group_info_extensions: Vec<u8>,
    /// `opaque signature<V>`.
    pub signature: Vec<u8>,
}

/// `GroupInfoOption`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupInfoOption {
    /// `full(1)`: a GroupInfo (without the ratchet_tree extension).
    Full(Mls<VerifiableGroupInfo>),
    /// `partial(2)`.
    Partial(PartialGroupInfo),
}

impl GroupInfoOption {
    /// Reads one.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "GroupInfoOption";
        let opaque = r.limits.max_opaque;
        Ok(match r.u8(f)? {
            1 => Self::Full(r.mls("GroupInfoOption.groupInfo")?),
            2 => Self::Partial(PartialGroupInfo {
                ratchet_tree_presence: r.u8("PartialGroupInfo.ratchet_tree_presence")?,
                group_info_extensions: r
                    .opaque(opaque, "PartialGroupInfo.group_info_extensions")?,
                signature: r.opaque(opaque, "PartialGroupInfo.signature")?,
            }),
            other => return Err(r.error(WireErrorKind::BadValue(u64::from(other)), f)),
        })
    }

    /// Writes it.
    pub fn write(&self, w: &mut Writer) {
        match self {
            Self::Full(gi) => {
                w.u8(1);
                w.raw(gi.as_bytes());
            }
            Self::Partial(p) => {
                w.u8(2);
                w.u8(p.ratchet_tree_presence);
                w.opaque(&p.group_info_extensions);
                w.opaque(&p.signature);
            }
        }
    }
}

/// `HPKECiphertext` (RFC 9420 §5.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpkeCiphertext {
    /// `opaque kem_output<V>`.
    pub kem_output: Vec<u8>,
    /// `opaque ciphertext<V>`.
    pub ciphertext: Vec<u8>,
}

impl HpkeCiphertext {
    /// Reads one (the ciphertext may be as long as an MLS object).
    pub fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let (opaque, mls) = (r.limits.max_opaque, r.limits.max_mls);
        Ok(Self {
            kem_output: r.opaque(opaque, "HPKECiphertext.kem_output")?,
            ciphertext: r.opaque(mls, "HPKECiphertext.ciphertext")?,
        })
    }

    /// Writes it.
    pub fn write(&self, w: &mut Writer) {
        w.opaque(&self.kem_output);
        w.opaque(&self.ciphertext);
    }
}
