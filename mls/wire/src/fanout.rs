//! notify (protocol-06 §5.5): what the hub fans out.

use crate::codec::{Body, Limits, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::{Frank, RatchetTreeOption};
use crate::mls_kind::{MessageKind, WIRE_FORMAT_PRIVATE, header};
use openmls::prelude::MlsMessageIn;

/// The draft's select of `FanoutMessage`, keyed as we decided (`WIRE-5.5-fanout-select`, see
/// spec-notes): a Welcome by its wire format, anything else by its content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FanoutExtra {
    /// `case application: optional<Frank> frank`.
    Application(Option<Frank>),
    /// `case welcome: RatchetTreeOption ratchetTreeOption`.
    Welcome(RatchetTreeOption),
    /// `case proposal: MLSMessage moreProposals<V>`.
    Proposal(Vec<Mls<MlsMessageIn>>),
    /// `case commit: MLSMessage externalProposals<V>`.
    Commit(Vec<Mls<MlsMessageIn>>),
}

/// `FanoutMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FanoutMessage {
    /// `uint64 timestamp`: when the hub accepted it (ms since the UNIX epoch).
    pub timestamp: u64,
    /// `MLSMessage message`.
    pub message: Mls<MlsMessageIn>,
    /// What follows, by the message's kind.
    pub extra: FanoutExtra,
}

impl Body for FanoutMessage {
    const NAME: &'static str = "FanoutMessage";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let timestamp = r.u64("FanoutMessage.timestamp")?;
        let f = "FanoutMessage.message";
        let message = r.mls::<MlsMessageIn>(f)?;
        let h = header(&message)?;
        // WIRE-5.5-wire-formats: "A PrivateMessage containing an application message, a
        // SemiPrivateMessage or PublicMessage containing a proposal or commit, or a Welcome".
        let bad = |r: &Reader<'_>| {
            Err(r.error_back(
                message.as_bytes().len(),
                WireErrorKind::BadValue(u64::from(h.wire_format)),
                f,
            ))
        };
        let private = h.wire_format == WIRE_FORMAT_PRIVATE;
        let extra = match h.kind {
            MessageKind::Application if !private => return bad(r),
            MessageKind::Proposal | MessageKind::Commit if private => return bad(r),
            MessageKind::Application => {
                FanoutExtra::Application(r.optional("FanoutMessage.frank", Frank::read)?)
            }
            MessageKind::Welcome => FanoutExtra::Welcome(RatchetTreeOption::read(r)?),
            MessageKind::Proposal => {
                let g = "FanoutMessage.moreProposals";
                FanoutExtra::Proposal(read_handshakes(r, g, MessageKind::Proposal)?)
            }
            MessageKind::Commit => {
                let g = "FanoutMessage.externalProposals";
                FanoutExtra::Commit(read_handshakes(r, g, MessageKind::Proposal)?)
            }
            MessageKind::GroupInfo | MessageKind::KeyPackage => return bad(r),
        };
        Ok(Self {
            timestamp,
            message,
            extra,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u64(self.timestamp);
        w.raw(self.message.as_bytes());
        match &self.extra {
            FanoutExtra::Application(frank) => w.optional(frank.as_ref(), |w, f| f.write(w)),
            FanoutExtra::Welcome(tree) => tree.write(w),
            FanoutExtra::Proposal(more) | FanoutExtra::Commit(more) => {
                w.vector(more, |w, m| w.raw(m.as_bytes()));
            }
        }
    }
}

/// `MLSMessage x<V>` whose elements are all handshakes of `kind` as Public- (or SemiPrivate-)
/// Messages (`WIRE-5.5-wire-formats`).
fn read_handshakes(
    r: &mut Reader<'_>,
    field: &'static str,
    kind: MessageKind,
) -> Result<Vec<Mls<MlsMessageIn>>, WireError> {
    let out = r.vector(field, |r| r.mls(field))?;
    for m in &out {
        let h = header(m)?;
        if h.kind != kind || h.wire_format == WIRE_FORMAT_PRIVATE {
            return Err(r.error(WireErrorKind::BadValue(u64::from(h.wire_format)), field));
        }
    }
    Ok(out)
}

/// A notify body of several FanoutMessages for one room: their encodings concatenated
/// (`WIRE-5.5-concat`).
pub fn join_notify(messages: &[FanoutMessage]) -> Vec<u8> {
    let mut w = Writer::new();
    for m in messages {
        m.write(&mut w);
    }
    w.finish()
}

/// Splits a notify body (one or more concatenated FanoutMessages, `WIRE-5.5-concat`) into
/// its messages, each with its exact bytes.
pub fn split_notify(
    body: &[u8],
    limits: Limits,
) -> Result<Vec<(FanoutMessage, Vec<u8>)>, WireError> {
    let mut r = Reader::new(body, limits);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        if out.len() >= limits.max_items {
            return Err(r.error(
                WireErrorKind::TooLong {
                    found: out.len() + 1,
                    limit: limits.max_items,
                },
                "notify body",
            ));
        }
        let before = body.len() - r.remaining();
        let m = FanoutMessage::read(&mut r)?;
        let after = body.len() - r.remaining();
        out.push((m, body.get(before..after).unwrap_or_default().to_vec()));
    }
    if out.is_empty() {
        return Err(r.error(WireErrorKind::Truncated, "notify body"));
    }
    Ok(out)
}
