//! `mimi content inspect` and `mimi content encode`.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use mimi_client::inspect::{self, InputForm};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ContentCommand {
    /// Decode MIMI content (or a message status report) and show every field and the message ID.
    Inspect(InspectArgs),
    /// Encode the JSON form (as `inspect --json` prints it) into MIMI content CBOR.
    Encode(EncodeArgs),
}

#[derive(Clone, Copy, ValueEnum, Default)]
enum Form {
    /// Hex text if the input is only hex digits and spaces, raw CBOR otherwise.
    #[default]
    Auto,
    /// Raw CBOR.
    Binary,
    /// Hex text.
    Hex,
}

#[derive(Clone, Copy, ValueEnum, Default)]
enum Kind {
    /// A MIMI content message (application/mimi-content).
    #[default]
    Content,
    /// A message status report (application/mimi-message-status).
    Status,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The file to read, or `-` for standard input.
    #[arg(default_value = "-")]
    input: String,
    /// How the input is written.
    #[arg(long, value_enum, default_value_t)]
    input_form: Form,
    /// What the input is.
    #[arg(long, value_enum, default_value_t)]
    kind: Kind,
    /// The sender URI for the message ID, if the message lacks extension key 1.
    #[arg(long)]
    sender: Option<String>,
    /// The room URI for the message ID, if the message lacks extension key 2.
    #[arg(long)]
    room: Option<String>,
    /// Print JSON (its `content` member is accepted by `mimi content encode`).
    #[arg(long)]
    json: bool,
    /// Print CBOR diagnostic notation only.
    #[arg(long, conflicts_with = "json")]
    diag: bool,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// The JSON file to read, or `-` for standard input.
    #[arg(default_value = "-")]
    input: String,
    /// Write the CBOR here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Write hex text instead of raw CBOR.
    #[arg(long)]
    hex: bool,
}

pub fn run(cmd: ContentCommand) -> Result<()> {
    match cmd {
        ContentCommand::Inspect(a) => inspect_cmd(a),
        ContentCommand::Encode(a) => encode_cmd(a),
    }
}

/// How an input is named in messages.
fn label(input: &str) -> &str {
    if input == "-" {
        "standard input"
    } else {
        input
    }
}

fn read_all(input: &str) -> Result<Vec<u8>> {
    if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(input).with_context(|| format!("reading {input}"))
    }
}

fn inspect_cmd(a: InspectArgs) -> Result<()> {
    let raw = read_all(&a.input)?;
    let form = match a.input_form {
        Form::Auto => InputForm::Auto,
        Form::Binary => InputForm::Binary,
        Form::Hex => InputForm::Hex,
    };
    let bytes =
        inspect::read_input(&raw, form).with_context(|| format!("reading {}", label(&a.input)))?;
    let mut stdout = std::io::stdout().lock();
    match a.kind {
        Kind::Status => {
            let report = inspect::inspect_status(&bytes).with_context(|| {
                format!(
                    "{} is not a message status report (draft-mahy-mimi-message-status-01)",
                    label(&a.input)
                )
            })?;
            if a.json {
                writeln!(stdout, "{:#}", inspect::status_to_json(&report))?;
            } else {
                write!(stdout, "{}", inspect::render_status(&report))?;
            }
        }
        Kind::Content => {
            let found = inspect::inspect_content(&bytes, a.sender.as_deref(), a.room.as_deref())
                .with_context(|| {
                    format!(
                        "{} is not valid MIMI content (draft-ietf-mimi-content-08 §4, §6)",
                        label(&a.input)
                    )
                })?;
            if a.json {
                writeln!(stdout, "{:#}", found.to_json())?;
            } else if a.diag {
                writeln!(stdout, "{}", found.content.to_diagnostic())?;
            } else {
                write!(stdout, "{}", found.render())?;
            }
        }
    }
    Ok(())
}

fn encode_cmd(a: EncodeArgs) -> Result<()> {
    let raw = read_all(&a.input)?;
    let text =
        String::from_utf8(raw).with_context(|| format!("{} is not UTF-8 text", label(&a.input)))?;
    let cbor =
        inspect::encode_json(&text).with_context(|| format!("encoding {}", label(&a.input)))?;
    let payload = if a.hex {
        let mut h = hex::encode(&cbor).into_bytes();
        h.push(b'\n');
        h
    } else {
        cbor
    };
    match a.out {
        Some(path) => {
            std::fs::write(&path, &payload).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if !a.hex && stdout.is_terminal() {
                bail!("refusing to write binary CBOR to a terminal; use --out FILE or --hex");
            }
            stdout
                .write_all(&payload)
                .context("writing standard output")
        }
    }
}
