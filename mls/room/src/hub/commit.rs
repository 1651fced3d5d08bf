//! The hub's acceptance of one commit (`ROOM-hub-update`): MLS validity (PublicGroup), the
//! shared resolver, the proposals queued for the epoch, policy and list/membership
//! consistency, the Welcome's completeness, the committer's GroupInfo, then merge. Every
//! refusal leaves the room unchanged: `process_message` and `stage_app_data_commit` take
//! `&self`, and the merge is the last step.

use super::{Accepted, HubRoom, NamedProposal, UpdateRejection};
use crate::mls::{client_of, ops_of, updates};
use crate::policy::{
    Denied, DeniedCode, MembershipChange, Subject, Which, authorize_commit, check_active_limits,
};
use crate::state::StateError;
use mimi_wire::Mls;
use mimi_wire::common::GroupInfoOption;
use mimi_wire::id::{ClientUri, ProviderId, UserUri};
use openmls::prelude::*;
use std::collections::BTreeSet;

/// How a queued proposal is named in `invalidProposal`.
pub(crate) fn named(q: &QueuedProposal) -> NamedProposal {
    NamedProposal {
        proposal_type: u16::from(q.proposal().proposal_type()),
        reference: (q.proposal_or_ref_type() == ProposalOrRefType::Reference)
            .then(|| q.proposal_reference_ref().as_slice().to_vec()),
    }
}

impl HubRoom {
    /// The proposals of a staged commit a refusal is about.
    fn name_subject(&self, staged: &StagedCommit, subject: &Subject) -> Vec<NamedProposal> {
        staged
            .queued_proposals()
            .filter(|q| match (subject, q.proposal()) {
                (Subject::AddedClient(c), Proposal::Add(a)) => {
                    client_of(a.key_package().leaf_node().credential()).as_ref() == Some(c)
                }
                (Subject::Component(w), Proposal::AppDataUpdate(u)) => {
                    let id = match w {
                        Which::ParticipantList => self.codepoints.participant_list,
                        Which::RoomMetadata => self.codepoints.room_metadata,
                    };
                    u.component_id() == id
                }
                _ => false,
            })
            .map(named)
            .collect()
    }

    fn denied(&self, staged: &StagedCommit, d: Denied) -> UpdateRejection {
        match (d.code, &d.subject) {
            (DeniedCode::InvalidProposal, Some(s)) => UpdateRejection::InvalidProposal {
                proposals: self.name_subject(staged, s),
                reason: d.reason,
            },
            _ => d.into(),
        }
    }

    /// A resolver refusal names the commit's AppDataUpdate proposals (by type: openmls does
    /// not expose their references before staging).
    fn resolver_refusal(e: StateError, count: usize) -> UpdateRejection {
        UpdateRejection::InvalidProposal {
            reason: e.to_string(),
            proposals: (0..count)
                .map(|_| NamedProposal {
                    proposal_type: u16::from(ProposalType::AppDataUpdate),
                    reference: None,
                })
                .collect(),
        }
    }

    pub(super) fn handle_commit(
        &mut self,
        commit: &Mls<MlsMessageIn>,
        group_info: &GroupInfoOption,
        welcome: Option<&Mls<Welcome>>,
        now_ms: u64,
    ) -> Result<Accepted, UpdateRejection> {
        let pm = self.protocol_message(commit)?;
        let processed = self
            .group
            .process_message(&self.crypto, pm)
            .map_err(|e| UpdateRejection::NotAllowed(format!("invalid commit: {e:?}")))?;
        let processed_sender = match processed.sender() {
            Sender::Member(i) => Some(*i),
            _ => None,
        };
        let (committer, external_join) = match processed.sender() {
            Sender::Member(i) => (self.client_at(*i), false),
            Sender::NewMemberCommit => (client_of(processed.credential()), true),
            _ => (None, false),
        };
        let committer = committer.ok_or_else(|| {
            UpdateRejection::NotAllowed("the committer has no MIMI client URI".into())
        })?;
        // PROTO-5.6-requester: the joiner's new leaf's signature key, which its grant names.
        let joiner_key = if external_join {
            crate::roster::external_committer_key(commit.as_bytes())
                .map(|(_, k)| k)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let committer_user: UserUri = committer.user().ok_or_else(|| {
            UpdateRejection::invalid(format!("{committer} does not name its user"))
        })?;
        let before = &self.view.state;
        let (staged, res) = match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(sc) => {
                (*sc, before.resolve(&self.codepoints, &[])?)
            }
            ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
                let ops = ops_of(u.app_data_update_proposals());
                // ROOM-resolve-deterministic: the same resolver as the committer and members.
                let res = before
                    .resolve(&self.codepoints, &ops)
                    .map_err(|e| Self::resolver_refusal(e, ops.len()))?;
                let changes = updates(self.group.app_data_dictionary_updater(), &res.changes);
                let sc = self
                    .group
                    .stage_app_data_commit(&self.crypto, *u, changes)
                    .map_err(|e| UpdateRejection::invalid(format!("{e:?}")))?;
                (sc, res)
            }
            _ => return Err(UpdateRejection::invalid("not a commit")),
        };

