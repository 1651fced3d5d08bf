//! Consent (protocol-06 §5.7, basic), identifier query (§5.8: exact handle and nick) and
//! abuse reports (§5.9, stored for the hub operator).

use crate::service::{Node, NodeError};
use mimi_wire::codec::Body;
use mimi_wire::consent::{ConsentEntry, ConsentOperation};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::identifier::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, SearchIdentifierType,
};

/// What a KeyPackage a consent grant carried is (`PROTO-5.7-grant-checked`): it decodes and
/// validates (signature, suite, version), its basic credential is a client of `target` (of
/// its provider, for the one-segment client form), and its lifetime has not ended at `now_s`.
/// Returns its cipher suite and `not_after` (seconds), or why it is refused.
pub(crate) fn granted_key_package(
    bytes: &[u8],
    target: &UserUri,
    now_s: u64,
) -> Result<(u16, u64), String> {
    use openmls::prelude::tls_codec::Deserialize as _;
    use openmls::prelude::{BasicCredential, KeyPackageIn, ProtocolVersion};
    let kp = KeyPackageIn::tls_deserialize_exact(bytes)
        .map_err(|e| format!("not a KeyPackage: {e}"))?
        .validate(
            &openmls_rust_crypto::RustCrypto::default(),
            ProtocolVersion::Mls10,
        )
        .map_err(|e| format!("does not validate: {e:?}"))?;
    let cred = BasicCredential::try_from(kp.leaf_node().credential().clone())
        .map_err(|_| "not a basic credential".to_string())?;
    let identity = String::from_utf8_lossy(cred.identity()).into_owned();
    let client = ClientUri::parse(&identity)
        .map_err(|e| format!("its credential {identity:?} is not a client URI: {e}"))?;
    let ours = match client.user() {
        Some(user) => user == *target,
        None => client.provider() == target.provider(),
    };
    if !ours {
        return Err(format!(
            "its credential {client} is not a device of {target}"
        ));
    }
    let not_after = kp.life_time().not_after();
    if not_after < now_s {
        return Err(format!("its lifetime ended at {not_after} (now {now_s})"));
    }
    Ok((u16::from(kp.ciphersuite()), not_after))
}

/// The stored state name of a consent operation.
fn state_name(op: ConsentOperation) -> &'static str {
    match op {
        ConsentOperation::Cancel => "cancel",
        ConsentOperation::Request => "request",
        ConsentOperation::Grant => "grant",
        ConsentOperation::Revoke => "revoke",
    }
}

impl Node {
    /// Whether `target` granted `requester` consent, for `room` or for any room
    /// (`PROTO-consent`).
    pub async fn has_consent(
        &self,
        requester: &UserUri,
        target: &UserUri,
        room: &RoomUri,
    ) -> Result<bool, NodeError> {
        Ok(self
            .store
            .consent(requester.as_str(), target.as_str(), room.as_str())
            .await?
            .as_deref()
            == Some("grant"))
    }

    /// `requestConsent/{targetUser}` (`PROTO-5.7-request`): `request` or `cancel` from the
    /// requester's provider about a user of ours. Unknown users are answered like known ones
    /// (201) so that the requester learns nothing (protocol-06 §5.7).
    pub async fn request_consent(
        &self,
        from: &ProviderId,
        target: &UserUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let entry = ConsentEntry::decode_with(body, self.limits)?;
        let scope = &entry.scope;
        if !matches!(
            entry.operation,
            ConsentOperation::Request | ConsentOperation::Cancel
        ) {
            if self.options.faults.consent_request_any_operation {
                // The fault answers 201 and drops the entry (it must not store a grant the
                // requester gave itself).
                return Ok(());
            }
            return Err(NodeError::BadRequest(
                "requestConsent carries request or cancel; grant and revoke go to updateConsent (draft-ietf-mimi-protocol-06 §5.7)".into(),
            ));
        }
        if scope.target_uri != *target || target.provider() != self.domain {
            return Err(NodeError::BadRequest(format!(
                "the consent entry's target {} is not the path's {target} of {}",
                scope.target_uri, self.domain
            )));
        }
        if scope.requester_uri.provider() != *from {
            return Err(NodeError::Forbidden(format!(
                "{from} may not ask for consent on behalf of {}",
                scope.requester_uri
            )));
        }
        if self.store.user(target.as_str()).await?.is_none() {
            return Ok(());
        }
        let room = scope.room_id.as_ref().map_or("", RoomUri::as_str);
        // A request never overwrites a decision the target already made.
        let current = self
            .store
            .consent(scope.requester_uri.as_str(), target.as_str(), room)
            .await?;
        if matches!(current.as_deref(), Some("grant") | Some("revoke")) {
            return Ok(());
        }
        self.store
            .set_consent(
                scope.requester_uri.as_str(),
                target.as_str(),
                room,
                state_name(entry.operation),
                now_ms,
            )
            .await?;
        Ok(())
    }

