//! `mimi-node`: a MIMI provider's federation node.
//!
//! ```text
//! mimi-node ca new --dir fed/ca                      # a federation CA for a local federation
//! mimi-node init --domain a.example --ca fed/ca --dir fed/a --listen 127.0.0.1:4433 \
//!                --peer b.example=127.0.0.1:4434      # key, certificate and node.toml
//! mimi-node run --config fed/a/node.toml             # serve until Ctrl-C / SIGTERM
//! ```

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use mimi_net::pki::{Ca, write_pem};
use mimi_node::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mimi-node",
    version,
    about = "A MIMI (More Instant Messaging Interoperability) federation node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificate authority for a local federation.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Creates a provider's key, certificate (signed by the CA) and node.toml.
    Init {
        /// The provider's domain.
        #[arg(long)]
        domain: String,
        /// The CA directory (ca.crt, ca.key).
        #[arg(long)]
        ca: PathBuf,
        /// Where to write the provider's files.
        #[arg(long)]
        dir: PathBuf,
        /// The QUIC listen address.
        #[arg(long, default_value = "127.0.0.1:4433")]
        listen: SocketAddr,
        /// A peer provider: domain=host:port (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// Anyone may register a device (local federations).
        #[arg(long)]
        open_registration: bool,
    },
    /// Runs a node.
    Run {
        /// Its configuration file.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Creates a CA (ECDSA P-256) in a directory.
    New {
        /// The directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// Its name.
        #[arg(long, default_value = "MIMI local federation")]
        name: String,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi-node: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ca(CaCommand::New { dir, name }) => {
            if dir.join("ca.key").exists() {
                bail!(
                    "{} already holds a CA (ca.key); refusing to overwrite it",
                    dir.display()
                );
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let ca = Ca::new(&name)?;
            write_pem(&dir.join("ca.crt"), &ca.cert_pem, false)?;
            write_pem(&dir.join("ca.key"), &ca.key_pem, true)?;
            println!("CA written to {}/ca.crt and ca.key", dir.display());
            Ok(())
        }
        Command::Init {
            domain,
            ca,
            dir,
            listen,
            peers,
            open_registration,
        } => {
            let domain = mimi_wire::id::ProviderId::parse(&domain)?.to_string();
            let ca = Ca::load(&ca.join("ca.crt"), &ca.join("ca.key"))
                .context("loading the CA (run `mimi-node ca new` first)")?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let issued = ca.issue(&domain)?;
            write_pem(&dir.join(format!("{domain}.crt")), &issued.cert_pem, false)?;
            write_pem(&dir.join(format!("{domain}.key")), &issued.key_pem, true)?;
            write_pem(&dir.join("ca.crt"), &ca.cert_pem, false)?;
            let mut peer_lines = String::new();
            for p in &peers {
                let Some((d, addr)) = p.split_once('=') else {
                    bail!("--peer {p:?} is not domain=host:port");
                };
                peer_lines.push_str(&format!("\"{d}\" = \"{addr}\"\n"));
            }
            let toml = format!(
                "# mimi-node configuration (see node/server/src/config.rs for every key and default)\n\
                 domain = \"{domain}\"\nlisten = \"{listen}\"\ndatabase = \"sqlite\"\n\n\
                 [tls]\ncertificate = \"{domain}.crt\"\nkey = \"{domain}.key\"\ntrusted_roots = [\"ca.crt\"]\n\n\
                 [peers]\n{peer_lines}\n[registration]\nopen = {open_registration}\n"
            );
            let path = dir.join("node.toml");
            std::fs::write(&path, toml).with_context(|| format!("writing {}", path.display()))?;
            Config::load(&path).context("checking the written configuration")?;
            println!("{domain}: {}", path.display());
            Ok(())
        }
        Command::Run { config } => mimi_node::run::serve_until_signal(&config),
    }
}
