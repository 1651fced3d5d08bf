//! The device commands of `mimi`: register, keys, rooms, messages, sync, history.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mimi_client::device::{Client, HomeNode, MlsLibrary, SyncReport, salt};
use mimi_client::policy::{OperationalEdit, PolicyEdit};
use mimi_content::NestedPart;
use mimi_content::build::ContentBuilder;
use mimi_content::status::{MessageStatus, MessageStatusReport, PerMessageStatus};
use mimi_content::view::MessageView;
use mimi_content::{MessageId, MimiContent};
use mimi_room::room_policy::Bot;
use mimi_room::room_policy::Optionality;
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::room_policy::DownloadPrivacyType;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where profiles live and how to print.
pub struct Ctx {
    /// The profile's directory.
    pub dir: PathBuf,
    /// The directory of all profiles.
    pub home: PathBuf,
    /// `--json`.
    pub json: bool,
}

#[derive(Subcommand)]
pub enum RoomCommand {
    /// Create a room hosted by your home node (its hub).
    Create {
        /// The room's name (the last segment of its URI: mimi://<your node>/r/<name>).
        name: String,
        /// A title shown to participants.
        #[arg(long)]
        title: Option<String>,
        /// The policy preset: private, public or dm.
        #[arg(long, default_value = "private")]
        preset: String,
        /// The MLS cipher suite: 1 (AES-128-GCM) or 3 (ChaCha20-Poly1305), both X25519 and
        /// Ed25519.
        #[arg(long, default_value_t = 1)]
        suite: u16,
    },
    /// Add users of any provider (their KeyPackages are claimed through the room's hub).
    Add {
        /// The room (URI or name).
        room: String,
        /// User URIs such as mimi://b.example/u/bob.
        #[arg(required = true)]
        users: Vec<String>,
        /// Their role (2: ordinary user, 3: admin in the private preset).
        #[arg(long, default_value_t = 2)]
        role: u32,
    },
    /// Remove a user (all their devices).
    Remove { room: String, user: String },
    /// Ban a user (removed, and may not come back).
    Ban { room: String, user: String },
    /// Give a user a role.
    Role {
        room: String,
        user: String,
        role: u32,
    },
    /// Make a join link (prints it; others join with `mimi join <link>`), or revoke one with
    /// --revoke. The room's join link policy (single-use or not, lifetime) is set with it.
    Link {
        room: String,
        /// The link admits any number of joins (default: one join, then it is gone).
        #[arg(long)]
        multi_use: bool,
        /// Links last this many seconds from when the hub accepts them (0: no expiry).
        #[arg(long, default_value_t = 0)]
        expires: u32,
        /// Revoke this link instead of making one.
        #[arg(long)]
        revoke: Option<String>,
    },
    /// Leave the room (another member commits your removal).
    Leave { room: String },
    /// Commit proposals waiting in the room (for example someone's leave).
    Commit { room: String },
    /// Update this device's keys in the room (a self-update commit, RFC 9420 §12.4), with
    /// any proposals waiting.
    Update { room: String },
    /// Participants, roles, devices, providers, epoch and the room's policy.
    Info { room: String },
    /// Change the room's policy (room-policy-03): active-participant limits of a role,
    /// receipts, expiring messages, assets, history sharing, link previews. Each option
    /// changes one field; the components go to the hub in one commit. Needs a role with
    /// canChangeRoomMembershipStyle (roles: canChangeRoleDefinitions), like the creator's.
    Policy(Box<PolicyArgs>),
    /// Check that this profile and others see the room alike: the same participants and
    /// epoch, and every message they both have with the same text, edits, deletion, reply
    /// and reactions. Exits non-zero when they disagree.
    Agree {
        room: String,
        /// Other profiles to compare with.
        #[arg(long = "with", required = true)]
        with: Vec<String>,
    },
}

fn optionality(s: &str) -> Result<Optionality, String> {
    Optionality::from_name(s).ok_or_else(|| format!("{s:?}: use optional, required or forbidden"))
}

