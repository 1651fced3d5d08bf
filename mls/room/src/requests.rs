//! A device's signed requests to the hub (protocol-06 §5.2, §5.6): the KeyMaterialRequest
//! with which it claims another user's KeyPackages for a room, and the GroupInfoRequest with
//! which it fetches the GroupInfo for an external join, and the opening of the answer.

use crate::client::{ClientError, Device};
use crate::mls::CIPHERSUITE;
use mimi_wire::codec::Mls;
use mimi_wire::common::{CipherSuite, GroupInfoOption, RatchetTreeOption};
use mimi_wire::group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs,
    GroupInfoResponse,
};
use mimi_wire::id::{RoomUri, UserUri};
use mimi_wire::key_material::{KeyMaterialRequest, KeyMaterialRequestTbs};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::{BasicCredential, Credential};
use openmls_traits::OpenMlsProvider;
use openmls_traits::crypto::OpenMlsCrypto;

/// A GroupInfoRequest and the one-time HPKE private key its answer is encrypted to.
pub struct PendingGroupInfo {
    /// The request to send.
    pub request: GroupInfoRequest,
    /// The private key (keep until the answer arrives).
    pub private_key: Vec<u8>,
}

/// What the hub's GroupInfoResponse holds once opened: the GroupInfo, the tree and the
/// proposals the hub accepted in the current epoch.
pub type OpenedGroupInfo = (
    GroupInfoOption,
    RatchetTreeOption,
    Vec<mimi_wire::group_info::PendingProposal>,
);

fn suite_code() -> CipherSuite {
    CipherSuite(u16::from(CIPHERSUITE))
}

impl Device {
    fn credential_bytes(&self) -> Result<Mls<Credential>, ClientError> {
        let c: Credential = BasicCredential::new(self.client.as_str().as_bytes().to_vec()).into();
        let bytes = c
            .tls_serialize_detached()
            .map_err(|e| ClientError::Unusable(format!("encoding the credential: {e}")))?;
        Ok(Mls::from_bytes(bytes)?)
    }

    /// A signed KeyMaterialRequest for `target`'s KeyPackages, to add them to `room`
    /// (`ROOM-client-key-material`).
    pub fn key_material_request(
        &self,
        room: &RoomUri,
        target: &UserUri,
    ) -> Result<KeyMaterialRequest, ClientError> {
        self.key_material_request_in(room, target, &[CIPHERSUITE])
    }

    /// [`Device::key_material_request`] for a room of one of `suites` (in preference order),
    /// with the capabilities every room requires as `requiredCapabilities`
    /// (`ROOM-client-key-material`, protocol-06 §5.2).
    pub fn key_material_request_in(
        &self,
        room: &RoomUri,
        target: &UserUri,
        suites: &[openmls::prelude::Ciphersuite],
    ) -> Result<KeyMaterialRequest, ClientError> {
        let caps = crate::mls::required_capabilities()
            .tls_serialize_detached()
            .map_err(|e| ClientError::Unusable(format!("encoding capabilities: {e}")))?;
        let tbs = KeyMaterialRequestTbs {
            requesting_user: self.user.clone(),
            target_user: target.clone(),
            room_id: room.clone(),
            acceptable_ciphersuites: suites.iter().map(|s| CipherSuite(u16::from(*s))).collect(),
            required_capabilities: Mls::from_bytes(caps)?,
            requester_signature_key: self.signer.to_public_vec(),
            requester_credential: self.credential_bytes()?,
        };
        KeyMaterialRequest::sign(tbs, &self.signer)
            .map_err(|e| ClientError::Unusable(format!("signing the KeyMaterialRequest: {e}")))
    }

    /// A signed GroupInfoRequest with a fresh one-time HPKE key (`ROOM-client-group-info`).
    pub fn group_info_request(&self) -> Result<PendingGroupInfo, ClientError> {
        self.group_info_request_with_code(Vec::new())
    }

    /// [`Device::group_info_request`] carrying a joining code (protocol-06 §5.6
    /// `joiningCode`; empty for none): the code of a room's join link (`PROTO-5.6-joining-code`).
    pub fn group_info_request_with_code(
        &self,
        joining_code: Vec<u8>,
    ) -> Result<PendingGroupInfo, ClientError> {
        group_info_request_by(
            self.provider.crypto(),
            &self.signer,
            self.signer.to_public_vec(),
            self.credential_bytes()?,
            joining_code,
        )
    }

