//! `mimi-conformance`: tests a MIMI provider against draft-ietf-mimi-protocol-06 by acting as a
//! peer provider. The runner is a provider of its own (an in-process mimi-node with its own
//! certificate, SQLite file and test devices, `spec-notes/conformance.md`); it drives the
//! target through the draft's flows, with the target as the hub of a room and as a follower,
//! and records one check per requirement: pass, fail (with the bytes sent and received) or not
//! applicable (with why).
//!
//! The target's own users are created through the target's client API (`/client/v1/`, ours);
//! a target without it gets "not applicable" for the flows that need users on its side.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, Method, StatusCode};
use mimi_content::MimiContent;
use mimi_harness::{Person, ProcNode, call, rand16, tag, write_config_with};
use mimi_net::NetLimits;
use mimi_net::client::{ClientApi, Connector};
use mimi_net::paths::{DIRECTORY_PATH, Endpoint, path};
use mimi_net::pki::{Ca, certs_from_pem, load_certs, load_key};
use mimi_node::config::Config;
use mimi_node::run::{Running, start};
use mimi_wire::abuse::AbuseReport;
use mimi_wire::codec::Body;
use mimi_wire::components::RoomMetaData;
use mimi_wire::consent::{ConsentEntry, ConsentOperation, ConsentScope};
use mimi_wire::directory::Directory;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::group_info::{GroupInfoCode, GroupInfoResponse};
use mimi_wire::id::{RoomUri, UserUri};
use mimi_wire::identifier::{
    IdentifierQueryCode, IdentifierRequest, IdentifierResponse, QueryElement, SearchIdentifierType,
};
use mimi_wire::key_material::{ClientMaterial, KeyMaterialResponse, KeyMaterialUserCode};
use mimi_wire::submit::{SubmitMessageRequest, SubmitMessageResponse, SubmitOutcome};
use mimi_wire::update::{UpdateOutcome, UpdateRoomResponse};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which side of a room the target is tested as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The target hosts the room.
    Hub,
    /// The runner hosts the room; the target's user is a member.
    Follower,
    /// Both, one after the other.
    Both,
}

/// Called with the runner's domain and address once its provider listens (a test uses it to
/// tell an in-process target where the runner is).
pub type Announce = std::sync::Arc<dyn Fn(&str, SocketAddr) + Send + Sync>;

/// How the runner is set up.
#[derive(Clone)]
pub struct Options {
    /// The target provider's domain.
    pub target: String,
    /// Its address (`host:port`).
    pub target_addr: String,
    /// What to test.
    pub role: Role,
    /// The runner's own provider domain (the target must list it as a peer).
    pub me: String,
    /// Where the runner's provider listens (the target must be able to reach it).
    pub listen: SocketAddr,
    /// A CA directory (`ca.crt`, `ca.key`) the target trusts: the runner issues its own
    /// certificate from it.
    pub ca_dir: PathBuf,
    /// Where the runner keeps its files.
    pub work_dir: PathBuf,
    /// Use the target's client API to create its test users.
    pub target_client_api: bool,
    /// Told where the runner listens, before any check runs.
    pub announce: Option<Announce>,
}

/// A check's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// The target did what the draft says.
    Pass,
    /// It did not: why.
    Fail(String),
    /// The check could not run against this target: why.
    NotApplicable(String),
}

/// One check.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    /// Our name of the check (`keyMaterial.never-reused`).
    pub id: String,
    /// The draft section.
    pub section: String,
    /// Our requirement ID (`spec-notes/`).
    pub requirement: String,
    /// The result.
    pub outcome: Outcome,
    /// The request body sent, hex (on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// The answer received: status and body, hex (on failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
}

/// Everything the runner found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// The target.
    pub target: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, id: &str, section: &str, req: &str, outcome: Outcome) {
        self.checks.push(Check {
            id: id.into(),
            section: section.into(),
            requirement: req.into(),
            outcome,
            sent: None,
            received: None,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn add_x(
        &mut self,
        id: &str,
        section: &str,
        req: &str,
        outcome: Outcome,
        sent: &[u8],
        status: u16,
        received: &[u8],
    ) {
        let failed = matches!(outcome, Outcome::Fail(_));
        self.checks.push(Check {
            id: id.into(),
            section: section.into(),
            requirement: req.into(),
            outcome,
            sent: failed.then(|| hex::encode(sent)),
            received: failed.then(|| format!("{status} {}", hex::encode(received))),
        });
    }

    /// How many failed.
    pub fn failures(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .count()
    }

    /// The check with this ID.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// A summary for people.
    pub fn human(&self) -> String {
        let mut out = format!("mimi-conformance against {}\n", self.target);
        for c in &self.checks {
            let (mark, why) = match &c.outcome {
                Outcome::Pass => ("pass", String::new()),
                Outcome::Fail(r) => ("FAIL", format!(": {r}")),
                Outcome::NotApplicable(r) => ("n/a ", format!(": {r}")),
            };
            out.push_str(&format!(
                "  {mark}  {:<40} {} [{}]{why}\n",
                c.id, c.section, c.requirement
            ));
            if let (Some(s), Some(r)) = (&c.sent, &c.received) {
                out.push_str(&format!("        sent {s}\n        got  {r}\n"));
            }
        }
        let pass = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Pass)
            .count();
        out.push_str(&format!(
            "{pass} passed, {} failed, {} not applicable\n",
            self.failures(),
            self.checks.len() - pass - self.failures()
        ));
        out
    }

    /// JUnit XML (for CI systems).
    pub fn junit(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let skipped = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::NotApplicable(_)))
            .count();
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"mimi-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{skipped}\">\n",
            self.checks.len(),
            self.failures()
        );
        for c in &self.checks {
            x.push_str(&format!(
                "  <testcase classname=\"{}\" name=\"{} [{}]\">",
                esc(&c.section),
                esc(&c.id),
                esc(&c.requirement)
            ));
            match &c.outcome {
                Outcome::Pass => {}
                Outcome::Fail(r) => x.push_str(&format!(
                    "<failure message=\"{}\">sent {}\nreceived {}</failure>",
                    esc(r),
                    c.sent.as_deref().unwrap_or("-"),
                    esc(c.received.as_deref().unwrap_or("-"))
                )),
                Outcome::NotApplicable(r) => {
                    x.push_str(&format!("<skipped message=\"{}\"/>", esc(r)))
                }
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("</testsuite>\n");
        x
    }
}

fn pass_if(ok: bool, why: impl FnOnce() -> String) -> Outcome {
    if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(why())
    }
}

/// The runner's own provider and connections.
struct Runner {
    opts: Options,
    node: Running,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    peer: Connector,
    my_dir: PathBuf,
}

impl Runner {
    async fn start(opts: &Options) -> Result<Self, String> {
        let ca = Ca::load(&opts.ca_dir.join("ca.crt"), &opts.ca_dir.join("ca.key"))
            .map_err(|e| format!("the CA in {}: {e}", opts.ca_dir.display()))?;
        std::fs::create_dir_all(&opts.work_dir).map_err(|e| e.to_string())?;
        std::fs::write(opts.work_dir.join("ca.crt"), &ca.cert_pem).map_err(|e| e.to_string())?;
        let name = format!("runner-{}", tag());
        let cfg_path = write_config_with(
            &opts.work_dir,
            &ca,
            &opts.me,
            &name,
            "sqlite",
            &[(opts.target.clone(), opts.target_addr.clone())],
            10_000,
            "",
        );
        let mut text = std::fs::read_to_string(&cfg_path).map_err(|e| e.to_string())?;
        text = text.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"{}\"", opts.listen),
        );
        std::fs::write(&cfg_path, text).map_err(|e| e.to_string())?;
        let cfg = Config::load(&cfg_path).map_err(|e| e.to_string())?;
        let node = start(&cfg).await.map_err(|e| e.to_string())?;
        if let Some(a) = &opts.announce {
            a(&opts.me, node.addr);
        }
        let my_dir = opts.work_dir.join(&name);
        let roots = certs_from_pem(&ca.cert_pem, "ca").map_err(|e| e.to_string())?;
        let peer = Connector::provider(
            &opts.me,
            &load_certs(&my_dir.join("node.crt")).map_err(|e| e.to_string())?,
            &load_key(&my_dir.join("node.key")).map_err(|e| e.to_string())?,
            &roots,
            HashMap::from([(opts.target.clone(), opts.target_addr.clone())]),
            NetLimits::default(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            opts: opts.clone(),
            node,
            roots,
            peer,
            my_dir,
        })
    }

    /// The runner's own client API (its test devices live there).
    fn my_api(&self) -> ClientApi {
        ClientApi::new(
            &self.opts.me,
            &self.node.addr.to_string(),
            &self.roots,
            NetLimits::default(),
        )
        .expect("client API of the runner's own node")
    }

    /// The target's client API (its test users), if we may use it.
    /// The target's client API, or every check of `ids` reported not applicable (the runner
    /// needs users on the target for them).
    fn target_users(
        &self,
        report: &mut Report,
        ids: &[&str],
        section: &str,
        req: &str,
    ) -> Option<ClientApi> {
        let api = self.target_api();
        if api.is_none() {
            for id in ids {
                report.add(
                    id,
                    section,
                    req,
                    Outcome::NotApplicable(
                        "needs users on the target: run with the target's client API".into(),
                    ),
                );
            }
        }
        api
    }

    fn target_api(&self) -> Option<ClientApi> {
        self.opts.target_client_api.then(|| {
            ClientApi::new(
                &self.opts.target,
                &self.opts.target_addr,
                &self.roots,
                NetLimits::default(),
            )
            .expect("client API of the target")
        })
    }

    async fn post(&self, e: Endpoint, id: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        match self
            .peer
            .request(
                &self.opts.target,
                Method::POST,
                &path(e, id),
                HeaderMap::new(),
                Bytes::from(body),
            )
            .await
        {
            Ok(r) => (r.status.as_u16(), r.body.to_vec()),
            Err(e) => (0, e.to_string().into_bytes()),
        }
    }
}

/// Runs every check.
pub async fn run(opts: &Options) -> Report {
    let mut report = Report {
        target: format!("{} at {}", opts.target, opts.target_addr),
        ..Report::default()
    };
    let runner = match Runner::start(opts).await {
        Ok(r) => r,
        Err(e) => {
            report.add(
                "runner.start",
                "-",
                "-",
                Outcome::Fail(format!("the runner could not start its own provider: {e}")),
            );
            return report;
        }
    };
    directory(&runner, &mut report).await;
    transport(&runner, &mut report).await;
    identifier_query(&runner, &mut report).await;
    // A flow that stops (a panic: the target answered something the flow cannot go on
    // from) is one failed check of its own; the checks it recorded before stay.
    macro_rules! guarded {
        ($flow:expr, $id:literal, $sect:literal, $req:literal, $what:literal) => {
            if let Err(p) = std::panic::AssertUnwindSafe($flow).catch_unwind().await {
                report.add(
                    $id,
                    $sect,
                    $req,
                    Outcome::Fail(format!(concat!($what, " stopped: {}"), panic_text(&p))),
                );
            }
        };
    }
    if matches!(opts.role, Role::Hub | Role::Both) {
        guarded!(
            as_hub(&runner, &mut report),
            "hub.flow",
            "§3",
            "PROTO-flow",
            "the flow with the target as hub"
        );
        guarded!(
            mls_rs_device_at_hub(&runner, &mut report),
            "hub.mls-rs-device",
            "§5.2, §5.4, §5.5",
            "INTEROP-mixed-federation",
            "the flow with an mls-rs device"
        );
        guarded!(
            operational_at_hub(&runner, &mut report),
            "update.external-commit-forbidden",
            "room-policy-03 §7",
            "ROOM-policy-operational-external-commit",
            "the MLS operational parameters check"
        );
        guarded!(
            download_privacy_at_hub(&runner, &mut report),
            "proxyDownload.privacy-forbidden",
            "§5.10, room-policy-03 DownloadPrivacy",
            "ROOM-policy-download-privacy",
            "the download-privacy check"
        );
    }
    if matches!(opts.role, Role::Follower | Role::Both) {
        guarded!(
            as_follower(&runner, &mut report),
            "follower.flow",
            "§3",
            "PROTO-flow",
            "the flow with the target as follower"
        );
    }
    runner.node.shutdown().await;
    report
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic".into())
}

