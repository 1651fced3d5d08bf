//! Oblivious HTTP (RFC 9458) with Binary HTTP messages (RFC 9292, known-length form), for the
//! `ohttp` asset download of protocol-06 §5.10 (`NET-ohttp`): the device encapsulates
//! `GET <asset URL>` to the hub's gateway key, its own provider relays the opaque request, and
//! the hub's gateway decapsulates it, fetches the asset and encapsulates the answer. The relay
//! learns who asks but not what; the gateway learns what but not who.
//!
//! Suites: DHKEM(X25519, HKDF-SHA256) with HKDF-SHA256 and AES-128-GCM or ChaCha20-Poly1305
//! (hpke-rs over RustCrypto). The RFC 9458 Appendix A example is a test of this module.

use hpke_rs::prelude::{HpkeMode, HpkePrivateKey, HpkePublicKey};
use hpke_rs::rustcrypto::HpkeRustCrypto;
use hpke_rs::{Context, Hpke};
use hpke_rs_crypto::HpkeCrypto;
use hpke_rs_crypto::types::{AeadAlgorithm, KdfAlgorithm, KemAlgorithm};

/// `application/ohttp-keys`.
pub const KEYS_MEDIA_TYPE: &str = "application/ohttp-keys";
/// `message/ohttp-req`.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
/// `message/ohttp-res`.
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";

const KEM_X25519: u16 = 0x0020;
const KDF_HKDF_SHA256: u16 = 0x0001;
const AEAD_AES_128_GCM: u16 = 0x0001;
const AEAD_CHACHA20_POLY1305: u16 = 0x0003;
const NENC: usize = 32;

/// What is wrong with an OHTTP or Binary HTTP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OhttpError {
    /// The bytes do not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A key ID, KEM, KDF or AEAD this gateway does not have or use.
    #[error("unsupported {0}")]
    Unsupported(String),
    /// Decryption failed.
    #[error("{0} does not decrypt")]
    Decrypt(&'static str),
    /// An HPKE failure.
    #[error("HPKE: {0}")]
    Hpke(String),
}

fn hpke_err(e: impl std::fmt::Debug) -> OhttpError {
    OhttpError::Hpke(format!("{e:?}"))
}

// ---- QUIC variable-length integers (RFC 9000 §16), as Binary HTTP uses them ----

fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 1 << 6 {
        out.push(v as u8);
    } else if v < 1 << 14 {
        out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.b.is_empty()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], OhttpError> {
        if self.b.len() < n {
            return Err(OhttpError::Malformed(what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, OhttpError> {
        let first = *self.b.first().ok_or(OhttpError::Malformed(what))?;
        let len = 1usize << (first >> 6);
        let bytes = self.take(len, what)?;
        let mut v = u64::from(first & 0x3f);
        for b in &bytes[1..] {
            v = (v << 8) | u64::from(*b);
        }
        Ok(v)
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], OhttpError> {
        let n = self.varint(what)?;
        let n = usize::try_from(n).map_err(|_| OhttpError::Malformed(what))?;
        self.take(n, what)
    }

    fn text(&mut self, what: &'static str) -> Result<String, OhttpError> {
        String::from_utf8(self.bytes(what)?.to_vec()).map_err(|_| OhttpError::Malformed(what))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, OhttpError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Header fields: (lowercase name, value).
pub type Fields = Vec<(String, String)>;

fn put_fields(out: &mut Vec<u8>, fields: &Fields) {
    let mut section = Vec::new();
    for (n, v) in fields {
        put_bytes(&mut section, n.to_ascii_lowercase().as_bytes());
        put_bytes(&mut section, v.as_bytes());
    }
    put_bytes(out, &section);
}

fn read_fields(c: &mut Cursor<'_>, what: &'static str) -> Result<Fields, OhttpError> {
    if c.at_end() {
        return Ok(Vec::new());
    }
    let mut inner = Cursor { b: c.bytes(what)? };
    let mut out = Vec::new();
    while !inner.at_end() {
        let n = inner.text(what)?;
        if n.is_empty() || n.bytes().any(|b| b.is_ascii_uppercase()) {
            // RFC 9292 §3.6: names are lowercase tokens.
            return Err(OhttpError::Malformed(what));
        }
        out.push((n, inner.text(what)?));
    }
    Ok(out)
}

fn read_content(c: &mut Cursor<'_>) -> Result<Vec<u8>, OhttpError> {
    if c.at_end() {
        return Ok(Vec::new());
    }
    Ok(c.bytes("Binary HTTP content")?.to_vec())
}

fn read_tail(c: &mut Cursor<'_>) -> Result<(), OhttpError> {
    // Trailers (ignored) and padding (zeros only), both optional.
    if !c.at_end() {
        read_fields(c, "Binary HTTP trailer section")?;
    }
    if c.b.iter().any(|b| *b != 0) {
        return Err(OhttpError::Malformed("Binary HTTP padding"));
    }
    Ok(())
}

/// Ends a message, leaving out the trailing sections that are empty (RFC 9292 §3.8).
fn finish(mut out: Vec<u8>, fields: &Fields, content: &[u8]) -> Vec<u8> {
    if !fields.is_empty() || !content.is_empty() {
        put_fields(&mut out, fields);
    }
    if !content.is_empty() {
        put_bytes(&mut out, content);
    }
    out
}

/// A Binary HTTP request (known-length, framing indicator 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryRequest {
    /// `GET`, ...
    pub method: String,
    /// `https`.
    pub scheme: String,
    /// The host (and port).
    pub authority: String,
    /// Path and query.
    pub path: String,
    /// Header fields.
    pub headers: Fields,
    /// Content.
    pub content: Vec<u8>,
}

impl BinaryRequest {
    /// A GET of an absolute `https://host/path` URL.
    pub fn get(url: &str) -> Result<Self, OhttpError> {
        let rest = url
            .strip_prefix("https://")
            .ok_or(OhttpError::Malformed("request URL (https:// only)"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(OhttpError::Malformed("request URL authority"));
        }
        Ok(Self {
            method: "GET".into(),
            scheme: "https".into(),
            authority: authority.into(),
            path: path.into(),
            ..Self::default()
        })
    }

    /// The URL it names.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path)
    }

    /// The encoding (empty trailing sections left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0];
        for s in [&self.method, &self.scheme, &self.authority, &self.path] {
            put_bytes(&mut out, s.as_bytes());
        }
        finish(out, &self.headers, &self.content)
    }

    /// Decodes a known-length request.
    pub fn decode(b: &[u8]) -> Result<Self, OhttpError> {
        let mut c = Cursor { b };
        if c.varint("Binary HTTP framing indicator")? != 0 {
            return Err(OhttpError::Unsupported(
                "Binary HTTP framing (known-length requests only)".into(),
            ));
        }
        let r = Self {
            method: c.text("Binary HTTP method")?,
            scheme: c.text("Binary HTTP scheme")?,
            authority: c.text("Binary HTTP authority")?,
            path: c.text("Binary HTTP path")?,
            headers: read_fields(&mut c, "Binary HTTP header section")?,
            content: read_content(&mut c)?,
        };
        read_tail(&mut c)?;
        Ok(r)
    }
}

/// A Binary HTTP response (known-length, framing indicator 1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinaryResponse {
    /// The final status (200–599).
    pub status: u16,
    /// Header fields.
    pub headers: Fields,
    /// Content.
    pub content: Vec<u8>,
}

impl BinaryResponse {
    /// The encoding (empty trailing sections left out).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1];
        put_varint(&mut out, u64::from(self.status));
        finish(out, &self.headers, &self.content)
    }

    /// Decodes a known-length response (informational responses are skipped).
    pub fn decode(b: &[u8]) -> Result<Self, OhttpError> {
        let mut c = Cursor { b };
        if c.varint("Binary HTTP framing indicator")? != 1 {
            return Err(OhttpError::Unsupported(
                "Binary HTTP framing (known-length responses only)".into(),
            ));
        }
        let status = loop {
            let s = c.varint("Binary HTTP status")?;
            match s {
                100..=199 => {
                    read_fields(&mut c, "Binary HTTP informational fields")?;
                }
                200..=599 => break s as u16,
                _ => return Err(OhttpError::Malformed("Binary HTTP status")),
            }
        };
        let r = Self {
            status,
            headers: read_fields(&mut c, "Binary HTTP header section")?,
            content: read_content(&mut c)?,
        };
        read_tail(&mut c)?;
        Ok(r)
    }
}

// ---- Key configurations (RFC 9458 §3) ----

/// One key configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyConfig {
    /// Key Identifier.
    pub key_id: u8,
    /// HPKE KEM ID.
    pub kem_id: u16,
    /// The public key (`Npk` bytes).
    pub public_key: Vec<u8>,
    /// (KDF ID, AEAD ID) pairs.
    pub symmetric: Vec<(u16, u16)>,
}

