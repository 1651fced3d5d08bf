//! Issue 18: the mixed room (`mimi_harness::mixed::mixed_flow`) across three in-process
//! providers over real QUIC, on SQLite and on PostgreSQL.

use mimi_harness::mixed::mixed_flow;
use mimi_harness::*;

#[tokio::test]
async fn mixed_room_across_three_providers_sqlite() {
    let fed = federation(None).await;
    mixed_flow(&|d| fed.api(d), "", &mut |_| {}).await;
    fed.shutdown().await;
}

#[tokio::test]
async fn mixed_room_across_three_providers_postgres() {
    let Some(url) = mimi_harness::test_postgres_url() else {
        eprintln!("MIMI_TEST_POSTGRES_URL not set: the PostgreSQL run is skipped");
        return;
    };
    let fed = federation(Some(&url)).await;
    mixed_flow(&|d| fed.api(d), "", &mut |_| {}).await;
    fed.shutdown().await;
}
