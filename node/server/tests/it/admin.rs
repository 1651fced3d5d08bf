use mimi_node::admin::Admin;
use mimi_node::metrics::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn serves_metrics_and_health_and_refuses_the_rest() {
    let registry = Arc::new(Registry::new());
    let rooms = registry.gauge("mimi_rooms", "Rooms hosted.", &[]).unwrap();
    rooms.set(&[], 3).unwrap();
    let admin = Admin::start("127.0.0.1:0".parse().unwrap(), registry.clone())
        .await
        .unwrap();
    let addr = admin.local_addr();

    let r = get(addr, b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("content-type: text/plain; version=0.0.4"), "{r}");
    assert!(r.ends_with("mimi_rooms 3\n"), "{r}");

    // hyper answers an HTTP/1.0 request in HTTP/1.0.
    let r = get(addr, b"GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(
        r.starts_with("HTTP/1.0 200 OK") && r.ends_with("ok\n"),
        "{r}"
    );
    let r = get(addr, b"POST /metrics HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    let r = get(addr, b"GET /secret HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = get(addr, b"garbage\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // An endless head is cut off at the limit.
    let mut big = b"GET /metrics HTTP/1.1\r\nx: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let r = get(addr, &big).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // Still serving.
    let r = get(addr, b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    admin.stop();
}

// ---------------------------------------------------------------------------------------------
// The admin listener of a node: metrics compatibility, the JSON views, the event stream.

use http::{HeaderMap, Method};
use mimi_content::MimiContent;
use mimi_net::NetLimits;
use mimi_net::client::Connector;
use mimi_net::pki::{Ca, certs_from_pem, key_from_pem};
use mimi_net::server::Server;
use mimi_net::tls::TlsMaterial;
use mimi_node::admin::AdminView;
use mimi_node::http::{Clock, NodeHandler};
use mimi_node::outbox::{OutboxConfig, run_once};
use mimi_node::service::Node;
use mimi_proto::backoff::RetryPolicy;
use mimi_room::client::Device;
use mimi_room::codepoints::CodePoints;
use mimi_room::presets::private_group;
use mimi_store::Store;
use mimi_wire::codec::Body;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, ProviderId, RoomUri, UserUri};
use openmls::prelude::tls_codec::Deserialize;
use openmls::prelude::{BasicCredential, ExternalSender, KeyPackageIn, ProtocolVersion};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;
use serde_json::Value;
use std::net::SocketAddr;

fn temp_dir(what: &str) -> crate::TempDir {
    let dir = std::env::temp_dir().join(format!(
        "mimi-admin-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    crate::TempDir(dir)
}

/// One HTTP/1.1 request over TCP; the status and the body (the answers have a length).
async fn call(addr: SocketAddr, method: &str, target: &str) -> (u16, String, String) {
    let r = get(
        addr,
        format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let (head, body) = r.split_once("\r\n\r\n").unwrap_or((&r, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

async fn json(addr: SocketAddr, target: &str) -> Value {
    let (status, head, body) = call(addr, "GET", target).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Reads from `s` into `seen` until it contains `what` (10 s at most).
async fn read_until(s: &mut TcpStream, seen: &mut String, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains(what) {
        let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {what:?} in time; got\n{seen}"))
            .unwrap();
        assert!(n > 0, "stream ended before {what:?}; got\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn clock() -> Clock {
    let t = Arc::new(std::sync::atomic::AtomicU64::new(1_700_000_000_000));
    Arc::new(move || t.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

struct Provider {
    node: Node,
    tls: TlsMaterial,
    _dir: crate::TempDir,
}

async fn provider(ca: &Ca, domain: &str) -> Provider {
    let dir = temp_dir(domain);
    let node = Node::open(
        ProviderId::parse(domain).unwrap(),
        Store::open(dir.0.join("node.sqlite").to_str().unwrap())
            .await
            .unwrap(),
        mimi_node::service::NodeOptions::default(),
        1_700_000_000_000,
    )
    .await
    .unwrap();
    let issued = ca.issue(domain).unwrap();
    let tls = TlsMaterial {
        chain: certs_from_pem(&issued.cert_pem, "cert").unwrap(),
        key: Arc::new(key_from_pem(&issued.key_pem, "key").unwrap()),
        roots: certs_from_pem(&ca.cert_pem, "ca").unwrap(),
    };
    Provider {
        node,
        tls,
        _dir: dir,
    }
}

fn key_package_of(device: &Device) -> (Vec<u8>, Vec<u8>) {
    let kp = device.key_package().unwrap();
    let kp_ref = KeyPackageIn::tls_deserialize_exact(kp.as_slice())
        .unwrap()
        .validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .unwrap()
        .hash_ref(&RustCrypto::default())
        .unwrap();
    (kp_ref.as_slice().to_vec(), kp)
}

/// a.example hosts a room with Alice (local) and Bob (b.example, a real QUIC peer); its admin
/// listener shows the room, the outbox and the events as they happen.
#[tokio::test]
async fn admin_views_and_event_stream_follow_a_room() {
    let ca = Ca::new("federation").unwrap();
    let a = provider(&ca, "a.example").await;
    let b = provider(&ca, "b.example").await;
    let b_server = Server::start(
        "b.example",
        "127.0.0.1:0".parse().unwrap(),
        &b.tls,
        NetLimits::default(),
        Arc::new(NodeHandler {
            node: b.node.clone(),
            authority: "b.example".into(),
            clock: clock(),
            metrics: None,
        }),
    )
    .unwrap();
    let b_addr = b_server.local_addr().unwrap();
    let a_out = Arc::new(
        Connector::provider(
            "a.example",
            &a.tls.chain,
            &a.tls.key,
            &a.tls.roots,
            [("b.example".to_owned(), b_addr.to_string())].into(),
            NetLimits::default(),
        )
        .unwrap(),
    );
    let a_node = a.node.clone().with_peers(a_out.clone());
    let quic: SocketAddr = "127.0.0.1:4433".parse().unwrap();
    let admin = Admin::start_with(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Registry::new()),
        Some(AdminView {
            node: a_node.clone(),
            listen: quic,
            started: std::time::Instant::now(),
        }),
    )
    .await
    .unwrap();
    let addr = admin.local_addr();
    a.node
        .store
        .register_device(
            "mimi://a.example/u/alice",
            "mimi://a.example/d/alice/1",
            b"token",
            1,
        )
        .await
        .unwrap();

    // Nothing yet.
    let s = json(addr, "/status").await;
    assert_eq!(s["domain"], "a.example");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["listen"], quic.to_string());
    assert!(s["uptime_s"].is_u64(), "{s}");
    assert_eq!(
        s["peers"],
        serde_json::json!([{"domain": "b.example", "address": b_addr.to_string()}])
    );
    assert_eq!(s["outbox"], serde_json::json!({}));
    assert_eq!(s["rooms_hosted"], 0);
    assert_eq!(s["devices"], 1);
    assert_eq!(
        json(addr, "/rooms").await,
        serde_json::json!({"rooms": [], "limit": 100})
    );
    assert_eq!(
        json(addr, "/events/recent").await,
        serde_json::json!({"events": []})
    );

    // A live listener, subscribed once the stream's first comment arrived.
    let mut sse = TcpStream::connect(addr).await.unwrap();
    sse.write_all(b"GET /events HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut sse, &mut seen, ": mimi-node events").await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );

    // Alice creates the room and adds Bob.
    let room = RoomUri::parse("mimi://a.example/r/clubhouse").unwrap();
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let (mut alice_room, gi, tree) = alice
        .create_room(&room, &private_group(&CodePoints::DRAFT), hub_sender, None)
        .unwrap();
    a.node
        .create_room(&room, &alice.client, &gi, &tree)
        .await
        .unwrap();
    let bob = Device::new(ClientUri::parse("mimi://b.example/d/bob/1").unwrap()).unwrap();
    let (kp_ref, kp) = key_package_of(&bob);
    b.node
        .store
        .add_key_packages(
            bob.client.as_str(),
            &[mimi_store::NewKeyPackage {
                kp_ref,
                key_package: kp.clone(),
                not_after_s: u64::MAX / 4,
                last_resort: false,
                cipher_suite: 1,
            }],
        )
        .await
        .unwrap();
    let out = alice_room
        .add_users(
            &alice,
            &[(UserUri::parse("mimi://b.example/u/bob").unwrap(), 2)],
            &[kp],
        )
        .unwrap();
    let a_clock = clock();
    a.node
        .hub_update(&room, &out.bundle.encode(), a_clock())
        .await
        .unwrap();
    alice_room.merge(&alice).unwrap();
    read_until(&mut sse, &mut seen, "event: commit_accepted").await;
    assert!(
        seen.contains(
            r#""type":"commit_accepted","room":"mimi://a.example/r/clubhouse","epoch":1"#
        ),
        "{seen}"
    );

    // Before the outbox ran: the room, its members and its pending fanout.
    let s = json(addr, "/status").await;
    assert_eq!(s["rooms_hosted"], 1);
    let pending = s["outbox"]["b.example"].as_u64().unwrap();
    assert!(pending >= 1, "{s}");
    let rooms = json(addr, "/rooms").await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1, "{rooms}");
    let r = &rooms["rooms"][0];
    assert_eq!(r["room"], room.as_str());
    assert_eq!(r["epoch"], 1);
    assert_eq!(r["pending"], pending);
    assert_eq!(r["outbox"]["b.example"], pending);
    let members = r["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{r}");
    let member = |user: &str| {
        members
            .iter()
            .find(|m| m["user"] == user)
            .unwrap_or_else(|| panic!("no {user} in {r}"))
            .clone()
    };
    let am = member("mimi://a.example/u/alice");
    assert_eq!(am["provider"], "a.example");
    assert_eq!(
        am["clients"],
        serde_json::json!(["mimi://a.example/d/alice/1"])
    );
    let bm = member("mimi://b.example/u/bob");
    assert_eq!(bm["provider"], "b.example");
    assert_eq!(bm["role"], 2);
    assert_eq!(
        bm["clients"],
        serde_json::json!(["mimi://b.example/d/bob/1"])
    );

    // The outbox delivers to b over QUIC: a fanout event.
    let cfg = OutboxConfig {
        owner: "a-1".into(),
        lease_ms: 30_000,
        batch_max_bytes: 256 * 1024,
        retry: RetryPolicy::default(),
    };
    assert!(run_once(&a_node, &a_out, &cfg, &a_clock).await >= 1);
    read_until(&mut sse, &mut seen, "event: fanout_delivered").await;
    assert!(seen.contains(r#""peer":"b.example""#), "{seen}");
    assert_eq!(json(addr, "/status").await["outbox"], serde_json::json!({}));
    assert_eq!(json(addr, "/rooms").await["rooms"][0]["pending"], 0);

    // Bob joins and sends a message through b.example: the stream shows it accepted.
    let items = b
        .node
        .store
        .fetch_queue(bob.client.as_str(), 0, 100)
        .await
        .unwrap();
    let welcome = items
        .iter()
        .map(|i| FanoutMessage::decode(&i.body).unwrap())
        .find(|i| matches!(i.extra, FanoutExtra::Welcome(_)))
        .expect("Welcome");
    let FanoutExtra::Welcome(t) = &welcome.extra else {
        unreachable!()
    };
    let mut bob_room = bob.join_from_welcome(&room, &welcome.message, t).unwrap();
    let hello = MimiContent::text([1; 16], "hello, admin");
    let req = bob_room.send(&bob, &hello.encode().unwrap()).unwrap();
    a.node
        .hub_submit(
            &room,
            &ProviderId::parse("b.example").unwrap(),
            &req.encode(),
            a_clock(),
        )
        .await
        .unwrap();
    read_until(&mut sse, &mut seen, "event: message_accepted").await;
    assert!(
        seen.contains(r#""type":"message_accepted","room":"mimi://a.example/r/clubhouse","sender":"mimi://b.example/u/bob","epoch":1"#),
        "{seen}"
    );
    // The message's text is nowhere in the stream.
    assert!(!seen.contains("hello, admin"));

    // The same events, recent ones as JSON, oldest first, bounded by n.
    let recent = json(addr, "/events/recent?n=1000000").await;
    let events = recent["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"commit_accepted"), "{kinds:?}");
    assert!(kinds.contains(&"fanout_delivered"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"message_accepted"), "{kinds:?}");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let last = json(addr, "/events/recent?n=1").await;
    assert_eq!(last["events"].as_array().unwrap().len(), 1);
    assert_eq!(last["events"][0], *events.last().unwrap());
    assert!(last["events"][0]["accepted_ms"].is_u64());

    // Paging and bounds of /rooms.
    let page = json(addr, "/rooms?limit=5000").await;
    assert_eq!(page["limit"], 1000);
    let after = json(
        addr,
        &format!("/rooms?after={}", "mimi%3A%2F%2Fa.example%2Fr%2Fclubhouse"),
    )
    .await;
    assert_eq!(after["rooms"], serde_json::json!([]));
    let (status, _, body) = call(addr, "GET", "/rooms?limit=0").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = call(addr, "GET", "/rooms?limit=many").await;
    assert_eq!(status, 400, "{body}");

    // Bad paths and methods, with reasons.
    let (status, _, body) = call(addr, "GET", "/nope").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("no admin endpoint /nope") && body.contains("/status"),
        "{body}"
    );
    for path in ["/status", "/rooms", "/events", "/events/recent", "/metrics"] {
        let (status, head, body) = call(addr, "POST", path).await;
        assert_eq!(status, 405, "{path}: {head}");
        assert!(body.contains("GET only"), "{path}: {body}");
    }

    drop(sse);
    admin.stop();
    b_server.shutdown(Duration::from_secs(2)).await;
}

/// A node started from its configuration: the metric names, label names and types it exported
/// before the admin listener moved to axum and prometheus-client are all still there, and
/// `/status` names the QUIC address it listens on.
#[tokio::test]
async fn a_running_node_keeps_its_metric_names_and_reports_its_status() {
    let dir = temp_dir("run");
    let ca = Ca::new("federation").unwrap();
    let issued = ca.issue("a.example").unwrap();
    std::fs::write(dir.0.join("a.crt"), &issued.cert_pem).unwrap();
    std::fs::write(dir.0.join("a.key"), &issued.key_pem).unwrap();
    std::fs::write(dir.0.join("ca.crt"), &ca.cert_pem).unwrap();
    let text = r#"
domain = "a.example"
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[tls]
certificate = "a.crt"
key = "a.key"
trusted_roots = ["ca.crt"]
[peers]
"b.example" = "127.0.0.1:9"
"#;
    let path = dir.0.join("node.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = mimi_node::config::Config::load(&path).unwrap();
    let running = mimi_node::run::start(&cfg).await.unwrap();
    let admin = running.admin_addr().expect("admin listener");

    // One request over QUIC, so that the request metrics have a series.
    let anon = Connector::anonymous(
        &certs_from_pem(&ca.cert_pem, "ca").unwrap(),
        [("a.example".to_owned(), running.addr.to_string())].into(),
        NetLimits::default(),
    )
    .unwrap();
    let r = anon
        .request(
            "a.example",
            Method::GET,
            mimi_net::paths::DIRECTORY_PATH,
            HeaderMap::new(),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, http::StatusCode::OK);

    // The gauges are sampled once a second: wait (bounded) for the series to appear.
    let wanted_series = [
        "mimi_requests_total{endpoint=\"directory\",code=\"200\"} 1",
        "mimi_request_seconds_count{endpoint=\"directory\"} 1",
        "mimi_request_seconds_bucket{endpoint=\"directory\",le=\"+Inf\"} 1",
        "mimi_rooms 0",
        "mimi_outbox_delivered_total 0",
    ];
    let mut text = String::new();
    for _ in 0..100 {
        let (status, head, body) = call(admin, "GET", "/metrics").await;
        assert_eq!(status, 200, "{head}");
        assert!(
            head.contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        text = body;
        if wanted_series.iter().all(|l| text.lines().any(|x| x == *l))
            && text.contains("mimi_connections{direction=\"in\"}")
            && text.contains("mimi_connections{direction=\"out\"}")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every metric of the hand-written registry, with its type. (prometheus-client leaves out
    // a family without series: mimi_outbox_depth has one once a follower had work.)
    if text.contains("mimi_outbox_depth") {
        assert!(
            text.lines().any(|l| l == "# TYPE mimi_outbox_depth gauge"),
            "{text}"
        );
    }
    for line in [
        "# TYPE mimi_requests_total counter",
        "# TYPE mimi_request_seconds histogram",
        "# TYPE mimi_outbox_delivered_total counter",
        "# TYPE mimi_rooms gauge",
        "# TYPE mimi_connections gauge",
        "# HELP mimi_rooms Rooms this node keeps state for.",
    ]
    .iter()
    .chain(&wanted_series)
    {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("mimi_connections{direction=\"in\"}"),
        "{text}"
    );
    assert!(
        text.contains("mimi_connections{direction=\"out\"}"),
        "{text}"
    );
    // The buckets are those of before (le as Prometheus' Go client writes them).
    for le in ["0.0001", "0.00025", "0.001", "0.25", "1", "2.5", "10"] {
        let b = format!("mimi_request_seconds_bucket{{endpoint=\"directory\",le=\"{le}\"}}");
        assert!(text.contains(&b), "missing {b} in\n{text}");
    }
    assert!(
        !text.contains("_total_total") && !text.contains("# EOF"),
        "{text}"
    );

    let s = json(admin, "/status").await;
    assert_eq!(s["domain"], "a.example");
    assert_eq!(s["listen"], running.addr.to_string());
    assert_eq!(
        s["peers"],
        serde_json::json!([{"domain": "b.example", "address": "127.0.0.1:9"}])
    );
    let (status, _, body) = call(admin, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    running.shutdown().await;
}

#[test]
fn the_admin_listener_is_loopback_only() {
    let text = r#"
domain = "a.example"
admin_listen = "0.0.0.0:9433"
[tls]
certificate = "a.crt"
key = "a.key"
trusted_roots = ["ca.crt"]
"#;
    let e = mimi_node::config::Config::parse(
        text,
        std::path::Path::new("/etc/mimi/node.toml"),
        std::path::Path::new("/etc/mimi"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("admin_listen"), "{e}");
    assert!(e.to_string().contains("loopback"), "{e}");
}
