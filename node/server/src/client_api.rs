//! The client API (`/client/v1/`, `CAPI-*` in `spec-notes/client-api.md`): a device's calls to
//! its home node. Control calls are JSON; where the drafts define a body it is carried as is
//! and, for rooms hosted elsewhere, forwarded to the room's hub (`CAPI-forward`).

use crate::service::{Node, NodeError};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use mimi_net::paths::{Endpoint, percent_decode};
use mimi_net::{Request, Response};
use mimi_store::{ConsentPolicy, NewKeyPackage};
use mimi_wire::codec::{Body, Reader};
use mimi_wire::common::{GroupInfoOption, RatchetTreeOption};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::key_material::KeyMaterialRequest;
use mimi_wire::submit::SubmitMessageRequest;
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    BasicCredential, KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, ProtocolVersion, Sender,
};
use openmls_rust_crypto::RustCrypto;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest long-poll a device may ask for (`CAPI-queue`).
pub const MAX_WAIT_MS: u64 = 30_000;
/// The most queue items one fetch returns.
pub const MAX_FETCH: u32 = 500;
/// The most KeyPackages one upload may carry.
pub const MAX_UPLOAD: usize = 200;

/// The device a bearer token belongs to.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Its user.
    pub user: UserUri,
    /// The device.
    pub client: ClientUri,
}

