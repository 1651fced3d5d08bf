//! `mimi-lab`: scenarios with injected faults against a local MIMI federation, convergence
//! checks and a report; a live view of a running federation.
//!
//! ```text
//! mimi-lab run SCENARIO.toml [--out DIR] [--short] [--postgres URL] [--keep]
//! mimi-lab view [--federation DIR | --node DOMAIN=ADMIN_ADDR ...] [--listen ADDR]
//! mimi-lab node CONFIG      (a node process, as `mimi-node run --config CONFIG`)
//! ```

mod agents;
mod checks;
mod fed;
mod log;
mod metrics;
mod relay;
mod report;
mod run;
mod scenario;
mod view;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mimi-lab",
    version,
    about = "Scenarios, injected faults and a live view of a local MIMI federation"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring up the scenario's federation, play its timeline, check convergence and write
    /// the report (events.jsonl, summary.json, report.html). Exits 1 when a check fails.
    Run {
        /// The scenario file (see scenarios/).
        scenario: PathBuf,
        /// The report directory (default: lab-out/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The scenario's short form (its [short] scaling; what CI runs).
        #[arg(long)]
        short: bool,
        /// A PostgreSQL server for providers on `postgres` (a database each is created and
        /// dropped); default $MIMI_LAB_POSTGRES_URL.
        #[arg(long)]
        postgres: Option<String>,
        /// Keep the work directory (configurations, logs, SQLite files, device profiles).
        #[arg(long)]
        keep: bool,
        /// Also serve the live view at this address while the scenario runs.
        #[arg(long)]
        view: Option<std::net::SocketAddr>,
    },
    /// Serve a live page of a running federation (providers, health, rooms, outbox depth,
    /// messages flowing), polling the nodes' admin listeners.
    View {
        /// A federation directory of scripts/federation.sh (its nodes' admin addresses are
        /// read from their node.toml).
        #[arg(long)]
        federation: Option<PathBuf>,
        /// A node's admin listener, as DOMAIN=HOST:PORT (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Where to serve the page.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Run one node from its configuration (what `run` starts for each node).
    #[command(hide = true)]
    Node { config: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Node { config } => match mimi_node::run::serve_until_signal(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mimi-lab node: error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            scenario,
            out,
            short,
            postgres,
            keep,
            view,
        } => {
            let exe = match std::env::current_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("mimi-lab: cannot find its own program: {e}");
                    return ExitCode::from(2);
                }
            };
            let out = out.unwrap_or_else(|| {
                let stem = scenario
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scenario".into());
                PathBuf::from("lab-out").join(stem)
            });
            let opts = run::Options {
                scenario,
                out: out.clone(),
                short,
                postgres: postgres.or_else(|| std::env::var("MIMI_LAB_POSTGRES_URL").ok()),
                keep,
                exe,
                view,
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mimi-lab: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run::run(&opts)) {
                Ok(o) => {
                    let lat = &o.summary["latency_ms"];
                    let msgs = &o.summary["messages"];
                    println!(
                        "{}: {} accepted, {} not accepted, {} deliveries; latency p50 {:.1} ms, p99 {:.1} ms",
                        o.summary["scenario"].as_str().unwrap_or_default(),
                        msgs["accepted"],
                        msgs["failed"],
                        msgs["deliveries"],
                        lat["p50"].as_f64().unwrap_or(0.0),
                        lat["p99"].as_f64().unwrap_or(0.0)
                    );
                    println!("report: {}", out.join("report.html").display());
                    if o.failures.is_empty() {
                        println!("every check passed");
                        ExitCode::SUCCESS
                    } else {
                        println!("{} check(s) failed:", o.failures.len());
                        for f in o.failures.iter().take(50) {
                            println!("  [{}] {}: {}", f.check, f.room, f.what);
                        }
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("mimi-lab: error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::View {
            federation,
            nodes,
            listen,
        } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mimi-lab: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(view::serve_cli(federation, nodes, listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mimi-lab view: error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
