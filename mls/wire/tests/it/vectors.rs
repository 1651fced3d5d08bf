//! The published vectors (interop-tests/vectors/protocol): the committed hex decodes to the
//! stated fields and re-encodes byte-exact. Regenerate with
//! `cargo test -p mimi-wire --test it -- --ignored regenerate_vectors`.

use crate::bodies::{decode_any, samples};
use mimi_wire::Limits;
use serde_json::{Value, json};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop-tests/vectors/protocol")
}

#[test]
fn published_vectors_decode_to_their_fields_and_re_encode() {
    let mut seen = 0;
    let mut names: Vec<_> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let st = v["struct"].as_str().unwrap();
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let (fields, again) = decode_any(st, &bytes, Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(fields, v["fields"], "{}", path.display());
        assert_eq!(again, bytes, "{}", path.display());
        seen += 1;
    }
    assert_eq!(seen, samples().len(), "one vector per sample body");
}

#[test]
#[ignore = "writes interop-tests/vectors/protocol; run by hand to regenerate"]
fn regenerate_vectors() {
    std::fs::create_dir_all(dir()).unwrap();
    for (name, st, description, bytes) in samples() {
        let (fields, _) = decode_any(st, &bytes, Limits::DEFAULT).unwrap();
        let v = json!({
            "name": name,
            "struct": st,
            "draft": "draft-ietf-mimi-protocol-06",
            "description": description,
            "fields": fields,
            "hex": hex::encode(&bytes),
        });
        let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
        std::fs::write(dir().join(format!("{name}.json")), text).unwrap();
    }
}
