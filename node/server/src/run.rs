//! Running a node from its configuration: storage, the HTTP/3 listener, the outbox worker, the
//! admin listener; graceful shutdown.

use crate::config::{Config, Database};
use crate::http::{NodeHandler, skewed_clock};
use crate::metrics::Registry;
use crate::outbox::{OutboxConfig, run_pass};
use crate::service::{Node, NodeOptions};
use mimi_net::NetLimits;
use mimi_net::client::Connector;
use mimi_net::pki::{load_certs, load_key};
use mimi_net::server::Server;
use mimi_net::tls::TlsMaterial;
use mimi_proto::backoff::RetryPolicy;
use mimi_store::Store;
use mimi_wire::id::ProviderId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration.
    #[error("{0}")]
    Config(String),
    /// TLS material.
    #[error(transparent)]
    Pki(#[from] mimi_net::pki::PkiError),
    /// Storage.
    #[error(transparent)]
    Store(#[from] mimi_store::StoreError),
    /// The listener.
    #[error(transparent)]
    Server(#[from] mimi_net::server::ServerError),
    /// Outgoing connections.
    #[error(transparent)]
    Call(#[from] mimi_net::client::CallError),
    /// The admin listener.
    #[error("admin listener: {0}")]
    Admin(std::io::Error),
}

/// Sets a peer provider's address (`domain`, `host:port`).
pub type PeerSetter = Arc<dyn Fn(&str, String) + Send + Sync>;

/// A running node.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The node's services (to drive retention or inspect it from a test).
    pub node: Node,
    server: Server,
    worker: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    admin: Option<crate::admin::Admin>,
    peers: Arc<Connector>,
}

impl Running {
    /// Sets (or changes) the address of a peer provider, as the `[peers]` map does at start
    /// (for nodes whose ports are only known once they listen).
    pub fn set_peer(&self, domain: &str, addr: impl Into<String>) {
        self.peers.set_addr(domain, addr);
    }

    /// Where the admin listener listens (`admin_listen`), if it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(crate::admin::Admin::local_addr)
    }

    /// [`Running::set_peer`] as a function that outlives borrows of the node.
    pub fn peer_setter(&self) -> PeerSetter {
        let peers = self.peers.clone();
        Arc::new(move |domain: &str, addr: String| peers.set_addr(domain, addr))
    }

    /// Stops accepting, lets requests finish, stops the outbox worker.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.server.shutdown(Duration::from_secs(5)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.worker).await;
    }
}

