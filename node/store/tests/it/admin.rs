//! The admin listener's read-only queries (`/status`, `/rooms`), on every backend.

use crate::{backends, tag};

#[tokio::test]
async fn store_admin_hosted_rooms_devices_and_outbox_by_room() {
    for db in backends("admin").await {
        let s = &db.store;
        // A hub name of its own: tests share one PostgreSQL database.
        let hub = format!("{}.example", tag("hub"));
        let follower = format!("{}.example", tag("f"));
        let mut rooms: Vec<String> = (0..3)
            .map(|k| format!("mimi://{hub}/r/{k}-{}", tag("room")))
            .collect();
        rooms.sort();
        for (k, r) in rooms.iter().enumerate() {
            s.create_room(r, &hub, b"s", k as u64).await.unwrap();
        }
        // A room hosted elsewhere is not listed.
        let other = format!("mimi://{}.example/r/x", tag("other"));
        s.create_room(&other, "elsewhere.example", b"s", 0)
            .await
            .unwrap();
        assert_eq!(s.hosted_room_count(&hub).await.unwrap(), 3);
        let all = s.hosted_rooms(&hub, None, 10).await.unwrap();
        let uris: Vec<&str> = all.iter().map(|r| r.room_uri.as_str()).collect();
        assert_eq!(uris, rooms.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(all[2].epoch, 2);
        // Pages: at most `limit`, then on after the last one.
        let first = s.hosted_rooms(&hub, None, 2).await.unwrap();
        assert_eq!(first.len(), 2);
        let rest = s
            .hosted_rooms(&hub, Some(&first[1].room_uri), 2)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].room_uri, rooms[2]);

        // Outbox rows by room and follower.
        let mut tx = s.begin_room(&rooms[0]).await.unwrap();
        for k in 0..2 {
            let ev = tx.append_event(k, b"e").await.unwrap();
            tx.enqueue_outbox(&follower, ev, b"f", 0).await.unwrap();
        }
        tx.commit().await.unwrap();
        let by_room = s.outbox_depth_by_room().await.unwrap();
        assert!(
            by_room.contains(&(rooms[0].clone(), follower.clone(), 2)),
            "{by_room:?}"
        );
        assert!(!by_room.iter().any(|(r, _, _)| *r == rooms[1]));

        // Devices.
        let before = s.device_count().await.unwrap();
        let user = format!("mimi://{hub}/u/alice");
        s.register_device(
            &user,
            &format!("mimi://{hub}/d/alice/1"),
            tag("t").as_bytes(),
            1,
        )
        .await
        .unwrap();
        assert!(s.device_count().await.unwrap() > before);
    }
}
