//! The `MlsRules` that make an mls-rs group apply AppDataUpdate (a custom proposal to mls-rs)
//! the way openmls does: `filter_proposals` resolves the commit's AppDataUpdates with
//! mimi-room's resolver and adds a **local** GroupContextExtensions proposal
//! (`ProposalSource::Local`) carrying the new app_data_dictionary. A local proposal is applied
//! but never sent (`ProposalBundle::proposals_or_refs` skips it) and never counts for the
//! path requirement (`proposal_filter::path_update_required`), so on the wire the commit
//! carries only the AppDataUpdate, as openmls expects, and on both sides the new GroupContext
//! is the one openmls computes.

use crate::appdata::{self, APP_DATA_UPDATE, AppDataError, SELF_REMOVE};
use mimi_room::codepoints::CodePoints;
use mls_rs::MlsRules;
use mls_rs::error::IntoAnyError;
use mls_rs::group::proposal::{CustomProposal, Proposal};
use mls_rs::group::{GroupContext, Roster, Sender};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle, ProposalSource,
};

/// Why the rules refuse a commit.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The AppDataUpdates do not decode or the resolver refuses them.
    #[error(transparent)]
    AppData(#[from] AppDataError),
    /// A GroupContextExtensions proposal in the same commit as AppDataUpdates (openmls then
    /// refuses any dictionary change; we do not combine the two).
    #[error("a GroupContextExtensions proposal together with AppDataUpdate proposals")]
    GceWithAppData,
}

impl IntoAnyError for RulesError {
    fn into_dyn_error(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        Ok(Box::new(self))
    }
}

/// MIMI's rules for an mls-rs device.
#[derive(Clone, Debug)]
pub struct MimiRules {
    /// Component IDs.
    pub codepoints: CodePoints,
}

impl MlsRules for MimiRules {
    type Error = RulesError;

    fn filter_proposals(
        &self,
        _direction: CommitDirection,
        source: CommitSource,
        _roster: &Roster,
        context: &GroupContext,
        mut proposals: ProposalBundle,
    ) -> Result<ProposalBundle, Self::Error> {
        // The commit's AppDataUpdates in commit order (by value and by reference alike).
        let ops = proposals
            .custom_proposals()
            .iter()
            .filter(|p| u16::from(p.proposal.proposal_type()) == APP_DATA_UPDATE)
            .map(|p| appdata::decode_update(p.proposal.data()))
            .collect::<Result<Vec<_>, _>>()?;
        if ops.is_empty() {
            return Ok(proposals);
        }
        if !proposals.group_context_ext_proposals().is_empty() {
            return Err(RulesError::GceWithAppData);
        }
        let (exts, _) = appdata::apply(&context.extensions, &self.codepoints, &ops)?;
        let sender = match source {
            CommitSource::ExistingMember(m) => Sender::Member(m.index),
            CommitSource::NewMember(_) => Sender::NewMemberCommit,
        };
        proposals.add(
            Proposal::GroupContextExtensions(exts),
            sender,
            ProposalSource::Local,
        );
        Ok(proposals)
    }

    fn commit_options(
        &self,
        _: &Roster,
        _: &GroupContext,
        _: &ProposalBundle,
    ) -> Result<CommitOptions, Self::Error> {
        // MIMI: the tree travels beside the Welcome and the GroupInfo (RatchetTreeOption),
        // and the committer's GroupInfo (with external_pub) goes to the hub with each commit.
        Ok(CommitOptions::new()
            .with_ratchet_tree_extension(false)
            .with_single_welcome_message(true)
            .with_allow_external_commit(true))
    }

    fn encryption_options(
        &self,
        _: &Roster,
        _: &GroupContext,
    ) -> Result<EncryptionOptions, Self::Error> {
        // Handshakes are PublicMessages so the hub can validate them (DESIGN.md).
        Ok(EncryptionOptions::new(
            false,
            mls_rs::client_builder::PaddingMode::None,
        ))
    }

    /// openmls 0.9.2 (`ProposalType::is_path_required`): AppDataUpdate needs no path,
    /// SelfRemove does.
    fn custom_proposal_requires_update_path(&self, proposal: &CustomProposal) -> bool {
        u16::from(proposal.proposal_type()) == SELF_REMOVE
    }
}
