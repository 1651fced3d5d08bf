//! Room policy across three providers (`ROOM-policy-active-limits`): the hub a.example limits
//! role 2 to one active participant (Bob of b.example); Bob's commit adding Cathy of c.example
//! as role 2 is refused by the hub with `notAllowed`, and the refusal reaches Bob through his
//! own provider. Nobody's epoch moves; Alice then adds Cathy as an admin (no limit).

use mimi_harness::*;
use mimi_wire::codec::Body;
use mimi_wire::id::{RoomUri, UserUri};
use mimi_wire::key_material::ClientMaterial;
use mimi_wire::update::UpdateOutcome;

#[tokio::test]
async fn room_policy_max_active_refusal_reaches_the_committer_across_providers() {
    let fed = federation(None).await;
    let room = RoomUri::parse(&format!("mimi://a.example/r/limits{}", tag())).unwrap();
    let mut alice = Person::register(&fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(&fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(&fed, "c.example", "cathy", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    let e = alice.epoch(&room);
    bob.sync_until("joined", |p| p.epoch(&room) == e).await;

    // Alice (group admin, canChangeRoleDefinitions) limits role 2 to one active participant.
    let cp = mimi_room::codepoints::CodePoints::DRAFT;
    let r = alice.rooms.get_mut(&room).unwrap();
    let mut roles = r.state(&alice.dev).unwrap().roles;
    for role in &mut roles.roles {
        if role.index == 2 {
            role.max_active = Some(1);
        }
    }
    let out = r
        .set_components(&alice.dev, vec![(cp.roles_list, roles.encode())])
        .unwrap();
    let outcome = alice.update(&room, &out.bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = alice.epoch(&room);
    bob.sync_until("the role update", |p| p.epoch(&room) == e)
        .await;

    // Bob (b.example) adds Cathy (c.example) as role 2: refused by the hub, answered to Bob.
    let cathy_user = UserUri::parse("mimi://c.example/u/cathy").unwrap();
    let kps: Vec<Vec<u8>> = bob
        .claim(&room, &cathy_user)
        .await
        .clients
        .iter()
        .filter_map(|c| match &c.material {
            ClientMaterial::KeyPackage(k) => Some(k.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    assert!(!kps.is_empty());
    let out = bob
        .rooms
        .get_mut(&room)
        .unwrap()
        .add_users(&bob.dev, &[(cathy_user.clone(), 2)], &kps)
        .unwrap();
    let outcome = bob.update(&room, &out.bundle).await;
    assert!(matches!(outcome, UpdateOutcome::NotAllowed), "{outcome:?}");
    assert_eq!(bob.epoch(&room), e);
    assert_eq!(alice.epoch(&room), e);
    let state = bob.rooms[&room].state(&bob.dev).unwrap();
    assert!(state.participants.index_of(&cathy_user).is_none());

    // As an admin (role 3, no limit) Alice may add her.
    let kps: Vec<Vec<u8>> = alice
        .claim(&room, &cathy_user)
        .await
        .clients
        .iter()
        .filter_map(|c| match &c.material {
            ClientMaterial::KeyPackage(k) => Some(k.as_bytes().to_vec()),
            _ => None,
        })
        .collect();
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .add_users(&alice.dev, &[(cathy_user, 3)], &kps)
        .unwrap();
    let outcome = alice.update(&room, &out.bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = alice.epoch(&room);
    cathy.sync_until("joined", |p| p.epoch(&room) == e).await;
    bob.sync_until("Cathy's add", |p| p.epoch(&room) == e).await;
    fed.shutdown().await;
}

/// `ROOM-policy-operational` across three providers: the hub a.example's Alice sets MLS
/// operational parameters (no external commits, SelfRemove forbidden, padding to 64 octets),
/// a logging policy and a bot; Bob (b.example) and Cathy (c.example) see them, their groups
/// pad, messages still flow; a second device of Bob cannot join by external commit and Bob's
/// SelfRemove is refused, each answered to Bob through his provider; once Alice allows
/// external commits the device joins.
async fn operational(fed: &Federation) {
    use mimi_room::room_policy::{Bot, BotPolicy, LoggingPolicy, OperationalParameters};
    let cp = mimi_room::codepoints::CodePoints::DRAFT;
    let room = RoomUri::parse(&format!("mimi://a.example/r/ops{}", tag())).unwrap();
    let mut alice = Person::register(fed, "a.example", "alice", "1").await;
    let mut bob = Person::register(fed, "b.example", "bob", "1").await;
    let mut cathy = Person::register(fed, "c.example", "cathy", "1").await;
    alice.create_room(&room).await;
    alice.add(&room, "mimi://b.example/u/bob").await;
    alice.add(&room, "mimi://c.example/u/cathy").await;
    let e = alice.epoch(&room);
    bob.sync_until("joined", |p| p.epoch(&room) == e).await;
    cathy.sync_until("joined", |p| p.epoch(&room) == e).await;

    let mut ops = OperationalParameters::permissive();
    ops.external_commit_allowed = false;
    ops.forbidden_capabilities.proposals = vec![0x000a];
    ops.app_message_policy.pad_to_size = 64;
    let logging = LoggingPolicy {
        logging: mimi_room::room_policy::Optionality::Optional,
        logging_clients: vec!["mimi://a.example/d/archiver/1".into()],
        ..LoggingPolicy::default()
    };
    let bots = BotPolicy {
        allowed_bots: vec![Bot {
            name: "poker".into(),
            bot_role_index: 2,
            ..Bot::default()
        }],
    };
    let out = alice
        .rooms
        .get_mut(&room)
        .unwrap()
        .set_components(
            &alice.dev,
            vec![
                (cp.mls_operational_policy, ops.encode()),
                (cp.logging_policy, logging.encode()),
                (cp.bot_policy, bots.encode()),
            ],
        )
        .unwrap();
    let outcome = alice.update(&room, &out.bundle).await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    let e = alice.epoch(&room);
    for p in [&mut bob, &mut cathy] {
        p.sync_until("the operational parameters", |p| p.epoch(&room) == e)
            .await;
        let s = p.rooms[&room].state(&p.dev).unwrap().policies;
        assert_eq!(s.operational.as_ref(), Some(&ops), "{}", p.dev.client);
        assert!(s.logging.as_ref().is_some_and(LoggingPolicy::active));
        assert_eq!(s.bots.as_ref(), Some(&bots));
        assert_eq!(p.rooms[&room].group.configuration().padding_size(), 64);
    }
    let hello = bob.send(&room, "padded hello").await;
    alice
        .sync_until("Bob's message", |p| p.got(&hello) == 1)
        .await;
    cathy
        .sync_until("Bob's message", |p| p.got(&hello) == 1)
        .await;

    // ROOM-policy-operational-external-commit: Bob's second device may not join.
    let mut bob2 = Person::register_with(fed, "b.example", "bob", "2", Some(&bob.token)).await;
    let err = bob2.join(&room, &[]).await.unwrap_err();
    assert!(err.contains("NotAllowed"), "{err}");
    // ROOM-policy-operational-proposals: Bob's SelfRemove is refused.
    let leave = bob.rooms.get_mut(&room).unwrap().leave(&bob.dev).unwrap();
    let outcome = bob.update(&room, &leave).await;
    assert!(matches!(outcome, UpdateOutcome::NotAllowed), "{outcome:?}");
    assert_eq!(alice.epoch(&room), e);

    // External commits allowed again: the device joins.
    ops.external_commit_allowed = true;
    let outcome = alice
        .set_component(&room, cp.mls_operational_policy, ops.encode())
        .await;
    assert!(
        matches!(outcome, UpdateOutcome::Success { .. }),
        "{outcome:?}"
    );
    bob2.join(&room, &[]).await.unwrap();
    let e = bob2.epoch(&room);
    alice
        .sync_until("Bob's second device", |p| p.epoch(&room) == e)
        .await;
}

#[tokio::test]
async fn room_policy_operational_across_three_providers_sqlite() {
    let fed = federation(None).await;
    operational(&fed).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn room_policy_operational_across_three_providers_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    operational(&fed).await;
    fed.shutdown().await;
}
