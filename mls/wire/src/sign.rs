//! `SignWithLabel`, `VerifyWithLabel` and `EncryptWithLabel` (RFC 9420 §5.1.2, §5.1.3) for the
//! MIMI structs that carry them: KeyMaterialRequestTBS, GroupInfoRequestTBS,
//! GroupInfoResponseTBS, FrankingIntegrityTBS, and the encrypted GroupInfo of §5.6.
//! The cryptography is openmls' provider; this module only builds the labelled inputs.

use crate::codec::Writer;
use crate::common::{CipherSuite, HpkeCiphertext};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use openmls_traits::types::{Ciphersuite, HpkeCiphertext as TraitCiphertext, SignatureScheme};

/// Why a signature or encryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The signature does not verify (`WIRE-sign-verify`).
    #[error("signature with label {label:?} does not verify")]
    BadSignature {
        /// The label.
        label: String,
    },
    /// A cipher suite we do not support.
    #[error("cipher suite {0:#06x} is not supported")]
    UnsupportedSuite(u16),
    /// The signer failed.
    #[error("signing failed: {0}")]
    Signer(String),
    /// HPKE failed (wrong key, corrupted ciphertext).
    #[error("HPKE {0} failed")]
    Hpke(&'static str),
    /// The plaintext decrypted but is not a valid body.
    #[error("decrypted plaintext is not valid: {0}")]
    Plaintext(#[from] crate::codec::WireError),
}

fn labelled(label: &str, content: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    let mut full = b"MLS 1.0 ".to_vec();
    full.extend_from_slice(label.as_bytes());
    w.opaque(&full);
    w.opaque(content);
    w.finish()
}

/// `SignWithLabel(key, label, content)`: the signer signs `SignContent`.
pub fn sign_with_label(
    signer: &impl Signer,
    label: &str,
    content: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    signer
        .sign(&labelled(label, content))
        .map_err(|e| CryptoError::Signer(format!("{e:?}")))
}

/// `VerifyWithLabel(key, label, content, signature)`.
pub fn verify_with_label(
    crypto: &impl OpenMlsCrypto,
    scheme: SignatureScheme,
    public_key: &[u8],
    label: &str,
    content: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    crypto
        .verify_signature(scheme, &labelled(label, content), public_key, signature)
        .map_err(|_| CryptoError::BadSignature {
            label: label.to_owned(),
        })
}

/// The openmls cipher suite of a code point.
pub fn suite(cs: CipherSuite) -> Result<Ciphersuite, CryptoError> {
    Ciphersuite::try_from(cs.0).map_err(|_| CryptoError::UnsupportedSuite(cs.0))
}

/// `EncryptWithLabel(public_key, label, context, plaintext)`: HPKE base mode with
/// `info = EncryptContext{label, context}` and empty AAD.
pub fn encrypt_with_label(
    crypto: &impl OpenMlsCrypto,
    cs: CipherSuite,
    public_key: &[u8],
    label: &str,
    context: &[u8],
    plaintext: &[u8],
) -> Result<HpkeCiphertext, CryptoError> {
    let s = suite(cs)?;
    let ct = crypto
        .hpke_seal(
            s.hpke_config(),
            public_key,
            &labelled(label, context),
            &[],
            plaintext,
        )
        .map_err(|_| CryptoError::Hpke("seal"))?;
    Ok(HpkeCiphertext {
        kem_output: ct.kem_output.as_slice().to_vec(),
        ciphertext: ct.ciphertext.as_slice().to_vec(),
    })
}

/// `DecryptWithLabel(private_key, label, context, ciphertext)`.
pub fn decrypt_with_label(
    crypto: &impl OpenMlsCrypto,
    cs: CipherSuite,
    private_key: &[u8],
    label: &str,
    context: &[u8],
    ciphertext: &HpkeCiphertext,
) -> Result<Vec<u8>, CryptoError> {
    let s = suite(cs)?;
    let input = TraitCiphertext {
        kem_output: ciphertext.kem_output.clone().into(),
        ciphertext: ciphertext.ciphertext.clone().into(),
    };
    crypto
        .hpke_open(
            s.hpke_config(),
            &input,
            private_key,
            &labelled(label, context),
            &[],
        )
        .map_err(|_| CryptoError::Hpke("open"))
}

use crate::codec::Body;
use crate::group_info::{
    GROUP_INFO_ENCRYPTION_LABEL, GROUP_INFO_REQUEST_LABEL, GROUP_INFO_RESPONSE_LABEL,
    GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoRequestTbs, GroupInfoResponse,
    GroupInfoSuccess,
};
use crate::id::RoomUri;
use crate::key_material::{KEY_MATERIAL_REQUEST_LABEL, KeyMaterialRequest, KeyMaterialRequestTbs};
use crate::submit::{FRANKING_INTEGRITY_LABEL, ServerFrankingContext, franking_integrity_tbs};

impl KeyMaterialRequest {
    /// Signs a request with the requester's key (`WIRE-5.2-signature`).
    pub fn sign(tbs: KeyMaterialRequestTbs, signer: &impl Signer) -> Result<Self, CryptoError> {
        let signature = sign_with_label(signer, KEY_MATERIAL_REQUEST_LABEL, &tbs.encode())?;
        Ok(Self { tbs, signature })
    }

    /// Verifies the signature with `requesterSignatureKey` under `scheme` (`WIRE-5.2-signature`).
    pub fn verify(
        &self,
        crypto: &impl OpenMlsCrypto,
        scheme: SignatureScheme,
    ) -> Result<(), CryptoError> {
        verify_with_label(
            crypto,
            scheme,
            &self.tbs.requester_signature_key,
            KEY_MATERIAL_REQUEST_LABEL,
            &self.tbs.encode(),
            &self.signature,
        )
    }
}

impl GroupInfoRequest {
    /// Signs a request with the joiner's key.
    pub fn sign(tbs: GroupInfoRequestTbs, signer: &impl Signer) -> Result<Self, CryptoError> {
        let signature = sign_with_label(signer, GROUP_INFO_REQUEST_LABEL, &tbs.encode())?;
        Ok(Self { tbs, signature })
    }

    /// Verifies the signature with `requestingSignatureKey` under the request's cipher suite
    /// (`WIRE-5.6-request-signature`).
    pub fn verify(&self, crypto: &impl OpenMlsCrypto) -> Result<(), CryptoError> {
        let scheme = suite(self.tbs.cipher_suite)?.signature_algorithm();
        verify_with_label(
            crypto,
            scheme,
            &self.tbs.requesting_signature_key,
            GROUP_INFO_REQUEST_LABEL,
            &self.tbs.encode(),
            &self.signature,
        )
    }
}

impl GroupInfoResponse {
    /// Builds a signed success response (`signature` of `success` is replaced).
    pub fn signed_success(
        room_id: RoomUri,
        mut success: GroupInfoSuccess,
        hub_signer: &impl Signer,
    ) -> Result<Self, CryptoError> {
        success.signature = sign_with_label(
            hub_signer,
            GROUP_INFO_RESPONSE_LABEL,
            &GroupInfoResponse::tbs(&room_id, &success),
        )?;
        Ok(Self {
            room_id,
            status: crate::group_info::GroupInfoCode::SUCCESS,
            success: Some(success),
        })
    }

    /// Verifies the hub's signature with `hub_sender.signature_key` (`WIRE-5.6-response-signature`).
    pub fn verify(&self, crypto: &impl OpenMlsCrypto) -> Result<(), CryptoError> {
        let Some(s) = &self.success else {
            return Ok(());
        };
        let scheme = suite(s.cipher_suite)?.signature_algorithm();
        // ExternalSender = { SignaturePublicKey signature_key; Credential credential; }; openmls
        // keeps the key's accessor private, so read the first field ourselves.
        let limits = crate::codec::Limits::DEFAULT;
        let mut r = crate::codec::Reader::new(s.hub_sender.as_bytes(), limits);
        let key = r
            .opaque(limits.max_opaque, "ExternalSender.signature_key")
            .map_err(|_| CryptoError::BadSignature {
                label: GROUP_INFO_RESPONSE_LABEL.to_owned(),
            })?;
        verify_with_label(
            crypto,
            scheme,
            &key,
            GROUP_INFO_RESPONSE_LABEL,
            &GroupInfoResponse::tbs(&self.room_id, s),
            &s.signature,
        )
    }
}

impl GroupInfoRatchetTreeTbe {
    /// `encrypted_groupinfo_and_tree = EncryptWithLabel(groupInfoPublicKey, "GroupInfo and
    /// ratchet_tree encryption", room_id, self)` (`WIRE-5.6-encrypt`); the context is the room
    /// URI's bytes as they appear in `GroupInfoResponse.room_id`.
    pub fn seal(
        &self,
        crypto: &impl OpenMlsCrypto,
        cs: CipherSuite,
        group_info_public_key: &[u8],
        room_id: &RoomUri,
    ) -> Result<HpkeCiphertext, CryptoError> {
        encrypt_with_label(
            crypto,
            cs,
            group_info_public_key,
            GROUP_INFO_ENCRYPTION_LABEL,
            room_id.as_str().as_bytes(),
            &self.encode(),
        )
    }

    /// The joiner's side of [`seal`](Self::seal): decrypts with the one-time private key and
    /// decodes the plaintext strictly.
    pub fn open(
        crypto: &impl OpenMlsCrypto,
        cs: CipherSuite,
        group_info_private_key: &[u8],
        room_id: &RoomUri,
        ciphertext: &HpkeCiphertext,
    ) -> Result<Self, CryptoError> {
        let pt = decrypt_with_label(
            crypto,
            cs,
            group_info_private_key,
            GROUP_INFO_ENCRYPTION_LABEL,
            room_id.as_str().as_bytes(),
            ciphertext,
        )?;
        Ok(Self::decode(&pt)?)
    }
}

/// `franking_integrity_signature = SignWithLabel(key, "FrankingIntegrityTBS", …)`
/// (`WIRE-5.4.1-frank`).
pub fn sign_frank(
    signer: &impl Signer,
    server_frank: &[u8; 32],
    cs: CipherSuite,
    context: &ServerFrankingContext,
) -> Result<Vec<u8>, CryptoError> {
    sign_with_label(
        signer,
        FRANKING_INTEGRITY_LABEL,
        &franking_integrity_tbs(server_frank, cs, context),
    )
}

/// Verifies a frank's integrity signature.
pub fn verify_frank(
    crypto: &impl OpenMlsCrypto,
    public_key: &[u8],
    frank: &crate::common::Frank,
    context: &ServerFrankingContext,
) -> Result<(), CryptoError> {
    let scheme = suite(frank.franking_signature_ciphersuite)?.signature_algorithm();
    verify_with_label(
        crypto,
        scheme,
        public_key,
        FRANKING_INTEGRITY_LABEL,
        &franking_integrity_tbs(
            &frank.server_frank,
            frank.franking_signature_ciphersuite,
            context,
        ),
        &frank.franking_integrity_signature,
    )
}
