//! The federation as OS processes: one `mimi-lab node <config>` process per node (the code of
//! `mimi-node run`), each with its own certificate, configuration, log and SQLite file or
//! PostgreSQL database, on fixed loopback ports so that a restarted node is where it was.
//! Peer addresses point at the relay ([`crate::relay`]).

use anyhow::{Context, Result, anyhow, bail};
use mimi_net::pki::Ca;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a node process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    Stopped,
    Killed,
}

/// One node process.
pub struct NodeProc {
    /// `a.example` or `a.example/2`.
    pub name: String,
    pub domain: String,
    pub dir: PathBuf,
    pub config: PathBuf,
    /// Its QUIC listener.
    pub addr: SocketAddr,
    /// Its admin listener (`/metrics`).
    pub admin: SocketAddr,
    /// `sqlite` or the PostgreSQL URL.
    pub database: String,
    pub state: NodeState,
    child: Option<Child>,
    /// `[faults]` lines of the scenario.
    base_faults: String,
    /// Extra `[faults]` lines (clock skew).
    faults: String,
}

/// Every node, and where each provider's first node is.
pub struct Fed {
    pub ca_pem: PathBuf,
    pub nodes: Vec<NodeProc>,
    exe: PathBuf,
    /// Provider → its first node's address (read by the relay).
    pub first: Arc<RwLock<HashMap<String, SocketAddr>>>,
    /// PostgreSQL databases to drop at the end (server URL, name).
    pub pg_databases: Vec<(String, String)>,
}

fn free_udp_port() -> Result<SocketAddr> {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a UDP port")?;
    Ok(s.local_addr()?)
}

fn free_tcp_port() -> Result<SocketAddr> {
    let s = std::net::TcpListener::bind("127.0.0.1:0").context("binding a TCP port")?;
    Ok(s.local_addr()?)
}

/// A node to create: its name, domain and database.
pub struct Plan {
    pub name: String,
    pub domain: String,
    pub database: String,
    /// Lines of the node's `[faults]` section.
    pub faults: String,
}

impl Fed {
    /// Writes the CA, every node's certificate and configuration under `dir`, and starts
    /// them. `peers(from, to)` is the address node `from`'s provider uses for provider `to`.
    pub async fn start(
        dir: &Path,
        exe: &Path,
        plan: &[Plan],
        request_timeout_ms: u64,
        peers: &dyn Fn(&str, &str) -> Option<SocketAddr>,
        first: Arc<RwLock<HashMap<String, SocketAddr>>>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = Ca::new("mimi-lab federation").map_err(|e| anyhow!("creating the CA: {e}"))?;
        let ca_pem = dir.join("ca.crt");
        std::fs::write(&ca_pem, &ca.cert_pem)?;
        let domains: Vec<String> = {
            let mut d: Vec<String> = plan.iter().map(|p| p.domain.clone()).collect();
            d.dedup();
            d
        };
        let mut nodes = Vec::new();
        for p in plan {
            let nd = dir.join(p.name.replace('/', "-"));
            std::fs::create_dir_all(&nd)?;
            let issued = ca
                .issue(&p.domain)
                .map_err(|e| anyhow!("certificate for {}: {e}", p.domain))?;
            issued
                .write(&nd.join("node.crt"), &nd.join("node.key"))
                .map_err(|e| anyhow!("writing {}'s certificate: {e}", p.domain))?;
            let mut peer_lines = String::new();
            for d in &domains {
                if *d != p.domain
                    && let Some(a) = peers(&p.domain, d)
                {
                    peer_lines.push_str(&format!("\"{d}\" = \"{a}\"\n"));
                }
            }
            let node = NodeProc {
                name: p.name.clone(),
                domain: p.domain.clone(),
                config: nd.join("node.toml"),
                dir: nd,
                addr: free_udp_port()?,
                admin: free_tcp_port()?,
                database: p.database.clone(),
                state: NodeState::Killed,
                child: None,
                base_faults: p.faults.clone(),
                faults: String::new(),
            };
            node.write_config(request_timeout_ms, &peer_lines)?;
            nodes.push(node);
        }
        let mut fed = Fed {
            ca_pem,
            nodes,
            exe: exe.to_owned(),
            first,
            pg_databases: Vec::new(),
        };
        if let Ok(mut f) = fed.first.write() {
            for n in &fed.nodes {
                f.entry(n.domain.clone()).or_insert(n.addr);
            }
        }
        for i in 0..fed.nodes.len() {
            fed.spawn(i).await?;
        }
        Ok(fed)
    }

    /// The index of a node by name (`a.example`, `a.example/2`).
    pub fn index(&self, name: &str) -> Result<usize> {
        let (d, k) = crate::scenario::split_node(name);
        let want = if k <= 1 {
            d.to_owned()
        } else {
            format!("{d}/{k}")
        };
        self.nodes
            .iter()
            .position(|n| n.name == want)
            .ok_or_else(|| anyhow!("no node {name}"))
    }

