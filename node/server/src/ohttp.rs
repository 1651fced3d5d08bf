//! The OHTTP asset download of protocol-06 §5.10 (`PROTO-5.10-ohttp`, RFC 9458): every node is
//! an Oblivious Gateway for the rooms it hosts and an Oblivious Relay for its own devices.
//!
//! - `GET /v1/ohttpKeys` (provider to hub): the gateway's `application/ohttp-keys`.
//! - `POST /v1/ohttpGateway` (relay to hub): a `message/ohttp-req` whose Binary HTTP request is
//!   `GET <asset URL>`; the hub fetches the asset as for proxyDownload (the relaying provider
//!   has clients in the asset's room, the room's policy allows `ohttp` from that host, the
//!   asset server is a peer) and answers a `message/ohttp-res` whose Binary HTTP response is
//!   the asset (200) or the refusal (its status, the reason as text).
//! - Client API `GET ohttpKeys/{hub}` and `POST ohttpRelay/{hub}`: the device's provider
//!   passes them on; the device encapsulates, so the relay sees who asks but not what.
//!
//! One message each way (RFC 9458 has no streaming): an asset travels whole, up to the
//! transport's body limit (`NET-body-limit`).

use crate::service::{Node, NodeError};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use mimi_net::Response;
use mimi_net::ohttp::{
    BinaryRequest, BinaryResponse, KEYS_MEDIA_TYPE, KeyConfig, REQUEST_MEDIA_TYPE,
    RESPONSE_MEDIA_TYPE,
};
use mimi_net::paths::BASE;
use mimi_net::stream::Reply;
use mimi_wire::id::ProviderId;
use mimi_wire::room_policy::DownloadPrivacyType;

/// The gateway's key configurations, under [`BASE`].
pub const OHTTP_KEYS: &str = "ohttpKeys";
/// The gateway resource, under [`BASE`].
pub const OHTTP_GATEWAY: &str = "ohttpGateway";

fn typed(status: StatusCode, media: &'static str, body: Vec<u8>) -> Response {
    let mut r = Response::new(status, Bytes::from(body));
    r.headers
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(media));
    r
}

/// Reads a reply whole, refusing one longer than `limit`.
async fn whole(reply: Reply, limit: usize) -> Result<(StatusCode, Vec<u8>), NodeError> {
    match reply {
        Reply::Whole(r) => Ok((r.status, r.body.to_vec())),
        Reply::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(piece) = s.body.recv().await {
                let piece = piece.map_err(NodeError::Upstream)?;
                if out.len() + piece.len() > limit {
                    return Err(NodeError::TooLarge(format!(
                        "the asset is larger than {limit} octets, the most an OHTTP response \
                         carries here (RFC 9458 messages are not streamed); use hubProxy"
                    )));
                }
                out.extend_from_slice(&piece);
            }
            Ok((s.status, out))
        }
    }
}

impl Node {
    /// `GET /v1/ohttpKeys`.
    pub fn ohttp_keys(&self) -> Response {
        typed(
            StatusCode::OK,
            KEYS_MEDIA_TYPE,
            KeyConfig::encode_list(std::slice::from_ref(self.ohttp_key.config())),
        )
    }

    /// `POST /v1/ohttpGateway` from provider `from` (the relay).
    pub async fn ohttp_gateway(&self, from: &ProviderId, body: &[u8]) -> Response {
        let (request, keys) = match self.ohttp_key.decapsulate(body) {
            Ok(x) => x,
            Err(e) => {
                // RFC 9458 §5.2: a request the gateway cannot decapsulate is a 4xx.
                return Response::error(
                    StatusCode::BAD_REQUEST,
                    format!("the Encapsulated Request (RFC 9458): {e}; fetch {BASE}/{OHTTP_KEYS}"),
                );
            }
        };
        let inner = self.ohttp_target(from, &request).await;
        match keys.seal(&inner.encode()) {
            Ok(b) => typed(StatusCode::OK, RESPONSE_MEDIA_TYPE, b),
            Err(e) => Response::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    /// The Target Resource behind the gateway: only `GET` of an asset URL of a room hosted
    /// here.
    async fn ohttp_target(&self, from: &ProviderId, request: &[u8]) -> BinaryResponse {
        let refuse = |status: StatusCode, why: String| BinaryResponse {
            status: status.as_u16(),
            headers: vec![("content-type".into(), "text/plain".into())],
            content: why.into_bytes(),
        };
        let req = match BinaryRequest::decode(request) {
            Ok(r) => r,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("the Binary HTTP request: {e}"),
                );
            }
        };
        if req.method != "GET" {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "the gateway's target takes GET of an asset URL".into(),
            );
        }
        let limit = self.options.assets.max_ohttp_bytes;
        let fetched = match self
            .proxy_via(from, &req.url(), DownloadPrivacyType::Ohttp)
            .await
        {
            Ok(reply) => whole(reply, limit).await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok((status, content)) if status == StatusCode::OK => BinaryResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                content,
            },
            Ok((status, content)) => BinaryResponse {
                status: status.as_u16(),
                headers: vec![("content-type".into(), "text/plain".into())],
                content,
            },
            Err(e) => refuse(crate::http::status_of(&e), e.to_string()),
        }
    }

    /// Client API `GET ohttpKeys/{hub}`: the hub's key configurations, through this provider.
    pub(crate) async fn capi_ohttp_keys(&self, hub: &ProviderId) -> Result<Response, NodeError> {
        if *hub == self.domain {
            return Ok(self.ohttp_keys());
        }
        self.peer_request(hub, Method::GET, OHTTP_KEYS, Bytes::new(), None)
            .await
    }

    /// Client API `POST ohttpRelay/{hub}`: this provider as the device's Oblivious Relay.
    pub(crate) async fn capi_ohttp_relay(
        &self,
        hub: &ProviderId,
        body: &[u8],
    ) -> Result<Response, NodeError> {
        if *hub == self.domain {
            return Ok(self.ohttp_gateway(&self.domain, body).await);
        }
        self.peer_request(
            hub,
            Method::POST,
            OHTTP_GATEWAY,
            Bytes::copy_from_slice(body),
            Some(REQUEST_MEDIA_TYPE),
        )
        .await
    }

    async fn peer_request(
        &self,
        to: &ProviderId,
        method: Method,
        what: &str,
        body: Bytes,
        media: Option<&'static str>,
    ) -> Result<Response, NodeError> {
        let Some(peers) = &self.peers else {
            return Err(NodeError::Upstream(format!(
                "this node has no connections to other providers; cannot reach {to}"
            )));
        };
        let mut headers = HeaderMap::new();
        if let Some(m) = media {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(m));
        }
        peers
            .request(
                to.as_str(),
                method,
                &format!("{BASE}/{what}"),
                headers,
                body,
            )
            .await
            .map_err(|e| NodeError::Upstream(format!("{to} {what}: {e}")))
    }
}
