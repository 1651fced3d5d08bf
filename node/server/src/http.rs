//! The node's HTTP/3 face (`PROTO-endpoints`): the draft's provider endpoints routed to the
//! services, with every failure a status and a reason. Transport authentication happened in
//! mimi-net: a provider request arrives with the calling provider's verified domain.

use crate::service::{Node, NodeError};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use mimi_net::paths::{self, DIRECTORY_PATH, Endpoint, Route};
use mimi_net::server::{BodyStream, Handler, StreamFuture};
use mimi_net::stream::Reply;
use mimi_net::{Peer, Request, Response};
use mimi_wire::codec::Body;
use mimi_wire::directory::Directory;
use mimi_wire::id::{ProviderId, RoomUri, UserUri};
use mimi_wire::room_policy::DownloadPrivacyType;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The wall clock in milliseconds (injectable for tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock, `offset_ms` ahead (negative: behind), saturating at 0.
pub fn skewed_clock(offset_ms: i64) -> Clock {
    let base = system_clock();
    if offset_ms == 0 {
        return base;
    }
    Arc::new(move || base().saturating_add_signed(offset_ms))
}

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    })
}

/// Request metrics (`PROTO-metrics`): requests by endpoint and status, latency by endpoint.
#[derive(Clone)]
pub struct RequestMetrics {
    requests: crate::metrics::Metric,
    latency: crate::metrics::Metric,
}

impl RequestMetrics {
    /// Declares the metrics in a registry.
    pub fn new(registry: &crate::metrics::Registry) -> Result<Self, crate::metrics::MetricError> {
        Ok(Self {
            requests: registry.counter(
                "mimi_requests_total",
                "Requests answered, by endpoint and HTTP status.",
                &["endpoint", "code"],
            )?,
            latency: registry.histogram(
                "mimi_request_seconds",
                "Time from request headers to answer, by endpoint.",
                &["endpoint"],
            )?,
        })
    }
}

/// The metrics label of a path.
pub fn endpoint_label(path: &str) -> &'static str {
    let under = |what: &str| {
        path.strip_prefix(paths::BASE)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| r.starts_with(what) && r[what.len()..].starts_with('/'))
    };
    if under(crate::assets::PROXY_DOWNLOAD) {
        return "proxyDownload";
    }
    if under(crate::assets::ASSETS) {
        return "assets";
    }
    match paths::route(path) {
        Route::Directory => "directory",
        Route::Endpoint(e, _) => e.name(),
        Route::BadEndpoint(_) => "malformed",
        Route::ClientApi(_) => "client",
        Route::Unknown => "other",
    }
}

/// Routes requests to a node's services.
pub struct NodeHandler {
    /// The services.
    pub node: Node,
    /// `host:port` this node is reached at (for the directory's templates).
    pub authority: String,
    /// The clock.
    pub clock: Clock,
    /// Request metrics, when the node exports them.
    pub metrics: Option<RequestMetrics>,
}

/// The HTTP status of a refusal.
pub(crate) fn status_of(e: &NodeError) -> StatusCode {
    match e {
        NodeError::Malformed(_) => StatusCode::BAD_REQUEST,
        NodeError::NoRoom(_) => StatusCode::NOT_FOUND,
        NodeError::Forbidden(_) => StatusCode::FORBIDDEN,
        NodeError::RoomExists(_) => StatusCode::CONFLICT,
        NodeError::RoomState(_) => StatusCode::INTERNAL_SERVER_ERROR,
        NodeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        NodeError::NotFound(_) => StatusCode::NOT_FOUND,
        NodeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        NodeError::Conflict(_) => StatusCode::CONFLICT,
        NodeError::BadRequest(_) => StatusCode::BAD_REQUEST,
        NodeError::Upstream(_) => StatusCode::BAD_GATEWAY,
        NodeError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        NodeError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        NodeError::LengthRequired(_) => StatusCode::LENGTH_REQUIRED,
        NodeError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        NodeError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
    }
}

fn binary(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(status, Bytes::from(body));
    r.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    r
}

