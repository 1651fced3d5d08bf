//! groupInfo (protocol-06 §5.6): the hub gives an authorised joiner the room's GroupInfo and
//! ratchet tree, encrypted to the joiner's one-time HPKE key and signed with the hub key.

use crate::key_material::credential_client;
use crate::service::{Node, NodeError};
use mimi_wire::codec::{Body, Mls};
use mimi_wire::common::GroupInfoOption;
use mimi_wire::group_info::{
    GroupInfoCode, GroupInfoRatchetTreeTbe, GroupInfoRequest, GroupInfoResponse, GroupInfoSuccess,
};
use mimi_wire::id::{ProviderId, RoomUri};
use mimi_wire::sign::suite;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;

impl Node {
    /// The hub's `groupInfo/{roomId}`, called by `from` (this provider for its own clients).
    pub async fn group_info(
        &self,
        from: &ProviderId,
        room: &RoomUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<GroupInfoResponse, NodeError> {
        let req = GroupInfoRequest::decode_with(body, self.limits)?;
        let refuse = |status| GroupInfoResponse {
            room_id: room.clone(),
            status,
            success: None,
        };
        let crypto = RustCrypto::default();
        // PROTO-5.6-signature: the request is signed with the key of its credential.
        if let Err(e) = req.verify(&crypto) {
            tracing::info!(%room, error = %e, "groupInfo: bad request signature");
            return Ok(refuse(GroupInfoCode::NOT_AUTHORIZED));
        }
        let cs = suite(req.tbs.cipher_suite).map_err(|e| NodeError::BadRequest(e.to_string()))?;
        if cs.signature_algorithm() != SignatureScheme::ED25519 {
            return Err(NodeError::BadRequest(format!(
                "cipher suite {:?} is not one this hub shares (it signs with Ed25519: suite 0x0001 or 0x0003)",
                cs
            )));
        }
        let client = credential_client(&req.tbs.requesting_credential)?;
        // PROTO-5.6-acts-for: a provider asks for its own clients only.
        if client.provider() != *from {
            return Err(NodeError::Forbidden(format!(
                "{from} may not ask for a GroupInfo on behalf of {client}"
            )));
        }
        let row = match self.store.room(room.as_str()).await? {
            Some(r) if r.hub == self.domain.as_str() => r,
            _ => return Ok(refuse(GroupInfoCode::NO_SUCH_ROOM)),
        };
        let (version, mut hub) = self.hub_of_row(&row).await?;
        let version_now;
        // PROTO-5.6-authorised: a new device (or a resync) of an active participant, or a user
        // who is not listed when role 0 holds canOpenJoin with a role to join as
        // (room-policy-03 §8). A banned user is refused.
        let Some(user) = client.user() else {
            return Ok(refuse(GroupInfoCode::NOT_AUTHORIZED));
        };
        let state = hub.room_state();
        let code = &req.tbs.joining_code;
        // The time a join link's age is measured at (the fault: before any link was made).
        let link_now = if self.options.faults.join_link_never_expires {
            0
        } else {
            now_ms
        };
        let authorised = match mimi_room::policy::join_role(state, &user) {
            Ok(None) => Ok(false),
            // PROTO-5.6-joining-code: a user who is not listed joins with a valid join link's
            // code (role 0 canUseJoinCode), or without one where role 0 holds canOpenJoin.
            Ok(Some(_)) if !code.is_empty() => {
                if self.options.faults.group_info_accepts_any_code {
                    Ok(true)
                } else {
                    hub.check_join_code(code, link_now).map(|()| true)
                }
            }
            Ok(Some(_)) => {
                if state
                    .roles
                    .role(mimi_room::roles::NO_ROLE)
                    .is_some_and(|r| r.can(mimi_room::codepoints::cap::CAN_OPEN_JOIN))
                {
                    Ok(false)
                } else {
                    Err("the room is not open and the request has no joining code".to_owned())
                }
            }
            Err(d) => Err(d.reason),
        };
        let authorised = match authorised {
            Err(_) if self.options.faults.group_info_any_requester => Ok(false),
            a => a,
        };
        match authorised {
            Err(why) => {
                // The draft's only refusal code; the reason goes to the log (the response
                // has no field for it; protocol-06 §5.6 leaves codes for join codes TODO).
                tracing::info!(%room, %client, reason = %why, "groupInfo: not authorised to join");
                return Ok(refuse(GroupInfoCode::NOT_AUTHORIZED));
            }
            Ok(with_code) => {
                // PROTO-5.6-requester: the grant (and the code it came with) lives in the
                // hub's room state until the requester's external commit.
                let mut tx = match self.store.begin_room(room.as_str()).await {
                    Err(mimi_store::StoreError::NotFound(_)) => {
                        return Ok(refuse(GroupInfoCode::NO_SUCH_ROOM));
                    }
                    r => r?,
                };
                // The cached copy goes back first: the transaction reads the current one.
                self.put_hub(room.as_str(), version, hub);
                let mut fresh = self.hub_in_tx(&mut tx).await?;
                if with_code
                    && let Err(why) = fresh.check_join_code(code, link_now)
                    && !self.options.faults.group_info_accepts_any_code
                {
                    tracing::info!(%room, %client, reason = %why, "groupInfo: joining code refused");
                    return Ok(refuse(GroupInfoCode::NOT_AUTHORIZED));
                }
                fresh.grant_join(
                    &client,
                    &req.tbs.requesting_signature_key,
                    if with_code { code } else { &[] },
                    now_ms,
                );
                let epoch = fresh.epoch();
                let persist = fresh.persist();
                tx.persist_state(persist.head, persist.changes, epoch);
                let row = tx.commit().await?;
                hub = fresh;
                version_now = row.state_version;
            }
        }
        let (gi, tree) = hub
            .group_info_for_join()
            .map_err(|e| NodeError::RoomState(e.to_string()))?;
        let GroupInfoOption::Full(group_info) = gi else {
            return Err(NodeError::RoomState(
                "the hub keeps only a partial GroupInfo".into(),
            ));
        };
        let tbe = GroupInfoRatchetTreeTbe {
            group_info,
            ratchet_tree: tree,
            // PROTO-5.6-pending: the proposals the hub accepted in the current epoch.
            pending_proposals: if self.options.faults.group_info_without_pending {
                Vec::new()
            } else {
                hub.pending_proposals().to_vec()
            },
        };
        self.put_hub(room.as_str(), version_now, hub);
        let sealed = tbe
            .seal(
                &crypto,
                req.tbs.cipher_suite,
                &req.tbs.group_info_public_key,
                room,
            )
            .map_err(|e| {
                NodeError::BadRequest(format!("cannot encrypt to groupInfoPublicKey: {e}"))
            })?;
        let sender = self
            .hub_sender()
            .tls_serialize_detached()
            .map_err(|e| NodeError::RoomState(e.to_string()))?;
        let success = GroupInfoSuccess {
            cipher_suite: req.tbs.cipher_suite,
            hub_sender: Mls::from_bytes(sender)?,
            encrypted_groupinfo_and_tree: sealed,
            signature: Vec::new(),
        };
        GroupInfoResponse::signed_success(room.clone(), success, &*self.hub_key)
            .map_err(|e| NodeError::RoomState(format!("signing the GroupInfo response: {e}")))
    }
}