fn json(status: StatusCode, v: &impl Serialize) -> Response {
    let mut r = Response::new(
        status,
        serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()),
    );
    r.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn binary(body: impl Into<Bytes>) -> Response {
    let mut r = Response::new(StatusCode::OK, body.into());
    r.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T, NodeError> {
    serde_json::from_slice(body)
        .map_err(|e| NodeError::BadRequest(format!("{what}: the JSON body does not fit: {e}")))
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>, NodeError> {
    hex::decode(s).map_err(|e| NodeError::BadRequest(format!("{what} is not hex: {e}")))
}

/// A query parameter of `rest` as a number.
fn query_u64(rest: &str, name: &str) -> Result<Option<u64>, NodeError> {
    let Some((_, q)) = rest.split_once('?') else {
        return Ok(None);
    };
    for pair in q.split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k == name
        {
            return v.parse().map(Some).map_err(|_| {
                NodeError::BadRequest(format!("query parameter {name}={v} is not a number"))
            });
        }
    }
    Ok(None)
}

#[derive(Deserialize)]
struct RegisterBody {
    user: String,
    device: String,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    nick: Option<String>,
}

#[derive(Serialize)]
struct Registered {
    user: String,
    client: String,
    token: String,
}

#[derive(Deserialize)]
struct KeyPackagesBody {
    key_packages: Vec<String>,
    #[serde(default)]
    last_resort: bool,
}

#[derive(Deserialize)]
struct CreateRoomBody {
    group_info: String,
    ratchet_tree: String,
}

#[derive(Serialize)]
struct QueueItemJson {
    seq: u64,
    room: String,
    body: String,
    /// The room needs a resync (the device missed what its provider could no longer get;
    /// `STORE-retention`): `body` is empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
}

#[derive(Deserialize)]
struct AckBody {
    upto: u64,
}

#[derive(Deserialize)]
struct RemoveDeviceBody {
    /// The device to delete: one of the caller's user's.
    client: String,
}

#[derive(Deserialize)]
struct PolicyBody {
    policy: String,
}

#[derive(Deserialize)]
struct ConsentBody {
    requester: Option<String>,
    target: Option<String>,
    room: Option<String>,
    /// `consent/keyPackages`: only those of this cipher suite (the room's); all when absent.
    suite: Option<u16>,
}

impl Node {
    /// The device a request's bearer token names (`CAPI-auth`); 401 otherwise.
    pub async fn caller(&self, req: &Request) -> Result<Caller, NodeError> {
        let Some(token) = req.bearer_token() else {
            return Err(NodeError::Unauthorized(
                "the client API needs Authorization: Bearer <token> (from register)".into(),
            ));
        };
        let Some((user, client)) = self.store.device_by_token(token.as_bytes()).await? else {
            return Err(NodeError::Unauthorized(
                "unknown or revoked token; register this device again".into(),
            ));
        };
        Ok(Caller {
            user: UserUri::parse(&user)
                .map_err(|e| NodeError::RoomState(format!("stored user {user}: {e}")))?,
            client: ClientUri::parse(&client)
                .map_err(|e| NodeError::RoomState(format!("stored client {client}: {e}")))?,
        })
    }

    /// Serves one client API request; `rest` is the path after `/client/v1/` with its query.
    pub async fn client_api(&self, req: &Request, rest: &str, now_ms: u64) -> Response {
        match self.client_api_inner(req, rest, now_ms).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(path = %rest, error = %e, "client request refused");
                Response::error(crate::http::status_of(&e), e.to_string())
            }
        }
    }

    async fn client_api_inner(
        &self,
        req: &Request,
        rest: &str,
        now_ms: u64,
    ) -> Result<Response, NodeError> {
        let path = rest.split('?').next().unwrap_or_default();
        let (head, id) = match path.split_once('/') {
            Some((h, id)) => (
                h,
                Some(percent_decode(id).map_err(|e| NodeError::BadRequest(e.to_string()))?),
            ),
            None => (path, None),
        };
        let m = &req.method;
        match (head, id.as_deref(), m) {
            ("register", None, &Method::POST) => self.capi_register(req, now_ms).await,
            _ if !known(head) => Err(NodeError::NotFound(format!(
                "no client API call {path} (see spec-notes/client-api.md)"
            ))),
            _ => {
                let caller = self.caller(req).await?;
                self.capi_authed(&caller, head, id.as_deref(), req, rest, now_ms)
                    .await
            }
        }
    }

    async fn capi_authed(
        &self,
        caller: &Caller,
        head: &str,
        id: Option<&str>,
        req: &Request,
        rest: &str,
        now_ms: u64,
    ) -> Result<Response, NodeError> {
        let body = &req.body[..];
        let post = req.method == Method::POST;
        let get = req.method == Method::GET;
        match (head, id) {
            ("hub", None) if get => {
                let sender = openmls::prelude::tls_codec::Serialize::tls_serialize_detached(
                    &self.hub_sender(),
                )
                .map_err(|e| NodeError::RoomState(e.to_string()))?;
                // PROTO-5.4.1-frank-agent-key: the franking agent a room created here names.
                let agent = self.franking_agent()?.encode();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "domain": self.domain.as_str(),
                        "external_sender": hex::encode(sender),
                        "franking_agent": hex::encode(agent),
                    }),
                ))
            }
            ("keyPackages", None) if post => self.capi_key_packages(caller, body, now_ms).await,
            // PROTO-5.10-ohttp: this provider as the device's Oblivious Relay.
            ("ohttpKeys", Some(hub)) if get => self.capi_ohttp_keys(&parse_provider(hub)?).await,
            ("ohttpRelay", Some(hub)) if post => {
                self.capi_ohttp_relay(&parse_provider(hub)?, body).await
            }
            ("rooms", None) if get => {
                let rooms = self.store.rooms_of_client(caller.client.as_str()).await?;
                Ok(json(StatusCode::OK, &serde_json::json!({ "rooms": rooms })))
            }
            ("rooms", Some(room)) if post => {
                let room = parse_room(room)?;
                let b: CreateRoomBody = parse_json(body, "rooms")?;
                let gi_bytes = unhex(&b.group_info, "group_info")?;
                let mut r = Reader::new(&gi_bytes, self.limits);
                let gi = GroupInfoOption::read(&mut r)?;
                r.finish("GroupInfoOption")?;
                let tree_bytes = unhex(&b.ratchet_tree, "ratchet_tree")?;
                let mut r = Reader::new(&tree_bytes, self.limits);
                let tree = RatchetTreeOption::read(&mut r)?;
                r.finish("RatchetTreeOption")?;
                let epoch = self.create_room(&room, &caller.client, &gi, &tree).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &serde_json::json!({ "room": room.as_str(), "epoch": epoch }),
                ))
            }
            ("keyMaterial", Some(target)) if post => {
                let target = UserUri::parse(target)
                    .map_err(|e| NodeError::BadRequest(format!("target user: {e}")))?;
                let kmr = KeyMaterialRequest::decode_with(body, self.limits)?;
                // CAPI-acts-for-self
                if kmr.tbs.requesting_user != caller.user {
                    return Err(NodeError::Forbidden(format!(
                        "this device is {}; it may not request as {}",
                        caller.client, kmr.tbs.requesting_user
                    )));
                }
                let hub = kmr.tbs.room_id.provider();
                if hub == self.domain {
                    let r = self
                        .key_material(&self.domain, &target, body, now_ms)
                        .await?;
                    Ok(binary(r.encode()))
                } else {
                    let r = self
                        .call(&hub, Endpoint::KeyMaterial, target.as_str(), body.to_vec())
                        .await?;
                    Ok(binary(r))
                }
            }
            ("update", Some(room)) if post => {
                let room = parse_room(room)?;
                let bundle = HandshakeBundle::decode_with(body, self.limits)?;
                let answer = if room.provider() == self.domain {
                    self.hub_update(&room, body, now_ms).await?.encode()
                } else {
                    self.call(
                        &room.provider(),
                        Endpoint::Update,
                        room.as_str(),
                        body.to_vec(),
                    )
                    .await?
                    .to_vec()
                };
                // A device that joined by external commit (follower side; the hub records its
                // own). With a roster of the room, the follower makes it a member when the
                // commit arrives in the hub's stream, in order, so that nothing the hub
                // fanned out before the join (still on its way here) reaches it
                // (`PROTO-follower-membership`). Without one (no member here before, or the
                // roster lost track), it takes the commit's tree and the device is a member
                // now.
                if room.provider() != self.domain
                    && is_external_join(&bundle)
                    && matches!(
                        UpdateRoomResponse::decode_with(&answer, self.limits).map(|r| r.outcome),
                        Ok(UpdateOutcome::Success { .. })
                    )
                    && !self.roster_from_external_join(&room, &bundle).await?
                {
                    self.store
                        .add_member(room.as_str(), caller.client.as_str())
                        .await?;
                }
                Ok(binary(answer))
            }
            ("submitMessage", Some(room)) if post => {
                let room = parse_room(room)?;
                let sm = SubmitMessageRequest::decode_with(body, self.limits)?;
                // CAPI-acts-for-self
                let s = sm.sending_uri.to_string();
                if s != caller.user.as_str() && s != caller.client.as_str() {
                    return Err(NodeError::Forbidden(format!(
                        "this device is {}; it may not submit as {s}",
                        caller.client
                    )));
                }
                if room.provider() == self.domain {
                    let r = self.hub_submit(&room, &self.domain, body, now_ms).await?;
                    Ok(binary(r.encode()))
                } else {
                    let r = self
                        .call(
                            &room.provider(),
                            Endpoint::SubmitMessage,
                            room.as_str(),
                            body.to_vec(),
                        )
                        .await?;
                    Ok(binary(r))
                }
            }
            ("groupInfo", Some(room)) if post => {
                let room = parse_room(room)?;
                let gir = mimi_wire::group_info::GroupInfoRequest::decode_with(body, self.limits)?;
                let client =
                    crate::key_material::credential_client(&gir.tbs.requesting_credential)?;
                // CAPI-acts-for-self
                if client != caller.client {
                    return Err(NodeError::Forbidden(format!(
                        "this device is {}; it may not ask as {client}",
                        caller.client
                    )));
                }
                if room.provider() == self.domain {
                    let r = self.group_info(&self.domain, &room, body, now_ms).await?;
                    Ok(binary(r.encode()))
                } else {
                    let r = self
                        .call(
                            &room.provider(),
                            Endpoint::GroupInfo,
                            room.as_str(),
                            body.to_vec(),
                        )
                        .await?;
                    Ok(binary(r))
                }
            }
            ("reportAbuse", Some(room)) if post => {
                let room = parse_room(room)?;
                let report = mimi_wire::abuse::AbuseReport::decode_with(body, self.limits)?;
                // CAPI-acts-for-self
                if report.reporting_user.as_ref() != Some(&caller.user) {
                    return Err(NodeError::Forbidden(format!(
                        "this device is {}; a report it sends must name {} as the reporting user",
                        caller.client, caller.user
                    )));
                }
                if room.provider() == self.domain {
                    self.report_abuse(&self.domain, &room, body, now_ms).await?;
                } else {
                    self.relay(
                        &room.provider(),
                        Endpoint::ReportAbuse,
                        room.as_str(),
                        body.to_vec(),
                    )
                    .await?;
                }
                Ok(json(
                    StatusCode::CREATED,
                    &serde_json::json!({ "room": room.as_str(), "reported": report.messages.len() }),
                ))
            }
            ("identifierQuery", Some(domain)) if post => {
                let d = ProviderId::parse(domain)
                    .map_err(|e| NodeError::BadRequest(format!("domain: {e}")))?;
                if d == self.domain {
                    Ok(binary(self.identifier_query(domain, body).await?.encode()))
                } else {
                    let r = self
                        .call(&d, Endpoint::IdentifierQuery, d.as_str(), body.to_vec())
                        .await?;
                    Ok(binary(r))
                }
            }
            ("queue", None) if get => {
                let after = query_u64(rest, "after")?.unwrap_or(0);
                let wait = query_u64(rest, "wait")?.unwrap_or(0).min(MAX_WAIT_MS);
                let limit = query_u64(rest, "limit")?
                    .map_or(MAX_FETCH, |l| u32::try_from(l).unwrap_or(MAX_FETCH))
                    .clamp(1, MAX_FETCH);
                let items = self
                    .store
                    .wait_queue(
                        caller.client.as_str(),
                        after,
                        limit,
                        Duration::from_millis(wait),
                    )
                    .await?;
                let next = items.last().map_or(after, |i| i.seq);
                let items: Vec<QueueItemJson> = items
                    .into_iter()
                    .map(|i| QueueItemJson {
                        seq: i.seq,
                        room: i.room_uri,
                        resync: i.body.is_empty(),
                        body: hex::encode(i.body),
                    })
                    .collect();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "items": items, "next": next }),
                ))
            }
            ("devices", Some("remove")) if post => {
                let b: RemoveDeviceBody = parse_json(body, "devices/remove")?;
                self.capi_remove_device(caller, &b.client, now_ms).await
            }
            ("queue", Some("ack")) if post => {
                let b: AckBody = parse_json(body, "queue/ack")?;
                let removed = self.store.ack(caller.client.as_str(), b.upto).await?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "removed": removed }),
                ))
            }
            ("consent", Some("policy")) if post => {
                let b: PolicyBody = parse_json(body, "consent/policy")?;
                let policy = match b.policy.as_str() {
                    "open" => ConsentPolicy::Open,
                    "contacts" | "contacts-only" => ConsentPolicy::ContactsOnly,
                    other => {
                        return Err(NodeError::BadRequest(format!(
                            "policy {other:?}: use \"open\" or \"contacts\""
                        )));
                    }
                };
                self.store
                    .set_consent_policy(caller.user.as_str(), policy)
                    .await?;
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "policy": policy.as_str() }),
                ))
            }
            ("consent", Some(op @ ("grant" | "revoke"))) if post => {
                let b: ConsentBody = parse_json(body, "consent")?;
                let requester = b.requester.ok_or_else(|| {
                    NodeError::BadRequest("consent/grant needs \"requester\": a user URI".into())
                })?;
                let requester = UserUri::parse(&requester)
                    .map_err(|e| NodeError::BadRequest(format!("requester: {e}")))?;
                self.decide_consent(&caller.user, &requester, op == "grant", now_ms)
                    .await?;
                Ok(json(StatusCode::OK, &serde_json::json!({ "done": op })))
            }
            ("consent", Some("request")) if post => {
                let b: ConsentBody = parse_json(body, "consent/request")?;
                let target = b.target.ok_or_else(|| {
                    NodeError::BadRequest("consent/request needs \"target\": a user URI".into())
                })?;
                let target = UserUri::parse(&target)
                    .map_err(|e| NodeError::BadRequest(format!("target: {e}")))?;
                let room = b.room.as_deref().map(parse_room).transpose()?;
                let entry = mimi_wire::consent::ConsentEntry {
                    operation: mimi_wire::consent::ConsentOperation::Request,
                    scope: mimi_wire::consent::ConsentScope {
                        requester_uri: caller.user.clone(),
                        target_uri: target.clone(),
                        room_id: room,
                    },
                    client_key_packages: Vec::new(),
                    consent_extensions: Default::default(),
                };
                if target.provider() == self.domain {
                    self.request_consent(&self.domain, &target, &entry.encode(), now_ms)
                        .await?;
                } else {
                    self.call(
                        &target.provider(),
                        Endpoint::RequestConsent,
                        target.as_str(),
                        entry.encode(),
                    )
                    .await?;
                }
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "done": "request" }),
                ))
            }
            // PROTO-5.7-grant-key-packages: the KeyPackages a grant brought for this user,
            // handed out once.
            ("consent", Some("keyPackages")) if post => {
                let b: ConsentBody = parse_json(body, "consent/keyPackages")?;
                let target = b.target.ok_or_else(|| {
                    NodeError::BadRequest("consent/keyPackages needs \"target\": a user URI".into())
                })?;
                let target = UserUri::parse(&target)
                    .map_err(|e| NodeError::BadRequest(format!("target: {e}")))?;
                // Those of the asked suite are handed out, expired (or no longer valid) ones
                // forgotten, the rest kept for a room of another suite.
                let now_s = now_ms / 1000;
                let info = |kp: &[u8]| crate::social::granted_key_package(kp, &target, now_s);
                let kps = self
                    .store
                    .take_granted_key_packages(
                        caller.user.as_str(),
                        target.as_str(),
                        |kp| info(kp).is_ok_and(|(s, _)| b.suite.is_none_or(|want| want == s)),
                        |kp| info(kp).is_err(),
                    )
                    .await?;
                let kps: Vec<String> = kps.iter().map(hex::encode).collect();
                Ok(json(
                    StatusCode::OK,
                    &serde_json::json!({ "target": target.as_str(), "key_packages": kps }),
                ))
            }
            ("consent", None) if get => {
                let entries = self.store.consent_entries(caller.user.as_str()).await?;
                let v: Vec<_> = entries
                    .into_iter()
                    .map(|e| {
                        serde_json::json!({
                            "requester": e.requester, "room": e.room_uri, "state": e.state,
                        })
                    })
                    .collect();
                Ok(json(StatusCode::OK, &serde_json::json!({ "entries": v })))
            }
            _ => Err(NodeError::BadRequest(format!(
                "{} {head}{} is not a client API call (see spec-notes/client-api.md)",
                req.method,
                id.map(|i| format!("/{i}")).unwrap_or_default()
            ))),
        }
    }

    /// `CAPI-device-remove`: a device of the caller's user is deleted here (its token, queue,
    /// unclaimed KeyPackages and memberships go). In the rooms this node hosts, the hub
    /// proposes its removal (`PROTO-hub-removal`); the rooms hosted elsewhere are listed with
    /// their hub: only a member can remove it there (this node is not their external
    /// sender), which `mimi device remove` does from the calling device.
    async fn capi_remove_device(
        &self,
        caller: &Caller,
        client: &str,
        now_ms: u64,
    ) -> Result<Response, NodeError> {
        let client = ClientUri::parse(client)
            .map_err(|e| NodeError::BadRequest(format!("client {client:?}: {e}")))?;
        if client.user().as_ref() != Some(&caller.user) {
            return Err(NodeError::Forbidden(format!(
                "{client} is not a device of {}",
                caller.user
            )));
        }
        if self.store.user_of_client(client.as_str()).await?.is_none() {
            return Err(NodeError::NotFound(format!("no device {client} here")));
        }
        let rooms = self.store.rooms_of_client(client.as_str()).await?;
        let mut proposed = Vec::new();
        let mut elsewhere = Vec::new();
        let mut failed = Vec::new();
        for r in rooms {
            let Ok(room) = RoomUri::parse(&r) else {
                continue;
            };
            if room.provider() != self.domain {
                elsewhere.push(serde_json::json!({ "room": r, "hub": room.provider().as_str() }));
                continue;
            }
            match self.hub_propose_removal(&room, &client, now_ms).await {
                Ok(()) => proposed.push(r),
                // Not in the group any more (left, or removed meanwhile): nothing to do.
                Err(NodeError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(room = %room, %client, error = %e, "hub removal not proposed");
                    failed.push(serde_json::json!({ "room": r, "error": e.to_string() }));
                }
            }
        }
        self.store.remove_device(client.as_str()).await?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "removed": client.as_str(),
                "proposed": proposed,
                "elsewhere": elsewhere,
                "failed": failed,
            }),
        ))
    }

    async fn capi_register(&self, req: &Request, now_ms: u64) -> Result<Response, NodeError> {
        let b: RegisterBody = parse_json(&req.body, "register")?;
        let user = UserUri::parse(&format!("mimi://{}/u/{}", self.domain, b.user))
            .map_err(|e| NodeError::BadRequest(format!("user name {:?}: {e}", b.user)))?;
        let client = user
            .client(&b.device)
            .map_err(|e| NodeError::BadRequest(format!("device name {:?}: {e}", b.device)))?;
        // CAPI-register: a new device of an existing user needs one of that user's tokens.
        if self.store.user(user.as_str()).await?.is_some() {
            let caller = self.caller(req).await.map_err(|_| {
                NodeError::Forbidden(format!(
                    "{user} exists; add a device with the token of one of its devices"
                ))
            })?;
            if caller.user != user {
                return Err(NodeError::Forbidden(format!(
                    "this token is {}'s; it cannot add a device for {user}",
                    caller.user
                )));
            }
        } else {
            if !self.options.open_registration {
                return Err(NodeError::Forbidden(
                    "registration is closed on this node (client_api.open_registration = false)"
                        .into(),
                ));
            }
            match self
                .store
                .create_user(
                    user.as_str(),
                    b.handle.as_deref(),
                    b.nick.as_deref(),
                    now_ms,
                )
                .await
            {
                Err(e) if e.is_conflict() => {
                    return Err(NodeError::Conflict(format!(
                        "the user {user} or the handle {:?} is taken",
                        b.handle.unwrap_or_default()
                    )));
                }
                r => r?,
            }
        }
        let mut raw = [0u8; 32];
        getrandom::getrandom(&mut raw)
            .map_err(|e| NodeError::RoomState(format!("no randomness for a token: {e}")))?;
        let token = hex::encode(raw);
        match self
            .store
            .register_device(user.as_str(), client.as_str(), token.as_bytes(), now_ms)
            .await
        {
            Err(e) if e.is_conflict() => {
                return Err(NodeError::Conflict(format!(
                    "the device {client} is registered already"
                )));
            }
            r => r?,
        }
        tracing::info!(%client, "device registered");
        Ok(json(
            StatusCode::CREATED,
            &Registered {
                user: user.to_string(),
                client: client.to_string(),
                token,
            },
        ))
    }

    /// `CAPI-kp`: every KeyPackage verified, its credential this device, then stored.
    async fn capi_key_packages(
        &self,
        caller: &Caller,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Response, NodeError> {
        let b: KeyPackagesBody = parse_json(body, "keyPackages")?;
        if b.key_packages.is_empty() || b.key_packages.len() > MAX_UPLOAD {
            return Err(NodeError::BadRequest(format!(
                "upload 1 to {MAX_UPLOAD} KeyPackages at a time"
            )));
        }
        let crypto = RustCrypto::default();
        let mut kps = Vec::new();
        for (n, h) in b.key_packages.iter().enumerate() {
            let bytes = unhex(h, &format!("key_packages[{n}]"))?;
            let kp_in = match MlsMessageIn::tls_deserialize_exact(bytes.as_slice()) {
                Ok(m) => match m.extract() {
                    MlsMessageBodyIn::KeyPackage(k) => k,
                    _ => {
                        return Err(NodeError::BadRequest(format!(
                            "key_packages[{n}] is an MLSMessage but not a KeyPackage"
                        )));
                    }
                },
                Err(_) => KeyPackageIn::tls_deserialize_exact(bytes.as_slice()).map_err(|e| {
                    NodeError::BadRequest(format!("key_packages[{n}] is not a KeyPackage: {e}"))
                })?,
            };
            let kp = kp_in
                .validate(&crypto, ProtocolVersion::Mls10)
                .map_err(|e| {
                    NodeError::BadRequest(format!("key_packages[{n}] does not validate: {e:?}"))
                })?;
            let cred =
                BasicCredential::try_from(kp.leaf_node().credential().clone()).map_err(|_| {
                    NodeError::BadRequest(format!("key_packages[{n}]: not a basic credential"))
                })?;
            if cred.identity() != caller.client.as_str().as_bytes() {
                return Err(NodeError::Forbidden(format!(
                    "key_packages[{n}] is for {}, not for this device {}",
                    String::from_utf8_lossy(cred.identity()),
                    caller.client
                )));
            }
            let kp_ref = kp
                .hash_ref(&crypto)
                .map_err(|e| NodeError::BadRequest(format!("key_packages[{n}]: {e:?}")))?;
            let not_after_s = kp.life_time().not_after();
            let key_package =
                openmls::prelude::tls_codec::Serialize::tls_serialize_detached(&kp)
                    .map_err(|e| NodeError::BadRequest(format!("key_packages[{n}]: {e}")))?;
            kps.push(NewKeyPackage {
                kp_ref: kp_ref.as_slice().to_vec(),
                key_package,
                not_after_s,
                last_resort: b.last_resort,
                // STORE-kp-suite: the suite the node read from the validated KeyPackage.
                cipher_suite: u16::from(kp.ciphersuite()),
            });
        }
        match self
            .store
            .add_key_packages(caller.client.as_str(), &kps)
            .await
        {
            Err(e) if e.is_conflict() => {
                return Err(NodeError::Conflict(
                    "one of these KeyPackages was uploaded before".into(),
                ));
            }
            r => r?,
        }
        let available = self
            .store
            .key_packages_left(caller.client.as_str(), now_ms)
            .await?;
        Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "stored": kps.len(), "available": available }),
        ))
    }
}

fn parse_provider(s: &str) -> Result<ProviderId, NodeError> {
    ProviderId::parse(s).map_err(|e| NodeError::BadRequest(format!("provider {s:?}: {e}")))
}

fn known(head: &str) -> bool {
    matches!(
        head,
        "hub"
            | "ohttpKeys"
            | "ohttpRelay"
            | "keyPackages"
            | "rooms"
            | "keyMaterial"
            | "update"
            | "submitMessage"
            | "groupInfo"
            | "identifierQuery"
            | "reportAbuse"
            | "queue"
            | "consent"
            | "devices"
    )
}

fn parse_room(s: &str) -> Result<RoomUri, NodeError> {
    RoomUri::parse(s).map_err(|e| NodeError::BadRequest(format!("room: {e}")))
}

/// Whether a bundle is an external commit (a device joining by itself).
fn is_external_join(bundle: &HandshakeBundle) -> bool {
    let HandshakeBundle::Commit { commit, .. } = bundle else {
        return false;
    };
    match commit.parse().map(|m| m.extract()) {
        Ok(MlsMessageBodyIn::PublicMessage(p)) => {
            matches!(p.sender(), Sender::NewMemberCommit)
        }
        _ => false,
    }
}