fn max_active(s: &str) -> Result<Option<u32>, String> {
    if s == "none" {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{s:?}: a number, or none for no maximum"))
}

/// `mimi room policy <room> ...`
#[derive(clap::Args)]
pub struct PolicyArgs {
    /// The room (URI or name).
    room: String,
    /// The role whose active-participant limits --min-active/--max-active set.
    #[arg(long)]
    role: Option<u32>,
    /// Fewest active participants (users with a device in the room) the role may have.
    #[arg(long)]
    min_active: Option<u32>,
    /// Most active participants the role may have (`none`: no maximum).
    #[arg(long)]
    max_active: Option<String>,
    /// Delivery receipts: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    delivery_receipts: Option<Optionality>,
    /// Read receipts: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    read_receipts: Option<Optionality>,
    /// Expiring (disappearing) messages: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    expiry: Option<Optionality>,
    /// Shortest expiry, in seconds.
    #[arg(long)]
    expiry_min: Option<u32>,
    /// Longest expiry, in seconds.
    #[arg(long)]
    expiry_max: Option<u32>,
    /// Expiry every message gets unless its sender asks for another (seconds; 0: none).
    #[arg(long)]
    expiry_default: Option<u32>,
    /// Largest image, in bytes.
    #[arg(long)]
    max_image: Option<u64>,
    /// Largest audio file, in bytes.
    #[arg(long)]
    max_audio: Option<u64>,
    /// Largest video, in bytes.
    #[arg(long)]
    max_video: Option<u64>,
    /// Largest other attachment, in bytes.
    #[arg(long)]
    max_attachment: Option<u64>,
    /// A forbidden media type (repeat; replaces the list).
    #[arg(long = "forbid-type")]
    forbid_types: Vec<String>,
    /// A permitted media type (repeat; replaces the list; only these are then allowed).
    #[arg(long = "permit-type")]
    permit_types: Vec<String>,
    /// Remove the list of permitted media types (every type not forbidden is allowed).
    #[arg(long)]
    permit_any_type: bool,
    /// Where assets are uploaded: unspecified, localProvider or hub.
    #[arg(long)]
    upload_location: Option<String>,
    /// A provider's asset upload destinations, `PROVIDER[=HOST,HOST...]` (no hosts: the
    /// provider's own domain, where mimi-node keeps assets); repeat; replaces the list. With
    /// --upload-location and no list yet, the providers of the room's members are listed.
    #[arg(long = "upload-domain", value_name = "PROVIDER[=HOSTS]")]
    upload_domains: Vec<String>,
    /// Download types allowed (comma-separated: direct, hubProxy, ohttp; `any`: no list).
    #[arg(long, value_delimiter = ',')]
    download_allow: Option<Vec<String>>,
    /// Download types forbidden (comma-separated; `none`: empty list).
    #[arg(long, value_delimiter = ',')]
    download_forbid: Option<Vec<String>>,
    /// The default (suggested) download type.
    #[arg(long)]
    download_default: Option<String>,
    /// History sharing with new joiners: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    history: Option<Optionality>,
    /// Roles that may share history (comma-separated indexes, not 0 or 1).
    #[arg(long, value_delimiter = ',')]
    history_roles: Option<Vec<u32>>,
    /// Share history automatically (true or false).
    #[arg(long)]
    history_auto: Option<bool>,
    /// Seconds of history shared.
    #[arg(long)]
    history_period: Option<u32>,
    /// Senders' link previews: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    link_previews: Option<Optionality>,
    /// Receivers' automatic link previews: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    auto_link_previews: Option<Optionality>,
    /// Detecting links in text: optional or forbidden (the draft forbids required).
    #[arg(long, value_parser = optionality)]
    autodetect_links: Option<Optionality>,
    /// Use of a link preview proxy: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    link_proxy_use: Option<Optionality>,
    /// The link preview proxy's URI.
    #[arg(long)]
    link_proxy: Option<String>,
    /// Logging of the room's messages: optional, required or forbidden.
    #[arg(long, value_parser = optionality)]
    logging: Option<Optionality>,
    /// A logging client's URI (repeat; replaces the list; at most one per provider).
    #[arg(long = "logging-client")]
    logging_clients: Vec<String>,
    /// Remove every logging client.
    #[arg(long)]
    no_logging_clients: bool,
    /// The URI of the human-readable logging policy ("" for none).
    #[arg(long)]
    logging_policy: Option<String>,
    /// The URI of the machine-readable logging policy ("" for none).
    #[arg(long)]
    logging_machine_policy: Option<String>,
    /// Allow a bot (by name; replaces a bot of the same name); see --bot-*.
    #[arg(long)]
    add_bot: Option<String>,
    /// The role the added bot acts in (0: not an active participant).
    #[arg(long, default_value_t = 0)]
    bot_role: u32,
    /// The added bot's description.
    #[arg(long, default_value = "")]
    bot_description: String,
    /// The added bot's homepage URI.
    #[arg(long, default_value = "")]
    bot_homepage: String,
    /// The added bot runs in a person's client and is not a participant.
    #[arg(long)]
    bot_local: bool,
    /// The added bot may message members individually.
    #[arg(long)]
    bot_targeted: bool,
    /// The added bot may send each member different content.
    #[arg(long)]
    bot_per_user: bool,
    /// Remove an allowed bot by name (repeat).
    #[arg(long = "remove-bot")]
    remove_bots: Vec<String>,
    /// MLS: external commits (joins and resyncs by external commit) allowed (true or false).
    #[arg(long)]
    external_commits: Option<bool>,
    /// MLS: external proposals allowed (true or false).
    #[arg(long)]
    external_proposals: Option<bool>,
    /// MLS: forbidden proposal types (comma-separated numbers, 0x.. for hex; `none`).
    #[arg(long, value_delimiter = ',')]
    forbid_proposals: Option<Vec<String>>,
    /// MLS: forbidden credential types (comma-separated; `none`).
    #[arg(long, value_delimiter = ',')]
    forbid_credentials: Option<Vec<String>>,
    /// MLS: extension types every member's leaf must support (comma-separated; `none`).
    #[arg(long, value_delimiter = ',')]
    mandatory_extensions: Option<Vec<String>>,
    /// MLS: proposal types every member's leaf must support (comma-separated; `none`).
    #[arg(long, value_delimiter = ',')]
    mandatory_proposals: Option<Vec<String>>,
    /// MLS: longest lifetime of a KeyPackage that may be added, seconds (0: no limit).
    #[arg(long)]
    max_kp_lifetime: Option<u64>,
    /// MLS: past epochs whose application messages are still decrypted.
    #[arg(long)]
    epoch_tolerance: Option<u8>,
    /// MLS: pad application messages to a multiple of this many octets.
    #[arg(long)]
    pad_to_size: Option<u16>,
    /// MLS: how far a sender's ratchet may skip ahead for one message.
    #[arg(long)]
    max_skipahead: Option<u32>,
    /// MLS: when members commit pending proposals: unspecified, immediate, random:MIN-MAX (ms).
    #[arg(long)]
    pending_proposals: Option<String>,
    /// MLS: how often members update their leaf: MIN,DEFAULT,MAX seconds (MAX 0: unlimited).
    #[arg(long)]
    leaf_update: Option<String>,
}

/// A list of code points (`none`: empty), decimal or 0x-hex.
fn code_points(flag: &str, l: &Option<Vec<String>>) -> Result<Option<Vec<u16>>> {
    let Some(l) = l else { return Ok(None) };
    let mut out = Vec::new();
    for x in l {
        let x = x.trim();
        if x.is_empty() || x == "none" {
            continue;
        }
        let v = match x.strip_prefix("0x") {
            Some(h) => u16::from_str_radix(h, 16),
            None => x.parse(),
        }
        .map_err(|_| anyhow::anyhow!("--{flag} {x:?}: a number from 0 to 65535 (or 0x...)"))?;
        out.push(v);
    }
    Ok(Some(out))
}

impl PolicyArgs {
    fn edit(&self) -> Result<PolicyEdit> {
        let max_active = self
            .max_active
            .as_deref()
            .map(max_active)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--max-active {e}"))?;
        Ok(PolicyEdit {
            delivery_receipts: self.delivery_receipts,
            read_receipts: self.read_receipts,
            expiry: self.expiry,
            expiry_min: self.expiry_min,
            expiry_max: self.expiry_max,
            expiry_default: self.expiry_default,
            max_image: self.max_image,
            max_audio: self.max_audio,
            max_video: self.max_video,
            max_attachment: self.max_attachment,
            forbid_types: (!self.forbid_types.is_empty()).then(|| self.forbid_types.clone()),
            permit_types: if self.permit_any_type {
                Some(Vec::new())
            } else {
                (!self.permit_types.is_empty()).then(|| self.permit_types.clone())
            },
            upload_location: self.upload_location.clone(),
            upload_domains: (!self.upload_domains.is_empty()).then(|| self.upload_domains.clone()),
            download_allow: self.download_allow.clone(),
            download_forbid: self.download_forbid.clone(),
            download_default: self.download_default.clone(),
            history: self.history,
            history_roles: self.history_roles.clone(),
            history_auto: self.history_auto,
            history_period: self.history_period,
            link_previews: self.link_previews,
            auto_link_previews: self.auto_link_previews,
            autodetect_links: self.autodetect_links,
            link_proxy_use: self.link_proxy_use,
            link_proxy: self.link_proxy.clone(),
            role: self.role,
            min_active: self.min_active,
            max_active,
            logging: self.logging,
            logging_clients: if self.no_logging_clients {
                Some(Vec::new())
            } else {
                (!self.logging_clients.is_empty()).then(|| self.logging_clients.clone())
            },
            logging_policy_uri: self.logging_policy.clone(),
            logging_machine_policy_uri: self.logging_machine_policy.clone(),
            add_bot: self.add_bot.as_ref().map(|name| Bot {
                name: name.clone(),
                description: self.bot_description.clone(),
                homepage: self.bot_homepage.clone(),
                local_client_bot: self.bot_local,
                bot_role_index: self.bot_role,
                can_target_message_in_group: self.bot_targeted,
                per_user_content: self.bot_per_user,
            }),
            remove_bots: self.remove_bots.clone(),
            operational: OperationalEdit {
                external_commits: self.external_commits,
                external_proposals: self.external_proposals,
                forbid_proposals: code_points("forbid-proposals", &self.forbid_proposals)?,
                forbid_credentials: code_points("forbid-credentials", &self.forbid_credentials)?,
                mandatory_extensions: code_points(
                    "mandatory-extensions",
                    &self.mandatory_extensions,
                )?,
                mandatory_proposals: code_points("mandatory-proposals", &self.mandatory_proposals)?,
                max_kp_lifetime: self.max_kp_lifetime,
                epoch_tolerance: self.epoch_tolerance,
                pad_to_size: self.pad_to_size,
                max_skipahead: self.max_skipahead,
                pending_proposals: self.pending_proposals.clone(),
                leaf_update: self.leaf_update.clone(),
            },
        })
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Upload fresh KeyPackages so that others can add you.
    Publish {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 5)]
        count: usize,
    },
}

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Register another device of the user of profile --from in this profile, and get it into
    /// all of that profile's rooms: it joins each by external commit (either library).
    Add {
        /// The profile of an existing device of the same user.
        #[arg(long)]
        from: String,
        /// This device's name.
        #[arg(long)]
        device: String,
        /// The MLS implementation this device runs: openmls or mls-rs.
        #[arg(long, default_value = "openmls", value_parser = mls_library)]
        mls: MlsLibrary,
    },
    /// Delete another device of this profile's user (lost, or replaced) at the home node and
    /// remove it from every room this device is in.
    Remove {
        /// The device's client URI (mimi://a.example/d/alice/phone) or its name (phone).
        device: String,
    },
}

