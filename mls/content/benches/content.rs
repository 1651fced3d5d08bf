//! `cargo bench -p mimi-content`: encode and decode of the draft's Original message and of a
//! 1,000-part multipart message, each beside a ciborium `Value` round trip of the same bytes
//! measured in the same run. The ratio lines are printed at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group};
use mimi_content::build::ContentBuilder;
use mimi_content::{Disposition, MimiContent, NestedPart, PartSemantics};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn original() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../interop-tests/vectors/content/original.cbor"
    ))
    .unwrap()
}

fn thousand_parts() -> Vec<u8> {
    let parts = (0..1000)
        .map(|i| NestedPart::text(&format!("part number {i}")))
        .collect();
    ContentBuilder::new(
        [9; 16],
        NestedPart::multi(Disposition::RENDER, PartSemantics::ProcessAll, parts),
    )
    .sender_and_room("mimi://a.example/u/alice", "mimi://a.example/r/bench")
    .build()
    .encode()
    .unwrap()
}

fn ciborium_round_trip(bytes: &[u8]) -> Vec<u8> {
    let v: ciborium::Value = ciborium::from_reader(bytes).unwrap();
    let mut out = Vec::with_capacity(bytes.len());
    ciborium::into_writer(&v, &mut out).unwrap();
    out
}

fn benches(c: &mut Criterion) {
    for (name, bytes) in [
        ("original", original()),
        ("multipart-1000", thousand_parts()),
    ] {
        let content = MimiContent::decode(&bytes).unwrap();
        let mut g = c.benchmark_group(name);
        g.bench_function("mimi-content decode", |b| {
            b.iter(|| MimiContent::decode(black_box(&bytes)).unwrap())
        });
        g.bench_function("mimi-content encode", |b| {
            b.iter(|| black_box(&content).encode().unwrap())
        });
        g.bench_function("mimi-content decode+encode", |b| {
            b.iter(|| {
                MimiContent::decode(black_box(&bytes))
                    .unwrap()
                    .encode()
                    .unwrap()
            })
        });
        g.bench_function("ciborium Value decode+encode (baseline)", |b| {
            b.iter(|| ciborium_round_trip(black_box(&bytes)))
        });
        g.finish();
    }
}

/// Median time per call over `rounds` batches, for the ratio table.
fn median_ns(mut f: impl FnMut(), rounds: usize) -> f64 {
    let batch = 200;
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ratios() {
    println!(
        "\nratio table (median of 31 batches; ratio = ours / ciborium Value round trip, same run)"
    );
    println!("| message | bytes | ours decode+encode | ciborium round trip | ratio |");
    println!("|---|---|---|---|---|");
    for (name, bytes) in [
        ("original", original()),
        ("multipart-1000", thousand_parts()),
    ] {
        let ours = median_ns(
            || {
                drop(black_box(
                    MimiContent::decode(black_box(&bytes))
                        .unwrap()
                        .encode()
                        .unwrap(),
                ))
            },
            31,
        );
        let base = median_ns(
            || drop(black_box(ciborium_round_trip(black_box(&bytes)))),
            31,
        );
        println!(
            "| {name} | {} | {:.1} us | {:.1} us | {:.2}x |",
            bytes.len(),
            ours / 1e3,
            base / 1e3,
            ours / base
        );
    }
}

criterion_group! {
    name = group;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    ratios();
}
