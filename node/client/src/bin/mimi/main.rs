//! `mimi`: the command line of a MIMI user's device.
//!
//! Today it carries the content tools (`mimi content inspect|encode`); the device commands
//! (register, rooms, messages) arrive with the node's client API.

mod content;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A MIMI (More Instant Messaging Interoperability) client.
#[derive(Parser)]
#[command(name = "mimi", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect and write MIMI content (draft-ietf-mimi-content-08).
    #[command(subcommand)]
    Content(content::ContentCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Content(cmd) => content::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
