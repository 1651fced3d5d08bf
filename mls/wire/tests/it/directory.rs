use mimi_wire::directory::{Directory, DirectoryError, Endpoint};

#[test]
fn wire_5_1_directory_templates_expand_and_parse() {
    let d = Directory::for_base("https://a.example/v1/");
    let json = d.to_json();
    let back = Directory::from_json(&json).unwrap();
    assert_eq!(back, d);
    let url = d.expand(Endpoint::Notify, "mimi://a.example/r/clubhouse");
    assert_eq!(
        url,
        "https://a.example/v1/notify/mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse"
    );
    assert_eq!(
        d.extract(Endpoint::Notify, &url).unwrap(),
        "mimi://a.example/r/clubhouse"
    );
    for e in Endpoint::ALL {
        let url = d.expand(e, "mimi://b.example/u/bob");
        assert_eq!(
            d.extract(e, &url).unwrap(),
            "mimi://b.example/u/bob",
            "{e:?}"
        );
    }
    assert!(matches!(
        d.extract(Endpoint::Update, "https://a.example/v1/notify/x"),
        Err(DirectoryError::NoMatch { .. })
    ));
}

#[test]
fn the_drafts_own_example_is_refused_with_reasons() {
    // The draft's example is not JSON (a missing colon) ...
    let draft = r#"{ "keyMaterial": "https://mimi.example.com/v1/keyMaterial/{targetUser}",
      "proxyDownload"   "https://mimi.example.com/v1/proxyDownload/{downloadUrl}" }"#;
    assert!(matches!(
        Directory::from_json(draft),
        Err(DirectoryError::Json(_))
    ));
    // ... and a template must hold its variable exactly once.
    let mut d = Directory::for_base("https://a.example/v1");
    d.update = "https://a.example/v1/update".into();
    let e = Directory::from_json(&d.to_json()).unwrap_err();
    assert!(e.to_string().contains("{roomId}"), "{e}");
    d.update = "https://a.example/v1/update/{roomId}/{roomId}".into();
    assert!(Directory::from_json(&d.to_json()).is_err());
    d.update = "https://a.example/v1/update/{targetUser}".into();
    assert!(Directory::from_json(&d.to_json()).is_err());
    // The draft's `update{roomId}` (no slash) is a valid template and is followed literally.
    d.update = "https://mimi.example.com/v1/update{roomId}".into();
    let d = Directory::from_json(&d.to_json()).unwrap();
    let url = d.expand(Endpoint::Update, "mimi://a.example/r/x");
    assert_eq!(
        url,
        "https://mimi.example.com/v1/updatemimi%3A%2F%2Fa.example%2Fr%2Fx"
    );
    assert_eq!(
        d.extract(Endpoint::Update, &url).unwrap(),
        "mimi://a.example/r/x"
    );
}

#[test]
fn wire_5_1_variable_anywhere_in_the_template() {
    let mut d = Directory::for_base("https://a.example/v1");
    d.group_info = "https://mimi.a.example/rooms/{roomId}/groupInfo?v=1".into();
    d.proxy_download = Some("https://a.example/v1/proxyDownload/{downloadUrl}".into());
    let d = Directory::from_json(&d.to_json()).unwrap();
    let url = d.expand(Endpoint::GroupInfo, "mimi://a.example/r/club house");
    assert_eq!(
        url,
        "https://mimi.a.example/rooms/mimi%3A%2F%2Fa.example%2Fr%2Fclub%20house/groupInfo?v=1"
    );
    assert_eq!(
        d.extract(Endpoint::GroupInfo, &url).unwrap(),
        "mimi://a.example/r/club house"
    );
    assert!(matches!(
        d.extract(Endpoint::GroupInfo, "https://mimi.a.example/rooms/x/other"),
        Err(DirectoryError::NoMatch { .. })
    ));
    let mut bad = d.clone();
    bad.proxy_download = Some("https://a.example/v1/proxyDownload/".into());
    assert!(Directory::from_json(&bad.to_json()).is_err());
}