async fn directory(r: &Runner, report: &mut Report) {
    let resp = r
        .peer
        .request(
            &r.opts.target,
            Method::GET,
            DIRECTORY_PATH,
            HeaderMap::new(),
            Bytes::new(),
        )
        .await;
    let Ok(resp) = resp else {
        report.add(
            "directory.present",
            "§4.2",
            "PROTO-directory",
            Outcome::Fail(format!(
                "no answer: {}",
                resp.err().map(|e| e.to_string()).unwrap_or_default()
            )),
        );
        return;
    };
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    report.add_x(
        "directory.present",
        "§4.2",
        "PROTO-directory",
        pass_if(resp.status == StatusCode::OK, || {
            format!("GET {DIRECTORY_PATH} answered {}", resp.status)
        }),
        b"",
        resp.status.as_u16(),
        &resp.body,
    );
    let parsed = Directory::from_json(&text);
    let outcome = match &parsed {
        Ok(d) => {
            let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap_or_default();
            let mut bad = Vec::new();
            for e in Endpoint::ALL {
                let t = json[e.name()].as_str().unwrap_or_default();
                let expanded = t.replace(&format!("{{{}}}", e.variable()), "x");
                if !t.contains(&format!("{{{}}}", e.variable()))
                    || !expanded.starts_with("https://")
                    || expanded.contains('{')
                {
                    bad.push(e.name());
                }
            }
            pass_if(bad.is_empty(), || {
                format!("templates that do not expand: {bad:?}")
            })
        }
        Err(e) => Outcome::Fail(format!("not the draft's directory JSON: {e}")),
    };
    report.add_x(
        "directory.templates",
        "§4.2",
        "PROTO-directory",
        outcome,
        b"",
        resp.status.as_u16(),
        &resp.body,
    );
}

async fn transport(r: &Runner, report: &mut Report) {
    let peers = HashMap::from([(r.opts.target.clone(), r.opts.target_addr.clone())]);
    let p = path(
        Endpoint::Update,
        &format!("mimi://{}/r/conformance", r.opts.target),
    );
    let body = Bytes::from_static(b"\x01");
    let anon = Connector::anonymous(&r.roots, peers.clone(), NetLimits::default());
    let outcome = match anon {
        Ok(c) => match c
            .request(
                &r.opts.target,
                Method::POST,
                &p,
                HeaderMap::new(),
                body.clone(),
            )
            .await
        {
            Ok(resp) => pass_if(
                resp.status == StatusCode::UNAUTHORIZED || resp.status == StatusCode::FORBIDDEN,
                || format!("a request without a client certificate got {}", resp.status),
            ),
            // Refused during the handshake: also a refusal.
            Err(_) => Outcome::Pass,
        },
        Err(e) => Outcome::NotApplicable(e.to_string()),
    };
    report.add("mtls.no-certificate", "§4.1", "NET-mtls-required", outcome);
    let liar = Connector::provider(
        "impostor.example",
        &load_certs(&r.my_dir.join("node.crt")).unwrap_or_default(),
        &load_key(&r.my_dir.join("node.key")).expect("runner key"),
        &r.roots,
        peers,
        NetLimits::default(),
    );
    let outcome = match liar {
        Ok(c) => match c
            .request(&r.opts.target, Method::POST, &p, HeaderMap::new(), body)
            .await
        {
            Ok(resp) => pass_if(
                resp.status == StatusCode::FORBIDDEN || resp.status == StatusCode::UNAUTHORIZED,
                || {
                    format!(
                        "From: mimi@impostor.example with a certificate for {} got {}",
                        r.opts.me, resp.status
                    )
                },
            ),
            Err(_) => Outcome::Pass,
        },
        Err(e) => Outcome::NotApplicable(e.to_string()),
    };
    report.add("mtls.from-mismatch", "§4.1", "NET-mtls-from", outcome);
}

fn user_of(domain: &str, name: &str) -> UserUri {
    UserUri::parse(&format!("mimi://{domain}/u/{name}")).expect("user URI")
}

