//! `mimi`: the command line of a MIMI user's device.
//!
//! Every call is its own process: the device's state (MLS groups, keys, token, history) lives
//! in its profile, `$MIMI_HOME/<profile>/device.sqlite` (`~/.mimi` by default), so several
//! users can live on one machine (`--profile alice`, `--profile bob`).

mod content;
mod device;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use device::{Compose, Ctx, DeviceCommand, KeysCommand, RoomCommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A MIMI (More Instant Messaging Interoperability) client.
#[derive(Parser)]
#[command(name = "mimi", version, about, propagate_version = true)]
struct Cli {
    /// The profile (one device of one user) to act as [default: $MIMI_PROFILE, else "default"].
    #[arg(long, short = 'p', global = true)]
    profile: Option<String>,
    /// Where profiles live [default: $MIMI_HOME, else ~/.mimi].
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register a user and this device on a home node (creates the profile).
    Register {
        /// The home provider's domain.
        #[arg(long)]
        node: String,
        /// Its address (host:port).
        #[arg(long)]
        addr: String,
        /// The federation CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// The user name (the user is mimi://<node>/u/<user>).
        #[arg(long)]
        user: String,
        /// This device's name.
        #[arg(long, default_value = "1")]
        device: String,
        /// A display name others can search for.
        #[arg(long)]
        nick: Option<String>,
        /// The MLS implementation this device runs: openmls (every room operation) or mls-rs
        /// (messages, self-updates, adding and removing devices of listed users, external
        /// joins as such a device, resyncs; no room-state change: spec-notes/interop.md).
        #[arg(long, default_value = "openmls", value_parser = device::mls_library)]
        mls: mimi_client::device::MlsLibrary,
    },
    /// Devices of this user.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// KeyPackages.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The rooms this device is in.
    Rooms,
    /// This profile's local settings: show them, or change them (`on` or `off`).
    Settings {
        /// Send delivery receipts after a sync (a room's policy may require or forbid them).
        #[arg(long, value_parser = device::on_off)]
        delivery_receipts: Option<bool>,
        /// Refuse to send into a room whose logging is active (room-policy-03 logging policy).
        #[arg(long, value_parser = device::on_off)]
        refuse_logged_rooms: Option<bool>,
        /// Refuse to send into a room whose bot policy lets a bot message members one by one
        /// or send each different content.
        #[arg(long, value_parser = device::on_off)]
        refuse_targeting_bots: Option<bool>,
    },
    /// Create and manage rooms.
    #[command(subcommand)]
    Room(RoomCommand),
    /// Join a room by external commit: with a join link (`<room URI>?join=<code>`, from
    /// `mimi room link`), or a room URI of an open room (role 0 holds canOpenJoin) or of a
    /// room that lists this user.
    Join {
        /// A join link or a room URI.
        target: String,
    },
    /// Rejoin a room as this same device after its state was lost or broke (an external
    /// commit that replaces the device's old leaf).
    Resync { room: String },
    /// Send text (or Markdown with --markdown), or a file with --file (the text, if any, is
    /// its description).
    Send {
        room: String,
        text: Option<String>,
        #[arg(long)]
        markdown: bool,
        /// Make the message disappear this many seconds after sending (within the room's
        /// message expiration policy; without it the room's default applies).
        #[arg(long)]
        expires: Option<u32>,
        /// Encrypt this file on this device, upload it to your provider and send it as an
        /// attachment (content-08 external part).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Download, check and decrypt the attachment of a message (through your provider and
    /// the room's hub, protocol-06 §5.10).
    Download {
        room: String,
        /// The message (ID or the start of it, as `mimi history` shows).
        id: String,
        /// Where to write it [default: the sender's file name, in this directory].
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// How: hubProxy (through the room's hub) or direct (your provider fetches from the
        /// asset server) [default: the room's default download type if this client has it,
        /// else hubProxy]. The room's asset policy decides which are allowed.
        #[arg(long, value_name = "TYPE")]
        via: Option<String>,
    },
    /// Reply to a message (by ID or the start of it, as `mimi history` shows).
    Reply {
        room: String,
        id: String,
        text: String,
    },
    /// React to a message.
    React {
        room: String,
        id: String,
        emoji: String,
    },
    /// Take back your reaction.
    Unreact {
        room: String,
        id: String,
        emoji: String,
    },
    /// Replace the text of your message.
    Edit {
        room: String,
        id: String,
        text: String,
    },
    /// Delete your message.
    Delete { room: String, id: String },
    /// Send read receipts (for the given messages, or all of others').
    Read { room: String, ids: Vec<String> },
    /// Report a message as abusive to the room's hub, with the hub's frank of it so that the
    /// hub can verify what was sent (protocol-06 §5.9).
    Report {
        room: String,
        id: String,
        /// Why (goes in the report's note).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Fetch and process everything waiting on the home node.
    Sync {
        /// Wait up to this many milliseconds for something to arrive.
        #[arg(long, default_value_t = 0)]
        wait: u64,
    },
    /// Sync, then show a room as a person sees it.
    History { room: String },
    /// Follow a room's new messages.
    Watch {
        room: String,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 3600)]
        seconds: u64,
    },
    /// Inspect and write MIMI content (draft-ietf-mimi-content-08).
    #[command(subcommand)]
    Content(content::ContentCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mimi: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Content(cmd) = cli.command {
        return content::run(cmd);
    }
    let home = match cli
        .home
        .or_else(|| std::env::var_os("MIMI_HOME").map(PathBuf::from))
    {
        Some(h) => h,
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".mimi"))
            .context("no --home, no MIMI_HOME and no HOME: say where profiles live")?,
    };
    let profile = cli
        .profile
        .or_else(|| std::env::var("MIMI_PROFILE").ok())
        .unwrap_or_else(|| "default".to_owned());
    let ctx = Ctx {
        dir: device::profile_dir(&home, &profile)?,
        home,
        json: cli.json,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Register {
                node,
                addr,
                ca,
                user,
                device: d,
                nick,
                mls,
            } => {
                let home = mimi_client::device::HomeNode {
                    domain: node,
                    addr,
                    ca,
                };
                device::register(&ctx, home, user, d, nick, mls).await
            }
            Command::Device(cmd) => device::device(&ctx, cmd).await,
            Command::Keys(cmd) => device::keys(&ctx, cmd).await,
            Command::Rooms => device::rooms(&ctx).await,
            Command::Settings {
                delivery_receipts,
                refuse_logged_rooms,
                refuse_targeting_bots,
            } => {
                use mimi_client::device::Setting;
                device::settings(
                    &ctx,
                    &[
                        (Setting::DeliveryReceipts, delivery_receipts),
                        (Setting::RefuseLoggedRooms, refuse_logged_rooms),
                        (Setting::RefuseTargetingBots, refuse_targeting_bots),
                    ],
                )
                .await
            }
            Command::Room(cmd) => device::room(&ctx, cmd).await,
            Command::Send {
                room,
                text,
                markdown,
                expires,
                file: Some(file),
            } => {
                if markdown {
                    anyhow::bail!("--markdown and --file do not go together");
                }
                if expires.is_some() {
                    anyhow::bail!(
                        "--expires and --file do not go together yet (attachments do not expire)"
                    );
                }
                device::send_file(&ctx, &room, &file, text.as_deref().unwrap_or("")).await
            }
            Command::Send {
                room,
                text,
                markdown,
                expires,
                file: None,
            } => {
                let text = text.context(
                    "say what to send: `mimi send <room> <text>` or `mimi send <room> --file PATH`",
                )?;
                device::compose(
                    &ctx,
                    &room,
                    Compose::Text {
                        text,
                        markdown,
                        expires,
                    },
                )
                .await
            }
            Command::Download { room, id, out, via } => {
                device::download(&ctx, &room, &id, out.as_deref(), via.as_deref()).await
            }
            Command::Reply { room, id, text } => {
                device::compose(&ctx, &room, Compose::Reply { to: id, text }).await
            }
            Command::React { room, id, emoji } => {
                device::compose(&ctx, &room, Compose::React { to: id, emoji }).await
            }
            Command::Unreact { room, id, emoji } => {
                device::compose(&ctx, &room, Compose::Unreact { to: id, emoji }).await
            }
            Command::Edit { room, id, text } => {
                device::compose(&ctx, &room, Compose::Edit { id, text }).await
            }
            Command::Delete { room, id } => {
                device::compose(&ctx, &room, Compose::Delete { id }).await
            }
            Command::Read { room, ids } => {
                device::compose(&ctx, &room, Compose::Read { ids }).await
            }
            Command::Report { room, id, reason } => {
                device::report_abuse(&ctx, &room, &id, &reason).await
            }
            Command::Join { target } => device::join(&ctx, &target).await,
            Command::Resync { room } => device::resync(&ctx, &room).await,
            Command::Sync { wait } => device::sync(&ctx, wait).await,
            Command::History { room } => device::history(&ctx, &room).await,
            Command::Watch { room, seconds } => device::watch(&ctx, &room, seconds).await,
            Command::Content(_) => Ok(()),
        }
    })
}