impl NodeHandler {
    /// `GET /v1/ohttpKeys` and `POST /v1/ohttpGateway`, from providers only.
    async fn route_ohttp(&self, req: &Request) -> Response {
        let Some(Ok(from)) = req.peer.provider().map(ProviderId::parse) else {
            return Response::error(
                StatusCode::UNAUTHORIZED,
                "the OHTTP gateway serves providers (its relays) only",
            );
        };
        let keys = req.path.ends_with(crate::ohttp::OHTTP_KEYS);
        match (&req.method, keys) {
            (&Method::GET, true) => self.node.ohttp_keys(),
            (&Method::POST, false) => {
                let media = req
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                if media != Some(mimi_net::ohttp::REQUEST_MEDIA_TYPE) {
                    return Response::error(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        format!(
                            "the gateway takes {} (RFC 9458 §4.1)",
                            mimi_net::ohttp::REQUEST_MEDIA_TYPE
                        ),
                    );
                }
                self.node.ohttp_gateway(&from, &req.body).await
            }
            _ => Response::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET ohttpKeys, POST ohttpGateway",
            ),
        }
    }

    async fn route(&self, req: Request) -> Response {
        let now = (self.clock)();
        let (endpoint, id) = match paths::route(&req.path) {
            Route::Directory => {
                if req.method != Method::GET {
                    return Response::error(StatusCode::METHOD_NOT_ALLOWED, "GET the directory");
                }
                let scheme = if self.node.options.faults.directory_http_templates {
                    "http"
                } else {
                    "https"
                };
                let mut d =
                    Directory::for_base(&format!("{scheme}://{}{}", self.authority, paths::BASE));
                // PROTO-5.10-proxy: the hub serves proxyDownload.
                d.proxy_download = Some(format!(
                    "https://{}{}/{}/{{downloadUrl}}",
                    self.authority,
                    paths::BASE,
                    crate::assets::PROXY_DOWNLOAD
                ));
                let mut r = Response::new(StatusCode::OK, d.to_json());
                r.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return r;
            }
            Route::Endpoint(e, id) => (e, id),
            Route::BadEndpoint(e) => {
                return Response::error(StatusCode::BAD_REQUEST, e.to_string());
            }
            Route::ClientApi(rest) => {
                return self.node.client_api(&req, &rest, now).await;
            }
            Route::Unknown => {
                // PROTO-5.10-ohttp: the hub's Oblivious Gateway.
                let ohttp = |what: &str| req.path == format!("{}/{what}", paths::BASE);
                if ohttp(crate::ohttp::OHTTP_KEYS) || ohttp(crate::ohttp::OHTTP_GATEWAY) {
                    return self.route_ohttp(&req).await;
                }
                return Response::error(
                    StatusCode::NOT_FOUND,
                    format!("no endpoint {} (see {DIRECTORY_PATH})", req.path),
                );
            }
        };
        if req.method != Method::POST {
            return Response::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes POST", endpoint.name()),
            );
        }
        let Peer::Provider(from) = &req.peer else {
            return Response::error(
                StatusCode::UNAUTHORIZED,
                "provider endpoints need a provider identity",
            );
        };
        let Ok(from) = ProviderId::parse(from) else {
            return Response::error(
                StatusCode::FORBIDDEN,
                "the calling provider's name is not a domain",
            );
        };
        let number = |name: &'static str| {
            req.headers
                .get(name)
                .map(|v| {
                    v.to_str()
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| NodeError::BadRequest(format!("{name} is not a number")))
                })
                .transpose()
        };
        let result = match (number("mimi-notify-seq"), number("mimi-notify-resume")) {
            (Ok(first_seq), Ok(resume)) => {
                self.provider_endpoint(endpoint, &id, &from, &req.body, (first_seq, resume), now)
                    .await
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        result.unwrap_or_else(|e| {
            tracing::info!(endpoint = endpoint.name(), error = %e, "request refused");
            let r = Response::error(status_of(&e), e.to_string());
            if matches!(e, NodeError::Busy(_) | NodeError::Store(_)) {
                r.retry_after(1)
            } else {
                r
            }
        })
    }
}

