//! reportAbuse (protocol-06 §5.9).

use crate::codec::{Body, Reader, WireError, Writer};
use crate::common::{AppDataDictionary, Frank, read_uri, read_user};
use crate::id::UserUri;

/// `AbusiveMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbusiveMessage {
    /// `message_content`: the decrypted MIMI content.
    pub message_content: Vec<u8>,
    /// `frank`.
    pub frank: Frank,
    /// `accepted_timestamp`.
    pub accepted_timestamp: u64,
}

/// `AbuseReport`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbuseReport {
    /// `reportingUser`: "optional" in the prose; empty on the wire when absent
    /// (`WIRE-5.9-reporting-user`).
    pub reporting_user: Option<UserUri>,
    /// `allegedAbuserUri`.
    pub alleged_abuser_uri: UserUri,
    /// `AbuseType reasonCode` (no values defined yet).
    pub reason_code: u8,
    /// `note` (UTF-8, may be empty).
    pub note: String,
    /// `messages<V>`.
    pub messages: Vec<AbusiveMessage>,
    /// `abuse_extensions`.
    pub extensions: AppDataDictionary,
}

impl Body for AbuseReport {
    const NAME: &'static str = "AbuseReport";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let reporting_user = read_uri(r, "AbuseReport.reportingUser", |s| {
            if s.is_empty() {
                Ok(None)
            } else {
                UserUri::parse(s).map(Some)
            }
        })?;
        let alleged_abuser_uri = read_user(r, "AbuseReport.allegedAbuserUri")?;
        let reason_code = r.u8("AbuseReport.reasonCode")?;
        let opaque = r.limits.max_opaque;
        let note = r.text(opaque, "AbuseReport.note")?;
        let mls = r.limits.max_mls;
        let messages = r.vector("AbuseReport.messages", |r| {
            Ok(AbusiveMessage {
                message_content: r.opaque(mls, "AbusiveMessage.message_content")?,
                frank: Frank::read(r)?,
                accepted_timestamp: r.u64("AbusiveMessage.accepted_timestamp")?,
            })
        })?;
        Ok(Self {
            reporting_user,
            alleged_abuser_uri,
            reason_code,
            note,
            messages,
            extensions: AppDataDictionary::read(r, "AbuseReport.abuse_extensions")?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.opaque(
            self.reporting_user
                .as_ref()
                .map_or(&b""[..], |u| u.as_str().as_bytes()),
        );
        w.opaque(self.alleged_abuser_uri.as_str().as_bytes());
        w.u8(self.reason_code);
        w.opaque(self.note.as_bytes());
        w.vector(&self.messages, |w, m| {
            w.opaque(&m.message_content);
            m.frank.write(w);
            w.u64(m.accepted_timestamp);
        });
        self.extensions.write(w);
    }
}
