//! The live view: a page (no build step, no framework: one HTML file with a little plain
//! JavaScript that polls `/api/state` every second) showing the providers and their health,
//! rooms with their members grouped by provider and their epoch, messages flowing, outbox
//! depth and a sparkline per node, and the faults in progress. The state comes from the
//! nodes' admin listeners (`/metrics`, and `/status` and `/rooms` where the node has them)
//! and, during `mimi-lab run --view`, from the run's own log.

use crate::log::{Event, Log};
use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A node the view polls.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    pub domain: String,
    pub admin: SocketAddr,
}

#[derive(Clone)]
struct Ctx {
    nodes: Arc<Vec<Watched>>,
    log: Option<Log>,
    /// Device index → (client URI, provider), during a run.
    devices: Arc<std::sync::RwLock<Vec<(String, String)>>>,
}

/// A running view.
pub struct View {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    devices: Arc<std::sync::RwLock<Vec<(String, String)>>>,
}

impl View {
    /// Tells the view which devices the run's log means.
    pub fn set_devices(&self, d: Vec<(String, String)>) {
        if let Ok(mut w) = self.devices.write() {
            *w = d;
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PAGE: &str = include_str!("view.html");

/// Serves the view at `listen` until dropped.
pub async fn serve(listen: SocketAddr, nodes: Vec<Watched>, log: Option<Log>) -> Result<View> {
    let devices = Arc::new(std::sync::RwLock::new(Vec::new()));
    let ctx = Ctx {
        nodes: Arc::new(nodes),
        log,
        devices: devices.clone(),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/api/state", get(state))
        .fallback(not_found)
        .with_state(ctx);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} for the view"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("mimi-lab view: {e}");
        }
    });
    Ok(View {
        addr,
        task,
        devices,
    })
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: the view serves / and /api/state\n",
    )
        .into_response()
}

async fn state(State(ctx): State<Ctx>) -> Response {
    let mut nodes = Vec::new();
    // What the nodes themselves report (admin `/events/recent`): the hub accepting messages
    // and commits, fanout to each follower; also when no scenario runs (`--federation`).
    let mut node_events = Vec::new();
    for n in ctx.nodes.iter() {
        if let Some(ev) = crate::metrics::get(n.admin, "/events/recent?n=40")
            .await
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            && let Some(list) = ev["events"].as_array()
        {
            for e in list {
                if e["type"] != "outbox_depth" {
                    let mut e = e.clone();
                    e["node"] = serde_json::Value::from(n.name.clone());
                    node_events.push(e);
                }
            }
        }
        let metrics = crate::metrics::get(n.admin, "/metrics").await;
        let status = crate::metrics::get(n.admin, "/status")
            .await
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let rooms = crate::metrics::get(n.admin, "/rooms")
            .await
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        let m = metrics.as_deref().unwrap_or_default();
        nodes.push(serde_json::json!({
            "name": n.name,
            "domain": n.domain,
            "admin": n.admin.to_string(),
            "up": metrics.is_some(),
            "outbox_depth": crate::metrics::sum(m, "mimi_outbox_depth"),
            "delivered_total": crate::metrics::sum(m, "mimi_outbox_delivered_total"),
            "requests_total": crate::metrics::sum(m, "mimi_requests_total"),
            "rooms_hosted": crate::metrics::sum(m, "mimi_rooms"),
            "status": status,
            "rooms": rooms,
        }));
    }
    let lab = ctx.log.as_ref().map(|log| {
        let devices = ctx.devices.read().map(|d| d.clone()).unwrap_or_default();
        lab_state(&log.snapshot(), &devices)
    });
    node_events.sort_by_key(|e| std::cmp::Reverse(e["at_ms"].as_u64().unwrap_or(0)));
    node_events.truncate(15);
    axum::Json(serde_json::json!({ "nodes": nodes, "node_events": node_events, "lab": lab }))
        .into_response()
}