/// The target hosts a room: its user T creates it and adds the runner's user U.
async fn as_hub(r: &Runner, report: &mut Report) {
    let Some(tapi) = r.target_users(
        report,
        &[
            "hub.flow",
            "keyMaterial.success",
            "update.accepted",
            "submitMessage.accepted",
            "groupInfo.authorized",
        ],
        "§5",
        "-",
    ) else {
        return;
    };
    let t = tag();
    let room = RoomUri::parse(&format!("mimi://{}/r/conf{t}", r.opts.target)).expect("room");
    let mut host = Person::register_via(tapi, &format!("host{t}"), "1", None).await;
    let t2 =
        Person::register_via(r.target_api().expect("api"), &format!("peer{t}"), "1", None).await;
    let mut u = Person::register_via(r.my_api(), &format!("u{t}"), "1", None).await;
    let v = Person::register_via(r.my_api(), &format!("v{t}"), "1", None).await;
    host.create_room(&room).await;
    // The target claims U's KeyPackage from the runner (keyMaterial to us) and adds U; the
    // Welcome reaches the runner by notify.
    host.add(&room, u.dev.user.as_str()).await;
    u.sync_until("the Welcome from the target hub", |p| {
        p.rooms.contains_key(&room)
    })
    .await;
    report.add(
        "hub.flow.welcome",
        "§3, §5.5",
        "PROTO-5.5-welcome-routing",
        Outcome::Pass,
    );

    // keyMaterial through the target hub for T2 (2 KeyPackages published).
    let t2u = t2.dev.user.clone();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (n, id) in [
        "keyMaterial.success",
        "keyMaterial.never-reused",
        "keyMaterial.exhausted",
    ]
    .iter()
    .enumerate()
    {
        let req = u.dev.key_material_request(&room, &t2u).expect("request");
        let (st, b) = r
            .post(Endpoint::KeyMaterial, t2u.as_str(), req.encode())
            .await;
        let resp = KeyMaterialResponse::decode(&b);
        let kps: Vec<Vec<u8>> = resp
            .as_ref()
            .map(|resp| {
                resp.clients
                    .iter()
                    .filter_map(|c| match &c.material {
                        ClientMaterial::KeyPackage(k) => Some(k.as_bytes().to_vec()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let outcome = match (&resp, n) {
            (Err(e), _) => Outcome::Fail(format!("{st}: not a KeyMaterialResponse: {e}")),
            (Ok(resp), 0) => pass_if(
                resp.user_status == KeyMaterialUserCode::SUCCESS
                    && resp.clients.len() == 1
                    && kps.len() == 1,
                || {
                    format!(
                        "userStatus {:?}, {} clients, {} KeyPackages (one per client expected)",
                        resp.user_status,
                        resp.clients.len(),
                        kps.len()
                    )
                },
            ),
            (Ok(_), 1) => pass_if(kps.iter().all(|k| !seen.contains(k)), || {
                "the same KeyPackage was handed out twice".into()
            }),
            (Ok(resp), _) => pass_if(
                kps.iter().all(|k| !seen.contains(k))
                    && resp.clients.iter().all(|c| {
                        matches!(
                            c.material,
                            ClientMaterial::Exhausted | ClientMaterial::KeyPackage(_)
                        )
                    }),
                || format!("after two claims of two KeyPackages: {resp:?}"),
            ),
        };
        seen.extend(kps);
        report.add_x(
            id,
            "§5.2",
            "STORE-kp-claim-once",
            outcome,
            &req.encode(),
            st,
            &b,
        );
    }
    let nobody = user_of(&r.opts.target, &format!("nobody{t}"));
    let req = u.dev.key_material_request(&room, &nobody).expect("request");
    let (st, b) = r
        .post(Endpoint::KeyMaterial, nobody.as_str(), req.encode())
        .await;
    let outcome = match KeyMaterialResponse::decode(&b) {
        Ok(resp) => pass_if(
            matches!(
                resp.user_status,
                KeyMaterialUserCode::USER_UNKNOWN | KeyMaterialUserCode::NO_CONSENT
            ) && resp.clients.is_empty(),
            || format!("userStatus {:?} for an unknown user", resp.user_status),
        ),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "keyMaterial.user-unknown",
        "§5.2",
        "PROTO-5.2-codes",
        outcome,
        &req.encode(),
        st,
        &b,
    );
    consent_and_abuse(r, report, &room, &u).await;

    // update: accepted, then the same again (wrongEpoch), then a ban U may not do (notAllowed).
    let out = u
        .rooms
        .get_mut(&room)
        .expect("room")
        .set_metadata(&u.dev, RoomMetaData::named(room.clone(), "conformance"))
        .expect("commit");
    let sent = out.bundle.encode();
    let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
    let resp = UpdateRoomResponse::decode(&b);
    let ok = matches!(&resp, Ok(UpdateRoomResponse { outcome: UpdateOutcome::Success { accepted_timestamp }, .. }) if *accepted_timestamp > 0);
    if ok {
        u.rooms
            .get_mut(&room)
            .expect("room")
            .merge(&u.dev)
            .expect("merge");
    } else {
        u.rooms
            .get_mut(&room)
            .expect("room")
            .discard(&u.dev)
            .expect("discard");
    }
    report.add_x(
        "update.accepted",
        "§5.3",
        "ROOM-hub-update",
        pass_if(ok, || format!("{st} {resp:?}")),
        &sent,
        st,
        &b,
    );
    let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
    let epoch = u.epoch(&room);
    let outcome = match UpdateRoomResponse::decode(&b) {
        Ok(UpdateRoomResponse {
            outcome: UpdateOutcome::WrongEpoch { current_epoch },
            ..
        }) => pass_if(current_epoch == epoch, || {
            format!("wrongEpoch {current_epoch}, the room is at {epoch}")
        }),
        other => Outcome::Fail(format!("{st} {other:?} for a stale commit")),
    };
    report.add_x(
        "update.wrong-epoch",
        "§5.3",
        "ROOM-hub-update",
        outcome,
        &sent,
        st,
        &b,
    );
    let out = u
        .rooms
        .get_mut(&room)
        .expect("room")
        .ban(&u.dev, &host.dev.user)
        .expect("commit");
    let sent = out.bundle.encode();
    let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
    u.rooms
        .get_mut(&room)
        .expect("room")
        .discard(&u.dev)
        .expect("discard");
    let outcome = match UpdateRoomResponse::decode(&b) {
        Ok(UpdateRoomResponse {
            outcome: UpdateOutcome::NotAllowed,
            ..
        }) => Outcome::Pass,
        other => Outcome::Fail(format!("{st} {other:?} for a ban by an ordinary user")),
    };
    report.add_x(
        "update.not-allowed",
        "§5.3, room-policy",
        "ROOM-policy",
        outcome,
        &sent,
        st,
        &b,
    );

    report.add(
        "keyMaterial.never-expired",
        "§5.2",
        "STORE-kp-not-expired",
        Outcome::NotApplicable("needs an expired KeyPackage on the target; mimi-node refuses to store one (tested in mimi-store)".into()),
    );

    // submitMessage: accepted; epochTooOld; not a participant.
    let m = MimiContent::text(rand16(), "conformance");
    let req = u
        .rooms
        .get_mut(&room)
        .expect("room")
        .send(&u.dev, &m.encode().expect("content"))
        .expect("send");
    let sent = req.encode();
    let (st, b) = r
        .post(Endpoint::SubmitMessage, room.as_str(), sent.clone())
        .await;
    let outcome = match SubmitMessageResponse::decode(&b) {
        Ok(SubmitMessageResponse {
            outcome: SubmitOutcome::Accepted {
                accepted_timestamp, ..
            },
        }) => pass_if(accepted_timestamp > 0, || {
            "accepted without a timestamp".into()
        }),
        other => Outcome::Fail(format!("{st} {other:?}")),
    };
    report.add_x(
        "submitMessage.accepted",
        "§5.4",
        "PROTO-5.4",
        outcome,
        &sent,
        st,
        &b,
    );
    let old = u
        .rooms
        .get_mut(&room)
        .expect("room")
        .send(&u.dev, &m.encode().expect("content"))
        .expect("send");
    let out = u
        .rooms
        .get_mut(&room)
        .expect("room")
        .set_metadata(&u.dev, RoomMetaData::named(room.clone(), "conformance 2"))
        .expect("commit");
    let (_, b2) = r
        .post(Endpoint::Update, room.as_str(), out.bundle.encode())
        .await;
    if matches!(
        UpdateRoomResponse::decode(&b2),
        Ok(UpdateRoomResponse {
            outcome: UpdateOutcome::Success { .. },
            ..
        })
    ) {
        u.rooms
            .get_mut(&room)
            .expect("room")
            .merge(&u.dev)
            .expect("merge");
        let sent = old.encode();
        let (st, b) = r
            .post(Endpoint::SubmitMessage, room.as_str(), sent.clone())
            .await;
        let now = u.epoch(&room);
        let outcome = match SubmitMessageResponse::decode(&b) {
            Ok(SubmitMessageResponse {
                outcome: SubmitOutcome::EpochTooOld { current_epoch },
            }) => pass_if(current_epoch == now, || {
                format!("epochTooOld {current_epoch}, the room is at {now}")
            }),
            other => Outcome::Fail(format!("{st} {other:?} for a message of an old epoch")),
        };
        report.add_x(
            "submitMessage.epoch-too-old",
            "§5.4",
            "PROTO-5.4",
            outcome,
            &sent,
            st,
            &b,
        );
    } else {
        u.rooms
            .get_mut(&room)
            .expect("room")
            .discard(&u.dev)
            .expect("discard");
        report.add(
            "submitMessage.epoch-too-old",
            "§5.4",
            "PROTO-5.4",
            Outcome::NotApplicable("the second commit was not accepted".into()),
        );
    }
    let forged = SubmitMessageRequest {
        sending_uri: mimi_wire::id::MimiUri::parse(v.dev.user.as_str()).expect("uri"),
        ..old.clone()
    };
    let sent = forged.encode();
    let (st, b) = r
        .post(Endpoint::SubmitMessage, room.as_str(), sent.clone())
        .await;
    let outcome = match SubmitMessageResponse::decode(&b) {
        Ok(SubmitMessageResponse {
            outcome: SubmitOutcome::NotAllowed,
        }) => Outcome::Pass,
        other => Outcome::Fail(format!(
            "{st} {other:?} for a sender who is not a participant"
        )),
    };
    report.add_x(
        "submitMessage.not-participant",
        "§5.4",
        "PROTO-5.4",
        outcome,
        &sent,
        st,
        &b,
    );

    // groupInfo: a new device of U is authorised, V is not.
    let mut u2 = Person::register_via(r.my_api(), &format!("u{t}"), "2", Some(&u.token)).await;
    let pending = u2.dev.group_info_request().expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), sent.clone())
        .await;
    let outcome = match GroupInfoResponse::decode(&b) {
        Ok(resp) => match u2.dev.open_group_info(&room, &pending, &resp) {
            Ok((gi, tree)) => match u2.dev.join_external(&room, &gi, &tree, None) {
                Ok((rm, out)) => {
                    u2.rooms.insert(room.clone(), rm);
                    let outcome = u2.update(&room, &out.bundle).await;
                    pass_if(matches!(outcome, UpdateOutcome::Success { .. }), || {
                        format!("the external commit built from it was refused: {outcome:?}")
                    })
                }
                Err(e) => Outcome::Fail(format!("the GroupInfo does not let a device join: {e}")),
            },
            Err(e) => Outcome::Fail(format!("signature or encryption: {e}")),
        },
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "groupInfo.authorized",
        "§5.6",
        "PROTO-5.6-group-info",
        outcome,
        &sent,
        st,
        &b,
    );
    let pending = v.dev.group_info_request().expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), sent.clone())
        .await;
    let outcome = match GroupInfoResponse::decode(&b) {
        Ok(resp) => pass_if(
            resp.status == GroupInfoCode::NOT_AUTHORIZED
                || resp.status == GroupInfoCode::NO_SUCH_ROOM,
            || {
                format!(
                    "status {:?} for a requester who is not in the room",
                    resp.status
                )
            },
        ),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "groupInfo.not-authorized",
        "§5.6",
        "PROTO-5.6-group-info",
        outcome,
        &sent,
        st,
        &b,
    );

    // The example flow goes on: the host follows the commits, and its message reaches both
    // of U's devices.
    let e = u2.epoch(&room);
    host.sync_until("the runner's commits", |p| p.epoch(&room) == e)
        .await;
    u.sync_until("the new device's join", |p| p.epoch(&room) == e)
        .await;
    let m = host.send(&room, "from the target's user").await;
    u.sync_until("the target user's message", |p| p.got(&m) == 1)
        .await;
    u2.sync_until("the target user's message", |p| p.got(&m) == 1)
        .await;
    report.add("hub.flow.fanout", "§3, §5.5", "PROTO-fanout", Outcome::Pass);
    // PROTO-5.4.1-frank: the hub franked the message and the frank verifies at the receiver
    // (signature by the hub's key of the room's external_senders, over the message's tag,
    // sender, room and accepted time).
    let franking_room = u.rooms[&room]
        .group
        .public_group()
        .group_context()
        .extensions()
        .app_data_dictionary()
        .is_some_and(|d| {
            d.dictionary()
                .get(&mimi_wire::franking::FRANKING_AGENT)
                .is_some()
        });
    let outcome = if !franking_room {
        Outcome::NotApplicable("the target's room names no franking agent".into())
    } else if u.verified_frank(&m).is_some() {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "the message's frank did not verify at the runner: {:?}",
            u.flagged()
        ))
    };
    report.add(
        "submitMessage.frank-verifies",
        "§5.4.1",
        "PROTO-5.4.1-frank",
        outcome,
    );

    // invalidProposal: U2 proposes to leave (queued at the hub for this epoch); U, who has not
    // seen that proposal, commits without it. The hub must refuse and name the proposal.
    let proposal = u2
        .rooms
        .get_mut(&room)
        .expect("room")
        .leave(&u2.dev)
        .expect("proposal");
    let (st, b) = r
        .post(Endpoint::Update, room.as_str(), proposal.encode())
        .await;
    let queued = matches!(
        UpdateRoomResponse::decode(&b),
        Ok(UpdateRoomResponse {
            outcome: UpdateOutcome::Success { .. },
            ..
        })
    );
    if queued {
        let out = u
            .rooms
            .get_mut(&room)
            .expect("room")
            .set_metadata(
                &u.dev,
                RoomMetaData::named(room.clone(), "omits a proposal"),
            )
            .expect("commit");
        let sent = out.bundle.encode();
        let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
        u.rooms
            .get_mut(&room)
            .expect("room")
            .discard(&u.dev)
            .expect("discard");
        let outcome = match UpdateRoomResponse::decode(&b) {
            Ok(UpdateRoomResponse {
                outcome: UpdateOutcome::InvalidProposal { invalid_proposals },
                ..
            }) => pass_if(!invalid_proposals.is_empty(), || {
                "invalidProposal without naming the proposal".into()
            }),
            other => Outcome::Fail(format!(
                "{st} {other:?} for a commit that omits a proposal the hub accepted"
            )),
        };
        report.add_x(
            "update.invalid-proposal",
            "§5.3",
            "ROOM-hub-queued",
            outcome,
            &sent,
            st,
            &b,
        );
    } else {
        report.add_x(
            "update.invalid-proposal",
            "§5.3",
            "ROOM-hub-queued",
            Outcome::NotApplicable(format!(
                "the target did not accept a member's SelfRemove proposal ({st})"
            )),
            &proposal.encode(),
            st,
            &b,
        );
    }
    let queued_bytes = match (&proposal, queued) {
        (mimi_wire::update::HandshakeBundle::Proposal { proposal, .. }, true) => {
            Some(proposal.as_bytes().to_vec())
        }
        _ => None,
    };
    attachments_at_hub(r, report, &room, &mut host).await;
    joins_at_hub(r, report, &room, &mut host, &u, v, queued_bytes).await;

    // ROOM-resync (protocol-06 §3.6, RFC 9420 §12.4.3.2): U's first device lost its state and
    // comes back as the same client: groupInfo, then an external commit that removes its own
    // old leaf (through the runner's provider, which forwards both to the target hub).
    let outcome = match u.join(&room, &[]).await {
        Ok(_) => Outcome::Pass,
        Err(why) => Outcome::Fail(format!(
            "a member's external commit that replaces its own old leaf was refused: {why}"
        )),
    };
    report.add("update.resync-same-client", "§3.6", "ROOM-resync", outcome);
}

