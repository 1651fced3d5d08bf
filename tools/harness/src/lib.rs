//! Test support for multi-provider scenarios: a federation of `mimi-node`s started in-process
//! from their configuration files (real QUIC with mutual TLS on loopback, real SQLite files or
//! PostgreSQL databases), and test devices (mimi-room) that talk only to their home node's
//! client API. Used by this crate's tests (`tests/it`): the draft's example flow and the
//! resilience suite (`spec-notes/resilience.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod mixed;
pub mod mlsrs;

use bytes::Bytes;
use http::{Method, StatusCode};
use mimi_content::MimiContent;
use mimi_net::NetLimits;
use mimi_net::client::ClientApi;
use mimi_net::pki::{Ca, certs_from_pem};
use mimi_node::config::Config;
use mimi_node::run::{Running, start};
use mimi_room::client::{Device, Event, Room};
use mimi_room::codepoints::CodePoints;
use mimi_room::presets::private_group;
use mimi_wire::codec::{Body, Writer};
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::key_material::{ClientMaterial, KeyMaterialResponse, KeyMaterialUserCode};
use mimi_wire::submit::{SubmitMessageResponse, SubmitOutcome};
use mimi_wire::update::{HandshakeBundle, UpdateOutcome, UpdateRoomResponse};
use openmls::prelude::ExternalSender;
use openmls::prelude::tls_codec::Deserialize as _;
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const DOMAINS: [&str; 3] = ["a.example", "b.example", "c.example"];

