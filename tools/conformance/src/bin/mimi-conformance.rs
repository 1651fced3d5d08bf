//! `mimi-conformance`: tests a MIMI provider against draft-ietf-mimi-protocol-06.
//!
//! ```text
//! mimi-conformance --target a.example=127.0.0.1:4433 --ca-dir federation/ca \
//!     --as conformance.example --listen 127.0.0.1:4500 [--role hub|follower|both] \
//!     [--json report.json] [--junit report.xml]
//! ```
//!
//! The runner is a provider of its own: the target must trust the CA in `--ca-dir` and list
//! `--as` at `--listen` among its peers. Exit status: 0 when nothing failed, 1 otherwise.

use mimi_conformance::{Options, Role, run};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage(msg: &str) -> ExitCode {
    eprintln!("mimi-conformance: {msg}");
    eprintln!(
        "usage: mimi-conformance --target <domain>=<host:port> --ca-dir <dir> [--as <domain>] [--listen <addr>] [--role hub|follower|both] [--no-client-api] [--json <file>] [--junit <file>] [--work-dir <dir>]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut target, mut ca_dir, mut json, mut junit) = (None, None, None, None);
    let mut me = "conformance.example".to_owned();
    let mut listen = "127.0.0.1:0".to_owned();
    let mut role = Role::Both;
    let mut client_api = true;
    let mut work_dir =
        std::env::temp_dir().join(format!("mimi-conformance-{}", std::process::id()));
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--target" => target = Some(val("--target")?),
                "--ca-dir" => ca_dir = Some(PathBuf::from(val("--ca-dir")?)),
                "--as" => me = val("--as")?,
                "--listen" => listen = val("--listen")?,
                "--json" => json = Some(PathBuf::from(val("--json")?)),
                "--junit" => junit = Some(PathBuf::from(val("--junit")?)),
                "--work-dir" => work_dir = PathBuf::from(val("--work-dir")?),
                "--no-client-api" => client_api = false,
                "--role" => {
                    role = match val("--role")?.as_str() {
                        "hub" => Role::Hub,
                        "follower" => Role::Follower,
                        "both" => Role::Both,
                        other => return Err(format!("--role {other}: use hub, follower or both")),
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                other => return Err(format!("unknown argument {other}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            return usage(&e);
        }
    }
    let Some((domain, addr)) = target.as_deref().and_then(|t| t.split_once('=')) else {
        return usage("--target <domain>=<host:port> is required");
    };
    let Some(ca_dir) = ca_dir else {
        return usage("--ca-dir is required (a CA the target trusts: ca.crt and ca.key)");
    };
    let Ok(listen) = listen.parse() else {
        return usage("--listen is not an address like 127.0.0.1:4500");
    };
    let opts = Options {
        target: domain.to_owned(),
        target_addr: addr.to_owned(),
        role,
        me,
        listen,
        ca_dir,
        work_dir,
        target_client_api: client_api,
        announce: None,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return usage(&format!("no runtime: {e}")),
    };
    let report = rt.block_on(run(&opts));
    print!("{}", report.human());
    if let Some(p) = json
        && let Err(e) = std::fs::write(
            &p,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
    {
        eprintln!("mimi-conformance: writing {}: {e}", p.display());
    }
    if let Some(p) = junit
        && let Err(e) = std::fs::write(&p, report.junit())
    {
        eprintln!("mimi-conformance: writing {}: {e}", p.display());
    }
    if report.failures() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