/// `--mls`.
pub fn mls_library(s: &str) -> Result<MlsLibrary, String> {
    MlsLibrary::from_name(s).map_err(|e| e.to_string())
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn user(s: &str) -> Result<UserUri> {
    UserUri::parse(s)
        .with_context(|| format!("{s:?} is not a user URI (it looks like mimi://b.example/u/bob)"))
}

fn short(id: &MessageId) -> String {
    hex::encode(id.0).chars().take(12).collect()
}

/// `on` or `off`.
pub fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{s:?}: use on or off")),
    }
}

/// `mimi settings`: sets what is given, then shows them all.
pub async fn settings(
    ctx: &Ctx,
    changes: &[(mimi_client::device::Setting, Option<bool>)],
) -> Result<()> {
    let c = open(ctx).await?;
    for (s, v) in changes {
        if let Some(on) = v {
            c.set_setting(*s, *on).await?;
        }
    }
    let all = c.settings().await?;
    if ctx.json {
        let m: serde_json::Map<String, serde_json::Value> = all
            .iter()
            .map(|(s, on)| (s.key().to_owned(), json!(on)))
            .collect();
        print_json(&serde_json::Value::Object(m));
    } else {
        for (s, on) in all {
            println!("{} {}", s.key(), if on { "on" } else { "off" });
        }
    }
    Ok(())
}

