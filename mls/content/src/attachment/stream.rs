//! Attachments piece by piece (`CONTENT-external-stream`): the same single AES-128-GCM
//! encryption content-08 describes (one key, one nonce, one tag over the whole content, the
//! ciphertext followed by its 16-octet tag, `contentHash` = SHA-256 of those stored octets),
//! computed incrementally so that a file of any size never has to be in memory whole.
//!
//! AES-GCM is CTR mode plus GHASH (NIST SP 800-38D), both of which work block by block, so the
//! output is byte-identical to a one-shot [`super::seal_with`] of the same content, key and
//! nonce (the unit tests check it for many sizes and chunkings). A receiver writes the
//! plaintext [`Opener::update`] gives it somewhere temporary and keeps it only if
//! [`Opener::finish`] says the hash, the size and the tag are right.

use super::{AttachmentError, ENC_ALG_AES_128_GCM, HASH_ALG_SHA_256};
use crate::model::ExternalPart;
use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit as _, KeyIvInit, StreamCipher};
use ghash::GHash;
use ghash::universal_hash::UniversalHash;
use sha2::{Digest, Sha256};

/// The largest plaintext one AES-GCM invocation may protect: 2^39 − 256 bits (SP 800-38D).
pub const MAX_PLAINTEXT: u64 = (1 << 36) - 32;

type Ctr = ctr::Ctr32BE<Aes128>;

/// GHASH over AAD and ciphertext that arrive in pieces of any length.
struct Mac {
    ghash: GHash,
    buf: [u8; 16],
    n: usize,
    aad_len: u64,
    len: u64,
}

