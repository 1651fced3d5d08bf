//! update (protocol-06 §5.3): proposals and commits to the hub.

use crate::codec::{Body, Mls, Reader, WireError, WireErrorKind, Writer};
use crate::common::GroupInfoOption;
use crate::common::RatchetTreeOption;
use crate::mls_kind::{MessageKind, WIRE_FORMAT_PRIVATE, header};
use openmls::prelude::{MlsMessageIn, Welcome};

/// `HandshakeBundle`: a commit with what joiners and the hub need, or a proposal with more
/// proposals. The select on `proposalOrCommit.content.content_type` is read from the message's
/// clear header (`WIRE-5.3-bundle-select`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeBundle {
    /// A commit.
    Commit {
        /// The commit (PublicMessage for MIMI).
        commit: Mls<MlsMessageIn>,
        /// `optional<Welcome> welcome` (without ratchet_tree).
        welcome: Option<Mls<Welcome>>,
        /// The committer's GroupInfo for the new epoch.
        group_info: GroupInfoOption,
        /// The new epoch's tree.
        ratchet_tree: RatchetTreeOption,
    },
    /// One or more proposals.
    Proposal {
        /// The first.
        proposal: Mls<MlsMessageIn>,
        /// `MLSMessage moreProposals<V>`.
        more_proposals: Vec<Mls<MlsMessageIn>>,
    },
}

/// `UpdateRequest` is a HandshakeBundle (the draft's `select (room.protocol)` adds no octet).
pub type UpdateRequest = HandshakeBundle;

impl Body for HandshakeBundle {
    const NAME: &'static str = "HandshakeBundle";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let f = "HandshakeBundle.proposalOrCommit";
        let first = r.mls::<MlsMessageIn>(f)?;
        let h = header(&first)?;
        if h.wire_format == WIRE_FORMAT_PRIVATE {
            // WIRE-5.3-public-handshake: "either a PublicMessage or a SemiPrivateMessage".
            return Err(r.error_back(
                first.as_bytes().len(),
                WireErrorKind::BadValue(u64::from(h.wire_format)),
                f,
            ));
        }
        match h.kind {
            MessageKind::Commit => Ok(Self::Commit {
                commit: first,
                welcome: r.optional("HandshakeBundle.welcome", |r| {
                    r.mls("HandshakeBundle.welcome")
                })?,
                group_info: GroupInfoOption::read(r)?,
                ratchet_tree: RatchetTreeOption::read(r)?,
            }),
            MessageKind::Proposal => {
                let more = "HandshakeBundle.moreProposals";
                let more_proposals = r.vector(more, |r| r.mls(more))?;
                for p in &more_proposals {
                    let h = header(p)?;
                    // WIRE-5.3-public-handshake also for each of moreProposals.
                    if h.kind != MessageKind::Proposal || h.wire_format == WIRE_FORMAT_PRIVATE {
                        return Err(
                            r.error(WireErrorKind::BadValue(u64::from(h.wire_format)), more)
                        );
                    }
                }
                Ok(Self::Proposal {
                    proposal: first,
                    more_proposals,
                })
            }
            _ => Err(r.error(WireErrorKind::BadValue(0), f)),
        }
    }
    fn write(&self, w: &mut Writer) {
        match self {
            Self::Commit {
                commit,
                welcome,
                group_info,
                ratchet_tree,
            } => {
                w.raw(commit.as_bytes());
                w.optional(welcome.as_ref(), |w, m| w.raw(m.as_bytes()));
                group_info.write(w);
                ratchet_tree.write(w);
            }
            Self::Proposal {
                proposal,
                more_proposals,
            } => {
                w.raw(proposal.as_bytes());
                w.vector(more_proposals, |w, p| w.raw(p.as_bytes()));
            }
        }
    }
}

/// `UpdateResponseCode`, open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpdateResponseCode(pub u8);

