//! Journal append throughput on a real file: one appender at a time (each append waits for its
//! own COMMIT) versus 64 concurrent appenders (group commit shares COMMITs), with
//! `synchronous=FULL` and `NORMAL`. Criterion reports time per append; appends/s = 1 / that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyfence_store::{NewEntry, Store, StoreOptions};
use keyfence_types::Venue;

fn entry(i: u64) -> NewEntry {
    NewEntry {
        ts_ms: 1_700_000_000_000 + i as i64,
        kind: "request".to_owned(),
        bot: Some("bench".to_owned()),
        venue: Some(Venue::Binance),
        class: Some("trade".to_owned()),
        method: Some("POST".to_owned()),
        path: Some("/api/v3/order".to_owned()),
        symbol: Some("BTCUSDT".to_owned()),
        side: Some("buy".to_owned()),
        quantity: Some("0.01".parse().unwrap()),
        notional: Some("650.5".parse().unwrap()),
        decision: "allow".to_owned(),
        rules: vec!["class".to_owned(), "max-order-notional".to_owned()],
        upstream_status: Some(200),
        latency_us: Some(850),
        order_id: Some(format!("{i}")),
        positions: vec![("BTCUSDT".to_owned(), "0.01".parse().unwrap())],
        orders: 1,
        ..NewEntry::default()
    }
}

const CONCURRENCY: u64 = 64;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("keyfence-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("journal_append");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for sync_full in [true, false] {
        let sync = if sync_full { "full" } else { "normal" };
        let db = dir.join(format!("{sync}.db"));
        let store = rt.block_on(async {
            let opts = StoreOptions {
                sync_full,
                ..StoreOptions::default()
            };
            Store::open(&db, opts).await.unwrap()
        });
        group.bench_function(format!("sync_{sync}/sequential"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let j = store.journal();
                    let start = Instant::now();
                    for i in 0..iters {
                        j.append(entry(i)).await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        group.bench_function(format!("sync_{sync}/concurrent_{CONCURRENCY}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let mut tasks = tokio::task::JoinSet::new();
                    for t in 0..CONCURRENCY {
                        let j = store.journal();
                        let n = iters / CONCURRENCY + u64::from(t < iters % CONCURRENCY);
                        tasks.spawn(async move {
                            for i in 0..n {
                                j.append(entry(i)).await.unwrap();
                            }
                        });
                    }
                    while let Some(r) = tasks.join_next().await {
                        r.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        let stats = store.journal().stats();
        eprintln!(
            "sync {sync}: {} entries in {} commits (max {} per commit)",
            stats.entries, stats.commits, stats.max_batch
        );
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