/// room-policy-03 §7 OperationalParameters at the target as hub, in a room of its own: the
/// target's user forbids external commits and SelfRemove proposals; a second device of the
/// runner's member must not get in by external commit (`update.external-commit-forbidden`:
/// notAllowed or invalidProposal at update, or notAuthorized at groupInfo), and the member's
/// SelfRemove must be refused (`update.forbidden-proposal-type`).
async fn operational_at_hub(r: &Runner, report: &mut Report) {
    use mimi_room::room_policy::OperationalParameters;
    let sect = "room-policy-03 §7";
    let ids = [
        "update.external-commit-forbidden",
        "update.forbidden-proposal-type",
    ];
    let Some(tapi) = r.target_users(report, &ids, sect, "ROOM-policy-operational") else {
        return;
    };
    let t = tag();
    let room = RoomUri::parse(&format!("mimi://{}/r/confop{t}", r.opts.target)).expect("room");
    let mut host = Person::register_via(tapi, &format!("ophost{t}"), "1", None).await;
    let mut guest = Person::register_via(r.my_api(), &format!("opguest{t}"), "1", None).await;
    host.create_room(&room).await;
    host.add(&room, guest.dev.user.as_str()).await;
    let e = host.epoch(&room);
    guest
        .sync_until("the Welcome of the operational check", |p| {
            p.epoch(&room) == e
        })
        .await;
    let mut p = OperationalParameters::permissive();
    p.external_commit_allowed = false;
    // SelfRemove (mls-extensions, 0x000a).
    p.forbidden_capabilities.proposals = vec![0x000a];
    let outcome = host
        .set_component(
            &room,
            mimi_room::codepoints::CodePoints::DRAFT.mls_operational_policy,
            p.encode(),
        )
        .await;
    if !matches!(outcome, UpdateOutcome::Success { .. }) {
        for (id, req) in ids.iter().zip([
            "ROOM-policy-operational-external-commit",
            "ROOM-policy-operational-proposals",
        ]) {
            report.add(
                id,
                sect,
                req,
                Outcome::NotApplicable(format!(
                    "the target's user could not set MLS operational parameters: {outcome:?}"
                )),
            );
        }
        return;
    }
    let e = host.epoch(&room);
    guest
        .sync_until("the operational parameters", |p| p.epoch(&room) == e)
        .await;
    let mut second =
        Person::register_via(r.my_api(), &format!("opguest{t}"), "2", Some(&guest.token)).await;
    let outcome = match second.join(&room, &[]).await {
        Ok(epoch) => Outcome::Fail(format!(
            "{} joined by external commit (epoch {epoch}) although the room's              OperationalParameters say external_commit_allowed = false",
            second.dev.client
        )),
        Err(why)
            if why.contains("NotAllowed")
                || why.contains("InvalidProposal")
                || why.starts_with("groupInfo") =>
        {
            Outcome::Pass
        }
        Err(why) => Outcome::Fail(format!(
            "the external commit was refused, but not with notAllowed, invalidProposal or a              groupInfo refusal: {why}"
        )),
    };
    report.add(
        ids[0],
        sect,
        "ROOM-policy-operational-external-commit",
        outcome,
    );
    let leave = guest
        .rooms
        .get_mut(&room)
        .expect("the guest's room")
        .leave(&guest.dev)
        .expect("a SelfRemove proposal");
    let outcome = guest.update(&room, &leave).await;
    report.add_x(
        ids[1],
        sect,
        "ROOM-policy-operational-proposals",
        pass_if(
            matches!(
                outcome,
                UpdateOutcome::NotAllowed | UpdateOutcome::InvalidProposal { .. }
            ),
            || {
                format!(
                    "a SelfRemove proposal in a room whose OperationalParameters forbid                      SelfRemove (0x000a) got {outcome:?}, not notAllowed or invalidProposal"
                )
            },
        ),
        &leave.encode(),
        200,
        &[],
    );
}

/// room-policy-03 DownloadPrivacy at the target as hub (`ROOM-policy-download-privacy`): in a
/// room of the target's user with a member of the runner's provider, whose asset policy
/// forbids hubProxy, the runner's proxyDownload of the room's attachment is refused. A room of
/// its own, so that no proposal queued by the other checks stands in the way of the policy
/// commit.
async fn download_privacy_at_hub(r: &Runner, report: &mut Report) {
    use mimi_room::room_policy::AssetPolicy;
    use mimi_wire::room_policy::{DownloadPrivacy, DownloadPrivacyType};
    let (id, sect, req) = (
        "proxyDownload.privacy-forbidden",
        "§5.10, room-policy-03 DownloadPrivacy",
        "ROOM-policy-download-privacy",
    );
    let host_id = "proxyDownload.host-not-listed";
    let (host_sect, host_req) = (
        "§5.10, room-policy-03 §6.4 upload_domains",
        "PROTO-5.10-policy-host",
    );
    let Some(tapi) = r.target_users(report, &[id, host_id], sect, req) else {
        return;
    };
    let t = tag();
    let room = RoomUri::parse(&format!("mimi://{}/r/confdp{t}", r.opts.target)).expect("room");
    let mut host = Person::register_via(tapi, &format!("dphost{t}"), "1", None).await;
    let guest = Person::register_via(r.my_api(), &format!("dpguest{t}"), "1", None).await;
    host.create_room(&room).await;
    host.add(&room, guest.dev.user.as_str()).await;
    let data = b"an attachment the room's policy keeps from the hub's proxy".repeat(20);
    let (st, why, part) =
        mimi_harness::upload_attachment(&host.api, &room, Some("text/plain"), &data).await;
    let Some(part) = part.filter(|_| st.is_success()) else {
        for (id, sect, req) in [(id, sect, req), (host_id, host_sect, host_req)] {
            report.add(
                id,
                sect,
                req,
                Outcome::NotApplicable(format!(
                    "the target's user could not upload an attachment: {st} {why}"
                )),
            );
        }
        return;
    };
    let no_proxy = AssetPolicy {
        max_image: u64::MAX,
        max_audio: u64::MAX,
        max_video: u64::MAX,
        max_attachment: u64::MAX,
        download_privacy: DownloadPrivacy {
            allowed_download_types: vec![],
            forbidden_download_types: vec![DownloadPrivacyType::HubProxy],
            default_download_type: DownloadPrivacyType::Direct,
        },
        ..AssetPolicy::default()
    };
    match host.set_asset_policy(&room, &no_proxy).await {
        UpdateOutcome::Success { .. } => {
            let (st, b) = proxy_download(r, &part.url).await;
            report.add_x(
                id,
                sect,
                req,
                pass_if((400..500).contains(&st), || {
                    format!(
                        "proxyDownload in a room whose download_privacy forbids hubProxy \
                         answered {st} (a 4xx expected)"
                    )
                }),
                part.url.as_bytes(),
                st,
                &b,
            );
        }
        other => report.add(
            id,
            sect,
            req,
            Outcome::NotApplicable(format!(
                "the target's user could not set an asset policy: {other:?}"
            )),
        ),
    }

    // PROTO-5.10-policy-host: the policy now allows hubProxy but lists, as the target's only
    // upload destination, a host that is not the asset's: the hub must not fetch it.
    let elsewhere = AssetPolicy {
        asset_upload_location: mimi_wire::room_policy::AssetUploadLocation::LocalProvider,
        upload_domains: vec![mimi_wire::room_policy::ProviderAssetUploadDomains {
            provider: r.opts.target.clone(),
            asset_upload_destinations: vec!["assets.elsewhere.example".into()],
        }],
        download_privacy: DownloadPrivacy {
            default_download_type: DownloadPrivacyType::HubProxy,
            ..DownloadPrivacy::default()
        },
        ..no_proxy
    };
    match host.set_asset_policy(&room, &elsewhere).await {
        UpdateOutcome::Success { .. } => {
            let (st, b) = proxy_download(r, &part.url).await;
            report.add_x(
                host_id,
                host_sect,
                host_req,
                pass_if((400..500).contains(&st), || {
                    format!(
                        "proxyDownload of an asset whose host the room's upload_domains do not \
                         list answered {st} (a 4xx expected)"
                    )
                }),
                part.url.as_bytes(),
                st,
                &b,
            );
        }
        other => report.add(
            host_id,
            host_sect,
            host_req,
            Outcome::NotApplicable(format!(
                "the target's user could not set an asset policy: {other:?}"
            )),
        ),
    }
}

/// A device of a second MLS implementation in a room the target hosts (issue 18): the
/// runner's user on an mls-rs device (mimi-room-mlsrs). The target claims its mls-rs
/// KeyPackage from the runner and adds it; it joins from the Welcome; its franked message is
/// accepted and reaches the target's openmls device with a frank that verifies; the target's
/// message and frank verify on the mls-rs device; its self-update is accepted by the target
/// hub; afterwards both devices have the same epoch authenticator.
async fn mls_rs_device_at_hub(r: &Runner, report: &mut Report) {
    let (id, sect, req) = (
        "hub.mls-rs-device",
        "§5.2, §5.4, §5.5",
        "INTEROP-mixed-federation",
    );
    let Some(tapi) = r.target_users(report, &[id], sect, req) else {
        return;
    };
    let t = tag();
    let room = RoomUri::parse(&format!("mimi://{}/r/confrs{t}", r.opts.target)).expect("room");
    let mut host = Person::register_via(tapi, &format!("rshost{t}"), "1", None).await;
    let mut rs =
        mimi_harness::mlsrs::RsPerson::register_via(r.my_api(), &format!("rs{t}"), "1", None).await;
    host.create_room(&room).await;
    host.add(&room, rs.dev.user.as_str()).await;
    let e = host.epoch(&room);
    rs.sync_until("the Welcome for the mls-rs device", |p| p.epoch(&room) == e)
        .await;
    let mut problems: Vec<String> = Vec::new();
    let from_rs = mimi_content::build::ContentBuilder::new(
        rand16(),
        mimi_content::NestedPart::text("from mls-rs"),
    )
    .sender_and_room(rs.dev.user.as_str(), room.as_str())
    .build();
    rs.send(&room, &from_rs).await;
    host.sync_until("the mls-rs device's message", |p| p.got(&from_rs) == 1)
        .await;
    if host.verified_frank(&from_rs).is_none() {
        problems.push(format!(
            "the mls-rs device's message has no verified frank at the target: {:?}",
            host.flagged()
        ));
    }
    let from_host = host.send(&room, "from openmls").await;
    rs.sync_until("the target device's message", |p| {
        p.contents()
            .iter()
            .any(|(_, b, _)| MimiContent::decode(b).ok().as_ref() == Some(&from_host))
    })
    .await;
    for (_, b, frank) in rs.contents() {
        if MimiContent::decode(&b).ok().as_ref() == Some(&from_host)
            && !matches!(frank, mimi_room::franking::FrankCheck::Verified { .. })
        {
            problems.push(format!(
                "the target's frank does not verify on mls-rs: {frank:?}"
            ));
        }
    }
    let bundle = rs.room(&room).self_update().expect("self-update");
    let outcome = rs.update(&room, &bundle).await;
    if matches!(outcome, UpdateOutcome::Success { .. }) {
        let e = rs.epoch(&room);
        host.sync_until("the mls-rs device's self-update", |p| p.epoch(&room) == e)
            .await;
        let ours = rs.room(&room).epoch_authenticator().expect("authenticator");
        let theirs = host.rooms[&room]
            .group
            .epoch_authenticator()
            .as_slice()
            .to_vec();
        if ours != theirs {
            problems.push(format!("epoch {e}: the epoch authenticators differ"));
        }
    } else {
        problems.push(format!(
            "the mls-rs device's self-update was refused: {outcome:?}"
        ));
    }
    let outcome = if problems.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail(problems.join("; "))
    };
    report.add(id, sect, req, outcome);

    // ROOM-resync, the refused half (RFC 9420 §12.4.3.2: the Remove of an external commit is
    // of the joiner's own old leaf): a second mls-rs device of the runner's user joins with
    // an external commit that removes the first device's leaf, another client. openmls
    // cannot build this commit; mls-rs can. The hub must refuse it and keep the first device.
    let id = "update.resync-other-client-refused";
    let sect = "§3.6, RFC 9420 §12.4.3.2";
    let mut rs2 = mimi_harness::mlsrs::RsPerson::register_via(
        r.my_api(),
        &format!("rs{t}"),
        "2",
        Some(&rs.token),
    )
    .await;
    let first = rs.dev.client.clone();
    let (sent, outcome) = rs2.join_replacing(&room, &first).await;
    let sent = sent.map(|b| b.encode()).unwrap_or_default();
    match outcome {
        Ok(UpdateOutcome::InvalidProposal { .. } | UpdateOutcome::NotAllowed) => {
            report.add(id, sect, "ROOM-resync", Outcome::Pass)
        }
        Ok(other) => report.add_x(
            id,
            sect,
            "ROOM-resync",
            Outcome::Fail(format!(
                "an external commit by {} that removes {first}'s leaf (another client) got {other:?}, not invalidProposal or notAllowed",
                rs2.dev.client
            )),
            &sent,
            200,
            &[],
        ),
        Err(why) => report.add(
            id,
            sect,
            "ROOM-resync",
            Outcome::NotApplicable(format!(
                "a new device of a listed user could not make an external commit: {why}"
            )),
        ),
    }
}