async fn open(ctx: &Ctx) -> Result<Client> {
    Ok(Client::open(&ctx.dir).await?)
}

pub async fn register(
    ctx: &Ctx,
    home: HomeNode,
    user: String,
    device: String,
    nick: Option<String>,
    mls: MlsLibrary,
) -> Result<()> {
    let ca = std::fs::canonicalize(&home.ca)
        .with_context(|| format!("the CA file {}", home.ca.display()))?;
    let mut c = Client::register_with(
        &ctx.dir,
        HomeNode { ca, ..home },
        &user,
        &device,
        nick.as_deref(),
        None,
        mls,
    )
    .await?;
    let (stored, available) = c.publish_key_packages(5).await?;
    if ctx.json {
        print_json(&json!({
            "user": c.user().as_str(), "client": c.client().as_str(),
            "profile": ctx.dir, "key_packages": available, "mls": c.library().name(),
        }));
    } else {
        println!(
            "registered {} as {} on {} (profile {}); {stored} KeyPackages published",
            c.user(),
            c.client(),
            c.library().name(),
            ctx.dir.display()
        );
    }
    Ok(())
}

pub async fn device(ctx: &Ctx, cmd: DeviceCommand) -> Result<()> {
    let (from, device, mls) = match cmd {
        DeviceCommand::Add { from, device, mls } => (from, device, mls),
        DeviceCommand::Remove { device } => return remove_device(ctx, &device).await,
    };
    let other = Client::open(&ctx.home.join(&from)).await?;
    let home = other.home_node().await?;
    let token = other.token().await?;
    let user_name = other
        .user()
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let rooms = other.rooms();
    let mut c =
        Client::register_with(&ctx.dir, home, &user_name, &device, None, Some(&token), mls).await?;
    c.publish_key_packages(5).await?;
    drop(other);
    // Either library joins by external commit, as a new device of a listed user.
    let mut joined = Vec::new();
    for r in &rooms {
        let epoch = c
            .join_external(r)
            .await
            .with_context(|| format!("joining {r}"))?;
        joined.push(json!({ "room": r.as_str(), "epoch": epoch }));
    }
    if ctx.json {
        print_json(&json!({ "client": c.client().as_str(), "joined": joined }));
    } else {
        println!("added device {}", c.client());
        for j in &joined {
            println!("  joined {} at epoch {}", j["room"], j["epoch"]);
        }
    }
    Ok(())
}

async fn remove_device(ctx: &Ctx, device: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    let client = if device.starts_with("mimi://") {
        ClientUri::parse(device).with_context(|| {
            format!("{device:?} is not a client URI (it looks like mimi://a.example/d/alice/phone)")
        })?
    } else {
        c.user()
            .client(device)
            .with_context(|| format!("{device:?} is not a device name"))?
    };
    let r = c.remove_device(&client).await?;
    if ctx.json {
        print_json(&json!({
            "removed": client.as_str(),
            "proposed_by_hub": r.proposed_by_hub,
            "rooms": r.removed.iter().map(|(room, e)| json!({ "room": room, "epoch": e })).collect::<Vec<_>>(),
            "failed": r.failed.iter().map(|(room, e)| json!({ "room": room, "error": e })).collect::<Vec<_>>(),
        }));
    } else {
        println!("deleted device {client}");
        for (room, e) in &r.removed {
            println!("  removed from {room} (epoch {e})");
        }
        for (room, e) in &r.failed {
            println!("  not removed from {room}: {e}");
        }
    }
    if r.failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "the device is deleted at the home node but still in {} room(s)",
            r.failed.len()
        )
    }
}

