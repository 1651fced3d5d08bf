//! Strict decoding: every malformed input is a typed error at the right place, never a panic.

use mimi_content::cbor::{Encoder, Value};
use mimi_content::{
    DecodeErrorKind as K, EncodeError, ExtensionKey, Limits, MimiContent, NestedPart, PartBody,
    PartSemantics,
};

fn original() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../interop-tests/vectors/content/original.cbor"
    ))
    .unwrap()
}

fn kind(b: &[u8]) -> K {
    MimiContent::decode(b).unwrap_err().kind
}

#[test]
fn every_truncation_is_an_error() {
    let b = original();
    for n in 0..b.len() {
        assert!(
            MimiContent::decode(&b[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

/// CONTENT-4-trailing
#[test]
fn trailing_bytes_are_refused() {
    let mut b = original();
    b.push(0x00);
    assert_eq!(kind(&b), K::TrailingBytes { count: 1 });
}

#[test]
fn wrong_top_level_shapes() {
    assert!(matches!(
        kind(&[0x86]),
        K::WrongArrayLength { found: 6, .. } | K::Truncated
    ));
    let mut b = original();
    b[0] = 0x88; // array of 8
    assert!(matches!(kind(&b), K::WrongArrayLength { found: 8, .. }));
    assert!(matches!(kind(&[0xa0]), K::UnexpectedType { .. }));
    let mut b = original();
    b[1] = 0x4f; // salt of 15 octets
    assert!(matches!(
        kind(&b),
        K::WrongSize {
            expected: 16,
            found: 15
        }
    ));
}

/// CONTENT-9.1-hash-alg
#[test]
fn unknown_hash_algorithm_in_a_message_id_is_refused() {
    let reply = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../interop-tests/vectors/content/reply.cbor"
    ))
    .unwrap();
    let mut b = reply.clone();
    assert_eq!(&b[21..23], &[0x58, 0x20]);
    b[23] = 0x02;
    assert_eq!(kind(&b), K::UnknownHashAlgorithm(2));
}

fn content_with(part: NestedPart) -> MimiContent {
    MimiContent::text([7; 16], "x").with_part(part)
}

trait WithPart {
    fn with_part(self, p: NestedPart) -> Self;
}
impl WithPart for MimiContent {
    fn with_part(mut self, p: NestedPart) -> Self {
        self.nested_part = p;
        self
    }
}

fn nest(depth: usize) -> NestedPart {
    let mut p = NestedPart::text("leaf");
    for _ in 1..depth {
        p = NestedPart::alternatives(vec![p, NestedPart::text("alt")]);
    }
    p
}

/// CONTENT-6.3-part-depth
#[test]
fn nested_parts_deeper_than_four_levels() {
    let ok = content_with(nest(4));
    MimiContent::decode(&ok.encode().unwrap()).unwrap();
    let deep = content_with(nest(5));
    assert_eq!(
        deep.encode(),
        Err(EncodeError::TooDeep {
            what: "NestedPart",
            limit: 4
        })
    );
    let relaxed = Limits {
        max_part_depth: 5,
        ..Limits::DRAFT
    };
    let bytes = deep.encode_with(&relaxed).unwrap();
    assert!(matches!(kind(&bytes), K::TooDeep { limit: 4, .. }));
    assert_eq!(MimiContent::decode_with(&bytes, &relaxed).unwrap(), deep);
}

/// CONTENT-9.1-parts
#[test]
fn more_than_1024_parts() {
    let parts = |n: usize| {
        NestedPart::multi(
            mimi_content::Disposition::RENDER,
            PartSemantics::ProcessAll,
            (0..n).map(|_| NestedPart::text("p")).collect(),
        )
    };
    MimiContent::decode(&content_with(parts(1023)).encode().unwrap()).unwrap();
    let big = content_with(parts(1024)); // 1025 parts with the root
    assert!(matches!(
        big.encode(),
        Err(EncodeError::LimitExceeded {
            what: "body parts",
            ..
        })
    ));
    let bytes = big
        .encode_with(&Limits {
            max_parts: 2000,
            ..Limits::DRAFT
        })
        .unwrap();
    assert!(matches!(
        kind(&bytes),
        K::LimitExceeded {
            what: "body parts",
            limit: 1024,
            found: 1025
        }
    ));
}

/// CONTENT-9.1-topic
#[test]
fn topic_longer_than_4096() {
    let mut c = MimiContent::text([1; 16], "t");
    c.topic_id = vec![b'a'; 4097];
    assert!(c.encode().is_err());
    let bytes = c
        .encode_with(&Limits {
            max_topic_id: 5000,
            ..Limits::DRAFT
        })
        .unwrap();
    assert!(matches!(
        kind(&bytes),
        K::LimitExceeded {
            what: "topicId",
            ..
        }
    ));
}

/// Encodes a body part by hand, to produce shapes the model cannot express.
fn raw_part(build: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(7);
    e.bytes(&[0; 16]);
    e.null();
    e.bytes(&[]);
    e.null();
    e.null();
    e.value(&Value::Map(vec![]));
    build(&mut e);
    e.into_bytes()
}

/// CONTENT-4.4-cardinality, CONTENT-9.1-semantics
#[test]
fn unknown_structure_in_parts() {
    let b = raw_part(|e| {
        e.array(3);
        e.uint(1);
        e.text("");
        e.uint(4);
    });
    assert_eq!(
        kind(&b),
        K::Unknown {
            what: "cardinality",
            value: 4
        }
    );
    let b = raw_part(|e| {
        e.array(5);
        e.uint(1);
        e.text("");
        e.uint(3);
        e.uint(3);
        e.array(0);
    });
    assert_eq!(
        kind(&b),
        K::Unknown {
            what: "partSemantics",
            value: 3
        }
    );
    let b = raw_part(|e| {
        e.array(5);
        e.uint(1);
        e.text("");
        e.uint(3);
        e.uint(0);
        e.array(1);
        e.array(3);
        e.uint(1);
        e.text("");
        e.uint(0);
    });
    assert!(matches!(kind(&b), K::WrongArrayLength { found: 1, .. }));
    let b = raw_part(|e| {
        e.array(5);
        e.uint(1);
        e.text("");
        e.uint(0);
        e.text("");
        e.text("");
    });
    assert!(matches!(kind(&b), K::WrongArrayLength { found: 5, .. }));
    let b = raw_part(|e| {
        e.array(3);
        e.uint(256);
        e.text("");
        e.uint(0);
    });
    assert!(matches!(kind(&b), K::OutOfRange { value: 256, .. }));
    let b = raw_part(|e| {
        e.array(5);
        e.uint(1);
        e.text("");
        e.uint(1);
        e.text("text/plain");
        e.text("content must be a byte string");
    });
    assert!(matches!(
        kind(&b),
        K::UnexpectedType {
            expected: "byte string",
            found: "text string"
        }
    ));
    assert_eq!(
        MimiContent::text([0; 16], "x")
            .with_part(NestedPart::multi(
                mimi_content::Disposition::RENDER,
                PartSemantics::ChooseOne,
                vec![NestedPart::text("one")]
            ))
            .encode(),
        Err(EncodeError::TooFewParts(1))
    );
}

/// CONTENT-6.1-deterministic: non-deterministic encodings of valid values are refused.
#[test]
fn non_deterministic_encodings() {
    let b = original();
    // Disposition 1 written as 0x1801.
    let pos = b.windows(3).position(|w| w == [0x85, 0x01, 0x60]).unwrap();
    let mut long = b[..pos + 1].to_vec();
    long.extend_from_slice(&[0x18, 0x01]);
    long.extend_from_slice(&b[pos + 2..]);
    assert!(matches!(kind(&long), K::NotDeterministic(_)));
    // Extension keys 2 before 1.
    let mut e = Encoder::new();
    e.array(7);
    e.bytes(&[0; 16]);
    e.null();
    e.bytes(&[]);
    e.null();
    e.null();
    e.head(5, 2);
    e.uint(2);
    e.text("mimi://r");
    e.uint(1);
    e.text("mimi://s");
    e.array(3);
    e.uint(1);
    e.text("");
    e.uint(0);
    assert!(matches!(kind(&e.into_bytes()), K::NotDeterministic(_)));
    // Indefinite-length salt.
    let mut b2 = vec![0x87, 0x5f, 0x50];
    b2.extend_from_slice(&b[2..]);
    assert!(matches!(
        kind(&b2),
        K::IndefiniteLength | K::UnexpectedType { .. } | K::Reserved(_)
    ));
}

/// CONTENT-6.2-keys, CONTENT-4.3-uri-type
#[test]
fn extension_key_rules() {
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions
        .set(ExtensionKey::Text(String::new()), Value::Null);
    assert!(matches!(c.encode(), Err(EncodeError::InvalidKey { .. })));
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions
        .set(ExtensionKey::Text("k".repeat(256)), Value::Null);
    assert!(matches!(c.encode(), Err(EncodeError::InvalidKey { .. })));
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions.set(ExtensionKey::Int(1 << 53), Value::Null);
    assert!(matches!(c.encode(), Err(EncodeError::InvalidKey { .. })));
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions
        .set(ExtensionKey::SENDER_URI, Value::Unsigned(5));
    assert!(matches!(c.encode(), Err(EncodeError::InvalidKey { .. })));
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions
        .entries
        .push((ExtensionKey::Int(-5), Value::Null));
    c.extensions
        .entries
        .push((ExtensionKey::Int(-5), Value::Null));
    assert!(matches!(c.encode(), Err(EncodeError::DuplicateKey(_))));
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions.set(
        ExtensionKey::Int(300),
        Value::Map(vec![(Value::Float(1.0), Value::Null)]),
    );
    assert!(matches!(c.encode(), Err(EncodeError::InvalidKey { .. })));
    // The same refusals on the decode side.
    let mut e = Encoder::new();
    e.value(&Value::Map(vec![(Value::Unsigned(1), Value::Unsigned(5))]));
    let ext = e.into_bytes();
    let mut b = vec![0x87, 0x50];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[0xf6, 0x40, 0xf6, 0xf6]);
    b.extend_from_slice(&ext);
    b.extend_from_slice(&[0x83, 0x01, 0x60, 0x00]);
    assert!(matches!(
        kind(&b),
        K::UnexpectedType {
            expected: "text string (senderUri / roomUri)",
            ..
        }
    ));
}

/// Fact sheet A.18 (content-08 §6.3): the draft's 4-level extensions map, bytes computed by the
/// fact sheet; accepted at 4 levels, refused at 5.
#[test]
fn extension_depth_example() {
    let deep_array = Value::Array(vec![
        Value::Array(vec![
            Value::Bytes(vec![0x12, 0x34]),
            Value::Tag(32, Box::new(Value::Text("http://example.com".into()))),
        ]),
        Value::Array(vec![Value::Bytes(vec![0x34, 0x56]), Value::Unsigned(5771)]),
    ]);
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions.set(
        ExtensionKey::SENDER_URI,
        Value::Text("mimi://a.example/u/alice".into()),
    );
    c.extensions.set(ExtensionKey::Int(256), deep_array.clone());
    let bytes = c.encode().unwrap();
    let want = "a20178186d696d693a2f2f612e6578616d706c652f752f616c6963651901008282421234d82072687474703a2f2f6578616d706c652e636f6d8242345619168b";
    assert!(hex::encode(&bytes).contains(want));
    assert_eq!(MimiContent::decode(&bytes).unwrap(), c);
    let mut too_deep = c.clone();
    too_deep
        .extensions
        .set(ExtensionKey::Int(256), Value::Array(vec![deep_array]));
    assert!(matches!(
        too_deep.encode(),
        Err(EncodeError::TooDeep { .. })
    ));
    let bytes = too_deep
        .encode_with(&Limits {
            max_extension_depth: 5,
            ..Limits::DRAFT
        })
        .unwrap();
    assert!(matches!(kind(&bytes), K::TooDeep { limit: 4, .. }));
}

/// Fact sheet A.17 (protocol-06 §5.4.1.1): the franking extensions map.
#[test]
fn franking_extensions_map_bytes() {
    let mut c = MimiContent::text([0; 16], "x");
    c.extensions.set(
        ExtensionKey::ROOM_URI,
        Value::Text("mimi://hub.example/r/Rl33FWLCYWOwxHrYnpWDQg".into()),
    );
    c.extensions.set(
        ExtensionKey::SENDER_URI,
        Value::Text("mimi://b.example/u/alice".into()),
    );
    let bytes = c.encode().unwrap();
    let want = "a20178186d696d693a2f2f622e6578616d706c652f752f616c69636502782b6d696d693a2f2f6875622e6578616d706c652f722f526c333346574c4359574f77784872596e7057445167";
    assert!(hex::encode(bytes).contains(want));
}

#[test]
fn errors_name_the_place() {
    let mut b = original();
    b[0] = 0x88;
    let e = MimiContent::decode(&b).unwrap_err();
    assert_eq!(e.offset, 0);
    assert_eq!(e.field, "mimiContent");
    assert!(e.to_string().contains("7-element"), "{e}");
    let single = match MimiContent::decode(&original()).unwrap().nested_part.body {
        PartBody::Single { content_type, .. } => content_type,
        _ => unreachable!(),
    };
    assert_eq!(single, "text/markdown;variant=GFM-MIMI");
}

#[test]
fn oversized_message_is_refused_before_parsing() {
    let limits = Limits {
        max_message_size: 100,
        ..Limits::DRAFT
    };
    let e = MimiContent::decode_with(&original(), &limits).unwrap_err();
    assert!(matches!(
        e.kind,
        K::LimitExceeded {
            what: "message size",
            limit: 100,
            found: 193
        }
    ));
}