    /// Opens the hub's answer: checks its signature and decrypts the GroupInfo and tree.
    pub fn open_group_info(
        &self,
        room: &RoomUri,
        pending: &PendingGroupInfo,
        response: &GroupInfoResponse,
    ) -> Result<(GroupInfoOption, RatchetTreeOption), ClientError> {
        let (gi, tree, _) = self.open_group_info_with_pending(room, pending, response)?;
        Ok((gi, tree))
    }

    /// [`Device::open_group_info`] with the proposals the hub accepted in the current epoch
    /// (`pending_proposals`, `PROTO-5.6-pending`), for [`Device::join_external_with`].
    pub fn open_group_info_with_pending(
        &self,
        room: &RoomUri,
        pending: &PendingGroupInfo,
        response: &GroupInfoResponse,
    ) -> Result<OpenedGroupInfo, ClientError> {
        open_group_info_response(self.provider.crypto(), room, pending, response)
    }
}

/// A signed GroupInfoRequest (protocol-06 §5.6) with a fresh one-time HPKE key of suite
/// 0x0001, from any device: its signature key's `signer` and public key and its credential
/// (TLS-encoded). mimi-room's devices and mimi-room-mlsrs' (through an openmls `Signer` over
/// its mls-rs key) both use it, so the request is the same bytes whichever MLS library the
/// device runs (`ROOM-client-group-info`).
pub fn group_info_request_by(
    crypto: &impl OpenMlsCrypto,
    signer: &impl openmls_traits::signatures::Signer,
    signature_key: Vec<u8>,
    credential: Mls<Credential>,
    joining_code: Vec<u8>,
) -> Result<PendingGroupInfo, ClientError> {
    let mut ikm = [0u8; 32];
    getrandom::getrandom(&mut ikm)
        .map_err(|e| ClientError::Unusable(format!("no randomness: {e}")))?;
    let kp = crypto
        .derive_hpke_keypair(CIPHERSUITE.hpke_config(), &ikm)
        .map_err(|e| ClientError::Unusable(format!("HPKE key: {e:?}")))?;
    let tbs = GroupInfoRequestTbs {
        cipher_suite: suite_code(),
        requesting_signature_key: signature_key,
        requesting_credential: credential,
        group_info_public_key: kp.public.clone(),
        joining_code,
    };
    let request = GroupInfoRequest::sign(tbs, signer)
        .map_err(|e| ClientError::Unusable(format!("signing the GroupInfoRequest: {e}")))?;
    Ok(PendingGroupInfo {
        request,
        private_key: kp.private.to_vec(),
    })
}

/// Opens the hub's GroupInfoResponse to `pending`: checks the hub's signature, decrypts the
/// GroupInfo, the tree and the proposals the hub accepted in the current epoch
/// (`PROTO-5.6-pending`). A refusal is [`ClientError::NotParticipant`] with the hub's code.
pub fn open_group_info_response(
    crypto: &impl OpenMlsCrypto,
    room: &RoomUri,
    pending: &PendingGroupInfo,
    response: &GroupInfoResponse,
) -> Result<OpenedGroupInfo, ClientError> {
    let Some(s) = &response.success else {
        let code = response.status;
        return Err(ClientError::NotParticipant(format!(
            "the hub answered {} for {room}",
            code.name().unwrap_or("an unknown code")
        )));
    };
    if response.status != GroupInfoCode::SUCCESS || response.room_id != *room {
        return Err(ClientError::Unusable(
            "the GroupInfo response is for another room".into(),
        ));
    }
    response
        .verify(crypto)
        .map_err(|e| ClientError::Unusable(format!("the hub's signature: {e}")))?;
    let tbe = GroupInfoRatchetTreeTbe::open(
        crypto,
        s.cipher_suite,
        &pending.private_key,
        room,
        &s.encrypted_groupinfo_and_tree,
    )
    .map_err(|e| ClientError::Unusable(format!("decrypting the GroupInfo: {e}")))?;
    Ok((
        GroupInfoOption::Full(tbe.group_info),
        tbe.ratchet_tree,
        tbe.pending_proposals,
    ))
}