        // ROOM-hub-queued: a member's commit must include every proposal the hub accepted
        // for this epoch (protocol-06 §5.3). An external commit cannot (it starts a new
        // epoch for the joiner); the queue is dropped with the epoch.
        if !external_join {
            self.check_queue_included(&staged)?;
        }

        // MLS membership changes.
        let mut added = Vec::new();
        let mut added_key_packages = Vec::new();
        for a in staged.add_proposals() {
            let kp = a.add_proposal().key_package();
            let c = client_of(kp.leaf_node().credential()).ok_or_else(|| {
                UpdateRejection::invalid("an added client has no MIMI client URI")
            })?;
            let r = kp
                .hash_ref(&self.crypto)
                .map_err(|e| UpdateRejection::invalid(format!("KeyPackageRef: {e:?}")))?;
            added_key_packages.push((r.as_slice().to_vec(), c.clone()));
            added.push(c);
        }
        self.check_identities_kept(&staged, processed_sender.as_ref())?;
        let removed = self.removed_clients(&staged)?;
        self.check_operational(&staged, &res, external_join, &committer, &removed)?;
        let removed_by_hub: Vec<ClientUri> = staged
            .queued_proposals()
            .filter_map(|q| match (q.proposal(), q.sender()) {
                (Proposal::Remove(r), Sender::External(_)) => self.client_at(r.removed()),
                _ => None,
            })
            .collect();
        let removed_set: BTreeSet<&ClientUri> = removed.iter().map(|(c, _)| c).collect();
        let mut remaining: Vec<ClientUri> = self
            .view
            .clients()
            .filter(|c| !removed_set.contains(c))
            .cloned()
            .collect();
        remaining.extend(added.iter().cloned());
        if external_join {
            remaining.push(committer.clone());
        }
        // ROOM-resync: an external commit may remove one leaf, and only the committer's own
        // old leaf (RFC 9420 §12.4.3.2: a resync); the same client comes back.
        let mut resync = None;
        if external_join {
            for q in staged.queued_proposals() {
                if let (Proposal::Remove(r), Sender::NewMemberCommit) = (q.proposal(), q.sender()) {
                    let other = self.client_at(r.removed()).as_ref() != Some(&committer);
                    if other && self.fault_external_commit_removes_any_leaf && resync.is_none() {
                        continue;
                    }
                    if other || resync.is_some() {
                        return Err(UpdateRejection::InvalidProposal {
                            reason: format!(
                                "an external commit may remove only the joiner's own old leaf ({committer}); ROOM-resync"
                            ),
                            proposals: vec![named(q)],
                        });
                    }
                    resync = Some(committer.clone());
                }
            }
        }
        // PROTO-5.6-joining-code: an external joiner that presented a valid code at groupInfo
        // joins with its authority while the link is still valid.
        let grant = if external_join {
            self.grants
                .iter()
                .find(|g| g.matches(&committer, &joiner_key, now_ms) && !g.link.is_empty())
                .cloned()
        } else {
            None
        };
        if let Some(g) = &grant {
            self.check_join_code(&g.link, now_ms)
                .map_err(UpdateRejection::NotAllowed)?;
            // A single-use link goes with the join that uses it.
            let multiuser = before.join.policy.as_ref().is_some_and(|p| p.multiuser);
            if !multiuser
                && !self.fault_join_link_reuse
                && res.state.join.links.index_of(&g.link).is_some()
            {
                return Err(UpdateRejection::invalid(
                    "the join link is single-use: the joiner's commit must remove it from join_links (ROOM-join-links)",
                ));
            }
        }
        let resynced = resync.clone();
        // ROOM-hub-regenerate: the hub's own removals an external commit leaves behind.
        let invalidated_hub_removals: Vec<ClientUri> = if external_join {
            let committed: BTreeSet<&ClientUri> = removed.iter().map(|(c, _)| c).collect();
            self.group
                .queued_proposals(&self.storage)
                .map_err(|e| UpdateRejection::invalid(format!("proposal queue: {e:?}")))?
                .iter()
                .filter_map(|(_, q)| match (q.proposal(), q.sender()) {
                    (Proposal::Remove(r), Sender::External(_)) => self.client_at(r.removed()),
                    _ => None,
                })
                .filter(|c| !committed.contains(c))
                .collect()
        } else {
            Vec::new()
        };
        let change = MembershipChange {
            added: added.clone(),
            removed: removed.clone(),
            external_join,
            remaining,
            removed_by_hub,
            resync,
            joined_with_code: grant.is_some(),
        };
        authorize_commit(before, &res, &change, &committer_user)
            .map_err(|d| self.denied(&staged, d))?;
        // ROOM-policy-active-limits: the same check every member runs (only a list or
        // membership change can move an active count).
        if !res.list_updates.is_empty()
            || !change.added.is_empty()
            || !change.removed.is_empty()
            || external_join
        {
            let before_clients: Vec<ClientUri> = self.view.clients().cloned().collect();
            check_active_limits(before, &res.state, &before_clients, &change.remaining)
                .map_err(|d| self.denied(&staged, d))?;
        }
        check_welcome(welcome, &added_key_packages)?;
        self.check_group_info(&staged, group_info, &committer)?;

