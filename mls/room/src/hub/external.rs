//! The hub's own proposals (protocol-06 §4.2: the hub is in `external_senders` and may send
//! external proposals). openmls 0.9.2 cannot build an external AppDataUpdate
//! (`spec/stack-notes.md`), so the hub proposes MLS removals only; a member commits them
//! (they are queued: `ROOM-hub-queued`), and a list change, if one is wanted, is that
//! member's AppDataUpdate.

use super::{HubError, HubRoom};
use mimi_wire::Mls;
use mimi_wire::id::ClientUri;
use openmls::prelude::*;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::signatures::Signer;

impl HubRoom {
    /// Proposes the removal of `client` as external sender `sender_index` of the group's
    /// `external_senders` (the hub is entry 0 in rooms created by [`crate::client`]). The
    /// proposal is queued at the hub like a member's (openmls needs it in the hub's own
    /// proposal store to resolve the commit that references it) and returned for fanout.
    pub fn propose_remove(
        &mut self,
        client: &ClientUri,
        hub_signer: &impl Signer,
        sender_index: u32,
    ) -> Result<Mls<MlsMessageIn>, HubError> {
        let leaf = self
            .group
            .members()
            .find(|m| crate::mls::client_of(&m.credential).as_ref() == Some(client))
            .map(|m| m.index)
            .ok_or_else(|| HubError::Unusable(format!("{client} is not in the group")))?;
        let out = ExternalProposal::new_remove::<OpenMlsRustCrypto>(
            leaf,
            self.group.group_id().clone(),
            self.group.group_context().epoch(),
            hub_signer,
            SenderExtensionIndex::new(sender_index),
        )
        .map_err(|e| HubError::Mls(format!("{e:?}")))?;
        let msg: Mls<MlsMessageIn> = Mls::encode_from(&out)?;
        let pm = msg
            .parse()?
            .try_into_protocol_message()
            .map_err(|e| HubError::Mls(format!("{e:?}")))?;
        let processed = self
            .group
            .process_message(&self.crypto, pm)
            .map_err(|e| HubError::Mls(format!("own external proposal: {e:?}")))?;
        let ProcessedMessageContent::ProposalMessage(q) = processed.into_content() else {
            return Err(HubError::Mls(
                "own external proposal is not a proposal".into(),
            ));
        };
        self.group
            .add_proposal(&self.storage, *q)
            .map_err(|e| HubError::Mls(format!("{e:?}")))?;
        self.pending.push(mimi_wire::group_info::PendingProposal {
            proposal: msg.clone(),
            hub_accepted_time: super::wall_ms(),
        });
        Ok(msg)
    }
}
