//! The node's configuration file (TOML).
//!
//! ```toml
//! domain = "a.example"                  # the provider this node is (required)
//! listen = "127.0.0.1:4433"             # QUIC/HTTP/3 for peers and clients (default)
//! admin_listen = "127.0.0.1:9433"       # /metrics, /status, /rooms, /events (optional; loopback only)
//! data_dir = "."                        # relative to this file (default: its directory)
//! database = "sqlite"                   # "sqlite" (node.sqlite in data_dir) or a postgres:// URL
//!
//! [sqlite]                              # when database is SQLite
//! cache_kib = 256                       # page cache per connection (six per file), KiB
//! [tls]
//! certificate = "a.example.crt"         # PEM, DNS name = domain (relative to data_dir)
//! key = "a.example.key"                 # PEM
//! trusted_roots = ["ca.crt"]            # federation CA(s) peers' certificates must chain to
//!
//! [peers]                               # static addresses, for local federations
//! "b.example" = "127.0.0.1:4434"
//!
//! [limits]
//! max_body_bytes = 1048576              # per request body
//! max_concurrent_streams = 256          # per connection
//! request_timeout_ms = 10000            # per request
//!
//! [assets]                             # attachments (protocol-06 §5.10), kept on disk
//! dir = "assets"                        # relative to data_dir
//! max_bytes = 268435456                 # largest upload (ciphertext + tag), 256 MiB
//!
//! [registration]
//! open = false                          # anyone may register a device (local federations)
//!
//! [outbox]
//! retry_base_ms = 200
//! retry_max_ms = 60000
//! batch_max_bytes = 262144              # FanoutMessages per notify body, by size
//!
//! [hub]
//! cache_rooms = 512                     # hosted rooms kept decoded in memory (least recently used go)
//!
//! [retention]                           # seconds
//! inbox_seen_s = 604800                 # follower: notify item hashes (dedupe window)
//! room_events_s = 2592000               # hub: the room event log (at least outbox_s)
//! outbox_s = 604800                     # hub: notifies a follower never took; then it resyncs
//! interval_s = 300                      # how often to prune
//!
//! [faults]                              # deliberate protocol faults, for conformance testing only
//! reuse_key_packages = false            # keyMaterial hands out the same KeyPackage again
//! notify_repeat_status = 500            # answer a repeated notify body with this status (unset: 201)
//! identifier_query_first_element_only = false  # identifierQuery ignores every query element but the first
//! key_material_ignores_consent = false  # keyMaterial hands out KeyPackages of contacts-only users without consent
//! report_abuse_any_reporter = false     # reportAbuse accepts a reporter who is not the calling provider's user
//! group_info_without_pending = false    # groupInfo hands out no pending proposals
//! group_info_accepts_any_code = false   # groupInfo takes any joiningCode for a valid join link's
//! join_link_reuse = false               # a code join may keep a single-use link
//! follower_keeps_removed_members = false  # a follower delivers to devices a commit removed
//! frank_wrong_key = false               # the hub signs franks with another key than its own
//! external_commit_any_requester = false # the hub takes external commits without a groupInfo request
//! external_commit_any_key = false      # ... with a groupInfo request by the same client URI, any key
//! follower_drops_hub_proposals = false # a follower does not deliver the hub's own proposals
//! asset_policy_ignored = false         # the hub ignores its room's asset policy (uploads, downloads)
//! proxy_download_any_provider = false  # proxyDownload serves providers without clients in the room
//! join_link_never_expires = false      # groupInfo takes an expired join link's code
//! directory_http_templates = false     # the directory's templates are http://
//! notify_accepts_malformed = false     # a notify body that does not decode gets 201
//! report_abuse_accepts_malformed = false  # a reportAbuse body that does not decode gets 201
//! identifier_query_not_found_success = false  # identifierQuery answers success when nothing matches
//! key_material_unknown_user_success = false  # keyMaterial answers success for an unknown user
//! group_info_any_requester = false     # groupInfo hands the GroupInfo to anyone who asks
//! consent_request_any_operation = false  # requestConsent answers 201 to a grant or revoke
//! consent_grant_unchecked = false       # updateConsent keeps a grant's KeyPackages unchecked
//! resync_refused = false               # the hub refuses a member's external commit (resync)
//! external_commit_removes_any_leaf = false  # the hub takes an external commit removing another client
//! operational_policy_ignored = false   # the hub ignores its room's MLS operational parameters
//! ```
//!
//! Unknown keys are refused (a typo must not silently fall back to a default).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a key of the wrong type, or an unknown key.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the TOML reader says (with line and column).
        message: String,
    },
    /// A value that is well-formed but not acceptable.
    #[error("{path}: `{key}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    domain: String,
    #[serde(default = "default_listen")]
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default = "default_database")]
    database: String,
    tls: RawTls,
    #[serde(default)]
    peers: BTreeMap<String, String>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    registration: Registration,
    #[serde(default)]
    assets: RawAssets,
    #[serde(default)]
    outbox: Outbox,
    #[serde(default)]
    retention: Retention,
    #[serde(default)]
    hub: Hub,
    #[serde(default)]
    sqlite: Sqlite,
    #[serde(default)]
    faults: Faults,
}

