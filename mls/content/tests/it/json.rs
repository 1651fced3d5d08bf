//! The JSON form (for `mimi content inspect` / `encode`) and diagnostic notation.

use mimi_content::json::{from_json, to_json};
use mimi_content::{MimiContent, cbor};
use serde_json::json;

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../interop-tests/vectors/content/{name}.cbor",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn every_vector_survives_json_and_value_forms() {
    for name in crate::vectors::MESSAGES {
        let bytes = vector(name);
        let c = MimiContent::decode(&bytes).unwrap();
        let j = to_json(&c);
        let text = serde_json::to_string_pretty(&j).unwrap();
        let back = from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.encode().unwrap(), bytes, "{name}");
        assert_eq!(cbor::to_vec(&c.to_value()), bytes, "{name}");
    }
}

#[test]
fn json_shape_is_readable() {
    let c = MimiContent::decode(&vector("original")).unwrap();
    let j = to_json(&c);
    assert_eq!(j["salt"], "5eed9406c2545547ab6f09f20a18b003");
    assert_eq!(j["nestedPart"]["disposition"], "render");
    assert_eq!(j["nestedPart"]["cardinality"], "single");
    assert_eq!(
        j["nestedPart"]["content"]["text"],
        "Hi everyone, we just shipped release 2.0. __Good  work__!"
    );
    assert_eq!(j["extensions"][0]["key"], 1);
    let diag = c.to_diagnostic();
    assert!(diag.starts_with("[h'5eed9406c2545547ab6f09f20a18b003', null, h'', null, null, {1: \"mimi://example.com/u/alice-smith\", 2: "), "{diag}");
}

#[test]
fn hand_written_json_encodes() {
    let j = json!({
        "salt": "00112233445566778899aabbccddeeff",
        "extensions": [
            {"key": 1, "value": "mimi://a.example/u/alice"},
            {"key": "x-trace", "value": {"map": [[{"bytes": "01"}, [1, -2, {"float": 1.5}, {"tag": 32, "value": "https://x"}]]]}}
        ],
        "nestedPart": {"cardinality": "single", "contentType": "text/plain;charset=utf-8", "content": {"text": "hello"}}
    });
    let c = from_json(&j).unwrap();
    let bytes = c.encode().unwrap();
    assert_eq!(MimiContent::decode(&bytes).unwrap(), c);
    assert_eq!(c.nested_part.as_text(), Some("hello"));
}

#[test]
fn json_errors_name_the_path() {
    let bad_salt = json!({"salt": "0011", "nestedPart": {"cardinality": "nullpart"}});
    let e = from_json(&bad_salt).unwrap_err();
    assert_eq!(e.path, "salt");
    assert!(e.problem.contains("16 octets"));
    let bad_part = json!({"salt": "00112233445566778899aabbccddeeff", "nestedPart": {"cardinality": "multi", "partSemantics": "chooseOne", "parts": [{"cardinality": "single", "contentType": "text/plain", "content": 5}, {"cardinality": "nullpart"}]}});
    let e = from_json(&bad_part).unwrap_err();
    assert_eq!(e.path, "nestedPart.parts[0].content");
    let e = from_json(&json!({"salt": "00112233445566778899aabbccddeeff", "nestedPart": {"disposition": "shouting", "cardinality": "nullpart"}})).unwrap_err();
    assert!(e.to_string().contains("shouting"), "{e}");
}