impl Mac {
    fn new(key: &[u8; 16], aad: &[u8]) -> Self {
        let mut h = ghash::Block::default();
        Aes128::new(key.into()).encrypt_block(&mut h);
        let mut ghash = GHash::new(&h);
        ghash.update_padded(aad);
        Self {
            ghash,
            buf: [0; 16],
            n: 0,
            aad_len: aad.len() as u64,
            len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.n > 0 {
            let take = (16 - self.n).min(data.len());
            self.buf[self.n..self.n + take].copy_from_slice(&data[..take]);
            self.n += take;
            data = &data[take..];
            if self.n < 16 {
                return;
            }
            self.ghash.update(&[self.buf.into()]);
            self.n = 0;
        }
        let whole = data.len() / 16 * 16;
        let blocks: Vec<ghash::Block> = data[..whole]
            .chunks_exact(16)
            .map(ghash::Block::clone_from_slice)
            .collect();
        self.ghash.update(&blocks);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    fn tag(mut self, mask: &[u8; 16]) -> [u8; 16] {
        self.ghash.update_padded(&self.buf[..self.n]);
        let mut block = ghash::Block::default();
        block[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        block[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update(&[block]);
        let mut tag: [u8; 16] = self.ghash.finalize().into();
        tag.iter_mut().zip(mask).for_each(|(t, m)| *t ^= m);
        tag
    }
}

/// The counter stream from J0 = nonce ‖ 0x00000001 and the tag mask E_K(J0).
fn counter(key: &[u8; 16], nonce: &[u8; 12]) -> (Ctr, [u8; 16]) {
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(nonce);
    j0[15] = 1;
    let mut ctr = Ctr::new(key.into(), &j0.into());
    let mut mask = [0u8; 16];
    ctr.apply_keystream(&mut mask);
    (ctr, mask)
}

/// Encrypts an attachment piece by piece under a fresh key (`CONTENT-external-fresh-key`).
pub struct Sealer {
    key: [u8; 16],
    nonce: [u8; 12],
    ctr: Ctr,
    mac: Mac,
    mask: [u8; 16],
    sha: Sha256,
}

/// What is known once the last piece was encrypted: the tag to store after the ciphertext,
/// and the fields of the external part.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// Store these 16 octets after the last ciphertext piece.
    pub tag: [u8; 16],
    /// The AES-128-GCM key.
    pub key: [u8; 16],
    /// The nonce.
    pub nonce: [u8; 12],
    /// The stored size: ciphertext and tag.
    pub size: u64,
    /// SHA-256 of the stored octets.
    pub content_hash: [u8; 32],
}

impl Sealed {
    /// The external part that describes the stored octets at `url` (content-08 §4.5; every
    /// field set: `expires` 0 = never, `aad` empty).
    pub fn part(
        &self,
        content_type: &str,
        url: &str,
        filename: &str,
        description: &str,
    ) -> ExternalPart {
        ExternalPart {
            content_type: content_type.to_owned(),
            url: url.to_owned(),
            expires: 0,
            size: self.size,
            enc_alg: ENC_ALG_AES_128_GCM,
            key: self.key.to_vec(),
            nonce: self.nonce.to_vec(),
            aad: Vec::new(),
            hash_alg: HASH_ALG_SHA_256,
            content_hash: self.content_hash.to_vec(),
            description: description.to_owned(),
            filename: filename.to_owned(),
        }
    }
}

impl Sealer {
    /// A sealer with a fresh random key and nonce.
    pub fn new() -> Result<Self, AttachmentError> {
        let mut key = [0u8; 16];
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut key).map_err(|_| AttachmentError::Random)?;
        getrandom::getrandom(&mut nonce).map_err(|_| AttachmentError::Random)?;
        Ok(Self::with_key(key, nonce))
    }

    /// A sealer with a given key and nonce (tests, vectors).
    pub fn with_key(key: [u8; 16], nonce: [u8; 12]) -> Self {
        let (ctr, mask) = counter(&key, &nonce);
        Self {
            key,
            nonce,
            ctr,
            mac: Mac::new(&key, &[]),
            mask,
            sha: Sha256::new(),
        }
    }

    /// Encrypts the next piece of plaintext in place.
    pub fn seal(&mut self, piece: &mut [u8]) -> Result<(), AttachmentError> {
        if self.mac.len + piece.len() as u64 > MAX_PLAINTEXT {
            return Err(AttachmentError::TooLarge { max: MAX_PLAINTEXT });
        }
        self.ctr.apply_keystream(piece);
        self.mac.update(piece);
        self.sha.update(&*piece);
        Ok(())
    }

    /// The tag and the part's fields, after the last piece.
    pub fn finish(mut self) -> Sealed {
        let size = self.mac.len + 16;
        let tag = self.mac.tag(&self.mask);
        self.sha.update(tag);
        Sealed {
            tag,
            key: self.key,
            nonce: self.nonce,
            size,
            content_hash: self.sha.finalize().into(),
        }
    }
}

/// Checks and decrypts downloaded octets piece by piece (`CONTENT-external-hash`,
/// `CONTENT-external-open`).
pub struct Opener {
    dec: Option<(Ctr, Mac, [u8; 16])>,
    tail: [u8; 16],
    tail_len: usize,
    sha: Option<(Sha256, Vec<u8>)>,
    expected_size: u64,
    received: u64,
}

impl Opener {
    /// An opener for the content `part` describes. Refuses algorithms we do not have and keys
    /// or nonces of the wrong size before anything is downloaded.
    pub fn new(part: &ExternalPart) -> Result<Self, AttachmentError> {
        let sha = match part.hash_alg {
            0 => None,
            HASH_ALG_SHA_256 => {
                if part.content_hash.len() != 32 {
                    return Err(AttachmentError::BadHash);
                }
                Some((Sha256::new(), part.content_hash.clone()))
            }
            other => {
                return Err(AttachmentError::Unsupported {
                    what: "hashAlg",
                    id: u64::from(other),
                });
            }
        };
        let dec = match part.enc_alg {
            0 => None,
            ENC_ALG_AES_128_GCM => {
                let key: [u8; 16] = part
                    .key
                    .as_slice()
                    .try_into()
                    .map_err(|_| AttachmentError::BadKeyOrNonce)?;
                let nonce: [u8; 12] = part
                    .nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| AttachmentError::BadKeyOrNonce)?;
                let (ctr, mask) = counter(&key, &nonce);
                Some((ctr, Mac::new(&key, &part.aad), mask))
            }
            other => {
                return Err(AttachmentError::Unsupported {
                    what: "encAlg",
                    id: u64::from(other),
                });
            }
        };
        Ok(Self {
            dec,
            tail: [0; 16],
            tail_len: 0,
            sha,
            expected_size: part.size,
            received: 0,
        })
    }

    /// Feeds the next downloaded piece; returns plaintext that is **not yet authenticated**:
    /// keep it aside until [`Opener::finish`] succeeds. More octets than the part's `size`
    /// are refused at once.
    pub fn update(&mut self, piece: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        self.received += piece.len() as u64;
        if self.expected_size != 0 && self.received > self.expected_size {
            return Err(AttachmentError::SizeMismatch {
                expected: self.expected_size,
                got: self.received,
            });
        }
        if let Some((sha, _)) = &mut self.sha {
            sha.update(piece);
        }
        let Some((ctr, mac, _)) = &mut self.dec else {
            return Ok(piece.to_vec());
        };
        // Hold back the last 16 octets seen: they may be the tag.
        let mut all = Vec::with_capacity(self.tail_len + piece.len());
        all.extend_from_slice(&self.tail[..self.tail_len]);
        all.extend_from_slice(piece);
        let keep = all.len().min(16);
        let cut = all.len() - keep;
        self.tail[..keep].copy_from_slice(&all[cut..]);
        self.tail_len = keep;
        all.truncate(cut);
        if mac.len + all.len() as u64 > MAX_PLAINTEXT {
            return Err(AttachmentError::TooLarge { max: MAX_PLAINTEXT });
        }
        mac.update(&all);
        ctr.apply_keystream(&mut all);
        Ok(all)
    }

    /// After the last piece: the size, then the hash of the downloaded octets, then the tag.
    pub fn finish(self) -> Result<(), AttachmentError> {
        if self.expected_size != 0 && self.received != self.expected_size {
            return Err(AttachmentError::SizeMismatch {
                expected: self.expected_size,
                got: self.received,
            });
        }
        if let Some((sha, want)) = self.sha {
            // CONTENT-external-hash: the octets at the URL must hash to contentHash.
            if sha.finalize().as_slice() != want.as_slice() {
                return Err(AttachmentError::HashMismatch);
            }
        }
        if let Some((_, mac, mask)) = self.dec {
            if self.tail_len != 16 {
                return Err(AttachmentError::Decrypt);
            }
            let want = mac.tag(&mask);
            let diff = want
                .iter()
                .zip(&self.tail)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff != 0 {
                return Err(AttachmentError::Decrypt);
            }
        }
        Ok(())
    }
}
