//! `mimi-bench`: the node's performance, every figure beside a baseline measured in the same
//! run (issue 8, `spec-notes/performance.md`). Scenarios:
//!
//! 1. message path through three providers over QUIC: throughput and submit→delivered latency
//!    percentiles; baselines: the clients' own MLS encrypt+decrypt of the same messages, and a
//!    bare HTTP/3 request/response on the same connection;
//! 2. commit acceptance vs group size: the hub's whole `update` (load, validate, persist,
//!    enqueue) vs openmls `PublicGroup` process+stage+merge of the same commit;
//! 3. fanout width: one message to rooms spanning 1, 10, 50 follower providers: the hub's cost
//!    per extra follower;
//! 4. catch-up: a follower offline for N events: events/s replayed, and the process's resident
//!    memory growth during the replay for N and N/10 events (bounded by batch, not backlog);
//! 5. KeyPackage claims under concurrency: claims/s with 1 and 8 concurrent claimers, and
//!    never one KeyPackage twice;
//! 6. storage: scenario 1 on SQLite and on PostgreSQL;
//! 7. hub memory: a hub process's resident memory with up to 10,000 idle rooms of 10 members
//!    (`idle_rooms`), against its memory with none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mimi_content::MimiContent;
use mimi_harness::{Person, federation_of, pg_database, tag};
use mimi_node::service::{Node, NodeOptions};
use mimi_room::client::{Device, Event};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::HubRoom;
use mimi_room::mls::{ops_of, updates};
use mimi_room::presets::private_group;
use mimi_store::{NewKeyPackage, Store};
use mimi_wire::codec::Body;
use mimi_wire::components::RoomMetaData;
use mimi_wire::fanout::FanoutMessage;
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use mimi_wire::update::HandshakeBundle;
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{KeyPackageIn, ProcessedMessageContent, ProtocolVersion};
use openmls_rust_crypto::RustCrypto;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One table: a title, column names, rows, and a note on the baseline and the target.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Title.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
    /// What the ratio means and the target.
    pub note: String,
    /// The figures of this table that have a target (`results.json`).
    pub figures: Vec<Figure>,
}

/// One figure against its target (issue 16): a row of `results.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Figure {
    /// The scenario (a row of the targets table).
    pub scenario: String,
    /// The size it was measured at (clients, followers, events), if the scenario has sizes.
    pub size: Option<u64>,
    /// What was measured.
    pub figure: String,
    /// The unit of `value` and `baseline`.
    pub unit: String,
    /// The measured value (`None`: not measured in this run).
    pub value: Option<f64>,
    /// The same-run baseline it is compared with, if any.
    pub baseline: Option<f64>,
    /// `value / baseline`, if there is a baseline.
    pub ratio: Option<f64>,
    /// The target, as text.
    pub target: String,
    /// Whether the target is met (false when not measured).
    pub met: bool,
}

impl Figure {
    /// A figure whose target is `ratio <= max`.
    pub fn ratio_at_most(
        scenario: &str,
        size: Option<u64>,
        figure: &str,
        unit: &str,
        value: f64,
        baseline: f64,
        max: f64,
    ) -> Self {
        let ratio = value / baseline.max(1e-12);
        Self {
            scenario: scenario.into(),
            size,
            figure: figure.into(),
            unit: unit.into(),
            value: Some(value),
            baseline: Some(baseline),
            ratio: Some(ratio),
            target: format!("<= {max}x"),
            met: ratio <= max,
        }
    }

    /// A figure whose target is a bound on the value itself (`at_most`: value <= bound, else
    /// value >= bound).
    pub fn bound(
        scenario: &str,
        size: Option<u64>,
        figure: &str,
        unit: &str,
        value: f64,
        bound: f64,
        at_most: bool,
    ) -> Self {
        Self {
            scenario: scenario.into(),
            size,
            figure: figure.into(),
            unit: unit.into(),
            value: Some(value),
            baseline: None,
            ratio: None,
            target: format!("{} {bound} {unit}", if at_most { "<=" } else { ">=" }),
            met: if at_most {
                value <= bound
            } else {
                value >= bound
            },
        }
    }

    /// A target this run did not measure, and why.
    pub fn not_measured(scenario: &str, figure: &str, target: &str) -> Self {
        Self {
            scenario: scenario.into(),
            size: None,
            figure: figure.into(),
            unit: String::new(),
            value: None,
            baseline: None,
            ratio: None,
            target: target.into(),
            met: false,
        }
    }

    /// One line of the end-of-run summary.
    pub fn summary_line(&self) -> String {
        let mark = match (self.value, self.met) {
            (None, _) => "not measured",
            (_, true) => "met",
            (_, false) => "MISSED",
        };
        let size = self.size.map(|n| format!(" @{n}")).unwrap_or_default();
        let value = match (self.value, self.ratio) {
            (Some(v), Some(r)) => format!("{v:.3} {} ({r:.2}x)", self.unit),
            (Some(v), None) => format!("{v:.3} {}", self.unit),
            _ => "-".into(),
        };
        format!(
            "{mark:>12}  {}{size}: {} = {value}; target {}",
            self.scenario, self.figure, self.target
        )
    }
}

impl Table {
    /// Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### {}\n\n| {} |\n|{}\n",
            self.title,
            self.columns.join(" | "),
            "---|".repeat(self.columns.len())
        );
        for r in &self.rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        s.push_str(&format!("\n{}\n", self.note));
        s
    }
}

/// A line plot as SVG (drawn with plotters): `series` of (label, points (x, y)), with a
/// logarithmic x axis when asked. Never fails: a plot that cannot be drawn says so in SVG text.
pub fn svg_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let mut out = String::new();
    let drawn = draw_plot(&mut out, title, x_label, y_label, series, log_x);
    match drawn {
        Ok(()) => out,
        Err(e) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"40\"><text x=\"10\" y=\"25\">plot failed: {}</text></svg>\n",
            e.replace('&', "&amp;").replace('<', "&lt;")
        ),
    }
}

