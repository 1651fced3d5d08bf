//! The mlswg passive-client vector format (`interop-tests/vectors/mls/`, source noted there),
//! read by mimi-room's hub follow-along (`passive_client.rs`) and by mimi-room-mlsrs' vector
//! test, which includes this file by path.

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Vector {
    pub cipher_suite: u16,
    pub external_psks: Vec<Psk>,
    #[serde(with = "hex::serde")]
    pub key_package: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub signature_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub encryption_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub init_priv: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub welcome: Vec<u8>,
    pub ratchet_tree: Option<String>,
    #[serde(with = "hex::serde")]
    pub initial_epoch_authenticator: Vec<u8>,
    pub epochs: Vec<Epoch>,
}

#[derive(Deserialize)]
pub struct Psk {
    #[serde(with = "hex::serde")]
    pub psk_id: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub psk: Vec<u8>,
}

#[derive(Deserialize)]
pub struct Epoch {
    pub proposals: Vec<String>,
    #[serde(with = "hex::serde")]
    pub commit: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub epoch_authenticator: Vec<u8>,
}
