//! The draft's endpoint paths.

use mimi_net::paths::{self, Endpoint, PathError, Route};
use proptest::prelude::*;

#[test]
fn net_paths_build_and_route_every_endpoint() {
    for e in Endpoint::ALL {
        let p = paths::path(e, "mimi://a.example/r/club house");
        assert_eq!(
            p,
            format!("/v1/{}/mimi%3A%2F%2Fa.example%2Fr%2Fclub%20house", e.name())
        );
        assert_eq!(
            paths::route(&p),
            Route::Endpoint(e, "mimi://a.example/r/club house".into())
        );
        assert!(paths::requires_provider(&p));
        assert_eq!(Endpoint::from_name(e.name()), Some(e));
    }
    assert_eq!(
        Endpoint::Update.template("https://a.example:4433/"),
        "https://a.example:4433/v1/update/{roomId}"
    );
    assert_eq!(Endpoint::KeyMaterial.variable(), "targetUser");
    assert_eq!(Endpoint::UpdateConsent.variable(), "requesterUser");
    assert_eq!(Endpoint::IdentifierQuery.variable(), "domain");
    // Lower-case percent-encoding is accepted.
    assert_eq!(
        paths::route("/v1/notify/mimi%3a%2f%2fa.example?x=1"),
        Route::Endpoint(Endpoint::Notify, "mimi://a.example".into())
    );
}

#[test]
fn net_paths_open_and_malformed_paths() {
    assert_eq!(paths::route(paths::DIRECTORY_PATH), Route::Directory);
    assert_eq!(
        paths::route("/client/v1/queue?after=3"),
        Route::ClientApi("queue?after=3".into())
    );
    assert!(!paths::requires_provider(paths::DIRECTORY_PATH));
    assert!(!paths::requires_provider("/client/v1/devices"));
    for p in [
        "/v1/nothing/x",
        "/v2/update/x",
        "/client/v2/x",
        "/",
        "/v1",
        "/v1/Update/x",
    ] {
        assert_eq!(paths::route(p), Route::Unknown, "{p}");
        assert!(paths::requires_provider(p), "{p}");
    }
    assert!(matches!(
        paths::route("/v1/update/"),
        Route::BadEndpoint(PathError::MissingIdentifier { endpoint: "update" })
    ));
    for p in [
        "/v1/update/a/b",
        "/v1/update/%zz",
        "/v1/update/%4",
        "/v1/update/%FF",
    ] {
        assert!(
            matches!(
                paths::route(p),
                Route::BadEndpoint(PathError::BadIdentifier { .. })
            ),
            "{p}"
        );
    }
}

proptest! {
    #[test]
    fn net_paths_encoding_round_trips(s in any::<String>()) {
        let enc = paths::percent_encode(&s);
        prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert_eq!(paths::percent_decode(&enc), Ok(s));
    }

    #[test]
    fn net_paths_random_paths_never_panic(p in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = paths::route(&p);
        let _ = paths::route(&format!("/v1/notify/{p}"));
        let _ = paths::percent_decode(&String::from_utf8_lossy(&bytes));
    }
}
