//! submitMessage (protocol-06 §5.4): application messages to the hub; franking (§5.4.1).

use crate::codec::{Body, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::{CipherSuite, Frank, Protocol, read_uri};
use crate::id::{Kind, MimiUri, RoomUri};
use crate::mls_kind::{MessageKind, header};
use openmls::prelude::MlsMessageIn;

/// `SubmitMessageRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitMessageRequest {
    /// `appMessage`: a PrivateMessage with content_type application (`WIRE-5.4-private`).
    pub app_message: Mls<MlsMessageIn>,
    /// `sendingUri`: the sender's user URI or pseudonym.
    pub sending_uri: MimiUri,
}

impl Body for SubmitMessageRequest {
    const NAME: &'static str = "SubmitMessageRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "SubmitMessageRequest.protocol")?;
        let f = "SubmitMessageRequest.appMessage";
        let app_message = r.mls::<MlsMessageIn>(f)?;
        let h = header(&app_message)?;
        if h.kind != MessageKind::Application || h.wire_format != 2 {
            // WIRE-5.4-private: application messages are PrivateMessages.
            return Err(r.error(WireErrorKind::BadValue(u64::from(h.wire_format)), f));
        }
        let sending_uri = read_uri(r, "SubmitMessageRequest.sendingUri", |s| {
            let u = MimiUri::parse(s)?;
            match u.kind() {
                Kind::User | Kind::Pseudonym => Ok(u),
                _ => crate::id::UserUri::parse(s).map(|u| u.as_uri().clone()),
            }
        })?;
        Ok(Self {
            app_message,
            sending_uri,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.raw(self.app_message.as_bytes());
        w.opaque(self.sending_uri.as_str().as_bytes());
    }
}

/// `SubmitResponseCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubmitResponseCode(pub u8);

impl SubmitResponseCode {
    /// `accepted(0)` (the text also calls it success).
    pub const ACCEPTED: Self = Self(0);
    /// `notAllowed(1)`.
    pub const NOT_ALLOWED: Self = Self(1);
    /// `epochTooOld(2)`.
    pub const EPOCH_TOO_OLD: Self = Self(2);

    /// The draft's name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "accepted",
            1 => "notAllowed",
            2 => "epochTooOld",
            _ => return None,
        })
    }
}

/// The select of `SubmitMessageResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// `accepted`.
    Accepted {
        /// When the hub accepted it.
        accepted_timestamp: u64,
        /// `optional<Frank> frank`.
        frank: Option<Frank>,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `epochTooOld`.
    EpochTooOld {
        /// The hub's epoch.
        current_epoch: u64,
    },
    /// A code this draft does not define (> 2); nothing may follow it. Only the decoder makes
    /// this; it must not hold a defined code.
    Other(SubmitResponseCode),
}

/// `SubmitMessageResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitMessageResponse {
    /// The code and what follows it.
    pub outcome: SubmitOutcome,
}

impl SubmitMessageResponse {
    /// The status code.
    pub fn code(&self) -> SubmitResponseCode {
        match self.outcome {
            SubmitOutcome::Accepted { .. } => SubmitResponseCode::ACCEPTED,
            SubmitOutcome::NotAllowed => SubmitResponseCode::NOT_ALLOWED,
            SubmitOutcome::EpochTooOld { .. } => SubmitResponseCode::EPOCH_TOO_OLD,
            SubmitOutcome::Other(c) => c,
        }
    }
}

impl Body for SubmitMessageResponse {
    const NAME: &'static str = "SubmitMessageResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Protocol::read_mls10(r, "SubmitMessageResponse.protocol")?;
        let code = SubmitResponseCode(r.u8("SubmitMessageResponse.statusCode")?);
        let outcome = match code {
            SubmitResponseCode::ACCEPTED => SubmitOutcome::Accepted {
                accepted_timestamp: r.u64("SubmitMessageResponse.accepted_timestamp")?,
                frank: r.optional("SubmitMessageResponse.frank", Frank::read)?,
            },
            SubmitResponseCode::NOT_ALLOWED => SubmitOutcome::NotAllowed,
            SubmitResponseCode::EPOCH_TOO_OLD => SubmitOutcome::EpochTooOld {
                current_epoch: r.u64("SubmitMessageResponse.currentEpoch")?,
            },
            other => SubmitOutcome::Other(other),
        };
        Ok(Self { outcome })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(Protocol::MLS10.0);
        w.u8(self.code().0);
        match &self.outcome {
            SubmitOutcome::Accepted {
                accepted_timestamp,
                frank,
            } => {
                w.u64(*accepted_timestamp);
                w.optional(frank.as_ref(), |w, f| f.write(w));
            }
            SubmitOutcome::EpochTooOld { current_epoch } => w.u64(*current_epoch),
            SubmitOutcome::NotAllowed | SubmitOutcome::Other(_) => {}
        }
    }
}

/// `ServerFrankingContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrankingContext {
    /// `sender_uri`.
    pub sender_uri: MimiUri,
    /// `room_uri`.
    pub room_uri: RoomUri,
    /// `accepted_timestamp`.
    pub accepted_timestamp: u64,
}

impl ServerFrankingContext {
    /// Its encoding (input of the server frank HMAC and part of the TBS).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.opaque(self.sender_uri.as_str().as_bytes());
        w.opaque(self.room_uri.as_str().as_bytes());
        w.u64(self.accepted_timestamp);
        w.finish()
    }
}

/// `FrankingIntegrityTBS`, signed with label "FrankingIntegrityTBS".
pub fn franking_integrity_tbs(
    server_frank: &[u8; 32],
    suite: CipherSuite,
    context: &ServerFrankingContext,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(server_frank);
    w.u16(suite.0);
    w.raw(&context.encode());
    w.finish()
}

/// The label of the franking integrity signature.
pub const FRANKING_INTEGRITY_LABEL: &str = "FrankingIntegrityTBS";