/// The default largest attachment upload: 256 MiB.
pub const DEFAULT_MAX_ASSET_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAssets {
    dir: PathBuf,
    max_bytes: u64,
}

impl Default for RawAssets {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("assets"),
            max_bytes: DEFAULT_MAX_ASSET_BYTES,
        }
    }
}

/// `[assets]`: attachments kept by this provider (`PROTO-5.10-upload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assets {
    /// The directory blobs are kept in (absolute, or relative to the working directory).
    pub dir: PathBuf,
    /// The largest upload in octets (`PROTO-5.10-size`).
    pub max_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate: PathBuf,
    key: PathBuf,
    trusted_roots: Vec<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4433))
}

fn default_database() -> String {
    "sqlite".to_owned()
}

/// Request limits (each refusal is a clear HTTP status).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Concurrent requests per connection.
    pub max_concurrent_streams: u32,
    /// Time allowed for one request.
    pub request_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_concurrent_streams: 256,
            request_timeout_ms: 10_000,
        }
    }
}

/// Device registration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Registration {
    /// Anyone who can reach the node may register a device (for local federations).
    pub open: bool,
}

/// Faults a node can be told to commit, for conformance runners and research (never in
/// production): each one breaks a requirement of the drafts on purpose.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// keyMaterial hands out the same KeyPackage again (breaks "never reuse").
    pub reuse_key_packages: bool,
    /// A repeated notify body is answered with this status instead of 201.
    pub notify_repeat_status: Option<u16>,
    /// identifierQuery matches the first query element only (breaks "AND of the elements",
    /// protocol-06 §5.8).
    pub identifier_query_first_element_only: bool,
    /// keyMaterial ignores a contacts-only user's consent (breaks §5.2/§5.7 `noConsent`).
    pub key_material_ignores_consent: bool,
    /// reportAbuse accepts a reporting user of another provider than the caller (breaks
    /// §5.9's "the reporter is a user of the calling provider").
    pub report_abuse_any_reporter: bool,
    /// groupInfo's `pending_proposals` is always empty (breaks §5.6 `PROTO-5.6-pending`).
    pub group_info_without_pending: bool,
    /// groupInfo treats any non-empty joiningCode as a valid join link's (breaks
    /// `PROTO-5.6-joining-code`).
    pub group_info_accepts_any_code: bool,
    /// The hub accepts a code join that keeps a single-use link (breaks `ROOM-join-links`).
    pub join_link_reuse: bool,
    /// The follower keeps delivering to devices a commit removed (breaks
    /// `PROTO-follower-membership`).
    pub follower_keeps_removed_members: bool,
    /// The hub signs franks with a key that is not the room's hub key (breaks
    /// `PROTO-5.4.1-frank`).
    pub frank_wrong_key: bool,
    /// The hub accepts an external commit from a client it did not give the GroupInfo to
    /// (breaks `PROTO-5.6-requester`).
    pub external_commit_any_requester: bool,
    /// The hub ties an external commit to a groupInfo request by client URI only, not by
    /// the request's signature key (breaks `PROTO-5.6-requester`, the key half).
    pub external_commit_any_key: bool,
    /// The follower does not deliver the hub's own (external) proposals to its members
    /// (breaks `PROTO-hub-removal` at the follower).
    pub follower_drops_hub_proposals: bool,
    /// The hub takes uploads and serves downloads its room's asset policy forbids (breaks
    /// `ROOM-policy-assets` at the node, `PROTO-5.10-policy`, `PROTO-5.10-policy-host`).
    pub asset_policy_ignored: bool,
    /// proxyDownload serves any calling provider, with clients in the asset's room or not
    /// (breaks `PROTO-5.10-member` at the hub).
    pub proxy_download_any_provider: bool,
    /// groupInfo takes a join link's code after the link expired (breaks `ROOM-join-links`
    /// expiration).
    pub join_link_never_expires: bool,
    /// The directory's templates are `http://` (breaks §4.2's https templates).
    pub directory_http_templates: bool,
    /// A notify body that does not decode is answered 201 (breaks `WIRE-decode`).
    pub notify_accepts_malformed: bool,
    /// A reportAbuse body that does not decode is answered 201 (breaks `WIRE-decode`).
    pub report_abuse_accepts_malformed: bool,
    /// identifierQuery answers `success` (with no URIs) when nothing matches (breaks §5.8
    /// `notFound`).
    pub identifier_query_not_found_success: bool,
    /// keyMaterial answers `success` (with no clients) for a user it does not know (breaks
    /// §5.2 `userUnknown`).
    pub key_material_unknown_user_success: bool,
    /// groupInfo gives the GroupInfo to a requester who may not join (breaks
    /// `PROTO-5.6-authorised`).
    pub group_info_any_requester: bool,
    /// requestConsent answers 201 to a grant or revoke (and drops it) instead of 400 (breaks
    /// §5.7 `PROTO-5.7-request`).
    pub consent_request_any_operation: bool,
    /// updateConsent keeps a grant's KeyPackages without checking them (breaks
    /// `PROTO-5.7-grant-checked`: a KeyPackage of another user, or an expired one, would be
    /// handed to the requester).
    pub consent_grant_unchecked: bool,
    /// The hub refuses an external commit by a client that is a member already (a resync,
    /// RFC 9420 §12.4.3.2; breaks `ROOM-resync`).
    pub resync_refused: bool,
    /// The hub accepts an external commit whose Remove is of another client than the
    /// joiner (breaks `ROOM-resync`, RFC 9420 §12.4.3.2).
    pub external_commit_removes_any_leaf: bool,
    /// The hub ignores its room's MLS operational parameters (breaks
    /// `ROOM-policy-operational-*` at the hub).
    pub operational_policy_ignored: bool,
    /// The node's clock runs this many milliseconds ahead of the system clock (negative:
    /// behind): the accepted timestamps it stamps, join-link expiry, retention (mimi-lab's
    /// `clock-skew`). TLS certificate checks keep the system clock.
    pub clock_offset_ms: i64,
}