pub async fn keys(ctx: &Ctx, cmd: KeysCommand) -> Result<()> {
    let KeysCommand::Publish { count } = cmd;
    let mut c = open(ctx).await?;
    let (stored, available) = c.publish_key_packages(count).await?;
    if ctx.json {
        print_json(&json!({ "stored": stored, "available": available }));
    } else {
        println!("{stored} KeyPackages published; {available} available on the node");
    }
    Ok(())
}

pub async fn rooms(ctx: &Ctx) -> Result<()> {
    let mut c = open(ctx).await?;
    c.sync(0).await?;
    let list: Vec<serde_json::Value> = c
        .rooms()
        .iter()
        .filter_map(|r| c.info(r).ok())
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect();
    if ctx.json {
        print_json(&json!({ "rooms": list }));
    } else if list.is_empty() {
        println!("no rooms yet (`mimi room create <name>`, or ask someone to add you)");
    } else {
        for i in &list {
            println!(
                "{}  {}  epoch {}  {} participants",
                i["room"].as_str().unwrap_or_default(),
                i["name"].as_str().unwrap_or("-"),
                i["epoch"],
                i["participants"].as_array().map_or(0, Vec::len)
            );
        }
    }
    Ok(())
}

fn print_info(ctx: &Ctx, c: &Client, room: &RoomUri) -> Result<()> {
    let info = c.info(room)?;
    if ctx.json {
        print_json(&serde_json::to_value(&info)?);
    } else {
        println!("room {}", info.room);
        if let Some(n) = &info.name {
            println!("  name: {n}");
        }
        println!("  hub: {}   epoch: {}", info.hub, info.epoch);
        println!(
            "  this device: {} on {} (epoch authenticator {})",
            c.client(),
            info.implementation,
            info.epoch_authenticator
        );
        println!("  providers: {}", info.providers.join(", "));
        for (u, role) in &info.participants {
            println!("  participant {u} (role {role})");
        }
        for d in &info.clients {
            println!("  device {d}");
        }
        for l in &info.policy_text {
            println!("  policy: {l}");
        }
        if let Some((multi, expires)) = info.join_link_policy {
            println!(
                "  join links: {}, {}",
                if multi { "multi-use" } else { "single-use" },
                if expires == 0 {
                    "no expiry".to_owned()
                } else {
                    format!("last {expires} s")
                }
            );
        }
        for l in &info.join_links {
            println!("  join link {l}");
        }
    }
    Ok(())
}

pub async fn room(ctx: &Ctx, cmd: RoomCommand) -> Result<()> {
    let mut c = open(ctx).await?;
    let done = |ctx: &Ctx, what: &str, room: &RoomUri, epoch: u64| {
        if ctx.json {
            print_json(&json!({ "done": what, "room": room.as_str(), "epoch": epoch }));
        } else {
            println!("{what}: {room} is at epoch {epoch}");
        }
    };
    match cmd {
        RoomCommand::Create {
            name,
            title,
            preset,
            suite,
        } => {
            let room = c
                .create_room_in(&name, title.as_deref(), &preset, suite)
                .await?;
            if ctx.json {
                print_json(&json!({ "room": room.as_str() }));
            } else {
                println!("created {room}");
            }
        }
        RoomCommand::Add { room, users, role } => {
            let room = c.resolve_room(&room)?;
            let users = users.iter().map(|u| user(u)).collect::<Result<Vec<_>>>()?;
            let e = c.add(&room, &users, role).await?;
            done(ctx, "added", &room, e);
        }
        RoomCommand::Remove { room, user: u } => {
            let room = c.resolve_room(&room)?;
            let e = c.remove(&room, &user(&u)?).await?;
            done(ctx, "removed", &room, e);
        }
        RoomCommand::Ban { room, user: u } => {
            let room = c.resolve_room(&room)?;
            let e = c.ban(&room, &user(&u)?).await?;
            done(ctx, "banned", &room, e);
        }
        RoomCommand::Role {
            room,
            user: u,
            role,
        } => {
            let room = c.resolve_room(&room)?;
            let e = c.set_role(&room, &user(&u)?, role).await?;
            done(ctx, "role set", &room, e);
        }
        RoomCommand::Link {
            room,
            multi_use,
            expires,
            revoke,
        } => {
            let room = c.resolve_room(&room)?;
            c.sync(0).await?;
            match revoke {
                Some(link) => {
                    let e = c.revoke_join_link(&room, &link).await?;
                    done(ctx, "join link revoked", &room, e);
                }
                None => {
                    let link = c.make_join_link(&room, multi_use, expires).await?;
                    if ctx.json {
                        print_json(&json!({ "room": room.as_str(), "link": link }));
                    } else {
                        println!("{link}");
                    }
                }
            }
        }
        RoomCommand::Leave { room } => {
            let room = c.resolve_room(&room)?;
            c.leave(&room).await?;
            if ctx.json {
                print_json(&json!({ "done": "leave proposed", "room": room.as_str() }));
            } else {
                println!("left {room} (a member commits your removal)");
            }
        }
        RoomCommand::Commit { room } => {
            let room = c.resolve_room(&room)?;
            c.sync(0).await?;
            match c.commit_pending(&room).await? {
                Some(e) => done(ctx, "committed", &room, e),
                None => {
                    if ctx.json {
                        print_json(&json!({ "done": "nothing to commit", "room": room.as_str() }));
                    } else {
                        println!("nothing to commit in {room}");
                    }
                }
            }
        }
        RoomCommand::Update { room } => {
            let room = c.resolve_room(&room)?;
            let e = c.self_update(&room).await?;
            done(ctx, "keys updated", &room, e);
        }
        RoomCommand::Info { room } => {
            let room = c.resolve_room(&room)?;
            c.sync(0).await?;
            print_info(ctx, &c, &room)?;
        }
        RoomCommand::Policy(p) => {
            let room = c.resolve_room(&p.room)?;
            let e = c.set_policy(&room, &p.edit()?).await?;
            done(ctx, "policy set", &room, e);
        }
        RoomCommand::Agree { room, with } => {
            let room = c.resolve_room(&room)?;
            drop(c);
            agree(ctx, &room, &with).await?;
        }
    }
    Ok(())
}