/// What the run's log says now: time, counts, recent latencies, rooms (members by provider,
/// epoch), faults in progress, the last steps.
fn lab_state(log: &[crate::log::Record], devices: &[(String, String)]) -> serde_json::Value {
    let (mut sent, mut failed, mut delivered) = (0u64, 0u64, 0u64);
    let mut submitted: BTreeMap<&str, f64> = BTreeMap::new();
    let mut lat: Vec<(f64, f64)> = Vec::new();
    let mut rooms: BTreeMap<String, (u64, BTreeMap<usize, bool>)> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut flow = Vec::new();
    for r in log {
        match &r.event {
            Event::Sent {
                id,
                submitted_ms,
                device,
                room,
                ..
            } => {
                sent += 1;
                submitted.insert(id.as_str(), *submitted_ms);
                flow.push(serde_json::json!({ "t_s": r.t_ms / 1000.0, "sender": devices.get(*device).map(|d| d.0.clone()), "room": room, "id": &id[..12.min(id.len())] }));
            }
            Event::SendFailed { .. } => failed += 1,
            Event::Delivered { id, .. } => {
                delivered += 1;
                if let Some(s) = submitted.get(id.as_str()) {
                    lat.push((r.t_ms / 1000.0, r.t_ms - s));
                }
            }
            Event::Joined { device, room, .. } => {
                rooms
                    .entry(room.clone())
                    .or_default()
                    .1
                    .insert(*device, true);
            }
            Event::Left { device, room, .. } => {
                rooms
                    .entry(room.clone())
                    .or_default()
                    .1
                    .insert(*device, false);
            }
            Event::Commit { room, epoch, .. } => {
                let e = &mut rooms.entry(room.clone()).or_default().0;
                *e = (*e).max(*epoch);
            }
            Event::Step { action, error } => steps.push(serde_json::json!({
                "t_s": r.t_ms / 1000.0, "action": action, "error": error })),
            _ => {}
        }
    }
    let rooms: Vec<serde_json::Value> = rooms
        .iter()
        .map(|(room, (epoch, m))| {
            let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (d, inside) in m {
                if *inside && let Some((client, provider)) = devices.get(*d) {
                    by.entry(provider.clone()).or_default().push(client.clone());
                }
            }
            serde_json::json!({ "room": room, "epoch": epoch, "members": by })
        })
        .collect();
    let n = lat.len();
    let recent: Vec<f64> = lat[n.saturating_sub(200)..].iter().map(|l| l.1).collect();
    let flow: Vec<serde_json::Value> = flow.into_iter().rev().take(12).collect();
    let steps: Vec<serde_json::Value> = steps.into_iter().rev().take(12).collect();
    serde_json::json!({
        "t_s": log.last().map_or(0.0, |r| r.t_ms / 1000.0),
        "sent": sent, "failed": failed, "delivered": delivered,
        "recent_latency_ms": recent,
        "rooms": rooms,
        "recent_messages": flow,
        "recent_steps": steps,
    })
}

/// `mimi-lab view`: the nodes from a federation directory or `--node` flags.
pub async fn serve_cli(
    federation: Option<PathBuf>,
    nodes: Vec<String>,
    listen: SocketAddr,
) -> Result<()> {
    let mut watched = Vec::new();
    if let Some(dir) = federation {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("reading the federation directory {}", dir.display()))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("node.toml").is_file())
            .collect();
        names.sort();
        for d in names {
            let text = std::fs::read_to_string(d.join("node.toml"))?;
            let cfg: toml::Value = toml::from_str(&text)
                .with_context(|| format!("{}", d.join("node.toml").display()))?;
            let domain = cfg
                .get("domain")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let Some(admin) = cfg.get("admin_listen").and_then(|v| v.as_str()) else {
                eprintln!(
                    "mimi-lab view: {} has no admin_listen; skipped",
                    d.join("node.toml").display()
                );
                continue;
            };
            watched.push(Watched {
                name: domain.clone(),
                domain,
                admin: admin
                    .parse()
                    .map_err(|e| anyhow!("{}: admin_listen {admin:?}: {e}", d.display()))?,
            });
        }
    }
    for n in nodes {
        let (domain, addr) = n
            .split_once('=')
            .ok_or_else(|| anyhow!("--node {n:?}: give DOMAIN=HOST:PORT (the admin listener)"))?;
        watched.push(Watched {
            name: domain.to_owned(),
            domain: domain.to_owned(),
            admin: addr
                .parse()
                .map_err(|e| anyhow!("--node {n:?}: {addr:?} is not HOST:PORT: {e}"))?,
        });
    }
    if watched.is_empty() {
        bail!(
            "nothing to watch: pass --federation DIR (scripts/federation.sh's) or --node DOMAIN=HOST:PORT"
        );
    }
    let v = serve(listen, watched, None).await?;
    println!("mimi-lab view: http://{}/ (Ctrl-C stops)", v.addr);
    let _ = tokio::signal::ctrl_c().await;
    drop(v);
    Ok(())
}
