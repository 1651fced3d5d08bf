//! A seeded random walk of commits without AppDataUpdate (issue 18 item 5): 200 epochs in a
//! room with openmls and mls-rs devices, every commit through the hub.

use super::harness::*;
use mimi_room::client::CommitPlan;
use mimi_wire::id::{ClientUri, UserUri};

/// The default seed; `MIMI_MIXED_SEED` (decimal or `0x` hex) overrides it.
const SEED: u64 = 0x4d49_4d49_0018_0005;
const EPOCHS: u64 = 200;
const MAX_MEMBERS: usize = 8;
/// A random member sends an application message every this many epochs.
const MESSAGE_EVERY: u64 = 3;

/// splitmix64 (Steele, Lea, Flood 2014): small, deterministic, good enough to pick moves.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

fn seed() -> u64 {
    match std::env::var("MIMI_MIXED_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("MIMI_MIXED_SEED={s}: {e}"))
        }
        Err(_) => SEED,
    }
}

fn user_of(m: &Member) -> UserUri {
    m.client().user().unwrap()
}

/// A device about to join (either library).
enum NewDevice {
    Om(mimi_room::client::Device),
    Rs(mimi_room_mlsrs::device::Device),
}

/// What one epoch's commit did (for the log).
enum Move {
    SelfUpdate,
    Add(ClientUri, &'static str),
    Remove(ClientUri),
}

impl std::fmt::Display for Move {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Move::SelfUpdate => write!(f, "self-update"),
            Move::Add(c, lib) => write!(f, "adds {c} ({lib})"),
            Move::Remove(c) => write!(f, "removes {c}"),
        }
    }
}

/// Alice (openmls) creates the room and, in one commit, adds Bob's mls-rs device and Carol's
/// openmls device (Add + participant-list AppDataUpdate; both join from the Welcome, so no
/// mls-rs device has to process an AppDataUpdate).
fn three_users() -> Mixed {
    let mut room = Mixed::new("mimi://a.example/d/alice/1");
    let bob = rs_device("mimi://b.example/d/bob/1");
    let carol = om_device("mimi://c.example/d/carol/1");
    let kps = [bob.key_package().unwrap(), carol.key_package().unwrap()];
    let Member::Om(d, r) = &mut room.members[0] else {
        unreachable!()
    };
    let out = r
        .add_users(
            d,
            &[
                (user("mimi://b.example/u/bob"), 2),
                (user("mimi://c.example/u/carol"), 2),
            ],
            &kps,
        )
        .unwrap();
    let (welcome, tree) = room.commit(0, out.bundle).unwrap().unwrap();
    let bob_room = bob.join_from_welcome(&room_uri(), &welcome, &tree).unwrap();
    let carol_room = carol
        .join_from_welcome(&room_uri(), &welcome_message(&welcome), &tree)
        .unwrap();
    room.members.push(Member::Rs(bob, bob_room));
    room.members.push(Member::Om(carol, carol_room));
    room.assert_agree();
    room
}

/// The committer's user's device URI number `n` (`mimi://b.example/d/bob/1` → `.../bob/n`).
fn sibling_uri(of: &ClientUri, n: u64) -> String {
    let s = of.as_str();
    let cut = s.rfind('/').unwrap();
    format!("{}/{n}", &s[..cut])
}

