//! keyMaterial (protocol-06 §5.2): KeyPackages claimed through the hub of the room they are
//! for. The hub checks the requester and records which provider each KeyPackageRef belongs to
//! (so that it can route the Welcome); the target provider hands out one KeyPackage per client
//! of the user, never one twice, never an expired one, and only with the user's consent.

use crate::service::{Node, NodeError};
use mimi_net::paths::Endpoint;
use mimi_store::ConsentPolicy;
use mimi_wire::codec::Body;
use mimi_wire::id::{ClientUri, ProviderId, UserUri};
use mimi_wire::key_material::{
    ClientKeyMaterial, ClientMaterial, KeyMaterialRequest, KeyMaterialResponse, KeyMaterialUserCode,
};
use mimi_wire::sign::suite;
use openmls::prelude::{BasicCredential, KeyPackageIn, ProtocolVersion};
use openmls_rust_crypto::RustCrypto;

/// The client URI a KeyMaterialRequest's (or GroupInfoRequest's) basic credential names.
pub(crate) fn credential_client(
    cred: &mimi_wire::codec::Mls<openmls::prelude::Credential>,
) -> Result<ClientUri, NodeError> {
    let cred = cred
        .parse()
        .map_err(|e| NodeError::BadRequest(format!("the requester credential: {e}")))?;
    let basic = BasicCredential::try_from(cred).map_err(|_| {
        NodeError::BadRequest("the requester credential is not a basic credential".into())
    })?;
    let id = std::str::from_utf8(basic.identity()).map_err(|_| {
        NodeError::BadRequest("the requester credential's identity is not UTF-8".into())
    })?;
    ClientUri::parse(id).map_err(|e| {
        NodeError::BadRequest(format!(
            "the requester credential's identity is not a client URI: {e}"
        ))
    })
}

impl Node {
    /// The provider endpoint `keyMaterial/{targetUser}`, called by `from` (this provider for
    /// its own clients). Returns the draft's KeyMaterialResponse.
    pub async fn key_material(
        &self,
        from: &ProviderId,
        target: &UserUri,
        body: &[u8],
        now_ms: u64,
    ) -> Result<KeyMaterialResponse, NodeError> {
        let req = KeyMaterialRequest::decode_with(body, self.limits)?;
        let tbs = &req.tbs;
        if tbs.target_user != *target {
            return Err(NodeError::BadRequest(format!(
                "the path names {target} but the body's targetUser is {}",
                tbs.target_user
            )));
        }
        // PROTO-5.2-signature: the requester signed the request with the key its credential
        // goes with, and the credential is a client of the requesting user.
        let Some(cs) = tbs.acceptable_ciphersuites.first() else {
            return Err(NodeError::BadRequest(
                "acceptableCiphersuites is empty".into(),
            ));
        };
        let scheme = suite(*cs)
            .map_err(|e| NodeError::BadRequest(e.to_string()))?
            .signature_algorithm();
        req.verify(&RustCrypto::default(), scheme).map_err(|e| {
            NodeError::Forbidden(format!(
                "the KeyMaterialRequest signature does not verify: {e}"
            ))
        })?;
        let requester_client = credential_client(&tbs.requester_credential)?;
        if requester_client.user().as_ref() != Some(&tbs.requesting_user) {
            return Err(NodeError::Forbidden(format!(
                "the requester credential ({requester_client}) is not a client of {}",
                tbs.requesting_user
            )));
        }
        let room = &tbs.room_id;
        if room.provider() == self.domain {
            // Hub side. PROTO-5.2-acts-for: the calling provider speaks for its own users only.
            if tbs.requesting_user.provider() != *from {
                return Err(NodeError::Forbidden(format!(
                    "{from} may not claim KeyPackages for {}",
                    tbs.requesting_user
                )));
            }
            // PROTO-5.2-hub-authorised: only a participant of the room may claim for it.
            let Some(row) = self.store.room(room.as_str()).await? else {
                return Err(NodeError::NoRoom(room.to_string()));
            };
            let (version, hub) = self.hub_of_row(&row).await?;
            let role = hub.room_state().role_of(&tbs.requesting_user);
            self.put_hub(&row.room_uri, version, hub);
            if role == mimi_room::roles::NO_ROLE {
                return Err(NodeError::Forbidden(format!(
                    "{} is not a participant of {room}",
                    tbs.requesting_user
                )));
            }
            if target.provider() == self.domain {
                return self.claim_local(&req, now_ms).await;
            }
            let answer = self
                .call(
                    &target.provider(),
                    Endpoint::KeyMaterial,
                    target.as_str(),
                    body.to_vec(),
                )
                .await?;
            let resp = KeyMaterialResponse::decode_with(&answer, self.limits).map_err(|e| {
                NodeError::Upstream(format!(
                    "{} answered keyMaterial with a malformed body: {e}",
                    target.provider()
                ))
            })?;
            // PROTO-5.2-hub-route: remember whose KeyPackageRefs these are.
            let crypto = RustCrypto::default();
            for c in &resp.clients {
                if let ClientMaterial::KeyPackage(kp) = &c.material {
                    match kp
                        .parse()
                        .ok()
                        .and_then(|k: KeyPackageIn| {
                            k.validate(&crypto, ProtocolVersion::Mls10).ok()
                        })
                        .and_then(|k| k.hash_ref(&crypto).ok())
                    {
                        Some(r) => {
                            self.store
                                .record_route(
                                    r.as_slice(),
                                    target.provider().as_str(),
                                    room.as_str(),
                                    now_ms,
                                )
                                .await?
                        }
                        None => tracing::warn!(
                            client = %c.client_uri,
                            "target returned a KeyPackage that does not validate"
                        ),
                    }
                }
            }
            return Ok(resp);
        }
        // Target side: only the hub of the room may ask (protocol-06 §5.2: "via the hub").
        if target.provider() == self.domain && room.provider() == *from {
            return self.claim_local(&req, now_ms).await;
        }
        Err(NodeError::Forbidden(format!(
            "keyMaterial for {target} in {room} must be requested through the room's hub {} (draft-ietf-mimi-protocol-06 §5.2)",
            room.provider()
        )))
    }

