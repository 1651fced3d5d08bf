//! A node as its own OS process for the resilience suite (`ProcNode`, killed with SIGKILL):
//! exactly the code of `mimi-node run --config <file>`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(config) = std::env::args_os().nth(1) else {
        eprintln!("usage: mimi-node-proc <node.toml>");
        return ExitCode::from(2);
    };
    match mimi_node::run::serve_until_signal(std::path::Path::new(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi-node-proc: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
