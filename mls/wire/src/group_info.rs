//! groupInfo (protocol-06 §5.6): the hub's GroupInfo and tree for an external join,
//! encrypted to a one-time HPKE key and signed by the hub.

use crate::codec::{Body, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::{CipherSuite, HpkeCiphertext, Protocol, RatchetTreeOption, read_room};
use crate::id::RoomUri;
use openmls::messages::group_info::VerifiableGroupInfo;
use openmls::prelude::{Credential, ExternalSender, MlsMessageIn};

/// The signed part of a [`GroupInfoRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoRequestTbs {
    /// `cipher_suite` for this exchange.
    pub cipher_suite: CipherSuite,
    /// `requestingSignatureKey`.
    pub requesting_signature_key: Vec<u8>,
    /// `requestingCredential`.
    pub requesting_credential: Mls<Credential>,
    /// `groupInfoPublicKey`: the one-time HPKE key the answer is encrypted to.
    pub group_info_public_key: Vec<u8>,
    /// `joiningCode` (empty when none). The message carries `opaque joiningCode<V>`, the TBS
    /// `optional opaque joiningCode<V>`: present iff non-empty (`WIRE-5.6-joining-code`).
    pub joining_code: Vec<u8>,
}

/// `GroupInfoRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoRequest {
    /// The signed fields.
    pub tbs: GroupInfoRequestTbs,
    /// `SignWithLabel(requestingSignatureKey, "GroupInfoRequestTBS", tbs)`.
    pub signature: Vec<u8>,
}

/// Label of the request signature.
pub const GROUP_INFO_REQUEST_LABEL: &str = "GroupInfoRequestTBS";
/// Label of the response signature.
pub const GROUP_INFO_RESPONSE_LABEL: &str = "GroupInfoResponseTBS";
/// Label of the encryption of the GroupInfo and tree.
pub const GROUP_INFO_ENCRYPTION_LABEL: &str = "GroupInfo and ratchet_tree encryption";

impl GroupInfoRequestTbs {
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "GroupInfoRequest.protocol")?;
        let opaque = r.limits.max_opaque;
        Ok(Self {
            cipher_suite: CipherSuite(r.u16("GroupInfoRequest.cipher_suite")?),
            requesting_signature_key: r
                .opaque(opaque, "GroupInfoRequest.requestingSignatureKey")?,
            requesting_credential: r.mls("GroupInfoRequest.requestingCredential")?,
            group_info_public_key: r.opaque(opaque, "GroupInfoRequest.groupInfoPublicKey")?,
            joining_code: r.opaque(opaque, "GroupInfoRequest.joiningCode")?,
        })
    }

    fn write_common(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.u16(self.cipher_suite.0);
        w.opaque(&self.requesting_signature_key);
        w.raw(self.requesting_credential.as_bytes());
        w.opaque(&self.group_info_public_key);
    }

    fn write(&self, w: &mut Writer) {
        self.write_common(w);
        w.opaque(&self.joining_code);
    }

    /// The bytes that are signed: `GroupInfoRequestTBS`, whose `joiningCode` is
    /// `optional opaque joiningCode<V>`, absent when the request has none
    /// (`WIRE-5.6-joining-code`; the one place to change if the WG decides otherwise).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write_common(&mut w);
        let code = (!self.joining_code.is_empty()).then_some(&self.joining_code);
        w.optional(code, |w, c| w.opaque(c));
        w.finish()
    }
}

impl Body for GroupInfoRequest {
    const NAME: &'static str = "GroupInfoRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let tbs = GroupInfoRequestTbs::read(r)?;
        let opaque = r.limits.max_opaque;
        Ok(Self {
            tbs,
            signature: r.opaque(opaque, "GroupInfoRequest.signature")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        self.tbs.write(w);
        w.opaque(&self.signature);
    }
}

/// `PendingProposal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingProposal {
    /// `MLSMessage proposal`.
    pub proposal: Mls<MlsMessageIn>,
    /// `uint64 hub_accepted_time`.
    pub hub_accepted_time: u64,
}

/// `GroupInfoRatchetTreeTBE`: what is encrypted to the joiner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoRatchetTreeTbe {
    /// `GroupInfo groupInfo` (without the ratchet_tree extension).
    pub group_info: Mls<VerifiableGroupInfo>,
    /// `RatchetTreeOption ratchetTreeOption`.
    pub ratchet_tree: RatchetTreeOption,
    /// `PendingProposal pending_proposals<V>`.
    pub pending_proposals: Vec<PendingProposal>,
}

