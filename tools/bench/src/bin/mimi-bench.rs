//! `mimi-bench`: the node's performance, each figure beside a baseline measured in the same
//! run (`mimi_bench`). Writes `results.md` and SVG plots to the output directory.
//!
//! ```text
//! mimi-bench [--out results/bench] [--quick] [--postgres <url>]
//! ```
//! `--quick` runs every scenario small (a smoke test, seconds); the default set takes a few
//! minutes in a release build (`scripts/bench.sh`).

use mimi_bench::{
    Figure, Table, catch_up, commit_acceptance, fanout_width, idle_rooms, key_package_claims,
    message_path, percentile, results_dir, svg_plot, two_processes,
};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `mimi-bench node CONFIG`: a node process of its own (the code of `mimi-node run`), for
    // the idle-rooms scenario, whose memory is that process's alone.
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some("node") {
        let Some(config) = all.get(1) else {
            return usage("node needs a configuration file");
        };
        return match mimi_node::run::serve_until_signal(std::path::Path::new(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mimi-bench node: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut args = std::env::args().skip(1);
    let mut out = PathBuf::from("results/bench");
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut commit_sizes: Option<Vec<usize>> = None;
    let mut catchup_sizes: Option<(usize, usize)> = None;
    let mut postgres = std::env::var("MIMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => match args.next() {
                Some(p) => out = PathBuf::from(p),
                None => return usage("--out needs a directory"),
            },
            "--quick" => quick = true,
            "--only" => only = args.next(),
            "--commit-sizes" => match sizes_arg(args.next()) {
                Some(v) if !v.is_empty() => commit_sizes = Some(v),
                _ => return usage("--commit-sizes needs a list of group sizes, e.g. 16,1000"),
            },
            "--catchup-sizes" => match sizes_arg(args.next()).as_deref() {
                Some(&[small, big]) if 0 < small && small < big => {
                    catchup_sizes = Some((small, big))
                }
                _ => {
                    return usage(
                        "--catchup-sizes needs two backlog sizes, the smaller first, e.g. 1000,100000",
                    );
                }
            },
            "--postgres" => postgres = args.next(),
            "--no-postgres" => postgres = None,
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage(&format!("no runtime: {e}")),
    };
    let out = results_dir(&out);
    let work = std::env::temp_dir().join(format!("mimi-bench-{}", std::process::id()));
    let want = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut extra: Vec<Figure> = Vec::new();
    let tables = rt.block_on(async {
        let mut tables: Vec<Table> = Vec::new();
        let (sizes, reps): (&[usize], usize) = if quick { (&[2, 16], 3) } else { (&[2, 16, 128, 1000, 10_000], 11) };
        if want("commit") {
            let sizes = commit_sizes.as_deref().unwrap_or(sizes);
            let (t, hub_pts, pg_pts) = commit_acceptance(sizes, reps, &work).await;
            tables.push(t);
            let _ = std::fs::write(
                out.join("commit-acceptance.svg"),
                svg_plot("Commit acceptance vs group size", "clients (log)", "ms", &[("hub update".into(), hub_pts), ("PublicGroup baseline".into(), pg_pts)], true),
            );
        }
        let widths: &[usize] = if quick { &[1, 4] } else { &[1, 10, 50, 100] };
        if want("fanout") {
            tables.push(fanout_width(widths, if quick { 5 } else { 51 }, &work).await);
        }
        let (per, msgs) = if quick { (2, 10) } else { (3, 200) };
        if want("message") {
            let (t, lat) = message_path(per, msgs, None, "SQLite").await;
            tables.push(t);
            let mut curves = vec![("SQLite".to_owned(), lat_curve(&lat))];
            if let Some(url) = &postgres {
                let (t, lat) = message_path(per, msgs, Some(url), "PostgreSQL").await;
                tables.push(t);
                curves.push(("PostgreSQL".to_owned(), lat_curve(&lat)));
            } else {
                extra.push(Figure::not_measured("message path, PostgreSQL", "throughput and p99", ">= 1500 msg/s; p99 <= 8 ms (no PostgreSQL: set MIMI_TEST_POSTGRES_URL)"));
            }
            let _ = std::fs::write(
                out.join("message-latency.svg"),
                svg_plot("Submit→delivered latency percentiles (paced senders)", "percentile", "ms", &curves, false),
            );
        }
        if want("procs") {
            let (rooms, msgs) = if quick { (2, 5) } else { (8, 100) };
            match (&postgres, std::env::current_exe()) {
                (Some(url), Ok(exe)) => tables.push(two_processes(&exe.to_string_lossy(), url, rooms, msgs, &work).await),
                (None, _) => extra.push(Figure::not_measured("message path, PostgreSQL", "two node processes of one provider on one database vs one process", ">= 1.6x (no PostgreSQL: set MIMI_TEST_POSTGRES_URL)")),
                (_, Err(e)) => extra.push(Figure::not_measured("message path, PostgreSQL", "two node processes of one provider on one database vs one process", &format!(">= 1.6x (not measured: no path to this binary: {e})"))),
            }
        }
        let (small, big) = catchup_sizes.unwrap_or(if quick { (20, 100) } else { (1_000, 100_000) });
        if want("catchup") {
        let (r_small, p_small) = catch_up(small).await;
        let (r_big, p_big) = catch_up(big).await;
        let (m_small, m_big) = (p_small.total() as i64, p_big.total() as i64);
        let mem_ratio = m_big.max(1) as f64 / m_small.max(1) as f64;
        tables.push(Table {
            figures: vec![
                Figure::bound("catch-up", Some(big as u64), "events replayed per second", "events/s", r_big, 20_000.0, false),
                Figure {
                    scenario: "catch-up".into(),
                    size: Some(big as u64),
                    figure: format!("resident memory growth for {big} missed events against {small}"),
                    unit: "KiB".into(),
                    value: Some(m_big as f64),
                    baseline: Some(m_small as f64),
                    ratio: Some(mem_ratio),
                    target: "<= 1.5x (from 1,000 to 100,000 missed events)".into(),
                    met: mem_ratio <= 1.5,
                },
            ],
            title: "Scenario 4: follower catch-up".into(),
            columns: vec!["events missed".into(), "replayed events/s".into(), "memory growth during replay".into(), "of which".into(), "ratio (memory)".into()],
            rows: vec![
                vec![small.to_string(), format!("{r_small:.0}"), format!("{m_small} KiB"), p_small.to_string(), "baseline".into()],
                vec![big.to_string(), format!("{r_big:.0}"), format!("{m_big} KiB"), p_big.to_string(), format!("{:.2}x for {}x the events", m_big as f64 / (m_small.max(1)) as f64, big / small)],
            ],
            note: "A follower stopped while the hub accepted the events; from its restart until the hub's outbox is empty. Memory: growth of this process's resident set (hub, follower and devices share it) from the follower's restart to the replay's peak, split by kind (anonymous: the heap, SQLite's page caches among it; shared: SQLite's WAL index files); bounded by batch means it does not grow with the backlog. Target (issue 16): >= 20,000 events/s for a 100,000-event backlog.".into(),
        });
        }
        if want("idle") {
            let counts: &[usize] = if quick { &[20, 50] } else { &[1_000, 5_000, 10_000] };
            match std::env::current_exe() {
                Ok(exe) => tables.push(idle_rooms(&exe.to_string_lossy(), counts, 512, &work).await),
                Err(e) => extra.push(Figure::not_measured(
                    "hub memory",
                    "10,000 idle rooms of 10 members: resident memory",
                    &format!("<= 1 GiB (not measured: no path to this binary: {e})"),
                )),
            }
        } else {
            extra.push(Figure::not_measured(
                "hub memory",
                "10,000 idle rooms of 10 members: resident memory; the decoded-room cache bounded",
                "<= 1 GiB (run with --only idle or without --only)",
            ));
        }
        let kp_total = if quick { 200 } else { 2_000 };
        if !want("claims") {
            return tables;
        }
        let store = mimi_store::Store::open(work.join("kp.sqlite").to_str().unwrap_or_default()).await;
        if let Ok(store) = store {
            tables.push(key_package_claims(kp_total, 8, store).await);
        }
        if let Some(url) = &postgres
            && let Ok(store) = mimi_store::Store::open(url).await
        {
            tables.push(key_package_claims(kp_total, 8, store).await);
        }
        tables
    });
    let mut md = format!(
        "# mimi-bench results\n\nMachine: {} cores; {} build.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    for t in &tables {
        md.push_str(&t.markdown());
        md.push('\n');
    }
    let mut figures: Vec<Figure> = tables.iter().flat_map(|t| t.figures.clone()).collect();
    figures.extend(extra);
    print!("{md}");
    match serde_json::to_string_pretty(&figures) {
        Ok(j) => {
            if let Err(e) = std::fs::write(out.join("results.json"), j + "\n") {
                eprintln!("mimi-bench: writing results.json: {e}");
                return ExitCode::FAILURE;
            }
        }
        Err(e) => eprintln!("mimi-bench: results.json: {e}"),
    }
    let met = figures.iter().filter(|f| f.met).count();
    let unmeasured = figures.iter().filter(|f| f.value.is_none()).count();
    println!(
        "\n## Targets (issue 16): {met} met, {} missed, {unmeasured} not measured\n",
        figures.len() - met - unmeasured
    );
    for f in &figures {
        println!("{}", f.summary_line());
    }
    if let Err(e) = std::fs::write(out.join("results.md"), &md) {
        eprintln!("mimi-bench: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    eprintln!("[mimi-bench] results and plots in {}", out.display());
    let _ = std::fs::remove_dir_all(&work);
    ExitCode::SUCCESS
}

fn lat_curve(lat: &[std::time::Duration]) -> Vec<(f64, f64)> {
    [50.0, 75.0, 90.0, 95.0, 99.0]
        .iter()
        .map(|p| (*p, percentile(lat, *p).as_secs_f64() * 1000.0))
        .collect()
}

/// A comma-separated list of sizes (`--commit-sizes`, `--catchup-sizes`); `None` if absent or
/// not all numbers.
fn sizes_arg(arg: Option<String>) -> Option<Vec<usize>> {
    arg?.split(',').map(|n| n.trim().parse().ok()).collect()
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("mimi-bench: {msg}");
    eprintln!(
        "usage: mimi-bench [--out <dir>] [--quick] [--only commit|fanout|message|procs|catchup|idle|claims] [--commit-sizes N,N,..] [--catchup-sizes SMALL,BIG] [--postgres <url> | --no-postgres]"
    );
    ExitCode::from(2)
}
