//! Scenario files (`scenarios/*.toml`): the federation to bring up, its users and rooms, and a
//! timeline of traffic, membership changes and faults. Every scenario is bounded in time: the
//! timeline lasts `duration_s`, convergence after it at most `settle_s`.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A scenario as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name (the report's title).
    pub name: String,
    /// What it shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice (senders, message kinds, link faults).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Length of the timeline, seconds.
    pub duration_s: f64,
    /// Longest wait for convergence after the timeline, seconds.
    #[serde(default = "default_settle")]
    pub settle_s: f64,
    /// How long a request of one node to another may take (ms); short so that a dead peer
    /// costs little.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// The providers.
    #[serde(rename = "provider")]
    pub providers: Vec<ProviderSpec>,
    /// Users named explicitly (beside each provider's generated `users`).
    #[serde(default, rename = "user")]
    pub users: Vec<UserSpec>,
    /// Rooms created before the timeline starts.
    #[serde(default, rename = "room")]
    pub rooms: Vec<RoomSpec>,
    /// Message traffic.
    #[serde(default)]
    pub traffic: Vec<Traffic>,
    /// Membership changes, faults and checkpoints.
    #[serde(default, rename = "at")]
    pub steps: Vec<Step>,
    /// How `--short` scales the scenario (for CI).
    #[serde(default)]
    pub short: Short,
}

fn default_seed() -> u64 {
    1
}
fn default_settle() -> f64 {
    60.0
}
fn default_request_timeout() -> u64 {
    2_000
}

/// One provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Its domain (`a.example`).
    pub domain: String,
    /// `sqlite` (a file per process) or `postgres` (one database, needs `--postgres`).
    #[serde(default = "default_db")]
    pub database: String,
    /// Node processes (more than one needs `postgres`); peers call the first.
    #[serde(default = "one")]
    pub processes: u32,
    /// Users generated on it, one device each, named by the domain's first letter and a
    /// number (`a1`, `a2`, ...).
    #[serde(default)]
    pub users: u32,
    /// Deliberate protocol faults of its nodes (the node's `[faults]` section, e.g.
    /// `{ follower_keeps_removed_members = true }`): to see what the checks catch.
    #[serde(default)]
    pub faults: toml::Table,
}

fn default_db() -> String {
    "sqlite".into()
}
fn one() -> u32 {
    1
}

/// A user named in the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user's name (the local part).
    pub name: String,
    /// Its provider's domain.
    pub provider: String,
    /// Devices it starts with.
    #[serde(default = "one")]
    pub devices: u32,
}

/// A room.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSpec {
    /// Its name (the room URI's local part).
    pub name: String,
    /// The user who creates it; the room is hosted by that user's provider (the hub).
    pub owner: String,
    /// `["all"]` or user names; added in commits of at most 50 users.
    #[serde(default = "all")]
    pub members: Vec<String>,
}

fn all() -> Vec<String> {
    vec!["all".into()]
}

/// Messages into one room.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// The room.
    pub room: String,
    /// From (seconds into the timeline).
    #[serde(default)]
    pub from_s: f64,
    /// Until.
    pub until_s: f64,
    /// Messages per second, over all senders.
    pub rate: f64,
    /// Who sends: user names, or every member device when absent.
    #[serde(default)]
    pub senders: Vec<String>,
    /// The kinds of message, by weight.
    #[serde(default)]
    pub mix: Mix,
}

/// Weights of the kinds of message (content-08): plain text, replies, reactions, edits and
/// deletions of one's own messages, read receipts, attachments (a small file encrypted on the
/// device, uploaded to its provider, sent as an external part; every receiving device
/// downloads it through its own provider and checks it, protocol-06 §5.10).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub text: u32,
    #[serde(default)]
    pub reply: u32,
    #[serde(default)]
    pub reaction: u32,
    #[serde(default)]
    pub edit: u32,
    #[serde(default)]
    pub delete: u32,
    #[serde(default)]
    pub receipt: u32,
    #[serde(default)]
    pub attachment: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            text: 1,
            reply: 0,
            reaction: 0,
            edit: 0,
            delete: 0,
            receipt: 0,
            attachment: 0,
        }
    }
}

/// The kinds of message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Text,
    Reply,
    Reaction,
    Edit,
    Delete,
    Receipt,
    Attachment,
}