fn draw_plot(
    out: &mut String,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let pts = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let x0 = pts().map(|p| p.0).fold(f64::MAX, f64::min);
    let x1 = pts().map(|p| p.0).fold(f64::MIN, f64::max);
    let (x0, x1) = if x0 > x1 { (1.0, 2.0) } else { (x0, x1) };
    let x0 = if log_x { x0.max(1e-9) } else { x0 };
    let x1 = if x1 > x0 { x1 } else { x0 * 2.0 + 1.0 };
    let y1 = pts().map(|p| p.1).fold(0.0f64, f64::max) * 1.1;
    let y1 = if y1 > 0.0 { y1 } else { 1.0 };
    let root = SVGBackend::with_string(out, (640, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60);
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut c = $chart;
            c.configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (label, p)) in series.iter().enumerate() {
                let col = colors[i % colors.len()];
                c.draw_series(LineSeries::new(p.iter().copied(), col.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 15, y)], col.stroke_width(2))
                    });
                c.draw_series(p.iter().map(|&(x, y)| Circle::new((x, y), 3, col.filled())))
                    .map_err(|e| err(&e))?;
            }
            if !series.is_empty() {
                c.configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| err(&e))?;
            }
        }};
    }
    if log_x {
        draw!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), 0f64..y1)
                .map_err(|e| err(&e))?
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(x0..x1, 0f64..y1)
                .map_err(|e| err(&e))?
        );
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `p`th percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    percentile(&v, 50.0)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn progress(what: &str) {
    eprintln!("[mimi-bench] {what}");
}

async fn service_node(domain: &str, dir: &Path) -> Node {
    std::fs::create_dir_all(dir).expect("dir");
    let store = Store::open(dir.join(format!("{domain}.sqlite")).to_str().expect("path"))
        .await
        .expect("store");
    Node::open(
        ProviderId::parse(domain).expect("domain"),
        store,
        NodeOptions::default(),
        now_ms(),
    )
    .await
    .expect("node")
}

/// A room on `hub` with a creator and `members` on the given follower domains (round robin);
/// returns the creator's device and room.
async fn service_room(
    hub: &Node,
    room: &RoomUri,
    members: usize,
    follower_domains: &[String],
) -> (Device, mimi_room::client::Room) {
    let creator =
        Device::new(ClientUri::parse(&format!("mimi://{}/d/c/1", hub.domain)).expect("client"))
            .expect("device");
    let (mut r, gi, tree) = creator
        .create_room(
            room,
            &private_group(&CodePoints::DRAFT),
            hub.hub_sender(),
            None,
        )
        .expect("room");
    hub.create_room(room, &creator.client, &gi, &tree)
        .await
        .expect("create");
    if members > 0 {
        let mut users = Vec::new();
        let mut kps = Vec::new();
        for i in 0..members {
            let d = &follower_domains[i % follower_domains.len()];
            let dev =
                Device::new(ClientUri::parse(&format!("mimi://{d}/d/u{i}/1")).expect("client"))
                    .expect("device");
            kps.push(dev.key_package().expect("kp"));
            users.push((
                UserUri::parse(&format!("mimi://{d}/u/u{i}")).expect("user"),
                2,
            ));
        }
        // Large groups are added in chunks (one commit each).
        for (u, k) in users.chunks(200).zip(kps.chunks(200)) {
            let out = r.add_users(&creator, u, k).expect("add");
            hub.hub_update(room, &out.bundle.encode(), now_ms())
                .await
                .expect("update");
            r.merge(&creator).expect("merge");
        }
    }
    (creator, r)
}

fn public_group_cost(snapshot: &[u8], bundle: &HandshakeBundle) -> Duration {
    let hub = HubRoom::restore(snapshot).expect("restore");
    // openmls' own storage for the baseline's merge (what a PublicGroup user gets).
    let memory = openmls_rust_crypto::MemoryStorage::default();
    let HandshakeBundle::Commit { commit, .. } = bundle else {
        return Duration::ZERO;
    };
    let crypto = RustCrypto::default();
    // The dictionary changes as the resolver computes them (not timed: PublicGroup alone
    // cannot resolve AppDataUpdates).
    let pm = commit
        .parse()
        .expect("commit")
        .try_into_protocol_message()
        .expect("pm");
    let changes = match hub
        .group
        .process_message(&crypto, pm)
        .expect("process")
        .into_content()
    {
        ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
            let ops = ops_of(u.app_data_update_proposals());
            hub.state()
                .expect("state")
                .resolve(&CodePoints::DRAFT, &ops)
                .expect("resolve")
                .changes
        }
        _ => Vec::new(),
    };
    let mut hub = HubRoom::restore(snapshot).expect("restore");
    let pm = commit
        .parse()
        .expect("commit")
        .try_into_protocol_message()
        .expect("pm");
    let t = Instant::now();
    let sc = match hub
        .group
        .process_message(&crypto, pm)
        .expect("process")
        .into_content()
    {
        ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
            let ch = updates(hub.group.app_data_dictionary_updater(), &changes);
            hub.group
                .stage_app_data_commit(&crypto, *u, ch)
                .expect("stage")
        }
        ProcessedMessageContent::StagedCommitMessage(sc) => *sc,
        _ => return Duration::ZERO,
    };
    hub.group.merge_commit(&memory, sc).expect("merge");
    t.elapsed()
}

