//! The admin listener: HTTP/1.1 on a loopback port (axum on hyper), for Prometheus, health
//! checks and a live view of the node.
//!
//! - `GET /metrics`: Prometheus text exposition format 0.0.4 ([`crate::metrics`]);
//! - `GET /healthz`: `ok`;
//! - `GET /status`: this node as JSON (domain, version, uptime, QUIC address, peers, outbox
//!   depth per peer, rooms hosted, devices);
//! - `GET /rooms?limit=&after=`: the rooms this node is hub for, with epoch, members (user,
//!   provider, role, clients) and pending outbox items, by room URI, `limit` default 100, at
//!   most 1000, `after` a room URI to page on;
//! - `GET /events`: Server-Sent Events, one per node event ([`crate::events`]);
//! - `GET /events/recent?n=`: the last `n` events (default 100, at most
//!   [`crate::events::RING`]) as JSON.
//!
//! Anything else is 404 (unknown path) or 405 (known path, other method), with a reason. The
//! protections of the hand-written listener it replaced stay: a request head over 8 KiB is
//! refused (431), a head not received within 5 s closes the connection, a request body over
//! 16 KiB is refused (413), a handler that takes longer than 10 s answers 503, at most 64
//! connections and 16 event streams at once. The listener has no authentication and the
//! configuration only allows loopback addresses (`admin_listen`).

use crate::events::{RING, Stamped};
use crate::metrics::Registry;
use crate::service::Node;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::StreamExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;

/// Longest request head (hyper's smallest buffer limit).
const MAX_HEAD: usize = 8 * 1024;
/// Time allowed to send the request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request body (no endpoint takes one).
const MAX_BODY: usize = 16 * 1024;
/// Time a handler may take (not the event stream).
const HANDLER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// Event streams at once.
const MAX_EVENT_STREAMS: usize = 16;
/// `/rooms` page size: default and largest.
const ROOMS_DEFAULT: u64 = 100;
const ROOMS_MAX: u64 = 1000;
/// `/events/recent` default.
const RECENT_DEFAULT: usize = 100;

const ENDPOINTS: &str = "/metrics, /healthz, /status, /rooms, /events, /events/recent";

/// The node behind an admin listener (for `/status`, `/rooms` and the events).
#[derive(Clone)]
pub struct AdminView {
    /// The node's services (store, hub state, peers, events).
    pub node: Node,
    /// The node's QUIC address.
    pub listen: SocketAddr,
    /// When the node started.
    pub started: Instant,
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Registry>,
    view: Option<Arc<AdminView>>,
    streams: Arc<Semaphore>,
}

/// A running admin listener.
pub struct Admin {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Admin {
    /// Binds `addr` (port 0 picks a free port) and serves `metrics` and `/healthz` until
    /// dropped or stopped (the node's views answer 404: there is no node).
    pub async fn start(addr: SocketAddr, metrics: Arc<Registry>) -> std::io::Result<Self> {
        Self::start_with(addr, metrics, None).await
    }

    /// [`Admin::start`] with the node's views (`/status`, `/rooms`, `/events`).
    pub async fn start_with(
        addr: SocketAddr,
        metrics: Arc<Registry>,
        view: Option<AdminView>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = router(AppState {
            metrics,
            view: view.map(Arc::new),
            streams: Arc::new(Semaphore::new(MAX_EVENT_STREAMS)),
        });
        let task = tokio::spawn(serve(listener, app));
        Ok(Self { addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and closes every connection (event streams too).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections and serves each with hyper's HTTP/1.1 server (head size limit and
/// head timeout), at most [`MAX_CONNECTIONS`] at once. The connections are tasks of a
/// [`tokio::task::JoinSet`] owned here: when this task is aborted, they go with it.
async fn serve(listener: TcpListener, app: Router) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        if conns.len() >= MAX_CONNECTIONS {
            let _ = conns.join_next().await;
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::debug!(error = %e, "admin: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                conns.spawn(async move {
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEAD_TIMEOUT)
                        // A client that shuts its side after the request still gets the
                        // answer (as with the old listener).
                        .half_close(true)
                        .max_buf_size(MAX_HEAD)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "admin request failed");
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn router(state: AppState) -> Router {
    // Everything but the event stream has a deadline.
    let timed = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/rooms", get(rooms))
        .route("/events/recent", get(recent))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HANDLER_TIMEOUT,
        ));
    Router::new()
        .merge(timed)
        .route("/events", get(events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(state)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        format!("no admin endpoint {}: try {ENDPOINTS}\n", uri.path()),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} takes GET only, not {method}\n", uri.path()),
    )
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

/// 404: this listener serves metrics only.
fn no_node() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "this admin listener has no node behind it (metrics and health only)\n".to_owned(),
    )
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}: storage: {e}\n"),
    )
}

/// A peer provider and where it is reached.
#[derive(Serialize)]
struct PeerJson {
    domain: String,
    address: String,
}

/// `GET /status`.
#[derive(Serialize)]
struct StatusJson {
    domain: String,
    version: &'static str,
    uptime_s: u64,
    listen: String,
    peers: Vec<PeerJson>,
    /// FanoutMessages waiting, per follower provider.
    outbox: BTreeMap<String, u64>,
    rooms_hosted: u64,
    devices: u64,
}

