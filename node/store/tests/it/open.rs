use crate::{Db, postgres_url, tag};
use mimi_store::{Backend, SQLITE_FILE, Store, StoreError};
use sqlx::Row;

/// A fresh, existing directory for this test, removed at its end.
fn dir(name: &str) -> crate::TempDir {
    crate::TempDir::new(name)
}

/// A round trip through the store: something written is read back.
async fn round_trip(s: &Store, room: &str) {
    s.create_room(room, "a.example", b"s0", 7).await.unwrap();
    assert_eq!(s.room(room).await.unwrap().unwrap().epoch, 7);
}

#[tokio::test]
async fn store_migrate_sqlite_path_url_and_data_dir() {
    let d = dir("open-sqlite");
    // A bare path; the file is created.
    let file = d.join("bare.sqlite");
    let s = Store::open(file.to_str().unwrap()).await.unwrap();
    assert_eq!(s.backend(), Backend::Sqlite);
    round_trip(&s, "mimi://a.example/r/bare").await;
    s.close().await;
    assert!(file.is_file());
    // `sqlite:` and `sqlite://` URLs.
    for (k, url) in [
        format!("sqlite:{}", d.join("one.sqlite").display()),
        format!("sqlite://{}", d.join("two.sqlite").display()),
        // Options in the URL are dropped: the store sets its own (read-write, created).
        format!("sqlite://{}?mode=ro", d.join("three.sqlite").display()),
    ]
    .iter()
    .enumerate()
    {
        let s = Store::open(url).await.unwrap();
        assert_eq!(s.backend(), Backend::Sqlite, "{url}");
        round_trip(&s, &format!("mimi://a.example/r/url{k}")).await;
        s.close().await;
    }
    for f in ["one.sqlite", "two.sqlite", "three.sqlite"] {
        assert!(d.join(f).is_file(), "{f}");
    }
    // A data directory: the store keeps SQLITE_FILE in it.
    let s = Store::open_in_dir(&d).await.unwrap();
    round_trip(&s, "mimi://a.example/r/dir").await;
    s.close().await;
    assert!(d.join(SQLITE_FILE).is_file());
}

#[tokio::test]
async fn store_migrate_sqlite_path_is_taken_literally() {
    // A bare path is a file name, not a URL: `%41` must not become `A`, `?` and `#` are part
    // of the name. (Before the fix, `%41` was percent-decoded by the driver and the store
    // opened, or failed to open, another file.)
    let root = dir("open-literal");
    let d = root.join("data%41 ?x#y");
    std::fs::create_dir_all(&d).unwrap();
    let file = d.join("node.sqlite");
    let s = Store::open(file.to_str().unwrap()).await.unwrap();
    round_trip(&s, "mimi://a.example/r/literal").await;
    s.close().await;
    assert!(file.is_file());
    // The same file through a percent-encoded `sqlite:` URL.
    let url = format!(
        "sqlite://{}",
        file.to_str()
            .unwrap()
            .replace('%', "%25")
            .replace('?', "%3F")
            .replace('#', "%23")
    );
    let s = Store::open(&url).await.unwrap();
    assert!(
        s.room("mimi://a.example/r/literal")
            .await
            .unwrap()
            .is_some()
    );
    s.close().await;
}

#[tokio::test]
async fn store_migrate_reopen_applies_nothing_twice_and_keeps_data() {
    let d = dir("open-reopen");
    let s = Store::open_in_dir(&d).await.unwrap();
    round_trip(&s, "mimi://a.example/r/kept").await;
    s.close().await;
    // Reopening runs the migrations again: already applied, nothing changes.
    for _ in 0..2 {
        let s = Store::open_in_dir(&d).await.unwrap();
        let r = s.room("mimi://a.example/r/kept").await.unwrap().unwrap();
        let st = s
            .room_state("mimi://a.example/r/kept")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.epoch, st.head.as_slice()), (7, &b"s0"[..]));
        s.close().await;
    }
    let db = Db {
        store: Store::open_in_dir(&d).await.unwrap(),
        location: d.join(SQLITE_FILE).to_str().unwrap().to_owned(),
        dir: None,
    };
    let raw = db.raw().await;
    let applied: Vec<i64> =
        sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&raw)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect();
    // Every migration file, once each.
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        applied,
        (1..=files).collect::<Vec<_>>(),
        "each migration once"
    );
}

/// STORE-sqlite-checkpoint: what is committed reaches the database file through the
/// store's checkpointer thread, while the store stays open (no commit checkpoints inline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_sqlite_checkpoint_on_its_own_thread() {
    let d = dir("open-ckpt");
    let s = Store::open_in_dir(&d).await.unwrap();
    let main = d.join(SQLITE_FILE);
    let before = std::fs::metadata(&main).unwrap().len();
    let c = format!("mimi://b.example/d/{}/1", tag("ckpt"));
    let body = vec![7u8; 16 * 1024];
    for k in 0..64u64 {
        let items = vec![(
            c.clone(),
            "mimi://a.example/r/ckpt".to_owned(),
            body.clone(),
        )];
        s.enqueue(&items, k).await.unwrap();
    }
    // 1 MiB committed: far below SQLite's own threshold (1,000 pages), so only the
    // checkpointer (every 250 ms) moves it into the file. Bounded wait: 20 s.
    let mut grown = 0;
    for _ in 0..200 {
        grown = std::fs::metadata(&main).unwrap().len();
        if grown >= before + 1024 * 1024 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        grown >= before + 1024 * 1024,
        "the database file did not grow: {before} -> {grown} bytes"
    );
    assert_eq!(s.fetch_queue(&c, 0, 100).await.unwrap().len(), 64);
    s.close().await;
}

