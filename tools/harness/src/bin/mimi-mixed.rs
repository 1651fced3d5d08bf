//! `mimi-mixed`: the mixed-MLS room of issue 18 as a demo (`INTEROP-mixed-federation`).
//! openmls devices at a.example and c.example, mls-rs devices at b.example and c.example,
//! one room; prints every step with the epoch authenticator all devices agreed on.
//!
//! ```text
//! mimi-mixed                                   # three in-process nodes in a temp dir
//! mimi-mixed --ca federation/ca/ca.crt \
//!     --node a.example=127.0.0.1:4433 --node b.example=127.0.0.1:4434 \
//!     --node c.example=127.0.0.1:4435           # a running federation (scripts/demo.sh --mixed)
//! ```
//!
//! Exit status 0 when every device agreed after every step, 1 when one did not (the message
//! names the device and what differed), 2 for bad arguments.

use futures_util::FutureExt;
use mimi_harness::mixed::mixed_flow;
use mimi_net::NetLimits;
use mimi_net::client::ClientApi;
use std::collections::BTreeMap;
use std::process::ExitCode;

const USAGE: &str = "usage: mimi-mixed [--ca CA.crt --node a.example=HOST:PORT --node b.example=HOST:PORT --node c.example=HOST:PORT]";

/// The CA file and each domain's address, or none for an in-process federation.
type Target = Option<(String, BTreeMap<String, String>)>;

fn parse(args: &[String]) -> Result<Target, String> {
    let mut ca = None;
    let mut nodes = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ca" => ca = Some(it.next().ok_or("--ca needs a file")?.clone()),
            "--node" => {
                let v = it.next().ok_or("--node needs DOMAIN=HOST:PORT")?;
                let (d, addr) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--node {v}: expected DOMAIN=HOST:PORT"))?;
                nodes.insert(d.to_owned(), addr.to_owned());
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    match (ca, nodes.is_empty()) {
        (None, true) => Ok(None),
        (Some(ca), false) => {
            for d in ["a.example", "b.example", "c.example"] {
                if !nodes.contains_key(d) {
                    return Err(format!("no --node for {d}\n{USAGE}"));
                }
            }
            Ok(Some((ca, nodes)))
        }
        _ => Err(format!("--ca and --node go together\n{USAGE}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = match parse(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mimi-mixed: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mimi-mixed: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let mut say = |s: String| println!("▸ {s}");
        let run = async {
            match target {
                None => {
                    println!(
                        "▸ three in-process nodes (a.example, b.example, c.example) on SQLite"
                    );
                    let fed = mimi_harness::federation(None).await;
                    mixed_flow(&|d| fed.api(d), "", &mut say).await;
                    fed.shutdown().await;
                    Ok(())
                }
                Some((ca, nodes)) => {
                    let roots = mimi_net::pki::load_certs(std::path::Path::new(&ca))
                        .map_err(|e| format!("the CA certificate {ca}: {e}"))?;
                    // Each device has its own connection (its token goes with it).
                    let api = |d: &str| ClientApi::new(d, &nodes[d], &roots, NetLimits::default());
                    for (d, addr) in &nodes {
                        api(d).map_err(|e| format!("{d} at {addr}: {e}"))?;
                    }
                    // Fresh user names: the federation may have the plain ones already.
                    let secs = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let suffix = format!("-m{}", secs % 1_000_000);
                    // (Each domain's connection was made once above; the flow's own failures
                    // are panics, caught below.)
                    #[allow(clippy::expect_used)]
                    let api = |d: &str| api(d).expect("checked above");
                    mixed_flow(&api, &suffix, &mut say).await;
                    Ok::<(), String>(())
                }
            }
        };
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(Ok(())) => {
                println!("every device agreed after every step");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                eprintln!("mimi-mixed: {e}");
                ExitCode::from(2)
            }
            Err(p) => {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".into());
                eprintln!("mimi-mixed: the devices did not agree: {why}");
                ExitCode::from(1)
            }
        }
    })
}