/// The hub's outbox.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Outbox {
    /// First retry delay.
    pub retry_base_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Largest notify body.
    pub batch_max_bytes: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            retry_base_ms: 200,
            retry_max_ms: 60_000,
            batch_max_bytes: 256 * 1024,
        }
    }
}

/// The hub's memory (`PROTO-hub-cache`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Hub {
    /// Hosted rooms kept decoded between requests; beyond it the least recently used one is
    /// dropped (and read from storage again when next needed).
    pub cache_rooms: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Self { cache_rooms: 512 }
    }
}

/// `[sqlite]`: how the node's SQLite file is used (`STORE-sqlite-cache`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Sqlite {
    /// The page cache of each connection to the file, in KiB (the file has one writer, four
    /// readers and the checkpointer's connection).
    pub cache_kib: u32,
}

impl Default for Sqlite {
    fn default() -> Self {
        Self {
            cache_kib: mimi_store::StoreOptions::DEFAULT_SQLITE_CACHE_KIB,
        }
    }
}

/// How long the node keeps what it no longer needs (`STORE-retention`), in seconds.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Follower: hashes of notify items seen (the dedupe window for hubs that repeat a body
    /// without a stream number).
    pub inbox_seen_s: u64,
    /// Hub: the room event log.
    pub room_events_s: u64,
    /// Hub: undelivered notify bodies of a follower that stays unreachable; after this the
    /// follower's stream resumes after them and its devices resync.
    pub outbox_s: u64,
    /// How often the node prunes.
    pub interval_s: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            inbox_seen_s: 7 * 86_400,
            room_events_s: 30 * 86_400,
            outbox_s: 7 * 86_400,
            interval_s: 300,
        }
    }
}