impl KeyConfig {
    /// The encoding of one configuration.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.key_id];
        out.extend_from_slice(&self.kem_id.to_be_bytes());
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&((self.symmetric.len() * 4) as u16).to_be_bytes());
        for (k, a) in &self.symmetric {
            out.extend_from_slice(&k.to_be_bytes());
            out.extend_from_slice(&a.to_be_bytes());
        }
        out
    }

    /// Decodes one configuration (X25519 keys only: `Npk` depends on the KEM).
    pub fn decode(b: &[u8]) -> Result<Self, OhttpError> {
        let mut c = Cursor { b };
        let key_id = c.take(1, "key configuration")?[0];
        let kem_id = c.u16("key configuration KEM")?;
        if kem_id != KEM_X25519 {
            return Err(OhttpError::Unsupported(format!("KEM 0x{kem_id:04x}")));
        }
        let public_key = c.take(32, "key configuration public key")?.to_vec();
        let n = usize::from(c.u16("key configuration algorithms length")?);
        if n < 4 || n % 4 != 0 {
            return Err(OhttpError::Malformed("key configuration algorithms length"));
        }
        let mut algs = Cursor {
            b: c.take(n, "key configuration algorithms")?,
        };
        let mut symmetric = Vec::new();
        while !algs.at_end() {
            symmetric.push((
                algs.u16("key configuration KDF")?,
                algs.u16("key configuration AEAD")?,
            ));
        }
        if !c.at_end() {
            return Err(OhttpError::Malformed("key configuration (trailing bytes)"));
        }
        Ok(Self {
            key_id,
            kem_id,
            public_key,
            symmetric,
        })
    }

    /// `application/ohttp-keys`: each configuration with a two-byte length.
    pub fn encode_list(configs: &[KeyConfig]) -> Vec<u8> {
        let mut out = Vec::new();
        for k in configs {
            let b = k.encode();
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(&b);
        }
        out
    }

    /// Decodes `application/ohttp-keys`; any encoding error discards the whole list
    /// (RFC 9458 §3.2). Configurations of KEMs we do not have are skipped.
    pub fn decode_list(b: &[u8]) -> Result<Vec<KeyConfig>, OhttpError> {
        let mut c = Cursor { b };
        let mut out = Vec::new();
        while !c.at_end() {
            let n = usize::from(c.u16("ohttp-keys length")?);
            match KeyConfig::decode(c.take(n, "ohttp-keys entry")?) {
                Ok(k) => out.push(k),
                Err(OhttpError::Unsupported(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn aead_of(id: u16) -> Result<AeadAlgorithm, OhttpError> {
    match id {
        AEAD_AES_128_GCM => Ok(AeadAlgorithm::Aes128Gcm),
        AEAD_CHACHA20_POLY1305 => Ok(AeadAlgorithm::ChaCha20Poly1305),
        other => Err(OhttpError::Unsupported(format!("AEAD 0x{other:04x}"))),
    }
}

fn hpke(aead: AeadAlgorithm) -> Hpke<HpkeRustCrypto> {
    Hpke::new(
        HpkeMode::Base,
        KemAlgorithm::DhKem25519,
        KdfAlgorithm::HkdfSha256,
        aead,
    )
}

fn header(key_id: u8, aead: u16) -> Vec<u8> {
    let mut hdr = vec![key_id];
    hdr.extend_from_slice(&KEM_X25519.to_be_bytes());
    hdr.extend_from_slice(&KDF_HKDF_SHA256.to_be_bytes());
    hdr.extend_from_slice(&aead.to_be_bytes());
    hdr
}

fn request_info(hdr: &[u8]) -> Vec<u8> {
    let mut info = b"message/bhttp request\0".to_vec();
    info.extend_from_slice(hdr);
    info
}

/// The response keys of one exchange (RFC 9458 §4.4), on either side.
pub struct ResponseKeys {
    secret: Vec<u8>,
    enc: Vec<u8>,
    aead: AeadAlgorithm,
}

impl ResponseKeys {
    fn new(
        ctx: &Context<HpkeRustCrypto>,
        enc: Vec<u8>,
        aead: AeadAlgorithm,
    ) -> Result<Self, OhttpError> {
        let n = HpkeRustCrypto::aead_nonce_length(aead).max(HpkeRustCrypto::aead_key_length(aead));
        Ok(Self {
            secret: ctx.export(b"message/bhttp response", n).map_err(hpke_err)?,
            enc,
            aead,
        })
    }

    fn key_and_nonce(&self, response_nonce: &[u8]) -> Result<(Vec<u8>, Vec<u8>), OhttpError> {
        let mut salt = self.enc.clone();
        salt.extend_from_slice(response_nonce);
        let kdf = KdfAlgorithm::HkdfSha256;
        let prk = HpkeRustCrypto::kdf_extract(kdf, &salt, &self.secret).map_err(hpke_err)?;
        let key = HpkeRustCrypto::kdf_expand(
            kdf,
            &prk,
            b"key",
            HpkeRustCrypto::aead_key_length(self.aead),
        )
        .map_err(hpke_err)?;
        let nonce = HpkeRustCrypto::kdf_expand(
            kdf,
            &prk,
            b"nonce",
            HpkeRustCrypto::aead_nonce_length(self.aead),
        )
        .map_err(hpke_err)?;
        Ok((key, nonce))
    }

    fn nonce_len(&self) -> usize {
        HpkeRustCrypto::aead_nonce_length(self.aead).max(HpkeRustCrypto::aead_key_length(self.aead))
    }

    /// The gateway's Encapsulated Response with a given `response_nonce` (tests; use
    /// [`ResponseKeys::seal`]).
    pub fn seal_with_nonce(
        &self,
        response: &[u8],
        response_nonce: &[u8],
    ) -> Result<Vec<u8>, OhttpError> {
        let (key, nonce) = self.key_and_nonce(response_nonce)?;
        let ct =
            HpkeRustCrypto::aead_seal(self.aead, &key, &nonce, b"", response).map_err(hpke_err)?;
        let mut out = response_nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// The gateway's Encapsulated Response, with a fresh random nonce.
    pub fn seal(&self, response: &[u8]) -> Result<Vec<u8>, OhttpError> {
        let mut nonce = vec![0u8; self.nonce_len()];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| OhttpError::Hpke("no randomness".into()))?;
        self.seal_with_nonce(response, &nonce)
    }

    /// The client's opening of an Encapsulated Response carrying a Binary HTTP response.
    pub fn open_response(&self, enc_response: &[u8]) -> Result<BinaryResponse, OhttpError> {
        BinaryResponse::decode(&self.open(enc_response)?)
    }

    /// The client's opening of an Encapsulated Response.
    pub fn open(&self, enc_response: &[u8]) -> Result<Vec<u8>, OhttpError> {
        let n = self.nonce_len();
        if enc_response.len() < n {
            return Err(OhttpError::Malformed("Encapsulated Response"));
        }
        let (response_nonce, ct) = enc_response.split_at(n);
        let (key, nonce) = self.key_and_nonce(response_nonce)?;
        HpkeRustCrypto::aead_open(self.aead, &key, &nonce, b"", ct)
            .map_err(|_| OhttpError::Decrypt("the Encapsulated Response"))
    }
}

/// The client side of an asset download: `GET <url>` encapsulated to the first usable
/// configuration of a gateway's `application/ohttp-keys`, and the keys that open its answer
/// ([`ResponseKeys::open_response`]).
pub fn encapsulate_get(keys: &[u8], url: &str) -> Result<(Vec<u8>, ResponseKeys), OhttpError> {
    let configs = KeyConfig::decode_list(keys)?;
    let config = configs.first().ok_or_else(|| {
        OhttpError::Unsupported("every key configuration (X25519 with HKDF-SHA256 only)".into())
    })?;
    encapsulate_request(config, &BinaryRequest::get(url)?.encode())
}

/// The client side: an Encapsulated Request to `config`, and the keys that open its response.
pub fn encapsulate_request(
    config: &KeyConfig,
    request: &[u8],
) -> Result<(Vec<u8>, ResponseKeys), OhttpError> {
    if config.kem_id != KEM_X25519 {
        return Err(OhttpError::Unsupported(format!(
            "KEM 0x{:04x}",
            config.kem_id
        )));
    }
    let aead_id = config
        .symmetric
        .iter()
        .find(|(k, a)| *k == KDF_HKDF_SHA256 && aead_of(*a).is_ok())
        .map(|(_, a)| *a)
        .ok_or_else(|| OhttpError::Unsupported("every KDF/AEAD of the key configuration".into()))?;
    let aead = aead_of(aead_id)?;
    let hdr = header(config.key_id, aead_id);
    let pk = HpkePublicKey::new(config.public_key.clone());
    let (enc, mut ctx) = hpke(aead)
        .setup_sender(&pk, &request_info(&hdr), None, None, None)
        .map_err(hpke_err)?;
    let ct = ctx.seal(b"", request).map_err(hpke_err)?;
    let keys = ResponseKeys::new(&ctx, enc.clone(), aead)?;
    let mut out = hdr;
    out.extend_from_slice(&enc);
    out.extend_from_slice(&ct);
    Ok((out, keys))
}

/// An Oblivious Gateway Resource's key.
pub struct GatewayKey {
    config: KeyConfig,
    secret: HpkePrivateKey,
}

impl GatewayKey {
    fn with_keys(key_id: u8, public_key: Vec<u8>, secret: HpkePrivateKey) -> Self {
        Self {
            config: KeyConfig {
                key_id,
                kem_id: KEM_X25519,
                public_key,
                symmetric: vec![
                    (KDF_HKDF_SHA256, AEAD_AES_128_GCM),
                    (KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305),
                ],
            },
            secret,
        }
    }

    /// From an X25519 secret key.
    pub fn from_secret(key_id: u8, secret: &[u8]) -> Result<Self, OhttpError> {
        let public =
            HpkeRustCrypto::secret_to_public(KemAlgorithm::DhKem25519, secret).map_err(hpke_err)?;
        Ok(Self::with_keys(
            key_id,
            public,
            HpkePrivateKey::new(secret.to_vec()),
        ))
    }

    /// Derived from secret input keying material (RFC 9180 DeriveKeyPair), so that every
    /// process holding the same material has the same key.
    pub fn derive(key_id: u8, ikm: &[u8]) -> Result<Self, OhttpError> {
        let pair = hpke(AeadAlgorithm::Aes128Gcm)
            .derive_key_pair(ikm)
            .map_err(hpke_err)?;
        let (sk, pk) = pair.into_keys();
        Ok(Self::with_keys(key_id, pk.as_slice().to_vec(), sk))
    }

    /// Its key configuration.
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// Decapsulates an Encapsulated Request: the Binary HTTP request and the keys for the
    /// response.
    pub fn decapsulate(&self, enc_request: &[u8]) -> Result<(Vec<u8>, ResponseKeys), OhttpError> {
        let mut c = Cursor { b: enc_request };
        let key_id = c.take(1, "Encapsulated Request")?[0];
        let kem = c.u16("Encapsulated Request KEM")?;
        let kdf = c.u16("Encapsulated Request KDF")?;
        let aead_id = c.u16("Encapsulated Request AEAD")?;
        if key_id != self.config.key_id || kem != KEM_X25519 {
            return Err(OhttpError::Unsupported(format!(
                "key {key_id} with KEM 0x{kem:04x}"
            )));
        }
        if !self.config.symmetric.contains(&(kdf, aead_id)) {
            return Err(OhttpError::Unsupported(format!(
                "KDF 0x{kdf:04x} with AEAD 0x{aead_id:04x}"
            )));
        }
        let aead = aead_of(aead_id)?;
        let enc = c.take(NENC, "Encapsulated Request enc")?.to_vec();
        let hdr = header(key_id, aead_id);
        let mut ctx = hpke(aead)
            .setup_receiver(&enc, &self.secret, &request_info(&hdr), None, None, None)
            .map_err(|_| OhttpError::Decrypt("the Encapsulated Request"))?;
        let request = ctx
            .open(b"", c.b)
            .map_err(|_| OhttpError::Decrypt("the Encapsulated Request"))?;
        let keys = ResponseKeys::new(&ctx, enc, aead)?;
        Ok((request, keys))
    }
}
