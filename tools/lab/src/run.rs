//! `mimi-lab run`: brings the scenario's federation up, plays its timeline, checks
//! convergence, writes the report, and says whether every check passed.

use crate::agents::{Agent, Cmd, Recent, View};
use crate::checks::{self, Failure};
use crate::fed::{Fed, NodeState, Plan, pg_database, pg_drop};
use crate::log::{Event, Log};
use crate::relay::{LinkFaults, Relay, Rng};
use crate::scenario::{Action, Scenario};
use anyhow::{Context, Result, anyhow, bail};
use mimi_client::device::HomeNode;
use mimi_wire::id::{RoomUri, UserUri};
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How to run.
pub struct Options {
    pub scenario: PathBuf,
    pub out: PathBuf,
    pub short: bool,
    pub postgres: Option<String>,
    pub keep: bool,
    /// The program to start nodes with (`<exe> node <config>`).
    pub exe: PathBuf,
    /// Serve the live view here while the scenario runs.
    pub view: Option<SocketAddr>,
}

/// The outcome: the summary written, and the failures.
pub struct Outcome {
    pub failures: Vec<Failure>,
    pub summary: serde_json::Value,
}

/// Everything the timeline acts on.
struct Lab {
    sc: Scenario,
    log: Log,
    fed: Fed,
    relay: Relay,
    agents: Vec<Agent>,
    /// User name → its devices (indexes into `agents`).
    users: BTreeMap<String, Vec<usize>>,
    rooms: BTreeMap<String, RoomUri>,
    paused: Arc<AtomicBool>,
    tokens: HashMap<String, String>,
    work: PathBuf,
    recent: Recent,
    view: Option<crate::view::View>,
}

const ASK: Duration = Duration::from_secs(60);

