use mimi_node::config::{Config, ConfigError, Database};
use std::path::{Path, PathBuf};

const MINIMAL: &str = r#"
domain = "A.Example"
[tls]
certificate = "a.crt"
key = "a.key"
trusted_roots = ["ca.crt"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/mimi/a.toml"), Path::new("/etc/mimi"))
}

#[test]
fn defaults_are_documented_values_and_paths_resolve_against_the_file() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.domain, "a.example");
    assert_eq!(c.listen.to_string(), "127.0.0.1:4433");
    assert_eq!(c.admin_listen, None);
    assert_eq!(c.data_dir, PathBuf::from("/etc/mimi"));
    assert_eq!(c.database, Database::Sqlite("/etc/mimi/node.sqlite".into()));
    assert_eq!(c.tls.trusted_roots, [PathBuf::from("/etc/mimi/ca.crt")]);
    assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
    assert!(!c.registration.open);
    assert_eq!(c.outbox.retry_base_ms, 200);
    // PROTO-5.10-size: 256 MiB unless configured; blobs under data_dir/assets.
    assert_eq!(c.assets.max_bytes, 256 * 1024 * 1024);
    assert_eq!(c.assets.dir, PathBuf::from("/etc/mimi/assets"));
    // STORE-sqlite-cache: 256 KiB of page cache per SQLite connection.
    assert_eq!(c.sqlite.cache_kib, 256);
}

#[test]
fn a_full_file() {
    let c = parse(
        r#"
domain = "b.example"
listen = "0.0.0.0:5000"
admin_listen = "127.0.0.1:9000"
data_dir = "data/b"
database = "postgres://mimi@127.0.0.1:5432/mimi"
[tls]
certificate = "/pki/b.crt"
key = "b.key"
trusted_roots = ["ca1.crt", "/pki/ca2.crt"]
[peers]
"a.example" = "127.0.0.1:4433"
"C.example" = "localhost:4435"
[limits]
max_body_bytes = 65536
max_concurrent_streams = 8
request_timeout_ms = 500
[registration]
open = true
[outbox]
retry_base_ms = 10
retry_max_ms = 1000
batch_max_bytes = 4096
[assets]
dir = "/srv/blobs"
max_bytes = 1000
[sqlite]
cache_kib = 4096
"#,
    )
    .unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/etc/mimi/data/b"));
    assert_eq!(
        c.database,
        Database::Postgres("postgres://mimi@127.0.0.1:5432/mimi".into())
    );
    assert_eq!(c.tls.certificate, PathBuf::from("/pki/b.crt"));
    assert_eq!(c.tls.key, PathBuf::from("/etc/mimi/data/b/b.key"));
    assert_eq!(c.peers["c.example"], "localhost:4435");
    assert_eq!(c.limits.max_concurrent_streams, 8);
    assert!(c.registration.open);
    assert_eq!(c.outbox.batch_max_bytes, 4096);
    assert_eq!(c.assets.dir, PathBuf::from("/srv/blobs"));
    assert_eq!(c.assets.max_bytes, 1000);
    assert_eq!(c.sqlite.cache_kib, 4096);
}

fn problem(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn mistakes_name_the_key_and_the_fix() {
    let e = problem(&MINIMAL.replace("domain", "domian"));
    assert!(e.contains("domian"), "{e}");
    let e = problem(&MINIMAL.replace("A.Example", "localhost"));
    assert!(
        e.contains("`domain`") && e.contains("provider domain"),
        "{e}"
    );
    let e = problem(&format!(
        "{MINIMAL}\n[peers]\n\"b.example\" = \"nowhere\"\n"
    ));
    assert!(
        e.contains("peers.\"b.example\"") && e.contains("host:port"),
        "{e}"
    );
    let e = problem(&format!("{MINIMAL}\n[peers]\n\"a.example\" = \"h:1\"\n"));
    assert!(e.contains("own peer"), "{e}");
    let e = problem(&MINIMAL.replace("[\"ca.crt\"]", "[]"));
    assert!(e.contains("tls.trusted_roots"), "{e}");
    let e = problem(&format!("database = \"mysql://x\"\n{MINIMAL}"));
    assert!(e.contains("`database`") && e.contains("postgres://"), "{e}");
    let e = problem(&format!("{MINIMAL}\n[sqlite]\ncache_kib = 0\n"));
    assert!(e.contains("sqlite.cache_kib") && e.contains("1 to"), "{e}");
    let e = problem(&format!("{MINIMAL}\n[hub]\ncache_rooms = 0\n"));
    assert!(e.contains("hub.cache_rooms"), "{e}");
    let e = problem(&format!("{MINIMAL}\n[assets]\nmax_bytes = 0\n"));
    assert!(e.contains("assets.max_bytes"), "{e}");
    let e = problem(&format!("{MINIMAL}\n[assets]\nmax_size = 5\n"));
    assert!(e.contains("max_size"), "{e}");
    let e = problem(&format!("{MINIMAL}\n[limits]\nmax_body_bytes = 0\n"));
    assert!(e.contains("limits"), "{e}");
    let e = problem(&format!(
        "{MINIMAL}\n[outbox]\nretry_base_ms = 10\nretry_max_ms = 5\n"
    ));
    assert!(e.contains("retry_base_ms <= retry_max_ms"), "{e}");
    let e = problem("domain = ");
    assert!(e.contains("/etc/mimi/a.toml"), "{e}");
    let e = problem(&format!("listen = \"nope\"\n{MINIMAL}"));
    assert!(e.contains("listen") || e.contains("socket"), "{e}");
}

#[test]
fn load_reads_a_file_and_says_which_one_is_missing() {
    let dir = std::env::temp_dir().join(format!("mimi-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("node.toml");
    std::fs::write(&file, MINIMAL).unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!(c.database, Database::Sqlite(dir.join("node.sqlite")));
    let e = Config::load(&dir.join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.toml"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