/// `GET /v1/proxyDownload/{url}` at the target, as the runner's provider: status and body.
async fn proxy_download(r: &Runner, url: &str) -> (u16, Vec<u8>) {
    let path = format!(
        "{}/proxyDownload/{}",
        mimi_net::paths::BASE,
        mimi_harness::enc(url)
    );
    match r
        .peer
        .download(&r.opts.target, Method::GET, &path, HeaderMap::new())
        .await
    {
        Ok(d) => {
            let st = d.status.as_u16();
            match d.whole().await {
                Ok(resp) => (st, resp.body.to_vec()),
                Err(e) => (st, e.to_string().into_bytes()),
            }
        }
        Err(e) => (0, e.to_string().into_bytes()),
    }
}

/// An OHTTP exchange with the target's gateway as the runner's provider would relay it
/// (RFC 9458): its key configuration, `GET <url>` encapsulated, the answer opened. `Ok`: the
/// inner response's status and content; `Err`: what failed (`outer <status>` when the
/// gateway itself refused). With `corrupt`, one octet of the ciphertext is flipped.
async fn ohttp_fetch(r: &Runner, url: &str, corrupt: bool) -> Result<(u16, Vec<u8>), String> {
    let base = mimi_net::paths::BASE;
    let keys = r
        .peer
        .request(
            &r.opts.target,
            Method::GET,
            &format!("{base}/ohttpKeys"),
            HeaderMap::new(),
            Bytes::new(),
        )
        .await
        .map_err(|e| format!("GET ohttpKeys: {e}"))?;
    if keys.status != StatusCode::OK {
        return Err(format!(
            "GET ohttpKeys answered {}: {}",
            keys.status,
            keys.text()
        ));
    }
    let (mut enc, keys) = mimi_net::ohttp::encapsulate_get(&keys.body, url)
        .map_err(|e| format!("the target's application/ohttp-keys: {e}"))?;
    if corrupt {
        let last = enc.len() - 1;
        enc[last] ^= 0x40;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(mimi_net::ohttp::REQUEST_MEDIA_TYPE),
    );
    let resp = r
        .peer
        .request(
            &r.opts.target,
            Method::POST,
            &format!("{base}/ohttpGateway"),
            headers,
            Bytes::from(enc),
        )
        .await
        .map_err(|e| format!("POST ohttpGateway: {e}"))?;
    if resp.status != StatusCode::OK {
        return Err(format!("outer {}: {}", resp.status.as_u16(), resp.text()));
    }
    let inner = keys
        .open_response(&resp.body)
        .map_err(|e| format!("the Encapsulated Response: {e}"))?;
    Ok((inner.status, inner.content))
}

/// Attachments at the target hub (protocol-06 §5.10, `PROTO-5.10-*`), and a join link that
/// expires (room-policy-03 JoinLinkPolicy `expiration`, `ROOM-join-links`): the target's
/// user uploads an attachment for `room` (where the runner has members) and for a room of
/// its own (where the runner has none); proxyDownload gives the runner the first (it decrypts
/// to what was uploaded) and refuses the second. In its own room the user then sets an asset
/// policy, and the target refuses uploads the policy forbids; and makes a join link that
/// lasts one second, which is refused at groupInfo once it is older.
async fn attachments_at_hub(r: &Runner, report: &mut Report, room: &RoomUri, host: &mut Person) {
    use mimi_content::attachment::stream::Opener;
    use mimi_room::room_policy::{AssetPolicy, MediaType};
    let data = b"an attachment for the conformance runner".repeat(100);
    let (st, why, part) =
        mimi_harness::upload_attachment(&host.api, room, Some("text/plain"), &data).await;
    let ids_member = [
        "proxyDownload.member",
        "proxyDownload.non-member",
        "ohttp.gateway-member",
        "ohttp.gateway-non-member",
        "ohttp.gateway-undecryptable",
    ];
    let Some(part) = part else {
        for id in ids_member {
            report.add(
                id,
                "§5.10",
                "PROTO-5.10-member",
                Outcome::NotApplicable(format!(
                    "the target's user could not upload an attachment: {st} {why}"
                )),
            );
        }
        return;
    };
    let (st, b) = proxy_download(r, &part.url).await;
    let opened = Opener::new(&part).and_then(|mut o| {
        let plain = o.update(&b)?;
        o.finish()?;
        Ok(plain)
    });
    let outcome = if st != 200 {
        Outcome::Fail(format!(
            "proxyDownload of an asset of a room the runner has members in answered {st}: {}",
            String::from_utf8_lossy(&b)
        ))
    } else {
        match opened {
            Ok(plain) => pass_if(plain == data, || {
                "the downloaded asset decrypts to other bytes than were uploaded".into()
            }),
            Err(e) => Outcome::Fail(format!("the downloaded asset does not open: {e}")),
        }
    };
    report.add_x(
        "proxyDownload.member",
        "§5.10",
        "PROTO-5.10-proxy",
        outcome,
        part.url.as_bytes(),
        st,
        if st == 200 { b"" } else { &b },
    );

    // PROTO-5.10-ohttp: the runner's provider as the Oblivious Relay of one of its members:
    // the target's gateway answers the encapsulated GET with the asset.
    let (outcome, st, b) = match ohttp_fetch(r, &part.url, false).await {
        Ok((200, b)) => {
            let opened = Opener::new(&part).and_then(|mut o| {
                let plain = o.update(&b)?;
                o.finish()?;
                Ok(plain)
            });
            let outcome = match opened {
                Ok(plain) => pass_if(plain == data, || {
                    "the asset from the OHTTP gateway decrypts to other bytes than were uploaded"
                        .into()
                }),
                Err(e) => Outcome::Fail(format!(
                    "the asset from the OHTTP gateway does not open: {e}"
                )),
            };
            (outcome, 200, Vec::new())
        }
        Ok((st, b)) => (
            Outcome::Fail(format!(
                "the OHTTP gateway's target answered {st} for an asset of a room the runner has \
                 members in: {}",
                String::from_utf8_lossy(&b)
            )),
            st,
            b,
        ),
        Err(why) => (Outcome::Fail(why.clone()), 0, why.into_bytes()),
    };
    report.add_x(
        "ohttp.gateway-member",
        "§5.10, RFC 9458",
        "PROTO-5.10-ohttp",
        outcome,
        part.url.as_bytes(),
        st,
        &b,
    );
    // A request that does not decrypt: a 4xx from the gateway itself (RFC 9458 §5.2).
    let outcome = match ohttp_fetch(r, &part.url, true).await {
        Err(why) if why.starts_with("outer 4") => Outcome::Pass,
        Err(why) => Outcome::Fail(format!(
            "a corrupted Encapsulated Request was not answered with a 4xx: {why}"
        )),
        Ok((st, _)) => Outcome::Fail(format!(
            "a corrupted Encapsulated Request was decapsulated (inner status {st})"
        )),
    };
    report.add(
        "ohttp.gateway-undecryptable",
        "RFC 9458 §5.2",
        "PROTO-5.10-ohttp",
        outcome,
    );

    // A room of the target's user alone: the runner's provider has no clients in it.
    let t = tag();
    let own = RoomUri::parse(&format!("mimi://{}/r/alone{t}", r.opts.target)).expect("room");
    host.create_room(&own).await;
    let (st, why, part) =
        mimi_harness::upload_attachment(&host.api, &own, Some("text/plain"), &data).await;
    let (outcome, sent, st, b) = match &part {
        None => (
            Outcome::NotApplicable(format!(
                "the target's user could not upload for its own room: {st} {why}"
            )),
            Vec::new(),
            st.as_u16(),
            why.into_bytes(),
        ),
        Some(part) => {
            let (st, b) = proxy_download(r, &part.url).await;
            let outcome = pass_if((400..500).contains(&st), || {
                format!(
                    "proxyDownload for {} (no clients in {own}) answered {st} (a 4xx expected)",
                    r.opts.me
                )
            });
            (outcome, part.url.as_bytes().to_vec(), st, b)
        }
    };
    report.add_x(
        "proxyDownload.non-member",
        "§5.10",
        "PROTO-5.10-member",
        outcome,
        &sent,
        st,
        &b,
    );
    // The same through the OHTTP gateway: the relaying provider has no clients there.
    let outcome = match &part {
        None => Outcome::NotApplicable("no asset of a room without the runner's members".into()),
        Some(part) => match ohttp_fetch(r, &part.url, false).await {
            Ok((st, _)) if (400..500).contains(&st) => Outcome::Pass,
            Ok((st, _)) => Outcome::Fail(format!(
                "the OHTTP gateway's target answered {st} for an asset of {own}, where the \
                 relaying provider {} has no clients (a 4xx expected)",
                r.opts.me
            )),
            Err(why) => Outcome::Fail(why),
        },
    };
    report.add(
        "ohttp.gateway-non-member",
        "§5.10, RFC 9458",
        "PROTO-5.10-member",
        outcome,
    );

    // The room's asset policy at upload (room-policy-03 AssetPolicy).
    let policy = AssetPolicy {
        max_image: 1000,
        max_audio: 1000,
        max_video: 1000,
        max_attachment: 1000,
        forbidden_media_types: vec![MediaType::parse("video/mp4").expect("media type")],
        ..AssetPolicy::default()
    };
    let set = host.set_asset_policy(&own, &policy).await;
    let ids_policy = ["assets.policy-size", "assets.policy-media-type"];
    if !matches!(set, UpdateOutcome::Success { .. }) {
        for id in ids_policy {
            report.add(
                id,
                "room-policy-03 AssetPolicy",
                "PROTO-5.10-policy",
                Outcome::NotApplicable(format!(
                    "the target's user could not set an asset policy: {set:?}"
                )),
            );
        }
    } else {
        for (id, media_type, size, what) in [
            (
                ids_policy[0],
                "application/pdf",
                2000usize,
                "larger than max_attachment (1000)",
            ),
            (
                ids_policy[1],
                "video/mp4",
                10,
                "of a forbidden media type (video/mp4)",
            ),
        ] {
            let (st, why, part) = mimi_harness::upload_attachment(
                &host.api,
                &own,
                Some(media_type),
                &vec![7u8; size],
            )
            .await;
            let st = st.as_u16();
            report.add_x(
                id,
                "room-policy-03 AssetPolicy",
                "PROTO-5.10-policy",
                pass_if(part.is_none() && (400..500).contains(&st), || {
                    format!("an upload {what} was answered {st} (a 4xx expected)")
                }),
                format!("POST assets/{own}?type={media_type} ({size} octets)").as_bytes(),
                st,
                why.as_bytes(),
            );
        }
    }

    // A join link that lasts one second, presented two seconds later.
    use mimi_room::join_links::{JoinLinkPolicy, new_link};
    let link = new_link(&own).expect("randomness");
    let made = match host.rooms.get_mut(&own).expect("room").set_join_links(
        &host.dev,
        Some(JoinLinkPolicy {
            on_request: true,
            join_link: own.to_string(),
            multiuser: true,
            expiration: 1,
        }),
        vec![link.clone()],
        &[],
    ) {
        Ok(out) => matches!(
            host.update(&own, &out.bundle).await,
            UpdateOutcome::Success { .. }
        ),
        Err(_) => false,
    };
    if !made {
        report.add(
            "groupInfo.joining-code-expired",
            "§5.6",
            "ROOM-join-links",
            Outcome::NotApplicable("the target's user could not make a join link".into()),
        );
        return;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let x = Person::register_via(r.my_api(), &format!("x{t}"), "1", None).await;
    let pending = x.dev.group_info_request_with_code(link).expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, own.as_str(), sent.clone())
        .await;
    let outcome = match GroupInfoResponse::decode(&b) {
        Ok(resp) => pass_if(resp.status == GroupInfoCode::NOT_AUTHORIZED, || {
            format!(
                "status {:?} for a join link two seconds after its one-second expiration",
                resp.status
            )
        }),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "groupInfo.joining-code-expired",
        "§5.6",
        "ROOM-join-links",
        outcome,
        &sent,
        st,
        &b,
    );
}