/// What two people must see alike about one message.
fn comparable(m: &MessageView) -> serde_json::Value {
    json!({
        "sender": m.sender, "text": m.text, "edits": m.edits, "deleted": m.deleted,
        "in_reply_to": m.in_reply_to.map(|i| hex::encode(i.0)),
        "reactions": m.reactions.iter().map(|r| json!([r.reaction, r.users])).collect::<Vec<_>>(),
    })
}

async fn agree(ctx: &Ctx, room: &RoomUri, with: &[String]) -> Result<()> {
    let mut names = vec![
        ctx.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ];
    names.extend(with.iter().cloned());
    let mut views = Vec::new();
    for n in &names {
        let mut c = Client::open(&profile_dir(&ctx.home, n)?)
            .await
            .with_context(|| format!("profile {n}"))?;
        c.sync(0).await?;
        let info = c.info(room).with_context(|| format!("profile {n}"))?;
        let msgs: std::collections::BTreeMap<String, serde_json::Value> = c
            .history(room)
            .await?
            .iter()
            .map(|m| (hex::encode(m.id.0), comparable(m)))
            .collect();
        views.push((n.clone(), info, msgs));
    }
    let mut problems = Vec::new();
    let (first, info0, msgs0) = &views[0];
    let mut common_total = 0;
    for (n, info, msgs) in &views[1..] {
        if info.epoch != info0.epoch {
            problems.push(format!(
                "{n} is at epoch {}, {first} at {}",
                info.epoch, info0.epoch
            ));
        }
        if info.participants != info0.participants {
            problems.push(format!("{n} and {first} list different participants"));
        }
        for (id, m) in msgs {
            if let Some(m0) = msgs0.get(id) {
                common_total += 1;
                if m != m0 {
                    problems.push(format!(
                        "message {}: {n} sees {m}, {first} sees {m0}",
                        &id[..12]
                    ));
                }
            }
        }
    }
    if ctx.json {
        print_json(
            &json!({ "room": room.as_str(), "profiles": names, "agree": problems.is_empty(),
                            "compared_messages": common_total, "problems": problems }),
        );
    } else if problems.is_empty() {
        println!(
            "{} agree on {room}: epoch {}, {} participants, {common_total} messages compared",
            names.join(", "),
            info0.epoch,
            info0.participants.len()
        );
    } else {
        for p in &problems {
            println!("disagree: {p}");
        }
    }
    if !problems.is_empty() {
        bail!("the views of {} disagree on {room}", names.join(", "));
    }
    Ok(())
}

/// What `send`, `reply`, `react`, `unreact`, `edit`, `delete` and `read` build.
pub enum Compose {
    /// Text or Markdown.
    Text {
        text: String,
        markdown: bool,
        /// Seconds until it disappears (`ROOM-policy-expiry`).
        expires: Option<u32>,
    },
    /// A reply to a message.
    Reply { to: String, text: String },
    /// A reaction to a message.
    React { to: String, emoji: String },
    /// Retract one's reaction to a message.
    Unreact { to: String, emoji: String },
    /// Replace one's message.
    Edit { id: String, text: String },
    /// Delete one's message.
    Delete { id: String },
    /// Read receipts (all messages of others when no ID is given).
    Read { ids: Vec<String> },
}

