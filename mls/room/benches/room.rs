//! `cargo bench -p mimi-room`: the hub's acceptance of one commit (a member's AppDataUpdate
//! commit: resolver, policy, GroupInfo cross-check, merge) at group sizes 2, 16, 128 and 1,000,
//! beside openmls `PublicGroup` process + stage + merge of the same commit measured in the
//! same run; and a client's encrypt + decrypt of a 1 KB MIMI message. The ratio table is
//! printed at the end. Target (DESIGN.md): hub acceptance ≤ 1.25x PublicGroup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion};
use mimi_content::MimiContent;
use mimi_room::client::{Device, Room};
use mimi_room::codepoints::CodePoints;
use mimi_room::hub::HubRoom;
use mimi_room::mls::{ops_of, updates};
use mimi_room::presets::private_group;
use mimi_wire::components::RoomMetaData;
use mimi_wire::fanout::{FanoutExtra, FanoutMessage};
use mimi_wire::id::{ClientUri, RoomUri, UserUri};
use mimi_wire::update::HandshakeBundle;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::types::SignatureScheme;
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [2, 16, 128, 1000];

fn room_uri() -> RoomUri {
    RoomUri::parse("mimi://a.example/r/bench").unwrap()
}

struct Setup {
    snapshot: Vec<u8>,
    bundle: HandshakeBundle,
}

/// A room of `n` clients (Alice plus n-1 users on b.example) and Alice's next commit.
fn setup(n: usize) -> Setup {
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let (mut room, gi, tree) = alice
        .create_room(
            &room_uri(),
            &private_group(&CodePoints::DRAFT),
            hub_sender,
            Some("Bench"),
        )
        .unwrap();
    let mut hub = HubRoom::bootstrap(room_uri(), &gi, &tree).unwrap();
    if n > 1 {
        let mut users = Vec::new();
        let mut kps = Vec::new();
        for i in 1..n {
            let d = Device::new(ClientUri::parse(&format!("mimi://b.example/d/u{i}/1")).unwrap())
                .unwrap();
            kps.push(d.key_package().unwrap());
            users.push((
                UserUri::parse(&format!("mimi://b.example/u/u{i}")).unwrap(),
                2,
            ));
        }
        let out = room.add_users(&alice, &users, &kps).unwrap();
        hub.handle_update(&out.bundle).unwrap();
        room.merge(&alice).unwrap();
    }
    let out = room
        .set_metadata(&alice, RoomMetaData::named(room_uri(), "Renamed"))
        .unwrap();
    Setup {
        snapshot: hub.snapshot(),
        bundle: out.bundle,
    }
}

/// What an app-data-aware openmls hub does at least: process, stage with the new
/// dictionary values, merge.
fn public_group_baseline(hub: &mut HubRoom, bundle: &HandshakeBundle, changes: &[(u16, Vec<u8>)]) {
    let HandshakeBundle::Commit { commit, .. } = bundle else {
        panic!()
    };
    let crypto = RustCrypto::default();
    let pm = commit.parse().unwrap().try_into_protocol_message().unwrap();
    let sc = match hub
        .group
        .process_message(&crypto, pm)
        .unwrap()
        .into_content()
    {
        ProcessedMessageContent::UnresolvedAppDataCommit(u) => {
            let ch = updates(hub.group.app_data_dictionary_updater(), changes);
            hub.group.stage_app_data_commit(&crypto, *u, ch).unwrap()
        }
        ProcessedMessageContent::StagedCommitMessage(sc) => *sc,
        _ => panic!("not a commit"),
    };
    hub.group.merge_commit(&hub.storage, sc).unwrap();
}

fn changes_of(s: &Setup) -> Vec<(u16, Vec<u8>)> {
    let hub = HubRoom::restore(&s.snapshot).unwrap();
    let HandshakeBundle::Commit { commit, .. } = &s.bundle else {
        panic!()
    };
    let crypto = RustCrypto::default();
    let pm = commit.parse().unwrap().try_into_protocol_message().unwrap();
    let ProcessedMessageContent::UnresolvedAppDataCommit(u) = hub
        .group
        .process_message(&crypto, pm)
        .unwrap()
        .into_content()
    else {
        panic!()
    };
    let ops = ops_of(u.app_data_update_proposals());
    hub.state()
        .unwrap()
        .resolve(&CodePoints::DRAFT, &ops)
        .unwrap()
        .changes
}