/// Scenario 2: the hub's whole update (store transaction, load, validate, persist, enqueue)
/// vs openmls PublicGroup process+stage+merge of the same commit, the bytes each commit
/// writes, and for the largest room the load after a restart and a member's Add.
pub async fn commit_acceptance(
    sizes: &[usize],
    reps: usize,
    dir: &Path,
) -> (Table, Vec<(f64, f64)>, Vec<(f64, f64)>) {
    let mut t = Table {
        title: "Scenario 2: commit acceptance vs group size (SQLite)".into(),
        columns: vec![
            "clients".into(),
            "hub update (median)".into(),
            "PublicGroup process+merge (median)".into(),
            "one storage commit (median)".into(),
            "ratio to PublicGroup + one storage commit".into(),
            "bytes written per commit".into(),
            "load after restart".into(),
            "Add: hub / PublicGroup".into(),
        ],
        note: format!(
            "Median of {reps} commits (a member's metadata change). Hub update = Node::hub_update: the room's store transaction, the room from the node's cache, mimi-room's checks (policy, resolver, GroupInfo cross-check), merge, the state entries the commit changed, the event and outbox rows, commit. Baseline: openmls PublicGroup process + stage + merge of the same commit (with openmls' MemoryStorage), same run; one storage commit = a room transaction with one event, the room's head and one 512-byte entry, same store, same run. Bytes written = row values written by the commit's transaction (event, head, entries, outbox bodies). Load after restart = a new Node on the same database reading and decoding the room. Add = one new member's Add commit, hub update vs PublicGroup. Targets (issue 16): ratio <= 1.3x at every size; bytes per commit within 2x from 16 to the largest size; a 10,000-member room loads in <= 2 s and its Add is accepted in <= 1.3x PublicGroup."
        ),
        ..Table::default()
    };
    let (mut hub_pts, mut pg_pts) = (Vec::new(), Vec::new());
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut bytes_at_16 = None;
    for &n in sizes {
        progress(&format!("commit acceptance: {n} clients"));
        let node = service_node("a.example", &dir.join(format!("commit-{n}-{}", tag()))).await;
        let room = RoomUri::parse(&format!("mimi://a.example/r/c{n}")).expect("room");
        let built = Instant::now();
        let (creator, mut r) =
            service_room(&node, &room, n.saturating_sub(1), &["b.example".into()]).await;
        progress(&format!(
            "commit acceptance: {n} clients: room built in {:.1} s",
            built.elapsed().as_secs_f64()
        ));
        let (mut hub_t, mut pg_t, mut st_t, mut bytes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // One storage commit: a room transaction with one event, the room's head and one
        // entry (what "plus one storage commit" in the target allows).
        for _ in 0..reps {
            let row = node
                .store
                .room(room.as_str())
                .await
                .expect("room")
                .expect("row");
            let head = node
                .store
                .room_state(room.as_str())
                .await
                .expect("state")
                .expect("row")
                .head;
            let t0 = Instant::now();
            let mut tx = node.store.begin_room(room.as_str()).await.expect("tx");
            tx.append_event(now_ms(), b"bench").await.expect("append");
            tx.persist_state(
                head,
                vec![(b"bench/one-entry".to_vec(), Some(vec![0; 512]))],
                row.epoch,
            );
            tx.commit().await.expect("commit");
            st_t.push(t0.elapsed());
        }
        // The node's cached room is now stale (the version moved): the first update loads it.
        for k in 0..=reps {
            let out = r
                .set_metadata(
                    &creator,
                    RoomMetaData::named(room.clone(), &format!("n{k}")),
                )
                .expect("commit");
            let snapshot = current_snapshot(&node, &room).await;
            let pg = public_group_cost(&snapshot, &out.bundle);
            let b0 = node.store.room_bytes_written();
            let enc = out.bundle.encode();
            let t0 = Instant::now();
            node.hub_update(&room, &enc, now_ms())
                .await
                .expect("update");
            let el = t0.elapsed();
            r.merge(&creator).expect("merge");
            if k > 0 {
                hub_t.push(el);
                pg_t.push(pg);
                bytes.push(node.store.room_bytes_written() - b0);
            }
        }
        let (h, p, st) = (median(hub_t), median(pg_t), median(st_t));
        bytes.sort_unstable();
        let b = bytes.get(bytes.len() / 2).copied().unwrap_or(0);
        if n == 16 {
            bytes_at_16 = Some(b);
        }
        let ratio = ms(h) / (ms(p) + ms(st)).max(1e-9);
        t.figures.push(Figure::ratio_at_most(
            "commit acceptance",
            Some(n as u64),
            "hub update / (PublicGroup process+merge + one storage commit)",
            "ms",
            ms(h),
            ms(p) + ms(st),
            1.3,
        ));
        if let Some(b16) = bytes_at_16 {
            t.figures.push(Figure::ratio_at_most(
                "storage per commit",
                Some(n as u64),
                "bytes written per commit, against 16 clients",
                "bytes",
                b as f64,
                b16 as f64,
                2.0,
            ));
        }
        // The largest room: loaded by a restarted node, and a member's Add.
        let (mut load_cell, mut add_cell) = ("-".to_owned(), "-".to_owned());
        if n == largest {
            let fresh = Node::open(
                node.domain.clone(),
                node.store.clone(),
                NodeOptions::default(),
                now_ms(),
            )
            .await
            .expect("node");
            let t0 = Instant::now();
            fresh.warm_room(&room).await.expect("load");
            let load = t0.elapsed();
            load_cell = format!("{:.3} s", load.as_secs_f64());
            let newcomer = Device::new(
                ClientUri::parse(&format!("mimi://b.example/d/new{n}/1")).expect("client"),
            )
            .expect("device");
            let out = r
                .add_users(
                    &creator,
                    &[(
                        UserUri::parse(&format!("mimi://b.example/u/new{n}")).expect("user"),
                        2,
                    )],
                    &[newcomer.key_package().expect("kp")],
                )
                .expect("add");
            let snapshot = current_snapshot(&fresh, &room).await;
            let pg = public_group_cost(&snapshot, &out.bundle);
            let enc = out.bundle.encode();
            let t0 = Instant::now();
            fresh
                .hub_update(&room, &enc, now_ms())
                .await
                .expect("add accepted");
            let add = t0.elapsed();
            r.merge(&creator).expect("merge");
            add_cell = format!(
                "{:.2}x ({:.2} / {:.2} ms)",
                ms(add) / ms(pg).max(1e-9),
                ms(add),
                ms(pg)
            );
            t.figures.push(Figure::bound(
                "big room",
                Some(n as u64),
                "load from storage after a restart",
                "s",
                load.as_secs_f64(),
                2.0,
                true,
            ));
            t.figures.push(Figure::ratio_at_most(
                "big room",
                Some(n as u64),
                "a member's Add commit: hub update / PublicGroup process+merge",
                "ms",
                ms(add),
                ms(pg),
                1.3,
            ));
        }
        t.rows.push(vec![
            n.to_string(),
            format!("{:.2} ms", ms(h)),
            format!("{:.2} ms", ms(p)),
            format!("{:.2} ms", ms(st)),
            format!("{ratio:.2}x"),
            b.to_string(),
            load_cell,
            add_cell,
        ]);
        hub_pts.push((n as f64, ms(h)));
        pg_pts.push((n as f64, ms(p)));
    }
    (t, hub_pts, pg_pts)
}

/// The room's whole state as one snapshot, as stored now.
async fn current_snapshot(node: &Node, room: &RoomUri) -> Vec<u8> {
    let stored = node
        .store
        .room_state(room.as_str())
        .await
        .expect("room")
        .expect("row");
    HubRoom::restore_from(&stored.head, stored.entries)
        .expect("restore")
        .snapshot()
}

/// Scenario 3: one 1 KB message to a room with members on `k` follower providers: the hub's
/// submit (persist + one outbox row per follower) against k; the slope is the cost per
/// follower.
pub async fn fanout_width(widths: &[usize], reps: usize, dir: &Path) -> Table {
    let mut t = Table {
        title: "Scenario 3: fanout width (1 KB message)".into(),
        columns: vec![
            "followers".into(),
            "hub submitMessage (median)".into(),
            "per extra follower".into(),
        ],
        note: format!(
            "Median of {reps} submits. Per extra follower = (time at k - time at 1) / (k - 1), the incremental cost of one more follower's outbox row in the room's transaction. Baseline: the same submit with 1 follower (first row). Target (issue 16): <= 10 µs per extra follower from 1 to 100 followers."
        ),
        ..Table::default()
    };
    let mut base = None;
    for &k in widths {
        progress(&format!("fanout: {k} followers"));
        let node = service_node("a.example", &dir.join(format!("fanout-{k}-{}", tag()))).await;
        let room = RoomUri::parse(&format!("mimi://a.example/r/f{k}")).expect("room");
        let domains: Vec<String> = (0..k).map(|i| format!("f{i}.example")).collect();
        let (creator, mut r) = service_room(&node, &room, k, &domains).await;
        let body = "x".repeat(1000);
        let mut times = Vec::new();
        for _ in 0..reps {
            let req = r
                .send(
                    &creator,
                    &MimiContent::text(mimi_harness::rand16(), &body)
                        .encode()
                        .expect("content"),
                )
                .expect("send");
            let bytes = req.encode();
            let t0 = Instant::now();
            node.hub_submit(&room, &node.domain, &bytes, now_ms())
                .await
                .expect("submit");
            times.push(t0.elapsed());
        }
        let m = median(times);
        let per = match base {
            None => {
                base = Some(m);
                "baseline".to_owned()
            }
            Some(b) if k > 1 => {
                let per = (us(m) - us(b)) / (k as f64 - 1.0);
                t.figures.push(Figure::bound(
                    "fanout",
                    Some(k as u64),
                    "cost per extra follower (from 1 follower)",
                    "µs",
                    per,
                    10.0,
                    true,
                ));
                format!("{per:.1} µs")
            }
            Some(_) => "-".into(),
        };
        t.rows
            .push(vec![k.to_string(), format!("{:.3} ms", ms(m)), per]);
    }
    t
}

/// Scenario 5: KeyPackage claims/s with 1 and `par` concurrent claimers on one store.
pub async fn key_package_claims(total: usize, par: usize, store: Store) -> Table {
    let mut t = Table {
        title: format!("Scenario 5: KeyPackage claims ({:?})", store.backend()),
        columns: vec!["claimers".into(), "claims/s".into(), "ratio to 1 claimer".into(), "handed out twice".into()],
        note: "Claims of one KeyPackage each for users with one device and enough KeyPackages; every claim is checked against every other for a repeat. Baseline: the same claims by one claimer, same run.".into(),
        ..Table::default()
    };
    let mut base = None;
    for &p in &[1usize, par] {
        progress(&format!("KeyPackage claims: {p} claimers"));
        let client = format!("mimi://a.example/d/kp{}/1", tag());
        let dev = Device::new(ClientUri::parse(&client).expect("client")).expect("device");
        let crypto = RustCrypto::default();
        let mut kps = Vec::new();
        for _ in 0..total {
            let kp = dev.key_package().expect("kp");
            let r = KeyPackageIn::tls_deserialize_exact(kp.as_slice())
                .expect("kp")
                .validate(&crypto, ProtocolVersion::Mls10)
                .expect("valid")
                .hash_ref(&crypto)
                .expect("ref");
            kps.push(NewKeyPackage {
                kp_ref: r.as_slice().to_vec(),
                key_package: kp,
                not_after_s: u64::MAX / 4,
                last_resort: false,
                cipher_suite: 1,
            });
        }
        store.add_key_packages(&client, &kps).await.expect("add");
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..p {
            let (s, c) = (store.clone(), client.clone());
            let n = total / p + usize::from(w < total % p);
            tasks.spawn(async move {
                let mut got = Vec::new();
                for _ in 0..n {
                    if let Some(k) = s.claim_key_package(&c, now_ms()).await.expect("claim") {
                        got.push(k.kp_ref);
                    }
                }
                got
            });
        }
        let mut all = Vec::new();
        while let Some(g) = tasks.join_next().await {
            all.extend(g.expect("task"));
        }
        let el = t0.elapsed();
        let n = all.len();
        all.sort();
        all.dedup();
        let twice = n - all.len();
        let rate = n as f64 / el.as_secs_f64();
        let ratio = match base {
            None => {
                base = Some(rate);
                "1.00x (baseline)".to_owned()
            }
            Some(b) => format!("{:.2}x", rate / b),
        };
        t.rows.push(vec![
            p.to_string(),
            format!("{rate:.0}"),
            ratio,
            twice.to_string(),
        ]);
    }
    t
}

/// Scenario 1 (and 6): rooms of 3 providers x `per_provider` members over QUIC; one sender
/// per provider sends `messages` each; latency from submit to the moment a member on another
/// provider has it.
pub async fn message_path(
    per_provider: usize,
    messages: usize,
    postgres: Option<&str>,
    label: &str,
) -> (Table, Vec<Duration>) {
    progress(&format!(
        "message path ({label}): 3 providers x {per_provider} members, {messages} messages per sender"
    ));
    let t = tag();
    let mut plan = Vec::new();
    for d in ["a.example", "b.example", "c.example"] {
        let db = match postgres {
            Some(url) => pg_database(url, &format!("bench_{}_{t}", &d[..1])).await,
            None => "sqlite".into(),
        };
        plan.push((d, d, db));
    }
    let fed = federation_of(&plan).await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/bench{t}")).expect("room");
    let mut people = Vec::new();
    for d in ["a.example", "b.example", "c.example"] {
        for m in 0..per_provider {
            people.push(Person::register(&fed, d, &format!("p{m}{}", &d[..1]), "1").await);
        }
    }
    let (first, rest) = people.split_first_mut().expect("people");
    first.create_room(&room).await;
    for p in rest.iter() {
        first.add(&room, p.dev.user.as_str()).await;
    }
    let e = first.epoch(&room);
    for p in rest.iter_mut() {
        p.sync_until("join", |q| q.epoch(&room) == e).await;
    }
    // Baseline 1: the clients' own MLS cost of one message (encrypt by the sender, decrypt by
    // each receiver), measured on a two-device group outside the node.
    let receivers = people.len() - 1;
    let mls_cost = mls_message_cost(messages.clamp(10, 200), receivers);
    // Baseline 2: a bare HTTP/3 request/response on the same connection (GET hub).
    let rtt = {
        let mut v = Vec::new();
        for _ in 0..50 {
            let t0 = Instant::now();
            let _ = mimi_harness::call(&people[1].api, http::Method::GET, "hub", Vec::new()).await;
            v.push(t0.elapsed());
        }
        median(v)
    };
    // The run: one sender per provider, all at once; the observer (a member on c.example who
    // does not send) long-polls and notes when each message arrives.
    let senders = [0usize, per_provider, 2 * per_provider];
    let observer = people.len() - 1;
    let mut obs = people.remove(observer);
    let mut sender_people: Vec<Person> = Vec::new();
    for &s in senders.iter().rev() {
        sender_people.push(people.remove(s));
    }
    // Phase 1, flat out: throughput. Phase 2, paced (each sender every 20 ms, well below the
    // throughput): latency at moderate load.
    let (tput_arrived, elapsed, _, sender_people) =
        run_phase(&room, sender_people, &mut obs, messages, None, "flat out").await;
    let (_, _, lat, _) = {
        SUBMIT_RT.with(|v| v.borrow_mut().clear());
        run_phase(
            &room,
            sender_people,
            &mut obs,
            (messages / 2).max(5),
            Some(Duration::from_millis(20)),
            "paced",
        )
        .await
    };
    let mut submit_rt = SUBMIT_RT.with(|v| v.borrow().clone());
    submit_rt.sort();
    let total = messages * senders.len();
    let arrived = tput_arrived;
    let tput = arrived as f64 / elapsed.as_secs_f64();
    let p50 = percentile(&lat, 50.0);
    let node_overhead = p50.saturating_sub(mls_cost);
    let pg = postgres.is_some();
    let scenario = if pg {
        "message path, PostgreSQL"
    } else {
        "message path, SQLite"
    };
    let size = Some((3 * per_provider) as u64);
    let mut figures = vec![
        Figure::bound(
            scenario,
            size,
            "throughput flat out",
            "msg/s",
            tput,
            if pg { 1500.0 } else { 3000.0 },
            false,
        ),
        Figure::bound(
            scenario,
            size,
            "latency p99 submit→delivered at 150 msg/s",
            "ms",
            ms(percentile(&lat, 99.0)),
            if pg { 8.0 } else { 5.0 },
            true,
        ),
    ];
    if !pg {
        figures.push(Figure::bound(
            scenario,
            size,
            "latency p50 submit→delivered at 150 msg/s",
            "ms",
            ms(p50),
            2.5,
            true,
        ));
        figures.push(Figure::ratio_at_most(
            scenario,
            size,
            "node overhead per message (p50 - MLS) / clients' MLS cost",
            "ms",
            ms(node_overhead),
            ms(mls_cost),
            3.0,
        ));
    }
    let table = Table {
        figures,
        title: format!("Scenario 1: message path, 3 providers x {per_provider} members ({label})"),
        columns: vec![
            "figure".into(),
            "value".into(),
            "baseline".into(),
            "ratio".into(),
        ],
        rows: vec![
            vec![
                "throughput (delivered to the observer)".into(),
                format!("{tput:.0} msg/s"),
                "-".into(),
                "-".into(),
            ],
            vec![
                "latency p50 submit→delivered".into(),
                format!("{:.2} ms", ms(p50)),
                format!("bare HTTP/3 round trip {:.3} ms", ms(rtt)),
                format!("{:.1}x", ms(p50) / ms(rtt).max(1e-9)),
            ],
            vec![
                "of which: submit round trip p50 (device → its node → hub → answer)".into(),
                format!("{:.2} ms", ms(percentile(&submit_rt, 50.0))),
                format!("bare HTTP/3 round trip {:.3} ms", ms(rtt)),
                format!(
                    "{:.1}x",
                    ms(percentile(&submit_rt, 50.0)) / ms(rtt).max(1e-9)
                ),
            ],
            vec![
                "latency p95".into(),
                format!("{:.2} ms", ms(percentile(&lat, 95.0))),
                "-".into(),
                "-".into(),
            ],
            vec![
                "latency p99".into(),
                format!("{:.2} ms", ms(percentile(&lat, 99.0))),
                "-".into(),
                "-".into(),
            ],
            vec![
                "node overhead per message (p50 - MLS)".into(),
                format!("{:.2} ms", ms(node_overhead)),
                format!(
                    "clients' MLS encrypt + {receivers} decrypts {:.3} ms",
                    ms(mls_cost)
                ),
                format!("{:.1}x", ms(node_overhead) / ms(mls_cost).max(1e-9)),
            ],
        ],
        note: format!(
            "{} messages from 3 senders at once ({} delivered to the observer in {:.1} s); latency = submit start → the observer's long-poll returned it (it includes the observer's own decryption). Targets (DESIGN.md): p99 <= 5 ms on loopback at moderate load; node overhead <= 3x the MLS cost.",
            total,
            arrived,
            elapsed.as_secs_f64()
        ),
    };
    fed.shutdown().await;
    (table, lat)
}

thread_local! {
    /// Submit round trips of the last phase (device → home node → hub → answer).
    static SUBMIT_RT: std::cell::RefCell<Vec<Duration>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One run of the message path: the senders send `messages` each (every `pace`, or flat out),
/// the observer notes arrivals. Returns (delivered, elapsed, sorted latencies, the senders).
async fn run_phase(
    room: &RoomUri,
    senders: Vec<Person>,
    obs: &mut Person,
    messages: usize,
    pace: Option<Duration>,
    phase: &str,
) -> (usize, Duration, Vec<Duration>, Vec<Person>) {
    progress(&format!(
        "message path: {phase}, {} messages",
        messages * senders.len()
    ));
    let started = Instant::now();
    let n_senders = senders.len();
    let tasks = senders
        .into_iter()
        .map(|mut p| {
            let room = room.clone();
            let phase = phase.to_owned();
            tokio::spawn(async move {
                let mut log = Vec::new();
                for i in 0..messages {
                    let text = format!("{} {phase} #{i}", p.dev.client);
                    let t0 = Instant::now();
                    p.send(&room, &text).await;
                    log.push((text, t0, t0.elapsed()));
                    if let Some(d) = pace {
                        tokio::time::sleep(d.saturating_sub(t0.elapsed())).await;
                    }
                }
                (log, p)
            })
        })
        .collect::<Vec<_>>();
    let total = messages * n_senders;
    let mut arrived: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
    for _ in 0..100_000 {
        if arrived.len() >= total {
            break;
        }
        let before = obs.seen.len();
        obs.sync_until("more", |q| q.seen.len() > before).await;
        // Delivered = decrypted by the observer's device, before it acknowledges its queue
        // (the acknowledgement is a round trip of its own, after the message is shown).
        for (ev, &now) in obs.seen[before..].iter().zip(&obs.seen_at[before..]) {
            if let Event::Message { content, .. } = ev
                && let Ok(c) = MimiContent::decode(content)
                && let Some(tx) = c.nested_part.display_text()
            {
                arrived.entry(tx).or_insert(now);
            }
        }
    }
    let elapsed = started.elapsed();
    let mut lat = Vec::new();
    let mut back = Vec::new();
    for h in tasks {
        let (log, p) = h.await.expect("sender");
        for (text, t0, rt) in log {
            if let Some(at) = arrived.get(&text) {
                lat.push(at.saturating_duration_since(t0));
            }
            SUBMIT_RT.with(|v| v.borrow_mut().push(rt));
        }
        back.push(p);
    }
    lat.sort();
    (arrived.len(), elapsed, lat, back)
}

/// The clients' MLS cost of one 1 KB-ish message: one encryption and `receivers`
/// decryptions (median over `n`), on a two-device group without any node.
pub fn mls_message_cost(n: usize, receivers: usize) -> Duration {
    let room = RoomUri::parse("mimi://a.example/r/mls-baseline").expect("room");
    let a = Device::new(ClientUri::parse("mimi://a.example/d/a/1").expect("c")).expect("d");
    let b = Device::new(ClientUri::parse("mimi://b.example/d/b/1").expect("c")).expect("d");
    let k = openmls_basic_credential::SignatureKeyPair::new(
        openmls_traits::types::SignatureScheme::ED25519,
    )
    .expect("key");
    let sender = openmls::prelude::ExternalSender::new(
        k.to_public_vec().into(),
        openmls::prelude::BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let (mut ra, gi, tree) = a
        .create_room(&room, &private_group(&CodePoints::DRAFT), sender, None)
        .expect("room");
    let mut hub = HubRoom::bootstrap(room.clone(), &gi, &tree).expect("hub");
    let out = ra
        .add_users(
            &a,
            &[(UserUri::parse("mimi://b.example/u/b").expect("u"), 2)],
            &[b.key_package().expect("kp")],
        )
        .expect("add");
    ra.merge(&a).expect("merge");
    let mut accepted = hub.handle_update(&out.bundle).expect("accepted");
    HubRoom::welcome_of(&out.bundle, &mut accepted).expect("welcome");
    let HandshakeBundle::Commit { ratchet_tree, .. } = &out.bundle else {
        panic!("not a commit");
    };
    let (w, _) = accepted.welcome.expect("a Welcome");
    let mut rb = b.join_from_welcome(&room, &w, ratchet_tree).expect("join");
    let mut v = Vec::new();
    for i in 0..n {
        let c = MimiContent::text(mimi_harness::rand16(), &format!("{i} {}", "x".repeat(1000)))
            .encode()
            .expect("content");
        let t0 = Instant::now();
        let req = ra.send(&a, &c).expect("send");
        let enc = t0.elapsed();
        let item = FanoutMessage {
            timestamp: 1,
            message: req.app_message,
            extra: mimi_wire::fanout::FanoutExtra::Application(None),
        };
        let t1 = Instant::now();
        let ev = rb.process(&b, &item).expect("decrypt");
        let dec = t1.elapsed();
        assert!(matches!(ev, Event::Message { .. }));
        v.push(enc + dec * receivers as u32);
    }
    median(v)
}

/// Scenario 4: a follower offline while the hub accepts `events` messages; then it comes
/// back: events/s replayed until the hub's outbox is empty, and the growth of this process's
/// resident memory during the replay, at its peak, in all and by kind.
pub async fn catch_up(events: usize) -> (f64, RssParts) {
    progress(&format!("catch-up: {events} events"));
    let mut fed = federation_of(&[
        ("a.example", "a.example", "sqlite".into()),
        ("b.example", "b.example", "sqlite".into()),
    ])
    .await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/catch{}", tag())).expect("room");
    let mut alice = Person::register(&fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(&fed, "b.example", "bob", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    bob.sync_until("join", |p| p.rooms.contains_key(&room))
        .await;
    fed.stop(1).await;
    for i in 0..events {
        alice.send(&room, &format!("e{i}")).await;
    }
    let hub_store = Store::open(fed.sqlite(0).to_str().expect("path"))
        .await
        .expect("store");
    // The room's stream to b.example, by its first and last numbers: two index lookups, so
    // that polling it every 2 ms costs the replay nothing (counting the rows did: a scan of
    // the whole backlog per poll, on the cores the replay runs on).
    let room_s = room.to_string();
    let depth = async || {
        hub_store
            .outbox_stream_len("b.example", &room_s)
            .await
            .expect("depth")
    };
    let initial = depth().await;
    assert!(
        initial >= events as u64,
        "the hub's outbox holds {initial} rows for b.example, not the {events} missed events"
    );
    let me = std::process::id();
    let rss0 = rss_parts_of(me);
    let mut peak = rss0;
    fed.restart(1).await;
    // From the last poll that saw nothing delivered yet to the one that saw the outbox empty:
    // the replay itself, not the restart or the hub's retry backoff, and at most one poll
    // interval longer than it (so never a rate above the true one, even when a small backlog
    // goes between two polls).
    let mut t0 = Instant::now();
    let mut t_end = None;
    for _ in 0..600_000 {
        let polled = Instant::now();
        let d = depth().await;
        let now = rss_parts_of(me);
        if now.total() > peak.total() {
            peak = now;
        }
        if d >= initial {
            t0 = polled;
        }
        if d == 0 {
            t_end = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let t_end = t_end.expect("the follower caught up within the bounded wait");
    let rate = initial as f64 / t_end.duration_since(t0).as_secs_f64().max(1e-6);
    fed.shutdown().await;
    (rate, peak.minus(rss0))
}
/// Where results go.
pub fn results_dir(base: &Path) -> PathBuf {
    let _ = std::fs::create_dir_all(base);
    base.to_path_buf()
}

/// A process's resident set size in KiB (Linux `/proc/<pid>/status`), 0 elsewhere.
pub fn rss_kib_of(pid: u32) -> u64 {
    rss_parts_of(pid).total()
}

/// A process's resident memory in KiB by kind (Linux `/proc/<pid>/status`: `RssAnon`,
/// `RssFile`, `RssShmem`, whose sum is `VmRSS`); zeros elsewhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RssParts {
    /// Anonymous memory: the heap (SQLite's page caches, decoded rooms, buffers).
    pub anon: i64,
    /// Pages of mapped files (the program itself).
    pub file: i64,
    /// Shared memory: SQLite's WAL index (`-shm`) files, mapped by every connection.
    pub shmem: i64,
}

impl RssParts {
    /// The resident set size.
    pub fn total(self) -> u64 {
        u64::try_from(self.anon + self.file + self.shmem).unwrap_or(0)
    }

    fn minus(self, o: RssParts) -> RssParts {
        RssParts {
            anon: self.anon - o.anon,
            file: self.file - o.file,
            shmem: self.shmem - o.shmem,
        }
    }
}

impl std::fmt::Display for RssParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} KiB anonymous, {} KiB file, {} KiB shared",
            self.anon, self.file, self.shmem
        )
    }
}

/// [`RssParts`] of a process.
pub fn rss_parts_of(pid: u32) -> RssParts {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return RssParts::default();
    };
    let kib = |key: &str| {
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    RssParts {
        anon: kib("RssAnon:"),
        file: kib("RssFile:"),
        shmem: kib("RssShmem:"),
    }
}

/// Scenario 7 (issue 16, "hub memory"): a hub node in its own process (`exe node CONFIG`, the
/// code of `mimi-node run`, SQLite, `[hub] cache_rooms = cache_rooms`) hosts rooms of 10
/// members (its own 10 users, one device each) created through its client API one after the
/// other and then left idle; its resident memory is read at each of `counts` rooms.
/// Baseline: the node's resident memory with no room. The rooms' members never fetch their
/// Welcomes (idle rooms), so the node keeps nothing for them in memory but what its
/// decoded-room cache holds.
pub async fn idle_rooms(exe: &str, counts: &[usize], cache_rooms: usize, work: &Path) -> Table {
    let max = counts.iter().copied().max().unwrap_or(0);
    progress(&format!(
        "idle rooms: up to {max} rooms of 10 members on one hub process (cache_rooms = {cache_rooms})"
    ));
    let provider = ProcProvider::start(
        exe,
        "idle",
        1,
        "sqlite",
        &format!("[hub]\ncache_rooms = {cache_rooms}\n"),
        work,
    )
    .await;
    let node = &provider.nodes[0];
    let api = || provider.api(0);
    let mut owner = Person::register_via(api(), "owner", "1", None).await;
    let mut members = Vec::new();
    for k in 0..9 {
        members.push(Person::register_via(api(), &format!("member{k}"), "1", None).await);
    }
    let users: Vec<(UserUri, u32)> = members.iter().map(|m| (m.dev.user.clone(), 2)).collect();
    let base = rss_kib_of(node.pid());
    let mut points: Vec<(usize, u64)> = Vec::new();
    let started = Instant::now();
    for n in 1..=max {
        let room = RoomUri::parse(&format!("mimi://a.example/r/idle{n}")).expect("room");
        owner.create_room(&room).await;
        let kps: Vec<Vec<u8>> = members
            .iter()
            .map(|m| m.dev.key_package().expect("key package"))
            .collect();
        let out = owner
            .rooms
            .get_mut(&room)
            .expect("room")
            .add_users(&owner.dev, &users, &kps)
            .expect("add");
        let outcome = owner.update(&room, &out.bundle).await;
        assert!(
            matches!(outcome, mimi_wire::update::UpdateOutcome::Success { .. }),
            "room {n}: {outcome:?}"
        );
        // The owner's copy goes: only the hub's memory is measured, and the bench's own
        // would grow with every room.
        if let Some(r) = owner.rooms.remove(&room) {
            let _ = r.delete(&owner.dev);
        }
        if counts.contains(&n) {
            points.push((n, rss_kib_of(node.pid())));
            progress(&format!(
                "idle rooms: {n} rooms after {:.0} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    provider.stop();
    let mib = |k: u64| k as f64 / 1024.0;
    let first = points.first().map_or(base, |p| p.1);
    let mut rows = vec![vec![
        "0".into(),
        format!("{:.1} MiB", mib(base)),
        "baseline".into(),
    ]];
    for (n, r) in &points {
        rows.push(vec![
            n.to_string(),
            format!("{:.1} MiB", mib(*r)),
            format!("+{:.1} MiB", mib(r.saturating_sub(base))),
        ]);
    }
    let (top_n, top) = points.last().copied().unwrap_or((0, base));
    let mut figures = vec![Figure {
        scenario: "hub memory".into(),
        size: Some(top_n as u64),
        figure: format!(
            "resident memory of the hub process with {top_n} idle rooms of 10 members (cache_rooms = {cache_rooms})"
        ),
        unit: "MiB".into(),
        value: Some(mib(top)),
        baseline: Some(mib(base)),
        ratio: Some(top as f64 / base.max(1) as f64),
        target: "<= 1 GiB for 10,000 idle rooms of 10 members".into(),
        met: top_n >= 10_000 && mib(top) <= 1024.0,
    }];
    if points.len() > 1 {
        let growth = |r: u64| r.saturating_sub(base).max(1) as f64;
        figures.push(Figure {
            scenario: "hub memory".into(),
            size: Some(top_n as u64),
            figure: format!(
                "memory growth at {top_n} rooms against {} (the decoded-room cache bounded)",
                points[0].0
            ),
            unit: "KiB".into(),
            value: Some(growth(top)),
            baseline: Some(growth(first)),
            ratio: Some(growth(top) / growth(first)),
            target: "<= 1.5x from the first to the last count (the cache bounds it)".into(),
            met: growth(top) / growth(first) <= 1.5,
        });
    }
    Table {
        title: "Scenario 7: hub memory with idle rooms".into(),
        columns: vec![
            "rooms".into(),
            "hub resident memory".into(),
            "growth".into(),
        ],
        rows,
        note: format!(
            "One hub node process on SQLite, [hub] cache_rooms = {cache_rooms}; rooms of 10 members (the hub's own users) created one after the other through its client API, then idle. Baseline: the node's resident memory before the first room. Target (issue 16): 10,000 idle rooms of 10 members in <= 1 GiB, the decoded-room cache bounded."
        ),
        figures,
    }
}

/// The provider a.example as node processes of their own (`exe node CONFIG`, the code of
/// `mimi-node run`) on one database, in a fresh directory under `work` with a CA of its own.
struct ProcProvider {
    dir: PathBuf,
    nodes: Vec<mimi_harness::ProcNode>,
    /// The CA's certificate (PEM), the devices' trust root.
    ca_pem: String,
}

impl ProcProvider {
    /// `count` processes on `database`, each with `extra` at the end of its node.toml.
    async fn start(
        exe: &str,
        what: &str,
        count: usize,
        database: &str,
        extra: &str,
        work: &Path,
    ) -> Self {
        let dir = work.join(format!("{what}-{}", tag()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = mimi_net::pki::Ca::new(&format!("mimi-bench {what}")).expect("ca");
        std::fs::write(dir.join("ca.crt"), &ca.cert_pem).expect("ca.crt");
        let mut nodes = Vec::new();
        for i in 0..count {
            let cfg = mimi_harness::write_config_with(
                &dir,
                &ca,
                "a.example",
                &format!("a{i}"),
                database,
                &[],
                30_000,
                extra,
            );
            nodes.push(mimi_harness::ProcNode::spawn_with(exe, &["node"], &cfg).await);
        }
        Self {
            dir,
            nodes,
            ca_pem: ca.cert_pem.clone(),
        }
    }

    /// A client API connection to process `i`.
    fn api(&self, i: usize) -> mimi_net::client::ClientApi {
        mimi_net::client::ClientApi::new(
            "a.example",
            &self.nodes[i].addr,
            &mimi_net::pki::certs_from_pem(&self.ca_pem, "ca").expect("roots"),
            mimi_net::NetLimits::default(),
        )
        .expect("client api")
    }

    /// Kills the processes and removes the directory.
    fn stop(self) {
        for n in self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time (user + system) of a process in clock ticks (Linux `/proc/<pid>/stat`), 0
/// elsewhere.
fn cpu_ticks_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Busy and total clock ticks of the whole machine (Linux `/proc/stat`), zero elsewhere.
fn machine_ticks() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle and iowait are not busy.
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// One run of [`two_processes`]: `k` node processes of a.example on the database `db`.
struct ProcsRun {
    rate: f64,
    node_cpu_ms_per_msg: f64,
    machine_busy: f64,
}

async fn procs_run(
    exe: &str,
    k: usize,
    rooms: usize,
    messages: usize,
    db: &str,
    work: &Path,
) -> ProcsRun {
    let t = tag();
    let provider = ProcProvider::start(exe, "procs", k, db, "", work).await;
    let api = |i: usize| provider.api(i % k);
    // Room r: its sender's device talks to process r, its reader's to process r + 1 (with
    // two processes every message crosses from one to the other through the database).
    let mut pairs = Vec::new();
    for r in 0..rooms {
        let room = RoomUri::parse(&format!("mimi://a.example/r/procs{r}x{t}")).expect("room");
        let mut s = Person::register_via(api(r), &format!("s{r}"), "1", None).await;
        let mut o = Person::register_via(api(r + 1), &format!("o{r}"), "1", None).await;
        s.create_room(&room).await;
        s.add(&room, o.dev.user.as_str()).await;
        let e = s.epoch(&room);
        o.sync_until("join", |q| q.epoch(&room) == e).await;
        // Warm-up: one message each way is through before the clock starts.
        s.send(&room, "warm-up").await;
        o.sync_until("warm-up", |q| {
            q.seen.iter().any(|e| matches!(e, Event::Message { .. }))
        })
        .await;
        pairs.push((room, s, o));
    }
    let pids: Vec<u32> = provider.nodes.iter().map(|n| n.pid()).collect();
    let cpu0: u64 = pids.iter().map(|p| cpu_ticks_of(*p)).sum();
    let m0 = machine_ticks();
    let started = Instant::now();
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(room, mut s, mut o)| {
            tokio::spawn(async move {
                let sender = {
                    let room = room.clone();
                    tokio::spawn(async move {
                        for i in 0..messages {
                            s.send(&room, &format!("procs #{i}")).await;
                        }
                    })
                };
                let count = |q: &Person| {
                    q.seen
                        .iter()
                        .filter(|e| matches!(e, Event::Message { .. }))
                        .count()
                };
                // Bounded: every round returns at least one more item or ends the test.
                for _ in 0..100_000 {
                    if count(&o) > messages {
                        break;
                    }
                    let before = o.seen.len();
                    o.sync_until("more", |q| q.seen.len() > before).await;
                }
                sender.await.expect("sender");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("room");
    }
    let elapsed = started.elapsed();
    let cpu1: u64 = pids.iter().map(|p| cpu_ticks_of(*p)).sum();
    let m1 = machine_ticks();
    provider.stop();
    let total = (rooms * messages) as f64;
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    let tick_ms = 10.0;
    ProcsRun {
        rate: total / elapsed.as_secs_f64(),
        node_cpu_ms_per_msg: (cpu1.saturating_sub(cpu0)) as f64 * tick_ms / total,
        machine_busy: (m1.0.saturating_sub(m0.0)) as f64
            / (m1.1.saturating_sub(m0.1)).max(1) as f64,
    }
}

/// Scenario 1b (issue 16, "two node processes of one provider on one database carry ≥ 1.6x
/// one process"): node processes of a.example (`exe node CONFIG`, the code of `mimi-node
/// run`) on one PostgreSQL database, `rooms` rooms of two local users, each room's sender on
/// one process and its reader on the next (rooms spread over the processes; with two, every
/// message is accepted by one process and long-polled from the other: `STORE-wake`). All
/// senders at once, flat out, `messages` each; delivered = read by the room's reader.
/// Baseline: the same with one process (a fresh database each). Also printed: the node
/// processes' CPU per message and how busy the whole machine was (its 2 cores carry the
/// nodes, PostgreSQL and the bench's own devices).
pub async fn two_processes(
    exe: &str,
    url: &str,
    rooms: usize,
    messages: usize,
    work: &Path,
) -> Table {
    progress(&format!(
        "two processes: {rooms} rooms, {messages} messages each, on one and on two node processes (PostgreSQL)"
    ));
    let mut runs = Vec::new();
    for k in [1usize, 2] {
        let db = pg_database(
            url,
            &format!("bench_procs{k}_{}", tag().replace(['-', '.'], "_")),
        )
        .await;
        runs.push(procs_run(exe, k, rooms, messages, &db, work).await);
        mimi_harness::drop_pg_database(&db).await;
    }
    let (one, two) = (&runs[0], &runs[1]);
    let ratio = two.rate / one.rate.max(f64::MIN_POSITIVE);
    let figure = Figure {
        scenario: "message path, PostgreSQL".into(),
        size: Some(2),
        figure:
            "two node processes of one provider on one database vs one process: delivered msg/s"
                .into(),
        unit: "msg/s".into(),
        value: Some(two.rate),
        baseline: Some(one.rate),
        ratio: Some(ratio),
        target: ">= 1.6x".into(),
        met: ratio >= 1.6,
    };
    let row = |name: &str, r: &ProcsRun, ratio: &str| {
        vec![
            name.to_owned(),
            format!("{:.0}", r.rate),
            format!("{:.2} ms", r.node_cpu_ms_per_msg),
            format!("{:.0}%", r.machine_busy * 100.0),
            ratio.to_owned(),
        ]
    };
    Table {
        figures: vec![figure],
        title: format!("Scenario 1b: node processes of one provider on one PostgreSQL database ({rooms} rooms)"),
        columns: vec![
            "processes".into(),
            "delivered msg/s".into(),
            "node CPU per message".into(),
            "machine busy".into(),
            "ratio".into(),
        ],
        rows: vec![
            row("1", one, "baseline"),
            row("2", two, &format!("{ratio:.2}x")),
        ],
        note: "All rooms' senders at once, flat out; each room's reader on the next process, so with two processes every message crosses through the database (STORE-wake). Node CPU: user + system time of the node processes per delivered message; machine busy: share of both cores in use during the run (nodes, PostgreSQL and the bench's devices together). A second process can only add throughput where the first leaves a core idle.".into(),
    }
}