/// Starts a node.
pub async fn start(cfg: &Config) -> Result<Running, RunError> {
    let domain = ProviderId::parse(&cfg.domain).map_err(|e| RunError::Config(e.to_string()))?;
    let location = match &cfg.database {
        Database::Sqlite(p) => p.display().to_string(),
        Database::Postgres(url) => url.clone(),
    };
    let options = mimi_store::StoreOptions {
        sqlite_cache_kib: cfg.sqlite.cache_kib,
    };
    let store = Store::open_with(&location, &options).await?;
    let tls = TlsMaterial {
        chain: load_certs(&cfg.tls.certificate)?,
        key: Arc::new(load_key(&cfg.tls.key)?),
        roots: cfg
            .tls
            .trusted_roots
            .iter()
            .map(|p| load_certs(p))
            .collect::<Result<Vec<_>, _>>()?
            .concat(),
    };
    let limits = NetLimits {
        max_body: cfg.limits.max_body_bytes,
        max_streams: cfg.limits.max_concurrent_streams,
        request_timeout: Duration::from_millis(cfg.limits.request_timeout_ms),
        ..NetLimits::default()
    };
    let clock = skewed_clock(cfg.faults.clock_offset_ms);
    // Peer addresses are resolved when connecting (mimi-net), so a peer that is not up yet is
    // not an error at start.
    let peers: HashMap<String, String> = cfg.peers.clone().into_iter().collect();
    let connector = Arc::new(Connector::provider(
        &cfg.domain,
        &tls.chain,
        &tls.key,
        &tls.roots,
        peers,
        limits,
    )?);
    let node = Node::open(
        domain.clone(),
        store.clone(),
        NodeOptions {
            open_registration: cfg.registration.open,
            hub_cache_rooms: cfg.hub.cache_rooms,
            faults: cfg.faults.clone(),
            assets: crate::assets::AssetOptions {
                dir: Some(cfg.assets.dir.clone()),
                max_bytes: cfg.assets.max_bytes,
                max_ohttp_bytes: cfg
                    .limits
                    .max_body_bytes
                    .saturating_sub(crate::assets::OHTTP_FRAMING),
            },
        },
        clock(),
    )
    .await
    .map_err(|e| RunError::Config(format!("opening the node's services: {e}")))?
    .with_peers(connector.clone());
    let connector_handle = connector.clone();
    let metrics = Arc::new(Registry::new());
    let request_metrics =
        crate::http::RequestMetrics::new(&metrics).map_err(|e| RunError::Config(e.to_string()))?;
    let handler = Arc::new(NodeHandler {
        node: node.clone(),
        authority: format!("{}:{}", cfg.domain, cfg.listen.port()),
        clock: clock.clone(),
        metrics: Some(request_metrics),
    });
    let server = Server::start(&cfg.domain, cfg.listen, &tls, limits, handler)?;
    let addr = server
        .local_addr()
        .map_err(|e| RunError::Config(e.to_string()))?;
    let outbox = OutboxConfig {
        // Unique per running node, also for several nodes in one process: an owner is one
        // sequential worker (mimi-store's lease rule).
        owner: {
            let mut r = [0u8; 8];
            let _ = getrandom::getrandom(&mut r);
            format!("{}-{}-{}", cfg.domain, std::process::id(), hex::encode(r))
        },
        lease_ms: 30_000,
        batch_max_bytes: cfg.outbox.batch_max_bytes,
        retry: RetryPolicy {
            base: Duration::from_millis(cfg.outbox.retry_base_ms),
            max: Duration::from_millis(cfg.outbox.retry_max_ms),
            ..RetryPolicy::default()
        },
    };
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let depth = metrics
        .gauge(
            "mimi_outbox_depth",
            "FanoutMessages waiting per follower provider.",
            &["follower"],
        )
        .map_err(|e| RunError::Config(e.to_string()))?;
    let delivered = metrics
        .counter(
            "mimi_outbox_delivered_total",
            "FanoutMessages acknowledged by followers.",
            &[],
        )
        .map_err(|e| RunError::Config(e.to_string()))?;
    let prune_clock = clock.clone();
    let worker_node = node.clone();
    let wake = node.outbox_wake.clone();
    let started = std::time::Instant::now();
    let worker = tokio::spawn(async move {
        // The depth last set per follower (a change is also a node event).
        let mut known: std::collections::BTreeMap<String, u64> = Default::default();
        // The depth gauge counts the whole outbox (a scan): refreshed at most every 250 ms,
        // not after every batch, so that a long catch-up does not rescan its backlog per
        // notify (issue 16).
        let mut depth_at: Option<std::time::Instant> = None;
        // Rows the last pass delivered, completed in the next pass's claim transaction
        // (`STORE-outbox-complete-claim`).
        let mut done: Vec<mimi_store::OutboxRow> = Vec::new();
        loop {
            let n = run_pass(&worker_node, &connector, &outbox, &clock, &mut done).await;
            let _ = delivered.add(&[], n as u64);
            // While a pass's deliveries wait for the next claim the depth counts them too:
            // refreshed then at most every second (else every 250 ms).
            let every = if done.is_empty() { 250 } else { 1000 };
            let due = depth_at.is_none_or(|t| t.elapsed() >= Duration::from_millis(every));
            if due && let Ok(d) = worker_node.store.outbox_depth().await {
                depth_at = Some(std::time::Instant::now());
                // Followers whose queue emptied read 0, not their last depth.
                let now: std::collections::BTreeMap<String, u64> =
                    known.keys().map(|f| (f.clone(), 0)).chain(d).collect();
                for (f, v) in now {
                    let _ = depth.set(&[&f], i64::try_from(v).unwrap_or(i64::MAX));
                    if known.insert(f.clone(), v) != Some(v) {
                        worker_node
                            .events
                            .emit(crate::events::NodeEvent::OutboxDepth { peer: f, depth: v });
                    }
                }
            }
            if *stopped.borrow() {
                break;
            }
            if n > 0 {
                continue;
            }
            // Sleep until new work is committed (or a retry may be due).
            tokio::select! {
                _ = stopped.changed() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        if let Err(e) = worker_node.store.complete_outbox(&done).await {
            tracing::warn!(error = %e, "outbox: cannot record the last deliveries at shutdown");
        }
        // Give this worker's leases back so that the next process goes on at once.
        if let Err(e) = worker_node.store.release_outbox(&outbox.owner).await {
            tracing::warn!(error = %e, "outbox: cannot release leases at shutdown");
        }
    });
    // Retention (STORE-retention): prune every interval_s.
    let prune_node = node.clone();
    let retention = cfg.retention.clone();
    let mut prune_stop = stop.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = prune_stop.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(retention.interval_s)) => {}
            }
            match prune_node.prune(prune_clock(), &retention).await {
                Ok(r) => tracing::debug!(?r, "retention"),
                Err(e) => tracing::warn!(error = %e, "retention: pruning failed"),
            }
        }
    });
    // Gauges sampled once a second: rooms hosted or followed, QUIC connections each way.
    let rooms_gauge = metrics
        .gauge("mimi_rooms", "Rooms this node keeps state for.", &[])
        .map_err(|e| RunError::Config(e.to_string()))?;
    let conn_gauge = metrics
        .gauge(
            "mimi_connections",
            "Open QUIC connections: in (peers and devices calling us), out (to peer providers).",
            &["direction"],
        )
        .map_err(|e| RunError::Config(e.to_string()))?;
    let incoming = server.connection_counter();
    let gauge_store = store.clone();
    let gauge_peers = connector_handle.clone();
    let mut gauge_stop = stop.subscribe();
    tokio::spawn(async move {
        loop {
            if let Ok(n) = gauge_store.room_count().await {
                let _ = rooms_gauge.set(&[], i64::try_from(n).unwrap_or(i64::MAX));
            }
            let _ = conn_gauge.set(&["in"], i64::try_from(incoming()).unwrap_or(i64::MAX));
            let out = gauge_peers.connections().await;
            let _ = conn_gauge.set(&["out"], i64::try_from(out).unwrap_or(i64::MAX));
            tokio::select! {
                _ = gauge_stop.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    });
    let admin = match cfg.admin_listen {
        Some(a) => Some(
            crate::admin::Admin::start_with(
                a,
                metrics,
                Some(crate::admin::AdminView {
                    node: node.clone(),
                    listen: addr,
                    started,
                }),
            )
            .await
            .map_err(RunError::Admin)?,
        ),
        None => None,
    };
    if cfg.faults != Default::default() {
        tracing::warn!(faults = ?cfg.faults, "this node breaks the protocol on purpose ([faults] in its config)");
    }
    tracing::info!(domain = %cfg.domain, %addr, "node running");
    Ok(Running {
        addr,
        node,
        server,
        worker,
        stop,
        admin,
        peers: connector_handle,
    })
}

/// `mimi-node run`: starts the node of the configuration file, prints `<domain> listening on
/// <addr> (QUIC, HTTP/3)` on stdout, runs until SIGTERM or Ctrl-C, then shuts down gracefully
/// (in-flight requests finish; the outbox resumes at the next start).
pub fn serve_until_signal(config: &std::path::Path) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = start(&cfg).await?;
        println!(
            "{} listening on {} (QUIC, HTTP/3)",
            cfg.domain, running.addr
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await;
        Ok::<(), anyhow::Error>(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