pub async fn compose(ctx: &Ctx, room: &str, what: Compose) -> Result<()> {
    let mut c = open(ctx).await?;
    let room = c.resolve_room(room)?;
    c.sync(0).await?;
    let content = match what {
        Compose::Text {
            text,
            markdown,
            expires,
        } => {
            let mut m = if markdown {
                MimiContent::markdown(salt(), &text)
            } else {
                MimiContent::text(salt(), &text)
            };
            if let Some(secs) = expires {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                m.expires = Some(mimi_content::Expiration {
                    relative: false,
                    time: u32::try_from(now.saturating_add(u64::from(secs))).unwrap_or(u32::MAX),
                });
            }
            m
        }
        Compose::Reply { to, text } => {
            let (id, _) = c.find_message(&room, &to).await?;
            MimiContent::reply(salt(), id, NestedPart::text(&text))
        }
        Compose::React { to, emoji } => {
            let (id, _) = c.find_message(&room, &to).await?;
            MimiContent::reaction(salt(), id, &emoji)
        }
        Compose::Unreact { to, emoji } => {
            let (target, _) = c.find_message(&room, &to).await?;
            let (rid, reaction) = c
                .own_reaction(&room, &target, &emoji)
                .await?
                .ok_or_else(|| anyhow::anyhow!("you have no {emoji} reaction on {to}"))?;
            MimiContent::unlike(salt(), rid, &reaction)
        }
        Compose::Edit { id, text } => {
            let (mid, old) = c.find_message(&room, &id).await?;
            MimiContent::edit(salt(), mid, &old, NestedPart::text(&text))
        }
        Compose::Delete { id } => {
            let (mid, old) = c.find_message(&room, &id).await?;
            MimiContent::delete(salt(), mid, &old)
        }
        Compose::Read { ids } => {
            let me = c.user().to_string();
            let targets: Vec<MessageId> = if ids.is_empty() {
                c.history(&room)
                    .await?
                    .into_iter()
                    .filter(|m| m.sender != me && !m.deleted)
                    .map(|m| m.id)
                    .collect()
            } else {
                let mut v = Vec::new();
                for i in &ids {
                    v.push(c.find_message(&room, i).await?.0);
                }
                v
            };
            if targets.is_empty() {
                bail!("nothing to mark as read in {room}");
            }
            let report = MessageStatusReport {
                statuses: targets
                    .into_iter()
                    .map(|message_id| PerMessageStatus {
                        message_id,
                        status: MessageStatus::READ,
                    })
                    .collect(),
            };
            ContentBuilder::new(salt(), NestedPart::status_report(&report)).build()
        }
    };
    let id = c.send(&room, content).await?;
    if ctx.json {
        print_json(&json!({ "room": room.as_str(), "id": hex::encode(id) }));
    } else {
        println!("sent {} to {room}", &hex::encode(id)[..12]);
    }
    Ok(())
}

/// `mimi send <room> --file PATH [description]`.
pub async fn send_file(ctx: &Ctx, room: &str, file: &Path, description: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    let room = c.resolve_room(room)?;
    c.sync(0).await?;
    let (id, part) = c.send_file(&room, file, description).await?;
    if ctx.json {
        print_json(&json!({
            "room": room.as_str(), "id": hex::encode(id), "url": part.url,
            "size": part.size, "filename": part.filename, "content_type": part.content_type,
        }));
    } else {
        println!(
            "sent {} ({} octets encrypted) to {room} as {}",
            part.filename,
            part.size,
            &hex::encode(id)[..12]
        );
    }
    Ok(())
}

/// `mimi download <room> <id> [--out PATH]`.
pub async fn download(
    ctx: &Ctx,
    room: &str,
    id: &str,
    out: Option<&Path>,
    via: Option<&str>,
) -> Result<()> {
    let via = via
        .map(|v| {
            DownloadPrivacyType::from_name(v)
                .ok_or_else(|| anyhow::anyhow!("--via {v:?}: use hubProxy, direct or ohttp"))
        })
        .transpose()?;
    let mut c = open(ctx).await?;
    let room = c.resolve_room(room)?;
    c.sync(0).await?;
    let path = c.download(&room, id, out, via).await?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if ctx.json {
        print_json(&json!({
            "room": room.as_str(), "path": path.display().to_string(), "size": size,
        }));
    } else {
        println!("wrote {} ({size} octets, hash checked)", path.display());
    }
    Ok(())
}

fn view_json(m: &MessageView) -> serde_json::Value {
    json!({
        "id": hex::encode(m.id.0),
        "sender": m.sender,
        "timestamp_ms": m.timestamp_ms,
        "text": m.text,
        "edits": m.edits,
        "deleted": m.deleted,
        "expires": m.expires.map(|e| json!({ "relative": e.relative, "time": e.time })),
        "in_reply_to": m.in_reply_to.map(|i| hex::encode(i.0)),
        "reactions": m.reactions.iter().map(|r| json!({ "reaction": r.reaction, "users": r.users })).collect::<Vec<_>>(),
        "statuses": m.statuses.iter().map(|(u, s)| (u.clone(), json!(s.name().unwrap_or("unknown")))).collect::<serde_json::Map<_, _>>(),
    })
}