impl Mix {
    /// The kind a number in `0..total()` picks.
    pub fn pick(&self, mut n: u32) -> Kind {
        for (w, k) in [
            (self.text, Kind::Text),
            (self.reply, Kind::Reply),
            (self.reaction, Kind::Reaction),
            (self.edit, Kind::Edit),
            (self.delete, Kind::Delete),
            (self.receipt, Kind::Receipt),
            (self.attachment, Kind::Attachment),
        ] {
            if n < w {
                return k;
            }
            n -= w;
        }
        Kind::Text
    }

    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.text
            + self.reply
            + self.reaction
            + self.edit
            + self.delete
            + self.receipt
            + self.attachment
    }
}

/// One step of the timeline.
#[derive(Clone, Debug, Deserialize)]
pub struct Step {
    /// When (seconds into the timeline).
    pub t_s: f64,
    /// What.
    #[serde(flatten)]
    pub action: Action,
}

/// What a step does. `node` names a provider's first process (`b.example`) or another one
/// (`b.example/2`); `between` two providers' domains.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(tag = "do", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// SIGKILL the node's process (no graceful anything).
    Kill { node: String },
    /// Start a killed node again from its configuration and database (same port).
    Restart { node: String },
    /// SIGSTOP the process (it keeps its sockets and answers nothing).
    Stop { node: String },
    /// SIGCONT.
    Continue { node: String },
    /// Drop every datagram between the two providers (both ways).
    Partition { between: [String; 2] },
    /// End the partition and every link fault between the two (or between all providers).
    Heal {
        #[serde(default)]
        between: Option<[String; 2]>,
    },
    /// Loss, delay, jitter, duplication and reordering of datagrams between two providers
    /// (both ways) until healed.
    Link {
        between: [String; 2],
        #[serde(default)]
        loss: f64,
        #[serde(default)]
        delay_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
        #[serde(default)]
        duplicate: f64,
        #[serde(default)]
        reorder: f64,
    },
    /// A member adds users (`by`: who commits; the room's owner by default).
    Add {
        room: String,
        users: Vec<String>,
        #[serde(default)]
        by: Option<String>,
    },
    /// A member removes users (all their devices).
    Remove {
        room: String,
        users: Vec<String>,
        #[serde(default)]
        by: Option<String>,
    },
    /// A user's devices leave the room.
    Leave { room: String, user: String },
    /// A user registers one more device, which joins the user's rooms by external commit.
    NewDevice { user: String },
    /// `by` (the room's owner by default) makes a single-use join link; `user`, who need not
    /// be listed, joins with it (protocol-06 §5.6 joiningCode, room-policy-03 join links).
    JoinLink {
        room: String,
        user: String,
        #[serde(default)]
        by: Option<String>,
    },
    /// The user deletes its newest device at its provider from another of its devices
    /// (`mimi device remove`): the hub proposes the removal where it hosts the room, the
    /// other device commits it; the deleted device is out of every room.
    RemoveDevice { user: String },
    /// The node's database cannot grow (RLIMIT_FSIZE at its current size: writes fail as on
    /// a full disk); SQLite nodes only.
    DiskFull { node: String },
    /// The database may grow again.
    DiskOk { node: String },
    /// The node's clock runs `offset_ms` ahead (negative: behind): the node restarts with the
    /// offset (`[faults] clock_offset_ms`).
    ClockSkew { node: String, offset_ms: i64 },
    /// Check convergence here (traffic pauses until the rooms agree or `settle_s` passes).
    Checkpoint { name: String },
}

/// How `--short` scales a scenario: times and rates multiply, user counts multiply (at least
/// the named ones stay).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Short {
    #[serde(default = "unit")]
    pub time: f64,
    #[serde(default = "unit")]
    pub rate: f64,
    #[serde(default = "unit")]
    pub users: f64,
}

fn unit() -> f64 {
    1.0
}

impl Default for Short {
    fn default() -> Self {
        Self {
            time: 1.0,
            rate: 1.0,
            users: 1.0,
        }
    }
}

impl Scenario {
    /// Reads and checks a scenario file; the error names the file and the problem.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        s.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }

    /// The scenario as `--short` runs it.
    pub fn shortened(mut self) -> Self {
        let k = self.short.clone();
        self.duration_s *= k.time;
        for p in &mut self.providers {
            if p.users > 0 {
                p.users = ((f64::from(p.users) * k.users).round() as u32).max(1);
            }
        }
        for t in &mut self.traffic {
            t.from_s *= k.time;
            t.until_s *= k.time;
            t.rate *= k.rate;
        }
        for s in &mut self.steps {
            s.t_s *= k.time;
        }
        self
    }