    /// `updateConsent/{requesterUser}` (`PROTO-5.7-update`): `grant` or `revoke` from the
    /// target's provider about a requester of ours. Stored so that this side knows.
    pub async fn update_consent(
        &self,
        from: &ProviderId,
        requester: &UserUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let entry = ConsentEntry::decode_with(body, self.limits)?;
        let scope = &entry.scope;
        if !matches!(
            entry.operation,
            ConsentOperation::Grant | ConsentOperation::Revoke
        ) {
            return Err(NodeError::BadRequest(
                "updateConsent carries grant or revoke (draft-ietf-mimi-protocol-06 §5.7)".into(),
            ));
        }
        if scope.requester_uri != *requester || requester.provider() != self.domain {
            return Err(NodeError::BadRequest(format!(
                "the consent entry's requester {} is not the path's {requester} of {}",
                scope.requester_uri, self.domain
            )));
        }
        if scope.target_uri.provider() != *from {
            return Err(NodeError::Forbidden(format!(
                "{from} may not decide consent for {}",
                scope.target_uri
            )));
        }
        if self.store.user(requester.as_str()).await?.is_none() {
            return Err(NodeError::NotFound(format!("no user {requester} here")));
        }
        // PROTO-5.7-grant-checked: each one must be a valid, unexpired KeyPackage of a device
        // of the target, or the grant is refused as a whole (400 names the first bad one).
        let mut kps: Vec<Vec<u8>> = Vec::new();
        if entry.operation == ConsentOperation::Grant {
            for (n, k) in entry.client_key_packages.iter().enumerate() {
                if self.options.faults.consent_grant_unchecked {
                    kps.push(k.as_bytes().to_vec());
                    continue;
                }
                granted_key_package(k.as_bytes(), &scope.target_uri, now_ms / 1000).map_err(
                    |why| {
                        NodeError::BadRequest(format!(
                            "the grant's clientKeyPackages[{n}] {why} (draft-ietf-mimi-protocol-06 §5.7)"
                        ))
                    },
                )?;
                kps.push(k.as_bytes().to_vec());
            }
        }
        let room = scope.room_id.as_ref().map_or("", RoomUri::as_str);
        self.store
            .set_consent(
                requester.as_str(),
                scope.target_uri.as_str(),
                room,
                state_name(entry.operation),
                now_ms,
            )
            .await?;
        // PROTO-5.7-grant-key-packages: KeyPackages in a grant are kept for the requester (one
        // use each); a revocation drops any kept.
        self.store
            .put_granted_key_packages(requester.as_str(), scope.target_uri.as_str(), &kps, now_ms)
            .await?;
        Ok(())
    }

    /// A local user's decision (client API): stored here, and sent to the requester's provider
    /// when that is another one.
    pub async fn decide_consent(
        &self,
        target: &UserUri,
        requester: &UserUri,
        grant: bool,
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let op = if grant {
            ConsentOperation::Grant
        } else {
            ConsentOperation::Revoke
        };
        self.store
            .set_consent(
                requester.as_str(),
                target.as_str(),
                "",
                state_name(op),
                now_ms,
            )
            .await?;
        // PROTO-5.7-grant-key-packages: a grant carries one KeyPackage per client of the
        // target and per suite our devices publish (0x0001 and 0x0003, claimed like
        // keyMaterial's: a grant names no room, so no suite), so that the requester can add
        // the target at once to a room of either suite; given back if the requester's provider
        // cannot be told.
        let mut claimed = Vec::new();
        if grant {
            for suite in mimi_room::mls::SUITES {
                for (_, kp) in self
                    .store
                    .claim_key_packages_of_user_in(target.as_str(), now_ms, &[u16::from(suite)])
                    .await?
                {
                    if let Some(kp) = kp {
                        claimed.push(kp);
                    }
                }
            }
        }
        let kps: Vec<mimi_wire::codec::Mls<openmls::prelude::KeyPackageIn>> = claimed
            .iter()
            .filter_map(|k| mimi_wire::codec::Mls::from_bytes(k.key_package.clone()).ok())
            .collect();
        if requester.provider() != self.domain {
            let entry = ConsentEntry {
                operation: op,
                scope: mimi_wire::consent::ConsentScope {
                    requester_uri: requester.clone(),
                    target_uri: target.clone(),
                    room_id: None,
                },
                client_key_packages: kps,
                consent_extensions: Default::default(),
            };
            if let Err(e) = self
                .call(
                    &requester.provider(),
                    mimi_net::paths::Endpoint::UpdateConsent,
                    requester.as_str(),
                    entry.encode(),
                )
                .await
            {
                for k in claimed.iter().filter(|k| !k.last_resort) {
                    self.store.unclaim_key_package(&k.kp_ref).await?;
                }
                return Err(e);
            }
        } else {
            let bytes: Vec<Vec<u8>> = kps.iter().map(|k| k.as_bytes().to_vec()).collect();
            self.store
                .put_granted_key_packages(requester.as_str(), target.as_str(), &bytes, now_ms)
                .await?;
        }
        Ok(())
    }