pub async fn run(opts: &Options) -> Result<Outcome> {
    let mut sc = Scenario::load(&opts.scenario).map_err(|e| anyhow!(e))?;
    if opts.short {
        sc = sc.shortened();
    }
    if sc.needs_postgres() && opts.postgres.is_none() {
        bail!(
            "{} has providers on PostgreSQL: pass --postgres postgres://user@host:port/postgres \
             (or set MIMI_LAB_POSTGRES_URL); scripts/pg.sh start DIR starts a throwaway server",
            opts.scenario.display()
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating the report directory {}", opts.out.display()))?;
    let work = opts.out.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("removing the old {}", work.display()))?;
    }
    let log = Log::new();
    let tag = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    // Databases.
    let mut plan = Vec::new();
    let mut pg = Vec::new();
    for p in &sc.providers {
        let database = if p.database == "postgres" {
            let url = opts.postgres.as_deref().unwrap_or_default();
            let name = format!("mimi_lab_{}_{tag}", p.domain.replace(['.', '-'], "_"));
            let db = pg_database(url, &name).await?;
            pg.push((url.to_owned(), name));
            db
        } else {
            "sqlite".into()
        };
        for k in 1..=p.processes {
            plan.push(Plan {
                name: if k == 1 {
                    p.domain.clone()
                } else {
                    format!("{}/{k}", p.domain)
                },
                domain: p.domain.clone(),
                database: database.clone(),
                faults: toml::to_string(&p.faults)
                    .map_err(|e| anyhow!("provider {}: faults: {e}", p.domain))?,
            });
        }
    }
    let result = run_with(opts, sc, log.clone(), &work, &plan, pg.clone()).await;
    for (url, name) in &pg {
        if let Err(e) = pg_drop(url, name).await {
            eprintln!("mimi-lab: could not drop the database {name}: {e:#}");
        }
    }
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

async fn run_with(
    opts: &Options,
    sc: Scenario,
    log: Log,
    work: &Path,
    plan: &[Plan],
    pg: Vec<(String, String)>,
) -> Result<Outcome> {
    let domains: Vec<String> = sc.providers.iter().map(|p| p.domain.clone()).collect();
    let first: Arc<RwLock<HashMap<String, SocketAddr>>> = Arc::new(RwLock::new(HashMap::new()));
    let f2 = first.clone();
    let relay = Relay::start(
        &domains,
        sc.seed,
        Arc::new(move |d: &str| f2.read().ok().and_then(|m| m.get(d).copied())),
    )
    .await
    .context("starting the relay")?;
    progress(&format!("starting {} node process(es)", plan.len()));
    let ports = relay.ports.clone();
    let mut fed = Fed::start(
        work,
        &opts.exe,
        plan,
        sc.request_timeout_ms,
        &|a, b| ports.get(&(a.to_owned(), b.to_owned())).copied(),
        first,
    )
    .await?;
    fed.pg_databases = pg;
    let view = match opts.view {
        Some(addr) => {
            let watched = fed
                .nodes
                .iter()
                .map(|n| crate::view::Watched {
                    name: n.name.clone(),
                    domain: n.domain.clone(),
                    admin: n.admin,
                })
                .collect();
            let v = crate::view::serve(addr, watched, Some(log.clone())).await?;
            progress(&format!("live view: http://{}/", v.addr));
            Some(v)
        }
        None => None,
    };
    let mut lab = Lab {
        sc,
        log,
        fed,
        relay,
        agents: Vec::new(),
        users: BTreeMap::new(),
        rooms: BTreeMap::new(),
        paused: Arc::new(AtomicBool::new(false)),
        tokens: HashMap::new(),
        work: work.to_owned(),
        recent: Recent::default(),
        view,
    };
    let r = lab.play(opts).await;
    lab.fed.shutdown().await;
    r
}

fn progress(s: &str) {
    eprintln!("mimi-lab: {s}");
}

impl Lab {
    fn name(&self, d: usize) -> String {
        self.agents
            .get(d)
            .map_or_else(|| format!("device {d}"), |a| a.client.clone())
    }

    fn home(&self, domain: &str, k: usize) -> Result<HomeNode> {
        let nodes = self.fed.of(domain);
        let i = *nodes
            .get(k % nodes.len().max(1))
            .ok_or_else(|| anyhow!("no node of {domain}"))?;
        Ok(HomeNode {
            domain: domain.to_owned(),
            addr: self.fed.nodes[i].addr.to_string(),
            ca: self.fed.ca_pem.clone(),
        })
    }

    async fn add_device(&mut self, user: &str, domain: &str) -> Result<usize> {
        let id = self.agents.len();
        let k = self.users.get(user).map_or(0, Vec::len);
        let home = self.home(domain, id)?;
        let dir = self.work.join("devices").join(format!("{user}-{}", k + 1));
        let (agent, token) = Agent::register(
            id,
            dir,
            home,
            user,
            &format!("d{}", k + 1),
            self.tokens.get(user).map(String::as_str),
            self.log.clone(),
            self.recent.clone(),
            self.sc.seed.wrapping_mul(1000).wrapping_add(id as u64),
        )
        .await?;
        self.tokens.entry(user.to_owned()).or_insert(token);
        self.agents.push(agent);
        self.users.entry(user.to_owned()).or_default().push(id);
        Ok(id)
    }

    fn user_uri(&self, user: &str) -> Result<UserUri> {
        let d = self
            .users
            .get(user)
            .and_then(|v| v.first())
            .ok_or_else(|| anyhow!("no user {user}"))?;
        Ok(self.agents[*d].user_uri.clone())
    }

    fn device_ids(&self) -> Vec<usize> {
        (0..self.agents.len()).collect()
    }

    /// The devices that are members of `room` now.
    fn members(&self, room: &RoomUri) -> Vec<usize> {
        let log = self.log.snapshot();
        (0..self.agents.len())
            .filter(|d| checks::member_now(&log, *d, room.as_str()))
            .collect()
    }

    async fn setup(&mut self) -> Result<()> {
        let users = self.sc.all_users();
        progress(&format!("registering {} user(s)", users.len()));
        for (name, (domain, devices)) in &users {
            for _ in 0..*devices {
                self.add_device(name, domain).await?;
            }
        }
        for r in self.sc.rooms.clone() {
            let owner = *self
                .users
                .get(&r.owner)
                .and_then(|v| v.first())
                .ok_or_else(|| anyhow!("no owner {}", r.owner))?;
            let name = r.name.clone();
            let room = self.agents[owner]
                .ask(|done| Cmd::Create { name, done }, ASK)
                .await
                .with_context(|| format!("creating room {}", r.name))?;
            // The owner's other devices join by external commit.
            for d in self.users[&r.owner].clone().into_iter().skip(1) {
                let room2 = room.clone();
                self.agents[d]
                    .ask(|done| Cmd::Join { room: room2, done }, ASK)
                    .await
                    .with_context(|| format!("{}: joining {}", self.name(d), r.name))?;
            }
            let members: Vec<String> = self.sc.members_of(&r).into_iter().skip(1).collect();
            progress(&format!(
                "room {}: adding {} user(s)",
                r.name,
                members.len()
            ));
            for chunk in members.chunks(50) {
                let uris = chunk
                    .iter()
                    .map(|u| self.user_uri(u))
                    .collect::<Result<Vec<_>>>()?;
                let room2 = room.clone();
                self.agents[owner]
                    .ask(
                        |done| Cmd::Add {
                            room: room2,
                            users: uris,
                            done,
                        },
                        ASK,
                    )
                    .await
                    .with_context(|| format!("adding users to {}", r.name))?;
            }
            self.rooms.insert(r.name.clone(), room.clone());
            // Bounded wait until every added device has its Welcome.
            let want: usize = self
                .sc
                .members_of(&r)
                .iter()
                .map(|u| self.users.get(u).map_or(0, Vec::len))
                .sum();
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let have = self.members(&room).len();
                if have >= want {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "room {}: only {have} of {want} devices joined within 120 s",
                        r.name
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn play(&mut self, opts: &Options) -> Result<Outcome> {
        self.setup().await?;
        if let Some(v) = &self.view {
            v.set_devices(
                self.agents
                    .iter()
                    .map(|a| (a.client.clone(), a.domain.clone()))
                    .collect(),
            );
        }
        progress(&format!(
            "timeline of {:.0} s starts ({} device(s), {} room(s))",
            self.sc.duration_s,
            self.agents.len(),
            self.rooms.len()
        ));
        self.log.start_timeline();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        // Metrics sampler.
        {
            let nodes: Vec<(String, SocketAddr)> = self
                .fed
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.admin))
                .collect();
            let log = self.log.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for (name, admin) in &nodes {
                        let depth = crate::metrics::outbox_depth(*admin).await;
                        log.push(Event::Sample {
                            node: name.clone(),
                            up: depth.is_some(),
                            outbox_depth: depth.unwrap_or(0.0),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }));
        }
        // Traffic.
        for (k, t) in self.sc.traffic.clone().into_iter().enumerate() {
            let room = self.rooms[&t.room].clone();
            let senders: Vec<usize> = if t.senders.is_empty() {
                Vec::new()
            } else {
                t.senders
                    .iter()
                    .flat_map(|u| self.users.get(u).cloned().unwrap_or_default())
                    .collect()
            };
            let agents = self.agents.clone();
            let log = self.log.clone();
            let (stop, paused, sent) = (stop.clone(), self.paused.clone(), sent.clone());
            let mut rng = Rng::new(self.sc.seed.wrapping_add(7_000 + k as u64));
            tasks.push(tokio::spawn(async move {
                let period = Duration::from_secs_f64(1.0 / t.rate);
                let start = Instant::now() + Duration::from_secs_f64(t.from_s);
                let end = Instant::now() + Duration::from_secs_f64(t.until_s);
                tokio::time::sleep_until(start.into()).await;
                let mut next = Instant::now();
                let mut members = Vec::new();
                let mut refreshed = Instant::now() - Duration::from_secs(10);
                while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                    if !paused.load(Ordering::Relaxed) {
                        if refreshed.elapsed() > Duration::from_millis(500) {
                            let snap = log.snapshot();
                            members = (0..agents.len())
                                .filter(|d| {
                                    (senders.is_empty() || senders.contains(d))
                                        && checks::member_now(&snap, *d, room.as_str())
                                })
                                .collect();
                            refreshed = Instant::now();
                        }
                        if !members.is_empty() {
                            let d = members[rng.below(members.len() as u64) as usize];
                            let kind = t.mix.pick(rng.below(u64::from(t.mix.total())) as u32);
                            let seq = sent.fetch_add(1, Ordering::Relaxed);
                            if !agents[d].send(&room, kind, seq) {
                                log.push(Event::SendSkipped {
                                    device: d,
                                    room: room.to_string(),
                                });
                            }
                        }
                    }
                    next += period;
                    tokio::time::sleep_until(next.into()).await;
                }
            }));
        }
        // Progress line.
        {
            let log = self.log.clone();
            let stop = stop.clone();
            let total = self.sc.duration_s;
            tasks.push(tokio::spawn(async move {
                let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    n += 1;
                    if tty || n.is_multiple_of(5) {
                        let line = status_line(&log.snapshot(), total);
                        if tty {
                            eprint!("\r{line:<100}");
                            let _ = std::io::stderr().flush();
                        } else {
                            eprintln!("mimi-lab: {line}");
                        }
                    }
                }
                if tty {
                    eprintln!();
                }
            }));
        }
        // Steps.
        let mut steps = self.sc.steps.clone();
        steps.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        let t0 = Instant::now();
        let mut checkpoint_failures = Vec::new();
        for s in steps {
            let at = t0 + Duration::from_secs_f64(s.t_s);
            tokio::time::sleep_until(at.into()).await;
            if let Action::Checkpoint { name } = &s.action {
                self.paused.store(true, Ordering::Relaxed);
                let f = self.converge(name).await;
                self.log.push(Event::Checkpoint {
                    name: name.clone(),
                    ok: f.is_empty(),
                    failures: f.iter().map(|x| x.what.clone()).collect(),
                });
                checkpoint_failures.extend(f);
                self.paused.store(false, Ordering::Relaxed);
                continue;
            }
            let error = self.step(&s.action).await.err().map(|e| format!("{e:#}"));
            if let Some(e) = &error {
                progress(&format!("t={:.1}s {:?}: {e}", s.t_s, s.action));
            }
            self.log.push(Event::Step {
                action: s.action.clone(),
                error,
            });
        }
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(self.sc.duration_s)).into()).await;
        // The end of the timeline: traffic stops, every fault ends.
        self.paused.store(true, Ordering::Relaxed);
        self.end_faults().await;
        let failures = self.converge("end").await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let mut all = checkpoint_failures;
        all.extend(failures);
        let records = self.log.snapshot();
        if !all.is_empty() {
            // A failed run keeps its nodes' logs beside the report (the work directory goes).
            let logs = opts.out.join("logs");
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("creating {}", logs.display()))?;
            for n in &self.fed.nodes {
                let _ = std::fs::copy(
                    n.dir.join("node.log"),
                    logs.join(format!("{}.log", n.name.replace('/', "-"))),
                );
            }
        }
        let summary = crate::report::write(
            &opts.out,
            &self.sc,
            &records,
            &all,
            &self.agents,
            &self.relay.stats(),
        )?;
        Ok(Outcome {
            failures: all,
            summary,
        })
    }

    /// Ends every fault still in progress: heals links, continues stopped nodes, lifts disk
    /// limits, restarts killed nodes.
    async fn end_faults(&mut self) {
        self.relay.heal_all();
        for i in 0..self.fed.nodes.len() {
            let n = &self.fed.nodes[i];
            let name = n.name.clone();
            match n.state {
                NodeState::Stopped => {
                    let _ = self.fed.cont(i);
                    self.log.push(Event::Note {
                        text: format!("end of the timeline: {name} continued"),
                    });
                }
                NodeState::Killed => {
                    let r = self.fed.restart(i).await;
                    self.log.push(Event::Note {
                        text: format!("end of the timeline: {name} restarted ({r:?})"),
                    });
                }
                NodeState::Running => {}
            }
            let _ = self.fed.disk_limit(i, false);
        }
    }

    /// Syncs every device until nothing accepted is missing and every room agrees, or
    /// `settle_s` passes; what still fails then.
    async fn converge(&mut self, name: &str) -> Vec<Failure> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.sc.settle_s);
        let started = Instant::now();
        loop {
            // Let in-flight sends finish.
            for a in &self.agents {
                let _ = a.ask(|done| Cmd::Sync { done }, ASK).await;
            }
            // Leaves wait for a member to commit them.
            for room in self.rooms.values() {
                for d in self.members(room) {
                    let room2 = room.clone();
                    if self.agents[d]
                        .ask(|done| Cmd::CommitPending { room: room2, done }, ASK)
                        .await
                        .is_ok()
                    {
                        break;
                    }
                }
            }
            let log = self.log.snapshot();
            let missing = checks::missing(&log, &self.device_ids());
            let views = self.views().await;
            let disagree: usize = views
                .iter()
                .map(|(r, v)| checks::agreement(r, v, &|d| d.to_string()).len())
                .sum();
            if missing.is_empty() && disagree == 0 {
                progress(&format!(
                    "{name}: converged in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                break;
            }
            if Instant::now() > deadline {
                progress(&format!(
                    "{name}: not converged after {:.0} s ({} delivery(ies) missing, {disagree} disagreement(s))",
                    self.sc.settle_s,
                    missing.len()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let log = self.log.snapshot();
        let views = self.views().await;
        let names: Vec<String> = (0..self.agents.len()).map(|d| self.name(d)).collect();
        checks::run(
            &log,
            &self.device_ids(),
            &|d| names.get(d).cloned().unwrap_or_default(),
            &views,
        )
    }

    async fn views(&self) -> BTreeMap<String, Vec<(usize, View)>> {
        let mut out = BTreeMap::new();
        for room in self.rooms.values() {
            let mut vs = Vec::new();
            for d in self.members(room) {
                let room2 = room.clone();
                if let Ok(Some(v)) = self.agents[d]
                    .ask(|done| Cmd::View { room: room2, done }, ASK)
                    .await
                {
                    vs.push((d, v));
                }
            }
            out.insert(room.to_string(), vs);
        }
        out
    }

    fn room(&self, name: &str) -> Result<RoomUri> {
        self.rooms
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow!("no room {name}"))
    }

    /// A device of `user` that is in `room` (or the owner's first device).
    fn actor(&self, room: &RoomUri, by: Option<&str>) -> Result<usize> {
        let members = self.members(room);
        match by {
            Some(u) => self
                .users
                .get(u)
                .and_then(|ds| ds.iter().find(|d| members.contains(d)).copied())
                .ok_or_else(|| anyhow!("{u} has no device in {room}")),
            None => members
                .first()
                .copied()
                .ok_or_else(|| anyhow!("{room} has no members")),
        }
    }

    async fn step(&mut self, a: &Action) -> Result<()> {
        match a {
            Action::Kill { node } => {
                let i = self.fed.index(node)?;
                self.fed.kill(i)?;
            }
            Action::Restart { node } => {
                let i = self.fed.index(node)?;
                self.fed.restart(i).await?;
            }
            Action::Stop { node } => {
                let i = self.fed.index(node)?;
                self.fed.stop(i)?;
            }
            Action::Continue { node } => {
                let i = self.fed.index(node)?;
                self.fed.cont(i)?;
            }
            Action::Partition { between } => {
                let mut f = self.relay.get(&between[0], &between[1]);
                f.partitioned = true;
                self.relay.set(&between[0], &between[1], f);
            }
            Action::Heal { between } => match between {
                Some(b) => self.relay.set(&b[0], &b[1], LinkFaults::default()),
                None => self.relay.heal_all(),
            },
            Action::Link {
                between,
                loss,
                delay_ms,
                jitter_ms,
                duplicate,
                reorder,
            } => {
                let partitioned = self.relay.get(&between[0], &between[1]).partitioned;
                self.relay.set(
                    &between[0],
                    &between[1],
                    LinkFaults {
                        partitioned,
                        loss: *loss,
                        delay_ms: *delay_ms,
                        jitter_ms: *jitter_ms,
                        duplicate: *duplicate,
                        reorder: *reorder,
                    },
                );
            }
            Action::DiskFull { node } => {
                let i = self.fed.index(node)?;
                self.fed.disk_limit(i, true)?;
            }
            Action::DiskOk { node } => {
                let i = self.fed.index(node)?;
                self.fed.disk_limit(i, false)?;
            }
            Action::ClockSkew { node, offset_ms } => {
                let i = self.fed.index(node)?;
                self.fed
                    .clock_skew(i, *offset_ms, self.sc.request_timeout_ms)
                    .await?;
            }
            Action::Add { room, users, by } => {
                let r = self.room(room)?;
                let d = self.actor(&r, by.as_deref())?;
                let uris = users
                    .iter()
                    .map(|u| self.user_uri(u))
                    .collect::<Result<Vec<_>>>()?;
                let r2 = r.clone();
                self.agents[d]
                    .ask(
                        |done| Cmd::Add {
                            room: r2,
                            users: uris,
                            done,
                        },
                        ASK,
                    )
                    .await?;
            }
            Action::Remove { room, users, by } => {
                let r = self.room(room)?;
                let d = self.actor(&r, by.as_deref())?;
                for u in users {
                    let uri = self.user_uri(u)?;
                    let r2 = r.clone();
                    self.agents[d]
                        .ask(
                            |done| Cmd::Remove {
                                room: r2,
                                user: uri,
                                done,
                            },
                            ASK,
                        )
                        .await?;
                }
            }
            Action::Leave { room, user } => {
                let r = self.room(room)?;
                let members = self.members(&r);
                let ds: Vec<usize> = self
                    .users
                    .get(user)
                    .map(|v| v.iter().copied().filter(|d| members.contains(d)).collect())
                    .unwrap_or_default();
                if ds.is_empty() {
                    bail!("{user} has no device in {room}");
                }
                for d in ds {
                    let r2 = r.clone();
                    self.agents[d]
                        .ask(|done| Cmd::Leave { room: r2, done }, ASK)
                        .await?;
                }
            }
            Action::NewDevice { user } => {
                let domain = self
                    .sc
                    .all_users()
                    .get(user)
                    .map(|u| u.0.clone())
                    .ok_or_else(|| anyhow!("no user {user}"))?;
                let others = self.users.get(user).cloned().unwrap_or_default();
                let d = self.add_device(user, &domain).await?;
                let rooms: Vec<RoomUri> = self
                    .rooms
                    .values()
                    .filter(|r| {
                        let m = self.members(r);
                        others.iter().any(|o| m.contains(o))
                    })
                    .cloned()
                    .collect();
                for r in rooms {
                    self.agents[d]
                        .ask(|done| Cmd::Join { room: r, done }, ASK)
                        .await?;
                }
            }
            Action::JoinLink { room, user, by } => {
                let r = self.room(room)?;
                let d = self.actor(&r, by.as_deref())?;
                let r2 = r.clone();
                let link = self.agents[d]
                    .ask(|done| Cmd::MakeLink { room: r2, done }, ASK)
                    .await?;
                let joiner = *self
                    .users
                    .get(user)
                    .and_then(|v| v.first())
                    .ok_or_else(|| anyhow!("no user {user}"))?;
                self.agents[joiner]
                    .ask(|done| Cmd::JoinLink { link, done }, ASK)
                    .await?;
            }
            Action::RemoveDevice { user } => {
                let ds = self.users.get(user).cloned().unwrap_or_default();
                let [.., by, gone] = ds.as_slice() else {
                    bail!("{user} has one device: nothing to remove it from");
                };
                let (by, gone) = (*by, *gone);
                let client = mimi_wire::id::ClientUri::parse(&self.agents[gone].client)
                    .map_err(|e| anyhow!("{e}"))?;
                let rooms = self.agents[by]
                    .ask(|done| Cmd::RemoveDevice { client, done }, ASK)
                    .await?;
                self.agents[gone]
                    .ask(|done| Cmd::Retire { done }, ASK)
                    .await?;
                self.log.push(Event::Deleted { device: gone });
                for (room, epoch) in rooms {
                    self.log.push(Event::Left {
                        device: gone,
                        room,
                        epoch,
                    });
                }
                if let Some(v) = self.users.get_mut(user) {
                    v.pop();
                }
            }
            Action::Checkpoint { .. } => {}
        }
        Ok(())
    }
}

/// One line: time, messages, failures, nodes, faults.
fn status_line(log: &[crate::log::Record], total: f64) -> String {
    let t = log.last().map_or(0.0, |r| r.t_ms / 1000.0).max(0.0);
    let (mut sent, mut failed, mut delivered) = (0, 0, 0);
    let mut up: BTreeMap<&str, bool> = BTreeMap::new();
    for r in log {
        match &r.event {
            Event::Sent { .. } => sent += 1,
            Event::SendFailed { .. } => failed += 1,
            Event::Delivered { .. } => delivered += 1,
            Event::Sample { node, up: u, .. } => {
                up.insert(node.as_str(), *u);
            }
            _ => {}
        }
    }
    let nodes: Vec<String> = up
        .iter()
        .map(|(n, u)| format!("{n} {}", if *u { "up" } else { "DOWN" }))
        .collect();
    format!(
        "t={t:.0}/{total:.0}s sent {sent} failed {failed} delivered {delivered} | {}",
        nodes.join(", ")
    )
}
