use mimi_wire::id::{
    ClientUri, Kind, MimiUri, ProviderId, RoomUri, UserUri, path_decode, path_encode,
};

#[test]
fn wire_id_normal_form() {
    let u = UserUri::parse("MIMI://A.Example/u/Alice%2d%7e%2F").unwrap();
    assert_eq!(u.as_str(), "mimi://a.example/u/Alice-~%2F");
    assert_eq!(u.provider().as_str(), "a.example");
    assert_eq!(u, UserUri::parse("mimi://a.example/u/Alice-~%2f").unwrap());
    let p = MimiUri::parse("mimi://a.example").unwrap();
    assert_eq!(p.kind(), Kind::Provider);
    assert_eq!(
        ProviderId::parse("B.EXAMPLE").unwrap().uri(),
        MimiUri::parse("mimi://b.example/").unwrap()
    );
}

#[test]
fn wire_id_client_user() {
    let c = ClientUri::parse("mimi://b.example/d/bob/phone").unwrap();
    assert_eq!(c.user().unwrap().as_str(), "mimi://b.example/u/bob");
    assert_eq!(
        ClientUri::parse("mimi://b.example/d/ClientB1")
            .unwrap()
            .user(),
        None
    );
    let u = UserUri::parse("mimi://b.example/u/bob").unwrap();
    assert_eq!(
        u.client("laptop").unwrap().as_str(),
        "mimi://b.example/d/bob/laptop"
    );
    let r = RoomUri::parse("mimi://a.example/r/clubhouse").unwrap();
    assert_eq!(r.group().as_str(), "mimi://a.example/g/clubhouse");
}

#[test]
fn wire_id_errors_say_what_is_wrong() {
    let cases = [
        ("a.example/u/alice", "no \"mimi://\""),
        ("https://a.example/u/alice", "scheme"),
        ("mimi://a.example:443/u/alice", "port"),
        ("mimi://bob@a.example/u/alice", "user info"),
        ("mimi://a..example/u/alice", "empty label"),
        ("mimi://-a.example/u/alice", "hyphen"),
        ("mimi://a_b.example/u/alice", "letter, digit or hyphen"),
        ("mimi://a.example/x/alice", "type \"x\""),
        ("mimi://a.example/u/", "empty path segment"),
        ("mimi://a.example/u/al ice", "percent-encoded"),
        ("mimi://a.example/u/a%zz", "two hex digits"),
        ("mimi://a.example/u/alice?x", "query"),
        ("mimi://a.example/u/a/b", "path segment(s)"),
        ("mimi://a.example/r/clubhouse", "room URI"),
        ("mimi://192.0.2.1/u/alice", "IP address"),
        ("mimi://[2001:db8::1]/u/alice", "port"),
    ];
    for (input, expected) in cases {
        let e = UserUri::parse(input).unwrap_err().to_string();
        assert!(e.contains(expected), "{input}: {e}");
        assert!(e.contains("MIMI user URI"), "{input}: {e}");
    }
    assert!(MimiUri::parse(&format!("mimi://a.example/u/{}", "a".repeat(3000))).is_err());
}

#[test]
fn wire_id_path_encoding_round_trips() {
    let r = RoomUri::parse("mimi://a.example/r/club%20house").unwrap();
    let seg = path_encode(r.as_str());
    assert_eq!(seg, "mimi%3A%2F%2Fa.example%2Fr%2Fclub%2520house");
    assert!(!seg.contains('/'));
    let back = RoomUri::parse(&path_decode(&seg).unwrap()).unwrap();
    assert_eq!(back, r);
    // Lower-case escapes are accepted on the way in.
    assert_eq!(
        path_decode("mimi%3a%2f%2fa.example%2fr%2fx").unwrap(),
        "mimi://a.example/r/x"
    );
    assert!(path_decode("mimi://a.example/r/x").is_err());
    assert!(path_decode("%G0").is_err());
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics_and_normal_forms_are_fixed_points(s in ".{0,80}") {
        if let Ok(u) = MimiUri::parse(&s) {
            let again = MimiUri::parse(u.as_str()).unwrap();
            proptest::prop_assert_eq!(again, u);
        }
        let _ = path_decode(&s);
    }
}

#[test]
fn wire_id_normal_on_wire() {
    use mimi_wire::codec::Body;
    use mimi_wire::consent::ConsentScope;
    let good = ConsentScope {
        requester_uri: UserUri::parse("mimi://a.example/u/alice").unwrap(),
        target_uri: UserUri::parse("mimi://b.example/u/bob").unwrap(),
        room_id: None,
    };
    let mut bytes = good.encode();
    assert!(ConsentScope::decode(&bytes).is_ok());
    // "mimi://A.example/..." on the wire: refused, naming the normal form.
    bytes[8] = b'A';
    let e = ConsentScope::decode(&bytes).unwrap_err();
    assert!(e.to_string().contains("normal form"), "{e}");
    assert!(e.to_string().contains("mimi://a.example/u/alice"), "{e}");
    assert_eq!(e.offset, 0);
}

#[test]
fn wire_id_pseudonym_and_kinds() {
    use mimi_wire::id::{GroupUri, PseudonymUri};
    let p = PseudonymUri::parse("mimi://a.example/p/3b52249d-68f9-45ce-8bf5-c799f3cad7ec").unwrap();
    assert_eq!(p.provider().as_str(), "a.example");
    assert_eq!(p.as_uri().kind(), Kind::Pseudonym);
    assert!(PseudonymUri::parse("mimi://a.example/u/alice").is_err());
    let g: GroupUri = "mimi://a.example/g/clubhouse".parse().unwrap();
    assert!(UserUri::try_from(g.as_uri().clone()).is_err());
    // A one-label provider (tests, local.invalid-style setups) is a DNS name.
    assert!(UserUri::parse("mimi://localhost/u/alice").is_ok());
    assert!(ProviderId::parse("10.0.0.1").is_err());
}

#[test]
fn wire_id_serde_and_path_segments() {
    let r = RoomUri::parse("mimi://A.example/r/club%2fhouse").unwrap();
    let seg = r.to_path_segment();
    assert_eq!(seg, "mimi%3A%2F%2Fa.example%2Fr%2Fclub%252Fhouse");
    assert_eq!(RoomUri::from_path_segment(&seg).unwrap(), r);
    // Another kind in the path is refused with the wanted kind named.
    let u = UserUri::parse("mimi://a.example/u/alice").unwrap();
    let e = RoomUri::from_path_segment(&u.to_path_segment()).unwrap_err();
    assert!(e.to_string().contains("room URI"), "{e}");
    assert!(RoomUri::from_path_segment("mimi://a.example/r/x").is_err());
    // JSON holds the normal form; reading it back normalises and checks the kind.
    let json = serde_json::to_string(&u).unwrap();
    assert_eq!(json, "\"mimi://a.example/u/alice\"");
    let back: UserUri = serde_json::from_str("\"MIMI://A.EXAMPLE/u/alice\"").unwrap();
    assert_eq!(back, u);
    assert!(serde_json::from_str::<UserUri>("\"mimi://a.example/r/x\"").is_err());
    let p: ProviderId = serde_json::from_str("\"B.example\"").unwrap();
    assert_eq!(p.as_str(), "b.example");
    let any: MimiUri = u.clone().into();
    assert_eq!(any.to_path_segment(), u.to_path_segment());
}