impl Body for GroupInfoRatchetTreeTbe {
    const NAME: &'static str = "GroupInfoRatchetTreeTBE";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let group_info = r.mls("GroupInfoRatchetTreeTBE.groupInfo")?;
        let ratchet_tree = RatchetTreeOption::read(r)?;
        let f = "GroupInfoRatchetTreeTBE.pending_proposals";
        let pending_proposals = r.vector(f, |r| {
            Ok(PendingProposal {
                proposal: r.mls(f)?,
                hub_accepted_time: r.u64(f)?,
            })
        })?;
        Ok(Self {
            group_info,
            ratchet_tree,
            pending_proposals,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.raw(self.group_info.as_bytes());
        self.ratchet_tree.write(w);
        w.vector(&self.pending_proposals, |w, p| {
            w.raw(p.proposal.as_bytes());
            w.u64(p.hub_accepted_time);
        });
    }
}

/// `GroupInfoCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupInfoCode(pub u8);

impl GroupInfoCode {
    /// `success(1)`.
    pub const SUCCESS: Self = Self(1);
    /// `notAuthorized(2)`.
    pub const NOT_AUTHORIZED: Self = Self(2);
    /// `noSuchRoom(3)`.
    pub const NO_SUCH_ROOM: Self = Self(3);

    /// The draft's name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "success",
            2 => "notAuthorized",
            3 => "noSuchRoom",
            _ => return None,
        })
    }
}

/// The success part of a [`GroupInfoResponse`] that is signed (with `room_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoSuccess {
    /// `cipher_suite`.
    pub cipher_suite: CipherSuite,
    /// `ExternalSender hub_sender`: the hub's key and credential.
    pub hub_sender: Mls<ExternalSender>,
    /// `HPKECiphertext encrypted_groupinfo_and_tree`.
    pub encrypted_groupinfo_and_tree: HpkeCiphertext,
    /// `SignWithLabel(hub_sender.signature_key, "GroupInfoResponseTBS", tbs)`.
    pub signature: Vec<u8>,
}

/// `GroupInfoResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfoResponse {
    /// `room_id`.
    pub room_id: RoomUri,
    /// `status`.
    pub status: GroupInfoCode,
    /// Present iff `status` is success.
    pub success: Option<GroupInfoSuccess>,
}

impl GroupInfoResponse {
    /// `GroupInfoResponseTBS`: version, room_id, status (always success: only success
    /// responses are signed), cipher_suite, hub_sender and the ciphertext. The draft's TBS
    /// carries the status field but not the select on it (`WIRE-5.6-response-tbs`).
    pub fn tbs(room_id: &RoomUri, s: &GroupInfoSuccess) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(Protocol::MLS10.0);
        w.opaque(room_id.as_str().as_bytes());
        w.u8(GroupInfoCode::SUCCESS.0);
        w.u16(s.cipher_suite.0);
        w.raw(s.hub_sender.as_bytes());
        s.encrypted_groupinfo_and_tree.write(&mut w);
        w.finish()
    }
}

impl Body for GroupInfoResponse {
    const NAME: &'static str = "GroupInfoResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "GroupInfoResponse.version")?;
        let room_id = read_room(r, "GroupInfoResponse.room_id")?;
        let f = "GroupInfoResponse.status";
        let status = GroupInfoCode(r.u8(f)?);
        let success = match status {
            GroupInfoCode::SUCCESS => {
                let cipher_suite = CipherSuite(r.u16("GroupInfoResponse.cipher_suite")?);
                let hub_sender = r.mls("GroupInfoResponse.hub_sender")?;
                let encrypted_groupinfo_and_tree = HpkeCiphertext::read(r)?;
                let opaque = r.limits.max_opaque;
                Some(GroupInfoSuccess {
                    cipher_suite,
                    hub_sender,
                    encrypted_groupinfo_and_tree,
                    signature: r.opaque(opaque, "GroupInfoResponse.signature")?,
                })
            }
            GroupInfoCode(0) => return Err(r.error(WireErrorKind::BadValue(0), f)),
            _ => None,
        };
        Ok(Self {
            room_id,
            status,
            success,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.opaque(self.room_id.as_str().as_bytes());
        let status = if self.success.is_some() {
            GroupInfoCode::SUCCESS
        } else if self.status == GroupInfoCode::SUCCESS {
            GroupInfoCode::NOT_AUTHORIZED
        } else {
            self.status
        };
        w.u8(status.0);
        if let Some(s) = &self.success {
            w.u16(s.cipher_suite.0);
            w.raw(s.hub_sender.as_bytes());
            s.encrypted_groupinfo_and_tree.write(w);
            w.opaque(&s.signature);
        }
    }
}