impl UpdateResponseCode {
    /// Accepted and will be distributed.
    pub const SUCCESS: Self = Self(0);
    /// The hub is at another epoch.
    pub const WRONG_EPOCH: Self = Self(1);
    /// Room policy does not allow it.
    pub const NOT_ALLOWED: Self = Self(2);
    /// Some proposals are invalid.
    pub const INVALID_PROPOSAL: Self = Self(3);

    /// The draft's name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "success",
            1 => "wrongEpoch",
            2 => "notAllowed",
            3 => "invalidProposal",
            _ => return None,
        })
    }
}

/// The select of `UpdateRoomResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// `success`: `uint64 accepted_timestamp` (ms since the UNIX epoch).
    Success {
        /// When the hub accepted it.
        accepted_timestamp: u64,
    },
    /// `wrongEpoch`: `uint64 currentEpoch`.
    WrongEpoch {
        /// The hub's epoch.
        current_epoch: u64,
    },
    /// `notAllowed`.
    NotAllowed,
    /// `invalidProposal`: `ProposalRef invalidProposals<V>`.
    InvalidProposal {
        /// The refs (RFC 9420 ProposalRef = `opaque HashReference<V>`).
        invalid_proposals: Vec<Vec<u8>>,
    },
    /// A code this draft does not define (> 3); nothing may follow it. Only the decoder makes
    /// this; it must not hold a defined code.
    Other(UpdateResponseCode),
}

/// `UpdateRoomResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRoomResponse {
    /// `string errorDescription` (UTF-8; empty on success).
    pub error_description: String,
    /// The code and what follows it.
    pub outcome: UpdateOutcome,
}

impl UpdateRoomResponse {
    /// The response code.
    pub fn code(&self) -> UpdateResponseCode {
        match self.outcome {
            UpdateOutcome::Success { .. } => UpdateResponseCode::SUCCESS,
            UpdateOutcome::WrongEpoch { .. } => UpdateResponseCode::WRONG_EPOCH,
            UpdateOutcome::NotAllowed => UpdateResponseCode::NOT_ALLOWED,
            UpdateOutcome::InvalidProposal { .. } => UpdateResponseCode::INVALID_PROPOSAL,
            UpdateOutcome::Other(c) => c,
        }
    }
}

impl Body for UpdateRoomResponse {
    const NAME: &'static str = "UpdateRoomResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let code = UpdateResponseCode(r.u8("UpdateRoomResponse.responseCode")?);
        let opaque = r.limits.max_opaque;
        let error_description = r.text(opaque, "UpdateRoomResponse.errorDescription")?;
        let outcome = match code {
            UpdateResponseCode::SUCCESS => UpdateOutcome::Success {
                accepted_timestamp: r.u64("UpdateRoomResponse.accepted_timestamp")?,
            },
            UpdateResponseCode::WRONG_EPOCH => UpdateOutcome::WrongEpoch {
                current_epoch: r.u64("UpdateRoomResponse.currentEpoch")?,
            },
            UpdateResponseCode::NOT_ALLOWED => UpdateOutcome::NotAllowed,
            UpdateResponseCode::INVALID_PROPOSAL => {
                let f = "UpdateRoomResponse.invalidProposals";
                UpdateOutcome::InvalidProposal {
                    invalid_proposals: r.vector(f, |r| r.opaque(255, f))?,
                }
            }
            other => UpdateOutcome::Other(other),
        };
        Ok(Self {
            error_description,
            outcome,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.u8(self.code().0);
        w.opaque(self.error_description.as_bytes());
        match &self.outcome {
            UpdateOutcome::Success { accepted_timestamp } => w.u64(*accepted_timestamp),
            UpdateOutcome::WrongEpoch { current_epoch } => w.u64(*current_epoch),
            UpdateOutcome::InvalidProposal { invalid_proposals } => {
                w.vector(invalid_proposals, |w, p| w.opaque(p));
            }
            UpdateOutcome::NotAllowed | UpdateOutcome::Other(_) => {}
        }
    }
}