/// One epoch: `committer` self-updates, adds a device of its own user or removes another
/// device of its own user; the hub must accept, every other member processes it.
fn step(room: &mut Mixed, rng: &mut SplitMix64, next_device: &mut u64) -> (ClientUri, Move) {
    let n = room.members.len();
    let committer = rng.below(n);
    let me = room.members[committer].client();
    let my_user = user_of(&room.members[committer]);
    let siblings: Vec<usize> = (0..n)
        .filter(|&i| i != committer && user_of(&room.members[i]) == my_user)
        .collect();
    let mut kinds = vec![0u8];
    if n < MAX_MEMBERS {
        kinds.push(1);
    }
    if !siblings.is_empty() {
        kinds.push(2);
    }
    let kind = kinds[rng.below(kinds.len())];
    match kind {
        0 => {
            let bundle = match &mut room.members[committer] {
                Member::Om(d, r) => r.commit_plan(d, CommitPlan::default()).unwrap().bundle,
                Member::Rs(_, r) => r.self_update().unwrap(),
            };
            room.commit(committer, bundle)
                .unwrap_or_else(|e| panic!("hub refused {me}'s self-update: {e:?}"));
            (me, Move::SelfUpdate)
        }
        1 => {
            *next_device += 1;
            let uri = sibling_uri(&me, *next_device);
            let new_is_rs = rng.coin();
            let (kp, new) = if new_is_rs {
                let d = rs_device(&uri);
                (d.key_package().unwrap(), NewDevice::Rs(d))
            } else {
                let d = om_device(&uri);
                (d.key_package().unwrap(), NewDevice::Om(d))
            };
            let bundle = match &mut room.members[committer] {
                Member::Om(d, r) => {
                    r.commit_plan(
                        d,
                        CommitPlan {
                            key_packages: vec![kp],
                            ..Default::default()
                        },
                    )
                    .unwrap()
                    .bundle
                }
                Member::Rs(_, r) => r.commit(None, &[kp], &[]).unwrap(),
            };
            let (welcome, tree) = room
                .commit(committer, bundle)
                .unwrap_or_else(|e| panic!("hub refused {me}'s add of {uri}: {e:?}"))
                .expect("an Add has a Welcome");
            let member = match new {
                NewDevice::Rs(d) => {
                    let r = d.join_from_welcome(&room_uri(), &welcome, &tree).unwrap();
                    Member::Rs(d, r)
                }
                NewDevice::Om(d) => {
                    let r = d
                        .join_from_welcome(&room_uri(), &welcome_message(&welcome), &tree)
                        .unwrap();
                    Member::Om(d, r)
                }
            };
            let c = member.client();
            room.members.push(member);
            (
                me,
                Move::Add(c, if new_is_rs { "mls-rs" } else { "openmls" }),
            )
        }
        _ => {
            let target = siblings[rng.below(siblings.len())];
            let victim = room.members[target].client();
            let bundle = match &mut room.members[committer] {
                Member::Om(d, r) => {
                    r.commit_plan(
                        d,
                        CommitPlan {
                            remove_clients: vec![victim.clone()],
                            ..Default::default()
                        },
                    )
                    .unwrap()
                    .bundle
                }
                Member::Rs(_, r) => {
                    let leaf = r.leaf_of(&victim).unwrap();
                    r.commit(None, &[], &[leaf]).unwrap()
                }
            };
            room.commit(committer, bundle)
                .unwrap_or_else(|e| panic!("hub refused {me}'s remove of {victim}: {e:?}"));
            room.drop_removed();
            (me, Move::Remove(victim))
        }
    }
}

/// 200 epochs of random commits without AppDataUpdate by random members of either library
/// (self-update; Add of a new openmls or mls-rs device of the committer's own user; Remove of
/// another device of the committer's own user), at most 8 members, every commit accepted by
/// the hub; after each epoch epoch, epoch authenticator, room state and members agree
/// everywhere; every third epoch a random member's application message decrypts on all others.
#[test]
fn random_commits_without_app_data_agree_for_200_epochs() {
    let seed = seed();
    println!("MIMI_MIXED_SEED={seed:#x}");
    let mut rng = SplitMix64(seed);
    let mut room = three_users();
    let mut next_device = 1;
    let (mut rs_commits, mut om_commits) = (0u32, 0u32);
    for e in 0..EPOCHS {
        let epoch = room.hub.epoch();
        let before: Vec<(ClientUri, bool)> = room
            .members
            .iter()
            .map(|m| (m.client(), matches!(m, Member::Rs(..))))
            .collect();
        let (who, mv) = step(&mut room, &mut rng, &mut next_device);
        let rs = before.iter().any(|(c, r)| *r && *c == who);
        if rs {
            rs_commits += 1;
        } else {
            om_commits += 1;
        }
        println!(
            "epoch {epoch} -> {}: {who} ({}) {mv}; {} members",
            room.hub.epoch(),
            if rs { "mls-rs" } else { "openmls" },
            room.members.len()
        );
        assert_eq!(room.hub.epoch(), epoch + 1, "seed {seed:#x}, step {e}");
        room.assert_agree();
        if e % MESSAGE_EVERY == MESSAGE_EVERY - 1 {
            let s = rng.below(room.members.len());
            let content = format!("seed {seed:#x} epoch {}", room.hub.epoch()).into_bytes();
            let msg = room.members[s].send(&content);
            let from = room.members[s].client();
            for (i, m) in room.members.iter_mut().enumerate() {
                if i != s {
                    let (sender, got) = m.receive(&msg);
                    assert_eq!(sender, from, "{}: sender", m.client());
                    assert_eq!(got, content, "{}: plaintext", m.client());
                }
            }
        }
    }
    println!("commits: {om_commits} by openmls, {rs_commits} by mls-rs devices");
    assert!(rs_commits > 0 && om_commits > 0, "both libraries committed");
}