async fn status(State(s): State<AppState>) -> Response {
    let Some(v) = s.view.as_deref() else {
        return no_node();
    };
    let store = &v.node.store;
    let domain = v.node.domain.as_str();
    let (outbox, rooms_hosted, devices) = match (
        store.outbox_depth().await,
        store.hosted_room_count(domain).await,
        store.device_count().await,
    ) {
        (Ok(o), Ok(r), Ok(d)) => (o.into_iter().collect(), r, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return unavailable("status", e),
    };
    let peers = v
        .node
        .peers
        .as_ref()
        .map(|c| c.addrs())
        .unwrap_or_default()
        .into_iter()
        .map(|(domain, address)| PeerJson { domain, address })
        .collect();
    Json(StatusJson {
        domain: domain.to_owned(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: v.started.elapsed().as_secs(),
        listen: v.listen.to_string(),
        peers,
        outbox,
        rooms_hosted,
        devices,
    })
    .into_response()
}

#[derive(Deserialize)]
struct RoomsQuery {
    limit: Option<u64>,
    after: Option<String>,
}

/// A user in a hosted room.
#[derive(Serialize)]
struct MemberJson {
    user: String,
    /// The user's provider.
    provider: String,
    /// Its role index in the participant list (`None`: clients in the group, no entry).
    role: Option<u32>,
    /// Its clients in the MLS group.
    clients: Vec<String>,
}

/// A hosted room.
#[derive(Serialize)]
struct RoomJson {
    room: String,
    epoch: u64,
    members: Vec<MemberJson>,
    /// FanoutMessages of this room waiting, per follower provider.
    outbox: BTreeMap<String, u64>,
    /// Their sum.
    pending: u64,
    /// Why the room's state could not be read (members are then empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /rooms`.
#[derive(Serialize)]
struct RoomsJson {
    rooms: Vec<RoomJson>,
    /// The page size used.
    limit: u64,
    /// More rooms follow: ask again with `after=` this.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<String>,
}

async fn rooms(State(s): State<AppState>, Query(q): Query<RoomsQuery>) -> Response {
    let Some(v) = s.view.as_deref() else {
        return no_node();
    };
    let limit = match q.limit {
        None => ROOMS_DEFAULT,
        Some(0) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("limit must be 1 to {ROOMS_MAX}\n"),
            );
        }
        Some(n) => n.min(ROOMS_MAX),
    };
    let node = &v.node;
    let rows = match node
        .store
        .hosted_rooms(node.domain.as_str(), q.after.as_deref(), limit + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return unavailable("rooms", e),
    };
    let depth = match node.store.outbox_depth_by_room().await {
        Ok(d) => d,
        Err(e) => return unavailable("rooms", e),
    };
    let more = rows.len() as u64 > limit;
    let mut out = Vec::new();
    for row in rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let outbox: BTreeMap<String, u64> = depth
            .iter()
            .filter(|(r, _, _)| *r == row.room_uri)
            .map(|(_, f, n)| (f.clone(), *n))
            .collect();
        let (members, epoch, error) = match node.hub_of_row(row).await {
            Ok((version, hub)) => {
                let m = members_of(&hub);
                let epoch = hub.epoch();
                node.put_hub(&row.room_uri, version, hub);
                (m, epoch, None)
            }
            Err(e) => (Vec::new(), row.epoch, Some(e.to_string())),
        };
        out.push(RoomJson {
            room: row.room_uri.clone(),
            epoch,
            members,
            pending: outbox.values().sum(),
            outbox,
            error,
        });
    }
    Json(RoomsJson {
        next_after: if more {
            out.last().map(|r| r.room.clone())
        } else {
            None
        },
        rooms: out,
        limit,
    })
    .into_response()
}

/// The participant list with each user's clients in the group, in list order; users with
/// clients but no list entry last.
fn members_of(hub: &mimi_room::hub::HubRoom) -> Vec<MemberJson> {
    let mut members: Vec<MemberJson> = hub
        .room_state()
        .participants
        .participants
        .iter()
        .map(|p| MemberJson {
            user: p.user.to_string(),
            provider: p.user.provider().to_string(),
            role: Some(p.role_index),
            clients: Vec::new(),
        })
        .collect();
    for c in hub.clients() {
        let Some(user) = c.user() else { continue };
        let name = user.to_string();
        match members.iter_mut().find(|m| m.user == name) {
            Some(m) => m.clients.push(c.to_string()),
            None => members.push(MemberJson {
                user: name,
                provider: user.provider().to_string(),
                role: None,
                clients: vec![c.to_string()],
            }),
        }
    }
    members
}

#[derive(Deserialize)]
struct RecentQuery {
    n: Option<usize>,
}

/// `GET /events/recent`.
#[derive(Serialize)]
struct RecentJson {
    events: Vec<Arc<Stamped>>,
}

async fn recent(State(s): State<AppState>, Query(q): Query<RecentQuery>) -> Response {
    let Some(events) = s.view.as_deref().map(|v| &v.node.events) else {
        return no_node();
    };
    let n = q.n.unwrap_or(RECENT_DEFAULT).min(RING);
    Json(RecentJson {
        events: events.recent(n),
    })
    .into_response()
}

/// `GET /events`: an SSE stream from now on. Each event has `id:` (its number), `event:` (its
/// type) and `data:` (its JSON, as in `/events/recent`). A listener that falls behind gets an
/// `event: lagged` whose data is how many events it lost.
async fn events(State(s): State<AppState>) -> Response {
    let Some(events) = s.view.as_deref().map(|v| &v.node.events) else {
        return no_node();
    };
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{MAX_EVENT_STREAMS} event streams are open already: close one, or poll /events/recent\n"
            ),
        );
    };
    let rx = events.subscribe();
    let hello = futures_util::stream::once(async {
        Ok::<Event, Infallible>(Event::default().comment("mimi-node events"))
    });
    let live = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        let event = match rx.recv().await {
            Ok(e) => Event::default()
                .id(e.id.to_string())
                .event(e.event.kind())
                .json_data(&*e)
                .unwrap_or_else(|_| Event::default().comment("unencodable event")),
            Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok::<Event, Infallible>(event), (rx, permit)))
    });
    Sse::new(hello.chain(live))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