/// Where the node keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (WAL).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(String),
}

/// TLS material, paths resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The node's certificate chain (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Roots that peers' certificates must chain to (PEM).
    pub trusted_roots: Vec<PathBuf>,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The provider this node is.
    pub domain: String,
    /// QUIC listener.
    pub listen: SocketAddr,
    /// Admin (metrics) listener.
    pub admin_listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Storage.
    pub database: Database,
    /// TLS material.
    pub tls: Tls,
    /// Static peer addresses: provider domain → `host:port`.
    pub peers: BTreeMap<String, String>,
    /// Request limits.
    pub limits: Limits,
    /// Device registration.
    pub registration: Registration,
    /// Attachments (`[assets]`).
    pub assets: Assets,
    /// Outbox behaviour.
    pub outbox: Outbox,
    /// Retention of logs, dedupe records and undeliverable notifies.
    pub retention: Retention,
    /// The hub's memory.
    pub hub: Hub,
    /// SQLite (`[sqlite]`).
    pub sqlite: Sqlite,
    /// Deliberate faults (testing only).
    pub faults: Faults,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Checks configuration text; relative paths are taken from `base` (the file's directory).
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let domain = raw.domain.to_ascii_lowercase();
        check_domain(&domain).map_err(|p| invalid("domain", p))?;
        let data_dir = match raw.data_dir {
            Some(d) if d.is_absolute() => d,
            Some(d) => base.join(d),
            None => base.to_owned(),
        };
        let database = if raw.database == "sqlite" {
            Database::Sqlite(data_dir.join("node.sqlite"))
        } else if let Some(file) = raw.database.strip_prefix("sqlite:") {
            let p = PathBuf::from(file.trim_start_matches("//"));
            Database::Sqlite(if p.is_absolute() { p } else { data_dir.join(p) })
        } else if raw.database.starts_with("postgres://")
            || raw.database.starts_with("postgresql://")
        {
            Database::Postgres(raw.database.clone())
        } else {
            return Err(invalid(
                "database",
                "expected \"sqlite\", \"sqlite:<file>\" or a postgres:// URL".to_owned(),
            ));
        };
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { data_dir.join(p) };
        if raw.tls.trusted_roots.is_empty() {
            return Err(invalid(
                "tls.trusted_roots",
                "name at least one CA certificate (PEM) that peers' certificates chain to"
                    .to_owned(),
            ));
        }
        let tls = Tls {
            certificate: resolve(raw.tls.certificate),
            key: resolve(raw.tls.key),
            trusted_roots: raw.tls.trusted_roots.into_iter().map(resolve).collect(),
        };
        let mut peers = BTreeMap::new();
        for (peer, addr) in raw.peers {
            let peer_l = peer.to_ascii_lowercase();
            check_domain(&peer_l).map_err(|p| invalid(&format!("peers.\"{peer}\""), p))?;
            if peer_l == domain {
                return Err(invalid(
                    &format!("peers.\"{peer}\""),
                    "a node is not its own peer".to_owned(),
                ));
            }
            check_host_port(&addr).map_err(|p| invalid(&format!("peers.\"{peer}\""), p))?;
            peers.insert(peer_l, addr);
        }
        if raw.limits.max_body_bytes == 0
            || raw.limits.max_concurrent_streams == 0
            || raw.limits.request_timeout_ms == 0
        {
            return Err(invalid(
                "limits",
                "limits must be greater than zero".to_owned(),
            ));
        }
        if raw.outbox.retry_base_ms == 0 || raw.outbox.retry_max_ms < raw.outbox.retry_base_ms {
            return Err(invalid(
                "outbox",
                "need 0 < retry_base_ms <= retry_max_ms".to_owned(),
            ));
        }
        if raw.assets.max_bytes == 0 {
            return Err(invalid(
                "assets.max_bytes",
                "must be greater than zero".to_owned(),
            ));
        }
        let assets = Assets {
            dir: resolve(raw.assets.dir),
            max_bytes: raw.assets.max_bytes,
        };
        if raw.outbox.batch_max_bytes == 0 {
            return Err(invalid(
                "outbox.batch_max_bytes",
                "must be greater than zero".to_owned(),
            ));
        }
        let r = &raw.retention;
        if r.inbox_seen_s == 0 || r.outbox_s == 0 || r.interval_s == 0 {
            return Err(invalid(
                "retention",
                "inbox_seen_s, outbox_s and interval_s must be greater than zero".to_owned(),
            ));
        }
        // The admin listener has no authentication (/status, /rooms, /events show who is in
        // which room): it serves the machine itself only.
        if let Some(a) = raw.admin_listen
            && !a.ip().is_loopback()
        {
            return Err(invalid(
                "admin_listen",
                format!(
                    "{a} is not a loopback address: the admin listener has no authentication, use 127.0.0.1 or ::1 (and a reverse proxy with authentication to reach it from elsewhere)"
                ),
            ));
        }
        let max_cache = mimi_store::StoreOptions::MAX_SQLITE_CACHE_KIB;
        if !(1..=max_cache).contains(&raw.sqlite.cache_kib) {
            return Err(invalid(
                "sqlite.cache_kib",
                format!(
                    "{} is out of range: the page cache per connection is 1 to {max_cache} KiB",
                    raw.sqlite.cache_kib
                ),
            ));
        }
        if raw.hub.cache_rooms == 0 {
            return Err(invalid(
                "hub.cache_rooms",
                "must be at least 1 (the room being worked on is kept)".to_owned(),
            ));
        }
        if r.room_events_s < r.outbox_s {
            return Err(invalid(
                "retention.room_events_s",
                "must be at least outbox_s (the outbox ages its rows by their events)".to_owned(),
            ));
        }
        Ok(Self {
            domain,
            listen: raw.listen,
            admin_listen: raw.admin_listen,
            data_dir,
            database,
            tls,
            peers,
            limits: raw.limits,
            registration: raw.registration,
            assets,
            outbox: raw.outbox,
            retention: raw.retention,
            hub: raw.hub,
            sqlite: raw.sqlite,
            faults: raw.faults,
        })
    }
}

/// A provider domain: a DNS name of LDH labels (RFC 1123), at least two labels, no trailing dot.
fn check_domain(d: &str) -> Result<(), String> {
    let labels: Vec<&str> = d.split('.').collect();
    let ok_label = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(ok_label) {
        return Err(format!(
            "{d:?} is not a provider domain (a DNS name such as a.example)"
        ));
    }
    Ok(())
}

/// `host:port` with a port.
fn check_host_port(a: &str) -> Result<(), String> {
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!("{a:?} is not host:port"));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!(
            "{a:?} is not host:port with a port from 1 to 65535"
        ));
    }
    Ok(())
}
