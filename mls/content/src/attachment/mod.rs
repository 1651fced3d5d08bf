//! Attachments (content-08 §5.9): content encrypted with a fresh AES-128-GCM key, stored
//! elsewhere, and described by an [`ExternalPart`] carrying key, nonce and SHA-256 hash.

use crate::model::{Disposition, ExternalPart, NestedPart};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use sha2::{Digest, Sha256};

pub mod stream;

/// IANA AEAD algorithm id of AEAD_AES_128_GCM (RFC 5116).
pub const ENC_ALG_AES_128_GCM: u16 = 1;
/// IANA Named Information hash algorithm id of sha-256.
pub const HASH_ALG_SHA_256: u8 = 1;

/// An attachment ready to upload: the encrypted bytes and the part that describes them.
#[derive(Clone, Debug)]
pub struct SealedAttachment {
    /// Upload these bytes to `part`'s URL.
    pub ciphertext: Vec<u8>,
    /// The external part for the message.
    pub part: ExternalPart,
}

/// What can go wrong with an attachment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// No randomness for the key and nonce.
    #[error("the system random number generator failed")]
    Random,
    /// An algorithm this implementation does not have (content-08 §5.9 requires AES-128-GCM).
    #[error("unsupported {what} {id}")]
    Unsupported {
        /// "encAlg" or "hashAlg".
        what: &'static str,
        /// The id.
        id: u64,
    },
    /// Key or nonce of the wrong size for AES-128-GCM.
    #[error("AES-128-GCM needs a 16-octet key and a 12-octet nonce")]
    BadKeyOrNonce,
    /// The downloaded bytes do not hash to `contentHash`.
    #[error("downloaded content does not match contentHash")]
    HashMismatch,
    /// Decryption failed (wrong key, nonce, aad or altered content).
    #[error("decryption failed: the content was altered or the key is wrong")]
    Decrypt,
    /// `contentHash` is not a SHA-256 output (32 octets).
    #[error("contentHash has the wrong length for sha-256 (32 octets)")]
    BadHash,
    /// More or fewer octets than the part's `size`.
    #[error("the download has {got} octets, the external part says {expected}")]
    SizeMismatch {
        /// `size` of the part.
        expected: u64,
        /// What arrived (so far).
        got: u64,
    },
    /// More than one AES-GCM invocation may protect.
    #[error("content larger than {max} octets cannot be encrypted with one AES-GCM key and nonce")]
    TooLarge {
        /// The limit.
        max: u64,
    },
}

/// Encrypts `plaintext` under a fresh key and nonce and describes it (disposition is chosen
/// by the caller through [`NestedPart::external`]).
pub fn seal(
    plaintext: &[u8],
    content_type: &str,
    url: &str,
    filename: &str,
    description: &str,
) -> Result<SealedAttachment, AttachmentError> {
    let mut key = [0u8; 16];
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut key).map_err(|_| AttachmentError::Random)?;
    getrandom::getrandom(&mut nonce).map_err(|_| AttachmentError::Random)?;
    seal_with(
        plaintext,
        key,
        nonce,
        content_type,
        url,
        filename,
        description,
    )
}

/// [`seal`] with a given key and nonce (for test vectors).
pub fn seal_with(
    plaintext: &[u8],
    key: [u8; 16],
    nonce: [u8; 12],
    content_type: &str,
    url: &str,
    filename: &str,
    description: &str,
) -> Result<SealedAttachment, AttachmentError> {
    let cipher = Aes128Gcm::new(&key.into());
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &[],
            },
        )
        .map_err(|_| AttachmentError::Decrypt)?;
    let content_hash = Sha256::digest(&ciphertext).to_vec();
    let part = ExternalPart {
        content_type: content_type.to_owned(),
        url: url.to_owned(),
        expires: 0,
        size: ciphertext.len() as u64,
        enc_alg: ENC_ALG_AES_128_GCM,
        key: key.to_vec(),
        nonce: nonce.to_vec(),
        aad: Vec::new(),
        hash_alg: HASH_ALG_SHA_256,
        content_hash,
        description: description.to_owned(),
        filename: filename.to_owned(),
    };
    Ok(SealedAttachment { ciphertext, part })
}

/// Checks the hash of downloaded bytes and decrypts them.
pub fn open(part: &ExternalPart, downloaded: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    match part.hash_alg {
        0 => {}
        HASH_ALG_SHA_256 => {
            if Sha256::digest(downloaded).as_slice() != part.content_hash.as_slice() {
                return Err(AttachmentError::HashMismatch);
            }
        }
        other => {
            return Err(AttachmentError::Unsupported {
                what: "hashAlg",
                id: u64::from(other),
            });
        }
    }
    match part.enc_alg {
        0 => Ok(downloaded.to_vec()),
        ENC_ALG_AES_128_GCM => {
            let key: [u8; 16] = part
                .key
                .as_slice()
                .try_into()
                .map_err(|_| AttachmentError::BadKeyOrNonce)?;
            if part.nonce.len() != 12 {
                return Err(AttachmentError::BadKeyOrNonce);
            }
            Aes128Gcm::new(&key.into())
                .decrypt(
                    Nonce::from_slice(&part.nonce),
                    Payload {
                        msg: downloaded,
                        aad: &part.aad,
                    },
                )
                .map_err(|_| AttachmentError::Decrypt)
        }
        other => Err(AttachmentError::Unsupported {
            what: "encAlg",
            id: u64::from(other),
        }),
    }
}

impl NestedPart {
    /// An attachment part (disposition `attachment`).
    pub fn attachment(part: ExternalPart) -> Self {
        Self::external(Disposition::ATTACHMENT, part)
    }
}