    /// Every user (name → (provider, devices)), generated ones included.
    pub fn all_users(&self) -> BTreeMap<String, (String, u32)> {
        let mut m = BTreeMap::new();
        for p in &self.providers {
            let letter = p.domain.chars().next().unwrap_or('u');
            for i in 1..=p.users {
                m.insert(format!("{letter}{i}"), (p.domain.clone(), 1));
            }
        }
        for u in &self.users {
            m.insert(u.name.clone(), (u.provider.clone(), u.devices));
        }
        m
    }

    /// A room's initial members (the owner included).
    pub fn members_of(&self, room: &RoomSpec) -> Vec<String> {
        let users = self.all_users();
        let mut v: Vec<String> = if room.members.iter().any(|m| m == "all") {
            users.keys().cloned().collect()
        } else {
            room.members.clone()
        };
        v.retain(|u| *u != room.owner);
        v.insert(0, room.owner.clone());
        v
    }

    /// Checks names and numbers; the first problem found.
    pub fn check(&self) -> Result<(), String> {
        let bad = |what: String| Err(what);
        if !(self.duration_s > 0.0 && self.duration_s <= 86_400.0) {
            return bad(format!(
                "duration_s = {}: give a length in seconds (0 < duration_s <= 86400)",
                self.duration_s
            ));
        }
        if !(self.settle_s > 0.0 && self.settle_s <= 3_600.0) {
            return bad(format!(
                "settle_s = {}: 0 < settle_s <= 3600",
                self.settle_s
            ));
        }
        if self.providers.is_empty() {
            return bad("no [[provider]]: a federation needs at least one".into());
        }
        let mut domains = BTreeSet::new();
        for p in &self.providers {
            if p.domain.is_empty()
                || !p
                    .domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                return bad(format!("provider domain {:?} is not a DNS name", p.domain));
            }
            if !domains.insert(p.domain.clone()) {
                return bad(format!("provider {} appears twice", p.domain));
            }
            if p.database != "sqlite" && p.database != "postgres" {
                return bad(format!(
                    "provider {}: database = {:?}: use \"sqlite\" or \"postgres\"",
                    p.domain, p.database
                ));
            }
            if p.processes == 0 || p.processes > 8 {
                return bad(format!(
                    "provider {}: processes = {}: 1 to 8",
                    p.domain, p.processes
                ));
            }
            if p.processes > 1 && p.database != "postgres" {
                return bad(format!(
                    "provider {}: {} processes share one database, which must be postgres",
                    p.domain, p.processes
                ));
            }
            if p.users > 5_000 {
                return bad(format!(
                    "provider {}: users = {}: at most 5000",
                    p.domain, p.users
                ));
            }
        }
        let users = self.all_users();
        for u in &self.users {
            if !domains.contains(&u.provider) {
                return bad(format!("user {}: no provider {}", u.name, u.provider));
            }
            if u.devices == 0 || u.devices > 16 {
                return bad(format!("user {}: devices = {}: 1 to 16", u.name, u.devices));
            }
            if u.name.is_empty()
                || !u
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return bad(format!(
                    "user name {:?}: letters, digits, - and _ only",
                    u.name
                ));
            }
        }
        let user = |n: &str, ctx: &str| -> Result<(), String> {
            if users.contains_key(n) {
                Ok(())
            } else {
                Err(format!("{ctx}: no user {n:?} (users: {})", names(&users)))
            }
        };
        let mut rooms = BTreeSet::new();
        for r in &self.rooms {
            if !rooms.insert(r.name.clone()) {
                return bad(format!("room {} appears twice", r.name));
            }
            user(&r.owner, &format!("room {}", r.name))?;
            for m in &r.members {
                if m != "all" {
                    user(m, &format!("room {}", r.name))?;
                }
            }
        }
        let room = |n: &str, ctx: &str| -> Result<(), String> {
            if rooms.contains(n) {
                Ok(())
            } else {
                Err(format!("{ctx}: no room {n:?}"))
            }
        };
        for t in &self.traffic {
            room(&t.room, "traffic")?;
            if !(t.rate > 0.0 && t.rate <= 5_000.0) {
                return bad(format!(
                    "traffic in {}: rate = {}: 0 < rate <= 5000",
                    t.room, t.rate
                ));
            }
            if !(t.from_s >= 0.0 && t.until_s > t.from_s && t.until_s <= self.duration_s) {
                return bad(format!(
                    "traffic in {}: from_s = {}, until_s = {}: 0 <= from_s < until_s <= duration_s ({})",
                    t.room, t.from_s, t.until_s, self.duration_s
                ));
            }
            if t.mix.total() == 0 {
                return bad(format!("traffic in {}: every weight of mix is 0", t.room));
            }
            for s in &t.senders {
                user(s, &format!("traffic in {}", t.room))?;
            }
        }
        let node = |n: &str| -> Result<(), String> {
            let (d, i) = split_node(n);
            match self.providers.iter().find(|p| p.domain == d) {
                Some(p) if i >= 1 && i <= p.processes => Ok(()),
                Some(p) => Err(format!("node {n:?}: {d} has {} process(es)", p.processes)),
                None => Err(format!("node {n:?}: no provider {d}")),
            }
        };
        let pair = |b: &[String; 2]| -> Result<(), String> {
            for d in b {
                if !domains.contains(d) {
                    return Err(format!("between {b:?}: no provider {d}"));
                }
            }
            if b[0] == b[1] {
                return Err(format!("between {b:?}: two different providers"));
            }
            Ok(())
        };
        let p01 = |x: f64, what: &str| -> Result<(), String> {
            if (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(format!("{what} = {x}: a probability from 0 to 1"))
            }
        };
        for s in &self.steps {
            if !(s.t_s >= 0.0 && s.t_s <= self.duration_s) {
                return bad(format!(
                    "[[at]] t_s = {}: within the timeline (0 to duration_s = {})",
                    s.t_s, self.duration_s
                ));
            }
            let at = format!("[[at]] t_s = {}", s.t_s);
            let r: Result<(), String> = match &s.action {
                Action::Kill { node: n }
                | Action::Restart { node: n }
                | Action::Stop { node: n }
                | Action::Continue { node: n }
                | Action::DiskFull { node: n }
                | Action::DiskOk { node: n } => node(n),
                Action::ClockSkew { node: n, offset_ms } => node(n).and_then(|()| {
                    if offset_ms.unsigned_abs() <= 86_400_000 {
                        Ok(())
                    } else {
                        Err(format!("offset_ms = {offset_ms}: at most a day either way"))
                    }
                }),
                Action::Partition { between } => pair(between),
                Action::Heal { between } => between.as_ref().map_or(Ok(()), pair),
                Action::Link {
                    between,
                    loss,
                    duplicate,
                    reorder,
                    delay_ms,
                    jitter_ms,
                } => pair(between)
                    .and_then(|()| p01(*loss, "loss"))
                    .and_then(|()| p01(*duplicate, "duplicate"))
                    .and_then(|()| p01(*reorder, "reorder"))
                    .and_then(|()| {
                        if *delay_ms + *jitter_ms <= 10_000 {
                            Ok(())
                        } else {
                            Err("delay_ms + jitter_ms: at most 10000".into())
                        }
                    }),
                Action::Add {
                    room: r,
                    users: us,
                    by,
                }
                | Action::Remove {
                    room: r,
                    users: us,
                    by,
                } => {
                    room(r, &at)?;
                    for u in us.iter().chain(by.iter()) {
                        user(u, &at)?;
                    }
                    Ok(())
                }
                Action::Leave { room: r, user: u } => room(r, &at).and_then(|()| user(u, &at)),
                Action::NewDevice { user: u } | Action::RemoveDevice { user: u } => user(u, &at),
                Action::JoinLink {
                    room: r,
                    user: u,
                    by,
                } => {
                    room(r, &at)?;
                    for u in std::iter::once(u).chain(by.iter()) {
                        user(u, &at)?;
                    }
                    Ok(())
                }
                Action::Checkpoint { name } => {
                    if name.is_empty() {
                        Err("checkpoint: give it a name".into())
                    } else {
                        Ok(())
                    }
                }
            };
            r.map_err(|e| format!("{at}: {e}"))?;
            if let Action::DiskFull { node: n } = &s.action {
                let (d, _) = split_node(n);
                if self
                    .providers
                    .iter()
                    .any(|p| p.domain == d && p.database != "sqlite")
                {
                    return bad(format!(
                        "{at}: disk-full {n}: only a node on SQLite (a PostgreSQL server is shared)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether any provider runs on PostgreSQL.
    pub fn needs_postgres(&self) -> bool {
        self.providers.iter().any(|p| p.database == "postgres")
    }
}

fn names(users: &BTreeMap<String, (String, u32)>) -> String {
    let v: Vec<&str> = users.keys().map(String::as_str).take(8).collect();
    let more = if users.len() > 8 { ", ..." } else { "" };
    format!("{}{more}", v.join(", "))
}

/// `b.example/2` → (`b.example`, 2); `b.example` → (`b.example`, 1).
pub fn split_node(n: &str) -> (&str, u32) {
    match n.rsplit_once('/') {
        Some((d, i)) => (d, i.parse().unwrap_or(0)),
        None => (n, 1),
    }
}
