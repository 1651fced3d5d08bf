//! mimi-bench's scenarios run small (the tool works; figures are not asserted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mimi_bench::{
    commit_acceptance, fanout_width, idle_rooms, key_package_claims, mls_message_cost, percentile,
    svg_plot,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_scenarios_run_small_and_report_ratios() {
    let dir = std::env::temp_dir().join(format!("mimi-bench-smoke-{}", std::process::id()));
    let (t, hub, pg) = commit_acceptance(&[2, 4], 2, &dir).await;
    assert_eq!(t.rows.len(), 2);
    assert!(
        t.rows
            .iter()
            .all(|r| r[4].ends_with('x') && r[5].parse::<u64>().is_ok_and(|b| b > 0)),
        "{t:?}"
    );
    // results.json rows: one per size for the ratio, and the largest room's load and Add.
    let scenarios: Vec<&str> = t.figures.iter().map(|f| f.scenario.as_str()).collect();
    assert_eq!(
        scenarios,
        [
            "commit acceptance",
            "commit acceptance",
            "big room",
            "big room"
        ],
        "{t:?}"
    );
    assert!(
        t.figures
            .iter()
            .all(|f| f.value.is_some() && !f.target.is_empty())
    );
    let json = serde_json::to_value(&t.figures).unwrap();
    assert_eq!(json[0]["size"], 2);
    assert!(
        json[0]["ratio"].is_number() && json[0]["met"].is_boolean(),
        "{json}"
    );
    assert_eq!((hub.len(), pg.len()), (2, 2));
    let f = fanout_width(&[1, 3], 2, &dir).await;
    assert_eq!(f.rows[0][2], "baseline");
    assert!(f.rows[1][2].ends_with("µs"), "{f:?}");
    assert_eq!(
        f.figures.len(),
        1,
        "per-follower cost at 3 followers: {f:?}"
    );
    let store = mimi_store::Store::open(dir.join("kp.sqlite").to_str().unwrap())
        .await
        .unwrap();
    let k = key_package_claims(40, 4, store).await;
    assert!(
        k.rows.iter().all(|r| r[3] == "0"),
        "never a KeyPackage twice: {k:?}"
    );
    assert!(mls_message_cost(3, 2) > Duration::ZERO);
    let svg = svg_plot("t", "x", "y", &[("a".into(), hub)], true);
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(!svg.contains("plot failed"), "{svg}");
    let v = [1, 2, 3, 4].map(Duration::from_millis);
    assert_eq!(percentile(&v, 50.0), Duration::from_millis(3));
    assert!(t.markdown().contains("|---|---|---|---|\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Scenario 7 small: a hub process (`mimi-bench node`) with 3 and then 6 idle rooms and a
/// decoded-room cache of 2; the table has the baseline and both counts, and both figures
/// are measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_idle_rooms_run_small() {
    let dir = std::env::temp_dir().join(format!("mimi-bench-idle-{}", std::process::id()));
    let t = idle_rooms(env!("CARGO_BIN_EXE_mimi-bench"), &[3, 6], 2, &dir).await;
    assert_eq!(t.rows.len(), 3, "{t:?}");
    assert_eq!(t.rows[0][2], "baseline");
    assert_eq!(t.figures.len(), 2, "{t:?}");
    assert!(
        t.figures
            .iter()
            .all(|f| f.value.is_some_and(|v| v > 0.0) && f.size == Some(6)),
        "{t:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