/// groupInfo's pending proposals and join links at the target hub (`PROTO-5.6-pending`,
/// `PROTO-5.6-joining-code`, `ROOM-join-links`). `queued` is a SelfRemove the hub accepted in
/// the current epoch, if it did.
async fn joins_at_hub(
    r: &Runner,
    report: &mut Report,
    room: &RoomUri,
    host: &mut Person,
    u: &Person,
    mut v: Person,
    queued: Option<Vec<u8>>,
) {
    use mimi_room::join_links::{JoinLinkPolicy, LINK_KEY, new_link};
    let t = tag();

    // A new device of U asks for the GroupInfo: the queued SelfRemove comes with it.
    let u_name = u.dev.user.as_str().rsplit('/').next().unwrap_or_default();
    let u3 = Person::register_via(r.my_api(), u_name, "3", Some(&u.token)).await;
    let pending = u3.dev.group_info_request().expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), sent.clone())
        .await;
    let outcome = match (&queued, GroupInfoResponse::decode(&b)) {
        (None, _) => Outcome::NotApplicable("the target queued no proposal this epoch".into()),
        (Some(_), Err(e)) => Outcome::Fail(format!("{st}: {e}")),
        (Some(q), Ok(resp)) => match u3.dev.open_group_info_with_pending(room, &pending, &resp) {
            Ok((_, _, props)) => pass_if(props.iter().any(|p| p.proposal.as_bytes() == q), || {
                format!(
                    "pending_proposals has {} proposal(s), not the SelfRemove the hub accepted this epoch",
                    props.len()
                )
            }),
            Err(e) => Outcome::Fail(format!("signature or encryption: {e}")),
        },
    };
    report.add_x(
        "groupInfo.pending-proposals",
        "§5.6",
        "PROTO-5.6-pending",
        outcome,
        &sent,
        st,
        &b,
    );

    // A joining code the room does not list is refused.
    let forged = format!("{room}{LINK_KEY}{}", "0".repeat(32)).into_bytes();
    let pending = v.dev.group_info_request_with_code(forged).expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), sent.clone())
        .await;
    let outcome = match GroupInfoResponse::decode(&b) {
        Ok(resp) => pass_if(resp.status == GroupInfoCode::NOT_AUTHORIZED, || {
            format!(
                "status {:?} for a joining code that is no join link of the room",
                resp.status
            )
        }),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "groupInfo.joining-code-unknown",
        "§5.6",
        "PROTO-5.6-joining-code",
        outcome,
        &sent,
        st,
        &b,
    );

    // The host makes a single-use link (after taking in the queued proposal, which its commit
    // must include).
    if queued.is_some() {
        host.sync_until("the queued proposal", |p| {
            p.seen
                .iter()
                .any(|e| matches!(e, mimi_room::client::Event::Proposal))
        })
        .await;
    }
    let link = new_link(room).expect("randomness");
    let policy = JoinLinkPolicy {
        on_request: true,
        join_link: room.to_string(),
        multiuser: false,
        expiration: 3600,
    };
    let made = match host.rooms.get_mut(room).expect("room").set_join_links(
        &host.dev,
        Some(policy),
        vec![link.clone()],
        &[],
    ) {
        Ok(out) => matches!(
            host.update(room, &out.bundle).await,
            UpdateOutcome::Success { .. }
        ),
        Err(_) => false,
    };
    let ids = [
        "update.join-link-single-use",
        "groupInfo.joining-code-valid",
        "groupInfo.joining-code-used",
    ];
    if !made {
        for id in ids {
            report.add(
                id,
                "§5.6",
                "ROOM-join-links",
                Outcome::NotApplicable("the target's user could not make a join link".into()),
            );
        }
        return;
    }

    // V presents the link: the GroupInfo comes; a join that keeps the single-use link is
    // refused, the join that removes it is accepted.
    let pending = v
        .dev
        .group_info_request_with_code(link.clone())
        .expect("request");
    let gi_sent = pending.request.encode();
    let (gi_st, gi_b) = r
        .post(Endpoint::GroupInfo, room.as_str(), gi_sent.clone())
        .await;
    let opened = GroupInfoResponse::decode(&gi_b)
        .map_err(|e| e.to_string())
        .and_then(|resp| {
            v.dev
                .open_group_info_with_pending(room, &pending, &resp)
                .map_err(|e| e.to_string())
        });
    let Ok((gi, tree, props)) = opened else {
        let why = opened.err().unwrap_or_default();
        report.add_x(
            "groupInfo.joining-code-valid",
            "§5.6",
            "PROTO-5.6-joining-code",
            Outcome::Fail(format!("a valid join link's code was refused: {why}")),
            &gi_sent,
            gi_st,
            &gi_b,
        );
        for id in ["update.join-link-single-use", "groupInfo.joining-code-used"] {
            report.add(
                id,
                "§5.6",
                "ROOM-join-links",
                Outcome::NotApplicable("no GroupInfo for the link".into()),
            );
        }
        return;
    };
    let (keeps, out) = v
        .dev
        .join_external_with(room, &gi, &tree, Some(2), &props)
        .expect("external commit");
    v.rooms.insert(room.clone(), keeps);
    let sent = out.bundle.encode();
    let outcome = v.update(room, &out.bundle).await;
    if let Some(old) = v.rooms.remove(room) {
        let _ = old.delete(&v.dev);
    }
    report.add_x(
        "update.join-link-single-use",
        "room-policy-03 JoinLinkPolicy",
        "ROOM-join-links",
        pass_if(!matches!(outcome, UpdateOutcome::Success { .. }), || {
            "a code join that keeps a single-use link was accepted".into()
        }),
        &sent,
        200,
        format!("{outcome:?}").as_bytes(),
    );
    let (good, out) = v
        .dev
        .join_external_by(room, &gi, &tree, Some(2), &props, Some(&link))
        .expect("external commit");
    v.rooms.insert(room.clone(), good);
    let outcome = v.update(room, &out.bundle).await;
    report.add_x(
        "groupInfo.joining-code-valid",
        "§5.6",
        "PROTO-5.6-joining-code",
        pass_if(matches!(outcome, UpdateOutcome::Success { .. }), || {
            format!("the join with a valid link was refused: {outcome:?}")
        }),
        &gi_sent,
        gi_st,
        &gi_b,
    );

    // The link is used up: W is refused.
    let w = Person::register_via(r.my_api(), &format!("w{t}"), "1", None).await;
    let pending = w
        .dev
        .group_info_request_with_code(link.clone())
        .expect("request");
    let sent = pending.request.encode();
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), sent.clone())
        .await;
    let outcome = match GroupInfoResponse::decode(&b) {
        Ok(resp) => pass_if(resp.status == GroupInfoCode::NOT_AUTHORIZED, || {
            format!(
                "status {:?} for a single-use link already used",
                resp.status
            )
        }),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "groupInfo.joining-code-used",
        "§5.6",
        "ROOM-join-links",
        outcome,
        &sent,
        st,
        &b,
    );

    // protocol-06 §7.7 step 3: the hub checks that an external commit comes from the client
    // it gave the GroupInfo to. U's device 7 asks; U's device 8 commits with what 7 got.
    let asker = Person::register_via(r.my_api(), u_name, "7", Some(&u.token)).await;
    let mut other = Person::register_via(r.my_api(), u_name, "8", Some(&u.token)).await;
    let pending = asker.dev.group_info_request().expect("request");
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), pending.request.encode())
        .await;
    let opened = GroupInfoResponse::decode(&b)
        .map_err(|e| format!("{st}: {e}"))
        .and_then(|resp| {
            asker
                .dev
                .open_group_info(room, &pending, &resp)
                .map_err(|e| e.to_string())
        });
    let (outcome, sent, st, b) = match opened {
        Err(why) => (
            Outcome::NotApplicable(format!("no GroupInfo for a new device of U: {why}")),
            Vec::new(),
            st,
            b,
        ),
        Ok((gi, tree)) => {
            let (rm, out) = other
                .dev
                .join_external(room, &gi, &tree, None)
                .expect("external commit");
            other.rooms.insert(room.clone(), rm);
            let sent = out.bundle.encode();
            let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
            let outcome = match UpdateRoomResponse::decode(&b) {
                Ok(UpdateRoomResponse {
                    outcome: UpdateOutcome::Success { .. },
                    ..
                }) => Outcome::Fail(
                    "an external commit by a client that did not ask for the GroupInfo was accepted"
                        .into(),
                ),
                Ok(_) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("{st}: {e}")),
            };
            (outcome, sent, st, b)
        }
    };
    report.add_x(
        "update.external-commit-requester",
        "§7.7",
        "PROTO-5.6-requester",
        outcome,
        &sent,
        st,
        &b,
    );

    // The same with U's device 7's own client URI but another signature key: the grant is
    // for the key the request was signed with (requestingSignatureKey, §5.6), not for the
    // URI alone, so the external commit of a device claiming 7's URI is refused.
    let pending = asker.dev.group_info_request().expect("request");
    let (st, b) = r
        .post(Endpoint::GroupInfo, room.as_str(), pending.request.encode())
        .await;
    let opened = GroupInfoResponse::decode(&b)
        .map_err(|e| format!("{st}: {e}"))
        .and_then(|resp| {
            asker
                .dev
                .open_group_info(room, &pending, &resp)
                .map_err(|e| e.to_string())
        });
    let (outcome, sent, st, b) = match opened {
        Err(why) => (
            Outcome::NotApplicable(format!("no GroupInfo for a new device of U: {why}")),
            Vec::new(),
            st,
            b,
        ),
        Ok((gi, tree)) => {
            let impostor =
                mimi_room::client::Device::new(asker.dev.client.clone()).expect("device");
            let (_, out) = impostor
                .join_external(room, &gi, &tree, None)
                .expect("external commit");
            let sent = out.bundle.encode();
            let (st, b) = r.post(Endpoint::Update, room.as_str(), sent.clone()).await;
            let outcome = match UpdateRoomResponse::decode(&b) {
                Ok(UpdateRoomResponse {
                    outcome: UpdateOutcome::Success { .. },
                    ..
                }) => Outcome::Fail(
                    "an external commit whose new leaf has another signature key than the groupInfo request was accepted"
                        .into(),
                ),
                Ok(_) => Outcome::Pass,
                Err(e) => Outcome::Fail(format!("{st}: {e}")),
            };
            (outcome, sent, st, b)
        }
    };
    report.add_x(
        "update.external-commit-requester-key",
        "§5.6, §7.7",
        "PROTO-5.6-requester",
        outcome,
        &sent,
        st,
        &b,
    );
}