    /// The nodes of a provider.
    pub fn of(&self, domain: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].domain == domain)
            .collect()
    }

    async fn spawn(&mut self, i: usize) -> Result<()> {
        let n = &mut self.nodes[i];
        let log_path = n.dir.join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        // SIGXFSZ ignored (inherited through exec), so that a disk-full fault (RLIMIT_FSIZE)
        // fails writes instead of killing the node.
        let child = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; exec \"$0\" node \"$1\"")
            .arg(&self.exe)
            .arg(&n.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", n.name))?;
        n.child = Some(child);
        // Bounded wait for "… listening on …" in the log.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(start_len as usize..).unwrap_or_default())
                .into_owned();
            if new.contains(" listening on ") {
                break;
            }
            if let Some(c) = n.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                n.child = None;
                bail!(
                    "{} exited ({st}) at start; its log {}:\n{}",
                    n.name,
                    log_path.display(),
                    new.trim()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within 60 s (log {})",
                    n.name,
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        n.state = NodeState::Running;
        Ok(())
    }

    fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let n = &mut self.nodes[i];
        let Some(mut c) = n.child.take() else {
            bail!("{} is not running", n.name);
        };
        // A stopped process dies of SIGKILL too.
        let _ = c.kill();
        let _ = c.wait();
        n.state = NodeState::Killed;
        Ok(())
    }

    /// Starts a killed node again (same port, same database).
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].child.is_some() {
            bail!("{} is running; kill it first", self.nodes[i].name);
        }
        self.spawn(i).await
    }

    fn signal(&self, i: usize, sig: &str) -> Result<()> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("{} is not running", self.nodes[i].name))?;
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        if !st.success() {
            bail!("kill -{sig} {pid} failed");
        }
        Ok(())
    }

    /// SIGSTOP.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        self.signal(i, "STOP")?;
        self.nodes[i].state = NodeState::Stopped;
        Ok(())
    }

    /// SIGCONT.
    pub fn cont(&mut self, i: usize) -> Result<()> {
        self.signal(i, "CONT")?;
        self.nodes[i].state = NodeState::Running;
        Ok(())
    }

    /// RLIMIT_FSIZE of the node's process at the size of its largest database file: the
    /// database cannot grow (writes fail with EFBIG, as on a full disk). `None` lifts it.
    pub fn disk_limit(&self, i: usize, full: bool) -> Result<u64> {
        let pid = self
            .pid(i)
            .ok_or_else(|| anyhow!("{} is not running", self.nodes[i].name))?;
        let n = &self.nodes[i];
        let size = ["node.sqlite", "node.sqlite-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(n.dir.join(f)).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
            .max(4096);
        let limit = if full {
            format!("--fsize={size}:unlimited")
        } else {
            "--fsize=unlimited:unlimited".to_owned()
        };
        let st = Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(limit)
            .status()
            .context("running prlimit (util-linux)")?;
        if !st.success() {
            bail!("prlimit on {} failed", n.name);
        }
        Ok(size)
    }

    /// Restarts the node with its clock `offset_ms` ahead.
    pub async fn clock_skew(
        &mut self,
        i: usize,
        offset_ms: i64,
        request_timeout_ms: u64,
    ) -> Result<()> {
        if self.nodes[i].child.is_some() {
            self.kill(i)?;
        }
        self.nodes[i].faults = format!("clock_offset_ms = {offset_ms}\n");
        let peers = self.nodes[i].peer_lines()?;
        self.nodes[i].write_config(request_timeout_ms, &peers)?;
        self.spawn(i).await
    }

    /// Ends every process (SIGCONT first for stopped ones, then SIGTERM, bounded wait, then
    /// SIGKILL).
    pub async fn shutdown(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].state == NodeState::Stopped {
                let _ = self.cont(i);
            }
            let _ = self.signal(i, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = c.try_wait() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = c.kill();
                let _ = c.wait();
            }
            n.state = NodeState::Killed;
        }
    }
}

impl Drop for Fed {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl NodeProc {
    fn write_config(&self, request_timeout_ms: u64, peer_lines: &str) -> Result<()> {
        let text = format!(
            "domain = \"{}\"\nlisten = \"{}\"\nadmin_listen = \"{}\"\ndatabase = \"{}\"\n\
             [tls]\ncertificate = \"node.crt\"\nkey = \"node.key\"\ntrusted_roots = [\"../ca.crt\"]\n\
             [registration]\nopen = true\n[outbox]\nretry_base_ms = 50\nretry_max_ms = 1000\n\
             [limits]\nrequest_timeout_ms = {request_timeout_ms}\n[faults]\n{}{}[peers]\n{peer_lines}",
            self.domain, self.addr, self.admin, self.database, self.base_faults, self.faults
        );
        std::fs::write(&self.config, text)
            .with_context(|| format!("writing {}", self.config.display()))
    }

    fn peer_lines(&self) -> Result<String> {
        let text = std::fs::read_to_string(&self.config)?;
        Ok(text
            .split_once("[peers]\n")
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default())
    }
}

/// Creates a database of its own for one provider on the PostgreSQL server at `url`; its URL.
pub async fn pg_database(url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {url}"))?;
    sqlx::Executor::execute(
        &mut c,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .with_context(|| format!("CREATE DATABASE {name}"))?;
    let (base, _) = url
        .rsplit_once('/')
        .ok_or_else(|| anyhow!("{url}: not a postgres://host/database URL"))?;
    Ok(format!("{base}/{name}"))
}

/// Drops a database created by [`pg_database`].
pub async fn pg_drop(url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await?;
    sqlx::Executor::execute(
        &mut c,
        sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
    )
    .await?;
    Ok(())
}