    /// `identifierQuery/{domain}` (`PROTO-5.8-query`): exact handle or exact nick, AND of the
    /// elements; other search types are `unsupportedField`.
    pub async fn identifier_query(
        &self,
        domain: &str,
        body: &[u8],
    ) -> Result<IdentifierResponse, NodeError> {
        if !domain.eq_ignore_ascii_case(self.domain.as_str()) {
            return Err(NodeError::NotFound(format!(
                "this is {}, not {domain}",
                self.domain
            )));
        }
        let req = IdentifierRequest::decode_with(body, self.limits)?;
        let answer = |code, uris: Vec<String>| {
            Ok(IdentifierResponse {
                response_code: code,
                uris: uris
                    .iter()
                    .filter_map(|u| UserUri::parse(u).ok().map(|u| u.as_uri().clone()))
                    .collect(),
                found_profiles: Vec::new(),
                extensions: Default::default(),
            })
        };
        if req.query_elements.is_empty() {
            return answer(IdentifierQueryCode::AMBIGUOUS, Vec::new());
        }
        let mut found: Option<Vec<String>> = None;
        let used = if self.options.faults.identifier_query_first_element_only {
            1
        } else {
            req.query_elements.len()
        };
        for q in req.query_elements.iter().take(used) {
            let hits: Vec<String> = if q.search_type == SearchIdentifierType::HANDLE {
                self.store
                    .user_by_handle(&q.search_value)
                    .await?
                    .into_iter()
                    .map(|u| u.user_uri)
                    .collect()
            } else if q.search_type == SearchIdentifierType::NICK {
                self.store
                    .users_by_nick(&q.search_value)
                    .await?
                    .into_iter()
                    .map(|u| u.user_uri)
                    .collect()
            } else {
                return answer(IdentifierQueryCode::UNSUPPORTED_FIELD, Vec::new());
            };
            found = Some(match found {
                None => hits,
                Some(prev) => prev.into_iter().filter(|u| hits.contains(u)).collect(),
            });
        }
        let found = found.unwrap_or_default();
        if found.is_empty() && !self.options.faults.identifier_query_not_found_success {
            answer(IdentifierQueryCode::NOT_FOUND, Vec::new())
        } else {
            answer(IdentifierQueryCode::SUCCESS, found)
        }
    }

    /// `reportAbuse/{roomId}` (`PROTO-5.9-report`): the hub keeps the report for its operator.
    /// The reporting user, when named, must be one of the calling provider's; each reported
    /// message's frank is verified first (`PROTO-5.9-report-frank`).
    pub async fn report_abuse(
        &self,
        from: &ProviderId,
        room: &RoomUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), NodeError> {
        let report = match mimi_wire::abuse::AbuseReport::decode_with(body, self.limits) {
            Err(_) if self.options.faults.report_abuse_accepts_malformed => return Ok(()),
            r => r?,
        };
        if room.provider() != self.domain || self.store.room(room.as_str()).await?.is_none() {
            return Err(NodeError::NoRoom(room.to_string()));
        }
        if let Some(u) = &report.reporting_user
            && u.provider() != *from
            && !self.options.faults.report_abuse_any_reporter
        {
            return Err(NodeError::Forbidden(format!(
                "{from} may not report on behalf of {u}"
            )));
        }
        // PROTO-5.9-report-frank: every reported message must carry this hub's frank of that
        // very content, sender, room and time; a forged or altered one is refused (400) and
        // nothing is stored.
        for (i, m) in report.messages.iter().enumerate() {
            self.check_reported(room, &report.alleged_abuser_uri, m)
                .map_err(|e| {
                    NodeError::BadRequest(format!(
                        "AbuseReport.messages[{i}]: the frank does not verify: {e}"
                    ))
                })?;
        }
        self.store
            .add_abuse_report(room.as_str(), from.as_str(), body, now_ms)
            .await?;
        Ok(())
    }
}
