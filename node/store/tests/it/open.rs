//! `STORE-migrate`: opening, reopening and bad locations.

use crate::{backends, tag};
use mimi_store::{Store, StoreError};

#[tokio::test]
async fn store_migrate_open_reopen_and_bad_locations() {
    // Opened twice (migrations already applied): fine, on every backend.
    for db in backends("open").await {
        let again = Store::open(&db.location).await.unwrap();
        assert_eq!(again.backend(), db.store.backend());
        again
            .create_room(
                &format!("mimi://a.example/r/{}", tag("o")),
                "a.example",
                b"s",
                0,
            )
            .await
            .unwrap();
    }
    // A directory and the `sqlite:` form.
    let dir = std::env::temp_dir().join(tag("open-dir"));
    std::fs::create_dir_all(&dir).unwrap();
    let s = Store::open_in_dir(&dir).await.unwrap();
    assert!(dir.join(mimi_store::SQLITE_FILE).exists());
    drop(s);
    let f = dir.join("other.sqlite");
    Store::open(&format!("sqlite:{}", f.display()))
        .await
        .unwrap();
    assert!(f.exists());
    // Bad locations are errors that say what is wrong, not panics.
    for bad in ["", "mysql://x/y", "/nonexistent-dir-for-mimi/x/y.sqlite"] {
        match Store::open(bad).await {
            Err(e) => assert!(!e.to_string().is_empty(), "{bad}"),
            Ok(_) => panic!("{bad:?} opened"),
        }
    }
    assert!(matches!(
        Store::open("mysql://x/y").await,
        Err(StoreError::Location(_))
    ));
}
