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