#[tokio::test]
async fn store_sqlite_pragmas_wal_mode() {
    let d = dir("open-wal");
    let s = Store::open_in_dir(&d).await.unwrap();
    round_trip(&s, "mimi://a.example/r/wal").await;
    // WAL is a property of the file: a fresh connection sees it.
    let db = Db {
        store: s.clone(),
        location: d.join(SQLITE_FILE).to_str().unwrap().to_owned(),
        dir: None,
    };
    let raw = db.raw().await;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&raw)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode.to_ascii_lowercase(), "wal");
    raw.close().await;
    // The store's connections are still open: the write-ahead log is there beside the file.
    assert!(d.join(format!("{SQLITE_FILE}-wal")).exists());
    s.close().await;
}

#[tokio::test]
async fn store_migrate_bad_locations_are_location_errors() {
    let d = dir("open-bad");
    let file = d.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let missing = d.join("missing").join("node.sqlite");
    let under_file = file.join("node.sqlite");
    let cases = [
        String::new(),
        ":memory:".to_owned(),
        "sqlite::memory:".to_owned(),
        "sqlite:".to_owned(),
        "sqlite://".to_owned(),
        missing.to_str().unwrap().to_owned(),
        format!("sqlite://{}", missing.display()),
        under_file.to_str().unwrap().to_owned(),
        d.to_str().unwrap().to_owned(),
        "mysql://root@localhost/mimi".to_owned(),
    ];
    for loc in &cases {
        match Store::open(loc).await {
            Err(StoreError::Location(msg)) => assert!(!msg.is_empty(), "{loc:?}"),
            other => panic!("{loc:?}: expected a Location error, got {other:?}"),
        }
    }
    // Nothing was created on the way.
    assert!(!d.join("missing").exists());
    for data_dir in [d.join("missing"), file.clone()] {
        assert!(
            matches!(
                Store::open_in_dir(&data_dir).await,
                Err(StoreError::Location(_))
            ),
            "{}",
            data_dir.display()
        );
    }
    // The messages name the problem.
    let Err(StoreError::Location(msg)) = Store::open(missing.to_str().unwrap()).await else {
        panic!("missing directory")
    };
    assert!(msg.contains("does not exist"), "{msg}");
    let Err(StoreError::Location(msg)) = Store::open(d.to_str().unwrap()).await else {
        panic!("directory")
    };
    assert!(msg.contains("directory"), "{msg}");
}

#[tokio::test]
async fn store_migrate_postgres_url_reopen_and_bad_database() {
    let Some(url) = postgres_url() else {
        return;
    };
    let s = Store::open(&url).await.unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    let room = format!("mimi://a.example/r/{}", tag("pg-open"));
    round_trip(&s, &room).await;
    s.close().await;
    // `postgresql://` is the same; reopening (migrations already applied) keeps the data.
    let alt = url.replacen("postgres://", "postgresql://", 1);
    let s = Store::open(&alt).await.unwrap();
    assert_eq!(s.backend(), Backend::Postgres);
    assert!(s.room(&room).await.unwrap().is_some());
    s.close().await;
    // A database that does not exist: an error, not a panic (the server answers at once).
    let (base, _) = url.rsplit_once('/').unwrap();
    let bad = format!("{base}/{}", tag("nodb").replace('-', "_"));
    let got = tokio::time::timeout(std::time::Duration::from_secs(60), Store::open(&bad))
        .await
        .expect("bounded");
    assert!(matches!(got, Err(StoreError::Backend(_))), "{got:?}");
}

/// STORE-sqlite-cache: every SQLite connection of a file gets the page cache of the options
/// the file was opened with (256 KiB by default); a second store of the process on the same
/// file shares the first one's connections and so its cache; an out-of-range size is refused
/// with the range, not clamped.
#[tokio::test]
async fn store_sqlite_cache_per_connection_from_the_options() {
    use mimi_store::StoreOptions;
    let d = dir("open-cache");
    let plain = Store::open(d.join("plain.sqlite").to_str().unwrap())
        .await
        .unwrap();
    assert_eq!(plain.sqlite_cache_kib().await.unwrap(), Some(256));
    let file = d.join("big.sqlite");
    let opts = StoreOptions {
        sqlite_cache_kib: 3000,
    };
    let s = Store::open_with(file.to_str().unwrap(), &opts)
        .await
        .unwrap();
    round_trip(&s, "mimi://a.example/r/cache").await;
    // Every reader, not only the first one asked.
    for _ in 0..8 {
        assert_eq!(s.sqlite_cache_kib().await.unwrap(), Some(3000));
    }
    let again = Store::open(file.to_str().unwrap()).await.unwrap();
    assert_eq!(again.sqlite_cache_kib().await.unwrap(), Some(3000));
    for bad in [0, StoreOptions::MAX_SQLITE_CACHE_KIB + 1] {
        let e = Store::open_with(
            d.join("bad.sqlite").to_str().unwrap(),
            &StoreOptions {
                sqlite_cache_kib: bad,
            },
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains(&format!("{bad} KiB")) && e.contains("1 to"),
            "{e}"
        );
    }
    assert!(
        !d.join("bad.sqlite").exists(),
        "nothing created for bad options"
    );
    plain.close().await;
    again.close().await;
    s.close().await;
}