impl NodeHandler {
    /// One provider endpoint: the identifier parsed as the endpoint's variable, then the service.
    async fn provider_endpoint(
        &self,
        endpoint: Endpoint,
        id: &str,
        from: &ProviderId,
        body: &[u8],
        (first_seq, resume): (Option<u64>, Option<u64>),
        now: u64,
    ) -> Result<Response, NodeError> {
        let room = || RoomUri::parse(id).map_err(|e| NodeError::BadRequest(format!("roomId: {e}")));
        let user = || UserUri::parse(id).map_err(|e| NodeError::BadRequest(format!("user: {e}")));
        let node = &self.node;
        Ok(match endpoint {
            // PROTO-5.3: only the hub answers update and submitMessage.
            Endpoint::Update => binary(
                StatusCode::OK,
                node.hub_update(&room()?, body, now).await?.encode(),
            ),
            Endpoint::SubmitMessage => binary(
                StatusCode::OK,
                node.hub_submit(&room()?, from, body, now).await?.encode(),
            ),
            // PROTO-5.5: 201 for a new or a repeated body.
            Endpoint::Notify => {
                let new = match node
                    .notify_resuming(from, &room()?, body, first_seq, resume, now)
                    .await
                {
                    Err(NodeError::Malformed(_))
                        if node.options.faults.notify_accepts_malformed =>
                    {
                        return Ok(Response::new(StatusCode::CREATED, Bytes::new()));
                    }
                    r => r?,
                };
                match node.options.faults.notify_repeat_status {
                    Some(code) if new == 0 => Response::error(
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        "fault injected: a repeated notify body is refused ([faults] notify_repeat_status)",
                    ),
                    _ => Response::new(StatusCode::CREATED, Bytes::new()),
                }
            }
            Endpoint::KeyMaterial => binary(
                StatusCode::OK,
                node.key_material(from, &user()?, body, now).await?.encode(),
            ),
            Endpoint::GroupInfo => binary(
                StatusCode::OK,
                node.group_info(from, &room()?, body, now).await?.encode(),
            ),
            Endpoint::RequestConsent => {
                node.request_consent(from, &user()?, body, now).await?;
                Response::new(StatusCode::CREATED, Bytes::new())
            }
            Endpoint::UpdateConsent => {
                node.update_consent(from, &user()?, body, now).await?;
                Response::new(StatusCode::CREATED, Bytes::new())
            }
            Endpoint::IdentifierQuery => binary(
                StatusCode::OK,
                node.identifier_query(id, body).await?.encode(),
            ),
            Endpoint::ReportAbuse => {
                node.report_abuse(from, &room()?, body, now).await?;
                Response::new(StatusCode::CREATED, Bytes::new())
            }
        })
    }
}

/// The value of query parameter `name`, percent-decoded.
fn query_param(path_and_query: &str, name: &str) -> Option<Result<String, String>> {
    let (_, q) = path_and_query.split_once('?')?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| paths::percent_decode(v).map_err(|e| e.to_string()))
    })
}

/// The paths whose bodies travel piece by piece (`NET-stream`, attachments).
fn streamed(method: &Method, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let under = |p: &str| path.starts_with(p);
    match *method {
        Method::POST => under("/client/v1/assets/"),
        Method::GET => {
            under("/client/v1/download/")
                || under(&format!(
                    "{}/{}/",
                    paths::BASE,
                    crate::assets::PROXY_DOWNLOAD
                ))
                || under(&format!("{}/{}/", paths::BASE, crate::assets::ASSETS))
        }
        _ => false,
    }
}