        // Providers with a client before (removed ones get the commit that removes them) or
        // after it, except those whose only new clients get the Welcome instead.
        let mut providers: BTreeSet<ProviderId> =
            self.view.clients().map(ClientUri::provider).collect();
        if external_join {
            providers.insert(committer.provider());
        }
        // ROOM-hub-entries: a commit that leaves the tree as it was (same tree hash: the hash
        // covers every node) need not serialise it again; its entries stay as stored.
        let same_tree =
            staged.group_context().tree_hash() == self.group.group_context().tree_hash();
        self.storage.skip_next_tree_write(same_tree);
        let merged = self.group.merge_commit(&self.storage, staged);
        self.storage.skip_next_tree_write(false);
        merged.map_err(|e| UpdateRejection::invalid(format!("{e:?}")))?;
        self.group_info = group_info.clone();
        // The queue goes with the epoch (PROTO-5.6-pending).
        self.pending.clear();
        self.view.state = res.state;
        self.view.refresh_members(&self.group);
        self.refresh_link_times(now_ms);
        if external_join {
            self.grants.retain(|g| g.client != committer);
        }
        Ok(Accepted {
            epoch: self.epoch(),
            providers,
            welcome: None,
            added,
            // A resynced client stays a member.
            removed: removed
                .into_iter()
                .map(|(c, _)| c)
                .filter(|c| Some(c) != resynced.as_ref())
                .collect(),
            added_key_packages,
            invalidated_hub_removals,
        })
    }

    /// `ROOM-policy-operational`: the MLS operational parameters in force (before the commit)
    /// allow the external commit and the proposal types; every new leaf meets the parameters
    /// before and after the commit; parameters the commit changes can be lived with, and every
    /// member's leaf meets them.
    fn check_operational(
        &self,
        staged: &StagedCommit,
        res: &crate::state::Resolution,
        external_join: bool,
        committer: &ClientUri,
        removed: &[(ClientUri, bool)],
    ) -> Result<(), UpdateRejection> {
        use crate::operational::{check_leaf, check_proposal_type, check_settable, leaf_view};
        let before = self.view.state.policies.operational.as_ref();
        let after = res.state.policies.operational.as_ref();
        if (before.is_none() && after.is_none()) || self.fault_operational_ignored {
            return Ok(());
        }
        if let Some(p) = before {
            if external_join && !p.external_commit_allowed {
                // ROOM-policy-operational-external-commit
                return Err(UpdateRejection::NotAllowed(format!(
                    "{committer}: the room's MLS operational parameters do not allow external                      commits (external_commit_allowed is false, room-policy-03 §7); ask a member                      to add this client"
                )));
            }
            for q in staged.queued_proposals() {
                // ROOM-policy-operational-proposals
                check_proposal_type(p, u16::from(q.proposal().proposal_type())).map_err(
                    |reason| UpdateRejection::InvalidProposal {
                        reason,
                        proposals: vec![named(q)],
                    },
                )?;
            }
        }
        let changed = res
            .policies_changed
            .contains(&self.codepoints.mls_operational_policy);
        if changed && let Some(p) = after {
            let gc = self.group.group_context();
            let version = match gc.protocol_version() {
                ProtocolVersion::Mls10 => 1,
                ProtocolVersion::Other(v) => v,
            };
            check_settable(p, u16::from(gc.ciphersuite()), version)
                .map_err(|reason| Self::resolver_refusal_reason(reason, res.changes.len()))?;
        }
        // ROOM-policy-operational-leaves, -kp-lifetime: the new leaves.
        let mut new_leaves: Vec<(String, crate::operational::LeafView, bool)> = Vec::new();
        for a in staged.add_proposals() {
            let leaf = a.add_proposal().key_package().leaf_node();
            let who =
                client_of(leaf.credential()).map_or("an added client".into(), |c| c.to_string());
            new_leaves.push((who, leaf_view(leaf), true));
        }
        for u in staged.update_proposals() {
            let leaf = u.update_proposal().leaf_node();
            let who = match u.sender() {
                Sender::Member(i) => self.client_at(*i).map(|c| c.to_string()),
                _ => None,
            };
            new_leaves.push((
                who.unwrap_or_else(|| "an updating member".into()),
                leaf_view(leaf),
                false,
            ));
        }
        if let Some(leaf) = staged.update_path_leaf_node() {
            new_leaves.push((committer.to_string(), leaf_view(leaf), false));
        }
        for p in [before, after].into_iter().flatten() {
            for (who, v, kp) in &new_leaves {
                check_leaf(p, who, v, *kp).map_err(UpdateRejection::NotAllowed)?;
            }
        }
        // Changed parameters: every member that stays meets them.
        if changed && let Some(p) = after {
            let removed: BTreeSet<&ClientUri> = removed.iter().map(|(c, _)| c).collect();
            for m in self.group.members() {
                let Some(leaf) = self.group.leaf(m.index) else {
                    continue;
                };
                let Some(c) = client_of(leaf.credential()) else {
                    continue;
                };
                if removed.contains(&c) {
                    continue;
                }
                check_leaf(p, c.as_str(), &leaf_view(leaf), false).map_err(|reason| {
                    Self::resolver_refusal_reason(
                        format!("{reason}: change the parameters or remove the client first"),
                        res.changes.len(),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn resolver_refusal_reason(reason: String, count: usize) -> UpdateRejection {
        UpdateRejection::InvalidProposal {
            reason,
            proposals: (0..count.max(1))
                .map(|_| NamedProposal {
                    proposal_type: u16::from(ProposalType::AppDataUpdate),
                    reference: None,
                })
                .collect(),
        }
    }

    /// `ROOM-credential-stable`: a leaf keeps its client URI. An UpdatePath or Update proposal
    /// may rotate keys but not turn one client into another (the list and every policy check
    /// hang on the URI).
    fn check_identities_kept(
        &self,
        staged: &StagedCommit,
        committer_leaf: Option<&LeafNodeIndex>,
    ) -> Result<(), UpdateRejection> {
        let kept = |leaf: LeafNodeIndex, new: &LeafNode| {
            let old = self.view.client_at(leaf);
            old.is_some() && client_of(new.credential()).as_ref() == old
        };
        if let (Some(leaf), Some(new)) = (committer_leaf, staged.update_path_leaf_node())
            && !kept(*leaf, new)
        {
            return Err(UpdateRejection::invalid(
                "the commit's UpdatePath changes the committer's client URI (ROOM-credential-stable)",
            ));
        }
        for u in staged.update_proposals() {
            if let Sender::Member(leaf) = u.sender()
                && !kept(*leaf, u.update_proposal().leaf_node())
            {
                return Err(UpdateRejection::InvalidProposal {
                    reason: "an Update changes its sender's client URI (ROOM-credential-stable)"
                        .into(),
                    proposals: vec![NamedProposal {
                        proposal_type: u16::from(ProposalType::Update),
                        reference: None,
                    }],
                });
            }
        }
        Ok(())
    }

    fn check_queue_included(&self, staged: &StagedCommit) -> Result<(), UpdateRejection> {
        let queued = self
            .group
            .queued_proposals(&self.storage)
            .map_err(|e| UpdateRejection::invalid(format!("proposal queue: {e:?}")))?;
        let included: BTreeSet<&[u8]> = staged
            .queued_proposals()
            .filter(|q| q.proposal_or_ref_type() == ProposalOrRefType::Reference)
            .map(|q| q.proposal_reference_ref().as_slice())
            .collect();
        let missing: Vec<NamedProposal> = queued
            .iter()
            .filter(|(r, _)| !included.contains(r.as_slice()))
            .map(|(r, q)| NamedProposal {
                proposal_type: u16::from(q.proposal().proposal_type()),
                reference: Some(r.as_slice().to_vec()),
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(UpdateRejection::InvalidProposal {
                reason: format!(
                    "the commit omits {} proposal(s) the hub accepted for this epoch (ROOM-hub-queued)",
                    missing.len()
                ),
                proposals: missing,
            })
        }
    }

    /// Clients removed by Remove and SelfRemove proposals, with whether the client's own user
    /// asked for it.
    fn removed_clients(
        &self,
        staged: &StagedCommit,
    ) -> Result<Vec<(ClientUri, bool)>, UpdateRejection> {
        let mut removed = Vec::new();
        for q in staged.queued_proposals() {
            let (leaf, sender) = match (q.proposal(), q.sender()) {
                (Proposal::Remove(r), s) => (r.removed(), s),
                (Proposal::SelfRemove, s @ Sender::Member(i)) => (*i, s),
                _ => continue,
            };
            let c = self
                .client_at(leaf)
                .ok_or_else(|| UpdateRejection::invalid("a removed leaf has no MIMI client URI"))?;
            let own = match sender {
                Sender::Member(i) => self.client_at(*i).and_then(|p| p.user()) == c.user(),
                _ => false,
            };
            if !removed.iter().any(|(r, _)| *r == c) {
                removed.push((c, own));
            }
        }
        Ok(removed)
    }

    /// The committer's GroupInfo must be signed by the committer and describe exactly the
    /// staged epoch (`ROOM-hub-groupinfo-check`, DESIGN.md: a keyless hub cannot check the
    /// confirmation tag).
    fn check_group_info(
        &self,
        staged: &StagedCommit,
        group_info: &GroupInfoOption,
        committer: &ClientUri,
    ) -> Result<(), UpdateRejection> {
        let gi = match group_info {
            GroupInfoOption::Full(gi) => gi,
            GroupInfoOption::Partial(_) => {
                return Err(UpdateRejection::NotAllowed(
                    "a partial GroupInfo cannot be checked; send the full GroupInfo".into(),
                ));
            }
        };
        let key = match staged.update_path_leaf_node() {
            Some(leaf) => leaf.signature_key().clone(),
            None => self
                .group
                .members()
                .find(|m| client_of(&m.credential).as_ref() == Some(committer))
                .map(|m| m.signature_key.into())
                .ok_or_else(|| UpdateRejection::invalid("no signature key for the committer"))?,
        };
        let vgi = gi
            .parse()
            .map_err(|e| UpdateRejection::invalid(e.to_string()))?;
        let pk = OpenMlsSignaturePublicKey::from_signature_key(
            key,
            self.group.ciphersuite().signature_algorithm(),
        );
        let verified: openmls::messages::group_info::GroupInfo =
            vgi.verify(&self.crypto, &pk).map_err(|_| {
                UpdateRejection::invalid(
                    "the GroupInfo is not signed by the committer (ROOM-hub-groupinfo-check)",
                )
            })?;
        if verified.group_context() != staged.group_context() {
            return Err(UpdateRejection::invalid(
                "the GroupInfo does not match the commit's new GroupContext (ROOM-hub-groupinfo-check)",
            ));
        }
        Ok(())
    }
}

/// `ROOM-hub-welcome-complete`: a commit that adds clients carries one Welcome whose secrets
/// are exactly for the added KeyPackages, so that the hub can route it and no added leaf is
/// left without a way in.
fn check_welcome(
    welcome: Option<&Mls<Welcome>>,
    added: &[(Vec<u8>, ClientUri)],
) -> Result<(), UpdateRejection> {
    let refs: BTreeSet<Vec<u8>> = match welcome {
        None if added.is_empty() => return Ok(()),
        None => {
            return Err(UpdateRejection::invalid(
                "the commit adds clients but carries no Welcome (ROOM-hub-welcome-complete)",
            ));
        }
        Some(w) => w
            .parse()
            .map_err(|e| UpdateRejection::invalid(format!("Welcome: {e}")))?
            .secrets()
            .iter()
            .map(|s| s.new_member().as_slice().to_vec())
            .collect(),
    };
    let want: BTreeSet<Vec<u8>> = added.iter().map(|(r, _)| r.clone()).collect();
    if refs != want {
        return Err(UpdateRejection::invalid(
            "the Welcome's secrets are not exactly for the added KeyPackages (ROOM-hub-welcome-complete)",
        ));
    }
    Ok(())
}