    /// Claims one KeyPackage per client of a local user (target side, `STORE-kp-claim-once`),
    /// after the consent check (`PROTO-consent`).
    async fn claim_local(
        &self,
        req: &KeyMaterialRequest,
        now_ms: u64,
    ) -> Result<KeyMaterialResponse, NodeError> {
        let target = &req.tbs.target_user;
        let empty = |code| KeyMaterialResponse {
            user_status: code,
            user_uri: target.clone(),
            clients: Vec::new(),
        };
        let Some(user) = self.store.user(target.as_str()).await? else {
            return Ok(empty(
                if self.options.faults.key_material_unknown_user_success {
                    KeyMaterialUserCode::SUCCESS
                } else {
                    KeyMaterialUserCode::USER_UNKNOWN
                },
            ));
        };
        if user.consent_policy == ConsentPolicy::ContactsOnly
            && !self.options.faults.key_material_ignores_consent
            && !self
                .has_consent(&req.tbs.requesting_user, target, &req.tbs.room_id)
                .await?
        {
            return Ok(empty(KeyMaterialUserCode::NO_CONSENT));
        }
        // STORE-kp-suite: one of the acceptable suites, in the requester's order.
        let suites: Vec<u16> = req
            .tbs
            .acceptable_ciphersuites
            .iter()
            .map(|c| c.0)
            .collect();
        let claimed = self
            .store
            .claim_key_packages_of_user_in(target.as_str(), now_ms, &suites)
            .await?;
        let required = req.tbs.required_capabilities.parse().ok();
        if self.options.faults.reuse_key_packages {
            for kp in claimed.iter().filter_map(|(_, k)| k.as_ref()) {
                self.store.unclaim_key_package(&kp.kp_ref).await?;
            }
        }
        let mut clients = Vec::new();
        let mut got = 0;
        for (client, kp) in &claimed {
            let client_uri = ClientUri::parse(client)
                .map_err(|e| NodeError::RoomState(format!("stored client {client}: {e}")))?;
            let material = match kp {
                Some(kp) => {
                    match mimi_wire::codec::Mls::<KeyPackageIn>::from_bytes(kp.key_package.clone())
                    {
                        // PROTO-5.2-required-capabilities: a KeyPackage whose leaf lacks what the
                        // room requires is not handed out (and not used up).
                        Ok(k) if !meets(&k, required.as_ref()) => {
                            if !kp.last_resort {
                                self.store.unclaim_key_package(&kp.kp_ref).await?;
                            }
                            ClientMaterial::NothingCompatible(capabilities_of(&k))
                        }
                        Ok(k) => {
                            got += 1;
                            ClientMaterial::KeyPackage(k)
                        }
                        Err(e) => {
                            tracing::warn!(%client, error = %e, "a stored KeyPackage does not decode");
                            ClientMaterial::Exhausted
                        }
                    }
                }
                // KeyPackages left, but none of an acceptable suite.
                None if !suites.is_empty()
                    && self.store.key_packages_left(client, now_ms).await? > 0 =>
                {
                    ClientMaterial::NothingCompatible(None)
                }
                None => ClientMaterial::Exhausted,
            };
            clients.push(ClientKeyMaterial {
                client_uri,
                material,
            });
        }
        let user_status = if claimed.is_empty() {
            KeyMaterialUserCode::INCOMPATIBLE_PROTOCOL
        } else if got == claimed.len() {
            KeyMaterialUserCode::SUCCESS
        } else if got > 0 {
            KeyMaterialUserCode::PARTIAL_SUCCESS
        } else {
            KeyMaterialUserCode::NO_COMPATIBLE_MATERIAL
        };
        Ok(KeyMaterialResponse {
            user_status,
            user_uri: target.clone(),
            clients,
        })
    }
}

/// Whether a KeyPackage's leaf supports everything in `required` (RFC 9420 §11.1
/// required_capabilities: extension, proposal and credential types); no requirement is met by
/// every KeyPackage.
fn meets(
    kp: &mimi_wire::codec::Mls<KeyPackageIn>,
    required: Option<&openmls::prelude::RequiredCapabilitiesExtension>,
) -> bool {
    let Some(req) = required else {
        return true;
    };
    let Some(k) = valid(kp) else {
        return false;
    };
    let caps = k.leaf_node().capabilities();
    req.extension_types()
        .iter()
        .all(|t| caps.extensions().contains(t))
        && req
            .proposal_types()
            .iter()
            .all(|t| caps.proposals().contains(t))
        && req
            .credential_types()
            .iter()
            .all(|t| caps.credentials().contains(t))
}

/// The leaf's capabilities, for `nothingCompatible`.
fn capabilities_of(
    kp: &mimi_wire::codec::Mls<KeyPackageIn>,
) -> Option<mimi_wire::codec::Mls<openmls::prelude::Capabilities>> {
    let k = valid(kp)?;
    mimi_wire::codec::Mls::encode_from(k.leaf_node().capabilities()).ok()
}

fn valid(kp: &mimi_wire::codec::Mls<KeyPackageIn>) -> Option<openmls::prelude::KeyPackage> {
    kp.parse()
        .ok()?
        .validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .ok()
}
