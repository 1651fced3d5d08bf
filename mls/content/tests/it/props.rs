//! Property tests: every value round-trips; random and mutated bytes never panic a decoder;
//! ciborium (an independent CBOR implementation) reads our bytes as the same items.

use mimi_content::cbor::{self, Value};
use mimi_content::implied::MessageDerivedValues;
use mimi_content::status::MessageStatusReport;
use mimi_content::{
    Disposition, Expiration, ExtensionKey, Extensions, ExternalPart, MessageId, MimiContent,
    NestedPart, PartBody, PartSemantics,
};
use proptest::prelude::*;

fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 31]>().prop_map(|h| {
        let mut id = [1u8; 32];
        id[1..].copy_from_slice(&h);
        MessageId(id)
    })
}

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Undefined),
        prop_oneof![0u8..20, 32u8..=255].prop_map(Value::Simple),
        any::<f64>().prop_map(Value::Float),
        any::<f32>().prop_map(|f| Value::Float(f64::from(f))),
    ]
}

fn key_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..(1 << 53)).prop_map(Value::Unsigned),
        (0u64..((1 << 53) - 1)).prop_map(Value::Negative),
        ".{0,8}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ]
}

/// Extension values of at most `levels` more container levels.
fn ext_value(levels: u32) -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(levels, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                key_value().prop_map(|k| cbor::to_vec(&k)),
                inner.clone(),
                0..4
            )
            .prop_map(|m| Value::Map(
                m.into_iter()
                    .map(|(k, v)| (cbor::from_slice(&k, 1).unwrap(), v))
                    .collect()
            )),
            (33u64..1000, inner).prop_map(|(t, v)| Value::Tag(t, Box::new(v))),
        ]
    })
}

fn extensions() -> impl Strategy<Value = Extensions> {
    let key = prop_oneof![
        (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(ExtensionKey::Int),
        "[a-z]{1,10}".prop_map(ExtensionKey::Text),
    ];
    (
        proptest::option::of("mimi://[a-z.]{1,12}/u/[a-z]{1,8}"),
        proptest::collection::btree_map(key, ext_value(2), 0..4),
    )
        .prop_map(|(sender, others)| {
            let mut ext = Extensions::default();
            for (k, v) in others {
                if !matches!(k, ExtensionKey::Int(1 | 2)) {
                    ext.set(k, v);
                }
            }
            if let Some(s) = sender {
                ext.set(ExtensionKey::SENDER_URI, Value::Text(s));
            }
            ext
        })
}

fn external() -> impl Strategy<Value = ExternalPart> {
    (
        ".{0,10}",
        ".{0,20}",
        any::<u32>(),
        any::<u64>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::collection::vec(any::<u8>(), 0..12),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..32),
        ".{0,10}",
    )
        .prop_map(
            |(
                content_type,
                url,
                expires,
                size,
                enc_alg,
                key,
                nonce,
                hash_alg,
                content_hash,
                filename,
            )| {
                ExternalPart {
                    content_type,
                    url,
                    expires,
                    size,
                    enc_alg,
                    key,
                    nonce,
                    aad: vec![],
                    hash_alg,
                    content_hash,
                    description: String::new(),
                    filename,
                }
            },
        )
}

fn part() -> impl Strategy<Value = NestedPart> {
    let leaf = (
        any::<u8>(),
        "[a-z,]{0,5}",
        prop_oneof![
            Just(PartBody::Null),
            (".{0,12}", proptest::collection::vec(any::<u8>(), 0..24)).prop_map(
                |(content_type, content)| PartBody::Single {
                    content_type,
                    content
                }
            ),
            external().prop_map(PartBody::External),
        ],
    )
        .prop_map(|(d, language, body)| NestedPart {
            disposition: Disposition(d),
            language,
            body,
        });
    // Depth 3 of recursion keeps the root at level <= 4.
    leaf.prop_recursive(3, 32, 4, |inner| {
        (any::<u8>(), 0u8..3, proptest::collection::vec(inner, 2..5)).prop_map(|(d, s, parts)| {
            NestedPart {
                disposition: Disposition(d),
                language: String::new(),
                body: PartBody::Multi {
                    semantics: PartSemantics::from_code(u64::from(s)).unwrap(),
                    parts,
                },
            }
        })
    })
}