pub fn tag() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// `MIMI_TEST_POSTGRES_URL` when it is set and not empty (an empty value skips the PostgreSQL
/// runs, as an unset one does).
pub fn test_postgres_url() -> Option<String> {
    std::env::var("MIMI_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// A PostgreSQL database of its own for one provider (the schema has no provider column:
/// one database per provider, as in production).
pub async fn pg_database(url: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::Executor::execute(
        &mut c,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// Drops a database [`pg_database`] made (`db` is its URL), once nothing uses it: tests
/// clean up after themselves, also on a PostgreSQL server that outlives the run. Connects to
/// the server's `postgres` database; `WITH (FORCE)` ends connections a stopped node's pool
/// may still hold. A failure is printed, not fatal (the test's result stands).
pub async fn drop_pg_database(db: &str) {
    use sqlx::Connection;
    let Some((base, name)) = db.rsplit_once('/') else {
        return;
    };
    let name = name.split('?').next().unwrap_or(name);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        eprintln!("not dropping {db:?}: not a database name pg_database makes");
        return;
    }
    let result = async {
        let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres")).await?;
        sqlx::Executor::execute(
            &mut c,
            sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
        )
        .await?;
        c.close().await
    }
    .await;
    if let Err(e) = result {
        eprintln!("dropping the test database {name}: {e}");
    }
}

pub struct Federation {
    /// The nodes (`None` while stopped).
    pub nodes: Vec<Option<Running>>,
    /// Where each node listens now.
    pub addrs: Vec<String>,
    /// Each node's configuration file.
    pub configs: Vec<PathBuf>,
    /// Each node's database (`sqlite` or a `postgres://` URL).
    pub databases: Vec<String>,
    pub domains: Vec<String>,
    pub roots: Vec<CertificateDer<'static>>,
    pub dir: PathBuf,
    /// The federation CA (to certify more nodes).
    pub ca: Ca,
}

/// Writes node `name`'s directory under `dir`: a certificate for `domain` from `ca`, and a
/// `node.toml` with open registration, quick outbox retries, the request timeout and `peers`.
/// Returns its path.
pub fn write_config(
    dir: &Path,
    ca: &Ca,
    domain: &str,
    name: &str,
    database: &str,
    peers: &[(String, String)],
    request_timeout_ms: u64,
) -> PathBuf {
    write_config_with(
        dir,
        ca,
        domain,
        name,
        database,
        peers,
        request_timeout_ms,
        "",
    )
}

/// [`write_config`] with more TOML at the end (for example a `[faults]` section).
#[allow(clippy::too_many_arguments)]
pub fn write_config_with(
    dir: &Path,
    ca: &Ca,
    domain: &str,
    name: &str,
    database: &str,
    peers: &[(String, String)],
    request_timeout_ms: u64,
    extra: &str,
) -> PathBuf {
    let nd = dir.join(name);
    std::fs::create_dir_all(&nd).unwrap();
    let issued = ca.issue(domain).unwrap();
    issued
        .write(&nd.join("node.crt"), &nd.join("node.key"))
        .unwrap();
    let mut text = format!(
        "domain = \"{domain}\"\nlisten = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n\
         [tls]\ncertificate = \"node.crt\"\nkey = \"node.key\"\ntrusted_roots = [\"../ca.crt\"]\n\
         [registration]\nopen = true\n[outbox]\nretry_base_ms = 20\nretry_max_ms = 500\n\
         [limits]\nrequest_timeout_ms = {request_timeout_ms}\n[peers]\n"
    );
    for (d, a) in peers {
        text.push_str(&format!("\"{d}\" = \"{a}\"\n"));
    }
    text.push_str(extra);
    let path = nd.join("node.toml");
    std::fs::write(&path, &text).unwrap();
    path
}

/// A node running as its own OS process (`mimi-node-proc`, the code of `mimi-node run`), so
/// that a test can SIGKILL it.
pub struct ProcNode {
    child: std::process::Child,
    /// Where it listens.
    pub addr: String,
}

impl ProcNode {
    /// Starts the node of `config` with the binary `exe` (a test passes
    /// `env!("CARGO_BIN_EXE_mimi-node-proc")`) and waits (at most 60 s) until it says where it
    /// listens.
    pub async fn spawn(exe: &str, config: &Path) -> Self {
        Self::spawn_with(exe, &[], config).await
    }

    /// [`ProcNode::spawn`] with arguments before the configuration (a binary whose node
    /// mode is a subcommand, e.g. `mimi-bench node CONFIG`).
    pub async fn spawn_with(exe: &str, args: &[&str], config: &Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args(args)
            .arg(config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut l = String::new();
            std::io::BufReader::new(stdout).read_line(&mut l).unwrap();
            l
        });
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), line)
            .await
            .expect("the node process did not start within 60 s")
            .unwrap();
        let addr = line
            .trim()
            .rsplit_once(" on ")
            .and_then(|(_, r)| r.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no graceful anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn federation(postgres: Option<&str>) -> Federation {
    let t = tag();
    let mut dbs = Vec::new();
    for d in DOMAINS {
        dbs.push(match postgres {
            Some(url) => pg_database(url, &format!("mimi_{}_{t}", &d[..1])).await,
            None => "sqlite".into(),
        });
    }
    let plan: Vec<(&str, &str, String)> = DOMAINS
        .iter()
        .zip(dbs)
        .map(|(d, db)| (*d, *d, db))
        .collect();
    federation_of(&plan).await
}

/// Nodes `(domain, directory name, database)`; every node knows the first node of every
/// other domain as its peer. Requests time out after 10 s.
pub async fn federation_of(plan: &[(&str, &str, String)]) -> Federation {
    federation_with_timeout(plan, 10_000).await
}

/// [`federation_of`] with another request timeout (a test that kills nodes wants a short one:
/// each call to a dead peer costs that long).
pub async fn federation_with_timeout(
    plan: &[(&str, &str, String)],
    request_timeout_ms: u64,
) -> Federation {
    federation_with(plan, request_timeout_ms, "").await
}

/// [`federation_with_timeout`] with more TOML in every node's configuration.
pub async fn federation_with(
    plan: &[(&str, &str, String)],
    request_timeout_ms: u64,
    extra: &str,
) -> Federation {
    let dir = std::env::temp_dir().join(format!("mimi-three-{}", tag()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::new("mimi test federation").unwrap();
    std::fs::write(dir.join("ca.crt"), &ca.cert_pem).unwrap();
    let mut nodes = Vec::new();
    let mut domains = Vec::new();
    let mut addrs = Vec::new();
    let mut configs = Vec::new();
    let mut databases = Vec::new();
    for (d, name, database) in plan {
        let path = write_config_with(&dir, &ca, d, name, database, &[], request_timeout_ms, extra);
        let cfg = Config::load(&path).unwrap();
        let n = start(&cfg).await.unwrap();
        addrs.push(n.addr.to_string());
        nodes.push(Some(n));
        configs.push(path);
        databases.push(database.clone());
        domains.push(d.to_string());
    }
    let fed = Federation {
        nodes,
        addrs,
        configs,
        databases,
        domains,
        roots: certs_from_pem(&ca.cert_pem, "ca").unwrap(),
        dir,
        ca,
    };
    for i in 0..fed.nodes.len() {
        fed.wire_peers(i);
    }
    fed
}

impl Federation {
    pub fn api(&self, domain: &str) -> ClientApi {
        let i = self.domains.iter().position(|d| d == domain).unwrap();
        self.api_at(i)
    }

    /// A client of the `i`th node.
    pub fn api_at(&self, i: usize) -> ClientApi {
        let domain = &self.domains[i];
        ClientApi::new(domain, &self.addrs[i], &self.roots, NetLimits::default()).unwrap()
    }

    /// The first node of each domain is the one its peers call.
    fn first_of(&self, domain: &str) -> usize {
        self.domains.iter().position(|d| d == domain).unwrap()
    }

    /// Tells node `i` where the other domains are, and the others where `i` is.
    fn wire_peers(&self, i: usize) {
        for (j, d) in self.domains.iter().enumerate() {
            if *d == self.domains[i] {
                continue;
            }
            if let Some(n) = &self.nodes[i]
                && self.first_of(d) == j
            {
                n.set_peer(d, self.addrs[j].clone());
            }
            if let Some(other) = &self.nodes[j]
                && self.first_of(&self.domains[i]) == i
            {
                other.set_peer(&self.domains[i], self.addrs[i].clone());
            }
        }
    }

    /// Stops node `i` gracefully (in-flight requests finish; its database stays).
    pub async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown().await;
        }
    }

    /// Starts node `i` again from its configuration (a new port; peers are told).
    pub async fn restart(&mut self, i: usize) {
        let cfg = Config::load(&self.configs[i]).unwrap();
        let n = start(&cfg).await.unwrap();
        self.addrs[i] = n.addr.to_string();
        self.nodes[i] = Some(n);
        self.wire_peers(i);
    }

    /// A second connection to node `i`'s database (to look at what it stored).
    pub async fn store_of(&self, i: usize) -> mimi_store::Store {
        let loc = if self.databases[i] == "sqlite" {
            self.sqlite(i).to_str().unwrap().to_owned()
        } else {
            self.databases[i].clone()
        };
        mimi_store::Store::open(&loc).await.unwrap()
    }

    /// The SQLite file of node `i` (when it runs on SQLite).
    pub fn sqlite(&self, i: usize) -> PathBuf {
        self.configs[i].with_file_name("node.sqlite")
    }

    /// Stops every node; the federation's directory goes when the value is dropped.
    /// Stops every node, then drops the federation's PostgreSQL databases (each once, also
    /// when several nodes share one).
    pub async fn shutdown(mut self) {
        for n in std::mem::take(&mut self.nodes).into_iter().flatten() {
            n.shutdown().await;
        }
        let mut pg: Vec<String> = self
            .databases
            .iter()
            .filter(|d| d.starts_with("postgres"))
            .cloned()
            .collect();
        pg.sort();
        pg.dedup();
        for db in pg {
            drop_pg_database(&db).await;
        }
    }
}

/// Tests clean up after themselves: the federation's directory (configurations, SQLite files,
/// attachments, client profiles under it) is removed when the federation is dropped, also when
/// a test panics.
impl Drop for Federation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test device: MLS state in memory, talks to its home node's client API only.
pub struct Person {
    pub dev: Device,
    pub api: ClientApi,
    pub token: String,
    pub rooms: HashMap<RoomUri, Room>,
    pub cursor: u64,
    /// Every event this device saw, by room.
    pub seen: Vec<Event>,
    /// When each of `seen` was processed (decrypted), before the queue was acknowledged:
    /// what mimi-bench counts as delivered.
    pub seen_at: Vec<std::time::Instant>,
    /// Resync notices its home node sent it (`STORE-retention`).
    pub resyncs: usize,
}

pub async fn call(
    api: &ClientApi,
    method: Method,
    rest: &str,
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    let r = api.request(method, rest, Bytes::from(body)).await.unwrap();
    (r.status, r.body)
}

/// Registers a device through `api` (a further device of an existing user passes `token`,
/// one of its devices'), leaves the new token set on `api`: (token, client URI).
pub async fn register_device(
    api: &ClientApi,
    user: &str,
    device: &str,
    token: Option<&str>,
) -> (String, ClientUri) {
    if let Some(t) = token {
        api.set_token(t);
    }
    let body = serde_json::json!({ "user": user, "device": device, "nick": user });
    let (st, b) = call(api, Method::POST, "register", body.to_string().into_bytes()).await;
    assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    api.set_token(&token);
    (
        token,
        ClientUri::parse(v["client"].as_str().unwrap()).unwrap(),
    )
}

/// Publishes KeyPackages (RFC 9420 struct bytes) through `api`.
pub async fn publish_key_packages(api: &ClientApi, kps: &[Vec<u8>]) {
    let kps: Vec<String> = kps.iter().map(hex::encode).collect();
    let body = serde_json::json!({ "key_packages": kps });
    let (st, b) = call(
        api,
        Method::POST,
        "keyPackages",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
}

/// One long-poll of the queue after `cursor` (200 ms): its items.
pub async fn fetch_queue(api: &ClientApi, cursor: u64) -> Vec<serde_json::Value> {
    let (st, b) = call(
        api,
        Method::GET,
        &format!("queue?after={cursor}&wait=200"),
        Vec::new(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Acknowledges the queue up to `cursor`.
pub async fn ack_queue(api: &ClientApi, cursor: u64) {
    let ack = serde_json::json!({ "upto": cursor });
    let (st, _) = call(api, Method::POST, "queue/ack", ack.to_string().into_bytes()).await;
    assert_eq!(st, StatusCode::OK);
}

/// POSTs a handshake bundle to `room`'s update endpoint through `api`: the hub's outcome.
pub async fn post_update(
    api: &ClientApi,
    room: &RoomUri,
    bundle: &HandshakeBundle,
) -> UpdateOutcome {
    let (st, b) = call(
        api,
        Method::POST,
        &format!("update/{}", enc(room.as_str())),
        bundle.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    UpdateRoomResponse::decode(&b).unwrap().outcome
}

/// POSTs a SubmitMessageRequest for `room` through `api`: the hub's outcome.
pub async fn post_submit(
    api: &ClientApi,
    room: &RoomUri,
    req: &mimi_wire::submit::SubmitMessageRequest,
) -> SubmitOutcome {
    let (st, b) = call(
        api,
        Method::POST,
        &format!("submitMessage/{}", enc(room.as_str())),
        req.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    SubmitMessageResponse::decode(&b).unwrap().outcome
}

/// POSTs a signed KeyMaterialRequest for `target` through `api`: the response.
pub async fn post_key_material(
    api: &ClientApi,
    target: &UserUri,
    req: &mimi_wire::key_material::KeyMaterialRequest,
) -> KeyMaterialResponse {
    let (st, b) = call(
        api,
        Method::POST,
        &format!("keyMaterial/{}", enc(target.as_str())),
        req.encode(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    KeyMaterialResponse::decode(&b).unwrap()
}

pub fn enc(s: &str) -> String {
    mimi_net::paths::percent_encode(s)
}

/// Encrypts `data` piece by piece and uploads the ciphertext for `room` through `api`
/// (`POST assets/{room}[?type=]`, `PROTO-5.10-upload`): the status, the node's reason or
/// answer, and the external part describing the upload when it was taken.
pub async fn upload_attachment(
    api: &ClientApi,
    room: &RoomUri,
    media_type: Option<&str>,
    data: &[u8],
) -> (StatusCode, String, Option<mimi_content::ExternalPart>) {
    use mimi_content::attachment::stream::Sealer;
    let mut sealer = Sealer::new().unwrap();
    let (tx, rx) = mimi_net::stream::pieces();
    let plain = data.to_vec();
    let producer = tokio::spawn(async move {
        for c in plain.chunks(50_000) {
            let mut c = c.to_vec();
            sealer.seal(&mut c).unwrap();
            if tx.send(Ok(Bytes::from(c))).await.is_err() {
                return None;
            }
        }
        let sealed = sealer.finish();
        tx.send(Ok(Bytes::copy_from_slice(&sealed.tag)))
            .await
            .ok()?;
        Some(sealed)
    });
    let mut path = format!("assets/{}", enc(room.as_str()));
    if let Some(t) = media_type {
        path.push_str(&format!("?type={}", enc(t)));
    }
    let r = api.upload(&path, data.len() as u64 + 16, rx).await.unwrap();
    let sealed = producer.await.unwrap();
    if r.status != StatusCode::CREATED {
        return (r.status, r.text(), None);
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let url = v["url"].as_str().unwrap();
    let part = sealed.unwrap().part(
        media_type.unwrap_or("application/octet-stream"),
        url,
        "data.bin",
        "test data",
    );
    (r.status, r.text(), Some(part))
}

impl Person {
    pub async fn register(fed: &Federation, domain: &str, user: &str, device: &str) -> Self {
        Self::register_with(fed, domain, user, device, None).await
    }

    pub async fn register_with(
        fed: &Federation,
        domain: &str,
        user: &str,
        device: &str,
        token: Option<&str>,
    ) -> Self {
        Self::register_via(fed.api(domain), user, device, token).await
    }

    pub async fn register_via(
        api: ClientApi,
        user: &str,
        device: &str,
        token: Option<&str>,
    ) -> Self {
        let (token, client) = register_device(&api, user, device, token).await;
        let dev = Device::new(client).unwrap();
        let p = Self {
            dev,
            api,
            token,
            rooms: HashMap::new(),
            cursor: 0,
            seen: Vec::new(),
            seen_at: Vec::new(),
            resyncs: 0,
        };
        p.publish(2).await;
        p
    }

    /// Talks to its home node through `api` from now on (after the node restarted).
    pub fn reconnect(&mut self, api: ClientApi) {
        api.set_token(&self.token);
        self.api = api;
    }

    pub async fn publish(&self, n: usize) {
        self.publish_in(n, mimi_room::mls::CIPHERSUITE).await;
    }

    /// Publishes `n` KeyPackages of `suite`.
    pub async fn publish_in(&self, n: usize, suite: openmls::prelude::Ciphersuite) {
        let kps: Vec<Vec<u8>> = (0..n)
            .map(|_| self.dev.key_package_for(suite).unwrap())
            .collect();
        publish_key_packages(&self.api, &kps).await;
    }

    pub async fn create_room(&mut self, room: &RoomUri) {
        self.create_room_with(room, &private_group(&CodePoints::DRAFT))
            .await;
    }

    /// Creates a room with a preset (e.g. `public_room`).
    pub async fn create_room_with(&mut self, room: &RoomUri, preset: &mimi_room::presets::Preset) {
        self.create_room_in(room, preset, mimi_room::mls::CIPHERSUITE)
            .await;
    }

    /// Creates a room with a preset in a cipher suite.
    pub async fn create_room_in(
        &mut self,
        room: &RoomUri,
        preset: &mimi_room::presets::Preset,
        suite: openmls::prelude::Ciphersuite,
    ) {
        let (st, b) = call(&self.api, Method::GET, "hub", Vec::new()).await;
        assert_eq!(st, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let sender_bytes = hex::decode(v["external_sender"].as_str().unwrap()).unwrap();
        let sender = ExternalSender::tls_deserialize_exact(sender_bytes.as_slice()).unwrap();
        let agent = hex::decode(v["franking_agent"].as_str().unwrap()).unwrap();
        let agent = mimi_wire::franking::FrankingAgentData::decode(&agent).unwrap();
        let (r, gi, tree) = self
            .dev
            .create_room_with_agent(room, preset, sender, agent, Some("Clubhouse"), suite)
            .unwrap();
        let mut w = Writer::new();
        gi.write(&mut w);
        let gi = w.finish();
        let mut w = Writer::new();
        tree.write(&mut w);
        let tree = w.finish();
        let body =
            serde_json::json!({ "group_info": hex::encode(gi), "ratchet_tree": hex::encode(tree) });
        let (st, b) = call(
            &self.api,
            Method::POST,
            &format!("rooms/{}", enc(room.as_str())),
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
        self.rooms.insert(room.clone(), r);
    }

    /// Claims `target`'s KeyPackages through the hub and adds the user with role 2.
    /// Claims `target`'s KeyPackages through the hub: the draft's response.
    pub async fn claim(&self, room: &RoomUri, target: &UserUri) -> KeyMaterialResponse {
        let req = self.dev.key_material_request(room, target).unwrap();
        post_key_material(&self.api, target, &req).await
    }

    /// Joins `room` by external commit through the home node: groupInfo (with `code` as the
    /// joiningCode when not empty; the GroupInfo's pending proposals are used), then the
    /// commit. A user who is not listed adds itself with role 0's target role. `Err` names
    /// the refusal (groupInfo's code or the update's outcome).
    pub async fn join(&mut self, room: &RoomUri, code: &[u8]) -> Result<u64, String> {
        let pending = self
            .dev
            .group_info_request_with_code(code.to_vec())
            .unwrap();
        let (st, b) = call(
            &self.api,
            Method::POST,
            &format!("groupInfo/{}", enc(room.as_str())),
            pending.request.encode(),
        )
        .await;
        if st != StatusCode::OK {
            return Err(format!("groupInfo: {st} {}", String::from_utf8_lossy(&b)));
        }
        let resp = mimi_wire::group_info::GroupInfoResponse::decode(&b).unwrap();
        let (gi, tree, proposals) = self
            .dev
            .open_group_info_with_pending(room, &pending, &resp)
            .map_err(|e| format!("groupInfo: {e}"))?;
        let mimi_wire::common::GroupInfoOption::Full(g) = &gi else {
            return Err("a partial GroupInfo".into());
        };
        let state =
            mimi_room::mls::state_of(g.parse().unwrap().group_context(), &CodePoints::DRAFT)
                .unwrap();
        let list_add =
            mimi_room::policy::join_role(&state, &self.dev.user).map_err(|d| d.reason)?;
        if let Some(old) = self.rooms.remove(room) {
            old.delete(&self.dev).unwrap();
        }
        let (r, out) = self
            .dev
            .join_external_by(
                room,
                &gi,
                &tree,
                list_add,
                &proposals,
                (!code.is_empty()).then_some(code),
            )
            .map_err(|e| format!("external commit: {e}"))?;
        self.rooms.insert(room.clone(), r);
        match self.update(room, &out.bundle).await {
            UpdateOutcome::Success { .. } => Ok(self.epoch(room)),
            o => {
                self.rooms.remove(room);
                Err(format!("update: {o:?}"))
            }
        }
    }

    /// Sets the room's asset policy (room-policy-03 AssetPolicy, `ROOM-policy-assets`) by a
    /// commit through the home node; the hub's outcome.
    pub async fn set_asset_policy(
        &mut self,
        room: &RoomUri,
        policy: &mimi_room::room_policy::AssetPolicy,
    ) -> UpdateOutcome {
        self.set_component(room, CodePoints::DRAFT.asset_policy, policy.encode())
            .await
    }

    /// Replaces one room state component (its `…Update` bytes) by a commit through the home
    /// node; the hub's outcome.
    pub async fn set_component(
        &mut self,
        room: &RoomUri,
        id: u16,
        bytes: Vec<u8>,
    ) -> UpdateOutcome {
        let out = self
            .rooms
            .get_mut(room)
            .unwrap()
            .set_components(&self.dev, vec![(id, bytes)])
            .unwrap();
        self.update(room, &out.bundle).await
    }

    /// Sends a commit (or proposal) bundle to the hub through the home node; merges the
    /// pending commit on success, discards it otherwise. Returns the hub's outcome.
    pub async fn update(&mut self, room: &RoomUri, bundle: &HandshakeBundle) -> UpdateOutcome {
        let outcome = post_update(&self.api, room, bundle).await;
        if matches!(bundle, HandshakeBundle::Commit { .. }) {
            let r = self.rooms.get_mut(room).unwrap();
            if matches!(outcome, UpdateOutcome::Success { .. }) {
                r.merge(&self.dev).unwrap();
            } else {
                r.discard(&self.dev).unwrap();
            }
        }
        outcome
    }

    /// Submits an application message; the hub's outcome.
    pub async fn try_send(&mut self, room: &RoomUri, content: &MimiContent) -> SubmitOutcome {
        let r = self.rooms.get_mut(room).unwrap();
        let req = r.send(&self.dev, &content.encode().unwrap()).unwrap();
        post_submit(&self.api, room, &req).await
    }

    /// Encrypts a message: the SubmitMessageRequest bytes (to submit, and to resubmit).
    pub fn prepare(&mut self, room: &RoomUri, content: &MimiContent) -> Vec<u8> {
        let r = self.rooms.get_mut(room).unwrap();
        r.send(&self.dev, &content.encode().unwrap())
            .unwrap()
            .encode()
    }

    /// Submits prepared bytes: the hub's outcome, or why there was none (the home node could
    /// not be reached, or the hub could not: 502).
    pub async fn submit_bytes(
        &self,
        room: &RoomUri,
        bytes: &[u8],
    ) -> Result<SubmitOutcome, String> {
        let r = self
            .api
            .request(
                Method::POST,
                &format!("submitMessage/{}", enc(room.as_str())),
                Bytes::from(bytes.to_vec()),
            )
            .await
            .map_err(|e| e.to_string())?;
        if r.status != StatusCode::OK {
            return Err(format!("{} {}", r.status, r.text()));
        }
        Ok(SubmitMessageResponse::decode(&r.body)
            .map_err(|e| e.to_string())?
            .outcome)
    }

    /// A received message's content bytes, the hub's frank and the accepted time, when its
    /// frank verified here (`PROTO-5.4.1-frank-verify`).
    pub fn verified_frank(
        &self,
        c: &MimiContent,
    ) -> Option<(Vec<u8>, mimi_wire::common::Frank, u64)> {
        self.seen.iter().find_map(|e| match e {
            Event::Message {
                content,
                frank: mimi_room::franking::FrankCheck::Verified { frank, context },
                ..
            } if MimiContent::decode(content).ok().as_ref() == Some(c) => {
                Some((content.clone(), frank.clone(), context.accepted_timestamp))
            }
            _ => None,
        })
    }

    /// Messages whose frank did not verify here, with the reason.
    pub fn flagged(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Message {
                    frank: mimi_room::franking::FrankCheck::Invalid(why),
                    ..
                } => Some(why.clone()),
                _ => None,
            })
            .collect()
    }

    /// Sends reportAbuse for one message through the home node: the status and reason.
    pub async fn report(
        &self,
        room: &RoomUri,
        alleged_abuser: &str,
        message: (Vec<u8>, mimi_wire::common::Frank, u64),
    ) -> (StatusCode, String) {
        let report = mimi_wire::abuse::AbuseReport {
            reporting_user: Some(self.dev.user.clone()),
            alleged_abuser_uri: UserUri::parse(alleged_abuser).unwrap(),
            reason_code: 0,
            note: "reported by the interop flow".into(),
            messages: vec![mimi_wire::abuse::AbusiveMessage {
                message_content: message.0,
                frank: message.1,
                accepted_timestamp: message.2,
            }],
            extensions: Default::default(),
        };
        let (st, b) = call(
            &self.api,
            Method::POST,
            &format!("reportAbuse/{}", enc(room.as_str())),
            report.encode(),
        )
        .await;
        (st, String::from_utf8_lossy(&b).into_owned())
    }

    /// The messages this device received, in order.
    pub fn messages(&self) -> Vec<MimiContent> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                Event::Message { content, .. } => MimiContent::decode(content).ok(),
                _ => None,
            })
            .collect()
    }

    pub async fn add(&mut self, room: &RoomUri, target: &str) {
        let target = UserUri::parse(target).unwrap();
        // ROOM-suites: KeyPackages of the room's suite.
        let suite = self.rooms[room].group.ciphersuite();
        let req = self
            .dev
            .key_material_request_in(room, &target, &[suite])
            .unwrap();
        let resp = post_key_material(&self.api, &target, &req).await;
        assert_eq!(resp.user_status, KeyMaterialUserCode::SUCCESS, "{resp:?}");
        let kps: Vec<Vec<u8>> = resp
            .clients
            .iter()
            .map(|c| match &c.material {
                ClientMaterial::KeyPackage(k) => k.as_bytes().to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        let r = self.rooms.get_mut(room).unwrap();
        let out = r.add_users(&self.dev, &[(target, 2)], &kps).unwrap();
        let outcome = post_update(&self.api, room, &out.bundle).await;
        assert!(
            matches!(outcome, UpdateOutcome::Success { .. }),
            "{outcome:?}"
        );
        self.rooms.get_mut(room).unwrap().merge(&self.dev).unwrap();
    }

    pub async fn send(&mut self, room: &RoomUri, text: &str) -> MimiContent {
        // Franked content names its sender and room (PROTO-5.4.1-frank-aad).
        let content = mimi_content::build::ContentBuilder::new(
            rand16(),
            mimi_content::NestedPart::text(text),
        )
        .sender_and_room(self.dev.user.as_str(), room.as_str())
        .build();
        let r = self.rooms.get_mut(room).unwrap();
        let req = r.send(&self.dev, &content.encode().unwrap()).unwrap();
        let outcome = post_submit(&self.api, room, &req).await;
        assert!(
            matches!(outcome, SubmitOutcome::Accepted { .. }),
            "{outcome:?}"
        );
        content
    }

    /// Fetches and processes the queue until `done` holds (bounded: 100 long-polls).
    pub async fn sync_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let mut resynced: Vec<RoomUri> = Vec::new();
        for _ in 0..100 {
            if done(self) {
                return;
            }
            for item in &fetch_queue(&self.api, self.cursor).await {
                let room = RoomUri::parse(item["room"].as_str().unwrap()).unwrap();
                let body = hex::decode(item["body"].as_str().unwrap()).unwrap();
                if body.is_empty() {
                    // STORE-retention: the home node says this device must resync the room.
                    assert_eq!(item["resync"], true, "{item}");
                    self.cursor = item["seq"].as_u64().unwrap();
                    self.resyncs += 1;
                    if self.rooms.contains_key(&room) {
                        self.join(&room, &[]).await.unwrap();
                        resynced.push(room);
                    }
                    continue;
                }
                let f = FanoutMessage::decode(&body).unwrap();
                if let FanoutExtra::Welcome(tree) = &f.extra {
                    let r = self.dev.join_from_welcome(&room, &f.message, tree).unwrap();
                    self.rooms.insert(room.clone(), r);
                    self.seen.push(Event::Commit {
                        epoch: self.rooms[&room].epoch(),
                        removed: false,
                    });
                    self.seen_at.push(std::time::Instant::now());
                } else if let Some(r) = self.rooms.get_mut(&room) {
                    match r.process(&self.dev, &f) {
                        Ok(e) => {
                            self.seen.push(e);
                            self.seen_at.push(std::time::Instant::now());
                        }
                        // After a resync the device is a new leaf: what the old one would
                        // have read is not for it (STORE-retention).
                        Err(_) if resynced.contains(&room) => {}
                        Err(e) => panic!("{}: {e}", self.dev.client),
                    }
                }
                self.cursor = item["seq"].as_u64().unwrap();
            }
            ack_queue(&self.api, self.cursor).await;
        }
        panic!("{}: {what} did not happen", self.dev.client);
    }

    pub fn got(&self, c: &MimiContent) -> usize {
        self.seen
            .iter()
            .filter(|e| matches!(e, Event::Message { content, .. } if MimiContent::decode(content).ok().as_ref() == Some(c)))
            .count()
    }

    pub fn epoch(&self, room: &RoomUri) -> u64 {
        self.rooms.get(room).map_or(0, Room::epoch)
    }
}

pub fn rand16() -> [u8; 16] {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).unwrap();
    b
}
