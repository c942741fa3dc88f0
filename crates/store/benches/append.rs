//! The journal's work per forwarded order, on a real file: a reservation in the reservation
//! log (awaited until it is durable, as the gateway does before answering), then the entry
//! that settles it. One order at
//! a time versus 64 concurrent (group commit shares COMMITs and fsyncs), in each sync mode.
//! Criterion reports time per order; orders/s = 1 / that.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyfence_store::{Journal, NewEntry, Pending, Store, StoreOptions, SyncMode};
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

/// What the gateway asks of the journal for one allowed order.
async fn order(j: &Journal, i: u64) {
    // Unique, as the gateway's are (criterion reruns the loops with the same `i`).
    let id = j.reservation_id();
    let reserved = j
        .reserve(Pending {
            id: id.clone(),
            ts_ms: 1_700_000_000_000,
            bot: "bench".to_owned(),
            venue: Venue::Binance,
            day: 19_675,
            notional: "650.5".parse().unwrap(),
            orders: 1,
            positions: vec![("BTCUSDT".to_owned(), "0.01".parse().unwrap())],
            symbol: Some("BTCUSDT".to_owned()),
            side: Some("buy".to_owned()),
            class: "trade".to_owned(),
        })
        .await
        .unwrap();
    reserved.durable().await.unwrap();
    let mut e = entry(i);
    e.reservation_id = Some(id);
    j.append(e).await.unwrap();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("keyfence-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut group = c.benchmark_group("journal_order");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for mode in [SyncMode::Strict, SyncMode::Full, SyncMode::Normal] {
        let sync = mode.as_str();
        let db = dir.join(format!("{sync}.db"));
        let store = rt.block_on(async {
            let opts = StoreOptions {
                sync: mode,
                ..StoreOptions::default()
            };
            let store = Store::open(&db, opts).await.unwrap();
            // Takes the reservation log, as the gateway does at start.
            store.recover_pending().await.unwrap();
            store
        });
        group.bench_function(format!("sync_{sync}/sequential"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let j = store.journal();
                    let start = Instant::now();
                    for i in 0..iters {
                        order(&j, i).await;
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
                                order(&j, i).await;
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
            "sync {sync}: {} commands in {} commits (max {} per commit)",
            stats.commands, stats.commits, stats.max_batch
        );
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