fn content() -> impl Strategy<Value = MimiContent> {
    (
        any::<[u8; 16]>(),
        proptest::option::of(message_id()),
        proptest::collection::vec(any::<u8>(), 0..10),
        proptest::option::of(
            (any::<bool>(), any::<u32>())
                .prop_map(|(relative, time)| Expiration { relative, time }),
        ),
        proptest::option::of(message_id()),
        extensions(),
        part(),
    )
        .prop_map(
            |(salt, replaces, topic_id, expires, in_reply_to, extensions, nested_part)| {
                MimiContent {
                    salt,
                    replaces,
                    topic_id,
                    expires,
                    in_reply_to,
                    extensions,
                    nested_part,
                }
            },
        )
}

fn vector_files() -> Vec<Vec<u8>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../interop-tests/vectors/content"
    );
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cbor") {
            out.push(std::fs::read(path).unwrap());
        }
    }
    out.sort();
    out
}

/// Converts ciborium's reading of the bytes into our `Value`, to compare the two decoders.
fn from_ciborium(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Integer(i) => {
            let i = i128::from(i);
            if i >= 0 {
                Value::Unsigned(i as u64)
            } else {
                Value::Negative((-1 - i) as u64)
            }
        }
        C::Bytes(b) => Value::Bytes(b),
        C::Text(s) => Value::Text(s),
        C::Array(a) => Value::Array(a.into_iter().map(from_ciborium).collect()),
        C::Map(m) => Value::Map(
            m.into_iter()
                .map(|(k, v)| (from_ciborium(k), from_ciborium(v)))
                .collect(),
        ),
        C::Tag(t, v) => Value::Tag(t, Box::new(from_ciborium(*v))),
        C::Bool(b) => Value::Bool(b),
        C::Null => Value::Null,
        C::Float(f) => Value::Float(f),
        other => panic!("unexpected ciborium item {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// CONTENT-6.1-deterministic: encode is a function of the value, and decode inverts it.
    #[test]
    fn content_round_trips(c in content()) {
        let bytes = c.encode().unwrap();
        let back = MimiContent::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        // An independent decoder agrees the bytes are one well-formed item.
        // An independent decoder agrees the bytes are one well-formed item (ciborium cannot read
        // unassigned simple values or undefined, which extensions may carry).
        match ciborium::from_reader::<ciborium::Value, _>(bytes.as_slice()) {
            Ok(theirs) => prop_assert!(matches!(theirs, ciborium::Value::Array(ref a) if a.len() == 7)),
            Err(_) => {
                let exotic = c.extensions.entries.iter().any(|(_, v)| {
                    let d = v.to_string();
                    d.contains("simple(") || d.contains("undefined")
                });
                prop_assert!(exotic, "ciborium refused our bytes");
            }
        }
    }

    /// The JSON form is lossless, and the generic-item view encodes to the same bytes.
    #[test]
    fn json_and_value_forms_agree(c in content()) {
        prop_assert_eq!(mimi_content::json::from_json(&mimi_content::json::to_json(&c)).unwrap(), c.clone());
        prop_assert_eq!(cbor::to_vec(&c.to_value()), c.encode().unwrap());
    }

    #[test]
    fn generic_values_round_trip_and_match_ciborium(v in ext_value(3)) {
        let bytes = cbor::to_vec(&v);
        prop_assert_eq!(cbor::from_slice(&bytes, 8).unwrap(), v.clone());
        // ciborium cannot read unassigned simple values or undefined; compare the rest.
        let diag = v.to_string();
        if !diag.contains("simple(") && !diag.contains("undefined") {
            let theirs: ciborium::Value = ciborium::from_reader(bytes.as_slice()).unwrap();
            prop_assert_eq!(from_ciborium(theirs), v);
        }
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = MimiContent::decode(&b);
        let _ = MessageStatusReport::decode(&b);
        let _ = MessageDerivedValues::decode(&b);
        let _ = cbor::from_slice(&b, 16);
    }

    #[test]
    fn mutated_vectors_never_panic(i in 0usize..16, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let files = vector_files();
        let mut b = files[i % files.len()].clone();
        for (pos, byte) in flips {
            let n = b.len();
            b[pos % n] ^= byte;
        }
        let _ = MimiContent::decode(&b);
        let _ = MessageStatusReport::decode(&b);
        let _ = MessageDerivedValues::decode(&b);
        let n = b.len();
        let _ = MimiContent::decode(&b[..cut % (n + 1)]);
    }
}