impl NodeHandler {
    /// Attachments: upload and download for devices, proxyDownload at the hub, the asset
    /// server's fetch (`PROTO-5.10-*`).
    async fn route_stream(&self, req: Request, mut body: BodyStream) -> Reply {
        let now = (self.clock)();
        let full = req.path.clone();
        let path = full.split('?').next().unwrap_or_default();
        let refuse = |body: &mut BodyStream, e: NodeError| {
            if req.method == Method::POST {
                body.refuse();
            }
            Reply::Whole(Response::error(status_of(&e), e.to_string()))
        };
        let room_of = |seg: &str| {
            paths::percent_decode(seg)
                .map_err(|e| NodeError::BadRequest(format!("room: {e}")))
                .and_then(|r| {
                    RoomUri::parse(&r).map_err(|e| NodeError::BadRequest(format!("room: {e}")))
                })
        };
        if let Some(rest) = path.strip_prefix(paths::CLIENT_API_PREFIX) {
            let caller = match self.node.caller(&req).await {
                Ok(c) => c,
                Err(e) => return refuse(&mut body, e),
            };
            if let Some(room) = rest.strip_prefix("assets/") {
                let room = match room_of(room) {
                    Ok(r) => r,
                    Err(e) => return refuse(&mut body, e),
                };
                // ROOM-policy-assets: the attachment's media type (of the plaintext; the body
                // is ciphertext), `?type=`; none is `application/octet-stream`.
                let media_type = match query_param(&full, "type") {
                    None => None,
                    Some(Ok(t)) => Some(t),
                    Some(Err(e)) => {
                        return refuse(&mut body, NodeError::BadRequest(format!("type: {e}")));
                    }
                };
                return self
                    .node
                    .capi_upload(&caller, &room, media_type.as_deref(), body, now)
                    .await;
            }
            if let Some(room) = rest.strip_prefix("download/") {
                let room = match room_of(room) {
                    Ok(r) => r,
                    Err(e) => return refuse(&mut body, e),
                };
                // ROOM-policy-download-privacy: `?via=` direct, hubProxy (the default) or
                // ohttp (not implemented).
                let via = match query_param(&full, "via") {
                    None => DownloadPrivacyType::HubProxy,
                    Some(Ok(v)) => match DownloadPrivacyType::from_name(&v) {
                        Some(t) => t,
                        None => {
                            return refuse(
                                &mut body,
                                NodeError::BadRequest(format!(
                                    "via {v:?}: use hubProxy, direct or ohttp \
                                     (room-policy-03 DownloadPrivacyType)"
                                )),
                            );
                        }
                    },
                    Some(Err(e)) => {
                        return refuse(&mut body, NodeError::BadRequest(format!("via: {e}")));
                    }
                };
                return match query_param(&full, "url") {
                    Some(Ok(url)) => self.node.capi_download(&caller, &room, &url, via).await,
                    Some(Err(e)) => refuse(&mut body, NodeError::BadRequest(format!("url: {e}"))),
                    None => refuse(
                        &mut body,
                        NodeError::BadRequest(
                            "download needs ?url=<the attachment's URL, percent-encoded>".into(),
                        ),
                    ),
                };
            }
        }
        let Some(Ok(from)) = req.peer.provider().map(ProviderId::parse) else {
            return refuse(
                &mut body,
                NodeError::Unauthorized("provider endpoints need a provider identity".into()),
            );
        };
        let proxy = format!("{}/{}/", paths::BASE, crate::assets::PROXY_DOWNLOAD);
        let assets = format!("{}/{}/", paths::BASE, crate::assets::ASSETS);
        if let Some(url) = path.strip_prefix(&proxy) {
            return match paths::percent_decode(url) {
                Ok(url) => self.node.proxy_download(&from, &url).await,
                Err(e) => refuse(
                    &mut body,
                    NodeError::BadRequest(format!("downloadUrl: {e}")),
                ),
            };
        }
        if let Some(rest) = path.strip_prefix(&assets) {
            return self.node.serve_asset(&from, rest).await;
        }
        refuse(
            &mut body,
            NodeError::NotFound(format!("no endpoint {path}")),
        )
    }
}

impl Handler for NodeHandler {
    fn handle(&self, req: Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(self.route(req))
    }

    fn streams(&self, method: &Method, path: &str) -> bool {
        streamed(method, path)
    }

    fn handle_stream(&self, req: Request, body: BodyStream) -> StreamFuture<'_> {
        Box::pin(self.route_stream(req, body))
    }

    fn observe(&self, outcome: &mimi_net::server::Outcome<'_>) {
        if let Some(m) = &self.metrics {
            let endpoint = endpoint_label(outcome.path);
            let _ = m.requests.add(&[endpoint, outcome.status.as_str()], 1);
            let _ = m.latency.observe(&[endpoint], outcome.elapsed);
        }
    }
}