fn message_pair() -> (Device, Room, Device, Room) {
    let alice = Device::new(ClientUri::parse("mimi://a.example/d/alice/1").unwrap()).unwrap();
    let bob = Device::new(ClientUri::parse("mimi://b.example/d/bob/1").unwrap()).unwrap();
    let k = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let hub_sender = ExternalSender::new(
        k.to_public_vec().into(),
        BasicCredential::new(b"mimi://a.example".to_vec()).into(),
    );
    let (mut a_room, _, _) = alice
        .create_room(
            &room_uri(),
            &private_group(&CodePoints::DRAFT),
            hub_sender,
            None,
        )
        .unwrap();
    let out = a_room
        .add_users(
            &alice,
            &[(UserUri::parse("mimi://b.example/u/bob").unwrap(), 2)],
            &[bob.key_package().unwrap()],
        )
        .unwrap();
    a_room.merge(&alice).unwrap();
    let HandshakeBundle::Commit {
        welcome: Some(w),
        ratchet_tree,
        ..
    } = out.bundle
    else {
        panic!()
    };
    let mut bytes = vec![0, 1, 0, 3];
    bytes.extend_from_slice(w.as_bytes());
    let welcome = mimi_wire::Mls::from_bytes(bytes).unwrap();
    let b_room = bob
        .join_from_welcome(&room_uri(), &welcome, &ratchet_tree)
        .unwrap();
    (alice, a_room, bob, b_room)
}

/// Every size's room, built once and reused by criterion and the ratio table.
struct RoomOfSize {
    n: usize,
    setup: Setup,
    changes: Vec<(u16, Vec<u8>)>,
}

fn benches(c: &mut Criterion, sizes: &[RoomOfSize]) {
    for RoomOfSize {
        n,
        setup: s,
        changes,
    } in sizes
    {
        let n = *n;
        let mut g = c.benchmark_group(format!("commit acceptance, {n} clients"));
        g.sample_size(10);
        g.bench_function("mimi-room hub", |b| {
            b.iter_batched(
                || HubRoom::restore(&s.snapshot).unwrap(),
                |mut hub| black_box(hub.handle_update(&s.bundle).unwrap()),
                BatchSize::PerIteration,
            )
        });
        g.bench_function("openmls PublicGroup process+merge (baseline)", |b| {
            b.iter_batched(
                || HubRoom::restore(&s.snapshot).unwrap(),
                |mut hub| public_group_baseline(&mut hub, &s.bundle, changes),
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
    let (alice, mut a_room, bob, mut b_room) = message_pair();
    let body = MimiContent::text([7; 16], &"x".repeat(1024))
        .encode()
        .unwrap();
    c.bench_function("client encrypt+decrypt of a 1 KB MIMI message", |b| {
        b.iter(|| {
            let req = a_room.send(&alice, black_box(&body)).unwrap();
            let item = FanoutMessage {
                timestamp: 0,
                message: req.app_message,
                extra: FanoutExtra::Application(None),
            };
            black_box(b_room.process(&bob, &item).unwrap())
        })
    });
}

/// Median of `rounds` timed runs, each after an untimed restore.
fn median_ms(s: &Setup, rounds: usize, mut f: impl FnMut(&mut HubRoom)) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let mut hub = HubRoom::restore(&s.snapshot).unwrap();
            let t = Instant::now();
            f(&mut hub);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ratios(sizes: &[RoomOfSize]) {
    println!(
        "\nratio table (median of 15 runs; ratio = mimi-room hub / openmls PublicGroup process+stage+merge, same run; target <= 1.25x)"
    );
    println!("| clients | mimi-room hub acceptance | PublicGroup baseline | ratio |");
    println!("|---|---|---|---|");
    for RoomOfSize {
        n,
        setup: s,
        changes,
    } in sizes
    {
        let ours = median_ms(s, 15, |hub| {
            drop(black_box(hub.handle_update(&s.bundle).unwrap()))
        });
        let base = median_ms(s, 15, |hub| public_group_baseline(hub, &s.bundle, changes));
        println!(
            "| {n} | {ours:.3} ms | {base:.3} ms | {:.2}x |",
            ours / base
        );
    }
}

fn main() {
    let sizes: Vec<RoomOfSize> = SIZES
        .iter()
        .map(|&n| {
            let setup = setup(n);
            let changes = changes_of(&setup);
            RoomOfSize { n, setup, changes }
        })
        .collect();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut c, &sizes);
    c.final_summary();
    ratios(&sizes);
}