/// The runner hosts a room; the target's user joins it and takes the fanout.
async fn as_follower(r: &Runner, report: &mut Report) {
    let Some(tapi) = r.target_users(report, &["follower.flow"], "§3", "-") else {
        return;
    };
    let t = tag();
    let room = RoomUri::parse(&format!("mimi://{}/r/conf{t}", r.opts.me)).expect("room");
    let mut w = Person::register_via(r.my_api(), &format!("w{t}"), "1", None).await;
    let mut tu = Person::register_via(tapi, &format!("member{t}"), "1", None).await;
    w.create_room(&room).await;
    // keyMaterial to the target as the target provider (the runner is the hub), then the
    // Welcome by notify.
    let req = w
        .dev
        .key_material_request(&room, &tu.dev.user)
        .expect("request");
    let (st, b) = r
        .post(Endpoint::KeyMaterial, tu.dev.user.as_str(), req.encode())
        .await;
    let outcome = match KeyMaterialResponse::decode(&b) {
        Ok(resp) => pass_if(
            resp.user_status == KeyMaterialUserCode::SUCCESS && !resp.clients.is_empty(),
            || format!("userStatus {:?} when the room's hub asks", resp.user_status),
        ),
        Err(e) => Outcome::Fail(format!("{st}: {e}")),
    };
    report.add_x(
        "keyMaterial.target-provider",
        "§5.2",
        "PROTO-5.2-via-hub",
        outcome,
        &req.encode(),
        st,
        &b,
    );
    w.add(&room, tu.dev.user.as_str()).await;
    tu.sync_until("the Welcome through the target", |p| {
        p.rooms.contains_key(&room)
    })
    .await;
    report.add(
        "follower.flow.welcome",
        "§3, §5.5",
        "PROTO-5.5-welcome-routing",
        Outcome::Pass,
    );

    // notify: a new body, the same body again, a malformed body.
    let m = w.send(&room, "for the follower").await;
    tu.sync_until("the fanout", |p| p.got(&m) == 1).await;
    let db = r.my_dir.join("node.sqlite");
    let store = mimi_store::Store::open(db.to_str().unwrap_or_default())
        .await
        .expect("runner store");
    let events = store
        .events_after(room.as_str(), 0, 1000)
        .await
        .expect("events");
    let last = events.last().expect("an event").body.clone();
    let orig = FanoutMessage::decode(&last).expect("fanout");
    let fresh = FanoutMessage {
        timestamp: orig.timestamp + 1,
        message: orig.message.clone(),
        extra: FanoutExtra::Application(None),
    }
    .encode();
    let (st, b) = r.post(Endpoint::Notify, room.as_str(), fresh.clone()).await;
    report.add_x(
        "notify.new-201",
        "§5.5",
        "PROTO-5.5",
        pass_if(st == 201, || format!("answered {st}")),
        &fresh,
        st,
        &b,
    );
    let (st, b) = r.post(Endpoint::Notify, room.as_str(), fresh.clone()).await;
    report.add_x(
        "notify.repeat-201",
        "§5.5",
        "PROTO-5.5-dedup",
        pass_if(st == 201, || {
            format!("a byte-identical repeat was answered {st}")
        }),
        &fresh,
        st,
        &b,
    );
    // The repeat must not reach the device a second time: count items with these bytes.
    let (qs, qb) = call(&tu.api, Method::GET, "queue?after=0&limit=500", Vec::new()).await;
    let outcome = if qs == StatusCode::OK {
        let v: serde_json::Value = serde_json::from_slice(&qb).unwrap_or_default();
        let n = v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i["body"].as_str() == Some(hex::encode(&fresh).as_str()))
                    .count()
            })
            .unwrap_or(0);
        pass_if(n == 1, || format!("the device got that body {n} times"))
    } else {
        Outcome::NotApplicable(format!("the target's queue answered {qs}"))
    };
    report.add(
        "notify.repeat-not-delivered-twice",
        "§5.5",
        "PROTO-5.5-dedup",
        outcome,
    );
    let junk = b"\x00\x00\x00\x01\xff".to_vec();
    let (st, b) = r.post(Endpoint::Notify, room.as_str(), junk.clone()).await;
    report.add_x(
        "notify.malformed",
        "§5.5",
        "WIRE-decode",
        pass_if((400..500).contains(&st), || {
            format!("a malformed body was answered {st}")
        }),
        &junk,
        st,
        &b,
    );

    // The target forwards its user's message to the hub (the runner).
    let back = tu.send(&room, "from the follower's user").await;
    w.sync_until("the follower user's message", |p| p.got(&back) == 1)
        .await;
    report.add(
        "follower.flow.submit-forwarded",
        "§3, §5.4",
        "CAPI-forward",
        Outcome::Pass,
    );

    // PROTO-follower-membership: the runner's user removes the target's user; the target
    // delivers the removing commit to the removed device (it SHOULD see it) and nothing of the
    // room after it, not even undecryptable ciphertext.
    // Another user of the target stays in the room, so that the hub keeps notifying it.
    let mut stays = Person::register_via(
        r.target_api().expect("api"),
        &format!("stays{t}"),
        "1",
        None,
    )
    .await;
    w.add(&room, stays.dev.user.as_str()).await;
    stays
        .sync_until("the Welcome of the user who stays", |p| {
            p.rooms.contains_key(&room)
        })
        .await;
    let (_, qb) = call(&tu.api, Method::GET, "queue?after=0&limit=500", Vec::new()).await;
    let before: u64 = serde_json::from_slice::<serde_json::Value>(&qb)
        .ok()
        .and_then(|v| v["items"].as_array()?.last()?["seq"].as_u64())
        .unwrap_or(0);
    let out = w
        .rooms
        .get_mut(&room)
        .expect("room")
        .remove_user(&w.dev, &tu.dev.user)
        .expect("removal");
    let removed = matches!(
        w.update(&room, &out.bundle).await,
        UpdateOutcome::Success { .. }
    );
    let outcome = if removed {
        let after = w.send(&room, "after the removal").await;
        let m = after.clone();
        stays
            .sync_until("the message after the removal", move |p| p.got(&m) == 1)
            .await;
        // Bounded wait until the runner's outbox has handed both to the target.
        let mut drained = false;
        for _ in 0..200 {
            let depth = store.outbox_depth().await.unwrap_or_default();
            if depth.iter().all(|(f, n)| f != &r.opts.target || *n == 0) {
                drained = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (qs, qb) = call(
            &tu.api,
            Method::GET,
            &format!("queue?after={before}&limit=500"),
            Vec::new(),
        )
        .await;
        if !drained || qs != StatusCode::OK {
            Outcome::NotApplicable(format!(
                "the target did not take the notifies (queue {qs}, outbox drained: {drained})"
            ))
        } else {
            let v: serde_json::Value = serde_json::from_slice(&qb).unwrap_or_default();
            let kinds: Vec<String> = v["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| hex::decode(i["body"].as_str()?).ok())
                        .filter_map(|b| FanoutMessage::decode(&b).ok())
                        .map(|f| match f.extra {
                            FanoutExtra::Commit(_) => "commit".to_owned(),
                            FanoutExtra::Application(_) => "application".to_owned(),
                            FanoutExtra::Proposal(_) => "proposal".to_owned(),
                            FanoutExtra::Welcome(_) => "welcome".to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            pass_if(kinds == ["commit"], || {
                format!(
                    "the removed device got {kinds:?} after its removal (expected only the removing commit)"
                )
            })
        }
    } else {
        Outcome::NotApplicable("the runner's removal was not accepted".into())
    };
    report.add(
        "follower.membership.removed-gets-nothing",
        "§5.5, §7.8",
        "PROTO-follower-membership",
        outcome,
    );

    // PROTO-hub-removal: the hub's own proposals (it is the room's external sender) reach the
    // members at the target: the runner's hub proposes the removal of the target's remaining
    // user's device, and that device's queue gets the proposal.
    let (_, qb) = call(
        &stays.api,
        Method::GET,
        "queue?after=0&limit=500",
        Vec::new(),
    )
    .await;
    let before: u64 = serde_json::from_slice::<serde_json::Value>(&qb)
        .ok()
        .and_then(|v| v["items"].as_array()?.last()?["seq"].as_u64())
        .unwrap_or(0);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let outcome = match r
        .node
        .node
        .hub_propose_removal(&room, &stays.dev.client, now_ms)
        .await
    {
        Err(e) => Outcome::NotApplicable(format!("the runner's hub could not propose: {e}")),
        Ok(()) => {
            let mut kinds: Vec<String> = Vec::new();
            for _ in 0..100 {
                let (qs, qb) = call(
                    &stays.api,
                    Method::GET,
                    &format!("queue?after={before}&limit=500&wait=100"),
                    Vec::new(),
                )
                .await;
                if qs != StatusCode::OK {
                    break;
                }
                let v: serde_json::Value = serde_json::from_slice(&qb).unwrap_or_default();
                kinds = v["items"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|i| hex::decode(i["body"].as_str()?).ok())
                            .filter_map(|b| FanoutMessage::decode(&b).ok())
                            .filter(|f| matches!(f.extra, FanoutExtra::Proposal(_)))
                            .map(|_| "proposal".to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                if !kinds.is_empty() {
                    break;
                }
                let depth = store.outbox_depth().await.unwrap_or_default();
                if depth.iter().all(|(f, n)| f != &r.opts.target || *n == 0) && kinds.is_empty() {
                    // Handed over and still not in the queue: give the target a moment more,
                    // then judge.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            pass_if(kinds == ["proposal"], || {
                format!(
                    "the member's device got {} proposal(s) after the hub proposed its removal (expected 1)",
                    kinds.len()
                )
            })
        }
    };
    report.add(
        "follower.hub-proposal-delivered",
        "§3, §5.5",
        "PROTO-hub-removal",
        outcome,
    );
}

/// A node as a separate process, for tests of the runner against a target that breaks rules.
pub type TargetProcess = ProcNode;

/// Registers a user on the target through its client API with a handle (and its name as nick).
async fn register_with_handle(api: &ClientApi, user: &str, handle: &str) -> Result<(), String> {
    let body = serde_json::json!({ "user": user, "device": "1", "nick": user, "handle": handle });
    let (st, b) = call(api, Method::POST, "register", body.to_string().into_bytes()).await;
    if st == StatusCode::CREATED {
        Ok(())
    } else {
        Err(format!(
            "registering {user} on the target: {st} {}",
            String::from_utf8_lossy(&b)
        ))
    }
}

/// identifierQuery (§5.8) from the runner to the target about the target's users: an exact
/// handle, a query that matches nobody, and two elements that must both match.
async fn identifier_query(r: &Runner, report: &mut Report) {
    const IDS: [&str; 3] = [
        "identifierQuery.exact-handle",
        "identifierQuery.not-found",
        "identifierQuery.all-elements",
    ];
    let Some(tapi) = r.target_users(report, &IDS, "§5.8", "PROTO-5.8-query") else {
        return;
    };
    let t = tag();
    let (alpha, beta) = (format!("qa{t}"), format!("qb{t}"));
    let (ha, hb) = (format!("@qa{t}"), format!("@qb{t}"));
    let mut setup = register_with_handle(&tapi, &alpha, &ha).await;
    if setup.is_ok() {
        setup = match r.target_api() {
            Some(api) => register_with_handle(&api, &beta, &hb).await,
            None => Err("no client API".into()),
        };
    }
    if let Err(e) = setup {
        for id in IDS {
            report.add(id, "§5.8", "PROTO-5.8-query", Outcome::Fail(e.clone()));
        }
        return;
    }
    let element = |search_type, v: &str| QueryElement {
        search_type,
        field_name: Vec::new(),
        search_value: v.to_owned(),
    };
    let alpha_uri = user_of(&r.opts.target, &alpha);
    let cases = [
        (
            IDS[0],
            vec![element(SearchIdentifierType::HANDLE, &ha)],
            Some(alpha_uri.clone()),
        ),
        (
            IDS[1],
            vec![element(
                SearchIdentifierType::HANDLE,
                &format!("@nobody{t}"),
            )],
            None,
        ),
        // alpha's nick AND beta's handle: nobody has both.
        (
            IDS[2],
            vec![
                element(SearchIdentifierType::NICK, &alpha),
                element(SearchIdentifierType::HANDLE, &hb),
            ],
            None,
        ),
    ];
    for (id, elements, want) in cases {
        let req = IdentifierRequest {
            query_elements: elements,
            extensions: Default::default(),
        };
        let sent = req.encode();
        let (st, b) = r
            .post(Endpoint::IdentifierQuery, &r.opts.target, sent.clone())
            .await;
        let outcome = match IdentifierResponse::decode(&b) {
            Err(e) => Outcome::Fail(format!("{st}: not an IdentifierResponse: {e}")),
            Ok(resp) => match &want {
                Some(u) => pass_if(
                    st == 200
                        && resp.response_code == IdentifierQueryCode::SUCCESS
                        && resp.uris.len() == 1
                        && resp.uris[0].to_string() == u.as_str(),
                    || {
                        format!(
                            "{st}: responseCode {:?}, uris {:?} (expected success with {u} only)",
                            resp.response_code, resp.uris
                        )
                    },
                ),
                None => pass_if(
                    st == 200
                        && resp.response_code == IdentifierQueryCode::NOT_FOUND
                        && resp.uris.is_empty(),
                    || {
                        format!(
                            "{st}: responseCode {:?}, uris {:?} (expected notFound and no URIs)",
                            resp.response_code, resp.uris
                        )
                    },
                ),
            },
        };
        report.add_x(id, "§5.8", "PROTO-5.8-query", outcome, &sent, st, &b);
    }
}

/// Consent (§5.7) and consent enforced by keyMaterial (§5.2), then reportAbuse (§5.9), with
/// the target as the hub of `room` and `u` (the runner's user) a member of it.
async fn consent_and_abuse(r: &Runner, report: &mut Report, room: &RoomUri, u: &Person) {
    let t = tag();
    let me = r.opts.me.clone();
    // A contacts-only user on the target, set up through its client API.
    let Some(api) = r.target_api() else {
        return;
    };
    let c = Person::register_via(api, &format!("shy{t}"), "1", None).await;
    let (st, b) = call(
        &c.api,
        Method::POST,
        "consent/policy",
        br#"{"policy":"contacts"}"#.to_vec(),
    )
    .await;
    if st != StatusCode::OK {
        report.add(
            "consent.setup",
            "§5.7",
            "PROTO-consent",
            Outcome::Fail(format!(
                "setting a contacts-only policy through the target's client API: {st} {}",
                String::from_utf8_lossy(&b)
            )),
        );
        return;
    }
    let cu = c.dev.user.clone();
    let uu = u.dev.user.clone();
    let entry = |op, requester: &UserUri, target: &UserUri| ConsentEntry {
        operation: op,
        scope: ConsentScope {
            requester_uri: requester.clone(),
            target_uri: target.clone(),
            room_id: None,
        },
        client_key_packages: Vec::new(),
        consent_extensions: Default::default(),
    };

    // requestConsent: U asks C (201); a grant sent to requestConsent is refused (400).
    let sent = entry(ConsentOperation::Request, &uu, &cu).encode();
    let (st, b) = r
        .post(Endpoint::RequestConsent, cu.as_str(), sent.clone())
        .await;
    report.add_x(
        "consent.request-201",
        "§5.7",
        "PROTO-5.7-request",
        pass_if(st == 201, || format!("requestConsent answered {st}")),
        &sent,
        st,
        &b,
    );
    let sent = entry(ConsentOperation::Grant, &uu, &cu).encode();
    let (st, b) = r
        .post(Endpoint::RequestConsent, cu.as_str(), sent.clone())
        .await;
    report.add_x(
        "consent.request-wrong-operation",
        "§5.7",
        "PROTO-5.7-request",
        pass_if(st == 400, || {
            format!("a grant sent to requestConsent answered {st} (400 expected)")
        }),
        &sent,
        st,
        &b,
    );
    // updateConsent: the runner's user W grants the target's user C (C is the requester, of
    // the target): 201.
    let w = user_of(&me, &format!("w{t}"));
    let sent = entry(ConsentOperation::Grant, &cu, &w).encode();
    let (st, b) = r
        .post(Endpoint::UpdateConsent, cu.as_str(), sent.clone())
        .await;
    report.add_x(
        "consent.update-201",
        "§5.7",
        "PROTO-5.7-update",
        pass_if(st == 201, || format!("updateConsent answered {st}")),
        &sent,
        st,
        &b,
    );

    // A grant from W that carries a KeyPackage of another user (U's device): the requester's
    // provider must not keep it for C (400; it would let C add U thinking it is W).
    let foreign = u
        .dev
        .key_package_for(mimi_room::mls::CIPHERSUITE)
        .ok()
        .and_then(|kp| mimi_wire::codec::Mls::from_bytes(kp).ok());
    match foreign {
        None => report.add(
            "consent.grant-foreign-key-package",
            "§5.7",
            "PROTO-5.7-grant-checked",
            Outcome::Fail("the runner could not make a KeyPackage of its own device".into()),
        ),
        Some(kp) => {
            let mut bad = entry(ConsentOperation::Grant, &cu, &w);
            bad.client_key_packages = vec![kp];
            let sent = bad.encode();
            let (st, b) = r
                .post(Endpoint::UpdateConsent, cu.as_str(), sent.clone())
                .await;
            report.add_x(
                "consent.grant-foreign-key-package",
                "§5.7",
                "PROTO-5.7-grant-checked",
                pass_if(st == 400, || {
                    format!(
                        "a grant by {w} carrying a KeyPackage of {} answered {st} (400 expected)",
                        u.dev.user
                    )
                }),
                &sent,
                st,
                &b,
            );
        }
    }

    // keyMaterial for C: noConsent without a grant, a KeyPackage after C grants U, noConsent
    // again after C revokes.
    let claim = |id: &'static str, want_kp: bool| {
        let cu = cu.clone();
        async move {
            let req = match u.dev.key_material_request(room, &cu) {
                Ok(req) => req,
                Err(e) => {
                    return (
                        id,
                        Outcome::Fail(format!("request: {e}")),
                        Vec::new(),
                        0,
                        Vec::new(),
                    );
                }
            };
            let sent = req.encode();
            let (st, b) = r
                .post(Endpoint::KeyMaterial, cu.as_str(), sent.clone())
                .await;
            let outcome = match KeyMaterialResponse::decode(&b) {
                Err(e) => Outcome::Fail(format!("{st}: not a KeyMaterialResponse: {e}")),
                Ok(resp) => {
                    let kps = resp
                        .clients
                        .iter()
                        .filter(|c| matches!(c.material, ClientMaterial::KeyPackage(_)))
                        .count();
                    if want_kp {
                        pass_if(
                            resp.user_status == KeyMaterialUserCode::SUCCESS && kps == 1,
                            || {
                                format!(
                                    "after a grant: userStatus {:?}, {kps} KeyPackages (one expected)",
                                    resp.user_status
                                )
                            },
                        )
                    } else {
                        pass_if(
                            resp.user_status == KeyMaterialUserCode::NO_CONSENT && kps == 0,
                            || {
                                format!(
                                    "without consent: userStatus {:?}, {kps} KeyPackages (noConsent and none expected)",
                                    resp.user_status
                                )
                            },
                        )
                    }
                }
            };
            (id, outcome, sent, st, b)
        }
    };
    let decide = |op: &'static str| {
        let body = serde_json::json!({ "requester": uu.as_str() }).to_string();
        let api = &c.api;
        async move {
            let (st, b) = call(
                api,
                Method::POST,
                &format!("consent/{op}"),
                body.into_bytes(),
            )
            .await;
            (st == StatusCode::OK).then_some(()).ok_or_else(|| {
                format!(
                    "consent/{op} through the target's client API: {st} {}",
                    String::from_utf8_lossy(&b)
                )
            })
        }
    };
    let (id, outcome, sent, st, b) = claim("consent.no-consent-without-grant", false).await;
    report.add_x(id, "§5.2, §5.7", "PROTO-consent", outcome, &sent, st, &b);
    for (op, id, want_kp) in [
        ("grant", "consent.key-material-after-grant", true),
        ("revoke", "consent.revoked-no-consent", false),
    ] {
        if let Err(e) = decide(op).await {
            report.add(id, "§5.2, §5.7", "PROTO-consent", Outcome::Fail(e));
            continue;
        }
        let (id, outcome, sent, st, b) = claim(id, want_kp).await;
        report.add_x(id, "§5.2, §5.7", "PROTO-consent", outcome, &sent, st, &b);
    }

    // reportAbuse: U reports C (201); a reporter of another provider is refused; a malformed
    // body gets 400.
    let abuse = |reporter: UserUri| AbuseReport {
        reporting_user: Some(reporter),
        alleged_abuser_uri: cu.clone(),
        reason_code: 0,
        note: "conformance".into(),
        messages: Vec::new(),
        extensions: Default::default(),
    };
    let sent = abuse(uu.clone()).encode();
    let (st, b) = r
        .post(Endpoint::ReportAbuse, room.as_str(), sent.clone())
        .await;
    report.add_x(
        "reportAbuse.accepted",
        "§5.9",
        "PROTO-5.9-report",
        pass_if(st == 201, || {
            format!("a report from a user of the calling provider answered {st}")
        }),
        &sent,
        st,
        &b,
    );
    let sent = abuse(user_of(&r.opts.target, &format!("shy{t}"))).encode();
    let (st, b) = r
        .post(Endpoint::ReportAbuse, room.as_str(), sent.clone())
        .await;
    report.add_x(
        "reportAbuse.foreign-reporter",
        "§5.9",
        "PROTO-5.9-report",
        pass_if((400..500).contains(&st), || {
            format!(
                "{me} reported on behalf of a user of {}: answered {st} (a 4xx expected)",
                r.opts.target
            )
        }),
        &sent,
        st,
        &b,
    );
    let sent = b"\xff\xff\xff\xff not an AbuseReport".to_vec();
    let (st, b) = r
        .post(Endpoint::ReportAbuse, room.as_str(), sent.clone())
        .await;
    report.add_x(
        "reportAbuse.malformed",
        "§5.9",
        "WIRE-decode",
        pass_if(st == 400, || {
            format!("a malformed body answered {st} (400 expected)")
        }),
        &sent,
        st,
        &b,
    );
}