fn print_views(room: &RoomUri, views: &[MessageView], viewer: &str) {
    println!("── {room}");
    for m in views {
        let time = m.timestamp_ms / 1000 % 86_400;
        let who = m.sender.rsplit('/').next().unwrap_or(&m.sender);
        let text = match (&m.text, m.deleted) {
            (_, true) => "(deleted)".to_owned(),
            (Some(t), _) => t.clone(),
            (None, _) => "(no text)".to_owned(),
        };
        let reply = m
            .in_reply_to
            .map(|r| format!(" ↳ reply to {}", short(&r)))
            .unwrap_or_default();
        let edited = if m.edits > 0 && !m.deleted {
            " (edited)"
        } else {
            ""
        };
        // ROOM-policy-expiry: when the message disappears.
        let expires = match m.expires {
            Some(e) if e.relative => format!(" (expires {} s after reading)", e.time),
            Some(e) => format!(" (expires at UNIX time {})", e.time),
            None => String::new(),
        };
        println!(
            "[{}] {:02}:{:02}:{:02} {who}: {text}{edited}{reply}{expires}",
            short(&m.id),
            time / 3600,
            time / 60 % 60,
            time % 60
        );
        for r in &m.reactions {
            let users: Vec<&str> = r
                .users
                .iter()
                .map(|u| u.rsplit('/').next().unwrap_or(u))
                .collect();
            println!(
                "      {} {} ({})",
                r.reaction,
                r.users.len(),
                users.join(", ")
            );
        }
        for (u, s) in m.statuses.iter().filter(|(u, _)| u.as_str() != viewer) {
            println!(
                "      {} by {}",
                s.name().unwrap_or("status"),
                u.rsplit('/').next().unwrap_or(u)
            );
        }
    }
}

pub async fn report_abuse(ctx: &Ctx, room: &str, id: &str, reason: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    c.sync(0).await?;
    let room = c.resolve_room(room)?;
    let mid = c.report(&room, id, reason).await?;
    if ctx.json {
        print_json(&json!({ "room": room.as_str(), "reported": mid.to_hex() }));
    } else {
        println!("reported {mid} in {room} to {}", room.provider());
    }
    Ok(())
}

pub async fn join(ctx: &Ctx, target: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    c.sync(0).await?;
    let (room, code) = mimi_client::device::parse_join_target(target)?;
    let epoch = match code {
        Some(code) => c.join_with_code(&room, code).await?,
        None => c.join_external(&room).await?,
    };
    if ctx.json {
        print_json(&json!({ "room": room.as_str(), "epoch": epoch }));
    } else {
        println!("joined {room} at epoch {epoch}");
    }
    Ok(())
}

pub async fn resync(ctx: &Ctx, room: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    let room = match c.resolve_room(room) {
        Ok(r) => r,
        Err(e) => mimi_wire::id::RoomUri::parse(room).map_err(|_| e)?,
    };
    let epoch = c.resync(&room).await?;
    if ctx.json {
        print_json(&json!({ "room": room.as_str(), "epoch": epoch, "resynced": true }));
    } else {
        println!("resynced {room} at epoch {epoch} as {}", c.client());
    }
    Ok(())
}

pub async fn sync(ctx: &Ctx, wait_ms: u64) -> Result<()> {
    let mut c = open(ctx).await?;
    let r = c.sync(wait_ms).await?;
    report(ctx, &r);
    Ok(())
}

fn report(ctx: &Ctx, r: &SyncReport) {
    if ctx.json {
        print_json(&serde_json::to_value(r).unwrap_or_default());
    } else {
        for j in &r.resynced {
            println!("resynced {j} (this device had missed part of it; it rejoined as itself)");
        }
        for j in &r.joined {
            println!("joined {j}");
        }
        for (room, e) in &r.commits {
            println!("{room} is at epoch {e}");
        }
        if !r.messages.is_empty() {
            println!("{} new messages", r.messages.len());
        }
        for (room, why) in &r.skipped {
            println!("note: {room}: {why}");
        }
        for (room, id, why) in &r.flagged {
            println!("flagged: {room}: message {id}: {why}");
        }
    }
}

pub async fn history(ctx: &Ctx, room: &str) -> Result<()> {
    let mut c = open(ctx).await?;
    c.sync(0).await?;
    let room = c.resolve_room(room)?;
    let views = c.history(&room).await?;
    // ROOM-policy-status: a room that requires read receipts gets them when the history is
    // shown.
    c.send_required_read_receipts(&room, &views).await?;
    if ctx.json {
        let info = c.info(&room).ok();
        let flagged: Vec<_> = c
            .flagged(&room)
            .await?
            .into_iter()
            .map(|(id, why)| json!({ "id": id.to_hex(), "reason": why }))
            .collect();
        print_json(&json!({
            "room": room.as_str(),
            "info": info,
            "messages": views.iter().map(view_json).collect::<Vec<_>>(),
            "flagged": flagged,
        }));
    } else {
        print_views(&room, &views, c.user().as_str());
        // PROTO-5.4.1-frank-flag
        for (id, why) in c.flagged(&room).await? {
            println!("flagged: message {id}: the hub's frank does not verify: {why}");
        }
    }
    Ok(())
}

pub async fn watch(ctx: &Ctx, room: &str, seconds: u64) -> Result<()> {
    let mut c = open(ctx).await?;
    let room = c.resolve_room(room)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut shown = 0;
    loop {
        let views = c.history(&room).await?;
        for m in views.iter().skip(shown) {
            if ctx.json {
                println!("{}", view_json(m));
            } else {
                print_views(&room, std::slice::from_ref(m), c.user().as_str());
            }
        }
        shown = views.len();
        if std::time::Instant::now() >= deadline {
            return Ok(());
        }
        c.sync(10_000).await?;
    }
}

/// The profile directory of `name` under `home`.
pub fn profile_dir(home: &Path, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("profile name {name:?}: use letters, digits, '-' or '_'");
    }
    Ok(home.join(name))
}
