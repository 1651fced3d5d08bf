//! `mimi content inspect|encode` against the content draft's own examples
//! (interop-tests/vectors/content): the ID printed is the one the draft states in its `.edn`
//! file, and JSON written by `inspect --json` encodes back to the same bytes.

use mimi_content::MessageId;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const MESSAGES: [&str; 14] = [
    "original",
    "reply",
    "reaction",
    "mention",
    "mention-html",
    "edit",
    "delete",
    "unlike",
    "expiring",
    "attachment",
    "conferencing",
    "multipart-1",
    "multipart-2",
    "multipart-3",
];

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop-tests/vectors/content")
}

fn mimi(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mimi"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// The ID stated in the header of the draft's `.edn` file (an independent source).
fn stated_id(name: &str) -> String {
    let edn = std::fs::read_to_string(vectors().join(format!("{name}.edn"))).unwrap();
    let start = edn.find("message ID = h'").unwrap() + "message ID = h'".len();
    let digits: String = edn[start..]
        .chars()
        .take_while(|c| *c != '\'')
        .filter(char::is_ascii_hexdigit)
        .collect();
    MessageId::from_hex(&digits).unwrap().to_hex()
}

#[test]
fn inspect_states_the_drafts_message_ids_and_encode_round_trips() {
    for name in MESSAGES {
        let path = vectors().join(format!("{name}.cbor"));
        let bytes = std::fs::read(&path).unwrap();
        let out = mimi(
            &["content", "inspect", "--json", path.to_str().unwrap()],
            b"",
        );
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["messageId"], stated_id(name), "{name}");
        assert_eq!(report["size"], bytes.len(), "{name}");

        // The whole report is accepted by `encode` and gives the same bytes back.
        let back = mimi(&["content", "encode"], &out.stdout);
        assert!(
            back.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&back.stderr)
        );
        assert_eq!(back.stdout, bytes, "{name}: encode(inspect(x)) != x");
    }
}

#[test]
fn human_output_names_fields_and_the_id() {
    let path = vectors().join("original.cbor");
    let out = mimi(&["content", "inspect", path.to_str().unwrap()], b"");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&stated_id("original")), "{text}");
    assert!(text.contains("from the message's extensions"), "{text}");
    assert!(text.contains("text/markdown"), "{text}");
}

#[test]
fn hex_input_on_stdin_is_read_as_hex() {
    let bytes = std::fs::read(vectors().join("reply.cbor")).unwrap();
    let spaced: String = hex::encode(&bytes)
        .as_bytes()
        .chunks(32)
        .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let out = mimi(&["content", "inspect", "--json", "-"], spaced.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["messageId"], stated_id("reply"));
}

#[test]
fn truncated_content_is_a_clear_error_with_the_offset() {
    let bytes = std::fs::read(vectors().join("original.cbor")).unwrap();
    let out = mimi(&["content", "inspect", "-"], &bytes[..bytes.len() - 3]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not valid MIMI content"), "{err}");
    assert!(err.contains("input ends early"), "{err}");
    assert!(err.contains("at byte"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = std::fs::read(vectors().join("original.cbor")).unwrap();
    bytes.push(0);
    let out = mimi(
        &["content", "inspect", "--input-form", "binary", "-"],
        &bytes,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("after the end of the item"), "{err}");
}

#[test]
fn message_id_needs_uris_when_the_message_has_none() {
    // The original example without its extensions: the ID now needs --sender and --room.
    let out = mimi(
        &[
            "content",
            "inspect",
            "--json",
            vectors().join("original.cbor").to_str().unwrap(),
        ],
        b"",
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["content"]["extensions"] = serde_json::json!([]);
    let bare = mimi(
        &["content", "encode"],
        report["content"].to_string().as_bytes(),
    );
    assert!(
        bare.status.success(),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );

    let without = mimi(&["content", "inspect", "--json", "-"], &bare.stdout);
    let without: Value = serde_json::from_slice(&without.stdout).unwrap();
    assert_eq!(without["messageId"], Value::Null);

    let sender = "mimi://example.com/u/alice-smith";
    let room = "mimi://example.com/r/engineering_team";
    let with = mimi(
        &[
            "content", "inspect", "--json", "--sender", sender, "--room", room, "-",
        ],
        &bare.stdout,
    );
    let with: Value = serde_json::from_slice(&with.stdout).unwrap();
    let expected = mimi_content::message_id::of_bytes(&bare.stdout, Some(sender), Some(room))
        .unwrap()
        .to_hex();
    assert_eq!(with["messageId"], expected);
    assert_eq!(
        with["messageIdInputs"]["sender"]["from"],
        "given on the command line"
    );
    assert_ne!(
        with["messageId"],
        stated_id("original"),
        "the bytes differ, so must the ID"
    );
}

#[test]
fn encode_refuses_json_that_is_not_content() {
    let out = mimi(&["content", "encode", "--hex"], br#"{"salt": "00"}"#);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("salt"), "{err}");
    let out = mimi(&["content", "encode"], b"not json");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("not JSON"));
}

#[test]
fn status_reports_are_decoded() {
    let path = vectors().join("status.cbor");
    let out = mimi(
        &[
            "content",
            "inspect",
            "--kind",
            "status",
            "--json",
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["read", "read", "unread", "expired"]);
}
